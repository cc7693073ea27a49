/* crispd's hold on the CRI socket: created from the config, or taken from
 * systemd socket activation, and guarded by locks so a second crispd can
 * never steal it from a running one. */
#ifndef CRISP_SUPERVISOR_LISTEN_H
#define CRISP_SUPERVISOR_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/config.h"

/* Take an exclusive lock on path (created 0600), recording our pid in it.
 * Returns the fd to keep open for our lifetime. */
int lock_acquire(const char *path, struct crisp_error *err);

/* The listening socket: LISTEN_FDS from systemd if present (*ret_activated
 * set), otherwise a fresh socket at cfg->socket with the configured mode and
 * group. Either way the fd is close-on-exec, non-blocking and above fd 9. */
int listen_setup(const struct crisp_config *cfg, gid_t group, bool *ret_activated, int *ret_lock_fd,
		 struct crisp_error *err);

#endif
