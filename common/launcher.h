/* The launcher: the one unfiltered process on a request path.
 *
 * seccomp filters, no_new_privs and the bounding set are inherited across
 * execve, so a sandboxed helper cannot run runc or CNI plugins itself (and
 * containers must get the policy their pod asks for, not the helper's).
 * netd and runtimed therefore start a launcher before they drop privilege
 * (launcher_start): they fork and at once exec crisp-launch (launch/), a
 * small static program of its own. It keeps root, installs no filter,
 * shares nothing with its helper but a socketpair, and serves one typed
 * request, LAUNCH: run a program from a table fixed at its start (built
 * from its command line), with an argv and environment that the program's
 * own check function (launch/policy.h) accepts, on at most three stdio
 * fds. It answers with the pid and later the exit status, executes nothing
 * else, opens no file on request, and exits when its helper goes away.
 *
 * Why an exec and not only a fork: the launcher then carries no
 * copy-on-write image of its helper (heap, SQLite state, CNI cache,
 * libevent, and every library the helper maps, code an attacker could
 * reuse), gets an address layout of its own rather than its helper's, and
 * its binary holds only the serving loop and the checks: what the auditor
 * reads is all there is (OpenSSH re-executes for the same reasons). It is
 * also a few hundred kB of RSS instead of a copy of its helper's, and
 * cheaper to fork at each launch.
 *
 * This file is the helper's side; docs/PRIVSEP.md ("The launcher") is the
 * review guide. */
#ifndef CRISP_COMMON_LAUNCHER_H
#define CRISP_COMMON_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#include "common/error.h"
#include "launch/wire.h"

/* Start the launcher: fork, and in the child exec path (crisp-launch) as
 *   path ROLE --wire V --helper PID --log-level LEVEL args...
 * with the socket on fd 3, /dev/null on 0 and 1, the helper's stderr on 2,
 * no other fd and an empty environment (crisp-launch(8) gives the grammar
 * of args for each ROLE). Call before the sandbox, while root with every
 * capability. Returns 0 once the exec succeeded, or -1 with err saying what
 * failed (a missing crisp-launch among them). If crisp-launch then refuses
 * its command line, it exits and the helper learns it as a launcher gone
 * (launcher_on_gone). */
int launcher_start(const char *path, const char *role, char *const args[], struct crisp_error *err);

/* Bind the helper side to its event loop (after launcher_start). */
void launcher_attach(struct event_base *base);

struct launch_req {
	const char *program; /* table name */
	const char *file;    /* dir programs: the file to run; else NULL */
	char *const *argv;   /* NULL-terminated, argv[0] included */
	char *const *envp;   /* NULL-terminated; nothing is inherited */
	int fds[3];          /* stdin, stdout, stderr; -1 = /dev/null. Not taken. */
	unsigned flags;      /* enum launch_flags */
};

struct launch;

/* started: the program runs with pid (err NULL), or could not be started
 * (pid 0, err says why: refused by the check, not found, exec failed).
 * exited: its wait status (as from waitpid); never for LAUNCH_DETACH or
 * when it did not start. After exited (or a failed start) the handle is
 * freed. Both run on the helper's loop. If the launcher dies, every
 * launch still running gets started (if not yet) with an error, or exited
 * with status -1. */
struct launch_cb {
	void (*started)(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg);
	void (*exited)(struct launch *l, int status, void *arg);
	void *arg;
};

/* Send the request; the callbacks report. Returns NULL with err set only for
 * requests that break the bounds of launch/wire.h or when the launcher is gone. */
struct launch *launch(const struct launch_req *req, const struct launch_cb *cb,
		      struct crisp_error *err);

/* Signal a launched, not yet reaped process (the launcher does it, so the pid
 * cannot have been reused). A no-op once it was reaped. */
void launch_kill(struct launch *l, int sig);

/* Forget the callbacks (the caller goes away); the process runs on and is
 * reaped by the launcher. */
void launch_detach(struct launch *l);

/* The launcher's pid, 0 before launcher_start: for logs and tests. */
pid_t launcher_pid(void);

/* What the helper does once its launcher is gone (it died, or sent garbage):
 * first every launch still running fails as described above, then fn(why)
 * runs on the loop. Without fn (the default) the helper logs why at crit
 * and exits 1, so that crispd restarts it with a fresh launcher: no helper
 * can work without one. */
void launcher_on_gone(void (*fn)(const char *why, void *arg), void *arg);

#endif
