/* Logging to stderr with syslog priority prefixes ("<6>crisp-netd[42]: ..."),
 * which journald turns into priorities. One write(2) per line, so lines of
 * several processes sharing stderr never interleave. */
#ifndef CRISP_COMMON_LOG_H
#define CRISP_COMMON_LOG_H

#include <stdarg.h>
#include <syslog.h>

#include "common/util.h"

void log_init(const char *progname, int level);
void log_set_level(int level);
int log_get_level(void);
/* "debug", "info", "notice", "warning", "error": -1 if unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(int level);

void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
void log_vmsg(int prio, const char *fmt, va_list ap) _printf_(2, 0);

#define log_crit(...) log_msg(LOG_CRIT, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Start-up failures and protocol violations only: log at crit and exit(1). */
_noreturn_ void fatal(const char *fmt, ...) _printf_(1, 2);

#endif
