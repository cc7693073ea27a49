/* Unit tests of imaged's metadata store (store.c, store_snapshot.c,
 * image_config.c, db.c): images with their names, layers and parsed config;
 * tags that move; lookups by id, name and id prefix; snapshots; garbage
 * collection with layers shared by two images and a snapshot still in use by
 * a container; durability across a reopen; one owner at a time; names that
 * look like SQL stored verbatim. */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "imaged/content.h"
#include "imaged/image_config.h"
#include "imaged/store.h"
#include "tests/unit/tap.h"

/* sha256 of "A" and "B", and their chain id (PROTOCOLS.md section 7). */
#define DIFF_A "sha256:559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd"
#define DIFF_B "sha256:df7e70e5021544f4834bbee64a9e3789febc4be81470df629cad6ddb03320a5c"
#define CHAIN_AB "sha256:ac8b22cdada705e17d1f88efc2e0c626641566d29fd8d3b99ca5eee913782d01"

static char root[] = "/tmp/crisp-test-store-XXXXXX";
static char dbpath[256];

/* A test image: its bytes, the digests of its blobs, and what put takes. */
struct timage {
	char manifest[512], config[2048];
	char id[80], manifest_digest[80];
	char diff_ids[3][80], blobs[3][80];
	char blob_data[3][32];
	struct store_layer layers[3];
	char *names[4];
	struct store_image img;
};

static void sha256_of(const void *buf, size_t len, char out[80])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (unsigned int i = 0; i < n; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* layers: the letters whose sha256 are the diff ids ("AB": two layers). */
static void timage_make(struct timage *t, const char *layers, const char *user, const char *tag)
{
	char ids[256] = "";

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; layers[i]; i++) {
		sha256_of(&layers[i], 1, t->diff_ids[i]);
		snprintf(t->blob_data[i], sizeof(t->blob_data[i]), "blob of layer %c", layers[i]);
		sha256_of(t->blob_data[i], strlen(t->blob_data[i]), t->blobs[i]);
		t->layers[i] = (struct store_layer){
			.diff_id = t->diff_ids[i],
			.blob_digest = t->blobs[i],
			.media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
			.size = (int64_t)strlen(t->blob_data[i]),
		};
		snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s\"%s\"", i ? "," : "",
			 t->diff_ids[i]);
	}
	snprintf(t->config, sizeof(t->config),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"%s\","
		 "\"Env\":[\"PATH=/bin\",\"TAG=%s\"],\"Entrypoint\":[\"/bin/sh\",\"-c\"],"
		 "\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/srv\",\"Volumes\":{\"/data\":{},"
		 "\"/a\":{}},\"StopSignal\":\"SIGQUIT\",\"Labels\":{\"k\":\"v\"}},"
		 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
		 user, tag, ids);
	sha256_of(t->config, strlen(t->config), t->id);
	snprintf(t->manifest, sizeof(t->manifest),
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\"},\"layers\":%zu}", t->id,
		 strlen(layers));
	sha256_of(t->manifest, strlen(t->manifest), t->manifest_digest);
	t->img = (struct store_image){
		.id = t->id,
		.manifest_digest = t->manifest_digest,
		.manifest = t->manifest,
		.config = t->config,
		.names = t->names,
		.layers = t->layers,
		.n_layers = strlen(layers),
	};
}

static void timage_name(struct timage *t, const char *name)
{
	t->names[t->img.n_names++] = (char *)name;
}

/* Put the image's blobs into the content store, as a pull would. */
static void timage_blobs(struct timage *t, struct content_store *cs)
{
	content_put(cs, t->id, t->config, strlen(t->config), NULL);
	content_put(cs, t->manifest_digest, t->manifest, strlen(t->manifest), NULL);
	for (size_t i = 0; i < t->img.n_layers; i++)
		content_put(cs, t->blobs[i], t->blob_data[i], strlen(t->blob_data[i]), NULL);
}

static bool has_name(const struct store_image *img, const char *name)
{
	for (size_t i = 0; i < img->n_names; i++)
		if (strcmp(img->names[i], name) == 0)
			return true;
	return false;
}

static void test_chain_id(void)
{
	struct crisp_error err = { 0 };
	char out[CONTENT_DIGEST_MAX];

	is_int(image_chain_id(NULL, DIFF_A, out, &err), 0, "chain id of a base layer");
	is_str(out, DIFF_A, "... is its diff id");
	is_int(image_chain_id(DIFF_A, DIFF_B, out, &err), 0, "chain id of two layers");
	is_str(out, CHAIN_AB, "... matches the OCI test vector");
	is_int(image_chain_id(DIFF_A, "sha256:../x", out, &err), -1, "an invalid diff id fails");
}

static void test_put_get(struct store *st, struct timage *a)
{
	struct crisp_error err = { 0 };
	struct store_image *img = NULL;
	char prefix[32];
	json_t *spec;

	is_int(store_schema_version(st), STORE_SCHEMA_VERSION, "schema version is set");
	if (!is_int(store_image_put(st, &a->img, &err), 0, "put an image"))
		diag("%s", err.msg);
	if (!is_int(store_image_get(st, "docker.io/library/busybox:latest", STORE_LOAD_ALL, &img,
				    &err),
		    0, "get by tag")) {
		diag("%s", err.msg);
		return;
	}
	is_str(img->id, a->id, "the image id is the config digest");
	is_str(img->manifest_digest, a->manifest_digest, "manifest digest");
	is_str(img->manifest, a->manifest, "manifest JSON kept");
	is_str(img->config, a->config, "config JSON kept");
	is_int(img->size,
	       strlen(a->manifest) + strlen(a->config) + a->layers[0].size + a->layers[1].size,
	       "size is manifest + config + layer blobs");
	is_str(img->chain_id, CHAIN_AB, "chain id of the top layer");
	is_int(img->n_layers, 2, "two layers");
	is_str(img->layers[0].chain_id, DIFF_A, "layer 0 chain id");
	is_str(img->layers[1].chain_id, CHAIN_AB, "layer 1 chain id");
	is_str(img->layers[1].blob_digest, a->blobs[1], "layer 1 blob");
	is_int(img->layers[1].size, a->layers[1].size, "layer 1 size");
	is_int(img->uid, 1000, "numeric User gives a uid");
	ok(img->username == NULL, "... and no user name");
	ok(img->created_at > 0, "created_at set");
	ok(!img->pinned, "not pinned");
	is_int(img->n_names, 2, "two names");
	ok(has_name(img, "docker.io/library/busybox:latest") && img->n_names == 2 &&
		   strstr(img->names[1], "@sha256:"),
	   "repo tag and repo digest");
	is_int(img->n_extra_blobs, 1, "the index is an extra blob");
	spec = img->spec;
	is_str(json_string_value(json_object_get(spec, "user")), "1000:1000", "spec user");
	is_str(json_string_value(json_array_get(json_object_get(spec, "env"), 1)), "TAG=busybox",
	       "spec env");
	is_str(json_string_value(json_array_get(json_object_get(spec, "entrypoint"), 0)), "/bin/sh",
	       "spec entrypoint");
	is_str(json_string_value(json_array_get(json_object_get(spec, "cmd"), 0)), "echo hi",
	       "spec cmd");
	is_str(json_string_value(json_object_get(spec, "working_dir")), "/srv", "spec workdir");
	is_str(json_string_value(json_object_get(spec, "stop_signal")), "SIGQUIT", "spec signal");
	is_str(json_string_value(json_array_get(json_object_get(spec, "volumes"), 0)), "/a",
	       "spec volumes sorted");
	is_str(json_string_value(json_object_get(json_object_get(spec, "labels"), "k")), "v",
	       "spec labels");
	store_image_free(img);

	img = NULL;
	ok(store_image_get(st, a->id, 0, &img, &err) == 0 && !img->manifest && !img->layers,
	   "get by id, without JSON and layers");
	store_image_free(img);
	img = NULL;
	ok(store_image_get(st, a->names[1], STORE_LOAD_LAYERS, &img, &err) == 0 &&
		   strcmp(img->id, a->id) == 0,
	   "get by repo digest");
	store_image_free(img);
	snprintf(prefix, sizeof(prefix), "%.12s", a->id + 7);
	img = NULL;
	ok(store_image_get(st, prefix, 0, &img, &err) == 0 && strcmp(img->id, a->id) == 0,
	   "get by a 12-digit id prefix");
	store_image_free(img);
	snprintf(prefix, sizeof(prefix), "sha256:%.12s", a->id + 7);
	img = NULL;
	ok(store_image_get(st, prefix, 0, &img, &err) == 0, "get by sha256: and a prefix");
	store_image_free(img);
	img = NULL;
	snprintf(prefix, sizeof(prefix), "%.11s", a->id + 7);
	ok(store_image_get(st, prefix, 0, &img, &err) == -1 && err.code == CRISP_E_NOT_FOUND,
	   "an 11-digit prefix is too short");
	ok(store_image_get(st, "docker.io/library/nope:latest", 0, &img, &err) == -1 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "an unknown name is not found");
	ok(store_image_get(st, "busybox\n", 0, &img, &err) == -1 && err.code == CRISP_E_INVALID,
	   "a name with a control character is invalid");
}

static void test_put_invalid(struct store *st, struct timage *a)
{
	struct crisp_error err = { 0 };
	struct timage t;
	char bad[2048];

	timage_make(&t, "AB", "0", "bad");
	timage_name(&t, "docker.io/library/bad:1");
	t.img.id = a->id;
	ok(store_image_put(st, &t.img, &err) == -1 && err.code == CRISP_E_INVALID &&
		   strstr(err.msg, "corrupt or tampered"),
	   "an id that is not the config's digest is refused");
	t.img.id = t.id;
	t.layers[1].diff_id = t.diff_ids[0];
	ok(store_image_put(st, &t.img, &err) == -1 && strstr(err.msg, "does not match the config"),
	   "layers whose diff ids differ from the config are refused");
	t.layers[1].diff_id = t.diff_ids[1];
	t.img.n_layers = 1;
	ok(store_image_put(st, &t.img, &err) == -1 && strstr(err.msg, "2 diff ids for 1 layers"),
	   "a layer count that differs from the config is refused");
	t.img.n_layers = 2;
	t.names[0] = "docker.io/library/bad:1\r\nx";
	ok(store_image_put(st, &t.img, &err) == -1 && err.code == CRISP_E_INVALID,
	   "a name with control characters is refused");
	t.names[0] = "docker.io/library/bad:1";
	t.layers[0].blob_digest = "sha256:../../etc";
	ok(store_image_put(st, &t.img, &err) == -1 && err.code == CRISP_E_INVALID,
	   "an invalid blob digest is refused");
	t.layers[0].blob_digest = t.blobs[0];

	snprintf(bad, sizeof(bad),
		 "{\"config\":{\"Env\":\"PATH=/bin\"},\"rootfs\":{\"diff_ids\":[]}}");
	t.img.config = bad;
	sha256_of(bad, strlen(bad), t.id);
	t.img.n_layers = 0;
	ok(store_image_put(st, &t.img, &err) == -1 && strstr(err.msg, "Env is not an array"),
	   "a config with a wrongly typed field is refused");
	snprintf(bad, sizeof(bad), "{\"rootfs\":{\"diff_ids\":[]},\"rootfs\":{\"diff_ids\":[]}}");
	sha256_of(bad, strlen(bad), t.id);
	ok(store_image_put(st, &t.img, &err) == -1 && err.code == CRISP_E_INVALID,
	   "a config with duplicate keys is refused");
	snprintf(bad, sizeof(bad), "{\"rootfs\":{\"diff_ids\":[]}}");
	sha256_of(bad, strlen(bad), t.id);
	if (!is_int(store_image_put(st, &t.img, &err), 0, "a minimal config is fine"))
		diag("%s", err.msg);
	store_image_remove(st, t.id, NULL);
}

static void test_names(struct store *st, struct timage *a)
{
	static const char evil[] = "docker.io/library/x:latest'); DROP TABLE images; --";
	struct crisp_error err = { 0 };
	struct store_image *img = NULL;
	struct timage c, e, f, p;
	char *id = NULL;
	bool last = false;

	/* A re-pull of the tag gives a new image: the tag moves, the old
	 * image keeps its repo digest. */
	timage_make(&c, "AC", "nginx", "busybox2");
	timage_name(&c, "docker.io/library/busybox:latest");
	timage_name(&c, evil);
	ok(store_image_put(st, &c.img, &err) == 0, "put a newer image with the same tag");
	ok(store_image_get(st, "docker.io/library/busybox:latest", 0, &img, &err) == 0 &&
		   strcmp(img->id, c.id) == 0,
	   "the tag moved to the new image");
	ok(img && img->uid == -1 && img->username && strcmp(img->username, "nginx") == 0,
	   "a named User gives a user name and no uid");
	store_image_free(img);
	img = NULL;
	ok(store_image_get(st, a->id, 0, &img, &err) == 0 && img->n_names == 1 &&
		   strcmp(img->names[0], a->names[1]) == 0,
	   "the old image keeps only its repo digest");
	store_image_free(img);
	img = NULL;
	ok(store_image_get(st, evil, 0, &img, &err) == 0 && has_name(img, evil),
	   "a name that looks like SQL is stored and found verbatim");
	store_image_free(img);

	/* An image whose only name moves away is dropped, unless pinned. */
	timage_make(&e, "A", "0", "solo-old");
	timage_name(&e, "docker.io/library/solo:1");
	timage_make(&f, "A", "0", "solo-new");
	timage_name(&f, "docker.io/library/solo:1");
	ok(store_image_put(st, &e.img, &err) == 0 && store_image_put(st, &f.img, &err) == 0,
	   "two images in turn under one tag");
	img = NULL;
	ok(store_image_get(st, e.id, 0, &img, &err) == -1 && err.code == CRISP_E_NOT_FOUND,
	   "the image left without a name is gone");
	timage_make(&p, "A", "0", "pause-old");
	timage_name(&p, "registry.k8s.io/pause:3.9");
	p.img.pinned = true;
	ok(store_image_put(st, &p.img, &err) == 0, "put a pinned image");
	timage_make(&e, "A", "0", "pause-new");
	timage_name(&e, "registry.k8s.io/pause:3.9");
	store_image_put(st, &e.img, &err);
	img = NULL;
	ok(store_image_get(st, p.id, 0, &img, &err) == 0 && img->pinned && img->n_names == 0,
	   "a pinned image stays without a name");
	store_image_free(img);
	is_int(store_image_remove(st, p.id, &err), 0, "remove the pinned image explicitly");
	store_image_remove(st, e.id, NULL);
	store_image_remove(st, f.id, NULL);

	ok(store_image_remove_name(st, evil, &last, &id, &err) == 0 && !last &&
		   strcmp(id, c.id) == 0,
	   "removing one of two names: not the last");
	free(id);
	id = NULL;
	ok(store_image_remove_name(st, evil, &last, NULL, &err) == -1 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "removing it again: not found");
	ok(store_image_remove_name(st, a->names[1], &last, &id, &err) == 0 && last &&
		   strcmp(id, a->id) == 0,
	   "removing the last name says so, with the image id");
	free(id);
	ok(store_image_get(st, a->id, 0, &img, &err) == 0 && img->n_names == 0,
	   "the image itself stays until removed");
	store_image_free(img);
	/* Put it back for the GC test. */
	store_image_put(st, &a->img, &err);
	store_image_remove(st, c.id, NULL);
}

struct gc_seen {
	char keys[32][80];
	int kinds[32];
	int n;
	struct store *st;
	bool remove; /* remove snapshots as they come */
	int removed_ok;
};

static int on_gc(enum store_gc_kind kind, const char *key, int64_t id, void *arg)
{
	struct gc_seen *g = arg;

	if (g->n < 32) {
		snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", key);
		g->kinds[g->n++] = kind;
	}
	/* The order given lets each removal succeed, and the callback may
	 * call the store. */
	if (g->remove && kind == STORE_GC_SNAPSHOT && store_snapshot_remove(g->st, key, NULL) == 0)
		g->removed_ok++;
	return 0;
}

static int gc_index(const struct gc_seen *g, const char *key)
{
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->keys[i], key) == 0)
			return i;
	return -1;
}

static void run_gc(struct store *st, struct content_store *cs, struct gc_seen *g, bool remove)
{
	struct crisp_error err = { 0 };

	memset(g, 0, sizeof(*g));
	g->st = st;
	g->remove = remove;
	if (store_gc_candidates(st, cs, on_gc, g, &err) != 0)
		diag("gc: %s", err.msg);
}

static void test_gc(struct store *st, struct content_store *cs, struct timage *a)
{
	struct crisp_error err = { 0 };
	struct timage b;
	struct gc_seen g;
	char c1[CONTENT_DIGEST_MAX], c13[CONTENT_DIGEST_MAX], c1x[CONTENT_DIGEST_MAX], dx[80],
		stray[80];
	int64_t id13 = 0, id = 0;
	bool ref = false;

	/* a: layers A, B; b: layers A, C (A shared). A container runs on b. */
	timage_make(&b, "AC", "0", "app");
	timage_name(&b, "docker.io/library/app:1");
	ok(store_image_put(st, &b.img, &err) == 0, "put a second image sharing a layer");
	timage_blobs(a, cs);
	timage_blobs(&b, cs);
	content_put(cs, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		    "hello", 5, NULL);
	snprintf(stray, sizeof(stray), "%s",
		 "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");

	snprintf(c1, sizeof(c1), "%s", DIFF_A);
	image_chain_id(c1, b.diff_ids[1], c13, NULL);
	sha256_of("X", 1, dx);
	image_chain_id(c1, dx, c1x, NULL);
	ok(store_snapshot_put(st, c1, NULL, STORE_SNAPSHOT_COMMITTED, &id, &err) == 0 &&
		   store_snapshot_put(st, CHAIN_AB, c1, STORE_SNAPSHOT_COMMITTED, NULL, &err) ==
			   0 &&
		   store_snapshot_put(st, c13, c1, STORE_SNAPSHOT_COMMITTED, &id13, &err) == 0 &&
		   store_snapshot_put(st, c1x, c1, STORE_SNAPSHOT_COMMITTED, NULL, &err) == 0 &&
		   store_snapshot_put(st, "ctr-1234", c13, STORE_SNAPSHOT_ACTIVE, NULL, &err) == 0,
	   "snapshots: A, AB, AC, AX and a container on AC");
	ok(id > 0 && id13 > id, "snapshot ids are assigned in order");

	ok(store_blob_referenced(st, a->blobs[0], &ref, &err) == 0 && ref,
	   "a layer blob is referenced");
	is_int(store_image_remove(st, b.id, &err), 0, "remove the second image");
	ok(store_blob_referenced(st, a->blobs[0], &ref, &err) == 0 && ref,
	   "the shared layer blob is still referenced");
	ok(store_blob_referenced(st, b.blobs[1], &ref, &err) == 0 && !ref,
	   "the removed image's own layer blob is not");

	run_gc(st, cs, &g, false);
	is_int(g.n, 5, "gc: 4 blobs and 1 snapshot");
	ok(gc_index(&g, b.id) >= 0 && gc_index(&g, b.manifest_digest) >= 0 &&
		   gc_index(&g, b.blobs[1]) >= 0 && gc_index(&g, stray) >= 0,
	   "gc: the removed image's config, manifest, own layer, and a stray blob");
	ok(gc_index(&g, a->blobs[0]) < 0 && gc_index(&g, a->id) < 0,
	   "gc: the shared and kept blobs stay");
	ok(gc_index(&g, c1x) >= 0 && g.kinds[gc_index(&g, c1x)] == STORE_GC_SNAPSHOT,
	   "gc: the unused snapshot");
	ok(gc_index(&g, c13) < 0, "gc: the container's parent snapshot stays");
	ok(gc_index(&g, c1) < 0 && gc_index(&g, CHAIN_AB) < 0, "gc: the image's snapshots stay");

	ok(store_snapshot_remove(st, c13, &err) == -1 && err.code == CRISP_E_PRECONDITION,
	   "a snapshot with a child cannot be removed");
	is_int(store_snapshot_remove(st, "ctr-1234", &err), 0, "remove the container snapshot");
	run_gc(st, cs, &g, false);
	ok(gc_index(&g, c13) >= 0 && gc_index(&g, c1x) >= 0 && gc_index(&g, c1) < 0,
	   "gc: without the container, its parent goes too");

	is_int(store_image_remove(st, a->id, &err), 0, "remove the last image");
	run_gc(st, cs, &g, true);
	ok(gc_index(&g, c1) > gc_index(&g, c13) && gc_index(&g, c1) > gc_index(&g, c1x) &&
		   gc_index(&g, c1) > gc_index(&g, CHAIN_AB),
	   "gc: children come before their parent");
	is_int(g.removed_ok, 4, "gc: removing in the order given always works");
	ok(gc_index(&g, a->blobs[0]) >= 0, "gc: the formerly shared blob goes");
	store_image_put(st, &a->img, &err);
}

static void test_snapshots(struct store *st)
{
	struct crisp_error err = { 0 };
	struct store_snapshot *snap = NULL;
	int64_t id1 = 0, id2 = 0, id3 = 0;

	ok(store_snapshot_put(st, DIFF_B, DIFF_A, STORE_SNAPSHOT_COMMITTED, NULL, &err) == -1 &&
		   err.code == CRISP_E_NOT_FOUND,
	   "a missing parent is refused");
	ok(store_snapshot_put(st, "../x", NULL, STORE_SNAPSHOT_ACTIVE, NULL, &err) == -1 &&
		   err.code == CRISP_E_INVALID,
	   "a key with a slash is refused");
	ok(store_snapshot_put(st, "extract", NULL, STORE_SNAPSHOT_COMMITTED, NULL, &err) == -1 &&
		   err.code == CRISP_E_INVALID,
	   "a committed key must be a chain id");
	ok(store_snapshot_put(st, "extract-1", NULL, STORE_SNAPSHOT_ACTIVE, &id1, &err) == 0,
	   "an active snapshot for unpacking");
	ok(store_snapshot_put(st, "x", "extract-1", STORE_SNAPSHOT_ACTIVE, NULL, &err) == -1 &&
		   err.code == CRISP_E_INVALID,
	   "an active parent key is refused");
	ok(store_snapshot_put(st, "extract-1", NULL, STORE_SNAPSHOT_ACTIVE, NULL, &err) == -1 &&
		   err.code == CRISP_E_EXISTS,
	   "a key in use is refused");
	ok(store_snapshot_commit(st, "extract-1", DIFF_A, 4096, 3, &err) == 0,
	   "commit the unpacked layer");
	ok(store_snapshot_get(st, DIFF_A, &snap, &err) == 0 && snap->id == id1 &&
		   snap->kind == STORE_SNAPSHOT_COMMITTED && snap->usage_bytes == 4096 &&
		   snap->usage_inodes == 3 && snap->parent == NULL,
	   "committed snapshot keeps its id and records its usage");
	store_snapshot_free(snap);
	ok(store_snapshot_get(st, "extract-1", &snap, &err) == -1 && err.code == CRISP_E_NOT_FOUND,
	   "the active key is gone");
	ok(store_snapshot_put(st, "extract-2", DIFF_A, STORE_SNAPSHOT_ACTIVE, &id2, &err) == 0 &&
		   store_snapshot_commit(st, "extract-2", DIFF_A, 0, 0, &err) == -1 &&
		   err.code == CRISP_E_EXISTS,
	   "committing onto an existing key is refused");
	ok(store_snapshot_commit(st, DIFF_A, CHAIN_AB, 0, 0, &err) == -1 &&
		   err.code == CRISP_E_PRECONDITION,
	   "a committed snapshot cannot be committed");
	ok(store_snapshot_set_usage(st, "extract-2", 10, 1, &err) == 0 &&
		   store_snapshot_get(st, "extract-2", &snap, &err) == 0 &&
		   snap->usage_bytes == 10 && strcmp(snap->parent, DIFF_A) == 0,
	   "set usage");
	store_snapshot_free(snap);
	ok(store_snapshot_remove(st, "extract-2", &err) == 0 &&
		   store_snapshot_put(st, "extract-3", NULL, STORE_SNAPSHOT_ACTIVE, &id3, &err) ==
			   0 &&
		   id3 > id2,
	   "ids are never reused");
	store_snapshot_remove(st, "extract-3", NULL);
	store_snapshot_remove(st, DIFF_A, NULL);
	ok(store_snapshot_remove(st, DIFF_A, &err) == -1 && err.code == CRISP_E_NOT_FOUND,
	   "removing a missing snapshot: not found");
}

/* Many removals in one transaction, as GC makes them: children first; a
 * snapshot that is still a parent, missing or malformed is skipped, not a
 * failure, and the others go. */
static void test_snapshots_remove_many(struct store *st)
{
	struct crisp_error err = { 0 };
	struct store_snapshot *snap = NULL;
	bool removed[5] = { true, true, true, true, true };
	char *keys[5];
	int r = 0;

	r |= store_snapshot_put(st, DIFF_A, NULL, STORE_SNAPSHOT_COMMITTED, NULL, &err);
	r |= store_snapshot_put(st, DIFF_B, DIFF_A, STORE_SNAPSHOT_COMMITTED, NULL, &err);
	r |= store_snapshot_put(st, CHAIN_AB, NULL, STORE_SNAPSHOT_COMMITTED, NULL, &err);
	r |= store_snapshot_put(st, "ctr-many", CHAIN_AB, STORE_SNAPSHOT_ACTIVE, NULL, &err);
	ok(r == 0, "many: a chain of two, and a layer a container uses");
	keys[0] = (char *)DIFF_B;
	keys[1] = (char *)DIFF_A;
	keys[2] = (char *)CHAIN_AB;
	keys[3] = (char *)"sha256:"
			  "9999999999999999999999999999999999999999999999999999999999999999";
	keys[4] = (char *)"../bad";
	is_int(store_snapshots_remove(st, keys, 5, removed, &err), 0, "many: remove in one go");
	ok(removed[0] && removed[1], "many: the chain went, child before parent");
	ok(!removed[2] && store_snapshot_get(st, CHAIN_AB, &snap, &err) == 0,
	   "many: a parent of a container's snapshot is skipped and stays");
	store_snapshot_free(snap);
	ok(!removed[3] && !removed[4], "many: missing and malformed keys are skipped");
	ok(store_snapshot_get(st, DIFF_A, &snap, &err) < 0 && err.code == CRISP_E_NOT_FOUND &&
		   store_snapshot_get(st, DIFF_B, &snap, &err) < 0,
	   "many: their records are gone");
	keys[0] = (char *)"ctr-many";
	keys[1] = (char *)CHAIN_AB;
	ok(store_snapshots_remove(st, keys, 2, removed, &err) == 0 && removed[0] && removed[1],
	   "many: the container's snapshot and then its parent");
	is_int(store_snapshots_remove(st, keys, 0, removed, &err), 0, "many: none is fine");
}

static int count_image(const struct store_image *img, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int count_snap(const struct store_snapshot *snap, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void test_reopen_and_owner(struct store **stp, struct timage *a)
{
	struct crisp_error err = { 0 };
	struct store_image *img = NULL;
	int n = 0, ns = 0, status = -1;
	pid_t pid;

	store_snapshot_put(*stp, DIFF_A, NULL, STORE_SNAPSHOT_COMMITTED, NULL, &err);
	store_close(*stp);
	*stp = store_open(dbpath, &err);
	if (!ok(*stp != NULL, "reopen")) {
		diag("%s", err.msg);
		return;
	}
	is_int(store_schema_version(*stp), STORE_SCHEMA_VERSION, "schema version after reopen");
	ok(store_image_get(*stp, "docker.io/library/busybox@sha256:", 0, &img, &err) == -1,
	   "a partial name is not a name");
	ok(store_image_get(*stp, a->names[1], STORE_LOAD_ALL, &img, &err) == 0 &&
		   img->n_layers == 2 && strcmp(img->chain_id, CHAIN_AB) == 0 &&
		   strcmp(img->config, a->config) == 0,
	   "the image is still there after reopening");
	store_image_free(img);
	ok(store_image_list(*stp, 0, count_image, &n, &err) == 0 && n == 1, "list finds it");
	ok(store_snapshot_list(*stp, count_snap, &ns, &err) == 0 && ns == 1,
	   "the snapshot is still there");

	/* One imaged owns the database: another process cannot open it. */
	pid = fork();
	if (pid == 0) {
		struct crisp_error e = { 0 };
		struct store *other = store_open(dbpath, &e);

		_exit(other ? 1 : e.code == CRISP_E_UNAVAILABLE ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a second process cannot open the database while it is open");
}

static void test_newer_schema(void)
{
	struct crisp_error err = { 0 };
	char path[300];
	sqlite3 *db = NULL;
	struct store *st;

	snprintf(path, sizeof(path), "%s/newer.db", root);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	st = store_open(path, &err);
	ok(st == NULL && err.code == CRISP_E_PRECONDITION && strstr(err.msg, "99"),
	   "a database from a newer crisp is refused");
	store_close(st);
	snprintf(path, sizeof(path), "%s/link.db", root);
	if (symlink(dbpath, path) == 0) {
		st = store_open(path, &err);
		ok(st == NULL, "a symlinked database path is refused");
		store_close(st);
	}
}

int main(void)
{
	struct crisp_error err = { 0 };
	struct content_store *cs;
	struct timage a;
	struct store *st;
	char cmd[300];
	int rootfd;

	if (!mkdtemp(root))
		return 1;
	snprintf(dbpath, sizeof(dbpath), "%s/metadata.db", root);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cs = content_open(rootfd, &err);
	st = store_open(dbpath, &err);
	if (!ok(st && cs, "open the store and the content store"))
		return diag("%s", err.msg), done_testing();

	test_chain_id();
	timage_make(&a, "AB", "1000:1000", "busybox");
	timage_name(&a, "docker.io/library/busybox:latest");
	timage_name(&a, "docker.io/library/busybox@sha256:"
			"0000000000000000000000000000000000000000000000000000000000000001");
	a.img.extra_blobs = (char *[]){ "sha256:"
					"00000000000000000000000000000000000000000000000000000000"
					"00000002" };
	a.img.n_extra_blobs = 1;
	test_put_get(st, &a);
	test_put_invalid(st, &a);
	test_names(st, &a);
	test_gc(st, cs, &a);
	test_snapshots(st);
	test_snapshots_remove_many(st);
	test_reopen_and_owner(&st, &a);
	test_newer_schema();

	store_close(st);
	content_close(cs);
	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}
