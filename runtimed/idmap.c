/* Idmapped clones of host paths under a container's bundle (idmap.h). */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtimed/idmap.h"

/* Mounts stacked on one entry that a removal detaches at most: more is a
 * loop of something else mounting there. */
#define IDMAP_STACK_MAX 16

const Runtime__V1__UserNamespace *idmap_pod_userns(const Runtime__V1__PodSandboxConfig *c)
{
	const Runtime__V1__LinuxPodSandboxConfig *lx = c ? c->linux : NULL;
	const Runtime__V1__LinuxSandboxSecurityContext *sc = lx ? lx->security_context : NULL;
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	return u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD ? u : NULL;
}

/* The host id container id 0 maps to in the pod's single range (spec.c's
 * idmap_check allows one), or -1. */
static int64_t host_of_zero(size_t n, Runtime__V1__IDMapping *const *maps)
{
	if (n != 1 || !maps[0] || maps[0]->container_id != 0 || maps[0]->length == 0)
		return -1;
	return maps[0]->host_id;
}

int idmap_host_root(const Runtime__V1__UserNamespace *u, uid_t *ret_uid, gid_t *ret_gid,
		    struct crisp_error *err)
{
	int64_t uid = u ? host_of_zero(u->n_uids, u->uids) : -1;
	int64_t gid = u ? host_of_zero(u->n_gids, u->gids) : -1;

	/* A pod whose root has no host id could neither own its writable
	 * layer nor write to it. */
	if (uid <= 0 || gid <= 0)
		return err_set(err, CRISP_E_INVALID,
			       "userns_options: the pod's mappings must start at container id 0 "
			       "(one uid and one gid range, mapping the container's root to a "
			       "host id other than 0)");
	*ret_uid = (uid_t)uid;
	*ret_gid = (gid_t)gid;
	return 0;
}

int idmap_dir_make(const char *bundle, struct crisp_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", bundle, IDMAP_DIR);

	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", dir);
	/* mkdir's mode is masked by the umask; runc's path to the clones
	 * must be searchable whatever the umask is. */
	if (fchmodat(AT_FDCWD, dir, 0711, 0) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chmod %s", dir);
	return 0;
}

/* The mount point, of the clone's type: bind mounts put a directory on a
 * directory and a file on a file. */
static int target_make(const char *target, bool dir, struct crisp_error *err)
{
	int fd;

	if (dir) {
		if (mkdir(target, 0711) < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
		return 0;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
	close(fd);
	return 0;
}

int idmap_attach(int userns_fd, const char *source, const char *target, unsigned flags,
		 struct crisp_error *err)
{
	unsigned rec = flags & IDMAP_RECURSIVE ? AT_RECURSIVE : 0;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (__u64)userns_fd };
	_cleanup_close_ int tree = -1, src = -1;
	struct stat st;

	if (flags & IDMAP_NO_SYMLINKS) {
		struct open_how how = { .flags = O_PATH | O_CLOEXEC,
					.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };

		src = (int)syscall(SYS_openat2, AT_FDCWD, source, &how, sizeof(how));
		if (src < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno,
					     "opening %s (no symlink allowed)", source);
	}
	/* A detached copy: nothing is visible anywhere until move_mount,
	 * and closing it unmounts it, so every failure below leaves nothing. */
	tree = src >= 0 ? open_tree(src, "",
				    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec)
			: open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (tree < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_INVALID : CRISP_E_INTERNAL,
				     errno, "cloning the mount of %s", source);
	if (fstat(tree, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "stat %s", source);
	if (flags & IDMAP_RDONLY)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	if (flags & IDMAP_NODEV)
		attr.attr_set |= MOUNT_ATTR_NODEV;
	if (flags & IDMAP_PRIVATE)
		attr.propagation = MS_PRIVATE;
	/* Every mount of the clone is idmapped, submounts included: one left
	 * unmapped would show the pod's root nothing but overflow ids. A
	 * filesystem that cannot be idmapped fails the whole (EINVAL). */
	if (mount_setattr(tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr)) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "idmapping the mount of %s (its filesystem may not support "
				     "idmapped mounts)",
				     source);
	if (target_make(target, S_ISDIR(st.st_mode), err) < 0)
		return -1;
	if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "attaching the clone of %s at %s",
			      source, target);
		if (unlinkat(AT_FDCWD, target, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
			log_warn("removing %s: %s", target, strerror(errno));
		return -1;
	}
	return 0;
}

/* Made private, with everything under it, before it is detached: a clone
 * of an rslave or rshared volume is a peer of its host source, and the
 * unmount of a mount under it (one the host made there after the start,
 * which propagated in) would propagate back and unmount the host's own.
 * Only a mount's root may change propagation (EINVAL otherwise), so a
 * path where nothing is mounted changes nothing. */
static int detach_one(const char *path)
{
	struct mount_attr private = { .propagation = MS_PRIVATE };

	if (mount_setattr(AT_FDCWD, path, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &private,
			  sizeof(private)) < 0 &&
	    errno != EINVAL)
		return -1;
	return umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
}

/* Everything stacked at path, then path itself. */
static int entry_detach(int dirfd, const char *path, const char *name, struct crisp_error *err)
{
	int i;

	for (i = 0; i < IDMAP_STACK_MAX; i++)
		if (detach_one(path) < 0)
			break;
	if (i == IDMAP_STACK_MAX)
		return err_set(err, CRISP_E_INTERNAL, "%s: more than %d mounts stacked", path,
			       IDMAP_STACK_MAX);
	if (errno != EINVAL && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "unmounting %s", path);
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR || (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT))
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "removing %s", path);
	return 0;
}

int idmap_detach_all(const char *bundle, struct crisp_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", bundle, IDMAP_DIR);
	struct crisp_error first = { 0 };
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", dir);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct crisp_error e = { 0 };

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (entry_detach(dirfd(d), path, de->d_name, &e) < 0 && first.code == CRISP_E_OK)
			first = e;
	}
	closedir(d);
	if (first.code != CRISP_E_OK) {
		if (err)
			*err = first;
		return -1;
	}
	if (unlinkat(AT_FDCWD, dir, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "removing %s", dir);
	return 0;
}
