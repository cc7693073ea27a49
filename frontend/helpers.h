/* The frontend's channels to imaged, netd and runtimed, and what crispd last
 * told us about every crisp process. crispd hands over a fresh channel each
 * time a helper (re)starts; calls in flight on the old one fail UNAVAILABLE,
 * and a call to a helper that is down fails UNAVAILABLE at once, with the
 * reason crispd knows ("restarting after killed by signal 9 (SIGKILL)"). */
#ifndef CRISP_FRONTEND_HELPERS_H
#define CRISP_FRONTEND_HELPERS_H

#include <event2/event.h>
#include <jansson.h>

#include "ipc/msg.h"

enum helper_id {
	HELPER_IMAGED,
	HELPER_NETD,
	HELPER_RUNTIMED,
	HELPER__MAX
};

void helpers_init(struct event_base *base);
/* crispd's ChannelOpen: fd is ours whatever happens. */
void helpers_channel_open(const char *peer, uint32_t generation, int fd);
/* crispd's ProcessStateSet. */
void helpers_process_states(const CrispIpc__ProcessStateSet *set);
/* Close every channel (shutdown): calls in flight fail UNAVAILABLE. */
void helpers_close_all(void);

/* ipc_call() to helper h with the given timeout (0: the configured
 * ipc_timeout; HELPER_NO_TIMEOUT: none, for work that takes as long as it
 * takes and has its own progress checks). fn always runs exactly once,
 * maybe before this returns. */
#define HELPER_NO_TIMEOUT (~0u)
void helper_call(enum helper_id h, uint16_t type, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *reply_desc, unsigned timeout_ms, ipc_reply_fn fn,
		 void *arg);
/* The same for a reply that may bring up to reply_nfds fds (in msg: take
 * them with ipc_msg_take_fd()). */
void helper_call_fds(enum helper_id h, uint16_t type, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *reply_desc, unsigned reply_nfds,
		     unsigned timeout_ms, ipc_reply_fn fn, void *arg);

/* Whether helper h's channel is up (its Hello came). */
bool helper_ready(enum helper_id h);

/* Why helper h is not serving, from crispd's view of its process:
 * "restarting after killed by signal 9 (SIGKILL)", "crash-looping (...)". */
void helper_why_down(enum helper_id h, char *buf, size_t n);

/* crispd's process table as a JSON array, for verbose Status. */
json_t *helpers_process_states_json(void);

#endif
