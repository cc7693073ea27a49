/* crisp-fetch: imaged's registry client, in a process of its own. imaged
 * starts it (imaged/fetch_client.c) when it has manifests or blobs to fetch
 * and ends it when it has had none for a while. It holds no capability, no
 * file it may write and no socket but TCP ones (fetch/sandbox.c): libcurl,
 * TLS and everything they load parse what registries send here, not in
 * imaged.
 *
 * Its one channel is the socketpair on fd 3 (ipc/, vocabulary IPC_FETCH_*):
 * FetchInit first, then manifest and blob requests, each answered once, and
 * cancellations. A blob's bytes go to the pipe that came with its request;
 * its reply follows the last byte. imaged hanging up ends the process, and
 * so does anything imaged sends that breaks the protocol. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "fetch/fetch.h"
#include "imaged/registry.h"
#include "ipc/msg.h"

#define FETCH_CHANNEL_FD 3
#define MAX_REQUESTS 256

enum fetch_state {
	FETCH_UNCONFIGURED = 1 << 0, /* until FetchInit */
	FETCH_READY = 1 << 1,
};

struct fetch_req {
	LIST_ENTRY(fetch_req) link;
	uint32_t id; /* the frame id imaged gave the request */
	uint16_t type;
	struct registry_request *rr;
	int pipe_fd; /* blobs: where the bytes go */
};

static struct {
	struct event_base *base;
	struct ipc_chan *chan;
	struct registry *reg;
	enum fetch_state state;
	unsigned stall_ms;
	unsigned nreqs;
	LIST_HEAD(, fetch_req) reqs;
} F = { .state = FETCH_UNCONFIGURED };

static void req_free(struct fetch_req *r)
{
	LIST_REMOVE(r, link);
	F.nreqs--;
	safe_close(r->pipe_fd);
	free(r);
}

static struct fetch_req *req_find(uint32_t id)
{
	struct fetch_req *r;

	LIST_FOREACH (r, &F.reqs, link)
		if (r->id == id)
			return r;
	return NULL;
}

/* Replies go by the request's frame id; a request imaged cancelled is gone
 * from the list before its callback could run, so nothing is sent for it. */
static void reply_error(struct fetch_req *r, const struct crisp_error *err)
{
	CrispIpc__Error e = CRISP_IPC__ERROR__INIT;

	e.code = err->code;
	e.message = (char *)err->msg;
	ipc_send(F.chan, IPC_ERROR, IPC_F_REPLY, r->id, &e.base, NULL, 0);
}

/* The request's strings are checked by registry_get_*() (they end up in
 * URLs); the credentials are copied there and wiped here right after. */
static void auth_from_msg(const CrispIpc__FetchAuth *m, struct registry_auth *a)
{
	*a = (struct registry_auth){ 0 };
	if (!m)
		return;
	a->username = *m->username ? m->username : NULL;
	a->password = *m->password ? m->password : NULL;
	a->auth = *m->auth ? m->auth : NULL;
	a->identity_token = *m->identity_token ? m->identity_token : NULL;
	a->registry_token = *m->registry_token ? m->registry_token : NULL;
}

static void wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

static void auth_wipe_msg(CrispIpc__FetchAuth *m)
{
	if (!m)
		return;
	wipe(m->username);
	wipe(m->password);
	wipe(m->auth);
	wipe(m->identity_token);
	wipe(m->registry_token);
}

/* A second request with the id of one still running would make replies
 * ambiguous; too many at once is imaged misbehaving too. */
static struct fetch_req *req_new(struct ipc_chan *chan, const struct ipc_msg *msg)
{
	struct fetch_req *r;

	if (msg->id == 0 || req_find(msg->id)) {
		ipc_violation(chan, "%s with request id %u already in use",
			      ipc_type_name(msg->type), msg->id);
		return NULL;
	}
	if (F.nreqs >= MAX_REQUESTS) {
		ipc_violation(chan, "more than %u requests at once", MAX_REQUESTS);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = msg->id;
	r->type = msg->type;
	r->pipe_fd = -1;
	LIST_INSERT_HEAD(&F.reqs, r, link);
	F.nreqs++;
	return r;
}

/* --- manifests ---------------------------------------------------------------- */

static void on_manifest(void *arg, const struct registry_manifest *m, const struct crisp_error *err)
{
	struct fetch_req *r = arg;

	if (err) {
		reply_error(r, err);
	} else {
		CrispIpc__FetchManifestReply rep = CRISP_IPC__FETCH_MANIFEST_REPLY__INIT;

		rep.media_type = (char *)m->media_type;
		rep.body.data = (uint8_t *)m->body;
		rep.body.len = m->len;
		ipc_send(F.chan, IPC_FETCH_MANIFEST, IPC_F_REPLY, r->id, &rep.base, NULL, 0);
	}
	req_free(r);
}

static void handle_manifest(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *m,
			    void *arg)
{
	CrispIpc__FetchManifestRequest *q = (CrispIpc__FetchManifestRequest *)m;
	struct fetch_req *r = req_new(chan, msg);
	struct registry_auth auth;
	struct crisp_error err;

	if (r) {
		auth_from_msg(q->auth, &auth);
		r->rr = registry_get_manifest(F.reg, q->host, q->repo, q->reference,
					      *q->accept ? q->accept : NULL, q->auth ? &auth : NULL,
					      on_manifest, r, &err);
		explicit_bzero(&auth, sizeof(auth));
		if (!r->rr) {
			reply_error(r, &err);
			req_free(r);
		}
	}
	auth_wipe_msg(q->auth);
}

/* --- blobs ---------------------------------------------------------------------- */

/* The pipe is imaged's to drain, which it does from its loop as fast as it
 * stores the bytes. When it is full, this waits for room (poll, bounded by
 * the stall timeout) rather than buffer without limit: libcurl's write
 * callback cannot be left half done, and the only consumer of every pipe is
 * imaged, so waiting on it delays nothing it would not delay anyway. */
static int blob_write(void *arg, const void *buf, size_t n, struct crisp_error *err)
{
	struct fetch_req *r = arg;
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(r->pipe_fd, p, n);
		struct pollfd pfd = { .fd = r->pipe_fd, .events = POLLOUT };

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return err_set_errno(err, CRISP_E_UNAVAILABLE, errno,
					     "writing the blob to imaged's pipe");
		int pr = poll(&pfd, 1, (int)F.stall_ms);
		if (pr == 0)
			return err_set(err, CRISP_E_TIMEOUT,
				       "imaged read none of the blob's bytes for %u s",
				       F.stall_ms / 1000);
		if (pr < 0 && errno != EINTR)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "poll on the blob pipe");
	}
	return 0;
}

static void on_blob_done(void *arg, const struct crisp_error *err)
{
	struct fetch_req *r = arg;

	/* The pipe first: imaged finishes a blob on its EOF and this reply. */
	r->pipe_fd = safe_close(r->pipe_fd);
	if (err) {
		reply_error(r, err);
	} else {
		CrispIpc__Empty e = CRISP_IPC__EMPTY__INIT;
		ipc_send(F.chan, IPC_FETCH_BLOB, IPC_F_REPLY, r->id, &e.base, NULL, 0);
	}
	req_free(r);
}

static void handle_blob(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *m, void *arg)
{
	CrispIpc__FetchBlobRequest *q = (CrispIpc__FetchBlobRequest *)m;
	struct fetch_req *r;
	struct registry_auth auth;
	struct crisp_error err;
	struct stat st;
	int fd = ipc_msg_take_fd(msg, 0);

	/* Only the write end of a pipe: bytes written anywhere else (a file,
	 * a socket) would be crisp-fetch writing what it must not. */
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) ||
	    (fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY) {
		safe_close(fd);
		auth_wipe_msg(q->auth);
		return ipc_violation(chan, "IPC_FETCH_BLOB without the write end of a pipe");
	}
	r = req_new(chan, msg);
	if (!r) {
		safe_close(fd);
		auth_wipe_msg(q->auth);
		return;
	}
	r->pipe_fd = fd;
	fd_set_nonblock(fd, true);
	auth_from_msg(q->auth, &auth);
	r->rr = registry_get_blob(F.reg, q->host, q->repo, q->digest, q->size, q->offset,
				  q->auth ? &auth : NULL, blob_write, on_blob_done, r, &err);
	explicit_bzero(&auth, sizeof(auth));
	auth_wipe_msg(q->auth);
	if (!r->rr) {
		r->pipe_fd = safe_close(r->pipe_fd);
		reply_error(r, &err);
		req_free(r);
	}
}

/* The request may have ended already, its reply crossing this message:
 * then there is nothing to do. */
static void handle_cancel(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *m,
			  void *arg)
{
	CrispIpc__FetchCancel *q = (CrispIpc__FetchCancel *)m;
	struct fetch_req *r = req_find(q->id);

	if (!r)
		return;
	registry_cancel(r->rr);
	req_free(r);
}

/* --- configuration ------------------------------------------------------------- */

static void handle_init(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *m, void *arg)
{
	CrispIpc__FetchInit *q = (CrispIpc__FetchInit *)m;
	struct registry_host *hosts = xcalloc(q->n_hosts + 1, sizeof(*hosts));
	const char ***mirrors = xcalloc(q->n_hosts + 1, sizeof(*mirrors));
	struct registry_options opt;
	struct crisp_error err;

	if (q->log_level >= LOG_ERR && q->log_level <= LOG_DEBUG)
		log_set_level((int)q->log_level);
	registry_options_init(&opt);
	if (*q->user_agent)
		opt.user_agent = q->user_agent;
	opt.max_transfers = q->max_transfers;
	opt.low_speed_timeout = q->low_speed_timeout;
	opt.max_retries = q->max_retries;
	opt.retry_delay_ms = q->retry_delay_ms;
	for (size_t i = 0; i < q->n_hosts; i++) {
		const CrispIpc__FetchHost *h = q->hosts[i];

		hosts[i].host = h->host;
		hosts[i].plain_http = h->plain_http;
		hosts[i].insecure_skip_verify = h->insecure_skip_verify;
		hosts[i].ca_file = *h->ca_file ? h->ca_file : NULL;
		mirrors[i] = xcalloc(h->n_mirrors + 1, sizeof(char *));
		for (size_t k = 0; k < h->n_mirrors; k++)
			mirrors[i][k] = h->mirrors[k];
		hosts[i].mirrors = mirrors[i];
	}
	opt.hosts = hosts;
	opt.nhosts = q->n_hosts;
	F.reg = registry_new(F.base, &opt, &err);
	if (!F.reg)
		fatal("registry options: %s", err.msg);
	/* Before any request (and before libcurl's resolver makes a thread,
	 * which inherits it): what it may read, the hosts' CA files with it. */
	{
		const char **cas = xcalloc(q->n_hosts + 1, sizeof(*cas));
		size_t n = 0;

		for (size_t i = 0; i < q->n_hosts; i++)
			if (hosts[i].ca_file)
				cas[n++] = hosts[i].ca_file;
		fetch_landlock(cas, n);
		free(cas);
	}
	for (size_t i = 0; i < q->n_hosts; i++)
		free(mirrors[i]);
	free(mirrors);
	free(hosts);
	F.stall_ms = (opt.low_speed_timeout ? opt.low_speed_timeout : 60) * 1000;
	F.state = FETCH_READY;
}

static const struct ipc_handler fetch_handlers[] = {
	{ IPC_FETCH_INIT, &crisp_ipc__fetch_init__descriptor, 0, IPC_MEDIUM, FETCH_UNCONFIGURED,
	  handle_init },
	{ IPC_FETCH_MANIFEST, &crisp_ipc__fetch_manifest_request__descriptor, 0, IPC_SMALL * 4,
	  FETCH_READY, handle_manifest },
	{ IPC_FETCH_BLOB, &crisp_ipc__fetch_blob_request__descriptor, 1, IPC_SMALL * 4, FETCH_READY,
	  handle_blob },
	{ IPC_FETCH_CANCEL, &crisp_ipc__fetch_cancel__descriptor, 0, IPC_SMALL, FETCH_READY,
	  handle_cancel },
};

static void on_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	ipc_dispatch(fetch_handlers, ARRAY_SIZE(fetch_handlers), chan, msg, F.state, NULL);
}

/* imaged is done with us (its idle timer, its exit) or broke the protocol:
 * either way nothing is left to do. Transfers in flight die with us. */
static void on_close(struct ipc_chan *chan, const char *why, void *arg)
{
	bool violation = streq(why, "protocol violation");

	log_debug("channel to imaged closed (%s): exiting", why);
	_exit(violation ? 1 : 0);
}

#ifdef CRISP_TEST_HOOKS
/* Test hook: SIGUSR2 makes crisp-fetch create a file in its working
 * directory (imaged's, which imaged's mount namespace leaves writable), so
 * the tests can prove its filter kills a write open first. */
static void on_sigusr2(evutil_socket_t sig, short what, void *arg)
{
	int fd;

	/* Landlock first: a file uid 0 owns but a registry client has no
	 * business reading */
	fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
	log_notice("test hook: reading /etc/shadow: %s", fd < 0 ? strerror(errno) : "opened");
	safe_close(fd);

	log_notice("test hook: opening crisp-fetch-test-hook for writing");
	fd = open("crisp-fetch-test-hook", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	log_notice("test hook: open returned %d: no seccomp filter stopped it", fd);
	safe_close(fd);
}

/* Test hook: SIGUSR1 makes crisp-fetch send imaged a message it never asked
 * for, so the tests can prove imaged kills it for that. */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	log_notice("test hook: sending imaged an unsolicited message");
	ipc_send(F.chan, IPC_TEST_UNKNOWN, 0, 1, NULL, NULL, 0);
}
#endif

int main(int argc, char **argv)
{
	static const struct ipc_chan_ops ops = {
		.self = "fetch",
		.peer = "imaged",
		.version = IPC_FETCH_VERSION,
		.on_request = on_request,
		.on_close = on_close,
	};
	int type = 0;
	socklen_t len = sizeof(type);

	log_init("crisp-fetch", LOG_INFO);
	if (getsockopt(FETCH_CHANNEL_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM)
		fatal("no channel on fd %d: crisp-fetch is started by crisp-imaged only",
		      FETCH_CHANNEL_FD);
	signal(SIGPIPE, SIG_IGN); /* a pipe imaged closed is EPIPE, not death */
	LIST_INIT(&F.reqs);
	F.base = event_base_new();
	if (!F.base)
		fatal("event_base_new failed");
	/* Confined before the first byte from anyone is read. */
	fetch_sandbox();
	F.chan = ipc_chan_new(F.base, FETCH_CHANNEL_FD, &ops, NULL);
#ifdef CRISP_TEST_HOOKS
	event_add(evsignal_new(F.base, SIGUSR2, on_sigusr2, NULL), NULL);
	event_add(evsignal_new(F.base, SIGUSR1, on_sigusr1, NULL), NULL);
#endif
	event_base_dispatch(F.base);
	return 0;
}
