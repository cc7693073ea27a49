/* A thin layer over SQLite for imaged's metadata store: statements with
 * bound parameters only, transactions, and SQLite errors turned into
 * crisp_errors. Values never become SQL text: every query is a constant
 * string and every value a bound parameter (db_query's format).
 *
 * Nothing here locks: the caller serializes use of a connection. */
#ifndef CRISP_IMAGED_DB_H
#define CRISP_IMAGED_DB_H

#include <stdint.h>

#include <sqlite3.h>

#include "common/error.h"

static inline void db_finalizep(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}

#define _cleanup_stmt_ _cleanup_(db_finalizep)

/* Set err from the connection's last error (BUSY/LOCKED are
 * CRISP_E_UNAVAILABLE, FULL and an I/O error for want of space
 * CRISP_E_RESOURCE with the errno's text appended, CONSTRAINT
 * CRISP_E_EXISTS, the rest CRISP_E_INTERNAL) after what was being done.
 * Returns -1. */
int db_fail(sqlite3 *db, struct crisp_error *err, const char *fmt, ...) _printf_(3, 4);

sqlite3_stmt *db_prep(sqlite3 *db, const char *sql, struct crisp_error *err);
/* A prepared statement with parameters 1, 2, ... bound from the arguments
 * as fmt says, one letter each: 't' text (const char *; NULL binds NULL; it
 * must outlive the statement), 'i' int64_t, 'n' int64_t that binds NULL when
 * negative. NULL on failure. */
sqlite3_stmt *db_query(sqlite3 *db, struct crisp_error *err, const char *sql, const char *fmt, ...);
/* Prepare, bind (as db_query) and run a statement that returns no rows. */
int db_run(sqlite3 *db, struct crisp_error *err, const char *sql, const char *fmt, ...);
/* Step s (NULL: a failed db_query, -1): 1 with a row, 0 when done, -1. */
int db_step_row(sqlite3 *db, sqlite3_stmt *s, struct crisp_error *err, const char *what);
/* Run constant SQL without results (BEGIN, PRAGMA ...). */
int db_exec(sqlite3 *db, const char *sql, struct crisp_error *err);

/* BEGIN IMMEDIATE: a write transaction, its lock taken up front. */
int db_begin(sqlite3 *db, struct crisp_error *err);
/* Commit if ret is 0, else roll back. Returns 0 only if committed. */
int db_end(sqlite3 *db, int ret, struct crisp_error *err);

/* A copy of a text column, NULL for NULL. */
char *db_col_strdup(sqlite3_stmt *s, int col);

#endif
