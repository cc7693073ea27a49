/* runtimed's launch policy (launch/check_runtimed.c): the exact runc and
 * monitor grammars its launcher, crisp-launch, which keeps root, agrees to
 * run. Each valid form runtimed uses (and crisp-pause's) is accepted;
 * everything a compromised runtimed could try beyond them is refused. */
#include "autoconfig.h"

#include <stdarg.h>
#include <string.h>

#include "common/util.h"
#include "launch/policy.h"
#include "tests/unit/tap.h"

/* The checks read their paths and the runtime handlers from launch_policy,
 * which crisp-launch fills from its command line (launch/main.c); here the
 * test does, with the values runtimed would pass. */
struct launch_policy launch_policy;

#define ROOT "/run/crisp/runtimed/runc"
#define BUNDLES "/run/crisp/runtimed/bundles"
#define EXITS "/var/lib/crisp/runtimed/exits"
#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define B BUNDLES "/" ID

static const char *const handler_paths[] = { "/usr/bin/runc", "/usr/local/bin/crun" };

static char *const good_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

/* argv from a NULL-terminated list of strings. */
#define ARGV(...) ((char *const[]){ __VA_ARGS__, NULL })

static int runc(char *const argv[], char *const envp[], char *why, size_t whylen)
{
	return check_runc(NULL, argv, envp, why, whylen);
}

#define RUNC_OK(desc, ...)                                                         \
	do {                                                                       \
		char why_[256] = "";                                               \
		ok(runc(ARGV("runc", "--root", ROOT, __VA_ARGS__), good_env, why_, \
			sizeof(why_)) == 0,                                        \
		   "runc accepts %s%s%s", desc, why_[0] ? ": " : "", why_);        \
	} while (0)

#define RUNC_NO(desc, ...)                                                               \
	do {                                                                             \
		char why_[256] = "";                                                     \
		ok(runc(ARGV(__VA_ARGS__), good_env, why_, sizeof(why_)) < 0 && why_[0], \
		   "runc refuses %s (%s)", desc, why_);                                  \
	} while (0)

static void test_runc_valid(void)
{
	RUNC_OK("delete", "delete", ID);
	RUNC_OK("delete --force", "delete", "--force", ID);
	RUNC_OK("kill with a signal name", "kill", ID, "KILL");
	RUNC_OK("kill with a signal number", "kill", ID, "15");
	RUNC_OK("kill with a realtime signal", "kill", ID, "RTMIN+3");
	RUNC_OK("update", "update", "--resources", B "/resources.json", ID);
	RUNC_OK("exec", "exec", "--process", B "/exec-1.json", "--pid-file", B "/exec-1.pid", ID);
	RUNC_OK("exec with a long sequence number", "exec", "--process", B "/exec-4294967295.json",
		"--pid-file", B "/exec-4294967295.pid", ID);
	RUNC_OK("features (asked once at start)", "features");
}

static void test_runc_refused(void)
{
	char why[256];

	/* subcommands runtimed never runs */
	RUNC_NO("create (only the monitor creates)", "runc", "--root", ROOT, "create", "--bundle",
		B, ID);
	RUNC_NO("run", "runc", "--root", ROOT, "run", "--bundle", B, ID);
	RUNC_NO("run --detach (only the monitor starts)", "runc", "--root", ROOT, "run", "--detach",
		"--bundle", B, ID);
	RUNC_NO("start (the monitor's run starts containers)", "runc", "--root", ROOT, "start", ID);
	RUNC_NO("checkpoint", "runc", "--root", ROOT, "checkpoint", ID);
	RUNC_NO("an unknown subcommand", "runc", "--root", ROOT, "frobnicate", ID);
	RUNC_NO("a global flag as subcommand", "runc", "--root", ROOT, "--debug", "delete", ID);

	/* --root */
	RUNC_NO("another --root", "runc", "--root", "/tmp/runc", "delete", ID);
	RUNC_NO("a --root with a trailing slash", "runc", "--root", ROOT "/", "delete", ID);
	RUNC_NO("a --root through ..", "runc", "--root", ROOT "/../runc", "delete", ID);
	RUNC_NO("no --root", "runc", "delete", ID, "x", "y");
	RUNC_NO("--root=", "runc", "--root=" ROOT, "delete", ID, "x");
	RUNC_NO("too few arguments", "runc", "--root", ROOT, "delete");
	RUNC_NO("features with an argument", "runc", "--root", ROOT, "features", ID);
	RUNC_NO("features without --root", "runc", "features");
	RUNC_NO("just --root", "runc", "--root", ROOT);

	/* container ids */
	RUNC_NO("a 63-digit id", "runc", "--root", ROOT, "delete",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde");
	RUNC_NO("a 65-digit id", "runc", "--root", ROOT, "delete", ID "0");
	RUNC_NO("an upper-case id", "runc", "--root", ROOT, "delete",
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
	RUNC_NO("an id with a non-hex letter", "runc", "--root", ROOT, "delete",
		"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	RUNC_NO("an id that is a path", "runc", "--root", ROOT, "delete",
		"../../../../../../etc/passwd");
	RUNC_NO("kill of a bad id", "runc", "--root", ROOT, "kill", "1234", "KILL");

	/* extra or wrong arguments */
	RUNC_NO("delete with extra arguments", "runc", "--root", ROOT, "delete", "--force",
		"--detach", ID);
	RUNC_NO("delete of two ids", "runc", "--root", ROOT, "delete", ID2, ID);
	RUNC_NO("delete with another flag", "runc", "--root", ROOT, "delete", "--all", ID);
	RUNC_NO("kill without a signal", "runc", "--root", ROOT, "kill", ID);
	RUNC_NO("kill --all", "runc", "--root", ROOT, "kill", "--all", ID, "KILL");
	RUNC_NO("kill with a lower-case signal", "runc", "--root", ROOT, "kill", ID, "kill");
	RUNC_NO("kill with a shell-ish signal", "runc", "--root", ROOT, "kill", ID, "KILL;X");
	RUNC_NO("kill with an extra argument", "runc", "--root", ROOT, "kill", ID, "KILL", "x");
	RUNC_NO("update with -r", "runc", "--root", ROOT, "update", "-r", B "/resources.json", ID);
	RUNC_NO("update with a flag instead of --resources", "runc", "--root", ROOT, "update",
		"--memory", "1", ID);
	RUNC_NO("exec with extra arguments", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--cap", "CAP_SYS_ADMIN", ID);
	RUNC_NO("exec without --pid-file", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-1.json", ID, "x", "y");

	/* files outside the container's own bundle */
	RUNC_NO("update of a file outside bundles", "runc", "--root", ROOT, "update", "--resources",
		"/tmp/resources.json", ID);
	RUNC_NO("update of another container's file", "runc", "--root", ROOT, "update",
		"--resources", BUNDLES "/" ID2 "/resources.json", ID);
	RUNC_NO("update of a file through ..", "runc", "--root", ROOT, "update", "--resources",
		B "/../" ID2 "/resources.json", ID);
	RUNC_NO("update of a file in a subdirectory", "runc", "--root", ROOT, "update",
		"--resources", B "/rootfs/resources.json", ID);
	RUNC_NO("update of a file named otherwise", "runc", "--root", ROOT, "update", "--resources",
		B "/config.json", ID);
	RUNC_NO("update of resources<letters>.json", "runc", "--root", ROOT, "update",
		"--resources", B "/resourcesX.json", ID);
	RUNC_NO("update through a bundles prefix lookalike", "runc", "--root", ROOT, "update",
		"--resources", BUNDLES "x/" ID "/resources.json", ID);
	RUNC_NO("exec with a process file outside", "runc", "--root", ROOT, "exec", "--process",
		"/etc/exec-1.json", "--pid-file", B "/exec-1.pid", ID);
	RUNC_NO("exec with a pid file outside", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-1.json", "--pid-file", "/etc/exec-1.pid", ID);
	RUNC_NO("exec with a pid file through ..", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-1.json", "--pid-file", B "/../exec-1.pid", ID);
	RUNC_NO("exec with the pid file as process", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-1.pid", "--pid-file", B "/exec-1.pid", ID);
	RUNC_NO("exec with a non-numeric sequence", "runc", "--root", ROOT, "exec", "--process",
		B "/exec-..json", "--pid-file", B "/exec-1.pid", ID);

	/* the environment is exactly the fixed PATH */
	ok(runc(ARGV("runc", "--root", ROOT, "delete", ID), NULL, why, sizeof(why)) < 0,
	   "runc refuses no environment (%s)", why);
	ok(runc(ARGV("runc", "--root", ROOT, "delete", ID), ARGV(NULL), why, sizeof(why)) < 0,
	   "runc refuses an empty environment (%s)", why);
	ok(runc(ARGV("runc", "--root", ROOT, "delete", ID), ARGV("PATH=/tmp:/usr/bin"), why,
		sizeof(why)) < 0,
	   "runc refuses another PATH (%s)", why);
	ok(runc(ARGV("runc", "--root", ROOT, "delete", ID), ARGV(good_env[0], "LD_PRELOAD=/x.so"),
		why, sizeof(why)) < 0,
	   "runc refuses a variable beside PATH (%s)", why);
	ok(runc(ARGV("runc", "--root", ROOT, "delete", ID), ARGV("LD_PRELOAD=/x.so", good_env[0]),
		why, sizeof(why)) < 0,
	   "runc refuses a variable before PATH (%s)", why);
}

static int monitor(char *const argv[], char *const envp[], char *why, size_t whylen)
{
	return check_monitor(NULL, argv, envp, why, whylen);
}

/* The monitor's fixed head (monitor.h), with argument `at` replaced (-1:
 * none), then tail. */
#define MON_N 15
static void mon_argv(char *argv[], size_t nmax, int at, char *with, char *const tail[])
{
	static char *const head[MON_N] = {
		"crisp-monitor",
		"--id",
		ID,
		"--bundle",
		B,
		"--runtime",
		"/usr/bin/runc",
		"--runtime-root",
		ROOT,
		"--log",
		"/var/log/pods/x/main/0.log",
		"--exit-file",
		EXITS "/" ID "/exit.json",
		"--log-max",
		"10485760",
	};
	size_t n = 0;

	for (size_t i = 0; i < MON_N; i++)
		argv[n++] = (int)i == at ? with : head[i];
	for (size_t i = 0; tail && tail[i] && n < nmax - 1; i++)
		argv[n++] = tail[i];
	argv[n] = NULL;
}

static void mon_ok(const char *desc, int at, char *with, char *const tail[])
{
	char *argv[MON_N + 8], why[256] = "";

	mon_argv(argv, ARRAY_SIZE(argv), at, with, tail);
	ok(monitor(argv, good_env, why, sizeof(why)) == 0, "monitor accepts %s%s%s", desc,
	   why[0] ? ": " : "", why);
}

static void mon_no(const char *desc, int at, char *with, char *const tail[])
{
	char *argv[MON_N + 8], why[256] = "";

	mon_argv(argv, ARRAY_SIZE(argv), at, with, tail);
	ok(monitor(argv, good_env, why, sizeof(why)) < 0 && why[0], "monitor refuses %s (%s)", desc,
	   why);
}

static void test_monitor(void)
{
	char *argv[MON_N + 8], why[256];

	mon_ok("its fixed form", -1, NULL, NULL);
	mon_ok("--stdin --stdin-once --tty", -1, NULL, ARGV("--stdin", "--stdin-once", "--tty"));
	mon_ok("a /dev/null log", 10, "/dev/null", NULL);
	mon_ok("another configured runtime", 6, "/usr/local/bin/crun", NULL);

	mon_no("another id than the bundle's", 2, ID2, NULL);
	mon_no("an id that is not 64 hex", 2, "abc", NULL);
	mon_no("--id spelled otherwise", 1, "--name", NULL);
	mon_no("another bundle", 4, BUNDLES "/" ID2, NULL);
	mon_no("a bundle through ..", 4, BUNDLES "/../bundles/" ID, NULL);
	mon_no("an unconfigured runtime", 6, "/tmp/runc", NULL);
	mon_no("a runtime by name", 6, "runc", NULL);
	mon_no("another runtime root", 8, "/tmp/runc", NULL);
	mon_no("a relative log", 10, "var/log/x.log", NULL);
	mon_no("a log through ..", 10, "/var/log/pods/../../etc/shadow", NULL);
	mon_no("a log ending in ..", 10, "/var/log/pods/..", NULL);
	mon_no("a log with //", 10, "/var/log//x.log", NULL);
	mon_no("a log with /./", 10, "/var/log/./x.log", NULL);
	/* its own exit directory only: the flat layout of an older crisp
	 * would give the monitor's Landlock rule all of <exits>/ */
	mon_no("the flat exit file of an older crisp", 12, EXITS "/" ID ".json", NULL);
	mon_no("another id's flat exit file", 12, EXITS "/" ID2 ".json", NULL);
	mon_no("another id's exit directory", 12, EXITS "/" ID2 "/exit.json", NULL);
	mon_no("another name in its exit directory", 12, EXITS "/" ID "/exit.json.tmp", NULL);
	mon_no("an exit file in exits itself", 12, EXITS "/exit.json", NULL);
	mon_no("its exit directory through ..", 12, EXITS "/" ID2 "/../" ID "/exit.json", NULL);
	mon_no("an exit file outside exits", 12, "/tmp/" ID "/exit.json", NULL);
	mon_no("a non-numeric --log-max", 14, "10M", NULL);
	mon_no("a 10-digit --log-max", 14, "1234567890", NULL);
	mon_no("an empty --log-max", 14, "", NULL);
	mon_no("an unknown flag", -1, NULL, ARGV("--debug"));
	mon_no("an extra argument", -1, NULL, ARGV("--tty", "x"));
	mon_no("flags out of order", 3, "--runtime", NULL);

	mon_argv(argv, ARRAY_SIZE(argv), -1, NULL, NULL);
	argv[MON_N - 1] = NULL;
	ok(monitor(argv, good_env, why, sizeof(why)) < 0, "monitor refuses a short command (%s)",
	   why);
	mon_argv(argv, ARRAY_SIZE(argv), -1, NULL, NULL);
	ok(monitor(argv, ARGV(good_env[0], "LD_PRELOAD=/x.so"), why, sizeof(why)) < 0,
	   "monitor refuses a variable beside PATH (%s)", why);
	ok(monitor(argv, ARGV("PATH=/tmp"), why, sizeof(why)) < 0,
	   "monitor refuses another PATH (%s)", why);
	ok(monitor(argv, NULL, why, sizeof(why)) < 0, "monitor refuses no environment (%s)", why);
}

#define PAUSE_ROOTFS "/run/crisp/runtimed/pause/rootfs"
#define STATE_DIR "/run/crisp"
#define NETNS_DIR STATE_DIR "/netns"
#define USERNS_DIR STATE_DIR "/userns"
#define CG "/sys/fs/cgroup"

static int pause_check(char *const argv[], char *const envp[], char *why, size_t whylen)
{
	return check_pause(NULL, argv, envp, why, whylen);
}

/* crisp-pause's head (pod.c's order) up to --pid, then tail. */
#define PAUSE_HEAD                                                                         \
	"pause", "--id", ID, "--rootfs", PAUSE_ROOTFS, "--uid", "65535", "--gid", "65535", \
		"--oom-score-adj", "-998"
#define PAUSE_NS "--netns", NETNS_DIR "/" ID, "--ipc", "new", "--uts", "new", "--pid", "new"

#define PAUSE_OK(desc, ...)                                                           \
	do {                                                                          \
		char why_[256] = "";                                                  \
		ok(pause_check(ARGV(__VA_ARGS__), good_env, why_, sizeof(why_)) == 0, \
		   "pause accepts %s%s%s", desc, why_[0] ? ": " : "", why_);          \
	} while (0)
#define PAUSE_NO(desc, ...)                                                                     \
	do {                                                                                    \
		char why_[256] = "";                                                            \
		ok(pause_check(ARGV(__VA_ARGS__), good_env, why_, sizeof(why_)) < 0 && why_[0], \
		   "pause refuses %s (%s)", desc, why_);                                        \
	} while (0)

static void test_pause(void)
{
	char why[256];

	PAUSE_OK("a pod network pod", PAUSE_HEAD, PAUSE_NS);
	PAUSE_OK("a host network pod", PAUSE_HEAD, "--host-net", "--ipc", "host", "--uts", "host",
		 "--pid", "host");
	PAUSE_OK("hostname, cgroups and sysctls", PAUSE_HEAD, PAUSE_NS, "--hostname", "web-0",
		 "--cgroup", CG "/memory/kubepods/pod1/crisp-" ID, "--cgroup",
		 CG "/unified/crisp/pod-" ID "/crisp-" ID, "--sysctl",
		 "net.ipv4.ip_unprivileged_port_start=0", "--sysctl", "kernel.shm_rmid_forced=1",
		 "--sysctl", "kernel.sem=250 32000 32 128", "--sysctl", "fs.mqueue.msg_max=20");

	PAUSE_OK("a pod with a user namespace", PAUSE_HEAD, "--userns", USERNS_DIR "/" ID,
		 PAUSE_NS);
	PAUSE_NO("another id's user namespace", PAUSE_HEAD, "--userns", USERNS_DIR "/" ID2,
		 PAUSE_NS);
	PAUSE_NO("a user namespace elsewhere", PAUSE_HEAD, "--userns", "/proc/1/ns/user", PAUSE_NS);
	PAUSE_NO("a user namespace with the host's network", PAUSE_HEAD, "--userns",
		 USERNS_DIR "/" ID, "--host-net", "--ipc", "new", "--uts", "new", "--pid", "new");
	PAUSE_NO("a user namespace after the netns", PAUSE_HEAD, PAUSE_NS, "--userns",
		 USERNS_DIR "/" ID);
	PAUSE_NO("a dangling --userns", PAUSE_HEAD, "--userns");
	PAUSE_NO("another id's netns", PAUSE_HEAD, "--netns", NETNS_DIR "/" ID2, "--ipc", "new",
		 "--uts", "new", "--pid", "new");
	PAUSE_NO("a netns elsewhere", PAUSE_HEAD, "--netns", "/proc/1/ns/net", "--ipc", "new",
		 "--uts", "new", "--pid", "new");
	PAUSE_NO("another rootfs", "pause", "--id", ID, "--rootfs", "/", "--uid", "0", "--gid", "0",
		 "--oom-score-adj", "0", PAUSE_NS);
	PAUSE_NO("a bad id", "pause", "--id", "abc", "--rootfs", PAUSE_ROOTFS, "--uid", "0",
		 "--gid", "0", "--oom-score-adj", "0", PAUSE_NS);
	PAUSE_NO("a non-numeric uid", "pause", "--id", ID, "--rootfs", PAUSE_ROOTFS, "--uid",
		 "root", "--gid", "0", "--oom-score-adj", "0", PAUSE_NS);
	PAUSE_NO("a namespace mode other than new or host", PAUSE_HEAD, "--netns", NETNS_DIR "/" ID,
		 "--ipc", "/proc/1/ns/ipc", "--uts", "new", "--pid", "new");
	PAUSE_NO("a missing --pid", PAUSE_HEAD, "--host-net", "--ipc", "new", "--uts", "new",
		 "--hostname", "x", "y");
	PAUSE_NO("a cgroup of another sandbox", PAUSE_HEAD, PAUSE_NS, "--cgroup",
		 CG "/memory/crisp-" ID2);
	PAUSE_NO("a cgroup outside " CG, PAUSE_HEAD, PAUSE_NS, "--cgroup", "/tmp/crisp-" ID);
	PAUSE_NO("a cgroup through ..", PAUSE_HEAD, PAUSE_NS, "--cgroup",
		 CG "/memory/../../proc/crisp-" ID);
	PAUSE_NO("a cgroup with //", PAUSE_HEAD, PAUSE_NS, "--cgroup", CG "/memory//crisp-" ID);
	PAUSE_NO("a host sysctl", PAUSE_HEAD, PAUSE_NS, "--sysctl", "kernel.core_pattern=|/x");
	PAUSE_NO("a sysctl through ..", PAUSE_HEAD, PAUSE_NS, "--sysctl", "net..x=1");
	PAUSE_NO("a sysctl with /", PAUSE_HEAD, PAUSE_NS, "--sysctl", "net/../kernel/x=1");
	PAUSE_NO("a sysctl value with a newline", PAUSE_HEAD, PAUSE_NS, "--sysctl",
		 "net.core.somaxconn=1\n2");
	PAUSE_NO("a hostname with a space", PAUSE_HEAD, PAUSE_NS, "--hostname", "a b");
	PAUSE_NO("options out of order", PAUSE_HEAD, PAUSE_NS, "--sysctl", "net.x=1", "--cgroup",
		 CG "/memory/crisp-" ID);
	PAUSE_NO("an unknown option", PAUSE_HEAD, PAUSE_NS, "--privileged");
	PAUSE_NO("a dangling option", PAUSE_HEAD, PAUSE_NS, "--cgroup");
	ok(pause_check(ARGV(PAUSE_HEAD, PAUSE_NS), ARGV("PATH=/tmp"), why, sizeof(why)) < 0,
	   "pause refuses another PATH (%s)", why);
}

static int exec_check(char *const argv[], char *const envp[], char *why, size_t whylen)
{
	return check_exec(NULL, argv, envp, why, whylen);
}

/* crisp-exec's command line as ops.c's exec_cmd() builds it */
#define EXEC_OK(desc, ...)                                                           \
	do {                                                                         \
		char why_[256] = "";                                                 \
		ok(exec_check(ARGV(__VA_ARGS__), good_env, why_, sizeof(why_)) == 0, \
		   "exec accepts %s%s%s", desc, why_[0] ? ": " : "", why_);          \
	} while (0)
#define EXEC_NO(desc, ...)                                                                     \
	do {                                                                                   \
		char why_[256] = "";                                                           \
		ok(exec_check(ARGV(__VA_ARGS__), good_env, why_, sizeof(why_)) < 0 && why_[0], \
		   "exec refuses %s (%s)", desc, why_);                                        \
	} while (0)
#define EXEC_INIT "--init-pid", "4242", "--init-start", "123456789"

static void test_exec(void)
{
	char why[256];

	EXEC_OK("ExecSync's files", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", EXEC_INIT);
	EXEC_OK("the streaming server's files", "crisp-exec", "--id", ID, "--bundle", B,
		"--process", B "/stream-7.json", "--pid-file", B "/stream-7.pid", EXEC_INIT);
	EXEC_OK("a 20-digit starttime", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--init-pid", "1", "--init-start",
		"18446744073709551615");

	EXEC_NO("another container's bundle", "crisp-exec", "--id", ID, "--bundle", BUNDLES "/" ID2,
		"--process", BUNDLES "/" ID2 "/exec-1.json", "--pid-file",
		BUNDLES "/" ID2 "/exec-1.pid", EXEC_INIT);
	EXEC_NO("files of another container", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		BUNDLES "/" ID2 "/exec-1.json", "--pid-file", B "/exec-1.pid", EXEC_INIT);
	EXEC_NO("config.json as the process", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/config.json", "--pid-file", B "/exec-1.pid", EXEC_INIT);
	EXEC_NO("a pid file outside the bundle", "crisp-exec", "--id", ID, "--bundle", B,
		"--process", B "/exec-1.json", "--pid-file", "/etc/exec-1.pid", EXEC_INIT);
	EXEC_NO("a pid file through ..", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/../exec-1.pid", EXEC_INIT);
	EXEC_NO("mixed exec and stream files", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/stream-1.pid", EXEC_INIT);
	EXEC_NO("a bad id", "crisp-exec", "--id", "abc", "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", EXEC_INIT);
	EXEC_NO("a non-numeric pid", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--init-pid", "-1", "--init-start",
		"1");
	EXEC_NO("an 11-digit pid", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--init-pid", "12345678901",
		"--init-start", "1");
	EXEC_NO("an empty starttime", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--init-pid", "1", "--init-start",
		"");
	EXEC_NO("options out of order", "crisp-exec", "--id", ID, "--bundle", B, "--pid-file",
		B "/exec-1.pid", "--process", B "/exec-1.json", EXEC_INIT);
	EXEC_NO("an extra argument", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", EXEC_INIT, "--privileged");
	EXEC_NO("a missing --init-start", "crisp-exec", "--id", ID, "--bundle", B, "--process",
		B "/exec-1.json", "--pid-file", B "/exec-1.pid", "--init-pid", "1");
	ok(exec_check(ARGV("crisp-exec", "--id", ID, "--bundle", B, "--process", B "/exec-1.json",
			   "--pid-file", B "/exec-1.pid", EXEC_INIT),
		      ARGV(good_env[0], "LD_PRELOAD=/x.so"), why, sizeof(why)) < 0,
	   "exec refuses a variable beside PATH (%s)", why);
}

int main(void)
{
	launch_policy = (struct launch_policy){
		.pause_rootfs = PAUSE_ROOTFS,
		.netns_dir = NETNS_DIR,
		.userns_dir = USERNS_DIR,
		.runc_root = ROOT,
		.bundles = BUNDLES,
		.exits_dir = EXITS,
		.cgroup_root = CG,
		.handler_paths = handler_paths,
		.nhandlers = ARRAY_SIZE(handler_paths),
	};

	test_runc_valid();
	test_runc_refused();
	test_monitor();
	test_pause();
	test_exec();
	return done_testing();
}
