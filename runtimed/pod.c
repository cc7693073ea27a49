/* Pod sandboxes: reservation (SandboxCreate), the pause container with the
 * pod's files and /dev/shm (SandboxStart), stop, removal, listing and
 * recovery.
 *
 * Rollback contract with the frontend: a SandboxStart that fails undoes
 * everything it did (runc state, monitor, shm mount, pod files, bundle) and
 * leaves the record "creating" (SandboxInfo.ready_to_start); the frontend
 * then calls SANDBOX_REMOVE (and netd's cleanup). SandboxRemove of an
 * unknown id succeeds: removal is idempotent. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/magic.h>

#include <event2/event.h>

#include "common/log.h"
#include "runtimed/cgroup.h"
#include "runtimed/idmap.h"
#include "runtimed/runtimed.h"

#define POD_SHM_SIZE (64u << 20)
#define DNS_ITEMS_MAX 32
#define PAUSE_DIRECT_MARK "pause-direct" /* in the pod dir: no runc, no monitor */
#define PAUSE_ARGS_MAX 60                /* within LAUNCH_ARGS_MAX */

static const char default_hosts[] = "127.0.0.1\tlocalhost\n"
				    "::1\tlocalhost ip6-localhost ip6-loopback\n"
				    "fe00::0\tip6-localnet\n"
				    "ff00::0\tip6-mcastprefix\n"
				    "ff02::1\tip6-allnodes\n"
				    "ff02::2\tip6-allrouters\n";

char *pod_default_cgroup(const char *id)
{
	return rt.host.systemd_cgroup ? NULL : xasprintf("crisp/pod-%s", id);
}

char *pod_dir(const char *id, const char *file)
{
	return file ? xasprintf("%s/%s/%s", rt.pods_dir, id, file)
		    : xasprintf("%s/%s", rt.pods_dir, id);
}

/* The config's user namespace options when the pod has a user namespace of
 * its own (mode POD; config_check made sure they are well formed). */
static const Runtime__V1__UserNamespace *config_userns(const Runtime__V1__PodSandboxConfig *c)
{
	const Runtime__V1__LinuxPodSandboxConfig *lx = c ? c->linux : NULL;
	const Runtime__V1__LinuxSandboxSecurityContext *sc = lx ? lx->security_context : NULL;
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	return u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD ? u : NULL;
}

bool pod_has_userns(const struct pod *p)
{
	return p && p->info && config_userns(p->info->config);
}

static char *userns_pin_path(const char *sandbox_id)
{
	return xasprintf("%s/userns/%s", rt.cfg->state_dir, sandbox_id);
}

/* Whether fd, opened from the pin at path, is a namespace of the given
 * type ("user", "net"). Not ioctl(NS_GET_NSTYPE): runtimed's seccomp
 * filter (runtimed/sandbox.c) allows only the pty ioctls. A pin is an
 * nsfs bind mount, and /proc/self/mountinfo names the namespace it holds
 * as its root, "<type>:[<inode>]" (nsfs's d_dname); the last mount on path
 * is the one open() reached, and its inode must be fd's. */
static bool ns_is(int fd, const char *path, const char *type)
{
	char want[96], root[256], mp[4096];
	_cleanup_free_ char *line = NULL;
	struct statfs sfs;
	struct stat st;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC || fstat(fd, &st) < 0)
		return false;
	snprintf(want, sizeof(want), "%s:[%llu]", type, (unsigned long long)st.st_ino);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		const char *sep = strstr(line, " - ");

		/* id parent major:minor root mount-point ...; paths are
		 * octal-escaped, and pins have no space in them */
		if (sscanf(line, "%*d %*d %*s %255s %4095s", root, mp) != 2 || !streq(mp, path))
			continue;
		found = sep && strncmp(sep, " - nsfs ", 8) == 0 && streq(root, want);
	}
	fclose(f);
	return found;
}

int pod_userns_open(const char *sandbox_id, struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (!sandbox_id || !id_valid(sandbox_id))
		return err_set(err, CRISP_E_INVALID, "sandbox id '%.64s' is not valid",
			       sandbox_id ? sandbox_id : "(null)");
	path = userns_pin_path(sandbox_id);
	/* O_NOFOLLOW: the pin is a bind mount of an nsfs inode, never a link. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL,
			       "sandbox %s: user namespace pin %s: %s", sandbox_id, path,
			       strerror(errno));
	if (!ns_is(fd, path, "user"))
		return err_set(err, CRISP_E_INVALID, "sandbox %s: %s is not a user namespace",
			       sandbox_id, path);
	return TAKE_FD(fd);
}

static void reply_err(struct ipc_chan *chan, struct ipc_msg *msg, struct crisp_error *err)
{
	ipc_reply_error(chan, msg, err);
}

/* --- validation ------------------------------------------------------------ */

static bool meta_ok(const char *s)
{
	size_t n = s ? strnlen(s, RT_META_MAX + 1) : 0;

	if (n == 0 || n > RT_META_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '_' || s[i] == '/')
			return false;
	return true;
}

static bool word_ok(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max + 1) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool hostname_ok(const char *h)
{
	size_t n = strnlen(h, 254);

	return n <= 253 &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static int dns_check(const Runtime__V1__DNSConfig *dns, struct crisp_error *err)
{
	if (!dns)
		return 0;
	if (dns->n_servers > DNS_ITEMS_MAX || dns->n_searches > DNS_ITEMS_MAX ||
	    dns->n_options > DNS_ITEMS_MAX)
		return err_set(err, CRISP_E_INVALID, "dns_config: more than %d entries in a list",
			       DNS_ITEMS_MAX);
	for (size_t i = 0; i < dns->n_servers; i++) {
		unsigned char buf[16];
		if (!dns->servers[i] || (inet_pton(AF_INET, dns->servers[i], buf) != 1 &&
					 inet_pton(AF_INET6, dns->servers[i], buf) != 1))
			return err_set(err, CRISP_E_INVALID,
				       "dns_config: server '%.64s' is not an IP address",
				       dns->servers[i] ? dns->servers[i] : "");
	}
	for (size_t i = 0; i < dns->n_searches; i++)
		if (!word_ok(dns->searches[i], 253))
			return err_set(err, CRISP_E_INVALID, "dns_config: bad search domain");
	for (size_t i = 0; i < dns->n_options; i++)
		if (!word_ok(dns->options[i], 253))
			return err_set(err, CRISP_E_INVALID, "dns_config: bad option");
	return 0;
}

static Runtime__V1__NamespaceMode pod_ns_network(const Runtime__V1__PodSandboxConfig *c)
{
	if (c->linux && c->linux->security_context && c->linux->security_context->namespace_options)
		return c->linux->security_context->namespace_options->network;
	return RUNTIME__V1__NAMESPACE_MODE__POD;
}

static int config_check(const Runtime__V1__PodSandboxConfig *c, struct crisp_error *err)
{
	if (!c || !c->metadata)
		return err_set(err, CRISP_E_INVALID, "sandbox config without metadata");
	if (!meta_ok(c->metadata->name) || !meta_ok(c->metadata->namespace_) ||
	    !meta_ok(c->metadata->uid))
		return err_set(err, CRISP_E_INVALID,
			       "sandbox metadata: name, namespace and uid must be non-empty, at "
			       "most %d bytes, without '_', '/' or control characters",
			       RT_META_MAX);
	if (c->hostname && !hostname_ok(c->hostname))
		return err_set(err, CRISP_E_INVALID, "hostname '%.64s' is not a host name",
			       c->hostname);
	if (c->log_directory && *c->log_directory &&
	    (c->log_directory[0] != '/' || strstr(c->log_directory, "/../") ||
	     strlen(c->log_directory) > 2048))
		return err_set(err, CRISP_E_INVALID, "log_directory must be an absolute path");
	/* Here, at reservation, before netd makes a netns for the pod: a
	 * user namespace crisp cannot give is refused with nothing to undo
	 * (spec generation checks it again at start). */
	if (c->linux && c->linux->security_context &&
	    spec_userns_check("linux.security_context.namespace_options",
			      c->linux->security_context->namespace_options,
			      rt.host.user_namespaces, err) < 0)
		return -1;
	if (spec_sandbox_check(&rt.host, c, err) < 0)
		return -1;
	return dns_check(c->dns_config, err);
}

/* --- create ------------------------------------------------------------------ */

void on_sandbox_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__SandboxCreateRequest *r = (const CrispIpc__SandboxCreateRequest *)req;
	struct crisp_error err = { 0 };
	const struct rt_handler *h;
	struct pod *p;
	const Runtime__V1__PodSandboxMetadata *m;

	if (!id_valid(r->sandbox_id)) {
		err_set(&err, CRISP_E_INVALID, "sandbox id is not 64 lowercase hex digits");
		return reply_err(chan, msg, &err);
	}
	if (config_check(r->config, &err) < 0)
		return reply_err(chan, msg, &err);
	h = handler_find(r->runtime_handler);
	if (!h) {
		err_set(&err, CRISP_E_INVALID, "runtime handler '%.64s' is not configured",
			*r->runtime_handler ? r->runtime_handler : "(default)");
		return reply_err(chan, msg, &err);
	}
	if (pod_find(r->sandbox_id) || ctr_find(r->sandbox_id)) {
		err_set(&err, CRISP_E_EXISTS, "sandbox id %s is in use", r->sandbox_id);
		return reply_err(chan, msg, &err);
	}
	m = r->config->metadata;
	p = xcalloc(1, sizeof(*p));
	memcpy(p->id, r->sandbox_id, ID_LEN + 1);
	p->name = xasprintf("k8s_POD_%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
	for (struct pod *q = rt.pods; q; q = q->next)
		if (streq(q->name, p->name)) {
			err_set(&err, CRISP_E_EXISTS, "pod sandbox name %s is reserved by %s",
				p->name, q->id);
			pod_free(p);
			return reply_err(chan, msg, &err);
		}
	p->info = xcalloc(1, sizeof(*p->info));
	crisp_ipc__sandbox_info__init(p->info);
	p->info->id = xstrdup(p->id);
	p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	p->info->created_at = now_ns();
	p->info->config = msg_dup(&runtime__v1__pod_sandbox_config__descriptor, &r->config->base);
	p->info->runtime_handler = xstrdup(h->name);
	p->info->netns_path = xstrdup("");
	p->info->userns_path = xstrdup("");
	p->info->ready_to_start = true;
	if (state_pod_insert(p, &err) < 0) {
		pod_free(p);
		return reply_err(chan, msg, &err);
	}
	p->next = rt.pods;
	rt.pods = p;
	event_emit(p->id, p->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
	ipc_reply(chan, msg, &p->info->base, NULL, 0);
}

/* --- start -------------------------------------------------------------------- */

static int pod_files(struct pod *p, const char *netns, struct crisp_error *err)
{
	const Runtime__V1__PodSandboxConfig *c = p->info->config;
	const Runtime__V1__DNSConfig *dns = c->dns_config;
	_cleanup_free_ char *dir = pod_dir(p->id, NULL);
	_cleanup_free_ char *hostname = pod_dir(p->id, "hostname");
	_cleanup_free_ char *hosts = pod_dir(p->id, "hosts");
	_cleanup_free_ char *resolv = pod_dir(p->id, "resolv.conf");
	_cleanup_free_ char *shm = pod_dir(p->id, "shm");
	_cleanup_free_ char *hn = NULL, *hostsdata = NULL, *resolvdata = NULL;
	char node[256] = "";
	size_t len = 0;

	/* Ours alone: it holds the pod's /dev/shm (a 1777 tmpfs), and the
	 * directory above is searchable by all (setup_dirs). Containers of a
	 * pod with a user namespace bind idmapped clones of these files made
	 * from here, not the files; the pod's root gets through for a pause
	 * run by runc. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", dir);
	if (pod_has_userns(p)) {
		_cleanup_close_ int fd = -1;
		uid_t root_uid;
		gid_t root_gid;

		if (idmap_host_root(idmap_pod_userns(c), &root_uid, &root_gid, err) < 0)
			return -1;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchown(fd, 0, root_gid) < 0 || fchmod(fd, 0710) < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "making %s the pod's",
					     dir);
	}
	if (c->hostname && *c->hostname) {
		hn = xasprintf("%s\n", c->hostname);
	} else {
		gethostname(node, sizeof(node) - 1);
		hn = xasprintf("%s\n", node);
	}
	if (write_file(hostname, hn, strlen(hn), 0644, err) < 0)
		return -1;
	if (!*netns) {
		hostsdata = read_file("/etc/hosts", RT_POD_FILE_MAX, &len, err);
		if (!hostsdata)
			return err_prefix(err, "host network pod");
	} else {
		hostsdata = xstrdup(default_hosts);
		len = strlen(hostsdata);
	}
	if (write_file(hosts, hostsdata, len, 0644, err) < 0)
		return -1;
	if (dns && (dns->n_servers || dns->n_searches || dns->n_options)) {
		size_t cap = 64 + DNS_ITEMS_MAX * 3 * 270;
		char *b = resolvdata = xmalloc(cap);
		b += sprintf(b, "# generated by crisp from the pod's DNSConfig\n");
		if (dns->n_searches) {
			b += sprintf(b, "search");
			for (size_t i = 0; i < dns->n_searches; i++)
				b += sprintf(b, " %s", dns->searches[i]);
			b += sprintf(b, "\n");
		}
		for (size_t i = 0; i < dns->n_servers; i++)
			b += sprintf(b, "nameserver %s\n", dns->servers[i]);
		if (dns->n_options) {
			b += sprintf(b, "options");
			for (size_t i = 0; i < dns->n_options; i++)
				b += sprintf(b, " %s", dns->options[i]);
			b += sprintf(b, "\n");
		}
		len = (size_t)(b - resolvdata);
	} else {
		resolvdata = read_file("/etc/resolv.conf", RT_POD_FILE_MAX, &len, err);
		if (!resolvdata) {
			if (err->code != CRISP_E_NOT_FOUND)
				return -1;
			resolvdata = xstrdup("");
			len = 0;
		}
	}
	if (write_file(resolv, resolvdata, len, 0644, err) < 0)
		return -1;
	if (mkdir(shm, 01777) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s", shm);
	if (mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=1777,size=67108864") < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "mounting the pod's shm");
	return 0;
}

/* Undo pod_files (and the bundle): unmount shm, remove the directories. */
static void pod_files_remove(const char *id)
{
	_cleanup_free_ char *dir = pod_dir(id, NULL);
	_cleanup_free_ char *shm = pod_dir(id, "shm");
	_cleanup_free_ char *bundle = bundle_path(id, NULL);
	int r;

	if (umount2(shm, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("unmounting %s: %s", shm, strerror(errno));
	if ((r = rm_rf(dir)) < 0) {
		log_warn("removing %s: %s", dir, strerror(-r));
		cleanup_retry_add(CLEANUP_PATH, id, dir, shm);
	}
	if ((r = rm_rf(bundle)) < 0) {
		log_warn("removing %s: %s", bundle, strerror(-r));
		cleanup_retry_add(CLEANUP_PATH, id, bundle, NULL);
	}
}

void pod_spec_fill(struct pod *p, struct spec_pod *sp, char **paths)
{
	const Runtime__V1__PodSandboxConfig *c = p->info->config;

	memset(sp, 0, sizeof(*sp));
	sp->config = c;
	sp->sandbox_id = p->id;
	sp->pause_pid = p->info->pid;
	sp->netns_path = p->info->netns_path;
	sp->userns_path = p->info->userns_path;
	paths[0] = pod_dir(p->id, "hostname");
	paths[1] = pod_dir(p->id, "hosts");
	paths[2] = pod_dir(p->id, "resolv.conf");
	paths[3] = pod_dir(p->id, "shm");
	sp->hostname_path = paths[0];
	sp->hosts_path = paths[1];
	sp->resolv_path = paths[2];
	sp->shm_path = paths[3];
	if (c->linux && c->linux->cgroup_parent && *c->linux->cgroup_parent) {
		sp->cgroup_parent = c->linux->cgroup_parent;
	} else if (rt.host.systemd_cgroup) {
		sp->cgroup_parent = "system.slice";
	} else {
		/* One cgroup per pod, so that its stats are the pod's alone. */
		_cleanup_free_ char *rel = pod_default_cgroup(p->id);
		paths[4] = xasprintf("/%s", rel);
		sp->cgroup_parent = paths[4];
	}
}

struct pod_job {
	struct pod *p;
	struct child_deferred d;
	const struct rt_handler *h;
	bool created; /* the monitor made the pause container */
	pid_t pid;
	int pidfd; /* a direct pause not yet handed to the pod, else -1 */
	struct crisp_error err;
};

static void start_rollback_done(int status, const char *errout, void *arg)
{
	struct pod_job *j = arg;

	if (status != 0)
		log_warn("sandbox %.12s: runc delete after a failed start: %s", j->p->id, errout);
	pod_files_remove(j->p->id);
	exit_dir_remove(j->p->id);
	str_set(&j->p->info->netns_path, "");
	str_set(&j->p->info->userns_path, "");
	j->p->info->pid = 0;
	j->p->busy--;
	child_reply_error(&j->d, &j->err);
	free(j);
}

/* A step of SandboxStart failed (j->err): undo all steps before it. A
 * direct pause is killed; its cgroup goes at SandboxRemove, once it is
 * surely empty. */
static void start_fail(struct pod_job *j)
{
	struct crisp_error e = { 0 };
	const char *args[] = { "delete", "--force", j->p->id, NULL };

	log_warn("sandbox %.12s: start failed: %s", j->p->id, j->err.msg);
	if (j->pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0) < 0 &&
		    errno != ESRCH)
			log_warn("sandbox %.12s: killing the pause: %s", j->p->id, strerror(errno));
		j->pidfd = safe_close(j->pidfd);
	}
	if (j->created && runc_run(j->h, args, start_rollback_done, j, &e) == 0)
		return;
	start_rollback_done(0, "", j);
}

/* The frontend whose RunPodSandbox asked for this start is gone: the call
 * failed for the kubelet, and no RunPodSandbox is left to finish the pod or
 * roll it back. Undone, the sandbox stays reserved, which the next
 * frontend's reconciler removes (frontend/reconcile.c). */
static bool start_orphaned(struct pod_job *j)
{
	if (child_deferred_live(&j->d))
		return false;
	err_set(&j->err, CRISP_E_UNAVAILABLE, "the frontend that asked for the start went away");
	return true;
}

/* The monitor ran the pause container (`runc run --detach`): it runs. */
static void start_monitor_done(pid_t pid, const struct crisp_error *err, void *arg)
{
	struct pod_job *j = arg;
	struct pod *p = j->p;

	if (err) {
		j->err = *err;
		return start_fail(j);
	}
	j->created = true;
	j->pid = pid;
	if (start_orphaned(j))
		return start_fail(j);
	p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
	p->info->ready_to_start = false;
	p->info->pid = j->pid;
	p->pid_start = proc_starttime(j->pid);
	if (state_pod_save(p, &j->err) < 0)
		return start_fail(j);
	p->busy--;
	event_emit(p->id, p->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	child_reply(&j->d, &p->info->base);
	free(j);
	/* The pause process may have died already; its exit file says so. */
	exits_check(p->id);
}

/* --- the pause without runc ---------------------------------------------------
 *
 * With the cgroupfs driver and the default handler, runtimed starts
 * crisp-pause itself (runtimed/pause.c): the launcher runs it as root, it
 * joins the cgroups made here, enters the namespaces the sandbox spec
 * describes, forks the pause and confines it, and reports its pid. The
 * spec is generated as for runc (spec_sandbox holds the rules for
 * namespaces, hostname, sysctls, cgroup path, user and oom score); this
 * reads those values from it. Its death is seen through a pidfd. */

static bool pause_direct(const struct rt_handler *h)
{
	return !rt.host.systemd_cgroup && h == &rt.handlers[0];
}

/* The pause's own cgroup (<parent>/crisp-<id>), relative to each hierarchy. */
static char *pause_cgroup_rel(json_t *spec, struct crisp_error *err)
{
	const char *cp = json_string_value(
		json_object_get(json_object_get(spec, "linux"), "cgroupsPath"));

	if (!cp) {
		err_set(err, CRISP_E_INTERNAL, "sandbox spec without linux.cgroupsPath");
		return NULL;
	}
	return cgroup_runc_relpath(cp, false, err);
}

/* A new v1 cpuset cgroup has empty cpus and mems, and refuses tasks until
 * they are set: give it its parent's, as runc does. */
static int cpuset_inherit(int parentfd, int dirfd, const char *dir, struct crisp_error *err)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char buf[4096];
		_cleanup_close_ int in = openat(parentfd, files[i], O_RDONLY | O_CLOEXEC);
		_cleanup_close_ int out = openat(dirfd, files[i], O_WRONLY | O_CLOEXEC);
		ssize_t n;

		if (in < 0 || out < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s/../%s", dir,
					     files[i]);
		n = read(in, buf, sizeof(buf));
		if (n < 0 || (size_t)n == sizeof(buf))
			return err_set(err, CRISP_E_INTERNAL, "reading the parent %s of %s",
				       files[i], dir);
		if (n > 0 && write(out, buf, (size_t)n) != n)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "writing %s/%s", dir,
					     files[i]);
	}
	return 0;
}

/* mkdir rel, component by component, in the hierarchy at hierfd. */
static int cgroup_mkdirs(int hierfd, const char *hier, const char *rel, struct crisp_error *err)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	_cleanup_close_ int fd = fcntl(hierfd, F_DUPFD_CLOEXEC, 3);
	bool cpuset = false;
	char *save = NULL;

	/* "cpuset", or a comanaged "cpu,cpuset"-style name */
	for (const char *c = hier; *c;) {
		size_t l = strcspn(c, ",");
		cpuset |= l == 6 && strncmp(c, "cpuset", 6) == 0;
		c += l + (c[l] == ',');
	}
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		bool made = mkdirat(fd, c, 0755) == 0;
		int next;

		if (!made && errno != EEXIST)
			return err_set_errno(err, CRISP_E_INTERNAL, errno,
					     "creating cgroup %s/%s/%s", CGROUP_ROOT, hier, rel);
		next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno,
					     "opening cgroup %s/%s/%s", CGROUP_ROOT, hier, rel);
		if (made && cpuset && cpuset_inherit(fd, next, c, err) < 0) {
			close(next);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return 0;
}

/* Create rel in every mounted hierarchy (or the unified one) and return
 * their absolute paths, for crisp-pause's --cgroup. */
static char **pause_cgroups_create(const char *rel, size_t *ret_n, struct crisp_error *err)
{
	enum cgroup_mode mode = cgroup_detect(CGROUP_ROOT);
	_cleanup_close_ int rootfd = open(CGROUP_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char **dirs = NULL;
	size_t n = 0;
	DIR *d;

	if (rootfd < 0 || mode == CGROUP_UNAVAILABLE) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", CGROUP_ROOT);
		return NULL;
	}
	if (mode == CGROUP_V2) {
		if (cgroup_mkdirs(rootfd, ".", rel, err) < 0)
			return NULL;
		dirs = xcalloc(2, sizeof(*dirs));
		dirs[0] = xasprintf("%s/%s", CGROUP_ROOT, rel);
		*ret_n = 1;
		return dirs;
	}
	d = fdopendir(fcntl(rootfd, F_DUPFD_CLOEXEC, 3));
	if (!d) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "listing %s", CGROUP_ROOT);
		return NULL;
	}
	/* the hierarchies are the real directories holding a cgroup.procs;
	 * "cpu" -> "cpu,cpuacct" and the like are symlinks */
	for (struct dirent *de; (de = readdir(d));) {
		_cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", de->d_name);
		_cleanup_close_ int hierfd = -1;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    faccessat(rootfd, procs, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		hierfd = openat(rootfd, de->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (n + 1 >= PAUSE_ARGS_MAX / 4 || hierfd < 0 ||
		    cgroup_mkdirs(hierfd, de->d_name, rel, err) < 0) {
			if (err->code == CRISP_E_OK)
				err_set(err, CRISP_E_INTERNAL, "%s: too many hierarchies",
					CGROUP_ROOT);
			break;
		}
		dirs = xrealloc(dirs, (n + 2) * sizeof(*dirs));
		dirs[n++] = xasprintf("%s/%s/%s", CGROUP_ROOT, de->d_name, rel);
		dirs[n] = NULL;
	}
	closedir(d);
	if (err->code != CRISP_E_OK) {
		for (size_t i = 0; i < n; i++)
			free(dirs[i]);
		free(dirs);
		return NULL;
	}
	*ret_n = n;
	return dirs;
}

static const char *ns_mode(json_t *namespaces, const char *type, const char **ret_path)
{
	size_t i;
	json_t *ns;

	json_array_foreach(
		namespaces, i,
		ns) if (streq(json_string_value(json_object_get(ns, "type")) ?: "", type))
	{
		*ret_path = json_string_value(json_object_get(ns, "path"));
		return "new";
	}
	*ret_path = NULL;
	return "host";
}

/* crisp-pause's argv (launch/check_runtimed.c check_pause's order) from the spec;
 * strings it makes go to owned[]. */
static int pause_argv(struct pod *p, json_t *spec, char **dirs, size_t ndirs, const char **argv,
		      char **owned, struct crisp_error *err)
{
	json_t *lx = json_object_get(spec, "linux"), *proc = json_object_get(spec, "process");
	json_t *user = json_object_get(proc, "user"), *nss = json_object_get(lx, "namespaces");
	json_t *sysctl = json_object_get(lx, "sysctl"), *v;
	const char *netns, *userns, *ipc, *uts, *pid, *path, *key;
	size_t n = 0, o = 0;

	if (!json_is_integer(json_object_get(user, "uid")) ||
	    !json_is_integer(json_object_get(user, "gid")))
		return err_set(err, CRISP_E_INTERNAL, "sandbox spec without process.user");
	if (ns_mode(nss, "network", &netns) && netns && !streq(netns, p->info->netns_path))
		return err_set(err, CRISP_E_INTERNAL, "sandbox spec: netns is not the pod's");
	ns_mode(nss, "user", &userns);
	if (userns && !streq(userns, p->info->userns_path))
		return err_set(err, CRISP_E_INTERNAL,
			       "sandbox spec: the user namespace is not the pod's");
	ipc = ns_mode(nss, "ipc", &path);
	if (path)
		return err_set(err, CRISP_E_INTERNAL, "sandbox spec: ipc namespace path");
	uts = ns_mode(nss, "uts", &path);
	if (path)
		return err_set(err, CRISP_E_INTERNAL, "sandbox spec: uts namespace path");
	pid = ns_mode(nss, "pid", &path);
	if (path)
		return err_set(err, CRISP_E_INTERNAL, "sandbox spec: pid namespace path");
	argv[n++] = "pause";
	argv[n++] = "--id";
	argv[n++] = p->id;
	argv[n++] = "--rootfs";
	argv[n++] = rt.pause_rootfs;
	argv[n++] = "--uid";
	argv[n++] = owned[o++] = xasprintf("%lld",
					   json_integer_value(json_object_get(user, "uid")));
	argv[n++] = "--gid";
	argv[n++] = owned[o++] = xasprintf("%lld",
					   json_integer_value(json_object_get(user, "gid")));
	argv[n++] = "--oom-score-adj";
	argv[n++] = owned[o++] = xasprintf(
		"%lld", json_integer_value(json_object_get(proc, "oomScoreAdj")));
	if (userns) {
		argv[n++] = "--userns";
		argv[n++] = userns;
	}
	if (netns) {
		argv[n++] = "--netns";
		argv[n++] = netns;
	} else {
		argv[n++] = "--host-net";
	}
	argv[n++] = "--ipc";
	argv[n++] = ipc;
	argv[n++] = "--uts";
	argv[n++] = uts;
	argv[n++] = "--pid";
	argv[n++] = pid;
	if (json_is_string(json_object_get(spec, "hostname"))) {
		argv[n++] = "--hostname";
		argv[n++] = json_string_value(json_object_get(spec, "hostname"));
	}
	for (size_t i = 0; i < ndirs; i++) {
		argv[n++] = "--cgroup";
		argv[n++] = dirs[i];
	}
	json_object_foreach(sysctl, key, v)
	{
		if (n + 3 > PAUSE_ARGS_MAX || !json_is_string(v))
			return err_set(err, CRISP_E_INVALID,
				       "too many sysctls (or one without a string value)");
		argv[n++] = "--sysctl";
		argv[n++] = owned[o++] = xasprintf("%s=%s", key, json_string_value(v));
	}
	argv[n] = NULL;
	return 0;
}

static void pause_died(evutil_socket_t fd, short what, void *arg)
{
	pod_exited(arg, "its pidfd is readable");
}

static void pod_watch(struct pod *p, int pidfd)
{
	p->pidfd = pidfd;
	p->pid_ev = event_new(child_base(), pidfd, EV_READ, pause_died, p);
	event_add(p->pid_ev, NULL);
}

void pod_unwatch(struct pod *p)
{
	if (!p->pid_ev)
		return;
	event_free(p->pid_ev);
	p->pid_ev = NULL;
	p->pidfd = safe_close(p->pidfd);
}

/* A pidfd of pid if it is still the process that started at start. */
static int pause_pidfd(pid_t pid, uint64_t start)
{
	int fd;

	if (pid <= 0 || start == 0)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	/* checked after the open: the fd now pins this very process */
	if (!proc_alive(pid, start)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pause_started(pid_t pid, uint64_t start, const struct crisp_error *err, void *arg)
{
	struct pod_job *j = arg;
	struct pod *p = j->p;
	_cleanup_free_ char *mark = pod_dir(p->id, PAUSE_DIRECT_MARK);
	struct crisp_error e = { 0 };
	int fd;

	if (err) {
		j->err = *err;
		return start_fail(j);
	}
	j->pidfd = pause_pidfd(pid, start);
	if (j->pidfd < 0) {
		if (proc_alive(pid, start)) {
			/* alive but not watchable (no pidfd_open, no fd left):
			 * it must not run on unowned; its start time was just
			 * checked, so the pid is still the pause's */
			err_set_errno(&j->err, CRISP_E_INTERNAL, errno,
				      "cannot watch the pause (pid %d)", (int)pid);
			kill(pid, SIGKILL);
		} else {
			err_set(&j->err, CRISP_E_INTERNAL, "the pause (pid %d) died as it started",
				(int)pid);
		}
		return start_fail(j);
	}
	if (start_orphaned(j))
		return start_fail(j);
	fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set_errno(&j->err, CRISP_E_INTERNAL, errno, "creating %s", mark);
		return start_fail(j);
	}
	close(fd);
	p->direct = true;
	p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
	p->info->ready_to_start = false;
	p->info->pid = pid;
	p->pid_start = start;
	if (state_pod_save(p, &e) < 0) {
		p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		p->info->ready_to_start = true;
		p->direct = false;
		unlink(mark);
		j->err = e;
		return start_fail(j);
	}
	pod_watch(p, j->pidfd);
	p->busy--;
	event_emit(p->id, p->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	child_reply(&j->d, &p->info->base);
	free(j);
}

static int pause_start(struct pod_job *j, json_t *spec)
{
	_cleanup_free_ char *rel = pause_cgroup_rel(spec, &j->err);
	const char *argv[PAUSE_ARGS_MAX + 1];
	char *owned[PAUSE_ARGS_MAX / 2] = { 0 };
	char **dirs = NULL;
	size_t ndirs = 0;
	int r = -1;

	if (!rel)
		return -1;
	dirs = pause_cgroups_create(rel, &ndirs, &j->err);
	if (!dirs)
		return err_prefix(&j->err, "sandbox %.12s", j->p->id);
	if (pause_argv(j->p, spec, dirs, ndirs, argv, owned, &j->err) == 0)
		r = pause_launch(j->p->id, argv, pause_started, j, &j->err);
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++)
		free(owned[i]);
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	return r;
}

/* The mount points of the pause container's spec at the top of its root
 * (spec_sandbox: /proc, /dev, /sys). runc makes missing ones before it
 * remounts the root read-only, as root of the host; as the root of a
 * pod's user namespace it may not (the directory is the host root's), so
 * they are made here, once, empty. */
static int pause_mountpoints(struct crisp_error *err)
{
	static const char *const dirs[] = { "proc", "dev", "sys" };
	_cleanup_close_ int root = open(rt.pause_rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (root < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", rt.pause_rootfs);
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(root, dirs[i], 0755) < 0 && errno != EEXIST)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating %s/%s",
					     rt.pause_rootfs, dirs[i]);
	return 0;
}

int write_spec(const char *id, json_t *spec, struct crisp_error *err)
{
	_cleanup_free_ char *path = bundle_path(id, "config.json");
	_cleanup_free_ char *text = json_dumps(spec, JSON_COMPACT);

	if (!text)
		return err_set(err, CRISP_E_INTERNAL, "cannot serialize the OCI spec");
	return write_file(path, text, strlen(text), 0600, err);
}

/* A pod whose config asks for a user namespace of its own gets exactly
 * netd's pin of it, checked to be a user namespace; any other pod none. */
static int userns_start_check(const struct pod *p, const char *path, struct crisp_error *err)
{
	_cleanup_free_ char *want = userns_pin_path(p->id);
	_cleanup_close_ int fd = -1;

	if (!pod_has_userns(p)) {
		if (*path)
			return err_set(err, CRISP_E_INVALID,
				       "userns path must be empty for this pod (no user namespace "
				       "of its own), not '%.200s'",
				       path);
		return 0;
	}
	if (!streq(path, want))
		return err_set(err, CRISP_E_INVALID,
			       "userns path must be %s for this pod (hostUsers: false), not "
			       "'%.200s'",
			       want, path);
	fd = pod_userns_open(p->id, err);
	return fd < 0 ? -1 : 0;
}

void on_sandbox_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__SandboxStartRequest *r = (const CrispIpc__SandboxStartRequest *)req;
	struct crisp_error err = { 0 };
	struct pod *p = id_valid(r->sandbox_id) ? pod_find(r->sandbox_id) : NULL;
	_cleanup_free_ char *want = NULL, *bundle = NULL;
	char *paths[POD_SPEC_PATHS] = { 0 };
	struct spec_pod sp;
	json_t *spec;
	struct pod_job *j;
	bool host_net;

	if (!p) {
		err_set(&err, CRISP_E_NOT_FOUND, "sandbox %.64s not found", r->sandbox_id);
		return reply_err(chan, msg, &err);
	}
	if (!p->info->ready_to_start || p->busy) {
		err_set(&err, CRISP_E_PRECONDITION, "sandbox %s is %s", p->id,
			p->busy ? "busy with another operation" : "not waiting to start");
		return reply_err(chan, msg, &err);
	}
	if (*rt.cfg->sandbox_image) {
		err_set(&err, CRISP_E_UNIMPLEMENTED,
			"runtime.sandbox_image '%s': sandboxes from an image are not supported yet "
			"(leave it empty for crisp's own pause)",
			rt.cfg->sandbox_image);
		return reply_err(chan, msg, &err);
	}
	want = xasprintf("%s/%s", rt.netns_dir, p->id);
	host_net = pod_ns_network(p->info->config) == RUNTIME__V1__NAMESPACE_MODE__NODE;
	if (host_net ? *r->netns_path != '\0' : !streq(r->netns_path, want)) {
		err_set(&err, CRISP_E_INVALID,
			"netns path must be %s for this pod (%s network), not '%.200s'",
			host_net ? "empty" : want, host_net ? "host" : "pod", r->netns_path);
		return reply_err(chan, msg, &err);
	}
	if (userns_start_check(p, r->userns_path, &err) < 0)
		return reply_err(chan, msg, &err);
	j = xcalloc(1, sizeof(*j));
	j->p = p;
	j->pidfd = -1;
	j->h = handler_find(p->info->runtime_handler);
	p->busy++;
	child_defer(msg, &j->d);
	str_set(&p->info->netns_path, r->netns_path);
	str_set(&p->info->userns_path, r->userns_path);
	if (!j->h) {
		err_set(&j->err, CRISP_E_UNAVAILABLE, "runtime handler '%s' is gone",
			p->info->runtime_handler);
		return start_fail(j);
	}
	bundle = bundle_path(p->id, NULL);
	if (pod_files(p, r->netns_path, &j->err) < 0)
		return start_fail(j);
	pod_spec_fill(p, &sp, paths);
	spec = spec_sandbox(&rt.host, &sp, rt.pause_rootfs, &j->err);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		free(paths[i]);
	if (!spec)
		return start_fail(j);
	if (pause_direct(j->h)) {
		int rr = pause_start(j, spec);
		json_decref(spec);
		if (rr < 0)
			return start_fail(j);
		return;
	}
	/* runc mounts the pause's root as the pod's root (a mapped id) when
	 * the pod has a user namespace: it must search the bundle, as a
	 * container's (0710, group the pod root's host gid), and no one
	 * else. */
	if (mkdir(bundle, 0700) < 0 && errno != EEXIST) {
		err_set_errno(&j->err, CRISP_E_INTERNAL, errno, "creating %s", bundle);
		json_decref(spec);
		return start_fail(j);
	}
	if (pod_has_userns(p)) {
		_cleanup_close_ int fd = open(bundle,
					      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		uid_t root_uid;
		gid_t root_gid;

		if (idmap_host_root(idmap_pod_userns(p->info->config), &root_uid, &root_gid,
				    &j->err) < 0 ||
		    (fd < 0 || fchown(fd, 0, root_gid) < 0 || fchmod(fd, 0710) < 0)) {
			if (j->err.code == CRISP_E_OK)
				err_set_errno(&j->err, CRISP_E_INTERNAL, errno,
					      "making %s the pod's", bundle);
			json_decref(spec);
			return start_fail(j);
		}
	}
	if (pod_has_userns(p) && pause_mountpoints(&j->err) < 0) {
		json_decref(spec);
		return start_fail(j);
	}
	if (write_spec(p->id, spec, &j->err) < 0) {
		json_decref(spec);
		return start_fail(j);
	}
	json_decref(spec);
	if (monitor_launch(j->h, p->id, "/dev/null", false, false, false, start_monitor_done, j,
			   &j->err) < 0)
		return start_fail(j);
}

/* --- exits, stop ------------------------------------------------------------ */

void pod_exited(struct pod *p, const char *why)
{
	struct crisp_error err = { 0 };

	pod_unwatch(p);
	if (p->info->ready_to_start) {
		/* The pause of a failed start: rollback handles it. */
		exit_waits_fire(&p->waits, true);
		return;
	}
	if (p->info->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY) {
		log_info("sandbox %.12s: pause exited (%s)", p->id, why);
		p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		p->info->pid = 0;
		if (state_pod_save(p, &err) < 0)
			log_err("%s", err.msg);
		event_emit(p->id, p->id,
			   RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
	}
	exit_waits_fire(&p->waits, true);
}

struct pod_stop_job {
	struct pod *p;
	void (*fn)(bool, void *);
	void *arg;
	size_t pending;
	struct event *timer;
	bool killed_pause;
};

static void pod_stop_finish(struct pod_stop_job *j, bool ok)
{
	if (j->timer)
		event_free(j->timer);
	j->fn(ok, j->arg);
	free(j);
}

static void pause_exited(bool exited, void *arg)
{
	struct pod_stop_job *j = arg;

	pod_stop_finish(j, true);
}

static void pause_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pod_stop_job *j = arg;
	struct pod *p = j->p;

	/* No exit file in time: the pause (or its monitor) is gone some other
	 * way. Record it as stopped rather than wait forever. */
	for (struct exit_wait **w = &p->waits; *w; w = &(*w)->next)
		if ((*w)->arg == j) {
			struct exit_wait *x = *w;
			*w = x->next;
			free(x);
			break;
		}
	if (!proc_alive(p->info->pid, p->pid_start)) {
		pod_exited(p, "no exit file");
		pod_stop_finish(j, true);
	} else {
		log_warn("sandbox %.12s: pause survives SIGKILL", p->id);
		pod_stop_finish(j, false);
	}
}

/* As for containers: runc may have lost its state while pause lives on. */
static void pause_kill_done(int status, const char *errout, void *arg)
{
	_cleanup_free_ char *id = arg;
	struct pod *p = pod_find(id);

	if (status != 0) {
		log_debug("sandbox %.12s: runc kill: %s", id, errout);
		if (p && proc_alive(p->info->pid, p->pid_start))
			kill(p->info->pid, SIGKILL);
	}
}

static void pod_stop_pause(struct pod_stop_job *j)
{
	struct pod *p = j->p;
	const struct rt_handler *h = handler_find(p->info->runtime_handler);
	const char *args[] = { "kill", p->id, "KILL", NULL };
	struct timeval tv = { RT_STOP_KILL_WAIT_MS / 1000, 0 };
	struct crisp_error err = { 0 };
	char *kid;

	if (p->info->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
		return pod_stop_finish(j, true);
	if (exits_check(p->id) && p->info->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
		return pod_stop_finish(j, true);
	exit_wait_add(&p->waits, pause_exited, j);
	j->timer = evtimer_new(child_base(), pause_wait_timeout, j);
	evtimer_add(j->timer, &tv);
	if (p->pid_ev) {
		/* a direct pause: its pidfd cannot hit a reused pid, and turns
		 * readable when it is dead (pause_died) */
		if (syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0) < 0 &&
		    errno != ESRCH)
			log_warn("sandbox %.12s: killing the pause: %s", p->id, strerror(errno));
		return;
	}
	kid = xstrdup(p->id);
	if (!h || runc_run(h, args, pause_kill_done, kid, &err) < 0) {
		free(kid);
		/* No runtime to ask: signal pause directly, if it is still ours. */
		if (proc_alive(p->info->pid, p->pid_start))
			kill(p->info->pid, SIGKILL);
	}
}

static void pod_ctr_stopped(bool exited, void *arg)
{
	struct pod_stop_job *j = arg;

	if (--j->pending == 0)
		pod_stop_pause(j);
}

void pod_stop(struct pod *p, void (*fn)(bool, void *), void *arg)
{
	struct pod_stop_job *j = xcalloc(1, sizeof(*j));

	j->p = p;
	j->fn = fn;
	j->arg = arg;
	j->pending = 1;
	for (struct ctr *c = rt.ctrs; c; c = c->next)
		if (streq(c->info->sandbox_id, p->id) &&
		    c->info->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED) {
			j->pending++;
			ctr_stop(c, SIGKILL, 0, pod_ctr_stopped, j);
		}
	pod_ctr_stopped(true, j);
}

struct pod_req {
	struct pod *p;
	struct child_deferred d;
	bool remove;
	size_t pending;
	struct crisp_error err;
};

/* How long processes killed in a removed pod's pause cgroup get to go:
 * the cgroup's removal is tried every CGROUP_KILL_WAIT_MS, at most
 * CGROUP_KILL_TRIES times, on a timer (the loop never waits). A process
 * with much memory takes a while to exit: the kernel frees it first. */
#define CGROUP_KILL_WAIT_MS 50
#define CGROUP_KILL_TRIES 40

/* A direct pause whose start runtimed never recorded (runtimed died between
 * crisp-pause's sync line and the record) is in nobody's hands but its
 * cgroup's: kill whatever is still in it. Whether anything was. */
static bool cgroup_kill_all(const char *relpath)
{
	/* the pause joined every hierarchy: any one that is mounted will do */
	static const char *const controllers[] = { "pids", "memory", "cpu" };
	enum cgroup_mode mode = cgroup_detect(CGROUP_ROOT);
	bool killed = false;
	FILE *f = NULL;
	long pid;

	for (size_t i = 0; !f && i < ARRAY_SIZE(controllers); i++) {
		struct crisp_error err = { 0 };
		_cleanup_free_ char *dir = cgroup_dir(mode, CGROUP_ROOT,
						      mode == CGROUP_V2 ? NULL : controllers[i],
						      relpath, &err);
		_cleanup_free_ char *procs = dir ? xasprintf("%s/cgroup.procs", dir) : NULL;

		if (procs)
			f = fopen(procs, "re");
	}
	if (!f)
		return false;
	while (fscanf(f, "%ld", &pid) == 1)
		if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0)
			killed = true;
	fclose(f);
	return killed;
}

/* The removal of a pod's cgroups: the pause's own, then the pod's. */
struct cgroup_rm_job {
	struct pod_req *q;
	char *pause_rel; /* the pause's own cgroup (crisp-pause joined it), or NULL */
	char *pod_rel;   /* the default pod cgroup, NULL when not ours */
	struct event *timer;
	bool killed; /* something was killed there: worth waiting for */
	unsigned tries;
};

static void remove_record(struct pod_req *q);

static void cgroup_rm_failed(struct pod_req *q, const char *rel, const struct crisp_error *err)
{
	log_warn("sandbox %.12s: %s", q->p->id, err->msg);
	cleanup_retry_add(CLEANUP_CGROUP, q->p->id, rel, NULL);
}

/* The default pod cgroup is ours to remove (a kubelet's cgroup_parent is
 * the kubelet's); runc removed the containers' own. */
static void cgroup_rm_done(struct cgroup_rm_job *j)
{
	struct pod_req *q = j->q;
	struct crisp_error err = { 0 };

	if (j->pod_rel && cgroup_remove(CGROUP_ROOT, j->pod_rel, &err) < 0)
		cgroup_rm_failed(q, j->pod_rel, &err);
	if (j->timer)
		event_free(j->timer);
	free(j->pause_rel);
	free(j->pod_rel);
	free(j);
	remove_record(q);
}

/* The pause's cgroup, once what was killed in it had time to go: removed,
 * or killed again and waited for, or after CGROUP_KILL_TRIES given up on
 * (and listed for a later retry), as at once when nothing was killed. */
static void cgroup_rm_pause(evutil_socket_t fd, short what, void *arg)
{
	struct cgroup_rm_job *j = arg;
	struct timeval tv = { 0, CGROUP_KILL_WAIT_MS * 1000 };
	struct crisp_error err = { 0 };

	if (cgroup_remove(CGROUP_ROOT, j->pause_rel, &err) == 0)
		return cgroup_rm_done(j);
	if (err.code == CRISP_E_PRECONDITION && j->killed && ++j->tries < CGROUP_KILL_TRIES) {
		cgroup_kill_all(j->pause_rel); /* anything forked meanwhile */
		evtimer_add(j->timer, &tv);
		return;
	}
	cgroup_rm_failed(j->q, j->pause_rel, &err);
	cgroup_rm_done(j);
}

static void pod_cgroup_remove(struct pod_req *q)
{
	struct pod *p = q->p;
	const Runtime__V1__PodSandboxConfig *c = p->info->config;
	struct cgroup_rm_job *j = xcalloc(1, sizeof(*j));
	struct crisp_error err = { 0 };
	struct timeval tv = { 0, CGROUP_KILL_WAIT_MS * 1000 };

	j->q = q;
	if (!rt.host.systemd_cgroup) {
		_cleanup_free_ char *cp = NULL;
		char *paths[POD_SPEC_PATHS] = { 0 };
		struct spec_pod sp;

		pod_spec_fill(p, &sp, paths);
		cp = spec_cgroups_path(&rt.host, sp.cgroup_parent, p->id);
		for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
			free(paths[i]);
		j->pause_rel = cp ? cgroup_runc_relpath(cp, false, &err) : NULL;
		if (!j->pause_rel && err.code != CRISP_E_OK)
			log_warn("sandbox %.12s: %s", p->id, err.msg);
	}
	if (!(c->linux && c->linux->cgroup_parent && *c->linux->cgroup_parent))
		j->pod_rel = pod_default_cgroup(p->id);
	if (!j->pause_rel)
		return cgroup_rm_done(j);
	j->timer = evtimer_new(child_base(), cgroup_rm_pause, j);
	j->killed = cgroup_kill_all(j->pause_rel);
	if (j->killed) {
		log_warn("sandbox cgroup %s still held processes: killed them", j->pause_rel);
		/* their reaper (init) collects them at once, but a process
		 * with much memory takes a while to exit */
		evtimer_add(j->timer, &tv);
		return;
	}
	cgroup_rm_pause(-1, 0, j);
}

/* The pod's files and cgroups go, whatever fails there (it is logged and
 * listed to be tried again), then the record. */
static void remove_finish(struct pod_req *q)
{
	pod_files_remove(q->p->id);
	pod_cgroup_remove(q);
}

static void remove_record(struct pod_req *q)
{
	struct pod *p = q->p;
	struct crisp_error err = { 0 };
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	exit_dir_remove(p->id);
	if (state_pod_delete(p->id, &err) < 0) {
		p->busy--;
		child_reply_error(&q->d, &err);
		free(q);
		return;
	}
	for (struct pod **pp = &rt.pods; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	event_emit(p->id, p->id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
	pod_free(p);
	child_reply(&q->d, &empty.base);
	free(q);
}

/* The removal fails and the record stays, for the kubelet to retry it:
 * the containers removed so far stay removed. */
static void remove_fail(struct pod_req *q)
{
	q->p->busy--;
	child_reply_error(&q->d, &q->err);
	free(q);
}

static void remove_pause_deleted(int status, const char *errout, void *arg)
{
	struct pod_req *q = arg;

	/* "does not exist" is the usual answer after a reboot or a failed
	 * start. Anything else (a hung runc killed, a cgroup that would not
	 * go) leaves runc's state and the pause's cgroups behind: nothing of
	 * the pod is torn down yet, so a retry does all of it again. */
	if (status != 0 && !strstr(errout, "not exist")) {
		err_set(&q->err, CRISP_E_INTERNAL, "runc delete %s: %s", q->p->id, errout);
		log_warn("sandbox %.12s: %s", q->p->id, q->err.msg);
		return remove_fail(q);
	}
	remove_finish(q);
}

static void remove_ctr_done(int r, const struct crisp_error *err, void *arg)
{
	struct pod_req *q = arg;
	const struct rt_handler *h;
	const char *args[] = { "delete", "--force", q->p->id, NULL };

	if (r < 0 && q->err.code == CRISP_E_OK)
		q->err = *err;
	if (--q->pending > 0)
		return;
	if (q->err.code != CRISP_E_OK)
		return remove_fail(q);
	/* a direct pause left no runc state */
	if (q->p->direct)
		return remove_finish(q);
	/* any runc deletes from the one state root, should the pod's handler
	 * be gone from the configuration */
	h = handler_find(q->p->info->runtime_handler);
	if (!h)
		h = handler_find("");
	if (!h)
		return remove_finish(q);
	if (runc_run(h, args, remove_pause_deleted, q, &q->err) < 0) {
		err_prefix(&q->err, "runc delete %s", q->p->id);
		return remove_fail(q);
	}
}

static void req_stopped(bool ok, void *arg)
{
	struct pod_req *q = arg;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	if (!ok) {
		err_set(&q->err, CRISP_E_INTERNAL, "sandbox %s: processes survive SIGKILL",
			q->p->id);
		q->p->busy--;
		child_reply_error(&q->d, &q->err);
		free(q);
		return;
	}
	if (!q->remove) {
		q->p->busy--;
		child_reply(&q->d, &empty.base);
		free(q);
		return;
	}
	/* Every container of the pod goes, as ContainerRemove would. */
	q->pending = 1;
	for (struct ctr *c = rt.ctrs, *next; c; c = next) {
		next = c->next;
		if (streq(c->info->sandbox_id, q->p->id)) {
			q->pending++;
			ctr_destroy(c, remove_ctr_done, q);
		}
	}
	remove_ctr_done(0, NULL, q);
}

static void pod_request(struct ipc_chan *chan, struct ipc_msg *msg, const char *id, bool remove)
{
	struct crisp_error err = { 0 };
	struct pod *p = id_valid(id) ? pod_find(id) : NULL;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct pod_req *q;

	if (!id_valid(id)) {
		err_set(&err, CRISP_E_INVALID, "sandbox id is not 64 lowercase hex digits");
		return reply_err(chan, msg, &err);
	}
	if (!p) {
		if (remove) {
			ipc_reply(chan, msg, &empty.base, NULL, 0);
			return;
		}
		err_set(&err, CRISP_E_NOT_FOUND, "sandbox %s not found", id);
		return reply_err(chan, msg, &err);
	}
	if (p->busy) {
		err_set(&err, CRISP_E_UNAVAILABLE, "sandbox %s is busy with another operation",
			p->id);
		return reply_err(chan, msg, &err);
	}
	q = xcalloc(1, sizeof(*q));
	q->p = p;
	q->remove = remove;
	p->busy++;
	child_defer(msg, &q->d);
	pod_stop(p, req_stopped, q);
}

void on_sandbox_stop(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	pod_request(chan, msg, ((const CrispIpc__SandboxStopRequest *)req)->sandbox_id, false);
}

void on_sandbox_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	pod_request(chan, msg, ((const CrispIpc__SandboxRemoveRequest *)req)->sandbox_id, true);
}

/* A SandboxListRequest.brief copy of info: its config holds only what a
 * CRI list shows and filters on (metadata, labels, annotations), not the
 * DNS, port mappings and security context the kubelet's every-second list
 * has no use for. Shallow: it points into info, which must outlive it,
 * and changes nothing there. */
static CrispIpc__SandboxInfo *sandbox_info_brief(const CrispIpc__SandboxInfo *info,
						 CrispIpc__SandboxInfo *out,
						 Runtime__V1__PodSandboxConfig *out_cfg)
{
	*out = *info;
	if (!info->config)
		return out;
	runtime__v1__pod_sandbox_config__init(out_cfg);
	out_cfg->metadata = info->config->metadata;
	out_cfg->n_labels = info->config->n_labels;
	out_cfg->labels = info->config->labels;
	out_cfg->n_annotations = info->config->n_annotations;
	out_cfg->annotations = info->config->annotations;
	out->config = out_cfg;
	return out;
}

void on_sandbox_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__SandboxListRequest *r = (const CrispIpc__SandboxListRequest *)req;
	CrispIpc__SandboxListReply reply = CRISP_IPC__SANDBOX_LIST_REPLY__INIT;
	size_t n = 0;
	_cleanup_free_ CrispIpc__SandboxInfo **list = NULL;
	_cleanup_free_ CrispIpc__SandboxInfo *brief = NULL;
	_cleanup_free_ Runtime__V1__PodSandboxConfig *brief_cfg = NULL;

	for (struct pod *p = rt.pods; p; p = p->next)
		n++;
	list = xcalloc(n + 1, sizeof(*list));
	if (r->brief) {
		brief = xcalloc(n + 1, sizeof(*brief));
		brief_cfg = xcalloc(n + 1, sizeof(*brief_cfg));
	}
	n = 0;
	for (struct pod *p = rt.pods; p; p = p->next) {
		if (*r->sandbox_id && !streq(r->sandbox_id, p->id))
			continue;
		list[n] = p->info;
		if (r->brief)
			list[n] = sandbox_info_brief(p->info, &brief[n], &brief_cfg[n]);
		n++;
	}
	reply.sandboxes = list;
	reply.n_sandboxes = n;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* The same rules for the new overhead and resources as at RunPodSandbox,
 * before anything is recorded. */
static int update_check(const CrispIpc__SandboxUpdateRequest *r, struct crisp_error *err)
{
	Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	Runtime__V1__PodSandboxConfig c = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;

	lx.overhead = r->overhead;
	lx.resources = r->resources;
	c.linux = &lx;
	return spec_sandbox_check(&rt.host, &c, err);
}

/* The kubelet resized the pod's cgroup itself (it owns cgroup_parent); what
 * is recorded follows, so the sandbox's config says what the pod has. */
void on_sandbox_update(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	const CrispIpc__SandboxUpdateRequest *r = (const CrispIpc__SandboxUpdateRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct pod *p = id_valid(r->sandbox_id) ? pod_find(r->sandbox_id) : NULL;
	Runtime__V1__PodSandboxConfig *cfg;
	struct crisp_error err = { 0 };

	if (!id_valid(r->sandbox_id))
		return (void)(err_set(&err, CRISP_E_INVALID, "sandbox id is not 64 lowercase hex"),
			      ipc_reply_error(chan, msg, &err));
	if (!p)
		return (void)(err_set(&err, CRISP_E_NOT_FOUND, "pod sandbox %.12s not found",
				      r->sandbox_id),
			      ipc_reply_error(chan, msg, &err));
	if (update_check(r, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	cfg = p->info->config;
	if (!cfg->linux) {
		Runtime__V1__LinuxPodSandboxConfig empty_linux =
			RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
		cfg->linux = msg_dup(&runtime__v1__linux_pod_sandbox_config__descriptor,
				     &empty_linux.base);
	}
	if (r->overhead) {
		if (cfg->linux->overhead)
			protobuf_c_message_free_unpacked(&cfg->linux->overhead->base, NULL);
		cfg->linux->overhead = msg_dup(&runtime__v1__linux_container_resources__descriptor,
					       &r->overhead->base);
	}
	if (r->resources) {
		if (cfg->linux->resources)
			protobuf_c_message_free_unpacked(&cfg->linux->resources->base, NULL);
		cfg->linux->resources = msg_dup(&runtime__v1__linux_container_resources__descriptor,
						&r->resources->base);
	}
	if (state_pod_save(p, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

/* --- recovery ----------------------------------------------------------------- */

void pod_recover(struct pod *p)
{
	struct crisp_error err = { 0 };
	_cleanup_free_ char *bundle = bundle_path(p->id, NULL);
	_cleanup_free_ char *mark = pod_dir(p->id, PAUSE_DIRECT_MARK);
	int fd;

	p->direct = access(mark, F_OK) == 0;
	if (p->info->ready_to_start ||
	    p->info->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
		return;
	if (p->direct) {
		/* the recorded pid is ours only if it started when recorded */
		fd = pause_pidfd(p->info->pid, p->pid_start);
		if (fd >= 0) {
			pod_watch(p, fd);
			return;
		}
	} else {
		if (exits_check(p->id))
			return;
		if (proc_alive(p->info->pid, p->pid_start))
			return;
	}
	/* Gone without an exit file: a node restart (the state dir is a tmpfs),
	 * or the monitor died. */
	log_info("sandbox %.12s: pause is gone (%s)", p->id,
		 p->direct                   ? "its recorded pid is not it any more"
		 : access(bundle, F_OK) == 0 ? "no exit recorded"
					     : "lost at node restart");
	p->info->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	p->info->pid = 0;
	if (state_pod_save(p, &err) < 0)
		log_err("%s", err.msg);
}
