/* crispd: the supervisor. Runs as root, parses its configuration and nothing
 * from its children beyond exit statuses and health pongs (their log lines
 * it only relays, under their names: logrelay.c); holds the CRI socket;
 * starts, connects and restarts the frontend and the helpers. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "supervisor/listen.h"
#include "supervisor/logrelay.h"
#include "supervisor/proc.h"
#include "supervisor/systemd.h"

#define DEFAULT_CONFIG CRISP_SYSCONFDIR "/crisp/crisp.conf"

static struct {
	struct event_base *base;
	struct crisp_config cfg;
	const char *config_path;
	bool config_required;
	int cli_log_level; /* -1: from the config */
	bool activated;
	int listen_fd, socket_lock_fd, state_lock_fd;
} crispd = { .cli_log_level = -1, .listen_fd = -1, .socket_lock_fd = -1, .state_lock_fd = -1 };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: crispd [--config FILE] [--log-level LEVEL] [--print-config]\n"
		"\n"
		"  -c, --config FILE     read FILE instead of %s; drop-ins come from\n"
		"                        crisp.conf.d/ beside it\n"
		"  -l, --log-level LEVEL debug, info, notice, warning or error\n"
		"  -p, --print-config    print the effective configuration and exit\n"
		"  -V, --version         print the version and exit\n"
		"  -h, --help            this text\n",
		DEFAULT_CONFIG);
}

/* Defaults, then the main file, then its drop-ins, then the command line. */
static int load_config(struct crisp_config *cfg, struct crisp_error *err)
{
	_cleanup_free_ char *copy = xstrdup(crispd.config_path);
	_cleanup_free_ char *dropins = xasprintf("%s/crisp.conf.d", dirname(copy));

	config_init(cfg);
	if (config_load(cfg, crispd.config_path, crispd.config_required, dropins, err) < 0)
		return -1;
	if (crispd.cli_log_level >= 0)
		cfg->log_level = crispd.cli_log_level;
	return config_validate(cfg, err);
}

static void parse_args(int argc, char **argv, bool *print_config)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	crispd.config_path = DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:l:pVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			crispd.config_path = optarg;
			crispd.config_required = true;
			break;
		case 'l':
			crispd.cli_log_level = log_level_from_name(optarg);
			if (crispd.cli_log_level < LOG_ERR) {
				fprintf(stderr, "crispd: unknown log level '%s'\n", optarg);
				exit(2);
			}
			break;
		case 'p':
			*print_config = true;
			break;
		case 'V':
			printf("crispd %s\n", CRISP_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
}

/* Check what the children need before starting any: a wrong user, group or
 * helper directory is a configuration error, not a crash loop. crisp-launch
 * is among them: netd and runtimed cannot start without their launcher. */
static gid_t check_environment(const struct crisp_config *cfg)
{
	static const char *const helpers[] = { "crisp-frontend", "crisp-imaged", "crisp-netd",
					       "crisp-runtimed", "crisp-launch" };
	struct group *gr = getgrnam(cfg->socket_group);
	gid_t gid;

	if (!gr) {
		fprintf(stderr, "crispd: crispd.socket_group: group '%s' does not exist\n",
			cfg->socket_group);
		exit(2);
	}
	gid = gr->gr_gid; /* getpwnam below may reuse getgrnam's buffer */
	struct passwd *pw = getpwnam(cfg->frontend_user);

	if (!pw) {
		fprintf(stderr,
			"crispd: frontend.user: user '%s' does not exist "
			"(create it with scripts/create-user %s)\n",
			cfg->frontend_user, cfg->frontend_user);
		exit(2);
	}
	/* The frontend parses network input: it must never hold root. */
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		fprintf(stderr,
			"crispd: frontend.user: '%s' has uid %u gid %u; the frontend needs "
			"an unprivileged user and group\n",
			cfg->frontend_user, pw->pw_uid, pw->pw_gid);
		exit(2);
	}
	for (size_t i = 0; i < ARRAY_SIZE(helpers); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", cfg->helper_dir, helpers[i]);
		if (access(p, X_OK) < 0) {
			fprintf(stderr, "crispd: crispd.helper_dir: cannot execute %s: %s\n", p,
				strerror(errno));
			exit(2);
		}
	}
	return gid;
}

/* root_dir and state_dir, a private directory per helper, and the empty,
 * read-only directory the frontend chroots into. */
static void make_dirs(const struct crisp_config *cfg)
{
	static const char *const owned[] = { "imaged", "netd", "runtimed" };
	_cleanup_free_ char *empty = xasprintf("%s/empty", cfg->state_dir);
	int r;

	if ((r = mkdir_p(cfg->root_dir, 0711)) < 0 || (r = mkdir_p(cfg->state_dir, 0711)) < 0)
		fatal("cannot create %s or %s: %s", cfg->root_dir, cfg->state_dir, strerror(-r));
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++) {
		_cleanup_free_ char *d = xasprintf("%s/%s", cfg->root_dir, owned[i]);
		if ((r = mkdir_p(d, 0700)) < 0)
			fatal("cannot create %s: %s", d, strerror(-r));
	}
	/* Recreated each start: rmdir fails if anything was put in it. */
	if (rmdir(empty) < 0 && errno != ENOENT)
		fatal("%s must be an empty directory: %m", empty);
	if (mkdir(empty, 0555) < 0 || chown(empty, 0, 0) < 0 || chmod(empty, 0555) < 0)
		fatal("cannot create %s: %m", empty);
}

static void append_registry_item(const char *key, const char *value, void *arg)
{
	char **s = arg, *n;

	if (strncmp(key, "registry ", 9) != 0)
		return;
	n = xasprintf("%s%s=%s\n", *s ? *s : "", key, value);
	free(*s);
	*s = n;
}

/* Registry sections are read by imaged at its start only. */
static bool registries_differ(const struct crisp_config *a, const struct crisp_config *b)
{
	_cleanup_free_ char *sa = NULL, *sb = NULL;

	config_foreach(a, append_registry_item, &sa);
	config_foreach(b, append_registry_item, &sb);
	return !streq(sa ? sa : "", sb ? sb : "");
}

static void on_shutdown_done(void)
{
	event_base_loopbreak(crispd.base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct crisp_config cfg;
	struct crisp_error err;

	switch (sig) {
	case SIGCHLD:
		proc_reap();
		break;
	case SIGTERM:
	case SIGINT:
		log_notice("received SIG%s, stopping", sigabbrev_np(sig));
		systemd_notify("STOPPING=1");
		proc_shutdown(on_shutdown_done);
		break;
	case SIGHUP:
		if (load_config(&cfg, &err) < 0) {
			log_err("reload failed, keeping the running configuration: %s", err.msg);
			config_free(&cfg);
			break;
		}
		for (size_t i = 0; i < config_nkeys; i++) {
			const struct config_key *k = &config_keys[i];
			_cleanup_free_ char *old = config_get(&crispd.cfg, k);
			_cleanup_free_ char *new = config_get(&cfg, k);
			if (streq(old, new))
				continue;
			if (!k->reloadable) {
				log_warn("reload: %s.%s changed; restart crispd to apply it",
					 k->section, k->name);
				continue;
			}
			_cleanup_free_ char *key = xasprintf("%s.%s", k->section, k->name);
			config_set(&crispd.cfg, key, new, NULL);
			log_notice("reload: %s.%s = %s", k->section, k->name, new);
		}
		if (registries_differ(&crispd.cfg, &cfg))
			log_warn("reload: [registry] sections changed; restart crispd to apply "
				 "them");
		config_free(&cfg);
		log_set_level(crispd.cfg.log_level);
		proc_reload();
		break;
	}
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	struct crisp_error err;
	bool print_config = false;
	gid_t group;

	log_init("crispd", LOG_INFO);
	/* First, before anything can fork: no child may inherit NOTIFY_SOCKET. */
	systemd_notify_init();
	parse_args(argc, argv, &print_config);
	if (load_config(&crispd.cfg, &err) < 0) {
		fprintf(stderr, "crispd: %s\n", err.msg);
		return 2;
	}
	if (print_config) {
		config_print(&crispd.cfg, stdout);
		return 0;
	}
	log_set_level(crispd.cfg.log_level);
	if (geteuid() != 0) {
		fprintf(stderr, "crispd: must run as root\n");
		return 1;
	}
	group = check_environment(&crispd.cfg);
	umask(022);
	make_dirs(&crispd.cfg);
	{
		_cleanup_free_ char *lock = xasprintf("%s/crispd.lock", crispd.cfg.state_dir);
		crispd.state_lock_fd = lock_acquire(lock, &err);
		if (crispd.state_lock_fd < 0) {
			fprintf(stderr, "crispd: %s\n", err.msg);
			return 1;
		}
	}
	crispd.listen_fd = listen_setup(&crispd.cfg, group, &crispd.activated,
					&crispd.socket_lock_fd, &err);
	if (crispd.listen_fd < 0) {
		fprintf(stderr, "crispd: %s\n", err.msg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	crispd.base = event_base_new();
	if (!crispd.base)
		fatal("event_base_new failed");
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		event_add(evsignal_new(crispd.base, sigs[i], on_signal, NULL), NULL);

	logrelay_init(crispd.base);
	proc_init(crispd.base, &crispd.cfg, crispd.listen_fd);
	proc_start_all();
	log_notice("crispd %s started (pid %d)", CRISP_VERSION, (int)getpid());
	systemd_notify("READY=1");
	event_base_dispatch(crispd.base);
	/* The children's last lines (and their launchers') before crispd's. */
	logrelay_finish(1000);

	if (!crispd.activated)
		unlink(crispd.cfg.socket);
	log_notice("crispd stopped");
	return 0;
}
