/* crisp-fetch's confinement. It parses what registries send (HTTP, TLS,
 * token server JSON) with libcurl, OpenSSL and whatever they load, so it
 * holds nothing worth taking: imaged starts it with no capability and
 * no_new_privs (imaged/fetch_client.c), and this filter leaves it TCP
 * sockets, files to read (CA bundles, /etc/resolv.conf, /etc/hosts,
 * /etc/nsswitch.conf, OpenSSL's configuration), threads for libcurl's
 * resolver, and the pipes and channel imaged gave it. It writes no file,
 * executes nothing, and sends no signal.
 *
 * The filter stacks on imaged's, which it inherited: a syscall must pass
 * both (imaged's allows crisp-fetch's network calls for that reason). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "fetch/fetch.h"

/* Beyond sandbox_base_syscalls. No openat2 (its flags are out of the
 * filter's sight), no write to any path, no execve, no fork, no kill. */
static const int fetch_syscalls[] = {
	/* reading files: CA bundles, resolver and NSS files, OpenSSL config
	 * (openat: argument rule below) */
	SCMP_SYS(statx),
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(readlink),
	SCMP_SYS(readlinkat),
	SCMP_SYS(getdents64),
	SCMP_SYS(pread64),
	SCMP_SYS(getuid),
	SCMP_SYS(geteuid),
	SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	SCMP_SYS(fstatfs),
	SCMP_SYS(statfs),
	SCMP_SYS(sysinfo), /* glibc's sysconf(_SC_PHYS_PAGES), for OpenSSL */
	/* network (socket and ioctl: argument rules below) */
	SCMP_SYS(connect),
	SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	SCMP_SYS(shutdown),
	SCMP_SYS(sendmmsg),   /* glibc resolver: A and AAAA queries in one call */
	SCMP_SYS(socketpair), /* libcurl's resolver wakes its loop with one */
	SCMP_SYS(uname),
	/* the loop and libcurl's resolver threads */
	SCMP_SYS(epoll_create1),
	SCMP_SYS(eventfd2),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(sched_yield),
	/* fetch_landlock(), once configured: they only take away */
	SCMP_SYS(landlock_create_ruleset),
	SCMP_SYS(landlock_add_rule),
	SCMP_SYS(landlock_restrict_self),
};

static struct sandbox_policy policy = {
	.name = "crisp-fetch",
	.no_new_privs = true,
	.threads = true,
	.syscalls = fetch_syscalls,
	.nsyscalls = ARRAY_SIZE(fetch_syscalls),
};

/* Opening for reading only: a uid 0 without capabilities still owns, and so
 * could write, most of the host's files and imaged's own directory (imaged's
 * mount namespace leaves that writable). An open for writing, creating or
 * truncating kills, like any syscall outside the list. TCP sockets only;
 * AF_UNIX fails with EACCES (glibc asks for nscd's socket and copes): a unix
 * socket would reach local daemons. ioctl: FIONREAD and FIONBIO only. */
static void argument_rules(scmp_filter_ctx f)
{
	const uint64_t write_flags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;
	int r = 0;

	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ, write_flags, 0));
	r |= sandbox_tcp_client_rules(f);
	/* glibc's pthread_create reads its own stack limit; no other
	 * process's, and setting none (uid 0 may lower other root processes'
	 * limits without CAP_SYS_RESOURCE) */
	r |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, SCMP_A0(SCMP_CMP_EQ, 0),
			      SCMP_A2(SCMP_CMP_EQ, 0));
	if (r)
		fatal("crisp-fetch: seccomp argument rules failed");
}

/* "CapEff:\t0000000000000000" and the like, from /proc/self/status. */
static void check_status(void)
{
	static const char *const zero_caps[] = { "CapInh:", "CapPrm:", "CapEff:", "CapAmb:" };
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned seen = 0;
	bool nnp = false;

	if (!f)
		fatal("crisp-fetch: /proc/self/status: %m");
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < ARRAY_SIZE(zero_caps); i++) {
			size_t n = strlen(zero_caps[i]);
			unsigned long long v;

			if (strncmp(line, zero_caps[i], n) != 0)
				continue;
			if (sscanf(line + n, "%llx", &v) != 1 || v != 0)
				fatal("crisp-fetch: started with capabilities (%s): imaged must "
				      "drop them all",
				      zero_caps[i]);
			seen++;
		}
		if (strncmp(line, "NoNewPrivs:", 11) == 0)
			nnp = strtol(line + 11, NULL, 10) == 1;
	}
	fclose(f);
	if (seen != ARRAY_SIZE(zero_caps))
		fatal("crisp-fetch: cannot read its capability sets");
	if (!nnp)
		fatal("crisp-fetch: started without no_new_privs");
}

void fetch_sandbox(void)
{
	scmp_filter_ctx filter;

	check_status();
	/* Not dumpable: other uid 0 processes without CAP_SYS_PTRACE cannot
	 * read the credentials in our memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("crisp-fetch: PR_SET_DUMPABLE: %m");
	filter = sandbox_compile(&policy);
	argument_rules(filter);
	sandbox_lock(&policy, filter);
}

static void landlock_allow(int ruleset, const char *path)
{
	struct landlock_path_beneath_attr rule = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("crisp-fetch: Landlock: %s: %m", path);
		return;
	}
	rule.parent_fd = fd;
	rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		rule.allowed_access |= LANDLOCK_ACCESS_FS_READ_DIR;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		log_warn("crisp-fetch: Landlock rule for %s: %m", path);
	close(fd);
}

/* uid 0 without capabilities still owns most of the host's files: the
 * owner's read bit would let crisp-fetch read /etc/shadow, private keys,
 * kubeconfigs, everything root-owned and 0600 in imaged's view. Landlock
 * leaves it reading what a registry client reads: libraries and shared
 * data under /usr, the CA store, the resolver's and NSS's files, OpenSSL's
 * and GnuTLS's configuration, and the hosts' configured CA files (extra).
 * Paths are opened following symlinks, so a rule is on what they name
 * (the certificates in /etc/ssl/certs point into /usr/share/ca-certificates). On a kernel
 * without Landlock it says so and goes on with its seccomp filter alone.
 * The same ruleset scopes signals and abstract unix sockets (ABI 6). */
void fetch_landlock(const char *const *extra, size_t nextra)
{
	static const char *const paths[] = {
		"/usr",
		"/etc/ssl/certs",
		"/etc/ssl/openssl.cnf",
		"/etc/gnutls",
		"/etc/resolv.conf",
		"/etc/hosts",
		"/etc/host.conf",
		"/etc/nsswitch.conf",
		"/etc/gai.conf",
		"/etc/services",
		"/etc/protocols",
		"/etc/ld.so.cache",
		"/etc/localtime",
		"/dev/urandom",
		"/sys/devices/system/cpu",
		"/proc/sys/kernel",
	};
	struct sandbox_landlock_attr attr;
	long abi = sandbox_landlock_abi();
	int ruleset;

	if (abi < 1) {
		log_warn("crisp-fetch: Landlock unavailable (%m): it can read any file uid 0 owns "
			 "in imaged's view");
		return;
	}
	/* TCP is what it is for: not handled. The scopes: it signals nothing
	 * (no kill in its filter, F_SETOWN refused; imaged, its parent,
	 * neither) and reaches no abstract unix socket. On older kernels
	 * imaged has warned already. */
	sandbox_landlock_attr_all(&attr, abi, false);
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		fatal("crisp-fetch: Landlock ruleset: %m");
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		landlock_allow(ruleset, paths[i]);
	for (size_t i = 0; i < nextra; i++)
		landlock_allow(ruleset, extra[i]);
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		fatal("crisp-fetch: Landlock: %m");
	close(ruleset);
}
