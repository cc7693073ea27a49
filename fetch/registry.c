/* The registry v2 client, run by crisp-fetch: endpoints, the per-request
 * state machine, retries, redirects, and the checks on what registries send.
 * The rules are in imaged/registry.h; the bytes move in fetch/http.c, tokens
 * in fetch/auth.c. (imaged/fetch_client.c implements the same API in imaged
 * by asking crisp-fetch, and checks again what matters to it.)
 *
 * A request's life: registry_get_*() validates the arguments (they end up
 * in URLs and headers) and schedules attempt() on the loop, so no callback
 * ever runs inside the caller's call. Each attempt is one HTTP exchange with
 * the current endpoint (or the redirect target it pointed to); req_on_done()
 * judges the outcome and either finishes, follows a redirect, answers an
 * authentication challenge, retries after a backoff, or moves on to the next
 * endpoint. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "common/log.h"
#include "fetch/auth.h"
#include "fetch/http.h"
#include "imaged/reference.h"
#include "imaged/registry.h"

#define MAX_REDIRECTS 5
#define ERROR_BODY_MAX (64u << 10)
#define RETRY_DELAY_MAX_MS 30000u
#define RETRY_AFTER_MAX_S 60
#define MAX_CHALLENGES 16

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

static const char *const manifest_types[] = { MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST,
					      MT_DOCKER_MANIFEST };

struct host_conf {
	char *host;
	char **mirrors;
	size_t nmirrors;
	bool plain_http;
};

struct registry {
	struct http *http;
	struct auth_cache *auth;
	struct host_conf *hosts;
	size_t nhosts;
	unsigned max_retries, retry_delay_ms, low_speed_timeout;
	TAILQ_HEAD(, registry_request) requests;
};

struct endpoint {
	char *base; /* "scheme://authority[/prefix]", no trailing slash */
	char *host; /* authority: messages and the token cache key */
	bool origin;
	bool plain;
};

enum req_kind {
	REQ_MANIFEST,
	REQ_BLOB,
};

struct registry_request {
	TAILQ_ENTRY(registry_request) link;
	struct registry *reg;
	enum req_kind kind;
	char *ref, *accept, *scope, *path;
	struct endpoint *ep;
	size_t nep, cur;
	struct auth_cred cred, anon;
	unsigned attempt, unauthorized, redirects;
	char *target; /* where a redirect sent this attempt; NULL: the endpoint */
	struct http_xfer *x;
	struct auth_wait *wait;
	struct event *timer; /* first attempt and retries */
	int in_cb;           /* inside a callback of the caller */
	bool cancelled;
	/* the response of the current attempt */
	long status;
	uint64_t skip; /* bytes of a 200 we already delivered */
	uint64_t attempt_pos;
	struct http_buf body; /* manifest, or an error body */
	struct crisp_error fail;
	bool failed, writer_failed;
	/* blobs */
	uint64_t size, pos; /* pos: offset of the next byte to deliver */
	EVP_MD_CTX *md;     /* set when every byte passes through here */
	registry_manifest_cb manifest_cb;
	registry_write_cb write_cb;
	registry_done_cb done_cb;
	void *arg;
};

static void attempt(struct registry_request *r);

/* --- validation: all of it ends up in URLs and header lines ------------------ */

static bool host_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".-:[]_", *s))
			return false;
	return true;
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)* */
static bool repo_valid(const char *s)
{
	size_t n = strlen(s);
	bool alnum_needed = true;

	if (n == 0 || n > 255)
		return false;
	for (const char *p = s; *p; p++) {
		bool alnum = islower((unsigned char)*p) || isdigit((unsigned char)*p);

		if (alnum) {
			alnum_needed = false;
			continue;
		}
		if (alnum_needed)
			return false;
		if (*p == '/' || *p == '.')
			alnum_needed = true;
		else if (*p == '_')
			alnum_needed = p[1] == '_' ? (p++, true) : true;
		else if (*p == '-')
			for (alnum_needed = true; p[1] == '-'; p++)
				;
		else
			return false;
	}
	return !alnum_needed;
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

static const EVP_MD *digest_alg(const char *d, size_t *ret_hexlen)
{
	if (strncmp(d, "sha256:", 7) == 0) {
		*ret_hexlen = 64;
		return EVP_sha256();
	}
	if (strncmp(d, "sha512:", 7) == 0) {
		*ret_hexlen = 128;
		return EVP_sha512();
	}
	return NULL;
}

static char *digest_string(const EVP_MD *alg, const unsigned char *md, unsigned len)
{
	char *s = xmalloc(8 + 2 * len), *p;

	p = s + sprintf(s, "%s:", alg == EVP_sha512() ? "sha512" : "sha256");
	for (unsigned i = 0; i < len; i++)
		p += sprintf(p, "%02x", md[i]);
	return s;
}

static char *digest_of(const EVP_MD *alg, const void *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (!EVP_Digest(buf, len, md, &mdlen, alg, NULL))
		abort();
	return digest_string(alg, md, mdlen);
}

/* --- configuration ----------------------------------------------------------- */

static int hosts_copy(struct registry *reg, const struct registry_options *opt,
		      struct crisp_error *err)
{
	reg->hosts = xcalloc(opt->nhosts, sizeof(*reg->hosts));
	for (size_t i = 0; i < opt->nhosts; i++, reg->nhosts++) {
		const struct registry_host *in = &opt->hosts[i];
		struct host_conf *hc = &reg->hosts[i];

		if (!in->host || !host_valid(in->host))
			return err_set(err, CRISP_E_INVALID, "bad registry host '%s'",
				       in->host ? in->host : "");
		hc->host = xstrdup(in->host);
		hc->plain_http = in->plain_http;
		for (size_t m = 0; in->mirrors && in->mirrors[m]; m++) {
			const char *url = in->mirrors[m];
			size_t len = strlen(url);

			if (http_url_split(url, NULL, NULL, NULL) < 0 || strpbrk(url, "?#"))
				return err_set(err, CRISP_E_INVALID, "bad mirror '%s' for %s", url,
					       in->host);
			while (len > 0 && url[len - 1] == '/')
				len--;
			hc->mirrors = xrealloc(hc->mirrors, (hc->nmirrors + 1) * sizeof(char *));
			hc->mirrors[hc->nmirrors++] = strndup(url, len);
		}
	}
	return 0;
}

static void hosts_free(struct registry *reg)
{
	for (size_t i = 0; i < reg->nhosts; i++) {
		for (size_t m = 0; m < reg->hosts[i].nmirrors; m++)
			free(reg->hosts[i].mirrors[m]);
		free(reg->hosts[i].mirrors);
		free(reg->hosts[i].host);
	}
	free(reg->hosts);
}

struct registry *registry_new(struct event_base *base, const struct registry_options *opt,
			      struct crisp_error *err)
{
	struct registry_options def;
	struct registry *reg = xcalloc(1, sizeof(*reg));
	struct http_tls_host *tls = xcalloc(opt->nhosts, sizeof(*tls));
	struct http_options hopt;

	registry_options_init(&def);
	TAILQ_INIT(&reg->requests);
	reg->max_retries = opt->max_retries;
	reg->retry_delay_ms = opt->retry_delay_ms ? opt->retry_delay_ms : def.retry_delay_ms;
	reg->low_speed_timeout = opt->low_speed_timeout ? opt->low_speed_timeout
							: def.low_speed_timeout;
	for (size_t i = 0; i < opt->nhosts; i++)
		tls[i] = (struct http_tls_host){ opt->hosts[i].host,
						 opt->hosts[i].insecure_skip_verify,
						 opt->hosts[i].ca_file };
	hopt = (struct http_options){
		.user_agent = opt->user_agent ? opt->user_agent : def.user_agent,
		.max_active = opt->max_transfers ? opt->max_transfers : def.max_transfers,
		.stall_timeout_ms = reg->low_speed_timeout * 1000,
		.tls = tls,
		.ntls = opt->nhosts,
	};
	if (hosts_copy(reg, opt, err) < 0 || !(reg->http = http_new(base, &hopt, err))) {
		free(tls);
		registry_free(reg);
		return NULL;
	}
	free(tls);
	reg->auth = auth_cache_new(reg->http);
	return reg;
}

static void request_free(struct registry_request *r);

void registry_free(struct registry *reg)
{
	if (!reg)
		return;
	while (!TAILQ_EMPTY(&reg->requests))
		request_free(TAILQ_FIRST(&reg->requests));
	auth_cache_free(reg->auth);
	http_free(reg->http);
	hosts_free(reg);
	free(reg);
}

/* --- endpoints ----------------------------------------------------------------- */

/* localhost, 127.0.0.0/8 and [::1], with or without a port */
static bool host_is_loopback(const char *authority)
{
	_cleanup_free_ char *h = xstrdup(authority);
	struct in_addr a4;
	char *colon;

	if (strncmp(h, "[::1]", 5) == 0 && (h[5] == '\0' || h[5] == ':'))
		return true;
	if ((colon = strrchr(h, ':')))
		*colon = '\0';
	if (strcasecmp(h, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static void endpoints_for(struct registry *reg, struct registry_request *r, const char *host)
{
	const struct host_conf *hc = NULL;
	const char *actual = host;
	bool plain;

	for (size_t i = 0; i < reg->nhosts && !hc; i++)
		if (strcasecmp(reg->hosts[i].host, host) == 0)
			hc = &reg->hosts[i];
	r->nep = (hc ? hc->nmirrors : 0) + 1;
	r->ep = xcalloc(r->nep, sizeof(*r->ep));
	for (size_t m = 0; hc && m < hc->nmirrors; m++) {
		struct endpoint *ep = &r->ep[m];
		_cleanup_free_ char *scheme = NULL;

		ep->base = xstrdup(hc->mirrors[m]);
		http_url_split(ep->base, &scheme, &ep->host, NULL); /* checked in hosts_copy */
		ep->plain = streq(scheme, "http");
	}
	if (strcasecmp(host, "docker.io") == 0 || strcasecmp(host, "index.docker.io") == 0)
		actual = "registry-1.docker.io";
	plain = hc ? hc->plain_http : host_is_loopback(host);
	r->ep[r->nep - 1] = (struct endpoint){
		.base = xasprintf("%s://%s", plain ? "http" : "https", actual),
		.host = xstrdup(actual),
		.origin = true,
		.plain = plain,
	};
}

/* --- finishing ------------------------------------------------------------------ */

static void request_free(struct registry_request *r)
{
	TAILQ_REMOVE(&r->reg->requests, r, link);
	http_xfer_free(r->x);
	auth_wait_cancel(r->wait);
	if (r->timer)
		event_free(r->timer);
	auth_cred_wipe(&r->cred);
	auth_cred_wipe(&r->anon);
	http_buf_clear(&r->body);
	EVP_MD_CTX_free(r->md);
	for (size_t i = 0; i < r->nep; i++) {
		free(r->ep[i].base);
		free(r->ep[i].host);
	}
	free(r->ep);
	free(r->ref);
	free(r->accept);
	free(r->scope);
	free(r->path);
	free(r->target);
	free(r);
}

void registry_cancel(struct registry_request *r)
{
	if (!r || r->cancelled)
		return;
	r->cancelled = true;
	if (!r->in_cb) {
		request_free(r);
		return;
	}
	/* Inside one of its own callbacks: stop everything now, free when the
	 * callback returns. */
	http_xfer_free(TAKE_PTR(r->x));
	auth_wait_cancel(TAKE_PTR(r->wait));
	event_del(r->timer);
}

static void finish(struct registry_request *r, const struct registry_manifest *m,
		   const struct crisp_error *err)
{
	if (err)
		log_debug("registry: %s %s: %s", r->kind == REQ_BLOB ? "blob" : "manifest", r->ref,
			  err->msg);
	r->in_cb++;
	if (r->kind == REQ_MANIFEST)
		r->manifest_cb(r->arg, m, err);
	else
		r->done_cb(r->arg, err);
	request_free(r);
}

static void schedule(struct registry_request *r, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer, &tv);
}

static unsigned backoff_ms(struct registry_request *r, long retry_after_s)
{
	uint64_t d = (uint64_t)r->reg->retry_delay_ms << (r->attempt > 16 ? 16 : r->attempt - 1);

	if (d > RETRY_DELAY_MAX_MS)
		d = RETRY_DELAY_MAX_MS;
	/* jitter, so that many pulls failing together do not retry together */
	d = d / 2 + arc4random_uniform((uint32_t)(d / 2) + 1);
	if (retry_after_s > RETRY_AFTER_MAX_S)
		retry_after_s = RETRY_AFTER_MAX_S;
	if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > d)
		d = (uint64_t)retry_after_s * 1000;
	return (unsigned)d;
}

enum failure {
	FAIL_TRANSIENT, /* retry on the origin, next endpoint on a mirror */
	FAIL_ENDPOINT,  /* next endpoint, if any */
};

/* The current endpoint failed: retry, move on, or give up. The error the
 * caller sees is the origin's, the last endpoint tried. */
static void endpoint_failed(struct registry_request *r, const struct crisp_error *err,
			    enum failure kind, long retry_after_s)
{
	bool last = r->cur + 1 == r->nep;

	if (kind == FAIL_TRANSIENT && last && r->attempt < r->reg->max_retries) {
		unsigned ms;

		r->attempt++;
		ms = backoff_ms(r, retry_after_s);
		log_debug("registry: %s: retry %u of %u in %u ms", err->msg, r->attempt,
			  r->reg->max_retries, ms);
		free(TAKE_PTR(r->target));
		r->redirects = r->unauthorized = 0;
		schedule(r, ms);
		return;
	}
	if (!last) {
		log_debug("registry: %s: trying %s next", err->msg, r->ep[r->cur + 1].host);
		r->cur++;
		r->attempt = r->unauthorized = r->redirects = 0;
		free(TAKE_PTR(r->target));
		attempt(r);
		return;
	}
	finish(r, NULL, err);
}

/* --- authentication -------------------------------------------------------------- */

static const struct auth_cred *endpoint_cred(struct registry_request *r)
{
	return r->ep[r->cur].origin ? &r->cred : &r->anon;
}

static void on_auth_ready(void *arg, const struct crisp_error *err)
{
	struct registry_request *r = arg;
	struct crisp_error e;

	r->wait = NULL;
	if (!err) {
		attempt(r);
		return;
	}
	e = *err;
	err_prefix(&e, "registry %s", r->ep[r->cur].host);
	endpoint_failed(r, &e, err->code == CRISP_E_UNAVAILABLE ? FAIL_TRANSIENT : FAIL_ENDPOINT,
			0);
}

static void unauthorized(struct registry_request *r, struct http_xfer *x, const char *text)
{
	const struct endpoint *ep = &r->ep[r->cur];
	char *vals[MAX_CHALLENGES];
	struct crisp_error err = { 0 };
	const char *v;
	size_t n = 0;
	int rc = -1;

	/* A second 401 means the credentials (or the token they got) are not
	 * good enough: asking again would not change that. */
	if (++r->unauthorized > 1) {
		err_set(&err, CRISP_E_PERMISSION, "registry %s says %s%s", ep->host, text,
			endpoint_cred(r)->kind == CRED_NONE ? " (no credentials given)" : "");
		endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
		return;
	}
	/* copies: libcurl keeps a header only until the next lookup */
	while (n < MAX_CHALLENGES && (v = http_xfer_header(x, "WWW-Authenticate", n)))
		vals[n++] = xstrdup(v);
	if (n == 0)
		err_set(&err, CRISP_E_PERMISSION, "registry %s says %s (and no challenge)",
			ep->host, text);
	else
		rc = auth_challenge(r->reg->auth, ep->host, r->scope, endpoint_cred(r),
				    (const char *const *)vals, n, ep->plain, on_auth_ready, r,
				    &r->wait, &err);
	while (n > 0)
		free(vals[--n]);
	if (rc == 0) {
		attempt(r);
	} else if (rc < 0) {
		if (!strstr(err.msg, ep->host))
			err_prefix(&err, "registry %s", ep->host);
		endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
	}
}

/* --- responses -------------------------------------------------------------------- */

static int fail(struct registry_request *r, enum crisp_errcode code, const char *fmt, ...)
	_printf_(3, 4);
static int fail(struct registry_request *r, enum crisp_errcode code, const char *fmt, ...)
{
	va_list ap;

	r->fail.code = code;
	va_start(ap, fmt);
	vsnprintf(r->fail.msg, sizeof(r->fail.msg), fmt, ap);
	va_end(ap);
	r->failed = true;
	return -1;
}

static bool ok_status(long status)
{
	return status >= 200 && status < 300;
}

static uint64_t header_u64(struct http_xfer *x, const char *name, uint64_t dflt)
{
	const char *v = http_xfer_header(x, name, 0);
	uint64_t n;

	return v && parse_uint64(v, 10, UINT64_MAX, &n) == 0 ? n : dflt;
}

/* 206: the range must start where we asked; 200: the registry ignored the
 * range, skip what the writer already has. Sizes are checked up front. */
static int blob_headers(struct registry_request *r, struct http_xfer *x, long status)
{
	uint64_t len = header_u64(x, "Content-Length", UINT64_MAX);
	const char *cr = http_xfer_header(x, "Content-Range", 0);
	unsigned long long first = 0, last = 0, total = 0;
	int n = cr ? sscanf(cr, "bytes %llu-%llu/%llu", &first, &last, &total) : 0;

	r->skip = 0;
	if (status == 206) {
		/* as containerd: what matters is where it starts ("/ *" is fine) */
		if (n < 2 || first != r->pos || last + 1 != r->size || (n == 3 && total != r->size))
			return fail(r, CRISP_E_INVALID,
				    "registry %s answered bytes=%llu- with range '%.64s'",
				    r->ep[r->cur].host, (unsigned long long)r->pos, cr ? cr : "");
		return 0;
	}
	if (status != 200)
		return fail(r, CRISP_E_INVALID, "registry %s answered a blob with HTTP %ld",
			    r->ep[r->cur].host, status);
	if (len != UINT64_MAX && len != r->size)
		return fail(r, CRISP_E_INVALID, "blob %s: registry sends %llu bytes, expected %llu",
			    r->ref, (unsigned long long)len, (unsigned long long)r->size);
	r->skip = r->pos;
	return 0;
}

static int req_on_headers(void *arg, struct http_xfer *x, long status)
{
	struct registry_request *r = arg;

	r->status = status;
	http_buf_clear(&r->body);
	r->body.max = ERROR_BODY_MAX;
	if (!ok_status(status))
		return 0;
	if (r->kind == REQ_BLOB)
		return blob_headers(r, x, status);
	if (header_u64(x, "Content-Length", 0) > REGISTRY_MANIFEST_MAX)
		return fail(r, CRISP_E_INVALID, "manifest %s is larger than %u bytes", r->ref,
			    REGISTRY_MANIFEST_MAX);
	r->body.max = REGISTRY_MANIFEST_MAX;
	return 0;
}

static int blob_data(struct registry_request *r, const char *buf, size_t n)
{
	struct crisp_error werr = { 0 };
	int rc;

	if (r->skip) {
		size_t k = n < r->skip ? n : (size_t)r->skip;
		r->skip -= k;
		buf += k;
		n -= k;
		if (n == 0)
			return 0;
	}
	if (n > r->size - r->pos)
		return fail(r, CRISP_E_INVALID, "blob %s is larger than the expected %llu bytes",
			    r->ref, (unsigned long long)r->size);
	if (r->md)
		EVP_DigestUpdate(r->md, buf, n);
	r->in_cb++;
	rc = r->write_cb(r->arg, buf, n, &werr);
	r->in_cb--;
	if (r->cancelled) {
		request_free(r);
		return -1;
	}
	if (rc < 0) {
		if (werr.code == CRISP_E_OK)
			err_set(&werr, CRISP_E_INTERNAL, "blob %s: the writer gave up", r->ref);
		r->fail = werr;
		r->failed = r->writer_failed = true;
		return -1;
	}
	r->pos += n;
	return 0;
}

static int req_on_data(void *arg, struct http_xfer *x, const char *buf, size_t n)
{
	struct registry_request *r = arg;

	if (ok_status(r->status) && r->kind == REQ_BLOB)
		return blob_data(r, buf, n);
	if (http_buf_append(&r->body, buf, n) == 0)
		return 0;
	if (!ok_status(r->status))
		return 0; /* error bodies are only read so far */
	return fail(r, CRISP_E_INVALID, "manifest %s is larger than %u bytes", r->ref,
		    REGISTRY_MANIFEST_MAX);
}

static const char *manifest_type(struct registry_request *r, struct http_xfer *x, json_t *root,
				 struct crisp_error *err)
{
	const char *ct = http_xfer_header(x, "Content-Type", 0);
	const char *mt = json_string_value(json_object_get(root, "mediaType"));
	json_t *version = json_object_get(root, "schemaVersion");
	char type[128] = "";

	if (ct)
		snprintf(type, sizeof(type), "%.*s", (int)strcspn(ct, "; \t"), ct);
	if (json_integer_value(version) == 1 || strcasecmp(type, MT_DOCKER_SCHEMA1) == 0 ||
	    strcasecmp(type, MT_DOCKER_SCHEMA1_SIGNED) == 0)
		return err_set(err, CRISP_E_INVALID,
			       "manifest %s is Docker schema 1, which is not supported (push the "
			       "image again with a current tool)",
			       r->ref),
		       NULL;
	for (size_t i = 0; i < ARRAY_SIZE(manifest_types); i++)
		if (strcasecmp(type, manifest_types[i]) == 0) {
			if (mt && !streq(mt, manifest_types[i]))
				return err_set(err, CRISP_E_INVALID,
					       "manifest %s: mediaType '%.64s' differs from "
					       "Content-Type '%s'",
					       r->ref, mt, type),
				       NULL;
			return manifest_types[i];
		}
	/* Only a generic Content-Type (none, application/json, octet-stream)
	 * lets the body say what it is: a specific type we do not know is a
	 * different kind of artifact, not an image. */
	if (*type && strcasecmp(type, "application/json") != 0 &&
	    strcasecmp(type, "application/octet-stream") != 0 &&
	    strcasecmp(type, "text/plain") != 0)
		return err_set(err, CRISP_E_INVALID, "manifest %s has an unsupported type '%.64s'",
			       r->ref, type),
		       NULL;
	for (size_t i = 0; mt && i < ARRAY_SIZE(manifest_types); i++)
		if (streq(mt, manifest_types[i]))
			return manifest_types[i];
	if (!mt && json_is_array(json_object_get(root, "manifests")))
		return MT_OCI_INDEX;
	if (!mt && json_is_object(json_object_get(root, "config")))
		return MT_OCI_MANIFEST;
	return err_set(err, CRISP_E_INVALID, "manifest %s has an unsupported type '%.64s'", r->ref,
		       mt ? mt : type),
	       NULL;
}

/* The digest of the exact bytes must match the one asked for and the one
 * the registry claims (each in its own algorithm). */
static char *manifest_digest(struct registry_request *r, struct http_xfer *x,
			     struct crisp_error *err)
{
	const char *dcd = http_xfer_header(x, "Docker-Content-Digest", 0);
	const void *body = r->body.data ? r->body.data : "";
	bool by_digest = digest_valid(r->ref);
	size_t hexlen;
	char *digest = digest_of(by_digest ? digest_alg(r->ref, &hexlen) : EVP_sha256(), body,
				 r->body.len);

	if (by_digest && !streq(digest, r->ref)) {
		err_set(err, CRISP_E_INVALID, "manifest digest mismatch: asked for %s, got %s",
			r->ref, digest);
		free(digest);
		return NULL;
	}
	if (dcd) {
		_cleanup_free_ char *claimed = NULL;

		if (!digest_valid(dcd)) {
			err_set(err, CRISP_E_INVALID, "registry sent a malformed digest '%.80s'",
				dcd);
			free(digest);
			return NULL;
		}
		claimed = digest_of(digest_alg(dcd, &hexlen), body, r->body.len);
		if (!streq(claimed, dcd)) {
			err_set(err, CRISP_E_INVALID,
				"manifest digest mismatch: registry says %s, content is %s", dcd,
				claimed);
			free(digest);
			return NULL;
		}
	}
	return digest;
}

static void manifest_done(struct registry_request *r, struct http_xfer *x)
{
	struct crisp_error err = { 0 };
	_cleanup_free_ char *digest = manifest_digest(r, x, &err);
	struct registry_manifest m = { 0 };
	json_t *root = NULL;

	if (!digest)
		goto bad;
	root = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
	if (!json_is_object(root)) {
		err_set(&err, CRISP_E_INVALID, "manifest %s is not a JSON object", r->ref);
		goto bad;
	}
	if (!(m.media_type = manifest_type(r, x, root, &err)))
		goto bad;
	json_decref(root);
	m.digest = digest;
	m.body = r->body.data ? r->body.data : "";
	m.len = r->body.len;
	finish(r, &m, NULL);
	return;
bad:
	json_decref(root);
	err_prefix(&err, "registry %s", r->ep[r->cur].host);
	endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
}

static void blob_done(struct registry_request *r)
{
	struct crisp_error err = { 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	_cleanup_free_ char *got = NULL;
	size_t hexlen;

	if (r->pos < r->size) {
		err_set(&err, CRISP_E_UNAVAILABLE,
			"registry %s: blob %s ended after %llu of %llu bytes", r->ep[r->cur].host,
			r->ref, (unsigned long long)r->pos, (unsigned long long)r->size);
		endpoint_failed(r, &err, FAIL_TRANSIENT, 0);
		return;
	}
	if (r->md) {
		EVP_DigestFinal_ex(r->md, md, &mdlen);
		got = digest_string(digest_alg(r->ref, &hexlen), md, mdlen);
		/* The writer has the bad bytes already: no other endpoint can
		 * undo that, the caller must discard them. */
		if (!streq(got, r->ref)) {
			err_set(&err, CRISP_E_INVALID,
				"registry %s: blob digest mismatch: expected %s, got %s",
				r->ep[r->cur].host, r->ref, got);
			finish(r, NULL, &err);
			return;
		}
	}
	finish(r, NULL, NULL);
}

/* Follow a redirect ourselves, so that no credential goes anywhere but the
 * endpoint (attempt() decides) and https never turns into http. */
static void redirect(struct registry_request *r, struct http_xfer *x)
{
	const struct endpoint *ep = &r->ep[r->cur];
	const char *loc = http_xfer_redirect_url(x);
	_cleanup_free_ char *scheme = NULL, *host = NULL;
	struct crisp_error err = { 0 };

	if (!loc || http_url_split(loc, &scheme, &host, NULL) < 0)
		err_set(&err, CRISP_E_INVALID, "registry %s redirects to nowhere usable", ep->host);
	else if (++r->redirects > MAX_REDIRECTS)
		err_set(&err, CRISP_E_INVALID, "registry %s: too many redirects", ep->host);
	else if (!ep->plain && streq(scheme, "http"))
		err_set(&err, CRISP_E_INVALID, "registry %s redirects from https to http",
			ep->host);
	if (err.code != CRISP_E_OK) {
		endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
		return;
	}
	/* the query of a CDN URL is often a signature: log the host only */
	log_debug("registry: %s redirected to %s", r->ref, host);
	free(r->target);
	r->target = xstrdup(loc);
	attempt(r);
}

static long retry_after(struct http_xfer *x)
{
	const char *v = http_xfer_header(x, "Retry-After", 0);
	uint64_t n;
	time_t when;

	if (!v)
		return 0;
	if (parse_uint64(v, 10, UINT32_MAX, &n) == 0)
		return (long)n;
	when = curl_getdate(v, NULL);
	return when > time(NULL) ? (long)(when - time(NULL)) : 0;
}

static void http_status(struct registry_request *r, struct http_xfer *x, long st)
{
	const struct endpoint *ep = &r->ep[r->cur];
	struct crisp_error err = { 0 };
	char text[256];

	if (ok_status(st)) {
		r->kind == REQ_MANIFEST ? manifest_done(r, x) : blob_done(r);
		return;
	}
	if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
		redirect(r, x);
		return;
	}
	if (registry_error_text(r->body.data, r->body.len, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "HTTP %ld", st);
	if (st == 401 && (!r->target || http_same_origin(r->target, ep->base))) {
		unauthorized(r, x, text);
		return;
	}
	if (st == 408 || st == 429 || (st >= 500 && st != 501 && st != 505)) {
		err_set(&err, CRISP_E_UNAVAILABLE, "registry %s says %s", ep->host, text);
		endpoint_failed(r, &err, FAIL_TRANSIENT, retry_after(x));
		return;
	}
	err_set(&err,
		st == 404                ? CRISP_E_NOT_FOUND
		: st == 401 || st == 403 ? CRISP_E_PERMISSION
					 : CRISP_E_INVALID,
		"registry %s says %s", ep->host, text);
	endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
}

/* curl failures worth another try: the network, not the configuration. */
static bool curl_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static void req_on_done(void *arg, struct http_xfer *x, const struct http_result *res)
{
	struct registry_request *r = arg;
	const char *host = r->ep[r->cur].host;
	struct crisp_error err = { 0 };

	r->x = NULL;
	if (r->pos > r->attempt_pos)
		r->attempt = 0; /* progress: this failure does not count */
	switch (res->outcome) {
	case HTTP_COMPLETE:
		http_status(r, x, res->status);
		break;
	case HTTP_ABORTED:
		if (r->writer_failed)
			finish(r, NULL, &r->fail);
		else
			endpoint_failed(r, &r->fail, FAIL_ENDPOINT, 0);
		break;
	case HTTP_STALLED:
		err_set(&err, CRISP_E_TIMEOUT, "registry %s: no progress for %u s, gave up", host,
			r->reg->low_speed_timeout);
		endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
		break;
	case HTTP_NETWORK:
		err_set(&err, CRISP_E_UNAVAILABLE, "cannot reach registry %s: %s", host,
			res->error);
		endpoint_failed(r, &err,
				curl_transient(res->curl_code) ? FAIL_TRANSIENT : FAIL_ENDPOINT, 0);
		break;
	}
	http_xfer_free(x);
}

static const struct http_xfer_ops req_ops = {
	.on_headers = req_on_headers,
	.on_data = req_on_data,
	.on_done = req_on_done,
};

/* --- attempts ---------------------------------------------------------------------- */

static void attempt(struct registry_request *r)
{
	const struct endpoint *ep = &r->ep[r->cur];
	_cleanup_free_ char *url = r->target ? xstrdup(r->target)
					     : xasprintf("%s%s", ep->base, r->path);
	char *authz = NULL;
	struct crisp_error err = { 0 };

	/* Credentials (and tokens) only for the endpoint itself. */
	if (!r->target || http_same_origin(r->target, ep->base)) {
		if (auth_prepare(r->reg->auth, ep->host, r->scope, endpoint_cred(r), &authz,
				 on_auth_ready, r, &r->wait) == 1)
			return;
	}
	r->x = http_xfer_new(r->reg->http, url, &req_ops, r, &err);
	if (!r->x) {
		if (authz)
			explicit_bzero(authz, strlen(authz));
		free(authz);
		err_prefix(&err, "registry %s", ep->host);
		endpoint_failed(r, &err, FAIL_ENDPOINT, 0);
		return;
	}
	if (authz) {
		http_xfer_add_header(r->x, authz);
		explicit_bzero(authz, strlen(authz));
		free(authz);
	}
	if (r->kind == REQ_MANIFEST) {
		_cleanup_free_ char *accept = xasprintf("Accept: %s", r->accept);
		http_xfer_add_header(r->x, accept);
	} else if (r->pos > 0) {
		_cleanup_free_ char *range = xasprintf("Range: bytes=%llu-",
						       (unsigned long long)r->pos);
		http_xfer_add_header(r->x, range);
	}
	r->status = 0;
	r->failed = false;
	r->attempt_pos = r->pos;
	log_debug("registry: GET %s%s (%s)", ep->base, r->path,
		  r->target ? "redirected" : "direct");
	http_xfer_start(r->x);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	attempt(arg);
}

static struct registry_request *request_new(struct registry *reg, enum req_kind kind,
					    const char *host, const char *repo, const char *ref,
					    const struct registry_auth *auth,
					    struct crisp_error *err)
{
	struct registry_request *r;

	if (!host || !host_valid(host))
		return err_set(err, CRISP_E_INVALID, "bad registry host '%.80s'", host ? host : ""),
		       NULL;
	if (!repo || !repo_valid(repo))
		return err_set(err, CRISP_E_INVALID, "bad repository name '%.80s'",
			       repo ? repo : ""),
		       NULL;
	if (!ref || (kind == REQ_BLOB ? !digest_valid(ref) : !digest_valid(ref) && !tag_valid(ref)))
		return err_set(err, CRISP_E_INVALID, "bad %s '%.80s'",
			       kind == REQ_BLOB ? "digest" : "tag or digest", ref ? ref : ""),
		       NULL;
	r = xcalloc(1, sizeof(*r));
	if (auth_cred_init(&r->cred, auth, err) < 0) {
		free(r);
		return NULL;
	}
	auth_cred_init(&r->anon, NULL, NULL);
	r->reg = reg;
	r->kind = kind;
	r->ref = xstrdup(ref);
	r->scope = xasprintf("repository:%s:pull", repo);
	r->path = xasprintf("/v2/%s/%s/%s", repo, kind == REQ_BLOB ? "blobs" : "manifests", ref);
	r->timer = evtimer_new(http_event_base(reg->http), on_timer, r);
	TAILQ_INSERT_TAIL(&reg->requests, r, link);
	endpoints_for(reg, r, host);
	schedule(r, 0);
	return r;
}

struct registry_request *registry_get_manifest(struct registry *reg, const char *host,
					       const char *repo, const char *reference,
					       const char *accept, const struct registry_auth *auth,
					       registry_manifest_cb cb, void *arg,
					       struct crisp_error *err)
{
	struct registry_request *r;

	if (accept && (strlen(accept) > 1024 || strpbrk(accept, "\r\n")))
		return err_set(err, CRISP_E_INVALID, "bad Accept value"), NULL;
	r = request_new(reg, REQ_MANIFEST, host, repo, reference, auth, err);
	if (!r)
		return NULL;
	r->accept = xstrdup(accept ? accept
				   : MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST
						  ", " MT_DOCKER_MANIFEST);
	r->manifest_cb = cb;
	r->arg = arg;
	return r;
}

struct registry_request *registry_get_blob(struct registry *reg, const char *host, const char *repo,
					   const char *digest, uint64_t size, uint64_t offset,
					   const struct registry_auth *auth,
					   registry_write_cb write_cb, registry_done_cb done_cb,
					   void *arg, struct crisp_error *err)
{
	struct registry_request *r;
	size_t hexlen;

	if (offset >= size && !(offset == 0 && size == 0))
		return err_set(err, CRISP_E_INVALID, "blob offset %llu beyond its size %llu",
			       (unsigned long long)offset, (unsigned long long)size),
		       NULL;
	r = request_new(reg, REQ_BLOB, host, repo, digest, auth, err);
	if (!r)
		return NULL;
	r->size = size;
	r->pos = offset;
	r->write_cb = write_cb;
	r->done_cb = done_cb;
	r->arg = arg;
	if (offset == 0) {
		r->md = EVP_MD_CTX_new();
		if (!r->md || !EVP_DigestInit_ex(r->md, digest_alg(digest, &hexlen), NULL))
			abort();
	}
	return r;
}
