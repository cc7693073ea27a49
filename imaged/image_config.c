/* OCI image config: the fields crisp uses (see image_config.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "imaged/digest.h"
#include "imaged/image_config.h"
#include "imaged/reference.h"

int image_chain_id(const char *parent, const char *diff_id, char out[CONTENT_DIGEST_MAX],
		   struct crisp_error *err)
{
	_cleanup_free_ char *input = NULL;

	if (!digest_valid(diff_id) || (parent && !digest_valid(parent)))
		return err_set(err, CRISP_E_INVALID, "invalid diff id or parent chain id");
	if (!parent) {
		snprintf(out, CONTENT_DIGEST_MAX, "%s", diff_id);
		return 0;
	}
	/* The hash input is the two digests as text, prefixes included. */
	input = xasprintf("%s %s", parent, diff_id);
	digest_buf(DIGEST_SHA256, input, strlen(input), out);
	return 0;
}

static bool all_strings(json_t *arr)
{
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (!json_is_string(json_array_get(arr, i)))
			return false;
	return true;
}

/* A copy of an optional array of strings ([] if absent or null). */
static json_t *strings_array(json_t *cfg, const char *key, struct crisp_error *err)
{
	json_t *v = json_object_get(cfg, key);

	if (!v || json_is_null(v))
		return json_array();
	if (!json_is_array(v) || !all_strings(v)) {
		err_set(err, CRISP_E_INVALID, "image config: %s is not an array of strings", key);
		return NULL;
	}
	return json_deep_copy(v);
}

static const char *config_string(json_t *cfg, const char *key, struct crisp_error *err)
{
	json_t *v = json_object_get(cfg, key);

	if (!v || json_is_null(v))
		return "";
	if (!json_is_string(v)) {
		err_set(err, CRISP_E_INVALID, "image config: %s is not a string", key);
		return NULL;
	}
	return json_string_value(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Volumes are an object whose keys are the paths: a sorted array of them. */
static json_t *volumes_array(json_t *cfg, struct crisp_error *err)
{
	json_t *v = json_object_get(cfg, "Volumes"), *arr;
	_cleanup_free_ const char **keys = NULL;
	size_t n = 0;

	if (!v || json_is_null(v))
		return json_array();
	if (!json_is_object(v)) {
		err_set(err, CRISP_E_INVALID, "image config: Volumes is not an object");
		return NULL;
	}
	keys = xcalloc(json_object_size(v) + 1, sizeof(*keys));
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
		keys[n++] = json_object_iter_key(it);
	qsort(keys, n, sizeof(*keys), cmp_str);
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(keys[i]));
	return arr;
}

static json_t *labels_object(json_t *cfg, struct crisp_error *err)
{
	json_t *v = json_object_get(cfg, "Labels");

	if (!v || json_is_null(v))
		return json_object();
	if (!json_is_object(v))
		goto bad;
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
		if (!json_is_string(json_object_iter_value(it)))
			goto bad;
	return json_deep_copy(v);
bad:
	err_set(err, CRISP_E_INVALID, "image config: Labels is not an object of strings");
	return NULL;
}

static json_t *config_spec(json_t *root, struct crisp_error *err)
{
	static const struct {
		const char *from, *to;
	} strs[] = {
		{ "User", "user" },
		{ "WorkingDir", "working_dir" },
		{ "StopSignal", "stop_signal" },
	}, arrays[] = {
		{ "Env", "env" },
		{ "Entrypoint", "entrypoint" },
		{ "Cmd", "cmd" },
	};
	json_t *cfg = json_object_get(root, "config");
	json_t *spec = json_object(), *v;

	if (cfg && !json_is_object(cfg) && !json_is_null(cfg)) {
		err_set(err, CRISP_E_INVALID, "image config: config is not an object");
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		const char *s = config_string(cfg, strs[i].from, err);

		if (!s)
			goto fail;
		json_object_set_new(spec, strs[i].to, json_string(s));
	}
	for (size_t i = 0; i < ARRAY_SIZE(arrays); i++) {
		if (!(v = strings_array(cfg, arrays[i].from, err)))
			goto fail;
		json_object_set_new(spec, arrays[i].to, v);
	}
	if (!(v = volumes_array(cfg, err)))
		goto fail;
	json_object_set_new(spec, "volumes", v);
	if (!(v = labels_object(cfg, err)))
		goto fail;
	json_object_set_new(spec, "labels", v);
	return spec;
fail:
	json_decref(spec);
	return NULL;
}

/* uid or username the way CRI (and containerd) report them: the user part
 * of "user[:group]" is a uid if it is a number, else a name. */
static void config_user(struct image_config *c)
{
	_cleanup_free_ char *u = xstrdup(json_string_value(json_object_get(c->spec, "user")));
	char *colon = strchr(u, ':');
	uint64_t v;

	c->uid = -1;
	if (colon)
		*colon = '\0';
	if (!*u)
		return;
	if (parse_uint64(u, 10, INT64_MAX, &v) == 0)
		c->uid = (int64_t)v;
	else
		c->username = TAKE_PTR(u);
}

static int config_diff_ids(json_t *root, struct image_config *c, struct crisp_error *err)
{
	json_t *ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");

	if (!json_is_array(ids))
		return err_set(err, CRISP_E_INVALID, "image config: no rootfs.diff_ids array");
	c->diff_ids = xcalloc(json_array_size(ids) + 1, sizeof(*c->diff_ids));
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const char *d = json_string_value(json_array_get(ids, i));

		if (!digest_valid(d))
			return err_set(err, CRISP_E_INVALID,
				       "image config: rootfs.diff_ids[%zu] is not a digest", i);
		c->diff_ids[c->n_diff_ids++] = xstrdup(d);
	}
	return 0;
}

int image_config_parse(const char *json, size_t len, struct image_config *ret,
		       struct crisp_error *err)
{
	struct image_config c = { .uid = -1 };
	json_error_t jerr;
	json_t *root;

	/* Duplicate keys would let two parsers read two different configs. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(err, CRISP_E_INVALID, "image config: %s (line %d)", jerr.text,
			       jerr.line);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(err, CRISP_E_INVALID, "image config is not a JSON object");
	}
	c.spec = config_spec(root, err);
	if (!c.spec || config_diff_ids(root, &c, err) < 0) {
		json_decref(root);
		image_config_done(&c);
		return -1;
	}
	json_decref(root);
	config_user(&c);
	*ret = c;
	return 0;
}

void image_config_done(struct image_config *c)
{
	if (!c)
		return;
	json_decref(c->spec);
	free(c->username);
	for (size_t i = 0; i < c->n_diff_ids; i++)
		free(c->diff_ids[i]);
	free(c->diff_ids);
	memset(c, 0, sizeof(*c));
	c->uid = -1;
}
