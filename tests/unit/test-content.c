/* Unit tests of imaged/content.c: blobs written through an ingest appear
 * under blobs/ only once complete and verified; wrong digests and sizes,
 * resumed and crashed downloads, deletion, listing, usage, stale ingest
 * cleanup, and digests that must never become file names. Expected digests
 * are constants computed with sha256sum/sha512sum, not by the code under
 * test. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imaged/content.h"
#include "imaged/trash.h"
#include "tests/unit/tap.h"

/* printf 'hello world\n' | sha256sum / sha512sum; printf hello | sha256sum */
#define HELLO "hello world\n"
#define HELLO_HEX "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
#define HELLO_SHA256 "sha256:" HELLO_HEX
#define HELLO_SHA512                                                                        \
	"sha512:db3974a97f2407b7cae1ae637c0030687a11913274d578492558e39c16c017de84eacdc8c6" \
	"2fe34ee4e12b4b1428817f09b6a2760c3f8a664ceae94d2434a593"
#define SHORT_HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define SHORT_SHA256 "sha256:" SHORT_HEX

static char root[] = "/tmp/crisp-test-content-XXXXXX";
static int rootfd = -1;

static bool present(const char *rel)
{
	struct stat st;
	return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int count_entries(const char *rel)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s/%s' | wc -l", root, rel);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static void test_open(void)
{
	struct stat st;

	ok(fstatat(rootfd, "blobs/sha256", &st, 0) == 0 && S_ISDIR(st.st_mode) &&
		   (st.st_mode & 07777) == 0700,
	   "blobs/sha256 created with mode 0700");
	ok(fstatat(rootfd, "blobs/sha512", &st, 0) == 0 && (st.st_mode & 07777) == 0700,
	   "blobs/sha512 created with mode 0700");
	ok(fstatat(rootfd, "ingest", &st, 0) == 0 && (st.st_mode & 07777) == 0700,
	   "ingest created with mode 0700");
}

static void test_happy(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct content_ingest *ing;
	char buf[64] = { 0 }, *data = NULL;
	size_t len = 0;
	int64_t size = -1;
	struct stat st;
	int fd;

	ing = content_ingest_start(cs, HELLO_SHA256, 12, false, &err);
	if (!ok(ing != NULL, "ingest starts"))
		diag("%s", err.msg);
	if (!ing)
		return;
	is_int(content_ingest_write(ing, "hello ", 6, &err), 0, "first write");
	is_int(content_ingest_offset(ing), 6, "offset after the first write");
	is_int(content_ingest_write(ing, "world\n", 6, &err), 0, "second write");
	ok(present("ingest/" HELLO_HEX), "the data sits in ingest/ while writing");
	ok(!present("blobs/sha256/" HELLO_HEX), "complete but uncommitted: no blob yet");
	ok(!content_exists(cs, HELLO_SHA256, NULL), "content_exists is false before commit");
	if (!is_int(content_ingest_commit(ing, &err), 0, "commit"))
		diag("%s", err.msg);
	ok(content_exists(cs, HELLO_SHA256, &size) && size == 12, "blob exists, 12 bytes");
	ok(!present("ingest/" HELLO_HEX), "ingest file gone after commit");
	ok(fstatat(rootfd, "blobs/sha256/" HELLO_HEX, &st, 0) == 0 && (st.st_mode & 0777) == 0400,
	   "blob file is read-only");

	fd = content_open_blob(cs, HELLO_SHA256);
	ok(fd >= 0 && read(fd, buf, sizeof(buf)) == 12 && strcmp(buf, HELLO) == 0,
	   "content_open_blob reads the bytes back");
	ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "blob fd is close-on-exec");
	if (fd >= 0)
		close(fd);
	is_int(content_read_blob(cs, HELLO_SHA256, 100, &data, &len, &err), 0, "content_read_blob");
	ok(data && len == 12 && strcmp(data, HELLO) == 0, "content_read_blob bytes");
	free(data);
	data = NULL;
	is_int(content_read_blob(cs, HELLO_SHA256, 11, &data, &len, &err), -1,
	       "content_read_blob refuses a blob over the limit");
	is_int(err.code, CRISP_E_RESOURCE, "... as a resource error");

	ok(content_ingest_start(cs, HELLO_SHA256, 12, false, &err) == NULL &&
		   err.code == CRISP_E_EXISTS,
	   "starting an ingest of a stored blob says it exists");
	is_int(content_put(cs, HELLO_SHA256, HELLO, 12, &err), 0,
	       "content_put of a stored blob succeeds");
	is_int(content_put(cs, HELLO_SHA512, HELLO, 12, &err), 0, "content_put of a sha512 blob");
	ok(content_exists(cs, HELLO_SHA512, &size) && size == 12, "sha512 blob exists");
}

static void test_wrong_digest(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct content_ingest *ing = content_ingest_start(cs, SHORT_SHA256, -1, false, &err);

	ok(ing != NULL, "ingest with unknown size starts");
	if (!ing)
		return;
	is_int(content_ingest_write(ing, "jello", 5, &err), 0, "write other bytes");
	is_int(content_ingest_commit(ing, &err), -1, "commit of the wrong bytes fails");
	is_int(err.code, CRISP_E_INVALID, "... as invalid");
	like(err.msg, "blob " SHORT_SHA256 " has digest sha256:", "message names the digest");
	like(err.msg, "(corrupt or tampered download)", "message says what it means");
	ok(!content_exists(cs, SHORT_SHA256, NULL), "no blob stored");
	ok(!present("ingest/" SHORT_HEX), "ingest file removed");

	is_int(content_put(cs, SHORT_SHA256, "hello", 4, &err), -1,
	       "content_put with a short buffer fails");
	is_int(content_put(cs, SHORT_SHA256, "hello", 5, &err), 0,
	       "content_put of the right bytes");
	is_int(content_digest_check(SHORT_SHA256, "hello", 5, &err), 0, "digest check: match");
	is_int(content_digest_check(SHORT_SHA256, "hellO", 5, &err), -1, "digest check: mismatch");
	like(err.msg, "(corrupt or tampered download)", "digest check message");
}

static void test_wrong_size(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct content_ingest *ing;

	content_delete(cs, HELLO_SHA256, NULL);
	ing = content_ingest_start(cs, HELLO_SHA256, 20, false, &err);
	ok(ing && content_ingest_write(ing, HELLO, 12, &err) == 0, "short: 12 of 20 bytes written");
	is_int(ing ? content_ingest_commit(ing, &err) : 0, -1, "short: commit fails");
	like(err.msg, "is 12 bytes, expected 20 (truncated download)", "short: message");
	ok(!content_exists(cs, HELLO_SHA256, NULL) && !present("ingest/" HELLO_HEX),
	   "short: nothing stored, nothing left");

	ing = content_ingest_start(cs, HELLO_SHA256, 5, false, &err);
	ok(ing != NULL, "long: ingest of 5 bytes starts");
	if (!ing)
		return;
	is_int(content_ingest_write(ing, HELLO, 12, &err), -1, "long: a write past the size fails");
	is_int(err.code, CRISP_E_INVALID, "long: as invalid");
	like(err.msg, "larger than its descriptor's size of 5 bytes", "long: message");
	is_int(content_ingest_write(ing, "h", 1, &err), -1, "long: the ingest stays failed");
	content_ingest_abort_keep(ing);
	ok(!present("ingest/" HELLO_HEX), "long: a failed ingest is not kept for resume");
	ok(!content_exists(cs, HELLO_SHA256, NULL), "long: nothing stored");
}

static void test_resume(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct content_ingest *ing = content_ingest_start(cs, HELLO_SHA256, 12, false, &err);
	int fd;

	ok(ing && content_ingest_write(ing, "hello w", 7, &err) == 0, "resume: 7 bytes written");
	ok(content_ingest_start(cs, HELLO_SHA256, 12, true, &err) == NULL &&
		   err.code == CRISP_E_PRECONDITION,
	   "a second ingest of the same digest is refused while one runs");
	content_ingest_abort_keep(ing);
	ok(present("ingest/" HELLO_HEX), "abort_keep leaves the partial file");
	ok(!content_exists(cs, HELLO_SHA256, NULL), "a partial file is no blob");

	ing = content_ingest_start(cs, HELLO_SHA256, 12, true, &err);
	if (!ok(ing != NULL, "resumed ingest starts"))
		diag("%s", err.msg);
	if (!ing)
		return;
	is_int(content_ingest_offset(ing), 7, "resume offset is what was written");
	is_int(content_ingest_write(ing, "orld\n", 5, &err), 0, "the rest written");
	if (!is_int(content_ingest_commit(ing, &err), 0, "resumed ingest commits"))
		diag("%s", err.msg);
	ok(content_exists(cs, HELLO_SHA256, NULL), "resumed blob stored");

	/* A partial file damaged on disk: the resume hashes what is there, so
	 * the commit catches it. */
	content_delete(cs, HELLO_SHA256, NULL);
	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "jello w", 7) == 7, "a damaged partial file");
	if (fd >= 0)
		close(fd);
	ing = content_ingest_start(cs, HELLO_SHA256, 12, true, &err);
	ok(ing && content_ingest_offset(ing) == 7, "resume from the damaged file at 7");
	if (ing)
		content_ingest_write(ing, "orld\n", 5, &err);
	is_int(ing ? content_ingest_commit(ing, &err) : 0, -1, "damaged resume fails to commit");
	ok(!present("ingest/" HELLO_HEX) && !content_exists(cs, HELLO_SHA256, NULL),
	   "damaged: partial file removed, nothing stored");

	/* A partial file longer than the blob is dropped, not resumed. */
	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "hello world\nXX", 14) == 14, "an oversize partial file");
	if (fd >= 0)
		close(fd);
	ing = content_ingest_start(cs, HELLO_SHA256, 12, true, &err);
	is_int(ing ? content_ingest_offset(ing) : -1, 0, "oversize partial file starts over");
	content_ingest_abort(ing);
	ok(!present("ingest/" HELLO_HEX), "abort removes the ingest file");

	/* Without resume an old partial file is truncated. */
	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "hello", 5) == 5, "a partial file");
	if (fd >= 0)
		close(fd);
	ing = content_ingest_start(cs, HELLO_SHA256, 12, false, &err);
	is_int(ing ? content_ingest_offset(ing) : -1, 0, "no resume: offset 0");
	ok(ing && content_ingest_write(ing, HELLO, 12, &err) == 0 &&
		   content_ingest_commit(ing, &err) == 0,
	   "no resume: the whole blob commits");
}

static void test_crash(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	pid_t pid;
	int status = -1;

	content_delete(cs, HELLO_SHA256, NULL);
	/* A child writes all bytes and dies before committing, as a killed
	 * imaged would. */
	pid = fork();
	if (pid == 0) {
		struct content_ingest *ing = content_ingest_start(cs, HELLO_SHA256, 12, false,
								  NULL);
		if (ing)
			content_ingest_write(ing, HELLO, 12, NULL);
		_exit(ing ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	is_int(status, 0, "crash: the child wrote the whole blob and died");
	ok(present("ingest/" HELLO_HEX), "crash: the ingest file is left behind");
	ok(!present("blobs/sha256/" HELLO_HEX) && !content_exists(cs, HELLO_SHA256, NULL),
	   "crash: no blob is visible");
	is_int(content_open_blob(cs, HELLO_SHA256), -ENOENT, "crash: the blob cannot be opened");
	is_int(content_ingest_gc(cs, 0, &err), 1, "crash: ingest gc removes the leftover");
	ok(!present("ingest/" HELLO_HEX), "crash: leftover gone");
}

static void test_invalid_digests(struct content_store *cs)
{
	static const char *const bad[] = {
		"sha256:../../../../etc/passwd",
		"sha256:" HELLO_HEX "/../x",
		"sha256:A948904F2F0F479B8F8197694B30184B0D2ED1C1CD2A1EC0FB85D299A192A447",
		"sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44",
		"sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a4477",
		"sha256:" HELLO_HEX "\n",
		"sha384:" HELLO_HEX,
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"../blobs/sha256/" HELLO_HEX,
		HELLO_HEX,
		"sha256:",
		"",
		NULL,
	};
	struct crisp_error err = { 0 };
	bool all = true;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct content_ingest *ing = content_ingest_start(cs, bad[i], 12, false, &err);

		if (ing || err.code != CRISP_E_INVALID || content_exists(cs, bad[i], NULL) ||
		    content_open_blob(cs, bad[i]) != -EINVAL ||
		    content_delete(cs, bad[i], &err) != -1 || err.code != CRISP_E_INVALID) {
			diag("accepted: %s", bad[i] ? bad[i] : "(null)");
			all = false;
			content_ingest_abort(ing);
		}
	}
	ok(all, "invalid digests are refused by every call");
	is_int(count_entries("ingest"), 0, "no file was created for them");
	ok(content_ingest_start(cs, "sha256:\x01\x02\n", 1, false, &err) == NULL &&
		   !strchr(err.msg, '\n') && !strchr(err.msg, '\x01'),
	   "an invalid digest is quoted without control characters");
	is_int(content_ingest_start(cs, SHORT_SHA256, -2, false, &err) == NULL, 1,
	       "a negative size other than -1 is refused");
}

static void test_symlink(struct content_store *cs)
{
	int64_t size;

	content_delete(cs, HELLO_SHA256, NULL);
	ok(symlinkat("/etc/passwd", rootfd, "blobs/sha256/" HELLO_HEX) == 0,
	   "a symlink planted as a blob");
	ok(!content_exists(cs, HELLO_SHA256, &size), "a symlink is no blob");
	is_int(content_open_blob(cs, HELLO_SHA256), -ELOOP, "a symlink is not followed");
	unlinkat(rootfd, "blobs/sha256/" HELLO_HEX, 0);
}

struct listed {
	int n;
	bool hello, hello512;
};

static int on_blob(const char *digest, int64_t size, void *arg)
{
	struct listed *l = arg;

	l->n++;
	if (strcmp(digest, HELLO_SHA256) == 0 && size == 12)
		l->hello = true;
	if (strcmp(digest, HELLO_SHA512) == 0 && size == 12)
		l->hello512 = true;
	return 0;
}

static int stop_at_first(const char *digest, int64_t size, void *arg)
{
	(*(int *)arg)++;
	return 42;
}

static void test_list_delete_usage(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct listed l = { 0 };
	uint64_t bytes = 0, inodes = 0, bytes2 = 0, inodes2 = 0;
	int calls = 0, fd;

	content_put(cs, HELLO_SHA256, HELLO, 12, &err);
	fd = openat(rootfd, "blobs/sha256/junk", O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	is_int(content_list(cs, on_blob, &l, &err), 0, "list");
	ok(l.hello && l.hello512, "list shows the sha256 and sha512 blobs with sizes");
	is_int(l.n, 3, "list skips names that are not digests (hello, short, hello512)");
	is_int(content_list(cs, stop_at_first, &calls, &err), 42, "a callback stops the walk");
	is_int(calls, 1, "... after one call");

	is_int(content_usage(cs, &bytes, &inodes, &err), 0, "usage");
	ok(bytes > 0 && inodes >= 7, "usage counts blocks and inodes (%llu, %llu)",
	   (unsigned long long)bytes, (unsigned long long)inodes);
	is_int(content_delete(cs, HELLO_SHA512, &err), 0, "delete");
	ok(!content_exists(cs, HELLO_SHA512, NULL), "deleted blob is gone");
	is_int(content_delete(cs, HELLO_SHA512, &err), -1, "deleting again fails");
	is_int(err.code, CRISP_E_NOT_FOUND, "... as not found");
	content_usage(cs, &bytes2, &inodes2, &err);
	ok(inodes2 == inodes - 1 && bytes2 <= bytes, "usage drops after delete");
	unlinkat(rootfd, "blobs/sha256/junk", 0);
}

static void test_ingest_gc(struct content_store *cs)
{
	struct crisp_error err = { 0 };
	struct timespec old[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
	struct content_ingest *running;
	int fd;

	content_delete(cs, HELLO_SHA256, NULL);
	content_delete(cs, SHORT_SHA256, NULL);
	/* stale: an old partial file; junk: a name no ingest uses; running:
	 * an ingest in progress whose file is old too. */
	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	utimensat(rootfd, "ingest/" HELLO_HEX, old, 0);
	fd = openat(rootfd, "ingest/junk", O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	running = content_ingest_start(cs, SHORT_SHA256, 5, false, &err);
	utimensat(rootfd, "ingest/" SHORT_HEX, old, 0);
	is_int(content_ingest_gc(cs, 3600, &err), 2, "ingest gc removes the stale file and junk");
	ok(!present("ingest/" HELLO_HEX) && !present("ingest/junk"), "stale and junk gone");
	ok(present("ingest/" SHORT_HEX), "the running ingest's file stays");
	ok(running && content_ingest_write(running, "hello", 5, &err) == 0 &&
		   content_ingest_commit(running, &err) == 0,
	   "the running ingest still commits");

	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	is_int(content_ingest_gc(cs, 3600, &err), 0, "a fresh partial file is kept");
	ok(present("ingest/" HELLO_HEX), "fresh partial file still there");
	unlinkat(rootfd, "ingest/" HELLO_HEX, 0);
}

/* Removal through the trash (imaged/trash.h): the blob leaves blobs/ in
 * one rename, lands in trash/ under a name of its own (twice the same
 * digest: two entries), and a missing blob is NOT_FOUND. Emptying runs on
 * the event loop's worker and is tested in test-snapshot. */
static void test_trash(struct content_store *cs)
{
	struct timespec old[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
	struct crisp_error err = { 0 };
	int fd;

	content_put(cs, HELLO_SHA256, HELLO, 12, &err);
	ok(content_trash(cs, HELLO_SHA256, &err) < 0 && err.code == CRISP_E_PRECONDITION,
	   "without a trash directory a blob is not trashed (%s)", err.msg);
	ok(content_exists(cs, HELLO_SHA256, NULL), "... and stays");
	is_int(trash_open(rootfd, &err), 0, "trash_open creates trash/");
	is_int(count_entries("trash"), 0, "trash/ starts empty");
	is_int(content_trash(cs, HELLO_SHA256, &err), 0, "trash a blob");
	ok(!content_exists(cs, HELLO_SHA256, NULL) && !present("blobs/sha256/" HELLO_HEX),
	   "it is not stored any more");
	is_int(count_entries("trash"), 1, "it is in trash/");
	ok(content_trash(cs, HELLO_SHA256, &err) < 0 && err.code == CRISP_E_NOT_FOUND,
	   "trashing it again: not found");
	ok(content_trash(cs, "sha256:../../etc", &err) < 0 && err.code == CRISP_E_INVALID,
	   "a bad digest is refused");
	is_int(content_put(cs, HELLO_SHA256, HELLO, 12, &err), 0, "the same blob stored again");
	is_int(content_trash(cs, HELLO_SHA256, &err), 0, "and trashed again");
	is_int(count_entries("trash"), 2, "the trash keeps both under names of their own");

	/* A stale partial download goes to the trash too, now there is one. */
	fd = openat(rootfd, "ingest/" HELLO_HEX, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	utimensat(rootfd, "ingest/" HELLO_HEX, old, 0);
	is_int(content_ingest_gc(cs, 3600, &err), 1, "ingest gc with a trash");
	ok(!present("ingest/" HELLO_HEX) && count_entries("trash") == 3,
	   "the stale ingest file is in the trash");
	trash_close();
}

int main(void)
{
	struct crisp_error err = { 0 };
	struct content_store *cs;
	char cmd[512];

	if (!mkdtemp(root))
		return 1;
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cs = content_open(rootfd, &err);
	if (!ok(cs != NULL, "content_open"))
		diag("%s", err.msg);
	if (!cs)
		return done_testing();
	test_open();
	test_happy(cs);
	test_wrong_digest(cs);
	test_wrong_size(cs);
	test_resume(cs);
	test_crash(cs);
	test_invalid_digests(cs);
	test_symlink(cs);
	test_list_delete_usage(cs);
	test_ingest_gc(cs);
	test_trash(cs);
	content_close(cs);

	/* Reopening finds the blobs; a symlinked store directory is refused. */
	cs = content_open(rootfd, &err);
	ok(cs && content_exists(cs, SHORT_SHA256, NULL), "reopened store finds its blobs");
	content_close(cs);
	snprintf(cmd, sizeof(cmd),
		 "mv '%s/ingest' '%s/ingest.real' && ln -s ingest.real '%s/ingest'", root, root,
		 root);
	ok(system(cmd) == 0, "ingest/ replaced by a symlink");
	cs = content_open(rootfd, &err);
	ok(cs == NULL && err.code == CRISP_E_INTERNAL, "a symlinked store directory is refused");
	content_close(cs);

	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}
