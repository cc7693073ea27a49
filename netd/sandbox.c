/* netd's confinement. netd creates, pins and removes pod network
 * namespaces and connects sockets inside them; it stays uid 0, in the
 * host's mount namespace (its pins must be visible to runc), with the two
 * capabilities that needs. CNI plugins need far more and must not inherit
 * this filter: they run through the launcher, forked before the drop
 * (common/launcher.h, docs/PRIVSEP.md). */
#include "autoconfig.h"

#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "netd/netd.h"

static const int netd_caps[] = {
	CAP_NET_ADMIN, /* bringing lo up in a new pod netns */
	CAP_SYS_ADMIN, /* unshare/setns of network namespaces, their bind mounts */
	/* A pod's user namespace (hostUsers: false): writing its uid_map and
	 * gid_map with ranges other than netd's own ids needs these in the
	 * parent (host) user namespace, and CAP_SETGID is what lets gid_map
	 * be written without setgroups "deny" (netns.c). */
	CAP_SETUID,
	CAP_SETGID,
};

static const int netd_syscalls[] = {
	/* the CNI conf dir, plugin lookup, records, the netns pins */
	SCMP_SYS(openat),
	SCMP_SYS(getdents64),
	SCMP_SYS(statx),
	SCMP_SYS(statfs), /* is a pin an nsfs mount (netns_exists) */
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(readlinkat),
	SCMP_SYS(pread64),
	SCMP_SYS(mkdir),
	SCMP_SYS(mkdirat),
	/* durable state in its own directory, replaced atomically (the
	 * records from worker threads, netd/cache.c: the same calls) */
	SCMP_SYS(fsync),
	SCMP_SYS(rename),
	SCMP_SYS(renameat),
	SCMP_SYS(renameat2),
	SCMP_SYS(unlink),
	SCMP_SYS(unlinkat),
	/* watching the conf and bin dirs */
	SCMP_SYS(inotify_add_watch),
	SCMP_SYS(inotify_rm_watch),
	/* port-forward: a non-blocking connect with a bounded wait */
	SCMP_SYS(connect),
	/* reaping a launcher that went away (common/launcher.c), before
	 * exiting to be restarted with a new one; and the child that makes a
	 * pod's user namespace (netns.c) */
	SCMP_SYS(wait4),
	/* ... which sends netd its namespaces as fds on a socketpair */
	SCMP_SYS(socketpair),
	SCMP_SYS(getsockopt),
	/* short-lived worker threads */
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(sched_yield),
	SCMP_SYS(prctl),
};

/* Calls allowed only with the arguments netd uses: a stolen netd still
 * cannot make other namespaces, other mounts, or netlink/raw/packet
 * sockets. */
static void add_narrow_rules(scmp_filter_ctx f)
{
	int r = 0;

	/* a new netns per pod, and entering one for port-forward */
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
					SCMP_A0(SCMP_CMP_EQ, CLONE_NEWNET));
	/* a pod's user namespace (netns.c): a plain fork (exactly SIGCHLD,
	 * no CLONE_* flag: threads have their own rule, common/sandbox.c)
	 * whose child unshares the user namespace alone, then net */
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
					SCMP_A0(SCMP_CMP_EQ, SIGCHLD));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
					SCMP_A0(SCMP_CMP_EQ, CLONE_NEWUSER));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(setns), 1,
					SCMP_A1(SCMP_CMP_EQ, CLONE_NEWNET));
	/* pinning: a plain bind mount, no other flags; unpinning, detached */
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mount), 1,
					SCMP_A3(SCMP_CMP_EQ, MS_BIND));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(umount2), 1,
					SCMP_A1(SCMP_CMP_EQ, MNT_DETACH | UMOUNT_NOFOLLOW));
	/* IP sockets only: lo's flags and port-forward connections */
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					SCMP_A0(SCMP_CMP_EQ, AF_INET));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					SCMP_A1(SCMP_CMP_EQ, SIOCGIFFLAGS));
	r = r
		    ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					SCMP_A1(SCMP_CMP_EQ, SIOCSIFFLAGS));
	if (r < 0)
		fatal("netd: seccomp argument rules: %s", strerror(-r));
}

void netd_sandbox(const struct crisp_config *cfg)
{
	_cleanup_free_ char *home = xasprintf("%s/netd", cfg->root_dir);
	struct sandbox_policy policy = {
		.name = "netd",
		.caps = netd_caps,
		.ncaps = ARRAY_SIZE(netd_caps),
		.workdir = home,
		.no_new_privs = true,
		/* netd sends no signal itself: CNI plugins are killed by the
		 * launcher (forked before, outside this domain, unscoped); the
		 * user-namespace child (netns.c), forked after, ends on EOF.
		 * Scoped, an F_SETOWN'd fd cannot signal another root process
		 * either. Its sockets are IP or socketpairs: no abstract one. */
		.landlock_scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
		.threads = true,
		.syscalls = netd_syscalls,
		.nsyscalls = ARRAY_SIZE(netd_syscalls),
	};
	scmp_filter_ctx filter = sandbox_compile(&policy);

	add_narrow_rules(filter);
	sandbox_enter(&policy);
	sandbox_lock(&policy, filter);
}
