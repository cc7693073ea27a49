#ifndef CRISP_RUNTIMED_RUNTIMED_H
#define CRISP_RUNTIMED_RUNTIMED_H

#include "common/config.h"

/* runtimed/sandbox.c: capabilities and seccomp policy; fatal on failure. */
void runtimed_sandbox(const struct crisp_config *cfg);

#endif
