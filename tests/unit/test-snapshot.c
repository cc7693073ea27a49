/* Containers' writable snapshots (imaged/snapshot.c): prepared over real
 * committed layer snapshots in a real store, mounted with overlayfs the way
 * runtimed will, removed, and garbage-collected only once no container
 * needs the layers. And the trash (imaged/trash.c) removals go through:
 * renamed out at once, deleted by a worker thread, emptied after a crash,
 * never following a symlink nor entering a mount. Needs root (mount). */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "imaged/trash.h"
#include "imaged/worker.h"
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

/* ---- the trash ------------------------------------------------------------------ */

static struct event_base *base;
static char *top_dir;

/* Entries in <root>/imaged/<rel>, -1 if it cannot be read. */
static int entries(const char *rel)
{
	int fd = openat(imaged.root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	int n = 0;

	if (!d) {
		safe_close(fd);
		return -1;
	}
	while ((e = readdir(d)))
		n += !streq(e->d_name, ".") && !streq(e->d_name, "..");
	closedir(d);
	return n;
}

static bool exists_at(int dirfd, const char *rel)
{
	struct stat st;
	return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Run the loop until the trash job (and any due after it) reported. */
static void drain(void)
{
	while (trash_emptying())
		event_base_loop(base, EVLOOP_ONCE);
}

/* A tree the way layers come: nested, read-only directories and files, a
 * few MB, a symlink and a hardlink. */
static int make_tree(int dirfd, const char *name)
{
	static char chunk[1 << 20];
	int r = 0, d, fd;

	r |= mkdirat(dirfd, name, 0755);
	d = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -1;
	r |= mkdirat(d, "a", 0755) | mkdirat(d, "a/b", 0755) | mkdirat(d, "a/b/c", 0755);
	fd = openat(d, "a/b/c/big", O_WRONLY | O_CREAT | O_CLOEXEC, 0400);
	for (int i = 0; fd >= 0 && i < 4; i++)
		r |= write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk) ? 0 : -1;
	r |= fd < 0 ? -1 : close(fd);
	r |= linkat(d, "a/b/c/big", d, "a/hard", 0);
	r |= symlinkat("/etc", d, "a/etc-link");
	r |= put_file(d, "a/b/ro-file", "x\n", 0400);
	r |= fchmodat(d, "a/b", 0555, 0) | fchmodat(d, "a", 0500, 0);
	close(d);
	return r ? -1 : 0;
}

static void test_trash_move_and_empty(void)
{
	struct crisp_error err;
	int scratch = mkdir_openat(imaged.root_fd, "scratch", 0700);

	ok(scratch >= 0 && make_tree(scratch, "tree") == 0, "trash: a tree to remove");
	is_int(entries("trash"), 0, "trash: empty at first");
	is_int(trash_move(scratch, "tree", "test-tree", &err), 0, "trash: move the tree in");
	ok(!exists_at(scratch, "tree"), "trash: gone from its place at once");
	is_int(entries("trash"), 1, "trash: one entry, until a worker empties it");
	ok(trash_move(scratch, "tree", "test-tree", &err) < 0 && err.code == CRISP_E_NOT_FOUND,
	   "trash: moving what is not there: not found");
	trash_empty();
	ok(trash_emptying(), "trash: a job runs");
	drain();
	is_int(entries("trash"), 0, "trash: the worker deleted the tree, read-only parts too");

	/* A move while a job runs is picked up by one after it. */
	ok(make_tree(scratch, "t1") == 0 && make_tree(scratch, "t2") == 0, "trash: two trees");
	trash_move(scratch, "t1", "t1", &err);
	trash_empty();
	trash_move(scratch, "t2", "t2", &err);
	trash_empty();
	drain();
	is_int(entries("trash"), 0, "trash: both deleted, the one moved during the job too");
	safe_close(scratch);
}

/* Symlinks in the trash are unlinked, never followed; a mount point below
 * an entry (a bind mount on the same filesystem too) is not entered. */
static void test_trash_links_and_mounts(void)
{
	char victim[300], link_target[320], mnt[320];
	int trash_fd = openat(imaged.root_fd, "trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int v, r = 0;
	bool mounted;

	snprintf(victim, sizeof(victim), "%s/victim", top_dir);
	mkdir(victim, 0755);
	v = open(victim, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(v >= 0 && put_file(v, "keep", "precious\n", 0644) == 0, "trash: a victim outside");
	r |= mkdirat(trash_fd, "evil", 0755);
	r |= symlinkat(victim, trash_fd, "evil/dir-link");
	snprintf(link_target, sizeof(link_target), "%s/keep", victim);
	r |= symlinkat(link_target, trash_fd, "evil/file-link");
	r |= symlinkat(victim, trash_fd, "top-link");
	r |= symlinkat("../../../../../../..", trash_fd, "dotdot-link");
	ok(r == 0, "trash: symlinks to the victim planted in the trash");
	trash_empty();
	drain();
	ok(exists_at(v, "keep") && entries("trash") == 0,
	   "trash: links deleted, their targets kept");

	ok(mkdirat(trash_fd, "m", 0755) == 0 && mkdirat(trash_fd, "m/inner", 0755) == 0,
	   "trash: an entry with a directory to mount on");
	snprintf(mnt, sizeof(mnt), "%s/imaged/trash/m/inner", top_dir);
	mounted = mount(victim, mnt, "none", MS_BIND, NULL) == 0;
	ok(mounted, "trash: victim bind-mounted inside the entry (%s)",
	   mounted ? "ok" : strerror(errno));
	trash_empty();
	drain();
	ok(exists_at(v, "keep"), "trash: a mount inside is not entered: its files stay");
	is_int(entries("trash"), 1, "trash: and the entry holding it stays for later");
	if (mounted)
		umount2(mnt, MNT_DETACH);
	trash_empty();
	drain();
	is_int(entries("trash"), 0, "trash: once unmounted it goes");
	safe_close(v);
	safe_close(trash_fd);
}

static const char *C5 = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
static const char *C6 = "sha256:6666666666666666666666666666666666666666666666666666666666666666";
/* printf 'hello world\n' | sha256sum */
static const char *HELLO_SHA256 =
	"sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

static int fill_tree(int fs)
{
	return make_tree(fs, "tree");
}

/* GC: unused snapshots and blobs leave at once (record and name), their
 * data goes with the worker; never while a pull runs. */
static void test_trash_gc(void)
{
	struct store_snapshot *snap = NULL;
	struct crisp_error err;
	char name[32];
	int64_t id;

	ok(commit_with(C5, NULL, fill_tree) == 0, "gc: an unused layer");
	ok(store_snapshot_get(imaged.store, C5, &snap, &err) == 0, "gc: its record");
	id = snap ? snap->id : -1;
	store_snapshot_free(snap);
	snprintf(name, sizeof(name), "%" PRId64, id);
	ok(content_put(imaged.content, HELLO_SHA256, "hello world\n", 12, &err) == 0,
	   "gc: an unused blob");

	imaged.pulls = 1;
	images_gc();
	ok(imaged.gc_pending && exists_at(imaged.snap_fd, name) &&
		   content_exists(imaged.content, HELLO_SHA256, NULL),
	   "gc: deferred while a pull runs, nothing moved");
	imaged.pulls = 0;
	images_gc();
	ok(!imaged.gc_pending, "gc: ran");
	ok(!exists_at(imaged.snap_fd, name), "gc: the snapshot directory left snapshots/ at once");
	ok(store_snapshot_get(imaged.store, C5, &snap, &err) < 0 && err.code == CRISP_E_NOT_FOUND,
	   "gc: its record is gone");
	ok(!content_exists(imaged.content, HELLO_SHA256, NULL), "gc: the blob is not stored");
	drain();
	is_int(entries("trash"), 0, "gc: the worker emptied the trash");
	is_int(gc_snapshots(), 0, "gc: nothing left to collect");
}

/* What a crash leaves: entries in the trash, a snapshot directory whose
 * record was removed, an interrupted unpack. The next start's recovery
 * moves the latter two into the trash and a worker empties it; live
 * snapshots stay. */
static void test_trash_recover(void)
{
	int trash_fd = openat(imaged.root_fd, "trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct store_snapshot *snap = NULL;
	struct crisp_error err;
	char live[32], extract[32];
	int64_t id = -1;
	int fs = -1;

	ok(commit_with(C6, NULL, fill_tree) == 0, "recover: a live layer");
	if (store_snapshot_get(imaged.store, C6, &snap, &err) == 0)
		snprintf(live, sizeof(live), "%" PRId64, snap->id);
	store_snapshot_free(snap);
	ok(make_tree(trash_fd, "blob-sha256-0123.1.000000001.1") == 0 &&
		   make_tree(trash_fd, "snapshot-3.1.000000002.2") == 0,
	   "recover: a trash a crash left full");
	ok(mkdirat(imaged.snap_fd, "99999", 0700) == 0 &&
		   make_tree(imaged.snap_fd, "99999/fs") == 0,
	   "recover: a snapshot directory without a record");
	ok(mkdirat(imaged.snap_fd, "notanid", 0700) == 0,
	   "recover: a directory imaged never makes");
	ok(store_snapshot_put(imaged.store, "extract-x", NULL, STORE_SNAPSHOT_ACTIVE, &id, &err) ==
			   0 &&
		   (fs = snapshot_dir_create(id, &err)) >= 0 && make_tree(fs, "tree") == 0,
	   "recover: an interrupted unpack");
	snprintf(extract, sizeof(extract), "%" PRId64, id);

	snapshot_recover();
	ok(!exists_at(imaged.snap_fd, "99999") && !exists_at(imaged.snap_fd, extract),
	   "recover: the ownerless and interrupted snapshots left snapshots/");
	ok(store_snapshot_get(imaged.store, "extract-x", &snap, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "recover: the interrupted unpack's record is gone");
	ok(exists_at(imaged.snap_fd, "notanid"), "recover: what imaged does not name stays");
	trash_empty();
	drain();
	is_int(entries("trash"), 0, "recover: the worker emptied the trash");
	ok(exists_at(imaged.snap_fd, live) &&
		   store_snapshot_get(imaged.store, C6, &snap, &err) == 0,
	   "recover: the live snapshot and its record stay");
	store_snapshot_free(snap);
	if (exists_at(imaged.snap_fd, live)) {
		char path[64];
		snprintf(path, sizeof(path), "%s/fs/tree/a/b/c/big", live);
		ok(exists_at(imaged.snap_fd, path), "recover: with its files");
	}
	unlinkat(imaged.snap_fd, "notanid", AT_REMOVEDIR);
	safe_close(fs);
	safe_close(trash_fd);
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
	base = event_base_new();
	top_dir = top;
	if (!base || worker_init(base, 2, &err) < 0 || trash_open(imaged.root_fd, &err) < 0)
		return printf("Bail out! setup: %s\n", err.msg), 1;
	alarm(120); /* a trash job that never reports would hang drain() */

	ok(commit_layer(C1, NULL, "low") == 1, "layer 1 committed");
	ok(commit_layer(C2, C1, "high") == 2, "layer 2 committed over layer 1");
	test_prepare_mount_remove(top);
	test_no_layers();
	test_copy_snapshotter();
	drain();
	is_int(entries("trash"), 0, "removed containers' layers were deleted from the trash");
	test_trash_move_and_empty();
	test_trash_links_and_mounts();
	test_trash_gc();
	test_trash_recover();

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
