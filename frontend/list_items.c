/* The packed items of a CRI list answer (frontend/list_items.h). */
#include "autoconfig.h"

#include <string.h>

#include "common/util.h"
#include "frontend/list_items.h"

#define FIELD_ITEMS_TAG ((1 << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)

static size_t varint_len(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint_put(uint8_t *p, size_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Room for one more item of len bytes; returns where its bytes go (after
 * the tag and length, written here) and records where it ends. */
static uint8_t *item_reserve(struct list_items *li, size_t len)
{
	size_t field = 1 + varint_len(len) + len;
	uint8_t *p;

	if (li->len + field > li->cap) {
		li->cap = (li->len + field) * 2;
		li->buf = xrealloc(li->buf, li->cap);
	}
	if (li->n == li->ncap) {
		li->ncap = li->ncap ? li->ncap * 2 : 16;
		li->ends = xrealloc(li->ends, li->ncap * sizeof(*li->ends));
	}
	p = li->buf + li->len;
	*p++ = FIELD_ITEMS_TAG;
	p = varint_put(p, len);
	li->len += field;
	li->ends[li->n++] = li->len;
	return p;
}

void list_items_add_packed(struct list_items *li, const uint8_t *item, size_t len)
{
	uint8_t *p = item_reserve(li, len);

	if (len) /* an empty item may come as NULL */
		memcpy(p, item, len);
}

void list_items_add(struct list_items *li, const ProtobufCMessage *item)
{
	size_t len = protobuf_c_message_get_packed_size(item);

	protobuf_c_message_pack(item, item_reserve(li, len));
}

size_t list_items_start(const struct list_items *li, size_t i)
{
	return i ? li->ends[i - 1] : 0;
}

size_t list_items_chunk_end(const struct list_items *li, size_t first, size_t max)
{
	size_t start = list_items_start(li, first), end = first + 1;

	while (end < li->n && li->ends[end] - start <= max)
		end++;
	return end;
}

void list_items_free(struct list_items *li)
{
	free(li->buf);
	free(li->ends);
	*li = (struct list_items){ 0 };
}
