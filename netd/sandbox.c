/* netd's confinement. netd creates and removes network namespaces and asks
 * the kernel about pod interfaces. It stays uid 0 with the two capabilities
 * that needs. CNI plugins need far more and must not inherit this filter:
 * the network issue adds an unfiltered launcher forked before the drop
 * (docs/PRIVSEP.md). */
#include "autoconfig.h"

#include <linux/capability.h>

#include "common/sandbox.h"
#include "netd/netd.h"

static const int netd_caps[] = {
	CAP_NET_ADMIN, /* interfaces and addresses inside pod namespaces */
	CAP_SYS_ADMIN, /* unshare/setns of network namespaces, their bind mounts */
};

static const int netd_syscalls[] = {
	SCMP_SYS(openat),
	SCMP_SYS(getdents64),
	SCMP_SYS(statx),
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(readlinkat),
	SCMP_SYS(pread64),
	/* durable state in its own directory, replaced atomically */
	SCMP_SYS(fsync),
	SCMP_SYS(rename),
	SCMP_SYS(renameat),
	SCMP_SYS(renameat2),
	SCMP_SYS(unlink),
	SCMP_SYS(unlinkat),
};

void netd_sandbox(const struct crisp_config *cfg)
{
	_cleanup_free_ char *home = xasprintf("%s/netd", cfg->root_dir);
	struct sandbox_policy policy = {
		.name = "netd",
		.caps = netd_caps,
		.ncaps = ARRAY_SIZE(netd_caps),
		.workdir = home,
		.no_new_privs = true,
		.syscalls = netd_syscalls,
		.nsyscalls = ARRAY_SIZE(netd_syscalls),
	};
	scmp_filter_ctx filter = sandbox_compile(&policy);

	sandbox_enter(&policy);
	sandbox_lock(&policy, filter);
}
