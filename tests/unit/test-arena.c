/* Unit tests of ipc/arena.c: alignment, chunk growth, an allocation bigger
 * than any chunk, running out of memory, and real protobuf messages
 * unpacked through it (what ipc.c and the frontend's fetches do). */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/util.h"
#include "ipc/arena.h"
#include "ipc/ipc.pb-c.h"
#include "tests/unit/tap.h"

static bool aligned(const void *p)
{
	return (uintptr_t)p % ARENA_ALIGN == 0;
}

static void test_alignment(void)
{
	struct arena a;
	bool all_aligned = true;

	arena_init(&a, 0);
	/* odd sizes, so that a careless bump would drift off alignment */
	for (size_t size = 0; size < 100; size++)
		all_aligned &= aligned(arena_alloc(&a, size));
	ok(all_aligned, "every allocation is %d-byte aligned", ARENA_ALIGN);
	arena_release(&a);
	is_int(a.nchunks, 0, "release frees every chunk");
}

static void test_growth(void)
{
	struct arena a;
	uint8_t *p[200];
	bool intact = true;

	arena_init(&a, 300);
	for (size_t i = 0; i < ARRAY_SIZE(p); i++) {
		p[i] = arena_alloc(&a, 40);
		memset(p[i], (int)i, 40);
	}
	/* 200 x 48 bytes from 300, 600, 1200, 2400, 4800 */
	ok(a.nchunks >= 4 && a.nchunks <= 6, "chunks double: %zu for 9600 bytes from 300",
	   a.nchunks);
	ok(a.next_size == (size_t)300 << a.nchunks, "next chunk is 300 << %zu, %zu", a.nchunks,
	   a.next_size);
	for (size_t i = 0; i < ARRAY_SIZE(p); i++)
		for (size_t j = 0; j < 40; j++)
			intact &= p[i][j] == (uint8_t)i;
	ok(intact, "no two allocations overlap");
	arena_release(&a);
	is_int(a.next_size, 300, "release starts again from the first size");
	p[0] = arena_alloc(&a, 16);
	ok(p[0] && aligned(p[0]) && a.nchunks == 1, "an arena is usable after release");
	arena_release(&a);
}

static void test_big(void)
{
	struct arena a;
	size_t next;
	uint8_t *small1, *big, *small2;

	arena_init(&a, 256);
	small1 = arena_alloc(&a, 32);
	next = a.next_size;
	big = arena_alloc(&a, 10 << 20);
	ok(big && aligned(big), "a 10 MiB allocation from 256-byte chunks");
	memset(big, 0xab, 10 << 20);
	ok(big[0] == 0xab && big[(10 << 20) - 1] == 0xab, "all of it is usable");
	is_int(a.nchunks, 2, "it has a chunk of its own");
	is_int(a.next_size, next, "which does not grow the next chunk");
	small2 = arena_alloc(&a, 32);
	ok(small2 == small1 + 32, "small ones still come from the chunk before it");
	is_int(a.nchunks, 2, "without a new chunk");
	ok(!arena_alloc(&a, SIZE_MAX - 8) && a.out_of_memory,
	   "an allocation that cannot be had is NULL and marks the arena");
	arena_release(&a);
}

/* A ContainerListReply like runtimed's, n containers with labels. */
static uint8_t *list_packed(size_t n, size_t *ret_len)
{
	CrispIpc__ContainerListReply reply = CRISP_IPC__CONTAINER_LIST_REPLY__INIT;
	CrispIpc__ContainerInfo *infos = calloc(n, sizeof(*infos));
	CrispIpc__ContainerInfo **list = calloc(n, sizeof(*list));
	Runtime__V1__ContainerConfig *cfgs = calloc(n, sizeof(*cfgs));
	Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
	Runtime__V1__ContainerConfig__LabelsEntry l1 =
		RUNTIME__V1__CONTAINER_CONFIG__LABELS_ENTRY__INIT;
	Runtime__V1__ContainerConfig__LabelsEntry l2 =
		RUNTIME__V1__CONTAINER_CONFIG__LABELS_ENTRY__INIT;
	Runtime__V1__ContainerConfig__LabelsEntry *labels[] = { &l1, &l2 };
	char ids[64][65];
	uint8_t *buf;

	md.name = (char *)"web";
	md.attempt = 3;
	l1.key = (char *)"io.kubernetes.pod.name";
	l1.value = (char *)"nginx-7f8d9c";
	l2.key = (char *)"app";
	l2.value = (char *)"nginx";
	for (size_t i = 0; i < n; i++) {
		crisp_ipc__container_info__init(&infos[i]);
		runtime__v1__container_config__init(&cfgs[i]);
		snprintf(ids[i % 64], sizeof(ids[0]), "%064zx", i);
		infos[i].id = ids[i % 64];
		infos[i].state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
		infos[i].created_at = (int64_t)i * 1000000007;
		cfgs[i].metadata = &md;
		cfgs[i].n_labels = ARRAY_SIZE(labels);
		cfgs[i].labels = labels;
		infos[i].config = &cfgs[i];
		list[i] = &infos[i];
	}
	reply.n_containers = n;
	reply.containers = list;
	*ret_len = crisp_ipc__container_list_reply__get_packed_size(&reply);
	buf = malloc(*ret_len);
	crisp_ipc__container_list_reply__pack(&reply, buf);
	free(infos);
	free(list);
	free(cfgs);
	return buf;
}

static void test_unpack(void)
{
	struct arena a;
	size_t len, len2;
	uint8_t *buf = list_packed(50, &len), *again;
	CrispIpc__ContainerListReply *r;
	bool all_aligned = true;

	r = (CrispIpc__ContainerListReply *)arena_unpack(
		&a, &crisp_ipc__container_list_reply__descriptor, len, buf);
	ok(r != NULL, "a 50-container list (%zu bytes) unpacks through an arena", len);
	if (!r)
		return (void)free(buf);
	is_int(r->n_containers, 50, "all 50 of them");
	is_str(r->containers[49]->config->labels[0]->value, "nginx-7f8d9c", "their labels");
	is_int(r->containers[7]->config->metadata->attempt, 3, "their metadata");
	for (size_t i = 0; i < r->n_containers; i++)
		all_aligned &= aligned(r->containers[i]) && aligned(r->containers[i]->config) &&
			       aligned(r->containers[i]->id);
	ok(all_aligned, "every part of it is aligned");
	len2 = crisp_ipc__container_list_reply__get_packed_size(r);
	again = malloc(len2);
	crisp_ipc__container_list_reply__pack(r, again);
	ok(len2 == len && memcmp(again, buf, len) == 0, "it packs back to the same bytes");
	ok(a.nchunks >= 1 && a.nchunks <= 3, "in %zu chunks", a.nchunks);
	free(again);
	arena_release(&a);

	/* a cut message: protobuf-c fails, and the arena is already gone */
	errno = 0;
	r = (CrispIpc__ContainerListReply *)arena_unpack(
		&a, &crisp_ipc__container_list_reply__descriptor, len - 3, buf);
	ok(!r && errno == EBADMSG && a.nchunks == 0, "a truncated one fails as EBADMSG");
	free(buf);
}

/* Memory running out while unpacking: the unpack fails cleanly (NULL,
 * ENOMEM, nothing held), it does not abort. ASan's allocator aborts on a
 * failed malloc by default, so this runs only without it. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

static void test_out_of_memory(void)
{
#if defined(UNDER_ASAN)
	ok(true, "# SKIP out of memory: AddressSanitizer aborts on it");
#else
	struct arena a;
	struct rlimit old, low;
	size_t len;
	uint8_t *buf = list_packed(20000, &len); /* a first chunk of ~6 MiB */
	ProtobufCMessage *m;
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld", &pages) != 1 || getrlimit(RLIMIT_AS, &old) < 0) {
		ok(false, "cannot read this process's size or limit");
		if (f)
			fclose(f);
		return free(buf);
	}
	fclose(f);
	/* room for small things, not for the first chunk */
	low = old;
	low.rlim_cur = (rlim_t)pages * 4096 + (1 << 20);
	if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < low.rlim_cur)
		low.rlim_cur = old.rlim_cur;
	errno = 0;
	if (setrlimit(RLIMIT_AS, &low) < 0) {
		ok(false, "setrlimit: %s", strerror(errno));
		return free(buf);
	}
	m = arena_unpack(&a, &crisp_ipc__container_list_reply__descriptor, len, buf);
	int saved = errno;
	setrlimit(RLIMIT_AS, &old);
	ok(!m && saved == ENOMEM && a.nchunks == 0,
	   "no memory for a %zu-byte message: NULL, ENOMEM, nothing held (%s)", len,
	   strerror(saved));
	free(buf);
#endif
}

int main(void)
{
	test_alignment();
	test_growth();
	test_big();
	test_unpack();
	test_out_of_memory();
	return done_testing();
}
