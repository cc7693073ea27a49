/* The value helpers of imaged/registry.h, shared by both implementations of
 * that API: the real client in crisp-fetch (fetch/registry.c) and imaged's
 * proxy to it (imaged/fetch_client.c). */
#include "autoconfig.h"

#include <string.h>

#include "common/util.h"
#include "imaged/registry.h"

void registry_options_init(struct registry_options *opt)
{
	*opt = (struct registry_options){
		.user_agent = "crisp/" CRISP_VERSION,
		.max_transfers = 3,
		.low_speed_timeout = 60,
		.max_retries = 5,
		.retry_delay_ms = 500,
	};
}

static void wipe_str(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void registry_auth_free(struct registry_auth *a)
{
	if (!a)
		return;
	wipe_str(a->username);
	wipe_str(a->password);
	wipe_str(a->auth);
	wipe_str(a->identity_token);
	wipe_str(a->registry_token);
	explicit_bzero(a, sizeof(*a));
	free(a);
}
