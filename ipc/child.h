/* The process side of the channel to crispd, shared by the frontend and the
 * helpers: crispd hands it over on fd 3. It answers health pings by itself,
 * applies the configuration crispd sends, and passes on the channels to peer
 * processes. When crispd goes away the process exits: it is never left
 * running unsupervised. */
#ifndef CRISP_IPC_CHILD_H
#define CRISP_IPC_CHILD_H

#include <stdbool.h>

#include "common/config.h"
#include "ipc/msg.h"

#define CHILD_CONTROL_FD 3
#define CHILD_LISTEN_FD 4 /* the frontend's CRI listening socket */

struct child_ops {
	const char *name; /* "frontend", "imaged", "netd", "runtimed" */
	/* The first ConfigSet (reload false), then one after each SIGHUP. */
	void (*on_config)(struct crisp_config *cfg, bool reload, void *arg);
	/* Frontend: a fresh channel to peer; ownership of fd passes to the
	 * callee. Helpers leave it NULL and give their vocabulary below. */
	void (*on_channel)(const char *peer, uint32_t generation, int fd, void *arg);
	/* Helpers: what they accept from the frontend. Each channel crispd
	 * hands over replaces the previous one; a violation by the frontend
	 * makes the helper exit (crispd restarts it with a clean address
	 * space), a plain hang-up just waits for the next channel. */
	uint32_t frontend_version;
	const struct ipc_handler *frontend_handlers;
	size_t n_frontend_handlers;
	/* Frontend only (NULL elsewhere: the message is then a violation). */
	void (*on_process_state)(const CrispIpc__ProcessStateSet *set, void *arg);
	/* Helpers, may be NULL: the live frontend channel closed, or crispd
	 * handed over a new one. Deferred requests of the old one are no
	 * longer child_deferred_live(): nobody will read their replies or
	 * cancel them. */
	void (*on_frontend_gone)(void *arg);
	/* imaged and runtimed: crispd sends them the key of the snapshot
	 * mounts' MACs (common/snapshot_mac.h). Anyone else that gets one
	 * treats it as a violation. */
	bool snapshot_key;
};

/* Start talking to crispd on CHILD_CONTROL_FD. */
void child_start(struct event_base *base, const struct child_ops *ops, void *arg);
/* Helpers: the whole main. Sets up logging and the loop, stops on SIGTERM
 * or SIGINT, and runs until then; returns the exit status. */
int child_main(const char *progname, const struct child_ops *ops);

/* Helpers: answering a request later, after long work. A deferred reply
 * remembers the channel generation: if the frontend reconnected meanwhile,
 * the request died with the old channel and its reply is dropped. */
struct child_deferred {
	uint64_t generation;
	uint16_t type;
	uint32_t id;
};
void child_defer(const struct ipc_msg *req, struct child_deferred *ret);
/* Whether the frontend that asked is still there to get the reply: false
 * once its channel closed, even if a new frontend connected since. */
bool child_deferred_live(const struct child_deferred *d);
void child_reply(const struct child_deferred *d, const ProtobufCMessage *payload);
/* The same with fds (ownership passes, also when the reply is dropped). */
void child_reply_fds(const struct child_deferred *d, const ProtobufCMessage *payload, int *fds,
		     unsigned nfds);
void child_reply_error(const struct child_deferred *d, const struct crisp_error *err);

/* Frontend: ask crispd to restart helper `name`, which broke the protocol. */
void child_restart_peer(const char *name, const char *reason);

/* The process's event loop (valid from child_start on). */
struct event_base *child_base(void);

/* imaged and runtimed: the SNAPSHOT_KEY_LEN bytes of the key crispd sent
 * (before any channel to the frontend), NULL before. */
const uint8_t *child_snapshot_key(void);

/* The configuration received from crispd (valid after the first on_config). */
struct crisp_config *child_config(void);

#endif
