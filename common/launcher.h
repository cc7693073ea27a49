/* The launcher: the one unfiltered process on a request path.
 *
 * seccomp filters, no_new_privs and the bounding set are inherited across
 * execve, so a sandboxed helper cannot run runc or CNI plugins itself (and
 * containers must get the policy their pod asks for, not the helper's).
 * netd and runtimed therefore fork a launcher before they drop privilege
 * (launcher_start). It keeps root, installs no filter, shares nothing with
 * its helper but a socketpair, and serves one typed request, LAUNCH: run a
 * program from a table fixed at start, with an argv and environment that the
 * program's own check function accepts, on at most three stdio fds. It
 * answers with the pid and later the exit status, executes nothing else,
 * opens no file on request, and exits when its helper goes away.
 * docs/PRIVSEP.md ("The launcher") is the review guide. */
#ifndef CRISP_COMMON_LAUNCHER_H
#define CRISP_COMMON_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#include "common/error.h"

/* Bounds of one request, checked on both sides. */
#define LAUNCH_ARGS_MAX 64
#define LAUNCH_ENV_MAX 64
#define LAUNCH_STRING_MAX 4096

/* Checks a request for one program, in the launcher, before the fork:
 * returns 0 to run it, or -1 with why filled ("runc: unknown subcommand
 * 'foo'"). argv[0] is the program's name as the caller gave it. */
typedef int (*launch_check_fn)(const char *file, char *const argv[], char *const envp[], char *why,
			       size_t whylen);

struct launcher_program {
	const char *name; /* what requests call it: "runc", "monitor", "cni" */
	/* A program: its absolute path, opened O_PATH at launcher start and
	 * run with execveat, so no later rename can swap it. A directory
	 * list (dir true): "dir1:dir2", searched in order at each request for
	 * the file the request names (a plain file name, no '/'), which lets
	 * CNI plugins be installed after crisp started. */
	const char *path;
	bool dir;
	launch_check_fn check; /* never NULL */
};

/* Fork the launcher. Call before the sandbox, while root with every
 * capability; the table (and everything it points to) must stay valid in the
 * caller, since the launcher keeps a copy-on-write image of it. Returns 0 in
 * the helper; the launcher never returns. */
int launcher_start(const struct launcher_program *progs, size_t n, struct crisp_error *err);

/* Bind the helper side to its event loop (after launcher_start). */
void launcher_attach(struct event_base *base);

enum launch_flags {
	/* Run it detached: the launcher double-forks, the program gets its own
	 * session, is not its child and so outlives launcher, helper and
	 * crispd. Only its start is reported (pid of the detached process);
	 * its exit is not. For the per-container monitor. */
	LAUNCH_DETACH = 0x1,
};

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
 * requests that break the bounds above or when the launcher is gone. */
struct launch *launch(const struct launch_req *req, const struct launch_cb *cb,
		      struct crisp_error *err);

/* Signal a launched, not yet reaped process (the launcher does it, so the pid
 * cannot have been reused). A no-op once it was reaped. */
void launch_kill(struct launch *l, int sig);

/* Forget the callbacks (the caller goes away); the process runs on and is
 * reaped by the launcher. */
void launch_detach(struct launch *l);

/* Additions (not in the first version of this header). */

/* At most this many launched programs run (not LAUNCH_DETACH, not yet
 * reaped) at once; more are refused with CRISP_E_RESOURCE. */
#define LAUNCH_RUNNING_MAX 1024

/* The launcher's pid, 0 before launcher_start: for logs and tests. */
pid_t launcher_pid(void);

/* What the helper does once its launcher is gone (it died, or sent garbage):
 * first every launch still running fails as described above, then fn(why)
 * runs on the loop. Without fn (the default) the helper logs why at crit
 * and exits 1, so that crispd restarts it with a fresh launcher: no helper
 * can work without one. */
void launcher_on_gone(void (*fn)(const char *why, void *arg), void *arg);

#endif
