/* crisp-monitor: one per container, the contract is runtimed/monitor.h.
 *
 * It creates and starts the container through the OCI runtime (one
 * `runtime run --detach`, at StartContainer), holds its stdio,
 * writes the CRI log, serves the control socket and, as child subreaper,
 * reaps the container's init and records its exit durably. It is not
 * runtimed's child and outlives runtimed and crispd; nothing it does may
 * stall the container: the log and attach clients are written without
 * ever blocking on them.
 *
 * One poll(2) loop, no library but libc: it must stay small (well under
 * 1 MB of RSS per container). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "runtimed/monitor_int.h"

struct monitor m;
char iobuf[MONITOR_PACKET_MAX];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: crisp-monitor --id <64 hex> --bundle <dir> --runtime <path>\n"
		"                     --runtime-root <dir> --log <path> --exit-file <path>\n"
		"                     [--cgroup-parent <path>] [--stdin] [--stdin-once] [--tty]\n"
		"                     [--log-max <bytes>]\n");
}

/* The sync pipe (stdout) carries exactly one line: {"pid": N} or this. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void cleanup_sockets(void)
{
	if (m.ctl_path[0])
		unlink(m.ctl_path);
	if (m.console_path[0])
		unlink(m.console_path);
}

static void fail(const char *fmt, ...)
{
	char msg[4096], line[sizeof(msg) * 6 + 32];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	strcpy(line, "{\"error\": ");
	json_quote(line + strlen(line), sizeof(line) - strlen(line) - 3, msg, (size_t)n);
	strcat(line, "}\n");
	if (write(STDOUT_FILENO, line, strlen(line)) < 0) {
		/* runtimed went away: nobody to tell */
	}
	cleanup_sockets();
	exit(1);
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

/* Absolute, no "." or ".." component, bounded: the paths come from
 * runtimed, which built them, but a mistake must not write elsewhere. */
static bool is_clean_abspath(const char *p)
{
	const char *c;

	if (p[0] != '/' || strlen(p) >= PATH_MAX - 32)
		return false;
	for (c = p; *c; c++) {
		if (c[0] == '/' && c[1] == '.' &&
		    (c[2] == '/' || c[2] == '\0' || (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			return false;
	}
	return true;
}

static void parse_options(int argc, char **argv)
{
	enum {
		O_ID = 256,
		O_BUNDLE,
		O_RUNTIME,
		O_ROOT,
		O_LOG,
		O_EXIT,
		O_CGROUP,
		O_STDIN,
		O_ONCE,
		O_TTY,
		O_LOGMAX,
		O_HELP
	};
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, O_ID },
		{ "bundle", required_argument, NULL, O_BUNDLE },
		{ "runtime", required_argument, NULL, O_RUNTIME },
		{ "runtime-root", required_argument, NULL, O_ROOT },
		{ "log", required_argument, NULL, O_LOG },
		{ "exit-file", required_argument, NULL, O_EXIT },
		{ "cgroup-parent", required_argument, NULL, O_CGROUP },
		{ "stdin", no_argument, NULL, O_STDIN },
		{ "stdin-once", no_argument, NULL, O_ONCE },
		{ "tty", no_argument, NULL, O_TTY },
		{ "log-max", required_argument, NULL, O_LOGMAX },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct options *o = &m.opt;
	const char **paths[] = { &o->bundle, &o->runtime, &o->runtime_root, &o->log,
				 &o->exit_file };
	const char *names[] = { "--bundle", "--runtime", "--runtime-root", "--log", "--exit-file" };
	int c;

	o->log_max = MONITOR_LOG_MAX_DEFAULT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		unsigned long long v;

		switch (c) {
		case O_ID:
			o->id = optarg;
			break;
		case O_BUNDLE:
			o->bundle = optarg;
			break;
		case O_RUNTIME:
			o->runtime = optarg;
			break;
		case O_ROOT:
			o->runtime_root = optarg;
			break;
		case O_LOG:
			o->log = optarg;
			break;
		case O_EXIT:
			o->exit_file = optarg;
			break;
		case O_CGROUP:
			o->cgroup_parent = optarg;
			break;
		case O_STDIN:
			o->stdin_open = true;
			break;
		case O_ONCE:
			o->stdin_once = true;
			break;
		case O_TTY:
			o->tty = true;
			break;
		case O_LOGMAX:
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    v < MONITOR_LOG_MAX_MIN || v > MONITOR_LOG_MAX_MAX)
				fail("--log-max '%s': not a number of bytes in [%u, %u]", optarg,
				     MONITOR_LOG_MAX_MIN, MONITOR_LOG_MAX_MAX);
			o->log_max = (size_t)v;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			fail("bad option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		fail("unexpected argument '%s'", argv[optind]);
	if (!o->id || !is_hex64(o->id))
		fail("--id '%s': not 64 lowercase hex digits", o->id ? o->id : "(missing)");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (!*paths[i] || !is_clean_abspath(*paths[i]))
			fail("%s '%s': not a clean absolute path", names[i],
			     *paths[i] ? *paths[i] : "(missing)");
	if (o->cgroup_parent && !is_clean_abspath(o->cgroup_parent))
		fail("--cgroup-parent '%s': not a clean absolute path", o->cgroup_parent);
	if (o->stdin_once && !o->stdin_open)
		fail("--stdin-once needs --stdin");
}

static void setup_signals(void)
{
	sigset_t set;

	/* Termination signals are read and ignored: the container outlives
	 * runtimed, and a monitor that died would leave it without a log or
	 * an exit record. Blocked (not SIG_IGN, which exec would pass on to
	 * the runtime and the container). */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fail("sigprocmask: %s", strerror(errno));
	m.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m.sigfd < 0)
		fail("signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
}

/* The path to a socket in the bundle: the bundle's own path when it fits
 * in sun_path, else a path through our fd of the bundle directory (for us
 * "/proc/self/fd/N/name", for another process "/proc/<our pid>/fd/N/name"). */
static void bundle_socket_path(char *buf, size_t size, const char *name, bool for_other)
{
	struct sockaddr_un sa;

	if ((size_t)snprintf(buf, size, "%s/%s", m.opt.bundle, name) < sizeof(sa.sun_path))
		return;
	if (for_other)
		snprintf(buf, size, "/proc/%d/fd/%d/%s", (int)getpid(), m.bundle_fd, name);
	else
		snprintf(buf, size, "/proc/self/fd/%d/%s", m.bundle_fd, name);
}

static int listen_unix(const char *name, int type, char *path, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char bind_path[PATH_MAX];
	mode_t old;
	int fd;

	snprintf(path, size, "%s/%s", m.opt.bundle, name);
	bundle_socket_path(bind_path, sizeof(bind_path), name, false);
	strcpy(sa.sun_path, bind_path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fail("socket for %s: %s", path, strerror(errno));
	/* a stale socket of an earlier monitor of this bundle */
	unlinkat(m.bundle_fd, name, 0);
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		umask(old);
		path[0] = '\0';
		fail("bind %s: %s", bind_path, strerror(e));
	}
	umask(old);
	if (listen(fd, MAX_CLIENTS) < 0)
		fail("listen on %s: %s", path, strerror(errno));
	return fd;
}

/* Runs argv with fds as its stdio (-1: /dev/null). The child gets the
 * signal state of a fresh process, and no other fd of ours. */
static pid_t spawn(char *const argv[], const int fds[3])
{
	pid_t pid = fork();
	sigset_t none;
	int tmp[3];

	if (pid != 0)
		return pid;
	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* copies above 2 first, so that no dup2 clobbers a later source */
	for (int i = 0; i < 3; i++) {
		int fd = fds[i] >= 0 ? fds[i] : open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || (tmp[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
			_exit(127);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			_exit(127);
	syscall(SYS_close_range, 3, ~0U, 0); /* musl 1.2.3 has no wrapper */
	execv(argv[0], argv);
	_exit(127);
}

static void cache_exit(pid_t pid, int status)
{
	if (m.nreaped < REAPED_CACHE) {
		m.reaped[m.nreaped].pid = pid;
		m.reaped[m.nreaped].status = status;
		m.nreaped++;
	}
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void init_exited(int status)
{
	m.init_done = true;
	m.init_status = status;
	m.finished_at = realtime_ns();
	m.drain_deadline = monotonic_ms() + DRAIN_MS;
}

/* Reaps every child that exited: the runtime, the container's init, and
 * orphans of the container that were reparented to us (ignored, but
 * remembered until the init's pid is known: it may be one of them). */
static void reap(void)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(m.sigfd, &si, sizeof(si)) == sizeof(si))
		; /* SIGTERM and friends: ignored on purpose */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m.runtime_pid && !m.runtime_done) {
			m.runtime_done = true;
			m.runtime_status = status;
		} else if (m.init_pid > 0 && pid == m.init_pid && !m.init_done) {
			init_exited(status);
		} else if (m.init_pid == 0) {
			cache_exit(pid, status);
		}
	}
}

/* The runtime's own error: the last "error" record of its JSON log, else
 * what it printed on stderr (our pipe), else its exit status. */
static void runtime_error(char *out, size_t size)
{
	char *buf = iobuf, *line, *next;
	ssize_t n = 0;
	off_t end;
	int fd;

	out[0] = '\0';
	fd = openat(m.bundle_fd, RUNTIME_LOG, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		/* the tail is enough: the failure is the last thing it says */
		end = lseek(fd, 0, SEEK_END);
		if (end > 0)
			n = pread(fd, buf, sizeof(iobuf) - 1,
				  end > (off_t)sizeof(iobuf) - 1 ? end - (off_t)sizeof(iobuf) + 1
								 : 0);
		close(fd);
	}
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	for (line = buf; line && *line; line = next) {
		char level[16];
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (json_object_string(line, strlen(line), "level", level, sizeof(level)) == 0 &&
		    (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0))
			json_object_string(line, strlen(line), "msg", out, size);
	}
	if (out[0])
		return;
	if (m.out_fd[1] >= 0) {
		/* a process of the failed run may still hold the pipe */
		fcntl(m.out_fd[1], F_SETFL, O_NONBLOCK);
		n = read(m.out_fd[1], buf, size - 1);
		if (n > 0) {
			while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
				n--;
			memcpy(out, buf, (size_t)n);
			out[n] = '\0';
		}
	}
	if (out[0])
		return;
	if (WIFEXITED(m.runtime_status))
		snprintf(out, size, "exited with status %d", WEXITSTATUS(m.runtime_status));
	else
		snprintf(out, size, "killed by signal %d", WTERMSIG(m.runtime_status));
}

/* After a failed run nothing may stay behind: the runtime may have left
 * a container (or a state directory), and a pid file would tell runtimed's
 * recovery that the container started. */
static void delete_container(void)
{
	char *argv[] = {
		(char *)m.opt.runtime, "--root", (char *)m.opt.runtime_root, "delete", "--force",
		(char *)m.opt.id,      NULL
	};
	int fds[3] = { -1, -1, -1 };
	pid_t pid = spawn(argv, fds);
	int status;

	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	unlinkat(m.bundle_fd, MONITOR_PID_FILE, 0);
}

static void fail_run(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_run(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	delete_container();
	fail("%s", msg);
}

/* Takes the pty master the runtime sends on the console socket (runc's
 * --console-socket protocol: one SCM_RIGHTS message, its data the pty's
 * name). */
static void console_accept(void)
{
	char name[PATH_MAX];
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) - 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf.buf,
			      .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *c;
	int conn, fd = -1;

	struct timeval tv = { .tv_sec = 5 };

	conn = accept4(m.console_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return;
	/* the runtime sends at once; nobody else may hold us up */
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	close(conn);
	if (fd < 0)
		return;
	if (!isatty(fd) || m.out_fd[0] >= 0) {
		close(fd);
		return;
	}
	m.out_fd[0] = fd;
}

static void setup_stdio(int child[3])
{
	int p[2];

	child[0] = child[1] = child[2] = -1;
	m.out_fd[0] = m.out_fd[1] = m.in_fd = -1;
	if (m.opt.tty) {
		m.console_fd = listen_unix(CONSOLE_SOCKET, SOCK_STREAM, m.console_path,
					   sizeof(m.console_path));
		bundle_socket_path(m.console_arg, sizeof(m.console_arg), CONSOLE_SOCKET, true);
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	m.out_fd[0] = p[0], child[1] = p[1];
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	m.out_fd[1] = p[0], child[2] = p[1];
	if (m.opt.stdin_open) {
		if (pipe2(p, O_CLOEXEC) < 0)
			fail("pipe: %s", strerror(errno));
		child[0] = p[0], m.in_fd = p[1];
	}
}

/* How long `runtime run --detach` took, launch to exit, for runtimed's
 * debug log (it compares pod start with the runtime invocations it makes). */
static double run_ms;

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void run_container(void)
{
	char pid_file[PATH_MAX], log_file[PATH_MAX];
	char *argv[16];
	int child[3], n = 0;
	double t0;

	setup_stdio(child);
	snprintf(pid_file, sizeof(pid_file), "%s/%s", m.opt.bundle, MONITOR_PID_FILE);
	snprintf(log_file, sizeof(log_file), "%s/%s", m.opt.bundle, RUNTIME_LOG);
	/* both describe this run only */
	unlinkat(m.bundle_fd, MONITOR_PID_FILE, 0);
	unlinkat(m.bundle_fd, RUNTIME_LOG, 0);
	argv[n++] = (char *)m.opt.runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)m.opt.runtime_root;
	argv[n++] = "--log";
	argv[n++] = log_file;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	argv[n++] = "run";
	argv[n++] = "--detach";
	argv[n++] = "--bundle";
	argv[n++] = (char *)m.opt.bundle;
	argv[n++] = "--pid-file";
	argv[n++] = pid_file;
	if (m.opt.tty) {
		argv[n++] = "--console-socket";
		argv[n++] = m.console_arg;
	}
	argv[n++] = (char *)m.opt.id;
	argv[n] = NULL;

	t0 = mono_ms();
	m.runtime_pid = spawn(argv, child);
	if (m.runtime_pid < 0)
		fail("fork: %s", strerror(errno));
	/* the container keeps its ends through the runtime; ours go */
	for (int i = 0; i < 3; i++)
		if (child[i] >= 0)
			close(child[i]);

	while (!m.runtime_done) {
		struct pollfd pfd[2] = { { m.sigfd, POLLIN, 0 }, { m.console_fd, POLLIN, 0 } };
		if (poll(pfd, m.opt.tty ? 2 : 1, -1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (pfd[0].revents)
			reap();
		if (m.opt.tty && pfd[1].revents)
			console_accept();
	}
	run_ms = mono_ms() - t0;
	if (!WIFEXITED(m.runtime_status) || WEXITSTATUS(m.runtime_status) != 0) {
		char why[2048];
		runtime_error(why, sizeof(why));
		fail_run("%s run: %s", m.opt.runtime, why);
	}
	if (m.opt.tty) {
		/* a connection may still wait in the backlog */
		if (m.out_fd[0] < 0)
			console_accept();
		close(m.console_fd);
		m.console_fd = -1;
		unlink(m.console_path);
		m.console_path[0] = '\0';
		if (m.out_fd[0] < 0)
			fail_run("%s run: no terminal came on the console socket", m.opt.runtime);
		if (m.opt.stdin_open) {
			m.in_fd = fcntl(m.out_fd[0], F_DUPFD_CLOEXEC, 3);
			if (m.in_fd < 0)
				fail_run("dup of the terminal: %s", strerror(errno));
		}
	}
}

static pid_t read_pid_file(void)
{
	char buf[32], *end;
	ssize_t n;
	long v;
	int fd;

	fd = openat(m.bundle_fd, MONITOR_PID_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fail_run("open %s/%s: %s", m.opt.bundle, MONITOR_PID_FILE, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		fail_run("%s/%s: empty", m.opt.bundle, MONITOR_PID_FILE);
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v <= 1 || v > INT_MAX)
		fail_run("%s/%s: not a pid: '%s'", m.opt.bundle, MONITOR_PID_FILE, buf);
	return (pid_t)v;
}

/* The init must be our child by now (the runtime that started it exited,
 * and we are the subreaper above it), or have exited already; if it is
 * neither, its exit would never come and nothing could be recorded. */
static void adopt_init(void)
{
	int status;
	pid_t r;

	for (size_t i = 0; i < m.nreaped; i++)
		if (m.reaped[i].pid == m.init_pid) {
			init_exited(m.reaped[i].status);
			return;
		}
	r = waitpid(m.init_pid, &status, WNOHANG);
	if (r == m.init_pid)
		init_exited(status);
	else if (r < 0)
		fail_run("the container's init (pid %d) is not the monitor's child: %s",
			 (int)m.init_pid, strerror(errno));
}

/* The oom_kill counter of the cgroup file open on fd; 0 if it has none. */
static uint64_t oom_kills(int fd)
{
	char buf[1024], *p;
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, "oom_kill ", 9) == 0)
			return strtoull(p + 9, NULL, 10);
	return 0;
}

/* Opens the container's memory cgroup counter, found from its init's
 * /proc/<pid>/cgroup now, while the pid surely is the container's: v1
 * memory.oom_control, else v2 memory.events ("oom_kill N" in both). */
static void oom_open(pid_t pid)
{
	char path[PATH_MAX], line[PATH_MAX], v2[PATH_MAX] = "";
	FILE *f;

	m.oom_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':'), *cg = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!cg)
			continue;
		*cg++ = '\0';
		cg[strcspn(cg, "\n")] = '\0';
		ctrl++;
		if (strcmp(ctrl, "") == 0) {
			snprintf(v2, sizeof(v2), "%s", cg);
			continue;
		}
		for (char *tok = strtok(ctrl, ","); tok; tok = strtok(NULL, ","))
			if (strcmp(tok, "memory") == 0) {
				snprintf(path, sizeof(path),
					 "/sys/fs/cgroup/memory%s/memory.oom_control", cg);
				m.oom_fd = open(path, O_RDONLY | O_CLOEXEC);
			}
	}
	fclose(f);
	if (m.oom_fd < 0 && v2[0]) {
		const char *root = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
					   ? "/sys/fs/cgroup"
					   : "/sys/fs/cgroup/unified";
		snprintf(path, sizeof(path), "%s%s/memory.events", root, v2);
		m.oom_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	m.oom_start = oom_kills(m.oom_fd);
}

/* Nothing the monitor does once the container runs needs a capability:
 * the files it writes (the exit file; the log, open already or passed by
 * runtimed) are root's own, waitpid and the terminal need none. So it keeps uid 0 but no capability, and cannot gain one.
 * Whether every step held: none can fail as root with every capability
 * (PR_CAPBSET_DROP needs CAP_SETPCAP, which it has until capset), but a
 * monitor that would go on serving privileged fails closed (main). */
static bool drop_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	bool ok = true;

	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		ok = prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 && ok;
	ok = syscall(SYS_capset, &hdr, data) == 0 && ok;
	ok = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ok;
	/* it holds the container's stdio: no core dump, no ptrace by peers */
	ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && ok;
	return ok;
}

static void read_output(int s)
{
	ssize_t n = read(m.out_fd[s], iobuf, sizeof(iobuf) - 1);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF; a terminal's master says EIO once the slave is gone */
		log_flush(&m.log, (enum log_stream)s, true, 0);
		if (m.in_fd >= 0 && m.opt.tty && s == 0) {
			close(m.in_fd);
			m.in_fd = -1;
		}
		close(m.out_fd[s]);
		m.out_fd[s] = -1;
		return;
	}
	log_feed(&m.log, (enum log_stream)s, iobuf, (size_t)n);
	broadcast(s == 0 ? '1' : '2', iobuf, (size_t)n);
}

static bool drained(void)
{
	return m.init_done &&
	       ((m.out_fd[0] < 0 && m.out_fd[1] < 0) || monotonic_ms() >= m.drain_deadline);
}

static void serve(void)
{
	struct pollfd pfd[4 + MAX_CLIENTS];
	int idx[MAX_CLIENTS];

	while (!drained()) {
		uint64_t now = monotonic_ms(), next = log_next_deadline(&m.log);
		int n = 0, timeout = -1;

		if (m.init_done)
			next = next && next < m.drain_deadline ? next : m.drain_deadline;
		if (next)
			timeout = next > now ? (int)(next - now) : 0;
		pfd[n++] = (struct pollfd){ m.sigfd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ m.ctl_fd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ m.out_fd[0], POLLIN, 0 };
		pfd[n++] = (struct pollfd){ m.out_fd[1], POLLIN, 0 };
		if (m.in_pending)
			pfd[n++] = (struct pollfd){ m.in_fd, POLLOUT, 0 };
		for (int i = 0; i < MAX_CLIENTS; i++) {
			idx[i] = -1;
			/* stdin waits: attach clients wait with it */
			if (m.clients[i].fd < 0 || (m.in_pending && m.clients[i].attached))
				continue;
			idx[i] = n;
			pfd[n++] = (struct pollfd){ m.clients[i].fd, POLLIN, 0 };
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			reap();
		if (pfd[1].revents)
			client_accept();
		for (int s = 0; s < 2; s++)
			if (pfd[2 + s].revents && m.out_fd[s] >= 0)
				read_output(s);
		if (m.in_pending && pfd[4].revents)
			stdin_flush();
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (idx[i] >= 0 && pfd[idx[i]].revents && m.clients[i].fd >= 0)
				client_request(&m.clients[i]);
		now = monotonic_ms();
		log_flush(&m.log, LOG_STDOUT, false, now);
		log_flush(&m.log, LOG_STDERR, false, now);
	}
	log_flush(&m.log, LOG_STDOUT, true, 0);
	log_flush(&m.log, LOG_STDERR, true, 0);
}

/* 0, or the errno of the step that failed: the exit is not recorded. */
static int write_exit_file(void)
{
	char tmp[PATH_MAX], dir[PATH_MAX], buf[256];
	int status = m.init_status, code, sig = 0, fd, e;
	bool oom;
	size_t len;
	ssize_t n;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		code = 128 + sig;
	} else {
		code = WEXITSTATUS(status);
	}
	/* The counter grew while the container ran, and it did not end well:
	 * the OOM killer's SIGKILL ended the init, or it ended in error
	 * after the killer took a child (a shell exits 137 when its dd was
	 * killed, as in critest's OOM test). containerd reports OOMKilled for
	 * any OOM kill in the container's cgroup, even before a clean exit. */
	oom = oom_kills(m.oom_fd) > m.oom_start && (sig == SIGKILL || code != 0);
	len = (size_t)snprintf(buf, sizeof(buf),
			       "{\"exit_code\": %d, \"signal\": %d, \"finished_at\": %llu, "
			       "\"oom_killed\": %s, \"log_dropped\": %llu}\n",
			       code, sig, (unsigned long long)m.finished_at, oom ? "true" : "false",
			       (unsigned long long)m.log.dropped);
	snprintf(tmp, sizeof(tmp), "%s.tmp", m.opt.exit_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return errno;
	n = write(fd, buf, len);
	if (n != (ssize_t)len || fsync(fd) < 0) {
		/* a write that came short: the disk is full */
		e = n >= 0 && n < (ssize_t)len ? ENOSPC : errno;
		close(fd);
		unlink(tmp);
		return e;
	}
	close(fd);
	if (rename(tmp, m.opt.exit_file) < 0) {
		e = errno;
		unlink(tmp);
		return e;
	}
	snprintf(dir, sizeof(dir), "%s", m.opt.exit_file);
	*strrchr(dir, '/') = '\0';
	fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

/* The exit file is the only record of how the container ended: without it
 * runtimed shows the container running for ever. A full disk (or quota)
 * must not cost it: try again, every second at first and then every 10 s,
 * until there is room. The container is gone already and the
 * control socket is removed first, so nothing waits on this monitor; its
 * record's removal (the directory goes, ENOENT) or a SIGKILL ends it. */
static void record_exit(void)
{
	int e = write_exit_file();

	if (e != ENOSPC && e != EDQUOT)
		return;
	cleanup_sockets();
	for (int ms = 1000; e == ENOSPC || e == EDQUOT; ms = ms < 5000 ? ms * 2 : 10000) {
		poll(NULL, 0, ms);
		e = write_exit_file();
	}
}

int main(int argc, char **argv)
{
	char line[128];
	int fd;

	/* only stdio is ours: whatever else the launcher's ancestors leaked
	 * would be held for the container's whole life */
	syscall(SYS_close_range, 3, ~0U, 0); /* musl 1.2.3 has no wrapper */
	m.ctl_fd = m.console_fd = m.bundle_fd = m.oom_fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		m.clients[i].fd = -1;
	parse_options(argc, argv);
	setup_signals();
	/* orphans of the container come to us, and so does its init once
	 * the runtime exits */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	/* a process that lives as long as the container pins no directory */
	if (chdir("/") < 0)
		fail("chdir /: %s", strerror(errno));
	m.bundle_fd = open(m.opt.bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m.bundle_fd < 0)
		fail("open bundle %s: %s", m.opt.bundle, strerror(errno));
	/* The log's directory is the kubelet's: it must exist already. */
	fd = open(m.opt.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		fail("open log %s: %s", m.opt.log, strerror(errno));
	if (log_writer_init(&m.log, fd, m.opt.log_max) < 0)
		fail("out of memory");
	m.ctl_fd = listen_unix(MONITOR_SOCKET, SOCK_SEQPACKET, m.ctl_path, sizeof(m.ctl_path));

	run_container();
	m.init_pid = read_pid_file();
	adopt_init();
	oom_open(m.init_pid);
	for (int s = 0; s < 2; s++)
		if (m.out_fd[s] >= 0)
			fcntl(m.out_fd[s], F_SETFL, O_NONBLOCK);
	if (m.in_fd >= 0)
		fcntl(m.in_fd, F_SETFL, O_NONBLOCK);

	snprintf(line, sizeof(line), "{\"pid\": %d, \"run_ms\": %.1f%s}\n", (int)m.init_pid, run_ms,
		 landlock_missing() ? ", \"landlock\": false" : "");
	if (write(STDOUT_FILENO, line, strlen(line)) < 0) {
		/* runtimed went away; the container runs all the same, and
		 * runtimed's recovery finds it from the pid file */
	}
	/* The sync pipe is done; stdio becomes /dev/null so that no later
	 * write can reach runtimed or a reused fd. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	close(m.bundle_fd);
	m.bundle_fd = -1;
	/* A monitor that kept a privilege, or could reach more than its
	 * log, exit file and socket, would read container output and attach
	 * input with it: the container goes instead (its exit, a SIGKILL, is
	 * recorded as any other). confine() loads no filter when it fails,
	 * so the kill still passes. */
	if (!drop_privileges() || !confine())
		kill(m.init_pid, SIGKILL);

	serve();
	record_exit();
	cleanup_sockets();
	return 0;
}
