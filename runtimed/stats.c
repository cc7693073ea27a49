/* Stats (IPC_RUNTIMED_STATS_GET), what the frontend's ContainerStats,
 * ListContainerStats, PodSandboxStats, ListPodSandboxStats and
 * ListPodSandboxMetrics are made of: per container its cgroup's CPU, memory,
 * pids and block I/O (cgroup_stats.c, through /proc/<pid>/cgroup), its
 * writable layer's usage and filesystem (statvfs, /sys/dev/block names) and,
 * for the metrics only (count_fds), its open fds and sockets; per pod its
 * cgroup (the parent of its pause's) and the counters of eth0 in its netns
 * (/proc/<pid>/net/dev). Answered from the records as they are and the
 * caches below.
 *
 * Two measurements cost what a container makes them cost, too much for the
 * loop: the usage of its writable layer (a walk of a directory tree it
 * fills as it likes) and its open fds (a readlink each: half a second for
 * 64k sockets). Each has one worker thread that does only that, and a cache
 * per container on the loop. A stats reply waits for the measurements it
 * started at most STATS_WAIT_MS, then answers with what the caches hold.
 * The disk usage worker uses a cache entry only while it is queued (the
 * loop leaves it alone meanwhile) and sets its results under the lock; the
 * fd worker gets a batch of copies (ids, pids) handed over whole. Neither
 * touches anything else the loop owns. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "runtimed/cgroup.h"
#include "runtimed/runtimed.h"

#define STATS_WAIT_MS 1000

struct stats_worker {
	const char *what; /* for messages */
	void *(*run)(void *);
	event_callback_fn results; /* on the loop, when the worker wakes it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake[2]; /* worker -> loop: results are ready */
	struct event *wake_ev;
	bool started;
};

#define STATS_WORKER_INIT(what, run, results)                                            \
	{                                                                                \
		what, run, results, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, \
			{ -1, -1 }, NULL, false                                          \
	}

static bool worker_start(struct stats_worker *w)
{
	pthread_t t;
	pthread_attr_t attr;
	int r;

	if (w->started)
		return true;
	if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_err("stats: pipe for the %s worker: %s", w->what, strerror(errno));
		return false;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, w->run, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		log_err("stats: starting the %s worker: %s", w->what, strerror(r));
		w->wake[0] = safe_close(w->wake[0]);
		w->wake[1] = safe_close(w->wake[1]);
		return false;
	}
	w->wake_ev = event_new(child_base(), w->wake[0], EV_READ | EV_PERSIST, w->results, NULL);
	event_add(w->wake_ev, NULL);
	w->started = true;
	return true;
}

/* On the worker: results are ready. */
static void worker_wake(struct stats_worker *w)
{
	(void)!write(w->wake[1], "", 1);
}

/* On the loop: empty the wake pipe before taking the results. */
static void worker_drain(struct stats_worker *w)
{
	char buf[256];

	while (read(w->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void stats_waits_check(void);

static bool ctr_selected(const struct ctr *c, const char *container_id, const char *sandbox_id)
{
	return (!*container_id || streq(container_id, c->id)) &&
	       (!*sandbox_id || streq(sandbox_id, c->info->sandbox_id)) &&
	       c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
}

/* Writable-layer usage: disk_usage on the worker. A measurement is reused
 * for DU_FRESH_MS; one is in flight per container at most, so the queue is
 * bounded by the number of containers. */
#define DU_FRESH_MS 2000

struct du_entry {
	struct du_entry *next;
	char id[ID_LEN + 1];
	char *dir; /* the layer measured (owned) */
	uint64_t bytes, inodes;
	uint64_t measured_ms; /* 0: never */
	bool queued;          /* in the worker's queue or being measured */
	/* worker -> loop, under du.w.lock */
	bool done;
	int result; /* disk_usage's return */
	uint64_t new_bytes, new_inodes;
	char errmsg[CRISP_ERRMSG_MAX];
	struct du_entry *qnext;
};

static void *du_worker(void *arg);
static void du_results(evutil_socket_t fd, short what, void *arg);

static struct {
	struct stats_worker w;
	struct du_entry *queue;   /* to measure, under w.lock */
	struct du_entry *cache;   /* loop only */
	struct du_entry *orphans; /* loop only: dropped while queued */
} du = { .w = STATS_WORKER_INIT("disk usage", du_worker, du_results) };

struct stats_wait {
	struct stats_wait *next;
	struct child_deferred d;
	char *container_id, *sandbox_id;
	bool count_fds;
	struct event *timer;
};

static struct stats_wait *stats_waits;

static void *du_worker(void *arg)
{
	for (;;) {
		struct du_entry *e;
		struct crisp_error err = { 0 };
		uint64_t bytes = 0, inodes = 0;
		int r;

		pthread_mutex_lock(&du.w.lock);
		while (!du.queue)
			pthread_cond_wait(&du.w.cond, &du.w.lock);
		e = du.queue;
		du.queue = e->qnext;
		pthread_mutex_unlock(&du.w.lock);
		/* e->dir is not touched by the loop while e->queued. */
		r = disk_usage(e->dir, &bytes, &inodes, &err);
		pthread_mutex_lock(&du.w.lock);
		e->result = r;
		e->new_bytes = bytes;
		e->new_inodes = inodes;
		snprintf(e->errmsg, sizeof(e->errmsg), "%s", err.msg);
		e->done = true;
		pthread_mutex_unlock(&du.w.lock);
		worker_wake(&du.w);
	}
	return NULL;
}

static struct du_entry *du_find(const char *id)
{
	for (struct du_entry *e = du.cache; e; e = e->next)
		if (streq(e->id, id))
			return e;
	return NULL;
}

static void du_entry_free(struct du_entry *e)
{
	free(e->dir);
	free(e);
}

/* Drop entries of containers that are gone; one still queued is freed when
 * its measurement comes back. */
static void du_prune(void)
{
	for (struct du_entry **pp = &du.cache; *pp;) {
		struct du_entry *e = *pp;
		if (ctr_find(e->id)) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		if (e->queued) {
			e->next = du.orphans;
			du.orphans = e;
		} else {
			du_entry_free(e);
		}
	}
}

/* Queue a measurement of c's layer unless a fresh or pending one exists;
 * true when one is pending now. */
static bool du_want(struct ctr *c)
{
	struct du_entry *e = du_find(c->id);

	if (!c->rootfs || !c->rootfs->upperdir || !*c->rootfs->upperdir || !worker_start(&du.w))
		return false;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->id, c->id, ID_LEN + 1);
		e->next = du.cache;
		du.cache = e;
	}
	if (e->queued)
		return true;
	if (e->measured_ms && now_ms() - e->measured_ms < DU_FRESH_MS)
		return false;
	free(e->dir);
	e->dir = xstrdup(c->rootfs->upperdir);
	e->queued = true;
	e->done = false;
	pthread_mutex_lock(&du.w.lock);
	e->qnext = du.queue;
	du.queue = e;
	pthread_cond_signal(&du.w.cond);
	pthread_mutex_unlock(&du.w.lock);
	return true;
}

/* Measurements came back: store them, answer the replies that have all
 * theirs. */
static void du_results(evutil_socket_t fd, short what, void *arg)
{
	struct du_entry *done[64];
	size_t n = 0;

	worker_drain(&du.w);
	pthread_mutex_lock(&du.w.lock);
	for (struct du_entry **pp = &du.orphans; *pp;) {
		struct du_entry *e = *pp;
		if (!e->done) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		du_entry_free(e);
	}
	for (struct du_entry *e = du.cache; e; e = e->next)
		if (e->queued && e->done) {
			e->queued = false;
			if (e->result == 0) {
				e->bytes = e->new_bytes;
				e->inodes = e->new_inodes;
			} else if (n < ARRAY_SIZE(done)) {
				done[n++] = e;
			}
			e->measured_ms = now_ms();
		}
	pthread_mutex_unlock(&du.w.lock);
	for (size_t i = 0; i < n; i++)
		log_debug("stats of %.12s: %s", done[i]->id, done[i]->errmsg);
	stats_waits_check();
}

/* Open fds, the metrics' container_file_descriptors and container_sockets:
 * counted only for requests that ask (count_fds: the frontend's
 * ListPodSandboxMetrics), by their own worker. A count is reused for
 * FDS_FRESH_MS and shown, with the time it was taken (fds_counted_at), for
 * FDS_SHOWN_MS at most. A request that needs counts queues one batch: the
 * containers whose count is stale and not in flight (so each container is
 * in one batch at most, and the queue is bounded by the containers), the
 * oldest counts first. A batch counts at most FDS_CALL_FDS_MAX fds of
 * FDS_CALL_PROCS_MAX processes, some two seconds of work: a container left
 * past that keeps its older count and comes first the next time. */
#define FDS_FRESH_MS 10000
#define FDS_SHOWN_MS 60000
#define FDS_CALL_FDS_MAX (4 * CGROUP_FDS_COUNT_MAX)
#define FDS_CALL_PROCS_MAX (4 * CGROUP_FDS_PROCS_MAX)

struct fdc_entry {
	struct fdc_entry *next;
	char id[ID_LEN + 1];
	pid_t pid; /* the container's process when counted (or queued) */
	uint64_t pid_start;
	uint64_t fds, sockets;
	int64_t counted_at;  /* unix ns; 0: never */
	uint64_t counted_ms; /* monotonic, for the age */
	bool queued;
};

enum fdc_outcome {
	FDC_COUNTED,
	FDC_SKIPPED, /* past the batch's bound */
	FDC_GONE,    /* the process is no longer the container's */
	FDC_FAILED,
};

/* One container's count: what the worker needs, then its answer. */
struct fdc_item {
	char id[ID_LEN + 1];
	pid_t pid;
	uint64_t pid_start;
	enum fdc_outcome outcome;
	struct cgroup_fd_count count;
	int64_t counted_at;
	uint64_t counted_ms;
	char errmsg[CRISP_ERRMSG_MAX];
};

struct fdc_batch {
	struct fdc_batch *next;
	size_t n;
	struct fdc_item items[];
};

static void *fdc_worker(void *arg);
static void fdc_results(evutil_socket_t fd, short what, void *arg);

static struct {
	struct stats_worker w;
	struct fdc_batch *queue, *done; /* under w.lock */
	struct fdc_entry *cache;        /* loop only */
} fdc = { .w = STATS_WORKER_INIT("fd count", fdc_worker, fdc_results) };

/* On the worker: count the batch's containers, within its bounds. */
static void fdc_count(struct fdc_batch *b)
{
	struct cgroup_fd_limits left = { FDS_CALL_FDS_MAX, FDS_CALL_PROCS_MAX };
	enum cgroup_mode mode = cgroup_detect(CGROUP_ROOT);

	for (size_t i = 0; i < b->n; i++) {
		struct fdc_item *it = &b->items[i];
		struct crisp_error err = { 0 };
		const struct cgroup_fd_limits lim = cgroup_fd_budget_next(&left);

		if (!lim.fds || !lim.procs) {
			it->outcome = FDC_SKIPPED;
			continue;
		}
		/* A container that exited since it was queued: its pid may be
		 * another process's by now, in another cgroup. */
		if (!proc_alive(it->pid, it->pid_start)) {
			it->outcome = FDC_GONE;
			continue;
		}
		if (cgroup_count_fds_pid(mode, CGROUP_ROOT, "/proc", it->pid, &lim, &it->count,
					 &err) < 0) {
			it->outcome = FDC_FAILED;
			snprintf(it->errmsg, sizeof(it->errmsg), "%s", err.msg);
			continue;
		}
		it->outcome = cgroup_fd_budget_take(&left, &lim, &it->count) ? FDC_COUNTED
									     : FDC_SKIPPED;
		it->counted_at = now_ns();
		it->counted_ms = now_ms();
	}
}

static void *fdc_worker(void *arg)
{
	for (;;) {
		struct fdc_batch *b;

		pthread_mutex_lock(&fdc.w.lock);
		while (!fdc.queue)
			pthread_cond_wait(&fdc.w.cond, &fdc.w.lock);
		b = fdc.queue;
		fdc.queue = b->next;
		pthread_mutex_unlock(&fdc.w.lock);
		fdc_count(b);
		pthread_mutex_lock(&fdc.w.lock);
		b->next = fdc.done;
		fdc.done = b;
		pthread_mutex_unlock(&fdc.w.lock);
		worker_wake(&fdc.w);
	}
	return NULL;
}

static struct fdc_entry *fdc_find(const char *id)
{
	for (struct fdc_entry *e = fdc.cache; e; e = e->next)
		if (streq(e->id, id))
			return e;
	return NULL;
}

static bool ctr_running(const struct ctr *c)
{
	return c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING &&
	       c->info->pid > 0;
}

/* Drop the counts of containers gone or no longer running; a batch in
 * flight holds copies, and its results for them are dropped. */
static void fdc_prune(void)
{
	for (struct fdc_entry **pp = &fdc.cache; *pp;) {
		struct fdc_entry *e = *pp;
		struct ctr *c = ctr_find(e->id);

		if (c && ctr_running(c)) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		free(e);
	}
}

/* c's entry, made if new; a count of another process of it is forgotten
 * (unless one is in flight, whose result will not be stored). */
static struct fdc_entry *fdc_entry(const struct ctr *c)
{
	struct fdc_entry *e = fdc_find(c->id);

	if (!e) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->id, c->id, ID_LEN + 1);
		e->next = fdc.cache;
		fdc.cache = e;
	}
	if (!e->queued && (e->pid != c->info->pid || e->pid_start != c->pid_start)) {
		e->pid = c->info->pid;
		e->pid_start = c->pid_start;
		e->counted_at = 0;
		e->counted_ms = 0;
	}
	return e;
}

static int fdc_older_first(const void *a, const void *b)
{
	const struct fdc_entry *x = *(struct fdc_entry *const *)a,
			       *y = *(struct fdc_entry *const *)b;

	return x->counted_ms < y->counted_ms ? -1 : x->counted_ms > y->counted_ms;
}

/* Queue a batch counting the fds of the selected running containers whose
 * count is stale and not in flight; true when a count is pending for any
 * of them now. */
static bool fdc_want(const char *container_id, const char *sandbox_id)
{
	_cleanup_free_ struct fdc_entry **stale = NULL;
	struct fdc_batch *b, **tail;
	size_t n = 0, nc = 0;
	bool pending = false;
	uint64_t now = now_ms();

	for (struct ctr *c = rt.ctrs; c; c = c->next)
		nc++;
	stale = xcalloc(nc + 1, sizeof(*stale));
	for (struct ctr *c = rt.ctrs; c; c = c->next) {
		struct fdc_entry *e;

		if (!ctr_selected(c, container_id, sandbox_id) || !ctr_running(c))
			continue;
		e = fdc_entry(c);
		if (e->queued)
			pending = true;
		else if (!e->counted_ms || now - e->counted_ms >= FDS_FRESH_MS)
			stale[n++] = e;
	}
	if (!n || !worker_start(&fdc.w))
		return pending;
	qsort(stale, n, sizeof(*stale), fdc_older_first);
	b = xcalloc(1, sizeof(*b) + n * sizeof(b->items[0]));
	for (size_t i = 0; i < n; i++) {
		memcpy(b->items[i].id, stale[i]->id, ID_LEN + 1);
		b->items[i].pid = stale[i]->pid;
		b->items[i].pid_start = stale[i]->pid_start;
		stale[i]->queued = true;
	}
	b->n = n;
	pthread_mutex_lock(&fdc.w.lock);
	for (tail = &fdc.queue; *tail; tail = &(*tail)->next)
		;
	*tail = b;
	pthread_cond_signal(&fdc.w.cond);
	pthread_mutex_unlock(&fdc.w.lock);
	return true;
}

static void fdc_store(const struct fdc_item *it)
{
	struct fdc_entry *e = fdc_find(it->id);

	/* Pruned meanwhile: the container is gone or stopped. */
	if (!e)
		return;
	e->queued = false;
	if (e->pid != it->pid || e->pid_start != it->pid_start)
		return;
	switch (it->outcome) {
	case FDC_COUNTED:
		e->fds = it->count.fds;
		e->sockets = it->count.sockets;
		e->counted_at = it->counted_at;
		e->counted_ms = it->counted_ms;
		break;
	case FDC_FAILED:
		log_debug("stats of %.12s: %s", it->id, it->errmsg);
		break;
	case FDC_SKIPPED:
	case FDC_GONE:
		break;
	}
}

/* Counts came back: store them, answer the replies that have all theirs. */
static void fdc_results(evutil_socket_t fd, short what, void *arg)
{
	struct fdc_batch *done;

	worker_drain(&fdc.w);
	pthread_mutex_lock(&fdc.w.lock);
	done = fdc.done;
	fdc.done = NULL;
	pthread_mutex_unlock(&fdc.w.lock);
	while (done) {
		struct fdc_batch *b = done;

		done = b->next;
		for (size_t i = 0; i < b->n; i++)
			fdc_store(&b->items[i]);
		free(b);
	}
	stats_waits_check();
}

/* cAdvisor's further numbers of a container (see cgroup_stats.c for the files),
 * the entry's blkio devices and their names in e->blkio. */
static void ctr_stats_more(CrispIpc__ContainerStatsEntry *e, const struct cgroup_stats *st)
{
	e->cpu_user_ns = st->cpu_user_ns;
	e->cpu_system_ns = st->cpu_system_ns;
	e->cfs_periods = st->cfs_periods;
	e->cfs_throttled_periods = st->cfs_throttled_periods;
	e->cfs_throttled_ns = st->cfs_throttled_ns;
	e->memory_cache = st->memory_cache;
	e->memory_mapped_file = st->memory_mapped_file;
	e->memory_swap = st->memory_swap;
	e->memory_kernel = st->memory_kernel;
	e->memory_failcnt = st->memory_failcnt;
	e->memory_max_usage = st->memory_max_usage;
	e->oom_events = st->oom_kills;
	e->threads = st->pids;
	e->threads_max = st->pids_max;
	/* The cgroup's own settings, so that UpdateContainerResources shows. */
	e->spec_cpu_period = st->cpu_period_us;
	e->spec_cpu_shares = st->cpu_shares;
	e->spec_memory_limit = st->memory_limit;
	e->spec_memory_swap_limit = st->memory_swap_limit;
	if (!st->n_blkio)
		return;
	e->blkio = xcalloc(st->n_blkio, sizeof(*e->blkio));
	for (size_t i = 0; i < st->n_blkio; i++) {
		CrispIpc__ContainerStatsEntry__BlkioDevice *d = xcalloc(1, sizeof(*d));
		char name[NAME_MAX + 8];

		crisp_ipc__container_stats_entry__blkio_device__init(d);
		d->major = st->blkio[i].major;
		d->minor = st->blkio[i].minor;
		block_device_name("/sys", d->major, d->minor, name, sizeof(name));
		d->device = xstrdup(name);
		d->read_bytes = st->blkio[i].read_bytes;
		d->write_bytes = st->blkio[i].write_bytes;
		d->reads = st->blkio[i].reads;
		d->writes = st->blkio[i].writes;
		e->blkio[e->n_blkio++] = d;
	}
}

/* Size and free inodes of the filesystem holding the writable layer, and
 * its device ("/dev/<name>", else "major:minor"), as cAdvisor labels it. */
static void ctr_stats_fs(CrispIpc__ContainerStatsEntry *e, const char *dir)
{
	struct statvfs vfs;
	struct stat sb;
	char name[NAME_MAX + 8];

	if (statvfs(dir, &vfs) == 0) {
		e->fs_limit_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		e->fs_inodes_free = vfs.f_ffree;
	}
	if (stat(dir, &sb) < 0)
		return;
	block_device_name("/sys", major(sb.st_dev), minor(sb.st_dev), name, sizeof(name));
	if (!*name)
		snprintf(name, sizeof(name), "%u:%u", major(sb.st_dev), minor(sb.st_dev));
	e->fs_device = xstrdup(name);
}

static void ctr_stats_free(CrispIpc__ContainerStatsEntry *e)
{
	for (size_t i = 0; i < e->n_blkio; i++) {
		free(e->blkio[i]->device);
		free(e->blkio[i]);
	}
	free(e->blkio);
	if (e->fs_device != protobuf_c_empty_string)
		free(e->fs_device);
	free(e);
}

/* The latest fd count of c, when it is of c's process and recent enough. */
static void ctr_stats_fds(CrispIpc__ContainerStatsEntry *e, const struct ctr *c)
{
	const struct fdc_entry *f = fdc_find(c->id);

	if (!f || !f->counted_ms || now_ms() - f->counted_ms >= FDS_SHOWN_MS ||
	    f->pid != c->info->pid || f->pid_start != c->pid_start)
		return;
	e->file_descriptors = f->fds;
	e->sockets = f->sockets;
	e->fds_counted_at = f->counted_at;
}

static CrispIpc__ContainerStatsEntry *ctr_stats(struct ctr *c, bool count_fds)
{
	CrispIpc__ContainerStatsEntry *e = xcalloc(1, sizeof(*e));
	struct cgroup_stats st = { 0 };
	struct crisp_error err = { 0 };
	struct du_entry *du_e = du_find(c->id);

	crisp_ipc__container_stats_entry__init(e);
	e->container_id = c->id;
	e->sandbox_id = c->info->sandbox_id;
	e->timestamp = now_ns();
	e->started_at = c->info->started_at;
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING &&
	    proc_alive(c->info->pid, c->pid_start)) {
		if (cgroup_stats_pid(CGROUP_ROOT, "/proc", c->info->pid, &st, &err) == 0) {
			e->cpu_usage_ns = st.cpu_usage_ns;
			e->memory_working_set = st.memory_working_set;
			e->memory_usage = st.memory_usage;
			e->memory_rss = st.memory_rss;
			e->page_faults = st.page_faults;
			e->major_page_faults = st.major_page_faults;
			ctr_stats_more(e, &st);
		} else {
			log_debug("stats of %.12s: %s", c->id, err.msg);
		}
		if (count_fds)
			ctr_stats_fds(e, c);
	}
	if (c->rootfs && c->rootfs->upperdir) {
		if (du_e && du_e->measured_ms) {
			e->writable_bytes = du_e->bytes;
			e->writable_inodes = du_e->inodes;
		}
		e->writable_mountpoint = c->rootfs->upperdir;
		ctr_stats_fs(e, c->rootfs->upperdir);
	}
	return e;
}

static CrispIpc__SandboxStatsEntry *pod_stats(struct pod *p)
{
	CrispIpc__SandboxStatsEntry *e = xcalloc(1, sizeof(*e));
	struct cgroup_stats st = { 0 };
	struct netdev_stats ns = { 0 };
	struct crisp_error err = { 0 };

	crisp_ipc__sandbox_stats_entry__init(e);
	e->sandbox_id = p->id;
	e->timestamp = now_ns();
	if (p->info->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ||
	    !proc_alive(p->info->pid, p->pid_start))
		return e;
	if (cgroup_stats_pid_parent(CGROUP_ROOT, "/proc", p->info->pid, &st, &err) == 0) {
		e->cpu_usage_ns = st.cpu_usage_ns;
		e->memory_working_set = st.memory_working_set;
		e->memory_usage = st.memory_usage;
		e->memory_rss = st.memory_rss;
		e->processes = st.pids;
	}
	err_clear(&err);
	if (*p->info->netns_path &&
	    netdev_stats_pid("/proc", p->info->pid, "eth0", &ns, &err) == 0 && ns.found) {
		e->rx_bytes = ns.rx_bytes;
		e->rx_errors = ns.rx_errors;
		e->tx_bytes = ns.tx_bytes;
		e->tx_errors = ns.tx_errors;
		e->rx_packets = ns.rx_packets;
		e->rx_dropped = ns.rx_dropped;
		e->tx_packets = ns.tx_packets;
		e->tx_dropped = ns.tx_dropped;
	}
	return e;
}

/* The reply, from the records as they are now and the cached measurements. */
static void stats_reply(const struct child_deferred *d, const char *container_id,
			const char *sandbox_id, bool count_fds)
{
	CrispIpc__StatsReply reply = CRISP_IPC__STATS_REPLY__INIT;
	size_t nc = 0, np = 0;

	for (struct ctr *c = rt.ctrs; c; c = c->next)
		nc++;
	for (struct pod *p = rt.pods; p; p = p->next)
		np++;
	reply.containers = xcalloc(nc + 1, sizeof(*reply.containers));
	reply.sandboxes = xcalloc(np + 1, sizeof(*reply.sandboxes));
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		if (ctr_selected(c, container_id, sandbox_id))
			reply.containers[reply.n_containers++] = ctr_stats(c, count_fds);
	/* Pod stats when no single container was asked for. */
	if (!*container_id)
		for (struct pod *p = rt.pods; p; p = p->next)
			if (!p->info->ready_to_start && (!*sandbox_id || streq(sandbox_id, p->id)))
				reply.sandboxes[reply.n_sandboxes++] = pod_stats(p);
	child_reply(d, &reply.base);
	for (size_t i = 0; i < reply.n_containers; i++)
		ctr_stats_free(reply.containers[i]);
	for (size_t i = 0; i < reply.n_sandboxes; i++)
		free(reply.sandboxes[i]);
	free(reply.containers);
	free(reply.sandboxes);
}

/* Whether a measurement w waits for is still in flight. */
static bool stats_pending(const struct stats_wait *w)
{
	for (struct ctr *c = rt.ctrs; c; c = c->next) {
		struct du_entry *e;
		struct fdc_entry *f;

		if (!ctr_selected(c, w->container_id, w->sandbox_id))
			continue;
		if ((e = du_find(c->id)) && e->queued)
			return true;
		if (w->count_fds && (f = fdc_find(c->id)) && f->queued)
			return true;
	}
	return false;
}

static void stats_wait_finish(struct stats_wait *w)
{
	for (struct stats_wait **pp = &stats_waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	stats_reply(&w->d, w->container_id, w->sandbox_id, w->count_fds);
	event_free(w->timer);
	free(w->container_id);
	free(w->sandbox_id);
	free(w);
}

static void stats_timeout(evutil_socket_t fd, short what, void *arg)
{
	stats_wait_finish(arg);
}

/* Answer the replies whose measurements are all in. */
static void stats_waits_check(void)
{
	for (struct stats_wait *w = stats_waits, *next; w; w = next) {
		next = w->next;
		if (!stats_pending(w))
			stats_wait_finish(w);
	}
}

void on_stats(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__StatsRequest *r = (const CrispIpc__StatsRequest *)req;
	struct timeval tv = { STATS_WAIT_MS / 1000, (STATS_WAIT_MS % 1000) * 1000 };
	struct stats_wait *w = xcalloc(1, sizeof(*w));
	bool pending = false;

	du_prune();
	fdc_prune();
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		if (ctr_selected(c, r->container_id, r->sandbox_id) && du_want(c))
			pending = true;
	/* Only the metrics show fd counts: other requests start none. */
	if (r->count_fds && fdc_want(r->container_id, r->sandbox_id))
		pending = true;
	child_defer(msg, &w->d);
	if (!pending) {
		stats_reply(&w->d, r->container_id, r->sandbox_id, r->count_fds);
		free(w);
		return;
	}
	w->container_id = xstrdup(r->container_id);
	w->sandbox_id = xstrdup(r->sandbox_id);
	w->count_fds = r->count_fds;
	w->timer = evtimer_new(child_base(), stats_timeout, w);
	evtimer_add(w->timer, &tv);
	w->next = stats_waits;
	stats_waits = w;
}
