/* runtimed's confinement. runtimed manages containers: it mounts their root
 * filesystems and their pods' /dev/shm, signals their processes, reads
 * their /proc entries and cgroups, keeps its records in SQLite, watches the
 * monitors' exit files with inotify and talks to the monitors over unix
 * sockets. It stays uid 0 with just those capabilities, in the host's mount
 * namespace (runc must see the mounts it makes), without chroot.
 *
 * Programs it runs (runc, the per-container monitor) must not inherit this
 * seccomp filter or these limits, since containers would too: they are run
 * by the launcher, forked before the drop (common/launcher.h,
 * docs/PRIVSEP.md). So runtimed itself has no execve or fork, and clone only
 * for threads (the disk usage and fd count workers of stats.c). */
#include "autoconfig.h"

#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "runtimed/runtimed.h"

static const int runtimed_caps[] = {
	CAP_CHOWN,        /* hand container state files to their users */
	CAP_DAC_OVERRIDE, /* reach container files whatever their modes */
	CAP_FOWNER,       /* chmod files in pod directories of any owner */
	CAP_KILL,         /* stop containers and exec'd processes of any uid */
	CAP_SYS_ADMIN,    /* mount root filesystems and /dev/shm, cgroup writes */
	CAP_SYS_PTRACE,   /* /proc/<pid>/{ns,root,net,status} of container processes */
};

/* Beyond sandbox_base_syscalls. */
static const int runtimed_syscalls[] = {
	/* files: records, bundles, pod files, exit files, /proc and cgroups */
	SCMP_SYS(openat),
	SCMP_SYS(openat2),
	SCMP_SYS(getdents64),
	SCMP_SYS(statx),
	SCMP_SYS(statfs),
	SCMP_SYS(fstatfs),
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(readlinkat),
	SCMP_SYS(readlink),
	SCMP_SYS(pread64),
	SCMP_SYS(pwrite64),
	SCMP_SYS(mkdir),
	SCMP_SYS(mkdirat),
	SCMP_SYS(unlink),
	SCMP_SYS(unlinkat),
	SCMP_SYS(rename),
	SCMP_SYS(renameat),
	SCMP_SYS(renameat2),
	SCMP_SYS(fchmod),
	SCMP_SYS(fchmodat),
	SCMP_SYS(fchown),
	SCMP_SYS(fsync),
	SCMP_SYS(fdatasync),
	SCMP_SYS(ftruncate),
	SCMP_SYS(chdir),
	SCMP_SYS(getcwd),
	SCMP_SYS(umask),
	SCMP_SYS(geteuid), /* SQLite: journal ownership as root */
	SCMP_SYS(uname),   /* gethostname for host-network pods */
	/* mounts: a container's overlay rootfs, a pod's shm tmpfs */
	SCMP_SYS(mount),
	SCMP_SYS(umount2),
	/* idmapped clones for the containers of a pod with a user namespace
	 * (idmap.c): runc 1.1 cannot make them. open_tree clones a host path's
	 * mount detached, mount_setattr maps it through the pod's user
	 * namespace, move_mount attaches it under the bundle. */
	SCMP_SYS(open_tree),
	SCMP_SYS(mount_setattr),
	SCMP_SYS(move_mount),
	/* exit files: a watch per record's exit directory, removed with it */
	SCMP_SYS(inotify_init1),
	SCMP_SYS(inotify_add_watch),
	SCMP_SYS(inotify_rm_watch),
	/* processes: signals to containers (by pid after checking its start
	 * time) and exec'd processes; the launcher is our child */
	SCMP_SYS(kill),
	SCMP_SYS(wait4),
	SCMP_SYS(waitid),
	/* a pause started without runc (pod.c): watched through a pidfd,
	 * killed through it, so a reused pid is never hit */
	SCMP_SYS(pidfd_open),
	SCMP_SYS(pidfd_send_signal),
	/* monitors' control sockets (socket itself: AF_UNIX only, below) */
	SCMP_SYS(connect),
	SCMP_SYS(getsockopt),
};

void runtimed_sandbox(const struct crisp_config *cfg)
{
	_cleanup_free_ char *home = xasprintf("%s/runtimed", cfg->root_dir);
	struct sandbox_policy policy = {
		.name = "runtimed",
		.caps = runtimed_caps,
		.ncaps = ARRAY_SIZE(runtimed_caps),
		.workdir = home,
		.no_new_privs = true,
		/* Abstract unix sockets only. runtimed signals containers,
		 * monitors and exec'd processes by pid or pidfd (container.c,
		 * exec.c, pod.c, ops.c, runc.c): all started through the
		 * launcher, forked before this, so outside runtimed's domain; a
		 * signal scope would fail each with EPERM (docs/PRIVSEP.md).
		 * Its unix sockets (the monitors') are path names. */
		.landlock_scoped = SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
		.syscalls = runtimed_syscalls,
		.nsyscalls = ARRAY_SIZE(runtimed_syscalls),
		.threads = true, /* stats.c: the disk usage and fd count workers */
	};
	scmp_filter_ctx filter = sandbox_compile(&policy);

	/* Unix sockets only (the monitors'): runtimed never talks to a network. */
	if (seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			     SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) < 0)
		fatal("runtimed: seccomp socket rule failed");
	/* A tty exec's pty (runtimed/stream.c): unlock it, open its terminal
	 * from the master, make it raw, and watch its size. No other ioctl:
	 * in particular not TIOCSTI, which would type into a terminal. */
	static const unsigned long pty_ioctls[] = { TIOCSPTLCK, TIOCGPTPEER, TCGETS, TCSETS,
						    TIOCGWINSZ };
	for (size_t i = 0; i < ARRAY_SIZE(pty_ioctls); i++)
		if (seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ, pty_ioctls[i])) < 0)
			fatal("runtimed: seccomp ioctl rule failed");
	sandbox_enter(&policy);
	sandbox_lock(&policy, filter);
}
