/* Audit lines: who did what to which object, and how it ended. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "frontend/audit.h"
#include "frontend/cri_methods.h"

#define AUDIT_VALUE_MAX 256 /* longer values are cut: ids and names are short */

/* Which request fields name the objects a call acts on, by path through the
 * request message. Missing or empty fields are skipped, so one list serves
 * every method. Only these are logged: a request as a whole may carry
 * secrets (PullImage's auth, ExecSync's command line). */
static const struct {
	const char *key;
	const char *path;
} target_fields[] = {
	{ "sandbox", "pod_sandbox_id" },
	{ "container", "container_id" },
	{ "namespace", "config.metadata.namespace" },
	{ "name", "config.metadata.name" },
	{ "image", "image.image" },
	{ "image", "config.image.image" },
	{ "pod_cidr", "runtime_config.network_config.pod_cidr" },
	{ "path", "location" },
	{ "path", "output_path" },
	{ "path", "checkpoint_path" },
};

struct line {
	char buf[2048];
	size_t len;
};

static void put(struct line *l, const char *fmt, ...) _printf_(2, 3);
static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= sizeof(l->buf) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n < sizeof(l->buf) - l->len ? (size_t)n
							      : sizeof(l->buf) - l->len - 1;
}

/* Escape a client-supplied value for use inside "...": backslash and quote
 * are escaped, anything not printable ASCII becomes \xNN, so no value can end
 * the field, forge another key or break the line. With token set, space and
 * '=' are escaped too (for key=value pairs inside one quoted field). */
static void put_escaped(struct line *l, const char *s, bool token)
{
	size_t n = 0;

	for (; s && *s && n < AUDIT_VALUE_MAX; s++, n++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(l, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f || (token && (ch == ' ' || ch == '=')))
			put(l, "\\x%02x", ch);
		else
			put(l, "%c", ch);
	}
	if (s && *s)
		put(l, "...");
}

static void put_peer(struct line *l, const struct fe_peer *p)
{
	if (p->known)
		put(l, " pid=%d uid=%u gid=%u", (int)p->pid, p->uid, p->gid);
	else
		put(l, " pid=unknown uid=unknown gid=unknown");
}

/* The string at a dotted path of singular fields, or NULL. */
static const char *field_string(const ProtobufCMessage *m, const char *path)
{
	while (m) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		const ProtobufCFieldDescriptor *f;
		const void *member;
		char name[64];

		if (n >= sizeof(name))
			return NULL;
		memcpy(name, path, n);
		name[n] = '\0';
		f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
		if (!f || f->label == PROTOBUF_C_LABEL_REPEATED)
			return NULL;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			return NULL;
		member = (const char *)m + f->offset;
		if (!dot)
			return f->type == PROTOBUF_C_TYPE_STRING ? *(char *const *)member : NULL;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			return NULL;
		m = *(const ProtobufCMessage *const *)member;
		path = dot + 1;
	}
	return NULL;
}

static void put_target(struct line *l, const ProtobufCMessage *req)
{
	bool any = false;

	for (size_t i = 0; req && i < ARRAY_SIZE(target_fields); i++) {
		const char *v = field_string(req, target_fields[i].path);
		if (!v || !*v)
			continue;
		put(l, any ? " %s=" : " target=\"%s=", target_fields[i].key);
		put_escaped(l, v, true);
		any = true;
	}
	if (any)
		put(l, "\"");
}

void audit_refused(const struct fe_peer *peer, const char *reason)
{
	struct line l = { .len = 0 };

	put(&l, "audit: event=connection-refused");
	put_peer(&l, peer);
	put(&l, " reason=\"");
	put_escaped(&l, reason, false);
	put(&l, "\"");
	log_notice("%s", l.buf);
}

void audit_call(const struct rpc *rpc, grpc_status_code code, const char *msg)
{
	struct line l = { .len = 0 };

	put(&l, "audit: method=%s", rpc->method ? rpc->method->name : "?");
	put_peer(&l, &rpc->peer);
	put_target(&l, rpc->req);
	put(&l, " result=%s", cri_status_name(code));
	if (code != GRPC_STATUS_OK && msg) {
		put(&l, " msg=\"");
		put_escaped(&l, msg, false);
		put(&l, "\"");
	}
	log_notice("%s", l.buf);
}
