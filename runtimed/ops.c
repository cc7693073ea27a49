/* Operations on running containers: ExecSync (crisp-exec, or the
 * handler's runc exec, through the launcher, output on pipes read on the
 * loop, each stream capped at runtime.exec_output_max),
 * UpdateContainerResources (runc update),
 * ReopenContainerLog (the monitor's control socket) and stats (cgroups,
 * the pod's netns; the writable layer and the open fds measured by worker
 * threads). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/launcher.h"
#include "common/log.h"
#include "runtimed/cgroup.h"
#include "runtimed/exec.h"
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
	bool direct; /* crisp-exec, not runc exec */
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
	} else if (j->direct && WIFEXITED(status) && WEXITSTATUS(status) == EXEC_EXIT_NOT_RUNNING &&
		   access(j->pid_path, F_OK) < 0) {
		/* crisp-exec's own status (no process was started, so no pid
		 * file): the init it was to enter is gone */
		err_set(&err, CRISP_E_PRECONDITION, "container %s is not running", j->id);
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

/* crisp-exec instead of `runc exec` where runtimed knows what runc would
 * do: its default handler (runc) with the cgroupfs driver (crisp-exec
 * joins cgroupsPath as a path), and an init pid recorded with its
 * starttime. Other handlers may confine differently: they keep theirs.
 * A tty exec keeps runc too: runc gives the process a terminal of the
 * container's own devpts, where ttyname() finds it (tmux, sudo and tty
 * need that), and crisp-exec has no pty relay to do the same. */
bool exec_direct(const struct ctr *c, const struct rt_handler *h, bool tty)
{
	return !tty && !rt.host.systemd_cgroup && h == &rt.handlers[0] && c->info->pid > 1 &&
	       c->pid_start != 0;
}

void exec_cmd(const struct ctr *c, const struct rt_handler *h, bool tty, const char *process_path,
	      const char *pid_path, struct exec_cmd *cmd)
{
	size_t n = 0;

	if (exec_direct(c, h, tty)) {
		snprintf(cmd->bundle, sizeof(cmd->bundle), "%s/%s", rt.bundles, c->id);
		snprintf(cmd->init_pid, sizeof(cmd->init_pid), "%d", (int)c->info->pid);
		snprintf(cmd->init_start, sizeof(cmd->init_start), "%llu",
			 (unsigned long long)c->pid_start);
		cmd->program = "exec";
		cmd->argv[n++] = "crisp-exec";
		cmd->argv[n++] = "--id";
		cmd->argv[n++] = c->id;
		cmd->argv[n++] = "--bundle";
		cmd->argv[n++] = cmd->bundle;
		cmd->argv[n++] = "--process";
		cmd->argv[n++] = process_path;
		cmd->argv[n++] = "--pid-file";
		cmd->argv[n++] = pid_path;
		cmd->argv[n++] = "--init-pid";
		cmd->argv[n++] = cmd->init_pid;
		cmd->argv[n++] = "--init-start";
		cmd->argv[n++] = cmd->init_start;
	} else {
		cmd->program = h->name;
		cmd->argv[n++] = h->name;
		cmd->argv[n++] = "--root";
		cmd->argv[n++] = rt.runc_root;
		cmd->argv[n++] = "exec";
		cmd->argv[n++] = "--process";
		cmd->argv[n++] = process_path;
		cmd->argv[n++] = "--pid-file";
		cmd->argv[n++] = pid_path;
		cmd->argv[n++] = c->id;
	}
	cmd->argv[n] = NULL;
}

/* The exec'd process: the container's own process settings (user, env,
 * cwd, capabilities, ...) with args replaced, a terminal or none. Written
 * in place, without fsync: it is read once by what runs next and removed
 * after, and a crash loses nothing that matters. */
int exec_process(const char *id, const CrispIpc__ExecSyncRequest *r, bool terminal,
		 const char *path, struct crisp_error *err)
{
	_cleanup_free_ char *cfgpath = bundle_path(id, "config.json");
	json_error_t jerr;
	json_t *spec = json_load_file(cfgpath, JSON_REJECT_DUPLICATES, &jerr);
	json_t *proc = json_object_get(spec, "process"), *args;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	size_t len, off = 0;

	if (!json_is_object(proc)) {
		json_decref(spec);
		return err_set(err, CRISP_E_INTERNAL, "%s: no process: %s", cfgpath, jerr.text);
	}
	args = json_array();
	for (size_t i = 0; i < r->n_cmd; i++)
		json_array_append_new(args, json_string(r->cmd[i]));
	json_object_set_new(proc, "args", args);
	json_object_set_new(proc, "terminal", json_boolean(terminal));
	json_object_del(proc, "consoleSize");
	text = json_dumps(proc, JSON_COMPACT);
	json_decref(spec);
	if (!text)
		return err_set(err, CRISP_E_INVALID, "exec: command is not valid UTF-8");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "%s", path);
	for (len = strlen(text); off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s", path);
		off += (size_t)n;
	}
	return 0;
}

void on_exec_sync(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ExecSyncRequest *r = (const CrispIpc__ExecSyncRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };
	struct exec_job *j;
	char name[64];
	struct exec_cmd cmd;
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
	if (exec_process(c->id, r, false, j->process_path, &err) < 0)
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
	exec_cmd(c, h, false, j->process_path, j->pid_path, &cmd);
	j->direct = exec_direct(c, h, false);
	lr.program = cmd.program;
	lr.argv = (char *const *)cmd.argv;
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
	char id[ID_LEN + 1];
	char *path;
	json_t *res;                               /* runc's form, for config.json */
	Runtime__V1__LinuxContainerResources *cri; /* CRI's form, for the record */
};

static void update_job_free(struct update_job *j)
{
	if (j->path)
		unlink(j->path);
	free(j->path);
	json_decref(j->res);
	if (j->cri)
		protobuf_c_message_free_unpacked(&j->cri->base, NULL);
	free(j);
}

/* Fold runc's resources update into the bundle's config.json the way runc
 * applied it (and containerd updates its spec): what the update sets
 * replaces the old value, what it leaves out stays. */
static int update_config_json(const char *id, json_t *res, struct crisp_error *err)
{
	_cleanup_free_ char *path = bundle_path(id, "config.json");
	json_error_t jerr;
	json_t *spec = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *linux = json_object_get(spec, "linux"), *old, *key_res;
	const char *key;
	int ret;

	if (!json_is_object(linux)) {
		json_decref(spec);
		return err_set(err, CRISP_E_INTERNAL, "%s: no linux section: %s", path, jerr.text);
	}
	old = json_object_get(linux, "resources");
	if (!json_is_object(old)) {
		old = json_object();
		json_object_set_new(linux, "resources", old);
	}
	json_object_foreach(res, key, key_res)
	{
		json_t *prev = json_object_get(old, key);
		if (json_is_object(key_res) && json_is_object(prev) && !streq(key, "unified"))
			json_object_update(prev, key_res);
		else
			json_object_set(old, key, key_res);
	}
	ret = write_spec(id, spec, err);
	json_decref(spec);
	return ret;
}

/* The record's LinuxContainerResources merged with the update, by protobuf
 * merge semantics: of the concatenation of two encodings, proto3 scalars
 * set in the second win and those left at zero (not encoded) keep the
 * first's value. Repeated fields would be concatenated: the hugepage
 * limits and the unified map are replaced instead when the update has
 * any, as runc's update replaces them. */
static Runtime__V1__LinuxContainerResources *resources_merge(
	const Runtime__V1__LinuxContainerResources *old,
	const Runtime__V1__LinuxContainerResources *up)
{
	Runtime__V1__LinuxContainerResources base = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n1, n2;
	Runtime__V1__LinuxContainerResources *out;

	if (old)
		base = *old;
	if (up->n_hugepage_limits)
		base.n_hugepage_limits = 0;
	if (up->n_unified)
		base.n_unified = 0;
	n1 = protobuf_c_message_get_packed_size(&base.base);
	n2 = protobuf_c_message_get_packed_size(&up->base);
	buf = xmalloc(n1 + n2 + 1);
	protobuf_c_message_pack(&base.base, buf);
	protobuf_c_message_pack(&up->base, buf + n1);
	out = runtime__v1__linux_container_resources__unpack(NULL, n1 + n2, buf);
	if (!out)
		fatal("runtimed: cannot merge container resources");
	return out;
}

/* The record keeps the resources in force: ContainerStatus reports them
 * and a recovery or restart must not bring back the old ones. */
static int update_record(struct ctr *c, const Runtime__V1__LinuxContainerResources *up,
			 struct crisp_error *err)
{
	Runtime__V1__ContainerConfig *cfg = c->info->config;
	Runtime__V1__LinuxContainerResources *merged;

	if (!cfg)
		return 0; /* a record without its config: nothing reports resources */
	if (!cfg->linux) {
		Runtime__V1__LinuxContainerConfig empty = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
		cfg->linux = msg_dup(&runtime__v1__linux_container_config__descriptor, &empty.base);
	}
	merged = resources_merge(cfg->linux->resources, up);
	if (cfg->linux->resources)
		protobuf_c_message_free_unpacked(&cfg->linux->resources->base, NULL);
	cfg->linux->resources = merged;
	return state_ctr_save(c, err);
}

static void update_done(int status, const char *errout, void *arg)
{
	struct update_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	struct ctr *c = ctr_find(j->id);

	if (status != 0) {
		err_set(&err, CRISP_E_INTERNAL, "runc update: %s", *errout ? errout : "failed");
	} else if (!c) {
		err_set(&err, CRISP_E_NOT_FOUND, "container %s was removed during the update",
			j->id);
	} else if (update_config_json(c->id, j->res, &err) < 0 ||
		   update_record(c, j->cri, &err) < 0) {
		/* The cgroup has the new values; what is stored may not:
		 * the caller sees an error and retries (an update is
		 * idempotent). */
		err_prefix(&err, "container %s updated, but storing its resources", j->id);
	}
	if (err.code != CRISP_E_OK)
		child_reply_error(&j->d, &err);
	else
		child_reply(&j->d, &empty.base);
	update_job_free(j);
}

/* A created container has no cgroup yet (its monitor's `runc run` makes
 * it at start): the update goes into its bundle's config.json, which that
 * run applies, and into its record. No runtime is involved. */
static void update_created(struct ipc_chan *chan, struct ipc_msg *msg, struct ctr *c,
			   const Runtime__V1__LinuxContainerResources *up, json_t *res)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };

	if (update_config_json(c->id, res, &err) < 0 || update_record(c, up, &err) < 0)
		reply_err(chan, msg, &err);
	else
		ipc_reply(chan, msg, &empty.base, NULL, 0);
}

void on_container_update(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg)
{
	const CrispIpc__ContainerUpdateRequest *r = (const CrispIpc__ContainerUpdateRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = id_valid(r->container_id) ? ctr_find(r->container_id) : NULL;
	bool created = c && c->info->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED &&
		       c->info->pid == 0;
	struct crisp_error err = { 0 };
	_cleanup_free_ char *text = NULL;
	struct update_job *j;
	json_t *res;

	if (!created && !(c = running_ctr(chan, msg, r->container_id, &h)))
		return;
	if (created && c->busy) {
		/* its monitor may be reading config.json right now */
		err_set(&err, CRISP_E_UNAVAILABLE, "container %s is being started or removed",
			c->id);
		return reply_err(chan, msg, &err);
	}
	if (!r->resources) {
		err_set(&err, CRISP_E_INVALID, "no resources to update");
		return reply_err(chan, msg, &err);
	}
	res = resources_json(r->resources, &err);
	if (!res)
		return reply_err(chan, msg, &err);
	text = json_dumps(res, JSON_COMPACT);
	if (created) {
		if (!text) {
			err_set(&err, CRISP_E_INVALID, "resources: a value is not valid UTF-8");
			reply_err(chan, msg, &err);
		} else {
			update_created(chan, msg, c, r->resources, res);
		}
		json_decref(res);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	memcpy(j->id, c->id, ID_LEN + 1);
	j->res = res;
	j->cri = msg_dup(&runtime__v1__linux_container_resources__descriptor, &r->resources->base);
	j->path = bundle_path(c->id, "resources.json");
	child_defer(msg, &j->d);
	if (!text) {
		err_set(&err, CRISP_E_INVALID, "resources: a value is not valid UTF-8");
		goto fail;
	}
	if (write_file(j->path, text, strlen(text), 0600, &err) < 0)
		goto fail;
	{
		const char *args[] = { "update", "--resources", j->path, c->id, NULL };
		if (runc_run(h, args, update_done, j, &err) < 0)
			goto fail;
	}
	return;
fail:
	child_reply_error(&j->d, &err);
	update_job_free(j);
}

/* --- requests to a container's monitor ------------------------------------------------ */

/* One request on the monitor's control socket (runtimed/monitor.h), its
 * "ok" awaited on the loop. For "attach" the connection itself is the
 * answer and goes to the frontend. */
struct monitor_job {
	struct child_deferred d;
	int fd;
	struct event *ev;
	bool hand_over; /* reply with the connection */
	enum crisp_errcode code;
	const char *what;
};

static void monitor_answer(evutil_socket_t fd, short what, void *arg)
{
	struct monitor_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	char buf[512];
	ssize_t n = (what & EV_READ) ? recv(j->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;

	if (n == 2 && memcmp(buf, "ok", 2) == 0 && j->hand_over) {
		child_reply_fds(&j->d, &empty.base, &j->fd, 1);
		j->fd = -1;
	} else if (n == 2 && memcmp(buf, "ok", 2) == 0) {
		child_reply(&j->d, &empty.base);
	} else {
		if (n > 0)
			buf[n] = '\0';
		err_set(&err, j->code, "%s: %s", j->what,
			n > 0                 ? buf
			: (what & EV_TIMEOUT) ? "the monitor did not answer"
					      : "the monitor hung up");
		child_reply_error(&j->d, &err);
	}
	event_free(j->ev);
	safe_close(j->fd);
	free(j);
}

int monitor_request(struct ipc_msg *msg, const struct ctr *c, const char *request,
		    unsigned timeout_s, bool hand_over, enum crisp_errcode code,
		    struct crisp_error *err)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_close_ int dirfd = -1, fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_s, 0 };
	size_t len = strlen(request);
	struct monitor_job *j;

	/* Through /proc/self/fd: a bundle path may be longer than sun_path
	 * (monitor.h). */
	dirfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (dirfd >= 0 && fd >= 0)
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd,
			 MONITOR_SOCKET);
	if (dirfd < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len)
		return err_set_errno(err, code, errno, "reaching the monitor of %s", c->id);
	j = xcalloc(1, sizeof(*j));
	j->fd = TAKE_FD(fd);
	j->hand_over = hand_over;
	j->code = code;
	j->what = request;
	child_defer(msg, &j->d);
	j->ev = event_new(child_base(), j->fd, EV_READ, monitor_answer, j);
	event_add(j->ev, &tv);
	return 0;
}

/* --- ReopenContainerLog --------------------------------------------------------------- */

void on_log_reopen(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };

	if (c && monitor_request(msg, c, "reopen", 5, false, CRISP_E_INTERNAL, &err) < 0)
		reply_err(chan, msg, &err);
}

/* --- stats ------------------------------------------------------------------------------- */

/* Two measurements cost what a container makes them cost, too much for the
 * loop: the usage of its writable layer (a walk of a directory tree it
 * fills as it likes) and its open fds (a readlink each: half a second for
 * 64k sockets). Each has one worker thread that does only that, and a cache
 * per container on the loop. A stats reply waits for the measurements it
 * started at most STATS_WAIT_MS, then answers with what the caches hold.
 * The disk usage worker uses a cache entry only while it is queued (the
 * loop leaves it alone meanwhile) and sets its results under the lock; the
 * fd worker gets a batch of copies (ids, pids) handed over whole. Neither
 * touches anything else the loop owns. */
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
