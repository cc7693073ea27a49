/* crisp-runtimed: pod sandboxes and containers. Started by crispd; serves
 * the frontend's runtime requests (ipc/msg.h, IPC_RUNTIMED_*): it keeps the
 * durable records, generates OCI specs, drives runc and the per-container
 * monitors through its launcher, watches exits, and answers stats and
 * events. Start-up: directories, host detection, the launcher (forked
 * before the privilege drop), the drop, then the records and recovery. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/id.h"
#include "common/launcher.h"
#include "common/log.h"
#include "launch/policy.h"
#include "runtimed/cgroup.h"
#include "runtimed/idmap.h"
#include "runtimed/runtimed.h"

struct runtimed rt;

/* --- small shared helpers ----------------------------------------------- */

bool id_valid(const char *id)
{
	return id_hex_valid(id);
}

const char *const launch_env[] = {
	LAUNCH_PATH_ENV,
	NULL,
};

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *bundle_path(const char *id, const char *file)
{
	return file ? xasprintf("%s/%s/%s", rt.bundles, id, file)
		    : xasprintf("%s/%s", rt.bundles, id);
}

const struct rt_handler *handler_find(const char *name)
{
	if (!name || !*name)
		return rt.runtime_ready ? &rt.handlers[0] : NULL;
	for (size_t i = 0; i < rt.nhandlers; i++)
		if (streq(rt.handlers[i].name, name))
			return &rt.handlers[i];
	return NULL;
}

const struct rt_handler *handler_by_path(const char *path)
{
	for (size_t i = 0; i < rt.nhandlers; i++)
		if (streq(rt.handlers[i].path, path))
			return &rt.handlers[i];
	return NULL;
}

struct pod *pod_find(const char *id)
{
	for (struct pod *p = rt.pods; p; p = p->next)
		if (streq(p->id, id))
			return p;
	return NULL;
}

struct ctr *ctr_find(const char *id)
{
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		if (streq(c->id, id))
			return c;
	return NULL;
}

void exit_wait_add(struct exit_wait **head, void (*fn)(bool, void *), void *arg)
{
	struct exit_wait *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	w->next = *head;
	*head = w;
}

void exit_waits_fire(struct exit_wait **head, bool exited)
{
	struct exit_wait *w = *head;

	*head = NULL;
	while (w) {
		struct exit_wait *next = w->next;
		w->fn(exited, w->arg);
		free(w);
		w = next;
	}
}

/* Below the top, never into a mount point (RESOLVE_NO_XDEV: EXDEV): a
 * rootfs or shm still mounted because its unmount failed, or a mount that
 * a container's bidirectional propagation stacked there, is another
 * filesystem, maybe a volume holding the user's data. Removal stops at it
 * (its directory then cannot be removed either) and says so. */
static int rm_rf_at(int parent, const char *name, int depth)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = depth > 0 ? RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS : 0,
	};
	_cleanup_close_ int fd = -1;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 64)
		return -ELOOP;
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = (int)syscall(SYS_openat2, parent, name, &how, sizeof(how));
	if (fd < 0)
		return errno == ENOENT ? 0 : errno == EXDEV ? -EBUSY : -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int q = rm_rf_at(dirfd(d), de->d_name, depth + 1);
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

int rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path, 0);
}

/* /proc/<pid>/stat's state and starttime; 0 when the process does not exist. */
static uint64_t proc_stat(pid_t pid, char *ret_state)
{
	char path[64], buf[1024];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;
	uint64_t v = 0;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	*ret_state = p[2];
	/* field 3 (state) is the first after ')'; starttime is field 22 */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%" SCNu64, &v) != 1)
		return 0;
	return v;
}

uint64_t proc_starttime(pid_t pid)
{
	char state;

	return proc_stat(pid, &state);
}

/* A zombie is not alive: after a node-level kill its parent may be an init
 * that never reaps it. */
bool proc_alive(pid_t pid, uint64_t starttime)
{
	char state = 0;
	uint64_t now = proc_stat(pid, &state);

	return now != 0 && state != 'Z' && state != 'X' && (starttime == 0 || now == starttime);
}

int write_file(const char *path, const char *data, size_t len, unsigned mode,
	       struct crisp_error *err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				      mode);
	size_t off = 0;

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", tmp);
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s", tmp);
			unlink(tmp);
			return -1;
		}
		off += (size_t)n;
	}
	/* No fsync: every file runtimed writes is under <state_dir> (bundles,
	 * pod files, the pause rootfs), which a reboot clears (/run by
	 * default). The rename alone makes it whole for every reader, across
	 * any process crash; an fsync (~0.5 ms on a disk) would make durable
	 * what no boot after this one reads. */
	if (fchmod(fd, mode) < 0 || rename(tmp, path) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

char *read_file(const char *path, size_t max, size_t *ret_len, struct crisp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (fd < 0) {
		err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL, errno,
			      "opening %s", path);
		return NULL;
	}
	buf = xmalloc(max + 2);
	while ((n = read(fd, buf + len, max + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > max) {
			err_set(err, CRISP_E_RESOURCE, "%s is larger than %zu bytes", path, max);
			return NULL;
		}
	}
	if (n < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "reading %s", path);
		return NULL;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return TAKE_PTR(buf);
}

void str_set(char **field, const char *v)
{
	/* Unpacked messages point absent strings at protobuf-c's static "". */
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = xstrdup(v);
}

void *msg_dup(const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *m)
{
	size_t n;
	_cleanup_free_ uint8_t *buf = NULL;
	void *copy;

	if (!m)
		return NULL;
	n = protobuf_c_message_get_packed_size(m);
	buf = xmalloc(n ? n : 1);
	protobuf_c_message_pack(m, buf);
	copy = protobuf_c_message_unpack(desc, NULL, n, buf);
	if (!copy)
		fatal("runtimed: cannot copy a %s message", desc->name);
	return copy;
}

/* --- cleanup retries -------------------------------------------------------- */

/* A removal goes on when part of its cleanup fails (a cgroup that still
 * holds a process, a directory below a mount that would not go): the
 * record is deleted and the kubelet is told it is removed. What failed is
 * listed here and tried again, first after CLEANUP_RETRY_MS, then at twice
 * the interval each time up to CLEANUP_RETRY_MAX_MS, until it goes; the
 * start-up sweeps catch whatever a restart made us forget. Only what a
 * failure put on the list is tried: anything else found lying around may be
 * a create in flight. */
#define CLEANUP_RETRY_MS 60000
#define CLEANUP_RETRY_MAX_MS (3600 * 1000)
/* More leftovers than this is a node in trouble: the rest wait for the
 * start-up sweeps. */
#define CLEANUP_LIST_MAX 1024

struct cleanup_item {
	struct cleanup_item *next;
	enum cleanup_kind kind;
	char owner[ID_LEN + 1]; /* the pod or container it was of */
	char *target;           /* a path, or a cgroup's relpath */
	char *mnt;              /* CLEANUP_PATH: a mount point to detach first, or NULL */
	unsigned tries;
	uint64_t due_ms, delay_ms;
};

static struct {
	struct cleanup_item *head, **tail;
	size_t n;
	struct event *timer;
	uint64_t base_ms;
} cleanups = { .tail = &cleanups.head };

static const char *cleanup_kind_name(enum cleanup_kind kind)
{
	return kind == CLEANUP_CGROUP ? "cgroup" : "path";
}

static void cleanup_item_free(struct cleanup_item *it)
{
	free(it->target);
	free(it->mnt);
	free(it);
}

/* Whether a record owns id again (a pod, a container, or a container of
 * the pod id): then the leftover is that record's, not ours to remove. */
static bool cleanup_owned(const char *id)
{
	if (pod_find(id) || ctr_find(id))
		return true;
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		if (streq(c->info->sandbox_id, id))
			return true;
	return false;
}

/* One attempt; 0, or -1 with err. */
static int cleanup_try(const struct cleanup_item *it, struct crisp_error *err)
{
	int r;

	if (it->kind == CLEANUP_CGROUP)
		return cgroup_remove(CGROUP_ROOT, it->target, err);
	if (it->mnt && umount2(it->mnt, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "unmounting %s", it->mnt);
	/* a bundle's idmapped clones, if it has any */
	if (idmap_detach_all(it->target, err) < 0)
		return -1;
	if ((r = rm_rf(it->target)) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, -r, "removing %s", it->target);
	return 0;
}

static void cleanup_arm(void)
{
	uint64_t now = now_ms(), due = UINT64_MAX;
	struct timeval tv;

	for (struct cleanup_item *it = cleanups.head; it; it = it->next)
		if (it->due_ms < due)
			due = it->due_ms;
	if (due == UINT64_MAX) {
		evtimer_del(cleanups.timer);
		return;
	}
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)(due % 1000) * 1000;
	evtimer_add(cleanups.timer, &tv);
}

/* In the order they were listed: a pause's cgroup before its pod's. */
static void cleanup_retry(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ms();

	for (struct cleanup_item **pp = &cleanups.head, *it; (it = *pp);) {
		struct crisp_error err = { 0 };

		if (it->due_ms > now) {
			pp = &it->next;
			continue;
		}
		it->tries++;
		if (cleanup_owned(it->owner)) {
			log_info("%.12s has a record again: its %s %s is left to it", it->owner,
				 cleanup_kind_name(it->kind), it->target);
		} else if (cleanup_try(it, &err) == 0) {
			log_info("removed %s %s, left over from the removal of %.12s (retry %u)",
				 cleanup_kind_name(it->kind), it->target, it->owner, it->tries);
		} else {
			it->delay_ms = it->delay_ms * 2 > CLEANUP_RETRY_MAX_MS
					       ? CLEANUP_RETRY_MAX_MS
					       : it->delay_ms * 2;
			it->due_ms = now + it->delay_ms;
			log_warn("left over from the removal of %.12s: %s (retry %u); next try in "
				 "%llu s",
				 it->owner, err.msg, it->tries,
				 (unsigned long long)(it->delay_ms + 999) / 1000);
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		if (cleanups.tail == &it->next)
			cleanups.tail = pp;
		cleanups.n--;
		cleanup_item_free(it);
	}
	cleanup_arm();
}

static uint64_t cleanup_base_ms(void)
{
#ifdef CRISP_TEST_HOOKS
	/* Test hook: the integration tests cannot wait a minute. */
	const char *v = getenv("CRISP_TEST_CLEANUP_RETRY_MS");
	uint64_t ms;

	if (v && parse_uint64(v, 10, CLEANUP_RETRY_MAX_MS, &ms) == 0 && ms > 0)
		return ms;
#endif
	return CLEANUP_RETRY_MS;
}

void cleanup_retry_add(enum cleanup_kind kind, const char *owner, const char *target,
		       const char *mnt)
{
	struct cleanup_item *it;

	for (it = cleanups.head; it; it = it->next)
		if (it->kind == kind && streq(it->target, target))
			return;
	if (cleanups.n >= CLEANUP_LIST_MAX) {
		log_warn("%s %s of %.12s is left for runtimed's next start: %d leftovers wait "
			 "already",
			 cleanup_kind_name(kind), target, owner, CLEANUP_LIST_MAX);
		return;
	}
	if (!cleanups.timer) {
		cleanups.timer = evtimer_new(child_base(), cleanup_retry, NULL);
		cleanups.base_ms = cleanup_base_ms();
	}
	it = xcalloc(1, sizeof(*it));
	it->kind = kind;
	snprintf(it->owner, sizeof(it->owner), "%s", owner);
	it->target = xstrdup(target);
	it->mnt = mnt ? xstrdup(mnt) : NULL;
	it->delay_ms = cleanups.base_ms;
	it->due_ms = now_ms() + it->delay_ms;
	*cleanups.tail = it;
	cleanups.tail = &it->next;
	cleanups.n++;
	log_info("%s %s of %.12s will be tried again in %llu s", cleanup_kind_name(kind), target,
		 owner, (unsigned long long)(it->delay_ms + 999) / 1000);
	cleanup_arm();
}

/* --- health ------------------------------------------------------------------ */

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	const struct rt_handler *h = handler_find("");
	CrispIpc__RuntimeHandlerInfo info[CONFIG_MAX_RUNTIME_HANDLERS + 1];
	CrispIpc__RuntimeHandlerInfo *infop[CONFIG_MAX_RUNTIME_HANDLERS + 1];
	char message[512];

	/* the handlers, the default first, with what each supports */
	for (size_t i = 0; i < rt.nhandlers && i < ARRAY_SIZE(info); i++) {
		crisp_ipc__runtime_handler_info__init(&info[i]);
		info[i].name = rt.handlers[i].name;
		info[i].recursive_read_only_mounts = rt.handlers[i].rro_mounts;
		info[i].user_namespaces = rt.host.user_namespaces;
		/* the first is the default when its runtime was found */
		info[i].default_handler = i == 0 && rt.runtime_ready;
		infop[reply.n_handlers++] = &info[i];
	}
	reply.handlers = infop;

	reply.version = (char *)CRISP_VERSION;
	reply.ready = rt.runtime_ready && h && access(h->path, X_OK) == 0;
	if (!reply.ready) {
		snprintf(message, sizeof(message),
			 "OCI runtime '%s' of the default handler is not installed%s%s",
			 child_config()->default_runtime,
			 h ? " any more at " : " (not found in PATH)", h ? h->path : "");
		reply.reason = (char *)"RuntimeNotFound";
		reply.message = message;
	}
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* What runtimed accepts from the frontend. Requests that carry CRI configs
 * may be large (many mounts, env, annotations); the rest are small. */
static const struct ipc_handler frontend_handlers[] = {
	{ IPC_RUNTIMED_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
	{ IPC_RUNTIMED_SANDBOX_CREATE, &crisp_ipc__sandbox_create_request__descriptor, 0,
	  IPC_MEDIUM, IPC_ANY_STATE, on_sandbox_create },
	{ IPC_RUNTIMED_SANDBOX_START, &crisp_ipc__sandbox_start_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_sandbox_start },
	{ IPC_RUNTIMED_SANDBOX_STOP, &crisp_ipc__sandbox_stop_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_sandbox_stop },
	{ IPC_RUNTIMED_SANDBOX_REMOVE, &crisp_ipc__sandbox_remove_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_sandbox_remove },
	{ IPC_RUNTIMED_SANDBOX_LIST, &crisp_ipc__sandbox_list_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_sandbox_list },
	{ IPC_RUNTIMED_SANDBOX_UPDATE, &crisp_ipc__sandbox_update_request__descriptor, 0,
	  IPC_MEDIUM, IPC_ANY_STATE, on_sandbox_update },
	{ IPC_RUNTIMED_CONTAINER_CREATE, &crisp_ipc__container_create_request__descriptor, 0,
	  IPC_MEDIUM, IPC_ANY_STATE, on_container_create },
	{ IPC_RUNTIMED_CONTAINER_START, &crisp_ipc__container_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_container_start },
	{ IPC_RUNTIMED_CONTAINER_STOP, &crisp_ipc__container_stop_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_container_stop },
	{ IPC_RUNTIMED_CONTAINER_REMOVE, &crisp_ipc__container_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_container_remove },
	{ IPC_RUNTIMED_CONTAINER_LIST, &crisp_ipc__container_list_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_container_list },
	{ IPC_RUNTIMED_CONTAINER_UPDATE, &crisp_ipc__container_update_request__descriptor, 0,
	  IPC_MEDIUM, IPC_ANY_STATE, on_container_update },
	{ IPC_RUNTIMED_CONTAINER_LOG_REOPEN, &crisp_ipc__container_request__descriptor, 0,
	  IPC_SMALL, IPC_ANY_STATE, on_log_reopen },
	{ IPC_RUNTIMED_EXEC_SYNC, &crisp_ipc__exec_sync_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_exec_sync },
	{ IPC_RUNTIMED_EXEC_CANCEL, &crisp_ipc__exec_cancel_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_exec_cancel },
	{ IPC_RUNTIMED_EXEC_START, &crisp_ipc__exec_start_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_exec_start },
	{ IPC_RUNTIMED_EXEC_WAIT, &crisp_ipc__exec_wait_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_exec_wait },
	{ IPC_RUNTIMED_ATTACH, &crisp_ipc__attach_request__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_attach },
	{ IPC_RUNTIMED_STATS_GET, &crisp_ipc__stats_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_stats },
	{ IPC_RUNTIMED_EVENTS_WAIT, &crisp_ipc__events_wait_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_events_wait },
	{ IPC_RUNTIMED_LIST_WAIT, &crisp_ipc__list_wait_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_list_wait },
};

/* --- start-up ---------------------------------------------------------------- */

/* Resolve the default runtime in PATH while we still may look anywhere. */
static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(
		path && *path ? path
			      : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", d, name);
		if (*d == '/' && access(p, X_OK) == 0)
			return TAKE_PTR(p);
	}
	return NULL;
}

static void setup_handlers(struct crisp_config *cfg)
{
	char *def = find_in_path(cfg->default_runtime);
	const char *slash = strrchr(cfg->default_runtime, '/');

	rt.handlers = xcalloc(cfg->n_runtime_handlers + 1, sizeof(*rt.handlers));
	if (def) {
		/* The default handler is called by the runtime's base name ("runc"). */
		rt.handlers[0].name = xstrdup(slash ? slash + 1 : cfg->default_runtime);
		rt.handlers[0].path = def;
		rt.nhandlers = 1;
		rt.runtime_ready = true;
		log_info("default OCI runtime: %s", def);
	} else {
		log_warn("OCI runtime '%s' not found in PATH: RuntimeReady stays false",
			 cfg->default_runtime);
	}
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++) {
		const struct runtime_handler_conf *h = &cfg->runtime_handlers[i];
		/* the launcher's own programs share the handlers' table */
		bool taken = streq(h->name, "monitor") || streq(h->name, "pause") ||
			     streq(h->name, "exec");
		for (size_t j = 0; j < rt.nhandlers; j++)
			taken = taken || streq(rt.handlers[j].name, h->name);
		if (taken) {
			log_warn("runtime handler '%s' ignored: the name is taken", h->name);
			continue;
		}
		if (access(h->path, X_OK) < 0) {
			log_warn("runtime handler '%s': %s is not executable, ignored", h->name,
				 h->path);
			continue;
		}
		rt.handlers[rt.nhandlers].name = xstrdup(h->name);
		rt.handlers[rt.nhandlers].path = xstrdup(h->path);
		rt.nhandlers++;
	}
}

static void mkdir_or_die(const char *path, unsigned mode)
{
	if (mkdir_p(path, mode) < 0)
		fatal("runtimed: cannot create %s: %s", path, strerror(errno));
}

/* crisp-pause copied into a directory runtimed owns, so that the pause
 * container's read-only rootfs holds that one file and nothing else. */
static void setup_pause(struct crisp_config *cfg)
{
	_cleanup_free_ char *src = xasprintf("%s/crisp-pause", cfg->helper_dir);
	_cleanup_free_ char *dst = xasprintf("%s/pause", rt.pause_rootfs);
	struct crisp_error err = { 0 };
	size_t len;
	_cleanup_free_ char *data = read_file(src, 8u << 20, &len, &err);

	mkdir_or_die(rt.pause_rootfs, 0755);
	if (!data) {
		log_warn("pause program unavailable, sandboxes cannot start: %s", err.msg);
		return;
	}
	if (write_file(dst, data, len, 0755, &err) < 0)
		log_warn("pause program: %s", err.msg);
}

static void setup_dirs(struct crisp_config *cfg)
{
	rt.home = xasprintf("%s/runtimed", cfg->root_dir);
	rt.exits_dir = xasprintf("%s/exits", rt.home);
	rt.vol = xasprintf("%s/runtimed", cfg->state_dir);
	rt.runc_root = xasprintf("%s/runc", rt.vol);
	rt.bundles = xasprintf("%s/bundles", rt.vol);
	rt.pods_dir = xasprintf("%s/pods", rt.vol);
	rt.pause_rootfs = xasprintf("%s/pause/rootfs", rt.vol);
	rt.snapshots = xasprintf("%s/imaged/snapshots", cfg->root_dir);
	rt.netns_dir = xasprintf("%s/netns", cfg->state_dir);
	rt.monitor_path = xasprintf("%s/crisp-monitor", cfg->helper_dir);
	rt.pause_path = xasprintf("%s/crisp-pause", cfg->helper_dir);
	mkdir_or_die(rt.home, 0700);
	mkdir_or_die(rt.exits_dir, 0700);
	/* Searchable by all, listable by none: runc, as the mapped root of a
	 * pod with a user namespace, goes through it to that container's
	 * bundle (0710 to the pod's host gid). What is below is closed to
	 * others: runc/ 0700, each bundle and pod directory 0700 (0710 to a
	 * user-namespaced pod's gid). */
	mkdir_or_die(rt.vol, 0711);
	if (chmod(rt.vol, 0711) < 0)
		fatal("runtimed: chmod %s: %s", rt.vol, strerror(errno));
	mkdir_or_die(rt.runc_root, 0700);
	mkdir_or_die(rt.bundles, 0711);
	mkdir_or_die(rt.pods_dir, 0711);
}

/* crisp-launch runtimed, with its table and what its checks compare
 * requests with (crisp-launch(8)): each runtime handler, the monitor, the
 * pause and crisp-exec, and runtimed's directories. */
static void start_launcher(void)
{
	_cleanup_free_ char *path = xasprintf("%s/crisp-launch", rt.cfg->helper_dir);
	_cleanup_free_ char *userns = xasprintf("%s/userns", rt.cfg->state_dir);
	_cleanup_free_ char **args = xcalloc(3 * rt.nhandlers + 23, sizeof(*args));
	struct crisp_error err = { 0 };
	size_t n = 0;

	rt.exec_path = xasprintf("%s/crisp-exec", rt.cfg->helper_dir);
	args[n++] = "--runc-root";
	args[n++] = rt.runc_root;
	args[n++] = "--bundles";
	args[n++] = rt.bundles;
	args[n++] = "--exits";
	args[n++] = rt.exits_dir;
	args[n++] = "--pause-rootfs";
	args[n++] = rt.pause_rootfs;
	args[n++] = "--netns-dir";
	args[n++] = rt.netns_dir;
	args[n++] = "--userns-dir";
	args[n++] = userns;
	args[n++] = "--monitor";
	args[n++] = rt.monitor_path;
	args[n++] = "--pause";
	args[n++] = rt.pause_path;
	args[n++] = "--exec";
	args[n++] = rt.exec_path;
	for (size_t i = 0; i < rt.nhandlers; i++) {
		args[n++] = "--handler";
		args[n++] = rt.handlers[i].name;
		args[n++] = rt.handlers[i].path;
	}
	if (launcher_start(path, "runtimed", args, &err) < 0)
		fatal("runtimed: launcher: %s", err.msg);
	launcher_attach(child_base());
}

/* Bundles and pod directories no record owns are what a crash between
 * their removal and the record's left behind (or a foreign mess): unmount
 * what is mounted there, remove them. Whatever runc still has of the id
 * goes with sweep_runc_state. */
static void sweep_orphans(const char *dir, bool pods)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *mnt = NULL;
		struct crisp_error err = { 0 };
		int r;

		if (!id_valid(de->d_name) || pod_find(de->d_name) || ctr_find(de->d_name))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		mnt = xasprintf("%s/%s", path, pods ? "shm" : "rootfs");
		log_warn("removing %s: no record owns it", path);
		if (umount2(mnt, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			log_warn("unmounting %s: %s", mnt, strerror(errno));
		/* a user-namespaced container's idmapped clones (rm_rf stops
		 * at a mount) */
		if (!pods && idmap_detach_all(path, &err) < 0) {
			log_warn("%s", err.msg);
			err_clear(&err);
		}
		if ((r = rm_rf(path)) < 0)
			log_warn("removing %s: %s", path, strerror(-r));
	}
	closedir(d);
}

static void runc_orphan_deleted(int status, const char *errout, void *arg)
{
	_cleanup_free_ char *id = arg;

	if (status == 0 || strstr(errout, "not exist"))
		log_info("runc state of %s removed", id);
	else
		log_warn("runc delete %s: %s", id, errout);
}

/* runc state no record owns: a container or pause whose `runc delete`
 * never ran or never finished (runtimed died in between, or an older
 * runtimed dropped the record when the delete failed). The delete kills
 * what is left of it and removes its cgroups too. */
static void sweep_runc_state(void)
{
	DIR *d = opendir(rt.runc_root);
	struct dirent *de;

	if (!d) {
		log_warn("listing %s: %s", rt.runc_root, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		const char *args[] = { "delete", "--force", de->d_name, NULL };
		struct crisp_error err = { 0 };
		char *id;

		if (!id_valid(de->d_name) || pod_find(de->d_name) || ctr_find(de->d_name))
			continue;
		if (!rt.runtime_ready) {
			log_warn("runc state %s/%s: no record owns it, and no runtime to delete it",
				 rt.runc_root, de->d_name);
			continue;
		}
		log_warn("runc state %s/%s: no record owns it: running runc delete --force",
			 rt.runc_root, de->d_name);
		id = xstrdup(de->d_name);
		if (runc_run(&rt.handlers[0], args, runc_orphan_deleted, id, &err) < 0) {
			log_warn("%s", err.msg);
			free(id); /* no job took it */
		}
	}
	closedir(d);
}

/* Exit records nobody owns any more: a per-id directory, made for a
 * record that is gone (exit_dir_remove takes it, with a record left in it),
 * and a flat <id>.json, which only a monitor of an older crisp writes
 * (exits_check removes what no record owns). */
static void sweep_exits(void)
{
	DIR *d = opendir(rt.exits_dir);
	struct dirent *de;
	char id[ID_LEN + 1];
	size_t n;

	if (!d)
		return;
	while ((de = readdir(d))) {
		n = strlen(de->d_name);
		if (n == ID_LEN + 5 && strcmp(de->d_name + ID_LEN, ".json") == 0) {
			memcpy(id, de->d_name, ID_LEN);
			id[ID_LEN] = '\0';
		} else if (n == ID_LEN) {
			memcpy(id, de->d_name, ID_LEN + 1);
		} else {
			continue;
		}
		if (!id_valid(id) || pod_find(id) || ctr_find(id))
			continue;
		if (n == ID_LEN)
			exit_dir_remove(id);
		else
			exits_check(id);
	}
	closedir(d);
}

/* Remove the cgroup crisp named at rel, which no record owns. rmdir only:
 * one that still holds processes is left alone, and said so. */
static bool orphan_cgroup_remove(const char *rel)
{
	struct crisp_error err = { 0 };

	log_warn("removing cgroup %s: no record owns it", rel);
	if (cgroup_remove(CGROUP_ROOT, rel, &err) == 0)
		return true;
	log_warn("%s%s", err.msg, err.code == CRISP_E_PRECONDITION ? ": left alone" : "");
	return false;
}

/* A runc state dir of the id: its `runc delete` (sweep_runc_state) removes
 * its cgroups, with whatever may still run there. */
static bool runc_state_exists(const char *id)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", rt.runc_root, id);

	return access(dir, F_OK) == 0;
}

/* The id of a cgroup named <prefix><64 hex digits>, else NULL. */
static const char *name_id(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(name, prefix, n) == 0 && id_valid(name + n) ? name + n : NULL;
}

/* A pod cgroup changed this recently is left to a later sweep: it may be
 * another crisp's on the same host (test machines run several, which
 * share "crisp"), made a moment ago and about to be joined by its pause. */
#define SWEEP_CGROUP_MIN_AGE_S 60

static int64_t sweep_min_age_s(void)
{
#ifdef CRISP_TEST_HOOKS
	/* Test hook: the integration tests cannot wait a minute. */
	const char *v = getenv("CRISP_TEST_SWEEP_MIN_AGE_S");
	uint64_t s;

	if (v && parse_uint64(v, 10, SWEEP_CGROUP_MIN_AGE_S, &s) == 0)
		return (int64_t)s;
#endif
	return SWEEP_CGROUP_MIN_AGE_S;
}

static struct event *sweep_timer;
static void sweep_cgroups(void);

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
	sweep_cgroups();
}

/* The pod cgroups crisp made (pod_default_cgroup, "crisp/pod-<id>") and the
 * cgroups runc made below them for the pause and containers
 * ("crisp-<id>", spec_cgroups_path) that no record owns: a removal that
 * failed in an older runtimed, or a crash. Only these names, only below
 * "crisp": a kubelet's cgroup_parent, and whatever else lies around, are
 * not ours to judge. Run at start and, for what was too young then, once
 * more SWEEP_CGROUP_MIN_AGE_S later: our own starts have records by the
 * time they make cgroups, so a later sweep never takes one of ours in
 * flight. */
static void sweep_cgroups(void)
{
	char **pods = NULL;
	size_t npods = 0;
	struct crisp_error err = { 0 };
	bool young = false;
	struct timespec now;

	if (rt.host.systemd_cgroup) /* runc's systemd driver names scopes: none of these */
		return;
	if (cgroup_children(CGROUP_ROOT, "crisp", &pods, &npods, &err) < 0) {
		log_warn("sweeping cgroups: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < npods; i++) {
		_cleanup_free_ char *name = pods[i], *pod_rel = xasprintf("crisp/%s", name);
		const char *pod_id = name_id(name, "pod-");
		char **kids = NULL;
		size_t nkids = 0;
		bool owned = false, left = false;
		int64_t changed = 0;

		if (!pod_id)
			continue;
		owned = pod_find(pod_id) != NULL;
		for (struct ctr *c = rt.ctrs; c && !owned; c = c->next)
			owned = streq(c->info->sandbox_id, pod_id);
		clock_gettime(CLOCK_REALTIME, &now);
		if (!owned && cgroup_changed_at(CGROUP_ROOT, pod_rel, &changed, &err) == 0 &&
		    changed > now.tv_sec - sweep_min_age_s()) {
			log_debug("cgroup %s changed %llds ago: left to a later sweep", pod_rel,
				  (long long)(now.tv_sec - changed));
			young = true;
			continue;
		}
		err_clear(&err);
		if (cgroup_children(CGROUP_ROOT, pod_rel, &kids, &nkids, &err) < 0) {
			log_warn("sweeping cgroups: %s", err.msg);
			err_clear(&err);
			left = true;
		}
		for (size_t k = 0; k < nkids; k++) {
			const char *id = name_id(kids[k], "crisp-");

			_cleanup_free_ char *rel = xasprintf("%s/%s", pod_rel, kids[k]);

			if (!id || ctr_find(id) || pod_find(id) || runc_state_exists(id) ||
			    !orphan_cgroup_remove(rel))
				left = true;
			free(kids[k]);
		}
		free(kids);
		/* only once nothing but what was removed was in it */
		if (!owned && !left && !runc_state_exists(pod_id))
			orphan_cgroup_remove(pod_rel);
	}
	free(pods);
	if (young) {
		struct timeval tv = { (time_t)sweep_min_age_s() + 5, 0 };

		if (!sweep_timer)
			sweep_timer = evtimer_new(child_base(), on_sweep_timer, NULL);
		evtimer_add(sweep_timer, &tv);
	}
}

static void recover(void)
{
	struct crisp_error err = { 0 };
	size_t npods = 0, nctrs = 0;

	if (state_load(&err) < 0)
		fatal("runtimed: %s", err.msg);
	/* each record's exit directory watched before its recovery looks
	 * for its exit file, so that none written in between goes unseen */
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		exit_dir_watch(c->id);
	for (struct pod *p = rt.pods; p; p = p->next)
		exit_dir_watch(p->id);
	/* Containers first: a pod's recovery looks at its containers' states. */
	for (struct ctr *c = rt.ctrs; c; c = c->next, nctrs++)
		ctr_recover(c);
	for (struct pod *p = rt.pods; p; p = p->next, npods++)
		pod_recover(p);
	sweep_orphans(rt.bundles, false);
	sweep_orphans(rt.pods_dir, true);
	sweep_runc_state();
	sweep_cgroups();
	sweep_exits();
	log_info("recovered %zu sandboxes and %zu containers", npods, nctrs);
}

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	struct crisp_error err = { 0 };

	if (reload)
		return;
	rt.cfg = cfg;
	setup_handlers(cfg);
	setup_dirs(cfg);
	setup_pause(cfg);
	host_detect(cfg);
	if (chdir(rt.home) < 0)
		fatal("runtimed: chdir %s: %s", rt.home, strerror(errno));
	start_launcher();
	for (size_t i = 0; i < rt.nhandlers; i++)
		runc_probe_features(&rt.handlers[i]);
	if (state_open("state.db", &err) < 0)
		fatal("runtimed: %s", err.msg);
	runtimed_sandbox(cfg);
	if (exits_watch(&err) < 0)
		fatal("runtimed: %s", err.msg);
	recover();
	log_info("ready");
}

static void on_frontend_gone(void *arg)
{
	exec_orphans_cancel();
}

int main(void)
{
	static const struct child_ops ops = {
		.name = "runtimed",
		.on_config = on_config,
		.frontend_version = IPC_RUNTIMED_VERSION,
		.frontend_handlers = frontend_handlers,
		.n_frontend_handlers = ARRAY_SIZE(frontend_handlers),
		.on_frontend_gone = on_frontend_gone,
		.snapshot_key = true,
	};

	return child_main("crisp-runtimed", &ops);
}
