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
 * are checked for NUL.
 *
 * The parts: this file (entry points, the process, resources, namespaces,
 * annotations, cgroups paths), spec_user.c, spec_mounts.c, spec_security.c;
 * what they share is in spec_int.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtimed/spec_int.h"

/* ---- errors and JSON building ------------------------------------------- */

/* A value quoted in an error message: at most 64 bytes of printable ASCII. */
struct shown show(const char *s)
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

_printf_(3, 4) int fail(struct gen *g, enum crisp_errcode code, const char *fmt, ...)
{
	char msg[CRISP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(g->err, code, "%s: %s", g->what, msg);
}

json_t *jstr(struct gen *g, const char *s)
{
	json_t *v = json_string(s ? s : "");

	if (!v)
		g->bad = true;
	return v;
}

void jset(struct gen *g, json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		g->bad = true;
}

void jpush(struct gen *g, json_t *arr, json_t *v)
{
	if (!v || json_array_append_new(arr, v) < 0)
		g->bad = true;
}

json_t *jstrs(struct gen *g, const char *const *v, size_t n)
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

int check_str(struct gen *g, const char *field, const char *s, size_t max)
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
int check_name(struct gen *g, const char *field, const char *s, size_t max)
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
int check_abs_path(struct gen *g, const char *field, const char *s)
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
char *path_clean(const char *p)
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

bool path_under(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (streq(root, "/"))
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

char *xstrndup(const char *s, size_t n)
{
	char *r = xmalloc(n + 1);

	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

bool int_in(int64_t v, int64_t lo, int64_t hi)
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

/* One line of a uid or gid map, as the kernel takes it: ids are 32-bit and
 * (uid_t)-1 is no id, so the last id of a range is at most 4294967294. */
static int idmap_check(const char *field, const char *which, size_t n,
		       Runtime__V1__IDMapping *const *maps, struct crisp_error *err)
{
	const Runtime__V1__IDMapping *m;

	/* The kubelet sends one range per pod; containerd takes one line
	 * only too (its snapshot remapping shifts a single range). */
	if (n != 1)
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options: mode POD needs exactly one %s mapping, got %zu",
			       field, which, n);
	m = maps[0];
	if (!m)
		return err_set(err, CRISP_E_INVALID, "%s.userns_options.%ss[0] is empty", field,
			       which);
	if (m->length == 0)
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options.%ss[0]: length 0 maps no id", field, which);
	if ((uint64_t)m->host_id + m->length > UINT32_MAX ||
	    (uint64_t)m->container_id + m->length > UINT32_MAX)
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options.%ss[0]: %u+%u or %u+%u passes the last id "
			       "4294967294",
			       field, which, m->host_id, m->length, m->container_id, m->length);
	/* A pod's root must be root of its own namespace only: a range that
	 * holds the host's 0 would make it the host's root again. */
	if (m->host_id == 0)
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options.%ss[0]: host range %u-%u holds the host's %s 0",
			       field, which, m->host_id, m->host_id + (m->length - 1),
			       which[0] == 'u' ? "root user" : "root group");
	/* runc sets the container's ids inside the namespace: without 0
	 * mapped there is no root to set up the container as. */
	if (m->container_id != 0)
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options.%ss[0]: container %s 0 is not mapped (the "
			       "range starts at %u)",
			       field, which, which, m->container_id);
	return 0;
}

int spec_userns_check(const char *field, const Runtime__V1__NamespaceOption *o, bool supported,
		      struct crisp_error *err)
{
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	if (!u)
		return 0;
	switch (u->mode) {
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		/* containerd's rule too: mappings with the host's namespace
		 * would be silently ignored. */
		if (u->n_uids || u->n_gids)
			return err_set(err, CRISP_E_INVALID,
				       "%s.userns_options: mode NODE (the host's user namespace) "
				       "takes no mappings, got %zu uid and %zu gid mappings",
				       field, u->n_uids, u->n_gids);
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__POD:
		if (idmap_check(field, "uid", u->n_uids, u->uids, err) < 0 ||
		    idmap_check(field, "gid", u->n_gids, u->gids, err) < 0)
			return -1;
		/* The kubelet refuses hostUsers: false with host namespaces:
		 * the pod's root would hold no capability over them, and
		 * sysfs and mqueue cannot be mounted from a user namespace
		 * that does not own the network and ipc namespaces. */
		if (o->network == RUNTIME__V1__NAMESPACE_MODE__NODE ||
		    o->pid == RUNTIME__V1__NAMESPACE_MODE__NODE ||
		    o->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE)
			return err_set(err, CRISP_E_INVALID,
				       "%s.userns_options: a user namespace of the pod's own (mode "
				       "POD) cannot go with the host's %s namespace",
				       field,
				       o->network == RUNTIME__V1__NAMESPACE_MODE__NODE ? "network"
				       : o->pid == RUNTIME__V1__NAMESPACE_MODE__NODE   ? "pid"
										       : "ipc");
		if (supported)
			return 0;
		/* A well-formed request on a host without the idmapped
		 * mounts it needs (host_detect(), runtimed/host.c), which
		 * Status says: the kubelet sends none. */
		return err_set(err, CRISP_E_UNIMPLEMENTED,
			       "%s.userns_options: user namespaces are not supported on this "
			       "host (hostUsers: false: the kernel or the filesystem of the "
			       "image store lacks idmapped mounts)",
			       field);
	case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
	case RUNTIME__V1__NAMESPACE_MODE__TARGET:
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options: mode %s is not supported for a user namespace "
			       "(only POD or NODE)",
			       field,
			       u->mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER ? "CONTAINER"
										 : "TARGET");
	default:
		return err_set(err, CRISP_E_INVALID,
			       "%s.userns_options: mode %d is not a namespace mode", field,
			       (int)u->mode);
	}
}

static bool idmap_equal(size_t na, Runtime__V1__IDMapping *const *a, size_t nb,
			Runtime__V1__IDMapping *const *b)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (!a[i] || !b[i]) {
			if (a[i] != b[i])
				return false;
			continue;
		}
		if (a[i]->host_id != b[i]->host_id || a[i]->container_id != b[i]->container_id ||
		    a[i]->length != b[i]->length)
			return false;
	}
	return true;
}

/* No userns_options and mode NODE both mean the host's user namespace. */
static bool userns_host(const Runtime__V1__UserNamespace *u)
{
	return !u || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

/* The pod's user namespace options when it has a namespace of its own
 * (mode POD, checked by check_pod), else NULL. */
static const Runtime__V1__UserNamespace *pod_userns(const struct spec_pod *pod)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc = pod_sc(pod);
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	return u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD ? u : NULL;
}

static json_t *idmap_json(struct gen *g, const Runtime__V1__IDMapping *m)
{
	json_t *arr = json_array(), *o = json_object();

	jset(g, o, "containerID", json_integer(m->container_id));
	jset(g, o, "hostID", json_integer(m->host_id));
	jset(g, o, "size", json_integer(m->length));
	jpush(g, arr, o);
	return arr;
}

/* runc 1.1 wants the mappings also when it joins a user namespace by path
 * (it checks them against the namespace's); check_pod made sure there is
 * exactly one of each. */
static void userns_mappings(struct gen *g, const Runtime__V1__UserNamespace *u, json_t *lx)
{
	jset(g, lx, "uidMappings", idmap_json(g, u->uids[0]));
	jset(g, lx, "gidMappings", idmap_json(g, u->gids[0]));
}

static int check_userns(struct gen *g, const char *field, const Runtime__V1__NamespaceOption *o)
{
	if (spec_userns_check(field, o, g->host->user_namespaces, g->err) < 0) {
		err_prefix(g->err, "%s", g->what);
		return -1;
	}
	return 0;
}

/* A container is in its pod's user namespace: the kubelet repeats the
 * pod's userns_options for each container, and anything else would ask
 * for a namespace the pod does not have. */
static int check_container_userns(struct gen *g, const char *field,
				  const Runtime__V1__NamespaceOption *o)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc = pod_sc(g->pod);
	const Runtime__V1__NamespaceOption *po = sc ? sc->namespace_options : NULL;
	const Runtime__V1__UserNamespace *mine = o ? o->userns_options : NULL;
	const Runtime__V1__UserNamespace *pods = po ? po->userns_options : NULL;

	if (check_userns(g, field, o) < 0)
		return -1;
	if (userns_host(mine) && userns_host(pods))
		return 0;
	if (userns_host(mine) != userns_host(pods) || mine->mode != pods->mode ||
	    !idmap_equal(mine->n_uids, mine->uids, pods->n_uids, pods->uids) ||
	    !idmap_equal(mine->n_gids, mine->gids, pods->n_gids, pods->gids))
		return invalid(g, "%s.userns_options differ from the sandbox's", field);
	return 0;
}

static int check_pod(struct gen *g, const struct spec_pod *pod)
{
	const struct {
		const char *field, *path;
	} paths[] = {
		{ "netns_path", pod->netns_path }, { "hostname_path", pod->hostname_path },
		{ "hosts_path", pod->hosts_path }, { "resolv_path", pod->resolv_path },
		{ "shm_path", pod->shm_path },     { "userns_path", pod->userns_path },
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
	if (pod->userns_path && *pod->userns_path && !pod_userns(pod))
		return invalid(g, "a userns path was given for a pod without a user namespace of "
				  "its own");
	sc = pod_sc(pod);
	return check_userns(g, "sandbox linux.security_context.namespace_options",
			    sc ? sc->namespace_options : NULL);
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

/* The checks and the values of linux.resources, shared by create and
 * UpdateContainerResources (spec_resources) so both accept and apply the
 * same; ret_adj gets oom_score_adj as clamped for the host. */
static int resources_checked(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			     json_t *res, int *ret_adj)
{
	static const char F[] = "linux.resources";

	if (resources_cpu(g, r, F, res) < 0 || resources_memory(g, r, F, res) < 0 ||
	    resources_hugepages(g, r, F, res) < 0 || resources_unified(g, r, F, res) < 0)
		return -1;
	if (!int_in(r->oom_score_adj, -1000, 1000))
		return invalid(g, "%s.oom_score_adj %lld is not from -1000 to 1000", F,
			       (long long)r->oom_score_adj);
	*ret_adj = oom_score_adj(g->host, (int)r->oom_score_adj);
	return 0;
}

/* linux.resources from LinuxContainerResources; process.oomScoreAdj with
 * them (containerd sets it whenever resources are given). */
static int container_resources(struct gen *g, const Runtime__V1__LinuxContainerResources *r,
			       json_t *res, json_t *process)
{
	int adj;

	if (!r)
		return 0;
	if (resources_checked(g, r, res, &adj) < 0)
		return -1;
	jset(g, process, "oomScoreAdj", json_integer(adj));
	return 0;
}

json_t *spec_resources(const struct spec_host *host, const char *what,
		       const Runtime__V1__LinuxContainerResources *r, int *ret_oom_score_adj,
		       struct crisp_error *err)
{
	struct gen g = { .host = host, .what = what, .err = err };
	json_t *res = json_object();
	int adj = 0;

	if (!res) {
		invalid(&g, "a value could not be encoded as JSON");
		return NULL;
	}
	if (resources_checked(&g, r, res, &adj) < 0) {
		json_decref(res);
		return NULL;
	}
	res = finish(&g, res);
	if (res && ret_oom_score_adj)
		*ret_oom_score_adj = adj;
	return res;
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
	     ns_match(g, "linux.security_context.namespace_options.ipc", o->ipc, ipc) < 0))
		return -1;
	if (check_container_userns(g, F, o) < 0)
		return -1;
	/* The pod's user namespace first: it owns the pod's other namespaces,
	 * and runc 1.1 joins the user namespace before them. netd's pin, which
	 * lives as long as the pod, not the pause's /proc entry. */
	if (pod_userns(g->pod)) {
		if (!g->pod->userns_path || !*g->pod->userns_path)
			return invalid(g, "the pod has a user namespace of its own but no "
					  "userns path was given");
		ns_add(g, ns, "user", g->pod->userns_path);
	}
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

/* What the spec does not carry but must not be silently dropped: CDI
 * devices (crisp has no CDI: a pod that needs a GPU must fail, not start
 * without it), SELinux labels, a stop signal outside the enum. */
static int check_unsupported(struct gen *g, const Runtime__V1__ContainerConfig *cfg)
{
	static const char cdi_prefix[] = "cdi.k8s.io/";
	const Runtime__V1__LinuxContainerConfig *lxc = cfg->linux;
	const Runtime__V1__LinuxContainerSecurityContext *sc = lxc ? lxc->security_context : NULL;

	if (cfg->n_cdi_devices)
		return fail(g, CRISP_E_UNIMPLEMENTED, "CDI_devices: CDI devices are not supported");
	for (size_t i = 0; i < cfg->n_annotations; i++) {
		const char *k = cfg->annotations[i]->key;

		if (k && strncmp(k, cdi_prefix, sizeof(cdi_prefix) - 1) == 0)
			return fail(g, CRISP_E_UNIMPLEMENTED,
				    "annotations[%zu] '%s': CDI devices are not supported", i,
				    show(k).s);
	}
	if (sc &&
	    selinux_check(g, "linux.security_context.selinux_options", sc->selinux_options) < 0)
		return -1;
	if (spec_stop_signal(cfg->stop_signal) < 0)
		return invalid(g, "stop_signal %d is not a signal", (int)cfg->stop_signal);
	return 0;
}

static int check_container(struct gen *g, const struct spec_container *c)
{
	if (!c || !c->config || !c->image)
		return invalid(g, "the container config or the image config is missing");
	if (!id_valid(c->container_id))
		return invalid(g, "container id '%s' is not valid", show(c->container_id).s);
	if (check_abs_path(g, "rootfs", c->rootfs) < 0)
		return -1;
	return check_unsupported(g, c->config);
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
	if (pod_userns(pod))
		userns_mappings(&g, pod_userns(pod), lx);
	if (!privileged &&
	    (masked_paths(&g, sc, lx) < 0 ||
	     seccomp_json(&g, "linux.security_context.seccomp", sc ? sc->seccomp : NULL,
			  sc ? sc->seccomp_profile_path : NULL, PROFILE_UNSET, caps, lx) < 0))
		return NULL;
	return finish(&g, TAKE_PTR(spec));
}

/* ---- the sandbox spec --------------------------------------------------- */

/* The kubelet sends network and ipc POD or NODE, and pid CONTAINER (the
 * default: the pause's own pid namespace, which each container then gets
 * one of its own beside), POD (shareProcessNamespace) or NODE. TARGET
 * names a container, which a sandbox has none of yet. */
static int sandbox_ns_mode(struct gen *g, const char *which, Runtime__V1__NamespaceMode m,
			   bool container_ok)
{
	static const char F[] = "linux.security_context.namespace_options";

	switch (m) {
	case RUNTIME__V1__NAMESPACE_MODE__POD:
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
		if (container_ok)
			return 0;
		return invalid(g, "%s.%s CONTAINER is not a mode for a sandbox (POD or NODE)", F,
			       which);
	case RUNTIME__V1__NAMESPACE_MODE__TARGET:
		return invalid(g, "%s.%s TARGET is not a mode for a sandbox (%s)", F, which,
			       container_ok ? "POD, CONTAINER or NODE" : "POD or NODE");
	default:
		return invalid(g, "%s.%s %d is not a namespace mode", F, which, (int)m);
	}
}

static int sandbox_resources_check(struct gen *g, const char *field,
				   const Runtime__V1__LinuxContainerResources *r)
{
	static const char F[] = "linux.resources";
	json_auto_t *res = json_object(), *process = json_object();
	char *at;

	if (!r || container_resources(g, r, res, process) == 0)
		return 0;
	/* container_resources names the fields "linux.resources.*": name
	 * the one that was checked instead. */
	at = strstr(g->err->msg, F);
	if (!streq(field, F) && at) {
		_cleanup_free_ char *msg = xasprintf("%.*s%s%s", (int)(at - g->err->msg),
						     g->err->msg, field, at + strlen(F));

		err_set(g->err, g->err->code, "%s", msg);
	}
	return -1;
}

int spec_sandbox_check(const struct spec_host *host, const Runtime__V1__PodSandboxConfig *c,
		       struct crisp_error *err)
{
	struct gen g = { host, NULL, "sandbox config", err, false };
	const Runtime__V1__LinuxSandboxSecurityContext *sc;
	const Runtime__V1__NamespaceOption *o;

	if (!host || !c)
		return invalid(&g, "no host or sandbox config");
	if (!c->linux)
		return 0;
	sc = c->linux->security_context;
	o = sc ? sc->namespace_options : NULL;
	if (o && (sandbox_ns_mode(&g, "network", o->network, false) < 0 ||
		  sandbox_ns_mode(&g, "pid", o->pid, true) < 0 ||
		  sandbox_ns_mode(&g, "ipc", o->ipc, false) < 0))
		return -1;
	if (sc &&
	    selinux_check(&g, "linux.security_context.selinux_options", sc->selinux_options) < 0)
		return -1;
	if (sandbox_resources_check(&g, "linux.resources", c->linux->resources) < 0 ||
	    sandbox_resources_check(&g, "linux.overhead", c->linux->overhead) < 0)
		return -1;
	return 0;
}

static int sandbox_user(struct gen *g, const Runtime__V1__LinuxSandboxSecurityContext *sc,
			json_t *process)
{
	static const char F[] = "linux.security_context";
	uint32_t uid = PAUSE_ID, gid = PAUSE_ID;
	struct gids s = { 0 };
	int ret = -1;

	/* The pause image has no /etc/group, so either policy gives it the
	 * same groups; one outside the enum is still a bad request. */
	if (sc &&
	    sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge &&
	    sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)
		return invalid(g, "%s.supplemental_groups_policy %d is not Merge (0) or Strict (1)",
			       F, (int)sc->supplemental_groups_policy);
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
	/* netd made the pod's user namespace and its netns inside it: the
	 * pause joins both (user first, as runc 1.1 does) and makes its other
	 * namespaces inside, so the pod's root owns them all. runc 1.1 wants
	 * the mappings beside a joined user namespace (it compares them). */
	if (pod_userns(g->pod)) {
		if (!g->pod->userns_path || !*g->pod->userns_path)
			return invalid(g, "the pod has a user namespace of its own but no "
					  "userns path was given");
		ns_add(g, ns, "user", g->pod->userns_path);
		userns_mappings(g, pod_userns(g->pod), lx);
	}
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
	if (check_pod(&g, pod) < 0 || check_abs_path(&g, "rootfs", rootfs) < 0 ||
	    spec_sandbox_check(host, pod->config, err) < 0)
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

int spec_stop_signal(Runtime__V1__Signal s)
{
	const ProtobufCEnumValue *v;

	if (s == RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT)
		return 0;
	/* SIGRTMIN (35) to SIGRTMAX (65) are the real-time signals 34 to 64
	 * in order; the others are named in the enum as "SIGNAL_SIG<NAME>". */
	if (s >= RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN && s <= RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX)
		return RT_MIN + (int)(s - RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN);
	v = protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, (int)s);
	if (!v || strncmp(v->name, "SIGNAL_", 7) != 0)
		return -1;
	return spec_signal_parse(v->name + 7);
}

Runtime__V1__Signal spec_signal_enum(int sig)
{
	for (int s = RUNTIME__V1__SIGNAL__SIGNAL_SIGABRT; s <= RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX;
	     s++)
		if (spec_stop_signal((Runtime__V1__Signal)s) == sig)
			return (Runtime__V1__Signal)s;
	return RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
}

void spec_devices_free(struct spec_device *devices, size_t n)
{
	if (!devices)
		return;
	for (size_t i = 0; i < n; i++)
		free(devices[i].path);
	free(devices);
}
