/* Reconciliation (DESIGN.md): a network namespace or a container snapshot
 * that no sandbox or container owns any more is removed, never leaked, and
 * so is a sandbox left reserved by a RunPodSandbox that did not finish
 * (its frontend died, or its rollback could not reach runtimed). It runs
 * whenever a helper's channel comes up (start-up, and every helper
 * restart) once all three are up, a few seconds after a CRI call's undo
 * step failed (reconcile_soon), and every PERIOD_MS: an undo that failed,
 * or a removal that a helper finished after the frontend gave up on it,
 * must not wait for the next restart. A pass whose removals fail (a full
 * disk fails them all) brings the next one forward: RERUN_MS, doubling
 * with each such pass in a row, up to the period.
 *
 * Order matters, because the lists are not taken at one instant: netd's and
 * imaged's lists first, runtimed's after. RunPodSandbox reserves the sandbox
 * in runtimed before netd makes its netns, and RemovePodSandbox removes the
 * record before the netns, so any netns in netd's list whose sandbox runtimed
 * does not list afterwards is an orphan. CreateContainer makes the snapshot
 * before runtimed's record: the ids it is working on are in the in-flight
 * set, and a pass during which any new id went in flight acts on nothing
 * (it runs again shortly). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "frontend/orch.h"

#define SETTLE_MS 1000  /* helpers often come up together: one pass for all */
#define RERUN_MS 5000   /* after a pass that could not decide */
#define PERIOD_MS 60000 /* at the latest */
/* After a pass that failed to list: a helper that cannot answer (or dies
 * answering) is not asked again at each of its restarts. */
#define FAILED_PAUSE_MS 30000
/* What keeps failing (a reserved sandbox's removal; any removal, on a
 * full disk say) is retried after RERUN_MS, then twice as long each time,
 * up to the period: leftovers go within seconds of the cause going. */
#define BACKOFF_MAX_MS PERIOD_MS

enum {
	R_NETWORKS,
	R_SNAPSHOTS,
	R_SANDBOXES,
	R_CONTAINERS
};

static struct {
	struct event *timer;
	uint64_t due; /* now_ms() at which timer fires, while pending */
	bool running, again;
	uint64_t generation;
	uint64_t quiet_until;        /* now_ms() before which no pass starts */
	struct fetch *first;         /* netd's and imaged's lists, kept for the second step */
	unsigned unreserve_failures; /* in a row, for the backoff */
	unsigned removal_failures;   /* passes in a row with a failed removal */
	uint64_t passes, removal_failed_pass;
} rc;

/* A pass in ms (not before quiet_until); one already due sooner stays. */
static void schedule(unsigned ms)
{
	uint64_t now = now_ms();
	struct timeval tv;

	if (!rc.timer)
		return;
	if (rc.quiet_until > now + ms)
		ms = (unsigned)(rc.quiet_until - now);
	if (evtimer_pending(rc.timer, NULL) && rc.due <= now + ms)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	rc.due = now + ms;
	evtimer_add(rc.timer, &tv);
}

void reconcile_soon(void)
{
	schedule(RERUN_MS);
}

/* The next delay of a backoff that has failed *failures times in a row. */
static uint64_t backoff_ms(unsigned *failures)
{
	unsigned n = *failures < 16 ? (*failures)++ : 16;
	uint64_t ms = (uint64_t)RERUN_MS << n;

	return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static bool all_ready(void)
{
	for (int h = 0; h < HELPER__MAX; h++)
		if (!helper_ready(h))
			return false;
	return true;
}

static void on_removed(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		       void *arg)
{
	char *what = arg;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		/* One backoff step per pass, however many of its removals
		 * failed (a full disk fails them all). */
		if (rc.removal_failed_pass != rc.passes) {
			rc.removal_failed_pass = rc.passes;
			schedule((unsigned)backoff_ms(&rc.removal_failures));
		}
		log_warn("reconcile: removing %s failed: %s (retried at the next pass)", what,
			 err->msg);
	} else {
		rc.removal_failures = 0;
	}
	free(what);
}

/* A sandbox left reserved ("creating": SandboxInfo.ready_to_start) by a
 * RunPodSandbox that is not in flight any more: its frontend died, or its
 * rollback could not reach runtimed. The CRI never listed it, so nobody
 * else will remove it: runtimed's remove (which kills whatever is left in
 * the pause's cgroup and removes its files, shm and cgroups), then, once
 * that worked, the pod network. A step that fails is retried at the next
 * pass, since the record or the netns is still there then. */
static void on_unreserved_record(ProtobufCMessage *reply, struct ipc_msg *msg,
				 const struct crisp_error *err, void *arg)
{
	char *id = arg;
	CrispIpc__PodNetworkRemoveRequest rm = CRISP_IPC__POD_NETWORK_REMOVE_REQUEST__INIT;

	if (err && err->code != CRISP_E_NOT_FOUND) {
		/* Busy: its start is still undoing itself in runtimed, which
		 * the first retry finds done. Anything else may last: retry
		 * less and less often, and say so louder. */
		unsigned n = rc.unreserve_failures;
		uint64_t ms = backoff_ms(&rc.unreserve_failures);

		if (n < 3)
			log_info("reconcile: removing sandbox %s, left reserved: %s (retried in "
				 "%u s)",
				 id, err->msg, (unsigned)(ms / 1000));
		else
			log_warn("reconcile: removing sandbox %s, left reserved, failed %u times: "
				 "%s (retried in %u s)",
				 id, n + 1, err->msg, (unsigned)(ms / 1000));
		schedule((unsigned)ms);
		free(id);
		return;
	}
	rc.unreserve_failures = 0;
	rm.sandbox_id = id;
	helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_removed,
		    xasprintf("the pod network of %s", id));
	free(id);
}

static void unreserve(const char *id)
{
	CrispIpc__SandboxRemoveRequest rm = CRISP_IPC__SANDBOX_REMOVE_REQUEST__INIT;

	log_notice("reconcile: removing sandbox %s, left reserved by a RunPodSandbox that did "
		   "not finish",
		   id);
	rm.sandbox_id = (char *)id;
	helper_call(HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_REMOVE, &rm.base,
		    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_unreserved_record,
		    xstrdup(id));
}

static bool sandbox_known(const CrispIpc__SandboxListReply *sl, const char *id)
{
	for (size_t i = 0; i < sl->n_sandboxes; i++)
		if (streq(sl->sandboxes[i]->id, id))
			return true;
	return false;
}

static bool container_known(const CrispIpc__ContainerListReply *cl, const char *id)
{
	for (size_t i = 0; i < cl->n_containers; i++)
		if (streq(cl->containers[i]->id, id))
			return true;
	return false;
}

static void pass_end(void)
{
	fetch_free(TAKE_PTR(rc.first));
	rc.running = false;
	if (rc.again) {
		rc.again = false;
		schedule(SETTLE_MS);
	}
}

static void on_owners(struct fetch *f, void *arg)
{
	const CrispIpc__PodNetworkListReply *nl = (const CrispIpc__PodNetworkListReply *)
							  rc.first->reply[R_NETWORKS];
	const CrispIpc__SnapshotListReply *snl = (const CrispIpc__SnapshotListReply *)
							 rc.first->reply[R_SNAPSHOTS];
	const CrispIpc__SandboxListReply *sl = (const CrispIpc__SandboxListReply *)
						       f->reply[R_SANDBOXES];
	const CrispIpc__ContainerListReply *cl = (const CrispIpc__ContainerListReply *)
							 f->reply[R_CONTAINERS];
	const struct crisp_error *err = fetch_error(f, R_SANDBOXES, R_CONTAINERS, -1);
	unsigned removed = 0;

	if (err) {
		log_info("reconcile: cannot list runtimed's sandboxes and containers: %s",
			 err->msg);
		rc.quiet_until = now_ms() + FAILED_PAUSE_MS;
		fetch_free(f);
		return pass_end();
	}
	if (inflight_generation() != rc.generation) {
		log_debug("reconcile: pods or containers were being created meanwhile; "
			  "trying again");
		rc.again = true;
		fetch_free(f);
		return pass_end();
	}
	for (size_t i = 0; nl && i < nl->n_networks; i++) {
		const char *id = nl->networks[i]->sandbox_id;
		CrispIpc__PodNetworkRemoveRequest rm = CRISP_IPC__POD_NETWORK_REMOVE_REQUEST__INIT;

		if (sandbox_known(sl, id) || inflight_has(id))
			continue;
		log_notice("reconcile: removing the network namespace of sandbox %s, which "
			   "runtimed does not know",
			   id);
		rm.sandbox_id = (char *)id;
		helper_call(HELPER_NETD, IPC_NETD_POD_NETWORK_REMOVE, &rm.base,
			    &crisp_ipc__empty__descriptor, HELPER_NO_TIMEOUT, on_removed,
			    xasprintf("the pod network of %s", id));
		removed++;
	}
	for (size_t i = 0; snl && i < snl->n_container_ids; i++) {
		const char *id = snl->container_ids[i];
		CrispIpc__SnapshotRemoveRequest rm = CRISP_IPC__SNAPSHOT_REMOVE_REQUEST__INIT;

		if (container_known(cl, id) || inflight_has(id))
			continue;
		log_notice("reconcile: removing the snapshot of container %s, which runtimed "
			   "does not know",
			   id);
		rm.container_id = (char *)id;
		helper_call(HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_REMOVE, &rm.base,
			    &crisp_ipc__empty__descriptor, 0, on_removed,
			    xasprintf("the snapshot of %s", id));
		removed++;
	}
	for (size_t i = 0; i < sl->n_sandboxes; i++)
		if (sl->sandboxes[i]->ready_to_start && !inflight_has(sl->sandboxes[i]->id)) {
			unreserve(sl->sandboxes[i]->id);
			removed++;
		}
	log_info("reconcile: %zu sandboxes, %zu containers, %zu pod networks, %zu snapshots; "
		 "%u orphans removed",
		 sl->n_sandboxes, cl->n_containers, nl ? nl->n_networks : 0,
		 snl ? snl->n_container_ids : 0, removed);
	fetch_free(f);
	pass_end();
}

static void on_resources(struct fetch *f, void *arg)
{
	CrispIpc__SandboxListRequest sl = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;
	const struct crisp_error *nerr = fetch_error(f, R_NETWORKS, -1);
	const struct crisp_error *serr = fetch_error(f, R_SNAPSHOTS, -1);
	struct fetch *owners;

	/* One helper that cannot list does not stop the other's clean-up. */
	if (nerr)
		log_info("reconcile: cannot list netd's pod networks: %s", nerr->msg);
	if (serr)
		log_info("reconcile: cannot list imaged's snapshots: %s", serr->msg);
	if (nerr || serr)
		rc.quiet_until = now_ms() + FAILED_PAUSE_MS;
	if (nerr && serr) {
		fetch_free(f);
		rc.running = false;
		return;
	}
	rc.first = f;
	owners = fetch_new(on_owners, NULL);
	fetch_add(owners, R_SANDBOXES, HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &sl.base,
		  &crisp_ipc__sandbox_list_reply__descriptor, 0);
	fetch_add(owners, R_CONTAINERS, HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		  &crisp_ipc__container_list_reply__descriptor, 0);
	fetch_go(owners);
}

static void pass_start(evutil_socket_t fd, short what, void *arg)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct fetch *f;

	schedule(PERIOD_MS);
	if (!all_ready())
		return;
	if (rc.running) {
		rc.again = true;
		return;
	}
	if (inflight_count() > 0) {
		/* Creations in progress: come back when they are done. */
		schedule(RERUN_MS);
		return;
	}
	rc.running = true;
	rc.passes++;
	rc.generation = inflight_generation();
	f = fetch_new(on_resources, NULL);
	fetch_add(f, R_NETWORKS, HELPER_NETD, IPC_NETD_POD_NETWORK_LIST, &empty.base,
		  &crisp_ipc__pod_network_list_reply__descriptor, 0);
	fetch_add(f, R_SNAPSHOTS, HELPER_IMAGED, IPC_IMAGED_SNAPSHOT_LIST, &empty.base,
		  &crisp_ipc__snapshot_list_reply__descriptor, 0);
	fetch_go(f);
}

void reconcile_init(struct event_base *base)
{
	rc.timer = evtimer_new(base, pass_start, NULL);
}

void reconcile_helper_ready(enum helper_id h)
{
	if (all_ready())
		schedule(SETTLE_MS);
}
