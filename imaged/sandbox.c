/* imaged's confinement. imaged will parse the most hostile input crisp sees
 * (registry responses, manifests, tar layers), so it keeps only what writing
 * image content with its original ownership and modes needs, never executes
 * anything, and sees the whole host read-only but its own directory (where
 * device nodes it creates do not work: nodev). */
#include "autoconfig.h"

#include <linux/capability.h>

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

/* Beyond sandbox_base_syscalls: only the calls of filesystem work under
 * imaged's own root. No execve, no socket creation, no mount. */
static const int imaged_syscalls[] = {
	SCMP_SYS(openat),     SCMP_SYS(openat2),   SCMP_SYS(getdents64), SCMP_SYS(statx),
	SCMP_SYS(statfs),     SCMP_SYS(fstatfs),   SCMP_SYS(mkdirat),    SCMP_SYS(unlinkat),
	SCMP_SYS(renameat2),  SCMP_SYS(linkat),    SCMP_SYS(symlinkat),  SCMP_SYS(readlinkat),
	SCMP_SYS(mknodat),    SCMP_SYS(fchownat),  SCMP_SYS(fchown),     SCMP_SYS(fchmodat),
	SCMP_SYS(fchmod),     SCMP_SYS(utimensat), SCMP_SYS(fsetxattr),  SCMP_SYS(fgetxattr),
	SCMP_SYS(flistxattr), SCMP_SYS(fsync),     SCMP_SYS(fdatasync),  SCMP_SYS(ftruncate),
	SCMP_SYS(fallocate),  SCMP_SYS(pread64),   SCMP_SYS(pwrite64),   SCMP_SYS(umask),
};

void imaged_sandbox(const struct crisp_config *cfg)
{
	_cleanup_free_ char *home = xasprintf("%s/imaged", cfg->root_dir);
	const char *writable[] = { home, NULL };
	struct sandbox_policy policy = {
		.name = "imaged",
		.writable_paths = writable,
		.caps = imaged_caps,
		.ncaps = ARRAY_SIZE(imaged_caps),
		.workdir = home,
		.no_new_privs = true,
		.syscalls = imaged_syscalls,
		.nsyscalls = ARRAY_SIZE(imaged_syscalls),
	};
	scmp_filter_ctx filter = sandbox_compile(&policy);

	sandbox_enter(&policy);
	sandbox_lock(&policy, filter);
}
