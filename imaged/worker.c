#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/worker.h"

struct worker_job {
	TAILQ_ENTRY(worker_job) entry;
	worker_fn work;
	worker_done_fn done;
	void *arg;
	bool unbounded; /* started by worker_start: not in w.running */
	struct crisp_error err;
};

static struct {
	struct event_base *base;
	unsigned max, running;
	TAILQ_HEAD(, worker_job) queue;
	int pipe[2]; /* finished jobs, written by workers as pointers */
	struct event *ev;
} w = { .pipe = { -1, -1 } };

static void *worker_main(void *arg)
{
	struct worker_job *job = arg;

	err_clear(&job->err);
	job->work(job->arg, &job->err);
	/* A pointer is far below PIPE_BUF: the write is atomic. */
	if (write(w.pipe[1], &job, sizeof(job)) != sizeof(job))
		abort(); /* the loop would wait forever for this job */
	return NULL;
}

/* Detached: a thread still deleting or unpacking when imaged exits ends
 * with the process instead of holding up its exit. false (and done() has
 * run with the error, job freed) if no thread could be made. */
static bool start_thread(struct worker_job *job)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, worker_main, job);
	pthread_attr_destroy(&attr);
	if (r == 0)
		return true;
	err_set_errno(&job->err, CRISP_E_RESOURCE, r, "cannot start a worker thread");
	job->done(job->arg, &job->err);
	free(job);
	return false;
}

static void start_queued(void)
{
	struct worker_job *job;

	while (w.running < w.max && (job = TAILQ_FIRST(&w.queue))) {
		TAILQ_REMOVE(&w.queue, job, entry);
		if (start_thread(job))
			w.running++;
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct worker_job *job;

	while (read(w.pipe[0], &job, sizeof(job)) == sizeof(job)) {
		if (!job->unbounded)
			w.running--;
		job->done(job->arg, &job->err);
		free(job);
	}
	start_queued();
}

int worker_init(struct event_base *base, unsigned max_threads, struct crisp_error *err)
{
	if (pipe2(w.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "worker pipe");
	w.base = base;
	w.max = max_threads ? max_threads : 1;
	TAILQ_INIT(&w.queue);
	w.ev = event_new(base, w.pipe[0], EV_READ | EV_PERSIST, on_done, NULL);
	event_add(w.ev, NULL);
	return 0;
}

void worker_submit(worker_fn work, worker_done_fn done, void *arg)
{
	struct worker_job *job = xcalloc(1, sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	TAILQ_INSERT_TAIL(&w.queue, job, entry);
	start_queued();
}

void worker_start(worker_fn work, worker_done_fn done, void *arg)
{
	struct worker_job *job = xcalloc(1, sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	job->unbounded = true;
	start_thread(job);
}
