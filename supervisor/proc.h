/* crispd's process table: it starts the frontend and the helpers, gives each
 * pair of frontend and helper a fresh socketpair whenever either starts,
 * pings them, restarts the ones that die with exponential backoff, and tells
 * the frontend about every change so Status can report it. */
#ifndef CRISP_SUPERVISOR_PROC_H
#define CRISP_SUPERVISOR_PROC_H

#include <event2/event.h>

#include "common/config.h"

void proc_init(struct event_base *base, struct crisp_config *cfg, int listen_fd);
void proc_start_all(void);
/* SIGCHLD: reap and schedule restarts. */
void proc_reap(void);
/* SIGTERM/SIGINT: stop everything; done() runs once every process is gone. */
void proc_shutdown(void (*done)(void));
/* SIGHUP: cfg now holds the reloaded values; push them to every process and
 * give crash-looping processes a fresh start. */
void proc_reload(void);

#endif
