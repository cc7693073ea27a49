/* The CRI streaming calls: Exec, Attach and PortForward. Each validates its
 * request (the messages and codes are the kubelet's, PROTOCOLS.md 1), asks the
 * backend whether the container or sandbox is there when the backend can
 * tell, and answers with a single-use URL on the streaming server; the work
 * happens when the client connects to it (frontend/stream_*.c). */
#include "autoconfig.h"

#include <string.h>

#include "frontend/cri_methods.h"
#include "frontend/stream.h"
#include "ipc/cri-api.pb-c.h"

/* Bounds on what a URL may carry until it is used: ids, the command line,
 * the ports. Helpers check ids again; these keep the token store small. */
#define ID_MAX 256
#define CMD_ARGS_MAX 4096
/* As ExecSync's: with the per-argument framing (up to 3 bytes each) the
 * request to runtimed stays well inside its 256 KiB bound, which a bigger
 * one would break (a protocol violation: runtimed would restart). */
#define CMD_BYTES_MAX (128 * 1024)
#define PORTS_MAX 128

static int check_id(const char *id, const char *field, struct crisp_error *err)
{
	if (!id || !*id)
		return err_set(err, CRISP_E_INVALID, "missing required %s", field);
	if (strlen(id) > ID_MAX)
		return err_set(err, CRISP_E_INVALID, "%s is longer than %d bytes", field, ID_MAX);
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return err_set(err, CRISP_E_INVALID,
				       "%s contains a character that is not printable ASCII",
				       field);
	return 0;
}

static int check_streams(bool tty, bool in, bool out, bool errs, struct crisp_error *err)
{
	if (tty && errs)
		return err_set(err, CRISP_E_INVALID, "tty and stderr cannot both be true");
	if (!in && !out && !errs)
		return err_set(err, CRISP_E_INVALID, "one of stdin, stdout, or stderr must be set");
	return 0;
}

struct pending_url {
	struct rpc *rpc;
	struct stream_request *req;
};

static void reply_url(struct rpc *rpc, struct stream_request *req)
{
	struct crisp_error err;
	enum stream_kind kind = req->kind;
	_cleanup_free_ char *url = stream_server_url(req, &err);

	if (!url)
		return cri_fail(rpc, &err);
	if (kind == STREAM_EXEC) {
		Runtime__V1__ExecResponse resp = RUNTIME__V1__EXEC_RESPONSE__INIT;
		resp.url = url;
		cri_reply(rpc, &resp.base);
	} else if (kind == STREAM_ATTACH) {
		Runtime__V1__AttachResponse resp = RUNTIME__V1__ATTACH_RESPONSE__INIT;
		resp.url = url;
		cri_reply(rpc, &resp.base);
	} else {
		Runtime__V1__PortForwardResponse resp = RUNTIME__V1__PORT_FORWARD_RESPONSE__INIT;
		resp.url = url;
		cri_reply(rpc, &resp.base);
	}
}

static void on_checked(void *ctx, const struct crisp_error *err)
{
	struct pending_url *p = ctx;

	if (err) {
		stream_request_free(p->req);
		cri_fail(p->rpc, err);
	} else {
		reply_url(p->rpc, p->req);
	}
	free(p);
}

static void finish(struct rpc *rpc, struct stream_request *req)
{
	const struct stream_backend *b = stream_backend();
	struct pending_url *p;

	if (!b || !b->check)
		return reply_url(rpc, req);
	p = xcalloc(1, sizeof(*p));
	p->rpc = rpc;
	p->req = req;
	b->check(req, on_checked, p);
}

void cri_exec(struct rpc *rpc)
{
	const Runtime__V1__ExecRequest *r = (const Runtime__V1__ExecRequest *)rpc->req;
	struct stream_request *req;
	struct crisp_error err;
	size_t bytes = 0;

	if (check_id(r->container_id, "container_id", &err) < 0 ||
	    check_streams(r->tty, r->stdin, r->stdout, r->stderr, &err) < 0)
		return cri_fail(rpc, &err);
	if (r->n_cmd == 0 || !r->cmd[0] || !*r->cmd[0])
		return cri_failf(rpc, CRISP_E_INVALID, "missing required cmd");
	if (r->n_cmd > CMD_ARGS_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "cmd has %zu arguments (at most %d)",
				 r->n_cmd, CMD_ARGS_MAX);
	for (size_t i = 0; i < r->n_cmd; i++)
		bytes += strlen(r->cmd[i]) + 1;
	if (bytes > CMD_BYTES_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "cmd is longer than %d bytes",
				 CMD_BYTES_MAX);
	req = xcalloc(1, sizeof(*req));
	req->kind = STREAM_EXEC;
	req->container_id = xstrdup(r->container_id);
	req->cmd = xcalloc(r->n_cmd, sizeof(*req->cmd));
	for (size_t i = 0; i < r->n_cmd; i++)
		req->cmd[i] = xstrdup(r->cmd[i]);
	req->n_cmd = r->n_cmd;
	req->tty = r->tty;
	req->in = r->stdin;
	req->out = r->stdout;
	req->err = r->stderr;
	finish(rpc, req);
}

void cri_attach(struct rpc *rpc)
{
	const Runtime__V1__AttachRequest *r = (const Runtime__V1__AttachRequest *)rpc->req;
	struct stream_request *req;
	struct crisp_error err;

	if (check_id(r->container_id, "container_id", &err) < 0 ||
	    check_streams(r->tty, r->stdin, r->stdout, r->stderr, &err) < 0)
		return cri_fail(rpc, &err);
	req = xcalloc(1, sizeof(*req));
	req->kind = STREAM_ATTACH;
	req->container_id = xstrdup(r->container_id);
	req->tty = r->tty;
	req->in = r->stdin;
	req->out = r->stdout;
	req->err = r->stderr;
	finish(rpc, req);
}

void cri_port_forward(struct rpc *rpc)
{
	const Runtime__V1__PortForwardRequest *r = (const Runtime__V1__PortForwardRequest *)rpc->req;
	struct stream_request *req;
	struct crisp_error err;

	if (check_id(r->pod_sandbox_id, "pod_sandbox_id", &err) < 0)
		return cri_fail(rpc, &err);
	if (r->n_port > PORTS_MAX)
		return cri_failf(rpc, CRISP_E_INVALID, "%zu ports (at most %d)", r->n_port,
				 PORTS_MAX);
	for (size_t i = 0; i < r->n_port; i++)
		if (r->port[i] < 1 || r->port[i] > 65535)
			return cri_failf(rpc, CRISP_E_INVALID, "port %d is not in 1-65535",
					 r->port[i]);
	req = xcalloc(1, sizeof(*req));
	req->kind = STREAM_PORT_FORWARD;
	req->sandbox_id = xstrdup(r->pod_sandbox_id);
	req->ports = xcalloc(r->n_port ? r->n_port : 1, sizeof(*req->ports));
	for (size_t i = 0; i < r->n_port; i++)
		req->ports[i] = (uint16_t)r->port[i];
	req->n_ports = r->n_port;
	finish(rpc, req);
}
