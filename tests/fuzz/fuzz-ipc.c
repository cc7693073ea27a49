/* fuzz-ipc: a libFuzzer target for ipc/, the code every crisp process runs
 * on bytes its peer controls: the frame parser, the hello, fd accounting,
 * reply matching, ipc_dispatch's policy, and (through a ConfigSet handler
 * like the children's) config_set() on peer-supplied strings.
 *
 * The input is fed as the peer of one channel over a real socketpair, and the
 * loop runs until the channel has consumed all of it and seen EOF (or closed
 * on a violation). It must never crash, hang, leak memory or leak an fd; the
 * harness aborts on a hang or an fd leak, ASan and libFuzzer catch the rest.
 *
 * Build and run (clang with libFuzzer, libclang-rt-14-dev on Debian 12):
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-ipc
 *	mkdir -p corpus && ./tests/fuzz/fuzz-ipc -max_total_time=60 corpus
 *
 * FUZZ_IPC_LOG=1 in the environment turns on the channel's debug logging
 * (add -close_fd_mask=2 to keep libFuzzer's own output readable), which
 * also runs the log formatting on fuzzed strings. To reproduce a crash:
 * ./tests/fuzz/fuzz-ipc crash-<sha1>.
 *
 * Input layout: the first byte is a mode, the rest is what the peer sends.
 *   mode bit 0: the harness sends a valid Hello first; without it the bytes
 *               themselves must start with one to get anywhere.
 *   mode bit 1: the rest is a list of chunks, each [c][n][n bytes] sent by
 *               one sendmsg() with (c % 11) fds of a memfd attached (up to
 *               IPC_MAX_FDS + 2, to reach the "too many fds" paths); without
 *               it the rest is written as a plain byte stream. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "ipc/ipc.h"
#include "ipc/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* States of the receiving "helper", as in ipc/child.c. */
enum {
	ST_UNCONFIGURED = 1,
	ST_CONFIGURED = 2
};

struct fuzz {
	struct ipc_chan *chan;
	bool closed;
	uint32_t state;
	struct crisp_config cfg;
};

static struct event_base *base;
/* The fds the peer passes are copies of this memfd, so a leaked one is
 * recognised by its name in /proc/self/fd (the sanitizers' own fds, such as
 * the symbolizer's pipes, come and go and must not count). */
#define PASSED_NAME "fuzz-ipc-passed"
static int passed = -1;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-ipc: %s\n", what);
	abort();
}

/* ---- the helper's side: a dispatch table like a real one ------------------------ */

static void on_config_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			  void *arg)
{
	struct fuzz *f = arg;
	CrispIpc__ConfigSet *set = (CrispIpc__ConfigSet *)req;
	struct crisp_config cfg;
	struct crisp_error err;

	config_init(&cfg);
	for (size_t i = 0; i < set->n_items; i++) {
		if (config_set(&cfg, set->items[i]->key, set->items[i]->value, &err) < 0) {
			config_free(&cfg);
			return ipc_violation(chan, "configuration: %s", err.msg);
		}
	}
	config_free(&f->cfg);
	f->cfg = cfg;
	f->state = ST_CONFIGURED;
}

static void on_channel_open(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	safe_close(ipc_msg_take_fd(msg, 0));
}

static void on_ping(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthPong pong = CRISP_IPC__HEALTH_PONG__INIT;
	pong.seq = ((CrispIpc__HealthPing *)req)->seq;
	ipc_send(chan, IPC_SUP_HEALTH_PONG, 0, msg->id, &pong.base, NULL, 0);
}

static void on_health_get(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			  void *arg)
{
	CrispIpc__HealthGetReply r = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	r.ready = true;
	r.reason = (char *)"NetworkReady";
	ipc_reply(chan, msg, &r.base, NULL, 0);
}

static void on_pod_cidr_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	const char *cidr = ((CrispIpc__PodCidrSetRequest *)req)->pod_cidr;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err;

	if (!*cidr || strlen(cidr) > 64) {
		err_set(&err, CRISP_E_INVALID, "bad pod CIDR '%.64s'", cidr);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

static void on_process_state(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			     void *arg)
{
	/* nothing to do; unpacking a nested repeated message is the point */
}

static const struct ipc_handler handlers[] = {
	{ IPC_SUP_CONFIG_SET, &crisp_ipc__config_set__descriptor, 0, IPC_MEDIUM, IPC_ANY_STATE,
	  on_config_set },
	{ IPC_SUP_CHANNEL_OPEN, &crisp_ipc__channel_open__descriptor, 1, IPC_SMALL, ST_CONFIGURED,
	  on_channel_open },
	{ IPC_SUP_HEALTH_PING, &crisp_ipc__health_ping__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_ping },
	{ IPC_SUP_PROCESS_STATE_SET, &crisp_ipc__process_state_set__descriptor, 0, IPC_MEDIUM,
	  ST_CONFIGURED, on_process_state },
	{ IPC_NETD_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health_get },
	{ IPC_NETD_POD_CIDR_SET, &crisp_ipc__pod_cidr_set_request__descriptor, 0, IPC_SMALL,
	  ST_CONFIGURED, on_pod_cidr_set },
};

static void on_reply(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		     void *arg)
{
	/* A reply's fds belong to us: keep one, leave the rest to the channel. */
	if (msg && msg->nfds)
		safe_close(ipc_msg_take_fd(msg, 0));
}

static void on_ready(struct ipc_chan *chan, void *arg)
{
	CrispIpc__HealthGetRequest req = CRISP_IPC__HEALTH_GET_REQUEST__INIT;

	/* Calls with ids 1 and 2 for the peer's replies to match: one may bring
	 * an fd, one may not; the timers are freed with the channel. */
	ipc_call(chan, IPC_NETD_HEALTH_GET, &req.base, NULL, 0,
		 &crisp_ipc__health_get_reply__descriptor, 1, 60000, on_reply, arg);
	ipc_call(chan, IPC_RUNTIMED_HEALTH_GET, &req.base, NULL, 0, &crisp_ipc__empty__descriptor,
		 0, 0, on_reply, arg);
}

static void on_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	struct fuzz *f = arg;
	ipc_dispatch(handlers, ARRAY_SIZE(handlers), chan, msg, f->state, f);
}

static void on_close(struct ipc_chan *chan, const char *why, void *arg)
{
	struct fuzz *f = arg;
	f->closed = true;
	/* as every owner does: free it from inside the callback */
	ipc_chan_free(f->chan);
	f->chan = NULL;
}

static const struct ipc_chan_ops ops = {
	.self = "netd",
	.peer = "frontend",
	.version = IPC_NETD_VERSION,
	.on_ready = on_ready,
	.on_request = on_request,
	.on_close = on_close,
};

/* After a run, no passed fd and no socket may be left open. */
static void check_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		fail("opendir /proc/self/fd");
	while ((de = readdir(d))) {
		char link[300], target[256];
		ssize_t n;
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == passed || fd == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, PASSED_NAME) || strncmp(target, "socket:", 7) == 0) {
			fprintf(stderr, "fuzz-ipc: fd %d (%s) leaked\n", fd, target);
			fail("file descriptor leak");
		}
	}
	closedir(d);
}

/* ---- the peer's side ------------------------------------------------------------- */

static void drain(int peer)
{
	char buf[65536];
	while (read(peer, buf, sizeof(buf)) > 0)
		;
}

static void step(int peer)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	drain(peer);
}

/* Send len bytes with nfds fds on the first byte, running the loop while
 * the socket is full. Gives up quietly once the channel has closed. */
static void peer_send(struct fuzz *f, int peer, const uint8_t *p, size_t len, unsigned nfds)
{
	int fds[16];
	size_t off = 0;
	unsigned spins = 0;

	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fcntl(passed, F_DUPFD_CLOEXEC, 0);
	while (off < len && !f->closed) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { (void *)(p + off), len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (off == 0 && nfds) {
			struct cmsghdr *c;
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(peer, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break; /* the channel closed its end */
		if (++spins > 100000)
			fail("the channel stopped reading its input");
		step(peer);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]); /* the kernel holds its own references */
}

static void run(const uint8_t *data, size_t size, bool hello, bool chunks)
{
	struct fuzz f = { .state = ST_UNCONFIGURED };
	unsigned spins = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair");
	fd_set_nonblock(sv[1], true);
	config_init(&f.cfg);
	f.chan = ipc_chan_new(base, sv[0], &ops, &f);

	if (hello) {
		CrispIpc__Hello h = CRISP_IPC__HELLO__INIT;
		uint8_t buf[64] = { 0 }; /* header: u32 len, u16 type, then zeros */
		uint16_t type = IPC_HELLO;
		uint32_t n;

		h.version = IPC_NETD_VERSION;
		h.process = (char *)"frontend";
		h.pid = 1;
		n = (uint32_t)protobuf_c_message_pack(&h.base, buf + 16);
		memcpy(buf, &n, 4);
		memcpy(buf + 4, &type, 2);
		peer_send(&f, sv[1], buf, 16 + n, 0);
	}
	if (!chunks) {
		peer_send(&f, sv[1], data, size, 0);
	} else {
		while (size >= 2 && !f.closed) {
			unsigned nfds = data[0] % 11;
			size_t n = data[1] < size - 2 ? data[1] : size - 2;
			peer_send(&f, sv[1], data + 2, n, nfds);
			data += 2 + n;
			size -= 2 + n;
		}
	}
	/* EOF after the bytes: the channel must get through all of them to it. */
	shutdown(sv[1], SHUT_WR);
	while (!f.closed) {
		if (++spins > 100000)
			fail("the channel never reached the end of its input");
		step(sv[1]);
	}
	close(sv[1]);
	config_free(&f.cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base) {
		base = event_base_new();
		passed = memfd_create(PASSED_NAME, MFD_CLOEXEC);
		if (!base || passed < 0)
			fail("setup");
		log_init("fuzz-ipc", getenv("FUZZ_IPC_LOG") ? LOG_DEBUG : LOG_CRIT);
	}
	if (size < 1)
		return 0;
	run(data + 1, size - 1, data[0] & 1, data[0] & 2);

	check_fds();
	return 0;
}
