/* Unit tests of ipc/: the framing, the hello, request ids, fd passing,
 * timeouts, the dispatch policy and the protocol violations, over real unix
 * socketpairs driven by a real libevent loop.
 *
 * Two kinds of peers: two ipc channels talking to each other ("pair"), or a
 * channel and a raw socket the test writes bytes to ("raw"), for what a
 * well-behaved channel never sends. What the channel logs is captured, so a
 * violation can be checked for its reason, not just for the close. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/ipc.h"
#include "ipc/msg.h"
#include "tests/unit/tap.h"

#define TYPE_UNKNOWN 0x7fff
#define HDR_LEN 16

static struct event_base *base;
static int event_seq; /* orders callbacks across ends */

/* ---- log capture ------------------------------------------------------------ */

static int log_fd = -1, real_stderr = -1;
static char log_buf[1 << 20];

static void log_capture_init(void)
{
	real_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	log_fd = memfd_create("crisp-test-log", MFD_CLOEXEC);
	if (real_stderr < 0 || log_fd < 0 || dup2(log_fd, STDERR_FILENO) < 0) {
		printf("Bail out! cannot capture stderr: %s\n", strerror(errno));
		exit(99);
	}
}

/* Everything logged since the last log_reset(). */
static const char *log_text(void)
{
	ssize_t n = pread(log_fd, log_buf, sizeof(log_buf) - 1, 0);
	log_buf[n < 0 ? 0 : n] = '\0';
	return log_buf;
}

/* Pass what was logged on to the real stderr (the test's .log) and start over. */
static void log_reset(void)
{
	const char *t = log_text();
	(void)!write(real_stderr, t, strlen(t));
	(void)!ftruncate(log_fd, 0);
	lseek(log_fd, 0, SEEK_SET); /* shared with fd 2 */
}

/* ---- running the loop ----------------------------------------------------------- */

static bool deadline_hit;

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	deadline_hit = true;
}

/* Run the loop until cond holds; 5 s is far more than any case needs, so
 * hitting it is a failure, not a flake. */
#define RUN_UNTIL(cond)                                                              \
	({                                                                           \
		struct event *_t = evtimer_new(base, on_deadline, NULL);             \
		struct timeval _tv = { 5, 0 };                                       \
		deadline_hit = false;                                                \
		evtimer_add(_t, &_tv);                                               \
		while (!(cond) && !deadline_hit)                                     \
			event_base_loop(base, EVLOOP_ONCE);                          \
		event_free(_t);                                                      \
		if (!(cond))                                                         \
			diag("timed out waiting for %s (line %d)", #cond, __LINE__); \
		(bool)(cond);                                                        \
	})

/* Run whatever is ready now, without waiting. */
static void run_ready(void)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* ---- one end of a channel, and what happened to it ------------------------------ */

enum {
	ST_STARTING = 1,
	ST_RUNNING = 2
};

struct end {
	struct ipc_chan *chan;
	struct ipc_chan_ops ops;
	const struct ipc_handler *table;
	size_t ntable;
	uint32_t state;
	/* what happened */
	int ready, closed, requests, after_free, close_seq, dispatch_rc;
	char why[64];
	struct ipc_msg last; /* header fields of the last request */
	uint64_t seqs[16], last_seq;
	int nseqs;
	char *text; /* the string of the last payload that has one */
	bool fd_cloexec;
	struct {
		uint16_t type;
		uint32_t id;
	} held[16];
	int nheld;
	/* behaviour */
	bool hold, dont_take_fd, keep_on_close, free_on_ready, free_on_request, violate_on_request;
	size_t big_reply;
	bool freed;
};

static void set_text(struct end *e, const char *s)
{
	free(e->text);
	e->text = xstrdup(s);
}

static void end_free(struct end *e)
{
	ipc_chan_free(e->chan);
	e->chan = NULL;
	e->freed = true;
}

static void end_done(struct end *e)
{
	end_free(e);
	free(e->text);
	e->text = NULL;
}

static void note_callback(struct end *e)
{
	if (e->freed)
		e->after_free++;
}

static void cb_ready(struct ipc_chan *chan, void *arg)
{
	struct end *e = arg;
	note_callback(e);
	e->ready++;
	if (e->free_on_ready)
		end_free(e);
}

static void cb_close(struct ipc_chan *chan, const char *why, void *arg)
{
	struct end *e = arg;
	note_callback(e);
	e->closed++;
	e->close_seq = ++event_seq;
	snprintf(e->why, sizeof(e->why), "%s", why);
	if (!e->keep_on_close)
		end_free(e); /* as every owner does */
}

static void cb_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	struct end *e = arg;

	note_callback(e);
	e->requests++;
	e->last = *msg;
	e->last.data = NULL;
	if (e->free_on_request)
		return end_free(e);
	if (e->violate_on_request)
		return ipc_violation(chan, "handler refuses %s", ipc_type_name(msg->type));
	e->dispatch_rc = ipc_dispatch(e->table, e->ntable, chan, msg, e->state, e);
}

/* ---- the dispatch table of the tests' "helper" ------------------------------------ */

static void h_ping(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	struct end *e = arg;
	uint64_t seq = ((CrispIpc__HealthPing *)req)->seq;

	if (e->nseqs < (int)ARRAY_SIZE(e->seqs))
		e->seqs[e->nseqs++] = seq;
	e->last_seq = seq;
}

static void reply_health(struct ipc_chan *chan, uint16_t type, uint32_t id, const char *message)
{
	CrispIpc__HealthGetReply r = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	struct ipc_msg req = { .type = type, .id = id };

	r.ready = true;
	r.reason = (char *)"NetworkReady";
	r.message = (char *)message;
	ipc_reply(chan, &req, &r.base, NULL, 0);
}

static void h_health_get(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	struct end *e = arg;
	char text[64];

	if (e->hold) {
		if (e->nheld < (int)ARRAY_SIZE(e->held)) {
			e->held[e->nheld].type = msg->type;
			e->held[e->nheld++].id = msg->id;
		}
		return;
	}
	snprintf(text, sizeof(text), "answer to %u", msg->id);
	reply_health(chan, msg->type, msg->id, text);
}

static void reply_held(struct end *e, int i)
{
	char text[64];
	snprintf(text, sizeof(text), "answer to %u", e->held[i].id);
	reply_health(e->chan, e->held[i].type, e->held[i].id, text);
}

static void h_pod_cidr(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	struct end *e = arg;
	const char *cidr = ((CrispIpc__PodCidrSetRequest *)req)->pod_cidr;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	set_text(e, cidr);
	if (streq(cidr, "bad")) {
		struct crisp_error err;
		err_set(&err, CRISP_E_INVALID, "bad pod CIDR '%s'", cidr);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

static void h_channel_open(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			   void *arg)
{
	struct end *e = arg;
	const char *peer = ((CrispIpc__ChannelOpen *)req)->peer;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	set_text(e, peer);
	if (!e->dont_take_fd) {
		int fd = ipc_msg_take_fd(msg, 0);
		e->fd_cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
		dprintf(fd, "via %s", peer);
		close(fd);
	}
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

/* Replies with the read end of a pipe that already holds a message. */
static void h_fd_reply(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply r = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	(void)!write(p[1], "from the reply", 14);
	close(p[1]);
	ipc_reply(chan, msg, &r.base, p, 1);
}

static char *pattern(size_t n, char first)
{
	char *s = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(first + i % 23);
	s[n] = '\0';
	return s;
}

static void h_big(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	struct end *e = arg;
	CrispIpc__ProcessStateSet *set = (CrispIpc__ProcessStateSet *)req;
	CrispIpc__HealthGetReply r = CRISP_IPC__HEALTH_GET_REPLY__INIT;

	if (set->n_processes == 1)
		set_text(e, set->processes[0]->last_exit);
	r.message = pattern(e->big_reply, 'A');
	ipc_reply(chan, msg, &r.base, NULL, 0);
	free(r.message);
}

/* What the pull handler saw of its frame: where it was, and whether the
 * marker was in it (or the check after it proves nothing). */
static const char SECRET_MARKER[] = "crisp-unit-secret-5f1c9a77e2b04d3e";
static const uint8_t *pull_frame;
static size_t pull_frame_len;
static bool pull_frame_had_marker;

static bool has_marker(const void *p, size_t n)
{
	return p && memmem(p, n, SECRET_MARKER, strlen(SECRET_MARKER)) != NULL;
}

static void h_pull(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	struct end *e = arg;
	CrispIpc__ImagePullRequest *pull = (CrispIpc__ImagePullRequest *)req;
	CrispIpc__ImagePullReply r = CRISP_IPC__IMAGE_PULL_REPLY__INIT;

	pull_frame = msg->data;
	pull_frame_len = msg->len;
	pull_frame_had_marker = has_marker(msg->data, msg->len);
	set_text(e, pull->auth ? pull->auth->password : "");
	r.image_ref = (char *)"sha256:0";
	ipc_reply(chan, msg, &r.base, NULL, 0);
}

static const struct ipc_handler test_table[] = {
	{ IPC_SUP_HEALTH_PING, &crisp_ipc__health_ping__descriptor, 0, 16, IPC_ANY_STATE, h_ping },
	{ IPC_SUP_CHANNEL_OPEN, &crisp_ipc__channel_open__descriptor, 1, IPC_SMALL, ST_RUNNING,
	  h_channel_open },
	{ IPC_SUP_PROCESS_STATE_SET, &crisp_ipc__process_state_set__descriptor, 0, 2u << 20,
	  IPC_ANY_STATE, h_big },
	{ IPC_NETD_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, h_health_get },
	{ IPC_NETD_POD_CIDR_SET, &crisp_ipc__pod_cidr_set_request__descriptor, 0, 64, ST_RUNNING,
	  h_pod_cidr },
	{ IPC_RUNTIMED_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, h_fd_reply },
	{ IPC_IMAGED_IMAGE_PULL, &crisp_ipc__image_pull_request__descriptor, 0, 1u << 20,
	  IPC_ANY_STATE, h_pull },
};

static void end_init(struct end *e, const char *self, const char *peer, uint32_t version)
{
	memset(e, 0, sizeof(*e));
	e->ops.self = self;
	e->ops.peer = peer;
	e->ops.version = version;
	e->ops.on_ready = cb_ready;
	e->ops.on_request = cb_request;
	e->ops.on_close = cb_close;
	e->table = test_table;
	e->ntable = ARRAY_SIZE(test_table);
	e->state = ST_RUNNING;
	e->dispatch_rc = 1;
}

/* The usual two ends: a frontend and its netd. */
static void ends_init(struct end *a, struct end *b)
{
	end_init(a, "frontend", "netd", IPC_NETD_VERSION);
	end_init(b, "netd", "frontend", IPC_NETD_VERSION);
}

static void socketpair_or_bail(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		printf("Bail out! socketpair: %s\n", strerror(errno));
		exit(99);
	}
}

static void pair(struct end *a, struct end *b)
{
	int sv[2];
	socketpair_or_bail(sv);
	a->chan = ipc_chan_new(base, sv[0], &a->ops, a);
	b->chan = ipc_chan_new(base, sv[1], &b->ops, b);
}

static bool pair_ready(struct end *a, struct end *b)
{
	pair(a, b);
	return RUN_UNTIL(a->ready && b->ready);
}

/* ---- calls ------------------------------------------------------------------------- */

struct call {
	int done, seq;
	bool failed, got_reply, got_msg;
	struct crisp_error err;
	uint32_t id;
	uint16_t type, flags;
	bool ready;
	char *text;
	const ProtobufCMessageDescriptor *desc;
	int fd;
	struct end *free_end; /* the callback frees this end's channel */
};

static void on_reply(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		     void *arg)
{
	struct call *c = arg;

	c->done++;
	c->seq = ++event_seq;
	c->got_reply = reply != NULL;
	c->got_msg = msg != NULL;
	if (err) {
		c->failed = true;
		c->err = *err;
	} else if (reply && msg) {
		c->id = msg->id;
		c->type = msg->type;
		c->flags = msg->flags;
		c->desc = reply->descriptor;
		if (reply->descriptor == &crisp_ipc__health_get_reply__descriptor) {
			CrispIpc__HealthGetReply *r = (CrispIpc__HealthGetReply *)reply;
			c->ready = r->ready;
			free(c->text);
			c->text = xstrdup(r->message);
		}
		if (msg->nfds)
			c->fd = ipc_msg_take_fd(msg, 0);
	}
	if (c->free_end)
		end_free(c->free_end);
}

#define CALL_INIT        \
	{                \
		.fd = -1 \
	}

static void call_done(struct call *c)
{
	free(c->text);
	c->text = NULL;
	c->fd = safe_close(c->fd);
}

static uint32_t call_health(struct end *e, struct call *c, unsigned timeout_ms)
{
	CrispIpc__HealthGetRequest req = CRISP_IPC__HEALTH_GET_REQUEST__INIT;
	return ipc_call(e->chan, IPC_NETD_HEALTH_GET, &req.base, NULL, 0,
			&crisp_ipc__health_get_reply__descriptor, 0, timeout_ms, on_reply, c);
}

static void send_ping(struct end *e, uint64_t seq)
{
	CrispIpc__HealthPing ping = CRISP_IPC__HEALTH_PING__INIT;
	ping.seq = seq;
	ipc_send(e->chan, IPC_SUP_HEALTH_PING, 0, 0, &ping.base, NULL, 0);
}

/* Everything `from` sent before has been handled by `to` once this returns
 * true: frames are handled in order. */
static bool sync_ends(struct end *from, struct end *to)
{
	static uint64_t seq = 1000;
	uint64_t s = ++seq;
	send_ping(from, s);
	return RUN_UNTIL(to->closed || to->last_seq == s) && !to->closed;
}

/* ---- raw frames --------------------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len;
};

static void buf_add(struct buf *b, const void *d, size_t n)
{
	b->p = xrealloc(b->p, b->len + n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* The wire header, written field by field as ipc/ipc.c documents it: u32 len,
 * u16 type, u16 flags, u32 id, u8 nfds, 3 reserved bytes, native endian. */
static void buf_hdr(struct buf *b, uint32_t len, uint16_t type, uint16_t flags, uint32_t id,
		    uint8_t nfds, const uint8_t reserved[3])
{
	uint8_t h[HDR_LEN] = { 0 };
	memcpy(h, &len, 4);
	memcpy(h + 4, &type, 2);
	memcpy(h + 6, &flags, 2);
	memcpy(h + 8, &id, 4);
	h[12] = nfds;
	if (reserved)
		memcpy(h + 13, reserved, 3);
	buf_add(b, h, sizeof(h));
}

static void buf_frame_bytes(struct buf *b, uint16_t type, uint16_t flags, uint32_t id, uint8_t nfds,
			    const void *payload, size_t len)
{
	buf_hdr(b, (uint32_t)len, type, flags, id, nfds, NULL);
	buf_add(b, payload, len);
}

static void buf_frame(struct buf *b, uint16_t type, uint16_t flags, uint32_t id, uint8_t nfds,
		      const ProtobufCMessage *m)
{
	size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *p = xmalloc(n);
	if (m)
		protobuf_c_message_pack(m, p);
	buf_frame_bytes(b, type, flags, id, nfds, p, n);
	free(p);
}

static void buf_hello(struct buf *b, const char *process, uint32_t version)
{
	CrispIpc__Hello h = CRISP_IPC__HELLO__INIT;
	h.version = version;
	h.process = (char *)process;
	h.pid = getpid();
	buf_frame(b, IPC_HELLO, 0, 0, 0, &h.base);
}

static void buf_ping(struct buf *b, uint32_t id, uint64_t seq)
{
	CrispIpc__HealthPing ping = CRISP_IPC__HEALTH_PING__INIT;
	ping.seq = seq;
	buf_frame(b, IPC_SUP_HEALTH_PING, 0, id, 0, &ping.base);
}

static void buf_reset(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

/* Send b on the raw socket, fds with its first byte; b is emptied. */
static void raw_send(int fd, struct buf *b, const int *fds, unsigned nfds)
{
	size_t off = 0;

	while (off < b->len) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { b->p + off, b->len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (off == 0 && nfds) {
			struct cmsghdr *cmsg;
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cmsg = CMSG_FIRSTHDR(&mh);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
		}
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			diag("raw send: %s", strerror(errno));
			break;
		}
		off += n;
	}
	buf_reset(b);
}

static bool read_full(int fd, void *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;
		if (poll(&pfd, 1, 2000) <= 0)
			return false;
		r = read(fd, (char *)p + off, n - off);
		if (r <= 0)
			return false;
		off += r;
	}
	return true;
}

struct rawframe {
	uint32_t len, id;
	uint16_t type, flags;
	uint8_t nfds, reserved[3];
	uint8_t *data;
};

/* Read one frame the channel sent to the raw end (no fds expected). */
static bool raw_read_frame(int fd, struct rawframe *f)
{
	uint8_t h[HDR_LEN];

	memset(f, 0, sizeof(*f));
	if (!read_full(fd, h, sizeof(h)))
		return false;
	memcpy(&f->len, h, 4);
	memcpy(&f->type, h + 4, 2);
	memcpy(&f->flags, h + 6, 2);
	memcpy(&f->id, h + 8, 4);
	f->nfds = h[12];
	memcpy(f->reserved, h + 13, 3);
	if (f->len > (1u << 20))
		return false;
	f->data = xmalloc(f->len);
	return read_full(fd, f->data, f->len);
}

/* A channel whose peer is the returned raw socket; with hello, the raw end
 * has introduced itself properly and the channel is ready. The channel's own
 * hello has been read off the raw end already. */
static int raw_pair(struct end *e, bool hello)
{
	struct rawframe f;
	struct buf b = { 0 };
	int sv[2];

	socketpair_or_bail(sv);
	e->chan = ipc_chan_new(base, sv[0], &e->ops, e);
	if (!raw_read_frame(sv[1], &f) || f.type != IPC_HELLO)
		diag("no hello from the channel");
	free(f.data);
	if (hello) {
		buf_hello(&b, e->ops.peer, e->ops.version);
		raw_send(sv[1], &b, NULL, 0);
		RUN_UNTIL(e->ready);
	}
	return sv[1];
}

/* The channel has closed its end: the raw end reads EOF (after whatever the
 * channel had sent). */
static bool raw_eof(int fd)
{
	char buf[4096];
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&pfd, 1, 2000) <= 0)
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
}

/* Like RUN_UNTIL(sync): all the raw end sent before is handled. */
static bool raw_sync(int raw, struct end *e)
{
	static uint64_t seq = 5000;
	struct buf b = { 0 };
	uint64_t s = ++seq;

	buf_ping(&b, 0, s);
	raw_send(raw, &b, NULL, 0);
	return RUN_UNTIL(e->closed || e->last_seq == s) && !e->closed;
}

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void pipe_or_bail(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0) {
		printf("Bail out! pipe: %s\n", strerror(errno));
		exit(99);
	}
}

/* Read what the pipe holds until EOF: NULL if it does not reach EOF. */
static char *pipe_read_all(int fd)
{
	struct buf b = { 0 };
	char *s;

	for (;;) {
		char tmp[256];
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&pfd, 1, 2000) <= 0)
			return buf_reset(&b), NULL;
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0)
			return buf_reset(&b), NULL;
		if (n == 0)
			break;
		buf_add(&b, tmp, n);
	}
	s = xmalloc(b.len + 1);
	if (b.len) /* b.p is NULL when nothing was read */
		memcpy(s, b.p, b.len);
	s[b.len] = '\0';
	buf_reset(&b);
	return s;
}

/* A violation closes the channel with "protocol violation" and logs why. */
static void expect_violation(struct end *e, int raw, const char *reason, const char *what)
{
	RUN_UNTIL(e->closed);
	is_str(e->why, "protocol violation", "%s: closed as a protocol violation", what);
	like(log_text(), reason, "%s: the log says why", what);
	if (raw >= 0)
		ok(raw_eof(raw), "%s: the channel's socket is closed", what);
	is_int(e->after_free, 0, "%s: no callback after the channel was freed", what);
}

/* ====================================================================================== */

static void test_hello(void)
{
	struct end a, b;
	struct rawframe f;
	CrispIpc__Hello *h;
	int raw;

	ends_init(&a, &b);
	pair(&a, &b);
	ok(!ipc_chan_ready(a.chan) && !ipc_chan_ready(b.chan),
	   "not ready before the hellos arrive");
	ok(RUN_UNTIL(a.ready && b.ready), "hello exchange: both ends become ready");
	ok(ipc_chan_ready(a.chan) && ipc_chan_ready(b.chan), "ipc_chan_ready after the hellos");
	is_int(a.ready + b.ready, 2, "on_ready runs once per end");
	is_int(ipc_chan_peer_pid(a.chan), getpid(), "the hello tells the peer's pid");
	is_str(ipc_chan_peer(a.chan), "netd", "ipc_chan_peer names the peer");
	is_int(a.closed + b.closed, 0, "nobody closed");
	end_done(&a);
	end_done(&b);
	ok(!ipc_chan_ready(NULL) && ipc_chan_peer_pid(NULL) == 0 && streq(ipc_chan_peer(NULL), "?"),
	   "the accessors take NULL");

	/* What the hello looks like on the wire. */
	end_init(&a, "frontend", "netd", 7);
	{
		int sv[2];
		socketpair_or_bail(sv);
		a.chan = ipc_chan_new(base, sv[0], &a.ops, &a);
		raw = sv[1];
	}
	ok(raw_read_frame(raw, &f), "the channel sends a frame at once");
	is_int(f.type, IPC_HELLO, "hello: type");
	ok(f.flags == 0 && f.id == 0 && f.nfds == 0, "hello: no flags, id or fds");
	ok(!f.reserved[0] && !f.reserved[1] && !f.reserved[2], "hello: reserved bytes are 0");
	h = crisp_ipc__hello__unpack(NULL, f.len, f.data);
	ok(h != NULL, "hello: the payload is a Hello");
	if (h) {
		is_int(h->version, 7, "hello: our version");
		is_str(h->process, "frontend", "hello: our name");
		is_int(h->pid, getpid(), "hello: our pid");
		crisp_ipc__hello__free_unpacked(h, NULL);
	}
	free(f.data);
	end_done(&a);
	close(raw);
}

static void test_hello_mismatch(void)
{
	struct end a, b;
	struct buf buf = { 0 };
	int raw;

	/* Versions differ: each end refuses the other. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	end_init(&b, "netd", "frontend", 2);
	pair(&a, &b);
	RUN_UNTIL(a.closed && b.closed);
	is_str(a.why, "protocol violation", "version mismatch: violation on one end");
	is_str(b.why, "protocol violation", "version mismatch: violation on the other end");
	is_int(a.ready + b.ready, 0, "version mismatch: nobody becomes ready");
	like(log_text(), "version 2, expected 'netd' version 1", "version mismatch: logged");

	/* The wrong process at the other end. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	raw = raw_pair(&a, false);
	buf_hello(&buf, "imaged", 1);
	raw_send(raw, &buf, NULL, 0);
	expect_violation(&a, raw, "hello from 'imaged'", "peer name mismatch");
	is_int(a.ready, 0, "peer name mismatch: not ready");
	close(raw);

	/* Anything before the hello. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	raw = raw_pair(&a, false);
	buf_ping(&buf, 1, 1);
	raw_send(raw, &buf, NULL, 0);
	expect_violation(&a, raw, "expected hello, got IPC_SUP_HEALTH_PING",
			 "request before hello");
	is_int(a.requests, 0, "request before hello: not handled");
	close(raw);

	/* A hello that does not parse. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	raw = raw_pair(&a, false);
	buf_frame_bytes(&buf, IPC_HELLO, 0, 0, 0, "\xff\xff\xff", 3);
	raw_send(raw, &buf, NULL, 0);
	expect_violation(&a, raw, "malformed hello", "malformed hello");
	close(raw);

	/* A hello with flags. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	raw = raw_pair(&a, false);
	{
		CrispIpc__Hello h = CRISP_IPC__HELLO__INIT;
		h.version = 1;
		h.process = (char *)"netd";
		buf_frame(&buf, IPC_HELLO, IPC_F_REPLY, 0, 0, &h.base);
	}
	raw_send(raw, &buf, NULL, 0);
	expect_violation(&a, raw, "expected hello", "hello with flags");
	close(raw);

	/* A hello with an fd. */
	log_reset();
	end_init(&a, "frontend", "netd", 1);
	raw = raw_pair(&a, false);
	{
		CrispIpc__Hello h = CRISP_IPC__HELLO__INIT;
		int p[2];
		pipe_or_bail(p);
		h.version = 1;
		h.process = (char *)"netd";
		buf_frame(&buf, IPC_HELLO, 0, 0, 1, &h.base);
		raw_send(raw, &buf, &p[1], 1);
		close(p[1]);
		expect_violation(&a, raw, "expected hello", "hello with an fd");
		char *got = pipe_read_all(p[0]);
		ok(got != NULL, "hello with an fd: the fd is closed");
		free(got);
		close(p[0]);
	}
	close(raw);
	log_reset();
}

static void test_call_reply(void)
{
	struct end a, b;
	struct call c1 = CALL_INIT, c2 = CALL_INIT, cs[3] = { CALL_INIT, CALL_INIT, CALL_INIT };
	uint32_t id1, id2, ids[3];
	char want[64];

	ends_init(&a, &b);
	pair_ready(&a, &b);
	id1 = call_health(&a, &c1, 1000);
	ok(id1 != 0, "ipc_call returns a call id");
	ok(RUN_UNTIL(c1.done), "the reply arrives");
	ok(!c1.failed && c1.got_reply && c1.got_msg, "the call succeeded with a reply");
	is_int(b.last.id, id1, "the request carries the call id");
	is_int(b.last.flags, 0, "the request has no flags");
	is_int(b.last.type, IPC_NETD_HEALTH_GET, "the request has its type");
	is_int(c1.id, id1, "the reply echoes the id");
	is_int(c1.flags, IPC_F_REPLY, "the reply is flagged a reply");
	is_int(c1.type, IPC_NETD_HEALTH_GET, "the reply has the request's type");
	ok(c1.desc == &crisp_ipc__health_get_reply__descriptor && c1.ready,
	   "the reply is unpacked with the caller's descriptor");
	snprintf(want, sizeof(want), "answer to %u", id1);
	is_str(c1.text, want, "the reply's payload arrives");

	id2 = call_health(&a, &c2, 0);
	ok(id2 != 0 && id2 != id1, "the next call gets another id");
	RUN_UNTIL(c2.done);
	snprintf(want, sizeof(want), "answer to %u", id2);
	is_str(c2.text, want, "the second reply is for the second call");
	sync_ends(&b, &a);
	is_int(c1.done + c2.done, 2, "each callback ran exactly once");

	/* Replies in another order than the requests. */
	b.hold = true;
	for (int i = 0; i < 3; i++)
		ids[i] = call_health(&a, &cs[i], 1000);
	RUN_UNTIL(b.nheld == 3);
	for (int i = 2; i >= 0; i--)
		reply_held(&b, i);
	RUN_UNTIL(cs[0].done && cs[1].done && cs[2].done);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "answer to %u", ids[i]);
		is_str(cs[i].text, want, "out-of-order replies: call %d gets its own reply", i);
	}
	ok(cs[2].seq < cs[1].seq && cs[1].seq < cs[0].seq, "out-of-order replies: in reply order");
	ok(ipc_chan_ready(a.chan) && ipc_chan_ready(b.chan), "both ends still up");

	call_done(&c1);
	call_done(&c2);
	for (int i = 0; i < 3; i++)
		call_done(&cs[i]);
	end_done(&a);
	end_done(&b);
}

static void test_error_reply(void)
{
	struct end a, b;
	struct call c = CALL_INIT, c2 = CALL_INIT;
	CrispIpc__PodCidrSetRequest req = CRISP_IPC__POD_CIDR_SET_REQUEST__INIT;

	ends_init(&a, &b);
	pair_ready(&a, &b);
	req.pod_cidr = (char *)"bad";
	ipc_call(a.chan, IPC_NETD_POD_CIDR_SET, &req.base, NULL, 0, &crisp_ipc__empty__descriptor,
		 0, 1000, on_reply, &c);
	RUN_UNTIL(c.done);
	ok(c.failed, "an Error reply fails the call");
	is_int(c.err.code, CRISP_E_INVALID, "the error code crosses the channel");
	is_str(c.err.msg, "bad pod CIDR 'bad'", "the error message crosses the channel");
	ok(!c.got_reply && !c.got_msg, "a failed call gets no reply and no msg");
	ok(ipc_chan_ready(a.chan), "an error reply is not a violation");

	req.pod_cidr = (char *)"10.88.0.0/16";
	ipc_call(a.chan, IPC_NETD_POD_CIDR_SET, &req.base, NULL, 0, &crisp_ipc__empty__descriptor,
		 0, 1000, on_reply, &c2);
	RUN_UNTIL(c2.done);
	ok(!c2.failed && c2.desc == &crisp_ipc__empty__descriptor, "an Empty reply");
	is_str(b.text, "10.88.0.0/16", "the request payload arrived");
	call_done(&c);
	call_done(&c2);
	end_done(&a);
	end_done(&b);
}

static void test_fds(void)
{
	struct end a, b;
	struct call c = CALL_INIT, c2 = CALL_INIT, c3 = CALL_INIT;
	CrispIpc__ChannelOpen co = CRISP_IPC__CHANNEL_OPEN__INIT;
	CrispIpc__HealthGetRequest hreq = CRISP_IPC__HEALTH_GET_REQUEST__INIT;
	int p[2], fds[1];
	char *got;

	ends_init(&a, &b);
	pair_ready(&a, &b);

	/* An fd with the request: the handler writes through it. */
	pipe_or_bail(p);
	fds[0] = p[1];
	co.peer = (char *)"imaged";
	ipc_call(a.chan, IPC_SUP_CHANNEL_OPEN, &co.base, fds, 1, &crisp_ipc__empty__descriptor, 0,
		 1000, on_reply, &c);
	is_int(fds[0], -1, "ipc_call takes the fd");
	RUN_UNTIL(c.done);
	ok(!c.failed, "a request with an fd succeeds");
	got = pipe_read_all(p[0]);
	is_str(got, "via imaged",
	       "the passed fd works on the other side, and every copy is closed");
	free(got);
	ok(b.fd_cloexec, "received fds are close-on-exec");
	close(p[0]);

	/* An fd the handler does not take is closed after it returns. */
	pipe_or_bail(p);
	fds[0] = p[1];
	b.dont_take_fd = true;
	ipc_call(a.chan, IPC_SUP_CHANNEL_OPEN, &co.base, fds, 1, &crisp_ipc__empty__descriptor, 0,
		 1000, on_reply, &c2);
	RUN_UNTIL(c2.done);
	got = pipe_read_all(p[0]);
	is_str(got, "", "an fd the handler leaves is closed by the channel");
	free(got);
	close(p[0]);

	/* An fd with the reply. */
	ipc_call(a.chan, IPC_RUNTIMED_HEALTH_GET, &hreq.base, NULL, 0,
		 &crisp_ipc__health_get_reply__descriptor, 1, 1000, on_reply, &c3);
	RUN_UNTIL(c3.done);
	ok(!c3.failed && c3.fd >= 0, "a reply brings an fd");
	got = c3.fd >= 0 ? pipe_read_all(c3.fd) : NULL;
	is_str(got, "from the reply", "the fd of the reply works");
	free(got);

	call_done(&c);
	call_done(&c2);
	call_done(&c3);
	end_done(&a);
	end_done(&b);
}

static void test_framing(void)
{
	struct end a;
	struct buf buf = { 0 }, one = { 0 };
	CrispIpc__PodCidrSetRequest req = CRISP_IPC__POD_CIDR_SET_REQUEST__INIT;
	int raw, early = 0;

	/* The hello and three requests in one write. */
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	raw = raw_pair(&a, false);
	buf_hello(&buf, "frontend", IPC_NETD_VERSION);
	buf_ping(&buf, 11, 1);
	buf_ping(&buf, 12, 2);
	buf_ping(&buf, 13, 3);
	raw_send(raw, &buf, NULL, 0);
	RUN_UNTIL(a.nseqs == 3 || a.closed);
	ok(a.ready == 1 && a.closed == 0, "several frames in one write: hello accepted");
	is_int(a.nseqs, 3, "several frames in one write: all handled");
	ok(a.seqs[0] == 1 && a.seqs[1] == 2 && a.seqs[2] == 3,
	   "several frames in one write: in order");
	is_int(a.last.id, 13, "several frames in one write: ids kept");

	/* One frame, one byte per write, the loop running in between. */
	req.pod_cidr = (char *)"10.88.0.0/16,fd00::/64";
	buf_frame(&one, IPC_NETD_POD_CIDR_SET, 0, 77, 0, &req.base);
	a.requests = 0;
	for (size_t i = 0; i < one.len; i++) {
		if (write(raw, one.p + i, 1) != 1)
			diag("write: %s", strerror(errno));
		run_ready();
		if (i + 1 < one.len && a.requests)
			early++;
	}
	is_int(early, 0, "byte by byte: nothing handled before the last byte");
	RUN_UNTIL(a.requests == 1 || a.closed);
	is_int(a.requests, 1, "byte by byte: the frame is handled once complete");
	is_str(a.text, "10.88.0.0/16,fd00::/64", "byte by byte: the payload is whole");
	is_int(a.last.id, 77, "byte by byte: the header is whole");

	/* A frame and a half, then the rest. */
	a.requests = 0;
	buf_reset(&buf);
	buf_frame(&buf, IPC_NETD_POD_CIDR_SET, 0, 78, 0, &req.base);
	buf_frame(&buf, IPC_NETD_POD_CIDR_SET, 0, 79, 0, &req.base);
	if (write(raw, buf.p, one.len + 5) != (ssize_t)(one.len + 5))
		diag("write failed");
	RUN_UNTIL(a.requests == 1);
	run_ready();
	is_int(a.requests, 1, "a frame and a half: the whole frame is handled");
	if (write(raw, buf.p + one.len + 5, buf.len - one.len - 5) < 0)
		diag("write failed");
	RUN_UNTIL(a.requests == 2 || a.closed);
	is_int(a.last.id, 79, "a frame and a half: the rest completes the second frame");
	buf_reset(&buf);
	buf_reset(&one);
	is_int(a.closed, 0, "framing: no violation");
	end_done(&a);
	close(raw);
}

static void test_large(void)
{
	const size_t big = 1u << 20;
	struct end a, b;
	struct call c = CALL_INIT;
	CrispIpc__ProcessStateSet set = CRISP_IPC__PROCESS_STATE_SET__INIT;
	CrispIpc__ProcessInfo info = CRISP_IPC__PROCESS_INFO__INIT, *infos[1] = { &info };
	char *want_req = pattern(big, 'a'), *want_reply = pattern(big, 'A');
	int sndbuf = 0, sv[2];
	socklen_t sl = sizeof(sndbuf);

	socketpair_or_bail(sv);
	getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
	close(sv[0]);
	close(sv[1]);
	ok(sndbuf > 0 && (size_t)sndbuf < big, "1 MiB is more than the socket buffer (%d)", sndbuf);

	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.big_reply = big;
	info.last_exit = want_req;
	set.n_processes = 1;
	set.processes = infos;
	ipc_call(a.chan, IPC_SUP_PROCESS_STATE_SET, &set.base, NULL, 0,
		 &crisp_ipc__health_get_reply__descriptor, 0, 5000, on_reply, &c);
	RUN_UNTIL(c.done);
	ok(!c.failed, "a 1 MiB request and reply go through");
	ok(b.text && strlen(b.text) == big && memcmp(b.text, want_req, big) == 0,
	   "the 1 MiB request arrives whole");
	ok(c.text && strlen(c.text) == big && memcmp(c.text, want_reply, big) == 0,
	   "the 1 MiB reply arrives whole");
	ok(sync_ends(&a, &b) && sync_ends(&b, &a), "the channel works on after a large message");
	call_done(&c);
	end_done(&a);
	end_done(&b);
	free(want_req);
	free(want_reply);
}

/* ---- secrets: no copy of a secret request's frame outlives it ------------------ */

#ifdef CRISP_TEST_HOOKS
static int released, released_with_marker;

static void on_released(const void *buf, size_t len)
{
	uintptr_t b = (uintptr_t)buf, f = (uintptr_t)pull_frame;

	released++;
	if (has_marker(buf, len))
		released_with_marker++;
	/* The handler's frame goes with this buffer: it was looked at just
	 * now, and must not be read once freed. */
	if (pull_frame && f >= b && f + pull_frame_len <= b + len)
		pull_frame = NULL;
}

static void pull_call(struct end *e, struct call *c, const char *image, const char *password)
{
	CrispIpc__ImagePullRequest req = CRISP_IPC__IMAGE_PULL_REQUEST__INIT;
	CrispIpc__RegistryAuth auth = CRISP_IPC__REGISTRY_AUTH__INIT;

	req.image = (char *)image;
	auth.username = (char *)"user";
	auth.password = (char *)password;
	req.auth = &auth;
	ipc_call(e->chan, IPC_IMAGED_IMAGE_PULL, &req.base, NULL, 0,
		 &crisp_ipc__image_pull_reply__descriptor, 0, 5000, on_reply, c);
}

static void test_secret(void)
{
	struct end a, b;
	struct call c = CALL_INIT;
	CrispIpc__ProcessStateSet set = CRISP_IPC__PROCESS_STATE_SET__INIT;
	CrispIpc__ProcessInfo info = CRISP_IPC__PROCESS_INFO__INIT, *infos[1] = { &info };
	CrispIpc__ImagePullRequest big = CRISP_IPC__IMAGE_PULL_REQUEST__INIT;
	struct buf buf = { 0 }, frame = { 0 };
	char *image;
	size_t cut;
	int raw;

	ipc_test_released = on_released;

	/* The hook sees the buffers: the marker in a request that is not
	 * secret is still there when they are freed. */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	info.last_exit = (char *)SECRET_MARKER;
	set.n_processes = 1;
	set.processes = infos;
	ipc_call(a.chan, IPC_SUP_PROCESS_STATE_SET, &set.base, NULL, 0,
		 &crisp_ipc__health_get_reply__descriptor, 0, 5000, on_reply, &c);
	RUN_UNTIL(c.done);
	end_done(&a);
	end_done(&b);
	ok(released_with_marker >= 2,
	   "secret: a plain request's frames keep the marker when freed (%d)",
	   released_with_marker);
	call_done(&c);
	c = (struct call)CALL_INIT;

	/* An IMAGE_PULL between two real ends. */
	released = released_with_marker = 0;
	pull_frame_had_marker = false;
	ends_init(&a, &b);
	pair_ready(&a, &b);
	pull_call(&a, &c, "busybox", SECRET_MARKER);
	RUN_UNTIL(c.done);
	ok(!c.failed, "secret: the pull call is answered");
	is_str(b.text, SECRET_MARKER, "secret: the handler gets the password");
	ok(pull_frame_had_marker, "secret: the frame held the marker while handled");
	ok(!has_marker(pull_frame, pull_frame_len), "secret: the received frame is wiped after");
	ok(released > 0 && released_with_marker == 0,
	   "secret: the sender's frame is wiped once written (%d of %d)", released_with_marker,
	   released);
	end_done(&a);
	end_done(&b);
	is_int(released_with_marker, 0, "secret: no input buffer is freed with the marker");
	call_done(&c);

	/* From a raw peer, so that the receiver holds a partial secret frame:
	 * behind a large plain frame (the part moves to the front of the input,
	 * leaving a copy behind), then read on in chunks that grow the input. */
	released = released_with_marker = 0;
	pull_frame_had_marker = false;
	end_init(&a, "imaged", "frontend", IPC_IMAGED_VERSION);
	raw = raw_pair(&a, true);
	image = pattern(300u << 10, 'a');
	memcpy(image, SECRET_MARKER, strlen(SECRET_MARKER));
	big.image = image;
	buf_frame(&frame, IPC_IMAGED_IMAGE_PULL, 0, 5, 0, &big.base);
	info.last_exit = pattern(8u << 10, 'A');
	buf_frame(&buf, IPC_SUP_PROCESS_STATE_SET, 0, 4, 0, &set.base);
	cut = 4096;
	buf_add(&buf, frame.p, cut);
	raw_send(raw, &buf, NULL, 0);
	RUN_UNTIL(a.requests == 1 || a.closed);
	run_ready();
	/* The rest, more than the socket holds: the loop reads in between. */
	fd_set_nonblock(raw, true);
	while (cut < frame.len && !a.closed) {
		ssize_t n = write(raw, frame.p + cut, frame.len - cut);
		if (n > 0)
			cut += n;
		else if (n < 0 && errno != EAGAIN)
			break;
		run_ready();
	}
	RUN_UNTIL(a.requests == 2 || a.closed);
	ok(pull_frame_had_marker && a.closed == 0, "secret: a large pull arrives in parts");
	ok(!has_marker(pull_frame, pull_frame_len), "secret: the large frame is wiped after");
	end_done(&a);
	close(raw);
	ok(released > 1 && released_with_marker == 0,
	   "secret: no moved or freed input keeps the marker (%d of %d)", released_with_marker,
	   released);

	/* ipc_message_wipe: a decoded copy, strings and sub-messages. */
	{
		CrispIpc__RegistryAuth auth = CRISP_IPC__REGISTRY_AUTH__INIT;
		CrispIpc__ImagePullRequest req = CRISP_IPC__IMAGE_PULL_REQUEST__INIT, *got;
		uint8_t packed[256];
		size_t n;

		auth.password = (char *)SECRET_MARKER;
		req.image = (char *)"busybox";
		req.auth = &auth;
		n = protobuf_c_message_pack(&req.base, packed);
		got = crisp_ipc__image_pull_request__unpack(NULL, n, packed);
		ipc_message_wipe(&got->base);
		ok(got->auth->password[0] == '\0' && got->image[0] == '\0' &&
			   got->auth->username[0] == '\0',
		   "secret: ipc_message_wipe zeroes every string, in sub-messages too");
		crisp_ipc__image_pull_request__free_unpacked(got, NULL);
	}

	free(info.last_exit);
	free(image);
	buf_reset(&frame);
	ipc_test_released = NULL;
}
#else
static void test_secret(void)
{
	diag("secret frames not tested: needs --enable-test-hooks");
}
#endif

static void test_timeout(void)
{
	struct end a, b;
	struct call c = CALL_INIT, c2 = CALL_INIT, c3 = CALL_INIT;
	uint64_t t0;
	uint32_t id;

	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.hold = true;
	t0 = now_ms();
	call_health(&a, &c, 50);
	RUN_UNTIL(c.done);
	ok(c.failed, "an unanswered call fails");
	is_int(c.err.code, CRISP_E_TIMEOUT, "... with CRISP_E_TIMEOUT");
	like(c.err.msg, "did not answer IPC_NETD_HEALTH_GET in time", "... saying what timed out");
	ok(now_ms() - t0 >= 45, "... not before its time");
	ok(b.nheld == 1, "the request did arrive");

	/* The reply comes after all: dropped, no violation. */
	log_reset();
	reply_held(&b, 0);
	ok(sync_ends(&b, &a), "a late reply is not a violation");
	is_int(c.done, 1, "a late reply does not run the callback again");
	like(log_text(), "no such call", "a late reply is logged at debug");

	/* A cancelled call: its callback never runs, its reply is dropped. */
	id = call_health(&a, &c2, 0);
	RUN_UNTIL(b.nheld == 2);
	ipc_call_cancel(a.chan, id);
	reply_held(&b, 1);
	ok(sync_ends(&b, &a), "a reply to a cancelled call is not a violation");
	is_int(c2.done, 0, "a cancelled call's callback never runs");
	ipc_call_cancel(a.chan, 12345);
	ipc_call_cancel(NULL, 1);
	ok(1, "cancelling an unknown id or on NULL is harmless");

	b.hold = false;
	call_health(&a, &c3, 1000);
	RUN_UNTIL(c3.done);
	ok(!c3.failed, "calls work on after a timeout");
	call_done(&c);
	call_done(&c2);
	call_done(&c3);
	end_done(&a);
	end_done(&b);
	log_reset();
}

static void test_peer_close(void)
{
	struct end a, b;
	struct call c1 = CALL_INIT, c2 = CALL_INIT, c3 = CALL_INIT;
	int p[2], fds[1], saved;

	ends_init(&a, &b);
	pair_ready(&a, &b);
	a.keep_on_close = true;
	b.hold = true;
	call_health(&a, &c1, 0);
	call_health(&a, &c2, 300);
	RUN_UNTIL(b.nheld == 2);
	end_free(&b);
	RUN_UNTIL(a.closed);
	is_str(a.why, "peer closed the channel", "the peer closing is reported");
	ok(c1.done && c1.failed && c1.err.code == CRISP_E_UNAVAILABLE,
	   "a pending call without timeout fails with CRISP_E_UNAVAILABLE");
	ok(c2.done && c2.failed && c2.err.code == CRISP_E_UNAVAILABLE,
	   "a pending call with timeout fails with CRISP_E_UNAVAILABLE");
	like(c1.err.msg, "IPC_NETD_HEALTH_GET", "the error names the call");
	ok(c1.seq < a.close_seq && c2.seq < a.close_seq, "pending calls fail before on_close");
	ok(!ipc_chan_ready(a.chan), "a closed channel is not ready");

	/* The timer of a failed call is gone with it. */
	{
		struct timeval tv = { 0, 400 * 1000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	is_int(c2.done, 1, "a failed call's timeout does not fire later");

	/* Calls and sends on a closed channel fail at once and close the fds. */
	pipe_or_bail(p);
	fds[0] = saved = p[1];
	ok(ipc_call(a.chan, IPC_NETD_HEALTH_GET, NULL, fds, 1, &crisp_ipc__empty__descriptor, 0, 0,
		    on_reply, &c3) == 0,
	   "ipc_call on a closed channel returns 0");
	ok(c3.done == 1 && c3.err.code == CRISP_E_UNAVAILABLE,
	   "... after calling back with CRISP_E_UNAVAILABLE");
	ok(fds[0] == -1 && fd_is_closed(saved), "... and closes the fds it was given");
	fds[0] = saved = dup(p[0]);
	is_int(ipc_send(a.chan, IPC_SUP_HEALTH_PING, 0, 0, NULL, fds, 1), -1,
	       "ipc_send on a closed channel fails");
	ok(fds[0] == -1 && fd_is_closed(saved), "... and closes the fds it was given");
	close(p[0]);
	call_done(&c1);
	call_done(&c2);
	call_done(&c3);
	end_done(&a);
	end_done(&b);

	/* The owner freeing a channel fails its calls, without on_close. */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.hold = true;
	c1 = (struct call)CALL_INIT;
	call_health(&a, &c1, 1000);
	RUN_UNTIL(b.nheld == 1);
	end_free(&a);
	ok(c1.done && c1.err.code == CRISP_E_UNAVAILABLE, "ipc_chan_free fails pending calls");
	is_int(a.closed, 0, "ipc_chan_free does not call on_close");
	RUN_UNTIL(b.closed);
	is_str(b.why, "peer closed the channel", "the other end sees the close");
	call_done(&c1);
	end_done(&a);
	end_done(&b);
	ipc_chan_free(NULL);
	ok(1, "ipc_chan_free(NULL) is harmless");
}

/* Malformed frames from a raw peer that said a proper hello. */
struct bad_frame {
	const char *what, *reason;
	void (*build)(struct buf *b);
	unsigned nfds; /* fds sent with it */
};

static void bf_too_long(struct buf *b)
{
	buf_hdr(b, IPC_MAX_PAYLOAD + 1, IPC_SUP_HEALTH_PING, 0, 1, 0, NULL);
}
static void bf_reserved0(struct buf *b)
{
	buf_hdr(b, 0, IPC_SUP_HEALTH_PING, 0, 1, 0, (const uint8_t[]){ 1, 0, 0 });
}
static void bf_reserved2(struct buf *b)
{
	buf_hdr(b, 0, IPC_SUP_HEALTH_PING, 0, 1, 0, (const uint8_t[]){ 0, 0, 0x80 });
}
static void bf_nfds(struct buf *b)
{
	buf_hdr(b, 0, IPC_SUP_HEALTH_PING, 0, 1, IPC_MAX_FDS + 1, NULL);
}
static void bf_missing_fd(struct buf *b)
{
	buf_frame(b, IPC_SUP_HEALTH_PING, 0, 1, 1, NULL);
}
static void bf_missing_fds(struct buf *b)
{
	buf_frame(b, IPC_SUP_CHANNEL_OPEN, 0, 1, 2, NULL);
}
static void bf_flags(struct buf *b)
{
	buf_frame(b, IPC_SUP_HEALTH_PING, 0x2, 1, 0, NULL);
}
static void bf_flags_high(struct buf *b)
{
	buf_frame(b, IPC_SUP_HEALTH_PING, 0x8000 | IPC_F_REPLY, 1, 0, NULL);
}
static void bf_hello2(struct buf *b)
{
	buf_hello(b, "frontend", IPC_NETD_VERSION);
}
static void bf_garbage(struct buf *b)
{
	buf_frame_bytes(b, IPC_SUP_HEALTH_PING, 0, 1, 0, "\xff\xff\xff\xff", 4);
}
static void bf_truncated(struct buf *b)
{
	buf_frame_bytes(b, IPC_SUP_HEALTH_PING, 0, 1, 0, "\x08", 1);
}
static void bf_wrong_wire_type(struct buf *b)
{
	buf_frame_bytes(b, IPC_NETD_POD_CIDR_SET, 0, 1, 0, "\x08\x01", 2);
}
static void bf_many_fds(struct buf *b)
{
	buf_ping(b, 1, 1);
}

static void test_bad_frames(void)
{
	static const struct bad_frame cases[] = {
		{ "len > IPC_MAX_PAYLOAD", "bad frame header", bf_too_long, 0 },
		{ "first reserved byte set", "bad frame header", bf_reserved0, 0 },
		{ "last reserved byte set", "bad frame header", bf_reserved2, 0 },
		{ "nfds > IPC_MAX_FDS", "bad frame header", bf_nfds, 0 },
		{ "an announced fd never came", "announces 1 fds, 0 arrived", bf_missing_fd, 0 },
		{ "one of two announced fds came", "announces 2 fds, 1 arrived", bf_missing_fds,
		  1 },
		{ "unknown flag", "unknown flags 0x2", bf_flags, 0 },
		{ "unknown high flag", "unknown flags 0x8001", bf_flags_high, 0 },
		{ "second hello", "second hello", bf_hello2, 0 },
		{ "malformed protobuf", "malformed IPC_SUP_HEALTH_PING", bf_garbage, 0 },
		{ "truncated protobuf", "malformed IPC_SUP_HEALTH_PING", bf_truncated, 0 },
		{ "protobuf of the wrong wire type", "malformed IPC_NETD_POD_CIDR_SET",
		  bf_wrong_wire_type, 0 },
		{ "more fds in one message than a frame may have", "too many file descriptors",
		  bf_many_fds, IPC_MAX_FDS + 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct bad_frame *bf = &cases[i];
		struct end a;
		struct call c = CALL_INIT;
		struct buf b = { 0 };
		int raw, p[2], fds[16];

		log_reset();
		end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
		raw = raw_pair(&a, true);
		/* a pending call to the misbehaving peer fails too */
		call_health(&a, &c, 0);
		pipe_or_bail(p);
		for (unsigned k = 0; k < bf->nfds; k++)
			fds[k] = p[1];
		bf->build(&b);
		raw_send(raw, &b, fds, bf->nfds);
		close(p[1]);
		expect_violation(&a, raw, bf->reason, bf->what);
		ok(a.nseqs == 0 && a.text == NULL, "%s: never reaches a handler", bf->what);
		ok(c.done && c.err.code == CRISP_E_UNAVAILABLE, "%s: pending calls fail", bf->what);
		if (bf->nfds) {
			char *s = pipe_read_all(p[0]);
			ok(s != NULL, "%s: the fds that came are closed", bf->what);
			free(s);
		}
		close(p[0]);
		close(raw);
		call_done(&c);
		end_done(&a);
	}

	/* A peer that floods fds without frames claiming them hits a bound. */
	{
		struct end a;
		struct buf b = { 0 };
		int raw, p[2], fds[IPC_MAX_FDS];
		char *s;

		log_reset();
		end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
		raw = raw_pair(&a, true);
		pipe_or_bail(p);
		for (unsigned k = 0; k < IPC_MAX_FDS; k++)
			fds[k] = p[1];
		for (int m = 0; m < 16 && !a.closed; m++) {
			buf_ping(&b, 1, 1);
			raw_send(raw, &b, fds, IPC_MAX_FDS);
			run_ready();
		}
		close(p[1]);
		expect_violation(&a, raw, "too many file descriptors", "unclaimed fds pile up");
		s = pipe_read_all(p[0]);
		ok(s != NULL, "unclaimed fds pile up: all of them are closed");
		free(s);
		close(p[0]);
		close(raw);
		end_done(&a);
	}
	log_reset();
}

/* Replies that do not fit the pending call. */
struct bad_reply {
	const char *what, *reason;
	uint16_t type;
	const void *payload;
	size_t len;
	uint8_t nfds;
};

static void test_bad_replies(void)
{
	/* Error{code=3,message="x"}, Error{code=0}, Error{code=99} */
	static const uint8_t err_ok[] = { 0x12, 0x01, 'x' };
	static const uint8_t err_notfound[] = { 0x08, 0x02, 0x12, 0x01, 'x' };
	static const uint8_t err_99[] = { 0x08, 99, 0x12, 0x01, 'x' };
	static const struct bad_reply cases[] = {
		{ "malformed reply", "malformed reply to IPC_NETD_HEALTH_GET", IPC_NETD_HEALTH_GET,
		  "\xff\xff", 2, 0 },
		{ "reply of another type",
		  "reply IPC_NETD_POD_CIDR_SET with 0 fds to a IPC_NETD_HEALTH_GET call",
		  IPC_NETD_POD_CIDR_SET, "", 0, 0 },
		{ "reply with an fd it may not have", "with 1 fds", IPC_NETD_HEALTH_GET, "", 0, 1 },
		{ "error reply with code ok", "malformed error reply", IPC_ERROR, err_ok,
		  sizeof(err_ok), 0 },
		{ "error reply with an unknown code", "malformed error reply", IPC_ERROR, err_99,
		  sizeof(err_99), 0 },
		{ "error reply with an fd", "malformed error reply", IPC_ERROR, err_notfound,
		  sizeof(err_notfound), 1 },
		{ "malformed error reply", "malformed error reply", IPC_ERROR, "\xff", 1, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct bad_reply *br = &cases[i];
		struct end a;
		struct call c = CALL_INIT;
		struct rawframe f;
		struct buf b = { 0 };
		int raw, p[2];

		log_reset();
		end_init(&a, "frontend", "netd", IPC_NETD_VERSION);
		raw = raw_pair(&a, true);
		call_health(&a, &c, 0);
		if (!raw_read_frame(raw, &f))
			diag("the request did not arrive");
		free(f.data);
		pipe_or_bail(p);
		buf_frame_bytes(&b, br->type, IPC_F_REPLY, f.id, br->nfds, br->payload, br->len);
		raw_send(raw, &b, &p[1], br->nfds);
		close(p[1]);
		expect_violation(&a, raw, br->reason, br->what);
		ok(c.done == 1 && c.err.code == CRISP_E_UNAVAILABLE,
		   "%s: the call fails as unavailable", br->what);
		if (br->nfds) {
			char *s = pipe_read_all(p[0]);
			ok(s != NULL, "%s: the fd is closed", br->what);
			free(s);
		}
		close(p[0]);
		close(raw);
		call_done(&c);
		end_done(&a);
	}

	/* A well-formed Error built by hand, as a check of the cases above. */
	{
		struct end a;
		struct call c = CALL_INIT;
		struct rawframe f;
		struct buf b = { 0 };
		int raw;

		end_init(&a, "frontend", "netd", IPC_NETD_VERSION);
		raw = raw_pair(&a, true);
		call_health(&a, &c, 0);
		raw_read_frame(raw, &f);
		free(f.data);
		buf_frame_bytes(&b, IPC_ERROR, IPC_F_REPLY, f.id, 0, err_notfound,
				sizeof(err_notfound));
		raw_send(raw, &b, NULL, 0);
		RUN_UNTIL(c.done);
		ok(c.failed && c.err.code == CRISP_E_NOT_FOUND && streq(c.err.msg, "x"),
		   "a hand-built Error reply is accepted");
		ok(raw_sync(raw, &a), "... and is no violation");
		close(raw);
		call_done(&c);
		end_done(&a);
	}
	log_reset();
}

/* ipc_dispatch: the policy each row of a table carries. */
static void test_dispatch(void)
{
	struct end a;
	struct buf b = { 0 };
	CrispIpc__ChannelOpen co = CRISP_IPC__CHANNEL_OPEN__INIT;
	CrispIpc__PodCidrSetRequest pc = CRISP_IPC__POD_CIDR_SET_REQUEST__INIT;
	CrispIpc__HealthPing ping = CRISP_IPC__HEALTH_PING__INIT;
	int raw, p[2];
	char *s;

	co.peer = (char *)"runtimed";

	/* good requests reach their handler, unpacked */
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	raw = raw_pair(&a, true);
	ping.seq = 42;
	buf_frame(&b, IPC_SUP_HEALTH_PING, 0, 5, 0, &ping.base);
	raw_send(raw, &b, NULL, 0);
	RUN_UNTIL(a.nseqs == 1 || a.closed);
	is_int(a.last_seq, 42, "dispatch: the handler gets the unpacked payload");
	is_int(a.dispatch_rc, 0, "dispatch: returns 0 after the handler");
	pipe_or_bail(p);
	buf_frame(&b, IPC_SUP_CHANNEL_OPEN, 0, 6, 1, &co.base);
	raw_send(raw, &b, &p[1], 1);
	close(p[1]);
	RUN_UNTIL(a.text || a.closed);
	s = pipe_read_all(p[0]);
	is_str(s, "via runtimed", "dispatch: a request with its fd reaches the handler");
	free(s);
	close(p[0]);
	pc.pod_cidr = (char *)"10.0.0.0/8";
	buf_frame(&b, IPC_NETD_POD_CIDR_SET, 0, 7, 0, &pc.base);
	raw_send(raw, &b, NULL, 0);
	ok(raw_sync(raw, &a), "dispatch: good requests are no violation");
	is_str(a.text, "10.0.0.0/8", "dispatch: a request in an allowed state is handled");
	end_done(&a);
	close(raw);

	struct {
		const char *what, *reason;
		uint16_t type;
		const ProtobufCMessage *payload;
		unsigned nfds;
		uint32_t state;
	} cases[] = {
		{ "missing fd", "IPC_SUP_CHANNEL_OPEN with 0 fds, expected 1", IPC_SUP_CHANNEL_OPEN,
		  &co.base, 0, ST_RUNNING },
		{ "unexpected fd", "IPC_SUP_HEALTH_PING with 1 fds, expected 0",
		  IPC_SUP_HEALTH_PING, &ping.base, 1, ST_RUNNING },
		{ "over max_len", "IPC_NETD_POD_CIDR_SET of 67 bytes, at most 64 allowed",
		  IPC_NETD_POD_CIDR_SET, &pc.base, 0, ST_RUNNING },
		{ "wrong state", "IPC_NETD_POD_CIDR_SET not allowed in state 0x1",
		  IPC_NETD_POD_CIDR_SET, NULL, 0, ST_STARTING },
		{ "unknown type", "unexpected message IPC_UNKNOWN(0x7fff)", TYPE_UNKNOWN, NULL, 0,
		  ST_RUNNING },
		{ "an Error as a request", "unexpected message IPC_ERROR", IPC_ERROR, NULL, 0,
		  ST_RUNNING },
	};
	char longcidr[66];
	memset(longcidr, '1', sizeof(longcidr) - 1);
	longcidr[sizeof(longcidr) - 1] = '\0';

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		log_reset();
		end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
		a.state = cases[i].state;
		raw = raw_pair(&a, true);
		pc.pod_cidr = (char *)(i == 2 ? longcidr : "10.0.0.0/8");
		pipe_or_bail(p);
		buf_frame(&b, cases[i].type, 0, 9, (uint8_t)cases[i].nfds, cases[i].payload);
		raw_send(raw, &b, &p[1], cases[i].nfds);
		close(p[1]);
		expect_violation(&a, raw, cases[i].reason, cases[i].what);
		is_int(a.dispatch_rc, -1, "%s: ipc_dispatch returns -1", cases[i].what);
		ok(a.text == NULL && a.nseqs == 0, "%s: the handler is not called", cases[i].what);
		s = pipe_read_all(p[0]);
		ok(s != NULL, "%s: fds that came along are closed", cases[i].what);
		free(s);
		close(p[0]);
		end_done(&a);
		close(raw);
	}

	/* A handler may declare a violation itself. */
	log_reset();
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	a.violate_on_request = true;
	raw = raw_pair(&a, true);
	buf_ping(&b, 1, 1);
	raw_send(raw, &b, NULL, 0);
	expect_violation(&a, raw, "handler refuses IPC_SUP_HEALTH_PING",
			 "violation from a handler");
	end_done(&a);
	close(raw);
	log_reset();
}

/* The owner may free the channel from inside any of its callbacks. */
static void test_free_in_callbacks(void)
{
	struct end a, b;
	struct call c1 = CALL_INIT, c2 = CALL_INIT;
	struct buf buf = { 0 };
	int raw;

	/* from on_request, with more frames waiting in the same read */
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	a.free_on_request = true;
	raw = raw_pair(&a, true);
	buf_ping(&buf, 1, 1);
	buf_ping(&buf, 2, 2);
	buf_ping(&buf, 3, 3);
	raw_send(raw, &buf, NULL, 0);
	RUN_UNTIL(a.freed);
	ok(raw_eof(raw), "free in on_request: the channel is closed");
	is_int(a.requests, 1, "free in on_request: the frames after it are not handled");
	ok(a.closed == 0 && a.after_free == 0, "free in on_request: no callback afterwards");
	end_done(&a);
	close(raw);

	/* from on_ready, with a request right behind the hello */
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	a.free_on_ready = true;
	raw = raw_pair(&a, false);
	buf_hello(&buf, "frontend", IPC_NETD_VERSION);
	buf_ping(&buf, 1, 1);
	raw_send(raw, &buf, NULL, 0);
	RUN_UNTIL(a.freed);
	ok(raw_eof(raw), "free in on_ready: the channel is closed");
	ok(a.ready == 1 && a.requests == 0 && a.closed == 0 && a.after_free == 0,
	   "free in on_ready: no callback afterwards");
	end_done(&a);
	close(raw);

	/* from a reply callback, with another call pending */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.hold = true;
	c1.free_end = &a;
	call_health(&a, &c1, 1000);
	call_health(&a, &c2, 1000);
	RUN_UNTIL(b.nheld == 2);
	reply_held(&b, 0);
	RUN_UNTIL(c1.done);
	ok(!c1.failed && a.freed, "free in a reply callback: the reply was delivered");
	ok(c2.done == 1 && c2.err.code == CRISP_E_UNAVAILABLE,
	   "free in a reply callback: the other pending call fails");
	ok(a.closed == 0 && a.after_free == 0, "free in a reply callback: no on_close afterwards");
	RUN_UNTIL(b.closed);
	is_str(b.why, "peer closed the channel",
	       "free in a reply callback: the peer sees the close");
	call_done(&c1);
	call_done(&c2);
	end_done(&a);
	end_done(&b);

	/* from a timeout callback */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.hold = true;
	c1 = (struct call)CALL_INIT;
	c1.free_end = &a;
	call_health(&a, &c1, 20);
	RUN_UNTIL(c1.done);
	ok(c1.err.code == CRISP_E_TIMEOUT && a.freed, "free in a timeout callback");
	RUN_UNTIL(b.closed);
	ok(a.closed == 0 && a.after_free == 0,
	   "free in a timeout callback: no callback afterwards");
	call_done(&c1);
	end_done(&a);
	end_done(&b);

	/* from the callback of a call the peer's close fails: on_close must not
	 * follow, the owner may have freed what its argument points to */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	b.hold = true;
	c1 = (struct call)CALL_INIT;
	c2 = (struct call)CALL_INIT;
	c1.free_end = &a;
	call_health(&a, &c1, 0);
	call_health(&a, &c2, 0);
	RUN_UNTIL(b.nheld == 2);
	end_free(&b);
	RUN_UNTIL(c1.done && c2.done);
	ok(c1.err.code == CRISP_E_UNAVAILABLE && c2.err.code == CRISP_E_UNAVAILABLE,
	   "free while the close fails calls: every call fails once");
	is_int(a.after_free, 0, "free while the close fails calls: no on_close afterwards");
	call_done(&c1);
	call_done(&c2);
	end_done(&a);
	end_done(&b);

	/* from the callback of a call that fails at once */
	ends_init(&a, &b);
	pair_ready(&a, &b);
	a.keep_on_close = true;
	end_free(&b);
	RUN_UNTIL(a.closed);
	a.freed = false;
	c1 = (struct call)CALL_INIT;
	c1.free_end = &a;
	call_health(&a, &c1, 0);
	ok(c1.done && a.freed, "free in the callback of a call that failed at once");
	call_done(&c1);
	end_done(&a);
	end_done(&b);

	/* from on_close after a violation (what every other case does too) */
	log_reset();
	end_init(&a, "netd", "frontend", IPC_NETD_VERSION);
	raw = raw_pair(&a, true);
	buf_ping(&buf, 1, 1);
	buf_hdr(&buf, 0, 1, 0, 0, 0, (const uint8_t[]){ 9, 9, 9 });
	buf_ping(&buf, 1, 2);
	raw_send(raw, &buf, NULL, 0);
	expect_violation(&a, raw, "bad frame header", "free in on_close after a violation");
	is_int(a.nseqs, 1, "free in on_close: frames before the bad one were handled, none after");
	end_done(&a);
	close(raw);
	log_reset();
}

static void test_misc(void)
{
	struct end a, b;
	struct ipc_msg m = { .nfds = 1, .fds = { 7 } };
	int fds[IPC_MAX_FDS + 1], saved[IPC_MAX_FDS + 1];
	bool all_closed = true;

	is_str(ipc_type_name(IPC_NETD_POD_CIDR_SET), "IPC_NETD_POD_CIDR_SET", "ipc_type_name");
	is_str(ipc_type_name(IPC_HELLO), "IPC_HELLO", "ipc_type_name of the hello");
	is_str(ipc_type_name(0x1234), "IPC_UNKNOWN(0x1234)", "ipc_type_name of an unknown type");
	is_int(ipc_msg_take_fd(&m, 1), -1, "ipc_msg_take_fd past nfds gives -1");
	is_int(ipc_msg_take_fd(&m, 0), 7, "ipc_msg_take_fd gives the fd");
	is_int(m.fds[0], -1, "... and forgets it");

	ends_init(&a, &b);
	pair_ready(&a, &b);
	log_reset();
	for (int i = 0; i <= IPC_MAX_FDS; i++)
		fds[i] = saved[i] = dup(0);
	is_int(ipc_send(a.chan, IPC_SUP_HEALTH_PING, 0, 0, NULL, fds, IPC_MAX_FDS + 1), -1,
	       "ipc_send refuses more than IPC_MAX_FDS fds");
	for (int i = 0; i <= IPC_MAX_FDS; i++)
		all_closed = all_closed && fds[i] == -1 && fd_is_closed(saved[i]);
	ok(all_closed, "... and closes them all");
	{
		CrispIpc__HealthGetReply r = CRISP_IPC__HEALTH_GET_REPLY__INIT;
		r.message = xmalloc(IPC_MAX_PAYLOAD + 1);
		memset(r.message, 'x', IPC_MAX_PAYLOAD);
		r.message[IPC_MAX_PAYLOAD] = '\0';
		is_int(ipc_send(a.chan, IPC_SUP_HEALTH_PING, 0, 0, &r.base, NULL, 0), -1,
		       "ipc_send refuses a payload over IPC_MAX_PAYLOAD");
		free(r.message);
	}
	like(log_text(), "cannot send", "refused sends are logged");
	ok(sync_ends(&a, &b), "refused sends leave the channel working");
	end_done(&a);
	end_done(&b);
	log_reset();
}

int main(void)
{
	int fds_before, fds_after;

	log_capture_init();
	log_init("test-ipc", LOG_DEBUG);
	base = event_base_new();
	if (!base) {
		printf("Bail out! event_base_new failed\n");
		return 99;
	}
	fds_before = count_fds();

	test_hello();
	test_hello_mismatch();
	test_call_reply();
	test_error_reply();
	test_fds();
	test_framing();
	test_large();
	test_secret();
	test_timeout();
	test_peer_close();
	test_bad_frames();
	test_bad_replies();
	test_dispatch();
	test_free_in_callbacks();
	test_misc();

	run_ready();
	fds_after = count_fds();
	if (!is_int(fds_after, fds_before, "no file descriptor leaked"))
		(void)!system("ls -l /proc/$PPID/fd >&2");
	log_reset();
	/* valgrind reports at exit: let that reach the real stderr */
	dup2(real_stderr, STDERR_FILENO);
	event_base_free(base);
	libevent_global_shutdown();
	return done_testing();
}
