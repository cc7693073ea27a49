/* The CRI container methods: imaged prepares a container's writable
 * snapshot, runtimed creates, runs, stops and describes the container. The
 * frontend sequences them, undoes a half-made container, and builds the CRI
 * answers from runtimed's records. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "frontend/cri_methods.h"
#include "frontend/orch.h"

#define META_MAX 253
#define IMAGE_NAME_MAX 1024 /* as cri_image.c */
/* ContainerConfig and the PodSandboxConfig travel together in one message to
 * runtimed: their sum is kept well inside its bound for that message. */
#define CREATE_CONFIG_MAX (192u << 10)
#define EXEC_ARGS_MAX 4096
#define EXEC_CMD_MAX (128u << 10)
#define TIMEOUT_MAX 86400       /* seconds; longer is taken as this */
#define TIMEOUT_MARGIN_MS 30000 /* what runtimed needs beyond the request's own timeout */

/* A container id in a request: one crisp could have made, or "not found". */
static int check_container_id(const char *id, struct crisp_error *err)
{
	if (!*id)
		return err_set(err, CRISP_E_INVALID, "container_id is required");
	if (!cri_id_valid(id))
		return err_set(err, CRISP_E_NOT_FOUND, "container \"%.80s\" not found", id);
	return 0;
}

static const CrispIpc__ContainerInfo *container_find(const ProtobufCMessage *reply, const char *id)
{
	const CrispIpc__ContainerListReply *r = (const CrispIpc__ContainerListReply *)reply;

	for (size_t i = 0; r && i < r->n_containers; i++)
		if (streq(r->containers[i]->id, id))
			return r->containers[i];
	return NULL;
}

/* The ipc timeout of work bounded by a request's own timeout (seconds). */
static unsigned timeout_with_margin(int64_t seconds)
{
	if (seconds <= 0)
		return TIMEOUT_MARGIN_MS;
	if (seconds > TIMEOUT_MAX)
		seconds = TIMEOUT_MAX;
	return (unsigned)seconds * 1000 + TIMEOUT_MARGIN_MS;
}

/* Every answer that is an Empty from runtimed and an empty CRI message. */
static void on_empty_reply(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	ProtobufCMessage *resp;

	if (err)
		return cri_fail(rpc, err);
	resp = xcalloc(1, rpc->method->output->sizeof_message);
	protobuf_c_message_init(rpc->method->output, resp);
	cri_reply(rpc, resp);
	free(resp);
}

/* ---- CreateContainer ----------------------------------------------------------- */

struct create_ctx {
	struct rpc *rpc;
	char id[CRI_ID_LEN + 1];
	struct crisp_error err;
};

static void create_end(struct create_ctx *ctx)
{
	inflight_del(ctx->id);
	free(ctx);
}

static void on_create_rollback(ProtobufCMessage *reply, struct ipc_msg *msg,
			       const struct crisp_error *err, void *arg)
{
	struct create_ctx *ctx = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		log_warn("CreateContainer %s rollback: removing the snapshot: %s "
			 "(the reconciler retries)",
			 ctx->id, err->msg);
		reconcile_soon();
	}
	cri_fail(ctx->rpc, &ctx->err);
	create_end(ctx);
}

static void on_created(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		       void *arg)
{
	struct create_ctx *ctx = arg;
	Runtime__V1__CreateContainerResponse resp = RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT;
	CrispIpc__SnapshotRemoveRequest rm = CRISP_IPC__SNAPSHOT_REMOVE_REQUEST__INIT;

	if (!err) {
		resp.container_id = ctx->id;
		cri_reply(ctx->rpc, &resp.base);
		return create_end(ctx);
	}
	ctx->err = *err;
	err_prefix(&ctx->err, "create container");
	rm.container_id = ctx->id;
	helper_call(HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, 0, on_create_rollback, ctx);
}

#ifdef CRISP_TEST_HOOKS
/* Test hook: with CRISP_TEST_SNAPSHOT_TAMPER set, the frontend plays a
 * frontend taken over and changes the SnapshotMount imaged answered
 * before it goes to runtimed, for containers whose metadata name starts
 * with "tamper-upper" (the upperdir and workdir of the last mount it
 * passed on untouched: another container's), "tamper-nomac" (the MAC
 * removed) or "tamper-lower" (the first lowerdir replaced with the last
 * untouched mount's first lowerdir if that differs, else its upperdir).
 * tests/integration/test_snapshot_auth.py checks runtimed refuses each. */
static struct {
	char *upperdir, *workdir, *lowerdir;
} last_mount;

static const CrispIpc__SnapshotMount *tamper_mount(const char *name,
						   const CrispIpc__SnapshotMount *m,
						   CrispIpc__SnapshotMount *copy, char **lower)
{
	if (!getenv("CRISP_TEST_SNAPSHOT_TAMPER"))
		return m;
	*copy = *m;
	if (strncmp(name, "tamper-upper", 12) == 0 && last_mount.upperdir) {
		copy->upperdir = last_mount.upperdir;
		copy->workdir = last_mount.workdir;
	} else if (strncmp(name, "tamper-nomac", 12) == 0) {
		copy->mac.data = NULL;
		copy->mac.len = 0;
	} else if (strncmp(name, "tamper-lower", 12) == 0 && m->n_lowerdirs &&
		   last_mount.upperdir) {
		for (size_t i = 0; i < m->n_lowerdirs && i < 128; i++)
			lower[i] = m->lowerdirs[i];
		lower[0] = last_mount.lowerdir && !streq(last_mount.lowerdir, m->lowerdirs[0])
				   ? last_mount.lowerdir
				   : last_mount.upperdir;
		copy->lowerdirs = lower;
		copy->n_lowerdirs = m->n_lowerdirs < 128 ? m->n_lowerdirs : 128;
	} else {
		free(last_mount.upperdir);
		free(last_mount.workdir);
		free(last_mount.lowerdir);
		last_mount.upperdir = xstrdup(m->upperdir);
		last_mount.workdir = xstrdup(m->workdir);
		last_mount.lowerdir = m->n_lowerdirs ? xstrdup(m->lowerdirs[0]) : NULL;
		return m;
	}
	log_notice("test hook: CreateContainer %s: SnapshotMount tampered with (%.12s)", name,
		   name + 7);
	return copy;
}
#endif

static void on_snapshot(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
			void *arg)
{
	struct create_ctx *ctx = arg;
	const Runtime__V1__CreateContainerRequest *req =
		(const Runtime__V1__CreateContainerRequest *)ctx->rpc->req;
	CrispIpc__SnapshotMount *mount = (CrispIpc__SnapshotMount *)reply;
	CrispIpc__ContainerCreateRequest create = CRISP_IPC__CONTAINER_CREATE_REQUEST__INIT;
	CrispIpc__ImageRunConfig no_image = CRISP_IPC__IMAGE_RUN_CONFIG__INIT;

	if (err) {
		/* imaged prepares all or nothing: there is nothing to undo. */
		struct crisp_error e = *err;
		err_prefix(&e, "image snapshot");
		cri_fail(ctx->rpc, &e);
		return create_end(ctx);
	}
	create.container_id = ctx->id;
	create.sandbox_id = req->pod_sandbox_id;
	create.config = req->config;
	create.sandbox_config = req->sandbox_config;
	create.rootfs = mount;
#ifdef CRISP_TEST_HOOKS
	CrispIpc__SnapshotMount tampered;
	char *tampered_lower[128];
	create.rootfs = (CrispIpc__SnapshotMount *)tamper_mount(req->config->metadata->name, mount,
								&tampered, tampered_lower);
#endif
	create.image = mount->image ? mount->image : &no_image;
	create.image_ref = req->config->image->image;
	/* The image's own config comes on top of the client's: check the
	 * whole against runtimed's bound for this message. */
	if (protobuf_c_message_get_packed_size(&create.base) > IPC_MEDIUM) {
		struct crisp_error e;
		err_set(&e, CRISP_E_INVALID,
			"the container's config with its image's config is larger than %u KiB",
			IPC_MEDIUM >> 10);
		return on_created(NULL, NULL, &e, ctx);
	}
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_CREATE, &create.base,
		    &crisp_ipc__container_info__descriptor, 0, on_created, ctx);
}

void cri_create_container(struct rpc *rpc)
{
	const Runtime__V1__CreateContainerRequest *req =
		(const Runtime__V1__CreateContainerRequest *)rpc->req;
	const Runtime__V1__ContainerConfig *cfg = req->config;
	CrispIpc__SnapshotPrepareRequest prep = CRISP_IPC__SNAPSHOT_PREPARE_REQUEST__INIT;
	struct create_ctx *ctx;
	size_t size;

	if (!*req->pod_sandbox_id)
		return cri_failf(rpc, CRISP_E_INVALID, "pod_sandbox_id is required");
	if (!cri_id_valid(req->pod_sandbox_id))
		return cri_failf(rpc, CRISP_E_NOT_FOUND, "pod sandbox \"%.80s\" not found",
				 req->pod_sandbox_id);
	if (!cfg || !cfg->metadata || !*cfg->metadata->name)
		return cri_failf(rpc, CRISP_E_INVALID, "config.metadata.name is required");
	if (strlen(cfg->metadata->name) > META_MAX)
		return cri_failf(rpc, CRISP_E_INVALID,
				 "config.metadata.name is longer than %d bytes", META_MAX);
	if (!cfg->image || !*cfg->image->image)
		return cri_failf(rpc, CRISP_E_INVALID, "config.image.image is required");
	if (strlen(cfg->image->image) > IMAGE_NAME_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "config.image.image is longer than %d bytes",
				 IMAGE_NAME_MAX);
	/* One image store serves every handler: a known one changes nothing. */
	if (cfg->image->runtime_handler && *cfg->image->runtime_handler &&
	    !runtime_handler_known(cfg->image->runtime_handler))
		return cri_failf(rpc, CRISP_E_INVALID,
				 "config.image.runtime_handler '%.80s' is not a runtime handler",
				 cfg->image->runtime_handler);
	if (!req->sandbox_config)
		return cri_failf(rpc, CRISP_E_INVALID, "sandbox_config is required");
	size = protobuf_c_message_get_packed_size(&cfg->base) +
	       protobuf_c_message_get_packed_size(&req->sandbox_config->base);
	if (size > CREATE_CONFIG_MAX)
		return cri_failf(rpc, CRISP_E_INVALID,
				 "config and sandbox_config together are larger than %u KiB",
				 CREATE_CONFIG_MAX >> 10);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->rpc = rpc;
	cri_id_new(ctx->id);
	inflight_add(ctx->id);
	prep.container_id = ctx->id;
	prep.image = cfg->image->image;
	/* No timeout: a copy snapshot takes as long as the image is big, and a
	 * prepare this side gave up on would still finish in imaged and leave
	 * a snapshot nobody knows of until the next reconcile pass. crispd
	 * restarts an imaged that stops answering its pings, which fails this. */
	helper_call(HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_PREPARE, &prep.base,
		    &crisp_ipc__snapshot_mount__descriptor, HELPER_NO_TIMEOUT, on_snapshot, ctx);
}

/* ---- StartContainer, StopContainer, ReopenContainerLog -------------------------- */

void cri_start_container(struct rpc *rpc)
{
	const Runtime__V1__StartContainerRequest *req = (const Runtime__V1__StartContainerRequest *)
								rpc->req;
	CrispIpc__ContainerRequest start = CRISP_IPC__CONTAINER_REQUEST__INIT;
	struct crisp_error err;

	if (check_container_id(req->container_id, &err) < 0)
		return cri_fail(rpc, &err);
	start.container_id = req->container_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_START, &start.base,
		    &crisp_ipc__empty__descriptor, 0, on_empty_reply, rpc);
}

/* StopContainer "must not return an error if all relevant resources have
 * already been reclaimed" (the CRI; critest stops an unknown id): a
 * container that is not there is stopped. */
static void on_stop_container(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	on_empty_reply(reply, msg, err && err->code == CRISP_E_NOT_FOUND ? NULL : err, arg);
}

void cri_stop_container(struct rpc *rpc)
{
	const Runtime__V1__StopContainerRequest *req = (const Runtime__V1__StopContainerRequest *)
							       rpc->req;
	CrispIpc__ContainerStopRequest stop = CRISP_IPC__CONTAINER_STOP_REQUEST__INIT;
	struct crisp_error err;

	if (check_container_id(req->container_id, &err) < 0)
		return on_stop_container(NULL, NULL, &err, rpc);
	stop.container_id = req->container_id;
	stop.timeout = req->timeout < 0             ? 0
		       : req->timeout > TIMEOUT_MAX ? TIMEOUT_MAX
						    : req->timeout;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_STOP, &stop.base,
		    &crisp_ipc__empty__descriptor, timeout_with_margin(stop.timeout),
		    on_stop_container, rpc);
}

void cri_reopen_container_log(struct rpc *rpc)
{
	const Runtime__V1__ReopenContainerLogRequest *req =
		(const Runtime__V1__ReopenContainerLogRequest *)rpc->req;
	CrispIpc__ContainerRequest r = CRISP_IPC__CONTAINER_REQUEST__INIT;
	struct crisp_error err;

	if (check_container_id(req->container_id, &err) < 0)
		return cri_fail(rpc, &err);
	r.container_id = req->container_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LOG_REOPEN, &r.base,
		    &crisp_ipc__empty__descriptor, 0, on_empty_reply, rpc);
}

/* ---- RemoveContainer ---------------------------------------------------------------- */

static void on_remove_snapshot(ProtobufCMessage *reply, struct ipc_msg *msg,
			       const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	Runtime__V1__RemoveContainerResponse resp = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		struct crisp_error e = *err;
		err_prefix(&e, "container snapshot");
		return cri_fail(rpc, &e);
	}
	cri_reply(rpc, &resp.base);
}

static void remove_snapshot(struct rpc *rpc)
{
	const Runtime__V1__RemoveContainerRequest *req =
		(const Runtime__V1__RemoveContainerRequest *)rpc->req;
	CrispIpc__SnapshotRemoveRequest rm = CRISP_IPC__SNAPSHOT_REMOVE_REQUEST__INIT;

	rm.container_id = req->container_id;
	helper_call(HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, 0, on_remove_snapshot, rpc);
}

static void on_remove_container(ProtobufCMessage *reply, struct ipc_msg *msg,
				const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		struct crisp_error e = *err;
		err_prefix(&e, "remove container");
		return cri_fail(rpc, &e);
	}
	remove_snapshot(rpc);
}

static void on_remove_stopped(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	const Runtime__V1__RemoveContainerRequest *req =
		(const Runtime__V1__RemoveContainerRequest *)rpc->req;
	CrispIpc__ContainerRequest rm = CRISP_IPC__CONTAINER_REQUEST__INIT;

	/* Unknown to runtimed: a snapshot may still be left from a crash. */
	if (err && err->code == CRISP_E_NOT_FOUND)
		return remove_snapshot(rpc);
	if (err) {
		struct crisp_error e = *err;
		err_prefix(&e, "stop container");
		return cri_fail(rpc, &e);
	}
	rm.container_id = req->container_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, 0, on_remove_container, rpc);
}

void cri_remove_container(struct rpc *rpc)
{
	const Runtime__V1__RemoveContainerRequest *req =
		(const Runtime__V1__RemoveContainerRequest *)rpc->req;
	Runtime__V1__RemoveContainerResponse resp = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
	CrispIpc__ContainerStopRequest stop = CRISP_IPC__CONTAINER_STOP_REQUEST__INIT;

	if (!*req->container_id)
		return cri_failf(rpc, CRISP_E_INVALID, "container_id is required");
	/* Removing what cannot exist succeeds, as removing twice does. */
	if (!cri_id_valid(req->container_id))
		return cri_reply(rpc, &resp.base);
	/* The CRI removes a running container forcibly: kill it first (a
	 * no-op for one that already exited). */
	stop.container_id = req->container_id;
	stop.timeout = 0;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_STOP, &stop.base,
		    &crisp_ipc__empty__descriptor, timeout_with_margin(0), on_remove_stopped, rpc);
}

/* ---- ContainerStatus ---------------------------------------------------------------- */

static void on_container_status(ProtobufCMessage *reply, struct ipc_msg *msg,
				const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	const Runtime__V1__ContainerStatusRequest *req =
		(const Runtime__V1__ContainerStatusRequest *)rpc->req;
	Runtime__V1__ContainerStatusResponse resp = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT;
	Runtime__V1__ContainerStatusResponse__InfoEntry info =
		RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__ContainerStatusResponse__InfoEntry *infop = &info;
	const CrispIpc__ContainerInfo *c;
	struct pool p = { 0 };

	if (err)
		return cri_fail(rpc, err);
	if (!(c = container_find(reply, req->container_id)))
		return cri_failf(rpc, CRISP_E_NOT_FOUND, "container %s not found",
				 req->container_id);
	resp.status = container_status_build(&p, c);
	if (req->verbose) {
		info.key = (char *)"info";
		info.value = container_info_json(&p, c);
		resp.n_info = 1;
		resp.info = &infop;
	}
	cri_reply(rpc, &resp.base);
	pool_free(&p);
}

void cri_container_status(struct rpc *rpc)
{
	const Runtime__V1__ContainerStatusRequest *req =
		(const Runtime__V1__ContainerStatusRequest *)rpc->req;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;
	struct crisp_error err;

	if (check_container_id(req->container_id, &err) < 0)
		return cri_fail(rpc, &err);
	cl.container_id = req->container_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		    &crisp_ipc__container_list_reply__descriptor, 0, on_container_status, rpc);
}

/* ---- ListContainers ------------------------------------------------------------------ */

static bool container_matches(const CrispIpc__ContainerInfo *c,
			      const Runtime__V1__ContainerFilter *flt)
{
	const Runtime__V1__ContainerConfig *cfg = c->config;

	if (!flt)
		return true;
	if (*flt->id && strncmp(c->id, flt->id, strlen(flt->id)) != 0)
		return false;
	if (*flt->pod_sandbox_id &&
	    strncmp(c->sandbox_id, flt->pod_sandbox_id, strlen(flt->pod_sandbox_id)) != 0)
		return false;
	if (flt->state && c->state != flt->state->state)
		return false;
	return labels_match(flt->n_label_selector, (void *const *)flt->label_selector,
			    cfg ? cfg->n_labels : 0, cfg ? (void *const *)cfg->labels : NULL);
}

static const ProtobufCMessage *containers_request(void)
{
	/* Every container, its config cut to what container_shown() and
	 * container_item() read (metadata, labels, annotations). */
	static CrispIpc__ContainerListRequest all = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;

	all.brief = true;
	return &all.base;
}

static size_t containers_count(const ProtobufCMessage *reply)
{
	return ((const CrispIpc__ContainerListReply *)reply)->n_containers;
}

static const ProtobufCMessage *containers_record(const ProtobufCMessage *reply, size_t i)
{
	return &((const CrispIpc__ContainerListReply *)reply)->containers[i]->base;
}

/* ListContainers and StreamContainers ask with the same filter. */
static const Runtime__V1__ContainerFilter *container_filter(const struct rpc *rpc)
{
	if (rpc->req->descriptor == &runtime__v1__stream_containers_request__descriptor)
		return ((const Runtime__V1__StreamContainersRequest *)rpc->req)->filter;
	return ((const Runtime__V1__ListContainersRequest *)rpc->req)->filter;
}

static bool container_shown(const ProtobufCMessage *record, const struct rpc *rpc)
{
	return container_matches((const CrispIpc__ContainerInfo *)record, container_filter(rpc));
}

static ProtobufCMessage *container_item(struct pool *p, const ProtobufCMessage *record)
{
	const CrispIpc__ContainerInfo *c = (const CrispIpc__ContainerInfo *)record;
	const Runtime__V1__ContainerConfig *cfg = c->config;
	Runtime__V1__Container *out = pool_alloc(p, sizeof(*out));
	Runtime__V1__ImageSpec *spec = pool_alloc(p, sizeof(*spec));

	runtime__v1__container__init(out);
	runtime__v1__image_spec__init(spec);
	out->id = c->id;
	out->pod_sandbox_id = c->sandbox_id;
	out->state = c->state;
	out->created_at = c->created_at;
	spec->image = *c->image_ref ? c->image_ref : c->image_id;
	out->image = spec;
	out->image_ref = c->image_id;
	out->image_id = c->image_id;
	if (cfg) {
		out->metadata = cfg->metadata;
		out->labels = (Runtime__V1__Container__LabelsEntry **)map_copy(
			p, &runtime__v1__container__labels_entry__descriptor, cfg->n_labels,
			(void *const *)cfg->labels, &out->n_labels);
		out->annotations = (Runtime__V1__Container__AnnotationsEntry **)map_copy(
			p, &runtime__v1__container__annotations_entry__descriptor,
			cfg->n_annotations, (void *const *)cfg->annotations, &out->n_annotations);
	}
	return &out->base;
}

static struct list_kind containers_list = {
	.name = "containers",
	.ipc_type = IPC_RUNTIMED_CONTAINER_LIST,
	.request = containers_request,
	.reply_desc = &crisp_ipc__container_list_reply__descriptor,
	.count = containers_count,
	.record = containers_record,
	.shown = container_shown,
	.item = container_item,
};

void cri_list_containers(struct rpc *rpc)
{
	list_answer(&containers_list, rpc);
}

/* ---- UpdateContainerResources --------------------------------------------------------- */

void cri_update_container_resources(struct rpc *rpc)
{
	const Runtime__V1__UpdateContainerResourcesRequest *req =
		(const Runtime__V1__UpdateContainerResourcesRequest *)rpc->req;
	CrispIpc__ContainerUpdateRequest up = CRISP_IPC__CONTAINER_UPDATE_REQUEST__INIT;
	struct crisp_error err;

	if (check_container_id(req->container_id, &err) < 0)
		return cri_fail(rpc, &err);
	if (!req->linux)
		return cri_failf(rpc, CRISP_E_INVALID,
				 "linux resources are required (crisp runs Linux containers)");
	up.container_id = req->container_id;
	up.resources = req->linux;
	if (protobuf_c_message_get_packed_size(&up.base) > IPC_MEDIUM)
		return cri_failf(rpc, CRISP_E_INVALID, "linux resources are larger than %u KiB",
				 IPC_MEDIUM >> 10);
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_UPDATE, &up.base,
		    &crisp_ipc__empty__descriptor, 0, on_empty_reply, rpc);
}

/* ---- ExecSync --------------------------------------------------------------------------- */

/* One ExecSync waiting for runtimed, under the id a cancel names it by. */
struct exec_sync_call {
	struct rpc *rpc;
	uint64_t exec_id;
};

static uint64_t exec_sync_seq;

/* Execs started by an earlier frontend may still run in runtimed (it
 * keeps an exec until its command ends), under their ids: a restarted
 * frontend that counted from 1 again would get "already running" for its
 * own. So the count starts at a random 60-bit value, from the ids' own
 * random source, and an id never repeats in practice. */
static uint64_t exec_id_next(void)
{
	if (exec_sync_seq == 0) {
		char seed[CRI_ID_LEN + 1];

		cri_id_new(seed);
		seed[15] = '\0';
		exec_sync_seq = strtoull(seed, NULL, 16);
	}
	return ++exec_sync_seq;
}

static void on_exec_cancel_reply(ProtobufCMessage *reply, struct ipc_msg *msg,
				 const struct crisp_error *err, void *arg)
{
	/* NOT_FOUND: the command ended on its own meanwhile. */
	if (err)
		log_debug("ExecSync cancel: %s", err->msg);
}

/* The client went away (its deadline passed, it was killed): as containerd
 * does, the command dies with the call rather than run on holding one of
 * the container's exec slots. The call itself ends with runtimed's answer
 * to the ExecSync, which nobody reads any more. */
static void on_exec_sync_cancel(struct rpc *rpc, void *arg)
{
	const Runtime__V1__ExecSyncRequest *req = (const Runtime__V1__ExecSyncRequest *)rpc->req;
	const struct exec_sync_call *call = arg;
	CrispIpc__ExecCancelRequest cancel = CRISP_IPC__EXEC_CANCEL_REQUEST__INIT;

	rpc->on_cancel = NULL;
	cancel.container_id = req->container_id;
	cancel.exec_id = call->exec_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_EXEC_CANCEL, &cancel.base,
		    &crisp_ipc__empty__descriptor, 0, on_exec_cancel_reply, NULL);
}

static void on_exec_sync(ProtobufCMessage *reply, struct ipc_msg *msg,
			 const struct crisp_error *err, void *arg)
{
	struct exec_sync_call *call = arg;
	struct rpc *rpc = call->rpc;
	const CrispIpc__ExecSyncReply *r = (const CrispIpc__ExecSyncReply *)reply;
	Runtime__V1__ExecSyncResponse resp = RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT;

	rpc->on_cancel = NULL;
	free(call);

	/* A command that outlives its timeout comes back as CRISP_E_TIMEOUT,
	 * DEADLINE_EXCEEDED: what the kubelet reads as a timed-out probe. */
	if (err)
		return cri_fail(rpc, err);
	resp.stdout = r->stdout;
	resp.stderr = r->stderr;
	resp.exit_code = r->exit_code;
	cri_reply(rpc, &resp.base);
}

void cri_exec_sync(struct rpc *rpc)
{
	const Runtime__V1__ExecSyncRequest *req = (const Runtime__V1__ExecSyncRequest *)rpc->req;
	CrispIpc__ExecSyncRequest ex = CRISP_IPC__EXEC_SYNC_REQUEST__INIT;
	struct exec_sync_call *call;
	struct crisp_error err;
	size_t total = 0;

	if (check_container_id(req->container_id, &err) < 0)
		return cri_fail(rpc, &err);
	if (req->n_cmd == 0 || !*req->cmd[0])
		return cri_failf(rpc, CRISP_E_INVALID, "cmd is required");
	if (req->n_cmd > EXEC_ARGS_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "cmd has more than %d arguments",
				 EXEC_ARGS_MAX);
	for (size_t i = 0; i < req->n_cmd; i++)
		total += strlen(req->cmd[i]) + 1;
	if (total > EXEC_CMD_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "cmd is longer than %u KiB in all",
				 EXEC_CMD_MAX >> 10);
	if (req->timeout < 0)
		return cri_failf(rpc, CRISP_E_INVALID, "timeout is negative");
	ex.container_id = req->container_id;
	ex.n_cmd = req->n_cmd;
	ex.cmd = req->cmd;
	ex.timeout = req->timeout > TIMEOUT_MAX ? TIMEOUT_MAX : req->timeout;
	call = xcalloc(1, sizeof(*call));
	call->rpc = rpc;
	call->exec_id = ex.exec_id = exec_id_next();
	/* Before the call: its answer may come before helper_call returns. */
	rpc->on_cancel = on_exec_sync_cancel;
	rpc->cancel_arg = call;
	/* runtimed kills the command when its timeout expires, or when the
	 * client cancels; no timeout means as long as it runs. */
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_EXEC_SYNC, &ex.base,
		    &crisp_ipc__exec_sync_reply__descriptor,
		    ex.timeout ? timeout_with_margin(ex.timeout) : HELPER_NO_TIMEOUT, on_exec_sync,
		    call);
}
