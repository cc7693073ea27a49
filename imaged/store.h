/* imaged's metadata store: images, their names and layers, and snapshots,
 * in SQLite (<root>/imaged/metadata.db), owned by one crisp-imaged at a
 * time. ListImages and ImageStatus are answered from here without touching
 * the network or the content store.
 *
 * Every call is one atomic operation (one transaction where it writes),
 * serialized by the store's own lock, so the store may be used from worker
 * threads; calls do blocking I/O (a write commits with an fsync), so keep
 * them off the event loop where it matters. */
#ifndef CRISP_IMAGED_STORE_H
#define CRISP_IMAGED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "imaged/content.h"

/* The schema version this build creates and understands. */
#define STORE_SCHEMA_VERSION 1
/* Longest image name (repo tag or repo digest) the store accepts. */
#define STORE_NAME_MAX 1024
/* Longest snapshot key. */
#define STORE_KEY_MAX 256

struct store;

struct store_layer {
	char *diff_id;     /* digest of the uncompressed tar (config rootfs.diff_ids) */
	char *chain_id;    /* computed by store_image_put (image_chain_id) */
	char *blob_digest; /* the (compressed) blob in the content store */
	char *media_type;
	int64_t size; /* of the blob */
};

struct store_image {
	char *id;              /* config digest */
	char *manifest_digest; /* the platform manifest the image came from */
	char *manifest;        /* its JSON bytes (NUL-terminated); put checks the digests */
	char *config;          /* the config JSON bytes, whose digest is id */
	bool pinned;           /* the pause image: kept even when a moved tag
				* leaves it without a name */
	/* Blobs the image holds besides manifest, config and layers, e.g. the
	 * index or manifest list the manifest was picked from. */
	char **extra_blobs;
	size_t n_extra_blobs;
	char **names; /* repo tags "docker.io/library/busybox:latest" and repo
		       * digests "docker.io/library/busybox@sha256:..." */
	size_t n_names;
	struct store_layer *layers; /* in config rootfs order, lowest first */
	size_t n_layers;

	/* Filled in by store_image_put from the above (ignored on input): */
	int64_t size;       /* manifest + config + layer blobs, in bytes */
	char *chain_id;     /* of the top layer; NULL for an image without layers */
	int64_t created_at; /* first stored, ns since the epoch */
	char *username;     /* config User when not numeric, else NULL */
	int64_t uid;        /* config User when numeric, else -1 */
	/* The config fields CRI needs, as an object: "user" (string),
	 * "env" "entrypoint" "cmd" "volumes" (arrays of strings),
	 * "working_dir" "stop_signal" (strings), "labels" (object of
	 * strings). Missing config fields are empty strings/arrays/objects. */
	json_t *spec;
};

/* Open (creating or migrating) the database at path. Only one process may
 * have it open: a second store_open fails with CRISP_E_UNAVAILABLE. */
struct store *store_open(const char *path, struct crisp_error *err);
void store_close(struct store *st);
/* The database's schema version (PRAGMA user_version). */
int store_schema_version(struct store *st);

/* Insert or update an image and, in the same transaction, its names
 * (adding to the names it has; a tag another image had moves to this one),
 * its layers and the blobs it holds. id and manifest_digest must be the
 * digests of config and manifest, and the config an OCI image config whose
 * rootfs.diff_ids are the layers' diff ids. Another image left without
 * any name by a moved tag, and not pinned, is removed in the same
 * transaction (its content then shows up in store_gc_candidates). */
int store_image_put(struct store *st, const struct store_image *img, struct crisp_error *err);

/* What store_image_get and store_image_list load besides the image row,
 * names and spec. */
#define STORE_LOAD_JSON 0x1   /* manifest and config */
#define STORE_LOAD_LAYERS 0x2 /* layers and extra_blobs */
#define STORE_LOAD_ALL (STORE_LOAD_JSON | STORE_LOAD_LAYERS)

/* Find an image the way CRI's ImageSpec names one: its id ("sha256:<hex>"),
 * a repo tag or repo digest (exactly as stored: normalize references
 * first), or a unique prefix of at least 12 hex digits of its id (with or
 * without "sha256:"). CRISP_E_NOT_FOUND, or CRISP_E_INVALID for an
 * ambiguous prefix. */
int store_image_get(struct store *st, const char *ref, unsigned load, struct store_image **ret,
		    struct crisp_error *err);
/* Calls fn for every image (in id order); non-zero from fn stops the walk and
 * becomes the return value. The image is only valid during the call. */
typedef int (*store_image_fn)(const struct store_image *img, void *arg);
int store_image_list(struct store *st, unsigned load, store_image_fn fn, void *arg,
		     struct crisp_error *err);
/* Remove one name; *ret_last_name (may be NULL) says whether its image has
 * no name left, and *ret_image_id (may be NULL) which image it was. */
int store_image_remove_name(struct store *st, const char *name, bool *ret_last_name,
			    char **ret_image_id, struct crisp_error *err);
/* Remove an image by id with its names, layers and blob references. */
int store_image_remove(struct store *st, const char *id, struct crisp_error *err);
/* Change the pinned flag. */
int store_image_set_pinned(struct store *st, const char *id, bool pinned, struct crisp_error *err);
void store_image_free(struct store_image *img);

/* Whether any image holds the blob. */
int store_blob_referenced(struct store *st, const char *digest, bool *ret, struct crisp_error *err);

/* Snapshots: committed ones hold an unpacked layer chain (key = chain id),
 * active ones are writable (a container's, or a layer being unpacked). Each
 * has a numeric id that never gets reused, fit for a directory name. */
enum store_snapshot_kind {
	STORE_SNAPSHOT_COMMITTED,
	STORE_SNAPSHOT_ACTIVE,
};

struct store_snapshot {
	int64_t id;
	char *key;
	char *parent; /* key of the committed parent, NULL for a base layer */
	enum store_snapshot_kind kind;
	int64_t created_at; /* ns since the epoch */
	int64_t usage_bytes;
	int64_t usage_inodes;
};

/* A committed key must be a digest (a chain id); an active key is 1 to
 * STORE_KEY_MAX characters of [A-Za-z0-9_.:-]. The parent must be a
 * committed snapshot. CRISP_E_EXISTS if the key is taken. */
int store_snapshot_put(struct store *st, const char *key, const char *parent,
		       enum store_snapshot_kind kind, int64_t *ret_id, struct crisp_error *err);
/* Turn an active snapshot (an unpacked layer) into the committed one named
 * key, keeping its id. */
int store_snapshot_commit(struct store *st, const char *active_key, const char *key,
			  int64_t usage_bytes, int64_t usage_inodes, struct crisp_error *err);
int store_snapshot_set_usage(struct store *st, const char *key, int64_t usage_bytes,
			     int64_t usage_inodes, struct crisp_error *err);
int store_snapshot_get(struct store *st, const char *key, struct store_snapshot **ret,
		       struct crisp_error *err);
typedef int (*store_snapshot_fn)(const struct store_snapshot *snap, void *arg);
int store_snapshot_list(struct store *st, store_snapshot_fn fn, void *arg, struct crisp_error *err);
/* CRISP_E_PRECONDITION while other snapshots have it as parent. */
int store_snapshot_remove(struct store *st, const char *key, struct crisp_error *err);
/* Remove many in one transaction (one sync, not one per snapshot), in the
 * order given (children first, as store_gc_candidates lists them); one
 * that is missing or still a parent is skipped. removed[i] says whether
 * keys[i] was removed (all false on failure). */
int store_snapshots_remove(struct store *st, char *const *keys, size_t n, bool *removed,
			   struct crisp_error *err);
void store_snapshot_free(struct store_snapshot *snap);

/* Garbage: every blob in cs that no image holds, then every committed
 * snapshot that no image's layers and no active snapshot need (directly or
 * as an ancestor), children before their parents, so removing them in the
 * order given always works. Content an in-flight pull has stored but not yet
 * recorded with store_image_put also shows up here: the caller must leave
 * what running pulls hold. Active snapshots are never candidates. fn's
 * non-zero return stops the walk and becomes the return value. */
enum store_gc_kind {
	STORE_GC_BLOB,
	STORE_GC_SNAPSHOT,
};
typedef int (*store_gc_fn)(enum store_gc_kind kind, const char *key, int64_t snapshot_id,
			   void *arg);
int store_gc_candidates(struct store *st, struct content_store *cs, store_gc_fn fn, void *arg,
			struct crisp_error *err);

#endif
