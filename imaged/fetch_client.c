/* imaged's side of crisp-fetch: the imaged/registry.h API, answered by
 * asking crisp-fetch, the unprivileged child that runs the real registry
 * client (fetch/). imaged keeps its capabilities for writing image content
 * and never parses HTTP or TLS itself.
 *
 * crisp-fetch is started at the first request (fork, close every fd but its
 * channel and stderr, parent-death signal, capabilities dropped, execveat of
 * the binary opened at start) and closed after FETCH_IDLE_MS without
 * requests. It is the exposed process, so nothing it says is trusted:
 *  - every message is checked by ipc/ (framing, types, sizes); one that
 *    breaks the protocol, a manifest over REGISTRY_MANIFEST_MAX or whose
 *    digest does not match the digest asked for, or a blob longer (or, by
 *    its reply, shorter) than announced gets it killed (SIGKILL), and its
 *    other requests fail;
 *  - manifest digests are computed here from the bytes; blob bytes go to the
 *    content store, which verifies their digest before it records anything;
 *  - when it dies, its requests fail with CRISP_E_UNAVAILABLE saying how it
 *    ended, and the next request starts a new one.
 * A blob's bytes come through a pipe (its write end travels with the
 * request): read here without blocking, delivered to write_cb; done_cb
 * follows the pipe's EOF and the reply, both. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/digest.h"
#include "imaged/imaged.h"
#include "imaged/reference.h"
#include "imaged/registry.h"
#include "ipc/msg.h"

#define FETCH_NAME "crisp-fetch"
#define FETCH_IDLE_MS 30000u
#define FETCH_PIPE_SIZE (1u << 20)
#define FETCH_READ_CHUNK (64u << 10)
/* Read at most this much per wake-up of one pipe, so one fast blob does not
 * keep the loop from everything else. */
#define FETCH_READ_BUDGET (1u << 20)
#define FETCH_CHANNEL_FD 3
/* Requests handed to crisp-fetch at once; the rest wait here, in order,
 * without a pipe. crisp-fetch runs images.max_concurrent_downloads
 * transfers at a time anyway: this only bounds the fds both sides hold
 * (a pull may ask for all of its up to 256 layers at once). */
#define FETCH_MAX_SENT 64
/* A crisp-fetch that has not said hello by then is killed. */
#define FETCH_START_TIMEOUT_MS 10000u

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

static const char *const proxy_vars[] = {
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
	"ALL_PROXY",   "all_proxy",   "NO_PROXY",   "no_proxy",
};

/* The binary, opened before the sandbox (imaged/imaged.c). */
static int program_fd = -1;

struct registry {
	struct event_base *base;
	struct registry_options opt; /* strings and hosts owned, see opt_copy() */
	struct registry_host *hosts;
	char *envp[ARRAY_SIZE(proxy_vars) + 1]; /* built before fork: the child
						   may not allocate */
	unsigned idle_ms;
	/* the running crisp-fetch, if any */
	pid_t pid;
	int pidfd;
	struct event *exit_ev;
	struct ipc_chan *chan; /* NULL once closed, until the next start */
	bool ready;
	bool idle_closed; /* we closed it: its exit 0 fails nothing */
	struct event *idle;
	/* Kills a crisp-fetch that is not ready FETCH_START_TIMEOUT_MS after
	 * its start, or that leaves requests without a reply or a byte for
	 * silence_ms: nothing it does may hold a pull for ever. */
	struct event *watchdog;
	uint64_t silence_ms;
	const char *killed_why;              /* the watchdog's reason, for the error */
	TAILQ_HEAD(, registry_request) reqs; /* in the order they were made */
	unsigned nreqs, nsent;
};

struct registry_request {
	TAILQ_ENTRY(registry_request) link;
	struct registry *reg;
	bool blob;
	bool sent;     /* to the crisp-fetch running now */
	uint32_t call; /* ipc_call id while the reply is awaited */
	char *host, *repo, *ref, *accept;
	struct registry_auth *auth;
	uint64_t size, offset;
	registry_manifest_cb manifest_cb;
	registry_write_cb write_cb;
	registry_done_cb done_cb;
	void *arg;
	/* blobs */
	int pipe_rd; /* from when it is sent */
	struct event *pipe_ev;
	uint64_t received;
	bool eof, replied;
	/* a failure to deliver from the loop (never inside the caller's call) */
	struct event *defer;
	struct crisp_error fail;
	int in_cb;
	bool in_send; /* inside ipc_call(), which may fail at once */
	bool cancelled;
};

static void fetch_start(struct registry *reg);
static void fetch_kill(struct registry *reg);
static void pump(struct registry *reg);

/* (Re)arm the watchdog: while crisp-fetch starts, or has requests, each
 * sign of life (its hello, a reply, blob bytes) gives it silence_ms more. */
static void watchdog_arm(struct registry *reg)
{
	uint64_t ms = reg->ready ? reg->silence_ms : FETCH_START_TIMEOUT_MS;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (reg->pid > 0 && (!reg->ready || reg->nsent > 0))
		evtimer_add(reg->watchdog, &tv);
	else
		evtimer_del(reg->watchdog);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;

	if (reg->pid <= 0 || (reg->ready && reg->nsent == 0))
		return; /* its last request ended since the timer was set */
	reg->killed_why = reg->ready ? "made no progress on its requests" : "did not start";
	log_warn(FETCH_NAME "[%d] %s for %llu s: killing it", (int)reg->pid, reg->killed_why,
		 (unsigned long long)((reg->ready ? reg->silence_ms : FETCH_START_TIMEOUT_MS) /
				      1000));
	fetch_kill(reg);
}

/* --- the program ------------------------------------------------------------------ */

void fetch_program_open(const struct crisp_config *cfg)
{
	_cleanup_free_ char *path = xasprintf("%s/" FETCH_NAME, cfg->helper_dir);

	program_fd = open(path, O_PATH | O_CLOEXEC);
	if (program_fd < 0)
		fatal("cannot open %s: %m", path);
}

int fetch_program_fd(void)
{
	return program_fd;
}

/* --- requests ------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static struct registry_auth *auth_copy(const struct registry_auth *a)
{
	struct registry_auth *c;

	if (!a)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->username = dup_or_null(a->username);
	c->password = dup_or_null(a->password);
	c->auth = dup_or_null(a->auth);
	c->identity_token = dup_or_null(a->identity_token);
	c->registry_token = dup_or_null(a->registry_token);
	return c;
}

static void idle_check(struct registry *reg)
{
	struct timeval tv = { reg->idle_ms / 1000, (reg->idle_ms % 1000) * 1000 };

	if (reg->nreqs == 0 && reg->chan)
		evtimer_add(reg->idle, &tv);
}

/* Forget everything of r; credentials are wiped (registry_auth_free). */
static void request_free(struct registry_request *r)
{
	struct registry *reg = r->reg;

	TAILQ_REMOVE(&reg->reqs, r, link);
	reg->nreqs--;
	if (r->sent)
		reg->nsent--;
	if (r->call && reg->chan)
		ipc_call_cancel(reg->chan, r->call);
	if (r->pipe_ev)
		event_free(r->pipe_ev);
	if (r->defer)
		event_free(r->defer);
	safe_close(r->pipe_rd);
	registry_auth_free(r->auth);
	free(r->host);
	free(r->repo);
	free(r->ref);
	free(r->accept);
	if (r->in_cb) {
		/* Inside one of its callbacks: freed once it returns. */
		r->cancelled = true;
		r->reg = NULL;
	} else {
		free(r);
	}
	pump(reg);
	idle_check(reg);
}

/* Stop r at crisp-fetch, if it has it. */
static void request_withdraw(struct registry_request *r)
{
	CrispIpc__FetchCancel c = CRISP_IPC__FETCH_CANCEL__INIT;

	if (!r->sent || !r->call || !r->reg->chan)
		return;
	c.id = r->call;
	ipc_send(r->reg->chan, IPC_FETCH_CANCEL, 0, 0, &c.base, NULL, 0);
}

/* The final callback; r is gone afterwards. */
static void finish(struct registry_request *r, const struct registry_manifest *m,
		   const struct crisp_error *err)
{
	registry_manifest_cb mcb = r->manifest_cb;
	registry_done_cb dcb = r->done_cb;
	void *arg = r->arg;
	struct crisp_error copy;

	/* err may be r's own (on_defer passes &r->fail), which goes with r */
	if (err) {
		copy = *err;
		err = &copy;
	}
	request_withdraw(r);
	request_free(r);
	if (mcb)
		mcb(arg, m, err);
	else
		dcb(arg, err);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct registry_request *r = arg;

	finish(r, NULL, &r->fail);
}

/* Fail r from the loop (a callback may not run inside the caller's call). */
static void fail_later(struct registry_request *r, const struct crisp_error *err)
{
	static const struct timeval now = { 0, 0 };

	r->fail = *err;
	if (!r->defer)
		r->defer = evtimer_new(r->reg->base, on_defer, r);
	evtimer_add(r->defer, &now);
}

static bool deferred(const struct registry_request *r)
{
	return r->defer && event_pending(r->defer, EV_TIMEOUT, NULL);
}

/* crisp-fetch went away. After our own idle close (a clean exit), requests
 * made since wait for the next one, started now. Otherwise every request
 * fails, also those that waited for it to start: a crisp-fetch that cannot
 * start is not retried in a loop, the next request tries again. */
static void fail_outstanding(struct registry *reg, bool clean, const struct crisp_error *err)
{
	struct registry_request *r, *next;
	bool waiting = false;

	for (r = TAILQ_FIRST(&reg->reqs); r; r = next) {
		next = TAILQ_NEXT(r, link);
		if (deferred(r))
			continue;
		if (r->sent || !clean) {
			if (r->sent)
				reg->nsent--;
			r->sent = false;
			r->call = 0;
			fail_later(r, err);
		} else {
			waiting = true;
		}
	}
	if (waiting)
		fetch_start(reg);
}

/* --- what crisp-fetch answers ---------------------------------------------------- */

/* crisp-fetch broke the rules: it dies, and what it had fails. */
static void violation(struct registry *reg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void violation(struct registry *reg, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (reg->chan)
		ipc_violation(reg->chan, "%s", why); /* on_close kills it */
}

static enum digest_alg digest_alg_of(const char *ref)
{
	return strncmp(ref, "sha512:", 7) == 0 ? DIGEST_SHA512 : DIGEST_SHA256;
}

static char *digest_of(enum digest_alg alg, const void *buf, size_t len)
{
	char s[DIGEST_STRING_MAX];

	digest_buf(alg, buf, len, s);
	return xstrdup(s);
}

static bool printable(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] >= 0x7f || n >= max)
			return false;
	return true;
}

static void on_manifest_reply(ProtobufCMessage *reply, struct ipc_msg *msg,
			      const struct crisp_error *err, void *arg)
{
	struct registry_request *r = arg;
	struct registry *reg = r->reg;
	CrispIpc__FetchManifestReply *m = (CrispIpc__FetchManifestReply *)reply;
	struct registry_manifest out;
	_cleanup_free_ char *digest = NULL;

	r->call = 0;
	watchdog_arm(reg);
	if (err) {
		/* ipc_call() could not even send it: fail it from the loop. */
		if (r->in_send)
			return fail_later(r, err);
		/* The channel closing fails its calls first: the exit status
		 * makes the better message, once crisp-fetch is reaped. */
		if (!ipc_chan_ready(reg->chan))
			return;
		return finish(r, NULL, err);
	}
	if (m->body.len > REGISTRY_MANIFEST_MAX || !printable(m->media_type, 255))
		return violation(reg, "manifest reply of %zu bytes, media type '%.64s'",
				 m->body.len, m->media_type);
	digest = digest_of(digest_alg_of(r->ref), m->body.data, m->body.len);
	if (digest_valid(r->ref) && !streq(digest, r->ref))
		return violation(reg, "manifest for %s has digest %s", r->ref, digest);
	out = (struct registry_manifest){ .media_type = m->media_type,
					  .digest = digest,
					  .body = m->body.data,
					  .len = m->body.len };
	finish(r, &out, NULL);
}

/* The blob is done once the reply is in and every byte was read: crisp-fetch
 * writes them all before it replies, so they are in the pipe by then (its
 * EOF is not waited for). A reply with bytes missing from the pipe, or an
 * EOF before them, breaks the protocol. Whether r was finished (freed). */
static bool blob_maybe_done(struct registry_request *r)
{
	uint64_t want = r->size - r->offset;
	struct crisp_error err;
	int avail = 0;

	if (!r->replied)
		return false;
	if (r->received == want) {
		finish(r, NULL, NULL);
		return true;
	}
	if (!r->eof && ioctl(r->pipe_rd, FIONREAD, &avail) == 0 && avail > 0)
		return false; /* on_pipe reads the rest */
	err_set(&err, CRISP_E_INVALID, "crisp-fetch delivered %llu of %llu bytes of %s",
		(unsigned long long)r->received, (unsigned long long)want, r->ref);
	event_del(r->pipe_ev);
	violation(r->reg, "%s", err.msg);
	return false;
}

static void on_blob_reply(ProtobufCMessage *reply, struct ipc_msg *msg,
			  const struct crisp_error *err, void *arg)
{
	struct registry_request *r = arg;

	r->call = 0;
	if (err) {
		if (r->in_send)
			return fail_later(r, err);
		if (!ipc_chan_ready(r->reg->chan))
			return; /* as for manifests: the exit fails it */
		/* Nothing more is coming for it: the bytes already read were
		 * delivered, the writer discards them on this error. */
		return finish(r, NULL, err);
	}
	r->replied = true;
	watchdog_arm(r->reg);
	blob_maybe_done(r);
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct registry_request *r = arg;
	struct registry *reg = r->reg;
	uint64_t left = r->size - r->offset - r->received;
	size_t budget = FETCH_READ_BUDGET;
	char buf[FETCH_READ_CHUNK];

	while (budget > 0) {
		ssize_t n = read(r->pipe_rd, buf, sizeof(buf));
		struct crisp_error err = { .code = CRISP_E_OK };
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			err_set_errno(&err, CRISP_E_INTERNAL, errno, "reading %s from crisp-fetch",
				      r->ref);
			return finish(r, NULL, &err);
		}
		if (n == 0) {
			r->eof = true;
			event_del(r->pipe_ev);
			/* Before the reply, the reply decides. */
			if (r->replied)
				blob_maybe_done(r);
			return;
		}
		if ((uint64_t)n > left) {
			event_del(r->pipe_ev);
			return violation(reg, "more than the %llu bytes of %s",
					 (unsigned long long)(r->size - r->offset), r->ref);
		}
		left -= (uint64_t)n;
		r->received += (uint64_t)n;
		budget -= n < (ssize_t)budget ? (size_t)n : budget;
		r->in_cb++;
		rc = r->write_cb(r->arg, buf, (size_t)n, &err);
		r->in_cb--;
		if (r->cancelled) {
			free(r); /* registry_cancel() from within write_cb */
			return;
		}
		if (rc < 0) {
			if (err.code == CRISP_E_OK)
				err_set(&err, CRISP_E_INTERNAL, "writing %s failed", r->ref);
			return finish(r, NULL, &err);
		}
		watchdog_arm(reg);
		if (r->replied && (blob_maybe_done(r) || !reg->chan))
			return; /* finished, or crisp-fetch broke the protocol */
	}
}

/* --- the channel ------------------------------------------------------------------ */

static void send_init(struct registry *reg)
{
	CrispIpc__FetchInit init = CRISP_IPC__FETCH_INIT__INIT;
	CrispIpc__FetchHost *hosts = xcalloc(reg->opt.nhosts + 1, sizeof(*hosts));
	CrispIpc__FetchHost **hp = xcalloc(reg->opt.nhosts + 1, sizeof(*hp));

	init.user_agent = (char *)reg->opt.user_agent;
	init.max_transfers = reg->opt.max_transfers;
	init.low_speed_timeout = reg->opt.low_speed_timeout;
	init.max_retries = reg->opt.max_retries;
	init.retry_delay_ms = reg->opt.retry_delay_ms;
	init.log_level = (uint32_t)log_get_level();
	for (size_t i = 0; i < reg->opt.nhosts; i++) {
		const struct registry_host *h = &reg->hosts[i];
		size_t n = 0;

		crisp_ipc__fetch_host__init(&hosts[i]);
		hosts[i].host = (char *)h->host;
		while (h->mirrors && h->mirrors[n])
			n++;
		hosts[i].mirrors = (char **)h->mirrors;
		hosts[i].n_mirrors = n;
		hosts[i].plain_http = h->plain_http;
		hosts[i].insecure_skip_verify = h->insecure_skip_verify;
		hosts[i].ca_file = (char *)(h->ca_file ? h->ca_file : "");
		hp[i] = &hosts[i];
	}
	init.hosts = hp;
	init.n_hosts = reg->opt.nhosts;
	ipc_send(reg->chan, IPC_FETCH_INIT, 0, 0, &init.base, NULL, 0);
	free(hp);
	free(hosts);
}

static void on_ready(struct ipc_chan *chan, void *arg)
{
	struct registry *reg = arg;

	reg->ready = true;
	send_init(reg);
	pump(reg);
	watchdog_arm(reg);
}

static void on_chan_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	ipc_violation(chan, "unexpected request %s", ipc_type_name(msg->type));
}

/* Whatever closed the channel (crisp-fetch exiting, a violation), the
 * process goes: its requests fail once it is reaped (on_exit). */
static void on_chan_close(struct ipc_chan *chan, const char *why, void *arg)
{
	struct registry *reg = arg;

	log_debug("channel to " FETCH_NAME "[%d] closed: %s", (int)reg->pid, why);
	reg->chan = NULL;
	reg->ready = false;
	ipc_chan_free(chan);
	evtimer_del(reg->idle);
	fetch_kill(reg);
}

static const struct ipc_chan_ops chan_ops = {
	.self = "imaged",
	.peer = "fetch",
	.version = IPC_FETCH_VERSION,
	.on_ready = on_ready,
	.on_request = on_chan_request,
	.on_close = on_chan_close,
};

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;

	if (reg->nreqs > 0 || !reg->chan)
		return;
	log_debug("no fetches for %u ms: closing " FETCH_NAME "[%d]", reg->idle_ms, (int)reg->pid);
	/* It exits on EOF; the exit event reaps it. */
	reg->idle_closed = true;
	ipc_chan_free(reg->chan);
	reg->chan = NULL;
	reg->ready = false;
}

/* --- the process --------------------------------------------------------------- */

static void fetch_kill(struct registry *reg)
{
	if (reg->pidfd >= 0 && syscall(SYS_pidfd_send_signal, reg->pidfd, SIGKILL, NULL, 0) < 0 &&
	    errno != ESRCH)
		log_warn("cannot kill " FETCH_NAME "[%d]: %m", (int)reg->pid);
}

static void on_exit_event(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct crisp_error err;
	int status = 0;
	bool clean;
	pid_t pid = waitpid(reg->pid, &status, WNOHANG);

	if (pid == 0)
		return; /* not yet (spurious wake-up) */
	if (pid < 0)
		status = -1;
	event_free(reg->exit_ev);
	reg->exit_ev = NULL;
	reg->pidfd = safe_close(reg->pidfd);
	clean = reg->idle_closed && status == 0;
	reg->idle_closed = false;
	evtimer_del(reg->watchdog);
	if (reg->killed_why)
		err_set(&err, CRISP_E_UNAVAILABLE, FETCH_NAME " %s: killed", reg->killed_why);
	else if (status < 0)
		err_set(&err, CRISP_E_UNAVAILABLE, FETCH_NAME " exited (status unknown: %s)",
			strerror(errno));
	else if (WIFSIGNALED(status))
		err_set(&err, CRISP_E_UNAVAILABLE, FETCH_NAME " exited with signal %d",
			WTERMSIG(status));
	else
		err_set(&err, CRISP_E_UNAVAILABLE, FETCH_NAME " exited with status %d",
			WEXITSTATUS(status));
	if (!clean)
		log_warn("%s (pid %d, %u requests outstanding)", err.msg, (int)reg->pid,
			 reg->nreqs);
	else
		log_debug("%s (pid %d)", err.msg, (int)reg->pid);
	reg->pid = 0;
	reg->killed_why = NULL;
	if (reg->chan) {
		ipc_chan_free(reg->chan);
		reg->chan = NULL;
		reg->ready = false;
	}
	fail_outstanding(reg, clean, &err);
}

/* In the child, between fork and exec: raw syscalls only (another thread
 * of imaged may have held malloc's lock at the fork). */
static __attribute__((noreturn)) void child_exec(int chan_fd, pid_t parent, char **envp)
{
	static const char msg[] = "<3>crisp-imaged: cannot start " FETCH_NAME "\n";
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	char *argv[] = { (char *)FETCH_NAME, NULL };

	/* Every fd but stdin, stdout, stderr closes at exec; then the channel
	 * goes to fd 3 (without close-on-exec) and stdin and stdout become
	 * stderr, so that no file crisp-fetch opens lands on them. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	if (chan_fd == FETCH_CHANNEL_FD) {
		if (fcntl(chan_fd, F_SETFD, 0) < 0)
			goto fail;
	} else if (dup3(chan_fd, FETCH_CHANNEL_FD, 0) < 0) {
		goto fail;
	}
	if (dup3(STDERR_FILENO, STDIN_FILENO, 0) < 0 || dup3(STDERR_FILENO, STDOUT_FILENO, 0) < 0)
		goto fail;
	/* imaged's death is crisp-fetch's: nothing outlives its parent. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		goto fail;
	/* No capability; no_new_privs (imaged's, inherited) keeps exec from
	 * granting any back, uid 0 or not. */
	if (syscall(SYS_capset, &hdr, data) < 0)
		goto fail;
	syscall(SYS_execveat, program_fd, "", argv, envp, AT_EMPTY_PATH);
fail:
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(127);
}

static void fetch_start(struct registry *reg)
{
	struct registry_request *r, *next;
	struct crisp_error err;
	int sv[2], pidfd = -1;
	pid_t parent = getpid(), pid;

	if (reg->pid > 0)
		return; /* running, or still to be reaped: requests wait for it */
	if (program_fd < 0) {
		err_set(&err, CRISP_E_INTERNAL, FETCH_NAME " was not opened at start");
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err_set_errno(&err, CRISP_E_RESOURCE, errno, "socketpair for " FETCH_NAME);
		goto fail;
	}
	/* fork, with a pidfd: the loop learns of the exit from it, and the
	 * kill cannot hit a recycled pid. */
	pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
	if (pid == 0)
		child_exec(sv[1], parent, reg->envp);
	close(sv[1]);
	if (pid < 0) {
		err_set_errno(&err, CRISP_E_RESOURCE, errno, "cannot start " FETCH_NAME);
		close(sv[0]);
		goto fail;
	}
	reg->pid = pid;
	reg->pidfd = pidfd;
	reg->exit_ev = event_new(reg->base, pidfd, EV_READ | EV_PERSIST, on_exit_event, reg);
	event_add(reg->exit_ev, NULL);
	reg->chan = ipc_chan_new(reg->base, sv[0], &chan_ops, reg);
	watchdog_arm(reg);
	log_debug("started " FETCH_NAME "[%d]", (int)pid);
	return;
fail:
	log_err("%s", err.msg);
	for (r = TAILQ_FIRST(&reg->reqs); r; r = next) {
		next = TAILQ_NEXT(r, link);
		if (!r->sent && !deferred(r))
			fail_later(r, &err);
	}
}

/* --- sending -------------------------------------------------------------------- */

static void auth_to_msg(const struct registry_auth *a, CrispIpc__FetchAuth *m)
{
	crisp_ipc__fetch_auth__init(m);
	m->username = a->username ? a->username : "";
	m->password = a->password ? a->password : "";
	m->auth = a->auth ? a->auth : "";
	m->identity_token = a->identity_token ? a->identity_token : "";
	m->registry_token = a->registry_token ? a->registry_token : "";
}

/* The packed frame holds the credentials until it is written: ipc frees it
 * without wiping, so the copy in the socket buffer is the kernel's and the
 * one in our heap is overwritten at the next use. (A request's own copy is
 * wiped when it ends, by registry_auth_free.) */
/* The blob's pipe, made as the request leaves: the read end is ours, the
 * write end (returned) goes with the request. -1 with r failed. */
static int blob_pipe(struct registry_request *r)
{
	struct crisp_error err;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		err_set_errno(&err, CRISP_E_RESOURCE, errno, "pipe for blob %s", r->ref);
		fail_later(r, &err);
		return -1;
	}
	/* A large pipe means fewer wake-ups per blob; the default size works
	 * too, only slower. */
	(void)!fcntl(p[1], F_SETPIPE_SZ, FETCH_PIPE_SIZE);
	r->pipe_rd = p[0];
	fd_set_nonblock(r->pipe_rd, true);
	r->pipe_ev = event_new(r->reg->base, r->pipe_rd, EV_READ | EV_PERSIST, on_pipe, r);
	event_add(r->pipe_ev, NULL);
	return p[1];
}

static void send_request(struct registry_request *r)
{
	struct registry *reg = r->reg;
	CrispIpc__FetchAuth auth;

	evtimer_del(reg->idle);
	if (r->auth)
		auth_to_msg(r->auth, &auth);
	if (!r->blob) {
		CrispIpc__FetchManifestRequest q = CRISP_IPC__FETCH_MANIFEST_REQUEST__INIT;

		q.host = r->host;
		q.repo = r->repo;
		q.reference = r->ref;
		q.accept = r->accept ? r->accept : "";
		q.auth = r->auth ? &auth : NULL;
		r->sent = r->in_send = true;
		reg->nsent++;
		r->call = ipc_call(reg->chan, IPC_FETCH_MANIFEST, &q.base, NULL, 0,
				   &crisp_ipc__fetch_manifest_reply__descriptor, 0, 0,
				   on_manifest_reply, r);
		r->in_send = false;
	} else {
		CrispIpc__FetchBlobRequest q = CRISP_IPC__FETCH_BLOB_REQUEST__INIT;
		int fds[1] = { blob_pipe(r) };

		if (fds[0] < 0) {
			explicit_bzero(&auth, sizeof(auth));
			return;
		}

		q.host = r->host;
		q.repo = r->repo;
		q.digest = r->ref;
		q.size = r->size;
		q.offset = r->offset;
		q.auth = r->auth ? &auth : NULL;
		r->sent = r->in_send = true;
		reg->nsent++;
		r->call = ipc_call(reg->chan, IPC_FETCH_BLOB, &q.base, fds, 1,
				   &crisp_ipc__empty__descriptor, 0, 0, on_blob_reply, r);
		r->in_send = false;
	}
	explicit_bzero(&auth, sizeof(auth));
	if (r->sent && reg->nsent == 1)
		watchdog_arm(reg); /* the first request in flight starts it */
}

static struct registry_request *request_new(struct registry *reg, bool blob, const char *host,
					    const char *repo, const char *ref,
					    const struct registry_auth *auth,
					    struct crisp_error *err)
{
	struct registry_request *r;

	/* crisp-fetch checks them again, against its own rules; these are
	 * what makes a message imaged should not even send. */
	if (!host || !*host || strlen(host) > 255 || !printable(host, 255) || !repo || !*repo ||
	    strlen(repo) > 255 || !printable(repo, 255) || !ref || !*ref || strlen(ref) > 255 ||
	    !printable(ref, 255) || (blob && !digest_valid(ref))) {
		err_set(err, CRISP_E_INVALID,
			"bad registry request: host '%.64s', repository '%.64s', reference '%.80s'",
			host ? host : "", repo ? repo : "", ref ? ref : "");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->reg = reg;
	r->blob = blob;
	r->host = xstrdup(host);
	r->repo = xstrdup(repo);
	r->ref = xstrdup(ref);
	r->auth = auth_copy(auth);
	r->pipe_rd = -1;
	TAILQ_INSERT_TAIL(&reg->reqs, r, link);
	reg->nreqs++;
	return r;
}

/* Hand waiting requests to crisp-fetch, oldest first, as far as
 * FETCH_MAX_SENT allows. */
static void pump(struct registry *reg)
{
	struct registry_request *r;

	if (!reg->ready)
		return;
	TAILQ_FOREACH (r, &reg->reqs, link) {
		if (reg->nsent >= FETCH_MAX_SENT)
			break;
		if (!r->sent && !deferred(r))
			send_request(r);
	}
}

static void request_go(struct registry_request *r)
{
	struct registry *reg = r->reg;

	evtimer_del(reg->idle);
	if (reg->ready)
		pump(reg);
	else
		fetch_start(reg); /* pumped from on_ready */
}

struct registry_request *registry_get_manifest(struct registry *reg, const char *host,
					       const char *repo, const char *reference,
					       const char *accept, const struct registry_auth *auth,
					       registry_manifest_cb cb, void *arg,
					       struct crisp_error *err)
{
	struct registry_request *r;

	if (accept && (strlen(accept) > 1024 || !printable(accept, 1024))) {
		err_set(err, CRISP_E_INVALID, "bad Accept value for %s", reference);
		return NULL;
	}
	r = request_new(reg, false, host, repo, reference, auth, err);
	if (!r)
		return NULL;
	r->accept = dup_or_null(accept);
	r->manifest_cb = cb;
	r->arg = arg;
	request_go(r);
	return r;
}

struct registry_request *registry_get_blob(struct registry *reg, const char *host, const char *repo,
					   const char *digest, uint64_t size, uint64_t offset,
					   const struct registry_auth *auth,
					   registry_write_cb write_cb, registry_done_cb done_cb,
					   void *arg, struct crisp_error *err)
{
	struct registry_request *r;

	if (offset > size || (offset == size && size != 0)) {
		err_set(err, CRISP_E_INVALID, "blob %s: offset %llu beyond its size %llu",
			digest ? digest : "", (unsigned long long)offset, (unsigned long long)size);
		return NULL;
	}
	r = request_new(reg, true, host, repo, digest, auth, err);
	if (!r)
		return NULL;
	r->size = size;
	r->offset = offset;
	r->write_cb = write_cb;
	r->done_cb = done_cb;
	r->arg = arg;
	request_go(r);
	return r;
}

void registry_cancel(struct registry_request *r)
{
	if (!r || r->cancelled)
		return;
	request_withdraw(r);
	request_free(r);
}

/* --- the registry ----------------------------------------------------------------- */

static void opt_copy(struct registry *reg, const struct registry_options *opt)
{
	struct registry_options def;

	registry_options_init(&def);
	reg->opt = *opt;
	reg->opt.user_agent = xstrdup(opt->user_agent ? opt->user_agent : def.user_agent);
	reg->hosts = xcalloc(opt->nhosts + 1, sizeof(*reg->hosts));
	for (size_t i = 0; i < opt->nhosts; i++) {
		const struct registry_host *in = &opt->hosts[i];
		struct registry_host *h = &reg->hosts[i];
		size_t n = 0;
		char **m;

		while (in->mirrors && in->mirrors[n])
			n++;
		m = xcalloc(n + 1, sizeof(*m));
		for (size_t k = 0; k < n; k++)
			m[k] = xstrdup(in->mirrors[k]);
		*h = *in;
		h->host = xstrdup(in->host ? in->host : "");
		h->mirrors = (const char *const *)m;
		h->ca_file = dup_or_null(in->ca_file);
	}
	reg->opt.hosts = reg->hosts;
}

static void opt_free(struct registry *reg)
{
	for (size_t i = 0; i < reg->opt.nhosts; i++) {
		char **m = (char **)reg->hosts[i].mirrors;

		for (size_t k = 0; m && m[k]; k++)
			free(m[k]);
		free(m);
		free((char *)reg->hosts[i].host);
		free((char *)reg->hosts[i].ca_file);
	}
	free(reg->hosts);
	free((char *)reg->opt.user_agent);
}

/* What crisp-fetch would refuse at each start is refused here, once: imaged
 * then does not start (libcurl's own URL parser, which imaged does not
 * link, has the last word in crisp-fetch). */
static int options_check(const struct registry_options *opt, struct crisp_error *err)
{
	for (size_t i = 0; i < opt->nhosts; i++) {
		const struct registry_host *h = &opt->hosts[i];

		if (!h->host || !*h->host || !printable(h->host, 255))
			return err_set(err, CRISP_E_INVALID, "bad registry host '%.64s'",
				       h->host ? h->host : "");
		for (size_t k = 0; h->mirrors && h->mirrors[k]; k++) {
			const char *u = h->mirrors[k];

			if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
			    strpbrk(u, "?# ") || !printable(u, 2048))
				return err_set(err, CRISP_E_INVALID, "bad mirror '%.128s' for %s",
					       u, h->host);
		}
	}
	return 0;
}

struct registry *registry_new(struct event_base *base, const struct registry_options *opt,
			      struct crisp_error *err)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	size_t n = 0;

	if (options_check(opt, err) < 0) {
		free(reg);
		return NULL;
	}
	reg->base = base;
	reg->pidfd = -1;
	TAILQ_INIT(&reg->reqs);
	opt_copy(reg, opt);
	/* crisp-fetch gets the proxy settings and nothing else of our
	 * environment. */
	for (size_t i = 0; i < ARRAY_SIZE(proxy_vars); i++) {
		const char *v = getenv(proxy_vars[i]);
		if (v)
			reg->envp[n++] = xasprintf("%s=%s", proxy_vars[i], v);
	}
	reg->idle_ms = FETCH_IDLE_MS;
#ifdef CRISP_TEST_HOOKS
	/* Test hook: the tests cannot wait 30 s for crisp-fetch to go. */
	const char *idle = getenv("CRISP_TEST_FETCH_IDLE_MS");
	uint64_t v;
	if (idle && parse_uint64(idle, 10, FETCH_IDLE_MS, &v) == 0 && v > 0)
		reg->idle_ms = (unsigned)v;
#endif
	reg->idle = evtimer_new(base, on_idle, reg);
	reg->watchdog = evtimer_new(base, on_watchdog, reg);
	/* The longest a working crisp-fetch may leave its requests without a
	 * byte: each attempt may stall low_speed_timeout, then back off up to
	 * 60 s (Retry-After), max_retries times, plus a margin. */
	reg->silence_ms = ((uint64_t)reg->opt.low_speed_timeout + 60) * 1000 *
				  ((uint64_t)reg->opt.max_retries + 1) +
			  60000;
#ifdef CRISP_TEST_HOOKS
	/* Test hook: nor for the watchdog. */
	const char *silence = getenv("CRISP_TEST_FETCH_SILENCE_MS");
	if (silence && parse_uint64(silence, 10, reg->silence_ms, &v) == 0 && v > 0)
		reg->silence_ms = v;
#endif
	return reg;
}

void registry_free(struct registry *reg)
{
	if (!reg)
		return;
	reg->ready = false; /* nothing more is sent */
	while (!TAILQ_EMPTY(&reg->reqs))
		request_free(TAILQ_FIRST(&reg->reqs));
	if (reg->chan)
		ipc_chan_free(reg->chan);
	fetch_kill(reg);
	if (reg->exit_ev)
		event_free(reg->exit_ev);
	safe_close(reg->pidfd);
	event_free(reg->idle);
	event_free(reg->watchdog);
	for (size_t i = 0; reg->envp[i]; i++)
		free(reg->envp[i]);
	opt_free(reg);
	free(reg);
}
