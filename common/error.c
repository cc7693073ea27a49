#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

static const char *const code_names[CRISP_E__MAX] = {
	[CRISP_E_OK] = "ok",
	[CRISP_E_INVALID] = "invalid",
	[CRISP_E_NOT_FOUND] = "not-found",
	[CRISP_E_EXISTS] = "exists",
	[CRISP_E_PRECONDITION] = "precondition",
	[CRISP_E_RESOURCE] = "resource",
	[CRISP_E_UNAVAILABLE] = "unavailable",
	[CRISP_E_TIMEOUT] = "timeout",
	[CRISP_E_PERMISSION] = "permission",
	[CRISP_E_UNIMPLEMENTED] = "unimplemented",
	[CRISP_E_INTERNAL] = "internal",
};

const char *err_code_name(enum crisp_errcode code)
{
	if ((unsigned)code >= CRISP_E__MAX)
		return "unknown";
	return code_names[code];
}

static int err_vset(struct crisp_error *err, enum crisp_errcode code, const char *fmt, va_list ap)
	_printf_(3, 0);
static int err_vset(struct crisp_error *err, enum crisp_errcode code, const char *fmt, va_list ap)
{
	if (!err)
		return -1;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int err_set(struct crisp_error *err, enum crisp_errcode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int err_set_errno(struct crisp_error *err, enum crisp_errcode code, int errnum, const char *fmt,
		  ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return -1;
	/* A full disk or an exhausted quota is a limit of the host, not a bug,
	 * whatever the caller expected: gRPC's RESOURCE_EXHAUSTED is meant for
	 * "the entire file system is out of space", and the kubelet's image GC
	 * and eviction act on it, where INTERNAL would read as crisp's fault. */
	if (errnum == ENOSPC || errnum == -ENOSPC || errnum == EDQUOT || errnum == -EDQUOT)
		code = CRISP_E_RESOURCE;
	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
		 strerror(errnum < 0 ? -errnum : errnum));
	return -1;
}

int err_prefix(struct crisp_error *err, const char *fmt, ...)
{
	char prefix[CRISP_ERRMSG_MAX / 2], old[CRISP_ERRMSG_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation keeps the start of the message, which is what matters. */
	if (snprintf(err->msg, sizeof(err->msg), "%s: %.*s", prefix,
		     (int)(sizeof(err->msg) - strlen(prefix) - 3), old) < 0)
		err->msg[0] = '\0';
	return -1;
}

void err_clear(struct crisp_error *err)
{
	if (err) {
		err->code = CRISP_E_OK;
		err->msg[0] = '\0';
	}
}
