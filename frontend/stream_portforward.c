/* Port-forward over SPDY (portforward.k8s.io) and WebSocket (PROTOCOLS.md 4).
 *
 * SPDY: per forwarded connection the client opens an error stream and a data
 * stream with the same requestid and port; once both are there the backend
 * connects a socket to the port inside the pod, and we relay the data stream
 * and the socket both ways, with the same bounds as remote command. A failure
 * is written on the error stream. WebSocket: one forwarded connection per port
 * of the CRI request, port i on channels 2i (data) and 2i+1 (error), each
 * starting with the port as 2 bytes little-endian. */
#include "autoconfig.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "frontend/stream.h"

#define PAIRS_MAX 128
#define REQUEST_ID_MAX 32

struct pf_session;

struct pf_pair {
	struct pf_session *s; /* NULL once the connection is gone */
	struct pf_pair *next;
	char request_id[REQUEST_ID_MAX + 1];
	uint16_t port;
	struct stream_chan *data, *error;
	struct event *timer;
	struct bufferevent *bev;  /* the socket in the pod */
	struct evbuffer *pending; /* client bytes before it is connected */
	bool connect_pending, connected, sock_eof, client_eof, done;
};

struct pf_session {
	struct stream_conn *conn;
	struct pf_pair *pairs;
	size_t npairs;
};

static void pair_free(struct pf_pair *p)
{
	if (p->pending)
		evbuffer_free(p->pending);
	p->pending = NULL;
	if (p->timer)
		event_free(p->timer);
	p->timer = NULL;
	if (p->bev)
		bufferevent_free(p->bev);
	p->bev = NULL;
	if (p->connect_pending) {
		p->s = NULL; /* on_connect() frees it */
		return;
	}
	free(p);
}

/* The pair is finished: unlink it and let its streams go. */
static void pair_remove(struct pf_pair *p)
{
	struct pf_session *s = p->s;

	if (p->done)
		return;
	p->done = true;
	if (s) {
		for (struct pf_pair **pp = &s->pairs; *pp; pp = &(*pp)->next)
			if (*pp == p) {
				*pp = p->next;
				s->npairs--;
				break;
			}
		if (s->conn && s->conn->transport == TRANSPORT_SPDY) {
			if (p->data)
				stream_chan_free(p->data);
			if (p->error)
				stream_chan_free(p->error);
		} else {
			/* WebSocket channels stay; what comes on them is dropped. */
			if (p->data)
				p->data->owner = NULL;
			if (p->error)
				p->error->owner = NULL;
		}
	}
	p->data = p->error = NULL;
	pair_free(p);
	if (s && s->conn && s->conn->transport == TRANSPORT_WS && !s->pairs)
		stream_conn_finish(s->conn); /* every port is done */
}

static void pair_fail(struct pf_pair *p, const char *fmt, ...) _printf_(2, 3);
static void pair_fail(struct pf_pair *p, const char *fmt, ...)
{
	char msg[CRISP_ERRMSG_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->s && p->s->conn)
		log_info("port-forward from %s: %s", p->s->conn->peer, msg);
	if (p->error) {
		stream_chan_send(p->error, msg, strlen(msg));
		stream_chan_fin(p->error);
	}
	if (p->data)
		stream_chan_reset(p->data);
	pair_remove(p);
}

static void pair_maybe_done(struct pf_pair *p)
{
	bool ws = p->s->conn->transport == TRANSPORT_WS;

	/* WebSocket has no half-close from the client: the socket's end is the
	 * end of the forwarded connection. */
	if (!p->sock_eof || (!p->client_eof && !ws) || !p->bev)
		return;
	if (evbuffer_get_length(bufferevent_get_input(p->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(p->bev)) > 0)
		return;
	if (!ws) {
		stream_chan_fin(p->data);
		stream_chan_fin(p->error);
	}
	pair_remove(p);
}

/* Socket to client, while the client keeps up. */
static void pair_relay(struct pf_pair *p)
{
	struct evbuffer *in;

	if (!p->bev || !p->data)
		return;
	in = bufferevent_get_input(p->bev);
	while (evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in);
		if (p->data->local_fin) {
			/* The client reset the stream: read on to the socket's end. */
			evbuffer_drain(in, n);
			break;
		}
		if (!stream_chan_can_send(p->data)) {
			bufferevent_disable(p->bev, EV_READ);
			return;
		}
		if (n > STREAM_CHUNK)
			n = STREAM_CHUNK;
		if (p->s->conn->transport == TRANSPORT_SPDY && (int64_t)n > p->data->send_window &&
		    p->data->send_window > 0)
			n = (size_t)p->data->send_window;
		stream_chan_send(p->data, evbuffer_pullup(in, (ssize_t)n), n);
		evbuffer_drain(in, n);
	}
	if (p->sock_eof) {
		if (p->s->conn->transport == TRANSPORT_SPDY)
			stream_chan_fin(p->data);
		pair_maybe_done(p);
	} else {
		bufferevent_enable(p->bev, EV_READ);
	}
}

static void on_sock_read(struct bufferevent *bev, void *arg)
{
	pair_relay(arg);
}

static void on_sock_write(struct bufferevent *bev, void *arg)
{
	struct pf_pair *p = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

	if (pending < STREAM_BUF_MAX / 2)
		stream_conn_pause_input(p->s->conn, false);
	if (pending == 0 && p->client_eof) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		pair_maybe_done(p);
	}
}

static void on_sock_event(struct bufferevent *bev, short what, void *arg)
{
	struct pf_pair *p = arg;

	if (what & BEV_EVENT_ERROR && !(what & BEV_EVENT_EOF)) {
		int e = EVUTIL_SOCKET_ERROR();
		return pair_fail(p, "error forwarding port %u to pod %s: %s", p->port,
				 p->s->conn->req->sandbox_id, evutil_socket_error_to_string(e));
	}
	p->sock_eof = true;
	bufferevent_disable(bev, EV_READ);
	pair_relay(p);
}

static void on_connect(void *ctx, int fd, const struct crisp_error *err)
{
	struct pf_pair *p = ctx;

	p->connect_pending = false;
	if (!p->s || !p->s->conn) {
		if (fd >= 0)
			close(fd);
		free(p); /* the connection went away meanwhile */
		return;
	}
	if (err || fd < 0)
		return pair_fail(p, "error forwarding port %u to pod %s: %s", p->port,
				 p->s->conn->req->sandbox_id,
				 err ? err->msg : "no socket from the backend");
	evutil_make_socket_nonblocking(fd);
	p->bev = bufferevent_socket_new(p->s->conn->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!p->bev) {
		close(fd);
		return pair_fail(p, "error forwarding port %u: out of memory", p->port);
	}
	p->connected = true;
	bufferevent_setwatermark(p->bev, EV_READ, 0, STREAM_BUF_MAX);
	bufferevent_setwatermark(p->bev, EV_WRITE, STREAM_BUF_MAX / 2, 0);
	bufferevent_setcb(p->bev, on_sock_read, on_sock_write, on_sock_event, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	evbuffer_add_buffer(bufferevent_get_output(p->bev), p->pending);
	if (p->client_eof)
		on_sock_write(p->bev, p);
}

static bool port_allowed(const struct stream_request *r, uint16_t port)
{
	if (r->n_ports == 0)
		return true; /* the kubelet names no ports for SPDY */
	for (size_t i = 0; i < r->n_ports; i++)
		if (r->ports[i] == port)
			return true;
	return false;
}

static void pair_connect(struct pf_pair *p)
{
	const struct stream_backend *b = stream_backend();

	if (p->timer)
		event_del(p->timer);
	if (!port_allowed(p->s->conn->req, p->port))
		return pair_fail(p, "port %u is not among the ports of this port-forward request",
				 p->port);
	if (!b || !b->port_connect)
		return pair_fail(p, "error forwarding port %u to pod %s: %s", p->port,
				 p->s->conn->req->sandbox_id, "streaming backend unavailable");
	p->connect_pending = true;
	b->port_connect(p->s->conn->req->sandbox_id, p->port, on_connect, p);
}

/* The pair's timer: either its streams did not both come in time, or they
 * did and it was activated to connect from the loop, outside the SPDY
 * parser (a failure there frees the streams it is still looking at). */
static void on_pair_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pf_pair *p = arg;

	if (p->data && p->error)
		pair_connect(p);
	else
		pair_fail(p, "timed out waiting for streams of request %s", p->request_id);
}

static struct pf_pair *pair_new(struct pf_session *s, const char *request_id, uint16_t port)
{
	struct pf_pair *p = xcalloc(1, sizeof(*p));

	p->s = s;
	p->port = port;
	p->pending = evbuffer_new();
	if (!p->pending)
		fatal("out of memory for a port-forward buffer");
	snprintf(p->request_id, sizeof(p->request_id), "%s", request_id);
	p->next = s->pairs;
	s->pairs = p;
	s->npairs++;
	return p;
}

/* ---- SPDY ------------------------------------------------------------------------- */

static int pf_chan_open(struct stream_conn *c, struct stream_chan *ch,
			const struct stream_header *h, size_t nh)
{
	struct pf_session *s = c->session;
	const char *type = NULL, *port_s = NULL, *rid = NULL;
	char rid_buf[16];
	uint64_t port;
	struct pf_pair *p;
	bool is_data;

	for (size_t i = 0; i < nh; i++) {
		if (streq(h[i].name, "streamtype"))
			type = h[i].value;
		else if (streq(h[i].name, "port"))
			port_s = h[i].value;
		else if (streq(h[i].name, "requestid"))
			rid = h[i].value;
	}
	if (!type || (!streq(type, "data") && !streq(type, "error")))
		return -1;
	if (!port_s || parse_uint64(port_s, 10, 65535, &port) < 0 || port == 0)
		return -1;
	is_data = streq(type, "data");
	if (!rid) {
		/* client-go before requestID: the pair is (error n, data n+2) */
		snprintf(rid_buf, sizeof(rid_buf), "%u", is_data ? ch->id - 2 : ch->id);
		rid = rid_buf;
	}
	if (strlen(rid) > REQUEST_ID_MAX)
		return -1;
	for (p = s->pairs; p; p = p->next)
		if (streq(p->request_id, rid))
			break;
	if (!p) {
		if (s->npairs >= PAIRS_MAX)
			return -1;
		p = pair_new(s, rid, (uint16_t)port);
		p->timer = evtimer_new(c->base, on_pair_timer, p);
		event_add(p->timer, &(struct timeval){ .tv_sec = STREAM_CREATE_TIMEOUT_S });
	}
	if ((is_data ? p->data : p->error) || p->port != port)
		return -1; /* a second stream of that type, or another port */
	stream_chan_accept(ch);
	ch->owner = p;
	ch->role = is_data;
	if (is_data)
		p->data = ch;
	else
		p->error = ch;
	if (p->data && p->error) {
		event_del(p->timer);
		event_active(p->timer, EV_TIMEOUT, 0);
	}
	return 0;
}

/* ---- both ----------------------------------------------------------------------------- */

static void pf_chan_data(struct stream_conn *c, struct stream_chan *ch, const uint8_t *data,
			 size_t len)
{
	struct pf_pair *p = ch->owner;
	struct evbuffer *buf;

	if (!p || ch != p->data || p->client_eof)
		return; /* nothing is read from error streams */
	/* The client writes as soon as its streams exist: until the socket is
	 * connected, its bytes wait in pending, with the same bound. */
	buf = p->bev ? bufferevent_get_output(p->bev) : p->pending;
	evbuffer_add(buf, data, len);
	if (evbuffer_get_length(buf) >= STREAM_BUF_MAX)
		stream_conn_pause_input(c, true);
}

static void pf_chan_eof(struct stream_conn *c, struct stream_chan *ch)
{
	struct pf_pair *p = ch->owner;

	if (!p || ch != p->data)
		return;
	p->client_eof = true;
	if (p->bev)
		on_sock_write(p->bev, p);
}

static void pf_drained(struct stream_conn *c)
{
	struct pf_session *s = c->session;
	struct pf_pair *next;

	for (struct pf_pair *p = s->pairs; p; p = next) {
		next = p->next;
		pair_relay(p);
		if (c->closed)
			return;
	}
}

static int pf_start(struct stream_conn *c)
{
	struct pf_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	c->session = s;
	if (c->transport == TRANSPORT_SPDY)
		return 0;
	/* WebSocket: every port of the request, at once. */
	if (c->req->n_ports > PAIRS_MAX)
		return -1;
	for (size_t i = 0; i < c->req->n_ports; i++) {
		uint16_t port = c->req->ports[i];
		uint8_t le[2] = { (uint8_t)port, (uint8_t)(port >> 8) };
		struct pf_pair *p = pair_new(s, "", port);

		p->data = stream_chan_new(c, (uint32_t)(2 * i));
		p->error = stream_chan_new(c, (uint32_t)(2 * i + 1));
		if (!p->data || !p->error)
			return -1;
		p->data->owner = p->error->owner = p;
		p->data->accepted = p->error->accepted = true;
		stream_chan_send(p->data, le, 2);
		stream_chan_send(p->error, le, 2);
		/* Each connects from the loop and reports on its own error
		 * channel. */
		p->timer = evtimer_new(c->base, on_pair_timer, p);
		event_active(p->timer, EV_TIMEOUT, 0);
	}
	return 0;
}

static void pf_free(struct stream_conn *c)
{
	struct pf_session *s = c->session;

	if (!s)
		return;
	c->session = NULL;
	while (s->pairs) {
		struct pf_pair *p = s->pairs;
		s->pairs = p->next;
		p->s = NULL;
		p->done = true;
		pair_free(p);
	}
	free(s);
}

const struct stream_proto stream_portforward_proto = {
	.start = pf_start,
	.chan_open = pf_chan_open,
	.chan_data = pf_chan_data,
	.chan_eof = pf_chan_eof,
	.drained = pf_drained,
	.free = pf_free,
};
