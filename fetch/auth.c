/* Registry authentication in crisp-fetch: credentials, challenges, token
 * cache and token requests (PROTOCOLS.md section 8, containerd's
 * remotes/docker/auth). Which host a pull's credentials are for is decided
 * in imaged (imaged/auth.c) before they are handed over. */
#include "autoconfig.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "common/log.h"
#include "fetch/auth.h"
#include "imaged/registry.h"

#define AUTH_MAX_ENTRIES 512
#define TOKEN_DEFAULT_TTL 60 /* seconds, when expires_in is absent */
#define TOKEN_MAX_TTL 86400

struct token_fetch;

struct auth_entry {
	TAILQ_ENTRY(auth_entry) link;
	char *host, *scope;
	uint8_t credid[32];
	enum auth_scheme scheme; /* what the host asked for last */
	char *header;            /* bearer: "Authorization: Bearer <token>" */
	uint64_t expires;        /* now_ms() after which the token is not used */
	struct token_fetch *fetch;
};

TAILQ_HEAD(entry_list, auth_entry);

struct auth_wait {
	TAILQ_ENTRY(auth_wait) link;
	struct token_fetch *f;
	auth_done_cb cb;
	void *arg;
};

struct token_fetch {
	struct auth_cache *c;
	struct auth_entry *e;
	struct http_xfer *x;
	struct auth_cred cred;
	struct auth_challenge ch;
	char *realm_host; /* for messages */
	bool posted;      /* OAuth2 POST tried */
	struct http_buf body;
	TAILQ_HEAD(, auth_wait) waiters;
};

struct auth_cache {
	struct http *http;
	struct entry_list entries;
	size_t n;
};

static void wipe_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* Control characters in a credential could split a header line. */
static bool printable(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void cred_id(struct auth_cred *c)
{
	uint8_t kind = c->kind;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned len;

	if (!md)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, &kind, 1);
	EVP_DigestUpdate(md, c->user ? c->user : "", c->user ? strlen(c->user) + 1 : 1);
	EVP_DigestUpdate(md, c->secret ? c->secret : "", c->secret ? strlen(c->secret) : 0);
	EVP_DigestFinal_ex(md, c->id, &len);
	EVP_MD_CTX_free(md);
}

/* The "auth" field: base64 of "user:password" (password NUL-padded by some
 * tools, which containerd trims). */
static int decode_auth(struct auth_cred *c, const char *b64, struct crisp_error *err)
{
	size_t len = strlen(b64), pad = 0;
	unsigned char *out;
	char *colon;
	int n;

	if (len == 0 || len % 4 != 0 || len > 16384)
		return err_set(err, CRISP_E_INVALID, "auth is not base64 of user:password");
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
	while (pad < 2 && len > pad && b64[len - 1 - pad] == '=')
		pad++;
	if (n < 0 || (size_t)n < pad) {
		explicit_bzero(out, len / 4 * 3 + 1);
		free(out);
		return err_set(err, CRISP_E_INVALID, "auth is not base64 of user:password");
	}
	n -= (int)pad;
	out[n] = '\0';
	colon = memchr(out, ':', (size_t)n);
	if (!colon || strlen((char *)out) != (size_t)n) {
		explicit_bzero(out, (size_t)n);
		free(out);
		return err_set(err, CRISP_E_INVALID, "auth is not base64 of user:password");
	}
	*colon = '\0';
	c->user = xstrdup((char *)out);
	c->secret = xstrdup(colon + 1);
	explicit_bzero(out, (size_t)n);
	free(out);
	return 0;
}

static bool set(const char *s)
{
	return s && *s;
}

int auth_cred_init(struct auth_cred *c, const struct registry_auth *a, struct crisp_error *err)
{
	memset(c, 0, sizeof(*c));
	if (a && set(a->registry_token)) {
		c->kind = CRED_BEARER;
		c->secret = xstrdup(a->registry_token);
	} else if (a && set(a->identity_token)) {
		c->kind = CRED_REFRESH;
		c->user = xstrdup(a->username ? a->username : "");
		c->secret = xstrdup(a->identity_token);
	} else if (a && set(a->username)) {
		c->kind = CRED_BASIC;
		c->user = xstrdup(a->username);
		c->secret = xstrdup(a->password ? a->password : "");
	} else if (a && set(a->auth)) {
		c->kind = CRED_BASIC;
		if (decode_auth(c, a->auth, err) < 0)
			return -1;
	}
	if (!printable(c->user) || !printable(c->secret) ||
	    (c->kind == CRED_BASIC && strchr(c->user, ':'))) {
		auth_cred_wipe(c);
		return err_set(err, CRISP_E_INVALID, "credentials hold characters they may not");
	}
	cred_id(c);
	return 0;
}

void auth_cred_wipe(struct auth_cred *c)
{
	wipe_str(&c->user);
	wipe_str(&c->secret);
	explicit_bzero(c, sizeof(*c));
}

static void cred_copy(struct auth_cred *dst, const struct auth_cred *src)
{
	*dst = *src;
	dst->user = src->user ? xstrdup(src->user) : NULL;
	dst->secret = src->secret ? xstrdup(src->secret) : NULL;
}

char *auth_basic_header(const struct auth_cred *c)
{
	_cleanup_free_ char *plain = xasprintf("%s:%s", c->user ? c->user : "", c->secret);
	size_t len = strlen(plain), outlen = 4 * ((len + 2) / 3) + 1;
	char *b64 = xmalloc(outlen), *hdr;

	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)len);
	hdr = xasprintf("Authorization: Basic %s", b64);
	explicit_bzero(b64, outlen);
	explicit_bzero(plain, len);
	free(b64);
	return hdr;
}

/* --- challenges ------------------------------------------------------------- */

static bool tchar(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~/", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token or a quoted string with \ escapes; NULL if malformed. */
static char *parse_value(const char **pp)
{
	const char *p = *pp;
	char *v, *o;

	if (*p != '"') {
		const char *s = p;
		while (tchar(*p) || *p == '=')
			p++;
		*pp = p;
		return strndup(s, (size_t)(p - s));
	}
	v = o = xmalloc(strlen(p) + 1);
	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		*o++ = *p;
	}
	*o = '\0';
	if (*p != '"') {
		free(v);
		return NULL;
	}
	*pp = p + 1;
	return v;
}

static void keep_param(struct auth_challenge *ch, const char *key, char *value)
{
	char **slot = NULL;

	if (strcasecmp(key, "realm") == 0)
		slot = &ch->realm;
	else if (strcasecmp(key, "service") == 0)
		slot = &ch->service;
	else if (strcasecmp(key, "scope") == 0)
		slot = &ch->scope;
	else if (strcasecmp(key, "error") == 0)
		slot = &ch->error;
	if (slot) {
		free(*slot);
		*slot = TAKE_PTR(value);
	}
	free(value);
}

/* One header value: "scheme k=v, k="v", scheme2 k=v ...". Fills ret with the
 * best challenge seen so far (bearer over basic). */
static int parse_one(const char *p, struct auth_challenge *ret)
{
	while (*(p = skip_ws(p))) {
		struct auth_challenge ch = { AUTH_NONE };
		const char *s = p;
		char scheme[16];

		while (tchar(*p))
			p++;
		if (p == s || p - s >= (long)sizeof(scheme))
			return -1;
		memcpy(scheme, s, (size_t)(p - s));
		scheme[p - s] = '\0';
		ch.scheme = strcasecmp(scheme, "bearer") == 0  ? AUTH_BEARER
			    : strcasecmp(scheme, "basic") == 0 ? AUTH_BASIC
							       : AUTH_NONE;
		for (;;) {
			const char *k, *save;
			char key[32], *value;

			p = save = skip_ws(p);
			for (k = p; tchar(*p);)
				p++;
			if (p == k || *skip_ws(p) != '=') {
				p = save; /* a new scheme, or the end */
				break;
			}
			snprintf(key, sizeof(key), "%.*s", (int)(p - k), k);
			p = skip_ws(skip_ws(p) + 1);
			if (!(value = parse_value(&p))) {
				auth_challenge_clear(&ch);
				return -1;
			}
			keep_param(&ch, key, value);
			p = skip_ws(p);
			if (*p != ',')
				break;
			p++;
		}
		if (ch.scheme > ret->scheme) {
			auth_challenge_clear(ret);
			*ret = ch;
		} else {
			auth_challenge_clear(&ch);
		}
		p = skip_ws(p);
		if (*p == ',')
			p++;
	}
	return 0;
}

int auth_challenge_parse(const char *const *values, size_t n, struct auth_challenge *ret,
			 struct crisp_error *err)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++)
		if (parse_one(values[i], ret) < 0) {
			auth_challenge_clear(ret);
			return err_set(err, CRISP_E_INVALID, "malformed WWW-Authenticate header");
		}
	if (ret->scheme == AUTH_BEARER && !ret->realm) {
		auth_challenge_clear(ret);
		return err_set(err, CRISP_E_INVALID, "bearer challenge without a realm");
	}
	return 0;
}

void auth_challenge_clear(struct auth_challenge *ch)
{
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	free(ch->error);
	memset(ch, 0, sizeof(*ch));
}

/* --- registry error bodies -------------------------------------------------- */

/* Text from a registry or token server can end up in kubelet events and our
 * logs: keep it short and printable. */
static void append_clean(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(out);

	for (; s && *s && n + 1 < outlen; s++)
		out[n++] = (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f ? '?' : *s;
	out[n] = '\0';
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int registry_error_text(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *root, *errors, *e;
	const char *msg;

	out[0] = '\0';
	if (!body || !len || !(root = json_loadb(body, len, 0, NULL)))
		return -1;
	errors = json_object_get(root, "errors");
	if (json_is_array(errors) && (e = json_array_get(errors, 0)) && json_is_object(e)) {
		append_clean(out, outlen, jstr(e, "code") ? jstr(e, "code") : "UNKNOWN");
		if ((msg = jstr(e, "message")) && *msg) {
			append_clean(out, outlen, ": ");
			append_clean(out, outlen, msg);
		}
		if (json_array_size(errors) > 1) {
			char more[48];
			snprintf(more, sizeof(more), " (and %zu more)",
				 json_array_size(errors) - 1);
			append_clean(out, outlen, more);
		}
	} else if ((msg = jstr(root, "details")) || (msg = jstr(root, "error_description")) ||
		   (msg = jstr(root, "error")) || (msg = jstr(root, "message"))) {
		append_clean(out, outlen, msg); /* token servers: Docker Hub, OAuth2 */
	}
	json_decref(root);
	return out[0] ? 0 : -1;
}

/* --- the token cache ---------------------------------------------------------- */

struct auth_cache *auth_cache_new(struct http *http)
{
	struct auth_cache *c = xcalloc(1, sizeof(*c));

	c->http = http;
	TAILQ_INIT(&c->entries);
	return c;
}

static void drop_token(struct auth_entry *e)
{
	wipe_str(&e->header);
	e->expires = 0;
}

static void fetch_free(struct token_fetch *f)
{
	struct auth_wait *w;

	while ((w = TAILQ_FIRST(&f->waiters))) {
		TAILQ_REMOVE(&f->waiters, w, link);
		free(w);
	}
	http_xfer_free(f->x);
	auth_cred_wipe(&f->cred);
	auth_challenge_clear(&f->ch);
	http_buf_clear(&f->body);
	free(f->realm_host);
	free(f);
}

static void entry_free(struct auth_cache *c, struct auth_entry *e)
{
	TAILQ_REMOVE(&c->entries, e, link);
	c->n--;
	if (e->fetch)
		fetch_free(e->fetch);
	drop_token(e);
	free(e->host);
	free(e->scope);
	free(e);
}

void auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	while (!TAILQ_EMPTY(&c->entries))
		entry_free(c, TAILQ_FIRST(&c->entries));
	free(c);
}

/* Drop expired tokens and, past the bound, the least recently added idle
 * entries (a basic entry holds no secret, only the scheme). */
static void prune(struct auth_cache *c)
{
	struct auth_entry *e, *next;
	uint64_t now = now_ms();

	for (e = TAILQ_FIRST(&c->entries); e; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->fetch)
			continue;
		if ((e->scheme == AUTH_BEARER && e->expires <= now) || c->n > AUTH_MAX_ENTRIES)
			entry_free(c, e);
	}
}

static struct auth_entry *entry_find(struct auth_cache *c, const char *host, const char *scope,
				     const struct auth_cred *cred, bool create)
{
	struct auth_entry *e;

	TAILQ_FOREACH (e, &c->entries, link)
		if (streq(e->host, host) && streq(e->scope, scope) &&
		    memcmp(e->credid, cred->id, sizeof(e->credid)) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->host = xstrdup(host);
	e->scope = xstrdup(scope);
	memcpy(e->credid, cred->id, sizeof(e->credid));
	TAILQ_INSERT_TAIL(&c->entries, e, link);
	c->n++;
	return e;
}

static struct auth_wait *wait_on(struct token_fetch *f, auth_done_cb cb, void *arg)
{
	struct auth_wait *w = xcalloc(1, sizeof(*w));

	w->f = f;
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&f->waiters, w, link);
	return w;
}

void auth_wait_cancel(struct auth_wait *w)
{
	if (w) {
		TAILQ_REMOVE(&w->f->waiters, w, link);
		free(w);
	}
}

int auth_prepare(struct auth_cache *c, const char *host, const char *scope,
		 const struct auth_cred *cred, char **ret_header, auth_done_cb cb, void *arg,
		 struct auth_wait **ret_wait)
{
	struct auth_entry *e;

	*ret_header = NULL;
	if (cred->kind == CRED_BEARER) {
		*ret_header = xasprintf("Authorization: Bearer %s", cred->secret);
		return 0;
	}
	prune(c);
	e = entry_find(c, host, scope, cred, false);
	if (!e)
		return 0;
	if (e->fetch) {
		*ret_wait = wait_on(e->fetch, cb, arg);
		return 1;
	}
	if (e->scheme == AUTH_BASIC && cred->kind == CRED_BASIC)
		*ret_header = auth_basic_header(cred);
	else if (e->scheme == AUTH_BEARER && e->header && e->expires > now_ms())
		*ret_header = xstrdup(e->header);
	return 0;
}

/* --- token requests ----------------------------------------------------------- */

static int fetch_start(struct token_fetch *f, struct crisp_error *err);

/* Tell every waiter, one at a time: a callback may cancel other waits or
 * start a new fetch for the same key (the entry no longer points here). */
static void fetch_finish(struct token_fetch *f, const struct crisp_error *err)
{
	struct auth_wait *w;

	if (f->e) {
		f->e->fetch = NULL;
		if (err)
			drop_token(f->e);
	}
	while ((w = TAILQ_FIRST(&f->waiters))) {
		auth_done_cb cb = w->cb;
		void *arg = w->arg;

		TAILQ_REMOVE(&f->waiters, w, link);
		free(w);
		cb(arg, err);
	}
	fetch_free(f);
}

static int token_store(struct token_fetch *f, struct crisp_error *err)
{
	json_t *root = json_loadb(f->body.data ? f->body.data : "", f->body.len, 0, NULL);
	const char *tok;
	json_int_t ttl = TOKEN_DEFAULT_TTL;
	int r = 0;

	if (!root)
		return err_set(err, CRISP_E_INVALID, "token server %s sent no JSON", f->realm_host);
	/* containerd prefers access_token when both are present */
	tok = jstr(root, "access_token");
	if (!tok || !*tok)
		tok = jstr(root, "token");
	if (json_is_integer(json_object_get(root, "expires_in")))
		ttl = json_integer_value(json_object_get(root, "expires_in"));
	if (ttl <= 0)
		ttl = TOKEN_DEFAULT_TTL;
	if (ttl > TOKEN_MAX_TTL)
		ttl = TOKEN_MAX_TTL;
	if (!tok || !*tok || !printable(tok) || strchr(tok, ' ')) {
		r = err_set(err, CRISP_E_INVALID, "token server %s sent no usable token",
			    f->realm_host);
	} else if (f->e) {
		drop_token(f->e);
		f->e->header = xasprintf("Authorization: Bearer %s", tok);
		/* a little early, so a token never expires on its way */
		f->e->expires = now_ms() + (uint64_t)ttl * 1000 - (ttl > 30 ? 5000 : 0);
		f->e->scheme = AUTH_BEARER;
	}
	/* wipe jansson's copies of the token; the body is wiped by its owner */
	if ((tok = jstr(root, "access_token")))
		explicit_bzero((char *)tok, strlen(tok));
	if ((tok = jstr(root, "token")))
		explicit_bzero((char *)tok, strlen(tok));
	if ((tok = jstr(root, "refresh_token")))
		explicit_bzero((char *)tok, strlen(tok));
	json_decref(root);
	return r;
}

static int token_on_headers(void *arg, struct http_xfer *x, long status)
{
	const char *cl = http_xfer_header(x, "Content-Length", 0);

	return cl && strtoull(cl, NULL, 10) > REGISTRY_TOKEN_MAX ? -1 : 0;
}

static int token_on_data(void *arg, struct http_xfer *x, const char *buf, size_t n)
{
	struct token_fetch *f = arg;

	return http_buf_append(&f->body, buf, n);
}

static void token_error(struct token_fetch *f, const struct http_result *res,
			struct crisp_error *err)
{
	char text[256];

	switch (res->outcome) {
	case HTTP_ABORTED:
		err_set(err, CRISP_E_INVALID, "token server %s: response larger than %u bytes",
			f->realm_host, REGISTRY_TOKEN_MAX);
		return;
	case HTTP_STALLED:
		err_set(err, CRISP_E_TIMEOUT, "token server %s: no progress, gave up",
			f->realm_host);
		return;
	case HTTP_NETWORK:
		err_set(err, CRISP_E_UNAVAILABLE, "cannot reach token server %s: %s", f->realm_host,
			res->error);
		return;
	default:
		break;
	}
	if (registry_error_text(f->body.data, f->body.len, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "HTTP %ld", res->status);
	if (res->status == 401 || res->status == 403)
		err_set(err, CRISP_E_PERMISSION, "token server %s refused %s: %s", f->realm_host,
			f->cred.kind == CRED_NONE ? "anonymous access" : "the credentials", text);
	else if (res->status == 429 || res->status >= 500)
		err_set(err, CRISP_E_UNAVAILABLE, "token server %s says %s", f->realm_host, text);
	else
		err_set(err, CRISP_E_INVALID, "token server %s says %s", f->realm_host, text);
}

static void token_on_done(void *arg, struct http_xfer *x, const struct http_result *res)
{
	struct token_fetch *f = arg;
	struct crisp_error err = { 0 };
	long st = res->status;

	f->x = NULL;
	http_xfer_free(x);
	/* Registries without the OAuth2 POST answer it with one of these
	 * (GCR 404, Artifactory 401, ACR 400): fall back to GET + basic, as
	 * containerd does. */
	if (res->outcome == HTTP_COMPLETE && f->posted &&
	    (st == 400 || st == 401 || st == 404 || st == 405)) {
		f->posted = false;
		f->cred.kind = CRED_BASIC;
		http_buf_clear(&f->body);
		if (fetch_start(f, &err) < 0)
			fetch_finish(f, &err);
		return;
	}
	if (res->outcome == HTTP_COMPLETE && st == 200) {
		if (token_store(f, &err) == 0) {
			log_debug("auth: token for %s %s from %s", f->e ? f->e->host : "?",
				  f->e ? f->e->scope : "?", f->realm_host);
			fetch_finish(f, NULL);
			return;
		}
	} else {
		token_error(f, res, &err);
	}
	log_debug("auth: %s", err.msg);
	fetch_finish(f, &err);
}

static const struct http_xfer_ops token_ops = {
	.on_headers = token_on_headers,
	.on_data = token_on_data,
	.on_done = token_on_done,
};

/* The scopes to ask for: the challenge's (space-separated), else ours. */
static char *token_url(struct token_fetch *f, const char *scope)
{
	CURLU *u = curl_url();
	char *url = NULL, *v;
	_cleanup_free_ char *scopes = xstrdup(f->ch.scope ? f->ch.scope : scope);
	char *save = NULL;
	int bad = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, f->ch.realm, 0) != CURLUE_OK)
		goto out;
	if (f->ch.service && !f->posted) {
		_cleanup_free_ char *q = xasprintf("service=%s", f->ch.service);
		bad |= curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE);
	}
	for (char *s = strtok_r(scopes, " ", &save); s && !f->posted;
	     s = strtok_r(NULL, " ", &save)) {
		_cleanup_free_ char *q = xasprintf("scope=%s", s);
		bad |= curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE);
	}
	if (!bad && curl_url_get(u, CURLUPART_URL, &v, 0) == CURLUE_OK) {
		url = xstrdup(v);
		curl_free(v);
	}
out:
	curl_url_cleanup(u);
	return url;
}

static char *form_field(const char *name, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0), *field;

	if (!esc)
		abort();
	field = xasprintf("%s=%s", name, esc);
	explicit_bzero(esc, strlen(esc));
	curl_free(esc);
	return field;
}

/* OAuth2 refresh_token grant (distribution's oauth.md), as containerd sends
 * it for an identity token. */
static void token_post(struct token_fetch *f, const char *scope)
{
	_cleanup_free_ char *grant = form_field("grant_type", "refresh_token");
	_cleanup_free_ char *service = form_field("service", f->ch.service ? f->ch.service : "");
	_cleanup_free_ char *client = form_field("client_id", "crisp");
	_cleanup_free_ char *sc = form_field("scope", f->ch.scope ? f->ch.scope : scope);
	char *tok = form_field("refresh_token", f->cred.secret);
	char *body = xasprintf("%s&%s&%s&%s&%s", grant, tok, service, client, sc);

	http_xfer_set_post(f->x, "application/x-www-form-urlencoded", body, strlen(body));
	wipe_str(&tok);
	wipe_str(&body);
}

static int fetch_start(struct token_fetch *f, struct crisp_error *err)
{
	const char *scope = f->e ? f->e->scope : "";
	_cleanup_free_ char *url = token_url(f, scope);

	if (!url || !(f->x = http_xfer_new(f->c->http, url, &token_ops, f, err)))
		return err_set(err, CRISP_E_INVALID, "registry gave a bad token realm");
	if (f->posted) {
		token_post(f, scope);
	} else if (f->cred.kind == CRED_BASIC) {
		char *hdr = auth_basic_header(&f->cred);
		http_xfer_add_header(f->x, hdr);
		wipe_str(&hdr);
	}
	http_xfer_set_urgent(f->x);
	http_xfer_start(f->x);
	return 0;
}

int auth_challenge(struct auth_cache *c, const char *host, const char *scope,
		   const struct auth_cred *cred, const char *const *challenges, size_t n,
		   bool plain_ok, auth_done_cb cb, void *arg, struct auth_wait **ret_wait,
		   struct crisp_error *err)
{
	struct auth_challenge ch;
	struct auth_entry *e;
	struct token_fetch *f;
	_cleanup_free_ char *scheme = NULL;

	if (auth_challenge_parse(challenges, n, &ch, err) < 0)
		return -1;
	if (ch.scheme == AUTH_NONE)
		return err_set(err, CRISP_E_PERMISSION, "unsupported authentication scheme");
	if (cred->kind == CRED_BEARER || (ch.scheme == AUTH_BASIC && cred->kind != CRED_BASIC)) {
		auth_challenge_clear(&ch);
		return err_set(err, CRISP_E_PERMISSION, "%s",
			       cred->kind == CRED_NONE ? "authentication required"
			       : cred->kind == CRED_BEARER
				       ? "the registry token was refused"
				       : "basic authentication needs a password");
	}
	if (ch.scheme == AUTH_BEARER &&
	    (http_url_split(ch.realm, &scheme, NULL, NULL) < 0 ||
	     (streq(scheme, "http") && cred->kind != CRED_NONE && !plain_ok))) {
		auth_challenge_clear(&ch);
		return err_set(err, CRISP_E_PERMISSION,
			       "token realm is not an https URL: credentials not sent");
	}
	prune(c);
	e = entry_find(c, host, scope, cred, true);
	drop_token(e);
	e->scheme = ch.scheme;
	if (ch.scheme == AUTH_BASIC || e->fetch) {
		auth_challenge_clear(&ch);
		if (!e->fetch)
			return 0;
		*ret_wait = wait_on(e->fetch, cb, arg);
		return 1;
	}
	f = xcalloc(1, sizeof(*f));
	f->c = c;
	f->e = e;
	f->ch = ch;
	f->body.max = REGISTRY_TOKEN_MAX;
	f->posted = cred->kind == CRED_REFRESH;
	TAILQ_INIT(&f->waiters);
	cred_copy(&f->cred, cred);
	if (http_url_split(ch.realm, NULL, &f->realm_host, NULL) < 0)
		f->realm_host = xstrdup("?");
	e->fetch = f;
	if (fetch_start(f, err) < 0) {
		e->fetch = NULL;
		fetch_free(f);
		return -1;
	}
	*ret_wait = wait_on(f, cb, arg);
	return 1;
}
