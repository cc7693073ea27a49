/* Message names for logs, and the policy-carrying dispatch of requests. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "ipc/msg.h"

static const struct {
	uint16_t type;
	const char *name;
} type_names[] = {
	{ IPC_HELLO, "IPC_HELLO" },
	{ IPC_ERROR, "IPC_ERROR" },
	{ IPC_SUP_CONFIG_SET, "IPC_SUP_CONFIG_SET" },
	{ IPC_SUP_CHANNEL_OPEN, "IPC_SUP_CHANNEL_OPEN" },
	{ IPC_SUP_HEALTH_PING, "IPC_SUP_HEALTH_PING" },
	{ IPC_SUP_PROCESS_STATE_SET, "IPC_SUP_PROCESS_STATE_SET" },
	{ IPC_SUP_SNAPSHOT_KEY_SET, "IPC_SUP_SNAPSHOT_KEY_SET" },
	{ IPC_SUP_HEALTH_PONG, "IPC_SUP_HEALTH_PONG" },
	{ IPC_SUP_PROCESS_RESTART, "IPC_SUP_PROCESS_RESTART" },
	{ IPC_IMAGED_HEALTH_GET, "IPC_IMAGED_HEALTH_GET" },
	{ IPC_IMAGED_IMAGE_PULL, "IPC_IMAGED_IMAGE_PULL" },
	{ IPC_IMAGED_IMAGE_LIST, "IPC_IMAGED_IMAGE_LIST" },
	{ IPC_IMAGED_IMAGE_STATUS, "IPC_IMAGED_IMAGE_STATUS" },
	{ IPC_IMAGED_IMAGE_REMOVE, "IPC_IMAGED_IMAGE_REMOVE" },
	{ IPC_IMAGED_FS_INFO_GET, "IPC_IMAGED_FS_INFO_GET" },
	{ IPC_IMAGED_SNAPSHOT_PREPARE, "IPC_IMAGED_SNAPSHOT_PREPARE" },
	{ IPC_IMAGED_SNAPSHOT_REMOVE, "IPC_IMAGED_SNAPSHOT_REMOVE" },
	{ IPC_IMAGED_SNAPSHOT_LIST, "IPC_IMAGED_SNAPSHOT_LIST" },
	{ IPC_IMAGED_IMAGE_IMPORT, "IPC_IMAGED_IMAGE_IMPORT" },
	{ IPC_NETD_HEALTH_GET, "IPC_NETD_HEALTH_GET" },
	{ IPC_NETD_POD_CIDR_SET, "IPC_NETD_POD_CIDR_SET" },
	{ IPC_NETD_POD_NETWORK_ADD, "IPC_NETD_POD_NETWORK_ADD" },
	{ IPC_NETD_POD_NETWORK_DEL, "IPC_NETD_POD_NETWORK_DEL" },
	{ IPC_NETD_POD_NETWORK_REMOVE, "IPC_NETD_POD_NETWORK_REMOVE" },
	{ IPC_NETD_POD_NETWORK_STATUS, "IPC_NETD_POD_NETWORK_STATUS" },
	{ IPC_NETD_POD_NETWORK_LIST, "IPC_NETD_POD_NETWORK_LIST" },
	{ IPC_NETD_PORT_CONNECT, "IPC_NETD_PORT_CONNECT" },
	{ IPC_NETD_POD_NETNS_CREATE, "IPC_NETD_POD_NETNS_CREATE" },
	{ IPC_RUNTIMED_HEALTH_GET, "IPC_RUNTIMED_HEALTH_GET" },
	{ IPC_RUNTIMED_SANDBOX_CREATE, "IPC_RUNTIMED_SANDBOX_CREATE" },
	{ IPC_RUNTIMED_SANDBOX_START, "IPC_RUNTIMED_SANDBOX_START" },
	{ IPC_RUNTIMED_SANDBOX_STOP, "IPC_RUNTIMED_SANDBOX_STOP" },
	{ IPC_RUNTIMED_SANDBOX_REMOVE, "IPC_RUNTIMED_SANDBOX_REMOVE" },
	{ IPC_RUNTIMED_SANDBOX_LIST, "IPC_RUNTIMED_SANDBOX_LIST" },
	{ IPC_RUNTIMED_CONTAINER_CREATE, "IPC_RUNTIMED_CONTAINER_CREATE" },
	{ IPC_RUNTIMED_CONTAINER_START, "IPC_RUNTIMED_CONTAINER_START" },
	{ IPC_RUNTIMED_CONTAINER_STOP, "IPC_RUNTIMED_CONTAINER_STOP" },
	{ IPC_RUNTIMED_CONTAINER_REMOVE, "IPC_RUNTIMED_CONTAINER_REMOVE" },
	{ IPC_RUNTIMED_CONTAINER_LIST, "IPC_RUNTIMED_CONTAINER_LIST" },
	{ IPC_RUNTIMED_CONTAINER_UPDATE, "IPC_RUNTIMED_CONTAINER_UPDATE" },
	{ IPC_RUNTIMED_CONTAINER_LOG_REOPEN, "IPC_RUNTIMED_CONTAINER_LOG_REOPEN" },
	{ IPC_RUNTIMED_EXEC_SYNC, "IPC_RUNTIMED_EXEC_SYNC" },
	{ IPC_RUNTIMED_STATS_GET, "IPC_RUNTIMED_STATS_GET" },
	{ IPC_RUNTIMED_EVENTS_WAIT, "IPC_RUNTIMED_EVENTS_WAIT" },
	{ IPC_RUNTIMED_LIST_WAIT, "IPC_RUNTIMED_LIST_WAIT" },
	{ IPC_RUNTIMED_EXEC_START, "IPC_RUNTIMED_EXEC_START" },
	{ IPC_RUNTIMED_EXEC_WAIT, "IPC_RUNTIMED_EXEC_WAIT" },
	{ IPC_RUNTIMED_ATTACH, "IPC_RUNTIMED_ATTACH" },
	{ IPC_RUNTIMED_SANDBOX_UPDATE, "IPC_RUNTIMED_SANDBOX_UPDATE" },
	{ IPC_RUNTIMED_EXEC_CANCEL, "IPC_RUNTIMED_EXEC_CANCEL" },
	{ IPC_LAUNCH_PROCESS_START, "IPC_LAUNCH_PROCESS_START" },
	{ IPC_LAUNCH_PROCESS_KILL, "IPC_LAUNCH_PROCESS_KILL" },
	{ IPC_LAUNCH_PROCESS_STARTED, "IPC_LAUNCH_PROCESS_STARTED" },
	{ IPC_LAUNCH_PROCESS_EXITED, "IPC_LAUNCH_PROCESS_EXITED" },
	{ IPC_FETCH_INIT, "IPC_FETCH_INIT" },
	{ IPC_FETCH_MANIFEST, "IPC_FETCH_MANIFEST" },
	{ IPC_FETCH_BLOB, "IPC_FETCH_BLOB" },
	{ IPC_FETCH_CANCEL, "IPC_FETCH_CANCEL" },
};

const char *ipc_type_name(uint16_t type)
{
	static char unknown[32];

	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	snprintf(unknown, sizeof(unknown), "IPC_UNKNOWN(0x%04x)", type);
	return unknown;
}

bool ipc_type_secret(uint16_t type)
{
	switch (type) {
	case IPC_SUP_SNAPSHOT_KEY_SET: /* the snapshot MAC key */
	case IPC_IMAGED_IMAGE_PULL:    /* RegistryAuth */
	case IPC_FETCH_MANIFEST:       /* FetchAuth */
	case IPC_FETCH_BLOB:           /* FetchAuth */
		return true;
	default:
		return false;
	}
}

static void wipe_value(const ProtobufCFieldDescriptor *f, void *v)
{
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		char *str = *(char **)v;
		/* protobuf-c points unset strings at the descriptor's constant
		 * default, which is "" here (proto3): nothing to wipe there. */
		if (str && *str)
			explicit_bzero(str, strlen(str));
	} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
		ProtobufCBinaryData *b = v;
		if (b->data)
			explicit_bzero(b->data, b->len);
	} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		if (*(ProtobufCMessage **)v)
			ipc_message_wipe(*(ProtobufCMessage **)v);
	}
}

void ipc_message_wipe(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		uint8_t *field = (uint8_t *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)((uint8_t *)m + f->quantifier_offset);
			uint8_t *items = *(uint8_t **)field;
			size_t size = f->type == PROTOBUF_C_TYPE_STRING ? sizeof(char *)
				      : f->type == PROTOBUF_C_TYPE_BYTES
					      ? sizeof(ProtobufCBinaryData)
					      : sizeof(void *);

			if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			for (size_t k = 0; k < n; k++)
				wipe_value(f, items + k * size);
		} else if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
			   *(uint32_t *)((uint8_t *)m + f->quantifier_offset) == f->id) {
			/* (a oneof's members share their storage: only the one
			 * set is what its type says) */
			wipe_value(f, field);
		}
	}
}

int ipc_dispatch(const struct ipc_handler *table, size_t n, struct ipc_chan *chan,
		 struct ipc_msg *msg, uint32_t state, void *arg)
{
	const struct ipc_handler *h = NULL;
	ProtobufCMessage *req;

	for (size_t i = 0; i < n; i++)
		if (table[i].type == msg->type)
			h = &table[i];
	if (!h) {
		ipc_violation(chan, "unexpected message %s", ipc_type_name(msg->type));
		return -1;
	}
	if (msg->nfds != h->nfds) {
		ipc_violation(chan, "%s with %u fds, expected %u", ipc_type_name(msg->type),
			      msg->nfds, h->nfds);
		return -1;
	}
	if (msg->len > h->max_len) {
		ipc_violation(chan, "%s of %zu bytes, at most %u allowed", ipc_type_name(msg->type),
			      msg->len, h->max_len);
		return -1;
	}
	if (!(h->states & state)) {
		ipc_violation(chan, "%s not allowed in state 0x%x", ipc_type_name(msg->type),
			      state);
		return -1;
	}
	req = protobuf_c_message_unpack(h->desc, NULL, msg->len, msg->data);
	if (!req) {
		ipc_violation(chan, "malformed %s", ipc_type_name(msg->type));
		return -1;
	}
	log_debug("ipc: %s #%u from %s", ipc_type_name(msg->type), msg->id, ipc_chan_peer(chan));
	h->fn(chan, msg, req, arg);
	protobuf_c_message_free_unpacked(req, NULL);
	return 0;
}
