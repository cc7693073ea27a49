/* Operations on running containers: ExecSync (runc exec through the
 * launcher, output on pipes read on the loop, each stream capped at
 * runtime.exec_output_max), UpdateContainerResources (runc update),
 * ReopenContainerLog (the monitor's control socket) and stats (cgroups,
 * the pod's netns, the writable layer). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/launcher.h"
#include "common/log.h"
#include "runtimed/cgroup.h"
#include "runtimed/monitor.h"
#include "runtimed/runtimed.h"

#define EXEC_ARGS_MAX 4096
#define EXEC_ARG_LEN_MAX 65536
#define RESOURCES_STR_MAX 1024
#define RESOURCES_UNIFIED_MAX 64

static void reply_err(struct ipc_chan *chan, struct ipc_msg *msg, struct crisp_error *err)
{
	ipc_reply_error(chan, msg, err);
}

static struct ctr *running_ctr(struct ipc_chan *chan, struct ipc_msg *msg, const char *id,
			       const struct rt_handler **ret_h)
{
	struct crisp_error err = { 0 };
	struct ctr *c = id_valid(id) ? ctr_find(id) : NULL;
	struct pod *p = c ? pod_find(c->info->sandbox_id) : NULL;

	if (!id_valid(id))
		err_set(&err, CRISP_E_INVALID, "container id is not 64 lowercase hex digits");
	else if (!c)
		err_set(&err, CRISP_E_NOT_FOUND, "container %s not found", id);
	else if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
		err_set(&err, CRISP_E_PRECONDITION, "container %s is not running", id);
	else if (!p || !(*ret_h = handler_find(p->info->runtime_handler)))
		err_set(&err, CRISP_E_UNAVAILABLE, "container %s: its runtime handler is gone", id);
	if (err.code != CRISP_E_OK) {
		reply_err(chan, msg, &err);
		return NULL;
	}
	return c;
}

/* --- ExecSync ------------------------------------------------------------------ */

struct exec_job {
	struct child_deferred d;
	char id[ID_LEN + 1];
	char *process_path, *pid_path;
	int out[2], err[2]; /* read ends [0] stay here */
	struct event *out_ev, *err_ev, *timer;
	uint8_t *obuf, *ebuf;
	size_t olen, elen;
	int64_t timeout;
	bool timed_out;
};

static unsigned exec_seq;

static void exec_read(int fd, uint8_t *buf, size_t *len, struct event *ev)
{
	uint8_t tmp[16384];
	ssize_t n;
	size_t cap = child_config()->exec_output_max;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		size_t keep = *len < cap ? cap - *len : 0;
		if ((size_t)n < keep)
			keep = (size_t)n;
		memcpy(buf + *len, tmp, keep);
		*len += keep; /* the rest is dropped: the cap is the reply's bound */
	}
	if (n == 0 && ev)
		event_del(ev);
}

static void exec_out(evutil_socket_t fd, short what, void *arg)
{
	struct exec_job *j = arg;

	exec_read(j->out[0], j->obuf, &j->olen, j->out_ev);
}

static void exec_errout(evutil_socket_t fd, short what, void *arg)
{
	struct exec_job *j = arg;

	exec_read(j->err[0], j->ebuf, &j->elen, j->err_ev);
}

static void exec_free(struct exec_job *j)
{
	if (j->out_ev)
		event_free(j->out_ev);
	if (j->err_ev)
		event_free(j->err_ev);
	if (j->timer)
		event_free(j->timer);
	for (int i = 0; i < 2; i++) {
		safe_close(j->out[i]);
		safe_close(j->err[i]);
	}
	if (j->process_path)
		unlink(j->process_path);
	if (j->pid_path)
		unlink(j->pid_path);
	free(j->process_path);
	free(j->pid_path);
	free(j->obuf);
	free(j->ebuf);
	free(j);
}

/* The exec'd process is killed, not runc: SIGKILL to `runc exec` would
 * leave the process running in the container. */
static void exec_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct exec_job *j = arg;
	struct crisp_error err = { 0 };
	_cleanup_free_ char *pid = read_file(j->pid_path, 32, NULL, &err);
	uint64_t v;

	j->timed_out = true;
	if (pid && parse_uint64(strtok(pid, "\n"), 10, 1u << 22, &v) == 0 && v > 1)
		kill((pid_t)v, SIGKILL);
	else
		log_warn("exec in %.12s timed out but its pid is unknown", j->id);
}

static void exec_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct exec_job *j = arg;
	struct timeval tv = { j->timeout, 0 };

	j->out[1] = safe_close(j->out[1]);
	j->err[1] = safe_close(j->err[1]);
	if (err) {
		child_reply_error(&j->d, err);
		exec_free(j);
		return;
	}
	if (j->timeout > 0)
		evtimer_add(j->timer, &tv);
}

static void exec_exited(struct launch *l, int status, void *arg)
{
	struct exec_job *j = arg;
	CrispIpc__ExecSyncReply reply = CRISP_IPC__EXEC_SYNC_REPLY__INIT;
	struct crisp_error err = { 0 };

	/* What the process wrote before it exited is in the pipes; children it
	 * left behind may hold them open, so do not wait for EOF. */
	exec_read(j->out[0], j->obuf, &j->olen, NULL);
	exec_read(j->err[0], j->ebuf, &j->elen, NULL);
	if (j->timed_out) {
		err_set(&err, CRISP_E_TIMEOUT, "command timed out after %lld s",
			(long long)j->timeout);
		child_reply_error(&j->d, &err);
	} else if (status < 0) {
		err_set(&err, CRISP_E_UNAVAILABLE, "exec in %s: the launcher went away", j->id);
		child_reply_error(&j->d, &err);
	} else {
		reply.stdout.data = j->obuf;
		reply.stdout.len = j->olen;
		reply.stderr.data = j->ebuf;
		reply.stderr.len = j->elen;
		reply.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
				  : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
							: 255;
		child_reply(&j->d, &reply.base);
	}
	exec_free(j);
}

/* The exec'd process: the container's own process settings (user, env,
 * cwd, capabilities, ...) with args replaced, no terminal. */
static int exec_process(const char *id, const CrispIpc__ExecSyncRequest *r, const char *path,
			struct crisp_error *err)
{
	_cleanup_free_ char *cfgpath = bundle_path(id, "config.json");
	json_error_t jerr;
	json_t *spec = json_load_file(cfgpath, JSON_REJECT_DUPLICATES, &jerr);
	json_t *proc = json_object_get(spec, "process"), *args;
	_cleanup_free_ char *text = NULL;
	int ret;

	if (!json_is_object(proc)) {
		json_decref(spec);
		return err_set(err, CRISP_E_INTERNAL, "%s: no process: %s", cfgpath, jerr.text);
	}
	args = json_array();
	for (size_t i = 0; i < r->n_cmd; i++)
		json_array_append_new(args, json_string(r->cmd[i]));
	json_object_set_new(proc, "args", args);
	json_object_set_new(proc, "terminal", json_false());
	json_object_del(proc, "consoleSize");
	text = json_dumps(proc, JSON_COMPACT);
	json_decref(spec);
	if (!text)
		return err_set(err, CRISP_E_INVALID, "exec: command is not valid UTF-8");
	ret = write_file(path, text, strlen(text), 0600, err);
	return ret;
}

void on_exec_sync(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ExecSyncRequest *r = (const CrispIpc__ExecSyncRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };
	struct exec_job *j;
	char name[64];
	const char *argv[12];
	struct launch_req lr = { .envp = (char *const *)launch_env };
	struct launch_cb cb = { .started = exec_started, .exited = exec_exited };

	if (!c)
		return;
	if (r->n_cmd == 0 || r->n_cmd > EXEC_ARGS_MAX || r->timeout < 0 ||
	    r->timeout > 86400 * 365) {
		err_set(&err, CRISP_E_INVALID, "exec: 1 to %d arguments and a timeout >= 0 needed",
			EXEC_ARGS_MAX);
		return reply_err(chan, msg, &err);
	}
	for (size_t i = 0; i < r->n_cmd; i++)
		if (strnlen(r->cmd[i], EXEC_ARG_LEN_MAX + 1) > EXEC_ARG_LEN_MAX) {
			err_set(&err, CRISP_E_INVALID, "exec: argument %zu too long", i);
			return reply_err(chan, msg, &err);
		}
	j = xcalloc(1, sizeof(*j));
	j->out[0] = j->out[1] = j->err[0] = j->err[1] = -1;
	memcpy(j->id, c->id, ID_LEN + 1);
	j->timeout = r->timeout;
	snprintf(name, sizeof(name), "exec-%u.json", ++exec_seq);
	j->process_path = bundle_path(c->id, name);
	snprintf(name, sizeof(name), "exec-%u.pid", exec_seq);
	j->pid_path = bundle_path(c->id, name);
	j->obuf = xmalloc(child_config()->exec_output_max + 1);
	j->ebuf = xmalloc(child_config()->exec_output_max + 1);
	child_defer(msg, &j->d);
	if (exec_process(c->id, r, j->process_path, &err) < 0)
		goto fail;
	if (pipe2(j->out, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(j->err, O_CLOEXEC | O_NONBLOCK) < 0) {
		err_set_errno(&err, CRISP_E_RESOURCE, errno, "pipe");
		goto fail;
	}
	j->out_ev = event_new(child_base(), j->out[0], EV_READ | EV_PERSIST, exec_out, j);
	j->err_ev = event_new(child_base(), j->err[0], EV_READ | EV_PERSIST, exec_errout, j);
	j->timer = evtimer_new(child_base(), exec_timeout, j);
	event_add(j->out_ev, NULL);
	event_add(j->err_ev, NULL);
	argv[0] = h->name;
	argv[1] = "--root";
	argv[2] = rt.runc_root;
	argv[3] = "exec";
	argv[4] = "--process";
	argv[5] = j->process_path;
	argv[6] = "--pid-file";
	argv[7] = j->pid_path;
	argv[8] = c->id;
	argv[9] = NULL;
	lr.program = h->name;
	lr.argv = (char *const *)argv;
	lr.fds[0] = -1;
	lr.fds[1] = j->out[1];
	lr.fds[2] = j->err[1];
	cb.arg = j;
	if (!launch(&lr, &cb, &err))
		goto fail;
	return;
fail:
	child_reply_error(&j->d, &err);
	exec_free(j);
}

/* --- UpdateContainerResources ------------------------------------------------------ */

static bool cpuset_ok(const char *s)
{
	size_t n = strnlen(s, RESOURCES_STR_MAX + 1);

	return n <= RESOURCES_STR_MAX && strspn(s, "0123456789,-") == n;
}

static bool unified_ok(const char *k, const char *v)
{
	size_t kn = strnlen(k, 256), vn = strnlen(v, RESOURCES_STR_MAX + 1);

	return kn > 0 && kn < 256 && vn <= RESOURCES_STR_MAX &&
	       strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789._") == kn && !strchr(k, '/') &&
	       !strpbrk(v, "\n\r");
}

/* runc's LinuxResources JSON from CRI's LinuxContainerResources; a zero
 * means "not set" in CRI and is left out. */
static json_t *resources_json(const Runtime__V1__LinuxContainerResources *r,
			      struct crisp_error *err)
{
	json_t *o = json_object(), *cpu = json_object(), *mem = json_object();

	if (r->cpu_period < 0 || r->cpu_quota < -1 || r->cpu_shares < 0 ||
	    r->memory_limit_in_bytes < 0 || r->memory_swap_limit_in_bytes < -1 ||
	    !cpuset_ok(r->cpuset_cpus) || !cpuset_ok(r->cpuset_mems) ||
	    r->n_unified > RESOURCES_UNIFIED_MAX) {
		err_set(err, CRISP_E_INVALID, "resources: a value is out of range");
		goto fail;
	}
	if (r->cpu_shares)
		json_object_set_new(cpu, "shares", json_integer(r->cpu_shares));
	if (r->cpu_quota)
		json_object_set_new(cpu, "quota", json_integer(r->cpu_quota));
	if (r->cpu_period)
		json_object_set_new(cpu, "period", json_integer(r->cpu_period));
	if (*r->cpuset_cpus)
		json_object_set_new(cpu, "cpus", json_string(r->cpuset_cpus));
	if (*r->cpuset_mems)
		json_object_set_new(cpu, "mems", json_string(r->cpuset_mems));
	if (r->memory_limit_in_bytes)
		json_object_set_new(mem, "limit", json_integer(r->memory_limit_in_bytes));
	if (r->memory_swap_limit_in_bytes)
		json_object_set_new(mem, "swap", json_integer(r->memory_swap_limit_in_bytes));
	json_object_set_new(o, "cpu", cpu);
	json_object_set_new(o, "memory", mem);
	cpu = mem = NULL;
	if (r->n_hugepage_limits) {
		json_t *hp = json_array();
		for (size_t i = 0; i < r->n_hugepage_limits; i++) {
			const Runtime__V1__HugepageLimit *l = r->hugepage_limits[i];
			size_t n = strnlen(l->page_size, 16);
			if (n == 0 || n > 8 || strspn(l->page_size, "0123456789KMGB") != n) {
				json_decref(hp);
				err_set(err, CRISP_E_INVALID, "resources: bad hugepage size");
				goto fail;
			}
			json_array_append_new(hp, json_pack("{s:s, s:I}", "pageSize", l->page_size,
							    "limit", (json_int_t)l->limit));
		}
		json_object_set_new(o, "hugepageLimits", hp);
	}
	if (r->n_unified) {
		json_t *u = json_object();
		for (size_t i = 0; i < r->n_unified; i++) {
			if (!unified_ok(r->unified[i]->key, r->unified[i]->value)) {
				json_decref(u);
				err_set(err, CRISP_E_INVALID, "resources: bad unified entry");
				goto fail;
			}
			json_object_set_new(u, r->unified[i]->key,
					    json_string(r->unified[i]->value));
		}
		json_object_set_new(o, "unified", u);
	}
	return o;
fail:
	json_decref(cpu);
	json_decref(mem);
	json_decref(o);
	return NULL;
}

struct update_job {
	struct child_deferred d;
	char *path;
};

static void update_done(int status, const char *errout, void *arg)
{
	struct update_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };

	unlink(j->path);
	if (status == 0) {
		child_reply(&j->d, &empty.base);
	} else {
		err_set(&err, CRISP_E_INTERNAL, "runc update: %s", *errout ? errout : "failed");
		child_reply_error(&j->d, &err);
	}
	free(j->path);
	free(j);
}

void on_container_update(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	const CrispIpc__ContainerUpdateRequest *r = (const CrispIpc__ContainerUpdateRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };
	_cleanup_free_ char *text = NULL;
	struct update_job *j;
	json_t *res;

	if (!c)
		return;
	if (!r->resources) {
		err_set(&err, CRISP_E_INVALID, "no resources to update");
		return reply_err(chan, msg, &err);
	}
	res = resources_json(r->resources, &err);
	if (!res)
		return reply_err(chan, msg, &err);
	text = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	j = xcalloc(1, sizeof(*j));
	j->path = bundle_path(c->id, "resources.json");
	child_defer(msg, &j->d);
	if (write_file(j->path, text, strlen(text), 0600, &err) < 0) {
		child_reply_error(&j->d, &err);
		free(j->path);
		free(j);
		return;
	}
	{
		const char *args[] = { "update", "--resources", j->path, c->id, NULL };
		if (runc_run(h, args, update_done, j, &err) < 0) {
			unlink(j->path);
			child_reply_error(&j->d, &err);
			free(j->path);
			free(j);
		}
	}
}

/* --- ReopenContainerLog --------------------------------------------------------------- */

struct reopen_job {
	struct child_deferred d;
	int fd;
	struct event *ev;
};

static void reopen_answer(evutil_socket_t fd, short what, void *arg)
{
	struct reopen_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	char buf[512];
	ssize_t n = (what & EV_READ) ? recv(j->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;

	if (n == 2 && memcmp(buf, "ok", 2) == 0) {
		child_reply(&j->d, &empty.base);
	} else {
		if (n > 0)
			buf[n] = '\0';
		err_set(&err, CRISP_E_INTERNAL, "reopening the log: %s",
			n > 0                 ? buf
			: (what & EV_TIMEOUT) ? "the monitor did not answer"
					      : "the monitor hung up");
		child_reply_error(&j->d, &err);
	}
	event_free(j->ev);
	safe_close(j->fd);
	free(j);
}

void on_log_reopen(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };
	_cleanup_free_ char *bundle = NULL;
	_cleanup_close_ int dirfd = -1, fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { 5, 0 };
	struct reopen_job *j;

	if (!c)
		return;
	bundle = bundle_path(c->id, NULL);
	/* Through /proc/self/fd: a bundle path may be longer than sun_path
	 * (monitor.h). */
	dirfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (dirfd < 0 || fd < 0) {
		err_set_errno(&err, CRISP_E_INTERNAL, errno, "reaching the monitor of %s", c->id);
		return reply_err(chan, msg, &err);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, MONITOR_SOCKET);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, "reopen", 6, MSG_NOSIGNAL) != 6) {
		err_set_errno(&err, CRISP_E_INTERNAL, errno, "the monitor of %s", c->id);
		return reply_err(chan, msg, &err);
	}
	j = xcalloc(1, sizeof(*j));
	j->fd = TAKE_FD(fd);
	child_defer(msg, &j->d);
	j->ev = event_new(child_base(), j->fd, EV_READ, reopen_answer, j);
	event_add(j->ev, &tv);
}

/* --- stats ------------------------------------------------------------------------------- */

static CrispIpc__ContainerStatsEntry *ctr_stats(struct ctr *c)
{
	CrispIpc__ContainerStatsEntry *e = xcalloc(1, sizeof(*e));
	struct cgroup_stats st = { 0 };
	struct crisp_error err = { 0 };
	uint64_t bytes = 0, inodes = 0;

	crisp_ipc__container_stats_entry__init(e);
	e->container_id = c->id;
	e->sandbox_id = c->info->sandbox_id;
	e->timestamp = now_ns();
	if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING &&
	    proc_alive(c->info->pid, c->pid_start)) {
		if (cgroup_stats_pid(CGROUP_ROOT, "/proc", c->info->pid, &st, &err) == 0) {
			e->cpu_usage_ns = st.cpu_usage_ns;
			e->memory_working_set = st.memory_working_set;
			e->memory_usage = st.memory_usage;
			e->memory_rss = st.memory_rss;
			e->page_faults = st.page_faults;
			e->major_page_faults = st.major_page_faults;
		} else {
			log_debug("stats of %.12s: %s", c->id, err.msg);
		}
	}
	if (c->rootfs && c->rootfs->upperdir) {
		err_clear(&err);
		if (disk_usage(c->rootfs->upperdir, &bytes, &inodes, &err) == 0) {
			e->writable_bytes = bytes;
			e->writable_inodes = inodes;
		}
		e->writable_mountpoint = c->rootfs->upperdir;
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
	}
	return e;
}

void on_stats(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__StatsRequest *r = (const CrispIpc__StatsRequest *)req;
	CrispIpc__StatsReply reply = CRISP_IPC__STATS_REPLY__INIT;
	size_t nc = 0, np = 0;

	for (struct ctr *c = rt.ctrs; c; c = c->next)
		nc++;
	for (struct pod *p = rt.pods; p; p = p->next)
		np++;
	reply.containers = xcalloc(nc + 1, sizeof(*reply.containers));
	reply.sandboxes = xcalloc(np + 1, sizeof(*reply.sandboxes));
	for (struct ctr *c = rt.ctrs; c; c = c->next) {
		if (*r->container_id && !streq(r->container_id, c->id))
			continue;
		if (*r->sandbox_id && !streq(r->sandbox_id, c->info->sandbox_id))
			continue;
		if (c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN)
			continue;
		reply.containers[reply.n_containers++] = ctr_stats(c);
	}
	/* Pod stats when no single container was asked for. */
	if (!*r->container_id)
		for (struct pod *p = rt.pods; p; p = p->next)
			if (!p->info->ready_to_start &&
			    (!*r->sandbox_id || streq(r->sandbox_id, p->id)))
				reply.sandboxes[reply.n_sandboxes++] = pod_stats(p);
	ipc_reply(chan, msg, &reply.base, NULL, 0);
	for (size_t i = 0; i < reply.n_containers; i++)
		free(reply.containers[i]);
	for (size_t i = 0; i < reply.n_sandboxes; i++)
		free(reply.sandboxes[i]);
	free(reply.containers);
	free(reply.sandboxes);
}
