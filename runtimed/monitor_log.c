/* crisp-monitor: the container log in the CRI format, and JSON strings.
 *
 * A record is "<RFC 3339 nano UTC> <stdout|stderr> <P|F> <content>\n"
 * (PROTOCOLS.md, "CRI container log format"), written with one write(2) on
 * an O_APPEND file so that stdout and stderr records never interleave. A
 * line is held until its newline, for at most LOG_HOLD_MS, so a line that
 * the container writes in two write(2)s still makes one F record; content
 * longer than the maximum is cut into P records of exactly that size, as
 * containerd does, and the kubelet joins P records up to the next F. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtimed/monitor_log.h"

/* timestamp, stream, tag, three spaces, newline and a leading newline that
 * repairs a record cut short by a failed write */
#define RECORD_OVERHEAD 64

uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

size_t log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

int log_writer_init(struct log_writer *w, int fd, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->max = max;
	w->record = malloc(max + RECORD_OVERHEAD);
	w->lines[LOG_STDOUT].buf = malloc(max);
	w->lines[LOG_STDERR].buf = malloc(max);
	if (!w->record || !w->lines[0].buf || !w->lines[1].buf)
		return -1;
	return 0;
}

/* Writes all of buf, or fails: a regular file only writes short when the
 * disk fills up or an error occurs. */
static int write_all(int fd, const char *buf, size_t len, size_t *written)
{
	*written = 0;
	while (*written < len) {
		ssize_t n = write(fd, buf + *written, len - *written);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		*written += (size_t)n;
	}
	return 0;
}

/* Cuts the last n bytes off the log: the monitor is its only writer. fstat
 * is the raw system call, as its seccomp filter allows it (glibc's fstat()
 * would be newfstatat). */
static bool unwrite(int fd, size_t n)
{
	struct stat st;

	return syscall(SYS_fstat, fd, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size >= n && ftruncate(fd, st.st_size - (off_t)n) == 0;
}

static void write_record(struct log_writer *w, enum log_stream s, bool partial, const char *content,
			 size_t len)
{
	char *p = w->record;
	size_t done;

	if (w->broken)
		*p++ = '\n';
	p += log_timestamp(p, 40);
	p += sprintf(p, " %s %c ", s == LOG_STDOUT ? "stdout" : "stderr", partial ? 'P' : 'F');
	memcpy(p, content, len);
	p += len;
	*p++ = '\n';
	if (write_all(w->fd, w->record, (size_t)(p - w->record), &done) < 0) {
		/* Never stall the container on the log: the record is lost
		 * and counted. What of it was written (the disk filled up in
		 * its middle) is taken back, so that the log holds whole
		 * records only; where that fails, the next record starts on a
		 * line of its own. */
		w->dropped++;
		if (done > 0 && !unwrite(w->fd, done))
			w->broken = true;
		return;
	}
	w->broken = false;
}

void log_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len)
{
	struct log_line *l = &w->lines[s];

	while (len > 0) {
		const char *nl;
		size_t take;

		if (data[0] == '\n') {
			size_t n = l->len;
			/* containerd strips "\r\n" too: a terminal's lines */
			if (n > 0 && l->buf[n - 1] == '\r')
				n--;
			write_record(w, s, false, l->buf, n);
			l->len = 0;
			data++;
			len--;
			continue;
		}
		/* full, and the line goes on: a fragment of exactly max */
		if (l->len == w->max) {
			write_record(w, s, true, l->buf, l->len);
			l->len = 0;
		}
		nl = memchr(data, '\n', len);
		take = nl ? (size_t)(nl - data) : len;
		if (take > w->max - l->len)
			take = w->max - l->len;
		if (l->len == 0)
			l->since_ms = monotonic_ms();
		memcpy(l->buf + l->len, data, take);
		l->len += take;
		data += take;
		len -= take;
	}
}

void log_flush(struct log_writer *w, enum log_stream s, bool force, uint64_t now)
{
	struct log_line *l = &w->lines[s];

	if (l->len == 0 || (!force && now - l->since_ms < LOG_HOLD_MS))
		return;
	write_record(w, s, true, l->buf, l->len);
	l->len = 0;
}

uint64_t log_next_deadline(const struct log_writer *w)
{
	uint64_t next = 0;

	for (int i = 0; i < 2; i++) {
		uint64_t t = w->lines[i].since_ms + LOG_HOLD_MS;
		if (w->lines[i].len > 0 && (next == 0 || t < next))
			next = t;
	}
	return next;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t want;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		want = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		want = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		want = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < want)
		return 0;
	for (size_t i = 1; i < want; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are invalid */
	if ((want == 2 && cp < 0x80) || (want == 3 && cp < 0x800) || (want == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return want;
}

void json_quote(char *out, size_t size, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t o = 0;

#define PUT(str, n)                          \
	do {                                 \
		if (o + (n) + 2 > size)      \
			goto out;            \
		memcpy(out + o, (str), (n)); \
		o += (n);                    \
	} while (0)
	if (size < 3) {
		if (size)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	while (p < end) {
		char esc[8];
		size_t n;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p++;
			PUT(esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p++);
			PUT(esc, 6);
		} else if ((n = utf8_len(p, (size_t)(end - p))) > 0) {
			PUT(p, n);
			p += n;
		} else {
			PUT("\xef\xbf\xbd", 3); /* U+FFFD */
			p++;
		}
	}
out:
#undef PUT
	out[o++] = '"';
	out[o] = '\0';
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static int hex4(const char *p, const char *end, uint32_t *ret)
{
	uint32_t v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*ret = v;
	return 0;
}

/* Decodes the JSON string at *pp (at its opening quote) into out (may be
 * NULL: skip it), NUL terminated and truncated to size; advances *pp past
 * the closing quote. */
static int parse_string(const char **pp, const char *end, char *out, size_t size)
{
	const char *p = *pp;
	size_t o = 0;

	if (p >= end || *p++ != '"')
		return -1;
	for (;;) {
		char buf[4];
		size_t n = 1;
		uint32_t cp;

		if (p >= end || (unsigned char)*p < 0x20)
			return -1;
		if (*p == '"')
			break;
		if (*p != '\\') {
			buf[0] = *p++;
		} else {
			if (++p >= end)
				return -1;
			switch (*p++) {
			case '"':
				buf[0] = '"';
				break;
			case '\\':
				buf[0] = '\\';
				break;
			case '/':
				buf[0] = '/';
				break;
			case 'b':
				buf[0] = '\b';
				break;
			case 'f':
				buf[0] = '\f';
				break;
			case 'n':
				buf[0] = '\n';
				break;
			case 'r':
				buf[0] = '\r';
				break;
			case 't':
				buf[0] = '\t';
				break;
			case 'u':
				if (hex4(p, end, &cp) < 0)
					return -1;
				p += 4;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					uint32_t lo;
					if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
					    hex4(p + 2, end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
						return -1;
					p += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					return -1;
				}
				if (cp < 0x80) {
					buf[0] = (char)cp;
				} else if (cp < 0x800) {
					buf[0] = (char)(0xc0 | cp >> 6);
					buf[1] = (char)(0x80 | (cp & 0x3f));
					n = 2;
				} else if (cp < 0x10000) {
					buf[0] = (char)(0xe0 | cp >> 12);
					buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					buf[2] = (char)(0x80 | (cp & 0x3f));
					n = 3;
				} else {
					buf[0] = (char)(0xf0 | cp >> 18);
					buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
					buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
					buf[3] = (char)(0x80 | (cp & 0x3f));
					n = 4;
				}
				break;
			default:
				return -1;
			}
		}
		if (out && o + n < size) {
			memcpy(out + o, buf, n);
			o += n;
		}
	}
	if (out && size)
		out[o] = '\0';
	*pp = p + 1;
	return 0;
}

/* Skips one value of any type; nesting is bounded by the line itself. */
static int skip_value(const char **pp, const char *end)
{
	const char *p = *pp;
	int depth = 0;

	do {
		p = skip_ws(p, end);
		if (p >= end)
			return -1;
		if (*p == '"') {
			if (parse_string(&p, end, NULL, 0) < 0)
				return -1;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (--depth < 0)
				return -1;
			p++;
		} else if (*p == ',' || *p == ':') {
			if (depth == 0)
				return -1;
			p++;
		} else {
			/* number, true, false, null */
			const char *start = p;
			while (p < end && *p && strchr("+-.0123456789eEtruefalsn", *p))
				p++;
			if (p == start)
				return -1;
		}
	} while (depth > 0);
	*pp = p;
	return 0;
}

int json_object_string(const char *line, size_t len, const char *key, char *out, size_t size)
{
	const char *p = line, *end = line + len;

	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return -1;
	for (;;) {
		char name[128];

		p = skip_ws(p, end);
		if (p < end && *p == '}')
			return -1;
		if (parse_string(&p, end, name, sizeof(name)) < 0)
			return -1;
		p = skip_ws(p, end);
		if (p >= end || *p++ != ':')
			return -1;
		p = skip_ws(p, end);
		if (strcmp(name, key) == 0 && p < end && *p == '"')
			return parse_string(&p, end, out, size);
		if (skip_value(&p, end) < 0)
			return -1;
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p++;
		else
			return -1;
	}
}
