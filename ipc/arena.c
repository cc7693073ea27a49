#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ipc/arena.h"

struct arena_chunk {
	struct arena_chunk *next;
	uint8_t *cur; /* the first byte not handed out */
	uint8_t *end;
	/* the bytes follow */
};

/* Below this a chunk is not worth a malloc of its own. */
#define ARENA_MIN_CHUNK 256

static void *arena_pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

/* protobuf-c frees what it allocated for scanning and, on bad input, the
 * half-built message: all of it goes with the arena. */
static void arena_pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

void arena_init(struct arena *a, size_t first_size)
{
	a->allocator.alloc = arena_pb_alloc;
	a->allocator.free = arena_pb_free;
	a->allocator.allocator_data = a;
	a->chunks = NULL;
	a->nchunks = 0;
	a->first_size = first_size < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : first_size;
	a->next_size = a->first_size;
	a->out_of_memory = 0;
}

static uint8_t *align_up(uint8_t *p)
{
	return p + (ARENA_ALIGN - (uintptr_t)p % ARENA_ALIGN) % ARENA_ALIGN;
}

static bool chunk_fits(const struct arena_chunk *c, size_t size)
{
	uint8_t *p = align_up(c->cur);

	return p <= c->end && (size_t)(c->end - p) >= size;
}

/* A chunk of capacity bytes, whatever the alignment of malloc's. */
static struct arena_chunk *chunk_new(size_t capacity)
{
	struct arena_chunk *c;

	if (capacity > SIZE_MAX - sizeof(*c) - ARENA_ALIGN)
		return NULL;
	c = malloc(sizeof(*c) + ARENA_ALIGN + capacity);
	if (!c)
		return NULL;
	c->next = NULL;
	c->cur = (uint8_t *)(c + 1);
	c->end = c->cur + ARENA_ALIGN + capacity;
	return c;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->chunks;
	uint8_t *p;

	if (!c || !chunk_fits(c, size)) {
		if (size > a->next_size) {
			/* One allocation bigger than a chunk gets a chunk of its
			 * own, kept behind the current one, which still has room
			 * for the small ones to come. */
			c = chunk_new(size);
			if (!c)
				goto oom;
			if (a->chunks) {
				c->next = a->chunks->next;
				a->chunks->next = c;
			} else {
				a->chunks = c;
			}
		} else {
			c = chunk_new(a->next_size);
			if (!c)
				goto oom;
			c->next = a->chunks;
			a->chunks = c;
			if (a->next_size <= SIZE_MAX / 4)
				a->next_size *= 2;
		}
		a->nchunks++;
	}
	p = align_up(c->cur);
	c->cur = p + size;
	return p;
oom:
	a->out_of_memory = 1;
	return NULL;
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->chunks;

	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->chunks = NULL;
	a->nchunks = 0;
	a->next_size = a->first_size;
	a->out_of_memory = 0;
}

/* The unpacked form of a list reply takes about twice its packed bytes:
 * struct fields, a pointer per repeated item, a NUL and alignment per
 * string. Rarely more than one more chunk then. */
static size_t first_chunk_for(size_t len)
{
	if (len > (SIZE_MAX - ARENA_MIN_CHUNK) / 2)
		return SIZE_MAX / 4;
	return 2 * len + ARENA_MIN_CHUNK;
}

ProtobufCMessage *arena_unpack(struct arena *a, const ProtobufCMessageDescriptor *desc, size_t len,
			       const uint8_t *data)
{
	ProtobufCMessage *m;

	arena_init(a, first_chunk_for(len));
	m = protobuf_c_message_unpack(desc, &a->allocator, len, data);
	if (!m) {
		errno = a->out_of_memory ? ENOMEM : EBADMSG;
		arena_release(a);
	}
	return m;
}
