/* The CRI method table: every method of runtime.v1.RuntimeService and
 * runtime.v1.ImageService with the policy that goes with it (does it change
 * state, and so gets audited; is it server-streaming) and its handler, or
 * NULL for "not implemented yet". The request and response types come from
 * the protobuf-c service descriptors at start-up. */
#ifndef CRISP_FRONTEND_CRI_METHODS_H
#define CRISP_FRONTEND_CRI_METHODS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "common/error.h"
#include "frontend/grpc_server.h"
#include "frontend/list_items.h"

#define CRI_MUTATES 0x1   /* changes state: every call is audited */
#define CRI_STREAMING 0x2 /* server-streaming */

typedef void (*cri_handler_fn)(struct rpc *rpc);

struct cri_method {
	const char *service; /* "runtime.v1.RuntimeService" */
	const char *name;    /* "Version" */
	unsigned flags;
	cri_handler_fn handler;
	/* filled by cri_methods_init() */
	char path[96]; /* "/runtime.v1.RuntimeService/Version" */
	const ProtobufCMessageDescriptor *input, *output;
};

extern struct cri_method cri_methods[];
extern const size_t cri_nmethods;

/* Bind the table to the generated service descriptors; a method on one side
 * only means the table is out of date with cri-api.proto, which is fatal. */
void cri_methods_init(void);

/* A call to rpc->method arrived with these request bytes (data NULL: the
 * client sent no message). Unpacks, validates, runs the handler. */
void cri_dispatch(struct rpc *rpc, const uint8_t *data, size_t len);

/* Finish a call, with the audit line for mutating methods. */
void cri_reply(struct rpc *rpc, const ProtobufCMessage *resp);
/* The same with the response packed already: len bytes of the method's
 * output type, which the caller vouches for. */
void cri_reply_packed(struct rpc *rpc, const uint8_t *data, size_t len);
/* A server-streaming call ends OK after the messages it queued. */
void cri_stream_end(struct rpc *rpc);
void cri_fail(struct rpc *rpc, const struct crisp_error *err);
void cri_failf(struct rpc *rpc, enum crisp_errcode code, const char *fmt, ...) _printf_(3, 4);

/* A list answer (frontend/list_reply.c): for a List* method, one message,
 * or RESOURCE_EXHAUSTED when it would be over the message limit; for its
 * Stream* twin (CRI_STREAMING), the same items cut between items into
 * messages of at most 1 MiB each (none for no item), then OK. Takes the
 * items. */
void cri_reply_list(struct rpc *rpc, struct list_items *items);

/* The one place crisp errors become gRPC status codes. */
grpc_status_code cri_status_from_err(enum crisp_errcode code);
const char *cri_status_name(grpc_status_code code);

/* Handlers (frontend/cri_runtime.c). */
void cri_version(struct rpc *rpc);
void cri_status(struct rpc *rpc);
void cri_runtime_config(struct rpc *rpc);
void cri_update_runtime_config(struct rpc *rpc);

/* Handlers (frontend/cri_image.c). */
void cri_list_images(struct rpc *rpc);
void cri_image_status(struct rpc *rpc);
void cri_pull_image(struct rpc *rpc);
void cri_remove_image(struct rpc *rpc);
void cri_image_fs_info(struct rpc *rpc);
/* Whether name is one of the configured runtime handlers (an ImageSpec's
 * runtime_handler must be, when set). */
bool runtime_handler_known(const char *name);

/* Handlers (frontend/admin.c): crisp.v1.Admin, root only. */
void admin_import_image(struct rpc *rpc);
/* Handlers (frontend/cri_pod.c). */
void cri_run_pod_sandbox(struct rpc *rpc);
void cri_stop_pod_sandbox(struct rpc *rpc);
void cri_remove_pod_sandbox(struct rpc *rpc);
void cri_pod_sandbox_status(struct rpc *rpc);
void cri_list_pod_sandbox(struct rpc *rpc);
void cri_update_pod_sandbox_resources(struct rpc *rpc);

/* Handlers (frontend/cri_container.c). */
void cri_create_container(struct rpc *rpc);
void cri_start_container(struct rpc *rpc);
void cri_stop_container(struct rpc *rpc);
void cri_remove_container(struct rpc *rpc);
void cri_container_status(struct rpc *rpc);
void cri_list_containers(struct rpc *rpc);
void cri_update_container_resources(struct rpc *rpc);
void cri_reopen_container_log(struct rpc *rpc);
void cri_exec_sync(struct rpc *rpc);

/* Handlers (frontend/cri_stats.c). */
void cri_container_stats(struct rpc *rpc);
void cri_list_container_stats(struct rpc *rpc);
void cri_pod_sandbox_stats(struct rpc *rpc);
void cri_list_pod_sandbox_stats(struct rpc *rpc);
void cri_list_metric_descriptors(struct rpc *rpc);
void cri_list_pod_sandbox_metrics(struct rpc *rpc);

/* Handlers (frontend/events.c): server-streaming. */
void cri_get_container_events(struct rpc *rpc);

/* Handlers (frontend/cri_stream.c). */
void cri_exec(struct rpc *rpc);
void cri_attach(struct rpc *rpc);
void cri_port_forward(struct rpc *rpc);

#endif
