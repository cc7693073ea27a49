/* What runtimed's launcher agrees to run (common/launcher.h). These checks
 * run in the launcher, which keeps root and has no seccomp filter: they are
 * the whole policy for what a compromised runtimed could make it execute.
 * So the grammar is exact: runc (or another OCI runtime handler) with our
 * --root, one of the subcommands runtimed uses with only the flags it
 * passes, container ids of 64 hex, and every file under that container's
 * own bundle directory; the monitor with exactly its CLI (monitor.h). The
 * environment is one fixed PATH. `runc create` is not allowed: only the
 * monitor creates containers. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtimed/runtimed.h"

const char *const launch_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

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
	size_t bl = strlen(rt.bundles), pl = strlen(prefix), sl = strlen(suffix);
	const char *name;

	if (strncmp(path, rt.bundles, bl) != 0 || path[bl] != '/' ||
	    strncmp(path + bl + 1, id, ID_LEN) != 0 || path[bl + 1 + ID_LEN] != '/')
		return false;
	name = path + bl + 2 + ID_LEN;
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
	if (n < 5 || strcmp(argv[1], "--root") != 0 || strcmp(argv[2], rt.runc_root) != 0)
		return refuse(why, whylen, "runtime: must start with --root %s", rt.runc_root);
	sub = argv[3];
	/* the container id is last, but for kill (<id> <signal>) */
	id = streq(sub, "kill") ? argv[4] : argv[n - 1];
	if (!id_valid(id))
		return refuse(why, whylen, "runtime %s: the last argument is not a container id",
			      sub);
	if (streq(sub, "start")) {
		if (n == 5)
			return 0;
	} else if (streq(sub, "delete")) {
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
	bundle = xasprintf("%s/%s", rt.bundles, id);
	exitf = xasprintf("%s/%s.json", rt.exits_dir, id);
	if (!streq(argv[3], "--bundle") || !streq(argv[4], bundle))
		return refuse(why, whylen, "monitor: --bundle must be %s", bundle);
	if (!streq(argv[5], "--runtime") || !handler_by_path(argv[6]))
		return refuse(why, whylen, "monitor: --runtime is not a configured runtime");
	if (!streq(argv[7], "--runtime-root") || !streq(argv[8], rt.runc_root))
		return refuse(why, whylen, "monitor: --runtime-root must be %s", rt.runc_root);
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
