/* SHA-256 and SHA-512 for imaged: blob digests, DiffIDs, chain IDs,
 * manifest digests. Backed by nettle, which imaged maps anyway through
 * libarchive, so imaged does not map OpenSSL's libcrypto (3.4 MB of RSS)
 * for hashing alone.
 *
 * A struct digest_ctx is a plain value with no global state behind it: one
 * context belongs to one thread at a time, and contexts in different
 * threads (the workers' streaming ingests and unpacks) need no locking. */
#ifndef CRISP_IMAGED_DIGEST_H
#define CRISP_IMAGED_DIGEST_H

#include <stddef.h>

#include <nettle/sha2.h>

enum digest_alg {
	DIGEST_SHA256,
	DIGEST_SHA512,
};

/* Bytes of the largest raw digest (SHA-512). */
#define DIGEST_RAW_MAX SHA512_DIGEST_SIZE
/* "sha512:" + 128 hex digits + NUL: room for any digest string. */
#define DIGEST_STRING_MAX (7 + 2 * DIGEST_RAW_MAX + 1)

struct digest_ctx {
	enum digest_alg alg;
	union {
		struct sha256_ctx sha256;
		struct sha512_ctx sha512;
	} u;
};

/* "sha256" or "sha512". */
const char *digest_alg_name(enum digest_alg alg);
/* Bytes of the raw digest: 32 or 64. */
size_t digest_alg_size(enum digest_alg alg);

void digest_init(struct digest_ctx *ctx, enum digest_alg alg);
void digest_update(struct digest_ctx *ctx, const void *buf, size_t len);
/* The raw digest into out (digest_alg_size bytes); returns that size. The
 * context starts over, as after digest_init with the same algorithm. */
size_t digest_final_raw(struct digest_ctx *ctx, unsigned char out[DIGEST_RAW_MAX]);
/* "<alg>:<lowercase hex>" into out; the context starts over. */
void digest_final_string(struct digest_ctx *ctx, char out[DIGEST_STRING_MAX]);
/* "<alg>:<lowercase hex>" of one buffer. */
void digest_buf(enum digest_alg alg, const void *buf, size_t len, char out[DIGEST_STRING_MAX]);

#endif
