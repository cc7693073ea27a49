#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"

static _noreturn_ void oom(void)
{
	static const char msg[] = "<2>crisp: out of memory\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	va_end(ap);
	return p;
}

int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

void closep(int *fd)
{
	if (fd)
		*fd = safe_close(*fd);
}

int fd_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int fd_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

int parse_uint64(const char *s, int base, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE || v > max)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int mkdir_openat(int dirfd, const char *name, unsigned mode)
{
	int fd;

	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int mkdir_p(const char *path, unsigned mode)
{
	_cleanup_free_ char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#include <arpa/inet.h>

static int cidr_valid(const char *s, int *ret_family, char *why, size_t whylen)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *slash = strchr(s, '/');
	uint64_t prefix;
	int family;

	if (!slash || (size_t)(slash - s) >= sizeof(addr)) {
		snprintf(why, whylen, "'%s' is not of the form ADDRESS/PREFIX", s);
		return -1;
	}
	memcpy(addr, s, slash - s);
	addr[slash - s] = '\0';
	family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, addr, buf) != 1) {
		snprintf(why, whylen, "'%s' is not an IP%s address", addr,
			 family == AF_INET6 ? "v6" : "v4");
		return -1;
	}
	if (parse_uint64(slash + 1, 10, family == AF_INET6 ? 128 : 32, &prefix) < 0) {
		snprintf(why, whylen, "'%s' is not a prefix length from 0 to %d", slash + 1,
			 family == AF_INET6 ? 128 : 32);
		return -1;
	}
	*ret_family = family;
	return 0;
}

int cidr_list_valid(const char *s, char *why, size_t whylen)
{
	_cleanup_free_ char *copy = xstrdup(s);
	bool seen4 = false, seen6 = false;
	char *save = NULL;
	int family, n = 0;

	if (strlen(s) > CIDR_LIST_MAX) {
		snprintf(why, whylen, "a pod CIDR list is at most %d characters", CIDR_LIST_MAX);
		return -1;
	}
	for (char *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save), n++) {
		if (cidr_valid(c, &family, why, whylen) < 0)
			return -1;
		if ((family == AF_INET && seen4) || (family == AF_INET6 && seen6)) {
			snprintf(why, whylen, "more than one IPv%d range in '%s'",
				 family == AF_INET ? 4 : 6, s);
			return -1;
		}
		seen4 |= family == AF_INET;
		seen6 |= family == AF_INET6;
	}
	if (n == 0 || s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,")) {
		snprintf(why, whylen, "'%s' is not a comma-separated list of CIDRs", s);
		return -1;
	}
	return 0;
}
