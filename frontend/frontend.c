/* crisp-frontend: start, confine, serve CRI, stop.
 *
 * crispd starts us as root with the control channel on fd 3 and the CRI
 * listening socket on fd 4. Nothing is served before the first configuration
 * arrives; then, in this order and every step fatal: resolve the user we run
 * as and the set of callers we accept, compile the seccomp filter, drop into
 * the empty root as that user without capabilities, start gRPC (its threads
 * inherit our blocked signals), load the filter on every thread, and only
 * then accept the first client. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sandbox.h"
#include "frontend/cri_methods.h"
#include "frontend/frontend.h"
#include "frontend/grpc_server.h"
#include "frontend/helpers.h"
#include "frontend/orch.h"
#include "frontend/stream.h"
#include "ipc/child.h"

#define MAX_GROUP_UIDS 4096

static struct {
	struct event_base *base;
	struct crisp_config *cfg;
	bool started;
	/* who may call: root, the socket group, its members */
	char *group_name;
	gid_t group_gid;
	uid_t *uids;
	size_t nuids;
	/* SIGTERM & co. arrive through a signalfd, never a handler */
	int sig_fd;
	struct event *sig_ev;
} fe = { .sig_fd = -1 };

struct crisp_config *frontend_config(void)
{
	return fe.cfg ? fe.cfg : child_config();
}

/* ---- authorization ---------------------------------------------------------- */

bool frontend_authorized(const struct fe_peer *peer, char *why, size_t whylen)
{
	if (peer->uid == 0 || peer->gid == fe.group_gid)
		return true;
	for (size_t i = 0; i < fe.nuids; i++)
		if (fe.uids[i] == peer->uid)
			return true;
	snprintf(why, whylen, "not root nor member of group %s", fe.group_name);
	return false;
}

/* ---- user and group lookups ------------------------------------------------ */

/* getpwnam() and friends go through NSS, which loads every module
 * nsswitch.conf names (systemd, sss, ldap, winbind...) into the process that
 * asks, and leaves it there: code an attacker who took the frontend over could
 * reuse, threads, sockets and fds it would inherit into the sandbox. The
 * frontend parses network input, so a short-lived child of it asks instead and
 * sends back numbers only, or an error message, on a pipe. */

#define NSS_ERROR_MAX 512

struct nss_answer {
	uint32_t error_len; /* > 0: error holds the message and nothing else counts */
	uint32_t nuids;
	uid_t user_uid; /* the frontend user's */
	gid_t user_gid;
	gid_t group_gid; /* the socket group's */
	union {
		uid_t uids[MAX_GROUP_UIDS]; /* the group's members, once each */
		char error[NSS_ERROR_MAX];
	};
};

static struct nss_answer nss_ans;

/* In the child: send what nss_ans holds and exit, without atexit handlers
 * or stdio buffers, which are the frontend's. */
_noreturn_ static void nss_send(int fd)
{
	size_t len = offsetof(struct nss_answer, uids) +
		     (nss_ans.error_len ? nss_ans.error_len : nss_ans.nuids * sizeof(uid_t));
	const char *p = (const char *)&nss_ans;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		p += n;
		len -= (size_t)n;
	}
	_exit(0);
}

_noreturn_ _printf_(2, 3) static void nss_fail(int fd, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(nss_ans.error, sizeof(nss_ans.error), fmt, ap);
	va_end(ap);
	if (n <= 0)
		n = snprintf(nss_ans.error, sizeof(nss_ans.error), "user and group lookup failed");
	if ((size_t)n >= sizeof(nss_ans.error))
		n = sizeof(nss_ans.error) - 1; /* vsnprintf cut it there */
	nss_ans.error_len = (uint32_t)n;
	nss_send(fd);
}

static void nss_add_uid(int fd, const char *group, uid_t uid)
{
	for (uint32_t i = 0; i < nss_ans.nuids; i++)
		if (nss_ans.uids[i] == uid)
			return;
	if (nss_ans.nuids >= MAX_GROUP_UIDS)
		nss_fail(fd, "group %s has more than %d members", group, MAX_GROUP_UIDS);
	nss_ans.uids[nss_ans.nuids++] = uid;
}

/* The child's whole life. SO_PEERCRED gives only a client's primary gid, so
 * supplementary membership is checked by uid: the group's member list, and
 * users whose primary group it is. */
_noreturn_ static void nss_child(int fd, const char *user, const char *group)
{
	struct passwd *pw;
	struct group *gr;
	char **members;
	size_t n = 0;

	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		nss_fail(fd, "user '%s' does not exist; create it with scripts/create-user%s%s",
			 user, errno ? ": " : "", errno ? strerror(errno) : "");
	nss_ans.user_uid = pw->pw_uid;
	nss_ans.user_gid = pw->pw_gid;
	errno = 0;
	gr = getgrnam(group);
	if (!gr)
		nss_fail(fd, "socket group '%s' does not exist%s%s", group, errno ? ": " : "",
			 errno ? strerror(errno) : "");
	nss_ans.group_gid = gr->gr_gid;
	/* Copy first: getpwnam() may reuse the buffers getgrnam() returned.
	 * Nothing is freed: the child exits. */
	while (gr->gr_mem && gr->gr_mem[n])
		n++;
	members = calloc(n + 1, sizeof(*members));
	for (size_t i = 0; members && i < n; i++)
		if (!(members[i] = strdup(gr->gr_mem[i])))
			members = NULL;
	if (!members)
		nss_fail(fd, "socket group '%s': out of memory copying its %zu members", group, n);
	for (size_t i = 0; i < n; i++) {
		if ((pw = getpwnam(members[i])))
			nss_add_uid(fd, group, pw->pw_uid);
		else
			log_warn("group %s lists unknown user '%s'", group, members[i]);
	}
	setpwent();
	while ((pw = getpwent()))
		if (pw->pw_gid == nss_ans.group_gid)
			nss_add_uid(fd, group, pw->pw_uid);
	endpwent();
	nss_send(fd);
}

/* Read the child's answer to the end, reap the child, and check the answer
 * is whole before believing any of it. */
static void nss_receive(int fd, pid_t pid)
{
	size_t got = 0, want;
	char extra;
	ssize_t n;
	int status;

	for (;;) {
		if (got < sizeof(nss_ans))
			n = read(fd, (char *)&nss_ans + got, sizeof(nss_ans) - got);
		else
			n = read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("user and group lookup: reading its answer: %m");
		if (n == 0)
			break;
		if (got == sizeof(nss_ans))
			fatal("user and group lookup: answer longer than %zu bytes",
			      sizeof(nss_ans));
		got += (size_t)n;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fatal("user and group lookup: waitpid: %m");
	if (WIFSIGNALED(status))
		fatal("user and group lookup: child killed by signal %d (%s)", WTERMSIG(status),
		      strsignal(WTERMSIG(status)));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatal("user and group lookup: child failed (exit status %d) after %zu bytes",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1, got);
	want = offsetof(struct nss_answer, uids);
	if (got < want)
		fatal("user and group lookup: short answer, %zu bytes of at least %zu", got, want);
	if (nss_ans.error_len) {
		if (nss_ans.error_len >= sizeof(nss_ans.error) || got != want + nss_ans.error_len)
			fatal("user and group lookup: malformed error answer (%zu bytes, message "
			      "length %u)",
			      got, nss_ans.error_len);
		nss_ans.error[nss_ans.error_len] = '\0';
		fatal("%s", nss_ans.error);
	}
	if (nss_ans.nuids > MAX_GROUP_UIDS || got != want + nss_ans.nuids * sizeof(uid_t))
		fatal("user and group lookup: malformed answer (%zu bytes, %u uids)", got,
		      nss_ans.nuids);
}

/* Who we run as and who may call, read once at start-up: after the chroot
 * there is no /etc to read. */
static void resolve_users(const char *user, const char *group, uid_t *ret_uid, gid_t *ret_gid)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		fatal("user and group lookup: pipe: %m");
	pid = fork();
	if (pid < 0)
		fatal("user and group lookup: fork: %m");
	if (pid == 0) {
		close(pipefd[0]);
		nss_child(pipefd[1], user, group);
	}
	close(pipefd[1]);
	nss_receive(pipefd[0], pid);
	close(pipefd[0]);
	if (nss_ans.user_uid == 0 || nss_ans.user_gid == 0)
		fatal("frontend user '%s' has uid or gid 0: it must be an unprivileged user", user);
	*ret_uid = nss_ans.user_uid;
	*ret_gid = nss_ans.user_gid;
	fe.group_name = xstrdup(group);
	fe.group_gid = nss_ans.group_gid;
	fe.nuids = nss_ans.nuids;
	fe.uids = xcalloc(fe.nuids + 1, sizeof(*fe.uids));
	memcpy(fe.uids, nss_ans.uids, fe.nuids * sizeof(*fe.uids));
	log_info("CRI callers: root, group %s (gid %u) and %zu user%s in it", group, fe.group_gid,
		 fe.nuids, fe.nuids == 1 ? "" : "s");
}

/* ---- start-up --------------------------------------------------------------- */

static void start(struct crisp_config *cfg)
{
	_cleanup_free_ char *empty = xasprintf("%s/empty", cfg->state_dir);
	struct sandbox_policy policy;
	struct crisp_error serr;
	scmp_filter_ctx filter;
	uid_t uid;
	gid_t gid;

	resolve_users(cfg->frontend_user, cfg->socket_group, &uid, &gid);
	/* jansson seeds its hash function from /dev/urandom on first use:
	 * now, while there is a /dev. */
	json_object_seed(0);
	/* The streaming listener and its TLS files: before the chroot and
	 * before the filter takes socket, bind and listen away. */
	if (stream_server_start(fe.base, cfg, &serr) < 0)
		log_err("streaming server not started: %s", serr.msg);
	stream_backend_install(fe.base);
	frontend_sandbox_policy(&policy, uid, gid, empty);
	filter = sandbox_compile(&policy);
	frontend_sandbox_rules(filter);
	sandbox_enter(&policy);
	fe_server_init(fe.base);
	/* With TSYNC: gRPC's threads exist by now and get the filter too. */
	sandbox_lock(&policy, filter);
	fe_server_listen(CHILD_LISTEN_FD);
	log_info("serving CRI as uid %u (%s) in %s", uid, cfg->frontend_user, empty);
}

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	fe.cfg = cfg;
	if (reload) {
		/* Only the log level is reloadable here; child.c applied it. */
		log_info("configuration reloaded (log level %s)", log_level_name(cfg->log_level));
		return;
	}
	if (fe.started)
		return;
	fe.started = true;
	start(cfg);
}

static void on_channel(const char *peer, uint32_t generation, int fd, void *arg)
{
	helpers_channel_open(peer, generation, fd);
}

static void on_process_state(const CrispIpc__ProcessStateSet *set, void *arg)
{
	helpers_process_states(set);
}

/* ---- signals and shutdown ------------------------------------------------- */

static void on_stopped(void)
{
	log_info("stopped");
	event_base_loopbreak(fe.base);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP ignored: crispd sends configuration reloads");
			continue;
		}
		if (fe_server_shutting_down())
			continue;
		log_info("%s from pid %u: shutting down", strsignal((int)si.ssi_signo), si.ssi_pid);
		fe_server_shutdown(on_stopped);
		/* Streaming sessions end now: exec'd processes see stdin EOF. */
		stream_server_stop();
		/* Calls parked on a helper finish now, UNAVAILABLE. */
		helpers_close_all();
	}
}

/* Blocked from the very start, so that every thread gRPC creates inherits
 * the mask and none of them is ever interrupted by these: they reach only
 * our loop, through the signalfd. */
static void signals_setup(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("sigprocmask: %m");
	fe.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fe.sig_fd < 0)
		fatal("signalfd: %m");
	fe.sig_ev = event_new(fe.base, fe.sig_fd, EV_READ | EV_PERSIST, on_signal, NULL);
	event_add(fe.sig_ev, NULL);
}

int main(int argc, char **argv)
{
	static const struct child_ops ops = {
		.name = "frontend",
		.on_config = on_config,
		.on_channel = on_channel,
		.on_process_state = on_process_state,
	};

	log_init("crisp-frontend", LOG_INFO);
	/* Nothing here shows local time. A fixed zone keeps glibc and gRPC's
	 * absl from reading zone files, which the chroot and seccomp forbid. */
	setenv("TZ", "UTC", 1);
	tzset();
	if (argc == 2 && streq(argv[1], "--version")) {
		printf("crisp-frontend %s\n", CRISP_VERSION);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: crisp-frontend [--version]\n"
				"crisp-frontend is started by crispd(8) only.\n");
		return 2;
	}
	cri_methods_init();
	fe.base = event_base_new();
	if (!fe.base)
		fatal("cannot create the event loop");
	signals_setup();
	helpers_init(fe.base);
	events_init(fe.base);
	reconcile_init(fe.base);
	child_start(fe.base, &ops, NULL);
	event_base_dispatch(fe.base);
	return 0;
}
