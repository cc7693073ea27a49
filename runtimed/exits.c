/* Exits, as the monitors record them: <root_dir>/runtimed/exits/<id>.json,
 * written atomically (rename) when a container's init (or a sandbox's
 * pause) has exited and its output is drained (monitor.h). The directory is
 * watched with inotify; a file is read bounded and checked field by field,
 * since a monitor runs next to a container and its output is not trusted
 * further than its format. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "runtimed/runtimed.h"

static int inotify_fd = -1;
static struct event *inotify_ev;

int exits_check(const char *id)
{
	_cleanup_free_ char *path = xasprintf("%s/%s.json", rt.exits_dir, id);
	struct crisp_error err = { 0 };
	_cleanup_free_ char *data = read_file(path, RT_EXIT_FILE_MAX, NULL, &err);
	struct ctr *c = ctr_find(id);
	struct pod *p = c ? NULL : pod_find(id);
	json_t *o, *code, *fin, *oom;
	int exit_code = 255;
	int64_t finished_at = now_ns();
	const char *reason = "Unknown";
	char message[128] = "";

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
	else if (unlink(path) < 0 && errno != ENOENT)
		/* Nothing owns it (removed meanwhile): it must not pile up. */
		log_warn("removing %s: %s", path, strerror(errno));
	return 1;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			char id[ID_LEN + 1];

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: look at every live record. */
				for (struct ctr *c = rt.ctrs; c; c = c->next)
					exits_check(c->id);
				for (struct pod *q = rt.pods; q; q = q->next)
					exits_check(q->id);
				continue;
			}
			if (!ev->len || strnlen(ev->name, ev->len) != ID_LEN + 5 ||
			    strcmp(ev->name + ID_LEN, ".json") != 0)
				continue;
			memcpy(id, ev->name, ID_LEN);
			id[ID_LEN] = '\0';
			if (id_valid(id))
				exits_check(id);
		}
	}
}

int exits_watch(struct crisp_error *err)
{
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "inotify");
	if (inotify_add_watch(inotify_fd, rt.exits_dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "watching %s", rt.exits_dir);
	inotify_ev = event_new(child_base(), inotify_fd, EV_READ | EV_PERSIST, on_inotify, NULL);
	event_add(inotify_ev, NULL);
	return 0;
}
