/* imaged's content store (see content.h for the layout and the invariant).
 *
 * Trust: the digest of an ingest names the file it is written to and the
 * blob it becomes, and comes from a manifest a registry sent. It is checked
 * against the exact OCI grammar before any use, and every file is reached
 * with openat/renameat2/unlinkat on a single checked component relative to
 * the store's own directory fds, with O_NOFOLLOW. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "imaged/content.h"
#include "imaged/digest.h"
#include "imaged/reference.h"
#include "imaged/trash.h"

#define IO_CHUNK (64 * 1024)

struct content_alg {
	const char *name;
	size_t hexlen;
	enum digest_alg id;
};

static const struct content_alg algs[] = {
	{ "sha256", 64, DIGEST_SHA256 },
	{ "sha512", 128, DIGEST_SHA512 },
};
_Static_assert(CONTENT_DIGEST_MAX >= DIGEST_STRING_MAX, "a digest string fits a content digest");
#define N_ALGS ARRAY_SIZE(algs)

struct content_store {
	int ingest_fd;
	int alg_fd[N_ALGS]; /* blobs/<alg> */
	/* Guards the list of running ingests, so one digest is never written by
	 * two at once and content_ingest_gc() leaves running ones alone. */
	pthread_mutex_t lock;
	struct content_ingest *active;
};

struct content_ingest {
	struct content_store *cs;
	size_t alg; /* index in algs */
	char digest[CONTENT_DIGEST_MAX];
	const char *hex; /* inside digest: the file name in ingest/ and blobs/<alg>/ */
	int fd;
	int64_t expected; /* -1: unknown */
	int64_t offset;
	struct digest_ctx md;
	bool poisoned;   /* an oversize or failed write: the file is garbage */
	bool registered; /* in cs->active */
	struct content_ingest *next;
};

static bool is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[len] == '\0';
}

/* The algorithm of a valid digest (reference.h's digest_valid: the exact
 * OCI grammar) and its hex part; -1 if not valid. */
static int digest_parse(const char *digest, const char **ret_hex)
{
	if (!digest_valid(digest))
		return -1;
	for (size_t i = 0; i < N_ALGS; i++) {
		size_t n = strlen(algs[i].name);

		if (strncmp(digest, algs[i].name, n) == 0 && digest[n] == ':') {
			if (ret_hex)
				*ret_hex = digest + n + 1;
			return (int)i;
		}
	}
	return -1;
}

/* An untrusted string fit for an error message: bounded and printable. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t i;

	if (!s)
		return "(null)";
	for (i = 0; s[i] && i + 4 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int bad_digest(const char *digest, struct crisp_error *err)
{
	char buf[96];
	return err_set(err, CRISP_E_INVALID, "invalid digest '%s'",
		       shown(digest, buf, sizeof(buf)));
}

/* mkdir_openat refuses a symlink planted in place of a store directory,
 * which would send blobs elsewhere. */
static int open_subdir(int dirfd, const char *name, const char *path, struct crisp_error *err)
{
	int fd = mkdir_openat(dirfd, name, 0700);

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, fd, "opening %s", path);
	return fd;
}

struct content_store *content_open(int root_dirfd, struct crisp_error *err)
{
	struct content_store *cs = xcalloc(1, sizeof(*cs));
	_cleanup_close_ int blobs_fd = -1;

	cs->ingest_fd = -1;
	for (size_t i = 0; i < N_ALGS; i++)
		cs->alg_fd[i] = -1;
	pthread_mutex_init(&cs->lock, NULL);

	blobs_fd = open_subdir(root_dirfd, "blobs", "blobs", err);
	if (blobs_fd < 0)
		goto fail;
	for (size_t i = 0; i < N_ALGS; i++) {
		char path[32];

		snprintf(path, sizeof(path), "blobs/%s", algs[i].name);
		cs->alg_fd[i] = open_subdir(blobs_fd, algs[i].name, path, err);
		if (cs->alg_fd[i] < 0)
			goto fail;
	}
	cs->ingest_fd = open_subdir(root_dirfd, "ingest", "ingest", err);
	if (cs->ingest_fd < 0)
		goto fail;
	return cs;
fail:
	err_prefix(err, "content store");
	content_close(cs);
	return NULL;
}

void content_close(struct content_store *cs)
{
	if (!cs)
		return;
	safe_close(cs->ingest_fd);
	for (size_t i = 0; i < N_ALGS; i++)
		safe_close(cs->alg_fd[i]);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

static bool active_has(struct content_store *cs, const char *hex)
{
	for (struct content_ingest *i = cs->active; i; i = i->next)
		if (strcmp(i->hex, hex) == 0)
			return true;
	return false;
}

/* Register ing as the one writer of its digest. */
static bool active_add(struct content_ingest *ing)
{
	struct content_store *cs = ing->cs;
	bool added = false;

	pthread_mutex_lock(&cs->lock);
	if (!active_has(cs, ing->hex)) {
		ing->next = cs->active;
		cs->active = ing;
		ing->registered = added = true;
	}
	pthread_mutex_unlock(&cs->lock);
	return added;
}

static void active_del(struct content_ingest *ing)
{
	struct content_store *cs = ing->cs;

	pthread_mutex_lock(&cs->lock);
	for (struct content_ingest **p = &cs->active; *p; p = &(*p)->next) {
		if (*p == ing) {
			*p = ing->next;
			break;
		}
	}
	pthread_mutex_unlock(&cs->lock);
}

/* A failed download (a digest or size mismatch, an aborted pull) may be
 * gigabytes: its file goes through the trash, so that its deletion never
 * holds the event loop (trash_discard). Closed first: the last descriptor
 * would free the pages where it is closed once the trash deleted the name.
 * Still registered meanwhile, so no new ingest of the digest opens the file
 * before it is gone from ingest/. */
static void ingest_free(struct content_ingest *ing, bool remove_file)
{
	char what[CONTENT_DIGEST_MAX + 16];

	if (!ing)
		return;
	if (ing->fd >= 0) {
		ing->fd = safe_close(ing->fd);
		if (remove_file) {
			snprintf(what, sizeof(what), "ingest-%s-%.12s", algs[ing->alg].name,
				 ing->hex);
			(void)trash_discard(ing->cs->ingest_fd, ing->hex, what);
		}
	}
	if (ing->registered)
		active_del(ing);
	free(ing);
}

/* Hash what a previous attempt left, so the download continues after it. */
static int ingest_rehash(struct content_ingest *ing, int64_t size, struct crisp_error *err)
{
	_cleanup_free_ char *buf = xmalloc(IO_CHUNK);

	while (ing->offset < size) {
		size_t want = size - ing->offset < IO_CHUNK ? (size_t)(size - ing->offset)
							    : IO_CHUNK;
		ssize_t n = pread(ing->fd, buf, want, ing->offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "reading partial %s",
					     ing->digest);
		if (n == 0)
			break;
		digest_update(&ing->md, buf, n);
		ing->offset += n;
	}
	return 0;
}

static int ingest_open_file(struct content_ingest *ing, bool resume, struct crisp_error *err)
{
	struct stat st;

	ing->fd = openat(ing->cs->ingest_fd, ing->hex,
			 O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (ing->fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "creating ingest file");
	if (fstat(ing->fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "ingest file");
	if (!S_ISREG(st.st_mode))
		return err_set(err, CRISP_E_INTERNAL, "ingest file is not a regular file");
	digest_init(&ing->md, algs[ing->alg].id);
	/* A partial file longer than the blob can only be garbage. */
	if (resume && (ing->expected < 0 || st.st_size <= ing->expected))
		return ingest_rehash(ing, st.st_size, err);
	if (st.st_size > 0 && ftruncate(ing->fd, 0) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "truncating ingest file");
	return 0;
}

struct content_ingest *content_ingest_start(struct content_store *cs, const char *digest,
					    int64_t expected_size, bool resume,
					    struct crisp_error *err)
{
	struct content_ingest *ing;
	const char *hex;
	int alg = digest_parse(digest, &hex);

	if (alg < 0) {
		bad_digest(digest, err);
		return NULL;
	}
	if (expected_size < -1) {
		err_set(err, CRISP_E_INVALID, "blob %s: invalid size %lld", digest,
			(long long)expected_size);
		return NULL;
	}
	if (content_exists(cs, digest, NULL)) {
		err_set(err, CRISP_E_EXISTS, "blob %s is already stored", digest);
		return NULL;
	}
	ing = xcalloc(1, sizeof(*ing));
	ing->cs = cs;
	ing->alg = alg;
	ing->fd = -1;
	ing->expected = expected_size;
	snprintf(ing->digest, sizeof(ing->digest), "%s", digest);
	ing->hex = ing->digest + (hex - digest);
	if (!active_add(ing)) {
		err_set(err, CRISP_E_PRECONDITION, "blob %s is already being downloaded", digest);
		ingest_free(ing, false);
		return NULL;
	}
	if (ingest_open_file(ing, resume, err) < 0) {
		err_prefix(err, "blob %s", digest);
		ingest_free(ing, true);
		return NULL;
	}
	return ing;
}

int64_t content_ingest_offset(const struct content_ingest *ing)
{
	return ing->offset;
}

const char *content_ingest_digest(const struct content_ingest *ing)
{
	return ing->digest;
}

int content_ingest_write(struct content_ingest *ing, const void *buf, size_t n,
			 struct crisp_error *err)
{
	const char *p = buf;
	size_t left = n;

	if (ing->poisoned)
		return err_set(err, CRISP_E_INVALID, "blob %s: ingest already failed", ing->digest);
	if (ing->expected >= 0 && n > (uint64_t)(ing->expected - ing->offset)) {
		ing->poisoned = true;
		return err_set(err, CRISP_E_INVALID,
			       "blob %s is larger than its descriptor's size of %lld bytes",
			       ing->digest, (long long)ing->expected);
	}
	while (left > 0) {
		ssize_t w = pwrite(ing->fd, p, left, ing->offset + (int64_t)(n - left));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			ing->poisoned = true;
			return err_set_errno(err,
					     e == ENOSPC || e == EDQUOT ? CRISP_E_RESOURCE
									: CRISP_E_INTERNAL,
					     e, "writing blob %s", ing->digest);
		}
		p += w;
		left -= w;
	}
	digest_update(&ing->md, buf, n);
	ing->offset += n;
	return 0;
}

static int digest_mismatch(const char *digest, const char *actual, struct crisp_error *err)
{
	return err_set(err, CRISP_E_INVALID, "blob %s has digest %s (corrupt or tampered download)",
		       digest, actual);
}

/* Size and digest of what was written against what was announced. */
static int ingest_verify(struct content_ingest *ing, struct crisp_error *err)
{
	char actual[DIGEST_STRING_MAX];

	if (ing->poisoned)
		return err_set(err, CRISP_E_INVALID, "blob %s: ingest already failed", ing->digest);
	if (ing->expected >= 0 && ing->offset != ing->expected)
		return err_set(err, CRISP_E_INVALID,
			       "blob %s is %lld bytes, expected %lld (truncated download)",
			       ing->digest, (long long)ing->offset, (long long)ing->expected);
	digest_final_string(&ing->md, actual);
	if (strcmp(actual, ing->digest) != 0)
		return digest_mismatch(ing->digest, actual, err);
	return 0;
}

int content_digest_check(const char *digest, const void *buf, size_t len, struct crisp_error *err)
{
	char actual[DIGEST_STRING_MAX];
	int alg = digest_parse(digest, NULL);

	if (alg < 0)
		return bad_digest(digest, err);
	digest_buf(algs[alg].id, buf, len, actual);
	if (strcmp(actual, digest) != 0)
		return digest_mismatch(digest, actual, err);
	return 0;
}

int content_ingest_commit(struct content_ingest *ing, struct crisp_error *err)
{
	struct content_store *cs = ing->cs;
	int dirfd = cs->alg_fd[ing->alg];

	if (ingest_verify(ing, err) < 0) {
		ingest_free(ing, true);
		return -1;
	}
	/* Data on disk before the name: after a crash, blobs/ holds either
	 * nothing or the whole verified file. */
	if (fchmod(ing->fd, 0400) < 0 || fsync(ing->fd) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "syncing blob %s", ing->digest);
		ingest_free(ing, true);
		return -1;
	}
	/* NOREPLACE: a blob, once stored, is never swapped under its readers.
	 * If one appeared meanwhile it has the same verified content. (It
	 * also makes glibc use renameat2, the call imaged's seccomp allows.) */
	if (renameat2(cs->ingest_fd, ing->hex, dirfd, ing->hex, RENAME_NOREPLACE) < 0) {
		bool exists = errno == EEXIST;

		if (!exists)
			err_set_errno(err, CRISP_E_INTERNAL, errno, "storing blob %s", ing->digest);
		ingest_free(ing, true);
		return exists ? 0 : -1;
	}
	ingest_free(ing, false);
	/* The blob is in place; syncing the directory makes the name durable
	 * before anyone records the blob as stored. */
	if (fsync(dirfd) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "syncing blob directory");
	return 0;
}

void content_ingest_abort(struct content_ingest *ing)
{
	ingest_free(ing, true);
}

void content_ingest_abort_keep(struct content_ingest *ing)
{
	if (ing)
		ingest_free(ing, ing->poisoned);
}

int content_put(struct content_store *cs, const char *digest, const void *buf, size_t len,
		struct crisp_error *err)
{
	struct content_ingest *ing;

	if (len > INT64_MAX)
		return err_set(err, CRISP_E_INVALID, "blob %s is too large", digest);
	ing = content_ingest_start(cs, digest, (int64_t)len, false, err);
	if (!ing) {
		if (err && err->code == CRISP_E_EXISTS) {
			err_clear(err);
			return 0;
		}
		return -1;
	}
	if (content_ingest_write(ing, buf, len, err) < 0) {
		content_ingest_abort(ing);
		return -1;
	}
	return content_ingest_commit(ing, err);
}

bool content_exists(struct content_store *cs, const char *digest, int64_t *size)
{
	const char *hex;
	int alg = digest_parse(digest, &hex);
	struct stat st;

	if (alg < 0 || fstatat(cs->alg_fd[alg], hex, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	if (size)
		*size = st.st_size;
	return true;
}

int content_open_blob(struct content_store *cs, const char *digest)
{
	const char *hex;
	int alg = digest_parse(digest, &hex);
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (alg < 0)
		return -EINVAL;
	/* O_NONBLOCK so that a FIFO (which only a bug could put here) does not
	 * hang the open; it is cleared again below. */
	fd = openat(cs->alg_fd[alg], hex, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EUCLEAN;
	r = fd_set_nonblock(fd, false);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

int content_read_blob(struct content_store *cs, const char *digest, size_t max, char **ret_buf,
		      size_t *ret_len, struct crisp_error *err)
{
	_cleanup_close_ int fd = content_open_blob(cs, digest);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	if (fd == -EINVAL)
		return bad_digest(digest, err);
	if (fd == -ENOENT)
		return err_set(err, CRISP_E_NOT_FOUND, "blob %s is not stored", digest);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, fd, "opening blob %s", digest);
	if (fstat(fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "blob %s", digest);
	if ((uint64_t)st.st_size > max)
		return err_set(err, CRISP_E_RESOURCE,
			       "blob %s is %lld bytes, more than the %zu allowed", digest,
			       (long long)st.st_size, max);
	buf = xmalloc(st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + len, st.st_size - len, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "reading blob %s",
					     digest);
		if (n == 0)
			return err_set(err, CRISP_E_INTERNAL, "blob %s shrank while read", digest);
		len += n;
	}
	buf[len] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int content_delete(struct content_store *cs, const char *digest, struct crisp_error *err)
{
	const char *hex;
	int alg = digest_parse(digest, &hex);

	if (alg < 0)
		return bad_digest(digest, err);
	if (unlinkat(cs->alg_fd[alg], hex, 0) < 0) {
		if (errno == ENOENT)
			return err_set(err, CRISP_E_NOT_FOUND, "blob %s is not stored", digest);
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "removing blob %s", digest);
	}
	return 0;
}

int content_trash(struct content_store *cs, const char *digest, struct crisp_error *err)
{
	const char *hex;
	int alg = digest_parse(digest, &hex);
	char what[CONTENT_DIGEST_MAX + 8];
	struct crisp_error e;

	if (alg < 0)
		return bad_digest(digest, err);
	snprintf(what, sizeof(what), "blob-%s-%.12s", algs[alg].name, hex);
	if (trash_move(cs->alg_fd[alg], hex, what, &e) == 0)
		return 0;
	if (e.code == CRISP_E_NOT_FOUND)
		return err_set(err, CRISP_E_NOT_FOUND, "blob %s is not stored", digest);
	return err_set(err, e.code, "removing blob %s: %s", digest, e.msg);
}

/* A directory stream of its own on dirfd (fdopendir would take the fd and
 * share its position). */
static DIR *opendir_at(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		safe_close(fd);
	return d;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static bool dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

static int list_alg(struct content_store *cs, size_t alg, content_list_fn fn, void *arg,
		    struct crisp_error *err)
{
	_cleanup_(closedirp) DIR *d = opendir_at(cs->alg_fd[alg]);
	struct dirent *de;

	if (!d)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listing blobs/%s",
				     algs[alg].name);
	while ((errno = 0, de = readdir(d))) {
		char digest[sizeof(de->d_name) + 8];
		struct stat st;
		int r;

		if (dot_or_dotdot(de->d_name) || strlen(de->d_name) != algs[alg].hexlen)
			continue;
		snprintf(digest, sizeof(digest), "%s:%s", algs[alg].name, de->d_name);
		if (!digest_valid(digest) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		r = fn(digest, st.st_size, arg);
		if (r != 0)
			return r;
	}
	if (errno)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listing blobs/%s",
				     algs[alg].name);
	return 0;
}

int content_list(struct content_store *cs, content_list_fn fn, void *arg, struct crisp_error *err)
{
	for (size_t i = 0; i < N_ALGS; i++) {
		int r = list_alg(cs, i, fn, arg, err);

		if (r != 0)
			return r;
	}
	return 0;
}

static int usage_dir(int fd, const char *what, uint64_t *bytes, uint64_t *inodes,
		     struct crisp_error *err)
{
	_cleanup_(closedirp) DIR *d = opendir_at(fd);
	struct dirent *de;
	struct stat st;

	if (!d || fstat(fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "usage of %s", what);
	*bytes += (uint64_t)st.st_blocks * 512;
	*inodes += 1;
	while ((errno = 0, de = readdir(d))) {
		if (dot_or_dotdot(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		*bytes += (uint64_t)st.st_blocks * 512;
		*inodes += 1;
	}
	if (errno)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "usage of %s", what);
	return 0;
}

int content_usage(struct content_store *cs, uint64_t *ret_bytes, uint64_t *ret_inodes,
		  struct crisp_error *err)
{
	uint64_t bytes = 0, inodes = 0;

	for (size_t i = 0; i < N_ALGS; i++)
		if (usage_dir(cs->alg_fd[i], algs[i].name, &bytes, &inodes, err) < 0)
			return -1;
	if (usage_dir(cs->ingest_fd, "ingest", &bytes, &inodes, err) < 0)
		return -1;
	*ret_bytes = bytes;
	*ret_inodes = inodes;
	return 0;
}

static bool ingest_name_valid(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < N_ALGS; i++)
		if (n == algs[i].hexlen && is_lower_hex(name, n))
			return true;
	return false;
}

/* Remove one entry of ingest/ if it is stale or junk; 1 if removed. The
 * lock is held from the check to the unlink so that an ingest starting
 * meanwhile never has its fresh file removed under it. */
static int ingest_gc_one(struct content_store *cs, int fd, const char *name, time_t cutoff)
{
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&cs->lock);
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		r = unlinkat(fd, name, AT_REMOVEDIR) == 0;
		goto out;
	}
	if (ingest_name_valid(name) && S_ISREG(st.st_mode) &&
	    (active_has(cs, name) || st.st_mtim.tv_sec > cutoff))
		goto out;
	/* A partial download may be gigabytes: into the trash, if there is
	 * one (there always is in imaged). */
	r = trash_move(fd, name, "ingest", NULL) == 0 || unlinkat(fd, name, 0) == 0;
out:
	pthread_mutex_unlock(&cs->lock);
	return r;
}

int content_ingest_gc(struct content_store *cs, int64_t max_age_sec, struct crisp_error *err)
{
	_cleanup_(closedirp) DIR *d = opendir_at(cs->ingest_fd);
	struct dirent *de;
	struct timespec now;
	int removed = 0;

	if (!d)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listing ingest");
	clock_gettime(CLOCK_REALTIME, &now);
	while ((errno = 0, de = readdir(d))) {
		if (!dot_or_dotdot(de->d_name))
			removed += ingest_gc_one(cs, dirfd(d), de->d_name,
						 now.tv_sec - max_age_sec);
	}
	if (errno)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listing ingest");
	return removed;
}
