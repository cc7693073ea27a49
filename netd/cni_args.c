/* What a pod hands its CNI plugins, built from its PodSandboxConfig as
 * containerd does: CNI_ARGS with the Kubernetes keys, and the capability
 * args (runtimeConfig) portMappings, bandwidth and dns. Everything comes
 * from the frontend, which netd does not trust: each value is checked here
 * before it reaches a plugin's environment or stdin. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <string.h>

#include "ipc/msg.h"
#include "netd/netd.h"

#define ARG_MAX_LEN 253
#define PORT_MAPPINGS_MAX 1024
#define DNS_ITEMS_MAX 32
#define DNS_ITEM_LEN 256

/* Kubernetes names, namespaces and uids are DNS labels, subdomains and
 * UUIDs; anything else could smuggle a ';' or '=' into CNI_ARGS. */
static bool arg_value_safe(const char *s)
{
	size_t n = strlen(s);

	if (n > ARG_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static bool ip_valid(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool printable_word(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return false;
	return true;
}

static int port_mappings(const Runtime__V1__PodSandboxConfig *c, json_t *caps,
			 struct crisp_error *err)
{
	static const char *const protos[] = { "tcp", "udp", "sctp" };
	json_t *list = json_array();

	if (c->n_port_mappings > PORT_MAPPINGS_MAX) {
		json_decref(list);
		return err_set(err, CRISP_E_INVALID, "%zu port mappings: at most %d",
			       c->n_port_mappings, PORT_MAPPINGS_MAX);
	}
	for (size_t i = 0; i < c->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *p = c->port_mappings[i];
		const char *host_ip = p->host_ip ? p->host_ip : "";
		json_t *m;

		if (p->container_port < 1 || p->container_port > 65535 || p->host_port < 0 ||
		    p->host_port > 65535 || (unsigned)p->protocol >= ARRAY_SIZE(protos) ||
		    (*host_ip && !ip_valid(host_ip))) {
			json_decref(list);
			return err_set(err, CRISP_E_INVALID,
				       "port mapping %zu: container port %d, host port %d, "
				       "protocol %d, host IP '%.64s': need ports in 1..65535 (host "
				       "port 0 for none), TCP/UDP/SCTP and an IP address",
				       i, p->container_port, p->host_port, p->protocol, host_ip);
		}
		/* containerd hands on only mappings with a host port: the others
		 * need no NAT. */
		if (p->host_port == 0)
			continue;
		m = json_pack("{s:i, s:i, s:s, s:s}", "hostPort", (int)p->host_port,
			      "containerPort", (int)p->container_port, "protocol",
			      protos[p->protocol], "hostIP", host_ip);
		json_array_append_new(list, m);
	}
	if (json_array_size(list) > 0)
		json_object_set_new(caps, "portMappings", list);
	else
		json_decref(list);
	return 0;
}

static int string_list(char **items, size_t n, const char *what, bool ips, json_t **ret,
		       struct crisp_error *err)
{
	json_t *list = json_array();

	if (n > DNS_ITEMS_MAX) {
		json_decref(list);
		return err_set(err, CRISP_E_INVALID, "%zu DNS %s: at most %d", n, what,
			       DNS_ITEMS_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		if (ips ? !ip_valid(items[i]) : !printable_word(items[i], DNS_ITEM_LEN)) {
			json_decref(list);
			return err_set(err, CRISP_E_INVALID, "DNS %s '%.64s' is not %s", what,
				       items[i],
				       ips ? "an IP address" : "a word of printable characters");
		}
		json_array_append_new(list, json_string(items[i]));
	}
	*ret = list;
	return 0;
}

static int dns_config(const Runtime__V1__DNSConfig *d, json_t *caps, struct crisp_error *err)
{
	json_t *servers = NULL, *searches = NULL, *options = NULL;

	if (!d)
		return 0;
	if (string_list(d->servers, d->n_servers, "servers", true, &servers, err) < 0 ||
	    string_list(d->searches, d->n_searches, "searches", false, &searches, err) < 0 ||
	    string_list(d->options, d->n_options, "options", false, &options, err) < 0) {
		json_decref(servers);
		json_decref(searches);
		return -1;
	}
	json_object_set_new(caps, "dns",
			    json_pack("{s:o, s:o, s:o}", "servers", servers, "searches", searches,
				      "options", options));
	return 0;
}

/* Kubernetes' resource.Quantity, as far as a bandwidth needs it: a decimal
 * number and a suffix (binary Ki..Ei, decimal n, u, m, k, M, G, T, P, E, or
 * an exponent e<n>), rounded up to an integer like Quantity.Value(). The
 * kubelet accepts 1k to 1P (validateBandwidthIsReasonable); so do we. */
int cni_bandwidth_parse(const char *q, uint64_t *ret_bits, struct crisp_error *err)
{
	static const struct {
		const char *s;
		int exp10, exp2;
	} suffixes[] = {
		{ "Ki", 0, 10 }, { "Mi", 0, 20 }, { "Gi", 0, 30 }, { "Ti", 0, 40 },
		{ "Pi", 0, 50 }, { "Ei", 0, 60 }, { "n", -9, 0 },  { "u", -6, 0 },
		{ "m", -3, 0 },  { "", 0, 0 },    { "k", 3, 0 },   { "M", 6, 0 },
		{ "G", 9, 0 },   { "T", 12, 0 },  { "P", 15, 0 },  { "E", 18, 0 },
	};
	const unsigned __int128 limit = (unsigned __int128)1000000000000000ULL; /* 1P */
	unsigned __int128 v = 0;
	const char *p = q;
	int digits = 0, exp10 = 0, exp2 = 0;
	bool found = false;

	if (*p == '+')
		p++;
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		v = v * 10 + (unsigned)(*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++, exp10--)
			v = v * 10 + (unsigned)(*p - '0');
	if (digits == 0 || digits > 18)
		return err_set(err, CRISP_E_INVALID, "bandwidth '%.64s' is not a quantity", q);
	if ((*p == 'e' || *p == 'E') && p[1] &&
	    strspn(p + 1 + (p[1] == '-' || p[1] == '+'), "0123456789") ==
		    strlen(p + 1 + (p[1] == '-' || p[1] == '+'))) {
		int e = atoi(p + 1);

		if (e < -30 || e > 30)
			return err_set(err, CRISP_E_INVALID, "bandwidth '%.64s' is out of range",
				       q);
		exp10 += e;
		found = true;
	}
	for (size_t i = 0; !found && i < ARRAY_SIZE(suffixes); i++)
		if (streq(p, suffixes[i].s)) {
			exp10 += suffixes[i].exp10;
			exp2 = suffixes[i].exp2;
			found = true;
		}
	if (!found)
		return err_set(err, CRISP_E_INVALID, "bandwidth '%.64s' has an unknown suffix", q);
	v <<= exp2;
	for (; exp10 > 0 && v <= limit; exp10--)
		v *= 10;
	if (exp10 < 0) {
		unsigned __int128 div = 1;

		for (; exp10 < 0; exp10++)
			div *= 10;
		v = (v + div - 1) / div;
	}
	if (v < 1000)
		return err_set(err, CRISP_E_INVALID,
			       "bandwidth '%.64s' is unreasonably small (< 1kbit)", q);
	if (v > limit)
		return err_set(err, CRISP_E_INVALID,
			       "bandwidth '%.64s' is unreasonably large (> 1Pbit)", q);
	*ret_bits = (uint64_t)v;
	return 0;
}

static int bandwidth(const Runtime__V1__PodSandboxConfig *c, json_t *caps, struct crisp_error *err)
{
	json_t *bw = json_object();

	for (size_t i = 0; i < c->n_annotations; i++) {
		const char *k = c->annotations[i]->key, *v = c->annotations[i]->value;
		bool in = streq(k, "kubernetes.io/ingress-bandwidth");
		uint64_t bits;

		if (!in && !streq(k, "kubernetes.io/egress-bandwidth"))
			continue;
		if (cni_bandwidth_parse(v, &bits, err) < 0) {
			json_decref(bw);
			return err_prefix(err, "annotation %s", k);
		}
		/* containerd: the rate from the annotation, the burst unlimited */
		json_object_set_new(bw, in ? "ingressRate" : "egressRate", json_integer(bits));
		json_object_set_new(bw, in ? "ingressBurst" : "egressBurst",
				    json_integer(UINT32_MAX));
	}
	if (json_object_size(bw) > 0)
		json_object_set_new(caps, "bandwidth", bw);
	else
		json_decref(bw);
	return 0;
}

int cni_pod_args_build(const char *sandbox_id, const Runtime__V1__PodSandboxConfig *c,
		       struct cni_pod_args *ret, struct crisp_error *err)
{
	const Runtime__V1__PodSandboxMetadata *m = c ? c->metadata : NULL;
	json_t *caps;

	if (!m || !m->name || !m->namespace_ || !*m->name || !*m->namespace_ ||
	    !arg_value_safe(m->name) || !arg_value_safe(m->namespace_) ||
	    !arg_value_safe(m->uid ? m->uid : ""))
		return err_set(err, CRISP_E_INVALID,
			       "pod metadata: name, namespace and uid must be at most %d "
			       "characters of [A-Za-z0-9._-] (name and namespace not empty)",
			       ARG_MAX_LEN);
	caps = json_object();
	if (port_mappings(c, caps, err) < 0 || bandwidth(c, caps, err) < 0 ||
	    dns_config(c->dns_config, caps, err) < 0) {
		json_decref(caps);
		return -1;
	}
	ret->caps = caps;
	ret->cni_args = xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
				  "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
				  m->namespace_, m->name, sandbox_id, m->uid ? m->uid : "");
	return 0;
}

void cni_pod_args_clear(struct cni_pod_args *a)
{
	free(a->cni_args);
	json_decref(a->caps);
	a->cni_args = NULL;
	a->caps = NULL;
}

/* The pod CIDR rule. kubelet hands the node's pod CIDR(s) through
 * UpdateRuntimeConfig; containerd renders them into a conf template, CRI-O
 * leaves them to the plugins. We substitute a placeholder in the chosen
 * config, at ADD time (the substituted list is what is stored for DEL):
 *   "ipam": {"subnet": "usePodCidr"}            the first pod CIDR
 *   "ipam": {"ranges": [[{"subnet": "usePodCidr", ...}]]}
 *                                               that range set is replaced by
 *                                               one range set per pod CIDR,
 *                                               its other keys copied. */
#define POD_CIDR_MARK "usePodCidr"

static int expand_ranges(json_t *ipam, char **cidrs, size_t n)
{
	json_t *ranges = json_object_get(ipam, "ranges"), *out;
	size_t i;
	json_t *set;
	bool used = false;

	if (!json_is_array(ranges))
		return 0;
	out = json_array();
	json_array_foreach(ranges, i, set)
	{
		json_t *r0 = json_array_get(set, 0);

		if (json_array_size(set) != 1 ||
		    !streq(json_string_value(json_object_get(r0, "subnet")), POD_CIDR_MARK)) {
			json_array_append(out, set);
			continue;
		}
		used = true;
		for (size_t k = 0; k < n; k++) {
			json_t *r = json_deep_copy(r0);

			json_object_set_new(r, "subnet", json_string(cidrs[k]));
			json_array_append_new(out, json_pack("[o]", r));
		}
	}
	json_object_set_new(ipam, "ranges", out);
	return used;
}

int cni_apply_pod_cidr(json_t *list, const char *pod_cidr, struct crisp_error *err)
{
	json_t *plugins = json_object_get(list, "plugins"), *pl;
	char *cidrs[2] = { NULL, NULL };
	_cleanup_free_ char *copy = xstrdup(pod_cidr ? pod_cidr : "");
	char *save = NULL;
	size_t n = 0, i;
	int r = 0;

	for (char *c = strtok_r(copy, ",", &save); c && n < 2; c = strtok_r(NULL, ",", &save))
		cidrs[n++] = c;
	json_array_foreach(plugins, i, pl)
	{
		json_t *ipam = json_object_get(pl, "ipam");
		bool single = streq(json_string_value(json_object_get(ipam, "subnet")),
				    POD_CIDR_MARK);
		bool ranges = false;

		if (!json_is_object(ipam))
			continue;
		if (!single) {
			json_t *rs = json_object_get(ipam, "ranges"), *set;
			size_t k;

			json_array_foreach(rs, k, set) if (streq(json_string_value(json_object_get(
									 json_array_get(set, 0),
									 "subnet")),
								 POD_CIDR_MARK)) ranges = true;
		}
		if ((single || ranges) && n == 0)
			return err_set(err, CRISP_E_PRECONDITION,
				       "the network config uses \"%s\" but no pod CIDR was set "
				       "(UpdateRuntimeConfig)",
				       POD_CIDR_MARK);
		if (single)
			json_object_set_new(ipam, "subnet", json_string(cidrs[0]));
		if (ranges)
			expand_ranges(ipam, cidrs, n);
	}
	return r;
}
