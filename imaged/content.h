/* imaged's content store: blobs addressed by their digest under imaged's
 * root directory.
 *
 *	blobs/sha256/<64 hex>    complete, verified blobs, read-only (0400)
 *	blobs/sha512/<128 hex>
 *	ingest/<hex>             downloads in progress (0600), named after the
 *	                         digest they must reach so a retried download
 *	                         finds its partial file
 *
 * The one invariant: a file appears in blobs/ only by rename(2) after its
 * size and digest were verified and its data fsync'ed, so a crash at any
 * point leaves nothing corrupt under blobs/ (at most a partial ingest file,
 * which content_ingest_gc() removes or a resumed download reuses).
 *
 * Digests come from registries and from the frontend: every function checks
 * one (digest_valid, reference.h) before it becomes a file name, so no "../" or
 * odd name reaches the filesystem. Every path is resolved relative to the
 * store's directory fds, never through a path string.
 *
 * Thread safety: the store may be used from several threads at once (the
 * event loop and workers); one ingest handle belongs to one thread at a time.
 * These calls do blocking file I/O (commit fsyncs, a resume re-reads the
 * partial file): run long ones off the event loop. */
#ifndef CRISP_IMAGED_CONTENT_H
#define CRISP_IMAGED_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* "sha512:" + 128 hex + NUL */
#define CONTENT_DIGEST_MAX (7 + 128 + 1)

struct content_store;
struct content_ingest;

/* Open (creating with mode 0700 what is missing) blobs/ and ingest/ under
 * root_dirfd, which the caller keeps owning. */
struct content_store *content_open(int root_dirfd, struct crisp_error *err);
void content_close(struct content_store *cs);

/* Start writing the blob `digest`, of expected_size bytes (-1: unknown).
 * With resume, a partial ingest file left by content_ingest_abort_keep() or
 * a crash is kept: its bytes are re-hashed and writing continues at
 * content_ingest_offset() (a partial file longer than expected_size is
 * discarded). Without resume any old partial file is truncated.
 * Errors: CRISP_E_INVALID (bad digest or size), CRISP_E_EXISTS (the blob is
 * already stored: nothing to do), CRISP_E_PRECONDITION (another ingest of the
 * same digest is in progress in this process). */
struct content_ingest *content_ingest_start(struct content_store *cs, const char *digest,
					    int64_t expected_size, bool resume,
					    struct crisp_error *err);
/* Bytes already written (and hashed). */
int64_t content_ingest_offset(const struct content_ingest *ing);
const char *content_ingest_digest(const struct content_ingest *ing);
/* Append n bytes. Writing past expected_size is refused (CRISP_E_INVALID)
 * and poisons the ingest: only abort remains. A full disk is
 * CRISP_E_RESOURCE. */
int content_ingest_write(struct content_ingest *ing, const void *buf, size_t n,
			 struct crisp_error *err);
/* Verify size and digest, fsync, rename into blobs/, fsync the directory.
 * A size or digest mismatch is CRISP_E_INVALID and removes the ingest file.
 * Always consumes ing, whatever the outcome. */
int content_ingest_commit(struct content_ingest *ing, struct crisp_error *err);
/* Give up: remove the partial file. Takes NULL. */
void content_ingest_abort(struct content_ingest *ing);
/* Give up for now but keep the partial file for a resumed download (unless
 * the ingest was poisoned by an oversize write). Takes NULL. */
void content_ingest_abort_keep(struct content_ingest *ing);

/* Store a blob already in memory (manifests, configs) in one go. Storing a
 * blob that is already present is a success. */
int content_put(struct content_store *cs, const char *digest, const void *buf, size_t len,
		struct crisp_error *err);

/* Check that buf hashes to digest (a blob held in memory, such as a
 * manifest, before it is used): CRISP_E_INVALID "... (corrupt or tampered
 * download)" if not. */
int content_digest_check(const char *digest, const void *buf, size_t len, struct crisp_error *err);

/* Whether a blob is stored; its size in *size if size is not NULL. */
bool content_exists(struct content_store *cs, const char *digest, int64_t *size);
/* An O_RDONLY|O_CLOEXEC fd on the blob, or -errno (-EINVAL for a bad digest,
 * -ENOENT if not stored). */
int content_open_blob(struct content_store *cs, const char *digest);
/* Read a whole blob of at most max bytes into a NUL-terminated buffer (for
 * manifests and configs). CRISP_E_RESOURCE if it is larger than max. */
int content_read_blob(struct content_store *cs, const char *digest, size_t max, char **ret_buf,
		      size_t *ret_len, struct crisp_error *err);
/* CRISP_E_NOT_FOUND if it was not stored. Deletes on the spot: a large
 * blob takes a while, see content_trash for the event loop. */
int content_delete(struct content_store *cs, const char *digest, struct crisp_error *err);
/* Remove a blob by renaming it into imaged's trash (imaged/trash.h), one
 * quick step after which it is not stored any more; call trash_empty()
 * after. CRISP_E_NOT_FOUND if it was not stored; another error if it could
 * not be renamed (the blob then stays). */
int content_trash(struct content_store *cs, const char *digest, struct crisp_error *err);

/* Call fn for every stored blob (for garbage collection); fn returning
 * non-zero stops the walk and becomes the return value. Files with names
 * that are not digests are skipped. */
typedef int (*content_list_fn)(const char *digest, int64_t size, void *arg);
int content_list(struct content_store *cs, content_list_fn fn, void *arg, struct crisp_error *err);

/* Disk space (allocated blocks) and inodes used by blobs and ingests. */
int content_usage(struct content_store *cs, uint64_t *ret_bytes, uint64_t *ret_inodes,
		  struct crisp_error *err);

/* Remove ingest files not modified for max_age_sec seconds and not in use
 * by a running ingest, and anything in ingest/ that is not an ingest file
 * (files go to the trash when one is open: call trash_empty() after).
 * Returns how many were removed, or -1. */
int content_ingest_gc(struct content_store *cs, int64_t max_age_sec, struct crisp_error *err);

#endif
