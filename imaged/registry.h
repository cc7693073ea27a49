/* The OCI Distribution (registry v2) client of imaged: fetches manifests and
 * blobs. Two implementations share this API:
 *  - fetch/registry.c, the real client, over fetch/http.c (libcurl multi on
 *    the libevent loop, never blocking it); it runs only in crisp-fetch, the
 *    unprivileged child imaged starts while it has fetches to make;
 *  - imaged/fetch_client.c, what imaged links: it forwards each request to
 *    crisp-fetch (ipc/ipc.proto, Fetch*) and trusts nothing it answers:
 *    manifests are bounded and their digest recomputed here, blob bytes are
 *    bounded by size (the content store verifies their digest), and a
 *    malformed message kills crisp-fetch. A crisp-fetch that dies fails its
 *    requests with CRISP_E_UNAVAILABLE ("crisp-fetch exited with ...").
 * Everything either receives is hostile until checked.
 *
 * For each request, in order, each endpoint of the host is tried: its
 * mirrors (as configured, in order), then the origin. A mirror that fails in
 * any way (including a 404 or bad data) hands over to the next endpoint at
 * once; the origin gets the retries. The error reported is the origin's.
 *
 * Per endpoint:
 *  - authentication: a 401 is answered from its WWW-Authenticate challenge:
 *    Bearer (anonymous or credentialed token, see imaged/auth.h) or Basic;
 *    a second 401 is CRISP_E_PERMISSION. The request's credentials go to the
 *    origin and its token server only: mirrors are asked anonymously.
 *  - redirects (blobs usually redirect to a CDN) are followed here, up to 5,
 *    http/https only, never from https down to http; Authorization is sent
 *    only to the endpoint's own scheme://host:port, never to a redirect
 *    target elsewhere.
 *  - retries with exponential backoff (and jitter) for 5xx, 408, 429 (its
 *    Retry-After honored, up to 60 s) and connection failures or resets, up
 *    to max_retries; a blob resumes from the bytes already delivered
 *    (Range: bytes=<pos>-, accepting a 206 or a 200 whose first pos bytes
 *    are skipped), and an attempt that delivered bytes does not use up a
 *    retry.
 *  - no byte in or out for low_speed_timeout seconds (connecting, waiting
 *    for an answer or mid-body) ends the request with CRISP_E_TIMEOUT: a
 *    mirror hands over to the next endpoint, the origin is not retried (the
 *    pull is stuck; kubelet retries it).
 *
 * Errors: 404 CRISP_E_NOT_FOUND; 401/403 after authentication
 * CRISP_E_PERMISSION; bad or oversized data, digest or size mismatch,
 * schema 1 manifests CRISP_E_INVALID; network, TLS, 5xx CRISP_E_UNAVAILABLE;
 * no progress CRISP_E_TIMEOUT; a blob writer's error is passed on as is. A
 * blob whose digest is wrong fails the request even from a mirror: the
 * writer already has its bytes and must discard them.
 * A registry's JSON error body becomes the message:
 * "registry 127.0.0.1:5000 says MANIFEST_UNKNOWN: manifest unknown".
 *
 * Hosts named "localhost", 127.0.0.0/8 or [::1] without a host entry use
 * plain http (as containerd does); with an entry, or any other host, https
 * unless the entry sets plain_http. "docker.io" is served by
 * registry-1.docker.io (its mirrors are configured under "docker.io"). A
 * mirror's scheme is in its URL; its CA file and insecure_skip_verify come
 * from the host entry of the mirror's own name[:port], if there is one (as
 * do those of token servers and redirect targets).
 *
 * Credentials are never logged, at any level, and are wiped from memory
 * (explicit_bzero) when the request that holds its copy ends. */
#ifndef CRISP_IMAGED_REGISTRY_H
#define CRISP_IMAGED_REGISTRY_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Response size bounds. */
#define REGISTRY_MANIFEST_MAX (4u << 20)
#define REGISTRY_TOKEN_MAX (64u << 10)

/* Configuration of one registry host. */
struct registry_host {
	const char *host; /* "registry.example:5000", as in image references */
	/* NULL-terminated list of "http[s]://name[:port][/path-prefix]",
	 * tried in order before the host itself ("/v2/..." is appended). */
	const char *const *mirrors;
	bool plain_http;           /* http instead of https */
	bool insecure_skip_verify; /* https without certificate checks */
	const char *ca_file;       /* PEM bundle trusted for this host */
};

/* Zero values mean the defaults, except max_retries (0: none). */
struct registry_options {
	const char *user_agent;     /* "crisp/VERSION" by default */
	unsigned max_transfers;     /* at once; the rest queue (default 3) */
	unsigned low_speed_timeout; /* seconds without progress (default 60) */
	unsigned max_retries;       /* per request on the origin (default 5) */
	unsigned retry_delay_ms;    /* first backoff, doubling up to 30 s (default 500) */
	const struct registry_host *hosts;
	size_t nhosts;
};

/* The defaults above, no hosts. */
void registry_options_init(struct registry_options *opt);

/* A CRI AuthConfig. registry_auth_free() wipes every field with
 * explicit_bzero before freeing it. */
struct registry_auth {
	char *username, *password;
	char *auth; /* base64 of "username:password" */
	char *identity_token;
	char *registry_token;
};
void registry_auth_free(struct registry_auth *a);

struct registry;
struct registry_request;

/* Copies opt (and reads the proxy environment: HTTPS_PROXY, HTTP_PROXY,
 * ALL_PROXY, NO_PROXY, upper or lower case; imaged passes these variables,
 * and only these, on to crisp-fetch). */
struct registry *registry_new(struct event_base *base, const struct registry_options *opt,
			      struct crisp_error *err);
/* Cancels every request without calling back. Takes NULL. Not from a
 * callback of this registry. */
void registry_free(struct registry *reg);

struct registry_manifest {
	const char *media_type; /* from Content-Type, else the body's mediaType */
	const char *digest;     /* of the exact bytes ("sha256:..." unless a
				   sha512 digest was asked for) */
	const void *body;
	size_t len;
};

/* m is valid during the call only; exactly one of m and err is non-NULL. */
typedef void (*registry_manifest_cb)(void *arg, const struct registry_manifest *m,
				     const struct crisp_error *err);
/* Blob bytes in order; -1 (with err set, else a generic error is used)
 * aborts the request, whose done callback then gets that error. */
typedef int (*registry_write_cb)(void *arg, const void *buf, size_t n, struct crisp_error *err);
/* err NULL: all bytes were delivered, the size matched and, if the fetch
 * started at offset 0, so did the digest. */
typedef void (*registry_done_cb)(void *arg, const struct crisp_error *err);

/* GET /v2/<repo>/manifests/<reference>. host: registry host as in the image
 * reference ("docker.io", "127.0.0.1:5000"); repo: the repository path
 * ("library/busybox"); reference: a tag or a digest; accept: the Accept
 * header value (NULL: OCI and Docker schema 2 manifests and indexes); auth:
 * may be NULL, is copied. The manifest's digest is checked against a digest
 * reference and against the Docker-Content-Digest header when present;
 * schema 1 manifests are refused.
 * NULL with err set (CRISP_E_INVALID) if an argument is malformed: cb will
 * not be called. Otherwise cb is called exactly once, always from the loop
 * (never from within this call), unless registry_cancel() comes first. */
struct registry_request *registry_get_manifest(struct registry *reg, const char *host,
					       const char *repo, const char *reference,
					       const char *accept, const struct registry_auth *auth,
					       registry_manifest_cb cb, void *arg,
					       struct crisp_error *err);

/* GET /v2/<repo>/blobs/<digest> from byte offset on (the caller holds the
 * first offset bytes: offset < size, or both 0), delivering bytes offset..
 * size-1 to write_cb, then done_cb once (same rules as above). More bytes
 * than size, or fewer at the end, is CRISP_E_INVALID. */
struct registry_request *registry_get_blob(struct registry *reg, const char *host, const char *repo,
					   const char *digest, uint64_t size, uint64_t offset,
					   const struct registry_auth *auth,
					   registry_write_cb write_cb, registry_done_cb done_cb,
					   void *arg, struct crisp_error *err);

/* Stop a request: no callback of it runs afterwards, whatever the context
 * (including its own write callback). The handle is invalid after this and
 * after its final callback. Takes NULL. */
void registry_cancel(struct registry_request *req);

#endif
