/* crisp-pause: the pod sandbox's process, holding its namespaces.
 *
 * It is pid 1 of the pod's pid namespace when the pod shares one, so it
 * reaps every orphan that is reparented to it; SIGINT and SIGTERM end it
 * with status 0 (a pid 1 gets no default action for signals it does not
 * handle, so it must handle them itself). It prints nothing and reads
 * nothing. When it is not pid 1 (a pod without a shared pid namespace, or
 * a test) it behaves the same: reaping its own children does no harm.
 *
 * Run without --id as its first argument (as /pause in a runc container,
 * whatever arguments follow) it is just that. Run with --id first it is
 * first its own runtime: runtimed's launcher
 * starts it detached, as root with every capability and no filter, and it
 * builds the sandbox runc would have built for it, minus what a process
 * that only sleeps does not need (no /proc, /dev or /sys, no devices
 * cgroup rules, no seccomp):
 *
 *   crisp-pause --id ID --rootfs DIR --uid N --gid N --oom-score-adj N
 *               ([--userns PATH] --netns PATH | --host-net) --ipc new|host --uts new|host
 *               --pid new|host [--hostname NAME] [--cgroup DIR]...
 *               [--sysctl NAME=VALUE]...
 *
 * Parent, still root: join each --cgroup (absolute directories runtimed
 * made, one per hierarchy), set oom_score_adj, setns into the pod's user
 * namespace (--userns, hostUsers: false: netd's pin; from here on it is
 * root of that namespace only, and everything it makes belongs to it),
 * setns into the netns, unshare ipc, uts and pid as asked, set the
 * hostname, write the sysctls (namespaced ones only: they apply to the
 * namespaces just entered), fork.
 * Child (pid 1 of the new pid namespace): its own mount namespace, / made
 * private, --rootfs bound read-only onto itself and pivoted into, the old
 * root detached; stdio on /dev/null; then the bounding set, ambient,
 * supplementary groups, gid, uid, every capability set cleared and
 * no_new_privs. It reports on a pipe: nothing (EOF) is success, else the
 * failed step. The parent then writes ONE line on stdout (a pipe to
 * runtimed) and exits:
 *
 *   {"pid": N, "start": S}   N the child's host pid, S its /proc starttime
 *   {"error": "<step>: <why>"}
 *
 * No seccomp filter: the pause process that runs the loop has no
 * capability in any set, no_new_privs, a non-root uid (what the pod asks,
 * 65535 by default) and a read-only root holding only its own binary; a
 * filter would add little, and the argv is checked by the launcher
 * (launch/check_runtimed.c) before this runs.
 *
 * Static and built -Os: it runs from a rootfs that holds only itself. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#define PAUSE_CGROUPS_MAX 32
#define PAUSE_SYSCTLS_MAX 64

static int pause_loop(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	/* Blocked and taken with sigwait: no handler runs, nothing races. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return 1;
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGINT || sig == SIGTERM)
			return 0;
		/* SIGCHLD: one signal may stand for many exits */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

/* --- setup mode ----------------------------------------------------------- */

struct opts {
	const char *rootfs, *userns, *netns, *hostname;
	bool host_net, new_ipc, new_uts, new_pid;
	long uid, gid, oom;
	const char *cgroups[PAUSE_CGROUPS_MAX];
	int ncgroups;
	const char *sysctls[PAUSE_SYSCTLS_MAX];
	int nsysctls;
};

static char errbuf[512];

/* Fill errbuf with "<what>: <strerror>" (errnum 0: what alone); -1. */
static int fail(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	if (errnum && n >= 0 && (size_t)n < sizeof(errbuf))
		snprintf(errbuf + n, sizeof(errbuf) - (size_t)n, ": %s", strerror(errnum));
	return -1;
}

static int parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

static int parse_mode(const char *opt, const char *v, bool *ret_new)
{
	if (strcmp(v, "new") == 0)
		*ret_new = true;
	else if (strcmp(v, "host") == 0)
		*ret_new = false;
	else
		return fail(0, "%s: '%.32s' is neither new nor host", opt, v);
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	bool have_ipc = false, have_uts = false, have_pid = false;

	memset(o, 0, sizeof(*o));
	o->uid = o->gid = -1;
	o->oom = LONG_MIN;
	for (int i = 1; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(k, "--host-net") == 0) {
			o->host_net = true;
			i--;
			continue;
		}
		if (!v)
			return fail(0, "%.32s: a value is missing", k);
		if (strcmp(k, "--id") == 0) {
			/* names the sandbox for the launcher's check and ps */
		} else if (strcmp(k, "--rootfs") == 0) {
			o->rootfs = v;
		} else if (strcmp(k, "--userns") == 0) {
			o->userns = v;
		} else if (strcmp(k, "--netns") == 0) {
			o->netns = v;
		} else if (strcmp(k, "--hostname") == 0) {
			o->hostname = v;
		} else if (strcmp(k, "--uid") == 0) {
			if (parse_long(v, 0, 0x7fffffff, &o->uid) < 0)
				return fail(0, "--uid '%.32s' is not a uid", v);
		} else if (strcmp(k, "--gid") == 0) {
			if (parse_long(v, 0, 0x7fffffff, &o->gid) < 0)
				return fail(0, "--gid '%.32s' is not a gid", v);
		} else if (strcmp(k, "--oom-score-adj") == 0) {
			if (parse_long(v, -1000, 1000, &o->oom) < 0)
				return fail(0, "--oom-score-adj '%.32s' is not in -1000..1000", v);
		} else if (strcmp(k, "--ipc") == 0) {
			if (parse_mode(k, v, &o->new_ipc) < 0)
				return -1;
			have_ipc = true;
		} else if (strcmp(k, "--uts") == 0) {
			if (parse_mode(k, v, &o->new_uts) < 0)
				return -1;
			have_uts = true;
		} else if (strcmp(k, "--pid") == 0) {
			if (parse_mode(k, v, &o->new_pid) < 0)
				return -1;
			have_pid = true;
		} else if (strcmp(k, "--cgroup") == 0) {
			if (o->ncgroups == PAUSE_CGROUPS_MAX || v[0] != '/')
				return fail(0, "--cgroup '%.64s': not absolute, or more than %d", v,
					    PAUSE_CGROUPS_MAX);
			o->cgroups[o->ncgroups++] = v;
		} else if (strcmp(k, "--sysctl") == 0) {
			if (o->nsysctls == PAUSE_SYSCTLS_MAX)
				return fail(0, "more than %d --sysctl", PAUSE_SYSCTLS_MAX);
			o->sysctls[o->nsysctls++] = v;
		} else {
			return fail(0, "unknown option '%.32s'", k);
		}
	}
	if (!o->rootfs || o->rootfs[0] != '/' || o->uid < 0 || o->gid < 0 || o->oom == LONG_MIN ||
	    !have_ipc || !have_uts || !have_pid || (!o->netns == !o->host_net))
		return fail(0, "need --rootfs, --uid, --gid, --oom-score-adj, --ipc, --uts, "
			       "--pid and one of --netns or --host-net");
	/* a user namespace goes with a netns it owns (netd made both) and
	 * namespaces of the pod's own, which the pause makes inside it */
	if (o->userns && (!o->netns || !o->new_ipc || !o->new_uts))
		return fail(0, "--userns needs --netns, --ipc new and --uts new");
	if (o->hostname && (!o->new_uts || strlen(o->hostname) > 64))
		return fail(0, "--hostname needs --uts new and at most 64 bytes");
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;
	int e;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* The sysctls kubelet calls namespaced (and so safe for a pod to set), each
 * tied to the namespace it lives in; anything else is refused, whatever
 * asked for it. */
static bool sysctl_allowed(const char *name, const struct opts *o)
{
	static const char *const ipc_prefixes[] = { "kernel.shm", "kernel.msg", "fs.mqueue." };

	if (strncmp(name, "net.", 4) == 0)
		return !o->host_net;
	if (strcmp(name, "kernel.sem") == 0)
		return o->new_ipc;
	for (size_t i = 0; i < sizeof(ipc_prefixes) / sizeof(ipc_prefixes[0]); i++)
		if (strncmp(name, ipc_prefixes[i], strlen(ipc_prefixes[i])) == 0)
			return o->new_ipc;
	return false;
}

static int apply_sysctl(const char *kv, const struct opts *o)
{
	char path[320] = "/proc/sys/";
	const char *eq = strchr(kv, '=');
	size_t n = eq ? (size_t)(eq - kv) : 0;

	if (!eq || n == 0 || n > 256 ||
	    strspn(kv, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n ||
	    strstr(kv, "..") || kv[0] == '.' || kv[n - 1] == '.')
		return fail(0, "sysctl '%.64s': not NAME=VALUE with a plain name", kv);
	memcpy(path + 10, kv, n);
	path[10 + n] = '\0';
	if (!sysctl_allowed(path + 10, o))
		return fail(0, "sysctl %s: not a namespaced sysctl of a namespace this pod owns",
			    path + 10);
	for (char *p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	if (write_str(path, eq + 1) < 0)
		return fail(errno, "sysctl %.256s: writing %s", kv, path);
	return 0;
}

/* setns into the namespace pinned at path, checked to be of that type
 * (setns with a type refuses any other: EINVAL). */
static int join_ns(const char *path, int type, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), e;

	if (fd < 0)
		return fail(errno, "opening %s %s", what, path);
	if (setns(fd, type) < 0) {
		e = errno;
		close(fd);
		return fail(e, "setns into %s %s", what, path);
	}
	close(fd);
	return 0;
}

/* Parent steps, as root: they need CAP_SYS_ADMIN (setns, unshare,
 * sethostname, cgroup moves) and write files of the host. */
static int enter(const struct opts *o)
{
	char pid[32];
	int flags = 0, fd;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (int i = 0; i < o->ncgroups; i++) {
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "%s/cgroup.procs", o->cgroups[i]) >=
		    (int)sizeof(path))
			return fail(0, "cgroup %.64s: path too long", o->cgroups[i]);
		if (write_str(path, pid) < 0)
			return fail(errno, "joining cgroup %s", o->cgroups[i]);
	}
	/* Still root of the host: cgroupfs files and oom_score_adj below
	 * our own value (CAP_SYS_RESOURCE) are the host's to grant, and no
	 * capability of the host's is left once in the pod's user namespace. */
	snprintf(pid, sizeof(pid), "%ld", o->oom);
	if (write_str("/proc/self/oom_score_adj", pid) < 0)
		return fail(errno, "oom_score_adj %ld", o->oom);
	/* Not dumpable before the pod's user namespace: its owner is the
	 * host's uid 0, so until our ids change every uid 0 process of the
	 * host, however confined, would pass the ptrace check on us, and
	 * /proc/<pid>/root would hand it the host's root. */
	if (o->userns && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(errno, "PR_SET_DUMPABLE");
	if (o->userns && join_ns(o->userns, CLONE_NEWUSER, "user namespace") < 0)
		return -1;
	if (o->netns) {
		fd = open(o->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(errno, "opening netns %s", o->netns);
		if (setns(fd, CLONE_NEWNET) < 0) {
			int e = errno;
			close(fd);
			return fail(e, "setns into %s", o->netns);
		}
		close(fd);
	}
	flags |= o->new_ipc ? CLONE_NEWIPC : 0;
	flags |= o->new_uts ? CLONE_NEWUTS : 0;
	flags |= o->new_pid ? CLONE_NEWPID : 0;
	if (flags && unshare(flags) < 0)
		return fail(errno, "unshare(ipc %d, uts %d, pid %d)", o->new_ipc, o->new_uts,
			    o->new_pid);
	if (o->hostname && sethostname(o->hostname, strlen(o->hostname)) < 0)
		return fail(errno, "sethostname %s", o->hostname);
	for (int i = 0; i < o->nsysctls; i++)
		if (apply_sysctl(o->sysctls[i], o) < 0)
			return -1;
	return 0;
}

/* The child's root: a read-only bind of rootfs, pivoted into, the host's
 * tree detached, in a mount namespace of its own. */
static int enter_rootfs(const char *rootfs)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fail(errno, "unshare(mount)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(errno, "making / private");
	if (mount(rootfs, rootfs, NULL, MS_BIND, NULL) < 0)
		return fail(errno, "binding %s", rootfs);
	if (mount(NULL, rootfs, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
		  NULL) < 0)
		return fail(errno, "remounting %s read-only", rootfs);
	if (chdir(rootfs) < 0)
		return fail(errno, "chdir %s", rootfs);
	/* pivot_root(".", "."): the old root ends up on top of the new one,
	 * and is detached right away */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(errno, "pivot_root into %s", rootfs);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(errno, "detaching the old root");
	if (chdir("/") < 0)
		return fail(errno, "chdir /");
	return 0;
}

/* Every capability set empty, bounding and ambient too, and never any more
 * (no_new_privs): the order is bounding (needs CAP_SETPCAP), groups, gid,
 * uid (needs CAP_SETUID/SETGID), then the sets. */
static int drop_privileges(const struct opts *o)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return fail(errno, "dropping capability %d from the bounding set", cap);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(errno, "clearing the ambient set");
	if (setgroups(0, NULL) < 0)
		return fail(errno, "setgroups");
	if (setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) < 0)
		return fail(errno, "setresgid %ld", o->gid);
	if (setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) < 0)
		return fail(errno, "setresuid %ld", o->uid);
	/* a uid 0 pod keeps its sets across setresuid: clear them all */
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(errno, "clearing the capability sets");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(errno, "no_new_privs");
	return 0;
}

static void child(const struct opts *o, int report)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0) {
		fail(errno, "opening /dev/null");
	} else if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
		fail(errno, "stdio on /dev/null");
	} else if (enter_rootfs(o->rootfs) == 0 && drop_privileges(o) == 0) {
		/* EOF on the report pipe is the success */
		close(null);
		close(report);
		_exit(pause_loop());
	}
	if (write(report, errbuf, strlen(errbuf)) < 0) {
		/* the parent reports the silence as an unexplained failure */
	}
	_exit(1);
}

/* /proc/<pid>/stat field 22, 0 when unreadable. */
static unsigned long long starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* after the ")" that ends comm: field 3 onwards; 22 is the 20th */
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p && sscanf(p + 1, "%llu", &v) != 1)
		v = 0;
	return v;
}

/* JSON string body: what an error message may hold, escaped. */
static void report_error(void)
{
	char line[sizeof(errbuf) * 2 + 32], *w = line;

	w += sprintf(w, "{\"error\": \"");
	for (const char *r = errbuf; *r; r++) {
		if (*r == '"' || *r == '\\')
			*w++ = '\\';
		*w++ = (unsigned char)*r < 0x20 ? ' ' : *r;
	}
	strcpy(w, "\"}\n");
	if (write(STDOUT_FILENO, line, strlen(line)) < 0) {
		/* runtimed is gone; it finds no pause and fails the start */
	}
}

static int setup(int argc, char **argv)
{
	struct opts o;
	char line[96];
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	/* runtimed gone: the sync write fails with EPIPE and the child is
	 * killed below, rather than this process dying of SIGPIPE and leaving
	 * a pause nobody knows of */
	signal(SIGPIPE, SIG_IGN);
	if (parse_opts(argc, argv, &o) < 0 || enter(&o) < 0) {
		report_error();
		return 1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fail(errno, "pipe");
		report_error();
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		fail(errno, "fork");
		report_error();
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		child(&o, pfd[1]);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], errbuf, sizeof(errbuf) - 1)) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n != 0) {
		errbuf[n > 0 ? n : 0] = '\0';
		if (n < 0)
			fail(errno, "reading the child's report");
		waitpid(pid, &status, 0);
		report_error();
		return 1;
	}
	snprintf(line, sizeof(line), "{\"pid\": %d, \"start\": %llu}\n", (int)pid, starttime(pid));
	if (write(STDOUT_FILENO, line, strlen(line)) < 0) {
		/* runtimed is gone: its recovery never learns of this pause,
		 * so it must not live on */
		kill(pid, SIGKILL);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* Only runtimed's launcher starts it with --id first. Other arguments
	 * are ignored, as they always were: an image may give the pause a Cmd
	 * (containerd runs Entrypoint + Cmd). */
	if (argc > 1 && strcmp(argv[1], "--id") == 0)
		return setup(argc, argv);
	return pause_loop();
}
