/* crisp-fetch: what its files share. */
#ifndef CRISP_FETCH_FETCH_H
#define CRISP_FETCH_FETCH_H

#include <stddef.h>

/* fetch/sandbox.c: check that imaged started us without any privilege and
 * load our own seccomp filter; fatal on failure. */
void fetch_sandbox(void);
/* fetch/sandbox.c: once configured, restrict what it may read to what a
 * registry client needs, plus the configured CA files (Landlock). */
void fetch_landlock(const char *const *extra, size_t nextra);

#endif
