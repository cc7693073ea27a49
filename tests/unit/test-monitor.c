/* crisp-monitor, driven as runtimed drives it, against a fake OCI runtime:
 * a shell script whose `run --detach` starts `sh -c <payload>` in the
 * background on the stdio it was given, writes its pid to --pid-file and
 * exits 0. So the container runs at once, as with runc's `run --detach`,
 * and its process is reparented to the monitor when the script exits, as
 * runc's init is.
 *
 * Needs root (the monitor's control socket takes uid 0 peers only). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtimed/monitor.h"
#include "runtimed/monitor_log.h"
#include "tests/unit/tap.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char tmp[64], bundle[256], logpath[128], exitpath[128], runtime[128], rootdir[128];

/* The fake runtime. Global options first, as the monitor passes them. */
static const char fake_runtime[] =
	"#!/bin/sh\n"
	"dir=$(dirname \"$0\")\n"
	"while [ $# -gt 0 ]; do\n"
	"  case \"$1\" in\n"
	"  --root|--log-format) shift 2 ;;\n"
	"  --log) log=$2; shift 2 ;;\n"
	"  *) break ;;\n"
	"  esac\n"
	"done\n"
	"cmd=$1; shift\n"
	"echo \"$cmd $*\" >> \"$dir/calls\"\n"
	"case \"$cmd\" in\n"
	"delete) exit 0 ;;\n"
	"run) ;;\n"
	"*) echo \"fake: unknown command $cmd\" >&2; exit 2 ;;\n"
	"esac\n"
	"[ \"$1\" = --detach ] || { echo \"fake: run without --detach\" >&2; exit 2; }\n"
	"shift\n"
	"while [ $# -gt 1 ]; do\n"
	"  case \"$1\" in\n"
	"  --bundle) b=$2; shift 2 ;;\n"
	"  --pid-file) pidfile=$2; shift 2 ;;\n"
	"  *) echo \"fake: unknown option $1\" >&2; exit 2 ;;\n"
	"  esac\n"
	"done\n"
	"[ \"$1\" = " ID " ] || { echo \"fake: bad id $1\" >&2; exit 2; }\n"
	"if [ -e \"$b/fail\" ]; then cat \"$b/fail\" >&2; exit 1; fi\n"
	"if [ -e \"$b/fail-json\" ]; then\n"
	"  echo '{\"level\":\"warning\",\"msg\":\"not this\",\"time\":\"x\"}' >> \"$log\"\n"
	"  cat \"$b/fail-json\" >> \"$log\"\n"
	"  echo 'plain stderr' >&2; exit 1\n"
	"fi\n"
	"if [ -e \"$b/pid\" ]; then cp \"$b/pid\" \"$pidfile\"; exit 0; fi\n"
	/* through fd 3: dash gives a background job /dev/null as stdin even
	 * with an explicit <&0 */
	"exec 3<&0\n"
	"sh -c \"$(cat \"$b/payload\")\" <&3 3<&- &\n"
	"echo $! > \"$pidfile\"\n"
	"exit 0\n";

/* The same for --tty, in Python for the console socket: a pty whose
 * master goes to the monitor by SCM_RIGHTS, as runc does. */
static const char fake_runtime_tty[] =
	"#!/usr/bin/python3\n"
	"import os, pty, socket, subprocess, sys\n"
	"a = sys.argv[1:]\n"
	"while a[0] in ('--root', '--log', '--log-format'):\n"
	"    a = a[2:]\n"
	"if a[:2] != ['run', '--detach']:\n"
	"    sys.exit(2)\n"
	"opts = dict(zip(a[2:-1:2], a[3:-1:2]))\n"
	"master, slave = pty.openpty()\n"
	"s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
	"s.connect(opts['--console-socket'])\n"
	"socket.send_fds(s, [os.ttyname(slave).encode()], [master])\n"
	"s.close()\n"
	"os.close(master)\n"
	"payload = open(opts['--bundle'] + '/payload').read()\n"
	"p = subprocess.Popen(['sh', '-c', payload], stdin=slave, stdout=slave, stderr=slave,\n"
	"                     start_new_session=True)\n"
	"open(opts['--pid-file'], 'w').write(str(p.pid))\n";

static void write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		perror(path);
		exit(1);
	}
	close(fd);
}

/* Whole file, NUL terminated; NULL if missing. */
static char *read_file(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, len = 0;

	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		diag("command failed: %s", cmd);
}

/* A fresh bundle with this payload. */
static void setup(const char *payload)
{
	char path[512];

	sh("rm -rf %s/bundle %s/logs %s/exit.json %s/calls; mkdir -p %s/bundle %s/logs", tmp, tmp,
	   tmp, tmp, tmp, tmp);
	snprintf(path, sizeof(path), "%s/payload", bundle);
	write_file(path, payload, 0644);
}

static const char *path_in(const char *a, const char *b)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", a, b);
	return buf;
}

struct mon {
	pid_t pid;
	int sync; /* read end of its stdout */
	char line[4096];
};

/* Start the monitor with the common options and extras, a NULL-terminated
 * list (at most 8). */
static void start_with(struct mon *mon, const char *const *extras)
{
	int p[2];
	char *argv[32];
	int n = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		exit(1);
	argv[n++] = MONITOR_BIN;
	argv[n++] = "--id";
	argv[n++] = ID;
	argv[n++] = "--bundle";
	argv[n++] = bundle;
	argv[n++] = "--runtime";
	argv[n++] = runtime;
	argv[n++] = "--runtime-root";
	argv[n++] = rootdir;
	argv[n++] = "--log";
	argv[n++] = logpath;
	argv[n++] = "--exit-file";
	argv[n++] = exitpath;
	for (size_t i = 0; extras[i] && i < 8; i++)
		argv[n++] = (char *)extras[i];
	argv[n] = NULL;
	mon->pid = fork();
	if (mon->pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	mon->sync = p[0];
}

static void start(struct mon *mon, const char *extra1, const char *extra2)
{
	const char *extras[] = { extra1, extra1 ? extra2 : NULL, NULL };

	start_with(mon, extras);
}

/* The one line of the sync pipe, up to its EOF. */
static const char *sync_line(struct mon *mon)
{
	size_t len = 0;
	ssize_t n;
	struct pollfd pfd = { mon->sync, POLLIN, 0 };

	while (len < sizeof(mon->line) - 1 && poll(&pfd, 1, 10000) > 0 &&
	       (n = read(mon->sync, mon->line + len, sizeof(mon->line) - 1 - len)) > 0)
		len += (size_t)n;
	mon->line[len] = '\0';
	close(mon->sync);
	return mon->line;
}

static int sync_pid(struct mon *mon)
{
	int pid = 0;

	if (sscanf(sync_line(mon), "{\"pid\": %d}\n", &pid) != 1)
		diag("sync line: '%s'", mon->line);
	return pid;
}

/* The monitor's exit status, waiting at most 10 s. */
static int finish(struct mon *mon)
{
	int status;

	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(mon->pid, &status, WNOHANG);
		if (r == mon->pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(mon->pid, SIGKILL);
	waitpid(mon->pid, &status, 0);
	diag("monitor did not exit in 10 s");
	return -1;
}

/* Connects to the control socket, through /proc/self/fd when the path is
 * too long for sun_path, as monitor.h tells runtimed to. */
static int ctl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int dir = -1;

	if (strlen(bundle) + sizeof(MONITOR_SOCKET) + 1 > sizeof(sa.sun_path)) {
		dir = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir,
			 MONITOR_SOCKET);
	} else {
		strcat(strcat(strcpy(sa.sun_path, bundle), "/"), MONITOR_SOCKET);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		diag("connect %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		fd = -1;
	}
	if (dir >= 0)
		close(dir);
	return fd;
}

/* The reply packet to a request sent on fd (static). */
static const char *reply_of(int fd)
{
	static char buf[MONITOR_PACKET_MAX + 1];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return "(no reply)";
	buf[n] = '\0';
	return buf;
}

/* Sends one request, returns the reply packet (static). */
static const char *request(int fd, const char *req)
{
	if (fd < 0 || send(fd, req, strlen(req), 0) < 0)
		return "(send failed)";
	return reply_of(fd);
}

/* The same with one fd in SCM_RIGHTS, as runtimed sends reopen-fd. */
static const char *request_fd(int fd, const char *req, int pass_fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = { 0 };
	struct iovec iov = { (void *)req, strlen(req) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	if (fd < 0 || sendmsg(fd, &mh, 0) < 0)
		return "(send failed)";
	return reply_of(fd);
}

static bool wait_for_file(const char *path, const char *needle)
{
	for (int i = 0; i < 1000; i++) {
		const char *s = read_file(path);
		if (s && (!needle || strstr(s, needle)))
			return true;
		usleep(10000);
	}
	return false;
}

struct rec {
	const char *stream, *tag, *content;
};

/* Every line of the log is a CRI record, and they are exactly want. */
static void check_log(const char *path, const struct rec *want, size_t n, const char *what)
{
	regex_t re;
	regmatch_t mt[5];
	char *log = read_file(path), *line, *next;
	size_t i = 0;
	bool good = log != NULL;

	regcomp(&re,
		"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z "
		"(stdout|stderr) (P|F) (.*)$",
		REG_EXTENDED);
	for (line = log; good && line && *line; line = next, i++) {
		next = strchr(line, '\n');
		if (!next) {
			diag("%s: last record has no newline: '%s'", what, line);
			good = false;
			break;
		}
		*next++ = '\0';
		if (regexec(&re, line, 4, mt, 0) != 0) {
			diag("%s: not a CRI record: '%s'", what, line);
			good = false;
		} else if (i >= n) {
			diag("%s: extra record '%s'", what, line);
			good = false;
		} else {
			line[mt[1].rm_eo] = line[mt[2].rm_eo] = '\0';
			if (strcmp(line + mt[1].rm_so, want[i].stream) ||
			    strcmp(line + mt[2].rm_so, want[i].tag) ||
			    strcmp(line + mt[3].rm_so, want[i].content)) {
				diag("%s: record %zu is '%s %s %s', want '%s %s %s'", what, i,
				     line + mt[1].rm_so, line + mt[2].rm_so, line + mt[3].rm_so,
				     want[i].stream, want[i].tag, want[i].content);
				good = false;
			}
		}
	}
	if (good && i != n) {
		diag("%s: %zu records, want %zu", what, i, n);
		good = false;
	}
	regfree(&re);
	ok(good, "%s", what);
}

struct exit_info {
	int code, sig, oom;
	unsigned long long finished_at;
};

static bool read_exit(struct exit_info *e)
{
	char oom[8] = "";
	const char *s = read_file(exitpath);
	unsigned long long dropped;

	if (!s)
		return false;
	if (sscanf(s,
		   "{\"exit_code\": %d, \"signal\": %d, \"finished_at\": %llu, \"oom_killed\": "
		   "%5[a-z], \"log_dropped\": %llu}",
		   &e->code, &e->sig, &e->finished_at, oom, &dropped) != 5) {
		diag("exit file: '%s'", s);
		return false;
	}
	e->oom = strcmp(oom, "true") == 0;
	return true;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void test_exit_code(void)
{
	struct mon mon;
	struct exit_info e;
	unsigned long long t0 = now_ns();
	static const struct rec want[] = { { "stdout", "F", "hello" } };
	char want_call[1024];

	setup("echo hello; exit 3");
	start(&mon, NULL, NULL);
	ok(sync_pid(&mon) > 1, "run: the sync line carries the container's pid");
	ok(strstr(mon.line, "\"run_ms\": ") != NULL, "the sync line says how long run took");
	snprintf(want_call, sizeof(want_call), "run --detach --bundle %s --pid-file %s/%s %s\n",
		 bundle, bundle, MONITOR_PID_FILE, ID);
	is_str(read_file(path_in(tmp, "/calls")), want_call,
	       "the runtime ran `run --detach`, once, and nothing else");
	is_int(finish(&mon), 0, "the monitor exits 0 after the container");
	check_log(logpath, want, 1, "hello: one F record in the CRI format");
	if (ok(read_exit(&e), "exit file written")) {
		is_int(e.code, 3, "exit_code 3");
		is_int(e.sig, 0, "signal 0");
		ok(!e.oom, "not oom_killed");
		ok(e.finished_at >= t0 && e.finished_at <= now_ns(), "finished_at is now");
	}
	ok(access(path_in(exitpath, ".tmp"), F_OK) < 0, "no temporary exit file left");
	ok(access(path_in(bundle, "/" MONITOR_SOCKET), F_OK) < 0, "control socket removed at exit");
}

static void test_lines(void)
{
	struct mon mon;
	static const struct rec want[] = {
		{ "stdout", "F", "abcdef" },     { "stdout", "P", "held" },
		{ "stdout", "F", "rest" },       { "stderr", "F", "to stderr" },
		{ "stdout", "P", "0123456789" }, { "stdout", "P", "0123456789" },
		{ "stdout", "F", "01234" },      { "stdout", "F", "0123456789" },
		{ "stdout", "F", "crlf" },       { "stdout", "F", "" },
		{ "stdout", "P", "tail" },
	};

	/* each step waits, so that the records' order is the payload's */
	setup("printf abc; printf 'def\\n'; sleep 0.1; printf held; sleep 0.4; echo rest; "
	      "sleep 0.1; echo 'to stderr' >&2; sleep 0.1; "
	      "echo 0123456789012345678901234; echo 0123456789; printf 'crlf\\r\\n\\n'; "
	      "sleep 0.1; printf tail");
	start(&mon, "--log-max", "10");
	ok(sync_pid(&mon) > 1, "lines: created");
	is_int(finish(&mon), 0, "lines: monitor exits 0");
	check_log(logpath, want, sizeof(want) / sizeof(want[0]),
		  "partial lines held then P, split at --log-max, stderr, CRLF, P at EOF");
}

static void test_reopen_and_sigterm(void)
{
	struct mon mon;
	struct exit_info e;
	char rotated[512], go[512], payload[1024], status[64], *s;
	static const struct rec want1[] = { { "stdout", "F", "one" } };
	static const struct rec want2[] = { { "stdout", "F", "two" } };
	int fd, log_fd;

	snprintf(rotated, sizeof(rotated), "%s.1", logpath);
	snprintf(go, sizeof(go), "%s/go", bundle);
	snprintf(payload, sizeof(payload),
		 "echo one; while [ ! -e %s ]; do sleep 0.05; done; echo two", go);
	setup(payload);
	start(&mon, NULL, NULL);
	ok(sync_pid(&mon) > 1, "reopen: created");
	ok(wait_for_file(logpath, "one"), "first line logged");

	snprintf(status, sizeof(status), "/proc/%d/status", (int)mon.pid);
	s = read_file(status);
	s = s ? strstr(s, "VmRSS:") : NULL;
	if (s)
		diag("monitor %.*s while the container runs", (int)strcspn(s, "\n"), s);
	/* confined once the container runs (runtimed/monitor_sandbox.c) */
	s = read_file(status);
	ok(s && strstr(s, "\nNoNewPrivs:\t1\n") && strstr(s, "\nSeccomp:\t2\n") &&
		   strstr(s, "\nCapEff:\t0000000000000000\n"),
	   "the running monitor: no_new_privs, a seccomp filter, no capability");

	kill(mon.pid, SIGTERM);
	kill(mon.pid, SIGHUP);
	kill(mon.pid, SIGINT);
	usleep(100000);
	ok(kill(mon.pid, 0) == 0 && waitpid(mon.pid, NULL, WNOHANG) == 0,
	   "SIGTERM, SIGHUP, SIGINT: the monitor stays");

	rename(logpath, rotated);
	fd = ctl_connect();
	/* runtimed opens the new file and hands it over; the monitor opens
	 * no path of the log's directory */
	is_str(request(fd, "reopen"), "error unknown request 'reopen'",
	       "reopen by path is no longer served");
	log_fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	is_str(request_fd(fd, "reopen-fd", log_fd), "ok", "reopen-fd answers ok");
	close(log_fd);
	is_str(request(fd, "bogus"), "error unknown request 'bogus'", "unknown request refused");
	like(request(fd, "resize 10 20"), "error resize: the container has no terminal",
	     "resize without a tty refused");
	close(fd);
	write_file(go, "", 0644);
	is_int(finish(&mon), 0, "reopen: monitor exits 0");
	check_log(rotated, want1, 1, "the rotated file has the line before reopen");
	check_log(logpath, want2, 1, "the new file has the line after reopen");
	if (read_exit(&e))
		is_int(e.code, 0, "reopen: exit_code 0");
}

static void test_attach_stdin(void)
{
	struct mon mon;
	static const struct rec want[] = { { "stdout", "F", "got hi" },
					   { "stdout", "F", "rest" },
					   { "stdout", "F", "eof" } };
	char buf[256];
	ssize_t n;
	int fd;

	setup("read l; echo \"got $l\"; cat; echo eof");
	start(&mon, "--stdin", "--stdin-once");
	ok(sync_pid(&mon) > 1, "attach: created");
	fd = ctl_connect();
	is_str(request(fd, "attach"), "ok", "attach answers ok");
	send(fd, "0hi\n", 4, 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	is_str(buf, "1got hi\n", "stdin reaches the container, its output reaches the client");
	send(fd, "0rest\n", 6, 0);
	send(fd, "0", 1, 0);
	is_int(finish(&mon), 0,
	       "StdinOnce: an empty stdin packet closes stdin, the container ends");
	close(fd);
	check_log(logpath, want, 3, "attach: the log has the output too");
}

/* Without --stdin-once the end of one client's stdin is not the end of the
 * container's: the empty packet, and the session's end, leave it open. */
static void test_attach_stdin_stays(void)
{
	struct mon mon;
	static const struct rec want[] = { { "stdout", "F", "got a" },
					   { "stdout", "F", "then b" } };
	int fd;

	setup("read l; echo \"got $l\"; read m; echo \"then $m\"");
	start(&mon, "--stdin", NULL);
	ok(sync_pid(&mon) > 1, "attach, no StdinOnce: created");
	fd = ctl_connect();
	is_str(request(fd, "attach"), "ok", "attach answers ok");
	send(fd, "0", 1, 0);
	close(fd);
	fd = ctl_connect();
	is_str(request(fd, "attach"), "ok", "a second attach answers ok");
	send(fd, "0a\n", 3, 0);
	send(fd, "0b\n", 3, 0);
	is_int(finish(&mon), 0, "stdin stayed open for the second session");
	close(fd);
	check_log(logpath, want, 2, "both lines read after the first session's stdin ended");
}

static void test_sigkill(void)
{
	struct mon mon;
	struct exit_info e;
	int pid;

	setup("sleep 100");
	start(&mon, NULL, NULL);
	pid = sync_pid(&mon);
	ok(pid > 1, "kill: created");
	if (pid > 1)
		kill(pid, SIGKILL);
	is_int(finish(&mon), 0, "kill: monitor exits 0");
	if (ok(read_exit(&e), "kill: exit file written")) {
		is_int(e.code, 137, "exit_code 128+9");
		is_int(e.sig, SIGKILL, "signal 9");
		ok(!e.oom, "SIGKILL from outside is not an OOM kill");
	}
}

static void test_run_fails(void)
{
	struct mon mon;
	char path[512], calls[160], want[512];
	const char *c;

	setup("exit 0");
	snprintf(path, sizeof(path), "%s/fail", bundle);
	write_file(path, "boom: \"quoted\"\ttab\n", 0644);
	snprintf(calls, sizeof(calls), "%s/calls", tmp);
	start(&mon, NULL, NULL);
	snprintf(want, sizeof(want), "{\"error\": \"%s run: boom: \\\"quoted\\\"\\u0009tab\"}\n",
		 runtime);
	is_str(sync_line(&mon), want, "failed run: the runtime's stderr, JSON-escaped");
	is_int(finish(&mon), 1, "failed run: monitor exits 1");
	ok(access(exitpath, F_OK) < 0, "failed run: no exit file");
	c = read_file(calls);
	like(c, "delete --force " ID, "failed run: the runtime's delete --force ran");
	ok(access(path_in(bundle, "/" MONITOR_SOCKET), F_OK) < 0,
	   "failed run: control socket removed");
	ok(access(path_in(bundle, "/" MONITOR_PID_FILE), F_OK) < 0, "failed run: no pid file left");
}

static void test_run_fails_json(void)
{
	struct mon mon;
	char path[512], want[512];

	setup("exit 0");
	snprintf(path, sizeof(path), "%s/fail-json", bundle);
	write_file(path,
		   "{\"level\":\"error\",\"msg\":\"runc run failed: \\u00e9\\\"x\\\" "
		   "\\ud83d\\ude00\",\"time\":\"2026-01-01T00:00:00Z\"}\n",
		   0644);
	start(&mon, NULL, NULL);
	snprintf(want, sizeof(want),
		 "{\"error\": \"%s run: runc run failed: \xc3\xa9\\\"x\\\" "
		 "\xf0\x9f\x98\x80\"}\n",
		 runtime);
	is_str(sync_line(&mon), want, "failed run: the message of runc's JSON log");
	is_int(finish(&mon), 1, "json failure: monitor exits 1");
}

/* A pid file naming a process that is not the monitor's child. */
static void test_not_our_child(void)
{
	struct mon mon;
	char path[512], pid[32];

	setup("exit 0");
	snprintf(path, sizeof(path), "%s/pid", bundle);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	write_file(path, pid, 0644);
	start(&mon, NULL, NULL);
	like(sync_line(&mon), "is not the monitor's child", "an init that is not ours is refused");
	is_int(finish(&mon), 1, "not our child: monitor exits 1");
	like(read_file(path_in(tmp, "/calls")), "delete --force", "not our child: deleted");
}

static void test_bad_options(void)
{
	struct mon mon;
	char *saved = rootdir[0] ? strdup(rootdir) : NULL;

	setup("exit 0");
	strcpy(rootdir, "relative/root");
	start(&mon, NULL, NULL);
	is_str(sync_line(&mon),
	       "{\"error\": \"--runtime-root 'relative/root': not a clean absolute path\"}\n",
	       "a relative path is refused");
	is_int(finish(&mon), 1, "bad option: exits 1");
	strcpy(rootdir, "/a/../b");
	start(&mon, NULL, NULL);
	like(sync_line(&mon), "not a clean absolute path", "a path with .. is refused");
	finish(&mon);
	strcpy(rootdir, saved);
	free(saved);
	start(&mon, "--log-max", "0");
	like(sync_line(&mon), "--log-max '0'", "--log-max 0 is refused");
	finish(&mon);
	start(&mon, "--stdin-once", NULL);
	is_str(sync_line(&mon), "{\"error\": \"--stdin-once needs --stdin\"}\n",
	       "--stdin-once alone is refused");
	finish(&mon);
	ok(access(exitpath, F_OK) < 0, "bad options: nothing ran");
}

static void test_tty(void)
{
	struct mon mon;
	char saved[sizeof(runtime)];
	static const struct rec want[] = { { "stdout", "F", "hello" },
					   { "stdout", "F", "33 77" },
					   { "stdout", "F", "got hello" },
					   { "stdout", "F", "eof" } };
	char buf[256];
	ssize_t n;
	int fd;

	if (access("/usr/bin/python3", X_OK) < 0 || access("/bin/stty", X_OK) < 0) {
		ok(1, "# SKIP tty: no /usr/bin/python3 or /bin/stty for the fake runtime");
		return;
	}
	strcpy(saved, runtime);
	strcat(runtime, "-tty");
	write_file(runtime, fake_runtime_tty, 0755);
	setup("read x; stty size; echo \"got $x\"; cat; echo eof");
	start_with(&mon, (const char *const[]){ "--tty", "--stdin", "--stdin-once", NULL });
	ok(sync_pid(&mon) > 1, "tty: created, the master came on the console socket");
	ok(access(path_in(bundle, "/" MONITOR_CONSOLE_SOCKET), F_OK) < 0,
	   "tty: console socket removed after run");
	fd = ctl_connect();
	is_str(request(fd, "resize 33 77"), "ok", "tty: resize answers ok");
	is_str(request(fd, "resize 0 77"), "error resize: rows and cols must be in [1, 65535]",
	       "tty: resize 0 refused");
	is_str(request(fd, "attach"), "ok", "tty: attach");
	send(fd, "0hello\n", 7, 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	like(buf, "1hello\r\n", "tty: the terminal's echo reaches the attach client");
	send(fd, "0", 1, 0);
	is_int(finish(&mon), 0, "tty: closing stdin types EOF, the container ends");
	close(fd);
	check_log(logpath, want, 4, "tty: one stream, stdout, CRLF stripped");
	strcpy(runtime, saved);
}

/* The log never holds the container up: a full disk drops records, and an
 * attach client that does not read is dropped. */
static void test_never_stall(void)
{
	struct mon mon;
	struct exit_info e;
	char saved[sizeof(logpath)], *s;
	int fd;

	strcpy(saved, logpath);
	strcpy(logpath, "/dev/full");
	setup("head -c 4000000 /dev/zero | tr '\\0' x; echo; echo done");
	start(&mon, "--stdin", NULL);
	ok(sync_pid(&mon) > 1, "stall: created");
	fd = ctl_connect();
	is_str(request(fd, "attach"), "ok", "stall: attached, never reading");
	is_int(finish(&mon), 0, "stall: 4 MB of output, a full disk, a client that does not read");
	s = read_file(exitpath);
	ok(read_exit(&e) && e.code == 0 && s && !strstr(s, "\"log_dropped\": 0}"),
	   "stall: the exit file counts the dropped records");
	close(fd);
	strcpy(logpath, saved);
}

/* A bundle whose socket path does not fit in sun_path. */
static void test_long_bundle(void)
{
	struct mon mon;
	char saved[sizeof(bundle)];
	static const struct rec want[] = { { "stdout", "F", "deep" } };
	int fd;

	strcpy(saved, bundle);
	setup("");
	strcat(bundle, "/a-directory-name-long-enough-to-push-the-socket-path-beyond-sun-path");
	sh("mkdir -p %s; echo 'echo deep; sleep 0.3' > %s/payload", bundle, bundle);
	start(&mon, NULL, NULL);
	ok(sync_pid(&mon) > 1, "long bundle path: created");
	fd = ctl_connect();
	is_str(request(fd, "attach"), "ok",
	       "long bundle path: control socket through /proc/self/fd");
	close(fd);
	is_int(finish(&mon), 0, "long bundle path: monitor exits 0");
	check_log(logpath, want, 1, "long bundle path: logged");
	strcpy(bundle, saved);
}

/* The JSON pieces, directly: runc's log lines are read by them. */
static void test_json(void)
{
	static const char *const bad[] = {
		"",
		"{",
		"[\"msg\",\"x\"]",
		"{\"msg\":\"unterminated}",
		"{\"msg\":\"bad escape \\q\"}",
		"{\"msg\":\"lone surrogate \\ud800\"}",
		"{\"msg\":\"low surrogate \\udc00\"}",
		"{\"msg\":\"short \\u12\"}",
		"{\"msg\":\"raw \t control\"}",
		"{\"level\":\"error\" \"msg\":\"no comma\"}",
		"{\"level\":}",
		"{\"msg\":42}",
		"{\"a\":{\"b\":[1,2,{\"c\":\"}\"}]}}",
	};
	char out[64], q[128];
	bool all = true;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (json_object_string(bad[i], strlen(bad[i]), "msg", out, sizeof(out)) == 0) {
			diag("accepted: %s -> '%s'", bad[i], out);
			all = false;
		}
	ok(all, "json: malformed lines and missing members are refused");
	static const char nested[] = "{\"a\":{\"msg\":\"inner\"},\"n\":-1.5e3,\"t\":true,"
				     "\"z\":null,\"msg\":\"outer \\\"q\\\" \\u00e9\\n\"}";
	static const char longer[] = "{\"msg\":\"0123456789abcdef\"}";

	ok(json_object_string(nested, strlen(nested), "msg", out, sizeof(out)) == 0 &&
		   strcmp(out, "outer \"q\" \xc3\xa9\n") == 0,
	   "json: nested values skipped, the member's escapes decoded");
	ok(json_object_string(longer, strlen(longer), "msg", out, 8) == 0 &&
		   strcmp(out, "0123456") == 0,
	   "json: a long value is truncated to the buffer");
	json_quote(q, sizeof(q), "a\"b\\c\n\x01\xff\xc3\xa9", 10);
	is_str(q, "\"a\\\"b\\\\c\\u000a\\u0001\xef\xbf\xbd\xc3\xa9\"",
	       "json: quoting escapes controls, replaces bad UTF-8");
	json_quote(q, 8, "0123456789", 10);
	is_str(q, "\"01234\"", "json: quoting truncates and stays a string");
}

int main(void)
{
	test_json();
	if (geteuid() != 0) {
		diag("SKIP the monitor itself: needs root (its control socket serves uid 0 only)");
		return done_testing();
	}
	strcpy(tmp, "/tmp/crisp-test-monitor.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(bundle, sizeof(bundle), "%s/bundle", tmp);
	snprintf(logpath, sizeof(logpath), "%s/logs/0.log", tmp);
	snprintf(exitpath, sizeof(exitpath), "%s/exit.json", tmp);
	snprintf(runtime, sizeof(runtime), "%s/fake-runtime", tmp);
	snprintf(rootdir, sizeof(rootdir), "%s/root", tmp);
	write_file(runtime, fake_runtime, 0755);
	signal(SIGPIPE, SIG_IGN);

	test_exit_code();
	test_lines();
	test_reopen_and_sigterm();
	test_attach_stdin();
	test_attach_stdin_stays();
	test_sigkill();
	test_run_fails();
	test_run_fails_json();
	test_not_our_child();
	test_bad_options();
	test_tty();
	test_never_stall();
	test_long_bundle();

	sh("rm -rf %s", tmp);
	return done_testing();
}
