/* netd's durable record of each pod network, like libcni's result cache
 * but written before ADD runs as well: networks/<sandbox id>.json in netd's
 * directory holds the network list exactly as given to the plugins, the
 * CNI_ARGS, the capability args, the netns path and, once ADD succeeded,
 * its result. So a DEL after any crash (even one in the middle of ADD) runs
 * the same plugins with the same config and prevResult, and frees what was
 * allocated. Each write goes to a temporary file that is fsynced and
 * renamed over the record, and the directory is fsynced. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "netd/netd.h"

#define RECORD_KIND "crispNetV1"
#define RECORD_MAX (4u << 20)

static const char *const state_names[] = { "adding", "attached", "detached", "netns" };

json_t *cache_encode(const struct pod_net *n)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:O, s:s}", "kind", RECORD_KIND,
			      "sandboxId", n->id, "state", state_names[n->state], "netns", n->netns,
			      "network", n->network, "config", n->config, "cniArgs", n->cni_args,
			      "capabilityArgs", n->caps, "ifName", CNI_IFNAME);

	if (j && n->result)
		json_object_set(j, "result", n->result);
	return j;
}

struct pod_net *cache_decode(json_t *j, const char *id, struct crisp_error *err)
{
	const char *kind = NULL, *sid = NULL, *state = NULL, *netns = NULL, *network = NULL,
		   *args = NULL;
	json_t *config = NULL, *caps = NULL, *result;
	struct pod_net *n;
	json_error_t jerr;
	int s = -1;

	if (json_unpack_ex(j, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "kind", &kind,
			   "sandboxId", &sid, "state", &state, "netns", &netns, "network", &network,
			   "config", &config, "cniArgs", &args, "capabilityArgs", &caps) < 0)
		return err_set(err, CRISP_E_INTERNAL, "record of %.64s: %s", id, jerr.text), NULL;
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (streq(state, state_names[i]))
			s = (int)i;
	result = json_object_get(j, "result");
	if (!streq(kind, RECORD_KIND) || !streq(sid, id) || s < 0 || !json_is_object(config) ||
	    !json_is_object(caps) || (result && !json_is_object(result)) ||
	    (s == POD_NET_ATTACHED && !result))
		return err_set(err, CRISP_E_INTERNAL, "record of %.64s is inconsistent", id), NULL;
	n = xcalloc(1, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", sid);
	n->state = (enum pod_net_state)s;
	n->netns = xstrdup(netns);
	n->network = xstrdup(network);
	n->config = json_incref(config);
	n->cni_args = xstrdup(args);
	n->caps = json_incref(caps);
	n->result = json_incref(result);
	return n;
}

void pod_net_free(struct pod_net *n)
{
	if (!n)
		return;
	free(n->netns);
	free(n->network);
	json_decref(n->config);
	free(n->cni_args);
	json_decref(n->caps);
	json_decref(n->result);
	free(n);
}

static void sync_dir(void)
{
	_cleanup_close_ int dir = open(CACHE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0 || fsync(dir) < 0)
		log_warn("syncing %s: %m", CACHE_DIR);
}

int cache_store(const struct pod_net *n, struct crisp_error *err)
{
	_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s.json", n->id);
	_cleanup_free_ char *tmp = xasprintf(CACHE_DIR "/%s.json.tmp", n->id);
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	json_t *j = cache_encode(n);
	size_t len, off = 0;

	if (!j)
		return err_set(err, CRISP_E_INTERNAL, "cannot encode the record of %.12s", n->id);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return err_set(err, CRISP_E_INTERNAL, "cannot encode the record of %.12s", n->id);
	len = strlen(text);
	if (mkdir(CACHE_DIR, 0700) == 0) {
		/* the new directory's entry must reach the disk too */
		_cleanup_close_ int home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (home < 0 || fsync(home) < 0)
			log_warn("syncing netd's directory: %m");
	} else if (errno != EEXIST) {
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "mkdir %s", CACHE_DIR);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot write %s", tmp);
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off < len || fsync(fd) < 0 || rename(tmp, path) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot store the record %s", path);
		unlink(tmp);
		return -1;
	}
	sync_dir();
	return 0;
}

int cache_remove(const char *id, struct crisp_error *err)
{
	_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s.json", id);

	if (unlink(path) < 0 && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot remove %s", path);
	sync_dir();
	return 0;
}

static int record_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	char id[65];

	if (n != 64 + 5 || !streq(d->d_name + 64, ".json"))
		return 0;
	memcpy(id, d->d_name, 64);
	id[64] = '\0';
	return sandbox_id_valid(id);
}

struct pod_net *cache_load_all(void)
{
	struct pod_net *head = NULL;
	struct dirent **names = NULL;
	int n = scandir(CACHE_DIR, &names, record_filter, alphasort);

	if (n < 0) {
		if (errno != ENOENT)
			log_err("cannot read %s: %m", CACHE_DIR);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = xasprintf(CACHE_DIR "/%s", names[i]->d_name);
		char id[65];
		struct crisp_error err;
		struct pod_net *pn;
		json_error_t jerr;
		json_t *j;
		struct stat sb;

		memcpy(id, names[i]->d_name, 64);
		id[64] = '\0';
		free(names[i]);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > RECORD_MAX) {
			log_err("skipping record %s: not a regular file of at most 4 MiB", path);
			continue;
		}
		j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!j) {
			log_err("skipping record %s: %s", path, jerr.text);
			continue;
		}
		pn = cache_decode(j, id, &err);
		json_decref(j);
		if (!pn) {
			log_err("skipping record %s: %s", path, err.msg);
			continue;
		}
		pn->next = head;
		head = pn;
	}
	free(names);
	return head;
}
