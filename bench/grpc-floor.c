/* grpc-floor: a gRPC C core server that does no work, so that the benchmark
 * can show what gRPC core itself costs per unary call, next to what crisp's
 * calls cost (bench/cri-bench.py runs it; cri-ping is its client).
 *
 *     grpc-floor SOCKET METHOD... < reply.bin
 *
 * Listens on the unix socket SOCKET and answers every call to a METHOD (a
 * full path, e.g. /runtime.v1.RuntimeService/ListContainers) with the bytes
 * read from stdin (up to 16 MiB, empty allowed) and status OK; any other path
 * gets UNIMPLEMENTED, as from crisp. One thread: each call is answered on the
 * completion-queue thread as soon as it arrives, with no application work,
 * no thread hop and nothing copied per call.
 *
 * The METHODs are registered, with their request read into the call's first
 * event (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER), as crisp's frontend
 * registers the CRI methods; with the same limits, too. Serving any path
 * unregistered (grpc_server_request_call, then a RECV_MESSAGE batch) was
 * measured as well: about 4 us slower per empty call (median of 8 alternating
 * runs of 2000-3000 calls, from cri-ping), no different with a 40 kB reply:
 * so only registered methods are served, the faster path and crisp's own.
 * The listener is gRPC's own (crisp accepts its connections itself and hands
 * them to gRPC): that is outside the per-call cost.
 *
 * Prints "ready" on stdout once it listens; SIGTERM or SIGINT stops it. By
 * hand, e.g.:
 *
 *     grpc-floor /tmp/floor.sock /runtime.v1.RuntimeService/Version </dev/null &
 *     cri-ping /tmp/floor.sock /runtime.v1.RuntimeService/Version 1000 </dev/null */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

/* crisp's frontend (frontend/grpc_server.c) uses the same limits */
#define MAX_MESSAGE (16 << 20)
#define MAX_STREAMS 1024
#define STOP_CHECK_MS 100 /* how soon a signal is noticed when idle */

enum floor_stage {
	FLOOR_REQUESTED, /* waiting for a call */
	FLOOR_ANSWERING, /* reply, status and the client's close in flight */
};

struct floor_call {
	enum floor_stage stage;
	void *method; /* registered handle, NULL for any other path */
	grpc_call *call;
	grpc_call_details details;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *req, *resp;
	int cancelled;
};

static struct {
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_slice reply;
	bool shutting_down;
	size_t ncalls; /* allocated, to check that shutdown frees them all */
} fl;

static volatile sig_atomic_t stop_signal;
static int shutdown_tag; /* its address is the tag */

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void call_free(struct floor_call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	if (c->req)
		grpc_byte_buffer_destroy(c->req);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	free(c);
	fl.ncalls--;
}

/* One outstanding request per method, as crisp keeps: the next one is asked
 * for as soon as this one fires. */
static int request_call(void *method)
{
	struct floor_call *c = calloc(1, sizeof(*c));
	grpc_call_error e;

	if (!c) {
		fprintf(stderr, "grpc-floor: out of memory\n");
		return -1;
	}
	fl.ncalls++;
	c->method = method;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	if (method)
		e = grpc_server_request_registered_call(fl.server, method, &c->call, &c->deadline,
							&c->md, &c->req, fl.cq, fl.cq, c);
	else
		e = grpc_server_request_call(fl.server, &c->call, &c->details, &c->md, fl.cq, fl.cq,
					     c);
	if (e != GRPC_CALL_OK) {
		fprintf(stderr, "grpc-floor: cannot wait for calls: gRPC error %d\n", (int)e);
		call_free(c);
		return -1;
	}
	return 0;
}

static int start_batch(struct floor_call *c, const grpc_op *ops, size_t n)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);

	if (e != GRPC_CALL_OK) {
		fprintf(stderr, "grpc-floor: cannot start a batch: gRPC error %d\n", (int)e);
		return -1;
	}
	return 0;
}

/* The reply and status OK to a registered method, UNIMPLEMENTED to any other
 * path; both in one batch with the wait for the client's close. */
static int answer(struct floor_call *c)
{
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->method) {
		/* refers to the reply's bytes, does not copy them */
		c->resp = grpc_raw_byte_buffer_create(&fl.reply, 1);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->resp;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n++].data.send_status_from_server.status = c->method ? GRPC_STATUS_OK
								 : GRPC_STATUS_UNIMPLEMENTED;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->stage = FLOOR_ANSWERING;
	return start_batch(c, ops, n);
}

/* Returns -1 when the server cannot go on. */
static int handle_event(const grpc_event *ev)
{
	struct floor_call *c = ev->tag;

	if (ev->type != GRPC_OP_COMPLETE) {
		fprintf(stderr, "grpc-floor: unexpected completion-queue event %d\n",
			(int)ev->type);
		return -1;
	}
	switch (c->stage) {
	case FLOOR_REQUESTED:
		if (!ev->success) { /* the server is shutting down */
			call_free(c);
			return 0;
		}
		if (!fl.shutting_down && request_call(c->method) < 0) {
			call_free(c);
			return -1;
		}
		if (answer(c) < 0) {
			call_free(c);
			return -1;
		}
		return 0;
	case FLOOR_ANSWERING:
		call_free(c);
		return 0;
	}
	return 0;
}

static int read_reply(void)
{
	char *buf = malloc(MAX_MESSAGE + 1);
	size_t len;

	if (!buf) {
		fprintf(stderr, "grpc-floor: out of memory\n");
		return -1;
	}
	len = fread(buf, 1, MAX_MESSAGE + 1, stdin);
	if (ferror(stdin) || len > MAX_MESSAGE) {
		fprintf(stderr, "grpc-floor: the reply must be at most %d bytes on stdin\n",
			MAX_MESSAGE);
		free(buf);
		return -1;
	}
	fl.reply = grpc_slice_from_copied_buffer(buf, len);
	free(buf);
	return 0;
}

static int server_create(const char *sock, char **methods, int nmethods, void **handles)
{
	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS,
		  .value.integer = MAX_STREAMS },
	};
	grpc_channel_args cargs = { sizeof(args) / sizeof(args[0]), args };
	grpc_server_credentials *creds;
	char *addr;
	int port;

	fl.server = grpc_server_create(&cargs, NULL);
	if (!fl.server) {
		fprintf(stderr, "grpc-floor: cannot create the gRPC server\n");
		return -1;
	}
	grpc_server_register_completion_queue(fl.server, fl.cq, NULL);
	for (int i = 0; i < nmethods; i++) {
		handles[i] = grpc_server_register_method(
			fl.server, methods[i], NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!handles[i]) {
			fprintf(stderr, "grpc-floor: cannot register method '%s'\n", methods[i]);
			return -1;
		}
	}
	if (asprintf(&addr, "unix:%s", sock) < 0) {
		fprintf(stderr, "grpc-floor: out of memory\n");
		return -1;
	}
	creds = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(fl.server, addr, creds);
	grpc_server_credentials_release(creds);
	free(addr);
	if (port == 0) {
		fprintf(stderr, "grpc-floor: cannot listen on '%s'\n", sock);
		return -1;
	}
	grpc_server_start(fl.server);
	return 0;
}

/* Serves until a signal or an error; then shuts the server down. */
static int serve(void **handles, int nmethods)
{
	int rc = request_call(NULL);

	for (int i = 0; i < nmethods && rc == 0; i++)
		rc = request_call(handles[i]);
	if (rc == 0) {
		printf("ready\n");
		fflush(stdout);
	}
	for (;;) {
		gpr_timespec deadline = gpr_time_add(
			gpr_now(GPR_CLOCK_MONOTONIC),
			gpr_time_from_millis(STOP_CHECK_MS, GPR_TIMESPAN));
		grpc_event ev;

		if ((stop_signal || rc < 0) && !fl.shutting_down) {
			fl.shutting_down = true;
			grpc_server_shutdown_and_notify(fl.server, fl.cq, &shutdown_tag);
			grpc_server_cancel_all_calls(fl.server);
		}
		ev = grpc_completion_queue_next(fl.cq, deadline, NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT)
			continue;
		if (ev.type == GRPC_OP_COMPLETE && ev.tag == &shutdown_tag)
			break;
		if (handle_event(&ev) < 0)
			rc = -1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	void **handles;
	int nmethods = argc - 2, rc;

	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: grpc-floor SOCKET METHOD... < reply.bin\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (argv[i][0] != '/') {
			fprintf(stderr, "grpc-floor: METHOD must be a full path, not '%s'\n",
				argv[i]);
			return 2;
		}
	}
	handles = calloc(nmethods, sizeof(*handles));
	if (!handles) {
		fprintf(stderr, "grpc-floor: out of memory\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
		fprintf(stderr, "grpc-floor: sigaction: %s\n", strerror(errno));
		return 1;
	}
	grpc_init();
	if (read_reply() < 0) {
		free(handles);
		grpc_shutdown();
		return 2;
	}
	fl.cq = grpc_completion_queue_create_for_next(NULL);
	if (server_create(argv[1], argv + 2, nmethods, handles) < 0) {
		rc = -1;
		if (fl.server) {
			/* never started: there is nothing to wait for */
			grpc_server_destroy(fl.server);
		}
	} else {
		rc = serve(handles, nmethods);
		grpc_server_destroy(fl.server);
	}
	/* what completed after the server's shutdown did */
	grpc_completion_queue_shutdown(fl.cq);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
			fl.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.tag != &shutdown_tag)
			call_free(ev.tag);
	}
	grpc_completion_queue_destroy(fl.cq);
	grpc_slice_unref(fl.reply);
	free(handles);
	grpc_shutdown();
	if (fl.ncalls != 0) {
		fprintf(stderr, "grpc-floor: %zu calls left at exit\n", fl.ncalls);
		rc = -1;
	}
	return rc < 0 ? 1 : 0;
}
