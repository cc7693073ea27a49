/* The frontend's confinement. It parses every untrusted byte from the CRI
 * socket, so it holds nothing worth stealing: no capabilities, its own
 * unprivileged uid, an empty root directory, no_new_privs, and a seccomp
 * allowlist of what gRPC, libevent and ipc/ need once serving.
 *
 * The list was traced (strace -f -c after the filter was loaded, and a
 * --enable-seccomp-debug build) while serving 4000 calls on 8 connections,
 * garbage and refused connections, helpers dying and coming back, and a
 * SIGTERM shutdown with a call parked on a helper.
 * Deliberately absent: execve, socket/bind/connect (connections come from
 * accept4 on crispd's socket, channels from crispd by SCM_RIGHTS), anything
 * that changes ids, mounts or namespaces. Opening files fails with EACCES
 * instead of killing (below). */
#include "autoconfig.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include "common/log.h"
#include "common/util.h"
#include "frontend/frontend.h"

static const int frontend_syscalls[] = {
	/* accepting clients and reading who they are (SO_PEERCRED) */
	SCMP_SYS(accept4),
	SCMP_SYS(getsockopt),
	/* gRPC's transport on each connection: socket options (TCP_INQ and
	 * the like, refused by unix sockets), its local name, and closing */
	SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname),
	SCMP_SYS(shutdown),
	/* gRPC checks the kernel version once, for socket error queues */
	SCMP_SYS(uname),
	/* gRPC grows its thread pools on demand (policy.threads: clone for
	 * threads only), and asks about their scheduling */
	SCMP_SYS(sched_getparam),
	SCMP_SYS(sched_getscheduler),
	SCMP_SYS(sched_yield),
	/* how glibc counts CPUs once /sys cannot be opened (see below) */
	SCMP_SYS(sched_getaffinity),
	/* the streaming server: libevent reads sockets and pipes with readv */
	SCMP_SYS(readv),
	/* an attach session's stream to the engine (stream_backend.c) */
	SCMP_SYS(socketpair),
};

void frontend_sandbox_policy(struct sandbox_policy *p, uid_t uid, gid_t gid, const char *chroot_dir)
{
	*p = (struct sandbox_policy){
		.name = "frontend",
		.caps = NULL,
		.ncaps = 0,
		.change_id = true,
		.uid = uid,
		.gid = gid,
		.chroot_dir = chroot_dir,
		.workdir = "/",
		.no_new_privs = true,
		/* It signals nothing (no kill in the filter; F_SETOWN through
		 * fcntl is what scoping adds) and has no socket or connect.
		 * Before fe_server_init: gRPC's threads start inside. */
		.landlock_scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
		.threads = true,
		.max_files = 0, /* crispd's limit: enough for the kubelet's few connections */
		.syscalls = frontend_syscalls,
		.nsyscalls = ARRAY_SIZE(frontend_syscalls),
	};
}

/* Some libraries initialise lazily, on whichever thread first needs it, which
 * may be long after the filter is loaded: glibc's malloc reads
 * /sys/devices/system/cpu/online when threads need a new arena, absl reads
 * /sys/devices/system/cpu/cpu0/tsc_freq_khz for its cycle clock. Both cope
 * with a failed open. Nothing could be opened anyway (the root is empty), so
 * these fail with EACCES rather than kill the process over a fallback path. */
static const int frontend_refused[] = { SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2) };

void frontend_sandbox_rules(scmp_filter_ctx filter)
{
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(frontend_refused); i++) {
		if (frontend_refused[i] < 0) /* not on this architecture */
			continue;
		r = seccomp_rule_add(filter, SCMP_ACT_ERRNO(EACCES), frontend_refused[i], 0);
		if (r < 0)
			fatal("frontend: seccomp rule for syscall %d: %s", frontend_refused[i],
			      strerror(-r));
	}
	/* The streaming server: libevent asks how much a socket or pipe
	 * holds before reading it. */
	r = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	if (r < 0)
		fatal("frontend: seccomp rule for ioctl: %s", strerror(-r));
	/* A tty exec's size, set on its pty master (runtimed passes it on). */
	r = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, TIOCSWINSZ));
	if (r < 0)
		fatal("frontend: seccomp rule for ioctl: %s", strerror(-r));
	/* gRPC names its threads. Nothing else of prctl: PR_SET_DUMPABLE
	 * would let processes of our uid read our memory again. */
	r = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			     SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	if (r < 0)
		fatal("frontend: seccomp rule for prctl: %s", strerror(-r));
}
