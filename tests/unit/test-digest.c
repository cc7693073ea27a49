/* Unit tests of imaged/digest.c (nettle's SHA-256/SHA-512 behind imaged's
 * digests): published test vectors, then OpenSSL's digests as an
 * independent oracle for streamed input cut at every kind of boundary, and
 * contexts hashing in several threads at once as the pull workers do. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/util.h"
#include "imaged/digest.h"
#include "tests/unit/tap.h"

/* FIPS 180-2 examples and the empty string (sha256sum/sha512sum </dev/null). */
#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_EMPTY                                                                            \
	"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2" \
	"b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                              \
	"sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1" \
	"a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
/* One million 'a' (FIPS 180-2 appendix B.3 / C.3). */
#define SHA256_MILLION_A "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void openssl_string(enum digest_alg alg, const void *buf, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *p;

	if (EVP_Digest(buf, len, md, &n, alg == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256(),
		       NULL) != 1)
		abort();
	p = out + sprintf(out, "%s:", alg == DIGEST_SHA512 ? "sha512" : "sha256");
	for (unsigned int i = 0; i < n; i++)
		p += sprintf(p, "%02x", md[i]);
}

/* Deterministic bytes, so a failure can be reproduced. */
static void fill(unsigned char *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
}

static void test_vectors(void)
{
	char out[DIGEST_STRING_MAX];
	struct digest_ctx ctx;
	unsigned char raw[DIGEST_RAW_MAX];
	char thousand_a[1000];

	digest_buf(DIGEST_SHA256, "", 0, out);
	is_str(out, SHA256_EMPTY, "sha256 of nothing");
	digest_buf(DIGEST_SHA256, "abc", 3, out);
	is_str(out, SHA256_ABC, "sha256 of abc");
	digest_buf(DIGEST_SHA512, "", 0, out);
	is_str(out, SHA512_EMPTY, "sha512 of nothing");
	digest_buf(DIGEST_SHA512, "abc", 3, out);
	is_str(out, SHA512_ABC, "sha512 of abc");

	memset(thousand_a, 'a', sizeof(thousand_a));
	digest_init(&ctx, DIGEST_SHA256);
	for (int i = 0; i < 1000; i++)
		digest_update(&ctx, thousand_a, sizeof(thousand_a));
	digest_final_string(&ctx, out);
	is_str(out, SHA256_MILLION_A, "sha256 of a million 'a', 1000 bytes at a time");

	/* After a final the context is a fresh one of the same algorithm. */
	digest_update(&ctx, "abc", 3);
	digest_final_string(&ctx, out);
	is_str(out, SHA256_ABC, "a finished context starts over");

	digest_init(&ctx, DIGEST_SHA512);
	digest_update(&ctx, "ab", 2);
	digest_update(&ctx, "", 0);
	digest_update(&ctx, "c", 1);
	is_int((int)digest_final_raw(&ctx, raw), 64, "sha512 is 64 raw bytes");
	is_int(raw[0], 0xdd, "raw sha512 of abc starts with dd");
	is_int(raw[63], 0x9f, "raw sha512 of abc ends with 9f");
	is_str(digest_alg_name(DIGEST_SHA256), "sha256", "name of sha256");
	is_str(digest_alg_name(DIGEST_SHA512), "sha512", "name of sha512");
	is_int((int)digest_alg_size(DIGEST_SHA256), 32, "sha256 is 32 bytes");
}

/* Every length around the block sizes (64 and 128 bytes), fed whole and
 * in uneven pieces, against OpenSSL. */
static void test_streaming(void)
{
	static unsigned char buf[1 << 20];
	char want[DIGEST_STRING_MAX], got[DIGEST_STRING_MAX];
	const size_t lens[] = { 1,   55,  56,   63,   64,    65,    111,   112,        127,
				128, 129, 1000, 4096, 65535, 65536, 65537, sizeof(buf) };

	fill(buf, sizeof(buf), 42);
	for (int a = 0; a < 2; a++) {
		enum digest_alg alg = a ? DIGEST_SHA512 : DIGEST_SHA256;
		int whole_bad = 0, pieces_bad = 0;

		for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
			struct digest_ctx ctx;
			size_t off = 0, piece = 1;

			openssl_string(alg, buf, lens[i], want);
			digest_buf(alg, buf, lens[i], got);
			if (strcmp(got, want) != 0) {
				whole_bad++;
				diag("%s of %zu bytes: %s, OpenSSL %s", digest_alg_name(alg),
				     lens[i], got, want);
			}
			digest_init(&ctx, alg);
			while (off < lens[i]) {
				size_t n = piece < lens[i] - off ? piece : lens[i] - off;

				digest_update(&ctx, buf + off, n);
				off += n;
				piece = piece * 3 + 1; /* 1, 4, 13, 40, ...: odd cuts */
			}
			digest_final_string(&ctx, got);
			if (strcmp(got, want) != 0) {
				pieces_bad++;
				diag("%s of %zu bytes in pieces: %s, OpenSSL %s",
				     digest_alg_name(alg), lens[i], got, want);
			}
		}
		is_int(whole_bad, 0, "%s of whole buffers equals OpenSSL's", digest_alg_name(alg));
		is_int(pieces_bad, 0, "%s of buffers in pieces equals OpenSSL's",
		       digest_alg_name(alg));
	}
}

#define N_THREADS 4
#define THREAD_BYTES (4 << 20)

struct hasher {
	pthread_t tid;
	enum digest_alg alg;
	unsigned char *data;
	char got[DIGEST_STRING_MAX];
};

static void *hash_thread(void *arg)
{
	struct hasher *h = arg;
	struct digest_ctx ctx;

	digest_init(&ctx, h->alg);
	for (size_t off = 0; off < THREAD_BYTES; off += 4093) {
		size_t n = THREAD_BYTES - off < 4093 ? THREAD_BYTES - off : 4093;
		digest_update(&ctx, h->data + off, n);
	}
	digest_final_string(&ctx, h->got);
	return NULL;
}

/* The pull workers hash several blobs at once, each with its own context. */
static void test_threads(void)
{
	struct hasher h[N_THREADS];
	char want[DIGEST_STRING_MAX];
	int started = 0, bad = 0;

	for (int i = 0; i < N_THREADS; i++) {
		h[i].alg = i % 2 ? DIGEST_SHA512 : DIGEST_SHA256;
		h[i].data = malloc(THREAD_BYTES);
		if (!h[i].data)
			abort();
		fill(h[i].data, THREAD_BYTES, 1000 + i);
	}
	for (int i = 0; i < N_THREADS; i++)
		if (pthread_create(&h[i].tid, NULL, hash_thread, &h[i]) == 0)
			started++;
	is_int(started, N_THREADS, "hashing threads started");
	for (int i = 0; i < started; i++)
		pthread_join(h[i].tid, NULL);
	for (int i = 0; i < started; i++) {
		openssl_string(h[i].alg, h[i].data, THREAD_BYTES, want);
		if (strcmp(h[i].got, want) != 0) {
			bad++;
			diag("thread %d: %s, OpenSSL %s", i, h[i].got, want);
		}
	}
	is_int(bad, 0, "concurrent contexts each get their own data's digest");
	for (int i = 0; i < N_THREADS; i++)
		free(h[i].data);
}

int main(void)
{
	test_vectors();
	test_streaming();
	test_threads();
	return done_testing();
}
