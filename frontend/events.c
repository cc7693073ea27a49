/* GetContainerEvents: one long poll to runtimed (EVENTS_WAIT) runs while at
 * least one client subscribes; each event is looked up (the pod's record,
 * its containers, its network), packed once, and queued on every
 * subscriber's stream. A subscriber that stops reading fills its bounded
 * queue and is dropped with RESOURCE_EXHAUSTED instead of holding memory
 * for ever. Subscribers see events created after they subscribed. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "common/log.h"
#include "frontend/cri_methods.h"
#include "frontend/orch.h"

#define RETRY_MS 1000     /* after runtimed failed a poll */
#define EMPTY_POLL_MS 100 /* after a poll answered with nothing new */
#define BACKLOG_MAX 4096  /* events waiting for their lookups */

struct subscriber {
	struct rpc *rpc;
	int64_t since_ns;
	LIST_ENTRY(subscriber) entry;
};

struct pending_event {
	char *container_id, *sandbox_id;
	Runtime__V1__ContainerEventType type;
	int64_t created_at;
	TAILQ_ENTRY(pending_event) entry;
};

static struct {
	struct event_base *base;
	struct event *timer;
	LIST_HEAD(, subscriber) subs;
	size_t nsubs;
	bool polling, looking_up;
	uint64_t after;  /* last sequence number taken from runtimed */
	int64_t last_ns; /* created_at of the last event delivered */
	char last_id[CRI_ID_LEN + 1];
	int last_type;
	TAILQ_HEAD(, pending_event) backlog;
	size_t nbacklog;
} ev;

static void poll_start(void);
static void lookup_next(void);

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pending_free(struct pending_event *p)
{
	free(p->container_id);
	free(p->sandbox_id);
	free(p);
}

static void sub_drop(struct subscriber *s, grpc_status_code code, const char *msg)
{
	LIST_REMOVE(s, entry);
	ev.nsubs--;
	s->rpc->on_cancel = NULL;
	rpc_finish(s->rpc, code, msg, NULL);
	free(s);
}

static void on_sub_cancel(struct rpc *rpc, void *arg)
{
	sub_drop(arg, GRPC_STATUS_CANCELLED, "the client went away");
}

/* ---- fan-out ----------------------------------------------------------------- */

static void fan_out(const struct pending_event *pe, const CrispIpc__SandboxInfo *sb,
		    const CrispIpc__ContainerListReply *cl, const CrispIpc__PodNetwork *net)
{
	Runtime__V1__ContainerEventResponse resp = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	Runtime__V1__PodSandboxStatus gone = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	struct subscriber *s, *next;
	struct pool p = { 0 };
	uint8_t *buf;
	size_t len;

	resp.container_id = pe->container_id;
	resp.container_event_type = pe->type;
	resp.created_at = pe->created_at;
	if (sb) {
		resp.pod_sandbox_status = pod_status_build(&p, sb, net);
	} else {
		/* The pod is gone already (a DELETED event): its id is all
		 * there is to say. */
		gone.id = pe->sandbox_id;
		gone.state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		resp.pod_sandbox_status = &gone;
	}
	resp.containers_statuses = container_statuses_build(&p, cl, &resp.n_containers_statuses);
	len = protobuf_c_message_get_packed_size(&resp.base);
	buf = pool_alloc(&p, len);
	protobuf_c_message_pack(&resp.base, buf);
	for (s = LIST_FIRST(&ev.subs); s; s = next) {
		next = LIST_NEXT(s, entry);
		if (pe->created_at < s->since_ns)
			continue;
		if (rpc_send(s->rpc, buf, len) < 0) {
			log_warn("GetContainerEvents from pid %d: client does not keep up (%d "
				 "events queued); dropping it",
				 (int)s->rpc->peer.pid, RPC_STREAM_QUEUE_MAX);
			sub_drop(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
				 "too many events queued: the client does not read them fast "
				 "enough; subscribe again");
		}
	}
	pool_free(&p);
}

static void on_event_view(const CrispIpc__SandboxInfo *sb, const CrispIpc__ContainerListReply *cl,
			  const CrispIpc__PodNetwork *net, const struct crisp_error *err, void *arg)
{
	struct pending_event *pe = arg;

	if (err && err->code != CRISP_E_NOT_FOUND)
		log_debug("event for %s: looking up its pod: %s", pe->container_id, err->msg);
	fan_out(pe, err ? NULL : sb, err ? NULL : cl, err ? NULL : net);
	pending_free(pe);
	ev.looking_up = false;
	lookup_next();
}

/* Events go out one at a time, in order. */
static void lookup_next(void)
{
	struct pending_event *pe;

	if (ev.looking_up || !(pe = TAILQ_FIRST(&ev.backlog)))
		return;
	TAILQ_REMOVE(&ev.backlog, pe, entry);
	ev.nbacklog--;
	if (!ev.nsubs) {
		pending_free(pe);
		return lookup_next();
	}
	ev.looking_up = true;
	pod_view_get(pe->sandbox_id, on_event_view, pe);
}

/* ---- the long poll ------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	poll_start();
}

static void poll_later(unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev.timer, &tv);
}

static bool already_delivered(const CrispIpc__RuntimeEvent *e)
{
	/* After runtimed restarted the poll starts over from sequence 0:
	 * what was delivered before is recognised by its time. */
	if (e->created_at < ev.last_ns)
		return true;
	return e->created_at == ev.last_ns && streq(e->container_id, ev.last_id) &&
	       (int)e->type == ev.last_type;
}

/* The oldest subscription: events before it interest nobody. */
static int64_t oldest_since(void)
{
	int64_t since = INT64_MAX;
	struct subscriber *s;

	LIST_FOREACH (s, &ev.subs, entry)
		if (s->since_ns < since)
			since = s->since_ns;
	return since;
}

static void on_wait(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		    void *arg)
{
	const CrispIpc__EventsWaitReply *r = (const CrispIpc__EventsWaitReply *)reply;
	uint64_t before = ev.after;
	int64_t since = oldest_since();

	ev.polling = false;
	if (err) {
		if (ev.nsubs)
			log_info("GetContainerEvents: waiting for runtimed's events: %s; retrying",
				 err->msg);
		ev.after = 0;
		if (ev.nsubs)
			poll_later(RETRY_MS);
		return;
	}
	if (r->first_seq > ev.after + 1 && ev.after)
		log_warn("GetContainerEvents: runtimed no longer has events %llu to %llu: "
			 "subscribers missed them",
			 (unsigned long long)ev.after + 1, (unsigned long long)r->first_seq - 1);
	for (size_t i = 0; i < r->n_events; i++) {
		const CrispIpc__RuntimeEvent *e = r->events[i];
		struct pending_event *pe;

		if (e->seq > ev.after)
			ev.after = e->seq;
		if (e->created_at < since || already_delivered(e) || !cri_id_valid(e->sandbox_id))
			continue;
		if (ev.nbacklog >= BACKLOG_MAX) {
			log_warn("GetContainerEvents: %d events wait for delivery; dropping one",
				 BACKLOG_MAX);
			continue;
		}
		ev.last_ns = e->created_at;
		snprintf(ev.last_id, sizeof(ev.last_id), "%s", e->container_id);
		ev.last_type = (int)e->type;
		pe = xcalloc(1, sizeof(*pe));
		pe->container_id = xstrdup(e->container_id);
		pe->sandbox_id = xstrdup(e->sandbox_id);
		pe->type = e->type;
		pe->created_at = e->created_at;
		TAILQ_INSERT_TAIL(&ev.backlog, pe, entry);
		ev.nbacklog++;
	}
	lookup_next();
	if (!ev.nsubs)
		return;
	if (ev.after == before)
		poll_later(EMPTY_POLL_MS);
	else
		poll_start();
}

static void poll_start(void)
{
	CrispIpc__EventsWaitRequest req = CRISP_IPC__EVENTS_WAIT_REQUEST__INIT;

	if (ev.polling || !ev.nsubs)
		return;
	ev.polling = true;
	req.after = ev.after;
	/* A long poll: runtimed answers when there is something to say, and
	 * the channel closing ends it. */
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_EVENTS_WAIT, &req.base,
		    &crisp_ipc__events_wait_reply__descriptor, HELPER_NO_TIMEOUT, on_wait, NULL);
}

void events_init(struct event_base *base)
{
	ev.base = base;
	ev.timer = evtimer_new(base, on_timer, NULL);
	LIST_INIT(&ev.subs);
	TAILQ_INIT(&ev.backlog);
}

void cri_get_container_events(struct rpc *rpc)
{
	struct subscriber *s = xcalloc(1, sizeof(*s));

	s->rpc = rpc;
	s->since_ns = realtime_ns();
	rpc->on_cancel = on_sub_cancel;
	rpc->cancel_arg = s;
	LIST_INSERT_HEAD(&ev.subs, s, entry);
	ev.nsubs++;
	rpc_stream_start(rpc);
	log_debug("GetContainerEvents: pid %d subscribes (%zu subscribers)", (int)rpc->peer.pid,
		  ev.nsubs);
	if (!evtimer_pending(ev.timer, NULL))
		poll_start();
}
