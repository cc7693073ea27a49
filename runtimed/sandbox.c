/* runtimed's confinement. runtimed manages containers: it signals their
 * processes, reads their /proc entries and cgroups, and mounts their root
 * filesystems. It stays uid 0 with just those capabilities.
 *
 * Programs it runs (runc, the per-container monitor) must not inherit this
 * seccomp filter or these limits, since containers would too: the container
 * issue adds an unfiltered launcher forked before the drop (docs/PRIVSEP.md). */
#include "autoconfig.h"

#include <linux/capability.h>

#include "common/sandbox.h"
#include "runtimed/runtimed.h"

static const int runtimed_caps[] = {
	CAP_CHOWN,                  /* hand container state files to their users */
	CAP_DAC_OVERRIDE,           /* reach container files whatever their modes */
	CAP_FOWNER,       CAP_KILL, /* stop containers of any uid */
	CAP_SYS_ADMIN,              /* mount root filesystems, /dev/shm, cgroup writes */
	CAP_SYS_PTRACE,             /* /proc/<pid>/{ns,root,status} of container processes */
};

static const int runtimed_syscalls[] = {
	SCMP_SYS(openat),     SCMP_SYS(getdents64), SCMP_SYS(statx),     SCMP_SYS(statfs),
	SCMP_SYS(fstatfs),    SCMP_SYS(access),     SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(readlinkat), SCMP_SYS(pread64),    SCMP_SYS(pwrite64),  SCMP_SYS(kill),
	SCMP_SYS(wait4),      SCMP_SYS(waitid),
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
		.syscalls = runtimed_syscalls,
		.nsyscalls = ARRAY_SIZE(runtimed_syscalls),
	};
	scmp_filter_ctx filter = sandbox_compile(&policy);

	sandbox_enter(&policy);
	sandbox_lock(&policy, filter);
}
