/* The kubelet remote command protocol (exec and attach) over SPDY or
 * WebSocket (PROTOCOLS.md 2.4, 3).
 *
 * The streams: stdin (client to process), stdout and stderr (process to
 * client), error (the final status), resize (terminal sizes as JSON lines).
 * Over SPDY the client opens them and we wait up to 30 s until all that the
 * CRI request asked for are there; over WebSocket they are channels 0-4 and
 * exist at once. Then the backend opens the session and hands us fds, and we
 * relay: backend output only while the client's output buffer is below
 * STREAM_BUF_MAX (and its SPDY window is open), client input only while the
 * backend's input buffer is. The session ends when the process has exited
 * and its output is drained (exec), or the container exited or closed its
 * output (attach): the status goes on the error stream, then the connection
 * closes. A client that goes away closes the process's stdin and releases
 * everything at once. */
#include "autoconfig.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <string.h>

#include "common/log.h"
#include "frontend/stream.h"

enum role {
	R_STDIN,
	R_STDOUT,
	R_STDERR,
	R_ERROR,
	R_RESIZE,
	R_MAX
};

static const char *const role_names[R_MAX] = { "stdin", "stdout", "stderr", "error", "resize" };

#define RESIZE_LINE_MAX 256
/* After the process exited, how long its output may go without progress
 * before we stop waiting for EOF (a background child may hold the pipes). */
#define DRAIN_GRACE_MS 2000

struct rc_session {
	struct stream_conn *conn; /* NULL once the connection is gone */
	struct stream_request *req;
	struct stream_chan *chan[R_MAX];
	int expected, have;
	struct event *timer; /* stream creation, then output drain */
	bool begun, opened, waiting, exited, ended;
	int open_pending; /* open() callbacks not yet returned */
	void *handle;
	struct bufferevent *in;        /* stdin; with a tty the same as out */
	struct bufferevent *out, *err; /* stdout (or the tty), stderr */
	bool out_eof, err_eof;
	bool stdin_eof;                 /* the client closed stdin */
	struct evbuffer *stdin_pending; /* stdin that came before open() */
	uint64_t progress;              /* bytes relayed, for the drain grace */
	uint64_t progress_at_timer;
	int exit_code;
	char failure[CRISP_ERRMSG_MAX];  /* non-empty: the session failed */
	enum crisp_errcode failure_code; /* why, when the backend said */
	char resize_line[RESIZE_LINE_MAX];
	size_t resize_len;
	uint16_t width, height;
};

static void maybe_end(struct rc_session *s);
static void relay_out(struct rc_session *s);

static void session_free(struct rc_session *s)
{
	if (s->timer)
		event_free(s->timer);
	if (s->stdin_pending)
		evbuffer_free(s->stdin_pending);
	free(s);
}

static void on_deferred_free(evutil_socket_t fd, short what, void *arg)
{
	session_free(arg);
}

/* Let go of the backend: fds closed (stdin EOF for exec), handle released. */
static void release_backend(struct rc_session *s)
{
	const struct stream_backend *b = stream_backend();

	if (s->in && s->in != s->out)
		bufferevent_free(s->in);
	s->in = NULL;
	if (s->out)
		bufferevent_free(s->out);
	if (s->err)
		bufferevent_free(s->err);
	s->out = s->err = NULL;
	if (s->opened && b && b->release)
		b->release(s->handle);
	s->opened = false;
	s->waiting = false;
	s->handle = NULL;
}

/* ---- the final status ------------------------------------------------------------ */

static char *status_json(struct rc_session *s)
{
	json_t *st;
	char *text;

	if (s->failure[0] && s->failure_code == CRISP_E_RESOURCE) {
		/* A limit, not a fault: what the API server says for one. */
		st = json_pack("{s:s, s:s, s:s, s:i}", "status", "Failure", "message", s->failure,
			       "reason", "TooManyRequests", "code", 429);
	} else if (s->failure[0]) {
		char *msg = xasprintf("Internal error occurred: %s", s->failure);
		st = json_pack("{s:s, s:s, s:s, s:i}", "status", "Failure", "message", msg,
			       "reason", "InternalError", "code", 500);
		free(msg);
	} else if (s->req->kind == STREAM_EXEC && s->exit_code != 0) {
		char code[8], *msg;
		snprintf(code, sizeof(code), "%d", s->exit_code);
		msg = xasprintf("command terminated with non-zero exit code: exit status %d",
				s->exit_code);
		st = json_pack("{s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "status", "Failure",
			       "message", msg, "reason", "NonZeroExitCode", "details", "causes",
			       "reason", "ExitCode", "message", code);
		free(msg);
	} else {
		st = json_pack("{s:s}", "status", "Success");
	}
	text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	return text;
}

static void session_end(struct rc_session *s)
{
	struct stream_conn *c = s->conn;
	struct stream_chan *ech = s->chan[R_ERROR];

	if (s->ended || !c)
		return;
	s->ended = true;
	if (ech && !c->closed) {
		if (c->version >= 4) {
			char *json = status_json(s);
			if (json)
				stream_chan_send(ech, json, strlen(json));
			free(json);
		} else if (s->failure[0]) {
			stream_chan_send(ech, s->failure, strlen(s->failure));
		} else if (s->req->kind == STREAM_EXEC && s->exit_code != 0) {
			char msg[96];
			snprintf(msg, sizeof(msg),
				 "command terminated with non-zero exit code: exit status %d",
				 s->exit_code);
			stream_chan_send(ech, msg, strlen(msg));
		}
	}
	for (int r = R_STDOUT; r <= R_ERROR; r++)
		if (s->chan[r])
			stream_chan_fin(s->chan[r]);
	release_backend(s);
	stream_conn_finish(c);
}

static void fail_session(struct rc_session *s, const char *fmt, ...) _printf_(2, 3);
static void fail_session(struct rc_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
	va_end(ap);
	if (s->conn)
		log_info("streaming %s from %s failed: %s",
			 s->req->kind == STREAM_EXEC ? "exec" : "attach", s->conn->peer,
			 s->failure);
	session_end(s);
}

/* ---- relaying -------------------------------------------------------------------- */

static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rc_session *s = arg;

	if (s->progress != s->progress_at_timer) {
		s->progress_at_timer = s->progress;
		event_add(s->timer, &(struct timeval){ .tv_sec = DRAIN_GRACE_MS / 1000 });
		return;
	}
	session_end(s);
}

static bool output_done(struct bufferevent *bev, bool eof)
{
	return !bev || (eof && evbuffer_get_length(bufferevent_get_input(bev)) == 0);
}

static void maybe_end(struct rc_session *s)
{
	bool drained = output_done(s->out, s->out_eof) && output_done(s->err, s->err_eof);

	if (s->ended || !s->opened || !s->conn)
		return;
	if (s->req->kind == STREAM_ATTACH) {
		/* The container exited, or the monitor closed our output. */
		if (s->exited || ((s->out || s->err) && drained))
			session_end(s);
		return;
	}
	if (!s->exited)
		return;
	if (drained)
		return session_end(s);
	if (!event_pending(s->timer, EV_TIMEOUT, NULL)) {
		s->progress_at_timer = s->progress;
		event_assign(s->timer, s->conn->base, -1, 0, on_drain_timer, s);
		event_add(s->timer, &(struct timeval){ .tv_sec = DRAIN_GRACE_MS / 1000 });
	}
}

/* Move what one backend output holds to its channel, while the client keeps up. */
static void relay_one(struct rc_session *s, struct bufferevent *bev, struct stream_chan *ch)
{
	struct evbuffer *in;

	if (!bev)
		return;
	in = bufferevent_get_input(bev);
	while (evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in);

		if (!ch || ch->local_fin) {
			/* Not asked for, or reset by the client: discarded, so
			 * the process never blocks on a stream nobody reads. */
			evbuffer_drain(in, n);
			break;
		}
		if (!stream_chan_can_send(ch)) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (n > STREAM_CHUNK)
			n = STREAM_CHUNK;
		/* A client that keeps SPDY windows gets no more than its window. */
		if (s->conn->transport == TRANSPORT_SPDY && (int64_t)n > ch->send_window &&
		    ch->send_window > 0)
			n = (size_t)ch->send_window;
		stream_chan_send(ch, evbuffer_pullup(in, (ssize_t)n), n);
		evbuffer_drain(in, n);
		s->progress += n;
	}
	if (!(bev == s->out ? s->out_eof : s->err_eof))
		bufferevent_enable(bev, EV_READ);
}

static void relay_out(struct rc_session *s)
{
	if (!s->conn || s->ended)
		return;
	relay_one(s, s->out, s->chan[R_STDOUT]);
	relay_one(s, s->err, s->chan[R_STDERR]);
	maybe_end(s);
}

static void on_out_read(struct bufferevent *bev, void *arg)
{
	relay_out(arg);
}

static void close_stdin(struct rc_session *s)
{
	if (!s->in || s->in == s->out)
		return;
	bufferevent_free(s->in);
	s->in = NULL;
	if (s->conn)
		stream_conn_pause_input(s->conn, false);
}

static void on_in_write(struct bufferevent *bev, void *arg)
{
	struct rc_session *s = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

	if (s->stdin_eof && pending == 0 && s->in != s->out)
		return close_stdin(s);
	if (s->conn && pending < STREAM_BUF_MAX / 2)
		stream_conn_pause_input(s->conn, false);
}

static void on_in_event(struct bufferevent *bev, short what, void *arg)
{
	/* The process no longer reads its stdin (EPIPE): drop what comes. */
	close_stdin(arg);
}

static void on_out_event(struct bufferevent *bev, short what, void *arg)
{
	struct rc_session *s = arg;

	/* EOF, or EIO from a pty master once the terminal is gone. */
	if (bev == s->out) {
		s->out_eof = true;
		if (s->in == s->out && s->conn)
			stream_conn_pause_input(s->conn, false);
	} else {
		s->err_eof = true;
	}
	bufferevent_disable(bev, EV_READ);
	relay_out(s);
}

static void stdin_write(struct rc_session *s, const uint8_t *data, size_t len)
{
	struct evbuffer *buf;

	if (s->stdin_eof || (s->opened && !s->in) || (s->in && s->in == s->out && s->out_eof))
		return; /* stdin is closed: dropped */
	buf = s->opened ? bufferevent_get_output(s->in) : s->stdin_pending;
	evbuffer_add(buf, data, len);
	if (evbuffer_get_length(buf) >= STREAM_BUF_MAX)
		stream_conn_pause_input(s->conn, true);
}

/* ---- resize ------------------------------------------------------------------------ */

static void apply_resize(struct rc_session *s)
{
	const struct stream_backend *b = stream_backend();

	if (s->opened && s->width && b && b->resize)
		b->resize(s->handle, s->width, s->height);
}

static void resize_line(struct rc_session *s, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, 0, &jerr);
	json_int_t w = 0, h = 0;

	if (!o || json_unpack(o, "{s:I, s:I}", "Width", &w, "Height", &h) < 0 || w < 1 || h < 1 ||
	    w > 65535 || h > 65535) {
		/* containerd ignores sizes below 1; junk gets the same */
		json_decref(o);
		return;
	}
	json_decref(o);
	s->width = (uint16_t)w;
	s->height = (uint16_t)h;
	apply_resize(s);
}

static void resize_data(struct rc_session *s, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			resize_line(s, s->resize_line, s->resize_len);
			s->resize_len = 0;
		} else if (s->resize_len < sizeof(s->resize_line)) {
			s->resize_line[s->resize_len++] = (char)data[i];
		}
		/* else: a line too long to be a size; what fits fails to parse */
	}
}

/* ---- opening the backend session ---------------------------------------------------- */

static struct bufferevent *wrap_fd(struct rc_session *s, int fd)
{
	struct bufferevent *bev;

	if (fd < 0)
		return NULL;
	evutil_make_socket_nonblocking(fd);
	bev = bufferevent_socket_new(s->conn->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		return NULL;
	}
	bufferevent_setwatermark(bev, EV_READ, 0, STREAM_BUF_MAX);
	bufferevent_setwatermark(bev, EV_WRITE, STREAM_BUF_MAX / 2, 0);
	return bev;
}

static void on_exit_status(void *ctx, int exit_code, const struct crisp_error *err)
{
	struct rc_session *s = ctx;

	if (!s->waiting)
		return; /* after release(): a backend that calls anyway is ignored */
	s->waiting = false;
	s->exited = true;
	if (err) {
		snprintf(s->failure, sizeof(s->failure), "%s", err->msg);
		s->failure_code = err->code;
	}
	s->exit_code = exit_code < 0 ? 255 : exit_code > 255 ? exit_code & 0xff : exit_code;
	relay_out(s);
	maybe_end(s);
}

static void on_open(void *ctx, const struct stream_io *io, const struct crisp_error *err)
{
	struct rc_session *s = ctx;
	const struct stream_backend *b = stream_backend();
	int fds[3] = { -1, -1, -1 };

	s->open_pending--;
	if (io)
		memcpy(fds, io->fds, sizeof(fds));
	if (!s->conn || s->ended) {
		/* The client left while the backend worked. */
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (io && b && b->release)
			b->release(io->handle);
		if (!s->conn && s->open_pending == 0)
			session_free(s);
		return;
	}
	if (err || !io) {
		s->failure_code = err ? err->code : CRISP_E_INTERNAL;
		return fail_session(s, "%s", err ? err->msg : "the backend gave no streams");
	}
	s->opened = true;
	s->handle = io->handle;
	if (s->req->tty) {
		for (int i = 1; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (fds[0] < 0)
			return fail_session(s, "the backend gave no terminal");
		s->out = wrap_fd(s, fds[0]);
		s->in = s->req->in ? s->out : NULL;
	} else {
		if (!s->req->in && fds[0] >= 0)
			close(TAKE_FD(fds[0]));
		if (!s->req->out && fds[1] >= 0)
			close(TAKE_FD(fds[1]));
		if (!s->req->err && fds[2] >= 0)
			close(TAKE_FD(fds[2]));
		s->in = wrap_fd(s, fds[0]);
		s->out = wrap_fd(s, fds[1]);
		s->err = wrap_fd(s, fds[2]);
	}
	s->out_eof = !s->out;
	s->err_eof = !s->err;
	if (s->out)
		bufferevent_setcb(s->out, on_out_read, s->in == s->out ? on_in_write : NULL,
				  on_out_event, s);
	if (s->err)
		bufferevent_setcb(s->err, on_out_read, NULL, on_out_event, s);
	if (s->in && s->in != s->out)
		bufferevent_setcb(s->in, NULL, on_in_write, on_in_event, s);
	if (s->in) {
		evbuffer_add_buffer(bufferevent_get_output(s->in), s->stdin_pending);
		bufferevent_enable(s->in, EV_WRITE);
	}
	if (s->out)
		bufferevent_enable(s->out, EV_READ);
	if (s->err)
		bufferevent_enable(s->err, EV_READ);
	if (s->stdin_eof && s->in && s->in != s->out &&
	    evbuffer_get_length(bufferevent_get_output(s->in)) == 0)
		close_stdin(s);
	if (!s->in || evbuffer_get_length(bufferevent_get_output(s->in)) < STREAM_BUF_MAX)
		stream_conn_pause_input(s->conn, false);
	apply_resize(s);
	if (b && b->wait) {
		s->waiting = true;
		b->wait(s->handle, on_exit_status, s);
	}
	maybe_end(s);
}

static void begin(struct rc_session *s)
{
	const struct stream_backend *b = stream_backend();

	s->begun = true;
	event_del(s->timer);
	if (!b || !b->open)
		return fail_session(s, "streaming backend unavailable");
	s->open_pending++;
	b->open(s->req, on_open, s);
}

static void on_create_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rc_session *s = arg;

	log_info("streaming connection from %s: timed out waiting for client to create streams",
		 s->conn->peer);
	stream_conn_close(s->conn, NULL);
}

/* ---- the protocol ------------------------------------------------------------------- */

static bool role_wanted(const struct stream_request *r, int role, int version)
{
	switch (role) {
	case R_STDIN:
		return r->in;
	case R_STDOUT:
		return r->out;
	case R_STDERR:
		return r->err && !r->tty;
	case R_ERROR:
		return true;
	case R_RESIZE:
		return r->tty && version >= 3;
	}
	return false;
}

static int rc_start(struct stream_conn *c)
{
	struct rc_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->req = c->req;
	s->stdin_pending = evbuffer_new();
	s->timer = evtimer_new(c->base, on_create_timeout, s);
	c->session = s;
	if (!s->stdin_pending || !s->timer)
		return -1;
	if (c->transport == TRANSPORT_WS) {
		static const int first_output[] = { R_STDOUT, R_STDERR, R_ERROR };
		for (int r = 0; r < R_MAX; r++) {
			struct stream_chan *ch = stream_chan_new(c, (uint32_t)r);
			ch->accepted = true;
			if (role_wanted(s->req, r, 3)) {
				ch->role = r;
				s->chan[r] = ch;
			}
		}
		/* Tell the client the session is open: an empty message on the
		 * first output channel in use. */
		for (size_t i = 0; i < ARRAY_SIZE(first_output); i++)
			if (s->chan[first_output[i]]) {
				stream_chan_send(s->chan[first_output[i]], "", 0);
				break;
			}
		begin(s);
		return 0;
	}
	for (int r = 0; r < R_MAX; r++)
		s->expected += role_wanted(s->req, r, c->version);
	event_add(s->timer, &(struct timeval){ .tv_sec = STREAM_CREATE_TIMEOUT_S });
	return 0;
}

static int rc_chan_open(struct stream_conn *c, struct stream_chan *ch,
			const struct stream_header *h, size_t nh)
{
	struct rc_session *s = c->session;
	const char *type = NULL;
	int role = -1;

	for (size_t i = 0; i < nh; i++)
		if (streq(h[i].name, "streamtype"))
			type = h[i].value;
	for (int r = 0; type && r < R_MAX; r++)
		if (streq(type, role_names[r]))
			role = r;
	if (role >= 0 && s->chan[role])
		return -1; /* a second stream of the same type */
	stream_chan_accept(ch);
	if (role < 0 || !role_wanted(s->req, role, c->version))
		return 0; /* replied to, not counted, its data dropped */
	ch->role = role;
	s->chan[role] = ch;
	if (++s->have == s->expected && !s->begun)
		begin(s);
	return 0;
}

static void rc_chan_data(struct stream_conn *c, struct stream_chan *ch, const uint8_t *data,
			 size_t len)
{
	struct rc_session *s = c->session;

	if (ch->role == R_STDIN)
		stdin_write(s, data, len);
	else if (ch->role == R_RESIZE)
		resize_data(s, data, len);
}

static void rc_chan_eof(struct stream_conn *c, struct stream_chan *ch)
{
	struct rc_session *s = c->session;

	if (ch->role != R_STDIN || s->stdin_eof)
		return;
	/* With a tty, stdin and the output share the terminal: keep it. */
	if (s->req->tty)
		return;
	s->stdin_eof = true;
	if (s->in && evbuffer_get_length(bufferevent_get_output(s->in)) == 0)
		close_stdin(s);
}

static void rc_drained(struct stream_conn *c)
{
	relay_out(c->session);
}

static void rc_free(struct stream_conn *c)
{
	struct rc_session *s = c->session;

	if (!s)
		return;
	c->session = NULL;
	s->conn = NULL;
	if (s->timer)
		event_del(s->timer);
	release_backend(s);
	/* The memory goes on the next loop turn: this may run from deep inside
	 * the session's own callbacks. With open() pending, on_open() frees it. */
	if (s->open_pending == 0)
		event_base_once(c->base, -1, EV_TIMEOUT, on_deferred_free, s, NULL);
}

const struct stream_proto stream_remotecommand_proto = {
	.start = rc_start,
	.chan_open = rc_chan_open,
	.chan_data = rc_chan_data,
	.chan_eof = rc_chan_eof,
	.drained = rc_drained,
	.free = rc_free,
};
