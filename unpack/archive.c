/* crisp-unpack's archive mode: an import archive (an OCI image layout or a
 * docker-archive, one tar maybe gzip- or zstd-compressed) read with
 * libarchive and streamed to imaged as ArchiveItem datagrams (ipc/ipc.proto),
 * so that imaged parses none of it and links no libarchive. imaged keeps
 * every rule about names, sizes, digests and the content store
 * (imaged/import.c); this only says what the tar holds.
 *
 * Holes of sparse entries are sent as the zeros they read as, and the
 * sparse map is checked here: its blocks must come in order and inside the
 * entry's size, so that exactly the header's size is sent. The socket's
 * send blocks while imaged is busy: nothing is buffered beyond one chunk. */
#include "autoconfig.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/ipc.pb-c.h"
#include "unpack/unpack.h"

static uint8_t msg_buf[UNPACK_ARCHIVE_MSG_MAX];

static void item_send(const CrispIpc__ArchiveItem *item)
{
	/* imaged stopped reading (it failed the import, or needs no more):
	 * nothing left to do. */
	if (unpack_send(&item->base, msg_buf, sizeof(msg_buf)) < 0)
		exit(errno == EPIPE ? 0 : 1);
}

static void failure_send(CrispIpc__ArchiveFailure__Stage stage, const char *reason)
{
	CrispIpc__ArchiveItem item = CRISP_IPC__ARCHIVE_ITEM__INIT;
	CrispIpc__ArchiveFailure f = CRISP_IPC__ARCHIVE_FAILURE__INIT;

	f.stage = stage;
	f.reason.data = (uint8_t *)reason;
	f.reason.len = strnlen(reason, 512);
	item.item_case = CRISP_IPC__ARCHIVE_ITEM__ITEM_FAILURE;
	item.failure = &f;
	item_send(&item);
}

static const char *archive_why(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unreadable data";
}

static ProtobufCBinaryData name_bytes(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return (ProtobufCBinaryData){ .len = n < UNPACK_ARCHIVE_NAME_MAX ? n
									 : UNPACK_ARCHIVE_NAME_MAX,
				      .data = (uint8_t *)s };
}

#ifdef CRISP_TEST_HOOKS
/* CRISP_TEST_UNPACK_ARCHIVE (from imaged's environment, a test-hooks
 * build only): "die<pass>" exits halfway through the first regular entry
 * of 1 MiB or more on reading <pass> (1 or 2), "longname<pass>" sends a
 * header whose name is longer than the protocol allows. */
static unsigned test_pass;

static bool test_hook(const char *what)
{
	const char *v = getenv("CRISP_TEST_UNPACK_ARCHIVE");
	size_t n = strlen(what);

	return v && strncmp(v, what, n) == 0 && strtoul(v + n, NULL, 10) == test_pass;
}
#endif

static int entry_send(struct archive_entry *ae)
{
	CrispIpc__ArchiveItem item = CRISP_IPC__ARCHIVE_ITEM__INIT;
	CrispIpc__ArchiveEntry e = CRISP_IPC__ARCHIVE_ENTRY__INIT;
	const char *hardlink = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);

	e.name = name_bytes(archive_entry_pathname(ae));
	if (hardlink) {
		e.type = CRISP_IPC__ARCHIVE_ENTRY__TYPE__HARDLINK;
		e.link = name_bytes(hardlink);
	} else if (type == AE_IFLNK) {
		e.type = CRISP_IPC__ARCHIVE_ENTRY__TYPE__SYMLINK;
		e.link = name_bytes(archive_entry_symlink(ae));
	} else if (type == AE_IFDIR) {
		e.type = CRISP_IPC__ARCHIVE_ENTRY__TYPE__DIRECTORY;
	} else if (type == AE_IFREG) {
		e.type = CRISP_IPC__ARCHIVE_ENTRY__TYPE__REGULAR;
		/* A negative size (none given) says "more than anything". */
		e.size = archive_entry_size(ae) < 0 ? UINT64_MAX : (uint64_t)archive_entry_size(ae);
	}
#ifdef CRISP_TEST_HOOKS
	static char long_name[UNPACK_ARCHIVE_NAME_MAX + 2];
	if (test_hook("longname")) {
		memset(long_name, 'a', sizeof(long_name) - 1);
		e.name = (ProtobufCBinaryData){ .len = sizeof(long_name) - 1,
						.data = (uint8_t *)long_name };
	}
#endif
	item.item_case = CRISP_IPC__ARCHIVE_ITEM__ITEM_ENTRY;
	item.entry = &e;
	item_send(&item);
	return e.type == CRISP_IPC__ARCHIVE_ENTRY__TYPE__REGULAR;
}

/* Send len bytes of p, or of zeros when p is NULL, in chunks. */
static void data_send(const void *p, size_t len)
{
	static const uint8_t zeros[UNPACK_ARCHIVE_CHUNK];
	CrispIpc__ArchiveItem item = CRISP_IPC__ARCHIVE_ITEM__INIT;

	item.item_case = CRISP_IPC__ARCHIVE_ITEM__ITEM_DATA;
	while (len > 0) {
		size_t n = len < UNPACK_ARCHIVE_CHUNK ? len : UNPACK_ARCHIVE_CHUNK;

		item.data.data = p ? (uint8_t *)p : (uint8_t *)zeros;
		item.data.len = n;
		item_send(&item);
		if (p)
			p = (const uint8_t *)p + n;
		len -= n;
	}
}

/* One regular entry's data: exactly size bytes, or a failure. */
static int data_stream(struct archive *a, int64_t size)
{
	const void *p;
	size_t n;
	la_int64_t off;
	int64_t got = 0;
	int ar;

	while ((ar = archive_read_data_block(a, &p, &n, &off)) == ARCHIVE_OK) {
		if (off < got || off > size || (int64_t)n > size - off) {
			failure_send(CRISP_IPC__ARCHIVE_FAILURE__STAGE__DATA,
				     "data outside its size (bad sparse map)");
			return -1;
		}
		data_send(NULL, (size_t)(off - got));
		got = off;
#ifdef CRISP_TEST_HOOKS
		if (test_hook("die") && size >= (1 << 20) && got + (int64_t)n > size / 2) {
			data_send(p, n / 2);
			_exit(3);
		}
#endif
		data_send(p, n);
		got += (int64_t)n;
	}
	if (ar != ARCHIVE_EOF) {
		failure_send(CRISP_IPC__ARCHIVE_FAILURE__STAGE__DATA, archive_why(a));
		return -1;
	}
	data_send(NULL, (size_t)(size - got));
	return 0;
}

int unpack_archive_stream(unsigned pass)
{
	CrispIpc__ArchiveItem item = CRISP_IPC__ARCHIVE_ITEM__INIT;
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	int ar;

#ifdef CRISP_TEST_HOOKS
	test_pass = pass;
#endif
	log_debug("reading the archive (pass %u)", pass);
	if (!a)
		fatal("out of memory");
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, UNPACK_BLOB_FD, 64 * 1024) != ARCHIVE_OK) {
		failure_send(CRISP_IPC__ARCHIVE_FAILURE__STAGE__OPEN, archive_why(a));
		archive_read_free(a);
		return 0;
	}
	while ((ar = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		/* Size checked by the sender of the entry: below INT64_MAX. */
		if (entry_send(ae) && data_stream(a, archive_entry_size(ae)) < 0) {
			archive_read_free(a);
			return 0;
		}
	}
	if (ar != ARCHIVE_EOF) {
		failure_send(CRISP_IPC__ARCHIVE_FAILURE__STAGE__HEADER, archive_why(a));
	} else {
		item.item_case = CRISP_IPC__ARCHIVE_ITEM__ITEM_END;
		item.end = true;
		item_send(&item);
	}
	archive_read_free(a);
	return 0;
}
