/* RuntimeService methods that concern the runtime as a whole: Version,
 * Status, RuntimeConfig, UpdateRuntimeConfig. */
#include "autoconfig.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "ipc/cri-api.pb-c.h"
#include "frontend/cri_methods.h"
#include "frontend/frontend.h"
#include "frontend/helpers.h"

#define CRI_API_VERSION "v1"
#define KUBE_API_VERSION "0.1.0" /* the CRI "version" field: a fixed value, as in every runtime */
#define STATUS_TIMEOUT_MS 2000   /* kubelet calls Status every few seconds: answer quickly */

void cri_version(struct rpc *rpc)
{
	Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;

	resp.version = (char *)KUBE_API_VERSION;
	resp.runtime_name = (char *)"crisp";
	resp.runtime_version = (char *)CRISP_VERSION;
	resp.runtime_api_version = (char *)CRI_API_VERSION;
	cri_reply(rpc, &resp.base);
}

void cri_runtime_config(struct rpc *rpc)
{
	Runtime__V1__RuntimeConfigResponse resp = RUNTIME__V1__RUNTIME_CONFIG_RESPONSE__INIT;
	Runtime__V1__LinuxRuntimeConfiguration lc = RUNTIME__V1__LINUX_RUNTIME_CONFIGURATION__INIT;

	lc.cgroup_driver = frontend_config()->cgroup_driver == CGROUP_DRIVER_SYSTEMD
				   ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
				   : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	resp.linux = &lc;
	cri_reply(rpc, &resp.base);
}

/* ---- Status --------------------------------------------------------------- */

/* Each CRI condition is one helper's health. */
static const struct {
	const char *type;
	enum helper_id helper;
	uint16_t msg;
	const char *prefix; /* of the CamelCase reasons */
} status_checks[] = {
	{ "RuntimeReady", HELPER_RUNTIMED, IPC_RUNTIMED_HEALTH_GET, "Runtimed" },
	{ "NetworkReady", HELPER_NETD, IPC_NETD_HEALTH_GET, "Netd" },
};
#define NCHECKS ARRAY_SIZE(status_checks)

struct status_ctx;

struct status_cond {
	struct status_ctx *ctx;
	bool ok;
	char reason[64];
	char message[CRISP_ERRMSG_MAX];
};

/* A runtime handler as runtimed's health reply describes it. */
struct status_handler {
	char name[64];
	bool rro_mounts, user_namespaces, is_default;
};

struct status_ctx {
	struct rpc *rpc;
	unsigned pending;
	struct status_cond conds[NCHECKS];
	struct status_handler handlers[CONFIG_MAX_RUNTIME_HANDLERS + 1];
	size_t nhandlers;
};

static char *config_json(void)
{
	const struct crisp_config *cfg = frontend_config();
	json_t *o = json_object();
	char *s;

	for (size_t i = 0; i < config_nkeys; i++) {
		_cleanup_free_ char *key = xasprintf("%s.%s", config_keys[i].section,
						     config_keys[i].name);
		_cleanup_free_ char *value = config_get(cfg, &config_keys[i]);
		json_object_set_new(o, key, json_string(value));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static char *processes_json(void)
{
	json_t *a = helpers_process_states_json();
	char *s = json_dumps(a, JSON_COMPACT);

	json_decref(a);
	return s;
}

static void status_reply(struct status_ctx *ctx)
{
	Runtime__V1__StatusResponse resp = RUNTIME__V1__STATUS_RESPONSE__INIT;
	Runtime__V1__RuntimeStatus st = RUNTIME__V1__RUNTIME_STATUS__INIT;
	Runtime__V1__RuntimeCondition conds[NCHECKS], *condp[NCHECKS];
	Runtime__V1__StatusResponse__InfoEntry info[2], *infop[2];
	/* the default handler also under the name "" (the CRI's), then each */
	Runtime__V1__RuntimeHandler rh[CONFIG_MAX_RUNTIME_HANDLERS + 2];
	Runtime__V1__RuntimeHandler *rhp[CONFIG_MAX_RUNTIME_HANDLERS + 2];
	Runtime__V1__RuntimeHandlerFeatures rf[CONFIG_MAX_RUNTIME_HANDLERS + 2];
	Runtime__V1__RuntimeFeatures features = RUNTIME__V1__RUNTIME_FEATURES__INIT;
	const Runtime__V1__StatusRequest *req = (const Runtime__V1__StatusRequest *)ctx->rpc->req;
	_cleanup_free_ char *procs = NULL, *config = NULL;

	for (size_t i = 0; i < NCHECKS; i++) {
		runtime__v1__runtime_condition__init(&conds[i]);
		conds[i].type = (char *)status_checks[i].type;
		conds[i].status = ctx->conds[i].ok;
		conds[i].reason = ctx->conds[i].reason;
		conds[i].message = ctx->conds[i].message;
		condp[i] = &conds[i];
	}
	st.n_conditions = NCHECKS;
	st.conditions = condp;
	resp.status = &st;
	for (size_t i = 0; i < ctx->nhandlers; i++) {
		const struct status_handler *h = &ctx->handlers[i];

		for (int named = h->is_default ? 0 : 1; named < 2; named++) {
			size_t k = resp.n_runtime_handlers++;

			runtime__v1__runtime_handler__init(&rh[k]);
			runtime__v1__runtime_handler_features__init(&rf[k]);
			rh[k].name = named ? (char *)h->name : (char *)"";
			rf[k].recursive_read_only_mounts = h->rro_mounts;
			/* The kubelet sends hostUsers: false pods only to a
			 * handler that says true; runtimed says whether the
			 * host has the idmapped mounts they need. */
			rf[k].user_namespaces = h->user_namespaces;
			rh[k].features = &rf[k];
			rhp[k] = &rh[k];
		}
	}
	resp.runtime_handlers = rhp;
	/* runtimed applies the policy (Strict leaves out the image's
	 * /etc/group) and ContainerStatus reports the user: the kubelet
	 * admits pods that ask for Strict only when this says so. */
	features.supplemental_groups_policy = true;
	resp.features = &features;
	if (req->verbose) {
		procs = processes_json();
		config = config_json();
		for (size_t i = 0; i < 2; i++) {
			runtime__v1__status_response__info_entry__init(&info[i]);
			infop[i] = &info[i];
		}
		info[0].key = (char *)"processes";
		info[0].value = procs;
		info[1].key = (char *)"config";
		info[1].value = config;
		resp.n_info = 2;
		resp.info = infop;
	}
	cri_reply(ctx->rpc, &resp.base);
}

static void on_health(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		      void *arg)
{
	struct status_cond *c = arg;
	struct status_ctx *ctx = c->ctx;
	const char *prefix = status_checks[c - ctx->conds].prefix;

	if (err) {
		/* Never fail Status for a helper that is down: that is exactly
		 * what the condition is there to report. */
		c->ok = false;
		snprintf(c->reason, sizeof(c->reason), "%s%s", prefix,
			 err->code == CRISP_E_TIMEOUT ? "NotResponding" : "Unavailable");
		snprintf(c->message, sizeof(c->message), "%s", err->msg);
	} else {
		const CrispIpc__HealthGetReply *h = (const CrispIpc__HealthGetReply *)reply;

		/* runtimed's: its handlers (the reply is gone after this) */
		for (size_t i = 0;
		     i < h->n_handlers && ctx->nhandlers < CONFIG_MAX_RUNTIME_HANDLERS + 1; i++) {
			struct status_handler *sh = &ctx->handlers[ctx->nhandlers++];

			snprintf(sh->name, sizeof(sh->name), "%s", h->handlers[i]->name);
			sh->rro_mounts = h->handlers[i]->recursive_read_only_mounts;
			sh->user_namespaces = h->handlers[i]->user_namespaces;
			sh->is_default = h->handlers[i]->default_handler;
		}
		c->ok = h->ready;
		if (*h->reason)
			snprintf(c->reason, sizeof(c->reason), "%s", h->reason);
		else if (!h->ready)
			snprintf(c->reason, sizeof(c->reason), "%sNotReady", prefix);
		snprintf(c->message, sizeof(c->message), "%s", h->message);
	}
	if (--ctx->pending > 0)
		return;
	status_reply(ctx);
	free(ctx);
}

void cri_status(struct rpc *rpc)
{
	struct status_ctx *ctx = xcalloc(1, sizeof(*ctx));
	CrispIpc__HealthGetRequest req = CRISP_IPC__HEALTH_GET_REQUEST__INIT;

	ctx->rpc = rpc;
	/* Both helpers are asked at once. A callback may run before
	 * helper_call() returns (helper down): the count is set beforehand. */
	ctx->pending = NCHECKS;
	for (size_t i = 0; i < NCHECKS; i++)
		ctx->conds[i].ctx = ctx;
	for (size_t i = 0; i < NCHECKS; i++)
		helper_call(status_checks[i].helper, status_checks[i].msg, &req.base,
			    &crisp_ipc__health_get_reply__descriptor, STATUS_TIMEOUT_MS, on_health,
			    &ctx->conds[i]);
}

/* ---- UpdateRuntimeConfig -------------------------------------------------- */

static void on_pod_cidr_set(ProtobufCMessage *reply, struct ipc_msg *msg,
			    const struct crisp_error *err, void *arg)
{
	struct rpc *rpc = arg;
	Runtime__V1__UpdateRuntimeConfigResponse resp =
		RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;

	if (err)
		return cri_fail(rpc, err);
	cri_reply(rpc, &resp.base);
}

void cri_update_runtime_config(struct rpc *rpc)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *req =
		(const Runtime__V1__UpdateRuntimeConfigRequest *)rpc->req;
	Runtime__V1__UpdateRuntimeConfigResponse resp =
		RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;
	CrispIpc__PodCidrSetRequest set = CRISP_IPC__POD_CIDR_SET_REQUEST__INIT;
	const char *cidr = "";
	char why[200];

	if (req->runtime_config && req->runtime_config->network_config)
		cidr = req->runtime_config->network_config->pod_cidr;
	/* The CRI says an empty CIDR is to be ignored. */
	if (!*cidr)
		return cri_reply(rpc, &resp.base);
	/* kubelet sends the node's pod CIDRs: one, or one of each family for
	 * dual stack. netd checks them again, with the same function. */
	if (cidr_list_valid(cidr, why, sizeof(why)) < 0)
		return cri_failf(rpc, CRISP_E_INVALID, "invalid pod_cidr: %s", why);
	set.pod_cidr = (char *)cidr;
	helper_call(HELPER_NETD, IPC_NETD_POD_CIDR_SET, &set.base, &crisp_ipc__empty__descriptor, 0,
		    on_pod_cidr_set, rpc);
}
