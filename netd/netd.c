/* crisp-netd: pod networking. Started by crispd; serves the frontend's
 * network requests: pod network namespaces, CNI ADD/DEL through the
 * launcher, the durable record of each pod network, network readiness, the
 * pod CIDR, and port-forward connections inside a pod's netns. Every
 * request is checked here again: netd does not trust the frontend. One
 * operation at a time per pod (the CNI spec forbids parallel calls for one
 * container); long work runs on threads or in plugins and reports back to
 * the loop, and the reply is deferred until then. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/launcher.h"
#include "common/log.h"
#include "ipc/child.h"
#include "netd/netd.h"

#define PORT_CONNECT_TIMEOUT_MS 5000

static struct {
	char *pod_cidr;           /* from UpdateRuntimeConfig; handed to plugins that use it */
	char last_reason[256];    /* the chosen file, or the reason it is not ready */
	struct cni_status status; /* kept current by the conf dir watch */
	struct pod_net *nets;     /* every record, in memory */
	char *bin_dirs;           /* as at start: the launcher checks against it */
	char *state_dir;
} netd;

/* The pod CIDR is durable: kubelet sends it only when it changes, so a netd
 * restart must not forget it. One small file in netd's own directory (our
 * working directory), replaced atomically, on a worker thread (its fsyncs
 * must not stall the loop); the reply, and the new value's use, wait for
 * it. Writes run one at a time, in the order asked for (they share
 * pod_cidr.tmp), so the last one asked for is the one stored. */
#define POD_CIDR_FILE "pod_cidr"

struct cidr_write {
	char *cidr; /* the thread's own copy */
	struct child_deferred d;
	bool failed;
	struct crisp_error err;
	char warning[128];
	struct cidr_write *next;
};

static struct {
	struct cidr_write *head; /* running, then waiting, oldest first */
	struct cidr_write **tail;
} cidr_writes = { NULL, &cidr_writes.head };
/* kubelet sends one when the node's pod CIDR changes: more at once is a
 * flood */
#define CIDR_WRITES_MAX 8

/* On a worker thread. */
static void pod_cidr_store(void *arg)
{
	struct cidr_write *w = arg;
	_cleanup_close_ int fd = open(POD_CIDR_FILE ".tmp",
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(w->cidr);
	_cleanup_close_ int dir = -1;

	if (fd < 0) {
		err_set_errno(&w->err, CRISP_E_INTERNAL, errno, "cannot store the pod CIDR");
		w->failed = true;
		return;
	}
	if (write(fd, w->cidr, n) != (ssize_t)n || fsync(fd) < 0 ||
	    rename(POD_CIDR_FILE ".tmp", POD_CIDR_FILE) < 0) {
		err_set_errno(&w->err, CRISP_E_INTERNAL, errno, "cannot store the pod CIDR");
		w->failed = true;
		unlink(POD_CIDR_FILE ".tmp");
		return;
	}
	/* The rename must reach the disk too; if that fails the new value is
	 * in place all the same, so it is used, and the failure only logged. */
	dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || fsync(dir) < 0)
		snprintf(w->warning, sizeof(w->warning),
			 "pod CIDR stored, but syncing netd's directory failed: %s",
			 strerror(errno));
}

static void pod_cidr_stored(void *arg)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct cidr_write *w = arg;

	cidr_writes.head = w->next;
	if (!cidr_writes.head)
		cidr_writes.tail = &cidr_writes.head;
	else
		work_queue(pod_cidr_store, pod_cidr_stored, cidr_writes.head);
	if (w->warning[0])
		log_warn("%s", w->warning);
	if (w->failed) {
		log_err("%s", w->err.msg);
		child_reply_error(&w->d, &w->err);
	} else {
		if (!streq(netd.pod_cidr, w->cidr))
			log_info("pod CIDR is now %s", w->cidr);
		free(netd.pod_cidr);
		netd.pod_cidr = TAKE_PTR(w->cidr);
		child_reply(&w->d, &empty.base);
	}
	free(w->cidr);
	free(w);
}

static void pod_cidr_load(void)
{
	char buf[CIDR_LIST_MAX + 1], why[256];
	_cleanup_close_ int fd = open(POD_CIDR_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (n <= 0 || cidr_list_valid(buf, why, sizeof(why)) < 0) {
		log_warn("ignoring stored pod CIDR: %s", n <= 0 ? "empty" : why);
		return;
	}
	netd.pod_cidr = xstrdup(buf);
	log_info("pod CIDR %s (stored)", netd.pod_cidr);
}

static void on_status_change(void)
{
	const struct cni_status *st = &netd.status;
	char now[sizeof(netd.last_reason)];

	/* Log changes of readiness (or of the chosen file) once, not at each
	 * recomputation. */
	snprintf(now, sizeof(now), "%s", st->ready ? st->file : st->reason);
	if (streq(now, netd.last_reason))
		return;
	if (st->ready)
		log_info("network ready: network '%s' from %s", st->network, st->file);
	else
		log_warn("network not ready: %s", st->message);
	snprintf(netd.last_reason, sizeof(netd.last_reason), "%s", now);
}

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;

	reply.ready = netd.status.ready;
	reply.version = (char *)CRISP_VERSION;
	if (!netd.status.ready) {
		reply.reason = netd.status.reason;
		reply.message = netd.status.message;
	}
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

static void on_pod_cidr_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	CrispIpc__PodCidrSetRequest *r = (CrispIpc__PodCidrSetRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err;
	struct cidr_write *w;
	int pending = 0;
	char why[256];

	/* The frontend checked it too; we do not rely on that. */
	if (cidr_list_valid(r->pod_cidr, why, sizeof(why)) < 0) {
		err_set(&err, CRISP_E_INVALID, "pod CIDR: %s", why);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	/* the same value again, with no other write pending: nothing to do */
	if (!cidr_writes.head && streq(netd.pod_cidr, r->pod_cidr)) {
		ipc_reply(chan, msg, &empty.base, NULL, 0);
		return;
	}
	for (w = cidr_writes.head; w && pending < CIDR_WRITES_MAX; w = w->next)
		pending++;
	if (pending >= CIDR_WRITES_MAX) {
		err_set(&err, CRISP_E_RESOURCE, "%d pod CIDR changes are being stored: try again",
			pending);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->cidr = xstrdup(r->pod_cidr);
	child_defer(msg, &w->d);
	*cidr_writes.tail = w;
	cidr_writes.tail = &w->next;
	if (cidr_writes.head == w)
		work_queue(pod_cidr_store, pod_cidr_stored, w);
}

/* ---- pod networks ----------------------------------------------------------- */

static struct pod_net *net_find(const char *id)
{
	for (struct pod_net *n = netd.nets; n; n = n->next)
		if (streq(n->id, id))
			return n;
	return NULL;
}

static void reply_empty(const struct child_deferred *d);

/* A DEL or REMOVE that came while another operation ran on its pod: it runs
 * next (the kubelet's StopPodSandbox, or the frontend's reconcile, must not
 * fail because netd is still cleaning up after a restart). */
struct net_waiter {
	bool remove;
	struct child_deferred d;
	struct net_waiter *next;
};
#define WAITERS_MAX 8

/* The network is gone: what waited for it succeeds, as DEL and REMOVE of a
 * removed network do. */
static void net_drop(struct pod_net *n)
{
	for (struct pod_net **p = &netd.nets; *p; p = &(*p)->next)
		if (*p == n) {
			*p = n->next;
			break;
		}
	while (n->waiting) {
		struct net_waiter *w = n->waiting;

		n->waiting = w->next;
		reply_empty(&w->d);
		free(w);
	}
	pod_net_free(n);
}

/* A PodNetwork reply; its strings point into n, the ips into ips[]. */
struct net_reply {
	CrispIpc__PodNetwork pn;
	CrispIpc__PodIp ip[16];
	CrispIpc__PodIp *ipp[16];
	struct cni_ip cips[16];
};

static void net_reply_fill(const struct pod_net *n, struct net_reply *r)
{
	struct crisp_error err;
	int k = 0;

	r->pn = (CrispIpc__PodNetwork)CRISP_IPC__POD_NETWORK__INIT;
	r->pn.sandbox_id = (char *)n->id;
	r->pn.netns_path = n->netns;
	r->pn.userns_path = n->userns ? n->userns : "";
	r->pn.network = n->network;
	r->pn.attached = n->state == POD_NET_ATTACHED;
	if (n->state == POD_NET_ATTACHED && n->result) {
		k = cni_result_ips(n->result, child_config()->cni_ip_family, r->cips,
				   ARRAY_SIZE(r->cips), &err);
		if (k < 0) {
			log_warn("pod %.12s: %s", n->id, err.msg);
			k = 0;
		}
	}
	for (int i = 0; i < k; i++) {
		r->ip[i] = (CrispIpc__PodIp)CRISP_IPC__POD_IP__INIT;
		r->ip[i].ip = r->cips[i].ip;
		r->ip[i].iface = r->cips[i].iface;
		r->ipp[i] = &r->ip[i];
	}
	r->pn.n_ips = (size_t)k;
	r->pn.ips = r->ipp;
}

static void reply_net(const struct child_deferred *d, const struct pod_net *n)
{
	struct net_reply *r = xmalloc(sizeof(*r));

	net_reply_fill(n, r);
	child_reply(d, &r->pn.base);
	free(r);
}

static void reply_empty(const struct child_deferred *d)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	child_reply(d, &empty.base);
}

/* One operation in progress on a pod network. */
struct op {
	struct pod_net *n;
	struct child_deferred d;
	bool reply;      /* false: netd's own clean-up at start */
	bool remove;     /* REMOVE: unpin and forget after DEL */
	bool netns_only; /* POD_NETNS_CREATE: reply once the netns is made */
	struct crisp_error add_err;
	struct crisp_error err;
	bool failed;
};

/* d: where the reply goes; NULL for netd's own clean-up at start */
static struct op *op_new(struct pod_net *n, const struct child_deferred *d)
{
	struct op *op = xcalloc(1, sizeof(*op));

	op->n = n;
	op->reply = d != NULL;
	if (d)
		op->d = *d;
	n->busy = true;
	return op;
}

static void start_del(struct op *op);

/* The operation ended (its reply sent) and n stays: run what waited. */
static void op_end(struct op *op)
{
	struct pod_net *n = op->n;
	struct net_waiter *w = n->waiting;

	free(op);
	n->busy = false;
	if (!w)
		return;
	n->waiting = w->next;
	op = op_new(n, &w->d);
	op->remove = w->remove;
	free(w);
	start_del(op);
}

static void op_fail(struct op *op, const struct crisp_error *err)
{
	if (op->reply)
		child_reply_error(&op->d, err);
	op_end(op);
}

static int run_cni(struct op *op, enum cni_op what, cni_done_fn done, struct crisp_error *err)
{
	struct pod_net *n = op->n;
	struct cni_run_params p = {
		.op = what,
		.list = n->config,
		.sandbox_id = n->id,
		/* DEL after the netns is gone: the spec lets plugins run with an
		 * empty CNI_NETNS and they must clean up what they can */
		.netns = what == CNI_OP_ADD || netns_exists(n->netns) ? n->netns : "",
		.cni_args = n->cni_args,
		.caps = n->caps,
		.prev_result = what == CNI_OP_ADD ? NULL : n->result,
		.bin_dirs = netd.bin_dirs,
		.timeout_s = child_config()->cni_plugin_timeout,
	};

	return cni_run(&p, done, op, err);
}

/* ---- DEL and REMOVE ---- */

/* REMOVE: the record went last, so a crash before leaves a record that
 * the frontend's reconcile removes again. */
static void del_record_removed(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;

	if (err) {
		op_fail(op, err);
		return;
	}
	log_info("pod %.12s: network removed", n->id);
	if (op->reply)
		reply_empty(&op->d);
	net_drop(n);
	free(op);
}

/* Unpin the pod's namespaces: the netns, then its user namespace (the
 * netns belongs to it). Both succeed when already gone. */
static int pins_remove(const struct pod_net *n, struct crisp_error *err)
{
	if (netns_remove(n->netns, err) < 0)
		return -1;
	return n->userns ? netns_remove(n->userns, err) : 0;
}

/* The record says "detached" on disk: only now does memory say so, and
 * DEL (or REMOVE) answer. Had the write failed, the pod stays attached
 * here as on disk, and a DEL again runs the plugins again (DEL is
 * idempotent). */
static void del_stored(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;
	struct crisp_error e;

	if (err) {
		op_fail(op, err);
		return;
	}
	if (n->state != POD_NET_DETACHED)
		log_info("pod %.12s: network detached", n->id);
	n->state = POD_NET_DETACHED;
	json_decref(n->result);
	n->result = NULL;
	if (op->remove) {
		/* the pin before the record (on_remove counts on that
		 * order) */
		if (pins_remove(n, &e) < 0) {
			op_fail(op, &e);
			return;
		}
		cache_remove(n->id, del_record_removed, op);
		return;
	}
	if (op->reply)
		reply_empty(&op->d);
	op_end(op);
}

static void del_done(json_t *result, const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;

	if (err) {
		log_warn("pod %.12s: CNI DEL failed: %s", n->id, err->msg);
		op_fail(op, err);
		return;
	}
	/* a record already detached on disk (DEL before REMOVE) need not be
	 * written again */
	if (n->state == POD_NET_DETACHED) {
		del_stored(NULL, op);
		return;
	}
	/* "detached", without the result, before the reply: a DEL that
	 * succeeded is not run again after a restart */
	cache_store(n, POD_NET_DETACHED, false, del_stored, op);
}

static void start_del(struct op *op)
{
	struct crisp_error err;

	/* no plugin ran on a netns that only POD_NETNS_CREATE made */
	if (op->n->state == POD_NET_DETACHED || op->n->state == POD_NET_NETNS) {
		del_done(NULL, NULL, op);
		return;
	}
	if (run_cni(op, CNI_OP_DEL, del_done, &err) < 0)
		op_fail(op, &err);
}

static bool check_id(struct ipc_chan *chan, struct ipc_msg *msg, const char *id)
{
	struct crisp_error err;

	if (sandbox_id_valid(id))
		return true;
	err_set(&err, CRISP_E_INVALID, "sandbox id must be 64 lowercase hex characters");
	ipc_reply_error(chan, msg, &err);
	return false;
}

static bool check_busy(struct ipc_chan *chan, struct ipc_msg *msg, struct pod_net *n)
{
	struct crisp_error err;

	if (!n || !n->busy)
		return false;
	err_set(&err, CRISP_E_UNAVAILABLE,
		"another network operation on pod %.12s is in progress; try again", n->id);
	ipc_reply_error(chan, msg, &err);
	return true;
}

/* DEL and REMOVE on a busy pod wait for their turn (bounded). */
static bool wait_turn(struct ipc_chan *chan, struct ipc_msg *msg, struct pod_net *n, bool remove)
{
	struct net_waiter **tail, *w;
	int count = 0;

	if (!n || !n->busy)
		return false;
	for (tail = &n->waiting; *tail; tail = &(*tail)->next)
		count++;
	if (count >= WAITERS_MAX)
		return check_busy(chan, msg, n);
	w = xcalloc(1, sizeof(*w));
	w->remove = remove;
	child_defer(msg, &w->d);
	*tail = w;
	return true;
}

static void on_del(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const char *id = ((CrispIpc__PodNetworkDelRequest *)req)->sandbox_id;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct child_deferred d;
	struct pod_net *n;

	if (!check_id(chan, msg, id))
		return;
	n = net_find(id);
	if (wait_turn(chan, msg, n, false))
		return;
	/* nothing attached (host network, or already done): DEL is idempotent */
	if (!n || n->state == POD_NET_DETACHED) {
		ipc_reply(chan, msg, &empty.base, NULL, 0);
		return;
	}
	child_defer(msg, &d);
	start_del(op_new(n, &d));
}

static void on_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const char *id = ((CrispIpc__PodNetworkRemoveRequest *)req)->sandbox_id;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct child_deferred d;
	struct crisp_error err;
	struct pod_net *n;
	struct op *op;

	if (!check_id(chan, msg, id))
		return;
	n = net_find(id);
	if (wait_turn(chan, msg, n, true))
		return;
	if (!n) {
		/* no record: a pin may still be left (a crash between removing
		 * the record and the pin cannot happen, the pin goes first, but
		 * a record lost to a bad disk can) */
		_cleanup_free_ char *path = xasprintf("%s/netns/%s", netd.state_dir, id);
		_cleanup_free_ char *upath = xasprintf("%s/userns/%s", netd.state_dir, id);

		if (netns_remove(path, &err) < 0 || netns_remove(upath, &err) < 0)
			ipc_reply_error(chan, msg, &err);
		else
			ipc_reply(chan, msg, &empty.base, NULL, 0);
		return;
	}
	child_defer(msg, &d);
	op = op_new(n, &d);
	op->remove = true;
	start_del(op);
}

/* ---- ADD ---- */

/* The record goes last: until it is gone from disk, a restart runs DEL
 * again from it. */
static void add_rollback_removed(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;

	if (err) {
		log_err("pod %.12s: clean-up after a failed ADD: %s", n->id, err->msg);
		op_fail(op, &op->add_err);
		return;
	}
	if (op->reply)
		child_reply_error(&op->d, &op->add_err);
	net_drop(n);
	free(op);
}

static void add_rollback_done(json_t *result, const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;
	struct crisp_error e;

	if (err) {
		/* keep the record (state adding) so a later REMOVE retries DEL:
		 * an IP must not leak */
		char add_msg[sizeof(op->add_err.msg)];

		log_err("pod %.12s: DEL after a failed ADD failed too: %s", n->id, err->msg);
		snprintf(add_msg, sizeof(add_msg), "%s", op->add_err.msg);
		err_set(&op->add_err, op->add_err.code, "%.300s (and DEL after it failed: %.150s)",
			add_msg, err->msg);
		op_fail(op, &op->add_err);
		return;
	}
	if (pins_remove(n, &e) < 0) {
		log_err("pod %.12s: clean-up after a failed ADD: %s", n->id, e.msg);
		op_fail(op, &op->add_err);
		return;
	}
	cache_remove(n->id, add_rollback_removed, op);
}

/* ADD failed: DEL what ran (the spec: always DEL after a failed ADD), then
 * drop the netns and the record, and report the ADD error. */
static void add_rollback(struct op *op, const struct crisp_error *err)
{
	struct crisp_error e;

	op->add_err = *err;
	log_warn("pod %.12s: %s", op->n->id, err->msg);
	json_decref(op->n->result);
	op->n->result = NULL;
	if (run_cni(op, CNI_OP_DEL, add_rollback_done, &e) < 0)
		add_rollback_done(NULL, &e, op);
}

/* The record holds the result: only now is the pod attached, in memory
 * as on disk, and the reply goes. A failed write rolls ADD back like a
 * failed plugin (the record on disk still says "adding" or "netns"). */
static void add_stored(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;
	struct cni_ip ips[1];
	struct crisp_error e;

	if (err) {
		add_rollback(op, err);
		return;
	}
	n->state = POD_NET_ATTACHED;
	if (cni_result_ips(n->result, child_config()->cni_ip_family, ips, 1, &e) == 1)
		log_info("pod %.12s: network '%s' attached, IP %s", n->id, n->network, ips[0].ip);
	if (op->reply)
		reply_net(&op->d, n);
	op_end(op);
}

static void add_done(json_t *result, const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;
	struct cni_ip ips[1];
	struct crisp_error e;
	int nips;

	if (err) {
		add_rollback(op, err);
		return;
	}
	n->result = json_incref(result);
	nips = cni_result_ips(result, child_config()->cni_ip_family, ips, 1, &e);
	if (nips == 0)
		err_set(&e, CRISP_E_INTERNAL, "the CNI result of network '%s' has no IP on %s",
			n->network, CNI_IFNAME);
	if (nips <= 0) {
		add_rollback(op, &e);
		return;
	}
	/* the result is durable before the reply: DEL after any crash gets it */
	cache_store(n, POD_NET_ATTACHED, true, add_stored, op);
}

static void netns_create_job(void *arg)
{
	struct op *op = arg;
	struct pod_net *n = op->n;
	int r;

	/* hostUsers: false: the user namespace first, the netns inside it */
	if (n->userns)
		r = netns_userns_create(n->userns, n->netns, &n->uid_map, &n->gid_map, &op->err);
	else
		r = netns_create(n->netns, &op->err);
	if (r < 0)
		op->failed = true;
}

/* The netns could not be made and no plugin ran: the record is dropped
 * (if that fails too, a restart finds it and runs a harmless DEL). */
static void netns_failed_forgotten(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;

	if (err)
		log_err("pod %.12s: %s", op->n->id, err->msg);
	if (op->reply)
		child_reply_error(&op->d, &op->err);
	net_drop(op->n);
	free(op);
}

static void netns_created(void *arg)
{
	struct op *op = arg;
	struct crisp_error e;

	if (op->failed) {
		/* nothing ran yet: just forget the record */
		cache_remove(op->n->id, netns_failed_forgotten, op);
		return;
	}
	if (op->netns_only) {
		log_debug("pod %.12s: network namespace made, waiting for ADD", op->n->id);
		if (op->reply)
			reply_net(&op->d, op->n);
		op_end(op);
		return;
	}
	if (run_cni(op, CNI_OP_ADD, add_done, &e) < 0)
		add_rollback(op, &e);
}

static int add_prepare(const CrispIpc__PodNetworkAddRequest *r, struct pod_net **ret,
		       struct crisp_error *err)
{
	const char *id = r->sandbox_id;
	const Runtime__V1__PodSandboxConfig *c = r->config;
	struct idmap uid_map = { 0 }, gid_map = { 0 };
	const Runtime__V1__LinuxPodSandboxConfig *lx = c ? c->linux : NULL;
	const Runtime__V1__NamespaceOption *nso = lx && lx->security_context
							  ? lx->security_context->namespace_options
							  : NULL;
	/* hostUsers: false, from the pod's config itself, as runtimed reads
	 * it: the two cannot disagree on whether there is one */
	const Runtime__V1__UserNamespace *u =
		nso && nso->userns_options &&
				nso->userns_options->mode == RUNTIME__V1__NAMESPACE_MODE__POD
			? nso->userns_options
			: NULL;
	bool userns = u != NULL;
	struct cni_pod_args args = { 0 };
	struct pod_net *n;
	json_t *list;

	if (!c)
		return err_set(err, CRISP_E_INVALID, "no pod sandbox config");
	if (nso && nso->network == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return err_set(err, CRISP_E_INVALID, "a host-network pod gets no pod network");
	if (userns && (idmap_from_cri("uid", u->n_uids, u->uids, &uid_map, err) < 0 ||
		       idmap_from_cri("gid", u->n_gids, u->gids, &gid_map, err) < 0))
		return err_prefix(err, "pod %.12s", id);
	if (cni_pod_args_build(id, c, &args, err) < 0)
		return -1;
	if (!netd.status.ready) {
		cni_pod_args_clear(&args);
		return err_set(err, CRISP_E_PRECONDITION, "network not ready (%s): %s",
			       netd.status.reason, netd.status.message);
	}
	list = cni_conf_load(child_config(), netd.status.file, err);
	if (!list || cni_apply_pod_cidr(list, netd.pod_cidr, err) < 0) {
		json_decref(list);
		cni_pod_args_clear(&args);
		return -1;
	}
	n = xcalloc(1, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", id);
	n->state = POD_NET_ADDING;
	n->netns = xasprintf("%s/netns/%s", netd.state_dir, id);
	if (userns) {
		n->userns = xasprintf("%s/userns/%s", netd.state_dir, id);
		n->uid_map = uid_map;
		n->gid_map = gid_map;
	}
	n->network = xstrdup(json_string_value(json_object_get(list, "name")));
	n->config = list;
	n->cni_args = TAKE_PTR(args.cni_args);
	n->caps = TAKE_PTR(args.caps);
	*ret = n;
	return 0;
}

/* The record is on disk: now the netns, on a worker thread; netns_created
 * goes on with ADD, or (netns_only) replies with the netns path. */
static void add_stored_first(const struct crisp_error *err, void *arg)
{
	struct op *op = arg;
	struct crisp_error e;

	if (err) {
		/* nothing is on disk and nothing ran: the pod has no network
		 * (what waited for it, a DEL or REMOVE, succeeds) */
		if (op->reply)
			child_reply_error(&op->d, err);
		net_drop(op->n);
		free(op);
		return;
	}
	if (work_start(netns_create_job, netns_created, op, &e) < 0) {
		op->failed = true;
		op->err = e;
		netns_created(op);
	}
}

/* The record first, then the rest (add_stored_first). The pod is known
 * (and busy: another ADD is told to try again, a DEL or REMOVE waits its
 * turn) from now on, while the record is being written. */
static void add_begin(struct ipc_chan *chan, struct ipc_msg *msg,
		      const CrispIpc__PodNetworkAddRequest *r, bool netns_only)
{
	struct child_deferred d;
	struct crisp_error err;
	struct pod_net *n = NULL;
	struct op *op;

	if (add_prepare(r, &n, &err) < 0) {
		ipc_reply_error(chan, msg, &err);
		return;
	}
	if (netns_only)
		n->state = POD_NET_NETNS;
	n->next = netd.nets;
	netd.nets = n;
	child_defer(msg, &d);
	op = op_new(n, &d);
	op->netns_only = netns_only;
	/* the record first: DEL after a crash anywhere below uses it */
	cache_store(n, n->state, true, add_stored_first, op);
}

/* ADD on the netns POD_NETNS_CREATE made, with the config stored then (the
 * frontend sends the same PodSandboxConfig with both). The state changes in
 * memory only: the record on disk still says "netns", which a restarted
 * netd treats as an interrupted ADD, so no extra write delays the plugins. */
static void add_in_netns(struct ipc_chan *chan, struct ipc_msg *msg,
			 const CrispIpc__PodNetworkAddRequest *r, struct pod_net *n)
{
	struct cni_pod_args args = { 0 };
	struct child_deferred d;
	struct crisp_error err;
	struct op *op;
	bool same;

	/* checked like any ADD, and held to what the record says: plugins
	 * must not see one config at ADD and another at DEL */
	if (!r->config) {
		err_set(&err, CRISP_E_INVALID, "no pod sandbox config");
		ipc_reply_error(chan, msg, &err);
		return;
	}
	if (cni_pod_args_build(n->id, r->config, &args, &err) < 0) {
		ipc_reply_error(chan, msg, &err);
		return;
	}
	same = streq(args.cni_args, n->cni_args) && json_equal(args.caps, n->caps);
	cni_pod_args_clear(&args);
	if (!same) {
		err_set(&err, CRISP_E_INVALID,
			"pod %.12s: the config differs from the one its network namespace was "
			"made with",
			n->id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	child_defer(msg, &d);
	op = op_new(n, &d);
	n->state = POD_NET_ADDING;
	if (run_cni(op, CNI_OP_ADD, add_done, &err) < 0)
		add_rollback(op, &err);
}

static void reply_net_now(struct ipc_chan *chan, struct ipc_msg *msg, const struct pod_net *n)
{
	struct net_reply *nr = xmalloc(sizeof(*nr));

	net_reply_fill(n, nr);
	ipc_reply(chan, msg, &nr->pn.base, NULL, 0);
	free(nr);
}

static void on_add(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__PodNetworkAddRequest *r = (CrispIpc__PodNetworkAddRequest *)req;
	struct crisp_error err;
	struct pod_net *n;

	if (!check_id(chan, msg, r->sandbox_id))
		return;
	n = net_find(r->sandbox_id);
	if (check_busy(chan, msg, n))
		return;
	if (n && n->state == POD_NET_ATTACHED) {
		/* a retried ADD (the first reply was lost): same answer */
		reply_net_now(chan, msg, n);
		return;
	}
	if (n && n->state == POD_NET_NETNS) {
		add_in_netns(chan, msg, r, n);
		return;
	}
	if (n) {
		err_set(&err, CRISP_E_EXISTS,
			"pod %.12s has a network that is not attached; remove it first", n->id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	add_begin(chan, msg, r, false);
}

/* The first half of ADD: the record and the netns, so the frontend can
 * start the pause in it while ADD runs the plugins. */
static void on_netns_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	CrispIpc__PodNetworkAddRequest *r = (CrispIpc__PodNetworkAddRequest *)req;
	struct crisp_error err;
	struct pod_net *n;

	if (!check_id(chan, msg, r->sandbox_id))
		return;
	n = net_find(r->sandbox_id);
	if (check_busy(chan, msg, n))
		return;
	if (n && n->state == POD_NET_NETNS) {
		/* a retried request (the first reply was lost): same answer */
		reply_net_now(chan, msg, n);
		return;
	}
	if (n) {
		err_set(&err, CRISP_E_EXISTS, "pod %.12s has a network already; remove it first",
			n->id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	add_begin(chan, msg, r, true);
}

/* ---- STATUS, LIST ---- */

static void on_status(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const char *id = ((CrispIpc__PodNetworkStatusRequest *)req)->sandbox_id;
	struct crisp_error err;
	struct net_reply *nr;
	struct pod_net *n;

	if (!check_id(chan, msg, id))
		return;
	n = net_find(id);
	if (!n) {
		err_set(&err, CRISP_E_NOT_FOUND, "pod %.12s has no network", id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	nr = xmalloc(sizeof(*nr));
	net_reply_fill(n, nr);
	ipc_reply(chan, msg, &nr->pn.base, NULL, 0);
	free(nr);
}

static void on_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__PodNetworkListReply reply = CRISP_IPC__POD_NETWORK_LIST_REPLY__INIT;
	struct net_reply *nr;
	size_t count = 0, i = 0;

	for (struct pod_net *n = netd.nets; n; n = n->next)
		count++;
	nr = xcalloc(count ? count : 1, sizeof(*nr));
	reply.networks = xcalloc(count ? count : 1, sizeof(*reply.networks));
	for (struct pod_net *n = netd.nets; n; n = n->next, i++) {
		net_reply_fill(n, &nr[i]);
		reply.networks[i] = &nr[i].pn;
	}
	reply.n_networks = count;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
	free(reply.networks);
	free(nr);
}

/* ---- port-forward ---- */

struct connect_job {
	struct child_deferred d;
	char *path;
	uint16_t port;
	int fd;
	struct crisp_error err;
};

static void connect_run(void *arg)
{
	struct connect_job *j = arg;

	if (netns_connect(j->path, j->port, PORT_CONNECT_TIMEOUT_MS, &j->fd, &j->err) < 0)
		j->fd = -1;
}

static void connect_done(void *arg)
{
	struct connect_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	if (j->fd < 0) {
		child_reply_error(&j->d, &j->err);
	} else {
		int fds[1] = { j->fd };

		child_reply_fds(&j->d, &empty.base, fds, 1);
	}
	free(j->path);
	free(j);
}

static void on_port_connect(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	CrispIpc__PortConnectRequest *r = (CrispIpc__PortConnectRequest *)req;
	struct crisp_error err;
	struct connect_job *j;
	struct pod_net *n;

	if (!check_id(chan, msg, r->sandbox_id))
		return;
	if (r->port < 1 || r->port > 65535) {
		err_set(&err, CRISP_E_INVALID, "port %u is not in 1..65535", r->port);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	n = net_find(r->sandbox_id);
	if (r->host_network && n) {
		err_set(&err, CRISP_E_INVALID, "pod %.12s has a network namespace of its own",
			r->sandbox_id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	/* On the host's network the pod's loopback is ours. The frontend says
	 * which pod is one, from runtimed's record; lying would get it no more
	 * than running a pod on the host's network, which the CRI lets it do. */
	if (!r->host_network && (!n || !netns_exists(n->netns))) {
		err_set(&err, CRISP_E_NOT_FOUND, "pod %.12s has no network namespace",
			r->sandbox_id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->path = r->host_network ? NULL : xstrdup(n->netns);
	j->port = (uint16_t)r->port;
	j->fd = -1;
	child_defer(msg, &j->d);
	if (work_start(connect_run, connect_done, j, &err) < 0) {
		j->err = err;
		connect_done(j);
	}
}

/* What netd accepts from the frontend. */
static const struct ipc_handler frontend_handlers[] = {
	{ IPC_NETD_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
	{ IPC_NETD_POD_CIDR_SET, &crisp_ipc__pod_cidr_set_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_pod_cidr_set },
	{ IPC_NETD_POD_NETWORK_ADD, &crisp_ipc__pod_network_add_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_add },
	{ IPC_NETD_POD_NETWORK_DEL, &crisp_ipc__pod_network_del_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_del },
	{ IPC_NETD_POD_NETWORK_REMOVE, &crisp_ipc__pod_network_remove_request__descriptor, 0,
	  IPC_SMALL, IPC_ANY_STATE, on_remove },
	{ IPC_NETD_POD_NETWORK_STATUS, &crisp_ipc__pod_network_status_request__descriptor, 0,
	  IPC_SMALL, IPC_ANY_STATE, on_status },
	{ IPC_NETD_POD_NETWORK_LIST, &crisp_ipc__empty__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_list },
	{ IPC_NETD_PORT_CONNECT, &crisp_ipc__port_connect_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_port_connect },
	{ IPC_NETD_POD_NETNS_CREATE, &crisp_ipc__pod_network_add_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_netns_create },
};

/* Records left in state "adding" belong to an ADD that a crash interrupted:
 * its reply never went out, so the frontend saw it fail. DEL what ran now,
 * with the stored config; the netns stays for the frontend's REMOVE. A
 * record in state "netns" is the same: an ADD may have been running on it
 * (that state is not written again when ADD starts), and the frontend saw
 * its RunPodSandbox fail either way. */
static void recover_records(void)
{
	for (struct pod_net *n = netd.nets; n; n = n->next) {
		log_info("pod %.12s: network '%s' (%s)", n->id, n->network,
			 n->state == POD_NET_ATTACHED   ? "attached"
			 : n->state == POD_NET_DETACHED ? "detached"
							: "interrupted ADD: running DEL");
		if (n->state == POD_NET_NETNS)
			n->state = POD_NET_ADDING;
		if (n->state == POD_NET_ADDING)
			start_del(op_new(n, NULL));
	}
}

/* crisp-launch netd (crisp-launch(8)): it runs plugins found in the bin
 * directories as at start, and its check wants the pods' netns pinned
 * where netns_dir_init made the directory. */
static void start_launcher(const struct crisp_config *cfg)
{
	_cleanup_free_ char *path = xasprintf("%s/crisp-launch", cfg->helper_dir);
	_cleanup_free_ char *netns = xasprintf("%s/netns", cfg->state_dir);
	char *args[] = { "--cni-bin-dirs", netd.bin_dirs, "--netns-dir", netns, NULL };
	struct crisp_error err;

	if (launcher_start(path, "netd", args, &err) < 0)
		fatal("%s", err.msg);
	launcher_attach(child_base());
}

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	_cleanup_free_ char *home = xasprintf("%s/netd", cfg->root_dir);
	struct crisp_error err;

	if (reload)
		return;
	if (chdir(home) < 0)
		fatal("chdir %s: %m", home);
	netd.bin_dirs = xstrdup(cfg->cni_bin_dirs);
	netd.state_dir = xstrdup(cfg->state_dir);
	if (netns_dir_init(cfg->state_dir, &err) < 0 || userns_dir_init(cfg->state_dir, &err) < 0)
		fatal("%s", err.msg);
	cni_setup(child_base());
	start_launcher(cfg);
	work_init(child_base());
	pod_cidr_load();
	cache_init();
	netd.nets = cache_load_all();
	if (cni_conf_watch(child_base(), cfg, &netd.status, on_status_change, &err) < 0)
		fatal("%s", err.msg);
	netd_sandbox(cfg);
	recover_records();
	log_info("ready");
}

int main(void)
{
	static const struct child_ops ops = {
		.name = "netd",
		.on_config = on_config,
		.frontend_version = IPC_NETD_VERSION,
		.frontend_handlers = frontend_handlers,
		.n_frontend_handlers = ARRAY_SIZE(frontend_handlers),
	};

	return child_main("crisp-netd", &ops);
}
