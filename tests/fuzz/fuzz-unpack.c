/* fuzz-unpack: a libFuzzer target for imaged/unpack.c, the code that turns
 * a registry's layer blob into files under imaged's root: libarchive's
 * decompression and tar parsing as crisp drives them, name cleaning,
 * whiteouts, hardlinks, replacement of earlier entries, limits.
 *
 * Each input is applied as a layer blob (plain, gzip or zstd: libarchive
 * detects it) into a fresh directory <base>/root, next to a sentinel
 * <base>/outside holding one file. After each run:
 *   - <base> must hold only root and outside, and outside only its file,
 *     unchanged: anything else is an escape, and the harness aborts;
 *   - no fd may be left open;
 *   - a failure must be INVALID or RESOURCE (INTERNAL means a host call
 *     failed, which the harness reports when FUZZ_UNPACK_LOG is set).
 * ASan and libFuzzer catch crashes, leaks and hangs.
 *
 * It must run as root (chown, mknod, security.capability), and a bug it
 * finds may write outside the sentinel's directory too: run it in a
 * throwaway VM or container, never on a machine you care about.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-unpack
 *	mkdir -p corpus && ./tests/fuzz/fuzz-unpack -max_total_time=60 corpus
 *
 * Any tar, tar.gz or tar.zst files make a good seed corpus (for instance
 * `tar --format=pax -cf corpus/seed.tar` of a small tree with symlinks,
 * hardlinks and .wh. files). FUZZ_UNPACK_LOG=1 prints each run's error. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imaged/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "secret"

static char base[64], rootp[128], outsidep[128], secretp[160];
static bool logging;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-unpack: %s\n", what);
	abort();
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	int fd;

	snprintf(base, sizeof(base), "%s/fuzz-unpack.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (strlen(base) > 48 || !mkdtemp(base))
		fail("mkdtemp");
	snprintf(rootp, sizeof(rootp), "%s/root", base);
	snprintf(outsidep, sizeof(outsidep), "%s/outside", base);
	snprintf(secretp, sizeof(secretp), "%s/" SECRET, outsidep);
	if (mkdir(outsidep, 0755) < 0)
		fail("mkdir outside");
	fd = open(secretp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, SECRET, strlen(SECRET)) != (ssize_t)strlen(SECRET))
		fail("create the sentinel");
	close(fd);
	logging = getenv("FUZZ_UNPACK_LOG") != NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		fail("opendir /proc/self/fd");
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

static void check_only(const char *dir, const char *a, const char *b)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		fail("opendir");
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, a) || (b && !strcmp(de->d_name, b)))
			continue;
		fprintf(stderr, "fuzz-unpack: %s/%s appeared outside the root\n", dir, de->d_name);
		fail("escape");
	}
	closedir(d);
}

static void check_outside(void)
{
	struct stat st;
	char buf[16] = { 0 };
	int fd;

	check_only(base, "root", "outside");
	check_only(outsidep, SECRET, NULL);
	if (lstat(outsidep, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0755)
		fail("the sentinel directory changed");
	if (lstat(secretp, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_mode & 07777) != 0644 || st.st_uid != 0)
		fail("the sentinel file changed");
	fd = open(secretp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != (ssize_t)strlen(SECRET) ||
	    strcmp(buf, SECRET) != 0)
		fail("the sentinel file's contents changed");
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small limits: the fuzzer should reach them, not fill the disk. */
	const struct unpack_limits lim = {
		.max_entries = 4096,
		.max_path_len = 1024,
		.max_total_bytes = 16 << 20,
		.max_xattr_bytes = 4096,
	};
	struct unpack_result res;
	struct crisp_error err;
	int blob, root, fds, r;

	if (!base[0])
		setup();
	fds = count_fds();
	blob = memfd_create("fuzz-unpack-blob", MFD_CLOEXEC);
	if (blob < 0 || (size && write(blob, data, size) != (ssize_t)size) ||
	    lseek(blob, 0, SEEK_SET) != 0)
		fail("memfd");
	if (mkdir(rootp, 0755) < 0)
		fail("mkdir root");
	root = open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		fail("open root");

	r = unpack_layer(blob, root, &lim, &res, &err);
	if (r < 0 && logging)
		fprintf(stderr, "fuzz-unpack: %s: %s\n", err_code_name(err.code), err.msg);
	if (r < 0 && err.code != CRISP_E_INVALID && err.code != CRISP_E_RESOURCE &&
	    err.code != CRISP_E_INTERNAL)
		fail("unexpected error code");
	if (r == 0 && strncmp(res.diff_id, "sha256:", 7) != 0)
		fail("no DiffID");

	close(root);
	close(blob);
	check_outside();
	if (count_fds() != fds)
		fail("file descriptor leak");
	if (nftw(rootp, rm_cb, 32, FTW_DEPTH | FTW_PHYS) < 0)
		fail("removing the root");
	return 0;
}
