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
