/* The container root filesystems imaged hands over (rootfs.h), checked
 * before runtimed mounts anything: imaged is another process, and the
 * frontend that forwards its answer is not trusted. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtimed/idmap.h"
#include "runtimed/rootfs.h"

#define LOWERDIRS_MAX 128

/* An absolute, canonical path under imaged's snapshots, with none of the
 * characters overlayfs' option syntax gives meaning to, that resolves to
 * itself (no symlink anywhere). */
static int snapshot_path_check(const char *snapshots, const char *what, const char *p,
			       struct crisp_error *err)
{
	size_t rl = strlen(snapshots), n = p ? strnlen(p, PATH_MAX) : 0;
	char real[PATH_MAX];

	if (n == 0 || n >= PATH_MAX - 1 || strncmp(p, snapshots, rl) != 0 || p[rl] != '/' ||
	    strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") || p[n - 1] == '/' ||
	    (n >= 2 && strcmp(p + n - 2, "/.") == 0) || (n >= 3 && strcmp(p + n - 3, "/..") == 0) ||
	    strpbrk(p, ",:\\\n"))
		return err_set(err, CRISP_E_INVALID,
			       "rootfs %s '%.200s' is not a clean path under %s", what, p ? p : "",
			       snapshots);
	if (!realpath(p, real))
		return err_set_errno(err, CRISP_E_INVALID, errno, "rootfs %s '%.200s'", what, p);
	if (strcmp(real, p) != 0)
		return err_set(err, CRISP_E_INVALID, "rootfs %s '%.200s' is not its real path",
			       what, p);
	return 0;
}

int rootfs_check(const char *snapshots, const CrispIpc__SnapshotMount *m, struct crisp_error *err)
{
	static const char *const allowed[] = { "userxattr", "index=off", "redirect_dir=off",
					       "metacopy=off" };

	if (m && streq(m->type, "bind")) {
		/* A copy snapshot, where imaged has no overlayfs: one directory
		 * holding the image's layers copied, checked like an overlay's. */
		if (m->n_lowerdirs || (m->workdir && *m->workdir) || m->n_options)
			return err_set(err, CRISP_E_INVALID,
				       "rootfs: a bind snapshot has only an upperdir");
		return snapshot_path_check(snapshots, "upperdir", m->upperdir, err);
	}
	if (!m || !streq(m->type, "overlay"))
		return err_set(err, CRISP_E_INVALID,
			       "rootfs: only overlay and bind snapshots are supported");
	if (m->n_lowerdirs == 0 || m->n_lowerdirs > LOWERDIRS_MAX)
		return err_set(err, CRISP_E_INVALID, "rootfs: 1 to %d lower directories",
			       LOWERDIRS_MAX);
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		if (snapshot_path_check(snapshots, "lowerdir", m->lowerdirs[i], err) < 0)
			return -1;
	if (snapshot_path_check(snapshots, "upperdir", m->upperdir, err) < 0 ||
	    snapshot_path_check(snapshots, "workdir", m->workdir, err) < 0)
		return -1;
	for (size_t i = 0; i < m->n_options; i++) {
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(allowed); k++)
			ok = ok || streq(m->options[i], allowed[k]);
		if (!ok)
			return err_set(err, CRISP_E_INVALID,
				       "rootfs: option '%.64s' is not allowed", m->options[i]);
	}
	return 0;
}

/* --- mount ------------------------------------------------------------------ */

/* A copy snapshot's directory bound at the rootfs, with the overlay's flags
 * (nodev): a bind mount takes them only from a remount. Not recursive:
 * nothing mounted under the snapshot belongs to the container. */
static int rootfs_bind(const char *target, const CrispIpc__SnapshotMount *m,
		       struct crisp_error *err)
{
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
	if (mount(m->upperdir, target, NULL, MS_BIND, NULL) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "bind-mounting the container's rootfs");
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno,
			      "remounting the container's rootfs nodev");
		if (umount2(target, MNT_DETACH) < 0)
			log_warn("unmounting %s: %s", target, strerror(errno));
		return -1;
	}
	return 0;
}

/* The overlay's mount data: lowerdir names (lowers[i], else the snapshot's
 * lowerdirs relative to the snapshots directory, rl long with its '/'),
 * upperdir and workdir, the allowed options. NULL with err past a page. */
static char *overlay_data(const CrispIpc__SnapshotMount *m, size_t rl, char **lowers,
			  const char *upper, const char *work, struct crisp_error *err)
{
	size_t cap = 64 + strlen(upper) + strlen(work);
	_cleanup_free_ char *data = NULL;
	char *d;

	for (size_t i = 0; i < m->n_lowerdirs; i++)
		cap += strlen(lowers ? lowers[i] : m->lowerdirs[i]) + 1;
	for (size_t i = 0; i < m->n_options; i++)
		cap += strlen(m->options[i]) + 1;
	d = data = xmalloc(cap);
	d += sprintf(d, "lowerdir=");
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		d += sprintf(d, "%s%s", i ? ":" : "", lowers ? lowers[i] : m->lowerdirs[i] + rl);
	d += sprintf(d, ",upperdir=%s,workdir=%s", upper, work);
	for (size_t i = 0; i < m->n_options; i++)
		d += sprintf(d, ",%s", m->options[i]);
	if ((size_t)(d - data) >= 4096) {
		err_set(err, CRISP_E_INVALID, "rootfs: the overlay options are longer than a page");
		return NULL;
	}
	return TAKE_PTR(data);
}

/* cwd for the mount only: only the loop's thread uses the working
 * directory (the disk usage worker walks absolute paths), so the chdir
 * cannot race anything. */
static int overlay_mount_in(const char *cwd, const char *home, const char *target, const char *data,
			    struct crisp_error *err)
{
	int r;

	if (chdir(cwd) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chdir %s", cwd);
	r = mount("overlay", target, "overlay", MS_NODEV, data);
	if (r < 0)
		err_set_errno(err, CRISP_E_INTERNAL, errno, "mounting the container's rootfs");
	if (chdir(home) < 0)
		fatal("runtimed: chdir back to %s: %s", home, strerror(errno));
	return r;
}

/* The writable layer's roots owned by the pod's root, so that it may
 * write to / (overlayfs checks the upper's permissions as the container's
 * caller) and so that overlayfs, whose upper cannot be idmapped, stores
 * the container's files as their host ids. The image's own files stay
 * 0-owned in the lowers, seen as the pod's root through the clones. */
/* dir was checked to be its own real path (snapshot_path_check): opened
 * with no symlink anywhere on the way, so that imaged's directory cannot
 * have turned a component into a link to a host directory meanwhile. */
static int upper_chown(const char *dir, const struct rootfs_userns *u, struct crisp_error *err)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", dir);
	if (fchown(fd, u->root_uid, u->root_gid) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chown %s to %u:%u", dir,
				     (unsigned)u->root_uid, (unsigned)u->root_gid);
	return 0;
}

/* Overlayfs itself cannot be idmapped (EINVAL) and an idmapped upperdir
 * makes it read-only: each lowerdir gets an idmapped, read-only clone,
 * named by its index under <bundle>/idmap, where the mount is made from. */
static int overlay_userns(const char *home, const char *bundle, const char *target,
			  const CrispIpc__SnapshotMount *m, const struct rootfs_userns *u,
			  struct crisp_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", bundle, IDMAP_DIR), *data = NULL;
	char **lowers = xcalloc(m->n_lowerdirs, sizeof(*lowers));
	int ret = -1;

	if (upper_chown(m->upperdir, u, err) < 0 || upper_chown(m->workdir, u, err) < 0 ||
	    idmap_dir_make(bundle, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_lowerdirs; i++) {
		_cleanup_free_ char *at = NULL;

		lowers[i] = xasprintf("l%zu", i);
		at = xasprintf("%s/%s", dir, lowers[i]);
		if (idmap_attach(u->userns_fd, m->lowerdirs[i], at,
				 IDMAP_RDONLY | IDMAP_PRIVATE | IDMAP_NO_SYMLINKS, err) < 0)
			goto out;
	}
	data = overlay_data(m, 0, lowers, m->upperdir, m->workdir, err);
	if (data && mkdir(target, 0755) < 0 && errno != EEXIST)
		err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
	else if (data)
		ret = overlay_mount_in(dir, home, target, data, err);
out:
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		free(lowers[i]);
	free(lowers);
	return ret;
}

int rootfs_mount(const char *snapshots, const char *home, const char *bundle,
		 const CrispIpc__SnapshotMount *m, const struct rootfs_userns *u,
		 struct crisp_error *err)
{
	_cleanup_free_ char *target = xasprintf("%s/rootfs", bundle), *data = NULL;
	size_t rl = strlen(snapshots) + 1;
	struct crisp_error e = { 0 };
	bool userns = u && u->userns_fd >= 0;

	if (streq(m->type, "bind")) {
		if (!userns)
			return rootfs_bind(target, m, err);
		/* The copy's files are the image's, 0-owned on disk, seen as
		 * the pod's root; what the container writes is stored as its
		 * container ids (its root's files as 0), as on a volume. */
		return idmap_attach(u->userns_fd, m->upperdir, target,
				    IDMAP_NODEV | IDMAP_PRIVATE | IDMAP_NO_SYMLINKS, err);
	}
	if (userns) {
		if (overlay_userns(home, bundle, target, m, u, err) == 0)
			return 0;
		if (idmap_detach_all(bundle, &e) < 0)
			log_warn("%s", e.msg);
		return -1;
	}
	/* Relative to the snapshots directory: mount data is limited to a
	 * page, and deep images have many layers. */
	data = overlay_data(m, rl, NULL, m->upperdir + rl, m->workdir + rl, err);
	if (!data)
		return -1;
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
	return overlay_mount_in(snapshots, home, target, data, err);
}

void rootfs_umount(const char *bundle)
{
	_cleanup_free_ char *target = xasprintf("%s/rootfs", bundle);
	struct crisp_error err = { 0 };

	/* The overlay first: it holds the clones of its lowerdirs. */
	if (umount2(target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("unmounting %s: %s", target, strerror(errno));
	if (idmap_detach_all(bundle, &err) < 0)
		log_warn("%s", err.msg);
}
