/* OCI spec generation (spec.c), security: capabilities, seccomp (the
 * default profile or a localhost one, converted and checked), AppArmor,
 * masked and read-only paths, and sysctls. */
#include "autoconfig.h"

#include <ctype.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtimed/spec_int.h"

/* ---- capabilities ------------------------------------------------------- */

static const char *const cap_names[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"DAC_READ_SEARCH",
	"FOWNER",
	"FSETID",
	"KILL",
	"SETGID",
	"SETUID",
	"SETPCAP",
	"LINUX_IMMUTABLE",
	"NET_BIND_SERVICE",
	"NET_BROADCAST",
	"NET_ADMIN",
	"NET_RAW",
	"IPC_LOCK",
	"IPC_OWNER",
	"SYS_MODULE",
	"SYS_RAWIO",
	"SYS_CHROOT",
	"SYS_PTRACE",
	"SYS_PACCT",
	"SYS_ADMIN",
	"SYS_BOOT",
	"SYS_NICE",
	"SYS_RESOURCE",
	"SYS_TIME",
	"SYS_TTY_CONFIG",
	"MKNOD",
	"LEASE",
	"AUDIT_WRITE",
	"AUDIT_CONTROL",
	"SETFCAP",
	"MAC_OVERRIDE",
	"MAC_ADMIN",
	"SYSLOG",
	"WAKE_ALARM",
	"BLOCK_SUSPEND",
	"AUDIT_READ",
	"PERFMON",
	"BPF",
	"CHECKPOINT_RESTORE",
};

/* containerd's (and Docker's) default set. */
static const uint64_t default_caps = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) |
				     BIT(CAP_FOWNER) | BIT(CAP_MKNOD) | BIT(CAP_NET_RAW) |
				     BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETFCAP) |
				     BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) |
				     BIT(CAP_SYS_CHROOT) | BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);

/* "NET_ADMIN", "net_admin" or "CAP_NET_ADMIN": the number, or -1. */
static int cap_parse(const char *s)
{
	if (strncasecmp(s, "CAP_", 4) == 0)
		s += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(s, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

static json_t *cap_array(struct gen *g, uint64_t set)
{
	json_t *a = json_array();
	char name[40];

	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (set & BIT(i)) {
			snprintf(name, sizeof(name), "CAP_%s", cap_names[i]);
			jpush(g, a, jstr(g, name));
		}
	return a;
}

json_t *caps_json(struct gen *g, uint64_t set, uint64_t ambient)
{
	json_t *o = json_object();

	jset(g, o, "bounding", cap_array(g, set));
	jset(g, o, "effective", cap_array(g, set));
	jset(g, o, "inheritable", cap_array(g, ambient));
	jset(g, o, "permitted", cap_array(g, set));
	jset(g, o, "ambient", cap_array(g, ambient));
	return o;
}

static int cap_list(struct gen *g, const char *field, char **names, size_t n, bool allow_all,
		    bool *ret_all, uint64_t *ret)
{
	char f[96];

	*ret = 0;
	*ret_all = false;
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	for (size_t i = 0; i < n; i++) {
		int c;

		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (check_str(g, f, names[i], SPEC_NAME_MAX) < 0)
			return -1;
		if (allow_all && strcasecmp(names[i], "ALL") == 0) {
			*ret_all = true;
			continue;
		}
		c = cap_parse(names[i]);
		if (c < 0)
			return invalid(g, "%s '%s' is not a capability", f, show(names[i]).s);
		*ret |= BIT(c);
	}
	return 0;
}

/* containerd's order: the default set; "ALL" in add gives every capability
 * the host has, "ALL" in drop removes every one; then the named ones are
 * added, then the named ones dropped. Ambient capabilities are added to every
 * set. Privileged containers get every capability of the host. A named
 * capability the host's bounding set lacks cannot be granted: runc would
 * fail obscurely, so it is an error here. */
int container_caps(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
		   bool privileged, json_t *process, uint64_t *ret_bounding)
{
	static const char F[] = "linux.security_context.capabilities";
	const Runtime__V1__Capability *cp = sc ? sc->capabilities : NULL;
	uint64_t host = g->host->cap_bounding, add = 0, drop = 0, amb = 0, set, missing;
	bool add_all = false, drop_all = false, unused;
	char f[80];

	if (cp) {
		snprintf(f, sizeof(f), "%s.add_capabilities", F);
		if (cap_list(g, f, cp->add_capabilities, cp->n_add_capabilities, true, &add_all,
			     &add) < 0)
			return -1;
		snprintf(f, sizeof(f), "%s.drop_capabilities", F);
		if (cap_list(g, f, cp->drop_capabilities, cp->n_drop_capabilities, true, &drop_all,
			     &drop) < 0)
			return -1;
		snprintf(f, sizeof(f), "%s.add_ambient_capabilities", F);
		if (cap_list(g, f, cp->add_ambient_capabilities, cp->n_add_ambient_capabilities,
			     false, &unused, &amb) < 0)
			return -1;
	}
	missing = (privileged ? amb : add | amb) & ~host;
	if (missing)
		return invalid(g, "%s: CAP_%s is not in the host's bounding set", F,
			       cap_names[__builtin_ctzll(missing)]);
	if (privileged) {
		set = host;
	} else {
		set = default_caps & host;
		if (add_all)
			set = host;
		if (drop_all)
			set = 0;
		set = (set | add | amb) & ~drop;
	}
	jset(g, process, "capabilities", caps_json(g, set, amb & set));
	*ret_bounding = set;
	return 0;
}

/* ---- seccomp and AppArmor ----------------------------------------------- */

/* The profile a SecurityProfile field or its deprecated string form asks
 * for ("runtime/default", "docker/default" for seccomp, "unconfined",
 * "localhost/<ref>"). */
static int profile_choice(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
			  const char *legacy, bool seccomp, enum profile *ret, const char **ret_ref)
{
	*ret_ref = NULL;
	if (sp) {
		const char *ref = sp->localhost_ref ? sp->localhost_ref : "";

		if (check_name(g, field, ref, SPEC_PATH_MAX) < 0)
			return -1;
		switch (sp->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*ret = PROFILE_RUNTIME_DEFAULT;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			*ret = PROFILE_UNCONFINED;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			if (!*ref)
				return invalid(g, "%s: Localhost needs a localhost_ref", field);
			*ret = PROFILE_LOCALHOST;
			*ret_ref = ref;
			return 0;
		default:
			return invalid(g, "%s: profile type %d is unknown", field,
				       (int)sp->profile_type);
		}
		if (*ref)
			return invalid(g, "%s: localhost_ref is set but the type is not Localhost",
				       field);
		return 0;
	}
	if (check_name(g, field, legacy, SPEC_PATH_MAX) < 0)
		return -1;
	*ret = PROFILE_UNSET;
	if (!legacy || !*legacy)
		return 0;
	if (streq(legacy, "runtime/default") || (seccomp && streq(legacy, "docker/default")))
		*ret = PROFILE_RUNTIME_DEFAULT;
	else if (streq(legacy, "unconfined"))
		*ret = PROFILE_UNCONFINED;
	else if (strncmp(legacy, "localhost/", 10) == 0 && legacy[10])
		*ret = PROFILE_LOCALHOST, *ret_ref = legacy + 10;
	else
		return invalid(g, "%s '%s' is not a profile", field, show(legacy).s);
	return 0;
}

static bool str_in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(s, set[i]))
			return true;
	return false;
}

static const char *const seccomp_actions[] = {
	"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
	"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",        "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
};
static const char *const seccomp_arches[] = {
	"SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
	"SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
	"SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
	"SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
	"SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
};
static const char *const seccomp_flags[] = {
	"SECCOMP_FILTER_FLAG_TSYNC",
	"SECCOMP_FILTER_FLAG_LOG",
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW",
};
static const char *const seccomp_ops[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
	"SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

/* A string array whose every member is in set (or, with set NULL, a
 * syscall name). */
static int profile_strings(struct gen *g, const char *field, json_t *v, const char *const *set,
			   size_t n_set, json_t **ret)
{
	size_t i;
	json_t *s;

	if (!json_is_array(v) || json_array_size(v) > SPEC_LIST_MAX)
		return invalid(g, "%s is not an array of at most %d strings", field, SPEC_LIST_MAX);
	json_array_foreach(v, i, s)
	{
		const char *str = json_string_value(s);
		size_t n = str ? strlen(str) : 0;

		if (!str || (set ? !str_in(str, set, n_set)
				 : (n == 0 || n > 64 ||
				    strspn(str, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)))
			return invalid(g, "%s[%zu] '%s' is not valid here", field, i, show(str).s);
	}
	*ret = json_incref(v);
	return 0;
}

static int profile_errno(struct gen *g, const char *field, json_t *v, const char *action,
			 json_t *out, const char *key)
{
	if (!v)
		return 0;
	if (!json_is_integer(v) || !int_in(json_integer_value(v), 0, 4095))
		return invalid(g, "%s is not an errno", field);
	if (action && !streq(action, "SCMP_ACT_ERRNO") && !streq(action, "SCMP_ACT_TRACE"))
		return invalid(g, "%s goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE only", field);
	jset(g, out, key, json_incref(v));
	return 0;
}

static int profile_arg(struct gen *g, const char *field, json_t *a, json_t *out)
{
	json_t *idx = json_object_get(a, "index"), *val = json_object_get(a, "value");
	json_t *two = json_object_get(a, "valueTwo");
	const char *op = json_string_value(json_object_get(a, "op"));

	if (!json_is_object(a) || !json_is_integer(idx) || !int_in(json_integer_value(idx), 0, 5))
		return invalid(g, "%s.index is not from 0 to 5", field);
	if (!json_is_integer(val) || json_integer_value(val) < 0 ||
	    (two && (!json_is_integer(two) || json_integer_value(two) < 0)))
		return invalid(g, "%s.value is not a non-negative integer", field);
	if (!op || !str_in(op, seccomp_ops, ARRAY_SIZE(seccomp_ops)))
		return invalid(g, "%s.op '%s' is not a comparison", field, show(op).s);
	a = json_pack("{s:O, s:O, s:s}", "index", idx, "value", val, "op", op);
	if (a && two)
		jset(g, a, "valueTwo", json_incref(two));
	jpush(g, out, a);
	return 0;
}

static int profile_rule(struct gen *g, size_t i, json_t *r, json_t *out)
{
	char f[64], ff[96];
	const char *action = json_string_value(json_object_get(r, "action"));
	json_t *args = json_object_get(r, "args"), *rule, *names, *a;
	size_t j;

	snprintf(f, sizeof(f), "seccomp profile syscalls[%zu]", i);
	if (!json_is_object(r))
		return invalid(g, "%s is not an object", f);
	if (!action || !str_in(action, seccomp_actions, ARRAY_SIZE(seccomp_actions)))
		return invalid(g, "%s.action '%s' is not supported", f, show(action).s);
	snprintf(ff, sizeof(ff), "%s.names", f);
	if (profile_strings(g, ff, json_object_get(r, "names"), NULL, 0, &names) < 0)
		return -1;
	rule = json_pack("{s:o, s:s}", "names", names, "action", action);
	jpush(g, out, rule);
	snprintf(ff, sizeof(ff), "%s.errnoRet", f);
	if (profile_errno(g, ff, json_object_get(r, "errnoRet"), action, rule, "errnoRet") < 0)
		return -1;
	if (!args || json_is_null(args))
		return 0;
	if (!json_is_array(args) || json_array_size(args) > 6)
		return invalid(g, "%s.args is not an array of at most 6", f);
	jset(g, rule, "args", json_array());
	json_array_foreach(args, j, a)
	{
		snprintf(ff, sizeof(ff), "%s.args[%zu]", f, j);
		if (profile_arg(g, ff, a, json_object_get(rule, "args")) < 0)
			return -1;
	}
	return 0;
}

/* A Localhost profile: the OCI linux.seccomp fields only, each checked (as
 * containerd, which reads the file into the OCI struct, keeps only those).
 * Seccomp notification is refused: runc would connect to a socket the
 * profile names. */
static int profile_convert(struct gen *g, json_t *in, json_t **ret)
{
	const char *def = json_string_value(json_object_get(in, "defaultAction"));
	json_t *out = json_object(), *rules, *v, *r;
	size_t i;

	*ret = out;
	if (!json_is_object(in))
		return invalid(g, "the seccomp profile is not a JSON object");
	if (!def || !str_in(def, seccomp_actions, ARRAY_SIZE(seccomp_actions)))
		return invalid(g, "seccomp profile defaultAction '%s' is not supported",
			       show(def).s);
	jset(g, out, "defaultAction", jstr(g, def));
	if (profile_errno(g, "seccomp profile defaultErrnoRet",
			  json_object_get(in, "defaultErrnoRet"), def, out, "defaultErrnoRet") < 0)
		return -1;
	if ((v = json_object_get(in, "listenerPath")) && !json_is_null(v) &&
	    !streq(json_string_value(v), ""))
		return invalid(g, "seccomp profile listenerPath is not supported");
	if ((v = json_object_get(in, "architectures")) && !json_is_null(v)) {
		if (profile_strings(g, "seccomp profile architectures", v, seccomp_arches,
				    ARRAY_SIZE(seccomp_arches), &v) < 0)
			return -1;
		jset(g, out, "architectures", v);
	}
	if ((v = json_object_get(in, "flags")) && !json_is_null(v)) {
		if (profile_strings(g, "seccomp profile flags", v, seccomp_flags,
				    ARRAY_SIZE(seccomp_flags), &v) < 0)
			return -1;
		jset(g, out, "flags", v);
	}
	v = json_object_get(in, "syscalls");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > SPEC_SECCOMP_RULES_MAX)
		return invalid(g, "seccomp profile syscalls is not an array of at most %d",
			       SPEC_SECCOMP_RULES_MAX);
	rules = json_array();
	jset(g, out, "syscalls", rules);
	json_array_foreach(v, i, r) if (profile_rule(g, i, r, rules) < 0) return -1;
	return 0;
}

static int seccomp_localhost(struct gen *g, const char *field, const char *ref, json_t **ret)
{
	const struct spec_ops *ops = g->host->ops;
	const char *root_in = g->host->seccomp_root;
	_cleanup_free_ char *root = NULL, *path = NULL, *text = NULL;
	json_auto_t *in = NULL;
	json_error_t jerr;

	if (strncmp(ref, "localhost/", 10) == 0) /* containerd trims it too */
		ref += 10;
	if (check_abs_path(g, field, ref) < 0)
		return -1;
	if (!root_in || root_in[0] != '/')
		return invalid(g, "%s: Localhost profiles need a seccomp profile root", field);
	root = path_clean(root_in);
	path = path_clean(ref);
	if (!path_under(path, root) || streq(path, root))
		return invalid(g, "%s '%s' is not under %s", field, show(ref).s, show(root).s);
	if (!ops || !ops->read_file)
		return fail(g, CRISP_E_UNIMPLEMENTED, "%s: no way to read profiles", field);
	if (ops->read_file(g->host->ops_ctx, root, path + strlen(root) + (root[1] != '\0'),
			   SPEC_FILE_MAX, &text, g->err) < 0)
		return err_prefix(g->err, "%s: %s '%s'", g->what, field, show(ref).s);
	in = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!in)
		return invalid(g, "%s '%s' is not JSON: line %d: %s", field, show(ref).s, jerr.line,
			       show(jerr.text).s);
	if (profile_convert(g, in, ret) < 0) {
		json_decref(*ret);
		*ret = NULL;
		return err_prefix(g->err, "%s '%s'", field, show(ref).s);
	}
	return 0;
}

/* linux.seccomp, or nothing. unset_default is what an unset profile gets:
 * nothing for containers (containerd), RuntimeDefault for pause. */
int seccomp_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
		 const char *legacy, enum profile unset_default, uint64_t caps, json_t *lx)
{
	enum profile p;
	const char *ref;
	json_t *s = NULL;

	if (profile_choice(g, field, sp, legacy, true, &p, &ref) < 0)
		return -1;
	if (p == PROFILE_UNSET)
		p = unset_default;
	if (p == PROFILE_RUNTIME_DEFAULT)
		s = spec_seccomp_default(caps, g->host->arch);
	else if (p == PROFILE_LOCALHOST && seccomp_localhost(g, field, ref, &s) < 0)
		return -1;
	if (s)
		jset(g, lx, "seccomp", s);
	return 0;
}

/* process.apparmorProfile. Unset means the runtime's default, which is the
 * profile runtimed found loaded (none if it was not); RuntimeDefault on a
 * host without AppArmor is the same "no profile" (CRI: "equivalent to not
 * specifying a profile"); a Localhost profile there is an error. */
int apparmor_json(struct gen *g, const char *field, const Runtime__V1__SecurityProfile *sp,
		  const char *legacy, bool privileged, json_t *process)
{
	enum profile p;
	const char *ref, *name = NULL;

	if (profile_choice(g, field, sp, legacy, false, &p, &ref) < 0)
		return -1;
	if (p == PROFILE_LOCALHOST) {
		if (!g->host->apparmor)
			return invalid(g, "%s: AppArmor is not enabled on this host", field);
		if (strncmp(ref, "localhost/", 10) == 0)
			ref += 10;
		if (!*ref || strlen(ref) > SPEC_NAME_MAX || strpbrk(ref, " \t"))
			return invalid(g, "%s '%s' is not a profile name", field, show(ref).s);
		name = ref;
	} else if ((p == PROFILE_UNSET || p == PROFILE_RUNTIME_DEFAULT) && !privileged &&
		   g->host->apparmor) {
		name = g->host->apparmor_default;
	}
	if (name && *name)
		jset(g, process, "apparmorProfile", jstr(g, name));
	return 0;
}

/* SELinux options: crisp sets no labels. Where SELinux is enabled a
 * request for one is refused, since the process would run in whatever
 * domain it inherits instead of the one asked for; where it is disabled
 * labels mean nothing and are ignored, as containerd (label.InitLabels)
 * and CRI-O do. */
int selinux_check(struct gen *g, const char *field, const Runtime__V1__SELinuxOption *o)
{
	if (!o || !g->host->selinux)
		return 0;
	if ((o->user && *o->user) || (o->role && *o->role) || (o->type && *o->type) ||
	    (o->level && *o->level))
		return fail(g, CRISP_E_UNIMPLEMENTED, "%s: SELinux labels are not supported",
			    field);
	return 0;
}

/* ---- masked paths, sysctls, annotations --------------------------------- */

/* containerd's (and kubelet's) defaults. */
static const char *const default_masked_paths[] = {
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
};
static const char *const default_readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* The request's list when it gives one, else the defaults. (containerd
 * gives none when the request gives none; kubelet always sends its list,
 * and crictl users get the safe default here.) */
static int path_list(struct gen *g, const char *field, char **v, size_t n,
		     const char *const *defaults, size_t n_defaults, json_t **ret)
{
	char f[96];

	if (n == 0) {
		*ret = jstrs(g, defaults, n_defaults);
		return 0;
	}
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	*ret = json_array();
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (check_abs_path(g, f, v[i]) < 0) {
			json_decref(*ret);
			return -1;
		}
		jpush(g, *ret, jstr(g, v[i]));
	}
	return 0;
}

int masked_paths(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc, json_t *lx)
{
	json_t *masked, *ro;

	if (path_list(g, "linux.security_context.masked_paths", sc ? sc->masked_paths : NULL,
		      sc ? sc->n_masked_paths : 0, default_masked_paths,
		      ARRAY_SIZE(default_masked_paths), &masked) < 0)
		return -1;
	jset(g, lx, "maskedPaths", masked);
	if (path_list(g, "linux.security_context.readonly_paths", sc ? sc->readonly_paths : NULL,
		      sc ? sc->n_readonly_paths : 0, default_readonly_paths,
		      ARRAY_SIZE(default_readonly_paths), &ro) < 0)
		return -1;
	jset(g, lx, "readonlyPaths", ro);
	return 0;
}

/* Only sysctls that are per namespace may be set, and only for a namespace
 * the pod owns: the same as kubelet's and runc's rules, checked here so a
 * pod on the host network cannot change the host. The name comes back in
 * the dotted form runc 1.1 expects (it turns every '.' into '/'): a
 * slash-separated name is converted, and one whose components contain
 * dots ("net/ipv4/conf/eth0.100/forwarding") cannot be expressed and is
 * refused. */
static int sysctl_check(struct gen *g, const char *key, bool host_net, bool host_ipc, char **ret)
{
	static const char *const ipc_keys[] = {
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
	};
	_cleanup_free_ char *k = xstrdup(key);
	size_t n = strlen(k);
	bool net, ipc, uts;

	if (n == 0 || n > SPEC_NAME_MAX ||
	    strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") != n ||
	    strchr(".-/", k[0]) || strchr("./", k[n - 1]) || strstr(k, "..") || strstr(k, "//") ||
	    strstr(k, "./") || strstr(k, "/."))
		return invalid(g, "linux.sysctls '%s' is not a sysctl name", show(key).s);
	if (strchr(k, '/')) {
		if (strchr(k, '.'))
			return invalid(g,
				       "linux.sysctls '%s': runc cannot set a sysctl whose "
				       "components contain '.'",
				       show(key).s);
		for (char *p = k; *p; p++)
			*p = *p == '/' ? '.' : *p;
	}
	net = strncmp(k, "net.", 4) == 0;
	ipc = strncmp(k, "fs.mqueue.", 10) == 0 || str_in(k, ipc_keys, ARRAY_SIZE(ipc_keys));
	uts = streq(k, "kernel.hostname") || streq(k, "kernel.domainname");
	if (!net && !ipc && !uts)
		return invalid(g, "linux.sysctls '%s' is not a namespaced sysctl", show(key).s);
	if ((net || uts) && host_net)
		return invalid(g,
			       "linux.sysctls '%s' would change the host: the pod uses the "
			       "host network",
			       show(key).s);
	if (ipc && host_ipc)
		return invalid(g,
			       "linux.sysctls '%s' would change the host: the pod uses the "
			       "host IPC namespace",
			       show(key).s);
	*ret = TAKE_PTR(k);
	return 0;
}

int sandbox_sysctls(struct gen *g, bool host_net, bool host_ipc, json_t *lx)
{
	const Runtime__V1__LinuxPodSandboxConfig *l = g->pod->config->linux;
	json_t *s;

	if (!l || l->n_sysctls == 0)
		return 0;
	if (l->n_sysctls > SPEC_LIST_MAX)
		return invalid(g, "linux.sysctls has more than %d entries", SPEC_LIST_MAX);
	s = json_object();
	jset(g, lx, "sysctl", s);
	for (size_t i = 0; i < l->n_sysctls; i++) {
		const char *k = l->sysctls[i]->key ? l->sysctls[i]->key : "";
		const char *v = l->sysctls[i]->value ? l->sysctls[i]->value : "";
		_cleanup_free_ char *name = NULL;

		if (sysctl_check(g, k, host_net, host_ipc, &name) < 0)
			return -1;
		if (check_name(g, "linux.sysctls value", v, SPEC_PATH_MAX) < 0)
			return -1;
		jset(g, s, name, jstr(g, v));
	}
	return 0;
}

/* Annotations that OCI runtimes read as instructions, which a pod's author
 * must not be able to give: runc's systemd driver turns org.systemd.property.*
 * into unit properties, runc reads org.criu.*, crun run.oci.*, Kata
 * io.katacontainers.*. They are left out of config.json (the CRI status
 * still returns them); io.kubernetes.cri.* are crisp's own. */
