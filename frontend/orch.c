/* Shared pieces of the pod and container handlers (frontend/orch.h). */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "frontend/orch.h"
#include "ipc/arena.h"

void cri_id_new(char out[CRI_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[CRI_ID_LEN / 2];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* An id that might repeat would let two pods share state. */
		if (n < 0)
			fatal("getrandom: %m");
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[CRI_ID_LEN] = '\0';
}

bool cri_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == CRI_ID_LEN;
}

/* ---- pool ------------------------------------------------------------------ */

void *pool_keep(struct pool *p, void *ptr)
{
	if (!ptr)
		return NULL;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->ptrs = xrealloc(p->ptrs, p->cap * sizeof(*p->ptrs));
	}
	p->ptrs[p->n++] = ptr;
	return ptr;
}

void *pool_alloc(struct pool *p, size_t size)
{
	return pool_keep(p, xcalloc(1, size ? size : 1));
}

char *pool_strdup(struct pool *p, const char *s)
{
	return pool_keep(p, xstrdup(s ? s : ""));
}

void pool_free(struct pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->ptrs[i]);
	free(p->ptrs);
	memset(p, 0, sizeof(*p));
}

/* ---- maps ------------------------------------------------------------------ */

/* The layout every map<string,string> entry of protobuf-c has. */
struct kv_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

void **map_copy(struct pool *p, const ProtobufCMessageDescriptor *entry_desc, size_t n,
		void *const *in, size_t *ret_n)
{
	void **out;
	struct kv_entry *e;

	*ret_n = n;
	if (!n)
		return NULL;
	out = pool_alloc(p, n * sizeof(*out));
	e = pool_alloc(p, n * entry_desc->sizeof_message);
	for (size_t i = 0; i < n; i++) {
		struct kv_entry *dst = (struct kv_entry *)((char *)e +
							   i * entry_desc->sizeof_message);
		const struct kv_entry *src = in[i];
		protobuf_c_message_init(entry_desc, dst);
		dst->key = src->key;
		dst->value = src->value;
		out[i] = dst;
	}
	return out;
}

bool labels_match(size_t nsel, void *const *selector, size_t nlabels, void *const *labels)
{
	for (size_t i = 0; i < nsel; i++) {
		const struct kv_entry *want = selector[i];
		bool found = false;
		for (size_t j = 0; j < nlabels && !found; j++) {
			const struct kv_entry *have = labels[j];
			found = streq(want->key, have->key) && streq(want->value, have->value);
		}
		if (!found)
			return false;
	}
	return true;
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *v, int depth);

/* A map<string,string> entry (struct kv_entry). Not KeyValue (envs): its
 * value is bytes, a ProtobufCBinaryData that read as a char * crashes. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	return d->n_fields == 2 && streq(d->fields[0].name, "key") &&
	       streq(d->fields[1].name, "value") && d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       d->fields[1].type == PROTOBUF_C_TYPE_STRING;
}

static json_t *message_json_depth(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_t *o = json_object();

	if (depth > 32)
		return o;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *member = (const char *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)member;
			size_t sz = f->type == PROTOBUF_C_TYPE_MESSAGE  ? sizeof(void *)
				    : f->type == PROTOBUF_C_TYPE_STRING ? sizeof(char *)
				    : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
				    : f->type == PROTOBUF_C_TYPE_INT64 ||
						    f->type == PROTOBUF_C_TYPE_UINT64 ||
						    f->type == PROTOBUF_C_TYPE_SINT64 ||
						    f->type == PROTOBUF_C_TYPE_FIXED64 ||
						    f->type == PROTOBUF_C_TYPE_SFIXED64 ||
						    f->type == PROTOBUF_C_TYPE_DOUBLE
					    ? 8
				    : f->type == PROTOBUF_C_TYPE_BOOL ? sizeof(protobuf_c_boolean)
								      : 4;
			if (!n)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
				json_t *map = json_object();
				for (size_t j = 0; j < n; j++) {
					const struct kv_entry *e = ((void *const *)arr)[j];
					json_object_set_new(map, e->key, json_string(e->value));
				}
				json_object_set_new(o, f->name, map);
				continue;
			}
			json_t *a = json_array();
			for (size_t j = 0; j < n; j++)
				json_array_append_new(a, value_json(f, arr + j * sz, depth));
			json_object_set_new(o, f->name, a);
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(void *const *)member)
			continue;
		json_object_set_new(o, f->name, value_json(f, member, depth));
	}
	return o;
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *v, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)v);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)v);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)v);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_integer((json_int_t) * (const uint64_t *)v);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)v);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)v);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)v);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
			f->descriptor, *(const int *)v);
		return ev ? json_string(ev->name) : json_integer(*(const int *)v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)v;
		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		/* The only bytes in a CRI config are env values (KeyValue),
		 * text in practice: shown as text, as containerd shows them;
		 * what is not UTF-8 as its length. */
		const ProtobufCBinaryData *b = v;
		json_t *j = json_stringn((const char *)b->data, b->len);
		return j ? j : json_integer((json_int_t)b->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return message_json_depth(*(const ProtobufCMessage *const *)v, depth + 1);
	}
	return json_null();
}

json_t *message_json(const ProtobufCMessage *m)
{
	return m ? message_json_depth(m, 0) : json_null();
}

char *message_json_string(struct pool *p, const ProtobufCMessage *m)
{
	json_t *j = message_json(m);
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return pool_keep(p, s);
}

/* ---- fetch ----------------------------------------------------------------- */

struct fetch_slot_arg {
	struct fetch *f;
	unsigned slot;
};

/* A fetch and the arenas its replies are unpacked into: they are read by
 * the fetch's callback and its continuations and all dropped together in
 * fetch_free(), which the arenas make a few frees instead of one per
 * field. The fetch comes first, so a struct fetch * is one of these. */
struct fetch_arenas {
	struct fetch f;
	struct arena arena[FETCH_SLOTS];
};

static void fetch_done_one(struct fetch *f)
{
	if (--f->pending == 0)
		f->fn(f, f->arg);
}

static void on_fetch_reply(ProtobufCMessage *reply, struct ipc_msg *msg,
			   const struct crisp_error *err, void *arg)
{
	struct fetch_slot_arg *sa = arg;
	struct fetch *f = sa->f;
	unsigned slot = sa->slot;

	free(sa);
	if (err) {
		f->err[slot] = *err;
		/* An error without a code would read as success. */
		if (f->err[slot].code == CRISP_E_OK)
			f->err[slot].code = CRISP_E_INTERNAL;
	} else {
		struct fetch_arenas *fa = (struct fetch_arenas *)f;

		/* The ipc layer frees its copy after we return: keep our own. */
		f->reply[slot] = arena_unpack(&fa->arena[slot], f->desc[slot], msg->len, msg->data);
		if (!f->reply[slot])
			err_set(&f->err[slot], CRISP_E_INTERNAL, "cannot unpack a %s again: %s",
				f->desc[slot]->name, strerror(errno));
	}
	fetch_done_one(f);
}

struct fetch *fetch_new(fetch_fn fn, void *arg)
{
	struct fetch_arenas *fa = xcalloc(1, sizeof(*fa));
	struct fetch *f = &fa->f;

	f->fn = fn;
	f->arg = arg;
	f->pending = 1; /* fetch_go() drops this one */
	return f;
}

void fetch_add(struct fetch *f, unsigned slot, enum helper_id h, uint16_t type,
	       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
	       unsigned timeout_ms)
{
	struct fetch_slot_arg *sa = xmalloc(sizeof(*sa));

	sa->f = f;
	sa->slot = slot;
	f->desc[slot] = reply_desc;
	f->pending++;
	helper_call(h, type, req, reply_desc, timeout_ms, on_fetch_reply, sa);
}

void fetch_go(struct fetch *f)
{
	fetch_done_one(f);
}

void fetch_free(struct fetch *f)
{
	struct fetch_arenas *fa = (struct fetch_arenas *)f;

	if (!f)
		return;
	/* Each reply went into its own arena (an unused one was zeroed). */
	for (unsigned i = 0; i < FETCH_SLOTS; i++)
		arena_release(&fa->arena[i]);
	free(fa);
}

const struct crisp_error *fetch_error(const struct fetch *f, ...)
{
	const struct crisp_error *found = NULL;
	va_list ap;
	int slot;

	va_start(ap, f);
	while (!found && (slot = va_arg(ap, int)) >= 0)
		if (slot < FETCH_SLOTS && f->err[slot].code != CRISP_E_OK)
			found = &f->err[slot];
	va_end(ap);
	return found;
}

/* ---- in-flight ids --------------------------------------------------------- */

static struct {
	char (*ids)[CRI_ID_LEN + 1];
	size_t n, cap;
	uint64_t generation;
} inflight;

void inflight_add(const char *id)
{
	if (inflight.n == inflight.cap) {
		inflight.cap = inflight.cap ? 2 * inflight.cap : 16;
		inflight.ids = xrealloc(inflight.ids, inflight.cap * sizeof(*inflight.ids));
	}
	snprintf(inflight.ids[inflight.n++], CRI_ID_LEN + 1, "%s", id);
	inflight.generation++;
}

void inflight_del(const char *id)
{
	for (size_t i = 0; i < inflight.n; i++)
		if (streq(inflight.ids[i], id)) {
			memmove(&inflight.ids[i], &inflight.ids[i + 1],
				(inflight.n - i - 1) * sizeof(*inflight.ids));
			inflight.n--;
			return;
		}
}

bool inflight_has(const char *id)
{
	for (size_t i = 0; i < inflight.n; i++)
		if (streq(inflight.ids[i], id))
			return true;
	return false;
}

uint64_t inflight_generation(void)
{
	return inflight.generation;
}

size_t inflight_count(void)
{
	return inflight.n;
}

/* ---- CRI objects from runtimed's records ------------------------------------- */

bool pod_host_network(const Runtime__V1__PodSandboxConfig *config)
{
	return config && config->linux && config->linux->security_context &&
	       config->linux->security_context->namespace_options &&
	       config->linux->security_context->namespace_options->network ==
		       RUNTIME__V1__NAMESPACE_MODE__NODE;
}

Runtime__V1__PodSandboxStatus *pod_status_build(struct pool *p, const CrispIpc__SandboxInfo *sb,
						const CrispIpc__PodNetwork *net)
{
	Runtime__V1__PodSandboxStatus *st = pool_alloc(p, sizeof(*st));
	const Runtime__V1__PodSandboxConfig *cfg = sb->config;

	runtime__v1__pod_sandbox_status__init(st);
	st->id = sb->id;
	st->state = sb->state;
	st->created_at = sb->created_at;
	st->runtime_handler = sb->runtime_handler;
	if (cfg) {
		st->metadata = cfg->metadata;
		st->labels = (Runtime__V1__PodSandboxStatus__LabelsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox_status__labels_entry__descriptor,
			cfg->n_labels, (void *const *)cfg->labels, &st->n_labels);
		st->annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)map_copy(
			p, &runtime__v1__pod_sandbox_status__annotations_entry__descriptor,
			cfg->n_annotations, (void *const *)cfg->annotations, &st->n_annotations);
		if (cfg->linux && cfg->linux->security_context &&
		    cfg->linux->security_context->namespace_options) {
			Runtime__V1__LinuxPodSandboxStatus *ls = pool_alloc(p, sizeof(*ls));
			Runtime__V1__Namespace *ns = pool_alloc(p, sizeof(*ns));
			runtime__v1__linux_pod_sandbox_status__init(ls);
			runtime__v1__namespace__init(ns);
			ns->options = cfg->linux->security_context->namespace_options;
			ls->namespaces = ns;
			st->linux = ls;
		}
	}
	if (net && net->n_ips > 0) {
		Runtime__V1__PodSandboxNetworkStatus *ns = pool_alloc(p, sizeof(*ns));
		runtime__v1__pod_sandbox_network_status__init(ns);
		ns->ip = net->ips[0]->ip;
		if (net->n_ips > 1) {
			Runtime__V1__PodIP *ips = pool_alloc(p, (net->n_ips - 1) * sizeof(*ips));
			ns->additional_ips = pool_alloc(p, (net->n_ips - 1) * sizeof(void *));
			for (size_t i = 1; i < net->n_ips; i++) {
				runtime__v1__pod_ip__init(&ips[i - 1]);
				ips[i - 1].ip = net->ips[i]->ip;
				ns->additional_ips[i - 1] = &ips[i - 1];
			}
			ns->n_additional_ips = net->n_ips - 1;
		}
		st->network = ns;
	}
	return st;
}

Runtime__V1__ContainerStatus *container_status_build(struct pool *p,
						     const CrispIpc__ContainerInfo *c)
{
	Runtime__V1__ContainerStatus *st = pool_alloc(p, sizeof(*st));
	const Runtime__V1__ContainerConfig *cfg = c->config;
	Runtime__V1__ImageSpec *spec = pool_alloc(p, sizeof(*spec));

	runtime__v1__container_status__init(st);
	runtime__v1__image_spec__init(spec);
	st->id = c->id;
	st->state = c->state;
	st->created_at = c->created_at;
	st->started_at = c->started_at;
	st->finished_at = c->finished_at;
	st->exit_code = c->exit_code;
	st->reason = c->reason;
	st->message = c->message;
	st->log_path = c->log_path;
	/* Unset for a container recorded by a runtimed that did not keep it:
	 * better no answer than a guess. */
	st->user = c->user;
	/* The signal StopContainer sends (containerd 2.1 and CRI-O report the
	 * effective one too); a record from before runtimed kept it has only
	 * the config's. */
	st->stop_signal = c->stop_signal ? c->stop_signal
			  : cfg          ? cfg->stop_signal
					 : RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT;
	/* The image as the request named it; the id of the one in use. */
	spec->image = *c->image_ref       ? c->image_ref
		      : cfg && cfg->image ? cfg->image->image
					  : c->image_id;
	st->image = spec;
	st->image_ref = c->image_id;
	st->image_id = c->image_id;
	if (cfg) {
		st->metadata = cfg->metadata;
		st->labels = (Runtime__V1__ContainerStatus__LabelsEntry **)map_copy(
			p, &runtime__v1__container_status__labels_entry__descriptor, cfg->n_labels,
			(void *const *)cfg->labels, &st->n_labels);
		st->annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)map_copy(
			p, &runtime__v1__container_status__annotations_entry__descriptor,
			cfg->n_annotations, (void *const *)cfg->annotations, &st->n_annotations);
		st->n_mounts = cfg->n_mounts;
		st->mounts = cfg->mounts;
		if (cfg->linux && cfg->linux->resources) {
			Runtime__V1__ContainerResources *r = pool_alloc(p, sizeof(*r));
			runtime__v1__container_resources__init(r);
			r->linux = cfg->linux->resources;
			st->resources = r;
		}
	}
	return st;
}

char *pod_info_json(struct pool *p, const CrispIpc__SandboxInfo *sb)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "pid", json_integer(sb->pid));
	json_object_set_new(o, "netnsPath", json_string(sb->netns_path));
	json_object_set_new(o, "runtimeHandler", json_string(sb->runtime_handler));
	json_object_set_new(o, "config",
			    sb->config ? message_json(&sb->config->base) : json_null());
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return pool_keep(p, s);
}

char *container_info_json(struct pool *p, const CrispIpc__ContainerInfo *c)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "pid", json_integer(c->pid));
	json_object_set_new(o, "sandboxID", json_string(c->sandbox_id));
	json_object_set_new(o, "imageRef", json_string(c->image_ref));
	json_object_set_new(o, "config", c->config ? message_json(&c->config->base) : json_null());
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return pool_keep(p, s);
}
