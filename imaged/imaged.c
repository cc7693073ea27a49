/* crisp-imaged: images. Started by crispd; pulls images from registries into
 * its content store, unpacks their layers into snapshots (each in a
 * crisp-unpack child, imaged/unpack_client.c), and answers the
 * frontend's image requests. Start-up opens everything under its own
 * directory while it still may, undoes what a crash interrupted, then drops
 * to its sandbox (imaged/sandbox.c) before it serves anything. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "imaged/content.h"
#include "imaged/imaged.h"
#include "imaged/registry.h"
#include "imaged/store.h"
#include "imaged/trash.h"
#include "imaged/worker.h"

/* Partial downloads older than this are given up (a resumed pull finds the
 * recent ones). */
#define INGEST_MAX_AGE_S (24 * 3600)
#define UNPACK_THREADS 2

struct imaged_ctx imaged = { .root_fd = -1, .snap_fd = -1, .import_fd = -1 };

/* "a, b c" -> { "a", "b", "c", NULL }; the strings live in *ret_buf. */
static const char **split_urls(const char *list, char **ret_buf)
{
	const char **v = xcalloc(strlen(list) / 2 + 2, sizeof(*v));
	char *save = NULL;
	size_t n = 0;

	*ret_buf = xstrdup(list);
	for (char *u = strtok_r(*ret_buf, ", ", &save); u; u = strtok_r(NULL, ", ", &save))
		v[n++] = u;
	return v;
}

/* The [registry "HOST"] sections of the configuration. Hosts without one:
 * HTTPS with the system's CAs, except loopback registries, which speak
 * plain HTTP as Docker and containerd treat 127.0.0.0/8 and localhost. */
static struct registry *make_registry(const struct crisp_config *cfg, struct crisp_error *err)
{
	struct registry_host *hosts = xcalloc(cfg->n_registries + 1, sizeof(*hosts));
	const char ***mirrors = xcalloc(cfg->n_registries + 1, sizeof(*mirrors));
	char **bufs = xcalloc(cfg->n_registries + 1, sizeof(*bufs));
	struct registry_options opt;
	struct registry *reg;

	registry_options_init(&opt);
	opt.user_agent = "crisp/" CRISP_VERSION;
	opt.max_transfers = cfg->max_concurrent_downloads;
	opt.low_speed_timeout = cfg->pull_progress_timeout;
	for (size_t i = 0; i < cfg->n_registries; i++) {
		const struct registry_conf *r = &cfg->registries[i];
		hosts[i].host = r->host;
		hosts[i].plain_http = r->plain_http;
		hosts[i].insecure_skip_verify = r->insecure_skip_verify;
		hosts[i].ca_file = r->ca_file;
		if (r->mirrors)
			hosts[i].mirrors = mirrors[i] = split_urls(r->mirrors, &bufs[i]);
	}
	opt.hosts = hosts;
	opt.nhosts = cfg->n_registries;
	/* registry_new copies what it keeps. */
	reg = registry_new(imaged.base, &opt, err);
	for (size_t i = 0; i < cfg->n_registries; i++) {
		free(mirrors[i]);
		free(bufs[i]);
	}
	free(mirrors);
	free(bufs);
	free(hosts);
	return reg;
}

static void setup(const struct crisp_config *cfg)
{
	_cleanup_free_ char *home = xasprintf("%s/imaged", cfg->root_dir);
	_cleanup_free_ char *db = xasprintf("%s/metadata.db", home);
	struct crisp_error err;

	imaged.cfg = cfg;
	imaged.base = child_base();
	imaged.root_fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (imaged.root_fd < 0)
		fatal("cannot open %s: %m", home);
	imaged.snap_fd = mkdir_openat(imaged.root_fd, "snapshots", 0700);
	if (imaged.snap_fd < 0)
		fatal("cannot open %s/snapshots: %s", home, strerror(-imaged.snap_fd));
	/* Root's spool for crisp-import: whoever can write here may import, so
	 * it must stay root's alone, whatever mode it was found with. */
	imaged.import_fd = mkdir_openat(imaged.root_fd, "import", 0700);
	if (imaged.import_fd < 0)
		fatal("cannot open %s/import: %s", home, strerror(-imaged.import_fd));
	if (fchown(imaged.import_fd, 0, 0) < 0 || fchmod(imaged.import_fd, 0700) < 0)
		fatal("cannot make %s/import root's only: %m", home);
	imaged.store = store_open(db, &err);
	if (!imaged.store)
		fatal("%s", err.msg);
	imaged.content = content_open(imaged.root_fd, &err);
	if (!imaged.content)
		fatal("%s", err.msg);
	/* What is removed goes through trash/ (imaged/trash.h): before
	 * anything below removes something. */
	if (trash_open(imaged.root_fd, &err) < 0)
		fatal("%s/trash: %s", home, err.msg);
	if (worker_init(imaged.base, UNPACK_THREADS, &err) < 0)
		fatal("%s", err.msg);
	imaged.registry = make_registry(cfg, &err);
	if (!imaged.registry)
		fatal("%s", err.msg);
	snapshot_recover();
	import_spool_gc();
	if (content_ingest_gc(imaged.content, INGEST_MAX_AGE_S, &err) < 0)
		log_warn("%s", err.msg);
}

#ifdef CRISP_TEST_HOOKS
/* The other way to signal: a socket owned (F_SETOWN) by the target, with
 * SIGKILL as its I/O signal (F_SETSIG), made ready. The kernel lets an
 * owner of euid 0 signal any process so; every crisp filter refuses
 * F_SETOWN (EPERM), and Landlock's scope would drop the signal too. */
static void sigio_kill(uint64_t pid)
{
	int sv[2];
	int flags;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_notice("test hook: socketpair: %m");
		return;
	}
	flags = fcntl(sv[0], F_GETFL);
	if (fcntl(sv[0], F_SETOWN, (int)pid) < 0 || fcntl(sv[0], F_SETSIG, SIGKILL) < 0 ||
	    flags < 0 || fcntl(sv[0], F_SETFL, flags | O_ASYNC) < 0)
		log_notice("test hook: F_SETOWN %llu refused: errno %d (%m)",
			   (unsigned long long)pid, errno);
	else if (write(sv[1], "x", 1) != 1)
		log_notice("test hook: write: %m");
	else
		log_notice("test hook: SIGKILL to pid %llu through F_SETOWN armed",
			   (unsigned long long)pid);
	close(sv[0]);
	close(sv[1]);
}

/* Test hook: SIGUSR1 makes imaged SIGKILL the process whose pid the test
 * wrote in <root_dir>/imaged/test-signal-pid ("<pid>": through a pidfd of
 * its /proc entry; "sigio <pid>": through F_SETOWN): what a subverted imaged
 * would try on crispd or a container's process. The seccomp filter lets
 * both through (pidfd_send_signal with SIGKILL is there for crisp-fetch);
 * Landlock's signal scope must stop them for anything but crisp-fetch. */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	char buf[32], path[64];
	_cleanup_close_ int fd = -1, pidfd = -1;
	const char *num = buf;
	uint64_t pid;
	ssize_t n;

	fd = openat(imaged.root_fd, "test-signal-pid", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) < 0) {
		log_notice("test hook: cannot read test-signal-pid: %m");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (strncmp(buf, "sigio ", 6) == 0)
		num = buf + 6;
	if (parse_uint64(num, 10, INT_MAX, &pid) < 0 || pid == 0) {
		log_notice("test hook: test-signal-pid holds no pid: '%s'", buf);
		return;
	}
	if (num != buf) {
		sigio_kill(pid);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%llu", (unsigned long long)pid);
	pidfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pidfd < 0) {
		log_notice("test hook: cannot open %s: %m", path);
		return;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
		log_notice("test hook: SIGKILL to pid %llu refused: errno %d (%m)",
			   (unsigned long long)pid, errno);
	else
		log_notice("test hook: SIGKILL to pid %llu sent", (unsigned long long)pid);
}
#endif

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	scmp_filter_ctx filter;

	if (reload)
		return;
	/* Mounting takes privileges the sandbox drops: probe first. */
	imaged.snapshotter = cfg->snapshotter;
	if (imaged.snapshotter == SNAPSHOTTER_AUTO) {
		_cleanup_free_ char *home = xasprintf("%s/imaged", cfg->root_dir);
		imaged.snapshotter = snapshot_overlay_works(home) ? SNAPSHOTTER_OVERLAYFS
								  : SNAPSHOTTER_COPY;
	}
	log_info("container snapshots: %s%s",
		 imaged.snapshotter == SNAPSHOTTER_COPY ? "copy" : "overlayfs",
		 cfg->snapshotter == SNAPSHOTTER_AUTO ? " (auto)" : "");
	/* The registry client runs in crisp-fetch, started on demand from
	 * this fd: opened while the whole host is still in sight. */
	fetch_program_open(cfg);
	/* Layers are unpacked by crisp-unpack, one child per layer. */
	unpack_program_open(cfg);
	filter = imaged_sandbox_enter(cfg);
	setup(cfg);
	imaged_sandbox_lock(filter);
	/* What a crash left unreferenced goes now, not at the first removal. */
	images_gc();
	/* What an earlier run (or the recovery above) left in the trash, on
	 * a worker: readiness does not wait for it. Only now, so that the
	 * worker thread starts inside the locked sandbox. */
	trash_empty();
#ifdef CRISP_TEST_HOOKS
	event_add(evsignal_new(imaged.base, SIGUSR1, on_sigusr1, NULL), NULL);
#endif
	log_info("ready");
}

int main(void)
{
	static struct child_ops ops = {
		.name = "imaged",
		.on_config = on_config,
		.frontend_version = IPC_IMAGED_VERSION,
		.snapshot_key = true,
	};

	ops.frontend_handlers = imaged_frontend_handlers;
	ops.n_frontend_handlers = imaged_n_frontend_handlers;
	return child_main("crisp-imaged", &ops);
}
