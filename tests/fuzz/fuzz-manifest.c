/* fuzz-manifest: a libFuzzer target for imaged/manifest.c, which reads the
 * manifests and indexes a registry serves (untrusted JSON). The first byte
 * picks the media type the bytes are served as; the rest is the body. On
 * success the parse must be self-consistent: digests valid, sizes non-negative,
 * at most MANIFEST_MAX_LAYERS layers.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-manifest
 *	./tests/fuzz/fuzz-manifest -max_total_time=60 */
#include "autoconfig.h"

#include <stdlib.h>

#include "imaged/manifest.h"
#include "imaged/reference.h"

static const char *const types[] = {
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crisp_error err;
	struct manifest m;
	char *digest = NULL;
	const char *type;

	if (size < 1)
		return 0;
	type = types[data[0] % ARRAY_SIZE(types)];
	data++, size--;
	if (manifest_is_index(type)) {
		if (manifest_select_platform(data, size, &digest, &err) == 0 &&
		    !digest_valid(digest))
			abort();
		free(digest);
		return 0;
	}
	if (manifest_parse(type, data, size, &m, &err) == 0) {
		if (!digest_valid(m.config_digest) || m.config_size < 0 ||
		    m.n_layers > MANIFEST_MAX_LAYERS)
			abort();
		for (size_t i = 0; i < m.n_layers; i++)
			if (!digest_valid(m.layers[i].digest) || m.layers[i].size < 0)
				abort();
		manifest_done(&m);
	}
	return 0;
}
