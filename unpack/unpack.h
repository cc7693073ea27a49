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
 * Nothing else is open but stdin, stdout and stderr (all imaged's stderr).
 *
 * Started as "crisp-unpack archive" it reads an import archive instead
 * (imaged/import.c's, through archive_reader_open()): fd 3 the same socket,
 * one UnpackRequest in, a stream of ArchiveItem datagrams out (ipc/ipc.proto),
 * fd 4 the archive, nothing else. That mode has no capability, may open no
 * file (Landlock grants nothing, seccomp has no open) and only reads fd 4
 * and writes fd 3 (unpack/archive.c). */
#ifndef CRISP_UNPACK_UNPACK_H
#define CRISP_UNPACK_UNPACK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

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
/* Archive mode: data bytes of one item, bytes of a name or link target
 * (imaged's own bound, IMPORT_MAX_PATH, is below: a longer name is cut
 * here and refused there), bytes of one datagram. */
#define UNPACK_ARCHIVE_CHUNK (64u * 1024)
#define UNPACK_ARCHIVE_NAME_MAX 4096u
#define UNPACK_ARCHIVE_MSG_MAX (UNPACK_ARCHIVE_CHUNK + 2 * UNPACK_ARCHIVE_NAME_MAX + 512)
#define UNPACK_ARCHIVE_ARG "archive"

/* unpack/sandbox.c: confine crisp-unpack before it reads a byte of the
 * layer: exactly the capabilities extraction needs, Landlock (writes only
 * beneath the snapshot directory, reads beneath it and the lower layers),
 * its seccomp filter. Fatal on failure. */
void unpack_sandbox(int n_lowers);

/* Archive mode (unpack/sandbox.c): no capability at all, first thing;
 * then Landlock granting no file access, and a seccomp filter without
 * open. Fatal on failure. */
void unpack_caps_clear(void);
void unpack_sandbox_archive(void);

/* unpack/main.c: send m to imaged as one datagram, packed into buf (cap
 * bytes; a bigger message is a bug: fatal). 0, or -1 with errno set (EPIPE:
 * imaged closed its end). */
int unpack_send(const ProtobufCMessage *m, uint8_t *buf, size_t cap);

/* unpack/archive.c: stream the archive on UNPACK_BLOB_FD to imaged; the
 * process's exit status. */
int unpack_archive_stream(unsigned pass);

#endif
