/* crisp-unpack: one image layer into one snapshot directory, in a child of
 * imaged of its own (imaged/unpack_client.c starts it, unpack/main.c is
 * the program). How the two meet:
 *
 *   fd 3  a SOCK_SEQPACKET socket: one UnpackRequest (ipc/ipc.proto) in,
 *         one UnpackReply out, then crisp-unpack exits
 *   fd 4  the layer blob, read-only, at offset 0
 *   fd 5  the empty snapshot directory to fill
 *   fd 6  and on: the directories of the layers below, topmost first
 *
 * Nothing else is open but stdin, stdout and stderr (all imaged's stderr). */
#ifndef CRISP_UNPACK_UNPACK_H
#define CRISP_UNPACK_UNPACK_H

#define UNPACK_NAME "crisp-unpack"
#define UNPACK_SOCK_FD 3
#define UNPACK_BLOB_FD 4
#define UNPACK_ROOT_FD 5
#define UNPACK_LOWER_FD 6
/* Layers below one layer, at most: an image has at most
 * MANIFEST_MAX_LAYERS (256) layers. */
#define UNPACK_MAX_LOWERS 255
/* Bytes of one datagram either way. */
#define UNPACK_MSG_MAX 4096

/* unpack/sandbox.c: confine crisp-unpack before it reads a byte of the
 * layer: exactly the capabilities extraction needs, Landlock (writes only
 * beneath the snapshot directory, reads beneath it and the lower layers),
 * its seccomp filter. Fatal on failure. */
void unpack_sandbox(int n_lowers);

#endif
