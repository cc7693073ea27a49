/* The built-in RuntimeDefault seccomp profile: what a container gets when
 * its pod asks for the runtime's default. It follows the semantics of the
 * Docker/containerd default profiles, which Kubernetes workloads are written
 * against: everything not listed fails with EPERM; the list is what ordinary
 * programs need; a syscall that only a capability makes useful is allowed
 * only when the container's bounding set holds that capability; and a few
 * are allowed with argument filters only.
 *
 * Deliberate differences from containerd's list: io_uring_* are left out
 * (a large kernel attack surface, which Docker dropped for the same
 * reason); socket(AF_VSOCK) is refused (a path to the hypervisor); a few
 * newer syscalls of the same kind as listed ones are in (futex2, pkeys,
 * cachestat, fchmodat2, map_shadow_stack). Names libseccomp does not know
 * are ignored by runc, so listing a syscall a kernel lacks is harmless. */
#include "autoconfig.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>

#include "runtimed/spec.h"

/* Allowed for every container, unconditionally. Sorted. */
static const char *const allow_always[] = {
	"_llseek",
	"_newselect",
	"accept",
	"accept4",
	"access",
	"adjtimex",
	"alarm",
	"bind",
	"brk",
	"cachestat",
	"capget",
	"capset",
	"chdir",
	"chmod",
	"chown",
	"chown32",
	"clock_adjtime",
	"clock_adjtime64",
	"clock_getres",
	"clock_getres_time64",
	"clock_gettime",
	"clock_gettime64",
	"clock_nanosleep",
	"clock_nanosleep_time64",
	"close",
	"close_range",
	"connect",
	"copy_file_range",
	"creat",
	"dup",
	"dup2",
	"dup3",
	"epoll_create",
	"epoll_create1",
	"epoll_ctl",
	"epoll_ctl_old",
	"epoll_pwait",
	"epoll_pwait2",
	"epoll_wait",
	"epoll_wait_old",
	"eventfd",
	"eventfd2",
	"execve",
	"execveat",
	"exit",
	"exit_group",
	"faccessat",
	"faccessat2",
	"fadvise64",
	"fadvise64_64",
	"fallocate",
	"fanotify_mark",
	"fchdir",
	"fchmod",
	"fchmodat",
	"fchmodat2",
	"fchown",
	"fchown32",
	"fchownat",
	"fcntl",
	"fcntl64",
	"fdatasync",
	"fgetxattr",
	"flistxattr",
	"flock",
	"fork",
	"fremovexattr",
	"fsetxattr",
	"fstat",
	"fstat64",
	"fstatat64",
	"fstatfs",
	"fstatfs64",
	"fsync",
	"ftruncate",
	"ftruncate64",
	"futex",
	"futex_requeue",
	"futex_time64",
	"futex_wait",
	"futex_waitv",
	"futex_wake",
	"futimesat",
	"get_robust_list",
	"get_thread_area",
	"getcpu",
	"getcwd",
	"getdents",
	"getdents64",
	"getegid",
	"getegid32",
	"geteuid",
	"geteuid32",
	"getgid",
	"getgid32",
	"getgroups",
	"getgroups32",
	"getitimer",
	"getpeername",
	"getpgid",
	"getpgrp",
	"getpid",
	"getppid",
	"getpriority",
	"getrandom",
	"getresgid",
	"getresgid32",
	"getresuid",
	"getresuid32",
	"getrlimit",
	"getrusage",
	"getsid",
	"getsockname",
	"getsockopt",
	"gettid",
	"gettimeofday",
	"getuid",
	"getuid32",
	"getxattr",
	"inotify_add_watch",
	"inotify_init",
	"inotify_init1",
	"inotify_rm_watch",
	"io_cancel",
	"io_destroy",
	"io_getevents",
	"io_pgetevents",
	"io_pgetevents_time64",
	"io_setup",
	"io_submit",
	"ioctl",
	"ioprio_get",
	"ioprio_set",
	"ipc",
	"kill",
	"landlock_add_rule",
	"landlock_create_ruleset",
	"landlock_restrict_self",
	"lchown",
	"lchown32",
	"lgetxattr",
	"link",
	"linkat",
	"listen",
	"listxattr",
	"llistxattr",
	"lremovexattr",
	"lseek",
	"lsetxattr",
	"lstat",
	"lstat64",
	"madvise",
	"map_shadow_stack",
	"membarrier",
	"memfd_create",
	"memfd_secret",
	"mincore",
	"mkdir",
	"mkdirat",
	"mknod",
	"mknodat",
	"mlock",
	"mlock2",
	"mlockall",
	"mmap",
	"mmap2",
	"mprotect",
	"mq_getsetattr",
	"mq_notify",
	"mq_open",
	"mq_timedreceive",
	"mq_timedreceive_time64",
	"mq_timedsend",
	"mq_timedsend_time64",
	"mq_unlink",
	"mremap",
	"msgctl",
	"msgget",
	"msgrcv",
	"msgsnd",
	"msync",
	"munlock",
	"munlockall",
	"munmap",
	"nanosleep",
	"newfstatat",
	"open",
	"openat",
	"openat2",
	"pause",
	"pidfd_open",
	"pidfd_send_signal",
	"pipe",
	"pipe2",
	"pkey_alloc",
	"pkey_free",
	"pkey_mprotect",
	"poll",
	"ppoll",
	"ppoll_time64",
	"prctl",
	"pread64",
	"preadv",
	"preadv2",
	"prlimit64",
	"process_mrelease",
	"pselect6",
	"pselect6_time64",
	"ptrace", /* since 4.8 seccomp is re-checked after a tracer's changes */
	"pwrite64",
	"pwritev",
	"pwritev2",
	"read",
	"readahead",
	"readlink",
	"readlinkat",
	"readv",
	"recv",
	"recvfrom",
	"recvmmsg",
	"recvmmsg_time64",
	"recvmsg",
	"remap_file_pages",
	"removexattr",
	"rename",
	"renameat",
	"renameat2",
	"restart_syscall",
	"rmdir",
	"rseq",
	"rt_sigaction",
	"rt_sigpending",
	"rt_sigprocmask",
	"rt_sigqueueinfo",
	"rt_sigreturn",
	"rt_sigsuspend",
	"rt_sigtimedwait",
	"rt_sigtimedwait_time64",
	"rt_tgsigqueueinfo",
	"sched_get_priority_max",
	"sched_get_priority_min",
	"sched_getaffinity",
	"sched_getattr",
	"sched_getparam",
	"sched_getscheduler",
	"sched_rr_get_interval",
	"sched_rr_get_interval_time64",
	"sched_setaffinity",
	"sched_setattr",
	"sched_setparam",
	"sched_setscheduler",
	"sched_yield",
	"seccomp",
	"select",
	"semctl",
	"semget",
	"semop",
	"semtimedop",
	"semtimedop_time64",
	"send",
	"sendfile",
	"sendfile64",
	"sendmmsg",
	"sendmsg",
	"sendto",
	"set_robust_list",
	"set_thread_area",
	"set_tid_address",
	"setfsgid",
	"setfsgid32",
	"setfsuid",
	"setfsuid32",
	"setgid",
	"setgid32",
	"setgroups",
	"setgroups32",
	"setitimer",
	"setpgid",
	"setpriority",
	"setregid",
	"setregid32",
	"setresgid",
	"setresgid32",
	"setresuid",
	"setresuid32",
	"setreuid",
	"setreuid32",
	"setrlimit",
	"setsid",
	"setsockopt",
	"setuid",
	"setuid32",
	"setxattr",
	"shmat",
	"shmctl",
	"shmdt",
	"shmget",
	"shutdown",
	"sigaltstack",
	"signalfd",
	"signalfd4",
	"sigprocmask",
	"sigreturn",
	"socketcall",
	"socketpair",
	"splice",
	"stat",
	"stat64",
	"statfs",
	"statfs64",
	"statx",
	"symlink",
	"symlinkat",
	"sync",
	"sync_file_range",
	"syncfs",
	"sysinfo",
	"tee",
	"tgkill",
	"time",
	"timer_create",
	"timer_delete",
	"timer_getoverrun",
	"timer_gettime",
	"timer_gettime64",
	"timer_settime",
	"timer_settime64",
	"timerfd_create",
	"timerfd_gettime",
	"timerfd_gettime64",
	"timerfd_settime",
	"timerfd_settime64",
	"times",
	"tkill",
	"truncate",
	"truncate64",
	"ugetrlimit",
	"umask",
	"uname",
	"unlink",
	"unlinkat",
	"utime",
	"utimensat",
	"utimensat_time64",
	"utimes",
	"vfork",
	"vmsplice",
	"wait4",
	"waitid",
	"waitpid",
	"write",
	"writev",
};

/* personality(2) only with the values programs set for themselves:
 * PER_LINUX, PER_LINUX32, UNAME26 variants and the 0xffffffff query. Other
 * personalities turn off ASLR or change how the kernel reads memory. */
static const uint64_t personality_allowed[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

/* Syscalls that only make sense with a capability: allowed when the
 * container's bounding set holds it (as Docker and containerd do). */
struct cap_rule {
	int cap;
	const char *const *names;
	size_t n;
};

#define NAMES(...) \
	(const char *const[]){ __VA_ARGS__ }, ARRAY_SIZE(((const char *const[]){ __VA_ARGS__ }))

static const struct cap_rule cap_rules[] = {
	{ CAP_DAC_READ_SEARCH, NAMES("open_by_handle_at") },
	{ CAP_SYS_ADMIN, NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
			       "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
			       "move_mount", "name_to_handle_at", "open_tree", "perf_event_open",
			       "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
			       "syslog", "umount", "umount2", "unshare") },
	{ CAP_SYS_BOOT, NAMES("reboot") },
	{ CAP_SYS_CHROOT, NAMES("chroot") },
	{ CAP_SYS_MODULE, NAMES("delete_module", "finit_module", "init_module") },
	{ CAP_SYS_PACCT, NAMES("acct") },
	{ CAP_SYS_PTRACE, NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
				"process_vm_writev") },
	{ CAP_SYS_RAWIO, NAMES("ioperm", "iopl") },
	{ CAP_SYS_TIME, NAMES("clock_settime", "clock_settime64", "settimeofday", "stime") },
	{ CAP_SYS_TTY_CONFIG, NAMES("vhangup") },
	{ CAP_SYSLOG, NAMES("syslog") },
#ifdef CAP_BPF
	{ CAP_BPF, NAMES("bpf") },
#else
	{ 39, NAMES("bpf") },
#endif
#ifdef CAP_PERFMON
	{ CAP_PERFMON, NAMES("perf_event_open") },
#else
	{ 38, NAMES("perf_event_open") },
#endif
};

struct arch_desc {
	const char *name;
	const char *const *scmp_arches;
	size_t n_arches;
	const char *const *extra; /* syscalls only this architecture has */
	size_t n_extra;
	int clone_flags_arg; /* clone's flags argument: 0, or 1 on s390 */
};

static const struct arch_desc arches[] = {
	{ "x86_64", NAMES("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
	  NAMES("arch_prctl", "modify_ldt"), 0 },
	{ "aarch64", NAMES("SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"),
	  NAMES("arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
		"sync_file_range2"),
	  0 },
};

static const char *native_arch(void)
{
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "aarch64";
#else
	return "unknown";
#endif
}

static json_t *names_array(const char *const *names, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *rule(json_t *names, const char *action)
{
	return json_pack("{s:o, s:s}", "names", names, "action", action);
}

static json_t *rule_arg(const char *name, const char *action, int index, uint64_t value,
			uint64_t value_two, const char *op)
{
	json_t *arg = json_pack("{s:i, s:I, s:s}", "index", index, "value", (json_int_t)value, "op",
				op);

	/* SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo, both spelled out. */
	if (streq(op, "SCMP_CMP_MASKED_EQ"))
		json_object_set_new(arg, "valueTwo", json_integer((json_int_t)value_two));
	return json_pack("{s:[s], s:s, s:[o]}", "names", name, "action", action, "args", arg);
}

json_t *spec_seccomp_default(uint64_t caps, const char *arch)
{
	const struct arch_desc *ad = NULL;
	json_t *syscalls = json_array();
	bool admin = caps & (UINT64_C(1) << CAP_SYS_ADMIN);

	if (!arch)
		arch = native_arch();
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (streq(arches[i].name, arch))
			ad = &arches[i];

	json_array_append_new(syscalls, rule(names_array(allow_always, ARRAY_SIZE(allow_always)),
					     "SCMP_ACT_ALLOW"));
	for (size_t i = 0; i < ARRAY_SIZE(personality_allowed); i++)
		json_array_append_new(syscalls, rule_arg("personality", "SCMP_ACT_ALLOW", 0,
							 personality_allowed[i], 0, "SCMP_CMP_EQ"));
	/* Any socket but AF_VSOCK. */
	json_array_append_new(syscalls,
			      rule_arg("socket", "SCMP_ACT_ALLOW", 0, AF_VSOCK, 0, "SCMP_CMP_NE"));
	if (ad)
		json_array_append_new(syscalls,
				      rule(names_array(ad->extra, ad->n_extra), "SCMP_ACT_ALLOW"));
	for (size_t i = 0; i < ARRAY_SIZE(cap_rules); i++)
		if (caps & (UINT64_C(1) << cap_rules[i].cap))
			json_array_append_new(syscalls,
					      rule(names_array(cap_rules[i].names, cap_rules[i].n),
						   "SCMP_ACT_ALLOW"));
	if (!admin) {
		/* Without CAP_SYS_ADMIN: clone for threads and processes, but
		 * not for new namespaces (a kernel attack surface). clone3
		 * passes its flags in memory, which seccomp cannot read: it
		 * fails with ENOSYS so libc falls back to clone. */
		uint64_t ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
				    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
		json_t *clone3;

		json_array_append_new(syscalls, rule_arg("clone", "SCMP_ACT_ALLOW",
							 ad ? ad->clone_flags_arg : 0, ns_flags, 0,
							 "SCMP_CMP_MASKED_EQ"));
		clone3 = json_pack("{s:[s], s:s, s:i}", "names", "clone3", "action",
				   "SCMP_ACT_ERRNO", "errnoRet", ENOSYS);
		json_array_append_new(syscalls, clone3);
	}

	return json_pack("{s:s, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "architectures",
			 ad ? names_array(ad->scmp_arches, ad->n_arches) : json_array(), "syscalls",
			 syscalls);
}
