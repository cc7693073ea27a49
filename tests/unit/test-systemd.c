/* supervisor/systemd.c: NOTIFY_SOCKET and LISTEN_FDS against sockets the
 * test makes itself, in place of systemd. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/systemd.h"
#include "tap.h"

static char tmpdir[] = "/tmp/crisp-test-systemd-XXXXXX";

/* A datagram socket bound at sun_path bytes [0, len): a path, or an
 * abstract name when the first byte is NUL. */
static int bind_dgram(const char *sun_path, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || len > sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, sun_path, len);
	if (bind(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next datagram within a second, or "" when none came. */
static const char *receive(int fd)
{
	static char buf[256];
	struct timeval tv = { .tv_sec = 1 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static bool nothing_queued(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void test_notify_path(void)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/notify.sock", tmpdir);
	fd = bind_dgram(path, strlen(path) + 1);
	ok(fd >= 0, "bound the notify socket %s", path);
	setenv("NOTIFY_SOCKET", path, 1);
	systemd_notify_init();
	ok(!getenv("NOTIFY_SOCKET"), "NOTIFY_SOCKET is unset after init");
	systemd_notify("READY=1");
	is_str(receive(fd), "READY=1", "READY=1 arrives at the path socket");
	systemd_notify("STOPPING=1");
	is_str(receive(fd), "STOPPING=1", "STOPPING=1 arrives, a datagram of its own");
	ok(nothing_queued(fd), "nothing else was sent");
	close(fd);
}

static void test_notify_abstract(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@crisp-test-systemd-%d", (int)getpid());
	name[0] = '\0';
	fd = bind_dgram(name, strlen(name + 1) + 1);
	ok(fd >= 0, "bound the abstract notify socket");
	name[0] = '@';
	setenv("NOTIFY_SOCKET", name, 1);
	systemd_notify_init();
	ok(!getenv("NOTIFY_SOCKET"), "NOTIFY_SOCKET is unset after init (abstract)");
	systemd_notify("READY=1");
	is_str(receive(fd), "READY=1", "READY=1 arrives at the abstract socket %s", name);
	close(fd);
}

/* Addresses that must not be used: each time a socket is bound where a
 * careless reading of NOTIFY_SOCKET would send to, and must stay empty. */
static void test_notify_refused(void)
{
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int fd;

	/* Relative: resolved against our cwd it would reach rel.sock. */
	if (chdir(tmpdir) < 0)
		diag("chdir %s: %s", tmpdir, strerror(errno));
	fd = bind_dgram("rel.sock", sizeof("rel.sock"));
	ok(fd >= 0, "bound rel.sock in the cwd");
	setenv("NOTIFY_SOCKET", "rel.sock", 1);
	systemd_notify_init();
	ok(!getenv("NOTIFY_SOCKET"), "a relative NOTIFY_SOCKET is unset too");
	systemd_notify("READY=1");
	ok(nothing_queued(fd), "nothing sent to a relative NOTIFY_SOCKET");
	close(fd);

	/* Too long an abstract name: cut to the size of sun_path it would
	 * reach the socket bound at its first max - 1 bytes. */
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	name[0] = '\0';
	fd = bind_dgram(name, max);
	ok(fd >= 0, "bound an abstract socket with the longest name");
	name[0] = '@';
	name[max + 1] = '\0'; /* one byte too many */
	setenv("NOTIFY_SOCKET", name, 1);
	systemd_notify_init();
	systemd_notify("READY=1");
	ok(nothing_queued(fd), "nothing sent to an abstract name one byte too long");
	name[max] = '\0'; /* the longest allowed: the same socket */
	setenv("NOTIFY_SOCKET", name, 1);
	systemd_notify_init();
	systemd_notify("READY=1");
	is_str(receive(fd), "READY=1", "the longest abstract name is accepted");
	close(fd);

	memset(name, 'y', sizeof(name) - 1);
	name[0] = '/';
	name[max] = '\0'; /* a path needs its NUL inside sun_path */
	setenv("NOTIFY_SOCKET", name, 1);
	systemd_notify_init();
	systemd_notify("READY=1");
	ok(!getenv("NOTIFY_SOCKET"), "a path too long: no crash, unset");

	setenv("NOTIFY_SOCKET", "@", 1);
	systemd_notify_init();
	systemd_notify("READY=1");
	ok(1, "an empty abstract name: no crash");

	unsetenv("NOTIFY_SOCKET");
	systemd_notify_init();
	systemd_notify("READY=1");
	ok(1, "no NOTIFY_SOCKET: notify does nothing");
}

static void set_listen_env(const char *pid, const char *fds)
{
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "cri", 1);
}

static bool listen_env_gone(void)
{
	return !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
}

static int listening_unix_socket(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", tmpdir, name);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		diag("listening socket %s: %s", sa.sun_path, strerror(errno));
	return fd;
}

/* Out of the way of fds 3 and 4, which the test fills as systemd would
 * (the socket may well have been created at 3). */
static int move_above_10(int fd)
{
	int high = fcntl(fd, F_DUPFD, 10);

	close(fd);
	return high;
}

static void test_listen_fds(void)
{
	struct crisp_error err = { 0 };
	char mypid[32], otherpid[32];
	int a, b, n;

	snprintf(mypid, sizeof(mypid), "%d", (int)getpid());
	snprintf(otherpid, sizeof(otherpid), "%d", (int)getpid() + 1);

	set_listen_env(otherpid, "1");
	is_int(systemd_listen_fds(&err), 0, "LISTEN_PID of another process: no fds");
	ok(listen_env_gone(), "... and the variables are unset");

	set_listen_env(mypid, "2x");
	is_int(systemd_listen_fds(&err), -1, "LISTEN_FDS=2x is an error");
	like(err.msg, "LISTEN_FDS '2x'", "the error names LISTEN_FDS and its value");
	ok(listen_env_gone(), "... and the variables are unset");

	set_listen_env(mypid, " 1");
	is_int(systemd_listen_fds(&err), -1, "LISTEN_FDS with a space is an error");
	set_listen_env(mypid, "-1");
	is_int(systemd_listen_fds(&err), -1, "a negative LISTEN_FDS is an error");
	set_listen_env(mypid, "99999999999");
	is_int(systemd_listen_fds(&err), -1, "LISTEN_FDS out of range is an error");
	set_listen_env("12ab", "1");
	is_int(systemd_listen_fds(&err), -1, "LISTEN_PID=12ab is an error");
	like(err.msg, "LISTEN_PID", "the error names LISTEN_PID");

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	is_int(systemd_listen_fds(&err), 0, "no LISTEN_PID: not activated");

	/* Two sockets where systemd puts them, without close-on-exec as it
	 * hands them over. */
	a = move_above_10(listening_unix_socket("a.sock"));
	b = move_above_10(listening_unix_socket("b.sock"));
	ok(dup2(a, SYSTEMD_LISTEN_FDS_START) == SYSTEMD_LISTEN_FDS_START &&
		   dup2(b, SYSTEMD_LISTEN_FDS_START + 1) == SYSTEMD_LISTEN_FDS_START + 1,
	   "sockets at fds 3 and 4");
	ok(!(fcntl(3, F_GETFD) & FD_CLOEXEC) && !(fcntl(4, F_GETFD) & FD_CLOEXEC),
	   "... not close-on-exec yet");
	close(a);
	close(b);
	set_listen_env(mypid, "2");
	n = systemd_listen_fds(&err);
	is_int(n, 2, "LISTEN_FDS=2 for our pid: 2 fds");
	ok(fcntl(3, F_GETFD) & FD_CLOEXEC, "fd 3 is close-on-exec");
	ok(fcntl(4, F_GETFD) & FD_CLOEXEC, "fd 4 is close-on-exec");
	ok(listen_env_gone(), "... and the variables are unset");

	/* More fds than are open: the first that is not open is named. */
	set_listen_env(mypid, "100000");
	is_int(systemd_listen_fds(&err), -1, "LISTEN_FDS beyond the open fds is an error");
	like(err.msg, "names fd", "the error names the fd: %s", err.msg);
	close(3);
	close(4);
}

static void test_check_unix_listener(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct crisp_error err = { 0 };
	int fd, p[2];

	fd = listening_unix_socket("check.sock");
	is_int(systemd_check_unix_listener(fd, &err), 0, "a listening unix stream socket passes");
	close(fd);

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	is_int(systemd_check_unix_listener(fd, &err), -1,
	       "a unix stream socket not listening fails");
	like(err.msg, "not listening", "... saying so");
	close(fd);

	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	is_int(systemd_check_unix_listener(fd, &err), -1, "a unix datagram socket fails");
	like(err.msg, "not a stream socket", "... saying so");
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 8) < 0)
		diag("listening on 127.0.0.1: %s", strerror(errno));
	is_int(systemd_check_unix_listener(fd, &err), -1, "a listening AF_INET socket fails");
	like(err.msg, "not a unix socket", "... saying so");
	close(fd);

	ok(pipe(p) == 0, "a pipe");
	is_int(systemd_check_unix_listener(p[0], &err), -1, "a pipe fails");
	like(err.msg, "not a socket", "... saying so");
	close(p[0]);
	close(p[1]);

	is_int(systemd_check_unix_listener(p[0], &err), -1, "a closed fd fails");
}

static void remove_tmpdir(void)
{
	static const char *const names[] = { "notify.sock", "rel.sock", "a.sock", "b.sock",
					     "check.sock" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	if (chdir("/") < 0 || rmdir(tmpdir) < 0)
		diag("cannot remove %s: %s", tmpdir, strerror(errno));
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		printf("1..0 # SKIP cannot create %s: %s\n", tmpdir, strerror(errno));
		return 0;
	}
	test_notify_path();
	test_notify_abstract();
	test_notify_refused();
	test_listen_fds();
	test_check_unix_listener();
	remove_tmpdir();
	return done_testing();
}
