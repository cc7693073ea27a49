/* sandbox_enter's Landlock scopes (policy.landlock_scoped), for real, in
 * forked children: a scoped process cannot signal its parent, nor connect to
 * an abstract unix socket the parent made, and still signals and reaches
 * what it forks and makes afterwards. sandbox_enter drops the bounding set:
 * needs root. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/util.h"
#include "tests/unit/tap.h"

enum {
	R_KILL_PARENT,     /* kill(getppid(), 0) */
	R_PIDFD_PARENT,    /* pidfd_send_signal(pidfd of the parent, 0) */
	R_KILL_FORKED,     /* kill(a child forked after, SIGKILL) */
	R_CONNECT_OUTSIDE, /* the parent's abstract socket */
	R_CONNECT_INSIDE,  /* its own, made after */
	R_COUNT,
};

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static int abstract_listen(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(&sa, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 1) < 0) {
		diag("abstract socket %s: %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* 0, or the errno of socket or connect. */
static int abstract_connect(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(&sa, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		r = errno;
	close(fd);
	return r;
}

static int errno_of(long r)
{
	return r < 0 ? errno : 0;
}

static void scoped_child(int out, const char *outside_name)
{
	const struct sandbox_policy policy = {
		.name = "test-sandbox",
		.no_new_privs = true,
		.landlock_scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
	};
	char inside_name[64];
	int res[R_COUNT];
	int pidfd, listener;
	pid_t forked;

	sandbox_enter(&policy);
	res[R_KILL_PARENT] = errno_of(kill(getppid(), 0));
	pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0);
	res[R_PIDFD_PARENT] = pidfd < 0
				      ? -errno
				      : errno_of(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0));
	forked = fork();
	if (forked == 0) {
		alarm(10); /* if the kill below failed */
		pause();
		_exit(0);
	}
	res[R_KILL_FORKED] = forked < 0 ? -errno : errno_of(kill(forked, SIGKILL));
	if (forked > 0)
		waitpid(forked, NULL, 0);
	res[R_CONNECT_OUTSIDE] = abstract_connect(outside_name);
	snprintf(inside_name, sizeof(inside_name), "crisp-test-sandbox-inside-%d", (int)getpid());
	listener = abstract_listen(inside_name);
	res[R_CONNECT_INSIDE] = listener < 0 ? -1 : abstract_connect(inside_name);
	if (write(out, res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

static void test_scopes(long abi)
{
	char outside_name[64];
	int res[R_COUNT], pipefd[2], status, listener;
	pid_t child;
	bool enforced = abi >= 6;

	snprintf(outside_name, sizeof(outside_name), "crisp-test-sandbox-outside-%d",
		 (int)getpid());
	listener = abstract_listen(outside_name);
	if (!ok(listener >= 0, "an abstract socket outside the domain") ||
	    !ok(pipe2(pipefd, O_CLOEXEC) == 0, "pipe"))
		return;
	child = fork();
	if (child == 0) {
		close(pipefd[0]);
		scoped_child(pipefd[1], outside_name);
	}
	close(pipefd[1]);
	memset(res, 0xff, sizeof(res));
	is_int(read(pipefd[0], res, sizeof(res)), (long long)sizeof(res),
	       "the scoped child reports");
	close(pipefd[0]);
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the scoped child exits cleanly (%#x)",
	   status);
	if (enforced) {
		is_int(res[R_KILL_PARENT], EPERM, "kill(parent, 0): EPERM");
		is_int(res[R_PIDFD_PARENT], EPERM, "pidfd_send_signal(parent): EPERM");
		is_int(res[R_CONNECT_OUTSIDE], EPERM,
		       "connect to an outside abstract socket: EPERM");
	} else {
		diag("kernel Landlock ABI %ld < 6: the scopes are not enforced, start-up goes on",
		     abi);
		is_int(res[R_KILL_PARENT], 0, "kill(parent, 0) unscoped");
		is_int(res[R_PIDFD_PARENT], 0, "pidfd_send_signal(parent) unscoped");
		is_int(res[R_CONNECT_OUTSIDE], 0, "outside abstract socket unscoped");
	}
	is_int(res[R_KILL_FORKED], 0, "kill(child forked after, SIGKILL) works");
	is_int(res[R_CONNECT_INSIDE], 0, "its own abstract socket works");
	close(listener);
}

static void *idle_thread(void *arg)
{
	pause();
	return NULL;
}

/* A thread started before landlock_restrict_self would stay unscoped:
 * sandbox_enter refuses to go on. */
static void test_threads_refused(void)
{
	const struct sandbox_policy policy = {
		.name = "test-sandbox",
		.no_new_privs = true,
		.landlock_scoped = SANDBOX_SCOPE_SIGNAL,
	};
	int status;
	pid_t child = fork();

	if (child == 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
			_exit(3);
		sandbox_enter(&policy);
		_exit(0);
	}
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	   "sandbox_enter with a second thread is fatal (%#x)", status);
}

/* A kernel without Landlock (or with it disabled), as seccomp makes it
 * look: landlock_create_ruleset fails with ENOSYS. sandbox_enter warns,
 * once, saying what is not enforced, and the process goes on. */
static void test_without_landlock(void)
{
	const struct sandbox_policy policy = {
		.name = "test-sandbox",
		.no_new_privs = true,
		.landlock_scoped = SANDBOX_SCOPE_SIGNAL | SANDBOX_SCOPE_ABSTRACT_UNIX_SOCKET,
	};
	int errpipe[2], status, res = -1;
	char log[4096];
	ssize_t n, len = 0;
	pid_t child;

	if (!ok(pipe2(errpipe, O_CLOEXEC) == 0, "pipe"))
		return;
	child = fork();
	if (child == 0) {
		scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);

		dup2(errpipe[1], STDERR_FILENO);
		if (!f ||
		    seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset),
				     0) < 0 ||
		    seccomp_load(f) < 0)
			_exit(3);
		sandbox_enter(&policy);
		_exit(kill(getppid(), 0) == 0 ? 0 : 4);
	}
	close(errpipe[1]);
	while (len < (ssize_t)sizeof(log) - 1 &&
	       (n = read(errpipe[0], log + len, sizeof(log) - 1 - len)) > 0)
		len += n;
	log[len] = '\0';
	close(errpipe[0]);
	waitpid(child, &status, 0);
	if (WIFEXITED(status))
		res = WEXITSTATUS(status);
	is_int(res, 0, "without Landlock: start-up goes on, unscoped");
	like(log,
	     "test-sandbox: Landlock unavailable (Function not implemented): signals and "
	     "abstract unix sockets to processes outside test-sandbox are not blocked",
	     "without Landlock: a warning says what is not enforced");
	ok(strstr(log, "Landlock") && !strstr(strstr(log, "Landlock") + 1, "Landlock"),
	   "without Landlock: said once");
}

/* Every filter sandbox_compile makes refuses F_SETOWN, F_SETOWN_EX and
 * F_SETSIG with EPERM, on any kernel, also with high bits set in cmd, and
 * lets the other commands through. */
static void test_fcntl_owner_refused(void)
{
	const struct sandbox_policy policy = { .name = "test-sandbox" };
	enum {
		F_OWN,
		F_OWN_HIGH,
		F_OWN_EX,
		F_SIG,
		F_GETFL_OK,
		F_DUP_OK,
		F_GETOWN_OK,
		N
	};
	int res[N], pipefd[2], status;
	pid_t child;

	if (!ok(pipe2(pipefd, O_CLOEXEC) == 0, "pipe"))
		return;
	child = fork();
	if (child == 0) {
		struct f_owner_ex owner = { F_OWNER_PID, getppid() };
		scmp_filter_ctx f = sandbox_compile(&policy);
		int fd = pipefd[1], dup;

		if (seccomp_load(f) < 0)
			_exit(3);
		res[F_OWN] = errno_of(fcntl(fd, F_SETOWN, getppid()));
		res[F_OWN_HIGH] = errno_of(
			syscall(SYS_fcntl, fd, (1UL << 32) | F_SETOWN, getppid()));
		res[F_OWN_EX] = errno_of(fcntl(fd, F_SETOWN_EX, &owner));
		res[F_SIG] = errno_of(fcntl(fd, F_SETSIG, SIGKILL));
		res[F_GETFL_OK] = errno_of(fcntl(fd, F_GETFL));
		dup = fcntl(fd, F_DUPFD_CLOEXEC, 10);
		res[F_DUP_OK] = errno_of(dup);
		res[F_GETOWN_OK] = errno_of(fcntl(fd, F_GETOWN));
		if (write(fd, res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(pipefd[1]);
	memset(res, 0xff, sizeof(res));
	is_int(read(pipefd[0], res, sizeof(res)), (long long)sizeof(res),
	       "the filtered child reports");
	close(pipefd[0]);
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the filtered child exits cleanly (%#x)",
	   status);
	is_int(res[F_OWN], EPERM, "fcntl F_SETOWN: EPERM");
	is_int(res[F_OWN_HIGH], EPERM, "fcntl F_SETOWN with high bits in cmd: EPERM");
	is_int(res[F_OWN_EX], EPERM, "fcntl F_SETOWN_EX: EPERM");
	is_int(res[F_SIG], EPERM, "fcntl F_SETSIG: EPERM");
	is_int(res[F_GETFL_OK], 0, "fcntl F_GETFL allowed");
	is_int(res[F_DUP_OK], 0, "fcntl F_DUPFD_CLOEXEC allowed");
	is_int(res[F_GETOWN_OK], 0, "fcntl F_GETOWN allowed");
}

int main(void)
{
	long abi = sandbox_landlock_abi();

	if (geteuid() != 0) {
		printf("1..0 # SKIP sandbox_enter drops the bounding set: needs root\n");
		return 0;
	}
	diag("kernel Landlock ABI: %ld", abi);
	test_scopes(abi);
	test_threads_refused();
	test_without_landlock();
	test_fcntl_owner_refused();
	return done_testing();
}
