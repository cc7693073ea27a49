/* The helper's side of the launcher (launcher.h; docs/PRIVSEP.md, "The
 * launcher"): it starts crisp-launch (launch/main.c, launch/serve.c) and
 * then runs in netd or runtimed, after their sandbox is in place, on their
 * libevent loop, and never blocks it.
 *
 * Wire (launch/wire.h, ipc/launch.proto): a SOCK_SEQPACKET socketpair, one
 * message per packet, an 8-byte header and a protobuf payload; the stdio fds
 * of a START ride in the same packet (SCM_RIGHTS). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/launcher.h"
#include "common/log.h"
#include "ipc/launch.pb-c.h"
#include "ipc/msg.h"

_Static_assert((int)IPC_LAUNCH_PROCESS_START == (int)LAUNCH_MSG_START &&
		       (int)IPC_LAUNCH_PROCESS_KILL == (int)LAUNCH_MSG_KILL &&
		       (int)IPC_LAUNCH_PROCESS_STARTED == (int)LAUNCH_MSG_STARTED &&
		       (int)IPC_LAUNCH_PROCESS_EXITED == (int)LAUNCH_MSG_EXITED,
	       "ipc/msg.h and launch/wire.h number the launcher's messages alike");

/* A START goes out in one packet, which must fit in the helper's send buffer
 * (with room for the kernel's overhead). */
#define LAUNCH_SNDBUF (2 * LAUNCH_PACKET_MAX)

/* ---- the helper side ---- */

struct launch {
	LIST_ENTRY(launch) entry;
	uint32_t id;
	unsigned flags;
	bool started;
	struct launch_cb cb; /* zeroed by launch_detach */
};

struct outpkt {
	TAILQ_ENTRY(outpkt) entry;
	uint8_t *buf;
	size_t len;
	int fds[LAUNCH_STDIO]; /* our duplicates: the caller keeps its own */
	unsigned nfds;
};

static struct {
	int fd;
	pid_t pid;
	struct event_base *base;
	struct event *rev, *wev, *gone_ev;
	bool gone, eof;
	char why[256];
	uint32_t next_id;
	LIST_HEAD(, launch) launches;
	TAILQ_HEAD(, outpkt) outq;
	void (*on_gone)(const char *why, void *arg);
	void *gone_arg;
} H = { .fd = -1 };

/* Both ends above 2 (so the launcher's stdio stays its own) and a send
 * buffer that holds the largest START. */
static int socket_setup(int sv[2], struct crisp_error *err)
{
	int size = LAUNCH_SNDBUF, got = 0;
	socklen_t len = sizeof(got);

	for (int i = 0; i < 2; i++) {
		if (sv[i] > 2)
			continue;
		int fd = fcntl(sv[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: dup");
		close(sv[i]);
		sv[i] = fd;
	}
	/* SO_SNDBUFFORCE (we have CAP_NET_ADMIN now) ignores net.core.wmem_max. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0 ||
	    (size_t)got < LAUNCH_PACKET_MAX + 4096)
		return err_set(err, CRISP_E_INTERNAL,
			       "launcher: the socket's send buffer is %d bytes, below %zu", got,
			       (size_t)LAUNCH_PACKET_MAX + 4096);
	return 0;
}

/* In the child, between fork and exec: only system calls, and every failure
 * reported to the parent through the close-on-exec pipe (an errno and the
 * step), which the exec closes on success. */
_noreturn_ static void start_child(const char *path, char *const argv[], int sock, int report,
				   pid_t helper)
{
	static char *const no_env[] = { NULL };
	int r[2] = { 0, 0 }, devnull, moved;

	/* Out of the way of fd 3 (the socket's place) and fds 0-2. */
	moved = fcntl(report, F_DUPFD_CLOEXEC, LAUNCH_SOCKET_FD + 1);
	if (moved < 0) {
		r[1] = 1;
		goto fail;
	}
	report = moved;
	/* Die with the helper, even before crisp-launch says it again itself
	 * (the setting survives the exec: same credentials). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != helper) {
		r[1] = 2;
		goto fail;
	}
	/* The socket on fd 3, kept across the exec (dup2 clears the flag; a
	 * socket already there only needs it cleared). */
	if (sock == LAUNCH_SOCKET_FD ? fcntl(sock, F_SETFD, 0) < 0
				     : dup2(sock, LAUNCH_SOCKET_FD) < 0) {
		r[1] = 3;
		goto fail;
	}
	/* /dev/null on stdin and stdout; stderr stays the helper's log pipe
	 * to crispd, so crisp-launch's lines come out under its helper's
	 * name. */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
	    (fcntl(2, F_GETFD) < 0 && dup2(devnull, 2) < 0)) {
		r[1] = 4;
		goto fail;
	}
	/* Nothing else of the helper's crosses the exec: its channel to
	 * crispd, its loop's internals, its databases. */
	if (syscall(SYS_close_range, LAUNCH_SOCKET_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		r[1] = 5;
		goto fail;
	}
	/* Not one variable of the helper's environment: crisp-launch needs
	 * none, and the programs it runs get each request's own. */
	execve(path, argv, no_env);
	r[1] = 6;
fail:
	r[0] = errno;
	(void)!write(report, r, sizeof(r));
	_exit(127);
}

int launcher_start(const char *path, const char *role, char *const args[], struct crisp_error *err)
{
	static const char *const steps[] = { "",
					     "moving the report pipe",
					     "checking its parent",
					     "moving its socket to fd 3",
					     "opening /dev/null",
					     "closing the helper's fds",
					     "exec" };
	_cleanup_free_ char *pid_arg = NULL;
	_cleanup_free_ char **argv = NULL;
	pid_t helper = getpid(), pid;
	int sv[2], report[2], r[2] = { 0, 0 };
	size_t n = 0, nargs = 0;
	ssize_t got;

	if (H.pid)
		return err_set(err, CRISP_E_INTERNAL, "launcher: already started");
	while (args && args[nargs])
		nargs++;
	/* path ROLE --wire V --helper PID --log-level L args... */
	pid_arg = xasprintf("%d", (int)helper);
	argv = xcalloc(nargs + 9, sizeof(*argv));
	argv[n++] = (char *)path;
	argv[n++] = (char *)role;
	argv[n++] = "--wire";
	argv[n++] = LAUNCH_WIRE_VERSION_STR;
	argv[n++] = "--helper";
	argv[n++] = pid_arg;
	argv[n++] = "--log-level";
	argv[n++] = (char *)log_level_name(log_get_level());
	for (size_t i = 0; i < nargs; i++)
		argv[n++] = args[i];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: socketpair");
	if (socket_setup(sv, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pipe2(report, O_CLOEXEC) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: pipe");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		start_child(path, argv, sv[1], report[1], helper);
	close(sv[1]);
	close(report[1]);
	if (pid < 0) {
		close(sv[0]);
		close(report[0]);
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: fork");
	}
	/* End of file: the exec succeeded. Else the child says what failed. */
	do
		got = read(report[0], r, sizeof(r));
	while (got < 0 && errno == EINTR);
	close(report[0]);
	if (got != 0) {
		close(sv[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (got != sizeof(r))
			return err_set(err, CRISP_E_INTERNAL, "launcher: %s did not start", path);
		return err_set_errno(err, CRISP_E_INTERNAL, r[0], "launcher: starting %s: %s", path,
				     steps[r[1] > 0 && r[1] < (int)ARRAY_SIZE(steps) ? r[1] : 0]);
	}
	H.fd = sv[0];
	H.pid = pid;
	H.next_id = 1;
	LIST_INIT(&H.launches);
	TAILQ_INIT(&H.outq);
	fd_set_nonblock(H.fd, true);
	log_debug("launcher: %s %s, pid %d", path, role, pid);
	return 0;
}

pid_t launcher_pid(void)
{
	return H.pid;
}

void launcher_on_gone(void (*fn)(const char *why, void *arg), void *arg)
{
	H.on_gone = fn;
	H.gone_arg = arg;
}

static void outpkt_free(struct outpkt *p)
{
	for (unsigned i = 0; i < p->nfds; i++)
		close(p->fds[i]);
	free(p->buf);
	free(p);
}

/* No launch can go on: stop talking to it, and fail everything on the loop
 * (not from inside launch(), whose caller does not expect callbacks). */
_printf_(1, 2) static void launcher_lost(const char *fmt, ...)
{
	va_list ap;

	if (H.gone)
		return;
	H.gone = true;
	va_start(ap, fmt);
	vsnprintf(H.why, sizeof(H.why), fmt, ap);
	va_end(ap);
	event_del(H.rev);
	event_del(H.wev);
	event_active(H.gone_ev, 0, 0);
}

static void launcher_reap_it(void)
{
	size_t len = strlen(H.why);
	int status;
	pid_t r;

	/* After end of file it has exited: only it held the other end. Else
	 * closing ours makes it exit, but do not wait for that. */
	do
		r = waitpid(H.pid, &status, H.eof ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != H.pid)
		return;
	if (WIFEXITED(status))
		snprintf(H.why + len, sizeof(H.why) - len, ", exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(H.why + len, sizeof(H.why) - len, ", killed by signal %d (SIG%s)",
			 WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
}

static void on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct crisp_error err;
	struct outpkt *p;
	struct launch *l;

	launcher_reap_it();
	H.fd = safe_close(H.fd);
	while ((p = TAILQ_FIRST(&H.outq))) {
		TAILQ_REMOVE(&H.outq, p, entry);
		outpkt_free(p);
	}
	err_set(&err, CRISP_E_UNAVAILABLE, "launcher is gone: %s", H.why);
	/* A callback may launch (which fails now) or detach other launches;
	 * taking them off the list one by one keeps that safe. */
	while ((l = LIST_FIRST(&H.launches))) {
		LIST_REMOVE(l, entry);
		if (!l->started && l->cb.started)
			l->cb.started(l, 0, &err, l->cb.arg);
		else if (l->started && l->cb.exited)
			l->cb.exited(l, -1, l->cb.arg);
		free(l);
	}
	if (H.on_gone) {
		H.on_gone(err.msg, H.gone_arg);
		return;
	}
	log_crit("%s: exiting, to be restarted with a new one", err.msg);
	exit(1);
}

static struct launch *launch_find(uint32_t id)
{
	struct launch *l;

	LIST_FOREACH (l, &H.launches, entry)
		if (l->id == id)
			return l;
	return NULL;
}

static void on_started(uint32_t id, const uint8_t *data, size_t len)
{
	CrispIpc__LaunchStarted *m = crisp_ipc__launch_started__unpack(NULL, len, data);
	struct launch *l = launch_find(id);
	struct crisp_error err = { 0 };

	if (!m || !l || l->started) {
		launcher_lost("the launcher sent a %s STARTED for #%u", m ? "stray" : "malformed",
			      id);
		goto out;
	}
	if (m->pid > 0 && m->code == CRISP_E_OK) {
		l->started = true;
		if (l->flags & LAUNCH_DETACH) /* nothing more comes for it */
			LIST_REMOVE(l, entry);
		if (l->cb.started)
			l->cb.started(l, m->pid, NULL, l->cb.arg);
		if (l->flags & LAUNCH_DETACH)
			free(l);
		goto out;
	}
	err.code = m->code > CRISP_E_OK && m->code < CRISP_E__MAX ? m->code : CRISP_E_INTERNAL;
	snprintf(err.msg, sizeof(err.msg), "%s", m->error[0] ? m->error : "launch failed");
	LIST_REMOVE(l, entry);
	if (l->cb.started)
		l->cb.started(l, 0, &err, l->cb.arg);
	free(l);
out:
	if (m)
		crisp_ipc__launch_started__free_unpacked(m, NULL);
}

static void on_exited(uint32_t id, const uint8_t *data, size_t len)
{
	CrispIpc__LaunchExited *m = crisp_ipc__launch_exited__unpack(NULL, len, data);
	struct launch *l = launch_find(id);

	if (!m || !l || !l->started) {
		launcher_lost("the launcher sent a %s EXITED for #%u", m ? "stray" : "malformed",
			      id);
	} else {
		LIST_REMOVE(l, entry);
		if (l->cb.exited)
			l->cb.exited(l, m->status, l->cb.arg);
		free(l);
	}
	if (m)
		crisp_ipc__launch_exited__free_unpacked(m, NULL);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	while (!H.gone) {
		uint8_t buf[LAUNCH_REPLY_MAX + 1];
		union {
			char buf[CMSG_SPACE(sizeof(int) * LAUNCH_STDIO)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		struct launch_hdr hdr;
		ssize_t n = recvmsg(H.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* End of file, or a reset when it died with requests unread. */
		if (n == 0 || errno == ECONNRESET) {
			H.eof = true;
			launcher_lost("launcher pid %d went away", H.pid);
			return;
		}
		if (n < 0) {
			launcher_lost("reading from launcher pid %d: %m", H.pid);
			return;
		}
		if (mh.msg_controllen) { /* it sends none: close what came */
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			for (size_t i = 0; c && c->cmsg_type == SCM_RIGHTS &&
					   i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			     i++) {
				int rfd;
				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(rfd);
			}
		}
		if ((size_t)n < sizeof(hdr) || mh.msg_controllen || (mh.msg_flags & MSG_TRUNC)) {
			launcher_lost("launcher pid %d sent a malformed packet", H.pid);
			return;
		}
		memcpy(&hdr, buf, sizeof(hdr));
		if (hdr.type == IPC_LAUNCH_PROCESS_STARTED)
			on_started(hdr.id, buf + sizeof(hdr), n - sizeof(hdr));
		else if (hdr.type == IPC_LAUNCH_PROCESS_EXITED)
			on_exited(hdr.id, buf + sizeof(hdr), n - sizeof(hdr));
		else
			launcher_lost("launcher pid %d sent %s", H.pid, ipc_type_name(hdr.type));
	}
}

/* Send what is queued, in order, without blocking. */
static void out_flush(void)
{
	struct outpkt *p;

	while (!H.gone && (p = TAILQ_FIRST(&H.outq))) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * LAUNCH_STDIO)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { p->buf, p->len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		if (p->nfds) {
			struct cmsghdr *c;

			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * p->nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * p->nfds);
			memcpy(CMSG_DATA(c), p->fds, sizeof(int) * p->nfds);
		}
		if (sendmsg(H.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			launcher_lost("sending to launcher pid %d: %m", H.pid);
			return;
		}
		TAILQ_REMOVE(&H.outq, p, entry);
		outpkt_free(p);
	}
	if (H.gone || TAILQ_EMPTY(&H.outq))
		event_del(H.wev);
	else
		event_add(H.wev, NULL);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	out_flush();
}

static void queue(uint16_t type, uint32_t id, const ProtobufCMessage *payload, int *fds,
		  unsigned nfds)
{
	struct outpkt *p = xcalloc(1, sizeof(*p));
	struct launch_hdr hdr = { .type = type, .id = id };

	p->len = sizeof(hdr) + protobuf_c_message_get_packed_size(payload);
	p->buf = xmalloc(p->len);
	memcpy(p->buf, &hdr, sizeof(hdr));
	protobuf_c_message_pack(payload, p->buf + sizeof(hdr));
	if (nfds)
		memcpy(p->fds, fds, nfds * sizeof(int));
	p->nfds = nfds;
	TAILQ_INSERT_TAIL(&H.outq, p, entry);
	out_flush();
}

void launcher_attach(struct event_base *base)
{
	if (H.fd < 0 || H.base)
		return;
	H.base = base;
	H.rev = event_new(base, H.fd, EV_READ | EV_PERSIST, on_readable, NULL);
	H.wev = event_new(base, H.fd, EV_WRITE | EV_PERSIST, on_writable, NULL);
	H.gone_ev = event_new(base, -1, 0, on_gone, NULL);
	if (!H.rev || !H.wev || !H.gone_ev)
		fatal("launcher: event_new failed");
	event_add(H.rev, NULL);
}

static int strings_check(const char *what, char *const *v, size_t max, struct crisp_error *err)
{
	size_t n = 0;

	for (; v && v[n]; n++) {
		if (n == max)
			return err_set(err, CRISP_E_INVALID, "launch: more than %zu %s", max, what);
		if (strlen(v[n]) >= LAUNCH_STRING_MAX)
			return err_set(err, CRISP_E_INVALID, "launch: %s %zu is %zu bytes, over %d",
				       what, n, strlen(v[n]), LAUNCH_STRING_MAX - 1);
	}
	return 0;
}

/* The bounds the launcher checks again (start_check). */
static int req_check(const struct launch_req *req, struct crisp_error *err)
{
	if (!req->program || !req->program[0] || strlen(req->program) >= LAUNCH_STRING_MAX)
		return err_set(err, CRISP_E_INVALID, "launch: no program, or a name too long");
	if (req->file && (!req->file[0] || strlen(req->file) >= LAUNCH_STRING_MAX))
		return err_set(err, CRISP_E_INVALID, "launch %s: empty file name, or too long",
			       req->program);
	if (!req->argv || !req->argv[0])
		return err_set(err, CRISP_E_INVALID, "launch %s: argv is empty", req->program);
	if (strings_check("arguments", req->argv, LAUNCH_ARGS_MAX, err) < 0 ||
	    strings_check("variables", req->envp, LAUNCH_ENV_MAX, err) < 0)
		return -1;
	if (req->flags & ~(unsigned)LAUNCH_DETACH)
		return err_set(err, CRISP_E_INVALID, "launch %s: unknown flags 0x%x", req->program,
			       req->flags);
	for (int i = 0; i < LAUNCH_STDIO; i++)
		if (req->fds[i] < -1 || (req->fds[i] >= 0 && fcntl(req->fds[i], F_GETFD) < 0))
			return err_set(err, CRISP_E_INVALID, "launch %s: stdio fd %d is not open",
				       req->program, req->fds[i]);
	return 0;
}

static ProtobufCBinaryData bytes(const char *s)
{
	return (ProtobufCBinaryData){ strlen(s), (uint8_t *)s };
}

struct launch *launch(const struct launch_req *req, const struct launch_cb *cb,
		      struct crisp_error *err)
{
	CrispIpc__LaunchStart m = CRISP_IPC__LAUNCH_START__INIT;
	ProtobufCBinaryData argv[LAUNCH_ARGS_MAX], envp[LAUNCH_ENV_MAX];
	int fds[LAUNCH_STDIO];
	struct launch *l;
	unsigned nfds = 0;

	if (!H.base)
		return err_set(err, CRISP_E_INTERNAL, "launch: the launcher is not started"), NULL;
	if (H.gone)
		return err_set(err, CRISP_E_UNAVAILABLE, "launcher is gone: %s", H.why), NULL;
	if (req_check(req, err) < 0)
		return NULL;
	m.program = bytes(req->program);
	if (req->file)
		m.file = bytes(req->file);
	for (; req->argv[m.n_argv]; m.n_argv++)
		argv[m.n_argv] = bytes(req->argv[m.n_argv]);
	for (; req->envp && req->envp[m.n_envp]; m.n_envp++)
		envp[m.n_envp] = bytes(req->envp[m.n_envp]);
	m.argv = argv;
	m.envp = envp;
	m.flags = req->flags;
	for (int i = 0; i < LAUNCH_STDIO; i++) {
		if (req->fds[i] < 0)
			continue;
		fds[nfds] = fcntl(req->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fds[nfds] < 0) {
			err_set_errno(err, CRISP_E_RESOURCE, errno, "launch %s: dup", req->program);
			while (nfds)
				close(fds[--nfds]);
			return NULL;
		}
		nfds++;
		m.stdio |= 1u << i;
	}
	l = xcalloc(1, sizeof(*l));
	do
		l->id = H.next_id++;
	while (l->id == 0 || launch_find(l->id));
	l->flags = req->flags;
	l->cb = *cb;
	LIST_INSERT_HEAD(&H.launches, l, entry);
	queue(IPC_LAUNCH_PROCESS_START, l->id, &m.base, fds, nfds);
	return l;
}

void launch_kill(struct launch *l, int sig)
{
	CrispIpc__LaunchKill m = CRISP_IPC__LAUNCH_KILL__INIT;

	if (!l || H.gone)
		return;
	if (sig <= 0 || sig >= NSIG) {
		log_debug("launch_kill: no signal %d", sig);
		return;
	}
	m.signal = sig;
	queue(IPC_LAUNCH_PROCESS_KILL, l->id, &m.base, NULL, 0);
}

void launch_detach(struct launch *l)
{
	if (l)
		memset(&l->cb, 0, sizeof(l->cb));
}
