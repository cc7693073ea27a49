/* crisp-unpack's confinement, in this order (unpack_sandbox):
 *
 *  1. capabilities: exactly the six file extraction needs, in the effective
 *     and permitted sets (imaged's bounding set and no_new_privs already cap
 *     what exec gave; capset makes it exact, /proc/self/status confirms it);
 *  2. not dumpable;
 *  3. Landlock: files and directories may be made, written, removed and
 *     linked only beneath the snapshot directory (fd UNPACK_ROOT_FD), read
 *     only beneath it and the lower layers' directories; no TCP, no signal
 *     outside its own domain, no abstract unix socket. The blob is open
 *     already. On a kernel without Landlock it says so and goes on with
 *     seccomp alone, as crisp-fetch does;
 *  4. its own seccomp filter, stacked on imaged's: the *at() calls of
 *     imaged/unpack.c and nothing else. No socket, no exec, no fork, no
 *     thread, no signal.
 *
 * What Landlock cannot restrict (it has no right for them): changing the
 * owner, mode, times or xattrs of an existing file (fchownat, fchmodat,
 * utimensat, fsetxattr). Those reach whatever imaged's mount namespace
 * leaves writable: imaged's own directory. docs/PRIVSEP.md says what that
 * leaves an attacker. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "imaged/unpack.h"
#include "unpack/unpack.h"

/* The same six as imaged keeps (imaged/unpack.h). */
static const int unpack_caps[] = UNPACK_CAPS;

/* Beyond sandbox_base_syscalls: what imaged/unpack.c calls. openat and
 * openat2 take any flags: Landlock decides where a file may be opened for
 * writing (seccomp cannot read openat2's flags, nor any path). */
static const int unpack_syscalls[] = {
	SCMP_SYS(openat),   SCMP_SYS(openat2),   SCMP_SYS(getdents64), SCMP_SYS(statx),
	SCMP_SYS(mkdirat),  SCMP_SYS(mknodat),   SCMP_SYS(symlinkat),  SCMP_SYS(linkat),
	SCMP_SYS(unlinkat), SCMP_SYS(fchownat),  SCMP_SYS(fchown),     SCMP_SYS(fchmodat),
	SCMP_SYS(fchmod),   SCMP_SYS(utimensat), SCMP_SYS(fsetxattr),  SCMP_SYS(ftruncate),
	SCMP_SYS(pread64),  SCMP_SYS(pwrite64),
};

static struct sandbox_policy policy = {
	.name = UNPACK_NAME,
	.caps = unpack_caps,
	.ncaps = ARRAY_SIZE(unpack_caps),
	.no_new_privs = true,
	.syscalls = unpack_syscalls,
	.nsyscalls = ARRAY_SIZE(unpack_syscalls),
};

static uint64_t caps_mask(void)
{
	uint64_t m = 0;

	for (size_t i = 0; i < ARRAY_SIZE(unpack_caps); i++)
		m |= 1ULL << unpack_caps[i];
	return m;
}

/* Raw capset: libcap-ng's capng_apply would also try to shrink the
 * bounding set, which needs CAP_SETPCAP (imaged's bounding set is these
 * six already). */
static void caps_set(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	uint64_t m = caps_mask();

	data[0].effective = data[0].permitted = (uint32_t)m;
	data[1].effective = data[1].permitted = (uint32_t)(m >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		fatal("capset to the %zu capabilities of file extraction: %m (imaged must "
		      "have them all)",
		      ARRAY_SIZE(unpack_caps));
}

/* What the kernel says we hold, from /proc/self/status (before Landlock,
 * which would refuse the read): inheritable, permitted, effective, ambient
 * and (unless n_names is 4: the archive mode cannot change it) bounding. */
static void status_check(const uint64_t *want, size_t n_names)
{
	static const char *const names[] = { "CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "CapBnd:" };
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned seen = 0;
	bool nnp = false;

	if (!f)
		fatal("/proc/self/status: %m");
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < n_names; i++) {
			size_t n = strlen(names[i]);
			unsigned long long v;

			if (strncmp(line, names[i], n) != 0)
				continue;
			if (sscanf(line + n, "%llx", &v) != 1 || v != want[i])
				fatal("%.*s %016llx, expected %016llx", (int)n - 1, names[i], v,
				      (unsigned long long)want[i]);
			seen++;
		}
		if (strncmp(line, "NoNewPrivs:", 11) == 0)
			nnp = strtol(line + 11, NULL, 10) == 1;
	}
	fclose(f);
	if (seen != n_names)
		fatal("cannot read its capability sets");
	if (!nnp)
		fatal("started without no_new_privs");
}

static void landlock_rule(int ruleset, int fd, uint64_t access, uint64_t handled)
{
	struct landlock_path_beneath_attr rule = { .allowed_access = access & handled,
						   .parent_fd = fd };

	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		fatal("Landlock rule for fd %d: %m", fd);
}

static void landlock_restrict(int n_lowers)
{
	const uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	/* Everything a layer makes, but sockets (unpack refuses them), and
	 * never execute or device ioctls. */
	const uint64_t write = read | LANDLOCK_ACCESS_FS_WRITE_FILE |
			       LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
			       LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
			       LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_FIFO |
			       LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |
			       LANDLOCK_ACCESS_FS_REFER | SANDBOX_LANDLOCK_FS_TRUNCATE;
	struct sandbox_landlock_attr attr;
	long abi = sandbox_landlock_abi();
	int ruleset;

	if (abi < 1) {
		log_warn(UNPACK_NAME ": Landlock unavailable (%m): a layer that takes over "
				     "crisp-unpack can write wherever imaged can");
		return;
	}
	sandbox_landlock_attr_all(&attr, abi, true);
	/* An older kernel takes the whole struct: the fields it does not know
	 * are 0. */
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		fatal("Landlock ruleset: %m");
	landlock_rule(ruleset, UNPACK_ROOT_FD, write, attr.handled_access_fs);
	for (int i = 0; i < n_lowers; i++)
		landlock_rule(ruleset, UNPACK_LOWER_FD + i, read, attr.handled_access_fs);
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		fatal("Landlock: %m");
	close(ruleset);
	log_debug("Landlock ABI %ld: writes beneath the snapshot only, reads beneath it and "
		  "%d lower layers",
		  abi, n_lowers);
}

void unpack_sandbox(int n_lowers)
{
	scmp_filter_ctx filter;

	const uint64_t want[] = { 0, caps_mask(), caps_mask(), 0, caps_mask() };

	caps_set();
	status_check(want, ARRAY_SIZE(want));
	/* exec made it dumpable again: other uid 0 processes without
	 * CAP_SYS_PTRACE may not read or trace it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("PR_SET_DUMPABLE: %m");
	filter = sandbox_compile(&policy);
	landlock_restrict(n_lowers);
	sandbox_lock(&policy, filter);
}

/* ---- archive mode ------------------------------------------------------------- */

/* Beyond sandbox_base_syscalls (read, write, sendto, lseek, fstat, memory,
 * exit): nothing. Not one open: the archive and the socket are open (open,
 * openat and openat2 fail with EACCES, unpack_sandbox_archive()). */
static struct sandbox_policy archive_policy = {
	.name = UNPACK_NAME " " UNPACK_ARCHIVE_ARG,
	.no_new_privs = true,
};

void unpack_caps_clear(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	/* Lowering the permitted set clears the ambient one. */
	if (syscall(SYS_capset, &hdr, data) < 0)
		fatal("capset to no capability: %m");
}

/* Every file-system right handled, none granted: no path opens, whatever
 * the filter below would let through. Plus no TCP and the scopes. */
static void landlock_nothing(void)
{
	struct sandbox_landlock_attr attr;
	long abi = sandbox_landlock_abi();
	int ruleset;

	if (abi < 1) {
		log_warn(UNPACK_NAME ": Landlock unavailable (%m): the archive reader relies on "
				     "seccomp alone");
		return;
	}
	sandbox_landlock_attr_all(&attr, abi, true);
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		fatal("Landlock ruleset: %m");
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		fatal("Landlock: %m");
	close(ruleset);
	log_debug("Landlock ABI %ld: no file access at all", abi);
}

/* libarchive converts the names of pax headers (UTF-8) with iconv, whose
 * first use reads glibc's gconv module cache: read now, the converters
 * between UTF-8 and the C locale's charset are built in. */
static void iconv_warm(void)
{
	iconv_t cd = iconv_open("ASCII", "UTF-8");

	if (cd != (iconv_t)-1)
		iconv_close(cd);
}

void unpack_sandbox_archive(void)
{
	const uint64_t none[] = { 0, 0, 0, 0 };
	scmp_filter_ctx filter;
	int r = 0;

	status_check(none, ARRAY_SIZE(none));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("PR_SET_DUMPABLE: %m");
	iconv_warm();
	filter = sandbox_compile(&archive_policy);
	/* No open succeeds; one tried (an iconv module for a charset an
	 * archive names) fails as Landlock would fail it, instead of killing
	 * the reader. */
	r |= seccomp_rule_add(filter, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	r |= seccomp_rule_add(filter, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat2), 0);
	r |= seccomp_rule_add(filter, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
	if (r)
		fatal("seccomp rules for open: %s", strerror(-r));
	landlock_nothing();
	sandbox_lock(&archive_policy, filter);
}
