/* Containers: create (rootfs overlay, bundle, spec), start (monitor and
 * `runc run`), stop, remove, list, exits and recovery.
 *
 * Rollback contract with the frontend: a ContainerCreate that fails undoes
 * what it did (rootfs mount, bundle); the frontend then removes the
 * snapshot it prepared through imaged. A ContainerStart that fails leaves
 * the container EXITED (StartError) with nothing running and no runtime
 * state. After a successful ContainerRemove the frontend removes the
 * snapshot too. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/snapshot_mac.h"
#include "ipc/child.h"
#include "runtimed/idmap.h"
#include "runtimed/monitor.h"
#include "runtimed/rootfs.h"
#include "runtimed/runtimed.h"

#define CTR_NAME_MAX 253
#define LOG_PATH_MAX 4000

static void reply_err(struct ipc_chan *chan, struct ipc_msg *msg, struct crisp_error *err)
{
	ipc_reply_error(chan, msg, err);
}

/* A container still UNKNOWN is listed only while no operation holds it
 * (on_container_list), so its busy count is part of what lists show. */
static void ctr_busy(struct ctr *c, int delta)
{
	c->busy += delta;
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN)
		list_changed();
}

static void ctr_unlink(struct ctr *c)
{
	for (struct ctr **pp = &rt.ctrs; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

/* --- validation ------------------------------------------------------------ */

static bool name_part_ok(const char *s)
{
	size_t n = s ? strnlen(s, CTR_NAME_MAX + 1) : 0;

	if (n == 0 || n > CTR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '_' || s[i] == '/')
			return false;
	return true;
}

/* The container's CRI log: <log_directory>/<log_path>, both set, the latter
 * relative without ".." components; NULL (with err clear) when there is none. */
static char *log_path_make(const Runtime__V1__PodSandboxConfig *sc,
			   const Runtime__V1__ContainerConfig *cc, struct crisp_error *err)
{
	const char *dir = sc->log_directory, *rel = cc->log_path;
	_cleanup_free_ char *copy = NULL;
	char *save = NULL;

	if (!dir || !*dir || !rel || !*rel)
		return NULL;
	if (dir[0] != '/' || rel[0] == '/' || strlen(dir) + strlen(rel) > LOG_PATH_MAX ||
	    strpbrk(rel, "\n") || strpbrk(dir, "\n")) {
		err_set(err, CRISP_E_INVALID, "log path '%.200s' + '%.200s' is not acceptable", dir,
			rel);
		return NULL;
	}
	copy = xasprintf("%s/%s", dir, rel);
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
		if (streq(c, "..") || streq(c, ".")) {
			err_set(err, CRISP_E_INVALID, "log path has a '.' or '..' component");
			return NULL;
		}
	/* Joined without doubled or trailing slashes: the monitor wants it clean. */
	{
		size_t dl = strlen(dir);
		while (dl > 1 && dir[dl - 1] == '/')
			dl--;
		if (strstr(rel, "//") || rel[strlen(rel) - 1] == '/') {
			err_set(err, CRISP_E_INVALID, "log path '%.200s' is not clean", rel);
			return NULL;
		}
		return xasprintf("%.*s/%s", (int)dl, dir, rel);
	}
}

/* --- rootfs and image files ---------------------------------------------------- */

/* A file of the image, read through the rootfs as its root: no symlink in
 * the image can lead out of it. NULL when absent or unreadable. */
static char *image_file(int rootfd, const char *path)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	buf = xmalloc(RT_IMAGE_FILE_MAX + 1);
	while ((n = read(fd, buf + len, RT_IMAGE_FILE_MAX - len)) > 0)
		len += (size_t)n;
	if (n < 0 || len >= RT_IMAGE_FILE_MAX) {
		log_warn("image file %s is unreadable or larger than %u bytes", path,
			 RT_IMAGE_FILE_MAX);
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* --- create -------------------------------------------------------------------- */

/* What fails here is logged and listed to be tried again: the record goes
 * anyway (or never was). */
static void create_cleanup(struct ctr *c)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_free_ char *rootfs = bundle_path(c->id, "rootfs");
	int r;

	rootfs_umount(bundle);
	if ((r = rm_rf(bundle)) < 0) {
		log_warn("removing %s: %s", bundle, strerror(-r));
		cleanup_retry_add(CLEANUP_PATH, c->id, bundle, rootfs);
	}
	exit_dir_remove(c->id);
}

/* Undoes a create that failed before its record was stored, and answers. */
static void create_fail(struct ipc_chan *chan, struct ipc_msg *msg, struct ctr *c,
			struct crisp_error *err)
{
	log_warn("container %.12s: create failed: %s", c->id, err->msg);
	create_cleanup(c);
	ctr_free(c);
	reply_err(chan, msg, err);
}

/* For a pod with a user namespace of its own: its pin opened, its root's
 * host ids, and the bundle searchable by that root, as which runc mounts
 * the rootfs and binds the idmapped clones: group-searchable for the root's
 * host gid only (0710), not for everyone, since the clones under it show
 * the container's volumes (secrets too) to whoever can reach them. Nothing
 * for any other pod. */
static int create_userns(const char *bundle, const struct pod *p, struct rootfs_userns *u,
			 struct crisp_error *err)
{
	_cleanup_close_ int fd = -1;

	if (!pod_has_userns(p))
		return 0;
	if (idmap_host_root(idmap_pod_userns(p->info->config), &u->root_uid, &u->root_gid, err) < 0)
		return -1;
	fd = open(bundle, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, 0, u->root_gid) < 0 || fchmod(fd, 0710) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "making %s searchable by group %u", bundle,
				     (unsigned)u->root_gid);
	u->userns_fd = pod_userns_open(p->id, err);
	return u->userns_fd < 0 ? -1 : 0;
}

static pid_t target_pid(const Runtime__V1__ContainerConfig *cc)
{
	const Runtime__V1__NamespaceOption *ns =
		cc->linux && cc->linux->security_context
			? cc->linux->security_context->namespace_options
			: NULL;
	struct ctr *t;

	if (!ns || ns->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET)
		return 0;
	t = id_valid(ns->target_id) ? ctr_find(ns->target_id) : NULL;
	return t && proc_alive(t->info->pid, t->pid_start) ? t->info->pid : -1;
}

static int create_prepare(struct ctr *c, const CrispIpc__ContainerCreateRequest *r, struct pod *p,
			  struct crisp_error *err)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_free_ char *rootfs = bundle_path(c->id, "rootfs");
	_cleanup_free_ char *passwd = NULL, *group = NULL;
	_cleanup_close_ int rootfd = -1;
	char *paths[POD_SPEC_PATHS] = { 0 };
	struct spec_pod sp;
	struct spec_container sc = { 0 };
	struct spec_host host;
	const struct rt_handler *h;
	struct rootfs_userns u = { .userns_fd = -1 };
	json_t *spec;
	int ret;

	if (mkdir(bundle, 0700) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", bundle);
	if (create_userns(bundle, p, &u, err) < 0)
		return -1;
	ret = rootfs_mount(rt.snapshots, rt.home, bundle, r->rootfs, &u, err);
	if (ret < 0)
		goto out;
	rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		ret = err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", rootfs);
		goto out;
	}
	passwd = image_file(rootfd, "/etc/passwd");
	group = image_file(rootfd, "/etc/group");
	pod_spec_fill(p, &sp, paths);
	sc.container_id = c->id;
	sc.config = r->config;
	sc.image = r->image ? r->image : r->rootfs->image;
	sc.files.passwd = passwd;
	sc.files.group = group;
	sc.rootfs = rootfs;
	sc.target_pid = target_pid(r->config);
	sc.image_name = *r->image_ref ? r->image_ref : NULL;
	if (sc.target_pid < 0) {
		ret = err_set(err, CRISP_E_NOT_FOUND,
			      "pid namespace target container is not running");
		goto out;
	}
	if (!sc.image) {
		ret = err_set(err, CRISP_E_INVALID, "no image run config");
		goto out;
	}
	/* Recursive read-only mounts only where the pod's runtime has them,
	 * as Status reports (its `features`, asked at start). */
	host = rt.host;
	h = handler_find(p->info->runtime_handler);
	host.rro_mounts = rt.host.rro_mounts && h && h->rro_mounts;
	spec = spec_container(&host, &sp, &sc, err);
	if (!spec) {
		ret = -1;
		goto out;
	}
	/* What ContainerStatus.user reports, kept in the record: the spec
	 * is not read again, and a restarted runtimed must still know it. */
	c->info->user = spec_process_user(spec);
	if (!c->info->user) {
		json_decref(spec);
		ret = err_set(err, CRISP_E_INTERNAL, "the generated spec has no process.user");
		goto out;
	}
	/* Volumes and pod files through idmapped clones, which a failure
	 * leaves to create_cleanup (rootfs_umount). */
	ret = u.userns_fd >= 0 ? spec_mounts_idmap(spec, bundle, u.userns_fd, err) : 0;
	if (ret == 0)
		ret = write_spec(c->id, spec, err);
	json_decref(spec);
out:
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		free(paths[i]);
	if (u.userns_fd >= 0)
		close(u.userns_fd);
	return ret;
}

void on_container_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	const CrispIpc__ContainerCreateRequest *r = (const CrispIpc__ContainerCreateRequest *)req;
	struct crisp_error err = { 0 };
	struct pod *p;
	struct ctr *c;
	const Runtime__V1__PodSandboxMetadata *pm;
	_cleanup_free_ char *log = NULL;
	const CrispIpc__ImageRunConfig *image;

	if (!id_valid(r->container_id) || !id_valid(r->sandbox_id)) {
		err_set(&err, CRISP_E_INVALID,
			"container and sandbox ids must be 64 lowercase hex");
		return reply_err(chan, msg, &err);
	}
	p = pod_find(r->sandbox_id);
	if (!p || p->info->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY) {
		err_set(&err, p ? CRISP_E_PRECONDITION : CRISP_E_NOT_FOUND, "sandbox %s %s",
			r->sandbox_id, p ? "is not ready" : "not found");
		return reply_err(chan, msg, &err);
	}
	if (p->busy) {
		/* Being stopped or removed: a container made now would escape that. */
		err_set(&err, CRISP_E_PRECONDITION, "sandbox %s is being stopped or removed",
			p->id);
		return reply_err(chan, msg, &err);
	}
	if (ctr_find(r->container_id) || pod_find(r->container_id)) {
		err_set(&err, CRISP_E_EXISTS, "container id %s is in use", r->container_id);
		return reply_err(chan, msg, &err);
	}
	if (!r->config || !r->config->metadata || !name_part_ok(r->config->metadata->name)) {
		err_set(&err, CRISP_E_INVALID,
			"container metadata name must be non-empty, at most %d bytes, without "
			"'_', '/' or control characters",
			CTR_NAME_MAX);
		return reply_err(chan, msg, &err);
	}
	/* Only imaged knows which snapshot is whose: a mount it did not
	 * prepare for this very container (another's upperdir, a shared
	 * layer as upperdir, another image's lowerdirs) is refused before
	 * anything is touched. What is recorded after this is trusted. */
	if (snapshot_mac_verify(child_snapshot_key(), r->container_id, r->rootfs, &err) < 0) {
		log_warn("security: CreateContainer %.12s from the frontend refused: %s",
			 r->container_id, err.msg);
		return reply_err(chan, msg, &err);
	}
	if (rootfs_check(rt.snapshots, r->rootfs, &err) < 0)
		return reply_err(chan, msg, &err);
	image = r->image ? r->image : r->rootfs->image;
	log = log_path_make(p->info->config, r->config, &err);
	if (!log && err.code != CRISP_E_OK)
		return reply_err(chan, msg, &err);
	pm = p->info->config->metadata;
	c = xcalloc(1, sizeof(*c));
	memcpy(c->id, r->container_id, ID_LEN + 1);
	c->name = xasprintf("k8s_%s_%s_%s_%s_%u", r->config->metadata->name, pm->name,
			    pm->namespace_, pm->uid, r->config->metadata->attempt);
	for (struct ctr *q = rt.ctrs; q; q = q->next)
		if (streq(q->name, c->name)) {
			err_set(&err, CRISP_E_EXISTS, "container name %s is reserved by %s",
				c->name, q->id);
			ctr_free(c);
			return reply_err(chan, msg, &err);
		}
	/* KEP-4960: the config's stop_signal, else the image's STOPSIGNAL,
	 * else SIGTERM. A value outside the enum is refused by spec
	 * generation (create_prepare), before anything is recorded. */
	c->stop_signal = spec_stop_signal(r->config->stop_signal);
	if (c->stop_signal <= 0 && image && *image->stop_signal)
		c->stop_signal = spec_signal_parse(image->stop_signal);
	if (c->stop_signal <= 0)
		c->stop_signal = SIGTERM;
	c->info = xcalloc(1, sizeof(*c->info));
	crisp_ipc__container_info__init(c->info);
	c->info->id = xstrdup(c->id);
	c->info->sandbox_id = xstrdup(p->id);
	c->info->created_at = now_ns();
	c->info->stop_signal = spec_signal_enum(c->stop_signal);
	c->info->config = msg_dup(&runtime__v1__container_config__descriptor, &r->config->base);
	c->info->image_id = xstrdup(image && image->image_id ? image->image_id : "");
	c->info->image_ref = xstrdup(r->image_ref ? r->image_ref : "");
	c->info->log_path = xstrdup(log ? log : "");
	c->info->reason = xstrdup("");
	c->info->message = xstrdup("");
	c->rootfs = msg_dup(&crisp_ipc__snapshot_mount__descriptor, &r->rootfs->base);
	if (!handler_find(p->info->runtime_handler)) {
		err_set(&err, CRISP_E_UNAVAILABLE, "runtime handler '%s' is gone",
			p->info->runtime_handler);
		return create_fail(chan, msg, c, &err);
	}
	/* Everything but a process: the container is started, by its
	 * monitor's one `runc run`, at ContainerStart. The record is written
	 * once the bundle is complete; a runtimed that dies before leaves a
	 * bundle no record owns, which its restart removes (sweep_orphans). */
	if (create_prepare(c, r, p, &err) < 0)
		return create_fail(chan, msg, c, &err);
	c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	if (state_ctr_insert(c, &err) < 0)
		return create_fail(chan, msg, c, &err);
	c->next = rt.ctrs;
	rt.ctrs = c;
	event_emit(c->id, c->info->sandbox_id,
		   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
	ipc_reply(chan, msg, &c->info->base, NULL, 0);
}

/* --- start ------------------------------------------------------------------------
 *
 * ContainerStart launches the container's monitor, which runs `runc run
 * --detach` (monitor.h): one runtime invocation per container. While it
 * runs, <bundle>/START_MARK exists, so that a runtimed restarted meanwhile
 * knows a monitor may be at work and looks for the outcome (start_resolve)
 * instead of taking the container for never started. Stops that come while
 * a start is in flight wait for its outcome. */

#define START_MARK "starting"
#define START_RESOLVE_POLL_MS 250
/* A monitor that was launched but not seen yet: how long recovery waits
 * for its control socket before it takes the launch as lost. */
#define START_RESOLVE_GRACE_MS 5000
/* runc run cannot take longer than runtimed waits for a sync line. */
#define START_RESOLVE_MAX_MS 125000
#define START_ERROR_EXIT_CODE 128 /* containerd's for a container that never ran */
#define RUNC_LOG_TAIL 16384

struct stop_req {
	struct stop_req *next;
	int sig;
	int64_t timeout_s;
	void (*fn)(bool, void *);
	void *arg;
};

struct start_job {
	struct start_job *next;
	struct ctr *c;
	struct child_deferred d;
	bool reply;          /* a ContainerStart waits for the outcome */
	int64_t started_at;  /* taken before the monitor was launched */
	struct event *timer; /* recovery: looks at the bundle until resolved */
	uint64_t grace_ms, give_up_ms;
	struct stop_req *stops; /* ctr_stop calls waiting for the outcome */
};

static struct start_job *starts;

static struct start_job *start_find(const struct ctr *c)
{
	for (struct start_job *j = starts; j; j = j->next)
		if (j->c == c)
			return j;
	return NULL;
}

static struct start_job *start_job_new(struct ctr *c)
{
	struct start_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->next = starts;
	starts = j;
	ctr_busy(c, 1);
	return j;
}

static void start_mark_remove(const char *id)
{
	_cleanup_free_ char *mark = bundle_path(id, START_MARK);

	if (unlink(mark) < 0 && errno != ENOENT)
		log_warn("removing %s: %s", mark, strerror(errno));
}

/* The start is resolved: the container is no longer busy with it, and the
 * stops that waited run now. The mark goes unless the outcome could not be
 * recorded (keep_mark): then a restarted runtimed resolves it again. */
static void start_job_finish(struct start_job *j, bool keep_mark)
{
	struct stop_req *stops = j->stops;
	char id[ID_LEN + 1];

	memcpy(id, j->c->id, ID_LEN + 1);
	if (!keep_mark)
		start_mark_remove(id);
	ctr_busy(j->c, -1);
	for (struct start_job **pp = &starts; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->timer)
		event_free(j->timer);
	free(j);
	while (stops) {
		struct stop_req *s = stops;
		/* an earlier one may have led to its removal */
		struct ctr *c = ctr_find(id);

		stops = s->next;
		if (c)
			ctr_stop(c, s->sig, s->timeout_s, s->fn, s->arg);
		else
			s->fn(true, s->arg);
		free(s);
	}
}

static const struct rt_handler *ctr_handler(const struct ctr *c)
{
	struct pod *p = pod_find(c->info->sandbox_id);

	return p ? handler_find(p->info->runtime_handler) : NULL;
}

/* The start failed (msg says why, e.g. runc's "exec: \"x\": executable
 * file not found in $PATH"; code is the error's, CRISP_E_RESOURCE for a
 * full disk): like containerd, the container is EXITED with reason
 * StartError, and nothing of it runs or stays in the runtime. */
static void start_failed(struct start_job *j, enum crisp_errcode code, const char *msg)
{
	struct ctr *c = j->c;
	const struct rt_handler *h = ctr_handler(c);
	const char *args[] = { "delete", "--force", c->id, NULL };
	struct crisp_error err = { 0 };
	bool saved;

	log_warn("container %.12s: start failed: %s", c->id, msg);
	/* The monitor deletes what runc made when run fails; a monitor that
	 * died or was killed could not: make sure. */
	if (h && runc_run(h, args, NULL, NULL, &err) < 0)
		log_warn("container %.12s: %s", c->id, err.msg);
	err_clear(&err);
	c->info->pid = 0;
	c->pid_start = 0;
	/* Not recorded (a full disk, say): the start mark stays, so that a
	 * recovery resolves the start again instead of finding it CREATED. */
	saved = ctr_exited(c, START_ERROR_EXIT_CODE, now_ns(), "StartError", msg) == 0;
	if (j->reply) {
		err_set(&err, code != CRISP_E_OK ? code : CRISP_E_INTERNAL,
			"starting container %s: %s", c->id, msg);
		child_reply_error(&j->d, &err);
	}
	start_job_finish(j, !saved);
}

static void start_succeeded(struct start_job *j, pid_t pid)
{
	struct ctr *c = j->c;
	struct crisp_error err = { 0 };
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	bool saved;

	c->info->pid = pid;
	c->pid_start = proc_starttime(pid);
	/* The init may have run and exited, and its exit file been processed,
	 * before the monitor's line was read: an exit recorded meanwhile wins
	 * over RUNNING, and the start time is the one taken before the
	 * monitor was launched (the process cannot have run earlier), never
	 * later than the recorded finish. */
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED)
		c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	c->info->started_at = j->started_at;
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED &&
	    c->info->finished_at < c->info->started_at)
		c->info->started_at = c->info->finished_at;
	saved = state_ctr_save(c, &err) == 0;
	if (!saved)
		/* It runs: in memory it is RUNNING, and as long as the mark
		 * stays a recovery finds it by its bundle's pid file; the next
		 * save (its exit's at the latest) writes the whole record. So
		 * the start succeeded and says so: an error (a full disk, say)
		 * would tell the kubelet of a failed start while the container
		 * runs and is listed RUNNING. */
		log_err("container %.12s: started, but recording it: %s (its start mark "
			"stays)",
			c->id, err.msg);
	event_emit(c->id, c->info->sandbox_id,
		   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	if (j->reply)
		child_reply(&j->d, &empty.base);
	start_job_finish(j, !saved);
}

static void start_monitor_done(pid_t pid, const struct crisp_error *err, void *arg)
{
	struct start_job *j = arg;

	if (err)
		return start_failed(j, err->code, err->msg);
	start_succeeded(j, pid);
}

static struct ctr *ctr_lookup(struct ipc_chan *chan, struct ipc_msg *msg, const char *id)
{
	struct crisp_error err = { 0 };
	struct ctr *c = id_valid(id) ? ctr_find(id) : NULL;

	if (!id_valid(id))
		err_set(&err, CRISP_E_INVALID, "container id is not 64 lowercase hex digits");
	else if (!c)
		err_set(&err, CRISP_E_NOT_FOUND, "container %s not found", id);
	else if (c->busy)
		err_set(&err, CRISP_E_UNAVAILABLE, "container %s is busy with another operation",
			id);
	if (err.code != CRISP_E_OK) {
		reply_err(chan, msg, &err);
		return NULL;
	}
	return c;
}

void on_container_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	struct ctr *c = ctr_lookup(chan, msg, r->container_id);
	struct crisp_error err = { 0 };
	const struct rt_handler *h;
	const Runtime__V1__ContainerConfig *cfg;
	_cleanup_free_ char *mark = NULL;
	_cleanup_close_ int markfd = -1;
	struct start_job *j;

	if (!c)
		return;
	h = ctr_handler(c);
	cfg = c->info->config;
	if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED) {
		err_set(&err, CRISP_E_PRECONDITION, "container %s is not in the created state",
			c->id);
		return reply_err(chan, msg, &err);
	}
	if (c->info->pid != 0) {
		/* made by `runc create` of an earlier crisp-runtimed */
		err_set(&err, CRISP_E_PRECONDITION,
			"container %s was created by an earlier crisp-runtimed and cannot be "
			"started: remove it and create it again",
			c->id);
		return reply_err(chan, msg, &err);
	}
	if (!h) {
		err_set(&err, CRISP_E_UNAVAILABLE, "container %s: its runtime handler is gone",
			c->id);
		return reply_err(chan, msg, &err);
	}
	if (!cfg) {
		err_set(&err, CRISP_E_INTERNAL, "container %s: its record has no config", c->id);
		return reply_err(chan, msg, &err);
	}
	mark = bundle_path(c->id, START_MARK);
	markfd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (markfd < 0) {
		err_set_errno(&err, CRISP_E_INTERNAL, errno, "creating %s", mark);
		return reply_err(chan, msg, &err);
	}
	j = start_job_new(c);
	j->reply = true;
	child_defer(msg, &j->d);
	j->started_at = now_ns();
	if (monitor_launch(h, c->id, *c->info->log_path ? c->info->log_path : "/dev/null",
			   cfg->stdin, cfg->stdin_once, cfg->tty, start_monitor_done, j, &err) < 0)
		start_failed(j, err.code, err.msg);
}

/* --- recovery of a start in flight ------------------------------------------------------ */

/* Whether the container's monitor answers on its control socket (queued
 * connections count: a monitor busy with runc accepts later); its pid in
 * *ret_pid when it can be told. */
static bool monitor_alive(const char *id, pid_t *ret_pid)
{
	_cleanup_free_ char *bundle = bundle_path(id, NULL);
	_cleanup_close_ int dirfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);

	*ret_pid = 0;
	if (dirfd < 0 || fd < 0)
		return false;
	/* through /proc/self/fd: the bundle path may not fit in sun_path */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, MONITOR_SOCKET);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == EAGAIN;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 1)
		*ret_pid = cred.pid;
	return true;
}

/* The container's init as runc recorded it in the bundle, 0 if none. */
static pid_t pid_file_read(const char *id)
{
	_cleanup_free_ char *path = bundle_path(id, MONITOR_PID_FILE);
	struct crisp_error err = { 0 };
	_cleanup_free_ char *data = read_file(path, 32, NULL, &err);
	uint64_t v;

	if (!data)
		return 0;
	data[strcspn(data, "\n")] = '\0';
	if (parse_uint64(data, 10, (1u << 22) - 1, &v) < 0 || v <= 1)
		return 0;
	return (pid_t)v;
}

/* The last error runc logged in the bundle's runc.log (the monitor's
 * `--log`), the reason a run failed; NULL if none. */
static char *runtime_log_error(const char *id)
{
	_cleanup_free_ char *path = bundle_path(id, MONITOR_RUNTIME_LOG);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	char *buf, *line, *next, *found = NULL;
	off_t end;
	ssize_t n;

	if (fd < 0 || (end = lseek(fd, 0, SEEK_END)) < 0)
		return NULL;
	buf = xmalloc(RUNC_LOG_TAIL + 1);
	/* the tail is enough: the failure is the last thing it says */
	n = pread(fd, buf, RUNC_LOG_TAIL, end > RUNC_LOG_TAIL ? end - RUNC_LOG_TAIL : 0);
	buf[n > 0 ? n : 0] = '\0';
	for (line = buf; *line; line = next) {
		json_t *o, *level, *msg;

		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		level = json_object_get(o, "level");
		msg = json_object_get(o, "msg");
		if (json_is_string(level) && json_is_string(msg) &&
		    (streq(json_string_value(level), "error") ||
		     streq(json_string_value(level), "fatal"))) {
			free(found);
			found = xstrdup(json_string_value(msg));
		}
		json_decref(o);
	}
	free(buf);
	return found;
}

static void start_resolve_tick(evutil_socket_t fd, short what, void *arg)
{
	struct start_job *j = arg;
	struct ctr *c = j->c;
	struct timeval tv = { 0, START_RESOLVE_POLL_MS * 1000 };
	pid_t pid, monitor_pid;
	bool alive;

	/* It ran and exited already: the exit file has the outcome. */
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ||
	    exits_check(c->id)) {
		struct crisp_error err = { 0 };
		c->info->started_at = j->started_at < c->info->finished_at ? j->started_at
									   : c->info->finished_at;
		if (state_ctr_save(c, &err) < 0)
			log_err("%s", err.msg);
		log_info("container %.12s: its start, in flight at the restart, ran and exited",
			 c->id);
		return start_job_finish(j, err.code != CRISP_E_OK);
	}
	pid = pid_file_read(c->id);
	alive = monitor_alive(c->id, &monitor_pid);
	if (pid > 0 && kill(pid, 0) == 0) {
		/* runc wrote the pid file once the init ran; if the monitor
		 * died since, stops still work through the pid */
		log_info("container %.12s: its start, in flight at the restart, succeeded (pid %d)",
			 c->id, (int)pid);
		return start_succeeded(j, pid);
	}
	if (alive && now_ms() < j->give_up_ms) {
		evtimer_add(j->timer, &tv);
		return;
	}
	if (alive) {
		if (monitor_pid > 0)
			kill(monitor_pid, SIGKILL);
		return start_failed(j, CRISP_E_INTERNAL, "its monitor did not start it in time");
	}
	if (now_ms() < j->grace_ms) {
		evtimer_add(j->timer, &tv);
		return;
	}
	{
		/* The monitor's report went to the runtimed that died; runc's
		 * own log in the bundle says why the run failed. */
		_cleanup_free_ char *why = runtime_log_error(c->id);
		_cleanup_free_ char *msg =
			why ? xasprintf("runc run: %s", why)
			    : xstrdup("start interrupted by a crisp-runtimed restart; its monitor "
				      "is gone and the container does not run");
		start_failed(j, CRISP_E_INTERNAL, msg);
	}
}

/* A start was in flight when runtimed went away: its monitor may still be
 * running runc, or be done either way. Until that is known the container
 * is busy (its stops wait). */
static void start_resolve(struct ctr *c, const struct stat *mark)
{
	struct start_job *j = start_job_new(c);
	struct timeval now = { 0, 0 };

	j->started_at = (int64_t)mark->st_mtim.tv_sec * 1000000000 + mark->st_mtim.tv_nsec;
	j->grace_ms = now_ms() + START_RESOLVE_GRACE_MS;
	j->give_up_ms = now_ms() + START_RESOLVE_MAX_MS;
	j->timer = evtimer_new(child_base(), start_resolve_tick, j);
	evtimer_add(j->timer, &now);
}

/* --- exits and stop ------------------------------------------------------------------ */

struct ctr_job {
	struct ctr *c;
	struct child_deferred d;
};

/* --- exits and stop ------------------------------------------------------------------ */

int ctr_exited(struct ctr *c, int exit_code, int64_t finished_at, const char *reason,
	       const char *message)
{
	struct crisp_error err = { 0 };
	int r = 0;

	if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED) {
		c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
		c->info->exit_code = exit_code;
		c->info->finished_at = finished_at;
		str_set(&c->info->reason, reason);
		str_set(&c->info->message, message);
		r = state_ctr_save(c, &err);
		if (r < 0)
			log_err("%s", err.msg);
		log_info("container %.12s exited: %d (%s)", c->id, exit_code, reason);
		event_emit(c->id, c->info->sandbox_id,
			   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
	}
	exit_waits_fire(&c->waits, true);
	return r;
}

struct stop_job {
	struct ctr *c;
	void (*fn)(bool, void *);
	void *arg;
	struct event *timer;
	bool killed; /* SIGKILL sent */
};

static void stop_finish(struct stop_job *j, bool ok)
{
	event_free(j->timer);
	j->fn(ok, j->arg);
	free(j);
}

static void stop_exited(bool exited, void *arg)
{
	stop_finish(arg, exited);
}

struct kill_req {
	char id[ID_LEN + 1];
	int sig;
};

/* runc may have lost its state (the state dir is volatile) while the
 * process lives on: then signal the init ourselves, once its start time
 * proves the pid still names it. */
static void kill_done(int status, const char *errout, void *arg)
{
	struct kill_req *k = arg;
	struct ctr *c = ctr_find(k->id);

	if (status != 0) {
		log_debug("container %.12s: runc kill: %s", k->id, errout);
		if (c && proc_alive(c->info->pid, c->pid_start))
			kill(c->info->pid, k->sig);
	}
	free(k);
}

static void stop_signal(struct stop_job *j, int sig)
{
	struct ctr *c = j->c;
	struct pod *p = pod_find(c->info->sandbox_id);
	const struct rt_handler *h = p ? handler_find(p->info->runtime_handler) : NULL;
	char signame[16];
	const char *args[] = { "kill", c->id, signame, NULL };
	struct crisp_error err = { 0 };

	struct kill_req *k = xcalloc(1, sizeof(*k));

	snprintf(signame, sizeof(signame), "%d", sig);
	memcpy(k->id, c->id, ID_LEN + 1);
	k->sig = sig;
	if (!h || runc_run(h, args, kill_done, k, &err) < 0) {
		free(k);
		/* No runtime to ask: signal the init directly, if still ours. */
		if (proc_alive(c->info->pid, c->pid_start))
			kill(c->info->pid, sig);
	}
}

static void stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct stop_job *j = arg;
	struct ctr *c = j->c;
	struct timeval tv = { RT_STOP_KILL_WAIT_MS / 1000, 0 };

	if (!j->killed) {
		j->killed = true;
		stop_signal(j, SIGKILL);
		evtimer_add(j->timer, &tv);
		return;
	}
	/* Killed, and still no exit file: if the process is gone, its monitor
	 * is too; record the exit ourselves rather than wait forever. */
	for (struct exit_wait **w = &c->waits; *w; w = &(*w)->next)
		if ((*w)->arg == j) {
			struct exit_wait *x = *w;
			*w = x->next;
			free(x);
			break;
		}
	if (!proc_alive(c->info->pid, c->pid_start)) {
		ctr_exited(c, 137, now_ns(), "Error", "killed; its monitor recorded no exit");
		stop_finish(j, true);
	} else {
		log_warn("container %.12s survives SIGKILL", c->id);
		stop_finish(j, false);
	}
}

void ctr_stop(struct ctr *c, int sig, int64_t timeout_s, void (*fn)(bool, void *), void *arg)
{
	struct start_job *sj = start_find(c);
	struct stop_job *j;
	struct timeval tv = { 0, 0 };

	if (sj) {
		/* Its monitor is running runc: stop what that gives. */
		struct stop_req *s = xcalloc(1, sizeof(*s));
		s->sig = sig;
		s->timeout_s = timeout_s;
		s->fn = fn;
		s->arg = arg;
		s->next = sj->stops;
		sj->stops = s;
		return;
	}
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ||
	    (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN && !c->busy) ||
	    exits_check(c->id)) {
		fn(true, arg);
		return;
	}
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED &&
	    c->info->pid == 0) {
		/* Never started: no process and nothing in the runtime. It
		 * ends as a created container signalled by runc used to: dead
		 * of the first signal the stop sends. */
		int first = timeout_s <= 0 || sig == SIGKILL ? SIGKILL : sig;
		ctr_exited(c, 128 + first, now_ns(), "Error", "stopped before it was started");
		fn(true, arg);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->fn = fn;
	j->arg = arg;
	j->timer = evtimer_new(child_base(), stop_timeout, j);
	exit_wait_add(&c->waits, stop_exited, j);
	if (timeout_s <= 0 || sig == SIGKILL) {
		j->killed = true;
		stop_signal(j, SIGKILL);
		tv.tv_sec = RT_STOP_KILL_WAIT_MS / 1000;
	} else {
		stop_signal(j, sig);
		tv.tv_sec = timeout_s > 86400 * 365 ? 86400 * 365 : timeout_s;
	}
	evtimer_add(j->timer, &tv);
}

static void stop_replied(bool ok, void *arg)
{
	struct ctr_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };

	if (ok) {
		child_reply(&j->d, &empty.base);
	} else {
		err_set(&err, CRISP_E_INTERNAL, "container %s did not stop", j->c->id);
		child_reply_error(&j->d, &err);
	}
	free(j);
}

void on_container_stop(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerStopRequest *r = (const CrispIpc__ContainerStopRequest *)req;
	struct crisp_error err = { 0 };
	struct ctr *c = id_valid(r->container_id) ? ctr_find(r->container_id) : NULL;
	struct ctr_job *j;

	/* Concurrent stops are fine (each waits for the same exit); only a
	 * create in flight is not. */
	if (!id_valid(r->container_id) || !c ||
	    c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN) {
		err_set(&err,
			c                            ? CRISP_E_UNAVAILABLE
			: !id_valid(r->container_id) ? CRISP_E_INVALID
						     : CRISP_E_NOT_FOUND,
			"container %.64s %s", r->container_id,
			c ? "is being created" : "not found");
		return reply_err(chan, msg, &err);
	}
	if (r->timeout < 0) {
		err_set(&err, CRISP_E_INVALID, "negative stop timeout");
		return reply_err(chan, msg, &err);
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	child_defer(msg, &j->d);
	ctr_stop(c, c->stop_signal, r->timeout, stop_replied, j);
}

/* --- remove ----------------------------------------------------------------------------- */

struct destroy_job {
	struct ctr *c;
	void (*fn)(int, const struct crisp_error *, void *);
	void *arg;
};

static void destroy_fail(struct destroy_job *j, const struct crisp_error *err)
{
	ctr_busy(j->c, -1);
	j->fn(-1, err, j->arg);
	free(j);
}

static void destroy_deleted(int status, const char *errout, void *arg)
{
	struct destroy_job *j = arg;
	struct ctr *c = j->c;
	struct crisp_error err = { 0 };
	char sandbox_id[ID_LEN + 1];

	/* "does not exist": runc has nothing of it (a reboot, a failed
	 * start). Anything else (a hung runc killed, a cgroup that would not
	 * go) leaves runc's state and the container's cgroups behind: the
	 * record, and so the removal, stays, for the kubelet to retry. Nothing
	 * is torn down yet, so a retry does all of it again. */
	if (status != 0 && !strstr(errout, "not exist")) {
		err_set(&err, CRISP_E_INTERNAL, "runc delete %s: %s", c->id, errout);
		log_warn("container %.12s: %s", c->id, err.msg);
		return destroy_fail(j, &err);
	}
	create_cleanup(c);
	if (state_ctr_delete(c->id, &err) < 0)
		return destroy_fail(j, &err);
	snprintf(sandbox_id, sizeof(sandbox_id), "%s", c->info->sandbox_id);
	ctr_unlink(c);
	event_emit(c->id, sandbox_id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
	ctr_free(c);
	j->fn(0, NULL, j->arg);
	free(j);
}

static void destroy_stopped(bool ok, void *arg)
{
	struct destroy_job *j = arg;
	struct ctr *c = j->c;
	struct pod *p = pod_find(c->info->sandbox_id);
	const struct rt_handler *h = p ? handler_find(p->info->runtime_handler) : NULL;
	const char *args[] = { "delete", "--force", c->id, NULL };
	struct crisp_error err = { 0 };

	if (!ok) {
		err_set(&err, CRISP_E_INTERNAL, "container %s did not stop", c->id);
		return destroy_fail(j, &err);
	}
	/* Never started, or its failed start was cleaned up: runc has no
	 * state of it. Without any runtime there is none to ask either. */
	if (c->info->pid == 0)
		return destroy_deleted(0, "", j);
	if (!h)
		h = handler_find("");
	if (!h)
		return destroy_deleted(0, "", j);
	if (runc_run(h, args, destroy_deleted, j, &err) < 0) {
		err_prefix(&err, "runc delete %s", c->id);
		return destroy_fail(j, &err);
	}
}

void ctr_destroy(struct ctr *c, void (*fn)(int r, const struct crisp_error *err, void *arg),
		 void *arg)
{
	struct destroy_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->fn = fn;
	j->arg = arg;
	ctr_busy(c, 1);
	ctr_stop(c, SIGKILL, 0, destroy_stopped, j);
}

static void remove_done(int r, const struct crisp_error *err, void *arg)
{
	struct ctr_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	if (r < 0)
		child_reply_error(&j->d, err);
	else
		child_reply(&j->d, &empty.base);
	free(j);
}

/* CRI: removing a running container force-removes it (containerd kills it
 * first); an unknown id is not an error. */
void on_container_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct ctr *c;
	struct ctr_job *j;

	if (id_valid(r->container_id) && !ctr_find(r->container_id)) {
		ipc_reply(chan, msg, &empty.base, NULL, 0);
		return;
	}
	c = ctr_lookup(chan, msg, r->container_id);
	if (!c)
		return;
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	child_defer(msg, &j->d);
	ctr_destroy(c, remove_done, j);
}

/* A ContainerListRequest.brief copy of info: its config holds only what a
 * CRI list shows and filters on (metadata, labels, annotations), so that a
 * list, asked every second by the kubelet, does not pack and unpack every
 * container's envs, mounts and devices. Shallow: it points into info,
 * which must outlive it, and changes nothing there. */
static CrispIpc__ContainerInfo *container_info_brief(const CrispIpc__ContainerInfo *info,
						     CrispIpc__ContainerInfo *out,
						     Runtime__V1__ContainerConfig *out_cfg)
{
	*out = *info;
	out->user = NULL; /* lists do not show it */
	if (!info->config)
		return out;
	runtime__v1__container_config__init(out_cfg);
	out_cfg->metadata = info->config->metadata;
	out_cfg->n_labels = info->config->n_labels;
	out_cfg->labels = info->config->labels;
	out_cfg->n_annotations = info->config->n_annotations;
	out_cfg->annotations = info->config->annotations;
	out->config = out_cfg;
	return out;
}

void on_container_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerListRequest *r = (const CrispIpc__ContainerListRequest *)req;
	CrispIpc__ContainerListReply reply = CRISP_IPC__CONTAINER_LIST_REPLY__INIT;
	_cleanup_free_ CrispIpc__ContainerInfo **list = NULL;
	_cleanup_free_ CrispIpc__ContainerInfo *brief = NULL;
	_cleanup_free_ Runtime__V1__ContainerConfig *brief_cfg = NULL;
	size_t n = 0;

	for (struct ctr *c = rt.ctrs; c; c = c->next)
		n++;
	list = xcalloc(n + 1, sizeof(*list));
	if (r->brief) {
		brief = xcalloc(n + 1, sizeof(*brief));
		brief_cfg = xcalloc(n + 1, sizeof(*brief_cfg));
	}
	n = 0;
	for (struct ctr *c = rt.ctrs; c; c = c->next) {
		/* One being created is not there yet for anyone. */
		if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN && c->busy)
			continue;
		if (*r->container_id && !streq(r->container_id, c->id))
			continue;
		if (*r->sandbox_id && !streq(r->sandbox_id, c->info->sandbox_id))
			continue;
		list[n] = c->info;
		if (r->brief)
			list[n] = container_info_brief(c->info, &brief[n], &brief_cfg[n]);
		n++;
	}
	reply.containers = list;
	reply.n_containers = n;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* --- recovery -------------------------------------------------------------------------- */

static void recheck(evutil_socket_t fd, short what, void *arg)
{
	_cleanup_free_ char *id = arg;
	struct ctr *c = ctr_find(id);

	if (!c || c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ||
	    exits_check(id) || proc_alive(c->info->pid, c->pid_start))
		return;
	ctr_exited(c, 255, now_ns(), "Unknown", "exited while runtimed was down; no exit recorded");
}

void ctr_recover(struct ctr *c)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	bool bundle_there = access(bundle, F_OK) == 0;

	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED) {
		/* An exit file left by a remove that did not finish is harmless;
		 * a remove will clear it. */
		return;
	}
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN) {
		ctr_exited(c, 255, now_ns(), "Unknown",
			   "creation interrupted by a runtimed restart");
		return;
	}
	/* CREATED has no process (but for one `runc create`d by an earlier
	 * runtimed: it has a pid and is recovered like a running one). */
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED &&
	    c->info->pid == 0) {
		_cleanup_free_ char *mark = bundle_path(c->id, START_MARK);
		struct stat st;

		if (!bundle_there)
			ctr_exited(c, 255, now_ns(), "Unknown",
				   "lost at node restart before it was started");
		else if (stat(mark, &st) == 0)
			start_resolve(c, &st);
		return;
	}
	if (exits_check(c->id))
		return;
	log_debug("container %.12s: recovering, init pid %d (start %llu, now %llu)", c->id,
		  (int)c->info->pid, (unsigned long long)c->pid_start,
		  (unsigned long long)proc_starttime(c->info->pid));
	if (proc_alive(c->info->pid, c->pid_start))
		return;
	if (!bundle_there) {
		ctr_exited(c, 255, now_ns(), "Unknown", "lost at node restart");
		return;
	}
	/* The init is gone but its monitor may still drain output before it
	 * writes the exit file (2 s at most): look again a little later. */
	{
		struct timeval tv = { 5, 0 };
		char *id = xstrdup(c->id);
		event_base_once(child_base(), -1, EV_TIMEOUT, recheck, id, &tv);
	}
}
