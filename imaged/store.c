/* imaged's metadata store in SQLite (see store.h).
 *
 * Durability: WAL with synchronous=FULL. With NORMAL a power loss may undo
 * the last committed transactions; that would be harmless for a pull (the
 * blobs stay, unrecorded, and are pulled again) but not for a removal: the
 * caller deletes blobs and snapshot directories right after the removal
 * commits, and an undone removal would bring back an image whose content is
 * gone. Writes are rare (pulls, removals, unpacked layers), so an fsync of
 * the WAL per commit costs nothing that matters.
 *
 * Ownership: locking_mode=EXCLUSIVE makes the one connection keep its lock
 * on the file for as long as it is open, so a second crisp-imaged cannot open
 * the database behind the first one's back, and the WAL index lives in heap
 * memory instead of a shared-memory file.
 *
 * Every value reaches SQL through a bound parameter; the only SQL text is
 * the constant strings below. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imaged/db.h"
#include "imaged/image_config.h"
#include "imaged/reference.h"
#include "imaged/store.h"
#include "imaged/store_int.h"

/* How long a statement waits for a lock held by another connection: only
 * ever another process trying to open the database, so keep it short. */
#define BUSY_TIMEOUT_MS 1000
/* A short id prefix names an image only from this many hex digits on. */
#define ID_PREFIX_MIN 12

/* migrations[v] brings a database from schema version v to v + 1. Large
 * text columns come last so that reading the small ones does not page
 * through them. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE images ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  manifest_digest TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  chain_id TEXT,"
	"  pinned INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  username TEXT,"
	"  uid INTEGER,"
	"  spec TEXT NOT NULL,"
	"  manifest TEXT NOT NULL,"
	"  config TEXT NOT NULL);"
	"CREATE TABLE image_names ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	"  is_digest INTEGER NOT NULL);"
	"CREATE INDEX image_names_by_image ON image_names(image_id);"
	"CREATE TABLE image_layers ("
	"  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	"  idx INTEGER NOT NULL,"
	"  diff_id TEXT NOT NULL,"
	"  chain_id TEXT NOT NULL,"
	"  blob_digest TEXT NOT NULL,"
	"  media_type TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  PRIMARY KEY (image_id, idx));"
	"CREATE INDEX image_layers_by_chain ON image_layers(chain_id);"
	/* Every blob an image holds: what blob GC keeps. */
	"CREATE TABLE image_blobs ("
	"  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	"  digest TEXT NOT NULL,"
	"  role TEXT NOT NULL CHECK (role IN ('manifest', 'config', 'layer', 'extra')),"
	"  PRIMARY KEY (image_id, digest));"
	"CREATE INDEX image_blobs_by_digest ON image_blobs(digest);"
	/* AUTOINCREMENT: a snapshot id is never reused, so a directory left
	 * by a crash never gets mistaken for a new snapshot's. */
	"CREATE TABLE snapshots ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  key TEXT NOT NULL UNIQUE,"
	"  parent TEXT REFERENCES snapshots(key),"
	"  kind TEXT NOT NULL CHECK (kind IN ('committed', 'active')),"
	"  created_at INTEGER NOT NULL,"
	"  usage_bytes INTEGER NOT NULL DEFAULT 0,"
	"  usage_inodes INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX snapshots_by_parent ON snapshots(parent);"
	"PRAGMA user_version = 1;",
};

/* --- open, migrate -------------------------------------------------------- */

static int store_migrate(struct store *st, const char *path, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int version, r = 0;

	if (db_begin(st->db, err) < 0)
		return -1;
	s = db_prep(st->db, "PRAGMA user_version", err);
	if (db_step_row(st->db, s, err, "reading the schema version") <= 0)
		return db_end(st->db, -1, err);
	version = sqlite3_column_int(s, 0);
	sqlite3_finalize(TAKE_PTR(s));
	if (version < 0 || version > STORE_SCHEMA_VERSION) {
		err_set(err, CRISP_E_PRECONDITION,
			"%s: schema version %d is not one this crisp-imaged knows (at most %d)",
			path, version, STORE_SCHEMA_VERSION);
		return db_end(st->db, -1, err);
	}
	for (int v = version; v < STORE_SCHEMA_VERSION && r == 0; v++)
		if (sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK)
			r = db_fail(st->db, err, "migrating the schema from version %d", v);
	return db_end(st->db, r, err);
}

/* Settings, then the first access, which takes the exclusive lock. */
static int store_setup(struct store *st, const char *path, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	const unsigned char *mode;

	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 1);
	/* Nothing in the file may make SQL do more than the statements here. */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if (db_exec(st->db, "PRAGMA locking_mode = EXCLUSIVE", err) < 0)
		return -1;
	s = db_prep(st->db, "PRAGMA journal_mode = WAL", err);
	if (!s)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW) {
		if ((sqlite3_errcode(st->db) & 0xff) == SQLITE_BUSY)
			return err_set(err, CRISP_E_UNAVAILABLE,
				       "%s is in use by another process "
				       "(is another crisp-imaged running?)",
				       path);
		return db_fail(st->db, err, "enabling WAL");
	}
	mode = sqlite3_column_text(s, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0)
		return err_set(err, CRISP_E_INTERNAL, "%s: cannot enable WAL", path);
	sqlite3_finalize(TAKE_PTR(s));
	if (db_exec(st->db, "PRAGMA synchronous = FULL", err) < 0 ||
	    db_exec(st->db, "PRAGMA foreign_keys = ON", err) < 0)
		return -1;
	return store_migrate(st, path, err);
}

struct store *store_open(const char *path, struct crisp_error *err)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc;

	pthread_mutex_init(&st->lock, NULL);
	/* The store's own lock makes calls atomic; SQLite's (FULLMUTEX) stays
	 * as a second line of defence. */
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
				     SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		err_set(err, CRISP_E_INTERNAL, "metadata store %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		store_close(st);
		return NULL;
	}
	if (store_setup(st, path, err) < 0) {
		store_close(st);
		return NULL;
	}
	return st;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close_v2(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_schema_version(struct store *st)
{
	LOCKED(st);
	_cleanup_stmt_ sqlite3_stmt *s = db_prep(st->db, "PRAGMA user_version", NULL);

	return db_step_row(st->db, s, NULL, "user_version") == 1 ? sqlite3_column_int(s, 0) : -1;
}

/* --- validation ------------------------------------------------------------ */

static bool name_valid(const char *name)
{
	size_t n = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;

	if (n == 0 || n > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/* What put derives from the caller's image, checked. */
struct image_derived {
	struct image_config cfg;
	int64_t size;
	char (*chain_ids)[CONTENT_DIGEST_MAX];
	char *spec_text;
};

static void derived_done(struct image_derived *d)
{
	image_config_done(&d->cfg);
	free(d->chain_ids);
	free(d->spec_text);
}

static int check_input(const struct store_image *img, struct crisp_error *err)
{
	if (!digest_valid(img->id) || !digest_valid(img->manifest_digest))
		return err_set(err, CRISP_E_INVALID, "image id or manifest digest is not a digest");
	if (!img->manifest || !img->config)
		return err_set(err, CRISP_E_INVALID, "image %s: manifest and config needed",
			       img->id);
	for (size_t i = 0; i < img->n_names; i++)
		if (!name_valid(img->names[i]))
			return err_set(err, CRISP_E_INVALID, "image %s: invalid name", img->id);
	for (size_t i = 0; i < img->n_extra_blobs; i++)
		if (!digest_valid(img->extra_blobs[i]))
			return err_set(err, CRISP_E_INVALID, "image %s: invalid blob digest",
				       img->id);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];

		if (!digest_valid(l->diff_id) || !digest_valid(l->blob_digest) || !l->media_type ||
		    !*l->media_type || strlen(l->media_type) > 255 || l->size < 0)
			return err_set(err, CRISP_E_INVALID, "image %s: invalid layer %zu", img->id,
				       i);
	}
	/* The id is the config's digest and the manifest digest the
	 * manifest's: what is recorded is exactly what was verified. */
	if (content_digest_check(img->id, img->config, strlen(img->config), err) < 0 ||
	    content_digest_check(img->manifest_digest, img->manifest, strlen(img->manifest), err) <
		    0)
		return -1;
	return 0;
}

/* The config's rootfs.diff_ids must be the layers' diff ids, in order. */
static int check_diff_ids(const struct store_image *img, const struct image_config *cfg,
			  struct crisp_error *err)
{
	if (cfg->n_diff_ids != img->n_layers)
		return err_set(err, CRISP_E_INVALID,
			       "image %s: config has %zu diff ids for %zu layers", img->id,
			       cfg->n_diff_ids, img->n_layers);
	for (size_t i = 0; i < img->n_layers; i++)
		if (!streq(cfg->diff_ids[i], img->layers[i].diff_id))
			return err_set(err, CRISP_E_INVALID,
				       "image %s: layer %zu diff id does not match the config",
				       img->id, i);
	return 0;
}

static int derive(const struct store_image *img, struct image_derived *d, struct crisp_error *err)
{
	json_t *manifest;

	if (check_input(img, err) < 0)
		return -1;
	manifest = json_loads(img->manifest, 0, NULL);
	if (!json_is_object(manifest)) {
		json_decref(manifest);
		return err_set(err, CRISP_E_INVALID, "image %s: manifest is not a JSON object",
			       img->id);
	}
	json_decref(manifest);
	if (image_config_parse(img->config, strlen(img->config), &d->cfg, err) < 0)
		return err_prefix(err, "image %s", img->id);
	if (check_diff_ids(img, &d->cfg, err) < 0)
		return -1;
	d->spec_text = json_dumps(d->cfg.spec, JSON_COMPACT | JSON_SORT_KEYS);
	d->size = (int64_t)(strlen(img->manifest) + strlen(img->config));
	d->chain_ids = xcalloc(img->n_layers + 1, sizeof(*d->chain_ids));
	for (size_t i = 0; i < img->n_layers; i++) {
		if (image_chain_id(i ? d->chain_ids[i - 1] : NULL, img->layers[i].diff_id,
				   d->chain_ids[i], err) < 0)
			return -1;
		d->size += img->layers[i].size;
	}
	return 0;
}

/* --- images: write -------------------------------------------------------- */

static int put_row(struct store *st, const struct store_image *img, const struct image_derived *d,
		   struct crisp_error *err)
{
	const char *top = img->n_layers ? d->chain_ids[img->n_layers - 1] : NULL;

	/* A re-pull updates the content but keeps created_at, and never
	 * unpins (store_image_set_pinned does). */
	return db_run(st->db, err,
		      "INSERT INTO images (id, manifest_digest, size, chain_id, pinned, created_at,"
		      " username, uid, spec, manifest, config)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
		      " ON CONFLICT (id) DO UPDATE SET manifest_digest = excluded.manifest_digest,"
		      " size = excluded.size, chain_id = excluded.chain_id,"
		      " pinned = (pinned OR excluded.pinned), username = excluded.username,"
		      " uid = excluded.uid, spec = excluded.spec, manifest = excluded.manifest,"
		      " config = excluded.config",
		      "ttitiitnttt", img->id, img->manifest_digest, d->size, top,
		      (int64_t)img->pinned, store_now_ns(), d->cfg.username, d->cfg.uid,
		      d->spec_text, img->manifest, img->config);
}

static int put_blob(struct store *st, const char *id, const char *digest, const char *role,
		    struct crisp_error *err)
{
	return db_run(
		st->db, err,
		"INSERT OR IGNORE INTO image_blobs (image_id, digest, role) VALUES (?1, ?2, ?3)",
		"ttt", id, digest, role);
}

static int put_layers(struct store *st, const struct store_image *img,
		      const struct image_derived *d, struct crisp_error *err)
{
	const char *id = img->id;

	if (db_run(st->db, err, "DELETE FROM image_layers WHERE image_id = ?1", "t", id) < 0 ||
	    db_run(st->db, err, "DELETE FROM image_blobs WHERE image_id = ?1", "t", id) < 0 ||
	    put_blob(st, id, img->manifest_digest, "manifest", err) < 0 ||
	    put_blob(st, id, id, "config", err) < 0)
		return -1;
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];

		if (db_run(st->db, err,
			   "INSERT INTO image_layers (image_id, idx, diff_id, chain_id,"
			   " blob_digest, media_type, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			   "titttti", id, (int64_t)i, l->diff_id, d->chain_ids[i], l->blob_digest,
			   l->media_type, l->size) < 0 ||
		    put_blob(st, id, l->blob_digest, "layer", err) < 0)
			return -1;
	}
	for (size_t i = 0; i < img->n_extra_blobs; i++)
		if (put_blob(st, id, img->extra_blobs[i], "extra", err) < 0)
			return -1;
	return 0;
}

/* Add the names; a name another image had moves here, and that image goes
 * if it has no name left and is not pinned. */
static int put_names(struct store *st, const struct store_image *img, struct crisp_error *err)
{
	for (size_t i = 0; i < img->n_names; i++) {
		const char *name = img->names[i];
		_cleanup_stmt_ sqlite3_stmt *s = db_query(
			st->db, err, "SELECT image_id FROM image_names WHERE name = ?1", "t", name);
		_cleanup_free_ char *prev = NULL;
		int r = db_step_row(st->db, s, err, "looking up a name");

		if (r < 0)
			return -1;
		if (r > 0 && !streq((const char *)sqlite3_column_text(s, 0), img->id))
			prev = db_col_strdup(s, 0);
		if (db_run(st->db, err,
			   "INSERT INTO image_names (name, image_id, is_digest) VALUES (?1, ?2, ?3)"
			   " ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id",
			   "tti", name, img->id, (int64_t)(strchr(name, '@') != NULL)) < 0)
			return -1;
		if (prev && db_run(st->db, err,
				   "DELETE FROM images WHERE id = ?1 AND pinned = 0 AND NOT EXISTS"
				   " (SELECT 1 FROM image_names WHERE image_id = ?1)",
				   "t", prev) < 0)
			return -1;
	}
	return 0;
}

int store_image_put(struct store *st, const struct store_image *img, struct crisp_error *err)
{
	_cleanup_(derived_done) struct image_derived d = { 0 };
	int r;

	if (derive(img, &d, err) < 0)
		return -1;
	LOCKED(st);
	if (db_begin(st->db, err) < 0)
		return -1;
	r = put_row(st, img, &d, err);
	if (r == 0)
		r = put_layers(st, img, &d, err);
	if (r == 0)
		r = put_names(st, img, err);
	if (db_end(st->db, r, err) < 0)
		return err_prefix(err, "storing image %s", img->id);
	return 0;
}

int store_image_remove_name(struct store *st, const char *name, bool *ret_last_name,
			    char **ret_image_id, struct crisp_error *err)
{
	_cleanup_free_ char *id = NULL;
	bool last = false;
	int r;

	if (!name_valid(name))
		return err_set(err, CRISP_E_INVALID, "invalid image name");
	LOCKED(st);
	/* Declared under the lock: statements are finalized before unlocking. */
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	if (db_begin(st->db, err) < 0)
		return -1;
	s = db_query(st->db, err, "SELECT image_id FROM image_names WHERE name = ?1", "t", name);
	r = db_step_row(st->db, s, err, "looking up a name");
	if (r == 0)
		r = err_set(err, CRISP_E_NOT_FOUND, "no image is named %s", name);
	if (r > 0) {
		id = db_col_strdup(s, 0);
		r = db_run(st->db, err, "DELETE FROM image_names WHERE name = ?1", "t", name);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (r == 0) {
		s = db_query(st->db, err, "SELECT count(*) FROM image_names WHERE image_id = ?1",
			     "t", id);
		r = db_step_row(st->db, s, err, "counting names") < 0 ? -1 : 0;
		last = r == 0 && sqlite3_column_int64(s, 0) == 0;
	}
	if (db_end(st->db, r, err) < 0)
		return -1;
	if (ret_last_name)
		*ret_last_name = last;
	if (ret_image_id)
		*ret_image_id = TAKE_PTR(id);
	return 0;
}

int store_image_remove(struct store *st, const char *id, struct crisp_error *err)
{
	if (!digest_valid(id))
		return err_set(err, CRISP_E_INVALID, "invalid image id");
	LOCKED(st);
	/* Names, layers and blob references go by ON DELETE CASCADE. */
	return store_update_one(st, "image", id,
				db_run(st->db, err, "DELETE FROM images WHERE id = ?1", "t", id),
				err);
}

int store_image_set_pinned(struct store *st, const char *id, bool pinned, struct crisp_error *err)
{
	if (!digest_valid(id))
		return err_set(err, CRISP_E_INVALID, "invalid image id");
	LOCKED(st);
	return store_update_one(st, "image", id,
				db_run(st->db, err, "UPDATE images SET pinned = ?2 WHERE id = ?1",
				       "ti", id, (int64_t)pinned),
				err);
}

int store_blob_referenced(struct store *st, const char *digest, bool *ret, struct crisp_error *err)
{
	int r;

	if (!digest_valid(digest))
		return err_set(err, CRISP_E_INVALID, "invalid blob digest");
	LOCKED(st);
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err, "SELECT 1 FROM image_blobs WHERE digest = ?1 LIMIT 1", "t", digest);
	r = db_step_row(st->db, s, err, "looking up a blob");
	if (r < 0)
		return -1;
	*ret = r > 0;
	return 0;
}

/* --- images: read --------------------------------------------------------- */

void store_image_free(struct store_image *img)
{
	if (!img)
		return;
	free(img->id);
	free(img->manifest_digest);
	free(img->manifest);
	free(img->config);
	for (size_t i = 0; i < img->n_extra_blobs; i++)
		free(img->extra_blobs[i]);
	free(img->extra_blobs);
	for (size_t i = 0; i < img->n_names; i++)
		free(img->names[i]);
	free(img->names);
	for (size_t i = 0; i < img->n_layers; i++) {
		free(img->layers[i].diff_id);
		free(img->layers[i].chain_id);
		free(img->layers[i].blob_digest);
		free(img->layers[i].media_type);
	}
	free(img->layers);
	free(img->chain_id);
	free(img->username);
	json_decref(img->spec);
	free(img);
}

static void store_image_freep(struct store_image **img)
{
	store_image_free(*img);
}

/* The first column of every row of a query on one image id (or, with id
 * NULL, of a query without parameters). */
static int load_strings(struct store *st, const char *sql, const char *id, char ***ret,
			size_t *ret_n, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(st->db, err, sql, id ? "t" : "", id);
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*ret = xrealloc(*ret, (*ret_n + 1) * sizeof(**ret));
		(*ret)[(*ret_n)++] = db_col_strdup(s, 0);
	}
	return rc == SQLITE_DONE ? 0 : db_fail(st->db, err, "loading images");
}

static int load_layers(struct store *st, struct store_image *img, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err,
		"SELECT diff_id, chain_id, blob_digest, media_type, size FROM image_layers"
		" WHERE image_id = ?1 ORDER BY idx",
		"t", img->id);
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_layer *l;

		img->layers = xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
		l = &img->layers[img->n_layers++];
		l->diff_id = db_col_strdup(s, 0);
		l->chain_id = db_col_strdup(s, 1);
		l->blob_digest = db_col_strdup(s, 2);
		l->media_type = db_col_strdup(s, 3);
		l->size = sqlite3_column_int64(s, 4);
	}
	if (rc != SQLITE_DONE)
		return db_fail(st->db, err, "loading the layers of %s", img->id);
	return load_strings(st,
			    "SELECT digest FROM image_blobs WHERE image_id = ?1 AND role = 'extra'"
			    " ORDER BY digest",
			    img->id, &img->extra_blobs, &img->n_extra_blobs, err);
}

static int load_image(struct store *st, const char *id, unsigned load, struct store_image **ret,
		      struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err,
		"SELECT id, manifest_digest, size, chain_id, pinned, created_at, username, uid,"
		" spec, manifest, config FROM images WHERE id = ?1",
		"t", id);
	_cleanup_(store_image_freep) struct store_image *img = NULL;
	int r = db_step_row(st->db, s, err, "loading an image");

	if (r <= 0)
		return r < 0 ? -1 : err_set(err, CRISP_E_NOT_FOUND, "image %s not found", id);
	img = xcalloc(1, sizeof(*img));
	img->id = db_col_strdup(s, 0);
	img->manifest_digest = db_col_strdup(s, 1);
	img->size = sqlite3_column_int64(s, 2);
	img->chain_id = db_col_strdup(s, 3);
	img->pinned = sqlite3_column_int(s, 4) != 0;
	img->created_at = sqlite3_column_int64(s, 5);
	img->username = db_col_strdup(s, 6);
	img->uid = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7);
	img->spec = json_loads((const char *)sqlite3_column_text(s, 8), 0, NULL);
	if (!json_is_object(img->spec))
		return err_set(err, CRISP_E_INTERNAL, "metadata store: image %s: bad spec", id);
	if (load & STORE_LOAD_JSON) {
		img->manifest = db_col_strdup(s, 9);
		img->config = db_col_strdup(s, 10);
	}
	if (load_strings(st, "SELECT name FROM image_names WHERE image_id = ?1 ORDER BY name", id,
			 &img->names, &img->n_names, err) < 0)
		return -1;
	if ((load & STORE_LOAD_LAYERS) && load_layers(st, img, err) < 0)
		return -1;
	*ret = TAKE_PTR(img);
	return 0;
}

static bool id_prefix(const char *ref, const char **ret_hex)
{
	const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
	size_t n = strlen(hex);

	if (n < ID_PREFIX_MIN || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	*ret_hex = hex;
	return true;
}

/* The id of the image ref names: exact id, exact name, or id prefix. */
static int resolve(struct store *st, const char *ref, char **ret_id, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err,
		"SELECT id FROM images WHERE id = ?1 UNION ALL"
		" SELECT image_id FROM image_names WHERE name = ?1",
		"t", ref);
	_cleanup_free_ char *full = NULL;
	const char *hex;
	int r = db_step_row(st->db, s, err, "looking up an image");

	if (r != 0) {
		if (r > 0)
			*ret_id = db_col_strdup(s, 0);
		return r < 0 ? -1 : 0;
	}
	if (!id_prefix(ref, &hex))
		return err_set(err, CRISP_E_NOT_FOUND, "image %s not found", ref);
	sqlite3_finalize(s);
	full = xasprintf("sha256:%s", hex);
	/* Only hex digits: nothing in the prefix can act as a pattern. */
	s = db_query(st->db, err, "SELECT id FROM images WHERE substr(id, 1, ?1) = ?2 LIMIT 2",
		     "it", (int64_t)strlen(full), full);
	r = db_step_row(st->db, s, err, "looking up an image");
	if (r <= 0)
		return r < 0 ? -1 : err_set(err, CRISP_E_NOT_FOUND, "image %s not found", ref);
	*ret_id = db_col_strdup(s, 0);
	if (db_step_row(st->db, s, err, "looking up an image") != 0) {
		free(TAKE_PTR(*ret_id));
		return err_set(err, CRISP_E_INVALID, "image id prefix %s is ambiguous", ref);
	}
	return 0;
}

int store_image_get(struct store *st, const char *ref, unsigned load, struct store_image **ret,
		    struct crisp_error *err)
{
	_cleanup_free_ char *id = NULL;

	if (!name_valid(ref))
		return err_set(err, CRISP_E_INVALID, "invalid image reference");
	LOCKED(st);
	if (resolve(st, ref, &id, err) < 0)
		return -1;
	return load_image(st, id, load, ret, err);
}

/* Everything that list callbacks see is loaded first and handed over
 * after the lock is released, so a callback may call the store again. */
static int collect_images(struct store *st, unsigned load, struct store_image ***ret, size_t *ret_n,
			  struct crisp_error *err)
{
	_cleanup_free_ char **ids = NULL;
	size_t n = 0;
	int r;

	LOCKED(st);
	if (db_exec(st->db, "BEGIN", err) < 0)
		return -1;
	r = load_strings(st, "SELECT id FROM images ORDER BY id", NULL, &ids, &n, err);
	for (size_t i = 0; i < n; i++) {
		if (r == 0) {
			*ret = xrealloc(*ret, (*ret_n + 1) * sizeof(**ret));
			r = load_image(st, ids[i], load, &(*ret)[*ret_n], err);
			*ret_n += r == 0;
		}
		free(ids[i]);
	}
	return db_end(st->db, r, err);
}

int store_image_list(struct store *st, unsigned load, store_image_fn fn, void *arg,
		     struct crisp_error *err)
{
	struct store_image **imgs = NULL;
	size_t n = 0;
	int r = collect_images(st, load, &imgs, &n, err);

	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(imgs[i], arg);
		store_image_free(imgs[i]);
	}
	free(imgs);
	return r;
}
