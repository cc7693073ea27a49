#include "autoconfig.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "imaged/manifest.h"
#include "imaged/reference.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.diff.tar.zstd",
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

static const char *const config_types[] = {
	"application/vnd.oci.image.config.v1+json",
	"application/vnd.docker.container.image.v1+json",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(s, list[i]))
			return true;
	return false;
}

bool manifest_is_index(const char *media_type)
{
	return streq(media_type, MT_OCI_INDEX) || streq(media_type, MT_DOCKER_LIST);
}

const char *manifest_host_arch(void)
{
	static const struct {
		const char *uname, *oci;
	} arches[] = {
		{ "x86_64", "amd64" },    { "aarch64", "arm64" },   { "armv7l", "arm" },
		{ "i686", "386" },        { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
		{ "riscv64", "riscv64" },
	};
	static struct utsname u;

	if (!u.machine[0])
		uname(&u);
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (streq(u.machine, arches[i].uname))
			return arches[i].oci;
	return u.machine;
}

/* The variant we accept for our architecture: arm64 images say "v8" or
 * nothing; arm ones "v7" (or nothing); others have none. */
static bool variant_fits(const char *arch, const char *variant)
{
	if (!variant || !*variant)
		return true;
	if (streq(arch, "arm64"))
		return streq(variant, "v8");
	if (streq(arch, "arm"))
		return streq(variant, "v7") || streq(variant, "v6") || streq(variant, "v5");
	return false;
}

static json_t *load(const void *body, size_t len, struct crisp_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!root)
		err_set(err, CRISP_E_INVALID, "malformed manifest: line %d: %s", jerr.line,
			jerr.text);
	else if (!json_is_object(root)) {
		err_set(err, CRISP_E_INVALID, "malformed manifest: not a JSON object");
		json_decref(root);
		root = NULL;
	}
	return root;
}

int manifest_select_platform(const void *body, size_t len, char **ret_digest,
			     struct crisp_error *err)
{
	const char *arch = manifest_host_arch();
	json_t *root = load(body, len, err), *list, *m;
	char offered[256] = "";
	size_t i;
	int r = -1;

	if (!root)
		return -1;
	list = json_object_get(root, "manifests");
	if (!json_is_array(list)) {
		err_set(err, CRISP_E_INVALID, "malformed index: no \"manifests\" list");
		goto out;
	}
	json_array_foreach(list, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *a = json_string_value(json_object_get(p, "architecture"));
		const char *v = json_string_value(json_object_get(p, "variant"));
		const char *digest = json_string_value(json_object_get(m, "digest"));
		size_t n = strlen(offered);

		if (os && a && n < sizeof(offered) - 64)
			snprintf(offered + n, sizeof(offered) - n, "%s%s/%s%s%s", n ? ", " : "", os,
				 a, v ? "/" : "", v ? v : "");
		if (!streq(os, "linux") || !streq(a, arch) || !variant_fits(arch, v))
			continue;
		if (!digest || !digest_valid(digest)) {
			err_set(err, CRISP_E_INVALID, "malformed index: bad digest for linux/%s",
				arch);
			goto out;
		}
		*ret_digest = xstrdup(digest);
		r = 0;
		goto out;
	}
	err_set(err, CRISP_E_NOT_FOUND, "no image for linux/%s in the index (it offers: %s)", arch,
		*offered ? offered : "nothing");
out:
	json_decref(root);
	return r;
}

static int descriptor(json_t *d, const char *what, char **ret_digest, char **ret_type,
		      int64_t *ret_size, struct crisp_error *err)
{
	const char *digest = json_string_value(json_object_get(d, "digest"));
	const char *type = json_string_value(json_object_get(d, "mediaType"));
	json_t *size = json_object_get(d, "size");

	if (!json_is_object(d) || !digest || !digest_valid(digest))
		return err_set(err, CRISP_E_INVALID, "malformed manifest: %s has no valid digest",
			       what);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return err_set(err, CRISP_E_INVALID, "malformed manifest: %s has no valid size",
			       what);
	if (!type)
		return err_set(err, CRISP_E_INVALID, "malformed manifest: %s has no mediaType",
			       what);
	*ret_digest = xstrdup(digest);
	*ret_type = xstrdup(type);
	*ret_size = json_integer_value(size);
	return 0;
}

static int check_header(json_t *root, const char *media_type, struct crisp_error *err)
{
	json_t *version = json_object_get(root, "schemaVersion");
	const char *declared = json_string_value(json_object_get(root, "mediaType"));

	if (!json_is_integer(version) || json_integer_value(version) != 2)
		return err_set(err, CRISP_E_INVALID,
			       "unsupported manifest: schemaVersion %lld (only 2 is supported; "
			       "Docker schema 1 images must be converted)",
			       json_is_integer(version) ? (long long)json_integer_value(version)
							: 0LL);
	if (!streq(media_type, MT_OCI_MANIFEST) && !streq(media_type, MT_DOCKER_MANIFEST))
		return err_set(err, CRISP_E_INVALID, "unsupported manifest media type '%.100s'",
			       media_type);
	/* A manifest must not claim to be something other than what it was
	 * served as (PROTOCOLS.md: reject on mismatch). */
	if (declared && !streq(declared, media_type))
		return err_set(err, CRISP_E_INVALID,
			       "manifest says mediaType '%.100s' but was served as '%.100s'",
			       declared, media_type);
	return 0;
}

int manifest_parse(const char *media_type, const void *body, size_t len, struct manifest *ret,
		   struct crisp_error *err)
{
	_cleanup_free_ char *config_type = NULL;
	json_t *root = load(body, len, err), *layers, *l;
	struct manifest m = { 0 };
	size_t i;

	if (!root)
		return -1;
	if (check_header(root, media_type, err) < 0)
		goto fail;
	if (descriptor(json_object_get(root, "config"), "config", &m.config_digest, &config_type,
		       &m.config_size, err) < 0)
		goto fail;
	if (!in_list(config_type, config_types, ARRAY_SIZE(config_types))) {
		err_set(err, CRISP_E_INVALID, "unsupported config media type '%.100s'",
			config_type);
		goto fail;
	}
	layers = json_object_get(root, "layers");
	if (!json_is_array(layers) || json_array_size(layers) > MANIFEST_MAX_LAYERS) {
		err_set(err, CRISP_E_INVALID,
			"malformed manifest: \"layers\" must be a list of at "
			"most %d",
			MANIFEST_MAX_LAYERS);
		goto fail;
	}
	m.layers = xcalloc(json_array_size(layers), sizeof(*m.layers));
	json_array_foreach(layers, i, l)
	{
		struct manifest_layer *ml = &m.layers[m.n_layers];
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i);
		if (descriptor(l, what, &ml->digest, &ml->media_type, &ml->size, err) < 0)
			goto fail;
		m.n_layers++;
		if (!in_list(ml->media_type, layer_types, ARRAY_SIZE(layer_types))) {
			err_set(err, CRISP_E_INVALID, "unsupported layer media type '%.100s'",
				ml->media_type);
			goto fail;
		}
	}
	json_decref(root);
	*ret = m;
	return 0;
fail:
	json_decref(root);
	manifest_done(&m);
	return -1;
}

void manifest_done(struct manifest *m)
{
	if (!m)
		return;
	free(m->config_digest);
	for (size_t i = 0; i < m->n_layers; i++) {
		free(m->layers[i].digest);
		free(m->layers[i].media_type);
	}
	free(m->layers);
	memset(m, 0, sizeof(*m));
}
