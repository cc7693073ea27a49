/* OCI runtime spec generation (runtime-spec config.md, version 1.0.2, what
 * runc 1.1 reads): the sandbox's pause container and every container, from
 * the CRI request, the image's config and what runtimed prepared (rootfs,
 * namespaces, pod files). Pure: no side effects, so golden tests can run it
 * with a request in and config.json out (tests/unit/test-spec). */
#ifndef CRISP_RUNTIMED_SPEC_H
#define CRISP_RUNTIMED_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "ipc/ipc.pb-c.h"

/* What the host offers, found once at runtimed start. */
struct spec_host {
	bool cgroup_v2;           /* unified hierarchy only */
	bool systemd_cgroup;      /* runtime.cgroup_driver = systemd */
	bool apparmor;            /* AppArmor enabled in the kernel */
	bool rro_mounts;          /* recursive read-only mounts (kernel >= 5.12) */
	int oom_score_adj_min;    /* clamp (restrict_oom_score_adj); INT32_MIN: none */
	uint64_t cap_bounding;    /* capabilities the host lets us grant */
	const char *seccomp_root; /* Localhost profiles resolve under it */
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
	const char *hostname_path, *hosts_path, *resolv_path, *shm_path; /* pod files */
	const char *cgroup_parent; /* from config->linux->cgroup_parent, or the default */
};

/* The pause container's spec: rootfs read-only at `rootfs`, args
 * ["/pause"], the pod's namespaces (new ipc, uts and, when the pod shares
 * its process namespace, pid; network at netns_path), the pod's cgroup
 * and sysctls, no capabilities but what pause needs (none). */
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
};

/* A container's spec. Errors (CRISP_E_INVALID) name the field: an unknown
 * run_as_username, a relative mount path, an unknown capability, a
 * Localhost seccomp profile outside seccomp_root, ... */
json_t *spec_container(const struct spec_host *host, const struct spec_pod *pod,
		       const struct spec_container *c, struct crisp_error *err);

/* The container's cgroupsPath for runc: "/<parent>/<prefix>-<id>" style for
 * cgroupfs, "<slice>:crisp:<id>" for systemd. */
char *spec_cgroups_path(const struct spec_host *host, const char *parent, const char *id);

/* A signal name or number as an image's StopSignal gives it ("SIGTERM",
 * "TERM", "15", "SIGRTMIN+3"); -1 when unknown. */
int spec_signal_parse(const char *s);

#endif
