/* crisp-monitor's confinement once the container is created: a Landlock
 * ruleset and a seccomp filter, both through raw system calls (the monitor
 * is a static musl program: no libseccomp, no common/).
 *
 * What it still does then (serve(), the log writer, the control socket,
 * write_exit_file(), cleanup_sockets()): read the container's output and
 * the signalfd, write the log, take a new log file runtimed opened
 * (reopen-fd, ReopenContainerLog: an fd, no path), accept and serve control
 * connections, write stdin, resize the terminal, reap, write the exit file
 * (<exit-file>.tmp, fsync, rename, fsync of the directory) and unlink its
 * control socket. Every other file it uses (the log, /dev/null, the memory
 * cgroup's counter, the pty master, the pipes) is open already, and a
 * write(2) to an open file needs no Landlock right. So it may create,
 * write, replace and remove files beneath the exit file's directory, and
 * remove files beneath the bundle; nothing else: no path of the log's
 * directory at all. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "runtimed/monitor_int.h"

/* The uapi header of the build host may predate what the running kernel
 * knows: the values are the kernel's ABI and never change. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_ABI1 ((1ull << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER (1ull << 13)      /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)  /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

#ifdef CRISP_TEST_HOOKS
/* Test builds only: a file of this name in the bundle makes confine() and
 * the sync line behave as on a kernel without Landlock (built without it,
 * or disabled at boot), so that tests/integration/test_monitor_confinement.py
 * can check that path on a kernel that has it. */
static bool test_bundle_file(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", m.opt.bundle, name);
	return access(path, F_OK) == 0;
}
#endif

bool landlock_missing(void)
{
#ifdef CRISP_TEST_HOOKS
	if (test_bundle_file("test-no-landlock"))
		return true;
#endif
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION) >= 0)
		return false;
	/* not built into the kernel, or disabled at boot */
	return errno == ENOSYS || errno == EOPNOTSUPP;
}

/* Grants access beneath the directory at path, or (dir false) to the
 * file at path itself. */
static int landlock_allow(int ruleset, const char *path, bool dir, uint64_t access,
			  uint64_t handled)
{
	struct ll_path_beneath_attr rule = { .allowed_access = access & handled };
	int r, e;

	rule.parent_fd = open(path, O_PATH | O_CLOEXEC | (dir ? O_DIRECTORY : O_NOFOLLOW));
	if (rule.parent_fd < 0)
		return -1;
	r = (int)syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0);
	e = errno;
	close(rule.parent_fd);
	errno = e;
	return r;
}

/* The directory of an absolute path ("/" for "/x"). */
static void dir_of(char *out, size_t size, const char *path)
{
	char *slash;

	snprintf(out, size, "%s", path);
	slash = strrchr(out, '/');
	if (slash == out)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
}

/* Test builds with a file "test-monitor-v1" in the bundle: the rule of a
 * monitor of an older crisp, which re-created its log itself at "reopen":
 * writing and creating files beneath the log's directory, or writing the
 * log alone when it is no regular file (/dev/null). Elsewhere none. */
static bool test_monitor_v1_log_rule(int ruleset, uint64_t handled)
{
#ifdef CRISP_TEST_HOOKS
	struct stat st;
	char dir[PATH_MAX];

	if (!m.test_monitor_v1)
		return true;
	if (fstat(m.log.fd, &st) == 0 && S_ISREG(st.st_mode)) {
		dir_of(dir, sizeof(dir), m.opt.log);
		return landlock_allow(ruleset, dir, true, LL_FS_WRITE_FILE | LL_FS_MAKE_REG,
				      handled) == 0;
	}
	return landlock_allow(ruleset, m.opt.log, false, LL_FS_WRITE_FILE, handled) == 0;
#else
	(void)ruleset;
	(void)handled;
	return true;
#endif
}

/* Every filesystem right the running kernel knows is handled (denied but
 * for the rules below); TCP bind and connect too, with no rule. The
 * abstract unix socket scope is taken where the kernel has it: the monitor
 * connects nowhere. The signal scope is NOT taken: a monitor whose drop
 * failed SIGKILLs the container's init, which runc made before this
 * restriction (outside the domain), so the scope would turn that kill into
 * EPERM and leave the container served unconfined. Returns 1 confined, 0
 * when the kernel has no Landlock (built without it, or disabled at boot:
 * the monitor runs as before), -1 on any other failure. */
static int landlock_confine(void)
{
	struct ll_ruleset_attr attr = { 0 };
	char dir[PATH_MAX];
	size_t size = offsetof(struct ll_ruleset_attr, handled_access_net);
	int ruleset;
	bool ok;
	long abi;

	if (landlock_missing())
		return 0;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 0)
		return -1;
	attr.handled_access_fs = LL_FS_ABI1;
	if (abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET;
		size = sizeof(attr);
	}
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (ruleset < 0)
		return -1;

	/* No rule for the log, a regular file or /dev/null (a pause, a
	 * container without log_path): it was opened before this ruleset,
	 * and Landlock checks a file's rights when it is opened (write(2),
	 * ftruncate and ioctl on the fd use what it got then: a file opened
	 * before the restriction has them all). A new log comes as an fd
	 * runtimed opened (reopen-fd), so no path of the log's directory is
	 * opened again. */
	ok = test_monitor_v1_log_rule(ruleset, attr.handled_access_fs);
	/* the exit file: <exit-file>.tmp created (or truncated, if an
	 * earlier monitor left one), renamed over <exit-file>, unlinked on
	 * failure; the directory opened for its fsync. That directory is the
	 * container's own (<exits>/<id>/, made by runtimed, required by
	 * crisp-launch): other containers' exit records are out of reach. */
	dir_of(dir, sizeof(dir), m.opt.exit_file);
	ok = ok && landlock_allow(ruleset, dir, true,
				  LL_FS_WRITE_FILE | LL_FS_MAKE_REG | LL_FS_REMOVE_FILE |
					  LL_FS_TRUNCATE | LL_FS_READ_DIR,
				  attr.handled_access_fs) == 0;
	/* its control socket, unlinked at the end */
	ok = ok && landlock_allow(ruleset, m.opt.bundle, true, LL_FS_REMOVE_FILE,
				  attr.handled_access_fs) == 0;
	ok = ok && syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
	close(ruleset);
	return ok ? 1 : -1;
}

#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))
#define KILL BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define EPERM_RET BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
/* a syscall allowed with any arguments */
#define SYSCALL(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), ALLOW
/* the accumulator (an argument's low 32 bits) equal to v: allow / EPERM */
#define ARG_ALLOW(v) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (v), 0, 1), ALLOW
#define ARG_EPERM(v) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (v), 0, 1), EPERM_RET
/* the syscall nr (in the accumulator) goes on to its argument checks,
 * which start `skip` instructions ahead, else on to the next rule */
#define SYSCALL_TO(nr, skip) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), (skip), 0)
/* instructions in the fcntl and ioctl blocks below (the jumps count them) */
#define FCNTL_BLOCK 12
#define IOCTL_BLOCK 6

/* Exactly what the monitor calls from serve() on, through musl (measured
 * with strace -f over a container's whole life, see docs/PRIVSEP.md);
 * anything else kills it. The kernel reads fcntl's and ioctl's command
 * and mmap's prot as 32 bits: the low half of each argument is compared
 * (little-endian: at the argument's offset). */
static int seccomp_confine(void)
{
#if defined(__x86_64__)
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		KILL,
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* x32 numbers on the x86_64 arch: another ABI, refused */
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000, 0, 1),
		KILL,
		/* the loop: poll, the signalfd and output (read), the log,
		 * stdin and the exit file (write), reaping (wait4) */
		SYSCALL(SYS_poll),
		SYSCALL(SYS_read),
		SYSCALL(SYS_write),
		SYSCALL(SYS_close),
		SYSCALL(SYS_wait4),
		/* the oom_kill counter of the memory cgroup, open already */
		SYSCALL(SYS_pread64),
		/* timestamps, the hold and drain deadlines: the vDSO, or this */
		SYSCALL(SYS_clock_gettime),
		/* the control socket: accept, the peer's uid, packets */
		SYSCALL(SYS_accept4),
		SYSCALL(SYS_getsockopt),
		SYSCALL(SYS_recvfrom),
		SYSCALL(SYS_sendto),
		SYSCALL(SYS_sendmsg),
		/* packets with the fds they carry (reopen-fd), and the
		 * check of that fd: a regular file (fcntl F_GETFL below) */
		SYSCALL(SYS_recvmsg),
		SYSCALL(SYS_fstat),
		/* the exit file, the socket's unlink: which paths is
		 * Landlock's business */
		SYSCALL(SYS_open),
		SYSCALL(SYS_fsync),
		/* a log record that a full disk cut short, taken back
		 * (monitor_log.c) */
		SYSCALL(SYS_ftruncate),
		SYSCALL(SYS_rename),
		SYSCALL(SYS_unlink),
		/* the same as glibc may make them (configure found no musl) */
		SYSCALL(SYS_openat),
		SYSCALL(SYS_renameat),
		SYSCALL(SYS_renameat2),
		SYSCALL(SYS_unlinkat),
		SYSCALL(SYS_ppoll),
		/* musl's malloc (stdin held back while the pipe is full) */
		SYSCALL(SYS_brk),
		SYSCALL(SYS_munmap),
		SYSCALL(SYS_mremap),
		SYSCALL(SYS_madvise),
		/* the end, and the kernel's own restarts */
		SYSCALL(SYS_exit_group),
		SYSCALL(SYS_exit),
		SYSCALL(SYS_rt_sigreturn),
		SYSCALL(SYS_restart_syscall),
		SYSCALL_TO(SYS_fcntl, 4),
		SYSCALL_TO(SYS_ioctl, 3 + FCNTL_BLOCK),
		SYSCALL_TO(SYS_mmap, 2 + FCNTL_BLOCK + IOCTL_BLOCK),
		SYSCALL_TO(SYS_mprotect, 1 + FCNTL_BLOCK + IOCTL_BLOCK),
		KILL,
		/* fcntl: only F_SETFD, which musl's open(O_CLOEXEC) makes
		 * after the open, and F_GETFL, the access mode and O_APPEND
		 * of a reopen-fd's file. Not F_SETOWN, F_SETOWN_EX or
		 * F_SETSIG: an owner of euid 0 could signal any process with
		 * SIGIO (EPERM, as crisp's other filters answer them); any
		 * other command kills. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		ARG_ALLOW(F_SETFD),
		ARG_ALLOW(F_GETFL),
		ARG_EPERM(F_SETOWN),
		ARG_EPERM(F_SETOWN_EX),
		ARG_EPERM(F_SETSIG),
		KILL,
		/* ioctl: a tty's resize, and tcgetattr for its EOF character
		 * when stdin ends; nothing else */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		ARG_ALLOW(TIOCSWINSZ),
		ARG_ALLOW(TCGETS),
		KILL,
		/* mmap and mprotect for malloc: never executable */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
		KILL,
		ALLOW,
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : -1;
#else
	/* the table above is x86_64's; elsewhere the monitor runs with
	 * Landlock and without a filter, as before */
	return 0;
#endif
}

#ifdef CRISP_TEST_HOOKS
/* Test builds only: a file "test-confine-fail" in the bundle makes the
 * confinement fail as a refused Landlock step would
 * (tests/integration/test_monitor_confinement.py). */
static bool test_confine_fails(void)
{
	return test_bundle_file("test-confine-fail");
}
#endif

bool confine(void)
{
#ifdef CRISP_TEST_HOOKS
	if (test_confine_fails())
		return false;
	/* a file "test-monitor-v1" in the bundle: the monitor behaves as one
	 * of an older crisp, to test runtimed's fallback for those (its
	 * "reopen", its Landlock rule on the log's directory; reopen-fd an
	 * unknown request). Looked at here: access(2) is not in the filter. */
	m.test_monitor_v1 = test_bundle_file("test-monitor-v1");
#endif
	/* Landlock first: once the filter is in, no landlock_* call passes.
	 * A failed step stops here, before the filter, so that the caller
	 * can still SIGKILL the container (kill is not in the filter). */
	if (landlock_confine() < 0)
		return false;
	return seccomp_confine() == 0;
}
