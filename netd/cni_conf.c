/* Finding the CNI network configuration, the way libcni (and so containerd
 * and CRI-O) does: files ending in .conf, .conflist or .json in the conf dir,
 * in lexical order; the first one that loads is the network. Invalid files
 * are skipped, but the reason of the first one is kept for NetworkReady's
 * message. Every plugin type of the chosen list must be installed. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "netd/netd.h"

#define CNI_MAX_CONF_SIZE (1u << 20)

static const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

static bool version_supported(const char *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(cni_versions); i++)
		if (streq(v, cni_versions[i]))
			return true;
	return false;
}

static int conf_filter(const struct dirent *d)
{
	const char *dot = strrchr(d->d_name, '.');
	return d->d_name[0] != '.' && dot &&
	       (streq(dot, ".conf") || streq(dot, ".conflist") || streq(dot, ".json"));
}

/* Is plugin type installed in one of the bin dirs? */
static bool plugin_installed(const struct crisp_config *cfg, const char *type)
{
	_cleanup_free_ char *dirs = xstrdup(cfg->cni_bin_dirs);
	char *save = NULL;

	if (!*type || strchr(type, '/') || streq(type, ".") || streq(type, ".."))
		return false;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", d, type);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* Check one plugin object; 0 or -1 with why filled. */
static int check_plugin(const struct crisp_config *cfg, json_t *plugin, char *why, size_t len,
			bool *missing)
{
	const char *type = json_string_value(json_object_get(plugin, "type"));

	if (!json_is_object(plugin) || !type) {
		snprintf(why, len, "a plugin has no \"type\"");
		return -1;
	}
	if (!plugin_installed(cfg, type)) {
		snprintf(why, len, "plugin '%s' is not installed in %s", type, cfg->cni_bin_dirs);
		*missing = true;
		return -1;
	}
	return 0;
}

/* Load path as a network list (a single-plugin .conf becomes a list of one). */
static int load_file(const struct crisp_config *cfg, const char *path, bool is_list,
		     struct cni_status *st, char *why, size_t len, bool *missing)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *plugins;
	const char *name, *version;
	int r = -1;

	if (!root) {
		snprintf(why, len, "invalid JSON at line %d: %s", jerr.line, jerr.text);
		return -1;
	}
	name = json_string_value(json_object_get(root, "name"));
	version = json_string_value(json_object_get(root, "cniVersion"));
	plugins = is_list ? json_object_get(root, "plugins") : NULL;
	if (!json_is_object(root) || !name || !*name)
		snprintf(why, len, "no network \"name\"");
	else if (!version || !version_supported(version))
		snprintf(why, len, "cniVersion '%s' is not supported",
			 version ? version : "(none)");
	else if (is_list && (!json_is_array(plugins) || json_array_size(plugins) == 0))
		snprintf(why, len, "no \"plugins\" list");
	else
		r = 0;
	if (r == 0 && is_list) {
		for (size_t i = 0; i < json_array_size(plugins) && r == 0; i++)
			r = check_plugin(cfg, json_array_get(plugins, i), why, len, missing);
	} else if (r == 0) {
		r = check_plugin(cfg, root, why, len, missing);
	}
	if (r == 0)
		snprintf(st->network, sizeof(st->network), "%s", name);
	json_decref(root);
	return r;
}

void cni_conf_status(const struct crisp_config *cfg, struct cni_status *st)
{
	struct dirent **names = NULL;
	char why[384], first_bad[sizeof(why) + 260] = "";
	bool missing = false;
	int n;

	memset(st, 0, sizeof(*st));
	n = scandir(cfg->cni_conf_dir, &names, conf_filter, alphasort);
	if (n < 0) {
		snprintf(st->reason, sizeof(st->reason), "NoCNIConfig");
		snprintf(st->message, sizeof(st->message), "cannot read CNI conf dir %s: %s",
			 cfg->cni_conf_dir, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		_cleanup_free_ char *path = xasprintf("%s/%s", cfg->cni_conf_dir, f);
		bool is_list = streq(strrchr(f, '.'), ".conflist");
		struct stat sb;

		if (st->ready)
			continue;
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > CNI_MAX_CONF_SIZE)
			snprintf(why, sizeof(why), "not a regular file of at most 1 MiB");
		else if (load_file(cfg, path, is_list, st, why, sizeof(why), &missing) == 0) {
			st->ready = true;
			snprintf(st->file, sizeof(st->file), "%s", path);
			continue;
		}
		if (!*first_bad)
			snprintf(first_bad, sizeof(first_bad), "%s: %s", f, why);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (st->ready)
		return;
	if (!*first_bad) {
		snprintf(st->reason, sizeof(st->reason), "NoCNIConfig");
		snprintf(st->message, sizeof(st->message), "no network config found in %s",
			 cfg->cni_conf_dir);
	} else {
		snprintf(st->reason, sizeof(st->reason), "%s",
			 missing ? "CNIPluginMissing" : "InvalidCNIConfig");
		snprintf(st->message, sizeof(st->message), "no valid network config in %s (%s)",
			 cfg->cni_conf_dir, first_bad);
	}
}

json_t *cni_conf_load(const struct crisp_config *cfg, const char *path, struct crisp_error *err)
{
	const char *dot = strrchr(path, '.');
	bool is_list = dot && streq(dot, ".conflist");
	struct cni_status st;
	char why[384];
	bool missing = false;
	json_error_t jerr;
	json_t *root, *list;

	if (load_file(cfg, path, is_list, &st, why, sizeof(why), &missing) < 0)
		return err_set(err, missing ? CRISP_E_PRECONDITION : CRISP_E_INVALID,
			       "network config %s: %s", path, why),
		       NULL;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(err, CRISP_E_INVALID, "network config %s: %s", path, jerr.text),
		       NULL;
	if (is_list)
		return root;
	/* libcni ConfListFromConf: name and version move up to the list */
	list = json_pack("{s:O, s:O, s:[O]}", "name", json_object_get(root, "name"), "cniVersion",
			 json_object_get(root, "cniVersion"), "plugins", root);
	json_decref(root);
	return list;
}

/* ---- watching ------------------------------------------------------------ */

#define WATCH_EVENTS                                                                        \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
	 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

static struct {
	int fd;
	int conf_wd;
	bool bin_missing;
	const struct crisp_config *cfg;
	struct cni_status *st;
	void (*on_change)(void);
	struct event *ev, *settle, *retry;
} watch = { .fd = -1, .conf_wd = -1 };

static void recompute(evutil_socket_t fd, short what, void *arg);

static void add_watches(void)
{
	_cleanup_free_ char *dirs = xstrdup(watch.cfg->cni_bin_dirs);
	char *save = NULL;

	if (watch.conf_wd < 0)
		watch.conf_wd = inotify_add_watch(watch.fd, watch.cfg->cni_conf_dir, WATCH_EVENTS);
	/* adding an existing watch again is harmless */
	watch.bin_missing = false;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
		if (inotify_add_watch(watch.fd, d, WATCH_EVENTS) < 0)
			watch.bin_missing = true;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	if (watch.conf_wd < 0 || watch.bin_missing)
		recompute(fd, what, arg);
}

static void recompute(evutil_socket_t fd, short what, void *arg)
{
	add_watches();
	cni_conf_status(watch.cfg, watch.st);
	watch.on_change();
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval settle = { 0, 100000 };
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			if (e->wd == watch.conf_wd &&
			    (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
				inotify_rm_watch(fd, watch.conf_wd);
				watch.conf_wd = -1;
			}
			p += sizeof(*e) + e->len;
		}
	}
	/* a burst of events (an editor's save, a package install) settles
	 * into one recomputation */
	event_add(watch.settle, &settle);
}

int cni_conf_watch(struct event_base *base, const struct crisp_config *cfg, struct cni_status *st,
		   void (*on_change)(void), struct crisp_error *err)
{
	/* The conf dir may not exist yet, or be replaced: a slow timer adds
	 * the watch again and recomputes, inotify does the rest. */
	struct timeval retry = { 5, 0 };

	watch.cfg = cfg;
	watch.st = st;
	watch.on_change = on_change;
	watch.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch.fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "inotify_init1");
	add_watches();
	watch.ev = event_new(base, watch.fd, EV_READ | EV_PERSIST, on_inotify, NULL);
	watch.settle = evtimer_new(base, recompute, NULL);
	watch.retry = event_new(base, -1, EV_PERSIST, on_retry, NULL);
	event_add(watch.ev, NULL);
	event_add(watch.retry, &retry);
	cni_conf_status(cfg, st);
	on_change();
	return 0;
}
