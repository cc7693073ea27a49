/* Unit tests of imaged/registry.c (with imaged/http.c and imaged/auth.c)
 * against registries served in-process by libevent's evhttp on 127.0.0.1,
 * driven by the same event loop as the client: the client must never block
 * it, or nothing here would finish.
 *
 * Three servers: "reg" (the registry, with a token service at /token),
 * "cdn" (a redirect target on another port) and "mirror". Each has knobs a
 * test turns (fail with 500 N times, require a bearer token, cut the
 * connection mid-blob, stall, ...) and records what it saw (Authorization,
 * Range, token requests). All traffic stays on 127.0.0.1. */
#include "autoconfig.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "fetch/auth.h"
#include "imaged/auth.h"
#include "imaged/registry.h"
#include "tests/unit/tap.h"

#define BLOB_SIZE (300 * 1024 + 7)
#define BASIC_ALICE "Basic YWxpY2U6czNjcmV0" /* alice:s3cret */
#define IDENTITY_TOKEN "id-t0ken/x"
#define TOKEN "good-token"

static struct event_base *base;
static unsigned char blob[BLOB_SIZE];
static char blob_digest[80], manifest_digest[80];
static const char manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
	"\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\"},"
	"\"layers\":[]}";

/* ---- log capture ------------------------------------------------------------ */

static int log_fd = -1, real_stderr = -1;
static char log_buf[4 << 20];

static void log_capture_init(void)
{
	real_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	log_fd = memfd_create("crisp-test-log", MFD_CLOEXEC);
	if (real_stderr < 0 || log_fd < 0 || dup2(log_fd, STDERR_FILENO) < 0) {
		printf("Bail out! cannot capture stderr: %s\n", strerror(errno));
		exit(99);
	}
}

static const char *log_text(void)
{
	ssize_t n = pread(log_fd, log_buf, sizeof(log_buf) - 1, 0);
	log_buf[n < 0 ? 0 : n] = '\0';
	return log_buf;
}

/* ---- the servers ------------------------------------------------------------- */

struct scenario {
	int fail_500, fail_429;
	bool require_bearer, require_basic, token_needs_basic, token_no_post;
	bool reset_blob_once, ignore_range, stall, slow_blob, wrong_blob;
	bool bad_dcd, wrong_manifest, all_404, bad_range;
	char redirect_to[160];
	/* what the server saw */
	int hits, token_hits;
	char last_auth[512], last_range[64], last_host[128], last_accept[512];
	char token_method[8], token_body[1024];
	char token_service[128], token_scope[256];
};

struct server {
	struct evhttp *http;
	int port;
	char host[32]; /* "127.0.0.1:port" */
	char url[48];  /* "http://127.0.0.1:port" */
	struct scenario sc;
};

static struct server reg_srv, cdn_srv, mirror_srv;
static const char *token = TOKEN; /* the one the token server issues */
static const char *accepted;      /* the one the registry takes, if not that */

/* Requests a stalling server never finishes. When the client goes away,
 * libevent hands such a request back to us (it no longer has a
 * connection); answering it then frees it. */
static struct {
	struct evhttp_request *req;
	bool started;
} held[64];
static size_t nheld;

static void hold(struct evhttp_request *req, bool started)
{
	if (nheld < ARRAY_SIZE(held))
		held[nheld++] = (typeof(held[0])){ req, started };
}

static void release_held(void)
{
	for (size_t i = 0; i < nheld; i++) {
		if (held[i].started)
			evhttp_send_reply_end(held[i].req);
		else
			evhttp_send_reply(held[i].req, 503, "X", NULL);
	}
	nheld = 0;
}

static void copy_header(struct evhttp_request *req, const char *name, char *out, size_t len)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	snprintf(out, len, "%s", v ? v : "");
}

static void reply(struct evhttp_request *req, int code, const char *ctype, const void *body,
		  size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (ctype)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, "X", b);
	evbuffer_free(b);
}

static void reply_str(struct evhttp_request *req, int code, const char *json)
{
	reply(req, code, "application/json", json, strlen(json));
}

static void reply_error(struct evhttp_request *req, int code, const char *ecode, const char *msg)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\",\"detail\":null}]}",
			 ecode, msg);
	reply(req, code, "application/json", body, (size_t)n);
}

static void reply_token(struct evhttp_request *req, const char *field)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"%s\":\"%s\",\"expires_in\":300}", field, token);
	reply_str(req, 200, body);
}

static void serve_token(struct server *s, struct evhttp_request *req)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evkeyvalq params;
	const char *v;
	size_t n;

	s->sc.token_hits++;
	TAILQ_INIT(&params);
	if (q && evhttp_parse_query_str(q, &params) == 0) {
		v = evhttp_find_header(&params, "service");
		snprintf(s->sc.token_service, sizeof(s->sc.token_service), "%s", v ? v : "");
		v = evhttp_find_header(&params, "scope");
		snprintf(s->sc.token_scope, sizeof(s->sc.token_scope), "%s", v ? v : "");
	}
	evhttp_clear_headers(&params);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		strcpy(s->sc.token_method, "POST");
		n = evbuffer_get_length(in) < sizeof(s->sc.token_body) - 1
			    ? evbuffer_get_length(in)
			    : sizeof(s->sc.token_body) - 1;
		evbuffer_copyout(in, s->sc.token_body, n);
		s->sc.token_body[n] = '\0';
		if (s->sc.token_no_post)
			return reply(req, 404, "text/plain", "no", 2);
		if (!strstr(s->sc.token_body, "grant_type=refresh_token") ||
		    !strstr(s->sc.token_body, "refresh_token=id-t0ken%2Fx"))
			return reply_str(req, 401, "{\"details\":\"bad token\"}");
		return reply_token(req, "access_token");
	}
	strcpy(s->sc.token_method, "GET");
	if (s->sc.token_needs_basic && strcmp(s->sc.last_auth, BASIC_ALICE) != 0)
		return reply_str(req, 401, "{\"details\":\"incorrect username or password\"}");
	reply_token(req, "token");
}

/* 401 unless the request carries what the scenario wants. */
static bool check_auth(struct server *s, struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char chal[256], want[64];

	snprintf(want, sizeof(want), "Bearer %s", accepted ? accepted : token);
	if (s->sc.require_bearer && strcmp(s->sc.last_auth, want) != 0) {
		snprintf(chal, sizeof(chal),
			 "Bearer realm=\"%s/token\",service=\"test-registry\","
			 "scope=\"repository:tok/app:pull\"",
			 s->url);
		evhttp_add_header(out, "WWW-Authenticate", chal);
		reply_error(req, 401, "UNAUTHORIZED", "authentication required");
		return false;
	}
	if (s->sc.require_basic && strcmp(s->sc.last_auth, BASIC_ALICE) != 0) {
		evhttp_add_header(out, "WWW-Authenticate", "Basic realm=\"test\"");
		reply_error(req, 401, "UNAUTHORIZED", "authentication required");
		return false;
	}
	return true;
}

static void cut_connection(struct evhttp_connection *evcon, void *arg)
{
	struct linger lg = { 1, 0 }; /* close() then sends a reset */
	int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	evhttp_connection_free(evcon);
}

static void serve_blob(struct server *s, struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	unsigned long long off = 0;
	struct evbuffer *b;
	char v[96];
	int code = 200;

	if (s->sc.redirect_to[0]) {
		evhttp_add_header(out, "Location", s->sc.redirect_to);
		return reply(req, 307, NULL, "", 0);
	}
	if (s->sc.last_range[0] && !s->sc.ignore_range &&
	    sscanf(s->sc.last_range, "bytes=%llu-", &off) == 1 && off > 0) {
		code = 206;
		if (off == 1) /* a registry that does not say the total */
			snprintf(v, sizeof(v), "bytes 1-%d/*", BLOB_SIZE - 1);
		else
			snprintf(v, sizeof(v), "bytes %llu-%d/%d", s->sc.bad_range ? 0 : off,
				 BLOB_SIZE - 1, BLOB_SIZE);
		evhttp_add_header(out, "Content-Range", v);
	}
	snprintf(v, sizeof(v), "%llu", BLOB_SIZE - off);
	evhttp_add_header(out, "Content-Length", v);
	b = evbuffer_new();
	evbuffer_add(b, blob + off, BLOB_SIZE - off);
	if (s->sc.wrong_blob) {
		unsigned char *p = evbuffer_pullup(b, -1);
		p[BLOB_SIZE / 2 - off] ^= 0xff;
	}
	if (s->sc.reset_blob_once || s->sc.slow_blob) {
		struct evbuffer *part = evbuffer_new();
		bool reset = s->sc.reset_blob_once;

		evbuffer_remove_buffer(b, part, reset ? BLOB_SIZE / 2 : 10);
		s->sc.reset_blob_once = false;
		evhttp_send_reply_start(req, code, "X");
		/* a slow blob is never finished: the connection is held */
		evhttp_send_reply_chunk_with_cb(req, part, reset ? cut_connection : NULL, NULL);
		if (!reset)
			hold(req, true);
		evbuffer_free(part);
	} else {
		evhttp_send_reply(req, code, "X", b);
	}
	evbuffer_free(b);
}

static void serve_manifest(struct server *s, struct evhttp_request *req, const char *ref)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	static const char schema1[] = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";
	static const char index[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	const char *oci = "application/vnd.oci.image.manifest.v1+json";

	if (streq(ref, "latest") || streq(ref, manifest_digest)) {
		evhttp_add_header(out, "Docker-Content-Digest",
				  s->sc.bad_dcd ? blob_digest : manifest_digest);
		if (s->sc.wrong_manifest)
			return reply(req, 200, oci, manifest, sizeof(manifest) - 2);
		return reply(req, 200, oci, manifest, sizeof(manifest) - 1);
	}
	if (streq(ref, "old"))
		return reply(req, 200, "application/vnd.docker.distribution.manifest.v1+prettyjws",
			     schema1, sizeof(schema1) - 1);
	if (streq(ref, "generic"))
		return reply(req, 200, "application/json; charset=utf-8", index, sizeof(index) - 1);
	if (streq(ref, "mismatch"))
		return reply(req, 200, "application/vnd.docker.distribution.manifest.v2+json",
			     manifest, sizeof(manifest) - 1);
	if (streq(ref, "big")) {
		size_t n = 5 << 20;
		char *big = malloc(n);
		memset(big, ' ', n);
		big[0] = '{';
		big[n - 1] = '}';
		reply(req, 200, oci, big, n);
		free(big);
		return;
	}
	reply_error(req, 404, "MANIFEST_UNKNOWN", "manifest unknown");
}

static void serve(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(u), *host = evhttp_uri_get_host(u);
	const char *p;

	copy_header(req, "Authorization", s->sc.last_auth, sizeof(s->sc.last_auth));
	copy_header(req, "Range", s->sc.last_range, sizeof(s->sc.last_range));
	copy_header(req, "Accept", s->sc.last_accept, sizeof(s->sc.last_accept));
	/* a proxy request carries an absolute URI */
	snprintf(s->sc.last_host, sizeof(s->sc.last_host), "%s", host ? host : "");
	if (streq(path, "/token"))
		return serve_token(s, req);
	s->sc.hits++;
	if (s->sc.stall)
		return hold(req, false); /* never answered */
	if (s->sc.fail_500 > 0) {
		s->sc.fail_500--;
		return reply_error(req, 500, "UNKNOWN", "try again");
	}
	if (s->sc.fail_429 > 0) {
		s->sc.fail_429--;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		return reply_error(req, 429, "TOOMANYREQUESTS", "slow down");
	}
	if (!check_auth(s, req))
		return;
	if (s->sc.all_404)
		return reply_error(req, 404, "NAME_UNKNOWN", "not here");
	if (strncmp(path, "/cdn/", 5) == 0 || strncmp(path, "/same/", 6) == 0) {
		s->sc.redirect_to[0] = '\0';
		return serve_blob(s, req);
	}
	if ((p = strstr(path, "/manifests/")) && strncmp(path, "/v2/", 4) == 0)
		return serve_manifest(s, req, p + 11);
	if ((p = strstr(path, "/blobs/")) && strncmp(path, "/v2/", 4) == 0 &&
	    streq(p + 7, blob_digest))
		return serve_blob(s, req);
	reply_error(req, 404, "BLOB_UNKNOWN", "blob unknown to registry");
}

static void server_start(struct server *s)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	s->http = evhttp_new(base);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(s->http, serve, s);
	bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
	if (!bs || getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &len) < 0) {
		printf("Bail out! cannot start a test server\n");
		exit(99);
	}
	s->port = ntohs(sa.sin_port);
	snprintf(s->host, sizeof(s->host), "127.0.0.1:%d", s->port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
}

static void reset_servers(void)
{
	memset(&reg_srv.sc, 0, sizeof(reg_srv.sc));
	memset(&cdn_srv.sc, 0, sizeof(cdn_srv.sc));
	memset(&mirror_srv.sc, 0, sizeof(mirror_srv.sc));
}

/* ---- the client side ---------------------------------------------------------- */

struct result {
	bool done;
	int calls;
	struct crisp_error err;
	bool failed;
	char media_type[128], digest[160];
	char *body;
	size_t len;
	unsigned char *data; /* blob bytes */
	size_t n;
	bool abort_write;     /* write_cb fails with "disk full" */
	bool cancel_in_write; /* write_cb cancels its own request */
	struct registry_request *req;
};

static void result_reset(struct result *res)
{
	free(res->body);
	free(res->data);
	memset(res, 0, sizeof(*res));
}

static void on_manifest(void *arg, const struct registry_manifest *m, const struct crisp_error *err)
{
	struct result *res = arg;

	res->calls++;
	res->done = true;
	if (err) {
		res->err = *err;
		res->failed = true;
		return;
	}
	snprintf(res->media_type, sizeof(res->media_type), "%s", m->media_type);
	snprintf(res->digest, sizeof(res->digest), "%s", m->digest);
	res->body = malloc(m->len + 1);
	memcpy(res->body, m->body, m->len);
	res->body[m->len] = '\0';
	res->len = m->len;
}

static int on_write(void *arg, const void *buf, size_t n, struct crisp_error *err)
{
	struct result *res = arg;

	if (res->abort_write)
		return err_set(err, CRISP_E_RESOURCE, "disk full");
	res->data = realloc(res->data, res->n + n);
	memcpy(res->data + res->n, buf, n);
	res->n += n;
	if (res->cancel_in_write)
		registry_cancel(res->req);
	return 0;
}

static void on_blob_done(void *arg, const struct crisp_error *err)
{
	struct result *res = arg;

	res->calls++;
	res->done = true;
	if (err) {
		res->err = *err;
		res->failed = true;
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Run the loop until *flag or ms pass; returns *flag. */
static bool run_until(const bool *flag, unsigned ms)
{
	bool expired = false;
	struct event *t = evtimer_new(base, on_deadline, &expired);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(t, &tv);
	while (!*flag && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

static void run_for(unsigned ms)
{
	bool never = false;
	run_until(&never, ms);
}

static void start_manifest(struct registry *reg, const char *host, const char *repo,
			   const char *ref, const struct registry_auth *auth, struct result *res)
{
	result_reset(res);
	res->req = registry_get_manifest(reg, host, repo, ref, NULL, auth, on_manifest, res,
					 &res->err);
	if (!res->req)
		res->failed = res->done = true;
}

static void get_manifest(struct registry *reg, const char *host, const char *repo, const char *ref,
			 const struct registry_auth *auth, struct result *res)
{
	start_manifest(reg, host, repo, ref, auth, res);
	run_until(&res->done, 15000);
}

static void start_blob(struct registry *reg, const char *host, const char *repo, uint64_t offset,
		       const struct registry_auth *auth, struct result *res)
{
	bool abort_write = res->abort_write, cancel = res->cancel_in_write;

	result_reset(res);
	res->abort_write = abort_write;
	res->cancel_in_write = cancel;
	res->req = registry_get_blob(reg, host, repo, blob_digest, BLOB_SIZE, offset, auth,
				     on_write, on_blob_done, res, &res->err);
	if (!res->req)
		res->failed = res->done = true;
}

static void get_blob(struct registry *reg, const char *host, const char *repo, uint64_t offset,
		     const struct registry_auth *auth, struct result *res)
{
	start_blob(reg, host, repo, offset, auth, res);
	run_until(&res->done, 15000);
}

static bool blob_ok(const struct result *res, uint64_t offset)
{
	return res->done && !res->failed && res->calls == 1 && res->n == BLOB_SIZE - offset &&
	       memcmp(res->data, blob + offset, res->n) == 0;
}

static struct registry *new_registry(unsigned low_speed, unsigned max_transfers,
				     const struct registry_host *hosts, size_t nhosts)
{
	struct registry_options opt;
	struct crisp_error err = { 0 };
	struct registry *reg;

	registry_options_init(&opt);
	opt.low_speed_timeout = low_speed;
	opt.max_retries = 3;
	opt.retry_delay_ms = 10;
	opt.max_transfers = max_transfers;
	opt.hosts = hosts;
	opt.nhosts = nhosts;
	reg = registry_new(base, &opt, &err);
	if (!reg) {
		printf("Bail out! registry_new: %s\n", err.msg);
		exit(99);
	}
	return reg;
}

static void digest_hex(const void *buf, size_t len, char *out)
{
	unsigned char md[32];
	unsigned mdlen;

	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	out += sprintf(out, "sha256:");
	for (unsigned i = 0; i < mdlen; i++)
		out += sprintf(out, "%02x", md[i]);
}

/* ---- the tests ------------------------------------------------------------------ */

static void test_validation(struct registry *reg)
{
	struct crisp_error err = { 0 };
	struct result res = { 0 };

	ok(!registry_get_manifest(reg, reg_srv.host, "../etc", "latest", NULL, NULL, on_manifest,
				  &res, &err) &&
		   err.code == CRISP_E_INVALID,
	   "a repository with ../ is refused up front");
	ok(!registry_get_manifest(reg, "evil.example/x?", "a/b", "latest", NULL, NULL, on_manifest,
				  &res, &err),
	   "a host with URL syntax is refused");
	ok(!registry_get_manifest(reg, reg_srv.host, "a/b", "-x", NULL, NULL, on_manifest, &res,
				  &err),
	   "a bad tag is refused");
	ok(!registry_get_manifest(reg, reg_srv.host, "a/b", "latest", "x\r\nEvil: 1", NULL,
				  on_manifest, &res, &err),
	   "an Accept value with a line break is refused");
	ok(!registry_get_blob(reg, reg_srv.host, "a/b", "sha256:abc", 1, 0, NULL, on_write,
			      on_blob_done, &res, &err),
	   "a short digest is refused");
	ok(!registry_get_blob(reg, reg_srv.host, "a/b", blob_digest, 10, 10, NULL, on_write,
			      on_blob_done, &res, &err),
	   "an offset at the end of the blob is refused");
	run_for(50);
	is_int(res.calls, 0, "no callback for refused requests");
	is_int(reg_srv.sc.hits, 0, "and nothing was sent");
}

static void test_manifests(struct registry *reg)
{
	struct result res = { 0 };
	char want[300];

	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "manifest by tag: %s", res.err.msg);
	is_str(res.media_type, "application/vnd.oci.image.manifest.v1+json", "media type");
	is_str(res.digest, manifest_digest, "digest of the exact bytes");
	ok(res.len == sizeof(manifest) - 1 && memcmp(res.body, manifest, res.len) == 0, "body");
	like(reg_srv.sc.last_accept, "application/vnd.oci.image.index.v1+json", "Accept sent");
	is_int(res.calls, 1, "one callback");

	get_manifest(reg, reg_srv.host, "lib/app", manifest_digest, NULL, &res);
	ok(res.done && !res.failed, "manifest by digest");

	reg_srv.sc.wrong_manifest = true;
	get_manifest(reg, reg_srv.host, "lib/app", manifest_digest, NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID, "bytes that do not hash to the digest");
	like(res.err.msg, "manifest digest mismatch: asked for", "say so");
	reg_srv.sc.wrong_manifest = false;

	reg_srv.sc.bad_dcd = true;
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID, "a wrong Docker-Content-Digest");
	like(res.err.msg, "registry says", "say so");
	reg_srv.sc.bad_dcd = false;

	get_manifest(reg, reg_srv.host, "lib/app", "nope", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_NOT_FOUND, "404 is NOT_FOUND");
	snprintf(want, sizeof(want), "registry %s says MANIFEST_UNKNOWN: manifest unknown",
		 reg_srv.host);
	is_str(res.err.msg, want, "the registry's JSON error becomes the message");

	get_manifest(reg, reg_srv.host, "lib/app", "old", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID, "schema 1 refused");
	like(res.err.msg, "schema 1", "say so");

	get_manifest(reg, reg_srv.host, "lib/app", "big", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID, "a 5 MiB manifest is refused");
	like(res.err.msg, "larger than", "say so");

	get_manifest(reg, reg_srv.host, "lib/app", "generic", NULL, &res);
	is_str(res.media_type, "application/vnd.oci.image.index.v1+json",
	       "generic Content-Type: the type comes from the body's shape");

	get_manifest(reg, reg_srv.host, "lib/app", "mismatch", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID,
	   "mediaType different from Content-Type refused");
	result_reset(&res);
}

static void test_blobs(struct registry *reg)
{
	struct result res = { 0 };
	char want[64];

	reset_servers();
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "blob fetched whole: %s", res.err.msg);
	is_int(reg_srv.sc.hits, 1, "in one request");
	is_str(reg_srv.sc.last_range, "", "without Range");

	reset_servers();
	get_blob(reg, reg_srv.host, "lib/app", 1000, NULL, &res);
	ok(blob_ok(&res, 1000), "blob from an offset");
	is_str(reg_srv.sc.last_range, "bytes=1000-", "asked with Range");

	reset_servers();
	get_blob(reg, reg_srv.host, "lib/app", 1, NULL, &res);
	ok(blob_ok(&res, 1), "206 with an unknown total ('/*') is fine");

	reset_servers();
	reg_srv.sc.bad_range = true;
	get_blob(reg, reg_srv.host, "lib/app", 1000, NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID && res.n == 0,
	   "206 for another range than asked: INVALID, nothing delivered");
	like(res.err.msg, "answered bytes=1000- with range 'bytes 0-", "say so");

	reset_servers();
	result_reset(&res);
	res.req = registry_get_blob(reg, reg_srv.host, "lib/app", blob_digest, BLOB_SIZE - 1, 0,
				    NULL, on_write, on_blob_done, &res, &res.err);
	run_until(&res.done, 5000);
	ok(res.failed && res.err.code == CRISP_E_INVALID && res.n == 0,
	   "a blob larger than its descriptor says: INVALID before any byte");

	reset_servers();
	reg_srv.sc.reset_blob_once = true;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "connection reset mid-blob: resumed, bytes intact (%s)", res.err.msg);
	is_int(reg_srv.sc.hits, 2, "two requests");
	snprintf(want, sizeof(want), "bytes=%d-", BLOB_SIZE / 2);
	is_str(reg_srv.sc.last_range, want, "the second from where the first stopped");

	reset_servers();
	reg_srv.sc.reset_blob_once = reg_srv.sc.ignore_range = true;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "resume answered with a whole 200: the known bytes are skipped");

	reset_servers();
	reg_srv.sc.wrong_blob = true;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID, "blob digest mismatch");
	like(res.err.msg, "blob digest mismatch", "say so");

	reset_servers();
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	res.abort_write = true;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_RESOURCE && streq(res.err.msg, "disk full"),
	   "the writer's error ends the fetch: %s", res.err.msg);
	res.abort_write = false;
	result_reset(&res);
}

static void test_retries(struct registry *reg)
{
	struct result res = { 0 };
	uint64_t t0;

	reset_servers();
	reg_srv.sc.fail_500 = 2;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "500, 500, then the blob");
	is_int(reg_srv.sc.hits, 3, "after three requests");

	reset_servers();
	reg_srv.sc.fail_500 = 100;
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_UNAVAILABLE, "500 forever: UNAVAILABLE");
	like(res.err.msg, "says UNKNOWN: try again", "with the registry's words");
	is_int(reg_srv.sc.hits, 4, "after 1 + max_retries requests");

	reset_servers();
	reg_srv.sc.fail_429 = 1;
	t0 = now_ms();
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "429 then the manifest");
	ok(now_ms() - t0 >= 950, "after waiting Retry-After (%llu ms)",
	   (unsigned long long)(now_ms() - t0));
	result_reset(&res);
}

static void test_bearer(void)
{
	struct registry *reg = new_registry(10, 3, NULL, 0);
	struct registry_auth alice = { .username = "alice", .password = "s3cret" };
	struct registry_auth wrong = { .username = "alice", .password = "guess" };
	struct registry_auth ident = { .identity_token = IDENTITY_TOKEN };
	struct registry_auth rtoken = { .registry_token = TOKEN };
	struct result res = { 0 };

	reset_servers();
	reg_srv.sc.require_bearer = true;
	get_blob(reg, reg_srv.host, "tok/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "401 -> anonymous token -> blob (%s)", res.err.msg);
	is_int(reg_srv.sc.token_hits, 1, "one token request");
	is_str(reg_srv.sc.token_method, "GET", "a GET");
	is_str(reg_srv.sc.token_service, "test-registry", "with the challenge's service");
	is_str(reg_srv.sc.token_scope, "repository:tok/app:pull", "and scope");
	is_str(reg_srv.sc.last_auth, "Bearer " TOKEN, "retried with the bearer token");
	is_int(reg_srv.sc.hits, 2, "401 then 200");
	get_manifest(reg, reg_srv.host, "tok/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "next request");
	is_int(reg_srv.sc.token_hits, 1, "uses the cached token");
	is_int(reg_srv.sc.hits, 3, "sent at once, no second 401");

	/* The anonymous token above is still cached for this repository. */
	reset_servers();
	reg_srv.sc.require_bearer = reg_srv.sc.token_needs_basic = true;
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &alice, &res);
	ok(res.done && !res.failed, "with credentials: basic to the token server (%s)",
	   res.err.msg);
	is_int(reg_srv.sc.token_hits, 1, "the anonymous token was not used for alice");
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &wrong, &res);
	ok(res.failed && res.err.code == CRISP_E_PERMISSION, "wrong password: PERMISSION");
	like(res.err.msg, "incorrect username or password", "with the token server's words");
	is_int(reg_srv.sc.token_hits, 2, "alice's token was not used for other credentials");
	registry_free(reg);
	reg = new_registry(10, 3, NULL, 0);
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &alice, &res);
	get_manifest(reg, reg_srv.host, "tok/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_PERMISSION,
	   "anonymous, with only alice's token cached: PERMISSION");
	like(res.err.msg, "refused anonymous access", "say so");
	is_int(reg_srv.sc.token_hits, 4, "alice's token was not borrowed");
	registry_free(reg);
	reg = new_registry(10, 3, NULL, 0);

	reset_servers();
	reg_srv.sc.require_bearer = true;
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &ident, &res);
	ok(res.done && !res.failed, "identity token: OAuth2 refresh_token grant (%s)", res.err.msg);
	is_str(reg_srv.sc.token_method, "POST", "POSTed");
	like(reg_srv.sc.token_body, "grant_type=refresh_token", "grant_type");
	like(reg_srv.sc.token_body, "refresh_token=id-t0ken%2Fx", "the token, form-encoded");
	like(reg_srv.sc.token_body, "client_id=crisp", "client_id");
	like(reg_srv.sc.token_body, "service=test-registry", "service");

	registry_free(reg);
	reg = new_registry(10, 3, NULL, 0);
	reset_servers();
	reg_srv.sc.require_bearer = reg_srv.sc.token_no_post = true;
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &ident, &res);
	ok(res.done && !res.failed, "POST answered 404: falls back to GET");
	is_int(reg_srv.sc.token_hits, 2, "two token requests");
	is_str(reg_srv.sc.token_method, "GET", "the second a GET");

	/* the registry stops taking the cached token: one new token, no more */
	reset_servers();
	reg_srv.sc.require_bearer = true;
	get_manifest(reg, reg_srv.host, "tok/app", "latest", NULL, &res);
	reset_servers();
	reg_srv.sc.require_bearer = true;
	token = "rotated-token";
	get_manifest(reg, reg_srv.host, "tok/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "cached token refused: a new one is fetched (%s)", res.err.msg);
	ok(reg_srv.sc.token_hits == 1 && reg_srv.sc.hits == 2,
	   "401 with the cached token, one token request, 200 (%d, %d)", reg_srv.sc.token_hits,
	   reg_srv.sc.hits);
	reset_servers();
	reg_srv.sc.require_bearer = true;
	accepted = "never-issued";
	get_manifest(reg, reg_srv.host, "tok/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_PERMISSION,
	   "a fresh token refused too: PERMISSION, no loop");
	ok(reg_srv.sc.token_hits == 1 && reg_srv.sc.hits == 2, "after 2 requests (%d, %d)",
	   reg_srv.sc.token_hits, reg_srv.sc.hits);
	token = TOKEN;
	accepted = NULL;

	reset_servers();
	reg_srv.sc.require_bearer = true;
	get_manifest(reg, reg_srv.host, "tok/app", "latest", &rtoken, &res);
	ok(res.done && !res.failed, "registry token used as the bearer");
	is_int(reg_srv.sc.token_hits, 0, "without the token server");
	is_int(reg_srv.sc.hits, 1, "in one request");

	result_reset(&res);
	registry_free(reg);
}

static void test_basic(void)
{
	struct registry *reg = new_registry(10, 3, NULL, 0);
	struct registry_auth alice = { .username = "alice", .password = "s3cret" };
	struct registry_auth b64 = { .auth = "YWxpY2U6czNjcmV0" };
	struct registry_auth bad = { .auth = "not base64!" };
	struct result res = { 0 };

	reset_servers();
	reg_srv.sc.require_basic = true;
	get_manifest(reg, reg_srv.host, "lib/app", "latest", &alice, &res);
	ok(res.done && !res.failed, "Basic challenge answered (%s)", res.err.msg);
	is_int(reg_srv.sc.hits, 2, "401 then 200");
	get_blob(reg, reg_srv.host, "lib/app", 0, &alice, &res);
	ok(blob_ok(&res, 0), "next request");
	is_int(reg_srv.sc.hits, 3, "with basic at once");
	get_manifest(reg, reg_srv.host, "lib/app", "latest", &b64, &res);
	ok(res.done && !res.failed, "the base64 auth field works too");
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_PERMISSION, "no credentials: PERMISSION");
	like(res.err.msg, "authentication required", "say so");
	get_manifest(reg, reg_srv.host, "lib/app", "latest", &bad, &res);
	ok(res.failed && res.err.code == CRISP_E_INVALID && !res.req, "malformed auth refused");
	result_reset(&res);
	registry_free(reg);
}

static void test_redirects(void)
{
	struct registry *reg = new_registry(10, 3, NULL, 0);
	struct result res = { 0 };

	reset_servers();
	reg_srv.sc.require_bearer = true;
	snprintf(reg_srv.sc.redirect_to, sizeof(reg_srv.sc.redirect_to), "%s/cdn/blob?sig=abc",
		 cdn_srv.url);
	get_blob(reg, reg_srv.host, "tok/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "blob through a redirect to another port (%s)", res.err.msg);
	is_str(reg_srv.sc.last_auth, "Bearer " TOKEN, "the registry got the token");
	is_int(cdn_srv.sc.hits, 1, "the redirect target was asked");
	is_str(cdn_srv.sc.last_auth, "", "without Authorization");

	reset_servers();
	reg_srv.sc.require_bearer = true;
	snprintf(reg_srv.sc.redirect_to, sizeof(reg_srv.sc.redirect_to), "/same/blob");
	get_blob(reg, reg_srv.host, "tok/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "relative redirect on the same host (%s)", res.err.msg);
	is_str(reg_srv.sc.last_auth, "Bearer " TOKEN, "keeps the token there");

	reset_servers();
	cdn_srv.sc.reset_blob_once = true;
	snprintf(reg_srv.sc.redirect_to, sizeof(reg_srv.sc.redirect_to), "%s/cdn/blob",
		 cdn_srv.url);
	get_blob(reg, reg_srv.host, "tok/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "reset at the redirect target: resumed through the registry");
	is_int(reg_srv.sc.hits, 2, "which was asked again");
	result_reset(&res);
	registry_free(reg);
}

static void test_stall_and_cancel(void)
{
	struct registry *reg = new_registry(1, 1, NULL, 0);
	struct result res = { 0 }, res2 = { 0 };
	uint64_t t0;

	reset_servers();
	reg_srv.sc.stall = true;
	t0 = now_ms();
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_TIMEOUT, "a server that never answers: TIMEOUT");
	like(res.err.msg, "no progress for 1 s", "say so");
	ok(now_ms() - t0 >= 1000 && now_ms() - t0 < 4000, "after about the low-speed time");

	reset_servers();
	reg_srv.sc.slow_blob = true;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_TIMEOUT && res.n == 10,
	   "a blob that stops after 10 bytes: TIMEOUT");

	/* max_transfers is 1 here: the second request waits for the first */
	reset_servers();
	reg_srv.sc.stall = true;
	start_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	start_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res2);
	run_for(300);
	is_int(reg_srv.sc.hits, 1, "one transfer at a time");
	registry_cancel(res.req);
	reg_srv.sc.stall = false;
	run_until(&res2.done, 5000);
	ok(res2.done && !res2.failed, "the queued one ran after the cancel");
	run_for(100);
	is_int(res.calls, 0, "the cancelled one never called back");

	reset_servers();
	res.cancel_in_write = true;
	start_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	run_for(500);
	ok(res.n > 0 && res.calls == 0, "cancelled from its own write callback: no more calls");
	res.cancel_in_write = false;
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "and the registry still works");

	result_reset(&res);
	result_reset(&res2);
	registry_free(reg);
}

static void test_mirrors_and_network(void)
{
	const char *mirrors[] = { mirror_srv.url, NULL };
	struct registry_host hosts[] = {
		{ .host = reg_srv.host, .mirrors = mirrors, .plain_http = true }
	};
	struct registry *reg = new_registry(10, 3, hosts, 1);
	struct result res = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof(sa);
	char host[32];

	reset_servers();
	get_blob(reg, reg_srv.host, "lib/app", 0, NULL, &res);
	ok(blob_ok(&res, 0), "blob from the mirror");
	ok(mirror_srv.sc.hits == 1 && reg_srv.sc.hits == 0, "the origin was not asked");

	reset_servers();
	mirror_srv.sc.all_404 = true;
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "mirror says 404: the origin answers");
	ok(mirror_srv.sc.hits == 1 && reg_srv.sc.hits == 1, "each asked once");

	reset_servers();
	mirror_srv.sc.fail_500 = 100;
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed,
	   "mirror fails: the origin answers, without retrying the mirror");
	is_int(mirror_srv.sc.hits, 1, "mirror asked once");
	registry_free(reg);

	/* a port nobody listens on */
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	snprintf(host, sizeof(host), "127.0.0.1:%d", ntohs(sa.sin_port));
	close(fd);
	reg = new_registry(10, 3, NULL, 0);
	get_manifest(reg, host, "lib/app", "latest", NULL, &res);
	ok(res.failed && res.err.code == CRISP_E_UNAVAILABLE, "connection refused: UNAVAILABLE");
	like(res.err.msg, "cannot reach registry", "say so");
	result_reset(&res);
	registry_free(reg);
}

static void test_proxy(void)
{
	struct registry_host hosts[] = { { .host = "registry.invalid", .plain_http = true } };
	struct registry *reg;
	struct result res = { 0 };

	reset_servers();
	setenv("HTTP_PROXY", reg_srv.url, 1);
	reg = new_registry(10, 3, hosts, 1);
	get_manifest(reg, "registry.invalid", "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "HTTP_PROXY (upper case) is used (%s)", res.err.msg);
	is_str(reg_srv.sc.last_host, "registry.invalid", "the proxy got the absolute URI");
	registry_free(reg);

	reset_servers();
	setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
	setenv("NO_PROXY", "127.0.0.1", 1);
	reg = new_registry(10, 3, NULL, 0);
	get_manifest(reg, reg_srv.host, "lib/app", "latest", NULL, &res);
	ok(res.done && !res.failed, "NO_PROXY bypasses the proxy (%s)", res.err.msg);
	registry_free(reg);
	unsetenv("HTTP_PROXY");
	unsetenv("NO_PROXY");
	result_reset(&res);
}

static void test_challenges(void)
{
	struct auth_challenge ch;
	struct crisp_error err = { 0 };
	const char *two[] = { "Basic realm=\"r\"",
			      "Bearer realm=\"https://a/t\",service=\"s\\\"q\",scope=\"x y\"" };
	const char *one[] = {
		"Basic realm=\"r\", BEARER realm=\"https://a/t\", error=invalid_token"
	};
	const char *bad[] = { "Bearer realm=\"unterminated" };
	const char *norealm[] = { "Bearer service=x" };

	ok(auth_challenge_parse(two, 2, &ch, &err) == 0 && ch.scheme == AUTH_BEARER,
	   "bearer preferred over basic");
	is_str(ch.service, "s\"q", "quoted string with an escape");
	is_str(ch.scope, "x y", "scopes kept as sent");
	auth_challenge_clear(&ch);
	ok(auth_challenge_parse(one, 1, &ch, &err) == 0 && ch.scheme == AUTH_BEARER,
	   "two challenges in one header, scheme case-insensitive");
	is_str(ch.error, "invalid_token", "unquoted value");
	auth_challenge_clear(&ch);
	ok(auth_challenge_parse(bad, 1, &ch, &err) < 0, "unterminated quote refused");
	ok(auth_challenge_parse(norealm, 1, &ch, &err) < 0, "bearer without realm refused");
}

/* Which registry a CRI AuthConfig's server_address lets its credentials go
 * to (kubelet sends each pull secret with the host it was given for). */
static void test_server_address(void)
{
	static const struct {
		const char *server, *host;
		bool match;
	} cases[] = {
		{ "", "registry.example.com", true },
		{ NULL, "registry.example.com", true },
		{ "registry.example.com", "registry.example.com", true },
		{ "Registry.Example.COM", "registry.example.com", true },
		{ "https://registry.example.com", "registry.example.com", true },
		{ "HTTP://registry.example.com/", "registry.example.com", true },
		{ "https://registry.example.com/v2/some/path", "registry.example.com", true },
		{ "127.0.0.1:5000", "127.0.0.1:5000", true },
		{ "http://127.0.0.1:5000/v1/", "127.0.0.1:5000", true },
		{ "[::1]:5000", "[::1]:5000", true },
		{ "https://index.docker.io/v1/", "registry-1.docker.io", true },
		{ "docker.io", "registry-1.docker.io", true },
		{ "registry-1.docker.io", "registry-1.docker.io", true },
		{ "index.docker.io", "docker.io", true },
		{ "other.example.com", "registry.example.com", false },
		{ "registry.example.com.evil.org", "registry.example.com", false },
		{ "registry.example", "registry.example.com", false },
		{ "127.0.0.1:5001", "127.0.0.1:5000", false },
		{ "127.0.0.1", "127.0.0.1:5000", false },
		{ "localhost:5000", "127.0.0.1:5000", false },
		{ "https://index.docker.io/v1/", "quay.io", false },
		{ "quay.io", "registry-1.docker.io", false },
		{ "https://evil.org/registry.example.com", "registry.example.com", false },
		{ "alice@registry.example.com", "registry.example.com", false },
		{ "https://", "registry.example.com", false },
		{ "/registry.example.com", "registry.example.com", false },
		{ "ftp://registry.example.com", "registry.example.com", false },
		{ "registry.example.com", "", false },
		{ "registry.example.com", NULL, false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		ok(auth_server_matches(cases[i].server, cases[i].host) == cases[i].match,
		   "server_address '%s' %s credentials for '%s'",
		   cases[i].server ? cases[i].server : "(null)",
		   cases[i].match ? "gives" : "gives no", cases[i].host ? cases[i].host : "(null)");
	ok(auth_credentials_apply("", "b.example", "b.example/x:y"), "no server_address: applies");
	ok(!auth_credentials_apply("https://a.example/\nforged", "b.example", "b.example/x:y"),
	   "credentials for another host do not apply");
	like(log_text(),
	     "pull of b.example/x:y: the credentials given are for 'https://a.example/?forged', "
	     "not b.example: pulling without them",
	     "the host they were for is logged, a control character replaced");
}

static void test_no_secrets_logged(void)
{
	const char *log = log_text();

	ok(strstr(log, "registry: GET") != NULL, "debug logging was on (%zu bytes)", strlen(log));
	ok(!strstr(log, "s3cret") && !strstr(log, "YWxpY2U6czNjcmV0") && !strstr(log, TOKEN) &&
		   !strstr(log, "rotated-token") && !strstr(log, "id-t0ken") &&
		   !strstr(log, "sig=abc"),
	   "no password, basic header, token, identity token or URL signature in the log");
}

int main(void)
{
	struct registry *reg;
	struct registry_auth *a = calloc(1, sizeof(*a));

	signal(SIGPIPE, SIG_IGN);
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("all_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	log_capture_init();
	log_init("test-registry", LOG_DEBUG);
	base = event_base_new();
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 7 + i / 251);
	digest_hex(blob, sizeof(blob), blob_digest);
	digest_hex(manifest, sizeof(manifest) - 1, manifest_digest);
	server_start(&reg_srv);
	server_start(&cdn_srv);
	server_start(&mirror_srv);

	reg = new_registry(10, 3, NULL, 0);
	test_validation(reg);
	test_manifests(reg);
	test_blobs(reg);
	test_retries(reg);
	registry_free(reg);
	test_bearer();
	test_basic();
	test_redirects();
	test_stall_and_cancel();
	test_mirrors_and_network();
	test_proxy();
	test_challenges();
	test_server_address();
	test_no_secrets_logged();

	a->password = strdup("s3cret");
	a->identity_token = strdup(IDENTITY_TOKEN);
	registry_auth_free(a);
	ok(1, "registry_auth_free");

	release_held();
	run_for(100);
	evhttp_free(reg_srv.http);
	evhttp_free(cdn_srv.http);
	evhttp_free(mirror_srv.http);
	event_base_free(base);
	(void)!write(real_stderr, log_text(), strlen(log_text()));
	return done_testing();
}
