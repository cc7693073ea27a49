/* imaged's confinement. imaged parses hostile input (manifests, image
 * configs, imported archives; registry HTTP and TLS are crisp-fetch's, see
 * fetch/sandbox.c, and tar layers crisp-unpack's, see unpack/sandbox.c), so
 * it keeps only what writing image content with its original ownership and
 * modes needs, executes exactly crisp-fetch and crisp-unpack from fds
 * opened at start, and sees the whole host read-only but its own directory
 * (where device nodes it creates do not work: nodev). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "imaged/imaged.h"
#include "imaged/unpack.h"

static const int imaged_caps[] = UNPACK_CAPS;

/* Beyond sandbox_base_syscalls: the filesystem work of the content store,
 * the snapshots and SQLite under imaged's own root; worker threads
 * (policy.threads); starting crisp-fetch and crisp-unpack (rules in
 * child_rules()). No execve, no mount, no namespaces.
 *
 * crisp-unpack inherits this filter too, and stacks its own: the file
 * calls it makes for a layer (imaged/unpack.c) must stay in this list, as
 * long as it needs them, whether imaged makes them itself or not.
 *
 * imaged makes no network call itself any more, but crisp-fetch inherits
 * this filter (seccomp filters pass through fork and exec, and crisp-fetch
 * stacks its own, stricter one on top): what crisp-fetch needs must pass
 * here too. That is the network group below, and what the dynamic loader
 * and libseccomp do when crisp-fetch starts. */
static const int imaged_syscalls[] = {
	/* files */
	SCMP_SYS(openat),
	SCMP_SYS(openat2),
	SCMP_SYS(getdents64),
	SCMP_SYS(statx),
	SCMP_SYS(statfs),
	SCMP_SYS(fstatfs),
	SCMP_SYS(mkdirat),
	SCMP_SYS(unlinkat),
	SCMP_SYS(unlink),
	SCMP_SYS(renameat2),
	SCMP_SYS(rename),
	SCMP_SYS(linkat),
	SCMP_SYS(symlinkat),
	SCMP_SYS(readlinkat),
	SCMP_SYS(readlink),
	SCMP_SYS(mknodat),
	SCMP_SYS(fchownat),
	SCMP_SYS(fchown),
	SCMP_SYS(fchmodat),
	SCMP_SYS(fchmod),
	SCMP_SYS(utimensat),
	SCMP_SYS(fsetxattr),
	SCMP_SYS(fgetxattr),
	SCMP_SYS(flistxattr),
	SCMP_SYS(fsync),
	SCMP_SYS(syncfs),
	SCMP_SYS(fdatasync),
	SCMP_SYS(ftruncate),
	SCMP_SYS(fallocate),
	SCMP_SYS(pread64),
	SCMP_SYS(pwrite64),
	SCMP_SYS(umask),
	SCMP_SYS(copy_file_range), /* the copy snapshotter */
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(getcwd),
	SCMP_SYS(flock),
	SCMP_SYS(geteuid), /* SQLite, when it creates its journal as root */
	SCMP_SYS(getuid),
	SCMP_SYS(getgid),
	SCMP_SYS(getegid), /* libevent, in crisp-fetch */
	SCMP_SYS(sysinfo), /* glibc's sysconf(_SC_PHYS_PAGES), in crisp-fetch */
	/* network: the registry client (socket and ioctl: argument rules below) */
	SCMP_SYS(connect),
	SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	SCMP_SYS(shutdown),
	SCMP_SYS(socketpair),
	SCMP_SYS(uname),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(sched_yield),
	SCMP_SYS(eventfd2),
	SCMP_SYS(epoll_create1),
	SCMP_SYS(sendmmsg), /* glibc resolver: A and AAAA queries in one call */
	/* crisp-fetch: the fork's child before exec (fd moves, capset to
	 * nothing), reaping it (waitid through its pidfd; wait4), and its own
	 * start-up: the loader (arch_prctl, set_tid_address), and loading its filter (seccomp: a filter only ever
	 * takes away) */
	SCMP_SYS(close_range),
	SCMP_SYS(dup3),
	SCMP_SYS(capset),
	SCMP_SYS(wait4),
	SCMP_SYS(waitid),
	SCMP_SYS(arch_prctl),
	SCMP_SYS(set_tid_address),
	SCMP_SYS(seccomp),
	/* crisp-fetch's Landlock ruleset (it only takes away). imaged's own
	 * scopes are set in sandbox_enter, before this filter is loaded. */
	SCMP_SYS(landlock_create_ruleset),
	SCMP_SYS(landlock_add_rule),
	SCMP_SYS(landlock_restrict_self),
};

static struct sandbox_policy policy = {
	.name = "imaged",
	.caps = imaged_caps,
	.ncaps = ARRAY_SIZE(imaged_caps),
	.no_new_privs = true,
	/* Signals (pidfd_send_signal above, and F_SETOWN through fcntl) reach
	 * only crisp-fetch, not crispd, the other helpers or containers'
	 * processes of uid 0. No abstract unix socket either: imaged talks over
	 * inherited socketpairs, crisp-fetch over TCP (AF_UNIX sockets fail in
	 * the filter already); crisp-fetch inherits both scopes. */
	.landlock_scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
	.threads = true,
	.syscalls = imaged_syscalls,
	.nsyscalls = ARRAY_SIZE(imaged_syscalls),
};

/* Sockets to registries only (crisp-fetch's, through this filter it
 * inherits): sandbox_tcp_client_rules(). */
static void network_rules(scmp_filter_ctx f)
{
	if (sandbox_tcp_client_rules(f) < 0)
		fatal("imaged: seccomp network rules failed");
}

/* Starting and stopping crisp-fetch and crisp-unpack, and nothing else of
 * the kind:
 *  - clone with exactly CLONE_PIDFD | SIGCHLD: a fork, with a pidfd; no
 *    namespaces, no shared memory (threads have their own rule);
 *  - execveat only of the two fds opened at start, by themselves
 *    (AT_EMPTY_PATH);
 *  - prctl only for the child's parent-death signal, crisp-fetch's
 *    no_new_privs (libseccomp sets it again) and dumpable flag, and the
 *    reads libcap-ng's constructor makes as crisp-fetch loads (bounding
 *    set, securebits, no_new_privs, ambient set);
 *  - prlimit64 to read its own limits only (glibc, as crisp-fetch starts);
 *  - signals only SIGKILL, through a pidfd (pidfd_send_signal). A pidfd
 *    can also be opened on /proc/<pid> of any process, which seccomp cannot
 *    see: Landlock's signal scope (policy.landlock_scoped) is what limits
 *    the targets to crisp-fetch and crisp-unpack, forked after imaged
 *    restricted itself. */
static void child_rules(scmp_filter_ctx f, int fetch_fd, int unpack_fd)
{
	int r = 0;

	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			      SCMP_A0(SCMP_CMP_EQ, CLONE_PIDFD | SIGCHLD));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 2,
			      SCMP_A0(SCMP_CMP_EQ, (uint64_t)fetch_fd),
			      SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 2,
			      SCMP_A0(SCMP_CMP_EQ, (uint64_t)unpack_fd),
			      SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_CAPBSET_READ));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_GET_SECUREBITS));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
			      SCMP_A0(SCMP_CMP_EQ, PR_GET_NO_NEW_PRIVS));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
			      SCMP_A0(SCMP_CMP_EQ, PR_CAP_AMBIENT),
			      SCMP_A1(SCMP_CMP_EQ, PR_CAP_AMBIENT_IS_SET));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, SCMP_A0(SCMP_CMP_EQ, 0),
			      SCMP_A2(SCMP_CMP_EQ, 0));
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal), 1,
			      SCMP_A1(SCMP_CMP_EQ, SIGKILL));
	if (r)
		fatal("imaged: seccomp rules for crisp-fetch and crisp-unpack failed");
}

scmp_filter_ctx imaged_sandbox_enter(const struct crisp_config *cfg)
{
	static const char *writable[2], *hidden[3];
	scmp_filter_ctx filter;

	writable[0] = xasprintf("%s/imaged", cfg->root_dir);
	policy.writable_paths = writable;
	/* Pods' netns pins, container rootfs and shm mounts, pod volumes. */
	hidden[0] = cfg->state_dir;
	hidden[1] = "/var/lib/kubelet";
	policy.hidden_paths = hidden;
	policy.workdir = writable[0];
	filter = sandbox_compile(&policy);
	network_rules(filter);
	child_rules(filter, fetch_program_fd(), unpack_program_fd());
	sandbox_enter(&policy);
	return filter;
}

void imaged_sandbox_lock(scmp_filter_ctx filter)
{
	sandbox_lock(&policy, filter);
}
