/* crisp-netd: pod networking. Started by crispd; serves the frontend's
 * network requests. This is the skeleton the network issue fills: start,
 * privilege drop, event loop, network readiness, the pod CIDR. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ipc/child.h"
#include "netd/netd.h"

static struct {
	char *pod_cidr; /* from UpdateRuntimeConfig; handed to plugins that use it */
	char last_reason[64];
} netd;

/* The pod CIDR is durable: kubelet sends it only when it changes, so a netd
 * restart must not forget it. One small file in netd's own directory (our
 * working directory), replaced atomically. */
#define POD_CIDR_FILE "pod_cidr"

static int pod_cidr_store(const char *cidr, struct crisp_error *err)
{
	_cleanup_close_ int fd = open(POD_CIDR_FILE ".tmp",
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(cidr);

	_cleanup_close_ int dir = -1;

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot store the pod CIDR");
	if (write(fd, cidr, n) != (ssize_t)n || fsync(fd) < 0 ||
	    rename(POD_CIDR_FILE ".tmp", POD_CIDR_FILE) < 0) {
		err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot store the pod CIDR");
		unlink(POD_CIDR_FILE ".tmp");
		return -1;
	}
	/* The rename must reach the disk too; if that fails the new value is
	 * in place all the same, so it is used, and the failure only logged. */
	dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || fsync(dir) < 0)
		log_warn("pod CIDR stored, but syncing netd's directory failed: %m");
	return 0;
}

static void pod_cidr_load(void)
{
	char buf[CIDR_LIST_MAX + 1], why[256];
	_cleanup_close_ int fd = open(POD_CIDR_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (n <= 0 || cidr_list_valid(buf, why, sizeof(why)) < 0) {
		log_warn("ignoring stored pod CIDR: %s", n <= 0 ? "empty" : why);
		return;
	}
	netd.pod_cidr = xstrdup(buf);
	log_info("pod CIDR %s (stored)", netd.pod_cidr);
}

static void on_health(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req, void *arg)
{
	CrispIpc__HealthGetReply reply = CRISP_IPC__HEALTH_GET_REPLY__INIT;
	struct cni_status st;

	cni_conf_status(child_config(), &st);
	reply.ready = st.ready;
	reply.version = (char *)CRISP_VERSION;
	if (!st.ready) {
		reply.reason = st.reason;
		reply.message = st.message;
	}
	/* Log changes of readiness once, not on every Status call. */
	if (!streq(netd.last_reason, st.ready ? "ready" : st.reason)) {
		if (st.ready)
			log_info("network ready: network '%s' from %s", st.network, st.file);
		else
			log_warn("network not ready: %s", st.message);
		snprintf(netd.last_reason, sizeof(netd.last_reason), "%s",
			 st.ready ? "ready" : st.reason);
	}
	ipc_reply(chan, msg, &reply.base, NULL, 0);
}

static void on_pod_cidr_set(struct ipc_chan *chan, struct ipc_msg *msg, ProtobufCMessage *req,
			    void *arg)
{
	CrispIpc__PodCidrSetRequest *r = (CrispIpc__PodCidrSetRequest *)req;
	CrispIpc__Empty empty = CRISP_IPC__EMPTY__INIT;
	struct crisp_error err;
	char why[256];

	/* The frontend checked it too; we do not rely on that. */
	if (cidr_list_valid(r->pod_cidr, why, sizeof(why)) < 0) {
		err_set(&err, CRISP_E_INVALID, "pod CIDR: %s", why);
		ipc_reply_error(chan, msg, &err);
		return;
	}
	if (!streq(netd.pod_cidr, r->pod_cidr)) {
		if (pod_cidr_store(r->pod_cidr, &err) < 0) {
			log_err("%s", err.msg);
			ipc_reply_error(chan, msg, &err);
			return;
		}
		log_info("pod CIDR is now %s", r->pod_cidr);
		free(netd.pod_cidr);
		netd.pod_cidr = xstrdup(r->pod_cidr);
	}
	ipc_reply(chan, msg, &empty.base, NULL, 0);
}

/* What netd accepts from the frontend. */
static const struct ipc_handler frontend_handlers[] = {
	{ IPC_NETD_HEALTH_GET, &crisp_ipc__health_get_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_health },
	{ IPC_NETD_POD_CIDR_SET, &crisp_ipc__pod_cidr_set_request__descriptor, 0, IPC_SMALL,
	  IPC_ANY_STATE, on_pod_cidr_set },
};

static void on_config(struct crisp_config *cfg, bool reload, void *arg)
{
	_cleanup_free_ char *home = xasprintf("%s/netd", cfg->root_dir);

	if (reload)
		return;
	if (chdir(home) < 0)
		fatal("chdir %s: %m", home);
	pod_cidr_load();
	netd_sandbox(cfg);
	log_info("ready");
}

int main(void)
{
	static const struct child_ops ops = {
		.name = "netd",
		.on_config = on_config,
		.frontend_version = IPC_NETD_VERSION,
		.frontend_handlers = frontend_handlers,
		.n_frontend_handlers = ARRAY_SIZE(frontend_handlers),
	};

	return child_main("crisp-netd", &ops);
}
