#ifndef CRISP_IMAGED_IMAGED_H
#define CRISP_IMAGED_IMAGED_H

#include "common/config.h"

/* imaged/sandbox.c: capabilities and seccomp policy; fatal on failure. */
void imaged_sandbox(const struct crisp_config *cfg);

#endif
