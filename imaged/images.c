/* What imaged answers the frontend: health, and the ImageService requests.
 * Every field is checked here again, whatever the frontend did: references
 * are parsed by imaged/reference.c before they name anything, and lookups go
 * through the store only. */
#include "autoconfig.h"

#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/log.h"
#include "common/snapshot_mac.h"
#include "imaged/content.h"
#include "imaged/imaged.h"
#include "imaged/reference.h"
#include "imaged/store.h"
#include "imaged/trash.h"
#include "imaged/worker.h"
#include "ipc/msg.h"

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;

	reply.ready = imaged.store != NULL;
	reply.version = (char *)CRISP_VERSION;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

static void on_pull(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImagePullRequest *r = (CrispIpc__ImagePullRequest *)req;
	struct child_deferred d;

	child_defer(msg, &d);
	pull_start(r->image, r->auth, &d);
	/* The pull copied what it needs: no second copy of secrets lingers. */
	if (r->auth)
		ipc_message_wipe(&r->auth->base);
}

/* How a CRI request names an image: an id (or a unique prefix of one), or
 * a reference that normalizes to a stored repo tag or digest. */
static int image_lookup(const char *name, unsigned load, struct store_image **ret,
			struct crisp_error *err)
{
	struct image_ref ref;
	_cleanup_free_ char *norm = NULL;
	int r;

	/* An id, a unique id prefix or a name exactly as stored. A hex prefix
	 * also parses as a reference (docker.io/library/<hex>:latest), so
	 * this comes first, as containerd tries ids first. */
	if (store_image_get(imaged.store, name, load, ret, err) == 0)
		return 0;
	if (err->code == CRISP_E_INVALID && strstr(err->msg, "ambiguous"))
		return -1;
	if (image_ref_parse(name, &ref, err) < 0)
		return -1;
	norm = image_ref_string(&ref);
	r = store_image_get(imaged.store, norm, load, ret, err);
	/* "name:tag@digest" is stored as "name@digest". */
	if (r < 0 && err->code == CRISP_E_NOT_FOUND && ref.tag && ref.digest) {
		_cleanup_free_ char *repo = image_ref_repo(&ref);
		_cleanup_free_ char *by_digest = xasprintf("%s@%s", repo, ref.digest);
		r = store_image_get(imaged.store, by_digest, load, ret, err);
	}
	image_ref_free(&ref);
	return r;
}

/* Image -> ImageInfo; strings point into img. */
static void image_info(CrispIpc__ImageInfo *info, const struct store_image *img, char **tags_buf,
		       char **digests_buf)
{
	crisp_ipc__image_info__init(info);
	info->id = img->id;
	info->size = img->size > 0 ? (uint64_t)img->size : 0;
	info->pinned = img->pinned;
	info->has_uid = img->uid >= 0;
	info->uid = img->uid;
	info->username = img->username ? img->username : (char *)"";
	for (size_t i = 0; i < img->n_names; i++) {
		if (strchr(img->names[i], '@'))
			digests_buf[info->n_repo_digests++] = img->names[i];
		else
			tags_buf[info->n_repo_tags++] = img->names[i];
	}
	info->repo_tags = tags_buf;
	info->repo_digests = digests_buf;
}

struct list_ctx {
	CrispIpc__ImageListReply *reply;
	struct store_image **imgs;
	size_t n;
};

static int list_one(const struct store_image *img, void *arg)
{
	struct list_ctx *c = arg;
	struct store_image *copy;
	struct crisp_error err;

	/* The walk's image lives during the call only: take our own. */
	if (store_image_get(imaged.store, img->id, 0, &copy, &err) < 0)
		return 0;
	c->imgs = xrealloc(c->imgs, (c->n + 1) * sizeof(*c->imgs));
	c->imgs[c->n++] = copy;
	return 0;
}

static void reply_images(struct ipc_chan *chan, struct ipc_msg *msg, struct store_image **imgs,
			 size_t n)
{
	CrispIpc__ImageListReply reply = CRISP_IPC__IMAGE_LIST_REPLY__INIT;
	CrispIpc__ImageInfo *infos = xcalloc(n ? n : 1, sizeof(*infos));
	CrispIpc__ImageInfo **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
	char ***bufs = xcalloc(2 * (n ? n : 1), sizeof(*bufs));

	for (size_t i = 0; i < n; i++) {
		bufs[2 * i] = xcalloc(imgs[i]->n_names + 1, sizeof(char *));
		bufs[2 * i + 1] = xcalloc(imgs[i]->n_names + 1, sizeof(char *));
		image_info(&infos[i], imgs[i], bufs[2 * i], bufs[2 * i + 1]);
		ptrs[i] = &infos[i];
	}
	reply.images = ptrs;
	reply.n_images = n;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
	for (size_t i = 0; i < 2 * n; i++)
		free(bufs[i]);
	free(bufs);
	free(ptrs);
	free(infos);
}

/* The reply of an import: the images as they are stored now. */
void images_reply_imported(const struct child_deferred *d, char *const *ids, size_t n)
{
	CrispIpc__ImageImportReply reply = CRISP_IPC__IMAGE_IMPORT_REPLY__INIT;
	CrispIpc__ImageInfo *infos = xcalloc(n ? n : 1, sizeof(*infos));
	CrispIpc__ImageInfo **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
	struct store_image **imgs = xcalloc(n ? n : 1, sizeof(*imgs));
	char ***bufs = xcalloc(2 * (n ? n : 1), sizeof(*bufs));
	struct crisp_error err;

	for (size_t i = 0; i < n; i++) {
		if (store_image_get(imaged.store, ids[i], 0, &imgs[i], &err) < 0) {
			/* Removed (or replaced) in between: say what it was. */
			crisp_ipc__image_info__init(&infos[i]);
			infos[i].id = ids[i];
		} else {
			bufs[2 * i] = xcalloc(imgs[i]->n_names + 1, sizeof(char *));
			bufs[2 * i + 1] = xcalloc(imgs[i]->n_names + 1, sizeof(char *));
			image_info(&infos[i], imgs[i], bufs[2 * i], bufs[2 * i + 1]);
		}
		ptrs[i] = &infos[i];
	}
	reply.images = ptrs;
	reply.n_images = n;
	child_reply(d, &reply.base);
	for (size_t i = 0; i < n; i++) {
		store_image_free(imgs[i]);
		free(bufs[2 * i]);
		free(bufs[2 * i + 1]);
	}
	free(bufs);
	free(imgs);
	free(ptrs);
	free(infos);
}

static void on_import(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImageImportRequest *r = (CrispIpc__ImageImportRequest *)req;
	struct child_deferred d;

	child_defer(msg, &d);
	import_start(r->file, r->names, r->n_names, &d);
}

static void on_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImageListRequest *r = (CrispIpc__ImageListRequest *)req;
	struct list_ctx c = { 0 };
	struct crisp_error err;

	if (*r->filter) {
		struct store_image *img;
		if (image_lookup(r->filter, 0, &img, &err) == 0) {
			c.imgs = xmalloc(sizeof(*c.imgs));
			c.imgs[c.n++] = img;
		}
	} else if (store_image_list(imaged.store, 0, list_one, &c, &err) < 0) {
		return (void)ipc_reply_error(chan, msg, &err);
	}
	reply_images(chan, msg, c.imgs, c.n);
	for (size_t i = 0; i < c.n; i++)
		store_image_free(c.imgs[i]);
	free(c.imgs);
}

static void on_status(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImageStatusRequest *r = (CrispIpc__ImageStatusRequest *)req;
	CrispIpc__ImageStatusReply reply = CRISP_IPC__IMAGE_STATUS_REPLY__INIT;
	CrispIpc__ImageInfo info;
	CrispIpc__ImageStatusReply__InfoEntry
		e_manifest = CRISP_IPC__IMAGE_STATUS_REPLY__INFO_ENTRY__INIT,
		e_config = CRISP_IPC__IMAGE_STATUS_REPLY__INFO_ENTRY__INIT;
	CrispIpc__ImageStatusReply__InfoEntry *entries[2] = { &e_manifest, &e_config };
	_cleanup_free_ char **tags = NULL, **digests = NULL;
	struct store_image *img = NULL;
	struct crisp_error err;

	if (image_lookup(r->image, r->verbose ? STORE_LOAD_JSON : 0, &img, &err) < 0) {
		if (err.code != CRISP_E_NOT_FOUND && err.code != CRISP_E_INVALID)
			return (void)ipc_reply_error(chan, msg, &err);
		/* Not there (or not a name that could be there): found=false. */
		return (void)ipc_reply(chan, msg, &reply.base, NULL, 0);
	}
	tags = xcalloc(img->n_names + 1, sizeof(*tags));
	digests = xcalloc(img->n_names + 1, sizeof(*digests));
	image_info(&info, img, tags, digests);
	reply.found = true;
	reply.image = &info;
	if (r->verbose) {
		e_manifest.key = (char *)"manifest";
		e_manifest.value = img->manifest ? img->manifest : (char *)"";
		e_config.key = (char *)"config";
		e_config.value = img->config ? img->config : (char *)"";
		reply.info = entries;
		reply.n_info = 2;
	}
	ipc_reply(chan, msg, &reply.base, NULL, 0);
	store_image_free(img);
}

static void on_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImageRemoveRequest *r = (CrispIpc__ImageRemoveRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct store_image *img;
	struct crisp_error err;

	if (image_lookup(r->image, 0, &img, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	/* CRI RemoveImage removes the image, whatever name it was given by. */
	if (img->pinned) {
		err_set(&err, CRISP_E_PRECONDITION, "image %s is pinned", img->id);
		store_image_free(img);
		return (void)ipc_reply_error(chan, msg, &err);
	}
	if (store_image_remove(imaged.store, img->id, &err) < 0) {
		store_image_free(img);
		return (void)ipc_reply_error(chan, msg, &err);
	}
	log_info("removed image %s", img->id);
	store_image_free(img);
	ipc_reply(chan, msg, &empty.base, NULL, 0);
	images_gc();
}

static int add_usage(const struct store_snapshot *s, void *arg)
{
	uint64_t *u = arg;

	u[0] += s->usage_bytes > 0 ? (uint64_t)s->usage_bytes : 0;
	u[1] += s->usage_inodes > 0 ? (uint64_t)s->usage_inodes : 0;
	return 0;
}

static void on_fs_info(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__ImageFsInfoReply reply = CRISP_IPC__IMAGE_FS_INFO_REPLY__INIT;
	CrispIpc__FsUsage usage = CRISP_IPC__FS_USAGE__INIT, *list[1] = { &usage };
	_cleanup_free_ char *mountpoint = xasprintf("%s/imaged", imaged.cfg->root_dir);
	uint64_t bytes = 0, inodes = 0, snaps[2] = { 0, 0 };
	struct crisp_error err;
	struct timespec ts;

	if (content_usage(imaged.content, &bytes, &inodes, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	/* Snapshots: what their unpacking wrote, as recorded then. */
	if (store_snapshot_list(imaged.store, add_usage, snaps, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	bytes += snaps[0];
	inodes += snaps[1];
	clock_gettime(CLOCK_REALTIME, &ts);
	usage.mountpoint = mountpoint;
	usage.used_bytes = bytes;
	usage.inodes_used = inodes;
	usage.timestamp = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	reply.image_filesystems = list;
	reply.n_image_filesystems = 1;
	/* Containers' writable layers live on the same filesystem. */
	reply.container_filesystems = list;
	reply.n_container_filesystems = 1;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* Blobs and snapshots no image needs any more. Never while a pull runs: its
 * content is not recorded yet and would look like garbage. Each goes out of
 * use here, on the loop, in one quick rename into the trash (a blob has no
 * record but its name; snapshots lose their records first, all in one
 * transaction, see snapshot_remove); a worker deletes the data afterwards. */
struct gc_list {
	unsigned blobs;
	char **keys; /* snapshots, children first */
	int64_t *ids;
	size_t n;
};

static void gc_blob(const char *digest, struct gc_list *l)
{
	struct crisp_error err;

	if (content_trash(imaged.content, digest, &err) == 0) {
		l->blobs++;
		return;
	}
	if (err.code == CRISP_E_NOT_FOUND)
		return;
	/* blobs/ on another filesystem than the trash, say. */
	log_warn("gc: %s; deleting it in place", err.msg);
	if (content_delete(imaged.content, digest, &err) == 0)
		l->blobs++;
	else if (err.code != CRISP_E_NOT_FOUND)
		log_warn("gc: %s", err.msg);
}

static int gc_one(enum store_gc_kind kind, const char *key, int64_t snapshot_id, void *arg)
{
	struct gc_list *l = arg;

	if (kind == STORE_GC_BLOB) {
		gc_blob(key, l);
		return 0;
	}
	l->keys = xrealloc(l->keys, (l->n + 1) * sizeof(*l->keys));
	l->ids = xrealloc(l->ids, (l->n + 1) * sizeof(*l->ids));
	l->keys[l->n] = xstrdup(key);
	l->ids[l->n++] = snapshot_id;
	return 0;
}

/* Records first, then directories: a crash in between leaves directories
 * without records, which snapshot_recover moves to the trash. */
static unsigned gc_snapshots(struct gc_list *l)
{
	_cleanup_free_ bool *removed = xcalloc(l->n + 1, sizeof(*removed));
	struct crisp_error err;
	unsigned n = 0;

	if (store_snapshots_remove(imaged.store, l->keys, l->n, removed, &err) < 0) {
		log_warn("gc: %s", err.msg);
		return 0;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (!removed[i])
			continue;
		if (snapshot_dir_trash(l->ids[i], &err) < 0)
			log_warn("gc: %s (the next start removes it)", err.msg);
		n++;
	}
	return n;
}

void images_gc(void)
{
	struct gc_list l = { 0 };
	struct crisp_error err;
	unsigned snapshots = 0;
	uint64_t start;

	if (imaged.pulls > 0) {
		imaged.gc_pending = true;
		return;
	}
	imaged.gc_pending = false;
	start = now_ms();
	if (store_gc_candidates(imaged.store, imaged.content, gc_one, &l, &err) < 0)
		log_warn("gc: %s", err.msg);
	else
		snapshots = gc_snapshots(&l);
	for (size_t i = 0; i < l.n; i++)
		free(l.keys[i]);
	free(l.keys);
	free(l.ids);
	if (l.blobs || snapshots) {
		log_info("gc: removed %u blobs and %u snapshots", l.blobs, snapshots);
		log_debug("gc: %" PRIu64 " ms on the loop, the trash is emptied by a worker",
			  now_ms() - start);
		trash_empty();
	}
}

/* The strings of a JSON array, borrowed from it (NULL entries never occur:
 * image_config checked the types). */
static char **json_strings(json_t *arr, size_t *n)
{
	char **v;
	size_t i;
	json_t *s;

	*n = json_array_size(arr);
	v = xcalloc(*n + 1, sizeof(*v));
	json_array_foreach(arr, i, s) v[i] = (char *)json_string_value(s);
	return v;
}

static const char *json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

/* The mount of a prepared snapshot, with what the container starts with,
 * and its MAC for this container: runtimed mounts nothing else. */
static void prepare_reply(const struct child_deferred *d, const char *container_id,
			  const struct store_image *img, const struct snapshot_mount *m)
{
	const uint8_t *key = child_snapshot_key();
	uint8_t mac[SNAPSHOT_MAC_LEN];
	CrispIpc__SnapshotMount reply = CRISP_IPC__SNAPSHOT_MOUNT__INIT;
	CrispIpc__ImageRunConfig run = CRISP_IPC__IMAGE_RUN_CONFIG__INIT;
	static char *options[] = { (char *)"userxattr" };
	_cleanup_free_ char **env = NULL, **entrypoint = NULL, **cmd = NULL, **volumes = NULL;

	/* What the container starts with, from the config checked at pull. */
	run.image_id = img->id;
	run.user = (char *)json_str(img->spec, "user");
	run.working_dir = (char *)json_str(img->spec, "working_dir");
	run.stop_signal = (char *)json_str(img->spec, "stop_signal");
	run.env = env = json_strings(json_object_get(img->spec, "env"), &run.n_env);
	run.entrypoint = entrypoint = json_strings(json_object_get(img->spec, "entrypoint"),
						   &run.n_entrypoint);
	run.cmd = cmd = json_strings(json_object_get(img->spec, "cmd"), &run.n_cmd);
	run.volumes = volumes = json_strings(json_object_get(img->spec, "volumes"), &run.n_volumes);
	reply.image = &run;
	reply.upperdir = m->upperdir;
	if (m->bind) {
		/* The copy snapshotter: the whole rootfs in one directory. */
		reply.type = (char *)"bind";
	} else {
		reply.type = (char *)"overlay";
		reply.lowerdirs = m->lowerdirs;
		reply.n_lowerdirs = m->n_lowerdirs;
		reply.workdir = m->workdir;
		/* whiteouts and opaque dirs are in the user.overlay.* form */
		reply.options = options;
		reply.n_options = ARRAY_SIZE(options);
	}
	if (!key) {
		/* crispd sends it before any channel to the frontend; all or
		 * nothing, as the frontend expects. */
		struct crisp_error err, rm_err;
		if (snapshot_remove(container_id, &rm_err) < 0)
			log_warn("container %s: %s", container_id, rm_err.msg);
		err_set(&err, CRISP_E_INTERNAL, "no snapshot key from crispd to sign the mount");
		return child_reply_error(d, &err);
	}
	snapshot_mac(key, container_id, &reply, mac);
	reply.mac.data = mac;
	reply.mac.len = sizeof(mac);
	child_reply(d, &reply.base);
}

struct prepare_job {
	struct child_deferred d;
	char *container_id;
	struct store_image *img;
	char **chain;
	struct snapshot_mount m;
};

/* A copy takes as long as the image is large: off the loop. */
static void prepare_work(void *arg, struct crisp_error *err)
{
	struct prepare_job *j = arg;

	snapshot_prepare(j->container_id, j->chain, j->img->n_layers, &j->m, err);
}

static void prepare_done(void *arg, const struct crisp_error *err)
{
	struct prepare_job *j = arg;

	if (err->code != CRISP_E_OK)
		child_reply_error(&j->d, err);
	else
		prepare_reply(&j->d, j->container_id, j->img, &j->m);
	snapshot_mount_done(&j->m);
	store_image_free(j->img);
	free(j->chain);
	free(j->container_id);
	free(j);
}

static void on_snapshot_prepare(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
				void *arg)
{
	CrispIpc__SnapshotPrepareRequest *r = (CrispIpc__SnapshotPrepareRequest *)req;
	struct prepare_job *j;
	struct store_image *img = NULL;
	struct crisp_error err;

	if (image_lookup(r->image, STORE_LOAD_LAYERS, &img, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	j = xcalloc(1, sizeof(*j));
	child_defer(msg, &j->d);
	j->img = img;
	j->container_id = xstrdup(r->container_id);
	j->chain = xcalloc(img->n_layers + 1, sizeof(*j->chain));
	for (size_t i = 0; i < img->n_layers; i++)
		j->chain[i] = img->layers[i].chain_id;
	if (imaged.snapshotter == SNAPSHOTTER_COPY)
		return worker_submit(prepare_work, prepare_done, j);
	/* overlayfs: a few directories, at once. */
	err_clear(&err);
	prepare_work(j, &err);
	prepare_done(j, &err);
}

static int list_container_snapshot(const struct store_snapshot *snap, void *arg)
{
	CrispIpc__SnapshotListReply *reply = arg;

	if (snap->kind != STORE_SNAPSHOT_ACTIVE || strncmp(snap->key, "container-", 10) != 0)
		return 0;
	reply->container_ids = xrealloc(
		reply->container_ids, (reply->n_container_ids + 1) * sizeof(*reply->container_ids));
	reply->container_ids[reply->n_container_ids++] = xstrdup(snap->key + 10);
	return 0;
}

static void on_snapshot_list(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			     void *arg)
{
	CrispIpc__SnapshotListReply reply = CRISP_IPC__SNAPSHOT_LIST_REPLY__INIT;
	struct crisp_error err;

	if (store_snapshot_list(imaged.store, list_container_snapshot, &reply, &err) < 0)
		ipc_reply_error(chan, msg, &err);
	else
		ipc_reply(chan, msg, &reply.base, NULL, 0);
	for (size_t i = 0; i < reply.n_container_ids; i++)
		free(reply.container_ids[i]);
	free(reply.container_ids);
}

static void on_snapshot_remove(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			       void *arg)
{
	CrispIpc__SnapshotRemoveRequest *r = (CrispIpc__SnapshotRemoveRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err;

	if (snapshot_remove(r->container_id, &err) < 0)
		return (void)ipc_reply_error(chan, msg, &err);
	ipc_reply(chan, msg, &empty.base, NULL, 0);
	/* The image may have gone while the container kept its layers. */
	images_gc();
}

const struct ipc_handler imaged_frontend_handlers[] = {
	{ IPC_IMAGED_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
	{ IPC_IMAGED_IMAGE_PULL, &crisp_ipc__image_pull_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_pull },
	{ IPC_IMAGED_IMAGE_LIST, &crisp_ipc__image_list_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_list },
	{ IPC_IMAGED_IMAGE_STATUS, &crisp_ipc__image_status_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_status },
	{ IPC_IMAGED_IMAGE_REMOVE, &crisp_ipc__image_remove_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_remove },
	{ IPC_IMAGED_FS_INFO_GET, &crisp_ipc__empty__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_fs_info },
	{ IPC_IMAGED_SNAPSHOT_PREPARE, &crisp_ipc__snapshot_prepare_request__descriptor, 0,
	  IPC_SMALL, IPC_ANY_STATE, on_snapshot_prepare },
	{ IPC_IMAGED_SNAPSHOT_REMOVE, &crisp_ipc__snapshot_remove_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_snapshot_remove },
	{ IPC_IMAGED_SNAPSHOT_LIST, &crisp_ipc__empty__descriptor, 0, IPC_SMALL, IPC_ANY_STATE,
	  on_snapshot_list },
	{ IPC_IMAGED_IMAGE_IMPORT, &crisp_ipc__image_import_request__descriptor, 0, IPC_MEDIUM,
	  IPC_ANY_STATE, on_import },
};
const size_t imaged_n_frontend_handlers = ARRAY_SIZE(imaged_frontend_handlers);
