/* crisp-runtimed: pod sandboxes and containers. Started by crispd; serves
 * the frontend's runtime requests. This is the skeleton the container issue
 * fills: start, privilege drop, event loop, health of the OCI runtime. */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/child.h"
#include "runtimed/runtimed.h"

static struct {
	char *runtime_path; /* the default handler's binary, found in PATH */
} rt;

/* Resolve the default runtime in PATH while we still may look anywhere. */
static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(
		path && *path ? path
			      : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", d, name);
		if (*d == '/' && access(p, X_OK) == 0)
			return TAKE_PTR(p);
	}
	return NULL;
}

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	const char *handler = child_config()->default_runtime;
	char message[512];

	reply.version = (char *)CRISP_VERSION;
	reply.ready = rt.runtime_path && access(rt.runtime_path, X_OK) == 0;
	if (!reply.ready) {
		snprintf(message, sizeof(message),
			 "OCI runtime '%s' of the default handler is not installed%s%s", handler,
			 rt.runtime_path ? " any more at " : " (not found in PATH)",
			 rt.runtime_path ? rt.runtime_path : "");
		reply.reason = (char *)"RuntimeNotFound";
		reply.message = message;
	}
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

/* What runtimed accepts from the frontend. */
static const struct ipc_handler frontend_handlers[] = {
	{ IPC_RUNTIMED_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
};

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	if (reload)
		return;
	rt.runtime_path = find_in_path(cfg->default_runtime);
	if (!rt.runtime_path)
		log_warn("OCI runtime '%s' not found in PATH: RuntimeReady stays false",
			 cfg->default_runtime);
	else
		log_info("default OCI runtime: %s", rt.runtime_path);
	runtimed_sandbox(cfg);
	log_info("ready");
}

int main(void)
{
	static const struct child_ops ops = {
		.name = "runtimed",
		.on_config = on_config,
		.frontend_version = IPC_RUNTIMED_VERSION,
		.frontend_handlers = frontend_handlers,
		.n_frontend_handlers = ARRAY_SIZE(frontend_handlers),
	};

	return child_main("crisp-runtimed", &ops);
}
