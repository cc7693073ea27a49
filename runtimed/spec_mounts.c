/* OCI spec generation (spec.c), mounts and devices: the default mounts,
 * the request's bind mounts (checked, with allowed options only), the pod's
 * files, and the device list and cgroup device rules. */
#include "autoconfig.h"

#include <ctype.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtimed/idmap.h"
#include "runtimed/spec_int.h"

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

void mnts_free(struct mnts *m)
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

void mnts_add(struct mnts *m, const char *dst, const char *src, json_t *options)
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
void mounts_emit(struct gen *g, struct mnts *binds, bool privileged, bool cgroup, json_t *out)
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

json_t *bind_options(struct gen *g, const char *propagation, const char *rw)
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

static bool same_mapping(size_t n, Runtime__V1__IDMapping *const *a,
			 Runtime__V1__IDMapping *const *pod)
{
	return n == 1 && a[0] && pod[0] && a[0]->container_id == pod[0]->container_id &&
	       a[0]->host_id == pod[0]->host_id && a[0]->length == pod[0]->length;
}

/* A mount's own uid/gid mappings: every bind mount of a pod with a user
 * namespace is idmapped through the pod's namespace (idmap.h), so a mount
 * that asks for exactly the pod's mappings gets them; any other mapping
 * would need a user namespace per mount, which crisp does not make. */
static int mount_idmap_check(struct gen *g, const char *f, const Runtime__V1__Mount *m)
{
	const Runtime__V1__UserNamespace *u = idmap_pod_userns(g->pod->config);

	if (!u)
		return fail(
			g, CRISP_E_UNIMPLEMENTED,
			"%s: id-mapped mounts are supported only in a pod with a user namespace "
			"of its own (hostUsers: false)",
			f);
	if (!same_mapping(m->n_uidmappings, m->uidmappings, u->uids) ||
	    !same_mapping(m->n_gidmappings, m->gidmappings, u->gids))
		return invalid(g,
			       "%s: uid_mappings and gid_mappings must be the pod's (one range "
			       "each, as in its userns_options): its mounts are idmapped through "
			       "the pod's user namespace",
			       f);
	return 0;
}

/* One CRI mount: a bind mount of host_path. propagation sets the rootfs's
 * propagation as containerd does (rshared wins over rslave); that the host
 * mount under host_path is itself shared or slave, which containerd checks
 * in mountinfo, is left to runc and the caller. selinux_relabel is refused
 * where SELinux is enabled (crisp sets no labels) and ignored where it is
 * not, as containerd and CRI-O do. */
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
	/* A path inside an image volume: without the volume it names nothing. */
	if (m->image_sub_path && *m->image_sub_path)
		return invalid(g, "%s.image_sub_path '%s' is set without an image", f,
			       show(m->image_sub_path).s);
	if (m->selinux_relabel && g->host->selinux)
		return fail(g, CRISP_E_UNIMPLEMENTED,
			    "%s.selinux_relabel: SELinux labels are not supported", f);
	if ((m->n_uidmappings || m->n_gidmappings) && mount_idmap_check(g, f, m) < 0)
		return -1;
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
				       "%s.recursive_read_only: no recursive read-only mounts "
				       "here (they need a kernel from 5.12 and a runtime whose "
				       "features list \"rro\"; Status says which handlers have "
				       "them)",
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

int container_mounts(struct gen *g, const Runtime__V1__ContainerConfig *cfg, bool privileged,
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

/* ---- idmapped mounts (idmap.h) ------------------------------------------ */

static bool options_have(json_t *opts, const char *o)
{
	size_t i;
	json_t *v;

	json_array_foreach(opts, i, v)
	{
		if (json_is_string(v) && streq(json_string_value(v), o))
			return true;
	}
	return false;
}

/* Not spec generation, which makes nothing: the spec it made is read,
 * its bind mounts made through clones, and their sources replaced. */
int spec_mounts_idmap(json_t *spec, const char *bundle, int userns_fd, struct crisp_error *err)
{
	json_t *mounts = json_object_get(spec, "mounts"), *m;
	size_t i;

	if (!json_is_array(mounts))
		return err_set(err, CRISP_E_INTERNAL, "the generated spec has no mounts");
	if (idmap_dir_make(bundle, err) < 0)
		return -1;
	json_array_foreach(mounts, i, m)
	{
		json_t *opts = json_object_get(m, "options");
		const char *src = json_string_value(json_object_get(m, "source"));
		unsigned flags = 0;
		_cleanup_free_ char *at = NULL;

		if (!streq(json_string_value(json_object_get(m, "type")), "bind"))
			continue;
		if (!src || src[0] != '/')
			return err_set(err, CRISP_E_INTERNAL, "spec mounts[%zu]: no host path", i);
		/* A private mount leaves the peer group it was cloned into;
		 * an rslave or rshared one stays in its source's, for runc's
		 * bind of it to receive (and send) mount events as the
		 * source would. */
		if (options_have(opts, "rbind"))
			flags |= IDMAP_RECURSIVE;
		if (options_have(opts, "rprivate") || options_have(opts, "private"))
			flags |= IDMAP_PRIVATE;
		/* Read-only submounts only for rro: runc makes an "ro" rbind's
		 * top read-only and leaves what is under it as it was. */
		if (options_have(opts, "rro") ||
		    (options_have(opts, "ro") && !(flags & IDMAP_RECURSIVE)))
			flags |= IDMAP_RDONLY;
		at = xasprintf("%s/%s/m%zu", bundle, IDMAP_DIR, i);
		if (idmap_attach(userns_fd, src, at, flags, err) < 0)
			return err_prefix(err, "mount %s",
					  json_string_value(json_object_get(m, "destination")));
		if (json_object_set_new(m, "source", json_string(at)) < 0)
			return err_set(err, CRISP_E_INTERNAL, "spec mounts[%zu]: out of memory", i);
	}
	return 0;
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

json_t *default_device_rules_json(struct gen *g, bool privileged)
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

int container_devices(struct gen *g, const Runtime__V1__ContainerConfig *cfg, bool privileged,
		      json_t *lx, json_t *resources)
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
