/* SQLite plumbing for imaged (see db.h). */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/sqlite_space.h"
#include "imaged/db.h"

int db_fail(sqlite3 *db, struct crisp_error *err, const char *fmt, ...)
{
	char what[CRISP_ERRMSG_MAX / 2];
	enum crisp_errcode code = CRISP_E_INTERNAL;
	const char *file = sqlite3_db_filename(db, "main");
	va_list ap;
	int e;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	switch (sqlite3_errcode(db) & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = CRISP_E_UNAVAILABLE;
		break;
	case SQLITE_CONSTRAINT:
		code = CRISP_E_EXISTS;
		break;
	}
	/* "database or disk is full" does not say which: the errno does. */
	if ((e = sqlite_space_errno(db)) != 0)
		return err_set(err, CRISP_E_RESOURCE, "%s: %s: %s: %s",
			       file && *file ? file : "database", what, sqlite3_errmsg(db),
			       strerror(e));
	return err_set(err, code, "%s: %s: %s", file && *file ? file : "database", what,
		       sqlite3_errmsg(db));
}

sqlite3_stmt *db_prep(sqlite3 *db, const char *sql, struct crisp_error *err)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_fail(db, err, "preparing a statement");
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

static int db_vbind(sqlite3 *db, sqlite3_stmt *s, struct crisp_error *err, const char *fmt,
		    va_list ap)
{
	int rc = SQLITE_OK, n = (int)strlen(fmt);

	/* A parameter the format missed would silently be NULL. */
	if (n != sqlite3_bind_parameter_count(s))
		return err_set(err, CRISP_E_INTERNAL, "database: %d values for %d parameters", n,
			       sqlite3_bind_parameter_count(s));
	for (int i = 1; i <= n && rc == SQLITE_OK; i++) {
		char c = fmt[i - 1];

		if (c == 't') {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(s, i);
		} else {
			int64_t v = va_arg(ap, int64_t);
			rc = c == 'n' && v < 0 ? sqlite3_bind_null(s, i)
					       : sqlite3_bind_int64(s, i, v);
		}
	}
	if (rc != SQLITE_OK)
		return db_fail(db, err, "binding a parameter");
	return 0;
}

sqlite3_stmt *db_query(sqlite3 *db, struct crisp_error *err, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s = db_prep(db, sql, err);
	va_list ap;
	int r;

	if (!s)
		return NULL;
	va_start(ap, fmt);
	r = db_vbind(db, s, err, fmt, ap);
	va_end(ap);
	if (r < 0) {
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

int db_run(sqlite3 *db, struct crisp_error *err, const char *sql, const char *fmt, ...)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_prep(db, sql, err);
	va_list ap;
	int r;

	if (!s)
		return -1;
	va_start(ap, fmt);
	r = db_vbind(db, s, err, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(db, err, "updating");
	return 0;
}

int db_step_row(sqlite3 *db, sqlite3_stmt *s, struct crisp_error *err, const char *what)
{
	int rc;

	if (!s)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(db, err, "%s", what);
}

int db_exec(sqlite3 *db, const char *sql, struct crisp_error *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, "%s", sql);
	return 0;
}

int db_begin(sqlite3 *db, struct crisp_error *err)
{
	return db_exec(db, "BEGIN IMMEDIATE", err);
}

int db_end(sqlite3 *db, int ret, struct crisp_error *err)
{
	if (ret == 0 && db_exec(db, "COMMIT", err) == 0)
		return 0;
	/* Also after a failed COMMIT, which may leave the transaction open. */
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

char *db_col_strdup(sqlite3_stmt *s, int col)
{
	const unsigned char *v = sqlite3_column_text(s, col);
	return v ? xstrdup((const char *)v) : NULL;
}
