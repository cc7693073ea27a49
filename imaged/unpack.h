/* Applying one OCI/Docker image layer (a tar stream, uncompressed, gzip or
 * zstd) into an empty snapshot directory that becomes one overlayfs layer.
 *
 * A layer is the most hostile input crisp handles. Every path is resolved
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
 * against the snapshot's directory fd and every change is made with *at()
 * calls on (resolved parent fd, single name), so no entry can create or
 * modify anything outside that directory, whatever symlinks earlier entries
 * (or earlier layers applied to the same directory) planted.
 *
 * What is refused (CRISP_E_INVALID, the message names the entry):
 *   - names with a ".." component, hardlink targets with one, and entries
 *     that name the layer root as anything but a directory;
 *   - a hardlink whose target does not exist, is a directory or a
 *     whiteout (the directory starts empty, so what exists is what this
 *     layer made);
 *   - ".wh." alone, ".wh.." and ".wh..." (a whiteout leaving its directory),
 *     and a whiteout for a name this layer already created (as containerd
 *     does: its mknod fails with EEXIST);
 *   - an entry below a path that is not a directory, or below a symlink to
 *     a directory that does not exist;
 *   - anything libarchive cannot read as a tar stream, including truncated
 *     and broken compressed streams. libarchive does not check gzip's CRC:
 *     the blob's digest (before) and the DiffID (after) are what prove the
 *     bytes right.
 * Names cannot carry a NUL: libarchive's API ends them there.
 * Absolute names are accepted and land inside the root: "/etc/x" is
 * <root>/etc/x, as in Docker and containerd. Symlinks are stored as they
 * are; when a later entry goes through one it resolves inside the root.
 *
 * Whiteouts are written in overlayfs upperdir form: ".wh.<name>" becomes a
 * 0/0 character device <name>, ".wh..wh..opq" in D becomes the xattr
 * user.overlay.opaque="y" on D (the snapshot is mounted with "userxattr").
 * Other ".wh..wh." names are ignored. Xattrs from the tar are applied to
 * files and directories when they are security.capability or user.* (but
 * not user.overlay.*, which overlayfs would obey); all others are skipped
 * and counted.
 *
 * On failure the snapshot directory is left half-written: the caller must
 * discard all of it. Nothing outside it is ever touched. Nothing is synced
 * either: the caller syncs (syncfs) before it records the snapshot.
 *
 * Thread-safe, no global state, no logging. Run by crisp-unpack (unpack/),
 * a confined child of imaged per layer, never inside imaged (which calls
 * unpack_run(), imaged/unpack_client.c); also linked by the unit test and
 * the fuzz target. */
#ifndef CRISP_IMAGED_UNPACK_H
#define CRISP_IMAGED_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Limits; hitting one fails with CRISP_E_RESOURCE and a message naming it.
 * A zero field means the default below. */
struct unpack_limits {
	uint64_t max_entries;     /* tar headers (config images.max_layer_entries) */
	uint64_t max_path_len;    /* bytes of a name or link target
				     (config images.max_layer_path_len) */
	uint64_t max_total_bytes; /* bytes of the uncompressed tar stream, and
				     apparent bytes of the files written, each
				     (config images.max_layer_size_mb) */
	uint64_t max_xattr_bytes; /* names plus values of one entry's xattrs */
};

#define UNPACK_DEFAULT_MAX_ENTRIES 1000000
#define UNPACK_DEFAULT_MAX_PATH_LEN 4096
#define UNPACK_DEFAULT_MAX_TOTAL_BYTES (64ULL << 30)
#define UNPACK_DEFAULT_MAX_XATTR_BYTES (128 * 1024)

/* l = in with each unset (0) limit at its default; in may be NULL. imaged
 * fills the limits it sends crisp-unpack so, and unpack.c fills what it is
 * given so again. */
static inline void unpack_limits_fill(struct unpack_limits *l, const struct unpack_limits *in)
{
#define UNPACK_LIMIT_OR(f, def) l->f = in && in->f ? in->f : (def)
	UNPACK_LIMIT_OR(max_entries, UNPACK_DEFAULT_MAX_ENTRIES);
	UNPACK_LIMIT_OR(max_path_len, UNPACK_DEFAULT_MAX_PATH_LEN);
	UNPACK_LIMIT_OR(max_total_bytes, UNPACK_DEFAULT_MAX_TOTAL_BYTES);
	UNPACK_LIMIT_OR(max_xattr_bytes, UNPACK_DEFAULT_MAX_XATTR_BYTES);
#undef UNPACK_LIMIT_OR
}

/* The capabilities file extraction needs, and all imaged keeps: imaged's
 * permitted set caps what crisp-unpack can have, and crisp-unpack runs
 * with exactly these (imaged/sandbox.c, unpack/sandbox.c). */
/* clang-format off */
#define UNPACK_CAPS {                                                          \
	CAP_CHOWN,        /* files keep their owners from the layer */         \
	CAP_DAC_OVERRIDE, /* write into read-only directories of a layer */    \
	CAP_FOWNER,       /* set modes and times on files of other owners */   \
	CAP_FSETID,       /* keep setuid/setgid bits from the layer */         \
	CAP_MKNOD,        /* device nodes and whiteouts (0:0 char devices) */  \
	CAP_SETFCAP,      /* security.capability xattrs from the layer */      \
}
/* clang-format on */

#define UNPACK_DIFF_ID_MAX (7 + 64 + 1) /* "sha256:" hex NUL */

struct unpack_result {
	char diff_id[UNPACK_DIFF_ID_MAX]; /* sha256 of the uncompressed tar */
	uint64_t entries;                 /* tar headers read */
	uint64_t bytes;                   /* length of the uncompressed tar */
	uint64_t content_bytes;           /* apparent size of regular files written */
	uint64_t skipped_xattrs;          /* xattrs not applied (namespace or type) */
};

/* Read the layer blob from blob_fd (from its current offset to EOF; a pipe
 * will do) and apply it under root_dirfd, a directory fd (O_PATH is fine).
 * The caller compares res->diff_id with the image config's rootfs.diff_ids.
 * Errors: CRISP_E_INVALID for a bad or hostile layer, CRISP_E_RESOURCE for a
 * limit (or ENOSPC), CRISP_E_INTERNAL for a failure of the host. res is only
 * written on success. lim may be NULL for the defaults. */
int unpack_layer(int blob_fd, int root_dirfd, const struct unpack_limits *lim,
		 struct unpack_result *res, struct crisp_error *err);
/* The same, for a layer that goes on top of others: lowers are directory
 * fds of the layers below, topmost first. A directory this layer needs but
 * leaves out takes its owner and mode from the nearest lower layer that
 * has it. */
int unpack_layer_over(int blob_fd, int root_dirfd, const int *lowers, size_t n_lowers,
		      const struct unpack_limits *lim, struct unpack_result *res,
		      struct crisp_error *err);

#endif
