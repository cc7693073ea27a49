/* Containers: create (rootfs overlay, spec, monitor), start, stop, remove,
 * list, exits and recovery.
 *
 * Rollback contract with the frontend: a ContainerCreate that fails undoes
 * what it did (monitor and runc state, rootfs mount, bundle, record); the
 * frontend then removes the snapshot it prepared through imaged. After a
 * successful ContainerRemove the frontend removes the snapshot too. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "runtimed/rootfs.h"
#include "runtimed/runtimed.h"

#define CTR_NAME_MAX 253
#define LOG_PATH_MAX 4000

static void reply_err(struct ipc_chan *chan, struct ipc_msg *msg, struct crisp_error *err)
{
	ipc_reply_error(chan, msg, err);
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

/* A copy snapshot's directory bound at the rootfs, with the overlay's flags
 * (nodev): a bind mount takes them only from a remount. Not recursive:
 * nothing mounted under the snapshot belongs to the container. */
static int rootfs_bind(const char *target, const CrispIpc__SnapshotMount *m,
		       struct crisp_error *err)
{
	if (mount(m->upperdir, target, NULL, MS_BIND, NULL) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "bind-mounting the container's rootfs");
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno,
			      "remounting the container's rootfs nodev");
		if (umount2(target, MNT_DETACH) < 0)
			log_warn("unmounting %s: %s", target, strerror(errno));
		return -1;
	}
	return 0;
}

static int rootfs_mount(const char *id, const CrispIpc__SnapshotMount *m, struct crisp_error *err)
{
	_cleanup_free_ char *target = bundle_path(id, "rootfs");
	size_t rl = strlen(rt.snapshots) + 1, cap = 64;
	_cleanup_free_ char *data = NULL;
	char *d;
	int r;

	if (streq(m->type, "bind")) {
		if (mkdir(target, 0755) < 0 && errno != EEXIST)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
		return rootfs_bind(target, m, err);
	}
	/* Relative to the snapshots directory: mount data is limited to a page,
	 * and deep images have many layers. Only the loop's thread uses the
	 * working directory (the disk usage worker walks absolute paths), so
	 * the chdir below cannot race anything. */
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		cap += strlen(m->lowerdirs[i]) + 1;
	cap += strlen(m->upperdir) + strlen(m->workdir) + 32;
	for (size_t i = 0; i < m->n_options; i++)
		cap += strlen(m->options[i]) + 1;
	d = data = xmalloc(cap);
	d += sprintf(d, "lowerdir=");
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		d += sprintf(d, "%s%s", i ? ":" : "", m->lowerdirs[i] + rl);
	d += sprintf(d, ",upperdir=%s,workdir=%s", m->upperdir + rl, m->workdir + rl);
	for (size_t i = 0; i < m->n_options; i++)
		d += sprintf(d, ",%s", m->options[i]);
	if ((size_t)(d - data) >= 4096)
		return err_set(err, CRISP_E_INVALID,
			       "rootfs: the overlay options are longer than a page");
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", target);
	if (chdir(rt.snapshots) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chdir %s", rt.snapshots);
	r = mount("overlay", target, "overlay", MS_NODEV, data);
	if (r < 0)
		err_set_errno(err, CRISP_E_INTERNAL, errno, "mounting the container's rootfs");
	if (chdir(rt.home) < 0)
		fatal("runtimed: chdir back to %s: %s", rt.home, strerror(errno));
	return r;
}

static void rootfs_umount(const char *id)
{
	_cleanup_free_ char *target = bundle_path(id, "rootfs");

	if (umount2(target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("unmounting %s: %s", target, strerror(errno));
}

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

struct create_job {
	struct ctr *c;
	struct child_deferred d;
	const struct rt_handler *h;
	struct crisp_error err;
	bool mounted;
};

static void create_cleanup(struct ctr *c)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_free_ char *exitf = xasprintf("%s/%s.json", rt.exits_dir, c->id);
	int r;

	rootfs_umount(c->id);
	if ((r = rm_rf(bundle)) < 0)
		log_warn("removing %s: %s", bundle, strerror(-r));
	unlink(exitf);
}

static void create_fail(struct create_job *j)
{
	struct crisp_error e = { 0 };

	log_warn("container %.12s: create failed: %s", j->c->id, j->err.msg);
	/* The monitor deletes what runc created when create fails. */
	create_cleanup(j->c);
	if (state_ctr_delete(j->c->id, &e) < 0)
		log_err("%s", e.msg);
	ctr_unlink(j->c);
	ctr_free(j->c);
	child_reply_error(&j->d, &j->err);
	free(j);
}

static void create_monitor_done(pid_t pid, const struct crisp_error *err, void *arg)
{
	struct create_job *j = arg;
	struct ctr *c = j->c;

	if (err) {
		j->err = *err;
		return create_fail(j);
	}
	c->info->pid = pid;
	c->pid_start = proc_starttime(pid);
	c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	if (state_ctr_save(c, &j->err) < 0) {
		const char *args[] = { "delete", "--force", c->id, NULL };
		struct crisp_error e = { 0 };
		/* Best effort: the record could not say it exists, so it must not. */
		runc_run(j->h, args, NULL, NULL, &e);
		return create_fail(j);
	}
	c->busy--;
	event_emit(c->id, c->info->sandbox_id,
		   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
	child_reply(&j->d, &c->info->base);
	free(j);
	exits_check(c->id);
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

static int create_prepare(struct create_job *j, const CrispIpc__ContainerCreateRequest *r,
			  struct pod *p)
{
	struct ctr *c = j->c;
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_free_ char *rootfs = bundle_path(c->id, "rootfs");
	_cleanup_free_ char *passwd = NULL, *group = NULL;
	_cleanup_close_ int rootfd = -1;
	char *paths[POD_SPEC_PATHS] = { 0 };
	struct spec_pod sp;
	struct spec_container sc = { 0 };
	json_t *spec;
	int ret;

	if (mkdir(bundle, 0700) < 0)
		return err_set_errno(&j->err, CRISP_E_INTERNAL, errno, "creating %s", bundle);
	if (rootfs_mount(c->id, r->rootfs, &j->err) < 0)
		return -1;
	rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set_errno(&j->err, CRISP_E_INTERNAL, errno, "opening %s", rootfs);
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
		ret = err_set(&j->err, CRISP_E_NOT_FOUND,
			      "pid namespace target container is not running");
		goto out;
	}
	if (!sc.image) {
		ret = err_set(&j->err, CRISP_E_INVALID, "no image run config");
		goto out;
	}
	spec = spec_container(&rt.host, &sp, &sc, &j->err);
	if (!spec) {
		ret = -1;
		goto out;
	}
	ret = write_spec(c->id, spec, &j->err);
	json_decref(spec);
out:
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		free(paths[i]);
	return ret;
}

void on_container_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	const CrispIpc__ContainerCreateRequest *r = (const CrispIpc__ContainerCreateRequest *)req;
	struct crisp_error err = { 0 };
	struct pod *p;
	struct ctr *c;
	struct create_job *j;
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
	c->stop_signal = image && *image->stop_signal ? spec_signal_parse(image->stop_signal)
						      : SIGTERM;
	if (c->stop_signal <= 0)
		c->stop_signal = SIGTERM;
	c->info = xcalloc(1, sizeof(*c->info));
	crisp_ipc__container_info__init(c->info);
	c->info->id = xstrdup(c->id);
	c->info->sandbox_id = xstrdup(p->id);
	/* UNKNOWN until the monitor reports the container created. */
	c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	c->info->created_at = now_ns();
	c->info->config = msg_dup(&runtime__v1__container_config__descriptor, &r->config->base);
	c->info->image_id = xstrdup(image && image->image_id ? image->image_id : "");
	c->info->image_ref = xstrdup(r->image_ref ? r->image_ref : "");
	c->info->log_path = xstrdup(log ? log : "");
	c->info->reason = xstrdup("");
	c->info->message = xstrdup("");
	c->rootfs = msg_dup(&crisp_ipc__snapshot_mount__descriptor, &r->rootfs->base);
	if (state_ctr_insert(c, &err) < 0) {
		ctr_free(c);
		return reply_err(chan, msg, &err);
	}
	c->next = rt.ctrs;
	rt.ctrs = c;
	c->busy++;
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->h = handler_find(p->info->runtime_handler);
	child_defer(msg, &j->d);
	if (!j->h) {
		err_set(&j->err, CRISP_E_UNAVAILABLE, "runtime handler '%s' is gone",
			p->info->runtime_handler);
		return create_fail(j);
	}
	if (create_prepare(j, r, p) < 0)
		return create_fail(j);
	if (monitor_launch(j->h, c->id, log ? log : "/dev/null", r->config->stdin,
			   r->config->stdin_once, r->config->tty, create_monitor_done, j,
			   &j->err) < 0)
		return create_fail(j);
}

/* --- start ------------------------------------------------------------------------ */

struct ctr_job {
	struct ctr *c;
	struct child_deferred d;
	int64_t started_at; /* taken before `runc start` was issued */
};

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

static void start_done(int status, const char *errout, void *arg)
{
	struct ctr_job *j = arg;
	struct ctr *c = j->c;
	struct crisp_error err = { 0 };
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	c->busy--;
	if (status != 0) {
		err_set(&err, CRISP_E_INTERNAL, "runc start: %s", *errout ? errout : "failed");
		child_reply_error(&j->d, &err);
		free(j);
		return;
	}
	/* The init may have run and exited, and its exit file been processed,
	 * before runc start's reply arrives: an exit recorded meanwhile wins
	 * over RUNNING, and the start time is the one taken before runc start
	 * was issued (the process cannot have run earlier), never later than
	 * the recorded finish. */
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED)
		c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	c->info->started_at = j->started_at;
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED &&
	    c->info->finished_at < c->info->started_at)
		c->info->started_at = c->info->finished_at;
	if (state_ctr_save(c, &err) < 0) {
		child_reply_error(&j->d, &err);
		free(j);
		return;
	}
	event_emit(c->id, c->info->sandbox_id,
		   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	child_reply(&j->d, &empty.base);
	free(j);
}

void on_container_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	struct ctr *c = ctr_lookup(chan, msg, r->container_id);
	struct crisp_error err = { 0 };
	struct pod *p;
	const struct rt_handler *h;
	const char *args[] = { "start", r->container_id, NULL };
	struct ctr_job *j;

	if (!c)
		return;
	p = pod_find(c->info->sandbox_id);
	h = p ? handler_find(p->info->runtime_handler) : NULL;
	if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED) {
		err_set(&err, CRISP_E_PRECONDITION, "container %s is not in the created state",
			c->id);
		return reply_err(chan, msg, &err);
	}
	if (!h) {
		err_set(&err, CRISP_E_UNAVAILABLE, "container %s: its runtime handler is gone",
			c->id);
		return reply_err(chan, msg, &err);
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	child_defer(msg, &j->d);
	c->busy++;
	j->started_at = now_ns();
	if (runc_run(h, args, start_done, j, &err) < 0) {
		c->busy--;
		child_reply_error(&j->d, &err);
		free(j);
	}
}

/* --- exits and stop ------------------------------------------------------------------ */

void ctr_exited(struct ctr *c, int exit_code, int64_t finished_at, const char *reason,
		const char *message)
{
	struct crisp_error err = { 0 };

	if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED) {
		c->info->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
		c->info->exit_code = exit_code;
		c->info->finished_at = finished_at;
		str_set(&c->info->reason, reason);
		str_set(&c->info->message, message);
		if (state_ctr_save(c, &err) < 0)
			log_err("%s", err.msg);
		log_info("container %.12s exited: %d (%s)", c->id, exit_code, reason);
		event_emit(c->id, c->info->sandbox_id,
			   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
	}
	exit_waits_fire(&c->waits, true);
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
	struct stop_job *j;
	struct timeval tv = { 0, 0 };

	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ||
	    (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN && !c->busy) ||
	    exits_check(c->id)) {
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

static void destroy_deleted(int status, const char *errout, void *arg)
{
	struct destroy_job *j = arg;
	struct ctr *c = j->c;
	struct crisp_error err = { 0 };
	char sandbox_id[ID_LEN + 1];

	if (status != 0 && !strstr(errout, "not exist"))
		log_warn("container %.12s: runc delete: %s", c->id, errout);
	create_cleanup(c);
	if (state_ctr_delete(c->id, &err) < 0) {
		c->busy--;
		j->fn(-1, &err, j->arg);
		free(j);
		return;
	}
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
		c->busy--;
		err_set(&err, CRISP_E_INTERNAL, "container %s did not stop", c->id);
		j->fn(-1, &err, j->arg);
		free(j);
		return;
	}
	if (!h)
		h = handler_find("");
	if (h && runc_run(h, args, destroy_deleted, j, &err) == 0)
		return;
	destroy_deleted(0, "", j);
}

void ctr_destroy(struct ctr *c, void (*fn)(int r, const struct crisp_error *err, void *arg),
		 void *arg)
{
	struct destroy_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->fn = fn;
	j->arg = arg;
	c->busy++;
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

void on_container_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerListRequest *r = (const CrispIpc__ContainerListRequest *)req;
	CrispIpc__ContainerListReply reply = CRISP_IPC__CONTAINER_LIST_REPLY__INIT;
	_cleanup_free_ CrispIpc__ContainerInfo **list = NULL;
	size_t n = 0;

	for (struct ctr *c = rt.ctrs; c; c = c->next)
		n++;
	list = xcalloc(n + 1, sizeof(*list));
	n = 0;
	for (struct ctr *c = rt.ctrs; c; c = c->next) {
		/* One being created is not there yet for anyone. */
		if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN && c->busy)
			continue;
		if (*r->container_id && !streq(r->container_id, c->id))
			continue;
		if (*r->sandbox_id && !streq(r->sandbox_id, c->info->sandbox_id))
			continue;
		list[n++] = c->info;
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
