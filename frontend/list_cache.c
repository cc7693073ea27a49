/* The frontend's copy of runtimed's pod and container lists, so that
 * ListPodSandbox and ListContainers, which the kubelet asks every second,
 * are answered without a round trip to runtimed and without unpacking and
 * packing every record again. Their Stream* twins are answered from it
 * too, with the same items cut into several messages.
 *
 * Why the copy is never older than what runtimed would answer: one ListWait
 * (ipc.proto) stays parked in runtimed, which answers it from inside the
 * first change to a record after it arrived, so the answer precedes on the
 * channel every reply runtimed sends after that change. runtimed handles
 * the channel's requests in order, so a list fetched after the wait was
 * sent, whose reply arrives while that wait is still unanswered, is what
 * runtimed holds until the wait's answer comes; the answer drops the copy
 * and the next list fetches again. Replies of other calls (a StopContainer,
 * a ContainerStatus saying EXITED, an event) come after that answer, so no
 * client sees the copy contradict what crisp told it.
 *
 * The copy is an index the frontend can rebuild at any time (DESIGN.md): it
 * is dropped with the runtimed channel, on any error, and at every answer
 * to the wait, which runtimed also gives shortly before the ipc timeout. */
#include "autoconfig.h"

#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "frontend/cri_methods.h"
#include "frontend/orch.h"
#include "ipc/arena.h"
#include "ipc/msg.h"

/* A packed CRI item: where it is in the copy's buffer, and its record. */
struct list_entry {
	const ProtobufCMessage *record;
	size_t off, len;
};

struct list_copy {
	struct arena arena; /* the records, unpacked from runtimed's reply */
	struct list_entry *entries;
	size_t n;
	uint8_t *packed; /* the CRI items, packed one after the other */
	size_t packed_len;
};

struct fetch_ctx {
	struct list_kind *kind;
	struct rpc *rpc;
	uint64_t wait_seq; /* the wait parked when this was sent; 0: none */
};

static struct {
	bool waiting;      /* a ListWait is parked in runtimed */
	uint64_t wait_seq; /* bumped with every ListWait sent */
	struct list_kind *kinds[4];
	size_t nkinds;
	uint64_t hits, fetches; /* for the debug log */
} lc;

static void copy_free(struct list_copy *c)
{
	if (!c)
		return;
	arena_release(&c->arena);
	free(c->entries);
	free(c->packed);
	free(c);
}

static void copies_drop(void)
{
	for (size_t i = 0; i < lc.nkinds; i++) {
		copy_free(lc.kinds[i]->copy);
		lc.kinds[i]->copy = NULL;
	}
}

static void on_list_wait(ProtobufCMessage *reply, struct ipc_msg *msg,
			 const struct crisp_error *err, void *arg)
{
	/* A channel that closed fails its calls before a new one exists, so
	 * an answer is always the current wait's; the check is cheap. */
	if ((uint64_t)(uintptr_t)arg != lc.wait_seq)
		return;
	lc.waiting = false;
	copies_drop();
	if (err)
		log_debug("list copy: ListWait: %s", err->msg);
	/* The next list parks the next wait: no list, no need for one. */
}

static void wait_park(void)
{
	CrispIpc__ListWaitRequest req = CRISP_IPC__LIST_WAIT_REQUEST__INIT;

	if (lc.waiting)
		return;
	lc.waiting = true;
	lc.wait_seq++;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_LIST_WAIT, &req.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_list_wait,
		    (void *)(uintptr_t)lc.wait_seq);
}

/* Fill c with the CRI item of every record of reply, packed back to back.
 * The entries point to the records: c lives no longer than reply. */
static void copy_fill(struct list_copy *c, const struct list_kind *k, const ProtobufCMessage *reply)
{
	size_t n = k->count(reply), cap = 0;
	struct pool p = { 0 };

	c->entries = xcalloc(n + 1, sizeof(*c->entries));
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessage *record = k->record(reply, i);
		const ProtobufCMessage *item = k->item(&p, record);
		size_t len = protobuf_c_message_get_packed_size(item);

		if (c->packed_len + len > cap) {
			cap = (c->packed_len + len) * 2;
			c->packed = xrealloc(c->packed, cap);
		}
		protobuf_c_message_pack(item, c->packed + c->packed_len);
		c->entries[c->n++] = (struct list_entry){ record, c->packed_len, len };
		c->packed_len += len;
	}
	pool_free(&p);
}

/* Every item the request's filter shows, as one message or a stream. */
static void answer(const struct list_kind *k, const struct list_copy *c, struct rpc *rpc)
{
	struct list_items items = { 0 };

	for (size_t i = 0; i < c->n; i++) {
		const struct list_entry *e = &c->entries[i];

		if (k->shown(e->record, rpc))
			list_items_add_packed(&items, c->packed + e->off, e->len);
	}
	cri_reply_list(rpc, &items);
}

static void on_fetched(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		       void *arg)
{
	struct fetch_ctx *f = arg;
	struct list_kind *k = f->kind;
	struct list_copy once = { 0 }, *c;

	if (err) {
		cri_fail(f->rpc, err);
		free(f);
		return;
	}
	/* Current until the wait parked before it was sent is answered. The
	 * reply's own memory goes with this callback: the copy that is kept
	 * unpacks it again into an arena of its own. */
	if (f->wait_seq && lc.waiting && f->wait_seq == lc.wait_seq) {
		ProtobufCMessage *own;

		c = xcalloc(1, sizeof(*c));
		own = arena_unpack(&c->arena, k->reply_desc, msg->len, msg->data);
		if (own) {
			copy_fill(c, k, own);
			copy_free(k->copy);
			k->copy = c;
			answer(k, c, f->rpc);
			free(f);
			return;
		}
		/* out of memory: answer without keeping a copy */
		free(c);
	}
	copy_fill(&once, k, reply);
	answer(k, &once, f->rpc);
	free(once.entries);
	free(once.packed);
	free(f);
}

void list_answer(struct list_kind *k, struct rpc *rpc)
{
	struct fetch_ctx *f;
	size_t i;

	for (i = 0; i < lc.nkinds && lc.kinds[i] != k; i++)
		;
	if (i == lc.nkinds) {
		if (lc.nkinds == ARRAY_SIZE(lc.kinds))
			fatal("bug: more list kinds than %zu", ARRAY_SIZE(lc.kinds));
		lc.kinds[lc.nkinds++] = k;
	}
	if (k->copy && lc.waiting) {
		lc.hits++;
		answer(k, k->copy, rpc);
		return;
	}
	/* The wait goes out first, so that this list may be kept. */
	wait_park();
	lc.fetches++;
	log_debug("list copy: fetching %s (%llu answered from the copy, %llu fetched)", k->name,
		  (unsigned long long)lc.hits, (unsigned long long)lc.fetches);
	f = xcalloc(1, sizeof(*f));
	f->kind = k;
	f->rpc = rpc;
	f->wait_seq = lc.waiting ? lc.wait_seq : 0;
	helper_call(HELPER_RUNTIMED, k->ipc_type, k->request(), k->reply_desc, 0, on_fetched, f);
}
