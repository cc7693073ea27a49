#include "autoconfig.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/snapshot_mac.h"
#include "ipc/child.h"

enum {
	CHILD_UNCONFIGURED = 1,
	CHILD_CONFIGURED = 2
};

static struct {
	struct event_base *base;
	const struct child_ops *ops;
	void *arg;
	struct ipc_chan *chan;
	uint32_t state;
	struct crisp_config cfg;
	/* helpers: the frontend channel */
	struct ipc_chan *fe;
	struct ipc_chan_ops fe_ops;
	uint64_t fe_generation;
	/* imaged and runtimed: the snapshot MAC key from crispd */
	uint8_t snapshot_key[SNAPSHOT_KEY_LEN];
	bool have_snapshot_key;
} child;

struct event_base *child_base(void)
{
	return child.base;
}

struct crisp_config *child_config(void)
{
	return &child.cfg;
}

static void on_config_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			  void *arg)
{
	CrispIpc__ConfigSet *set = (CrispIpc__ConfigSet *)req;
	struct crisp_config cfg;
	struct crisp_error err;

	/* Apply to a copy first: a reload never leaves a half-applied config. */
	config_init(&cfg);
	for (size_t i = 0; i < set->n_items; i++) {
		if (config_set(&cfg, set->items[i]->key, set->items[i]->value, &err) < 0) {
			/* crispd validated these: a mismatch is a version skew. */
			config_free(&cfg);
			return ipc_violation(chan, "configuration from crispd: %s", err.msg);
		}
	}
	config_free(&child.cfg);
	child.cfg = cfg;
	log_set_level(child.cfg.log_level);
	child.state = CHILD_CONFIGURED;
	child.ops->on_config(&child.cfg, set->reload, child.arg);
}

static void serve_frontend(const char *peer, int fd);

static void on_channel_open(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	CrispIpc__ChannelOpen *co = (CrispIpc__ChannelOpen *)req;

	if (child.ops->on_channel)
		child.ops->on_channel(co->peer, co->generation, ipc_msg_take_fd(msg, 0), child.arg);
	else if (child.ops->frontend_handlers)
		serve_frontend(co->peer, ipc_msg_take_fd(msg, 0));
	else
		ipc_violation(chan, "no peer channels expected");
}

static void on_ping(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthPing *ping = (CrispIpc__HealthPing *)req;
	CrispIpc__HealthPong pong = CRISP_IPC__HEALTH_PONG__INIT;

	pong.seq = ping->seq;
	ipc_send(chan, IPC_SUP_HEALTH_PONG, 0, msg->id, &pong.base, NULL, 0);
}

const uint8_t *child_snapshot_key(void)
{
	return child.have_snapshot_key ? child.snapshot_key : NULL;
}

static void on_snapshot_key_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
				void *arg)
{
	CrispIpc__SnapshotKeySet *set = (CrispIpc__SnapshotKeySet *)req;
	size_t len = set->key.len;

	/* Copied, then wiped where it came in: the unpacked message here, the
	 * frame it was read from by ipc.c (ipc_type_secret). */
	if (len == SNAPSHOT_KEY_LEN && child.ops->snapshot_key)
		memcpy(child.snapshot_key, set->key.data, SNAPSHOT_KEY_LEN);
	if (set->key.data)
		explicit_bzero(set->key.data, len);
	if (!child.ops->snapshot_key)
		return ipc_violation(chan, "snapshot keys are for imaged and runtimed only");
	if (len != SNAPSHOT_KEY_LEN)
		return ipc_violation(chan, "snapshot key of %zu bytes, not %d", len,
				     SNAPSHOT_KEY_LEN);
	child.have_snapshot_key = true;
}

static void on_process_state(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			     void *arg)
{
	if (!child.ops->on_process_state)
		return ipc_violation(chan, "process states are for the frontend only");
	child.ops->on_process_state((CrispIpc__ProcessStateSet *)req, child.arg);
}

static const struct ipc_handler control_handlers[] = {
	{ IPC_SUP_CONFIG_SET, &crisp_ipc__config_set__descriptor, 0, IPC_MEDIUM, IPC_ANY_STATE,
	  on_config_set },
	{ IPC_SUP_CHANNEL_OPEN, &crisp_ipc__channel_open__descriptor, 1, IPC_SMALL,
	  CHILD_CONFIGURED, on_channel_open },
	{ IPC_SUP_HEALTH_PING, &crisp_ipc__health_ping__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_ping },
	{ IPC_SUP_PROCESS_STATE_SET, &crisp_ipc__process_state_set__descriptor, 0, IPC_MEDIUM,
	  CHILD_CONFIGURED, on_process_state },
	{ IPC_SUP_SNAPSHOT_KEY_SET, &crisp_ipc__snapshot_key_set__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_snapshot_key_set },
};

static void on_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	ipc_dispatch(control_handlers, ARRAY_SIZE(control_handlers), chan, msg, child.state, NULL);
}

static void on_close(struct ipc_chan *chan, const char *why, void *arg)
{
	/* Without crispd nobody would restart us or our peers: leave. */
	log_notice("channel to crispd closed (%s), exiting", why);
	exit(0);
}

static void on_fe_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	ipc_dispatch(child.ops->frontend_handlers, child.ops->n_frontend_handlers, chan, msg,
		     child.state, NULL);
}

static void on_fe_close(struct ipc_chan *chan, const char *why, void *arg)
{
	if (streq(why, "protocol violation"))
		fatal("the frontend broke the protocol; exiting so crispd restarts us clean");
	bool live = child.fe == chan;

	log_info("frontend channel closed (%s)", why);
	ipc_chan_free(chan);
	if (!live)
		return;
	child.fe = NULL;
	if (child.ops->on_frontend_gone)
		child.ops->on_frontend_gone(child.arg);
}

static void serve_frontend(const char *peer, int fd)
{
	bool replaced = child.fe != NULL;

	if (!streq(peer, "frontend"))
		fatal("crispd offered a channel to '%s'; %s talks to the frontend only", peer,
		      child.ops->name);
	if (child.fe)
		ipc_chan_free(child.fe);
	child.fe_ops = (struct ipc_chan_ops){
		.self = child.ops->name,
		.peer = "frontend",
		.version = child.ops->frontend_version,
		.on_request = on_fe_request,
		.on_close = on_fe_close,
	};
	child.fe = ipc_chan_new(child.base, fd, &child.fe_ops, NULL);
	child.fe_generation++;
	if (replaced && child.ops->on_frontend_gone)
		child.ops->on_frontend_gone(child.arg);
}

void child_defer(const struct ipc_msg *req, struct child_deferred *ret)
{
	ret->generation = child.fe_generation;
	ret->type = req->type;
	ret->id = req->id;
}

bool child_deferred_live(const struct child_deferred *d)
{
	return child.fe && d->generation == child.fe_generation;
}

void child_reply(const struct child_deferred *d, const ProtobufCMessage *payload)
{
	if (child_deferred_live(d))
		ipc_send(child.fe, d->type, IPC_F_REPLY, d->id, payload, NULL, 0);
}

void child_reply_fds(const struct child_deferred *d, const ProtobufCMessage *payload, int *fds,
		     unsigned nfds)
{
	if (child_deferred_live(d)) {
		ipc_send(child.fe, d->type, IPC_F_REPLY, d->id, payload, fds, nfds);
		return;
	}
	for (unsigned i = 0; i < nfds; i++)
		safe_close(fds[i]);
}

void child_reply_error(const struct child_deferred *d, const struct crisp_error *err)
{
	struct ipc_msg req = { .type = d->type, .id = d->id };

	if (child_deferred_live(d))
		ipc_reply_error(child.fe, &req, err);
}

void child_restart_peer(const char *name, const char *reason)
{
	CrispIpc__ProcessRestartRequest req = CRISP_IPC__PROCESS_RESTART_REQUEST__INIT;

	req.name = (char *)name;
	req.reason = (char *)reason;
	ipc_send(child.chan, IPC_SUP_PROCESS_RESTART, 0, 0, &req.base, NULL, 0);
}

#ifdef CRISP_TEST_HOOKS
/* Test hook: SIGUSR2 makes the process attempt a syscall no crisp seccomp
 * policy allows, so the tests can prove the filter kills it. Without a filter
 * reboot() with bad magic just fails with EINVAL/EPERM. */
static void on_sigusr2(evutil_socket_t sig, short what, void *arg)
{
	log_notice("test hook: attempting the forbidden syscall reboot");
	syscall(SYS_reboot, 0, 0, 0, NULL);
	log_notice("test hook: reboot returned: no seccomp filter stopped it");
}

/* Test hook: CRISP_TEST_LOG_FORGE="<progname>:<text>" makes that process
 * write <text> and a newline to its stderr at start, raw, with one write(2),
 * as a process taken over could: tests/integration/test_log_relay.py checks
 * that crispd attributes it to its real writer whatever it claims. */
static void forge_log_line(const char *progname)
{
	const char *v = getenv("CRISP_TEST_LOG_FORGE");
	size_t n = strlen(progname);

	if (!v || strncmp(v, progname, n) != 0 || v[n] != ':')
		return;
	_cleanup_free_ char *line = xasprintf("%s\n", v + n + 1);
	(void)!write(STDERR_FILENO, line, strlen(line));
}
#endif

void child_start(struct event_base *base, const struct child_ops *ops, void *arg)
{
	static struct ipc_chan_ops chan_ops = {
		.self = NULL,
		.peer = "crispd",
		.version = IPC_SUP_VERSION,
		.on_request = on_request,
		.on_close = on_close,
	};

	/* If crispd dies without closing the channel, the kernel tells us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		fatal("started without crispd: %s is run by crispd only", ops->name);
	if (fcntl(CHILD_CONTROL_FD, F_GETFD) < 0)
		fatal("no control channel on fd %d: %s is run by crispd only", CHILD_CONTROL_FD,
		      ops->name);
	child.base = base;
	child.ops = ops;
	child.arg = arg;
	child.state = CHILD_UNCONFIGURED;
	config_init(&child.cfg);
	chan_ops.self = ops->name;
	child.chan = ipc_chan_new(base, CHILD_CONTROL_FD, &chan_ops, NULL);
#ifdef CRISP_TEST_HOOKS
	struct event *ev = evsignal_new(base, SIGUSR2, on_sigusr2, NULL);
	event_add(ev, NULL);
#endif
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	log_info("stopping");
	event_base_loopbreak(arg);
}

int child_main(const char *progname, const struct child_ops *ops)
{
	struct event_base *base;

	log_init(progname, LOG_INFO);
#ifdef CRISP_TEST_HOOKS
	forge_log_line(progname);
#endif
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* reloads come from crispd, as ConfigSet */
	base = event_base_new();
	if (!base)
		fatal("event_base_new failed");
	event_add(evsignal_new(base, SIGTERM, on_term, base), NULL);
	event_add(evsignal_new(base, SIGINT, on_term, base), NULL);
	child_start(base, ops, NULL);
	event_base_dispatch(base);
	return 0;
}
