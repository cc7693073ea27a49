/* What the host offers spec generation (struct spec_host), found once at
 * start while runtimed still has every capability and its full bounding set,
 * and the host look-ups spec generation asks for (struct spec_ops): device
 * nodes for CRI devices and privileged containers, Localhost seccomp
 * profiles. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/log.h"
#include "runtimed/cgroup.h"
#include "runtimed/runtimed.h"

#define HOST_DEVICES_MAX 4096

static char node_hostname[256];

static int dev_fill(const char *path, const struct stat *st, struct spec_device *ret,
		    struct crisp_error *err)
{
	if (!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode))
		return err_set(err, CRISP_E_INVALID, "%s is not a device node", path);
	ret->type = S_ISCHR(st->st_mode) ? 'c' : 'b';
	ret->major = major(st->st_rdev);
	ret->minor = minor(st->st_rdev);
	ret->file_mode = st->st_mode & 07777;
	ret->uid = st->st_uid;
	ret->gid = st->st_gid;
	return 0;
}

static int op_device(void *ctx, const char *host_path, struct spec_device *ret,
		     struct crisp_error *err)
{
	struct stat st;

	if (!host_path || host_path[0] != '/' || strstr(host_path, "/../"))
		return err_set(err, CRISP_E_INVALID, "device path '%.200s' is not clean",
			       host_path ? host_path : "");
	if (stat(host_path, &st) < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL,
				     errno, "device %s", host_path);
	ret->path = NULL;
	return dev_fill(host_path, &st, ret, err);
}

static void walk_dev(const char *dir, int depth, struct spec_device **list, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) && *n < HOST_DEVICES_MAX) {
		_cleanup_free_ char *p = NULL;
		struct stat st;
		struct crisp_error err = { 0 };

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		/* containerd leaves these out of a privileged container */
		if (streq(p, "/dev/pts") || streq(p, "/dev/shm") || streq(p, "/dev/mqueue") ||
		    streq(p, "/dev/console"))
			continue;
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 4)
				walk_dev(p, depth + 1, list, n);
			continue;
		}
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			continue;
		*list = xrealloc(*list, (*n + 1) * sizeof(**list));
		memset(&(*list)[*n], 0, sizeof(**list));
		if (dev_fill(p, &st, &(*list)[*n], &err) == 0)
			(*list)[(*n)++].path = TAKE_PTR(p);
	}
	closedir(d);
}

static int op_host_devices(void *ctx, struct spec_device **ret, size_t *ret_n,
			   struct crisp_error *err)
{
	struct spec_device *list = NULL;
	size_t n = 0;

	walk_dev("/dev", 0, &list, &n);
	*ret = list;
	*ret_n = n;
	return 0;
}

static int op_read_file(void *ctx, const char *root, const char *relpath, size_t max, char **ret,
			struct crisp_error *err)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;

	if (rootfd < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL,
				     errno, "%s", root);
	fd = (int)syscall(SYS_openat2, rootfd, relpath, &how, sizeof(how));
	if (fd < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INVALID,
				     errno, "%s/%s", root, relpath);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(err, CRISP_E_INVALID, "%s/%s is not a regular file", root, relpath);
	buf = xmalloc(max + 2);
	while ((n = read(fd, buf + len, max + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > max)
			return err_set(err, CRISP_E_INVALID, "%s/%s is larger than %zu bytes", root,
				       relpath, max);
	}
	if (n < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "reading %s/%s", root, relpath);
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static const struct spec_ops ops = {
	.device = op_device,
	.host_devices = op_host_devices,
	.read_file = op_read_file,
};

/* Containers' RLIMIT_NOFILE, set explicitly rather than inherited from
 * runtimed through runc: containerd's default (soft = hard = 1048576),
 * lowered to our hard limit where that is lower, so runc never has to
 * raise a limit beyond what the node grants its runtime. Read before the
 * privilege drop, which lowers our own limit. */
#define CONTAINER_NOFILE_DEFAULT 1048576u

static uint64_t container_nofile(void)
{
	struct rlimit rl;
	_cleanup_free_ char *nr_open = read_file("/proc/sys/fs/nr_open", 64, NULL, NULL);
	uint64_t v = CONTAINER_NOFILE_DEFAULT, kernel_max;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		fatal("runtimed: getrlimit(RLIMIT_NOFILE): %m");
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v)
		v = rl.rlim_max;
	/* No process may have more than fs.nr_open: runc's setrlimit would fail. */
	if (nr_open && sscanf(nr_open, "%" SCNu64, &kernel_max) == 1 && kernel_max < v)
		v = kernel_max;
	return v;
}

/* Pods with a user namespace of their own (hostUsers: false) need
 * idmapped mounts (runtimed/idmap.c) of the image layers, on the
 * filesystem of root_dir, and of volumes, /etc/hosts and the like and the
 * pod's /dev/shm, on tmpfs among others: idmapped mounts came with 5.12
 * (ext4, xfs), btrfs 5.15, overlayfs over idmapped layers 5.19, tmpfs 6.3.
 * What the kernel and root_dir's filesystem say, without trying: a volume
 * on a filesystem without them (NFS, say) fails its container's creation
 * with the kernel's error. */
static bool userns_supported(const struct crisp_config *cfg, int major_, int minor_, char *why,
			     size_t whylen)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} fs[] = {
		{ EXT4_SUPER_MAGIC, "ext4" },   { XFS_SUPER_MAGIC, "xfs" },
		{ BTRFS_SUPER_MAGIC, "btrfs" }, { TMPFS_MAGIC, "tmpfs" },
		{ F2FS_SUPER_MAGIC, "f2fs" },
	};
	struct statfs sf;

#ifdef CRISP_TEST_HOOKS
	/* Test hook: "1" on, "0" off, whatever the host
	 * (tests/integration/test_userns*.py). */
	const char *hook = getenv("CRISP_TEST_USERNS");
	if (hook && (streq(hook, "1") || streq(hook, "0"))) {
		snprintf(why, whylen, "%s (test hook)", streq(hook, "1") ? "yes" : "no");
		return streq(hook, "1");
	}
#endif
	if (major_ < 6 || (major_ == 6 && minor_ < 3)) {
		snprintf(why, whylen, "no (the kernel is older than 6.3)");
		return false;
	}
	if (statfs(cfg->root_dir, &sf) < 0) {
		snprintf(why, whylen, "no (statfs %s: %s)", cfg->root_dir, strerror(errno));
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fs); i++)
		if ((unsigned long)sf.f_type == fs[i].magic) {
			snprintf(why, whylen, "yes (images on %s)", fs[i].name);
			return true;
		}
	snprintf(why, whylen, "no (%s is on a filesystem without idmapped mounts here)",
		 cfg->root_dir);
	return false;
}

void host_detect(struct crisp_config *cfg)
{
	char userns_why[256];
	enum cgroup_mode mode = cgroup_detect(CGROUP_ROOT);
	struct utsname u;
	int major_ = 0, minor_ = 0;
	_cleanup_free_ char *aa = read_file("/sys/module/apparmor/parameters/enabled", 64, NULL,
					    NULL);
	_cleanup_free_ char *status = read_file("/proc/self/status", 65536, NULL, NULL);
	char *bnd;

	rt.host.cgroup_v2 = mode == CGROUP_V2;
	rt.host.systemd_cgroup = cfg->cgroup_driver == CGROUP_DRIVER_SYSTEMD;
	rt.host.apparmor = aa && aa[0] == 'Y';
	/* What libselinux's is_selinux_enabled() looks at: selinuxfs mounted. */
	rt.host.selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
	rt.host.rro_mounts = uname(&u) == 0 && sscanf(u.release, "%d.%d", &major_, &minor_) == 2 &&
			     (major_ > 5 || (major_ == 5 && minor_ >= 12));
	rt.host.user_namespaces = userns_supported(cfg, major_, minor_, userns_why,
						   sizeof(userns_why));
	rt.host.oom_score_adj_min = INT32_MIN;
	if (config_restrict_oom(cfg)) {
		_cleanup_free_ char *adj = read_file("/proc/self/oom_score_adj", 64, NULL, NULL);
		int v;
		if (adj && sscanf(adj, "%d", &v) == 1)
			rt.host.oom_score_adj_min = v;
	}
	/* Read before the privilege drop shrinks our own bounding set. */
	bnd = status ? strstr(status, "\nCapBnd:") : NULL;
	if (!bnd || sscanf(bnd + 8, "%" SCNx64, &rt.host.cap_bounding) != 1)
		fatal("runtimed: cannot read CapBnd from /proc/self/status");
	rt.host.seccomp_root = cfg->seccomp_profile_root;
	rt.host.rlimit_nofile = container_nofile();
	rt.host.swap_accounting =
		rt.host.cgroup_v2
			? access(CGROUP_ROOT "/system.slice/memory.swap.max", F_OK) == 0 ||
				  access(CGROUP_ROOT "/init.scope/memory.swap.max", F_OK) == 0
			: access(CGROUP_ROOT "/memory/memory.memsw.limit_in_bytes", F_OK) == 0;
	if (gethostname(node_hostname, sizeof(node_hostname) - 1) == 0)
		rt.host.node_hostname = node_hostname;
	rt.host.ops = &ops;
	log_info("host: cgroup %s (%s driver), apparmor %s, selinux %s, rro mounts %s, "
		 "user namespaces %s, "
		 "swap accounting %s, containers' RLIMIT_NOFILE %llu, oom_score_adj min %s%d",
		 cgroup_mode_name(mode), rt.host.systemd_cgroup ? "systemd" : "cgroupfs",
		 rt.host.apparmor ? "yes" : "no",
		 rt.host.selinux ? "yes (SELinux labels are refused)"
				 : "no (SELinux labels are ignored)",
		 rt.host.rro_mounts ? "yes" : "no", userns_why,
		 rt.host.swap_accounting ? "yes" : "no", (unsigned long long)rt.host.rlimit_nofile,
		 rt.host.oom_score_adj_min == INT32_MIN ? "none " : "",
		 rt.host.oom_score_adj_min == INT32_MIN ? 0 : rt.host.oom_score_adj_min);
}
