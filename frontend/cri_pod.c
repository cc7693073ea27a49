/* The CRI pod sandbox methods, orchestrated as typed requests: runtimed keeps
 * the sandbox records and runs pause, netd the network namespace and CNI,
 * imaged the containers' snapshots. The frontend only sequences them, rolls
 * back what a failed RunPodSandbox did, and builds the CRI answers. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "frontend/cri_methods.h"
#include "frontend/orch.h"

/* Bounds of what is forwarded. Kubernetes names are at most 253 bytes; a
 * whole PodSandboxConfig (labels, annotations, DNS, port mappings) is kept
 * well inside what runtimed accepts for one message, with an error the
 * client can read instead of a helper closing the channel. */
#define META_MAX 253
#define HANDLER_MAX 253
#define POD_CONFIG_MAX (192u << 10)

static int check_pod_config(const Runtime__V1__PodSandboxConfig *cfg, struct crisp_error *err)
{
	const Runtime__V1__PodSandboxMetadata *md = cfg ? cfg->metadata : NULL;

	if (!cfg)
		return err_set(err, CRISP_E_INVALID, "config is required");
	if (!md || !*md->name || !*md->namespace_ || !*md->uid)
		return err_set(err, CRISP_E_INVALID,
			       "config.metadata needs a name, a namespace and a uid");
	if (strlen(md->name) > META_MAX || strlen(md->namespace_) > META_MAX ||
	    strlen(md->uid) > META_MAX)
		return err_set(err, CRISP_E_INVALID,
			       "config.metadata: name, namespace and uid are at most %d bytes",
			       META_MAX);
	if (protobuf_c_message_get_packed_size(&cfg->base) > POD_CONFIG_MAX)
		return err_set(err, CRISP_E_INVALID, "config is larger than %u KiB",
			       POD_CONFIG_MAX >> 10);
	return 0;
}

/* A sandbox id in a request: one crisp could have made, or "not found". */
static int check_sandbox_id(const char *id, struct crisp_error *err)
{
	if (!*id)
		return err_set(err, CRISP_E_INVALID, "pod_sandbox_id is required");
	if (!cri_id_valid(id))
		return err_set(err, CRISP_E_NOT_FOUND, "pod sandbox \"%.80s\" not found", id);
	return 0;
}

static const CrispIpc__SandboxInfo *sandbox_find(const ProtobufCMessage *reply, const char *id)
{
	const CrispIpc__SandboxListReply *r = (const CrispIpc__SandboxListReply *)reply;

	for (size_t i = 0; r && i < r->n_sandboxes; i++)
		if (streq(r->sandboxes[i]->id, id))
			return r->sandboxes[i];
	return NULL;
}

/* ---- RunPodSandbox ------------------------------------------------------------ */

/* The pod's user namespace options when it asks for one of its own (mode
 * POD), else NULL. */
static const Runtime__V1__UserNamespace *pod_userns(const Runtime__V1__PodSandboxConfig *c)
{
	const Runtime__V1__LinuxPodSandboxConfig *lx = c ? c->linux : NULL;
	const Runtime__V1__LinuxSandboxSecurityContext *sc = lx ? lx->security_context : NULL;
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	return u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD ? u : NULL;
}

struct run_ctx {
	struct rpc *rpc;
	char id[CRI_ID_LEN + 1];
	bool host_net, net_attempted, start_attempted;
	struct crisp_error err; /* the first failure, reported after rollback */
	char *netns_path;
	char *userns_path; /* netd's pin of the pod's user namespace, or NULL */
	/* ADD and START run together: the answers still to come, and the
	 * first failure among them with the step it names */
	unsigned pending;
	const char *failed_step;
	struct crisp_error failed_err;
};

static void run_end(struct run_ctx *ctx)
{
	inflight_del(ctx->id);
	free(ctx->netns_path);
	free(ctx->userns_path);
	free(ctx);
}

static void run_fail_done(ProtobufCMessage *reply, struct ipc_msg *msg,
			  const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		log_warn("RunPodSandbox %s rollback: removing the sandbox record: %s", ctx->id,
			 err->msg);
		/* The record stays reserved, and with it the pod's name: the
		 * kubelet's retry of this very RunPodSandbox would fail as a
		 * duplicate until a pass removes it (a full disk fails the
		 * undo as it failed the start). */
		reconcile_soon();
	}
	cri_fail(ctx->rpc, &ctx->err);
	run_end(ctx);
}

static void run_rollback_record(struct run_ctx *ctx)
{
	CrispIpc__SandboxRemoveRequest rm = CRISP_IPC__SANDBOX_REMOVE_REQUEST__INIT;

	rm.sandbox_id = ctx->id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, run_fail_done, ctx);
}

static void run_rollback_net_done(ProtobufCMessage *reply, struct ipc_msg *msg,
				  const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		log_warn("RunPodSandbox %s rollback: removing the pod network: %s "
			 "(the reconciler retries)",
			 ctx->id, err->msg);
		reconcile_soon();
	}
	run_rollback_record(ctx);
}

static void run_rollback_net(struct run_ctx *ctx)
{
	CrispIpc__PodNetworkRemoveRequest rm = CRISP_IPC__POD_NETWORK_REMOVE_REQUEST__INIT;

	/* Even after a failed ADD: netd may hold a netns or a partial CNI
	 * result, and removing cleans up whatever there is. */
	if (!ctx->net_attempted)
		return run_rollback_record(ctx);
	rm.sandbox_id = ctx->id;
	helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, run_rollback_net_done, ctx);
}

static void run_rollback_stop_done(ProtobufCMessage *reply, struct ipc_msg *msg,
				   const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;

	if (err && err->code != CRISP_E_NOT_FOUND)
		log_warn("RunPodSandbox %s rollback: stopping the sandbox: %s", ctx->id, err->msg);
	run_rollback_net(ctx);
}

/* Undo every step that was attempted, in reverse, then report the first
 * error prefixed by the step that failed. */
static void run_rollback(struct run_ctx *ctx, const char *step, const struct crisp_error *err)
{
	CrispIpc__SandboxStopRequest stop = CRISP_IPC__SANDBOX_STOP_REQUEST__INIT;

	ctx->err = *err;
	if (ctx->err.code == CRISP_E_OK)
		ctx->err.code = CRISP_E_INTERNAL;
	err_prefix(&ctx->err, "%s", step);
	log_info("RunPodSandbox %s failed (%s); rolling back", ctx->id, ctx->err.msg);
	if (!ctx->start_attempted)
		return run_rollback_net(ctx);
	stop.sandbox_id = ctx->id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_STOP, &stop.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, run_rollback_stop_done, ctx);
}

static void on_run_started(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;
	Runtime__V1__RunPodSandboxResponse resp = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;

	if (err)
		return run_rollback(ctx, "start sandbox", err);
	resp.pod_sandbox_id = ctx->id;
	cri_reply(ctx->rpc, &resp.base);
	run_end(ctx);
}

/* A host-network pod: START right after the reservation. */
static void run_start(struct run_ctx *ctx)
{
	CrispIpc__SandboxStartRequest start = CRISP_IPC__SANDBOX_START_REQUEST__INIT;

	start.sandbox_id = ctx->id;
	start.netns_path = (char *)"";
	ctx->start_attempted = true;
	/* No timeout here: runtimed bounds the start itself (the pause's or
	 * the monitor's sync), and a START this side gave up on would go on
	 * in runtimed and leave a READY pod that RunPodSandbox said failed. */
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_START, &start.base,
		    &crisp_ipc__sandbox_info__descriptor, HELPER_NO_TIMEOUT, on_run_started, ctx);
}

/* One of ADD and START answered; once both have, reply or roll back. A
 * rollback waits for both: stopping a sandbox whose START is still running,
 * or removing a network in the middle of its ADD, would race with it. */
static void run_joined(struct run_ctx *ctx, const char *step, const struct crisp_error *err)
{
	Runtime__V1__RunPodSandboxResponse resp = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;

	if (err && ctx->failed_step)
		log_warn("RunPodSandbox %s: %s failed too: %s", ctx->id, step, err->msg);
	else if (err) {
		ctx->failed_step = step;
		ctx->failed_err = *err;
	}
	if (--ctx->pending > 0)
		return;
	if (ctx->failed_step)
		return run_rollback(ctx, ctx->failed_step, &ctx->failed_err);
	resp.pod_sandbox_id = ctx->id;
	cri_reply(ctx->rpc, &resp.base);
	run_end(ctx);
}

static void on_run_network(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	run_joined(arg, "pod network", err);
}

static void on_run_started_in_netns(ProtobufCMessage *reply, struct ipc_msg *msg,
				    const struct crisp_error *err, void *arg)
{
	run_joined(arg, "start sandbox", err);
}

/* The netns exists: the pause needs nothing more, so the plugins (ADD) and
 * runtimed (START: cgroups, pod files, pause) run at the same time. */
static void on_run_netns(ProtobufCMessage *reply, struct ipc_msg *msg,
			 const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;
	const Runtime__V1__RunPodSandboxRequest *req = (const Runtime__V1__RunPodSandboxRequest *)
							       ctx->rpc->req;
	const CrispIpc__PodNetwork *net = (const CrispIpc__PodNetwork *)reply;
	CrispIpc__PodNetworkAddRequest add = CRISP_IPC__POD_NETWORK_ADD_REQUEST__INIT;
	CrispIpc__SandboxStartRequest start = CRISP_IPC__SANDBOX_START_REQUEST__INIT;

	if (err)
		return run_rollback(ctx, "pod network", err);
	if (!*net->netns_path) {
		struct crisp_error e;
		err_set(&e, CRISP_E_INTERNAL, "netd answered without a network namespace path");
		return run_rollback(ctx, "pod network", &e);
	}
	if (!!pod_userns(req->config) != !!*net->userns_path) {
		struct crisp_error e;
		err_set(&e, CRISP_E_INTERNAL, "netd answered %s a user namespace for a pod %s",
			*net->userns_path ? "with" : "without",
			pod_userns(req->config) ? "that asks for one" : "without one");
		return run_rollback(ctx, "pod network", &e);
	}
	ctx->netns_path = xstrdup(net->netns_path);
	if (*net->userns_path)
		ctx->userns_path = xstrdup(net->userns_path);
	ctx->pending = 2;
	add.sandbox_id = ctx->id;
	add.config = req->config;
	/* CNI takes as long as its plugins do: netd bounds each plugin call by
	 * cni.plugin_timeout, and crispd restarts a netd that stops answering
	 * its health pings, which fails this call. */
	helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_ADD, &add.base,
		    &crisp_ipc__pod_network__descriptor, HELPER_NO_TIMEOUT, on_run_network, ctx);
	start.sandbox_id = ctx->id;
	start.netns_path = ctx->netns_path;
	start.userns_path = ctx->userns_path ? ctx->userns_path : (char *)"";
	ctx->start_attempted = true;
	/* No timeout: as in run_start. */
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_START, &start.base,
		    &crisp_ipc__sandbox_info__descriptor, HELPER_NO_TIMEOUT,
		    on_run_started_in_netns, ctx);
}

static void on_run_created(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct run_ctx *ctx = arg;
	const Runtime__V1__RunPodSandboxRequest *req = (const Runtime__V1__RunPodSandboxRequest *)
							       ctx->rpc->req;
	CrispIpc__PodNetworkAddRequest nsreq = CRISP_IPC__POD_NETWORK_ADD_REQUEST__INIT;

	if (err) {
		/* Nothing to undo: the reservation itself failed (a duplicate
		 * name keeps its ALREADY_EXISTS code). */
		struct crisp_error e = *err;
		err_prefix(&e, "reserve sandbox");
		cri_fail(ctx->rpc, &e);
		return run_end(ctx);
	}
	if (ctx->host_net)
		return run_start(ctx);
	/* The sandbox is reserved in runtimed before netd makes the netns
	 * (frontend/reconcile.c relies on that order). */
	nsreq.sandbox_id = ctx->id;
	nsreq.config = req->config;
	/* hostUsers: false: netd reads the mappings from the config and makes
	 * the user namespace with the netns inside it (docs/PRIVSEP.md, "Known
	 * gaps" 18); runtimed checked them at the reservation. */
	ctx->net_attempted = true;
	helper_call(HELPER_NETD, IPC_NETD_POD_NETNS_CREATE, &nsreq.base,
		    &crisp_ipc__pod_network__descriptor, HELPER_NO_TIMEOUT, on_run_netns, ctx);
}

void cri_run_pod_sandbox(struct rpc *rpc)
{
	const Runtime__V1__RunPodSandboxRequest *req = (const Runtime__V1__RunPodSandboxRequest *)
							       rpc->req;
	CrispIpc__SandboxCreateRequest create = CRISP_IPC__SANDBOX_CREATE_REQUEST__INIT;
	struct crisp_error err;
	struct run_ctx *ctx;

	if (check_pod_config(req->config, &err) < 0)
		return cri_fail(rpc, &err);
	if (strlen(req->runtime_handler) > HANDLER_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "runtime_handler is longer than %d bytes",
				 HANDLER_MAX);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->rpc = rpc;
	ctx->host_net = pod_host_network(req->config);
	cri_id_new(ctx->id);
	inflight_add(ctx->id);
	create.sandbox_id = ctx->id;
	create.config = req->config;
	create.runtime_handler = req->runtime_handler;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_CREATE, &create.base,
		    &crisp_ipc__sandbox_info__descriptor, 0, on_run_created, ctx);
}

/* ---- StopPodSandbox ----------------------------------------------------------- */

static void on_stop_network(ProtobufCMessage *reply, struct ipc_msg *msg,
			    const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	Runtime__V1__StopPodSandboxResponse resp = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		struct crisp_error e = *err;
		err_prefix(&e, "pod network");
		return cri_fail(rpc, &e);
	}
	cri_reply(rpc, &resp.base);
}

struct stop_ctx {
	struct rpc *rpc;
	bool host_net;
};

static void on_stop_sandbox(ProtobufCMessage *reply, struct ipc_msg *msg,
			    const struct crisp_error *err, void *arg)
{
	struct stop_ctx *ctx = arg;
	struct rpc *rpc = ctx->rpc;
	bool host_net = ctx->host_net;
	const Runtime__V1__StopPodSandboxRequest *req = (const Runtime__V1__StopPodSandboxRequest *)
								rpc->req;
	CrispIpc__PodNetworkDelRequest del = CRISP_IPC__POD_NETWORK_DEL_REQUEST__INIT;

	free(ctx);
	if (err) {
		struct crisp_error e = *err;
		err_prefix(&e, "stop sandbox");
		return cri_fail(rpc, &e);
	}
	if (host_net) {
		Runtime__V1__StopPodSandboxResponse resp =
			RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
		return cri_reply(rpc, &resp.base);
	}
	del.sandbox_id = req->pod_sandbox_id;
	helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_DEL, &del.base, &crisp_ipc__empty__descriptor,
		    HELPER_NO_TIMEOUT, on_stop_network, rpc);
}

static void on_stop_lookup(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	const Runtime__V1__StopPodSandboxRequest *req = (const Runtime__V1__StopPodSandboxRequest *)
								rpc->req;
	CrispIpc__SandboxStopRequest stop = CRISP_IPC__SANDBOX_STOP_REQUEST__INIT;
	const CrispIpc__SandboxInfo *sb;
	struct stop_ctx *ctx;

	if (err)
		return cri_fail(rpc, err);
	/* StopPodSandbox "must not return an error if all relevant resources
	 * have already been reclaimed" (the CRI; critest stops an unknown id):
	 * a sandbox that is not there is stopped. */
	if (!(sb = sandbox_find(reply, req->pod_sandbox_id))) {
		Runtime__V1__StopPodSandboxResponse resp =
			RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
		return cri_reply(rpc, &resp.base);
	}
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->rpc = rpc;
	ctx->host_net = !*sb->netns_path && pod_host_network(sb->config);
	stop.sandbox_id = req->pod_sandbox_id;
	/* runtimed stops the containers with their own grace periods first. */
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_STOP, &stop.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_stop_sandbox, ctx);
}

void cri_stop_pod_sandbox(struct rpc *rpc)
{
	const Runtime__V1__StopPodSandboxRequest *req = (const Runtime__V1__StopPodSandboxRequest *)
								rpc->req;
	CrispIpc__SandboxListRequest list = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;
	struct crisp_error err;

	if (check_sandbox_id(req->pod_sandbox_id, &err) < 0 && err.code != CRISP_E_NOT_FOUND)
		return cri_fail(rpc, &err);
	if (!cri_id_valid(req->pod_sandbox_id)) { /* no crisp sandbox has it: see above */
		Runtime__V1__StopPodSandboxResponse resp =
			RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
		return cri_reply(rpc, &resp.base);
	}
	list.sandbox_id = req->pod_sandbox_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &list.base,
		    &crisp_ipc__sandbox_list_reply__descriptor, 0, on_stop_lookup, rpc);
}

/* ---- RemovePodSandbox ----------------------------------------------------------- */

struct remove_ctx {
	struct rpc *rpc;
	bool host_net;
	char **ctr_ids;
	size_t n_ctr;
	unsigned pending;
	struct crisp_error err;
};

static void remove_end(struct remove_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_ctr; i++)
		free(ctx->ctr_ids[i]);
	free(ctx->ctr_ids);
	free(ctx);
}

static void remove_finish(struct remove_ctx *ctx)
{
	Runtime__V1__RemovePodSandboxResponse resp = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;

	if (ctx->err.code != CRISP_E_OK)
		cri_fail(ctx->rpc, &ctx->err);
	else
		cri_reply(ctx->rpc, &resp.base);
	remove_end(ctx);
}

/* A step that failed after runtimed's record went: a retried
 * RemovePodSandbox finds no sandbox and succeeds, so the reconciler, which
 * removes netns and snapshots nobody owns, is what finishes it. */
static void remove_note(struct remove_ctx *ctx, const char *step, const struct crisp_error *err)
{
	if (!err || err->code == CRISP_E_NOT_FOUND)
		return;
	reconcile_soon();
	if (ctx->err.code != CRISP_E_OK)
		return;
	ctx->err = *err;
	err_prefix(&ctx->err, "%s", step);
}

static void on_remove_network(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct remove_ctx *ctx = arg;

	remove_note(ctx, "pod network", err);
	remove_finish(ctx);
}

static void remove_network(struct remove_ctx *ctx)
{
	const Runtime__V1__RemovePodSandboxRequest *req =
		(const Runtime__V1__RemovePodSandboxRequest *)ctx->rpc->req;
	CrispIpc__PodNetworkRemoveRequest rm = CRISP_IPC__POD_NETWORK_REMOVE_REQUEST__INIT;

	if (ctx->host_net)
		return remove_finish(ctx);
	rm.sandbox_id = req->pod_sandbox_id;
	helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_remove_network, ctx);
}

static void on_remove_snapshot(ProtobufCMessage *reply, struct ipc_msg *msg,
			       const struct crisp_error *err, void *arg)
{
	struct remove_ctx *ctx = arg;

	remove_note(ctx, "container snapshot", err);
	if (--ctx->pending == 0)
		remove_network(ctx);
}

static void on_remove_sandbox(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct remove_ctx *ctx = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		remove_note(ctx, "remove sandbox", err);
		return remove_finish(ctx);
	}
	/* The containers are gone with the sandbox: their snapshots next. */
	ctx->pending = 1;
	for (size_t i = 0; i < ctx->n_ctr; i++) {
		CrispIpc__SnapshotRemoveRequest rm = CRISP_IPC__SNAPSHOT_REMOVE_REQUEST__INIT;
		rm.container_id = ctx->ctr_ids[i];
		ctx->pending++;
		helper_call(HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_REMOVE, &rm.base,
			    &crisp_ipc__empty__descriptor, 0, on_remove_snapshot, ctx);
	}
	on_remove_snapshot(NULL, NULL, NULL, ctx);
}

static void on_remove_stopped(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct remove_ctx *ctx = arg;
	const Runtime__V1__RemovePodSandboxRequest *req =
		(const Runtime__V1__RemovePodSandboxRequest *)ctx->rpc->req;
	CrispIpc__SandboxRemoveRequest rm = CRISP_IPC__SANDBOX_REMOVE_REQUEST__INIT;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		remove_note(ctx, "stop sandbox", err);
		return remove_finish(ctx);
	}
	rm.sandbox_id = req->pod_sandbox_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_remove_sandbox, ctx);
}

static void on_remove_lookup(struct fetch *f, void *arg)
{
	struct remove_ctx *ctx = arg;
	const Runtime__V1__RemovePodSandboxRequest *req =
		(const Runtime__V1__RemovePodSandboxRequest *)ctx->rpc->req;
	const CrispIpc__ContainerListReply *cl = (const CrispIpc__ContainerListReply *)f->reply[1];
	CrispIpc__SandboxStopRequest stop = CRISP_IPC__SANDBOX_STOP_REQUEST__INIT;
	const struct crisp_error *err = fetch_error(f, 0, 1, -1);
	const CrispIpc__SandboxInfo *sb;

	if (err) {
		ctx->err = *err;
		fetch_free(f);
		return remove_finish(ctx);
	}
	/* Removing what is not there succeeds: the kubelet may retry a
	 * removal that went through. */
	if (!(sb = sandbox_find(f->reply[0], req->pod_sandbox_id))) {
		fetch_free(f);
		return remove_finish(ctx);
	}
	ctx->host_net = !*sb->netns_path && pod_host_network(sb->config);
	ctx->n_ctr = cl->n_containers;
	ctx->ctr_ids = xcalloc(cl->n_containers, sizeof(*ctx->ctr_ids));
	for (size_t i = 0; i < cl->n_containers; i++)
		ctx->ctr_ids[i] = xstrdup(cl->containers[i]->id);
	fetch_free(f);
	/* The CRI wants running containers terminated: stop is idempotent. */
	stop.sandbox_id = req->pod_sandbox_id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_STOP, &stop.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_remove_stopped, ctx);
}

void cri_remove_pod_sandbox(struct rpc *rpc)
{
	const Runtime__V1__RemovePodSandboxRequest *req =
		(const Runtime__V1__RemovePodSandboxRequest *)rpc->req;
	Runtime__V1__RemovePodSandboxResponse resp = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
	CrispIpc__SandboxListRequest sl = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;
	struct remove_ctx *ctx;
	struct fetch *f;

	if (!*req->pod_sandbox_id)
		return cri_failf(rpc, CRISP_E_INVALID, "pod_sandbox_id is required");
	if (!cri_id_valid(req->pod_sandbox_id))
		return cri_reply(rpc, &resp.base);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->rpc = rpc;
	f = fetch_new(on_remove_lookup, ctx);
	sl.sandbox_id = req->pod_sandbox_id;
	cl.sandbox_id = req->pod_sandbox_id;
	cl.brief = true; /* on_remove_lookup() wants only their ids */
	fetch_add(f, 0, HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &sl.base,
		  &crisp_ipc__sandbox_list_reply__descriptor, 0);
	fetch_add(f, 1, HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		  &crisp_ipc__container_list_reply__descriptor, 0);
	fetch_go(f);
}

/* ---- a pod as the CRI shows it: record, containers, network ------------------- */

struct pod_view_ctx {
	char id[CRI_ID_LEN + 1];
	pod_view_fn fn;
	void *arg;
	ProtobufCMessage *sandboxes;
};

static void on_view_rest(struct fetch *f, void *arg)
{
	struct pod_view_ctx *ctx = arg;
	const CrispIpc__SandboxInfo *sb = sandbox_find(ctx->sandboxes, ctx->id);
	const struct crisp_error *err = fetch_error(f, 0, -1);
	struct crisp_error net_err = f->err[1];

	/* A netns netd no longer knows (removed, or never made) means no
	 * IPs, not a failure. */
	if (!err && net_err.code != CRISP_E_OK && net_err.code != CRISP_E_NOT_FOUND) {
		err_prefix(&net_err, "pod network");
		err = &net_err;
	}
	ctx->fn(err ? NULL : sb, (const CrispIpc__ContainerListReply *)f->reply[0],
		(const CrispIpc__PodNetwork *)f->reply[1], err, ctx->arg);
	fetch_free(f);
	protobuf_c_message_free_unpacked(ctx->sandboxes, NULL);
	free(ctx);
}

static void on_view_sandbox(ProtobufCMessage *reply, struct ipc_msg *msg,
			    const struct crisp_error *err, void *arg)
{
	struct pod_view_ctx *ctx = arg;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;
	CrispIpc__PodNetworkStatusRequest ns = CRISP_IPC__POD_NETWORK_STATUS_REQUEST__INIT;
	const CrispIpc__SandboxInfo *sb;
	struct fetch *f;

	if (err || !(sb = sandbox_find(reply, ctx->id))) {
		struct crisp_error nf;
		if (!err)
			err_set(&nf, CRISP_E_NOT_FOUND, "pod sandbox %s not found", ctx->id);
		ctx->fn(NULL, NULL, NULL, err ? err : &nf, ctx->arg);
		free(ctx);
		return;
	}
	ctx->sandboxes = protobuf_c_message_unpack(&crisp_ipc__sandbox_list_reply__descriptor, NULL,
						   msg->len, msg->data);
	if (!ctx->sandboxes)
		fatal("cannot unpack a SandboxListReply again");
	f = fetch_new(on_view_rest, ctx);
	cl.sandbox_id = ctx->id;
	fetch_add(f, 0, HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		  &crisp_ipc__container_list_reply__descriptor, 0);
	if (*sb->netns_path) {
		ns.sandbox_id = ctx->id;
		fetch_add(f, 1, HELPER_NETD, IPC_NETD_POD_NETWORK_STATUS, &ns.base,
			  &crisp_ipc__pod_network__descriptor, 0);
	}
	fetch_go(f);
}

void pod_view_get(const char *sandbox_id, pod_view_fn fn, void *arg)
{
	struct pod_view_ctx *ctx = xcalloc(1, sizeof(*ctx));
	CrispIpc__SandboxListRequest sl = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;

	snprintf(ctx->id, sizeof(ctx->id), "%s", sandbox_id);
	ctx->fn = fn;
	ctx->arg = arg;
	sl.sandbox_id = ctx->id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &sl.base,
		    &crisp_ipc__sandbox_list_reply__descriptor, 0, on_view_sandbox, ctx);
}

Runtime__V1__ContainerStatus **container_statuses_build(struct pool *p,
							const CrispIpc__ContainerListReply *cl,
							size_t *ret_n)
{
	Runtime__V1__ContainerStatus **out;

	*ret_n = cl ? cl->n_containers : 0;
	if (!*ret_n)
		return NULL;
	out = pool_alloc(p, *ret_n * sizeof(*out));
	for (size_t i = 0; i < *ret_n; i++)
		out[i] = container_status_build(p, cl->containers[i]);
	return out;
}

/* ---- PodSandboxStatus ------------------------------------------------------------- */

static void on_pod_status(const CrispIpc__SandboxInfo *sb, const CrispIpc__ContainerListReply *cl,
			  const CrispIpc__PodNetwork *net, const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	const Runtime__V1__PodSandboxStatusRequest *req =
		(const Runtime__V1__PodSandboxStatusRequest *)rpc->req;
	Runtime__V1__PodSandboxStatusResponse resp = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry info =
		RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry *infop = &info;
	struct pool p = { 0 };

	if (err)
		return cri_fail(rpc, err);
	resp.status = pod_status_build(&p, sb, net);
	resp.containers_statuses = container_statuses_build(&p, cl, &resp.n_containers_statuses);
	resp.timestamp = (int64_t)now_ms() * 1000000;
	if (req->verbose) {
		info.key = (char *)"info";
		info.value = pod_info_json(&p, sb);
		resp.n_info = 1;
		resp.info = &infop;
	}
	cri_reply(rpc, &resp.base);
	pool_free(&p);
}

void cri_pod_sandbox_status(struct rpc *rpc)
{
	const Runtime__V1__PodSandboxStatusRequest *req =
		(const Runtime__V1__PodSandboxStatusRequest *)rpc->req;
	struct crisp_error err;

	if (check_sandbox_id(req->pod_sandbox_id, &err) < 0)
		return cri_fail(rpc, &err);
	pod_view_get(req->pod_sandbox_id, on_pod_status, rpc);
}

/* ---- ListPodSandbox ------------------------------------------------------------------ */

static bool pod_matches(const CrispIpc__SandboxInfo *sb, const Runtime__V1__PodSandboxFilter *flt)
{
	const Runtime__V1__PodSandboxConfig *cfg = sb->config;

	if (!flt)
		return true;
	if (*flt->id && strncmp(sb->id, flt->id, strlen(flt->id)) != 0)
		return false;
	if (flt->state && sb->state != flt->state->state)
		return false;
	return labels_match(flt->n_label_selector, (void *const *)flt->label_selector,
			    cfg ? cfg->n_labels : 0, cfg ? (void *const *)cfg->labels : NULL);
}

static const ProtobufCMessage *pods_request(void)
{
	/* Every sandbox, its config cut to what pod_shown() and pod_item()
	 * read (metadata, labels, annotations). */
	static CrispIpc__SandboxListRequest all = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;

	all.brief = true;
	return &all.base;
}

static size_t pods_count(const ProtobufCMessage *reply)
{
	return ((const CrispIpc__SandboxListReply *)reply)->n_sandboxes;
}

static const ProtobufCMessage *pods_record(const ProtobufCMessage *reply, size_t i)
{
	return &((const CrispIpc__SandboxListReply *)reply)->sandboxes[i]->base;
}

/* ListPodSandbox and StreamPodSandboxes ask with the same filter. */
static const Runtime__V1__PodSandboxFilter *pod_filter(const struct rpc *rpc)
{
	if (rpc->req->descriptor == &runtime__v1__stream_pod_sandboxes_request__descriptor)
		return ((const Runtime__V1__StreamPodSandboxesRequest *)rpc->req)->filter;
	return ((const Runtime__V1__ListPodSandboxRequest *)rpc->req)->filter;
}

static bool pod_shown(const ProtobufCMessage *record, const struct rpc *rpc)
{
	const CrispIpc__SandboxInfo *sb = (const CrispIpc__SandboxInfo *)record;

	/* Reserved but not started, or started while its network is still
	 * being added (RunPodSandbox has not answered, and may yet roll it
	 * back): not a sandbox the CRI knows yet. */
	return !sb->ready_to_start && !inflight_has(sb->id) && pod_matches(sb, pod_filter(rpc));
}

static ProtobufCMessage *pod_item(struct pool *p, const ProtobufCMessage *record)
{
	const CrispIpc__SandboxInfo *sb = (const CrispIpc__SandboxInfo *)record;
	Runtime__V1__PodSandbox *pod = pool_alloc(p, sizeof(*pod));

	runtime__v1__pod_sandbox__init(pod);
	pod->id = sb->id;
	pod->state = sb->state;
	pod->created_at = sb->created_at;
	pod->runtime_handler = sb->runtime_handler;
	if (sb->config) {
		pod->metadata = sb->config->metadata;
		pod->labels = (Runtime__V1__PodSandbox__LabelsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox__labels_entry__descriptor,
			sb->config->n_labels, (void *const *)sb->config->labels, &pod->n_labels);
		pod->annotations = (Runtime__V1__PodSandbox__AnnotationsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox__annotations_entry__descriptor,
			sb->config->n_annotations, (void *const *)sb->config->annotations,
			&pod->n_annotations);
	}
	return &pod->base;
}

static struct list_kind pods_list = {
	.name = "sandboxes",
	.ipc_type = IPC_RUNTIMED_SANDBOX_LIST,
	.request = pods_request,
	.reply_desc = &crisp_ipc__sandbox_list_reply__descriptor,
	.count = pods_count,
	.record = pods_record,
	.shown = pod_shown,
	.item = pod_item,
};

void cri_list_pod_sandbox(struct rpc *rpc)
{
	list_answer(&pods_list, rpc);
}

/* ---- UpdatePodSandboxResources ----------------------------------------------------- */

static void on_sandbox_updated(ProtobufCMessage *reply, struct ipc_msg *msg,
			       const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	Runtime__V1__UpdatePodSandboxResourcesResponse resp =
		RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_RESPONSE__INIT;

	if (err)
		return cri_fail(rpc, err);
	cri_reply(rpc, &resp.base);
}

/* The kubelet has resized the pod's cgroup already; runtimed records the
 * new overhead and resources in the sandbox's config. */
void cri_update_pod_sandbox_resources(struct rpc *rpc)
{
	const Runtime__V1__UpdatePodSandboxResourcesRequest *req =
		(const Runtime__V1__UpdatePodSandboxResourcesRequest *)rpc->req;
	CrispIpc__SandboxUpdateRequest up = CRISP_IPC__SANDBOX_UPDATE_REQUEST__INIT;

	if (!cri_id_valid(req->pod_sandbox_id))
		return cri_failf(rpc, CRISP_E_INVALID, "pod_sandbox_id is not a full sandbox id");
	up.sandbox_id = req->pod_sandbox_id;
	up.overhead = req->overhead;
	up.resources = req->resources;
	if (protobuf_c_message_get_packed_size(&up.base) > IPC_MEDIUM)
		return cri_failf(rpc, CRISP_E_INVALID, "resources are larger than %u KiB",
				 IPC_MEDIUM >> 10);
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_UPDATE, &up.base,
		    &crisp_ipc__empty__descriptor, 0, on_sandbox_updated, rpc);
}
