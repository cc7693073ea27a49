/* imaged's metadata store: snapshots and garbage collection (see
 * store.h). Snapshot keys are checked here; the numeric ids, never the
 * keys, are what may become directory names. */
#include "autoconfig.h"

#include <string.h>

#include "imaged/db.h"
#include "imaged/reference.h"
#include "imaged/store_int.h"

static const char *const kind_names[] = {
	[STORE_SNAPSHOT_COMMITTED] = "committed",
	[STORE_SNAPSHOT_ACTIVE] = "active",
};

/* --- snapshots ------------------------------------------------------------ */

static bool snapshot_key_valid(const char *key, enum store_snapshot_kind kind)
{
	size_t n = key ? strnlen(key, STORE_KEY_MAX + 1) : 0;

	if (kind == STORE_SNAPSHOT_COMMITTED)
		return digest_valid(key);
	if (kind != STORE_SNAPSHOT_ACTIVE || n == 0 || n > STORE_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
		      (key[i] >= '0' && key[i] <= '9') || strchr("_.:-", key[i])))
			return false;
	return true;
}

/* 1 and the kind in *kind if the snapshot exists, 0 if not, -1. */
static int snapshot_kind(struct store *st, const char *key, enum store_snapshot_kind *kind,
			 struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err, "SELECT kind FROM snapshots WHERE key = ?1", "t", key);
	int r = db_step_row(st->db, s, err, "looking up a snapshot");

	if (r > 0 && kind)
		*kind = streq((const char *)sqlite3_column_text(s, 0), "active")
				? STORE_SNAPSHOT_ACTIVE
				: STORE_SNAPSHOT_COMMITTED;
	return r;
}

static int snapshot_insert(struct store *st, const char *key, const char *parent,
			   enum store_snapshot_kind kind, int64_t *ret_id, struct crisp_error *err)
{
	enum store_snapshot_kind pkind;
	int r;

	if (parent) {
		r = snapshot_kind(st, parent, &pkind, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return err_set(err, CRISP_E_NOT_FOUND, "parent snapshot %s does not exist",
				       parent);
		if (pkind != STORE_SNAPSHOT_COMMITTED)
			return err_set(err, CRISP_E_PRECONDITION,
				       "parent snapshot %s is not committed", parent);
	}
	r = snapshot_kind(st, key, NULL, err);
	if (r != 0)
		return r < 0 ? -1 : err_set(err, CRISP_E_EXISTS, "snapshot %s exists", key);
	if (db_run(st->db, err,
		   "INSERT INTO snapshots (key, parent, kind, created_at) VALUES (?1, ?2, ?3, ?4)",
		   "ttti", key, parent, kind_names[kind], store_now_ns()) < 0)
		return -1;
	if (ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_snapshot_put(struct store *st, const char *key, const char *parent,
		       enum store_snapshot_kind kind, int64_t *ret_id, struct crisp_error *err)
{
	if (!snapshot_key_valid(key, kind) ||
	    (parent && !snapshot_key_valid(parent, STORE_SNAPSHOT_COMMITTED)))
		return err_set(err, CRISP_E_INVALID, "invalid snapshot key or parent");
	LOCKED(st);
	if (db_begin(st->db, err) < 0)
		return -1;
	return db_end(st->db, snapshot_insert(st, key, parent, kind, ret_id, err), err);
}

static int snapshot_rekey(struct store *st, const char *active_key, const char *key, int64_t bytes,
			  int64_t inodes, struct crisp_error *err)
{
	enum store_snapshot_kind kind;
	int r = snapshot_kind(st, active_key, &kind, err);

	if (r <= 0)
		return r < 0 ? -1
			     : err_set(err, CRISP_E_NOT_FOUND, "snapshot %s does not exist",
				       active_key);
	if (kind != STORE_SNAPSHOT_ACTIVE)
		return err_set(err, CRISP_E_PRECONDITION, "snapshot %s is not active", active_key);
	r = snapshot_kind(st, key, NULL, err);
	if (r != 0)
		return r < 0 ? -1 : err_set(err, CRISP_E_EXISTS, "snapshot %s exists", key);
	return db_run(st->db, err,
		      "UPDATE snapshots SET key = ?2, kind = 'committed', usage_bytes = ?3,"
		      " usage_inodes = ?4 WHERE key = ?1",
		      "ttii", active_key, key, bytes, inodes);
}

int store_snapshot_commit(struct store *st, const char *active_key, const char *key,
			  int64_t usage_bytes, int64_t usage_inodes, struct crisp_error *err)
{
	if (!snapshot_key_valid(active_key, STORE_SNAPSHOT_ACTIVE) ||
	    !snapshot_key_valid(key, STORE_SNAPSHOT_COMMITTED))
		return err_set(err, CRISP_E_INVALID, "invalid snapshot key");
	LOCKED(st);
	if (db_begin(st->db, err) < 0)
		return -1;
	return db_end(st->db, snapshot_rekey(st, active_key, key, usage_bytes, usage_inodes, err),
		      err);
}

static bool any_key_valid(const char *key)
{
	return snapshot_key_valid(key, STORE_SNAPSHOT_ACTIVE) ||
	       snapshot_key_valid(key, STORE_SNAPSHOT_COMMITTED);
}

int store_snapshot_set_usage(struct store *st, const char *key, int64_t usage_bytes,
			     int64_t usage_inodes, struct crisp_error *err)
{
	if (!any_key_valid(key))
		return err_set(err, CRISP_E_INVALID, "invalid snapshot key");
	LOCKED(st);
	return store_update_one(st, "snapshot", key,
				db_run(st->db, err,
				       "UPDATE snapshots SET usage_bytes = ?2, usage_inodes = ?3"
				       " WHERE key = ?1",
				       "tii", key, usage_bytes, usage_inodes),
				err);
}

#define SNAPSHOT_COLUMNS "id, key, parent, kind, created_at, usage_bytes, usage_inodes"

static struct store_snapshot *snapshot_from_row(sqlite3_stmt *s)
{
	struct store_snapshot *snap = xcalloc(1, sizeof(*snap));

	snap->id = sqlite3_column_int64(s, 0);
	snap->key = db_col_strdup(s, 1);
	snap->parent = db_col_strdup(s, 2);
	snap->kind = streq((const char *)sqlite3_column_text(s, 3), "active")
			     ? STORE_SNAPSHOT_ACTIVE
			     : STORE_SNAPSHOT_COMMITTED;
	snap->created_at = sqlite3_column_int64(s, 4);
	snap->usage_bytes = sqlite3_column_int64(s, 5);
	snap->usage_inodes = sqlite3_column_int64(s, 6);
	return snap;
}

void store_snapshot_free(struct store_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->key);
	free(snap->parent);
	free(snap);
}

int store_snapshot_get(struct store *st, const char *key, struct store_snapshot **ret,
		       struct crisp_error *err)
{
	int r;

	if (!any_key_valid(key))
		return err_set(err, CRISP_E_INVALID, "invalid snapshot key");
	LOCKED(st);
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err, "SELECT " SNAPSHOT_COLUMNS " FROM snapshots WHERE key = ?1", "t", key);
	r = db_step_row(st->db, s, err, "loading a snapshot");
	if (r <= 0)
		return r < 0 ? -1
			     : err_set(err, CRISP_E_NOT_FOUND, "snapshot %s does not exist", key);
	*ret = snapshot_from_row(s);
	return 0;
}

static int collect_snapshots(struct store *st, struct store_snapshot ***ret, size_t *ret_n,
			     struct crisp_error *err)
{
	LOCKED(st);
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err, "SELECT " SNAPSHOT_COLUMNS " FROM snapshots ORDER BY id", "");
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*ret = xrealloc(*ret, (*ret_n + 1) * sizeof(**ret));
		(*ret)[(*ret_n)++] = snapshot_from_row(s);
	}
	return rc == SQLITE_DONE ? 0 : db_fail(st->db, err, "listing snapshots");
}

int store_snapshot_list(struct store *st, store_snapshot_fn fn, void *arg, struct crisp_error *err)
{
	struct store_snapshot **snaps = NULL;
	size_t n = 0;
	int r = collect_snapshots(st, &snaps, &n, err);

	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = fn(snaps[i], arg);
		store_snapshot_free(snaps[i]);
	}
	free(snaps);
	return r;
}

static int snapshot_delete(struct store *st, const char *key, struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_query(
		st->db, err, "SELECT key FROM snapshots WHERE parent = ?1 LIMIT 1", "t", key);
	int r = db_step_row(st->db, s, err, "looking up snapshot children");

	if (r != 0)
		return r < 0 ? -1
			     : err_set(err, CRISP_E_PRECONDITION,
				       "snapshot %s is the parent of snapshot %s", key,
				       sqlite3_column_text(s, 0));
	return store_update_one(
		st, "snapshot", key,
		db_run(st->db, err, "DELETE FROM snapshots WHERE key = ?1", "t", key), err);
}

int store_snapshot_remove(struct store *st, const char *key, struct crisp_error *err)
{
	if (!any_key_valid(key))
		return err_set(err, CRISP_E_INVALID, "invalid snapshot key");
	LOCKED(st);
	if (db_begin(st->db, err) < 0)
		return -1;
	return db_end(st->db, snapshot_delete(st, key, err), err);
}

static int snapshots_delete(struct store *st, char *const *keys, size_t n, bool *removed,
			    struct crisp_error *err)
{
	for (size_t i = 0; i < n; i++) {
		removed[i] = false;
		if (!any_key_valid(keys[i]))
			continue;
		if (snapshot_delete(st, keys[i], err) == 0)
			removed[i] = true;
		else if (err->code != CRISP_E_PRECONDITION && err->code != CRISP_E_NOT_FOUND)
			return -1;
	}
	return 0;
}

int store_snapshots_remove(struct store *st, char *const *keys, size_t n, bool *removed,
			   struct crisp_error *err)
{
	struct crisp_error e; /* skipped keys' errors land here too */
	int r;

	if (n == 0)
		return 0;
	LOCKED(st);
	if (db_begin(st->db, err) < 0)
		return -1;
	r = snapshots_delete(st, keys, n, removed, &e);
	if (db_end(st->db, r, err) == 0)
		return 0;
	if (r < 0 && err)
		*err = e;
	for (size_t i = 0; i < n; i++)
		removed[i] = false;
	return -1;
}

/* --- garbage collection --------------------------------------------------- */

struct gc_item {
	enum store_gc_kind kind;
	char *key;
	int64_t id;
};

struct gc_list {
	struct gc_item *items;
	size_t n;
};

static void gc_add(struct gc_list *l, enum store_gc_kind kind, const char *key, int64_t id)
{
	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n++] = (struct gc_item){ kind, xstrdup(key), id };
}

static int gc_collect_blob(const char *digest, int64_t size, void *arg)
{
	gc_add(arg, STORE_GC_BLOB, digest, -1);
	return 0;
}

/* Committed snapshots that nothing needs: "used" is every chain id of an
 * image's layers and every parent of an active snapshot, with all their
 * ancestors; "depth" orders the rest children first. */
static const char gc_snapshots_sql[] =
	"WITH RECURSIVE"
	" used(key) AS ("
	"  SELECT chain_id FROM image_layers"
	"  UNION SELECT parent FROM snapshots WHERE kind = 'active' AND parent IS NOT NULL"
	"  UNION SELECT s.parent FROM snapshots AS s JOIN used ON s.key = used.key"
	"   WHERE s.parent IS NOT NULL),"
	" depth(key, d) AS ("
	"  SELECT key, 0 FROM snapshots WHERE parent IS NULL"
	"  UNION ALL SELECT s.key, depth.d + 1 FROM snapshots AS s JOIN depth"
	"   ON s.parent = depth.key)"
	" SELECT s.key, s.id FROM snapshots AS s JOIN depth ON depth.key = s.key"
	" WHERE s.kind = 'committed' AND s.key NOT IN (SELECT key FROM used)"
	" ORDER BY depth.d DESC, s.id DESC";

/* Drop the blobs of *all that an image holds and add the unused snapshots. */
static int gc_select(struct store *st, struct gc_list *all, struct gc_list *out,
		     struct crisp_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_prep(
		st->db, "SELECT 1 FROM image_blobs WHERE digest = ?1 LIMIT 1", err);
	_cleanup_stmt_ sqlite3_stmt *snaps = NULL;
	int rc;

	if (!s)
		return -1;
	for (size_t i = 0; i < all->n; i++) {
		sqlite3_reset(s);
		if (sqlite3_bind_text(s, 1, all->items[i].key, -1, SQLITE_STATIC) != SQLITE_OK)
			return db_fail(st->db, err, "binding a digest");
		rc = db_step_row(st->db, s, err, "looking up a blob");
		if (rc < 0)
			return -1;
		if (rc == 0)
			gc_add(out, STORE_GC_BLOB, all->items[i].key, -1);
	}
	snaps = db_prep(st->db, gc_snapshots_sql, err);
	if (!snaps)
		return -1;
	while ((rc = sqlite3_step(snaps)) == SQLITE_ROW)
		gc_add(out, STORE_GC_SNAPSHOT, (const char *)sqlite3_column_text(snaps, 0),
		       sqlite3_column_int64(snaps, 1));
	return rc == SQLITE_DONE ? 0 : db_fail(st->db, err, "finding unused snapshots");
}

static void gc_list_done(struct gc_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].key);
	free(l->items);
}

static int gc_find(struct store *st, struct gc_list *all, struct gc_list *out,
		   struct crisp_error *err)
{
	LOCKED(st);
	if (db_exec(st->db, "BEGIN", err) < 0)
		return -1;
	return db_end(st->db, gc_select(st, all, out, err), err);
}

int store_gc_candidates(struct store *st, struct content_store *cs, store_gc_fn fn, void *arg,
			struct crisp_error *err)
{
	_cleanup_(gc_list_done) struct gc_list all = { 0 }, out = { 0 };
	int r;

	/* The blob walk needs no lock: a blob stored meanwhile is either
	 * missed (and seen next time) or held by a running pull. */
	r = content_list(cs, gc_collect_blob, &all, err);
	if (r != 0)
		return r;
	if (gc_find(st, &all, &out, err) < 0)
		return -1;
	for (size_t i = 0; i < out.n; i++) {
		r = fn(out.items[i].kind, out.items[i].key, out.items[i].id, arg);
		if (r != 0)
			return r;
	}
	return 0;
}
