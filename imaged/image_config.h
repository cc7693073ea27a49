/* What crisp takes from an OCI image config (image-spec config.md): the
 * fields CRI reports and containers start with, the layer diff ids, and the
 * chain ids that name unpacked layer stacks (image-spec identity). The
 * config comes from a registry: its digest was checked, its content is
 * still untrusted, so every field is type-checked. */
#ifndef CRISP_IMAGED_IMAGE_CONFIG_H
#define CRISP_IMAGED_IMAGE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "imaged/content.h"

struct image_config {
	/* The CRI view of config.config, an object with "user" "working_dir"
	 * "stop_signal" (strings), "env" "entrypoint" "cmd" (arrays of
	 * strings), "volumes" (sorted array of paths), "labels" (object of
	 * strings). Absent fields are "", [] or {}. */
	json_t *spec;
	char *username;  /* User when not numeric ("nginx", "nginx:grp"), else NULL */
	int64_t uid;     /* User when numeric ("1000", "1000:1000"), else -1 */
	char **diff_ids; /* rootfs.diff_ids, lowest layer first */
	size_t n_diff_ids;
};

/* Parse len bytes of config JSON. Duplicate keys, wrong types and invalid
 * diff ids are CRISP_E_INVALID. Free with image_config_done(). */
int image_config_parse(const char *json, size_t len, struct image_config *ret,
		       struct crisp_error *err);
/* Frees the fields and zeroes c; takes NULL. */
void image_config_done(struct image_config *c);

/* ChainID(parent, diff_id) = sha256(parent + " " + diff_id), or diff_id for
 * the lowest layer (parent NULL). */
int image_chain_id(const char *parent, const char *diff_id, char out[CONTENT_DIGEST_MAX],
		   struct crisp_error *err);

#endif
