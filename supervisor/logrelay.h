/* crispd's log relay: each child of crispd writes its log lines (its stderr
 * and stdout) into a pipe of its own, which crispd reads on its loop and
 * writes line by line to its own stderr, under the name and pid crispd gave
 * the child when it started it. A line a process writes can therefore be
 * attributed only to the process (or what it started) that holds that pipe,
 * whatever the line claims to be: docs/PRIVSEP.md, "Log lines". */
#ifndef CRISP_SUPERVISOR_LOGRELAY_H
#define CRISP_SUPERVISOR_LOGRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#include "common/error.h"

/* An input line longer than this is cut into pieces of this size, each
 * written as a line of its own (the later ones marked "[continued] "). It is
 * common/log.c's buffer: no line written through log_msg() is ever cut. */
#define LOGRELAY_LINE_MAX 4096
/* The longest program name logrelay_open() takes ("crisp-runtimed" is 14). */
#define LOGRELAY_NAME_MAX 32
/* The most one formatted piece can take: every byte escaped as "\xNN",
 * the prefix, "[continued] " and the newline. */
#define LOGRELAY_FORMAT_MAX (4 * LOGRELAY_LINE_MAX + LOGRELAY_NAME_MAX + 64)

struct logrelay;

/* Where relayed lines go: crispd's stderr. Call once, before the first
 * logrelay_open(). */
void logrelay_init(struct event_base *base);

/* Before the fork: a pipe for the child called name ("crisp-imaged"; the
 * string must outlive the relay). Returns the write end (close-on-exec, for
 * the child's fds 1 and 2; the parent closes it once the child is forked),
 * or -1 with err set. */
int logrelay_open(struct logrelay **ret, const char *name, struct crisp_error *err);

/* After the fork: its lines are attributed to pid from now on. */
void logrelay_started(struct logrelay *r, pid_t pid);

/* The fork failed: close the pipe and free the relay. */
void logrelay_abandon(struct logrelay *r);

/* The child was reaped. What it left in the pipe is read now, so its last
 * lines come before crispd's own line about its death; the pipe is then kept
 * until every process holding its write end (a launcher, crisp-fetch) has
 * closed it, for at most a short while. The caller forgets r. */
void logrelay_ended(struct logrelay *r);

/* Before crispd exits: read what the pipes still hold (waiting for their
 * end at most timeout_ms) and write everything out, blocking if need be. */
void logrelay_finish(int timeout_ms);

/* One piece of a child's output as crispd writes it (see logrelay.c):
 * writes at most LOGRELAY_FORMAT_MAX bytes to out, newline included, and
 * returns how many. line holds len (at most LOGRELAY_LINE_MAX) bytes without
 * the newline; continued: it is the rest of a line cut before it. */
size_t logrelay_format(char *out, const char *name, pid_t pid, const char *line, size_t len,
		       bool continued);

#endif
