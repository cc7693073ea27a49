/* crisp-exec: start a process inside a running container, as `runc exec`
 * would, without runc (runtimed/exec.h has the command line and the exit
 * statuses).
 *
 * Why: `runc exec` costs ~20 ms (the Go runtime starting, runc cloning its
 * own binary, runc init), most of ExecSync's latency. This does the same
 * setns exec in a few syscalls: what runc 1.1 does in nsexec.c and
 * setns_init_linux.go, in that order, and nothing else.
 *
 * runtimed's launcher runs it as root with every capability, no seccomp
 * filter and no no_new_privs, with argv checked (launch/check_runtimed.c
 * check_exec()): the files it names are in the container's own bundle.
 * It reads the process file runtimed wrote (the container's process with
 * the exec's args) and the bundle's config.json (linux.seccomp,
 * cgroupsPath, root.path), and refuses anything in them it cannot apply.
 *
 * Parent, in the host's namespaces:
 *   1. parse both files, compile the seccomp filter (libseccomp, as runc);
 *   2. make sure --init-pid is the container's running init: a pidfd holds
 *      it, its starttime is the one runtimed recorded, its root is the
 *      bundle's rootfs, it sits in the container's cgroup (else status
 *      EXEC_EXIT_NOT_RUNNING);
 *   3. open cgroup.procs of the container's cgroup in each hierarchy the
 *      init is in (read from the host's view, before the cgroup namespace
 *      changes what paths mean), the bundle directory (pid file) and the
 *      cap_last_cap, all before the mount namespace hides them;
 *   4. oom_score_adj (inherited by the child), PR_SET_DUMPABLE 0 (no
 *      process of the container may ptrace us or open our /proc files while
 *      we hold host fds), setns into every namespace of the init at once
 *      (its user namespace too when it is the one its spec gives it:
 *      init_userns());
 *   5. fork: the child is in the container's pid namespace. Move it into
 *      the cgroups, write its pid file, let it go; forward SIGTERM, SIGINT
 *      and SIGHUP to it, wait, exit with its status.
 * Child: parent-death signal, setsid, session keyring, rlimits, no_new_privs, seccomp
 * (before the capability drop without no_new_privs, as late as possible
 * with it), bounding set, setgroups/setgid/setuid keeping capabilities,
 * cwd, the capability sets and ambient, every fd but 0-2 closed, the
 * program looked up in the process's PATH, execve.
 *
 * Errors before execve: a message on stderr and status EXEC_EXIT_FAILED,
 * like runc. Libraries: libc, jansson, libseccomp, and common/util.c. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <seccomp.h>

#include "common/util.h"
#include "runtimed/exec.h"

#define ID_LEN 64
#define MAX_CGROUPS 32   /* hierarchies the init is in */
#define MAX_GROUPS 65536 /* NGROUPS_MAX of the kernel */
#define FILE_MAX (4u << 20)
#define KEYCTL_JOIN_SESSION_KEYRING 1

static const char *opt_id, *opt_bundle, *opt_process, *opt_pidfile;
static pid_t opt_init;
static uint64_t opt_start;
static volatile sig_atomic_t child_pidfd = -1;

/* ---- errors -------------------------------------------------------------- */

static _Noreturn void vdie(int status, int errnum, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum)
		dprintf(2, "crisp-exec: %s: %s\n", msg, strerror(errnum));
	else
		dprintf(2, "crisp-exec: %s\n", msg);
	_exit(status);
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(EXEC_EXIT_FAILED, 0, fmt, ap);
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die_errno(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vdie(EXEC_EXIT_FAILED, e, fmt, ap);
}

/* The pid is not (any more) the container's running init. */
__attribute__((format(printf, 1, 2))) static _Noreturn void not_running(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(EXEC_EXIT_NOT_RUNNING, 0, fmt, ap);
}

/* ---- small helpers --------------------------------------------------------- */

static char *read_text(int dirfd, const char *path, size_t max)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char *buf;
	size_t len = 0;
	ssize_t n;
	struct stat st;

	if (fd < 0)
		return NULL;
	/* only regular files and /proc's: never a fifo or device a container
	 * could put in the way */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc(max + 1);
	if (!buf)
		die("out of memory");
	while (len < max && (n = read(fd, buf + len, max - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void write_all(int fd, const char *buf, size_t len, const char *what)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("writing %s", what);
		buf += n;
		len -= (size_t)n;
	}
}

/* ---- the process file ------------------------------------------------------ */

struct rlim {
	int resource;
	struct rlimit lim;
};

struct proc {
	char **argv, **envp;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	/* bounding, effective, inheritable, permitted, ambient */
	uint64_t caps[5];
	struct rlim rlimits[RLIM_NLIMITS];
	size_t nrlimits;
	bool has_oom, nnp, has_umask;
	int oom;
	mode_t umask;
};

enum {
	CAP_BND,
	CAP_EFF,
	CAP_INH,
	CAP_PRM,
	CAP_AMB
};
static const char *const cap_set_names[] = { "bounding", "effective", "inheritable", "permitted",
					     "ambient" };

/* linux/capability.h's numbering; a name the kernel does not know (above
 * cap_last_cap) is dropped from the sets like runc does. */
static const char *const cap_names[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "RLIMIT_CPU", RLIMIT_CPU },           { "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_DATA", RLIMIT_DATA },         { "RLIMIT_STACK", RLIMIT_STACK },
	{ "RLIMIT_CORE", RLIMIT_CORE },         { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },       { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },   { "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },       { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },     { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

/* Refuse what is not one of the listed keys: a field we do not know is a
 * setting we would silently not apply. */
static void keys_known(json_t *obj, const char *what, const char *const *keys, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		size_t i;
		for (i = 0; i < n && strcmp(k, keys[i]) != 0; i++)
			;
		if (i == n)
			die("%s: '%.64s' is not supported", what, k);
	}
}

static uint64_t json_uint(json_t *v, uint64_t max, const char *what)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		die("%s must be an integer from 0 to %llu", what, (unsigned long long)max);
	return (uint64_t)json_integer_value(v);
}

static char **string_array(json_t *arr, const char *what, bool nonempty)
{
	size_t i, n = json_array_size(arr);
	char **out;
	json_t *v;

	if ((arr && !json_is_array(arr)) || (nonempty && n == 0))
		die("process %s must be a%s array of strings", what, nonempty ? " non-empty" : "n");
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		die("out of memory");
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			die("process %s[%zu] is not a string", what, i);
		out[i] = (char *)json_string_value(v);
	}
	return out;
}

static void parse_caps(json_t *caps, struct proc *p)
{
	static const char *const keys[] = { "bounding", "effective", "inheritable", "permitted",
					    "ambient" };

	/* no capabilities object: runc gives every set empty */
	if (!caps)
		return;
	if (!json_is_object(caps))
		die("process capabilities is not an object");
	keys_known(caps, "process capabilities", keys, 5);
	for (int s = 0; s < 5; s++) {
		json_t *arr = json_object_get(caps, cap_set_names[s]), *v;
		size_t i;

		if (arr && !json_is_array(arr))
			die("process capabilities.%s is not an array", cap_set_names[s]);
		json_array_foreach(arr, i, v)
		{
			const char *name = json_string_value(v);
			size_t c;

			for (c = 0; name && c < sizeof(cap_names) / sizeof(*cap_names); c++)
				if (strcmp(name, cap_names[c]) == 0)
					break;
			if (!name || c == sizeof(cap_names) / sizeof(*cap_names))
				die("process capabilities.%s: unknown capability '%.64s'",
				    cap_set_names[s], name ? name : "(not a string)");
			p->caps[s] |= 1ull << c;
		}
	}
}

static void parse_rlimits(json_t *arr, struct proc *p)
{
	static const char *const keys[] = { "type", "hard", "soft" };
	size_t i, r;
	json_t *v;

	if (arr && !json_is_array(arr))
		die("process rlimits is not an array");
	json_array_foreach(arr, i, v)
	{
		const char *type = json_string_value(json_object_get(v, "type"));

		if (!json_is_object(v))
			die("process rlimits[%zu] is not an object", i);
		keys_known(v, "process rlimits", keys, 3);
		for (r = 0; type && r < sizeof(rlimit_names) / sizeof(*rlimit_names); r++)
			if (strcmp(type, rlimit_names[r].name) == 0)
				break;
		if (!type || r == sizeof(rlimit_names) / sizeof(*rlimit_names))
			die("process rlimits[%zu]: unknown type", i);
		for (size_t j = 0; j < p->nrlimits; j++)
			if (p->rlimits[j].resource == rlimit_names[r].resource)
				die("process rlimits: %s given twice", type);
		if (p->nrlimits == RLIM_NLIMITS)
			die("process rlimits: too many");
		p->rlimits[p->nrlimits].resource = rlimit_names[r].resource;
		/* jansson cannot hold values above INT64_MAX; RLIM_INFINITY is
		 * written as the largest it can */
		p->rlimits[p->nrlimits].lim.rlim_max = json_uint(json_object_get(v, "hard"),
								 INT64_MAX, "an rlimit's hard");
		p->rlimits[p->nrlimits].lim.rlim_cur = json_uint(json_object_get(v, "soft"),
								 INT64_MAX, "an rlimit's soft");
		if (p->rlimits[p->nrlimits].lim.rlim_max == INT64_MAX)
			p->rlimits[p->nrlimits].lim.rlim_max = RLIM_INFINITY;
		if (p->rlimits[p->nrlimits].lim.rlim_cur == INT64_MAX)
			p->rlimits[p->nrlimits].lim.rlim_cur = RLIM_INFINITY;
		p->nrlimits++;
	}
}

static void parse_user(json_t *user, struct proc *p)
{
	static const char *const keys[] = { "uid", "gid", "umask", "additionalGids" };
	json_t *groups, *v;
	size_t i;

	if (!json_is_object(user))
		die("process user is missing");
	keys_known(user, "process user", keys, 4);
	p->uid = (uid_t)json_uint(json_object_get(user, "uid"), UINT32_MAX - 1, "user.uid");
	p->gid = (gid_t)json_uint(json_object_get(user, "gid"), UINT32_MAX - 1, "user.gid");
	if ((v = json_object_get(user, "umask"))) {
		p->umask = (mode_t)json_uint(v, 0777, "user.umask");
		p->has_umask = true;
	}
	groups = json_object_get(user, "additionalGids");
	if (groups && (!json_is_array(groups) || json_array_size(groups) > MAX_GROUPS))
		die("process user.additionalGids is not an array of at most %d", MAX_GROUPS);
	p->ngroups = json_array_size(groups);
	p->groups = calloc(p->ngroups + 1, sizeof(gid_t));
	if (!p->groups)
		die("out of memory");
	json_array_foreach(groups, i, v)
		p->groups[i] = (gid_t)json_uint(v, UINT32_MAX - 1, "user.additionalGids[]");
}

/* A label we cannot apply must not be silently dropped. */
static void no_label(json_t *proc, const char *key)
{
	json_t *v = json_object_get(proc, key);

	if (v && (!json_is_string(v) || *json_string_value(v)))
		die("process %s is set: crisp-exec cannot apply it", key);
}

static void parse_process(json_t *proc, struct proc *p)
{
	static const char *const keys[] = { "terminal",
					    "consoleSize",
					    "user",
					    "args",
					    "env",
					    "cwd",
					    "capabilities",
					    "rlimits",
					    "noNewPrivileges",
					    "apparmorProfile",
					    "oomScoreAdj",
					    "selinuxLabel" };
	json_t *v;

	if (!json_is_object(proc))
		die("%s is not a JSON object", opt_process);
	keys_known(proc, "process", keys, sizeof(keys) / sizeof(*keys));
	p->argv = string_array(json_object_get(proc, "args"), "args", true);
	p->envp = string_array(json_object_get(proc, "env"), "env", false);
	p->cwd = json_string_value(json_object_get(proc, "cwd"));
	if (!p->cwd || p->cwd[0] != '/')
		die("process cwd must be an absolute path");
	parse_user(json_object_get(proc, "user"), p);
	parse_caps(json_object_get(proc, "capabilities"), p);
	parse_rlimits(json_object_get(proc, "rlimits"), p);
	if ((v = json_object_get(proc, "oomScoreAdj"))) {
		if (!json_is_integer(v) || json_integer_value(v) < -1000 ||
		    json_integer_value(v) > 1000)
			die("process oomScoreAdj must be from -1000 to 1000");
		p->oom = (int)json_integer_value(v);
		p->has_oom = true;
	}
	p->nnp = json_is_true(json_object_get(proc, "noNewPrivileges"));
	/* runc gives a tty exec a terminal of the container's own devpts;
	 * runtimed sends those to runc (exec_direct()) */
	if (json_is_true(json_object_get(proc, "terminal")))
		die("process terminal is set: crisp-exec runs no terminal, runc does");
	no_label(proc, "apparmorProfile");
	no_label(proc, "selinuxLabel");
}

/* ---- seccomp, compiled as runc 1.1 does (libcontainer/seccomp) ------------- */

static uint32_t scmp_action(const char *name, json_t *errno_ret, const char *what)
{
	uint32_t ret = EPERM;

	if (errno_ret)
		ret = (uint32_t)json_uint(errno_ret, 0xffff, "errnoRet");
	if (!name)
		die("seccomp %s: no action", what);
	if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
		return SCMP_ACT_KILL_THREAD;
	if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
		return SCMP_ACT_KILL_PROCESS;
	if (strcmp(name, "SCMP_ACT_TRAP") == 0)
		return SCMP_ACT_TRAP;
	if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
		return SCMP_ACT_ERRNO(ret);
	if (strcmp(name, "SCMP_ACT_TRACE") == 0)
		return SCMP_ACT_TRACE(ret);
	if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
		return SCMP_ACT_ALLOW;
	if (strcmp(name, "SCMP_ACT_LOG") == 0)
		return SCMP_ACT_LOG;
	/* SCMP_ACT_NOTIFY needs a listener, which crisp never configures */
	die("seccomp %s: action '%.32s' is not supported", what, name);
}

static enum scmp_compare scmp_op(const char *op)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE },
		{ "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE },
		{ "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE },
		{ "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};

	for (size_t i = 0; op && i < sizeof(ops) / sizeof(*ops); i++)
		if (strcmp(op, ops[i].name) == 0)
			return ops[i].op;
	die("seccomp: operator '%.32s' is not supported", op ? op : "(none)");
}

/* One syscalls[] entry. Like runc: a name libseccomp does not know is
 * skipped (not on this kernel), a rule whose action is the default is
 * skipped (libseccomp refuses it), and conditions on the same argument
 * twice become one rule each (libseccomp ANDs a rule's conditions and
 * refuses two on one argument). */
static void scmp_rule(scmp_filter_ctx ctx, json_t *rule, size_t idx, uint32_t def)
{
	static const char *const keys[] = { "names", "action", "errnoRet", "args", "comment" };
	json_t *names = json_object_get(rule, "names"), *args = json_object_get(rule, "args"), *v;
	struct scmp_arg_cmp conds[6];
	unsigned seen = 0;
	bool split = false;
	size_t nconds = json_array_size(args), i;
	char what[48];
	uint32_t act;

	snprintf(what, sizeof(what), "syscalls[%zu]", idx);
	if (!json_is_object(rule) || !json_is_array(names))
		die("seccomp %s: names missing", what);
	keys_known(rule, "seccomp syscalls[]", keys, sizeof(keys) / sizeof(*keys));
	act = scmp_action(json_string_value(json_object_get(rule, "action")),
			  json_object_get(rule, "errnoRet"), what);
	if ((args && !json_is_array(args)) || nconds > 6)
		die("seccomp %s: args must be an array of at most 6", what);
	json_array_foreach(args, i, v)
	{
		static const char *const akeys[] = { "index", "value", "valueTwo", "op" };
		unsigned index;

		if (!json_is_object(v))
			die("seccomp %s: args[%zu] is not an object", what, i);
		keys_known(v, "seccomp args[]", akeys, 4);
		index = (unsigned)json_uint(json_object_get(v, "index"), 5, "seccomp arg index");
		split = split || (seen & (1u << index));
		seen |= 1u << index;
		conds[i].arg = index;
		conds[i].op = scmp_op(json_string_value(json_object_get(v, "op")));
		conds[i].datum_a = json_uint(json_object_get(v, "value"), INT64_MAX,
					     "seccomp value");
		conds[i].datum_b = json_object_get(v, "valueTwo")
					   ? json_uint(json_object_get(v, "valueTwo"), INT64_MAX,
						       "seccomp valueTwo")
					   : 0;
	}
	if (act == def)
		return;
	json_array_foreach(names, i, v)
	{
		const char *name = json_string_value(v);
		int nr, r = 0;

		if (!name)
			die("seccomp %s: names[%zu] is not a string", what, i);
		if ((nr = seccomp_syscall_resolve_name(name)) == __NR_SCMP_ERROR)
			continue;
		if (split) {
			for (size_t c = 0; c < nconds && r == 0; c++)
				r = seccomp_rule_add_array(ctx, act, nr, 1, &conds[c]);
		} else {
			r = seccomp_rule_add_array(ctx, act, nr, (unsigned)nconds, conds);
		}
		if (r < 0)
			die("seccomp %s: adding a rule for %s: %s", what, name, strerror(-r));
	}
}

/* runc's -ENOSYS stub (libcontainer/seccomp/patchbpf), prepended to
 * libseccomp's program: a syscall numbered above the highest the profile
 * names, for its architecture, fails with ENOSYS instead of the default
 * action, so that libc falls back from a syscall newer than the profile
 * (as from one the kernel lacks) rather than failing with EPERM. Not
 * when the default action lets syscalls through. */
#define STUB_MAX 64
#define NEXT SIZE_MAX

struct stub {
	struct sock_filter insn[STUB_MAX];
	size_t n;
};

struct stub_arch {
	uint32_t native; /* AUDIT_ARCH_*: x86_64 and x32 share one */
	long max, max_x32;
};

static void stub_put(struct stub *st, uint16_t code, uint32_t k, size_t jt, size_t jf)
{
	struct sock_filter *f = &st->insn[st->n];

	if (st->n == STUB_MAX)
		die("seccomp: the -ENOSYS stub is too long");
	/* targets are absolute; BPF jumps count from the next instruction */
	if ((jt != NEXT && jt - st->n - 1 > 255) || (jf != NEXT && jf - st->n - 1 > 255))
		die("seccomp: a jump of the -ENOSYS stub is too long");
	*f = (struct sock_filter){ code, jt == NEXT ? 0 : (uint8_t)(jt - st->n - 1),
				   jf == NEXT ? 0 : (uint8_t)(jf - st->n - 1), k };
	st->n++;
}

static void stub_ja(struct stub *st, size_t target)
{
	st->insn[st->n] = (struct sock_filter){ BPF_JMP | BPF_JA, 0, 0,
						(uint32_t)(target - st->n - 1) };
	st->n++;
}

static size_t stub_arch_len(const struct stub_arch *a)
{
	if (a->native == AUDIT_ARCH_X86_64)
		return a->max && a->max_x32 ? 6 : 4;
	if (a->native == AUDIT_ARCH_S390 || a->native == AUDIT_ARCH_S390X)
		return 4;
	return 3;
}

/* Layout: load the arch; one jeq per arch to its section; else to the
 * filter. A section loads the syscall number and jumps to the ENOSYS
 * return above the arch's highest, else to the filter. x86_64 and x32
 * share AUDIT_ARCH_X86_64 and differ by bit 30 of the number; on s390
 * syscall 0 is how an unknown large number arrives. */
static void stub_build(struct stub *st, const struct stub_arch *arches, size_t n)
{
	size_t starts[8], enosys = 2 + n, filter;

	for (size_t i = 0; i < n; i++) {
		starts[i] = enosys;
		enosys += stub_arch_len(&arches[i]);
	}
	filter = enosys + 1;
	stub_put(st, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), NEXT, NEXT);
	for (size_t i = 0; i < n; i++)
		stub_put(st, BPF_JMP | BPF_JEQ | BPF_K, arches[i].native, starts[i], NEXT);
	stub_ja(st, filter);
	for (size_t i = 0; i < n; i++) {
		const struct stub_arch *a = &arches[i];
		size_t end = st->n + stub_arch_len(a) - 1; /* its "ja filter" */

		stub_put(st, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), NEXT,
			 NEXT);
		if (a->native == AUDIT_ARCH_X86_64 && a->max && a->max_x32) {
			stub_put(st, BPF_JMP | BPF_JSET | BPF_K, 1u << 30, st->n + 3, NEXT);
			stub_put(st, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)a->max, enosys, NEXT);
			stub_ja(st, filter);
			stub_put(st, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)a->max_x32, enosys, NEXT);
		} else if (a->native == AUDIT_ARCH_X86_64) {
			/* only one of the two modes is in the filter: the other
			 * goes to the filter, which knows what to do with it */
			stub_put(st, BPF_JMP | BPF_JSET | BPF_K, 1u << 30, a->max ? end : NEXT,
				 a->max ? NEXT : end);
			stub_put(st, BPF_JMP | BPF_JGT | BPF_K,
				 (uint32_t)(a->max ? a->max : a->max_x32), enosys, NEXT);
		} else if (a->native == AUDIT_ARCH_S390 || a->native == AUDIT_ARCH_S390X) {
			stub_put(st, BPF_JMP | BPF_JEQ | BPF_K, 0, enosys, NEXT);
			stub_put(st, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)a->max, enosys, NEXT);
		} else {
			stub_put(st, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)a->max, enosys, NEXT);
		}
		stub_ja(st, filter);
	}
	stub_put(st, BPF_RET | BPF_K, SCMP_ACT_ERRNO(ENOSYS), NEXT, NEXT);
}

/* The highest syscall number the profile names, per architecture of the
 * filter (names unknown on an architecture do not count). */
static size_t stub_arches(json_t *sc, const uint32_t *arches, size_t narch, struct stub_arch *out)
{
	json_t *rules = json_object_get(sc, "syscalls"), *rule, *v;
	size_t n = 0, i, j;

	for (size_t a = 0; a < narch; a++) {
		uint32_t native = arches[a] == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : arches[a];
		long max = 0;
		size_t k;

		json_array_foreach(rules, i, rule)
			json_array_foreach(json_object_get(rule, "names"), j, v)
		{
			int nr = seccomp_syscall_resolve_name_arch(arches[a], json_string_value(v));
			if (nr > max)
				max = nr;
		}
		if (max == 0)
			continue;
		for (k = 0; k < n && out[k].native != native; k++)
			;
		if (k == n) {
			if (n == 8)
				die("seccomp: too many architectures");
			out[n++] = (struct stub_arch){ .native = native };
		}
		if (arches[a] == SCMP_ARCH_X32)
			out[k].max_x32 = max;
		else
			out[k].max = max;
	}
	return n;
}

static struct sock_fprog seccomp_compile(json_t *sc, unsigned *ret_flags)
{
	static const char *const keys[] = { "defaultAction", "defaultErrnoRet", "architectures",
					    "flags", "syscalls" };
	json_t *v;
	size_t i, narch = 0, nstub = 0;
	uint32_t def, arches[32];
	scmp_filter_ctx ctx;
	struct stub st = { .n = 0 };
	struct stub_arch sa[8];
	struct sock_fprog prog;
	struct stat fst;
	int fd, r;
	char *out;

	if (!json_is_object(sc))
		die("config.json linux.seccomp is not an object");
	keys_known(sc, "linux.seccomp", keys, sizeof(keys) / sizeof(*keys));
	def = scmp_action(json_string_value(json_object_get(sc, "defaultAction")),
			  json_object_get(sc, "defaultErrnoRet"), "defaultAction");
	if (!(ctx = seccomp_init(def)))
		die("seccomp: cannot make a filter");
	/* no_new_privs is the process file's business, not libseccomp's */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
		die("seccomp: cannot leave no_new_privs alone");
	*ret_flags = 0;
	json_array_foreach(json_object_get(sc, "architectures"), i, v)
	{
		const char *name = json_string_value(v);
		char lower[32];
		uint32_t arch;
		size_t n;

		if (!name || strncmp(name, "SCMP_ARCH_", 10) != 0 ||
		    (n = strlen(name + 10)) >= sizeof(lower))
			die("seccomp: architecture '%.32s' is not SCMP_ARCH_*", name ? name : "");
		for (size_t c = 0; c <= n; c++)
			lower[c] = (char)tolower((unsigned char)name[10 + c]);
		if (!(arch = seccomp_arch_resolve_name(lower)))
			die("seccomp: architecture '%.32s' is unknown to libseccomp", name);
		if ((r = seccomp_arch_add(ctx, arch)) < 0 && r != -EEXIST)
			die("seccomp: adding architecture %s: %s", name, strerror(-r));
		if (narch == sizeof(arches) / sizeof(*arches))
			die("seccomp: too many architectures");
		arches[narch++] = arch;
	}
	json_array_foreach(json_object_get(sc, "flags"), i, v)
	{
		const char *flag = json_string_value(v);

		/* TSYNC means nothing to a single-threaded process (runc
		 * ignores it too) */
		if (flag && strcmp(flag, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
			continue;
		else if (flag && strcmp(flag, "SECCOMP_FILTER_FLAG_LOG") == 0)
			*ret_flags |= SECCOMP_FILTER_FLAG_LOG;
		else if (flag && strcmp(flag, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
			*ret_flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		else
			die("seccomp: flag '%.48s' is not supported", flag ? flag : "");
	}
	v = json_object_get(sc, "syscalls");
	if (v && !json_is_array(v))
		die("seccomp syscalls is not an array");
	for (i = 0; i < json_array_size(v); i++)
		scmp_rule(ctx, json_array_get(v, i), i, def);

	/* runc loads libseccomp's program behind its stub itself */
	if ((fd = memfd_create("crisp-exec-seccomp", MFD_CLOEXEC)) < 0)
		die_errno("memfd_create");
	if ((r = seccomp_export_bpf(ctx, fd)) < 0)
		die("seccomp: exporting the filter: %s", strerror(-r));
	seccomp_release(ctx);
	if (fstat(fd, &fst) < 0 || fst.st_size <= 0 || fst.st_size % sizeof(struct sock_filter))
		die("seccomp: the exported filter has a bad size");
	/* TRACE counts as letting through: a tracer handles new syscalls */
	if (def != SCMP_ACT_ALLOW && def != SCMP_ACT_LOG &&
	    (def & 0xffff0000u) != SCMP_ACT_TRACE(0)) {
		nstub = stub_arches(sc, arches, narch, sa);
		stub_build(&st, sa, nstub);
	}
	prog.len = (unsigned short)(st.n + (size_t)fst.st_size / sizeof(struct sock_filter));
	if (st.n + (size_t)fst.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		die("seccomp: the filter has more than %d instructions", BPF_MAXINSNS);
	prog.filter = calloc(prog.len, sizeof(struct sock_filter));
	if (!prog.filter)
		die("out of memory");
	memcpy(prog.filter, st.insn, st.n * sizeof(struct sock_filter));
	out = (char *)(prog.filter + st.n);
	if (pread(fd, out, (size_t)fst.st_size, 0) != fst.st_size)
		die_errno("seccomp: reading the exported filter");
	close(fd);
	return prog;
}

/* The compiled program is kept in the bundle (SECCOMP_CACHE): libseccomp
 * takes ~12 ms to compile a RuntimeDefault profile, more than all the rest
 * of an exec. It is used only when its key, the profile as compact JSON
 * with sorted keys and libseccomp's version, is the current one byte for
 * byte; else it is compiled again and the file replaced. Whoever can write
 * the bundle can write config.json's profile as well: the cache gives
 * nobody a power they did not have. */
#define SECCOMP_CACHE "exec-seccomp.bpf"
#define SECCOMP_CACHE_MAGIC "crisp-exec seccomp 1\n"

struct cache_head {
	char magic[sizeof(SECCOMP_CACHE_MAGIC) - 1];
	uint32_t keylen, flags, len;
};

static char *seccomp_key(json_t *sc)
{
	const struct scmp_version *v = seccomp_version();
	char *text = json_dumps(sc, JSON_COMPACT | JSON_SORT_KEYS), *key;

	if (!text ||
	    asprintf(&key, "%s\nlibseccomp %u.%u.%u", text, v->major, v->minor, v->micro) < 0)
		die("out of memory");
	free(text);
	return key;
}

static bool cache_read(int dirfd, const char *key, struct sock_fprog *prog, unsigned *flags)
{
	struct cache_head h;
	size_t kl = strlen(key);
	char *buf;
	struct stat st;
	bool ok = false;
	int fd = openat(dirfd, SECCOMP_CACHE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(h) ||
	    (size_t)st.st_size > FILE_MAX || pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
	    memcmp(h.magic, SECCOMP_CACHE_MAGIC, sizeof(h.magic)) != 0 || h.keylen != kl ||
	    h.len == 0 || h.len > BPF_MAXINSNS ||
	    (size_t)st.st_size != sizeof(h) + kl + h.len * sizeof(struct sock_filter)) {
		close(fd);
		return false;
	}
	if (!(buf = malloc((size_t)st.st_size - sizeof(h))))
		die("out of memory");
	if (pread(fd, buf, (size_t)st.st_size - sizeof(h), sizeof(h)) ==
		    (ssize_t)(st.st_size - (off_t)sizeof(h)) &&
	    memcmp(buf, key, kl) == 0) {
		prog->len = (unsigned short)h.len;
		prog->filter = calloc(h.len, sizeof(struct sock_filter));
		if (!prog->filter)
			die("out of memory");
		memcpy(prog->filter, buf + kl, h.len * sizeof(struct sock_filter));
		*flags = h.flags;
		ok = true;
	}
	free(buf);
	close(fd);
	return ok;
}

/* Best effort: a cache that cannot be written costs the next exec time,
 * nothing else. Written under a name of our own and renamed, so a
 * concurrent exec reads a whole file or none. */
static void cache_write(int dirfd, const char *key, const struct sock_fprog *prog, unsigned flags)
{
	struct cache_head h = { .keylen = (uint32_t)strlen(key), .flags = flags, .len = prog->len };
	char tmp[64];
	int fd;
	bool ok;

	memcpy(h.magic, SECCOMP_CACHE_MAGIC, sizeof(h.magic));
	snprintf(tmp, sizeof(tmp), ".%s.%d", SECCOMP_CACHE, (int)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ok = write(fd, &h, sizeof(h)) == sizeof(h) &&
	     write(fd, key, h.keylen) == (ssize_t)h.keylen &&
	     write(fd, prog->filter, prog->len * sizeof(struct sock_filter)) ==
		     (ssize_t)(prog->len * sizeof(struct sock_filter));
	close(fd);
	if (!ok || renameat(dirfd, tmp, dirfd, SECCOMP_CACHE) < 0)
		unlinkat(dirfd, tmp, 0);
}

static struct sock_fprog seccomp_filter(json_t *sc, int dirfd, unsigned *flags)
{
	char *key = seccomp_key(sc);
	struct sock_fprog prog;

	if (!cache_read(dirfd, key, &prog, flags)) {
		prog = seccomp_compile(sc, flags);
		cache_write(dirfd, key, &prog, *flags);
	}
	free(key);
	return prog;
}

/* ---- the container's init ---------------------------------------------- */

/* /proc/<pid>/stat: the state (field 3) and starttime (field 22), read
 * after the last ')' since the command name may hold anything. */
static bool init_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], *text, *p;
	int field = 3;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(text = read_text(AT_FDCWD, path, 4096)))
		return false;
	if (!(p = strrchr(text, ')')) || p[1] != ' ') {
		free(text);
		return false;
	}
	*state = p[2];
	for (p += 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	p[strcspn(p, " \n")] = '\0';
	ok = field == 22 && parse_uint64(p, 10, UINT64_MAX, start) == 0;
	free(text);
	return ok;
}

static int pidfd_hold(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0 && errno == ESRCH)
		not_running("container %s: its init (pid %d) is gone", opt_id, (int)pid);
	if (fd < 0)
		die_errno("pidfd_open %d", (int)pid);
	return fd;
}

/* The init is the process runtimed recorded (same pid, same starttime,
 * alive: the pidfd proves the pid was not reused in between) whose root
 * is this bundle's rootfs. */
static void init_check(int pidfd, json_t *config)
{
	const char *root = json_string_value(
		json_object_get(json_object_get(config, "root"), "path"));
	char path[PATH_MAX];
	struct stat want, have;
	uint64_t start;
	char state;

	if (!init_stat(opt_init, &state, &start) || start != opt_start || state == 'Z' ||
	    state == 'X')
		not_running("container %s: pid %d is not its running init", opt_id, (int)opt_init);
	if (!root)
		die("config.json has no root.path");
	if (root[0] == '/')
		snprintf(path, sizeof(path), "%s", root);
	else
		snprintf(path, sizeof(path), "%s/%s", opt_bundle, root);
	if (stat(path, &want) < 0)
		die_errno("stat %s", path);
	snprintf(path, sizeof(path), "/proc/%d/root", (int)opt_init);
	if (stat(path, &have) < 0 || have.st_dev != want.st_dev || have.st_ino != want.st_ino)
		not_running("container %s: pid %d's root is not the container's rootfs", opt_id,
			    (int)opt_init);
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		not_running("container %s: its init (pid %d) is gone", opt_id, (int)opt_init);
}

/* ---- cgroups ------------------------------------------------------------- */

/* The directory where the hierarchy of one /proc/<pid>/cgroup line is
 * mounted in our (the host's) mount namespace, joined with path: "" when
 * it is not mounted. v1: a "cgroup" mount whose super options name every
 * controller of the line; v2 (hierarchy 0): the "cgroup2" mount. */
static char *cgroup_dir(const char *mountinfo, const char *ctrls, bool v2, const char *path)
{
	const char *line = mountinfo;

	for (; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
		char buf[4096], *f[12], *sep, *save = NULL, *super, *tok;
		size_t n = strcspn(line, "\n"), nf = 0, rl;
		bool all = true;

		if (n >= sizeof(buf))
			continue;
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (!(sep = strstr(buf, " - ")))
			continue;
		*sep = '\0';
		for (tok = strtok_r(buf, " ", &save); tok && nf < 5;
		     tok = strtok_r(NULL, " ", &save))
			f[nf++] = tok;
		/* after " - ": fstype, source, super options */
		save = NULL;
		char *fstype = strtok_r(sep + 3, " ", &save), *source = strtok_r(NULL, " ", &save);
		super = strtok_r(NULL, " ", &save);
		if (nf < 5 || !fstype || !source || !super || strchr(f[4], '\\'))
			continue;
		if (strcmp(fstype, v2 ? "cgroup2" : "cgroup") != 0)
			continue;
		if (!v2) {
			char cs[256], *c, *s2 = NULL;
			snprintf(cs, sizeof(cs), "%s", ctrls);
			for (c = strtok_r(cs, ",", &s2); c; c = strtok_r(NULL, ",", &s2)) {
				size_t cl = strlen(c);
				const char *o = super;
				bool found = false;
				for (; *o; o += strcspn(o, ",") + (o[strcspn(o, ",")] == ',')) {
					if (strcspn(o, ",") == cl && strncmp(o, c, cl) == 0)
						found = true;
				}
				all = all && found;
			}
			if (!all)
				continue;
		}
		/* f[3] is the mount's root within the hierarchy */
		rl = strcmp(f[3], "/") == 0 ? 0 : strlen(f[3]);
		if (rl && (strncmp(path, f[3], rl) != 0 || (path[rl] != '/' && path[rl] != '\0')))
			continue;
		char *dir;
		if (asprintf(&dir, "%s%s", f[4], path + rl) < 0)
			die("out of memory");
		return dir;
	}
	return NULL;
}

/* cgroup.procs of the container's cgroup (config.json's cgroupsPath) in
 * every hierarchy where the init is in it or under it, opened now: after
 * setns the host's /sys/fs/cgroup is out of sight. Hierarchies where the
 * init is elsewhere are left alone, like runc leaves those it does not
 * manage. None at all: this is not the container's init. */
static size_t cgroups_open(json_t *config, int *fds)
{
	const char *cgpath = json_string_value(
		json_object_get(json_object_get(config, "linux"), "cgroupsPath"));
	char path[64], *text, *mountinfo, *line, *save = NULL;
	size_t n = 0, cl;

	if (!cgpath || cgpath[0] != '/' || strstr(cgpath, "/..") || strlen(cgpath) < 2)
		die("config.json linux.cgroupsPath '%.64s' is not an absolute cgroupfs path",
		    cgpath ? cgpath : "");
	cl = strlen(cgpath);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)opt_init);
	if (!(text = read_text(AT_FDCWD, path, 65536)))
		not_running("container %s: cannot read %s", opt_id, path);
	if (!(mountinfo = read_text(AT_FDCWD, "/proc/self/mountinfo", FILE_MAX)))
		die_errno("reading /proc/self/mountinfo");
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *dir, *procs;
		bool v2;

		if (!c2)
			die("%s: malformed line", path);
		*c2 = '\0';
		v2 = strncmp(line, "0:", 2) == 0 && c1[1] == '\0';
		if (strncmp(c2 + 1, cgpath, cl) != 0 || (c2[1 + cl] != '\0' && c2[1 + cl] != '/'))
			continue;
		if (!(dir = cgroup_dir(mountinfo, c1 + 1, v2, cgpath)))
			die("the hierarchy of '%s' in %s is not mounted", c1 + 1, path);
		if (n == MAX_CGROUPS)
			die("%s: more than %d hierarchies", path, MAX_CGROUPS);
		if (asprintf(&procs, "%s/cgroup.procs", dir) < 0)
			die("out of memory");
		if ((fds[n++] = open(procs, O_WRONLY | O_CLOEXEC)) < 0)
			die_errno("opening %s", procs);
		free(procs);
		free(dir);
	}
	free(text);
	free(mountinfo);
	if (n == 0)
		not_running("container %s: pid %d is not in its cgroup %s", opt_id, (int)opt_init,
			    cgpath);
	return n;
}

/* ---- the child ------------------------------------------------------------ */

static const char *env_get(char *const envp[], const char *name)
{
	size_t nl = strlen(name);
	const char *v = NULL;

	/* the last one wins, as when runc sets them one after the other */
	for (size_t i = 0; envp[i]; i++)
		if (strncmp(envp[i], name, nl) == 0 && envp[i][nl] == '=')
			v = envp[i] + nl + 1;
	return v;
}

/* runc sets HOME when the process has none: the user's home in the
 * container's /etc/passwd, else "/". */
static char **env_with_home(char **envp, uid_t uid)
{
	char *text, *line, *save = NULL, *home = NULL, **out;
	size_t n = 0;

	if (env_get(envp, "HOME"))
		return envp;
	if ((text = read_text(AT_FDCWD, "/etc/passwd", FILE_MAX))) {
		for (line = strtok_r(text, "\n", &save); line && !home;
		     line = strtok_r(NULL, "\n", &save)) {
			/* name:password:uid:gid:gecos:home:shell */
			char *f[7], *p = line;
			int nf = 0;
			uint64_t u;
			for (; nf < 7; nf++) {
				f[nf] = p;
				if (!(p = strchr(p, ':')))
					break;
				*p++ = '\0';
			}
			if (nf >= 5 && parse_uint64(f[2], 10, UINT32_MAX, &u) == 0 && u == uid &&
			    *f[5])
				home = f[5];
		}
	}
	while (envp[n])
		n++;
	out = calloc(n + 2, sizeof(*out));
	if (!out || asprintf(&out[n], "HOME=%s", home ? home : "/") < 0)
		die("out of memory");
	memcpy(out, envp, n * sizeof(*out));
	return out;
}

/* Go's exec.LookPath, which runc uses: a name with a slash as is, else
 * the first PATH entry (empty meaning ".") holding a non-directory with
 * an execute bit. */
static bool executable(const char *path, int *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*err = errno;
		return false;
	}
	/* a directory too: "permission denied", as Go says */
	if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) {
		*err = EACCES;
		return false;
	}
	return true;
}

static const char *look_path(const char *file, char *const envp[])
{
	const char *path = env_get(envp, "PATH"), *dir;
	int err = 0;

	if (strchr(file, '/')) {
		if (!executable(file, &err) && err == EACCES)
			die("exec failed: unable to start container process: exec: \"%s\": "
			    "permission denied",
			    file);
		if (err)
			die("exec failed: unable to start container process: exec: \"%s\": stat "
			    "%s: %s",
			    file, file, strerror(err));
		return file;
	}
	/* as Go's filepath.SplitList: "" is no entry, "a:" is "a" and "." */
	for (dir = path && *path ? path : NULL; dir;) {
		size_t dl = strcspn(dir, ":");
		char *cand;
		if (asprintf(&cand, "%.*s/%s", (int)(dl ? dl : 1), dl ? dir : ".", file) < 0)
			die("out of memory");
		if (executable(cand, &err))
			return cand;
		free(cand);
		dir = dir[dl] == ':' ? dir + dl + 1 : NULL;
	}
	die("exec failed: unable to start container process: exec: \"%s\": executable file not "
	    "found in $PATH",
	    file);
}

static void capset_all(const struct proc *p)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(p->caps[CAP_EFF] >> (32 * i));
		d[i].permitted = (uint32_t)(p->caps[CAP_PRM] >> (32 * i));
		d[i].inheritable = (uint32_t)(p->caps[CAP_INH] >> (32 * i));
	}
	if (syscall(SYS_capset, &h, d) < 0)
		die_errno("capset");
}

/* runc's finalizeNamespace(): bounding set, keep capabilities across the
 * uid change, groups, gid, uid, cwd (as root first, for a directory only
 * root can reach, then as the user), then the sets and ambient. */
static void drop_privileges(const struct proc *p, int last_cap)
{
	bool cwd_done;

	for (int c = 0; c <= last_cap; c++)
		if (!(p->caps[CAP_BND] & (1ull << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			die_errno("dropping capability %d from the bounding set", c);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die_errno("PR_SET_KEEPCAPS");
	if (setgroups(p->ngroups, p->groups) < 0)
		die_errno("setgroups");
	if (setgid(p->gid) < 0)
		die_errno("setgid %u", (unsigned)p->gid);
	cwd_done = chdir(p->cwd) == 0;
	if (!cwd_done && errno != EACCES && errno != EPERM)
		die_errno("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
	if (setuid(p->uid) < 0)
		die_errno("setuid %u", (unsigned)p->uid);
	if (!cwd_done && chdir(p->cwd) < 0)
		die_errno("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die_errno("PR_SET_KEEPCAPS");
	capset_all(p);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die_errno("clearing the ambient set");
	for (int c = 0; c <= last_cap; c++)
		if ((p->caps[CAP_AMB] & (1ull << c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			die_errno("raising ambient capability %s", cap_names[c]);
}

/* With flags, only seccomp() takes them; else prctl, like runc. */
static void seccomp_install(const struct sock_fprog *prog, unsigned flags)
{
	int r = flags ? (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog)
		      : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0);

	if (r < 0)
		die_errno("loading the seccomp filter");
}

static _Noreturn void child(const struct proc *p, const struct sock_fprog *filter,
			    unsigned filter_flags, int go, int last_cap)
{
	sigset_t none;
	char byte, ring[8 + ID_LEN];
	const char *file;
	char **envp;
	int r;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* our parent waits for us: if it goes, so do we */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die_errno("PR_SET_PDEATHSIG");
	/* The parent's fds of the host (bundle, cgroups, the init's pidfd)
	 * are its business: keep only the go pipe, as fd 3, from now on. */
	if (go != 3 && (dup2(go, 3) < 0 || close(go) < 0))
		die_errno("dup2");
	go = 3;
	if (syscall(SYS_close_range, 4, ~0u, 0) < 0)
		die_errno("close_range");
	/* the parent has put us in the cgroups and written the pid file;
	 * end of file means it died before it could */
	while ((r = (int)read(go, &byte, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		_exit(EXEC_EXIT_FAILED);
	close(go);
	if (setsid() < 0)
		die_errno("setsid");
	/* a session keyring of the container's own, as runc's _ses.<id> */
	snprintf(ring, sizeof(ring), "_ses.%s", opt_id);
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, ring) < 0 && errno != ENOSYS)
		die_errno("joining session keyring %s", ring);
	for (size_t i = 0; i < p->nrlimits; i++)
		if (setrlimit(p->rlimits[i].resource, &p->rlimits[i].lim) < 0)
			die_errno("setting rlimit %d", p->rlimits[i].resource);
	if (p->has_umask)
		umask(p->umask);
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno("PR_SET_NO_NEW_PRIVS");
	/* Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it
	 * before the capabilities go. */
	if (filter->len && !p->nnp)
		seccomp_install(filter, filter_flags);
	/* the container's /etc/passwd, read as root like runc does */
	envp = env_with_home(p->envp, p->uid);
	drop_privileges(p, last_cap);
	file = look_path(p->argv[0], envp);
	/* Nothing above 2 should be open by now (fd 4 and up were closed at
	 * the start, the go pipe and /etc/passwd since); this makes sure. A
	 * profile already loaded may refuse close_range: then there is
	 * nothing it would have closed. */
	if (syscall(SYS_close_range, 3, ~0u, 0) < 0 && errno != EPERM && errno != ENOSYS)
		die_errno("close_range");
	/* With no_new_privs, as late as possible: the fewest syscalls of ours
	 * run under the container's filter. */
	if (filter->len && p->nnp)
		seccomp_install(filter, filter_flags);
	execve(file, p->argv, envp);
	die_errno("exec failed: unable to start container process: exec %s", file);
}

/* ---- the parent ----------------------------------------------------------- */

/* Through a pidfd: a signal that arrives after the child was reaped
 * cannot hit a process that reused its pid. */
static void forward(int sig)
{
	if (child_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, (int)child_pidfd, sig, NULL, 0);
}

static void usage(void)
{
	die("usage: crisp-exec --id ID --bundle DIR --process FILE --pid-file FILE "
	    "--init-pid PID --init-start START");
}

static void parse_args(int argc, char **argv)
{
	uint64_t v;
	size_t bl;

	if (argc != 13 || strcmp(argv[1], "--id") != 0 || strcmp(argv[3], "--bundle") != 0 ||
	    strcmp(argv[5], "--process") != 0 || strcmp(argv[7], "--pid-file") != 0 ||
	    strcmp(argv[9], "--init-pid") != 0 || strcmp(argv[11], "--init-start") != 0)
		usage();
	opt_id = argv[2];
	opt_bundle = argv[4];
	opt_process = argv[6];
	opt_pidfile = argv[8];
	if (strlen(opt_id) != ID_LEN || strspn(opt_id, "0123456789abcdef") != ID_LEN)
		die("--id is not 64 lowercase hex digits");
	bl = strlen(opt_bundle);
	/* the launcher checked these; the pid file is created relative to the
	 * bundle's fd, so it must be a plain name in it */
	if (opt_bundle[0] != '/' || strncmp(opt_pidfile, opt_bundle, bl) != 0 ||
	    opt_pidfile[bl] != '/' || strchr(opt_pidfile + bl + 1, '/') ||
	    opt_pidfile[bl + 1] == '.' || strncmp(opt_process, opt_bundle, bl) != 0)
		die("--process and --pid-file must be files of --bundle");
	if (parse_uint64(argv[10], 10, INT32_MAX, &v) < 0 || v < 2)
		die("--init-pid is not a pid");
	opt_init = (pid_t)v;
	if (parse_uint64(argv[12], 10, UINT64_MAX, &opt_start) < 0 || opt_start == 0)
		die("--init-start is not a starttime");
}

static json_t *load_json(const char *path)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (!j)
		die("%s: %s (line %d)", path, jerr.text, jerr.line);
	return j;
}

/* The path config.json gives the container's user namespace, or NULL
 * when it has none of its own. */
static const char *spec_userns_path(json_t *config)
{
	json_t *nss = json_object_get(json_object_get(config, "linux"), "namespaces"), *ns;
	size_t i;

	json_array_foreach(nss, i, ns)
	{
		const char *type = json_string_value(json_object_get(ns, "type"));
		const char *path = json_string_value(json_object_get(ns, "path"));

		if (type && streq(type, "user")) {
			if (!path || path[0] != '/')
				die("config.json: the user namespace has no path to join");
			return path;
		}
	}
	return NULL;
}

/* Whether the init has a user namespace of its own (a pod's, for
 * hostUsers: false), to be joined with the others in one setns of the
 * init's pidfd: the kernel switches the user namespace first and checks the
 * rest with the capabilities we then hold in it, as runc exec's nsexec
 * joins it first; a namespace the user namespace does not own fails the
 * setns (EPERM). Only the one config.json names is joined: an init that
 * made itself another (unshare(CLONE_NEWUSER), which the container's root
 * may do) must not have us run the request's command, holding our host
 * fds, in namespaces it made and mapped. We stay uid 0 of the host
 * (unmapped there: not the container's root) and not dumpable: ptrace and
 * /proc access go by the mm's user namespace, the host's, so the
 * container's root cannot reach us. The child takes the process's ids,
 * which are that namespace's, as runc's are, and its setgroups drops the
 * host's groups or fails (a namespace whose setgroups is "deny").
 * The check here can be raced (the init may unshare a user namespace
 * between it and the setns, and the setns follows it there: the kernel
 * checks the other namespaces with our host credentials), so main()
 * checks again after the setns which one we are in (userns_entered). */
static struct stat spec_userns;

static bool init_userns(int pidfd, json_t *config)
{
	const char *want = spec_userns_path(config);
	char path[64];
	struct stat init, self, spec;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)opt_init);
	if (stat(path, &init) < 0 || stat("/proc/self/ns/user", &self) < 0)
		die_errno("comparing user namespaces");
	/* /proc/<pid> was the init's when we looked (the pidfd holds it). */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		not_running("container %s: its init (pid %d) is gone", opt_id, (int)opt_init);
	if (init.st_ino == self.st_ino && init.st_dev == self.st_dev) {
		if (want)
			die("container %s: its init is not in the user namespace of its spec (%s)",
			    opt_id, want);
		return false;
	}
	if (!want)
		die("container %s has a user namespace its spec does not give it: crisp-exec "
		    "does not enter it",
		    opt_id);
	if (stat(want, &spec) < 0)
		die_errno("container %s: its user namespace %s", opt_id, want);
	if (spec.st_ino != init.st_ino || spec.st_dev != init.st_dev)
		die("container %s: its init is not in the user namespace of its spec (%s)", opt_id,
		    want);
	spec_userns = spec;
	return true;
}

/* After the setns: we are in the user namespace of the spec, not one the
 * init made since init_userns() looked. selffd: our /proc/<pid>, opened
 * in the host's procfs before the setns (the container's /proc does not
 * show us). */
static void userns_entered(int selffd)
{
	struct stat now;

	if (fstatat(selffd, "ns/user", &now, 0) < 0)
		die_errno("checking the user namespace entered");
	if (now.st_ino != spec_userns.st_ino || now.st_dev != spec_userns.st_dev)
		die("container %s: the user namespace entered is not the one of its spec "
		    "(its init changed it)",
		    opt_id);
}

static void write_pidfile(int dirfd, pid_t pid)
{
	const char *name = opt_pidfile + strlen(opt_bundle) + 1;
	char tmp[NAME_MAX + 1], text[24];
	ssize_t w;
	int fd, n;

	/* whole or absent for runtimed, which reads it on a timeout */
	snprintf(tmp, sizeof(tmp), ".%.*s.tmp", NAME_MAX - 6, name);
	n = snprintf(text, sizeof(text), "%d", (int)pid);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		die_errno("creating %s/%s", opt_bundle, tmp);
	/* A full state_dir fails the write: the empty file goes too, else
	 * each failed exec leaves one in the bundle until the removal. */
	w = write(fd, text, (size_t)n);
	if (w != n) {
		int e = w < 0 ? errno : ENOSPC; /* short: no room for the rest */

		unlinkat(dirfd, tmp, 0);
		errno = e;
		die_errno("writing %s", opt_pidfile);
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;

		unlinkat(dirfd, tmp, 0);
		errno = e;
		die_errno("renaming %s/%s", opt_bundle, tmp);
	}
}

static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die_errno("waitpid");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

#ifdef __SANITIZE_ADDRESS__
/* In an AddressSanitizer build (tests only): LeakSanitizer's check at exit
 * ptraces us from a clone()d tracer, which lands in the container's pid
 * namespace (we joined it for our children), where our pid does not exist:
 * it spins for ever. crisp-exec lives for one process, and the launcher
 * passes no ASAN_OPTIONS, so leak checking is off here. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

int main(int argc, char **argv)
{
	struct proc p = { 0 };
	json_t *config, *process;
	struct sock_fprog filter = { 0 };
	unsigned filter_flags = 0;
	int pidfd, bundle_fd, cg_fds[MAX_CGROUPS], go[2], last_cap, r;
	size_t ncg;
	char *text, num[24], path[PATH_MAX];
	sigset_t fwd, old;
	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
	pid_t pid;
	uint64_t v;
	bool userns;
	int selffd = -1;

	parse_args(argc, argv);
	snprintf(path, sizeof(path), "%s/config.json", opt_bundle);
	config = load_json(path);
	process = load_json(opt_process);
	parse_process(process, &p);
	if (!(text = read_text(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 32)) ||
	    parse_uint64(strtok(text, "\n"), 10, 63, &v) < 0)
		die("cannot read /proc/sys/kernel/cap_last_cap");
	last_cap = (int)v;
	free(text);
	for (int s = 0; s < 5; s++)
		p.caps[s] &= last_cap == 63 ? ~0ull : (1ull << (last_cap + 1)) - 1;

	pidfd = pidfd_hold(opt_init);
	init_check(pidfd, config);
	userns = init_userns(pidfd, config);
	ncg = cgroups_open(config, cg_fds);
	if ((bundle_fd = open(opt_bundle, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		die_errno("opening %s", opt_bundle);
	if (json_object_get(json_object_get(config, "linux"), "seccomp"))
		filter = seccomp_filter(
			json_object_get(json_object_get(config, "linux"), "seccomp"), bundle_fd,
			&filter_flags);
	if (p.has_oom) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		int n = snprintf(num, sizeof(num), "%d", p.oom);
		if (fd < 0)
			die_errno("opening /proc/self/oom_score_adj");
		write_all(fd, num, (size_t)n, "/proc/self/oom_score_adj");
		close(fd);
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die_errno("PR_SET_DUMPABLE");
	if (userns && (selffd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		die_errno("opening /proc/self");
	if (setns(pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
				 CLONE_NEWCGROUP | (userns ? CLONE_NEWUSER : 0)) < 0) {
		if (errno == ESRCH)
			not_running("container %s: its init (pid %d) is gone", opt_id,
				    (int)opt_init);
		die_errno("entering the namespaces of pid %d", (int)opt_init);
	}
	if (userns) {
		userns_entered(selffd);
		close(selffd);
	}

	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	sigprocmask(SIG_BLOCK, &fwd, &old);
	if (pipe2(go, O_CLOEXEC) < 0)
		die_errno("pipe");
	if ((pid = fork()) < 0)
		die_errno("fork");
	if (pid == 0) {
		close(go[1]);
		child(&p, &filter, filter_flags, go[0], last_cap);
	}
	close(go[0]);
	/* not reaped before we wait, so the pid is still the child's */
	if ((r = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
		kill(pid, SIGKILL);
		die_errno("pidfd_open of the child");
	}
	child_pidfd = r;
	for (size_t i = 0; i < ncg; i++) {
		int n = snprintf(num, sizeof(num), "%d", (int)pid);
		if (write(cg_fds[i], num, (size_t)n) != n) {
			kill(pid, SIGKILL);
			die_errno("moving the process into the container's cgroups");
		}
		close(cg_fds[i]);
	}
	write_pidfile(bundle_fd, pid);
	if (write(go[1], "g", 1) != 1) {
		kill(pid, SIGKILL);
		die_errno("starting the process");
	}
	close(go[1]);
	close(bundle_fd);
	close(pidfd);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return wait_child(pid);
}
