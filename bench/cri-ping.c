/* cri-ping: time unary CRI calls from C, so that a benchmark of short calls
 * (Version, ListContainers, ListPodSandbox) measures the runtime and not the
 * client: the Python gRPC client costs ~150 us per call by itself, more than
 * some of the calls it would time.
 *
 *     cri-ping SOCKET METHOD CALLS < request.bin
 *
 * METHOD is a full path, e.g. /runtime.v1.RuntimeService/ListContainers;
 * stdin is the serialized request message. One channel, calls one after the
 * other after one warm-up call; prints one line per call: its latency in
 * microseconds. Exits non-zero, with the status on stderr, if a call fails. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#define REQUEST_MAX (4 << 20)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int call_once(grpc_channel *ch, grpc_completion_queue *cq, grpc_slice method,
		     const char *req, size_t len)
{
	grpc_metadata_array initial, trailing;
	grpc_byte_buffer *out, *in = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice(), payload = grpc_slice_from_copied_buffer(req, len);
	grpc_op ops[6];
	grpc_call *call;
	grpc_event ev;
	int tag = 0, rc = 0;

	memset(ops, 0, sizeof(ops));
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	out = grpc_raw_byte_buffer_create(&payload, 1);
	grpc_slice_unref(payload);
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
					gpr_time_from_seconds(30, GPR_TIMESPAN), NULL);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = out;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &in;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "cri-ping: cannot start the call\n");
		rc = -1;
	} else {
		ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME),
						 NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success || status != GRPC_STATUS_OK) {
			char *d = grpc_slice_to_c_string(details);
			fprintf(stderr, "cri-ping: call failed: status %d: %s\n", (int)status, d);
			gpr_free(d);
			rc = -1;
		}
	}
	grpc_byte_buffer_destroy(out);
	if (in)
		grpc_byte_buffer_destroy(in);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_call_unref(call);
	return rc;
}

int main(int argc, char **argv)
{
	static char req[REQUEST_MAX];
	grpc_channel_credentials *creds;
	grpc_completion_queue *cq;
	grpc_channel *ch;
	grpc_slice method;
	char *target, *end;
	size_t len;
	long calls;
	int rc = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: cri-ping SOCKET METHOD CALLS < request.bin\n");
		return 2;
	}
	errno = 0;
	calls = strtol(argv[3], &end, 10);
	if (errno || *end || calls < 1 || calls > 1000000) {
		fprintf(stderr, "cri-ping: CALLS must be 1..1000000, not '%s'\n", argv[3]);
		return 2;
	}
	len = fread(req, 1, sizeof(req), stdin);
	if (ferror(stdin) || !feof(stdin)) {
		fprintf(stderr, "cri-ping: the request must be at most %d bytes\n", REQUEST_MAX);
		return 2;
	}
	if (asprintf(&target, "unix:%s", argv[1]) < 0)
		return 2;
	grpc_init();
	creds = grpc_insecure_credentials_create();
	ch = grpc_channel_create(target, creds, NULL);
	cq = grpc_completion_queue_create_for_pluck(NULL);
	method = grpc_slice_from_static_string(argv[2]);
	if (call_once(ch, cq, method, req, len) < 0) /* connects; not timed */
		rc = 1;
	for (long i = 0; i < calls && rc == 0; i++) {
		double t = now_us();

		if (call_once(ch, cq, method, req, len) < 0)
			rc = 1;
		else
			printf("%.1f\n", now_us() - t);
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		       .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_channel_destroy(ch);
	grpc_channel_credentials_release(creds);
	grpc_shutdown();
	free(target);
	return rc;
}
