/* The launcher, for real: launcher_start forks and execs this very program
 * as a launcher (as netd and runtimed exec crisp-launch), which serves a
 * table of its own with launch/serve.c; it runs /bin/sh and /bin programs as
 * root and reports back on a libevent loop. Needs root (it is root's job). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/launcher.h"
#include "common/log.h"
#include "launch/serve.h"
#include "tests/unit/tap.h"

static struct event_base *base;

/* Only "sh -c ...", like a real check allows only its grammar. */
static int check_sh(const char *file, char *const argv[], char *const envp[], char *why,
		    size_t whylen)
{
	if (!argv[1] || strcmp(argv[1], "-c") != 0) {
		snprintf(why, whylen, "only -c is allowed, not '%s'", argv[1] ? argv[1] : "");
		return -1;
	}
	return 0;
}

static int check_bin(const char *file, char *const argv[], char *const envp[], char *why,
		     size_t whylen)
{
	static const char *const allowed[] = { "true", "false", "no-such-program-here" };

	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (streq(file, allowed[i]))
			return 0;
	snprintf(why, whylen, "'%s' is not allowed", file);
	return -1;
}

static int check_any(const char *file, char *const argv[], char *const envp[], char *why,
		     size_t whylen)
{
	return 0;
}

static char script_path[] = "/tmp/test-launcher-XXXXXX";
static char script_dir[] = "/tmp/test-launcher-dir-XXXXXX";
static char noint_path[] = "/tmp/test-launcher-noint-XXXXXX";

/* The table the launcher serves (as_launcher, below). */
static const struct launcher_program progs[] = {
	{ "sh", "/bin/sh", false, check_sh },
	{ "bin", "/nonexistent:/bin", true, check_bin },
	{ "missing", "/nonexistent/program", false, check_any },
	{ "noexec", "/etc/passwd", false, check_any },
	{ "script", script_path, false, check_any },
	{ "scripts", script_dir, true, check_any },
	{ "noint", noint_path, false, check_any },
};

struct result {
	bool started, exited, done;
	pid_t pid;
	bool failed;
	struct crisp_error err;
	int status;
	struct launch *l;
};

static void on_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct result *r = arg;

	r->started = true;
	r->pid = pid;
	if (err) {
		r->failed = true;
		r->err = *err;
		r->done = true;
	}
}

static void on_exited(struct launch *l, int status, void *arg)
{
	struct result *r = arg;

	r->exited = true;
	r->status = status;
	r->done = true;
}

/* Run the loop until *flag, at most 10 s. */
static bool loop_until(const bool *flag)
{
	uint64_t end = now_ms() + 10000;

	while (!*flag && now_ms() < end) {
		struct timeval tv = { 0, 50000 };
		event_base_loopexit(base, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	return *flag;
}

static struct launch *start(struct result *r, const char *program, const char *file,
			    char *const argv[], char *const envp[], int out, unsigned flags)
{
	static char *const noenv[] = { NULL };
	struct launch_req req = {
		.program = program,
		.file = file,
		.argv = argv,
		.envp = envp ? envp : noenv,
		.fds = { -1, out, -1 },
		.flags = flags,
	};
	struct launch_cb cb = { on_started, on_exited, r };

	memset(r, 0, sizeof(*r));
	r->l = launch(&req, &cb, &r->err);
	if (!r->l) {
		r->failed = r->done = true;
		diag("launch failed at once: %s", r->err.msg);
	}
	return r->l;
}

/* Start and wait for the end (exit, or failure to start). */
static void run(struct result *r, const char *program, const char *file, char *const argv[],
		char *const envp[], int out)
{
	if (start(r, program, file, argv, envp, out, 0))
		ok(loop_until(&r->done), "%s %s finished in time", program,
		   file      ? file
		   : argv[1] ? argv[1]
			     : "");
}

/* Run "sh -c script" with stdout on a pipe; returns what it wrote. */
static char *run_output(struct result *r, const char *script, char *const envp[], size_t *len)
{
	char *const argv[] = { "sh", "-c", (char *)script, NULL };
	static char buf[65536];
	int p[2];
	ssize_t n;

	*len = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	start(r, "sh", NULL, argv, envp, p[1], 0);
	close(p[1]); /* the launcher has its own copy: EOF comes with the exit */
	if (r->l)
		loop_until(&r->done);
	while ((n = read(p[0], buf + *len, sizeof(buf) - 1 - *len)) > 0)
		*len += n;
	buf[*len] = '\0';
	close(p[0]);
	return buf;
}

static char proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512], *s, state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return '-';
	if (fgets(buf, sizeof(buf), f) && (s = strrchr(buf, ')')))
		sscanf(s + 2, "%c %d", &state, ppid);
	fclose(f);
	return state;
}

static void test_basics(void)
{
	char *const exit7[] = { "sh", "-c", "exit 7", NULL };
	char *const env[] = { "A=1", "B=two words", NULL };
	struct result r;
	size_t len;
	char *out;

	run(&r, "sh", NULL, exit7, NULL, -1);
	ok(r.started && r.pid > 0 && !r.failed, "sh started, pid %d", r.pid);
	ok(r.exited && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7,
	   "exit status 7 (status 0x%x)", r.status);

	out = run_output(&r, "echo hello; echo to-stderr >&2", NULL, &len);
	is_str(out, "hello\n", "output through the passed pipe, stderr to /dev/null");

	/* /proc/$$/environ is the block sh was exec'd with */
	out = run_output(&r, "cat /proc/$$/environ", env, &len);
	ok(len == sizeof("A=1\0B=two words") && memcmp(out, "A=1\0B=two words", len) == 0,
	   "the environment is exactly the one given (%zu bytes)", len);

	out = run_output(&r, "ls /proc/$$/fd", NULL, &len);
	is_str(out, "0\n1\n2\n", "the program has fds 0, 1 and 2 only");
	out = run_output(&r, "readlink /proc/$$/fd/0; pwd", NULL, &len);
	is_str(out, "/dev/null\n/\n", "stdin defaults to /dev/null; cwd is /");

	out = run_output(&r, "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status", NULL, &len);
	is_str(out, "NoNewPrivs:\t0\nSeccomp:\t0\n",
	       "no_new_privs and the seccomp filter of the helper are not inherited");
	out = run_output(&r, "grep -E '^(SigBlk|SigIgn):' /proc/self/status", NULL, &len);
	is_str(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
	       "no signal blocked or ignored");
}

static void test_refusals(void)
{
	char *const dash_x[] = { "sh", "-x", NULL };
	char *const ok_argv[] = { "x", "-c", "true", NULL };
	char *const none[] = { "x", NULL };
	struct result r;

	run(&r, "sh", NULL, dash_x, NULL, -1);
	ok(r.failed && r.pid == 0 && !r.exited, "a refused argv does not start");
	is_str(r.err.msg, "sh: refused: only -c is allowed, not '-x'", "with the check's message");
	is_int(r.err.code, CRISP_E_PERMISSION, "as PERMISSION");

	run(&r, "nope", NULL, ok_argv, NULL, -1);
	is_str(r.err.msg, "unknown program 'nope'", "an unknown program is refused");
	run(&r, "missing", NULL, none, NULL, -1);
	like(r.err.msg, "missing: /nonexistent/program could not be opened",
	     "a program missing at start: %s", r.err.msg);
	run(&r, "sh", "true", ok_argv, NULL, -1);
	like(r.err.msg, "sh: takes no file name", "a file for a fixed program is refused");

	/* started is sent once the exec succeeded or failed */
	run(&r, "noexec", NULL, none, NULL, -1);
	is_str(r.err.msg, "exec /etc/passwd: Permission denied", "an exec failure is reported");
	ok(r.failed && !r.exited, "and nothing exits");
	start(&r, "noexec", NULL, none, NULL, -1, LAUNCH_DETACH);
	loop_until(&r.done);
	is_str(r.err.msg, "exec /etc/passwd: Permission denied", "detached as well");
	run(&r, "noint", NULL, none, NULL, -1);
	like(r.err.msg, "its interpreter: No such file or directory",
	     "a script whose interpreter is missing fails, saying why: %s", r.err.msg);
}

/* Run a script with stdout on a pipe; returns what it wrote. */
static char *run_script(struct result *r, const char *program, const char *file)
{
	char *const argv[] = { "x", "arg1", NULL };
	static char buf[4096];
	int p[2];
	ssize_t n;
	size_t len = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	start(r, program, file, argv, NULL, p[1], 0);
	close(p[1]);
	if (r->l)
		loop_until(&r->done);
	while ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	close(p[0]);
	return buf;
}

/* #! scripts run, as fixed programs and from directories, with their
 * arguments and exit status, from the fd opened at the launcher's start. */
static void test_scripts(void)
{
	struct result r;
	char *out;

	out = run_script(&r, "script", NULL);
	ok(r.exited && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7,
	   "a fixed script runs and its exit status comes back (status 0x%x, %s)", r.status,
	   r.err.msg);
	ok(out && strncmp(out, "script /dev/fd/", 15) == 0 && strstr(out, " arg1\n"),
	   "it ran from its fd and got its argument: '%s'", out ? out : "");
	out = run_script(&r, "scripts", "hello.sh");
	ok(r.exited && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7,
	   "a script in a dir program's directory runs (status 0x%x, %s)", r.status, r.err.msg);
	ok(out && strncmp(out, "script /dev/fd/", 15) == 0 && strstr(out, " arg1\n"),
	   "it ran from its fd and got its argument: '%s'", out ? out : "");
}

static void test_dirs(void)
{
	char *const argv[] = { "x", NULL };
	struct result r;

	run(&r, "bin", "false", argv, NULL, -1);
	ok(r.exited && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1,
	   "bin: false found in the second directory, and run (status 0x%x)", r.status);
	run(&r, "bin", "true", argv, NULL, -1);
	ok(r.exited && r.status == 0, "bin: true runs");
	run(&r, "bin", "no-such-program-here", argv, NULL, -1);
	is_str(r.err.msg, "bin: 'no-such-program-here' not found in /nonexistent:/bin",
	       "a missing file is named with the directories searched");
	is_int(r.err.code, CRISP_E_NOT_FOUND, "as NOT_FOUND");
	run(&r, "bin", "rm", argv, NULL, -1);
	is_str(r.err.msg, "bin: refused: 'rm' is not allowed", "the check sees the file name");
	run(&r, "bin", "../bin/true", argv, NULL, -1);
	is_str(r.err.msg, "bin: refused: '../bin/true' is not a plain file name",
	       "a path is not a file name");
	run(&r, "bin", "..", argv, NULL, -1);
	like(r.err.msg, "is not a plain file name", "nor is '..'");
	run(&r, "bin", NULL, argv, NULL, -1);
	is_str(r.err.msg, "bin: no file to run was named", "a dir program needs a file");
}

static void test_bounds(void)
{
	static char big[LAUNCH_STRING_MAX], bigenv[LAUNCH_STRING_MAX],
		toobig[LAUNCH_STRING_MAX + 1];
	char *argv[LAUNCH_ARGS_MAX + 2], *envp[LAUNCH_ENV_MAX + 2];
	struct result r;
	struct launch_req req = {
		.program = "sh", .argv = argv, .envp = envp, .fds = { -1, -1, -1 }
	};
	struct launch_cb cb = { on_started, on_exited, &r };
	struct crisp_error err;

	/* the largest request the bounds allow runs */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(bigenv, "V=", 2);
	memset(bigenv + 2, 'b', sizeof(bigenv) - 3);
	argv[0] = "sh", argv[1] = "-c", argv[2] = "exit 3";
	for (int i = 3; i < LAUNCH_ARGS_MAX; i++)
		argv[i] = big;
	argv[LAUNCH_ARGS_MAX] = NULL;
	for (int i = 0; i < LAUNCH_ENV_MAX; i++)
		envp[i] = bigenv;
	envp[LAUNCH_ENV_MAX] = NULL;
	run(&r, "sh", NULL, argv, envp, -1);
	ok(r.exited && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3,
	   "the largest request allowed runs (%s)", r.failed ? r.err.msg : "ok");

	argv[LAUNCH_ARGS_MAX] = "one too many";
	argv[LAUNCH_ARGS_MAX + 1] = NULL;
	ok(!launch(&req, &cb, &err) && err.code == CRISP_E_INVALID, "65 arguments: %s", err.msg);
	argv[LAUNCH_ARGS_MAX] = NULL;
	envp[LAUNCH_ENV_MAX] = "X=1";
	envp[LAUNCH_ENV_MAX + 1] = NULL;
	ok(!launch(&req, &cb, &err) && err.code == CRISP_E_INVALID, "65 variables: %s", err.msg);
	envp[0] = NULL;
	memset(toobig, 'c', sizeof(toobig) - 1);
	argv[3] = toobig;
	ok(!launch(&req, &cb, &err), "a string of %d bytes: %s", LAUNCH_STRING_MAX, err.msg);
	argv[3] = NULL;
	req.fds[1] = 999;
	ok(!launch(&req, &cb, &err), "a closed stdio fd: %s", err.msg);
	req.fds[1] = -1;
	req.flags = 0x100;
	ok(!launch(&req, &cb, &err), "unknown flags: %s", err.msg);
}

/* Many large requests at once: more than the socket holds, so launch()
 * queues them and the loop sends them as the launcher reads; each answer
 * reaches its own launch. */
static void test_concurrent(void)
{
	enum {
		N = 12
	};
	static char big[LAUNCH_STRING_MAX - 1 + 1];
	static char *argv[N][LAUNCH_ARGS_MAX + 1];
	static char script[N][32];
	struct result r[N];
	bool all = true;
	int right = 0;

	memset(big, 'a', sizeof(big) - 1);
	for (int i = 0; i < N; i++) {
		snprintf(script[i], sizeof(script[i]), "exit %d", 10 + i);
		argv[i][0] = "sh", argv[i][1] = "-c", argv[i][2] = script[i];
		for (int j = 3; j < LAUNCH_ARGS_MAX; j++)
			argv[i][j] = big;
		start(&r[i], "sh", NULL, argv[i], NULL, -1, 0);
	}
	for (int i = 0; i < N; i++) {
		all &= loop_until(&r[i].done);
		right += r[i].exited && WIFEXITED(r[i].status) &&
			 WEXITSTATUS(r[i].status) == 10 + i;
	}
	ok(all, "%d launches of %zu KiB each finished", N,
	   (size_t)(LAUNCH_ARGS_MAX * LAUNCH_STRING_MAX) >> 10);
	is_int(right, N, "each with its own exit status");
}

static void test_kill_detach(void)
{
	char *const sleep30[] = { "sh", "-c", "exec sleep 30", NULL };
	char *const exit5[] = { "sh", "-c", "exit 5", NULL };
	struct result r, forgotten;
	pid_t ppid = 0;

	if (start(&r, "sh", NULL, sleep30, NULL, -1, 0) && loop_until(&r.started)) {
		launch_kill(r.l, SIGKILL);
		loop_until(&r.done);
	}
	ok(r.exited && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL,
	   "launch_kill: killed by SIGKILL (status 0x%x)", r.status);

	/* a KILL sent before the start was answered follows the START */
	if (start(&r, "sh", NULL, sleep30, NULL, -1, 0)) {
		launch_kill(r.l, SIGTERM);
		loop_until(&r.done);
	}
	ok(r.started && r.exited && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM,
	   "launch_kill at once: killed by SIGTERM (status 0x%x)", r.status);

	start(&r, "sh", NULL, sleep30, NULL, -1, LAUNCH_DETACH);
	loop_until(&r.done);
	ok(r.started && r.pid > 0 && !r.failed, "detached: started as pid %d", r.pid);
	if (r.pid > 0) {
		char state = proc_state(r.pid, &ppid);
		ok(state != '-' && state != 'Z', "detached: runs (state %c)", state);
		ok(ppid != launcher_pid() && ppid != getpid(),
		   "detached: its parent %d is neither the launcher nor the helper", ppid);
		is_int(getsid(r.pid), r.pid, "detached: has its own session");
		kill(r.pid, SIGKILL);
	}

	/* A detached launch reports no exit, and launch_detach() forgets the
	 * callbacks: neither result may change from here on. */
	start(&forgotten, "sh", NULL, exit5, NULL, -1, 0);
	launch_detach(forgotten.l);
	{
		struct result later;
		char *const argv[] = { "x", NULL };
		usleep(200000);
		run(&later, "bin", "true", argv, NULL, -1);
		usleep(200000);
		run(&later, "bin", "true", argv, NULL, -1);
	}
	ok(!forgotten.started && !forgotten.exited, "launch_detach: no callback ran");
	ok(!r.exited, "LAUNCH_DETACH: no exit reported");
}

static bool gone_called;
static char gone_why[CRISP_ERRMSG_MAX];

static void on_gone(const char *why, void *arg)
{
	gone_called = true;
	snprintf(gone_why, sizeof(gone_why), "%s", why);
}

static void test_launcher_dies(void)
{
	char *const sleep30[] = { "sh", "-c", "exec sleep 30", NULL };
	char *const exit0[] = { "sh", "-c", "exit 0", NULL };
	struct result running, pending, after;
	pid_t ppid = 0;
	char state;

	launcher_on_gone(on_gone, NULL);
	if (start(&running, "sh", NULL, sleep30, NULL, -1, 0))
		loop_until(&running.started);
	/* stopped, it cannot take the next request: that one stays pending */
	kill(launcher_pid(), SIGSTOP);
	start(&pending, "sh", NULL, exit0, NULL, -1, 0);
	kill(launcher_pid(), SIGKILL);
	ok(loop_until(&gone_called), "the gone hook ran: %s", gone_why);
	like(gone_why, "killed by signal 9", "it says how the launcher ended");
	ok(pending.failed && pending.pid == 0 && pending.err.code == CRISP_E_UNAVAILABLE,
	   "a pending launch fails to start");
	like(pending.err.msg, "launcher is gone", "with: %s", pending.err.msg);
	ok(running.exited && running.status == -1, "a running launch exits with status -1");
	start(&after, "sh", NULL, exit0, NULL, -1, 0);
	ok(!after.l && after.err.code == CRISP_E_UNAVAILABLE, "launch() fails from now on");
	like(after.err.msg, "launcher is gone", "with: %s", after.err.msg);

	/* launched programs do not have the launcher's parent-death signal */
	usleep(200000);
	state = proc_state(running.pid, &ppid);
	ok(running.pid > 0 && state != '-' && state != 'Z' && state != 'X',
	   "what it launched survives it (pid %d, state %c)", running.pid, state);
	if (running.pid > 0)
		kill(running.pid, SIGKILL);
}

static bool write_script(int fd, const char *text)
{
	bool done;

	if (fd < 0)
		return false;
	done = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fchmod(fd, 0755) == 0;
	close(fd);
	return done;
}

static bool make_scripts(void)
{
	static const char text[] = "#!/bin/sh\necho script \"$0\" \"$1\"\nexit 7\n";
	char path[sizeof(script_dir) + 16];

	if (!write_script(mkstemp(script_path), text) ||
	    !write_script(mkstemp(noint_path), "#!/nonexistent/interpreter\n") ||
	    !mkdtemp(script_dir))
		return false;
	snprintf(path, sizeof(path), "%s/hello.sh", script_dir);
	return write_script(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700), text);
}

/* What netd and runtimed do after launcher_start: no_new_privs and a filter
 * (allow-all here). Neither may reach what the launcher runs. */
static bool sandbox_self(void)
{
	struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_fprog prog = { ARRAY_SIZE(allow), allow };

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 &&
	       prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
}

/* Run as the launcher, by launcher_start:
 *   test-launcher test --wire V --helper PID --log-level L SCRIPT DIR NOINT
 * what crisp-launch's main does for its roles, with the test's table. */
static int as_launcher(int argc, char **argv)
{
	if (argc != 11 || !streq(argv[2], "--wire") || !streq(argv[3], LAUNCH_WIRE_VERSION_STR) ||
	    !streq(argv[4], "--helper") || !streq(argv[6], "--log-level") ||
	    log_level_from_name(argv[7]) < 0 || strlen(argv[8]) != strlen(script_path) ||
	    strlen(argv[9]) != strlen(script_dir) || strlen(argv[10]) != strlen(noint_path)) {
		fprintf(stderr, "test-launcher: bad launcher command line\n");
		return 1;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != atoi(argv[5]))
		return 1;
	(void)prctl(PR_SET_NAME, "test-launch");
	log_init("test-launcher-launch", log_level_from_name(argv[7]));
	memcpy(script_path, argv[8], sizeof(script_path));
	memcpy(script_dir, argv[9], sizeof(script_dir));
	memcpy(noint_path, argv[10], sizeof(noint_path));
	launcher_serve(progs, ARRAY_SIZE(progs));
}

/* What the helper's side promises of the process it starts: an exec of the
 * given program, with nothing of the helper's but stderr and the socket. */
static void test_launcher_process(const char *self, int marker)
{
	char path[64], link[PATH_MAX], buf[4096];
	bool foreign = false, sock3 = false;
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", launcher_pid());
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	is_str(link, self, "the launcher is the program launcher_start exec'd");
	snprintf(path, sizeof(path), "/proc/%d/environ", launcher_pid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	is_int(n, 0, "its environment is empty (CRISP_TEST_LEAK was not passed on)");
	snprintf(path, sizeof(path), "/proc/%d/fd", launcher_pid());
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char fdpath[PATH_MAX + 64];

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		if (streq(de->d_name, "3"))
			sock3 = strncmp(link, "socket:", 7) == 0;
		if (streq(link, "/etc/hostname"))
			foreign = true;
	}
	if (d)
		closedir(d);
	ok(sock3, "its socket is on fd 3");
	ok(!foreign, "no fd of the helper's (fd %d, not close-on-exec) reached it", marker);
	/* it names itself once it runs: wait for that, at most 5 s */
	snprintf(path, sizeof(path), "/proc/%d/comm", launcher_pid());
	for (int i = 0; i < 500; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
		if (streq(buf, "test-launch\n"))
			break;
		usleep(10000);
	}
	is_str(buf, "test-launch\n", "it named itself");
}

int main(int argc, char **argv)
{
	struct crisp_error err = { 0 };
	char *args[] = { script_path, script_dir, noint_path, NULL };
	_cleanup_free_ char *self = NULL;
	int marker;

	if (argc > 1 && streq(argv[1], "test"))
		return as_launcher(argc, argv);
	if (geteuid() != 0) {
		printf("1..0 # SKIP the launcher runs programs as root: run as root\n");
		return 0;
	}
	log_init("test-launcher", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	setenv("CRISP_TEST_LEAK", "1", 1); /* must not reach the programs */
	if (!make_scripts())
		diag("cannot write the test scripts: %s", strerror(errno));
	base = event_base_new();
	self = realpath("/proc/self/exe", NULL);
	ok(launcher_start("/nonexistent/crisp-launch", "test", args, &err) < 0 &&
		   launcher_pid() == 0,
	   "a launcher that cannot be exec'd fails launcher_start: %s", err.msg);
	like(err.msg, "/nonexistent/crisp-launch: exec: No such file or directory", "saying why");
	/* an fd the helper forgot to make close-on-exec */
	marker = open("/etc/hostname", O_RDONLY);
	err_clear(&err);
	ok(self && launcher_start(self, "test", args, &err) == 0, "launcher_start: %s", err.msg);
	launcher_attach(base);
	ok(launcher_pid() > 0, "launcher pid %d", launcher_pid());
	if (self && launcher_pid() > 0)
		test_launcher_process(self, marker);
	if (marker >= 0)
		close(marker);
	ok(sandbox_self(), "the test process has no_new_privs and a seccomp filter now");

	test_basics();
	test_refusals();
	test_dirs();
	test_scripts();
	test_bounds();
	test_concurrent();
	test_kill_detach();
	test_launcher_dies();
	event_base_free(base);
	unlink(script_path);
	unlink(noint_path);
	{
		char path[sizeof(script_dir) + 16];
		snprintf(path, sizeof(path), "%s/hello.sh", script_dir);
		unlink(path);
		rmdir(script_dir);
	}
	return done_testing();
}
