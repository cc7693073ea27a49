/* The wire between a helper (common/launcher.c) and its launcher
 * (crisp-launch, launch/serve.c): what both sides must agree on, and nothing
 * that needs more than libc, since crisp-launch is linked statically against
 * musl. The payloads are ipc/launch.proto's; docs/PRIVSEP.md ("The
 * launcher", "The wire") describes it. */
#ifndef CRISP_LAUNCH_WIRE_H
#define CRISP_LAUNCH_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/error.h"

/* The version of this wire: the helper passes it to crisp-launch (--wire)
 * and crisp-launch refuses any other, so that the two, separate programs
 * since the launcher is exec'd, cannot disagree on it (a helper started
 * while an install replaces the binaries). Bump it whenever a message,
 * bound or flag below changes meaning, or what a check accepts (2: the
 * monitor's --exit-file is <exits>/<id>/exit.json, no longer
 * <exits>/<id>.json). */
#define LAUNCH_WIRE_VERSION 2
#define LAUNCH_STRINGIFY_(x) #x
#define LAUNCH_STRINGIFY(x) LAUNCH_STRINGIFY_(x)
#define LAUNCH_WIRE_VERSION_STR LAUNCH_STRINGIFY(LAUNCH_WIRE_VERSION)

/* Bounds of one request, checked on both sides. */
#define LAUNCH_ARGS_MAX 64
#define LAUNCH_ENV_MAX 64
#define LAUNCH_STRING_MAX 4096

/* At most this many launched programs run (not LAUNCH_DETACH, not yet
 * reaped) at once; more are refused with CRISP_E_RESOURCE. */
#define LAUNCH_RUNNING_MAX 1024

enum launch_flags {
	/* Run it detached: the launcher double-forks, the program gets its own
	 * session, is not its child and so outlives launcher, helper and
	 * crispd. Only its start is reported (pid of the detached process);
	 * its exit is not. For the per-container monitor. */
	LAUNCH_DETACH = 0x1,
};

/* The message types: the same numbers as IPC_LAUNCH_PROCESS_* of ipc/msg.h
 * (common/launcher.c asserts it), named here so that crisp-launch needs no
 * other header of ipc/. */
enum launch_msg {
	LAUNCH_MSG_START = 0x500,   /* helper -> launcher: LaunchStart + 0-3 fds */
	LAUNCH_MSG_KILL = 0x501,    /* helper -> launcher: LaunchKill */
	LAUNCH_MSG_STARTED = 0x580, /* launcher -> helper: LaunchStarted */
	LAUNCH_MSG_EXITED = 0x581,  /* launcher -> helper: LaunchExited */
};

struct launch_hdr {
	uint16_t type; /* enum launch_msg */
	uint16_t reserved;
	uint32_t id; /* the START's: chosen by the helper, echoed by every reply */
};
_Static_assert(sizeof(struct launch_hdr) == 8, "header is 8 bytes on the wire");

#define LAUNCH_STDIO 3
/* The largest START the bounds allow: each string is at most
 * LAUNCH_STRING_MAX - 1 bytes, which as a bytes field takes a tag byte and a
 * two-byte length; flags and stdio take at most 6 bytes each. */
#define LAUNCH_FIELD_MAX (1 + 2 + (LAUNCH_STRING_MAX - 1))
#define LAUNCH_PACKET_MAX                                                                        \
	(sizeof(struct launch_hdr) + (2 + LAUNCH_ARGS_MAX + LAUNCH_ENV_MAX) * LAUNCH_FIELD_MAX + \
	 2 * 6)
_Static_assert(LAUNCH_STRING_MAX - 1 < (1 << 14), "a string's length fits in two bytes");
/* What the launcher sends is small: a STARTED holds at most a crisp_error. */
#define LAUNCH_REPLY_MAX (sizeof(struct launch_hdr) + 32 + CRISP_ERRMSG_MAX)

/* The fd crisp-launch finds its socket on (the helper's child puts it
 * there before the exec). */
#define LAUNCH_SOCKET_FD 3

/* A string of a request: bounded, and without NUL (a C string could not
 * carry it: the launcher would run something else than what was checked). */
static inline bool launch_string_ok(const void *s, size_t len)
{
	/* An empty protobuf-c bytes field has data NULL, which memchr must
	 * not be given even with length 0. */
	return len < LAUNCH_STRING_MAX && (len == 0 || !memchr(s, '\0', len));
}

#endif
