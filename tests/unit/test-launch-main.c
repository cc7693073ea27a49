/* crisp-launch's command line (launch/main.c): every option unknown to its
 * role, missing, repeated or malformed ends it with status 1 and a message
 * on stderr, before it serves anything; a good one, given by
 * launcher_start as runtimed gives it, starts a launcher that serves
 * runtimed's table with the paths of that command line. The good half needs
 * root (the launcher runs programs as root). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/launcher.h"
#include "common/log.h"
#include "launch/policy.h"
#include "tests/unit/tap.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define RUNC_ROOT "/run/crisp-test/runtimed/runc"
#define BUNDLES "/run/crisp-test/runtimed/bundles"
#define EXITS "/var/lib/crisp-test/runtimed/exits"

static char helper[16];

/* Run crisp-launch with argv (after argv[0]) and stderr on a pipe; its exit
 * status, and what it wrote in out. */
static int run(char *const args[], char *out, size_t outlen)
{
	char *argv[64] = { LAUNCH_BIN };
	size_t n = 1, len = 0;
	int p[2], status = -1;
	ssize_t r;
	pid_t pid;

	for (; args[n - 1] && n < ARRAY_SIZE(argv) - 1; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		static char *const no_env[] = { NULL };

		dup2(p[1], 2);
		execve(LAUNCH_BIN, argv, no_env);
		_exit(127);
	}
	close(p[1]);
	while ((r = read(p[0], out + len, outlen - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(p[0]);
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	return status;
}

#define NETD(...)                                                                        \
	((char *const[]){ "netd", "--wire", LAUNCH_WIRE_VERSION_STR, "--helper", helper, \
			  __VA_ARGS__, NULL })
#define NETD_GOOD "--cni-bin-dirs", "/usr/lib/cni", "--netns-dir", "/run/crisp-test/netns"
#define RUNTIMED_DIRS                                                                            \
	"--runc-root", RUNC_ROOT, "--bundles", BUNDLES, "--exits", EXITS, "--pause-rootfs",      \
		"/run/crisp-test/runtimed/pause/rootfs", "--netns-dir", "/run/crisp-test/netns", \
		"--userns-dir", "/run/crisp-test/userns"
#define RUNTIMED(...)                                                                        \
	((char *const[]){ "runtimed", "--wire", LAUNCH_WIRE_VERSION_STR, "--helper", helper, \
			  RUNTIMED_DIRS, __VA_ARGS__, NULL })
#define PROGRAMS "--monitor", "/bin/true", "--pause", "/bin/true", "--exec", "/bin/true"

/* Refused with status 1, saying want. */
static void refused(const char *what, char *const args[], const char *want)
{
	char out[8192];
	int status = run(args, out, sizeof(out));

	ok(WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(out, want),
	   "refuses %s: status 0x%x, '%s' in: %.200s", what, status, want, out);
}

static void test_refusals(void)
{
	char out[8192];
	int status;

	refused("no role", (char *const[]){ NULL }, "no role");
	refused("an unknown role", (char *const[]){ "imaged", NULL }, "unknown role 'imaged'");
	refused("an unknown option", NETD(NETD_GOOD, "--verbose"), "unknown option '--verbose'");
	refused("an option of the other role", NETD(NETD_GOOD, "--runc-root", RUNC_ROOT),
		"unknown option '--runc-root' for netd");
	refused("a missing option", NETD("--cni-bin-dirs", "/usr/lib/cni"),
		"--netns-dir is missing");
	refused("a repeated option", NETD(NETD_GOOD, "--netns-dir", "/run/crisp-test/netns"),
		"--netns-dir given twice");
	refused("an option without its value",
		NETD("--cni-bin-dirs", "/usr/lib/cni", "--netns-dir"), "--netns-dir needs a value");
	refused("a relative directory",
		NETD("--cni-bin-dirs", "/usr/lib/cni", "--netns-dir", "netns"),
		"--netns-dir 'netns' is not an absolute path");
	refused("an empty program path", RUNTIMED(PROGRAMS, "--handler", "runc", ""),
		"an empty name or path");
	refused("the previous wire version",
		((char *const[]){ "netd", "--wire", "1", "--helper", helper, NETD_GOOD, NULL }),
		"speaks version " LAUNCH_WIRE_VERSION_STR " only");
	refused("a later wire version",
		((char *const[]){ "netd", "--wire", "3", "--helper", helper, NETD_GOOD, NULL }),
		"speaks version " LAUNCH_WIRE_VERSION_STR " only");
	refused("a helper that is not its parent",
		((char *const[]){ "netd", "--wire", LAUNCH_WIRE_VERSION_STR, "--helper", "1",
				  NETD_GOOD, NULL }),
		"its parent is pid");
	refused("a helper that is not a pid",
		((char *const[]){ "netd", "--wire", LAUNCH_WIRE_VERSION_STR, "--helper", "12x",
				  NETD_GOOD, NULL }),
		"--helper '12x' is not a pid");
	refused("an unknown log level", NETD(NETD_GOOD, "--log-level", "loud"),
		"--log-level 'loud'");
	refused("a missing program", RUNTIMED("--monitor", "/bin/true", "--pause", "/bin/true"),
		"--exec is missing");
	refused("a handler without its path", RUNTIMED(PROGRAMS, "--handler", "runc"),
		"--handler needs a name and a path");
	refused("a handler named like one of its programs",
		RUNTIMED(PROGRAMS, "--handler", "monitor", "/bin/true"),
		"program 'monitor' is in the table twice");
	refused("two handlers of one name",
		RUNTIMED(PROGRAMS, "--handler", "runc", "/bin/true", "--handler", "runc",
			 "/bin/false"),
		"program 'runc' is in the table twice");
	/* good, but not started by a helper: no socket on fd 3 */
	status = run(NETD(NETD_GOOD), out, sizeof(out));
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(out, "crisp-netd-launch[") &&
		   strstr(out, "fd 3 is not the helper's SOCK_SEQPACKET socket"),
	   "a good command line without the helper's socket: status 0x%x: %.200s", status, out);
}

static struct event_base *base;

struct result {
	bool done;
	pid_t pid;
	int status;
	struct crisp_error err;
};

static void on_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct result *r = arg;

	r->pid = pid;
	if (err) {
		r->err = *err;
		r->done = true;
	}
}

static void on_exited(struct launch *l, int status, void *arg)
{
	struct result *r = arg;

	r->status = status;
	r->done = true;
}

/* Launch and wait for the exit or the refusal, at most 10 s. */
static void launch_wait(struct result *r, const char *program, char *const argv[])
{
	static char *const env[] = { LAUNCH_PATH_ENV, NULL };
	struct launch_req req = {
		.program = program, .argv = argv, .envp = env, .fds = { -1, -1, -1 }
	};
	struct launch_cb cb = { on_started, on_exited, r };
	uint64_t end = now_ms() + 10000;

	memset(r, 0, sizeof(*r));
	if (!launch(&req, &cb, &r->err)) {
		r->done = true;
		return;
	}
	while (!r->done && now_ms() < end) {
		struct timeval tv = { 0, 50000 };

		event_base_loopexit(base, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

static char *status_field(pid_t pid, const char *field, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':') {
			snprintf(buf, len, "%s", line + strlen(field) + 2);
			buf[strcspn(buf, "\n")] = '\0';
		}
	if (f)
		fclose(f);
	return buf;
}

static void test_serves(void)
{
	char *args[] = { RUNTIMED_DIRS, PROGRAMS, "--handler", "runc", "/bin/true", NULL };
	char mine[64], its[64];
	struct crisp_error err = { 0 };
	struct result r;

	base = event_base_new();
	ok(launcher_start(LAUNCH_BIN, "runtimed", args, &err) == 0,
	   "runtimed's command line starts crisp-launch (%s)", err.msg);
	launcher_attach(base);
	if (launcher_pid() <= 0)
		return;

	launch_wait(&r, "runc", (char *const[]){ "runc", "--root", RUNC_ROOT, "features", NULL });
	ok(r.pid > 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	   "a handler runs with the --root of the command line (%s)", r.err.msg);
	launch_wait(&r, "runc", (char *const[]){ "runc", "--root", "/tmp", "features", NULL });
	ok(r.pid == 0 && r.err.code == CRISP_E_PERMISSION &&
		   strstr(r.err.msg, "must start with --root " RUNC_ROOT),
	   "and is refused another: %s", r.err.msg);
	launch_wait(&r, "monitor",
		    (char *const[]){ "crisp-monitor", "--id", ID, "--bundle", BUNDLES "/" ID,
				     "--runtime", "/bin/true", "--runtime-root", RUNC_ROOT, "--log",
				     "/dev/null", "--exit-file", EXITS "/" ID "/exit.json",
				     "--log-max", "1024", NULL });
	ok(r.pid > 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	   "the monitor runs with the bundle, exits and handler of the command line (%s)",
	   r.err.msg);
	launch_wait(&r, "monitor",
		    (char *const[]){ "crisp-monitor", "--id", ID, "--bundle", BUNDLES "/" ID,
				     "--runtime", "/bin/false", "--runtime-root", RUNC_ROOT,
				     "--log", "/dev/null", "--exit-file", EXITS "/" ID "/exit.json",
				     "--log-max", "1024", NULL });
	ok(r.pid == 0 && r.err.code == CRISP_E_PERMISSION &&
		   strstr(r.err.msg, "--runtime is not a configured runtime"),
	   "and is refused a runtime not given as a handler: %s", r.err.msg);
	launch_wait(&r, "cni", (char *const[]){ "bridge", NULL });
	ok(r.pid == 0 && strstr(r.err.msg, "unknown program 'cni'"),
	   "runtimed's launcher has no netd program: %s", r.err.msg);

	/* what it runs as: what it had before it was a program of its own */
	is_str(status_field(launcher_pid(), "Name", its, sizeof(its)), "runtimed-launch",
	       "it names itself runtimed-launch");
	is_str(status_field(launcher_pid(), "CapEff", its, sizeof(its)),
	       status_field(getpid(), "CapEff", mine, sizeof(mine)),
	       "it keeps every capability its helper had (CapEff)");
	is_str(status_field(launcher_pid(), "CapPrm", its, sizeof(its)),
	       status_field(getpid(), "CapPrm", mine, sizeof(mine)), "CapPrm as well");
	is_str(status_field(launcher_pid(), "CapBnd", its, sizeof(its)),
	       status_field(getpid(), "CapBnd", mine, sizeof(mine)), "CapBnd as well");
	is_str(status_field(launcher_pid(), "NoNewPrivs", its, sizeof(its)), "0",
	       "no no_new_privs");
	is_str(status_field(launcher_pid(), "Seccomp", its, sizeof(its)), "0", "no filter");
	kill(launcher_pid(), SIGKILL);
	waitpid(launcher_pid(), NULL, 0);
	event_base_free(base);
}

int main(void)
{
	log_init("test-launch-main", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	snprintf(helper, sizeof(helper), "%d", (int)getpid());
	test_refusals();
	if (geteuid() == 0)
		test_serves();
	else
		diag("skipping a launcher that serves: needs root");
	return done_testing();
}
