#ifndef CRISP_NETD_NETD_H
#define CRISP_NETD_NETD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* netd/sandbox.c: capabilities and seccomp policy; fatal on failure. */
void netd_sandbox(const struct crisp_config *cfg);

/* netd/cni_conf.c: the network configuration netd would use now, chosen as
 * libcni does (.conf, .conflist and .json files of the conf dir in lexical
 * order, the first valid one). */
struct cni_status {
	bool ready;
	char file[256];    /* the chosen file, when ready */
	char network[128]; /* its network name */
	char reason[64];   /* CamelCase, when not ready */
	char message[512];
};
void cni_conf_status(const struct crisp_config *cfg, struct cni_status *st);

#endif
