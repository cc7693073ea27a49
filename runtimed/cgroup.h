/* Cgroups for runtimed: which layout the host has (v1, hybrid, v2), the
 * statistics kubelet asks for (computed the way cAdvisor and containerd's CRI
 * plugin compute them), a pod's network counters from its netns, the disk
 * usage of a writable layer, the paths runc's cgroupfs and systemd drivers
 * use, and the removal of cgroups left behind.
 *
 * cgroup.c holds the layout, the paths and the removal; cgroup_stats.c
 * the statistics, network counters, block device names and disk usage.
 *
 * Every path that comes from outside (a /proc/<pid>/cgroup line, a relpath
 * from a request) is checked before use: absolute within its hierarchy, no
 * "." or ".." component, no empty component. Every file is read with a
 * bound on its size and parsed strictly: garbage is an error that names the
 * file, never a crash or a silently wrong number. */
#ifndef CRISP_RUNTIMED_CGROUP_H
#define CRISP_RUNTIMED_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

enum cgroup_mode {
	CGROUP_V1,          /* legacy: a v1 hierarchy per controller under a tmpfs */
	CGROUP_HYBRID,      /* v1 controllers plus an empty v2 hierarchy at <root>/unified */
	CGROUP_V2,          /* unified: <root> itself is the v2 hierarchy */
	CGROUP_UNAVAILABLE, /* <root> cannot be examined (statfs failed) */
};

/* --- layout, paths and removal (cgroup.c) ------------------------------ */

/* Detect from statfs of <root> (CGROUP2_SUPER_MAGIC: v2; otherwise v1, or
 * hybrid when <root>/unified is a cgroup2 mount), as containerd does. root
 * is normally "/sys/fs/cgroup"; tests pass fake trees. */
enum cgroup_mode cgroup_detect(const char *root);
const char *cgroup_mode_name(enum cgroup_mode mode);

/* The systemd slice expansion runc's systemd driver uses:
 * "kubepods-burstable-pod1234.slice" ->
 * "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice",
 * and "-.slice" (the root slice) -> "". NULL with CRISP_E_INVALID for a name
 * without ".slice", with an empty component ("a--b.slice", "-a.slice"), a
 * '/', or characters systemd does not allow in unit names. */
char *cgroup_systemd_slice_path(const char *slice, struct crisp_error *err);

/* The path inside each hierarchy (no leading '/') of a runc cgroupsPath:
 * cgroupfs "/kubepods/pod1/abc" -> "kubepods/pod1/abc"; systemd
 * "kubepods-pod1.slice:crisp:abc" -> "kubepods.slice/kubepods-pod1.slice/
 * crisp-abc.scope" (an empty slice is system.slice; a name ending in ".slice"
 * is used as it is, as runc does). */
char *cgroup_runc_relpath(const char *cgroups_path, bool systemd, struct crisp_error *err);

/* The cgroupfs directory of relpath: <root>/<controller>/<relpath> on v1 and
 * hybrid, <root>/<relpath> on v2 (controller ignored). controller NULL on
 * hybrid names the unified hierarchy, <root>/unified/<relpath>; on v1 it is
 * an error. */
char *cgroup_dir(enum cgroup_mode mode, const char *root, const char *controller,
		 const char *relpath, struct crisp_error *err);

/* Remove an empty cgroup directory tree left behind (in every hierarchy on
 * v1 and hybrid), rmdir only, deepest first, never through a symlink;
 * ENOENT is fine. All hierarchies are tried; the first failure is reported
 * (EBUSY, a cgroup with processes: CRISP_E_PRECONDITION). relpath may not be
 * the root. */
int cgroup_remove(const char *root, const char *relpath, struct crisp_error *err);
int cgroup_remove_in(enum cgroup_mode mode, const char *root, const char *relpath,
		     struct crisp_error *err);

/* The names of the cgroups right below relpath (the union over every
 * hierarchy on v1 and hybrid), sorted, each once; never through a
 * symlink. A relpath that is nowhere has none. *ret: free each name and
 * the array. */
int cgroup_children(const char *root, const char *relpath, char ***ret, size_t *n,
		    struct crisp_error *err);
/* When relpath last changed (made, or a child cgroup made or removed
 * there): the newest st_mtime over the hierarchies that have it, in
 * seconds since the epoch, 0 when none has it. 0, or -1 with err. */
int cgroup_changed_at(const char *root, const char *relpath, int64_t *ret, struct crisp_error *err);

/* A relpath inside a hierarchy: leading '/' allowed, then components that
 * are not empty, "." or ".."; "" or "/" is the root. The normalized path
 * (no leading '/') or NULL with CRISP_E_INVALID. */
char *cgroup_relpath_clean(const char *relpath, struct crisp_error *err);

/* --- statistics (cgroup_stats.c) --------------------------------------- */

/* Devices of a cgroup's block I/O statistics kept at most: more than a
 * node has disks; the rest are left out. */
#define CGROUP_BLKIO_DEV_MAX 64

struct cgroup_blkio_dev {
	uint32_t major, minor;
	uint64_t read_bytes, write_bytes, reads, writes;
};

struct cgroup_stats {
	bool have_cpu, have_memory, have_pids;
	uint64_t cpu_usage_ns; /* cumulative */
	uint64_t memory_usage, memory_working_set, memory_rss, page_faults, major_page_faults;
	uint64_t pids;
	uint64_t oom_kills; /* v1 memory.oom_control oom_kill, v2 memory.events oom_kill */
	/* The rest of cAdvisor's numbers; each stays 0 when its file or key
	 * is missing on this kernel or cgroup version (see cgroup_stats.c). */
	uint64_t cpu_user_ns, cpu_system_ns;
	uint64_t cfs_periods, cfs_throttled_periods, cfs_throttled_ns;
	uint64_t cpu_period_us, cpu_shares;
	uint64_t memory_cache, memory_mapped_file, memory_swap, memory_kernel;
	uint64_t memory_failcnt, memory_max_usage;
	uint64_t memory_limit, memory_swap_limit; /* unlimited: as the kernel says it */
	uint64_t pids_max;                        /* 0 for "max", as cAdvisor */
	size_t n_blkio;
	struct cgroup_blkio_dev blkio[CGROUP_BLKIO_DEV_MAX];
};

/* Stats of the cgroup a process is in, found via <proc>/<pid>/cgroup (proc
 * is "/proc", tests pass a fake) under root, whose mode is detected. A
 * controller the process is not in, or that is not mounted, or whose
 * statistics files its cgroup lacks (v1 root has no pids.current, a v2
 * cgroup without the memory controller no memory.current) leaves its have_*
 * false. Errors: CRISP_E_NOT_FOUND when the process or its cgroup is gone,
 * CRISP_E_INTERNAL for files that do not parse. */
int cgroup_stats_pid(const char *root, const char *proc, pid_t pid, struct cgroup_stats *st,
		     struct crisp_error *err);
/* Stats of the PARENT of the cgroup pid is in (a pod's cgroup, from its pause
 * process). A controller in which pid sits in the root cgroup has no parent:
 * its have_* stays false. Only the summary kubelet's pod stats need: the
 * fields after oom_kills stay 0. */
int cgroup_stats_pid_parent(const char *root, const char *proc, pid_t pid, struct cgroup_stats *st,
			    struct crisp_error *err);
/* The same two with the mode given, for callers that detected it once (and
 * tests of fake v2 trees, which statfs cannot recognise). */
int cgroup_stats_pid_in(enum cgroup_mode mode, const char *root, const char *proc, pid_t pid,
			bool parent, struct cgroup_stats *st, struct crisp_error *err);
/* Stats of the cgroup at relpath (the same path in every v1 hierarchy, or
 * in the unified one), e.g. a pod cgroup known from its cgroup_parent. */
int cgroup_stats_path(enum cgroup_mode mode, const char *root, const char *relpath,
		      struct cgroup_stats *st, struct crisp_error *err);

/* Bounds on one count of open fds: a container's processes may hold
 * hundreds of thousands, each costing a readlink. Past a bound the numbers
 * are floors. */
#define CGROUP_FDS_COUNT_MAX 65536
#define CGROUP_FDS_PROCS_MAX 4096

struct cgroup_fd_limits {
	uint64_t fds;   /* fds counted at most */
	uint64_t procs; /* processes whose fds are read at most */
};

struct cgroup_fd_count {
	uint64_t fds, sockets;
	uint64_t procs; /* processes whose fd directory was read (or tried) */
	bool truncated; /* a limit stopped the count: fds and sockets are floors */
};

/* Count the open fds, and those that are sockets, of the processes listed
 * in cgroup.procs of the cgroup pid is in (v2: its unified cgroup; v1 and
 * hybrid: its pids hierarchy, else memory, else cpuacct: runc puts a
 * container's processes in the same cgroup in each), one readlink per
 * <proc>/<p>/fd entry, within lim. A process gone meanwhile has no fds.
 * This takes 0.5 s for 64k sockets: call it from a worker thread
 * (thread-safe), never the loop. Errors: as cgroup_stats_pid, and
 * CRISP_E_NOT_FOUND when no such hierarchy is mounted or the cgroup has
 * no cgroup.procs: no numbers rather than wrong ones. */
int cgroup_count_fds_pid(enum cgroup_mode mode, const char *root, const char *proc, pid_t pid,
			 const struct cgroup_fd_limits *lim, struct cgroup_fd_count *ret,
			 struct crisp_error *err);

/* One stats call's bound over the counts of several containers, left being
 * what remains of it. The limits of the next container's count: its own
 * bounds, or less when less is left (a zero: count no more). */
struct cgroup_fd_limits cgroup_fd_budget_next(const struct cgroup_fd_limits *left);
/* Take a count made within lim (from cgroup_fd_budget_next) out of left.
 * true when the count is worth keeping: false when the call's bound rather
 * than the container's own cut it short, a floor that would say more about
 * the other containers than about this one. */
bool cgroup_fd_budget_take(struct cgroup_fd_limits *left, const struct cgroup_fd_limits *lim,
			   const struct cgroup_fd_count *c);

struct netdev_stats {
	uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
	uint64_t rx_packets, rx_dropped, tx_packets, tx_dropped;
	bool found;
};
/* eth0 (or iface) counters from <proc>/<pid>/net/dev: the netns of pid.
 * found is false (and 0 returned) when the netns has no such interface. */
int netdev_stats_pid(const char *proc, pid_t pid, const char *iface, struct netdev_stats *st,
		     struct crisp_error *err);

/* Bytes and inodes used under dir (a writable layer): nftw with
 * FTW_PHYS|FTW_MOUNT, blocks*512 like du, hardlinks counted once, dir itself
 * included. Entries that vanish during the walk are skipped. A big layer
 * takes a while: call it from a worker thread (thread-safe), not the loop. */
int disk_usage(const char *dir, uint64_t *bytes, uint64_t *inodes, struct crisp_error *err);

/* "/dev/<name>" of block device major:minor, from
 * <sys>/dev/block/<major>:<minor>/uevent (sys is "/sys"; tests pass a fake),
 * into buf; "" when the device is unknown there. */
void block_device_name(const char *sys, uint32_t major, uint32_t minor, char *buf, size_t size);

/* Parsers, exposed for tests and fuzzing. text need not be NUL-terminated. */

/* v1 blkio.throttle.io_service_bytes(_recursive) (bytes true) or
 * io_serviced(_recursive) ("8:0 Read 4096" lines and a "Total N" line):
 * the Read and Write counters merged into st->blkio. */
int cgroup_parse_blkio_v1(const char *text, size_t len, bool bytes, struct cgroup_stats *st,
			  const char *what, struct crisp_error *err);
/* v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." lines) into
 * st->blkio. Keys other than those four are skipped. */
int cgroup_parse_io_stat(const char *text, size_t len, struct cgroup_stats *st, const char *what,
			 struct crisp_error *err);
/* A v2 limit file holding "max" or a number: *ret is max_value for "max". */
int cgroup_parse_limit(const char *text, size_t len, uint64_t max_value, uint64_t *ret,
		       const char *what, struct crisp_error *err);
/* v2 cpu.max ("max 100000" or "20000 100000"): the period. */
int cgroup_parse_cpu_max(const char *text, size_t len, uint64_t *period, const char *what,
			 struct crisp_error *err);
/* cpu.weight (1-10000) to the v1 shares it stands for, as cAdvisor does. */
uint64_t cgroup_weight_to_shares(uint64_t weight);

#endif
