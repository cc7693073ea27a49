/* ipc: the transport every crisp channel uses. A channel is one end of a
 * unix stream socketpair; it carries frames of a 16-byte header and a
 * protobuf-c payload, with file descriptors passed by SCM_RIGHTS together with
 * the first byte of their frame.
 *
 * - both ends send a Hello first; the version and the peer's name are checked
 *   before anything else is accepted;
 * - requests carry an id that the reply echoes; ipc_call() matches replies to
 *   callbacks and fails a call with a timeout or when the channel closes;
 * - sizes are bounded and a malformed frame closes the channel. */
#ifndef CRISP_IPC_IPC_H
#define CRISP_IPC_IPC_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define IPC_MAX_PAYLOAD (32u << 20)
#define IPC_MAX_FDS 8
#define IPC_F_REPLY 0x1

struct ipc_chan;

struct ipc_msg {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	const uint8_t *data;
	size_t len;
	/* Received fds belong to the receiver's callback: take the ones it keeps
	 * with ipc_msg_take_fd(); the rest are closed after it returns. */
	int fds[IPC_MAX_FDS];
	unsigned nfds;
};

struct ipc_chan_ops {
	const char *self; /* our name, sent in the Hello */
	const char *peer; /* the name the peer must announce */
	uint32_t version; /* vocabulary version both ends must speak */
	void (*on_ready)(struct ipc_chan *chan, void *arg);
	/* Every message that is not a reply. */
	void (*on_request)(struct ipc_chan *chan, struct ipc_msg *msg, void *arg);
	/* The peer hung up or broke the protocol; the channel can no longer send.
	 * Pending calls have already failed. The owner frees the channel (it may
	 * do so from inside this callback). */
	void (*on_close)(struct ipc_chan *chan, const char *why, void *arg);
};

/* Takes ownership of fd (a connected unix stream socket) and sends our Hello. */
struct ipc_chan *ipc_chan_new(struct event_base *base, int fd, const struct ipc_chan_ops *ops,
			      void *arg);
void ipc_chan_free(struct ipc_chan *chan);
bool ipc_chan_ready(const struct ipc_chan *chan);
int ipc_chan_peer_pid(const struct ipc_chan *chan);
const char *ipc_chan_peer(const struct ipc_chan *chan);

/* Queue a frame. Takes ownership of fds[0..nfds) whatever happens. */
int ipc_send(struct ipc_chan *chan, uint16_t type, uint16_t flags, uint32_t id,
	     const ProtobufCMessage *payload, int *fds, unsigned nfds);
/* The same for a payload holding a secret (no fds, not a reply): its
 * packed frame is wiped once written or dropped. Requests of the types
 * ipc_type_secret() names (ipc/msg.h) get this from ipc_send() and
 * ipc_call() too, and their received frame is wiped once handled. The
 * transport makes no other copy (no evbuffer: one malloc'd frame out, one
 * input buffer in, itself wiped where it moves or is freed); the kernel's
 * socket buffers are out of our reach. */
int ipc_send_secret(struct ipc_chan *chan, uint16_t type, const ProtobufCMessage *payload);
int ipc_reply(struct ipc_chan *chan, const struct ipc_msg *req, const ProtobufCMessage *payload,
	      int *fds, unsigned nfds);
int ipc_reply_error(struct ipc_chan *chan, const struct ipc_msg *req,
		    const struct crisp_error *err);

/* The reply of an ipc_call(). On success err is NULL, reply is the unpacked
 * payload and msg carries any fds. The payload is unpacked into an arena
 * (ipc/arena.h) released after the callback: nothing in it may be freed,
 * stolen or kept past the callback. On failure (an Error reply, a timeout,
 * the channel closing, no memory to unpack it) reply and msg are NULL. */
typedef void (*ipc_reply_fn)(ProtobufCMessage *reply, struct ipc_msg *msg,
			     const struct crisp_error *err, void *arg);

/* Send a request and call fn with its reply, once. reply_desc is the payload
 * type the reply must have, reply_nfds the most fds it may bring. Returns the
 * call id (never 0), or 0 with fn already called with an UNAVAILABLE error. */
uint32_t ipc_call(struct ipc_chan *chan, uint16_t type, const ProtobufCMessage *req, int *fds,
		  unsigned nfds, const ProtobufCMessageDescriptor *reply_desc, unsigned reply_nfds,
		  unsigned timeout_ms, ipc_reply_fn fn, void *arg);
/* Forget a pending call: its callback will not run. */
void ipc_call_cancel(struct ipc_chan *chan, uint32_t id);

/* Close the channel for a protocol violation: logged, then on_close. */
void ipc_violation(struct ipc_chan *chan, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int ipc_msg_take_fd(struct ipc_msg *msg, unsigned i);

#ifdef CRISP_TEST_HOOKS
/* Tests: called with every buffer the transport frees or lets realloc()
 * move, as it is left in memory (after any wipe), to look for secrets. */
extern void (*ipc_test_released)(const void *buf, size_t len);
#endif

#endif
