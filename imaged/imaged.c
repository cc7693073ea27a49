/* crisp-imaged: images. Started by crispd; serves the frontend's image
 * requests. This is the skeleton the image issue fills: start, privilege
 * drop, event loop, health. */
#include "autoconfig.h"

#include "common/log.h"
#include "imaged/imaged.h"
#include "ipc/child.h"

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;

	reply.ready = true;
	reply.version = (char *)CRISP_VERSION;
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* What imaged accepts from the frontend. */
static const struct ipc_handler frontend_handlers[] = {
	{ IPC_IMAGED_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
};

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	if (reload)
		return;
	imaged_sandbox(cfg);
	log_info("ready");
}

int main(void)
{
	static const struct child_ops ops = {
		.name = "imaged",
		.on_config = on_config,
		.frontend_version = IPC_IMAGED_VERSION,
		.frontend_handlers = frontend_handlers,
		.n_frontend_handlers = ARRAY_SIZE(frontend_handlers),
	};

	return child_main("crisp-imaged", &ops);
}
