/* imaged's confinement. imaged will parse the most hostile input crisp sees
 * (registry responses, manifests, tar layers), so it keeps only what writing
 * image content with its original ownership and modes needs, never executes
 * anything, and sees the whole host read-only but its own directory (where
 * device nodes it creates do not work: nodev). */
#include "autoconfig.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "imaged/imaged.h"

static const int imaged_caps[] = {
	CAP_CHOWN,        /* files keep their owners from the layer */
	CAP_DAC_OVERRIDE, /* write into read-only directories of a layer */
	CAP_FOWNER,       /* set modes and times on files of other owners */
	CAP_FSETID,       /* keep setuid/setgid bits from the layer */
	CAP_MKNOD,        /* device nodes and whiteouts (0:0 char devices) */
	CAP_SETFCAP,      /* security.capability xattrs from the layer */
};

/* Beyond sandbox_base_syscalls: the filesystem work of the content store,
 * the snapshots and SQLite under imaged's own root; the network calls of
 * the registry client (libcurl: TCP sockets, its resolver); threads for
 * unpacking (policy.threads). No execve, no mount, no namespaces. */
static const int imaged_syscalls[] = {
	/* files */
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(getdents64), SCMP_SYS(statx),
	SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(mkdirat), SCMP_SYS(unlinkat),
	SCMP_SYS(unlink), SCMP_SYS(renameat2), SCMP_SYS(rename), SCMP_SYS(linkat),
	SCMP_SYS(symlinkat), SCMP_SYS(readlinkat), SCMP_SYS(readlink), SCMP_SYS(mknodat),
	SCMP_SYS(fchownat), SCMP_SYS(fchown), SCMP_SYS(fchmodat), SCMP_SYS(fchmod),
	SCMP_SYS(utimensat), SCMP_SYS(fsetxattr), SCMP_SYS(fgetxattr), SCMP_SYS(flistxattr),
	SCMP_SYS(fsync), SCMP_SYS(syncfs), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
	SCMP_SYS(fallocate), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(umask),
	SCMP_SYS(copy_file_range), /* the copy snapshotter */
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(getcwd),
	SCMP_SYS(flock), SCMP_SYS(geteuid), /* SQLite, when it creates its journal as root */
	/* network: the registry client (socket and ioctl: argument rules below) */
	SCMP_SYS(connect), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(shutdown), SCMP_SYS(socketpair), SCMP_SYS(uname),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_yield), SCMP_SYS(eventfd2),
	SCMP_SYS(epoll_create1),
	SCMP_SYS(sendmmsg), /* glibc resolver: A and AAAA queries in one call */
};

static struct sandbox_policy policy = {
	.name = "imaged",
	.caps = imaged_caps,
	.ncaps = ARRAY_SIZE(imaged_caps),
	.no_new_privs = true,
	.threads = true,
	.syscalls = imaged_syscalls,
	.nsyscalls = ARRAY_SIZE(imaged_syscalls),
};

/* Sockets to registries only: TCP over IPv4 or IPv6. A unix socket would let
 * imaged's uid 0 talk to local daemons (the system bus, systemd, crisp's own
 * CRI socket), which a read-only view of the host does not stop; glibc asks
 * for one to reach nscd and copes with EACCES. ioctl: FIONREAD (glibc's
 * resolver) and FIONBIO only; anything else (a terminal's TIOCSTI, say) is
 * a violation like any other syscall. */
static void network_rules(scmp_filter_ctx f)
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
	if (r)
		fatal("imaged: seccomp network rules failed");
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
	sandbox_enter(&policy);
	return filter;
}

void imaged_sandbox_lock(scmp_filter_ctx filter)
{
	sandbox_lock(&policy, filter);
}
