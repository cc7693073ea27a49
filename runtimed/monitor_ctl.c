/* crisp-monitor's control socket: reopen-fd, resize and attach sessions
 * (the protocol is in runtimed/monitor.h).
 *
 * Its peers are root (runtimed), but what attach sessions carry comes from
 * the frontend and goes to the container: every packet is bounded by the
 * read, and no peer can make the monitor wait. Replies and output are sent
 * with MSG_DONTWAIT; a peer that cannot take them is disconnected. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "runtimed/monitor_int.h"

/* Ends the container's stdin: closes the pipe, or for a terminal (whose
 * master cannot close without hanging it up) types its EOF character, as
 * a user's ^D would, and stops writing to it. */
static void stdin_close(void)
{
	struct termios t;

	if (m.in_fd >= 0 && m.opt.tty && tcgetattr(m.in_fd, &t) == 0)
		(void)!write(m.in_fd, &t.c_cc[VEOF], 1);
	if (m.in_fd >= 0) {
		close(m.in_fd);
		m.in_fd = -1;
	}
	free(m.in_pending);
	m.in_pending = NULL;
	m.in_len = m.in_off = 0;
}

static void client_close(struct client *c)
{
	bool was_attached = c->attached;

	close(c->fd);
	c->fd = -1;
	c->attached = false;
	/* stdin_once: the first attach session ends the container's stdin */
	if (was_attached && m.opt.stdin_once)
		stdin_close();
}

static void reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (send(c->fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
		 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		client_close(c);
}

/* The fds a packet carried (SCM_RIGHTS): reopen-fd wants one, nothing
 * else any. Room for a few, so that "more than one" is seen as such; what
 * does not fit the kernel drops itself (MSG_CTRUNC). */
#define PACKET_FDS_MAX 4

struct packet_fds {
	int fd[PACKET_FDS_MAX];
	size_t n;
	bool truncated; /* more came than fit: the kernel dropped the rest */
};

static void packet_fds_take(struct msghdr *msg, struct packet_fds *fds)
{
	fds->n = 0;
	fds->truncated = (msg->msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		const unsigned char *data = CMSG_DATA(cm);
		size_t count;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, data + i * sizeof(int), sizeof(int));
			if (fds->n < PACKET_FDS_MAX)
				fds->fd[fds->n++] = fd;
			else
				close(fd); /* cannot be: the buffer holds PACKET_FDS_MAX */
		}
	}
}

/* A monitor runs for the container's life: no fd it did not ask for stays. */
static void packet_fds_close(struct packet_fds *fds)
{
	for (size_t i = 0; i < fds->n; i++)
		close(fds->fd[i]);
	fds->n = 0;
}

/* "reopen-fd" with the new log file runtimed opened (ReopenContainerLog):
 * exactly one fd, a regular file open for writing with O_APPEND, swapped in
 * for the log. The monitor opens no path for its log after the drop, so its
 * Landlock ruleset needs no right on the log's directory. fstat through
 * the raw system call: musl makes that one, glibc fstat() makes
 * newfstatat, which would open the filter to every path's metadata. */
static int reopen_fd(struct packet_fds *fds, char *why, size_t size)
{
	struct stat st;
	int flags, acc;

	if (fds->n != 1 || fds->truncated) {
		snprintf(why, size, "reopen-fd wants exactly one fd, got %s%zu",
			 fds->truncated ? "more than " : "", fds->n);
		goto fail;
	}
	if (syscall(SYS_fstat, fds->fd[0], &st) < 0) {
		snprintf(why, size, "reopen-fd: fstat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "reopen-fd: the fd is not a regular file");
		goto fail;
	}
	flags = fcntl(fds->fd[0], F_GETFL);
	acc = flags & O_ACCMODE;
	if (flags < 0 || (flags & O_PATH) || (acc != O_WRONLY && acc != O_RDWR)) {
		snprintf(why, size, "reopen-fd: the file is not open for writing");
		goto fail;
	}
	if (!(flags & O_APPEND)) {
		snprintf(why, size, "reopen-fd: the file is not open with O_APPEND");
		goto fail;
	}
	close(m.log.fd);
	m.log.fd = fds->fd[0];
	fds->n = 0;
	/* a record the old file got in part cannot be ended in the new one */
	m.log.broken = false;
	return 0;
fail:
	packet_fds_close(fds);
	return -1;
}

#ifdef CRISP_TEST_HOOKS
/* Test builds only: the "reopen" of a monitor of an older crisp, which
 * opened its log path itself (with a Landlock rule on its directory), for
 * the test-monitor-v1 hook (monitor_sandbox.c). */
static int reopen_log(char *why, size_t size)
{
	int fd = open(m.opt.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	if (fd < 0) {
		snprintf(why, size, "open %s: %s", m.opt.log, strerror(errno));
		return -1;
	}
	close(m.log.fd);
	m.log.fd = fd;
	return 0;
}
#endif

static bool parse_dim(const char *s, unsigned short *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > USHRT_MAX)
		return false;
	*ret = (unsigned short)v;
	return true;
}

/* "resize <rows> <cols>" */
static int resize(const char *args, char *why, size_t size)
{
	char rows[8], cols[8];
	struct winsize ws = { 0 };
	const char *sp = strchr(args, ' ');

	if (!sp || (size_t)(sp - args) >= sizeof(rows) || strlen(sp + 1) >= sizeof(cols)) {
		snprintf(why, size, "resize wants <rows> <cols>");
		return -1;
	}
	memcpy(rows, args, (size_t)(sp - args));
	rows[sp - args] = '\0';
	strcpy(cols, sp + 1);
	if (!parse_dim(rows, &ws.ws_row) || !parse_dim(cols, &ws.ws_col)) {
		snprintf(why, size, "resize: rows and cols must be in [1, 65535]");
		return -1;
	}
	if (!m.opt.tty || m.out_fd[0] < 0) {
		snprintf(why, size, "resize: the container has no terminal");
		return -1;
	}
	if (ioctl(m.out_fd[0], TIOCSWINSZ, &ws) < 0) {
		snprintf(why, size, "resize: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Bytes for the container's stdin, written without blocking: what the
 * pipe does not take waits, and attach clients are not read meanwhile. */
static void stdin_write(const char *data, size_t len)
{
	ssize_t n;

	if (m.in_fd < 0 || len == 0)
		return;
	n = write(m.in_fd, data, len);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		stdin_close();
		return;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < len) {
		m.in_pending = malloc(len - (size_t)n);
		if (!m.in_pending)
			return;
		memcpy(m.in_pending, data + n, len - (size_t)n);
		m.in_len = len - (size_t)n;
		m.in_off = 0;
	}
}

void stdin_flush(void)
{
	ssize_t n = write(m.in_fd, m.in_pending + m.in_off, m.in_len - m.in_off);

	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		stdin_close();
		return;
	}
	if (n > 0)
		m.in_off += (size_t)n;
	if (m.in_off == m.in_len) {
		free(m.in_pending);
		m.in_pending = NULL;
		m.in_len = m.in_off = 0;
	}
}

#ifdef CRISP_TEST_HOOKS
/* Test builds only (tests/integration/test_monitor_confinement.py): make
 * the confined monitor try what its sandbox forbids. "test-open <path>"
 * opens an existing file for appending and answers "ok" or "error <why>"
 * (Landlock: EACCES outside its directories); "test-create <path>"
 * creates a new file (exclusively, never one that exists) and
 * "test-unlink <path>" removes one, each answering the same way;
 * "test-fcntl" tries F_SETOWN, F_SETSIG and F_SETOWN_EX on the connection
 * and answers their errnos ("1 1 1": EPERM each); "test-syscall" makes a
 * system call outside the filter (getuid), which must kill it. */
static void test_open_reply(struct client *c, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		reply(c, "error %s", strerror(errno));
	} else {
		close(fd);
		reply(c, "ok");
	}
}

static bool test_hook(struct client *c, const char *req)
{
	if (strncmp(req, "test-open ", 10) == 0) {
		test_open_reply(c, req + 10, O_WRONLY | O_APPEND);
		return true;
	}
	if (strncmp(req, "test-create ", 12) == 0) {
		test_open_reply(c, req + 12, O_WRONLY | O_CREAT | O_EXCL);
		return true;
	}
	if (strncmp(req, "test-unlink ", 12) == 0) {
		if (unlink(req + 12) < 0)
			reply(c, "error %s", strerror(errno));
		else
			reply(c, "ok");
		return true;
	}
	if (strcmp(req, "test-fcntl") == 0) {
		struct f_owner_ex owner = { .type = F_OWNER_PID, .pid = 1 };
		int own = fcntl(c->fd, F_SETOWN, 1) < 0 ? errno : 0;
		int sig = fcntl(c->fd, F_SETSIG, SIGKILL) < 0 ? errno : 0;
		int ex = fcntl(c->fd, F_SETOWN_EX, &owner) < 0 ? errno : 0;

		reply(c, "%d %d %d", own, sig, ex);
		return true;
	}
	if (strcmp(req, "test-syscall") == 0) {
		syscall(SYS_getuid);
		reply(c, "error still alive after getuid");
		return true;
	}
	return false;
}
#endif

void client_request(struct client *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PACKET_FDS_MAX)];
	} control;
	struct iovec iov = { iobuf, sizeof(iobuf) - 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct packet_fds fds;
	char why[256];
	ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	bool reopen;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_close(c);
		return;
	}
	packet_fds_take(&msg, &fds);
	iobuf[n] = '\0';
	/* fds come with reopen-fd only; any other packet's are closed */
	reopen = !c->attached && strcmp(iobuf, "reopen-fd") == 0 && (size_t)n == strlen(iobuf);
#ifdef CRISP_TEST_HOOKS
	reopen = reopen && !m.test_monitor_v1;
#endif
	if (!reopen)
		packet_fds_close(&fds);
	if (n == 0) {
		client_close(c);
		return;
	}
	if (c->attached) {
		/* the stream of an attach session: stdin, or a resize. An
		 * empty stdin packet is the client's stdin ending: with
		 * StdinOnce that ends the container's (kubectl attach -i, run
		 * -i), else the next session may still type (as containerd). */
		if (iobuf[0] == '0' && n == 1) {
			if (m.opt.stdin_once)
				stdin_close();
		} else if (iobuf[0] == '0')
			stdin_write(iobuf + 1, (size_t)n - 1);
		else if (strncmp(iobuf, "resize ", 7) == 0)
			resize(iobuf + 7, why, sizeof(why));
		else
			client_close(c);
		return;
	}
	if (memchr(iobuf, '\0', (size_t)n)) {
		reply(c, "error request holds a NUL byte");
#ifdef CRISP_TEST_HOOKS
	} else if (test_hook(c, iobuf)) {
		/* answered */
	} else if (m.test_monitor_v1 && strcmp(iobuf, "reopen") == 0) {
		if (reopen_log(why, sizeof(why)) < 0)
			reply(c, "error %s", why);
		else
			reply(c, "ok");
#endif
	} else if (reopen) {
		if (reopen_fd(&fds, why, sizeof(why)) < 0)
			reply(c, "error %s", why);
		else
			reply(c, "ok");
	} else if (strcmp(iobuf, "attach") == 0) {
		reply(c, "ok");
		if (c->fd >= 0)
			c->attached = true;
	} else if (strncmp(iobuf, "resize ", 7) == 0) {
		if (resize(iobuf + 7, why, sizeof(why)) < 0)
			reply(c, "error %s", why);
		else
			reply(c, "ok");
	} else {
		reply(c, "error unknown request '%.64s'", iobuf);
	}
}

void client_accept(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(m.ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	/* the socket is 0600 in a root directory; this says it again */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m.clients[i].fd < 0) {
			m.clients[i].fd = fd;
			return;
		}
	send(fd, "error too many clients", 22, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* Copies a chunk of output to every attach client. A client whose socket
 * buffer is full is dropped, not waited for: the container must not stall
 * on a slow reader. */
void broadcast(char stream, const char *data, size_t len)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &m.clients[i];
		struct iovec iov[2] = { { &stream, 1 }, { (void *)data, len } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

		if (c->fd < 0 || !c->attached)
			continue;
		if (sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			client_close(c);
	}
}
