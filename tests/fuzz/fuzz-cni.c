/* fuzz-cni: a libFuzzer target for what netd parses from outside: a CNI
 * plugin's result (its stdout: third-party code), network config files
 * (netd/cni_conf.c) and netd's own records read back after a restart
 * (netd/cache.c). The same bytes go through each: as a result (conversion to
 * every version, the pod's IPs), as a .conf or .conflist (the first byte
 * picks; then each plugin's stdin and the pod CIDR substitution) and as the
 * record of a pod (load, and an encode/decode round trip that must succeed).
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-cni
 *	./tests/fuzz/fuzz-cni -max_total_time=60 ../tests/fuzz/seeds/fuzz-cni */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "netd/netd.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[] = "/tmp/crisp-fuzz-cni-XXXXXX";
static int cwd_fd = -1;
static struct crisp_config cfg;

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) < 0)
		abort();
}

/* A bin dir with the plugins the seeds name, so that configs load. */
static void setup(void)
{
	static const char *const plugins[] = { "bridge", "host-local", "portmap", "loopback",
					       "bandwidth" };
	char path[128];

	/* cache.c works relative to netd's directory, as netd chdirs there;
	 * we go there only for the record, as libFuzzer's paths are relative. */
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd_fd < 0 || !mkdtemp(dir) || chdir(dir) < 0 || mkdir("bin", 0700) < 0 ||
	    mkdir(CACHE_DIR, 0700) < 0)
		abort();
	for (size_t i = 0; i < ARRAY_SIZE(plugins); i++) {
		snprintf(path, sizeof(path), "bin/%s", plugins[i]);
		write_file(path, (const uint8_t *)"#!/bin/sh\n", 10);
		if (chmod(path, 0700) < 0)
			abort();
	}
	snprintf(path, sizeof(path), "%s/bin", dir);
	cfg.cni_bin_dirs = strdup(path);
	if (fchdir(cwd_fd) < 0)
		abort();
	log_init("fuzz-cni", LOG_CRIT);
}

static void check_ips(json_t *result)
{
	struct crisp_error err;
	struct cni_ip ips[4];
	int n;

	for (int fam = IP_FAMILY_V4; fam <= IP_FAMILY_V6; fam++) {
		memset(ips, 0xff, sizeof(ips));
		n = cni_result_ips(result, (enum ip_family)fam, ips, ARRAY_SIZE(ips), &err);
		if (n > (int)ARRAY_SIZE(ips))
			abort();
		for (int i = 0; i < n; i++)
			if (!memchr(ips[i].ip, '\0', sizeof(ips[i].ip)) ||
			    !memchr(ips[i].iface, '\0', sizeof(ips[i].iface)))
				abort();
	}
}

static void fuzz_result(json_t *result)
{
	static const char *const versions[] = {
		"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "0.2.0"
	};
	struct crisp_error err;

	check_ips(result);
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		json_t *out = cni_result_convert(result, versions[i], &err);

		if (!out)
			continue;
		check_ips(out);
		json_decref(out);
	}
}

static void fuzz_conf(const uint8_t *data, size_t size, bool is_list, json_t *result)
{
	struct crisp_error err;
	json_t *list, *caps;
	char path[128];

	snprintf(path, sizeof(path), "%s/net.%s", dir, is_list ? "conflist" : "conf");
	write_file(path, data, size);
	list = cni_conf_load(&cfg, path, &err);
	if (!list)
		return;
	caps = json_pack("{s:[{s:i, s:i, s:s}]}", "portMappings", "hostPort", 8080, "containerPort",
			 80, "protocol", "tcp");
	for (size_t i = 0; i < json_array_size(json_object_get(list, "plugins")); i++)
		json_decref(cni_plugin_conf(list, i, result, caps));
	cni_apply_pod_cidr(list, "10.88.0.0/16,fd00:88::/64", &err);
	json_decref(caps);
	json_decref(list);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	struct pod_net *head, *n;
	struct crisp_error err;

	if (chdir(dir) < 0)
		abort();
	write_file(CACHE_DIR "/" ID ".json", data, size);
	head = cache_load_all();
	if (fchdir(cwd_fd) < 0)
		abort();
	while ((n = head)) {
		json_t *j = cache_encode(n);
		struct pod_net *again = j ? cache_decode(j, n->id, &err) : NULL;

		/* a record we loaded must survive being written again */
		if (!again)
			abort();
		pod_net_free(again);
		json_decref(j);
		head = n->next;
		pod_net_free(n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	json_t *j;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 1)
		return 0;
	/* as netd/cni.c reads a plugin's stdout */
	j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (j)
		fuzz_result(j);
	fuzz_conf(data + 1, size - 1, data[0] & 1, j);
	fuzz_record(data + 1, size - 1);
	json_decref(j);
	return 0;
}
