/* The rootfs snapshot checks (runtimed/rootfs.c) against a real directory
 * tree: overlay and bind ("copy") snapshots are accepted only with clean,
 * canonical paths under imaged's snapshots directory. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtimed/rootfs.h"
#include "tests/unit/tap.h"

static char top[] = "/tmp/test-rootfs-XXXXXX";
static char snaps[PATH_MAX / 2]; /* room for a name below it in at() */

static char *at(const char *rel)
{
	static char bufs[8][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", snaps, rel);
	return b;
}

static int check(const CrispIpc__SnapshotMount *m, struct crisp_error *err)
{
	err_clear(err);
	return rootfs_check(snaps, m, err);
}

static void test_bind(void)
{
	CrispIpc__SnapshotMount m = CRISP_IPC__SNAPSHOT_MOUNT__INIT;
	struct crisp_error err = { 0 };
	char *lower[] = { at("l1") }, *opts[] = { "userxattr" };

	m.type = "bind";
	m.upperdir = at("copy");
	ok(check(&m, &err) == 0, "a bind snapshot under snapshots: %s", err.msg);

	m.upperdir = at("copy/");
	ok(check(&m, &err) < 0, "a trailing slash is refused: %s", err.msg);
	m.upperdir = at("l1/../copy");
	ok(check(&m, &err) < 0, "'..' is refused: %s", err.msg);
	m.upperdir = at("link");
	ok(check(&m, &err) < 0, "a symlink is refused: %s", err.msg);
	m.upperdir = at("missing");
	ok(check(&m, &err) < 0, "a missing directory is refused: %s", err.msg);
	m.upperdir = "/etc";
	ok(check(&m, &err) < 0, "a directory outside snapshots is refused: %s", err.msg);
	m.upperdir = snaps;
	ok(check(&m, &err) < 0, "the snapshots directory itself is refused: %s", err.msg);
	m.upperdir = "";
	ok(check(&m, &err) < 0, "an empty upperdir is refused: %s", err.msg);

	m.upperdir = at("copy");
	m.lowerdirs = lower;
	m.n_lowerdirs = 1;
	ok(check(&m, &err) < 0, "a bind snapshot with lowerdirs is refused: %s", err.msg);
	m.n_lowerdirs = 0;
	m.workdir = at("work");
	ok(check(&m, &err) < 0, "a bind snapshot with a workdir is refused: %s", err.msg);
	m.workdir = "";
	m.options = opts;
	m.n_options = 1;
	ok(check(&m, &err) < 0, "a bind snapshot with options is refused: %s", err.msg);
}

static void test_overlay(void)
{
	CrispIpc__SnapshotMount m = CRISP_IPC__SNAPSHOT_MOUNT__INIT;
	struct crisp_error err = { 0 };
	char *lower[] = { at("l1"), at("l2") }, *opts[] = { "userxattr" },
	     *bad_opts[] = { "xino=on" };
	char *bad_lower[] = { at("l1"), at("link") };

	m.type = "overlay";
	m.lowerdirs = lower;
	m.n_lowerdirs = 2;
	m.upperdir = at("upper");
	m.workdir = at("work");
	m.options = opts;
	m.n_options = 1;
	ok(check(&m, &err) == 0, "an overlay snapshot: %s", err.msg);

	m.options = bad_opts;
	ok(check(&m, &err) < 0, "an option not allowed is refused: %s", err.msg);
	m.n_options = 0;
	m.lowerdirs = bad_lower;
	ok(check(&m, &err) < 0, "a symlinked lowerdir is refused: %s", err.msg);
	m.n_lowerdirs = 0;
	ok(check(&m, &err) < 0, "no lowerdir is refused: %s", err.msg);
	m.lowerdirs = lower;
	m.n_lowerdirs = 2;
	m.workdir = "";
	ok(check(&m, &err) < 0, "no workdir is refused: %s", err.msg);

	m.type = "tmpfs";
	ok(check(&m, &err) < 0, "another type is refused: %s", err.msg);
	ok(check(NULL, &err) < 0, "no snapshot is refused: %s", err.msg);
}

int main(void)
{
	static const char *const dirs[] = { "copy", "l1", "l2", "upper", "work" };
	bool made = mkdtemp(top) != NULL;
	char *real;

	/* Canonical: /tmp may itself be a symlink somewhere. */
	real = made ? realpath(top, NULL) : NULL;
	snprintf(snaps, sizeof(snaps), "%s/snapshots", real ? real : top);
	free(real);
	made = made && mkdir(snaps, 0700) == 0;
	for (size_t i = 0; made && i < ARRAY_SIZE(dirs); i++)
		made = mkdir(at(dirs[i]), 0700) == 0;
	made = made && symlink(at("copy"), at("link")) == 0;
	if (!ok(made, "test tree under %s", top))
		return done_testing();

	test_bind();
	test_overlay();

	unlink(at("link"));
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		rmdir(at(dirs[i]));
	rmdir(snaps);
	rmdir(top);
	return done_testing();
}
