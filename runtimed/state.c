/* runtimed's durable records: one row per sandbox and per container in
 * <root_dir>/runtimed/state.db (SQLite, WAL). A row holds the
 * record as the reply message it becomes (SandboxInfo, ContainerInfo,
 * protobuf) plus what only runtimed needs. Names are UNIQUE in the schema,
 * so two concurrent creations of one name cannot both be recorded. */
#include "autoconfig.h"

#include <string.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/sqlite_space.h"
#include "runtimed/runtimed.h"

static sqlite3 *db;

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS sandboxes ("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, info BLOB NOT NULL,"
	" pid_start INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS containers ("
	" id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, name TEXT NOT NULL UNIQUE,"
	" info BLOB NOT NULL, rootfs BLOB, pid_start INTEGER NOT NULL DEFAULT 0,"
	" stop_signal INTEGER NOT NULL DEFAULT 15);";

static int fail(struct crisp_error *err, const char *what)
{
	int code = sqlite3_errcode(db) & 0xff, e = sqlite_space_errno(db);

	/* "database or disk is full" does not say which: the errno does, and
	 * the message says what the operator must free. */
	if (e)
		return err_set(err, CRISP_E_RESOURCE, "state database: %s: %s: %s", what,
			       sqlite3_errmsg(db), strerror(e));
	return err_set(err, code == SQLITE_CONSTRAINT ? CRISP_E_EXISTS : CRISP_E_INTERNAL,
		       "state database: %s: %s", what, sqlite3_errmsg(db));
}

static int exec_sql(const char *sql, struct crisp_error *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(err, sql);
	return 0;
}

int state_open(const char *path, struct crisp_error *err)
{
	sqlite3_stmt *s = NULL;
	int ok;

	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK)
		return err_set(err, CRISP_E_INTERNAL, "state database %s: %s", path,
			       db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_extended_result_codes(db, 1);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/* One runtimed at a time: a second one fails here instead of sharing. */
	if (exec_sql("PRAGMA locking_mode = EXCLUSIVE", err) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
		return fail(err, "enabling WAL");
	ok = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) &&
	     strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
	sqlite3_finalize(s);
	if (!ok)
		return err_set(err, CRISP_E_UNAVAILABLE,
			       "state database %s: cannot enable WAL (in use by another "
			       "crisp-runtimed?)",
			       path);
	/* synchronous NORMAL: a commit is in the WAL, in the kernel's page
	 * cache, before the reply, so no crash of any crisp process loses it;
	 * the WAL is fsynced at checkpoints. A power loss may take back the
	 * last commits (never tear the database), and the reboot that follows
	 * takes with it everything those records could stand for: processes,
	 * mounts, bundles and netns pins under /run. What survives a reboot is
	 * imaged's and netd's, durable on their own (FULL, fsync), and the
	 * frontend's reconciliation removes what no record owns any more: a
	 * snapshot, a pod network and its IP. FULL cost an fsync per commit,
	 * 5 per pod start, on runtimed's loop: ~1 ms each here, during which
	 * every other request waits. */
	if (exec_sql("PRAGMA synchronous = NORMAL", err) < 0 || exec_sql(schema, err) < 0)
		return -1;
	return 0;
}

static sqlite3_stmt *prep(const char *sql, struct crisp_error *err)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		fail(err, sql);
		return NULL;
	}
	return s;
}

/* A statement that writes a record. The frontend's copy of the lists is
 * dropped first (events.c, ListWait): whatever the write's outcome, the
 * record in memory may already differ from what the copy was made of. */
static sqlite3_stmt *prep_write(const char *sql, struct crisp_error *err)
{
	list_changed();
	return prep(sql, err);
}

static int bind_msg(sqlite3_stmt *s, int col, const ProtobufCMessage *m)
{
	size_t n;
	uint8_t *buf;

	if (!m)
		return sqlite3_bind_null(s, col);
	n = protobuf_c_message_get_packed_size(m);
	buf = xmalloc(n ? n : 1);
	protobuf_c_message_pack(m, buf);
	return sqlite3_bind_blob(s, col, buf, (int)n, free);
}

static int run(sqlite3_stmt *s, const char *what, struct crisp_error *err)
{
	int rc;

	if (!s)
		return -1;
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		fail(err, what);
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return 0;
}

int state_pod_insert(struct pod *p, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write("INSERT INTO sandboxes (id, name, info, pid_start) "
				     "VALUES (?1, ?2, ?3, ?4)",
				     err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->name, -1, SQLITE_STATIC);
	bind_msg(s, 3, &p->info->base);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)p->pid_start);
	return run(s, "recording a sandbox", err);
}

int state_pod_save(struct pod *p, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write("UPDATE sandboxes SET info = ?2, pid_start = ?3 WHERE id = ?1",
				     err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	bind_msg(s, 2, &p->info->base);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)p->pid_start);
	return run(s, "updating a sandbox", err);
}

int state_pod_delete(const char *id, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write("DELETE FROM sandboxes WHERE id = ?1", err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return run(s, "deleting a sandbox", err);
}

int state_ctr_insert(struct ctr *c, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write("INSERT INTO containers (id, sandbox_id, name, info, rootfs, "
				     "pid_start, stop_signal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				     err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->info->sandbox_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, c->name, -1, SQLITE_STATIC);
	bind_msg(s, 4, &c->info->base);
	bind_msg(s, 5, c->rootfs ? &c->rootfs->base : NULL);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)c->pid_start);
	sqlite3_bind_int(s, 7, c->stop_signal);
	return run(s, "recording a container", err);
}

int state_ctr_save(struct ctr *c, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write(
		"UPDATE containers SET info = ?2, pid_start = ?3 WHERE id = ?1", err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	bind_msg(s, 2, &c->info->base);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)c->pid_start);
	return run(s, "updating a container", err);
}

int state_ctr_delete(const char *id, struct crisp_error *err)
{
	sqlite3_stmt *s = prep_write("DELETE FROM containers WHERE id = ?1", err);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return run(s, "deleting a container", err);
}

void pod_free(struct pod *p)
{
	if (!p)
		return;
	exit_waits_fire(&p->waits, false);
	pod_unwatch(p);
	free(p->name);
	if (p->info)
		protobuf_c_message_free_unpacked(&p->info->base, NULL);
	free(p);
}

void ctr_free(struct ctr *c)
{
	if (!c)
		return;
	exit_waits_fire(&c->waits, false);
	free(c->name);
	if (c->info)
		protobuf_c_message_free_unpacked(&c->info->base, NULL);
	if (c->rootfs)
		protobuf_c_message_free_unpacked(&c->rootfs->base, NULL);
	free(c);
}

static void *col_msg(sqlite3_stmt *s, int col, const ProtobufCMessageDescriptor *desc)
{
	const void *b = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return NULL;
	return protobuf_c_message_unpack(desc, NULL, (size_t)n, b ? b : (const void *)"");
}

/* Rows that do not decode are reported and skipped: the database is ours,
 * so that is corruption, and one bad row must not keep the rest down. */
int state_load(struct crisp_error *err)
{
	sqlite3_stmt *s = prep("SELECT id, name, info, pid_start FROM sandboxes", err);
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct pod *p = xcalloc(1, sizeof(*p));
		const char *id = (const char *)sqlite3_column_text(s, 0);

		p->info = col_msg(s, 2, &crisp_ipc__sandbox_info__descriptor);
		if (!id || !id_valid(id) || !p->info || !sqlite3_column_text(s, 1)) {
			log_err("state database: sandbox row '%s' is corrupt, skipped",
				id ? id : "?");
			pod_free(p);
			continue;
		}
		memcpy(p->id, id, ID_LEN + 1);
		p->name = xstrdup((const char *)sqlite3_column_text(s, 1));
		p->pid_start = (uint64_t)sqlite3_column_int64(s, 3);
		p->next = rt.pods;
		rt.pods = p;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fail(err, "loading sandboxes");
	s = prep("SELECT id, name, info, rootfs, pid_start, stop_signal FROM containers", err);
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ctr *c = xcalloc(1, sizeof(*c));
		const char *id = (const char *)sqlite3_column_text(s, 0);

		c->info = col_msg(s, 2, &crisp_ipc__container_info__descriptor);
		c->rootfs = col_msg(s, 3, &crisp_ipc__snapshot_mount__descriptor);
		if (!id || !id_valid(id) || !c->info || !sqlite3_column_text(s, 1)) {
			log_err("state database: container row '%s' is corrupt, skipped",
				id ? id : "?");
			ctr_free(c);
			continue;
		}
		memcpy(c->id, id, ID_LEN + 1);
		c->name = xstrdup((const char *)sqlite3_column_text(s, 1));
		c->pid_start = (uint64_t)sqlite3_column_int64(s, 4);
		c->stop_signal = sqlite3_column_int(s, 5);
		c->next = rt.ctrs;
		rt.ctrs = c;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fail(err, "loading containers");
	return 0;
}
