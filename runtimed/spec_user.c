/* OCI spec generation (spec.c), users: the container's uid, gid and
 * supplementary groups, resolved against the image's /etc/passwd and
 * /etc/group as runc and containerd do. Those files come from the image,
 * so they are parsed bounded and never trusted beyond their format. */
#include "autoconfig.h"

#include <ctype.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtimed/spec_int.h"

/* ---- users -------------------------------------------------------------- */

struct slice {
	const char *p;
	size_t n;
};

/* Split at sep into at most max fields, the last one taking the rest. */
static size_t split(struct slice s, char sep, struct slice *f, size_t max)
{
	size_t nf = 0;

	while (nf < max) {
		const char *e = nf + 1 < max ? memchr(s.p, sep, s.n) : NULL;
		size_t n = e ? (size_t)(e - s.p) : s.n;

		f[nf++] = (struct slice){ s.p, n };
		if (!e)
			break;
		s.p = e + 1;
		s.n -= n + 1;
	}
	return nf;
}

static bool slice_is(struct slice s, const char *str)
{
	return s.n == strlen(str) && memcmp(s.p, str, s.n) == 0;
}

static bool slice_eq(struct slice a, struct slice b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static bool slice_id(struct slice s, uint32_t *ret)
{
	uint64_t v = 0;

	if (s.n == 0 || s.n > 10)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > ID_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool next_line(const char **cur, struct slice *line)
{
	const char *p = *cur, *nl;

	if (!p || !*p)
		return false;
	nl = strchr(p, '\n');
	line->p = p;
	line->n = nl ? (size_t)(nl - p) : strlen(p);
	*cur = nl ? nl + 1 : p + line->n;
	if (line->n && p[line->n - 1] == '\r')
		line->n--;
	return true;
}

/* An /etc/passwd line "name:password:uid:gid:gecos:home:shell" or an
 * /etc/group line "name:password:gid:member,member"; false for blank lines,
 * comments and lines that do not parse, which libc skips as well. */
struct dbent {
	struct slice name, members;
	uint32_t id, gid;
};

static bool db_parse(struct slice line, bool group, struct dbent *ret)
{
	struct slice f[7];
	size_t nf = split(line, ':', f, group ? 4 : 7);

	if (nf < (group ? 3u : 4u) || f[0].n == 0 || f[0].p[0] == '#')
		return false;
	ret->name = f[0];
	ret->members = group && nf == 4 ? f[3] : (struct slice){ "", 0 };
	if (!slice_id(f[2], &ret->id))
		return false;
	return group || slice_id(f[3], &ret->gid);
}

/* The first entry named `name`, or with id *id when name is NULL. */
static bool db_find(const char *db, bool group, const char *name, const uint32_t *id,
		    struct dbent *ret)
{
	struct slice line;

	for (const char *cur = db; next_line(&cur, &line);) {
		if (!db_parse(line, group, ret))
			continue;
		if (name ? slice_is(ret->name, name) : ret->id == *id)
			return true;
	}
	return false;
}

static bool has_member(struct slice members, struct slice user)
{
	struct slice f[2];

	while (members.n) {
		split(members, ',', f, 2);
		if (slice_eq(f[0], user))
			return true;
		if (f[0].n == members.n)
			break;
		members.p += f[0].n + 1;
		members.n -= f[0].n + 1;
	}
	return false;
}

static int gids_add(struct gen *g, struct gids *s, uint32_t gid)
{
	if (s->n >= SPEC_GROUPS_MAX)
		return invalid(g, "the user is in more than %d groups", SPEC_GROUPS_MAX);
	if ((s->n & (s->n - 1)) == 0) /* full at 0, 1, 2, 4, ...: double */
		s->v = xrealloc(s->v, (s->n ? s->n * 2 : 1) * sizeof(*s->v));
	s->v[s->n++] = gid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* process.user: uid, gid and the sorted, de-duplicated additionalGids. */
json_t *user_json(struct gen *g, uint32_t uid, uint32_t gid, struct gids *s)
{
	json_t *u = json_object(), *a = json_array();

	jset(g, u, "uid", json_integer(uid));
	jset(g, u, "gid", json_integer(gid));
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	for (size_t i = 0; i < s->n; i++)
		if (i == 0 || s->v[i] != s->v[i - 1])
			jpush(g, a, json_integer(s->v[i]));
	if (json_array_size(a))
		jset(g, u, "additionalGids", a);
	else
		json_decref(a);
	return u;
}

int supplemental_groups(struct gen *g, const char *field, const int64_t *v, size_t n,
			struct gids *s)
{
	if (n > SPEC_LIST_MAX)
		return invalid(g, "%s has more than %d entries", field, SPEC_LIST_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!int_in(v[i], 0, ID_MAX))
			return invalid(g, "%s[%zu] %lld is not a group id", field, i,
				       (long long)v[i]);
		if (gids_add(g, s, (uint32_t)v[i]) < 0)
			return -1;
	}
	return 0;
}

/* Who the container runs as, in CRI terms and OCI image terms. */
struct user_req {
	const char *origin; /* the field it came from, for messages */
	char *name, *group;
	bool has_uid, has_gid;
	uint32_t uid, gid;
};

/* The image's USER: "name", "uid", "name:group", "uid:gid", ... */
static int parse_image_user(struct gen *g, const char *s, struct user_req *r)
{
	const char *colon = strchr(s, ':');
	struct slice u = { s, colon ? (size_t)(colon - s) : strlen(s) };

	r->origin = "image user";
	if (check_name(g, "image user", s, SPEC_NAME_MAX) < 0)
		return -1;
	if (u.n == 0)
		return invalid(g, "image user '%s' names no user", show(s).s);
	if (!slice_id(u, &r->uid))
		r->name = xstrndup(s, u.n);
	r->has_uid = !r->name;
	if (colon) {
		struct slice gr = { colon + 1, strlen(colon + 1) };

		if (gr.n == 0)
			return invalid(g, "image user '%s' names no group", show(s).s);
		if (!slice_id(gr, &r->gid))
			r->group = xstrdup(colon + 1);
		r->has_gid = !r->group;
	}
	return 0;
}

/* The request's user, else the image's: containerd's generateUserString. */
static int user_request(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
			const char *image_user, struct user_req *r)
{
	static const char F[] = "linux.security_context";
	const char *username = sc ? sc->run_as_username : NULL;

	if (username && *username) {
		if (check_name(g, "linux.security_context.run_as_username", username,
			       SPEC_NAME_MAX) < 0)
			return -1;
		if (sc->run_as_user)
			return invalid(g, "%s: run_as_user and run_as_username are both set", F);
		r->origin = "linux.security_context.run_as_username";
		r->name = xstrdup(username);
	} else if (sc && sc->run_as_user) {
		if (!int_in(sc->run_as_user->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_user %lld is not a user id", F,
				       (long long)sc->run_as_user->value);
		r->origin = "linux.security_context.run_as_user";
		r->has_uid = true;
		r->uid = (uint32_t)sc->run_as_user->value;
	} else if (image_user && *image_user) {
		if (parse_image_user(g, image_user, r) < 0)
			return -1;
	}
	if (sc && sc->run_as_group) {
		if (!(username && *username) && !sc->run_as_user)
			return invalid(g, "%s.run_as_group is set without run_as_user", F);
		if (!int_in(sc->run_as_group->value, 0, ID_MAX))
			return invalid(g, "%s.run_as_group %lld is not a group id", F,
				       (long long)sc->run_as_group->value);
		free(r->group);
		r->group = NULL;
		r->has_gid = true;
		r->gid = (uint32_t)sc->run_as_group->value;
	}
	return 0;
}

/* Resolve in the image's /etc/passwd and /etc/group as containerd's
 * WithUser and WithAdditionalGIDs do: a name must exist; a uid need not
 * (its gid is then 0); supplementary groups are the primary group, those
 * of /etc/group that list the user (policy Merge) and the request's
 * supplemental_groups. */
int container_user(struct gen *g, const Runtime__V1__LinuxContainerSecurityContext *sc,
		   const CrispIpc__ImageRunConfig *img, const struct spec_image_files *files,
		   json_t *process)
{
	struct user_req r = { 0 };
	struct gids s = { 0 };
	struct dbent pw, gr;
	bool have_pw = false;
	uint32_t gid = 0;
	int ret = -1;

	if ((files->passwd && strlen(files->passwd) > SPEC_FILE_MAX) ||
	    (files->group && strlen(files->group) > SPEC_FILE_MAX))
		return invalid(g, "the image's /etc/passwd or /etc/group is larger than %d bytes",
			       SPEC_FILE_MAX);
	/* An unknown policy is refused rather than taken for Merge: a newer
	 * kubelet's policy would otherwise silently give the container groups
	 * it did not ask for. */
	if (sc &&
	    sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge &&
	    sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)
		return invalid(g,
			       "linux.security_context.supplemental_groups_policy %d is not "
			       "Merge (0) or Strict (1)",
			       (int)sc->supplemental_groups_policy);
	if (user_request(g, sc, img->user, &r) < 0)
		goto out;
	if (r.name) {
		if (!files->passwd || !db_find(files->passwd, false, r.name, NULL, &pw)) {
			invalid(g, "%s '%s' is not in the image's /etc/passwd", r.origin,
				show(r.name).s);
			goto out;
		}
		have_pw = true;
	} else if (files->passwd) {
		have_pw = db_find(files->passwd, false, NULL, &r.uid, &pw);
	}
	if (have_pw) {
		r.uid = pw.id;
		gid = pw.gid;
	}
	if (r.group) {
		if (!files->group || !db_find(files->group, true, r.group, NULL, &gr)) {
			invalid(g, "%s group '%s' is not in the image's /etc/group", r.origin,
				show(r.group).s);
			goto out;
		}
		gid = gr.id;
	} else if (r.has_gid) {
		gid = r.gid;
	}

	/* The primary group is a supplementary one too, whatever the policy:
	 * containerd's ensureAdditionalGids, what critest's
	 * SupplementalGroupsPolicy tests expect of getgroups(2) and of
	 * ContainerStatus.user, and what initgroups(3) gives a login. */
	if (gids_add(g, &s, gid) < 0)
		goto out;
	if (have_pw && files->group &&
	    !(sc &&
	      sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)) {
		struct slice line;

		for (const char *cur = files->group; next_line(&cur, &line);)
			if (db_parse(line, true, &gr) && has_member(gr.members, pw.name) &&
			    gids_add(g, &s, gr.id) < 0)
				goto out;
	}
	if (sc && supplemental_groups(g, "linux.security_context.supplemental_groups",
				      sc->supplemental_groups, sc->n_supplemental_groups, &s) < 0)
		goto out;
	jset(g, process, "user", user_json(g, r.uid, gid, &s));
	ret = 0;
out:
	free(r.name);
	free(r.group);
	free(s.v);
	return ret;
}

/* An id of process.user: an integer that can be a uid or gid. */
static bool json_id(const json_t *v, int64_t *ret)
{
	if (!json_is_integer(v) || !int_in(json_integer_value(v), 0, ID_MAX))
		return false;
	*ret = json_integer_value(v);
	return true;
}

Runtime__V1__ContainerUser *spec_process_user(const json_t *spec)
{
	const json_t *user = json_object_get(json_object_get(spec, "process"), "user");
	const json_t *add = json_object_get(user, "additionalGids");
	Runtime__V1__ContainerUser *cu;
	Runtime__V1__LinuxContainerUser *lu;
	int64_t uid, gid;
	size_t n = add ? json_array_size(add) : 0;

	if (!json_id(json_object_get(user, "uid"), &uid) ||
	    !json_id(json_object_get(user, "gid"), &gid) || (add && !json_is_array(add)) ||
	    n > SPEC_GROUPS_MAX)
		return NULL;
	lu = xcalloc(1, sizeof(*lu));
	runtime__v1__linux_container_user__init(lu);
	lu->uid = uid;
	lu->gid = gid;
	if (n)
		lu->supplemental_groups = xcalloc(n, sizeof(*lu->supplemental_groups));
	for (size_t i = 0; i < n; i++)
		if (!json_id(json_array_get(add, i), &lu->supplemental_groups[i])) {
			free(lu->supplemental_groups);
			free(lu);
			return NULL;
		}
	lu->n_supplemental_groups = n;
	cu = xcalloc(1, sizeof(*cu));
	runtime__v1__container_user__init(cu);
	cu->linux = lu;
	return cu;
}
