/* CRI stats and metrics: runtimed reads the cgroups and the pods' network
 * counters (STATS_GET); the frontend joins them with the records of the
 * containers and sandboxes they belong to, and answers in the CRI's stats
 * messages or as cAdvisor-named metrics. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "frontend/cri_methods.h"
#include "frontend/orch.h"

enum {
	SLOT_STATS,
	SLOT_CONTAINERS,
	SLOT_SANDBOXES
};

static Runtime__V1__UInt64Value *u64(struct pool *p, uint64_t v)
{
	Runtime__V1__UInt64Value *x = pool_alloc(p, sizeof(*x));

	runtime__v1__uint64_value__init(x);
	x->value = v;
	return x;
}

static const CrispIpc__ContainerInfo *container_of(const CrispIpc__ContainerListReply *cl,
						   const char *id)
{
	for (size_t i = 0; cl && i < cl->n_containers; i++)
		if (streq(cl->containers[i]->id, id))
			return cl->containers[i];
	return NULL;
}

static const CrispIpc__SandboxInfo *sandbox_of(const CrispIpc__SandboxListReply *sl, const char *id)
{
	for (size_t i = 0; sl && i < sl->n_sandboxes; i++)
		if (streq(sl->sandboxes[i]->id, id))
			return sl->sandboxes[i];
	return NULL;
}

static Runtime__V1__ContainerStats *container_stats_build(struct pool *p,
							  const CrispIpc__ContainerStatsEntry *e,
							  const CrispIpc__ContainerInfo *c)
{
	Runtime__V1__ContainerStats *s = pool_alloc(p, sizeof(*s));
	Runtime__V1__ContainerAttributes *a = pool_alloc(p, sizeof(*a));
	Runtime__V1__CpuUsage *cpu = pool_alloc(p, sizeof(*cpu));
	Runtime__V1__MemoryUsage *mem = pool_alloc(p, sizeof(*mem));
	Runtime__V1__FilesystemUsage *fs = pool_alloc(p, sizeof(*fs));
	Runtime__V1__FilesystemIdentifier *fsid = pool_alloc(p, sizeof(*fsid));

	runtime__v1__container_stats__init(s);
	runtime__v1__container_attributes__init(a);
	runtime__v1__cpu_usage__init(cpu);
	runtime__v1__memory_usage__init(mem);
	runtime__v1__filesystem_usage__init(fs);
	runtime__v1__filesystem_identifier__init(fsid);
	a->id = e->container_id;
	if (c && c->config) {
		a->metadata = c->config->metadata;
		a->labels = (Runtime__V1__ContainerAttributes__LabelsEntry **)map_copy(
			p, &runtime__v1__container_attributes__labels_entry__descriptor,
			c->config->n_labels, (void *const *)c->config->labels, &a->n_labels);
		a->annotations = (Runtime__V1__ContainerAttributes__AnnotationsEntry **)map_copy(
			p, &runtime__v1__container_attributes__annotations_entry__descriptor,
			c->config->n_annotations, (void *const *)c->config->annotations,
			&a->n_annotations);
	}
	cpu->timestamp = e->timestamp;
	cpu->usage_core_nano_seconds = u64(p, e->cpu_usage_ns);
	mem->timestamp = e->timestamp;
	mem->working_set_bytes = u64(p, e->memory_working_set);
	mem->usage_bytes = u64(p, e->memory_usage);
	mem->rss_bytes = u64(p, e->memory_rss);
	mem->page_faults = u64(p, e->page_faults);
	mem->major_page_faults = u64(p, e->major_page_faults);
	fs->timestamp = e->timestamp;
	fsid->mountpoint = e->writable_mountpoint;
	fs->fs_id = fsid;
	fs->used_bytes = u64(p, e->writable_bytes);
	fs->inodes_used = u64(p, e->writable_inodes);
	s->attributes = a;
	s->cpu = cpu;
	s->memory = mem;
	s->writable_layer = fs;
	return s;
}

static Runtime__V1__PodSandboxStats *pod_stats_build(struct pool *p,
						     const CrispIpc__SandboxStatsEntry *e,
						     const CrispIpc__SandboxInfo *sb,
						     const CrispIpc__StatsReply *stats,
						     const CrispIpc__ContainerListReply *cl)
{
	Runtime__V1__PodSandboxStats *s = pool_alloc(p, sizeof(*s));
	Runtime__V1__PodSandboxAttributes *a = pool_alloc(p, sizeof(*a));
	Runtime__V1__LinuxPodSandboxStats *l = pool_alloc(p, sizeof(*l));
	Runtime__V1__CpuUsage *cpu = pool_alloc(p, sizeof(*cpu));
	Runtime__V1__MemoryUsage *mem = pool_alloc(p, sizeof(*mem));
	Runtime__V1__NetworkUsage *net = pool_alloc(p, sizeof(*net));
	Runtime__V1__NetworkInterfaceUsage *eth0 = pool_alloc(p, sizeof(*eth0));
	Runtime__V1__ProcessUsage *proc = pool_alloc(p, sizeof(*proc));

	runtime__v1__pod_sandbox_stats__init(s);
	runtime__v1__pod_sandbox_attributes__init(a);
	runtime__v1__linux_pod_sandbox_stats__init(l);
	runtime__v1__cpu_usage__init(cpu);
	runtime__v1__memory_usage__init(mem);
	runtime__v1__network_usage__init(net);
	runtime__v1__network_interface_usage__init(eth0);
	runtime__v1__process_usage__init(proc);
	a->id = e->sandbox_id;
	if (sb && sb->config) {
		a->metadata = sb->config->metadata;
		a->labels = (Runtime__V1__PodSandboxAttributes__LabelsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor,
			sb->config->n_labels, (void *const *)sb->config->labels, &a->n_labels);
		a->annotations = (Runtime__V1__PodSandboxAttributes__AnnotationsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
			sb->config->n_annotations, (void *const *)sb->config->annotations,
			&a->n_annotations);
	}
	cpu->timestamp = e->timestamp;
	cpu->usage_core_nano_seconds = u64(p, e->cpu_usage_ns);
	mem->timestamp = e->timestamp;
	mem->working_set_bytes = u64(p, e->memory_working_set);
	mem->usage_bytes = u64(p, e->memory_usage);
	mem->rss_bytes = u64(p, e->memory_rss);
	net->timestamp = e->timestamp;
	eth0->name = (char *)"eth0";
	eth0->rx_bytes = u64(p, e->rx_bytes);
	eth0->rx_errors = u64(p, e->rx_errors);
	eth0->tx_bytes = u64(p, e->tx_bytes);
	eth0->tx_errors = u64(p, e->tx_errors);
	net->default_interface = eth0;
	proc->timestamp = e->timestamp;
	proc->process_count = u64(p, e->processes);
	l->cpu = cpu;
	l->memory = mem;
	/* Host-network pods share the node's interfaces: no pod network. */
	if (!sb || *sb->netns_path)
		l->network = net;
	l->process = proc;
	l->containers = pool_alloc(p, (stats->n_containers + 1) * sizeof(*l->containers));
	for (size_t i = 0; i < stats->n_containers; i++)
		if (streq(stats->containers[i]->sandbox_id, e->sandbox_id))
			l->containers[l->n_containers++] = container_stats_build(
				p, stats->containers[i],
				container_of(cl, stats->containers[i]->container_id));
	s->attributes = a;
	s->linux = l;
	return s;
}

/* ---- ContainerStats, ListContainerStats -------------------------------------- */

static bool container_stats_match(const CrispIpc__ContainerStatsEntry *e,
				  const CrispIpc__ContainerInfo *c,
				  const Runtime__V1__ContainerStatsFilter *flt)
{
	if (!flt)
		return true;
	if (*flt->id && strncmp(e->container_id, flt->id, strlen(flt->id)) != 0)
		return false;
	if (*flt->pod_sandbox_id &&
	    strncmp(e->sandbox_id, flt->pod_sandbox_id, strlen(flt->pod_sandbox_id)) != 0)
		return false;
	if (!flt->n_label_selector)
		return true;
	return c && c->config &&
	       labels_match(flt->n_label_selector, (void *const *)flt->label_selector,
			    c->config->n_labels, (void *const *)c->config->labels);
}

/* ListContainerStats and StreamContainerStats ask with the same filter. */
static const Runtime__V1__ContainerStatsFilter *container_stats_filter(const struct rpc *rpc)
{
	if (rpc->req->descriptor == &runtime__v1__stream_container_stats_request__descriptor)
		return ((const Runtime__V1__StreamContainerStatsRequest *)rpc->req)->filter;
	return ((const Runtime__V1__ListContainerStatsRequest *)rpc->req)->filter;
}

static void on_container_stats(struct fetch *f, void *arg)
{
	struct rpc *rpc = arg;
	const CrispIpc__StatsReply *st = (const CrispIpc__StatsReply *)f->reply[SLOT_STATS];
	const CrispIpc__ContainerListReply *cl = (const CrispIpc__ContainerListReply *)
							 f->reply[SLOT_CONTAINERS];
	const struct crisp_error *err = fetch_error(f, SLOT_STATS, SLOT_CONTAINERS, -1);
	struct pool p = { 0 };

	if (err) {
		cri_fail(rpc, err);
		return fetch_free(f);
	}
	if (streq(rpc->method->name, "ContainerStats")) {
		const Runtime__V1__ContainerStatsRequest *req =
			(const Runtime__V1__ContainerStatsRequest *)rpc->req;
		Runtime__V1__ContainerStatsResponse resp =
			RUNTIME__V1__CONTAINER_STATS_RESPONSE__INIT;
		const CrispIpc__ContainerStatsEntry *e = NULL;

		for (size_t i = 0; i < st->n_containers && !e; i++)
			if (streq(st->containers[i]->container_id, req->container_id))
				e = st->containers[i];
		if (!e) {
			cri_failf(rpc, CRISP_E_NOT_FOUND, "no stats for container %s",
				  req->container_id);
			return fetch_free(f);
		}
		resp.stats = container_stats_build(&p, e, container_of(cl, e->container_id));
		cri_reply(rpc, &resp.base);
	} else {
		const Runtime__V1__ContainerStatsFilter *flt = container_stats_filter(rpc);
		struct list_items items = { 0 };

		for (size_t i = 0; i < st->n_containers; i++) {
			const CrispIpc__ContainerStatsEntry *e = st->containers[i];
			const CrispIpc__ContainerInfo *c = container_of(cl, e->container_id);
			if (container_stats_match(e, c, flt))
				list_items_add(&items, &container_stats_build(&p, e, c)->base);
		}
		cri_reply_list(rpc, &items);
	}
	pool_free(&p);
	fetch_free(f);
}

static void container_stats_fetch(struct rpc *rpc, const char *container_id, const char *sandbox_id)
{
	struct fetch *f = fetch_new(on_container_stats, rpc);
	CrispIpc__StatsRequest sr = CRISP_IPC__STATS_REQUEST__INIT;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;

	sr.container_id = cl.container_id = (char *)container_id;
	sr.sandbox_id = cl.sandbox_id = (char *)sandbox_id;
	fetch_add(f, SLOT_STATS, HELPER_RUNTIMED, IPC_RUNTIMED_STATS_GET, &sr.base,
		  &crisp_ipc__stats_reply__descriptor, 0);
	fetch_add(f, SLOT_CONTAINERS, HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		  &crisp_ipc__container_list_reply__descriptor, 0);
	fetch_go(f);
}

void cri_container_stats(struct rpc *rpc)
{
	const Runtime__V1__ContainerStatsRequest *req = (const Runtime__V1__ContainerStatsRequest *)
								rpc->req;

	if (!*req->container_id)
		return cri_failf(rpc, CRISP_E_INVALID, "container_id is required");
	if (!cri_id_valid(req->container_id))
		return cri_failf(rpc, CRISP_E_NOT_FOUND, "container \"%.80s\" not found",
				 req->container_id);
	container_stats_fetch(rpc, req->container_id, "");
}

/* And StreamContainerStats. */
void cri_list_container_stats(struct rpc *rpc)
{
	const Runtime__V1__ContainerStatsFilter *flt = container_stats_filter(rpc);

	container_stats_fetch(rpc, flt && cri_id_valid(flt->id) ? flt->id : "",
			      flt && cri_id_valid(flt->pod_sandbox_id) ? flt->pod_sandbox_id : "");
}

/* ---- PodSandboxStats, ListPodSandboxStats, ListPodSandboxMetrics ------------------ */

/* ListPodSandboxStats and StreamPodSandboxStats ask with the same filter. */
static const Runtime__V1__PodSandboxStatsFilter *pod_stats_filter(const struct rpc *rpc)
{
	if (rpc->req->descriptor == &runtime__v1__stream_pod_sandbox_stats_request__descriptor)
		return ((const Runtime__V1__StreamPodSandboxStatsRequest *)rpc->req)->filter;
	return ((const Runtime__V1__ListPodSandboxStatsRequest *)rpc->req)->filter;
}

/* count_fds: the metrics only show the containers' open fds, which
 * runtimed counts (a readlink each) only when asked. */
static void pod_stats_fetch(struct rpc *rpc, const char *sandbox_id, bool count_fds, fetch_fn fn)
{
	struct fetch *f = fetch_new(fn, rpc);
	CrispIpc__StatsRequest sr = CRISP_IPC__STATS_REQUEST__INIT;
	CrispIpc__ContainerListRequest cl = CRISP_IPC__CONTAINER_LIST_REQUEST__INIT;
	CrispIpc__SandboxListRequest sl = CRISP_IPC__SANDBOX_LIST_REQUEST__INIT;

	sr.sandbox_id = cl.sandbox_id = sl.sandbox_id = (char *)sandbox_id;
	sr.count_fds = count_fds;
	fetch_add(f, SLOT_STATS, HELPER_RUNTIMED, IPC_RUNTIMED_STATS_GET, &sr.base,
		  &crisp_ipc__stats_reply__descriptor, 0);
	fetch_add(f, SLOT_CONTAINERS, HELPER_RUNTIMED, IPC_RUNTIMED_CONTAINER_LIST, &cl.base,
		  &crisp_ipc__container_list_reply__descriptor, 0);
	fetch_add(f, SLOT_SANDBOXES, HELPER_RUNTIMED, IPC_RUNTIMED_SANDBOX_LIST, &sl.base,
		  &crisp_ipc__sandbox_list_reply__descriptor, 0);
	fetch_go(f);
}

static bool pod_stats_match(const CrispIpc__SandboxStatsEntry *e, const CrispIpc__SandboxInfo *sb,
			    const Runtime__V1__PodSandboxStatsFilter *flt)
{
	/* What ListPodSandbox leaves out (reserved, or RunPodSandbox still
	 * running and free to roll it back) is not listed here either. */
	if (!sb || sb->ready_to_start || inflight_has(sb->id))
		return false;
	if (!flt)
		return true;
	if (*flt->id && strncmp(e->sandbox_id, flt->id, strlen(flt->id)) != 0)
		return false;
	if (!flt->n_label_selector)
		return true;
	return sb && sb->config &&
	       labels_match(flt->n_label_selector, (void *const *)flt->label_selector,
			    sb->config->n_labels, (void *const *)sb->config->labels);
}

static void on_pod_stats(struct fetch *f, void *arg)
{
	struct rpc *rpc = arg;
	const CrispIpc__StatsReply *st = (const CrispIpc__StatsReply *)f->reply[SLOT_STATS];
	const CrispIpc__ContainerListReply *cl = (const CrispIpc__ContainerListReply *)
							 f->reply[SLOT_CONTAINERS];
	const CrispIpc__SandboxListReply *sl = (const CrispIpc__SandboxListReply *)
						       f->reply[SLOT_SANDBOXES];
	const struct crisp_error *err = fetch_error(f, SLOT_STATS, SLOT_CONTAINERS, SLOT_SANDBOXES,
						    -1);
	struct pool p = { 0 };

	if (err) {
		cri_fail(rpc, err);
		return fetch_free(f);
	}
	if (streq(rpc->method->name, "PodSandboxStats")) {
		const Runtime__V1__PodSandboxStatsRequest *req =
			(const Runtime__V1__PodSandboxStatsRequest *)rpc->req;
		Runtime__V1__PodSandboxStatsResponse resp =
			RUNTIME__V1__POD_SANDBOX_STATS_RESPONSE__INIT;
		const CrispIpc__SandboxStatsEntry *e = NULL;

		for (size_t i = 0; i < st->n_sandboxes && !e; i++)
			if (streq(st->sandboxes[i]->sandbox_id, req->pod_sandbox_id))
				e = st->sandboxes[i];
		if (!e) {
			cri_failf(rpc, CRISP_E_NOT_FOUND, "no stats for pod sandbox %s",
				  req->pod_sandbox_id);
			return fetch_free(f);
		}
		resp.stats = pod_stats_build(&p, e, sandbox_of(sl, e->sandbox_id), st, cl);
		cri_reply(rpc, &resp.base);
	} else {
		const Runtime__V1__PodSandboxStatsFilter *flt = pod_stats_filter(rpc);
		struct list_items items = { 0 };

		for (size_t i = 0; i < st->n_sandboxes; i++) {
			const CrispIpc__SandboxStatsEntry *e = st->sandboxes[i];
			const CrispIpc__SandboxInfo *sb = sandbox_of(sl, e->sandbox_id);
			if (pod_stats_match(e, sb, flt))
				list_items_add(&items, &pod_stats_build(&p, e, sb, st, cl)->base);
		}
		cri_reply_list(rpc, &items);
	}
	pool_free(&p);
	fetch_free(f);
}

void cri_pod_sandbox_stats(struct rpc *rpc)
{
	const Runtime__V1__PodSandboxStatsRequest *req =
		(const Runtime__V1__PodSandboxStatsRequest *)rpc->req;

	if (!*req->pod_sandbox_id)
		return cri_failf(rpc, CRISP_E_INVALID, "pod_sandbox_id is required");
	if (!cri_id_valid(req->pod_sandbox_id))
		return cri_failf(rpc, CRISP_E_NOT_FOUND, "pod sandbox \"%.80s\" not found",
				 req->pod_sandbox_id);
	pod_stats_fetch(rpc, req->pod_sandbox_id, false, on_pod_stats);
}

/* And StreamPodSandboxStats. */
void cri_list_pod_sandbox_stats(struct rpc *rpc)
{
	const Runtime__V1__PodSandboxStatsFilter *flt = pod_stats_filter(rpc);

	pod_stats_fetch(rpc, flt && cri_id_valid(flt->id) ? flt->id : "", false, on_pod_stats);
}

/* ---- metrics ------------------------------------------------------------------------ */

/* cAdvisor's names, help texts, types and label keys, which the kubelet's
 * /metrics/cadvisor serves: the base labels, then the metric's own
 * (cAdvisor's extraLabels). Network metrics carry "interface" where the
 * others have "image": they are the pod's, which has no image. */
enum metric_labels {
	L_BASE,  /* container id image name namespace pod */
	L_NET,   /* container id interface name namespace pod */
	L_FS,    /* the base ones, device */
	L_BLKIO, /* the base ones, device major minor operation */
};

enum metric_id {
	M_CPU,
	M_CPU_USER,
	M_CPU_SYSTEM,
	M_CFS_PERIODS,
	M_CFS_THROTTLED_PERIODS,
	M_CFS_THROTTLED_SECONDS,
	M_MEM_WS,
	M_MEM_USAGE,
	M_MEM_RSS,
	M_MEM_CACHE,
	M_MEM_MAPPED_FILE,
	M_MEM_SWAP,
	M_MEM_KERNEL,
	M_MEM_FAILCNT,
	M_MEM_MAX_USAGE,
	M_PGFAULT,
	M_PGMAJFAULT,
	M_OOM_EVENTS,
	M_FS_USAGE,
	M_FS_INODES,
	M_FS_INODES_FREE,
	M_FS_LIMIT,
	M_FS_READS_BYTES,
	M_FS_READS,
	M_FS_WRITES_BYTES,
	M_FS_WRITES,
	M_BLKIO_USAGE,
	M_NET_RX,
	M_NET_RX_PACKETS,
	M_NET_RX_DROPPED,
	M_NET_RX_ERR,
	M_NET_TX,
	M_NET_TX_PACKETS,
	M_NET_TX_DROPPED,
	M_NET_TX_ERR,
	M_PROCESSES,
	M_THREADS,
	M_THREADS_MAX,
	M_FDS,
	M_SOCKETS,
	M_SPEC_CPU_PERIOD,
	M_SPEC_CPU_SHARES,
	M_SPEC_MEM_LIMIT,
	M_SPEC_MEM_SWAP_LIMIT,
	M_START_TIME,
	M_LAST_SEEN,
	M__MAX
};

static const char *const label_keys_base[] = { "container", "id",        "image",
					       "name",      "namespace", "pod" };
static const char *const label_keys_net[] = { "container", "id",        "interface",
					      "name",      "namespace", "pod" };
static const char *const label_keys_fs[] = { "container", "id",  "image", "name",
					     "namespace", "pod", "device" };
static const char *const label_keys_blkio[] = { "container", "id",       "image",  "name",
						"namespace", "pod",      "device", "major",
						"minor",     "operation" };

static const struct {
	const char *const *keys;
	size_t n;
} label_sets[] = {
	[L_BASE] = { label_keys_base, ARRAY_SIZE(label_keys_base) },
	[L_NET] = { label_keys_net, ARRAY_SIZE(label_keys_net) },
	[L_FS] = { label_keys_fs, ARRAY_SIZE(label_keys_fs) },
	[L_BLKIO] = { label_keys_blkio, ARRAY_SIZE(label_keys_blkio) },
};

#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE RUNTIME__V1__METRIC_TYPE__GAUGE

static const struct {
	const char *name, *help;
	Runtime__V1__MetricType type;
	enum metric_labels labels;
} metrics[M__MAX] = {
	[M_CPU] = { "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
		    COUNTER },
	[M_CPU_USER] = { "container_cpu_user_seconds_total",
			 "Cumulative user cpu time consumed in seconds.", COUNTER },
	[M_CPU_SYSTEM] = { "container_cpu_system_seconds_total",
			   "Cumulative system cpu time consumed in seconds.", COUNTER },
	[M_CFS_PERIODS] = { "container_cpu_cfs_periods_total",
			    "Number of elapsed enforcement period intervals.", COUNTER },
	[M_CFS_THROTTLED_PERIODS] = { "container_cpu_cfs_throttled_periods_total",
				      "Number of throttled period intervals.", COUNTER },
	[M_CFS_THROTTLED_SECONDS] = { "container_cpu_cfs_throttled_seconds_total",
				      "Total time duration the container has been throttled.",
				      COUNTER },
	[M_MEM_WS] = { "container_memory_working_set_bytes", "Current working set in bytes.",
		       GAUGE },
	[M_MEM_USAGE] = { "container_memory_usage_bytes",
			  "Current memory usage in bytes, including all memory regardless of "
			  "when it was accessed.",
			  GAUGE },
	[M_MEM_RSS] = { "container_memory_rss", "Size of RSS in bytes.", GAUGE },
	[M_MEM_CACHE] = { "container_memory_cache", "Number of bytes of page cache memory.",
			  GAUGE },
	[M_MEM_MAPPED_FILE] = { "container_memory_mapped_file",
				"Size of memory mapped files in bytes.", GAUGE },
	[M_MEM_SWAP] = { "container_memory_swap", "Container swap usage in bytes.", GAUGE },
	[M_MEM_KERNEL] = { "container_memory_kernel_usage",
			   "Size of kernel memory allocated in bytes.", GAUGE },
	[M_MEM_FAILCNT] = { "container_memory_failcnt", "Number of memory usage hits limits",
			    COUNTER },
	[M_MEM_MAX_USAGE] = { "container_memory_max_usage_bytes",
			      "Maximum memory usage recorded in bytes", GAUGE },
	[M_PGFAULT] = { "container_memory_failures_total",
			"Cumulative count of memory allocation failures (pgfault).", COUNTER },
	[M_PGMAJFAULT] = { "container_memory_major_page_faults_total",
			   "Cumulative count of major page faults.", COUNTER },
	[M_OOM_EVENTS] = { "container_oom_events_total",
			   "Count of out of memory events observed for the container", COUNTER },
	[M_FS_USAGE] = { "container_fs_usage_bytes",
			 "Number of bytes that are consumed by the container on this filesystem.",
			 GAUGE, L_FS },
	[M_FS_INODES] = { "container_fs_inodes_total",
			  "Number of inodes used by the container on this filesystem.", GAUGE,
			  L_FS },
	[M_FS_INODES_FREE] = { "container_fs_inodes_free", "Number of available Inodes", GAUGE,
			       L_FS },
	[M_FS_LIMIT] = { "container_fs_limit_bytes",
			 "Number of bytes that can be consumed by the container on this "
			 "filesystem.",
			 GAUGE, L_FS },
	[M_FS_READS_BYTES] = { "container_fs_reads_bytes_total", "Cumulative count of bytes read",
			       COUNTER, L_FS },
	[M_FS_READS] = { "container_fs_reads_total", "Cumulative count of reads completed", COUNTER,
			 L_FS },
	[M_FS_WRITES_BYTES] = { "container_fs_writes_bytes_total",
				"Cumulative count of bytes written", COUNTER, L_FS },
	[M_FS_WRITES] = { "container_fs_writes_total", "Cumulative count of writes completed",
			  COUNTER, L_FS },
	[M_BLKIO_USAGE] = { "container_blkio_device_usage_total", "Blkio Device bytes usage",
			    COUNTER, L_BLKIO },
	[M_NET_RX] = { "container_network_receive_bytes_total",
		       "Cumulative count of bytes received.", COUNTER, L_NET },
	[M_NET_RX_PACKETS] = { "container_network_receive_packets_total",
			       "Cumulative count of packets received", COUNTER, L_NET },
	[M_NET_RX_DROPPED] = { "container_network_receive_packets_dropped_total",
			       "Cumulative count of packets dropped while receiving", COUNTER,
			       L_NET },
	[M_NET_RX_ERR] = { "container_network_receive_errors_total",
			   "Cumulative count of errors encountered while receiving.", COUNTER,
			   L_NET },
	[M_NET_TX] = { "container_network_transmit_bytes_total",
		       "Cumulative count of bytes transmitted.", COUNTER, L_NET },
	[M_NET_TX_PACKETS] = { "container_network_transmit_packets_total",
			       "Cumulative count of packets transmitted", COUNTER, L_NET },
	[M_NET_TX_DROPPED] = { "container_network_transmit_packets_dropped_total",
			       "Cumulative count of packets dropped while transmitting", COUNTER,
			       L_NET },
	[M_NET_TX_ERR] = { "container_network_transmit_errors_total",
			   "Cumulative count of errors encountered while transmitting.", COUNTER,
			   L_NET },
	[M_PROCESSES] = { "container_processes",
			  "Number of processes running inside the container.", GAUGE },
	[M_THREADS] = { "container_threads", "Number of threads running inside the container",
			GAUGE },
	[M_THREADS_MAX] = { "container_threads_max",
			    "Maximum number of threads allowed inside the container, infinity if "
			    "value is zero",
			    GAUGE },
	[M_FDS] = { "container_file_descriptors",
		    "Number of open file descriptors for the container.", GAUGE },
	[M_SOCKETS] = { "container_sockets", "Number of open sockets for the container.", GAUGE },
	[M_SPEC_CPU_PERIOD] = { "container_spec_cpu_period", "CPU period of the container.",
				GAUGE },
	[M_SPEC_CPU_SHARES] = { "container_spec_cpu_shares", "CPU share of the container.", GAUGE },
	[M_SPEC_MEM_LIMIT] = { "container_spec_memory_limit_bytes",
			       "Memory limit for the container.", GAUGE },
	[M_SPEC_MEM_SWAP_LIMIT] = { "container_spec_memory_swap_limit_bytes",
				    "Memory swap limit for the container.", GAUGE },
	[M_START_TIME] = { "container_start_time_seconds",
			   "Start time of the container since unix epoch in seconds.", GAUGE },
	[M_LAST_SEEN] = { "container_last_seen", "Last time a container was seen by the exporter",
			  GAUGE },
};

#define NS_PER_SEC 1000000000ull

void cri_list_metric_descriptors(struct rpc *rpc)
{
	Runtime__V1__ListMetricDescriptorsResponse resp =
		RUNTIME__V1__LIST_METRIC_DESCRIPTORS_RESPONSE__INIT;
	Runtime__V1__MetricDescriptor d[M__MAX], *dp[M__MAX];

	for (size_t i = 0; i < M__MAX; i++) {
		runtime__v1__metric_descriptor__init(&d[i]);
		d[i].name = (char *)metrics[i].name;
		d[i].help = (char *)metrics[i].help;
		d[i].n_label_keys = label_sets[metrics[i].labels].n;
		d[i].label_keys = (char **)label_sets[metrics[i].labels].keys;
		dp[i] = &d[i];
	}
	resp.n_descriptors = M__MAX;
	resp.descriptors = dp;
	cri_reply(rpc, &resp.base);
}

/* The metrics of one container or pod, grown as needed (a container adds
 * some per blkio device). */
struct metric_set {
	Runtime__V1__Metric **m;
	size_t n, cap;
};

/* labels: the values of the metric's label keys, in their order. */
static void metric_add(struct pool *p, struct metric_set *set, enum metric_id id, int64_t ts,
		       uint64_t value, char **labels)
{
	Runtime__V1__Metric *m = pool_alloc(p, sizeof(*m));

	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : M__MAX;
		Runtime__V1__Metric **bigger = pool_alloc(p, cap * sizeof(*bigger));

		if (set->n)
			memcpy(bigger, set->m, set->n * sizeof(*bigger));
		set->m = bigger;
		set->cap = cap;
	}
	runtime__v1__metric__init(m);
	m->name = (char *)metrics[id].name;
	m->timestamp = ts;
	m->metric_type = metrics[id].type;
	m->n_label_values = label_sets[metrics[id].labels].n;
	m->label_values = labels;
	m->value = u64(p, value);
	set->m[set->n++] = m;
}

/* Label values: the six of label_keys_base / label_keys_net (third is the
 * image or the interface). */
static char **metric_labels(struct pool *p, const char *container, const char *id,
			    const char *third, const CrispIpc__SandboxInfo *sb)
{
	char **v = pool_alloc(p, 6 * sizeof(*v));
	const Runtime__V1__PodSandboxMetadata *md = sb && sb->config ? sb->config->metadata : NULL;

	v[0] = (char *)container;
	v[1] = (char *)id;
	v[2] = (char *)third;
	v[3] = (char *)id;
	v[4] = md ? md->namespace_ : (char *)"";
	v[5] = md ? md->name : (char *)"";
	return v;
}

/* base labels plus the given extra values. */
static char **labels_plus(struct pool *p, char *const *base, size_t n, const char *const *extra)
{
	char **v = pool_alloc(p, (6 + n) * sizeof(*v));

	memcpy(v, base, 6 * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[6 + i] = pool_strdup(p, extra[i]);
	return v;
}

/* Per-device block I/O: cAdvisor's fs_{reads,writes}[_bytes]_total and
 * blkio_device_usage_total (Read and Write bytes). */
static void blkio_metrics(struct pool *p, struct metric_set *set,
			  const CrispIpc__ContainerStatsEntry *c, char *const *base)
{
	for (size_t i = 0; i < c->n_blkio; i++) {
		const CrispIpc__ContainerStatsEntry__BlkioDevice *d = c->blkio[i];
		char major[12], minor[12];
		const char *dev[] = { d->device };
		char **fl = labels_plus(p, base, 1, dev);

		snprintf(major, sizeof(major), "%u", d->major);
		snprintf(minor, sizeof(minor), "%u", d->minor);
		metric_add(p, set, M_FS_READS_BYTES, c->timestamp, d->read_bytes, fl);
		metric_add(p, set, M_FS_READS, c->timestamp, d->reads, fl);
		metric_add(p, set, M_FS_WRITES_BYTES, c->timestamp, d->write_bytes, fl);
		metric_add(p, set, M_FS_WRITES, c->timestamp, d->writes, fl);
		metric_add(p, set, M_BLKIO_USAGE, c->timestamp, d->read_bytes,
			   labels_plus(p, base, 4,
				       (const char *[]){ d->device, major, minor, "Read" }));
		metric_add(p, set, M_BLKIO_USAGE, c->timestamp, d->write_bytes,
			   labels_plus(p, base, 4,
				       (const char *[]){ d->device, major, minor, "Write" }));
	}
}

static Runtime__V1__ContainerMetrics *container_metrics_build(
	struct pool *p, const CrispIpc__ContainerStatsEntry *c, const CrispIpc__ContainerInfo *ci,
	const CrispIpc__SandboxInfo *sb)
{
	Runtime__V1__ContainerMetrics *cm = pool_alloc(p, sizeof(*cm));
	struct metric_set cs = { 0 };
	const int64_t ts = c->timestamp;
	char **lv = metric_labels(
		p, ci && ci->config && ci->config->metadata ? ci->config->metadata->name : "",
		c->container_id, ci ? ci->image_id : "", sb);
	const char *fs_dev[] = { c->fs_device };
	char **fl = labels_plus(p, lv, 1, fs_dev);

	runtime__v1__container_metrics__init(cm);
	cm->container_id = c->container_id;
	/* cAdvisor's seconds are floats; the CRI's values are integers. */
	metric_add(p, &cs, M_CPU, ts, c->cpu_usage_ns / NS_PER_SEC, lv);
	metric_add(p, &cs, M_CPU_USER, ts, c->cpu_user_ns / NS_PER_SEC, lv);
	metric_add(p, &cs, M_CPU_SYSTEM, ts, c->cpu_system_ns / NS_PER_SEC, lv);
	metric_add(p, &cs, M_CFS_PERIODS, ts, c->cfs_periods, lv);
	metric_add(p, &cs, M_CFS_THROTTLED_PERIODS, ts, c->cfs_throttled_periods, lv);
	metric_add(p, &cs, M_CFS_THROTTLED_SECONDS, ts, c->cfs_throttled_ns / NS_PER_SEC, lv);
	metric_add(p, &cs, M_MEM_WS, ts, c->memory_working_set, lv);
	metric_add(p, &cs, M_MEM_USAGE, ts, c->memory_usage, lv);
	metric_add(p, &cs, M_MEM_RSS, ts, c->memory_rss, lv);
	metric_add(p, &cs, M_MEM_CACHE, ts, c->memory_cache, lv);
	metric_add(p, &cs, M_MEM_MAPPED_FILE, ts, c->memory_mapped_file, lv);
	metric_add(p, &cs, M_MEM_SWAP, ts, c->memory_swap, lv);
	metric_add(p, &cs, M_MEM_KERNEL, ts, c->memory_kernel, lv);
	metric_add(p, &cs, M_MEM_FAILCNT, ts, c->memory_failcnt, lv);
	metric_add(p, &cs, M_MEM_MAX_USAGE, ts, c->memory_max_usage, lv);
	metric_add(p, &cs, M_PGFAULT, ts, c->page_faults, lv);
	metric_add(p, &cs, M_PGMAJFAULT, ts, c->major_page_faults, lv);
	metric_add(p, &cs, M_OOM_EVENTS, ts, c->oom_events, lv);
	metric_add(p, &cs, M_FS_USAGE, ts, c->writable_bytes, fl);
	metric_add(p, &cs, M_FS_INODES, ts, c->writable_inodes, fl);
	metric_add(p, &cs, M_FS_INODES_FREE, ts, c->fs_inodes_free, fl);
	metric_add(p, &cs, M_FS_LIMIT, ts, c->fs_limit_bytes, fl);
	blkio_metrics(p, &cs, c, lv);
	metric_add(p, &cs, M_THREADS, ts, c->threads, lv);
	metric_add(p, &cs, M_THREADS_MAX, ts, c->threads_max, lv);
	/* Counted apart, maybe some seconds before ts, maybe not yet (or
	 * by a runtimed that does not say when): no count, no metric,
	 * rather than a 0 that reads as "no open files". */
	if (c->fds_counted_at > 0) {
		metric_add(p, &cs, M_FDS, c->fds_counted_at, c->file_descriptors, lv);
		metric_add(p, &cs, M_SOCKETS, c->fds_counted_at, c->sockets, lv);
	}
	metric_add(p, &cs, M_SPEC_CPU_PERIOD, ts, c->spec_cpu_period, lv);
	metric_add(p, &cs, M_SPEC_CPU_SHARES, ts, c->spec_cpu_shares, lv);
	metric_add(p, &cs, M_SPEC_MEM_LIMIT, ts, c->spec_memory_limit, lv);
	metric_add(p, &cs, M_SPEC_MEM_SWAP_LIMIT, ts, c->spec_memory_swap_limit, lv);
	if (c->started_at > 0)
		metric_add(p, &cs, M_START_TIME, ts, (uint64_t)c->started_at / NS_PER_SEC, lv);
	metric_add(p, &cs, M_LAST_SEEN, ts, ts > 0 ? (uint64_t)ts / NS_PER_SEC : 0, lv);
	cm->n_metrics = cs.n;
	cm->metrics = cs.m;
	return cm;
}

static Runtime__V1__PodSandboxMetrics *pod_metrics_build(struct pool *p,
							 const CrispIpc__SandboxStatsEntry *e,
							 const CrispIpc__SandboxInfo *sb,
							 const CrispIpc__StatsReply *st,
							 const CrispIpc__ContainerListReply *cl)
{
	Runtime__V1__PodSandboxMetrics *pm = pool_alloc(p, sizeof(*pm));
	struct metric_set set = { 0 };
	char **pl = metric_labels(p, "POD", e->sandbox_id, "", sb);
	char **nl = metric_labels(p, "POD", e->sandbox_id, "eth0", sb);
	const int64_t ts = e->timestamp;

	runtime__v1__pod_sandbox_metrics__init(pm);
	pm->pod_sandbox_id = e->sandbox_id;
	metric_add(p, &set, M_CPU, ts, e->cpu_usage_ns / NS_PER_SEC, pl);
	metric_add(p, &set, M_MEM_WS, ts, e->memory_working_set, pl);
	metric_add(p, &set, M_MEM_USAGE, ts, e->memory_usage, pl);
	metric_add(p, &set, M_MEM_RSS, ts, e->memory_rss, pl);
	metric_add(p, &set, M_PROCESSES, ts, e->processes, pl);
	metric_add(p, &set, M_LAST_SEEN, ts, ts > 0 ? (uint64_t)ts / NS_PER_SEC : 0, pl);
	/* Host-network pods share the node's interfaces: no pod network. */
	if (!sb || *sb->netns_path) {
		metric_add(p, &set, M_NET_RX, ts, e->rx_bytes, nl);
		metric_add(p, &set, M_NET_RX_PACKETS, ts, e->rx_packets, nl);
		metric_add(p, &set, M_NET_RX_DROPPED, ts, e->rx_dropped, nl);
		metric_add(p, &set, M_NET_RX_ERR, ts, e->rx_errors, nl);
		metric_add(p, &set, M_NET_TX, ts, e->tx_bytes, nl);
		metric_add(p, &set, M_NET_TX_PACKETS, ts, e->tx_packets, nl);
		metric_add(p, &set, M_NET_TX_DROPPED, ts, e->tx_dropped, nl);
		metric_add(p, &set, M_NET_TX_ERR, ts, e->tx_errors, nl);
	}
	pm->n_metrics = set.n;
	pm->metrics = set.m;
	pm->container_metrics = pool_alloc(p, (st->n_containers + 1) * sizeof(void *));
	for (size_t j = 0; j < st->n_containers; j++) {
		const CrispIpc__ContainerStatsEntry *c = st->containers[j];

		if (streq(c->sandbox_id, e->sandbox_id))
			pm->container_metrics[pm->n_container_metrics++] = container_metrics_build(
				p, c, container_of(cl, c->container_id), sb);
	}
	return pm;
}

static void on_pod_metrics(struct fetch *f, void *arg)
{
	struct rpc *rpc = arg;
	const CrispIpc__StatsReply *st = (const CrispIpc__StatsReply *)f->reply[SLOT_STATS];
	const CrispIpc__ContainerListReply *cl = (const CrispIpc__ContainerListReply *)
							 f->reply[SLOT_CONTAINERS];
	const CrispIpc__SandboxListReply *sl = (const CrispIpc__SandboxListReply *)
						       f->reply[SLOT_SANDBOXES];
	const struct crisp_error *err = fetch_error(f, SLOT_STATS, SLOT_CONTAINERS, SLOT_SANDBOXES,
						    -1);
	struct list_items items = { 0 };
	struct pool p = { 0 };

	if (err) {
		cri_fail(rpc, err);
		return fetch_free(f);
	}
	for (size_t i = 0; i < st->n_sandboxes; i++)
		list_items_add(&items,
			       &pod_metrics_build(&p, st->sandboxes[i],
						  sandbox_of(sl, st->sandboxes[i]->sandbox_id), st,
						  cl)
					->base);
	cri_reply_list(rpc, &items);
	pool_free(&p);
	fetch_free(f);
}

/* StreamPodSandboxMetrics too: neither has a filter. */
void cri_list_pod_sandbox_metrics(struct rpc *rpc)
{
	pod_stats_fetch(rpc, "", true, on_pod_metrics);
}
