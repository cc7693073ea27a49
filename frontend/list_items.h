/* The items of a CRI list answer, packed once. Every List* response and
 * every Stream* response is `repeated Item items = 1;` and nothing else, so
 * an answer is the items as field 1, one after the other: the same bytes
 * make one unary message, or are cut between items into stream messages.
 * Pure (no gRPC, no loop): tests/unit/test-list-items.c checks it. */
#ifndef CRISP_FRONTEND_LIST_ITEMS_H
#define CRISP_FRONTEND_LIST_ITEMS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct list_items {
	uint8_t *buf; /* each item as field 1: tag, length, bytes */
	size_t len, cap;
	size_t *ends; /* ends[i]: where item i's field ends in buf */
	size_t n, ncap;
};

/* Add an item packed already (len bytes of the item's message). */
void list_items_add_packed(struct list_items *li, const uint8_t *item, size_t len);
/* Add an item, packing it here. */
void list_items_add(struct list_items *li, const ProtobufCMessage *item);
/* Where item i's field starts in buf. */
size_t list_items_start(const struct list_items *li, size_t i);
/* The index after the last item of the message that starts with item
 * first: as many items as fit in max bytes, and at least one even if it
 * alone is larger. first < li->n. */
size_t list_items_chunk_end(const struct list_items *li, size_t first, size_t max);
void list_items_free(struct list_items *li);

#endif
