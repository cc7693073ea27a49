/* Long work off imaged's event loop: each job runs on a thread of its own
 * (unpacking a layer, hashing a blob) and its completion runs back on the
 * loop. Jobs are few and long, so a thread per job, bounded by a limit,
 * beats a pool in clarity. */
#ifndef CRISP_IMAGED_WORKER_H
#define CRISP_IMAGED_WORKER_H

#include <event2/event.h>

#include "common/error.h"

struct worker_job;

/* work() runs on a worker thread and must touch nothing the loop owns;
 * done() runs on the loop afterwards with work()'s error (code OK on
 * success). */
typedef void (*worker_fn)(void *arg, struct crisp_error *err);
typedef void (*worker_done_fn)(void *arg, const struct crisp_error *err);

int worker_init(struct event_base *base, unsigned max_threads, struct crisp_error *err);
/* Queue a job; it starts when a thread is free. */
void worker_submit(worker_fn work, worker_done_fn done, void *arg);
/* Start a job at once on a thread of its own, outside the limit: for rare
 * housekeeping (emptying the trash) that must neither wait behind long
 * unpacks nor take a thread from them. The caller bounds how many run. If
 * no thread can be started, done() runs before this returns, with the
 * error. */
void worker_start(worker_fn work, worker_done_fn done, void *arg);

#endif
