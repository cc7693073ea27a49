/* What crisp-launch agrees to run for each helper: the check functions of
 * its tables (launch/check_netd.c, launch/check_runtimed.c) and the values
 * they compare requests against. They run only in crisp-launch, root and
 * unfiltered, and are the whole policy for what a compromised netd or
 * runtimed could make it execute (docs/PRIVSEP.md, "What the check functions
 * accept"). The values come from crisp-launch's command line (launch/main.c),
 * given by the helper when it starts it, and never change after. */
#ifndef CRISP_LAUNCH_POLICY_H
#define CRISP_LAUNCH_POLICY_H

#include <stddef.h>

#include "common/id.h"

/* The one environment variable runtimed's programs get, and the PATH a CNI
 * plugin gets: fixed, so that no request can choose where a program's own
 * lookups go. */
#define LAUNCH_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* The interface CNI plugins create in the pod's netns. */
#define LAUNCH_CNI_IFNAME "eth0"

struct launch_policy {
	/* both helpers: <state_dir>/netns, where netd pins the pods' netns */
	const char *netns_dir;
	/* netd's: cni.bin_dirs as at netd's start, the only CNI_PATH */
	const char *cni_path;
	/* runtimed's */
	const char *runc_root;    /* <state_dir>/runtimed/runc: every runc's --root */
	const char *bundles;      /* <state_dir>/runtimed/bundles */
	const char *exits_dir;    /* <root_dir>/runtimed/exits */
	const char *pause_rootfs; /* <state_dir>/runtimed/pause/rootfs */
	const char *userns_dir;   /* <state_dir>/userns, where netd pins user namespaces */
	const char *cgroup_root;  /* /sys/fs/cgroup */
	/* the runtime handlers' paths: a monitor's --runtime must be one */
	const char *const *handler_paths;
	size_t nhandlers;
};

/* Filled once, before the table is served; read by the checks. */
extern struct launch_policy launch_policy;

/* netd's table: "cni", a directory list. */
int cni_launch_check(const char *file, char *const argv[], char *const envp[], char *why,
		     size_t whylen);

/* runtimed's table: each runtime handler, "monitor", "pause", "exec". */
int check_runc(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen);
int check_monitor(const char *file, char *const argv[], char *const envp[], char *why,
		  size_t whylen);
int check_pause(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen);
int check_exec(const char *file, char *const argv[], char *const envp[], char *why, size_t whylen);

#endif
