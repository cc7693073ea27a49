/* The CRI ImageService: the frontend checks the shape of each request,
 * forwards it to imaged (which checks everything again and does the work),
 * and turns imaged's answer into CRI messages. Registry credentials pass
 * through untouched and are wiped from our memory once sent. */
#include "autoconfig.h"

#include <string.h>

#include "ipc/cri-api.pb-c.h"
#include "frontend/cri_methods.h"
#include "frontend/frontend.h"
#include "frontend/helpers.h"
#include "ipc/msg.h"

/* Longest image reference or id the frontend forwards, and longest
 * credential field. imaged refuses longer messages as protocol violations
 * (and restarts), so what a client sends must be bounded here, with an
 * error the client can read: 1 KiB names, 16 KiB per credential (JWTs are
 * a few KiB), well inside imaged's bounds for these messages. */
#define IMAGE_NAME_MAX 1024
#define AUTH_FIELD_MAX (16 * 1024)

static const char *image_of(const Runtime__V1__ImageSpec *spec)
{
	return spec && spec->image ? spec->image : "";
}

/* Whether name is one of this node's runtime handlers: the default one,
 * called by its runtime's base name ("runc", as runtimed names it), or a
 * [runtime_handler] section. Read from the configuration runtimed reads
 * too, so the answer does not wait for (or fail with) runtimed; a section
 * runtimed ignored (its program missing) still counts, which only means
 * that an image is accepted for a handler pods cannot use yet. */
bool runtime_handler_known(const char *name)
{
	const struct crisp_config *cfg = frontend_config();
	const char *slash = strrchr(cfg->default_runtime, '/');

	if (streq(name, slash ? slash + 1 : cfg->default_runtime))
		return true;
	for (size_t i = 0; i < cfg->n_runtime_handlers; i++)
		if (streq(name, cfg->runtime_handlers[i].name))
			return true;
	return false;
}

/* A request's ImageSpec: the image present (if required) and of sane
 * length, and its runtime_handler, if any, one of ours. All handlers share
 * one image store, so a known handler changes nothing; an unknown one is
 * refused, as the CRI asks. */
static int check_spec(const Runtime__V1__ImageSpec *spec, bool required, struct crisp_error *err)
{
	const char *image = image_of(spec);
	const char *handler = spec && spec->runtime_handler ? spec->runtime_handler : "";

	if (required && !*image)
		return err_set(err, CRISP_E_INVALID,
			       "image is required (ImageSpec.image is empty)");
	if (strlen(image) > IMAGE_NAME_MAX)
		return err_set(err, CRISP_E_INVALID, "image name is longer than %d bytes",
			       IMAGE_NAME_MAX);
	if (*handler && !runtime_handler_known(handler))
		return err_set(err, CRISP_E_INVALID,
			       "image.runtime_handler '%.80s' is not a runtime handler", handler);
	return 0;
}

/* ImageInfo from imaged -> CRI Image. Points into info: free info after. */
static void image_from_info(Runtime__V1__Image *img, Runtime__V1__Int64Value *uid,
			    Runtime__V1__ImageSpec *spec, const CrispIpc__ImageInfo *info)
{
	runtime__v1__image__init(img);
	runtime__v1__image_spec__init(spec);
	img->id = info->id;
	img->n_repo_tags = info->n_repo_tags;
	img->repo_tags = info->repo_tags;
	img->n_repo_digests = info->n_repo_digests;
	img->repo_digests = info->repo_digests;
	img->size = info->size;
	img->username = info->username;
	img->pinned = info->pinned;
	if (info->has_uid) {
		runtime__v1__int64_value__init(uid);
		uid->value = info->uid;
		img->uid = uid;
	}
	spec->image = info->id;
	img->spec = spec;
}

/* ---- ListImages, StreamImages ----------------------------------------------- */

static void on_list(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		    void *arg)
{
	struct rpc *rpc = arg;
	CrispIpc__ImageListReply *r = (CrispIpc__ImageListReply *)reply;
	struct list_items items = { 0 };

	if (err)
		return cri_fail(rpc, err);
	for (size_t i = 0; i < r->n_images; i++) {
		Runtime__V1__Image img;
		Runtime__V1__Int64Value uid;
		Runtime__V1__ImageSpec spec;

		image_from_info(&img, &uid, &spec, r->images[i]);
		list_items_add(&items, &img.base);
	}
	cri_reply_list(rpc, &items);
}

/* ListImages and StreamImages ask with the same filter. */
static const Runtime__V1__ImageFilter *image_filter(const struct rpc *rpc)
{
	if (rpc->req->descriptor == &runtime__v1__stream_images_request__descriptor)
		return ((const Runtime__V1__StreamImagesRequest *)rpc->req)->filter;
	return ((const Runtime__V1__ListImagesRequest *)rpc->req)->filter;
}

/* And StreamImages. */
void cri_list_images(struct rpc *rpc)
{
	const Runtime__V1__ImageFilter *flt = image_filter(rpc);
	CrispIpc__ImageListRequest list = CRISP_IPC__IMAGE_LIST_REQUEST__INIT;
	struct crisp_error err;

	list.filter = (char *)(flt ? image_of(flt->image) : "");
	if (check_spec(flt ? flt->image : NULL, false, &err) < 0)
		return cri_fail(rpc, &err);
	helper_call(HELPER_IMAGED, IPC_IMAGED_IMAGE_LIST, &list.base,
		    &crisp_ipc__image_list_reply__descriptor, 0, on_list, rpc);
}

/* ---- ImageStatus ------------------------------------------------------------ */

static void on_status(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		      void *arg)
{
	struct rpc *rpc = arg;
	CrispIpc__ImageStatusReply *r = (CrispIpc__ImageStatusReply *)reply;
	Runtime__V1__ImageStatusResponse resp = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
	_cleanup_free_ Runtime__V1__ImageStatusResponse__InfoEntry *entries = NULL;
	_cleanup_free_ Runtime__V1__ImageStatusResponse__InfoEntry **eptrs = NULL;
	Runtime__V1__Image img;
	Runtime__V1__Int64Value uid;
	Runtime__V1__ImageSpec spec;

	if (err)
		return cri_fail(rpc, err);
	/* The CRI answers a missing image with an empty response, not an error. */
	if (!r->found || !r->image)
		return cri_reply(rpc, &resp.base);
	image_from_info(&img, &uid, &spec, r->image);
	resp.image = &img;
	entries = xcalloc(r->n_info, sizeof(*entries));
	eptrs = xcalloc(r->n_info, sizeof(*eptrs));
	for (size_t i = 0; i < r->n_info; i++) {
		runtime__v1__image_status_response__info_entry__init(&entries[i]);
		entries[i].key = r->info[i]->key;
		entries[i].value = r->info[i]->value;
		eptrs[i] = &entries[i];
	}
	resp.n_info = r->n_info;
	resp.info = eptrs;
	cri_reply(rpc, &resp.base);
}

void cri_image_status(struct rpc *rpc)
{
	const Runtime__V1__ImageStatusRequest *req = (const Runtime__V1__ImageStatusRequest *)
							     rpc->req;
	CrispIpc__ImageStatusRequest st = CRISP_IPC__IMAGE_STATUS_REQUEST__INIT;
	struct crisp_error err;

	st.image = (char *)image_of(req->image);
	st.verbose = req->verbose;
	if (check_spec(req->image, true, &err) < 0)
		return cri_fail(rpc, &err);
	helper_call(HELPER_IMAGED, IPC_IMAGED_IMAGE_STATUS, &st.base,
		    &crisp_ipc__image_status_reply__descriptor, 0, on_status, rpc);
}

/* ---- PullImage -------------------------------------------------------------- */

static void on_pull(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		    void *arg)
{
	struct rpc *rpc = arg;
	CrispIpc__ImagePullReply *r = (CrispIpc__ImagePullReply *)reply;
	Runtime__V1__PullImageResponse resp = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;

	if (err)
		return cri_fail(rpc, err);
	resp.image_ref = r->image_ref;
	cri_reply(rpc, &resp.base);
}

void cri_pull_image(struct rpc *rpc)
{
	Runtime__V1__PullImageRequest *req = (Runtime__V1__PullImageRequest *)rpc->req;
	CrispIpc__ImagePullRequest pull = CRISP_IPC__IMAGE_PULL_REQUEST__INIT;
	CrispIpc__RegistryAuth auth = CRISP_IPC__REGISTRY_AUTH__INIT;
	Runtime__V1__AuthConfig *a = req->auth;
	struct crisp_error err;

	/* sandbox_config is not read: with one store and one snapshotter for
	 * every handler there is nothing in it a pull could use. */
	pull.image = (char *)image_of(req->image);
	if (check_spec(req->image, true, &err) < 0)
		return cri_fail(rpc, &err);
	if (a && (strlen(a->username) > AUTH_FIELD_MAX || strlen(a->password) > AUTH_FIELD_MAX ||
		  strlen(a->auth) > AUTH_FIELD_MAX || strlen(a->server_address) > AUTH_FIELD_MAX ||
		  strlen(a->identity_token) > AUTH_FIELD_MAX ||
		  strlen(a->registry_token) > AUTH_FIELD_MAX))
		return cri_failf(rpc, CRISP_E_INVALID, "auth: a credential is longer than %d bytes",
				 AUTH_FIELD_MAX);
	if (a) {
		auth.username = a->username;
		auth.password = a->password;
		auth.auth = a->auth;
		auth.server_address = a->server_address;
		auth.identity_token = a->identity_token;
		auth.registry_token = a->registry_token;
		pull.auth = &auth;
	}
	/* Pulls take as long as they take: imaged cancels one that stops
	 * making progress, and the kubelet its own call when it gives up. */
	helper_call(HELPER_IMAGED, IPC_IMAGED_IMAGE_PULL, &pull.base,
		    &crisp_ipc__image_pull_reply__descriptor, HELPER_NO_TIMEOUT, on_pull, rpc);
	/* The frame is packed: our copies of the secrets are no longer needed. */
	if (a)
		ipc_message_wipe(&a->base);
}

/* ---- RemoveImage ------------------------------------------------------------ */

static void on_remove(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		      void *arg)
{
	struct rpc *rpc = arg;
	Runtime__V1__RemoveImageResponse resp = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;

	/* Removing an image that is not there succeeds (the CRI asks so). */
	if (err && err->code != CRISP_E_NOT_FOUND)
		return cri_fail(rpc, err);
	cri_reply(rpc, &resp.base);
}

void cri_remove_image(struct rpc *rpc)
{
	const Runtime__V1__RemoveImageRequest *req = (const Runtime__V1__RemoveImageRequest *)
							     rpc->req;
	CrispIpc__ImageRemoveRequest rm = CRISP_IPC__IMAGE_REMOVE_REQUEST__INIT;
	struct crisp_error err;

	rm.image = (char *)image_of(req->image);
	if (check_spec(req->image, true, &err) < 0)
		return cri_fail(rpc, &err);
	helper_call(HELPER_IMAGED, IPC_IMAGED_IMAGE_REMOVE, &rm.base, &crisp_ipc__empty__descriptor,
		    0, on_remove, rpc);
}

/* ---- ImageFsInfo ------------------------------------------------------------ */

struct fs_usage {
	Runtime__V1__FilesystemUsage u;
	Runtime__V1__FilesystemIdentifier id;
	Runtime__V1__UInt64Value bytes, inodes;
};

static Runtime__V1__FilesystemUsage **fs_list(struct fs_usage *store, size_t n,
					      CrispIpc__FsUsage **in)
{
	Runtime__V1__FilesystemUsage **ptrs = xcalloc(n, sizeof(*ptrs));

	for (size_t i = 0; i < n; i++) {
		struct fs_usage *f = &store[i];
		runtime__v1__filesystem_usage__init(&f->u);
		runtime__v1__filesystem_identifier__init(&f->id);
		runtime__v1__uint64_value__init(&f->bytes);
		runtime__v1__uint64_value__init(&f->inodes);
		f->id.mountpoint = in[i]->mountpoint;
		f->bytes.value = in[i]->used_bytes;
		f->inodes.value = in[i]->inodes_used;
		f->u.timestamp = in[i]->timestamp;
		f->u.fs_id = &f->id;
		f->u.used_bytes = &f->bytes;
		f->u.inodes_used = &f->inodes;
		ptrs[i] = &f->u;
	}
	return ptrs;
}

static void on_fs_info(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		       void *arg)
{
	struct rpc *rpc = arg;
	CrispIpc__ImageFsInfoReply *r = (CrispIpc__ImageFsInfoReply *)reply;
	Runtime__V1__ImageFsInfoResponse resp = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
	_cleanup_free_ struct fs_usage *img = NULL, *ctr = NULL;

	if (err)
		return cri_fail(rpc, err);
	img = xcalloc(r->n_image_filesystems, sizeof(*img));
	ctr = xcalloc(r->n_container_filesystems, sizeof(*ctr));
	resp.n_image_filesystems = r->n_image_filesystems;
	resp.image_filesystems = fs_list(img, r->n_image_filesystems, r->image_filesystems);
	resp.n_container_filesystems = r->n_container_filesystems;
	resp.container_filesystems = fs_list(ctr, r->n_container_filesystems,
					     r->container_filesystems);
	cri_reply(rpc, &resp.base);
	free(resp.image_filesystems);
	free(resp.container_filesystems);
}

void cri_image_fs_info(struct rpc *rpc)
{
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;

	helper_call(HELPER_IMAGED, IPC_IMAGED_FS_INFO_GET, &empty.base,
		    &crisp_ipc__image_fs_info_reply__descriptor, 0, on_fs_info, rpc);
}
