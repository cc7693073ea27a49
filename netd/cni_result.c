/* CNI plugin input and output: the stdin of one plugin of a list
 * (libcni's buildOneConfig), result conversion between the 0.3/0.4 and 1.x
 * formats, and the pod's IPs from a result. Results come from plugins,
 * which run as root but may be third-party code: they are parsed with
 * bounds and never trusted to be well formed. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "netd/netd.h"

#define RESULT_IPS_MAX 64

static bool version_is_1x(const char *v)
{
	return v && v[0] == '1' && v[1] == '.';
}

json_t *cni_plugin_conf(json_t *list, size_t i, json_t *prev_result, json_t *caps)
{
	json_t *conf = json_deep_copy(json_array_get(json_object_get(list, "plugins"), i));
	json_t *wanted = json_object_get(conf, "capabilities"), *rc = json_object();
	const char *cap;
	json_t *on;

	json_object_set(conf, "name", json_object_get(list, "name"));
	json_object_set(conf, "cniVersion", json_object_get(list, "cniVersion"));
	if (prev_result)
		json_object_set(conf, "prevResult", prev_result);
	/* Only the capabilities the plugin asks for, as libcni does; a
	 * runtimeConfig in the file is replaced, never merged with. */
	json_object_foreach(wanted, cap, on) if (json_is_true(on) && json_object_get(caps, cap))
		json_object_set(rc, cap, json_object_get(caps, cap));
	if (json_object_size(rc) > 0)
		json_object_set_new(conf, "runtimeConfig", rc);
	else
		json_decref(rc);
	return conf;
}

/* The IP version of "10.1.0.5/16" or "fd00::5/64": 4, 6, or 0 if neither. */
static int address_family(const char *cidr, char *ip, size_t len)
{
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	unsigned char buf[16];
	size_t n = slash ? (size_t)(slash - cidr) : (cidr ? strlen(cidr) : 0);

	if (!cidr || n == 0 || n >= len)
		return 0;
	memcpy(ip, cidr, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, buf) == 1)
		return 4;
	if (inet_pton(AF_INET6, ip, buf) == 1)
		return 6;
	return 0;
}

json_t *cni_result_convert(json_t *result, const char *to, struct crisp_error *err)
{
	const char *from = json_string_value(json_object_get(result, "cniVersion"));
	json_t *out, *ips, *ip;
	size_t i;

	if (!json_is_object(result) || !from)
		return err_set(err, CRISP_E_INTERNAL, "a CNI result without cniVersion"), NULL;
	out = json_deep_copy(result);
	json_object_set_new(out, "cniVersion", json_string(to));
	if (version_is_1x(from) == version_is_1x(to))
		return out;
	if (!version_is_1x(to) &&
	    !(streq(to, "0.3.0") || streq(to, "0.3.1") || streq(to, "0.4.0"))) {
		json_decref(out);
		return err_set(err, CRISP_E_INTERNAL, "cannot convert a result to cniVersion %s",
			       to),
		       NULL;
	}
	ips = json_object_get(out, "ips");
	json_array_foreach(ips, i, ip)
	{
		char addr[64];
		int fam = address_family(json_string_value(json_object_get(ip, "address")), addr,
					 sizeof(addr));

		if (version_is_1x(to)) {
			json_object_del(ip, "version");
		} else if (fam) {
			json_object_set_new(ip, "version", json_string(fam == 4 ? "4" : "6"));
		} else {
			json_decref(out);
			return err_set(err, CRISP_E_INTERNAL, "a CNI result with a bad IP address"),
			       NULL;
		}
	}
	/* 0.x interfaces have only name, mac and sandbox */
	if (!version_is_1x(to)) {
		json_t *ifs = json_object_get(out, "interfaces"), *itf;

		json_array_foreach(ifs, i, itf)
		{
			json_object_del(itf, "mtu");
			json_object_del(itf, "socketPath");
			json_object_del(itf, "pciID");
		}
	}
	return out;
}

/* Is ips[i] on the pod's eth0? IPAM-only results name no interface at all:
 * then every address counts. */
static bool on_pod_iface(json_t *result, json_t *ip, const char **ret_name)
{
	json_t *ifs = json_object_get(result, "interfaces"),
	       *idx = json_object_get(ip, "interface");
	json_t *itf;
	const char *name, *sandbox;

	if (!idx) {
		*ret_name = CNI_IFNAME;
		return json_array_size(ifs) == 0;
	}
	if (!json_is_integer(idx) || json_integer_value(idx) < 0)
		return false;
	itf = json_array_get(ifs, (size_t)json_integer_value(idx));
	name = json_string_value(json_object_get(itf, "name"));
	sandbox = json_string_value(json_object_get(itf, "sandbox"));
	*ret_name = name;
	return name && streq(name, CNI_IFNAME) && sandbox && *sandbox;
}

int cni_result_ips(json_t *result, enum ip_family family, struct cni_ip *out, size_t max,
		   struct crisp_error *err)
{
	json_t *ips = json_object_get(result, "ips"), *ip;
	int want = family == IP_FAMILY_V6 ? 6 : 4;
	size_t i, n = 0;
	int primary = -1;

	if (!json_is_object(result) || (ips && !json_is_array(ips)))
		return err_set(err, CRISP_E_INTERNAL, "the CNI result is not an object with ips");
	if (json_array_size(ips) > RESULT_IPS_MAX)
		return err_set(err, CRISP_E_INTERNAL, "the CNI result has %zu IPs: at most %d",
			       json_array_size(ips), RESULT_IPS_MAX);
	json_array_foreach(ips, i, ip)
	{
		const char *name = NULL;
		char addr[64];
		int fam = address_family(json_string_value(json_object_get(ip, "address")), addr,
					 sizeof(addr));

		if (!fam)
			return err_set(err, CRISP_E_INTERNAL,
				       "the CNI result has an IP without a valid address");
		if (!on_pod_iface(result, ip, &name) || n >= max)
			continue;
		snprintf(out[n].ip, sizeof(out[n].ip), "%s", addr);
		snprintf(out[n].iface, sizeof(out[n].iface), "%s", name);
		if (primary < 0 && fam == want)
			primary = (int)n;
		n++;
	}
	/* the primary first, the others in the result's order */
	if (primary > 0) {
		struct cni_ip p = out[primary];

		memmove(&out[1], &out[0], (size_t)primary * sizeof(out[0]));
		out[0] = p;
	}
	return (int)n;
}
