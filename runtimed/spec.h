/* OCI runtime spec generation (runtime-spec config.md, version 1.0.2, what
 * runc 1.1 reads): the sandbox's pause container and every container, from
 * the CRI request, the image's config and what runtimed prepared (rootfs,
 * namespaces, pod files). Pure: no side effects, so golden tests can run it
 * with a request in and config.json out (tests/unit/test-spec). What needs
 * the host (device numbers, the host's /dev, Localhost seccomp profiles)
 * comes through the callbacks of struct spec_ops, which the caller runs
 * with its own confinement. */
#ifndef CRISP_RUNTIMED_SPEC_H
#define CRISP_RUNTIMED_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "ipc/ipc.pb-c.h"

/* A device node on the host, as spec generation needs it. */
struct spec_device {
	char *path; /* host_devices only: the node's path, e.g. "/dev/sda" */
	char type;  /* 'c' or 'b' */
	uint32_t major, minor;
	uint32_t file_mode; /* permission bits of the node (st_mode & 07777) */
	uint32_t uid, gid;
};

/* Frees an array host_devices returned (each path, then the array). */
void spec_devices_free(struct spec_device *devices, size_t n);

/* The side effects spec generation needs, run by the caller. Each returns 0,
 * or -1 with err set (CRISP_E_NOT_FOUND for a missing path, ...). Any may
 * be NULL: a request that needs it then fails with CRISP_E_UNIMPLEMENTED. */
struct spec_ops {
	/* stat(2) host_path (absolute, no ".."), which must be a character
	 * or block device: fill ret (ret->path stays NULL). */
	int (*device)(void *ctx, const char *host_path, struct spec_device *ret,
		      struct crisp_error *err);
	/* Every device node under the host's /dev that a privileged container
	 * gets (containerd leaves out /dev/pts, /dev/shm, /dev/mqueue and
	 * /dev/console). The array and each path are malloc'd; spec generation
	 * frees them with spec_devices_free. */
	int (*host_devices)(void *ctx, struct spec_device **ret, size_t *ret_n,
			    struct crisp_error *err);
	/* The contents of the regular file at relpath under the directory
	 * root (seccomp_root; relpath has no ".." and does not start with
	 * '/'), NUL-terminated and malloc'd, at most max bytes (larger:
	 * CRISP_E_INVALID). Open it with openat2(RESOLVE_BENEATH) from root so
	 * a symlink cannot lead elsewhere. */
	int (*read_file)(void *ctx, const char *root, const char *relpath, size_t max, char **ret,
			 struct crisp_error *err);
};

/* What the host offers, found once at runtimed start. */
struct spec_host {
	bool cgroup_v2;           /* unified hierarchy only */
	bool systemd_cgroup;      /* runtime.cgroup_driver = systemd */
	bool apparmor;            /* AppArmor enabled in the kernel */
	bool selinux;             /* SELinux enabled (selinuxfs has an enforce file) */
	bool rro_mounts;          /* recursive read-only mounts (kernel >= 5.12) */
	int oom_score_adj_min;    /* clamp (restrict_oom_score_adj); INT32_MIN: none */
	uint64_t cap_bounding;    /* capabilities the host lets us grant */
	const char *seccomp_root; /* Localhost profiles resolve under it */
	/* Additions (spec generation reads them; zero values are safe): */
	bool swap_accounting;         /* memory.memsw.* (v1) or memory.swap.max (v2) exist */
	const char *apparmor_default; /* loaded profile for RuntimeDefault; NULL: none */
	const char *node_hostname;    /* HOSTNAME for host-network pods; NULL: unset */
	uint64_t rlimit_nofile;       /* containers' RLIMIT_NOFILE (soft = hard); 0: inherit */
	const char *arch;             /* "x86_64", "aarch64"; NULL: this build's */
	/* Pods may run in a user namespace of their own (mode POD): netd
	 * makes it with the pod's netns inside it, the pause and containers
	 * join both pins. runtimed leaves it false (pod.c, USERNS_ENABLED)
	 * until containers' root filesystems and volumes are idmapped, so
	 * such pods are refused (docs/PRIVSEP.md, "Known gaps" 18). */
	bool user_namespaces;
	const struct spec_ops *ops;
	void *ops_ctx;
};

/* A user resolved from the image's /etc/passwd and /etc/group: the caller
 * reads those files inside the rootfs (openat2 RESOLVE_IN_ROOT) and passes
 * their contents; NULL when the image has none. */
struct spec_image_files {
	const char *passwd;
	const char *group;
};

struct spec_pod {
	const Runtime__V1__PodSandboxConfig *config;
	const char *sandbox_id;
	pid_t pause_pid;        /* namespaces are joined via /proc/<pid>/ns/<ns> */
	const char *netns_path; /* "" or NULL: host network */
	/* The pod's user namespace, netd's pin <state_dir>/userns/<id>: every
	 * namespace of the pod is joined through it (never /proc/<pause>/ns/
	 * user, which a dead pause would take along). "" or NULL: none. */
	const char *userns_path;
	const char *hostname_path, *hosts_path, *resolv_path, *shm_path; /* pod files */
	const char *cgroup_parent; /* from config->linux->cgroup_parent, or the default */
};

/* The pause container's spec: rootfs read-only at `rootfs`, args
 * ["/pause"], the pod's namespaces (new ipc, uts and pid unless the pod
 * uses the host's; network at netns_path), the pod's cgroup and sysctls,
 * no capabilities, user 65535 unless the sandbox's security context names
 * one, seccomp RuntimeDefault unless it names another profile. */
json_t *spec_sandbox(const struct spec_host *host, const struct spec_pod *pod, const char *rootfs,
		     struct crisp_error *err);

struct spec_container {
	const char *container_id;
	const Runtime__V1__ContainerConfig *config;
	const CrispIpc__ImageRunConfig *image;
	struct spec_image_files files;
	const char *rootfs; /* the mounted overlay, bundle/rootfs */
	/* pid namespace TARGET: the target container's init pid. */
	pid_t target_pid;
	/* Addition: the image's name for the image-name annotation; NULL:
	 * config->image->image. */
	const char *image_name;
};

/* A container's spec. Errors (CRISP_E_INVALID) name the field: an unknown
 * run_as_username, a relative mount path, an unknown capability, a
 * Localhost seccomp profile outside seccomp_root, ... */
json_t *spec_container(const struct spec_host *host, const struct spec_pod *pod,
		       const struct spec_container *c, struct crisp_error *err);

/* A container's linux.resources for runc, checked and defaulted exactly as
 * spec_container does at create: UpdateContainerResources builds runc's
 * --resources from it so an update is accepted and applied as a create
 * would be (swap defaults to the memory limit where swap is accounted, so
 * a container does not swap unless asked). A zero field means "not set"
 * and is left out. ret_oom_score_adj (may be NULL) gets oom_score_adj
 * clamped by restrict_oom_score_adj as process.oomScoreAdj would hold it.
 * Errors (CRISP_E_INVALID) read "<what>: linux.resources.<field> ...". */
json_t *spec_resources(const struct spec_host *host, const char *what,
		       const Runtime__V1__LinuxContainerResources *r, int *ret_oom_score_adj,
		       struct crisp_error *err);

/* The identities of process.user in a spec spec_container made (uid, gid,
 * additionalGids), as the CRI's ContainerStatus.user reports them: what
 * the container's first process starts with, read back from the spec as
 * containerd does. malloc'd, for protobuf_c_message_free_unpacked; NULL
 * when the spec has no well-formed process.user. */
Runtime__V1__ContainerUser *spec_process_user(const json_t *spec);

/* The container's cgroupsPath for runc: "/<parent>/<prefix>-<id>" style for
 * cgroupfs, "<slice>:crisp:<id>" for systemd (a cgroupfs-style parent is
 * converted to its slice name as kubelet does). NULL when parent or id is
 * not acceptable ("..", control characters, too long). */
char *spec_cgroups_path(const struct spec_host *host, const char *parent, const char *id);

/* A signal name or number as an image's StopSignal gives it ("SIGTERM",
 * "TERM", "15", "SIGRTMIN+3"); -1 when unknown. */
int spec_signal_parse(const char *s);

/* Checks a pod's or container's NamespaceOption.userns_options as the
 * kubelet sends them (KEP-127): none or mode NODE (the host's user
 * namespace, no mappings) pass; mode POD needs exactly one uid and one gid
 * mapping, each with container id 0 mapped, a length above 0, no id past
 * 4294967294 and not the host's 0, and none of the host's network, pid or
 * ipc namespaces; it then passes only when supported (spec_host's
 * user_namespaces), else is refused UNIMPLEMENTED. CONTAINER, TARGET and
 * unknown modes are INVALID. field names the message's place in errors. */
int spec_userns_check(const char *field, const Runtime__V1__NamespaceOption *o, bool supported,
		      struct crisp_error *err);

/* Checks what of a sandbox config spec generation does not otherwise read
 * at RunPodSandbox, so nothing is silently left out: namespace_options
 * network and ipc POD or NODE, pid POD, CONTAINER (a pid namespace of the
 * pause's own) or NODE, else CRISP_E_INVALID; selinux_options
 * (CRISP_E_UNIMPLEMENTED where SELinux is enabled); linux.resources and
 * linux.overhead under CreateContainer's rules for LinuxContainerResources
 * (CRISP_E_INVALID). spec_sandbox checks it too. */
int spec_sandbox_check(const struct spec_host *host, const Runtime__V1__PodSandboxConfig *c,
		       struct crisp_error *err);

/* The signal number of a CRI Signal (ContainerConfig.stop_signal): 0 for
 * SIGNAL_RUNTIME_DEFAULT, -1 for a value outside the enum. */
int spec_stop_signal(Runtime__V1__Signal s);

/* The first CRI Signal whose number is sig (SIGCHLD is SIGNAL_SIGCHLD, not
 * SIGCLD), or SIGNAL_RUNTIME_DEFAULT when the enum has none. */
Runtime__V1__Signal spec_signal_enum(int sig);

/* runtimed/seccomp_default.c: the built-in RuntimeDefault profile as an OCI
 * linux.seccomp object for a process whose bounding set is `caps` (bit n =
 * capability n), on `arch` (as struct spec_host's; NULL: this build's).
 * Unknown arch: no architectures list and no arch-only syscalls. */
json_t *spec_seccomp_default(uint64_t caps, const char *arch);

#endif
