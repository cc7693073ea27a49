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
};

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

#endif
