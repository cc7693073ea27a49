/* The audit trail: one line at LOG_NOTICE, in key=value form a machine can
 * parse, for every refused connection and every call to a CRI method that
 * changes state (whatever its result, UNIMPLEMENTED included). Values are
 * quoted and escaped; only chosen fields of a request are ever logged, so
 * credentials (PullImage's auth) never reach a log. */
#ifndef CRISP_FRONTEND_AUDIT_H
#define CRISP_FRONTEND_AUDIT_H

#include <grpc/status.h>

#include "frontend/frontend.h"
#include "frontend/grpc_server.h"

/* audit: event=connection-refused pid=.. uid=.. gid=.. reason="..." */
void audit_refused(const struct fe_peer *peer, const char *reason);
/* audit: method=.. pid=.. uid=.. gid=.. target="..." result=OK|CODE msg="..." */
void audit_call(const struct rpc *rpc, grpc_status_code code, const char *msg);

#endif
