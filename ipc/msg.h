/* The message vocabulary of every crisp channel, named
 * IPC_<PEER>_<OBJECT>_<VERB>, and the dispatch tables that carry policy.
 *
 * A request travels with its type in the frame header and one payload message
 * of ipc/ipc.proto; its reply carries the same type with IPC_F_REPLY and the
 * reply payload, or IPC_ERROR with IPC_F_REPLY and an Error. Every reply
 * echoes the request id. */
#ifndef CRISP_IPC_MSG_H
#define CRISP_IPC_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "ipc/ipc.h"
#include "ipc/ipc.pb-c.h"

/* Vocabulary versions, checked by the hello at connect. Bump one whenever a
 * message of that channel changes meaning. */
#define IPC_SUP_VERSION 3
#define IPC_IMAGED_VERSION 6
#define IPC_NETD_VERSION 3
#define IPC_RUNTIMED_VERSION 7
#define IPC_FETCH_VERSION 1

enum ipc_type {
	IPC_HELLO = 1,
	IPC_ERROR = 2,

	/* crispd -> every process */
	IPC_SUP_CONFIG_SET = 0x100, /* ConfigSet */
	IPC_SUP_CHANNEL_OPEN,       /* ChannelOpen + 1 fd */
	IPC_SUP_HEALTH_PING,        /* HealthPing */
	IPC_SUP_PROCESS_STATE_SET,  /* ProcessStateSet, to the frontend only */
	IPC_SUP_SNAPSHOT_KEY_SET,   /* SnapshotKeySet, to imaged and runtimed only */
	/* every process -> crispd */
	IPC_SUP_HEALTH_PONG = 0x180, /* HealthPong */
	IPC_SUP_PROCESS_RESTART,     /* ProcessRestartRequest, from the frontend only */

	/* frontend -> imaged */
	IPC_IMAGED_HEALTH_GET = 0x200, /* HealthGetRequest -> HealthGetReply */
	IPC_IMAGED_IMAGE_PULL,         /* ImagePullRequest -> ImagePullReply */
	IPC_IMAGED_IMAGE_LIST,         /* ImageListRequest -> ImageListReply */
	IPC_IMAGED_IMAGE_STATUS,       /* ImageStatusRequest -> ImageStatusReply */
	IPC_IMAGED_IMAGE_REMOVE,       /* ImageRemoveRequest -> Empty */
	IPC_IMAGED_FS_INFO_GET,        /* Empty -> ImageFsInfoReply */
	IPC_IMAGED_SNAPSHOT_PREPARE,   /* SnapshotPrepareRequest -> SnapshotMount */
	IPC_IMAGED_SNAPSHOT_REMOVE,    /* SnapshotRemoveRequest -> Empty */
	IPC_IMAGED_SNAPSHOT_LIST,      /* Empty -> SnapshotListReply */
	IPC_IMAGED_IMAGE_IMPORT,       /* ImageImportRequest -> ImageImportReply */

	/* frontend -> netd */
	IPC_NETD_HEALTH_GET = 0x300, /* HealthGetRequest -> HealthGetReply */
	IPC_NETD_POD_CIDR_SET,       /* PodCidrSetRequest -> Empty */
	IPC_NETD_POD_NETWORK_ADD,    /* PodNetworkAddRequest -> PodNetwork */
	IPC_NETD_POD_NETWORK_DEL,    /* PodNetworkDelRequest -> Empty */
	IPC_NETD_POD_NETWORK_REMOVE, /* PodNetworkRemoveRequest -> Empty */
	IPC_NETD_POD_NETWORK_STATUS, /* PodNetworkStatusRequest -> PodNetwork */
	IPC_NETD_POD_NETWORK_LIST,   /* Empty -> PodNetworkListReply */
	IPC_NETD_PORT_CONNECT,       /* PortConnectRequest -> Empty + 1 fd */
	IPC_NETD_POD_NETNS_CREATE,   /* PodNetworkAddRequest -> PodNetwork (netns only) */

	/* frontend -> runtimed */
	IPC_RUNTIMED_HEALTH_GET = 0x400,   /* HealthGetRequest -> HealthGetReply */
	IPC_RUNTIMED_SANDBOX_CREATE,       /* SandboxCreateRequest -> SandboxInfo */
	IPC_RUNTIMED_SANDBOX_START,        /* SandboxStartRequest -> SandboxInfo */
	IPC_RUNTIMED_SANDBOX_STOP,         /* SandboxStopRequest -> Empty */
	IPC_RUNTIMED_SANDBOX_REMOVE,       /* SandboxRemoveRequest -> Empty */
	IPC_RUNTIMED_SANDBOX_LIST,         /* SandboxListRequest -> SandboxListReply */
	IPC_RUNTIMED_CONTAINER_CREATE,     /* ContainerCreateRequest -> ContainerInfo */
	IPC_RUNTIMED_CONTAINER_START,      /* ContainerRequest -> Empty */
	IPC_RUNTIMED_CONTAINER_STOP,       /* ContainerStopRequest -> Empty */
	IPC_RUNTIMED_CONTAINER_REMOVE,     /* ContainerRequest -> Empty */
	IPC_RUNTIMED_CONTAINER_LIST,       /* ContainerListRequest -> ContainerListReply */
	IPC_RUNTIMED_CONTAINER_UPDATE,     /* ContainerUpdateRequest -> Empty */
	IPC_RUNTIMED_CONTAINER_LOG_REOPEN, /* ContainerRequest -> Empty */
	IPC_RUNTIMED_EXEC_SYNC,            /* ExecSyncRequest -> ExecSyncReply */
	IPC_RUNTIMED_STATS_GET,            /* StatsRequest -> StatsReply */
	IPC_RUNTIMED_EVENTS_WAIT,          /* EventsWaitRequest -> EventsWaitReply */
	IPC_RUNTIMED_EXEC_START,           /* ExecStartRequest -> ExecStartReply + 1-3 fds */
	IPC_RUNTIMED_EXEC_WAIT,            /* ExecWaitRequest -> ExecWaitReply */
	IPC_RUNTIMED_ATTACH,               /* AttachRequest -> Empty + 1 fd */
	IPC_RUNTIMED_SANDBOX_UPDATE,       /* SandboxUpdateRequest -> Empty */
	IPC_RUNTIMED_EXEC_CANCEL,          /* ExecCancelRequest -> Empty */
	IPC_RUNTIMED_LIST_WAIT,            /* ListWaitRequest -> Empty */

	/* helper -> its launcher (common/launcher.c: raw SOCK_SEQPACKET, no
	 * ipc_chan; the launcher answers START with STARTED, then EXITED) */
	IPC_LAUNCH_PROCESS_START = 0x500, /* LaunchStart + 0-3 fds */
	IPC_LAUNCH_PROCESS_KILL,          /* LaunchKill */
	/* launcher -> its helper, with the id of the START */
	IPC_LAUNCH_PROCESS_STARTED = 0x580, /* LaunchStarted */
	IPC_LAUNCH_PROCESS_EXITED,          /* LaunchExited */

	/* imaged -> crisp-fetch (its child; fetch/fetch.c) */
	IPC_FETCH_INIT = 0x600, /* FetchInit, first and once, no reply */
	IPC_FETCH_MANIFEST,     /* FetchManifestRequest -> FetchManifestReply */
	IPC_FETCH_BLOB,         /* FetchBlobRequest + 1 fd (pipe) -> Empty */
	IPC_FETCH_CANCEL,       /* FetchCancel, no reply */

#ifdef CRISP_TEST_HOOKS
	IPC_TEST_UNKNOWN = 0x7fff, /* never handled: lets tests send garbage */
#endif
};

/* "IPC_NETD_POD_CIDR_SET" for logs; "IPC_UNKNOWN(0x1234)" style for others. */
const char *ipc_type_name(uint16_t type);

/* Whether requests of this type carry a secret (a key, registry
 * credentials). The transport (ipc/ipc.c) then wipes every copy of the
 * frame it makes: the sender's once written or dropped, the receiver's once
 * handled. Replies are never secret: none of them carries one. */
bool ipc_type_secret(uint16_t type);
/* Zero every string and bytes field of m and of its sub-messages, in
 * place: for a decoded copy of a secret request about to be freed. */
void ipc_message_wipe(ProtobufCMessage *m);

/* Size bounds used by the dispatch tables. */
#define IPC_SMALL (4u << 10)
#define IPC_MEDIUM (256u << 10)

/* One row of a dispatch table: what a receiver accepts, and in which state. */
struct ipc_handler {
	uint16_t type;
	const ProtobufCMessageDescriptor *desc; /* payload of the request */
	uint8_t nfds;                           /* exact number of fds that come with it */
	uint32_t max_len;                       /* payload bound */
	uint32_t states;                        /* bit mask of receiver states it is allowed in */
	void (*fn)(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg);
};

#define IPC_ANY_STATE 0xffffffffu

/* Find msg's row, check fds, size and state, unpack the payload and call the
 * handler (the payload is freed after it returns). Anything that does not fit
 * is a protocol violation: the channel is closed through ipc_violation() and
 * -1 returned. */
int ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *chan,
		 struct ipc_msg *msg, uint32_t state, void *arg);

#endif
