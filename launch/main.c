/* crisp-launch: the launcher of netd or runtimed (crisp-launch(8);
 * common/launcher.h for why it is a program of its own). Its helper forks
 * and execs it before the helper sandboxes itself (launcher_start), so it
 * runs as root with every capability and no seccomp filter; this file reads
 * its command line, exactly, into the table and the policy of its role, and
 * hands them to the serving loop (launch/serve.c). Nothing on the command
 * line is trusted more than it is checked here: a wrong, missing, repeated
 * or unknown option ends it with status 1 before anything is served, and
 * the helper, seeing its launcher gone, exits to be restarted.
 *
 *   crisp-launch netd --wire V --helper PID --log-level LEVEL
 *       --cni-bin-dirs DIRS --netns-dir DIR
 *   crisp-launch runtimed --wire V --helper PID --log-level LEVEL
 *       --runc-root DIR --bundles DIR --exits DIR --pause-rootfs DIR
 *       --netns-dir DIR --userns-dir DIR --monitor PATH --pause PATH
 *       --exec PATH [--handler NAME PATH]...
 *
 * Options come after the role, in any order, each once (--handler once per
 * name); --log-level may be left out (info). */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "launch/policy.h"
#include "launch/serve.h"
#include "runtimed/cgroup.h"

struct launch_policy launch_policy;

/* The options, and which role takes each. */
enum opt {
	OPT_WIRE,
	OPT_HELPER,
	OPT_LOG_LEVEL,
	OPT_CNI_BIN_DIRS,
	OPT_NETNS_DIR,
	OPT_RUNC_ROOT,
	OPT_BUNDLES,
	OPT_EXITS,
	OPT_PAUSE_ROOTFS,
	OPT_USERNS_DIR,
	OPT_MONITOR,
	OPT_PAUSE,
	OPT_EXEC,
	OPT_HANDLER,
	OPT__MAX
};

enum role {
	ROLE_NETD = 1,
	ROLE_RUNTIMED = 2,
	ROLE_BOTH = ROLE_NETD | ROLE_RUNTIMED,
};

static const struct {
	const char *name;
	unsigned roles;
	bool required;
	bool dir; /* an absolute directory the checks compare requests with */
} opts[OPT__MAX] = {
	[OPT_WIRE] = { "--wire", ROLE_BOTH, true, false },
	[OPT_HELPER] = { "--helper", ROLE_BOTH, true, false },
	[OPT_LOG_LEVEL] = { "--log-level", ROLE_BOTH, false, false },
	[OPT_CNI_BIN_DIRS] = { "--cni-bin-dirs", ROLE_NETD, true, false },
	[OPT_NETNS_DIR] = { "--netns-dir", ROLE_BOTH, true, true },
	[OPT_RUNC_ROOT] = { "--runc-root", ROLE_RUNTIMED, true, true },
	[OPT_BUNDLES] = { "--bundles", ROLE_RUNTIMED, true, true },
	[OPT_EXITS] = { "--exits", ROLE_RUNTIMED, true, true },
	[OPT_PAUSE_ROOTFS] = { "--pause-rootfs", ROLE_RUNTIMED, true, true },
	[OPT_USERNS_DIR] = { "--userns-dir", ROLE_RUNTIMED, true, true },
	[OPT_MONITOR] = { "--monitor", ROLE_RUNTIMED, true, false },
	[OPT_PAUSE] = { "--pause", ROLE_RUNTIMED, true, false },
	[OPT_EXEC] = { "--exec", ROLE_RUNTIMED, true, false },
	[OPT_HANDLER] = { "--handler", ROLE_RUNTIMED, false, false },
};

/* At most this many runtime handlers: the default and runtimed's
 * CONFIG_MAX_RUNTIME_HANDLERS (16) configured ones, with room to spare. */
#define HANDLERS_MAX 32

static const char usage[] =
	"usage: crisp-launch netd --wire V --helper PID [--log-level LEVEL] --cni-bin-dirs DIRS "
	"--netns-dir DIR | crisp-launch runtimed --wire V --helper PID [--log-level LEVEL] "
	"--runc-root DIR --bundles DIR --exits DIR --pause-rootfs DIR --netns-dir DIR "
	"--userns-dir DIR --monitor PATH --pause PATH --exec PATH [--handler NAME PATH]... "
	"(crisp-launch(8))";

_noreturn_ _printf_(1, 2) static void refuse(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, fmt, ap);
	va_end(ap);
	log_msg(LOG_CRIT, "%s", usage);
	_exit(1);
}

/* A whole decimal number in [min, max]. */
static bool number(const char *s, long long min, long long max, long long *ret)
{
	long long v = 0;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18)
		return false;
	for (; *s; s++)
		v = v * 10 + (*s - '0');
	if (v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* The directories are compared with requests as strings, in the form the
 * helper made them from its configuration (crisp.conf(5) takes absolute
 * paths only): absolute, and short enough for a path. */
static bool dir_ok(const char *d)
{
	return d[0] == '/' && strlen(d) < 4096;
}

int main(int argc, char **argv)
{
	static char logname[32], comm[16];
	const char *val[OPT__MAX] = { NULL };
	const char *names[HANDLERS_MAX], *paths[HANDLERS_MAX];
	struct launcher_program progs[HANDLERS_MAX + 3];
	size_t nhandlers = 0, n = 0;
	long long helper = 0, wire = 0;
	char why[256];
	enum role role;
	int level = LOG_INFO;

	log_init("crisp-launch", LOG_INFO);
	if (argc < 2)
		refuse("no role: netd or runtimed");
	if (streq(argv[1], "netd"))
		role = ROLE_NETD;
	else if (streq(argv[1], "runtimed"))
		role = ROLE_RUNTIMED;
	else
		refuse("unknown role '%.32s': netd or runtimed", argv[1]);
	/* Its lines come out in its helper's relay as crisp-netd-launch[PID]
	 * (or crisp-runtimed-launch), and ps shows netd-launch or
	 * runtimed-launch: comm is 15 characters at most. */
	snprintf(logname, sizeof(logname), "crisp-%s-launch", argv[1]);
	snprintf(comm, sizeof(comm), "%s-launch", argv[1]);
	(void)prctl(PR_SET_NAME, comm);
	log_init(logname, LOG_INFO);

	for (int i = 2; i < argc; i++) {
		enum opt o;

		for (o = 0; o < OPT__MAX; o++)
			if (streq(argv[i], opts[o].name))
				break;
		if (o == OPT__MAX || !(opts[o].roles & role))
			refuse("unknown option '%.64s' for %s", argv[i], argv[1]);
		if (o == OPT_HANDLER) {
			if (i + 2 >= argc)
				refuse("--handler needs a name and a path");
			if (nhandlers == HANDLERS_MAX)
				refuse("more than %d --handler", HANDLERS_MAX);
			names[nhandlers] = argv[i + 1];
			paths[nhandlers++] = argv[i + 2];
			if (!names[nhandlers - 1][0] || !paths[nhandlers - 1][0])
				refuse("--handler: an empty name or path");
			i += 2;
			continue;
		}
		if (i + 1 >= argc)
			refuse("%s needs a value", argv[i]);
		if (val[o])
			refuse("%s given twice", argv[i]);
		val[o] = argv[++i];
		if (opts[o].dir && !dir_ok(val[o]))
			refuse("%s '%.128s' is not an absolute path", opts[o].name, val[o]);
		if (!opts[o].dir && o != OPT_CNI_BIN_DIRS && !val[o][0])
			refuse("%s is empty", opts[o].name);
	}
	for (enum opt o = 0; o < OPT__MAX; o++)
		if ((opts[o].roles & role) && opts[o].required && !val[o])
			refuse("%s is missing", opts[o].name);
	if (!number(val[OPT_WIRE], 0, 1 << 30, &wire) || wire != LAUNCH_WIRE_VERSION)
		refuse("--wire %.16s: this crisp-launch speaks version %d only (a helper of "
		       "another install?)",
		       val[OPT_WIRE], LAUNCH_WIRE_VERSION);
	if (!number(val[OPT_HELPER], 1, 0x7fffffff, &helper))
		refuse("--helper '%.16s' is not a pid", val[OPT_HELPER]);
	if (val[OPT_LOG_LEVEL] && (level = log_level_from_name(val[OPT_LOG_LEVEL])) < 0)
		refuse("--log-level '%.16s': debug, info, notice, warning or error",
		       val[OPT_LOG_LEVEL]);
	log_set_level(level);

	/* Die with the helper, even if it could not close its end; and serve
	 * no one but it. Its children do not inherit this: fork clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		refuse("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (getppid() != (pid_t)helper)
		refuse("its parent is pid %d, not the helper %lld", (int)getppid(), helper);

	launch_policy.netns_dir = val[OPT_NETNS_DIR];
	if (role == ROLE_NETD) {
		/* the plugins, searched at each request in the bin directories
		 * as they were at netd's start; CNI_PATH must name exactly them */
		launch_policy.cni_path = val[OPT_CNI_BIN_DIRS];
		progs[n++] = (struct launcher_program){ .name = "cni",
							.path = val[OPT_CNI_BIN_DIRS],
							.dir = true,
							.check = cni_launch_check };
	} else {
		launch_policy.runc_root = val[OPT_RUNC_ROOT];
		launch_policy.bundles = val[OPT_BUNDLES];
		launch_policy.exits_dir = val[OPT_EXITS];
		launch_policy.pause_rootfs = val[OPT_PAUSE_ROOTFS];
		launch_policy.userns_dir = val[OPT_USERNS_DIR];
		launch_policy.cgroup_root = CGROUP_ROOT;
		launch_policy.handler_paths = paths;
		launch_policy.nhandlers = nhandlers;
		for (size_t i = 0; i < nhandlers; i++)
			progs[n++] = (struct launcher_program){ .name = names[i],
								.path = paths[i],
								.check = check_runc };
		progs[n++] = (struct launcher_program){ .name = "monitor",
							.path = val[OPT_MONITOR],
							.check = check_monitor };
		progs[n++] = (struct launcher_program){ .name = "pause",
							.path = val[OPT_PAUSE],
							.check = check_pause };
		progs[n++] = (struct launcher_program){ .name = "exec",
							.path = val[OPT_EXEC],
							.check = check_exec };
	}
	if (launcher_table_check(progs, n, why, sizeof(why)) < 0)
		refuse("%s", why);
	launcher_serve(progs, n);
}
