/* Snapshot directories. Each snapshot the store knows has a numeric id and a
 * directory snapshots/<id>/ whose fs/ holds the layer (or, for a container,
 * the writable upper layer beside its overlay work dir). Everything goes
 * through directory fds: ids are numbers we made, never names from input. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/imaged.h"
#include "imaged/store.h"
#include "imaged/trash.h"

int snapshot_dir_create(int64_t id, struct crisp_error *err)
{
	char name[32];
	int dfd, fs;

	snprintf(name, sizeof(name), "%" PRId64, id);
	if (mkdirat(imaged.snap_fd, name, 0700) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot create snapshot %s",
				     name);
	dfd = openat(imaged.snap_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot open snapshot %s", name);
	/* 0755: the layer's own root directory mode comes from its "./" entry,
	 * if it has one. */
	if (mkdirat(dfd, "fs", 0755) < 0 && errno != EEXIST) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot create snapshot %s/fs", name);
		close(dfd);
		return -1;
	}
	fs = openat(dfd, "fs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	if (fs < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot open snapshot %s/fs",
				     name);
	return fs;
}

int snapshot_dir_open(int64_t id, struct crisp_error *err)
{
	char name[48];
	int fd;

	snprintf(name, sizeof(name), "%" PRId64 "/fs", id);
	fd = openat(imaged.snap_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot open snapshot %s", name);
	return fd;
}

int snapshot_dir_remove(int64_t id, struct crisp_error *err)
{
	char name[32];
	int dfd, r;

	snprintf(name, sizeof(name), "%" PRId64, id);
	dfd = openat(imaged.snap_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0
				       : err_set_errno(err, CRISP_E_INTERNAL, errno,
						       "cannot open snapshot %s", name);
	r = snapshot_clear_dir(dfd, 0);
	if (r < 0 || unlinkat(imaged.snap_fd, name, AT_REMOVEDIR) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, r < 0 ? r : errno,
				     "cannot remove snapshot %s", name);
	return 0;
}

int snapshot_dir_trash(int64_t id, struct crisp_error *err)
{
	char name[32], what[48];

	snprintf(name, sizeof(name), "%" PRId64, id);
	snprintf(what, sizeof(what), "snapshot-%" PRId64, id);
	if (trash_move(imaged.snap_fd, name, what, err) == 0)
		return 0;
	if (err->code == CRISP_E_NOT_FOUND)
		return 0;
	/* snapshots/ on a filesystem of its own (EXDEV), say: still gone. */
	log_warn("%s: deleting it in place", err->msg);
	return snapshot_dir_remove(id, err);
}

/* ---- which snapshotter -------------------------------------------------------- */

bool snapshot_overlay_works(const char *dir)
{
	_cleanup_free_ char *top = xasprintf("%s/.overlay-probe-%d", dir, (int)getpid());
	_cleanup_free_ char *lower = xasprintf("%s/lower", top),
			    *upper = xasprintf("%s/upper", top), *work = xasprintf("%s/work", top),
			    *merged = xasprintf("%s/merged", top);
	_cleanup_free_ char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower,
					      upper, work);
	int status = -1, fd;
	pid_t pid;

	if (mkdir(top, 0700) < 0 || mkdir(lower, 0755) < 0 || mkdir(upper, 0755) < 0 ||
	    mkdir(work, 0700) < 0 || mkdir(merged, 0755) < 0) {
		log_warn("overlayfs probe: cannot create %s: %m", top);
		goto out;
	}
	/* In a mount namespace of its own, which goes with the child: nothing
	 * of the probe is ever visible on the host. */
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(2);
		_exit(mount("overlay", merged, "overlay", 0, opts) < 0 ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
out:
	fd = open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (snapshot_clear_dir(fd, 0) < 0 || rmdir(top) < 0))
		log_warn("overlayfs probe: cannot remove %s: %m", top);
	return status == 0;
}

/* ---- recovery at start ------------------------------------------------------ */

struct known {
	int64_t *ids;
	size_t n;
};

static int collect(const struct store_snapshot *s, void *arg)
{
	struct known *k = arg;
	struct crisp_error err;

	/* An unpack that a crash interrupted: its layer is incomplete. */
	if (s->kind == STORE_SNAPSHOT_ACTIVE && strncmp(s->key, "extract-", 8) == 0) {
		log_info("removing interrupted unpack %s (snapshot %" PRId64 ")", s->key, s->id);
		/* The record first (see snapshot_remove); should the rename fail,
		 * the directory is left without an owner, and goes below. */
		if (store_snapshot_remove(imaged.store, s->key, &err) < 0)
			log_warn("%s", err.msg);
		else if (snapshot_dir_trash(s->id, &err) < 0)
			log_warn("%s", err.msg);
		return 0;
	}
	k->ids = xrealloc(k->ids, (k->n + 1) * sizeof(*k->ids));
	k->ids[k->n++] = s->id;
	return 0;
}

void snapshot_recover(void)
{
	struct known k = { 0 };
	struct crisp_error err;
	struct dirent *e;
	DIR *d;
	int fd;

	if (store_snapshot_list(imaged.store, collect, &k, &err) < 0)
		log_warn("snapshot recovery: %s", err.msg);
	fd = dup(imaged.snap_fd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	while (d && (e = readdir(d))) {
		char what[48];
		bool owned = false;

		if (e->d_name[0] == '.')
			continue;
		/* Names imaged makes: a snapshot id in decimal, nothing else
		 * (so "007" is not snapshot 7's). Others are left alone. */
		if (strspn(e->d_name, "0123456789") != strlen(e->d_name) ||
		    strlen(e->d_name) > 19) {
			log_warn("snapshots/%s: not a snapshot directory, left alone", e->d_name);
			continue;
		}
		for (size_t i = 0; i < k.n && !owned; i++) {
			char name[32];
			snprintf(name, sizeof(name), "%" PRId64, k.ids[i]);
			owned = streq(name, e->d_name);
		}
		if (owned)
			continue;
		log_info("removing snapshot directory %s that no snapshot owns", e->d_name);
		snprintf(what, sizeof(what), "snapshot-%s", e->d_name);
		if (trash_move(dirfd(d), e->d_name, what, &err) < 0 &&
		    err.code != CRISP_E_NOT_FOUND)
			log_warn("%s", err.msg);
	}
	if (d)
		closedir(d);
	free(k.ids);
}

/* ---- containers' writable snapshots ---------------------------------------------- */

#define CONTAINER_ID_LEN 64

static int container_key(const char *id, char key[16 + CONTAINER_ID_LEN], struct crisp_error *err)
{
	/* The frontend made the id; it is checked all the same, since it
	 * becomes a database key. */
	if (!id || strlen(id) != CONTAINER_ID_LEN ||
	    strspn(id, "0123456789abcdef") != CONTAINER_ID_LEN)
		return err_set(err, CRISP_E_INVALID,
			       "container id must be 64 lowercase hex digits");
	snprintf(key, 16 + CONTAINER_ID_LEN, "container-%s", id);
	return 0;
}

static char *snapshot_path(int64_t id, const char *leaf)
{
	return xasprintf("%s/imaged/snapshots/%" PRId64 "/%s", imaged.cfg->root_dir, id, leaf);
}

void snapshot_mount_done(struct snapshot_mount *m)
{
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		free(m->lowerdirs[i]);
	free(m->lowerdirs);
	free(m->upperdir);
	free(m->workdir);
	memset(m, 0, sizeof(*m));
}

/* The committed snapshots of the chain, topmost first. */
static int chain_lowerdirs(char *const *chain_ids, size_t n, struct snapshot_mount *m,
			   struct crisp_error *err)
{
	m->lowerdirs = xcalloc(n + 1, sizeof(*m->lowerdirs));
	for (size_t i = n; i-- > 0;) {
		struct store_snapshot *s;
		bool committed;

		if (store_snapshot_get(imaged.store, chain_ids[i], &s, err) < 0)
			return err_prefix(err, "layer %zu of the image is not unpacked", i);
		committed = s->kind == STORE_SNAPSHOT_COMMITTED;
		if (committed)
			m->lowerdirs[m->n_lowerdirs++] = snapshot_path(s->id, "fs");
		store_snapshot_free(s);
		if (!committed)
			return err_set(err, CRISP_E_PRECONDITION,
				       "layer %zu is still being unpacked", i);
	}
	return 0;
}

/* The copy snapshotter: the image's layers merged into the snapshot's fs/,
 * bind-mounted as the container's rootfs. m holds the layers' paths: the
 * chain was checked (committed, in order). */
static int snapshot_prepare_copy(const char *key, char *const *chain_ids, size_t n,
				 struct snapshot_mount *m, struct snapshot_mount *ret,
				 struct crisp_error *err)
{
	_cleanup_free_ int *layers = xcalloc(n + 1, sizeof(int));
	size_t n_open = 0;
	int64_t id;
	int fs = -1, r = -1;

	for (size_t i = 0; i < n; i++) {
		struct store_snapshot *s;
		if (store_snapshot_get(imaged.store, chain_ids[i], &s, err) < 0)
			goto out;
		layers[i] = snapshot_dir_open(s->id, err);
		store_snapshot_free(s);
		if (layers[i] < 0)
			goto out;
		n_open++;
	}
	if (store_snapshot_put(imaged.store, key, n ? chain_ids[n - 1] : NULL,
			       STORE_SNAPSHOT_ACTIVE, &id, err) < 0)
		goto out;
	fs = snapshot_dir_create(id, err);
	if (fs >= 0 && snapshot_copy_layers(layers, n, fs, err) == 0) {
		snapshot_mount_done(m);
		m->bind = true;
		m->upperdir = snapshot_path(id, "fs");
		*ret = *m;
		memset(m, 0, sizeof(*m));
		r = 0;
	} else {
		struct crisp_error e2;
		if (snapshot_dir_remove(id, &e2) < 0 ||
		    store_snapshot_remove(imaged.store, key, &e2) < 0)
			log_warn("undoing snapshot %s: %s", key, e2.msg);
	}
	safe_close(fs);
out:
	for (size_t i = 0; i < n_open; i++)
		close(layers[i]);
	snapshot_mount_done(m);
	return r;
}

int snapshot_prepare(const char *container_id, char *const *chain_ids, size_t n,
		     struct snapshot_mount *ret, struct crisp_error *err)
{
	struct snapshot_mount m = { 0 };
	char key[16 + CONTAINER_ID_LEN];
	int64_t id;
	int fs, dfd = -1;
	char name[32];

	if (container_key(container_id, key, err) < 0 || chain_lowerdirs(chain_ids, n, &m, err) < 0)
		goto fail;
	if (imaged.snapshotter == SNAPSHOTTER_COPY)
		return snapshot_prepare_copy(key, chain_ids, n, &m, ret, err);
	if (store_snapshot_put(imaged.store, key, n ? chain_ids[n - 1] : NULL,
			       STORE_SNAPSHOT_ACTIVE, &id, err) < 0)
		goto fail;
	fs = snapshot_dir_create(id, err);
	if (fs < 0)
		goto undo;
	close(fs);
	snprintf(name, sizeof(name), "%" PRId64, id);
	dfd = openat(imaged.snap_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* overlayfs wants its work dir empty and on the upper's filesystem; an
	 * image without layers still needs one lower dir: an empty one. */
	if (dfd < 0 || mkdirat(dfd, "work", 0700) < 0 || (!n && mkdirat(dfd, "empty", 0755) < 0)) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "creating snapshot %s", name);
		goto undo;
	}
	close(dfd);
	if (!n)
		m.lowerdirs[m.n_lowerdirs++] = snapshot_path(id, "empty");
	m.upperdir = snapshot_path(id, "fs");
	m.workdir = snapshot_path(id, "work");
	*ret = m;
	return 0;
undo:
	safe_close(dfd);
	{
		struct crisp_error e2;
		if (snapshot_dir_remove(id, &e2) < 0 ||
		    store_snapshot_remove(imaged.store, key, &e2) < 0)
			log_warn("undoing snapshot %s: %s", key, e2.msg);
	}
fail:
	snapshot_mount_done(&m);
	return -1;
}

int snapshot_remove(const char *container_id, struct crisp_error *err)
{
	char key[16 + CONTAINER_ID_LEN];
	struct store_snapshot *s;
	int64_t id;

	if (container_key(container_id, key, err) < 0 ||
	    store_snapshot_get(imaged.store, key, &s, err) < 0)
		return -1;
	id = s->id;
	store_snapshot_free(s);
	/* The record first: once it is gone nobody finds the snapshot, and its
	 * directory (named by an id never used again) is garbage wherever it
	 * is. A crash before the rename leaves that directory without an
	 * owner, which snapshot_recover moves to the trash at the next start;
	 * the other order could leave a record whose directory is gone. The
	 * writable layer may hold gigabytes: a worker deletes it. */
	if (store_snapshot_remove(imaged.store, key, err) < 0)
		return -1;
	if (snapshot_dir_trash(id, err) < 0)
		log_warn("container %s: %s (the next start removes it)", container_id, err->msg);
	trash_empty();
	return 0;
}
