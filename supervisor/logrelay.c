/* crispd's log relay (see logrelay.h). The output form of a line a child
 * wrote as "<P>TEXT" is
 *
 *	<P'>crisp-NAME[PID]: TEXT'
 *
 * NAME and PID are crispd's: the program it started on that pipe and the pid
 * fork() gave it. P' is the child's own priority P when the line starts with
 * "<0>" to "<7>", but never above crit (see prio_of()); a line without one
 * gets LOGRELAY_DEFAULT_PRIO. TEXT' is TEXT without the child's own
 * "crisp-NAME[PID]: " when that prefix is exactly the one crispd expects, so
 * that ordinary lines read as they did when every process wrote to crispd's
 * stderr itself; any other prefix stays, so a forged one shows as such:
 * "<6>crisp-imaged[77]: crisp-frontend[12]: audit: ...". Control characters
 * are escaped (escape_into()).
 *
 * Nothing here blocks crispd's loop, and nothing is dropped while crispd's
 * stderr takes it: lines read from the pipes are formatted into one output
 * buffer that is written without blocking; when crispd's stderr does not
 * take them as fast as they come (journald stuck or slow), the buffer fills
 * and crispd stops reading every pipe until it drained. The children then
 * fill their pipes and block in write(2) in common/log.c, as every process
 * did on a stuck stderr before the relay: the back-pressure reaches the
 * writers, no line is thrown away, and crispd's loop goes on pinging and
 * restarting. (crispd's own lines, written by common/log.c, still block
 * crispd on a stuck stderr, as before.) Memory is bounded: one line per
 * pipe and OUT_MAX in all. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/logrelay.h"

/* For a line with no priority of its own: not written through log_msg()
 * (a libc abort message, a sanitizer report), so worth a look. */
#define LOGRELAY_DEFAULT_PRIO LOG_NOTICE
/* Formatted lines not yet written to crispd's stderr. */
#define OUT_MAX (64 * 1024)
/* Reading resumes once the output is back under this. */
#define OUT_RESUME (OUT_MAX / 2)
/* How long the pipe of a child that died is read on: its launcher and
 * crisp-fetch die with it (parent-death signals), so its end comes within
 * milliseconds; a process that still holds it after this is no crisp
 * process of its own accord (a helper taken over could have handed its
 * stderr to a detached program), and must not keep an fd of crispd's. */
#define DRAIN_MS 2000
/* Reads of a dead child's pipe at once: its 64 KiB and some. */
#define DRAIN_READS 32

struct logrelay {
	struct logrelay *next;
	const char *name;
	pid_t pid;
	int fd;
	struct event *ev, *drain_timer;
	bool eof;
	bool ended;     /* the child was reaped */
	bool continued; /* in[] starts with the rest of a cut line */
	size_t inlen;
	char in[LOGRELAY_LINE_MAX];
};

static struct {
	struct event_base *base;
	struct logrelay *all;
	int out_fd;
	bool out_socket; /* send(MSG_DONTWAIT) on crispd's own fd 2 */
	struct event *out_ev;
	bool out_ev_is_timer;
	bool stalled;   /* no pipe is read until the output drained */
	bool finishing; /* crispd is exiting: writes may block */
	size_t outlen;
	char out[OUT_MAX];
} R = { .out_fd = STDERR_FILENO };

/* ---- the line format ------------------------------------------------------ */

/* A child may not claim emerg or alert: journald sends emerg lines to every
 * terminal (ForwardToWall), and no crisp process logs above crit. */
static int prio_of(const char *line, size_t len, size_t *skip)
{
	*skip = 0;
	if (len >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
		*skip = 3;
		return line[1] - '0' < LOG_CRIT ? LOG_CRIT : line[1] - '0';
	}
	return LOGRELAY_DEFAULT_PRIO;
}

/* C0 controls but tab, DEL, and the UTF-8 form of C1 controls (C2 80 to C2
 * 9F) become "\xNN": NUL cuts journald's and syslog's fields, escape
 * sequences rewrite terminals (hide a line, move the cursor), and a carriage
 * return overwrites what a terminal showed. Backslashes and all other bytes
 * stay, so that ordinary lines are unchanged. */
static size_t escape_into(char *out, const unsigned char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		bool c1 = s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f;
		bool ctl = (s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f;

		if (!ctl && !c1 && !(i > 0 && s[i - 1] == 0xc2 && s[i] >= 0x80 && s[i] <= 0x9f)) {
			out[n++] = (char)s[i];
			continue;
		}
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[s[i] >> 4];
		out[n++] = hex[s[i] & 0xf];
	}
	return n;
}

size_t logrelay_format(char *out, const char *name, pid_t pid, const char *line, size_t len,
		       bool continued)
{
	char own[LOGRELAY_NAME_MAX + 32], head[LOGRELAY_NAME_MAX + 64];
	size_t skip = 0, ownlen;
	int prio = LOGRELAY_DEFAULT_PRIO, n;

	if (len > LOGRELAY_LINE_MAX)
		len = LOGRELAY_LINE_MAX;
	/* The piece after a cut is the middle of a line: what it starts with
	 * is no priority and no prefix. */
	if (!continued)
		prio = prio_of(line, len, &skip);
	ownlen = (size_t)snprintf(own, sizeof(own), "%.*s[%d]: ", LOGRELAY_NAME_MAX, name,
				  (int)pid);
	if (!continued && len - skip >= ownlen && memcmp(line + skip, own, ownlen) == 0)
		skip += ownlen;
	n = snprintf(head, sizeof(head), "<%d>%s%s", prio, own, continued ? "[continued] " : "");
	memcpy(out, head, (size_t)n);
	n += (int)escape_into(out + n, (const unsigned char *)line + skip, len - skip);
	out[n++] = '\n';
	return (size_t)n;
}

/* ---- writing to crispd's stderr ------------------------------------------- */

static void relay_resume(void);

static void out_wait(void)
{
	struct timeval tv = { 0, 100 * 1000 };

	if (R.out_ev && !event_pending(R.out_ev, EV_WRITE | EV_TIMEOUT, NULL))
		event_add(R.out_ev, R.out_ev_is_timer ? &tv : NULL);
}

static ssize_t out_write(const char *buf, size_t len)
{
	if (R.out_socket)
		return send(R.out_fd, buf, len, (R.finishing ? 0 : MSG_DONTWAIT) | MSG_NOSIGNAL);
	return write(R.out_fd, buf, len);
}

/* Write what the buffer holds, as far as crispd's stderr takes it now (all
 * of it, blocking, while finishing). */
static void out_flush(void)
{
	size_t done = 0;

	while (done < R.outlen) {
		ssize_t n = out_write(R.out + done, R.outlen - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (R.finishing) {
				struct pollfd pfd = { .fd = R.out_fd, .events = POLLOUT };
				(void)poll(&pfd, 1, -1);
				continue;
			}
			out_wait();
			break;
		}
		/* EPIPE, EBADF, EIO: crispd's stderr is gone, and crispd's
		 * own lines with it; nothing can be written anywhere. */
		done = R.outlen;
	}
	if (done > 0) {
		memmove(R.out, R.out + done, R.outlen - done);
		R.outlen -= done;
	}
	/* Reading resumes from the loop, never from inside a pump. */
	if (R.stalled && R.outlen <= OUT_RESUME && R.out_ev && !R.finishing)
		event_active(R.out_ev, R.out_ev_is_timer ? EV_TIMEOUT : EV_WRITE, 0);
}

static void on_out_ready(evutil_socket_t fd, short what, void *arg)
{
	out_flush();
	if (R.stalled && R.outlen <= OUT_RESUME)
		relay_resume();
}

void logrelay_init(struct event_base *base)
{
	struct stat st;

	R.base = base;
	if (fstat(STDERR_FILENO, &st) < 0)
		return; /* no stderr: writes fail EBADF and are dropped, as crispd's own */
	if (S_ISSOCK(st.st_mode)) {
		/* journald's stream: send() takes MSG_DONTWAIT per call. */
		R.out_socket = true;
	} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		/* A pipe or a terminal: O_NONBLOCK on fd 2 itself would change
		 * the file description crispd shares with whoever started it
		 * (a shell's terminal); a description of our own is opened
		 * instead. Should that fail, the relay writes to fd 2 as
		 * crispd's own lines do: it may then block on a stuck stderr. */
		int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0)
			R.out_fd = fd;
	}
	/* A regular file never says EAGAIN (and epoll refuses it): a timer
	 * would retry should it ever. */
	R.out_ev_is_timer = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	R.out_ev = R.out_ev_is_timer ? evtimer_new(base, on_out_ready, NULL)
				     : event_new(base, R.out_fd, EV_WRITE, on_out_ready, NULL);
}

/* ---- reading the pipes ----------------------------------------------------- */

static bool out_room(size_t len)
{
	return OUT_MAX - R.outlen >= 4 * len + LOGRELAY_NAME_MAX + 64;
}

static void emit(struct logrelay *r, size_t len, bool cut)
{
	R.outlen += logrelay_format(R.out + R.outlen, r->name, r->pid, r->in, len, r->continued);
	r->continued = cut;
}

/* Format the complete lines of r->in (and, at its end, what is left), as
 * long as the output has room; false when it ran out (stalled). */
static bool relay_pump(struct logrelay *r)
{
	while (r->inlen > 0) {
		char *nl = memchr(r->in, '\n', r->inlen);
		size_t len = nl ? (size_t)(nl - r->in) : r->inlen;

		if (!nl && r->inlen < sizeof(r->in) && !r->eof)
			return true; /* the rest of the line is still to come */
		if (!out_room(len)) {
			out_flush();
			if (!out_room(len))
				return false;
		}
		/* No newline: the buffer is full (cut the line here) or the
		 * pipe ended in the middle of a line (its writer died). */
		emit(r, len, !nl && !r->eof);
		if (nl)
			len++;
		memmove(r->in, r->in + len, r->inlen - len);
		r->inlen -= len;
	}
	return true;
}

/* Freed only once its child was reaped (proc.c holds it until then), every
 * writer closed the pipe, and its last piece went out. */
static bool relay_done(const struct logrelay *r)
{
	return r->ended && r->eof && r->inlen == 0;
}

static void relay_free(struct logrelay *r)
{
	for (struct logrelay **pp = &R.all; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (r->ev)
		event_free(r->ev);
	if (r->drain_timer)
		event_free(r->drain_timer);
	safe_close(r->fd);
	free(r);
}

/* Stop reading every pipe: the children block on their writes meanwhile. */
static void relay_stall(void)
{
	R.stalled = true;
	for (struct logrelay *r = R.all; r; r = r->next)
		if (r->ev)
			event_del(r->ev);
	out_wait();
}

/* One read of r's pipe, formatted as far as the output takes it. false if
 * nothing more can be read now (empty, ended, or stalled). */
static bool relay_read(struct logrelay *r)
{
	ssize_t n;

	if (r->eof || R.stalled || r->inlen == sizeof(r->in))
		return false;
	n = read(r->fd, r->in + r->inlen, sizeof(r->in) - r->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) {
		/* Every writer closed it (or it broke: treated alike). */
		if (n < 0)
			log_err("reading the log pipe of %s (pid %d): %m", r->name, (int)r->pid);
		r->eof = true;
		event_del(r->ev);
	} else {
		r->inlen += (size_t)n;
	}
	if (!relay_pump(r))
		relay_stall();
	return n > 0 && !R.stalled;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct logrelay *r = arg;

	/* One read per wakeup: a child that floods gets its turn like the
	 * others, and the loop its turn between them. */
	relay_read(r);
	out_flush();
	if (relay_done(r))
		relay_free(r);
}

static void relay_resume(void)
{
	struct logrelay *next;

	R.stalled = false;
	for (struct logrelay *r = R.all; r && !R.stalled; r = r->next)
		if (!relay_pump(r))
			relay_stall();
	if (R.stalled)
		return;
	for (struct logrelay *r = R.all; r; r = next) {
		next = r->next;
		if (relay_done(r))
			relay_free(r);
		else if (!r->eof && r->pid > 0)
			event_add(r->ev, NULL);
	}
}

int logrelay_open(struct logrelay **ret, const char *name, struct crisp_error *err)
{
	struct logrelay *r;
	int p[2];

	if (strlen(name) > LOGRELAY_NAME_MAX)
		return err_set(err, CRISP_E_INTERNAL, "log relay: name '%s' is too long", name);
	/* Only crispd's end is non-blocking: the child's writes block on a
	 * full pipe, which is the back-pressure described above. */
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set_errno(err, CRISP_E_RESOURCE, errno, "log pipe for %s", name);
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return err_set_errno(err, CRISP_E_INTERNAL, e, "log pipe for %s: O_NONBLOCK", name);
	}
	r = xcalloc(1, sizeof(*r));
	r->name = name;
	r->fd = p[0];
	r->ev = event_new(R.base, r->fd, EV_READ | EV_PERSIST, on_readable, r);
	r->next = R.all;
	R.all = r;
	*ret = r;
	return p[1];
}

void logrelay_started(struct logrelay *r, pid_t pid)
{
	r->pid = pid;
	if (!R.stalled)
		event_add(r->ev, NULL);
}

void logrelay_abandon(struct logrelay *r)
{
	relay_free(r);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct logrelay *r = arg;

	for (int i = 0; i < DRAIN_READS && relay_read(r); i++)
		;
	if (!r->eof) {
		/* Lines still unread while the output is stalled are lost
		 * with the pipe: say so rather than keep the fd. */
		log_warn("the log pipe of %s (pid %d) is still open %d ms after it died%s; "
			 "closing it",
			 r->name, (int)r->pid, DRAIN_MS,
			 R.stalled ? ", and what it holds could not be read" : "");
		r->eof = true;
		event_del(r->ev);
		if (!relay_pump(r))
			relay_stall();
		out_flush();
	}
	if (relay_done(r))
		relay_free(r);
	/* else: relay_resume() frees it once its last piece is out */
}

void logrelay_ended(struct logrelay *r)
{
	struct timeval tv = { DRAIN_MS / 1000, (DRAIN_MS % 1000) * 1000 };

	r->ended = true;
	for (int i = 0; i < DRAIN_READS && relay_read(r); i++)
		;
	out_flush();
	if (relay_done(r)) {
		relay_free(r);
		return;
	}
	r->drain_timer = evtimer_new(R.base, on_drain_timeout, r);
	evtimer_add(r->drain_timer, &tv);
}

void logrelay_finish(int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	R.finishing = true;
	R.stalled = false;
	for (;;) {
		struct pollfd pfd[16];
		struct logrelay *rs[16];
		nfds_t n = 0;
		uint64_t now = now_ms();

		for (struct logrelay *r = R.all; r && n < ARRAY_SIZE(pfd); r = r->next) {
			if (r->eof)
				continue;
			pfd[n] = (struct pollfd){ .fd = r->fd, .events = POLLIN };
			rs[n++] = r;
		}
		if (n == 0 || now >= deadline || poll(pfd, n, (int)(deadline - now)) <= 0)
			break;
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents)
				relay_read(rs[i]);
	}
	/* Lines cut short by the exit are written as they are. */
	for (struct logrelay *r = R.all; r; r = r->next) {
		r->eof = true;
		relay_pump(r);
	}
	out_flush();
	while (R.all)
		relay_free(R.all);
	if (R.out_ev)
		event_free(R.out_ev);
	R.out_ev = NULL;
	if (R.out_fd != STDERR_FILENO)
		R.out_fd = safe_close(R.out_fd);
}
