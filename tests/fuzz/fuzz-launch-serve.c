/* fuzz-launch-serve: a libFuzzer target for how crisp-launch decodes and
 * checks each packet its helper sends (launch/serve.c,
 * launch_request_parse): the header, the size and fd count bounds, the
 * protobuf-c payload of a START or a KILL and the bounds of its strings.
 * crisp-launch runs it as root with every capability and no seccomp
 * filter, on bytes a helper taken over chooses. The input is
 *
 *	byte 0      how many fds came with the packet: 0 to LAUNCH_STDIO + 1
 *	            (modulo), dummy ones on /dev/null, closed after
 *	then        the packet: an 8-byte header (launch/wire.h) and its
 *	            payload (ipc/launch.proto)
 *
 * The parser must return 0 or -1; on -1 give a non-empty, NUL-terminated
 * reason that fits its buffer and leave the request untouched; on 0 hand
 * over only what the launcher's bounds allow, with each string exactly the
 * bytes the payload carried (none cut at a NUL), and each fd of the packet
 * in exactly one stdio slot. Nothing is run, forked or sent: only the
 * parser is called.
 *
 *	mkdir -p build-fuzz && cd build-fuzz
 *	../configure CC=clang --enable-fuzzing
 *	make tests/fuzz/fuzz-launch-serve
 *	mkdir -p corpus && ./tests/fuzz/fuzz-launch-serve -max_total_time=60 \
 *		corpus ../tests/fuzz/seeds/fuzz-launch-serve
 *
 * The seeds are packed by this program with the generated protobuf-c code,
 * each checked to get the verdict it was written for:
 *
 *	FUZZ_LAUNCH_SERVE_SEEDS=../tests/fuzz/seeds/fuzz-launch-serve \
 *		./tests/fuzz/fuzz-launch-serve */
#include "autoconfig.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc/launch.pb-c.h"
#include "launch/policy.h"
#include "launch/serve.h"

#define FDS_MAX (LAUNCH_STDIO + 1)

/* The C string s is exactly the bytes b. */
static bool same_string(const char *s, ProtobufCBinaryData b)
{
	return s && strlen(s) == b.len && (b.len == 0 || memcmp(s, b.data, b.len) == 0);
}

static bool strings_ok(char *const *v, size_t n, size_t max, const ProtobufCBinaryData *b)
{
	if (!v || n > max || v[n])
		return false;
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i]) >= LAUNCH_STRING_MAX || !same_string(v[i], b[i]))
			return false;
	return true;
}

/* An accepted START against its payload, decoded again here. */
static void start_verify(const struct launch_request *req, const uint8_t *payload, size_t len,
			 const int *fds, unsigned nfds)
{
	CrispIpc__LaunchStart *m = crisp_ipc__launch_start__unpack(NULL, len, payload);
	unsigned used = 0;

	if (!m || nfds > LAUNCH_STDIO || req->hdr.id == 0)
		abort();
	if (!req->program[0] || strlen(req->program) >= LAUNCH_STRING_MAX ||
	    !same_string(req->program, m->program))
		abort();
	if (req->file ? !req->file[0] || strlen(req->file) >= LAUNCH_STRING_MAX ||
				!same_string(req->file, m->file)
		      : m->file.len != 0)
		abort();
	/* argv[0] always there, and no more than LAUNCH_ARGS_MAX of either */
	if (m->n_argv < 1 || !strings_ok(req->argv, m->n_argv, LAUNCH_ARGS_MAX, m->argv) ||
	    !strings_ok(req->envp, m->n_envp, LAUNCH_ENV_MAX, m->envp))
		abort();
	if ((req->flags & ~(unsigned)LAUNCH_DETACH) || req->flags != m->flags)
		abort();
	/* each fd of the packet in the slot its stdio bit names, in order */
	for (unsigned i = 0; i < LAUNCH_STDIO; i++) {
		if (!(m->stdio & (1u << i)) ? req->stdio[i] != -1
					    : used >= nfds || req->stdio[i] != fds[used++])
			abort();
	}
	if (used != nfds || (m->stdio & ~7u))
		abort();
	crisp_ipc__launch_start__free_unpacked(m, NULL);
}

/* One packet with nfds fds: the parser's verdict, after checking it. */
static int parse_verify(const uint8_t *pkt, size_t len, unsigned nfds)
{
	struct launch_request req, before;
	int fds[FDS_MAX];
	char why[256];
	int r;

	for (unsigned i = 0; i < nfds; i++)
		if ((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			abort();
	memset(&req, 0xa5, sizeof(req));
	memcpy(&before, &req, sizeof(req));
	memset(why, 'x', sizeof(why));
	r = launch_request_parse(pkt, len, fds, nfds, &req, why, sizeof(why));
	if (r == -1) {
		if (!memchr(why, '\0', sizeof(why)) || !why[0] ||
		    memcmp(&req, &before, sizeof(req)) != 0)
			abort();
	} else if (r == 0) {
		if (len < sizeof(req.hdr) || len > LAUNCH_PACKET_MAX ||
		    memcmp(&req.hdr, pkt, sizeof(req.hdr)) != 0 || req.hdr.reserved)
			abort();
		if (req.hdr.type == LAUNCH_MSG_START)
			start_verify(&req, pkt + sizeof(req.hdr), len - sizeof(req.hdr), fds, nfds);
		else if (req.hdr.type != LAUNCH_MSG_KILL || nfds != 0 || req.signal <= 0 ||
			 req.signal >= NSIG || req.program || req.argv)
			abort();
		launch_request_free(&req);
	} else {
		abort();
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	parse_verify(data + 1, size - 1, data[0] % (FDS_MAX + 1));
	return 0;
}

/* --- the seeds ---------------------------------------------------------- */

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){ strlen(s), (uint8_t *)s };
}

/* Packs a seed, checks the parser's verdict on it and writes it to dir. */
static void seed_write(const char *dir, const char *name, uint16_t type, uint32_t id,
		       const ProtobufCMessage *payload, unsigned nfds, int want)
{
	struct launch_hdr hdr = { .type = type, .id = id };
	size_t len = sizeof(hdr) + protobuf_c_message_get_packed_size(payload);
	uint8_t *buf = malloc(1 + len);
	char path[4096];
	FILE *f;

	if (!buf)
		abort();
	buf[0] = (uint8_t)nfds;
	memcpy(buf + 1, &hdr, sizeof(hdr));
	protobuf_c_message_pack(payload, buf + 1 + sizeof(hdr));
	if (parse_verify(buf + 1, len, nfds) != want) {
		fprintf(stderr, "seed %s: the parser did not %s it\n", name,
			want ? "refuse" : "accept");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, 1 + len, f) != 1 + len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	printf("%s: %zu bytes\n", path, 1 + len);
	free(buf);
}

static void seeds_write(const char *dir)
{
	CrispIpc__LaunchStart m = CRISP_IPC__LAUNCH_START__INIT;
	CrispIpc__LaunchKill k = CRISP_IPC__LAUNCH_KILL__INIT;
	ProtobufCBinaryData argv[LAUNCH_ARGS_MAX + 1], envp[LAUNCH_ENV_MAX];
	static char longest[LAUNCH_STRING_MAX];

	/* runtimed: runc state, the one variable it passes */
	argv[0] = bin("runc");
	argv[1] = bin("--root");
	argv[2] = bin("/run/crisp/runtimed/runc");
	argv[3] = bin("state");
	argv[4] = bin("0123456789abcdef");
	envp[0] = bin(LAUNCH_PATH_ENV);
	m.program = bin("runc");
	m.argv = argv;
	m.n_argv = 5;
	m.envp = envp;
	m.n_envp = 1;
	seed_write(dir, "start-runc", LAUNCH_MSG_START, 1, &m.base, 0, 0);

	/* netd: a CNI plugin by file name, with all three stdio fds */
	argv[0] = bin("bridge");
	envp[0] = bin("CNI_COMMAND=ADD");
	envp[1] = bin("CNI_CONTAINERID=0123456789abcdef");
	envp[2] = bin("CNI_NETNS=/run/crisp/netns/0123456789abcdef");
	envp[3] = bin("CNI_IFNAME=eth0");
	envp[4] = bin("CNI_PATH=/usr/lib/cni:/opt/cni/bin");
	m.program = bin("cni");
	m.file = bin("bridge");
	m.n_argv = 1;
	m.n_envp = 5;
	m.stdio = 7;
	seed_write(dir, "start-cni-stdio", LAUNCH_MSG_START, 2, &m.base, 3, 0);

	/* a detached monitor with its stderr only */
	argv[0] = bin("crisp-monitor");
	argv[1] = bin("--runtime");
	argv[2] = bin("/usr/bin/runc");
	m.program = bin("monitor");
	m.file = (ProtobufCBinaryData){ 0, NULL };
	m.n_argv = 3;
	m.n_envp = 0;
	m.flags = LAUNCH_DETACH;
	m.stdio = 4;
	seed_write(dir, "start-monitor-detach", LAUNCH_MSG_START, 3, &m.base, 1, 0);

	/* at the bounds: every argument and variable, one string of the
	 * longest length; and one argument more */
	memset(longest, 'a', sizeof(longest) - 1);
	for (size_t i = 0; i < LAUNCH_ARGS_MAX + 1; i++)
		argv[i] = bin(i % 2 ? "-" : "x");
	for (size_t i = 0; i < LAUNCH_ENV_MAX; i++)
		envp[i] = bin("A=1");
	argv[1] = bin(longest);
	m.program = bin("exec");
	m.n_argv = LAUNCH_ARGS_MAX;
	m.n_envp = LAUNCH_ENV_MAX;
	m.flags = 0;
	m.stdio = 0;
	seed_write(dir, "start-bounds", LAUNCH_MSG_START, 4, &m.base, 0, 0);
	/* a file name one byte too long; then one argument too many */
	longest[sizeof(longest) - 1] = 'a';
	m.file = (ProtobufCBinaryData){ sizeof(longest), (uint8_t *)longest };
	m.n_argv = 1;
	m.n_envp = 0;
	seed_write(dir, "start-string-over", LAUNCH_MSG_START, 4, &m.base, 0, -1);
	m.file = (ProtobufCBinaryData){ 0, NULL };
	argv[1] = bin("-");
	m.n_argv = LAUNCH_ARGS_MAX + 1;
	seed_write(dir, "start-args-over", LAUNCH_MSG_START, 5, &m.base, 0, -1);

	k.signal = SIGTERM;
	seed_write(dir, "kill-term", LAUNCH_MSG_KILL, 1, &k.base, 0, 0);
	/* a KILL never carries an fd, and its signal is one of the system's */
	seed_write(dir, "kill-with-fd", LAUNCH_MSG_KILL, 1, &k.base, 1, -1);
	k.signal = NSIG;
	seed_write(dir, "kill-signal-over", LAUNCH_MSG_KILL, 1, &k.base, 0, -1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_LAUNCH_SERVE_SEEDS");

	if (dir) {
		seeds_write(dir);
		exit(0);
	}
	return 0;
}
