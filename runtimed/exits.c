/* Exits, as the monitors record them: <root_dir>/runtimed/exits/<id>/exit.json,
 * written atomically (rename) when a container's init (or a sandbox's
 * pause) has exited and its output is drained (monitor.h). Each id has a
 * directory of its own, made here before its monitor is launched: the
 * monitor's Landlock rule covers that directory only, so a monitor taken
 * over by its container cannot forge or remove another's record. Each
 * directory is watched with inotify (a watch descriptor → id map, one entry
 * per record's directory); a file is read bounded and checked field by
 * field, since a monitor runs next to a container and its output is not
 * trusted further than its format.
 *
 * The flat <exits>/<id>.json is read for monitors of an older crisp only:
 * those of containers started before an upgrade keep running and write
 * there. <exits>/ itself stays watched for them. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "runtimed/runtimed.h"

#define EXIT_FILE_NAME "exit.json"
#define EXIT_WATCH_MASK (IN_MOVED_TO | IN_CLOSE_WRITE)

static int inotify_fd = -1;
static struct event *inotify_ev;

/* The per-id directories watched: one entry per directory made or found
 * for a record, dropped when it is removed (or its watch goes, IN_IGNORED). */
struct exit_watch {
	int wd;
	char id[ID_LEN + 1];
};
static struct exit_watch *watches;
static size_t nwatches, watches_cap;

char *exit_dir_path(const char *id)
{
	return xasprintf("%s/%s", rt.exits_dir, id);
}

char *exit_file_path(const char *id)
{
	return xasprintf("%s/%s/" EXIT_FILE_NAME, rt.exits_dir, id);
}

static struct exit_watch *watch_by_wd(int wd)
{
	for (size_t i = 0; i < nwatches; i++)
		if (watches[i].wd == wd)
			return &watches[i];
	return NULL;
}

static struct exit_watch *watch_by_id(const char *id)
{
	for (size_t i = 0; i < nwatches; i++)
		if (streq(watches[i].id, id))
			return &watches[i];
	return NULL;
}

static void watch_drop(struct exit_watch *w)
{
	*w = watches[--nwatches];
}

/* Watch <exits>/<id>/ if it is there: 0 (watched, or no directory), or
 * -errno. Adding a watch twice gives the same descriptor: one entry. */
static int watch_add(const char *id)
{
	_cleanup_free_ char *dir = exit_dir_path(id);
	struct exit_watch *w;
	int wd;

	if (inotify_fd < 0)
		return 0;
	wd = inotify_add_watch(inotify_fd, dir, EXIT_WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0)
		return errno == ENOENT ? 0 : -errno;
	if ((w = watch_by_wd(wd)) || (w = watch_by_id(id))) {
		w->wd = wd;
		snprintf(w->id, sizeof(w->id), "%s", id);
		return 0;
	}
	if (nwatches == watches_cap) {
		watches_cap = watches_cap ? 2 * watches_cap : 64;
		watches = xrealloc(watches, watches_cap * sizeof(*watches));
	}
	w = &watches[nwatches++];
	w->wd = wd;
	snprintf(w->id, sizeof(w->id), "%s", id);
	return 0;
}

void exit_dir_watch(const char *id)
{
	int r = watch_add(id);

	if (r < 0)
		log_warn("watching the exit directory of %.12s: %s", id, strerror(-r));
}

int exit_dir_make(const char *id, struct crisp_error *err)
{
	_cleanup_free_ char *dir = exit_dir_path(id);
	struct stat st;
	int r;

	/* Idempotent: a retried create or start finds it made. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "making %s", dir);
	if (lstat(dir, &st) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, CRISP_E_INTERNAL, "%s is not a directory", dir);
	/* unwatched, its exit would go unseen until a stop or a restart */
	if ((r = watch_add(id)) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, -r, "watching %s%s", dir,
				     r == -ENOSPC ? " (fs.inotify.max_user_watches reached)" : "");
	return 0;
}

void exit_dir_remove(const char *id)
{
	_cleanup_free_ char *dir = exit_dir_path(id);
	_cleanup_free_ char *flat = xasprintf("%s/%s.json", rt.exits_dir, id);
	struct exit_watch *w = watch_by_id(id);
	int r;

	if (w) {
		if (inotify_rm_watch(inotify_fd, w->wd) < 0 && errno != EINVAL)
			log_warn("unwatching %s: %s", dir, strerror(errno));
		watch_drop(w);
	}
	/* whatever the monitor left there: it may create regular files in
	 * it, nothing else (its Landlock rule) */
	if ((r = rm_rf(dir)) < 0)
		log_warn("removing %s: %s", dir, strerror(-r));
	if (unlink(flat) < 0 && errno != ENOENT)
		log_warn("removing %s: %s", flat, strerror(errno));
}

/* The record at path, read bounded: NULL and err NOT_FOUND if absent. */
static char *exit_read(const char *path, struct crisp_error *err)
{
	return read_file(path, RT_EXIT_FILE_MAX, NULL, err);
}

int exits_check(const char *id)
{
	_cleanup_free_ char *path = exit_file_path(id);
	struct crisp_error err = { 0 };
	_cleanup_free_ char *data = exit_read(path, &err);
	struct ctr *c = ctr_find(id);
	struct pod *p = c ? NULL : pod_find(id);
	json_t *o, *code, *fin, *oom;
	int exit_code = 255;
	int64_t finished_at = now_ns();
	const char *reason = "Unknown";
	char message[128] = "";

	if (!data && err.code == CRISP_E_NOT_FOUND) {
		/* the flat layout, of a monitor of an older crisp only */
		free(path);
		path = xasprintf("%s/%s.json", rt.exits_dir, id);
		err = (struct crisp_error){ 0 };
		data = exit_read(path, &err);
	}
	if (!data) {
		if (err.code == CRISP_E_NOT_FOUND)
			return 0;
		log_warn("exit file of %.12s: %s", id, err.msg);
		snprintf(message, sizeof(message), "exit file unreadable");
	} else {
		o = json_loads(data, JSON_REJECT_DUPLICATES, NULL);
		code = json_object_get(o, "exit_code");
		fin = json_object_get(o, "finished_at");
		oom = json_object_get(o, "oom_killed");
		if (!json_is_object(o) || !json_is_integer(code) || json_integer_value(code) < 0 ||
		    json_integer_value(code) > 255 || !json_is_integer(fin) ||
		    json_integer_value(fin) <= 0 || (oom && !json_is_boolean(oom))) {
			log_warn("exit file of %.12s is malformed", id);
			snprintf(message, sizeof(message), "exit file malformed");
		} else {
			json_t *dropped = json_object_get(o, "log_dropped");

			/* The monitor never waits for the log: what it could
			 * not write is gone, and only this count says so. */
			if (c && json_is_integer(dropped) && json_integer_value(dropped) > 0)
				log_warn("container %.12s: %" JSON_INTEGER_FORMAT " log records "
					 "were lost: its log file could not be written (disk "
					 "full?)",
					 id, json_integer_value(dropped));
			exit_code = (int)json_integer_value(code);
			finished_at = json_integer_value(fin);
			reason = json_is_true(oom) ? "OOMKilled"
				 : exit_code == 0  ? "Completed"
						   : "Error";
		}
		json_decref(o);
	}
	if (c)
		ctr_exited(c, exit_code, finished_at, reason, message);
	else if (p)
		pod_exited(p, reason);
	else
		/* Nothing owns it (removed meanwhile): it must not pile up. */
		exit_dir_remove(id);
	return 1;
}

/* An event on <exits>/ (wd of no per-id directory): a flat <id>.json. */
static void on_flat_event(const struct inotify_event *ev)
{
	char id[ID_LEN + 1];

	if (!ev->len || strnlen(ev->name, ev->len) != ID_LEN + 5 ||
	    strcmp(ev->name + ID_LEN, ".json") != 0)
		return;
	memcpy(id, ev->name, ID_LEN);
	id[ID_LEN] = '\0';
	if (id_valid(id))
		exits_check(id);
}

static void on_event(const struct inotify_event *ev)
{
	struct exit_watch *w;
	char id[ID_LEN + 1];

	if (ev->mask & IN_Q_OVERFLOW) {
		/* Events were lost: look at every live record. */
		for (struct ctr *c = rt.ctrs; c; c = c->next)
			exits_check(c->id);
		for (struct pod *q = rt.pods; q; q = q->next)
			exits_check(q->id);
		return;
	}
	w = watch_by_wd(ev->wd);
	if (!w)
		return on_flat_event(ev);
	if (ev->mask & IN_IGNORED) {
		/* its directory went. (exit_dir_remove drops the entry when it
		 * removes the watch itself; the kernel hands out descriptors
		 * cyclically, so that late IN_IGNORED meets no new entry.) */
		watch_drop(w);
		return;
	}
	if (!ev->len || strnlen(ev->name, ev->len) >= ev->len || !streq(ev->name, EXIT_FILE_NAME))
		return;
	/* exits_check may remove the directory, and so the entry */
	snprintf(id, sizeof(id), "%s", w->id);
	exits_check(id);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			on_event(ev);
		}
	}
}

int exits_watch(struct crisp_error *err)
{
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "inotify");
	if (inotify_add_watch(inotify_fd, rt.exits_dir, EXIT_WATCH_MASK) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "watching %s", rt.exits_dir);
	inotify_ev = event_new(child_base(), inotify_fd, EV_READ | EV_PERSIST, on_inotify, NULL);
	event_add(inotify_ev, NULL);
	return 0;
}
