/* crisp's configuration: one table of keys (common/config.c) gives each its
 * section, type, default, whether SIGHUP reloads it, and its documentation.
 * crispd parses the files (built-in defaults, then crisp.conf, then
 * crisp.conf.d/\*.conf in lexical order) and hands the effective values to its
 * children over the supervisor channel as key/value strings, which they apply
 * with the same validators. */
#ifndef CRISP_COMMON_CONFIG_H
#define CRISP_COMMON_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

enum ip_family {
	IP_FAMILY_V4 = 0,
	IP_FAMILY_V6 = 1
};

enum cgroup_driver {
	CGROUP_DRIVER_CGROUPFS = 0,
	CGROUP_DRIVER_SYSTEMD = 1
};
/* images.snapshotter: how container snapshots are made. auto: overlayfs
 * when imaged can mount one with userxattr in its root, else copy. */
enum snapshotter {
	SNAPSHOTTER_AUTO = 0,
	SNAPSHOTTER_OVERLAYFS = 1,
	SNAPSHOTTER_COPY = 2
};
enum tristate {
	TRI_AUTO = -1,
	TRI_OFF = 0,
	TRI_ON = 1
};

/* [registry "HOST"]: how imaged reaches one registry host, as it appears
 * in image references ("docker.io", "registry.example:5000"). */
struct registry_conf {
	char *host;
	char *mirrors;             /* comma-separated http(s) URLs, tried first */
	bool plain_http;           /* http instead of https */
	bool insecure_skip_verify; /* https without certificate checks */
	char *ca_file;             /* PEM bundle to trust for this host */
};

#define CONFIG_MAX_REGISTRIES 64

/* [runtime_handler "NAME"]: an OCI runtime a pod's RuntimeClass handler may
 * name, besides the default handler (runtime.default_runtime). */
struct runtime_handler_conf {
	char *name;
	char *path; /* absolute path of the runtime binary */
};

#define CONFIG_MAX_RUNTIME_HANDLERS 16

struct crisp_config {
	/* [crispd] */
	char *socket;         /* CRI listening socket path */
	uint32_t socket_mode; /* permissions of the socket we create */
	char *socket_group;   /* group owning the socket; its members may call */
	char *root_dir;       /* durable state: each helper owns a subdirectory */
	char *state_dir;      /* runtime state (tmpfs): lock, empty chroot, ... */
	char *helper_dir;     /* where crisp-frontend & co. are installed */
	int log_level;
	uint32_t health_interval;     /* seconds between health pings */
	uint32_t restart_backoff_max; /* seconds */
	uint32_t crash_loop_limit;    /* consecutive quick deaths before "crash-looping" */
	/* [frontend] */
	char *frontend_user;
	uint32_t ipc_timeout; /* seconds a frontend waits for a helper's reply */
	/* [images] */
	uint32_t max_concurrent_downloads;
	uint32_t pull_progress_timeout; /* seconds without a byte before a pull fails */
	uint32_t max_layer_entries;
	uint32_t max_layer_size_mb;  /* uncompressed */
	uint32_t max_layer_path_len; /* bytes of a name or link target */
	enum snapshotter snapshotter;
	/* [runtime] */
	enum cgroup_driver cgroup_driver;
	char *default_runtime;
	enum tristate restrict_oom_score_adj;
	uint32_t log_line_max;    /* bytes before a log line is split (P records) */
	uint32_t exec_output_max; /* bytes ExecSync keeps per stream */
	char *seccomp_profile_root;
	char *sandbox_image;      /* "" = crisp's own pause */
	uint32_t runtime_timeout; /* seconds one runtime program call may take */
	/* [streaming] */
	char *stream_address;
	uint32_t stream_port; /* 0: ephemeral */
	uint32_t stream_token_ttl;
	uint32_t stream_idle_timeout;
	char *stream_tls_cert, *stream_tls_key; /* "" = plain HTTP */
	bool stream_allow_insecure_address;     /* plain HTTP off loopback */
	/* [cni] */
	char *cni_conf_dir;
	char *cni_bin_dirs;           /* colon-separated */
	uint32_t cni_plugin_timeout;  /* seconds */
	enum ip_family cni_ip_family; /* whose address is a pod's primary IP */
	/* [registry "HOST"] sections */
	struct registry_conf *registries;
	size_t n_registries;
	/* [runtime_handler "NAME"] sections */
	struct runtime_handler_conf *runtime_handlers;
	size_t n_runtime_handlers;
};

enum config_type {
	CFG_STRING,
	CFG_OPTSTRING, /* may be empty */
	CFG_PATH,
	CFG_PATHLIST,
	CFG_UINT,
	CFG_MODE,
	CFG_LOGLEVEL,
	CFG_CGROUP_DRIVER,
	CFG_TRISTATE,
	CFG_SNAPSHOTTER,
	CFG_IPFAMILY,
	CFG_BOOL
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	const char *def;   /* default, in file syntax */
	size_t offset;     /* into struct crisp_config */
	uint64_t min, max; /* CFG_UINT bounds */
	bool reloadable;   /* SIGHUP applies it without a restart */
	const char *doc;
};

extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* Fill cfg with the built-in defaults. */
void config_init(struct crisp_config *cfg);
void config_free(struct crisp_config *cfg);
/* Load main_path (a missing file is fine unless required) and then every
 * *.conf of dropin_dir (may be NULL) in lexical order. On error, err names the
 * file, the line and the key. */
int config_load(struct crisp_config *cfg, const char *main_path, bool required,
		const char *dropin_dir, struct crisp_error *err);
/* Set one key, given as "section.name", from its string form. */
int config_set(struct crisp_config *cfg, const char *key, const char *value,
	       struct crisp_error *err);
/* The value of a key in file syntax; caller frees. */
char *config_get(const struct crisp_config *cfg, const struct config_key *k);
/* Every key and value of cfg, registry sections included, as config_set
 * takes them ("section.name"); how crispd hands the config over. */
typedef void (*config_item_fn)(const char *key, const char *value, void *arg);
void config_foreach(const struct crisp_config *cfg, config_item_fn fn, void *arg);

/* Print the effective configuration in crisp.conf syntax. */
void config_print(const struct crisp_config *cfg, FILE *out);
/* Resolve the "auto" of restrict_oom_score_adj: on when this process lacks
 * CAP_SYS_RESOURCE in its bounding set (DESIGN.md). */
bool config_restrict_oom(const struct crisp_config *cfg);

/* The rules between keys, once a configuration is read whole (config_load
 * checks each key alone): -1 with err saying which keys and why. */
int config_validate(const struct crisp_config *cfg, struct crisp_error *err);

#endif
