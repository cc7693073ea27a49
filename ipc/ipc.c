/* ipc transport: framing, hello, request ids, fd passing, timeouts. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/arena.h"
#include "ipc/ipc.h"
#include "ipc/msg.h"

struct ipc_hdr {
	uint32_t len; /* payload bytes after the header */
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	uint8_t nfds;
	uint8_t reserved[3];
};
_Static_assert(sizeof(struct ipc_hdr) == 16, "header is 16 bytes on the wire");

#define IPC_READ_CHUNK (64u << 10)
#define IPC_MAX_QUEUED_FDS 64
#define IPC_MAX_OUTQ (256u << 20)

struct outframe {
	TAILQ_ENTRY(outframe) entry;
	uint8_t *buf;
	size_t len, off;
	int fds[IPC_MAX_FDS];
	unsigned nfds;
	bool secret; /* wiped when freed (ipc_send_secret, ipc_type_secret) */
};

struct pending {
	LIST_ENTRY(pending) entry;
	struct ipc_chan *chan;
	uint32_t id;
	uint16_t type;
	const ProtobufCMessageDescriptor *reply_desc;
	unsigned reply_nfds;
	ipc_reply_fn fn;
	void *arg;
	struct event *timer;
};

struct ipc_chan {
	struct event_base *base;
	int fd;
	const struct ipc_chan_ops *ops;
	void *arg;
	struct event *rev, *wev;
	/* input */
	uint8_t *in;
	size_t inlen, incap;
	int qfds[IPC_MAX_QUEUED_FDS];
	unsigned nqfds;
	/* output */
	TAILQ_HEAD(, outframe) outq;
	size_t outbytes;
	/* calls */
	LIST_HEAD(, pending) pending;
	uint32_t next_id;
	bool ready, closed;
	int busy; /* > 0 while we run callbacks: freeing is deferred */
	bool free_me;
	int peer_pid;
	char peer[32];
};

static void chan_close(struct ipc_chan *c, const char *why);

#ifdef CRISP_TEST_HOOKS
void (*ipc_test_released)(const void *buf, size_t len);
#define RELEASED(buf, len) (ipc_test_released ? ipc_test_released(buf, len) : (void)0)
#else
#define RELEASED(buf, len) ((void)0)
#endif

static void outframe_free(struct outframe *f)
{
	for (unsigned i = 0; i < f->nfds; i++)
		safe_close(f->fds[i]);
	if (f->secret)
		explicit_bzero(f->buf, f->len);
	RELEASED(f->buf, f->len);
	free(f->buf);
	free(f);
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fds[i] = safe_close(fds[i]);
}

static int chan_flush(struct ipc_chan *c)
{
	struct outframe *f;

	while ((f = TAILQ_FIRST(&c->outq))) {
		struct iovec iov = { f->buf + f->off, f->len - f->off };
		union {
			char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
			struct cmsghdr align;
		} cm;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		/* fds ride with the first byte of their frame, never later, so
		 * the receiver has them by the time the frame is complete. */
		if (f->off == 0 && f->nfds > 0) {
			struct cmsghdr *cmsg;
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * f->nfds);
			cmsg = CMSG_FIRSTHDR(&mh);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * f->nfds);
			memcpy(CMSG_DATA(cmsg), f->fds, sizeof(int) * f->nfds);
		}
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		if (f->off == 0)
			close_fds(f->fds, f->nfds), f->nfds = 0;
		f->off += n;
		c->outbytes -= n;
		if (f->off == f->len) {
			TAILQ_REMOVE(&c->outq, f, entry);
			outframe_free(f);
		}
	}
	if (TAILQ_EMPTY(&c->outq))
		event_del(c->wev);
	else
		event_add(c->wev, NULL);
	return 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	int r = chan_flush(c);
	if (r < 0) {
		c->busy++;
		chan_close(c, r == -EPIPE || r == -ECONNRESET ? "peer closed the channel"
							      : "write failed");
		c->busy--;
		if (c->free_me)
			ipc_chan_free(c);
	}
}

static int send_frame(struct ipc_chan *c, uint16_t type, uint16_t flags, uint32_t id,
		      const ProtobufCMessage *payload, int *fds, unsigned nfds, bool secret)
{
	struct ipc_hdr h = { .type = type, .flags = flags, .id = id, .nfds = (uint8_t)nfds };
	struct outframe *f;
	size_t plen = payload ? protobuf_c_message_get_packed_size(payload) : 0;

	if (c->closed || nfds > IPC_MAX_FDS || plen > IPC_MAX_PAYLOAD ||
	    c->outbytes + plen > IPC_MAX_OUTQ) {
		close_fds(fds, nfds);
		if (!c->closed)
			log_err("ipc: cannot send %s to %s: %s", ipc_type_name(type), c->peer,
				nfds > IPC_MAX_FDS ? "too many fds" : "message or queue too large");
		return -1;
	}
	h.len = (uint32_t)plen;
	f = xcalloc(1, sizeof(*f));
	f->len = sizeof(h) + plen;
	f->secret = secret || (!(flags & IPC_F_REPLY) && ipc_type_secret(type));
	f->buf = xmalloc(f->len);
	memcpy(f->buf, &h, sizeof(h));
	if (payload)
		protobuf_c_message_pack(payload, f->buf + sizeof(h));
	for (unsigned i = 0; i < nfds; i++)
		f->fds[i] = TAKE_FD(fds[i]);
	f->nfds = nfds;
	TAILQ_INSERT_TAIL(&c->outq, f, entry);
	c->outbytes += f->len;
	/* Try at once: most frames go out without a trip through the loop. */
	if (TAILQ_FIRST(&c->outq) == f && chan_flush(c) < 0) {
		event_add(c->wev, NULL); /* the write callback reports the failure */
	}
	return 0;
}

int ipc_send(struct ipc_chan *c, uint16_t type, uint16_t flags, uint32_t id,
	     const ProtobufCMessage *payload, int *fds, unsigned nfds)
{
	return send_frame(c, type, flags, id, payload, fds, nfds, false);
}

int ipc_send_secret(struct ipc_chan *c, uint16_t type, const ProtobufCMessage *payload)
{
	return send_frame(c, type, 0, 0, payload, NULL, 0, true);
}

int ipc_reply(struct ipc_chan *c, const struct ipc_msg *req, const ProtobufCMessage *payload,
	      int *fds, unsigned nfds)
{
	return ipc_send(c, req->type, IPC_F_REPLY, req->id, payload, fds, nfds);
}

int ipc_reply_error(struct ipc_chan *c, const struct ipc_msg *req, const struct crisp_error *err)
{
	CrispIpc__Error e = CRISP_IPC__ERROR__INIT;
	e.code = err->code;
	e.message = (char *)err->msg;
	return ipc_send(c, IPC_ERROR, IPC_F_REPLY, req->id, &e.base, NULL, 0);
}

static void pending_free(struct pending *p)
{
	LIST_REMOVE(p, entry);
	if (p->timer)
		event_free(p->timer);
	free(p);
}

static void pending_fail(struct pending *p, enum crisp_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pending_fail(struct pending *p, enum crisp_errcode code, const char *fmt, ...)
{
	struct crisp_error err = { .code = code };
	ipc_reply_fn fn = p->fn;
	void *arg = p->arg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	pending_free(p);
	fn(NULL, NULL, &err, arg);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct ipc_chan *c = p->chan;

	c->busy++;
	pending_fail(p, CRISP_E_TIMEOUT, "%s did not answer %s in time", c->peer,
		     ipc_type_name(p->type));
	c->busy--;
	if (c->free_me)
		ipc_chan_free(c);
}

uint32_t ipc_call(struct ipc_chan *c, uint16_t type, const ProtobufCMessage *req, int *fds,
		  unsigned nfds, const ProtobufCMessageDescriptor *reply_desc, unsigned reply_nfds,
		  unsigned timeout_ms, ipc_reply_fn fn, void *arg)
{
	struct crisp_error err;
	struct pending *p;
	uint32_t id;

	if (!c || !c->ready || c->closed) {
		close_fds(fds, nfds);
		err_set(&err, CRISP_E_UNAVAILABLE, "%s is not available", c ? c->peer : "helper");
		fn(NULL, NULL, &err, arg);
		return 0;
	}
	id = ++c->next_id ? c->next_id : ++c->next_id;
	if (ipc_send(c, type, 0, id, req, fds, nfds) < 0) {
		err_set(&err, CRISP_E_UNAVAILABLE, "cannot send %s to %s", ipc_type_name(type),
			c->peer);
		fn(NULL, NULL, &err, arg);
		return 0;
	}
	p = xcalloc(1, sizeof(*p));
	p->chan = c;
	p->id = id;
	p->type = type;
	p->reply_desc = reply_desc;
	p->reply_nfds = reply_nfds;
	p->fn = fn;
	p->arg = arg;
	if (timeout_ms) {
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		p->timer = evtimer_new(c->base, on_call_timeout, p);
		evtimer_add(p->timer, &tv);
	}
	LIST_INSERT_HEAD(&c->pending, p, entry);
	return id;
}

void ipc_call_cancel(struct ipc_chan *c, uint32_t id)
{
	struct pending *p;

	if (!c)
		return;
	LIST_FOREACH (p, &c->pending, entry) {
		if (p->id == id) {
			pending_free(p);
			return;
		}
	}
}

int ipc_msg_take_fd(struct ipc_msg *msg, unsigned i)
{
	if (i >= msg->nfds)
		return -1;
	return TAKE_FD(msg->fds[i]);
}

static void chan_close(struct ipc_chan *c, const char *why)
{
	struct pending *p;

	if (c->closed)
		return;
	c->closed = true;
	event_del(c->rev);
	event_del(c->wev);
	while ((p = LIST_FIRST(&c->pending)))
		pending_fail(p, CRISP_E_UNAVAILABLE, "%s went away (%s) during %s", c->peer, why,
			     ipc_type_name(p->type));
	/* A failed call's callback may have freed the channel: then its owner
	 * is done with it, and c->arg may be gone. */
	if (c->ops->on_close && !c->free_me)
		c->ops->on_close(c, why, c->arg);
}

void ipc_violation(struct ipc_chan *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("ipc: protocol violation by %s[%d]: %s", c->peer, c->peer_pid, why);
	c->busy++;
	chan_close(c, "protocol violation");
	c->busy--;
	/* Inside our own callbacks the channel is freed when they return. */
	if (c->busy == 0 && c->free_me)
		ipc_chan_free(c);
}

static void handle_hello(struct ipc_chan *c, struct ipc_msg *m)
{
	CrispIpc__Hello *h;

	if (m->type != IPC_HELLO || m->flags || m->nfds || m->len > IPC_SMALL)
		return ipc_violation(c, "expected hello, got %s", ipc_type_name(m->type));
	h = crisp_ipc__hello__unpack(NULL, m->len, m->data);
	if (!h)
		return ipc_violation(c, "malformed hello");
	if (h->version != c->ops->version || !streq(h->process, c->ops->peer)) {
		ipc_violation(c, "hello from '%.32s' version %u, expected '%s' version %u",
			      h->process, h->version, c->ops->peer, c->ops->version);
		crisp_ipc__hello__free_unpacked(h, NULL);
		return;
	}
	c->peer_pid = h->pid;
	crisp_ipc__hello__free_unpacked(h, NULL);
	c->ready = true;
	if (c->ops->on_ready)
		c->ops->on_ready(c, c->arg);
}

static void handle_reply(struct ipc_chan *c, struct ipc_msg *m)
{
	struct pending *p;
	ProtobufCMessage *reply;
	struct arena arena;

	LIST_FOREACH (p, &c->pending, entry)
		if (p->id == m->id)
			break;
	if (!p) {
		/* Late reply to a call that timed out or was cancelled. */
		log_debug("ipc: dropping reply %u (%s) from %s: no such call", m->id,
			  ipc_type_name(m->type), c->peer);
		return;
	}
	if (m->type == IPC_ERROR) {
		CrispIpc__Error *e = crisp_ipc__error__unpack(NULL, m->len, m->data);
		struct crisp_error err;
		if (!e || m->nfds || e->code == CRISP_E_OK || e->code >= CRISP_E__MAX) {
			if (e)
				crisp_ipc__error__free_unpacked(e, NULL);
			return ipc_violation(c, "malformed error reply");
		}
		err.code = e->code;
		snprintf(err.msg, sizeof(err.msg), "%s", e->message);
		crisp_ipc__error__free_unpacked(e, NULL);
		ipc_reply_fn fn = p->fn;
		void *arg = p->arg;
		pending_free(p);
		fn(NULL, NULL, &err, arg);
		return;
	}
	if (m->type != p->type || m->nfds > p->reply_nfds)
		return ipc_violation(c, "reply %s with %u fds to a %s call", ipc_type_name(m->type),
				     m->nfds, ipc_type_name(p->type));
	/* The reply lives only for the callback (ipc_reply_fn): an arena
	 * unpacks it with a few mallocs and frees it with as many. */
	reply = arena_unpack(&arena, p->reply_desc, m->len, m->data);
	if (!reply && errno == ENOMEM) {
		/* Our shortage, not the peer's fault: that call fails, the
		 * channel stays. */
		struct crisp_error err;
		ipc_reply_fn fn = p->fn;
		void *arg = p->arg;

		err_set(&err, CRISP_E_INTERNAL, "out of memory unpacking a %zu-byte reply to %s",
			m->len, ipc_type_name(p->type));
		pending_free(p);
		fn(NULL, NULL, &err, arg);
		return;
	}
	if (!reply)
		return ipc_violation(c, "malformed reply to %s", ipc_type_name(p->type));
	ipc_reply_fn fn = p->fn;
	void *arg = p->arg;
	pending_free(p);
	fn(reply, m, NULL, arg);
	arena_release(&arena);
}

/* Returns false when the channel must not be touched any more. */
static bool handle_frame(struct ipc_chan *c, const struct ipc_hdr *h, const uint8_t *data)
{
	struct ipc_msg m = { .type = h->type,
			     .flags = h->flags,
			     .id = h->id,
			     .data = data,
			     .len = h->len,
			     .nfds = h->nfds };

	/* fds queue up in arrival order and each frame takes as many as it
	 * announces. The kernel may deliver a frame's fds together with bytes of
	 * the frame before it, so a peer that lies about which frame its fds
	 * belong to cannot be caught here; it gains nothing by it either: the
	 * dispatch table still checks the count each message type allows. */
	if (h->nfds > c->nqfds) {
		ipc_violation(c, "frame announces %u fds, %u arrived", h->nfds, c->nqfds);
		return false;
	}
	memcpy(m.fds, c->qfds, sizeof(int) * h->nfds);
	memmove(c->qfds, c->qfds + h->nfds, sizeof(int) * (c->nqfds - h->nfds));
	c->nqfds -= h->nfds;

	if (!c->ready)
		handle_hello(c, &m);
	else if (h->flags & ~IPC_F_REPLY)
		ipc_violation(c, "unknown flags 0x%x", h->flags);
	else if (h->flags & IPC_F_REPLY)
		handle_reply(c, &m);
	else if (m.type == IPC_HELLO)
		ipc_violation(c, "second hello");
	else
		c->ops->on_request(c, &m, c->arg);
	close_fds(m.fds, m.nfds);
	return !c->closed;
}

/* Whether the first frame of the input, between reads the one still
 * incomplete, is a secret one. Its header tells once it is all there; a
 * header alone holds nothing secret. */
static bool in_holds_secret(const struct ipc_chan *c)
{
	struct ipc_hdr h;

	if (c->inlen < sizeof(h))
		return false;
	memcpy(&h, c->in, sizeof(h));
	return !(h.flags & IPC_F_REPLY) && ipc_type_secret(h.type);
}

/* realloc() may move the input and leave the old bytes in freed memory:
 * when they begin a secret frame, move them ourselves and wipe the old
 * copy. (Secret frames are small: the extra copy costs nothing.) */
static void in_resize(struct ipc_chan *c, size_t cap)
{
	uint8_t *in;

	if (!in_holds_secret(c)) {
		if (c->in)
			RELEASED(c->in, c->incap);
		c->in = xrealloc(c->in, cap);
	} else {
		in = xmalloc(cap);
		memcpy(in, c->in, c->inlen);
		explicit_bzero(c->in, c->inlen);
		RELEASED(c->in, c->incap);
		free(c->in);
		c->in = in;
	}
	c->incap = cap;
}

static int read_some(struct ipc_chan *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *cmsg;
	ssize_t n;

	if (c->incap - c->inlen < IPC_READ_CHUNK)
		in_resize(c, c->inlen + IPC_READ_CHUNK);
	iov.iov_base = c->in + c->inlen;
	iov.iov_len = c->incap - c->inlen;
	n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : -errno;
	for (cmsg = CMSG_FIRSTHDR(&mh); cmsg; cmsg = CMSG_NXTHDR(&mh, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(cmsg);
		for (unsigned i = 0; i < k; i++) {
			if (c->nqfds < IPC_MAX_QUEUED_FDS)
				c->qfds[c->nqfds++] = fds[i];
			else
				safe_close(fds[i]), mh.msg_flags |= MSG_CTRUNC;
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	if (n == 0)
		return 0;
	c->inlen += n;
	return 1;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	size_t off = 0;
	int r;

	c->busy++;
	r = read_some(c);
	if (r == 0)
		chan_close(c, "peer closed the channel");
	else if (r == -EMSGSIZE)
		ipc_violation(c, "too many file descriptors");
	else if (r < 0)
		chan_close(c, r == -ECONNRESET ? "peer closed the channel" : "read failed");
	while (!c->closed && c->inlen - off >= sizeof(struct ipc_hdr)) {
		struct ipc_hdr h;
		memcpy(&h, c->in + off, sizeof(h));
		if (h.len > IPC_MAX_PAYLOAD || h.nfds > IPC_MAX_FDS || h.reserved[0] ||
		    h.reserved[1] || h.reserved[2]) {
			ipc_violation(c, "bad frame header (len %u, %u fds)", h.len, h.nfds);
			break;
		}
		if (c->inlen - off < sizeof(h) + h.len)
			break;
		bool go_on = handle_frame(c, &h, c->in + off + sizeof(h));
		/* The handler has unpacked (and wiped) its copy of the secret;
		 * this is the frame it came in, the only other one we made. */
		if (!(h.flags & IPC_F_REPLY) && ipc_type_secret(h.type))
			explicit_bzero(c->in + off + sizeof(h), h.len);
		if (!go_on)
			break;
		if (c->free_me)
			break;
		off += sizeof(h) + h.len;
	}
	if (!c->closed && off) {
		size_t rest = c->inlen - off;

		memmove(c->in, c->in + off, rest);
		c->inlen = rest;
		/* The bytes moved are also still where they were, past the new
		 * end: wipe that copy when they begin a secret frame. */
		if (in_holds_secret(c))
			explicit_bzero(c->in + (off > rest ? off : rest), off > rest ? rest : off);
		/* give back memory after a large message */
		if (c->incap > 4 * IPC_READ_CHUNK && c->inlen < IPC_READ_CHUNK)
			in_resize(c, IPC_READ_CHUNK);
	}
	c->busy--;
	if (c->free_me)
		ipc_chan_free(c);
}

struct ipc_chan *ipc_chan_new(struct event_base *base, int fd, const struct ipc_chan_ops *ops,
			      void *arg)
{
	struct ipc_chan *c = xcalloc(1, sizeof(*c));
	CrispIpc__Hello hello = CRISP_IPC__HELLO__INIT;

	c->base = base;
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	snprintf(c->peer, sizeof(c->peer), "%s", ops->peer);
	TAILQ_INIT(&c->outq);
	LIST_INIT(&c->pending);
	fd_set_nonblock(fd, true);
	fd_set_cloexec(fd, true);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
	event_add(c->rev, NULL);
	hello.version = ops->version;
	hello.process = (char *)ops->self;
	hello.pid = getpid();
	ipc_send(c, IPC_HELLO, 0, 0, &hello.base, NULL, 0);
	return c;
}

void ipc_chan_free(struct ipc_chan *c)
{
	struct outframe *f;
	struct pending *p;

	if (!c)
		return;
	if (c->busy > 0) {
		/* Called from one of our own callbacks: finish when it returns. */
		c->free_me = true;
		if (!c->closed) {
			c->closed = true;
			event_del(c->rev);
			event_del(c->wev);
			while ((p = LIST_FIRST(&c->pending)))
				pending_fail(p, CRISP_E_UNAVAILABLE, "channel to %s closed",
					     c->peer);
		}
		return;
	}
	c->closed = true;
	/* Callbacks that free the channel again only mark it. */
	c->busy++;
	while ((p = LIST_FIRST(&c->pending)))
		pending_fail(p, CRISP_E_UNAVAILABLE, "channel to %s closed", c->peer);
	c->busy--;
	while ((f = TAILQ_FIRST(&c->outq))) {
		TAILQ_REMOVE(&c->outq, f, entry);
		outframe_free(f);
	}
	close_fds(c->qfds, c->nqfds);
	event_free(c->rev);
	event_free(c->wev);
	safe_close(c->fd);
	/* Frames never handled (the channel closed first) may hold secrets. */
	if (c->in) {
		explicit_bzero(c->in, c->inlen);
		RELEASED(c->in, c->incap);
	}
	free(c->in);
	free(c);
}

bool ipc_chan_ready(const struct ipc_chan *c)
{
	return c && c->ready && !c->closed;
}
int ipc_chan_peer_pid(const struct ipc_chan *c)
{
	return c ? c->peer_pid : 0;
}
const char *ipc_chan_peer(const struct ipc_chan *c)
{
	return c ? c->peer : "?";
}
