/* OCI runtime spec generation: see spec.h.
 *
 * The semantics are containerd's CRI plugin's (internal/cri/opts,
 * container_create_linux.go, sandbox_run_linux.go), since that is what
 * Kubernetes workloads are tested against; where crisp differs on purpose
 * the code says so. Every value from the request is checked here, before
 * it reaches runc: runtimed does not trust the frontend that forwarded it.
 *
 * Strings from protobuf-c cannot carry a NUL (one on the wire ends the C
 * string early), so strings are checked for length, UTF-8 (jansson needs it,
 * and error messages travel back in gRPC status text) and, where they name
 * files or go into files, control characters. The bytes fields (env values)
 * are checked for NUL. */
#include "autoconfig.h"

#include <ctype.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtimed/spec.h"

#define OCI_VERSION "1.0.2"

/* Bounds on what a request may carry. */
#define SPEC_PATH_MAX 4096
#define SPEC_ID_MAX 128
#define SPEC_NAME_MAX 256
#define SPEC_HOSTNAME_MAX 64                  /* the kernel's HOST_NAME_MAX */
#define SPEC_ARG_MAX (128 * 1024)             /* one argv/env string: MAX_ARG_STRLEN */
#define SPEC_EXEC_TOTAL_MAX (2 * 1024 * 1024) /* all of argv and env, as execve allows */
#define SPEC_EXEC_ITEMS_MAX 65536
#define SPEC_LIST_MAX 1024          /* mounts, devices, caps, masked paths, ... */
#define SPEC_ANNOTATION_KEY_MAX 512 /* a 253-byte DNS prefix, '/', a 63-byte name, with room */
#define SPEC_GROUPS_MAX 65536       /* NGROUPS_MAX */
#define SPEC_ANNOTATIONS_TOTAL_MAX (256 * 1024) /* Kubernetes' own limit */
#define SPEC_FILE_MAX (4 * 1024 * 1024)         /* /etc/passwd, /etc/group, a seccomp profile */
#define SPEC_SECCOMP_RULES_MAX 4096

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ID_MAX UINT32_C(4294967294) /* (uid_t)-1 means "unchanged" to the kernel */
#define PAUSE_ID 65535              /* containerd's pause image runs as 65535:65535 */
#define SANDBOX_OOM_SCORE_ADJ (-998)
#define SANDBOX_CPU_SHARES 2
#define BIT(n) (UINT64_C(1) << (n))

/* The deprecated CRI fields (seccomp_profile_path, apparmor_profile) are
 * still what older kubelets and crictl send. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* ---- errors and JSON building ------------------------------------------- */

struct gen {
	const struct spec_host *host;
	const struct spec_pod *pod;
	const char *what; /* "container config", "sandbox config": prefixes errors */
	struct crisp_error *err;
	bool bad; /* a JSON value could not be built: reported at the end */
};

struct shown {
	char s[72];
};

/* A value quoted in an error message: at most 64 bytes of printable ASCII. */
static struct shown show(const char *s)
{
	struct shown r;
	size_t i, o = 0;

	if (!s)
		s = "";
	for (i = 0; s[i] && o < 64; i++)
		r.s[o++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(r.s + o, "...", 3);
		o += 3;
	}
	r.s[o] = '\0';
	return r;
}

_printf_(3, 4) static int fail(struct gen *g, enum crisp_errcode code, const char *fmt, ...)
{
	char msg[CRISP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(g->err, code, "%s: %s", g->what, msg);
}
#define invalid(g, ...) fail(g, CRISP_E_INVALID, __VA_ARGS__)

static json_t *jstr(struct gen *g, const char *s)
{
	json_t *v = json_string(s ? s : "");

	if (!v)
		g->bad = true;
	return v;
}

static void jset(struct gen *g, json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		g->bad = true;
}

static void jpush(struct gen *g, json_t *arr, json_t *v)
{
	if (!v || json_array_append_new(arr, v) < 0)
		g->bad = true;
}

static json_t *jstrs(struct gen *g, const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n && v[i]; i++)
		jpush(g, a, jstr(g, v[i]));
	return a;
}

static json_t *finish(struct gen *g, json_t *spec)
{
	if (!g->bad)
		return spec;
	json_decref(spec);
	invalid(g, "a value could not be encoded as JSON");
	return NULL;
}

/* ---- input checks ------------------------------------------------------- */

static bool utf8_valid(const char *s, size_t n)
{
	json_t *j = json_stringn(s ? s : "", n); /* jansson's own UTF-8 check */

	json_decref(j);
	return j != NULL;
}

static bool has_ctrl(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int check_str(struct gen *g, const char *field, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n > max)
		return invalid(g, "%s is longer than %zu bytes", field, max);
	if (!utf8_valid(s, n))
		return invalid(g, "%s '%s' is not valid UTF-8", field, show(s).s);
	return 0;
}

/* A name that goes into a file name, a cgroup or a message: bounded,
 * without control characters. */
static int check_name(struct gen *g, const char *field, const char *s, size_t max)
{
	if (check_str(g, field, s, max) < 0)
		return -1;
	if (has_ctrl(s))
		return invalid(g, "%s '%s' contains a control character", field, show(s).s);
	return 0;
}

static bool id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > SPEC_ID_MAX || s[0] == '.')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static bool has_dotdot(const char *p)
{
	for (const char *c = p; (c = strstr(c, "..")); c += 2)
		if ((c == p || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
			return true;
	return false;
}

/* An absolute path without ".." and control characters. */
static int check_abs_path(struct gen *g, const char *field, const char *s)
{
	if (check_name(g, field, s, SPEC_PATH_MAX) < 0)
		return -1;
	if (!s || s[0] != '/')
		return invalid(g, "%s '%s' is not absolute", field, show(s).s);
	if (has_dotdot(s))
		return invalid(g, "%s '%s' contains '..'", field, show(s).s);
	return 0;
}

/* "//a/./b/" -> "/a/b": one spelling per path, to compare destinations. */
static char *path_clean(const char *p)
{
	char *r = xmalloc(strlen(p) + 2);
	size_t o = 0;

	while (*p) {
		const char *e;
		size_t n;

		while (*p == '/')
			p++;
		e = strchrnul(p, '/');
		n = (size_t)(e - p);
		if (n && !(n == 1 && *p == '.')) {
			r[o++] = '/';
			memcpy(r + o, p, n);
			o += n;
		}
		p = e;
	}
	if (o == 0)
		r[o++] = '/';
	r[o] = '\0';
	return r;
}

static bool path_under(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (streq(root, "/"))
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static char *xstrndup(const char *s, size_t n)
{
	char *r = xmalloc(n + 1);

	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

static bool int_in(int64_t v, int64_t lo, int64_t hi)
{
	return v >= lo && v <= hi;
}

/* ---- the pod ------------------------------------------------------------ */

static const Runtime__V1__LinuxSandboxSecurityContext *pod_sc(const struct spec_pod *pod)
{
	const Runtime__V1__LinuxPodSandboxConfig *lx = pod->config->linux;

	return lx ? lx->security_context : NULL;
}

static Runtime__V1__NamespaceMode pod_ns(const struct spec_pod *pod, char which)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc = pod_sc(pod);
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;

	if (!o)
		return RUNTIME__V1__NAMESPACE_MODE__POD;
	return which == 'n' ? o->network : which == 'p' ? o->pid : o->ipc;
}

/* User namespaces are not supported yet: a pod asking for one fails
 * rather than running without the isolation it asked for. */
static int check_userns(struct gen *g, const char *field, const Runtime__V1__NamespaceOption *o)
{
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	if (!u || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return 0;
	if (u->mode == RUNTIME__V1__NAMESPACE_MODE__POD && u->n_uids == 0 && u->n_gids == 0)
		return 0;
	return fail(g, CRISP_E_UNIMPLEMENTED,
		    "%s.userns_options: user namespaces are not supported", field);
}

static int check_pod(struct gen *g, const struct spec_pod *pod)
{
	const struct {
		const char *field, *path;
	} paths[] = {
		{ "netns_path", pod->netns_path }, { "hostname_path", pod->hostname_path },
		{ "hosts_path", pod->hosts_path }, { "resolv_path", pod->resolv_path },
		{ "shm_path", pod->shm_path },
	};
	const Runtime__V1__LinuxSandboxSecurityContext *sc;
	const Runtime__V1__PodSandboxMetadata *md;

	if (!pod->config)
		return invalid(g, "the sandbox config is missing");
	md = pod->config->metadata;
	if (!id_valid(pod->sandbox_id))
		return invalid(g, "sandbox id '%s' is not valid", show(pod->sandbox_id).s);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (paths[i].path && *paths[i].path &&
		    check_abs_path(g, paths[i].field, paths[i].path) < 0)
			return -1;
	if (check_name(g, "sandbox hostname", pod->config->hostname, SPEC_HOSTNAME_MAX) < 0 ||
	    check_str(g, "sandbox log_directory", pod->config->log_directory, SPEC_PATH_MAX) < 0)
		return -1;
	if (md && (check_str(g, "sandbox metadata.name", md->name, SPEC_NAME_MAX) < 0 ||
		   check_str(g, "sandbox metadata.namespace", md->namespace_, SPEC_NAME_MAX) < 0 ||
		   check_str(g, "sandbox metadata.uid", md->uid, SPEC_NAME_MAX) < 0))
		return -1;
	sc = pod_sc(pod);
	return check_userns(g, "sandbox linux.security_context.namespace_options",
			    sc ? sc->namespace_options : NULL);
}

/* ---- capabilities ------------------------------------------------------- */

static const char *const cap_names[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"DAC_READ_SEARCH",
	"FOWNER",
	"FSETID",
	"KILL",
	"SETGID",
	"SETUID",
	"SETPCAP",
	"LINUX_IMMUTABLE",
	"NET_BIND_SERVICE",
	"NET_BROADCAST",
	"NET_ADMIN",
	"NET_RAW",
	"IPC_LOCK",
	"IPC_OWNER",
	"SYS_MODULE",
	"SYS_RAWIO",
	"SYS_CHROOT",
	"SYS_PTRACE",
	"SYS_PACCT",
	"SYS_ADMIN",
	"SYS_BOOT",
	"SYS_NICE",
	"SYS_RESOURCE",
	"SYS_TIME",
	"SYS_TTY_CONFIG",
	"MKNOD",
	"LEASE",
	"AUDIT_WRITE",
	"AUDIT_CONTROL",
	"SETFCAP",
	"MAC_OVERRIDE",
	"MAC_ADMIN",
	"SYSLOG",
	"WAKE_ALARM",
	"BLOCK_SUSPEND",
	"AUDIT_READ",
	"PERFMON",
	"BPF",
	"CHECKPOINT_RESTORE",
};

/* containerd's (and Docker's) default set. */
static const uint64_t default_caps = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) |
				     BIT(CAP_FOWNER) | BIT(CAP_MKNOD) | BIT(CAP_NET_RAW) |
				     BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETFCAP) |
				     BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) |
				     BIT(CAP_SYS_CHROOT) | BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);

/* "NET_ADMIN", "net_admin" or "CAP_NET_ADMIN": the number, or -1. */
static int cap_parse(const char *s)
{
	if (strncasecmp(s, "CAP_", 4) == 0)
		s += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(s, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

static json_t *cap_array(struct gen *g, uint64_t set)
{
	json_t *a = json_array();
	char name[40];

	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (set & BIT(i)) {
			snprintf(name, sizeof(name), "CAP_%s", cap_names[i]);
			jpush(g, a, jstr(g, name));
		}
	return a;
}

static json_t *caps_json(struct gen *g, uint64_t set, uint64_t ambient)
{
	json_t *o = json_object();

	jset(g, o, "bounding", cap_array(g, set));
	jset(g, o, "effective", cap_array(g, set));
	jset(g, o, "inheritable", cap_array(g, ambient));
	jset(g, o, "permitted", cap_array(g, set));
	jset(g, o, "ambient", cap_array(g, ambient));
	return o;
}

static int cap_list(struct gen *g, const char *field, char **names, size_t n, bool allow_all,
		    bool *ret_all, uint64_t *ret)
{
	char f[96];

	*ret = 0;
	*ret_all = false;
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	for (size_t i = 0; i < n; i++) {
		int c;

		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (check_str(g, f, names[i], SPEC_NAME_MAX) < 0)
			return -1;
		if (allow_all && strcasecmp(names[i], "ALL") == 0) {
			*ret_all = true;
			continue;
		}
		c = cap_parse(names[i]);
		if (c < 0)
			return invalid(g, "%s '%s' is not a capability", f, show(names[i]).s);
		*ret |= BIT(c);
	}
	return 0;
}

/* containerd's order: the default set; "ALL" in add gives every capability
 * the host has, "ALL" in drop removes every one; then the named ones are
 * added, then the named ones dropped. Ambient capabilities are added to every
 * set. Privileged containers get every capability of the host. A named
 * capability the host's bounding set lacks cannot be granted: runc would
 * fail obscurely, so it is an error here. */
static int container_caps(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
			  bool privileged, json_t *process, uint64_t *ret_bounding)
{
	static const char F[] = "linux.security_context.capabilities";
	const Runtime__V1__Capability *cp = sc ? sc->capabilities : NULL;
	uint64_t host = g->host->cap_bounding, add = 0, drop = 0, amb = 0, set, missing;
	bool add_all = false, drop_all = false, unused;
	char f[80];

	if (cp) {
		snprintf(f, sizeof(f), "%s.add_capabilities", F);
		if (cap_list(g, f, cp->add_capabilities, cp->n_add_capabilities, true, &add_all,
			     &add) < 0)
			return -1;
		snprintf(f, sizeof(f), "%s.drop_capabilities", F);
		if (cap_list(g, f, cp->drop_capabilities, cp->n_drop_capabilities, true, &drop_all,
			     &drop) < 0)
			return -1;
		snprintf(f, sizeof(f), "%s.add_ambient_capabilities", F);
		if (cap_list(g, f, cp->add_ambient_capabilities, cp->n_add_ambient_capabilities,
			     false, &unused, &amb) < 0)
			return -1;
	}
	missing = (privileged ? amb : add | amb) & ~host;
	if (missing)
		return invalid(g, "%s: CAP_%s is not in the host's bounding set", F,
			       cap_names[__builtin_ctzll(missing)]);
	if (privileged) {
		set = host;
	} else {
		set = default_caps & host;
		if (add_all)
			set = host;
		if (drop_all)
			set = 0;
		set = (set | add | amb) & ~drop;
	}
	jset(g, process, "capabilities", caps_json(g, set, amb & set));
	*ret_bounding = set;
	return 0;
}

/* ---- users -------------------------------------------------------------- */

struct slice {
	const char *p;
	size_t n;
};

/* Split at sep into at most max fields, the last one taking the rest. */
static size_t split(struct slice s, char sep, struct slice *f, size_t max)
{
	size_t nf = 0;

	while (nf < max) {
		const char *e = nf + 1 < max ? memchr(s.p, sep, s.n) : NULL;
		size_t n = e ? (size_t)(e - s.p) : s.n;

		f[nf++] = (struct slice){ s.p, n };
		if (!e)
			break;
		s.p = e + 1;
		s.n -= n + 1;
	}
	return nf;
}

static bool slice_is(struct slice s, const char *str)
{
	return s.n == strlen(str) && memcmp(s.p, str, s.n) == 0;
}

static bool slice_eq(struct slice a, struct slice b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static bool slice_id(struct slice s, uint32_t *ret)
{
	uint64_t v = 0;

	if (s.n == 0 || s.n > 10)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > ID_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool next_line(const char **cur, struct slice *line)
{
	const char *p = *cur, *nl;

	if (!p || !*p)
		return false;
	nl = strchr(p, '\n');
	line->p = p;
	line->n = nl ? (size_t)(nl - p) : strlen(p);
	*cur = nl ? nl + 1 : p + line->n;
	if (line->n && p[line->n - 1] == '\r')
		line->n--;
	return true;
}

/* An /etc/passwd line "name:password:uid:gid:gecos:home:shell" or an
 * /etc/group line "name:password:gid:member,member"; false for blank lines,
 * comments and lines that do not parse, which libc skips as well. */
struct dbent {
	struct slice name, members;
	uint32_t id, gid;
};

static bool db_parse(struct slice line, bool group, struct dbent *ret)
{
	struct slice f[7];
	size_t nf = split(line, ':', f, group ? 4 : 7);

	if (nf < (group ? 3u : 4u) || f[0].n == 0 || f[0].p[0] == '#')
		return false;
	ret->name = f[0];
	ret->members = group && nf == 4 ? f[3] : (struct slice){ "", 0 };
	if (!slice_id(f[2], &ret->id))
		return false;
	return group || slice_id(f[3], &ret->gid);
}

/* The first entry named `name`, or with id *id when name is NULL. */
static bool db_find(const char *db, bool group, const char *name, const uint32_t *id,
		    struct dbent *ret)
{
	struct slice line;

	for (const char *cur = db; next_line(&cur, &line);) {
		if (!db_parse(line, group, ret))
			continue;
		if (name ? slice_is(ret->name, name) : ret->id == *id)
			return true;
	}
	return false;
}

static bool has_member(struct slice members, struct slice user)
{
	struct slice f[2];

	while (members.n) {
		split(members, ',', f, 2);
		if (slice_eq(f[0], user))
			return true;
		if (f[0].n == members.n)
			break;
		members.p += f[0].n + 1;
		members.n -= f[0].n + 1;
	}
	return false;
}

struct gids {
	uint32_t *v;
	size_t n;
};

static int gids_add(struct gen *g, struct gids *s, uint32_t gid)
{
	if (s->n >= SPEC_GROUPS_MAX)
		return invalid(g, "the user is in more than %d groups", SPEC_GROUPS_MAX);
	if ((s->n & (s->n - 1)) == 0) /* full at 0, 1, 2, 4, ...: double */
		s->v = xrealloc(s->v, (s->n ? s->n * 2 : 1) * sizeof(*s->v));
	s->v[s->n++] = gid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* process.user: uid, gid and the sorted, de-duplicated additionalGids. */
static json_t *user_json(struct gen *g, uint32_t uid, uint32_t gid, struct gids *s)
{
	json_t *u = json_object(), *a = json_array();

	jset(g, u, "uid", json_integer(uid));
	jset(g, u, "gid", json_integer(gid));
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	for (size_t i = 0; i < s->n; i++)
		if (i == 0 || s->v[i] != s->v[i - 1])
			jpush(g, a, json_integer(s->v[i]));
	if (json_array_size(a))
		jset(g, u, "additionalGids", a);
	else
		json_decref(a);
	return u;
}

static int supplemental_groups(struct gen *g, const char *field, const int64_t *v, size_t n,
			       struct gids *s)
{
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!int_in(v[i], 0, ID_MAX))
			return invalid(g, "%s[%zu] %lld is not a group id", field, i,
				       (long long)v[i]);
		if (gids_add(g, s, (uint32_t)v[i]) < 0)
			return -1;
	}
	return 0;
}

/* Who the container runs as, in CRI terms and OCI image terms. */
struct user_req {
	const char *origin; /* the field it came from, for messages */
	char *name, *group;
	bool has_uid, has_gid;
	uint32_t uid, gid;
};

/* The image's USER: "name", "uid", "name:group", "uid:gid", ... */
static int parse_image_user(struct gen *g, const char *s, struct user_req *r)
{
	const char *colon = strchr(s, ':');
	struct slice u = { s, colon ? (size_t)(colon - s) : strlen(s) };

	r->origin = "image user";
	if (check_name(g, "image user", s, SPEC_NAME_MAX) < 0)
		return -1;
	if (u.n == 0)
		return invalid(g, "image user '%s' names no user", show(s).s);
	if (!slice_id(u, &r->uid))
		r->name = xstrndup(s, u.n);
	r->has_uid = !r->name;
	if (colon) {
		struct slice gr = { colon + 1, strlen(colon + 1) };

		if (gr.n == 0)
			return invalid(g, "image user '%s' names no group", show(s).s);
		if (!slice_id(gr, &r->gid))
			r->group = xstrdup(colon + 1);
		r->has_gid = !r->group;
	}
	return 0;
}

/* The request's user, else the image's: containerd's generateUserString. */
static int user_request(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
			const char *image_user, struct user_req *r)
{
	static const char F[] = "linux.security_context";
	const char *username = sc ? sc->run_as_username : NULL;

	if (username && *username) {
		if (check_name(g, "linux.security_context.run_as_username", username,
			       SPEC_NAME_MAX) < 0)
			return -1;
		if (sc->run_as_user)
			return invalid(g, "%s: run_as_user and run_as_username are both set", F);
		r->origin = "linux.security_context.run_as_username";
		r->name = xstrdup(username);
	} else if (sc && sc->run_as_user) {
		if (!int_in(sc->run_as_user->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_user %lld is not a user id", F,
				       (long long)sc->run_as_user->value);
		r->origin = "linux.security_context.run_as_user";
		r->has_uid = true;
		r->uid = (uint32_t)sc->run_as_user->value;
	} else if (image_user && *image_user) {
		if (parse_image_user(g, image_user, r) < 0)
			return -1;
	}
	if (sc && sc->run_as_group) {
		if (!(username && *username) && !sc->run_as_user)
			return invalid(g, "%s.run_as_group is set without run_as_user", F);
		if (!int_in(sc->run_as_group->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_group %lld is not a group id", F,
				       (long long)sc->run_as_group->value);
		free(r->group);
		r->group = NULL;
		r->has_gid = true;
		r->gid = (uint32_t)sc->run_as_group->value;
	}
	return 0;
}

/* Resolve in the image's /etc/passwd and /etc/group as containerd's
 * WithUser and WithAdditionalGIDs do: a name must exist; a uid need not
 * (its gid is then 0); supplementary groups are those of /etc/group that
 * list the user (policy Merge) plus the request's supplemental_groups. */
static int container_user(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
			  const CrispIpc__ImageRunConfig *img, const struct spec_image_files *files,
			  json_t *process)
{
	struct user_req r = { 0 };
	struct gids s = { 0 };
	struct dbent pw, gr;
	bool have_pw = false;
	uint32_t gid = 0;
	int ret = -1;

	if ((files->passwd && strlen(files->passwd) > SPEC_FILE_MAX) ||
	    (files->group && strlen(files->group) > SPEC_FILE_MAX))
		return invalid(g, "the image's /etc/passwd or /etc/group is larger than %d bytes",
			       SPEC_FILE_MAX);
	if (user_request(g, sc, img->user, &r) < 0)
		goto out;
	if (r.name) {
		if (!files->passwd || !db_find(files->passwd, false, r.name, NULL, &pw)) {
			invalid(g, "%s '%s' is not in the image's /etc/passwd", r.origin,
				show(r.name).s);
			goto out;
		}
		have_pw = true;
	} else if (files->passwd) {
		have_pw = db_find(files->passwd, false, NULL, &r.uid, &pw);
	}
	if (have_pw) {
		r.uid = pw.id;
		gid = pw.gid;
	}
	if (r.group) {
		if (!files->group || !db_find(files->group, true, r.group, NULL, &gr)) {
			invalid(g, "%s group '%s' is not in the image's /etc/group", r.origin,
				show(r.group).s);
			goto out;
		}
		gid = gr.id;
	} else if (r.has_gid) {
		gid = r.gid;
	}

	if (have_pw && files->group &&
	    !(sc &&
	      sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)) {
		struct slice line;

		for (const char *cur = files->group; next_line(&cur, &line);)
			if (db_parse(line, true, &gr) && has_member(gr.members, pw.name) &&
			    gids_add(g, &s, gr.id) < 0)
				goto out;
	}
	if (sc && supplemental_groups(g, "linux.security_context.supplemental_groups",
				      sc->supplemental_groups, sc->n_supplemental_groups, &s) < 0)
		goto out;
	jset(g, process, "user", user_json(g, r.uid, gid, &s));
	ret = 0;
out:
	free(r.name);
	free(r.group);
	free(s.v);
	return ret;
}

/* ---- process: args, env, cwd -------------------------------------------- */

struct exec_size {
	size_t total, items;
};

static int exec_string(struct gen *g, const char *field, const char *s, struct exec_size *sz)
{
	if (check_str(g, field, s, SPEC_ARG_MAX) < 0)
		return -1;
	sz->total += strlen(s ? s : "") + 1;
	if (++sz->items > SPEC_EXEC_ITEMS_MAX || sz->total > SPEC_EXEC_TOTAL_MAX)
		return invalid(g, "process arguments and environment are larger than %d bytes",
			       SPEC_EXEC_TOTAL_MAX);
	return 0;
}

/* Kubernetes' rules (containerd's WithProcessArgs): command replaces the
 * image's entrypoint and drops its cmd; args replace cmd. */
static int process_args(struct gen *g, const Runtime__V1__ContainerConfig *cfg,
			const CrispIpc__ImageRunConfig *img, json_t *process, struct exec_size *sz)
{
	char **cmd = cfg->command, **args = cfg->args;
	size_t n_cmd = cfg->n_command, n_args = cfg->n_args;
	const char *cf = "command", *af = "args";
	json_t *a = json_array();
	char f[64];

	if (n_cmd == 0) {
		if (n_args == 0) {
			args = img->cmd;
			n_args = img->n_cmd;
			af = "image cmd";
		}
		/* An entrypoint of [""] means "none" (Docker's ENTRYPOINT []). */
		if (!(img->n_entrypoint == 1 && !*img->entrypoint[0])) {
			cmd = img->entrypoint;
			n_cmd = img->n_entrypoint;
			cf = "image entrypoint";
		}
	}
	jset(g, process, "args", a);
	if (n_cmd + n_args == 0)
		return invalid(g, "no command: the request and the image give none");
	for (size_t i = 0; i < n_cmd + n_args; i++) {
		const char *s = i < n_cmd ? cmd[i] : args[i - n_cmd];

		snprintf(f, sizeof(f), "%s[%zu]", i < n_cmd ? cf : af, i < n_cmd ? i : i - n_cmd);
		if (exec_string(g, f, s, sz) < 0)
			return -1;
		jpush(g, a, jstr(g, s));
	}
	if (!*json_string_value(json_array_get(a, 0)))
		return invalid(g, "the command to run is an empty string");
	return 0;
}

/* The environment in order, with a later entry for a name replacing the
 * earlier one in place, and an entry without '=' unsetting it
 * (containerd's replaceOrAppendEnvValues). */
struct env {
	json_t *list;  /* "NAME=value", or null where one was unset */
	json_t *index; /* NAME -> its position in list */
};

static void env_put(struct gen *g, struct env *e, const char *entry)
{
	const char *eq = strchr(entry, '=');
	_cleanup_free_ char *name = xstrndup(entry, eq ? (size_t)(eq - entry) : strlen(entry));
	json_t *pos = json_object_get(e->index, name);

	if (!eq) {
		if (pos) {
			json_array_set_new(e->list, (size_t)json_integer_value(pos), json_null());
			json_object_del(e->index, name);
		}
		return;
	}
	if (pos) {
		if (json_array_set_new(e->list, (size_t)json_integer_value(pos), jstr(g, entry)) <
		    0)
			g->bad = true;
		return;
	}
	jset(g, e->index, name, json_integer((json_int_t)json_array_size(e->list)));
	jpush(g, e->list, jstr(g, entry));
}

static int cri_env(struct gen *g, size_t i, const Runtime__V1__KeyValue *kv, struct env *e)
{
	const char *key = kv->key ? kv->key : "";
	_cleanup_free_ char *entry = NULL;
	char f[64];
	size_t n = strlen(key);

	snprintf(f, sizeof(f), "envs[%zu].key", i);
	if (check_str(g, f, key, SPEC_ARG_MAX) < 0)
		return -1;
	if (n == 0 || strchr(key, '='))
		return invalid(g, "%s '%s' is not a variable name", f, show(key).s);
	snprintf(f, sizeof(f), "envs[%zu].value", i);
	if (kv->value.len && memchr(kv->value.data, '\0', kv->value.len))
		return invalid(g, "%s of '%s' contains a NUL byte", f, show(key).s);
	if (kv->value.len > SPEC_ARG_MAX ||
	    !utf8_valid((const char *)kv->value.data, kv->value.len))
		return invalid(g, "%s of '%s' is longer than %d bytes or not UTF-8", f, show(key).s,
			       SPEC_ARG_MAX);
	entry = xmalloc(n + kv->value.len + 2);
	memcpy(entry, key, n);
	entry[n] = '=';
	if (kv->value.len)
		memcpy(entry + n + 1, kv->value.data, kv->value.len);
	entry[n + 1 + kv->value.len] = '\0';
	env_put(g, e, entry);
	return 0;
}

/* PATH by default, HOSTNAME, the image's env, then the request's. */
static int process_env(struct gen *g, const Runtime__V1__ContainerConfig *cfg,
		       const CrispIpc__ImageRunConfig *img, json_t *process, struct exec_size *sz)
{
	const char *hostname = g->pod->config->hostname;
	struct env e = { json_array(), json_object() };
	json_t *out = json_array();
	char f[64];
	int ret = -1;

	env_put(g, &e, DEFAULT_PATH_ENV);
	if (!hostname || !*hostname)
		hostname = g->host->node_hostname;
	if (hostname && *hostname) {
		_cleanup_free_ char *h = xasprintf("HOSTNAME=%s", hostname);

		env_put(g, &e, h);
	}
	if (img->n_env > SPEC_EXEC_ITEMS_MAX || cfg->n_envs > SPEC_EXEC_ITEMS_MAX) {
		invalid(g, "more than %d environment variables", SPEC_EXEC_ITEMS_MAX);
		goto out;
	}
	for (size_t i = 0; i < img->n_env; i++) {
		snprintf(f, sizeof(f), "image env[%zu]", i);
		if (check_str(g, f, img->env[i], SPEC_ARG_MAX) < 0)
			goto out;
		if (!img->env[i][0] || img->env[i][0] == '=') {
			invalid(g, "%s '%s' has no variable name", f, show(img->env[i]).s);
			goto out;
		}
		env_put(g, &e, img->env[i]);
	}
	for (size_t i = 0; i < cfg->n_envs; i++)
		if (cri_env(g, i, cfg->envs[i], &e) < 0)
			goto out;
	for (size_t i = 0; i < json_array_size(e.list); i++) {
		json_t *v = json_array_get(e.list, i);

		if (!json_is_string(v))
			continue;
		if (exec_string(g, "env", json_string_value(v), sz) < 0)
			goto out;
		jpush(g, out, json_incref(v));
	}
	jset(g, process, "env", json_incref(out));
	ret = 0;
out:
	json_decref(out);
	json_decref(e.list);
	json_decref(e.index);
	return ret;
}

static int process_cwd(struct gen *g, const Runtime__V1__ContainerConfig *cfg,
		       const CrispIpc__ImageRunConfig *img, json_t *process)
{
	const char *cwd = "/", *field = "working_dir";

	if (cfg->working_dir && *cfg->working_dir)
		cwd = cfg->working_dir;
	else if (img->working_dir && *img->working_dir)
		cwd = img->working_dir, field = "image working_dir";
	if (check_abs_path(g, field, cwd) < 0)
		return -1;
	jset(g, process, "cwd", jstr(g, cwd));
	return 0;
}

static void process_rlimits(struct gen *g, json_t *process)
{
	json_t *r;

	if (!g->host->rlimit_nofile)
		return;
	r = json_pack("[{s:s, s:I, s:I}]", "type", "RLIMIT_NOFILE", "hard",
		      (json_int_t)g->host->rlimit_nofile, "soft",
		      (json_int_t)g->host->rlimit_nofile);
	jset(g, process, "rlimits", r);
}

/* Clamped to what the daemon may set (restrict_oom_score_adj). */
static int oom_score_adj(const struct spec_host *host, int adj)
{
	return host->oom_score_adj_min != INT32_MIN && adj < host->oom_score_adj_min
		       ? host->oom_score_adj_min
		       : adj;
}

/* ---- mounts ------------------------------------------------------------- */

/* The mounts every container gets, containerd's default set without /run.
 * A request's mount at the same destination replaces one; a request's
 * mount of /dev replaces every default under /dev. */
static const struct default_mount {
	const char *dst, *type, *src;
	const char *opts[7];
} default_mounts[] = {
	{ "/proc", "proc", "proc", { "nosuid", "noexec", "nodev" } },
	{ "/dev", "tmpfs", "tmpfs", { "nosuid", "strictatime", "mode=755", "size=65536k" } },
	{ "/dev/pts",
	  "devpts",
	  "devpts",
	  { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" } },
	{ "/dev/shm", "tmpfs", "shm", { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } },
	{ "/dev/mqueue", "mqueue", "mqueue", { "nosuid", "noexec", "nodev" } },
	{ "/sys", "sysfs", "sysfs", { "nosuid", "noexec", "nodev", "ro" } },
	{ "/sys/fs/cgroup", "cgroup", "cgroup", { "nosuid", "noexec", "nodev", "relatime", "ro" } },
};

struct mnt {
	char *dst, *src;
	json_t *options;
	size_t depth, order;
};

struct mnts {
	struct mnt *v;
	size_t n;
};

static void mnts_free(struct mnts *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].dst);
		free(m->v[i].src);
		json_decref(m->v[i].options);
	}
	free(m->v);
}

static const struct mnt *mnts_find(const struct mnts *m, const char *dst)
{
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->v[i].dst, dst))
			return &m->v[i];
	return NULL;
}

/* Parents before children: the number of components, stable (Docker's and
 * containerd's orderedMounts). */
static int mnt_cmp(const void *a, const void *b)
{
	const struct mnt *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void mnts_add(struct mnts *m, const char *dst, const char *src, json_t *options)
{
	struct mnt *n;

	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
	n = &m->v[m->n];
	n->dst = path_clean(dst);
	n->src = path_clean(src);
	n->options = options;
	n->depth = 0;
	for (const char *p = n->dst; *p; p++)
		n->depth += *p == '/';
	n->order = m->n++;
}

static json_t *mount_json(struct gen *g, const char *dst, const char *type, const char *src,
			  json_t *options)
{
	json_t *m = json_object();

	jset(g, m, "destination", jstr(g, dst));
	jset(g, m, "type", jstr(g, type));
	jset(g, m, "source", jstr(g, src));
	jset(g, m, "options", options);
	return m;
}

/* The defaults not replaced, then the bind mounts parents first. */
static void mounts_emit(struct gen *g, struct mnts *binds, bool privileged, bool cgroup,
			json_t *out)
{
	bool dev = mnts_find(binds, "/dev") != NULL;

	for (size_t i = 0; i < ARRAY_SIZE(default_mounts); i++) {
		const struct default_mount *d = &default_mounts[i];
		json_t *opts;

		if (mnts_find(binds, d->dst) || (dev && strncmp(d->dst, "/dev/", 5) == 0))
			continue;
		if (!cgroup && streq(d->type, "cgroup"))
			continue;
		opts = jstrs(g, d->opts, ARRAY_SIZE(d->opts));
		/* Privileged containers get sysfs and cgroupfs read-write. */
		if (privileged && (streq(d->type, "sysfs") || streq(d->type, "cgroup")))
			json_array_set_new(opts, json_array_size(opts) - 1, jstr(g, "rw"));
		jpush(g, out, mount_json(g, d->dst, d->type, d->src, opts));
	}
	qsort(binds->v, binds->n, sizeof(*binds->v), mnt_cmp);
	for (size_t i = 0; i < binds->n; i++)
		jpush(g, out,
		      mount_json(g, binds->v[i].dst, "bind", binds->v[i].src,
				 json_incref(binds->v[i].options)));
}

static json_t *bind_options(struct gen *g, const char *propagation, const char *rw)
{
	json_t *o = json_array();

	jpush(g, o, jstr(g, "rbind"));
	jpush(g, o, jstr(g, propagation));
	jpush(g, o, jstr(g, rw));
	return o;
}

static const char *const mount_option_allowed[] = {
	"nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime",
};

static int mount_options(struct gen *g, const char *field, const Runtime__V1__Mount *m,
			 json_t *opts)
{
	char f[96];

	if (m->n_mount_options > SPEC_LIST_MAX)
		return invalid(g, "%s.mount_options has more than %d entries", field,
			       SPEC_LIST_MAX);
	for (size_t i = 0; i < m->n_mount_options; i++) {
		const char *o = m->mount_options[i];
		bool ok = false;

		snprintf(f, sizeof(f), "%s.mount_options[%zu]", field, i);
		if (check_name(g, f, o, SPEC_NAME_MAX) < 0)
			return -1;
		for (size_t j = 0; j < ARRAY_SIZE(mount_option_allowed); j++)
			ok |= streq(o, mount_option_allowed[j]);
		if (!ok)
			return invalid(g, "%s '%s' is not an allowed mount option", f, show(o).s);
		jpush(g, opts, jstr(g, o));
	}
	return 0;
}

/* One CRI mount: a bind mount of host_path. propagation sets the rootfs's
 * propagation as containerd does (rshared wins over rslave); that the host
 * mount under host_path is itself shared or slave, which containerd checks
 * in mountinfo, is left to runc and the caller. selinux_relabel is ignored:
 * these hosts have no SELinux. */
static int cri_mount(struct gen *g, size_t i, const Runtime__V1__Mount *m, struct mnts *binds,
		     const char **propagation)
{
	static const char *const prop[] = { "rprivate", "rslave", "rshared" };
	char f[40], ff[64];
	const char *rw = m->readonly ? "ro" : "rw";
	_cleanup_free_ char *dst = NULL;
	json_t *opts;

	snprintf(f, sizeof(f), "mounts[%zu]", i);
	snprintf(ff, sizeof(ff), "%s.container_path", f);
	if (check_abs_path(g, ff, m->container_path) < 0)
		return -1;
	dst = path_clean(m->container_path);
	if (streq(dst, "/"))
		return invalid(g, "%s '/' would hide the root filesystem", ff);
	if (mnts_find(binds, dst))
		return invalid(g, "%s '%s' is mounted twice", ff, show(dst).s);
	if (m->image && m->image->image && *m->image->image)
		return fail(g, CRISP_E_UNIMPLEMENTED, "%s.image: image volumes are not supported",
			    f);
	if (m->n_uidmappings || m->n_gidmappings)
		return fail(g, CRISP_E_UNIMPLEMENTED, "%s: id-mapped mounts are not supported", f);
	snprintf(ff, sizeof(ff), "%s.host_path", f);
	if (check_abs_path(g, ff, m->host_path) < 0)
		return -1;
	if ((unsigned)m->propagation >= ARRAY_SIZE(prop))
		return invalid(g, "%s.propagation %d is not a propagation mode", f,
			       (int)m->propagation);
	if (m->recursive_read_only) {
		if (!m->readonly ||
		    m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
			return invalid(g,
				       "%s.recursive_read_only needs readonly and private "
				       "propagation",
				       f);
		if (!g->host->rro_mounts)
			return invalid(g,
				       "%s.recursive_read_only: the kernel has no recursive "
				       "read-only mounts",
				       f);
		rw = "rro";
	}
	opts = bind_options(g, prop[m->propagation], rw);
	mnts_add(binds, dst, m->host_path, opts);
	if (mount_options(g, f, m, opts) < 0)
		return -1;
	if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
		*propagation = "rshared";
	else if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER &&
		 !*propagation)
		*propagation = "rslave";
	return 0;
}

/* The pod's files, unless the request mounts something there itself
 * (kubelet mounts its own /etc/hosts for most pods). Read-only when the
 * rootfs is, as containerd does. Image volumes (the image config's
 * Volumes) are not mounted: like containerd's default, they stay plain
 * directories of the container's writable layer. */
static void pod_file_mounts(struct gen *g, bool readonly, bool host_ipc, struct mnts *binds)
{
	const struct spec_pod *pod = g->pod;
	const struct {
		const char *dst, *src;
		bool ro;
	} files[] = {
		{ "/etc/hostname", pod->hostname_path, readonly },
		{ "/etc/hosts", pod->hosts_path, readonly },
		{ "/etc/resolv.conf", pod->resolv_path, readonly },
		{ "/dev/shm", host_ipc ? "/dev/shm" : pod->shm_path, false },
	};
	size_t n_cri = binds->n;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		bool covered = false;

		if (!files[i].src || !*files[i].src)
			continue;
		for (size_t j = 0; j < n_cri; j++)
			covered |= streq(binds->v[j].dst, files[i].dst);
		if (!covered)
			mnts_add(binds, files[i].dst, files[i].src,
				 bind_options(g, "rprivate", files[i].ro ? "ro" : "rw"));
	}
}

static int container_mounts(struct gen *g, const Runtime__V1__ContainerConfig *cfg, bool privileged,
			    bool readonly, bool host_ipc, json_t *spec, json_t *lx)
{
	struct mnts binds = { 0 };
	const char *propagation = NULL;
	json_t *out = json_array();
	int ret = -1;

	jset(g, spec, "mounts", out);
	if (cfg->n_mounts > SPEC_LIST_MAX) {
		invalid(g, "mounts has more than %d entries", SPEC_LIST_MAX);
		goto out;
	}
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (cri_mount(g, i, cfg->mounts[i], &binds, &propagation) < 0)
			goto out;
	pod_file_mounts(g, readonly, host_ipc, &binds);
	mounts_emit(g, &binds, privileged, true, out);
	if (propagation)
		jset(g, lx, "rootfsPropagation", jstr(g, propagation));
	ret = 0;
out:
	mnts_free(&binds);
	return ret;
}

/* ---- devices ------------------------------------------------------------ */

/* What runc allows by itself, written out so the spec says it: mknod of
 * any node, and the standard character devices. */
static const struct {
	char type;
	int64_t major, minor; /* -1: any */
	const char *access;
} default_device_rules[] = {
	{ 'c', -1, -1, "m" },    { 'b', -1, -1, "m" }, { 'c', 1, 3, "rwm" }, /* /dev/null */
	{ 'c', 1, 5, "rwm" },                                                /* /dev/zero */
	{ 'c', 1, 7, "rwm" },                                                /* /dev/full */
	{ 'c', 5, 0, "rwm" },                                                /* /dev/tty */
	{ 'c', 1, 8, "rwm" },                                                /* /dev/random */
	{ 'c', 1, 9, "rwm" },                                                /* /dev/urandom */
	{ 'c', 5, 2, "rwm" },                                                /* /dev/ptmx */
	{ 'c', 136, -1, "rwm" },                                             /* /dev/pts/N */
};

static json_t *device_rule(struct gen *g, bool allow, char type, int64_t major, int64_t minor,
			   const char *access)
{
	json_t *r = json_object();
	char t[2] = { type, '\0' };

	jset(g, r, "allow", json_boolean(allow));
	if (type)
		jset(g, r, "type", jstr(g, t));
	if (major >= 0)
		jset(g, r, "major", json_integer(major));
	if (minor >= 0)
		jset(g, r, "minor", json_integer(minor));
	jset(g, r, "access", jstr(g, access));
	return r;
}

static json_t *default_device_rules_json(struct gen *g, bool privileged)
{
	json_t *rules = json_array();

	if (privileged) {
		jpush(g, rules, device_rule(g, true, 0, -1, -1, "rwm"));
		return rules;
	}
	jpush(g, rules, device_rule(g, false, 0, -1, -1, "rwm"));
	for (size_t i = 0; i < ARRAY_SIZE(default_device_rules); i++)
		jpush(g, rules,
		      device_rule(g, true, default_device_rules[i].type,
				  default_device_rules[i].major, default_device_rules[i].minor,
				  default_device_rules[i].access));
	return rules;
}

static json_t *device_json(struct gen *g, const char *path, const struct spec_device *d)
{
	char t[2] = { d->type, '\0' };

	return json_pack("{s:o, s:s, s:I, s:I, s:I, s:I, s:I}", "path", jstr(g, path), "type", t,
			 "major", (json_int_t)d->major, "minor", (json_int_t)d->minor, "fileMode",
			 (json_int_t)d->file_mode, "uid", (json_int_t)d->uid, "gid",
			 (json_int_t)d->gid);
}

static bool devices_has(json_t *devices, const char *path)
{
	size_t i;
	json_t *d;

	json_array_foreach(devices, i, d) if (streq(json_string_value(json_object_get(d, "path")),
						    path)) return true;
	return false;
}

static int cri_device(struct gen *g, size_t i, const Runtime__V1__Device *d, json_t *devices,
		      json_t *rules)
{
	const struct spec_ops *ops = g->host->ops;
	const char *perm = d->permissions && *d->permissions ? d->permissions : "rwm";
	const char *dst = d->container_path && *d->container_path ? d->container_path
								  : d->host_path;
	struct spec_device dev = { 0 };
	char f[64];

	snprintf(f, sizeof(f), "devices[%zu].host_path", i);
	if (check_abs_path(g, f, d->host_path) < 0)
		return -1;
	snprintf(f, sizeof(f), "devices[%zu].container_path", i);
	if (check_abs_path(g, f, dst) < 0)
		return -1;
	if (devices_has(devices, dst))
		return invalid(g, "%s '%s' is given twice", f, show(dst).s);
	snprintf(f, sizeof(f), "devices[%zu].permissions", i);
	if (strlen(perm) > 3 || strspn(perm, "rwm") != strlen(perm) ||
	    (perm[0] && strchr(perm + 1, perm[0])) || (perm[1] && strchr(perm + 2, perm[1])))
		return invalid(g, "%s '%s' is not a combination of r, w and m", f, show(perm).s);
	if (!ops || !ops->device)
		return fail(g, CRISP_E_UNIMPLEMENTED, "devices: no way to look up host devices");
	if (ops->device(g->host->ops_ctx, d->host_path, &dev, g->err) < 0)
		return err_prefix(g->err, "%s: devices[%zu] '%s'", g->what, i,
				  show(d->host_path).s);
	if (dev.type != 'c' && dev.type != 'b')
		return invalid(g, "devices[%zu].host_path '%s' is not a device", i,
			       show(d->host_path).s);
	jpush(g, devices, device_json(g, dst, &dev));
	if (rules)
		jpush(g, rules, device_rule(g, true, dev.type, dev.major, dev.minor, perm));
	return 0;
}

/* Every host device for a privileged container (containerd's
 * WithHostDevices), after the request's own. */
static int host_devices(struct gen *g, json_t *devices)
{
	const struct spec_ops *ops = g->host->ops;
	struct spec_device *list = NULL;
	size_t n = 0;
	int ret = 0;

	if (!ops || !ops->host_devices)
		return fail(g, CRISP_E_UNIMPLEMENTED, "privileged: no way to list host devices");
	if (ops->host_devices(g->host->ops_ctx, &list, &n, g->err) < 0)
		return err_prefix(g->err, "%s: privileged: host devices", g->what);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (check_abs_path(g, "host device", list[i].path) < 0 ||
		    (list[i].type != 'c' && list[i].type != 'b'))
			ret = invalid(g, "host device '%s' is not valid", show(list[i].path).s);
		else if (!devices_has(devices, list[i].path))
			jpush(g, devices, device_json(g, list[i].path, &list[i]));
	}
	spec_devices_free(list, n);
	return ret;
}

static int container_devices(struct gen *g, const Runtime__V1__ContainerConfig *cfg,
			     bool privileged, json_t *lx, json_t *resources)
{
	json_t *devices = json_array(), *rules = default_device_rules_json(g, privileged);

	jset(g, lx, "devices", devices);
	jset(g, resources, "devices", rules);
	if (cfg->n_devices > SPEC_LIST_MAX)
		return invalid(g, "devices has more than %d entries", SPEC_LIST_MAX);
	for (size_t i = 0; i < cfg->n_devices; i++)
		if (cri_device(g, i, cfg->devices[i], devices, privileged ? NULL : rules) < 0)
			return -1;
	if (privileged && host_devices(g, devices) < 0)
		return -1;
	if (json_array_size(devices) == 0)
		json_object_del(lx, "devices");
	return 0;
}

/* ---- resources ---------------------------------------------------------- */

/* "0-3,8,10-11" */
static bool cpu_list_valid(const char *s)
{
	while (*s) {
		char *end;
		unsigned long a, b;

		if (*s < '0' || *s > '9')
			return false;
		a = strtoul(s, &end, 10);
		b = a;
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				return false;
			b = strtoul(end + 1, &end, 10);
		}
		if (b < a || b > 65535)
			return false;
		if (*end == ',' && end[1])
			end++;
		else if (*end)
			return false;
		s = end;
	}
	return true;
}

/* "2MB", "1GB": what hugetlb.<size>.limit_in_bytes calls the page size. */
static bool page_size_valid(const char *s)
{
	size_t digits = strspn(s, "0123456789");

	if (digits == 0 || digits > 6 || s[0] == '0')
		return false;
	return streq(s + digits, "KB") || streq(s + digits, "MB") || streq(s + digits, "GB") ||
	       streq(s + digits, "TB") || streq(s + digits, "PB");
}

/* A cgroup v2 interface file: "memory.high", "io.weight" (no slashes:
 * runc writes the key as a file name in the container's cgroup). */
static bool unified_key_valid(const char *k)
{
	size_t n = strlen(k);
	const char *dot = strchr(k, '.');

	return n > 2 && n <= SPEC_NAME_MAX && dot && dot != k && dot[1] &&
	       strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_.") == n;
}

static int resources_cpu(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			 const char *F, json_t *res)
{
	json_t *cpu = json_object();

	jset(g, res, "cpu", cpu);
	if (!int_in(r->cpu_shares, 0, 262144))
		return invalid(g, "%s.cpu_shares %lld is out of range", F,
			       (long long)r->cpu_shares);
	if (r->cpu_period && !int_in(r->cpu_period, 1000, 1000000))
		return invalid(g, "%s.cpu_period %lld is not from 1000 to 1000000", F,
			       (long long)r->cpu_period);
	if (r->cpu_quota && r->cpu_quota != -1 && r->cpu_quota < 1000)
		return invalid(g, "%s.cpu_quota %lld is below 1000", F, (long long)r->cpu_quota);
	if (check_name(g, "linux.resources.cpuset_cpus", r->cpuset_cpus, SPEC_NAME_MAX) < 0 ||
	    check_name(g, "linux.resources.cpuset_mems", r->cpuset_mems, SPEC_NAME_MAX) < 0)
		return -1;
	if (!cpu_list_valid(r->cpuset_cpus ? r->cpuset_cpus : ""))
		return invalid(g, "%s.cpuset_cpus '%s' is not a CPU list", F,
			       show(r->cpuset_cpus).s);
	if (!cpu_list_valid(r->cpuset_mems ? r->cpuset_mems : ""))
		return invalid(g, "%s.cpuset_mems '%s' is not a node list", F,
			       show(r->cpuset_mems).s);
	if (r->cpu_shares)
		jset(g, cpu, "shares", json_integer(r->cpu_shares));
	if (r->cpu_quota)
		jset(g, cpu, "quota", json_integer(r->cpu_quota));
	if (r->cpu_period)
		jset(g, cpu, "period", json_integer(r->cpu_period));
	if (r->cpuset_cpus && *r->cpuset_cpus)
		jset(g, cpu, "cpus", jstr(g, r->cpuset_cpus));
	if (r->cpuset_mems && *r->cpuset_mems)
		jset(g, cpu, "mems", jstr(g, r->cpuset_mems));
	if (json_object_size(cpu) == 0)
		json_object_del(res, "cpu");
	return 0;
}

/* Memory: swap (memory + swap, as in OCI) defaults to the limit, so a
 * container does not swap unless asked (containerd), where the kernel
 * accounts swap at all. */
static int resources_memory(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			    const char *F, json_t *res)
{
	int64_t limit = r->memory_limit_in_bytes, swap = r->memory_swap_limit_in_bytes;
	json_t *mem;

	if (limit < 0)
		return invalid(g, "%s.memory_limit_in_bytes %lld is negative", F, (long long)limit);
	if (swap < -1 || (swap > 0 && limit > 0 && swap < limit))
		return invalid(g, "%s.memory_swap_limit_in_bytes %lld is below the memory limit", F,
			       (long long)swap);
	if (!limit && !swap)
		return 0;
	mem = json_object();
	jset(g, res, "memory", mem);
	if (limit)
		jset(g, mem, "limit", json_integer(limit));
	if (g->host->swap_accounting && (swap || limit))
		jset(g, mem, "swap", json_integer(swap ? swap : limit));
	return 0;
}

static int resources_hugepages(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			       const char *F, json_t *res)
{
	json_t *hp;
	char f[96];

	if (r->n_hugepage_limits == 0)
		return 0;
	if (r->n_hugepage_limits > 16)
		return invalid(g, "%s.hugepage_limits has more than 16 entries", F);
	hp = json_array();
	jset(g, res, "hugepageLimits", hp);
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const Runtime__V1__HugepageLimit *l = r->hugepage_limits[i];

		snprintf(f, sizeof(f), "%s.hugepage_limits[%zu].page_size", F, i);
		if (check_name(g, f, l->page_size, 16) < 0)
			return -1;
		if (!page_size_valid(l->page_size ? l->page_size : ""))
			return invalid(g, "%s '%s' is not a page size like 2MB", f,
				       show(l->page_size).s);
		for (size_t j = 0; j < i; j++)
			if (streq(r->hugepage_limits[j]->page_size, l->page_size))
				return invalid(g, "%s '%s' is given twice", f, l->page_size);
		if (l->limit > INT64_MAX)
			return invalid(g, "%s.hugepage_limits[%zu].limit is too large", F, i);
		jpush(g, hp,
		      json_pack("{s:s, s:I}", "pageSize", l->page_size, "limit",
				(json_int_t)l->limit));
	}
	return 0;
}

static int resources_unified(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			     const char *F, json_t *res)
{
	json_t *u;
	char f[128];

	if (r->n_unified == 0)
		return 0;
	if (!g->host->cgroup_v2)
		return invalid(g, "%s.unified needs cgroup v2, and this host has v1", F);
	if (r->n_unified > SPEC_LIST_MAX)
		return invalid(g, "%s.unified has more than %d entries", F, SPEC_LIST_MAX);
	u = json_object();
	jset(g, res, "unified", u);
	for (size_t i = 0; i < r->n_unified; i++) {
		const char *k = r->unified[i]->key ? r->unified[i]->key : "";
		const char *v = r->unified[i]->value ? r->unified[i]->value : "";

		snprintf(f, sizeof(f), "%s.unified['%s']", F, show(k).s);
		if (!unified_key_valid(k))
			return invalid(g, "%s: not a cgroup v2 file name", f);
		if (check_name(g, f, v, SPEC_PATH_MAX) < 0)
			return -1;
		jset(g, u, k, jstr(g, v));
	}
	return 0;
}

/* linux.resources from LinuxContainerResources; process.oomScoreAdj with
 * them (containerd sets it whenever resources are given). */
static int container_resources(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			       json_t *res, json_t *process)
{
	static const char F[] = "linux.resources";

	if (!r)
		return 0;
	if (resources_cpu(g, r, F, res) < 0 || resources_memory(g, r, F, res) < 0 ||
	    resources_hugepages(g, r, F, res) < 0 || resources_unified(g, r, F, res) < 0)
		return -1;
	if (!int_in(r->oom_score_adj, -1000, 1000))
		return invalid(g, "%s.oom_score_adj %lld is not from -1000 to 1000", F,
			       (long long)r->oom_score_adj);
	jset(g, process, "oomScoreAdj",
	     json_integer(oom_score_adj(g->host, (int)r->oom_score_adj)));
	return 0;
}

/* ---- namespaces --------------------------------------------------------- */

static void ns_add(struct gen *g, json_t *ns, const char *type, const char *path)
{
	json_t *n = json_object();

	jset(g, n, "type", jstr(g, type));
	if (path)
		jset(g, n, "path", jstr(g, path));
	jpush(g, ns, n);
}

static int pause_ns_path(struct gen *g, const char *ns, char *buf, size_t len)
{
	if (g->pod->pause_pid <= 0)
		return fail(g, CRISP_E_PRECONDITION,
			    "the sandbox's pause process is not running: no %s namespace to join",
			    ns);
	snprintf(buf, len, "/proc/%d/ns/%s", (int)g->pod->pause_pid, ns);
	return 0;
}

/* Network and ipc are the pod's; a container may repeat the pod's choice
 * but not differ from it (kubelet never asks for that). */
static int ns_match(struct gen *g, const char *field, Runtime__V1__NamespaceMode mine,
		    Runtime__V1__NamespaceMode pods)
{
	if (mine != pods)
		return invalid(g, "%s %d differs from the sandbox's %d", field, (int)mine,
			       (int)pods);
	return 0;
}

static int container_namespaces(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
				pid_t target_pid, bool privileged, json_t *ns)
{
	static const char F[] = "linux.security_context.namespace_options";
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	Runtime__V1__NamespaceMode net = pod_ns(g->pod, 'n'), ipc = pod_ns(g->pod, 'i');
	Runtime__V1__NamespaceMode pid = o ? o->pid : pod_ns(g->pod, 'p');
	char path[64];

	if (o &&
	    (ns_match(g, "linux.security_context.namespace_options.network", o->network, net) < 0 ||
	     ns_match(g, "linux.security_context.namespace_options.ipc", o->ipc, ipc) < 0 ||
	     check_userns(g, F, o) < 0))
		return -1;
	if (pid == RUNTIME__V1__NAMESPACE_MODE__POD) {
		if (pod_ns(g->pod, 'p') == RUNTIME__V1__NAMESPACE_MODE__NODE)
			pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
		else if (pause_ns_path(g, "pid", path, sizeof(path)) < 0)
			return -1;
		else
			ns_add(g, ns, "pid", path);
	} else if (pid == RUNTIME__V1__NAMESPACE_MODE__CONTAINER) {
		ns_add(g, ns, "pid", NULL);
	} else if (pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
		if (check_name(g, "linux.security_context.namespace_options.target_id",
			       o->target_id, SPEC_ID_MAX) < 0)
			return -1;
		if (!o->target_id || !*o->target_id || target_pid <= 0)
			return invalid(g, "%s.pid TARGET needs a running target container", F);
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)target_pid);
		ns_add(g, ns, "pid", path);
	} else if (pid != RUNTIME__V1__NAMESPACE_MODE__NODE) {
		return invalid(g, "%s.pid %d is not a namespace mode", F, (int)pid);
	}

	if (net != RUNTIME__V1__NAMESPACE_MODE__NODE) {
		const char *netns = g->pod->netns_path;

		if ((!netns || !*netns) && pause_ns_path(g, "net", path, sizeof(path)) < 0)
			return -1;
		ns_add(g, ns, "network", netns && *netns ? netns : path);
	}
	if (ipc != RUNTIME__V1__NAMESPACE_MODE__NODE) {
		if (pause_ns_path(g, "ipc", path, sizeof(path)) < 0)
			return -1;
		ns_add(g, ns, "ipc", path);
	}
	/* CRI has no UTS option: the pod's hostname goes with its network. */
	if (net != RUNTIME__V1__NAMESPACE_MODE__NODE) {
		if (pause_ns_path(g, "uts", path, sizeof(path)) < 0)
			return -1;
		ns_add(g, ns, "uts", path);
	}
	ns_add(g, ns, "mount", NULL);
	/* A cgroup namespace hides the host's hierarchy; containerd uses one on
	 * v2 only (v1 tools expect the full paths) and not when privileged. */
	if (g->host->cgroup_v2 && !privileged)
		ns_add(g, ns, "cgroup", NULL);
	return 0;
}

/* ---- seccomp and AppArmor ----------------------------------------------- */

enum profile {
	PROFILE_UNSET,
	PROFILE_RUNTIME_DEFAULT,
	PROFILE_UNCONFINED,
	PROFILE_LOCALHOST,
};

/* The profile a SecurityProfile field or its deprecated string form asks
 * for ("runtime/default", "docker/default" for seccomp, "unconfined",
 * "localhost/<ref>"). */
static int profile_choice(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
			  const char *legacy, bool seccomp, enum profile *ret, const char **ret_ref)
{
	*ret_ref = NULL;
	if (sp) {
		const char *ref = sp->localhost_ref ? sp->localhost_ref : "";

		if (check_name(g, field, ref, SPEC_PATH_MAX) < 0)
			return -1;
		switch (sp->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*ret = PROFILE_RUNTIME_DEFAULT;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			*ret = PROFILE_UNCONFINED;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			if (!*ref)
				return invalid(g, "%s: Localhost needs a localhost_ref", field);
			*ret = PROFILE_LOCALHOST;
			*ret_ref = ref;
			return 0;
		default:
			return invalid(g, "%s: profile type %d is unknown", field,
				       (int)sp->profile_type);
		}
		if (*ref)
			return invalid(g, "%s: localhost_ref is set but the type is not Localhost",
				       field);
		return 0;
	}
	if (check_name(g, field, legacy, SPEC_PATH_MAX) < 0)
		return -1;
	*ret = PROFILE_UNSET;
	if (!legacy || !*legacy)
		return 0;
	if (streq(legacy, "runtime/default") || (seccomp && streq(legacy, "docker/default")))
		*ret = PROFILE_RUNTIME_DEFAULT;
	else if (streq(legacy, "unconfined"))
		*ret = PROFILE_UNCONFINED;
	else if (strncmp(legacy, "localhost/", 10) == 0 && legacy[10])
		*ret = PROFILE_LOCALHOST, *ret_ref = legacy + 10;
	else
		return invalid(g, "%s '%s' is not a profile", field, show(legacy).s);
	return 0;
}

static bool str_in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(s, set[i]))
			return true;
	return false;
}

static const char *const seccomp_actions[] = {
	"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
	"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",        "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
};
static const char *const seccomp_arches[] = {
	"SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
	"SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
	"SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
	"SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
	"SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
};
static const char *const seccomp_flags[] = {
	"SECCOMP_FILTER_FLAG_TSYNC",
	"SECCOMP_FILTER_FLAG_LOG",
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW",
};
static const char *const seccomp_ops[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
	"SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

/* A string array whose every member is in set (or, with set NULL, a
 * syscall name). */
static int profile_strings(struct gen *g, const char *field, json_t *v, const char *const *set,
			   size_t n_set, json_t **ret)
{
	size_t i;
	json_t *s;

	if (!json_is_array(v) || json_array_size(v) > SPEC_LIST_MAX)
		return invalid(g, "%s is not an array of at most %d strings", field, SPEC_LIST_MAX);
	json_array_foreach(v, i, s)
	{
		const char *str = json_string_value(s);
		size_t n = str ? strlen(str) : 0;

		if (!str || (set ? !str_in(str, set, n_set)
				 : (n == 0 || n > 64 ||
				    strspn(str, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)))
			return invalid(g, "%s[%zu] '%s' is not valid here", field, i, show(str).s);
	}
	*ret = json_incref(v);
	return 0;
}

static int profile_errno(struct gen *g, const char *field, json_t *v, const char *action,
			 json_t *out, const char *key)
{
	if (!v)
		return 0;
	if (!json_is_integer(v) || !int_in(json_integer_value(v), 0, 4095))
		return invalid(g, "%s is not an errno", field);
	if (action && !streq(action, "SCMP_ACT_ERRNO") && !streq(action, "SCMP_ACT_TRACE"))
		return invalid(g, "%s goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE only", field);
	jset(g, out, key, json_incref(v));
	return 0;
}

static int profile_arg(struct gen *g, const char *field, json_t *a, json_t *out)
{
	json_t *idx = json_object_get(a, "index"), *val = json_object_get(a, "value");
	json_t *two = json_object_get(a, "valueTwo");
	const char *op = json_string_value(json_object_get(a, "op"));

	if (!json_is_object(a) || !json_is_integer(idx) || !int_in(json_integer_value(idx), 0, 5))
		return invalid(g, "%s.index is not from 0 to 5", field);
	if (!json_is_integer(val) || json_integer_value(val) < 0 ||
	    (two && (!json_is_integer(two) || json_integer_value(two) < 0)))
		return invalid(g, "%s.value is not a non-negative integer", field);
	if (!op || !str_in(op, seccomp_ops, ARRAY_SIZE(seccomp_ops)))
		return invalid(g, "%s.op '%s' is not a comparison", field, show(op).s);
	a = json_pack("{s:O, s:O, s:s}", "index", idx, "value", val, "op", op);
	if (a && two)
		jset(g, a, "valueTwo", json_incref(two));
	jpush(g, out, a);
	return 0;
}

static int profile_rule(struct gen *g, size_t i, json_t *r, json_t *out)
{
	char f[64], ff[96];
	const char *action = json_string_value(json_object_get(r, "action"));
	json_t *args = json_object_get(r, "args"), *rule, *names, *a;
	size_t j;

	snprintf(f, sizeof(f), "seccomp profile syscalls[%zu]", i);
	if (!json_is_object(r))
		return invalid(g, "%s is not an object", f);
	if (!action || !str_in(action, seccomp_actions, ARRAY_SIZE(seccomp_actions)))
		return invalid(g, "%s.action '%s' is not supported", f, show(action).s);
	snprintf(ff, sizeof(ff), "%s.names", f);
	if (profile_strings(g, ff, json_object_get(r, "names"), NULL, 0, &names) < 0)
		return -1;
	rule = json_pack("{s:o, s:s}", "names", names, "action", action);
	jpush(g, out, rule);
	snprintf(ff, sizeof(ff), "%s.errnoRet", f);
	if (profile_errno(g, ff, json_object_get(r, "errnoRet"), action, rule, "errnoRet") < 0)
		return -1;
	if (!args || json_is_null(args))
		return 0;
	if (!json_is_array(args) || json_array_size(args) > 6)
		return invalid(g, "%s.args is not an array of at most 6", f);
	jset(g, rule, "args", json_array());
	json_array_foreach(args, j, a)
	{
		snprintf(ff, sizeof(ff), "%s.args[%zu]", f, j);
		if (profile_arg(g, ff, a, json_object_get(rule, "args")) < 0)
			return -1;
	}
	return 0;
}

/* A Localhost profile: the OCI linux.seccomp fields only, each checked (as
 * containerd, which reads the file into the OCI struct, keeps only those).
 * Seccomp notification is refused: runc would connect to a socket the
 * profile names. */
static int profile_convert(struct gen *g, json_t *in, json_t **ret)
{
	const char *def = json_string_value(json_object_get(in, "defaultAction"));
	json_t *out = json_object(), *rules, *v, *r;
	size_t i;

	*ret = out;
	if (!json_is_object(in))
		return invalid(g, "the seccomp profile is not a JSON object");
	if (!def || !str_in(def, seccomp_actions, ARRAY_SIZE(seccomp_actions)))
		return invalid(g, "seccomp profile defaultAction '%s' is not supported",
			       show(def).s);
	jset(g, out, "defaultAction", jstr(g, def));
	if (profile_errno(g, "seccomp profile defaultErrnoRet",
			  json_object_get(in, "defaultErrnoRet"), def, out, "defaultErrnoRet") < 0)
		return -1;
	if ((v = json_object_get(in, "listenerPath")) && !json_is_null(v) &&
	    !streq(json_string_value(v), ""))
		return invalid(g, "seccomp profile listenerPath is not supported");
	if ((v = json_object_get(in, "architectures")) && !json_is_null(v)) {
		if (profile_strings(g, "seccomp profile architectures", v, seccomp_arches,
				    ARRAY_SIZE(seccomp_arches), &v) < 0)
			return -1;
		jset(g, out, "architectures", v);
	}
	if ((v = json_object_get(in, "flags")) && !json_is_null(v)) {
		if (profile_strings(g, "seccomp profile flags", v, seccomp_flags,
				    ARRAY_SIZE(seccomp_flags), &v) < 0)
			return -1;
		jset(g, out, "flags", v);
	}
	v = json_object_get(in, "syscalls");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > SPEC_SECCOMP_RULES_MAX)
		return invalid(g, "seccomp profile syscalls is not an array of at most %d",
			       SPEC_SECCOMP_RULES_MAX);
	rules = json_array();
	jset(g, out, "syscalls", rules);
	json_array_foreach(v, i, r) if (profile_rule(g, i, r, rules) < 0) return -1;
	return 0;
}

static int seccomp_localhost(struct gen *g, const char *field, const char *ref, json_t **ret)
{
	const struct spec_ops *ops = g->host->ops;
	const char *root_in = g->host->seccomp_root;
	_cleanup_free_ char *root = NULL, *path = NULL, *text = NULL;
	json_auto_t *in = NULL;
	json_error_t jerr;

	if (strncmp(ref, "localhost/", 10) == 0) /* containerd trims it too */
		ref += 10;
	if (check_abs_path(g, field, ref) < 0)
		return -1;
	if (!root_in || root_in[0] != '/')
		return invalid(g, "%s: Localhost profiles need a seccomp profile root", field);
	root = path_clean(root_in);
	path = path_clean(ref);
	if (!path_under(path, root) || streq(path, root))
		return invalid(g, "%s '%s' is not under %s", field, show(ref).s, show(root).s);
	if (!ops || !ops->read_file)
		return fail(g, CRISP_E_UNIMPLEMENTED, "%s: no way to read profiles", field);
	if (ops->read_file(g->host->ops_ctx, root, path + strlen(root) + (root[1] != '\0'),
			   SPEC_FILE_MAX, &text, g->err) < 0)
		return err_prefix(g->err, "%s: %s '%s'", g->what, field, show(ref).s);
	in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!in)
		return invalid(g, "%s '%s' is not JSON: line %d: %s", field, show(ref).s, jerr.line,
			       show(jerr.text).s);
	if (profile_convert(g, in, ret) < 0) {
		json_decref(*ret);
		*ret = NULL;
		return err_prefix(g->err, "%s '%s'", field, show(ref).s);
	}
	return 0;
}

/* linux.seccomp, or nothing. unset_default is what an unset profile gets:
 * nothing for containers (containerd), RuntimeDefault for pause. */
static int seccomp_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
			const char *legacy, enum profile unset_default, uint64_t caps, json_t *lx)
{
	enum profile p;
	const char *ref;
	json_t *s = NULL;

	if (profile_choice(g, field, sp, legacy, true, &p, &ref) < 0)
		return -1;
	if (p == PROFILE_UNSET)
		p = unset_default;
	if (p == PROFILE_RUNTIME_DEFAULT)
		s = spec_seccomp_default(caps, g->host->arch);
	else if (p == PROFILE_LOCALHOST && seccomp_localhost(g, field, ref, &s) < 0)
		return -1;
	if (s)
		jset(g, lx, "seccomp", s);
	return 0;
}

/* process.apparmorProfile. Unset means the runtime's default, which is the
 * profile runtimed found loaded (none if it was not); RuntimeDefault on a
 * host without AppArmor is the same "no profile" (CRI: "equivalent to not
 * specifying a profile"); a Localhost profile there is an error. */
static int apparmor_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
			 const char *legacy, bool privileged, json_t *process)
{
	enum profile p;
	const char *ref, *name = NULL;

	if (profile_choice(g, field, sp, legacy, false, &p, &ref) < 0)
		return -1;
	if (p == PROFILE_LOCALHOST) {
		if (!g->host->apparmor)
			return invalid(g, "%s: AppArmor is not enabled on this host", field);
		if (strncmp(ref, "localhost/", 10) == 0)
			ref += 10;
		if (!*ref || strlen(ref) > SPEC_NAME_MAX || strpbrk(ref, " \t"))
			return invalid(g, "%s '%s' is not a profile name", field, show(ref).s);
		name = ref;
	} else if ((p == PROFILE_UNSET || p == PROFILE_RUNTIME_DEFAULT) && !privileged &&
		   g->host->apparmor) {
		name = g->host->apparmor_default;
	}
	if (name && *name)
		jset(g, process, "apparmorProfile", jstr(g, name));
	return 0;
}

/* ---- masked paths, sysctls, annotations --------------------------------- */

/* containerd's (and kubelet's) defaults. */
static const char *const default_masked_paths[] = {
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
};
static const char *const default_readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* The request's list when it gives one, else the defaults. (containerd
 * gives none when the request gives none; kubelet always sends its list,
 * and crictl users get the safe default here.) */
static int path_list(struct gen *g, const char *field, char **v, size_t n,
		     const char *const *defaults, size_t n_defaults, json_t **ret)
{
	char f[96];

	if (n == 0) {
		*ret = jstrs(g, defaults, n_defaults);
		return 0;
	}
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	*ret = json_array();
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (check_abs_path(g, f, v[i]) < 0) {
			json_decref(*ret);
			return -1;
		}
		jpush(g, *ret, jstr(g, v[i]));
	}
	return 0;
}

static int masked_paths(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
			json_t *lx)
{
	json_t *masked, *ro;

	if (path_list(g, "linux.security_context.masked_paths", sc ? sc->masked_paths : NULL,
		      sc ? sc->n_masked_paths : 0, default_masked_paths,
		      ARRAY_SIZE(default_masked_paths), &masked) < 0)
		return -1;
	jset(g, lx, "maskedPaths", masked);
	if (path_list(g, "linux.security_context.readonly_paths", sc ? sc->readonly_paths : NULL,
		      sc ? sc->n_readonly_paths : 0, default_readonly_paths,
		      ARRAY_SIZE(default_readonly_paths), &ro) < 0)
		return -1;
	jset(g, lx, "readonlyPaths", ro);
	return 0;
}

/* Only sysctls that are per namespace may be set, and only for a namespace
 * the pod owns: the same as kubelet's and runc's rules, checked here so a
 * pod on the host network cannot change the host. The name comes back in
 * the dotted form runc 1.1 expects (it turns every '.' into '/'): a
 * slash-separated name is converted, and one whose components contain
 * dots ("net/ipv4/conf/eth0.100/forwarding") cannot be expressed and is
 * refused. */
static int sysctl_check(struct gen *g, const char *key, bool host_net, bool host_ipc, char **ret)
{
	static const char *const ipc_keys[] = {
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
	};
	_cleanup_free_ char *k = xstrdup(key);
	size_t n = strlen(k);
	bool net, ipc, uts;

	if (n == 0 || n > SPEC_NAME_MAX ||
	    strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") != n ||
	    strchr(".-/", k[0]) || strchr("./", k[n - 1]) || strstr(k, "..") || strstr(k, "//") ||
	    strstr(k, "./") || strstr(k, "/."))
		return invalid(g, "linux.sysctls '%s' is not a sysctl name", show(key).s);
	if (strchr(k, '/')) {
		if (strchr(k, '.'))
			return invalid(g,
				       "linux.sysctls '%s': runc cannot set a sysctl whose "
				       "components contain '.'",
				       show(key).s);
		for (char *p = k; *p; p++)
			*p = *p == '/' ? '.' : *p;
	}
	net = strncmp(k, "net.", 4) == 0;
	ipc = strncmp(k, "fs.mqueue.", 10) == 0 || str_in(k, ipc_keys, ARRAY_SIZE(ipc_keys));
	uts = streq(k, "kernel.hostname") || streq(k, "kernel.domainname");
	if (!net && !ipc && !uts)
		return invalid(g, "linux.sysctls '%s' is not a namespaced sysctl", show(key).s);
	if ((net || uts) && host_net)
		return invalid(g,
			       "linux.sysctls '%s' would change the host: the pod uses the "
			       "host network",
			       show(key).s);
	if (ipc && host_ipc)
		return invalid(g,
			       "linux.sysctls '%s' would change the host: the pod uses the "
			       "host IPC namespace",
			       show(key).s);
	*ret = TAKE_PTR(k);
	return 0;
}

static int sandbox_sysctls(struct gen *g, bool host_net, bool host_ipc, json_t *lx)
{
	const Runtime__V1__LinuxPodSandboxConfig *l = g->pod->config->linux;
	json_t *s;

	if (!l || l->n_sysctls == 0)
		return 0;
	if (l->n_sysctls > SPEC_LIST_MAX)
		return invalid(g, "linux.sysctls has more than %d entries", SPEC_LIST_MAX);
	s = json_object();
	jset(g, lx, "sysctl", s);
	for (size_t i = 0; i < l->n_sysctls; i++) {
		const char *k = l->sysctls[i]->key ? l->sysctls[i]->key : "";
		const char *v = l->sysctls[i]->value ? l->sysctls[i]->value : "";
		_cleanup_free_ char *name = NULL;

		if (sysctl_check(g, k, host_net, host_ipc, &name) < 0)
			return -1;
		if (check_name(g, "linux.sysctls value", v, SPEC_PATH_MAX) < 0)
			return -1;
		jset(g, s, name, jstr(g, v));
	}
	return 0;
}

/* Annotations that OCI runtimes read as instructions, which a pod's author
 * must not be able to give: runc's systemd driver turns org.systemd.property.*
 * into unit properties, runc reads org.criu.*, crun run.oci.*, Kata
 * io.katacontainers.*. They are left out of config.json (the CRI status
 * still returns them); io.kubernetes.cri.* are crisp's own. */
static const char *const reserved_annotation_prefixes[] = {
	"io.kubernetes.cri.", "org.systemd.property.", "org.criu.",
	"run.oci.",           "io.katacontainers.",    "io.containerd.",
};

static int annotation_add(struct gen *g, const char *field, size_t i, const char *key,
			  const char *value, size_t *total, json_t *ann)
{
	char f[64];

	snprintf(f, sizeof(f), "%s[%zu]", field, i);
	if (check_str(g, f, key, SPEC_ANNOTATION_KEY_MAX) < 0 ||
	    check_str(g, f, value, SPEC_ANNOTATIONS_TOTAL_MAX) < 0)
		return -1;
	*total += strlen(key ? key : "") + strlen(value ? value : "");
	if (*total > SPEC_ANNOTATIONS_TOTAL_MAX)
		return invalid(g, "%s are larger than %d bytes", field, SPEC_ANNOTATIONS_TOTAL_MAX);
	if (!key || !*key)
		return invalid(g, "%s has an empty key", f);
	for (size_t j = 0; j < ARRAY_SIZE(reserved_annotation_prefixes); j++)
		if (strncmp(key, reserved_annotation_prefixes[j],
			    strlen(reserved_annotation_prefixes[j])) == 0)
			return 0;
	jset(g, ann, key, jstr(g, value));
	return 0;
}

/* containerd's DefaultCRIAnnotations for either kind of container. */
static void cri_annotations(struct gen *g, json_t *ann, bool sandbox)
{
	const Runtime__V1__PodSandboxMetadata *md = g->pod->config->metadata;

	jset(g, ann, "io.kubernetes.cri.container-type",
	     jstr(g, sandbox ? "sandbox" : "container"));
	jset(g, ann, "io.kubernetes.cri.sandbox-id", jstr(g, g->pod->sandbox_id));
	if (md) {
		jset(g, ann, "io.kubernetes.cri.sandbox-name", jstr(g, md->name));
		jset(g, ann, "io.kubernetes.cri.sandbox-namespace", jstr(g, md->namespace_));
		jset(g, ann, "io.kubernetes.cri.sandbox-uid", jstr(g, md->uid));
	}
}

/* ---- the container spec ------------------------------------------------- */

static json_t *spec_skeleton(struct gen *g, const char *rootfs, bool readonly, json_t **process,
			     json_t **lx, json_t **res)
{
	json_t *spec = json_object(), *root = json_object();

	*process = json_object();
	*lx = json_object();
	*res = json_object();
	jset(g, spec, "ociVersion", jstr(g, OCI_VERSION));
	jset(g, spec, "process", *process);
	jset(g, root, "path", jstr(g, rootfs));
	jset(g, root, "readonly", json_boolean(readonly));
	jset(g, spec, "root", root);
	jset(g, spec, "linux", *lx);
	jset(g, *lx, "resources", *res);
	return spec;
}

static int linux_cgroups_path(struct gen *g, const char *id, json_t *lx)
{
	char *p = spec_cgroups_path(g->host, g->pod->cgroup_parent, id);

	if (!p)
		return invalid(g, "cgroup parent '%s' is not valid", show(g->pod->cgroup_parent).s);
	jset(g, lx, "cgroupsPath", jstr(g, p));
	free(p);
	return 0;
}

static void set_hostname(struct gen *g, json_t *spec)
{
	const char *h = g->pod->config->hostname;

	if (pod_ns(g->pod, 'n') != RUNTIME__V1__NAMESPACE_MODE__NODE && h && *h)
		jset(g, spec, "hostname", jstr(g, h));
}

static int container_process(struct gen *g, const struct spec_container *c,
			     const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
			     json_t *process, uint64_t *ret_bounding)
{
	struct exec_size sz = { 0 };

	jset(g, process, "terminal", json_boolean(c->config->tty));
	if (container_user(g, sc, c->image, &c->files, process) < 0 ||
	    process_args(g, c->config, c->image, process, &sz) < 0 ||
	    process_env(g, c->config, c->image, process, &sz) < 0 ||
	    process_cwd(g, c->config, c->image, process) < 0 ||
	    container_caps(g, sc, privileged, process, ret_bounding) < 0)
		return -1;
	process_rlimits(g, process);
	jset(g, process, "noNewPrivileges", json_boolean(sc && sc->no_new_privs));
	return apparmor_json(g, "linux.security_context.apparmor", sc ? sc->apparmor : NULL,
			     sc ? sc->apparmor_profile : NULL, privileged, process);
}

static int container_annotations(struct gen *g, const struct spec_container *c, json_t *spec)
{
	const Runtime__V1__ContainerConfig *cfg = c->config;
	const char *image = c->image_name ? c->image_name : cfg->image ? cfg->image->image : NULL;
	json_t *ann = json_object();
	size_t total = 0;

	jset(g, spec, "annotations", ann);
	if (cfg->n_annotations > SPEC_LIST_MAX)
		return invalid(g, "annotations has more than %d entries", SPEC_LIST_MAX);
	for (size_t i = 0; i < cfg->n_annotations; i++)
		if (annotation_add(g, "annotations", i, cfg->annotations[i]->key,
				   cfg->annotations[i]->value, &total, ann) < 0)
			return -1;
	cri_annotations(g, ann, false);
	if (check_str(g, "metadata.name", cfg->metadata ? cfg->metadata->name : "", SPEC_NAME_MAX) <
		    0 ||
	    check_str(g, "image", image, SPEC_PATH_MAX) < 0)
		return -1;
	jset(g, ann, "io.kubernetes.cri.container-name",
	     jstr(g, cfg->metadata ? cfg->metadata->name : ""));
	if (image && *image)
		jset(g, ann, "io.kubernetes.cri.image-name", jstr(g, image));
	return 0;
}

static bool pod_privileged(const struct spec_pod *pod)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc = pod_sc(pod);

	return sc && sc->privileged;
}

static int check_container(struct gen *g, const struct spec_container *c)
{
	if (!c || !c->config || !c->image)
		return invalid(g, "the container config or the image config is missing");
	if (!id_valid(c->container_id))
		return invalid(g, "container id '%s' is not valid", show(c->container_id).s);
	if (check_abs_path(g, "rootfs", c->rootfs) < 0)
		return -1;
	return 0;
}

json_t *spec_container(const struct spec_host *host, const struct spec_pod *pod,
		       const struct spec_container *c, struct crisp_error *err)
{
	struct gen g = { host, pod, "container config", err, false };
	const Runtime__V1__LinuxContainerSecurityContext *sc;
	const Runtime__V1__LinuxContainerConfig *lxc;
	json_auto_t *spec = NULL;
	json_t *process, *lx, *res, *ns;
	bool privileged, readonly;
	uint64_t caps = 0;

	if (!host || !pod) {
		invalid(&g, "no host or pod description");
		return NULL;
	}
	if (check_pod(&g, pod) < 0 || check_container(&g, c) < 0)
		return NULL;
	lxc = c->config->linux;
	sc = lxc ? lxc->security_context : NULL;
	privileged = sc && sc->privileged;
	readonly = sc && sc->readonly_rootfs;
	if (privileged && !pod_privileged(pod)) {
		invalid(&g, "linux.security_context.privileged: the sandbox is not privileged");
		return NULL;
	}
	spec = spec_skeleton(&g, c->rootfs, readonly, &process, &lx, &res);
	if (container_process(&g, c, sc, privileged, process, &caps) < 0)
		return NULL;
	set_hostname(&g, spec);
	if (container_mounts(&g, c->config, privileged, readonly,
			     pod_ns(pod, 'i') == RUNTIME__V1__NAMESPACE_MODE__NODE, spec, lx) < 0 ||
	    container_annotations(&g, c, spec) < 0 ||
	    container_devices(&g, c->config, privileged, lx, res) < 0 ||
	    container_resources(&g, lxc ? lxc->resources : NULL, res, process) < 0 ||
	    linux_cgroups_path(&g, c->container_id, lx) < 0)
		return NULL;
	ns = json_array();
	jset(&g, lx, "namespaces", ns);
	if (container_namespaces(&g, sc, c->target_pid, privileged, ns) < 0)
		return NULL;
	if (!privileged &&
	    (masked_paths(&g, sc, lx) < 0 ||
	     seccomp_json(&g, "linux.security_context.seccomp", sc ? sc->seccomp : NULL,
			  sc ? sc->seccomp_profile_path : NULL, PROFILE_UNSET, caps, lx) < 0))
		return NULL;
	return finish(&g, TAKE_PTR(spec));
}

/* ---- the sandbox spec --------------------------------------------------- */

static int sandbox_user(struct gen *g, const Runtime__V1__LinuxSandboxSecurityContext *sc,
			json_t *process)
{
	static const char F[] = "linux.security_context";
	uint32_t uid = PAUSE_ID, gid = PAUSE_ID;
	struct gids s = { 0 };
	int ret = -1;

	if (sc && sc->run_as_user) {
		if (!int_in(sc->run_as_user->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_user %lld is not a user id", F,
				       (long long)sc->run_as_user->value);
		uid = (uint32_t)sc->run_as_user->value;
		gid = 0; /* as a uid without an /etc/passwd entry gets */
	}
	if (sc && sc->run_as_group) {
		if (!sc->run_as_user)
			return invalid(g, "%s.run_as_group is set without run_as_user", F);
		if (!int_in(sc->run_as_group->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_group %lld is not a group id", F,
				       (long long)sc->run_as_group->value);
		gid = (uint32_t)sc->run_as_group->value;
	}
	if (sc && supplemental_groups(g, "linux.security_context.supplemental_groups",
				      sc->supplemental_groups, sc->n_supplemental_groups, &s) < 0)
		goto out;
	jset(g, process, "user", user_json(g, uid, gid, &s));
	ret = 0;
out:
	free(s.v);
	return ret;
}

static int sandbox_namespaces(struct gen *g, json_t *lx)
{
	json_t *ns = json_array();
	bool host_net = pod_ns(g->pod, 'n') == RUNTIME__V1__NAMESPACE_MODE__NODE;
	const char *netns = g->pod->netns_path;

	jset(g, lx, "namespaces", ns);
	if (pod_ns(g->pod, 'p') != RUNTIME__V1__NAMESPACE_MODE__NODE)
		ns_add(g, ns, "pid", NULL);
	if (!host_net) {
		/* Never the host's network by accident. */
		if (!netns || !*netns)
			return invalid(g,
				       "the pod has its own network but no netns path was given");
		ns_add(g, ns, "network", netns);
	}
	if (pod_ns(g->pod, 'i') != RUNTIME__V1__NAMESPACE_MODE__NODE)
		ns_add(g, ns, "ipc", NULL);
	if (!host_net)
		ns_add(g, ns, "uts", NULL);
	ns_add(g, ns, "mount", NULL);
	return 0;
}

/* The pod's resources are on the pod cgroup kubelet made (cgroup_parent);
 * like containerd, pause's own cgroup gets minimal CPU shares and the
 * pod's resources are recorded as annotations. */
static void sandbox_resources(struct gen *g, json_t *res, json_t *ann)
{
	const Runtime__V1__LinuxPodSandboxConfig *l = g->pod->config->linux;
	const Runtime__V1__LinuxContainerResources *r = l ? l->resources : NULL;
	char v[32];

	jset(g, res, "devices", default_device_rules_json(g, false));
	jset(g, res, "cpu", json_pack("{s:i}", "shares", SANDBOX_CPU_SHARES));
	if (!r)
		return;
	snprintf(v, sizeof(v), "%lld", (long long)r->cpu_period);
	jset(g, ann, "io.kubernetes.cri.sandbox-cpu-period", jstr(g, v));
	snprintf(v, sizeof(v), "%lld", (long long)r->cpu_quota);
	jset(g, ann, "io.kubernetes.cri.sandbox-cpu-quota", jstr(g, v));
	snprintf(v, sizeof(v), "%lld", (long long)r->cpu_shares);
	jset(g, ann, "io.kubernetes.cri.sandbox-cpu-shares", jstr(g, v));
	snprintf(v, sizeof(v), "%lld", (long long)r->memory_limit_in_bytes);
	jset(g, ann, "io.kubernetes.cri.sandbox-memory", jstr(g, v));
}

static int sandbox_annotations(struct gen *g, json_t *spec, json_t *res)
{
	const Runtime__V1__PodSandboxConfig *cfg = g->pod->config;
	json_t *ann = json_object();
	size_t total = 0;

	jset(g, spec, "annotations", ann);
	if (cfg->n_annotations > SPEC_LIST_MAX)
		return invalid(g, "annotations has more than %d entries", SPEC_LIST_MAX);
	for (size_t i = 0; i < cfg->n_annotations; i++)
		if (annotation_add(g, "annotations", i, cfg->annotations[i]->key,
				   cfg->annotations[i]->value, &total, ann) < 0)
			return -1;
	cri_annotations(g, ann, true);
	if (cfg->log_directory && *cfg->log_directory)
		jset(g, ann, "io.kubernetes.cri.sandbox-log-directory",
		     jstr(g, cfg->log_directory));
	sandbox_resources(g, res, ann);
	return 0;
}

/* /dev/shm is the pod's (or the host's, with host IPC), read-only for
 * pause, which only holds the namespaces. */
static void sandbox_mounts(struct gen *g, bool host_ipc, json_t *spec)
{
	struct mnts binds = { 0 };
	const char *shm = host_ipc ? "/dev/shm" : g->pod->shm_path;
	json_t *out = json_array();

	if (shm && *shm) {
		json_t *o = bind_options(g, "rprivate", "ro");

		jpush(g, o, jstr(g, "nosuid"));
		jpush(g, o, jstr(g, "nodev"));
		jpush(g, o, jstr(g, "noexec"));
		mnts_add(&binds, "/dev/shm", shm, o);
	}
	mounts_emit(g, &binds, false, false, out);
	jset(g, spec, "mounts", out);
	mnts_free(&binds);
}

static int sandbox_process(struct gen *g, const Runtime__V1__LinuxSandboxSecurityContext *sc,
			   json_t *process)
{
	jset(g, process, "terminal", json_false());
	if (sandbox_user(g, sc, process) < 0)
		return -1;
	jset(g, process, "args", json_pack("[s]", "/pause"));
	jset(g, process, "env", json_pack("[s]", DEFAULT_PATH_ENV));
	jset(g, process, "cwd", jstr(g, "/"));
	jset(g, process, "capabilities", caps_json(g, 0, 0));
	jset(g, process, "noNewPrivileges", json_true());
	jset(g, process, "oomScoreAdj",
	     json_integer(oom_score_adj(g->host, SANDBOX_OOM_SCORE_ADJ)));
	return apparmor_json(g, "linux.security_context.apparmor", sc ? sc->apparmor : NULL, NULL,
			     false, process);
}

json_t *spec_sandbox(const struct spec_host *host, const struct spec_pod *pod, const char *rootfs,
		     struct crisp_error *err)
{
	struct gen g = { host, pod, "sandbox config", err, false };
	const Runtime__V1__LinuxSandboxSecurityContext *sc;
	json_auto_t *spec = NULL;
	json_t *process, *lx, *res;
	bool host_net, host_ipc;

	if (!host || !pod) {
		invalid(&g, "no host or pod description");
		return NULL;
	}
	if (check_pod(&g, pod) < 0 || check_abs_path(&g, "rootfs", rootfs) < 0)
		return NULL;
	sc = pod_sc(pod);
	host_net = pod_ns(pod, 'n') == RUNTIME__V1__NAMESPACE_MODE__NODE;
	host_ipc = pod_ns(pod, 'i') == RUNTIME__V1__NAMESPACE_MODE__NODE;
	spec = spec_skeleton(&g, rootfs, true, &process, &lx, &res);
	if (sandbox_process(&g, sc, process) < 0)
		return NULL;
	set_hostname(&g, spec);
	sandbox_mounts(&g, host_ipc, spec);
	if (sandbox_annotations(&g, spec, res) < 0 ||
	    linux_cgroups_path(&g, pod->sandbox_id, lx) < 0 || sandbox_namespaces(&g, lx) < 0 ||
	    sandbox_sysctls(&g, host_net, host_ipc, lx) < 0 || masked_paths(&g, NULL, lx) < 0 ||
	    seccomp_json(&g, "linux.security_context.seccomp", sc ? sc->seccomp : NULL,
			 sc ? sc->seccomp_profile_path : NULL, PROFILE_RUNTIME_DEFAULT, 0, lx) < 0)
		return NULL;
	return finish(&g, TAKE_PTR(spec));
}

/* ---- cgroups path, signals, devices ------------------------------------- */

/* The parent as "/a/b" (or "/"), without empty and "." components; NULL if
 * it has "..", a ':' (the systemd form's separator) or control characters. */
static char *parent_clean(const char *parent)
{
	_cleanup_free_ char *abs = NULL;
	size_t n = strlen(parent);

	if (n > SPEC_PATH_MAX || has_ctrl(parent) || strchr(parent, ':') || has_dotdot(parent) ||
	    !utf8_valid(parent, n))
		return NULL;
	abs = xasprintf("/%s", parent);
	return path_clean(abs);
}

char *spec_cgroups_path(const struct spec_host *host, const char *parent, const char *id)
{
	_cleanup_free_ char *comps = NULL;
	const char *last;

	if (!host || !id_valid(id))
		return NULL;
	if (!parent)
		parent = "";
	comps = parent_clean(parent);
	if (!comps)
		return NULL;
	if (!host->systemd_cgroup)
		return streq(comps, "/") ? xasprintf("/crisp-%s", id)
					 : xasprintf("%s/crisp-%s", comps, id);

	/* systemd: kubelet gives "kubepods-besteffort-pod<uid>.slice" (its name
	 * encodes the ancestry); a cgroupfs-style parent is converted the way
	 * kubelet converts one: '-' inside a component becomes '_', components
	 * join with '-'. */
	last = strrchr(comps, '/') + 1;
	if (strlen(last) > 6 && streq(last + strlen(last) - 6, ".slice"))
		return xasprintf("%s:crisp:%s", last, id);
	if (streq(comps, "/"))
		return xasprintf("system.slice:crisp:%s", id);
	for (char *p = comps + 1; *p; p++)
		*p = *p == '-' ? '_' : *p == '/' ? '-' : *p;
	return xasprintf("%s.slice:crisp:%s", comps + 1, id);
}

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
	{ "ABRT", SIGABRT }, { "ALRM", SIGALRM }, { "BUS", SIGBUS },       { "CHLD", SIGCHLD },
	{ "CLD", SIGCHLD },  { "CONT", SIGCONT }, { "FPE", SIGFPE },       { "HUP", SIGHUP },
	{ "ILL", SIGILL },   { "INT", SIGINT },   { "IO", SIGIO },         { "IOT", SIGABRT },
	{ "KILL", SIGKILL }, { "PIPE", SIGPIPE }, { "POLL", SIGIO },       { "PROF", SIGPROF },
	{ "PWR", SIGPWR },   { "QUIT", SIGQUIT }, { "SEGV", SIGSEGV },     { "STKFLT", SIGSTKFLT },
	{ "STOP", SIGSTOP }, { "SYS", SIGSYS },   { "TERM", SIGTERM },     { "TRAP", SIGTRAP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "VTALRM", SIGVTALRM }, { "WINCH", SIGWINCH },
	{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

/* The kernel's real-time range as programs see it: glibc keeps 32 and 33
 * for itself, so SIGRTMIN is 34 (what Docker's table says too). */
#define RT_MIN 34
#define RT_MAX 64

int spec_signal_parse(const char *s)
{
	uint64_t n;

	if (!s || !*s)
		return -1;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_uint64(s, 10, RT_MAX, &n) == 0 && n > 0 ? (int)n : -1;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (strcasecmp(s, signal_names[i].name) == 0)
			return signal_names[i].sig;
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
		bool min = toupper((unsigned char)s[4]) == 'N';
		const char *off = s + 5;

		if (!*off)
			return min ? RT_MIN : RT_MAX;
		if (*off != (min ? '+' : '-') || parse_uint64(off + 1, 10, RT_MAX - RT_MIN, &n) < 0)
			return -1;
		return min ? RT_MIN + (int)n : RT_MAX - (int)n;
	}
	return -1;
}

void spec_devices_free(struct spec_device *devices, size_t n)
{
	if (!devices)
		return;
	for (size_t i = 0; i < n; i++)
		free(devices[i].path);
	free(devices);
}
