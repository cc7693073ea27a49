/* SHA-256/SHA-512 through nettle (see digest.h). */
#include "autoconfig.h"

#include <string.h>

#include "imaged/digest.h"

const char *digest_alg_name(enum digest_alg alg)
{
	return alg == DIGEST_SHA512 ? "sha512" : "sha256";
}

size_t digest_alg_size(enum digest_alg alg)
{
	return alg == DIGEST_SHA512 ? SHA512_DIGEST_SIZE : SHA256_DIGEST_SIZE;
}

void digest_init(struct digest_ctx *ctx, enum digest_alg alg)
{
	ctx->alg = alg;
	if (alg == DIGEST_SHA512)
		sha512_init(&ctx->u.sha512);
	else
		sha256_init(&ctx->u.sha256);
}

void digest_update(struct digest_ctx *ctx, const void *buf, size_t len)
{
	if (len == 0)
		return;
	if (ctx->alg == DIGEST_SHA512)
		sha512_update(&ctx->u.sha512, len, buf);
	else
		sha256_update(&ctx->u.sha256, len, buf);
}

size_t digest_final_raw(struct digest_ctx *ctx, unsigned char out[DIGEST_RAW_MAX])
{
	size_t n = digest_alg_size(ctx->alg);

	/* nettle's *_digest also re-initializes the context. */
	if (ctx->alg == DIGEST_SHA512)
		sha512_digest(&ctx->u.sha512, n, out);
	else
		sha256_digest(&ctx->u.sha256, n, out);
	return n;
}

void digest_final_string(struct digest_ctx *ctx, char out[DIGEST_STRING_MAX])
{
	static const char hexdigit[] = "0123456789abcdef";
	unsigned char raw[DIGEST_RAW_MAX];
	const char *name = digest_alg_name(ctx->alg);
	size_t n = digest_final_raw(ctx, raw);
	size_t len = strlen(name);
	char *p;

	memcpy(out, name, len);
	out[len] = ':';
	p = out + len + 1;
	for (size_t i = 0; i < n; i++) {
		*p++ = hexdigit[raw[i] >> 4];
		*p++ = hexdigit[raw[i] & 0xf];
	}
	*p = '\0';
}

void digest_buf(enum digest_alg alg, const void *buf, size_t len, char out[DIGEST_STRING_MAX])
{
	struct digest_ctx ctx;

	digest_init(&ctx, alg);
	digest_update(&ctx, buf, len);
	digest_final_string(&ctx, out);
}
