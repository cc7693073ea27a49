/* Pulling an image: resolve the reference to a manifest (through an index
 * when there is one), fetch the config, then for every layer not unpacked
 * yet download its blob into the content store and unpack it into a
 * snapshot of its own, and finally record the image. Layers proceed
 * independently: each is unpacked (on a worker thread) as soon as its blob
 * is complete, while later layers still download. Two pulls of the same
 * reference share one. Nothing is recorded before it is verified: blobs by
 * the content store, layers by their DiffID, the image only when all of it
 * is in place. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/auth.h"
#include "imaged/content.h"
#include "imaged/digest.h"
#include "imaged/image_config.h"
#include "imaged/imaged.h"
#include "imaged/manifest.h"
#include "imaged/reference.h"
#include "imaged/registry.h"
#include "imaged/store.h"
#include "imaged/unpack.h"
#include "imaged/worker.h"

#define CONFIG_MAX (4u << 20)

enum layer_state {
	L_DOWNLOAD, /* its blob is coming */
	L_COMMIT,   /* its blob is being verified and stored: ing is the worker job's */
	L_READY,    /* its blob is stored; it waits for the layers below */
	L_UNPACK,
	L_DONE
};

struct pull;

struct pull_layer {
	struct pull *p;
	size_t idx;
	struct manifest_layer *desc;
	const char *diff_id;
	char chain_id[CONTENT_DIGEST_MAX];
	enum layer_state state;
	struct content_ingest *ing;
	struct registry_request *req;
	struct event *retry;       /* waiting for another download of the same blob */
	uint64_t got, last_log_ms; /* download progress, for the log */
	struct unpack_result res;
};

struct pull {
	LIST_ENTRY(pull) entry;
	char *key; /* normalized reference */
	struct image_ref ref;
	struct registry_auth *auth; /* NULL: anonymous */
	unsigned char who[32];      /* SHA-256 of the credentials, to join pulls */
	struct child_deferred *waiters;
	size_t n_waiters;
	struct registry_request *req; /* manifest or config in flight */
	char *index_digest;
	char *manifest_digest, *manifest_type, *manifest;
	size_t manifest_len;
	struct manifest m;
	char *config;
	size_t config_len, config_cap;
	struct image_config cfg;
	struct pull_layer *layers;
	size_t layers_left;
	size_t next_unpack; /* layers unpack in order, each over those below */
	bool unpacking;
	unsigned jobs; /* worker jobs running: the pull is freed after the last */
	bool finished;
	bool out_of_space; /* failed for want of space: leave nothing of it */
	uint64_t start_ms;
};

static LIST_HEAD(, pull) pulls = LIST_HEAD_INITIALIZER(pulls);

static void pull_free(struct pull *p)
{
	bool collect = p->out_of_space;

	image_ref_free(&p->ref);
	registry_auth_free(p->auth);
	free(p->key);
	free(p->waiters);
	free(p->index_digest);
	free(p->manifest_digest);
	free(p->manifest_type);
	free(p->manifest);
	manifest_done(&p->m);
	free(p->config);
	image_config_done(&p->cfg);
	free(p->layers);
	free(p);
	/* The blobs and snapshots that a pull which ran out of space did
	 * complete belong to no image and hold the space the node needs: they
	 * go now, not at the next removal, once the last of its jobs (which
	 * may have stored one more) has reported. images_gc waits for the
	 * pulls still running. */
	if (collect)
		images_gc();
}

/* The pull is over (done or failed): no new work starts; it is freed when
 * its last worker job has reported. */
static void pull_end(struct pull *p)
{
	p->finished = true;
	LIST_REMOVE(p, entry);
	registry_cancel(p->req);
	p->req = NULL;
	for (size_t i = 0; p->layers && i < p->m.n_layers; i++) {
		if (p->layers[i].retry)
			event_free(p->layers[i].retry);
		p->layers[i].retry = NULL;
		registry_cancel(p->layers[i].req);
		p->layers[i].req = NULL;
		/* A layer being committed handed its ingest to its worker job
		 * (commit_work), which may not even have started: that job
		 * stores or frees it, and it is not touched here. */
		if (p->layers[i].state == L_COMMIT)
			continue;
		/* Keep partial downloads: a retry resumes them. Not when the
		 * disk is full: they hold the very space the retry needs, and a
		 * node's disk must not stay full of downloads nobody finished. */
		if (p->out_of_space)
			content_ingest_abort(p->layers[i].ing);
		else
			content_ingest_abort_keep(p->layers[i].ing);
		p->layers[i].ing = NULL;
	}
	imaged.pulls--;
	if (imaged.pulls == 0 && imaged.gc_pending)
		images_gc();
	if (p->jobs == 0)
		pull_free(p);
}

static void pull_fail(struct pull *p, const struct crisp_error *err)
{
	if (p->finished)
		return;
	log_warn("pull of %s failed: %s", p->key, err->msg);
	p->out_of_space = err->code == CRISP_E_RESOURCE;
	for (size_t i = 0; i < p->n_waiters; i++)
		child_reply_error(&p->waiters[i], err);
	pull_end(p);
}

static void pull_failf(struct pull *p, enum crisp_errcode code, const char *fmt, ...)
	_printf_(3, 4);
static void pull_failf(struct pull *p, enum crisp_errcode code, const char *fmt, ...)
{
	struct crisp_error err = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	pull_fail(p, &err);
}

/* ---- the end: record the image ------------------------------------------------ */

static void pull_record(struct pull *p)
{
	_cleanup_free_ struct store_layer *layers = xcalloc(p->m.n_layers, sizeof(*layers));
	_cleanup_free_ char *repo = image_ref_repo(&p->ref);
	_cleanup_free_ char *tag = NULL, *by_digest = NULL;
	struct store_image img = { 0 };
	CrispIpc__ImagePullReply reply = CRISP_IPC__IMAGE_PULL_REPLY__INIT;
	char *names[2], *extra[1];
	struct crisp_error err;

	img.id = p->m.config_digest;
	img.manifest_digest = p->manifest_digest;
	img.manifest = p->manifest;
	img.config = p->config;
	if (p->index_digest) {
		extra[0] = p->index_digest;
		img.extra_blobs = extra;
		img.n_extra_blobs = 1;
	}
	/* The digest the reference resolved to: the index's for a multi-platform
	 * image, which is what the kubelet asks for again. */
	by_digest = xasprintf("%s@%s", repo,
			      p->index_digest ? p->index_digest : p->manifest_digest);
	names[img.n_names++] = by_digest;
	if (p->ref.tag) {
		tag = xasprintf("%s:%s", repo, p->ref.tag);
		names[img.n_names++] = tag;
	}
	img.names = names;
	for (size_t i = 0; i < p->m.n_layers; i++) {
		layers[i].diff_id = (char *)p->layers[i].diff_id;
		layers[i].blob_digest = p->m.layers[i].digest;
		layers[i].media_type = p->m.layers[i].media_type;
		layers[i].size = p->m.layers[i].size;
	}
	img.layers = layers;
	img.n_layers = p->m.n_layers;
	if (store_image_put(imaged.store, &img, &err) < 0) {
		err_prefix(&err, "recording image %s", p->key);
		return pull_fail(p, &err);
	}
	log_info("pulled %s (%s, %zu layers) in %" PRIu64 " ms", p->key, img.id, p->m.n_layers,
		 now_ms() - p->start_ms);
	reply.image_ref = img.id;
	for (size_t i = 0; i < p->n_waiters; i++)
		child_reply(&p->waiters[i], &reply.base);
	pull_end(p);
}

static void unpack_next(struct pull *p);

static void layer_done(struct pull_layer *l)
{
	struct pull *p = l->p;

	l->state = L_DONE;
	if (--p->layers_left == 0 && !p->finished)
		return pull_record(p);
	unpack_next(p);
}

/* A worker job of p has reported: true when nothing more is to be done for
 * it (the pull is over, maybe freed now, or this job failed it). */
static bool job_end(struct pull *p, const struct crisp_error *err)
{
	p->jobs--;
	if (p->finished) {
		if (p->jobs == 0)
			pull_free(p);
		return true;
	}
	if (err->code != CRISP_E_OK) {
		pull_fail(p, err);
		return true;
	}
	return false;
}

/* ---- unpacking (worker thread) ------------------------------------------------- */

/* Unpack the layer blob_digest (whose DiffID must be diff_id) over the
 * committed snapshots below (chain ids, lowest first) and commit it as the
 * snapshot chain_id. Pulls and imports share it. Another unpack that
 * committed the same chain id meanwhile counts as success. Runs on a worker
 * thread. */
int layer_unpack_commit(const char *blob_digest, const char *diff_id, const char *chain_id,
			const char *const *below, size_t n_below, struct unpack_result *res,
			struct crisp_error *err)
{
	const struct crisp_config *cfg = imaged.cfg;
	struct unpack_limits lim = {
		.max_entries = cfg->max_layer_entries,
		.max_total_bytes = (uint64_t)cfg->max_layer_size_mb << 20,
		.max_path_len = cfg->max_layer_path_len,
	};
	_cleanup_free_ int *lowers = xcalloc(n_below + 1, sizeof(int));
	size_t n_lowers = 0;
	char key[96];
	int64_t id;
	int fs = -1, blob = -1, r = -1;

	/* The layers below, topmost first: all committed, since layers unpack
	 * in order. */
	for (size_t j = n_below; j-- > 0;) {
		struct store_snapshot *s;
		if (store_snapshot_get(imaged.store, below[j], &s, err) < 0)
			goto out;
		lowers[n_lowers] = snapshot_dir_open(s->id, err);
		store_snapshot_free(s);
		if (lowers[n_lowers] < 0)
			goto out;
		n_lowers++;
	}
	/* An active snapshot first, so a crash mid-unpack is found and undone
	 * at the next start (snapshot_recover). */
	snprintf(key, sizeof(key), "extract-%.71s-%" PRIu64, chain_id + 7, now_ms());
	/* Its parent is the layer below, committed already (layers unpack in
	 * order): GC then keeps a whole chain while anything above needs it. */
	if (store_snapshot_put(imaged.store, key, n_below ? below[n_below - 1] : NULL,
			       STORE_SNAPSHOT_ACTIVE, &id, err) < 0)
		goto out;
	fs = snapshot_dir_create(id, err);
	blob = fs < 0 ? -1 : content_open_blob(imaged.content, blob_digest);
	if (fs >= 0 && blob < 0)
		err_set_errno(err, CRISP_E_INTERNAL, blob, "cannot open blob %s", blob_digest);
	/* In a crisp-unpack child: libarchive never parses a layer in imaged. */
	r = blob < 0 ? -1 : unpack_run(blob, fs, lowers, n_lowers, &lim, res, err);
	/* The layer's files reach the disk before the record that says the
	 * layer is complete does. */
	if (r == 0 && syncfs(fs) < 0)
		r = err_set_errno(err, CRISP_E_INTERNAL, errno, "syncing the unpacked layer");
	safe_close(fs);
	safe_close(blob);
	if (r == 0 && !streq(res->diff_id, diff_id))
		r = err_set(err, CRISP_E_INVALID,
			    "layer %s unpacks to DiffID %s, but the image config says %s",
			    blob_digest, res->diff_id, diff_id);
	if (r == 0) {
		r = store_snapshot_commit(imaged.store, key, chain_id, res->content_bytes,
					  res->entries, err);
		/* Another pull committed the same layer meanwhile: fine. */
		if (r < 0 && err->code == CRISP_E_EXISTS)
			r = 1;
	}
	if (r != 0) {
		struct crisp_error e2;
		if (snapshot_dir_remove(id, &e2) < 0 ||
		    store_snapshot_remove(imaged.store, key, &e2) < 0)
			log_warn("cleaning up after a failed unpack: %s", e2.msg);
		if (r == 1) {
			err_clear(err);
			r = 0;
		}
	}
out:
	for (size_t j = 0; j < n_lowers; j++)
		close(lowers[j]);
	return r;
}

static void unpack_work(void *arg, struct crisp_error *err)
{
	struct pull_layer *l = arg;
	_cleanup_free_ const char **below = xcalloc(l->idx + 1, sizeof(char *));

	for (size_t j = 0; j < l->idx; j++)
		below[j] = l->p->layers[j].chain_id;
	if (layer_unpack_commit(l->desc->digest, l->diff_id, l->chain_id, below, l->idx, &l->res,
				err) < 0)
		err_prefix(err, "layer %zu (%s)", l->idx, l->desc->digest);
}

static void unpack_done(void *arg, const struct crisp_error *err)
{
	struct pull_layer *l = arg;
	struct pull *p = l->p;

	p->unpacking = false;
	if (job_end(p, err))
		return;
	log_debug("unpacked layer %zu of %s: %" PRIu64 " entries", l->idx, p->key, l->res.entries);
	layer_done(l);
}

/* The layer's blob is in the content store: unpack it when its turn
 * comes. */
static void layer_unpack(struct pull_layer *l)
{
	l->state = L_READY;
	unpack_next(l->p);
}

static void unpack_next(struct pull *p)
{
	while (!p->finished && !p->unpacking && p->next_unpack < p->m.n_layers) {
		struct pull_layer *l = &p->layers[p->next_unpack];
		if (l->state == L_DONE) {
			p->next_unpack++;
			continue;
		}
		if (l->state != L_READY)
			return;
		p->next_unpack++;
		p->unpacking = true;
		l->state = L_UNPACK;
		p->jobs++;
		worker_submit(unpack_work, unpack_done, l);
	}
}

/* ---- downloading ---------------------------------------------------------------- */

static void commit_work(void *arg, struct crisp_error *err)
{
	struct pull_layer *l = arg;
	struct content_ingest *ing = l->ing;

	l->ing = NULL;
	content_ingest_commit(ing, err);
}

static void commit_done(void *arg, const struct crisp_error *err)
{
	struct pull_layer *l = arg;
	struct pull *p = l->p;

	if (job_end(p, err))
		return;
	layer_unpack(l);
}

/* Long downloads say how far they are, every so often. */
#define PROGRESS_LOG_MS 10000

static int blob_write(void *arg, const void *buf, size_t n, struct crisp_error *err)
{
	struct pull_layer *l = arg;
	uint64_t now = now_ms();

	l->got += n;
	if (!l->last_log_ms)
		l->last_log_ms = now;
	if (now - l->last_log_ms >= PROGRESS_LOG_MS) {
		l->last_log_ms = now;
		log_info("pulling %s: layer %zu/%zu %s: %" PRIu64 " of %" PRId64 " MiB", l->p->key,
			 l->idx + 1, l->p->m.n_layers, l->desc->digest, l->got >> 20,
			 l->desc->size >> 20);
	}
	return content_ingest_write(l->ing, buf, n, err);
}

static void blob_done(void *arg, const struct crisp_error *err)
{
	struct pull_layer *l = arg;

	l->req = NULL;
	if (err) {
		/* A corrupt download must not be resumed from. */
		if (err->code == CRISP_E_INVALID) {
			content_ingest_abort(l->ing);
			l->ing = NULL;
		}
		struct crisp_error e = *err;
		err_prefix(&e, "layer %s", l->desc->digest);
		return pull_fail(l->p, &e);
	}
	l->state = L_COMMIT;
	l->p->jobs++;
	worker_submit(commit_work, commit_done, l);
}

static void layer_start(struct pull_layer *l);

static void on_layer_retry(evutil_socket_t fd, short what, void *arg)
{
	struct pull_layer *l = arg;

	event_free(l->retry);
	l->retry = NULL;
	layer_start(l);
}

static void layer_start(struct pull_layer *l)
{
	struct pull *p = l->p;
	struct store_snapshot *snap = NULL;
	struct crisp_error err;

	if (store_snapshot_get(imaged.store, l->chain_id, &snap, &err) == 0) {
		bool committed = snap->kind == STORE_SNAPSHOT_COMMITTED;
		store_snapshot_free(snap);
		if (committed)
			return layer_done(l);
	}
	if (content_exists(imaged.content, l->desc->digest, NULL))
		return layer_unpack(l);
	l->state = L_DOWNLOAD;
	l->ing = content_ingest_start(imaged.content, l->desc->digest, l->desc->size, true, &err);
	if (!l->ing && err.code == CRISP_E_EXISTS)
		return layer_unpack(l);
	if (!l->ing && err.code == CRISP_E_PRECONDITION) {
		/* The same blob is on its way for another layer (images repeat
		 * empty layers) or another pull: look again shortly. That
		 * download has its own progress timeout, so this ends. */
		struct timeval tv = { 0, 200 * 1000 };
		l->retry = evtimer_new(imaged.base, on_layer_retry, l);
		evtimer_add(l->retry, &tv);
		return;
	}
	if (!l->ing)
		return pull_fail(p, &err);
	/* All of it arrived before a crash, only the commit did not happen. */
	if (l->desc->size > 0 && content_ingest_offset(l->ing) == l->desc->size) {
		l->state = L_COMMIT;
		p->jobs++;
		worker_submit(commit_work, commit_done, l);
		return;
	}
	if (content_ingest_offset(l->ing) > 0)
		log_info("resuming layer %s of %s at byte %" PRId64, l->desc->digest, p->key,
			 content_ingest_offset(l->ing));
	l->req = registry_get_blob(imaged.registry, p->ref.domain, p->ref.path, l->desc->digest,
				   l->desc->size, content_ingest_offset(l->ing), p->auth,
				   blob_write, blob_done, l, &err);
	if (!l->req)
		pull_fail(p, &err);
}

/* ---- config ------------------------------------------------------------------ */

static void layers_start(struct pull *p)
{
	struct crisp_error err;

	if (p->cfg.n_diff_ids != p->m.n_layers)
		return pull_failf(
			p, CRISP_E_INVALID,
			"image config lists %zu layers (rootfs.diff_ids), the manifest %zu",
			p->cfg.n_diff_ids, p->m.n_layers);
	p->layers = xcalloc(p->m.n_layers ? p->m.n_layers : 1, sizeof(*p->layers));
	for (size_t i = 0; i < p->m.n_layers; i++) {
		struct pull_layer *l = &p->layers[i];
		l->p = p;
		l->idx = i;
		l->desc = &p->m.layers[i];
		l->diff_id = p->cfg.diff_ids[i];
		if (image_chain_id(i ? p->layers[i - 1].chain_id : NULL, l->diff_id, l->chain_id,
				   &err) < 0)
			return pull_fail(p, &err);
	}
	p->layers_left = p->m.n_layers;
	if (p->m.n_layers == 0)
		return pull_record(p);
	/* Layers already in place finish the pull from inside this loop: hold
	 * it like a job so it is not freed under our feet. */
	p->jobs++;
	for (size_t i = 0; i < p->m.n_layers && !p->finished; i++)
		layer_start(&p->layers[i]);
	if (--p->jobs == 0 && p->finished)
		pull_free(p);
}

static void config_ready(struct pull *p)
{
	struct crisp_error err;

	if (content_put(imaged.content, p->m.config_digest, p->config, p->config_len, &err) < 0 ||
	    image_config_parse(p->config, p->config_len, &p->cfg, &err) < 0) {
		err_prefix(&err, "image config %s", p->m.config_digest);
		return pull_fail(p, &err);
	}
	layers_start(p);
}

static int config_write(void *arg, const void *buf, size_t n, struct crisp_error *err)
{
	struct pull *p = arg;

	if (p->config_len + n > CONFIG_MAX)
		return err_set(err, CRISP_E_RESOURCE, "image config is larger than %u bytes",
			       CONFIG_MAX);
	if (p->config_len + n + 1 > p->config_cap) {
		p->config_cap = (p->config_len + n + 1) * 2;
		p->config = xrealloc(p->config, p->config_cap);
	}
	memcpy(p->config + p->config_len, buf, n);
	p->config_len += n;
	p->config[p->config_len] = '\0';
	return 0;
}

static void config_done(void *arg, const struct crisp_error *err)
{
	struct pull *p = arg;

	p->req = NULL;
	if (err) {
		struct crisp_error e = *err;
		err_prefix(&e, "image config %s", p->m.config_digest);
		return pull_fail(p, &e);
	}
	config_ready(p);
}

static void config_fetch(struct pull *p)
{
	struct crisp_error err;

	if (p->m.config_size > CONFIG_MAX)
		return pull_failf(p, CRISP_E_RESOURCE,
				  "image config of %" PRId64 " bytes is too large",
				  p->m.config_size);
	if (content_read_blob(imaged.content, p->m.config_digest, CONFIG_MAX, &p->config,
			      &p->config_len, &err) == 0)
		return config_ready(p);
	p->req = registry_get_blob(imaged.registry, p->ref.domain, p->ref.path, p->m.config_digest,
				   p->m.config_size, 0, p->auth, config_write, config_done, p,
				   &err);
	if (!p->req)
		pull_fail(p, &err);
}

/* ---- manifest ---------------------------------------------------------------- */

static void on_manifest(void *arg, const struct registry_manifest *m,
			const struct crisp_error *err);

static void manifest_fetch(struct pull *p, const char *reference)
{
	struct crisp_error err;

	p->req = registry_get_manifest(imaged.registry, p->ref.domain, p->ref.path, reference, NULL,
				       p->auth, on_manifest, p, &err);
	if (!p->req)
		pull_fail(p, &err);
}

static void on_manifest(void *arg, const struct registry_manifest *m, const struct crisp_error *err)
{
	struct pull *p = arg;
	struct crisp_error e;
	_cleanup_free_ char *chosen = NULL;

	p->req = NULL;
	if (err) {
		e = *err;
		err_prefix(&e, "%s", p->key);
		return pull_fail(p, &e);
	}
	if (manifest_is_index(m->media_type)) {
		/* One level only: an index of indexes is not an image. */
		if (p->index_digest)
			return pull_failf(p, CRISP_E_INVALID,
					  "%s: an index points to another index", p->key);
		if (content_put(imaged.content, m->digest, m->body, m->len, &e) < 0 ||
		    manifest_select_platform(m->body, m->len, &chosen, &e) < 0) {
			err_prefix(&e, "%s", p->key);
			return pull_fail(p, &e);
		}
		p->index_digest = xstrdup(m->digest);
		return manifest_fetch(p, chosen);
	}
	if (manifest_parse(m->media_type, m->body, m->len, &p->m, &e) < 0 ||
	    content_put(imaged.content, m->digest, m->body, m->len, &e) < 0) {
		err_prefix(&e, "%s", p->key);
		return pull_fail(p, &e);
	}
	p->manifest_digest = xstrdup(m->digest);
	p->manifest_type = xstrdup(m->media_type);
	p->manifest = xmalloc(m->len + 1);
	memcpy(p->manifest, m->body, m->len);
	p->manifest[m->len] = '\0';
	p->manifest_len = m->len;
	config_fetch(p);
}

/* ---- start ------------------------------------------------------------------ */

/* A digest of the credentials: equal for equal credentials, and no copy of
 * them kept for the comparison. */
static void auth_hash(const CrispIpc__RegistryAuth *a, unsigned char out[32])
{
	const char *fields[] = { a ? a->username : "", a ? a->password : "", a ? a->auth : "",
				 a ? a->identity_token : "", a ? a->registry_token : "" };
	unsigned char sum[DIGEST_RAW_MAX];
	struct digest_ctx md;

	digest_init(&md, DIGEST_SHA256);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *f = fields[i] ? fields[i] : "";
		/* length first, so field boundaries cannot shift */
		uint64_t n = strlen(f);
		digest_update(&md, &n, sizeof(n));
		digest_update(&md, f, n);
	}
	digest_final_raw(&md, sum);
	memcpy(out, sum, 32);
	/* The context's buffer still holds the tail of the last field. */
	explicit_bzero(&md, sizeof(md));
}

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

void pull_start(const char *image, const CrispIpc__RegistryAuth *auth,
		const struct child_deferred *d)
{
	struct image_ref ref;
	struct crisp_error err;
	struct pull *p;
	unsigned char who[32];
	char *key;

	if (image_ref_parse(image, &ref, &err) < 0)
		return child_reply_error(d, &err);
	if (image_ref_is_id(&ref)) {
		image_ref_free(&ref);
		err_set(&err, CRISP_E_INVALID, "cannot pull '%.80s': an image id names no registry",
			image);
		return child_reply_error(d, &err);
	}
	key = image_ref_string(&ref);
	/* Credentials for another registry (a kubelet sends each pull secret
	 * with the host it is for) are not sent: the pull goes anonymously,
	 * and joins anonymous pulls, as containerd does. */
	if (auth &&
	    !auth_credentials_apply(auth->server_address, image_ref_registry_host(&ref), key))
		auth = NULL;
	auth_hash(auth, who);
	LIST_FOREACH (p, &pulls, entry) {
		/* Only a pull with the same credentials is joined: one that has
		 * none (or wrong ones) must not fail another that has good ones,
		 * nor lend it access it was not given. */
		if (streq(p->key, key) && memcmp(p->who, who, sizeof(who)) == 0) {
			log_info("pull of %s joins the one in progress", key);
			p->waiters = xrealloc(p->waiters, (p->n_waiters + 1) * sizeof(*p->waiters));
			p->waiters[p->n_waiters++] = *d;
			image_ref_free(&ref);
			free(key);
			return;
		}
	}
	p = xcalloc(1, sizeof(*p));
	p->key = key;
	memcpy(p->who, who, sizeof(who));
	p->ref = ref;
	p->start_ms = now_ms();
	p->waiters = xmalloc(sizeof(*p->waiters));
	p->waiters[p->n_waiters++] = *d;
	if (auth) {
		p->auth = xcalloc(1, sizeof(*p->auth));
		p->auth->username = dup_or_null(auth->username);
		p->auth->password = dup_or_null(auth->password);
		p->auth->auth = dup_or_null(auth->auth);
		p->auth->identity_token = dup_or_null(auth->identity_token);
		p->auth->registry_token = dup_or_null(auth->registry_token);
	}
	LIST_INSERT_HEAD(&pulls, p, entry);
	imaged.pulls++;
	log_info("pulling %s", key);
	manifest_fetch(p, ref.digest ? ref.digest : ref.tag);
}
