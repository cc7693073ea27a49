/* Offline import: an OCI image layout or a docker-archive ("docker save"),
 * as one tar (maybe gzip- or zstd-compressed) that root's crisp-import left
 * in the spool directory <root_dir>/imaged/import.
 *
 * The archive is as hostile as anything from a registry: imaged parses no
 * tar. It is read twice on a worker thread by a crisp-unpack child in its
 * archive mode (no capability, no file access), which streams the entries
 * back (archive_reader_*, imaged/unpack_client.c); nothing is extracted as
 * files. imaged bounds what the child says like the archive itself. The first
 * pass hashes every regular entry and keeps the small ones (JSON) in
 * memory; the images are then resolved from index.json or manifest.json
 * with the parsers pulls use (imaged/manifest.c, image_config.c), so the
 * same checks hold (schema 1 refused, digests well-formed, sizes bounded).
 * The second pass copies the blobs the images need into the content store,
 * where each is verified against its digest before it is renamed into
 * place. Layers are then unpacked exactly as a pull unpacks them
 * (layer_unpack_commit) and the images recorded last, so a bad archive
 * leaves nothing recorded (at most verified blobs, which GC removes).
 *
 * The spool file is opened by name in the spool directory only, with
 * O_NOFOLLOW, and moved into the trash at once (imaged/trash.h): it is gone
 * whatever happens next. The archive may be gigabytes, whose pages the
 * kernel frees on the thread that drops the last reference: the worker
 * closes the file when done with it, and the trash's worker deletes the
 * name, so neither happens on the event loop. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "imaged/content.h"
#include "imaged/digest.h"
#include "imaged/image_config.h"
#include "imaged/imaged.h"
#include "imaged/manifest.h"
#include "imaged/reference.h"
#include "imaged/store.h"
#include "imaged/trash.h"
#include "imaged/unpack.h"
#include "imaged/worker.h"

/* An image layout has a few files per image: these bound a hostile one
 * (entries are looked up by a linear search). */
#define IMPORT_MAX_ENTRIES 10000
#define IMPORT_MAX_PATH 1024
#define IMPORT_MAX_IMAGES 64
#define IMPORT_MAX_NAMES 32
/* Entries up to this size are kept in memory (manifests, configs, index),
 * up to the total below; larger JSON is refused. */
#define IMPORT_JSON_MAX (4u << 20)
#define IMPORT_KEEP_TOTAL (64u << 20)

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"

struct arc_entry {
	char *name; /* normalized: no "./", no leading "/" */
	char *link; /* symlink target, normalized against the entry's dir */
	char digest[CONTENT_DIGEST_MAX];
	int64_t size;
	char *data; /* kept content (NUL-terminated), or NULL */
	bool want;  /* pass 2 copies it into the content store */
};

struct import_image {
	char *index_digest; /* the index the manifest was picked from */
	char *manifest_digest;
	char *manifest; /* JSON bytes */
	size_t manifest_len;
	struct manifest m;
	char *config;
	size_t config_len;
	struct image_config cfg;
	char **names;
	size_t n_names;
	bool made_manifest; /* docker-archive: the manifest is ours, to store */
	char *id;           /* after it is recorded */
};

struct import {
	int fd;
	char *file;
	char **names; /* from the request, normalized */
	size_t n_names;
	struct child_deferred d;
	struct arc_entry *entries;
	size_t n_entries;
	uint64_t kept;
	struct import_image *images;
	size_t n_images;
	uint64_t start_ms;
};

static void import_free(struct import *im)
{
	safe_close(im->fd);
	free(im->file);
	for (size_t i = 0; i < im->n_names; i++)
		free(im->names[i]);
	free(im->names);
	for (size_t i = 0; i < im->n_entries; i++) {
		free(im->entries[i].name);
		free(im->entries[i].link);
		free(im->entries[i].data);
	}
	free(im->entries);
	for (size_t i = 0; i < im->n_images; i++) {
		struct import_image *img = &im->images[i];
		free(img->index_digest);
		free(img->manifest_digest);
		free(img->manifest);
		manifest_done(&img->m);
		free(img->config);
		image_config_done(&img->cfg);
		for (size_t j = 0; j < img->n_names; j++)
			free(img->names[j]);
		free(img->names);
		free(img->id);
	}
	free(im->images);
	free(im);
}

/* ---- reading the archive ------------------------------------------------------ */

/* "./a//b/" -> "a/b"; NULL when empty, or for a ".." component. A link
 * target (dir set: the link's directory) may use ".." as long as it stays
 * inside the archive: docker save links a repeated layer as
 * "../<id>/layer.tar". */
static char *name_normalize(const char *dir, const char *name)
{
	_cleanup_free_ char *joined = dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
	char *out = xmalloc(strlen(joined) + 1), *o = out;
	char *save = NULL;

	for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (streq(c, "."))
			continue;
		if (streq(c, "..")) {
			char *up = o > out ? memrchr(out, '/', o - out) : NULL;
			if (!dir || o == out) {
				free(out);
				return NULL;
			}
			o = up ? up : out;
			continue;
		}
		if (o != out)
			*o++ = '/';
		o = stpcpy(o, c);
	}
	*o = '\0';
	if (!*out) {
		free(out);
		return NULL;
	}
	return out;
}

static struct arc_entry *entry_find(struct import *im, const char *name)
{
	for (size_t i = 0; i < im->n_entries; i++)
		if (streq(im->entries[i].name, name))
			return &im->entries[i];
	return NULL;
}

/* Follow symlinks among the archive's own entries (docker save links a
 * repeated layer to its first copy), a few hops at most. */
static struct arc_entry *entry_resolve(struct import *im, const char *name, struct crisp_error *err)
{
	struct arc_entry *e = entry_find(im, name);

	for (int hops = 0; e && e->link && hops < 8; hops++)
		e = entry_find(im, e->link);
	if (!e || e->link) {
		err_set(err, CRISP_E_INVALID, "the archive has no file '%.200s'", name);
		return NULL;
	}
	return e;
}

/* Pass 1: every entry's name, size and digest; small ones kept. */
static int archive_scan(struct import *im, struct crisp_error *err)
{
	uint64_t max_entry = (uint64_t)imaged.cfg->max_layer_size_mb << 20;
	/* One more than the bound below, so that its own message says it;
	 * sizes are checked here before any data is read. */
	struct archive_reader *a = archive_reader_open(im->fd, 1, IMPORT_MAX_ENTRIES + 1,
						       UINT64_MAX, err);
	struct archive_reader_entry ae;
	uint64_t headers = 0;
	int r = 0, ar;

	if (!a)
		return -1;
	while ((ar = archive_reader_next(a, &ae, err)) > 0) {
		const char *raw = ae.name;
		enum archive_reader_type type = ae.type;
		_cleanup_free_ char *name = NULL;
		struct arc_entry *e;

		if (++headers > IMPORT_MAX_ENTRIES) {
			r = err_set(err, CRISP_E_RESOURCE, "the archive has more than %d entries",
				    IMPORT_MAX_ENTRIES);
			break;
		}
		if (!raw || strlen(raw) > IMPORT_MAX_PATH) {
			r = err_set(err, CRISP_E_INVALID,
				    "an archive entry has no name or a longer one than %d bytes",
				    IMPORT_MAX_PATH);
			break;
		}
		/* Nothing is extracted, but a name that would leave the archive
		 * says the archive is not what it claims. */
		name = name_normalize(NULL, raw);
		if (raw[0] == '/' ||
		    (!name && (type != ARCHIVE_READER_DIRECTORY || strstr(raw, "..")))) {
			r = err_set(err, CRISP_E_INVALID,
				    "archive entry '%.200s': absolute or '..' names are refused",
				    raw);
			break;
		}
		if (type != ARCHIVE_READER_REGULAR && type != ARCHIVE_READER_SYMLINK &&
		    type != ARCHIVE_READER_HARDLINK)
			continue; /* nothing of an image layout is anything else */
		if (entry_find(im, name)) {
			r = err_set(err, CRISP_E_INVALID, "archive entry '%.200s' appears twice",
				    name);
			break;
		}
		im->entries = xrealloc(im->entries, (im->n_entries + 1) * sizeof(*im->entries));
		e = &im->entries[im->n_entries++];
		memset(e, 0, sizeof(*e));
		e->name = TAKE_PTR(name);
		if (type != ARCHIVE_READER_REGULAR) {
			const char *target = ae.link;
			_cleanup_free_ char *dir = xstrdup(e->name);
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = '\0';
			/* "" stands for the archive's top: links there may
			 * use ".." too. A hard link (to an earlier entry, like
			 * a symlink here) is named from the archive's top. */
			if (type == ARCHIVE_READER_HARDLINK)
				e->link = target && strlen(target) <= IMPORT_MAX_PATH
						  ? name_normalize(NULL, target)
						  : NULL;
			else
				e->link = target && target[0] != '/' &&
							  strlen(target) <= IMPORT_MAX_PATH
						  ? name_normalize(slash ? dir : "", target)
						  : NULL;
			if (!e->link) {
				r = err_set(err, CRISP_E_INVALID,
					    "archive entry '%.200s' links outside the archive",
					    e->name);
				break;
			}
			continue;
		}
		if (ae.size > max_entry) {
			r = err_set(err, CRISP_E_RESOURCE,
				    "archive entry '%.200s' is larger than "
				    "images.max_layer_size_mb (%" PRIu64 " MiB)",
				    e->name, max_entry >> 20);
			break;
		}
		e->size = (int64_t)ae.size;
		bool keep = e->size <= (int64_t)IMPORT_JSON_MAX &&
			    im->kept + e->size <= IMPORT_KEEP_TOTAL;
		if (keep) {
			e->data = xmalloc(e->size + 1);
			im->kept += e->size;
		}
		struct digest_ctx md;
		digest_init(&md, DIGEST_SHA256);
		const void *p;
		size_t n;
		int64_t got = 0;
		/* The reader hands exactly e->size bytes (sparse holes as
		 * zeros), or fails. */
		while ((ar = archive_reader_data(a, &p, &n, err)) > 0) {
			digest_update(&md, p, n);
			if (keep)
				memcpy(e->data + got, p, n);
			got += (int64_t)n;
		}
		digest_final_string(&md, e->digest);
		if (ar < 0) {
			r = -1;
			break;
		}
		if (keep)
			e->data[e->size] = '\0';
	}
	if (ar < 0)
		r = -1;
	archive_reader_close(a, err);
	return r < 0 || err->code != CRISP_E_OK ? -1 : 0;
}

/* Pass 2: copy the wanted entries into the content store; each is verified
 * against the digest pass 1 computed and the name it is wanted under. */
static int archive_store(struct import *im, struct crisp_error *err)
{
	uint64_t max_entry = (uint64_t)imaged.cfg->max_layer_size_mb << 20;
	struct archive_reader *a;
	struct archive_reader_entry ae;
	int r = 0, ar = 0;
	size_t wanted = 0;

	for (size_t i = 0; i < im->n_entries; i++)
		if (im->entries[i].want && !im->entries[i].data &&
		    !content_exists(imaged.content, im->entries[i].digest, NULL))
			wanted++;
	for (size_t i = 0; i < im->n_entries; i++) {
		struct arc_entry *e = &im->entries[i];
		if (e->want && e->data &&
		    content_put(imaged.content, e->digest, e->data, e->size, err) < 0)
			return -1;
	}
	if (wanted == 0)
		return 0;
	/* The bounds pass 1 held the archive to: a second reading beyond them
	 * is no longer the same archive. */
	a = archive_reader_open(im->fd, 2, IMPORT_MAX_ENTRIES, max_entry, err);
	if (!a)
		return -1;
	while (r == 0 && (ar = archive_reader_next(a, &ae, err)) > 0) {
		_cleanup_free_ char *name = NULL;
		struct arc_entry *e;
		struct content_ingest *ing;

		if (ae.type != ARCHIVE_READER_REGULAR || !ae.name)
			continue;
		name = name_normalize(NULL, ae.name);
		e = name ? entry_find(im, name) : NULL;
		if (!e || !e->want || e->data)
			continue;
		ing = content_ingest_start(imaged.content, e->digest, e->size, false, err);
		if (!ing && err->code == CRISP_E_EXISTS) {
			err_clear(err);
			continue;
		}
		if (!ing) {
			if (err->code == CRISP_E_PRECONDITION)
				err_set(err, CRISP_E_UNAVAILABLE,
					"blob %s is being downloaded by a pull right now: import "
					"again later",
					e->digest);
			r = -1;
			break;
		}
		const void *p;
		size_t n;
		while (r == 0 && (ar = archive_reader_data(a, &p, &n, err)) > 0)
			r = content_ingest_write(ing, p, n, err);
		if (ar < 0)
			r = -1;
		if (r < 0) {
			content_ingest_abort(ing);
			break;
		}
		/* The archive changed between the passes, or lies: the digest
		 * check of the commit says so. */
		if (content_ingest_commit(ing, err) < 0) {
			err_prefix(err, "archive entry '%.200s'", e->name);
			r = -1;
		}
	}
	/* The reader's failure, not the content store's: say which reading. */
	if (ar < 0)
		r = (err_prefix(err, "rereading the archive"), -1);
	if (archive_reader_close(a, err) < 0 && r == 0)
		r = (err_prefix(err, "rereading the archive"), -1);
	/* Whatever the second reading met, nothing may be missing. */
	for (size_t i = 0; r == 0 && i < im->n_entries; i++)
		if (im->entries[i].want &&
		    !content_exists(imaged.content, im->entries[i].digest, NULL))
			r = err_set(err, CRISP_E_INVALID,
				    "archive entry '%.200s' vanished on rereading",
				    im->entries[i].name);
	return r;
}

/* ---- resolving the images ------------------------------------------------------ */

/* The blob an OCI layout holds for digest: blobs/<alg>/<hex>, whose content
 * must hash to it. */
static struct arc_entry *oci_blob(struct import *im, const char *digest, struct crisp_error *err)
{
	_cleanup_free_ char *path = NULL;
	struct arc_entry *e;

	if (!digest || !digest_valid(digest) || strncmp(digest, "sha256:", 7) != 0) {
		err_set(err, CRISP_E_INVALID,
			"unsupported or malformed digest '%.80s' in the archive",
			digest ? digest : "");
		return NULL;
	}
	path = xasprintf("blobs/sha256/%s", digest + 7);
	e = entry_resolve(im, path, err);
	if (e && !streq(e->digest, digest)) {
		err_set(err, CRISP_E_INVALID,
			"blob %s in the archive has digest %s (corrupt or tampered archive)",
			digest, e->digest);
		return NULL;
	}
	return e;
}

static int need_json(struct arc_entry *e, const char *what, struct crisp_error *err)
{
	if (!e->data)
		return err_set(err, CRISP_E_RESOURCE,
			       "%s '%.200s' is too large (%" PRId64 " bytes)", what, e->name,
			       e->size);
	e->want = true;
	return 0;
}

static void name_add(struct import_image *img, const char *raw)
{
	struct image_ref ref;
	struct crisp_error err;

	if (image_ref_parse(raw, &ref, &err) < 0) {
		log_warn("import: ignoring image name '%.200s' of the archive: %s", raw, err.msg);
		return;
	}
	if (image_ref_is_id(&ref) || ref.digest)
		log_warn("import: ignoring image name '%.200s' of the archive: not a tag", raw);
	else if (img->n_names < IMPORT_MAX_NAMES) {
		img->names = xrealloc(img->names, (img->n_names + 1) * sizeof(char *));
		img->names[img->n_names++] = image_ref_string(&ref);
	}
	image_ref_free(&ref);
}

static struct import_image *image_new(struct import *im, struct crisp_error *err)
{
	struct import_image *img;

	if (im->n_images >= IMPORT_MAX_IMAGES) {
		err_set(err, CRISP_E_RESOURCE, "the archive holds more than %d images",
			IMPORT_MAX_IMAGES);
		return NULL;
	}
	im->images = xrealloc(im->images, (im->n_images + 1) * sizeof(*im->images));
	img = &im->images[im->n_images++];
	memset(img, 0, sizeof(*img));
	return img;
}

/* The manifest's config and layers: known, of the archive, consistent. */
static int image_load(struct import *im, struct import_image *img, bool oci,
		      struct crisp_error *err)
{
	struct arc_entry *e;

	if (img->m.config_size > (int64_t)IMPORT_JSON_MAX)
		return err_set(err, CRISP_E_RESOURCE,
			       "image config of %" PRId64 " bytes is too large",
			       img->m.config_size);
	if (oci) {
		e = oci_blob(im, img->m.config_digest, err);
		if (!e)
			return -1;
		if (e->size != img->m.config_size)
			return err_set(err, CRISP_E_INVALID,
				       "config %s is %" PRId64 " bytes, the manifest says %" PRId64,
				       img->m.config_digest, e->size, img->m.config_size);
		for (size_t i = 0; i < img->m.n_layers; i++) {
			struct arc_entry *l = oci_blob(im, img->m.layers[i].digest, err);
			if (!l)
				return -1;
			if (l->size != img->m.layers[i].size)
				return err_set(err, CRISP_E_INVALID,
					       "layer %s is %" PRId64
					       " bytes, the manifest says %" PRId64,
					       l->digest, l->size, img->m.layers[i].size);
			l->want = true;
		}
	} else {
		e = NULL;
		for (size_t i = 0; i < im->n_entries && !e; i++)
			if (!im->entries[i].link &&
			    streq(im->entries[i].digest, img->m.config_digest))
				e = &im->entries[i];
		if (!e)
			return err_set(err, CRISP_E_INTERNAL, "config %s vanished",
				       img->m.config_digest);
	}
	if (need_json(e, "image config", err) < 0)
		return -1;
	img->config = xstrdup(e->data);
	img->config_len = e->size;
	if (image_config_parse(img->config, img->config_len, &img->cfg, err) < 0)
		return err_prefix(err, "image config %s", img->m.config_digest), -1;
	if (img->cfg.n_diff_ids != img->m.n_layers)
		return err_set(err, CRISP_E_INVALID,
			       "image config lists %zu layers (rootfs.diff_ids), the manifest %zu",
			       img->cfg.n_diff_ids, img->m.n_layers);
	return 0;
}

static int manifest_load(struct import *im, struct import_image *img, const char *media_type,
			 const char *digest, struct crisp_error *err)
{
	struct arc_entry *e = oci_blob(im, digest, err);

	if (!e || need_json(e, "manifest", err) < 0)
		return -1;
	if (manifest_parse(media_type, e->data, e->size, &img->m, err) < 0)
		return err_prefix(err, "manifest %s", digest), -1;
	img->manifest_digest = xstrdup(digest);
	img->manifest = xstrdup(e->data);
	img->manifest_len = e->size;
	return image_load(im, img, true, err);
}

static bool platform_fits(json_t *desc)
{
	json_t *p = json_object_get(desc, "platform");
	const char *os, *arch;

	if (!json_is_object(p))
		return true;
	os = json_string_value(json_object_get(p, "os"));
	arch = json_string_value(json_object_get(p, "architecture"));
	return (!os || streq(os, "linux")) && (!arch || streq(arch, manifest_host_arch()));
}

static int oci_resolve(struct import *im, struct crisp_error *err)
{
	struct arc_entry *ie = entry_resolve(im, "index.json", err);
	json_error_t jerr;
	json_t *root, *mans, *d;
	size_t i;
	int r = 0;

	if (!ie || need_json(ie, "index.json", err) < 0)
		return -1;
	ie->want = false; /* not a blob of any image */
	root = json_loadb(ie->data, ie->size, JSON_REJECT_DUPLICATES, &jerr);
	mans = json_object_get(root, "manifests");
	if (!json_is_array(mans)) {
		json_decref(root);
		return err_set(err, CRISP_E_INVALID, "malformed index.json: %s",
			       root ? "no manifests array" : jerr.text);
	}
	json_array_foreach(mans, i, d)
	{
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		const char *digest = json_string_value(json_object_get(d, "digest"));
		json_t *ann = json_object_get(d, "annotations");
		const char *cname = json_string_value(
			json_object_get(ann, "io.containerd.image.name"));
		const char *rname = json_string_value(
			json_object_get(ann, "org.opencontainers.image.ref.name"));
		struct import_image *img;
		_cleanup_free_ char *chosen = NULL;

		if (!mt) {
			r = err_set(err, CRISP_E_INVALID,
				    "index.json: manifest %zu has no mediaType", i);
			break;
		}
		if (!manifest_is_index(mt) && !platform_fits(d))
			continue;
		img = image_new(im, err);
		if (!img) {
			r = -1;
			break;
		}
		if (manifest_is_index(mt)) {
			struct arc_entry *x = oci_blob(im, digest, err);
			json_t *sub;
			const char *sub_mt = NULL;
			if (!x || need_json(x, "index", err) < 0 ||
			    manifest_select_platform(x->data, x->size, &chosen, err) < 0) {
				r = -1;
				break;
			}
			/* The manifest's media type, from the index that lists it. */
			sub = json_loadb(x->data, x->size, 0, NULL);
			size_t k;
			json_t *sd;
			json_array_foreach(
				json_object_get(sub, "manifests"), k,
				sd) if (streq(json_string_value(json_object_get(sd, "digest"))
						      ?: "",
					      chosen))
				sub_mt = json_string_value(json_object_get(sd, "mediaType"));
			img->index_digest = xstrdup(digest);
			r = manifest_load(im, img, sub_mt ? sub_mt : MT_OCI_MANIFEST, chosen, err);
			json_decref(sub);
		} else {
			r = manifest_load(im, img, mt, digest, err);
		}
		if (r < 0)
			break;
		/* A bare tag ("latest") is no image name: only full names count. */
		if (cname)
			name_add(img, cname);
		else if (rname && (strchr(rname, '/') || strchr(rname, ':')))
			name_add(img, rname);
	}
	json_decref(root);
	return r;
}

/* A docker-archive has no manifest: make the OCI one its layers and config
 * amount to, so the image is stored like any other. */
static int docker_resolve(struct import *im, struct crisp_error *err)
{
	struct arc_entry *me = entry_resolve(im, "manifest.json", err);
	json_error_t jerr;
	json_t *root, *d;
	size_t i;
	int r = 0;

	if (!me || need_json(me, "manifest.json", err) < 0)
		return -1;
	me->want = false;
	root = json_loadb(me->data, me->size, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_array(root)) {
		json_decref(root);
		return err_set(err, CRISP_E_INVALID, "malformed manifest.json: %s",
			       root ? "not an array" : jerr.text);
	}
	json_array_foreach(root, i, d)
	{
		const char *cfgname = json_string_value(json_object_get(d, "Config"));
		json_t *layers = json_object_get(d, "Layers"),
		       *tags = json_object_get(d, "RepoTags");
		struct import_image *img = image_new(im, err);
		struct arc_entry *ce;
		json_t *man, *ls, *l, *t;
		size_t k;

		if (!img) {
			r = -1;
			break;
		}
		if (!cfgname || !json_is_array(layers) ||
		    json_array_size(layers) > MANIFEST_MAX_LAYERS) {
			r = err_set(
				err, CRISP_E_INVALID,
				"manifest.json: image %zu lacks Config or Layers (or has too many)",
				i);
			break;
		}
		_cleanup_free_ char *cn = name_normalize(NULL, cfgname);
		ce = cn ? entry_resolve(im, cn, err) : NULL;
		if (!ce) {
			if (!cn)
				err_set(err, CRISP_E_INVALID, "manifest.json: bad Config name");
			r = -1;
			break;
		}
		man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2,
				"mediaType", MT_OCI_MANIFEST, "config", "mediaType", MT_OCI_CONFIG,
				"digest", ce->digest, "size", (json_int_t)ce->size, "layers");
		ls = json_object_get(man, "layers");
		json_array_foreach(layers, k, l)
		{
			const char *ln = json_string_value(l);
			_cleanup_free_ char *lnn = ln ? name_normalize(NULL, ln) : NULL;
			struct arc_entry *le = lnn ? entry_resolve(im, lnn, err) : NULL;
			if (!le) {
				if (!lnn)
					err_set(err, CRISP_E_INVALID,
						"manifest.json: bad layer name");
				r = -1;
				break;
			}
			le->want = true;
			/* Usually plain tar; unpack detects compression itself. */
			json_array_append_new(ls, json_pack("{s:s, s:s, s:I}", "mediaType",
							    MT_OCI_LAYER, "digest", le->digest,
							    "size", (json_int_t)le->size));
		}
		if (r == 0) {
			char *body = json_dumps(man, JSON_COMPACT);
			char digest[DIGEST_STRING_MAX];
			if (!body)
				abort();
			digest_buf(DIGEST_SHA256, body, strlen(body), digest);
			img->manifest = body;
			img->manifest_len = strlen(body);
			img->manifest_digest = xstrdup(digest);
			img->made_manifest = true;
			r = manifest_parse(MT_OCI_MANIFEST, body, img->manifest_len, &img->m, err);
			if (r == 0)
				r = image_load(im, img, false, err);
		}
		json_decref(man);
		if (r < 0)
			break;
		json_array_foreach(tags, k, t) if (json_is_string(t))
			name_add(img, json_string_value(t));
	}
	json_decref(root);
	return r;
}

/* ---- unpack and record --------------------------------------------------------- */

static int image_unpack(struct import_image *img, struct crisp_error *err)
{
	size_t n = img->m.n_layers;
	_cleanup_free_ char(*chains)[CONTENT_DIGEST_MAX] = xcalloc(n + 1, sizeof(*chains));
	_cleanup_free_ const char **below = xcalloc(n + 1, sizeof(char *));

	for (size_t i = 0; i < n; i++) {
		struct store_snapshot *s = NULL;
		struct unpack_result res;
		bool committed;

		if (image_chain_id(i ? chains[i - 1] : NULL, img->cfg.diff_ids[i], chains[i], err) <
		    0)
			return -1;
		below[i] = chains[i];
		committed = store_snapshot_get(imaged.store, chains[i], &s, err) == 0 &&
			    s->kind == STORE_SNAPSHOT_COMMITTED;
		store_snapshot_free(s);
		err_clear(err);
		if (committed)
			continue;
		if (layer_unpack_commit(img->m.layers[i].digest, img->cfg.diff_ids[i], chains[i],
					below, i, &res, err) < 0)
			return err_prefix(err, "layer %zu (%s)", i, img->m.layers[i].digest), -1;
	}
	return 0;
}

static int image_record(struct import_image *img, struct crisp_error *err)
{
	_cleanup_free_ struct store_layer *layers = xcalloc(img->m.n_layers + 1, sizeof(*layers));
	struct store_image si = { 0 };

	si.id = img->m.config_digest;
	si.manifest_digest = img->manifest_digest;
	si.manifest = img->manifest;
	si.config = img->config;
	if (img->index_digest) {
		si.extra_blobs = &img->index_digest;
		si.n_extra_blobs = 1;
	}
	si.names = img->names;
	si.n_names = img->n_names;
	for (size_t i = 0; i < img->m.n_layers; i++) {
		layers[i].diff_id = img->cfg.diff_ids[i];
		layers[i].blob_digest = img->m.layers[i].digest;
		layers[i].media_type = img->m.layers[i].media_type;
		layers[i].size = img->m.layers[i].size;
	}
	si.layers = layers;
	si.n_layers = img->m.n_layers;
	if (store_image_put(imaged.store, &si, err) < 0)
		return -1;
	img->id = xstrdup(si.id);
	return 0;
}

static void import_run(struct import *im, struct crisp_error *err)
{
	bool oci;

	if (archive_scan(im, err) < 0)
		return;
	oci = entry_find(im, "index.json") != NULL;
	if (!oci && !entry_find(im, "manifest.json"))
		return (void)err_set(
			err, CRISP_E_INVALID,
			"neither an OCI image layout (index.json) nor a docker-archive "
			"(manifest.json)");
	if (oci && !entry_find(im, "oci-layout"))
		return (void)err_set(err, CRISP_E_INVALID,
				     "an OCI image layout without its oci-layout file");
	if ((oci ? oci_resolve(im, err) : docker_resolve(im, err)) < 0)
		return;
	if (im->n_images == 0)
		return (void)err_set(err, CRISP_E_NOT_FOUND,
				     "the archive holds no image for linux/%s",
				     manifest_host_arch());
	if (im->n_names) {
		if (im->n_images != 1)
			return (void)err_set(err, CRISP_E_INVALID,
					     "names were given, but the archive holds %zu images",
					     im->n_images);
		struct import_image *img = &im->images[0];
		for (size_t j = 0; j < img->n_names; j++)
			free(img->names[j]);
		img->names = TAKE_PTR(im->names);
		img->n_names = im->n_names;
		im->n_names = 0;
	}
	for (size_t i = 0; i < im->n_images; i++)
		if (im->images[i].n_names == 0)
			return (void)err_set(err, CRISP_E_INVALID,
					     "image %s of the archive has no name: give one "
					     "(crisp-import --name)",
					     im->images[i].m.config_digest);
	if (archive_store(im, err) < 0)
		return;
	for (size_t i = 0; i < im->n_images; i++) {
		struct import_image *img = &im->images[i];
		if (img->made_manifest && content_put(imaged.content, img->manifest_digest,
						      img->manifest, img->manifest_len, err) < 0)
			return;
	}
	for (size_t i = 0; i < im->n_images; i++)
		if (image_unpack(&im->images[i], err) < 0)
			return;
	for (size_t i = 0; i < im->n_images; i++)
		if (image_record(&im->images[i], err) < 0)
			return;
}

static void import_work(void *arg, struct crisp_error *err)
{
	struct import *im = arg;

	import_run(im, err);
	/* Here, off the loop: this may be the archive's last reference. */
	im->fd = safe_close(im->fd);
}

static void import_end(struct import *im)
{
	imaged.pulls--;
	if (imaged.pulls == 0 && imaged.gc_pending)
		images_gc();
	import_free(im);
	/* the archive, and whatever the import discarded */
	trash_empty();
}

static void import_done(void *arg, const struct crisp_error *err)
{
	struct import *im = arg;
	_cleanup_free_ char **ids = NULL;

	if (err->code != CRISP_E_OK) {
		log_warn("import of %s failed: %s", im->file, err->msg);
		child_reply_error(&im->d, err);
		return import_end(im);
	}
	ids = xcalloc(im->n_images, sizeof(char *));
	for (size_t i = 0; i < im->n_images; i++) {
		ids[i] = im->images[i].id;
		log_info("imported %s as %s (%zu layers)", im->images[i].names[0], ids[i],
			 im->images[i].m.n_layers);
	}
	log_info("import of %s: %zu images in %" PRIu64 " ms", im->file, im->n_images,
		 now_ms() - im->start_ms);
	images_reply_imported(&im->d, ids, im->n_images);
	import_end(im);
}

/* ---- start ------------------------------------------------------------------------ */

bool import_file_name_valid(const char *s)
{
	size_t n = strlen(s), pre = strlen(IMPORT_FILE_PREFIX), suf = strlen(IMPORT_FILE_SUFFIX);

	if (n < pre + 16 + suf || n > pre + 64 + suf || strncmp(s, IMPORT_FILE_PREFIX, pre) != 0 ||
	    !streq(s + n - suf, IMPORT_FILE_SUFFIX))
		return false;
	for (size_t i = pre; i < n - suf; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

void import_start(const char *file, char *const *names, size_t n_names,
		  const struct child_deferred *d)
{
	struct import *im;
	struct crisp_error err = { 0 };
	struct stat st;
	int fd;

	if (!import_file_name_valid(file)) {
		err_set(&err, CRISP_E_INVALID, "'%.80s' is not a name of the import spool", file);
		return child_reply_error(d, &err);
	}
	if (n_names > IMPORT_MAX_NAMES) {
		err_set(&err, CRISP_E_INVALID, "more than %d names", IMPORT_MAX_NAMES);
		return child_reply_error(d, &err);
	}
	fd = openat(imaged.import_fd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err_set_errno(&err, errno == ENOENT ? CRISP_E_NOT_FOUND : CRISP_E_INVALID, errno,
			      "cannot open %s in the import spool", file);
		return child_reply_error(d, &err);
	}
	/* Gone from the spool whatever happens: the fd is all we need. A
	 * file goes into the trash, emptied when the import is over
	 * (import_end): the name keeps the last close from freeing the
	 * archive here. */
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (S_ISREG(st.st_mode) && trash_move(imaged.import_fd, file, "import", &err) == 0) {
		log_debug("trash: %s moved in, to be deleted after its import", file);
	} else {
		if (err.code != CRISP_E_OK)
			log_warn("%s; deleting it in place", err.msg);
		err_clear(&err);
		if (unlinkat(imaged.import_fd, file, 0) < 0)
			log_warn("cannot remove %s from the import spool: %m", file);
	}
	/* Only what root put there in a plain file is imported. */
	if (!S_ISREG(st.st_mode) || st.st_uid != 0) {
		close(fd);
		trash_empty();
		err_set(&err, CRISP_E_INVALID,
			"%s in the import spool is not a regular file of root", file);
		return child_reply_error(d, &err);
	}
	im = xcalloc(1, sizeof(*im));
	im->fd = fd;
	im->file = xstrdup(file);
	im->d = *d;
	im->start_ms = now_ms();
	im->names = xcalloc(n_names + 1, sizeof(char *));
	for (size_t i = 0; i < n_names; i++) {
		struct image_ref ref;
		if (image_ref_parse(names[i], &ref, &err) < 0) {
			child_reply_error(d, &err);
			import_free(im);
			return trash_empty();
		}
		if (image_ref_is_id(&ref) || ref.digest) {
			image_ref_free(&ref);
			err_set(&err, CRISP_E_INVALID,
				"name '%.200s': give a name with a tag, not an id or digest",
				names[i]);
			child_reply_error(d, &err);
			import_free(im);
			return trash_empty();
		}
		im->names[im->n_names++] = image_ref_string(&ref);
		image_ref_free(&ref);
	}
	/* Holds GC off like a pull: blobs stored before the image is recorded
	 * would look like garbage. */
	imaged.pulls++;
	log_info("importing %s (%" PRId64 " bytes)", file, (int64_t)st.st_size);
	worker_submit(import_work, import_done, im);
}

/* An archive crisp-import linked into the spool but never asked for (it
 * was killed in between) would stay forever: at start, remove what is older
 * than any import about to be asked for. */
#define SPOOL_MAX_AGE_S 3600

void import_spool_gc(void)
{
	int fd = fcntl(imaged.import_fd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	struct stat st;
	time_t now = time(NULL);

	if (!d) {
		safe_close(fd);
		log_warn("cannot read the import spool: %m");
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || streq(e->d_name, "..")))
			continue;
		if (fstatat(imaged.import_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (S_ISREG(st.st_mode) && now - st.st_mtime < SPOOL_MAX_AGE_S))
			continue;
		log_info("removing %s from the import spool", e->d_name);
		/* an archive may be large: into the trash, which imaged empties
		 * on a worker once it is ready */
		if (S_ISREG(st.st_mode) &&
		    trash_move(imaged.import_fd, e->d_name, "import", NULL) == 0)
			continue;
		if (unlinkat(imaged.import_fd, e->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) <
		    0)
			log_warn("cannot remove %s from the import spool: %m", e->d_name);
	}
	closedir(d);
}
