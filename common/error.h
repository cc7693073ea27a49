/* The error every fallible crisp operation reports: a code that survives the
 * trip across ipc/ and a message that says what went wrong. Only the frontend
 * turns codes into gRPC status codes. */
#ifndef CRISP_COMMON_ERROR_H
#define CRISP_COMMON_ERROR_H

#include "common/util.h"

enum crisp_errcode {
	CRISP_E_OK = 0,
	CRISP_E_INVALID,       /* the request is malformed or names bad values */
	CRISP_E_NOT_FOUND,     /* the object does not exist */
	CRISP_E_EXISTS,        /* the object already exists */
	CRISP_E_PRECONDITION,  /* the object is not in a state that allows this */
	CRISP_E_RESOURCE,      /* a limit was reached */
	CRISP_E_UNAVAILABLE,   /* a process needed for this is down: try again */
	CRISP_E_TIMEOUT,       /* the operation did not finish in time */
	CRISP_E_PERMISSION,    /* the caller may not do this */
	CRISP_E_UNIMPLEMENTED, /* not supported (yet) */
	CRISP_E_INTERNAL,      /* a bug, or a failure of the host */
	CRISP_E__MAX
};

#define CRISP_ERRMSG_MAX 512

struct crisp_error {
	enum crisp_errcode code;
	char msg[CRISP_ERRMSG_MAX];
};

/* Set the error and return -1, so "return err_set(err, ...)" reads well.
 * err may be NULL. */
int err_set(struct crisp_error *err, enum crisp_errcode code, const char *fmt, ...) _printf_(3, 4);
/* Same, appending ": strerror(errnum)". errnum may be negative. ENOSPC and
 * EDQUOT make the code CRISP_E_RESOURCE, whatever code says. */
int err_set_errno(struct crisp_error *err, enum crisp_errcode code, int errnum, const char *fmt,
		  ...) _printf_(4, 5);
/* Prefix the message with context as the error goes up: "ctx: old message". */
int err_prefix(struct crisp_error *err, const char *fmt, ...) _printf_(2, 3);
void err_clear(struct crisp_error *err);
const char *err_code_name(enum crisp_errcode code);

#endif
