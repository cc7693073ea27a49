/* Unit tests of the streaming server (frontend/stream_*.c): the token URL,
 * the WebSocket accept key, the SPDY header codec against known bytes, and
 * whole sessions over real TCP with a backend that runs local processes
 * (fork/exec, pipes or a pty) and connects to local ports, so that the same
 * engine code runs as in crisp-frontend, only the fds come from here.
 *
 * "test-stream --serve" keeps the server running with that backend and
 * answers each JSON request on stdin (see request_from_line) with a URL, so the Python clients of tests/integration can be checked against it
 * without a crispd. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pty.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <zlib.h>

#include "common/log.h"
#include "frontend/stream.h"
#include "tests/unit/tap.h"

static struct event_base *base;

/* ---- a backend of local processes ----------------------------------------------------- */

struct proc {
	pid_t pid;
	int ptm;
	struct event *poll;
	stream_exit_cb cb;
	void *ctx;
	bool waiting, released;
};

struct deferred_open {
	stream_open_cb cb;
	void *ctx;
	struct stream_io io;
	struct crisp_error err;
	bool failed;
};

static void on_deferred_open(evutil_socket_t fd, short what, void *arg)
{
	struct deferred_open *d = arg;

	d->cb(d->ctx, d->failed ? NULL : &d->io, d->failed ? &d->err : NULL);
	free(d);
}

static void local_open(const struct stream_request *r, stream_open_cb done, void *ctx)
{
	struct deferred_open *d = xcalloc(1, sizeof(*d));
	struct proc *p = xcalloc(1, sizeof(*p));
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ptm = -1, pts = -1;
	/* attach: the "container" of these tests is a cat, unless --serve
	 * names its command */
	char *cat[] = { "cat", NULL };
	char **argv = r->kind == STREAM_ATTACH && r->n_cmd == 0 ? cat : r->cmd;

	d->cb = done;
	d->ctx = ctx;
	p->ptm = -1;
	if (r->kind == STREAM_EXEC && streq(r->cmd[0], "fail-open")) {
		d->failed = true;
		err_set(&d->err, CRISP_E_NOT_FOUND, "container %s is not running", r->container_id);
		free(p);
		event_base_once(base, -1, EV_TIMEOUT, on_deferred_open, d, NULL);
		return;
	}
	if (r->tty) {
		if (openpty(&ptm, &pts, NULL, NULL, NULL) < 0)
			abort();
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
		   pipe2(err, O_CLOEXEC) < 0) {
		abort();
	}
	p->pid = fork();
	if (p->pid == 0) {
		if (r->tty) {
			setsid();
			ioctl(pts, TIOCSCTTY, 0);
			dup2(pts, 0);
			dup2(pts, 1);
			dup2(pts, 2);
		} else {
			dup2(in[0], 0);
			dup2(out[1], 1);
			dup2(err[1], 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (r->tty) {
		close(pts);
		p->ptm = ptm;
		d->io.fds[0] = ptm;
		d->io.fds[1] = d->io.fds[2] = -1;
	} else {
		close(in[0]);
		close(out[1]);
		close(err[1]);
		d->io.fds[0] = in[1];
		d->io.fds[1] = out[0];
		d->io.fds[2] = err[0];
	}
	d->io.handle = p;
	event_base_once(base, -1, EV_TIMEOUT, on_deferred_open, d, NULL);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	int status;

	if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
		p->pid = 0;
		if (p->released) {
			event_free(p->poll);
			free(p);
			return;
		}
		p->waiting = false;
		p->cb(p->ctx, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		      NULL);
		return;
	}
	event_add(p->poll, &(struct timeval){ .tv_usec = 20000 });
}

static void local_wait(void *handle, stream_exit_cb done, void *ctx)
{
	struct proc *p = handle;

	p->cb = done;
	p->ctx = ctx;
	p->waiting = true;
	p->poll = evtimer_new(base, on_poll, p);
	event_add(p->poll, &(struct timeval){ .tv_usec = 20000 });
}

static void local_resize(void *handle, uint16_t width, uint16_t height)
{
	struct proc *p = handle;
	struct winsize ws = { .ws_row = height, .ws_col = width };

	if (p->ptm >= 0)
		ioctl(p->ptm, TIOCSWINSZ, &ws);
}

static int releases;

static void local_release(void *handle)
{
	struct proc *p = handle;

	releases++;
	if (p->pid > 0) {
		/* The client left while the process runs: like a runtime, let
		 * it run on (its stdin is closed now) and reap it later. */
		p->released = true;
		if (!p->poll) {
			p->poll = evtimer_new(base, on_poll, p);
			event_add(p->poll, &(struct timeval){ .tv_usec = 20000 });
		}
		return;
	}
	if (p->poll)
		event_free(p->poll);
	free(p);
}

struct deferred_connect {
	stream_connect_cb cb;
	void *ctx;
	int fd;
	struct crisp_error err;
};

static void on_deferred_connect(evutil_socket_t fd, short what, void *arg)
{
	struct deferred_connect *d = arg;

	d->cb(d->ctx, d->fd, d->fd < 0 ? &d->err : NULL);
	free(d);
}

static void local_port_connect(const char *sandbox_id, uint16_t port, stream_connect_cb done,
			       void *ctx)
{
	struct deferred_connect *d = xcalloc(1, sizeof(*d));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

	d->cb = done;
	d->ctx = ctx;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(d->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err_set_errno(&d->err, CRISP_E_UNAVAILABLE, errno, "dial tcp4 127.0.0.1:%u", port);
		close(d->fd);
		d->fd = -1;
	}
	event_base_once(base, -1, EV_TIMEOUT, on_deferred_connect, d, NULL);
}

static const struct stream_backend local_backend = {
	.open = local_open,
	.wait = local_wait,
	.resize = local_resize,
	.release = local_release,
	.port_connect = local_port_connect,
};

/* ---- --serve ----------------------------------------------------------------------------- */

/* {"kind": "exec"|"attach"|"portforward", "cmd": [...], "tty": bool,
 *  "stdin": bool, "stdout": bool, "stderr": bool, "ports": [...]} */
static struct stream_request *request_from_line(const char *line)
{
	json_error_t jerr;
	json_t *o = json_loads(line, 0, &jerr), *cmd, *ports;
	struct stream_request *r;
	const char *kind;

	if (!o || !(kind = json_string_value(json_object_get(o, "kind")))) {
		json_decref(o);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->kind = streq(kind, "exec")     ? STREAM_EXEC
		  : streq(kind, "attach") ? STREAM_ATTACH
					  : STREAM_PORT_FORWARD;
	r->tty = json_is_true(json_object_get(o, "tty"));
	r->in = json_is_true(json_object_get(o, "stdin"));
	r->out = json_is_true(json_object_get(o, "stdout"));
	r->err = json_is_true(json_object_get(o, "stderr"));
	r->container_id = xstrdup("c0ffee");
	r->sandbox_id = xstrdup("5a4db0c5");
	cmd = json_object_get(o, "cmd");
	r->n_cmd = json_array_size(cmd);
	r->cmd = xcalloc(r->n_cmd + 1, sizeof(*r->cmd));
	for (size_t i = 0; i < r->n_cmd; i++)
		r->cmd[i] = xstrdup(json_string_value(json_array_get(cmd, i)) ?: "");
	ports = json_object_get(o, "ports");
	r->n_ports = json_array_size(ports);
	r->ports = xcalloc(r->n_ports + 1, sizeof(*r->ports));
	for (size_t i = 0; i < r->n_ports; i++)
		r->ports[i] = (uint16_t)json_integer_value(json_array_get(ports, i));
	json_decref(o);
	if (r->kind == STREAM_EXEC && r->n_cmd == 0) {
		stream_request_free(r);
		return NULL;
	}
	return r;
}

static void on_stdin_line(evutil_socket_t fd, short what, void *arg)
{
	char line[4096];
	struct crisp_error err;

	if (!fgets(line, sizeof(line), stdin)) {
		event_base_loopbreak(base);
		return;
	}
	struct stream_request *r = request_from_line(line);
	char *url = r ? stream_server_url(r, &err) : NULL;
	printf("%s\n", url ? url : "ERROR");
	fflush(stdout);
	free(url);
}

static int serve(unsigned ttl)
{
	struct crisp_config cfg = { .stream_address = "127.0.0.1",
				    .stream_port = 0,
				    .stream_token_ttl = ttl,
				    .stream_idle_timeout = getenv("IDLE")
								   ? (uint32_t)atoi(getenv("IDLE"))
								   : 30,
				    .stream_tls_cert = getenv("TLS_CERT") ? getenv("TLS_CERT") : "",
				    .stream_tls_key = getenv("TLS_KEY") ? getenv("TLS_KEY") : "" };
	struct crisp_error err;
	struct event *ev;

	setvbuf(stdin, NULL, _IOLBF, 0);
	if (stream_server_start(base, &cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	stream_set_backend(&local_backend);
	ev = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin_line, NULL);
	event_add(ev, NULL);
	printf("READY\n");
	fflush(stdout);
	event_base_dispatch(base);
	event_free(ev);
	stream_server_stop();
	return 0;
}

/* ---- unit tests --------------------------------------------------------------------------- */

static void test_ws_accept(void)
{
	char out[29];

	/* RFC 6455 section 1.3 */
	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	is_str(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Accept of the RFC example");
}

static void test_spdy_codec(void)
{
	struct spdy_zctx *def = spdy_zctx_new(true), *inf = spdy_zctx_new(false);
	struct stream_header h[] = { { "streamtype", "error" } };
	struct evbuffer *out = evbuffer_new();
	struct stream_header *got = NULL;
	struct crisp_error err;
	char *strings = NULL;
	size_t nh = 0, len;
	uint8_t *p;

	ok(def && inf, "zlib contexts with the SPDY dictionary");
	ok(spdy_header_block_encode(def, h, 1, out, &err) == 0, "encode streamtype: error");
	len = evbuffer_get_length(out);
	p = evbuffer_pullup(out, -1);
	/* PROTOCOLS.md 2.2: level 9 with FDICT and the dictionary's id */
	ok(len > 6 && memcmp(p, "\x78\xf9\xe3\xc6\xa7\xc2", 6) == 0,
	   "first block starts 78 f9 e3 c6 a7 c2");
	ok(memcmp(p + len - 4, "\x00\x00\xff\xff", 4) == 0, "block ends with a sync flush");
	ok(spdy_header_block_decode(inf, p, len, &got, &nh, &strings, &err) == 0, "decode it back");
	ok(nh == 1 && streq(got[0].name, "streamtype") && streq(got[0].value, "error"),
	   "same header after the round trip");
	free(got);
	free(strings);
	evbuffer_drain(out, len);
	ok(spdy_header_block_encode(def, h, 1, out, &err) == 0, "encode it again");
	len = evbuffer_get_length(out);
	p = evbuffer_pullup(out, -1);
	ok(len == 8 && memcmp(p, "\xc2\x23\x05\x00\x00\x00\xff\xff", 8) == 0,
	   "the same block on the same context is c22305000000ffff");
	got = NULL;
	strings = NULL;
	ok(spdy_header_block_decode(inf, p, len, &got, &nh, &strings, &err) == 0 && nh == 1,
	   "the receiving context keeps running");
	free(got);
	free(strings);

	/* Hostile blocks: upper-case names, duplicates, garbage. */
	{
		struct spdy_zctx *d2 = spdy_zctx_new(true), *i2 = spdy_zctx_new(false);
		struct stream_header dup[] = { { "port", "1" }, { "port", "2" } };
		evbuffer_drain(out, len);
		spdy_header_block_encode(d2, dup, 2, out, &err);
		len = evbuffer_get_length(out);
		got = NULL;
		strings = NULL;
		ok(spdy_header_block_decode(i2, evbuffer_pullup(out, -1), len, &got, &nh, &strings,
					    &err) < 0,
		   "duplicate header names are refused (%s)", err.msg);
		spdy_zctx_free(d2);
		spdy_zctx_free(i2);
		i2 = spdy_zctx_new(false);
		ok(spdy_header_block_decode(i2, (const uint8_t *)"\x78\xf9garbage", 9, &got, &nh,
					    &strings, &err) < 0,
		   "a corrupt block is refused (%s)", err.msg);
		spdy_zctx_free(i2);
	}
	evbuffer_free(out);
	spdy_zctx_free(def);
	spdy_zctx_free(inf);
}

static void test_tokens(void)
{
	struct crisp_config cfg = { .stream_address = "127.0.0.1",
				    .stream_token_ttl = 60,
				    .stream_idle_timeout = 60,
				    .stream_tls_cert = "",
				    .stream_tls_key = "" };
	struct crisp_error err;
	struct stream_request *r;
	char *a, *b;

	r = xcalloc(1, sizeof(*r));
	a = stream_server_url(r, &err);
	ok(!a && err.code == CRISP_E_UNAVAILABLE, "no URL before the server runs");
	ok(stream_server_start(base, &cfg, &err) == 0, "server starts on an ephemeral port");
	r = xcalloc(1, sizeof(*r));
	r->kind = STREAM_EXEC;
	a = stream_server_url(r, &err);
	r = xcalloc(1, sizeof(*r));
	r->kind = STREAM_PORT_FORWARD;
	b = stream_server_url(r, &err);
	like(a, "http://127.0.0.1:", "exec URL %s", a ? a : "-");
	like(b, "/portforward/", "port-forward URL %s", b ? b : "-");
	ok(a && strrchr(a, '/') && strlen(strrchr(a, '/') + 1) == 43 &&
		   strspn(strrchr(a, '/') + 1,
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789-_") == 43,
	   "token: 43 base64url characters (32 random bytes)");
	ok(a && b && strcmp(strrchr(a, '/'), strrchr(b, '/')) != 0, "tokens differ");
	free(a);
	free(b);
	for (int i = 0; i < 998; i++) {
		r = xcalloc(1, sizeof(*r));
		free(stream_server_url(r, &err));
	}
	r = xcalloc(1, sizeof(*r));
	a = stream_server_url(r, &err);
	ok(!a && err.code == CRISP_E_RESOURCE, "at most 1000 URLs in flight: %s", err.msg);
	stream_server_stop();
}

/* ---- whole sessions: a blocking client thread against the server's loop ---------------- */

struct client_job {
	char url[256];
	void (*run)(struct client_job *j);
	int done_fd;
	/* results */
	char out[4096], err[4096], status[1024];
	size_t nout, nerr, nstatus;
	char head[512];
	bool closed;
	int goaway_status;
};

static int dial(const char *url)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *p = strstr(url, "://127.0.0.1:");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 60 }; /* valgrind is slow */

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(p + strlen("://127.0.0.1:")));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

static const char *url_path(const char *url)
{
	return strchr(strstr(url, "://") + 3, '/');
}

static void write_all(int fd, const void *buf, size_t n)
{
	if (write(fd, buf, n) != (ssize_t)n)
		abort(); /* a test client on a fresh socket: never short */
}

static bool read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				diag("client read: %s", strerror(errno));
			return false;
		}
		got += (size_t)r;
	}
	return true;
}

/* The response head, byte by byte so nothing after it is consumed. */
static void read_head(int fd, struct client_job *j)
{
	size_t n = 0;

	while (n + 1 < sizeof(j->head) && read(fd, j->head + n, 1) == 1) {
		n++;
		if (n >= 4 && memcmp(j->head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	j->head[n] = '\0';
}

static void append(char *buf, size_t *len, size_t cap, const uint8_t *p, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, p, n);
	*len += n;
	buf[*len] = '\0';
}

static void spdy_syn(int fd, struct spdy_zctx *z, uint32_t id, const char *type, bool fin)
{
	struct stream_header h[] = { { "streamtype", type } };
	struct evbuffer *b = evbuffer_new();
	struct crisp_error err;
	uint8_t f[18];
	uint32_t len;

	spdy_header_block_encode(z, h, 1, b, &err);
	len = 10 + (uint32_t)evbuffer_get_length(b);
	f[0] = 0x80, f[1] = 3, f[2] = 0, f[3] = 1;
	f[4] = fin ? 1 : 0, f[5] = (uint8_t)(len >> 16), f[6] = (uint8_t)(len >> 8),
	f[7] = (uint8_t)len;
	f[8] = 0, f[9] = 0, f[10] = 0, f[11] = (uint8_t)id;
	memset(f + 12, 0, 6);
	write_all(fd, f, sizeof(f));
	write_all(fd, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

/* client-go's order: error, stdout, stderr; then read to the end. */
static void run_spdy_exec(struct client_job *j)
{
	struct spdy_zctx *def = spdy_zctx_new(true), *inf = spdy_zctx_new(false);
	int fd = dial(j->url);
	char req[512];
	uint8_t h[8], *payload;

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
		 "X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
		 "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
		 url_path(j->url));
	write_all(fd, req, strlen(req));
	read_head(fd, j);
	spdy_syn(fd, def, 1, "error", true);
	spdy_syn(fd, def, 3, "stdout", true);
	spdy_syn(fd, def, 5, "stderr", true);
	j->goaway_status = -1;
	while (read_full(fd, h, 8)) {
		uint32_t len = (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		payload = xmalloc(len + 1);
		if (!read_full(fd, payload, len))
			break;
		if (h[0] & 0x80 && h[3] == 2) { /* SYN_REPLY: keep the zlib context running */
			struct stream_header *hh = NULL;
			char *strings = NULL;
			size_t nh;
			struct crisp_error err;
			spdy_header_block_decode(inf, payload + 4, len - 4, &hh, &nh, &strings,
						 &err);
			free(hh);
			free(strings);
		} else if (h[0] & 0x80 && h[3] == 7) {
			j->goaway_status = payload[7];
		} else if (!(h[0] & 0x80)) {
			if (h[3] == 1)
				append(j->status, &j->nstatus, sizeof(j->status), payload, len);
			else if (h[3] == 3)
				append(j->out, &j->nout, sizeof(j->out), payload, len);
			else if (h[3] == 5)
				append(j->err, &j->nerr, sizeof(j->err), payload, len);
		}
		free(payload);
	}
	j->closed = true;
	close(fd);
	spdy_zctx_free(def);
	spdy_zctx_free(inf);
}

static void ws_send_masked(int fd, const void *data, size_t len)
{
	uint8_t f[8 + 125] = { 0x82, (uint8_t)(0x80 | len), 1, 2, 3, 4 };

	for (size_t i = 0; i < len; i++)
		f[6 + i] = ((const uint8_t *)data)[i] ^ f[2 + i % 4];
	write_all(fd, f, 6 + len);
}

/* v5: stdin "hello\n" then CLOSE of stdin, through cat. */
static void run_ws_cat(struct client_job *j)
{
	int fd = dial(j->url);
	char req[512];
	uint8_t h[2], *payload;

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
		 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n",
		 url_path(j->url));
	write_all(fd, req, strlen(req));
	read_head(fd, j);
	ws_send_masked(fd, "\0hello\n", 7);
	ws_send_masked(fd, "\xff\0", 2);
	while (read_full(fd, h, 2)) {
		size_t len = h[1] & 0x7f;
		if (len == 126) {
			uint8_t l2[2];
			read_full(fd, l2, 2);
			len = (size_t)l2[0] << 8 | l2[1];
		}
		payload = xmalloc(len + 1);
		if (!read_full(fd, payload, len))
			break;
		if ((h[0] & 0x0f) == 8) {
			free(payload);
			break;
		}
		if (len >= 1 && payload[0] == 1)
			append(j->out, &j->nout, sizeof(j->out), payload + 1, len - 1);
		else if (len >= 1 && payload[0] == 3)
			append(j->status, &j->nstatus, sizeof(j->status), payload + 1, len - 1);
		free(payload);
	}
	j->closed = true;
	close(fd);
}

/* A garbage frame after the upgrade: the server answers GOAWAY and closes. */
static void run_spdy_garbage(struct client_job *j)
{
	int fd = dial(j->url);
	char req[512];
	uint8_t h[8], payload[64];

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
		 "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
		 url_path(j->url));
	write_all(fd, req, strlen(req));
	read_head(fd, j);
	write_all(fd,
		  "\x80\x03\x00\x01\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
		  "\x78\xf9garbage!",
		  28);
	j->goaway_status = -1;
	while (read_full(fd, h, 8)) {
		uint32_t len = (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		if (len > sizeof(payload) || !read_full(fd, payload, len))
			break;
		if (h[0] & 0x80 && h[3] == 7)
			j->goaway_status = payload[7];
	}
	j->closed = true;
	close(fd);
}

/* WebSocket PINGs as fast as the server takes them, never reading the PONGs:
 * the server must stop reading (its output toward us is bounded) instead of
 * queueing answers without end. nout counts the bytes we got to write. */
#define FLOOD_MAX (64u << 20)
static void run_ws_ping_flood(struct client_job *j)
{
	int fd = dial(j->url), stalled = 0;
	char req[512];
	uint8_t frame[6 + 125] = { 0x89, 0x80 | 125, 1, 2, 3, 4 };
	static uint8_t burst[sizeof(frame) * 256];

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
		 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
		 url_path(j->url));
	write_all(fd, req, strlen(req));
	read_head(fd, j);
	for (size_t i = 0; i < sizeof(burst); i += sizeof(frame))
		memcpy(burst + i, frame, sizeof(frame));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* Stalled for a second: the server no longer reads. */
	while (j->nout < FLOOD_MAX && stalled < 100) {
		size_t off = j->nout % sizeof(burst);
		ssize_t n = write(fd, burst + off, sizeof(burst) - off);

		if (n > 0) {
			j->nout += (size_t)n;
			stalled = 0;
		} else if (n < 0 && errno == EAGAIN) {
			stalled++;
			usleep(10000);
		} else {
			break;
		}
	}
	j->closed = true;
	close(fd);
}

static void *client_thread(void *arg)
{
	struct client_job *j = arg;

	j->run(j);
	write_all(j->done_fd, "x", 1);
	return NULL;
}

static void on_client_done(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

static void run_client(struct client_job *j, struct stream_request *r,
		       void (*run)(struct client_job *))
{
	struct crisp_error err;
	char *url = stream_server_url(r, &err);
	int done[2];
	pthread_t t;
	struct event *ev;

	snprintf(j->url, sizeof(j->url), "%s", url ? url : "");
	free(url);
	j->run = run;
	if (pipe2(done, O_CLOEXEC) < 0)
		abort();
	j->done_fd = done[1];
	ev = event_new(base, done[0], EV_READ, on_client_done, NULL);
	event_add(ev, &(struct timeval){ .tv_sec = 120 });
	pthread_create(&t, NULL, client_thread, j);
	event_base_dispatch(base);
	pthread_join(t, NULL);
	event_free(ev);
	close(done[0]);
	close(done[1]);
	/* let deferred frees run */
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static struct stream_request *exec_request(bool in, bool out, bool errs, int n, ...)
{
	struct stream_request *r = xcalloc(1, sizeof(*r));
	va_list ap;

	r->kind = STREAM_EXEC;
	r->container_id = xstrdup("c0ffee");
	r->in = in, r->out = out, r->err = errs;
	r->cmd = xcalloc((size_t)n + 1, sizeof(char *)); /* NULL-terminated for execvp */
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		r->cmd[r->n_cmd++] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	return r;
}

static void test_sessions(void)
{
	struct crisp_config cfg = { .stream_address = "127.0.0.1",
				    .stream_token_ttl = 60,
				    .stream_idle_timeout = 60,
				    .stream_tls_cert = "",
				    .stream_tls_key = "" };
	struct crisp_error err;
	struct client_job j;

	ok(stream_server_start(base, &cfg, &err) == 0, "server starts");
	stream_set_backend(&local_backend);
	releases = 0;

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, true, 3, "sh", "-c", "echo hi; echo oops >&2"),
		   run_spdy_exec);
	like(j.head, "HTTP/1.1 101 Switching Protocols", "SPDY upgrade answered 101");
	like(j.head, "X-Stream-Protocol-Version: v4.channel.k8s.io",
	     "v4 chosen: v5 is not a SPDY protocol");
	is_str(j.out, "hi\n", "stdout over SPDY");
	is_str(j.err, "oops\n", "stderr over SPDY");
	is_str(j.status, "{\"status\":\"Success\"}", "v4 success status");
	ok(j.closed && j.goaway_status == 0, "GOAWAY OK, then closed");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, true, 3, "sh", "-c", "exit 7"), run_spdy_exec);
	like(j.status, "\"reason\":\"NonZeroExitCode\"", "non-zero exit: %s", j.status);
	like(j.status, "{\"reason\":\"ExitCode\",\"message\":\"7\"}", "exit code 7 as the cause");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, true, 1, "fail-open"), run_spdy_exec);
	like(j.status, "\"reason\":\"InternalError\"", "a backend failure: %s", j.status);
	like(j.status, "container c0ffee is not running", "with the backend's message");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(true, true, false, 1, "cat"), run_ws_cat);
	like(j.head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "WebSocket accept key");
	like(j.head, "Sec-WebSocket-Protocol: v5.channel.k8s.io", "v5 over WebSocket");
	is_str(j.out, "hello\n", "stdin through cat, v5 CLOSE ends it");
	is_str(j.status, "{\"status\":\"Success\"}", "cat exited 0");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, false, 2, "sleep", "30"), run_spdy_garbage);
	ok(j.closed && j.goaway_status == 1, "corrupt header block: GOAWAY PROTOCOL_ERROR, closed");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, true, 2, "echo", "after"), run_spdy_exec);
	is_str(j.out, "after\n", "the server keeps serving");
	is_int(releases, 4, "each of the 4 opened sessions released its backend handle");

	memset(&j, 0, sizeof(j));
	run_client(&j, exec_request(false, true, false, 2, "sleep", "1"), run_ws_ping_flood);
	ok(j.nout < FLOOD_MAX / 2,
	   "a client that sends PINGs but reads no PONG is stopped (%zu bytes taken)", j.nout);
	stream_server_stop();
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test-stream", getenv("STREAM_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	base = event_base_new();
	if (argc >= 2 && streq(argv[1], "--serve"))
		return serve(argc >= 3 ? (unsigned)atoi(argv[2]) : 60);
	test_ws_accept();
	test_spdy_codec();
	test_tokens();
	test_sessions();
	event_base_free(base);
	return done_testing();
}
