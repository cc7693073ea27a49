/* How a CRI list answer goes out. The List* method and its Stream* twin
 * (KEP-5825, kubelet feature gate CRIListStreaming) produce the same items
 * the same way; only this differs: one unary message, or a stream of
 * messages cut between items, then OK. A unary answer over the message
 * limit would fail in gRPC with nothing telling the client what to do: it
 * is refused here, naming the size and the Stream* method. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "frontend/cri_methods.h"
#include "frontend/list_items.h"

/* Each stream message carries at most this many bytes of items (one item
 * larger than that goes alone). 1 MiB is far below the kubelet's 16 MiB
 * limit and below gRPC's 4 MiB default that other clients (crictl, tools
 * built on grpc-go) keep; a node's whole pod list is a few MiB at most, so
 * that is a handful of messages, each cheap to copy and to hold. */
#define LIST_CHUNK_MAX (1u << 20)

/* Messages of one stream queued or in flight at once. The rest waits in
 * the items (the stream's own copy) and is queued as messages go out, so
 * a list of any length holds at most this many copies of a chunk besides
 * its items, and never fills the call's queue (RPC_STREAM_QUEUE_MAX). Two
 * would do to keep the transport busy; four absorbs the loop's latency. */
#define STREAM_WINDOW 4

_Static_assert(STREAM_WINDOW <= RPC_STREAM_QUEUE_MAX, "the window must fit the call's queue");

struct list_stream {
	struct rpc *rpc;
	struct list_items items;
	size_t next;        /* the first item not queued yet */
	size_t outstanding; /* messages queued or in flight */
	size_t chunk_max;
	size_t messages; /* for the debug log */
};

/* A bound, or in test builds the one the environment variable sets below
 * it: the tests make many messages from a few pods, and refuse an answer
 * over the limit without making 16 MiB of pods. */
static size_t bound(const char *test_variable, size_t bound)
{
#ifdef CRISP_TEST_HOOKS
	const char *v = getenv(test_variable);
	uint64_t n;

	if (v && parse_uint64(v, 10, bound, &n) == 0 && n > 0)
		return (size_t)n;
#else
	(void)test_variable;
#endif
	return bound;
}

/* The bound on one message's items, and on a unary answer. */
static size_t chunk_max(void)
{
	return bound("CRISP_TEST_LIST_CHUNK_MAX", LIST_CHUNK_MAX);
}

static size_t unary_max(void)
{
	return bound("CRISP_TEST_LIST_MESSAGE_MAX", RPC_MESSAGE_MAX);
}

/* The Stream* twin of a List* method, for the error message. */
static const char *stream_twin(const char *list_method)
{
	static const char *const twins[][2] = {
		{ "ListPodSandbox", "StreamPodSandboxes" },
		{ "ListContainers", "StreamContainers" },
		{ "ListContainerStats", "StreamContainerStats" },
		{ "ListPodSandboxStats", "StreamPodSandboxStats" },
		{ "ListPodSandboxMetrics", "StreamPodSandboxMetrics" },
		{ "ListImages", "StreamImages" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(twins); i++)
		if (streq(twins[i][0], list_method))
			return twins[i][1];
	return "the Stream* method";
}

static void stream_free(struct list_stream *s)
{
	s->rpc->on_cancel = NULL;
	s->rpc->on_sent = NULL;
	list_items_free(&s->items);
	free(s);
}

/* Queue messages until the window is full or every item is queued; the
 * call ends once they are, after what it queued has gone out. */
static void stream_fill(struct list_stream *s)
{
	struct rpc *rpc = s->rpc;

	while (s->outstanding < STREAM_WINDOW && s->next < s->items.n) {
		size_t end = list_items_chunk_end(&s->items, s->next, s->chunk_max);
		size_t start = list_items_start(&s->items, s->next);

		/* The window is below the queue's bound and the call is ours
		 * until we finish it: a refusal is a bug, not a slow client. */
		if (rpc_send(rpc, s->items.buf + start, s->items.ends[end - 1] - start) < 0) {
			log_crit("bug: %s: a stream message was refused", rpc->method->name);
			stream_free(s);
			return cri_failf(rpc, CRISP_E_INTERNAL, "internal error");
		}
		s->outstanding++;
		s->messages++;
		s->next = end;
	}
	if (s->next < s->items.n)
		return;
	log_debug("%s from pid %d: %zu items in %zu messages", rpc->method->name,
		  (int)rpc->peer.pid, s->items.n, s->messages);
	stream_free(s);
	cri_stream_end(rpc);
}

static void on_stream_sent(struct rpc *rpc, void *arg)
{
	struct list_stream *s = arg;

	s->outstanding--;
	stream_fill(s);
}

static void on_stream_cancel(struct rpc *rpc, void *arg)
{
	struct list_stream *s = arg;

	log_debug("%s from pid %d: the client went away after %zu of %zu items", rpc->method->name,
		  (int)rpc->peer.pid, s->next, s->items.n);
	stream_free(s);
	rpc_finish(rpc, GRPC_STATUS_CANCELLED, "the client went away", NULL);
}

void cri_reply_list(struct rpc *rpc, struct list_items *items)
{
	struct list_stream *s;

	if (!(rpc->method->flags & CRI_STREAMING)) {
		if (items->len > unary_max())
			cri_failf(rpc, CRISP_E_RESOURCE,
				  "the answer is %zu bytes (%zu items), over the %zu-byte message "
				  "limit: %s sends the same items split over several messages",
				  items->len, items->n, unary_max(),
				  stream_twin(rpc->method->name));
		else /* an empty list is an empty message */
			cri_reply_packed(rpc, items->buf ? items->buf : (const uint8_t *)"",
					 items->len);
		list_items_free(items);
		return;
	}
	/* The client may have gone while the items were fetched: nobody
	 * would tell the stream then. */
	if (rpc_client_gone(rpc)) {
		log_debug("%s from pid %d: the client went away before the answer",
			  rpc->method->name, (int)rpc->peer.pid);
		list_items_free(items);
		return rpc_finish(rpc, GRPC_STATUS_CANCELLED, "the client went away", NULL);
	}
	/* An empty list is no message at all: the CRI's lists "of at least
	 * one item" leave nothing to send, and the stream ends OK at once. */
	s = xcalloc(1, sizeof(*s));
	s->rpc = rpc;
	s->items = *items;
	*items = (struct list_items){ 0 };
	s->chunk_max = chunk_max();
	rpc->on_cancel = on_stream_cancel;
	rpc->cancel_arg = s;
	rpc->on_sent = on_stream_sent;
	rpc->sent_arg = s;
	stream_fill(s);
}
