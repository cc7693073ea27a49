/* crisp-fetch: what its files share. */
#ifndef CRISP_FETCH_FETCH_H
#define CRISP_FETCH_FETCH_H

/* fetch/sandbox.c: check that imaged started us without any privilege and
 * load our own seccomp filter; fatal on failure. */
void fetch_sandbox(void);

#endif
