/* Container and sandbox events for GetContainerEvents: every state change
 * goes into a ring of the last EVENTS_KEPT events with increasing sequence
 * numbers. The frontend long-polls (EventsWait): a wait is answered at once
 * when events after its `after` exist, else parked until one arrives, or
 * answered empty shortly before the frontend's ipc timeout would fail it,
 * so it can simply ask again. */
#include "autoconfig.h"

#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "runtimed/runtimed.h"

#define EVENTS_KEPT 1024
#define EVENTS_PER_REPLY 256
#define WAITS_MAX 256

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
