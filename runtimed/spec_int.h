/* What the parts of OCI spec generation share (spec.c, spec_user.c,
 * spec_mounts.c, spec_security.c): the generator's state, the bounds on
 * requests, JSON building and input checks, and each part's entry points.
 * Not for use outside spec generation: spec.h is the interface. */
#ifndef CRISP_RUNTIMED_SPEC_INT_H
#define CRISP_RUNTIMED_SPEC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtimed/spec.h"

#define OCI_VERSION "1.0.2"

/* Bounds on what a request may carry. */
#define SPEC_PATH_MAX 4096
#define SPEC_ID_MAX 128
#define SPEC_NAME_MAX 256
#define SPEC_HOSTNAME_MAX 64                  /* the kernel's HOST_NAME_MAX */
#define SPEC_ARG_MAX (128 * 1024)             /* one argv/env string: MAX_ARG_STRLEN */
#define SPEC_EXEC_TOTAL_MAX (2 * 1024 * 1024) /* all of argv and env, as execve allows */
#define SPEC_EXEC_ITEMS_MAX 65536
#define SPEC_LIST_MAX 1024          /* mounts, devices, caps, masked paths, ... */
#define SPEC_ANNOTATION_KEY_MAX 512 /* a 253-byte DNS prefix, '/', a 63-byte name, with room */
#define SPEC_GROUPS_MAX 65536       /* NGROUPS_MAX */
#define SPEC_ANNOTATIONS_TOTAL_MAX (256 * 1024) /* Kubernetes' own limit */
#define SPEC_FILE_MAX (4 * 1024 * 1024)         /* /etc/passwd, /etc/group, a seccomp profile */
#define SPEC_SECCOMP_RULES_MAX 4096

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ID_MAX UINT32_C(4294967294) /* (uid_t)-1 means "unchanged" to the kernel */
#define PAUSE_ID 65535              /* containerd's pause image runs as 65535:65535 */
#define SANDBOX_OOM_SCORE_ADJ (-998)
#define SANDBOX_CPU_SHARES 2
#define BIT(n) (UINT64_C(1) << (n))

/* The deprecated CRI fields (seccomp_profile_path, apparmor_profile) are
 * still what older kubelets and crictl send. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct gen {
	const struct spec_host *host;
	const struct spec_pod *pod;
	const char *what; /* "container config", "sandbox config": prefixes errors */
	struct crisp_error *err;
	bool bad; /* a JSON value could not be built: reported at the end */
};

struct shown {
	char s[72];
};

#define invalid(g, ...) fail(g, CRISP_E_INVALID, __VA_ARGS__)

enum profile {
	PROFILE_UNSET,
	PROFILE_RUNTIME_DEFAULT,
	PROFILE_UNCONFINED,
	PROFILE_LOCALHOST,
};

struct gids {
	uint32_t *v;
	size_t n;
};

struct mnt {
	char *dst, *src;
	json_t *options;
	size_t depth, order;
};

struct mnts {
	struct mnt *v;
	size_t n;
};

/* spec.c: errors, JSON building, input checks */
struct shown show(const char *s);
int fail(struct gen *g, enum crisp_errcode code, const char *fmt, ...) _printf_(3, 4);
json_t *jstr(struct gen *g, const char *s);
void jset(struct gen *g, json_t *obj, const char *key, json_t *v);
void jpush(struct gen *g, json_t *arr, json_t *v);
json_t *jstrs(struct gen *g, const char *const *v, size_t n);
int check_str(struct gen *g, const char *field, const char *s, size_t max);
int check_name(struct gen *g, const char *field, const char *s, size_t max);
int check_abs_path(struct gen *g, const char *field, const char *s);
char *path_clean(const char *p);
bool path_under(const char *path, const char *root);
char *xstrndup(const char *s, size_t n);
bool int_in(int64_t v, int64_t lo, int64_t hi);

/* spec_user.c: users and groups from the image's passwd and group files */
json_t *user_json(struct gen *g, uint32_t uid, uint32_t gid, struct gids *s);
int supplemental_groups(struct gen *g, const char *field, const int64_t *v, size_t n,
			struct gids *s);
int container_user(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
		   const CrispIpc__ImageRunConfig *img, const struct spec_image_files *files,
		   json_t *process);

/* spec_mounts.c: mounts and devices */
void mnts_free(struct mnts *m);
void mnts_add(struct mnts *m, const char *dst, const char *src, json_t *options);
void mounts_emit(struct gen *g, struct mnts *binds, bool privileged, bool cgroup, json_t *out);
json_t *bind_options(struct gen *g, const char *propagation, const char *rw);
int container_mounts(struct gen *g, const Runtime__V1__ContainerConfig *cfg, bool privileged,
		     bool readonly, bool host_ipc, json_t *spec, json_t *lx);
json_t *default_device_rules_json(struct gen *g, bool privileged);
int container_devices(struct gen *g, const Runtime__V1__ContainerConfig *cfg, bool privileged,
		      json_t *lx, json_t *resources);

/* spec_security.c: capabilities, seccomp, AppArmor, SELinux, masked paths,
 * sysctls */
json_t *caps_json(struct gen *g, uint64_t set, uint64_t ambient);
int container_caps(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
		   bool privileged, json_t *process, uint64_t *ret_bounding);
int seccomp_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
		 const char *legacy, enum profile unset_default, uint64_t caps, json_t *lx);
int apparmor_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
		  const char *legacy, bool privileged, json_t *process);
int selinux_check(struct gen *g, const char *field, const Runtime__V1__SELinuxOption *o);
int masked_paths(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc, json_t *lx);
int sandbox_sysctls(struct gen *g, bool host_net, bool host_ipc, json_t *lx);

#endif
