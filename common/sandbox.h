/* Privilege drop, one ordered path for every crisp process (STYLE.md):
 *
 *   sandbox_compile()  build the seccomp filter while everything still works
 *   sandbox_enter()    read-only mount namespace -> chroot/chdir -> bounding set -> setgroups/setresgid/
 *                      setresuid -> minimal capabilities, ambient cleared ->
 *                      rlimits -> no_new_privs -> Landlock scopes
 *   sandbox_lock()     load the seccomp filter, last (synchronized across
 *                      threads, for the frontend whose gRPC threads exist by
 *                      then)
 *
 * Every step is fatal on failure: a process that cannot confine itself does
 * not run. Each process keeps its policy (capabilities, syscall table) in its
 * own sandbox.c. */
#ifndef CRISP_COMMON_SANDBOX_H
#define CRISP_COMMON_SANDBOX_H

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Landlock scopes (ABI 6, Linux 6.12). A process restricted with one
 * reaches only processes of its own Landlock domain or of a domain nested
 * in it: in practice itself and the children it forks afterwards.
 *  - SIGNAL: kill, tgkill, pidfd_send_signal, and the signals an
 *    F_SETOWN'd file sends (fcntl is in every crisp filter, and the kernel
 *    lets an owner of euid 0 signal any process that way);
 *  - ABSTRACT_UNIX_SOCKET: connect or send to an abstract unix socket
 *    (no file, no mode: anyone in the network namespace may connect). */
#define SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SANDBOX_SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6. Debian 12's <linux/landlock.h>
 * stops at handled_access_fs; this layout is kernel ABI, stable (fields are
 * only ever appended, and a kernel that knows fewer accepts the struct as
 * long as the fields it does not know are 0). */
struct sandbox_landlock_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6: SANDBOX_SCOPE_* */
};

/* The kernel's Landlock ABI version; < 1 (errno set) if it has no Landlock
 * or it is disabled. */
long sandbox_landlock_abi(void);

/* Landlock rights past Debian 12's headers: truncate (ABI 3), device
 * ioctls (ABI 5), TCP bind and connect (ABI 4). Kernel ABI, stable. */
#define SANDBOX_LANDLOCK_FS_TRUNCATE (1ULL << 14)
#define SANDBOX_LANDLOCK_FS_IOCTL_DEV (1ULL << 15)
#define SANDBOX_LANDLOCK_NET_BIND_TCP (1ULL << 0)
#define SANDBOX_LANDLOCK_NET_CONNECT_TCP (1ULL << 1)

/* A ruleset that handles every file-system right the kernel's ABI knows
 * (and, with tcp, TCP bind and connect from ABI 4), and both scopes from
 * ABI 6: whatever no rule grants is refused. abi >= 1. */
void sandbox_landlock_attr_all(struct sandbox_landlock_attr *attr, long abi, bool tcp);

struct sandbox_policy {
	const char *name;
	const int *caps; /* kept in effective, permitted and bounding sets */
	size_t ncaps;
	bool change_id; /* switch to uid/gid (and no supplementary groups) */
	uid_t uid;
	gid_t gid;
	/* A private mount namespace in which the whole host is read-only
	 * except these directories (nodev, nosuid). NULL: host mounts as is.
	 * For processes without CAP_SYS_ADMIN, whose uid 0 would otherwise
	 * still own and so may write most of the host's files. */
	const char *const *writable_paths;
	/* With writable_paths: mounts under these directories are detached
	 * from the private namespace. The copies would keep what they hold
	 * alive as long as this process lives: pods' network namespaces and
	 * containers' root filesystems (crisp's state dir), pod volumes. */
	const char *const *hidden_paths;
	const char *chroot_dir; /* NULL: no chroot */
	const char *workdir;    /* chdir here (inside the chroot if any) */
	bool no_new_privs;
	/* SANDBOX_SCOPE_*: Landlock scopes the process restricts itself with,
	 * last in sandbox_enter (needs no_new_privs, or CAP_SYS_ADMIN). Landlock
	 * restricts the calling thread and what it creates afterwards: the
	 * process must have no other thread yet (checked). On a kernel older
	 * than ABI 6 a warning says what is not enforced and start-up goes on. */
	uint64_t landlock_scoped;
	unsigned long max_files; /* RLIMIT_NOFILE; 0 keeps the inherited one */
	bool threads;            /* may start threads (clone for threads only) */
	const int *syscalls;     /* seccomp allowlist; everything else kills */
	size_t nsyscalls;
};

scmp_filter_ctx sandbox_compile(const struct sandbox_policy *policy);
void sandbox_enter(const struct sandbox_policy *policy);
void sandbox_lock(const struct sandbox_policy *policy, scmp_filter_ctx filter);
/* Argument rules for a TCP client (imaged, and crisp-fetch, which stacks
 * its filter on imaged's): socket only for AF_INET and AF_INET6 (AF_UNIX
 * fails with EACCES: a unix socket would let uid 0 talk to local daemons,
 * which a read-only view of the host does not stop; glibc asks for one to
 * reach nscd and copes), ioctl only for FIONREAD (glibc's resolver) and
 * FIONBIO. 0, or -1 if libseccomp refused a rule. */
int sandbox_tcp_client_rules(scmp_filter_ctx filter);

/* Syscalls every crisp process on a libevent loop with ipc/ needs; each
 * sandbox.c adds its own. */
extern const int sandbox_base_syscalls[];
extern const size_t sandbox_base_nsyscalls;

#endif
