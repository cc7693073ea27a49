/* The container root filesystems imaged hands over (rootfs.h), checked
 * before runtimed mounts anything: imaged is another process, and the
 * frontend that forwards its answer is not trusted. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
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
