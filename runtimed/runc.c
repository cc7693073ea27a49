/* The OCI runtime and the per-container monitors, run by the launcher
 * (common/launcher.h): runtimed itself never executes anything, since its
 * seccomp filter, no_new_privs and bounding set would be inherited by runc
 * and the containers. Output comes back on pipes read on the loop, each
 * bounded. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/launcher.h"
#include "common/log.h"
#include "runtimed/monitor.h"
#include "runtimed/runtimed.h"

#define RUNC_ERR_MAX 2048
#define FEATURES_MAX (64u << 10) /* `runc features`: ~5 kB for runc 1.1 */
#define SYNC_MAX 4096
#define MONITOR_SYNC_TIMEOUT_S 120

/* Wall time of each runtime invocation, logged at debug so that a pod's
 * start can be compared with the runc work it waits for (bench/). */
static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --- runc ------------------------------------------------------------------ */

struct runc_job {
	struct launch *l;
	int wfd;
	int rfd;
	struct event *ev;
	char *buf; /* max + 1 bytes */
	size_t len, max;
	runc_done_fn done;
	void *arg;
	char what[128]; /* "runc kill <id>", for the timing log */
	double t0;
	struct event *timer; /* runtime_timeout: then it is killed */
	bool timed_out;
};

static void runc_drain(struct runc_job *j)
{
	char tmp[4096];
	ssize_t n;

	while ((n = read(j->rfd, tmp, sizeof(tmp))) > 0) {
		size_t keep = j->max - j->len;
		if ((size_t)n < keep)
			keep = (size_t)n;
		memcpy(j->buf + j->len, tmp, keep);
		j->len += keep;
	}
	if (n == 0 && j->ev)
		event_del(j->ev);
}

static void runc_readable(evutil_socket_t fd, short what, void *arg)
{
	runc_drain(arg);
}

static void runc_finish(struct runc_job *j, int status)
{
	runc_drain(j);
	j->buf[j->len] = '\0';
	if (j->timed_out)
		snprintf(j->buf, j->max + 1, "%s did not finish in %u s and was killed", j->what,
			 child_config()->runtime_timeout);
	/* runc's messages end with a newline, and logs want one line. */
	for (char *p = j->buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_debug("%s: %.1f ms", j->what, mono_ms() - j->t0);
	if (j->done)
		j->done(status, j->buf, j->arg);
	if (j->ev)
		event_free(j->ev);
	if (j->timer)
		event_free(j->timer);
	safe_close(j->rfd);
	safe_close(j->wfd);
	free(j->buf);
	free(j);
}

static void runc_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct runc_job *j = arg;

	j->wfd = safe_close(j->wfd);
	if (err) {
		snprintf(j->buf, j->max + 1, "%s", err->msg);
		j->len = strlen(j->buf);
		runc_finish(j, -1);
	}
}

static void runc_exited(struct launch *l, int status, void *arg)
{
	runc_finish(arg, status);
}

/* A runtime that hangs (a stuck cgroup freeze, a kernel wait, a bug) must
 * not hold the CRI call, and what it holds, for ever: it is killed, and the
 * call fails with what it was doing. Its exit then finishes the job. */
static void runc_timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct runc_job *j = arg;

	j->timed_out = true;
	log_warn("%s did not finish in %u s: killing it", j->what, child_config()->runtime_timeout);
	launch_kill(j->l, SIGKILL);
}

/* out_too: stdout goes into the buffer as well, which holds max bytes. */
static int runc_launch(const struct rt_handler *h, const char *const *args, bool out_too,
		       size_t max, runc_done_fn done, void *arg, struct crisp_error *err)
{
	const char *argv[LAUNCH_ARGS_MAX + 1];
	size_t n = 0;
	struct runc_job *j;
	int p[2];
	static const struct launch_cb cb = { .started = runc_started, .exited = runc_exited };
	struct launch_cb mycb = cb;
	struct launch_req req = { .program = h->name, .envp = (char *const *)launch_env };

	argv[n++] = h->name;
	argv[n++] = "--root";
	argv[n++] = rt.runc_root;
	for (size_t i = 0; args[i]; i++) {
		if (n >= LAUNCH_ARGS_MAX)
			return err_set(err, CRISP_E_INVALID, "too many arguments for %s", h->name);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "pipe");
	j = xcalloc(1, sizeof(*j));
	j->buf = xmalloc(max + 1);
	j->max = max;
	j->rfd = p[0];
	j->wfd = p[1];
	j->done = done;
	j->arg = arg;
	/* the subcommand and the container id (the last argument, but for
	 * kill's <id> <signal>; none for features) */
	snprintf(j->what, sizeof(j->what), "%s %s%s%s", h->name, args[0], args[1] ? " " : "",
		 !args[1]                 ? ""
		 : streq(args[0], "kill") ? args[1]
					  : argv[n - 1]);
	j->t0 = mono_ms();
	j->ev = event_new(child_base(), j->rfd, EV_READ | EV_PERSIST, runc_readable, j);
	event_add(j->ev, NULL);
	j->timer = evtimer_new(child_base(), runc_timed_out, j);
	req.argv = (char *const *)argv;
	req.fds[0] = -1;
	req.fds[1] = out_too ? j->wfd : -1;
	req.fds[2] = j->wfd;
	mycb.arg = j;
	j->l = launch(&req, &mycb, err);
	if (j->l) {
		struct timeval tv = { .tv_sec = child_config()->runtime_timeout };
		evtimer_add(j->timer, &tv);
	} else {
		event_free(j->timer);
		event_free(j->ev);
		safe_close(j->rfd);
		safe_close(j->wfd);
		free(j->buf);
		free(j);
		return err_prefix(err, "running %s %s", h->name, args[0]);
	}
	return 0;
}

int runc_run(const struct rt_handler *h, const char *const *args, runc_done_fn done, void *arg,
	     struct crisp_error *err)
{
	return runc_launch(h, args, false, RUNC_ERR_MAX, done, arg, err);
}

/* `<handler> features` (runc 1.1 and later): whether its mount options
 * include "rro", recursive read-only mounts, which the kernel has from 5.12
 * on. The CRI's Status reports it per handler, and the kubelet asks for
 * such mounts only where it is reported. An older runtime without the
 * subcommand, or output that is not its JSON, means no. */
static void features_done(int status, const char *out, void *arg)
{
	struct rt_handler *h = arg;
	json_t *o = status == 0 ? json_loads(out, 0, NULL) : NULL;
	json_t *opts = json_object_get(o, "mountOptions"), *v;
	size_t i;

	h->rro_mounts = false;
	json_array_foreach(opts, i, v) if (json_is_string(v) && streq(json_string_value(v), "rro"))
		h->rro_mounts = rt.host.rro_mounts;
	json_decref(o);
	log_info("runtime handler '%s': recursive read-only mounts %s", h->name,
		 h->rro_mounts         ? "yes"
		 : !rt.host.rro_mounts ? "no (the kernel is older than 5.12)"
				       : "no (its runtime's features do not list \"rro\")");
}

void runc_probe_features(struct rt_handler *h)
{
	static const char *const args[] = { "features", NULL };
	struct crisp_error err = { 0 };

	if (runc_launch(h, args, true, FEATURES_MAX, features_done, h, &err) < 0)
		log_warn("runtime handler '%s': %s", h->name, err.msg);
}

/* --- monitors -------------------------------------------------------------- */

struct mon_job {
	int rfd, wfd;
	struct event *ev, *timer;
	pid_t monitor_pid;
	char buf[SYNC_MAX + 1];
	size_t len;
	bool started, finished;
	monitor_done_fn done;
	pause_done_fn pause_done; /* instead of done: a crisp-pause setup */
	void *arg;
	char id[ID_LEN + 1];
	double t0;
};

static void mon_free(struct mon_job *j)
{
	if (j->ev)
		event_free(j->ev);
	if (j->timer)
		event_free(j->timer);
	safe_close(j->rfd);
	safe_close(j->wfd);
	free(j);
}

/* The monitor's {"pid": N, "run_ms": T[, "landlock": false]} or
 * crisp-pause's {"pid": N, "start": S}: log the time (and warn of a kernel
 * without Landlock), take the start time. */
static void sync_extra(struct mon_job *j, json_t *o, uint64_t *ret_start, struct crisp_error *err)
{
	json_t *v;

	if (!j->pause_done) {
		static bool warned;

		v = json_object_get(o, "run_ms");
		if (json_is_number(v))
			log_debug("runc run %s: %.1f ms (in its monitor, %.1f ms with it)", j->id,
				  json_number_value(v), mono_ms() - j->t0);
		/* the same kernel for every monitor: once is enough */
		if (json_is_false(json_object_get(o, "landlock")) && !warned) {
			warned = true;
			log_warn("crisp-monitor: the kernel has no Landlock (not built in, or "
				 "disabled at boot): monitors run with their seccomp filter only, "
				 "able to write any file uid 0 may write");
		}
		return;
	}
	log_debug("crisp-pause %s: %.1f ms", j->id, mono_ms() - j->t0);
	v = json_object_get(o, "start");
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		err_set(err, CRISP_E_INTERNAL, "pause of %.12s: sync line without a start time",
			j->id);
	else
		*ret_start = (uint64_t)json_integer_value(v);
}

/* The code of a failure the monitor or runc reports as text only: a full
 * disk or quota (strerror's, or Go's "no space left on device" from runc)
 * is a limit of the host, CRISP_E_RESOURCE, not a bug. */
static enum crisp_errcode space_error(const char *msg)
{
	return strcasestr(msg, strerror(ENOSPC)) || strcasestr(msg, strerror(EDQUOT))
		       ? CRISP_E_RESOURCE
		       : CRISP_E_INTERNAL;
}

/* runc 1.1 loses the cause when it cannot write its state.json under its
 * root, on state_dir's tmpfs ("unable to store init state: %!w(<nil>)",
 * opencontainers/runc#3659, fixed in 1.2 only): a start that failed while
 * that filesystem has next to no room or inodes left failed for want of
 * them. Next to none, as runc's clean-up gave back what it had taken by
 * then: 64 KiB is more than a state.json takes (a few KiB), 16 inodes more
 * than runc makes there (its directory, exec.fifo, state.json and its
 * temporary file); both far less than a filesystem in use keeps free. */
bool runc_root_full(void)
{
	struct statvfs sv;

	if (statvfs(rt.runc_root, &sv) < 0)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < (64u << 10) ||
	       (sv.f_files > 0 && sv.f_favail < 16);
}

/* Parse the sync line: {"pid": N, ...} or {"error": "..."}. */
static void mon_finish(struct mon_job *j, const char *why)
{
	struct crisp_error err = { 0 };
	json_error_t jerr;
	json_t *o = NULL, *v;
	pid_t pid = 0;
	uint64_t start = 0;

	if (j->finished)
		return;
	j->finished = true;
	if (why) {
		err_set(&err, CRISP_E_INTERNAL, "monitor of %.12s: %s", j->id, why);
	} else {
		j->buf[j->len] = '\0';
		o = json_loads(j->buf, JSON_REJECT_DUPLICATES, &jerr);
		if (!o || !json_is_object(o)) {
			err_set(&err, CRISP_E_INTERNAL,
				"monitor of %.12s: no valid sync line (got '%.200s')", j->id,
				j->buf);
		} else if ((v = json_object_get(o, "error")) && json_is_string(v)) {
			const char *msg = json_string_value(v);

			if (space_error(msg) == CRISP_E_INTERNAL && runc_root_full())
				err_set(&err, CRISP_E_RESOURCE, "%s (%s is full: %s)", msg,
					rt.runc_root, strerror(ENOSPC));
			else
				err_set(&err, space_error(msg), "%s", msg);
		} else if ((v = json_object_get(o, "pid")) && json_is_integer(v) &&
			   json_integer_value(v) > 1 && json_integer_value(v) < (1 << 22)) {
			pid = (pid_t)json_integer_value(v);
			sync_extra(j, o, &start, &err);
			if (err.code != CRISP_E_OK)
				pid = 0;
		} else {
			err_set(&err, CRISP_E_INTERNAL, "monitor of %.12s: bad sync line '%.200s'",
				j->id, j->buf);
		}
		json_decref(o);
	}
	if (j->pause_done)
		j->pause_done(pid, start, pid ? NULL : &err, j->arg);
	else
		j->done(pid, pid ? NULL : &err, j->arg);
	/* A monitor that did not report is of no use: it must not linger. */
	if (!pid && why && j->monitor_pid > 0)
		kill(j->monitor_pid, SIGKILL);
	if (j->started)
		mon_free(j);
}

static void mon_readable(evutil_socket_t fd, short what, void *arg)
{
	struct mon_job *j = arg;
	ssize_t n;

	for (;;) {
		n = read(j->rfd, j->buf + j->len, SYNC_MAX - j->len);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || memchr(j->buf + j->len, '\n', (size_t)n) ||
		    j->len + (size_t)n >= SYNC_MAX) {
			if (n > 0)
				j->len += (size_t)n;
			event_del(j->ev);
			event_del(j->timer);
			mon_finish(j, n < 0 ? "reading its sync pipe failed" : NULL);
			return;
		}
		j->len += (size_t)n;
	}
}

static void mon_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mon_job *j = arg;

	event_del(j->ev);
	mon_finish(j, "no sync line within "
		      "120 s");
}

static void mon_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct mon_job *j = arg;

	j->started = true;
	j->wfd = safe_close(j->wfd);
	if (err) {
		event_del(j->ev);
		event_del(j->timer);
		if (!j->finished) {
			j->finished = true;
			struct crisp_error e = *err;
			err_prefix(&e, "starting the %s of %.12s",
				   j->pause_done ? "pause" : "monitor", j->id);
			if (j->pause_done)
				j->pause_done(0, 0, &e, j->arg);
			else
				j->done(0, &e, j->arg);
		}
		mon_free(j);
		return;
	}
	j->monitor_pid = pid;
	if (j->finished)
		mon_free(j);
}

/* A detached program whose stdout is a pipe that carries one sync line. */
static int sync_launch(const char *program, const char *id, const char *const *argv,
		       monitor_done_fn done, pause_done_fn pause_done, void *arg,
		       struct crisp_error *err)
{
	struct mon_job *j;
	int p[2];
	struct launch_cb cb = { .started = mon_started };
	struct launch_req req = { .program = program,
				  .envp = (char *const *)launch_env,
				  .flags = LAUNCH_DETACH };
	struct timeval tv = { MONITOR_SYNC_TIMEOUT_S, 0 };

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "pipe");
	j = xcalloc(1, sizeof(*j));
	j->rfd = p[0];
	j->wfd = p[1];
	j->done = done;
	j->pause_done = pause_done;
	j->arg = arg;
	j->t0 = mono_ms();
	memcpy(j->id, id, ID_LEN + 1);
	j->ev = event_new(child_base(), j->rfd, EV_READ | EV_PERSIST, mon_readable, j);
	j->timer = evtimer_new(child_base(), mon_timeout, j);
	event_add(j->ev, NULL);
	evtimer_add(j->timer, &tv);
	req.argv = (char *const *)argv;
	req.fds[0] = -1;
	req.fds[1] = j->wfd;
	req.fds[2] = -1;
	cb.arg = j;
	if (!launch(&req, &cb, err)) {
		mon_free(j);
		return err_prefix(err, "starting the %s of %.12s", program, id);
	}
	return 0;
}

int monitor_launch(const struct rt_handler *h, const char *id, const char *log_path, bool stdin_,
		   bool stdin_once, bool tty, monitor_done_fn done, void *arg,
		   struct crisp_error *err)
{
	_cleanup_free_ char *bundle = bundle_path(id, NULL);
	_cleanup_free_ char *exitf = exit_file_path(id);
	char logmax[32];
	const char *argv[32];
	size_t n = 0;

	/* the monitor's Landlock rule for its exit file covers this directory
	 * alone (monitor_sandbox.c): it is made, and watched, first */
	if (exit_dir_make(id, err) < 0)
		return err_prefix(err, "the exit directory of %.12s", id);
	snprintf(logmax, sizeof(logmax), "%u", rt.cfg->log_line_max);
	argv[n++] = "monitor";
	argv[n++] = "--id";
	argv[n++] = id;
	argv[n++] = "--bundle";
	argv[n++] = bundle;
	argv[n++] = "--runtime";
	argv[n++] = h->path;
	argv[n++] = "--runtime-root";
	argv[n++] = rt.runc_root;
	argv[n++] = "--log";
	argv[n++] = log_path;
	argv[n++] = "--exit-file";
	argv[n++] = exitf;
	argv[n++] = "--log-max";
	argv[n++] = logmax;
	if (stdin_)
		argv[n++] = "--stdin";
	if (stdin_once)
		argv[n++] = "--stdin-once";
	if (tty)
		argv[n++] = "--tty";
	argv[n] = NULL;
	return sync_launch("monitor", id, argv, done, NULL, arg, err);
}

int pause_launch(const char *id, const char *const *argv, pause_done_fn done, void *arg,
		 struct crisp_error *err)
{
	return sync_launch("pause", id, argv, NULL, done, arg, err);
}
