#include "autoconfig.h"

#include <string.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "common/snapshot_mac.h"
#include "common/util.h"

/* Changes whenever the encoding does: a MAC of one never verifies as the
 * other. */
static const char mac_domain[] = "crisp snapshot mount v1";

static void put_u32(struct hmac_sha256_ctx *h, uint32_t v)
{
	uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };

	hmac_sha256_update(h, sizeof(b), b);
}

static void put_str(struct hmac_sha256_ctx *h, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	put_u32(h, (uint32_t)n);
	hmac_sha256_update(h, n, (const uint8_t *)(s ? s : ""));
}

void snapshot_mac(const uint8_t key[SNAPSHOT_KEY_LEN], const char *container_id,
		  const CrispIpc__SnapshotMount *m, uint8_t out[SNAPSHOT_MAC_LEN])
{
	struct hmac_sha256_ctx h;

	hmac_sha256_set_key(&h, SNAPSHOT_KEY_LEN, key);
	put_str(&h, mac_domain);
	put_str(&h, container_id);
	put_str(&h, m->type);
	put_u32(&h, (uint32_t)m->n_lowerdirs);
	for (size_t i = 0; i < m->n_lowerdirs; i++)
		put_str(&h, m->lowerdirs[i]);
	put_str(&h, m->upperdir);
	put_str(&h, m->workdir);
	put_u32(&h, (uint32_t)m->n_options);
	for (size_t i = 0; i < m->n_options; i++)
		put_str(&h, m->options[i]);
	hmac_sha256_digest(&h, SNAPSHOT_MAC_LEN, out);
	/* The context holds the key's inner and outer pads. */
	explicit_bzero(&h, sizeof(h));
}

int snapshot_mac_verify(const uint8_t *key, const char *container_id,
			const CrispIpc__SnapshotMount *m, struct crisp_error *err)
{
	uint8_t want[SNAPSHOT_MAC_LEN];
	int ok;

	if (!key)
		return err_set(err, CRISP_E_PERMISSION,
			       "rootfs: no snapshot key from crispd yet to verify it with");
	if (!m)
		return err_set(err, CRISP_E_PERMISSION, "rootfs: no snapshot mount");
	if (m->mac.len == 0)
		return err_set(err, CRISP_E_PERMISSION,
			       "rootfs: the snapshot mount carries no MAC from imaged");
	if (m->mac.len != SNAPSHOT_MAC_LEN)
		return err_set(err, CRISP_E_PERMISSION,
			       "rootfs: the snapshot mount's MAC is %zu bytes, not %d", m->mac.len,
			       SNAPSHOT_MAC_LEN);
	snapshot_mac(key, container_id, m, want);
	ok = memeql_sec(want, m->mac.data, SNAPSHOT_MAC_LEN);
	explicit_bzero(want, sizeof(want));
	if (!ok)
		return err_set(err, CRISP_E_PERMISSION,
			       "rootfs: the snapshot mount is not the one imaged prepared for "
			       "container %.64s (its MAC does not verify)",
			       container_id ? container_id : "");
	return 0;
}
