/* crisp-frontend: the unprivileged process that speaks CRI gRPC to the kubelet
 * and turns each call into typed requests to the helpers (DESIGN.md).
 *
 * What the pieces share: who a connected client is, who may connect at all,
 * and the frontend's sandbox policy. */
#ifndef CRISP_FRONTEND_FRONTEND_H
#define CRISP_FRONTEND_FRONTEND_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/sandbox.h"

/* A client of the CRI socket, from SO_PEERCRED at accept time. */
struct fe_peer {
	bool known;
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/* Whether peer may talk CRI to us: root, the socket group, or one of its
 * members. On refusal, why says so in a few words (for the audit line). */
bool frontend_authorized(const struct fe_peer *peer, char *why, size_t whylen);

/* The effective configuration, as crispd sent it. */
struct crisp_config *frontend_config(void);

/* The frontend's confinement (frontend/sandbox.c): no capabilities, the given
 * ids, an empty root, and the syscalls gRPC and the loop need once running. */
void frontend_sandbox_policy(struct sandbox_policy *policy, uid_t uid, gid_t gid,
			     const char *chroot_dir);
/* Rules beyond the allowlist: opens fail with EACCES instead of killing,
 * prctl only names threads (see sandbox.c). */
void frontend_sandbox_rules(scmp_filter_ctx filter);

#endif
