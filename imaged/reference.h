/* Container image references, parsed and normalized exactly as kubelet and
 * containerd do it (github.com/distribution/reference v0.6:
 * ParseAnyReference, ParseNormalizedNamed, then TagNameOnly), because the
 * names we store and report must be the names kubelet compares against.
 *
 * Grammar (PROTOCOLS.md §8, distribution/reference's reference.go):
 *
 *	reference  := name [ ":" tag ] [ "@" digest ]
 *	name       := [ domain "/" ] path
 *	domain     := host [ ":" port ]             port := [0-9]+
 *	host       := domain-component ( "." domain-component )* | "[" [a-fA-F0-9:]+ "]"
 *	domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *	path       := path-component ( "/" path-component )*   (at most 255 characters)
 *	path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *	tag        := [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *	digest     := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
 *
 * Normalization:
 *  - The first "/"-separated component is the domain if it contains "." or
 *    ":", is "localhost", or contains an upper-case letter (path components
 *    never may); otherwise the domain is "docker.io". A name without "/" is
 *    always on docker.io ("localhost:5000" alone is the repository
 *    "localhost" with the tag "5000").
 *  - "index.docker.io" becomes "docker.io"; a one-component path on docker.io
 *    gets "library/" in front ("busybox" -> "docker.io/library/busybox").
 *  - Without tag and digest the tag is "latest". A reference with both keeps
 *    both ("name:tag@sha256:..."); the digest is what identifies the content.
 *  - A whole string of 64 lowercase hex digits, or a bare valid digest
 *    ("sha256:<hex>"), is an image id (CRI ImageSpec.image may be one): the
 *    result then has only .digest set, "sha256:<hex>"; see image_ref_is_id().
 *
 * Where this deliberately differs from distribution/reference:
 *  - A first component that has to be a domain (it contains "." or ":") but
 *    does not match the domain grammar, e.g. "foo_bar.com/x", is an error.
 *    Upstream quietly parses it as a name with an empty domain, which no
 *    client can pull from.
 *  - Digests: only sha256 and sha512 (the OCI registered algorithms); Go's
 *    go-digest would also take sha384.
 *  - Input longer than IMAGE_REF_MAX bytes is refused outright.
 * The port is not range-checked, as upstream; the connection will fail. */
#ifndef CRISP_IMAGED_REFERENCE_H
#define CRISP_IMAGED_REFERENCE_H

#include <stdbool.h>

#include "common/error.h"

/* Upper bounds, from the grammar (and, for the whole, from the longest
 * legitimate domain + path + tag + sha512 digest, with room to spare). */
#define IMAGE_REF_MAX 1024
#define IMAGE_REF_PATH_MAX 255
#define IMAGE_REF_TAG_MAX 128

#define IMAGE_REF_DEFAULT_DOMAIN "docker.io"
#define IMAGE_REF_DEFAULT_TAG "latest"
#define IMAGE_REF_DOCKER_HUB_HOST "registry-1.docker.io"

/* Normalized, each field its own heap string. For a name: domain and path
 * set, tag and/or digest set (never both NULL). For an image id: only
 * digest set. */
struct image_ref {
	char *domain; /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* "latest", or NULL */
	char *digest; /* "sha256:<64 hex>", or NULL */
};

/* Parse s into *ret. On failure: CRISP_E_INVALID with a message naming the
 * problem ("invalid reference format: repository name (library/Foo) must be
 * lowercase"), and *ret untouched. *ret must be freed with image_ref_free(). */
int image_ref_parse(const char *s, struct image_ref *ret, struct crisp_error *err);

/* True if r is an image id (no repository, only a digest). */
static inline bool image_ref_is_id(const struct image_ref *r)
{
	return !r->path;
}

/* The normalized reference, newly allocated:
 * "docker.io/library/busybox:latest", "...busybox@sha256:...",
 * "...busybox:1.36@sha256:...", or for an image id "sha256:...". */
char *image_ref_string(const struct image_ref *r);

/* "docker.io/library/busybox", newly allocated; NULL for an image id. */
char *image_ref_repo(const struct image_ref *r);

/* The short form users write, newly allocated: "busybox:latest",
 * "dmcgowan/myapp@sha256:...", "example.com/x:y"; for an image id the digest. */
char *image_ref_familiar(const struct image_ref *r);

/* The registry host[:port] to contact: registry-1.docker.io for docker.io,
 * otherwise the domain as written. NULL for an image id. Points into r (or
 * to a constant); not to be freed. */
const char *image_ref_registry_host(const struct image_ref *r);

/* Frees the fields and zeroes r; r may be NULL, fields may be NULL. */
void image_ref_free(struct image_ref *r);

/* "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>". d may be NULL. */
bool digest_valid(const char *d);

#endif
