#include "autoconfig.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include "common/config.h"
#include "common/log.h"

#define OFF(f) offsetof(struct crisp_config, f)

const struct config_key config_keys[] = {
	{ "crispd", "socket", CFG_PATH, "/run/crisp/crisp.sock", OFF(socket), 0, 0, false,
	  "CRI gRPC unix socket (ignored under systemd socket activation)" },
	{ "crispd", "socket_mode", CFG_MODE, "0660", OFF(socket_mode), 0, 07777, false,
	  "permissions of the socket" },
	{ "crispd", "socket_group", CFG_STRING, "root", OFF(socket_group), 0, 0, false,
	  "group owning the socket; root and members of this group may call" },
	{ "crispd", "root_dir", CFG_PATH, "/var/lib/crisp", OFF(root_dir), 0, 0, false,
	  "durable state; each helper owns a subdirectory" },
	{ "crispd", "state_dir", CFG_PATH, "/run/crisp", OFF(state_dir), 0, 0, false,
	  "volatile state: lock file, the frontend's empty root" },
	{ "crispd", "helper_dir", CFG_PATH, CRISP_HELPER_DIR, OFF(helper_dir), 0, 0, false,
	  "directory of crisp-frontend, crisp-imaged, crisp-netd, crisp-runtimed" },
	{ "crispd", "log_level", CFG_LOGLEVEL, "info", OFF(log_level), 0, 0, true,
	  "debug, info, notice, warning or error" },
	{ "crispd", "health_interval", CFG_UINT, "5", OFF(health_interval), 1, 3600, false,
	  "seconds between health pings; a process that misses three in a row is killed and "
	  "restarted" },
	{ "crispd", "restart_backoff_max", CFG_UINT, "30", OFF(restart_backoff_max), 1, 3600, true,
	  "longest wait in seconds before restarting a process that died" },
	{ "crispd", "crash_loop_limit", CFG_UINT, "5", OFF(crash_loop_limit), 1, 1000, true,
	  "quick deaths in a row after which a process is reported as crash-looping" },
	{ "frontend", "user", CFG_STRING, "crisp", OFF(frontend_user), 0, 0, false,
	  "unprivileged user the frontend runs as" },
	{ "frontend", "ipc_timeout", CFG_UINT, "120", OFF(ipc_timeout), 1, 86400, false,
	  "seconds the frontend waits for a helper's answer" },
	{ "images", "max_concurrent_downloads", CFG_UINT, "3", OFF(max_concurrent_downloads), 1, 64,
	  false, "registry transfers (of all pulls together) at the same time" },
	{ "images", "pull_progress_timeout", CFG_UINT, "60", OFF(pull_progress_timeout), 5, 3600,
	  false, "seconds a pull may go without receiving a byte before it fails" },
	{ "images", "max_layer_entries", CFG_UINT, "1000000", OFF(max_layer_entries), 1, 100000000,
	  false, "files, directories and links one layer may hold" },
	{ "images", "max_layer_size_mb", CFG_UINT, "65536", OFF(max_layer_size_mb), 1, 16777216,
	  false, "uncompressed size in MiB one layer may have" },
	{ "images", "max_layer_path_len", CFG_UINT, "4096", OFF(max_layer_path_len), 256, 65536,
	  false, "bytes a name or link target in a layer may have" },
	{ "images", "snapshotter", CFG_SNAPSHOTTER, "auto", OFF(snapshotter), 0, 0, false,
	  "container snapshots: overlayfs, copy (a full copy of the image, where overlayfs is "
	  "unavailable) or auto (overlayfs if it works in imaged's root)" },
	{ "runtime", "cgroup_driver", CFG_CGROUP_DRIVER, "cgroupfs", OFF(cgroup_driver), 0, 0,
	  false, "cgroupfs or systemd" },
	{ "runtime", "default_runtime", CFG_STRING, "runc", OFF(default_runtime), 0, 0, false,
	  "OCI runtime handler used when a pod names none" },
	{ "runtime", "restrict_oom_score_adj", CFG_TRISTATE, "auto", OFF(restrict_oom_score_adj), 0,
	  0, false,
	  "clamp containers' oom_score_adj to crisp's own: auto (when CAP_SYS_RESOURCE is "
	  "missing), on, off" },
	{ "runtime", "log_line_max", CFG_UINT, "16384", OFF(log_line_max), 256, 1048576, false,
	  "bytes of a container's output line after which the CRI log splits it into partial "
	  "(P) records" },
	{ "runtime", "exec_output_max", CFG_UINT, "16777216", OFF(exec_output_max), 4096, 268435456,
	  false, "bytes of stdout, and of stderr, ExecSync keeps; the rest is dropped" },
	{ "runtime", "seccomp_profile_root", CFG_PATH, "/var/lib/kubelet/seccomp",
	  OFF(seccomp_profile_root), 0, 0, false,
	  "directory under which Localhost seccomp profiles must lie" },
	{ "runtime", "sandbox_image", CFG_OPTSTRING, "", OFF(sandbox_image), 0, 0, false,
	  "image to run pod sandboxes from; empty: crisp's own pause program, no image needed" },
	{ "runtime", "runtime_timeout", CFG_UINT, "60", OFF(runtime_timeout), 1, 3600, false,
	  "seconds one call of a runtime handler's program (runc kill, delete, update, "
	  "features) may take before it is killed and the call fails" },
	{ "streaming", "address", CFG_STRING, "127.0.0.1", OFF(stream_address), 0, 0, false,
	  "IP address the exec/attach/port-forward streaming server listens on" },
	{ "streaming", "port", CFG_UINT, "0", OFF(stream_port), 0, 65535, false,
	  "its TCP port; 0 picks a free one at start" },
	{ "streaming", "token_ttl", CFG_UINT, "60", OFF(stream_token_ttl), 1, 3600, false,
	  "seconds a streaming URL stays valid before it is used" },
	{ "streaming", "idle_timeout", CFG_UINT, "14400", OFF(stream_idle_timeout), 1, 604800,
	  false, "seconds a stream may go without traffic before it is closed" },
	{ "streaming", "tls_cert", CFG_OPTSTRING, "", OFF(stream_tls_cert), 0, 0, false,
	  "PEM certificate for HTTPS streaming; empty: plain HTTP (fine on 127.0.0.1)" },
	{ "streaming", "tls_key", CFG_OPTSTRING, "", OFF(stream_tls_key), 0, 0, false,
	  "PEM private key of tls_cert" },
	{ "streaming", "allow_insecure_address", CFG_BOOL, "false",
	  OFF(stream_allow_insecure_address), 0, 0, false,
	  "listen on an address other than loopback without TLS (the URLs and streams in clear)" },
	{ "cni", "conf_dir", CFG_PATH, "/etc/cni/net.d", OFF(cni_conf_dir), 0, 0, false,
	  "CNI network configuration directory" },
	{ "cni", "bin_dirs", CFG_PATHLIST, "/usr/lib/cni:/opt/cni/bin", OFF(cni_bin_dirs), 0, 0,
	  false, "colon-separated CNI plugin directories, searched in order" },
	{ "cni", "plugin_timeout", CFG_UINT, "60", OFF(cni_plugin_timeout), 1, 3600, false,
	  "seconds one CNI plugin call may take before it is killed and the call fails" },
	{ "cni", "ip_family", CFG_IPFAMILY, "ipv4", OFF(cni_ip_family), 0, 0, false,
	  "which of a dual-stack pod's addresses is its primary IP: ipv4 or ipv6" },
};
const size_t config_nkeys = ARRAY_SIZE(config_keys);

static const struct config_key *config_find(const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (streq(config_keys[i].section, section) && streq(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

static bool path_ok(const char *v)
{
	return v[0] == '/' && strlen(v) < 4096 && !strstr(v, "/../") && !strchr(v, ':') &&
	       strcmp(v + strlen(v) - (strlen(v) >= 3 ? 3 : 0), "/..") != 0;
}

static int parse_bool(const char *v, bool *ret)
{
	if (streq(v, "true") || streq(v, "yes") || streq(v, "on"))
		*ret = true;
	else if (streq(v, "false") || streq(v, "no") || streq(v, "off"))
		*ret = false;
	else
		return -1;
	return 0;
}

static int key_set(struct crisp_config *cfg, const struct config_key *k, const char *v,
		   struct crisp_error *err)
{
	void *field = (char *)cfg + k->offset;
	uint64_t n;
	int r;

	switch (k->type) {
	case CFG_PATH:
		if (!path_ok(v))
			return err_set(err, CRISP_E_INVALID, "'%s' is not an absolute path", v);
		goto string;
	case CFG_PATHLIST: {
		_cleanup_free_ char *copy = xstrdup(v);
		char *save = NULL;
		size_t npaths = 0;
		for (char *p = strtok_r(copy, ":", &save); p;
		     p = strtok_r(NULL, ":", &save), npaths++)
			if (!path_ok(p))
				return err_set(err, CRISP_E_INVALID, "'%s' is not an absolute path",
					       p);
		if (npaths == 0) /* "" or ":" */
			return err_set(err, CRISP_E_INVALID, "empty path list");
		goto string;
	}
	case CFG_STRING:
		if (!*v)
			return err_set(err, CRISP_E_INVALID, "empty value");
		goto string;
	case CFG_OPTSTRING:
	string:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case CFG_UINT:
		r = parse_uint64(v, 10, k->max, &n);
		if (r < 0 || n < k->min)
			return err_set(err, CRISP_E_INVALID,
				       "'%s' is not a number from %llu to %llu", v,
				       (unsigned long long)k->min, (unsigned long long)k->max);
		*(uint32_t *)field = (uint32_t)n;
		return 0;
	case CFG_MODE:
		if (v[0] != '0' || parse_uint64(v, 8, k->max, &n) < 0)
			return err_set(err, CRISP_E_INVALID, "'%s' is not an octal mode like 0660",
				       v);
		*(uint32_t *)field = (uint32_t)n;
		return 0;
	case CFG_LOGLEVEL:
		r = log_level_from_name(v);
		if (r < LOG_ERR)
			return err_set(
				err, CRISP_E_INVALID,
				"'%s' is not a log level (debug, info, notice, warning, error)", v);
		*(int *)field = r;
		return 0;
	case CFG_CGROUP_DRIVER:
		if (streq(v, "cgroupfs"))
			*(enum cgroup_driver *)field = CGROUP_DRIVER_CGROUPFS;
		else if (streq(v, "systemd"))
			*(enum cgroup_driver *)field = CGROUP_DRIVER_SYSTEMD;
		else
			return err_set(err, CRISP_E_INVALID, "'%s' is not cgroupfs or systemd", v);
		return 0;
	case CFG_IPFAMILY:
		if (streq(v, "ipv4"))
			*(enum ip_family *)field = IP_FAMILY_V4;
		else if (streq(v, "ipv6"))
			*(enum ip_family *)field = IP_FAMILY_V6;
		else
			return err_set(err, CRISP_E_INVALID, "'%s' is not ipv4 or ipv6", v);
		return 0;
	case CFG_SNAPSHOTTER:
		if (streq(v, "auto"))
			*(enum snapshotter *)field = SNAPSHOTTER_AUTO;
		else if (streq(v, "overlayfs"))
			*(enum snapshotter *)field = SNAPSHOTTER_OVERLAYFS;
		else if (streq(v, "copy"))
			*(enum snapshotter *)field = SNAPSHOTTER_COPY;
		else
			return err_set(err, CRISP_E_INVALID, "'%s' is not auto, overlayfs or copy",
				       v);
		return 0;
	case CFG_TRISTATE:
		if (streq(v, "auto"))
			*(enum tristate *)field = TRI_AUTO;
		else if (streq(v, "on") || streq(v, "true") || streq(v, "yes"))
			*(enum tristate *)field = TRI_ON;
		else if (streq(v, "off") || streq(v, "false") || streq(v, "no"))
			*(enum tristate *)field = TRI_OFF;
		else
			return err_set(err, CRISP_E_INVALID, "'%s' is not auto, on or off", v);
		return 0;
	case CFG_BOOL:
		if (parse_bool(v, (bool *)field) < 0)
			return err_set(err, CRISP_E_INVALID, "'%s' is not true or false", v);
		return 0;
	}
	return err_set(err, CRISP_E_INTERNAL, "bad key type");
}

char *config_get(const struct crisp_config *cfg, const struct config_key *k)
{
	const void *field = (const char *)cfg + k->offset;

	switch (k->type) {
	case CFG_PATH:
	case CFG_PATHLIST:
	case CFG_STRING:
	case CFG_OPTSTRING:
		return xstrdup(*(char *const *)field);
	case CFG_IPFAMILY:
		return xstrdup(*(const enum ip_family *)field == IP_FAMILY_V6 ? "ipv6" : "ipv4");
	case CFG_UINT:
		return xasprintf("%u", *(const uint32_t *)field);
	case CFG_MODE:
		return xasprintf("%04o", *(const uint32_t *)field);
	case CFG_LOGLEVEL:
		return xstrdup(log_level_name(*(const int *)field));
	case CFG_CGROUP_DRIVER:
		return xstrdup(*(const enum cgroup_driver *)field == CGROUP_DRIVER_SYSTEMD
				       ? "systemd"
				       : "cgroupfs");
	case CFG_SNAPSHOTTER: {
		enum snapshotter s = *(const enum snapshotter *)field;
		return xstrdup(s == SNAPSHOTTER_OVERLAYFS ? "overlayfs"
			       : s == SNAPSHOTTER_COPY    ? "copy"
							  : "auto");
	}
	case CFG_TRISTATE: {
		enum tristate t = *(const enum tristate *)field;
		return xstrdup(t == TRI_AUTO ? "auto" : t == TRI_ON ? "on" : "off");
	}
	case CFG_BOOL:
		return xstrdup(*(const bool *)field ? "true" : "false");
	}
	return xstrdup("");
}

void config_init(struct crisp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < config_nkeys; i++) {
		struct crisp_error err;
		if (key_set(cfg, &config_keys[i], config_keys[i].def, &err) < 0)
			fatal("built-in default of %s.%s: %s", config_keys[i].section,
			      config_keys[i].name, err.msg);
	}
}

void config_free(struct crisp_config *cfg)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->type == CFG_PATH || k->type == CFG_PATHLIST || k->type == CFG_STRING ||
		    k->type == CFG_OPTSTRING) {
			char **p = (char **)((char *)cfg + k->offset);
			free(*p);
			*p = NULL;
		}
	}
	for (size_t i = 0; i < cfg->n_registries; i++) {
		free(cfg->registries[i].host);
		free(cfg->registries[i].mirrors);
		free(cfg->registries[i].ca_file);
	}
	free(cfg->registries);
	cfg->registries = NULL;
	cfg->n_registries = 0;
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++) {
		free(cfg->runtime_handlers[i].name);
		free(cfg->runtime_handlers[i].path);
	}
	free(cfg->runtime_handlers);
	cfg->runtime_handlers = NULL;
	cfg->n_runtime_handlers = 0;
}

/* ---- [registry "HOST"] sections ------------------------------------------------ */

/* The host of a registry section name, or NULL if it is not one. */
static char *registry_section_host(const char *section)
{
	size_t n = strlen(section);

	if (strncmp(section, "registry \"", 10) != 0 || n < 12 || section[n - 1] != '"')
		return NULL;
	return strndup(section + 10, n - 11);
}

static bool registry_host_ok(const char *h)
{
	/* host[:port] or [v6]:port, as image references write them */
	return *h && strlen(h) < 256 &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
		       strlen(h);
}

static bool url_list_ok(const char *v)
{
	_cleanup_free_ char *copy = xstrdup(v);
	char *save = NULL;

	for (char *u = strtok_r(copy, ", ", &save); u; u = strtok_r(NULL, ", ", &save))
		if ((strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) ||
		    strpbrk(u, "\"'\\?#") || strlen(u) > 1024)
			return false;
	return true;
}

static struct registry_conf *registry_get(struct crisp_config *cfg, const char *host,
					  struct crisp_error *err)
{
	struct registry_conf *r;

	for (size_t i = 0; i < cfg->n_registries; i++)
		if (streq(cfg->registries[i].host, host))
			return &cfg->registries[i];
	if (cfg->n_registries >= CONFIG_MAX_REGISTRIES) {
		err_set(err, CRISP_E_INVALID, "more than %d registry sections",
			CONFIG_MAX_REGISTRIES);
		return NULL;
	}
	cfg->registries = xrealloc(cfg->registries,
				   (cfg->n_registries + 1) * sizeof(*cfg->registries));
	r = &cfg->registries[cfg->n_registries++];
	memset(r, 0, sizeof(*r));
	r->host = xstrdup(host);
	return r;
}

static int registry_set(struct crisp_config *cfg, const char *host, const char *name, const char *v,
			struct crisp_error *err)
{
	struct registry_conf *r;

	if (!registry_host_ok(host))
		return err_set(err, CRISP_E_INVALID, "'%s' is not a registry host", host);
	r = registry_get(cfg, host, err);
	if (!r)
		return -1;
	if (streq(name, "mirrors")) {
		if (*v && !url_list_ok(v))
			return err_set(err, CRISP_E_INVALID, "'%s' is not a list of http(s) URLs",
				       v);
		free(r->mirrors);
		r->mirrors = *v ? xstrdup(v) : NULL;
	} else if (streq(name, "plain_http")) {
		if (parse_bool(v, &r->plain_http) < 0)
			return err_set(err, CRISP_E_INVALID, "'%s' is not true or false", v);
	} else if (streq(name, "insecure_skip_verify")) {
		if (parse_bool(v, &r->insecure_skip_verify) < 0)
			return err_set(err, CRISP_E_INVALID, "'%s' is not true or false", v);
	} else if (streq(name, "ca_file")) {
		if (*v && !path_ok(v))
			return err_set(err, CRISP_E_INVALID, "'%s' is not an absolute path", v);
		free(r->ca_file);
		r->ca_file = *v ? xstrdup(v) : NULL;
	} else {
		return err_set(err, CRISP_E_INVALID, "unknown key '%s' in a registry section",
			       name);
	}
	return 0;
}

/* ---- [runtime_handler "NAME"] sections ---------------------------------------- */

static char *handler_section_name(const char *section)
{
	size_t n = strlen(section);

	if (strncmp(section, "runtime_handler \"", 17) != 0 || n < 19 || section[n - 1] != '"')
		return NULL;
	return strndup(section + 17, n - 18);
}

/* RuntimeClass handlers are DNS labels in Kubernetes; runtimed also uses the
 * name as its launcher's program name. */
static bool handler_name_ok(const char *h)
{
	size_t n = strlen(h);

	return n > 0 && n <= 63 && h[0] != '-' && h[n - 1] != '-' &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int handler_set(struct crisp_config *cfg, const char *name, const char *key, const char *v,
		       struct crisp_error *err)
{
	struct runtime_handler_conf *h = NULL;

	if (!handler_name_ok(name))
		return err_set(err, CRISP_E_INVALID,
			       "'%s' is not a runtime handler name (lowercase letters, digits, "
			       "'-', at most 63)",
			       name);
	if (!streq(key, "path"))
		return err_set(err, CRISP_E_INVALID,
			       "unknown key '%s' in a runtime_handler section", key);
	if (!path_ok(v))
		return err_set(err, CRISP_E_INVALID, "'%s' is not an absolute path", v);
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++)
		if (streq(cfg->runtime_handlers[i].name, name))
			h = &cfg->runtime_handlers[i];
	if (!h) {
		if (cfg->n_runtime_handlers >= CONFIG_MAX_RUNTIME_HANDLERS)
			return err_set(err, CRISP_E_INVALID,
				       "more than %d runtime_handler sections",
				       CONFIG_MAX_RUNTIME_HANDLERS);
		cfg->runtime_handlers = xrealloc(cfg->runtime_handlers,
						 (cfg->n_runtime_handlers + 1) *
							 sizeof(*cfg->runtime_handlers));
		h = &cfg->runtime_handlers[cfg->n_runtime_handlers++];
		h->name = xstrdup(name);
		h->path = NULL;
	}
	free(h->path);
	h->path = xstrdup(v);
	return 0;
}

void config_foreach(const struct crisp_config *cfg, config_item_fn fn, void *arg)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		_cleanup_free_ char *key = xasprintf("%s.%s", k->section, k->name);
		_cleanup_free_ char *v = config_get(cfg, k);
		fn(key, v, arg);
	}
	for (size_t i = 0; i < cfg->n_registries; i++) {
		const struct registry_conf *r = &cfg->registries[i];
		const struct {
			const char *name, *value;
		} items[] = {
			{ "mirrors", r->mirrors ? r->mirrors : "" },
			{ "plain_http", r->plain_http ? "true" : "false" },
			{ "insecure_skip_verify", r->insecure_skip_verify ? "true" : "false" },
			{ "ca_file", r->ca_file ? r->ca_file : "" },
		};
		for (size_t j = 0; j < ARRAY_SIZE(items); j++) {
			_cleanup_free_ char *key = xasprintf("registry \"%s\".%s", r->host,
							     items[j].name);
			fn(key, items[j].value, arg);
		}
	}
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++) {
		const struct runtime_handler_conf *h = &cfg->runtime_handlers[i];
		_cleanup_free_ char *key = xasprintf("runtime_handler \"%s\".path", h->name);
		fn(key, h->path, arg);
	}
}

int config_set(struct crisp_config *cfg, const char *key, const char *value,
	       struct crisp_error *err)
{
	/* Names have no dots; a section may ([registry "a.b"]). */
	const char *dot = strrchr(key, '.');
	const struct config_key *k;
	char section[300];
	_cleanup_free_ char *host = NULL;
	_cleanup_free_ char *handler = NULL;

	if (!dot || (size_t)(dot - key) >= sizeof(section))
		return err_set(err, CRISP_E_INVALID, "unknown key '%s'", key);
	memcpy(section, key, dot - key);
	section[dot - key] = '\0';
	host = registry_section_host(section);
	if (host) {
		if (registry_set(cfg, host, dot + 1, value, err) < 0)
			return err_prefix(err, "%s", key);
		return 0;
	}
	handler = handler_section_name(section);
	if (handler) {
		if (handler_set(cfg, handler, dot + 1, value, err) < 0)
			return err_prefix(err, "%s", key);
		return 0;
	}
	k = config_find(section, dot + 1);
	if (!k)
		return err_set(err, CRISP_E_INVALID, "unknown key '%s'", key);
	if (key_set(cfg, k, value, err) < 0)
		return err_prefix(err, "%s", key);
	return 0;
}

struct parse_ctx {
	struct crisp_config *cfg;
	struct crisp_error *err;
	bool failed;
	int line;
};

static int conf_line(void *user, const char *section, const char *name, const char *value,
		     int lineno)
{
	struct parse_ctx *ctx = user;
	const struct config_key *k;
	_cleanup_free_ char *host = NULL;
	_cleanup_free_ char *handler = NULL;

	if (ctx->failed)
		return 0;
	host = registry_section_host(section);
	if (host) {
		if (registry_set(ctx->cfg, host, name, value, ctx->err) == 0)
			return 1;
		ctx->failed = true;
		ctx->line = lineno;
		err_prefix(ctx->err, "[%s] %s", section, name);
		return 0;
	}
	handler = handler_section_name(section);
	if (handler) {
		if (handler_set(ctx->cfg, handler, name, value, ctx->err) == 0)
			return 1;
		ctx->failed = true;
		ctx->line = lineno;
		err_prefix(ctx->err, "[%s] %s", section, name);
		return 0;
	}
	k = config_find(section, name);
	if (!k) {
		ctx->failed = true;
		ctx->line = lineno;
		if (!*section)
			return err_set(ctx->err, CRISP_E_INVALID,
				       "key '%s' outside of any [section]", name) +
			       1;
		return err_set(ctx->err, CRISP_E_INVALID, "unknown key '%s' in section [%s]", name,
			       section) +
		       1;
	}
	if (key_set(ctx->cfg, k, value, ctx->err) < 0) {
		ctx->failed = true;
		ctx->line = lineno;
		err_prefix(ctx->err, "%s.%s", section, name);
		return 0;
	}
	return 1;
}

/* inih without INI_HANDLER_LINENO: keep the line in the context ourselves. */
struct line_reader {
	FILE *f;
	int line;
	int too_long; /* the line that did not fit inih's buffer, or 0 */
	int indented; /* an indented (continuation) line, or 0 */
	struct parse_ctx *ctx;
};

static char *reader(char *str, int num, void *stream)
{
	struct line_reader *lr = stream;
	char *r = fgets(str, num, lr->f);
	size_t n;
	int ch;

	if (!r)
		return NULL;
	lr->line++;
	/* inih takes an indented line for the continuation of the previous
	 * value: "  socket_group = x" would silently become part of the value
	 * above it. Refuse indented lines instead. */
	if ((r[0] == ' ' || r[0] == '\t') && r[strspn(r, " \t\r\n")] != '\0' &&
	    r[strspn(r, " \t")] != '#' && r[strspn(r, " \t")] != ';') {
		lr->indented = lr->line;
		return NULL;
	}
	n = strlen(r);
	/* inih reads into a fixed buffer and would take the rest of a longer
	 * line for a line of its own: a cut value, or the tail parsed as a key.
	 * Stop at such a line instead. */
	if (n > 0 && n == (size_t)num - 1 && r[n - 1] != '\n') {
		ch = getc(lr->f);
		if (ch != '\n' && ch != EOF) {
			lr->too_long = lr->line;
			return NULL;
		}
	}
	return r;
}

static int handler_compat(void *user, const char *section, const char *name, const char *value)
{
	struct line_reader *lr = user;
	return conf_line(lr->ctx, section, name, value, lr->line);
}

static int config_load_file(struct crisp_config *cfg, const char *path, struct crisp_error *err)
{
	struct parse_ctx ctx = { .cfg = cfg, .err = err };
	struct line_reader lr = { .ctx = &ctx };
	int r;

	lr.f = fopen(path, "re");
	if (!lr.f)
		return err_set_errno(err, CRISP_E_INVALID, errno, "%s", path);
	r = ini_parse_stream(reader, &lr, handler_compat, &lr);
	fclose(lr.f);
	if (ctx.failed)
		return err_prefix(err, "%s:%d", path, ctx.line);
	if (lr.indented)
		return err_set(err, CRISP_E_INVALID,
			       "%s:%d: indented line (continuation lines are not supported)", path,
			       lr.indented);
	if (lr.too_long)
		return err_set(err, CRISP_E_INVALID, "%s:%d: line too long", path, lr.too_long);
	if (r != 0)
		return err_set(err, CRISP_E_INVALID, "%s:%d: syntax error", path, r > 0 ? r : 0);
	return 0;
}

static int conf_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

int config_load(struct crisp_config *cfg, const char *main_path, bool required,
		const char *dropin_dir, struct crisp_error *err)
{
	struct dirent **names = NULL;
	int n, r = 0;

	if (main_path) {
		if (access(main_path, F_OK) == 0 || required) {
			if (config_load_file(cfg, main_path, err) < 0)
				return -1;
		}
	}
	if (!dropin_dir)
		return 0;
	n = scandir(dropin_dir, &names, conf_filter, alphasort);
	if (n < 0)
		return errno == ENOENT
			       ? 0
			       : err_set_errno(err, CRISP_E_INVALID, errno, "%s", dropin_dir);
	for (int i = 0; i < n; i++) {
		if (r == 0) {
			_cleanup_free_ char *p = xasprintf("%s/%s", dropin_dir, names[i]->d_name);
			r = config_load_file(cfg, p, err);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

void config_print(const struct crisp_config *cfg, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		_cleanup_free_ char *v = config_get(cfg, k);
		if (!streq(section, k->section)) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(out, "# %s\n%s = %s\n", k->doc, k->name, v);
	}
	for (size_t i = 0; i < cfg->n_registries; i++) {
		const struct registry_conf *r = &cfg->registries[i];
		fprintf(out,
			"\n[registry \"%s\"]\nmirrors = %s\nplain_http = %s\n"
			"insecure_skip_verify = %s\nca_file = %s\n",
			r->host, r->mirrors ? r->mirrors : "", r->plain_http ? "true" : "false",
			r->insecure_skip_verify ? "true" : "false", r->ca_file ? r->ca_file : "");
	}
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++)
		fprintf(out, "\n[runtime_handler \"%s\"]\npath = %s\n",
			cfg->runtime_handlers[i].name, cfg->runtime_handlers[i].path);
}

bool config_restrict_oom(const struct crisp_config *cfg)
{
	if (cfg->restrict_oom_score_adj != TRI_AUTO)
		return cfg->restrict_oom_score_adj == TRI_ON;
	return prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) != 1;
}

/* 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104; false for anything else,
 * an address that does not parse among them (the streaming server says
 * why it does not start). */
static bool address_is_loopback(const char *a)
{
	struct in6_addr in6;
	struct in_addr in;

	if (inet_pton(AF_INET, a, &in) == 1)
		return (ntohl(in.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, a, &in6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&in6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127;
}

int config_validate(const struct crisp_config *cfg, struct crisp_error *err)
{
	/* A streaming URL is the only credential of its stream: off loopback
	 * and without TLS, it and the stream would cross the network in
	 * clear. The kubelet relays streams from the node, so loopback is
	 * what it needs; anything else is asked for by name. */
	if (!*cfg->stream_tls_cert && !address_is_loopback(cfg->stream_address) &&
	    !cfg->stream_allow_insecure_address)
		return err_set(err, CRISP_E_INVALID,
			       "streaming.address %s is not a loopback address and "
			       "streaming.tls_cert is not set: the streaming URLs and streams "
			       "would cross the network in clear; set streaming.tls_cert and "
			       "tls_key, or streaming.allow_insecure_address = true",
			       cfg->stream_address);
	return 0;
}
