/* fuzz-stream: a libFuzzer target for the streaming server (frontend/
 * stream_*.c), whose input is whatever any local network client sends: the
 * HTTP request and upgrade, then SPDY/3.1 frames with their zlib header
 * blocks or WebSocket frames, and the remote command and port-forward
 * protocols on top. The whole server runs as in crisp-frontend, on a
 * libevent loop, with a backend of pipes and socketpairs whose other ends
 * the harness keeps (it writes a little output into them and reads what the
 * server relays).
 *
 * The first byte picks the request behind the token: bits 0-1 the kind
 * (exec, attach, port-forward, exec), bit 2 tty, bit 3 stdin, bit 4 stderr,
 * bit 5 the backend refuses to open, bit 6 the process exits while the
 * client is still connected, bit 7 the backend sends 256 KiB on each output
 * and the client reads nothing before it has sent everything (back-pressure
 * both ways). The rest is sent on a TCP connection to the
 * server, with every "@T@" replaced by the request's token. Each input also
 * checks the backend contract: every opened session is released exactly
 * once, no callback runs after release, and no fd is left open.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing --enable-test-hooks
 *	make tests/fuzz/fuzz-stream
 *	./tests/fuzz/fuzz-stream -max_total_time=60 ../tests/fuzz/seeds/fuzz-stream */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "frontend/stream.h"

#define TOKEN_MARK "@T@"
#define HARNESS_FDS 16
/* Loop turns without a byte moving before the harness moves on. */
#define IDLE_TURNS 4
#define MAX_TURNS 256

static struct event_base *base;

/* ---- a backend of pipes and socketpairs ---------------------------------------- */

struct fake_proc {
	int fds[3]; /* our ends: stdin's read end, stdout's and stderr's write ends */
	stream_exit_cb exit_cb;
	void *exit_ctx;
	bool released;
};

static struct {
	int fds[HARNESS_FDS];       /* the harness's ends, read and written each turn */
	size_t budget[HARNESS_FDS]; /* output still to write into each */
	size_t nfds;
	bool slow; /* bit 7: lots of output, and a client that reads it late */
	bool client_reads;
	struct fake_proc *procs[8];
	size_t nprocs;
	unsigned pending; /* deferred open/connect callbacks not run yet */
	unsigned opened, released;
	bool open_fails;
} fake;

static void keep_fd(int fd)
{
	if (fake.nfds == HARNESS_FDS)
		abort();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* Output, as a process or a pod service sends it (written each turn;
	 * on the read end of stdin's pipe it fails, which is fine). */
	fake.budget[fake.nfds] = fake.slow ? 256 * 1024 : 7;
	fake.fds[fake.nfds++] = fd;
}

struct deferred {
	stream_open_cb open_cb;
	stream_connect_cb connect_cb;
	void *ctx;
	struct stream_io io;
	int fd;
	struct crisp_error err;
	bool failed;
};

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d = arg;

	fake.pending--;
	if (d->open_cb)
		d->open_cb(d->ctx, d->failed ? NULL : &d->io, d->failed ? &d->err : NULL);
	else
		d->connect_cb(d->ctx, d->fd, d->fd < 0 ? &d->err : NULL);
	free(d);
}

static void defer(struct deferred *d)
{
	fake.pending++;
	if (event_base_once(base, -1, EV_TIMEOUT, on_deferred, d, NULL) < 0)
		abort();
}

static void fake_open(const struct stream_request *r, stream_open_cb done, void *ctx)
{
	struct deferred *d = calloc(1, sizeof(*d));
	struct fake_proc *p;
	int sp[2], in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };

	d->open_cb = done;
	d->ctx = ctx;
	if (fake.open_fails || fake.nprocs == ARRAY_SIZE(fake.procs)) {
		d->failed = true;
		err_set(&d->err, CRISP_E_NOT_FOUND, "container %s is not running", r->container_id);
		return defer(d);
	}
	p = calloc(1, sizeof(*p));
	p->fds[0] = p->fds[1] = p->fds[2] = -1;
	if (r->tty) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			abort();
		d->io.fds[0] = sp[0];
		d->io.fds[1] = d->io.fds[2] = -1;
		keep_fd(sp[1]);
	} else {
		if ((r->in && pipe2(in, O_CLOEXEC) < 0) || (r->out && pipe2(out, O_CLOEXEC) < 0) ||
		    (r->err && pipe2(errp, O_CLOEXEC) < 0))
			abort();
		d->io.fds[0] = in[1];
		d->io.fds[1] = out[0];
		d->io.fds[2] = errp[0];
		if (in[0] >= 0)
			keep_fd(in[0]);
		if (out[1] >= 0)
			keep_fd(out[1]);
		if (errp[1] >= 0)
			keep_fd(errp[1]);
	}
	d->io.handle = p;
	fake.procs[fake.nprocs++] = p;
	fake.opened++;
	defer(d);
}

static void fake_wait(void *handle, stream_exit_cb done, void *ctx)
{
	struct fake_proc *p = handle;

	if (p->released || p->exit_cb)
		abort(); /* wait after release, or twice */
	p->exit_cb = done;
	p->exit_ctx = ctx;
}

static void fake_resize(void *handle, uint16_t width, uint16_t height)
{
	struct fake_proc *p = handle;

	if (p->released || width < 1 || height < 1)
		abort();
}

static void fake_release(void *handle)
{
	struct fake_proc *p = handle;

	if (p->released)
		abort(); /* released twice */
	p->released = true;
	p->exit_cb = NULL;
	fake.released++;
}

static void fake_port_connect(const char *sandbox_id, uint16_t port, stream_connect_cb done,
			      void *ctx)
{
	struct deferred *d = calloc(1, sizeof(*d));
	int sp[2];

	d->connect_cb = done;
	d->ctx = ctx;
	d->fd = -1;
	if (port == 1 || fake.nfds + 1 >= HARNESS_FDS) {
		err_set(&d->err, CRISP_E_UNAVAILABLE, "dial tcp4 127.0.0.1:%u: refused", port);
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			abort();
		d->fd = sp[0];
		keep_fd(sp[1]);
	}
	defer(d);
}

static const struct stream_backend fake_backend = {
	.open = fake_open,
	.wait = fake_wait,
	.resize = fake_resize,
	.release = fake_release,
	.port_connect = fake_port_connect,
};

/* The processes that are still running exit now (bit 6). */
static void procs_exit(void)
{
	for (size_t i = 0; i < fake.nprocs; i++) {
		struct fake_proc *p = fake.procs[i];
		stream_exit_cb cb = p->exit_cb;

		if (!cb || p->released)
			continue;
		p->exit_cb = NULL;
		cb(p->exit_ctx, 3, NULL);
	}
}

/* ---- driving the loop -------------------------------------------------------------- */

static size_t drain(int fd)
{
	char buf[16384];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

/* One loop turn; whether anything moved (client bytes in or out, backend
 * bytes, a deferred callback). eof is set once the server closed the client. */
/* Write what fd still has to send; whether anything went. */
static bool produce(size_t i)
{
	static const char chunk[16384] = "output\n";
	size_t want = fake.budget[i] < sizeof(chunk) ? fake.budget[i] : sizeof(chunk);
	ssize_t n;

	if (want == 0)
		return false;
	n = write(fake.fds[i], chunk, want);
	if (n <= 0) {
		if (errno != EAGAIN)
			fake.budget[i] = 0; /* a read end, or the server closed it */
		return false;
	}
	fake.budget[i] -= (size_t)n;
	return true;
}

static bool turn(int client, const uint8_t **data, size_t *left, bool *eof)
{
	unsigned pending = fake.pending;
	bool moved = false;
	char buf[16384];
	ssize_t n = -1;

	if (*left > 0) {
		n = write(client, *data, *left);
		if (n > 0) {
			*data += n;
			*left -= (size_t)n;
			moved = true;
		} else if (n < 0 && errno != EAGAIN) {
			*left = 0; /* the server closed on us */
		}
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	while (fake.client_reads && !*eof && (n = read(client, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == ECONNRESET)
				*eof = true;
			break;
		}
		moved = true;
	}
	if (n == 0)
		*eof = true;
	for (size_t i = 0; i < fake.nfds; i++)
		if (drain(fake.fds[i]) > 0 || produce(i))
			moved = true;
	return moved || pending != fake.pending;
}

static void run(int client, const uint8_t *data, size_t size, bool *eof)
{
	unsigned idle = 0;

	for (int t = 0; t < MAX_TURNS && idle < IDLE_TURNS && !*eof; t++)
		idle = turn(client, &data, &size, eof) || size > 0 ? 0 : idle + 1;
}

static size_t open_fds(void)
{
	size_t n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz-stream", LOG_CRIT);
	base = event_base_new();
	if (!base)
		abort();
	stream_set_backend(&fake_backend);
}

static struct stream_request *request_of(uint8_t sel)
{
	struct stream_request *r = xcalloc(1, sizeof(*r));
	static const uint16_t ports[] = { 80, 1, 8080 };

	switch (sel & 3) {
	case 1:
		r->kind = STREAM_ATTACH;
		break;
	case 2:
		r->kind = STREAM_PORT_FORWARD;
		break;
	default:
		r->kind = STREAM_EXEC;
	}
	r->container_id = xstrdup("c0ffee");
	r->sandbox_id = xstrdup("5a4db0c5");
	r->n_cmd = 1;
	r->cmd = xcalloc(2, sizeof(char *));
	r->cmd[0] = xstrdup("sh");
	r->tty = sel & 4;
	r->in = sel & 8;
	r->out = true;
	r->err = !r->tty && (sel & 16);
	if (r->kind == STREAM_PORT_FORWARD) {
		r->n_ports = ARRAY_SIZE(ports);
		r->ports = xcalloc(r->n_ports, sizeof(*r->ports));
		memcpy(r->ports, ports, sizeof(ports));
	}
	return r;
}

/* data with every TOKEN_MARK replaced by token */
static uint8_t *substitute(const uint8_t *data, size_t size, const char *token, size_t *ret_len)
{
	size_t mark = strlen(TOKEN_MARK), tlen = strlen(token), n = 0;
	uint8_t *out = xmalloc(size / mark * tlen + size + 1);

	for (size_t i = 0; i < size;) {
		if (size - i >= mark && memcmp(data + i, TOKEN_MARK, mark) == 0) {
			memcpy(out + n, token, tlen);
			n += tlen;
			i += mark;
		} else {
			out[n++] = data[i++];
		}
	}
	*ret_len = n;
	return out;
}

static int connect_to(const char *url)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(url, ':');
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* a slow client: small buffers, so the server's output backs up */
	if (fake.slow)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ 4096 }, sizeof(int));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct crisp_config cfg = { .stream_address = "127.0.0.1",
				    .stream_token_ttl = 60,
				    .stream_idle_timeout = 60,
				    .stream_tls_cert = "",
				    .stream_tls_key = "" };
	struct crisp_error err;
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ uint8_t *bytes = NULL;
	size_t fds_before, len;
	bool eof = false;
	int client;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 1)
		return 0;
	fds_before = open_fds();
	memset(&fake, 0, sizeof(fake));
	fake.open_fails = data[0] & 32;
	fake.slow = data[0] & 128;
	fake.client_reads = !fake.slow;
	if (stream_server_start(base, &cfg, &err) < 0)
		abort();
	url = stream_server_url(request_of(data[0]), &err);
	if (!url)
		abort();
	bytes = substitute(data + 1, size - 1, strrchr(url, '/') + 1, &len);
	client = connect_to(url);

	run(client, bytes, len, &eof);
	if (data[0] & 64) {
		procs_exit();
		run(client, NULL, 0, &eof);
	}
	/* The client is done sending: half-close, as kubectl does at the end;
	 * a slow client reads from now on. */
	shutdown(client, SHUT_WR);
	fake.client_reads = true;
	run(client, NULL, 0, &eof);
	close(client);
	/* the server sees the client gone; backend callbacks still due run */
	eof = false;
	run(-1, NULL, 0, &eof);
	for (int i = 0; fake.pending > 0 && i < 16; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (fake.pending > 0)
		abort();
	stream_server_stop();
	event_base_loop(base, EVLOOP_NONBLOCK);

	/* Every session the backend opened was released exactly once. */
	if (fake.released != fake.opened)
		abort();
	for (size_t i = 0; i < fake.nprocs; i++)
		free(fake.procs[i]);
	for (size_t i = 0; i < fake.nfds; i++)
		close(fake.fds[i]);
	if (open_fds() != fds_before)
		abort();
	return 0;
}
