/* The gRPC side of the frontend: gRPC C core serves HTTP/2 on connections we
 * accept ourselves (so we can read SO_PEERCRED and refuse strangers before
 * gRPC parses a byte), one pump thread moves completion-queue events into the
 * libevent loop, and each call is a small state machine the loop drives. A
 * call may stay parked while helpers work; whoever holds it finishes it once
 * with rpc_finish(). */
#ifndef CRISP_FRONTEND_GRPC_SERVER_H
#define CRISP_FRONTEND_GRPC_SERVER_H

#include <event2/event.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "frontend/frontend.h"

struct cri_method;

/* One CRI call as the method handlers see it. */
struct rpc {
	const struct cri_method *method; /* NULL when the path is not a CRI method */
	struct fe_peer peer;             /* the connection it came on */
	ProtobufCMessage *req;           /* unpacked request; freed with the call */
	uint64_t start_ms;
	bool finished;
	/* Server-streaming calls: run when the client goes away (or the server
	 * shuts down) before the call finished; the holder then finishes it. */
	void (*on_cancel)(struct rpc *rpc, void *arg);
	void *cancel_arg;
	/* Server-streaming calls: run each time one of the call's messages
	 * went out to the transport, while the call is not finished, so that
	 * a holder with much to say queues the rest as the queue drains
	 * instead of all of it at once. */
	void (*on_sent)(struct rpc *rpc, void *arg);
	void *sent_arg;
};

/* A server-streaming call queues at most this many messages: at most one
 * is in flight at a time, the rest wait here. */
#define RPC_STREAM_QUEUE_MAX 256

/* The largest message the server sends or receives: the kubelet's own
 * limit (image lists and stats outgrow gRPC's 4 MiB default). */
#define RPC_MESSAGE_MAX (16 << 20)

/* Before the seccomp filter is loaded (gRPC opens what it needs here):
 * grpc_init, the server with every CRI method registered, the pump thread. */
void fe_server_init(struct event_base *base);
/* Start accepting clients on listen_fd (the CRI socket from crispd). */
void fe_server_listen(int listen_fd);
/* Stop accepting, cancel every call, and call done() once gRPC is torn down
 * (every call, parked ones included, finished first). */
void fe_server_shutdown(void (*done)(void));
bool fe_server_shutting_down(void);

/* Answer the call: resp (may be NULL) when code is GRPC_STATUS_OK, otherwise
 * the status and msg. Exactly once per call. */
void rpc_finish(struct rpc *rpc, grpc_status_code code, const char *msg,
		const ProtobufCMessage *resp);
/* Answer a unary call OK with a response message packed already (len bytes
 * of the method's output type). */
void rpc_finish_bytes(struct rpc *rpc, const uint8_t *data, size_t len);

/* Whether the client's end of the call arrived already (it went away, or
 * the call was cancelled). on_cancel runs only for an end that arrives
 * after it was set: a holder that starts a stream after waiting for
 * helpers checks this first. */
bool rpc_client_gone(const struct rpc *rpc);
/* A server-streaming call stays open: its initial metadata goes out now. */
void rpc_stream_start(struct rpc *rpc);
/* Queue one message (packed bytes) on a server-streaming call. Returns -1
 * when the call's queue is full (a client that does not read) or the call
 * is finished; the caller decides what to do with such a client. */
int rpc_send(struct rpc *rpc, const uint8_t *data, size_t len);

#endif
