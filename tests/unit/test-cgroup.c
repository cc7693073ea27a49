/* runtimed/cgroup.c and cgroup_stats.c: layout detection, statistics of fake v1, hybrid and v2
 * trees with every number checked, malformed files, network counters, disk
 * usage, runc's cgroup paths, removal; and, as root on a cgroup v1 hybrid
 * host like the project's machines, the same against the real kernel. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "runtimed/cgroup.h"
#include "tests/unit/tap.h"

static char tmp[] = "/tmp/crisp-test-cgroup-XXXXXX";

static char *at(const char *fmt, ...) _printf_(1, 2);
static char *at(const char *fmt, ...)
{
	static char bufs[8][4096];
	static int next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, sizeof(bufs[0]), "%s/", tmp);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b + n, sizeof(bufs[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	return b;
}

/* Write content at tmp/<path>, parents created; len -1: strlen. */
static void put_len(const char *path, const char *content, ssize_t len)
{
	char *full = at("%s", path), *slash = strrchr(full, '/');
	int fd;

	*slash = '\0';
	if (mkdir_p(full, 0755) < 0)
		diag("mkdir_p %s: %s", full, strerror(errno));
	*slash = '/';
	fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, content, len < 0 ? strlen(content) : (size_t)len) < 0)
		diag("writing %s: %s", full, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void put(const char *path, const char *content)
{
	put_len(path, content, -1);
}

static void dir(const char *path)
{
	if (mkdir_p(at("%s", path), 0755) < 0)
		diag("mkdir_p %s: %s", path, strerror(errno));
}

static void link_to(const char *target, const char *path)
{
	if (symlink(target, at("%s", path)) < 0)
		diag("symlink %s: %s", path, strerror(errno));
}

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(at("%s", path), &sb) == 0;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- fake trees ------------------------------------------------------------ */

/* A v1 memory.stat as a 6.x kernel writes it; the local values differ from
 * the total_ ones so the test sees which are used. */
static const char *v1_memory_stat(unsigned long long rss, unsigned long long inactive_file,
				  unsigned long long pgfault, unsigned long long pgmajfault)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
		 "cache 4096\nrss 1\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\n"
		 "writeback 0\npgpgin 10\npgpgout 5\npgfault 2\npgmajfault 3\n"
		 "inactive_anon 0\nactive_anon 0\ninactive_file 4\nactive_file 0\n"
		 "unevictable 0\nhierarchical_memory_limit 9223372036854771712\n"
		 "total_cache 8192\ntotal_rss %llu\ntotal_rss_huge 0\ntotal_shmem 0\n"
		 "total_mapped_file 0\ntotal_dirty 0\ntotal_writeback 0\ntotal_pgpgin 10\n"
		 "total_pgpgout 5\ntotal_pgfault %llu\ntotal_pgmajfault %llu\n"
		 "total_inactive_anon 0\ntotal_active_anon 0\ntotal_inactive_file %llu\n"
		 "total_active_file 0\ntotal_unevictable 0\n",
		 rss, pgfault, pgmajfault, inactive_file);
	return buf;
}

static const char *v2_memory_stat(unsigned long long anon, unsigned long long inactive_file,
				  unsigned long long pgfault, unsigned long long pgmajfault)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
		 "anon %llu\nfile 40960\nkernel 8192\nkernel_stack 0\npagetables 0\n"
		 "sec_pagetables 0\npercpu 0\nsock 0\nvmalloc 0\nshmem 0\nzswap 0\n"
		 "file_mapped 0\nfile_dirty 0\nfile_writeback 0\nswapcached 0\n"
		 "anon_thp 0\ninactive_anon 0\nactive_anon 0\ninactive_file %llu\n"
		 "active_file 0\nunevictable 0\nslab 0\nworkingset_refault_anon 0\n"
		 "pgscan 0\npgsteal 0\npgactivate 0\npgdeactivate 0\npglazyfree 0\n"
		 "pgfault %llu\npgmajfault %llu\nthp_fault_alloc 0\n",
		 anon, inactive_file, pgfault, pgmajfault);
	return buf;
}

/* root/<hier>/<rel> v1 cgroup with the given numbers. */
static void v1_cgroup(const char *root, const char *cpu_hier, const char *rel,
		      unsigned long long cpu, unsigned long long usage, unsigned long long rss,
		      unsigned long long inactive_file, unsigned long long pgfault,
		      unsigned long long pgmaj, unsigned long long oom, unsigned long long pids)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%llu\n", cpu);
	put(at("%s/%s/%s/cpuacct.usage", root, cpu_hier, rel) + strlen(tmp) + 1, buf);
	snprintf(buf, sizeof(buf), "%llu\n", usage);
	put(at("%s/memory/%s/memory.usage_in_bytes", root, rel) + strlen(tmp) + 1, buf);
	put(at("%s/memory/%s/memory.stat", root, rel) + strlen(tmp) + 1,
	    v1_memory_stat(rss, inactive_file, pgfault, pgmaj));
	snprintf(buf, sizeof(buf), "oom_kill_disable 0\nunder_oom 0\noom_kill %llu\n", oom);
	put(at("%s/memory/%s/memory.oom_control", root, rel) + strlen(tmp) + 1, buf);
	snprintf(buf, sizeof(buf), "%llu\n", pids);
	put(at("%s/pids/%s/pids.current", root, rel) + strlen(tmp) + 1, buf);
}

static void v2_cgroup(const char *root, const char *rel, unsigned long long usec,
		      unsigned long long current, unsigned long long anon,
		      unsigned long long inactive_file, unsigned long long pgfault,
		      unsigned long long pgmaj, unsigned long long oom, unsigned long long pids)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
		 "usage_usec %llu\nuser_usec 1\nsystem_usec 2\nnr_periods 0\nnr_throttled 0\n"
		 "throttled_usec 0\nnr_bursts 0\nburst_usec 0\n",
		 usec);
	put(at("%s/%s/cpu.stat", root, rel) + strlen(tmp) + 1, buf);
	snprintf(buf, sizeof(buf), "%llu\n", current);
	put(at("%s/%s/memory.current", root, rel) + strlen(tmp) + 1, buf);
	put(at("%s/%s/memory.stat", root, rel) + strlen(tmp) + 1,
	    v2_memory_stat(anon, inactive_file, pgfault, pgmaj));
	snprintf(buf, sizeof(buf), "low 0\nhigh 0\nmax 5\noom 4\noom_kill %llu\noom_group_kill 0\n",
		 oom);
	put(at("%s/%s/memory.events", root, rel) + strlen(tmp) + 1, buf);
	snprintf(buf, sizeof(buf), "%llu\n", pids);
	put(at("%s/%s/pids.current", root, rel) + strlen(tmp) + 1, buf);
}

static void check_stats(const struct cgroup_stats *st, unsigned long long cpu_ns,
			unsigned long long usage, unsigned long long ws, unsigned long long rss,
			unsigned long long pgfault, unsigned long long pgmaj,
			unsigned long long oom, unsigned long long pids, const char *what)
{
	ok(st->have_cpu && st->have_memory && st->have_pids, "%s: cpu, memory and pids", what);
	is_int(st->cpu_usage_ns, cpu_ns, "%s: cpu usage ns", what);
	is_int(st->memory_usage, usage, "%s: memory usage", what);
	is_int(st->memory_working_set, ws, "%s: working set = usage - inactive_file", what);
	is_int(st->memory_rss, rss, "%s: rss", what);
	is_int(st->page_faults, pgfault, "%s: page faults", what);
	is_int(st->major_page_faults, pgmaj, "%s: major page faults", what);
	is_int(st->oom_kills, oom, "%s: oom kills", what);
	is_int(st->pids, pids, "%s: pids", what);
}

/* --- tests ---------------------------------------------------------------- */

static bool host_is_hybrid(void)
{
	return access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0 &&
	       access("/sys/fs/cgroup/memory/memory.stat", F_OK) == 0;
}

static void test_detect(void)
{
	is_int(cgroup_detect(NULL), CGROUP_UNAVAILABLE, "detect: no root");
	is_int(cgroup_detect(at("nonexistent")), CGROUP_UNAVAILABLE, "detect: missing root");
	dir("detect/plain");
	is_int(cgroup_detect(at("detect/plain")), CGROUP_V1, "detect: a plain directory is v1");
	dir("detect/plain/unified");
	is_int(cgroup_detect(at("detect/plain")), CGROUP_V1,
	       "detect: a plain unified/ directory does not make it hybrid");
	is_str(cgroup_mode_name(CGROUP_HYBRID), "hybrid", "mode name");
	is_str(cgroup_mode_name((enum cgroup_mode)42), "unavailable", "mode name out of range");
	if (!host_is_hybrid()) {
		diag("skipping host detection: this host is not cgroup v1 hybrid");
		return;
	}
	is_int(cgroup_detect("/sys/fs/cgroup"), CGROUP_HYBRID, "detect: this host is hybrid");
	is_int(cgroup_detect("/sys/fs/cgroup/unified"), CGROUP_V2,
	       "detect: a cgroup2 mount as root is v2");
	is_int(cgroup_detect("/sys/fs/cgroup/memory"), CGROUP_V1,
	       "detect: a v1 hierarchy as root is v1");
	dir("detect/hyb");
	link_to("/sys/fs/cgroup/unified", "detect/hyb/unified");
	is_int(cgroup_detect(at("detect/hyb")), CGROUP_HYBRID,
	       "detect: unified/ a cgroup2 mount makes it hybrid");
}

static void test_relpath(void)
{
	struct crisp_error err;
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "", "" },
		{ "/", "" },
		{ "/kubepods/pod1/abc", "kubepods/pod1/abc" },
		{ "kubepods", "kubepods" },
		{ "/a b/c:d/...", "a b/c:d/..." },
	};
	static const char *const bad[] = { "..", "/..", "/a/../b", "a/./b", "a//b",
					   "a/", "//",  "/a/..",   "a/\nb", "/a/b/." };
	char longpath[5000];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		_cleanup_free_ char *r = cgroup_relpath_clean(good[i].in, &err);
		is_str(r, good[i].out, "relpath '%s'", good[i].in);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *r = cgroup_relpath_clean(bad[i], &err);
		ok(!r && err.code == CRISP_E_INVALID, "relpath '%s' is refused", bad[i]);
	}
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	for (size_t i = 100; i < sizeof(longpath) - 1; i += 100)
		longpath[i] = '/';
	ok(!cgroup_relpath_clean(longpath, &err), "an overlong relpath is refused");
	like(err.msg, "longer than", "and says so");
	ok(!cgroup_relpath_clean(NULL, &err), "a NULL relpath is refused");
}

static const char *PROC_V1 = "12:pids:/kubepods/pod1/ctr1\n"
			     "11:memory:/kubepods/pod1/ctr1\n"
			     "7:devices:/kubepods/pod1/ctr1\n"
			     "4:cpu,cpuacct:/kubepods/pod1/ctr1\n"
			     "1:name=systemd:/kubepods/pod1/ctr1\n";

static void test_v1(void)
{
	struct cgroup_stats st;
	struct crisp_error err;
	char text[1024];

	v1_cgroup("v1", "cpu,cpuacct", "kubepods/pod1/ctr1", 123456789, 10485760, 3000000, 2000000,
		  5555, 66, 2, 7);
	v1_cgroup("v1", "cpu,cpuacct", "kubepods/pod1", 987654321, 20971520, 6000000, 4000000, 7777,
		  88, 3, 9);
	link_to("cpu,cpuacct", "v1/cpu");
	link_to("cpu,cpuacct", "v1/cpuacct");
	dir("v1/devices/kubepods/pod1/ctr1");
	put("proc/1234/cgroup", PROC_V1);

	is_int(cgroup_detect(at("v1")), CGROUP_V1, "v1: fake tree detected as v1");
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid(at("v1"), at("proc"), 1234, &st, &err) == 0, "v1: stats of pid"))
		diag("%s", err.msg);
	check_stats(&st, 123456789, 10485760, 8485760, 3000000, 5555, 66, 2, 7, "v1");

	memset(&st, 0, sizeof(st));
	if (!ok(cgroup_stats_pid_parent(at("v1"), at("proc"), 1234, &st, &err) == 0,
		"v1: stats of the pod (parent)"))
		diag("%s", err.msg);
	check_stats(&st, 987654321, 20971520, 16971520, 6000000, 7777, 88, 3, 9, "v1 parent");

	memset(&st, 0, sizeof(st));
	if (!ok(cgroup_stats_path(CGROUP_V1, at("v1"), "/kubepods/pod1", &st, &err) == 0,
		"v1: stats by path"))
		diag("%s", err.msg);
	check_stats(&st, 987654321, 20971520, 16971520, 6000000, 7777, 88, 3, 9, "v1 path");

	/* Hybrid: the v2 hierarchy is there and listed, statistics stay v1. */
	dir("v1/unified/kubepods/pod1/ctr1");
	snprintf(text, sizeof(text), "%s0::/kubepods/pod1/ctr1\n", PROC_V1);
	put("proc/1235/cgroup", text);
	memset(&st, 0, sizeof(st));
	if (!ok(cgroup_stats_pid_in(CGROUP_HYBRID, at("v1"), at("proc"), 1235, false, &st, &err) ==
			0,
		"hybrid: stats of pid"))
		diag("%s", err.msg);
	check_stats(&st, 123456789, 10485760, 8485760, 3000000, 5555, 66, 2, 7, "hybrid");

	/* The same, detected: a root whose unified/ is the host's cgroup2 mount
	 * and whose controllers are the fake ones. */
	if (host_is_hybrid()) {
		dir("hyb");
		link_to("../v1/cpu,cpuacct", "hyb/cpu,cpuacct");
		link_to("cpu,cpuacct", "hyb/cpuacct");
		link_to("../v1/memory", "hyb/memory");
		link_to("../v1/pids", "hyb/pids");
		link_to("/sys/fs/cgroup/unified", "hyb/unified");
		is_int(cgroup_detect(at("hyb")), CGROUP_HYBRID, "hybrid: detected");
		memset(&st, 0, sizeof(st));
		if (!ok(cgroup_stats_pid(at("hyb"), at("proc"), 1235, &st, &err) == 0,
			"hybrid: stats of pid, mode detected"))
			diag("%s", err.msg);
		check_stats(&st, 123456789, 10485760, 8485760, 3000000, 5555, 66, 2, 7,
			    "hybrid detected");
	}
}

/* Controller layouts: cpu and cpuacct apart (this host), co-mounted without
 * per-controller symlinks, missing controllers, the root cgroup. */
static void test_v1_layouts(void)
{
	struct cgroup_stats st;
	struct crisp_error err;

	put("apart/cpuacct/x/cpuacct.usage", "42\n");
	dir("apart/cpu/x");
	put("apart/memory/x/memory.usage_in_bytes", "100\n");
	put("apart/memory/x/memory.stat", v1_memory_stat(10, 500, 1, 0));
	put("apart/memory/x/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
	put("proc/2000/cgroup", "3:memory:/x\n2:cpuacct:/x\n1:cpu:/x\n");
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid(at("apart"), at("proc"), 2000, &st, &err) == 0,
		"apart: stats of pid"))
		diag("%s", err.msg);
	ok(st.have_cpu && st.have_memory && !st.have_pids, "apart: cpu and memory, no pids line");
	is_int(st.cpu_usage_ns, 42, "apart: cpu from cpuacct/");
	is_int(st.memory_working_set, 0, "apart: working set floored at 0");
	is_int(st.oom_kills, 0, "apart: no oom_kill line (kernel < 4.13) is 0 kills");

	put("comounted/cpu,cpuacct/y/cpuacct.usage", "43\n");
	put("proc/2001/cgroup", "4:cpu,cpuacct:/y\n5:pids:/y\n3:memory:/\n");
	dir("comounted/memory");
	put("comounted/memory/memory.stat", v1_memory_stat(1, 1, 1, 1));
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid(at("comounted"), at("proc"), 2001, &st, &err) == 0,
		"comounted without symlinks: stats of pid"))
		diag("%s", err.msg);
	is_int(st.cpu_usage_ns, 43, "comounted: cpu found in cpu,cpuacct/");
	ok(st.have_cpu && !st.have_memory && !st.have_pids,
	   "comounted: pids not mounted, memory without usage file: no memory, no pids");

	/* In the root cgroup, the parent of nothing. */
	put("proc/2002/cgroup", "4:cpu,cpuacct:/\n3:memory:/y\n");
	put("comounted/memory/memory.usage_in_bytes", "5\n");
	put("comounted/memory/memory.oom_control", "oom_kill 1\n");
	put("comounted/cpu,cpuacct/cpuacct.usage", "44\n");
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid_parent(at("comounted"), at("proc"), 2002, &st, &err) == 0,
		"parent with one controller at the root"))
		diag("%s", err.msg);
	ok(!st.have_cpu && st.have_memory && !st.have_pids,
	   "parent: the root cgroup's controller has no parent, memory's parent is the root");
	is_int(st.memory_usage, 5, "parent: memory usage of the root");
	is_int(st.oom_kills, 1, "parent: oom kills of the root");

	/* Errors: process gone, cgroup gone, bad pid, bad root. */
	ok(cgroup_stats_pid(at("apart"), at("proc"), 999, &st, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "a process that does not exist: not found");
	like(err.msg, "process 999 is gone", "and says so");
	put("proc/2003/cgroup", "3:memory:/gone\n");
	ok(cgroup_stats_pid(at("apart"), at("proc"), 2003, &st, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "a cgroup that does not exist: not found");
	like(err.msg, "memory/gone", "and names it");
	ok(cgroup_stats_pid(at("apart"), at("proc"), 0, &st, &err) < 0 &&
		   err.code == CRISP_E_INVALID,
	   "pid 0 is refused");
	ok(cgroup_stats_pid_in(CGROUP_V1, at("nonexistent"), at("proc"), 2000, false, &st, &err) <
		   0,
	   "a missing root is an error");
	like(err.msg, "nonexistent", "that names the root");
	ok(cgroup_stats_pid_in(CGROUP_UNAVAILABLE, at("apart"), at("proc"), 2000, false, &st,
			       &err) < 0 &&
		   err.code == CRISP_E_UNAVAILABLE,
	   "no cgroups: unavailable");
	ok(cgroup_stats_path(CGROUP_V1, at("apart"), "/x/../../etc", &st, &err) < 0 &&
		   err.code == CRISP_E_INVALID,
	   "stats by path refuse '..'");
}

static void test_v2(void)
{
	struct cgroup_stats st;
	struct crisp_error err;
	const char *ctr = "kubepods.slice/kubepods-burstable.slice/"
			  "kubepods-burstable-pod1.slice/crisp-abc.scope";

	v2_cgroup("v2", ctr, 1234567, 50000000, 30000000, 15000000, 999, 11, 1, 3);
	v2_cgroup("v2", "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
		  7654321, 80000000, 40000000, 90000000, 1999, 22, 4, 5);
	put("proc/3000/cgroup",
	    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
	    "crisp-abc.scope\n");

	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("v2"), at("proc"), 3000, false, &st, &err) == 0,
		"v2: stats of pid"))
		diag("%s", err.msg);
	check_stats(&st, 1234567000ULL, 50000000, 35000000, 30000000, 999, 11, 1, 3, "v2");

	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("v2"), at("proc"), 3000, true, &st, &err) == 0,
		"v2: stats of the pod (parent)"))
		diag("%s", err.msg);
	check_stats(&st, 7654321000ULL, 80000000, 0, 40000000, 1999, 22, 4, 5, "v2 parent");

	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_path(CGROUP_V2, at("v2"), ctr, &st, &err) == 0, "v2: stats by path"))
		diag("%s", err.msg);
	check_stats(&st, 1234567000ULL, 50000000, 35000000, 30000000, 999, 11, 1, 3, "v2 path");

	/* A cgroup without the memory and pids controllers enabled has cpu.stat
	 * only (the kernel always provides it). */
	put("v2/nomem/cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n");
	put("proc/3001/cgroup", "0::/nomem\n");
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("v2"), at("proc"), 3001, false, &st, &err) == 0,
		"v2: cgroup without memory controller"))
		diag("%s", err.msg);
	ok(st.have_cpu && !st.have_memory && !st.have_pids, "v2: only cpu");
	is_int(st.cpu_usage_ns, 5000, "v2: usage_usec in ns");

	put("proc/3002/cgroup", "4:memory:/nomem\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("v2"), at("proc"), 3002, false, &st, &err) < 0,
	   "v2: a /proc/<pid>/cgroup without a 0:: line is an error");
	like(err.msg, "no '0::' line", "and says so");
}

struct bad_case {
	const char *file, *content;
	ssize_t len;
	const char *msg;
};

static void test_malformed(void)
{
	static const struct bad_case v1_cases[] = {
		{ "cpu,cpuacct/c/cpuacct.usage", "12a\n", -1, "'12a' is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "", -1, "'' is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "-1\n", -1, "is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "18446744073709551616\n", -1, "is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "99999999999999999999999\n", -1,
		  "is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "1\n2\n", -1, "is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", " 1\n", -1, "is not a number" },
		{ "cpu,cpuacct/c/cpuacct.usage", "1\0", 2, "is not a number" },
		{ "memory/c/memory.usage_in_bytes", "max\n", -1, "'max' is not a number" },
		{ "memory/c/memory.stat", "total_rss 1\ntotal_pgfault 1\ntotal_pgmajfault 1\n", -1,
		  "no total_inactive_file" },
		{ "memory/c/memory.stat",
		  "total_rss abc\ntotal_inactive_file 1\ntotal_pgfault 1\ntotal_pgmajfault 1\n", -1,
		  "total_rss 'abc' is not a number" },
		{ "memory/c/memory.stat", "garbage\n", -1,
		  "line 1 ('garbage') is not 'key value'" },
		{ "memory/c/memory.stat", "cache 1\n\ntotal_rss 1\n", -1, "line 2" },
		{ "memory/c/memory.stat", "cache 1 2\n", -1, "is not 'key value'" },
		{ "memory/c/memory.stat", "cache \n", -1, "is not 'key value'" },
		{ "memory/c/memory.stat", " 1\n", -1, "is not 'key value'" },
		{ "memory/c/memory.stat",
		  "total_rss 1\ntotal_rss 2\ntotal_inactive_file 1\ntotal_pgfault 1\n"
		  "total_pgmajfault 1\n",
		  -1, "total_rss appears twice" },
		{ "memory/c/memory.stat", "total_rss 1\0\n", 13, "NUL" },
		{ "memory/c/memory.stat", NULL, -1, "File too large" },
		{ "memory/c/memory.oom_control", "oom_kill x\n", -1,
		  "oom_kill 'x' is not a number" },
		{ "pids/c/pids.current", "\n", -1, "is not a number" },
	};
	static const struct bad_case proc_cases[] = {
		{ NULL, "garbage\n", -1, "line 1 ('garbage') is not 'id:controllers:/path'" },
		{ NULL, "x:memory:/c\n", -1, "is not 'id:controllers:/path'" },
		{ NULL, "1:memory:c\n", -1, "is not 'id:controllers:/path'" },
		{ NULL, "1:memory\n", -1, "is not 'id:controllers:/path'" },
		{ NULL, "1:memory:/c/../../etc\n", -1, "outside runtimed's cgroup namespace" },
		{ NULL, "1:memory:/c//d\n", -1, "empty" },
		{ NULL, "", -1, "lists no cgroup" },
		{ NULL, "1::/c\n", -1, "no controllers but is not the one '0::' line" },
		{ NULL, "0::/c\n0::/c\n", -1, "no controllers but is not the one '0::' line" },
		{ NULL, "1:memory:/c\n2:memory:/c\n", -1, "controller memory is listed twice" },
		{ NULL, "1:memory:/c\0\n", 13, "NUL" },
		{ NULL, "1:memory:/c\n\n2:pids:/c\n", -1, "line 2 ('') is not" },
		{ NULL, "1:memory,../../x:/c\n", -1, "controller list 'memory,../../x' has a '/'" },
		{ NULL, NULL, -1, "File too large" },
	};
	static char big[70 * 1024];
	struct cgroup_stats st, before;
	struct crisp_error err;

	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (i % 16 == 15) ? '\n' : 'a';
	put("proc/4000/cgroup", "3:memory:/c\n2:cpu,cpuacct:/c\n1:pids:/c\n");
	for (size_t i = 0; i < ARRAY_SIZE(v1_cases); i++) {
		const struct bad_case *c = &v1_cases[i];
		char path[256];

		rm_tree(at("bad"));
		v1_cgroup("bad", "cpu,cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
		snprintf(path, sizeof(path), "bad/%s", c->file);
		put_len(path, c->content ? c->content : big, c->content ? c->len : -1);
		memset(&st, 0x5a, sizeof(st));
		before = st;
		ok(cgroup_stats_pid_in(CGROUP_V1, at("bad"), at("proc"), 4000, false, &st, &err) <
				   0 &&
			   err.code == CRISP_E_INTERNAL,
		   "malformed %s (case %zu) is an internal error", c->file, i);
		like(err.msg, c->msg, "and says what is wrong (case %zu)", i);
		ok(memcmp(&st, &before, sizeof(st)) == 0, "stats untouched on failure (case %zu)",
		   i);
	}
	rm_tree(at("bad"));
	v1_cgroup("bad", "cpu,cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	unlink(at("bad/memory/c/memory.stat"));
	ok(cgroup_stats_pid_in(CGROUP_V1, at("bad"), at("proc"), 4000, false, &st, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "memory.stat gone while usage is there: not found");
	like(err.msg, "memory.stat", "and names the file");
	like(err.msg, "stats of process 4000", "with the process as context");
	rm_tree(at("bad"));
	v1_cgroup("bad", "cpu,cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	ok(cgroup_stats_pid_in(CGROUP_V1, at("bad"), at("proc"), 4000, false, &st, &err) == 0,
	   "the tree is good again once repaired");

	for (size_t i = 0; i < ARRAY_SIZE(proc_cases); i++) {
		const struct bad_case *c = &proc_cases[i];

		put_len("proc/4001/cgroup", c->content ? c->content : big,
			c->content ? c->len : -1);
		ok(cgroup_stats_pid_in(CGROUP_V1, at("bad"), at("proc"), 4001, false, &st, &err) <
				   0 &&
			   err.code == CRISP_E_INTERNAL,
		   "malformed /proc/<pid>/cgroup (case %zu) is an internal error", i);
		like(err.msg, c->msg, "and says what is wrong (proc case %zu)", i);
	}

	/* v2 files. */
	put("proc/4002/cgroup", "0::/c\n");
	v2_cgroup("bad2", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	put("bad2/c/cpu.stat", "usage_usec 18446744073709552\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("bad2"), at("proc"), 4002, false, &st, &err) < 0,
	   "v2: usage_usec that overflows in ns is refused");
	like(err.msg, "out of range", "and says so");
	put("bad2/c/cpu.stat", "usage_usec 18446744073709551\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("bad2"), at("proc"), 4002, false, &st, &err) == 0 &&
		   st.cpu_usage_ns == 18446744073709551000ULL,
	   "v2: the largest usage_usec that fits");
	put("bad2/c/cpu.stat", "user_usec 1\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("bad2"), at("proc"), 4002, false, &st, &err) < 0,
	   "v2: cpu.stat without usage_usec");
	like(err.msg, "no usage_usec", "and says so");
	v2_cgroup("bad2", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	put("bad2/c/memory.stat", "anon 1\ninactive_file 1\npgfault 1\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("bad2"), at("proc"), 4002, false, &st, &err) < 0,
	   "v2: memory.stat without pgmajfault");
	like(err.msg, "no pgmajfault", "and says so");
	v2_cgroup("bad2", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	put("bad2/c/memory.events", "oom_kill -1\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("bad2"), at("proc"), 4002, false, &st, &err) < 0,
	   "v2: negative oom_kill");
	like(err.msg, "memory.events: oom_kill '-1' is not a number", "and says so");
}

static const char *NETDEV_HEADER =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
	"errs drop fifo colls carrier compressed\n";

static void netdev_file(pid_t pid, const char *lines)
{
	char path[64], text[4096];

	snprintf(path, sizeof(path), "proc/%d/net/dev", (int)pid);
	snprintf(text, sizeof(text), "%s%s", NETDEV_HEADER, lines);
	put(path, text);
}

/* Random damage to good files: every call either succeeds or fails with a
 * message; none crashes (the sanitizer builds and valgrind watch the rest). */
static uint32_t rng_state = 0x12345678;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static size_t mutate(char *buf, size_t len)
{
	static const char alphabet[] = "\0\n :,/-.0123456789axz\xff";
	unsigned n = 1 + rng() % 4;

	if (rng() % 5 == 0)
		return rng() % (len + 1);
	for (unsigned i = 0; i < n && len; i++)
		buf[rng() % len] = alphabet[rng() % (sizeof(alphabet) - 1)];
	return len;
}

static void test_damage(void)
{
	static const char *const proc_good = "12:pids:/c\n11:memory:/c\n4:cpu,cpuacct:/c\n0::/c\n";
	char buf[4096];
	struct cgroup_stats st;
	struct netdev_stats ns;
	struct crisp_error err;
	unsigned bad[4] = { 0 }, failed[4] = { 0 };

	for (int i = 0; i < 300; i++) {
		size_t len;
		int r;

		v1_cgroup("dmg", "cpu,cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
		put("proc/6000/cgroup", proc_good);
		snprintf(buf, sizeof(buf), "%s", v1_memory_stat(1, 2, 3, 4));
		len = mutate(buf, strlen(buf));
		put_len("dmg/memory/c/memory.stat", buf, (ssize_t)len);
		err.msg[0] = '\0';
		r = cgroup_stats_pid_in(CGROUP_V1, at("dmg"), at("proc"), 6000, false, &st, &err);
		bad[0] += !(r == 0 || (r == -1 && err.msg[0]));
		failed[0] += r < 0;

		v1_cgroup("dmg", "cpu,cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
		snprintf(buf, sizeof(buf), "%s", proc_good);
		len = mutate(buf, strlen(buf));
		put_len("proc/6000/cgroup", buf, (ssize_t)len);
		err.msg[0] = '\0';
		r = cgroup_stats_pid_in(rng() % 2 ? CGROUP_V1 : CGROUP_V2, at("dmg"), at("proc"),
					6000, rng() % 2, &st, &err);
		bad[1] += !(r == 0 || (r == -1 && err.msg[0]));
		failed[1] += r < 0;

		snprintf(buf, sizeof(buf),
			 "%s    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
			 "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			 NETDEV_HEADER);
		len = mutate(buf, strlen(buf));
		put_len("proc/6000/net/dev", buf, (ssize_t)len);
		err.msg[0] = '\0';
		r = netdev_stats_pid(at("proc"), 6000, "eth0", &ns, &err);
		bad[2] += !(r == 0 || (r == -1 && err.msg[0]));
		failed[2] += r < 0;

		snprintf(buf, sizeof(buf), "kubepods-burstable-pod%d.slice", i);
		len = mutate(buf, strlen(buf));
		buf[len] = '\0';
		{
			_cleanup_free_ char *path = NULL;

			err.msg[0] = '\0';
			path = cgroup_systemd_slice_path(buf, &err);
			bad[3] += !(path || err.msg[0]);
			failed[3] += !path;
		}
	}
	rm_tree(at("dmg"));
	is_int(bad[0], 0, "damaged memory.stat: success or a message (%u failed)", failed[0]);
	is_int(bad[1], 0, "damaged /proc/<pid>/cgroup: success or a message (%u failed)",
	       failed[1]);
	is_int(bad[2], 0, "damaged net/dev: success or a message (%u failed)", failed[2]);
	is_int(bad[3], 0, "damaged slice names: a path or a message (%u failed)", failed[3]);
	ok(failed[0] > 50 && failed[0] < 300 && failed[1] > 50 && failed[2] > 50,
	   "damage is noticed, and not every damage is fatal");
}

static void test_netdev(void)
{
	static const struct {
		const char *lines, *msg;
	} bad[] = {
		{ "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", "has 15 counters, not 16" },
		{ "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n", "one too many" },
		{ "  eth0: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n", "field 4 ('x')" },
		{ "  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "names no interface" },
		{ "  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "names no interface" },
		{ "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
		  "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
		  "eth0 is listed twice" },
		{ "  lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n", "field 16" },
		{ "  lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n\n"
		  "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
		  "line 4 ('') names no interface" },
	};
	static const char *const bad_names[] = { "",  "a/b", "a:b", "a b", "0123456789abcdef",
						 ".", ".." };
	struct netdev_stats st;
	struct crisp_error err;

	netdev_file(5000, "    lo: 6900326716  633562    0    0    0     0          0         0 "
			  "6900326716  633562    0    0    0     0       0          0\n"
			  "eth0:18446744073709551615 1157 7 0 0 0 0 0 57938 731 9 0 0 0 0 0\n"
			  "  veth1234567890a: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
	memset(&st, 0xff, sizeof(st));
	if (!ok(netdev_stats_pid(at("proc"), 5000, NULL, &st, &err) == 0, "netdev: eth0 default"))
		diag("%s", err.msg);
	ok(st.found, "netdev: eth0 found");
	is_int(st.rx_bytes, (long long)18446744073709551615ULL,
	       "netdev: rx bytes (no space after ':')");
	ok(st.rx_bytes == UINT64_MAX, "netdev: rx bytes is the full 64-bit value");
	is_int(st.rx_errors, 7, "netdev: rx errors");
	is_int(st.tx_bytes, 57938, "netdev: tx bytes");
	is_int(st.tx_errors, 9, "netdev: tx errors");
	ok(netdev_stats_pid(at("proc"), 5000, "lo", &st, &err) == 0 && st.found &&
		   st.rx_bytes == 6900326716ULL && st.tx_bytes == 6900326716ULL &&
		   st.rx_errors == 0 && st.tx_errors == 0,
	   "netdev: lo");
	ok(netdev_stats_pid(at("proc"), 5000, "veth1234567890a", &st, &err) == 0 && st.found &&
		   st.rx_bytes == 1 && st.rx_errors == 3 && st.tx_bytes == 9 && st.tx_errors == 11,
	   "netdev: a 15-character name, every counter in its column");
	memset(&st, 0xff, sizeof(st));
	ok(netdev_stats_pid(at("proc"), 5000, "eth1", &st, &err) == 0 && !st.found &&
		   st.rx_bytes == 0,
	   "netdev: an interface that is not there: not found, zeroes");
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++)
		ok(netdev_stats_pid(at("proc"), 5000, bad_names[i], &st, &err) < 0 &&
			   err.code == CRISP_E_INVALID,
		   "netdev: interface name '%s' refused", bad_names[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		netdev_file(5001, bad[i].lines);
		ok(netdev_stats_pid(at("proc"), 5001, "eth0", &st, &err) < 0 &&
			   err.code == CRISP_E_INTERNAL,
		   "netdev: malformed (case %zu)", i);
		like(err.msg, bad[i].msg, "netdev: and says what is wrong (case %zu)", i);
	}
	put("proc/5002/net/dev", "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
	ok(netdev_stats_pid(at("proc"), 5002, "eth0", &st, &err) < 0, "netdev: no header");
	like(err.msg, "is not the table header", "netdev: and says so");
	put("proc/5002/net/dev", "");
	ok(netdev_stats_pid(at("proc"), 5002, "eth0", &st, &err) < 0, "netdev: empty file");
	like(err.msg, "no table header", "netdev: and says so");
	put_len("proc/5002/net/dev", "Inter-|\0", 8);
	ok(netdev_stats_pid(at("proc"), 5002, "eth0", &st, &err) < 0, "netdev: NUL byte");
	like(err.msg, "NUL", "netdev: and says so");
	ok(netdev_stats_pid(at("proc"), 5999, "eth0", &st, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "netdev: process gone");
	ok(netdev_stats_pid(at("proc"), -1, "eth0", &st, &err) < 0 && err.code == CRISP_E_INVALID,
	   "netdev: pid -1 refused");
}

static void test_slices(void)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "kubepods.slice", "kubepods.slice" },
		{ "kubepods-burstable.slice", "kubepods.slice/kubepods-burstable.slice" },
		{ "kubepods-burstable-pod1234.slice",
		  "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice" },
		{ "system.slice", "system.slice" },
		{ "a_b-c:d-e\\x2d.slice", "a_b.slice/a_b-c:d.slice/a_b-c:d-e\\x2d.slice" },
		{ "-.slice", "" },
	};
	static const char *const bad[] = {
		"",
		".slice",
		"--.slice",
		"kubepods--burstable.slice",
		"-kubepods.slice",
		"kubepods-.slice",
		"kubepods",
		"kubepods.scope",
		"a/b.slice",
		"a b.slice",
		"a-b.slicex",
		"slice",
		"a\n.slice",
		"x.slice.slice-",
		"é.slice",
	};
	struct crisp_error err;
	char longname[300];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		_cleanup_free_ char *r = cgroup_systemd_slice_path(good[i].in, &err);
		is_str(r, good[i].out, "slice '%s'", good[i].in);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *r = cgroup_systemd_slice_path(bad[i], &err);
		ok(!r && err.code == CRISP_E_INVALID, "slice '%s' refused", bad[i]);
	}
	ok(!cgroup_systemd_slice_path(NULL, &err), "slice NULL refused");
	{
		_cleanup_free_ char *r = cgroup_systemd_slice_path("a--b.slice", &err);
		like(err.msg, "empty level", "'--': the message says why");
		r = cgroup_systemd_slice_path("kubepods", &err);
		like(err.msg, "ending in .slice", "no .slice: the message says why");
	}
	memset(longname, 'a', sizeof(longname));
	strcpy(longname + 250, ".slice");
	ok(!cgroup_systemd_slice_path(longname, &err), "a 256-byte slice name is refused");
	strcpy(longname + 249, ".slice");
	{
		_cleanup_free_ char *r = cgroup_systemd_slice_path(longname, &err);
		ok(r && strlen(r) == 255, "a 255-byte slice name is fine");
	}
}

static void test_runc_paths(void)
{
	static const struct {
		const char *in;
		bool systemd;
		const char *out;
	} good[] = {
		{ "/kubepods/burstable/pod1/abc", false, "kubepods/burstable/pod1/abc" },
		{ "/crisp/abc", false, "crisp/abc" },
		{ "kubepods-burstable-pod1.slice:crisp:abc", true,
		  "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
		  "crisp-abc.scope" },
		{ ":crisp:abc", true, "system.slice/crisp-abc.scope" },
		{ "kubepods.slice:crisp:kubepods-pod2.slice", true,
		  "kubepods.slice/kubepods-pod2.slice" },
		{ "-.slice:crisp:abc", true, "crisp-abc.scope" },
	};
	static const struct {
		const char *in;
		bool systemd;
	} bad[] = {
		{ "", false },
		{ "/", false },
		{ "relative/path", false },
		{ "/a/../b", false },
		{ "/a//b", false },
		{ "kubepods.slice:abc", true },
		{ "kubepods.slice:crisp:abc:def", true },
		{ "kubepods.slice:crisp:", true },
		{ "kubepods:crisp:abc", true },
		{ "a--b.slice:crisp:abc", true },
		{ "kubepods.slice:cr/isp:abc", true },
		{ "kubepods.slice:crisp:a/b", true },
		{ NULL, true },
	};
	struct crisp_error err;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		_cleanup_free_ char *r = cgroup_runc_relpath(good[i].in, good[i].systemd, &err);
		is_str(r, good[i].out, "runc cgroupsPath '%s'", good[i].in);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *r = cgroup_runc_relpath(bad[i].in, bad[i].systemd, &err);
		ok(!r && err.code == CRISP_E_INVALID, "runc cgroupsPath '%s' (%s) refused",
		   bad[i].in ? bad[i].in : "(null)", bad[i].systemd ? "systemd" : "cgroupfs");
	}
}

static void test_dirs(void)
{
	static const struct {
		enum cgroup_mode mode;
		const char *controller, *rel, *out;
	} good[] = {
		{ CGROUP_V1, "memory", "/kubepods/pod1", "/sys/fs/cgroup/memory/kubepods/pod1" },
		{ CGROUP_HYBRID, "cpu,cpuacct", "kubepods", "/sys/fs/cgroup/cpu,cpuacct/kubepods" },
		{ CGROUP_HYBRID, NULL, "/kubepods", "/sys/fs/cgroup/unified/kubepods" },
		{ CGROUP_V2, NULL, "/kubepods/pod1", "/sys/fs/cgroup/kubepods/pod1" },
		{ CGROUP_V2, "memory", "/kubepods", "/sys/fs/cgroup/kubepods" },
		{ CGROUP_V2, NULL, "/", "/sys/fs/cgroup" },
		{ CGROUP_V1, "pids", "", "/sys/fs/cgroup/pids" },
	};
	static const struct {
		enum cgroup_mode mode;
		const char *controller, *rel;
	} bad[] = {
		{ CGROUP_V1, NULL, "/kubepods" },    { CGROUP_V1, "..", "/kubepods" },
		{ CGROUP_V1, "a/b", "/kubepods" },   { CGROUP_V1, "", "/kubepods" },
		{ CGROUP_V2, NULL, "/kubepods/.." }, { CGROUP_UNAVAILABLE, "memory", "/x" },
	};
	struct crisp_error err;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		_cleanup_free_ char *r = cgroup_dir(good[i].mode, "/sys/fs/cgroup",
						    good[i].controller, good[i].rel, &err);
		is_str(r, good[i].out, "cgroup_dir %s %s %s", cgroup_mode_name(good[i].mode),
		       good[i].controller ? good[i].controller : "-", good[i].rel);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *r = cgroup_dir(bad[i].mode, "/sys/fs/cgroup",
						    bad[i].controller, bad[i].rel, &err);
		ok(!r, "cgroup_dir %s %s %s refused", cgroup_mode_name(bad[i].mode),
		   bad[i].controller ? bad[i].controller : "-", bad[i].rel);
	}
}

static unsigned long long blocks_of(const char *path)
{
	struct stat sb;

	if (lstat(at("%s", path), &sb) < 0)
		return diag("lstat %s: %s", path, strerror(errno)), 0;
	return (unsigned long long)sb.st_blocks * 512;
}

static void test_disk_usage(void)
{
	static char data[100 * 1024];
	uint64_t bytes = 0, inodes = 0;
	unsigned long long expect;
	struct crisp_error err;
	int fd;

	memset(data, 'x', sizeof(data));
	dir("du/layer/sub/deeper");
	put_len("du/layer/sub/file", data, sizeof(data));
	if (link(at("du/layer/sub/file"), at("du/layer/hardlink")) < 0)
		diag("link: %s", strerror(errno));
	fd = open(at("du/layer/sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, 1LL << 30) < 0 || pwrite(fd, "y", 1, 1LL << 29) != 1)
		diag("sparse: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	link_to("/nonexistent/target", "du/layer/symlink");
	put("du/layer/empty", "");
	put("du/outside", "not counted");

	expect = blocks_of("du/layer") + blocks_of("du/layer/sub") +
		 blocks_of("du/layer/sub/deeper") + blocks_of("du/layer/sub/file") +
		 blocks_of("du/layer/sparse") + blocks_of("du/layer/symlink") +
		 blocks_of("du/layer/empty");
	if (!ok(disk_usage(at("du/layer"), &bytes, &inodes, &err) == 0, "disk usage of a layer"))
		diag("%s", err.msg);
	is_int(bytes, expect, "disk usage: blocks * 512, the hardlinked file once");
	is_int(inodes, 7, "disk usage: 7 inodes (3 dirs, file, sparse, symlink, empty)");
	ok(bytes >= sizeof(data) && bytes < sizeof(data) + 200 * 1024,
	   "disk usage: the 1 GiB sparse file counts for its blocks only (%llu bytes)",
	   (unsigned long long)bytes);

	/* Both names of the hardlink inside: still once. */
	if (link(at("du/layer/sub/file"), at("du/layer/sub/deeper/third")) < 0)
		diag("link: %s", strerror(errno));
	ok(disk_usage(at("du/layer"), &bytes, &inodes, &err) == 0 && bytes == expect && inodes == 7,
	   "disk usage: a third link adds nothing");

	bytes = inodes = 12345;
	ok(disk_usage(at("du/none"), &bytes, &inodes, &err) < 0 && err.code == CRISP_E_NOT_FOUND,
	   "disk usage of a missing directory: not found");
	ok(bytes == 12345 && inodes == 12345, "disk usage: outputs untouched on failure");
	ok(disk_usage(at("du/outside"), &bytes, &inodes, &err) < 0 && err.code == CRISP_E_INVALID,
	   "disk usage of a file: invalid");
	like(err.msg, "not a directory", "and says so");
	ok(disk_usage(at("du/layer/symlink"), &bytes, &inodes, &err) < 0,
	   "disk usage of a symlink: refused, not followed");
}

/* FTW_MOUNT: a volume mounted inside the layer is not counted. Root only, in
 * a child with its own mount namespace so nothing is left mounted. */
static void test_disk_usage_mount(void)
{
	uint64_t bytes, inodes;
	struct crisp_error err;
	int pipefd[2], status;
	uint64_t result[4] = { 0 };
	pid_t child;

	if (geteuid() != 0) {
		diag("skipping disk usage across a mount: needs root");
		return;
	}
	dir("dum/layer/vol");
	put("dum/layer/file", "abc");
	if (disk_usage(at("dum/layer"), &bytes, &inodes, &err) < 0)
		diag("%s", err.msg);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return (void)diag("pipe: %s", strerror(errno));
	child = fork();
	if (child == 0) {
		static char data[64 * 1024];
		int fd;

		memset(data, 'z', sizeof(data));
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", at("dum/layer/vol"), "tmpfs", 0, "size=1m") < 0)
			_exit(2);
		fd = open(at("dum/layer/vol/big"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, data, sizeof(data)) != sizeof(data))
			_exit(3);
		close(fd);
		if (disk_usage(at("dum/layer"), &result[0], &result[1], &err) < 0)
			_exit(4);
		result[2] = 1;
		if (write(pipefd[1], result, sizeof(result)) != sizeof(result))
			_exit(5);
		close(pipefd[0]);
		close(pipefd[1]);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], result, sizeof(result)) != sizeof(result))
		memset(result, 0, sizeof(result));
	close(pipefd[0]);
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && result[2] == 1,
	   "disk usage with a tmpfs mounted inside ran (status %d)", status);
	/* The mount point itself lies on the other filesystem: nftw skips it. */
	is_int(result[0], bytes - blocks_of("dum/layer/vol"),
	       "disk usage: the mounted volume's 64 KiB are not counted");
	is_int(result[1], inodes - 1, "disk usage: nor its inodes");
}

static void test_remove(void)
{
	struct crisp_error err;

	/* v1: every hierarchy, symlinked ones reached through their target. */
	dir("rm/cpu,cpuacct/kubepods/pod1/ctr1/sub");
	dir("rm/cpu,cpuacct/kubepods/pod2");
	link_to("cpu,cpuacct", "rm/cpu");
	dir("rm/memory/kubepods/pod1/ctr1");
	dir("rm/memory/kubepods/pod1/ctr2");
	dir("rm/pids/kubepods");
	dir("rm/systemd/kubepods/pod1");
	dir("rm/unified/kubepods/pod1/ctr1");
	put("rm/not-a-hierarchy", "x");
	if (!ok(cgroup_remove_in(CGROUP_HYBRID, at("rm"), "/kubepods/pod1", &err) == 0,
		"remove: v1 tree in every hierarchy"))
		diag("%s", err.msg);
	ok(!exists("rm/cpu,cpuacct/kubepods/pod1") && !exists("rm/memory/kubepods/pod1") &&
		   !exists("rm/systemd/kubepods/pod1") && !exists("rm/unified/kubepods/pod1"),
	   "remove: pod1 gone from every hierarchy");
	ok(exists("rm/cpu,cpuacct/kubepods/pod2") && exists("rm/memory/kubepods") &&
		   exists("rm/pids/kubepods") && exists("rm/cpu"),
	   "remove: its siblings, parents and the symlink stay");
	ok(cgroup_remove_in(CGROUP_HYBRID, at("rm"), "/kubepods/pod1", &err) == 0,
	   "remove: again, nothing left: fine");
	ok(cgroup_remove(at("rm"), "/kubepods/pod2", &err) == 0 &&
		   !exists("rm/cpu,cpuacct/kubepods/pod2"),
	   "remove: with the mode detected");

	/* Not empty (processes, here a file): reported, the rest still goes. */
	dir("rm/memory/kubepods/pod3/a");
	put("rm/memory/kubepods/pod3/a/busy", "x");
	dir("rm/pids/kubepods/pod3");
	ok(cgroup_remove_in(CGROUP_V1, at("rm"), "kubepods/pod3", &err) < 0 &&
		   err.code == CRISP_E_PRECONDITION,
	   "remove: a cgroup that cannot go is reported");
	like(err.msg, "memory/kubepods/pod3/a", "remove: naming the deepest cgroup that stayed");
	ok(!exists("rm/pids/kubepods/pod3"), "remove: other hierarchies are still cleaned");

	/* A symlink inside is not followed. */
	dir("rm-outside/keep");
	dir("rm/memory/kubepods/pod4");
	link_to("../../../rm-outside", "rm/memory/kubepods/pod4/link");
	ok(cgroup_remove_in(CGROUP_V1, at("rm"), "kubepods/pod4", &err) < 0,
	   "remove: a symlink inside makes it not empty");
	ok(exists("rm-outside/keep"), "remove: and what it points to is untouched");
	dir("rm/memory/kubepods/pod5");
	link_to("../../../rm-outside", "rm/memory/kubepods/pod5-link");
	ok(cgroup_remove_in(CGROUP_V1, at("rm"), "kubepods/pod5-link", &err) < 0 &&
		   exists("rm-outside/keep"),
	   "remove: a relpath that is a symlink is refused");
	link_to("../../rm-outside", "rm/memory/via");
	ok(cgroup_remove_in(CGROUP_V1, at("rm"), "via/keep", &err) < 0 && exists("rm-outside/keep"),
	   "remove: a symlink on the way is not followed");

	/* v2: the root is the hierarchy. */
	dir("rm2/kubepods/pod1/ctr1");
	dir("rm2/kubepods/pod2");
	ok(cgroup_remove_in(CGROUP_V2, at("rm2"), "/kubepods/pod1", &err) == 0 &&
		   !exists("rm2/kubepods/pod1") && exists("rm2/kubepods/pod2"),
	   "remove: v2");

	/* Bad relpaths. */
	ok(cgroup_remove_in(CGROUP_V2, at("rm2"), "/", &err) < 0 && err.code == CRISP_E_INVALID,
	   "remove: the root is refused");
	ok(cgroup_remove_in(CGROUP_V2, at("rm2"), "", &err) < 0 && err.code == CRISP_E_INVALID,
	   "remove: the root spelled '' is refused");
	ok(cgroup_remove_in(CGROUP_V2, at("rm2"), "/kubepods/../kubepods", &err) < 0 &&
		   err.code == CRISP_E_INVALID && exists("rm2/kubepods"),
	   "remove: '..' is refused");
	ok(cgroup_remove_in(CGROUP_V2, at("rm-none"), "/kubepods", &err) < 0,
	   "remove: a missing root is an error");
	ok(cgroup_remove_in(CGROUP_UNAVAILABLE, at("rm2"), "/kubepods", &err) < 0 &&
		   err.code == CRISP_E_UNAVAILABLE,
	   "remove: no cgroups");
	/* Deeper than any cgroup tree: bounded. */
	{
		char deep[4096] = "rm2/deep";

		for (int i = 0; i < 70; i++)
			strcat(deep, "/d");
		dir(deep);
		ok(cgroup_remove_in(CGROUP_V2, at("rm2"), "deep", &err) < 0 && exists("rm2/deep"),
		   "remove: a tree deeper than 64 levels is refused, not recursed");
		like(err.msg, "deeper than 64 levels", "remove: and says so");
	}
}

/* --- the real kernel (root, cgroup v1 hybrid host) ------------------------- */

static long self_rss_anon(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static void test_live_self(void)
{
	struct cgroup_stats st, st2;
	struct crisp_error err;
	struct timespec cpu;
	volatile unsigned long spin = 0;
	size_t big = 32 << 20;
	char *mem;

	mem = xmalloc(big);
	for (size_t i = 0; i < big; i += 4096)
		((volatile char *)mem)[i] = 1;
	if (!ok(cgroup_stats_pid(CGROUP_ROOT, "/proc", getpid(), &st, &err) == 0,
		"live: stats of this test process"))
		diag("%s", err.msg);
	diag("live: cpu %llu ns, memory usage %llu, working set %llu, rss %llu, faults %llu/%llu, "
	     "oom %llu, have pids %d (%llu)",
	     (unsigned long long)st.cpu_usage_ns, (unsigned long long)st.memory_usage,
	     (unsigned long long)st.memory_working_set, (unsigned long long)st.memory_rss,
	     (unsigned long long)st.page_faults, (unsigned long long)st.major_page_faults,
	     (unsigned long long)st.oom_kills, st.have_pids, (unsigned long long)st.pids);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	ok(st.have_cpu && st.cpu_usage_ns >= (uint64_t)cpu.tv_sec * 1000000000 + cpu.tv_nsec,
	   "live: the cgroup used at least this process's cpu time");
	ok(st.have_memory && st.memory_working_set <= st.memory_usage,
	   "live: working set <= usage");
	ok(st.memory_rss >= (uint64_t)self_rss_anon(),
	   "live: cgroup rss >= this process's anonymous memory (%ld)", self_rss_anon());
	ok(st.page_faults >= big / 4096 / 2, "live: page faults include ours");
	for (unsigned long i = 0; i < 50000000; i++)
		spin += i;
	ok(cgroup_stats_pid(CGROUP_ROOT, "/proc", getpid(), &st2, &err) == 0 &&
		   st2.cpu_usage_ns > st.cpu_usage_ns,
	   "live: cpu usage grows with work");
	free(mem);
}

static void test_live_netdev(void)
{
	struct netdev_stats st, st2;
	struct crisp_error err;

	if (!ok(netdev_stats_pid("/proc", 1, "lo", &st, &err) == 0, "live: lo of pid 1"))
		diag("%s", err.msg);
	ok(st.found, "live: pid 1's netns has lo");
	ok(netdev_stats_pid("/proc", 1, "lo", &st2, &err) == 0 && st2.rx_bytes >= st.rx_bytes &&
		   st2.tx_bytes >= st.tx_bytes,
	   "live: lo counters never go back");
	ok(netdev_stats_pid("/proc", 1, "nosuchif0", &st, &err) == 0 && !st.found,
	   "live: an interface pid 1's netns lacks");
}

/* --- cAdvisor's further numbers ------------------------------------------------ */

static void is_u64(uint64_t got, uint64_t want, const char *what)
{
	if (!ok(got == want, "%s", what))
		diag("got %llu, want %llu", (unsigned long long)got, (unsigned long long)want);
}

/* A fake <proc>/<pid>/fd: n regular fds and s sockets. */
static void fake_fds(int pid, int n, int s)
{
	char path[128], target[64];

	for (int i = 0; i < n + s; i++) {
		snprintf(path, sizeof(path), "proc/%d/fd/%d", pid, i);
		if (i < n)
			snprintf(target, sizeof(target), "/dev/null");
		else
			snprintf(target, sizeof(target), "socket:[%d]", 1000 + i);
		dir(at("proc/%d/fd", pid) + strlen(tmp) + 1);
		link_to(target, path);
	}
}

/* The limits of one container's count, as runtimed gives them. */
static const struct cgroup_fd_limits fd_lim = { CGROUP_FDS_COUNT_MAX, CGROUP_FDS_PROCS_MAX };

/* v1 with cpu and cpuacct apart (this host's layout), every file the
 * extras come from, blkio, and fds counted from cgroup.procs (apart). */
static void test_v1_extras(void)
{
	struct cgroup_stats st;
	struct crisp_error err;
	const char *rel = "kp/pod9/ctr9";

	v1_cgroup("x1", "cpuacct", rel, 5000000000ull, 10485760, 3000000, 2000000, 11, 1, 4, 3);
	put(at("x1/cpuacct/%s/cpuacct.usage_user", rel) + strlen(tmp) + 1, "3000000000\n");
	put(at("x1/cpuacct/%s/cpuacct.usage_sys", rel) + strlen(tmp) + 1, "2000000000\n");
	put(at("x1/cpu/%s/cpu.stat", rel) + strlen(tmp) + 1,
	    "nr_periods 120\nnr_throttled 7\nthrottled_time 350000000\nnr_bursts 0\n"
	    "burst_time 0\n");
	put(at("x1/cpu/%s/cpu.shares", rel) + strlen(tmp) + 1, "1024\n");
	put(at("x1/cpu/%s/cpu.cfs_period_us", rel) + strlen(tmp) + 1, "100000\n");
	put(at("x1/memory/%s/memory.failcnt", rel) + strlen(tmp) + 1, "9\n");
	put(at("x1/memory/%s/memory.max_usage_in_bytes", rel) + strlen(tmp) + 1, "20000000\n");
	put(at("x1/memory/%s/memory.kmem.usage_in_bytes", rel) + strlen(tmp) + 1, "327680\n");
	put(at("x1/memory/%s/memory.limit_in_bytes", rel) + strlen(tmp) + 1, "67108864\n");
	put(at("x1/memory/%s/memory.memsw.limit_in_bytes", rel) + strlen(tmp) + 1, "134217728\n");
	put(at("x1/pids/%s/pids.max", rel) + strlen(tmp) + 1, "max\n");
	put(at("x1/pids/%s/cgroup.procs", rel) + strlen(tmp) + 1, "6100\n6101\n6102\n");
	fake_fds(6100, 3, 2);
	fake_fds(6101, 1, 0);
	/* 6102 is gone: it has no fds, and is no error. */
	put(at("x1/blkio/%s/blkio.throttle.io_service_bytes_recursive", rel) + strlen(tmp) + 1,
	    "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n"
	    "8:0 Total 12288\n253:1 Read 1\n253:1 Write 2\n253:1 Total 3\nTotal 12291\n");
	put(at("x1/blkio/%s/blkio.throttle.io_serviced_recursive", rel) + strlen(tmp) + 1,
	    "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n");
	put("proc/6100/cgroup", "9:blkio:/kp/pod9/ctr9\n8:pids:/kp/pod9/ctr9\n"
				"7:memory:/kp/pod9/ctr9\n2:cpuacct:/kp/pod9/ctr9\n"
				"1:cpu:/kp/pod9/ctr9\n");

	if (!ok(cgroup_stats_pid_in(CGROUP_V1, at("x1"), at("proc"), 6100, false, &st, &err) == 0,
		"v1 extras: stats of pid"))
		diag("%s", err.msg);
	is_u64(st.cpu_user_ns, 3000000000ull, "v1 extras: user ns from cpuacct.usage_user");
	is_u64(st.cpu_system_ns, 2000000000ull, "v1 extras: system ns from cpuacct.usage_sys");
	is_u64(st.cfs_periods, 120, "v1 extras: nr_periods");
	is_u64(st.cfs_throttled_periods, 7, "v1 extras: nr_throttled");
	is_u64(st.cfs_throttled_ns, 350000000, "v1 extras: throttled_time ns");
	is_u64(st.cpu_shares, 1024, "v1 extras: cpu.shares");
	is_u64(st.cpu_period_us, 100000, "v1 extras: cpu.cfs_period_us");
	is_u64(st.memory_cache, 8192, "v1 extras: total_cache (not cache)");
	is_u64(st.memory_mapped_file, 0, "v1 extras: total_mapped_file");
	is_u64(st.memory_swap, 0, "v1 extras: no total_swap without swap accounting: 0");
	is_u64(st.memory_failcnt, 9, "v1 extras: memory.failcnt");
	is_u64(st.memory_max_usage, 20000000, "v1 extras: memory.max_usage_in_bytes");
	is_u64(st.memory_kernel, 327680, "v1 extras: memory.kmem.usage_in_bytes");
	is_u64(st.memory_limit, 67108864, "v1 extras: memory.limit_in_bytes");
	is_u64(st.memory_swap_limit, 134217728, "v1 extras: memory.memsw.limit_in_bytes");
	is_u64(st.pids_max, 0, "v1 extras: pids.max 'max' is 0");
	is_u64(st.n_blkio, 2, "v1 extras: two blkio devices");
	ok(st.blkio[0].major == 8 && st.blkio[0].minor == 0 && st.blkio[0].read_bytes == 4096 &&
		   st.blkio[0].write_bytes == 8192 && st.blkio[0].reads == 1 &&
		   st.blkio[0].writes == 2,
	   "v1 extras: 8:0 read/write bytes and ios");
	ok(st.blkio[1].major == 253 && st.blkio[1].minor == 1 && st.blkio[1].read_bytes == 1 &&
		   st.blkio[1].write_bytes == 2 && st.blkio[1].reads == 0,
	   "v1 extras: 253:1, not in io_serviced: 0 ios");

	/* The parent (the pod): extras are the containers'. */
	put("x1/pids/kp/pod9/cgroup.procs", "6100\n");
	put("x1/pids/kp/pod9/pids.max", "1000\n");
	dir("x1/cpu/kp/pod9");
	v1_cgroup("x1", "cpuacct", "kp/pod9", 1, 2, 3, 4, 5, 6, 7, 8);
	if (!ok(cgroup_stats_pid_in(CGROUP_V1, at("x1"), at("proc"), 6100, true, &st, &err) == 0,
		"v1 extras: stats of the parent"))
		diag("%s", err.msg);
	is_u64(st.pids, 8, "v1 extras: the parent's summary is read");
	is_u64(st.pids_max, 0, "v1 extras: nor its pids.max (extras are the containers')");
	put("x1/cpu/kp/pod9/cpu.stat", "nr_periods 5\n");
	put("x1/blkio/kp/pod9/blkio.throttle.io_serviced", "8:0 Read 1\n");
	ok(cgroup_stats_pid_in(CGROUP_V1, at("x1"), at("proc"), 6100, true, &st, &err) == 0 &&
		   st.cfs_periods == 0 && st.n_blkio == 0,
	   "v1 extras: nor its cpu and blkio files");
	memset(&st, 0xff, sizeof(st));
	if (!ok(cgroup_stats_path(CGROUP_V1, at("x1"), "kp/pod9", &st, &err) == 0,
		"v1 extras: stats by path"))
		diag("%s", err.msg);
	ok(st.pids_max == 1000 && st.cfs_periods == 5 && st.n_blkio == 1 && st.blkio[0].reads == 1,
	   "v1 extras: by path: extras (the flat blkio file when no _recursive one)");

	/* Kernels before 4.7: cpuacct.stat in USER_HZ ticks. */
	v1_cgroup("x2", "cpuacct", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	put("x2/cpuacct/c/cpuacct.stat", "user 250\nsystem 100\n");
	put("proc/6200/cgroup", "2:cpuacct:/c\n1:cpu:/c\n3:memory:/c\n");
	if (!ok(cgroup_stats_pid_in(CGROUP_V1, at("x2"), at("proc"), 6200, false, &st, &err) == 0,
		"v1 ticks: stats of pid (no cpu/c: the cpu extras are optional)"))
		diag("%s", err.msg);
	is_u64(st.cpu_user_ns, 250 * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)),
	       "v1 ticks: user from cpuacct.stat");
	is_u64(st.cpu_system_ns, 100 * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)),
	       "v1 ticks: system from cpuacct.stat");

	/* Garbage in an extra's file is an error naming it, like the others. */
	put(at("x1/cpu/%s/cpu.shares", rel) + strlen(tmp) + 1, "lots\n");
	ok(cgroup_stats_pid_in(CGROUP_V1, at("x1"), at("proc"), 6100, false, &st, &err) < 0,
	   "v1 extras: a bad cpu.shares fails");
	like(err.msg, "cpu.shares: 'lots' is not a number", "and says which file");
	put(at("x1/cpu/%s/cpu.shares", rel) + strlen(tmp) + 1, "1024\n");
}

/* One count: 0 when it succeeded, with what it found in *c. */
static int count_fds(enum cgroup_mode mode, const char *root, int pid, uint64_t max_fds,
		     uint64_t max_procs, struct cgroup_fd_count *c, struct crisp_error *err)
{
	const struct cgroup_fd_limits lim = { max_fds, max_procs };

	memset(c, 0xff, sizeof(*c));
	err_clear(err);
	return cgroup_count_fds_pid(mode, at("%s", root), at("proc"), pid, &lim, c, err);
}

static void is_count(const struct cgroup_fd_count *c, uint64_t fds, uint64_t sockets,
		     uint64_t procs, bool truncated, const char *what)
{
	if (!ok(c->fds == fds && c->sockets == sockets && c->procs == procs &&
			c->truncated == truncated,
		"%s", what))
		diag("got %llu fds, %llu sockets, %llu processes, truncated %d; want %llu, %llu, "
		     "%llu, %d",
		     (unsigned long long)c->fds, (unsigned long long)c->sockets,
		     (unsigned long long)c->procs, c->truncated, (unsigned long long)fds,
		     (unsigned long long)sockets, (unsigned long long)procs, truncated);
}

/* The fds of a container's processes, counted apart from its statistics
 * (runtimed does it on a worker thread): from cgroup.procs of the cgroup its
 * process is in, within limits that make the numbers floors, said so. */
static void test_fd_count(void)
{
	struct cgroup_fd_count c;
	struct crisp_error err;

	/* v1: the pids hierarchy's cgroup.procs. */
	put("f1/pids/kp/p/c/cgroup.procs", "7100\n7101\n7102\n");
	put("f1/memory/kp/p/c/cgroup.procs", "7100\n");
	put("proc/7100/cgroup", "8:pids:/kp/p/c\n7:memory:/kp/p/c\n");
	fake_fds(7100, 3, 2);
	fake_fds(7101, 1, 0);
	/* 7102 is gone: it has no fds, and is no error. */
	if (!ok(count_fds(CGROUP_V1, "f1", 7100, 100, 100, &c, &err) == 0, "fds v1: counted"))
		diag("%s", err.msg);
	is_count(&c, 6, 2, 3, false, "fds v1: 6 fds, 2 of them sockets, of 3 processes");
	ok(count_fds(CGROUP_HYBRID, "f1", 7100, 100, 100, &c, &err) == 0 && c.fds == 6,
	   "fds hybrid: from v1 too");
	ok(count_fds(CGROUP_V1, "f1", 7100, CGROUP_FDS_COUNT_MAX, CGROUP_FDS_PROCS_MAX, &c, &err) ==
			   0 &&
		   c.fds == 6,
	   "fds v1: with runtimed's limits");

	/* Limits: a floor, said to be one; exactly at a limit is no floor. */
	ok(count_fds(CGROUP_V1, "f1", 7100, 4, 100, &c, &err) == 0, "fds limit: counted");
	ok(c.fds == 4 && c.sockets <= 2 && c.procs == 1 && c.truncated,
	   "fds limit: 4 fds counted, a floor");
	ok(count_fds(CGROUP_V1, "f1", 7100, 100, 1, &c, &err) == 0, "procs limit: counted");
	is_count(&c, 5, 2, 1, true, "procs limit: the first process only, a floor");
	ok(count_fds(CGROUP_V1, "f1", 7100, 5, 1, &c, &err) == 0, "both limits: counted");
	is_count(&c, 5, 2, 1, true, "both limits: 5 fds of 1 process, a floor");
	ok(count_fds(CGROUP_V1, "f1", 7100, 6, 3, &c, &err) == 0, "at the limits: counted");
	is_count(&c, 6, 2, 3, false, "at the limits: everything, no floor");
	ok(count_fds(CGROUP_V1, "f1", 7100, 0, 3, &c, &err) == 0, "no fds allowed: counted");
	ok(c.fds == 0 && c.truncated, "no fds allowed: nothing, a floor");

	/* No pids line: memory's cgroup.procs; a pids line whose hierarchy
	 * is not mounted: the same. */
	put("f1/memory/kp/p/c2/cgroup.procs", "7103\n");
	put("proc/7103/cgroup", "7:memory:/kp/p/c2\n2:cpuacct:/kp/p/c2\n");
	fake_fds(7103, 2, 0);
	ok(count_fds(CGROUP_V1, "f1", 7103, 100, 100, &c, &err) == 0, "fds v1 memory: counted");
	is_count(&c, 2, 0, 1, false, "fds v1 memory: from memory's cgroup.procs");
	put("f2/memory/x/cgroup.procs", "7104\n");
	put("proc/7104/cgroup", "8:pids:/x\n7:memory:/x\n");
	fake_fds(7104, 1, 1);
	ok(count_fds(CGROUP_V1, "f2", 7104, 100, 100, &c, &err) == 0, "fds v1 no pids: counted");
	is_count(&c, 2, 1, 1, false, "fds v1 no pids mounted: from memory's");

	/* v2: the unified cgroup's. */
	put("f3/kp/c/cgroup.procs", "7105\n");
	put("proc/7105/cgroup", "0::/kp/c\n");
	fake_fds(7105, 2, 1);
	ok(count_fds(CGROUP_V2, "f3", 7105, 100, 100, &c, &err) == 0, "fds v2: counted");
	is_count(&c, 3, 1, 1, false, "fds v2: 3 fds, 1 a socket");
	put("f3/kp/none/cgroup.procs", "");
	put("proc/7111/cgroup", "0::/kp/none\n");
	ok(count_fds(CGROUP_V2, "f3", 7111, 100, 100, &c, &err) == 0,
	   "fds v2: a cgroup without processes");
	is_count(&c, 0, 0, 0, false, "fds v2: has no fds");

	/* Errors: each says what was wrong; nothing counted. */
	dir("f3/kp/nofile");
	put("proc/7110/cgroup", "0::/kp/nofile\n");
	ok(count_fds(CGROUP_V2, "f3", 7110, 100, 100, &c, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "fds v2: a cgroup without cgroup.procs is not found");
	like(err.msg, "kp/nofile/cgroup.procs", "and says which file");
	put("proc/7112/cgroup", "3:cpu:/x\n9:blkio:/x\n");
	ok(count_fds(CGROUP_V1, "f1", 7112, 100, 100, &c, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "fds v1: a process in none of pids, memory, cpuacct fails");
	like(err.msg, "no mounted hierarchy", "and says so");
	put("proc/7113/cgroup", "8:pids:/y\n");
	ok(count_fds(CGROUP_V1, "f2", 7113, 100, 100, &c, &err) < 0,
	   "fds v1: pids not mounted and no other line fails");
	put("proc/7106/cgroup", "1:memory:/x\n");
	ok(count_fds(CGROUP_V2, "f3", 7106, 100, 100, &c, &err) < 0, "fds v2: no '0::' line fails");
	like(err.msg, "has no '0::' line", "and says so");
	put("proc/7107/cgroup", "0::/kp/gone\n");
	ok(count_fds(CGROUP_V2, "f3", 7107, 100, 100, &c, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "fds v2: a cgroup gone is not found");
	like(err.msg, "kp/gone", "and names it");
	ok(count_fds(CGROUP_V2, "f3", 7199, 100, 100, &c, &err) < 0 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "fds: a process gone is not found");
	put("f3/kp/bad/cgroup.procs", "7108\n0\n");
	put("proc/7108/cgroup", "0::/kp/bad\n");
	ok(count_fds(CGROUP_V2, "f3", 7108, 100, 100, &c, &err) < 0,
	   "fds: pid 0 in cgroup.procs fails");
	like(err.msg, "cgroup.procs: '0' is not a pid", "and says so");
	put("f3/kp/bad/cgroup.procs", "7108\n\n");
	ok(count_fds(CGROUP_V2, "f3", 7108, 100, 100, &c, &err) < 0,
	   "fds: an empty line in cgroup.procs fails");
	link_to(at("f3/kp"), "f3/lnk");
	put("proc/7109/cgroup", "0::/lnk/c\n");
	ok(count_fds(CGROUP_V2, "f3", 7109, 100, 100, &c, &err) < 0,
	   "fds: a symlink in the cgroup's path is not followed");
	ok(count_fds(CGROUP_UNAVAILABLE, "f3", 7105, 100, 100, &c, &err) < 0 &&
		   err.code == CRISP_E_UNAVAILABLE,
	   "fds: no hierarchy fails");
	ok(cgroup_count_fds_pid(CGROUP_V2, at("f3"), at("proc"), 7105, NULL, &c, &err) < 0,
	   "fds: no limits fails");
	ok(c.fds == UINT64_MAX, "fds: a failure leaves the result alone");
}

/* A call's bound over several containers: each gets its own limits or what
 * is left; one cut short by what is left is not kept; nothing left, no
 * count. f1's 7100 holds 6 fds in 3 processes (test_fd_count). */
static void test_fd_budget(void)
{
	struct cgroup_fd_limits left = { 8, 1000 }, lim;
	struct cgroup_fd_count c;
	struct crisp_error err;
	const struct cgroup_fd_count floor = { 10, 0, 1, true };

	lim = cgroup_fd_budget_next(&(struct cgroup_fd_limits){ UINT64_MAX, UINT64_MAX });
	ok(lim.fds == CGROUP_FDS_COUNT_MAX && lim.procs == CGROUP_FDS_PROCS_MAX,
	   "budget: a container's own bounds when more is left");
	lim = cgroup_fd_budget_next(&left);
	ok(lim.fds == 8 && lim.procs == 1000, "budget: what is left when under the bounds");
	ok(count_fds(CGROUP_V1, "f1", 7100, lim.fds, lim.procs, &c, &err) == 0 && !c.truncated,
	   "budget: the first container counted whole");
	ok(cgroup_fd_budget_take(&left, &lim, &c), "budget: and kept");
	ok(left.fds == 2 && left.procs == 997, "budget: 2 fds and 997 processes left");
	lim = cgroup_fd_budget_next(&left);
	ok(count_fds(CGROUP_V1, "f1", 7100, lim.fds, lim.procs, &c, &err) == 0 && c.truncated &&
		   c.fds == 2,
	   "budget: the second cut short at 2");
	ok(!cgroup_fd_budget_take(&left, &lim, &c), "budget: by the call's bound: not kept");
	lim = cgroup_fd_budget_next(&left);
	ok(left.fds == 0 && lim.fds == 0, "budget: none left, no more counts");
	/* Cut short by the container's own bound: a floor worth showing. */
	left = (struct cgroup_fd_limits){ 1 << 20, 1 << 20 };
	lim = cgroup_fd_budget_next(&left);
	ok(cgroup_fd_budget_take(&left, &lim, &floor), "budget: a container's own floor is kept");
	ok(left.fds == (1 << 20) - 10 && left.procs == (1 << 20) - 1,
	   "budget: and taken from what is left");
}

static void test_v2_extras(void)
{
	struct cgroup_stats st;
	struct crisp_error err;

	v2_cgroup("y2", "kp/pod/ctr", 7000000, 10485760, 3000000, 2000000, 11, 1, 4, 3);
	put("y2/kp/pod/ctr/cpu.stat",
	    "usage_usec 7000000\nuser_usec 4000000\nsystem_usec 3000000\nnr_periods 50\n"
	    "nr_throttled 5\nthrottled_usec 250000\nnr_bursts 0\nburst_usec 0\n");
	put("y2/kp/pod/ctr/cpu.max", "20000 100000\n");
	put("y2/kp/pod/ctr/cpu.weight", "39\n");
	put("y2/kp/pod/ctr/memory.swap.current", "4096\n");
	put("y2/kp/pod/ctr/memory.peak", "30000000\n");
	put("y2/kp/pod/ctr/memory.max", "67108864\n");
	put("y2/kp/pod/ctr/memory.swap.max", "max\n");
	put("y2/kp/pod/ctr/pids.max", "512\n");
	put("y2/kp/pod/ctr/cgroup.procs", "6300\n");
	put("y2/kp/pod/ctr/io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
				     "253:0 rbytes=5 wbytes=6 rios=7 wios=8 dbytes=0 dios=0\n");
	fake_fds(6300, 2, 1);
	put("proc/6300/cgroup", "0::/kp/pod/ctr\n");

	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("y2"), at("proc"), 6300, false, &st, &err) == 0,
		"v2 extras: stats of pid"))
		diag("%s", err.msg);
	is_u64(st.cpu_user_ns, 4000000000ull, "v2 extras: user_usec in ns");
	is_u64(st.cpu_system_ns, 3000000000ull, "v2 extras: system_usec in ns");
	is_u64(st.cfs_periods, 50, "v2 extras: nr_periods");
	is_u64(st.cfs_throttled_periods, 5, "v2 extras: nr_throttled");
	is_u64(st.cfs_throttled_ns, 250000000, "v2 extras: throttled_usec in ns");
	is_u64(st.cpu_period_us, 100000, "v2 extras: period from cpu.max");
	/* runc wrote 1024 shares as weight 39; back, it is 998, as in cAdvisor. */
	is_u64(st.cpu_shares, 998, "v2 extras: cpu.weight 39 is 998 shares");
	is_u64(st.memory_cache, 40960, "v2 extras: cache is memory.stat file");
	is_u64(st.memory_kernel, 8192, "v2 extras: kernel from memory.stat kernel");
	is_u64(st.memory_swap, 4096, "v2 extras: memory.swap.current");
	is_u64(st.memory_max_usage, 30000000, "v2 extras: memory.peak");
	is_u64(st.memory_failcnt, 5, "v2 extras: failcnt is memory.events max");
	is_u64(st.memory_limit, 67108864, "v2 extras: memory.max");
	is_u64(st.memory_swap_limit, UINT64_MAX, "v2 extras: memory.swap.max 'max'");
	is_u64(st.pids_max, 512, "v2 extras: pids.max");
	ok(st.n_blkio == 2 && st.blkio[1].major == 253 && st.blkio[1].read_bytes == 5 &&
		   st.blkio[1].write_bytes == 6 && st.blkio[1].reads == 7 &&
		   st.blkio[1].writes == 8,
	   "v2 extras: io.stat devices");

	/* Before 5.18 memory.stat has no "kernel": kernel_stack + slab. */
	put("y2/kp/pod/ctr/memory.stat", "anon 1\nfile 2\nkernel_stack 16384\nslab 65536\n"
					 "inactive_file 0\npgfault 0\npgmajfault 0\n");
	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("y2"), at("proc"), 6300, false, &st, &err) == 0,
		"v2 extras: memory.stat without kernel"))
		diag("%s", err.msg);
	is_u64(st.memory_kernel, 16384 + 65536, "v2 extras: kernel = kernel_stack + slab");

	/* A cgroup with none of the extra files: zeros, no error. */
	v2_cgroup("y3", "c", 1, 2, 3, 4, 5, 6, 7, 8);
	put("proc/6301/cgroup", "0::/c\n");
	if (!ok(cgroup_stats_pid_in(CGROUP_V2, at("y3"), at("proc"), 6301, false, &st, &err) == 0,
		"v2 extras: none of the extra files"))
		diag("%s", err.msg);
	ok(st.cpu_period_us == 0 && st.cpu_shares == 0 && st.memory_max_usage == 0 &&
		   st.memory_limit == 0 && st.pids_max == 0 && st.n_blkio == 0,
	   "v2 extras: all 0");

	put("y3/c/cpu.max", "20000\n");
	ok(cgroup_stats_pid_in(CGROUP_V2, at("y3"), at("proc"), 6301, false, &st, &err) < 0,
	   "v2 extras: a cpu.max without period fails");
	like(err.msg, "cpu.max: '20000' is not 'quota|max period'", "and says so");
}

static void test_extra_parsers(void)
{
	static const struct {
		const char *text, *msg;
	} bad_blkio[] = {
		{ "8:0 Read\n", "line 1 ('8:0 Read') is not" },
		{ "8:0 Read 1 2\n", "is not 'major:minor operation count'" },
		{ "8 Read 1\n", "('8 Read 1')" },
		{ "8:x Read 1\n", "('8:x Read 1')" },
		{ "8:0 Read -1\n", "('8:0 Read -1')" },
		{ "8:0  Read 1\n", "is not" },
		{ "4294967296:0 Read 1\n", "is not" },
		{ "Total x\n", "('Total x')" },
		{ "\n", "line 1 ('')" },
	};
	static const struct {
		const char *text, *msg;
	} bad_io[] = {
		{ "8:0 rbytes\n", "'rbytes' is not key=number" },
		{ "8:0 rbytes=x\n", "'rbytes=x' is not key=number" },
		{ "8:0 =1\n", "'=1' is not key=number" },
		{ "x rbytes=1\n", "line 1 ('x rbytes=1')" },
		{ "8:0 rbytes=1  wbytes=2\n", "line 1" },
		{ "8:0 rbytes=1\n\n", "line 2 ('')" },
	};
	struct cgroup_stats *st = xcalloc(1, sizeof(*st));
	struct crisp_error err;
	uint64_t v;
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(bad_blkio); i++) {
		memset(st, 0, sizeof(*st));
		ok(cgroup_parse_blkio_v1(bad_blkio[i].text, strlen(bad_blkio[i].text), true, st,
					 "f", &err) < 0,
		   "blkio v1: bad %zu refused", i);
		like(err.msg, bad_blkio[i].msg, "blkio v1: bad %zu says so", i);
	}
	memset(st, 0, sizeof(*st));
	ok(cgroup_parse_blkio_v1("Total 0\n", 8, true, st, "f", &err) == 0 && st->n_blkio == 0,
	   "blkio v1: only a Total line: no device");
	ok(cgroup_parse_blkio_v1("8:0 Read 1\n8:0 Read 2\n", 22, true, st, "f", &err) == 0 &&
		   st->n_blkio == 1 && st->blkio[0].read_bytes == 2,
	   "blkio v1: a device seen again is the same entry");
	ok(cgroup_parse_blkio_v1("8:0 Read 1\08:0", 14, true, st, "f", &err) < 0,
	   "blkio v1: a NUL byte is refused");
	/* More devices than kept: the rest are left out, no overflow. */
	memset(st, 0, sizeof(*st));
	{
		char big[CGROUP_BLKIO_DEV_MAX * 2 * 24];
		size_t n = 0;

		for (int i = 0; i < CGROUP_BLKIO_DEV_MAX * 2; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "8:%d Read %d\n", i, i);
		ok(cgroup_parse_blkio_v1(big, n, true, st, "f", &err) == 0 &&
			   st->n_blkio == CGROUP_BLKIO_DEV_MAX &&
			   st->blkio[CGROUP_BLKIO_DEV_MAX - 1].read_bytes ==
				   CGROUP_BLKIO_DEV_MAX - 1,
		   "blkio v1: devices beyond %d are left out", CGROUP_BLKIO_DEV_MAX);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_io); i++) {
		memset(st, 0, sizeof(*st));
		ok(cgroup_parse_io_stat(bad_io[i].text, strlen(bad_io[i].text), st, "f", &err) < 0,
		   "io.stat: bad %zu refused", i);
		like(err.msg, bad_io[i].msg, "io.stat: bad %zu says so", i);
	}
	memset(st, 0, sizeof(*st));
	ok(cgroup_parse_io_stat("", 0, st, "f", &err) == 0 && st->n_blkio == 0,
	   "io.stat: empty (no I/O yet)");
	ok(cgroup_parse_io_stat("8:16 wios=3 newkey=9\n", 21, st, "f", &err) == 0 &&
		   st->n_blkio == 1 && st->blkio[0].minor == 16 && st->blkio[0].writes == 3 &&
		   st->blkio[0].read_bytes == 0,
	   "io.stat: unknown keys skipped, absent ones 0");
	free(st);

	ok(cgroup_parse_limit("max\n", 4, 7, &v, "f", &err) == 0 && v == 7, "limit: max");
	ok(cgroup_parse_limit("42\n", 3, 7, &v, "f", &err) == 0 && v == 42, "limit: number");
	ok(cgroup_parse_limit("maximum\n", 8, 7, &v, "f", &err) < 0, "limit: garbage refused");
	ok(cgroup_parse_cpu_max("max 100000\n", 11, &v, "f", &err) == 0 && v == 100000,
	   "cpu.max: max and period");
	ok(cgroup_parse_cpu_max("5000 20000", 10, &v, "f", &err) == 0 && v == 20000,
	   "cpu.max: quota and period, no newline");
	ok(cgroup_parse_cpu_max("5000 x\n", 7, &v, "f", &err) < 0, "cpu.max: bad period");
	ok(cgroup_parse_cpu_max("y 100\n", 6, &v, "f", &err) < 0, "cpu.max: bad quota");
	ok(cgroup_parse_cpu_max("1 2 3\n", 6, &v, "f", &err) < 0, "cpu.max: three fields");
	is_u64(cgroup_weight_to_shares(1), 2, "weight 1 is 2 shares");
	is_u64(cgroup_weight_to_shares(100), 2597, "weight 100 is 2597 shares");
	is_u64(cgroup_weight_to_shares(10000), 262144, "weight 10000 is 262144 shares");
	is_u64(cgroup_weight_to_shares(0), 0, "no weight, no shares");
	is_u64(cgroup_weight_to_shares(10001), 0, "a weight out of range, no shares");

	put("sys/dev/block/8:0/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n");
	put("sys/dev/block/8:1/uevent", "MAJOR=8\nMINOR=1\nDEVNAME=../../etc\n");
	put("sys/dev/block/8:2/uevent", "MAJOR=8\nMINOR=2\n");
	block_device_name(at("sys"), 8, 0, name, sizeof(name));
	is_str(name, "/dev/sda", "block device name from uevent");
	block_device_name(at("sys"), 8, 1, name, sizeof(name));
	is_str(name, "", "a name with '..' is not used");
	block_device_name(at("sys"), 8, 2, name, sizeof(name));
	is_str(name, "", "no DEVNAME: unknown");
	block_device_name(at("sys"), 9, 9, name, sizeof(name));
	is_str(name, "", "no such device: unknown");
}

/* This host: the extras of the test's own cgroup, read from the kernel. */
static void test_live_extras(void)
{
	struct cgroup_stats st;
	struct cgroup_fd_count c = { 0 };
	struct crisp_error err;
	int fds[2];
	int r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return (void)diag("socketpair: %s", strerror(errno));
	if (!ok(cgroup_stats_pid(CGROUP_ROOT, "/proc", getpid(), &st, &err) == 0,
		"live extras: stats of this test process"))
		diag("%s", err.msg);
	r = cgroup_count_fds_pid(cgroup_detect(CGROUP_ROOT), CGROUP_ROOT, "/proc", getpid(),
				 &fd_lim, &c, &err);
	if (!ok(r == 0, "live extras: fds of this test process's cgroup"))
		diag("%s", err.msg);
	diag("live extras: user %llu system %llu ns, cache %llu, kernel %llu, max usage %llu, "
	     "limit %llu, fds %llu, sockets %llu, shares %llu, period %llu, %zu blkio devices",
	     (unsigned long long)st.cpu_user_ns, (unsigned long long)st.cpu_system_ns,
	     (unsigned long long)st.memory_cache, (unsigned long long)st.memory_kernel,
	     (unsigned long long)st.memory_max_usage, (unsigned long long)st.memory_limit,
	     (unsigned long long)c.fds, (unsigned long long)c.sockets,
	     (unsigned long long)st.cpu_shares, (unsigned long long)st.cpu_period_us, st.n_blkio);
	ok(st.cpu_user_ns + st.cpu_system_ns > 0, "live extras: user + system cpu time");
	ok(st.memory_max_usage == 0 || st.memory_max_usage >= st.memory_usage,
	   "live extras: max usage >= usage (or not kept)");
	/* cgroup.procs of a big cgroup may list thousands: only when all
	 * were counted are the socketpair's sure to be. */
	if (r == 0 && !c.truncated)
		ok(c.fds >= 3 && c.sockets >= 2, "live extras: our fds and sockets are counted");
	close(fds[0]);
	close(fds[1]);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

/* This process's memory cgroup ("" for the root), from /proc/self/cgroup. */
static bool self_memory_cgroup(char *buf, size_t size)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *c = strstr(line, ":memory:/");
		if (c) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, size, "%s", c + 9);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* A real cgroup in the memory, pids and cpuacct hierarchies, below this
 * process's memory cgroup (so the harness's memory limits still hold): a
 * child moved into it, its stats, removal refused while it runs and done
 * after. The directories leading to it that the test had to make in pids
 * and cpuacct are removed at the end. */
static void test_live_cgroup(void)
{
	static const char *const hiers[] = { "memory", "pids", "cpuacct" };
	char base[256], top[512], rel[600], path[1024], pidbuf[32], made_dirs[16][1024];
	struct cgroup_stats st;
	struct crisp_error err;
	int status, sync[2], nmade = 0;
	pid_t child;
	bool ok_all = true;

	if (!self_memory_cgroup(base, sizeof(base)))
		return (void)diag("skipping live cgroup: no memory line in /proc/self/cgroup");
	snprintf(top, sizeof(top), "%s%scrisp-test-cgroup-%d", base, *base ? "/" : "",
		 (int)getpid());
	snprintf(rel, sizeof(rel), "%s/ctr", top);
	for (size_t i = 0; i < ARRAY_SIZE(hiers); i++) {
		char *p;

		snprintf(path, sizeof(path), "%s/%s/%s", CGROUP_ROOT, hiers[i], rel);
		/* Each missing level of base: made here, removed at the end. */
		for (p = path + strlen(CGROUP_ROOT) + strlen(hiers[i]) + 2; (p = strchr(p, '/'));
		     *p++ = '/') {
			*p = '\0';
			if (mkdir(path, 0755) == 0 && nmade < 16 &&
			    strncmp(path + strlen(CGROUP_ROOT) + strlen(hiers[i]) + 2, top,
				    strlen(top)) != 0)
				snprintf(made_dirs[nmade++], sizeof(made_dirs[0]), "%s", path);
		}
		if (mkdir(path, 0755) < 0)
			ok_all = false;
	}
	if (!ok(ok_all, "live: made cgroup %s in memory, pids, cpuacct", rel))
		goto out;
	if (pipe2(sync, O_CLOEXEC) < 0) {
		diag("pipe: %s", strerror(errno));
		goto out;
	}
	child = fork();
	if (child == 0) {
		char c;

		close(sync[1]);
		/* Wait until moved, touch some memory, wait to be killed. */
		if (read(sync[0], &c, 1) == 1) {
			/* volatile: the compiler may not drop memory never read. */
			volatile char *m = malloc(8 << 20);
			for (size_t i = 0; m && i < (8 << 20); i += 4096)
				m[i] = 2;
			for (;;)
				pause();
		}
		_exit(0);
	}
	close(sync[0]);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)child);
	ok_all = true;
	for (size_t i = 0; i < ARRAY_SIZE(hiers); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s/cgroup.procs", CGROUP_ROOT, hiers[i], rel);
		if (write_str(path, pidbuf) < 0)
			ok_all = false;
	}
	ok(ok_all, "live: moved a child into it");
	if (write(sync[1], "g", 1) != 1)
		diag("sync: %s", strerror(errno));
	close(sync[1]);
	for (int i = 0; i < 200; i++) {
		if (cgroup_stats_pid(CGROUP_ROOT, "/proc", child, &st, &err) == 0 &&
		    st.memory_rss >= (8 << 20))
			break;
		usleep(10000);
	}
	if (!ok(cgroup_stats_pid(CGROUP_ROOT, "/proc", child, &st, &err) == 0,
		"live: child's stats"))
		diag("%s", err.msg);
	ok(st.have_cpu && st.have_memory && st.have_pids, "live: cpu, memory and pids");
	is_int(st.pids, 1, "live: one process in it");
	ok(st.memory_rss >= (8 << 20) && st.memory_usage >= st.memory_rss,
	   "live: its 8 MiB are charged to it (rss %llu, usage %llu)",
	   (unsigned long long)st.memory_rss, (unsigned long long)st.memory_usage);
	ok(st.memory_working_set <= st.memory_usage && st.oom_kills == 0,
	   "live: working set <= usage, no oom kill");
	{
		struct cgroup_stats byp;
		int r = cgroup_stats_path(CGROUP_HYBRID, CGROUP_ROOT, rel, &byp, &err);

		ok(r == 0 && byp.pids == 1 && byp.have_cpu && byp.memory_rss >= (8 << 20),
		   "live: stats by path agree");
		if (r < 0)
			diag("%s", err.msg);
	}
	ok(cgroup_stats_pid_parent(CGROUP_ROOT, "/proc", child, &st, &err) == 0 && st.have_memory &&
		   st.have_pids && st.pids == 1 && st.memory_rss >= (8 << 20),
	   "live: the parent cgroup counts the child too");
	ok(cgroup_remove(CGROUP_ROOT, rel, &err) < 0 && err.code == CRISP_E_PRECONDITION,
	   "live: removal refused while a process is inside");
	like(err.msg, "processes still in it", "live: and says why");
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	if (!ok(cgroup_remove(CGROUP_ROOT, top, &err) == 0, "live: removed once empty"))
		diag("%s", err.msg);
	ok_all = true;
	for (size_t i = 0; i < ARRAY_SIZE(hiers); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", CGROUP_ROOT, hiers[i], top);
		if (access(path, F_OK) == 0)
			ok_all = false;
	}
	ok(ok_all, "live: gone from every hierarchy");
out:
	cgroup_remove(CGROUP_ROOT, top, &err);
	while (nmade > 0)
		if (rmdir(made_dirs[--nmade]) < 0)
			diag("rmdir %s: %s", made_dirs[nmade], strerror(errno));
}

static void test_live(void)
{
	if (geteuid() != 0) {
		diag("skipping live checks: need root");
		return;
	}
	if (!host_is_hybrid()) {
		diag("skipping live checks: this host is not cgroup v1 hybrid");
		return;
	}
	test_live_self();
	test_live_netdev();
	test_live_extras();
	test_live_cgroup();
}

int main(void)
{
	if (!mkdtemp(tmp)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_detect();
	test_relpath();
	test_v1();
	test_v1_layouts();
	test_v2();
	test_v1_extras();
	test_v2_extras();
	test_fd_count();
	test_fd_budget();
	test_extra_parsers();
	test_malformed();
	test_netdev();
	test_damage();
	test_slices();
	test_runc_paths();
	test_dirs();
	test_disk_usage();
	test_disk_usage_mount();
	test_remove();
	test_live();
	rm_tree(tmp);
	return done_testing();
}
