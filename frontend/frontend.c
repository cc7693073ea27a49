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
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

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

static void authz_add_uid(uid_t uid)
{
	for (size_t i = 0; i < fe.nuids; i++)
		if (fe.uids[i] == uid)
			return;
	if (fe.nuids >= MAX_GROUP_UIDS)
		fatal("group %s has more than %d members", fe.group_name, MAX_GROUP_UIDS);
	fe.uids = xrealloc(fe.uids, (fe.nuids + 1) * sizeof(*fe.uids));
	fe.uids[fe.nuids++] = uid;
}

/* The socket's group and its members, read once at start-up: after the
 * chroot there is no /etc to read. SO_PEERCRED gives only a client's primary
 * gid, so supplementary membership is checked by uid: the group's member list,
 * and users whose primary group it is. */
static void authz_resolve(const char *group)
{
	struct group *gr;
	struct passwd *pw;
	char **members = NULL;
	size_t n = 0;

	errno = 0;
	gr = getgrnam(group);
	if (!gr)
		fatal("socket group '%s' does not exist%s%s", group, errno ? ": " : "",
		      errno ? strerror(errno) : "");
	fe.group_name = xstrdup(group);
	fe.group_gid = gr->gr_gid;
	/* Copy first: getpwnam() may reuse the buffers getgrnam() returned. */
	for (char **m = gr->gr_mem; m && *m; m++) {
		members = xrealloc(members, (n + 1) * sizeof(*members));
		members[n++] = xstrdup(*m);
	}
	for (size_t i = 0; i < n; i++) {
		if ((pw = getpwnam(members[i])))
			authz_add_uid(pw->pw_uid);
		else
			log_warn("group %s lists unknown user '%s'", group, members[i]);
		free(members[i]);
	}
	free(members);
	setpwent();
	while ((pw = getpwent()))
		if (pw->pw_gid == fe.group_gid)
			authz_add_uid(pw->pw_uid);
	endpwent();
	log_info("CRI callers: root, group %s (gid %u) and %zu user%s in it", group, fe.group_gid,
		 fe.nuids, fe.nuids == 1 ? "" : "s");
}

/* ---- start-up --------------------------------------------------------------- */

static void resolve_user(const char *user, uid_t *ret_uid, gid_t *ret_gid)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		fatal("user '%s' does not exist; create it with scripts/create-user%s%s", user,
		      errno ? ": " : "", errno ? strerror(errno) : "");
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		fatal("frontend user '%s' has uid or gid 0: it must be an unprivileged user", user);
	*ret_uid = pw->pw_uid;
	*ret_gid = pw->pw_gid;
}

static void start(struct crisp_config *cfg)
{
	_cleanup_free_ char *empty = xasprintf("%s/empty", cfg->state_dir);
	struct sandbox_policy policy;
	struct crisp_error serr;
	scmp_filter_ctx filter;
	uid_t uid;
	gid_t gid;

	resolve_user(cfg->frontend_user, &uid, &gid);
	authz_resolve(cfg->socket_group);
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
