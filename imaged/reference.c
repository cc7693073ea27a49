/* Image reference parsing: the normalization kubelet and containerd apply
 * (distribution/reference ParseAnyReference + ParseNormalizedNamed +
 * TagNameOnly), written out as a small scanner over the grammar in
 * reference.h so that an error can say which part is wrong. The input comes
 * straight from CRI requests, so everything is bounded and every byte is
 * checked against the grammar before anything is copied. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "imaged/reference.h"

#define REFERENCE_INVALID "invalid reference format"
#define LIBRARY_PREFIX "library/"
#define LEGACY_DOMAIN "index.docker.io"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_lower_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* \w in the Go regexps of distribution/reference */
static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

/* Part of the untrusted input, made fit for an error message that ends up
 * in logs and gRPC status text: bounded, control and non-ASCII bytes as '?'. */
struct excerpt {
	char s[80];
};

static const char *excerpt(struct excerpt *e, const char *s, size_t n)
{
	size_t max = sizeof(e->s) - 4, i;

	for (i = 0; i < n && i < max; i++)
		e->s[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	if (i < n) {
		memcpy(e->s + i, "...", 3);
		i += 3;
	}
	e->s[i] = '\0';
	return e->s;
}

/* What is wrong with the digest d[0..n), or NULL if it is valid. The order
 * of the checks is go-digest's (Parse → Validate), after the reference
 * grammar's own digest pattern:
 * [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,} */
static const char *digest_problem(const char *d, size_t n)
{
	size_t i = 0, alg_len, hex_len, want;

	for (;;) {
		if (i >= n || !is_alpha(d[i]))
			return "is not of the form algorithm:hex";
		while (i < n && is_alnum(d[i]))
			i++;
		if (i < n && (d[i] == '-' || d[i] == '_' || d[i] == '+' || d[i] == '.'))
			i++;
		else
			break;
	}
	if (i >= n || d[i] != ':')
		return "is not of the form algorithm:hex";
	alg_len = i++;
	for (hex_len = 0; i < n; i++, hex_len++)
		if (!is_xdigit(d[i]))
			return "is not of the form algorithm:hex";
	if (hex_len < 32)
		return "is not of the form algorithm:hex (at least 32 hex digits)";

	if (alg_len == 6 && memcmp(d, "sha256", 6) == 0)
		want = 64;
	else if (alg_len == 6 && memcmp(d, "sha512", 6) == 0)
		want = 128;
	else
		return "uses an unsupported digest algorithm (only sha256 and sha512 are)";
	if (hex_len != want)
		return "has an invalid checksum digest length";
	for (i = alg_len + 1; i < n; i++)
		if (!is_lower_hex(d[i]))
			return "has an invalid checksum digest format (hex must be lowercase)";
	return NULL;
}

bool digest_valid(const char *d)
{
	return d && digest_problem(d, strlen(d)) == NULL;
}

/* domain := host [":" port]; host := domain-name | "[" [a-fA-F0-9:]+ "]". */
static bool domain_valid(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 0 && s[0] == '[') {
		for (i = 1; i < n && (is_xdigit(s[i]) || s[i] == ':'); i++)
			;
		if (i == 1 || i >= n || s[i] != ']')
			return false;
		i++;
	} else {
		/* components [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], '.'-separated */
		for (;;) {
			if (i >= n || !is_alnum(s[i]))
				return false;
			while (i < n && (is_alnum(s[i]) || s[i] == '-'))
				i++;
			if (s[i - 1] == '-')
				return false;
			if (i < n && s[i] == '.')
				i++;
			else
				break;
		}
	}
	if (i < n && s[i] == ':') {
		if (++i >= n)
			return false;
		while (i < n && is_digit(s[i]))
			i++;
	}
	return i == n;
}

/* path := component ("/" component)*, component := [a-z0-9]+ (sep [a-z0-9]+)*
 * with sep one of ".", "_", "__", "-"+. p[0..n) holds only [a-z0-9._/-]. */
static int path_check(const char *p, size_t n, struct crisp_error *err)
{
	struct excerpt e;
	size_t i = 0, start;

	for (;;) {
		start = i;
		if (i >= n || p[i] == '/')
			return err_set(err, CRISP_E_INVALID,
				       REFERENCE_INVALID
				       ": repository name (%s) has an empty component",
				       excerpt(&e, p, n));
		while (i < n && p[i] != '/') {
			size_t sep = i;

			if (is_lower_alnum(p[i])) {
				i++;
				continue;
			}
			if (p[i] == '_')
				i += i + 1 < n && p[i + 1] == '_' ? 2 : 1;
			else if (p[i] == '-')
				while (i < n && p[i] == '-')
					i++;
			else
				i++; /* '.' */
			if (sep == start || i >= n || !is_lower_alnum(p[i])) {
				size_t end = i;
				while (end < n && p[end] != '/')
					end++;
				return err_set(err, CRISP_E_INVALID,
					       REFERENCE_INVALID
					       ": repository name component (%s) must consist of "
					       "lowercase letters and digits separated by '.', "
					       "'_', '__' or dashes",
					       excerpt(&e, p + start, end - start));
			}
		}
		if (i >= n)
			return 0;
		i++; /* '/' */
		if (i >= n)
			return err_set(err, CRISP_E_INVALID,
				       REFERENCE_INVALID ": repository name (%s) ends with '/'",
				       excerpt(&e, p, n));
	}
}

/* tag := [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */
static int tag_check(const char *t, size_t n, struct crisp_error *err)
{
	struct excerpt e;

	if (n == 0)
		return err_set(err, CRISP_E_INVALID, REFERENCE_INVALID ": empty tag after ':'");
	if (n > IMAGE_REF_TAG_MAX)
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID ": tag (%s) is longer than %d characters",
			       excerpt(&e, t, n), IMAGE_REF_TAG_MAX);
	if (!is_word(t[0]))
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID
			       ": tag (%s) must start with a letter, digit or '_'",
			       excerpt(&e, t, n));
	for (size_t i = 1; i < n; i++)
		if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
			return err_set(
				err, CRISP_E_INVALID,
				REFERENCE_INVALID
				": tag (%s) may contain only letters, digits, '_', '.' and '-'",
				excerpt(&e, t, n));
	return 0;
}

static char *dup_span(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* A name as it is taken apart: views into the input, nothing owned. */
struct name_parts {
	const char *domain, *prefix, *rest, *tag, *digest;
	size_t domain_len, rest_len, path_len, tag_len, digest_len;
};

static bool span_eq(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* splitDockerDomain: which part of s is the registry, and whether the path
 * gets "library/" in front. */
static void split_domain(const char *s, size_t len, struct name_parts *p)
{
	const char *slash = memchr(s, '/', len);

	p->domain = IMAGE_REF_DEFAULT_DOMAIN;
	p->domain_len = strlen(IMAGE_REF_DEFAULT_DOMAIN);
	p->rest = s;
	p->rest_len = len;
	if (slash) {
		size_t n = slash - s;

		if (span_eq(s, n, LEGACY_DOMAIN)) {
			p->rest = slash + 1;
		} else if (span_eq(s, n, "localhost") || memchr(s, '.', n) || memchr(s, ':', n) ||
			   has_upper(s, n)) {
			/* Path components are lowercase and have no ':', and
			 * registries have a '.' or a port (or are localhost): so
			 * such a first component can only be meant as a domain. */
			p->domain = s;
			p->domain_len = n;
			p->rest = slash + 1;
		}
		p->rest_len = len - (p->rest - s);
	}
	/* "docker.io/ubuntu" means "docker.io/library/ubuntu", on Docker Hub only */
	p->prefix = "";
	if (span_eq(p->domain, p->domain_len, IMAGE_REF_DEFAULT_DOMAIN) &&
	    !memchr(p->rest, '/', p->rest_len))
		p->prefix = LIBRARY_PREFIX;
}

/* The repository: lowercase, a valid domain, path grammar and length. */
static int name_check(struct name_parts *p, struct crisp_error *err)
{
	const char *rest = p->rest;
	size_t remote_len, n;
	struct excerpt e, e1;

	/* Upstream's own check first: the repository part ends at the first ':'. */
	for (remote_len = 0; remote_len < p->rest_len && rest[remote_len] != ':'; remote_len++)
		;
	if (has_upper(rest, remote_len))
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID ": repository name (%s%s) must be lowercase",
			       p->prefix, excerpt(&e, rest, remote_len));
	if (!domain_valid(p->domain, p->domain_len))
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID ": invalid registry host (%s)",
			       excerpt(&e, p->domain, p->domain_len));

	for (n = 0; n < p->rest_len; n++) {
		char c = rest[n];
		if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '/' && c != '-')
			break;
	}
	if (n < p->rest_len && rest[n] != ':' && rest[n] != '@')
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID
			       ": invalid character '%s' in repository name (%s%s)",
			       excerpt(&e1, rest + n, 1), p->prefix, excerpt(&e, rest, remote_len));
	if (n == 0)
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID
			       ": repository name must have at least one component");
	if (path_check(rest, n, err) < 0)
		return -1;
	if (strlen(p->prefix) + n > IMAGE_REF_PATH_MAX)
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID
			       ": repository name must not be more than %d characters",
			       IMAGE_REF_PATH_MAX);
	p->path_len = n;
	return 0;
}

/* What follows the path: [":" tag] ["@" digest], and nothing else (the
 * path ended at a ':' or '@' or the end, name_check made sure). */
static int suffix_check(struct name_parts *p, struct crisp_error *err)
{
	const char *rest = p->rest, *problem;
	size_t i = p->path_len;
	struct excerpt e;

	if (i < p->rest_len && rest[i] == ':') {
		p->tag = rest + ++i;
		while (i < p->rest_len && rest[i] != '@')
			i++;
		p->tag_len = rest + i - p->tag;
		if (tag_check(p->tag, p->tag_len, err) < 0)
			return -1;
	}
	if (i < p->rest_len && rest[i] == '@') {
		p->digest = rest + ++i;
		p->digest_len = p->rest_len - i;
		problem = digest_problem(p->digest, p->digest_len);
		if (problem)
			return err_set(err, CRISP_E_INVALID, REFERENCE_INVALID ": digest (%s) %s",
				       excerpt(&e, p->digest, p->digest_len), problem);
	}
	return 0;
}

/* ParseNormalizedNamed, then TagNameOnly. */
static int parse_named(const char *s, size_t len, struct image_ref *ret, struct crisp_error *err)
{
	struct name_parts p = { 0 };

	split_domain(s, len, &p);
	if (name_check(&p, err) < 0 || suffix_check(&p, err) < 0)
		return -1;
	ret->domain = dup_span(p.domain, p.domain_len);
	ret->path = xasprintf("%s%.*s", p.prefix, (int)p.path_len, p.rest);
	/* TagNameOnly: a name alone means :latest. */
	if (p.tag)
		ret->tag = dup_span(p.tag, p.tag_len);
	else if (!p.digest)
		ret->tag = xstrdup(IMAGE_REF_DEFAULT_TAG);
	if (p.digest)
		ret->digest = dup_span(p.digest, p.digest_len);
	return 0;
}

int image_ref_parse(const char *s, struct image_ref *ret, struct crisp_error *err)
{
	struct image_ref r = { 0 };
	size_t len, i;

	if (!s || !*s)
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID
			       ": repository name must have at least one component");
	len = strnlen(s, IMAGE_REF_MAX + 1);
	if (len > IMAGE_REF_MAX)
		return err_set(err, CRISP_E_INVALID,
			       REFERENCE_INVALID ": longer than %d characters", IMAGE_REF_MAX);

	/* ParseAnyReference: an identifier (64 lowercase hex) or a bare digest
	 * names an image by id; upstream refuses the former as a name. */
	for (i = 0; i < len && is_lower_hex(s[i]); i++)
		;
	if (len == 64 && i == len)
		r.digest = xasprintf("sha256:%s", s);
	else if (digest_problem(s, len) == NULL)
		r.digest = xstrdup(s);
	else if (parse_named(s, len, &r, err) < 0)
		return -1;
	*ret = r;
	return 0;
}

char *image_ref_repo(const struct image_ref *r)
{
	if (image_ref_is_id(r))
		return NULL;
	return xasprintf("%s/%s", r->domain, r->path);
}

static char *with_suffixes(const char *name, const struct image_ref *r)
{
	return xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "",
			 r->digest ? "@" : "", r->digest ? r->digest : "");
}

char *image_ref_string(const struct image_ref *r)
{
	_cleanup_free_ char *repo = NULL;

	if (image_ref_is_id(r))
		return xstrdup(r->digest);
	repo = image_ref_repo(r);
	return with_suffixes(repo, r);
}

char *image_ref_familiar(const struct image_ref *r)
{
	_cleanup_free_ char *name = NULL;
	const char *path = r->path;

	if (image_ref_is_id(r))
		return xstrdup(r->digest);
	if (!streq(r->domain, IMAGE_REF_DEFAULT_DOMAIN))
		return image_ref_string(r);
	/* familiarizeName: docker.io goes, and "library/" too unless more
	 * components follow ("library/foo/bar" stays as it is). */
	if (strncmp(path, LIBRARY_PREFIX, strlen(LIBRARY_PREFIX)) == 0 &&
	    !strchr(path + strlen(LIBRARY_PREFIX), '/'))
		path += strlen(LIBRARY_PREFIX);
	name = xstrdup(path);
	return with_suffixes(name, r);
}

const char *image_ref_registry_host(const struct image_ref *r)
{
	if (image_ref_is_id(r))
		return NULL;
	if (streq(r->domain, IMAGE_REF_DEFAULT_DOMAIN))
		return IMAGE_REF_DOCKER_HUB_HOST;
	return r->domain;
}

void image_ref_free(struct image_ref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	*r = (struct image_ref){ 0 };
}
