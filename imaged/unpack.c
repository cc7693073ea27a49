/* imaged/unpack.c: one layer's tar stream into one snapshot directory.
 * unpack.h says what is accepted and what is refused.
 *
 * One pass, bounded memory:
 *
 *   blob_fd --read()--> libarchive reader A: gzip/zstd filters (or none),
 *                       "raw" format, so it only decompresses
 *           --each decompressed block--> SHA-256 (the DiffID) and a count
 *           --the same block, via a read callback--> libarchive reader B: tar
 *
 * Reader B has no skip callback, so every byte it passes over (data of
 * entries, padding) goes through the hash too; after the end-of-archive
 * marker the rest of the stream is drained into it, because the DiffID
 * covers the whole uncompressed blob.
 *
 * The filesystem side never hands a path with a '/' to a plain syscall: a
 * parent directory is opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) against the root fd, and the
 * entry is made with an *at() call on (that fd, one name that is not "." or
 * ".."), never following a symlink in that last place. Whatever symlinks
 * the layer planted, the kernel keeps the resolution inside the root. */
#include "autoconfig.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "imaged/unpack.h"
#include "imaged/digest.h"

#define SRC_BUF_SIZE (64 * 1024)
#define RM_MAX_DEPTH 128   /* directory levels removed when an entry replaces a tree */
#define OPENAT2_RETRIES 16 /* EAGAIN: a rename raced the resolution */
#define NAME_SHOWN 200     /* bytes of an entry's name quoted in messages */
#define MAX_XATTRS 128     /* of one entry; security.capability and a few user.* */
#define WHITEOUT ".wh."    /* OCI image-spec layer.md */
#define WHITEOUT_META ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* overlayfs reads trusted.overlay.* by default, and only CAP_SYS_ADMIN may
 * write trusted.* xattrs: imaged does not have it (nor wants it: it would
 * undo most of the sandbox). Snapshots are therefore mounted with
 * overlayfs's "userxattr" option (Linux 5.11+), under which the kernel reads
 * user.overlay.* instead. That is also why no user.overlay.* xattr of a
 * layer may ever be applied: overlayfs would obey it (redirects, origins,
 * metacopy), so only whiteout markers produce one. */
#define OPAQUE_XATTR "user.overlay.opaque"
#define OVERLAY_XATTR_PREFIX "user.overlay."

/* A directory's times are set after the whole layer: creating its children
 * changes them. */
struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct meta {
	uid_t uid;
	gid_t gid;
	mode_t perm;
	struct timespec ts[2]; /* atime, mtime */
};

struct unpacker {
	int blob_fd;
	int root;
	const int *lowers; /* the layers below, topmost first */
	size_t n_lowers;
	struct unpack_limits lim;
	struct archive *raw;  /* reader A: decompression only */
	struct archive *tar;  /* reader B: tar, fed by reader A */
	struct digest_ctx md; /* the DiffID: SHA-256 of the uncompressed tar */
	/* Set when the source fails; reader B's errors then report it. */
	bool src_failed;
	struct crisp_error src_err;
	uint64_t entries, stream_bytes, content_bytes, skipped_xattrs;
	struct dir_time *dirs;
	size_t ndirs, dirs_cap;
	char name[NAME_SHOWN + 4]; /* current entry, printable, for messages */
	unsigned char inbuf[SRC_BUF_SIZE];
};

static void unpacker_free(struct unpacker *u)
{
	if (!u)
		return;
	/* reader B's callbacks pull from reader A: B goes first */
	if (u->tar)
		archive_read_free(u->tar);
	if (u->raw)
		archive_read_free(u->raw);
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	free(u);
}

static void unpacker_freep(struct unpacker **u)
{
	unpacker_free(*u);
}

/* ---- messages ------------------------------------------------------------------ */

/* Names come from the layer: control characters would forge log lines. */
static void printable(char *dst, size_t n, const char *s)
{
	size_t i = 0;

	for (; *s && i + 4 < n && i < NAME_SHOWN; s++)
		dst[i++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	if (*s)
		memcpy(dst + i, "...", 4);
	else
		dst[i] = '\0';
}

static enum crisp_errcode errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EMLINK:
		return CRISP_E_RESOURCE;
	case ENAMETOOLONG: /* a component over NAME_MAX */
	case ELOOP:        /* a symlink chain too long */
	case ENOTDIR:      /* a file where the layer wants a directory */
		return CRISP_E_INVALID;
	default:
		return CRISP_E_INTERNAL;
	}
}

/* "layer entry '<name>': <what>[: strerror]" */
static int entry_err(struct unpacker *u, struct crisp_error *err, enum crisp_errcode code,
		     int errnum, const char *fmt, ...) _printf_(5, 6);
static int entry_err(struct unpacker *u, struct crisp_error *err, enum crisp_errcode code,
		     int errnum, const char *fmt, ...)
{
	char what[CRISP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (errnum)
		return err_set_errno(err, code, errnum, "layer entry '%s': %s", u->name, what);
	return err_set(err, code, "layer entry '%s': %s", u->name, what);
}

/* A failure of the host while making an entry. */
static int entry_errno(struct unpacker *u, struct crisp_error *err, int e, const char *what)
{
	return entry_err(u, err, errno_code(e), e, "%s", what);
}

/* A libarchive failure of reader B: the source's own error if it failed. */
static int tar_err(struct unpacker *u, struct crisp_error *err, bool in_entry)
{
	const char *why = archive_error_string(u->tar);

	if (u->src_failed) {
		*err = u->src_err;
		return -1;
	}
	if (in_entry)
		return entry_err(u, err, CRISP_E_INVALID, 0, "%s", why ? why : "unreadable data");
	return err_set(err, CRISP_E_INVALID, "the layer is not a valid tar archive: %s",
		       why ? why : "unreadable");
}

/* ---- the source: blob -> decompression -> hash -> tar reader ------------------- */

static la_ssize_t raw_read(struct archive *a, void *arg, const void **buf)
{
	struct unpacker *u = arg;
	ssize_t n;

	do
		n = read(u->blob_fd, u->inbuf, sizeof(u->inbuf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		err_set_errno(&u->src_err, CRISP_E_INTERNAL, errno, "reading the layer blob");
		u->src_failed = true;
		archive_set_error(a, errno, "read error");
		return -1;
	}
	*buf = u->inbuf;
	return n;
}

/* The next decompressed block, hashed and counted: its length, 0 at the end
 * of the stream, -1 when it failed (u->src_err says why). */
static ssize_t source_next(struct unpacker *u, const void **buf)
{
	size_t len = 0;
	la_int64_t off;
	int r;

	if (u->src_failed)
		return -1;
	do
		r = archive_read_data_block(u->raw, buf, &len, &off);
	while (r == ARCHIVE_OK && len == 0);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK) {
		if (!u->src_failed)
			err_set(&u->src_err, CRISP_E_INVALID,
				"the layer blob does not decompress: %s",
				archive_error_string(u->raw) ? archive_error_string(u->raw)
							     : "corrupt data");
		u->src_failed = true;
		return -1;
	}
	/* This is what stops a decompression bomb. */
	if (len > u->lim.max_total_bytes - u->stream_bytes) {
		err_set(&u->src_err, CRISP_E_RESOURCE,
			"the layer is larger than %llu bytes uncompressed (limit "
			"images.max_layer_size_mb)",
			(unsigned long long)u->lim.max_total_bytes);
		u->src_failed = true;
		return -1;
	}
	u->stream_bytes += len;
	digest_update(&u->md, *buf, len);
	return (ssize_t)len;
}

static la_ssize_t tar_read(struct archive *a, void *arg, const void **buf)
{
	struct unpacker *u = arg;
	ssize_t n = source_next(u, buf);

	if (n < 0)
		archive_set_error(a, EIO, "%s", u->src_err.msg);
	return n;
}

static int source_open(struct unpacker *u, struct crisp_error *err)
{
	struct archive_entry *e;

	digest_init(&u->md, DIGEST_SHA256);
	u->raw = archive_read_new();
	u->tar = archive_read_new();
	if (!u->raw || !u->tar)
		return err_set(err, CRISP_E_INTERNAL, "cannot set up libarchive");
	/* Only the compressions OCI layers use, and only in-process: ARCHIVE_WARN
	 * here would mean libarchive runs an external program, which
	 * crisp-unpack's seccomp filter forbids. No format but "raw": reader A decompresses. */
	if (archive_read_support_filter_gzip(u->raw) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(u->raw) != ARCHIVE_OK ||
	    archive_read_support_format_raw(u->raw) != ARCHIVE_OK ||
	    archive_read_support_format_tar(u->tar) != ARCHIVE_OK)
		return err_set(err, CRISP_E_INTERNAL,
			       "libarchive lacks built-in gzip, zstd or tar");
	if (archive_read_open(u->raw, u, NULL, raw_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(u->raw, &e) != ARCHIVE_OK) {
		if (u->src_failed) {
			*err = u->src_err;
			return -1;
		}
		return err_set(err, CRISP_E_INVALID, "the layer blob is empty or unreadable: %s",
			       archive_error_string(u->raw) ? archive_error_string(u->raw) : "");
	}
	/* Reader B has no filters: a compressed tar inside the tar stream stays
	 * data, as it would for any other runtime. */
	if (archive_read_open(u->tar, u, NULL, tar_read, NULL) != ARCHIVE_OK)
		return tar_err(u, err, false);
	return 0;
}

/* The bytes after the tar's end marker belong to the DiffID too. */
static int source_drain(struct unpacker *u, struct crisp_error *err)
{
	const void *buf;
	ssize_t n;

	while ((n = source_next(u, &buf)) > 0)
		;
	if (n < 0) {
		*err = u->src_err;
		return -1;
	}
	return 0;
}

/* ---- paths ---------------------------------------------------------------------- */

/* Normalise a tar name: drop leading "/" and "./", empty and "." components
 * and trailing slashes. -EINVAL when a component is "..": no layer needs
 * one, and refusing it outright is easier to audit than resolving it inside
 * the root. *ret is "" for the root itself. */
static int path_clean(const char *name, char **ret)
{
	char *out = xmalloc(strlen(name) + 1), *o = out;
	const char *p = name;

	while (*p) {
		const char *c = p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - c);
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			free(out);
			return -EINVAL;
		}
		if (len && !(len == 1 && c[0] == '.')) {
			if (o != out)
				*o++ = '/';
			memcpy(o, c, len);
			o += len;
		}
		while (*p == '/')
			p++;
	}
	*o = '\0';
	*ret = out;
	return 0;
}

/* Split a cleaned, non-empty path into a new parent string ("" for the
 * root) and a pointer to its last component. */
static char *path_split(const char *path, const char **ret_base)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	char *parent = xmalloc(n + 1);

	memcpy(parent, path, n);
	parent[n] = '\0';
	*ret_base = slash ? slash + 1 : path;
	return parent;
}

/* openat2 inside the layer root: absolute symlinks and ".." stop at the
 * root, /proc magic links and mount crossings are refused. -errno. */
static int open_in_root(struct unpacker *u, const char *path, int flags, int *ret_fd)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};

	for (int tries = 0;; tries++) {
		int fd = (int)syscall(SYS_openat2, u->root, *path ? path : ".", &how, sizeof(how));
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != EAGAIN || tries >= OPENAT2_RETRIES)
			return -errno;
	}
}

/* Where the i-th component of a cleaned path ends (i >= 1). */
static char *prefix_end(char *path, size_t i)
{
	char *p = path;

	while (*p && (*p != '/' || --i))
		p++;
	return p;
}

/* The attributes a directory the layer leaves out must keep: those of the
 * same directory in the nearest lower layer that has the path, so that the
 * merged view does not turn, say, a 0700 /root into a 0755 one (overlayfs
 * takes a merged directory's attributes from the upper layer). Lookups stay
 * inside each lower layer (RESOLVE_IN_ROOT). Nothing found: 0755 root. */
static void lower_attrs(struct unpacker *u, const char *path, struct stat *ret)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };

	memset(ret, 0, sizeof(*ret));
	ret->st_mode = S_IFDIR | 0755;
	for (size_t i = 0; i < u->n_lowers; i++) {
		struct stat st;
		int fd = (int)syscall(SYS_openat2, u->lowers[i], path, &how, sizeof(how));

		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
			*ret = st;
		close(fd);
		/* Whatever the nearest layer has there (a directory, or a file
		 * or whiteout hiding those below) decides. */
		return;
	}
}

/* Create the missing directory `name` in dfd (0755) and open it. `shown` is
 * its path in the layer. */
static int make_parent(struct unpacker *u, int dfd, const char *name, const char *shown, bool first,
		       int *ret_fd, struct crisp_error *err)
{
	int fd;

	if (mkdirat(dfd, name, 0700) < 0) {
		/* The first missing one exists, yet did not resolve: a symlink to
		 * nowhere. Creating its target is more than any layer needs. */
		if (errno == EEXIST && first)
			return entry_err(u, err, CRISP_E_INVALID, 0,
					 "'%.200s' is a symbolic link to a directory that does "
					 "not exist",
					 shown);
		return entry_errno(u, err, errno, "creating a parent directory");
	}
	struct stat lower;
	lower_attrs(u, shown, &lower);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* chown first: it clears setgid, which chmod then restores */
	if (fd < 0 || fchown(fd, lower.st_uid, lower.st_gid) < 0 ||
	    fchmod(fd, lower.st_mode & 07777) < 0) {
		int e = errno;
		safe_close(fd);
		return entry_errno(u, err, e, "creating a parent directory");
	}
	*ret_fd = fd;
	return 0;
}

/* Open (O_PATH) the directory an entry goes into, creating what is missing
 * (root-owned 0755, as containerd makes missing parents). The longest prefix
 * of dir that exists is found by bisection, each try an in-root openat2
 * (whatever resolves, all its prefixes do), so a deep path costs
 * O(n log n) lookups, not O(n^2). The first missing component is created
 * in that prefix's in-root resolution; the rest in the new, empty
 * directories, where no symlink can be. */
static int open_parent(struct unpacker *u, const char *dir, int *ret_fd, struct crisp_error *err)
{
	_cleanup_free_ char *prefix = NULL;
	_cleanup_close_ int cur = -1;
	size_t lo = 0, hi, n = 1;
	char *c;
	int r;

	r = open_in_root(u, dir, O_PATH | O_DIRECTORY, ret_fd);
	if (r != -ENOENT)
		return r < 0 ? entry_err(u, err, errno_code(-r), -r,
					 "opening its directory '%.200s'", dir)
			     : 0;
	prefix = xstrdup(dir);
	for (c = prefix; *c; c++)
		n += *c == '/';
	/* prefix(0) is the root and resolves, prefix(n) does not */
	r = open_in_root(u, "", O_PATH | O_DIRECTORY, &cur);
	for (hi = n; r == 0 && hi - lo > 1;) {
		size_t mid = lo + (hi - lo) / 2;
		char *end = prefix_end(prefix, mid);
		char saved = *end;
		int fd = -1;

		*end = '\0';
		r = open_in_root(u, prefix, O_PATH | O_DIRECTORY, &fd);
		*end = saved;
		if (r == 0) {
			safe_close(cur);
			cur = fd;
			lo = mid;
		} else if (r == -ENOENT) {
			hi = mid;
			r = 0;
		}
	}
	if (r < 0)
		return entry_err(u, err, errno_code(-r), -r, "opening its directory '%.200s'", dir);
	for (size_t i = lo; i < n; i++) {
		char *name = i ? prefix_end(prefix, i) + 1 : prefix,
		     *end = prefix_end(prefix, i + 1);
		char saved = *end;
		int next = -1;

		*end = '\0';
		r = make_parent(u, cur, name, prefix, i == lo, &next, err);
		*end = saved;
		if (r < 0)
			return -1;
		safe_close(cur);
		cur = next;
	}
	*ret_fd = TAKE_FD(cur);
	return 0;
}

/* containerd's os.RemoveAll, through fds: the tree under `name` in pfd.
 * The depth bound keeps the number of open fds small. -errno. */
static int rm_rf(int pfd, const char *name, unsigned depth)
{
	if (depth >= RM_MAX_DEPTH)
		return -ELOOP;
	/* A directory read while it is emptied may not list everything. */
	for (int pass = 0; pass < 4; pass++) {
		struct dirent *de;
		DIR *d;
		int fd, r = 0;

		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		d = fdopendir(fd);
		if (!d) {
			r = -errno;
			close(fd);
			return r;
		}
		while (r == 0 && (errno = 0, de = readdir(d))) {
			struct stat st;
			bool isdir = de->d_type == DT_DIR;

			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			if (de->d_type == DT_UNKNOWN)
				isdir = fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					S_ISDIR(st.st_mode);
			if (isdir)
				r = rm_rf(fd, de->d_name, depth + 1);
			else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
				r = -errno;
		}
		if (r == 0 && errno)
			r = -errno;
		closedir(d);
		if (r < 0)
			return r;
		if (unlinkat(pfd, name, AT_REMOVEDIR) == 0)
			return 0;
		if (errno != ENOTEMPTY)
			return -errno;
	}
	return -ENOTEMPTY;
}

/* Make room for an entry: what this layer already put under the name goes,
 * unless both are directories, which merge (only attributes change), as in
 * containerd. 1 when a directory is kept, 0 when the name is free. */
static int make_room(struct unpacker *u, int pfd, const char *base, bool is_dir,
		     struct crisp_error *err)
{
	struct stat st;
	int r;

	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_errno(u, err, errno, "looking at what exists there");
	}
	if (S_ISDIR(st.st_mode) && is_dir)
		return 1;
	if (S_ISDIR(st.st_mode))
		r = rm_rf(pfd, base, 0);
	else
		r = unlinkat(pfd, base, 0) < 0 ? -errno : 0;
	if (r == -ELOOP)
		return entry_err(u, err, CRISP_E_RESOURCE, 0,
				 "the tree it replaces is more than %d levels deep", RM_MAX_DEPTH);
	if (r < 0)
		return entry_errno(u, err, -r, "replacing what an earlier entry put there");
	return 0;
}

/* ---- attributes ----------------------------------------------------------------- */

static bool xattr_allowed(const char *name)
{
	/* security.capability: file capabilities, which images do carry (ping,
	 * newuidmap). user.*: inert data, but never overlayfs's own. Everything
	 * else (trusted.*, security.selinux, system.posix_acl_*) is policy of
	 * the host, not of an image. */
	if (streq(name, "security.capability"))
		return true;
	return strncmp(name, "user.", 5) == 0 && name[5] &&
	       strncmp(name, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) != 0;
}

static void ts_set(struct timespec *ts, time_t sec, long nsec)
{
	ts->tv_sec = sec;
	ts->tv_nsec = nsec < 0 || nsec > 999999999 ? 0 : nsec;
}

/* Ownership, mode, times and xattr size of an entry, checked before any
 * side effect. */
static int entry_meta(struct unpacker *u, struct archive_entry *e, struct meta *m,
		      struct crisp_error *err)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	uint64_t xbytes = 0;
	const char *name;
	const void *value;
	size_t size;

	/* (uid_t)-1 would mean "leave unchanged" to chown. */
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return entry_err(u, err, CRISP_E_INVALID, 0, "owner %lld:%lld is out of range",
				 (long long)uid, (long long)gid);
	m->uid = (uid_t)uid;
	m->gid = (gid_t)gid;
	m->perm = archive_entry_perm(e) & 07777;
	ts_set(&m->ts[1], archive_entry_mtime(e), archive_entry_mtime_nsec(e));
	m->ts[0] = m->ts[1];
	/* containerd sets the later of atime and mtime as the atime. */
	if (archive_entry_atime_is_set(e) && archive_entry_atime(e) > m->ts[1].tv_sec)
		ts_set(&m->ts[0], archive_entry_atime(e), archive_entry_atime_nsec(e));

	if (archive_entry_xattr_count(e) > MAX_XATTRS)
		return entry_err(u, err, CRISP_E_RESOURCE, 0, "more than %d xattrs", MAX_XATTRS);
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && name)
		xbytes += strlen(name) + size;
	if (xbytes > u->lim.max_xattr_bytes)
		return entry_err(u, err, CRISP_E_RESOURCE, 0,
				 "%llu bytes of xattrs, more than the limit of %llu",
				 (unsigned long long)xbytes,
				 (unsigned long long)u->lim.max_xattr_bytes);
	return 0;
}

struct xattrs {
	size_t n;
	const char *names[MAX_XATTRS];
	const void *values[MAX_XATTRS];
	size_t sizes[MAX_XATTRS];
};

/* An entry's xattrs, each once: libarchive's own pax writer stores every
 * xattr twice (LIBARCHIVE.xattr.* and SCHILY.xattr.*) and its reader
 * returns both. entry_meta() has bounded the count. */
static void xattrs_collect(struct archive_entry *e, struct xattrs *x)
{
	const char *name;
	const void *value;
	size_t size, i;

	x->n = 0;
	archive_entry_xattr_reset(e);
	while (x->n < MAX_XATTRS &&
	       archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && name) {
		for (i = 0; i < x->n; i++)
			if (streq(x->names[i], name) && x->sizes[i] == size &&
			    memcmp(x->values[i], value, size) == 0)
				break;
		if (i < x->n)
			continue;
		x->names[x->n] = name;
		x->values[x->n] = value;
		x->sizes[x->n++] = size;
	}
}

static int apply_xattrs(struct unpacker *u, struct archive_entry *e, int fd,
			struct crisp_error *err)
{
	struct xattrs x;

	xattrs_collect(e, &x);
	for (size_t i = 0; i < x.n; i++) {
		const char *name = x.names[i];

		if (!xattr_allowed(name)) {
			u->skipped_xattrs++;
			continue;
		}
		if (fsetxattr(fd, name, x.values[i], x.sizes[i], 0) == 0)
			continue;
		if (errno == ENOTSUP) {
			u->skipped_xattrs++;
			continue;
		}
		if (errno == EINVAL || errno == ERANGE || errno == E2BIG)
			return entry_err(u, err, CRISP_E_INVALID, errno, "xattr %.100s rejected",
					 name);
		return entry_err(u, err, errno_code(errno), errno, "setting xattr %.100s", name);
	}
	return 0;
}

/* For what has an fd (files, directories). The order matters: chown clears
 * setuid/setgid bits and security.capability, so both come after it. */
static int meta_fd(struct unpacker *u, struct archive_entry *e, const struct meta *m, int fd,
		   bool is_dir, struct crisp_error *err)
{
	if (fchown(fd, m->uid, m->gid) < 0)
		return entry_errno(u, err, errno, "chown");
	if (apply_xattrs(u, e, fd, err) < 0)
		return -1;
	if (fchmod(fd, m->perm) < 0)
		return entry_errno(u, err, errno, "chmod");
	if (!is_dir && futimens(fd, m->ts) < 0)
		return entry_errno(u, err, errno, "setting times");
	return 0;
}

/* For what has no fd: symlinks, device nodes (unopenable on imaged's nodev
 * mount) and fifos. The kernel takes user.* xattrs on neither (and
 * security.capability means nothing there): they are counted as skipped. */
static int meta_at(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		   const char *base, bool is_symlink, struct crisp_error *err)
{
	struct xattrs x;

	if (fchownat(pfd, base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_errno(u, err, errno, "chown");
	xattrs_collect(e, &x);
	u->skipped_xattrs += x.n;
	/* fchmodat() follows a symlink in the last place (glibc's NOFOLLOW
	 * needs /proc). The name was created a moment ago as a node, in a
	 * directory nothing else writes, so there is no symlink to follow. */
	if (!is_symlink && fchmodat(pfd, base, m->perm, 0) < 0)
		return entry_errno(u, err, errno, "chmod");
	if (utimensat(pfd, base, m->ts, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_errno(u, err, errno, "setting times");
	return 0;
}

/* ---- entry types ---------------------------------------------------------------- */

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int copy_data(struct unpacker *u, int fd, uint64_t size, struct crisp_error *err)
{
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(u->tar, &buf, &len, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return tar_err(u, err, true);
		if (off < 0 || (uint64_t)off > size || len > size - (uint64_t)off)
			return entry_err(u, err, CRISP_E_INVALID, 0, "data beyond its size");
		r = pwrite_all(fd, buf, len, (off_t)off);
		if (r < 0)
			return entry_errno(u, err, -r, "writing");
	}
	/* A sparse file's last hole, or nothing. */
	if (ftruncate(fd, (off_t)size) < 0)
		return entry_errno(u, err, errno, "writing");
	return 0;
}

static int do_file(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		   const char *base, struct crisp_error *err)
{
	_cleanup_close_ int fd = -1;
	int64_t size = archive_entry_size(e);

	/* Sparse entries may claim far more than the stream carries. */
	if (size < 0 || (uint64_t)size > u->lim.max_total_bytes - u->content_bytes)
		return entry_err(u, err, CRISP_E_RESOURCE, 0,
				 "files of the layer would exceed %llu bytes (limit "
				 "images.max_layer_size_mb)",
				 (unsigned long long)u->lim.max_total_bytes);
	u->content_bytes += (uint64_t)size;
	if (make_room(u, pfd, base, false, err) < 0)
		return -1;
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return entry_errno(u, err, errno, "creating");
	if (copy_data(u, fd, (uint64_t)size, err) < 0)
		return -1;
	return meta_fd(u, e, m, fd, false, err);
}

static int do_dir(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		  const char *base, const char *path, struct crisp_error *err)
{
	_cleanup_close_ int fd = -1;
	struct dir_time *dt;
	int kept = make_room(u, pfd, base, true, err);

	if (kept < 0)
		return -1;
	if (!kept && mkdirat(pfd, base, 0700) < 0)
		return entry_errno(u, err, errno, "creating");
	fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_errno(u, err, errno, "opening");
	if (meta_fd(u, e, m, fd, true, err) < 0)
		return -1;
	if (u->ndirs == u->dirs_cap) {
		u->dirs_cap = u->dirs_cap ? 2 * u->dirs_cap : 64;
		u->dirs = xrealloc(u->dirs, u->dirs_cap * sizeof(*u->dirs));
	}
	dt = &u->dirs[u->ndirs++];
	dt->path = xstrdup(path);
	dt->ts[0] = m->ts[0];
	dt->ts[1] = m->ts[1];
	return 0;
}

static int do_symlink(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		      const char *base, struct crisp_error *err)
{
	const char *target = archive_entry_symlink(e);

	/* The target is stored, never followed here: every later resolution
	 * through it happens inside the root. */
	if (!target || !*target)
		return entry_err(u, err, CRISP_E_INVALID, 0, "symbolic link without a target");
	if (strlen(target) > u->lim.max_path_len)
		return entry_err(u, err, CRISP_E_RESOURCE, 0,
				 "symbolic link target longer than %llu bytes (limit "
				 "images.max_layer_path_len)",
				 (unsigned long long)u->lim.max_path_len);
	if (make_room(u, pfd, base, false, err) < 0)
		return -1;
	if (symlinkat(target, pfd, base) < 0)
		return entry_errno(u, err, errno, "creating the symbolic link");
	return meta_at(u, e, m, pfd, base, true, err);
}

static int do_node(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		   const char *base, mode_t type, struct crisp_error *err)
{
	dev_t dev = type == S_IFIFO
			    ? 0
			    : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));

	if (make_room(u, pfd, base, false, err) < 0)
		return -1;
	if (mknodat(pfd, base, type | 0600, dev) < 0)
		return entry_errno(u, err, errno, "creating the node");
	return meta_at(u, e, m, pfd, base, false, err);
}

/* A hardlink's target must be something this layer already made: it is
 * looked up inside the root (the snapshot holds this layer only), never
 * created, and may not be a directory or a whiteout. */
static int do_hardlink(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		       const char *base, const char *path, const char *target,
		       struct crisp_error *err)
{
	_cleanup_free_ char *tparent = NULL;
	_cleanup_close_ int tfd = -1, fd = -1;
	const char *tbase;
	struct stat st;
	int r;

	if (streq(target, path))
		return entry_err(u, err, CRISP_E_INVALID, 0, "hardlink to itself");
	tparent = path_split(target, &tbase);
	r = open_in_root(u, tparent, O_PATH | O_DIRECTORY, &tfd);
	if (r == 0 && fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r == -ENOENT || r == -ENOTDIR)
		return entry_err(u, err, CRISP_E_INVALID, 0,
				 "hardlink target '%.200s' does not exist in this layer", target);
	if (r < 0)
		return entry_err(u, err, errno_code(-r), -r, "resolving hardlink target '%.200s'",
				 target);
	if (S_ISDIR(st.st_mode))
		return entry_err(u, err, CRISP_E_INVALID, 0,
				 "hardlink target '%.200s' is a directory", target);
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
		return entry_err(u, err, CRISP_E_INVALID, 0,
				 "hardlink target '%.200s' is a whiteout", target);
	if (make_room(u, pfd, base, false, err) < 0)
		return -1;
	/* flags 0: a symlink target is linked itself, not followed */
	if (linkat(tfd, tbase, pfd, base, 0) < 0) {
		if (errno == ENOENT) /* making room removed the target */
			return entry_err(u, err, CRISP_E_INVALID, 0,
					 "hardlink target '%.200s' does not exist in this layer",
					 target);
		return entry_errno(u, err, errno, "creating the hardlink");
	}
	/* Like containerd, the link's header sets the (shared) attributes. */
	if (!S_ISREG(st.st_mode))
		return meta_at(u, e, m, pfd, base, S_ISLNK(st.st_mode), err);
	fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return entry_errno(u, err, errno, "opening the hardlink");
	return meta_fd(u, e, m, fd, false, err);
}

/* ".wh.<name>": a 0/0 character device <name>, overlayfs's whiteout. */
static int do_whiteout(struct unpacker *u, const struct meta *m, int pfd, const char *target,
		       struct crisp_error *err)
{
	if (mknodat(pfd, target, S_IFCHR, makedev(0, 0)) < 0) {
		/* containerd fails the same way (its mknod gets EEXIST): a whiteout
		 * never hides what its own layer creates. */
		if (errno == EEXIST)
			return entry_err(u, err, CRISP_E_INVALID, 0,
					 "whiteout of '%.200s', which this layer also creates",
					 target);
		return entry_errno(u, err, errno, "creating the whiteout");
	}
	if (fchownat(pfd, target, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_errno(u, err, errno, "chown of the whiteout");
	return 0;
}

/* ".wh..wh..opq" in D: D hides everything of the layers below it. */
static int do_opaque(struct unpacker *u, int pfd, struct crisp_error *err)
{
	_cleanup_close_ int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return entry_errno(u, err, errno, "opening its directory");
	if (fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) < 0)
		return entry_errno(u, err, errno, "setting " OPAQUE_XATTR);
	return 0;
}

/* ---- one entry ------------------------------------------------------------------ */

enum kind {
	K_FILE,
	K_DIR,
	K_SYMLINK,
	K_NODE,
	K_HARDLINK,
	K_WHITEOUT,
	K_OPAQUE,
	K_IGNORED,
};

/* What an entry is, and whether its name is acceptable, before any side
 * effect. */
static int classify(struct unpacker *u, struct archive_entry *e, const char *base, enum kind *ret,
		    struct crisp_error *err)
{
	if (strncmp(base, WHITEOUT, strlen(WHITEOUT)) == 0) {
		const char *target = base + strlen(WHITEOUT);

		if (streq(base, WHITEOUT_OPAQUE))
			*ret = K_OPAQUE;
		else if (strncmp(base, WHITEOUT_META, strlen(WHITEOUT_META)) == 0)
			*ret = K_IGNORED; /* other metadata markers, as containerd */
		else if (!*target)
			return entry_err(u, err, CRISP_E_INVALID, 0, "whiteout of no name");
		else if (streq(target, ".") || streq(target, ".."))
			return entry_err(u, err, CRISP_E_INVALID, 0,
					 "whiteout escapes its directory");
		else
			*ret = K_WHITEOUT;
		return 0;
	}
	if (archive_entry_hardlink(e)) {
		*ret = K_HARDLINK;
		return 0;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		*ret = K_FILE;
		return 0;
	case AE_IFDIR:
		*ret = K_DIR;
		return 0;
	case AE_IFLNK:
		*ret = K_SYMLINK;
		return 0;
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		*ret = K_NODE;
		return 0;
	default:
		return entry_err(u, err, CRISP_E_INVALID, 0, "unsupported file type 0%o",
				 (unsigned)archive_entry_filetype(e));
	}
}

static int check_name(struct unpacker *u, const char *name, const char *what,
		      struct crisp_error *err)
{
	if (strlen(name) > u->lim.max_path_len)
		return entry_err(u, err, CRISP_E_RESOURCE, 0,
				 "%s is longer than %llu bytes (limit images.max_layer_path_len)",
				 what, (unsigned long long)u->lim.max_path_len);
	return 0;
}

static int apply_entry(struct unpacker *u, struct archive_entry *e, struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL, *parent = NULL, *target = NULL;
	_cleanup_close_ int pfd = -1;
	const char *name = archive_entry_pathname(e), *base;
	struct meta m;
	enum kind kind;

	if (!name)
		return err_set(err, CRISP_E_INVALID, "layer entry %llu has no name",
			       (unsigned long long)u->entries);
	printable(u->name, sizeof(u->name), name);
	if (check_name(u, name, "its name", err) < 0)
		return -1;
	if (path_clean(name, &path) < 0)
		return err_set(err, CRISP_E_INVALID, "layer entry '%s' escapes the layer root",
			       u->name);
	if (!*path) {
		/* "./": containerd leaves the root's attributes alone. */
		if (archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e))
			return 0;
		return entry_err(u, err, CRISP_E_INVALID, 0, "names the layer root");
	}
	parent = path_split(path, &base);
	if (classify(u, e, base, &kind, err) < 0)
		return -1;
	if (kind == K_IGNORED)
		return 0;
	if (kind == K_HARDLINK) {
		const char *t = archive_entry_hardlink(e);
		if (check_name(u, t, "its hardlink target", err) < 0)
			return -1;
		if (path_clean(t, &target) < 0)
			return entry_err(u, err, CRISP_E_INVALID, 0,
					 "hardlink target escapes the layer root");
		if (!*target)
			return entry_err(u, err, CRISP_E_INVALID, 0, "hardlink to the layer root");
	}
	if (entry_meta(u, e, &m, err) < 0 || open_parent(u, parent, &pfd, err) < 0)
		return -1;

	switch (kind) {
	case K_FILE:
		return do_file(u, e, &m, pfd, base, err);
	case K_DIR:
		return do_dir(u, e, &m, pfd, base, path, err);
	case K_SYMLINK:
		return do_symlink(u, e, &m, pfd, base, err);
	case K_NODE:
		return do_node(u, e, &m, pfd, base, archive_entry_filetype(e), err);
	case K_HARDLINK:
		return do_hardlink(u, e, &m, pfd, base, path, target, err);
	case K_WHITEOUT:
		return do_whiteout(u, &m, pfd, base + strlen(WHITEOUT), err);
	case K_OPAQUE:
		return do_opaque(u, pfd, err);
	default:
		return 0;
	}
}

/* ---- the layer ------------------------------------------------------------------ */

/* Directories last, now that no child changes their times. One replaced
 * since by something else (or removed) is passed over. */
static int dirs_finish(struct unpacker *u, struct crisp_error *err)
{
	for (size_t i = 0; i < u->ndirs; i++) {
		_cleanup_close_ int fd = -1;
		int r = open_in_root(u, u->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, &fd);

		if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
			continue;
		printable(u->name, sizeof(u->name), u->dirs[i].path);
		if (r < 0)
			return entry_errno(u, err, -r, "opening to set its times");
		if (futimens(fd, u->dirs[i].ts) < 0)
			return entry_errno(u, err, errno, "setting times");
	}
	return 0;
}

static int finish(struct unpacker *u, struct unpack_result *res, struct crisp_error *err)
{
	char diff_id[DIGEST_STRING_MAX];

	_Static_assert(sizeof(res->diff_id) == 7 + 2 * SHA256_DIGEST_SIZE + 1,
		       "a DiffID is a sha256 digest string");
	digest_final_string(&u->md, diff_id);
	memcpy(res->diff_id, diff_id, sizeof(res->diff_id));
	res->entries = u->entries;
	res->bytes = u->stream_bytes;
	res->content_bytes = u->content_bytes;
	res->skipped_xattrs = u->skipped_xattrs;
	return 0;
}

int unpack_layer(int blob_fd, int root_dirfd, const struct unpack_limits *lim,
		 struct unpack_result *res, struct crisp_error *err)
{
	return unpack_layer_over(blob_fd, root_dirfd, NULL, 0, lim, res, err);
}

int unpack_layer_over(int blob_fd, int root_dirfd, const int *lowers, size_t n_lowers,
		      const struct unpack_limits *lim, struct unpack_result *res,
		      struct crisp_error *err)
{
	_cleanup_(unpacker_freep) struct unpacker *u = NULL;
	struct unpack_result out = { 0 };
	struct stat st;

	if (fstat(root_dirfd, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(err, CRISP_E_INTERNAL, "the snapshot directory is not a directory");
	u = xcalloc(1, sizeof(*u));
	u->blob_fd = blob_fd;
	u->root = root_dirfd;
	u->lowers = lowers;
	u->n_lowers = n_lowers;
	unpack_limits_fill(&u->lim, lim);
	if (source_open(u, err) < 0)
		return -1;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(u->tar, &e);

		if (r == ARCHIVE_EOF)
			break;
		/* ARCHIVE_WARN: e.g. a name that is not UTF-8, kept as bytes. */
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return tar_err(u, err, false);
		if (++u->entries > u->lim.max_entries)
			return err_set(err, CRISP_E_RESOURCE,
				       "the layer has more than %llu entries (limit "
				       "images.max_layer_entries)",
				       (unsigned long long)u->lim.max_entries);
		if (apply_entry(u, e, err) < 0)
			return -1;
	}
	if (source_drain(u, err) < 0 || dirs_finish(u, err) < 0 || finish(u, &out, err) < 0)
		return -1;
	*res = out;
	return 0;
}
