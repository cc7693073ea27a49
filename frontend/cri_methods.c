/* The CRI method table, request decoding, and how calls end. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "frontend/audit.h"
#include "ipc/cri-api.pb-c.h"
#include "ipc/crisp-admin.pb-c.h"
#include "frontend/cri_methods.h"

#define RT "runtime.v1.RuntimeService"
#define IM "runtime.v1.ImageService"
#define AD "crisp.v1.Admin" /* crisp's own, root only: ipc/crisp-admin.proto */
#define M CRI_MUTATES
#define S CRI_STREAMING

/* Every method of cri-api.proto, with its policy. Mutating is what changes a
 * node's state (or runs code in a container): those calls are audited. */
struct cri_method cri_methods[] = {
	{ RT, "Version", 0, cri_version },
	{ RT, "RunPodSandbox", M, cri_run_pod_sandbox },
	{ RT, "StopPodSandbox", M, cri_stop_pod_sandbox },
	{ RT, "RemovePodSandbox", M, cri_remove_pod_sandbox },
	{ RT, "PodSandboxStatus", 0, cri_pod_sandbox_status },
	{ RT, "ListPodSandbox", 0, cri_list_pod_sandbox },
	{ RT, "StreamPodSandboxes", S, cri_list_pod_sandbox }, /* the same handler */
	{ RT, "CreateContainer", M, cri_create_container },
	{ RT, "StartContainer", M, cri_start_container },
	{ RT, "StopContainer", M, cri_stop_container },
	{ RT, "RemoveContainer", M, cri_remove_container },
	{ RT, "ListContainers", 0, cri_list_containers },
	{ RT, "StreamContainers", S, cri_list_containers }, /* the same handler */
	{ RT, "ContainerStatus", 0, cri_container_status },
	{ RT, "UpdateContainerResources", M, cri_update_container_resources },
	{ RT, "ReopenContainerLog", M, cri_reopen_container_log },
	{ RT, "ExecSync", M, cri_exec_sync },
	{ RT, "Exec", M, cri_exec },
	{ RT, "Attach", M, cri_attach },
	{ RT, "PortForward", M, cri_port_forward },
	{ RT, "ContainerStats", 0, cri_container_stats },
	{ RT, "ListContainerStats", 0, cri_list_container_stats },
	{ RT, "StreamContainerStats", S, cri_list_container_stats }, /* the same handler */
	{ RT, "PodSandboxStats", 0, cri_pod_sandbox_stats },
	{ RT, "ListPodSandboxStats", 0, cri_list_pod_sandbox_stats },
	{ RT, "StreamPodSandboxStats", S, cri_list_pod_sandbox_stats }, /* the same handler */
	{ RT, "UpdateRuntimeConfig", M, cri_update_runtime_config },
	{ RT, "Status", 0, cri_status },
	{ RT, "CheckpointContainer", M, NULL },
	{ RT, "CheckpointPod", M, NULL },
	{ RT, "RestorePod", M, NULL },
	{ RT, "GetContainerEvents", S, cri_get_container_events },
	{ RT, "ListMetricDescriptors", 0, cri_list_metric_descriptors },
	{ RT, "ListPodSandboxMetrics", 0, cri_list_pod_sandbox_metrics },
	{ RT, "StreamPodSandboxMetrics", S, cri_list_pod_sandbox_metrics }, /* the same handler */
	{ RT, "RuntimeConfig", 0, cri_runtime_config },
	{ RT, "UpdatePodSandboxResources", M, cri_update_pod_sandbox_resources },
	{ IM, "ListImages", 0, cri_list_images },
	{ IM, "StreamImages", S, cri_list_images }, /* the same handler */
	{ IM, "ImageStatus", 0, cri_image_status },
	{ IM, "PullImage", M, cri_pull_image },
	{ IM, "RemoveImage", M, cri_remove_image },
	{ IM, "ImageFsInfo", 0, cri_image_fs_info },
	{ AD, "ImportImage", M, admin_import_image },
};
const size_t cri_nmethods = ARRAY_SIZE(cri_methods);

static struct cri_method *method_find(const char *service, const char *name)
{
	for (size_t i = 0; i < cri_nmethods; i++)
		if (streq(cri_methods[i].service, service) && streq(cri_methods[i].name, name))
			return &cri_methods[i];
	return NULL;
}

static void bind_service(const ProtobufCServiceDescriptor *sd)
{
	for (unsigned i = 0; i < sd->n_methods; i++) {
		const ProtobufCMethodDescriptor *md = &sd->methods[i];
		struct cri_method *m = method_find(sd->name, md->name);

		if (!m)
			fatal("%s/%s is in cri-api.proto but not in the method table", sd->name,
			      md->name);
		snprintf(m->path, sizeof(m->path), "/%s/%s", sd->name, md->name);
		m->input = md->input;
		m->output = md->output;
	}
}

void cri_methods_init(void)
{
	bind_service(&runtime__v1__runtime_service__descriptor);
	bind_service(&runtime__v1__image_service__descriptor);
	bind_service(&crisp__v1__admin__descriptor);
	for (size_t i = 0; i < cri_nmethods; i++)
		if (!cri_methods[i].input)
			fatal("%s/%s is in the method table but not in cri-api.proto",
			      cri_methods[i].service, cri_methods[i].name);
}

/* ---- status codes --------------------------------------------------------- */

static const grpc_status_code status_of[CRISP_E__MAX] = {
	[CRISP_E_OK] = GRPC_STATUS_OK,
	[CRISP_E_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
	[CRISP_E_NOT_FOUND] = GRPC_STATUS_NOT_FOUND,
	[CRISP_E_EXISTS] = GRPC_STATUS_ALREADY_EXISTS,
	[CRISP_E_PRECONDITION] = GRPC_STATUS_FAILED_PRECONDITION,
	[CRISP_E_RESOURCE] = GRPC_STATUS_RESOURCE_EXHAUSTED,
	[CRISP_E_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
	[CRISP_E_TIMEOUT] = GRPC_STATUS_DEADLINE_EXCEEDED,
	[CRISP_E_PERMISSION] = GRPC_STATUS_PERMISSION_DENIED,
	[CRISP_E_UNIMPLEMENTED] = GRPC_STATUS_UNIMPLEMENTED,
	[CRISP_E_INTERNAL] = GRPC_STATUS_INTERNAL,
};

grpc_status_code cri_status_from_err(enum crisp_errcode code)
{
	if ((unsigned)code >= CRISP_E__MAX)
		return GRPC_STATUS_INTERNAL;
	return status_of[code];
}

const char *cri_status_name(grpc_status_code code)
{
	static const char *const names[] = {
		[GRPC_STATUS_OK] = "OK",
		[GRPC_STATUS_CANCELLED] = "CANCELLED",
		[GRPC_STATUS_UNKNOWN] = "UNKNOWN",
		[GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
		[GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
		[GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
		[GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
		[GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
		[GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
		[GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
		[GRPC_STATUS_ABORTED] = "ABORTED",
		[GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
		[GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
		[GRPC_STATUS_INTERNAL] = "INTERNAL",
		[GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
		[GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
		[GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
	};

	if ((unsigned)code >= ARRAY_SIZE(names) || !names[code])
		return "UNKNOWN";
	return names[code];
}

/* ---- the end of a call ---------------------------------------------------- */

static void finish_log(struct rpc *rpc, grpc_status_code code, const char *msg)
{
	const struct cri_method *m = rpc->method;

	if (m->flags & CRI_MUTATES)
		audit_call(rpc, code, msg);
	if (code == GRPC_STATUS_OK)
		log_debug("%s from pid %d: OK in %llu ms", m->name, (int)rpc->peer.pid,
			  (unsigned long long)(now_ms() - rpc->start_ms));
	else
		log_debug("%s from pid %d: %s: %s", m->name, (int)rpc->peer.pid,
			  cri_status_name(code), msg);
}

static void finish(struct rpc *rpc, grpc_status_code code, const char *msg,
		   const ProtobufCMessage *resp)
{
	finish_log(rpc, code, msg);
	rpc_finish(rpc, code, msg, resp);
}

void cri_reply(struct rpc *rpc, const ProtobufCMessage *resp)
{
	if (resp->descriptor != rpc->method->output) {
		log_crit("bug: %s answered with a %s", rpc->method->name, resp->descriptor->name);
		finish(rpc, GRPC_STATUS_INTERNAL, "internal error", NULL);
		return;
	}
	finish(rpc, GRPC_STATUS_OK, NULL, resp);
}

void cri_reply_packed(struct rpc *rpc, const uint8_t *data, size_t len)
{
	finish_log(rpc, GRPC_STATUS_OK, NULL);
	rpc_finish_bytes(rpc, data, len);
}

void cri_stream_end(struct rpc *rpc)
{
	finish(rpc, GRPC_STATUS_OK, NULL, NULL);
}

void cri_fail(struct rpc *rpc, const struct crisp_error *err)
{
	grpc_status_code code = cri_status_from_err(err->code);

	/* An error without a code would read as success to the client. */
	if (code == GRPC_STATUS_OK)
		code = GRPC_STATUS_INTERNAL;
	finish(rpc, code, err->msg, NULL);
}

void cri_failf(struct rpc *rpc, enum crisp_errcode code, const char *fmt, ...)
{
	struct crisp_error err = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	cri_fail(rpc, &err);
}

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	*ret = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*ret |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Whether a string field anywhere in the message holds a NUL byte.
 * protobuf-c hands strings over as C strings, so "abc\0def" would silently
 * become "abc": an id or image name that is not what the client sent. The
 * bytes were already accepted by protobuf_c_message_unpack, so this walk
 * only looks for what it cannot see; anything odd simply ends it. */
static bool nul_in_strings(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
			   int depth)
{
	const uint8_t *end = p + len;
	uint64_t key, n;

	while (p < end && depth < 64) {
		if (!varint(&p, end, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!varint(&p, end, &n))
				return false;
			break;
		case 1:
			p += 8;
			break;
		case 5:
			p += 4;
			break;
		case 2: {
			const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
				d, (unsigned)(key >> 3));
			if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
				return false;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, n))
				return true;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    nul_in_strings(f->descriptor, p, n, depth + 1))
				return true;
			p += n;
			break;
		}
		default:
			return false;
		}
	}
	return false;
}

void cri_dispatch(struct rpc *rpc, const uint8_t *data, size_t len)
{
	const struct cri_method *m = rpc->method;

	/* A unary call without its message is as malformed as bad bytes. An
	 * empty message is fine: it is a request with every field default. */
	if (data)
		rpc->req = protobuf_c_message_unpack(m->input, NULL, len, data);
	if (!rpc->req)
		return cri_failf(rpc, CRISP_E_INVALID, "malformed %s", m->input->name);
	if (data && nul_in_strings(m->input, data, len, 0))
		return cri_failf(rpc, CRISP_E_INVALID, "malformed %s: a string holds a NUL byte",
				 m->input->name);
	if (!m->handler)
		return cri_failf(rpc, CRISP_E_UNIMPLEMENTED, "%s is not implemented by crisp yet",
				 m->name);
	m->handler(rpc);
}
