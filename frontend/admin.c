/* crisp.v1.Admin (ipc/crisp-admin.proto): crisp's own administrative
 * methods on the CRI socket, for root only.
 *
 * ImportImage imports an image archive that crisp-import copied into
 * imaged's spool directory. The right to import is the right to write into
 * that root-owned directory; the request only names a file there, which
 * imaged opens relative to its spool directory fd, so no client can make
 * crisp read an arbitrary host file. The peer check below is a second
 * fence: members of the socket group (the kubelet, crictl users) may use
 * the CRI but not this. */
#include "autoconfig.h"

#include <string.h>

#include "ipc/crisp-admin.pb-c.h"
#include "frontend/cri_methods.h"
#include "frontend/frontend.h"
#include "frontend/helpers.h"

/* Names crisp-import gives spool files; imaged checks them again. */
#define SPOOL_PREFIX "crisp-import-"
#define SPOOL_SUFFIX ".tar"
#define SPOOL_ID_MIN 16
#define SPOOL_ID_MAX 64
#define IMPORT_NAMES_MAX 32
#define IMPORT_NAME_LEN_MAX 1024

static bool spool_name_valid(const char *s)
{
	size_t n = strlen(s), pre = strlen(SPOOL_PREFIX), suf = strlen(SPOOL_SUFFIX);

	if (n < pre + SPOOL_ID_MIN + suf || n > pre + SPOOL_ID_MAX + suf ||
	    strncmp(s, SPOOL_PREFIX, pre) != 0 || !streq(s + n - suf, SPOOL_SUFFIX))
		return false;
	for (size_t i = pre; i < n - suf; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static void on_import(ProtobufCMessage *reply, struct ipc_msg *msg, const struct crisp_error *err,
		      void *arg)
{
	struct rpc *rpc = arg;
	CrispIpc__ImageImportReply *r = (CrispIpc__ImageImportReply *)reply;
	Crisp__V1__ImportImageResponse resp = CRISP__V1__IMPORT_IMAGE_RESPONSE__INIT;
	_cleanup_free_ Crisp__V1__ImportedImage *imgs = NULL;
	_cleanup_free_ Crisp__V1__ImportedImage **ptrs = NULL;

	if (err)
		return cri_fail(rpc, err);
	imgs = xcalloc(r->n_images + 1, sizeof(*imgs));
	ptrs = xcalloc(r->n_images + 1, sizeof(*ptrs));
	for (size_t i = 0; i < r->n_images; i++) {
		crisp__v1__imported_image__init(&imgs[i]);
		imgs[i].id = r->images[i]->id;
		imgs[i].n_repo_tags = r->images[i]->n_repo_tags;
		imgs[i].repo_tags = r->images[i]->repo_tags;
		imgs[i].n_repo_digests = r->images[i]->n_repo_digests;
		imgs[i].repo_digests = r->images[i]->repo_digests;
		ptrs[i] = &imgs[i];
	}
	resp.n_images = r->n_images;
	resp.images = ptrs;
	cri_reply(rpc, &resp.base);
}

void admin_import_image(struct rpc *rpc)
{
	const Crisp__V1__ImportImageRequest *req = (const Crisp__V1__ImportImageRequest *)rpc->req;
	CrispIpc__ImageImportRequest imp = CRISP_IPC__IMAGE_IMPORT_REQUEST__INIT;

	if (!rpc->peer.known || rpc->peer.uid != 0)
		return cri_failf(rpc, CRISP_E_PERMISSION,
				 "only root may import images (caller uid %d)", (int)rpc->peer.uid);
	if (!spool_name_valid(req->file))
		return cri_failf(rpc, CRISP_E_INVALID,
				 "file '%.80s' is not a name of the import spool (%s<id>%s)",
				 req->file, SPOOL_PREFIX, SPOOL_SUFFIX);
	if (req->n_names > IMPORT_NAMES_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "more than %d names", IMPORT_NAMES_MAX);
	for (size_t i = 0; i < req->n_names; i++)
		if (!*req->names[i] || strlen(req->names[i]) > IMPORT_NAME_LEN_MAX)
			return cri_failf(rpc, CRISP_E_INVALID,
					 "name %zu is empty or longer than %d bytes", i,
					 IMPORT_NAME_LEN_MAX);
	imp.file = req->file;
	imp.names = req->names;
	imp.n_names = req->n_names;
	/* Like a pull: as long as it takes (imaged bounds what it reads). */
	helper_call(HELPER_IMAGED, IPC_IMAGED_IMAGE_IMPORT, &imp.base,
		    &crisp_ipc__image_import_reply__descriptor, HELPER_NO_TIMEOUT, on_import, rpc);
}
