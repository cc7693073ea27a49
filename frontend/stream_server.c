/* The streaming server's listener, tokens and HTTP/1.1 upgrade.
 *
 * The listening socket is made at start-up, before the sandbox takes socket()
 * and bind() away. A CRI call leaves a validated request here under a random
 * token; the first client that names the token takes the request (tokens are
 * single-use, even when the upgrade then fails) and upgrades its connection to
 * SPDY/3.1 or WebSocket. Everything a client sends before the upgrade is
 * bounded: one request head of at most 8 KiB, read within 30 s.
 *
 * Anyone who can connect may, with no token: the kubelet's clients send their
 * request head at once, so a connection still without one is the first to go
 * when the listener is full (see on_accept). */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "common/log.h"
#include "frontend/stream.h"

#define TOKEN_BYTES 32
#define TOKEN_LEN 43 /* base64url of 32 bytes, no padding */
#define TOKENS_MAX 1000
#define HEAD_MAX 8192
#define HEAD_TIMEOUT_S 30
#define HEADERS_MAX 64
#define PROTOCOLS_MAX 16
#define CONNS_MAX 256
/* Connections that have not sent their request head yet, at most: beyond
 * it, a new connection closes the oldest of them. */
#define WAITING_MAX 64
#define CHANS_MAX 512

struct token {
	char token[TOKEN_LEN + 1];
	uint64_t expires_ms;
	struct stream_request *req;
	struct token *next;
};

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	SSL_CTX *ssl_ctx;
	char *url_base; /* "http://127.0.0.1:41235" */
	uint64_t token_ttl_ms;
	uint64_t idle_ms;
	struct token *tokens;
	size_t ntokens;
	struct stream_conn *conns;
	size_t nconns;
	const struct stream_backend *backend;
} srv;

void stream_set_backend(const struct stream_backend *b)
{
	srv.backend = b;
}

const struct stream_backend *stream_backend(void)
{
	return srv.backend;
}

void stream_request_free(struct stream_request *r)
{
	if (!r)
		return;
	free(r->container_id);
	free(r->sandbox_id);
	for (size_t i = 0; i < r->n_cmd; i++)
		free(r->cmd[i]);
	free(r->cmd);
	free(r->ports);
	free(r);
}

/* ---- tokens ------------------------------------------------------------------ */

static void token_free(struct token *t)
{
	stream_request_free(t->req);
	OPENSSL_cleanse(t->token, sizeof(t->token));
	free(t);
}

static void tokens_expire(uint64_t now)
{
	for (struct token **p = &srv.tokens; *p;) {
		struct token *t = *p;
		if (t->expires_ms <= now) {
			*p = t->next;
			srv.ntokens--;
			token_free(t);
		} else {
			p = &t->next;
		}
	}
}

static void token_make(char out[TOKEN_LEN + 1])
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[TOKEN_BYTES + 1] = { 0 };
	size_t n = 0;
	ssize_t r;

	for (size_t got = 0; got < TOKEN_BYTES; got += (size_t)r) {
		r = getrandom(raw + got, TOKEN_BYTES - got, 0);
		if (r < 0 && errno == EINTR)
			r = 0;
		else if (r < 0)
			fatal("getrandom for a streaming token: %m");
	}
	/* 3 bytes -> 4 characters; the last 2 bytes give 3 characters. */
	for (size_t i = 0; i < TOKEN_BYTES; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8;
		if (i + 2 < TOKEN_BYTES)
			v |= raw[i + 2];
		out[n++] = b64url[(v >> 18) & 63];
		out[n++] = b64url[(v >> 12) & 63];
		out[n++] = b64url[(v >> 6) & 63];
		if (i + 2 < TOKEN_BYTES)
			out[n++] = b64url[v & 63];
	}
	out[n] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
}

static const char *kind_path(enum stream_kind k)
{
	switch (k) {
	case STREAM_EXEC:
		return "exec";
	case STREAM_ATTACH:
		return "attach";
	case STREAM_PORT_FORWARD:
		return "portforward";
	}
	return "?";
}

char *stream_server_url(struct stream_request *r, struct crisp_error *err)
{
	struct token *t;

	if (!srv.listener) {
		stream_request_free(r);
		err_set(err, CRISP_E_UNAVAILABLE, "the streaming server is not running");
		return NULL;
	}
	tokens_expire(now_ms());
	if (srv.ntokens >= TOKENS_MAX) {
		stream_request_free(r);
		err_set(err, CRISP_E_RESOURCE,
			"maximum number of in-flight requests exceeded (%d streaming URLs not used "
			"yet)",
			TOKENS_MAX);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	token_make(t->token);
	t->expires_ms = now_ms() + srv.token_ttl_ms;
	t->req = r;
	t->next = srv.tokens;
	srv.tokens = t;
	srv.ntokens++;
	return xasprintf("%s/%s/%s", srv.url_base, kind_path(r->kind), t->token);
}

/* Take the request of a token: single use, so it is gone whatever happens
 * next. NULL if unknown, expired or for another kind of session. */
static struct stream_request *token_consume(const char *token, size_t len, enum stream_kind kind)
{
	uint64_t now = now_ms();
	struct stream_request *req = NULL;

	if (len != TOKEN_LEN)
		return NULL;
	for (struct token **p = &srv.tokens; *p; p = &(*p)->next) {
		struct token *t = *p;
		if (CRYPTO_memcmp(t->token, token, TOKEN_LEN) != 0)
			continue;
		*p = t->next;
		srv.ntokens--;
		if (t->expires_ms > now && t->req->kind == kind)
			req = TAKE_PTR(t->req);
		token_free(t);
		break;
	}
	return req;
}

/* ---- connections -------------------------------------------------------------- */

struct stream_chan *stream_chan_new(struct stream_conn *c, uint32_t id)
{
	struct stream_chan *ch;

	if (c->nchans >= CHANS_MAX)
		return NULL;
	ch = xcalloc(1, sizeof(*ch));
	ch->conn = c;
	ch->id = id;
	ch->role = -1;
	ch->send_window = 64 * 1024;
	ch->next = c->chans;
	c->chans = ch;
	c->nchans++;
	return ch;
}

struct stream_chan *stream_chan_find(struct stream_conn *c, uint32_t id)
{
	for (struct stream_chan *ch = c->chans; ch; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

void stream_chan_free(struct stream_chan *ch)
{
	struct stream_conn *c;

	if (!ch)
		return;
	c = ch->conn;
	for (struct stream_chan **p = &c->chans; *p; p = &(*p)->next)
		if (*p == ch) {
			*p = ch->next;
			c->nchans--;
			break;
		}
	free(ch);
}

size_t stream_conn_pending(struct stream_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

bool stream_conn_output_full(struct stream_conn *c)
{
	return c->closed || c->finishing || stream_conn_pending(c) >= STREAM_BUF_MAX;
}

void stream_conn_pause_input(struct stream_conn *c, bool pause)
{
	if (c->closed || c->input_paused == pause)
		return;
	c->input_paused = pause;
	if (pause) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
	/* Frames already buffered would wait for the next byte from the
	 * client: parse them on the next loop turn. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		event_active(c->resume_ev, EV_TIMEOUT, 0);
}

void stream_conn_activity(struct stream_conn *c)
{
	c->last_active_ms = now_ms();
}

static void conn_free(struct stream_conn *c)
{
	if (c->proto && c->proto->free)
		c->proto->free(c);
	c->proto = NULL;
	while (c->chans)
		stream_chan_free(c->chans);
	if (c->spdy)
		spdy_free(c);
	if (c->ws)
		ws_free(c);
	if (c->timer)
		event_free(c->timer);
	if (c->free_ev)
		event_free(c->free_ev);
	if (c->resume_ev)
		event_free(c->resume_ev);
	if (c->bev)
		bufferevent_free(c->bev);
	stream_request_free(c->req);
	if (c->prev_conn)
		c->prev_conn->next_conn = c->next_conn;
	else
		srv.conns = c->next_conn;
	if (c->next_conn)
		c->next_conn->prev_conn = c->prev_conn;
	srv.nconns--;
	free(c);
}

/* Closing runs from inside the callbacks of the connection's own buffers and
 * of the sessions above it; the memory goes on the next loop turn, when no
 * caller holds it any more. */
static void on_deferred_free(evutil_socket_t fd, short what, void *arg)
{
	struct stream_conn *c = arg;

	event_free(c->free_ev);
	c->free_ev = NULL;
	conn_free(c);
}

void stream_conn_close(struct stream_conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	if (why)
		log_info("streaming connection from %s closed: %s", c->peer, why);
	/* Release the session now: fds close and stdin ends at once. */
	if (c->proto && c->proto->free)
		c->proto->free(c);
	c->proto = NULL;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	if (c->timer)
		event_del(c->timer);
	event_del(c->resume_ev);
	c->free_ev = evtimer_new(c->base, on_deferred_free, c);
	event_active(c->free_ev, EV_TIMEOUT, 0);
}

void stream_conn_finish(struct stream_conn *c)
{
	if (c->closed || c->finishing)
		return;
	if (c->transport == TRANSPORT_SPDY)
		spdy_finish(c);
	else if (c->transport == TRANSPORT_WS)
		ws_finish(c);
	c->finishing = true;
	/* Nothing more is read; what is queued goes out, then we close. */
	bufferevent_disable(c->bev, EV_READ);
	if (stream_conn_pending(c) == 0)
		stream_conn_close(c, NULL);
}

/* ---- transport dispatch ------------------------------------------------------- */

void stream_chan_accept(struct stream_chan *ch)
{
	if (ch->accepted)
		return;
	ch->accepted = true;
	if (ch->conn->transport == TRANSPORT_SPDY)
		spdy_chan_accept(ch);
}

bool stream_chan_can_send(struct stream_chan *ch)
{
	if (ch->local_fin || stream_conn_output_full(ch->conn))
		return false;
	return ch->conn->transport != TRANSPORT_SPDY || spdy_can_send(ch);
}

void stream_chan_send(struct stream_chan *ch, const void *data, size_t len)
{
	if (ch->local_fin || ch->conn->closed || ch->conn->finishing)
		return;
	stream_conn_activity(ch->conn);
	if (ch->conn->transport == TRANSPORT_SPDY)
		spdy_send_data(ch, data, len, false);
	else
		ws_send_message(ch->conn, (uint8_t)ch->id, data, len);
}

void stream_chan_fin(struct stream_chan *ch)
{
	if (ch->local_fin || ch->conn->closed || ch->conn->finishing)
		return;
	if (ch->conn->transport == TRANSPORT_SPDY)
		spdy_send_data(ch, NULL, 0, true);
	ch->local_fin = true; /* WebSocket channels have no half-close toward the client */
}

void stream_chan_reset(struct stream_chan *ch)
{
	if (ch->conn->closed || ch->conn->finishing)
		return;
	if (ch->conn->transport == TRANSPORT_SPDY && !(ch->local_fin && ch->remote_fin))
		spdy_send_rst(ch->conn, ch->id, 5 /* CANCEL */);
	ch->local_fin = ch->remote_fin = true;
}

/* ---- HTTP ------------------------------------------------------------------------ */

static const char *reason_of(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	}
	return "Error";
}

/* An error answer, then the connection closes once it is written. */
static void http_fail(struct stream_conn *c, int status, const char *extra_headers,
		      const char *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	log_info("streaming request from %s refused: %d %s", c->peer, status, body);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			    "X-Content-Type-Options: nosniff\r\nConnection: close\r\n%s"
			    "Content-Length: %zu\r\n\r\n%s\n",
			    status, reason_of(status), extra_headers ? extra_headers : "",
			    strlen(body) + 1, body);
	c->finishing = true;
	bufferevent_disable(c->bev, EV_READ);
}

struct http_request {
	char *method, *target, *version;
	struct stream_header h[HEADERS_MAX];
	size_t nh;
};

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", ch);
}

/* Parse a request head in place (head ends with "\r\n\r\n", NUL-terminated):
 * the request line and at most HEADERS_MAX well-formed header fields. */
static int http_parse(char *head, struct http_request *rq, const char **why)
{
	char *line, *next, *sp;

	*rq = (struct http_request){ 0 };
	next = strstr(head, "\r\n");
	*next = '\0';
	line = head;
	next += 2;
	rq->method = line;
	if (!(sp = strchr(line, ' ')))
		return *why = "malformed request line", -1;
	*sp = '\0';
	rq->target = sp + 1;
	if (!(sp = strchr(rq->target, ' ')))
		return *why = "malformed request line", -1;
	*sp = '\0';
	rq->version = sp + 1;
	if (!streq(rq->version, "HTTP/1.1") || rq->target[0] != '/')
		return *why = "malformed request line (HTTP/1.1 only)", -1;
	for (line = next; *line; line = next) {
		char *colon, *value, *end;

		next = strstr(line, "\r\n");
		*next = '\0';
		next += 2;
		if (!*line)
			break;
		if (rq->nh >= HEADERS_MAX)
			return *why = "too many header fields", -1;
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return *why = "malformed header field", -1;
		for (char *p = line; p < colon; p++)
			if (!is_tchar(*p))
				return *why = "malformed header field name", -1;
		*colon = '\0';
		value = colon + 1;
		value += strspn(value, " \t");
		end = value + strlen(value);
		while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		for (char *p = value; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return *why = "control character in a header value", -1;
		rq->h[rq->nh].name = line;
		rq->h[rq->nh].value = value;
		rq->nh++;
	}
	return 0;
}

static const char *http_header(const struct http_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->nh; i++)
		if (strcasecmp(rq->h[i].name, name) == 0)
			return rq->h[i].value;
	return NULL;
}

/* Whether the comma-separated list contains token (case-insensitive). */
static bool list_has(const char *list, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = list; p && *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		size_t trimmed = len;
		while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
			trimmed--;
		if (trimmed == n && strncasecmp(p, token, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/* The client's protocols, in its order: every value of every instance of the
 * header, split on commas and trimmed. */
static size_t client_protocols(const struct http_request *rq, const char *name,
			       char out[PROTOCOLS_MAX][64])
{
	size_t n = 0;

	for (size_t i = 0; i < rq->nh; i++) {
		if (strcasecmp(rq->h[i].name, name) != 0)
			continue;
		for (const char *p = rq->h[i].value; *p && n < PROTOCOLS_MAX;) {
			p += strspn(p, " \t,");
			size_t len = strcspn(p, ",");
			size_t trimmed = len;
			while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
				trimmed--;
			if (trimmed > 0 && trimmed < 64) {
				memcpy(out[n], p, trimmed);
				out[n++][trimmed] = '\0';
			}
			p += len;
		}
	}
	return n;
}

struct proto_choice {
	const char *name;
	int version;
	bool base64;
};

/* SPDY: the kubelet's lists (PROTOCOLS.md 2.1, 4.1). v5 is WebSocket-only
 * and v1 (channel.k8s.io) is not offered. */
static const struct proto_choice spdy_rc[] = {
	{ "v4.channel.k8s.io", 4, false },
	{ "v3.channel.k8s.io", 3, false },
	{ "v2.channel.k8s.io", 2, false },
};
static const struct proto_choice spdy_pf[] = { { "portforward.k8s.io", 0, false } };
/* WebSocket (PROTOCOLS.md 3, 4.2); v5 adds the stdin half-close. */
static const struct proto_choice ws_rc[] = {
	{ "v5.channel.k8s.io", 5, false },       { "v4.channel.k8s.io", 4, false },
	{ "v4.base64.channel.k8s.io", 4, true }, { "channel.k8s.io", 1, false },
	{ "base64.channel.k8s.io", 1, true },
};
static const struct proto_choice ws_pf[] = {
	{ "v4.channel.k8s.io", 4, false },
	{ "v4.base64.channel.k8s.io", 4, true },
};

/* The first client protocol the server has; NULL if none. */
static const struct proto_choice *negotiate(char offered[PROTOCOLS_MAX][64], size_t n,
					    const struct proto_choice *list, size_t nlist)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < nlist; j++)
			if (streq(offered[i], list[j].name))
				return &list[j];
	return NULL;
}

static void refuse_protocols(struct stream_conn *c, const char *header,
			     const struct proto_choice *list, size_t nlist)
{
	char extra[512] = "";
	size_t off = 0;

	for (size_t i = 0; i < nlist && off < sizeof(extra); i++)
		off += (size_t)snprintf(extra + off, sizeof(extra) - off, "%s: %s\r\n", header,
					list[i].name);
	http_fail(c, 403, extra, "unable to upgrade: no common stream protocol");
}

static int upgrade_spdy(struct stream_conn *c, const struct http_request *rq)
{
	char offered[PROTOCOLS_MAX][64];
	size_t n = client_protocols(rq, "X-Stream-Protocol-Version", offered);
	bool pf = c->req->kind == STREAM_PORT_FORWARD;
	const struct proto_choice *list = pf ? spdy_pf : spdy_rc;
	size_t nlist = pf ? ARRAY_SIZE(spdy_pf) : ARRAY_SIZE(spdy_rc);
	const struct proto_choice *p;
	struct crisp_error err;

	if (n == 0)
		return http_fail(c, 400, NULL,
				 "unable to upgrade: missing X-Stream-Protocol-Version"),
		       -1;
	if (!(p = negotiate(offered, n, list, nlist)))
		return refuse_protocols(c, "X-Accepted-Stream-Protocol-Versions", list, nlist), -1;
	c->version = p->version;
	if (spdy_init(c, &err) < 0)
		return http_fail(c, 503, NULL, err.msg), -1;
	c->transport = TRANSPORT_SPDY;
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
			    "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
			    p->name);
	return 0;
}

static int upgrade_ws(struct stream_conn *c, const struct http_request *rq)
{
	char offered[PROTOCOLS_MAX][64];
	size_t n = client_protocols(rq, "Sec-WebSocket-Protocol", offered);
	bool pf = c->req->kind == STREAM_PORT_FORWARD;
	const struct proto_choice *list = pf ? ws_pf : ws_rc;
	size_t nlist = pf ? ARRAY_SIZE(ws_pf) : ARRAY_SIZE(ws_rc);
	const struct proto_choice *p = NULL;
	const char *key = http_header(rq, "Sec-WebSocket-Key");
	const char *version = http_header(rq, "Sec-WebSocket-Version");
	char accept[29], proto_line[96] = "";
	struct crisp_error err;

	if (!version || !streq(version, "13"))
		return http_fail(c, 426, "Sec-WebSocket-Version: 13\r\n",
				 "unsupported WebSocket version (13 only)"),
		       -1;
	/* The key is 16 random bytes in base64: 24 characters. */
	if (!key || strlen(key) != 24 ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
			"qrstuvwxyz0123456789+/=") != 24)
		return http_fail(c, 400, NULL, "missing or malformed Sec-WebSocket-Key"), -1;
	if (n > 0 && !(p = negotiate(offered, n, list, nlist)))
		return refuse_protocols(c, "Sec-WebSocket-Protocol", list, nlist), -1;
	/* No subprotocol at all: binary framing of the oldest version. */
	c->version = p ? p->version : (pf ? 4 : 1);
	c->base64 = p && p->base64;
	if (pf && c->req->n_ports == 0)
		return http_fail(c, 400, NULL, "port-forward over WebSocket needs ports"), -1;
	if (ws_init(c, &err) < 0)
		return http_fail(c, 503, NULL, err.msg), -1;
	c->transport = TRANSPORT_WS;
	ws_accept_key(key, accept);
	if (p)
		snprintf(proto_line, sizeof(proto_line), "Sec-WebSocket-Protocol: %s\r\n", p->name);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			    accept, proto_line);
	return 0;
}

static void transport_read(struct stream_conn *c)
{
	if (c->transport == TRANSPORT_SPDY)
		spdy_read(c);
	else if (c->transport == TRANSPORT_WS)
		ws_read(c);
}

/* The request head is complete: route, take the token, upgrade. */
static void http_handle(struct stream_conn *c, char *head)
{
	static const struct {
		const char *prefix;
		enum stream_kind kind;
	} routes[] = {
		{ "/exec/", STREAM_EXEC },
		{ "/attach/", STREAM_ATTACH },
		{ "/portforward/", STREAM_PORT_FORWARD },
	};
	struct http_request rq;
	const char *why, *conn_hdr, *upgrade, *token = NULL;
	size_t token_len = 0;
	enum stream_kind kind = STREAM_EXEC;
	bool ws;
	int r;

	if (http_parse(head, &rq, &why) < 0)
		return http_fail(c, 400, NULL, why);
	if (!streq(rq.method, "GET") && !streq(rq.method, "POST"))
		return http_fail(c, 405, "Allow: GET, POST\r\n", "method not allowed");
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		size_t n = strlen(routes[i].prefix);
		if (strncmp(rq.target, routes[i].prefix, n) == 0) {
			token = rq.target + n;
			token_len = strcspn(token, "?#");
			kind = routes[i].kind;
			break;
		}
	}
	if (!token || !(c->req = token_consume(token, token_len, kind)))
		return http_fail(c, 404, NULL, "404 page not found");
	conn_hdr = http_header(&rq, "Connection");
	upgrade = http_header(&rq, "Upgrade");
	ws = upgrade && strcasecmp(upgrade, "websocket") == 0 && conn_hdr &&
	     list_has(conn_hdr, "upgrade");
	if (ws) {
		r = upgrade_ws(c, &rq);
	} else {
		if (!conn_hdr || !upgrade || !list_has(conn_hdr, "upgrade") ||
		    !strcasestr(upgrade, "spdy/3.1"))
			return http_fail(c, 400, NULL,
					 "unable to upgrade: missing upgrade headers in request");
		r = upgrade_spdy(c, &rq);
	}
	if (r < 0)
		return;
	log_info("streaming %s session for %s from %s over %s (version %d%s)",
		 kind_path(c->req->kind),
		 c->req->kind == STREAM_PORT_FORWARD ? c->req->sandbox_id : c->req->container_id,
		 c->peer, ws ? "WebSocket" : "SPDY/3.1", c->version, c->base64 ? ", base64" : "");
	c->proto = c->req->kind == STREAM_PORT_FORWARD ? &stream_portforward_proto
						       : &stream_remotecommand_proto;
	stream_conn_activity(c);
	event_del(c->timer);
	if (srv.idle_ms)
		event_add(c->timer, &(struct timeval){ .tv_sec = (time_t)(srv.idle_ms / 1000) });
	if (c->proto->start(c) < 0)
		return stream_conn_close(c, "session could not start");
	/* Frames the client sent along with the request. */
	if (!c->closed && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		transport_read(c);
}

static void http_read(struct stream_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[HEAD_MAX + 1];
	size_t len;

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > HEAD_MAX)
			http_fail(c, 431, NULL, "request head longer than 8 KiB");
		return;
	}
	len = (size_t)end.pos + 4;
	if (len > HEAD_MAX)
		return http_fail(c, 431, NULL, "request head longer than 8 KiB");
	evbuffer_remove(in, head, len);
	head[len] = '\0';
	if (memchr(head, '\0', len))
		return http_fail(c, 400, NULL, "NUL byte in the request head");
	http_handle(c, head);
}

/* ---- events ------------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct stream_conn *c = arg;

	if (c->closed || c->finishing)
		return;
	if (c->transport == TRANSPORT_HTTP)
		http_read(c);
	else
		transport_read(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct stream_conn *c = arg;

	if (c->closed)
		return;
	if (c->finishing) {
		if (stream_conn_pending(c) == 0)
			stream_conn_close(c, NULL);
		return;
	}
	if (stream_conn_pending(c) >= STREAM_BUF_MAX / 2)
		return;
	if (c->proto && c->proto->drained)
		c->proto->drained(c);
	/* The engines stop parsing while the output is full (spdy_read,
	 * ws_read): what the client sent meanwhile is parsed now. */
	if (!c->closed && !c->finishing && !c->input_paused && c->transport != TRANSPORT_HTTP &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct stream_conn *c = arg;
	char why[160];
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		/* A client that half-closed after its request still gets the
		 * answer we queued: on_write() closes once it is out. */
		if (c->finishing && stream_conn_pending(c) > 0) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		stream_conn_close(c, c->finishing ? NULL : "client went away");
		return;
	}
	/* libevent queues SSL_get_error()'s code (SSL_ERROR_SYSCALL, ...) with
	 * OpenSSL's own errors: a number of no library, which says nothing (a
	 * reset connection was "error:00000005:lib(0)::reason(5)"). The last
	 * error of OpenSSL's names the failure; without one, errno does. */
	while ((e = bufferevent_get_openssl_error(bev)) && ERR_GET_LIB(e) == 0)
		;
	if (e) {
		ERR_error_string_n(e, why, sizeof(why));
		stream_conn_close(c, why);
	} else {
		snprintf(why, sizeof(why), "connection error: %s",
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		stream_conn_close(c, why);
	}
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct stream_conn *c = arg;

	if (!c->closed && !c->finishing && !c->input_paused)
		transport_read(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct stream_conn *c = arg;
	uint64_t idle, now = now_ms();

	if (c->closed)
		return;
	if (c->transport == TRANSPORT_HTTP) {
		stream_conn_close(c, "no complete request within 30 s");
		return;
	}
	idle = now - c->last_active_ms;
	if (idle >= srv.idle_ms) {
		stream_conn_close(c, "idle timeout");
		return;
	}
	event_add(c->timer, &(struct timeval){
				    .tv_sec = (time_t)((srv.idle_ms - idle) / 1000),
				    .tv_usec = (suseconds_t)((srv.idle_ms - idle) % 1000 * 1000) });
}

static void peer_name(const struct sockaddr *sa, char *out, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%u", addr, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%u", addr, port);
	} else {
		snprintf(out, len, "?");
	}
}

/* Open connections: closed ones are only waiting to be freed. */
static size_t conns_open(void)
{
	size_t n = 0;

	for (struct stream_conn *c = srv.conns; c; c = c->next_conn)
		n += !c->closed;
	return n;
}

/* Without a token nothing stops a local user (or a process in a host-network
 * pod) from opening connections and sending nothing, each held 30 s, until
 * the listener is full and the kubelet's exec and port-forward sessions
 * cannot connect. A client that has not sent its request head yet is the
 * one to go, the oldest first: the kubelet's clients send theirs at once, so
 * an attacker has to open connections faster than they do to keep them out,
 * and established sessions (each from a token a CRI client was given) are
 * never closed for a newcomer. Called before accepting a connection from
 * peer. */
static void make_room(const char *peer)
{
	static uint64_t last_log_ms, closed_since_log;
	struct stream_conn *oldest = NULL;
	size_t open = 0, waiting = 0;

	for (struct stream_conn *c = srv.conns; c; c = c->next_conn) {
		if (c->closed)
			continue;
		open++;
		/* The list is newest first: the last one found is the oldest. */
		if (c->transport == TRANSPORT_HTTP && !c->finishing) {
			waiting++;
			oldest = c;
		}
	}
	if (!oldest || (waiting < WAITING_MAX && open < CONNS_MAX))
		return;
	/* One line per 10 s at most: an attacker would otherwise write one
	 * per connection. */
	closed_since_log++;
	if (now_ms() - last_log_ms >= 10000) {
		log_warn("streaming: %zu connections without a request (of %zu open): closing "
			 "the oldest, from %s, for one from %s (%" PRIu64 " so closed since "
			 "the last such line)",
			 waiting, open, oldest->peer, peer, closed_since_log);
		last_log_ms = now_ms();
		closed_since_log = 0;
	}
	stream_conn_close(oldest, NULL); /* logged above */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct stream_conn *c;
	char peer[64];

	peer_name(sa, peer, sizeof(peer));
	make_room(peer);
	if (conns_open() >= CONNS_MAX || srv.nconns >= 2 * CONNS_MAX) {
		log_warn("streaming connection from %s refused: %d sessions open", peer, CONNS_MAX);
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = srv.base;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	if (srv.ssl_ctx) {
		SSL *ssl = SSL_new(srv.ssl_ctx);
		if (!ssl) {
			log_err("streaming: SSL_new failed");
			evutil_closesocket(fd);
			free(c);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(
			srv.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->bev = bufferevent_socket_new(srv.base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		log_err("streaming: cannot set up the connection from %s", peer);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next_conn = srv.conns;
	if (srv.conns)
		srv.conns->prev_conn = c;
	srv.conns = c;
	srv.nconns++;
	c->timer = evtimer_new(srv.base, on_timer, c);
	c->resume_ev = evtimer_new(srv.base, on_resume, c);
	event_add(c->timer, &(struct timeval){ .tv_sec = HEAD_TIMEOUT_S });
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* Never hold more than a frame's worth of the client's bytes. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, STREAM_FRAME_MAX + 64);
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_BUF_MAX / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_listen_error(struct evconnlistener *l, void *arg)
{
	log_err("streaming server: accept failed: %s",
		evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ---- start and stop ------------------------------------------------------------- */

/* OpenSSL's default for an encrypted key is to prompt on the terminal,
 * which a daemon has not (or worse, has: crispd started by hand). No
 * passphrase is configurable, so say that one was asked for. */
static int tls_refuse_passphrase(char *buf, int size, int rwflag, void *asked)
{
	if (asked)
		*(bool *)asked = true;
	return -1;
}

static int tls_setup(const struct crisp_config *cfg, struct crisp_error *err)
{
	bool passphrase_asked = false;
	char why[256];

	srv.ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (!srv.ssl_ctx)
		return err_set(err, CRISP_E_INTERNAL, "streaming TLS: SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(srv.ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_default_passwd_cb(srv.ssl_ctx, tls_refuse_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(srv.ssl_ctx, &passphrase_asked);
	if (SSL_CTX_use_certificate_chain_file(srv.ssl_ctx, cfg->stream_tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv.ssl_ctx, cfg->stream_tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(srv.ssl_ctx) != 1) {
		if (passphrase_asked)
			snprintf(why, sizeof(why),
				 "the key is encrypted; crisp takes unencrypted keys only");
		else
			ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		ERR_clear_error();
		SSL_CTX_free(srv.ssl_ctx);
		srv.ssl_ctx = NULL;
		return err_set(err, CRISP_E_INVALID,
			       "streaming TLS: cannot load certificate %s and key %s: %s",
			       cfg->stream_tls_cert, cfg->stream_tls_key, why);
	}
	/* the pointer to passphrase_asked must not outlive this frame */
	SSL_CTX_set_default_passwd_cb_userdata(srv.ssl_ctx, NULL);
	return 0;
}

int stream_server_start(struct event_base *base, const struct crisp_config *cfg,
			struct crisp_error *err)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	bool tls = cfg->stream_tls_cert && *cfg->stream_tls_cert;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	unsigned port;

	srv.base = base;
	srv.token_ttl_ms = (uint64_t)cfg->stream_token_ttl * 1000;
	srv.idle_ms = (uint64_t)cfg->stream_idle_timeout * 1000;
	if (tls != (cfg->stream_tls_key && *cfg->stream_tls_key))
		return err_set(err, CRISP_E_INVALID,
			       "streaming: tls_cert and tls_key must be set together");
	if (inet_pton(AF_INET, cfg->stream_address, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)cfg->stream_port);
		sslen = sizeof(*in);
	} else if (inet_pton(AF_INET6, cfg->stream_address, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)cfg->stream_port);
		sslen = sizeof(*in6);
	} else {
		return err_set(err, CRISP_E_INVALID, "streaming: address '%s' is not an IP address",
			       cfg->stream_address);
	}
	if (tls && tls_setup(cfg, err) < 0)
		return -1;
	srv.listener = evconnlistener_new_bind(base, on_accept, NULL,
					       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						       LEV_OPT_CLOSE_ON_EXEC,
					       128, (struct sockaddr *)&ss, (int)sslen);
	if (!srv.listener) {
		err_set_errno(err, CRISP_E_INTERNAL, errno,
			      "streaming: cannot listen on %s port %u", cfg->stream_address,
			      cfg->stream_port);
		stream_server_stop();
		return -1;
	}
	evconnlistener_set_error_cb(srv.listener, on_listen_error);
	sslen = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(srv.listener), (struct sockaddr *)&ss, &sslen) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "streaming: getsockname");
		stream_server_stop();
		return -1;
	}
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
		srv.url_base = xasprintf("%s://%s:%u", tls ? "https" : "http", addr, port);
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
		srv.url_base = xasprintf("%s://[%s]:%u", tls ? "https" : "http", addr, port);
	}
	log_info("streaming server listening on %s", srv.url_base);
	return 0;
}

void stream_server_stop(void)
{
	while (srv.conns) {
		struct stream_conn *c = srv.conns;
		if (!c->closed && c->proto && c->proto->free)
			c->proto->free(c);
		c->proto = NULL;
		c->closed = true;
		conn_free(c);
	}
	while (srv.tokens) {
		struct token *t = srv.tokens;
		srv.tokens = t->next;
		token_free(t);
	}
	srv.ntokens = 0;
	if (srv.listener)
		evconnlistener_free(srv.listener);
	srv.listener = NULL;
	if (srv.ssl_ctx)
		SSL_CTX_free(srv.ssl_ctx);
	srv.ssl_ctx = NULL;
	free(srv.url_base);
	srv.url_base = NULL;
}
