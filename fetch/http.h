/* crisp-fetch's HTTP engine: libcurl's multi interface driven by its libevent
 * loop (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION mapped to libevent events), so
 * no transfer ever blocks the loop. DNS runs in curl's threaded resolver.
 *
 * It knows nothing of registries: it moves bytes for fetch/registry.c and
 * fetch/auth.c, and enforces what every transfer needs:
 *  - at most max_active transfers at once, the rest wait in a FIFO queue
 *    (transfers marked urgent, such as token requests, skip the queue so a
 *    full queue cannot starve the authentication its members wait for);
 *  - a transfer that moves no byte for stall_timeout_ms is ended (STALLED);
 *  - redirects are never followed here: the owner decides where its
 *    credentials may go (registry.c follows them itself);
 *  - TLS settings per host (CA file, verification off), http/https only;
 *  - proxies from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY, upper or lower
 *    case, read once at http_new() (libcurl alone ignores HTTP_PROXY).
 *
 * Callbacks: on_headers and on_data run inside libcurl; on_done runs from the
 * loop outside libcurl. Any of them may call http_xfer_free() on any transfer
 * (its own included) and http_xfer_start() on new ones: what libcurl forbids
 * inside its callbacks is deferred to the loop. Not thread-safe: one loop. */
#ifndef CRISP_FETCH_HTTP_H
#define CRISP_FETCH_HTTP_H

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct http;
struct http_xfer;

struct http_tls_host {
	const char *host; /* "name[:port]" as in the URL ("[::1]:5000" for IPv6) */
	bool insecure_skip_verify;
	const char *ca_file; /* NULL: the system's CA bundle */
};

struct http_options {
	const char *user_agent;
	unsigned max_active;       /* > 0 */
	unsigned stall_timeout_ms; /* > 0 */
	const struct http_tls_host *tls;
	size_t ntls;
};

enum http_outcome {
	HTTP_COMPLETE, /* a whole response arrived (any status) */
	HTTP_NETWORK,  /* connection, TLS or protocol failure: curl_code, error */
	HTTP_STALLED,  /* no byte moved for stall_timeout_ms */
	HTTP_ABORTED,  /* on_headers or on_data returned -1 */
};

struct http_result {
	enum http_outcome outcome;
	long status;        /* 0 if no response header arrived */
	CURLcode curl_code; /* HTTP_NETWORK */
	const char *error;  /* HTTP_NETWORK: curl's description */
};

struct http_xfer_ops {
	/* The final response's headers are all in (1xx skipped): read them with
	 * http_xfer_header(). -1 aborts the transfer. May be NULL. */
	int (*on_headers)(void *arg, struct http_xfer *x, long status);
	/* Body bytes, of any status. -1 aborts the transfer. */
	int (*on_data)(void *arg, struct http_xfer *x, const char *buf, size_t n);
	/* Exactly once per started transfer unless it was freed before. The
	 * transfer is not freed: do it here or later (its headers stay readable
	 * until then). */
	void (*on_done)(void *arg, struct http_xfer *x, const struct http_result *res);
};

struct http *http_new(struct event_base *base, const struct http_options *opt,
		      struct crisp_error *err);
/* Ends every transfer without calling back. Takes NULL. Not from a callback. */
void http_free(struct http *h);
struct event_base *http_event_base(const struct http *h);

/* A GET of url (http or https); nothing happens before http_xfer_start(). */
struct http_xfer *http_xfer_new(struct http *h, const char *url, const struct http_xfer_ops *ops,
				void *arg, struct crisp_error *err);
/* "Name: value". A secret header (Authorization) is wiped from our memory
 * when the transfer is freed, and never logged. */
void http_xfer_add_header(struct http_xfer *x, const char *line);
/* Make it a POST of this body (copied, wiped when freed). */
void http_xfer_set_post(struct http_xfer *x, const char *content_type, const void *body,
			size_t len);
/* Do not wait in the queue behind max_active transfers. */
void http_xfer_set_urgent(struct http_xfer *x);
void http_xfer_start(struct http_xfer *x);
/* Stop (if running) and free. No callback follows. Takes NULL. */
void http_xfer_free(struct http_xfer *x);

/* The n-th (from 0) value of a header of the final response, NULL if
 * absent. From on_headers on; the value may change at the next call (copy
 * it to keep it) and is gone when the transfer is freed. */
const char *http_xfer_header(struct http_xfer *x, const char *name, size_t n);
/* The absolute URL a 3xx response points to (Location resolved against the
 * request URL), NULL if none. Valid until the transfer is freed. */
const char *http_xfer_redirect_url(struct http_xfer *x);
const char *http_xfer_url(const struct http_xfer *x);

/* A response body in memory, at most max bytes: append refuses more. */
struct http_buf {
	char *data; /* NUL-terminated */
	size_t len, cap, max;
};
int http_buf_append(struct http_buf *b, const void *p, size_t n);
/* Wipes (bodies may hold tokens) and frees; the buffer can be reused. */
void http_buf_clear(struct http_buf *b);

/* Split a URL: scheme ("http"/"https"), authority ("host[:port]" without a
 * default port) and the port number. 0, or -1 if it is not an http(s) URL. */
int http_url_split(const char *url, char **ret_scheme, char **ret_authority, long *ret_port);
/* Same scheme, host and port. */
bool http_same_origin(const char *a, const char *b);

#endif
