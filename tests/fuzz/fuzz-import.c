/* fuzz-import: a libFuzzer target for imaged's side of an import (imaged/
 * import.c and the archive reader of imaged/unpack_client.c), which reads an
 * OCI image layout or a docker-archive that anyone able to run crisp-import
 * may have made. The input is the archive (tar, maybe gzip or zstd): it is
 * read, as in imaged, by a crisp-unpack child in its archive mode (the real
 * binary of this build, started per input: libarchive runs there, outside
 * the fuzzer's coverage), whose stream pass 1 checks (names, links, sizes,
 * digests, the kept JSON); then index.json or manifest.json is resolved
 * into images with the manifest and config parsers pulls use. Pass 2 (copy
 * into the content store), unpacking and recording are the pull's code and
 * have their own targets and tests; they are not run here.
 *
 * The reader's functions are static and import.c is only reachable through
 * imaged's worker and store, so the file is included here rather than
 * linked; nothing else of imaged runs, and the globals it reads (imaged.cfg)
 * are set up below.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make crisp-unpack tests/fuzz/fuzz-import
 *	./tests/fuzz/fuzz-import -max_total_time=60 ../tests/fuzz/seeds/fuzz-import */
#include "autoconfig.h"

#include "imaged/import.c"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>

struct imaged_ctx imaged;

static void check_images(const struct import *im)
{
	if (im->n_images > IMPORT_MAX_IMAGES)
		abort();
	for (size_t i = 0; i < im->n_images; i++) {
		const struct import_image *img = &im->images[i];

		if (!digest_valid(img->manifest_digest) || !digest_valid(img->m.config_digest) ||
		    img->m.n_layers > MANIFEST_MAX_LAYERS ||
		    img->cfg.n_diff_ids != img->m.n_layers || img->n_names > IMPORT_MAX_NAMES ||
		    !img->config || strlen(img->config) != img->config_len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct crisp_config cfg = { .max_layer_size_mb = 16 };
	struct crisp_error err = { 0 };
	struct import *im;
	int fd;

	if (!imaged.cfg) {
		log_init("fuzz-import", LOG_CRIT);
		imaged.cfg = &cfg;
		/* crisp-unpack insists on no_new_privs, as imaged runs it. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			abort();
		cfg.helper_dir = (char *)FUZZ_HELPER_DIR;
		unpack_program_open(&cfg);
	}
	fd = memfd_create("fuzz-import", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	im = xcalloc(1, sizeof(*im));
	im->fd = fd;
	if (archive_scan(im, &err) == 0) {
		if (entry_find(im, "index.json")) {
			if (oci_resolve(im, &err) == 0)
				check_images(im);
		} else if (entry_find(im, "manifest.json")) {
			if (docker_resolve(im, &err) == 0)
				check_images(im);
		}
	}
	/* FUZZ_VERBOSE=1: why a seed is refused, when writing seeds */
	if (err.code != CRISP_E_OK && getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "refused: %s\n", err.msg);
	import_free(im);
	return 0;
}
