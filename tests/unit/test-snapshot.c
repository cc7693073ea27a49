/* Containers' writable snapshots (imaged/snapshot.c): prepared over real
 * committed layer snapshots in a real store, mounted with overlayfs the way
 * runtimed will, removed, and garbage-collected only once no container
 * needs the layers. Needs root (mount). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "imaged/content.h"
#include "imaged/imaged.h"
#include "imaged/store.h"
#include "tests/unit/tap.h"

/* imaged.c (not linked here) owns this in the daemon. */
struct imaged_ctx imaged = { .root_fd = -1, .snap_fd = -1 };

static const char *C1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char *C2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
static const char *CID = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

static int64_t commit_layer(const char *chain, const char *parent, const char *file)
{
	struct crisp_error err;
	char key[64];
	int64_t id = -1;
	int fs, fd;

	snprintf(key, sizeof(key), "extract-%c", chain[7]);
	if (store_snapshot_put(imaged.store, key, parent, STORE_SNAPSHOT_ACTIVE, &id, &err) < 0)
		return diag("put: %s", err.msg), -1;
	fs = snapshot_dir_create(id, &err);
	fd = fs < 0 ? -1 : openat(fs, file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, file, strlen(file)) < 0)
		return diag("layer file: %s", strerror(errno)), -1;
	close(fd);
	close(fs);
	if (store_snapshot_commit(imaged.store, key, chain, 1, 1, &err) < 0)
		return diag("commit: %s", err.msg), -1;
	return id;
}

static int count_gc(enum store_gc_kind kind, const char *key, int64_t id, void *arg)
{
	if (kind == STORE_GC_SNAPSHOT)
		(*(int *)arg)++;
	return 0;
}

static int gc_snapshots(void)
{
	struct crisp_error err;
	int n = 0;

	if (store_gc_candidates(imaged.store, imaged.content, count_gc, &n, &err) < 0)
		diag("gc: %s", err.msg);
	return n;
}

static void test_prepare_mount_remove(const char *top)
{
	char *chain[] = { (char *)C1, (char *)C2 };
	struct snapshot_mount m = { 0 };
	struct crisp_error err;
	char mnt[512], opts[2048], path[600];
	struct stat st;

	ok(snapshot_prepare(CID, chain, 2, &m, &err) == 0, "prepare over two layers");
	is_int(m.n_lowerdirs, 2, "two lower dirs");
	ok(m.n_lowerdirs == 2 && strstr(m.lowerdirs[0], "/snapshots/2/fs") &&
		   strstr(m.lowerdirs[1], "/snapshots/1/fs"),
	   "lower dirs topmost first");
	ok(m.upperdir && strncmp(m.upperdir, top, strlen(top)) == 0 && stat(m.upperdir, &st) == 0,
	   "upper dir exists under the root");
	ok(m.workdir && stat(m.workdir, &st) == 0 && S_ISDIR(st.st_mode), "work dir exists");
	is_int(gc_snapshots(), 0, "a container's snapshot keeps its layers out of GC");

	snprintf(mnt, sizeof(mnt), "%s/mnt", top);
	mkdir(mnt, 0700);
	snprintf(opts, sizeof(opts), "lowerdir=%s:%s,upperdir=%s,workdir=%s,userxattr",
		 m.lowerdirs[0], m.lowerdirs[1], m.upperdir, m.workdir);
	if (mount("overlay", mnt, "overlay", 0, opts) == 0) {
		snprintf(path, sizeof(path), "%s/low", mnt);
		ok(stat(path, &st) == 0, "the lower layer's file shows in the mount");
		snprintf(path, sizeof(path), "%s/high", mnt);
		ok(stat(path, &st) == 0, "the upper layer's file shows in the mount");
		snprintf(path, sizeof(path), "%s/new", mnt);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ok(fd >= 0, "the container can write");
		safe_close(fd);
		umount2(mnt, MNT_DETACH);
		snprintf(path, sizeof(path), "%s/new", m.upperdir);
		ok(stat(path, &st) == 0, "the write landed in the upper dir");
	} else {
		ok(false, "overlay mount failed: %s", strerror(errno));
	}

	struct snapshot_mount again = { 0 };
	ok(snapshot_prepare(CID, chain, 2, &again, &err) < 0 && err.code == CRISP_E_EXISTS,
	   "a second prepare for the container is refused (exists)");
	ok(snapshot_prepare("ABC", chain, 2, &again, &err) < 0 && err.code == CRISP_E_INVALID,
	   "a malformed container id is refused");
	ok(snapshot_prepare("../../../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			    chain, 2, &again, &err) < 0 &&
		   err.code == CRISP_E_INVALID,
	   "a path as container id is refused");
	char *missing[] = { (
		char *)"sha256:3333333333333333333333333333333333333333333333333333333333333333" };
	ok(snapshot_prepare(CID, missing, 1, &again, &err) < 0, "an unknown layer is refused");

	ok(snapshot_remove(CID, &err) == 0, "remove");
	ok(stat(m.upperdir, &st) < 0 && errno == ENOENT, "its directories are gone");
	ok(snapshot_remove(CID, &err) < 0 && err.code == CRISP_E_NOT_FOUND,
	   "removing again: not found");
	is_int(gc_snapshots(), 2, "with the container gone, no image holds the layers: GC");
	snapshot_mount_done(&m);
}

static void test_no_layers(void)
{
	static const char *cid = "0000000000000000000000000000000000000000000000000000000000000001";
	struct snapshot_mount m = { 0 };
	struct crisp_error err;
	struct stat st;

	ok(snapshot_prepare(cid, NULL, 0, &m, &err) == 0, "an image without layers");
	ok(m.n_lowerdirs == 1 && stat(m.lowerdirs[0], &st) == 0, "gets one empty lower dir");
	ok(snapshot_remove(cid, &err) == 0, "and removes cleanly");
	snapshot_mount_done(&m);
}

/* ---- the copy snapshotter ----------------------------------------------------- */

static const char *C3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
static const char *C4 = "sha256:4444444444444444444444444444444444444444444444444444444444444444";

static int put_file(int dir, const char *name, const char *data, mode_t mode)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, strlen(data)) < 0 || fchmod(fd, mode) < 0)
		return -1;
	return close(fd);
}

/* An active snapshot, filled by fill(fs), committed as chain. */
static int commit_with(const char *chain, const char *parent, int (*fill)(int fs))
{
	struct crisp_error err;
	char key[64];
	int64_t id;
	int fs, r;

	snprintf(key, sizeof(key), "extract-%c", chain[7]);
	if (store_snapshot_put(imaged.store, key, parent, STORE_SNAPSHOT_ACTIVE, &id, &err) < 0)
		return diag("put: %s", err.msg), -1;
	fs = snapshot_dir_create(id, &err);
	r = fs < 0 ? -1 : fill(fs);
	if (r < 0)
		diag("filling the layer: %s", strerror(errno));
	safe_close(fs);
	if (r == 0 && store_snapshot_commit(imaged.store, key, chain, 1, 1, &err) < 0)
		return diag("commit: %s", err.msg), -1;
	return r;
}

/* The lower layer: owners, modes, setuid, xattrs, times, a hardlink, a
 * symlink, a fifo, a device; files a later layer removes or hides. */
static int fill_lower(int fs)
{
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	int r = 0;

	r |= mkdirat(fs, "etc", 0750) | fchownat(fs, "etc", 1000, 1000, 0);
	r |= put_file(fs, "etc/keep", "old\n", 0644) | put_file(fs, "etc/gone", "gone\n", 0644);
	r |= mkdirat(fs, "d", 0755) | put_file(fs, "d/old", "hidden\n", 0644);
	r |= put_file(fs, "hl1", "linked\n", 0600) | linkat(fs, "hl1", fs, "hl2", 0);
	r |= symlinkat("etc/keep", fs, "sl");
	r |= mknodat(fs, "ff", S_IFIFO | 0620, 0) | fchmodat(fs, "ff", 0620, 0);
	r |= mknodat(fs, "cdev", S_IFCHR | 0666, makedev(1, 3));
	r |= put_file(fs, "suid", "#!\n", 0755) | fchownat(fs, "suid", 0, 0, 0) |
	     fchmodat(fs, "suid", 04755, 0);
	r |= put_file(fs, "x", "x\n", 0644);
	int fd = openat(fs, "x", O_RDONLY | O_CLOEXEC);
	r |= fd < 0 ? -1 : fsetxattr(fd, "user.crisp-test", "v", 1, 0);
	safe_close(fd);
	r |= utimensat(fs, "x", ts, 0);
	return r ? -1 : 0;
}

/* The upper layer: a whiteout, an opaque directory, an overwrite. */
static int fill_upper(int fs)
{
	int r = 0, d;

	r |= mkdirat(fs, "etc", 0750) | fchownat(fs, "etc", 1000, 1000, 0);
	r |= mknodat(fs, "etc/gone", S_IFCHR | 0, makedev(0, 0));
	r |= put_file(fs, "etc/keep", "new\n", 0644);
	r |= mkdirat(fs, "d", 0700) | put_file(fs, "d/new", "new\n", 0644);
	d = openat(fs, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r |= d < 0 ? -1 : fsetxattr(d, "user.overlay.opaque", "y", 1, 0);
	safe_close(d);
	return r ? -1 : 0;
}

static void test_copy_snapshotter(void)
{
	static const char *cid = "00000000000000000000000000000000000000000000000000000000000000c0";
	char *chain[] = { (char *)C3, (char *)C4 };
	struct snapshot_mount m = { 0 };
	struct crisp_error err;
	struct stat st, st2;
	char buf[64] = "", path[512];
	int root;

	ok(commit_with(C3, NULL, fill_lower) == 0, "copy: lower layer committed");
	ok(commit_with(C4, C3, fill_upper) == 0, "copy: upper layer committed");
	imaged.snapshotter = SNAPSHOTTER_COPY;
	ok(snapshot_prepare(cid, chain, 2, &m, &err) == 0, "copy: prepare (%s)",
	   err.code ? err.msg : "ok");
	imaged.snapshotter = SNAPSHOTTER_OVERLAYFS;
	ok(m.bind && m.upperdir && !m.workdir && m.n_lowerdirs == 0,
	   "copy: one directory to bind-mount, no lower or work dirs");
	root = m.upperdir ? open(m.upperdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	ok(root >= 0, "copy: the rootfs exists");
	if (root < 0)
		goto out;
	int fd = openat(root, "etc/keep", O_RDONLY | O_CLOEXEC);
	ok(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 4 && streq(buf, "new\n"),
	   "copy: the upper layer's file wins");
	safe_close(fd);
	ok(fstatat(root, "etc/gone", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
	   "copy: a whiteout removes the lower file, and leaves no device behind");
	ok(fstatat(root, "d/old", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
	   "copy: an opaque directory hides the lower entries");
	ok(fstatat(root, "d/new", &st, 0) == 0, "copy: and keeps its own");
	snprintf(path, sizeof(path), "%s/d", m.upperdir);
	ok(getxattr(path, "user.overlay.opaque", buf, sizeof(buf)) < 0,
	   "copy: no overlay xattr in the copy");
	ok(fstatat(root, "d", &st, 0) == 0 && (st.st_mode & 07777) == 0700,
	   "copy: the upper directory's mode");
	ok(fstatat(root, "etc", &st, 0) == 0 && st.st_uid == 1000 && st.st_gid == 1000 &&
		   (st.st_mode & 07777) == 0750,
	   "copy: directory owner and mode");
	ok(fstatat(root, "hl1", &st, 0) == 0 && fstatat(root, "hl2", &st2, 0) == 0 &&
		   st.st_ino == st2.st_ino && st.st_nlink == 2,
	   "copy: a hardlink stays a hardlink");
	ok(readlinkat(root, "sl", buf, sizeof(buf)) == 8 && strncmp(buf, "etc/keep", 8) == 0,
	   "copy: a symlink keeps its target");
	ok(fstatat(root, "ff", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode) &&
		   (st.st_mode & 07777) == 0620,
	   "copy: a fifo");
	ok(fstatat(root, "cdev", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
		   st.st_rdev == makedev(1, 3),
	   "copy: a device node");
	ok(fstatat(root, "suid", &st, 0) == 0 && (st.st_mode & 07777) == 04755 && st.st_uid == 0,
	   "copy: setuid kept");
	ok(fstatat(root, "x", &st, 0) == 0 && st.st_mtim.tv_sec == 1000000000, "copy: mtime kept");
	snprintf(path, sizeof(path), "%s/x", m.upperdir);
	memset(buf, 0, sizeof(buf));
	ok(getxattr(path, "user.crisp-test", buf, sizeof(buf)) == 1 && buf[0] == 'v',
	   "copy: a user xattr kept");
	close(root);
	ok(snapshot_remove(cid, &err) == 0, "copy: remove");
	ok(stat(m.upperdir, &st) < 0 && errno == ENOENT, "copy: its directory is gone");
out:
	snapshot_mount_done(&m);
}

int main(void)
{
	static struct crisp_config cfg;
	char top[] = "/tmp/test-snapshot.XXXXXX", path[256];
	struct crisp_error err;

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (overlay mounts)\n");
		return 0;
	}
	if (!mkdtemp(top))
		return 1;
	config_init(&cfg);
	free(cfg.root_dir);
	cfg.root_dir = xstrdup(top);
	imaged.cfg = &cfg;
	snprintf(path, sizeof(path), "%s/imaged", top);
	mkdir(path, 0700);
	imaged.root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	imaged.snap_fd = mkdir_openat(imaged.root_fd, "snapshots", 0700);
	snprintf(path, sizeof(path), "%s/imaged/metadata.db", top);
	imaged.store = store_open(path, &err);
	imaged.content = content_open(imaged.root_fd, &err);
	if (!imaged.store || !imaged.content || imaged.snap_fd < 0)
		return printf("Bail out! setup: %s\n", err.msg), 1;

	ok(commit_layer(C1, NULL, "low") == 1, "layer 1 committed");
	ok(commit_layer(C2, C1, "high") == 2, "layer 2 committed over layer 1");
	test_prepare_mount_remove(top);
	test_no_layers();
	test_copy_snapshotter();

	store_close(imaged.store);
	content_close(imaged.content);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			diag("cleanup of %s failed", top);
	}
	config_free(&cfg);
	return done_testing();
}
