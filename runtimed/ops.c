/* Operations on running containers: ExecSync (crisp-exec, or the
 * handler's runc exec, through the launcher, output on pipes read on the
 * loop, each stream capped at runtime.exec_output_max),
 * UpdateContainerResources (runc update) and
 * ReopenContainerLog (the monitor's control socket). Stats are stats.c's. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/launcher.h"
#include "common/log.h"
#include "launch/wire.h"
#include "runtimed/exec.h"
#include "runtimed/monitor.h"
#include "runtimed/runtimed.h"

#define EXEC_ARGS_MAX 4096
#define EXEC_ARG_LEN_MAX 65536

/* Execs running at once on this node, streaming and ExecSync together.
 * Each holds one of the launcher's LAUNCH_RUNNING_MAX slots until it exits,
 * for as long as its client keeps it open, and EXEC_PER_CTR_MAX per
 * container does not bound them in all: without this, execs into enough
 * containers would take every slot, and `runc kill` and `runc delete`
 * would fail until they end, so that no pod could be stopped or removed.
 * The 128 kept are for what else runtimed runs and waits for: a
 * `runc kill`, `delete` or `update` per container being stopped, removed or
 * updated, a `runc delete` per orphan at start, `runc features` once per
 * handler (monitors and crisp-pause are detached: they hold no slot).
 * Those are not counted; each is short, killed after runtime.timeout at
 * the most, and there is one per container in a CRI call in flight: 128
 * lets a kubelet stop or remove many pods at once (its default is 110 pods
 * a node, most with one or two containers); beyond that a launch fails
 * RESOURCE for that moment, and the kubelet retries the call. */
#define RT_EXECS_MAX (LAUNCH_RUNNING_MAX - 128)

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
	LIST_ENTRY(exec_job) entry;
	char id[ID_LEN + 1];
	uint64_t exec_id; /* the frontend's, for IPC_RUNTIMED_EXEC_CANCEL */
	char *process_path, *pid_path;
	int out[2], err[2]; /* read ends [0] stay here */
	struct event *out_ev, *err_ev, *timer;
	uint8_t *obuf, *ebuf;
	size_t olen, elen;
	int64_t timeout;
	bool timed_out;
	bool cancelled; /* its client, or the frontend, went away */
	bool direct;    /* crisp-exec, not runc exec */
};

static unsigned exec_seq;
/* Every ExecSync from its request until its reply: what a cancel may name. */
static LIST_HEAD(, exec_job) exec_jobs = LIST_HEAD_INITIALIZER(exec_jobs);

/* How often a cancel looks again for the pid of a command that was not
 * started yet. */
#define EXEC_CANCEL_RETRY_MS 50

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
	LIST_REMOVE(j, entry);
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
 * leave the process running in the container. The pid stays this
 * command's while the job lives: runc and crisp-exec reap it before they
 * exit, and the job ends when they do. false while no pid file is written. */
static bool exec_kill(struct exec_job *j)
{
	struct crisp_error err = { 0 };
	_cleanup_free_ char *pid = read_file(j->pid_path, 32, NULL, &err);
	uint64_t v;

	if (!pid || parse_uint64(strtok(pid, "\n"), 10, 1u << 22, &v) < 0 || v <= 1)
		return false;
	kill((pid_t)v, SIGKILL);
	return true;
}

/* A cancel that came before runc or crisp-exec wrote the pid file tries
 * again until it can kill, or the job ends (a command that never started). */
static void exec_cancel_kill(struct exec_job *j)
{
	struct timeval tv = { 0, EXEC_CANCEL_RETRY_MS * 1000 };

	if (!exec_kill(j))
		evtimer_add(j->timer, &tv);
}

static void exec_timer(evutil_socket_t fd, short what, void *arg)
{
	struct exec_job *j = arg;

	if (j->cancelled)
		return exec_cancel_kill(j);
	j->timed_out = true;
	if (!exec_kill(j))
		log_warn("exec in %.12s timed out but its pid is unknown", j->id);
}

/* The command is killed as at its timeout; its ExecSync then answers with
 * an error (which nobody may be left to read). */
static void exec_cancel(struct exec_job *j, const char *why)
{
	if (j->cancelled)
		return;
	log_info("exec %llu in %.12s %s: killing its command", (unsigned long long)j->exec_id,
		 j->id, why);
	j->cancelled = true;
	evtimer_del(j->timer);
	/* Before exec_started the pipes' write ends are still open and no pid
	 * file can exist: exec_started kills then. */
	if (j->out[1] < 0)
		exec_cancel_kill(j);
}

/* An ExecSync whose frontend is gone (it died, or crispd handed runtimed a
 * new frontend channel) has nobody left to cancel it: its client's call
 * died with that frontend. Its command is killed as a cancel would, else it
 * would run on until it ends, holding the container's exec slot. */
void exec_orphans_cancel(void)
{
	struct exec_job *j;

	LIST_FOREACH (j, &exec_jobs, entry)
		if (!child_deferred_live(&j->d))
			exec_cancel(j, "orphaned: its frontend went away");
}

static unsigned execs_max(void)
{
#ifdef CRISP_TEST_HOOKS
	/* Test hook: the integration tests cannot hold hundreds of execs. */
	const char *v = getenv("CRISP_TEST_EXECS_MAX");
	uint64_t n;

	if (v && parse_uint64(v, 10, RT_EXECS_MAX, &n) == 0 && n > 0)
		return (unsigned)n;
#endif
	return RT_EXECS_MAX;
}

int execs_admit(struct crisp_error *err)
{
	/* An ExecSync holds its slot from its request to its reply: launch()
	 * comes right after it is listed, and it is freed once the launcher
	 * reported its exit (or refused it). */
	unsigned n = stream_execs_running(), max = execs_max();
	struct exec_job *j;

	LIST_FOREACH (j, &exec_jobs, entry)
		n++;
	if (n < max)
		return 0;
	return err_set(err, CRISP_E_RESOURCE,
		       "%u execs are running on this node, at most %u: the rest of the launcher "
		       "is kept for stopping and removing containers",
		       n, max);
}

static struct exec_job *exec_job_find(const char *id, uint64_t exec_id)
{
	struct exec_job *j;

	LIST_FOREACH (j, &exec_jobs, entry)
		if (j->exec_id == exec_id && streq(j->id, id))
			return j;
	return NULL;
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
	if (j->cancelled)
		exec_cancel_kill(j);
	else if (j->timeout > 0)
		evtimer_add(j->timer, &tv);
}

/* The exec program's own failure for want of space: status 255 (crisp-exec's
 * EXEC_EXIT_FAILED, runc's), no pid file (no process was started), and
 * ENOSPC's or EDQUOT's text (strerror's, or Go's in lower case) on stderr,
 * which then holds only the program's message. */
static bool exec_no_space(struct exec_job *j, int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != EXEC_EXIT_FAILED ||
	    access(j->pid_path, F_OK) == 0 || errno != ENOENT)
		return false;
	j->ebuf[j->elen] = '\0'; /* ebuf holds exec_output_max + 1 bytes */
	return strcasestr((char *)j->ebuf, strerror(ENOSPC)) ||
	       strcasestr((char *)j->ebuf, strerror(EDQUOT));
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
	if (j->cancelled) {
		/* nobody waits for it: the frontend drops the answer */
		err_set(&err, CRISP_E_UNAVAILABLE, "exec in %s cancelled: its client went away",
			j->id);
		child_reply_error(&j->d, &err);
	} else if (j->timed_out) {
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
	} else if (exec_no_space(j, status)) {
		/* crisp-exec or runc could not start the process for want of
		 * space (its pid file, on state_dir's tmpfs): an error of the
		 * call, as a full disk is everywhere else, not an exit code
		 * 255 of a command that never ran */
		err_set(&err, CRISP_E_RESOURCE, "exec in %.12s: %.*s", j->id,
			(int)strcspn((char *)j->ebuf, "\n"), (char *)j->ebuf);
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
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", path);
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
	/* A cancel must name exactly one command. */
	if (r->exec_id == 0) {
		err_set(&err, CRISP_E_INVALID, "exec: exec_id is required");
		return reply_err(chan, msg, &err);
	}
	if (exec_job_find(c->id, r->exec_id)) {
		err_set(&err, CRISP_E_EXISTS, "exec %llu in %s is already running",
			(unsigned long long)r->exec_id, c->id);
		return reply_err(chan, msg, &err);
	}
	if (execs_admit(&err) < 0)
		return reply_err(chan, msg, &err);
	j = xcalloc(1, sizeof(*j));
	LIST_INSERT_HEAD(&exec_jobs, j, entry);
	j->out[0] = j->out[1] = j->err[0] = j->err[1] = -1;
	memcpy(j->id, c->id, ID_LEN + 1);
	j->exec_id = r->exec_id;
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
	j->timer = evtimer_new(child_base(), exec_timer, j);
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

/* The command is killed (exec_cancel). A cancel that names no running
 * command (it finished, or never was) changes nothing and says so. */
void on_exec_cancel(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ExecCancelRequest *r = (const CrispIpc__ExecCancelRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	struct exec_job *j;

	if (!id_valid(r->container_id)) {
		err_set(&err, CRISP_E_INVALID, "container id is not 64 lowercase hex digits");
		return reply_err(chan, msg, &err);
	}
	j = r->exec_id ? exec_job_find(r->container_id, r->exec_id) : NULL;
	if (!j) {
		err_set(&err, CRISP_E_NOT_FOUND, "no exec %llu running in container %s",
			(unsigned long long)r->exec_id, r->container_id);
		return reply_err(chan, msg, &err);
	}
	exec_cancel(j, "cancelled");
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

/* --- UpdateContainerResources ------------------------------------------------------ */

/* What an update error names as its source, before "linux.resources.<field>". */
#define UPDATE_WHAT "resources update"

static unsigned update_seq;

struct update_job {
	struct child_deferred d;
	char id[ID_LEN + 1];
	char *path;
	json_t *res;                               /* runc's form, for config.json */
	Runtime__V1__LinuxContainerResources *cri; /* what was applied, for the record */
	bool oom_set;                              /* the update changes oom_score_adj */
	int oom_old;                               /* its value before, to put back */
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
 * replaces the old value, what it leaves out stays. oom_set: the update's
 * oom_score_adj goes to process.oomScoreAdj, where runc reads it at start. */
static int update_config_json(const char *id, json_t *res, bool oom_set, int oom,
			      struct crisp_error *err)
{
	_cleanup_free_ char *path = bundle_path(id, "config.json");
	json_error_t jerr;
	json_t *spec = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *linux = json_object_get(spec, "linux"), *process = json_object_get(spec, "process");
	json_t *old, *key_res;
	const char *key;
	int ret;

	if (!json_is_object(linux) || (oom_set && !json_is_object(process))) {
		json_decref(spec);
		return err_set(err, CRISP_E_INTERNAL, "%s: no linux or process section: %s", path,
			       jerr.text);
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
	if (oom_set)
		json_object_set_new(process, "oomScoreAdj", json_integer(oom));
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

/* The update as applied, for the record: the request with the values spec
 * generation chose in its place (the swap set to the memory limit, the
 * oom_score_adj as clamped), so ContainerStatus reports what is in force.
 * An oom_score_adj of 0 is proto3's "not set", as for every other field:
 * it is left alone (oom_set false). */
static Runtime__V1__LinuxContainerResources *update_applied(
	const Runtime__V1__LinuxContainerResources *req, const json_t *res, int oom,
	bool *ret_oom_set)
{
	Runtime__V1__LinuxContainerResources *a = msg_dup(
		&runtime__v1__linux_container_resources__descriptor, &req->base);
	json_t *swap = json_object_get(json_object_get(res, "memory"), "swap");

	if (json_is_integer(swap))
		a->memory_swap_limit_in_bytes = json_integer_value(swap);
	*ret_oom_set = req->oom_score_adj != 0;
	a->oom_score_adj = *ret_oom_set ? oom : 0;
	return a;
}

/* runc sets oom_score_adj on the container's init once, at its start, and
 * `runc update` has no such resource: runtimed writes the update's value
 * there itself (one small write, fine on the loop). /proc/<pid> is opened
 * before the pid's start time is checked, so a pid reused after the
 * container exited is never written to: the directory fd stays with the
 * process it was opened for. ret_old gets the value it replaced. Returns
 * 1, having changed nothing, when the kernel refuses the value (below the
 * one the process started with: lowering it needs CAP_SYS_RESOURCE, which
 * runtimed has not). */
static int oom_score_adj_write(const struct ctr *c, int adj, int *ret_old, struct crisp_error *err)
{
	_cleanup_close_ int dir = -1, fd = -1;
	char path[32], buf[16];
	ssize_t n, w;
	int len, old;

	snprintf(path, sizeof(path), "/proc/%d", (int)c->info->pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || c->info->pid <= 0 || !proc_alive(c->info->pid, c->pid_start))
		return err_set(err, CRISP_E_PRECONDITION, "container %s: its process has exited",
			       c->id);
	fd = openat(dir, "oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s/oom_score_adj",
				     path);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return err_set_errno(err, CRISP_E_INTERNAL, n < 0 ? errno : EIO,
				     "reading %s/oom_score_adj", path);
	buf[n] = '\0';
	if (sscanf(buf, "%d", &old) != 1)
		return err_set(err, CRISP_E_INTERNAL, "%s/oom_score_adj: '%s' is not a number",
			       path, buf);
	len = snprintf(buf, sizeof(buf), "%d\n", adj);
	w = pwrite(fd, buf, (size_t)len, 0);
	if (w != len) {
		if (w >= 0)
			errno = EIO; /* procfs takes the number whole or not at all */
		if (errno == EACCES)
			return 1;
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s/oom_score_adj",
				     path);
	}
	*ret_old = old;
	return 0;
}

/* runc refused the update: none of it is in force then, the oom score
 * included (the old value is at or above the one the process started
 * with, so it can always go back). */
static void oom_score_adj_restore(const struct ctr *c, struct update_job *j)
{
	struct crisp_error err = { 0 };
	int ignored;

	if (j->oom_set) {
		int r = oom_score_adj_write(c, j->oom_old, &ignored, &err);

		if (r != 0)
			log_warn("container %s: oom_score_adj %d not put back: %s", c->id,
				 j->oom_old, r > 0 ? "the kernel refused it" : err.msg);
	}
	j->oom_set = false;
}

static void update_done(int status, const char *errout, void *arg)
{
	struct update_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	struct ctr *c = ctr_find(j->id);

	if (status != 0) {
		err_set(&err, CRISP_E_INTERNAL, "runc update: %s", *errout ? errout : "failed");
		if (c)
			oom_score_adj_restore(c, j);
	} else if (!c) {
		err_set(&err, CRISP_E_NOT_FOUND, "container %s was removed during the update",
			j->id);
	} else if (update_config_json(c->id, j->res, j->oom_set, (int)j->cri->oom_score_adj, &err) <
			   0 ||
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
			   struct update_job *j)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };

	if (update_config_json(c->id, j->res, j->oom_set, (int)j->cri->oom_score_adj, &err) < 0 ||
	    update_record(c, j->cri, &err) < 0)
		reply_err(chan, msg, &err);
	else
		ipc_reply(chan, msg, &empty.base, NULL, 0);
}

/* The update is checked and built by spec generation's own resources code
 * (spec_resources), so it is refused where a create would be and applied
 * with the same defaults. */
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
	int oom = 0;

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
	res = spec_resources(&rt.host, UPDATE_WHAT, r->resources, &oom, &err);
	if (!res)
		return reply_err(chan, msg, &err);
	j = xcalloc(1, sizeof(*j));
	memcpy(j->id, c->id, ID_LEN + 1);
	j->res = res;
	j->cri = update_applied(r->resources, res, oom, &j->oom_set);
	if (created) {
		update_created(chan, msg, c, j);
		update_job_free(j);
		return;
	}
	{
		/* One file per update: two updates of one container may overlap. */
		char name[32];

		snprintf(name, sizeof(name), "resources%u.json", ++update_seq);
		j->path = bundle_path(c->id, name);
	}
	child_defer(msg, &j->d);
	text = json_dumps(res, JSON_COMPACT);
	if (!text) {
		err_set(&err, CRISP_E_INTERNAL, "resources: cannot encode the update as JSON");
		goto fail;
	}
	if (write_file(j->path, text, strlen(text), 0600, &err) < 0)
		goto fail;
	/* Before runc, so a failed write leaves the cgroup untouched;
	 * update_done puts it back if runc then fails. A value the kernel
	 * refuses does not fail the rest of the update (the kubelet's
	 * in-place resize sends one with every change): it is left out, and
	 * the record keeps the value in force. */
	if (j->oom_set) {
		int written = oom_score_adj_write(c, oom, &j->oom_old, &err);

		if (written < 0) {
			j->oom_set = false;
			goto fail;
		}
		if (written > 0) {
			log_info("container %s: oom_score_adj %d not applied: below the value its "
				 "process started with, which runtimed cannot lower",
				 c->id, oom);
			j->oom_set = false;
			j->cri->oom_score_adj = 0; /* the record keeps its value */
		}
	}
	{
		const char *args[] = { "update", "--resources", j->path, c->id, NULL };
		if (runc_run(h, args, update_done, j, &err) < 0)
			goto fail;
	}
	return;
fail:
	oom_score_adj_restore(c, j);
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
	/* sent instead when the monitor does not know what (a monitor of an
	 * older crisp, still running after an upgrade), or NULL */
	const char *fallback;
	unsigned timeout_s;
};

/* The answer of a monitor that does not know the request: monitor_ctl.c's
 * "error unknown request '<req>'", then and now. */
static bool unknown_request(const char *answer, const char *request)
{
	static const char prefix[] = "error unknown request '";
	size_t len = strlen(request);

	return strncmp(answer, prefix, sizeof(prefix) - 1) == 0 &&
	       strncmp(answer + sizeof(prefix) - 1, request, len) == 0 &&
	       streq(answer + sizeof(prefix) - 1 + len, "'");
}

static void monitor_answer(evutil_socket_t fd, short what, void *arg)
{
	struct monitor_job *j = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err = { 0 };
	char buf[512];
	ssize_t n = (what & EV_READ) ? recv(j->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;

	if (n > 0)
		buf[n] = '\0';
	if (n > 0 && j->fallback && unknown_request(buf, j->what)) {
		struct timeval tv = { j->timeout_s, 0 };
		size_t len = strlen(j->fallback);

		log_debug("container monitor: '%s' unknown, '%s' instead", j->what, j->fallback);
		j->what = j->fallback;
		j->fallback = NULL;
		if (send(j->fd, j->what, len, MSG_NOSIGNAL) == (ssize_t)len) {
			event_add(j->ev, &tv);
			return;
		}
		n = -1; /* the monitor hung up */
	}
	if (n == 2 && memcmp(buf, "ok", 2) == 0 && j->hand_over) {
		child_reply_fds(&j->d, &empty.base, &j->fd, 1);
		j->fd = -1;
	} else if (n == 2 && memcmp(buf, "ok", 2) == 0) {
		child_reply(&j->d, &empty.base);
	} else {
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

/* Sends request, with pass_fd (when >= 0) in SCM_RIGHTS. The caller keeps
 * pass_fd: the message holds its own reference. */
static int monitor_send(struct ipc_msg *msg, const struct ctr *c, const char *request, int pass_fd,
			const char *fallback, unsigned timeout_s, bool hand_over,
			enum crisp_errcode code, struct crisp_error *err)
{
	_cleanup_free_ char *bundle = bundle_path(c->id, NULL);
	_cleanup_close_ int dirfd = -1, fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_s, 0 };
	size_t len = strlen(request);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = { 0 };
	struct iovec iov = { (void *)request, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct monitor_job *j;

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	/* Through /proc/self/fd: a bundle path may be longer than sun_path
	 * (monitor.h). */
	dirfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (dirfd >= 0 && fd >= 0)
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd,
			 MONITOR_SOCKET);
	if (dirfd < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		return err_set_errno(err, code, errno, "reaching the monitor of %s", c->id);
	j = xcalloc(1, sizeof(*j));
	j->fd = TAKE_FD(fd);
	j->hand_over = hand_over;
	j->code = code;
	j->what = request;
	j->fallback = fallback;
	j->timeout_s = timeout_s;
	child_defer(msg, &j->d);
	j->ev = event_new(child_base(), j->fd, EV_READ, monitor_answer, j);
	event_add(j->ev, &tv);
	return 0;
}

int monitor_request(struct ipc_msg *msg, const struct ctr *c, const char *request,
		    unsigned timeout_s, bool hand_over, enum crisp_errcode code,
		    struct crisp_error *err)
{
	return monitor_send(msg, c, request, -1, NULL, timeout_s, hand_over, code, err);
}

/* --- ReopenContainerLog --------------------------------------------------------------- */

/* The container's log opened anew, as the monitor opened it at its start:
 * created if the kubelet moved it away, appended to, never through a
 * symlink at its last component. O_NONBLOCK for the open only: a FIFO
 * found at the path must not hold runtimed's loop (ENXIO instead), nor a
 * device's open wait; and what is no regular file is refused. */
static int log_open(const struct ctr *c, struct crisp_error *err)
{
	const char *path = c->info->log_path;
	_cleanup_close_ int fd = open(
		path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	struct stat st;

	if (fd < 0 && errno == ELOOP)
		return err_set(err, CRISP_E_PRECONDITION,
			       "reopening the log of %s: %s is a symbolic link, not followed",
			       c->id, path);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "reopening the log of %s: open %s", c->id, path);
	if (fstat(fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "reopening the log of %s: fstat %s", c->id, path);
	if (!S_ISREG(st.st_mode))
		return err_set(err, CRISP_E_PRECONDITION,
			       "reopening the log of %s: %s is not a regular file", c->id, path);
	if (fcntl(fd, F_SETFL, O_APPEND) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "reopening the log of %s: fcntl %s", c->id, path);
	return TAKE_FD(fd);
}

/* runtimed opens the new file and hands it to the monitor (reopen-fd):
 * the monitor has no Landlock right on the log's directory. A monitor of
 * an older crisp, still running after an upgrade, knows only "reopen"
 * (it opens the path itself, and has the rule): it answers "error unknown
 * request 'reopen-fd'" and gets that instead, on the same connection. */
void on_log_reopen(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ContainerRequest *r = (const CrispIpc__ContainerRequest *)req;
	const struct rt_handler *h = NULL;
	struct ctr *c = running_ctr(chan, msg, r->container_id, &h);
	struct crisp_error err = { 0 };
	_cleanup_close_ int fd = -1;

	if (!c)
		return;
	if (!*c->info->log_path) {
		/* no log: the monitor writes to /dev/null, nothing to reopen */
		CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

		ipc_reply(chan, msg, &empty.base, NULL, 0);
		return;
	}
	fd = log_open(c, &err);
	if (fd < 0 ||
	    monitor_send(msg, c, "reopen-fd", fd, "reopen", 5, false, CRISP_E_INTERNAL, &err) < 0)
		reply_err(chan, msg, &err);
}
