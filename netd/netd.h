#ifndef CRISP_NETD_NETD_H
#define CRISP_NETD_NETD_H

#include <event2/event.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "launch/policy.h"

/* netd/sandbox.c: capabilities and seccomp policy; fatal on failure. */
void netd_sandbox(const struct crisp_config *cfg);

/* netd/cni_conf.c: the network configuration netd would use now, chosen as
 * libcni does (.conf, .conflist and .json files of the conf dir in lexical
 * order, the first valid one). */
struct cni_status {
	bool ready;
	char file[256];    /* the chosen file, when ready */
	char network[128]; /* its network name */
	char reason[64];   /* CamelCase, when not ready */
	char message[512];
};
void cni_conf_status(const struct crisp_config *cfg, struct cni_status *st);

/* Load a config file as a network list: a .conflist as is, a single plugin
 * (.conf, .json) wrapped into a list of one, as libcni does. The same checks
 * as cni_conf_status, so a file that became invalid since is refused. */
json_t *cni_conf_load(const struct crisp_config *cfg, const char *path, struct crisp_error *err);

/* Watch the conf dir (and the bin dirs) with inotify and keep *st current;
 * on_change runs on the loop after each recomputation. */
int cni_conf_watch(struct event_base *base, const struct crisp_config *cfg, struct cni_status *st,
		   void (*on_change)(void), struct crisp_error *err);

/* netd/netns.c: pinned network namespaces, <state_dir>/netns/<sandbox id>. */
int netns_dir_init(const char *state_dir, struct crisp_error *err);
/* Blocking (unshare, bind mount, loopback up): run it in a worker thread. */
int netns_create(const char *path, struct crisp_error *err);
/* A pod's user namespace (hostUsers: false): one uid and one gid mapping as
 * /proc/<pid>/uid_map takes a line of it. */
struct idmap {
	uint32_t container_id, host_id, length;
};
/* The CRI's mappings checked as runtimed's spec_userns_check checks them
 * (netd does not trust the frontend): exactly one each, length above 0,
 * no id past 4294967294, container id 0 mapped, the host's 0 not in the
 * host range. which is "uid" or "gid" for the message. */
struct Runtime__V1__IDMapping;
int idmap_from_cri(const char *which, size_t n, struct Runtime__V1__IDMapping *const *maps,
		   struct idmap *ret, struct crisp_error *err);
/* <state_dir>/userns, like the netns dir. */
int userns_dir_init(const char *state_dir, struct crisp_error *err);
/* Blocking, on a worker thread: a child process (fork: only a
 * single-threaded process may unshare its user namespace) makes the user
 * namespace, netd writes its maps, the child makes the netns inside it
 * (loopback up), and netd pins both (userns_path, netns_path) before the
 * child exits. On failure nothing is left: no pin, no child. */
int netns_userns_create(const char *userns_path, const char *netns_path, const struct idmap *uid,
			const struct idmap *gid, struct crisp_error *err);
/* Unmount and unlink; succeeds when already gone. Quick: fine on the loop. */
int netns_remove(const char *path, struct crisp_error *err);
bool netns_exists(const char *path);
/* Blocking (connect with a timeout): run it in a worker thread. */
int netns_connect(const char *path, uint16_t port, unsigned timeout_ms, int *ret_fd,
		  struct crisp_error *err);

/* A job on a fresh thread; done(arg) then runs on the loop. The thread exits
 * after fn, which matters: a thread that entered a namespace never serves
 * anything else. fn must touch nothing the loop owns: only what arg holds
 * for it alone. */
void work_init(struct event_base *base);
/* Refused (RESOURCE) when WORK_MAX are running. */
#define WORK_MAX 64
int work_start(void (*fn)(void *arg), void (*done)(void *arg), void *arg, struct crisp_error *err);
/* Never refused: past WORK_QUEUE_MAX (a budget apart from WORK_MAX) the job
 * waits, and jobs start in the order they were queued. For work that is one
 * step of an operation already under way (the record writes). */
#define WORK_QUEUE_MAX 16
void work_queue(void (*fn)(void *arg), void (*done)(void *arg), void *arg);

/* netd/cni.c: running CNI plugins. */
/* the same values crisp-launch's check compares with (launch/policy.h) */
#define CNI_IFNAME LAUNCH_CNI_IFNAME
#define CNI_PATH_ENV LAUNCH_PATH_ENV
#define CNI_OUTPUT_MAX (1u << 20)

enum cni_op {
	CNI_OP_ADD,
	CNI_OP_DEL,
	CNI_OP_CHECK
};

/* The loop plugin calls run on. What crisp-launch lets netd run is its
 * check, cni_launch_check() (launch/check_netd.c), given cni.bin_dirs and
 * the netns directory on its command line (netd.c, start_launcher). */
void cni_setup(struct event_base *base);

/* What one pod gives the plugins, taken from its PodSandboxConfig. */
struct cni_pod_args {
	char *cni_args; /* "IgnoreUnknown=1;K8S_POD_NAMESPACE=...;..." */
	json_t *caps;   /* capability args: portMappings, bandwidth, dns */
};
struct Runtime__V1__PodSandboxConfig;
int cni_pod_args_build(const char *sandbox_id, const struct Runtime__V1__PodSandboxConfig *c,
		       struct cni_pod_args *ret, struct crisp_error *err);
void cni_pod_args_clear(struct cni_pod_args *a);
/* A Kubernetes quantity ("10M", "1Gi", "500k") as bits per second. */
int cni_bandwidth_parse(const char *quantity, uint64_t *ret_bits, struct crisp_error *err);

/* The pod CIDR rule (crisp-netd(8)): an ipam "subnet" or a range "subnet"
 * that is the string "usePodCidr" becomes the pod CIDR. */
int cni_apply_pod_cidr(json_t *list, const char *pod_cidr, struct crisp_error *err);

/* The stdin of plugin i of list for op. */
json_t *cni_plugin_conf(json_t *list, size_t i, json_t *prev_result, json_t *caps);

/* Convert a result to another cniVersion (0.3.x/0.4.0 <-> 1.x). */
json_t *cni_result_convert(json_t *result, const char *to_version, struct crisp_error *err);

/* The pod's IPs from a result: those of eth0 in the sandbox, the primary (the
 * first of family) first. Returns the count, or -1 with err. */
struct cni_ip {
	char ip[64];
	char iface[32];
};
int cni_result_ips(json_t *result, enum ip_family family, struct cni_ip *ips, size_t max,
		   struct crisp_error *err);

/* Run op over the whole list, asynchronously. */
struct cni_run_params {
	enum cni_op op;
	json_t *list;
	const char *sandbox_id;
	const char *netns; /* "" for a DEL whose netns is gone */
	const char *cni_args;
	json_t *caps;
	json_t *prev_result; /* DEL, CHECK: the stored ADD result (may be NULL) */
	const char *bin_dirs;
	unsigned timeout_s;
};
/* result: the final ADD result (borrowed during the call), NULL otherwise. */
typedef void (*cni_done_fn)(json_t *result, const struct crisp_error *err, void *arg);
int cni_run(const struct cni_run_params *p, cni_done_fn done, void *arg, struct crisp_error *err);

/* netd/cache.c: one durable record per pod network, in netd's directory
 * (networks/<sandbox id>.json). */
enum pod_net_state {
	POD_NET_ADDING,
	POD_NET_ATTACHED,
	POD_NET_DETACHED,
	/* POD_NETNS_CREATE made the netns (or is making it), no ADD ran yet.
	 * ADD moves it to ADDING in memory only: on disk it stays "netns"
	 * until ADD is done, so after a crash it is treated as ADDING. */
	POD_NET_NETNS
};
struct pod_net {
	char id[65];
	enum pod_net_state state;
	char *netns;
	char *userns;                  /* the user namespace pin, NULL without one */
	struct idmap uid_map, gid_map; /* with userns: for the create job only */
	char *network;
	json_t *config; /* the network list exactly as given to the plugins */
	char *cni_args;
	json_t *caps;
	json_t *result;             /* the ADD result, NULL before */
	bool busy;                  /* an operation runs: one at a time per pod */
	struct net_waiter *waiting; /* netd.c: DEL/REMOVE requests queued meanwhile */
	struct pod_net *next;
};
#define CACHE_DIR "networks"
json_t *cache_encode(const struct pod_net *n);
struct pod_net *cache_decode(json_t *j, const char *id, struct crisp_error *err);
/* At start, before any record write: make CACHE_DIR (and sync its entry),
 * or remove the temporary files of writes a crash interrupted. */
void cache_init(void);
/* The writes fsync (the record, then the directory), which can take from
 * milliseconds to seconds under writeback: they run on worker threads
 * (work_queue) and done(err, arg) runs on the loop once the change is on
 * disk (err NULL) or failed (err says what failed; the record on disk is
 * then the previous one, or for a removal possibly still there). done never
 * runs before the call returns. Writes of one pod's record run one at a
 * time in the order they were asked for, whatever their callers do, so a
 * removal never overtakes a store (each uses <id>.json.tmp / <id>.json).
 * cache_store writes n as it is now but with the given state: the caller
 * changes n->state in memory once done says the record holds it, so
 * STATUS and LIST never say attached (or detached) before the disk does. */
typedef void (*cache_done_fn)(const struct crisp_error *err, void *arg);
void cache_store(const struct pod_net *n, enum pod_net_state state, bool with_result,
		 cache_done_fn done, void *arg);
void cache_remove(const char *id, cache_done_fn done, void *arg);
/* Every record in CACHE_DIR; unreadable ones are logged and skipped. */
struct pod_net *cache_load_all(void);
void pod_net_free(struct pod_net *n);

bool sandbox_id_valid(const char *id);

#endif
