/* What store.c (images) and store_snapshot.c (snapshots, garbage
 * collection) share; not for other users of the store. */
#ifndef CRISP_IMAGED_STORE_INT_H
#define CRISP_IMAGED_STORE_INT_H

#include <pthread.h>
#include <time.h>

#include <sqlite3.h>

#include "imaged/store.h"

struct store {
	sqlite3 *db;
	/* One connection shared by threads: the lock makes every store call
	 * (and its transaction) atomic with respect to the others. Statements
	 * are declared after LOCKED() so that they are finalized before the
	 * lock is released. */
	pthread_mutex_t lock;
};

static inline struct store *store_lock(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	return st;
}

static inline void store_unlockp(struct store **st)
{
	if (*st)
		pthread_mutex_unlock(&(*st)->lock);
}

#define LOCKED(st) _cleanup_(store_unlockp) struct store *_locked_ _unused_ = store_lock(st)

static inline int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -1 after a failed update r, CRISP_E_NOT_FOUND if it changed no row. */
static inline int store_update_one(struct store *st, const char *what, const char *key, int r,
				   struct crisp_error *err)
{
	if (r < 0)
		return -1;
	if (sqlite3_changes(st->db) == 0)
		return err_set(err, CRISP_E_NOT_FOUND, "%s %s does not exist", what, key);
	return 0;
}

#endif
