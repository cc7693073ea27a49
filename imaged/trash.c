/* imaged's trash (see trash.h): quick renames in on the loop, deletion on a
 * worker thread, and the tree walk that deletes (also used for snapshot
 * directories that are removed in place). */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/imaged.h"
#include "imaged/trash.h"
#include "imaged/worker.h"

/* Deeper trees than this are not walked (each level holds a directory fd). */
#define CLEAR_MAX_DEPTH 4096
/* The "what" part of an entry's name: NAME_MAX leaves room for the rest. */
#define WHAT_MAX 180

static struct {
	int fd;           /* trash/ */
	pthread_t loop;   /* the thread that opened it: the event loop's */
	unsigned seq;     /* names: atomic, trash_move may run on any thread */
	bool running;     /* a job is emptying the trash */
	bool again;       /* ... and another is due after it */
	uint64_t started; /* now_ms() the running job was started */
} trash = { .fd = -1 };

/* ---- deleting a tree ---------------------------------------------------------- */

/* Whether fd, a directory in parent, is the root of a mount (a bind mount
 * too); kernels before 5.8 do not say, and then only another filesystem is
 * told, by its device number. A failure counts as a mount. */
static bool is_mount_root(int parent, int fd)
{
	struct statx p, st;

	if (statx(parent, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &p) < 0 ||
	    statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &st) < 0)
		return true;
	if (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
		return st.stx_attributes & STATX_ATTR_MOUNT_ROOT;
	return st.stx_dev_major != p.stx_dev_major || st.stx_dev_minor != p.stx_dev_minor;
}

/* openat2's RESOLVE_NO_XDEV where openat2 is missing (valgrind does not
 * know it). */
static int open_dir_same_mount(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && is_mount_root(dirfd, fd)) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}

/* Remove name in dirfd, depth levels down, whatever it is; 0 or -errno. A
 * symlink is unlinked, never followed; a directory is entered with
 * RESOLVE_NO_XDEV, so a mount point (a bind mount included) below it makes
 * it fail with EXDEV, and the mounted filesystem is left alone. Read-only
 * modes do not stop it: imaged has CAP_DAC_OVERRIDE and CAP_FOWNER for
 * exactly this (layers come with their own modes). */
static int remove_entry(int dirfd, const char *name, int depth)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	int sub, r;

	if (unlinkat(dirfd, name, 0) == 0)
		return 0;
	if (errno != EISDIR)
		return -errno;
	if (depth >= CLEAR_MAX_DEPTH)
		return -ELOOP;
	sub = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (sub < 0 && errno == ENOSYS)
		sub = open_dir_same_mount(dirfd, name);
	if (sub < 0)
		return -errno;
	r = snapshot_clear_dir(sub, depth + 1);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Declared in imaged.h (snapshot code uses it); it lives here so that the
 * content store, which moves blobs to the trash, links without the rest. */
int snapshot_clear_dir(int dirfd, int depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		r = -errno;
		close(dirfd);
		return r;
	}
	while ((errno = 0, e = readdir(d))) {
		int r2;

		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		r2 = remove_entry(dirfd, e->d_name, depth);
		if (r2 < 0)
			r = r2;
	}
	if (errno && r == 0)
		r = -errno;
	closedir(d);
	return r;
}

/* ---- moving in -------------------------------------------------------------------- */

int trash_open(int root_dirfd, struct crisp_error *err)
{
	int fd = mkdir_openat(root_dirfd, "trash", 0700);

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, fd, "cannot open the trash directory");
	safe_close(trash.fd);
	trash.fd = fd;
	trash.loop = pthread_self();
	return 0;
}

void trash_close(void)
{
	trash.fd = safe_close(trash.fd);
}

int trash_move(int dirfd, const char *name, const char *what, struct crisp_error *err)
{
	struct timespec ts;
	char to[WHAT_MAX + 64];

	if (trash.fd < 0)
		return err_set(err, CRISP_E_PRECONDITION, "cannot remove %s: no trash directory",
			       what);
	clock_gettime(CLOCK_REALTIME, &ts);
	/* The time keeps names apart across restarts (the trash may still
	 * hold entries of an earlier run), the counter within one;
	 * NOREPLACE makes a clash (a clock set back) an error, never a loss. */
	for (int tries = 0;; tries++) {
		unsigned seq = __atomic_add_fetch(&trash.seq, 1, __ATOMIC_RELAXED);

		snprintf(to, sizeof(to), "%.*s.%lld.%09ld.%u", WHAT_MAX, what, (long long)ts.tv_sec,
			 ts.tv_nsec, seq);
		if (renameat2(dirfd, name, trash.fd, to, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST && tries < 16)
			continue;
		if (errno == ENOENT)
			return err_set(err, CRISP_E_NOT_FOUND, "%s does not exist", what);
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot move %s to the trash",
				     what);
	}
}

int trash_discard(int dirfd, const char *name, const char *what)
{
	struct crisp_error err = { 0 };

	if (trash.fd >= 0 && pthread_equal(pthread_self(), trash.loop)) {
		if (trash_move(dirfd, name, what, &err) == 0) {
			log_debug("trash: %s moved in, to be deleted", what);
			trash_empty();
			return 0;
		}
		if (err.code == CRISP_E_NOT_FOUND)
			return -ENOENT;
		log_warn("%s; deleting it in place", err.msg);
	}
	return unlinkat(dirfd, name, 0) == 0 ? 0 : -errno;
}

/* ---- emptying -------------------------------------------------------------------- */

struct empty_job {
	int fd; /* trash/ opened anew, the job's own; -1 once the walk took it */
	unsigned removed, failed;
	int first_error; /* -errno */
};

/* On a worker thread: touches nothing of the loop's, logs nothing. */
static void empty_work(void *arg, struct crisp_error *err)
{
	struct empty_job *j = arg;
	DIR *d = fdopendir(j->fd);
	struct dirent *e;

	if (!d) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot read the trash directory");
		return;
	}
	j->fd = -1;
	while ((errno = 0, e = readdir(d))) {
		int r;

		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		r = remove_entry(dirfd(d), e->d_name, 0);
		if (r == 0) {
			j->removed++;
		} else {
			if (!j->failed++)
				j->first_error = r;
		}
	}
	if (errno)
		err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot read the trash directory");
	closedir(d);
}

static void empty_done(void *arg, const struct crisp_error *err)
{
	struct empty_job *j = arg;

	safe_close(j->fd);
	if (err->code != CRISP_E_OK)
		log_warn("trash: %s", err->msg);
	if (j->failed)
		log_warn("trash: %u entries could not be deleted (%s); they stay until the "
			 "trash is emptied again",
			 j->failed, strerror(-j->first_error));
	if (j->removed)
		log_debug("trash: deleted %u entries in %" PRIu64 " ms", j->removed,
			  now_ms() - trash.started);
	free(j);
	trash.running = false;
	if (trash.again) {
		trash.again = false;
		trash_empty();
	}
}

void trash_empty(void)
{
	struct empty_job *j;

	if (trash.fd < 0)
		return;
	if (trash.running) {
		trash.again = true;
		return;
	}
	j = xcalloc(1, sizeof(*j));
	/* Not a dup: that would share the directory offset, and a second job
	 * would read on where the first stopped. */
	j->fd = openat(trash.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->fd < 0) {
		log_warn("trash: cannot open its directory: %m");
		free(j);
		return;
	}
	trash.running = true;
	trash.started = now_ms();
	/* A thread of its own: deleting must not wait behind unpacks. */
	worker_start(empty_work, empty_done, j);
}

bool trash_emptying(void)
{
	return trash.running || trash.again;
}
