/* Container and sandbox events for GetContainerEvents: every state change
 * goes into a ring of the last EVENTS_KEPT events with increasing sequence
 * numbers. The frontend long-polls (EventsWait): a wait is answered at once
 * when events after its `after` exist, else parked until one arrives, or
 * answered empty shortly before the frontend's ipc timeout would fail it,
 * so it can simply ask again.
 *
 * And the other long poll, ListWait, which keeps the frontend's copy of the
 * lists honest (frontend/list_cache.c): it is answered at the first change
 * of any record a list shows after it arrived. The answer is sent from
 * inside the change, so it precedes on the channel every reply runtimed
 * sends after the change; the frontend drops its copy on the answer. */
#include "autoconfig.h"

#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "runtimed/runtimed.h"

#define EVENTS_KEPT 1024
#define EVENTS_PER_REPLY 256
#define WAITS_MAX 256
/* The frontend keeps one ListWait parked; a few more allow for a frontend
 * that reconnected while its predecessor's were still parked. */
#define LIST_WAITS_MAX 4

struct rt_event {
	uint64_t seq;
	char id[ID_LEN + 1];
	char sandbox_id[ID_LEN + 1];
	Runtime__V1__ContainerEventType type;
	int64_t created_at;
};

struct parked {
	struct parked *next;
	struct child_deferred d;
	uint64_t after;
	struct event *timer;
};

static struct rt_event ring[EVENTS_KEPT];
/* Sequence numbers start at the wall clock in microseconds, so they keep
 * growing across runtimed restarts and a frontend's `after` from before a
 * restart does not hide new events. */
static uint64_t base_seq, next_seq; /* the first, and the next, seq issued */
static struct parked *parked;
static size_t nparked;

static uint64_t first_kept(void)
{
	return next_seq - base_seq > EVENTS_KEPT ? next_seq - EVENTS_KEPT : base_seq;
}

/* Events after `after`, at most EVENTS_PER_REPLY; 0 when none. */
static void answer(const struct child_deferred *d, uint64_t after)
{
	CrispIpc__EventsWaitReply reply = CRISP_IPC__EVENTS_WAIT_REPLY__INIT;
	CrispIpc__RuntimeEvent evs[EVENTS_PER_REPLY], *ptrs[EVENTS_PER_REPLY];
	uint64_t from = after + 1 < first_kept() ? first_kept() : after + 1;
	size_t n = 0;

	for (uint64_t s = from; s < next_seq && n < EVENTS_PER_REPLY; s++, n++) {
		const struct rt_event *e = &ring[s % EVENTS_KEPT];
		crisp_ipc__runtime_event__init(&evs[n]);
		evs[n].seq = e->seq;
		evs[n].container_id = (char *)e->id;
		evs[n].sandbox_id = (char *)e->sandbox_id;
		evs[n].type = e->type;
		evs[n].created_at = e->created_at;
		ptrs[n] = &evs[n];
	}
	reply.events = ptrs;
	reply.n_events = n;
	reply.first_seq = first_kept();
	child_reply(d, &reply.base);
}

static void parked_free(struct parked *p)
{
	struct parked **pp;

	for (pp = &parked; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	nparked--;
	event_free(p->timer);
	free(p);
}

void event_emit(const char *id, const char *sandbox_id, Runtime__V1__ContainerEventType type)
{
	struct rt_event *e;

	/* An event is a change a list shows: a client that hears of it and
	 * then lists must not get the frontend's copy from before it. */
	list_changed();
	if (!base_seq)
		base_seq = next_seq = (uint64_t)(now_ns() / 1000);
	e = &ring[next_seq % EVENTS_KEPT];
	memset(e, 0, sizeof(*e));
	e->seq = next_seq++;
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->sandbox_id, sizeof(e->sandbox_id), "%s", sandbox_id);
	e->type = type;
	e->created_at = now_ns();
	while (parked) {
		struct parked *p = parked;
		answer(&p->d, p->after);
		parked_free(p);
	}
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct parked *p = arg;

	answer(&p->d, p->after);
	parked_free(p);
}

void on_events_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__EventsWaitRequest *r = (const CrispIpc__EventsWaitRequest *)req;
	unsigned timeout = rt.cfg->ipc_timeout > 4 ? rt.cfg->ipc_timeout - 2 : 2;
	struct timeval tv = { timeout, 0 };
	struct crisp_error err = { 0 };
	struct parked *p;

	if (!base_seq)
		base_seq = next_seq = (uint64_t)(now_ns() / 1000);
	if (next_seq > base_seq && r->after + 1 < next_seq) {
		struct child_deferred d;
		child_defer(msg, &d);
		answer(&d, r->after);
		return;
	}
	if (nparked >= WAITS_MAX) {
		err_set(&err, CRISP_E_RESOURCE, "more than %d event waits parked", WAITS_MAX);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	child_defer(msg, &p->d);
	p->after = r->after;
	p->timer = evtimer_new(child_base(), on_wait_timeout, p);
	evtimer_add(p->timer, &tv);
	p->next = parked;
	parked = p;
	nparked++;
}

/* --- ListWait ---------------------------------------------------------------- */

struct list_wait {
	struct child_deferred d;
	struct event *timer;
	bool used;
};

static struct list_wait list_waits[LIST_WAITS_MAX];

static void list_wait_answer(struct list_wait *w)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	event_free(w->timer);
	w->timer = NULL;
	w->used = false;
	child_reply(&w->d, &empty.base);
}

void list_changed(void)
{
	for (size_t i = 0; i < LIST_WAITS_MAX; i++)
		if (list_waits[i].used)
			list_wait_answer(&list_waits[i]);
}

static void on_list_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	list_wait_answer(arg);
}

void on_list_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	unsigned timeout = rt.cfg->ipc_timeout > 4 ? rt.cfg->ipc_timeout - 2 : 2;
	struct timeval tv = { timeout, 0 };
	struct crisp_error err = { 0 };
	struct list_wait *w = NULL;

	for (size_t i = 0; i < LIST_WAITS_MAX && !w; i++) {
		/* a slot of a frontend that is gone: nobody reads its answer */
		if (list_waits[i].used && !child_deferred_live(&list_waits[i].d))
			list_wait_answer(&list_waits[i]);
		if (!list_waits[i].used)
			w = &list_waits[i];
	}
	if (!w) {
		err_set(&err, CRISP_E_RESOURCE, "more than %d list waits parked", LIST_WAITS_MAX);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	w->used = true;
	child_defer(msg, &w->d);
	w->timer = evtimer_new(child_base(), on_list_wait_timeout, w);
	evtimer_add(w->timer, &tv);
}
