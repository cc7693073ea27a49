/* Cgroup layout detection, the paths runc's cgroupfs and systemd drivers
 * use, and the removal of cgroups left behind, for runtimed (see cgroup.h).
 * The statistics read from cgroups are in cgroup_stats.c.
 *
 * Relpaths come from requests and runc cgroupsPaths: they are checked
 * (cgroup_relpath_clean) and every directory below a hierarchy root is
 * opened component by component with O_NOFOLLOW, so nothing resolves
 * outside the hierarchy and removal never follows a symlink. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "runtimed/cgroup.h"
#include "runtimed/cgroup_priv.h"

/* Deeper than any real cgroup tree (kubepods/<qos>/<pod>/<container>, a few
 * systemd slices): a bound on the recursion of cgroup_remove. */
#define CGROUP_DEPTH_MAX 64
#define CGROUP_PATH_MAX 4096
/* systemd's UNIT_NAME_MAX, NUL excluded. */
#define UNIT_NAME_MAX 255

const char *cgroup_mode_name(enum cgroup_mode mode)
{
	switch (mode) {
	case CGROUP_V1:
		return "v1";
	case CGROUP_HYBRID:
		return "hybrid";
	case CGROUP_V2:
		return "v2";
	case CGROUP_UNAVAILABLE:
		break;
	}
	return "unavailable";
}

enum cgroup_mode cgroup_detect(const char *root)
{
	_cleanup_free_ char *unified = NULL;
	struct statfs sfs;

	if (!root || statfs(root, &sfs) < 0)
		return CGROUP_UNAVAILABLE;
	if (sfs.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_V2;
	/* Like containerd: anything else is v1, hybrid when systemd also
	 * mounted the (controller-less) v2 hierarchy at unified/. */
	unified = xasprintf("%s/unified", root);
	if (statfs(unified, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_HYBRID;
	return CGROUP_V1;
}

/* --- paths ----------------------------------------------------------------- */

const char *cgroup_printable(const char *s, size_t n, char *buf, size_t bufsize)
{
	size_t i;

	for (i = 0; i < n && i < bufsize - 1 && i < 32; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static bool relpath_component_ok(const char *c, size_t n)
{
	if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return false;
	if (n > NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
			return false;
	return true;
}

char *cgroup_relpath_clean(const char *relpath, struct crisp_error *err)
{
	const char *p;
	char shown[40];

	if (!relpath) {
		err_set(err, CRISP_E_INVALID, "no cgroup path");
		return NULL;
	}
	if (strlen(relpath) >= CGROUP_PATH_MAX) {
		err_set(err, CRISP_E_INVALID, "cgroup path '%s...' is longer than %d bytes",
			cgroup_printable(relpath, 32, shown, sizeof(shown)), CGROUP_PATH_MAX - 1);
		return NULL;
	}
	p = relpath[0] == '/' ? relpath + 1 : relpath;
	if (*p == '\0')
		return xstrdup("");
	for (const char *c = p;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);

		if (!relpath_component_ok(c, n)) {
			err_set(err, CRISP_E_INVALID,
				"cgroup path '%s' has an empty, '.', '..', overlong or "
				"control-character component",
				relpath);
			return NULL;
		}
		if (!slash)
			break;
		c = slash + 1;
	}
	return xstrdup(p);
}

int cgroup_open_below(int hierfd, const char *rel)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	_cleanup_close_ int fd = -1;
	char *save = NULL;

	fd = openat(hierfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (next < 0)
			return -errno;
		safe_close(fd);
		fd = next;
	}
	return TAKE_FD(fd);
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *cgroup_relpath_parent(const char *rel)
{
	const char *slash;

	if (!*rel)
		return NULL;
	slash = strrchr(rel, '/');
	if (!slash)
		return xstrdup("");
	return xstrndup(rel, (size_t)(slash - rel));
}

int cgroup_open_root(const char *root, struct crisp_error *err)
{
	int fd;

	if (!root)
		return err_set(err, CRISP_E_INVALID, "no cgroup root");
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening cgroup root %s", root);
	return fd;
}

int cgroup_open_at(enum cgroup_mode mode, const char *root, const char *relpath, char **ret_rel,
		   struct crisp_error *err)
{
	_cleanup_free_ char *rel = NULL;
	int fd;

	*ret_rel = NULL;
	if (mode == CGROUP_UNAVAILABLE)
		return err_set(err, CRISP_E_UNAVAILABLE, "no cgroup hierarchy at %s",
			       root ? root : "(null)");
	rel = cgroup_relpath_clean(relpath, err);
	if (!rel)
		return -1;
	fd = cgroup_open_root(root, err);
	if (fd >= 0)
		*ret_rel = TAKE_PTR(rel);
	return fd;
}

/* --- runc paths -------------------------------------------------------------- */

/* systemd's unit name characters (unit-name.c VALID_CHARS). */
static bool unit_chars_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(":-_.\\", *s)))
			return false;
	return true;
}

char *cgroup_systemd_slice_path(const char *slice, struct crisp_error *err)
{
	static const char suffix[] = ".slice";
	const size_t slen = sizeof(suffix) - 1;
	_cleanup_free_ char *name = NULL, *path = NULL;
	size_t len;

	if (!slice || !*slice) {
		err_set(err, CRISP_E_INVALID, "empty slice name");
		return NULL;
	}
	len = strlen(slice);
	if (len > UNIT_NAME_MAX || len <= slen || strcmp(slice + len - slen, suffix) != 0 ||
	    !unit_chars_ok(slice)) {
		err_set(err, CRISP_E_INVALID,
			"slice name '%.64s' is not 1-255 unit name characters ending in .slice",
			slice);
		return NULL;
	}
	name = xstrndup(slice, len - slen);
	/* "-.slice" is the root slice itself, as in runc's ExpandSlice. */
	if (streq(name, "-"))
		return xstrdup("");
	/* Every dash separates two non-empty levels. */
	if (name[0] == '-' || name[len - slen - 1] == '-' || strstr(name, "--")) {
		err_set(err, CRISP_E_INVALID,
			"slice name '%s' has an empty level (leading, trailing or double '-')",
			slice);
		return NULL;
	}
	/* a-b-c.slice lives in a.slice/a-b.slice/a-b-c.slice. */
	for (const char *dash = name;; dash++) {
		char *longer;

		dash = strchr(dash, '-');
		longer = xasprintf("%s%s%.*s%s", path ? path : "", path ? "/" : "",
				   (int)(dash ? (size_t)(dash - name) : strlen(name)), name,
				   suffix);
		free(path);
		path = longer;
		if (!dash)
			break;
	}
	return TAKE_PTR(path);
}

char *cgroup_runc_relpath(const char *cgroups_path, bool systemd, struct crisp_error *err)
{
	_cleanup_free_ char *copy = NULL, *slice_path = NULL, *unit = NULL;
	char *rel, *slice, *prefix, *name, *c1, *c2;

	if (!cgroups_path || !*cgroups_path) {
		err_set(err, CRISP_E_INVALID, "empty cgroupsPath");
		return NULL;
	}
	if (!systemd) {
		if (cgroups_path[0] != '/') {
			err_set(err, CRISP_E_INVALID, "cgroupsPath '%.64s' is not absolute",
				cgroups_path);
			return NULL;
		}
		rel = cgroup_relpath_clean(cgroups_path, err);
		if (rel && !*rel) {
			free(rel);
			err_set(err, CRISP_E_INVALID, "cgroupsPath '/' names the root cgroup");
			return NULL;
		}
		return rel;
	}
	/* runc: "slice:prefix:name" -> <expanded slice>/<prefix>-<name>.scope,
	 * or <expanded slice>/<name> when name is itself a slice. */
	copy = xstrdup(cgroups_path);
	c1 = strchr(copy, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || strchr(c2 + 1, ':')) {
		err_set(err, CRISP_E_INVALID, "cgroupsPath '%.64s' is not slice:prefix:name",
			cgroups_path);
		return NULL;
	}
	*c1 = *c2 = '\0';
	slice = *copy ? copy : (char *)"system.slice";
	prefix = c1 + 1;
	name = c2 + 1;
	if (!*name || !unit_chars_ok(prefix) || !unit_chars_ok(name)) {
		err_set(err, CRISP_E_INVALID,
			"cgroupsPath '%.64s': prefix and name must be unit name characters, name "
			"not empty",
			cgroups_path);
		return NULL;
	}
	slice_path = cgroup_systemd_slice_path(slice, err);
	if (!slice_path)
		return NULL;
	size_t nlen = strlen(name);
	if (nlen > 6 && streq(name + nlen - 6, ".slice"))
		unit = xstrdup(name);
	else
		unit = xasprintf("%s-%s.scope", prefix, name);
	if (strlen(unit) > UNIT_NAME_MAX) {
		err_set(err, CRISP_E_INVALID, "cgroupsPath '%.64s': unit name is too long",
			cgroups_path);
		return NULL;
	}
	return *slice_path ? xasprintf("%s/%s", slice_path, unit) : TAKE_PTR(unit);
}

static bool hier_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= NAME_MAX && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..");
}

char *cgroup_dir(enum cgroup_mode mode, const char *root, const char *controller,
		 const char *relpath, struct crisp_error *err)
{
	_cleanup_free_ char *rel = NULL;
	const char *hier = controller;

	if (!root || mode == CGROUP_UNAVAILABLE) {
		err_set(err, CRISP_E_UNAVAILABLE, "no cgroup hierarchy");
		return NULL;
	}
	rel = cgroup_relpath_clean(relpath, err);
	if (!rel)
		return NULL;
	if (mode == CGROUP_V2)
		return *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	if (!hier && mode == CGROUP_HYBRID)
		hier = "unified";
	if (!hier_name_ok(hier)) {
		err_set(err, CRISP_E_INVALID, "'%s' is not a cgroup v1 controller",
			hier ? hier : "(none)");
		return NULL;
	}
	return *rel ? xasprintf("%s/%s/%s", root, hier, rel) : xasprintf("%s/%s", root, hier);
}

/* --- removal ------------------------------------------------------------------ */

/* The v1 hierarchies: the same path is in every one of them (runc's
 * cgroupfs driver makes it in all of them, name=systemd and, on hybrid
 * hosts, unified/ too). Hierarchies are the real directories of the root;
 * the per-controller symlinks ("cpu" -> "cpu,cpuacct") lead to one of
 * those. */
static int hier_list(const char *root, int rootfd, char ***ret, size_t *ret_n,
		     struct crisp_error *err)
{
	char **hiers = NULL;
	size_t n = 0;
	int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "listing %s", root);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		hiers = xrealloc(hiers, (n + 1) * sizeof(*hiers));
		hiers[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	*ret = hiers;
	*ret_n = n;
	return 0;
}

/* Insert name into the sorted names, unless it is there already (the same
 * cgroup in another hierarchy). By hand, not qsort: glibc's asks
 * sysinfo(2) for big arrays, which runtimed's seccomp filter refuses. */
static void name_add(char ***names, size_t *n, const char *name)
{
	size_t at = 0;
	int cmp = 1;

	while (at < *n && (cmp = strcmp((*names)[at], name)) < 0)
		at++;
	if (at < *n && cmp == 0)
		return;
	*names = xrealloc(*names, (*n + 1) * sizeof(**names));
	memmove(*names + at + 1, *names + at, (*n - at) * sizeof(**names));
	(*names)[at] = xstrdup(name);
	(*n)++;
}

/* Add the directory names below rel in the hierarchy at hierfd to *names. */
static int children_in_hier(int hierfd, const char *top, const char *rel, char ***names, size_t *n,
			    struct crisp_error *err)
{
	int fd = cgroup_open_below(hierfd, rel);
	DIR *d;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, -fd, "opening cgroup %s/%s", top, rel);
	d = fdopendir(fd);
	if (!d) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "listing cgroup %s/%s", top, rel);
		close(fd);
		return -1;
	}
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		name_add(names, n, de->d_name);
	}
	closedir(d);
	return 0;
}

int cgroup_children(const char *root, const char *relpath, char ***ret, size_t *ret_n,
		    struct crisp_error *err)
{
	enum cgroup_mode mode = cgroup_detect(root);
	_cleanup_free_ char *rel = NULL;
	_cleanup_close_ int rootfd = -1;
	char **hiers = NULL, **names = NULL;
	size_t nh = 0, n = 0;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	rootfd = cgroup_open_at(mode, root, relpath, &rel, err);
	if (rootfd < 0)
		return -1;
	if (mode == CGROUP_V2) {
		r = children_in_hier(rootfd, root, rel, &names, &n, err);
	} else if ((r = hier_list(root, rootfd, &hiers, &nh, err)) == 0) {
		for (size_t i = 0; i < nh; i++) {
			_cleanup_free_ char *top = xasprintf("%s/%s", root, hiers[i]);
			_cleanup_close_ int hierfd = openat(
				rootfd, hiers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (r == 0 && hierfd >= 0)
				r = children_in_hier(hierfd, top, rel, &names, &n, err);
			else if (r == 0 && errno != ENOENT)
				r = err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", top);
			free(hiers[i]);
		}
		free(hiers);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	*ret = names;
	*ret_n = n;
	return 0;
}

static int changed_in_hier(int hierfd, const char *top, const char *rel, int64_t *newest,
			   struct crisp_error *err)
{
	_cleanup_close_ int fd = cgroup_open_below(hierfd, rel);
	struct stat st;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, -fd, "opening cgroup %s/%s", top, rel);
	if (fstat(fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "stat of cgroup %s/%s", top,
				     rel);
	if (st.st_mtim.tv_sec > *newest)
		*newest = st.st_mtim.tv_sec;
	return 0;
}

int cgroup_changed_at(const char *root, const char *relpath, int64_t *ret, struct crisp_error *err)
{
	enum cgroup_mode mode = cgroup_detect(root);
	_cleanup_free_ char *rel = NULL;
	_cleanup_close_ int rootfd = -1;
	char **hiers = NULL;
	size_t nh = 0;
	int r = 0;

	*ret = 0;
	rootfd = cgroup_open_at(mode, root, relpath, &rel, err);
	if (rootfd < 0)
		return -1;
	if (mode == CGROUP_V2)
		return changed_in_hier(rootfd, root, rel, ret, err);
	if (hier_list(root, rootfd, &hiers, &nh, err) < 0)
		return -1;
	for (size_t i = 0; i < nh; i++) {
		_cleanup_free_ char *top = xasprintf("%s/%s", root, hiers[i]);
		_cleanup_close_ int hierfd = openat(
			rootfd, hiers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (r == 0 && hierfd >= 0)
			r = changed_in_hier(hierfd, top, rel, ret, err);
		else if (r == 0 && errno != ENOENT)
			r = err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s", top);
		free(hiers[i]);
	}
	free(hiers);
	return r;
}

struct remove_ctx {
	const char *top; /* <root>/<hierarchy>, for messages */
	struct crisp_error *err;
	int failed;
};

static void remove_fail(struct remove_ctx *ctx, int errnum, const char *rel)
{
	enum crisp_errcode code = errnum == EBUSY || errnum == ENOTEMPTY ? CRISP_E_PRECONDITION
									 : CRISP_E_INTERNAL;

	/* The first failure is the one worth reading; later ones are alike. */
	if (!ctx->failed++)
		err_set_errno(ctx->err, code, errnum, "removing cgroup %s/%s%s", ctx->top, rel,
			      errnum == EBUSY ? " (processes still in it)" : "");
}

/* Remove the directory name under parentfd (rel: its path, for messages)
 * and every directory below it, deepest first. Only directories: a cgroup's
 * interface files go with its rmdir; anything else makes the rmdir fail,
 * which is right. */
static void remove_tree(struct remove_ctx *ctx, int parentfd, const char *name, const char *rel,
			int depth)
{
	_cleanup_close_ int fd = -1;
	char **children = NULL;
	size_t n = 0;
	DIR *d;

	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			remove_fail(ctx, errno, rel);
		return;
	}
	if (depth >= CGROUP_DEPTH_MAX) {
		if (!ctx->failed++)
			err_set(ctx->err, CRISP_E_INVALID,
				"removing cgroup %s/%s: deeper than %d levels, not a cgroup tree "
				"runtimed made",
				ctx->top, rel, CGROUP_DEPTH_MAX);
		return;
	}
	d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 3));
	if (!d) {
		remove_fail(ctx, errno, rel);
		return;
	}
	/* Names first, removals after: no rmdir while the stream is open. */
	for (struct dirent *de; (errno = 0, de = readdir(d));) {
		struct stat sb;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (de->d_type != DT_DIR &&
		    (de->d_type != DT_UNKNOWN ||
		     fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode)))
			continue;
		children = xrealloc(children, (n + 1) * sizeof(*children));
		children[n++] = xstrdup(de->d_name);
	}
	if (errno)
		remove_fail(ctx, errno, rel);
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *sub = xasprintf("%s/%s", rel, children[i]);

		remove_tree(ctx, fd, children[i], sub, depth + 1);
		free(children[i]);
	}
	free(children);
	if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		remove_fail(ctx, errno, rel);
}

/* Remove rel below the hierarchy at hierfd: its parent is reached without
 * following symlinks, then the tree goes. */
static void remove_in_hier(struct remove_ctx *ctx, int hierfd, const char *rel)
{
	_cleanup_free_ char *parent = cgroup_relpath_parent(rel);
	_cleanup_close_ int parentfd = -1;
	const char *base = strrchr(rel, '/');

	parentfd = cgroup_open_below(hierfd, parent);
	if (parentfd == -ENOENT)
		return;
	if (parentfd < 0) {
		remove_fail(ctx, -parentfd, parent);
		return;
	}
	remove_tree(ctx, parentfd, base ? base + 1 : rel, rel, 0);
}

int cgroup_remove_in(enum cgroup_mode mode, const char *root, const char *relpath,
		     struct crisp_error *err)
{
	_cleanup_free_ char *rel = NULL;
	_cleanup_close_ int rootfd = -1;
	struct remove_ctx ctx = { .top = root, .err = err };
	char **hiers = NULL;
	size_t n = 0;

	rootfd = cgroup_open_at(mode, root, relpath, &rel, err);
	if (rootfd < 0)
		return -1;
	if (!*rel)
		return err_set(err, CRISP_E_INVALID, "refusing to remove the root cgroup");
	if (mode == CGROUP_V2) {
		remove_in_hier(&ctx, rootfd, rel);
		return ctx.failed ? -1 : 0;
	}
	if (hier_list(root, rootfd, &hiers, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *top = xasprintf("%s/%s", root, hiers[i]);
		_cleanup_close_ int hierfd = openat(
			rootfd, hiers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		ctx.top = top;
		if (hierfd >= 0)
			remove_in_hier(&ctx, hierfd, rel);
		else if (errno != ENOENT)
			remove_fail(&ctx, errno, "");
		free(hiers[i]);
	}
	free(hiers);
	return ctx.failed ? -1 : 0;
}

int cgroup_remove(const char *root, const char *relpath, struct crisp_error *err)
{
	return cgroup_remove_in(cgroup_detect(root), root, relpath, err);
}
