/* Unit tests of common/snapshot_mac.c: the MAC imaged puts on each
 * SnapshotMount and runtimed verifies. The encoding is pinned by a vector
 * computed independently (Python's hmac over the documented encoding), is
 * unambiguous, and covers every field runtimed mounts by and the container
 * id; a changed key fails too. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/snapshot_mac.h"
#include "common/util.h"
#include "tests/unit/tap.h"

#define CID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* hmac.new(bytes(range(32)), enc, sha256) of the overlay of make_mount(). */
static const char vector_hex[] = "95922dd41d9e64b79de2867d443ad737e82b44aef1932473fbab1991b907d4da";

static uint8_t key[SNAPSHOT_KEY_LEN];

struct mount {
	CrispIpc__SnapshotMount m;
	char *lower[4], *opts[2];
	uint8_t mac[SNAPSHOT_MAC_LEN];
};

static void make_mount(struct mount *t)
{
	memset(t, 0, sizeof(*t));
	crisp_ipc__snapshot_mount__init(&t->m);
	t->m.type = (char *)"overlay";
	t->lower[0] = (char *)"/s/1/fs";
	t->lower[1] = (char *)"/s/2/fs";
	t->m.lowerdirs = t->lower;
	t->m.n_lowerdirs = 2;
	t->m.upperdir = (char *)"/s/3/fs";
	t->m.workdir = (char *)"/s/3/work";
	t->opts[0] = (char *)"userxattr";
	t->m.options = t->opts;
	t->m.n_options = 1;
}

static void sign(struct mount *t, const char *cid)
{
	snapshot_mac(key, cid, &t->m, t->mac);
	t->m.mac.data = t->mac;
	t->m.mac.len = sizeof(t->mac);
}

static bool verifies(const uint8_t *k, const char *cid, const struct mount *t)
{
	struct crisp_error err;

	err_clear(&err);
	if (snapshot_mac_verify(k, cid, &t->m, &err) == 0)
		return true;
	if (err.code != CRISP_E_PERMISSION)
		diag("unexpected code %d: %s", err.code, err.msg);
	return false;
}

static void test_vector(void)
{
	struct mount t;
	char hex[2 * SNAPSHOT_MAC_LEN + 1];

	make_mount(&t);
	sign(&t, CID_A);
	for (size_t i = 0; i < SNAPSHOT_MAC_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", t.mac[i]);
	is_str(hex, vector_hex, "the MAC matches the independently computed vector");
	ok(verifies(key, CID_A, &t), "the MAC verifies for its container");
}

static void test_fields(void)
{
	struct mount t;
	struct crisp_error err;
	uint8_t other_key[SNAPSHOT_KEY_LEN];

	make_mount(&t);
	sign(&t, CID_A);
	ok(!verifies(key, CID_B, &t), "another container id fails");
	memcpy(other_key, key, sizeof(key));
	other_key[31] ^= 1;
	ok(!verifies(other_key, CID_A, &t), "another key fails");
	ok(!verifies(NULL, CID_A, &t), "no key fails");

	t.m.type = (char *)"bind";
	ok(!verifies(key, CID_A, &t), "a changed type fails");
	make_mount(&t);
	sign(&t, CID_A);
	t.lower[0] = (char *)"/s/2/fs";
	t.lower[1] = (char *)"/s/1/fs";
	ok(!verifies(key, CID_A, &t), "lowerdirs in another order fail");
	t.lower[0] = (char *)"/s/1/fs";
	t.lower[1] = (char *)"/s/9/fs";
	ok(!verifies(key, CID_A, &t), "a swapped lowerdir fails");
	t.lower[1] = (char *)"/s/2/fs";
	t.m.n_lowerdirs = 1;
	ok(!verifies(key, CID_A, &t), "a lowerdir dropped fails");
	t.m.n_lowerdirs = 2;
	ok(verifies(key, CID_A, &t), "restored, it verifies again");
	t.m.upperdir = (char *)"/s/4/fs";
	ok(!verifies(key, CID_A, &t), "another upperdir fails");
	t.m.upperdir = (char *)"/s/3/fs";
	t.m.workdir = (char *)"/s/4/work";
	ok(!verifies(key, CID_A, &t), "another workdir fails");
	t.m.workdir = (char *)"/s/3/work";
	t.opts[0] = (char *)"metacopy=off";
	ok(!verifies(key, CID_A, &t), "another option fails");
	t.opts[0] = (char *)"userxattr";
	t.m.n_options = 0;
	ok(!verifies(key, CID_A, &t), "an option dropped fails");
	t.m.n_options = 1;

	t.mac[0] ^= 0x80;
	ok(!verifies(key, CID_A, &t), "a flipped MAC bit fails");
	t.mac[0] ^= 0x80;
	t.m.mac.len = SNAPSHOT_MAC_LEN - 1;
	ok(!verifies(key, CID_A, &t), "a truncated MAC fails");
	t.m.mac.len = 0;
	t.m.mac.data = NULL;
	err_clear(&err);
	ok(snapshot_mac_verify(key, CID_A, &t.m, &err) < 0 && err.code == CRISP_E_PERMISSION &&
		   strstr(err.msg, "no MAC"),
	   "a missing MAC fails, saying so: %s", err.msg);
}

/* Field boundaries and counts are part of the input: moving bytes from one
 * string to the next, or from the upperdir into a lowerdir, changes it. */
static void test_unambiguous(void)
{
	struct mount a, b;

	make_mount(&a);
	make_mount(&b);
	a.lower[0] = (char *)"a";
	a.lower[1] = (char *)"bc";
	b.lower[0] = (char *)"ab";
	b.lower[1] = (char *)"c";
	sign(&a, CID_A);
	sign(&b, CID_A);
	ok(memcmp(a.mac, b.mac, SNAPSHOT_MAC_LEN) != 0, "lowerdirs [a, bc] and [ab, c] differ");

	make_mount(&a);
	make_mount(&b);
	a.m.n_lowerdirs = 1;
	a.m.upperdir = (char *)"/s/2/fs";
	b.m.upperdir = (char *)"";
	sign(&a, CID_A);
	sign(&b, CID_A);
	ok(memcmp(a.mac, b.mac, SNAPSHOT_MAC_LEN) != 0,
	   "a path moved between lowerdirs and upperdir differs");

	make_mount(&a);
	make_mount(&b);
	a.m.upperdir = (char *)"/s/3/fs/s/3";
	a.m.workdir = (char *)"/work";
	sign(&a, CID_A);
	sign(&b, CID_A);
	ok(memcmp(a.mac, b.mac, SNAPSHOT_MAC_LEN) != 0, "upperdir/workdir boundary moved differs");

	make_mount(&a);
	make_mount(&b);
	b.m.upperdir = NULL;
	a.m.upperdir = (char *)"";
	sign(&a, CID_A);
	sign(&b, CID_A);
	ok(memcmp(a.mac, b.mac, SNAPSHOT_MAC_LEN) == 0, "NULL and \"\" are the same (proto3)");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	test_vector();
	test_fields();
	test_unambiguous();
	return done_testing();
}
