/* The streaming server's backend (frontend/stream.h) over ipc: exec through
 * runtimed (ExecStart hands us the process's pipes or pty master, ExecWait
 * its exit code), attach through runtimed (the container monitor's attach
 * connection), port-forward through netd (a socket connected inside the
 * pod's network namespace).
 *
 * The monitor speaks packets ("1<bytes>" stdout, "2<bytes>" stderr, "0<bytes>"
 * stdin, "resize <rows> <cols>"), the engine plain fds. A bridge on the loop
 * turns one into the other, holding at most one packet each way: it reads
 * the monitor only when the output pipe took the last packet, and the
 * client's stdin only when the monitor took the last one. The monitor drops
 * an attach client that does not keep up (monitor.h): that ends this
 * session, never the container's output. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "frontend/helpers.h"
#include "frontend/orch.h"
#include "frontend/stream.h"

#define ATTACH_PACKET_MAX 32768 /* MONITOR_PACKET_MAX */

struct attach_bridge;

struct be_handle {
	enum stream_kind kind;
	bool tty;
	bool released;
	unsigned calls; /* ipc calls in flight that point at us */
	/* exec */
	uint64_t exec_id;
	int tty_fd; /* the pty master, the server's: only for resize */
	/* attach */
	struct attach_bridge *bridge;
	stream_exit_cb exit_done;
	void *exit_ctx;
};

struct pending_open {
	struct stream_request req; /* the flags we need; strings not kept */
	stream_open_cb done;
	void *ctx;
};

/* helper_call() may fail a call before it returns (helper down); the
 * engine wants its callbacks from the loop, so such a reply is replayed on
 * the next loop turn. */
struct replay {
	ipc_reply_fn fn;
	void *arg;
	struct crisp_error err;
};

static bool in_call;

static void replay_run(evutil_socket_t fd, short what, void *arg)
{
	struct replay *r = arg;

	r->fn(NULL, NULL, &r->err, r->arg);
	free(r);
}

/* True when the reply came inside helper_call and is now deferred. */
static bool replay_if_sync(ipc_reply_fn fn, const struct crisp_error *err, void *arg)
{
	struct replay *r;
	struct timeval now = { 0, 0 };

	if (!in_call)
		return false;
	r = xcalloc(1, sizeof(*r));
	r->fn = fn;
	r->arg = arg;
	r->err = err ? *err : (struct crisp_error){ .code = CRISP_E_INTERNAL };
	event_base_once(stream_backend_base(), -1, EV_TIMEOUT, replay_run, r, &now);
	return true;
}

/* --- handles ------------------------------------------------------------------- */

static void bridge_free(struct attach_bridge *b);

static void handle_put(struct be_handle *h)
{
	if (!h->released || h->calls)
		return;
	if (h->bridge)
		bridge_free(h->bridge);
	free(h);
}

/* --- attach bridge ------------------------------------------------------------- */

struct attach_bridge {
	struct be_handle *h;
	int mon;          /* the monitor's SOCK_SEQPACKET connection */
	int in_r;         /* what the client types (engine writes the other end) */
	int out_w, err_w; /* toward the engine; tty: out_w is the socket, err_w -1 */
	struct event *mon_rd, *mon_wr, *in_ev, *out_ev, *err_ev;
	uint8_t pkt[ATTACH_PACKET_MAX + 1]; /* from the monitor */
	size_t pkt_len, pkt_off;
	int pkt_fd;                       /* where pkt goes */
	uint8_t inbuf[ATTACH_PACKET_MAX]; /* to the monitor: "0" + bytes */
	size_t in_len;
	char resize[32];
	bool in_eof; /* the client's stdin ended; the monitor was told */
	bool ended;
};

static void bridge_end(struct attach_bridge *b)
{
	struct be_handle *h = b->h;

	if (b->ended)
		return;
	b->ended = true;
	/* EOF on the engine's side: the session's output ends. */
	event_del(b->mon_rd);
	event_del(b->mon_wr);
	if (b->in_ev)
		event_del(b->in_ev);
	if (b->out_ev)
		event_del(b->out_ev);
	if (b->err_ev)
		event_del(b->err_ev);
	if (b->in_r == b->out_w)
		b->in_r = -1; /* tty: one socket both ways */
	b->out_w = safe_close(b->out_w);
	b->err_w = safe_close(b->err_w);
	b->in_r = safe_close(b->in_r);
	if (h && !h->released && h->exit_done) {
		stream_exit_cb done = h->exit_done;

		h->exit_done = NULL;
		done(h->exit_ctx, 0, NULL);
	}
}

static void bridge_free(struct attach_bridge *b)
{
	event_free(b->mon_rd);
	event_free(b->mon_wr);
	if (b->in_ev)
		event_free(b->in_ev);
	if (b->out_ev)
		event_free(b->out_ev);
	if (b->err_ev)
		event_free(b->err_ev);
	safe_close(b->mon);
	if (b->in_r != b->out_w)
		safe_close(b->in_r);
	safe_close(b->out_w);
	safe_close(b->err_w);
	free(b);
}

/* Write the held packet to its pipe; true when all of it went. */
static bool bridge_flush_out(struct attach_bridge *b)
{
	while (b->pkt_off < b->pkt_len) {
		ssize_t n = write(b->pkt_fd, b->pkt + b->pkt_off, b->pkt_len - b->pkt_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			event_add(b->pkt_fd == b->err_w ? b->err_ev : b->out_ev, NULL);
			event_del(b->mon_rd);
			return false;
		}
		if (n < 0) {
			/* the engine closed that output: drop what it does not want */
			b->pkt_off = b->pkt_len;
			break;
		}
		b->pkt_off += (size_t)n;
	}
	event_add(b->mon_rd, NULL);
	return true;
}

static void bridge_mon_readable(evutil_socket_t fd, short what, void *arg)
{
	struct attach_bridge *b = arg;
	ssize_t n = recv(b->mon, b->pkt, sizeof(b->pkt), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		return bridge_end(b); /* the container exited, or the monitor let us go */
	if (b->pkt[0] == '1' && b->out_w >= 0)
		b->pkt_fd = b->out_w;
	else if (b->pkt[0] == '2' && b->err_w >= 0)
		b->pkt_fd = b->err_w;
	else
		return; /* a stream this client did not ask for */
	b->pkt_off = 1;
	b->pkt_len = (size_t)n;
	bridge_flush_out(b);
}

static void bridge_out_writable(evutil_socket_t fd, short what, void *arg)
{
	bridge_flush_out(arg);
}

/* Send the held stdin packet, then a pending resize. */
static void bridge_flush_mon(struct attach_bridge *b)
{
	if (b->in_len) {
		ssize_t n = send(b->mon, b->inbuf, b->in_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			event_add(b->mon_wr, NULL);
			return;
		}
		if (n < 0)
			return bridge_end(b);
		b->in_len = 0;
	}
	if (b->resize[0]) {
		ssize_t n = send(b->mon, b->resize, strlen(b->resize), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			event_add(b->mon_wr, NULL);
			return;
		}
		b->resize[0] = '\0';
	}
	if (b->in_ev && b->in_r >= 0 && !b->in_eof)
		event_add(b->in_ev, NULL);
}

static void bridge_mon_writable(evutil_socket_t fd, short what, void *arg)
{
	bridge_flush_mon(arg);
}

static void bridge_in_readable(evutil_socket_t fd, short what, void *arg)
{
	struct attach_bridge *b = arg;
	ssize_t n;

	if (b->in_len)
		return;
	n = read(b->in_r, b->inbuf + 1, sizeof(b->inbuf) - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* This client stopped typing: an empty stdin packet says so,
		 * and the monitor decides whether the container's stdin closes
		 * (StdinOnce). */
		b->in_eof = true;
		b->inbuf[0] = '0';
		b->in_len = 1;
		event_del(b->in_ev);
		bridge_flush_mon(b);
		return;
	}
	b->inbuf[0] = '0';
	b->in_len = (size_t)n + 1;
	event_del(b->in_ev);
	bridge_flush_mon(b);
}

static int nonblock_pipe(int p[2], struct crisp_error *err)
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "pipe");
	return 0;
}

/* The engine's fds for an attach session over monitor connection mon. */
static struct attach_bridge *bridge_new(int mon, const struct stream_request *r,
					struct stream_io *io, struct crisp_error *err)
{
	struct event_base *base = stream_backend_base();
	struct attach_bridge *b = xcalloc(1, sizeof(*b));
	int p[2];

	b->mon = mon;
	b->in_r = b->out_w = b->err_w = -1;
	io->fds[0] = io->fds[1] = io->fds[2] = -1;
	if (r->tty) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p) < 0) {
			err_set_errno(err, CRISP_E_RESOURCE, errno, "socketpair");
			goto fail;
		}
		io->fds[0] = p[0];
		b->out_w = p[1];
		b->in_r = r->in ? p[1] : -1;
	} else {
		if (r->in) {
			if (nonblock_pipe(p, err) < 0)
				goto fail;
			io->fds[0] = p[1];
			b->in_r = p[0];
		}
		if (r->out) {
			if (nonblock_pipe(p, err) < 0)
				goto fail;
			io->fds[1] = p[0];
			b->out_w = p[1];
		}
		if (r->err) {
			if (nonblock_pipe(p, err) < 0)
				goto fail;
			io->fds[2] = p[0];
			b->err_w = p[1];
		}
	}
	b->mon_rd = event_new(base, mon, EV_READ | EV_PERSIST, bridge_mon_readable, b);
	b->mon_wr = event_new(base, mon, EV_WRITE, bridge_mon_writable, b);
	if (b->in_r >= 0)
		b->in_ev = event_new(base, b->in_r, EV_READ | EV_PERSIST, bridge_in_readable, b);
	if (b->out_w >= 0)
		b->out_ev = event_new(base, b->out_w, EV_WRITE, bridge_out_writable, b);
	if (b->err_w >= 0)
		b->err_ev = event_new(base, b->err_w, EV_WRITE, bridge_out_writable, b);
	event_add(b->mon_rd, NULL);
	if (b->in_ev)
		event_add(b->in_ev, NULL);
	return b;
fail:
	for (int i = 0; i < 3; i++)
		io->fds[i] = safe_close(io->fds[i]);
	b->mon = -1; /* the caller's */
	safe_close(b->in_r);
	if (b->out_w != b->in_r)
		safe_close(b->out_w);
	safe_close(b->err_w);
	free(b);
	return NULL;
}

/* --- check --------------------------------------------------------------------- */

struct pending_check {
	stream_check_cb done;
	void *ctx;
	char id[257]; /* for the message (cri_stream.c: at most 256 bytes) */
};

static void check_done(struct pending_check *pc, const struct crisp_error *err)
{
	pc->done(pc->ctx, err);
	free(pc);
}

static void on_container_listed(ProtobufCMessage *reply, struct ipc_msg *msg,
				const struct crisp_error *err, void *arg)
{
	struct pending_check *pc = arg;
	const CrispIpc__ContainerListReply *r = (const CrispIpc__ContainerListReply *)reply;
	struct crisp_error e = { 0 };

	if (replay_if_sync(on_container_listed, err, arg))
		return;
	if (err)
		return check_done(pc, err);
	if (r->n_containers != 1)
		err_set(&e, CRISP_E_NOT_FOUND, "container %s not found", pc->id);
	else if (r->containers[0]->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
		err_set(&e, CRISP_E_PRECONDITION, "container %s is not running", pc->id);
	check_done(pc, e.code ? &e : NULL);
}

static void on_sandbox_listed(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct pending_check *pc = arg;
	const CrispIpc__SandboxListReply *r = (const CrispIpc__SandboxListReply *)reply;
	struct crisp_error e = { 0 };

	if (replay_if_sync(on_sandbox_listed, err, arg))
		return;
	if (err)
		return check_done(pc, err);
	if (r->n_sandboxes != 1)
		err_set(&e, CRISP_E_NOT_FOUND, "pod sandbox %s not found", pc->id);
	else if (r->sandboxes[0]->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
		err_set(&e, CRISP_E_PRECONDITION, "pod sandbox %s is not ready", pc->id);
	check_done(pc, e.code ? &e : NULL);
}

/* Before a URL is handed out: the kubelet wants NOT_FOUND for a container
 * or pod that is not there, not a URL that fails later. runtimed checks
 * again when the session opens. */
static void be_check(const struct stream_request *r, stream_check_cb done, void *ctx)
{
	struct pending_check *pc = xcalloc(1, sizeof(*pc));

	pc->done = done;
	pc->ctx = ctx;
	in_call = true;
	if (r->kind == STREAM_PORT_FORWARD) {
		CrispIpc__SandboxListRequest req = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;

		snprintf(pc->id, sizeof(pc->id), "%s", r->sandbox_id);
		req.sandbox_id = r->sandbox_id;
		helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &req.base,
			    &crisp_ipc__sandbox_list_reply__descriptor, 0, on_sandbox_listed, pc);
	} else {
		CrispIpc__ContainerListRequest req = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;

		snprintf(pc->id, sizeof(pc->id), "%s", r->container_id);
		req.container_id = r->container_id;
		helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &req.base,
			    &crisp_ipc__container_list_reply__descriptor, 0, on_container_listed,
			    pc);
	}
	in_call = false;
}

/* --- open ---------------------------------------------------------------------- */

static void on_exec_started(ProtobufCMessage *reply, struct ipc_msg *msg,
			    const struct crisp_error *err, void *arg)
{
	struct pending_open *po = arg;
	const CrispIpc__ExecStartReply *r = (const CrispIpc__ExecStartReply *)reply;
	struct stream_io io = { .fds = { -1, -1, -1 } };
	struct crisp_error e = { 0 };
	struct be_handle *h;
	unsigned want = 0, k = 0;

	if (replay_if_sync(on_exec_started, err, arg))
		return;
	if (err) {
		e = *err;
		err_prefix(&e, "exec");
		po->done(po->ctx, NULL, &e);
		free(po);
		return;
	}
	want = po->req.tty ? 1 : (unsigned)po->req.in + po->req.out + po->req.err;
	if (msg->nfds != want) {
		err_set(&e, CRISP_E_INTERNAL, "exec: runtimed sent %u fds, not %u", msg->nfds,
			want);
		po->done(po->ctx, NULL, &e);
		free(po);
		return;
	}
	if (po->req.tty) {
		io.fds[0] = ipc_msg_take_fd(msg, 0);
	} else {
		if (po->req.in)
			io.fds[0] = ipc_msg_take_fd(msg, k++);
		if (po->req.out)
			io.fds[1] = ipc_msg_take_fd(msg, k++);
		if (po->req.err)
			io.fds[2] = ipc_msg_take_fd(msg, k++);
	}
	h = xcalloc(1, sizeof(*h));
	h->kind = STREAM_EXEC;
	h->tty = po->req.tty;
	h->exec_id = r->exec_id;
	h->tty_fd = po->req.tty ? io.fds[0] : -1;
	io.handle = h;
	po->done(po->ctx, &io, NULL);
	free(po);
}

static void on_attached(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
			void *arg)
{
	struct pending_open *po = arg;
	struct stream_io io = { .fds = { -1, -1, -1 } };
	struct crisp_error e = { 0 };
	struct be_handle *h;
	int mon;

	if (replay_if_sync(on_attached, err, arg))
		return;
	if (err || msg->nfds != 1) {
		if (err)
			e = *err;
		else
			err_set(&e, CRISP_E_INTERNAL, "attach: runtimed sent no connection");
		err_prefix(&e, "attach");
		po->done(po->ctx, NULL, &e);
		free(po);
		return;
	}
	mon = ipc_msg_take_fd(msg, 0);
	h = xcalloc(1, sizeof(*h));
	h->kind = STREAM_ATTACH;
	h->tty = po->req.tty;
	h->tty_fd = -1;
	h->bridge = bridge_new(mon, &po->req, &io, &e);
	if (!h->bridge) {
		safe_close(mon);
		free(h);
		po->done(po->ctx, NULL, &e);
		free(po);
		return;
	}
	h->bridge->h = h;
	io.handle = h;
	po->done(po->ctx, &io, NULL);
	free(po);
}

static void be_open(const struct stream_request *r, stream_open_cb done, void *ctx)
{
	struct pending_open *po = xcalloc(1, sizeof(*po));

	po->req.kind = r->kind;
	po->req.tty = r->tty;
	po->req.in = r->in;
	po->req.out = r->out;
	po->req.err = r->err && !r->tty;
	po->done = done;
	po->ctx = ctx;
	if (r->kind == STREAM_EXEC) {
		CrispIpc__ExecStartRequest req = CRISP_IPC__EXEC_START_REQUEST__INIT;

		req.container_id = r->container_id;
		req.cmd = r->cmd;
		req.n_cmd = r->n_cmd;
		req.tty = r->tty;
		req.stdin = r->in;
		req.stdout = r->out;
		req.stderr = po->req.err;
		in_call = true;
		helper_call_fds(HELPER_RUNTIMED, IPC_RUNTIMED_EXEC_START, &req.base,
				&crisp_ipc__exec_start_reply__descriptor, 3, 0, on_exec_started,
				po);
		in_call = false;
	} else {
		CrispIpc__AttachRequest req = CRISP_IPC__ATTACH_REQUEST__INIT;

		req.container_id = r->container_id;
		in_call = true;
		helper_call_fds(HELPER_RUNTIMED, IPC_RUNTIMED_ATTACH, &req.base,
				&crisp_ipc__empty__descriptor, 1, 0, on_attached, po);
		in_call = false;
	}
}

/* --- wait, resize, release ----------------------------------------------------- */

struct pending_wait {
	struct be_handle *h;
	stream_exit_cb done;
	void *ctx;
};

static void on_exec_waited(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct pending_wait *pw = arg;
	struct be_handle *h = pw->h;
	const CrispIpc__ExecWaitReply *r = (const CrispIpc__ExecWaitReply *)reply;

	if (replay_if_sync(on_exec_waited, err, arg))
		return;
	/* done() may release the handle: it stays ours until calls drops. */
	if (!h->released)
		pw->done(pw->ctx, err ? -1 : r->exit_code, err);
	free(pw);
	h->calls--;
	handle_put(h);
}

static void be_wait(void *handle, stream_exit_cb done, void *ctx)
{
	struct be_handle *h = handle;
	CrispIpc__ExecWaitRequest req = CRISP_IPC__EXEC_WAIT_REQUEST__INIT;
	struct pending_wait *pw;

	if (h->kind == STREAM_ATTACH) {
		/* the bridge reports when the monitor hangs up */
		h->exit_done = done;
		h->exit_ctx = ctx;
		return;
	}
	pw = xcalloc(1, sizeof(*pw));
	pw->h = h;
	pw->done = done;
	pw->ctx = ctx;
	h->calls++;
	req.exec_id = h->exec_id;
	/* As long as the process runs: a shell may stay for days. */
	in_call = true;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_EXEC_WAIT, &req.base,
		    &crisp_ipc__exec_wait_reply__descriptor, HELPER_NO_TIMEOUT, on_exec_waited, pw);
	in_call = false;
}

static void be_resize(void *handle, uint16_t width, uint16_t height)
{
	struct be_handle *h = handle;
	struct winsize ws = { .ws_row = height, .ws_col = width };

	if (!h->tty)
		return;
	if (h->kind == STREAM_EXEC) {
		/* runtimed passes the size on to the container's terminal */
		if (h->tty_fd >= 0 && ioctl(h->tty_fd, TIOCSWINSZ, &ws) < 0)
			log_debug("exec %llu: resize: %s", (unsigned long long)h->exec_id,
				  strerror(errno));
		return;
	}
	if (h->bridge && !h->bridge->ended) {
		snprintf(h->bridge->resize, sizeof(h->bridge->resize), "resize %u %u",
			 (unsigned)height, (unsigned)width);
		if (!h->bridge->in_len)
			bridge_flush_mon(h->bridge);
	}
}

static void be_release(void *handle)
{
	struct be_handle *h = handle;

	h->released = true;
	h->tty_fd = -1; /* the server closes it */
	h->exit_done = NULL;
	handle_put(h);
}

/* --- port-forward -------------------------------------------------------------- */

struct pending_connect {
	stream_connect_cb done;
	void *ctx;
	char sandbox_id[CRI_ID_LEN + 1];
	uint16_t port;
};

static void on_port_connected(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct pending_connect *pc = arg;
	struct crisp_error e = { 0 };

	if (replay_if_sync(on_port_connected, err, arg))
		return;
	if (err)
		pc->done(pc->ctx, -1, err);
	else if (msg->nfds != 1)
		pc->done(pc->ctx, -1, (err_set(&e, CRISP_E_INTERNAL, "netd sent no socket"), &e));
	else
		pc->done(pc->ctx, ipc_msg_take_fd(msg, 0), NULL);
	free(pc);
}

/* A pod on the host's network has no netns of its own: netd connects on
 * the host's loopback for it, when told. runtimed's record says which
 * kind of pod this is. */
static void on_connect_lookup(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct pending_connect *pc = arg;
	const CrispIpc__SandboxListReply *r = (const CrispIpc__SandboxListReply *)reply;
	CrispIpc__PortConnectRequest req = CRISP_IPC__PORT_CONNECT_REQUEST__INIT;
	struct crisp_error e = { 0 };

	if (replay_if_sync(on_connect_lookup, err, arg))
		return;
	if (!err && r->n_sandboxes != 1) {
		err_set(&e, CRISP_E_NOT_FOUND, "pod sandbox %s not found", pc->sandbox_id);
		err = &e;
	}
	if (err) {
		pc->done(pc->ctx, -1, err);
		free(pc);
		return;
	}
	req.sandbox_id = pc->sandbox_id;
	req.port = pc->port;
	req.host_network = !*r->sandboxes[0]->netns_path &&
			   pod_host_network(r->sandboxes[0]->config);
	in_call = true;
	helper_call_fds(HELPER_NETD, IPC_NETD_PORT_CONNECT, &req.base,
			&crisp_ipc__empty__descriptor, 1, 0, on_port_connected, pc);
	in_call = false;
}

static void be_port_connect(const char *sandbox_id, uint16_t port, stream_connect_cb done,
			    void *ctx)
{
	CrispIpc__SandboxListRequest list = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;
	struct pending_connect *pc = xcalloc(1, sizeof(*pc));

	pc->done = done;
	pc->ctx = ctx;
	snprintf(pc->sandbox_id, sizeof(pc->sandbox_id), "%s", sandbox_id);
	pc->port = port;
	list.sandbox_id = pc->sandbox_id;
	in_call = true;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &list.base,
		    &crisp_ipc__sandbox_list_reply__descriptor, 0, on_connect_lookup, pc);
	in_call = false;
}

static const struct stream_backend ipc_backend = {
	.check = be_check,
	.open = be_open,
	.wait = be_wait,
	.resize = be_resize,
	.release = be_release,
	.port_connect = be_port_connect,
};

static struct event_base *be_base;

struct event_base *stream_backend_base(void)
{
	return be_base;
}

void stream_backend_install(struct event_base *base)
{
	be_base = base;
	stream_set_backend(&ipc_backend);
}
