/* crisp-monitor's internals, shared by runtimed/monitor.c (start, create,
 * the loop, the exit) and runtimed/monitor_ctl.c (the control socket). Not
 * part of the contract with runtimed: that is runtimed/monitor.h. */
#ifndef CRISP_RUNTIMED_MONITOR_INT_H
#define CRISP_RUNTIMED_MONITOR_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtimed/monitor.h"
#include "runtimed/monitor_log.h"

#define MAX_CLIENTS MONITOR_CLIENTS_MAX
#define REAPED_CACHE 32
#define DRAIN_MS 2000
#define CONSOLE_SOCKET MONITOR_CONSOLE_SOCKET
#define RUNTIME_LOG MONITOR_RUNTIME_LOG

struct options {
	const char *id, *bundle, *runtime, *runtime_root, *log, *exit_file, *cgroup_parent;
	bool stdin_open, stdin_once, tty;
	size_t log_max;
};

struct client {
	int fd; /* -1: free */
	bool attached;
};

struct reaped {
	pid_t pid;
	int status;
};

struct monitor {
	struct options opt;
	int bundle_fd;
	int sigfd;
	int ctl_fd;       /* listening control socket */
	int console_fd;   /* listening console socket (--tty), until create */
	int out_fd[2];    /* stdout, stderr read ends; tty: the master in [0] */
	int in_fd;        /* stdin write end (or a dup of the master), -1 */
	char *in_pending; /* stdin bytes the pipe did not take yet */
	size_t in_len, in_off;
	pid_t runtime_pid, init_pid;
	int runtime_status, init_status;
	bool runtime_done, init_done;
	uint64_t finished_at; /* unix ns */
	uint64_t drain_deadline;
	int oom_fd; /* memory.oom_control (v1) or memory.events (v2), -1 */
	uint64_t oom_start;
	struct reaped reaped[REAPED_CACHE]; /* exits before init_pid was known */
	size_t nreaped;
	struct client clients[MAX_CLIENTS];
	struct log_writer log;
	char ctl_path[PATH_MAX];
	char console_path[PATH_MAX]; /* where we bound it */
	char console_arg[PATH_MAX];  /* what the runtime connects to */
#ifdef CRISP_TEST_HOOKS
	/* the test-monitor-v1 hook: behave as a monitor of an older crisp,
	 * which knew "reopen" only (monitor_sandbox.c) */
	bool test_monitor_v1;
#endif
};

/* One monitor per process: its state is this global. */
extern struct monitor m;
/* The one read buffer: output chunks, control packets. */
extern char iobuf[MONITOR_PACKET_MAX];

/* monitor_ctl.c */
void client_accept(void);
/* Reads one packet of a client and acts on it. */
void client_request(struct client *c);
/* Copies a chunk of output ('1' stdout, '2' stderr) to the attach clients. */
void broadcast(char stream, const char *data, size_t len);
/* Writes stdin bytes held back while the pipe was full. */
void stdin_flush(void);

/* monitor_sandbox.c: Landlock and the seccomp filter, once the container
 * is created (the caller has dropped every capability and set
 * no_new_privs). False: a step failed, and no filter is loaded. */
bool confine(void);
/* The kernel has no Landlock (not built in, or disabled at boot): the
 * monitor then confines itself with the filter alone, and says so on the
 * sync line ("landlock": false) for runtimed to warn about. */
bool landlock_missing(void);

#endif
