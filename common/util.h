/* Small helpers every crisp process uses: cleanup attributes, ownership
 * transfer, allocation that never returns NULL, fd utilities. */
#ifndef CRISP_COMMON_UTIL_H
#define CRISP_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _unused_ __attribute__((unused))

static inline void freep(void *p)
{
	free(*(void **)p);
}
void closep(int *fd);

/* Hand ownership of a pointer or fd to someone else: the cleanup attribute of
 * the variable then has nothing left to release. */
#define TAKE_PTR(p)                     \
	({                              \
		__typeof__(p) _p = (p); \
		(p) = NULL;             \
		_p;                     \
	})
#define TAKE_FD(fd)             \
	({                      \
		int _fd = (fd); \
		(fd) = -1;      \
		_fd;            \
	})

/* Allocation failure in a daemon this small is not recoverable in any useful
 * way; these abort with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

/* close() that keeps errno and ignores -1; returns -1 for "fd = safe_close(fd)". */
int safe_close(int fd);
int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);

/* Parse a whole decimal (or 0-prefixed octal with base 0) number; -EINVAL or
 * -ERANGE instead of silently accepting junk. */
int parse_uint64(const char *s, int base, uint64_t max, uint64_t *ret);

/* Create directory name under dirfd (kept if it exists) and open it, never
 * through a symlink planted in its place: an fd, or -errno. */
int mkdir_openat(int dirfd, const char *name, unsigned mode);

/* Create a directory and its parents with the given mode (existing ones kept). */
int mkdir_p(const char *path, unsigned mode);

static inline bool streq(const char *a, const char *b)
{
	return a && b && __builtin_strcmp(a, b) == 0;
}

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

#endif

/* "10.88.0.0/16" or a comma-separated list of IPv4/IPv6 CIDRs, at most one
 * of each family (dual stack): 0 if valid. */
#define CIDR_LIST_MAX 256
int cidr_list_valid(const char *s, char *why, size_t whylen);
