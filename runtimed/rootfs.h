/* Checks of a container's rootfs snapshot (ipc SnapshotMount), in the
 * library so that they can be unit-tested. */
#ifndef CRISP_RUNTIMED_ROOTFS_H
#define CRISP_RUNTIMED_ROOTFS_H

#include "common/error.h"
#include "ipc/ipc.pb-c.h"

/* An overlay (lowerdirs, upperdir, workdir, allowed options) or a bind
 * snapshot (upperdir only), every directory an absolute canonical path
 * under snapshots that is its own real path: 0, or -1 with err set. */
int rootfs_check(const char *snapshots, const CrispIpc__SnapshotMount *m, struct crisp_error *err);

#endif
