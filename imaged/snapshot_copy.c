/* The copy snapshotter, for hosts where overlayfs is unavailable (imaged's
 * root on a filesystem overlayfs cannot use as upper, no user xattrs, a
 * kernel without it): a container's snapshot is a full copy of its image's
 * layers, merged into one directory that runtimed bind-mounts.
 *
 * The layer snapshots keep overlayfs's upperdir form whatever the
 * snapshotter (imaged/unpack.h): a whiteout is a 0/0 character device and
 * an opaque directory carries user.overlay.opaque="y". Merging applies the
 * layers lowest first, as overlayfs would show them: a whiteout removes
 * what lies below, an opaque directory hides the lower directory's
 * entries, anything else replaces what was there.
 *
 * Both trees are ours (the layers were written by unpack, the destination
 * is new), but the layers' content is the image's: every step is a *at()
 * call on a directory fd and one name, and no symlink is ever followed
 * (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW). Owners, modes (setuid included),
 * xattrs (security.capability included), times, hardlinks within a layer,
 * devices, fifos and symlinks are kept. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/imaged.h"

/* Deeper than any layer unpack accepts (names of max_layer_path_len bytes),
 * yet bounded: each level holds a directory fd. */
#define COPY_MAX_DEPTH 1024
#define XATTR_LIST_MAX_BYTES (64 * 1024)
#define XATTR_VALUE_MAX_BYTES (64 * 1024)

/* Files of a layer with several links: the first copy, by source inode.
 * A layer's hardlinks only point within that layer (unpack refuses
 * others), so the table is per layer. */
struct link_seen {
	dev_t dev;
	ino_t ino;
	int dirfd; /* a dup of the destination directory of the first copy */
	char *name;
};

struct copy_ctx {
	struct link_seen *links;
	size_t n_links;
	struct crisp_error *err;
};

static void links_reset(struct copy_ctx *c)
{
	for (size_t i = 0; i < c->n_links; i++) {
		close(c->links[i].dirfd);
		free(c->links[i].name);
	}
	free(c->links);
	c->links = NULL;
	c->n_links = 0;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Remove name in dirfd, whatever it is; absent is fine. */
static int remove_entry(int dirfd, const char *name)
{
	int sub;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return -errno;
	if (snapshot_clear_dir(sub, 0) < 0 || unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		return -errno;
	return 0;
}

/* Xattrs of src onto dst (both fds of regular files or directories),
 * except overlayfs's own: the copy is not an overlay layer. */
static int copy_xattrs(int src, int dst, const char *name, struct crisp_error *err)
{
	_cleanup_free_ char *list = NULL, *val = NULL;
	ssize_t n = flistxattr(src, NULL, 0);

	if (n == 0 || (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)))
		return 0;
	if (n < 0 || n > XATTR_LIST_MAX_BYTES)
		return err_set_errno(err, CRISP_E_INTERNAL, n < 0 ? errno : E2BIG,
				     "listing xattrs of '%.200s'", name);
	list = xmalloc(n);
	n = flistxattr(src, list, n);
	if (n < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listing xattrs of '%.200s'",
				     name);
	val = xmalloc(XATTR_VALUE_MAX_BYTES);
	for (char *k = list; k < list + n; k += strlen(k) + 1) {
		if (strncmp(k, "user.overlay.", 13) == 0 || strncmp(k, "trusted.overlay.", 16) == 0)
			continue;
		ssize_t v = fgetxattr(src, k, val, XATTR_VALUE_MAX_BYTES);
		if (v < 0 || fsetxattr(dst, k, val, v, 0) < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno,
					     "copying xattr %.100s of '%.200s'", k, name);
	}
	return 0;
}

static bool opaque(int dirfd)
{
	char v[2];
	ssize_t n = fgetxattr(dirfd, "user.overlay.opaque", v, sizeof(v));

	return n == 1 && v[0] == 'y';
}

static int copy_data(int src, int dst, const char *name, struct crisp_error *err)
{
	char buf[64 * 1024];

	for (;;) {
		ssize_t n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			break;
		/* Not offered here: plain reads and writes. */
		while ((n = read(src, buf, sizeof(buf))) > 0)
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(dst, buf + off, n - off);
				if (w < 0)
					goto fail;
				off += w;
			}
		if (n == 0)
			return 0;
		break;
	}
fail:
	return err_set_errno(err, errno == ENOSPC ? CRISP_E_RESOURCE : CRISP_E_INTERNAL, errno,
			     "copying '%.200s'", name);
}

/* Owner, mode and times of an entry already in place (not a directory:
 * those get their times after their content). */
static int set_meta(int dirfd, const char *name, const struct stat *st, struct crisp_error *err)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	/* chown first: it clears setuid/setgid bits the chmod restores. */
	if (fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, st->st_mode & 07777, 0) < 0))
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "setting owner and mode of '%.200s'", name);
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "setting times of '%.200s'",
				     name);
	return 0;
}

static int copy_file(struct copy_ctx *c, int sdir, int ddir, const char *name,
		     const struct stat *st)
{
	_cleanup_close_ int src = -1, dst = -1;

	if (st->st_nlink > 1) {
		for (size_t i = 0; i < c->n_links; i++)
			if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino) {
				if (linkat(c->links[i].dirfd, c->links[i].name, ddir, name, 0) < 0)
					return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
							     "linking '%.200s'", name);
				return 0;
			}
	}
	src = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	dst = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (src < 0 || dst < 0)
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "copying '%.200s'", name);
	if (copy_data(src, dst, name, c->err) < 0)
		return -1;
	if (fchown(dst, st->st_uid, st->st_gid) < 0 || fchmod(dst, st->st_mode & 07777) < 0)
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
				     "setting owner and mode of '%.200s'", name);
	/* After the chown, which would drop security.capability. */
	if (copy_xattrs(src, dst, name, c->err) < 0)
		return -1;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (futimens(dst, ts) < 0)
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "setting times of '%.200s'",
				     name);
	if (st->st_nlink > 1) {
		c->links = xrealloc(c->links, (c->n_links + 1) * sizeof(*c->links));
		c->links[c->n_links].dev = st->st_dev;
		c->links[c->n_links].ino = st->st_ino;
		c->links[c->n_links].dirfd = fcntl(ddir, F_DUPFD_CLOEXEC, 3);
		c->links[c->n_links].name = xstrdup(name);
		if (c->links[c->n_links].dirfd < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "dup");
		c->n_links++;
	}
	return 0;
}

static int merge_dir(struct copy_ctx *c, int sdir, int ddir, int depth);

static int merge_entry(struct copy_ctx *c, int sdir, int ddir, const char *name, int depth)
{
	struct stat st, dst_st;
	bool have_dir;
	int r;

	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
				     "reading layer entry '%.200s'", name);
	have_dir = fstatat(ddir, name, &dst_st, AT_SYMLINK_NOFOLLOW) == 0 &&
		   S_ISDIR(dst_st.st_mode);
	if (is_whiteout(&st) || !S_ISDIR(st.st_mode) || !have_dir) {
		r = remove_entry(ddir, name);
		if (r < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, -r, "removing '%.200s'",
					     name);
		have_dir = false;
	}
	if (is_whiteout(&st))
		return 0;
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int s = -1, d = -1;
		if (depth >= COPY_MAX_DEPTH)
			return err_set(c->err, CRISP_E_RESOURCE,
				       "directories nested deeper than %d", COPY_MAX_DEPTH);
		if (!have_dir && mkdirat(ddir, name, 0700) < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "creating '%.200s'",
					     name);
		s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0 || d < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "opening '%.200s'",
					     name);
		/* Opaque: what the layers below had here is hidden. */
		if (have_dir && opaque(s)) {
			int dup_fd = fcntl(d, F_DUPFD_CLOEXEC, 3);
			if (dup_fd < 0 || snapshot_clear_dir(dup_fd, depth) < 0)
				return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
						     "clearing opaque '%.200s'", name);
		}
		if (fchown(d, st.st_uid, st.st_gid) < 0 || fchmod(d, st.st_mode & 07777) < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
					     "setting owner and mode of '%.200s'", name);
		if (copy_xattrs(s, d, name, c->err) < 0 || merge_dir(c, s, d, depth + 1) < 0)
			return -1;
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		if (futimens(d, ts) < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
					     "setting times of '%.200s'", name);
		return 0;
	}
	if (S_ISREG(st.st_mode))
		return copy_file(c, sdir, ddir, name, &st);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(sdir, name, target, PATH_MAX);
		if (n < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
					     "reading link '%.200s'", name);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return err_set_errno(c->err, CRISP_E_INTERNAL, errno,
					     "creating link '%.200s'", name);
	} else if (mknodat(ddir, name, st.st_mode & (S_IFMT | 0700), st.st_rdev) < 0) {
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "creating node '%.200s'",
				     name);
	}
	return set_meta(ddir, name, &st, c->err);
}

static int merge_dir(struct copy_ctx *c, int sdir, int ddir, int depth)
{
	int fd = fcntl(sdir, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		safe_close(fd);
		return err_set_errno(c->err, CRISP_E_INTERNAL, errno, "reading a layer directory");
	}
	while (r == 0 && (e = readdir(d)))
		if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
			r = merge_entry(c, sdir, ddir, e->d_name, depth);
	closedir(d);
	return r;
}

int snapshot_copy_layers(const int *layers, size_t n, int dst, struct crisp_error *err)
{
	struct copy_ctx c = { .err = err };
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		int s = openat(layers[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;
		if (s < 0 || fstat(s, &st) < 0) {
			safe_close(s);
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening layer %zu", i);
		}
		/* The root takes the owner and mode of the topmost layer. */
		if (fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
			r = err_set_errno(err, CRISP_E_INTERNAL, errno, "setting the root's mode");
		if (r == 0)
			r = merge_dir(&c, s, dst, 0);
		if (r == 0) {
			struct timespec ts[2] = { st.st_atim, st.st_mtim };
			futimens(dst, ts);
		}
		close(s);
		links_reset(&c);
		if (r < 0)
			err_prefix(err, "copying layer %zu", i);
	}
	return r;
}
