/* netd's durable record of each pod network, like libcni's result cache
 * but written before ADD runs as well: networks/<sandbox id>.json in netd's
 * directory holds the network list exactly as given to the plugins, the
 * CNI_ARGS, the capability args, the netns path and, once ADD succeeded,
 * its result. So a DEL after any crash (even one in the middle of ADD) runs
 * the same plugins with the same config and prevResult, and frees what was
 * allocated. Each write goes to a temporary file that is fsynced and
 * renamed over the record, and the directory is fsynced; that runs on a
 * worker thread (an fsync can take seconds under heavy writeback, and the
 * loop serves every other pod meanwhile), and the caller goes on from the
 * completion, so "the record is on disk before X" still holds. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "netd/netd.h"

#define RECORD_KIND "crispNetV1"
#define RECORD_MAX (4u << 20)

static const char *const state_names[] = { "adding", "attached", "detached", "netns" };

json_t *cache_encode(const struct pod_net *n)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:O, s:s}", "kind", RECORD_KIND,
			      "sandboxId", n->id, "state", state_names[n->state], "netns", n->netns,
			      "network", n->network, "config", n->config, "cniArgs", n->cni_args,
			      "capabilityArgs", n->caps, "ifName", CNI_IFNAME);

	if (j && n->result)
		json_object_set(j, "result", n->result);
	/* a removal after any restart must know there is a second pin */
	if (j && n->userns)
		json_object_set_new(j, "userns", json_string(n->userns));
	return j;
}

struct pod_net *cache_decode(json_t *j, const char *id, struct crisp_error *err)
{
	const char *kind = NULL, *sid = NULL, *state = NULL, *netns = NULL, *network = NULL,
		   *args = NULL;
	json_t *config = NULL, *caps = NULL, *result, *userns;
	struct pod_net *n;
	json_error_t jerr;
	int s = -1;

	if (json_unpack_ex(j, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "kind", &kind,
			   "sandboxId", &sid, "state", &state, "netns", &netns, "network", &network,
			   "config", &config, "cniArgs", &args, "capabilityArgs", &caps) < 0)
		return err_set(err, CRISP_E_INTERNAL, "record of %.64s: %s", id, jerr.text), NULL;
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (streq(state, state_names[i]))
			s = (int)i;
	result = json_object_get(j, "result");
	userns = json_object_get(j, "userns");
	if ((userns && !json_is_string(userns)) || !streq(kind, RECORD_KIND) || !streq(sid, id) ||
	    s < 0 || !json_is_object(config) || !json_is_object(caps) ||
	    (result && !json_is_object(result)) || (s == POD_NET_ATTACHED && !result))
		return err_set(err, CRISP_E_INTERNAL, "record of %.64s is inconsistent", id), NULL;
	n = xcalloc(1, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", sid);
	n->state = (enum pod_net_state)s;
	n->netns = xstrdup(netns);
	n->userns = userns ? xstrdup(json_string_value(userns)) : NULL;
	n->network = xstrdup(network);
	n->config = json_incref(config);
	n->cni_args = xstrdup(args);
	n->caps = json_incref(caps);
	n->result = json_incref(result);
	return n;
}

void pod_net_free(struct pod_net *n)
{
	if (!n)
		return;
	free(n->netns);
	free(n->userns);
	free(n->network);
	json_decref(n->config);
	free(n->cni_args);
	json_decref(n->caps);
	json_decref(n->result);
	free(n);
}

/* ---- durable writes, on worker threads ---------------------------------- */

/* One write of one record. The thread gets this job and nothing else: the
 * id and the encoded bytes are its own copies, the paths are relative to
 * netd's working directory (set once at start, never changed after). */
struct cache_job {
	char id[65];
	char *text; /* the record to store; NULL: remove it */
	bool started;
	bool failed;
	struct crisp_error err;
	char warning[160]; /* a directory sync that failed: logged on the loop */
	cache_done_fn done;
	void *arg;
	struct cache_job *next;
};

/* Every job asked for and not done yet, oldest first. A job starts only
 * when no older job for the same id is in here. */
static struct cache_job *cache_jobs;

static void sync_dir(const char *dir, struct cache_job *job)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		snprintf(job->warning, sizeof(job->warning), "syncing %s: %s", dir,
			 strerror(errno));
}

static int job_fail(struct cache_job *job, int errnum, const char *what, const char *path)
{
	job->failed = true;
	return err_set_errno(&job->err, CRISP_E_INTERNAL, errnum, "%s %s", what, path);
}

static int job_store(struct cache_job *job)
{
	_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s.json", job->id);
	_cleanup_free_ char *tmp = xasprintf(CACHE_DIR "/%s.json.tmp", job->id);
	_cleanup_close_ int fd = -1;
	size_t len = strlen(job->text), off = 0;
	int e = 0;

	/* made at start (cache_init); again if it went away since */
	if (mkdir(CACHE_DIR, 0700) == 0)
		sync_dir(".", job); /* the new directory's entry must reach the disk too */
	else if (errno != EEXIST)
		return job_fail(job, errno, "mkdir", CACHE_DIR);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return job_fail(job, errno, "cannot write", tmp);
	while (off < len && !e) {
		ssize_t w = write(fd, job->text + off, len - off);

		if (w > 0)
			off += (size_t)w;
		else if (w == 0)
			e = ENOSPC;
		else if (errno != EINTR)
			e = errno;
	}
	if (!e && fsync(fd) < 0)
		e = errno;
	if (!e && rename(tmp, path) < 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return job_fail(job, e, "cannot store the record", path);
	}
	/* the rename is in place (reads see the new record) whatever the
	 * directory sync says; that failing is only a warning, as before */
	sync_dir(CACHE_DIR, job);
	return 0;
}

static int job_remove(struct cache_job *job)
{
	_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s.json", job->id);

	if (unlink(path) < 0 && errno != ENOENT)
		return job_fail(job, errno, "cannot remove", path);
	sync_dir(CACHE_DIR, job);
	return 0;
}

/* On a worker thread. */
static void job_run(void *arg)
{
	struct cache_job *job = arg;

	if (job->failed)
		return; /* the encoding failed on the loop: only report it */
	if (job->text)
		job_store(job);
	else
		job_remove(job);
}

static void job_done(void *arg);

static void job_start(struct cache_job *job)
{
	job->started = true;
	work_queue(job_run, job_done, job);
}

/* On the loop. */
static void job_done(void *arg)
{
	struct cache_job *job = arg, **p;

	for (p = &cache_jobs; *p != job; p = &(*p)->next)
		;
	*p = job->next;
	/* the next write of this record, if one waits */
	for (struct cache_job *j = cache_jobs; j; j = j->next)
		if (streq(j->id, job->id)) {
			if (!j->started)
				job_start(j);
			break;
		}
	if (job->warning[0])
		log_warn("record of pod %.12s: %s", job->id, job->warning);
	job->done(job->failed ? &job->err : NULL, job->arg);
	free(job->text);
	free(job);
}

static void job_submit(const char *id, char *text, bool failed, const struct crisp_error *err,
		       cache_done_fn done, void *arg)
{
	struct cache_job *job = xcalloc(1, sizeof(*job)), **tail;
	bool older = false;

	snprintf(job->id, sizeof(job->id), "%s", id);
	job->text = text;
	job->failed = failed;
	if (failed)
		job->err = *err;
	job->done = done;
	job->arg = arg;
	for (tail = &cache_jobs; *tail; tail = &(*tail)->next)
		if (streq((*tail)->id, id))
			older = true;
	*tail = job;
	if (!older)
		job_start(job);
}

void cache_store(const struct pod_net *n, enum pod_net_state state, bool with_result,
		 cache_done_fn done, void *arg)
{
	struct pod_net as_stored = *n;
	struct crisp_error err;
	char *text = NULL;
	json_t *j;

	as_stored.state = state;
	if (!with_result)
		as_stored.result = NULL;
	j = cache_encode(&as_stored);
	if (j)
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		err_set(&err, CRISP_E_INTERNAL, "cannot encode the record of %.12s", n->id);
	job_submit(n->id, text, !text, &err, done, arg);
}

void cache_remove(const char *id, cache_done_fn done, void *arg)
{
	job_submit(id, NULL, false, NULL, done, arg);
}

static int tmp_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n == 64 + 9 && streq(d->d_name + 64, ".json.tmp");
}

void cache_init(void)
{
	_cleanup_close_ int home = -1;
	struct dirent **names = NULL;
	int n;

	if (mkdir(CACHE_DIR, 0700) == 0) {
		home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (home < 0 || fsync(home) < 0)
			log_warn("syncing netd's directory: %m");
		return;
	}
	if (errno != EEXIST) {
		log_err("mkdir %s: %m (records cannot be written)", CACHE_DIR);
		return;
	}
	/* a write that a crash interrupted left its temporary file: no write
	 * runs yet, so each is a leftover */
	n = scandir(CACHE_DIR, &names, tmp_filter, alphasort);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s", names[i]->d_name);

		if (unlink(path) < 0)
			log_warn("removing %s, left by an interrupted write: %m", path);
		free(names[i]);
	}
	free(names);
}

static int record_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	char id[65];

	if (n != 64 + 5 || !streq(d->d_name + 64, ".json"))
		return 0;
	memcpy(id, d->d_name, 64);
	id[64] = '\0';
	return sandbox_id_valid(id);
}

struct pod_net *cache_load_all(void)
{
	struct pod_net *head = NULL;
	struct dirent **names = NULL;
	int n = scandir(CACHE_DIR, &names, record_filter, alphasort);

	if (n < 0) {
		if (errno != ENOENT)
			log_err("cannot read %s: %m", CACHE_DIR);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s", names[i]->d_name);
		char id[65];
		struct crisp_error err;
		struct pod_net *pn;
		json_error_t jerr;
		json_t *j;
		struct stat sb;

		memcpy(id, names[i]->d_name, 64);
		id[64] = '\0';
		free(names[i]);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > RECORD_MAX) {
			log_err("skipping record %s: not a regular file of at most 4 MiB", path);
			continue;
		}
		j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!j) {
			log_err("skipping record %s: %s", path, jerr.text);
			continue;
		}
		pn = cache_decode(j, id, &err);
		json_decref(j);
		if (!pn) {
			log_err("skipping record %s: %s", path, err.msg);
			continue;
		}
		pn->next = head;
		head = pn;
	}
	free(names);
	return head;
}
