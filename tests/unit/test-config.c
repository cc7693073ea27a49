/* Unit tests of common/config.c: built-in defaults, crisp.conf plus
 * crisp.conf.d/ in lexical order, errors that name file:line and key, the
 * validators of each value type, config_set() as the children use it, and
 * config_print() output that parses back to the same configuration. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/capability.h>

#include "common/config.h"
#include "common/log.h"
#include "tests/unit/tap.h"

static char tmpdir[] = "/tmp/crisp-test-config.XXXXXX";

static char *write_file(const char *name, const char *content)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "we");

	if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
		diag("cannot write %s: %s", path, strerror(errno));
		exit(99); /* a hard error for the TAP driver, not a test failure */
	}
	return path;
}

/* Load content as a required main file into a default configuration. */
static int load_str(struct crisp_config *cfg, const char *content, struct crisp_error *err,
		    char **ret_path)
{
	char *path = write_file("main.conf", content);
	int r;

	config_init(cfg);
	err_clear(err);
	r = config_load(cfg, path, true, NULL, err);
	if (ret_path)
		*ret_path = path;
	else
		free(path);
	return r;
}

static void test_defaults(void)
{
	struct crisp_config cfg;
	bool all = true;

	config_init(&cfg);
	is_str(cfg.socket, "/run/crisp/crisp.sock", "default socket");
	is_int(cfg.socket_mode, 0660, "default socket_mode");
	is_str(cfg.socket_group, "root", "default socket_group");
	is_str(cfg.root_dir, "/var/lib/crisp", "default root_dir");
	is_str(cfg.state_dir, "/run/crisp", "default state_dir");
	is_str(cfg.helper_dir, CRISP_HELPER_DIR,
	       "default helper_dir is the configured libexec dir");
	is_int(cfg.log_level, LOG_INFO, "default log_level");
	is_int(cfg.health_interval, 5, "default health_interval");
	is_int(cfg.restart_backoff_max, 30, "default restart_backoff_max");
	is_int(cfg.crash_loop_limit, 5, "default crash_loop_limit");
	is_str(cfg.frontend_user, "crisp", "default frontend.user");
	is_int(cfg.ipc_timeout, 120, "default frontend.ipc_timeout");
	is_int(cfg.cgroup_driver, CGROUP_DRIVER_CGROUPFS, "default cgroup_driver");
	is_str(cfg.default_runtime, "runc", "default default_runtime");
	is_int(cfg.restrict_oom_score_adj, TRI_AUTO, "default restrict_oom_score_adj");
	is_str(cfg.cni_conf_dir, "/etc/cni/net.d", "default cni.conf_dir");
	is_str(cfg.cni_bin_dirs, "/usr/lib/cni:/opt/cni/bin", "default cni.bin_dirs");
	for (size_t i = 0; i < config_nkeys; i++) {
		char *v = config_get(&cfg, &config_keys[i]);
		if (!streq(v, config_keys[i].def)) {
			diag("%s.%s reads back as '%s', default '%s'", config_keys[i].section,
			     config_keys[i].name, v, config_keys[i].def);
			all = false;
		}
		free(v);
	}
	ok(all, "every default reads back in file syntax as written in the key table");
	config_free(&cfg);
	ok(cfg.socket == NULL && cfg.cni_bin_dirs == NULL, "config_free clears the strings");
	config_free(&cfg);
	ok(1, "config_free twice is harmless");
}

static void test_load_order(void)
{
	struct crisp_config cfg;
	struct crisp_error err;
	char *main_path, *dropin = xasprintf("%s/crisp.conf.d", tmpdir);

	if (mkdir(dropin, 0755) < 0)
		exit(99);
	main_path = write_file("crisp.conf", "; the main file\n"
					     "[crispd]\n"
					     "log_level = debug\n"
					     "health_interval = 10 ; inline comment\n"
					     "socket   =   /run/a.sock  \n"
					     "socket_group = main\n"
					     "[runtime]\n"
					     "cgroup_driver = systemd\n"
					     "default_runtime = main\n");
	/* Written in an order that is neither lexical nor reverse lexical, so
	 * a readdir order cannot pass by luck. */
	free(write_file("crisp.conf.d/20-b.conf", "[crispd]\nhealth_interval = 30\n"));
	free(write_file("crisp.conf.d/05-z.conf",
			"[crispd]\nsocket_group = z\ncrash_loop_limit = 7\n"));
	free(write_file("crisp.conf.d/9-late.conf", "[runtime]\ndefault_runtime = crun\n"));
	free(write_file("crisp.conf.d/10-a.conf",
			"[crispd]\nhealth_interval = 20\nsocket_group = a\n"
			"[runtime]\ndefault_runtime = a\n"));
	/* not *.conf, or hidden: never read (they would fail to parse) */
	free(write_file("crisp.conf.d/99-junk.txt", "garbage\n"));
	free(write_file("crisp.conf.d/.99-hidden.conf", "garbage\n"));
	free(write_file("crisp.conf.d/99-backup.conf~", "garbage\n"));

	config_init(&cfg);
	err_clear(&err);
	if (!is_int(config_load(&cfg, main_path, true, dropin, &err), 0,
		    "main file + drop-ins load"))
		diag("error: %s", err.msg);
	is_int(cfg.log_level, LOG_DEBUG, "a value only the main file sets is kept");
	is_str(cfg.socket, "/run/a.sock", "whitespace around '=' and after values is ignored");
	is_int(cfg.cgroup_driver, CGROUP_DRIVER_SYSTEMD, "main file sets cgroup_driver");
	is_int(cfg.health_interval, 30, "the lexically last drop-in wins (20-b over 10-a)");
	is_str(cfg.socket_group, "a", "a later drop-in overrides an earlier one (10-a over 05-z)");
	is_int(cfg.crash_loop_limit, 7, "a value only an early drop-in sets is kept");
	is_str(cfg.default_runtime, "crun", "order is lexical, not numeric (9-late after 10-a)");
	is_str(cfg.root_dir, "/var/lib/crisp", "keys no file names keep their default");
	config_free(&cfg);

	/* Drop-ins alone, main missing. */
	config_init(&cfg);
	is_int(config_load(&cfg, "/nonexistent/crisp.conf", false, dropin, &err), 0,
	       "a missing main file is fine when not required");
	is_int(cfg.health_interval, 30, "drop-ins still apply without a main file");
	config_free(&cfg);

	config_init(&cfg);
	err_clear(&err);
	is_int(config_load(&cfg, "/nonexistent/crisp.conf", true, dropin, &err), -1,
	       "a missing main file fails when required");
	like(err.msg, "/nonexistent/crisp.conf", "the error names the missing file");
	like(err.msg, strerror(ENOENT), "the error says why");
	is_int(cfg.health_interval, 5, "nothing is applied when the main file is missing");
	config_free(&cfg);

	config_init(&cfg);
	is_int(config_load(&cfg, NULL, false, "/nonexistent/crisp.conf.d", &err), 0,
	       "a missing drop-in directory is fine");
	config_free(&cfg);

	/* A broken drop-in is reported with its own name. */
	free(write_file("crisp.conf.d/15-bad.conf", "[crispd]\n\nhealth_interval = 0\n"));
	config_init(&cfg);
	err_clear(&err);
	is_int(config_load(&cfg, main_path, true, dropin, &err), -1,
	       "a broken drop-in fails the load");
	like(err.msg, "crisp.conf.d/15-bad.conf:3:", "the error names the drop-in and the line");
	like(err.msg, "health_interval", "the error names the key");
	config_free(&cfg);

	free(main_path);
	free(dropin);
}

struct bad_case {
	const char *what;
	const char *content; /* the bad line is always line 3 */
	const char *key;     /* must appear in the message */
	const char *detail;  /* must appear in the message */
};

static void test_errors(void)
{
	static const struct bad_case cases[] = {
		{ "unknown key", "[crispd]\n# comment\nbogus = 1\n", "bogus", "unknown key" },
		{ "unknown section", "[crispd]\n[nosuch]\nsocket = /x\n", "socket", "[nosuch]" },
		{ "key outside a section", "# comment\n\nsocket = /x\n[crispd]\n", "socket",
		  "outside of any [section]" },
		{ "relative path", "[crispd]\n\nroot_dir = var/lib/crisp\n", "crispd.root_dir",
		  "'var/lib/crisp' is not an absolute path" },
		{ "path with ..", "[crispd]\n\nroot_dir = /var/../etc\n", "crispd.root_dir",
		  "not an absolute path" },
		{ "path ending in ..", "[cni]\n\nconf_dir = /etc/..\n", "cni.conf_dir",
		  "not an absolute path" },
		{ "path with a colon", "[crispd]\n\nstate_dir = /run:x\n", "crispd.state_dir",
		  "not an absolute path" },
		{ "relative entry in a path list", "[cni]\n\nbin_dirs = /opt/cni/bin:bin\n",
		  "cni.bin_dirs", "'bin' is not an absolute path" },
		{ "path list without paths", "[cni]\n\nbin_dirs = :\n", "cni.bin_dirs",
		  "empty path list" },
		{ "number below range", "[crispd]\n\nhealth_interval = 0\n",
		  "crispd.health_interval", "'0' is not a number from 1 to 3600" },
		{ "number above range", "[crispd]\n\nhealth_interval = 3601\n",
		  "crispd.health_interval", "from 1 to 3600" },
		{ "number overflowing 64 bits",
		  "[frontend]\n\nipc_timeout = 99999999999999999999999\n", "frontend.ipc_timeout",
		  "not a number" },
		{ "negative number", "[crispd]\n\ncrash_loop_limit = -1\n",
		  "crispd.crash_loop_limit", "not a number" },
		{ "number with junk", "[crispd]\n\ncrash_loop_limit = 5x\n",
		  "crispd.crash_loop_limit", "not a number" },
		{ "hex number", "[crispd]\n\ncrash_loop_limit = 0x5\n", "crispd.crash_loop_limit",
		  "not a number" },
		{ "mode without leading 0", "[crispd]\n\nsocket_mode = 660\n", "crispd.socket_mode",
		  "not an octal mode" },
		{ "mode with a non-octal digit", "[crispd]\n\nsocket_mode = 0689\n",
		  "crispd.socket_mode", "not an octal mode" },
		{ "mode above 07777", "[crispd]\n\nsocket_mode = 017777\n", "crispd.socket_mode",
		  "not an octal mode" },
		{ "bad log level", "[crispd]\n\nlog_level = verbose\n", "crispd.log_level",
		  "not a log level" },
		{ "log level above error", "[crispd]\n\nlog_level = crit\n", "crispd.log_level",
		  "not a log level" },
		{ "bad cgroup driver", "[runtime]\n\ncgroup_driver = cgroupv3\n",
		  "runtime.cgroup_driver", "not cgroupfs or systemd" },
		{ "bad tristate", "[runtime]\n\nrestrict_oom_score_adj = maybe\n",
		  "runtime.restrict_oom_score_adj", "not auto, on or off" },
		{ "empty string", "[crispd]\n\nsocket_group =\n", "crispd.socket_group", "empty" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct bad_case *c = &cases[i];
		struct crisp_config cfg;
		struct crisp_error err;
		char *path, *want_loc;
		int r = load_str(&cfg, c->content, &err, &path);

		want_loc = xasprintf("%s:3: ", path);
		if (!is_int(r, -1, "%s is rejected", c->what)) {
			config_free(&cfg);
			free(path);
			free(want_loc);
			continue;
		}
		is_int(err.code, CRISP_E_INVALID, "%s: code invalid", c->what);
		if (!ok(strncmp(err.msg, want_loc, strlen(want_loc)) == 0,
			"%s: message starts with file:line", c->what))
			diag("  got: '%s'\n  expected to start with '%s'", err.msg, want_loc);
		like(err.msg, c->key, "%s: message names the key", c->what);
		like(err.msg, c->detail, "%s: message says what is wrong", c->what);
		config_free(&cfg);
		free(path);
		free(want_loc);
	}

	/* Syntax errors carry the line too. */
	{
		struct crisp_config cfg;
		struct crisp_error err;
		char *path, *want;

		is_int(load_str(&cfg, "[crispd]\nlog_level = info\n[runtime\n", &err, &path), -1,
		       "an unclosed section is rejected");
		want = xasprintf("%s:3: syntax error", path);
		is_str(err.msg, want, "a syntax error names file:line");
		config_free(&cfg);
		free(path);
		free(want);

		is_int(load_str(&cfg, "[crispd]\njust words\n", &err, &path), -1,
		       "a line without '=' is rejected");
		want = xasprintf("%s:2: syntax error", path);
		is_str(err.msg, want, "a line without '=' names file:line");
		config_free(&cfg);
		free(path);
		free(want);
	}
}

/* inih reads lines into a fixed buffer: a long value must not be silently cut
 * (or its tail parsed as a line of its own). Accepting it whole or rejecting it
 * with a useful message are both fine. */
static void test_long_line(void)
{
	struct crisp_config cfg;
	struct crisp_error err;
	char value[400], *content, *path;
	int r;

	value[0] = '/';
	memset(value + 1, 'd', sizeof(value) - 2);
	value[sizeof(value) - 1] = '\0';
	memcpy(value + 200, "/x=y", 4); /* a tail that would parse as a key */
	content = xasprintf("[crispd]\nroot_dir = %s\n", value);
	r = load_str(&cfg, content, &err, &path);
	if (r == 0) {
		is_str(cfg.root_dir, value, "a long value is read whole");
	} else {
		char *want = xasprintf("%s:2:", path);
		if (!ok(strncmp(err.msg, want, strlen(want)) == 0 && strstr(err.msg, "too long"),
			"a long line is rejected as too long, at its line"))
			diag("  got: '%s'", err.msg);
		is_str(cfg.root_dir, "/var/lib/crisp", "no cut value is applied");
		free(want);
	}
	config_free(&cfg);
	free(content);
	free(path);

	/* A line that just fits (199 characters and its newline, inih's buffer
	 * being 200) is read whole and the lines after it keep their numbers. */
	memset(value + 1, 'e', sizeof(value) - 2);
	value[199 - strlen("root_dir = ")] = '\0';
	content = xasprintf("[crispd]\nroot_dir = %s\nbogus = 1\n", value);
	is_int(strlen(strchr(content, '\n') + 1), 199 + 1 + 10,
	       "the fitting line is 199 characters");
	is_int(load_str(&cfg, content, &err, &path), -1,
	       "the error after a line that just fits is found");
	is_str(cfg.root_dir, value, "a line that just fits is read whole");
	{
		char *want = xasprintf("%s:3: unknown key 'bogus'", path);
		like(err.msg, want, "the line after a line that just fits keeps its number");
		free(want);
	}
	config_free(&cfg);
	free(content);
	free(path);

	/* ... also as the last line, without newline */
	content = xasprintf("[crispd]\nroot_dir = %s", value);
	is_int(load_str(&cfg, content, &err, &path), 0,
	       "a last line that just fits, without newline");
	is_str(cfg.root_dir, value, "the last line that just fits is read whole");
	config_free(&cfg);
	free(content);
	free(path);
}

static void set_all(struct crisp_config *cfg)
{
	static const char *const vals[][2] = {
		{ "crispd.socket", "/tmp/x/crisp.sock" },
		{ "crispd.socket_mode", "0600" },
		{ "crispd.socket_group", "wheel" },
		{ "crispd.root_dir", "/srv/crisp" },
		{ "crispd.state_dir", "/run/crisp2" },
		{ "crispd.helper_dir", "/opt/crisp/libexec" },
		{ "crispd.log_level", "warning" },
		{ "crispd.health_interval", "7" },
		{ "crispd.restart_backoff_max", "60" },
		{ "crispd.crash_loop_limit", "9" },
		{ "frontend.user", "nobody" },
		{ "frontend.ipc_timeout", "30" },
		{ "images.max_concurrent_downloads", "5" },
		{ "images.pull_progress_timeout", "90" },
		{ "images.max_layer_entries", "1234" },
		{ "images.max_layer_size_mb", "2048" },
		{ "images.max_layer_path_len", "1024" },
		{ "images.snapshotter", "copy" },
		{ "runtime.cgroup_driver", "systemd" },
		{ "runtime.default_runtime", "crun" },
		{ "runtime.restrict_oom_score_adj", "on" },
		{ "runtime.log_line_max", "4096" },
		{ "runtime.exec_output_max", "65536" },
		{ "runtime.seccomp_profile_root", "/etc/seccomp" },
		{ "runtime.sandbox_image", "registry.k8s.io/pause:3.9" },
		{ "runtime.runtime_timeout", "15" },
		{ "streaming.address", "0.0.0.0" },
		{ "streaming.port", "10010" },
		{ "streaming.token_ttl", "30" },
		{ "streaming.idle_timeout", "600" },
		{ "streaming.tls_cert", "/etc/crisp/stream.crt" },
		{ "streaming.tls_key", "/etc/crisp/stream.key" },
		{ "streaming.allow_insecure_address", "true" },
		{ "cni.conf_dir", "/etc/cni/other" },
		{ "cni.bin_dirs", "/a:/b/c" },
		{ "cni.plugin_timeout", "5" },
		{ "cni.ip_family", "ipv6" },
	};
	struct crisp_error err;

	is_int(ARRAY_SIZE(vals), config_nkeys, "the round-trip test sets every key");
	for (size_t i = 0; i < ARRAY_SIZE(vals); i++)
		if (config_set(cfg, vals[i][0], vals[i][1], &err) < 0)
			diag("config_set(%s): %s", vals[i][0], err.msg);
}

static void test_print_roundtrip(void)
{
	struct crisp_config a, b, defaults;
	struct crisp_error err;
	char *path = xasprintf("%s/printed.conf", tmpdir);
	bool differ = true, same = true;
	FILE *f;

	config_init(&defaults);
	config_init(&a);
	set_all(&a);
	for (size_t i = 0; i < config_nkeys; i++) {
		char *va = config_get(&a, &config_keys[i]),
		     *vd = config_get(&defaults, &config_keys[i]);
		if (streq(va, vd)) {
			diag("%s.%s still has its default", config_keys[i].section,
			     config_keys[i].name);
			differ = false;
		}
		free(va);
		free(vd);
	}
	ok(differ, "the round-trip configuration differs from the defaults in every key");

	f = fopen(path, "we");
	config_print(&a, f);
	fclose(f);

	config_init(&b);
	err_clear(&err);
	if (!is_int(config_load(&b, path, true, NULL, &err), 0, "config_print output loads"))
		diag("error: %s", err.msg);
	for (size_t i = 0; i < config_nkeys; i++) {
		char *va = config_get(&a, &config_keys[i]), *vb = config_get(&b, &config_keys[i]);
		if (!streq(va, vb)) {
			diag("%s.%s: printed '%s', read back '%s'", config_keys[i].section,
			     config_keys[i].name, va, vb);
			same = false;
		}
		free(va);
		free(vb);
	}
	ok(same, "config_print output parses back to the same values");
	is_int(b.socket_mode, 0600, "socket_mode survives the round trip as octal");
	is_int(b.log_level, LOG_WARNING, "log_level survives the round trip");
	is_int(b.restrict_oom_score_adj, TRI_ON, "restrict_oom_score_adj survives the round trip");
	config_free(&b);

	/* The defaults round-trip too (helper_dir depends on the build). */
	f = fopen(path, "we");
	config_print(&defaults, f);
	fclose(f);
	config_init(&b);
	set_all(&b);
	is_int(config_load(&b, path, true, NULL, &err), 0, "printed defaults load");
	same = true;
	for (size_t i = 0; i < config_nkeys; i++) {
		char *v = config_get(&b, &config_keys[i]);
		same = same && streq(v, config_keys[i].def);
		free(v);
	}
	ok(same, "printed defaults parse back to the defaults");

	config_free(&a);
	config_free(&b);
	config_free(&defaults);
	free(path);
}

static void test_set(void)
{
	struct crisp_config cfg;
	struct crisp_error err;
	char longkey[200];

	config_init(&cfg);
	is_int(config_set(&cfg, "crispd.log_level", "debug", &err), 0,
	       "config_set crispd.log_level");
	is_int(cfg.log_level, LOG_DEBUG, "config_set applies the value");
	is_int(config_set(&cfg, "crispd.log_level", "warn", &err), 0, "log level alias 'warn'");
	is_int(cfg.log_level, LOG_WARNING, "'warn' is warning");
	is_int(config_set(&cfg, "frontend.ipc_timeout", "86400", &err), 0,
	       "upper bound is allowed");
	is_int(cfg.ipc_timeout, 86400, "ipc_timeout set to its maximum");
	is_int(config_set(&cfg, "crispd.socket_mode", "0", &err), 0, "mode 0 is allowed");
	is_int(cfg.socket_mode, 0, "socket_mode 0");
	is_int(config_set(&cfg, "crispd.socket_mode", "07777", &err), 0, "mode 07777 is allowed");
	is_int(cfg.socket_mode, 07777, "socket_mode 07777");

	static const char *const tri[][2] = { { "on", "1" },   { "true", "1" },  { "yes", "1" },
					      { "off", "0" },  { "false", "0" }, { "no", "0" },
					      { "auto", "-1" } };
	for (size_t i = 0; i < ARRAY_SIZE(tri); i++) {
		config_set(&cfg, "runtime.restrict_oom_score_adj", tri[i][0], &err);
		is_int(cfg.restrict_oom_score_adj, atoi(tri[i][1]), "restrict_oom_score_adj = %s",
		       tri[i][0]);
	}

	err_clear(&err);
	is_int(config_set(&cfg, "crispd.nope", "1", &err), -1, "unknown key is rejected");
	like(err.msg, "unknown key 'crispd.nope'", "the error names the unknown key");
	is_int(config_set(&cfg, "log_level", "debug", &err), -1,
	       "a key without section is rejected");
	like(err.msg, "'log_level'", "the error names the key without section");
	is_int(config_set(&cfg, "cni.socket", "/x", &err), -1,
	       "a key of another section is rejected");
	memset(longkey, 's', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	longkey[150] = '.';
	is_int(config_set(&cfg, longkey, "x", &err), -1, "a huge section name is rejected");

	err_clear(&err);
	is_int(config_set(&cfg, "crispd.socket", "relative.sock", &err), -1,
	       "bad value is rejected");
	is_str(err.msg, "crispd.socket: 'relative.sock' is not an absolute path",
	       "the error names key and value");
	is_int(err.code, CRISP_E_INVALID, "a bad value is CRISP_E_INVALID");
	is_str(cfg.socket, "/run/crisp/crisp.sock", "a rejected value leaves the old one");
	config_set(&cfg, "crispd.health_interval", "9", &err);
	is_int(config_set(&cfg, "crispd.health_interval", "0", &err), -1, "0 is below the minimum");
	is_int(cfg.health_interval, 9, "a rejected number leaves the old one");
	is_int(config_set(&cfg, "crispd.health_interval", "", &err), -1,
	       "an empty number is rejected");
	is_int(config_set(&cfg, "crispd.health_interval", "+5", &err), -1, "'+5' is rejected");
	is_int(config_set(&cfg, "crispd.root_dir", "", &err), -1, "an empty path is rejected");
	is_int(config_set(&cfg, "cni.bin_dirs", "", &err), -1, "an empty path list is rejected");
	is_int(config_set(&cfg, "cni.bin_dirs", "/a", &err), 0, "a path list of one path");
	is_str(cfg.cni_bin_dirs, "/a", "bin_dirs of one path");

	/* The same string is set twice: no leak under valgrind. */
	config_set(&cfg, "runtime.default_runtime", "crun", &err);
	config_set(&cfg, "runtime.default_runtime", "runsc", &err);
	is_str(cfg.default_runtime, "runsc", "the last config_set wins");
	config_free(&cfg);
}

static void test_restrict_oom(void)
{
	struct crisp_config cfg;
	struct crisp_error err;

	config_init(&cfg);
	config_set(&cfg, "runtime.restrict_oom_score_adj", "on", &err);
	ok(config_restrict_oom(&cfg), "restrict_oom_score_adj = on restricts");
	config_set(&cfg, "runtime.restrict_oom_score_adj", "off", &err);
	ok(!config_restrict_oom(&cfg), "restrict_oom_score_adj = off does not");
	config_set(&cfg, "runtime.restrict_oom_score_adj", "auto", &err);
	is_int(config_restrict_oom(&cfg), prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) != 1,
	       "auto restricts exactly when CAP_SYS_RESOURCE is not in the bounding set");
	config_free(&cfg);
}

/* streaming.address without TLS: loopback only, unless asked for by name */
static void test_validate_streaming(void)
{
	static const char *const loopback[] = { "127.0.0.1", "127.255.0.9", "::1",
						"::ffff:127.0.0.1" };
	static const char *const other[] = { "0.0.0.0",         "::",  "10.0.0.1", "128.0.0.1",
					     "::ffff:10.0.0.1", "::2", "fe80::1" };
	struct crisp_config cfg;
	struct crisp_error err;

	config_init(&cfg);
	is_int(config_validate(&cfg, &err), 0, "the defaults validate");
	for (size_t i = 0; i < ARRAY_SIZE(loopback); i++) {
		config_set(&cfg, "streaming.address", loopback[i], &err);
		is_int(config_validate(&cfg, &err), 0, "plain HTTP on %s", loopback[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
		config_set(&cfg, "streaming.address", other[i], &err);
		is_int(config_validate(&cfg, &err), -1, "plain HTTP on %s refused", other[i]);
		ok(strstr(err.msg, "allow_insecure_address") != NULL,
		   "the message names the way out");
	}
	config_set(&cfg, "streaming.tls_cert", "/etc/crisp/s.pem", &err);
	is_int(config_validate(&cfg, &err), 0, "TLS on any address");
	config_set(&cfg, "streaming.tls_cert", "", &err);
	is_int(config_set(&cfg, "streaming.allow_insecure_address", "maybe", &err), -1,
	       "allow_insecure_address takes a boolean only");
	is_int(config_set(&cfg, "streaming.allow_insecure_address", "true", &err), 0,
	       "allow_insecure_address = true");
	is_int(config_validate(&cfg, &err), 0, "plain HTTP anywhere when allowed");
	config_free(&cfg);
}

static void cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	(void)!system(cmd);
	free(cmd);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 99;
	}
	atexit(cleanup);
	test_defaults();
	test_load_order();
	test_errors();
	test_long_line();
	test_print_roundtrip();
	test_set();
	test_restrict_oom();
	test_validate_streaming();
	return done_testing();
}
