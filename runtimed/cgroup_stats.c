/* The statistics runtimed reports (declared in cgroup.h), read from the
 * kernel: a cgroup's CPU, memory, pids and block I/O from its files under
 * /sys/fs/cgroup, the cgroup found through /proc/<pid>/cgroup or named by
 * its path; the fds and sockets of its processes from /proc/<pid>/fd; a
 * pod's network counters from /proc/<pid>/net/dev (its netns); block device
 * names from /sys/dev/block/<major>:<minor>/uevent; and the disk usage of a
 * writable layer, from a walk of its directory.
 *
 * The numbers follow cAdvisor and containerd's CRI plugin, because kubelet's
 * eviction and the metrics users compare against were tuned on them:
 *   v1: cpu = cpuacct.usage; memory usage = memory.usage_in_bytes; working
 *       set = usage - total_inactive_file (floored at 0); rss = total_rss;
 *       faults = total_pgfault / total_pgmajfault; oom kills =
 *       memory.oom_control oom_kill; pids = pids.current.
 *   v2: cpu = cpu.stat usage_usec * 1000; usage = memory.current; working
 *       set = usage - inactive_file; rss = anon; faults = pgfault /
 *       pgmajfault; oom kills = memory.events oom_kill; pids = pids.current.
 * and the rest of cAdvisor's container metrics, each from one file read
 * once, 0 where this kernel lacks it:
 *   v1: cpu.stat nr_periods / nr_throttled / throttled_time, cpu.shares,
 *       cpu.cfs_period_us; cpuacct.usage_user / usage_sys (cpuacct.stat ticks
 *       on kernels without them); memory.stat total_cache /
 *       total_mapped_file / total_swap; memory.failcnt,
 *       memory.max_usage_in_bytes, memory.kmem.usage_in_bytes,
 *       memory.limit_in_bytes, memory.memsw.limit_in_bytes; pids.max;
 *       blkio.throttle.io_service_bytes_recursive / io_serviced_recursive.
 *   v2: cpu.stat user_usec / system_usec / nr_periods / nr_throttled /
 *       throttled_usec, cpu.max, cpu.weight (as shares); memory.stat file /
 *       file_mapped / kernel (kernel_stack + slab before 5.18);
 *       memory.swap.current, memory.events max (the failcnt), memory.peak,
 *       memory.max, memory.swap.max; pids.max; io.stat.
 * Apart from those, on a worker thread, as it takes a readlink per fd
 * (cgroup_count_fds_pid): the fds and sockets of the processes in
 * cgroup.procs, from /proc/<pid>/fd.
 *
 * What is read here comes from the kernel, but the paths come from
 * /proc/<pid>/cgroup of container processes, and relpaths from requests: both
 * are checked (cgroup_relpath_clean) and every directory below a hierarchy
 * root is opened component by component with O_NOFOLLOW (cgroup_open_below),
 * so nothing resolves outside the hierarchy. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtimed/cgroup.h"
#include "runtimed/cgroup_priv.h"

/* The largest cgroup file we read is memory.stat (about 1.5 KiB on 6.x
 * kernels); 64 KiB leaves room for kernels to come without letting a
 * strange file eat memory. /proc/<pid>/cgroup lists one line per hierarchy.
 * net/dev of a host-network pod lists every veth of the node: a line is
 * under 256 bytes, so 4 MiB is some 16,000 interfaces. */
#define CGROUP_FILE_MAX (64 * 1024)
#define PROC_CGROUP_MAX (64 * 1024)
#define NETDEV_FILE_MAX (4 * 1024 * 1024)

/* --- reading and parsing ------------------------------------------------- */

/* The whole of dirfd/name (name absolute for AT_FDCWD), at most max bytes,
 * NUL-terminated: 0, or -errno (-EFBIG when larger than max). */
static int read_bounded(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 4096;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap >= max + 1)
				return -EFBIG;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* The whole of <proc>/<pid>/<file>, bounded by max, as text without NUL
 * bytes; *ret_path names it for messages. 0, or -1 with err set:
 * CRISP_E_NOT_FOUND when the process is gone. */
static int proc_file_read(const char *proc, pid_t pid, const char *file, size_t max,
			  char **ret_path, char **ret_text, size_t *ret_len,
			  struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	int r;

	if (!proc)
		return err_set(err, CRISP_E_INVALID, "no /proc to read");
	if (pid <= 0)
		return err_set(err, CRISP_E_INVALID, "pid %d is not a process id", (int)pid);
	path = xasprintf("%s/%d/%s", proc, (int)pid, file);
	r = read_bounded(AT_FDCWD, path, max, &text, ret_len);
	if (r == -ENOENT || r == -ESRCH)
		return err_set(err, CRISP_E_NOT_FOUND, "process %d is gone (no %s)", (int)pid,
			       path);
	if (r < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, r, "reading %s", path);
	if (memchr(text, '\0', *ret_len))
		return err_set(err, CRISP_E_INTERNAL, "%s: contains a NUL byte", path);
	*ret_path = TAKE_PTR(path);
	*ret_text = TAKE_PTR(text);
	return 0;
}

/* A decimal number spanning exactly s[0..n): digits only, no sign, no
 * overflow. */
static int parse_u64_span(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* A file holding one number: "123\n". */
static int parse_single(const char *text, size_t len, const char *what, uint64_t *ret,
			struct crisp_error *err)
{
	char shown[40];
	size_t n = len;

	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (parse_u64_span(text, n, ret) < 0)
		return err_set(err, CRISP_E_INTERNAL, "%s: '%s' is not a number", what,
			       cgroup_printable(text, n, shown, sizeof(shown)));
	return 0;
}

struct keyed {
	const char *key;
	uint64_t *val;
	bool required, found;
};

/* A flat keyed file ("key value\n" lines: memory.stat, cpu.stat,
 * memory.events, memory.oom_control). Every line must have that shape; the
 * values of the keys asked for must be numbers, seen once. */
static int parse_keyed(const char *text, size_t len, struct keyed *keys, size_t nkeys,
		       const char *what, struct crisp_error *err)
{
	const char *p = text, *end = text + len;
	char shown[40];
	unsigned lineno = 0;

	if (memchr(text, '\0', len))
		return err_set(err, CRISP_E_INTERNAL, "%s: contains a NUL byte", what);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *sp;
		size_t klen;

		lineno++;
		sp = memchr(p, ' ', (size_t)(eol - p));
		if (!sp || sp == p || sp + 1 == eol || memchr(sp + 1, ' ', (size_t)(eol - sp - 1)))
			return err_set(
				err, CRISP_E_INTERNAL, "%s: line %u ('%s') is not 'key value'",
				what, lineno,
				cgroup_printable(p, (size_t)(eol - p), shown, sizeof(shown)));
		klen = (size_t)(sp - p);
		for (size_t i = 0; i < nkeys; i++) {
			if (strlen(keys[i].key) != klen || memcmp(keys[i].key, p, klen) != 0)
				continue;
			if (keys[i].found)
				return err_set(err, CRISP_E_INTERNAL, "%s: %s appears twice", what,
					       keys[i].key);
			if (parse_u64_span(sp + 1, (size_t)(eol - sp - 1), keys[i].val) < 0)
				return err_set(err, CRISP_E_INTERNAL, "%s: %s '%s' is not a number",
					       what, keys[i].key,
					       cgroup_printable(sp + 1, (size_t)(eol - sp - 1),
								shown, sizeof(shown)));
			keys[i].found = true;
		}
		p = nl ? nl + 1 : end;
	}
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].required && !keys[i].found)
			return err_set(err, CRISP_E_INTERNAL, "%s: no %s", what, keys[i].key);
	return 0;
}

/* The blkio entry of major:minor, made if new; NULL when the table is full. */
static struct cgroup_blkio_dev *blkio_dev(struct cgroup_stats *st, uint32_t major, uint32_t minor)
{
	for (size_t i = 0; i < st->n_blkio; i++)
		if (st->blkio[i].major == major && st->blkio[i].minor == minor)
			return &st->blkio[i];
	if (st->n_blkio == CGROUP_BLKIO_DEV_MAX)
		return NULL;
	st->blkio[st->n_blkio] = (struct cgroup_blkio_dev){ .major = major, .minor = minor };
	return &st->blkio[st->n_blkio++];
}

/* "major:minor" spanning exactly s[0..n). */
static int parse_devnum(const char *s, size_t n, uint32_t *major, uint32_t *minor)
{
	const char *colon = memchr(s, ':', n);
	uint64_t ma, mi;

	if (!colon || parse_u64_span(s, (size_t)(colon - s), &ma) < 0 ||
	    parse_u64_span(colon + 1, (size_t)(s + n - colon - 1), &mi) < 0 || ma > UINT32_MAX ||
	    mi > UINT32_MAX)
		return -EINVAL;
	*major = (uint32_t)ma;
	*minor = (uint32_t)mi;
	return 0;
}

/* Split line[0..n) at single spaces into at most max fields; the count, or
 * -1 when there are more, or an empty one. */
static int split_fields(const char *line, size_t n, const char **f, size_t *flen, int max)
{
	int k = 0;

	for (const char *p = line, *end = line + n; p <= end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *e = sp ? sp : end;

		if (k == max || e == p)
			return -1;
		f[k] = p;
		flen[k++] = (size_t)(e - p);
		if (!sp)
			break;
		p = sp + 1;
	}
	return k;
}

int cgroup_parse_blkio_v1(const char *text, size_t len, bool bytes, struct cgroup_stats *st,
			  const char *what, struct crisp_error *err)
{
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	char shown[40];

	if (memchr(text, '\0', len))
		return err_set(err, CRISP_E_INTERNAL, "%s: contains a NUL byte", what);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *f[3];
		size_t flen[3], n = (size_t)(eol - p);
		struct cgroup_blkio_dev *d;
		uint32_t major, minor;
		uint64_t v;
		int k = split_fields(p, n, f, flen, 3);

		lineno++;
		/* "Total N" closes the table (no device: the sum of all). */
		if (k == 2 && flen[0] == 5 && memcmp(f[0], "Total", 5) == 0 &&
		    parse_u64_span(f[1], flen[1], &v) == 0) {
			p = nl ? nl + 1 : end;
			continue;
		}
		if (k != 3 || parse_devnum(f[0], flen[0], &major, &minor) < 0 ||
		    parse_u64_span(f[2], flen[2], &v) < 0)
			return err_set(err, CRISP_E_INTERNAL,
				       "%s: line %u ('%s') is not 'major:minor operation count'",
				       what, lineno, cgroup_printable(p, n, shown, sizeof(shown)));
		d = blkio_dev(st, major, minor);
		if (d && flen[1] == 4 && memcmp(f[1], "Read", 4) == 0)
			*(bytes ? &d->read_bytes : &d->reads) = v;
		else if (d && flen[1] == 5 && memcmp(f[1], "Write", 5) == 0)
			*(bytes ? &d->write_bytes : &d->writes) = v;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int cgroup_parse_io_stat(const char *text, size_t len, struct cgroup_stats *st, const char *what,
			 struct crisp_error *err)
{
	static const char *const keys[] = { "rbytes", "wbytes", "rios", "wios" };
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	char shown[40];

	if (memchr(text, '\0', len))
		return err_set(err, CRISP_E_INTERNAL, "%s: contains a NUL byte", what);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *f[32];
		size_t flen[32], n = (size_t)(eol - p);
		uint64_t vals[ARRAY_SIZE(keys)] = { 0 };
		struct cgroup_blkio_dev *d;
		uint32_t major, minor;
		int k = split_fields(p, n, f, flen, (int)ARRAY_SIZE(f));

		lineno++;
		if (k < 1 || parse_devnum(f[0], flen[0], &major, &minor) < 0)
			return err_set(err, CRISP_E_INTERNAL,
				       "%s: line %u ('%s') is not 'major:minor key=value...'", what,
				       lineno, cgroup_printable(p, n, shown, sizeof(shown)));
		for (int i = 1; i < k; i++) {
			const char *eq = memchr(f[i], '=', flen[i]);
			size_t klen = eq ? (size_t)(eq - f[i]) : 0;
			uint64_t v;

			/* Values are numbers; the kernel has no other kind here. */
			if (!eq || klen == 0 || parse_u64_span(eq + 1, flen[i] - klen - 1, &v) < 0)
				return err_set(
					err, CRISP_E_INTERNAL,
					"%s: line %u: '%s' is not key=number", what, lineno,
					cgroup_printable(f[i], flen[i], shown, sizeof(shown)));
			for (size_t j = 0; j < ARRAY_SIZE(keys); j++)
				if (strlen(keys[j]) == klen && memcmp(keys[j], f[i], klen) == 0)
					vals[j] = v;
		}
		d = blkio_dev(st, major, minor);
		if (d) {
			d->read_bytes = vals[0];
			d->write_bytes = vals[1];
			d->reads = vals[2];
			d->writes = vals[3];
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int cgroup_parse_limit(const char *text, size_t len, uint64_t max_value, uint64_t *ret,
		       const char *what, struct crisp_error *err)
{
	size_t n = len;

	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (n == 3 && memcmp(text, "max", 3) == 0) {
		*ret = max_value;
		return 0;
	}
	return parse_single(text, len, what, ret, err);
}

int cgroup_parse_cpu_max(const char *text, size_t len, uint64_t *period, const char *what,
			 struct crisp_error *err)
{
	const char *f[2];
	size_t flen[2], n = len;
	uint64_t quota;
	char shown[40];

	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (split_fields(text, n, f, flen, 2) != 2 ||
	    (!(flen[0] == 3 && memcmp(f[0], "max", 3) == 0) &&
	     parse_u64_span(f[0], flen[0], &quota) < 0) ||
	    parse_u64_span(f[1], flen[1], period) < 0)
		return err_set(err, CRISP_E_INTERNAL, "%s: '%s' is not 'quota|max period'", what,
			       cgroup_printable(text, n, shown, sizeof(shown)));
	return 0;
}

uint64_t cgroup_weight_to_shares(uint64_t weight)
{
	/* The inverse of the conversion runc applies to shares (2-262144 onto
	 * 1-10000), as cAdvisor computes it: lossy (1024 shares -> 39 -> 998),
	 * 0 for a weight outside the kernel's range. */
	if (weight < 1 || weight > 10000)
		return 0;
	return 2 + ((weight - 1) * 262142) / 9999;
}

/* --- /proc/<pid>/cgroup ------------------------------------------------------ */

/* Where a process sits in one v1 hierarchy: the path, and the controller
 * list of the line ("cpu,cpuacct"), which names the hierarchy's directory
 * when the distribution made no per-controller symlink. */
struct v1_place {
	char *rel, *list;
};

struct proc_cgroups {
	struct v1_place cpuacct, memory, pids, cpu, blkio;
	char *unified; /* from "0::/path"; NULL if there is no such line */
};

static void proc_cgroups_free(struct proc_cgroups *pc)
{
	struct v1_place *places[] = { &pc->cpuacct, &pc->memory, &pc->pids, &pc->cpu, &pc->blkio };

	for (size_t i = 0; i < ARRAY_SIZE(places); i++) {
		free(places[i]->rel);
		free(places[i]->list);
	}
	free(pc->unified);
	memset(pc, 0, sizeof(*pc));
}

static int proc_cgroups_line(struct proc_cgroups *pc, char *line, unsigned lineno, const char *what,
			     struct crisp_error *err)
{
	char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *rel, *list;
	char *save = NULL;
	uint64_t id;
	char shown[40];
	struct crisp_error sub;

	if (!c2 || parse_u64_span(line, (size_t)(c1 - line), &id) < 0 || c2[1] != '/')
		return err_set(err, CRISP_E_INTERNAL,
			       "%s: line %u ('%s') is not 'id:controllers:/path'", what, lineno,
			       cgroup_printable(line, strlen(line), shown, sizeof(shown)));
	*c1 = *c2 = '\0';
	/* The list also names the hierarchy's directory (stats_in): never a
	 * path. */
	if (strchr(c1 + 1, '/'))
		return err_set(err, CRISP_E_INTERNAL, "%s: line %u: controller list '%s' has a '/'",
			       what, lineno,
			       cgroup_printable(c1 + 1, strlen(c1 + 1), shown, sizeof(shown)));
	rel = cgroup_relpath_clean(c2 + 1, &sub);
	if (!rel)
		return err_set(err, CRISP_E_INTERNAL,
			       "%s: line %u: %s (outside runtimed's cgroup namespace?)", what,
			       lineno, sub.msg);
	if (c1 + 1 == c2) {
		/* Only the v2 hierarchy has no controller list, and id 0. */
		if (id != 0 || pc->unified) {
			free(rel);
			return err_set(
				err, CRISP_E_INTERNAL,
				"%s: line %u has no controllers but is not the one '0::' line",
				what, lineno);
		}
		pc->unified = rel;
		return 0;
	}
	list = xstrdup(c1 + 1);
	for (char *ctrl = strtok_r(c1 + 1, ",", &save); ctrl; ctrl = strtok_r(NULL, ",", &save)) {
		struct v1_place *place = streq(ctrl, "cpuacct")  ? &pc->cpuacct
					 : streq(ctrl, "memory") ? &pc->memory
					 : streq(ctrl, "pids")   ? &pc->pids
					 : streq(ctrl, "cpu")    ? &pc->cpu
					 : streq(ctrl, "blkio")  ? &pc->blkio
								 : NULL;
		if (!place)
			continue;
		if (place->rel) {
			free(rel);
			free(list);
			return err_set(err, CRISP_E_INTERNAL, "%s: controller %s is listed twice",
				       what, ctrl);
		}
		place->rel = xstrdup(rel);
		place->list = xstrdup(list);
	}
	free(rel);
	free(list);
	return 0;
}

static int proc_cgroups_read(const char *proc, pid_t pid, struct proc_cgroups *pc,
			     struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	size_t len;
	unsigned lineno = 0;

	memset(pc, 0, sizeof(*pc));
	if (proc_file_read(proc, pid, "cgroup", PROC_CGROUP_MAX, &path, &text, &len, err) < 0)
		return -1;
	/* Every line, empty ones included (they are errors), up to the end. */
	for (char *line = text, *nl; line < text + len; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		else
			nl = text + len;
		if (proc_cgroups_line(pc, line, ++lineno, path, err) < 0) {
			proc_cgroups_free(pc);
			return -1;
		}
	}
	if (lineno == 0)
		return err_set(err, CRISP_E_INTERNAL, "%s: lists no cgroup", path);
	return 0;
}

/* --- statistics ------------------------------------------------------------- */

/* Read a statistics file of an open cgroup directory: 1 when read, 0 when
 * it does not exist and missing_ok, -1 with err set otherwise. */
static int read_stat_file(int cgfd, const char *cgpath, const char *name, bool missing_ok,
			  char **text, size_t *len, struct crisp_error *err)
{
	int r = read_bounded(cgfd, name, CGROUP_FILE_MAX, text, len);

	if (r == -ENOENT && missing_ok)
		return 0;
	if (r == -ENOENT || r == -ENODEV)
		return err_set_errno(err, CRISP_E_NOT_FOUND, r,
				     "reading %s/%s (cgroup removed meanwhile?)", cgpath, name);
	if (r < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, r, "reading %s/%s", cgpath, name);
	return 1;
}

/* Read a one-number file; 1, 0 (missing and missing_ok) or -1. */
static int stat_single(int cgfd, const char *cgpath, const char *name, bool missing_ok,
		       uint64_t *ret, struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL;
	size_t len;
	int r = read_stat_file(cgfd, cgpath, name, missing_ok, &text, &len, err);

	if (r <= 0)
		return r;
	what = xasprintf("%s/%s", cgpath, name);
	return parse_single(text, len, what, ret, err) < 0 ? -1 : 1;
}

static int stat_keyed(int cgfd, const char *cgpath, const char *name, struct keyed *keys,
		      size_t nkeys, struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL;
	size_t len;
	int r = read_stat_file(cgfd, cgpath, name, false, &text, &len, err);

	if (r < 0)
		return r;
	what = xasprintf("%s/%s", cgpath, name);
	return parse_keyed(text, len, keys, nkeys, what, err);
}

static uint64_t floor_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* What a stats reader reads beyond the numbers kubelet's stats need:
 * extras, cAdvisor's further metrics, which runtimed serves for containers
 * only (a pod's cgroup is read for its summary). */
struct read_opts {
	bool extras;
};

/* An optional one-number file: 0 and *ret untouched when missing. */
static int opt_single(int cgfd, const char *cgpath, const char *name, uint64_t *ret,
		      struct crisp_error *err)
{
	return stat_single(cgfd, cgpath, name, true, ret, err) < 0 ? -1 : 0;
}

/* An optional v2 limit file, "max" or a number. */
static int opt_limit(int cgfd, const char *cgpath, const char *name, uint64_t max_value,
		     uint64_t *ret, struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL;
	size_t len;
	int r = read_stat_file(cgfd, cgpath, name, true, &text, &len, err);

	if (r <= 0)
		return r;
	what = xasprintf("%s/%s", cgpath, name);
	return cgroup_parse_limit(text, len, max_value, ret, what, err);
}

/* An optional keyed file: its keys stay 0 when it is missing. */
static int opt_keyed(int cgfd, const char *cgpath, const char *name, struct keyed *keys,
		     size_t nkeys, struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL;
	size_t len;
	int r = read_stat_file(cgfd, cgpath, name, true, &text, &len, err);

	if (r <= 0)
		return r;
	what = xasprintf("%s/%s", cgpath, name);
	return parse_keyed(text, len, keys, nkeys, what, err);
}

static int v1_cpu(int cgfd, const char *cgpath, const struct read_opts *o, struct cgroup_stats *st,
		  struct crisp_error *err)
{
	uint64_t user_ticks = 0, system_ticks = 0, user_ns = 0, sys_ns = 0;
	struct keyed tick_keys[] = {
		{ "user", &user_ticks, true, false },
		{ "system", &system_ticks, true, false },
	};
	int r = stat_single(cgfd, cgpath, "cpuacct.usage", true, &st->cpu_usage_ns, err);
	int ru, rs;

	st->have_cpu = r > 0;
	if (r <= 0 || !o->extras)
		return r;
	/* Nanoseconds since 4.7; before, cpuacct.stat in USER_HZ ticks. */
	ru = stat_single(cgfd, cgpath, "cpuacct.usage_user", true, &user_ns, err);
	if (ru < 0)
		return -1;
	rs = stat_single(cgfd, cgpath, "cpuacct.usage_sys", true, &sys_ns, err);
	if (rs < 0)
		return -1;
	if (ru > 0 && rs > 0) {
		st->cpu_user_ns = user_ns;
		st->cpu_system_ns = sys_ns;
		return 0;
	}
	if (opt_keyed(cgfd, cgpath, "cpuacct.stat", tick_keys, ARRAY_SIZE(tick_keys), err) < 0)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz > 0) {
		st->cpu_user_ns = user_ticks * (1000000000ull / (uint64_t)hz);
		st->cpu_system_ns = system_ticks * (1000000000ull / (uint64_t)hz);
	}
	return 0;
}

/* v1 cpu controller: CFS bandwidth counters and the cgroup's settings. */
static int v1_cpu_ctl(int cgfd, const char *cgpath, const struct read_opts *o,
		      struct cgroup_stats *st, struct crisp_error *err)
{
	struct keyed keys[] = {
		{ "nr_periods", &st->cfs_periods, false, false },
		{ "nr_throttled", &st->cfs_throttled_periods, false, false },
		{ "throttled_time", &st->cfs_throttled_ns, false, false },
	};

	(void)o;
	if (opt_keyed(cgfd, cgpath, "cpu.stat", keys, ARRAY_SIZE(keys), err) < 0 ||
	    opt_single(cgfd, cgpath, "cpu.shares", &st->cpu_shares, err) < 0 ||
	    opt_single(cgfd, cgpath, "cpu.cfs_period_us", &st->cpu_period_us, err) < 0)
		return -1;
	return 0;
}

static int v1_memory(int cgfd, const char *cgpath, const struct read_opts *o,
		     struct cgroup_stats *st, struct crisp_error *err)
{
	uint64_t inactive_file = 0;
	struct keyed stat_keys[] = {
		{ "total_inactive_file", &inactive_file, true, false },
		{ "total_rss", &st->memory_rss, true, false },
		{ "total_pgfault", &st->page_faults, true, false },
		{ "total_pgmajfault", &st->major_page_faults, true, false },
		{ "total_cache", &st->memory_cache, false, false },
		{ "total_mapped_file", &st->memory_mapped_file, false, false },
		/* Only with swap accounting (swapaccount=1). */
		{ "total_swap", &st->memory_swap, false, false },
	};
	/* oom_kill appeared in kernel 4.13; older ones count no kills. */
	struct keyed oom_keys[] = { { "oom_kill", &st->oom_kills, false, false } };
	int r = stat_single(cgfd, cgpath, "memory.usage_in_bytes", true, &st->memory_usage, err);

	if (r <= 0)
		return r;
	if (stat_keyed(cgfd, cgpath, "memory.stat", stat_keys, ARRAY_SIZE(stat_keys), err) < 0 ||
	    stat_keyed(cgfd, cgpath, "memory.oom_control", oom_keys, ARRAY_SIZE(oom_keys), err) < 0)
		return -1;
	if (o->extras &&
	    (opt_single(cgfd, cgpath, "memory.failcnt", &st->memory_failcnt, err) < 0 ||
	     opt_single(cgfd, cgpath, "memory.max_usage_in_bytes", &st->memory_max_usage, err) <
		     0 ||
	     opt_single(cgfd, cgpath, "memory.kmem.usage_in_bytes", &st->memory_kernel, err) < 0 ||
	     opt_single(cgfd, cgpath, "memory.limit_in_bytes", &st->memory_limit, err) < 0 ||
	     opt_single(cgfd, cgpath, "memory.memsw.limit_in_bytes", &st->memory_swap_limit, err) <
		     0))
		return -1;
	st->memory_working_set = floor_sub(st->memory_usage, inactive_file);
	st->have_memory = true;
	return 0;
}

static int any_pids(int cgfd, const char *cgpath, const struct read_opts *o,
		    struct cgroup_stats *st, struct crisp_error *err)
{
	int r = stat_single(cgfd, cgpath, "pids.current", true, &st->pids, err);

	st->have_pids = r > 0;
	if (r < 0)
		return -1;
	/* "max": no limit, which cAdvisor shows as 0. */
	if (!o->extras)
		return 0;
	return opt_limit(cgfd, cgpath, "pids.max", 0, &st->pids_max, err) < 0 ? -1 : 0;
}

/* v1 blkio: the throttle files count every I/O whatever the scheduler (the
 * CFQ ones are gone since 5.0); the recursive ones include child cgroups. */
static int v1_blkio(int cgfd, const char *cgpath, const struct read_opts *o,
		    struct cgroup_stats *st, struct crisp_error *err)
{
	static const struct {
		const char *name, *flat;
		bool bytes;
	} files[] = {
		{ "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes",
		  true },
		{ "blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced", false },
	};

	(void)o;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *text = NULL, *what = NULL;
		const char *name = files[i].name;
		size_t len;
		int r = read_stat_file(cgfd, cgpath, name, true, &text, &len, err);

		if (r == 0) {
			name = files[i].flat;
			r = read_stat_file(cgfd, cgpath, name, true, &text, &len, err);
		}
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		what = xasprintf("%s/%s", cgpath, name);
		if (cgroup_parse_blkio_v1(text, len, files[i].bytes, st, what, err) < 0)
			return -1;
	}
	return 0;
}

static int v2_cpu(int cgfd, const char *cgpath, const struct read_opts *o, struct cgroup_stats *st,
		  struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL, *max_text = NULL, *max_what = NULL;
	uint64_t usec = 0, user = 0, sys = 0, throttled = 0, weight = 0;
	struct keyed keys[] = {
		{ "usage_usec", &usec, true, false },
		{ "user_usec", &user, false, false },
		{ "system_usec", &sys, false, false },
		/* These three only where the cpu controller is enabled. */
		{ "nr_periods", &st->cfs_periods, false, false },
		{ "nr_throttled", &st->cfs_throttled_periods, false, false },
		{ "throttled_usec", &throttled, false, false },
	};
	size_t len, max_len;
	int r = read_stat_file(cgfd, cgpath, "cpu.stat", true, &text, &len, err);

	if (r <= 0)
		return r;
	what = xasprintf("%s/cpu.stat", cgpath);
	if (parse_keyed(text, len, keys, ARRAY_SIZE(keys), what, err) < 0)
		return -1;
	if (usec > UINT64_MAX / 1000 || user > UINT64_MAX / 1000 || sys > UINT64_MAX / 1000 ||
	    throttled > UINT64_MAX / 1000)
		return err_set(err, CRISP_E_INTERNAL, "%s: a usec counter is out of range", what);
	st->cpu_usage_ns = usec * 1000;
	st->cpu_user_ns = user * 1000;
	st->cpu_system_ns = sys * 1000;
	st->cfs_throttled_ns = throttled * 1000;
	st->have_cpu = true;
	if (!o->extras)
		return 0;
	r = read_stat_file(cgfd, cgpath, "cpu.max", true, &max_text, &max_len, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		max_what = xasprintf("%s/cpu.max", cgpath);
		if (cgroup_parse_cpu_max(max_text, max_len, &st->cpu_period_us, max_what, err) < 0)
			return -1;
	}
	if (opt_single(cgfd, cgpath, "cpu.weight", &weight, err) < 0)
		return -1;
	st->cpu_shares = cgroup_weight_to_shares(weight);
	return 0;
}

static int v2_memory(int cgfd, const char *cgpath, const struct read_opts *o,
		     struct cgroup_stats *st, struct crisp_error *err)
{
	uint64_t inactive_file = 0, kernel = 0, kernel_stack = 0, slab = 0;
	struct keyed stat_keys[] = {
		{ "inactive_file", &inactive_file, true, false },
		{ "anon", &st->memory_rss, true, false },
		{ "pgfault", &st->page_faults, true, false },
		{ "pgmajfault", &st->major_page_faults, true, false },
		{ "file", &st->memory_cache, false, false },
		{ "file_mapped", &st->memory_mapped_file, false, false },
		{ "kernel", &kernel, false, false }, /* since 5.18 */
		{ "kernel_stack", &kernel_stack, false, false },
		{ "slab", &slab, false, false },
	};
	/* "max" counts the times usage hit memory.max: v1's failcnt. */
	struct keyed event_keys[] = {
		{ "oom_kill", &st->oom_kills, false, false },
		{ "max", &st->memory_failcnt, false, false },
	};
	int r = stat_single(cgfd, cgpath, "memory.current", true, &st->memory_usage, err);

	if (r <= 0)
		return r;
	if (stat_keyed(cgfd, cgpath, "memory.stat", stat_keys, ARRAY_SIZE(stat_keys), err) < 0 ||
	    stat_keyed(cgfd, cgpath, "memory.events", event_keys, ARRAY_SIZE(event_keys), err) < 0)
		return -1;
	st->memory_kernel = stat_keys[6].found ? kernel : kernel_stack + slab;
	/* memory.peak since 5.19; "max" in the limit files is no limit, which
	 * runc reads as the largest number. */
	if (o->extras &&
	    (opt_single(cgfd, cgpath, "memory.swap.current", &st->memory_swap, err) < 0 ||
	     opt_single(cgfd, cgpath, "memory.peak", &st->memory_max_usage, err) < 0 ||
	     opt_limit(cgfd, cgpath, "memory.max", UINT64_MAX, &st->memory_limit, err) < 0 ||
	     opt_limit(cgfd, cgpath, "memory.swap.max", UINT64_MAX, &st->memory_swap_limit, err) <
		     0))
		return -1;
	st->memory_working_set = floor_sub(st->memory_usage, inactive_file);
	st->have_memory = true;
	return 0;
}

static int v2_io(int cgfd, const char *cgpath, const struct read_opts *o, struct cgroup_stats *st,
		 struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL, *what = NULL;
	size_t len;
	int r = read_stat_file(cgfd, cgpath, "io.stat", true, &text, &len, err);

	(void)o;
	if (r <= 0)
		return r;
	what = xasprintf("%s/io.stat", cgpath);
	return cgroup_parse_io_stat(text, len, st, what, err);
}

typedef int (*stat_reader)(int cgfd, const char *cgpath, const struct read_opts *o,
			   struct cgroup_stats *st, struct crisp_error *err);

/* Open the cgroup <root>/<hier>/<rel>: 1 with *ret_fd and *ret_cgpath (its
 * path for messages), 0 (nothing open) when its hierarchy is not mounted
 * or, optional (a controller runc may not have joined), the cgroup does
 * not exist, or -1. A cgroup that does not exist
 * is CRISP_E_NOT_FOUND: the process was in it a moment ago, or the caller
 * named a cgroup that is not there. hier NULL: rootfd is the hierarchy.
 * alt: the hierarchy's directory when there is no <root>/<hier> (the
 * "cpu,cpuacct" of a line). */
static int cgroup_open_in(int rootfd, const char *root, const char *hier, const char *alt,
			  const char *rel, bool optional, int *ret_fd, char **ret_cgpath,
			  struct crisp_error *err)
{
	_cleanup_close_ int hierfd = -1;
	_cleanup_free_ char *cgpath = NULL;
	const char *dirname = hier;
	int cgfd;

	if (hier) {
		hierfd = openat(rootfd, hier, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (hierfd < 0 && errno == ENOENT && alt && !streq(alt, hier)) {
			dirname = alt;
			hierfd = openat(rootfd, alt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		if (hierfd < 0 && errno == ENOENT)
			return 0;
		if (hierfd < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "opening %s/%s", root,
					     dirname);
	}
	cgpath = hier ? xasprintf("%s/%s/%s", root, dirname, rel) : xasprintf("%s/%s", root, rel);
	cgfd = cgroup_open_below(hier ? hierfd : rootfd, rel);
	if (cgfd == -ENOENT && optional)
		return 0;
	if (cgfd == -ENOENT)
		return err_set_errno(err, CRISP_E_NOT_FOUND, cgfd, "cgroup %s", cgpath);
	if (cgfd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, cgfd, "opening cgroup %s", cgpath);
	*ret_fd = cgfd;
	*ret_cgpath = TAKE_PTR(cgpath);
	return 1;
}

/* Run reader (the controller's files) on the cgroup <root>/<hier>/<rel>
 * (see cgroup_open_in): a hierarchy not mounted, or an optional cgroup that
 * does not exist, is skipped. */
static int stats_in(int rootfd, const char *root, const char *hier, const char *alt,
		    const char *rel, bool optional, stat_reader reader, const struct read_opts *o,
		    struct cgroup_stats *st, struct crisp_error *err)
{
	_cleanup_free_ char *cgpath = NULL;
	_cleanup_close_ int cgfd = -1;
	int r = cgroup_open_in(rootfd, root, hier, alt, rel, optional, &cgfd, &cgpath, err);

	if (r <= 0)
		return r;
	return reader(cgfd, cgpath, o, st, err);
}

/* The place's path, or its parent's when parent is asked; NULL: skip. */
static char *place_rel(const char *rel, bool parent)
{
	if (!rel)
		return NULL;
	return parent ? cgroup_relpath_parent(rel) : xstrdup(rel);
}

/* v1 stats of the places (each path NULL: not in that hierarchy). cpu and
 * blkio are optional: their numbers are extras, not worth failing the
 * cgroup's other statistics for. */
static int stats_v1(int rootfd, const char *root, const struct proc_cgroups *pc, bool parent,
		    const struct read_opts *o, struct cgroup_stats *st, struct crisp_error *err)
{
	struct {
		const char *hier;
		const struct v1_place *place;
		stat_reader read;
		bool optional;
	} ctrls[] = {
		{ "cpuacct", &pc->cpuacct, v1_cpu, false },
		{ "memory", &pc->memory, v1_memory, false },
		{ "pids", &pc->pids, any_pids, false },
		{ "cpu", &pc->cpu, v1_cpu_ctl, true },
		{ "blkio", &pc->blkio, v1_blkio, true },
	};
	/* cpu and blkio hold extras only. */
	size_t n = o->extras ? ARRAY_SIZE(ctrls) : 3;

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = place_rel(ctrls[i].place->rel, parent);

		if (rel && stats_in(rootfd, root, ctrls[i].hier, ctrls[i].place->list, rel,
				    ctrls[i].optional, ctrls[i].read, o, st, err) < 0)
			return -1;
	}
	return 0;
}

static int stats_v2(int rootfd, const char *root, const char *unified, bool parent,
		    const struct read_opts *o, struct cgroup_stats *st, struct crisp_error *err)
{
	/* io.stat holds extras only. */
	static const stat_reader readers[] = { v2_cpu, v2_memory, any_pids, v2_io };
	_cleanup_free_ char *rel = place_rel(unified, parent);
	size_t n = o->extras ? ARRAY_SIZE(readers) : 3;

	for (size_t i = 0; rel && i < n; i++)
		if (stats_in(rootfd, root, NULL, NULL, rel, false, readers[i], o, st, err) < 0)
			return -1;
	return 0;
}

int cgroup_stats_pid_in(enum cgroup_mode mode, const char *root, const char *proc, pid_t pid,
			bool parent, struct cgroup_stats *st, struct crisp_error *err)
{
	struct proc_cgroups pc;
	struct cgroup_stats *s = xcalloc(1, sizeof(*s));
	/* A pod (the parent) is read for its summary only. */
	const struct read_opts o = { !parent };
	_cleanup_close_ int rootfd = -1;
	int r;

	if (mode == CGROUP_UNAVAILABLE) {
		free(s);
		return err_set(err, CRISP_E_UNAVAILABLE, "no cgroup hierarchy at %s",
			       root ? root : "(null)");
	}
	rootfd = cgroup_open_root(root, err);
	if (rootfd < 0 || proc_cgroups_read(proc, pid, &pc, err) < 0) {
		free(s);
		return -1;
	}
	if (mode == CGROUP_V2 && !pc.unified) {
		proc_cgroups_free(&pc);
		free(s);
		return err_set(err, CRISP_E_INTERNAL,
			       "%s/%d/cgroup has no '0::' line on a cgroup v2 host", proc,
			       (int)pid);
	}
	/* Hybrid hosts bind every controller to v1; their v2 hierarchy has no
	 * controllers, so statistics come from v1 there. */
	if (mode == CGROUP_V2)
		r = stats_v2(rootfd, root, pc.unified, parent, &o, s, err);
	else
		r = stats_v1(rootfd, root, &pc, parent, &o, s, err);
	proc_cgroups_free(&pc);
	if (r == 0)
		*st = *s;
	free(s);
	if (r < 0)
		return err_prefix(err, "stats of process %d", (int)pid);
	return 0;
}

int cgroup_stats_pid(const char *root, const char *proc, pid_t pid, struct cgroup_stats *st,
		     struct crisp_error *err)
{
	return cgroup_stats_pid_in(cgroup_detect(root), root, proc, pid, false, st, err);
}

int cgroup_stats_pid_parent(const char *root, const char *proc, pid_t pid, struct cgroup_stats *st,
			    struct crisp_error *err)
{
	return cgroup_stats_pid_in(cgroup_detect(root), root, proc, pid, true, st, err);
}

int cgroup_stats_path(enum cgroup_mode mode, const char *root, const char *relpath,
		      struct cgroup_stats *st, struct crisp_error *err)
{
	struct proc_cgroups pc = { 0 };
	struct cgroup_stats s = { 0 };
	const struct read_opts o = { true };
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ char *rel = NULL;
	int r;

	rootfd = cgroup_open_at(mode, root, relpath, &rel, err);
	if (rootfd < 0)
		return -1;
	if (mode == CGROUP_V2) {
		r = stats_v2(rootfd, root, rel, false, &o, &s, err);
	} else {
		/* The same path in every hierarchy, as runc's cgroupfs driver
		 * creates it; "cpu,cpuacct" covers hosts without symlinks. */
		pc.cpuacct = (struct v1_place){ rel, (char *)"cpu,cpuacct" };
		pc.cpu = (struct v1_place){ rel, (char *)"cpu,cpuacct" };
		pc.memory = (struct v1_place){ rel, NULL };
		pc.pids = (struct v1_place){ rel, NULL };
		pc.blkio = (struct v1_place){ rel, NULL };
		r = stats_v1(rootfd, root, &pc, false, &o, &s, err);
	}
	if (r < 0)
		return err_prefix(err, "stats of cgroup %s", relpath);
	*st = s;
	return 0;
}

/* --- open fds ---------------------------------------------------------------- */

/* A cgroup.procs of CGROUP_FDS_PROCS_MAX pids is under 32 KiB; one of more
 * than 1 MiB (some 100,000 processes) is an error, not a floor. */
#define PROCS_FILE_MAX (1024 * 1024)

/* Count the fds of <proc>/<pid>/fd, and those that are sockets, into c
 * while c->fds is under max_fds. A process gone meanwhile has none. */
static void count_pid_fds(const char *proc, uint64_t pid, uint64_t max_fds,
			  struct cgroup_fd_count *c)
{
	_cleanup_free_ char *path = xasprintf("%s/%llu/fd", proc, (unsigned long long)pid);
	DIR *d = opendir(path);

	c->procs++;
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		char target[16];
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		if (c->fds >= max_fds) {
			c->truncated = true;
			break;
		}
		c->fds++;
		len = readlinkat(dirfd(d), de->d_name, target, sizeof(target));
		if (len >= 8 && memcmp(target, "socket:[", 8) == 0)
			c->sockets++;
	}
	closedir(d);
}

/* The fds of the processes in cgroup.procs of the open cgroup, within lim. */
static int count_procs_fds(int cgfd, const char *cgpath, const char *proc,
			   const struct cgroup_fd_limits *lim, struct cgroup_fd_count *c,
			   struct crisp_error *err)
{
	_cleanup_free_ char *text = NULL;
	const char *p, *end;
	size_t len;
	char shown[40];
	int r = read_bounded(cgfd, "cgroup.procs", PROCS_FILE_MAX, &text, &len);

	/* No numbers rather than a 0 that would read as "no open files". */
	if (r == -ENOENT || r == -ENODEV)
		return err_set_errno(err, CRISP_E_NOT_FOUND, r,
				     "reading %s/cgroup.procs (cgroup removed meanwhile?)", cgpath);
	if (r < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, r, "reading %s/cgroup.procs", cgpath);
	for (p = text, end = text + len; p < end && !c->truncated;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		uint64_t pid;

		if (parse_u64_span(p, (size_t)(eol - p), &pid) < 0 || pid == 0 || pid > INT_MAX)
			return err_set(
				err, CRISP_E_INTERNAL, "%s/cgroup.procs: '%s' is not a pid", cgpath,
				cgroup_printable(p, (size_t)(eol - p), shown, sizeof(shown)));
		if (c->procs >= lim->procs) {
			c->truncated = true;
			break;
		}
		count_pid_fds(proc, pid, lim->fds, c);
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int cgroup_count_fds_pid(enum cgroup_mode mode, const char *root, const char *proc, pid_t pid,
			 const struct cgroup_fd_limits *lim, struct cgroup_fd_count *ret,
			 struct crisp_error *err)
{
	struct proc_cgroups pc;
	struct cgroup_fd_count c = { 0 };
	_cleanup_close_ int rootfd = -1, cgfd = -1;
	_cleanup_free_ char *cgpath = NULL;
	int r = 0;

	if (mode == CGROUP_UNAVAILABLE)
		return err_set(err, CRISP_E_UNAVAILABLE, "no cgroup hierarchy at %s",
			       root ? root : "(null)");
	if (!lim)
		return err_set(err, CRISP_E_INVALID, "no limits for counting fds");
	rootfd = cgroup_open_root(root, err);
	if (rootfd < 0 || proc_cgroups_read(proc, pid, &pc, err) < 0)
		return err_prefix(err, "fds of process %d", (int)pid);
	if (mode == CGROUP_V2 && !pc.unified) {
		r = err_set(err, CRISP_E_INTERNAL,
			    "%s/%d/cgroup has no '0::' line on a cgroup v2 host", proc, (int)pid);
	} else if (mode == CGROUP_V2) {
		r = cgroup_open_in(rootfd, root, NULL, NULL, pc.unified, false, &cgfd, &cgpath,
				   err);
	} else {
		/* Hybrid hosts bind every controller to v1 (see
		 * cgroup_stats_pid_in); any hierarchy the process is in
		 * lists the container's processes. */
		const struct {
			const char *hier;
			const struct v1_place *place;
		} tries[] = { { "pids", &pc.pids },
			      { "memory", &pc.memory },
			      { "cpuacct", &pc.cpuacct } };

		for (size_t i = 0; i < ARRAY_SIZE(tries) && r == 0; i++)
			if (tries[i].place->rel)
				r = cgroup_open_in(rootfd, root, tries[i].hier,
						   tries[i].place->list, tries[i].place->rel, false,
						   &cgfd, &cgpath, err);
	}
	proc_cgroups_free(&pc);
	if (r == 0)
		r = err_set(err, CRISP_E_NOT_FOUND,
			    "no mounted hierarchy (pids, memory, cpuacct) has its cgroup");
	if (r > 0)
		r = count_procs_fds(cgfd, cgpath, proc, lim, &c, err);
	if (r < 0)
		return err_prefix(err, "fds of process %d", (int)pid);
	*ret = c;
	return 0;
}

struct cgroup_fd_limits cgroup_fd_budget_next(const struct cgroup_fd_limits *left)
{
	return (struct cgroup_fd_limits){
		left->fds < CGROUP_FDS_COUNT_MAX ? left->fds : CGROUP_FDS_COUNT_MAX,
		left->procs < CGROUP_FDS_PROCS_MAX ? left->procs : CGROUP_FDS_PROCS_MAX,
	};
}

bool cgroup_fd_budget_take(struct cgroup_fd_limits *left, const struct cgroup_fd_limits *lim,
			   const struct cgroup_fd_count *c)
{
	bool call_bound = lim->fds < CGROUP_FDS_COUNT_MAX || lim->procs < CGROUP_FDS_PROCS_MAX;

	/* A count stays within its limits, which are within left. */
	left->fds -= c->fds < left->fds ? c->fds : left->fds;
	left->procs -= c->procs < left->procs ? c->procs : left->procs;
	return !(c->truncated && call_bound);
}

/* --- network ---------------------------------------------------------------- */

/* The kernel's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':'
 * or whitespace. */
static bool ifname_valid(const char *s, size_t n)
{
	if (n == 0 || n >= 16 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* One interface line of net/dev: "  eth0: 1 2 ... 16 numbers". */
static int netdev_line(char *line, unsigned lineno, const char *iface, struct netdev_stats *st,
		       const char *what, struct crisp_error *err)
{
	uint64_t v[16];
	char *name = line + strspn(line, " "), *colon = strchr(name, ':'), *p, shown[40];
	unsigned n = 0;

	if (!colon || !ifname_valid(name, (size_t)(colon - name)))
		return err_set(err, CRISP_E_INTERNAL, "%s: line %u ('%s') names no interface", what,
			       lineno, cgroup_printable(line, strlen(line), shown, sizeof(shown)));
	for (p = colon + 1;;) {
		size_t len;

		p += strspn(p, " \t");
		if (!*p)
			break;
		len = strcspn(p, " \t");
		if (n == ARRAY_SIZE(v) || parse_u64_span(p, len, &v[n]) < 0)
			return err_set(err, CRISP_E_INTERNAL,
				       "%s: line %u: field %u ('%s') is not a counter or one too "
				       "many",
				       what, lineno, n + 1,
				       cgroup_printable(p, len, shown, sizeof(shown)));
		n++;
		p += len;
	}
	if (n != ARRAY_SIZE(v))
		return err_set(err, CRISP_E_INTERNAL, "%s: line %u has %u counters, not 16", what,
			       lineno, n);
	if ((size_t)(colon - name) != strlen(iface) || memcmp(name, iface, strlen(iface)) != 0)
		return 0;
	if (st->found)
		return err_set(err, CRISP_E_INTERNAL, "%s: %s is listed twice", what, iface);
	/* receive: bytes packets errs drop fifo frame compressed multicast;
	 * transmit: bytes packets errs drop fifo colls carrier compressed */
	st->rx_bytes = v[0];
	st->rx_errors = v[2];
	st->tx_bytes = v[8];
	st->tx_errors = v[10];
	st->rx_packets = v[1];
	st->rx_dropped = v[3];
	st->tx_packets = v[9];
	st->tx_dropped = v[11];
	st->found = true;
	return 0;
}

int netdev_stats_pid(const char *proc, pid_t pid, const char *iface, struct netdev_stats *st,
		     struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	struct netdev_stats s = { 0 };
	size_t len;
	unsigned lineno = 0;

	if (!iface)
		iface = "eth0";
	if (!ifname_valid(iface, strlen(iface)))
		return err_set(err, CRISP_E_INVALID, "'%s' is not an interface name", iface);
	if (proc_file_read(proc, pid, "net/dev", NETDEV_FILE_MAX, &path, &text, &len, err) < 0)
		return -1;
	for (char *line = text, *nl; line < text + len; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		else
			nl = text + len;
		lineno++;
		/* Two header lines, "Inter-|   Receive ..." and " face |bytes ...". */
		if (lineno <= 2) {
			if (!strchr(line, '|'))
				return err_set(err, CRISP_E_INTERNAL,
					       "%s: line %u is not the table header", path, lineno);
			continue;
		}
		if (netdev_line(line, lineno, iface, &s, path, err) < 0)
			return -1;
	}
	if (lineno < 2)
		return err_set(err, CRISP_E_INTERNAL, "%s: no table header", path);
	*st = s;
	return 0;
}

/* --- block devices ---------------------------------------------------------- */

void block_device_name(const char *sys, uint32_t major, uint32_t minor, char *buf, size_t size)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	size_t len;

	if (!size)
		return;
	buf[0] = '\0';
	if (!sys)
		return;
	path = xasprintf("%s/dev/block/%u:%u/uevent", sys, major, minor);
	/* A few short KEY=value lines. */
	if (read_bounded(AT_FDCWD, path, 4096, &text, &len) < 0)
		return;
	for (char *line = text, *nl; line && *line; line = nl) {
		size_t n;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (strncmp(line, "DEVNAME=", 8) != 0)
			continue;
		n = strlen(line + 8);
		/* A kernel name: no '/' escapes /dev, no control characters. */
		if (n == 0 || n > NAME_MAX || strstr(line + 8, "..") ||
		    strcspn(line + 8, "\t ") != n)
			return;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[8 + i] < 0x20 || line[8 + i] == 0x7f)
				return;
		snprintf(buf, size, "/dev/%s", line + 8);
		return;
	}
}

/* --- disk usage ------------------------------------------------------------ */

/* The (dev, ino) pairs of files with more than one link seen so far: an
 * open-addressing set, so each hardlinked file is counted once. */
struct inode_set {
	struct inode_key {
		dev_t dev;
		ino_t ino;
	} * slots;
	size_t cap, n;
};

static size_t inode_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
	return (size_t)(h ^ (h >> 29));
}

/* true when (dev, ino) was not in the set (it is now). */
static bool inode_set_add(struct inode_set *set, dev_t dev, ino_t ino)
{
	size_t i;

	if ((set->n + 1) * 2 > set->cap) {
		struct inode_set bigger = { .cap = set->cap ? set->cap * 2 : 64 };

		bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
		for (i = 0; i < set->cap; i++)
			if (set->slots[i].ino)
				inode_set_add(&bigger, set->slots[i].dev, set->slots[i].ino);
		free(set->slots);
		*set = bigger;
	}
	/* ino 0 marks a free slot; no file on Linux has it. */
	for (i = inode_hash(dev, ino) & (set->cap - 1); set->slots[i].ino;
	     i = (i + 1) & (set->cap - 1))
		if (set->slots[i].dev == dev && set->slots[i].ino == ino)
			return false;
	set->slots[i] = (struct inode_key){ dev, ino };
	set->n++;
	return true;
}

struct du_walk {
	struct inode_set links;
	uint64_t bytes, inodes;
	char *unreadable; /* a directory nftw could not read */
};

/* nftw takes no argument for its callback: the walk in progress, per thread. */
static __thread struct du_walk *du_current;

static int du_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	struct du_walk *w = du_current;

	(void)ftw;
	/* Gone between readdir and lstat: a running container's layer changes
	 * under us; what is gone uses no space. */
	if (type == FTW_NS)
		return 0;
	if (type == FTW_DNR) {
		w->unreadable = xstrdup(path);
		return 1;
	}
	if (!S_ISDIR(sb->st_mode) && sb->st_nlink > 1 &&
	    !inode_set_add(&w->links, sb->st_dev, sb->st_ino))
		return 0;
	w->inodes++;
	w->bytes += (uint64_t)sb->st_blocks * 512;
	return 0;
}

int disk_usage(const char *dir, uint64_t *bytes, uint64_t *inodes, struct crisp_error *err)
{
	struct du_walk w = { 0 };
	struct stat sb;
	int r, saved;

	if (!dir)
		return err_set(err, CRISP_E_INVALID, "no directory to measure");
	if (lstat(dir, &sb) < 0)
		return err_set_errno(err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INTERNAL,
				     errno, "disk usage of %s", dir);
	if (!S_ISDIR(sb.st_mode))
		return err_set(err, CRISP_E_INVALID, "disk usage of %s: not a directory", dir);
	du_current = &w;
	/* FTW_PHYS: a symlink is measured, never followed; FTW_MOUNT: what is
	 * mounted inside (a volume) is not the layer's. 16 fds at most. */
	r = nftw(dir, du_visit, 16, FTW_PHYS | FTW_MOUNT);
	saved = errno;
	du_current = NULL;
	free(w.links.slots);
	if (w.unreadable) {
		err_set(err, CRISP_E_INTERNAL, "disk usage of %s: cannot read directory %s", dir,
			w.unreadable);
		free(w.unreadable);
		return -1;
	}
	if (r < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, saved, "disk usage of %s", dir);
	*bytes = w.bytes;
	*inodes = w.inodes;
	return 0;
}
