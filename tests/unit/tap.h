/* A tiny TAP producer for the unit tests (make check runs them through
 * automake's tap-driver.sh). Header-only: each test program includes it once.
 *
 *	plan(n);                 optional; without it done_testing() prints the plan
 *	ok(cond, "what %d", x);  "ok N - what" / "not ok N - what"; returns cond
 *	is_int(got, want, ...)   ok() that prints both values when they differ
 *	is_str(got, want, ...)   same for strings (NULL allowed)
 *	like(got, needle, ...)   ok() when got contains needle
 *	diag("...");             "# ..." on stdout
 *	return done_testing();   the exit code: 0 only if every test passed and
 *	                         the count matches the plan */
#ifndef CRISP_TESTS_TAP_H
#define CRISP_TESTS_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_run, tap_failed, tap_planned = -1;

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_vdiag(const char *fmt, va_list ap)
{
	char buf[4096];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* every line of a diagnostic needs its "#" */
	for (char *line = buf, *nl; line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		printf("# %s\n", line);
	}
	fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

static inline bool tap_vok(bool cond, const char *file, int line, const char *fmt, va_list ap)
{
	char desc[1024];

	vsnprintf(desc, sizeof(desc), fmt, ap);
	/* '#' would start a TAP directive */
	for (char *p = desc; *p; p++)
		if (*p == '#' || *p == '\n')
			*p = ' ';
	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_run, desc);
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 4, 5))) static inline bool tap_ok(bool cond, const char *file,
								int line, const char *fmt, ...)
{
	va_list ap;
	bool r;
	va_start(ap, fmt);
	r = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                               \
	({                                                                   \
		long long _g = (long long)(got), _w = (long long)(want);     \
		bool _r = tap_ok(_g == _w, __FILE__, __LINE__, __VA_ARGS__); \
		if (!_r)                                                     \
			diag("  got: %lld\n  expected: %lld", _g, _w);       \
		_r;                                                          \
	})

#define is_str(got, want, ...)                                                                  \
	({                                                                                      \
		const char *_g = (got), *_w = (want);                                           \
		bool _r = tap_ok(_g && _w ? strcmp(_g, _w) == 0 : _g == _w, __FILE__, __LINE__, \
				 __VA_ARGS__);                                                  \
		if (!_r)                                                                        \
			diag("  got: '%s'\n  expected: '%s'", _g ? _g : "(null)",               \
			     _w ? _w : "(null)");                                               \
		_r;                                                                             \
	})

#define like(got, needle, ...)                                                                    \
	({                                                                                        \
		const char *_g = (got), *_n = (needle);                                           \
		bool _r = tap_ok(_g && strstr(_g, _n), __FILE__, __LINE__, __VA_ARGS__);          \
		if (!_r)                                                                          \
			diag("  got: '%s'\n  expected to contain: '%s'", _g ? _g : "(null)", _n); \
		_r;                                                                               \
	})

/* Prints the plan if there was none; returns the process exit code. */
static inline int done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		diag("planned %d tests but ran %d", tap_planned, tap_run);
	if (tap_failed)
		diag("failed %d of %d tests", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed == 0 && (tap_planned < 0 || tap_planned == tap_run) ? 0 : 1;
}

#endif
