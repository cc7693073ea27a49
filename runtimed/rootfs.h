/* A container's rootfs snapshot (ipc SnapshotMount): its checks, and its
 * mount at <bundle>/rootfs, in the library so that they can be tested. */
#ifndef CRISP_RUNTIMED_ROOTFS_H
#define CRISP_RUNTIMED_ROOTFS_H

#include <sys/types.h>

#include "common/error.h"
#include "ipc/ipc.pb-c.h"

/* An overlay (lowerdirs, upperdir, workdir, allowed options) or a bind
 * snapshot (upperdir only), every directory an absolute canonical path
 * under snapshots that is its own real path: 0, or -1 with err set. */
int rootfs_check(const char *snapshots, const CrispIpc__SnapshotMount *m, struct crisp_error *err);

/* The pod's user namespace, for the containers of a pod that has one:
 * userns_fd -1 for every other pod. */
struct rootfs_userns {
	int userns_fd;
	uid_t root_uid; /* the host ids of the container's root */
	gid_t root_gid;
};

/* Mounts the checked snapshot m at <bundle>/rootfs, nodev. An overlay's
 * paths are given relative to a directory runtimed changes into for the
 * mount (the mount data is one page), and home is where it goes back to.
 * With a user namespace: an overlay gets idmapped clones of its lowerdirs
 * (<bundle>/idmap/l<N>) and its upperdir and workdir owned by the pod's
 * root; a bind snapshot is an idmapped clone of its directory. 0, or -1
 * with err and nothing left mounted. */
int rootfs_mount(const char *snapshots, const char *home, const char *bundle,
		 const CrispIpc__SnapshotMount *m, const struct rootfs_userns *u,
		 struct crisp_error *err);

/* Unmounts <bundle>/rootfs and every idmapped clone under the bundle;
 * what stays mounted is logged. */
void rootfs_umount(const char *bundle);

#endif
