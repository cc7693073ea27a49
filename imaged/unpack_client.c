/* imaged's side of crisp-unpack: each layer is applied by a child of its
 * own (unpack/), started from the worker thread that unpacks it, so that
 * libarchive parses a registry's bytes in a process that can write beneath
 * that layer's snapshot directory only.
 *
 * unpack_run() blocks its worker thread: it forks (clone with a pidfd), the
 * child moves the socket, blob, snapshot and lower fds to the numbers
 * unpack/unpack.h fixes and execs crisp-unpack from the fd opened at start,
 * with raw syscalls only in between (another thread of imaged may have held
 * malloc's lock at the fork). The request is queued on the socket before
 * the fork; the one reply is read when it comes, the child reaped when it
 * exits.
 *
 * crisp-unpack is the exposed process, so nothing it says is trusted: its
 * reply must be one well-formed UnpackReply whose DiffID is a sha256 digest
 * string and whose counts fit the limits sent; a reply that breaks this, no
 * reply, an exit other than 0 or a death by signal fail the layer (the
 * caller discards the snapshot directory, as for any failed layer). The
 * DiffID is compared with the image config by the caller, which also syncs
 * the snapshot before it records it.
 *
 * A child that stops reading the blob is killed: the blob fd shares its
 * offset with the child's, so progress shows without any protocol. A
 * layer is read from the first byte to the last, and each read of a
 * compressed block writes at most what limits allow; the one phase without
 * reads, setting directory times at the end, is bounded by the entry limit.
 * UNPACK_SILENCE_MS without a byte read is far more than any of that takes
 * on a working disk. A time limit proportional to the blob would fail big
 * layers on slow disks and still let a small hostile one hold a thread for
 * as long; imaged's exit kills the child anyway (parent-death signal). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/imaged.h"
#include "imaged/unpack.h"
#include "ipc/ipc.pb-c.h"
#include "unpack/unpack.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define UNPACK_SILENCE_MS (300u * 1000)
/* After its reply, crisp-unpack only exits. */
#define UNPACK_EXIT_MS 10000u
#define UNPACK_TICK_MS 1000
#define UNPACK_PROGRAM_FD_MIN (3 + 3 + UNPACK_MAX_LOWERS)

/* The binary, opened before the sandbox (imaged/imaged.c). */
static int program_fd = -1;
static uint64_t silence_ms = UNPACK_SILENCE_MS;
/* crisp-unpack's environment: empty, but for test hooks. */
static char *child_envp[5];

void unpack_program_open(const struct crisp_config *cfg)
{
	_cleanup_free_ char *path = xasprintf("%s/" UNPACK_NAME, cfg->helper_dir);

	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		fatal("cannot open %s: %m", path);
	/* Above the fds the child numbers 3.. (child_exec), where no dup3
	 * overwrites it: the seccomp rule for execveat names its number. */
	program_fd = fcntl(fd, F_DUPFD_CLOEXEC, UNPACK_PROGRAM_FD_MIN);
	if (program_fd < 0)
		fatal("cannot move the fd of %s to %d or above: %m", path, UNPACK_PROGRAM_FD_MIN);
	close(fd);
#ifdef CRISP_TEST_HOOKS
	/* Test hooks: crisp-unpack's own (unpack/main.c), and a shorter
	 * watchdog than tests can wait for. */
	static const char *const vars[] = { "CRISP_TEST_UNPACK_DELAY_MS", "CRISP_TEST_UNPACK_REPLY",
					    "CRISP_TEST_UNPACK_PROBE",
					    "CRISP_TEST_UNPACK_ARCHIVE" };
	size_t n = 0;
	const char *v;
	uint64_t ms;

	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		if ((v = getenv(vars[i])))
			child_envp[n++] = xasprintf("%s=%s", vars[i], v);
	v = getenv("CRISP_TEST_UNPACK_SILENCE_MS");
	if (v && parse_uint64(v, 10, UNPACK_SILENCE_MS, &ms) == 0 && ms > 0)
		silence_ms = ms;
#endif
}

int unpack_program_fd(void)
{
	return program_fd;
}

/* In the child, between fork and exec: raw syscalls only. src[i] becomes
 * fd 3 + i; every other fd but 0-2 closes at exec (program_fd too). */
static __attribute__((noreturn)) void child_exec(const int *src, int n, pid_t parent, bool archive)
{
	static const char msg[] = "<3>crisp-imaged: cannot start " UNPACK_NAME "\n";
	char *argv[] = { (char *)UNPACK_NAME, archive ? (char *)UNPACK_ARCHIVE_ARG : NULL, NULL };
	int high[3 + UNPACK_MAX_LOWERS];

	/* First above every target, so that no dup3 overwrites a source. */
	for (int i = 0; i < n; i++)
		if ((high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3 + n)) < 0)
			goto fail;
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	for (int i = 0; i < n; i++)
		if (dup3(high[i], 3 + i, 0) < 0)
			goto fail;
	if (dup3(STDERR_FILENO, STDIN_FILENO, 0) < 0 || dup3(STDERR_FILENO, STDOUT_FILENO, 0) < 0)
		goto fail;
	/* imaged's death is crisp-unpack's. The signal comes when the thread
	 * that forked ends: this worker waits for the child, so only with the
	 * process. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		goto fail;
	/* Capabilities: what imaged has, which exec under no_new_privs keeps
	 * (the bounding set and imaged's permitted set cap it); crisp-unpack
	 * sets and checks exactly the six it needs. */
	syscall(SYS_execveat, program_fd, "", argv, child_envp, AT_EMPTY_PATH);
fail:
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(127);
}

static bool diff_id_valid(const char *s)
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return false;
	for (s += 7; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* A tar entry takes at least one 512-byte header of the stream. */
#define TAR_BLOCK 512

/* The reply, checked: 0 with *res filled, or -1 with err set (the layer's
 * own failure as crisp-unpack reported it, or what is wrong with the
 * reply). */
static int reply_parse(const uint8_t *buf, size_t len, const struct unpack_limits *lim,
		       struct unpack_result *res, struct crisp_error *err)
{
	CrispIpc__UnpackReply *reply = crisp_ipc__unpack_reply__unpack(NULL, len, buf);
	const CrispIpc__UnpackResult *r;
	int ret = -1;

	if (!reply)
		return err_set(err, CRISP_E_INTERNAL,
			       UNPACK_NAME " answered %zu bytes that are no UnpackReply", len);
	if (reply->outcome_case == CRISP_IPC__UNPACK_REPLY__OUTCOME_ERROR && reply->error) {
		const CrispIpc__Error *e = reply->error;
		enum crisp_errcode code = e->code == CRISP_E_INVALID || e->code == CRISP_E_RESOURCE
						  ? (enum crisp_errcode)e->code
						  : CRISP_E_INTERNAL;
		char msg[CRISP_ERRMSG_MAX];
		size_t i = 0;

		/* Its words, but no control character (log lines) and no more
		 * than a message holds. */
		for (const char *s = e->message; *s && i + 1 < sizeof(msg); s++)
			msg[i++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
		msg[i] = '\0';
		err_set(err, code, "%s", i ? msg : UNPACK_NAME " failed without a reason");
		goto out;
	}
	r = reply->result;
	if (reply->outcome_case != CRISP_IPC__UNPACK_REPLY__OUTCOME_RESULT || !r) {
		err_set(err, CRISP_E_INTERNAL,
			UNPACK_NAME " answered neither a result nor an error");
		goto out;
	}
	if (!diff_id_valid(r->diff_id) || r->entries > lim->max_entries ||
	    r->bytes > lim->max_total_bytes || r->content_bytes > lim->max_total_bytes ||
	    r->entries > r->bytes / TAR_BLOCK || r->skipped_xattrs > r->bytes) {
		err_set(err, CRISP_E_INTERNAL,
			UNPACK_NAME " answered an impossible result: DiffID '%.80s', %llu entries, "
				    "%llu bytes, %llu bytes of files, %llu xattrs skipped",
			r->diff_id, (unsigned long long)r->entries, (unsigned long long)r->bytes,
			(unsigned long long)r->content_bytes,
			(unsigned long long)r->skipped_xattrs);
		for (char *p = err->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		goto out;
	}
	memcpy(res->diff_id, r->diff_id, sizeof(res->diff_id));
	res->entries = r->entries;
	res->bytes = r->bytes;
	res->content_bytes = r->content_bytes;
	res->skipped_xattrs = r->skipped_xattrs;
	ret = 0;
out:
	crisp_ipc__unpack_reply__free_unpacked(reply, NULL);
	return ret;
}

/* lim NULL: the archive mode's request, for reading pass archive_pass. */
static int request_send(int sock, size_t n_lowers, const struct unpack_limits *lim,
			unsigned archive_pass, struct crisp_error *err)
{
	CrispIpc__UnpackRequest q = CRISP_IPC__UNPACK_REQUEST__INIT;
	uint8_t buf[UNPACK_MSG_MAX];
	size_t len;

	q.n_lowers = (uint32_t)n_lowers;
	if (lim) {
		q.max_entries = lim->max_entries;
		q.max_path_len = lim->max_path_len;
		q.max_total_bytes = lim->max_total_bytes;
		q.max_xattr_bytes = lim->max_xattr_bytes;
	}
	q.archive_pass = archive_pass;
	q.log_level = (uint32_t)log_get_level();
	len = crisp_ipc__unpack_request__get_packed_size(&q);
	if (len > sizeof(buf))
		return err_set(err, CRISP_E_INTERNAL, "UnpackRequest of %zu bytes", len);
	crisp_ipc__unpack_request__pack(&q, buf);
	if (send(sock, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return err_set_errno(err, CRISP_E_RESOURCE, errno,
				     "queueing the request for " UNPACK_NAME);
	return 0;
}

static void child_kill(int pidfd, pid_t pid)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		log_warn("cannot kill " UNPACK_NAME "[%d]: %m", (int)pid);
}

struct child_watch {
	pid_t pid;
	int pidfd, sock, blob;
	const struct unpack_limits *lim;
	/* what came back */
	bool replied;
	struct unpack_result res;
	struct crisp_error reply_err; /* the reply's error, or what is wrong with it */
	const char *killed_why;
};

/* One datagram from the child, if one is there: its reply, or one too
 * many. */
static void reply_read(struct child_watch *w)
{
	uint8_t buf[UNPACK_MSG_MAX];
	ssize_t n;

	do
		n = recv(w->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0 || n == 0)
		return; /* nothing yet, or the child closed its end */
	if (w->replied) {
		/* A second answer (read once it exited): the first may have
		 * been anything. */
		err_set(&w->reply_err, CRISP_E_INTERNAL, UNPACK_NAME " answered twice");
		return;
	}
	w->replied = true;
	if ((size_t)n > sizeof(buf))
		err_set(&w->reply_err, CRISP_E_INTERNAL,
			UNPACK_NAME " answered a message of %zd bytes", n);
	else
		reply_parse(buf, (size_t)n, w->lim, &w->res, &w->reply_err);
}

/* Until the child exits: its reply, and the watchdog. The exit status in
 * *status (-1 if it could not be had). */
static void child_wait(struct child_watch *w, int *status)
{
	off_t last = 0;
	uint64_t still_ms = 0, after_reply_ms = 0;
	bool sock_done = false; /* read its reply, or it closed its end */

	for (;;) {
		struct pollfd p[2] = { { .fd = w->pidfd, .events = POLLIN },
				       { .fd = w->sock, .events = POLLIN } };
		int n = poll(p, w->replied || sock_done ? 1 : 2, UNPACK_TICK_MS);
		off_t off;

		if (n < 0 && errno != EINTR) {
			log_warn("waiting for " UNPACK_NAME "[%d]: %m", (int)w->pid);
			child_kill(w->pidfd, w->pid);
			break;
		}
		if (n > 0 && (p[1].revents & POLLIN))
			reply_read(w);
		else if (n > 0 && p[1].revents)
			sock_done = true; /* closed without a reply: its exit says why */
		if (n > 0 && p[0].revents)
			break;
		if (n != 0)
			continue;
		/* A tick without news: how far has it read? */
		off = lseek(w->blob, 0, SEEK_CUR);
		if (off != last) {
			last = off;
			still_ms = 0;
		} else {
			still_ms += UNPACK_TICK_MS;
		}
		if (w->replied)
			after_reply_ms += UNPACK_TICK_MS;
		if (!w->killed_why &&
		    (still_ms >= silence_ms || after_reply_ms >= UNPACK_EXIT_MS)) {
			w->killed_why = w->replied ? "did not exit after its reply"
						   : "read nothing of the layer for too long";
			log_warn(UNPACK_NAME "[%d] %s (%llu s): killing it", (int)w->pid,
				 w->killed_why,
				 (unsigned long long)(w->replied ? UNPACK_EXIT_MS : still_ms) /
					 1000);
			child_kill(w->pidfd, w->pid);
		}
	}
	/* Its reply may have come with its exit; or a second one after it. */
	reply_read(w);
	while (waitpid(w->pid, status, 0) < 0) {
		if (errno != EINTR) {
			*status = -1;
			break;
		}
	}
}

int unpack_run(int blob_fd, int root_fd, const int *lowers, size_t n_lowers,
	       const struct unpack_limits *lim_in, struct unpack_result *res,
	       struct crisp_error *err)
{
	struct unpack_limits lim;
	struct child_watch w = { .pidfd = -1, .sock = -1, .blob = blob_fd, .lim = &lim };
	int src[3 + UNPACK_MAX_LOWERS], sv[2], status = 0;
	pid_t parent = getpid();

	if (program_fd < 0)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " was not opened at start");
	if (n_lowers > UNPACK_MAX_LOWERS)
		return err_set(err, CRISP_E_INVALID, "%zu layers below, more than %u", n_lowers,
			       UNPACK_MAX_LOWERS);
	unpack_limits_fill(&lim, lim_in);
	/* From offset 0: the watchdog reads progress from it. */
	if (lseek(blob_fd, 0, SEEK_SET) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "rewinding the layer blob");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "socketpair for " UNPACK_NAME);
	w.sock = sv[0];
	if (request_send(sv[0], n_lowers, &lim, 0, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	src[0] = sv[1];
	src[1] = blob_fd;
	src[2] = root_fd;
	for (size_t i = 0; i < n_lowers; i++)
		src[3 + i] = lowers[i];
	/* fork, with a pidfd: the kill cannot hit a recycled pid. */
	w.pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &w.pidfd, NULL, 0);
	if (w.pid == 0)
		child_exec(src, 3 + (int)n_lowers, parent, false);
	close(sv[1]);
	if (w.pid < 0) {
		close(sv[0]);
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "cannot start " UNPACK_NAME);
	}
	log_debug("started " UNPACK_NAME "[%d] for a layer over %zu others", (int)w.pid, n_lowers);
	child_wait(&w, &status);
	close(w.pidfd);
	close(w.sock);
	if (w.killed_why)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " %s: killed", w.killed_why);
	if (status < 0)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " exited (status unknown)");
	if (WIFSIGNALED(status))
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " exited with signal %d",
			       WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " exited with status %d%s",
			       WEXITSTATUS(status), w.replied ? "" : " without a reply");
	if (!w.replied)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " exited without a reply");
	if (w.reply_err.code != CRISP_E_OK) {
		*err = w.reply_err;
		return -1;
	}
	*res = w.res;
	return 0;
}

/* ---- import archives: crisp-unpack's archive mode ----------------------------- */

/* imaged parses no tar: an import archive is read by "crisp-unpack archive"
 * (unpack/archive.c), which has no capability and no file access, and
 * streams its entries back as ArchiveItem datagrams. The stream is as
 * untrusted as the archive: every item is checked against the protocol
 * (ipc/ipc.proto) and the bounds the caller gives; what breaks them fails
 * the reading, and the child is killed. A child that sends nothing for
 * silence_ms is killed too; one blocked because imaged is busy is not
 * watched (imaged is not waiting on it then). */

struct archive_reader {
	pid_t pid;
	int pidfd, sock;
	uint64_t max_entries, max_size, entries;
	uint64_t left;      /* data bytes the current regular entry still owes */
	char *name, *link;  /* the current entry's */
	bool ended, failed; /* the child said "end", or we gave up on it */
	CrispIpc__ArchiveItem *item;
	uint8_t buf[UNPACK_ARCHIVE_MSG_MAX + 1];
};

struct archive_reader *archive_reader_open(int fd, unsigned pass, uint64_t max_entries,
					   uint64_t max_size, struct crisp_error *err)
{
	struct archive_reader *r;
	int sv[2], src[2];
	pid_t parent = getpid();

	if (program_fd < 0)
		return err_set(err, CRISP_E_INTERNAL, UNPACK_NAME " was not opened at start"), NULL;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "rewinding the archive"), NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "socketpair for " UNPACK_NAME),
		       NULL;
	if (request_send(sv[0], 0, NULL, pass, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->sock = sv[0];
	r->pidfd = -1;
	r->max_entries = max_entries;
	r->max_size = max_size;
	src[0] = sv[1];
	src[1] = fd;
	r->pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &r->pidfd, NULL, 0);
	if (r->pid == 0)
		child_exec(src, 2, parent, true);
	close(sv[1]);
	if (r->pid < 0) {
		err_set_errno(err, CRISP_E_RESOURCE, errno, "cannot start " UNPACK_NAME);
		close(r->sock);
		free(r);
		return NULL;
	}
	log_debug("started " UNPACK_NAME "[%d] to read an import archive (pass %u)", (int)r->pid,
		  pass);
	return r;
}

/* The reader gives up: the child's stream is wrong, or its reading failed. */
static int reader_fail(struct archive_reader *r, struct crisp_error *err, enum crisp_errcode code,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int reader_fail(struct archive_reader *r, struct crisp_error *err, enum crisp_errcode code,
		       const char *fmt, ...)
{
	char msg[CRISP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The child's words (names, libarchive's reasons) go to logs and
	 * clients: no control characters. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	r->failed = true;
	return err_set(err, code, "%s", msg);
}

#define VIOLATION UNPACK_NAME " broke the archive protocol: "

/* The next item, checked as a datagram and a message; 0 or -1. */
static int item_next(struct archive_reader *r, struct crisp_error *err)
{
	struct pollfd p = { .fd = r->sock, .events = POLLIN };
	ssize_t n;
	int k;

	if (r->item)
		crisp_ipc__archive_item__free_unpacked(r->item, NULL);
	r->item = NULL;
	do
		k = poll(&p, 1, (int)silence_ms);
	while (k < 0 && errno == EINTR);
	if (k == 0) {
		log_warn(UNPACK_NAME "[%d] sent nothing of the archive for %llu s: killing it",
			 (int)r->pid, (unsigned long long)silence_ms / 1000);
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   UNPACK_NAME " sent nothing of the archive for too long: killed");
	}
	do
		n = recv(r->sock, r->buf, sizeof(r->buf), MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   UNPACK_NAME " stopped in the middle of the archive");
	if (n < 0)
		return reader_fail(r, err, CRISP_E_INTERNAL, "reading from " UNPACK_NAME ": %s",
				   strerror(errno));
	if ((size_t)n > UNPACK_ARCHIVE_MSG_MAX)
		return reader_fail(r, err, CRISP_E_INTERNAL, VIOLATION "a message of %zd bytes", n);
	r->item = crisp_ipc__archive_item__unpack(NULL, (size_t)n, r->buf);
	if (!r->item)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "%zd bytes that are no ArchiveItem", n);
	return 0;
}

/* A name or link target: NULL when empty, else a string of at most
 * UNPACK_ARCHIVE_NAME_MAX bytes without NUL. */
static int name_take(struct archive_reader *r, const ProtobufCBinaryData *b, char **out,
		     struct crisp_error *err)
{
	*out = NULL;
	if (b->len == 0)
		return 0;
	if (b->len > UNPACK_ARCHIVE_NAME_MAX || memchr(b->data, '\0', b->len))
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "a name of %zu bytes or with a NUL", b->len);
	*out = xmalloc(b->len + 1);
	memcpy(*out, b->data, b->len);
	(*out)[b->len] = '\0';
	return 0;
}

/* A failure the child reported, in the words of the stage it met it in. */
static int failure_report(struct archive_reader *r, struct crisp_error *err)
{
	const CrispIpc__ArchiveFailure *f = r->item->failure;
	char why[256];
	size_t n = f && f->reason.len < sizeof(why) ? f->reason.len : sizeof(why) - 1;

	if (!f)
		return reader_fail(r, err, CRISP_E_INTERNAL, VIOLATION "an empty failure");
	if (n)
		memcpy(why, f->reason.data, n);
	why[n] = '\0'; /* a NUL inside ends it early: shown, never parsed */
	if (!why[0])
		snprintf(why, sizeof(why), "unreadable data");
	if (r->left > 0 || f->stage == CRISP_IPC__ARCHIVE_FAILURE__STAGE__DATA)
		return reader_fail(r, err, CRISP_E_INVALID,
				   "archive entry '%.200s' cannot be read (truncated?): %s",
				   r->name ? r->name : "", why);
	if (f->stage == CRISP_IPC__ARCHIVE_FAILURE__STAGE__OPEN && r->entries == 0)
		return reader_fail(r, err, CRISP_E_INVALID, "not a tar archive: %s", why);
	return reader_fail(r, err, CRISP_E_INVALID,
			   "the archive cannot be read (truncated or corrupt?): %s", why);
}

int archive_reader_data(struct archive_reader *r, const void **p, size_t *n,
			struct crisp_error *err)
{
	if (r->failed)
		return err_set(err, CRISP_E_INTERNAL, "the archive reader failed before");
	if (r->left == 0)
		return 0;
	if (item_next(r, err) < 0)
		return -1;
	if (r->item->item_case == CRISP_IPC__ARCHIVE_ITEM__ITEM_FAILURE)
		return failure_report(r, err);
	if (r->item->item_case != CRISP_IPC__ARCHIVE_ITEM__ITEM_DATA)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "entry '%.200s' ended %llu bytes short of its size",
				   r->name ? r->name : "", (unsigned long long)r->left);
	if (r->item->data.len == 0 || r->item->data.len > UNPACK_ARCHIVE_CHUNK ||
	    r->item->data.len > r->left)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "%zu bytes of data for entry '%.200s', which has "
					     "%llu left",
				   r->item->data.len, r->name ? r->name : "",
				   (unsigned long long)r->left);
	r->left -= r->item->data.len;
	*p = r->item->data.data;
	*n = r->item->data.len;
	return 1;
}

int archive_reader_next(struct archive_reader *r, struct archive_reader_entry *e,
			struct crisp_error *err)
{
	const CrispIpc__ArchiveEntry *ae;
	const void *p;
	size_t n;
	int k;

	if (r->failed)
		return err_set(err, CRISP_E_INTERNAL, "the archive reader failed before");
	if (r->ended)
		return 0;
	/* What the caller did not read of the last entry. */
	while ((k = archive_reader_data(r, &p, &n, err)) > 0)
		;
	if (k < 0)
		return -1;
	free(r->name);
	free(r->link);
	r->name = r->link = NULL;
	if (item_next(r, err) < 0)
		return -1;
	switch (r->item->item_case) {
	case CRISP_IPC__ARCHIVE_ITEM__ITEM_END:
		r->ended = true;
		return 0;
	case CRISP_IPC__ARCHIVE_ITEM__ITEM_FAILURE:
		return failure_report(r, err);
	case CRISP_IPC__ARCHIVE_ITEM__ITEM_ENTRY:
		break;
	default:
		return reader_fail(r, err, CRISP_E_INTERNAL, VIOLATION "data outside an entry");
	}
	ae = r->item->entry;
	if (++r->entries > r->max_entries)
		return reader_fail(r, err, CRISP_E_INTERNAL, VIOLATION "more than %llu entries",
				   (unsigned long long)r->max_entries);
	if (name_take(r, &ae->name, &r->name, err) < 0 ||
	    name_take(r, &ae->link, &r->link, err) < 0)
		return -1;
	switch (ae->type) {
	case CRISP_IPC__ARCHIVE_ENTRY__TYPE__REGULAR:
		e->type = ARCHIVE_READER_REGULAR;
		break;
	case CRISP_IPC__ARCHIVE_ENTRY__TYPE__DIRECTORY:
		e->type = ARCHIVE_READER_DIRECTORY;
		break;
	case CRISP_IPC__ARCHIVE_ENTRY__TYPE__SYMLINK:
		e->type = ARCHIVE_READER_SYMLINK;
		break;
	case CRISP_IPC__ARCHIVE_ENTRY__TYPE__HARDLINK:
		e->type = ARCHIVE_READER_HARDLINK;
		break;
	default:
		e->type = ARCHIVE_READER_OTHER;
		break;
	}
	if (e->type != ARCHIVE_READER_REGULAR && ae->size != 0)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "a size for an entry that carries no data");
	if (ae->size > r->max_size)
		return reader_fail(r, err, CRISP_E_INTERNAL,
				   VIOLATION "an entry of %llu bytes, more than %llu",
				   (unsigned long long)ae->size, (unsigned long long)r->max_size);
	e->name = r->name;
	e->link = r->link;
	e->size = ae->size;
	r->left = ae->size;
	return 1;
}

int archive_reader_close(struct archive_reader *r, struct crisp_error *err)
{
	struct pollfd p;
	bool clean;
	int status = -1, k;

	if (!r)
		return 0;
	p = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	clean = r->ended && !r->failed;
	if (r->item)
		crisp_ipc__archive_item__free_unpacked(r->item, NULL);
	/* After its end, the child only exits; anything more it says is a
	 * violation. Otherwise it is not needed any more. */
	if (clean && recv(r->sock, r->buf, 1, MSG_DONTWAIT | MSG_TRUNC) > 0) {
		err_set(err, CRISP_E_INTERNAL, VIOLATION "items after its end");
		clean = false;
	}
	if (!clean)
		child_kill(r->pidfd, r->pid);
	do
		k = poll(&p, 1, UNPACK_EXIT_MS);
	while (k < 0 && errno == EINTR);
	if (k == 0) {
		log_warn(UNPACK_NAME "[%d] did not exit after the archive: killing it",
			 (int)r->pid);
		child_kill(r->pidfd, r->pid);
	}
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (clean && err->code == CRISP_E_OK && status != 0)
		err_set(err, CRISP_E_INTERNAL,
			UNPACK_NAME " did not exit cleanly after the archive (wait status %d)",
			status);
	close(r->pidfd);
	close(r->sock);
	free(r->name);
	free(r->link);
	free(r);
	return err->code == CRISP_E_OK ? 0 : -1;
}
