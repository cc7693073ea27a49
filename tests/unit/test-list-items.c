/* Unit tests of frontend/list_items.c: the items of a list answer, packed as
 * field 1, read back by protobuf-c as the List* response and, cut with
 * list_items_chunk_end(), as Stream* responses that hold every item once. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "frontend/list_items.h"
#include "ipc/cri-api.pb-c.h"
#include "tests/unit/tap.h"

/* n pods; pod i has a label of i * grow bytes, so sizes differ. */
static void pods_add(struct list_items *li, size_t n, size_t grow)
{
	for (size_t i = 0; i < n; i++) {
		Runtime__V1__PodSandbox pod = RUNTIME__V1__POD_SANDBOX__INIT;
		Runtime__V1__PodSandbox__LabelsEntry label =
			RUNTIME__V1__POD_SANDBOX__LABELS_ENTRY__INIT;
		Runtime__V1__PodSandbox__LabelsEntry *labels[] = { &label };
		char id[32];
		char *value = xmalloc(i * grow + 1);

		memset(value, 'v', i * grow);
		value[i * grow] = '\0';
		snprintf(id, sizeof(id), "pod-%zu", i);
		pod.id = id;
		label.key = "k";
		label.value = value;
		pod.labels = labels;
		pod.n_labels = 1;
		list_items_add(li, &pod.base);
		free(value);
	}
}

static void test_unary(void)
{
	struct list_items li = { 0 };
	Runtime__V1__ListPodSandboxResponse *r;
	bool in_order = true;

	pods_add(&li, 300, 3);
	is_int(li.n, 300, "300 items added");
	is_int(li.ends[li.n - 1], li.len, "the last item ends at the end of the buffer");
	r = runtime__v1__list_pod_sandbox_response__unpack(NULL, li.len, li.buf);
	ok(r != NULL, "the buffer is a ListPodSandboxResponse");
	if (!r)
		return list_items_free(&li);
	is_int(r->n_items, 300, "with every item");
	for (size_t i = 0; i < r->n_items; i++) {
		char id[32];

		snprintf(id, sizeof(id), "pod-%zu", i);
		in_order &= streq(r->items[i]->id, id) && r->items[i]->n_labels == 1 &&
			    strlen(r->items[i]->labels[0]->value) == i * 3;
	}
	ok(in_order, "in order, each whole");
	runtime__v1__list_pod_sandbox_response__free_unpacked(r, NULL);
	list_items_free(&li);
	is_int(li.n, 0, "free leaves the items empty");
}

static void test_packed_equals_added(void)
{
	struct list_items a = { 0 }, b = { 0 };
	Runtime__V1__Image img = RUNTIME__V1__IMAGE__INIT;
	uint8_t buf[256];
	size_t len;

	img.id = "sha256:0123";
	img.size = 1 << 20;
	len = runtime__v1__image__pack(&img, buf);
	list_items_add(&a, &img.base);
	list_items_add_packed(&b, buf, len);
	ok(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0,
	   "an item added packed is the same bytes as one packed here");
	/* an empty item is a tag and a zero length */
	list_items_add_packed(&b, NULL, 0);
	is_int(b.len - a.len, 2, "an empty item takes two bytes");
	list_items_free(&a);
	list_items_free(&b);
}

/* Cut li with max; check every message unpacks, holds at most max bytes
 * unless it is one item, and that the messages hold the items in order,
 * each once. Returns the number of messages. */
static size_t chunks_check(const struct list_items *li, size_t max, const char *what)
{
	size_t messages = 0, seen = 0, first = 0;
	bool bounded = true, whole = true;

	while (first < li->n) {
		size_t end = list_items_chunk_end(li, first, max);
		size_t start = list_items_start(li, first), len = li->ends[end - 1] - start;
		Runtime__V1__StreamPodSandboxesResponse *r;

		if (end <= first || end > li->n) {
			ok(false, "%s: chunk end %zu after %zu", what, end, first);
			return messages;
		}
		if (len > max && end - first != 1)
			bounded = false;
		/* at least as many as fit: the next item would not have */
		if (end < li->n && li->ends[end] - start <= max)
			bounded = false;
		r = runtime__v1__stream_pod_sandboxes_response__unpack(NULL, len, li->buf + start);
		if (!r || r->n_pod_sandboxes != end - first) {
			whole = false;
		} else {
			for (size_t i = 0; i < r->n_pod_sandboxes; i++) {
				char id[32];

				snprintf(id, sizeof(id), "pod-%zu", seen++);
				whole &= streq(r->pod_sandboxes[i]->id, id);
			}
		}
		if (r)
			runtime__v1__stream_pod_sandboxes_response__free_unpacked(r, NULL);
		messages++;
		first = end;
	}
	ok(bounded, "%s: each message as full as the bound allows, and within it", what);
	ok(whole && seen == li->n, "%s: the messages hold all %zu items once, in order", what,
	   li->n);
	return messages;
}

static void test_chunks(void)
{
	struct list_items li = { 0 };

	pods_add(&li, 200, 7);
	is_int(chunks_check(&li, 1, "bound 1"), 200, "bound 1: one item per message");
	is_int(chunks_check(&li, li.len, "bound = all"), 1, "a bound of the whole: one message");
	is_int(chunks_check(&li, (size_t)-1, "no bound"), 1, "no bound: one message");
	ok(chunks_check(&li, 4096, "bound 4 KiB") > 1, "bound 4 KiB: several messages");
	/* the last items are larger than the bound: each goes alone */
	is_int(chunks_check(&li, 1000, "bound 1000") > 60, 1, "bound 1000: big items alone");
	list_items_free(&li);
}

int main(void)
{
	test_unary();
	test_packed_equals_added();
	test_chunks();
	return done_testing();
}
