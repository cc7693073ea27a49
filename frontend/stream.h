/* The CRI streaming server: Exec, Attach and PortForward.
 *
 * A CRI call (frontend/cri_stream.c) validates the request and turns it into
 * a single-use URL on our own HTTP listener (stream_server.c). The client
 * (kubelet, crictl) connects to it and upgrades the connection to SPDY/3.1
 * (stream_spdy.c) or WebSocket (stream_ws.c); over either transport runs the
 * kubelet remote command protocol (stream_remotecommand.c) or port-forward
 * (stream_portforward.c). The bytes of the process or the pod come from a
 * backend that hands us file descriptors: runtimed's exec'd process pipes or
 * pty, the container monitor's attach socket, netd's socket connected inside
 * the pod's network namespace. We only relay bytes, with bounded buffers both
 * ways, and never enter a namespace. PROTOCOLS.md sections 1-4 has the wire
 * facts this follows. */
#ifndef CRISP_FRONTEND_STREAM_H
#define CRISP_FRONTEND_STREAM_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

/* ==== the backend interface (implemented by the lead, over ipc) ============ */

enum stream_kind {
	STREAM_EXEC,
	STREAM_ATTACH,
	STREAM_PORT_FORWARD
};

/* A validated CRI request, kept with its token until the client connects. */
struct stream_request {
	enum stream_kind kind;
	char *container_id; /* exec, attach */
	char *sandbox_id;   /* port-forward */
	char **cmd;         /* exec */
	size_t n_cmd;
	bool tty, in, out, err;
	uint16_t *ports; /* port-forward: the ports the CRI request named */
	size_t n_ports;
};

/* What open() hands back. Ownership of every fd >= 0 passes to the streaming
 * server, which closes it when the session ends.
 * - tty: fds[0] is one fd for input and output both (the pty master, or a
 *   socket carrying the terminal); fds[1] = fds[2] = -1.
 * - no tty: fds[0] the write end of stdin (-1 if !in), fds[1] and fds[2] the
 *   read ends of stdout and stderr (-1 if not asked for).
 * Closing fds[0] (non-tty) is how the client's end of stdin reaches the
 * process: for exec it is the process's stdin EOF; for attach it only means
 * this client stopped sending, and the monitor decides (StdinOnce) whether the
 * container sees EOF.
 * handle is the backend's own: it comes back in wait(), resize(), release(). */
struct stream_io {
	int fds[3];
	void *handle;
};

typedef void (*stream_check_cb)(void *ctx, const struct crisp_error *err);
typedef void (*stream_open_cb)(void *ctx, const struct stream_io *io,
			       const struct crisp_error *err);
typedef void (*stream_exit_cb)(void *ctx, int exit_code, const struct crisp_error *err);
typedef void (*stream_connect_cb)(void *ctx, int fd, const struct crisp_error *err);

/* All calls are made from the frontend's event loop and must not block; each
 * callback runs later from the loop, never from inside the call. */
struct stream_backend {
	/* Optional. Before a URL is handed out: does the container (running)
	 * or the sandbox (ready) exist? err NOT_FOUND/PRECONDITION fails the
	 * CRI call with that code. done is called exactly once. */
	void (*check)(const struct stream_request *r, stream_check_cb done, void *ctx);
	/* exec: start r->cmd in the container; attach: attach to its stdio.
	 * r is valid during the call only. done is called exactly once, with io or an error (then io is NULL).
	 * If the client went away meanwhile, the server closes the fds and
	 * calls release() itself. */
	void (*open)(const struct stream_request *r, stream_open_cb done, void *ctx);
	/* Required for exec (the session ends when the process has exited).
	 * exec: the exit code of the process (0-255; 128+n for signal n);
	 * attach: called when the container exits (the code is not shown to
	 * the client). done is called at most once, and never after release(). */
	void (*wait)(void *handle, stream_exit_cb done, void *ctx);
	/* Terminal size from the client (tty only); both >= 1. */
	void (*resize)(void *handle, uint16_t width, uint16_t height);
	/* The session is over (process ended and reported, or client gone): forget
	 * handle and cancel a pending wait. The fds are the server's to close. */
	void (*release)(void *handle);
	/* port-forward: a TCP socket connected to port in the sandbox's network
	 * namespace (127.0.0.1, else ::1). done is called exactly once; on a
	 * connection that went away meanwhile the server closes the fd. */
	void (*port_connect)(const char *sandbox_id, uint16_t port, stream_connect_cb done,
			     void *ctx);
};

/* Install the backend (the pointer is kept). Without one, sessions fail with
 * "streaming backend unavailable" on the error stream. */
void stream_set_backend(const struct stream_backend *b);
const struct stream_backend *stream_backend(void);

/* stream_backend.c: the backend over ipc to runtimed and netd, on base. */
void stream_backend_install(struct event_base *base);
struct event_base *stream_backend_base(void);

/* ==== the server (stream_server.c) ========================================== */

/* Create the listening socket from cfg (stream_address, stream_port: 0 for an
 * ephemeral port) and load the TLS certificate and key if configured. Must run
 * before the sandbox is entered (files) and locked (socket, bind, listen):
 * in frontend.c start(), before frontend_sandbox_policy(). Once serving, the
 * server needs beyond the frontend's list: readv, and ioctl(FIONREAD) (both
 * libevent's reads). Sizes go to the backend's resize(), which for a tty
 * exec sets them on the pty master (ioctl TIOCSWINSZ, frontend/sandbox.c). */
int stream_server_start(struct event_base *base, const struct crisp_config *cfg,
			struct crisp_error *err);
/* Close the listener, every connection and session, and every token. */
void stream_server_stop(void);

/* Take ownership of r and return the URL its client must use:
 * "http[s]://<address>:<bound port>/<exec|attach|portforward>/<token>"; the
 * token is single-use and expires after cfg->stream_token_ttl seconds. NULL
 * with err when the server is not running or too many URLs are in flight
 * (CRISP_E_RESOURCE); r is then freed. */
char *stream_server_url(struct stream_request *r, struct crisp_error *err);
void stream_request_free(struct stream_request *r);

/* ==== inside the streaming server (shared by its files only) ================ */

/* Bound on what we buffer toward either side: past it we stop reading the other. */
#define STREAM_BUF_MAX (64 * 1024)
/* Largest chunk of backend output sent as one frame or message. */
#define STREAM_CHUNK (32 * 1024)
/* Largest SPDY data frame or WebSocket message we accept from a client. */
#define STREAM_FRAME_MAX (1024 * 1024)
/* Time allowed for a client to open the streams it needs (kubelet: 30 s). */
#define STREAM_CREATE_TIMEOUT_S 30

enum stream_transport {
	TRANSPORT_HTTP,
	TRANSPORT_SPDY,
	TRANSPORT_WS
};

/* A header of a SPDY SYN_STREAM, lower-cased name. */
struct stream_header {
	const char *name, *value;
};

struct stream_conn;

/* A stream (SPDY) or channel (WebSocket) of one connection. */
struct stream_chan {
	struct stream_conn *conn;
	struct stream_chan *next;
	uint32_t id;         /* SPDY stream id; WebSocket channel number */
	int role;            /* the protocol's tag for it */
	void *owner;         /* the protocol's per-stream state */
	bool accepted;       /* SPDY: SYN_REPLY sent */
	bool local_fin;      /* we sent FIN or RST */
	bool remote_fin;     /* the client sent FIN or RST */
	int64_t send_window; /* SPDY/3.1 flow control (see stream_spdy.c) */
	uint32_t recv_unacked;
};

/* What a protocol (remote command, port-forward) implements. */
struct stream_proto {
	/* After the upgrade was answered: 0, or -1 to close the connection. */
	int (*start)(struct stream_conn *c);
	/* SPDY: the client opened chan with these headers. Call
	 * stream_chan_accept() to take it, or return -1 to have it reset. */
	int (*chan_open)(struct stream_conn *c, struct stream_chan *ch,
			 const struct stream_header *h, size_t nh);
	void (*chan_data)(struct stream_conn *c, struct stream_chan *ch, const uint8_t *data,
			  size_t len);
	/* The client closed its side of chan (FIN, RST, or v5 CLOSE). */
	void (*chan_eof)(struct stream_conn *c, struct stream_chan *ch);
	/* Output toward the client fell below the bound: resume the backends. */
	void (*drained)(struct stream_conn *c);
	/* The connection is going away: release everything of the session. */
	void (*free)(struct stream_conn *c);
};

extern const struct stream_proto stream_remotecommand_proto;
extern const struct stream_proto stream_portforward_proto;

struct spdy_state;
struct ws_state;

struct stream_conn {
	struct bufferevent *bev;
	struct event_base *base;
	char peer[64];
	enum stream_transport transport;
	struct stream_request *req; /* from the token */
	/* negotiated: the channel protocol version (1-5; port-forward: 0) and,
	 * for WebSocket, base64 text framing */
	int version;
	bool base64;
	const struct stream_proto *proto;
	void *session;
	struct stream_chan *chans;
	size_t nchans;
	struct spdy_state *spdy;
	struct ws_state *ws;
	struct event *timer;     /* header timeout, then idle timeout */
	struct event *free_ev;   /* closed: freed on the next loop turn */
	struct event *resume_ev; /* input resumed: parse what is buffered */
	uint64_t last_active_ms;
	bool input_paused;
	bool finishing; /* close once the output is flushed */
	bool closed;
	struct stream_conn *prev_conn, *next_conn;
};

/* stream_server.c: connection helpers for the engines. */
struct stream_chan *stream_chan_new(struct stream_conn *c, uint32_t id);
struct stream_chan *stream_chan_find(struct stream_conn *c, uint32_t id);
void stream_chan_free(struct stream_chan *ch);
/* Bytes waiting to be written to the client. */
size_t stream_conn_pending(struct stream_conn *c);
bool stream_conn_output_full(struct stream_conn *c);
/* Stop or resume reading from the client (back-pressure toward it). */
void stream_conn_pause_input(struct stream_conn *c, bool pause);
void stream_conn_activity(struct stream_conn *c);
/* Close now, releasing the session (client gone, protocol error). */
void stream_conn_close(struct stream_conn *c, const char *why);

/* Transport operations, dispatched on c->transport. */
void stream_chan_accept(struct stream_chan *ch);
bool stream_chan_can_send(struct stream_chan *ch);
void stream_chan_send(struct stream_chan *ch, const void *data, size_t len);
void stream_chan_fin(struct stream_chan *ch);
void stream_chan_reset(struct stream_chan *ch);
/* Everything is sent: say goodbye, flush, close. */
void stream_conn_finish(struct stream_conn *c);

/* stream_spdy.c */
int spdy_init(struct stream_conn *c, struct crisp_error *err);
void spdy_free(struct stream_conn *c);
void spdy_read(struct stream_conn *c);
void spdy_chan_accept(struct stream_chan *ch);
void spdy_send_data(struct stream_chan *ch, const void *data, size_t len, bool fin);
void spdy_send_rst(struct stream_conn *c, uint32_t id, uint32_t status);
bool spdy_can_send(struct stream_chan *ch);
void spdy_finish(struct stream_conn *c);
/* Header block codec, exposed for the unit test: one context per direction. */
struct spdy_zctx;
struct spdy_zctx *spdy_zctx_new(bool deflate);
void spdy_zctx_free(struct spdy_zctx *z);
int spdy_header_block_encode(struct spdy_zctx *z, const struct stream_header *h, size_t nh,
			     struct evbuffer *out, struct crisp_error *err);
/* Parses into *ret_h (names and values point into *ret_buf; free both). */
int spdy_header_block_decode(struct spdy_zctx *z, const uint8_t *in, size_t len,
			     struct stream_header **ret_h, size_t *ret_nh, char **ret_buf,
			     struct crisp_error *err);

/* stream_ws.c */
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: 28 characters and a NUL. */
void ws_accept_key(const char *key, char out[29]);
int ws_init(struct stream_conn *c, struct crisp_error *err);
void ws_free(struct stream_conn *c);
void ws_read(struct stream_conn *c);
void ws_send_message(struct stream_conn *c, uint8_t channel, const void *data, size_t len);
void ws_finish(struct stream_conn *c);

#endif
