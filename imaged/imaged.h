/* crisp-imaged: what its subsystems share. */
#ifndef CRISP_IMAGED_IMAGED_H
#define CRISP_IMAGED_IMAGED_H

#include <event2/event.h>

#include "common/config.h"
#include "common/sandbox.h"
#include "ipc/child.h"

struct store;
struct content_store;
struct registry;

struct imaged_ctx {
	struct event_base *base;
	const struct crisp_config *cfg;
	int root_fd; /* <root_dir>/imaged */
	int snap_fd; /* <root_dir>/imaged/snapshots */
	struct store *store;
	struct content_store *content;
	struct registry *registry;
	unsigned pulls;  /* in flight */
	bool gc_pending; /* a GC waits for the pulls to finish */
};
extern struct imaged_ctx imaged;

/* imaged/sandbox.c: capabilities and seccomp policy, fatal on failure.
 * enter: the read-only mount namespace and the privilege drop, before any
 * file of ours is opened (an fd opened earlier would still reach the host
 * through the old, writable mount); lock: seccomp, once set up. */
scmp_filter_ctx imaged_sandbox_enter(const struct crisp_config *cfg);
void imaged_sandbox_lock(scmp_filter_ctx filter);

/* imaged/pull.c: pull image (a reference) and answer d when done. Two pulls
 * of the same reference at once share one download. */
void pull_start(const char *image, const CrispIpc__RegistryAuth *auth,
		const struct child_deferred *d);

/* imaged/images.c: the requests imaged accepts from the frontend, and GC. */
extern const struct ipc_handler imaged_frontend_handlers[];
extern const size_t imaged_n_frontend_handlers;
void images_gc(void);

/* imaged/snapshot.c: the directories of snapshots: snapshots/<id>/fs. */
int snapshot_dir_create(int64_t id, struct crisp_error *err); /* returns an fd on fs */
int snapshot_dir_remove(int64_t id, struct crisp_error *err);
int snapshot_dir_open(int64_t id, struct crisp_error *err); /* O_PATH fd on fs */
/* A container's writable snapshot: upper and work directories over the
 * committed layer snapshots chain_ids (lowest first, n may be 0). Paths are
 * absolute, under <root_dir>/imaged/snapshots. */
struct snapshot_mount {
	char **lowerdirs; /* topmost first */
	size_t n_lowerdirs;
	char *upperdir, *workdir;
};
int snapshot_prepare(const char *container_id, char *const *chain_ids, size_t n,
		     struct snapshot_mount *ret, struct crisp_error *err);
/* CRISP_E_NOT_FOUND if the container has no snapshot. */
int snapshot_remove(const char *container_id, struct crisp_error *err);
void snapshot_mount_done(struct snapshot_mount *m);

/* At start: drop unpacks a crash interrupted and directories no snapshot
 * owns. */
void snapshot_recover(void);

#endif
