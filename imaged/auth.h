/* Which registry a pull's credentials may go to. imaged applies this before
 * a request leaves for crisp-fetch, so credentials given for one registry
 * never reach the process that talks to another. */
#ifndef CRISP_IMAGED_AUTH_H
#define CRISP_IMAGED_AUTH_H

#include <stdbool.h>

/* Whether credentials a CRI AuthConfig gives with server_address may be sent
 * to registry_host, the host[:port] an image names (image_ref_registry_host()).
 * An empty server_address names no host: the credentials are for whatever
 * registry the image is on. Otherwise it must name that host[:port], case
 * aside, with or without an http:// or https:// scheme and a path after it;
 * docker.io, index.docker.io and registry-1.docker.io are one host. As in
 * containerd, a pull whose credentials name another host goes without them
 * rather than hand them to a registry they were not given for. */
bool auth_server_matches(const char *server_address, const char *registry_host);

/* auth_server_matches() for a pull of image; when false, logs at info which
 * host the credentials were for (never the credentials), and the pull is to
 * go without them. */
bool auth_credentials_apply(const char *server_address, const char *registry_host,
			    const char *image);

#endif
