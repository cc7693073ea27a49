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
	int root_fd;   /* <root_dir>/imaged */
	int snap_fd;   /* <root_dir>/imaged/snapshots */
	int import_fd; /* <root_dir>/imaged/import: root's spool of archives */
	struct store *store;
	struct content_store *content;
	struct registry *registry;
	/* How container snapshots are made: SNAPSHOTTER_OVERLAYFS or
	 * SNAPSHOTTER_COPY, images.snapshotter with "auto" resolved at start. */
	enum snapshotter snapshotter;
	unsigned pulls;  /* pulls and imports in flight */
	bool gc_pending; /* a GC waits for the pulls to finish */
};
extern struct imaged_ctx imaged;

/* imaged/sandbox.c: capabilities and seccomp policy, fatal on failure.
 * enter: the read-only mount namespace and the privilege drop, before any
 * file of ours is opened (an fd opened earlier would still reach the host
 * through the old, writable mount); lock: seccomp, once set up. */
scmp_filter_ctx imaged_sandbox_enter(const struct crisp_config *cfg);
void imaged_sandbox_lock(scmp_filter_ctx filter);

/* imaged/fetch_client.c: open crisp-fetch (helper_dir/crisp-fetch) for
 * executing it later, at start, before the sandbox; fatal on failure. */
void fetch_program_open(const struct crisp_config *cfg);
int fetch_program_fd(void); /* for imaged/sandbox.c's execveat rule */

/* imaged/unpack_client.c: the same for crisp-unpack (helper_dir/crisp-unpack),
 * and unpack_layer_over() (imaged/unpack.h) in a crisp-unpack child: same
 * arguments, same errors, plus CRISP_E_INTERNAL when the child fails or
 * answers what cannot be. Blocks: for worker threads. */
void unpack_program_open(const struct crisp_config *cfg);
int unpack_program_fd(void);
struct unpack_limits;
struct unpack_result;
int unpack_run(int blob_fd, int root_fd, const int *lowers, size_t n_lowers,
	       const struct unpack_limits *lim, struct unpack_result *res, struct crisp_error *err);

/* Import archives, read by crisp-unpack's archive mode (imaged links no
 * tar reader). archive_reader_open() starts a child reading fd from its
 * first byte (reading number pass, 1 or 2); archive_reader_next() gives the
 * next entry (1), the end (0) or a failure (-1, err set: the archive's
 * fault CRISP_E_INVALID, the child's CRISP_E_INTERNAL); a regular entry's
 * size bytes then come from archive_reader_data() in chunks (1), until 0;
 * what is not read is skipped. More than max_entries entries, an entry
 * larger than max_size, and anything else outside the protocol fail the
 * reading. archive_reader_close() reaps the child (killed unless it sent
 * all) and returns -1 with err set if it misbehaved at the end; err may
 * hold an earlier error, which it keeps. Entry strings live until the next
 * call. Blocking: worker threads only. */
enum archive_reader_type {
	ARCHIVE_READER_OTHER,
	ARCHIVE_READER_REGULAR,
	ARCHIVE_READER_DIRECTORY,
	ARCHIVE_READER_SYMLINK,
	ARCHIVE_READER_HARDLINK,
};
struct archive_reader_entry {
	enum archive_reader_type type;
	const char *name; /* NULL: none */
	const char *link; /* NULL: none (SYMLINK's target, HARDLINK's entry) */
	uint64_t size;
};
struct archive_reader;
struct archive_reader *archive_reader_open(int fd, unsigned pass, uint64_t max_entries,
					   uint64_t max_size, struct crisp_error *err);
int archive_reader_next(struct archive_reader *r, struct archive_reader_entry *e,
			struct crisp_error *err);
int archive_reader_data(struct archive_reader *r, const void **p, size_t *n,
			struct crisp_error *err);
int archive_reader_close(struct archive_reader *r, struct crisp_error *err);

/* imaged/pull.c: pull image (a reference) and answer d when done. Two pulls
 * of the same reference at once share one download. */
void pull_start(const char *image, const CrispIpc__RegistryAuth *auth,
		const struct child_deferred *d);

/* Unpack one layer blob over the committed snapshots below (chain ids,
 * lowest first) into the committed snapshot chain_id, checking its DiffID;
 * for worker threads. An existing chain_id committed meanwhile is fine. */
struct unpack_result;
int layer_unpack_commit(const char *blob_digest, const char *diff_id, const char *chain_id,
			const char *const *below, size_t n_below, struct unpack_result *res,
			struct crisp_error *err);

/* imaged/import.c: import the archive `file` of the spool directory
 * (import_fd) under names (none: the archive's), answering d with an
 * ImageImportReply. The file is removed whatever happens. */
void import_start(const char *file, char *const *names, size_t n_names,
		  const struct child_deferred *d);
/* Spool file names: prefix, 16 to 64 of [A-Za-z0-9], suffix (crisp-import
 * makes them; the frontend checks the same). */
#define IMPORT_FILE_PREFIX "crisp-import-"
#define IMPORT_FILE_SUFFIX ".tar"
bool import_file_name_valid(const char *s);
/* At start: remove spool files nobody asked for within an hour. */
void import_spool_gc(void);
/* Answer an import with the images of ids (imaged/images.c). */
void images_reply_imported(const struct child_deferred *d, char *const *ids, size_t n);

/* imaged/images.c: the requests imaged accepts from the frontend, and GC. */
extern const struct ipc_handler imaged_frontend_handlers[];
extern const size_t imaged_n_frontend_handlers;
void images_gc(void);

/* imaged/snapshot.c: the directories of snapshots: snapshots/<id>/fs. */
int snapshot_dir_create(int64_t id, struct crisp_error *err); /* returns an fd on fs */
/* Delete the directory of snapshot id on the spot (for worker threads and
 * directories just made); a missing one is fine. */
int snapshot_dir_remove(int64_t id, struct crisp_error *err);
/* Take it out of snapshots/ into the trash (imaged/trash.h), for the event
 * loop: call trash_empty() after. Where it cannot be renamed it is deleted
 * in place. A missing one is fine. */
int snapshot_dir_trash(int64_t id, struct crisp_error *err);
/* Remove everything below dirfd (not dirfd itself), depth levels already
 * down; consumes dirfd; 0 or -errno of a failure (it goes on after one).
 * Read-only modes in layers do not stop it; symlinks are never followed
 * and mount points never entered (imaged/trash.c). */
int snapshot_clear_dir(int dirfd, int depth);
int snapshot_dir_open(int64_t id, struct crisp_error *err); /* O_PATH fd on fs */
/* A container's writable snapshot: upper and work directories over the
 * committed layer snapshots chain_ids (lowest first, n may be 0). Paths are
 * absolute, under <root_dir>/imaged/snapshots. */
struct snapshot_mount {
	bool bind;        /* copy snapshotter: upperdir is the whole rootfs, to
			   * bind-mount; no lower or work dirs */
	char **lowerdirs; /* topmost first */
	size_t n_lowerdirs;
	char *upperdir, *workdir;
};
int snapshot_prepare(const char *container_id, char *const *chain_ids, size_t n,
		     struct snapshot_mount *ret, struct crisp_error *err);
/* CRISP_E_NOT_FOUND if the container has no snapshot. */
int snapshot_remove(const char *container_id, struct crisp_error *err);
void snapshot_mount_done(struct snapshot_mount *m);

/* imaged/snapshot_copy.c: merge the layer directories (lowest first, in
 * the overlayfs upperdir form unpack writes) into the empty directory dst,
 * as overlayfs would show them, keeping owners, modes, xattrs, times,
 * hardlinks and special files. For a worker thread. */
int snapshot_copy_layers(const int *layers, size_t n, int dst, struct crisp_error *err);
/* Whether an overlayfs with userxattr can be mounted on directories in
 * dir (a probe in a private mount namespace of a child process; needs the
 * privileges imaged has before its sandbox). */
bool snapshot_overlay_works(const char *dir);

/* At start: drop unpacks a crash interrupted and directories no snapshot
 * owns (into the trash, emptied once the sandbox is locked). */
void snapshot_recover(void);

#endif
