/* Running CNI plugins (spec 1.1.0, "Execution protocol"). netd cannot exec
 * (its seccomp filter and no_new_privs would be inherited), so each plugin
 * runs through the launcher (common/launcher.h), crisp-launch, which checks
 * every request with cni_launch_check() (launch/check_netd.c). A call feeds
 * the plugin its network config on stdin through a pipe written from the
 * loop, reads stdout (the result or the error JSON, at most 1 MiB) and
 * stderr (for messages), and kills the plugin after the configured timeout.
 * A list runs in order for ADD and CHECK, each plugin given the previous
 * result, and in reverse for DEL, each given the stored ADD result. */
#include "autoconfig.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/id.h"
#include "common/launcher.h"
#include "common/log.h"
#include "netd/netd.h"

#define STDERR_KEEP 2048

static struct {
	struct event_base *base;
} cni;

void cni_setup(struct event_base *base)
{
	cni.base = base;
}

bool sandbox_id_valid(const char *id)
{
	return id_hex_valid(id);
}

/* ---- one plugin call ---------------------------------------------------- */

struct plugin_call {
	struct cni_run *run;
	struct launch *launch;
	char type[64];
	struct event *in_ev, *out_ev, *err_ev, *timer;
	int in_fd, out_fd, err_fd;
	char *in;
	size_t in_len, in_off;
	char *out;
	size_t out_len;
	bool out_overflow;
	char err[STDERR_KEEP + 1];
	size_t err_len;
	bool timed_out;
	unsigned timeout_s;
};

struct cni_run {
	struct cni_run_params p;
	char **envp;
	size_t n_plugins;
	size_t step;      /* plugins done */
	json_t *prev;     /* ADD: the result so far */
	json_t *del_prev; /* DEL, CHECK: the stored result, converted */
	struct plugin_call *call;
	struct crisp_error first_err;
	bool failed;
	cni_done_fn done;
	void *arg;
};

static void run_next(struct cni_run *run);

static void call_free(struct plugin_call *c)
{
	if (!c)
		return;
	if (c->in_ev)
		event_free(c->in_ev);
	if (c->out_ev)
		event_free(c->out_ev);
	if (c->err_ev)
		event_free(c->err_ev);
	if (c->timer)
		event_free(c->timer);
	safe_close(c->in_fd);
	safe_close(c->out_fd);
	safe_close(c->err_fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void close_stdin(struct plugin_call *c)
{
	if (c->in_ev)
		event_free(c->in_ev);
	c->in_ev = NULL;
	safe_close(c->in_fd);
	c->in_fd = -1;
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct plugin_call *c = arg;

	while (c->in_off < c->in_len) {
		ssize_t n = write(fd, c->in + c->in_off, c->in_len - c->in_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) /* the plugin closed its stdin: its output says the rest */
			break;
		c->in_off += (size_t)n;
	}
	close_stdin(c);
}

static void drain(struct plugin_call *c, bool is_out)
{
	int fd = is_out ? c->out_fd : c->err_fd;
	char buf[16384];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				/* EOF: stop watching; the fd closes with the call */
				struct event **ev = is_out ? &c->out_ev : &c->err_ev;

				if (*ev)
					event_del(*ev);
			}
			return;
		}
		if (is_out) {
			if (c->out_len + (size_t)n > CNI_OUTPUT_MAX) {
				c->out_overflow = true;
				launch_kill(c->launch, SIGKILL);
				continue;
			}
			c->out = xrealloc(c->out, c->out_len + (size_t)n + 1);
			memcpy(c->out + c->out_len, buf, (size_t)n);
			c->out_len += (size_t)n;
			c->out[c->out_len] = '\0';
		} else {
			size_t room = STDERR_KEEP - c->err_len;
			size_t keep = (size_t)n < room ? (size_t)n : room;

			memcpy(c->err + c->err_len, buf, keep);
			c->err_len += keep;
			c->err[c->err_len] = '\0';
		}
	}
}

static void on_out(evutil_socket_t fd, short what, void *arg)
{
	drain(arg, true);
}

static void on_err(evutil_socket_t fd, short what, void *arg)
{
	drain(arg, false);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct plugin_call *c = arg;

	c->timed_out = true;
	launch_kill(c->launch, SIGKILL);
}

static const char *op_name(enum cni_op op)
{
	return op == CNI_OP_ADD ? "ADD" : op == CNI_OP_DEL ? "DEL" : "CHECK";
}

/* Why a plugin failed, from its error JSON {code, msg, details} on stdout
 * (libcni), else its stderr, else its exit status. */
static void plugin_error(struct plugin_call *c, int status, struct crisp_error *err)
{
	const char *op = op_name(c->run->p.op);
	json_t *j = c->out_len ? json_loadb(c->out, c->out_len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "msg"));
	const char *details = json_string_value(json_object_get(j, "details"));
	char *nl;

	if (c->timed_out)
		err_set(err, CRISP_E_TIMEOUT, "CNI plugin %s (%s) timed out after %u s", c->type,
			op, c->timeout_s);
	else if (c->out_overflow)
		err_set(err, CRISP_E_INTERNAL, "CNI plugin %s (%s) wrote more than %u bytes",
			c->type, op, CNI_OUTPUT_MAX);
	else if (msg)
		err_set(err, CRISP_E_INTERNAL,
			"CNI plugin %s (%s) failed (code %lld): %.200s%s%.200s", c->type, op,
			(long long)json_integer_value(json_object_get(j, "code")), msg,
			details && *details ? ": " : "", details ? details : "");
	else if (c->err_len) {
		while ((nl = strchr(c->err, '\n')) && nl[1])
			*nl = ' ';
		if ((nl = strchr(c->err, '\n')))
			*nl = '\0';
		err_set(err, CRISP_E_INTERNAL, "CNI plugin %s (%s) failed: %.300s", c->type, op,
			c->err);
	} else if (WIFSIGNALED(status))
		err_set(err, CRISP_E_INTERNAL, "CNI plugin %s (%s) killed by signal %d", c->type,
			op, WTERMSIG(status));
	else
		err_set(err, CRISP_E_INTERNAL, "CNI plugin %s (%s) exited with status %d", c->type,
			op, status < 0 ? -1 : WEXITSTATUS(status));
	json_decref(j);
}

/* The call ended (or never started: status -1 and why in start_err). */
static void call_finish(struct plugin_call *c, int status, const struct crisp_error *start_err)
{
	struct cni_run *run = c->run;
	struct crisp_error err;
	bool ok = !start_err && status == 0 && !c->timed_out && !c->out_overflow;

	if (!start_err) {
		drain(c, true);
		drain(c, false);
	}
	if (start_err) {
		err = *start_err;
		err_prefix(&err, "CNI plugin %s (%s)", c->type, op_name(run->p.op));
	} else if (!ok) {
		plugin_error(c, status, &err);
	} else if (run->p.op == CNI_OP_ADD) {
		json_error_t jerr;
		json_t *res = json_loadb(c->out ? c->out : "", c->out_len, 0, &jerr);

		if (!json_is_object(res)) {
			ok = false;
			err_set(&err, CRISP_E_INTERNAL, "CNI plugin %s (ADD): invalid result: %s",
				c->type, jerr.text);
			json_decref(res);
		} else {
			json_decref(run->prev);
			run->prev = res;
		}
	}
	run->call = NULL;
	call_free(c);
	if (!ok) {
		log_warn("%s", err.msg);
		if (!run->failed)
			run->first_err = err;
		run->failed = true;
	}
	run_next(run);
}

static void on_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct plugin_call *c = arg;

	if (err)
		call_finish(c, -1, err);
	else
		log_debug("CNI %s %s for %.12s: pid %d", op_name(c->run->p.op), c->type,
			  c->run->p.sandbox_id, (int)pid);
}

static void on_exited(struct launch *l, int status, void *arg)
{
	call_finish(arg, status, NULL);
}

static int make_pipe(int fds[2], struct crisp_error *err)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "pipe");
	return 0;
}

/* Start plugin `index` of the list with conf on its stdin. */
static int call_start(struct cni_run *run, size_t index, json_t *conf, struct crisp_error *err)
{
	struct plugin_call *c = xcalloc(1, sizeof(*c));
	const char *type = json_string_value(json_object_get(conf, "type"));
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char *argv[2] = { NULL, NULL };
	struct launch_req req = { 0 };
	struct launch_cb cb = { .started = on_started, .exited = on_exited, .arg = c };
	struct timeval tv = { .tv_sec = run->p.timeout_s };

	c->run = run;
	c->in_fd = c->out_fd = c->err_fd = -1;
	c->timeout_s = run->p.timeout_s;
	snprintf(c->type, sizeof(c->type), "%s", type ? type : "");
	c->in = json_dumps(conf, JSON_COMPACT);
	c->in_len = c->in ? strlen(c->in) : 0;
	if (!type || !*type || strchr(type, '/') || !c->in) {
		call_free(c);
		return err_set(err, CRISP_E_INVALID, "plugin %zu of the list has no valid type",
			       index);
	}
	if (make_pipe(in, err) < 0 || make_pipe(out, err) < 0 || make_pipe(errp, err) < 0)
		goto fail;
	argv[0] = c->type;
	req.program = "cni";
	req.file = c->type;
	req.argv = argv;
	req.envp = run->envp;
	req.fds[0] = in[0];
	req.fds[1] = out[1];
	req.fds[2] = errp[1];
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = errp[0];
	in[1] = out[0] = errp[0] = -1;
	fd_set_nonblock(c->in_fd, true);
	fd_set_nonblock(c->out_fd, true);
	fd_set_nonblock(c->err_fd, true);
	run->call = c;
	c->launch = launch(&req, &cb, err);
	safe_close(in[0]);
	safe_close(out[1]);
	safe_close(errp[1]);
	in[0] = out[1] = errp[1] = -1;
	if (!c->launch) {
		run->call = NULL;
		goto fail;
	}
	c->in_ev = event_new(cni.base, c->in_fd, EV_WRITE | EV_PERSIST, on_stdin, c);
	c->out_ev = event_new(cni.base, c->out_fd, EV_READ | EV_PERSIST, on_out, c);
	c->err_ev = event_new(cni.base, c->err_fd, EV_READ | EV_PERSIST, on_err, c);
	c->timer = evtimer_new(cni.base, on_timeout, c);
	event_add(c->in_ev, NULL);
	event_add(c->out_ev, NULL);
	event_add(c->err_ev, NULL);
	event_add(c->timer, &tv);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		safe_close(in[i]);
		safe_close(out[i]);
		safe_close(errp[i]);
	}
	call_free(c);
	return -1;
}

/* ---- a list ------------------------------------------------------------- */

static void run_free(struct cni_run *run)
{
	for (size_t i = 0; run->envp && run->envp[i]; i++)
		free(run->envp[i]);
	free(run->envp);
	json_decref(run->p.list);
	json_decref(run->p.caps);
	json_decref(run->p.prev_result);
	json_decref(run->prev);
	json_decref(run->del_prev);
	free((char *)run->p.sandbox_id);
	free((char *)run->p.netns);
	free((char *)run->p.cni_args);
	free((char *)run->p.bin_dirs);
	free(run);
}

static void run_finish(struct cni_run *run)
{
	json_t *result = NULL;

	if (!run->failed && run->p.op == CNI_OP_ADD)
		result = run->prev;
	run->done(result, run->failed ? &run->first_err : NULL, run->arg);
	run_free(run);
}

static void run_next(struct cni_run *run)
{
	struct crisp_error err;
	json_t *conf;
	size_t index;

	for (;;) {
		/* ADD and CHECK stop at the first failure; DEL goes on, so that
		 * one broken plugin does not keep the others' resources. */
		if (run->step == run->n_plugins || (run->failed && run->p.op != CNI_OP_DEL)) {
			run_finish(run);
			return;
		}
		index = run->p.op == CNI_OP_DEL ? run->n_plugins - 1 - run->step : run->step;
		run->step++;
		conf = cni_plugin_conf(run->p.list, index,
				       run->p.op == CNI_OP_ADD ? run->prev : run->del_prev,
				       run->p.caps);
		if (call_start(run, index, conf, &err) == 0) {
			json_decref(conf);
			return;
		}
		json_decref(conf);
		log_warn("%s", err.msg);
		if (!run->failed)
			run->first_err = err;
		run->failed = true;
	}
}

static char **build_env(const struct cni_run_params *p)
{
	char **envp = xcalloc(8, sizeof(char *));

	envp[0] = xasprintf("CNI_COMMAND=%s", op_name(p->op));
	envp[1] = xasprintf("CNI_CONTAINERID=%s", p->sandbox_id);
	envp[2] = xasprintf("CNI_NETNS=%s", p->netns);
	envp[3] = xstrdup("CNI_IFNAME=" CNI_IFNAME);
	envp[4] = xasprintf("CNI_PATH=%s", p->bin_dirs);
	envp[5] = xasprintf("CNI_ARGS=%s", p->cni_args);
	envp[6] = xstrdup(CNI_PATH_ENV);
	return envp;
}

int cni_run(const struct cni_run_params *p, cni_done_fn done, void *arg, struct crisp_error *err)
{
	const char *version = json_string_value(json_object_get(p->list, "cniVersion"));
	struct cni_run *run;

	if (!version || !json_is_array(json_object_get(p->list, "plugins")))
		return err_set(err, CRISP_E_INTERNAL, "the network list has no version or plugins");
	/* CHECK and prevResult on DEL exist from 0.4.0 on */
	if (p->op == CNI_OP_CHECK &&
	    (!strncmp(version, "0.3", 3) ||
	     json_is_true(json_object_get(p->list, "disableCheck")) ||
	     streq(json_string_value(json_object_get(p->list, "disableCheck")), "true"))) {
		done(NULL, NULL, arg);
		return 0;
	}
	run = xcalloc(1, sizeof(*run));
	run->p = *p;
	run->p.list = json_incref(p->list);
	run->p.caps = json_incref(p->caps);
	run->p.prev_result = json_incref(p->prev_result);
	run->p.sandbox_id = xstrdup(p->sandbox_id);
	run->p.netns = xstrdup(p->netns ? p->netns : "");
	run->p.cni_args = xstrdup(p->cni_args);
	run->p.bin_dirs = xstrdup(p->bin_dirs);
	run->n_plugins = json_array_size(json_object_get(p->list, "plugins"));
	run->envp = build_env(&run->p);
	run->done = done;
	run->arg = arg;
	if (p->prev_result && p->op != CNI_OP_ADD && strncmp(version, "0.3", 3)) {
		run->del_prev = cni_result_convert(p->prev_result, version, err);
		if (!run->del_prev) {
			/* DEL without prevResult still frees what the plugins
			 * find by container id, as libcni does without a cache */
			log_warn("%s; running %s without prevResult", err->msg, op_name(p->op));
		}
	}
	run_next(run);
	return 0;
}
