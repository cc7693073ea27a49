/* runtimed's shared state: the records of sandboxes and containers (kept in
 * memory, durable in SQLite), the paths it owns, and the subsystems that act
 * on them. One event loop; nothing here blocks it: runc and the monitors run
 * through the launcher (common/launcher.h), exits arrive as files watched
 * with inotify. */
#ifndef CRISP_RUNTIMED_RUNTIMED_H
#define CRISP_RUNTIMED_RUNTIMED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/error.h"
#include "ipc/child.h"
#include "runtimed/spec.h"

#define ID_LEN 64
#define RT_NAME_MAX 1024             /* of a k8s_... name */
#define RT_META_MAX 253              /* name, namespace, uid of metadata */
#define RT_POD_FILE_MAX 65536        /* host /etc/hosts, resolv.conf copied into a pod */
#define RT_IMAGE_FILE_MAX (4u << 20) /* an image's /etc/passwd or /etc/group */
#define RT_EXIT_FILE_MAX 4096
#define RT_STOP_KILL_WAIT_MS 10000 /* after SIGKILL, how long an exit may take */

/* A runtime handler: the default one (runtime.default_runtime found in PATH)
 * and each [runtime_handler "NAME"] section. The name is also the launcher's
 * program name for it. */
struct rt_handler {
	char *name;
	char *path;
	bool rro_mounts; /* its `features` lists "rro" (asked at start) */
};

struct pod;
struct ctr;
struct event;

/* Something waiting for a process (a container's init, a sandbox's pause)
 * to have exited: called once, exited true when its exit was recorded, false
 * when the wait was cancelled (the record went away). */
struct exit_wait {
	struct exit_wait *next;
	void (*fn)(bool exited, void *arg);
	void *arg;
};

struct pod {
	struct pod *next;
	char id[ID_LEN + 1];
	char *name;
	CrispIpc__SandboxInfo *info; /* the record; ready_to_start = "creating" */
	uint64_t pid_start;          /* /proc/<pid>/stat starttime of pause */
	int busy;                    /* start/stop/remove in flight */
	struct exit_wait *waits;
	/* A pause started by crisp-pause itself (no runc, no monitor): the
	 * pod dir holds PAUSE_DIRECT_MARK, and while it lives a pidfd of it is
	 * watched on the loop (pod.c). */
	bool direct;
	int pidfd;            /* valid only while pid_ev is set */
	struct event *pid_ev; /* readable: pause died */
};

struct ctr {
	struct ctr *next;
	char id[ID_LEN + 1];
	char *name;
	CrispIpc__ContainerInfo *info; /* the record */
	CrispIpc__SnapshotMount *rootfs;
	uint64_t pid_start;
	int stop_signal;
	int busy;
	struct exit_wait *waits;
};

struct runtimed {
	struct crisp_config *cfg;
	char *home;      /* <root_dir>/runtimed: state.db, exits/ */
	char *exits_dir; /* <root_dir>/runtimed/exits */
	char *vol;       /* <state_dir>/runtimed */
	char *runc_root; /* <vol>/runc */
	char *bundles;   /* <vol>/bundles */
	char *pods_dir;  /* <vol>/pods */
	char *pause_rootfs;
	char *snapshots;             /* <root_dir>/imaged/snapshots: container rootfs layers */
	char *netns_dir;             /* <state_dir>/netns */
	struct rt_handler *handlers; /* [0] is the default */
	size_t nhandlers;
	char *monitor_path;
	char *pause_path; /* <helper_dir>/crisp-pause, the launcher's "pause" */
	char *exec_path;  /* <helper_dir>/crisp-exec, the launcher's "exec" */
	struct spec_host host;
	struct pod *pods;
	struct ctr *ctrs;
	bool runtime_ready;
};

extern struct runtimed rt;

/* runtimed.c */
const struct rt_handler *handler_find(const char *name);
const struct rt_handler *handler_by_path(const char *path);
bool id_valid(const char *id);
int64_t now_ns(void);
char *bundle_path(const char *id, const char *file);
struct pod *pod_find(const char *id);
struct ctr *ctr_find(const char *id);
void exit_waits_fire(struct exit_wait **head, bool exited);
void exit_wait_add(struct exit_wait **head, void (*fn)(bool, void *), void *arg);
/* Remove every file and directory under path, then path (no symlink followed);
 * returns 0 or -errno. Mount points are not crossed: unmount first. */
int rm_rf(const char *path);
/* What a removal could not clean up: a directory (rm_rf, after detaching
 * mnt when given) or a cgroup (cgroup_remove below CGROUP_ROOT). owner is
 * the id of the pod or container whose removal left it; while a record of
 * that id exists again, it is not touched. Tried again later, with
 * backoff, until it goes (runtimed.c). */
enum cleanup_kind {
	CLEANUP_PATH,
	CLEANUP_CGROUP,
};
void cleanup_retry_add(enum cleanup_kind kind, const char *owner, const char *target,
		       const char *mnt);
/* /proc/<pid>/stat's starttime, 0 if the process does not exist. */
uint64_t proc_starttime(pid_t pid);
/* pid exists, is not a zombie and (starttime not 0) started at starttime. */
bool proc_alive(pid_t pid, uint64_t starttime);
/* Write a whole file atomically (temp file, rename), not durably: runtimed
 * writes files under <state_dir> only, which does not outlive the boot. */
int write_file(const char *path, const char *data, size_t len, unsigned mode,
	       struct crisp_error *err);
/* Read a whole small file, at most max bytes (more is an error); NUL-terminated. */
char *read_file(const char *path, size_t max, size_t *ret_len, struct crisp_error *err);
/* Replace a string field of a record (which may be protobuf-c's static ""). */
void str_set(char **field, const char *v);
/* A protobuf copy, for records that outlive the request. */
void *msg_dup(const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *m);

/* state.c: the durable records (SQLite, WAL, synchronous FULL). */
int state_open(const char *path, struct crisp_error *err);
int state_pod_insert(struct pod *p, struct crisp_error *err);
int state_pod_save(struct pod *p, struct crisp_error *err);
int state_pod_delete(const char *id, struct crisp_error *err);
int state_ctr_insert(struct ctr *c, struct crisp_error *err);
int state_ctr_save(struct ctr *c, struct crisp_error *err);
int state_ctr_delete(const char *id, struct crisp_error *err);
int state_load(struct crisp_error *err);
void pod_free(struct pod *p);
void ctr_free(struct ctr *c);

/* runc.c: the OCI runtime and the monitors, through the launcher. */
typedef void (*runc_done_fn)(int status, const char *errout, void *arg);
/* Run `<handler> --root <runc_root> args...`; done (may be NULL) gets the
 * wait status (-1 when it could not run) and what it wrote on stderr
 * (bounded). */
int runc_run(const struct rt_handler *h, const char *const *args, runc_done_fn done, void *arg,
	     struct crisp_error *err);
/* Ask the handler's runtime what it supports (`features`), in the
 * background; h->rro_mounts is set when it answers. */
void runc_probe_features(struct rt_handler *h);
/* runc's root (state_dir) has next to no room or inodes left: the likely
 * cause of a failure whose message does not say (runc.c). */
bool runc_root_full(void);
typedef void (*monitor_done_fn)(pid_t pid, const struct crisp_error *err, void *arg);
/* Start a detached monitor that creates the container of bundle `id`;
 * done gets the container's init pid from its sync line, or an error. */
int monitor_launch(const struct rt_handler *h, const char *id, const char *log_path, bool stdin_,
		   bool stdin_once, bool tty, monitor_done_fn done, void *arg,
		   struct crisp_error *err);
typedef void (*pause_done_fn)(pid_t pid, uint64_t start, const struct crisp_error *err, void *arg);
/* Start crisp-pause's setup mode detached (argv from pod.c, argv[0]
 * "pause"); done gets the pause's host pid and /proc starttime from its
 * sync line, or an error. */
int pause_launch(const char *id, const char *const *argv, pause_done_fn done, void *arg,
		 struct crisp_error *err);

/* The whole environment of what runtimed launches: the one PATH that
 * crisp-launch's checks (launch/check_runtimed.c) require. */
extern const char *const launch_env[];

/* exits.c: exit files written by the monitors, each in a directory of its
 * id's: <exits>/<id>/exit.json (the flat <exits>/<id>.json of monitors of
 * an older crisp is read too). */
int exits_watch(struct crisp_error *err);
/* Process the exit file of id if present (<exits>/<id>/exit.json, else the
 * flat <exits>/<id>.json): 1 done, 0 absent. */
int exits_check(const char *id);
char *exit_dir_path(const char *id);
char *exit_file_path(const char *id);
/* Make <exits>/<id>/ (0700; there already is fine) and watch it, before
 * the id's monitor is launched. */
int exit_dir_make(const char *id, struct crisp_error *err);
/* Watch <exits>/<id>/ if it exists (recovery). */
void exit_dir_watch(const char *id);
/* Remove <exits>/<id>/ with what is in it, its watch, and a flat
 * <exits>/<id>.json: with the id's record. */
void exit_dir_remove(const char *id);

/* events.c */
void event_emit(const char *id, const char *sandbox_id, Runtime__V1__ContainerEventType type);
void on_events_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
/* A pod or container record changed in what a list shows (it was added,
 * saved, removed, or became visible): the frontend's parked ListWait is
 * answered now, so that its answer goes out before any reply that follows
 * the change. Call it before replying to the request that made the change. */
void list_changed(void);
void on_list_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);

/* pod.c */
void on_sandbox_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
		       void *arg);
void on_sandbox_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_sandbox_stop(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_sandbox_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
		       void *arg);
void on_sandbox_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_sandbox_update(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
		       void *arg);
void pod_exited(struct pod *p, const char *why);
void pod_recover(struct pod *p);
/* Stop watching a direct pause's pidfd (closes it); for pod_free. */
void pod_unwatch(struct pod *p);
char *pod_dir(const char *id, const char *file);
/* The pod's cgroup when its config names no cgroup_parent (cgroupfs driver):
 * "crisp/pod-<id>", removed with the pod; NULL for systemd. */
char *pod_default_cgroup(const char *id);
/* The pod's part of a spec; paths receives strings the caller frees. */
#define POD_SPEC_PATHS 5
void pod_spec_fill(struct pod *p, struct spec_pod *sp, char **paths);
int write_spec(const char *id, json_t *spec, struct crisp_error *err);

/* container.c */
void on_container_create(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg);
void on_container_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			void *arg);
void on_container_stop(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
		       void *arg);
void on_container_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg);
void on_container_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
		       void *arg);
/* Records the exit (once); -1 when the record could not be saved: it is
 * EXITED in memory only. */
int ctr_exited(struct ctr *c, int exit_code, int64_t finished_at, const char *reason,
	       const char *message);
void ctr_recover(struct ctr *c);
/* Kill (SIGKILL at once when timeout_s is 0, else sig then SIGKILL after
 * timeout_s) and call fn once the exit is recorded. */
void ctr_stop(struct ctr *c, int sig, int64_t timeout_s, void (*fn)(bool, void *), void *arg);
/* Delete everything of a container (runc state, mount, bundle, exit file,
 * record); it must have exited. fn(0 or -1, err). */
void ctr_destroy(struct ctr *c, void (*fn)(int r, const struct crisp_error *err, void *arg),
		 void *arg);
/* Same for a pod's pause container: runc delete, bundle, exit file. */
void pod_stop(struct pod *p, void (*fn)(bool, void *), void *arg);

/* ops.c: ExecSync, update, log reopen. */
void on_exec_sync(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_exec_cancel(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
/* Kill the commands of the ExecSyncs whose frontend channel is gone. */
void exec_orphans_cancel(void);
/* 0 when one more exec (streaming or ExecSync) may run on this node, else
 * -1 with CRISP_E_RESOURCE: each running exec holds one of the launcher's
 * slots, and RT_EXECS_MAX (ops.c) of them are all execs may take. */
int execs_admit(struct crisp_error *err);
void on_container_update(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			 void *arg);
/* Send request ("attach") to container c's monitor and answer msg
 * (deferred) when it says "ok": Empty, or with the connection itself when
 * hand_over. -1 with err (code) when the monitor cannot be reached; the
 * caller replies then. */
int monitor_request(struct ipc_msg *msg, const struct ctr *c, const char *request,
		    unsigned timeout_s, bool hand_over, enum crisp_errcode code,
		    struct crisp_error *err);
void on_log_reopen(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
/* Whether an exec into c runs crisp-exec (runtimed/exec.h) rather than the
 * handler's `runc exec`: without a tty, the default handler with the
 * cgroupfs driver, as for the pause without runc. */
bool exec_direct(const struct ctr *c, const struct rt_handler *h, bool tty);
/* What the launcher runs for an exec into c with the given process and pid
 * files: crisp-exec when exec_direct(), else the handler's `runc exec`. */
struct exec_cmd {
	const char *program; /* the launcher's program name */
	const char *argv[14];
	char bundle[4096], init_pid[24], init_start[24];
};
void exec_cmd(const struct ctr *c, const struct rt_handler *h, bool tty, const char *process_path,
	      const char *pid_path, struct exec_cmd *cmd);
/* Write the process file of an exec into container id's bundle: the
 * container's own process settings with args replaced, with a terminal or
 * without. */
int exec_process(const char *id, const CrispIpc__ExecSyncRequest *r, bool terminal,
		 const char *path, struct crisp_error *err);

/* stats.c: stats of containers and pods (cgroups, writable layers, open
 * fds, a pod's netns). */
void on_stats(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);

/* stream.c: exec and attach for the streaming server. */
void on_exec_start(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_exec_wait(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
void on_attach(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
/* Streaming execs handed to the launcher and not yet exited. */
unsigned stream_execs_running(void);

/* host.c: what the host offers spec generation (rt.host), found at start
 * before the privilege drop, and the callbacks spec generation runs. */
void host_detect(struct crisp_config *cfg);

/* sandbox.c: capabilities and seccomp policy; fatal on failure. */
void runtimed_sandbox(const struct crisp_config *cfg);

/* pod.c: a pod's user namespace (hostUsers: false, mode POD). netd makes it
 * with the pod's netns and pins it at <state_dir>/userns/<sandbox_id>
 * (docs/PRIVSEP.md, "Known gaps" 18); everything of runtimed that acts in
 * it opens that pin. pod_has_userns: the pod's config asks for one.
 * pod_userns_open: an O_RDONLY|O_CLOEXEC fd of the pin, checked with
 * NS_GET_NSTYPE to be a user namespace, or -1 with err (CRISP_E_NOT_FOUND
 * when there is no pin, CRISP_E_INVALID when it is no user namespace). */
bool pod_has_userns(const struct pod *p);
int pod_userns_open(const char *sandbox_id, struct crisp_error *err);

#endif
