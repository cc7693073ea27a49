/* A bump allocator for protobuf messages that are unpacked, read and dropped
 * together (a helper's reply: unpack, callback, free). protobuf-c allocates
 * every string, sub-message and array of a message on its own; from an arena
 * each allocation is a pointer bump in a few big chunks, and the whole
 * message goes with one free per chunk instead of a free per field.
 *
 * Nothing unpacked into an arena may be freed on its own, stolen or kept
 * past arena_release(): protobuf_c_message_free_unpacked() must not be called
 * on it (its free is a no-op; the memory goes with the arena). */
#ifndef CRISP_IPC_ARENA_H
#define CRISP_IPC_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* What every allocation is aligned to: enough for any protobuf-c field. */
#define ARENA_ALIGN 16

struct arena_chunk;

struct arena {
	ProtobufCAllocator allocator; /* hand &a->allocator to protobuf-c */
	struct arena_chunk *chunks;   /* the one allocations come from first */
	size_t first_size;
	size_t next_size; /* of the next chunk; each one doubles it */
	size_t nchunks;
	int out_of_memory; /* a chunk could not be had */
};

/* Start an empty arena whose first chunk (allocated at the first use) holds
 * at least first_size bytes. Nothing to release until something is
 * allocated, but arena_release() is always safe, also on a zeroed one. */
void arena_init(struct arena *a, size_t first_size);
/* size bytes aligned to ARENA_ALIGN, or NULL when no memory could be had
 * (then a->out_of_memory is set). */
void *arena_alloc(struct arena *a, size_t size);
/* Free every chunk at once; a is then as after arena_init() with the same
 * first size. */
void arena_release(struct arena *a);

/* Unpack len bytes of a desc message into a, started here with a first
 * chunk sized from len. Returns NULL with a released and errno ENOMEM when
 * memory ran out, EBADMSG when the bytes are not such a message. The
 * message lives until arena_release(a). */
ProtobufCMessage *arena_unpack(struct arena *a, const ProtobufCMessageDescriptor *desc, size_t len,
			       const uint8_t *data);

#endif
