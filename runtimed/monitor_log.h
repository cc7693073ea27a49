/* crisp-monitor's CRI log writer and its two small JSON needs (internal to
 * the monitor: runtimed/monitor.c and runtimed/monitor_log.c). */
#ifndef CRISP_RUNTIMED_MONITOR_LOG_H
#define CRISP_RUNTIMED_MONITOR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_stream {
	LOG_STDOUT,
	LOG_STDERR,
};

/* One stream's line assembly: bytes of a line not yet written. */
struct log_line {
	char *buf; /* log_max bytes */
	size_t len;
	uint64_t since_ms; /* when the oldest held byte arrived */
};

struct log_writer {
	int fd;           /* the CRI log file, O_APPEND */
	size_t max;       /* the longest record content (--log-max) */
	char *record;     /* scratch for one record: timestamp, tags, content */
	uint64_t dropped; /* records lost to write errors (disk full) */
	bool broken;      /* the last record was cut short: end it first */
	struct log_line lines[2];
};

/* How long a fragment without newline is held for the rest of its line. */
#define LOG_HOLD_MS 100

int log_writer_init(struct log_writer *w, int fd, size_t max);
/* Takes bytes read from a stream: writes every complete line as F, and
 * content longer than max as P records of exactly max bytes. */
void log_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len);
/* Writes what a stream holds as a P record: at EOF, or when it was held
 * LOG_HOLD_MS (force false: only then). */
void log_flush(struct log_writer *w, enum log_stream s, bool force, uint64_t now);
/* The earliest time a held fragment must be flushed, or 0 if none is held. */
uint64_t log_next_deadline(const struct log_writer *w);

/* RFC 3339 with nanoseconds in UTC: "2026-11-28T15:39:45.123456789Z"
 * (buf >= 31 bytes). Returns the length. */
size_t log_timestamp(char *buf, size_t size);

uint64_t monotonic_ms(void);

/* Appends s as a JSON string (quotes included) to out (size bytes, NUL
 * terminated, truncated if need be); control characters are escaped and
 * bytes that are not valid UTF-8 become U+FFFD. */
void json_quote(char *out, size_t size, const char *s, size_t len);

/* Finds the value of the string member "key" in the one-line JSON object
 * line (len bytes) and decodes it into out (NUL terminated, truncated).
 * Returns 0, or -1 when line is not an object or has no such string. */
int json_object_string(const char *line, size_t len, const char *key, char *out, size_t size);

#endif
