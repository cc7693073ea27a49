/* Idmapped clones (runtimed/idmap.c) and the rootfs of a container of a
 * pod with a user namespace (rootfs_mount, rootfs_umount, runtimed/rootfs.c)
 * made for real: needs root and a kernel with idmapped mounts (5.12+), and
 * skips otherwise. The user namespace is pinned the way netd pins a pod's:
 * a child unshares it, its parent writes the maps, a bind mount of
 * /proc/<child>/ns/user keeps it. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "runtimed/idmap.h"
#include "runtimed/rootfs.h"
#include "tests/unit/tap.h"

#define HOST_BASE 300000u

static char top[] = "/tmp/test-idmap-XXXXXX";
static char home[PATH_MAX];

static char *at(const char *rel)
{
	static char bufs[16][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 16];

	snprintf(b, PATH_MAX, "%s/%s", top, rel);
	return b;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		diag("writing %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* A user namespace mapping 0-65535 to HOST_BASE.., pinned at pin. */
static bool userns_pin(const char *pin)
{
	int go[2], ready[2];
	char c = 0, path[64], map[64];
	pid_t pid;
	bool ok = false;

	if (pipe(go) < 0 || pipe(ready) < 0)
		return false;
	pid = fork();
	if (pid == 0) {
		char r = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'e';

		if (write(ready[1], &r, 1) != 1 || read(go[0], &r, 1) < 0)
			_exit(1);
		_exit(0);
	}
	if (pid < 0 || read(ready[0], &c, 1) != 1 || c != 'u')
		goto out;
	snprintf(map, sizeof(map), "0 %u 65536", HOST_BASE);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	put(path, map);
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	put(path, map);
	put(pin, "");
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	ok = mount(path, pin, NULL, MS_BIND, NULL) == 0;
out:
	if (pid > 0) {
		if (write(go[1], "x", 1) != 1)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	return ok;
}

/* Whether anything is mounted at or below prefix. */
static bool mounted_under(const char *prefix)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[PATH_MAX];
	size_t n = strlen(prefix);
	bool found = false;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
		    strncmp(mp, prefix, n) == 0 && (mp[n] == '/' || mp[n] == '\0'))
			found = true;
	if (f)
		fclose(f);
	return found;
}

static uid_t owner(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_uid : (uid_t)-1;
}

/* A file created through path by a process whose fsuid/fsgid is host id:
 * what a container process of that id does. */
static bool create_as(const char *path, uid_t id)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd;

		setfsgid(id);
		setfsuid(id);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			diag("creating %s as %u: %s", path, (unsigned)id, strerror(errno));
		_exit(fd < 0 ? 1 : 0);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

static void test_host_root(void)
{
	Runtime__V1__UserNamespace u = RUNTIME__V1__USER_NAMESPACE__INIT;
	Runtime__V1__IDMapping m = RUNTIME__V1__IDMAPPING__INIT, *maps[] = { &m };
	struct crisp_error err = { 0 };
	uid_t uid = 0;
	gid_t gid = 0;

	m.host_id = 100000;
	m.length = 65536;
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	u.n_uids = u.n_gids = 1;
	u.uids = u.gids = maps;
	ok(idmap_host_root(&u, &uid, &gid, &err) == 0 && uid == 100000 && gid == 100000,
	   "container root maps to host 100000");
	m.container_id = 1;
	ok(idmap_host_root(&u, &uid, &gid, &err) < 0, "a range not starting at 0 is refused");
	like(err.msg, "must start at container id 0", "and says why");
	m.container_id = 0;
	m.host_id = 0;
	ok(idmap_host_root(&u, &uid, &gid, &err) < 0, "a root mapped to host 0 is refused");
	ok(idmap_host_root(NULL, &uid, &gid, &err) < 0, "no user namespace: refused");
}

static void test_attach(int userns)
{
	struct crisp_error err = { 0 };
	_cleanup_free_ char *vol = xstrdup(at("vol")), *bundle = xstrdup(at("b1"));

	mkdir(vol, 0755);
	put(at("vol/image-file"), "x");
	ok(chown(vol, 1000, 1000) == 0, "volume owned by 1000");
	put(at("hosts"), "127.0.0.1 localhost\n");
	mkdir(bundle, 0711); /* any pod's ids may pass, for this test */
	ok(idmap_dir_make(bundle, &err) == 0, "idmap dir made: %s", err.msg);
	ok(idmap_attach(userns, vol, at("b1/idmap/m0"), IDMAP_RECURSIVE | IDMAP_PRIVATE, &err) == 0,
	   "directory attached: %s", err.msg);
	is_int(owner(at("b1/idmap/m0/image-file")), HOST_BASE, "disk 0 is seen as host 300000");
	is_int(owner(at("b1/idmap/m0")), HOST_BASE + 1000, "disk 1000 as host 301000");
	ok(create_as(at("b1/idmap/m0/by-1000"), HOST_BASE + 1000),
	   "container uid 1000 writes through the clone");
	is_int(owner(at("vol/by-1000")), 1000, "and its file is 1000 on disk");
	ok(!create_as(at("b1/idmap/m0/by-host"), 5000), "an unmapped host uid cannot create there");
	ok(idmap_attach(userns, at("hosts"), at("b1/idmap/m1"), IDMAP_RDONLY, &err) == 0,
	   "file attached: %s", err.msg);
	is_int(owner(at("b1/idmap/m1")), HOST_BASE, "the file is seen as the pod's root's");
	ok(open(at("b1/idmap/m1"), O_WRONLY | O_CLOEXEC) < 0 && errno == EROFS,
	   "a read-only clone refuses writes");
	ok(idmap_attach(userns, at("missing"), at("b1/idmap/m2"), 0, &err) < 0 &&
		   err.code == CRISP_E_INVALID,
	   "a missing source is refused");
	ok(access(at("b1/idmap/m2"), F_OK) < 0, "and leaves no mount point");
	ok(idmap_attach(userns, vol, at("b1/idmap/m0"), 0, &err) < 0,
	   "an existing target is refused");
	ok(idmap_attach(-1, vol, at("b1/idmap/m3"), 0, &err) < 0,
	   "a bad user namespace fd is refused");
	ok(access(at("b1/idmap/m3"), F_OK) < 0, "and leaves nothing");
	/* a snapshot path must not have become a link to a host directory */
	ok(symlink(vol, at("vol-link")) == 0, "a symlink to the volume");
	ok(idmap_attach(userns, at("vol-link"), at("b1/idmap/m4"), IDMAP_NO_SYMLINKS, &err) < 0,
	   "IDMAP_NO_SYMLINKS refuses a source that is a symlink: %s", err.msg);
	ok(access(at("b1/idmap/m4"), F_OK) < 0, "and leaves nothing");
	err_clear(&err);
	ok(idmap_attach(userns, vol, at("b1/idmap/m4"), IDMAP_NO_SYMLINKS, &err) == 0,
	   "IDMAP_NO_SYMLINKS takes a plain path: %s", err.msg);
	ok(mounted_under(bundle), "clones are mounted under the bundle");
	err_clear(&err);
	ok(idmap_detach_all(bundle, &err) == 0, "detach all: %s", err.msg);
	ok(!mounted_under(bundle), "nothing is mounted under the bundle any more");
	ok(access(at("b1/idmap"), F_OK) < 0, "the idmap directory is gone");
	ok(idmap_detach_all(bundle, &err) == 0, "detach all again: nothing to do");
	rmdir(bundle);
}

static void test_rootfs(int userns)
{
	CrispIpc__SnapshotMount m = CRISP_IPC__SNAPSHOT_MOUNT__INIT;
	struct rootfs_userns u = { .userns_fd = userns,
				   .root_uid = HOST_BASE,
				   .root_gid = HOST_BASE };
	struct crisp_error err = { 0 };
	_cleanup_free_ char *l0 = xstrdup(at("snaps/l0")), *l1 = xstrdup(at("snaps/l1"));
	_cleanup_free_ char *none = xstrdup(at("snaps/none")), *bundle = xstrdup(at("b2"));
	_cleanup_free_ char *upper = xstrdup(at("snaps/up")), *work = xstrdup(at("snaps/work"));
	_cleanup_free_ char *snaps = xstrdup(at("snaps"));
	char *lowers[] = { l0, l1 };

	m.type = "overlay";
	m.n_lowerdirs = 2;
	m.lowerdirs = lowers;
	m.upperdir = upper;
	m.workdir = work;
	mkdir(snaps, 0711);
	mkdir(lowers[0], 0755);
	mkdir(lowers[1], 0755);
	mkdir(m.upperdir, 0755);
	mkdir(m.workdir, 0700);
	mkdir(at("snaps/l1/etc"), 0755);
	put(at("snaps/l1/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
	mkdir(bundle, 0711);
	ok(rootfs_mount(snaps, home, bundle, &m, &u, &err) == 0, "overlay mounted: %s", err.msg);
	is_int(owner(at("snaps/up")), HOST_BASE, "the upperdir is the pod root's");
	is_int(owner(at("snaps/work")), HOST_BASE, "so is the workdir");
	is_int(owner(at("b2/rootfs/etc/passwd")), HOST_BASE, "an image file is the pod root's");
	ok(create_as(at("b2/rootfs/new"), HOST_BASE), "the pod's root writes to /");
	is_int(owner(at("snaps/up/new")), HOST_BASE, "its file lands in the upper as host 300000");
	ok(mounted_under(at("b2/idmap")), "the lowerdirs' clones are mounted");
	rootfs_umount(bundle);
	ok(!mounted_under(bundle), "rootfs_umount leaves nothing mounted");

	/* A lowerdir that cannot be cloned: the clones made before go too. */
	lowers[1] = none;
	ok(rootfs_mount(snaps, home, bundle, &m, &u, &err) < 0, "a missing lowerdir fails");
	ok(!mounted_under(bundle), "and leaves nothing mounted");
	lowers[1] = l1;

	/* A copy snapshot is the image's files, 0-owned. */
	rmdir(at("b2/rootfs"));
	ok(chown(upper, 0, 0) == 0, "the copy snapshot is 0-owned");
	m.type = "bind";
	m.n_lowerdirs = 0;
	m.workdir = NULL;
	ok(rootfs_mount(snaps, home, bundle, &m, &u, &err) == 0, "bind rootfs mounted: %s",
	   err.msg);
	ok(create_as(at("b2/rootfs/bound"), HOST_BASE), "the pod's root writes to it");
	is_int(owner(at("snaps/up/bound")), 0, "its file is 0 on disk, as on a volume");
	rootfs_umount(bundle);
	ok(!mounted_under(bundle), "unmounted");
}

int main(void)
{
	int userns = -1;

	if (geteuid() != 0) {
		ok(true, "# SKIP needs root");
		return done_testing();
	}
	/* 0711: the pod's ids must pass through it, as through runtimed's
	 * bundles. */
	if (!mkdtemp(top) || chmod(top, 0711) < 0 || !getcwd(home, sizeof(home)))
		return ok(false, "temporary directory"), done_testing();
	test_host_root();
	if (!userns_pin(at("pin")) || (userns = open(at("pin"), O_RDONLY | O_CLOEXEC)) < 0) {
		ok(true, "# SKIP no user namespace could be made here");
	} else {
		test_attach(userns);
		test_rootfs(userns);
	}
	if (userns >= 0)
		close(userns);
	umount2(at("pin"), MNT_DETACH);
	if (!mounted_under(top)) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
		if (system(cmd) != 0)
			diag("could not remove %s", top);
	}
	return done_testing();
}
