/* The CNI interface of netd lives in netd/netd.h, with the rest of netd's
 * internal interfaces (one header per helper keeps the process readable as a
 * whole); this header only forwards to it. */
#ifndef CRISP_NETD_CNI_H
#define CRISP_NETD_CNI_H
#include "netd/netd.h"
#endif
