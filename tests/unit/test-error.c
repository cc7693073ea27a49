/* Unit tests of common/error.c: the error struct every fallible function
 * fills, its errno form, the context prefixes it gathers on the way up, and
 * the code names logs and the frontend use. */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include "common/error.h"
#include "tests/unit/tap.h"

/* An error followed by a canary: a write past msg[] shows up as a changed
 * canary even without valgrind. */
struct guarded {
	struct crisp_error e;
	unsigned char canary[64];
};

static void guard_init(struct guarded *g)
{
	memset(&g->e, 0x5a, sizeof(g->e)); /* no NUL anywhere: stale garbage */
	memset(g->canary, 0xa5, sizeof(g->canary));
}

static bool guard_intact(const struct guarded *g)
{
	for (size_t i = 0; i < sizeof(g->canary); i++)
		if (g->canary[i] != 0xa5)
			return false;
	return true;
}

static bool nul_terminated(const struct crisp_error *e)
{
	return memchr(e->msg, '\0', sizeof(e->msg)) != NULL;
}

static bool all_char(const char *s, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != c)
			return false;
	return true;
}

static void test_set(void)
{
	struct guarded g;

	guard_init(&g);
	is_int(err_set(&g.e, CRISP_E_NOT_FOUND, "pod %s not found (%d)", "nginx", 3), -1,
	       "err_set returns -1");
	is_int(g.e.code, CRISP_E_NOT_FOUND, "err_set sets the code");
	is_str(g.e.msg, "pod nginx not found (3)", "err_set formats the message");
	is_int(err_set(NULL, CRISP_E_INVALID, "x"), -1, "err_set(NULL, ...) returns -1");

	err_clear(&g.e);
	is_int(g.e.code, CRISP_E_OK, "err_clear resets the code");
	is_str(g.e.msg, "", "err_clear empties the message");
	err_clear(NULL);
	ok(1, "err_clear(NULL) is harmless");
}

static void test_set_errno(void)
{
	struct guarded g;
	char want[CRISP_ERRMSG_MAX];

	guard_init(&g);
	snprintf(want, sizeof(want), "open /etc/crisp: %s", strerror(ENOENT));
	is_int(err_set_errno(&g.e, CRISP_E_INTERNAL, ENOENT, "open %s", "/etc/crisp"), -1,
	       "err_set_errno returns -1");
	is_int(g.e.code, CRISP_E_INTERNAL, "err_set_errno sets the code");
	is_str(g.e.msg, want, "err_set_errno appends strerror");

	guard_init(&g);
	snprintf(want, sizeof(want), "writing blob: %s", strerror(ENOSPC));
	err_set_errno(&g.e, CRISP_E_INTERNAL, ENOSPC, "writing blob");
	is_int(g.e.code, CRISP_E_RESOURCE, "ENOSPC is CRISP_E_RESOURCE, whatever the caller said");
	is_str(g.e.msg, want, "ENOSPC's message says the disk is full");
	err_set_errno(&g.e, CRISP_E_INVALID, -EDQUOT, "mkdir");
	is_int(g.e.code, CRISP_E_RESOURCE, "so is a negative EDQUOT");

	guard_init(&g);
	snprintf(want, sizeof(want), "mkdir: %s", strerror(EACCES));
	err_set_errno(&g.e, CRISP_E_PERMISSION, -EACCES, "mkdir");
	is_str(g.e.msg, want, "err_set_errno takes a negative errno too");
	is_int(err_set_errno(NULL, CRISP_E_INTERNAL, EIO, "x"), -1,
	       "err_set_errno(NULL, ...) returns -1");
}

static void test_truncation(void)
{
	char big[4 * CRISP_ERRMSG_MAX];
	struct guarded g;

	/* A message longer than the buffer keeps its start. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = 'S';
	guard_init(&g);
	err_set(&g.e, CRISP_E_INVALID, "%s", big);
	ok(nul_terminated(&g.e), "long err_set message is NUL-terminated");
	is_int(strlen(g.e.msg), CRISP_ERRMSG_MAX - 1, "long err_set message fills the buffer");
	ok(g.e.msg[0] == 'S' && all_char(g.e.msg + 1, CRISP_ERRMSG_MAX - 2, 'a'),
	   "long err_set message keeps its start");
	ok(guard_intact(&g), "long err_set message stays inside the buffer");

	/* errno text on a full buffer: dropped, still terminated */
	guard_init(&g);
	err_set_errno(&g.e, CRISP_E_INTERNAL, EIO, "%s", big);
	ok(nul_terminated(&g.e) && strlen(g.e.msg) == CRISP_ERRMSG_MAX - 1,
	   "err_set_errno on a full message stays NUL-terminated");
	ok(g.e.msg[0] == 'S', "err_set_errno on a full message keeps its start");
	ok(guard_intact(&g), "err_set_errno on a full message stays inside the buffer");

	/* errno text on a nearly full buffer: cut, still terminated */
	guard_init(&g);
	err_set_errno(&g.e, CRISP_E_INTERNAL, EIO, "%.*s", CRISP_ERRMSG_MAX - 5, big);
	ok(nul_terminated(&g.e) && strlen(g.e.msg) == CRISP_ERRMSG_MAX - 1,
	   "err_set_errno cut in its errno text stays NUL-terminated");
	ok(strncmp(g.e.msg + CRISP_ERRMSG_MAX - 5, ": I", 3) == 0,
	   "err_set_errno cut in its errno text keeps the start of it");
	ok(guard_intact(&g), "err_set_errno cut stays inside the buffer");
}

static void test_prefix(void)
{
	char big[4 * CRISP_ERRMSG_MAX];
	struct guarded g;

	guard_init(&g);
	err_set(&g.e, CRISP_E_EXISTS, "already there");
	is_int(err_prefix(&g.e, "create %s", "pod1"), -1, "err_prefix returns -1");
	is_str(g.e.msg, "create pod1: already there", "err_prefix adds 'ctx: '");
	err_prefix(&g.e, "RunPodSandbox");
	is_str(g.e.msg, "RunPodSandbox: create pod1: already there", "err_prefix nests");
	is_int(g.e.code, CRISP_E_EXISTS, "err_prefix keeps the code");
	is_int(err_prefix(NULL, "x"), -1, "err_prefix(NULL, ...) returns -1");

	/* A full message under a prefix: the prefix and the start survive. */
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	guard_init(&g);
	err_set(&g.e, CRISP_E_INVALID, "%s", big);
	err_prefix(&g.e, "ctx");
	ok(nul_terminated(&g.e), "prefixing a full message stays NUL-terminated");
	is_int(strlen(g.e.msg), CRISP_ERRMSG_MAX - 1, "prefixing a full message fills the buffer");
	ok(strncmp(g.e.msg, "ctx: mmm", 8) == 0, "prefixing a full message keeps prefix and start");
	ok(guard_intact(&g), "prefixing a full message stays inside the buffer");

	/* A prefix longer than the buffer: it is cut, the result still fits. */
	memset(big, 'p', sizeof(big) - 1);
	big[0] = 'P';
	guard_init(&g);
	err_set(&g.e, CRISP_E_INVALID, "old message");
	err_prefix(&g.e, "%s", big);
	ok(nul_terminated(&g.e), "a huge prefix stays NUL-terminated");
	ok(g.e.msg[0] == 'P' && g.e.msg[1] == 'p', "a huge prefix keeps its start");
	like(g.e.msg, ": old message", "a huge prefix is cut to leave room for the message");
	ok(guard_intact(&g), "a huge prefix stays inside the buffer");

	/* Both huge. */
	memset(big, 'q', sizeof(big) - 1);
	guard_init(&g);
	err_set(&g.e, CRISP_E_INVALID, "%s", big);
	for (int i = 0; i < 5; i++)
		err_prefix(&g.e, "%s", big);
	ok(nul_terminated(&g.e) && strlen(g.e.msg) == CRISP_ERRMSG_MAX - 1,
	   "repeated huge prefixes stay NUL-terminated and in bounds");
	ok(guard_intact(&g), "repeated huge prefixes stay inside the buffer");
}

static void test_code_names(void)
{
	static const struct {
		enum crisp_errcode code;
		const char *name;
	} want[] = {
		{ CRISP_E_OK, "ok" },
		{ CRISP_E_INVALID, "invalid" },
		{ CRISP_E_NOT_FOUND, "not-found" },
		{ CRISP_E_EXISTS, "exists" },
		{ CRISP_E_PRECONDITION, "precondition" },
		{ CRISP_E_RESOURCE, "resource" },
		{ CRISP_E_UNAVAILABLE, "unavailable" },
		{ CRISP_E_TIMEOUT, "timeout" },
		{ CRISP_E_PERMISSION, "permission" },
		{ CRISP_E_UNIMPLEMENTED, "unimplemented" },
		{ CRISP_E_INTERNAL, "internal" },
	};
	bool all_named = true, distinct = true;

	is_int(ARRAY_SIZE(want), CRISP_E__MAX, "every code is listed in this test");
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		is_str(err_code_name(want[i].code), want[i].name, "err_code_name(%d)",
		       want[i].code);
	for (int i = 0; i < CRISP_E__MAX; i++) {
		const char *n = err_code_name(i);
		if (!n || streq(n, "unknown"))
			all_named = false;
		for (int j = 0; j < i; j++)
			if (streq(n, err_code_name(j)))
				distinct = false;
	}
	ok(all_named, "every code has a name");
	ok(distinct, "code names are distinct");
	is_str(err_code_name(CRISP_E__MAX), "unknown", "err_code_name(CRISP_E__MAX) is 'unknown'");
	is_str(err_code_name((enum crisp_errcode) - 1), "unknown",
	       "err_code_name(-1) is 'unknown'");
	is_str(err_code_name((enum crisp_errcode)1000), "unknown",
	       "err_code_name(1000) is 'unknown'");
}

int main(void)
{
	test_set();
	test_set_errno();
	test_truncation();
	test_prefix();
	test_code_names();
	return done_testing();
}
