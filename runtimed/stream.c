/* Exec and attach for the streaming server (frontend/stream.h).
 *
 * Exec runs crisp-exec (runtimed/exec.h) without a tty and `runc exec`
 * with one or for containers of other runtime handlers (exec_direct()),
 * through the launcher, not detached: it waits for the process and exits
 * with its status (128+n when signal n killed it), which is how the exit
 * code of every exec is known. runc refuses --console-socket unless it
 * detaches, and a detached process is nobody's child here, so a tty exec
 * gets a pty of ours as runc's stdio: runc makes it raw and relays it to
 * the container's terminal. The master goes to the frontend with the
 * reply; we keep no copy of any stream, so nothing of the process's output
 * is ever buffered here. Without a tty the frontend gets the pipe ends
 * directly.
 *
 * The frontend sizes the terminal on its master. runc copies the size to
 * the container's terminal on SIGWINCH, which the kernel only sends to a
 * terminal's session, and runc is not in one of the pty's (the launcher
 * does not make it a session leader). So while a tty exec runs we look at
 * the size a few times a second and signal runc when it changed.
 *
 * Exec records are forgotten once the exit was reported by ExecWait, or
 * EXEC_FORGET_S after the exit if nobody asked; at most
 * EXEC_PER_CTR_MAX exist per container, and those running count against
 * the node's execs (execs_admit(), runtimed/ops.c).
 *
 * Attach connects to the container's monitor, asks for "attach" and hands
 * the connection over once the monitor said "ok" (runtimed/monitor.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/launcher.h"
#include "common/log.h"
#include "runtimed/exec.h"
#include "runtimed/monitor.h"
#include "runtimed/runtimed.h"

#define EXEC_PER_CTR_MAX 64
#define EXEC_ARGS_MAX 4096
#define EXEC_ARG_LEN_MAX 65536
#define EXEC_FORGET_S 60
#define EXEC_WINSIZE_POLL_MS 200
#define ATTACH_ANSWER_S 5

struct rt_exec {
	struct rt_exec *next;
	uint64_t exec_id;
	char ctr_id[ID_LEN + 1];
	char *process_path, *pid_path;
	struct launch *l;
	struct child_deferred start; /* the ExecStart reply, sent once it started */
	struct child_deferred wait;
	bool waiting, exited, started;
	bool no_space;    /* the exec program could not start it for want of room */
	int status;       /* the exit code once exited */
	int child_fds[3]; /* crisp-exec's or runc's stdio, closed once it started */
	int our_fds[3];   /* for the reply */
	unsigned nour;
	int slave; /* tty: our look at the terminal size */
	struct winsize ws;
	struct event *timer; /* tty: size poll; after exit: forget */
};

static struct rt_exec *execs;
static uint64_t exec_last_id;
static unsigned exec_file_seq;

static void exec_free(struct rt_exec *e)
{
	struct rt_exec **pp;

	for (pp = &execs; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	if (e->timer)
		event_free(e->timer);
	for (int i = 0; i < 3; i++) {
		safe_close(e->child_fds[i]);
		safe_close(e->our_fds[i]);
	}
	safe_close(e->slave);
	if (e->process_path)
		unlink(e->process_path);
	if (e->pid_path)
		unlink(e->pid_path);
	free(e->process_path);
	free(e->pid_path);
	free(e);
}

static struct rt_exec *exec_find(uint64_t id)
{
	for (struct rt_exec *e = execs; e; e = e->next)
		if (e->exec_id == id)
			return e;
	return NULL;
}

static unsigned exec_count(const char *ctr_id)
{
	unsigned n = 0;

	for (struct rt_exec *e = execs; e; e = e->next)
		n += streq(e->ctr_id, ctr_id);
	return n;
}

/* What holds a launcher slot: listed before launch() and freed when it
 * failed, so every record not exited is running or about to. */
unsigned stream_execs_running(void)
{
	unsigned n = 0;

	for (struct rt_exec *e = execs; e; e = e->next)
		n += !e->exited;
	return n;
}

static void exec_forget(evutil_socket_t fd, short what, void *arg)
{
	struct rt_exec *e = arg;

	log_debug("exec %llu in %.12s: exit %d never asked for, forgotten",
		  (unsigned long long)e->exec_id, e->ctr_id, e->status);
	exec_free(e);
}

static void winsize_poll(evutil_socket_t fd, short what, void *arg)
{
	struct rt_exec *e = arg;
	struct winsize ws;

	if (ioctl(e->slave, TIOCGWINSZ, &ws) == 0 &&
	    (ws.ws_row != e->ws.ws_row || ws.ws_col != e->ws.ws_col)) {
		e->ws = ws;
		launch_kill(e->l, SIGWINCH);
	}
}

static void exec_started(struct launch *l, pid_t pid, const struct crisp_error *err, void *arg)
{
	struct rt_exec *e = arg;
	CrispIpc__ExecStartReply reply = CRISP_IPC__EXEC_START_REPLY__INIT;
	struct timeval tv = { 0, EXEC_WINSIZE_POLL_MS * 1000 };

	for (int i = 0; i < 3; i++)
		e->child_fds[i] = safe_close(e->child_fds[i]);
	if (err) {
		child_reply_error(&e->start, err);
		exec_free(e);
		return;
	}
	e->started = true;
	reply.exec_id = e->exec_id;
	child_reply_fds(&e->start, &reply.base, e->our_fds, e->nour);
	for (unsigned i = 0; i < e->nour; i++)
		e->our_fds[i] = -1; /* taken by the reply */
	if (e->slave >= 0) {
		e->timer = event_new(child_base(), -1, EV_PERSIST, winsize_poll, e);
		evtimer_add(e->timer, &tv);
	}
}

/* The ExecWait answer of an exited exec, which then goes: to the deferred
 * wait (chan NULL) or to msg. */
static void exec_wait_reply(struct rt_exec *e, struct ipc_chan *chan, struct ipc_msg *msg)
{
	CrispIpc__ExecWaitReply reply = CRISP_IPC__EXEC_WAIT_REPLY__INIT;
	struct crisp_error err = { 0 };

	if (e->no_space)
		err_set(&err, CRISP_E_RESOURCE,
			"exec in %.12s: the process could not be started: %s is full: %s",
			e->ctr_id, rt.runc_root, strerror(ENOSPC));
	reply.exit_code = e->status;
	if (!chan && e->no_space)
		child_reply_error(&e->wait, &err);
	else if (!chan)
		child_reply(&e->wait, &reply.base);
	else if (e->no_space)
		ipc_reply_error(chan, msg, &err);
	else
		ipc_reply(chan, msg, &reply.base, NULL, 0);
	exec_free(e);
}

static void exec_exited(struct launch *l, int status, void *arg)
{
	struct rt_exec *e = arg;
	struct timeval tv = { EXEC_FORGET_S, 0 };

	e->l = NULL;
	e->exited = true;
	e->status = status < 0            ? 255
		    : WIFEXITED(status)   ? WEXITSTATUS(status)
		    : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
					  : 255;
	/* crisp-exec's or runc's own failure (its status, no pid file: no
	 * process was started) on a full state_dir: its message went to the
	 * client's stderr, the wait answers the error as ExecSync does,
	 * rather than an exit code 255 of a command that never ran. */
	e->no_space = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == EXEC_EXIT_FAILED &&
		      access(e->pid_path, F_OK) < 0 && errno == ENOENT && runc_root_full();
	e->slave = safe_close(e->slave);
	if (e->timer)
		event_free(e->timer);
	e->timer = NULL;
	if (e->waiting) {
		exec_wait_reply(e, NULL, NULL);
		return;
	}
	e->timer = evtimer_new(child_base(), exec_forget, e);
	evtimer_add(e->timer, &tv);
}

static int exec_validate(const CrispIpc__ExecStartRequest *r, struct ctr **ret_c,
			 const struct rt_handler **ret_h, struct crisp_error *err)
{
	struct ctr *c = id_valid(r->container_id) ? ctr_find(r->container_id) : NULL;
	struct pod *p = c ? pod_find(c->info->sandbox_id) : NULL;

	if (!id_valid(r->container_id))
		return err_set(err, CRISP_E_INVALID, "container id is not 64 lowercase hex digits");
	if (!c)
		return err_set(err, CRISP_E_NOT_FOUND, "container %s not found", r->container_id);
	if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
		return err_set(err, CRISP_E_PRECONDITION, "container %s is not running", c->id);
	if (!p || !(*ret_h = handler_find(p->info->runtime_handler)))
		return err_set(err, CRISP_E_UNAVAILABLE,
			       "container %s: its runtime handler is gone", c->id);
	if (r->n_cmd == 0 || r->n_cmd > EXEC_ARGS_MAX)
		return err_set(err, CRISP_E_INVALID, "exec: 1 to %d arguments needed",
			       EXEC_ARGS_MAX);
	for (size_t i = 0; i < r->n_cmd; i++) {
		json_t *utf8;

		if (strnlen(r->cmd[i], EXEC_ARG_LEN_MAX + 1) > EXEC_ARG_LEN_MAX)
			return err_set(err, CRISP_E_INVALID, "exec: argument %zu too long", i);
		/* The process file is JSON: an argument that is not UTF-8
		 * cannot be written there (and must not silently vanish). */
		if (!(utf8 = json_string(r->cmd[i])))
			return err_set(err, CRISP_E_INVALID,
				       "exec: argument %zu is not valid UTF-8", i);
		json_decref(utf8);
	}
	if (r->tty && r->stderr)
		return err_set(err, CRISP_E_INVALID, "exec: a tty has no separate stderr");
	if (!r->stdin && !r->stdout && !r->stderr)
		return err_set(err, CRISP_E_INVALID, "exec: one of stdin, stdout, stderr needed");
	if (exec_count(c->id) >= EXEC_PER_CTR_MAX)
		return err_set(err, CRISP_E_RESOURCE, "container %s has %d execs already", c->id,
			       EXEC_PER_CTR_MAX);
	if (execs_admit(err) < 0)
		return -1;
	*ret_c = c;
	return 0;
}

/* runc's stdio for a tty: a pty of ours, raw (runc relays bytes, the
 * container's own terminal does the line discipline); the master is the
 * frontend's. */
static int exec_pty(struct rt_exec *e, struct crisp_error *err)
{
	struct termios t;
	int unlock = 0;
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

	if (master < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "/dev/ptmx");
	e->our_fds[e->nour++] = master;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
	    (e->child_fds[0] = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "opening the pty's terminal");
	if (tcgetattr(e->child_fds[0], &t) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "tcgetattr");
	cfmakeraw(&t);
	if (tcsetattr(e->child_fds[0], TCSANOW, &t) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "tcsetattr");
	e->slave = fcntl(e->child_fds[0], F_DUPFD_CLOEXEC, 3);
	if (e->slave < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "dup");
	e->child_fds[1] = fcntl(e->child_fds[0], F_DUPFD_CLOEXEC, 3);
	e->child_fds[2] = fcntl(e->child_fds[0], F_DUPFD_CLOEXEC, 3);
	if (e->child_fds[1] < 0 || e->child_fds[2] < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "dup");
	return 0;
}

/* Pipes: our ends non-blocking for the frontend's loop, runc's blocking. */
static int exec_pipes(struct rt_exec *e, const CrispIpc__ExecStartRequest *r,
		      struct crisp_error *err)
{
	const bool want[3] = { r->stdin, r->stdout, r->stderr };

	for (int i = 0; i < 3; i++) {
		int p[2];

		if (!want[i])
			continue;
		if (pipe2(p, O_CLOEXEC) < 0)
			return err_set_errno(err, CRISP_E_RESOURCE, errno, "pipe");
		e->child_fds[i] = i == 0 ? p[0] : p[1];
		e->our_fds[e->nour++] = i == 0 ? p[1] : p[0];
		if (fcntl(e->our_fds[e->nour - 1], F_SETFL, O_NONBLOCK) < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "fcntl");
	}
	return 0;
}

void on_exec_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ExecStartRequest *r = (const CrispIpc__ExecStartRequest *)req;
	CrispIpc__ExecSyncRequest sync = CRISP_IPC__EXEC_SYNC_REQUEST__INIT;
	const struct rt_handler *h = NULL;
	struct crisp_error err = { 0 };
	struct ctr *c = NULL;
	struct rt_exec *e;
	char name[64];
	struct exec_cmd cmd;
	struct launch_req lr = { .envp = (char *const *)launch_env };
	struct launch_cb cb = { .started = exec_started, .exited = exec_exited };

	if (exec_validate(r, &c, &h, &err) < 0) {
		ipc_reply_error(chan, msg, &err);
		return;
	}
	e = xcalloc(1, sizeof(*e));
	for (int i = 0; i < 3; i++)
		e->child_fds[i] = e->our_fds[i] = -1;
	e->slave = -1;
	e->exec_id = ++exec_last_id;
	memcpy(e->ctr_id, c->id, ID_LEN + 1);
	snprintf(name, sizeof(name), "stream-%u.json", ++exec_file_seq);
	e->process_path = bundle_path(c->id, name);
	snprintf(name, sizeof(name), "stream-%u.pid", exec_file_seq);
	e->pid_path = bundle_path(c->id, name);
	e->next = execs;
	execs = e;
	child_defer(msg, &e->start);
	sync.container_id = r->container_id;
	sync.cmd = r->cmd;
	sync.n_cmd = r->n_cmd;
	if (exec_process(c->id, &sync, r->tty, e->process_path, &err) < 0)
		goto fail;
	if ((r->tty ? exec_pty(e, &err) : exec_pipes(e, r, &err)) < 0)
		goto fail;
	exec_cmd(c, h, r->tty, e->process_path, e->pid_path, &cmd);
	lr.program = cmd.program;
	lr.argv = (char *const *)cmd.argv;
	for (int i = 0; i < 3; i++)
		lr.fds[i] = e->child_fds[i];
	cb.arg = e;
	e->l = launch(&lr, &cb, &err);
	if (!e->l)
		goto fail;
	return;
fail:
	child_reply_error(&e->start, &err);
	exec_free(e);
}

void on_exec_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__ExecWaitRequest *r = (const CrispIpc__ExecWaitRequest *)req;
	struct crisp_error err = { 0 };
	struct rt_exec *e = exec_find(r->exec_id);

	if (!e || !e->started) {
		err_set(&err, CRISP_E_NOT_FOUND, "exec %llu not found",
			(unsigned long long)r->exec_id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	if (e->waiting) {
		err_set(&err, CRISP_E_PRECONDITION, "exec %llu is waited for already",
			(unsigned long long)r->exec_id);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	if (e->exited) {
		exec_wait_reply(e, chan, msg);
		return;
	}
	e->waiting = true;
	child_defer(msg, &e->wait);
}

/* --- attach ------------------------------------------------------------------- */

void on_attach(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__AttachRequest *r = (const CrispIpc__AttachRequest *)req;
	struct ctr *c = id_valid(r->container_id) ? ctr_find(r->container_id) : NULL;
	struct crisp_error err = { 0 };

	if (!id_valid(r->container_id))
		err_set(&err, CRISP_E_INVALID, "container id is not 64 lowercase hex digits");
	else if (!c)
		err_set(&err, CRISP_E_NOT_FOUND, "container %s not found", r->container_id);
	else if (c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
		err_set(&err, CRISP_E_PRECONDITION, "container %s is not running", c->id);
	else
		monitor_request(msg, c, "attach", ATTACH_ANSWER_S, true, CRISP_E_UNAVAILABLE, &err);
	if (err.code != CRISP_E_OK)
		ipc_reply_error(chan, msg, &err);
}
