/* The two systemd protocols crispd speaks, socket activation (LISTEN_FDS)
 * and readiness notification (NOTIFY_SOCKET), in our own few lines instead
 * of libsystemd: libsystemd would load its compression and crypto libraries
 * (liblzma among them) into the root supervisor that holds every
 * capability. Both protocols are stable and documented for reimplementation
 * in sd_listen_fds(3) and sd_notify(3). */
#ifndef CRISP_SUPERVISOR_SYSTEMD_H
#define CRISP_SUPERVISOR_SYSTEMD_H

#include "common/error.h"

/* The first fd systemd passes (SD_LISTEN_FDS_START). */
#define SYSTEMD_LISTEN_FDS_START 3

/* The number of fds systemd passed us at SYSTEMD_LISTEN_FDS_START onwards
 * (0 when not socket activated, or when LISTEN_PID names another process),
 * made close-on-exec; or -1 with err set when LISTEN_PID or LISTEN_FDS is
 * malformed or names an fd that is not open. Either way LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES are removed from the environment, so no
 * child sees them. */
int systemd_listen_fds(struct crisp_error *err);

/* 0 if fd is a listening AF_UNIX stream socket; -1 with err saying what it
 * is instead. */
int systemd_check_unix_listener(int fd, struct crisp_error *err);

/* Read NOTIFY_SOCKET once, keep its address and remove it from the
 * environment, so that no child can talk to systemd in our name. An address
 * we cannot use (not an absolute path or an '@' abstract name, or too long)
 * is logged once and notifications are then skipped. */
void systemd_notify_init(void);

/* Send state ("READY=1", "STOPPING=1") to the address systemd_notify_init
 * found, as one datagram. Nothing happens without one; a failed send is
 * logged, never fatal: systemd's own daemons carry on too. */
void systemd_notify(const char *state);

#endif
