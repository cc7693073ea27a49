/* Channels to the helpers, and crispd's view of every process. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

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

struct helper {
	const char *name;
	struct ipc_chan_ops ops;
	struct ipc_chan *chan;
	uint32_t generation;
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

		ops->self = "frontend";
		ops->on_ready = on_ready;
		ops->on_request = on_request;
		ops->on_close = on_close;
	}
}

static void on_ready(struct ipc_chan *chan, void *arg)
{
	struct helper *h = arg;

	log_info("channel to %s (pid %d, generation %u) is up", h->name, ipc_chan_peer_pid(chan),
		 h->generation);
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
	for (int i = 0; i < HELPER__MAX; i++)
		ipc_chan_free(TAKE_PTR(hs.helpers[i].chan));
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
