/* The launcher's serving loop (serve.h), run by crisp-launch (launch/main.c)
 * once its argv is parsed: root with every capability and no seccomp filter,
 * so it is the code an auditor reads first. It is a blocking poll() loop
 * over its socket and a signalfd, without libevent. It runs only programs
 * opened at its start (or, for dir programs, a plain file name looked up in
 * directories opened at its start), each request checked by the program's
 * own check function before the fork; a request it cannot parse ends it.
 *
 * Wire (launch/wire.h, ipc/launch.proto): a SOCK_SEQPACKET socketpair, one
 * message per packet, an 8-byte header and a protobuf payload; the stdio fds
 * of a START ride in the same packet (SCM_RIGHTS). The helper's side is
 * common/launcher.c. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/launch.pb-c.h"
#include "launch/serve.h"

/* One entry of the table, as opened at start. */
struct prog {
	const struct launcher_program *def;
	int fd; /* a program: O_PATH, or -errno of opening it at start */
	/* a directory list: each directory, and its O_PATH fd (-1: missing) */
	char **dirs;
	int *dirfds;
	size_t ndirs;
};

/* A launched program the launcher has not reaped yet. */
struct running {
	uint32_t id;
	pid_t pid;
};

static struct {
	int sock, sigfd, devnull;
	struct prog *progs;
	size_t nprogs;
	struct running running[LAUNCH_RUNNING_MAX];
	size_t nrunning;
	uint8_t *in; /* LAUNCH_PACKET_MAX + 1: one more tells a packet too long */
} L;

/* The launcher never calls exit(), only _exit(): it has no atexit handler
 * or stdio buffer of its own to flush, and its forked children, which share
 * this code until they exec, must not flush or run their parent's. One rule
 * for every path out. */
_noreturn_ _printf_(1, 2) static void launcher_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, fmt, ap);
	va_end(ap);
	_exit(1);
}

/* The helper broke the protocol: it is buggy or taken over. Going away makes
 * it exit too, and crispd restarts both. */
#define violation(...) launcher_fatal("protocol violation by the helper: " __VA_ARGS__)

/* The launcher and what it runs start with default dispositions: handlers
 * are reset by execve, but ignored signals are inherited across it (from
 * the helper, into crisp-launch, and on into every program). The raw
 * system call, because glibc's sigaction() refuses its own two signals (32
 * and 33), and an ignored 32 or 33 inherited from whoever started crispd
 * would otherwise reach every program. All zeroes is SIG_DFL, no flags, an
 * empty mask, whatever the architecture's layout of the structure. */
static void signals_default(void)
{
	unsigned long act[8] = { 0 };

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, act, NULL, (NSIG - 1) / 8);
}

/* The raw system calls: musl 1.2.3 has no wrapper for either, and the
 * same code then runs whichever libc crisp-launch is linked with. */
static int sys_close_range(unsigned first, unsigned last, unsigned flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

static int sys_execveat(int fd, const char *path, char *const argv[], char *const envp[], int flags)
{
	return (int)syscall(SYS_execveat, fd, path, argv, envp, flags);
}

/* Keep only stderr (crispd's, shared for logs) and the socket on fd 3. The
 * helper's child already closed every other fd of the helper before the
 * exec (launcher_start); this says it again here, where the auditor reads
 * it, and for whoever else might start crisp-launch. stdin and stdout
 * become /dev/null, so that no fd the launcher opens later lands on 0-2. */
static void launcher_fds(void)
{
	struct stat st;
	int type = 0;
	socklen_t len = sizeof(type);

	if (fstat(LAUNCH_SOCKET_FD, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(LAUNCH_SOCKET_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET)
		launcher_fatal("fd %d is not the helper's SOCK_SEQPACKET socket", LAUNCH_SOCKET_FD);
	/* What it runs must not inherit it (exec_child closes it anyway). */
	if (fcntl(LAUNCH_SOCKET_FD, F_SETFD, FD_CLOEXEC) < 0)
		launcher_fatal("fd %d: close-on-exec: %m", LAUNCH_SOCKET_FD);
	L.sock = LAUNCH_SOCKET_FD;
	if (sys_close_range(LAUNCH_SOCKET_FD + 1, ~0U, 0) < 0)
		launcher_fatal("closing inherited fds: %m");
	close(0);
	close(1);
	if (open("/dev/null", O_RDWR) != 0 || dup2(0, 1) < 0)
		launcher_fatal("opening /dev/null on stdin and stdout: %m");
	if (fcntl(2, F_GETFD) < 0 && dup2(0, 2) < 0)
		launcher_fatal("opening /dev/null on stderr: %m");
	L.devnull = fcntl(0, F_DUPFD_CLOEXEC, 4);
	if (L.devnull < 0)
		launcher_fatal("duplicating /dev/null: %m");
}

/* A dir program's directory list: each absolute directory of "dir1:dir2",
 * opened now (a missing one is never searched). */
static void prog_open_dirs(struct prog *p)
{
	_cleanup_free_ char *list = xstrdup(p->def->path);
	char *save = NULL;

	for (char *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		int fd = -1;

		if (d[0] != '/')
			log_warn("%s: '%s' is not an absolute path: not searched", p->def->name, d);
		else if ((fd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			log_info("%s: %s: %m: not searched", p->def->name, d);
		p->dirs = xrealloc(p->dirs, (p->ndirs + 1) * sizeof(*p->dirs));
		p->dirfds = xrealloc(p->dirfds, (p->ndirs + 1) * sizeof(*p->dirfds));
		p->dirs[p->ndirs] = xstrdup(d);
		p->dirfds[p->ndirs++] = fd;
	}
}

/* Programs are opened O_PATH now and run with execveat, so that no later
 * rename or replacement of the path changes what runs. A program missing
 * now does not stop the launcher: its launches fail, saying why. */
static void launcher_open_programs(const struct launcher_program *defs, size_t n)
{
	L.progs = xcalloc(n, sizeof(*L.progs));
	L.nprogs = n;
	for (size_t i = 0; i < n; i++) {
		struct prog *p = &L.progs[i];

		p->def = &defs[i];
		if (p->def->dir) {
			prog_open_dirs(p);
			continue;
		}
		if (p->def->path[0] != '/')
			p->fd = -EINVAL;
		else if ((p->fd = open(p->def->path, O_PATH | O_CLOEXEC)) < 0)
			p->fd = -errno;
		if (p->fd < 0)
			log_warn("%s: %s: %s: its launches will fail", p->def->name, p->def->path,
				 strerror(-p->fd));
	}
}

static const struct prog *prog_find(const char *name)
{
	for (size_t i = 0; i < L.nprogs; i++)
		if (streq(L.progs[i].def->name, name))
			return &L.progs[i];
	return NULL;
}

static struct running *running_find(uint32_t id, pid_t pid)
{
	for (size_t i = 0; i < L.nrunning; i++)
		if (id ? L.running[i].id == id : L.running[i].pid == pid)
			return &L.running[i];
	return NULL;
}

/* For log lines: the names ipc/msg.c gives the same numbers. */
static const char *msg_name(uint16_t type)
{
	static char unknown[32];

	switch (type) {
	case LAUNCH_MSG_START:
		return "IPC_LAUNCH_PROCESS_START";
	case LAUNCH_MSG_KILL:
		return "IPC_LAUNCH_PROCESS_KILL";
	case LAUNCH_MSG_STARTED:
		return "IPC_LAUNCH_PROCESS_STARTED";
	case LAUNCH_MSG_EXITED:
		return "IPC_LAUNCH_PROCESS_EXITED";
	}
	snprintf(unknown, sizeof(unknown), "IPC_UNKNOWN(0x%04x)", type);
	return unknown;
}

static void launcher_send(uint16_t type, uint32_t id, const ProtobufCMessage *payload)
{
	uint8_t buf[LAUNCH_REPLY_MAX];
	struct launch_hdr hdr = { .type = type, .id = id };
	size_t len = protobuf_c_message_get_packed_size(payload);
	ssize_t n;

	if (len > sizeof(buf) - sizeof(hdr))
		launcher_fatal("%s of %zu bytes is too large", msg_name(type), len);
	memcpy(buf, &hdr, sizeof(hdr));
	protobuf_c_message_pack(payload, buf + sizeof(hdr));
	/* Blocking: replies are small, and a helper that does not read only
	 * stalls its own launcher. */
	do
		n = send(L.sock, buf, sizeof(hdr) + len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
		log_info("the helper went away: exiting");
		_exit(0);
	}
	if (n < 0)
		launcher_fatal("sending %s: %m", msg_name(type));
}

static void send_started(uint32_t id, pid_t pid, const struct crisp_error *err)
{
	CrispIpc__LaunchStarted m = CRISP_IPC__LAUNCH_STARTED__INIT;

	m.pid = pid;
	m.code = pid > 0 ? CRISP_E_OK : err->code;
	m.error = pid > 0 ? "" : (char *)err->msg;
	launcher_send(LAUNCH_MSG_STARTED, id, &m.base);
}

/* What the child tells the launcher through its close-on-exec pipe: nothing
 * when the exec succeeded (the pipe just closes), else where it failed and
 * errno. A detaching middle child sends the grandchild's pid. */
enum exec_stage {
	STAGE_NONE,
	STAGE_FORK,
	STAGE_SETSID,
	STAGE_STDIO,
	STAGE_EXEC
};
struct exec_report {
	int32_t pid;
	int32_t err;
	int32_t stage;
};

_noreturn_ static void exec_failed(int report, enum exec_stage stage)
{
	struct exec_report r = { .err = errno, .stage = stage };

	(void)!write(report, &r, sizeof(r));
	_exit(127);
}

/* In the child: the program gets default signals, an empty signal mask, no
 * parent-death signal (fork cleared it; this keeps it so), the given stdio
 * (or /dev/null) on 0-2 and no other fd, and exactly envp. */
_noreturn_ static void exec_child(int execfd, char **argv, char **envp, const int stdio[],
				  bool detach, int report)
{
	sigset_t none;

	signals_default();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, 0);
	if (detach && setsid() < 0)
		exec_failed(report, STAGE_SETSID);
	/* Every source fd is above 2 (0-2 are the launcher's own), so no
	 * dup2 overwrites a later one's source. */
	for (int i = 0; i < LAUNCH_STDIO; i++)
		if (dup2(stdio[i] >= 0 ? stdio[i] : L.devnull, i) < 0)
			exec_failed(report, STAGE_STDIO);
	/* Everything else closes at the exec, the report pipe included (the
	 * launcher's fds already are close-on-exec; this says it for all). */
	if (sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		exec_failed(report, STAGE_STDIO);
	sys_execveat(execfd, "", argv, envp, AT_EMPTY_PATH);
	/* A `#!` script is handed to its interpreter as /dev/fd/<execfd>,
	 * which the kernel refuses (ENOENT, before the point of no return)
	 * when that fd closes at the exec. So, for it only, the program's fd
	 * stays open across a second try: programs are still run from the fd
	 * opened when the launcher started, never by a path that could be
	 * swapped since. The fd is cleared in place rather than dup'd to a
	 * fixed number, because no number is free for sure here (the report
	 * pipe, /dev/null and stdio sources are all above 2); this fd table
	 * is the child's own, so the launcher's fd keeps its flag. An ELF
	 * binary never gets here with ENOENT unless its own interpreter is
	 * missing, and then the second try fails the same way. The script's
	 * interpreter inherits the fd (an O_PATH one on a root-owned file):
	 * closing it is the program's business. */
	if (errno == ENOENT && fcntl(execfd, F_SETFD, 0) == 0)
		sys_execveat(execfd, "", argv, envp, AT_EMPTY_PATH);
	exec_failed(report, STAGE_EXEC);
}

/* LAUNCH_DETACH: the middle child forks the program, reports its pid and
 * exits, so that the program is nobody's child here and outlives us all. */
_noreturn_ static void detach_child(int execfd, char **argv, char **envp, const int stdio[],
				    int report)
{
	struct exec_report r = { 0 };
	pid_t pid = fork();

	if (pid < 0)
		exec_failed(report, STAGE_FORK);
	if (pid == 0)
		exec_child(execfd, argv, envp, stdio, true, report);
	r.pid = pid;
	(void)!write(report, &r, sizeof(r));
	_exit(0);
}

static int spawn_error(const char *path, const struct exec_report *r, struct crisp_error *err)
{
	static const char *const what[] = { [STAGE_FORK] = "fork",
					    [STAGE_SETSID] = "setsid",
					    [STAGE_STDIO] = "stdio",
					    [STAGE_EXEC] = "exec" };
	const char *stage = r->stage > 0 && r->stage <= STAGE_EXEC ? what[r->stage] : "start";

	/* The file is open, so ENOENT means its interpreter is missing: an
	 * ELF one, or the one a script's #! line names. */
	if (r->stage == STAGE_EXEC && r->err == ENOENT)
		return err_set(err, CRISP_E_INTERNAL, "exec %s: its interpreter: %s", path,
			       strerror(ENOENT));
	return err_set(err, CRISP_E_INTERNAL, "%s %s: %s", stage, path, strerror(r->err));
}

/* Fork and exec; returns the pid once the exec succeeded (the started message
 * is only sent then), or 0 with err set. */
static pid_t spawn(int execfd, const char *path, char **argv, char **envp, const int stdio[],
		   bool detach, struct crisp_error *err)
{
	struct exec_report r, got = { 0 };
	int pipefd[2];
	pid_t child;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "%s: pipe", path), 0;
	child = fork();
	if (child < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "fork for %s", path);
		close(pipefd[0]);
		close(pipefd[1]);
		return 0;
	}
	if (child == 0) {
		close(pipefd[0]);
		close(L.sock); /* nothing but the launcher speaks for it */
		if (detach)
			detach_child(execfd, argv, envp, stdio, pipefd[1]);
		exec_child(execfd, argv, envp, stdio, false, pipefd[1]);
	}
	close(pipefd[1]);
	/* End of file once every write end is closed: by the exec, or by the
	 * failing child's exit (and, detached, the middle child's). */
	while ((n = read(pipefd[0], &r, sizeof(r))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(r)) { /* reports are atomic writes: cannot happen */
			got = (struct exec_report){ 0, n < 0 ? errno : EIO, STAGE_NONE };
			kill(child, SIGKILL); /* it may run: not knowing, do not keep it */
			break;
		}
		if (r.pid > 0)
			got.pid = r.pid;
		if (r.err)
			got = (struct exec_report){ got.pid, r.err, r.stage };
	}
	close(pipefd[0]);
	if (detach || got.err)
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	if (got.err)
		return spawn_error(path, &got, err), 0;
	if (detach && got.pid <= 0)
		return err_set(err, CRISP_E_INTERNAL, "%s: the detached child reported no pid",
			       path),
		       0;
	return detach ? got.pid : child;
}

/* A file name a dir program may run: one path component, nothing else. */
static bool file_name_ok(const char *file)
{
	return file[0] && !strchr(file, '/') && !streq(file, ".") && !streq(file, "..") &&
	       strlen(file) <= NAME_MAX;
}

/* Look file up in the program's directories, in order, like execvp does with
 * PATH. Symlinks are followed: CNI bin directories often hold them. */
static int prog_resolve(const struct prog *p, const char *file, char *path, size_t pathlen,
			struct crisp_error *err)
{
	for (size_t i = 0; i < p->ndirs; i++) {
		struct stat st;
		int fd;

		if (p->dirfds[i] < 0)
			continue;
		fd = openat(p->dirfds[i], file, O_PATH | O_CLOEXEC);
		if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
			continue;
		if (fd < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "%s: %s/%s",
					     p->def->name, p->dirs[i], file);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		snprintf(path, pathlen, "%s/%s", p->dirs[i], file);
		return fd;
	}
	return err_set(err, CRISP_E_NOT_FOUND, "%s: '%s' not found in %s", p->def->name, file,
		       p->def->path);
}

/* One START, checked and run: the pid, or 0 with err set. */
static pid_t start(const char *name, const char *file, char **argv, char **envp, const int stdio[],
		   unsigned flags, struct crisp_error *err)
{
	const struct prog *p = prog_find(name);
	bool detach = flags & LAUNCH_DETACH;
	char why[256] = "", path[PATH_MAX];
	_cleanup_close_ int filefd = -1;
	int execfd;

	if (!p)
		return err_set(err, CRISP_E_INVALID, "unknown program '%s'", name), 0;
	if (p->def->dir && !file)
		return err_set(err, CRISP_E_INVALID, "%s: no file to run was named", name), 0;
	if (p->def->dir && !file_name_ok(file))
		return err_set(err, CRISP_E_INVALID, "%s: refused: '%s' is not a plain file name",
			       name, file),
		       0;
	if (!p->def->dir && file)
		return err_set(err, CRISP_E_INVALID, "%s: takes no file name, got '%s'", name,
			       file),
		       0;
	if (!detach && L.nrunning == LAUNCH_RUNNING_MAX)
		return err_set(err, CRISP_E_RESOURCE,
			       "%s: refused: %d launched programs run already", name,
			       LAUNCH_RUNNING_MAX),
		       0;
	if (p->def->check(file, argv, envp, why, sizeof(why)) < 0) {
		why[sizeof(why) - 1] = '\0';
		log_warn("refused to run %s: %s", name, why[0] ? why : "(no reason given)");
		return err_set(err, CRISP_E_PERMISSION, "%s: refused%s%s", name, why[0] ? ": " : "",
			       why),
		       0;
	}
	if (p->def->dir) {
		execfd = filefd = prog_resolve(p, file, path, sizeof(path), err);
		if (execfd < 0)
			return 0;
	} else if (p->fd < 0) {
		return err_set_errno(err, CRISP_E_NOT_FOUND, p->fd,
				     "%s: %s could not be opened when the launcher started", name,
				     p->def->path),
		       0;
	} else {
		execfd = p->fd;
		snprintf(path, sizeof(path), "%s", p->def->path);
	}
	return spawn(execfd, path, argv, envp, stdio, detach, err);
}

/* A protocol violation found in a packet: why says what, and the serving
 * loop ends on it (violation). */
_printf_(3, 4) static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The request is well-formed, or the helper is broken (it checks the same
 * bounds before sending). */
static int start_check(const CrispIpc__LaunchStart *m, unsigned nfds, char *why, size_t whylen)
{
	if (m->flags & ~(uint32_t)LAUNCH_DETACH)
		return refuse(why, whylen, "START with unknown flags 0x%x", m->flags);
	if ((m->stdio & ~7u) || (unsigned)__builtin_popcount(m->stdio) != nfds)
		return refuse(why, whylen, "START with stdio 0x%x and %u fds", m->stdio, nfds);
	if (m->n_argv < 1 || m->n_argv > LAUNCH_ARGS_MAX || m->n_envp > LAUNCH_ENV_MAX)
		return refuse(why, whylen, "START with %zu arguments and %zu variables", m->n_argv,
			      m->n_envp);
	if (!m->program.len || !launch_string_ok(m->program.data, m->program.len) ||
	    !launch_string_ok(m->file.data, m->file.len))
		return refuse(why, whylen, "START with a bad program or file name");
	for (size_t i = 0; i < m->n_argv; i++)
		if (!launch_string_ok(m->argv[i].data, m->argv[i].len))
			return refuse(why, whylen, "START with a bad argument %zu", i);
	for (size_t i = 0; i < m->n_envp; i++)
		if (!launch_string_ok(m->envp[i].data, m->envp[i].len))
			return refuse(why, whylen, "START with a bad variable %zu", i);
	return 0;
}

static char *cstring(ProtobufCBinaryData b)
{
	char *s = xmalloc(b.len + 1);

	memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	return s;
}

static char **cstrings(const ProtobufCBinaryData *b, size_t n)
{
	char **v = xcalloc(n + 1, sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = cstring(b[i]);
	return v;
}

static void cstrings_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A START's payload, checked, into req's C strings and stdio slots. */
static int start_parse(const uint8_t *data, size_t len, const int *fds, unsigned nfds,
		       struct launch_request *req, char *why, size_t whylen)
{
	CrispIpc__LaunchStart *m = crisp_ipc__launch_start__unpack(NULL, len, data);
	int r;

	if (!m)
		return refuse(why, whylen, "malformed START");
	r = start_check(m, nfds, why, whylen);
	/* 0 is no launch's: the helper numbers them from 1 */
	if (r == 0 && req->hdr.id == 0)
		r = refuse(why, whylen, "START with id 0");
	if (r == 0) {
		for (unsigned i = 0, j = 0; i < LAUNCH_STDIO; i++)
			if (m->stdio & (1u << i))
				req->stdio[i] = fds[j++];
		req->program = cstring(m->program);
		req->file = m->file.len ? cstring(m->file) : NULL;
		req->argv = cstrings(m->argv, m->n_argv);
		req->envp = cstrings(m->envp, m->n_envp);
		req->flags = m->flags;
	}
	crisp_ipc__launch_start__free_unpacked(m, NULL);
	return r;
}

static int kill_parse(const uint8_t *data, size_t len, struct launch_request *req, char *why,
		      size_t whylen)
{
	CrispIpc__LaunchKill *m = crisp_ipc__launch_kill__unpack(NULL, len, data);
	int r = 0;

	if (!m)
		return refuse(why, whylen, "malformed KILL");
	if (m->signal <= 0 || m->signal >= NSIG)
		r = refuse(why, whylen, "KILL with signal %d", m->signal);
	req->signal = m->signal;
	crisp_ipc__launch_kill__free_unpacked(m, NULL);
	return r;
}

/* Everything that can be checked of a packet without the launcher's state
 * (serve.h). Nothing here acts: it only reads buf and counts fds. */
int launch_request_parse(const uint8_t *buf, size_t len, const int *fds, unsigned nfds,
			 struct launch_request *ret, char *why, size_t whylen)
{
	struct launch_request req = { .stdio = { -1, -1, -1 } };
	int r;

	/* No packet the helper packs is longer: a longer one was padded. */
	if (len > LAUNCH_PACKET_MAX)
		return refuse(why, whylen, "a packet over %zu bytes", (size_t)LAUNCH_PACKET_MAX);
	if (len < sizeof(req.hdr))
		return refuse(why, whylen, "a packet of %zu bytes", len);
	memcpy(&req.hdr, buf, sizeof(req.hdr));
	if (req.hdr.reserved)
		return refuse(why, whylen, "a header with reserved bits set");
	if (req.hdr.type == LAUNCH_MSG_START && nfds <= LAUNCH_STDIO)
		r = start_parse(buf + sizeof(req.hdr), len - sizeof(req.hdr), fds, nfds, &req, why,
				whylen);
	else if (req.hdr.type == LAUNCH_MSG_KILL && nfds == 0)
		r = kill_parse(buf + sizeof(req.hdr), len - sizeof(req.hdr), &req, why, whylen);
	else
		r = refuse(why, whylen, "%s with %u fds", msg_name(req.hdr.type), nfds);
	if (r < 0)
		return -1;
	*ret = req;
	return 0;
}

void launch_request_free(struct launch_request *req)
{
	if (!req)
		return;
	free(req->program);
	free(req->file);
	cstrings_free(req->argv);
	cstrings_free(req->envp);
	req->program = req->file = NULL;
	req->argv = req->envp = NULL;
}

static void handle_start(const struct launch_request *req)
{
	struct crisp_error err = { 0 };
	uint32_t id = req->hdr.id;
	pid_t pid;

	if (running_find(id, 0))
		violation("START with id %u, which is in use", id);
	pid = start(req->program, req->file, req->argv, req->envp, req->stdio, req->flags, &err);
	if (pid > 0 && !(req->flags & LAUNCH_DETACH))
		L.running[L.nrunning++] = (struct running){ id, pid };
	if (pid > 0)
		log_debug("#%u: %s runs as pid %d%s", id, req->program, pid,
			  req->flags & LAUNCH_DETACH ? ", detached" : "");
	else
		log_debug("#%u: %s", id, err.msg);
	send_started(id, pid, &err);
}

/* Only a child not yet reaped is signalled: its pid cannot have been reused. */
static void handle_kill(const struct launch_request *req)
{
	uint32_t id = req->hdr.id;
	struct running *r = running_find(id, 0);

	if (r && kill(r->pid, req->signal) < 0)
		log_warn("#%u: kill %d: %m", id, r->pid);
}

static void launcher_read(void)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (LAUNCH_STDIO + 1))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { L.in, LAUNCH_PACKET_MAX + 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	int fds[LAUNCH_STDIO + 1];
	unsigned nfds = 0;
	struct launch_request req;
	char why[256];
	ssize_t n;

	n = recvmsg(L.sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		launcher_fatal("reading from the helper: %m");
	if (n == 0) {
		/* Whatever runs keeps running: it is reparented. */
		log_info("the helper closed its end: exiting");
		_exit(0);
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			violation("unexpected control message");
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			if (nfds < ARRAY_SIZE(fds))
				memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		violation("a packet over %zu bytes or with more than %d fds",
			  (size_t)LAUNCH_PACKET_MAX, LAUNCH_STDIO);
	if (launch_request_parse(L.in, n, fds, nfds, &req, why, sizeof(why)) < 0)
		violation("%s", why);
	if (req.hdr.type == LAUNCH_MSG_START)
		handle_start(&req);
	else
		handle_kill(&req);
	launch_request_free(&req);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

/* Reap every child that exited and report the launched ones. */
static void launcher_reap(void)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(L.sigfd, &si, sizeof(si)) == sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		CrispIpc__LaunchExited m = CRISP_IPC__LAUNCH_EXITED__INIT;
		struct running *r = running_find(0, pid);

		if (!r)
			continue;
		log_debug("#%u: pid %d exited with status 0x%x", r->id, pid, status);
		m.status = status;
		launcher_send(LAUNCH_MSG_EXITED, r->id, &m.base);
		*r = L.running[--L.nrunning];
	}
}

int launcher_table_check(const struct launcher_program *progs, size_t n, char *why, size_t whylen)
{
	for (size_t i = 0; i < n; i++) {
		const struct launcher_program *p = &progs[i];

		if (!p->name || !p->name[0] || strlen(p->name) >= LAUNCH_STRING_MAX || !p->path ||
		    !p->check)
			return snprintf(why, whylen, "program %zu lacks a name, path or check", i),
			       -1;
		for (size_t j = 0; j < i; j++)
			if (streq(progs[j].name, p->name))
				return snprintf(why, whylen, "program '%s' is in the table twice",
						p->name),
				       -1;
	}
	return 0;
}

/* The caller (launch/main.c) has set the parent-death signal, checked its
 * parent and named the process. */
void launcher_serve(const struct launcher_program *progs, size_t n)
{
	sigset_t chld;

	signals_default();
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_SETMASK, &chld, NULL);
	launcher_fds();
	if (chdir("/") < 0)
		launcher_fatal("chdir /: %m");
	umask(022);
	L.sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (L.sigfd < 0)
		launcher_fatal("signalfd: %m");
	launcher_open_programs(progs, n);
	L.in = xmalloc(LAUNCH_PACKET_MAX + 1);
	log_debug("ready with %zu programs", n);
	for (;;) {
		struct pollfd pfd[2] = { { L.sock, POLLIN, 0 }, { L.sigfd, POLLIN, 0 } };

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			launcher_fatal("poll: %m");
		}
		/* Reap first, so that a KILL behind an exit finds nothing. */
		if (pfd[1].revents)
			launcher_reap();
		if (pfd[0].revents)
			launcher_read();
	}
}
