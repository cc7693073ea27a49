/* Which registry a pull's credentials are for: imaged decides it before it
 * hands them to crisp-fetch (fetch/auth.c does the authenticating). */
#include "autoconfig.h"

#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "imaged/auth.h"

/* --- which registry the credentials are for ------------------------------------ */

/* Docker Hub answers to three names: the one in image references, the one
 * `docker login` records ("https://index.docker.io/v1/") and the one its
 * registry API is served from. */
static bool is_docker_hub(const char *host, size_t len)
{
	static const char *const names[] = { "docker.io", "index.docker.io",
					     "registry-1.docker.io" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (len == strlen(names[i]) && strncasecmp(host, names[i], len) == 0)
			return true;
	return false;
}

bool auth_server_matches(const char *server_address, const char *registry_host)
{
	const char *host = server_address;
	size_t len;

	if (!server_address || !*server_address)
		return true;
	if (!registry_host || !*registry_host)
		return false;
	/* What kubelet and docker config files hold: a URL, or host[:port]
	 * alone; the scheme and any path say nothing about the host. */
	if (strncasecmp(host, "https://", 8) == 0)
		host += 8;
	else if (strncasecmp(host, "http://", 7) == 0)
		host += 7;
	len = strcspn(host, "/?#");
	/* user@host is not a form anyone writes here: match nothing rather
	 * than guess which part is the host. */
	if (len == 0 || memchr(host, '@', len))
		return false;
	if (is_docker_hub(host, len))
		return is_docker_hub(registry_host, strlen(registry_host));
	return len == strlen(registry_host) && strncasecmp(host, registry_host, len) == 0;
}

bool auth_credentials_apply(const char *server_address, const char *registry_host,
			    const char *image)
{
	char shown[161];
	size_t i;

	if (auth_server_matches(server_address, registry_host))
		return true;
	/* server_address is the client's text, not a secret: shown cut and
	 * without control characters, which could forge log lines. */
	for (i = 0; server_address[i] && i < sizeof(shown) - 1; i++) {
		unsigned char ch = (unsigned char)server_address[i];

		shown[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	shown[i] = '\0';
	log_info("pull of %s: the credentials given are for '%s'%s, not %s: pulling without them",
		 image, shown, server_address[i] ? "..." : "",
		 registry_host ? registry_host : "(no registry)");
	return false;
}
