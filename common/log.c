#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_progname = "crisp";
static int log_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
	[LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_init(const char *progname, int level)
{
	log_progname = progname;
	log_level = level;
}

void log_set_level(int level)
{
	log_level = level;
}
int log_get_level(void)
{
	return log_level;
}

int log_level_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (streq(name, level_names[i]))
			return (int)i;
	if (streq(name, "warn"))
		return LOG_WARNING;
	if (streq(name, "err"))
		return LOG_ERR;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level >= (int)ARRAY_SIZE(level_names))
		return "?";
	return level_names[level];
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	char line[4096];
	int saved = errno, n, m;

	if (prio > log_level)
		return;
	n = snprintf(line, sizeof(line), "<%d>%s[%d]: ", prio, log_progname, (int)getpid());
	if (n < 0 || n >= (int)sizeof(line))
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* One line per message: newlines inside a message would let a peer's
	 * text forge log lines, so they become spaces. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}
