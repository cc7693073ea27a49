#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/snapshot_mac.h"
#include "ipc/child.h"
#include "ipc/msg.h"
#include "supervisor/logrelay.h"
#include "supervisor/proc.h"

enum proc_state {
	PS_STOPPED,
	PS_RUNNING,
	PS_BACKOFF,
	PS_CRASHLOOP
};

static const char *const state_names[] = {
	[PS_STOPPED] = "stopped",
	[PS_RUNNING] = "running",
	[PS_BACKOFF] = "backoff",
	[PS_CRASHLOOP] = "crash-looping",
};

enum {
	PROC_FRONTEND,
	PROC_IMAGED,
	PROC_NETD,
	PROC_RUNTIMED,
	PROC__MAX
};

/* A process that lived this long was healthy: its backoff starts over. */
#define HEALTHY_RUN_MS 60000
#define BACKOFF_FIRST_MS 100
/* Health pings a process may leave unanswered before it is killed. */
#define MAX_MISSED_PINGS 3
#define SHUTDOWN_GRACE_S 5

struct proc {
	const char *name;
	const char *binary;
	enum proc_state state;
	pid_t pid;
	struct ipc_chan *ctl;
	struct logrelay *log;  /* its stdout and stderr, read by crispd */
	unsigned restarts;     /* starts after the first */
	unsigned quick_deaths; /* deaths in a row that came before HEALTHY_RUN_MS */
	uint64_t started_ms;
	time_t started_at;
	char last_exit[96];
	struct event *restart_timer;
	uint64_t ping_seq;       /* of the last ping sent */
	unsigned unanswered;     /* pings sent since the last pong */
	bool crashlooping;       /* quick deaths reached crash_loop_limit */
	uint32_t generation;     /* of the frontend<->helper channel */
	struct ipc_chan_ops ops; /* of the control channel */
};

static struct {
	struct event_base *base;
	struct crisp_config *cfg;
	int listen_fd;
	struct proc procs[PROC__MAX];
	struct event *health_timer, *kill_timer;
	uint64_t ping_seq;
	bool shutting_down;
	void (*shutdown_done)(void);
	/* imaged's and runtimed's, for the MACs of snapshot mounts: drawn
	 * once, so a restarted imaged or runtimed gets the same one */
	uint8_t snapshot_key[SNAPSHOT_KEY_LEN];
} sup = {
	.procs = {
		[PROC_FRONTEND] = { .name = "frontend", .binary = "crisp-frontend" },
		[PROC_IMAGED] = { .name = "imaged", .binary = "crisp-imaged" },
		[PROC_NETD] = { .name = "netd", .binary = "crisp-netd" },
		[PROC_RUNTIMED] = { .name = "runtimed", .binary = "crisp-runtimed" },
	},
};

static void proc_spawn(struct proc *p);

static struct proc *proc_by_chan(struct ipc_chan *chan)
{
	for (int i = 0; i < PROC__MAX; i++)
		if (sup.procs[i].ctl == chan)
			return &sup.procs[i];
	return NULL;
}

/* ---- messages to the processes ------------------------------------------- */

struct config_items {
	CrispIpc__ConfigItem **items;
	size_t n;
};

static void add_item(const char *key, const char *value, void *arg)
{
	struct config_items *c = arg;
	CrispIpc__ConfigItem *it = xmalloc(sizeof(*it));

	crisp_ipc__config_item__init(it);
	it->key = xstrdup(key);
	it->value = xstrdup(value);
	c->items = xrealloc(c->items, (c->n + 1) * sizeof(*c->items));
	c->items[c->n++] = it;
}

static void send_config(struct proc *p, bool reload)
{
	CrispIpc__ConfigSet set = CRISP_IPC__CONFIG_SET__INIT;
	struct config_items c = { 0 };

	config_foreach(sup.cfg, add_item, &c);
	set.items = c.items;
	set.n_items = c.n;
	set.reload = reload;
	ipc_send(p->ctl, IPC_SUP_CONFIG_SET, 0, 0, &set.base, NULL, 0);
	for (size_t i = 0; i < c.n; i++) {
		free(c.items[i]->key);
		free(c.items[i]->value);
		free(c.items[i]);
	}
	free(c.items);
}

/* imaged and runtimed only: the frontend, which carries the mounts between
 * them, must not be able to make one. Never logged; the packed frame is
 * wiped by ipc_send_secret once written. */
static void send_snapshot_key(struct proc *p)
{
	CrispIpc__SnapshotKeySet set = CRISP_IPC__SNAPSHOT_KEY_SET__INIT;

	if (p != &sup.procs[PROC_IMAGED] && p != &sup.procs[PROC_RUNTIMED])
		return;
	set.key.data = sup.snapshot_key;
	set.key.len = sizeof(sup.snapshot_key);
	ipc_send_secret(p->ctl, IPC_SUP_SNAPSHOT_KEY_SET, &set.base);
}

/* Push every process's state to the frontend, for Status. */
static void send_states(void)
{
	struct proc *fe = &sup.procs[PROC_FRONTEND];
	CrispIpc__ProcessStateSet set = CRISP_IPC__PROCESS_STATE_SET__INIT;
	CrispIpc__ProcessInfo infos[PROC__MAX], *ptrs[PROC__MAX];

	if (!fe->ctl || sup.shutting_down)
		return;
	for (int i = 0; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		crisp_ipc__process_info__init(&infos[i]);
		infos[i].name = (char *)p->name;
		infos[i].pid = p->pid;
		infos[i].restarts = p->restarts;
		infos[i].state = (char *)(p->crashlooping ? "crash-looping"
							  : state_names[p->state]);
		infos[i].last_exit = p->last_exit;
		infos[i].started_at = p->started_at;
		infos[i].version = (char *)CRISP_VERSION;
		ptrs[i] = &infos[i];
	}
	set.processes = ptrs;
	set.n_processes = PROC__MAX;
	ipc_send(fe->ctl, IPC_SUP_PROCESS_STATE_SET, 0, 0, &set.base, NULL, 0);
}

static void send_channel(struct proc *p, const char *peer, uint32_t gen, int fd)
{
	CrispIpc__ChannelOpen co = CRISP_IPC__CHANNEL_OPEN__INIT;

	co.peer = (char *)peer;
	co.generation = gen;
	ipc_send(p->ctl, IPC_SUP_CHANNEL_OPEN, 0, 0, &co.base, &fd, 1);
}

/* A fresh socketpair between the frontend and helper h, one end each. Old
 * ends (if any) are closed by their owners when they get the new one. */
static void connect_pair(struct proc *h)
{
	struct proc *fe = &sup.procs[PROC_FRONTEND];
	int sv[2];

	if (fe->state != PS_RUNNING || h->state != PS_RUNNING || !fe->ctl || !h->ctl)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		/* Only fd exhaustion gets here: the helper's health check will
		 * not notice, so kill it and let the restart retry. */
		log_err("socketpair for frontend<->%s: %m; restarting %s", h->name, h->name);
		kill(h->pid, SIGKILL);
		return;
	}
	h->generation++;
	send_channel(fe, h->name, h->generation, sv[0]);
	send_channel(h, fe->name, h->generation, sv[1]);
}

/* ---- control channel ------------------------------------------------------ */

static void on_pong(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	struct proc *p = proc_by_chan(chan);
	CrispIpc__HealthPong *pong = (CrispIpc__HealthPong *)req;

	/* Only an answer to the latest ping counts: a process that answers
	 * late is still slow. */
	if (p && pong->seq == p->ping_seq)
		p->unanswered = 0;
}

static void on_restart_request(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			       void *arg)
{
	CrispIpc__ProcessRestartRequest *r = (CrispIpc__ProcessRestartRequest *)req;

	for (int i = PROC_IMAGED; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		if (!streq(p->name, r->name))
			continue;
		if (p->pid > 0) {
			log_warn("frontend reports that %s (pid %d) broke the protocol (%.200s); "
				 "restarting it",
				 p->name, p->pid, r->reason);
			kill(p->pid, SIGKILL);
		}
		return;
	}
	ipc_violation(chan, "restart request for unknown process '%.32s'", r->name);
}

/* Sender bits for the state argument of ipc_dispatch. */
enum {
	FROM_FRONTEND = 1,
	FROM_HELPER = 2
};

/* All crispd accepts from its children: the health protocol, and the
 * frontend's report of a helper that broke the protocol. */
static const struct ipc_handler ctl_handlers[] = {
	{ IPC_SUP_HEALTH_PONG, &crisp_ipc__health_pong__descriptor, 0, IPC_SMALL,
	  FROM_FRONTEND | FROM_HELPER, on_pong },
	{ IPC_SUP_PROCESS_RESTART, &crisp_ipc__process_restart_request__descriptor, 0, IPC_SMALL,
	  FROM_FRONTEND, on_restart_request },
};

static void on_ctl_request(struct ipc_chan *chan, struct ipc_msg *msg, void *arg)
{
	struct proc *p = proc_by_chan(chan);
	uint32_t from = p == &sup.procs[PROC_FRONTEND] ? FROM_FRONTEND : FROM_HELPER;

	ipc_dispatch(ctl_handlers, ARRAY_SIZE(ctl_handlers), chan, msg, from, NULL);
}

static void on_ctl_ready(struct ipc_chan *chan, void *arg)
{
	struct proc *p = proc_by_chan(chan);

	if (!p)
		return;
	log_debug("%s (pid %d) is up", p->name, p->pid);
}

static void on_ctl_close(struct ipc_chan *chan, const char *why, void *arg)
{
	struct proc *p = proc_by_chan(chan);

	if (!p)
		return;
	p->ctl = NULL;
	ipc_chan_free(chan);
	/* A live child without its control channel is broken (or broke the
	 * protocol): kill it; the SIGCHLD path restarts it. */
	if (p->pid > 0 && !sup.shutting_down) {
		/* A plain hang-up mostly means the process is exiting anyway. */
		log_msg(streq(why, "protocol violation") ? LOG_WARNING : LOG_DEBUG,
			"%s (pid %d) closed its control channel (%s); killing it", p->name, p->pid,
			why);
		kill(p->pid, SIGKILL);
	}
}

/* ---- spawning ----------------------------------------------------------- */

static _noreturn_ void exec_child(struct proc *p, int ctl_fd, int log_fd)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", sup.cfg->helper_dir, p->binary);
	char *argv[] = { (char *)p->binary, NULL };
	sigset_t all;
	int c, e, l = -1, devnull;

	/* Undo what the parent's loop set up: default handlers, empty mask. */
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Own process group: a ^C at crispd's terminal reaches crispd only,
	 * which then stops everyone in order. */
	setpgid(0, 0);
	c = fcntl(ctl_fd, F_DUPFD, 10);
	e = fcntl(log_fd, F_DUPFD, 10);
	if (p == &sup.procs[PROC_FRONTEND])
		l = fcntl(sup.listen_fd, F_DUPFD, 10);
	devnull = open("/dev/null", O_RDWR);
	/* stdout and stderr: its own log pipe, so that crispd, not the line,
	 * says who wrote each line (supervisor/logrelay.c). */
	if (c < 0 || e < 0 || devnull < 0 || dup2(devnull, 0) < 0 || dup2(e, 1) < 0 ||
	    dup2(e, 2) < 0 || dup2(c, CHILD_CONTROL_FD) < 0 ||
	    (l >= 0 && dup2(l, CHILD_LISTEN_FD) < 0))
		_exit(126);
	/* Only fds 0-2, the control channel and (frontend) the listener. */
	close_range(l >= 0 ? CHILD_LISTEN_FD + 1 : CHILD_CONTROL_FD + 1, ~0U, 0);
	execv(path, argv);
	log_crit("cannot execute %s: %m", path);
	_exit(127);
}

static void proc_spawn(struct proc *p)
{
	char restart[32] = "";
	struct crisp_error err;
	struct logrelay *relay;
	int sv[2], log_fd;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("cannot start %s: socketpair: %m", p->name);
		return;
	}
	log_fd = logrelay_open(&relay, p->binary, &err);
	if (log_fd < 0) {
		log_err("cannot start %s: %s", p->name, err.msg);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_err("cannot start %s: fork: %m", p->name);
		close(sv[0]);
		close(sv[1]);
		close(log_fd);
		logrelay_abandon(relay);
		return;
	}
	if (pid == 0)
		exec_child(p, sv[1], log_fd);
	close(sv[1]);
	close(log_fd);
	logrelay_started(relay, pid);
	p->log = relay;
	p->pid = pid;
	p->state = PS_RUNNING;
	p->started_ms = now_ms();
	p->started_at = time(NULL);
	p->ping_seq = 0;
	p->unanswered = 0;
	p->ops = (struct ipc_chan_ops){
		.self = "crispd",
		.peer = p->name,
		.version = IPC_SUP_VERSION,
		.on_ready = on_ctl_ready,
		.on_request = on_ctl_request,
		.on_close = on_ctl_close,
	};
	p->ctl = ipc_chan_new(sup.base, sv[0], &p->ops, NULL);
	if (p->restarts)
		snprintf(restart, sizeof(restart), ", restart %u", p->restarts);
	log_info("started %s (pid %d)%s", p->name, pid, restart);
	send_config(p, false);
	/* Before the channel to the frontend: no request can come first. */
	send_snapshot_key(p);
	if (p == &sup.procs[PROC_FRONTEND]) {
		for (int i = PROC_IMAGED; i < PROC__MAX; i++)
			connect_pair(&sup.procs[i]);
	} else {
		connect_pair(p);
	}
	send_states();
}

/* ---- deaths and restarts --------------------------------------------------- */

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		snprintf(buf, len, "killed by signal %d (SIG%s)%s", WTERMSIG(status),
			 abbrev ? abbrev : "?", WCOREDUMP(status) ? ", core dumped" : "");
	} else {
		snprintf(buf, len, "wait status 0x%x", status);
	}
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;

	if (sup.shutting_down || p->pid > 0)
		return;
	p->restarts++;
	proc_spawn(p);
}

static uint64_t backoff_ms(unsigned quick_deaths)
{
	uint64_t ms = BACKOFF_FIRST_MS, max = (uint64_t)sup.cfg->restart_backoff_max * 1000;

	for (unsigned i = 1; i < quick_deaths && ms < max; i++)
		ms *= 2;
	return ms < max ? ms : max;
}

static void proc_died(struct proc *p, int status)
{
	uint64_t ran = now_ms() - p->started_ms, delay;
	struct timeval tv;

	/* Its last lines first, then crispd's about its death. */
	if (p->log) {
		logrelay_ended(p->log);
		p->log = NULL;
	}
	describe_status(status, p->last_exit, sizeof(p->last_exit));
	if (p->ctl) {
		ipc_chan_free(p->ctl);
		p->ctl = NULL;
	}
	p->pid = 0;
	if (sup.shutting_down) {
		log_info("%s stopped (%s)", p->name, p->last_exit);
		p->state = PS_STOPPED;
		return;
	}
	if (ran >= HEALTHY_RUN_MS) {
		p->quick_deaths = 0;
		p->crashlooping = false;
	}
	p->quick_deaths++;
	delay = backoff_ms(p->quick_deaths);
	if (p->quick_deaths >= sup.cfg->crash_loop_limit) {
		/* Keep trying, at the slowest pace: whatever breaks it may be
		 * fixed (a full disk, a missing binary) without anyone
		 * restarting crispd. Say it loudly once. */
		delay = (uint64_t)sup.cfg->restart_backoff_max * 1000;
		if (!p->crashlooping)
			log_crit("%s is crash-looping: %u quick deaths in a row, last %s; "
				 "retrying every %llu ms; Status reports it",
				 p->name, p->quick_deaths, p->last_exit, (unsigned long long)delay);
		p->crashlooping = true;
		p->state = PS_CRASHLOOP;
	} else {
		p->state = PS_BACKOFF;
	}
	log_err("%s died after %llu ms: %s; restart %u in %llu ms", p->name,
		(unsigned long long)ran, p->last_exit, p->restarts + 1, (unsigned long long)delay);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(p->restart_timer, &tv);
	send_states();
}

void proc_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < PROC__MAX; i++)
			if (sup.procs[i].pid == pid)
				proc_died(&sup.procs[i], status);
	}
	if (sup.shutting_down) {
		for (int i = 0; i < PROC__MAX; i++)
			if (sup.procs[i].pid > 0)
				return;
		if (sup.kill_timer)
			event_del(sup.kill_timer);
		explicit_bzero(sup.snapshot_key, sizeof(sup.snapshot_key));
		if (sup.shutdown_done) {
			void (*done)(void) = sup.shutdown_done;
			sup.shutdown_done = NULL;
			done();
		}
	}
}

/* ---- health --------------------------------------------------------------- */

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
	CrispIpc__HealthPing ping = CRISP_IPC__HEALTH_PING__INIT;

	for (int i = 0; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		if (p->pid <= 0 || !p->ctl)
			continue;
		if (p->crashlooping && now_ms() - p->started_ms >= HEALTHY_RUN_MS) {
			log_notice("%s recovered: running for %d s since its last restart", p->name,
				   HEALTHY_RUN_MS / 1000);
			p->crashlooping = false;
			p->quick_deaths = 0;
			p->state = PS_RUNNING;
			send_states();
		}
		/* A process whose loop is stuck answers no ping: after a few it
		 * is killed and restarted like any other death. */
		if (p->unanswered >= MAX_MISSED_PINGS) {
			log_err("%s (pid %d) answered no health ping for %u s; killing it", p->name,
				p->pid, MAX_MISSED_PINGS * sup.cfg->health_interval);
			kill(p->pid, SIGKILL);
			continue;
		}
		ping.seq = p->ping_seq = ++sup.ping_seq;
		p->unanswered++;
		ipc_send(p->ctl, IPC_SUP_HEALTH_PING, 0, 0, &ping.base, NULL, 0);
	}
}

/* ---- public ---------------------------------------------------------------- */

void proc_init(struct event_base *base, struct crisp_config *cfg, int listen_fd)
{
	struct timeval tv = { cfg->health_interval, 0 };

	sup.base = base;
	sup.cfg = cfg;
	sup.listen_fd = listen_fd;
	/* Blocks until the pool is initialised: never a guessable key. */
	if (getrandom(sup.snapshot_key, sizeof(sup.snapshot_key), 0) !=
	    (ssize_t)sizeof(sup.snapshot_key))
		fatal("getrandom for the snapshot key: %m");
	for (int i = 0; i < PROC__MAX; i++)
		sup.procs[i].restart_timer = evtimer_new(base, on_restart_timer, &sup.procs[i]);
	sup.health_timer = event_new(base, -1, EV_PERSIST, on_health_timer, NULL);
	event_add(sup.health_timer, &tv);
}

void proc_start_all(void)
{
	/* Helpers first, so the frontend gets all its channels at once. */
	for (int i = PROC__MAX - 1; i >= 0; i--)
		proc_spawn(&sup.procs[i]);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	for (int i = 0; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		if (p->pid > 0) {
			log_warn("%s (pid %d) did not stop within %d s; killing it", p->name,
				 p->pid, SHUTDOWN_GRACE_S);
			kill(p->pid, SIGKILL);
		}
	}
}

void proc_shutdown(void (*done)(void))
{
	struct timeval tv = { SHUTDOWN_GRACE_S, 0 };

	if (sup.shutting_down)
		return;
	sup.shutting_down = true;
	sup.shutdown_done = done;
	event_del(sup.health_timer);
	for (int i = 0; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		evtimer_del(p->restart_timer);
		if (p->pid > 0)
			kill(p->pid, SIGTERM);
		else
			p->state = PS_STOPPED;
	}
	sup.kill_timer = evtimer_new(sup.base, on_kill_timer, NULL);
	evtimer_add(sup.kill_timer, &tv);
	proc_reap();
}

void proc_reload(void)
{
	for (int i = 0; i < PROC__MAX; i++) {
		struct proc *p = &sup.procs[i];
		if (p->ctl)
			send_config(p, true);
		/* The operator may have fixed what made it crash: try now. */
		if (p->crashlooping && p->pid <= 0) {
			log_notice("reload: restarting crash-looping %s now", p->name);
			p->quick_deaths = 0;
			p->crashlooping = false;
			evtimer_del(p->restart_timer);
			p->restarts++;
			proc_spawn(p);
		}
	}
}
