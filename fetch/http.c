/* libcurl multi on libevent: see fetch/http.h for what this guarantees.
 *
 * The shape follows curl's hiperfifo example: curl tells us which sockets to
 * watch and when to wake it; libevent tells curl what happened. The rules
 * that make it safe:
 *  - libcurl may not be re-entered from its own callbacks (adding/removing a
 *    handle there fails), so whatever a callback of ours asks for while
 *    in_curl is set is parked on a list and done by the `deferred` event;
 *  - a transfer freed while libcurl may still call back for it stays
 *    allocated (marked dead, callbacks disabled) until that event reaps it;
 *  - curl_multi_info_read() messages are copied before any on_done runs,
 *    since on_done may remove handles and so invalidate them. */
#include "autoconfig.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/log.h"
#include "fetch/http.h"

enum xfer_state {
	XFER_NEW,
	XFER_QUEUED,
	XFER_ACTIVE,
	XFER_FAILED, /* could not be handed to curl: on_done from `deferred` */
	XFER_DONE,
};

struct http_xfer {
	struct http *h;
	CURL *easy;
	char *url;
	const struct http_xfer_ops *ops;
	void *arg;
	struct curl_slist *headers;
	char *post;
	size_t post_len;
	char errbuf[CURL_ERROR_SIZE];
	enum xfer_state state;
	bool urgent;
	bool headers_done;
	bool aborted;
	bool dead; /* freed by its owner while curl may still call back */
	long status;
	uint64_t last_progress;
	TAILQ_ENTRY(http_xfer) link; /* in queue, active, dead or failed */
};

TAILQ_HEAD(xfer_list, http_xfer);

struct tls_host {
	char *host;
	bool insecure;
	char *ca_file;
};

struct http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;    /* curl's own timeout */
	struct event *stall;    /* periodic progress check while transfers run */
	struct event *deferred; /* what curl's callbacks may not do */
	char *user_agent;
	unsigned max_active, nlimited, stall_ms;
	struct tls_host *tls;
	size_t ntls;
	char *proxy_http, *proxy_https, *no_proxy;
	struct xfer_list queue, active, dead, failed;
	int in_curl;
};

static void pump(struct http *h);

static void wipe_free(char *s, size_t n)
{
	if (s) {
		explicit_bzero(s, n);
		free(s);
	}
}

static void xfer_destroy(struct http_xfer *x)
{
	for (struct curl_slist *l = x->headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(x->headers);
	wipe_free(x->post, x->post_len);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	free(x->url);
	free(x);
}

/* Take an active transfer out of curl (never from inside curl). */
static void xfer_detach(struct http_xfer *x, struct xfer_list *from)
{
	struct http *h = x->h;

	curl_multi_remove_handle(h->multi, x->easy);
	TAILQ_REMOVE(from, x, link);
	if (!x->urgent && h->nlimited > 0)
		h->nlimited--;
	x->state = XFER_DONE;
}

static void xfer_complete(struct http_xfer *x, enum http_outcome outcome, CURLcode rc)
{
	struct http_result res = { .outcome = outcome, .curl_code = rc };

	res.status = x->headers_done ? x->status : 0;
	if (outcome == HTTP_COMPLETE && rc != CURLE_OK)
		res.outcome = HTTP_NETWORK;
	if (x->aborted)
		res.outcome = HTTP_ABORTED;
	if (res.outcome == HTTP_COMPLETE && !x->headers_done) {
		res.outcome = HTTP_NETWORK;
		rc = res.curl_code = CURLE_GOT_NOTHING;
	}
	if (res.outcome == HTTP_NETWORK)
		res.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	x->ops->on_done(x->arg, x, &res);
}

static void check_multi_info(struct http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct http_xfer *x = NULL;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x->dead) {
			xfer_detach(x, &h->dead);
			xfer_destroy(x);
			continue;
		}
		xfer_detach(x, &h->active);
		xfer_complete(x, HTTP_COMPLETE, rc);
	}
}

static void multi_action(struct http *h, curl_socket_t s, int flags)
{
	int running;

	h->in_curl++;
	curl_multi_socket_action(h->multi, s, flags, &running);
	h->in_curl--;
	check_multi_info(h);
	pump(h);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
		    (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	multi_action(arg, fd, flags);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	multi_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	struct event *ev = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (ev) {
			curl_multi_assign(h->multi, s, NULL);
			event_free(ev);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (ev) {
		event_del(ev);
		event_assign(ev, h->base, s, kind, on_socket_event, h);
	} else {
		ev = event_new(h->base, s, kind, on_socket_event, h);
		if (!ev)
			return -1;
		curl_multi_assign(h->multi, s, ev);
	}
	return event_add(ev, NULL);
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer, 0 means "as soon as you can"
 * (which must not call curl from here: the event does it). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	if (timeout_ms < 0)
		return event_del(h->timer);
	return evtimer_add(h->timer, &tv);
}

/* A transfer whose last byte in either direction is older than stall_ms is
 * ended here. The loop restarts after each on_done, which may have freed or
 * started any transfer. */
static void on_stall_check(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_xfer *x;
	uint64_t now = now_ms();

again:
	TAILQ_FOREACH (x, &h->active, link) {
		if (now - x->last_progress < h->stall_ms)
			continue;
		xfer_detach(x, &h->active);
		xfer_complete(x, HTTP_STALLED, CURLE_OK);
		goto again;
	}
	pump(h);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_xfer *x;

	while ((x = TAILQ_FIRST(&h->dead))) {
		xfer_detach(x, &h->dead);
		xfer_destroy(x);
	}
	while ((x = TAILQ_FIRST(&h->failed))) {
		TAILQ_REMOVE(&h->failed, x, link);
		x->state = XFER_DONE;
		snprintf(x->errbuf, sizeof(x->errbuf), "cannot start the transfer");
		xfer_complete(x, HTTP_NETWORK, CURLE_FAILED_INIT);
	}
	pump(h);
}

static void activate(struct http *h, struct http_xfer *x)
{
	TAILQ_REMOVE(&h->queue, x, link);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	x->last_progress = now_ms();
	h->in_curl++;
	if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
		h->in_curl--;
		x->state = XFER_FAILED;
		TAILQ_INSERT_TAIL(&h->failed, x, link);
		event_active(h->deferred, EV_TIMEOUT, 0);
		return;
	}
	h->in_curl--;
	x->state = XFER_ACTIVE;
	TAILQ_INSERT_TAIL(&h->active, x, link);
	if (!x->urgent)
		h->nlimited++;
}

/* Start what the queue and the limit allow, and keep the stall check armed
 * exactly while something runs. */
static void pump(struct http *h)
{
	struct http_xfer *x, *next;

	if (h->in_curl) {
		event_active(h->deferred, EV_TIMEOUT, 0);
		return;
	}
	for (x = TAILQ_FIRST(&h->queue); x; x = next) {
		next = TAILQ_NEXT(x, link);
		if (x->urgent || h->nlimited < h->max_active)
			activate(h, x);
	}
	if (TAILQ_EMPTY(&h->active)) {
		event_del(h->stall);
	} else if (!event_pending(h->stall, EV_TIMEOUT, NULL)) {
		unsigned ms = h->stall_ms / 4;
		struct timeval tv;

		ms = ms < 20 ? 20 : ms > 1000 ? 1000 : ms;
		tv = (struct timeval){ ms / 1000, (ms % 1000) * 1000 };
		event_add(h->stall, &tv);
	}
}

static char *env_first(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (!v || !*v)
		v = getenv(b);
	return v && *v ? xstrdup(v) : NULL;
}

/* libcurl reads only the lower-case http_proxy (a CGI precaution that does
 * not apply to a daemon); Kubernetes nodes commonly set HTTP_PROXY. */
static void read_proxy_env(struct http *h)
{
	char *all = env_first("all_proxy", "ALL_PROXY");

	h->proxy_https = env_first("https_proxy", "HTTPS_PROXY");
	h->proxy_http = env_first("http_proxy", "HTTP_PROXY");
	h->no_proxy = env_first("no_proxy", "NO_PROXY");
	if (!h->proxy_https && all)
		h->proxy_https = xstrdup(all);
	if (!h->proxy_http && all)
		h->proxy_http = xstrdup(all);
	free(all);
	/* The proxy URL may carry credentials: say only whether there is one. */
	log_debug("http: proxy for https %s, for http %s, exceptions %s",
		  h->proxy_https ? "set" : "none", h->proxy_http ? "set" : "none",
		  h->no_proxy ? h->no_proxy : "none");
}

struct http *http_new(struct event_base *base, const struct http_options *opt,
		      struct crisp_error *err)
{
	static bool global_done;
	struct http *h;

	if (!opt->max_active || !opt->stall_timeout_ms)
		return err_set(err, CRISP_E_INVALID,
			       "http: max_active and stall timeout must be set"),
		       NULL;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return err_set(err, CRISP_E_INTERNAL, "curl_global_init failed"), NULL;
		global_done = true;
	}
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->max_active = opt->max_active;
	h->stall_ms = opt->stall_timeout_ms;
	h->user_agent = xstrdup(opt->user_agent);
	TAILQ_INIT(&h->queue);
	TAILQ_INIT(&h->active);
	TAILQ_INIT(&h->dead);
	TAILQ_INIT(&h->failed);
	h->tls = xcalloc(opt->ntls, sizeof(*h->tls));
	for (size_t i = 0; i < opt->ntls; i++, h->ntls++) {
		h->tls[i].host = xstrdup(opt->tls[i].host);
		h->tls[i].insecure = opt->tls[i].insecure_skip_verify;
		h->tls[i].ca_file = opt->tls[i].ca_file ? xstrdup(opt->tls[i].ca_file) : NULL;
	}
	read_proxy_env(h);
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, on_timer, h);
	h->stall = event_new(base, -1, EV_PERSIST, on_stall_check, h);
	h->deferred = event_new(base, -1, 0, on_deferred, h);
	if (!h->multi || !h->timer || !h->stall || !h->deferred) {
		http_free(h);
		return err_set(err, CRISP_E_INTERNAL, "cannot set up the HTTP client"), NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

static void free_list(struct xfer_list *l)
{
	struct http_xfer *x;

	while ((x = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, x, link);
		if (x->state == XFER_ACTIVE || x->dead)
			curl_multi_remove_handle(x->h->multi, x->easy);
		xfer_destroy(x);
	}
}

void http_free(struct http *h)
{
	if (!h)
		return;
	free_list(&h->queue);
	free_list(&h->active);
	free_list(&h->dead);
	free_list(&h->failed);
	if (h->multi)
		curl_multi_cleanup(h->multi); /* closes sockets: their events go below */
	if (h->timer)
		event_free(h->timer);
	if (h->stall)
		event_free(h->stall);
	if (h->deferred)
		event_free(h->deferred);
	for (size_t i = 0; i < h->ntls; i++) {
		free(h->tls[i].host);
		free(h->tls[i].ca_file);
	}
	free(h->tls);
	free(h->user_agent);
	free(h->proxy_http);
	free(h->proxy_https);
	free(h->no_proxy);
	free(h);
}

struct event_base *http_event_base(const struct http *h)
{
	return h->base;
}

static size_t on_header_line(char *buf, size_t size, size_t n, void *userp)
{
	struct http_xfer *x = userp;
	size_t len = size * n;
	long status = 0;

	if (x->dead)
		return 0;
	x->last_progress = now_ms();
	if (!(len == 2 && buf[0] == '\r' && buf[1] == '\n') && !(len == 1 && buf[0] == '\n'))
		return len;
	/* The blank line ends a header block; skip interim (1xx) responses. */
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 100 && status < 200)
		return len;
	x->status = status;
	x->headers_done = true;
	if (x->ops->on_headers && x->ops->on_headers(x->arg, x, status) < 0) {
		x->aborted = true;
		return 0;
	}
	return x->dead ? 0 : len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *userp)
{
	struct http_xfer *x = userp;
	size_t len = size * n;

	if (x->dead)
		return 0;
	x->last_progress = now_ms();
	if (x->ops->on_data && x->ops->on_data(x->arg, x, buf, len) < 0) {
		x->aborted = true;
		return 0;
	}
	return x->dead ? 0 : len;
}

static void apply_host_settings(struct http *h, struct http_xfer *x, const char *scheme,
				const char *authority)
{
	bool https = streq(scheme, "https");
	const char *proxy = https ? h->proxy_https : h->proxy_http;

	/* Set explicitly, so libcurl's own environment reading never differs
	 * from ours. */
	curl_easy_setopt(x->easy, CURLOPT_PROXY, proxy ? proxy : "");
	curl_easy_setopt(x->easy, CURLOPT_NOPROXY, h->no_proxy ? h->no_proxy : "");
	for (size_t i = 0; i < h->ntls; i++) {
		if (strcasecmp(h->tls[i].host, authority) != 0)
			continue;
		if (h->tls[i].ca_file)
			curl_easy_setopt(x->easy, CURLOPT_CAINFO, h->tls[i].ca_file);
		if (h->tls[i].insecure) {
			curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		break;
	}
}

struct http_xfer *http_xfer_new(struct http *h, const char *url, const struct http_xfer_ops *ops,
				void *arg, struct crisp_error *err)
{
	_cleanup_free_ char *scheme = NULL, *authority = NULL;
	struct http_xfer *x;
	long port;

	if (http_url_split(url, &scheme, &authority, &port) < 0)
		return err_set(err, CRISP_E_INVALID, "not an http(s) URL"), NULL;
	x = xcalloc(1, sizeof(*x));
	x->h = h;
	x->ops = ops;
	x->arg = arg;
	x->url = xstrdup(url);
	x->easy = curl_easy_init();
	if (!x->easy) {
		xfer_destroy(x);
		return err_set(err, CRISP_E_INTERNAL, "curl_easy_init failed"), NULL;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header_line);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	apply_host_settings(h, x, scheme, authority);
	return x;
}

void http_xfer_add_header(struct http_xfer *x, const char *line)
{
	struct curl_slist *l = curl_slist_append(x->headers, line);

	if (!l)
		abort(); /* out of memory, as xmalloc would */
	x->headers = l;
}

void http_xfer_set_post(struct http_xfer *x, const char *content_type, const void *body, size_t len)
{
	_cleanup_free_ char *ct = xasprintf("Content-Type: %s", content_type);

	wipe_free(x->post, x->post_len);
	x->post = xmalloc(len + 1);
	memcpy(x->post, body, len);
	x->post[len] = '\0';
	x->post_len = len;
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->post);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	http_xfer_add_header(x, ct);
}

void http_xfer_set_urgent(struct http_xfer *x)
{
	x->urgent = true;
}

void http_xfer_start(struct http_xfer *x)
{
	if (x->state != XFER_NEW)
		return;
	x->state = XFER_QUEUED;
	TAILQ_INSERT_TAIL(&x->h->queue, x, link);
	pump(x->h);
}

void http_xfer_free(struct http_xfer *x)
{
	struct http *h;

	if (!x || x->dead)
		return;
	h = x->h;
	switch (x->state) {
	case XFER_QUEUED:
		TAILQ_REMOVE(&h->queue, x, link);
		break;
	case XFER_FAILED:
		TAILQ_REMOVE(&h->failed, x, link);
		break;
	case XFER_ACTIVE:
		if (h->in_curl) {
			/* curl may still call back for it: park it. */
			TAILQ_REMOVE(&h->active, x, link);
			TAILQ_INSERT_TAIL(&h->dead, x, link);
			if (!x->urgent && h->nlimited > 0)
				h->nlimited--;
			x->urgent = true; /* already uncounted */
			x->dead = true;
			event_active(h->deferred, EV_TIMEOUT, 0);
			return;
		}
		xfer_detach(x, &h->active);
		xfer_destroy(x);
		pump(h);
		return;
	default:
		break;
	}
	xfer_destroy(x);
}

const char *http_xfer_header(struct http_xfer *x, const char *name, size_t n)
{
	struct curl_header *hdr;

	if (curl_easy_header(x->easy, name, n, CURLH_HEADER, -1, &hdr) != CURLHE_OK)
		return NULL;
	return hdr->value;
}

const char *http_xfer_redirect_url(struct http_xfer *x)
{
	char *url = NULL;

	if (curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &url) != CURLE_OK)
		return NULL;
	return url;
}

const char *http_xfer_url(const struct http_xfer *x)
{
	return x->url;
}

static char *url_part(CURLU *u, CURLUPart what, unsigned flags)
{
	char *v = NULL, *copy;

	if (curl_url_get(u, what, &v, flags) != CURLUE_OK)
		return NULL;
	copy = xstrdup(v);
	curl_free(v);
	return copy;
}

int http_url_split(const char *url, char **ret_scheme, char **ret_authority, long *ret_port)
{
	_cleanup_free_ char *scheme = NULL, *host = NULL, *port = NULL, *dport = NULL;
	CURLU *u = curl_url();
	int r = -1;

	if (!u)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	scheme = url_part(u, CURLUPART_SCHEME, 0);
	host = url_part(u, CURLUPART_HOST, 0);
	port = url_part(u, CURLUPART_PORT, 0);
	dport = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	if (!scheme || !host || !dport || (!streq(scheme, "http") && !streq(scheme, "https")))
		goto out;
	if (ret_authority)
		*ret_authority = port ? xasprintf("%s:%s", host, port) : xstrdup(host);
	if (ret_port)
		*ret_port = strtol(dport, NULL, 10);
	if (ret_scheme)
		*ret_scheme = TAKE_PTR(scheme);
	r = 0;
out:
	curl_url_cleanup(u);
	return r;
}

bool http_same_origin(const char *a, const char *b)
{
	_cleanup_free_ char *sa = NULL, *sb = NULL, *ha = NULL, *hb = NULL;
	long pa, pb;
	char *c;

	if (http_url_split(a, &sa, &ha, &pa) < 0 || http_url_split(b, &sb, &hb, &pb) < 0)
		return false;
	/* compare host names without the port, which pa/pb hold */
	if ((c = strrchr(ha, ':')) && !strchr(c, ']'))
		*c = '\0';
	if ((c = strrchr(hb, ':')) && !strchr(c, ']'))
		*c = '\0';
	return streq(sa, sb) && strcasecmp(ha, hb) == 0 && pa == pb;
}

int http_buf_append(struct http_buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return -1;
	if (b->len + n + 1 > b->cap) {
		/* grow by hand, not realloc: the old copy may hold a token */
		size_t cap = b->cap ? b->cap : 4096;
		char *data;

		while (cap < b->len + n + 1)
			cap *= 2;
		data = xmalloc(cap);
		if (b->data)
			memcpy(data, b->data, b->len);
		wipe_free(b->data, b->cap);
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void http_buf_clear(struct http_buf *b)
{
	wipe_free(b->data, b->cap);
	b->data = NULL;
	b->len = b->cap = 0;
}
