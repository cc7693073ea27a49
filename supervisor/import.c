/* crisp-import: import an image archive (an OCI image layout or a
 * docker-archive tar, maybe gzip- or zstd-compressed) into a running crispd, for
 * nodes without a registry.
 *
 * The privilege to import is the privilege to write into imaged's spool
 * directory <root_dir>/imaged/import, which is root's (0700). This tool,
 * run as root, copies the archive there under a fresh name and then asks
 * the frontend, over the CRI socket, to import that name
 * (/crisp.v1.Admin/ImportImage). imaged opens the file relative to its
 * spool directory only and removes it when done; we remove it too if the
 * call never got that far. No path crosses the socket, so no client can
 * make crisp read a file of its choosing. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "common/config.h"
#include "common/util.h"
#include "ipc/crisp-admin.pb-c.h"

#define DEFAULT_CONFIG CRISP_SYSCONFDIR "/crisp/crisp.conf"
#define SPOOL_PREFIX "crisp-import-"
#define SPOOL_SUFFIX ".tar"
#define MAX_NAMES 32

static const char *prog = "crisp-import";

static void usage(FILE *out)
{
	fprintf(out,
		"usage: crisp-import [--config FILE] [--socket PATH] [--name REF]... ARCHIVE\n"
		"\n"
		"Import an OCI image layout or docker-archive tar (gzip or zstd allowed; - for "
		"stdin)\n"
		"into the running crispd. Must run as root.\n"
		"\n"
		"  -c, --config FILE  crisp's configuration (default %s)\n"
		"  -s, --socket PATH  the CRI socket (default: from the configuration)\n"
		"  -n, --name REF     name the image REF instead of the archive's names\n"
		"                     (repeatable; the archive must hold one image)\n"
		"  -h, --help         this text\n",
		DEFAULT_CONFIG);
}

_noreturn_ static void die(const char *fmt, ...) _printf_(1, 2);
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* The spool directory: it must be root's alone, or anyone could have
 * planted what we are about to name. */
static int spool_open(const char *root_dir)
{
	_cleanup_free_ char *path = xasprintf("%s/imaged/import", root_dir);
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		die("cannot open the import spool %s: %s (is crispd running?)", path,
		    strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077))
		die("%s is not a directory of root's with mode 0700: refusing to use it", path);
	return fd;
}

static void copy_all(int in, int out, const char *what)
{
	static char buf[1 << 16];

	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n == 0)
			return;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("reading %s: %s", what, strerror(errno));
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				die("writing into the import spool: %s", strerror(errno));
			off += w;
		}
	}
}

/* Copy the archive into the spool under a fresh name, which appears only
 * once the copy is whole (an O_TMPFILE linked in, or a hidden name renamed). */
static char *spool_copy(int dirfd, int in, const char *what)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[32];
	char id[33];
	char *name;
	int fd;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		die("getrandom: %s", strerror(errno));
	for (size_t i = 0; i < 32; i++)
		id[i] = alnum[rnd[i] % 36];
	id[32] = '\0';
	name = xasprintf(SPOOL_PREFIX "%s" SPOOL_SUFFIX, id);
	fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		char proc[64];
		copy_all(in, fd, what);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) < 0)
			die("cannot link the archive into the import spool: %s", strerror(errno));
	} else {
		_cleanup_free_ char *tmp = xasprintf(".%s.tmp", name);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			die("cannot create a file in the import spool: %s", strerror(errno));
		copy_all(in, fd, what);
		if (renameat(dirfd, tmp, dirfd, name) < 0) {
			unlinkat(dirfd, tmp, 0);
			die("cannot rename into the import spool: %s", strerror(errno));
		}
	}
	close(fd);
	return name;
}

/* One unary call; the reply bytes in *ret (NULL when the call failed, with
 * the status in *code and *details). */
static grpc_status_code call_import(const char *socket_path, const uint8_t *req, size_t len,
				    grpc_byte_buffer **ret, char **details)
{
	_cleanup_free_ char *target = xasprintf("unix:%s", socket_path);
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(target, creds, NULL);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice method = grpc_slice_from_static_string("/crisp.v1.Admin/ImportImage");
	grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, len);
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
	grpc_metadata_array md_in, md_trail;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice status_details;
	grpc_op ops[6];
	grpc_call *call;
	grpc_event ev;

	grpc_metadata_array_init(&md_in);
	grpc_metadata_array_init(&md_trail);
	*ret = NULL;
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
					gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	memset(ops, 0, sizeof(ops));
	/* No wait-for-ready: with crispd down, fail at once (UNAVAILABLE). */
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_in;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = ret;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &status_details;
	if (grpc_call_start_batch(call, ops, ARRAY_SIZE(ops), (void *)1, NULL) != GRPC_CALL_OK)
		die("cannot start the gRPC call");
	ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE || !ev.success)
		die("the gRPC call to %s failed", socket_path);
	*details = grpc_slice_to_c_string(status_details);
	grpc_slice_unref(status_details);
	if (status != GRPC_STATUS_OK && *ret) {
		grpc_byte_buffer_destroy(*ret);
		*ret = NULL;
	}
	grpc_metadata_array_destroy(&md_in);
	grpc_metadata_array_destroy(&md_trail);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(req_slice);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
	grpc_channel_destroy(ch);
	grpc_channel_credentials_release(creds);
	return status;
}

static void print_reply(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_slice all;
	Crisp__V1__ImportImageResponse *resp;

	if (!grpc_byte_buffer_reader_init(&rd, bb))
		die("cannot read the reply");
	all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	resp = crisp__v1__import_image_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
							GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	if (!resp)
		die("malformed reply from crispd");
	for (size_t i = 0; i < resp->n_images; i++) {
		const Crisp__V1__ImportedImage *img = resp->images[i];
		printf("imported %s", img->id);
		for (size_t j = 0; j < img->n_repo_tags; j++)
			printf(" %s", img->repo_tags[j]);
		for (size_t j = 0; j < img->n_repo_digests; j++)
			printf(" %s", img->repo_digests[j]);
		putchar('\n');
	}
	crisp__v1__import_image_response__free_unpacked(resp, NULL);
}

static const char *status_name(grpc_status_code c)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};
	return (unsigned)c < ARRAY_SIZE(names) ? names[c] : "UNKNOWN";
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config_path = DEFAULT_CONFIG, *socket_path = NULL, *archive;
	bool config_required = false;
	char *names[MAX_NAMES];
	size_t n_names = 0;
	struct crisp_config cfg;
	struct crisp_error err;
	Crisp__V1__ImportImageRequest req = CRISP__V1__IMPORT_IMAGE_REQUEST__INIT;
	grpc_byte_buffer *reply;
	grpc_status_code status;
	_cleanup_free_ char *details = NULL, *file = NULL, *dropins = NULL, *copy = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	int c, dirfd, in;

	while ((c = getopt_long(argc, argv, "c:s:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			config_required = true;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'n':
			if (n_names == MAX_NAMES)
				die("at most %d names", MAX_NAMES);
			names[n_names++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	archive = argv[optind];
	/* Refuse early: the spool is root's, and so is the import method. */
	if (geteuid() != 0)
		die("must run as root (importing images takes root)");
	copy = xstrdup(config_path);
	dropins = xasprintf("%s/crisp.conf.d", dirname(copy));
	config_init(&cfg);
	if (config_load(&cfg, config_path, config_required, dropins, &err) < 0)
		die("%s", err.msg);
	if (!socket_path)
		socket_path = cfg.socket;

	in = streq(archive, "-") ? STDIN_FILENO : open(archive, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		die("cannot open %s: %s", archive, strerror(errno));
	dirfd = spool_open(cfg.root_dir);
	file = spool_copy(dirfd, in, streq(archive, "-") ? "standard input" : archive);
	if (in != STDIN_FILENO)
		close(in);

	req.file = file;
	req.names = names;
	req.n_names = n_names;
	buf = xmalloc(crisp__v1__import_image_request__get_packed_size(&req) + 1);
	grpc_init();
	status = call_import(socket_path, buf, crisp__v1__import_image_request__pack(&req, buf),
			     &reply, &details);
	/* imaged removed it already, unless the call never reached it. */
	if (unlinkat(dirfd, file, 0) < 0 && errno != ENOENT)
		fprintf(stderr, "%s: cannot remove %s from the import spool: %s\n", prog, file,
			strerror(errno));
	close(dirfd);
	if (status != GRPC_STATUS_OK) {
		fprintf(stderr, "%s: import of %s failed: %s: %s\n", prog, archive,
			status_name(status), details);
		grpc_shutdown();
		config_free(&cfg);
		return 1;
	}
	if (reply) {
		print_reply(reply);
		grpc_byte_buffer_destroy(reply);
	}
	grpc_shutdown();
	config_free(&cfg);
	return 0;
}
