#include "autoconfig.h"

#include <cap-ng.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/landlock.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"

/* What any crisp process does once it runs its loop: libevent (epoll), ipc
 * (sendmsg/recvmsg with SCM_RIGHTS), timers, memory, logging to stderr, and
 * exiting. Nothing here opens files, creates sockets, changes ids, mounts or
 * executes programs. */
const int sandbox_base_syscalls[] = {
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(writev),
	SCMP_SYS(close),
	SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg),
	SCMP_SYS(sendto),
	SCMP_SYS(recvfrom),
	SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	SCMP_SYS(pipe2),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(getppid),
	SCMP_SYS(brk),
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	SCMP_SYS(mprotect),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(futex),
	SCMP_SYS(getrandom),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(newfstatat),
	SCMP_SYS(fstat),
	SCMP_SYS(lseek),
};
const size_t sandbox_base_nsyscalls = ARRAY_SIZE(sandbox_base_syscalls);

#ifdef CRISP_SECCOMP_DEBUG
#include <ucontext.h>
/* Debug builds trap instead of killing, log the syscall by name and make it
 * fail with ENOSYS, so one run lists everything a policy is missing. The
 * names are resolved before the filter is loaded: the handler itself must
 * not allocate (malloc may be the very call that trapped). */
#define DEBUG_MAX_SYSCALL 512
static char *debug_names[DEBUG_MAX_SYSCALL];

static void debug_names_init(void)
{
	for (int i = 0; i < DEBUG_MAX_SYSCALL; i++)
		if (!debug_names[i])
			debug_names[i] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char buf[160];
	int nr = si->si_syscall;
	const char *name = nr >= 0 && nr < DEBUG_MAX_SYSCALL && debug_names[nr] ? debug_names[nr]
										: "?";
	int n = snprintf(buf, sizeof(buf), "<3>crisp[%d]: seccomp: forbidden syscall %s (%d)\n",
			 (int)getpid(), name, nr);
	(void)!write(STDERR_FILENO, buf, n);
#if defined(__x86_64__)
	((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	((ucontext_t *)ctx)->uc_mcontext.regs[0] = -ENOSYS;
#endif
}
#endif

/* Threads only: no fork, no new namespaces (a uid 0 without CAP_SYS_ADMIN
 * could still make a user namespace and be root in it). clone3 keeps its
 * flags in memory where seccomp cannot look, so it fails with ENOSYS, which
 * glibc answers by using clone, whose flags a filter can see. */
static void allow_threads(const struct sandbox_policy *p, scmp_filter_ctx ctx)
{
	const uint64_t forbidden = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
				   CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
	int r;

	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r == 0)
		r = seccomp_rule_add(
			ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | forbidden, CLONE_THREAD));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(set_robust_list), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rseq), 0);
	if (r < 0)
		fatal("%s: seccomp rules for threads: %s", p->name, strerror(-r));
}

/* fcntl, but not F_SETOWN, F_SETOWN_EX or F_SETSIG: a file owned by a
 * process (F_SETOWN) sends it SIGIO, or the signal F_SETSIG names, and the
 * kernel lets an owner of euid 0 signal any process so, without CAP_KILL
 * (sigio_perm()). No crisp process needs them; they fail with EPERM. On
 * Linux 6.12 and later the Landlock signal scope (landlock_scope) stops the
 * signal too; this holds on every kernel.
 *
 * The kernel reads cmd as 32 bits, so every rule compares only those
 * (MASKED_EQ): a range rule (cmd > 15) would also pass F_SETOWN with high
 * bits set. So the other commands are listed, every one Linux has; an
 * unknown one is as any syscall outside the filter. */
static void allow_fcntl(const struct sandbox_policy *p, scmp_filter_ctx ctx)
{
	static const unsigned allowed[] = {
		F_DUPFD,
		F_GETFD,
		F_SETFD,
		F_GETFL,
		F_SETFL,
		F_GETLK,
		F_SETLK,
		F_SETLKW,
		F_GETOWN,
		F_GETSIG,
		F_GETOWN_EX,
		12,
		13,
		14, /* F_GETLK64, F_SETLK64, F_SETLKW64 (32-bit ABIs) */
		17, /* F_GETOWNER_UIDS */
		F_OFD_GETLK,
		F_OFD_SETLK,
		F_OFD_SETLKW,
		F_SETLEASE,
		F_GETLEASE,
		F_NOTIFY,
		1027, /* F_DUPFD_QUERY */
		1028, /* F_CREATED_QUERY */
		1029, /* F_CANCELLK */
		F_DUPFD_CLOEXEC,
		F_SETPIPE_SZ,
		F_GETPIPE_SZ,
		F_ADD_SEALS,
		F_GET_SEALS,
		F_GET_RW_HINT,
		F_SET_RW_HINT,
		F_GET_FILE_RW_HINT,
		F_SET_FILE_RW_HINT,
	};
	static const unsigned refused[] = { F_SETOWN, F_SETSIG, F_SETOWN_EX };
	int r = 0;

	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(allowed); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				     SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, allowed[i]));
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(refused); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
				     SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xffffffffu, refused[i]));
	if (r < 0)
		fatal("%s: seccomp rules for fcntl: %s", p->name, strerror(-r));
}

scmp_filter_ctx sandbox_compile(const struct sandbox_policy *p)
{
#ifdef CRISP_SECCOMP_DEBUG
	uint32_t deflt = SCMP_ACT_TRAP;
#else
	uint32_t deflt = SCMP_ACT_KILL_PROCESS;
#endif
	scmp_filter_ctx ctx = seccomp_init(deflt);
	int r;

	if (!ctx)
		fatal("%s: seccomp_init failed", p->name);
	for (size_t i = 0; i < sandbox_base_nsyscalls; i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_base_syscalls[i], 0)) < 0)
			fatal("%s: seccomp rule for syscall %d: %s", p->name,
			      sandbox_base_syscalls[i], strerror(-r));
	for (size_t i = 0; i < p->nsyscalls; i++) {
		/* A syscall this architecture lacks (e.g. a legacy one) resolves
		 * to a negative pseudo-number that libseccomp may reject: skip. */
		if (p->syscalls[i] < 0)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, p->syscalls[i], 0)) < 0)
			fatal("%s: seccomp rule for syscall %d: %s", p->name, p->syscalls[i],
			      strerror(-r));
	}
	allow_fcntl(p, ctx);
	if (p->threads)
		allow_threads(p, ctx);
	/* gRPC's threads exist by the time the frontend locks: filter them all. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		fatal("%s: seccomp TSYNC: %s", p->name, strerror(-r));
	return ctx;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void mountinfo_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Detach every mount at or under one of dirs, newest first (mountinfo lists
 * mounts in the order they were made, so children after their parents). */
static void detach_mounts_under(const char *name, const char *const *dirs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char **points = NULL, *line = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		fatal("%s: /proc/self/mountinfo: %m", name);
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mp = NULL;

		/* id parent major:minor root mountpoint ... */
		strtok_r(line, " ", &save);
		for (int i = 0; i < 4; i++)
			mp = strtok_r(NULL, " ", &save);
		if (!mp)
			continue;
		mountinfo_unescape(mp);
		for (const char *const *d = dirs; *d; d++)
			if (path_under(mp, *d)) {
				points = xrealloc(points, (n + 1) * sizeof(*points));
				points[n++] = xstrdup(mp);
				break;
			}
	}
	free(line);
	fclose(f);
	while (n-- > 0) {
		if (umount2(points[n], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			fatal("%s: detaching %s: %m", name, points[n]);
		free(points[n]);
	}
	free(points);
}

static void readonly_host(const struct sandbox_policy *p)
{
	/* nodev too: read-only does not stop writes to a block device, and no
	 * crisp process with this policy needs a device node. */
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV |
					     MOUNT_ATTR_NOSUID };
	struct mount_attr rw = { .attr_clr = MOUNT_ATTR_RDONLY,
				 .attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID };

	if (unshare(CLONE_NEWNS) < 0)
		fatal("%s: unshare(CLONE_NEWNS): %m", p->name);
	/* Private both ways: nothing we do reaches the host, and what the host
	 * mounts later (pod volumes, say) never appears here writable. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fatal("%s: making / a private mount: %m", p->name);
	if (p->hidden_paths)
		detach_mounts_under(p->name, p->hidden_paths);
	if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
		fatal("%s: making / read-only: %m", p->name);
	for (const char *const *w = p->writable_paths; *w; w++) {
		if (mount(*w, *w, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount_setattr(AT_FDCWD, *w, AT_RECURSIVE, &rw, sizeof(rw)) < 0)
			fatal("%s: making %s writable: %m", p->name, *w);
	}
}

long sandbox_landlock_abi(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
}

void sandbox_landlock_attr_all(struct sandbox_landlock_attr *attr, long abi, bool tcp)
{
	*attr = (struct sandbox_landlock_attr){ 0 };
	/* ABI 1: every right up to MAKE_SYM */
	attr->handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
	if (abi >= 2)
		attr->handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr->handled_access_fs |= SANDBOX_LANDLOCK_FS_TRUNCATE;
	if (abi >= 4 && tcp)
		attr->handled_access_net = SANDBOX_LANDLOCK_NET_BIND_TCP |
					   SANDBOX_LANDLOCK_NET_CONNECT_TCP;
	if (abi >= 5)
		attr->handled_access_fs |= SANDBOX_LANDLOCK_FS_IOCTL_DEV;
	if (abi >= 6)
		attr->scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET;
}

/* From /proc/self/status, while it is still in sight (not after a chroot). */
static long thread_count(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long n = -1;

	if (!f)
		fatal("%s: /proc/self/status: %m", name);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Threads:", 8) == 0) {
			n = strtol(line + 8, NULL, 10);
			break;
		}
	fclose(f);
	if (n < 1)
		fatal("%s: cannot read its thread count", name);
	return n;
}

static const char *scope_names(uint64_t scoped)
{
	switch (scoped) {
	case SANDBOX_SCOPE_SIGNAL:
		return "signals";
	case SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET:
		return "abstract unix sockets";
	default:
		return "signals and abstract unix sockets";
	}
}

/* A ruleset that handles no file-system or network access (nothing else
 * changes) and only scopes. Older kernels: said once, at start, and the
 * process runs with its seccomp filter alone, as before Linux 6.12. */
static void landlock_scope(const struct sandbox_policy *p)
{
	struct sandbox_landlock_attr attr = { .scoped = p->landlock_scoped };
	long abi = sandbox_landlock_abi();
	int ruleset;

	if (abi < 1) {
		log_warn("%s: Landlock unavailable (%m): %s to processes outside %s are not "
			 "blocked",
			 p->name, scope_names(p->landlock_scoped), p->name);
		return;
	}
	if (abi < 6) {
		log_warn("%s: kernel Landlock ABI %ld, scoping needs 6 (Linux 6.12): %s to "
			 "processes outside %s are not blocked",
			 p->name, abi, scope_names(p->landlock_scoped), p->name);
		return;
	}
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		fatal("%s: Landlock scope ruleset: %m", p->name);
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		fatal("%s: Landlock scopes: %m", p->name);
	close(ruleset);
	log_debug("%s: Landlock scopes %s to its own children", p->name,
		  scope_names(p->landlock_scoped));
}

void sandbox_enter(const struct sandbox_policy *p)
{
	/* A thread that exists before landlock_restrict_self stays outside
	 * the domain, and so unscoped. */
	if (p->landlock_scoped && thread_count(p->name) != 1)
		fatal("%s: threads started before the sandbox: Landlock would not scope them",
		      p->name);
	if (p->writable_paths)
		readonly_host(p);
	if (p->chroot_dir) {
		if (chroot(p->chroot_dir) < 0)
			fatal("%s: chroot %s: %m", p->name, p->chroot_dir);
		if (chdir("/") < 0)
			fatal("%s: chdir / in chroot: %m", p->name);
	}
	if (p->workdir && chdir(p->workdir) < 0)
		fatal("%s: chdir %s: %m", p->name, p->workdir);

	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < p->ncaps; i++)
		if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				 p->caps[i]) < 0)
			fatal("%s: capng_update %d failed", p->name, p->caps[i]);
	if (p->change_id) {
		/* Clears the bounding set, drops supplementary groups, sets
		 * gid then uid, and applies the (empty or minimal) sets. */
		int r = capng_change_id((int)p->uid, (int)p->gid,
					CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
		if (r < 0)
			fatal("%s: changing to uid %u gid %u failed (%d)", p->name, p->uid, p->gid,
			      r);
		if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
		    getegid() != p->gid)
			fatal("%s: ids did not change", p->name);
		if (p->uid != 0 && setuid(0) == 0)
			fatal("%s: could regain root after dropping it", p->name);
		/* Changing credentials clears the parent-death signal. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	} else if (capng_apply(CAPNG_SELECT_ALL) < 0) {
		fatal("%s: applying capabilities failed", p->name);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fatal("%s: clearing ambient capabilities: %m", p->name);

	struct rlimit core = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &core) < 0) /* no core dumps of our memory */
		fatal("%s: RLIMIT_CORE: %m", p->name);
	if (p->max_files) {
		struct rlimit nofile = { p->max_files, p->max_files };
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			fatal("%s: RLIMIT_NOFILE: %m", p->name);
	}
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("%s: no_new_privs: %m", p->name);
	/* Not dumpable: other processes of the same uid cannot ptrace or read
	 * our memory through /proc. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("%s: PR_SET_DUMPABLE: %m", p->name);
	/* Last: after every id change (glibc signals each thread for one)
	 * and no_new_privs, which an unprivileged restriction requires. */
	if (p->landlock_scoped)
		landlock_scope(p);
}

void sandbox_lock(const struct sandbox_policy *p, scmp_filter_ctx filter)
{
	int r;

#ifdef CRISP_SECCOMP_DEBUG
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	debug_names_init();
	sigaction(SIGSYS, &sa, NULL);
	log_warn("%s: seccomp in debug mode: forbidden syscalls are logged, not fatal", p->name);
#endif
	r = seccomp_load(filter);
	if (r != 0)
		fatal("%s: loading the seccomp filter failed (%d)", p->name, r);
	seccomp_release(filter);
	log_debug("%s: sandboxed (%zu capabilities, seccomp on)", p->name, p->ncaps);
}

int sandbox_tcp_client_rules(scmp_filter_ctx f)
{
	int r = 0;

	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			      SCMP_A0(SCMP_CMP_EQ, AF_INET));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			      SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	r |= seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
			      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			      SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONBIO));
	return r ? -1 : 0;
}
