/* What cgroup.c and cgroup_stats.c share: opening cgroup directories
 * without following symlinks, and showing a bad value in an error message.
 * Not for use outside those two files: cgroup.h is the interface. */
#ifndef CRISP_RUNTIMED_CGROUP_PRIV_H
#define CRISP_RUNTIMED_CGROUP_PRIV_H

#include <stddef.h>

#include "common/error.h"
#include "runtimed/cgroup.h"

/* Show a bad value in an error message: at most 32 bytes, controls as '?'. */
const char *cgroup_printable(const char *s, size_t n, char *buf, size_t bufsize);

/* Open rel (clean, "" for the hierarchy root) below hierfd one component at
 * a time, never following a symlink: an fd, or -errno. */
int cgroup_open_below(int hierfd, const char *rel);

/* The parent of a clean relpath; NULL for the root, which has none. */
char *cgroup_relpath_parent(const char *rel);

/* The cgroup root directory opened: an fd, or -1 with err set. */
int cgroup_open_root(const char *root, struct crisp_error *err);

/* How every call on a cgroup path starts: a hierarchy must be there,
 * relpath is cleaned (*ret_rel, malloc'd, "" for the root) and the root
 * opened: its fd, or -1 with err set (and *ret_rel NULL). */
int cgroup_open_at(enum cgroup_mode mode, const char *root, const char *relpath, char **ret_rel,
		   struct crisp_error *err);

#endif
