/* Golden tests for OCI spec generation (runtimed/spec.c): a CRI request,
 * built here as the protobuf-c structs runtimed receives, goes in; the
 * config.json that comes out is compared, as JSON, with
 * tests/unit/spec-golden/<case>.json, the reviewed truth. With
 * SPEC_GOLDEN_UPDATE=1 the golden files are rewritten instead (then read
 * them before committing). Also: requests that must be refused, the
 * cgroups path, stop signals, and the RuntimeDefault seccomp profile in
 * libseccomp's terms. */
#include "autoconfig.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtimed/spec.h"
#include "tests/unit/tap.h"

/* The deprecated CRI string forms are tested too. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#ifndef SPEC_GOLDEN_DIR
#error "SPEC_GOLDEN_DIR must name tests/unit/spec-golden"
#endif

#define SANDBOX_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CONTAINER_ID "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define POD_DIR "/run/crisp/sandboxes/" SANDBOX_ID
#define BIT(n) (UINT64_C(1) << (n))
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(s) ((ProtobufCBinaryData){ sizeof(s) - 1, (uint8_t *)(s) })

/* ---- the fake host ------------------------------------------------------ */

static const char image_passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
				   "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
				   "# a comment, skipped\n"
				   "broken line without fields\n"
				   "www-data:x:33:33:www-data:/var/www:/bin/false\n"
				   "app:x:1000:1000:App:/home/app:/bin/sh\n"
				   "nobody:x:65534:65534:nobody:/home:/bin/false\n";

static const char image_group[] = "root:x:0:\n"
				  "daemon:x:1:\n"
				  "wheel:x:10:root\n"
				  "staff:x:50:other,app\n"
				  "audio:x:29:app\n"
				  "app:x:1000:\n"
				  "video:x:44:application\n"
				  "nogroup:x:65534:\n";

static const struct {
	const char *path;
	char type;
	uint32_t major, minor, mode, gid;
} fake_devices[] = {
	{ "/dev/null", 'c', 1, 3, 0666, 0 },
	{ "/dev/fuse", 'c', 10, 229, 0666, 0 },
	{ "/dev/sda", 'b', 8, 0, 0660, 6 },
	{ "/dev/kmsg", 'c', 1, 11, 0644, 0 },
};

static int fake_device(void *ctx, const char *host_path, struct spec_device *ret,
		       struct crisp_error *err)
{
	for (size_t i = 0; i < N(fake_devices); i++)
		if (strcmp(fake_devices[i].path, host_path) == 0) {
			*ret = (struct spec_device){ NULL,
						     fake_devices[i].type,
						     fake_devices[i].major,
						     fake_devices[i].minor,
						     fake_devices[i].mode,
						     0,
						     fake_devices[i].gid };
			return 0;
		}
	if (strcmp(host_path, "/dev/not-a-device") == 0) {
		*ret = (struct spec_device){ .type = 'd' };
		return 0;
	}
	return err_set(err, CRISP_E_NOT_FOUND, "%s does not exist", host_path);
}

static int fake_host_devices(void *ctx, struct spec_device **ret, size_t *ret_n,
			     struct crisp_error *err)
{
	struct spec_device *d = xcalloc(N(fake_devices), sizeof(*d));

	for (size_t i = 0; i < N(fake_devices); i++) {
		fake_device(ctx, fake_devices[i].path, &d[i], err);
		d[i].path = xstrdup(fake_devices[i].path);
	}
	*ret = d;
	*ret_n = N(fake_devices);
	return 0;
}

static const char audit_profile[] =
	"{ \"defaultAction\": \"SCMP_ACT_LOG\", \"architectures\": [\"SCMP_ARCH_X86_64\"],"
	"  \"comment\": \"Docker-format extras are ignored\", \"archMap\": [],"
	"  \"syscalls\": [ { \"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\","
	"                    \"errnoRet\": 13 },"
	"                  { \"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\","
	"                    \"args\": [ { \"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\" } ] "
	"} ] }";

static const struct {
	const char *relpath, *text;
} fake_files[] = {
	{ "profiles/audit.json", audit_profile },
	{ "profiles/notjson.json", "{ \"defaultAction\": " },
	{ "profiles/listener.json",
	  "{ \"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\" }" },
	{ "profiles/badaction.json", "{ \"defaultAction\": \"SCMP_ACT_NOTIFY\" }" },
	{ "profiles/badarg.json",
	  "{ \"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [ { \"names\": [\"kill\"],"
	  "  \"action\": \"SCMP_ACT_ERRNO\", \"args\": [ { \"index\": 6, \"value\": 1,"
	  "  \"op\": \"SCMP_CMP_EQ\" } ] } ] }" },
};

static char last_root[256], last_relpath[256];

static int fake_read_file(void *ctx, const char *root, const char *relpath, size_t max, char **ret,
			  struct crisp_error *err)
{
	snprintf(last_root, sizeof(last_root), "%s", root);
	snprintf(last_relpath, sizeof(last_relpath), "%s", relpath);
	for (size_t i = 0; i < N(fake_files); i++)
		if (strcmp(fake_files[i].relpath, relpath) == 0) {
			*ret = xstrdup(fake_files[i].text);
			return 0;
		}
	return err_set(err, CRISP_E_NOT_FOUND, "%s/%s does not exist", root, relpath);
}

static const struct spec_ops fake_ops = { fake_device, fake_host_devices, fake_read_file };

/* ---- the request: a pod and a busybox container, as kubelet sends them -- */

struct fixture {
	struct spec_host host;
	/* the pod */
	Runtime__V1__PodSandboxMetadata pod_md;
	Runtime__V1__NamespaceOption pod_ns;
	Runtime__V1__LinuxSandboxSecurityContext pod_sc;
	Runtime__V1__LinuxPodSandboxConfig pod_linux;
	Runtime__V1__PodSandboxConfig pod_config;
	struct spec_pod pod;
	/* the container */
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__ImageSpec image_spec;
	Runtime__V1__NamespaceOption ns;
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__LinuxContainerConfig linux;
	Runtime__V1__ContainerConfig config;
	CrispIpc__ImageRunConfig image;
	struct spec_container c;
};

static char *busybox_cmd[] = { "sh" };
static char *busybox_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	/* A host like this one: cgroup v1, cgroupfs, no AppArmor, every
	 * capability but CAP_SYS_RESOURCE in the bounding set. */
	f->host = (struct spec_host){
		.cgroup_v2 = false,
		.systemd_cgroup = false,
		.apparmor = false,
		.rro_mounts = true,
		.oom_score_adj_min = INT32_MIN,
		.cap_bounding = (BIT(41) - 1) & ~BIT(24),
		.seccomp_root = "/var/lib/kubelet/seccomp",
		.swap_accounting = true,
		.apparmor_default = NULL,
		.node_hostname = "node1",
		.rlimit_nofile = 1048576,
		.arch = "x86_64",
		.ops = &fake_ops,
	};

	f->pod_md = (Runtime__V1__PodSandboxMetadata)RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	f->pod_md.name = "busybox-pod";
	f->pod_md.namespace_ = "default";
	f->pod_md.uid = "4f8a3c2e-1111-2222-3333-444455556666";
	f->pod_ns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
	f->pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->pod_ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	f->pod_ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->pod_sc = (Runtime__V1__LinuxSandboxSecurityContext)
		RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	f->pod_sc.namespace_options = &f->pod_ns;
	f->pod_linux = (Runtime__V1__LinuxPodSandboxConfig)
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	f->pod_linux.cgroup_parent = "/kubepods/besteffort/pod4f8a3c2e";
	f->pod_linux.security_context = &f->pod_sc;
	f->pod_config = (Runtime__V1__PodSandboxConfig)RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	f->pod_config.metadata = &f->pod_md;
	f->pod_config.hostname = "busybox-pod";
	f->pod_config.log_directory = "/var/log/pods/default_busybox-pod_4f8a3c2e";
	f->pod_config.linux = &f->pod_linux;
	f->pod = (struct spec_pod){
		.config = &f->pod_config,
		.sandbox_id = SANDBOX_ID,
		.pause_pid = 4242,
		.netns_path = "/run/crisp/netns/" SANDBOX_ID,
		.hostname_path = POD_DIR "/hostname",
		.hosts_path = POD_DIR "/hosts",
		.resolv_path = POD_DIR "/resolv.conf",
		.shm_path = POD_DIR "/shm",
		.cgroup_parent = "/kubepods/besteffort/pod4f8a3c2e",
	};

	f->md = (Runtime__V1__ContainerMetadata)RUNTIME__V1__CONTAINER_METADATA__INIT;
	f->md.name = "busybox";
	f->image_spec = (Runtime__V1__ImageSpec)RUNTIME__V1__IMAGE_SPEC__INIT;
	f->image_spec.image = "docker.io/library/busybox:1.36";
	f->ns = (Runtime__V1__NamespaceOption)RUNTIME__V1__NAMESPACE_OPTION__INIT;
	f->ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	f->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
	f->sc = (Runtime__V1__LinuxContainerSecurityContext)
		RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	f->sc.namespace_options = &f->ns;
	f->linux = (Runtime__V1__LinuxContainerConfig)RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
	f->linux.security_context = &f->sc;
	f->config = (Runtime__V1__ContainerConfig)RUNTIME__V1__CONTAINER_CONFIG__INIT;
	f->config.metadata = &f->md;
	f->config.image = &f->image_spec;
	f->config.log_path = "busybox/0.log";
	f->config.linux = &f->linux;
	f->image = (CrispIpc__ImageRunConfig)CRISP_IPC__IMAGE_RUN_CONFIG__INIT;
	f->image.image_id =
		"sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741";
	f->image.cmd = busybox_cmd;
	f->image.n_cmd = N(busybox_cmd);
	f->image.env = busybox_env;
	f->image.n_env = N(busybox_env);
	f->c = (struct spec_container){
		.container_id = CONTAINER_ID,
		.config = &f->config,
		.image = &f->image,
		.files = { image_passwd, image_group },
		.rootfs = "/run/crisp/containers/" CONTAINER_ID "/rootfs",
	};
}

/* ---- golden comparison -------------------------------------------------- */

static void print_json(const char *label, json_t *j)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));

	printf("# %s:\n", label);
	for (char *line = s, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		printf("#   %s\n", line);
	}
	free(s);
	fflush(stdout);
}

static void check_golden(const char *name, json_t *got, const struct crisp_error *err)
{
	char path[512];
	json_error_t jerr;
	json_t *want;
	const char *update = getenv("SPEC_GOLDEN_UPDATE");

	if (!ok(got != NULL, "%s: generated", name)) {
		diag("  error %s: %s", err_code_name(err->code), err->msg);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s.json", SPEC_GOLDEN_DIR, name);
	if (update && strcmp(update, "1") == 0) {
		char *s = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(2));
		FILE *fp = fopen(path, "w");

		ok(fp && fprintf(fp, "%s\n", s) > 0 && fclose(fp) == 0, "%s: rewrote %s", name,
		   path);
		free(s);
		json_decref(got);
		return;
	}
	want = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!want) {
		ok(0, "%s: golden %s: %s", name, path, jerr.text);
		print_json("got", got);
	} else if (!ok(json_equal(got, want), "%s: matches %s.json", name, name)) {
		print_json("got", got);
		print_json("expected", want);
	}
	json_decref(want);
	json_decref(got);
}

static void golden_container(const char *name, struct fixture *f)
{
	struct crisp_error err = { 0 };

	check_golden(name, spec_container(&f->host, &f->pod, &f->c, &err), &err);
}

static void golden_sandbox(const char *name, struct fixture *f)
{
	struct crisp_error err = { 0 };

	check_golden(name, spec_sandbox(&f->host, &f->pod, "/var/lib/crisp/pause/rootfs", &err),
		     &err);
}

/* ---- golden cases ------------------------------------------------------- */

static void case_minimal(void)
{
	struct fixture f;

	/* crictl's smallest container: no linux section at all. */
	fixture_init(&f);
	f.config.linux = NULL;
	golden_container("container-minimal", &f);
}

static void case_command_args(void)
{
	struct fixture f;
	char *entrypoint[] = { "/docker-entrypoint.sh" };
	char *cmd[] = { "nginx", "-g", "daemon off;" };
	char *command[] = { "/bin/sh", "-c" };
	char *args[] = { "echo hello; sleep 3600" };

	fixture_init(&f);
	f.image.entrypoint = entrypoint;
	f.image.n_entrypoint = N(entrypoint);
	f.image.cmd = cmd;
	f.image.n_cmd = N(cmd);
	f.image.working_dir = "/usr/share/nginx";
	f.config.command = command;
	f.config.n_command = N(command);
	f.config.args = args;
	f.config.n_args = N(args);
	f.config.working_dir = "/tmp";
	f.config.tty = true;
	f.config.stdin = true;
	golden_container("container-command-args", &f);
}

static json_t *process_args_of(struct fixture *f)
{
	struct crisp_error err = { 0 };
	json_t *spec = spec_container(&f->host, &f->pod, &f->c, &err);
	json_t *args = json_incref(json_object_get(json_object_get(spec, "process"), "args"));

	if (!spec)
		diag("error: %s", err.msg);
	json_decref(spec);
	return args;
}

static bool args_are(json_t *args, const char *const *want, size_t n)
{
	bool same = json_array_size(args) == n;

	for (size_t i = 0; same && i < n; i++)
		same = strcmp(json_string_value(json_array_get(args, i)), want[i]) == 0;
	if (!same)
		print_json("args", args);
	json_decref(args);
	return same;
}

/* The four Kubernetes combinations, and Docker's ENTRYPOINT [""]. */
static void case_args_rules(void)
{
	struct fixture f;
	char *entrypoint[] = { "/ep" }, *cmd[] = { "c1", "c2" };
	char *command[] = { "/cmd" }, *args[] = { "a1" }, *empty_ep[] = { "" };

	fixture_init(&f);
	f.image.entrypoint = entrypoint;
	f.image.n_entrypoint = 1;
	f.image.cmd = cmd;
	f.image.n_cmd = 2;
	ok(args_are(process_args_of(&f), (const char *[]){ "/ep", "c1", "c2" }, 3),
	   "args: neither command nor args: entrypoint + cmd");
	f.config.args = args;
	f.config.n_args = 1;
	ok(args_are(process_args_of(&f), (const char *[]){ "/ep", "a1" }, 2),
	   "args: args replace the image's cmd");
	f.config.command = command;
	f.config.n_command = 1;
	ok(args_are(process_args_of(&f), (const char *[]){ "/cmd", "a1" }, 2),
	   "args: command and args replace both");
	f.config.args = NULL;
	f.config.n_args = 0;
	ok(args_are(process_args_of(&f), (const char *[]){ "/cmd" }, 1),
	   "args: command drops the image's cmd");
	f.config.command = NULL;
	f.config.n_command = 0;
	f.image.entrypoint = empty_ep;
	ok(args_are(process_args_of(&f), (const char *[]){ "c1", "c2" }, 2),
	   "args: an entrypoint of [\"\"] is none");
}

static void case_env(void)
{
	struct fixture f;
	char *env[] = { "PATH=/opt/app/bin:/usr/bin:/bin", "FOO=from-image", "UNSET_ME=x",
			"UNSET_ME", "LANG=C.UTF-8" };
	Runtime__V1__KeyValue kv[4] = { RUNTIME__V1__KEY_VALUE__INIT, RUNTIME__V1__KEY_VALUE__INIT,
					RUNTIME__V1__KEY_VALUE__INIT,
					RUNTIME__V1__KEY_VALUE__INIT };
	Runtime__V1__KeyValue *envs[] = { &kv[0], &kv[1], &kv[2], &kv[3] };

	fixture_init(&f);
	f.image.env = env;
	f.image.n_env = N(env);
	kv[0].key = "FOO";
	kv[0].value = BYTES("from-request");
	kv[1].key = "EMPTY";
	kv[1].value = BYTES("");
	kv[2].key = "GREETING";
	kv[2].value = BYTES("hello=world, \xc3\xa9t\xc3\xa9");
	kv[3].key = "HOSTNAME";
	kv[3].value = BYTES("overridden");
	f.config.envs = envs;
	f.config.n_envs = N(envs);
	golden_container("container-env", &f);
}

static void case_user_passwd(void)
{
	struct fixture f;
	int64_t groups[] = { 1234, 50 };

	fixture_init(&f);
	f.sc.run_as_username = "app";
	f.sc.supplemental_groups = groups;
	f.sc.n_supplemental_groups = N(groups);
	f.sc.no_new_privs = true;
	golden_container("container-user-passwd", &f);

	/* Strict: the image's /etc/group adds nothing. */
	f.sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	golden_container("container-user-strict", &f);
}

/* ContainerStatus.user: process.user of the generated spec, as it is. */
static void case_status_user(void)
{
	struct fixture f;
	int64_t groups[] = { 1234, 50 };
	struct crisp_error err = { 0 };
	Runtime__V1__ContainerUser *cu;
	json_t *spec;

	fixture_init(&f);
	f.sc.run_as_username = "app";
	f.sc.supplemental_groups = groups;
	f.sc.n_supplemental_groups = N(groups);
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	cu = spec ? spec_process_user(spec) : NULL;
	ok(cu && cu->linux && cu->linux->uid == 1000 && cu->linux->gid == 1000 &&
		   cu->linux->n_supplemental_groups == 4 &&
		   cu->linux->supplemental_groups[0] == 29 &&
		   cu->linux->supplemental_groups[1] == 50 &&
		   cu->linux->supplemental_groups[2] == 1000 &&
		   cu->linux->supplemental_groups[3] == 1234,
	   "status user: app (1000:1000), Merge: groups 29, 50 (image), 1000 (primary), 1234 "
	   "(request)");
	if (cu)
		protobuf_c_message_free_unpacked(&cu->base, NULL);
	json_decref(spec);

	f.sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	cu = spec ? spec_process_user(spec) : NULL;
	ok(cu && cu->linux && cu->linux->uid == 1000 && cu->linux->gid == 1000 &&
		   cu->linux->n_supplemental_groups == 3 &&
		   cu->linux->supplemental_groups[0] == 50 &&
		   cu->linux->supplemental_groups[1] == 1000 &&
		   cu->linux->supplemental_groups[2] == 1234,
	   "status user: Strict: the primary group and the request's 50 and 1234 only");
	if (cu)
		protobuf_c_message_free_unpacked(&cu->base, NULL);
	json_decref(spec);

	fixture_init(&f);
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	cu = spec ? spec_process_user(spec) : NULL;
	ok(cu && cu->linux && cu->linux->uid == 0 && cu->linux->gid == 0 &&
		   cu->linux->n_supplemental_groups == 2 &&
		   cu->linux->supplemental_groups[0] == 0 &&
		   cu->linux->supplemental_groups[1] == 10,
	   "status user: no user: root, in its group 0 and in wheel, which lists root");
	if (cu)
		protobuf_c_message_free_unpacked(&cu->base, NULL);
	json_decref(spec);

	/* Not a spec that spec_container made: no answer rather than a guess. */
	spec = json_loads("{\"process\": {\"user\": {\"uid\": 5}}}", 0, NULL);
	ok(spec_process_user(spec) == NULL, "status user: a process.user without gid: none");
	json_decref(spec);
	spec = json_loads("{\"process\": {\"user\": {\"uid\": -1, \"gid\": 0}}}", 0, NULL);
	ok(spec_process_user(spec) == NULL, "status user: a negative uid: none");
	json_decref(spec);
	spec = json_loads("{\"process\": {\"user\": {\"uid\": 1, \"gid\": 2,"
			  " \"additionalGids\": [3, \"x\"]}}}",
			  0, NULL);
	ok(spec_process_user(spec) == NULL, "status user: a gid that is not a number: none");
	json_decref(spec);
	ok(spec_process_user(NULL) == NULL, "status user: no spec: none");
}

static void case_image_user(void)
{
	struct fixture f;
	Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
	Runtime__V1__Int64Value gid = RUNTIME__V1__INT64_VALUE__INIT;
	struct crisp_error err = { 0 };
	json_t *spec, *user;

	fixture_init(&f);
	f.image.user = "app:staff";
	golden_container("container-image-user-group", &f);

	/* run_as_user and run_as_group replace the image's user. */
	uid.value = 33;
	gid.value = 4000;
	f.sc.run_as_user = &uid;
	f.sc.run_as_group = &gid;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	user = json_object_get(json_object_get(spec, "process"), "user");
	ok(json_integer_value(json_object_get(user, "uid")) == 33 &&
		   json_integer_value(json_object_get(user, "gid")) == 4000 &&
		   json_array_size(json_object_get(user, "additionalGids")) == 1 &&
		   json_integer_value(json_array_get(json_object_get(user, "additionalGids"), 0)) ==
			   4000,
	   "user: run_as_user 33 (www-data, in no group) with run_as_group 4000, its only "
	   "group");
	json_decref(spec);

	/* A uid the image does not know gets gid 0. */
	uid.value = 5555;
	f.sc.run_as_group = NULL;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	user = json_object_get(json_object_get(spec, "process"), "user");
	ok(json_integer_value(json_object_get(user, "uid")) == 5555 &&
		   json_integer_value(json_object_get(user, "gid")) == 0,
	   "user: an unknown uid runs with gid 0");
	json_decref(spec);

	/* Image user "1000:29": both numeric. */
	f.sc.run_as_user = NULL;
	f.image.user = "1000:29";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	user = json_object_get(json_object_get(spec, "process"), "user");
	ok(json_integer_value(json_object_get(user, "uid")) == 1000 &&
		   json_integer_value(json_object_get(user, "gid")) == 29 &&
		   json_array_size(json_object_get(user, "additionalGids")) == 2,
	   "user: image user 1000:29, with app's groups from /etc/group");
	json_decref(spec);
}

static void case_mounts(void)
{
	struct fixture f;
	Runtime__V1__Mount m[6];
	Runtime__V1__Mount *mounts[N(m)];
	char *noexec[] = { "noexec", "nosuid" };

	fixture_init(&f);
	for (size_t i = 0; i < N(m); i++) {
		m[i] = (Runtime__V1__Mount)RUNTIME__V1__MOUNT__INIT;
		mounts[i] = &m[i];
	}
	/* Given children first: the spec lists parents first. */
	m[0].container_path = "/data/cache/";
	m[0].host_path = "/var/lib/kubelet/pods/p/volumes/cache";
	m[1].container_path = "/data";
	m[1].host_path = "/var/lib/kubelet/pods/p/volumes/data";
	m[1].readonly = true;
	m[1].selinux_relabel = true;
	m[2].container_path = "/host/mnt";
	m[2].host_path = "/mnt";
	m[2].propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	m[3].container_path = "/shared";
	m[3].host_path = "/var/lib/shared";
	m[3].propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
	m[4].container_path = "/config";
	m[4].host_path = "/etc/app";
	m[4].readonly = true;
	m[4].recursive_read_only = true;
	m[4].mount_options = noexec;
	m[4].n_mount_options = N(noexec);
	/* kubelet's own /etc/hosts replaces the pod's. */
	m[5].container_path = "/etc/hosts";
	m[5].host_path = "/var/lib/kubelet/pods/p/etc-hosts";
	f.config.mounts = mounts;
	f.config.n_mounts = N(mounts);
	f.sc.readonly_rootfs = true;
	golden_container("container-readonly-mounts", &f);
}

static void case_caps(void)
{
	struct fixture f;
	Runtime__V1__Capability cap = RUNTIME__V1__CAPABILITY__INIT;
	char *add[] = { "NET_ADMIN", "cap_sys_time" };
	char *drop[] = { "CHOWN", "CAP_KILL", "mknod" };
	char *ambient[] = { "NET_BIND_SERVICE" };
	char *all[] = { "ALL" };
	char *only[] = { "NET_BIND_SERVICE" };
	char *no_admin[] = { "SYS_ADMIN" };
	struct crisp_error err = { 0 };
	json_t *spec, *bounding;

	fixture_init(&f);
	cap.add_capabilities = add;
	cap.n_add_capabilities = N(add);
	cap.drop_capabilities = drop;
	cap.n_drop_capabilities = N(drop);
	cap.add_ambient_capabilities = ambient;
	cap.n_add_ambient_capabilities = N(ambient);
	f.sc.capabilities = &cap;
	golden_container("container-caps-add-drop", &f);

	cap.add_capabilities = only;
	cap.n_add_capabilities = N(only);
	cap.drop_capabilities = all;
	cap.n_drop_capabilities = N(all);
	cap.n_add_ambient_capabilities = 0;
	golden_container("container-caps-drop-all", &f);

	/* ALL minus SYS_ADMIN: every host capability but that one (and
	 * SYS_RESOURCE, which this host lacks). */
	cap.add_capabilities = all;
	cap.n_add_capabilities = N(all);
	cap.drop_capabilities = no_admin;
	cap.n_drop_capabilities = N(no_admin);
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	bounding = json_object_get(
		json_object_get(json_object_get(spec, "process"), "capabilities"), "bounding");
	is_int(json_array_size(bounding), 39, "caps: ALL minus SYS_ADMIN is 39 capabilities here");
	json_decref(spec);
}

static void case_privileged(void)
{
	struct fixture f;
	Runtime__V1__SecurityProfile seccomp = RUNTIME__V1__SECURITY_PROFILE__INIT;
	Runtime__V1__Device dev = RUNTIME__V1__DEVICE__INIT;
	Runtime__V1__Device *devs[] = { &dev };

	fixture_init(&f);
	f.pod_sc.privileged = true;
	f.sc.privileged = true;
	f.sc.seccomp = &seccomp; /* RuntimeDefault: not applied when privileged */
	dev.container_path = "/dev/fuse";
	dev.host_path = "/dev/fuse";
	dev.permissions = "rw";
	f.config.devices = devs;
	f.config.n_devices = N(devs);
	golden_container("container-privileged", &f);
}

static void case_devices(void)
{
	struct fixture f;
	Runtime__V1__Device dev[2] = { RUNTIME__V1__DEVICE__INIT, RUNTIME__V1__DEVICE__INIT };
	Runtime__V1__Device *devs[] = { &dev[0], &dev[1] };

	fixture_init(&f);
	dev[0].container_path = "/dev/fuse";
	dev[0].host_path = "/dev/fuse";
	dev[0].permissions = "mrw";
	dev[1].container_path = "/dev/xvda";
	dev[1].host_path = "/dev/sda";
	dev[1].permissions = "r";
	f.config.devices = devs;
	f.config.n_devices = N(devs);
	golden_container("container-devices", &f);
}

static void case_seccomp(void)
{
	struct fixture f;
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
	struct crisp_error err = { 0 };
	json_t *spec;

	fixture_init(&f);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	f.sc.seccomp = &sp;
	golden_container("container-seccomp-runtime-default", &f);

	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/audit.json";
	golden_container("container-seccomp-localhost", &f);
	is_str(last_root, "/var/lib/kubelet/seccomp", "seccomp: profile read under the root");
	is_str(last_relpath, "profiles/audit.json", "seccomp: by its path relative to the root");

	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	sp.localhost_ref = "";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && !json_object_get(json_object_get(spec, "linux"), "seccomp"),
	   "seccomp: Unconfined gives none");
	json_decref(spec);

	/* The deprecated string forms. */
	f.sc.seccomp = NULL;
	f.sc.seccomp_profile_path = "docker/default";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && json_object_get(json_object_get(spec, "linux"), "seccomp"),
	   "seccomp: 'docker/default' is RuntimeDefault");
	json_decref(spec);
	f.sc.seccomp_profile_path = "localhost//var/lib/kubelet/seccomp/profiles/audit.json";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_str(json_string_value(
		       json_object_get(json_object_get(json_object_get(spec, "linux"), "seccomp"),
				       "defaultAction")),
	       "SCMP_ACT_LOG", "seccomp: 'localhost/<path>' reads that profile");
	json_decref(spec);
	f.sc.seccomp_profile_path = "unconfined";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && !json_object_get(json_object_get(spec, "linux"), "seccomp"),
	   "seccomp: 'unconfined' gives none");
	json_decref(spec);
	f.sc.seccomp_profile_path = "";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && !json_object_get(json_object_get(spec, "linux"), "seccomp"),
	   "seccomp: nothing asked gives none for a container (as containerd)");
	json_decref(spec);
}

static void case_apparmor(void)
{
	struct fixture f;
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
	struct crisp_error err = { 0 };
	json_t *spec;

	fixture_init(&f);
	f.host.apparmor = true;
	f.host.apparmor_default = "crisp-default";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_str(json_string_value(
		       json_object_get(json_object_get(spec, "process"), "apparmorProfile")),
	       "crisp-default", "apparmor: unset means the loaded default profile");
	json_decref(spec);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "localhost/k8s-nginx";
	f.sc.apparmor = &sp;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_str(json_string_value(
		       json_object_get(json_object_get(spec, "process"), "apparmorProfile")),
	       "k8s-nginx", "apparmor: Localhost names the profile");
	json_decref(spec);
	f.host.apparmor = false;
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	sp.localhost_ref = "";
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && !json_object_get(json_object_get(spec, "process"), "apparmorProfile"),
	   "apparmor: RuntimeDefault without AppArmor is no profile");
	json_decref(spec);
}

static void case_resources(void)
{
	struct fixture f;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__HugepageLimit hp[2] = { RUNTIME__V1__HUGEPAGE_LIMIT__INIT,
					     RUNTIME__V1__HUGEPAGE_LIMIT__INIT };
	Runtime__V1__HugepageLimit *hps[] = { &hp[0], &hp[1] };
	struct crisp_error err = { 0 };
	json_t *spec;

	fixture_init(&f);
	r.cpu_period = 100000;
	r.cpu_quota = 50000;
	r.cpu_shares = 512;
	r.cpuset_cpus = "0-1,3";
	r.cpuset_mems = "0";
	r.memory_limit_in_bytes = 268435456;
	r.oom_score_adj = 937;
	hp[0].page_size = "2MB";
	hp[0].limit = 4194304;
	hp[1].page_size = "1GB";
	hp[1].limit = 0;
	r.hugepage_limits = hps;
	r.n_hugepage_limits = N(hps);
	f.linux.resources = &r;
	golden_container("container-resources", &f);

	/* restrict_oom_score_adj: no lower than the daemon's own. */
	r.oom_score_adj = -999;
	f.host.oom_score_adj_min = -500;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_int(json_integer_value(json_object_get(json_object_get(spec, "process"), "oomScoreAdj")),
	       -500, "resources: oom_score_adj -999 clamped to -500");
	json_decref(spec);
	r.oom_score_adj = 100;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_int(json_integer_value(json_object_get(json_object_get(spec, "process"), "oomScoreAdj")),
	       100, "resources: oom_score_adj 100 above the clamp stays");
	json_decref(spec);

	/* A swap limit of its own; none at all without swap accounting. */
	r.memory_swap_limit_in_bytes = 536870912;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	is_int(json_integer_value(json_object_get(
		       json_object_get(json_object_get(json_object_get(spec, "linux"), "resources"),
				       "memory"),
		       "swap")),
	       536870912, "resources: memory_swap_limit_in_bytes");
	json_decref(spec);
	f.host.swap_accounting = false;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(!json_object_get(
		   json_object_get(json_object_get(json_object_get(spec, "linux"), "resources"),
				   "memory"),
		   "swap"),
	   "resources: no swap limit where the kernel does not account swap");
	json_decref(spec);
}

/* cgroup v2 with the systemd driver: unified, a cgroup namespace, a slice. */
static void case_cgroup_v2(void)
{
	struct fixture f;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__LinuxContainerResources__UnifiedEntry u[2] = {
		RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT,
		RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT
	};
	Runtime__V1__LinuxContainerResources__UnifiedEntry *us[] = { &u[0], &u[1] };

	fixture_init(&f);
	f.host.cgroup_v2 = true;
	f.host.systemd_cgroup = true;
	f.pod.cgroup_parent = "kubepods-besteffort-pod4f8a3c2e.slice";
	r.memory_limit_in_bytes = 134217728;
	u[0].key = "memory.high";
	u[0].value = "100663296";
	u[1].key = "io.weight";
	u[1].value = "default 100";
	r.unified = us;
	r.n_unified = N(us);
	f.linux.resources = &r;
	golden_container("container-cgroup-v2-systemd", &f);
}

static void case_host_namespaces(void)
{
	struct fixture f;

	fixture_init(&f);
	f.pod_ns.network = f.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.pod_ns.pid = f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.pod_ns.ipc = f.ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.pod_config.hostname = "";
	f.pod.netns_path = "";
	golden_container("container-host-namespaces", &f);
}

static void case_pid_modes(void)
{
	struct fixture f;

	fixture_init(&f);
	f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	f.ns.target_id = "aaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccdddd";
	f.c.target_pid = 777;
	golden_container("container-pid-target", &f);

	/* The pod shares its process namespace: pause's. */
	fixture_init(&f);
	f.pod_ns.pid = f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
	golden_container("container-pid-pod", &f);
}

/* hostUsers: false as the kubelet sends it (65536 ids at a multiple of
 * 65536), were runtimed to allow it: the container joins netd's pin of the
 * pod's user namespace by path, with the mappings runc 1.1 wants
 * alongside; the pause (run by runc) joins the pin and the netns pin and
 * makes its other namespaces inside. */
static void case_userns(void)
{
	struct fixture f;
	Runtime__V1__IDMapping m = RUNTIME__V1__IDMAPPING__INIT, *ms[] = { &m };
	Runtime__V1__UserNamespace u = RUNTIME__V1__USER_NAMESPACE__INIT;

	m.host_id = 65536 * 7;
	m.length = 65536;
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	u.uids = u.gids = ms;
	u.n_uids = u.n_gids = 1;
	fixture_init(&f);
	f.host.user_namespaces = true;
	f.pod_ns.userns_options = f.ns.userns_options = &u;
	f.pod.userns_path = "/run/crisp/userns/" SANDBOX_ID;
	golden_container("container-userns-pod", &f);
	golden_sandbox("sandbox-userns-pod", &f);
}

static void case_sandbox(void)
{
	struct fixture f;
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry s[3] = {
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT,
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT,
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT,
	};
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *ss[] = { &s[0], &s[1], &s[2] };
	Runtime__V1__PodSandboxConfig__AnnotationsEntry a[2] = {
		RUNTIME__V1__POD_SANDBOX_CONFIG__ANNOTATIONS_ENTRY__INIT,
		RUNTIME__V1__POD_SANDBOX_CONFIG__ANNOTATIONS_ENTRY__INIT,
	};
	Runtime__V1__PodSandboxConfig__AnnotationsEntry *as[] = { &a[0], &a[1] };
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;

	fixture_init(&f);
	s[0].key = "net.ipv4.ip_unprivileged_port_start";
	s[0].value = "0";
	s[1].key = "kernel.shm_rmid_forced";
	s[1].value = "1";
	s[2].key = "net/ipv4/conf/all/forwarding";
	s[2].value = "1";
	f.pod_linux.sysctls = ss;
	f.pod_linux.n_sysctls = N(ss);
	a[0].key = "kubernetes.io/config.source";
	a[0].value = "api";
	a[1].key = "org.systemd.property.CPUQuota"; /* not for a pod to set */
	a[1].value = "1%";
	f.pod_config.annotations = as;
	f.pod_config.n_annotations = N(as);
	r.cpu_period = 100000;
	r.cpu_quota = 20000;
	r.cpu_shares = 204;
	r.memory_limit_in_bytes = 67108864;
	f.pod_linux.resources = &r;
	golden_sandbox("sandbox", &f);

	/* Host network and IPC, systemd cgroups, a non-default user. */
	fixture_init(&f);
	Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;
	uid.value = 1000;
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	f.pod_sc.run_as_user = &uid;
	f.pod_sc.seccomp = &sp;
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.pod_ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
	f.pod_config.hostname = "";
	f.pod.netns_path = NULL;
	f.host.systemd_cgroup = true;
	f.host.oom_score_adj_min = -500;
	f.pod.cgroup_parent = "kubepods-burstable-pod4f8a3c2e.slice";
	golden_sandbox("sandbox-host-network", &f);
}

/* ---- requests that must be refused -------------------------------------- */

static void expect_error(struct fixture *f, bool sandbox, enum crisp_errcode code,
			 const char *needle, const char *what)
{
	struct crisp_error err = { 0 };
	json_t *spec = sandbox ? spec_sandbox(&f->host, &f->pod, "/pause-root", &err)
			       : spec_container(&f->host, &f->pod, &f->c, &err);

	if (!ok(spec == NULL && err.code == code, "refused (%s): %s", err_code_name(code), what))
		diag("  got %s: %s", spec ? "a spec" : err_code_name(err.code), err.msg);
	like(err.msg, needle, "  message for: %s", what);
	json_decref(spec);
}

static void errors_user(void)
{
	struct fixture f;
	Runtime__V1__Int64Value v = RUNTIME__V1__INT64_VALUE__INIT;

	fixture_init(&f);
	f.sc.run_as_username = "ghost";
	expect_error(&f, false, CRISP_E_INVALID,
		     "container config: linux.security_context.run_as_username 'ghost' is not in "
		     "the image's /etc/passwd",
		     "unknown run_as_username");
	fixture_init(&f);
	f.image.user = "nobody2";
	expect_error(&f, false, CRISP_E_INVALID, "image user 'nobody2' is not in",
		     "unknown image user");
	fixture_init(&f);
	f.image.user = "app:nogroup2";
	expect_error(&f, false, CRISP_E_INVALID,
		     "group 'nogroup2' is not in the image's /etc/group", "unknown image group");
	fixture_init(&f);
	f.c.files.passwd = NULL;
	f.image.user = "app";
	expect_error(&f, false, CRISP_E_INVALID, "image user 'app' is not in",
		     "a user name and no /etc/passwd");
	fixture_init(&f);
	v.value = 10;
	f.sc.run_as_group = &v;
	expect_error(&f, false, CRISP_E_INVALID, "run_as_group is set without run_as_user",
		     "run_as_group alone");
	fixture_init(&f);
	v.value = -1;
	f.sc.run_as_user = &v;
	expect_error(&f, false, CRISP_E_INVALID, "run_as_user -1 is not a user id",
		     "negative run_as_user");
	fixture_init(&f);
	int64_t big[] = { 4294967295LL };
	f.sc.supplemental_groups = big;
	f.sc.n_supplemental_groups = 1;
	expect_error(&f, false, CRISP_E_INVALID, "supplemental_groups[0] 4294967295 is not",
		     "supplemental group out of range");
	fixture_init(&f);
	f.sc.supplemental_groups_policy = 2;
	expect_error(&f, false, CRISP_E_INVALID,
		     "container config: linux.security_context.supplemental_groups_policy 2 is "
		     "not Merge (0) or Strict (1)",
		     "unknown supplemental groups policy");
	fixture_init(&f);
	f.sc.supplemental_groups_policy = -1;
	expect_error(&f, false, CRISP_E_INVALID, "supplemental_groups_policy -1 is not",
		     "negative supplemental groups policy");
	fixture_init(&f);
	f.pod_sc.supplemental_groups_policy = 7;
	expect_error(&f, true, CRISP_E_INVALID,
		     "linux.security_context.supplemental_groups_policy 7 is not Merge (0) or "
		     "Strict (1)",
		     "unknown supplemental groups policy of a sandbox");
}

static void errors_caps(void)
{
	struct fixture f;
	Runtime__V1__Capability cap = RUNTIME__V1__CAPABILITY__INIT;
	char *fly[] = { "NET_ADMIN", "CAP_FLY" }, *res[] = { "SYS_RESOURCE" }, *all[] = { "ALL" };

	fixture_init(&f);
	cap.add_capabilities = fly;
	cap.n_add_capabilities = N(fly);
	f.sc.capabilities = &cap;
	expect_error(&f, false, CRISP_E_INVALID,
		     "add_capabilities[1] 'CAP_FLY' is not a capability", "unknown capability");
	cap.add_capabilities = res;
	cap.n_add_capabilities = N(res);
	expect_error(&f, false, CRISP_E_INVALID,
		     "CAP_SYS_RESOURCE is not in the host's bounding set",
		     "a capability the host lacks");
	cap.n_add_capabilities = 0;
	cap.add_ambient_capabilities = all;
	cap.n_add_ambient_capabilities = 1;
	expect_error(&f, false, CRISP_E_INVALID, "add_ambient_capabilities[0] 'ALL' is not a",
		     "ALL ambient capabilities");
}

static void errors_mounts(void)
{
	struct fixture f;
	Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT, m2 = RUNTIME__V1__MOUNT__INIT;
	Runtime__V1__Mount *mounts[] = { &m, &m2 };
	Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;
	char *suid[] = { "suid" };

	fixture_init(&f);
	f.config.mounts = mounts;
	f.config.n_mounts = 1;
	m.container_path = "data";
	m.host_path = "/srv/data";
	expect_error(&f, false, CRISP_E_INVALID,
		     "container config: mounts[0].container_path 'data' is not absolute",
		     "relative container_path");
	m.container_path = "/data";
	m.host_path = "srv/data";
	expect_error(&f, false, CRISP_E_INVALID, "mounts[0].host_path 'srv/data' is not absolute",
		     "relative host_path");
	m.host_path = "/srv/../etc";
	expect_error(&f, false, CRISP_E_INVALID, "mounts[0].host_path '/srv/../etc' contains '..'",
		     "'..' in host_path");
	m.host_path = "/srv/data";
	m.container_path = "/";
	expect_error(&f, false, CRISP_E_INVALID, "would hide the root filesystem", "mount over /");
	m.container_path = "/data";
	m.recursive_read_only = true;
	expect_error(&f, false, CRISP_E_INVALID, "recursive_read_only needs readonly",
		     "rro without readonly");
	m.readonly = true;
	f.host.rro_mounts = false;
	expect_error(&f, false, CRISP_E_INVALID, "no recursive read-only mounts",
		     "rro on an old kernel");
	m.recursive_read_only = false;
	m.mount_options = suid;
	m.n_mount_options = 1;
	expect_error(&f, false, CRISP_E_INVALID, "mount_options[0] 'suid' is not an allowed",
		     "mount option outside the allowlist");
	m.n_mount_options = 0;
	m2 = m;
	m2.container_path = "/data/";
	f.config.n_mounts = 2;
	expect_error(&f, false, CRISP_E_INVALID,
		     "mounts[1].container_path '/data' is mounted twice",
		     "the same destination twice");
	f.config.n_mounts = 1;
	img.image = "docker.io/library/nginx:1";
	m.image = &img;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED, "image volumes are not supported",
		     "an image volume mount");
}

static void errors_seccomp(void)
{
	struct fixture f;
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;

	fixture_init(&f);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	f.sc.seccomp = &sp;
	sp.localhost_ref = "/etc/seccomp/audit.json";
	expect_error(&f, false, CRISP_E_INVALID,
		     "'/etc/seccomp/audit.json' is not under /var/lib/kubelet/seccomp",
		     "Localhost profile outside the root");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/../../../etc/shadow";
	expect_error(&f, false, CRISP_E_INVALID, "contains '..'", "Localhost profile with '..'");
	sp.localhost_ref = "/var/lib/kubelet/seccompx/audit.json";
	expect_error(&f, false, CRISP_E_INVALID, "is not under", "a root-prefixed sibling");
	sp.localhost_ref = "profiles/audit.json";
	expect_error(&f, false, CRISP_E_INVALID, "is not absolute", "a relative Localhost ref");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/missing.json";
	expect_error(&f, false, CRISP_E_NOT_FOUND, "missing.json does not exist",
		     "a missing profile");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/notjson.json";
	expect_error(&f, false, CRISP_E_INVALID, "is not JSON", "a profile that is not JSON");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/listener.json";
	expect_error(&f, false, CRISP_E_INVALID, "listenerPath is not supported",
		     "a profile with a notify listener");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/badaction.json";
	expect_error(&f, false, CRISP_E_INVALID, "defaultAction 'SCMP_ACT_NOTIFY' is not supported",
		     "a profile with a notify action");
	sp.localhost_ref = "/var/lib/kubelet/seccomp/profiles/badarg.json";
	expect_error(&f, false, CRISP_E_INVALID, "args[0].index is not from 0 to 5",
		     "a profile with a bad argument index");
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	expect_error(&f, false, CRISP_E_INVALID,
		     "localhost_ref is set but the type is not Localhost",
		     "localhost_ref with Unconfined");
	f.sc.seccomp = NULL;
	f.sc.seccomp_profile_path = "runtime/strict";
	expect_error(&f, false, CRISP_E_INVALID, "'runtime/strict' is not a profile",
		     "an unknown deprecated profile string");
}

static void errors_strings(void)
{
	struct fixture f;
	Runtime__V1__KeyValue kv = RUNTIME__V1__KEY_VALUE__INIT;
	Runtime__V1__KeyValue *envs[] = { &kv };
	Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
	Runtime__V1__Mount *mounts[] = { &m };
	char *bad_utf8[] = { "/bin/echo", "\xff\xfe" };
	char long_path[5000];

	fixture_init(&f);
	f.config.envs = envs;
	f.config.n_envs = 1;
	kv.key = "SECRET";
	kv.value = BYTES("abc\0def");
	expect_error(&f, false, CRISP_E_INVALID, "envs[0].value of 'SECRET' contains a NUL byte",
		     "NUL in an env value");
	kv.key = "A=B";
	kv.value = BYTES("x");
	expect_error(&f, false, CRISP_E_INVALID, "envs[0].key 'A=B' is not a variable name",
		     "'=' in an env name");
	kv.key = "";
	expect_error(&f, false, CRISP_E_INVALID, "envs[0].key '' is not a variable name",
		     "an empty env name");

	fixture_init(&f);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	m.container_path = long_path;
	m.host_path = "/srv";
	f.config.mounts = mounts;
	f.config.n_mounts = 1;
	expect_error(&f, false, CRISP_E_INVALID,
		     "mounts[0].container_path is longer than 4096 bytes", "an oversized path");

	fixture_init(&f);
	f.config.command = bad_utf8;
	f.config.n_command = N(bad_utf8);
	expect_error(&f, false, CRISP_E_INVALID,
		     "command[1] '?"
		     "?' is not valid UTF-8",
		     "an argument that is not UTF-8");

	fixture_init(&f);
	f.pod_config.hostname = "a-hostname-that-is-far-too-long-for-the-kernel-to-accept-"
				"as-a-hostname";
	expect_error(&f, true, CRISP_E_INVALID, "sandbox hostname is longer than 64 bytes",
		     "an oversized hostname");

	fixture_init(&f);
	f.pod.hosts_path = "/run/crisp/x\n/etc/passwd";
	expect_error(&f, false, CRISP_E_INVALID,
		     "hosts_path '/run/crisp/x?/etc/passwd' contains a "
		     "control character",
		     "a newline in a pod path");

	fixture_init(&f);
	f.c.container_id = "../../etc";
	expect_error(&f, false, CRISP_E_INVALID, "container id '../../etc' is not valid",
		     "a container id with slashes");

	fixture_init(&f);
	f.image.n_cmd = 0;
	expect_error(&f, false, CRISP_E_INVALID, "no command", "nothing to run");
	f.image.working_dir = "relative/dir";
	f.image.n_cmd = 1;
	expect_error(&f, false, CRISP_E_INVALID, "image working_dir 'relative/dir' is not absolute",
		     "a relative working directory");
}

static void errors_other(void)
{
	struct fixture f;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__LinuxContainerResources__UnifiedEntry u =
		RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
	Runtime__V1__LinuxContainerResources__UnifiedEntry *us[] = { &u };
	Runtime__V1__HugepageLimit hp = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
	Runtime__V1__HugepageLimit *hps[] = { &hp };
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry s =
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *ss[] = { &s };
	Runtime__V1__Device dev = RUNTIME__V1__DEVICE__INIT;
	Runtime__V1__Device *devs[] = { &dev };
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;

	fixture_init(&f);
	f.sc.privileged = true;
	expect_error(&f, false, CRISP_E_INVALID, "privileged: the sandbox is not privileged",
		     "privileged container in an unprivileged pod");

	fixture_init(&f);
	f.linux.resources = &r;
	u.key = "memory.max";
	u.value = "1000000";
	r.unified = us;
	r.n_unified = 1;
	expect_error(&f, false, CRISP_E_INVALID, "unified needs cgroup v2", "unified on v1");
	f.host.cgroup_v2 = true;
	u.key = "../../cgroup.procs";
	expect_error(&f, false, CRISP_E_INVALID, "not a cgroup v2 file name",
		     "unified key with ..");
	r.n_unified = 0;
	r.hugepage_limits = hps;
	r.n_hugepage_limits = 1;
	hp.page_size = "2M";
	expect_error(&f, false, CRISP_E_INVALID, "page_size '2M' is not a page size",
		     "a bad hugepage size");
	r.n_hugepage_limits = 0;
	r.cpuset_cpus = "0-";
	expect_error(&f, false, CRISP_E_INVALID, "cpuset_cpus '0-' is not a CPU list",
		     "a bad cpuset");
	r.cpuset_cpus = "";
	r.cpu_quota = 10;
	expect_error(&f, false, CRISP_E_INVALID, "cpu_quota 10 is below 1000", "a tiny CPU quota");
	r.cpu_quota = 0;
	r.oom_score_adj = 1001;
	expect_error(&f, false, CRISP_E_INVALID, "oom_score_adj 1001",
		     "oom_score_adj out of range");

	fixture_init(&f);
	s.key = "net.ipv4.ip_forward";
	s.value = "1";
	f.pod_linux.sysctls = ss;
	f.pod_linux.n_sysctls = 1;
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	expect_error(&f, true, CRISP_E_INVALID, "'net.ipv4.ip_forward' would change the host",
		     "a net sysctl with the host network");
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	s.key = "kernel.panic";
	expect_error(&f, true, CRISP_E_INVALID, "'kernel.panic' is not a namespaced sysctl",
		     "a sysctl of the whole host");
	s.key = "net.ipv4..conf";
	expect_error(&f, true, CRISP_E_INVALID, "is not a sysctl name", "a sysctl name with '..'");
	s.key = "net/ipv4/conf/eth0.100/forwarding";
	expect_error(&f, true, CRISP_E_INVALID, "runc cannot set a sysctl",
		     "a slash-separated sysctl with a dotted component");
	f.pod_linux.n_sysctls = 0;
	f.pod.netns_path = "";
	expect_error(&f, true, CRISP_E_INVALID, "no netns path was given",
		     "a pod network without a netns");

	fixture_init(&f);
	f.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	f.ns.target_id = "abc";
	expect_error(&f, false, CRISP_E_INVALID, "TARGET needs a running target container",
		     "pid TARGET without the target's pid");
	fixture_init(&f);
	f.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	expect_error(&f, false, CRISP_E_INVALID, "network 2 differs from the sandbox's 0",
		     "a container network mode unlike the pod's");
	fixture_init(&f);
	f.pod.pause_pid = 0;
	expect_error(&f, false, CRISP_E_PRECONDITION, "pause process is not running",
		     "joining a pod whose pause is gone");

	fixture_init(&f);
	dev.host_path = "/dev/nvidia0";
	dev.container_path = "/dev/nvidia0";
	dev.permissions = "rwx";
	f.config.devices = devs;
	f.config.n_devices = 1;
	expect_error(&f, false, CRISP_E_INVALID, "permissions 'rwx' is not a combination",
		     "bad device permissions");
	dev.permissions = "rw";
	expect_error(&f, false, CRISP_E_NOT_FOUND, "/dev/nvidia0 does not exist",
		     "a device the host lacks");
	dev.host_path = "/dev/not-a-device";
	expect_error(&f, false, CRISP_E_INVALID, "is not a device",
		     "a host path that is no device");
	f.host.ops = NULL;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED, "no way to look up host devices",
		     "devices without a lookup callback");

	fixture_init(&f);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "k8s-nginx";
	f.sc.apparmor = &sp;
	expect_error(&f, false, CRISP_E_INVALID, "AppArmor is not enabled on this host",
		     "an AppArmor profile without AppArmor");
}

/* ---- cgroups path, signals, the seccomp profile ------------------------- */

static void check_cgroups_path(bool systemd, const char *parent, const char *want)
{
	struct spec_host host = { .systemd_cgroup = systemd };
	char *got = spec_cgroups_path(&host, parent, "abc123");

	is_str(got, want, "cgroups path (%s) of '%s'", systemd ? "systemd" : "cgroupfs",
	       parent ? parent : "(null)");
	free(got);
}

static void test_cgroups_path(void)
{
	check_cgroups_path(false, "/kubepods/besteffort/pod1",
			   "/kubepods/besteffort/pod1/crisp-abc123");
	check_cgroups_path(false, "kubepods//burstable/./pod2/",
			   "/kubepods/burstable/pod2/crisp-abc123");
	check_cgroups_path(false, "", "/crisp-abc123");
	check_cgroups_path(false, NULL, "/crisp-abc123");
	check_cgroups_path(false, "/kubepods/../etc", NULL);
	check_cgroups_path(false, "/kube:pods", NULL);
	check_cgroups_path(true, "kubepods-besteffort-pod1.slice",
			   "kubepods-besteffort-pod1.slice:crisp:abc123");
	check_cgroups_path(
		true, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice",
		"kubepods-besteffort-pod1.slice:crisp:abc123");
	check_cgroups_path(true, "/kubepods/besteffort/pod-1",
			   "kubepods-besteffort-pod_1.slice:crisp:abc123");
	check_cgroups_path(true, "", "system.slice:crisp:abc123");
	check_cgroups_path(true, "/a\nb", NULL);
	{
		struct spec_host host = { 0 };
		char *got = spec_cgroups_path(&host, "/x", "../etc");

		ok(got == NULL, "cgroups path: an id with '/' is refused");
		free(got);
	}
}

static void test_signals(void)
{
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{ "SIGTERM", 15 }, { "TERM", 15 },     { "15", 15 },         { "sigkill", 9 },
		{ "SIGQUIT", 3 },  { "INT", 2 },       { "SIGRTMIN", 34 },   { "SIGRTMIN+3", 37 },
		{ "RTMAX-2", 62 }, { "SIGRTMAX", 64 }, { "SIGWINCH", 28 },   { "SIGUSR1", 10 },
		{ "64", 64 },      { "65", -1 },       { "0", -1 },          { "", -1 },
		{ "SIGFOO", -1 },  { "SIG", -1 },      { "SIGRTMIN-1", -1 }, { "SIGRTMIN+31", -1 },
		{ "-9", -1 },      { "9x", -1 },       { "SIGTERM ", -1 },   { "RTMIN+", -1 },
	};

	for (size_t i = 0; i < N(cases); i++)
		is_int(spec_signal_parse(cases[i].s), cases[i].want, "signal '%s'", cases[i].s);
	is_int(spec_signal_parse(NULL), -1, "signal NULL");
}

static json_t *profile_names(json_t *profile, const char *action, bool args)
{
	json_t *names = json_array(), *rule;
	size_t i;

	json_array_foreach(json_object_get(profile, "syscalls"), i, rule)
	{
		if (strcmp(json_string_value(json_object_get(rule, "action")), action) != 0 ||
		    (json_object_get(rule, "args") != NULL) != args)
			continue;
		json_array_extend(names, json_object_get(rule, "names"));
	}
	return names;
}

static bool has_name(json_t *names, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(names, i, n) if (strcmp(json_string_value(n), name) == 0) return true;
	return false;
}

/* Every name is one libseccomp knows, and a filter made of the x86_64
 * profile's rules is one libseccomp accepts (without loading it). */
static void test_seccomp_default(void)
{
	const uint64_t all = BIT(41) - 1;
	const uint64_t defaults = BIT(0) | BIT(1) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) |
				  BIT(8) | BIT(10) | BIT(13) | BIT(18) | BIT(27) | BIT(29) |
				  BIT(31);
	json_t *p = spec_seccomp_default(all, "x86_64"), *rule, *name;
	json_t *plain = spec_seccomp_default(defaults, "x86_64"), *allowed, *filtered;
	json_t *arm = spec_seccomp_default(defaults, "aarch64");
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	size_t i, j, unknown = 0, rejected = 0, rules = 0;

	json_array_foreach(json_object_get(p, "syscalls"), i, rule)
	{
		json_array_foreach(json_object_get(rule, "names"), j, name)
		{
			int nr = seccomp_syscall_resolve_name(json_string_value(name));

			if (nr == __NR_SCMP_ERROR) {
				diag("libseccomp does not know '%s'", json_string_value(name));
				unknown++;
				continue;
			}
			/* Only the unconditional allow list: the per-argument
			 * and errno rules would conflict with it by design. */
			if (i != 0)
				continue;
			rules++;
			if (nr >= 0 && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0) {
				diag("libseccomp refuses '%s'", json_string_value(name));
				rejected++;
			}
		}
	}
	is_int(unknown, 0, "seccomp default: every syscall name resolves in libseccomp");
	is_int(rejected, 0, "seccomp default: libseccomp accepts the %zu allow rules", rules);
	ok(rules > 300, "seccomp default: the allow list is the full one (%zu)", rules);
	seccomp_release(ctx);

	allowed = profile_names(plain, "SCMP_ACT_ALLOW", false);
	filtered = profile_names(plain, "SCMP_ACT_ALLOW", true);
	is_str(json_string_value(json_object_get(plain, "defaultAction")), "SCMP_ACT_ERRNO",
	       "seccomp default: everything else fails");
	ok(has_name(allowed, "read") && has_name(allowed, "arch_prctl") &&
		   has_name(allowed, "chroot"),
	   "seccomp default: read, arch_prctl and chroot (CAP_SYS_CHROOT) allowed");
	ok(!has_name(allowed, "mount") && !has_name(allowed, "unshare") &&
		   !has_name(allowed, "kexec_load") && !has_name(allowed, "io_uring_setup") &&
		   !has_name(allowed, "bpf"),
	   "seccomp default: no mount, unshare, kexec_load, io_uring or bpf without caps");
	ok(has_name(filtered, "clone") && has_name(filtered, "socket") &&
		   has_name(filtered, "personality") && !has_name(allowed, "socket"),
	   "seccomp default: clone, socket and personality only with argument filters");
	json_decref(allowed);
	json_decref(filtered);
	allowed = profile_names(p, "SCMP_ACT_ALLOW", false);
	ok(has_name(allowed, "mount") && has_name(allowed, "clone3") && has_name(allowed, "reboot"),
	   "seccomp default: CAP_SYS_ADMIN and CAP_SYS_BOOT bring mount, clone3, reboot");
	json_decref(allowed);
	filtered = profile_names(p, "SCMP_ACT_ALLOW", true);
	ok(!has_name(filtered, "clone"), "seccomp default: with CAP_SYS_ADMIN clone is unfiltered");
	json_decref(filtered);
	allowed = profile_names(arm, "SCMP_ACT_ALLOW", false);
	ok(has_name(allowed, "set_tls") && !has_name(allowed, "arch_prctl") &&
		   json_array_size(json_object_get(arm, "architectures")) == 2,
	   "seccomp default: aarch64 has its own arches and syscalls");
	json_decref(allowed);

	/* Sorted without duplicates, so a review sees what is there. */
	name = json_object_get(json_array_get(json_object_get(p, "syscalls"), 0), "names");
	for (j = 1, unknown = 0; j < json_array_size(name); j++)
		if (strcmp(json_string_value(json_array_get(name, j - 1)),
			   json_string_value(json_array_get(name, j))) >= 0) {
			diag("not sorted: '%s'", json_string_value(json_array_get(name, j)));
			unknown++;
		}
	is_int(unknown, 0, "seccomp default: the allow list is sorted and has no duplicates");
	json_decref(p);
	json_decref(plain);
	json_decref(arm);
}

static bool has_userns(json_t *spec)
{
	json_t *ns = json_object_get(json_object_get(spec, "linux"), "namespaces"), *v;
	size_t i;

	json_array_foreach(ns, i, v) if (streq(json_string_value(json_object_get(v, "type")) ?: "",
					       "user")) return true;
	return json_object_get(json_object_get(spec, "linux"), "uidMappings") != NULL;
}

/* The checks critest's UserNamespaces tests and containerd make, then the
 * refusal of a well-formed mode POD while crisp cannot run it; the same
 * function guards RunPodSandbox's reservation in runtimed/pod.c. */
static void errors_userns(void)
{
	static const char F[] = "linux.security_context.namespace_options";
	struct fixture f;
	Runtime__V1__UserNamespace pod_u = RUNTIME__V1__USER_NAMESPACE__INIT;
	Runtime__V1__UserNamespace ctr_u = RUNTIME__V1__USER_NAMESPACE__INIT;
	Runtime__V1__IDMapping m0 = RUNTIME__V1__IDMAPPING__INIT;
	Runtime__V1__IDMapping m1 = RUNTIME__V1__IDMAPPING__INIT;
	Runtime__V1__IDMapping g0 = RUNTIME__V1__IDMAPPING__INIT;
	Runtime__V1__IDMapping *one[] = { &m0 }, *two[] = { &m0, &m1 }, *gids[] = { &g0 };
	Runtime__V1__NamespaceOption o = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	struct crisp_error err = { 0 };
	json_t *spec;

	/* critest's mapping: container 0 at host 1000, 100000 ids */
#define RESET_MAPS()                                                                     \
	do {                                                                             \
		m0 = (Runtime__V1__IDMapping)RUNTIME__V1__IDMAPPING__INIT;               \
		m0.host_id = 1000, m0.container_id = 0, m0.length = 100000;              \
		m1 = m0, m1.host_id = 2000;                                              \
		g0 = m0;                                                                 \
		pod_u = (Runtime__V1__UserNamespace)RUNTIME__V1__USER_NAMESPACE__INIT;   \
		pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;                           \
		pod_u.uids = one, pod_u.n_uids = 1, pod_u.gids = gids, pod_u.n_gids = 1; \
		fixture_init(&f);                                                        \
		f.pod_ns.userns_options = &pod_u;                                        \
	} while (0)

	RESET_MAPS();
	expect_error(&f, true, CRISP_E_UNIMPLEMENTED,
		     "sandbox config: sandbox linux.security_context.namespace_options."
		     "userns_options: user namespaces are not supported on this host",
		     "a well-formed mode POD (not runnable yet)");
	RESET_MAPS();
	pod_u.uids = two, pod_u.n_uids = 2;
	expect_error(&f, true, CRISP_E_INVALID, "mode POD needs exactly one uid mapping, got 2",
		     "two uid mappings (critest)");
	RESET_MAPS();
	pod_u.n_gids = 0;
	expect_error(&f, true, CRISP_E_INVALID, "mode POD needs exactly one gid mapping, got 0",
		     "no gid mapping");
	RESET_MAPS();
	pod_u.n_uids = 0, pod_u.n_gids = 0;
	expect_error(&f, true, CRISP_E_INVALID, "mode POD needs exactly one uid mapping, got 0",
		     "mode POD without mappings (an empty userns_options)");
	RESET_MAPS();
	m0.container_id = 1;
	expect_error(&f, true, CRISP_E_INVALID,
		     "uids[0]: container uid 0 is not mapped (the range starts at 1)",
		     "container id 0 not mapped (critest)");
	RESET_MAPS();
	g0.container_id = 5;
	expect_error(&f, true, CRISP_E_INVALID, "gids[0]: container gid 0 is not mapped",
		     "container gid 0 not mapped");
	RESET_MAPS();
	m0.length = 0;
	expect_error(&f, true, CRISP_E_INVALID, "uids[0]: length 0 maps no id", "length 0");
	RESET_MAPS();
	m0.host_id = 4294967295u - 9, m0.length = 10;
	expect_error(&f, true, CRISP_E_INVALID, "passes the last id 4294967294",
		     "a host range up to (uid_t)-1");
	RESET_MAPS();
	m0.host_id = 4294967295u - 10, m0.length = 10;
	expect_error(&f, true, CRISP_E_UNIMPLEMENTED, "not supported on this host",
		     "a host range ending at 4294967294 is well-formed");
	RESET_MAPS();
	g0.length = 4294967295u;
	expect_error(&f, true, CRISP_E_INVALID, "passes the last id",
		     "a gid length that overflows 32 bits");
	RESET_MAPS();
	m0.host_id = 0;
	expect_error(&f, true, CRISP_E_INVALID,
		     "uids[0]: host range 0-99999 holds the host's root user 0",
		     "a range holding the host's root");
	RESET_MAPS();
	one[0] = NULL;
	expect_error(&f, true, CRISP_E_INVALID, "uids[0] is empty", "a NULL mapping");
	one[0] = &m0;
	RESET_MAPS();
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	pod_u.n_uids = pod_u.n_gids = 0;
	expect_error(&f, true, CRISP_E_INVALID,
		     "mode CONTAINER is not supported for a user namespace",
		     "mode CONTAINER (critest)");
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	expect_error(&f, true, CRISP_E_INVALID, "mode TARGET is not supported for a user namespace",
		     "mode TARGET (critest)");
	pod_u.mode = 7;
	expect_error(&f, true, CRISP_E_INVALID, "mode 7 is not a namespace mode",
		     "an unknown mode");
	RESET_MAPS();
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	expect_error(&f, true, CRISP_E_INVALID, "takes no mappings, got 1 uid and 1 gid mappings",
		     "mode NODE with mappings");

	RESET_MAPS();
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	expect_error(&f, true, CRISP_E_INVALID, "cannot go with the host's network namespace",
		     "mode POD with the host's network");
	RESET_MAPS();
	f.pod_ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
	expect_error(&f, true, CRISP_E_INVALID, "cannot go with the host's pid namespace",
		     "mode POD with the host's pid namespace");

	/* Supported (runtimed's switch, pod.c): the pause and containers
	 * join netd's pin, which must be given; a pod without a user
	 * namespace takes none. */
	RESET_MAPS();
	f.host.user_namespaces = true;
	expect_error(&f, true, CRISP_E_INVALID, "but no userns path was given",
		     "the sandbox spec of a user-namespaced pod without its pin");
	f.ns.userns_options = &pod_u;
	expect_error(&f, false, CRISP_E_INVALID, "but no userns path was given",
		     "a container of a user-namespaced pod without its pin");
	f.ns.userns_options = NULL;
	f.pod.userns_path = "userns/" SANDBOX_ID;
	expect_error(&f, true, CRISP_E_INVALID, "userns_path", "a relative userns path");
	f.pod.userns_path = "/run/crisp/userns/" SANDBOX_ID;
	spec = spec_sandbox(&f.host, &f.pod, "/pause-root", &err);
	ok(spec && has_userns(spec), "the sandbox spec of a user-namespaced pod joins its pin (%s)",
	   spec ? "" : err.msg);
	json_decref(spec);
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	pod_u.n_uids = pod_u.n_gids = 0;
	expect_error(&f, true, CRISP_E_INVALID, "a userns path was given for a pod without",
		     "a userns path for a pod in the host's user namespace");
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	pod_u.n_uids = pod_u.n_gids = 1;
	ctr_u = pod_u;
	f.ns.userns_options = &ctr_u;
	ctr_u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	ctr_u.n_uids = ctr_u.n_gids = 0;
	expect_error(&f, false, CRISP_E_INVALID,
		     "linux.security_context.namespace_options.userns_options differ from the "
		     "sandbox's",
		     "a container of a POD pod asking for the host's");
	f.ns.userns_options = NULL;
	expect_error(&f, false, CRISP_E_INVALID, "userns_options differ from the sandbox's",
		     "a container of a POD pod without userns_options");
	ctr_u = pod_u;
	f.ns.userns_options = &ctr_u;
	m1 = m0, m1.length = 65536;
	ctr_u.uids = (Runtime__V1__IDMapping *[]){ &m1 };
	expect_error(&f, false, CRISP_E_INVALID, "userns_options differ from the sandbox's",
		     "a container with another uid range");
	ctr_u = pod_u;
	f.pod.pause_pid = 0;
	expect_error(&f, false, CRISP_E_PRECONDITION, "no ipc namespace to join",
		     "a user-namespaced pod whose pause is gone");
	f.pod.userns_path = NULL;

	/* mode NODE without mappings is the host's namespace: a spec without
	 * a user namespace, for the pod and for a container repeating it */
	RESET_MAPS();
	pod_u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	pod_u.n_uids = pod_u.n_gids = 0;
	spec = spec_sandbox(&f.host, &f.pod, "/pause-root", &err);
	ok(spec && !has_userns(spec), "mode NODE: a sandbox spec without a user namespace (%s)",
	   err.msg);
	json_decref(spec);
	ctr_u = pod_u;
	f.ns.userns_options = &ctr_u;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec && !has_userns(spec), "mode NODE: a container repeating it, no user namespace (%s)",
	   err.msg);
	json_decref(spec);
	f.ns.userns_options = NULL;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec != NULL, "mode NODE pod, container without userns_options: a spec (%s)", err.msg);
	json_decref(spec);

	/* a container may not ask for another user namespace than its pod's */
	fixture_init(&f);
	ctr_u = (Runtime__V1__UserNamespace)RUNTIME__V1__USER_NAMESPACE__INIT;
	ctr_u.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	f.ns.userns_options = &ctr_u;
	expect_error(&f, false, CRISP_E_INVALID,
		     "container config: linux.security_context.namespace_options.userns_options: "
		     "mode CONTAINER is not supported",
		     "a container asking for mode CONTAINER");
	RESET_MAPS();
	f.pod_ns.userns_options = NULL;
	f.ns.userns_options = &pod_u;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED, "not supported on this host",
		     "a container asking for mode POD");

	/* the function itself, as pod.c calls it at reservation */
	RESET_MAPS();
	o.userns_options = &pod_u;
	memset(&err, 0, sizeof(err));
	is_int(spec_userns_check(F, &o, false, &err), -1, "spec_userns_check refuses mode POD");
	is_int(err.code, CRISP_E_UNIMPLEMENTED, "  UNIMPLEMENTED");
	like(err.msg, "linux.security_context.namespace_options.userns_options: user namespaces",
	     "  message names the field");
	memset(&err, 0, sizeof(err));
	is_int(spec_userns_check(F, NULL, false, &err), 0, "no namespace options pass");
	o.userns_options = NULL;
	is_int(spec_userns_check(F, &o, false, &err), 0, "no userns_options pass");
#undef RESET_MAPS
}

/* Fields spec generation has nothing to put in the spec for: refused
 * rather than dropped (or, for SELinux on a host without it, ignored). */
static void errors_unapplied_fields(void)
{
	struct fixture f;
	struct crisp_error err = { 0 };
	Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
	Runtime__V1__Mount *mounts[] = { &m };
	Runtime__V1__CDIDevice cdi = RUNTIME__V1__CDIDEVICE__INIT;
	Runtime__V1__CDIDevice *cdis[] = { &cdi };
	Runtime__V1__ContainerConfig__AnnotationsEntry ann =
		RUNTIME__V1__CONTAINER_CONFIG__ANNOTATIONS_ENTRY__INIT;
	Runtime__V1__ContainerConfig__AnnotationsEntry *anns[] = { &ann };
	Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	json_t *spec;

	fixture_init(&f);
	cdi.name = "nvidia.com/gpu=0";
	f.config.cdi_devices = cdis;
	f.config.n_cdi_devices = 1;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED,
		     "container config: CDI_devices: CDI devices are not supported",
		     "a CDI device");
	fixture_init(&f);
	ann.key = "cdi.k8s.io/nvidia-device-plugin_abc";
	ann.value = "nvidia.com/gpu=0";
	f.config.annotations = anns;
	f.config.n_annotations = 1;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED,
		     "annotations[0] 'cdi.k8s.io/nvidia-device-plugin_abc': CDI devices are not "
		     "supported",
		     "a CDI annotation");

	fixture_init(&f);
	f.config.mounts = mounts;
	f.config.n_mounts = 1;
	m.container_path = "/data";
	m.host_path = "/srv/data";
	m.image_sub_path = "sub/dir";
	expect_error(&f, false, CRISP_E_INVALID,
		     "container config: mounts[0].image_sub_path 'sub/dir' is set without an image",
		     "image_sub_path without an image");

	/* SELinux disabled (this host): labels and relabel are ignored. */
	fixture_init(&f);
	se.type = "spc_t";
	se.level = "s0:c1,c2";
	f.sc.selinux_options = &se;
	f.pod_sc.selinux_options = &se;
	m = (Runtime__V1__Mount)RUNTIME__V1__MOUNT__INIT;
	m.container_path = "/data";
	m.host_path = "/srv/data";
	m.selinux_relabel = true;
	f.config.mounts = mounts;
	f.config.n_mounts = 1;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec != NULL, "SELinux disabled: container selinux_options and relabel ignored (%s)",
	   err.msg);
	json_decref(spec);
	spec = spec_sandbox(&f.host, &f.pod, "/pause-root", &err);
	ok(spec != NULL, "SELinux disabled: sandbox selinux_options ignored (%s)", err.msg);
	json_decref(spec);
	/* SELinux enabled: crisp cannot set the label asked for. */
	f.host.selinux = true;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED,
		     "container config: linux.security_context.selinux_options: SELinux labels "
		     "are not supported",
		     "container selinux_options with SELinux enabled");
	expect_error(&f, true, CRISP_E_UNIMPLEMENTED,
		     "sandbox config: linux.security_context.selinux_options: SELinux labels are "
		     "not supported",
		     "sandbox selinux_options with SELinux enabled");
	f.sc.selinux_options = NULL;
	expect_error(&f, false, CRISP_E_UNIMPLEMENTED,
		     "mounts[0].selinux_relabel: SELinux labels are not supported",
		     "selinux_relabel with SELinux enabled");
	f.config.n_mounts = 0;
	f.pod_sc.selinux_options = NULL;
	se = (Runtime__V1__SELinuxOption)RUNTIME__V1__SELINUX_OPTION__INIT;
	f.sc.selinux_options = &se;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec != NULL, "SELinux enabled: empty selinux_options pass (%s)", err.msg);
	json_decref(spec);

	/* The sandbox's namespace modes. */
	fixture_init(&f);
	f.pod_ns.pid = (Runtime__V1__NamespaceMode)7;
	expect_error(&f, true, CRISP_E_INVALID,
		     "sandbox config: linux.security_context.namespace_options.pid 7 is not a "
		     "namespace mode",
		     "sandbox pid mode 7");
	is_int(spec_sandbox_check(&f.host, &f.pod_config, &err), -1,
	       "spec_sandbox_check refuses pid 7 too");
	f.pod_ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	expect_error(&f, true, CRISP_E_INVALID,
		     "namespace_options.pid TARGET is not a mode for a sandbox",
		     "sandbox pid TARGET");
	f.pod_ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	expect_error(&f, true, CRISP_E_INVALID,
		     "namespace_options.network CONTAINER is not a mode for a sandbox",
		     "sandbox network CONTAINER");
	f.pod_ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	f.pod_ns.ipc = (Runtime__V1__NamespaceMode)-1;
	expect_error(&f, true, CRISP_E_INVALID, "namespace_options.ipc -1 is not a namespace mode",
		     "sandbox ipc -1");
	f.pod_ns.ipc = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	expect_error(&f, true, CRISP_E_INVALID,
		     "namespace_options.ipc TARGET is not a mode for a sandbox",
		     "sandbox ipc TARGET");
	/* What the kubelet sends passes. */
	for (int pid = 0; pid <= 2; pid++) {
		fixture_init(&f);
		f.pod_ns.pid = (Runtime__V1__NamespaceMode)pid;
		f.pod_ns.network = f.pod_ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
		is_int(spec_sandbox_check(&f.host, &f.pod_config, &err), 0,
		       "sandbox pid mode %d with host network and ipc passes", pid);
	}

	/* The pod's resources and overhead, under CreateContainer's rules. */
	fixture_init(&f);
	r.memory_limit_in_bytes = -1;
	f.pod_linux.overhead = &r;
	expect_error(&f, true, CRISP_E_INVALID,
		     "sandbox config: linux.overhead.memory_limit_in_bytes -1 is negative",
		     "negative overhead memory");
	fixture_init(&f);
	r.memory_limit_in_bytes = 0;
	r.cpu_shares = -2;
	f.pod_linux.resources = &r;
	expect_error(&f, true, CRISP_E_INVALID,
		     "sandbox config: linux.resources.cpu_shares -2 is out of range",
		     "negative pod cpu_shares");
	r.cpu_shares = 1024;
	r.cpu_quota = 50000;
	r.cpu_period = 100000;
	r.memory_limit_in_bytes = 1 << 30;
	is_int(spec_sandbox_check(&f.host, &f.pod_config, &err), 0, "valid pod resources pass");

	/* stop_signal outside the enum. */
	fixture_init(&f);
	f.config.stop_signal = (Runtime__V1__Signal)66;
	expect_error(&f, false, CRISP_E_INVALID, "container config: stop_signal 66 is not a signal",
		     "stop_signal 66");
	f.config.stop_signal = RUNTIME__V1__SIGNAL__SIGNAL_SIGUSR1;
	spec = spec_container(&f.host, &f.pod, &f.c, &err);
	ok(spec != NULL, "stop_signal SIGUSR1 passes (%s)", err.msg);
	json_decref(spec);
}

static void test_stop_signals(void)
{
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT), 0, "RUNTIME_DEFAULT");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGABRT), SIGABRT, "SIGABRT");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGCLD), SIGCHLD, "SIGCLD");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGTERM), SIGTERM, "SIGTERM");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGUSR1), SIGUSR1, "SIGUSR1");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGXFSZ), SIGXFSZ, "SIGXFSZ");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMIN), 34, "SIGRTMIN");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMINPLUS15), 49, "SIGRTMIN+15");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAXMINUS14), 50, "SIGRTMAX-14");
	is_int(spec_stop_signal(RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX), 64, "SIGRTMAX");
	is_int(spec_stop_signal((Runtime__V1__Signal)66), -1, "66 is outside the enum");
	is_int(spec_stop_signal((Runtime__V1__Signal)-1), -1, "-1 is outside the enum");
	is_int(spec_signal_enum(SIGUSR1), RUNTIME__V1__SIGNAL__SIGNAL_SIGUSR1, "enum of SIGUSR1");
	is_int(spec_signal_enum(SIGCHLD), RUNTIME__V1__SIGNAL__SIGNAL_SIGCHLD,
	       "enum of SIGCHLD is SIGCHLD, not SIGCLD");
	is_int(spec_signal_enum(SIGTERM), RUNTIME__V1__SIGNAL__SIGNAL_SIGTERM, "enum of SIGTERM");
	is_int(spec_signal_enum(64), RUNTIME__V1__SIGNAL__SIGNAL_SIGRTMAX, "enum of 64");
	is_int(spec_signal_enum(32), RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT,
	       "32 has no enum value");
}

/* ---- spec_resources: the update's resources, as create makes them ------- */

static json_t *update_resources(const struct spec_host *host,
				const Runtime__V1__LinuxContainerResources *r, int *adj,
				struct crisp_error *err)
{
	err_clear(err);
	return spec_resources(host, "resources update", r, adj, err);
}

static void test_spec_resources(void)
{
	struct spec_host host = { .swap_accounting = true, .oom_score_adj_min = INT32_MIN };
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__HugepageLimit hp = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
	Runtime__V1__HugepageLimit *hps[] = { &hp, &hp };
	Runtime__V1__LinuxContainerResources__UnifiedEntry ue =
		RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
	Runtime__V1__LinuxContainerResources__UnifiedEntry *ues[] = { &ue };
	struct crisp_error err = { 0 };
	_cleanup_free_ char *text = NULL;
	json_t *res;
	int adj = 12345;

	/* Nothing set: nothing to change, and oom_score_adj 0. */
	res = update_resources(&host, &r, &adj, &err);
	ok(res && json_object_size(res) == 0, "spec_resources: an empty update is {}");
	is_int(adj, 0, "spec_resources: oom_score_adj 0 when not set");
	json_decref(res);

	/* A memory limit alone: swap follows it where swap is accounted. */
	r.memory_limit_in_bytes = 33554432;
	res = update_resources(&host, &r, NULL, &err);
	text = res ? json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	is_str(text, "{\"memory\":{\"limit\":33554432,\"swap\":33554432}}",
	       "spec_resources: swap defaults to the limit");
	json_decref(res);
	free(TAKE_PTR(text));
	host.swap_accounting = false;
	res = update_resources(&host, &r, NULL, &err);
	text = res ? json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	is_str(text, "{\"memory\":{\"limit\":33554432}}",
	       "spec_resources: no swap without swap accounting");
	json_decref(res);
	free(TAKE_PTR(text));
	host.swap_accounting = true;
	r.memory_swap_limit_in_bytes = -1;
	res = update_resources(&host, &r, NULL, &err);
	is_int(json_integer_value(json_object_get(json_object_get(res, "memory"), "swap")), -1,
	       "spec_resources: swap -1 (unlimited) kept");
	json_decref(res);
	r.memory_swap_limit_in_bytes = 16777216;
	ok(!update_resources(&host, &r, NULL, &err) && err.code == CRISP_E_INVALID,
	   "spec_resources: swap below the limit refused");
	is_str(err.msg,
	       "resources update: linux.resources.memory_swap_limit_in_bytes 16777216 is below "
	       "the memory limit",
	       "spec_resources: the error names the update and the field");
	r.memory_swap_limit_in_bytes = 0;
	r.memory_limit_in_bytes = 0;

	/* The create checks: the same messages, after the caller's prefix. */
	r.cpu_shares = 1000000;
	ok(!update_resources(&host, &r, NULL, &err), "spec_resources: cpu_shares 1000000 refused");
	is_str(err.msg, "resources update: linux.resources.cpu_shares 1000000 is out of range",
	       "spec_resources: cpu_shares message as at create");
	r.cpu_shares = 2;
	r.cpuset_cpus = "0-";
	ok(!update_resources(&host, &r, NULL, &err) && strstr(err.msg, "is not a CPU list"),
	   "spec_resources: a bad cpuset list refused");
	r.cpuset_cpus = "0-1";
	hp.page_size = "2MB";
	hp.limit = 4194304;
	r.hugepage_limits = hps;
	r.n_hugepage_limits = 2;
	ok(!update_resources(&host, &r, NULL, &err) && strstr(err.msg, "is given twice"),
	   "spec_resources: a page size given twice refused");
	r.n_hugepage_limits = 1;
	hp.page_size = "2MiB";
	ok(!update_resources(&host, &r, NULL, &err) && strstr(err.msg, "is not a page size"),
	   "spec_resources: a bad page size refused");
	hp.page_size = "2MB";
	ue.key = "memory.high";
	ue.value = "max";
	r.unified = ues;
	r.n_unified = 1;
	ok(!update_resources(&host, &r, NULL, &err) && strstr(err.msg, "needs cgroup v2"),
	   "spec_resources: unified refused on cgroup v1");
	host.cgroup_v2 = true;
	res = update_resources(&host, &r, NULL, &err);
	text = res ? json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	is_str(text,
	       "{\"cpu\":{\"cpus\":\"0-1\",\"shares\":2},\"hugepageLimits\":[{\"limit\":4194304,"
	       "\"pageSize\":\"2MB\"}],\"unified\":{\"memory.high\":\"max\"}}",
	       "spec_resources: cpu, hugepages and unified as at create");
	json_decref(res);
	free(TAKE_PTR(text));
	ue.key = "../memory.max";
	ok(!update_resources(&host, &r, NULL, &err) && strstr(err.msg, "not a cgroup v2 file"),
	   "spec_resources: a unified key with a slash refused");
	r.n_unified = 0;
	r.n_hugepage_limits = 0;

	/* oom_score_adj: range-checked, clamped as at create. */
	r.oom_score_adj = 1001;
	ok(!update_resources(&host, &r, &adj, &err) && strstr(err.msg, "not from -1000 to 1000"),
	   "spec_resources: oom_score_adj 1001 refused");
	r.oom_score_adj = -999;
	host.oom_score_adj_min = -500;
	res = update_resources(&host, &r, &adj, &err);
	ok(res != NULL, "spec_resources: oom_score_adj -999 accepted");
	is_int(adj, -500, "spec_resources: oom_score_adj clamped by restrict_oom_score_adj");
	json_decref(res);
}

int main(void)
{
	case_minimal();
	case_command_args();
	case_args_rules();
	case_env();
	case_user_passwd();
	case_image_user();
	case_status_user();
	case_mounts();
	case_caps();
	case_privileged();
	case_devices();
	case_seccomp();
	case_apparmor();
	case_resources();
	case_cgroup_v2();
	case_host_namespaces();
	case_pid_modes();
	case_userns();
	case_sandbox();

	errors_user();
	errors_caps();
	errors_mounts();
	errors_seccomp();
	errors_strings();
	errors_other();
	errors_userns();
	errors_unapplied_fields();

	test_cgroups_path();
	test_signals();
	test_stop_signals();
	test_seccomp_default();
	test_spec_resources();
	return done_testing();
}
