/* Which failure of SQLite was for want of space: imaged's store and
 * runtimed's state database both tell the operator what to free. */
#ifndef CRISP_COMMON_SQLITE_SPACE_H
#define CRISP_COMMON_SQLITE_SPACE_H

#include <errno.h>
#include <sqlite3.h>

/* ENOSPC or EDQUOT when db's last error was for want of space, else 0.
 * SQLite's unix VFS turns a write that ENOSPC or EDQUOT cut short into
 * SQLITE_FULL ("database or disk is full") and keeps no errno for it: with
 * no max_page_count set, SQLITE_FULL means a full disk. A truncate or sync
 * that fails so is an SQLITE_IOERR with its errno. */
static inline int sqlite_space_errno(sqlite3 *db)
{
	int rc = sqlite3_errcode(db) & 0xff, e = sqlite3_system_errno(db);

	if (rc == SQLITE_FULL)
		return e == EDQUOT ? EDQUOT : ENOSPC;
	return rc == SQLITE_IOERR && (e == ENOSPC || e == EDQUOT) ? e : 0;
}

#endif
