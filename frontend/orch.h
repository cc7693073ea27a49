/* What the pod and container handlers share: random ids, several helper
 * calls in parallel whose replies are kept until all are in, a pool that
 * frees what a CRI answer was built from, CRI maps and filters, and the
 * in-flight sets the reconciler must not touch.
 *
 * The frontend keeps no durable state: every answer is built from what the
 * helpers say now, lists from a copy that runtimed keeps current (below). */
#ifndef CRISP_FRONTEND_ORCH_H
#define CRISP_FRONTEND_ORCH_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "frontend/helpers.h"
#include "ipc/cri-api.pb-c.h"

#define CRI_ID_LEN 64 /* sandbox and container ids: 32 random bytes in hex */

/* A fresh id: CRI_ID_LEN lowercase hex digits and a NUL. */
void cri_id_new(char out[CRI_ID_LEN + 1]);
/* Whether s has the shape of an id crisp hands out. Anything else cannot
 * name a crisp object, and never reaches a helper. */
bool cri_id_valid(const char *s);

/* ---- a pool of allocations freed together ---------------------------------- */

struct pool {
	void **ptrs;
	size_t n, cap;
};

void *pool_alloc(struct pool *p, size_t size);
/* Keeps a malloc'd pointer until pool_free (NULL is fine). */
void *pool_keep(struct pool *p, void *ptr);
char *pool_strdup(struct pool *p, const char *s);
void pool_free(struct pool *p);

/* A CRI map<string,string> copied into another map type with the same
 * layout (every such entry is { base, key, value }): entries point into the
 * input, the arrays come from the pool. */
void **map_copy(struct pool *p, const ProtobufCMessageDescriptor *entry_desc, size_t n,
		void *const *in, size_t *ret_n);
/* Whether every key=value of the selector is among the labels. */
bool labels_match(size_t nsel, void *const *selector, size_t nlabels, void *const *labels);

/* A protobuf-c message as JSON (field names as in the .proto; enums by name;
 * maps as objects; bytes as text when they are UTF-8, else as their
 * length), for verbose info. */
json_t *message_json(const ProtobufCMessage *m);
char *message_json_string(struct pool *p, const ProtobufCMessage *m);

/* ---- several helper calls, one completion ----------------------------------- */

#define FETCH_SLOTS 4

struct fetch;
typedef void (*fetch_fn)(struct fetch *f, void *arg);

struct fetch {
	ProtobufCMessage *reply[FETCH_SLOTS]; /* NULL when that call failed or was not made */
	struct crisp_error err[FETCH_SLOTS];  /* code CRISP_E_OK when it did not fail */
	const ProtobufCMessageDescriptor *desc[FETCH_SLOTS];
	unsigned pending;
	fetch_fn fn;
	void *arg;
};

/* Start collecting; fn runs once every call added before fetch_go() has
 * answered (and after fetch_go() was called). */
struct fetch *fetch_new(fetch_fn fn, void *arg);
void fetch_add(struct fetch *f, unsigned slot, enum helper_id h, uint16_t type,
	       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
	       unsigned timeout_ms);
void fetch_go(struct fetch *f);
void fetch_free(struct fetch *f);
/* The first failed slot's error among those given (-1 ends the list), or
 * NULL when they all answered. */
const struct crisp_error *fetch_error(const struct fetch *f, ...);

/* ---- ids that an RPC in flight may be about to own ------------------------- */

/* RunPodSandbox (sandbox ids) and CreateContainer (container ids) register
 * their new id before the first side effect and drop it after the last; the
 * reconciler never removes a netns or snapshot of an id in these sets. */
void inflight_add(const char *id);
void inflight_del(const char *id);
bool inflight_has(const char *id);
/* A counter bumped by every inflight_add: a reconcile pass that saw it move
 * during its lists does not act on them. */
uint64_t inflight_generation(void);
size_t inflight_count(void);

/* ---- shared by the CRI handlers ------------------------------------------- */

/* Host network: config.linux.security_context.namespace_options.network. */
bool pod_host_network(const Runtime__V1__PodSandboxConfig *config);

/* CRI messages built from runtimed's records; they point into the records
 * and into p. net may be NULL. */
Runtime__V1__PodSandboxStatus *pod_status_build(struct pool *p, const CrispIpc__SandboxInfo *sb,
						const CrispIpc__PodNetwork *net);
Runtime__V1__ContainerStatus *container_status_build(struct pool *p,
						     const CrispIpc__ContainerInfo *c);
/* The verbose info["info"] JSON of a sandbox or a container. */
char *pod_info_json(struct pool *p, const CrispIpc__SandboxInfo *sb);
char *container_info_json(struct pool *p, const CrispIpc__ContainerInfo *c);

/* A pod as the CRI shows it (frontend/cri_pod.c): runtimed's record, its
 * containers and netd's view of its network, fetched together. fn gets
 * either sb (and maybe cl, net) or err (NOT_FOUND for an unknown id); all
 * of them are freed after it returns. */
typedef void (*pod_view_fn)(const CrispIpc__SandboxInfo *sb, const CrispIpc__ContainerListReply *cl,
			    const CrispIpc__PodNetwork *net, const struct crisp_error *err,
			    void *arg);
void pod_view_get(const char *sandbox_id, pod_view_fn fn, void *arg);
Runtime__V1__ContainerStatus **container_statuses_build(struct pool *p,
							const CrispIpc__ContainerListReply *cl,
							size_t *ret_n);

/* The frontend's periodic and event-driven clean-up (frontend/reconcile.c):
 * called whenever a helper's channel comes up. */
void reconcile_helper_ready(enum helper_id h);
/* A CRI call's undo step failed: a pass a few seconds from now cleans up
 * what it left. */
void reconcile_soon(void);
void reconcile_init(struct event_base *base);

/* ---- the lists' copy (frontend/list_cache.c) -------------------------------- */

struct list_copy;
struct rpc;

/* One CRI list method (and its Stream* twin, which asks with the same
 * filter) over one of runtimed's lists. */
struct list_kind {
	const char *name; /* "containers", for logs */
	uint16_t ipc_type;
	/* runtimed's request for every record, brief */
	const ProtobufCMessage *(*request)(void);
	const ProtobufCMessageDescriptor *reply_desc;
	size_t (*count)(const ProtobufCMessage *reply);
	const ProtobufCMessage *(*record)(const ProtobufCMessage *reply, size_t i);
	/* Whether the call's filter, and what the frontend knows itself (a
	 * RunPodSandbox in flight), show the record. */
	bool (*shown)(const ProtobufCMessage *record, const struct rpc *rpc);
	/* The record as the CRI response's item, pointing into it and p. */
	ProtobufCMessage *(*item)(struct pool *p, const ProtobufCMessage *record);
	struct list_copy *copy; /* list_cache.c's */
};

/* Answer the list call rpc (cri_reply_list()): from the copy while runtimed has changed
 * nothing since it was made, else from runtimed's list (kept as the copy
 * when it can be trusted). */
void list_answer(struct list_kind *k, struct rpc *rpc);

/* GetContainerEvents' poll of runtimed (frontend/events.c). */
void events_init(struct event_base *base);

#endif
