/* Registry authentication for fetch/registry.c (in crisp-fetch): the credentials of a CRI
 * AuthConfig, WWW-Authenticate challenges, and a cache of bearer tokens.
 *
 * Tokens are cached per (registry host, scope, credentials): the key holds
 * a SHA-256 of the credentials, never the credentials, so a token obtained
 * with one pod's pull secret is never used for a pull made with other (or
 * no) credentials. Bearer tokens are kept until expires_in (60 s when the
 * token server does not say) and wiped when dropped; passwords and identity
 * tokens are never cached, each request holds its own copy and wipes it.
 * Nothing here logs a secret, at any level. */
#ifndef CRISP_FETCH_AUTH_H
#define CRISP_FETCH_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "fetch/http.h"

struct registry_auth;

enum auth_cred_kind {
	CRED_NONE,    /* anonymous */
	CRED_BASIC,   /* user + password (also from the base64 "auth" field) */
	CRED_REFRESH, /* identity token: OAuth2 refresh_token grant (user may be set) */
	CRED_BEARER,  /* registry token: sent as is */
};

struct auth_cred {
	enum auth_cred_kind kind;
	char *user;
	char *secret;
	uint8_t id[32]; /* SHA-256 of kind, user and secret: the cache key */
};

/* Normalize a CRI AuthConfig (NULL: anonymous). Precedence: registry_token,
 * identity_token, username/password, auth. CRISP_E_INVALID for a malformed
 * auth field or a credential with control characters. */
int auth_cred_init(struct auth_cred *c, const struct registry_auth *a, struct crisp_error *err);
void auth_cred_wipe(struct auth_cred *c);
/* "Authorization: Basic ..." for a CRED_BASIC/CRED_REFRESH credential. */
char *auth_basic_header(const struct auth_cred *c);

struct auth_cache;
struct auth_wait;

typedef void (*auth_done_cb)(void *arg, const struct crisp_error *err);

struct auth_cache *auth_cache_new(struct http *http);
/* Wipes every token; pending waits are dropped without a call. */
void auth_cache_free(struct auth_cache *c);

/* Before a request to host for scope with cred:
 *  0: go, with *ret_header ("Authorization: ...", caller wipes and frees)
 *     or NULL for no header;
 *  1: a token for this key is being fetched: cb(arg, err) follows unless
 *     auth_wait_cancel(*ret_wait) comes first. */
int auth_prepare(struct auth_cache *c, const char *host, const char *scope,
		 const struct auth_cred *cred, char **ret_header, auth_done_cb cb, void *arg,
		 struct auth_wait **ret_wait);

/* A 401 from host answered with these WWW-Authenticate values (n of them).
 * Drops any cached token for the key, then:
 *  0: retry now (auth_prepare() will give the header: Basic);
 *  1: a token is being fetched, cb follows as for auth_prepare();
 * -1: nothing to do about it (CRISP_E_PERMISSION: unsupported or unanswerable
 *     challenge; CRISP_E_INVALID: malformed). A bearer realm over plain http
 *     gets credentials only if the registry itself is plain http
 *     (plain_ok). */
int auth_challenge(struct auth_cache *c, const char *host, const char *scope,
		   const struct auth_cred *cred, const char *const *challenges, size_t n,
		   bool plain_ok, auth_done_cb cb, void *arg, struct auth_wait **ret_wait,
		   struct crisp_error *err);

void auth_wait_cancel(struct auth_wait *w);

/* "CODE: message" from a registry's JSON error body ({"errors":[...]}), or a
 * token server's message ({"details"}, OAuth2's error_description), cleaned
 * of control characters and cut to outlen; -1 if the body holds none. */
int registry_error_text(const char *body, size_t len, char *out, size_t outlen);

/* Challenge parsing, exposed for tests: the preferred challenge (bearer over
 * basic) among n header values, each possibly holding several. */
enum auth_scheme {
	AUTH_NONE,
	AUTH_BASIC,
	AUTH_BEARER,
};
struct auth_challenge {
	enum auth_scheme scheme;
	char *realm, *service, *scope, *error;
};
int auth_challenge_parse(const char *const *values, size_t n, struct auth_challenge *ret,
			 struct crisp_error *err);
void auth_challenge_clear(struct auth_challenge *ch);

#endif
