/* The authentication of the container snapshots imaged hands out: imaged
 * MACs each SnapshotMount it prepares, for the container it prepared it
 * for, with a key crispd gives imaged and runtimed only (SnapshotKeySet);
 * runtimed refuses to mount one whose MAC it cannot verify for the
 * container it creates. The frontend, which carries the mount between them,
 * never has the key: it cannot hand container B container A's upperdir, a
 * shared layer as an upperdir, or another image's lowerdirs. */
#ifndef CRISP_COMMON_SNAPSHOT_MAC_H
#define CRISP_COMMON_SNAPSHOT_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "ipc/ipc.pb-c.h"

#define SNAPSHOT_KEY_LEN 32
#define SNAPSHOT_MAC_LEN 32 /* HMAC-SHA256 */

/* HMAC-SHA256 under key of an unambiguous encoding of the container id and
 * every field runtimed mounts by: a domain tag, then type, the number of
 * lowerdirs and each, upperdir, workdir, the number of options and each,
 * every string preceded by its length (32 bits, big-endian). The image's
 * run config (m->image) is not covered. */
void snapshot_mac(const uint8_t key[SNAPSHOT_KEY_LEN], const char *container_id,
		  const CrispIpc__SnapshotMount *m, uint8_t out[SNAPSHOT_MAC_LEN]);

/* 0 if m->mac is the MAC of m for container_id under key (compared in
 * constant time); else -1 with CRISP_E_PERMISSION in err. A NULL key
 * (none received yet) fails too. */
int snapshot_mac_verify(const uint8_t *key, const char *container_id,
			const CrispIpc__SnapshotMount *m, struct crisp_error *err);

#endif
