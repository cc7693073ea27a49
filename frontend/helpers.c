/* Channels to the helpers, and crispd's view of every process. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include "common/log.h"
#include "frontend/frontend.h"
#include "frontend/grpc_server.h"
#include "frontend/helpers.h"
#include "frontend/orch.h"
#include "ipc/child.h"

#define MAX_PROCS 16

struct proc_info {
	char *name, *state, *last_exit, *version;
	int pid;
	uint32_t restarts;
	int64_t started_at;
};

/* A call made while its helper's channel is still saying hello (the helper
 * just started): it waits for the channel, a little. */
struct waiting_call {
	TAILQ_ENTRY(waiting_call) entry;
	struct helper *h;
	uint16_t type;
	const ProtobufCMessageDescriptor *req_desc, *reply_desc;
	uint8_t *req; /* packed: the caller's message is gone when it returns */
	size_t len;
	unsigned reply_nfds, timeout_ms;
	ipc_reply_fn fn;
	void *arg;
	struct event *timer;
};
TAILQ_HEAD(waiting_calls, waiting_call);

/* How long a call waits for a channel that is connecting, and how many may. */
#define CONNECT_WAIT_MS 5000
#define CONNECT_WAIT_MAX 1024

struct helper {
	const char *name;
	struct ipc_chan_ops ops;
	struct ipc_chan *chan;
	uint32_t generation;
	struct waiting_calls waiting;
	size_t nwaiting;
};

static void on_ready(struct ipc_chan *chan, void *arg);
static void on_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg);
static void on_close(struct ipc_chan *chan, const char *why, void *arg);

static struct {
	struct event_base *base;
	struct helper helpers[HELPER__MAX];
	struct proc_info procs[MAX_PROCS];
	size_t nprocs;
} hs = {
	.helpers = {
		[HELPER_IMAGED] = { "imaged", { .peer = "imaged", .version = IPC_IMAGED_VERSION } },
		[HELPER_NETD] = { "netd", { .peer = "netd", .version = IPC_NETD_VERSION } },
		[HELPER_RUNTIMED] = { "runtimed",
				      { .peer = "runtimed", .version = IPC_RUNTIMED_VERSION } },
	},
};

void helpers_init(struct event_base *base)
{
	hs.base = base;
	for (int i = 0; i < HELPER__MAX; i++) {
		struct ipc_chan_ops *ops = &hs.helpers[i].ops;

		TAILQ_INIT(&hs.helpers[i].waiting);

		ops->self = "frontend";
		ops->on_ready = on_ready;
		ops->on_request = on_request;
		ops->on_close = on_close;
	}
}

static void waiting_free(struct waiting_call *w)
{
	TAILQ_REMOVE(&w->h->waiting, w, entry);
	w->h->nwaiting--;
	event_free(w->timer);
	/* A pull's credentials waited here (ipc_type_secret). */
	if (ipc_type_secret(w->type))
		explicit_bzero(w->req, w->len);
	free(w->req);
	free(w);
}

/* Every waiting call of h goes out on its channel, now up, or fails with
 * why when it went away instead. */
static void waiting_flush(struct helper *h, const char *why)
{
	struct waiting_call *w;

	while ((w = TAILQ_FIRST(&h->waiting))) {
		ipc_reply_fn fn = w->fn;
		void *arg = w->arg;

		if (!why) {
			ProtobufCMessage *req = protobuf_c_message_unpack(w->req_desc, NULL, w->len,
									  w->req);
			if (req) {
				ipc_call(h->chan, w->type, req, NULL, 0, w->reply_desc,
					 w->reply_nfds, w->timeout_ms, fn, arg);
				if (ipc_type_secret(w->type))
					ipc_message_wipe(req);
				protobuf_c_message_free_unpacked(req, NULL);
				waiting_free(w);
				continue;
			}
		}
		waiting_free(w);
		struct crisp_error err = { .code = CRISP_E_UNAVAILABLE };
		snprintf(err.msg, sizeof(err.msg), "crisp-%s is unavailable: %s", h->name,
			 why ? why : "cannot repack the request");
		fn(NULL, NULL, &err, arg);
	}
}

static void waiting_expired(evutil_socket_t fd, short what, void *arg)
{
	struct waiting_call *w = arg;
	struct crisp_error err = { .code = CRISP_E_UNAVAILABLE };
	ipc_reply_fn fn = w->fn;
	void *fnarg = w->arg;

	snprintf(err.msg, sizeof(err.msg), "crisp-%s is unavailable: still connecting after %d s",
		 w->h->name, CONNECT_WAIT_MS / 1000);
	waiting_free(w);
	fn(NULL, NULL, &err, fnarg);
}

static void on_ready(struct ipc_chan *chan, void *arg)
{
	struct helper *h = arg;

	log_info("channel to %s (pid %d, generation %u) is up", h->name, ipc_chan_peer_pid(chan),
		 h->generation);
	waiting_flush(h, NULL);
	/* A helper (re)started: what it and the others hold may no longer
	 * match (DESIGN.md, reconciliation). */
	reconcile_helper_ready((enum helper_id)(h - hs.helpers));
}

static void on_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	/* Helpers only answer; nothing in their vocabulary is a request to us. */
	ipc_violation(chan, "unexpected request %s", ipc_type_name(msg->type));
}

static void on_close(struct ipc_chan *chan, const char *why, void *arg)
{
	struct helper *h = arg;

	if (h->chan != chan)
		return;
	log_warn("channel to %s closed (%s): its calls fail UNAVAILABLE until crispd restarts it",
		 h->name, why);
	h->chan = NULL;
	ipc_chan_free(chan);
	waiting_flush(h, "its channel closed while connecting");
	/* A helper that broke the protocol may be in any state: crispd
	 * restarts it, and with it comes a fresh channel. A helper that merely
	 * died is restarted by crispd anyway. */
	if (streq(why, "protocol violation"))
		child_restart_peer(h->name, "broke the ipc protocol with the frontend");
}

void helpers_channel_open(const char *peer, uint32_t generation, int fd)
{
	struct helper *h = NULL;

	for (int i = 0; i < HELPER__MAX; i++)
		if (streq(hs.helpers[i].name, peer))
			h = &hs.helpers[i];
	if (!h || fe_server_shutting_down()) {
		if (!h)
			log_err("crispd offered a channel to unknown process '%.32s'", peer);
		safe_close(fd);
		return;
	}
	if (h->chan) {
		/* The helper restarted: whatever was in flight on the old
		 * channel fails now, UNAVAILABLE, and the kubelet retries. */
		log_info("new channel to %s (generation %u) replaces generation %u", h->name,
			 generation, h->generation);
		ipc_chan_free(TAKE_PTR(h->chan));
	}
	h->generation = generation;
	h->chan = ipc_chan_new(hs.base, fd, &h->ops, h);
}

void helpers_close_all(void)
{
	for (int i = 0; i < HELPER__MAX; i++) {
		ipc_chan_free(TAKE_PTR(hs.helpers[i].chan));
		waiting_flush(&hs.helpers[i], "crisp is stopping");
	}
}

/* ---- process states ------------------------------------------------------- */

static void proc_clear(struct proc_info *p)
{
	free(p->name);
	free(p->state);
	free(p->last_exit);
	free(p->version);
	memset(p, 0, sizeof(*p));
}

void helpers_process_states(const CrispIpc__ProcessStateSet *set)
{
	for (size_t i = 0; i < hs.nprocs; i++)
		proc_clear(&hs.procs[i]);
	hs.nprocs = 0;
	for (size_t i = 0; i < set->n_processes && hs.nprocs < MAX_PROCS; i++) {
		const CrispIpc__ProcessInfo *in = set->processes[i];
		struct proc_info *p = &hs.procs[hs.nprocs++];

		p->name = xstrdup(in->name);
		p->state = xstrdup(in->state);
		p->last_exit = xstrdup(in->last_exit);
		p->version = xstrdup(in->version);
		p->pid = in->pid;
		p->restarts = in->restarts;
		p->started_at = in->started_at;
		log_debug("process %s: %s, pid %d, %u restarts%s%s", p->name, p->state, p->pid,
			  p->restarts, *p->last_exit ? ", last " : "", p->last_exit);
	}
}

static const struct proc_info *proc_find(const char *name)
{
	for (size_t i = 0; i < hs.nprocs; i++)
		if (streq(hs.procs[i].name, name))
			return &hs.procs[i];
	return NULL;
}

bool helper_ready(enum helper_id id)
{
	return ipc_chan_ready(hs.helpers[id].chan);
}

void helper_why_down(enum helper_id id, char *buf, size_t n)
{
	const struct helper *h = &hs.helpers[id];
	const struct proc_info *p = proc_find(h->name);
	const char *last = p && *p->last_exit ? p->last_exit : "an unknown cause";

	if (h->chan && !ipc_chan_ready(h->chan))
		snprintf(buf, n, "connecting");
	else if (!p)
		snprintf(buf, n, "not started yet");
	else if (streq(p->state, "backoff"))
		snprintf(buf, n, "restarting after %s", last);
	else if (streq(p->state, "crash-looping"))
		snprintf(buf, n, "crash-looping: %u restarts, last %s", p->restarts, last);
	else if (streq(p->state, "stopped"))
		snprintf(buf, n, "stopped (%s)", last);
	else if (streq(p->state, "running"))
		/* Either it just started, or it just died and crispd has
		 * not told us yet. */
		snprintf(buf, n, "not connected (last reported running as pid %d)", p->pid);
	else
		snprintf(buf, n, "%s", p->state);
}

json_t *helpers_process_states_json(void)
{
	json_t *a = json_array();

	for (size_t i = 0; i < hs.nprocs; i++) {
		const struct proc_info *p = &hs.procs[i];
		json_array_append_new(
			a, json_pack("{s:s, s:i, s:I, s:s, s:s, s:I, s:s}", "name", p->name, "pid",
				     p->pid, "restarts", (json_int_t)p->restarts, "state", p->state,
				     "last_exit", p->last_exit, "started_at",
				     (json_int_t)p->started_at, "version", p->version));
	}
	return a;
}

/* ---- calls ---------------------------------------------------------------- */

void helper_call(enum helper_id id, uint16_t type, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *reply_desc, unsigned timeout_ms, ipc_reply_fn fn,
		 void *arg)
{
	helper_call_fds(id, type, req, reply_desc, 0, timeout_ms, fn, arg);
}

void helper_call_fds(enum helper_id id, uint16_t type, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *reply_desc, unsigned reply_nfds,
		     unsigned timeout_ms, ipc_reply_fn fn, void *arg)
{
	struct helper *h = &hs.helpers[id];

	if (h->chan && !ipc_chan_ready(h->chan) && h->nwaiting < CONNECT_WAIT_MAX) {
		/* Just started, saying hello: wait for it rather than fail a
		 * call at every start of crisp or of a helper. */
		struct waiting_call *w = xcalloc(1, sizeof(*w));
		struct timeval tv = { CONNECT_WAIT_MS / 1000, 0 };

		w->h = h;
		w->type = type;
		w->req_desc = req->descriptor;
		w->reply_desc = reply_desc;
		w->len = protobuf_c_message_get_packed_size(req);
		w->req = xmalloc(w->len ? w->len : 1);
		protobuf_c_message_pack(req, w->req);
		w->reply_nfds = reply_nfds;
		w->timeout_ms = timeout_ms == HELPER_NO_TIMEOUT ? 0
				: timeout_ms                    ? timeout_ms
					     : frontend_config()->ipc_timeout * 1000;
		w->fn = fn;
		w->arg = arg;
		w->timer = evtimer_new(hs.base, waiting_expired, w);
		evtimer_add(w->timer, &tv);
		TAILQ_INSERT_TAIL(&h->waiting, w, entry);
		h->nwaiting++;
		return;
	}
	if (!ipc_chan_ready(h->chan)) {
		/* Fail at once, never wait for a helper that is not there. */
		struct crisp_error err = { .code = CRISP_E_UNAVAILABLE };
		char why[200];

		helper_why_down(id, why, sizeof(why));
		snprintf(err.msg, sizeof(err.msg), "crisp-%s is unavailable: %s", h->name, why);
		fn(NULL, NULL, &err, arg);
		return;
	}
	if (timeout_ms == HELPER_NO_TIMEOUT)
		timeout_ms = 0;
	else if (!timeout_ms)
		timeout_ms = frontend_config()->ipc_timeout * 1000;
	ipc_call(h->chan, type, req, NULL, 0, reply_desc, reply_nfds, timeout_ms, fn, arg);
}
