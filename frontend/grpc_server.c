/* gRPC C core on connections we accept ourselves, one pump thread, and the
 * per-call state machines the libevent loop runs (DESIGN.md, "Facts already
 * established").
 *
 * A call's life: we keep one grpc_server_request_*call outstanding per CRI
 * method (and one generic, so unknown paths get UNIMPLEMENTED instead of
 * hanging). When it fires, the next one is requested, a RECV_CLOSE_ON_SERVER
 * batch tells us if the client goes away, and the request goes to the method's
 * handler, which may park the call while helpers work. rpc_finish() sends the
 * answer. The call is freed once nothing is outstanding on it: no request, no
 * batch, no handler. Only this loop's thread touches calls; the pump thread
 * only copies completion-queue events into a pipe. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/log.h"
#include "frontend/audit.h"
#include "frontend/cri_methods.h"
#include "frontend/grpc_server.h"

#define MAX_STREAMS 1024       /* concurrent calls per connection */
#define SHUTDOWN_GRACE_MS 3000 /* crispd waits longer than this before SIGKILL */
#define ACCEPT_BATCH 64        /* connections taken per wake-up: others get a turn */
#define ACCEPT_PAUSE_MS 200    /* when out of fds, before trying again */
#define FD_ROTATE_MIN 64
#define FD_ROTATE_MAX 65536

enum tag_kind {
	TAG_NEW,
	TAG_CLOSE,
	TAG_SEND,
	TAG_MSG,
	TAG_SHUTDOWN
};

struct fe_tag {
	enum tag_kind kind;
	struct fe_call *call;
};

struct fe_call {
	struct rpc rpc; /* first: rpc_finish() gets back to the call */
	LIST_ENTRY(fe_call) entry;
	ssize_t method; /* index into cri_methods, -1 for any other path */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details; /* generic calls only */
	grpc_byte_buffer *payload, *resp;
	grpc_slice status_details;
	int cancelled;
	/* what is outstanding; the call is freed when none is */
	bool requested, close_pending, send_pending, in_handler, msg_pending, in_holder;
	struct fe_tag tag_new, tag_close, tag_send, tag_msg;
	/* server streaming: messages waiting, the one in flight, and the
	 * status to send once they are all out */
	grpc_byte_buffer *queue[RPC_STREAM_QUEUE_MAX], *msg_inflight;
	size_t qhead, qlen;
	bool md_sent, final_pending;
	grpc_status_code final_code;
	char *final_msg;
};

/* What the pump thread writes for each completion-queue event. 16 bytes: a
 * pipe write that small is atomic, so the reader never sees half of one. */
struct pump_event {
	void *tag;
	int32_t type;
	int32_t ok;
};

static struct {
	struct event_base *base;
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_server_credentials *creds;
	void **handles; /* registered methods, by cri_methods index */
	pthread_t pump;
	int pump_r, pump_w;
	struct event *pump_ev;
	/* accepting */
	struct event *listen_ev, *accept_pause;
	struct fe_peer *peers; /* by the fd number gRPC holds the connection on */
	size_t npeers;
	int next_fd, fd_max;
	/* calls */
	LIST_HEAD(, fe_call) calls;
	size_t ncalls;   /* every fe_call, ... */
	size_t nwaiting; /* ... of which these wait for a call to arrive */
	/* shutdown */
	bool shutting_down, server_down, cq_down;
	struct fe_tag shutdown_tag;
	struct event *watchdog;
	void (*done)(void);
} srv = { .pump_r = -1, .pump_w = -1, .shutdown_tag = { .kind = TAG_SHUTDOWN } };

static void shutdown_progress(void);
static void queue_drop(struct fe_call *c);

/* ---- connections and their peers ---------------------------------------- */

static void peer_set(int fd, const struct fe_peer *peer)
{
	if ((size_t)fd >= srv.npeers) {
		size_t n = (size_t)fd + 64;
		srv.peers = xrealloc(srv.peers, n * sizeof(*srv.peers));
		memset(srv.peers + srv.npeers, 0, (n - srv.npeers) * sizeof(*srv.peers));
		srv.npeers = n;
	}
	srv.peers[fd] = *peer;
}

/* gRPC tells a call nothing about its client but the transport's name, which
 * for grpc_server_add_channel_from_fd() is "fd:N". */
static struct fe_peer peer_of(grpc_call *call)
{
	struct fe_peer peer = { .known = false, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	char *s = grpc_call_get_peer(call);
	const char *p = s ? strstr(s, "fd:") : NULL;
	uint64_t fd;

	if (p && parse_uint64(p + 3, 10, INT32_MAX, &fd) == 0 && fd < srv.npeers)
		peer = srv.peers[fd];
	else
		log_warn("cannot tell which client call peer '%s' is", s ? s : "(null)");
	gpr_free(s);
	return peer;
}

/* The kernel hands out the lowest free fd number, so a connection's number is
 * typically reused by the very next client. A call that a closed connection
 * left queued would then be attributed to that next client in the audit log.
 * Handing gRPC numbers round-robin from a high range means N comes back only
 * after the whole range has gone by. */
static int rotate_fd(int fd)
{
	int nfd;

	if (srv.next_fd < FD_ROTATE_MIN || srv.next_fd >= srv.fd_max)
		srv.next_fd = FD_ROTATE_MIN;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, srv.next_fd);
	if (nfd < 0 && (errno == EMFILE || errno == EINVAL))
		nfd = fcntl(fd, F_DUPFD_CLOEXEC, FD_ROTATE_MIN);
	if (nfd < 0)
		return fd; /* keep the low number: attribution gets weaker, serving goes on */
	safe_close(fd);
	srv.next_fd = nfd + 1;
	return nfd;
}

static void connection_new(int fd)
{
	struct fe_peer peer = { .known = true };
	struct ucred uc;
	socklen_t len = sizeof(uc);
	char why[160];

	/* No credentials, no service: we could not say who is calling. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof(uc)) {
		log_warn("connection without peer credentials (%s); closing it",
			 len != sizeof(uc) ? "short answer" : strerror(errno));
		safe_close(fd);
		return;
	}
	peer.pid = uc.pid;
	peer.uid = uc.uid;
	peer.gid = uc.gid;
	if (!frontend_authorized(&peer, why, sizeof(why))) {
		audit_refused(&peer, why);
		safe_close(fd);
		return;
	}
	fd = rotate_fd(fd);
	peer_set(fd, &peer);
	log_debug("connection from pid %d uid %u gid %u (fd %d)", (int)peer.pid, peer.uid, peer.gid,
		  fd);
	/* gRPC owns fd from here and closes it with the connection. */
	grpc_server_add_channel_from_fd(srv.server, fd, srv.creds);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	if (!srv.shutting_down)
		event_add(srv.listen_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	for (int i = 0; i < ACCEPT_BATCH && !srv.shutting_down; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			connection_new(fd);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The pending connection stays readable: without a pause
			 * this would spin. Clients wait in the backlog meanwhile. */
			struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
			log_warn("accept: %m; pausing for %d ms", ACCEPT_PAUSE_MS);
			event_del(srv.listen_ev);
			evtimer_add(srv.accept_pause, &tv);
			return;
		}
		log_err("accept: %m");
		return;
	}
}

void fe_server_listen(int listen_fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on)
		fatal("fd %d is not a listening socket: crisp-frontend is run by crispd only",
		      listen_fd);
	fd_set_nonblock(listen_fd, true);
	fd_set_cloexec(listen_fd, true);
	srv.listen_ev = event_new(srv.base, listen_fd, EV_READ | EV_PERSIST, on_accept, NULL);
	srv.accept_pause = evtimer_new(srv.base, on_accept_resume, NULL);
	event_add(srv.listen_ev, NULL);
}

/* ---- calls ---------------------------------------------------------------- */

static struct fe_call *call_new(ssize_t method)
{
	struct fe_call *c = xcalloc(1, sizeof(*c));

	c->method = method;
	c->rpc.peer.uid = (uid_t)-1;
	c->rpc.peer.gid = (gid_t)-1;
	grpc_metadata_array_init(&c->md);
	grpc_call_details_init(&c->details);
	c->status_details = grpc_empty_slice();
	c->tag_new = (struct fe_tag){ TAG_NEW, c };
	c->tag_close = (struct fe_tag){ TAG_CLOSE, c };
	c->tag_send = (struct fe_tag){ TAG_SEND, c };
	c->tag_msg = (struct fe_tag){ TAG_MSG, c };
	LIST_INSERT_HEAD(&srv.calls, c, entry);
	srv.ncalls++;
	return c;
}

static void call_maybe_free(struct fe_call *c)
{
	if (c->requested || c->close_pending || c->send_pending || c->in_handler ||
	    c->msg_pending || c->in_holder)
		return;
	LIST_REMOVE(c, entry);
	srv.ncalls--;
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	grpc_call_details_destroy(&c->details);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->status_details);
	queue_drop(c);
	free(c->final_msg);
	if (c->rpc.req)
		protobuf_c_message_free_unpacked(c->rpc.req, NULL);
	free(c);
	shutdown_progress();
}

/* Queued stream messages that will never be sent. */
static void queue_drop(struct fe_call *c)
{
	while (c->qlen > 0) {
		grpc_byte_buffer_destroy(c->queue[c->qhead]);
		c->qhead = (c->qhead + 1) % RPC_STREAM_QUEUE_MAX;
		c->qlen--;
	}
}

static void request_call(ssize_t method)
{
	struct fe_call *c = call_new(method);
	grpc_call_error e;

	c->requested = true;
	srv.nwaiting++;
	if (method >= 0)
		e = grpc_server_request_registered_call(srv.server, srv.handles[method], &c->call,
							&c->deadline, &c->md, &c->payload, srv.cq,
							srv.cq, &c->tag_new);
	else
		e = grpc_server_request_call(srv.server, &c->call, &c->details, &c->md, srv.cq,
					     srv.cq, &c->tag_new);
	if (e != GRPC_CALL_OK) {
		/* Only a bug gets here; the method stops being served. */
		log_err("cannot wait for calls to %s: gRPC error %d",
			method >= 0 ? cri_methods[method].path : "unknown methods", (int)e);
		c->requested = false;
		srv.nwaiting--;
		call_maybe_free(c);
	}
}

static void finish_unknown(struct fe_call *c)
{
	char path[128];
	size_t n = GRPC_SLICE_LENGTH(c->details.method);
	const uint8_t *p = GRPC_SLICE_START_PTR(c->details.method);

	/* The path is the client's: keep it short and printable in logs. */
	if (n > sizeof(path) - 1)
		n = sizeof(path) - 1;
	for (size_t i = 0; i < n; i++)
		path[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '?';
	path[n] = '\0';
	log_info("call to unknown method \"%s\" from pid %d uid %d", path, (int)c->rpc.peer.pid,
		 (int)c->rpc.peer.uid);
	_cleanup_free_ char *msg = xasprintf("unknown method %s", path);
	rpc_finish(&c->rpc, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
}

/* Zero the bytes of a request that holds registry credentials once it is
 * decoded (docs/PRIVSEP.md, Known gaps 7): the flat copy and the payload's
 * slices, which are usually the transport's own read buffers (a copy gRPC
 * made elsewhere, of a compressed request say, stays out of reach). */
static void wipe_payload(grpc_byte_buffer *payload, grpc_slice all)
{
	grpc_byte_buffer_reader reader;
	grpc_slice s;

	explicit_bzero(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	if (!grpc_byte_buffer_reader_init(&reader, payload))
		return;
	while (grpc_byte_buffer_reader_next(&reader, &s)) {
		explicit_bzero(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
		grpc_slice_unref(s);
	}
	grpc_byte_buffer_reader_destroy(&reader);
}

/* The request has arrived: learn when the client goes away, then hand it on.
 * c may be freed by the time the handler returns. */
static void call_start(struct fe_call *c)
{
	grpc_op op;
	grpc_byte_buffer_reader reader;
	grpc_byte_buffer *payload;
	grpc_slice all;
	bool secret;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	c->close_pending = grpc_call_start_batch(c->call, &op, 1, &c->tag_close, NULL) ==
			   GRPC_CALL_OK;
	c->rpc.peer = peer_of(c->call);
	c->rpc.start_ms = now_ms();
	c->in_handler = true;

	if (c->method < 0)
		return finish_unknown(c);
	c->rpc.method = &cri_methods[c->method];
	if (!c->payload || !grpc_byte_buffer_reader_init(&reader, c->payload))
		return cri_dispatch(&c->rpc, NULL, 0);
	/* Flattened once: protobuf-c unpacks from one contiguous buffer. */
	all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	/* Decided before the handler runs: c may be gone after it, but the
	 * payload and the flat copy are ours until the unrefs below. */
	secret = c->rpc.method->handler == cri_pull_image;
	payload = secret ? c->payload : NULL;
	c->payload = payload ? NULL : c->payload;
	cri_dispatch(&c->rpc, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	if (secret) {
		wipe_payload(payload, all);
		grpc_byte_buffer_destroy(payload);
	}
	grpc_slice_unref(all);
}

static void on_new_call(struct fe_call *c, bool ok)
{
	c->requested = false;
	srv.nwaiting--;
	if (!ok) {
		/* The server is shutting down: no call came. */
		call_maybe_free(c);
		return;
	}
	if (!srv.shutting_down)
		request_call(c->method);
	call_start(c);
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static grpc_byte_buffer *bytes_message(const uint8_t *data, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

	grpc_slice_unref(s);
	return bb;
}

/* The status (and, for unary calls, the answer: resp, packed here, or
 * resp_bb, packed already) in one batch. */
static void send_final(struct fe_call *c, grpc_status_code code, const char *msg,
		       const ProtobufCMessage *resp, grpc_byte_buffer *resp_bb)
{
	grpc_op ops[3];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	if (code == GRPC_STATUS_OK && (resp || resp_bb)) {
		c->resp = resp_bb ? resp_bb : pack_message(resp);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->resp;
	}
	c->status_details = grpc_slice_from_copied_string(code == GRPC_STATUS_OK || !msg ? ""
											 : msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &c->status_details;
	c->send_pending = true;
	if (grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) != GRPC_CALL_OK) {
		log_err("cannot send the answer of a call");
		c->send_pending = false;
	}
}

/* Server streaming: one message in flight at a time; the status goes out
 * once the queue is empty. */
static void stream_pump(struct fe_call *c)
{
	grpc_op ops[2];
	size_t n = 0;

	if (c->msg_pending || c->send_pending)
		return;
	memset(ops, 0, sizeof(ops));
	if (c->qlen == 0 && c->final_pending) {
		c->final_pending = false;
		send_final(c, c->final_code, c->final_msg, NULL, NULL);
		return;
	}
	if (c->qlen == 0 && !c->md_sent) {
		/* Headers right away: the client learns that the stream is up
		 * before the first message. */
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
		c->msg_pending = true;
		if (grpc_call_start_batch(c->call, ops, 1, &c->tag_msg, NULL) != GRPC_CALL_OK) {
			log_err("cannot start a stream");
			c->msg_pending = false;
		}
		return;
	}
	if (c->qlen == 0)
		return;
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	c->msg_inflight = c->queue[c->qhead];
	c->qhead = (c->qhead + 1) % RPC_STREAM_QUEUE_MAX;
	c->qlen--;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = c->msg_inflight;
	c->msg_pending = true;
	if (grpc_call_start_batch(c->call, ops, n, &c->tag_msg, NULL) != GRPC_CALL_OK) {
		log_err("cannot send a message of a stream");
		c->msg_pending = false;
		grpc_byte_buffer_destroy(TAKE_PTR(c->msg_inflight));
		queue_drop(c);
	}
}

bool rpc_client_gone(const struct rpc *rpc)
{
	return !((const struct fe_call *)rpc)->close_pending;
}

void rpc_stream_start(struct rpc *rpc)
{
	stream_pump((struct fe_call *)rpc);
}

int rpc_send(struct rpc *rpc, const uint8_t *data, size_t len)
{
	struct fe_call *c = (struct fe_call *)rpc;
	grpc_slice s;

	if (rpc->finished || c->qlen >= RPC_STREAM_QUEUE_MAX)
		return -1;
	s = grpc_slice_from_copied_buffer((const char *)data, len);
	c->queue[(c->qhead + c->qlen) % RPC_STREAM_QUEUE_MAX] = grpc_raw_byte_buffer_create(&s, 1);
	c->qlen++;
	grpc_slice_unref(s);
	stream_pump(c);
	return 0;
}

void rpc_finish(struct rpc *rpc, grpc_status_code code, const char *msg,
		const ProtobufCMessage *resp)
{
	struct fe_call *c = (struct fe_call *)rpc;

	if (rpc->finished) {
		log_crit("bug: call to %s finished twice", rpc->method ? rpc->method->name : "?");
		return;
	}
	rpc->finished = true;
	c->in_handler = false;
	if (c->msg_pending || c->qlen > 0) {
		/* A stream ends after what it queued, unless it ends in error:
		 * then the client hears about it without waiting for the rest. */
		if (code != GRPC_STATUS_OK)
			queue_drop(c);
		c->final_pending = true;
		c->final_code = code;
		c->final_msg = msg ? xstrdup(msg) : NULL;
		stream_pump(c);
	} else {
		send_final(c, code, msg, resp, NULL);
	}
	call_maybe_free(c);
}

void rpc_finish_bytes(struct rpc *rpc, const uint8_t *data, size_t len)
{
	struct fe_call *c = (struct fe_call *)rpc;

	if (rpc->finished || c->msg_pending || c->qlen > 0) {
		log_crit("bug: packed answer to a finished or streaming call to %s",
			 rpc->method ? rpc->method->name : "?");
		return;
	}
	rpc->finished = true;
	c->in_handler = false;
	send_final(c, GRPC_STATUS_OK, NULL, NULL, bytes_message(data, len));
	call_maybe_free(c);
}

/* ---- the pump ------------------------------------------------------------- */

/* The only thing this thread does. All signals are blocked in it (inherited
 * from start-up), and it never touches a call: that is the loop's job. */
static void *pump_main(void *arg)
{
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
			srv.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		/* Only a completion carries a tag and a result. */
		bool done = ev.type == GRPC_OP_COMPLETE;
		struct pump_event pe = { done ? ev.tag : NULL, (int32_t)ev.type,
					 done ? ev.success : 0 };
		ssize_t n;

		do
			n = write(srv.pump_w, &pe, sizeof(pe));
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(pe))
			fatal("gRPC pump: writing to the loop: %m");
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
	}
}

static void cq_finished(void)
{
	pthread_join(srv.pump, NULL);
	grpc_completion_queue_destroy(srv.cq);
	srv.cq = NULL;
	grpc_server_credentials_release(srv.creds);
	grpc_shutdown();
	event_free(srv.pump_ev);
	srv.pump_r = safe_close(srv.pump_r);
	srv.pump_w = safe_close(srv.pump_w);
	if (srv.watchdog)
		event_free(srv.watchdog);
	log_info("gRPC server stopped");
	srv.done();
}

static void handle_event(const struct pump_event *pe)
{
	struct fe_tag *t = pe->tag;

	if (pe->type == GRPC_QUEUE_SHUTDOWN)
		return cq_finished();
	if (pe->type != GRPC_OP_COMPLETE || !t)
		return;
	switch (t->kind) {
	case TAG_NEW:
		on_new_call(t->call, pe->ok);
		break;
	case TAG_CLOSE:
		t->call->close_pending = false;
		if (t->call->cancelled && t->call->in_handler)
			log_debug("client cancelled a call to %s while it was running",
				  t->call->rpc.method ? t->call->rpc.method->name : "?");
		/* A stream has no end of its own: its holder must learn that
		 * nobody listens any more. */
		if (!t->call->rpc.finished && t->call->rpc.on_cancel) {
			t->call->in_holder = true;
			t->call->rpc.on_cancel(&t->call->rpc, t->call->rpc.cancel_arg);
			t->call->in_holder = false;
		}
		call_maybe_free(t->call);
		break;
	case TAG_MSG: {
		struct fe_call *c = t->call;
		bool sent = c->msg_inflight && pe->ok; /* not the headers alone */

		c->msg_pending = false;
		if (c->msg_inflight)
			grpc_byte_buffer_destroy(TAKE_PTR(c->msg_inflight));
		if (!pe->ok)
			queue_drop(c); /* the client is gone: TAG_CLOSE follows */
		stream_pump(c);
		/* The next queued message is on its way already; the holder may
		 * queue more, or finish the call. */
		if (sent && !c->rpc.finished && c->rpc.on_sent) {
			c->in_holder = true;
			c->rpc.on_sent(&c->rpc, c->rpc.sent_arg);
			c->in_holder = false;
		}
		call_maybe_free(c);
		break;
	}
	case TAG_SEND:
		t->call->send_pending = false;
		if (!pe->ok)
			log_debug("answer to %s not delivered: client gone or call cancelled",
				  t->call->rpc.method ? t->call->rpc.method->name : "?");
		call_maybe_free(t->call);
		break;
	case TAG_SHUTDOWN:
		srv.server_down = true;
		shutdown_progress();
		break;
	}
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
	struct pump_event evs[64];
	ssize_t n = read(fd, evs, sizeof(evs));

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		fatal("gRPC pump: reading: %m");
	}
	if (n == 0 || n % sizeof(evs[0]) != 0)
		fatal("gRPC pump: broken pipe (%zd bytes)", n);
	for (size_t i = 0; i < (size_t)n / sizeof(evs[0]); i++)
		handle_event(&evs[i]);
}

/* ---- start and stop ------------------------------------------------------- */

/* gRPC's own messages go to our log with syslog priorities. Its default
 * logger would format local time, and so try to open /etc/localtime, which
 * the seccomp filter does not allow. It runs on any gRPC thread: log_msg()
 * is one write(2) per line and keeps no shared state. */
static void grpc_log(gpr_log_func_args *a)
{
	int prio = a->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_ERR
		   : a->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
							  : LOG_DEBUG;

	log_msg(prio, "grpc: %s (%s:%d)", a->message, a->file, a->line);
}

static grpc_server *server_create(void)
{
	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = RPC_MESSAGE_MAX },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = RPC_MESSAGE_MAX },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS,
		  .value.integer = MAX_STREAMS },
	};
	grpc_channel_args cargs = { ARRAY_SIZE(args), args };
	grpc_server *server = grpc_server_create(&cargs, NULL);

	if (!server)
		fatal("cannot create the gRPC server");
	grpc_server_register_completion_queue(server, srv.cq, NULL);
	srv.handles = xcalloc(cri_nmethods, sizeof(*srv.handles));
	for (size_t i = 0; i < cri_nmethods; i++) {
		srv.handles[i] = grpc_server_register_method(
			server, cri_methods[i].path, NULL,
			GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!srv.handles[i])
			fatal("cannot register %s with gRPC", cri_methods[i].path);
	}
	return server;
}

void fe_server_init(struct event_base *base)
{
	struct rlimit rl;
	int p[2];

	srv.base = base;
	LIST_INIT(&srv.calls);
	/* rotate_fd() works below the fd limit; read it now, it does not change. */
	srv.fd_max = FD_ROTATE_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < FD_ROTATE_MAX)
		srv.fd_max = (int)rl.rlim_cur;
	gpr_set_log_function(grpc_log);
	grpc_init();
	srv.cq = grpc_completion_queue_create_for_next(NULL);
	srv.server = server_create();
	srv.creds = grpc_insecure_server_credentials_create();
	grpc_server_start(srv.server);

	if (pipe2(p, O_CLOEXEC) < 0)
		fatal("pipe for the gRPC pump: %m");
	srv.pump_r = p[0];
	srv.pump_w = p[1];
	fd_set_nonblock(srv.pump_r, true);
	srv.pump_ev = event_new(base, srv.pump_r, EV_READ | EV_PERSIST, on_pump, NULL);
	event_add(srv.pump_ev, NULL);
	if ((errno = pthread_create(&srv.pump, NULL, pump_main, NULL)) != 0)
		fatal("cannot start the gRPC pump thread: %m");
	for (size_t i = 0; i < cri_nmethods; i++)
		request_call((ssize_t)i);
	request_call(-1);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	/* Something holds a call forever: a bug. Exiting is still better than
	 * hanging, and gRPC's threads make exit() unsafe here. */
	log_err("shutdown did not finish within %d ms (%zu calls in progress); exiting anyway",
		SHUTDOWN_GRACE_MS, srv.ncalls - srv.nwaiting);
	_exit(1);
}

bool fe_server_shutting_down(void)
{
	return srv.shutting_down;
}

void fe_server_shutdown(void (*done)(void))
{
	struct timeval tv = { SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000 };

	if (srv.shutting_down)
		return;
	srv.shutting_down = true;
	srv.done = done;
	if (srv.listen_ev) {
		event_del(srv.listen_ev);
		event_del(srv.accept_pause);
	}
	if (!srv.server) {
		done();
		return;
	}
	log_info("stopping the gRPC server (%zu calls in progress)", srv.ncalls - srv.nwaiting);
	grpc_server_shutdown_and_notify(srv.server, srv.cq, &srv.shutdown_tag);
	grpc_server_cancel_all_calls(srv.server);
	srv.watchdog = evtimer_new(srv.base, on_watchdog, NULL);
	evtimer_add(srv.watchdog, &tv);
	shutdown_progress();
}

/* Destroying the server while a call is alive, or while another thread uses
 * it, crashes gRPC: wait for the shutdown tag and for every call (parked ones
 * finish when their helper calls fail), then tear down in order. */
static void shutdown_progress(void)
{
	if (!srv.shutting_down || !srv.server_down || srv.ncalls > 0 || srv.cq_down)
		return;
	grpc_server_destroy(srv.server);
	srv.server = NULL;
	srv.cq_down = true;
	/* The pump sees GRPC_QUEUE_SHUTDOWN, forwards it and exits;
	 * handle_event() then calls cq_finished(). */
	grpc_completion_queue_shutdown(srv.cq);
}
