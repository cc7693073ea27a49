/* fuzz-reference: a libFuzzer target for imaged/reference.c, which parses
 * the image names every CRI image request carries.
 *
 * Besides "no crash, no leak" (ASan and libFuzzer), it is a differential
 * test: an oracle built from distribution/reference's own regular
 * expressions (regexp.go, compiled here as POSIX EREs) and its steps
 * (ParseAnyReference → ParseNormalizedNamed → Parse → TagNameOnly, written
 * out below as they are in normalize.go and reference.go) must agree with
 * image_ref_parse() on every input: both accept or both refuse, and when
 * they accept, the normalized strings are equal. The oracle carries crisp's
 * documented deviations (reference.h): only sha256/sha512 digests, a
 * would-be domain must be a valid one, input at most IMAGE_REF_MAX bytes.
 * On accepted input the API must also be self-consistent: the normalized
 * string parses to itself, and so does the familiar form.
 *
 * Build and run (clang with libFuzzer, libclang-rt-14-dev on Debian 12):
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-reference
 *	mkdir -p corpus-ref && ./tests/fuzz/fuzz-reference -max_total_time=60 corpus-ref
 *
 * The input is the reference, up to its first NUL byte. */
#include "autoconfig.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "imaged/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* regexp.go, with (?:...) as plain groups and \w spelled out. POSIX
 * leftmost-longest and RE2 leftmost-first differ only in what the groups
 * capture, not in which strings match, and only matching is used. */
#define ALNUM "[a-z0-9]+"
#define SEPARATOR "([._]|__|[-]+)"
#define PATH_COMPONENT ALNUM "(" SEPARATOR ALNUM ")*"
#define REMOTE_NAME PATH_COMPONENT "(/" PATH_COMPONENT ")*"
#define DOMAIN_COMPONENT "([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
#define DOMAIN_NAME DOMAIN_COMPONENT "(\\." DOMAIN_COMPONENT ")*"
#define IPV6 "\\[[a-fA-F0-9:]+\\]"
#define DOMAIN_AND_PORT "(" DOMAIN_NAME "|" IPV6 ")(:[0-9]+)?"
#define TAG "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
#define DIGEST "[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}"
#define NAME "(" DOMAIN_AND_PORT "/)?" REMOTE_NAME

static regex_t re_identifier, re_digest, re_reference, re_domain;

static void fail(const char *what, const char *in, const char *a, const char *b)
{
	fprintf(stderr, "fuzz-reference: %s\n  input: '%s'\n  crisp: %s\n  oracle: %s\n", what, in,
		a ? a : "(null)", b ? b : "(null)");
	abort();
}

static void compile(regex_t *re, const char *pattern)
{
	if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		fprintf(stderr, "fuzz-reference: bad pattern %s\n", pattern);
		abort();
	}
}

static bool match(regex_t *re, const char *s)
{
	return regexec(re, s, 0, NULL, 0) == 0;
}

/* go-digest's Parse, with crisp's algorithms: NULL-free digest string. */
static bool go_digest_ok(const char *d)
{
	const char *colon = strchr(d, ':');
	size_t want, n;

	if (!match(&re_digest, d) || !colon)
		return false;
	if (colon - d == 6 && strncmp(d, "sha256", 6) == 0)
		want = 64;
	else if (colon - d == 6 && strncmp(d, "sha512", 6) == 0)
		want = 128;
	else
		return false;
	n = strlen(colon + 1);
	return n == want && strspn(colon + 1, "0123456789abcdef") == n;
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

/* The normalized reference as distribution/reference makes it, or NULL if
 * it refuses s. Returns a malloc'd string. */
static char *oracle(const char *s)
{
	const char *slash = strchr(s, '/'), *domain = "docker.io", *rest = s, *at;
	_cleanup_free_ char *full = NULL, *dom = NULL, *remote = NULL;
	size_t path_len, remote_len;
	bool tagged;

	if (!*s || strlen(s) > IMAGE_REF_MAX)
		return NULL;
	/* ParseAnyReference */
	if (match(&re_identifier, s))
		return xasprintf("sha256:%s", s);
	if (go_digest_ok(s))
		return xstrdup(s);
	/* splitDockerDomain */
	if (slash) {
		dom = xasprintf("%.*s", (int)(slash - s), s);
		/* the order of the switch in normalize.go */
		if (streq(dom, "localhost")) {
			domain = dom;
			rest = slash + 1;
		} else if (streq(dom, "index.docker.io")) {
			rest = slash + 1;
		} else if (strpbrk(dom, ".:") || has_upper(dom, strlen(dom))) {
			domain = dom;
			rest = slash + 1;
		}
	}
	remote = xasprintf(
		"%s%s", streq(domain, "docker.io") && !strchr(rest, '/') ? "library/" : "", rest);
	/* ParseNormalizedNamed's lowercase check, then Parse */
	remote_len = strcspn(remote, ":");
	if (has_upper(remote, remote_len))
		return NULL;
	full = xasprintf("%s/%s", domain, remote);
	if (!match(&re_reference, full))
		return NULL;
	/* Upstream would give a domain that is no domain an empty Domain();
	 * crisp refuses it. */
	if (!match(&re_domain, domain))
		return NULL;
	at = strchr(remote, '@');
	path_len = strcspn(remote, ":@");
	if (path_len > IMAGE_REF_PATH_MAX)
		return NULL;
	if (at && !go_digest_ok(at + 1))
		return NULL;
	tagged = remote[path_len] == ':';
	return xasprintf("%s%s", full, !tagged && !at ? ":latest" : "");
}

/* A path on docker.io whose first component would be read as a domain. */
static bool looks_like_domain(const struct image_ref *r)
{
	size_t n = strcspn(r->path, "/");

	return streq(r->domain, "docker.io") && r->path[n] == '/' &&
	       (memchr(r->path, '.', n) || (n == 9 && strncmp(r->path, "localhost", 9) == 0));
}

/* The invariants of an accepted reference. */
static void check_accepted(const char *in, const struct image_ref *r, const char *s)
{
	struct image_ref again = { 0 };
	struct crisp_error err;
	_cleanup_free_ char *s2 = NULL, *fam = NULL, *fam2 = NULL, *repo = NULL;

	if (image_ref_parse(s, &again, &err) < 0)
		fail("normalized form does not parse", in, s, err.msg);
	s2 = image_ref_string(&again);
	if (!streq(s, s2))
		fail("normalized form is not a fixed point", in, s, s2);
	image_ref_free(&again);

	if (image_ref_is_id(r)) {
		if (r->domain || r->tag || !digest_valid(r->digest) || image_ref_repo(r) ||
		    image_ref_registry_host(r))
			fail("inconsistent image id", in, s, NULL);
		return;
	}
	if (!r->domain || !r->path || (!r->tag && !r->digest) ||
	    (r->digest && !digest_valid(r->digest)) || !image_ref_registry_host(r))
		fail("inconsistent name", in, s, NULL);
	repo = image_ref_repo(r);
	if (strncmp(s, repo, strlen(repo)) != 0 || strlen(r->path) > IMAGE_REF_PATH_MAX)
		fail("repo is not the start of the reference", in, s, repo);

	/* The familiar form names the same image, except where upstream's
	 * familiarizeName makes it ambiguous too: when it reads as an id
	 * ("docker.io/library/sha256:<64 hex>" → "sha256:<64 hex>") or its
	 * first component as a domain ("docker.io/foo.com/x" → "foo.com/x"). */
	fam = image_ref_familiar(r);
	if (looks_like_domain(r))
		return;
	if (image_ref_parse(fam, &again, &err) < 0)
		fail("familiar form does not parse", in, fam, err.msg);
	if (!image_ref_is_id(&again)) {
		fam2 = image_ref_string(&again);
		if (!streq(s, fam2))
			fail("familiar form names another image", in, s, fam2);
	}
	image_ref_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	_cleanup_free_ char *in = NULL, *want = NULL, *got = NULL;
	struct image_ref r = { 0 };
	struct crisp_error err = { 0 };
	int rc;

	if (!ready) {
		compile(&re_identifier, "^[a-f0-9]{64}$");
		compile(&re_digest, "^" DIGEST "$");
		compile(&re_reference, "^(" NAME ")(:" TAG ")?(@" DIGEST ")?$");
		compile(&re_domain, "^" DOMAIN_AND_PORT "$");
		ready = true;
	}
	/* Keep the regex engine's work bounded: past the limit only crisp's
	 * length check is being tested, and a prefix says as much. */
	if (size > 2 * IMAGE_REF_MAX)
		size = 2 * IMAGE_REF_MAX;
	in = xmalloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';

	rc = image_ref_parse(in, &r, &err);
	want = oracle(in);
	if (rc == 0) {
		got = image_ref_string(&r);
		if (!want)
			fail("crisp accepts what upstream refuses", in, got, NULL);
		if (!streq(got, want))
			fail("normalized forms differ", in, got, want);
		check_accepted(in, &r, got);
		image_ref_free(&r);
	} else {
		if (want)
			fail("crisp refuses what upstream accepts", in, err.msg, want);
		if (err.code != CRISP_E_INVALID || !strstr(err.msg, "invalid reference format"))
			fail("bad error", in, err.msg, NULL);
		if (r.domain || r.path || r.tag || r.digest)
			fail("output set on failure", in, NULL, NULL);
	}
	return 0;
}
