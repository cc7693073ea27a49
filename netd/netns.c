/* Pod network namespaces. Each is created by a short-lived thread that
 * unshares its own network namespace, brings its loopback up, and pins it
 * with a bind mount of /proc/thread-self/ns/net onto <state_dir>/netns/<id>
 * (a file created O_EXCL), then exits: the namespace lives on through the
 * mount. netd runs in the host's mount namespace, so the pin is visible to
 * runc and to `ip netns exec`-style tools. Port-forward connections are
 * made the same way: a thread enters the pod's namespace, connects, exits.
 * Threads never serve anything else once they changed namespace. The
 * worker threads below also carry the fsyncs of netd's records (cache.c),
 * so that no disk wait stalls the loop. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "netd/netd.h"

int netns_dir_init(const char *state_dir, struct crisp_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/netns", state_dir);

	if (mkdir_p(dir, 0711) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot create %s", dir);
	if (chmod(dir, 0711) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chmod %s", dir);
	return 0;
}

/* Loopback up, as the CNI loopback plugin would do (containerd runs it on
 * every pod); one ioctl needs no exec. */
static int loopback_up(struct crisp_error *err)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "loopback of the new netns");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "bringing lo up in the netns");
	return 0;
}

/* Call from a thread that exits afterwards: it leaves the host's netns. */
int netns_create(const char *path, struct crisp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);

	if (fd < 0)
		return err_set_errno(err, errno == EEXIST ? CRISP_E_EXISTS : CRISP_E_INTERNAL,
				     errno, "cannot create the netns pin %s", path);
	if (unshare(CLONE_NEWNET) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "unshare(CLONE_NEWNET)");
		goto fail;
	}
	if (loopback_up(err) < 0)
		goto fail;
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "bind mount of the netns on %s", path);
		goto fail;
	}
	return 0;
fail:
	unlink(path);
	return -1;
}

/* A pin with a network namespace mounted on it. netns_create() makes the
 * pin file before it mounts the netns there: a netd killed in between
 * leaves a plain file, which CNI plugins refuse as CNI_NETNS ("unknown FS
 * magic"), so a DEL for it must go without one. */
bool netns_exists(const char *path)
{
	struct statfs sf;

	return path && *path && statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

int netns_remove(const char *path, struct crisp_error *err)
{
	/* MNT_DETACH: a process inside still keeps its namespace; the pin goes.
	 * EINVAL: not mounted (an unmounted leftover of a crash mid-create). */
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "unmounting %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "removing %s", path);
	return 0;
}

static int connect_one(int family, uint16_t port, unsigned timeout_ms, int *ret_fd,
		       struct crisp_error *err)
{
	struct sockaddr_in in4 = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6,
				    .sin6_port = htons(port),
				    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd pfd;
	int r, soerr = 0;
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "socket");
	if (family == AF_INET)
		r = connect(fd, (struct sockaddr *)&in4, sizeof(in4));
	else
		r = connect(fd, (struct sockaddr *)&in6, sizeof(in6));
	if (r < 0 && errno != EINPROGRESS)
		return err_set_errno(err, CRISP_E_UNAVAILABLE, errno, "connect");
	if (r < 0) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		r = poll(&pfd, 1, (int)timeout_ms);
		if (r == 0)
			return err_set(err, CRISP_E_TIMEOUT, "connect timed out after %u ms",
				       timeout_ms);
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "connect");
		if (soerr)
			return err_set_errno(err, CRISP_E_UNAVAILABLE, soerr, "connect");
	}
	fd_set_nonblock(fd, false);
	*ret_fd = fd;
	fd = -1;
	return 0;
}

/* Call from a thread that exits afterwards: it enters the pod's netns.
 * path NULL: a pod on the host's network, whose loopback is this one. */
int netns_connect(const char *path, uint16_t port, unsigned timeout_ms, int *ret_fd,
		  struct crisp_error *err)
{
	_cleanup_close_ int ns = -1;
	struct crisp_error err6;

	if (path && (ns = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL,
				     errno, "opening the pod netns %s", path);
	if (path && setns(ns, CLONE_NEWNET) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "entering the pod netns");
	if (connect_one(AF_INET, port, timeout_ms, ret_fd, err) == 0)
		return 0;
	if (connect_one(AF_INET6, port, timeout_ms, ret_fd, &err6) == 0)
		return 0;
	return err_prefix(err, "port %u %s: 127.0.0.1: %s; [::1]", port,
			  path ? "in the pod" : "on the host (host network)", err6.msg);
}

/* ---- work on threads ------------------------------------------------------ */

/* Two kinds of job share the completion pipe. work_start's (netns
 * creation, port-forward connects) are refused past WORK_MAX: a flood of
 * requests must not exhaust threads, and the caller can answer "try again".
 * work_queue's (the durable record writes, cache.c) belong to an operation
 * already under way that cannot be answered "try again" halfway, so past
 * WORK_QUEUE_MAX they wait their turn in submission order; they have their
 * own budget so a burst of record writes never makes a netns creation or a
 * port-forward connect fail. */
struct work {
	void (*fn)(void *);
	void (*done)(void *);
	void *arg;
	bool queued; /* work_queue's */
	struct work *next;
};

static struct {
	int pipe[2];
	struct event *ev;
	unsigned running;        /* work_start's jobs on a thread */
	unsigned queued_running; /* work_queue's jobs on a thread */
	struct work *waiting;    /* work_queue's jobs not started yet, oldest first */
	struct work **waiting_tail;
	struct event *retry; /* a thread could not be started: try again later */
	bool create_failing; /* logged once per streak of failures */
} work;

static void work_pump(void);

static void on_work_done(evutil_socket_t fd, short what, void *arg)
{
	struct work *w;

	for (;;) {
		ssize_t n = read(fd, &w, sizeof(w));

		if (n != sizeof(w))
			break;
		if (w->queued)
			work.queued_running--;
		else
			work.running--;
		w->done(w->arg);
		free(w);
	}
	work_pump();
}

static void on_work_retry(evutil_socket_t fd, short what, void *arg)
{
	work_pump();
}

void work_init(struct event_base *base)
{
	if (pipe2(work.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe: %m");
	work.ev = event_new(base, work.pipe[0], EV_READ | EV_PERSIST, on_work_done, NULL);
	work.retry = evtimer_new(base, on_work_retry, NULL);
	if (!work.ev || !work.retry)
		fatal("cannot make the work events");
	event_add(work.ev, NULL);
	work.waiting_tail = &work.waiting;
}

static void *work_thread(void *arg)
{
	struct work *w = arg;
	ssize_t n;

	w->fn(w->arg);
	/* a pointer is written atomically (< PIPE_BUF); the pipe is
	 * non-blocking for the loop's sake, so retry if it is full */
	while ((n = write(work.pipe[1], &w, sizeof(w))) != sizeof(w))
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			fatal("work pipe: %m");
		else
			usleep(1000);
	return NULL;
}

static int work_thread_start(struct work *w)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, work_thread, w);
	pthread_attr_destroy(&attr);
	return r;
}

/* Start waiting queued jobs while their budget allows. A thread that cannot
 * be started (EAGAIN: a thread limit, memory) is tried again in 100 ms;
 * the job keeps its place, so those behind it wait too. */
static void work_pump(void)
{
	static const struct timeval again = { 0, 100 * 1000 };

	while (work.waiting && work.queued_running < WORK_QUEUE_MAX) {
		struct work *w = work.waiting;
		int r = work_thread_start(w);

		if (r != 0) {
			if (!work.create_failing)
				log_warn("cannot start a thread for a record write (%s): "
					 "retrying",
					 strerror(r));
			work.create_failing = true;
			evtimer_add(work.retry, &again);
			return;
		}
		if (work.create_failing)
			log_info("threads start again");
		work.create_failing = false;
		work.waiting = w->next;
		if (!work.waiting)
			work.waiting_tail = &work.waiting;
		work.queued_running++;
	}
}

void work_queue(void (*fn)(void *), void (*done)(void *), void *arg)
{
	struct work *w = xmalloc(sizeof(*w));

	*w = (struct work){ .fn = fn, .done = done, .arg = arg, .queued = true };
	*work.waiting_tail = w;
	work.waiting_tail = &w->next;
	work_pump();
}

int work_start(void (*fn)(void *), void (*done)(void *), void *arg, struct crisp_error *err)
{
	struct work *w;
	int r;

	/* bounded: a flood of requests must not exhaust threads */
	if (work.running >= WORK_MAX)
		return err_set(err, CRISP_E_RESOURCE,
			       "%u network operations in progress: try again", work.running);
	w = xmalloc(sizeof(*w));
	*w = (struct work){ .fn = fn, .done = done, .arg = arg };
	r = work_thread_start(w);
	if (r != 0) {
		free(w);
		return err_set_errno(err, CRISP_E_RESOURCE, r, "cannot start a thread");
	}
	work.running++;
	return 0;
}
