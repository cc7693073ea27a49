/* The launcher (launcher.h; docs/PRIVSEP.md, "Known gaps 1").
 *
 * Two halves share this file and the wire format:
 * - the launcher process, from launcher_main() down to launcher_start():
 *   root with every capability and no seccomp filter, so it is the code an
 *   auditor reads first. It is a blocking poll() loop over its socket and a
 *   signalfd, without libevent. It runs only programs opened at its start
 *   (or, for dir programs, a plain file name looked up in directories opened
 *   at its start), each request checked by the program's own check function
 *   before the fork; a request it cannot parse ends it.
 * - the helper side, from launcher_start() on: it runs in netd or runtimed,
 *   after their sandbox is in place, on their libevent loop, and never
 *   blocks it.
 *
 * Wire ("helper <-> its launcher" in ipc/ipc.proto): a SOCK_SEQPACKET
 * socketpair, one message per packet, an 8-byte header and a protobuf
 * payload; the stdio fds of a START ride in the same packet (SCM_RIGHTS). */
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
#include <sys/queue.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/launcher.h"
#include "common/log.h"
#include "ipc/msg.h"

/* ---- the wire ---- */

struct launch_hdr {
	uint16_t type; /* IPC_LAUNCH_* */
	uint16_t reserved;
	uint32_t id; /* the START's: chosen by the helper, echoed by every reply */
};
_Static_assert(sizeof(struct launch_hdr) == 8, "header is 8 bytes on the wire");

#define LAUNCH_STDIO 3
/* The largest START the bounds allow: each string is at most
 * LAUNCH_STRING_MAX - 1 bytes, which as a bytes field takes a tag byte and a
 * two-byte length; flags and stdio take at most 6 bytes each. */
#define LAUNCH_FIELD_MAX (1 + 2 + (LAUNCH_STRING_MAX - 1))
#define LAUNCH_PACKET_MAX                                                                        \
	(sizeof(struct launch_hdr) + (2 + LAUNCH_ARGS_MAX + LAUNCH_ENV_MAX) * LAUNCH_FIELD_MAX + \
	 2 * 6)
_Static_assert(LAUNCH_STRING_MAX - 1 < (1 << 14), "a string's length fits in two bytes");
/* What the launcher sends is small: a STARTED holds at most a crisp_error. */
#define LAUNCH_REPLY_MAX (sizeof(struct launch_hdr) + 32 + CRISP_ERRMSG_MAX)
/* A START goes out in one packet, which must fit in the helper's send buffer
 * (with room for the kernel's overhead). */
#define LAUNCH_SNDBUF (2 * LAUNCH_PACKET_MAX)

/* A string of a request: bounded, and without NUL (a C string could not
 * carry it: the launcher would run something else than what was checked). */
static bool string_ok(const void *s, size_t len)
{
	/* An empty protobuf-c bytes field has data NULL, which memchr must
	 * not be given even with length 0. */
	return len < LAUNCH_STRING_MAX && (len == 0 || !memchr(s, '\0', len));
}

/* ---- the launcher process ---- */

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

/* The launcher never calls exit(): that would run the helper's atexit
 * handlers and flush its stdio buffers, copies of which it has. */
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
 * are reset by execve anyway, but ignored signals would be inherited, and the
 * helper's libevent handlers write to fds the launcher has closed. The raw
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

/* "crisp-netd" becomes "netd-launch" (comm is 15 characters at most), and
 * its log lines say "crisp-netd-launch". */
static void launcher_set_name(void)
{
	static char logname[64];
	char comm[16] = "", name[16];
	const char *base = comm;

	(void)prctl(PR_GET_NAME, comm);
	if (strncmp(comm, "crisp-", 6) == 0)
		base = comm + 6;
	snprintf(name, sizeof(name), "%.8s-launch", base); /* "runtimed" fits */
	(void)prctl(PR_SET_NAME, name);
	snprintf(logname, sizeof(logname), "%s-launch", comm);
	log_init(logname, log_get_level());
}

/* Keep only stderr (crispd's, shared for logs) and the socket, moved to fd 3:
 * the helper's other fds (its channel to crispd, its loop's internals, its
 * databases) are none of the launcher's business and must not reach what it
 * runs. stdin and stdout become /dev/null, so that no fd the launcher opens
 * later lands on 0-2. launcher_start keeps both socket ends above 2. */
static void launcher_fds(int sock)
{
	if (sock != 3 && dup3(sock, 3, O_CLOEXEC) < 0)
		launcher_fatal("moving the socket to fd 3: %m");
	L.sock = 3;
	if (close_range(4, ~0U, 0) < 0)
		launcher_fatal("closing the helper's fds: %m");
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

static void launcher_send(uint16_t type, uint32_t id, const ProtobufCMessage *payload)
{
	uint8_t buf[LAUNCH_REPLY_MAX];
	struct launch_hdr hdr = { .type = type, .id = id };
	size_t len = protobuf_c_message_get_packed_size(payload);
	ssize_t n;

	if (len > sizeof(buf) - sizeof(hdr))
		launcher_fatal("%s of %zu bytes is too large", ipc_type_name(type), len);
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
		launcher_fatal("sending %s: %m", ipc_type_name(type));
}

static void send_started(uint32_t id, pid_t pid, const struct crisp_error *err)
{
	CrispIpc__LaunchStarted m = CRISP_IPC__LAUNCH_STARTED__INIT;

	m.pid = pid;
	m.code = pid > 0 ? CRISP_E_OK : err->code;
	m.error = pid > 0 ? "" : (char *)err->msg;
	launcher_send(IPC_LAUNCH_PROCESS_STARTED, id, &m.base);
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
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		exec_failed(report, STAGE_STDIO);
	execveat(execfd, "", argv, envp, AT_EMPTY_PATH);
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
		execveat(execfd, "", argv, envp, AT_EMPTY_PATH);
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

/* The request is well-formed, or the helper is broken (it checks the same
 * bounds before sending). */
static void start_check(const CrispIpc__LaunchStart *m, unsigned nfds)
{
	if (m->flags & ~(uint32_t)LAUNCH_DETACH)
		violation("START with unknown flags 0x%x", m->flags);
	if ((m->stdio & ~7u) || (unsigned)__builtin_popcount(m->stdio) != nfds)
		violation("START with stdio 0x%x and %u fds", m->stdio, nfds);
	if (m->n_argv < 1 || m->n_argv > LAUNCH_ARGS_MAX || m->n_envp > LAUNCH_ENV_MAX)
		violation("START with %zu arguments and %zu variables", m->n_argv, m->n_envp);
	if (!m->program.len || !string_ok(m->program.data, m->program.len) ||
	    !string_ok(m->file.data, m->file.len))
		violation("START with a bad program or file name");
	for (size_t i = 0; i < m->n_argv; i++)
		if (!string_ok(m->argv[i].data, m->argv[i].len))
			violation("START with a bad argument %zu", i);
	for (size_t i = 0; i < m->n_envp; i++)
		if (!string_ok(m->envp[i].data, m->envp[i].len))
			violation("START with a bad variable %zu", i);
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

static void handle_start(uint32_t id, const uint8_t *data, size_t len, const int *fds,
			 unsigned nfds)
{
	CrispIpc__LaunchStart *m = crisp_ipc__launch_start__unpack(NULL, len, data);
	struct crisp_error err = { 0 };
	int stdio[LAUNCH_STDIO] = { -1, -1, -1 };
	char *name, *file, **argv, **envp;
	pid_t pid;

	if (!m)
		violation("malformed START");
	start_check(m, nfds);
	if (id == 0 || running_find(id, 0))
		violation("START with id %u, which is in use", id);
	for (unsigned i = 0, j = 0; i < LAUNCH_STDIO; i++)
		if (m->stdio & (1u << i))
			stdio[i] = fds[j++];
	name = cstring(m->program);
	file = m->file.len ? cstring(m->file) : NULL;
	argv = cstrings(m->argv, m->n_argv);
	envp = cstrings(m->envp, m->n_envp);
	pid = start(name, file, argv, envp, stdio, m->flags, &err);
	if (pid > 0 && !(m->flags & LAUNCH_DETACH))
		L.running[L.nrunning++] = (struct running){ id, pid };
	if (pid > 0)
		log_debug("#%u: %s runs as pid %d%s", id, name, pid,
			  m->flags & LAUNCH_DETACH ? ", detached" : "");
	else
		log_debug("#%u: %s", id, err.msg);
	send_started(id, pid, &err);
	free(name);
	free(file);
	cstrings_free(argv);
	cstrings_free(envp);
	crisp_ipc__launch_start__free_unpacked(m, NULL);
}

/* Only a child not yet reaped is signalled: its pid cannot have been reused. */
static void handle_kill(uint32_t id, const uint8_t *data, size_t len)
{
	CrispIpc__LaunchKill *m = crisp_ipc__launch_kill__unpack(NULL, len, data);
	struct running *r;

	if (!m)
		violation("malformed KILL");
	if (m->signal <= 0 || m->signal >= NSIG)
		violation("KILL with signal %d", m->signal);
	r = running_find(id, 0);
	if (r && kill(r->pid, m->signal) < 0)
		log_warn("#%u: kill %d: %m", id, r->pid);
	crisp_ipc__launch_kill__free_unpacked(m, NULL);
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
	struct launch_hdr hdr;
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
	if ((size_t)n < sizeof(hdr))
		violation("a packet of %zd bytes", n);
	memcpy(&hdr, L.in, sizeof(hdr));
	if (hdr.reserved)
		violation("a header with reserved bits set");
	if (hdr.type == IPC_LAUNCH_PROCESS_START && nfds <= LAUNCH_STDIO)
		handle_start(hdr.id, L.in + sizeof(hdr), n - sizeof(hdr), fds, nfds);
	else if (hdr.type == IPC_LAUNCH_PROCESS_KILL && nfds == 0)
		handle_kill(hdr.id, L.in + sizeof(hdr), n - sizeof(hdr));
	else
		violation("%s with %u fds", ipc_type_name(hdr.type), nfds);
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
		launcher_send(IPC_LAUNCH_PROCESS_EXITED, r->id, &m.base);
		*r = L.running[--L.nrunning];
	}
}

_noreturn_ static void launcher_main(const struct launcher_program *progs, size_t n, int sock,
				     pid_t helper)
{
	sigset_t chld;

	/* Die with the helper even if it could not close its end. Its children
	 * do not inherit this: fork clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != helper)
		_exit(1);
	launcher_set_name();
	signals_default();
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_SETMASK, &chld, NULL);
	launcher_fds(sock);
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

/* ---- the helper side ---- */

struct launch {
	LIST_ENTRY(launch) entry;
	uint32_t id;
	unsigned flags;
	bool started;
	struct launch_cb cb; /* zeroed by launch_detach */
};

struct outpkt {
	TAILQ_ENTRY(outpkt) entry;
	uint8_t *buf;
	size_t len;
	int fds[LAUNCH_STDIO]; /* our duplicates: the caller keeps its own */
	unsigned nfds;
};

static struct {
	int fd;
	pid_t pid;
	struct event_base *base;
	struct event *rev, *wev, *gone_ev;
	bool gone, eof;
	char why[256];
	uint32_t next_id;
	LIST_HEAD(, launch) launches;
	TAILQ_HEAD(, outpkt) outq;
	void (*on_gone)(const char *why, void *arg);
	void *gone_arg;
} H = { .fd = -1 };

static int table_check(const struct launcher_program *progs, size_t n, struct crisp_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct launcher_program *p = &progs[i];

		if (!p->name || !p->name[0] || strlen(p->name) >= LAUNCH_STRING_MAX || !p->path ||
		    !p->check)
			return err_set(err, CRISP_E_INVALID,
				       "launcher: program %zu lacks a name, path or check", i);
		for (size_t j = 0; j < i; j++)
			if (streq(progs[j].name, p->name))
				return err_set(err, CRISP_E_INVALID,
					       "launcher: program '%s' is in the table twice",
					       p->name);
	}
	return 0;
}

/* Both ends above 2 (so the launcher's stdio stays its own) and a send
 * buffer that holds the largest START. */
static int socket_setup(int sv[2], struct crisp_error *err)
{
	int size = LAUNCH_SNDBUF, got = 0;
	socklen_t len = sizeof(got);

	for (int i = 0; i < 2; i++) {
		if (sv[i] > 2)
			continue;
		int fd = fcntl(sv[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: dup");
		close(sv[i]);
		sv[i] = fd;
	}
	/* SO_SNDBUFFORCE (we have CAP_NET_ADMIN now) ignores net.core.wmem_max. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0 ||
	    (size_t)got < LAUNCH_PACKET_MAX + 4096)
		return err_set(err, CRISP_E_INTERNAL,
			       "launcher: the socket's send buffer is %d bytes, below %zu", got,
			       (size_t)LAUNCH_PACKET_MAX + 4096);
	return 0;
}

int launcher_start(const struct launcher_program *progs, size_t n, struct crisp_error *err)
{
	pid_t helper = getpid(), pid;
	int sv[2];

	if (H.pid)
		return err_set(err, CRISP_E_INTERNAL, "launcher: already started");
	if (table_check(progs, n, err) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: socketpair");
	if (socket_setup(sv, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "launcher: fork");
	}
	if (pid == 0) {
		close(sv[0]);
		launcher_main(progs, n, sv[1], helper);
	}
	close(sv[1]);
	H.fd = sv[0];
	H.pid = pid;
	H.next_id = 1;
	LIST_INIT(&H.launches);
	TAILQ_INIT(&H.outq);
	fd_set_nonblock(H.fd, true);
	log_debug("launcher: pid %d", pid);
	return 0;
}

pid_t launcher_pid(void)
{
	return H.pid;
}

void launcher_on_gone(void (*fn)(const char *why, void *arg), void *arg)
{
	H.on_gone = fn;
	H.gone_arg = arg;
}

static void outpkt_free(struct outpkt *p)
{
	for (unsigned i = 0; i < p->nfds; i++)
		close(p->fds[i]);
	free(p->buf);
	free(p);
}

/* No launch can go on: stop talking to it, and fail everything on the loop
 * (not from inside launch(), whose caller does not expect callbacks). */
_printf_(1, 2) static void launcher_lost(const char *fmt, ...)
{
	va_list ap;

	if (H.gone)
		return;
	H.gone = true;
	va_start(ap, fmt);
	vsnprintf(H.why, sizeof(H.why), fmt, ap);
	va_end(ap);
	event_del(H.rev);
	event_del(H.wev);
	event_active(H.gone_ev, 0, 0);
}

static void launcher_reap_it(void)
{
	size_t len = strlen(H.why);
	int status;
	pid_t r;

	/* After end of file it has exited: only it held the other end. Else
	 * closing ours makes it exit, but do not wait for that. */
	do
		r = waitpid(H.pid, &status, H.eof ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != H.pid)
		return;
	if (WIFEXITED(status))
		snprintf(H.why + len, sizeof(H.why) - len, ", exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(H.why + len, sizeof(H.why) - len, ", killed by signal %d (SIG%s)",
			 WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
}

static void on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct crisp_error err;
	struct outpkt *p;
	struct launch *l;

	launcher_reap_it();
	H.fd = safe_close(H.fd);
	while ((p = TAILQ_FIRST(&H.outq))) {
		TAILQ_REMOVE(&H.outq, p, entry);
		outpkt_free(p);
	}
	err_set(&err, CRISP_E_UNAVAILABLE, "launcher is gone: %s", H.why);
	/* A callback may launch (which fails now) or detach other launches;
	 * taking them off the list one by one keeps that safe. */
	while ((l = LIST_FIRST(&H.launches))) {
		LIST_REMOVE(l, entry);
		if (!l->started && l->cb.started)
			l->cb.started(l, 0, &err, l->cb.arg);
		else if (l->started && l->cb.exited)
			l->cb.exited(l, -1, l->cb.arg);
		free(l);
	}
	if (H.on_gone) {
		H.on_gone(err.msg, H.gone_arg);
		return;
	}
	log_crit("%s: exiting, to be restarted with a new one", err.msg);
	exit(1);
}

static struct launch *launch_find(uint32_t id)
{
	struct launch *l;

	LIST_FOREACH (l, &H.launches, entry)
		if (l->id == id)
			return l;
	return NULL;
}

static void on_started(uint32_t id, const uint8_t *data, size_t len)
{
	CrispIpc__LaunchStarted *m = crisp_ipc__launch_started__unpack(NULL, len, data);
	struct launch *l = launch_find(id);
	struct crisp_error err = { 0 };

	if (!m || !l || l->started) {
		launcher_lost("the launcher sent a %s STARTED for #%u", m ? "stray" : "malformed",
			      id);
		goto out;
	}
	if (m->pid > 0 && m->code == CRISP_E_OK) {
		l->started = true;
		if (l->flags & LAUNCH_DETACH) /* nothing more comes for it */
			LIST_REMOVE(l, entry);
		if (l->cb.started)
			l->cb.started(l, m->pid, NULL, l->cb.arg);
		if (l->flags & LAUNCH_DETACH)
			free(l);
		goto out;
	}
	err.code = m->code > CRISP_E_OK && m->code < CRISP_E__MAX ? m->code : CRISP_E_INTERNAL;
	snprintf(err.msg, sizeof(err.msg), "%s", m->error[0] ? m->error : "launch failed");
	LIST_REMOVE(l, entry);
	if (l->cb.started)
		l->cb.started(l, 0, &err, l->cb.arg);
	free(l);
out:
	if (m)
		crisp_ipc__launch_started__free_unpacked(m, NULL);
}

static void on_exited(uint32_t id, const uint8_t *data, size_t len)
{
	CrispIpc__LaunchExited *m = crisp_ipc__launch_exited__unpack(NULL, len, data);
	struct launch *l = launch_find(id);

	if (!m || !l || !l->started) {
		launcher_lost("the launcher sent a %s EXITED for #%u", m ? "stray" : "malformed",
			      id);
	} else {
		LIST_REMOVE(l, entry);
		if (l->cb.exited)
			l->cb.exited(l, m->status, l->cb.arg);
		free(l);
	}
	if (m)
		crisp_ipc__launch_exited__free_unpacked(m, NULL);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	while (!H.gone) {
		uint8_t buf[LAUNCH_REPLY_MAX + 1];
		union {
			char buf[CMSG_SPACE(sizeof(int) * LAUNCH_STDIO)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		struct launch_hdr hdr;
		ssize_t n = recvmsg(H.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* End of file, or a reset when it died with requests unread. */
		if (n == 0 || errno == ECONNRESET) {
			H.eof = true;
			launcher_lost("launcher pid %d went away", H.pid);
			return;
		}
		if (n < 0) {
			launcher_lost("reading from launcher pid %d: %m", H.pid);
			return;
		}
		if (mh.msg_controllen) { /* it sends none: close what came */
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			for (size_t i = 0; c && c->cmsg_type == SCM_RIGHTS &&
					   i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			     i++) {
				int rfd;
				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(rfd);
			}
		}
		if ((size_t)n < sizeof(hdr) || mh.msg_controllen || (mh.msg_flags & MSG_TRUNC)) {
			launcher_lost("launcher pid %d sent a malformed packet", H.pid);
			return;
		}
		memcpy(&hdr, buf, sizeof(hdr));
		if (hdr.type == IPC_LAUNCH_PROCESS_STARTED)
			on_started(hdr.id, buf + sizeof(hdr), n - sizeof(hdr));
		else if (hdr.type == IPC_LAUNCH_PROCESS_EXITED)
			on_exited(hdr.id, buf + sizeof(hdr), n - sizeof(hdr));
		else
			launcher_lost("launcher pid %d sent %s", H.pid, ipc_type_name(hdr.type));
	}
}

/* Send what is queued, in order, without blocking. */
static void out_flush(void)
{
	struct outpkt *p;

	while (!H.gone && (p = TAILQ_FIRST(&H.outq))) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * LAUNCH_STDIO)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { p->buf, p->len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		if (p->nfds) {
			struct cmsghdr *c;

			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * p->nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * p->nfds);
			memcpy(CMSG_DATA(c), p->fds, sizeof(int) * p->nfds);
		}
		if (sendmsg(H.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			launcher_lost("sending to launcher pid %d: %m", H.pid);
			return;
		}
		TAILQ_REMOVE(&H.outq, p, entry);
		outpkt_free(p);
	}
	if (H.gone || TAILQ_EMPTY(&H.outq))
		event_del(H.wev);
	else
		event_add(H.wev, NULL);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	out_flush();
}

static void queue(uint16_t type, uint32_t id, const ProtobufCMessage *payload, int *fds,
		  unsigned nfds)
{
	struct outpkt *p = xcalloc(1, sizeof(*p));
	struct launch_hdr hdr = { .type = type, .id = id };

	p->len = sizeof(hdr) + protobuf_c_message_get_packed_size(payload);
	p->buf = xmalloc(p->len);
	memcpy(p->buf, &hdr, sizeof(hdr));
	protobuf_c_message_pack(payload, p->buf + sizeof(hdr));
	if (nfds)
		memcpy(p->fds, fds, nfds * sizeof(int));
	p->nfds = nfds;
	TAILQ_INSERT_TAIL(&H.outq, p, entry);
	out_flush();
}

void launcher_attach(struct event_base *base)
{
	if (H.fd < 0 || H.base)
		return;
	H.base = base;
	H.rev = event_new(base, H.fd, EV_READ | EV_PERSIST, on_readable, NULL);
	H.wev = event_new(base, H.fd, EV_WRITE | EV_PERSIST, on_writable, NULL);
	H.gone_ev = event_new(base, -1, 0, on_gone, NULL);
	if (!H.rev || !H.wev || !H.gone_ev)
		fatal("launcher: event_new failed");
	event_add(H.rev, NULL);
}

static int strings_check(const char *what, char *const *v, size_t max, struct crisp_error *err)
{
	size_t n = 0;

	for (; v && v[n]; n++) {
		if (n == max)
			return err_set(err, CRISP_E_INVALID, "launch: more than %zu %s", max, what);
		if (strlen(v[n]) >= LAUNCH_STRING_MAX)
			return err_set(err, CRISP_E_INVALID, "launch: %s %zu is %zu bytes, over %d",
				       what, n, strlen(v[n]), LAUNCH_STRING_MAX - 1);
	}
	return 0;
}

/* The bounds the launcher checks again (start_check). */
static int req_check(const struct launch_req *req, struct crisp_error *err)
{
	if (!req->program || !req->program[0] || strlen(req->program) >= LAUNCH_STRING_MAX)
		return err_set(err, CRISP_E_INVALID, "launch: no program, or a name too long");
	if (req->file && (!req->file[0] || strlen(req->file) >= LAUNCH_STRING_MAX))
		return err_set(err, CRISP_E_INVALID, "launch %s: empty file name, or too long",
			       req->program);
	if (!req->argv || !req->argv[0])
		return err_set(err, CRISP_E_INVALID, "launch %s: argv is empty", req->program);
	if (strings_check("arguments", req->argv, LAUNCH_ARGS_MAX, err) < 0 ||
	    strings_check("variables", req->envp, LAUNCH_ENV_MAX, err) < 0)
		return -1;
	if (req->flags & ~(unsigned)LAUNCH_DETACH)
		return err_set(err, CRISP_E_INVALID, "launch %s: unknown flags 0x%x", req->program,
			       req->flags);
	for (int i = 0; i < LAUNCH_STDIO; i++)
		if (req->fds[i] < -1 || (req->fds[i] >= 0 && fcntl(req->fds[i], F_GETFD) < 0))
			return err_set(err, CRISP_E_INVALID, "launch %s: stdio fd %d is not open",
				       req->program, req->fds[i]);
	return 0;
}

static ProtobufCBinaryData bytes(const char *s)
{
	return (ProtobufCBinaryData){ strlen(s), (uint8_t *)s };
}

struct launch *launch(const struct launch_req *req, const struct launch_cb *cb,
		      struct crisp_error *err)
{
	CrispIpc__LaunchStart m = CRISP_IPC__LAUNCH_START__INIT;
	ProtobufCBinaryData argv[LAUNCH_ARGS_MAX], envp[LAUNCH_ENV_MAX];
	int fds[LAUNCH_STDIO];
	struct launch *l;
	unsigned nfds = 0;

	if (!H.base)
		return err_set(err, CRISP_E_INTERNAL, "launch: the launcher is not started"), NULL;
	if (H.gone)
		return err_set(err, CRISP_E_UNAVAILABLE, "launcher is gone: %s", H.why), NULL;
	if (req_check(req, err) < 0)
		return NULL;
	m.program = bytes(req->program);
	if (req->file)
		m.file = bytes(req->file);
	for (; req->argv[m.n_argv]; m.n_argv++)
		argv[m.n_argv] = bytes(req->argv[m.n_argv]);
	for (; req->envp && req->envp[m.n_envp]; m.n_envp++)
		envp[m.n_envp] = bytes(req->envp[m.n_envp]);
	m.argv = argv;
	m.envp = envp;
	m.flags = req->flags;
	for (int i = 0; i < LAUNCH_STDIO; i++) {
		if (req->fds[i] < 0)
			continue;
		fds[nfds] = fcntl(req->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fds[nfds] < 0) {
			err_set_errno(err, CRISP_E_RESOURCE, errno, "launch %s: dup", req->program);
			while (nfds)
				close(fds[--nfds]);
			return NULL;
		}
		nfds++;
		m.stdio |= 1u << i;
	}
	l = xcalloc(1, sizeof(*l));
	do
		l->id = H.next_id++;
	while (l->id == 0 || launch_find(l->id));
	l->flags = req->flags;
	l->cb = *cb;
	LIST_INSERT_HEAD(&H.launches, l, entry);
	queue(IPC_LAUNCH_PROCESS_START, l->id, &m.base, fds, nfds);
	return l;
}

void launch_kill(struct launch *l, int sig)
{
	CrispIpc__LaunchKill m = CRISP_IPC__LAUNCH_KILL__INIT;

	if (!l || H.gone)
		return;
	if (sig <= 0 || sig >= NSIG) {
		log_debug("launch_kill: no signal %d", sig);
		return;
	}
	m.signal = sig;
	queue(IPC_LAUNCH_PROCESS_KILL, l->id, &m.base, NULL, 0);
}

void launch_detach(struct launch *l)
{
	if (l)
		memset(&l->cb, 0, sizeof(l->cb));
}
