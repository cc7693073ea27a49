/* The serving loop of a launcher (launch/serve.c): crisp-launch's whole job
 * once its argv is parsed, and that of the unit tests' own launcher
 * (tests/unit/test-launcher.c, which execs itself as its launcher).
 * docs/PRIVSEP.md ("The launcher") is the review guide. */
#ifndef CRISP_LAUNCH_SERVE_H
#define CRISP_LAUNCH_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "launch/wire.h"

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

/* 0 if the table can be served: every entry named (uniquely), with a path
 * and a check; else -1 with why filled. */
int launcher_table_check(const struct launcher_program *progs, size_t n, char *why, size_t whylen);

/* One packet from the helper, decoded and checked against the wire's
 * bounds (launch/wire.h): what the serving loop acts on. The strings are
 * copies, NUL-terminated; the stdio fds are the packet's own. */
struct launch_request {
	struct launch_hdr hdr;
	/* LAUNCH_MSG_START */
	char *program;
	char *file;              /* NULL when the request names none */
	char **argv, **envp;     /* NULL-terminated; argv[0] is always there */
	unsigned flags;          /* enum launch_flags */
	int stdio[LAUNCH_STDIO]; /* one of the packet's fds, or -1: /dev/null */
	/* LAUNCH_MSG_KILL */
	int signal;
};

/* Decodes the packet buf of len bytes, which came with the nfds fds of fds
 * (one more than LAUNCH_STDIO tells too many): 0 with *ret filled (free it
 * with launch_request_free), or -1 with why filled and *ret untouched when
 * the packet breaks the protocol, which ends the launcher. Only what needs
 * no state of the launcher's: whether a START's id is in use is the serving
 * loop's to check. Has no side effect, so that tests/fuzz/fuzz-launch-serve.c
 * can feed it anything. */
int launch_request_parse(const uint8_t *buf, size_t len, const int *fds, unsigned nfds,
			 struct launch_request *ret, char *why, size_t whylen);
void launch_request_free(struct launch_request *req);

/* Become the launcher of the helper whose socket is on LAUNCH_SOCKET_FD:
 * default signals, only fds 0-3 kept, cwd /, the table opened; then serve
 * until the helper goes away. The table must have passed
 * launcher_table_check. Never returns, and never calls exit(), only
 * _exit(). */
_noreturn_ void launcher_serve(const struct launcher_program *progs, size_t n);

#endif
