/* What netd's launcher agrees to run (launch/policy.h): a CNI plugin, by
 * its plain file name in the bin directories, with exactly the CNI
 * environment netd builds (netd/cni.c). It runs in crisp-launch, which keeps
 * root and has no seccomp filter: this is the whole policy for what a
 * compromised netd could make it execute. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "launch/policy.h"

/* CNI_ARGS as netd builds it: KEY=value pairs joined by ';', both made of
 * [A-Za-z0-9._-] (values may be empty). */
static bool cni_args_valid(const char *s)
{
	const char *p = s;

	if (strlen(s) > 2048)
		return false;
	while (*p) {
		size_t k = strspn(
			p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
		size_t v;

		if (k == 0 || p[k] != '=')
			return false;
		p += k + 1;
		v = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
		p += v;
		if (*p == ';' && p[1])
			p++;
		else if (*p)
			return false;
	}
	return true;
}

/* <netns dir>/<id>: the pod's own pin, made by netd. */
static bool netns_ok(const char *ns, const char *id)
{
	size_t dl = strlen(launch_policy.netns_dir);

	return strncmp(ns, launch_policy.netns_dir, dl) == 0 && ns[dl] == '/' &&
	       streq(ns + dl + 1, id);
}

/* The launcher runs this (in its own process, unfiltered and root) before it
 * starts a plugin: whatever the request says, a plugin gets exactly the CNI
 * environment, with values of the shapes netd produces. */
int cni_launch_check(const char *file, char *const argv[], char *const envp[], char *why,
		     size_t whylen)
{
	static const char *const keys[] = { "CNI_COMMAND=", "CNI_CONTAINERID=", "CNI_NETNS=",
					    "CNI_IFNAME=",  "CNI_PATH=",        "CNI_ARGS=",
					    "PATH=" };
	const char *val[ARRAY_SIZE(keys)] = { NULL };
	const char *cmd, *id, *ns;
	size_t n;

	if (!file || !*file || strchr(file, '/') || file[0] == '.')
		return snprintf(why, whylen, "cni: bad plugin name"), -1;
	if (!argv || !argv[0] || !streq(argv[0], file) || argv[1])
		return snprintf(why, whylen, "cni: argv must be exactly the plugin name"), -1;
	for (n = 0; envp && envp[n]; n++) {
		size_t k;

		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (!strncmp(envp[n], keys[k], strlen(keys[k])))
				break;
		if (k == ARRAY_SIZE(keys) || val[k])
			return snprintf(why, whylen, "cni: unexpected or repeated variable '%.40s'",
					envp[n]),
			       -1;
		val[k] = envp[n] + strlen(keys[k]);
	}
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		if (!val[k])
			return snprintf(why, whylen, "cni: %smissing", keys[k]), -1;
	cmd = val[0];
	id = val[1];
	ns = val[2];
	if (!streq(cmd, "ADD") && !streq(cmd, "DEL") && !streq(cmd, "CHECK") &&
	    !streq(cmd, "VERSION"))
		return snprintf(why, whylen, "cni: CNI_COMMAND '%.16s' refused", cmd), -1;
	if (!id_hex_valid(id))
		return snprintf(why, whylen, "cni: CNI_CONTAINERID is not 64 hex"), -1;
	/* the pod's own pin; DEL may run without one (the netns is gone) */
	if (!(streq(cmd, "DEL") && !*ns) && !netns_ok(ns, id))
		return snprintf(why, whylen, "cni: CNI_NETNS is not the pod's netns"), -1;
	if (!streq(val[3], LAUNCH_CNI_IFNAME))
		return snprintf(why, whylen, "cni: CNI_IFNAME must be %s", LAUNCH_CNI_IFNAME), -1;
	if (!streq(val[4], launch_policy.cni_path))
		return snprintf(why, whylen, "cni: CNI_PATH is not cni.bin_dirs"), -1;
	if (!cni_args_valid(val[5]))
		return snprintf(why, whylen, "cni: CNI_ARGS has unsafe characters"), -1;
	if (!streq(val[6], &LAUNCH_PATH_ENV[sizeof("PATH=") - 1]))
		return snprintf(why, whylen, "cni: PATH is not the fixed one"), -1;
	return 0;
}
