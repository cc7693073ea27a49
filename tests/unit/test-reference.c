/* Image reference parsing against the behaviour of distribution/reference
 * (normalize_test.go and reference_test.go, as kubelet and containerd
 * vendor it), each case run through ParseNormalizedNamed + TagNameOnly
 * (ParseAnyReference for ids), plus crisp's own rules. */
#include "autoconfig.h"

#include <string.h>

#include "imaged/reference.h"
#include "tests/unit/tap.h"

#define H64A "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
#define H64F "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define D256 "sha256:" H64F
#define D512 "sha512:" H64F H64F
#define BB "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
#define HEXNAME "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"

/* in: the reference; want: its normalized form, or NULL if it must fail
 * with a message containing err. */
struct tcase {
	const char *in, *want, *err;
};

static const struct tcase cases[] = {
	/* normalize_test.go TestValidateReferenceName, valid */
	{ "docker/docker", "docker.io/docker/docker:latest" },
	{ "library/debian", "docker.io/library/debian:latest" },
	{ "debian", "docker.io/library/debian:latest" },
	{ "docker.io/docker/docker", "docker.io/docker/docker:latest" },
	{ "docker.io/library/debian", "docker.io/library/debian:latest" },
	{ "docker.io/debian", "docker.io/library/debian:latest" },
	{ "index.docker.io/docker/docker", "docker.io/docker/docker:latest" },
	{ "index.docker.io/library/debian", "docker.io/library/debian:latest" },
	{ "index.docker.io/debian", "docker.io/library/debian:latest" },
	{ "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker:latest" },
	{ "127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian:latest" },
	{ "127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest" },
	{ "192.168.0.1", "docker.io/library/192.168.0.1:latest" },
	{ "192.168.0.1:80", "docker.io/library/192.168.0.1:80" },
	{ "192.168.0.1:8/debian", "192.168.0.1:8/debian:latest" },
	{ "192.168.0.2:25000/debian", "192.168.0.2:25000/debian:latest" },
	{ "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
	  "docker.io/library/"
	  "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest" },
	{ "[fc00::1]:5000/docker", "[fc00::1]:5000/docker:latest" },
	{ "[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker:latest" },
	{ "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
	  "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest" },
	{ "docker.io/" HEXNAME, "docker.io/library/" HEXNAME ":latest" },
	{ "Docker/docker", "Docker/docker:latest" },
	{ "DOCKER/docker", "DOCKER/docker:latest" },
	/* TestValidateReferenceName, invalid */
	{ "https://github.com/docker/docker", NULL, "invalid registry host (https:)" },
	{ "docker/Docker", NULL, "repository name (docker/Docker) must be lowercase" },
	{ "-docker", NULL, "component (-docker) must consist of" },
	{ "-docker/docker", NULL, "component (-docker) must consist of" },
	{ "-docker.io/docker/docker", NULL, "invalid registry host (-docker.io)" },
	{ "docker///docker", NULL, "has an empty component" },
	{ "docker.io/docker/Docker", NULL, "must be lowercase" },
	{ "docker.io/docker///docker", NULL, "has an empty component" },
	{ "[fc00::1]", NULL, "invalid character '['" },
	{ "[fc00::1]:5000", NULL, "invalid character '['" },
	{ "fc00::1:5000/debian", NULL, "invalid registry host (fc00::1:5000)" },
	{ "[fe80::1%eth0]:5000/debian", NULL, "invalid registry host" },
	{ "[2001:db8:3:4::192.0.2.33]:5000/debian", NULL, "invalid registry host" },
	/* TestValidateRemoteName */
	{ "docker-rules/docker", "docker.io/docker-rules/docker:latest" },
	{ "docker---rules/docker", "docker.io/docker---rules/docker:latest" },
	{ "doc/docker", "docker.io/doc/docker:latest" },
	{ "d/docker", "docker.io/d/docker:latest" },
	{ "jess/t", "docker.io/jess/t:latest" },
	{ "dock__er/docker", "docker.io/dock__er/docker:latest" },
	{ "docker-/docker", NULL, "component (docker-)" },
	{ "-docker-/docker", NULL, "component (-docker-)" },
	{ "____/____", NULL, "component (____)" },
	{ "_docker/_docker", NULL, "component (_docker)" },
	/* these have a '.', so the first component is taken as a registry */
	{ "dock..er/docker", NULL, "invalid registry host (dock..er)" },
	{ "dock_.er/docker", NULL, "invalid registry host (dock_.er)" },
	{ "dock-.er/docker", NULL, "invalid registry host (dock-.er)" },
	{ "docker/dock..er", NULL, "component (dock..er)" },
	{ "docker/dock_.er", NULL, "component (dock_.er)" },
	{ "docker/dock-.er", NULL, "component (dock-.er)" },
	{ "dock___er/docker", NULL, "component (dock___er)" },
	{ "docker/", NULL, "ends with '/'" },
	/* TestParseRepositoryInfo */
	{ "fooo/bar", "docker.io/fooo/bar:latest" },
	{ "index.docker.io/fooo/bar", "docker.io/fooo/bar:latest" },
	{ "ubuntu", "docker.io/library/ubuntu:latest" },
	{ "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu:latest" },
	{ "other/library", "docker.io/other/library:latest" },
	{ "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest" },
	{ "example.com/privatebase", "example.com/privatebase:latest" },
	{ "example.com:8000/privatebasee", "example.com:8000/privatebasee:latest" },
	{ "ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest" },
	{ "library/foo/bar", "docker.io/library/foo/bar:latest" },
	{ "store/foo/bar", "docker.io/store/foo/bar:latest" },
	{ "Foo/bar", "Foo/bar:latest" },
	/* TestParseReferenceWithTagAndDigest: both are kept */
	{ "busybox:latest@sha256:" BB, "docker.io/library/busybox:latest@sha256:" BB },
	/* TestParseAnyReference */
	{ "redis", "docker.io/library/redis:latest" },
	{ "redis:latest", "docker.io/library/redis:latest" },
	{ "redis@sha256:" H64A, "docker.io/library/redis@sha256:" H64A },
	{ "dmcgowan/myapp@sha256:" H64A, "docker.io/dmcgowan/myapp@sha256:" H64A },
	{ "docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest" },
	{ H64A, "sha256:" H64A },
	{ "sha256:" H64A, "sha256:" H64A },
	{ "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
	  "docker.io/library/"
	  "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest" },
	{ "dbcc1", "docker.io/library/dbcc1:latest" },
	/* TestNormalizedSplitHostname */
	{ "test.com/foo", "test.com/foo:latest" },
	{ "test_com/foo", "docker.io/test_com/foo:latest" },
	{ "docker/migrator", "docker.io/docker/migrator:latest" },
	{ "test.com:8080/foo", "test.com:8080/foo:latest" },
	{ "test-com:8080/foo", "test-com:8080/foo:latest" },
	{ "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest" },
	{ "docker.io/library/foo/bar", "docker.io/library/foo/bar:latest" },
	/* reference_test.go TestReferenceParse, normalized */
	{ "test_com", "docker.io/library/test_com:latest" },
	{ "test.com:tag", "docker.io/library/test.com:tag" },
	{ "test.com:5000", "docker.io/library/test.com:5000" },
	{ "test.com/repo:tag", "test.com/repo:tag" },
	{ "test:5000/repo", "test:5000/repo:latest" },
	{ "test:5000/repo:tag", "test:5000/repo:tag" },
	{ "test:5000/repo@" D256, "test:5000/repo@" D256 },
	{ "test:5000/repo:tag@" D256, "test:5000/repo:tag@" D256 },
	{ "", NULL, "at least one component" },
	{ ":justtag", NULL, "at least one component" },
	{ "@" D256, NULL, "at least one component" },
	{ "repo@sha256:ffffffffffffffffffffffffffffffffff", NULL,
	  "invalid checksum digest length" },
	{ "validname@invaliddigest:" H64F, NULL, "unsupported digest algorithm" },
	{ "Uppercase:tag", NULL, "repository name (library/Uppercase) must be lowercase" },
	{ "Uppercase/lowercase:tag", "Uppercase/lowercase:tag" },
	{ "test:5000/Uppercase/lowercase:tag", NULL, "(Uppercase/lowercase) must be lowercase" },
	{ "lowercase:Uppercase", "docker.io/library/lowercase:Uppercase" },
	{ "aa/asdf$$^/aa", NULL, "invalid character '$'" },
	{ "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com/bar/baz/quux:latest" },
	{ "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
	  "sub-dom1.foo.com/bar/baz/quux:some-long-tag" },
	{ "b.gcr.io/test.example.com/my-app:test.example.com",
	  "b.gcr.io/test.example.com/my-app:test.example.com" },
	{ "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com" },
	{ "xn--7o8h.com/myimage:xn--7o8h.com@" D512, "xn--7o8h.com/myimage:xn--7o8h.com@" D512 },
	{ "foo_bar.com:8080", "docker.io/library/foo_bar.com:8080" },
	{ "foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080" },
	{ "192.168.1.1", "docker.io/library/192.168.1.1:latest" },
	{ "192.168.1.1:tag", "docker.io/library/192.168.1.1:tag" },
	{ "192.168.1.1:5000", "docker.io/library/192.168.1.1:5000" },
	{ "192.168.1.1/repo", "192.168.1.1/repo:latest" },
	{ "192.168.1.1:5000/repo", "192.168.1.1:5000/repo:latest" },
	{ "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050" },
	{ "[2001:db8::1]", NULL, "invalid character '['" },
	{ "[2001:db8::1]:5000", NULL, "invalid character '['" },
	{ "[2001:db8::1]:tag", NULL, "invalid character '['" },
	{ "[2001:db8::1]/repo", "[2001:db8::1]/repo:latest" },
	{ "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag" },
	{ "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo:latest" },
	{ "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag" },
	{ "[2001:db8::1]:5000/repo@" D256, "[2001:db8::1]:5000/repo@" D256 },
	{ "[2001:db8::1]:5000/repo:tag@" D256, "[2001:db8::1]:5000/repo:tag@" D256 },
	{ "[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo:latest" },
	{ "[::1]:5000/repo", "[::1]:5000/repo:latest" },
	{ "[fe80::1%eth0]:5000/repo", NULL, "invalid registry host ([fe80::1%eth0]:5000)" },
	{ "[fe80::1%@invalidzone]:5000/repo", NULL, "invalid registry host" },
	/* the brief's own, and crisp's rules */
	{ "127.0.0.1:5000/x:y", "127.0.0.1:5000/x:y" },
	{ "localhost/x", "localhost/x:latest" },
	{ "localhost:5000/x", "localhost:5000/x:latest" },
	{ "localhost:5000", "docker.io/library/localhost:5000" },
	{ "[::1]:5000/x", "[::1]:5000/x:latest" },
	{ "[]:5000/x", NULL, "invalid registry host ([]:5000)" },
	{ "example.com:/x", NULL, "invalid registry host (example.com:)" },
	{ "example.com:80a/x", NULL, "invalid registry host" },
	{ "a-.com/x", NULL, "invalid registry host (a-.com)" },
	{ "a..com/x", NULL, "invalid registry host (a..com)" },
	/* upstream would take this as a domain-less name; it has no registry */
	{ "foo_bar.com/x", NULL, "invalid registry host (foo_bar.com)" },
	{ "busybox:", NULL, "empty tag" },
	{ "busybox:-x", NULL, "tag (-x) must start with" },
	{ "busybox:a:b", NULL, "tag (a:b) may contain only" },
	{ "busybox:_x.y-Z", "docker.io/library/busybox:_x.y-Z" },
	{ "busybox@", NULL, "digest () is not of the form" },
	{ "busybox@sha256:" H64F "@x", NULL, "is not of the form" },
	{ "busybox@sha256:"
	  "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
	  NULL, "hex must be lowercase" },
	{ "busybox@sha512:" H64F, NULL, "invalid checksum digest length" },
	{ "busybox@sha384:" H64F H64F, NULL, "unsupported digest algorithm" },
	{ "sha512:" H64F H64F, "sha512:" H64F H64F },
	/* 65 hex digits: neither an id nor a digest, so a name with a tag */
	{ "sha256:" H64F "f", "docker.io/library/sha256:" H64F "f" },
	{ "busy box", NULL, "invalid character ' '" },
	{ "busybox\n", NULL, "invalid character '?'" },
	{ "b\xc3\xbcsybox", NULL, "invalid character '?'" },
	{ "docker.io/", NULL, "at least one component" },
	{ "/busybox", NULL, "has an empty component" },
};

static void test_table(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct tcase *c = &cases[i];
		struct image_ref r = { 0 };
		struct crisp_error err = { 0 };
		int rc = image_ref_parse(c->in, &r, &err);

		if (c->want) {
			_cleanup_free_ char *s = NULL;

			if (!ok(rc == 0, "'%s' is valid", c->in)) {
				diag("  error: %s", err.msg);
				continue;
			}
			s = image_ref_string(&r);
			is_str(s, c->want, "'%s' normalizes", c->in);
			image_ref_free(&r);
		} else {
			ok(rc < 0 && err.code == CRISP_E_INVALID, "'%s' is invalid", c->in);
			like(err.msg, c->err, "'%s': message", c->in);
			like(err.msg, "invalid reference format", "'%s': message prefix", c->in);
			ok(!r.domain && !r.path && !r.tag && !r.digest, "'%s': nothing returned",
			   c->in);
		}
	}
}

/* Cases too long to write out. */
static void test_lengths(void)
{
	char s[2 * IMAGE_REF_MAX], want[2 * IMAGE_REF_MAX];
	struct image_ref r = { 0 };
	struct crisp_error err = { 0 };
	_cleanup_free_ char *got = NULL;

	/* reference_test.go: the path may have 255 characters, not 257 */
	strcpy(s, "");
	for (int i = 0; i < 128; i++)
		strcat(s, "a/");
	strcat(s, "a:tag");
	ok(image_ref_parse(s, &r, &err) < 0, "path of 257 characters is too long");
	like(err.msg, "must not be more than 255 characters", "message says so");
	strcpy(s, "");
	for (int i = 0; i < 127; i++)
		strcat(s, "a/");
	strcat(s, "a:tag-puts-this-over-max");
	ok(image_ref_parse(s, &r, &err) == 0, "path of 255 characters is fine");
	got = image_ref_string(&r);
	snprintf(want, sizeof(want), "docker.io/%s", s);
	is_str(got, want, "and is kept as it is");
	image_ref_free(&r);

	/* "library/" counts: a single component may have 247 characters */
	memset(s, 'a', 247);
	s[247] = '\0';
	ok(image_ref_parse(s, &r, &err) == 0, "247-character single name is fine");
	image_ref_free(&r);
	memset(s, 'a', 248);
	s[248] = '\0';
	ok(image_ref_parse(s, &r, &err) < 0, "248-character single name is too long with library/");

	/* tags up to 128 characters */
	strcpy(s, "busybox:");
	memset(s + 8, 't', 128);
	s[8 + 128] = '\0';
	ok(image_ref_parse(s, &r, &err) == 0, "128-character tag is fine");
	image_ref_free(&r);
	strcat(s, "t");
	ok(image_ref_parse(s, &r, &err) < 0, "129-character tag is not");
	like(err.msg, "longer than 128 characters", "message says so");

	/* the whole input is bounded before anything else */
	memset(s, 'a', IMAGE_REF_MAX + 1);
	s[IMAGE_REF_MAX + 1] = '\0';
	ok(image_ref_parse(s, &r, &err) < 0, "input over IMAGE_REF_MAX is refused");
	like(err.msg, "longer than", "message says so");
}

struct ftcase {
	const char *in, *domain, *path, *tag, *digest, *repo, *familiar, *host;
};

static const struct ftcase fields[] = {
	{ "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox",
	  "busybox:latest", "registry-1.docker.io" },
	{ "index.docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", NULL,
	  "docker.io/library/ubuntu", "ubuntu:22.04", "registry-1.docker.io" },
	{ "docker.io/foo", "docker.io", "library/foo", "latest", NULL, "docker.io/library/foo",
	  "foo:latest", "registry-1.docker.io" },
	{ "library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL,
	  "docker.io/library/foo/bar", "library/foo/bar:latest", "registry-1.docker.io" },
	{ "dmcgowan/myapp@sha256:" H64A, "docker.io", "dmcgowan/myapp", NULL, "sha256:" H64A,
	  "docker.io/dmcgowan/myapp", "dmcgowan/myapp@sha256:" H64A, "registry-1.docker.io" },
	{ "busybox:latest@sha256:" BB, "docker.io", "library/busybox", "latest", "sha256:" BB,
	  "docker.io/library/busybox", "busybox:latest@sha256:" BB, "registry-1.docker.io" },
	{ "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase", "latest", NULL,
	  "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest",
	  "127.0.0.1:8000" },
	{ "[::1]:5000/x", "[::1]:5000", "x", "latest", NULL, "[::1]:5000/x", "[::1]:5000/x:latest",
	  "[::1]:5000" },
	{ "localhost/x", "localhost", "x", "latest", NULL, "localhost/x", "localhost/x:latest",
	  "localhost" },
	{ "FOO/bar", "FOO", "bar", "latest", NULL, "FOO/bar", "FOO/bar:latest", "FOO" },
	{ H64A, NULL, NULL, NULL, "sha256:" H64A, NULL, "sha256:" H64A, NULL },
};

static void test_fields(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const struct ftcase *c = &fields[i];
		struct image_ref r = { 0 };
		struct crisp_error err = { 0 };
		_cleanup_free_ char *repo = NULL, *familiar = NULL;

		if (!ok(image_ref_parse(c->in, &r, &err) == 0, "'%s' parses", c->in)) {
			diag("  error: %s", err.msg);
			continue;
		}
		is_str(r.domain, c->domain, "'%s': domain", c->in);
		is_str(r.path, c->path, "'%s': path", c->in);
		is_str(r.tag, c->tag, "'%s': tag", c->in);
		is_str(r.digest, c->digest, "'%s': digest", c->in);
		is_int(image_ref_is_id(&r), !c->path, "'%s': is an id or not", c->in);
		repo = image_ref_repo(&r);
		is_str(repo, c->repo, "'%s': repo", c->in);
		familiar = image_ref_familiar(&r);
		is_str(familiar, c->familiar, "'%s': familiar", c->in);
		is_str(image_ref_registry_host(&r), c->host, "'%s': registry host", c->in);
		image_ref_free(&r);
		ok(!r.domain && !r.path && !r.tag && !r.digest, "'%s': freed and zeroed", c->in);
	}
	image_ref_free(NULL);
}

static void test_digest_valid(void)
{
	ok(digest_valid("sha256:" H64A), "sha256 digest");
	ok(digest_valid(D512), "sha512 digest");
	ok(!digest_valid(NULL), "NULL");
	ok(!digest_valid(""), "empty");
	ok(!digest_valid(H64A), "no algorithm");
	ok(!digest_valid("sha256:" H64A "0"), "65 digits");
	ok(!digest_valid("sha256:" H64F H64F), "128 digits for sha256");
	ok(!digest_valid("sha512:" H64F), "64 digits for sha512");
	ok(!digest_valid("SHA256:" H64A), "upper-case algorithm");
	ok(!digest_valid("sha256:DBCC1C35AC38DF41FD2F5E4130B32FFDB93EBAE8B3DBE638C23575912276FC9C"),
	   "upper-case hex");
	ok(!digest_valid("sha256:" H64A " "), "trailing space");
	ok(!digest_valid("md5:" H64A), "unsupported algorithm");
	ok(!digest_valid("sha256:gbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"),
	   "non-hex digit");
}

int main(void)
{
	test_table();
	test_lengths();
	test_fields();
	test_digest_valid();
	return done_testing();
}
