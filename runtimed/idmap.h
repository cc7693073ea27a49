/* Idmapped mounts for the containers of a pod with a user namespace of its
 * own (hostUsers: false). runc 1.1 has no idmapped mounts in its spec, so
 * runtimed makes them: an idmapped clone of a host directory or file
 * (open_tree(OPEN_TREE_CLONE), mount_setattr(MOUNT_ATTR_IDMAP) with the
 * pod's user namespace, move_mount), attached under the container's bundle
 * at <bundle>/idmap/<name>, where the overlay takes its lowerdirs from and
 * runc binds the container's volumes and pod files from. Through such a
 * clone, a file the disk says is owned by id k is seen as the host id that
 * container id k maps to, and a process of the container writes its own
 * container ids to the disk (docs/PRIVSEP.md, "Known gaps" 18). */
#ifndef CRISP_RUNTIMED_IDMAP_H
#define CRISP_RUNTIMED_IDMAP_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "ipc/cri-api.pb-c.h"

/* Below the bundle: every mount point under it is an idmapped clone. */
#define IDMAP_DIR "idmap"

enum idmap_flags {
	IDMAP_RECURSIVE = 1 << 0, /* the mounts under source too (an rbind) */
	IDMAP_RDONLY = 1 << 1,    /* the clone read-only, and all its submounts */
	IDMAP_PRIVATE = 1 << 2,   /* no propagation with source's peers (rprivate) */
	IDMAP_NODEV = 1 << 3,     /* device nodes on it do not open */
	/* source resolved with no symlink at all (openat2
	 * RESOLVE_NO_SYMLINKS): a snapshot path, checked to be its own real
	 * path, that imaged's directory must not swap for a link meanwhile */
	IDMAP_NO_SYMLINKS = 1 << 4,
};

/* The pod's user namespace options when it has one of its own (mode POD),
 * else NULL. */
const Runtime__V1__UserNamespace *idmap_pod_userns(const Runtime__V1__PodSandboxConfig *c);

/* The host uid and gid of the container's root (container id 0) in the
 * pod's mappings: 0, or -1 with err when the mappings do not hold id 0. */
int idmap_host_root(const Runtime__V1__UserNamespace *u, uid_t *ret_uid, gid_t *ret_gid,
		    struct crisp_error *err);

/* Attaches at target (which must not exist; made a directory or an empty
 * file after source's type) an idmapped clone of source, a host path
 * (symlinks followed, as runc does for a bind source), mapped through the
 * user namespace userns_fd. 0, or -1 with err and nothing left mounted. */
int idmap_attach(int userns_fd, const char *source, const char *target, unsigned flags,
		 struct crisp_error *err);

/* <bundle>/idmap, made 0711 (runc, running as the pod's root, must pass
 * through it to bind what is there): 0, or -1 with err. */
int idmap_dir_make(const char *bundle, struct crisp_error *err);

/* Detaches whatever is mounted at each entry of <bundle>/idmap (stacked
 * mounts too, with everything under them) and removes the entries and the
 * directory: runtimed's rm_rf never crosses a mount. 0 (also when there is
 * no such directory), or -1 with err naming the first that stayed. */
int idmap_detach_all(const char *bundle, struct crisp_error *err);

/* spec_mounts.c: every bind mount of the generated spec (all of them name a
 * host path: CRI mounts, the pod's files and /dev/shm) is replaced by an
 * idmapped clone of its source at <bundle>/idmap/m<index>, recursive when
 * the mount is an rbind, private when it is rprivate; runc binds the clone
 * with the mount's own options. 0, or -1 with err (what was attached stays,
 * for idmap_detach_all). */
int spec_mounts_idmap(json_t *spec, const char *bundle, int userns_fd, struct crisp_error *err);

#endif
