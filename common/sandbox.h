/* Privilege drop, one ordered path for every crisp process (STYLE.md):
 *
 *   sandbox_compile()  build the seccomp filter while everything still works
 *   sandbox_enter()    read-only mount namespace -> chroot/chdir -> bounding set -> setgroups/setresgid/
 *                      setresuid -> minimal capabilities, ambient cleared ->
 *                      rlimits -> no_new_privs
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
#include <sys/types.h>

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
