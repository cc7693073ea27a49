/* fuzz-launch-check: a libFuzzer target for the policy crisp-launch applies
 * to every request (launch/check_netd.c, launch/check_runtimed.c). These
 * checks run as root with every capability and no seccomp filter, on
 * strings a helper taken over chooses, so a crash or an out-of-bounds read
 * in them is the worst bug crisp could have. The bytes are one request as
 * the launcher hands it to a check, after its own bounds (serve.c: at most
 * LAUNCH_ARGS_MAX arguments and LAUNCH_ENV_MAX variables, each shorter than
 * LAUNCH_STRING_MAX and without NUL):
 *
 *	byte 0      which check: cni, runtime handler, monitor, pause, exec
 *	then        lines ('\n'): the file, then "E:<variable>" lines for the
 *	            environment and any other line as the next argument
 *
 * The policy is fixed, with the values runtimed and netd pass on a default
 * install. Each check must return 0 or -1, and on -1 say why in a
 * NUL-terminated message that fits its buffer.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-launch-check
 *	./tests/fuzz/fuzz-launch-check -max_total_time=60 \
 *		../tests/fuzz/seeds/fuzz-launch-check */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "launch/policy.h"
#include "launch/serve.h"

struct launch_policy launch_policy;

static const char *const handler_paths[] = { "/usr/bin/runc", "/usr/local/bin/crun" };

static void setup(void)
{
	launch_policy.netns_dir = "/run/crisp/netns";
	launch_policy.cni_path = "/usr/lib/cni:/opt/cni/bin";
	launch_policy.runc_root = "/run/crisp/runtimed/runc";
	launch_policy.bundles = "/run/crisp/runtimed/bundles";
	launch_policy.exits_dir = "/var/lib/crisp/runtimed/exits";
	launch_policy.pause_rootfs = "/run/crisp/runtimed/pause/rootfs";
	launch_policy.userns_dir = "/run/crisp/userns";
	launch_policy.cgroup_root = "/sys/fs/cgroup";
	launch_policy.handler_paths = handler_paths;
	launch_policy.nhandlers = 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const launch_check_fn checks[] = { cni_launch_check, check_runc, check_monitor,
						  check_pause, check_exec };
	/* +1: the last line of the input; +1 more for the NULL */
	char *argv[LAUNCH_ARGS_MAX + 1], *envp[LAUNCH_ENV_MAX + 1], *file = NULL;
	size_t nargs = 0, nenv = 0;
	char why[256], *buf, *line, *next;
	launch_check_fn check;
	int r;

	if (size < 1 || size > 64 * 1024 || memchr(data, '\0', size))
		return 0;
	if (!launch_policy.netns_dir)
		setup();
	check = checks[data[0] % (sizeof(checks) / sizeof(checks[0]))];
	/* Each string in a heap block of its own, so that ASan sees a read
	 * past any of them. */
	buf = malloc(size);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	for (line = buf; line; line = next) {
		size_t len;
		char *s;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		len = strlen(line);
		if (len >= LAUNCH_STRING_MAX)
			goto out;
		if (!file) {
			file = strdup(line);
			if (!file)
				abort();
			continue;
		}
		if (strncmp(line, "E:", 2) == 0) {
			if (nenv == LAUNCH_ENV_MAX)
				goto out;
			s = envp[nenv++] = strdup(line + 2);
		} else {
			if (nargs == LAUNCH_ARGS_MAX)
				goto out;
			s = argv[nargs++] = strdup(line);
		}
		if (!s)
			abort();
	}
	/* the launcher refuses a START without argv[0] before any check */
	if (nargs == 0)
		goto out;
	argv[nargs] = NULL;
	envp[nenv] = NULL;
	memset(why, 'x', sizeof(why));
	r = check(*file ? file : NULL, argv, envp, why, sizeof(why));
	if (r != 0 && r != -1)
		abort();
	if (r < 0 && !memchr(why, '\0', sizeof(why)))
		abort();
out:
	for (size_t i = 0; i < nargs; i++)
		free(argv[i]);
	for (size_t i = 0; i < nenv; i++)
		free(envp[i]);
	free(file);
	free(buf);
	return 0;
}
