/* What runtimed's launcher agrees to run (launch/policy.h). These checks
 * run in crisp-launch, which keeps root and has no seccomp filter: they are
 * the whole policy for what a compromised runtimed could make it execute.
 * So the grammar is exact: runc (or another OCI runtime handler) with our
 * --root, one of the subcommands runtimed uses with only the flags it
 * passes, container ids of 64 hex, and every file under that container's
 * own bundle directory; the monitor with exactly its CLI (monitor.h);
 * crisp-pause's setup mode with the sandbox's own netns, cgroups named for
 * the sandbox, runtimed's pause rootfs and namespaced sysctls only. The
 * environment is one fixed PATH. `runc create`, `run` and `start` are not
 * allowed: only the monitor starts containers (`runc run --detach`). */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "launch/policy.h"

/* runtimed passes exactly this (runtimed/ops.c and the others use its
 * launch_env, made of the same macro). */
static const char *const launch_env[] = {
	LAUNCH_PATH_ENV,
	NULL,
};

static bool id_valid(const char *id)
{
	return id_hex_valid(id);
}

/* The path of a configured runtime handler (runtimed's handler_by_path). */
static bool handler_path_ok(const char *path)
{
	for (size_t i = 0; i < launch_policy.nhandlers; i++)
		if (streq(launch_policy.handler_paths[i], path))
			return true;
	return false;
}

static int refuse(char *why, size_t whylen, const char *fmt, ...) _printf_(3, 4);
static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool env_ok(char *const envp[])
{
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		if (!launch_env[i] || strcmp(envp[i], launch_env[i]) != 0)
			return false;
	return envp && !launch_env[i];
}

static size_t count(char *const argv[])
{
	size_t n = 0;

	while (argv[n])
		n++;
	return n;
}

/* <bundles>/<id>/<name> with name matching prefix...suffix, a plain name. */
static bool bundle_file_ok(const char *path, const char *id, const char *prefix, const char *suffix)
{
	size_t bl = strlen(launch_policy.bundles), pl = strlen(prefix), sl = strlen(suffix);
	const char *name;

	if (strncmp(path, launch_policy.bundles, bl) != 0 || path[bl] != '/' ||
	    strncmp(path + bl + 1, id, ID_HEX_LEN) != 0 || path[bl + 1 + ID_HEX_LEN] != '/')
		return false;
	name = path + bl + 2 + ID_HEX_LEN;
	if (strchr(name, '/') || strlen(name) < pl + sl || strncmp(name, prefix, pl) != 0 ||
	    strcmp(name + strlen(name) - sl, suffix) != 0)
		return false;
	for (const char *p = name + pl; p < name + strlen(name) - sl; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static bool signal_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 16 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+") == n;
}

int check_runc(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen)
{
	size_t n = count(argv);
	const char *sub, *id;

	if (!env_ok(envp))
		return refuse(why, whylen, "runtime: environment is not the fixed PATH");
	if (n < 4 || strcmp(argv[1], "--root") != 0 ||
	    strcmp(argv[2], launch_policy.runc_root) != 0)
		return refuse(why, whylen, "runtime: must start with --root %s",
			      launch_policy.runc_root);
	sub = argv[3];
	/* what the runtime supports (JSON on stdout), asked once at start */
	if (n == 4 && streq(sub, "features"))
		return 0;
	if (n < 5)
		return refuse(why, whylen, "runtime %.32s: no container id", sub);
	/* the container id is last, but for kill (<id> <signal>) */
	id = streq(sub, "kill") ? argv[4] : argv[n - 1];
	if (!id_valid(id))
		return refuse(why, whylen, "runtime %s: the last argument is not a container id",
			      sub);
	if (streq(sub, "delete")) {
		if (n == 5 || (n == 6 && streq(argv[4], "--force")))
			return 0;
	} else if (streq(sub, "kill")) {
		/* runc kill <id> <signal> */
		if (n == 6 && signal_ok(argv[5]))
			return 0;
		return refuse(why, whylen, "runtime kill: expected <id> <signal>");
	} else if (streq(sub, "update")) {
		if (n == 7 && streq(argv[4], "--resources") &&
		    bundle_file_ok(argv[5], id, "resources", ".json"))
			return 0;
	} else if (streq(sub, "exec")) {
		/* ExecSync's exec-N files and the streaming server's stream-N
		 * (runtimed/stream.c); a tty is asked for in the process file. */
		if (n == 9 && streq(argv[4], "--process") && streq(argv[6], "--pid-file") &&
		    ((bundle_file_ok(argv[5], id, "exec-", ".json") &&
		      bundle_file_ok(argv[7], id, "exec-", ".pid")) ||
		     (bundle_file_ok(argv[5], id, "stream-", ".json") &&
		      bundle_file_ok(argv[7], id, "stream-", ".pid"))))
			return 0;
	} else {
		return refuse(why, whylen, "runtime: subcommand '%.32s' is not allowed", sub);
	}
	return refuse(why, whylen, "runtime %s: arguments not allowed", sub);
}

static bool log_path_ok(const char *p)
{
	size_t n = strlen(p);

	if (streq(p, "/dev/null"))
		return true;
	return n > 1 && n < 4096 && p[0] == '/' && !strstr(p, "/../") && !strstr(p, "/./") &&
	       (n < 3 || strcmp(p + n - 3, "/..") != 0) &&
	       (n < 2 || strcmp(p + n - 2, "/.") != 0) && !strstr(p, "//");
}

int check_monitor(const char *file, char *const argv[], char *const envp[], char *why,
		  size_t whylen)
{
	size_t n = count(argv), i;
	const char *id = NULL;
	_cleanup_free_ char *bundle = NULL, *exitf = NULL;

	if (!env_ok(envp))
		return refuse(why, whylen, "monitor: environment is not the fixed PATH");
	if (n < 15 || !streq(argv[1], "--id") || !id_valid(argv[2]))
		return refuse(why, whylen, "monitor: must start with --id <container id>");
	id = argv[2];
	bundle = xasprintf("%s/%s", launch_policy.bundles, id);
	/* the id's own exit directory, which the monitor's Landlock rule then
	 * covers alone: never <exits>/ itself nor another id's */
	exitf = xasprintf("%s/%s/exit.json", launch_policy.exits_dir, id);
	if (!streq(argv[3], "--bundle") || !streq(argv[4], bundle))
		return refuse(why, whylen, "monitor: --bundle must be %s", bundle);
	if (!streq(argv[5], "--runtime") || !handler_path_ok(argv[6]))
		return refuse(why, whylen, "monitor: --runtime is not a configured runtime");
	if (!streq(argv[7], "--runtime-root") || !streq(argv[8], launch_policy.runc_root))
		return refuse(why, whylen, "monitor: --runtime-root must be %s",
			      launch_policy.runc_root);
	if (!streq(argv[9], "--log") || !log_path_ok(argv[10]))
		return refuse(why, whylen, "monitor: --log must be an absolute clean path");
	if (!streq(argv[11], "--exit-file") || !streq(argv[12], exitf))
		return refuse(why, whylen, "monitor: --exit-file must be %s", exitf);
	if (!streq(argv[13], "--log-max") || strlen(argv[14]) > 9 ||
	    strspn(argv[14], "0123456789") != strlen(argv[14]) || !*argv[14])
		return refuse(why, whylen, "monitor: --log-max must be a number of bytes");
	for (i = 15; i < n; i++)
		if (!streq(argv[i], "--stdin") && !streq(argv[i], "--stdin-once") &&
		    !streq(argv[i], "--tty"))
			return refuse(why, whylen, "monitor: unknown argument '%.32s'", argv[i]);
	return 0;
}

/* <cgroup root>/<hierarchy>[/<component>...]/crisp-<id> (hierarchy may be
 * absent on v2): clean, no "." or "..", ending in this sandbox's own name,
 * so a compromised runtimed can move pause nowhere but into a cgroup named
 * for the pod it starts. */
static bool pause_cgroup_ok(const char *p, const char *id)
{
	size_t rl = strlen(launch_policy.cgroup_root), n = strlen(p);
	const char *last = strrchr(p, '/');

	if (strncmp(p, launch_policy.cgroup_root, rl) != 0 || p[rl] != '/' || n > 1024 || !last ||
	    strncmp(last + 1, "crisp-", 6) != 0 || !streq(last + 7, id))
		return false;
	for (const char *c = p + rl + 1; *c;) {
		size_t cl = strcspn(c, "/");
		if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < cl; i++)
			if ((unsigned char)c[i] <= 0x20 || c[i] == 0x7f)
				return false;
		c += cl + (c[cl] == '/');
	}
	return p[n - 1] != '/';
}

/* NAME=VALUE: a sysctl name of the namespaced kinds kubelet allows (net.*,
 * kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*), plain characters,
 * and a value without control characters. crisp-pause checks the name
 * against the namespaces it owns again. */
static bool pause_sysctl_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t n = eq ? (size_t)(eq - kv) : 0;
	char name[257];

	if (!eq || n == 0 || n > 256 || strlen(eq + 1) > 1024 ||
	    strspn(kv, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n ||
	    kv[0] == '.' || kv[n - 1] == '.')
		return false;
	memcpy(name, kv, n);
	name[n] = '\0';
	if (strstr(name, ".."))
		return false;
	for (const char *v = eq + 1; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return strncmp(name, "net.", 4) == 0 || strncmp(name, "kernel.shm", 10) == 0 ||
	       strncmp(name, "kernel.msg", 10) == 0 || streq(name, "kernel.sem") ||
	       strncmp(name, "fs.mqueue.", 10) == 0;
}

static bool number_ok(const char *s, bool sign, size_t max)
{
	if (sign && *s == '-')
		s++;
	return *s && strlen(s) <= max && strspn(s, "0123456789") == strlen(s);
}

static bool ns_mode_ok(char *const argv[], size_t i, const char *opt)
{
	return streq(argv[i], opt) && (streq(argv[i + 1], "new") || streq(argv[i + 1], "host"));
}

/* crisp-pause --id ID --rootfs <pause rootfs> --uid N --gid N
 *   --oom-score-adj N ([--userns <state_dir>/userns/ID] --netns <netns dir>/ID
 *   | --host-net) --ipc M --uts M
 *   --pid M [--hostname NAME] [--cgroup DIR]... [--sysctl K=V]...
 * in exactly this order (runtimed/pod.c builds it). */
int check_pause(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen)
{
	size_t n = count(argv), i;
	const char *id;
	_cleanup_free_ char *netns = NULL, *userns = NULL;

	if (!env_ok(envp))
		return refuse(why, whylen, "pause: environment is not the fixed PATH");
	if (n < 18 || !streq(argv[1], "--id") || !id_valid(argv[2]))
		return refuse(why, whylen, "pause: must start with --id <sandbox id>");
	id = argv[2];
	if (!streq(argv[3], "--rootfs") || !streq(argv[4], launch_policy.pause_rootfs))
		return refuse(why, whylen, "pause: --rootfs must be %s",
			      launch_policy.pause_rootfs);
	if (!streq(argv[5], "--uid") || !number_ok(argv[6], false, 10) ||
	    !streq(argv[7], "--gid") || !number_ok(argv[8], false, 10))
		return refuse(why, whylen, "pause: --uid and --gid must be numbers");
	if (!streq(argv[9], "--oom-score-adj") || !number_ok(argv[10], true, 4))
		return refuse(why, whylen, "pause: --oom-score-adj must be a number");
	i = 11;
	netns = xasprintf("%s/%s", launch_policy.netns_dir, id);
	/* the pause joins this user namespace as root of the host: only
	 * netd's pin of this very pod's (runtimed checked it at start) */
	userns = xasprintf("%s/%s", launch_policy.userns_dir, id);
	if (streq(argv[i], "--userns")) {
		if (i + 2 >= n || !streq(argv[i + 1], userns) || !streq(argv[i + 2], "--netns"))
			return refuse(why, whylen, "pause: --userns must be %s, before --netns",
				      userns);
		i += 2;
	}
	if (streq(argv[i], "--host-net")) {
		i++;
	} else if (streq(argv[i], "--netns") && i + 1 < n && streq(argv[i + 1], netns)) {
		i += 2;
	} else {
		return refuse(why, whylen, "pause: need --host-net or --netns %s", netns);
	}
	if (i + 6 > n || !ns_mode_ok(argv, i, "--ipc") || !ns_mode_ok(argv, i + 2, "--uts") ||
	    !ns_mode_ok(argv, i + 4, "--pid"))
		return refuse(why, whylen, "pause: need --ipc, --uts and --pid, each new or host");
	i += 6;
	if (i < n && streq(argv[i], "--hostname")) {
		const char *h = i + 1 < n ? argv[i + 1] : "";
		size_t hl = strlen(h);
		if (hl == 0 || hl > 64 ||
		    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
			    hl)
			return refuse(why, whylen, "pause: --hostname is not a host name");
		i += 2;
	}
	for (; i + 1 < n && streq(argv[i], "--cgroup"); i += 2)
		if (!pause_cgroup_ok(argv[i + 1], id))
			return refuse(why, whylen,
				      "pause: --cgroup must be a clean path under %s ending in "
				      "crisp-<sandbox id>",
				      launch_policy.cgroup_root);
	for (; i + 1 < n && streq(argv[i], "--sysctl"); i += 2)
		if (!pause_sysctl_ok(argv[i + 1]))
			return refuse(why, whylen, "pause: sysctl '%.64s' is not namespaced",
				      argv[i + 1]);
	if (i != n)
		return refuse(why, whylen, "pause: unexpected argument '%.32s'", argv[i]);
	return 0;
}

/* crisp-exec --id ID --bundle <bundles>/ID --process <bundle>/exec-N.json
 *   --pid-file <bundle>/exec-N.pid --init-pid N --init-start N (or the
 * streaming server's stream-N.json and stream-N.pid), in exactly this
 * order (runtimed/exec.h). What it reads and writes is in that container's
 * bundle, as for `runc exec`; the pid it enters is checked by crisp-exec
 * itself (starttime, root, cgroup), the one thing only it can do. */
int check_exec(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen)
{
	size_t n = count(argv);
	const char *id;
	_cleanup_free_ char *bundle = NULL;

	if (!env_ok(envp))
		return refuse(why, whylen, "exec: environment is not the fixed PATH");
	if (n != 13 || !streq(argv[1], "--id") || !id_valid(argv[2]))
		return refuse(why, whylen, "exec: must be --id <container id> and 5 more options");
	id = argv[2];
	bundle = xasprintf("%s/%s", launch_policy.bundles, id);
	if (!streq(argv[3], "--bundle") || !streq(argv[4], bundle))
		return refuse(why, whylen, "exec: --bundle must be %s", bundle);
	if (!streq(argv[5], "--process") || !streq(argv[7], "--pid-file") ||
	    !((bundle_file_ok(argv[6], id, "exec-", ".json") &&
	       bundle_file_ok(argv[8], id, "exec-", ".pid")) ||
	      (bundle_file_ok(argv[6], id, "stream-", ".json") &&
	       bundle_file_ok(argv[8], id, "stream-", ".pid"))))
		return refuse(why, whylen,
			      "exec: --process and --pid-file must be exec-N or stream-N files "
			      "of the bundle");
	if (!streq(argv[9], "--init-pid") || !number_ok(argv[10], false, 10) ||
	    !streq(argv[11], "--init-start") || !number_ok(argv[12], false, 20))
		return refuse(why, whylen, "exec: --init-pid and --init-start must be numbers");
	return 0;
}
