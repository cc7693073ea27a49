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
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/ipc.pb-c.h"
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

int userns_dir_init(const char *state_dir, struct crisp_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/userns", state_dir);

	if (mkdir_p(dir, 0711) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot create %s", dir);
	if (chmod(dir, 0711) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "chmod %s", dir);
	return 0;
}

/* The same rules as spec_userns_check() in runtimed/spec.c, which the
 * frontend's request went through at the reservation; netd checks again
 * because it writes the maps with CAP_SETUID and must never map the
 * host's root into a pod. Duplicated rather than shared: runtimed's check
 * words its errors for the CRI field and takes the whole NamespaceOption. */
int idmap_from_cri(const char *which, size_t n, Runtime__V1__IDMapping *const *maps,
		   struct idmap *ret, struct crisp_error *err)
{
	const Runtime__V1__IDMapping *m = n == 1 ? maps[0] : NULL;

	if (n != 1)
		return err_set(err, CRISP_E_INVALID,
			       "a user namespace needs exactly one %s mapping, got %zu", which, n);
	if (!m)
		return err_set(err, CRISP_E_INVALID, "the %s mapping is empty", which);
	if (m->length == 0)
		return err_set(err, CRISP_E_INVALID, "the %s mapping maps no id (length 0)", which);
	if ((uint64_t)m->host_id + m->length > UINT32_MAX ||
	    (uint64_t)m->container_id + m->length > UINT32_MAX)
		return err_set(err, CRISP_E_INVALID,
			       "the %s mapping %u+%u or %u+%u passes the last id 4294967294", which,
			       m->host_id, m->length, m->container_id, m->length);
	if (m->host_id == 0)
		return err_set(err, CRISP_E_INVALID,
			       "the %s mapping's host range %u-%u holds the host's %s 0", which,
			       m->host_id, m->length - 1, which);
	if (m->container_id != 0)
		return err_set(err, CRISP_E_INVALID,
			       "the %s mapping does not map the pod's %s 0 (it starts at %u)",
			       which, which, m->container_id);
	*ret = (struct idmap){ .container_id = m->container_id,
			       .host_id = m->host_id,
			       .length = m->length };
	return 0;
}

/* What the child of netns_userns_create reports on its pipe: one byte per
 * step, or a failed step's errno. */
enum {
	USERNS_CHILD_IN_USERNS = 'u',
	USERNS_CHILD_IN_NETNS = 'n',
	USERNS_CHILD_FAILED = 'x',
};

/* One report on the socket; the last, USERNS_CHILD_IN_NETNS, carries the
 * child's two namespaces as fds (nfds 2). */
static void child_report(int fd, char what, int errnum, const int *fds, size_t nfds)
{
	unsigned char msg[2] = { (unsigned char)what, (unsigned char)(errnum & 0xff) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u = { 0 };
	struct iovec iov = { msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	(void)!sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* The child: a copy of a multi-threaded netd, so nothing but system calls
 * (no malloc, no stdio: a lock another thread held at fork stays held).
 * Whatever happens it _exits; when netd goes away its pipe ends and so does
 * it. */
static _Noreturn void userns_child(int report, int go)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int ns[2];
	char c;
	int sock;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWUSER) < 0) {
		child_report(report, USERNS_CHILD_FAILED, errno, NULL, 0);
		_exit(1);
	}
	/* It stays not dumpable, as netd is: the owner of its new user
	 * namespace is the host's uid 0, so a dumpable child would pass the
	 * ptrace check of every uid 0 process, however confined (imaged,
	 * crisp-fetch), and /proc/<child>/root would hand them netd's view of
	 * the host, writable. netd writes its maps (no ptrace check there) and
	 * gets its namespaces as fds from it, not through /proc/<child>/ns. */
	child_report(report, USERNS_CHILD_IN_USERNS, 0, NULL, 0);
	if (read(go, &c, 1) != 1)
		_exit(1); /* netd gave up */
	/* root of the new user namespace now (the maps are written): the
	 * netns made here is owned by it, so the pod's root may act in it */
	if (unshare(CLONE_NEWNET) < 0) {
		child_report(report, USERNS_CHILD_FAILED, errno, NULL, 0);
		_exit(1);
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
		child_report(report, USERNS_CHILD_FAILED, errno, NULL, 0);
		_exit(1);
	}
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
		child_report(report, USERNS_CHILD_FAILED, errno, NULL, 0);
		_exit(1);
	}
	ns[0] = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	ns[1] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns[0] < 0 || ns[1] < 0) {
		child_report(report, USERNS_CHILD_FAILED, errno, NULL, 0);
		_exit(1);
	}
	child_report(report, USERNS_CHILD_IN_NETNS, 0, ns, 2);
	/* stay until netd has pinned both namespaces (EOF: done or failed) */
	while (read(go, &c, 1) > 0)
		;
	_exit(0);
}

/* Waits for the child's report of step want, with exactly nfds fds (into
 * fds; any other fds that came are closed). */
static int child_wait_step(int fd, char want, const char *step, int *fds, size_t nfds,
			   struct crisp_error *err)
{
	unsigned char msg[2];
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	size_t got = 0;
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k = c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
				   ? (c->cmsg_len - CMSG_LEN(0)) / sizeof(int)
				   : 0;
		int *in = (int *)CMSG_DATA(c);

		for (size_t i = 0; i < k; i++) {
			if (got < nfds)
				fds[got] = in[i];
			else
				close(in[i]);
			got++;
		}
	}
	if (got != nfds) {
		for (size_t i = 0; i < got && i < nfds; i++)
			fds[i] = safe_close(fds[i]);
		if (n == sizeof(msg) && msg[0] == (unsigned char)want)
			return err_set(err, CRISP_E_INTERNAL,
				       "the user namespace child sent %zu fds, not %zu, at %s", got,
				       nfds, step);
	}
	if (n != sizeof(msg))
		return err_set(err, CRISP_E_INTERNAL, "the user namespace child died before %s",
			       step);
	if (msg[0] == USERNS_CHILD_FAILED)
		return err_set_errno(err, CRISP_E_INTERNAL, msg[1], "the user namespace child: %s",
				     step);
	if (msg[0] != (unsigned char)want)
		return err_set(err, CRISP_E_INTERNAL,
			       "the user namespace child reported '%c' instead of %s", msg[0],
			       step);
	return 0;
}

static int write_proc_file(pid_t pid, const char *file, const char *text, struct crisp_error *err)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(text);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	/* one write: the kernel takes a map in a single write only */
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s", path);
	return 0;
}

static int write_maps(pid_t pid, const struct idmap *uid, const struct idmap *gid,
		      struct crisp_error *err)
{
	char line[64];

	/* setgroups stays "allow": netd writes gid_map with CAP_SETGID, so
	 * "deny" is not needed, and runc 1.1 skips setgroups(2) in a user
	 * namespace whose setgroups says "deny", which would silently drop
	 * a container's supplemental groups (fsGroup among them). */
	snprintf(line, sizeof(line), "%u %u %u\n", uid->container_id, uid->host_id, uid->length);
	if (write_proc_file(pid, "uid_map", line, err) < 0)
		return -1;
	snprintf(line, sizeof(line), "%u %u %u\n", gid->container_id, gid->host_id, gid->length);
	return write_proc_file(pid, "gid_map", line, err);
}

/* Pins the namespace of an fd the child sent (netd's own fd: no ptrace
 * check on the child, which stays not dumpable). */
static int pin_ns(int nsfd, const char *what, const char *path, struct crisp_error *err)
{
	char src[64];

	snprintf(src, sizeof(src), "/proc/self/fd/%d", nsfd);
	if (mount(src, path, "none", MS_BIND, NULL) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno,
				     "bind mount of the pod's %s namespace on %s", what, path);
	return 0;
}

static int pin_file(const char *path, struct crisp_error *err)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);

	if (fd < 0)
		return err_set_errno(err, errno == EEXIST ? CRISP_E_EXISTS : CRISP_E_INTERNAL,
				     errno, "cannot create the namespace pin %s", path);
	close(fd);
	return 0;
}

/* One creation at a time: a child forked by one thread would inherit the
 * pipes of another's, hold its "go" pipe open, and each thread would then
 * wait for a child that waits for the other's end of file. */
static pthread_mutex_t userns_lock = PTHREAD_MUTEX_INITIALIZER;

static int userns_create_locked(const char *userns_path, const char *netns_path,
				const struct idmap *uid, const struct idmap *gid,
				struct crisp_error *err)
{
	int report[2] = { -1, -1 }, go[2] = { -1, -1 }, ns[2] = { -1, -1 };
	struct crisp_error e;
	pid_t pid = -1;
	int status;

	if (pin_file(userns_path, err) < 0)
		return -1;
	if (pin_file(netns_path, err) < 0) {
		unlink(userns_path);
		return -1;
	}
	/* report: a socket, for the namespaces' fds; go: a pipe */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report) < 0 ||
	    pipe2(go, O_CLOEXEC) < 0) {
		err_set_errno(err, CRISP_E_RESOURCE, errno, "socketpair or pipe");
		goto fail;
	}
	/* A plain fork by the system call, whose flags the seccomp filter
	 * checks (netd/sandbox.c); no atfork handlers run in the child, which
	 * needs none. */
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0) {
		err_set_errno(err, CRISP_E_RESOURCE, errno, "fork for the user namespace");
		goto fail;
	}
	if (pid == 0) {
		close(report[0]);
		close(go[1]);
		userns_child(report[1], go[0]);
	}
	close(report[1]);
	close(go[0]);
	report[1] = go[0] = -1;
	if (child_wait_step(report[0], USERNS_CHILD_IN_USERNS, "unsharing the user namespace", NULL,
			    0, err) < 0 ||
	    write_maps(pid, uid, gid, err) < 0)
		goto fail;
	if (write(go[1], "g", 1) != 1) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "waking the user namespace child");
		goto fail;
	}
	if (child_wait_step(report[0], USERNS_CHILD_IN_NETNS, "making the netns", ns, 2, err) < 0 ||
	    pin_ns(ns[0], "user", userns_path, err) < 0 ||
	    pin_ns(ns[1], "network", netns_path, err) < 0)
		goto fail;
	close(ns[0]);
	close(ns[1]);
	close(go[1]);
	close(report[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
fail:
	/* EOF on its pipe ends the child; then reap it */
	for (int i = 0; i < 2; i++) {
		if (report[i] >= 0)
			close(report[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (ns[i] >= 0)
			close(ns[i]);
	}
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	if (netns_remove(netns_path, &e) < 0)
		log_err("%s", e.msg);
	if (netns_remove(userns_path, &e) < 0)
		log_err("%s", e.msg);
	return -1;
}

int netns_userns_create(const char *userns_path, const char *netns_path, const struct idmap *uid,
			const struct idmap *gid, struct crisp_error *err)
{
	int r;

	pthread_mutex_lock(&userns_lock);
	r = userns_create_locked(userns_path, netns_path, uid, gid, err);
	pthread_mutex_unlock(&userns_lock);
	return r;
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
