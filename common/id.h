/* The ids crisp's helpers take for pods and containers: 64 lowercase hex
 * digits, as the frontend makes them. One definition for netd, runtimed and
 * the checks crisp-launch runs for them (launch/policy.h), which must agree
 * on it. Header only: crisp-launch is linked against musl. */
#ifndef CRISP_COMMON_ID_H
#define CRISP_COMMON_ID_H

#include <stdbool.h>
#include <string.h>

#define ID_HEX_LEN 64

static inline bool id_hex_valid(const char *id)
{
	if (!id || strnlen(id, ID_HEX_LEN + 1) != ID_HEX_LEN)
		return false;
	for (size_t i = 0; i < ID_HEX_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

#endif
