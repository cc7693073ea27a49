/* Manifests and indexes as a registry serves them (OCI and Docker schema 2),
 * parsed with jansson and checked before anything in them is used: media
 * types known, digests well-formed, sizes bounded. */
#ifndef CRISP_IMAGED_MANIFEST_H
#define CRISP_IMAGED_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Layers one image may have: overlayfs stacks at most 500 lower dirs, and
 * real images stay far below. */
#define MANIFEST_MAX_LAYERS 256

struct manifest_layer {
	char *digest;
	char *media_type;
	int64_t size;
};

struct manifest {
	char *config_digest;
	int64_t config_size;
	struct manifest_layer *layers;
	size_t n_layers;
};

/* Is media_type an index (OCI image index, Docker manifest list)? */
bool manifest_is_index(const char *media_type);

/* From an index, the digest of the manifest for this node's platform
 * (linux, this architecture and variant). CRISP_E_NOT_FOUND, naming the
 * platforms on offer, when none fits. */
int manifest_select_platform(const void *body, size_t len, char **ret_digest,
			     struct crisp_error *err);

/* Parse an image manifest of the given media type (from Content-Type). */
int manifest_parse(const char *media_type, const void *body, size_t len, struct manifest *ret,
		   struct crisp_error *err);
void manifest_done(struct manifest *m);

/* This node's platform, as OCI spells it ("amd64", "arm64", and "v8", ...). */
const char *manifest_host_arch(void);

#endif
