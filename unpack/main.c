/* crisp-unpack: applies one image layer for imaged, in a process of its
 * own, so that a bug of libarchive (gzip, zstd, tar) exploited by a hostile
 * layer gets a process that can write beneath one snapshot directory and
 * nothing else, not imaged with its content store, its database and every
 * other image's snapshots. unpack/unpack.h says what it is given; the work
 * is imaged/unpack.c's, the confinement unpack/sandbox.c's.
 *
 * One layer per process: it reads the request, confines itself, unpacks,
 * answers and exits. It never retries, and it never syncs (imaged does,
 * after checking the answer).
 *
 * "crisp-unpack archive" reads an import archive instead, for imaged/
 * import.c: unpack/archive.c, with no capability and no file access. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/unpack.h"
#include "ipc/ipc.pb-c.h"
#include "unpack/unpack.h"

int unpack_send(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	ssize_t w;

	if (n > cap)
		fatal("%s of %zu bytes, more than %zu", m->descriptor->short_name, n, cap);
	protobuf_c_message_pack(m, buf);
	do
		w = send(UNPACK_SOCK_FD, buf, n, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w >= 0 && w != (ssize_t)n)
		errno = EMSGSIZE; /* a datagram goes whole or not at all */
	return w == (ssize_t)n ? 0 : -1;
}

static void reply_send(const CrispIpc__UnpackReply *reply)
{
	uint8_t buf[UNPACK_MSG_MAX];

	if (unpack_send(&reply->base, buf, sizeof(buf)) < 0)
		fatal("sending the reply to imaged: %m");
}

static CrispIpc__UnpackRequest *request_read(void)
{
	uint8_t buf[UNPACK_MSG_MAX];
	ssize_t n;

	do
		n = recv(UNPACK_SOCK_FD, buf, sizeof(buf), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fatal("reading the request: %m");
	if (n == 0 || (size_t)n > sizeof(buf))
		fatal("request of %zd bytes", n);
	return crisp_ipc__unpack_request__unpack(NULL, (size_t)n, buf);
}

/* The fds imaged said it passed, each of the right kind. */
static void fds_check(uint32_t n_lowers)
{
	struct stat st;

	if (fstat(UNPACK_BLOB_FD, &st) < 0 || !S_ISREG(st.st_mode))
		fatal("fd %d is not the layer blob", UNPACK_BLOB_FD);
	if (fstat(UNPACK_ROOT_FD, &st) < 0 || !S_ISDIR(st.st_mode))
		fatal("fd %d is not the snapshot directory", UNPACK_ROOT_FD);
	for (uint32_t i = 0; i < n_lowers; i++)
		if (fstat(UNPACK_LOWER_FD + (int)i, &st) < 0 || !S_ISDIR(st.st_mode))
			fatal("fd %d is not a lower layer's directory", UNPACK_LOWER_FD + (int)i);
	if (fcntl(UNPACK_LOWER_FD + (int)n_lowers, F_GETFD) >= 0)
		fatal("fd %d is open: imaged passes no more than %u lower layers",
		      UNPACK_LOWER_FD + (int)n_lowers, n_lowers);
}

#ifdef CRISP_TEST_HOOKS
/* Test hooks (a --enable-test-hooks build only), from imaged's environment:
 * CRISP_TEST_UNPACK_DELAY_MS holds the layer back, sandboxed, so a test can
 * look at the process or kill it; CRISP_TEST_UNPACK_REPLY=garbage answers
 * bytes that are no UnpackReply, =overlimit a result beyond the limits
 * imaged sent, both after the real unpack. CRISP_TEST_UNPACK_PROBE tries
 * to write outside the snapshot once sandboxed, and logs what happened. */
static void test_probe(void)
{
	int fd;

	if (!getenv("CRISP_TEST_UNPACK_PROBE"))
		return;
	/* Beside the snapshot directory: in imaged's own tree, which imaged's
	 * mount namespace leaves writable. Landlock must refuse. */
	fd = openat(UNPACK_ROOT_FD, "../landlock-probe", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	log_warn("test hook: creating a file beside the snapshot: %s",
		 fd < 0 ? strerror(errno) : "created");
	if (fd >= 0)
		close(fd);
}

static void test_delay(void)
{
	const char *v = getenv("CRISP_TEST_UNPACK_DELAY_MS");
	uint64_t ms;

	if (v && parse_uint64(v, 10, 600000, &ms) == 0) {
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static bool test_reply(const struct unpack_result *res)
{
	const char *v = getenv("CRISP_TEST_UNPACK_REPLY");

	if (v && streq(v, "garbage")) {
		static const char junk[] = "\xff\xff\xff\xff not an UnpackReply";
		(void)!send(UNPACK_SOCK_FD, junk, sizeof(junk) - 1, MSG_NOSIGNAL);
		return true;
	}
	if (v && streq(v, "overlimit")) {
		CrispIpc__UnpackReply reply = CRISP_IPC__UNPACK_REPLY__INIT;
		CrispIpc__UnpackResult r = CRISP_IPC__UNPACK_RESULT__INIT;

		r.diff_id = (char *)res->diff_id;
		r.entries = UINT64_MAX;
		r.bytes = res->bytes;
		r.content_bytes = res->content_bytes;
		reply.outcome_case = CRISP_IPC__UNPACK_REPLY__OUTCOME_RESULT;
		reply.result = &r;
		reply_send(&reply);
		return true;
	}
	return false;
}
#endif

/* "crisp-unpack archive": read an import archive for imaged, without any
 * capability (main drops them first). */
static int archive_main(void)
{
	CrispIpc__UnpackRequest *req;
	struct stat st;
	unsigned pass;

	req = request_read();
	if (!req)
		fatal("the request is no UnpackRequest");
	if (req->log_level >= LOG_ERR && req->log_level <= LOG_DEBUG)
		log_set_level((int)req->log_level);
	pass = req->archive_pass;
	crisp_ipc__unpack_request__free_unpacked(req, NULL);
	if (fstat(UNPACK_BLOB_FD, &st) < 0 || !S_ISREG(st.st_mode))
		fatal("fd %d is not the archive", UNPACK_BLOB_FD);
	if (fcntl(UNPACK_BLOB_FD + 1, F_GETFD) >= 0)
		fatal("fd %d is open: imaged passes the socket and the archive only",
		      UNPACK_BLOB_FD + 1);
	unpack_sandbox_archive();
#ifdef CRISP_TEST_HOOKS
	test_delay();
#endif
	return unpack_archive_stream(pass);
}

int main(int argc, char **argv)
{
	CrispIpc__UnpackReply reply = CRISP_IPC__UNPACK_REPLY__INIT;
	CrispIpc__UnpackResult result = CRISP_IPC__UNPACK_RESULT__INIT;
	CrispIpc__Error error = CRISP_IPC__ERROR__INIT;
	CrispIpc__UnpackRequest *req;
	int lowers[UNPACK_MAX_LOWERS];
	struct unpack_limits lim;
	struct unpack_result res;
	struct crisp_error err;
	int type = 0;
	socklen_t len = sizeof(type);
	bool archive = argc == 2 && streq(argv[1], UNPACK_ARCHIVE_ARG);

	/* The archive mode needs none of the capabilities exec kept: gone
	 * before anything else. */
	if (archive)
		unpack_caps_clear();
	log_init(UNPACK_NAME, LOG_INFO);
	if (getsockopt(UNPACK_SOCK_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET)
		fatal("no socket on fd %d: " UNPACK_NAME " is started by crisp-imaged only",
		      UNPACK_SOCK_FD);
	signal(SIGPIPE, SIG_IGN);
	if (archive)
		return archive_main();
	if (argc != 1)
		fatal("usage: " UNPACK_NAME " [" UNPACK_ARCHIVE_ARG
		      "] (started by crisp-imaged only)");
	req = request_read();
	if (!req)
		fatal("the request is no UnpackRequest");
	if (req->log_level >= LOG_ERR && req->log_level <= LOG_DEBUG)
		log_set_level((int)req->log_level);
	if (req->n_lowers > UNPACK_MAX_LOWERS)
		fatal("%u lower layers, more than %u", req->n_lowers, UNPACK_MAX_LOWERS);
	fds_check(req->n_lowers);
	lim = (struct unpack_limits){ .max_entries = req->max_entries,
				      .max_path_len = req->max_path_len,
				      .max_total_bytes = req->max_total_bytes,
				      .max_xattr_bytes = req->max_xattr_bytes };
	for (uint32_t i = 0; i < req->n_lowers; i++)
		lowers[i] = UNPACK_LOWER_FD + (int)i;
	/* Confined before the first byte of the layer is read. */
	unpack_sandbox((int)req->n_lowers);
#ifdef CRISP_TEST_HOOKS
	test_probe();
	test_delay();
#endif
	if (unpack_layer_over(UNPACK_BLOB_FD, UNPACK_ROOT_FD, lowers, req->n_lowers, &lim, &res,
			      &err) < 0) {
		error.code = err.code;
		error.message = err.msg;
		reply.outcome_case = CRISP_IPC__UNPACK_REPLY__OUTCOME_ERROR;
		reply.error = &error;
		log_debug("layer failed: %s", err.msg);
	} else {
#ifdef CRISP_TEST_HOOKS
		if (test_reply(&res))
			return 0;
#endif
		result.diff_id = res.diff_id;
		result.entries = res.entries;
		result.bytes = res.bytes;
		result.content_bytes = res.content_bytes;
		result.skipped_xattrs = res.skipped_xattrs;
		reply.outcome_case = CRISP_IPC__UNPACK_REPLY__OUTCOME_RESULT;
		reply.result = &result;
	}
	reply_send(&reply);
	crisp_ipc__unpack_request__free_unpacked(req, NULL);
	return 0;
}
