// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api-parse.h"
#include "api-schema.h"
#include "util.h"

void api_fault_set(struct api_fault *f, const char *fmt, ...)
{
	va_list ap;

	if (!f)
		return;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

int api_schema_load(const char *what, const char *body, size_t len, bool empty_ok, json_t **ret_doc,
		    struct api_fault *f)
{
	json_error_t err;
	json_t *doc;
	size_t i;

	/* Whitespace-only counts as empty: curl -d '' and friends send nothing useful. */
	for (i = 0; i < len && strchr(" \t\r\n", body[i]); i++)
		;
	if (i == len) {
		if (!empty_ok) {
			api_fault_set(f, "%s: the request needs a JSON body", what);
			return -EINVAL;
		}
		doc = json_object();
		if (!doc)
			return -ENOMEM;
		*ret_doc = doc;
		return 0;
	}

	/* Duplicate keys are refused: which one wins would be a guess. */
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!doc) {
		api_fault_set(f, "%s: malformed JSON at line %d column %d: %s", what, err.line,
			      err.column, err.text);
		return -EINVAL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_fault_set(f, "%s: the body must be a JSON object", what);
		return -EINVAL;
	}
	*ret_doc = doc;
	return 0;
}

static const struct api_field *field_find(const struct api_field *fields, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

static int apply_string(const char *what, const struct api_field *fd, json_t *v, char *dst,
			struct api_fault *f)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);

	if (!s) {
		api_fault_set(f, "%s: '%s' must be a string", what, fd->name);
		return -EINVAL;
	}
	if (len >= fd->size) {
		api_fault_set(f, "%s: '%s' is longer than %zu bytes", what, fd->name, fd->size - 1);
		return -EINVAL;
	}
	if (len < fd->min) {
		api_fault_set(f, "%s: '%s' must not be empty", what, fd->name);
		return -EINVAL;
	}
	if (fd->check) {
		int r = fd->check(what, fd->name, s, f);

		if (r < 0)
			return r;
	}
	memcpy(dst, s, len + 1);
	return 0;
}

static int apply_uint(const char *what, const struct api_field *fd, json_t *v, uint64_t *ret,
		      struct api_fault *f)
{
	json_int_t x;

	if (!json_is_integer(v))
		goto bad;
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < fd->min || (uint64_t)x > fd->max)
		goto bad;
	*ret = (uint64_t)x;
	return 0;
bad:
	api_fault_set(f, "%s: '%s' must be an integer between %llu and %llu", what, fd->name,
		      (unsigned long long)fd->min, (unsigned long long)fd->max);
	return -EINVAL;
}

static int apply_enum(const char *what, const struct api_field *fd, json_t *v, int *ret,
		      struct api_fault *f)
{
	const char *s = json_string_value(v);
	char choices[256] = "";
	size_t used = 0;

	for (int i = 0; s && fd->names[i]; i++) {
		if (strcmp(s, fd->names[i]) == 0) {
			*ret = i;
			return 0;
		}
	}
	for (int i = 0; fd->names[i] && used < sizeof(choices); i++)
		used += (size_t)snprintf(choices + used, sizeof(choices) - used, "%s'%s'",
					 i ? ", " : "", fd->names[i]);
	api_fault_set(f, "%s: '%s' must be one of %s", what, fd->name, choices);
	return -EINVAL;
}

static int apply_one(const char *what, const struct api_field *fd, json_t *v, void *target,
		     struct api_fault *f)
{
	char *dst = (char *)target + fd->offset;
	uint64_t u;
	int e, r;

	if (fd->refuse) {
		api_fault_set(f, "%s: '%s' is not supported: %s", what, fd->name, fd->refuse);
		return -EINVAL;
	}
	switch (fd->type) {
	case AF_STRING:
		return apply_string(what, fd, v, dst, f);
	case AF_BOOL:
		if (!json_is_boolean(v)) {
			api_fault_set(f, "%s: '%s' must be true or false", what, fd->name);
			return -EINVAL;
		}
		*(bool *)dst = json_is_true(v);
		return 0;
	case AF_U32:
		r = apply_uint(what, fd, v, &u, f);
		if (r < 0)
			return r;
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case AF_U64:
		r = apply_uint(what, fd, v, &u, f);
		if (r < 0)
			return r;
		*(uint64_t *)dst = u;
		return 0;
	case AF_ENUM:
		r = apply_enum(what, fd, v, &e, f);
		if (r < 0)
			return r;
		*(int *)dst = e;
		return 0;
	case AF_CUSTOM:
		return fd->custom(what, fd->name, v, target, f);
	}
	return -EINVAL;
}

int api_schema_apply(const char *what, json_t *obj, const struct api_field *fields, size_t n,
		     void *target, struct api_fault *f)
{
	const char *key;
	json_t *v;
	int r;

	if (!json_is_object(obj)) {
		api_fault_set(f, "%s: expected a JSON object", what);
		return -EINVAL;
	}
	/* Unknown fields first: a typo must not hide behind a missing field. */
	json_object_foreach(obj, key, v)
	{
		if (!field_find(fields, n, key)) {
			api_fault_set(f, "%s: unknown field '%s'", what, key);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(obj, fields[i].name);
		/* JSON null means "not given", as serializers emit it for absent options. */
		if (!v || json_is_null(v)) {
			if (fields[i].required) {
				api_fault_set(f, "%s: missing required field '%s'", what,
					      fields[i].name);
				return -EINVAL;
			}
			continue;
		}
		r = apply_one(what, &fields[i], v, target, f);
		if (r < 0)
			return r;
	}
	return 0;
}

int api_check_path(const char *what, const char *field, const char *value, struct api_fault *f)
{
	for (const char *p = value; *p; p++) {
		if ((unsigned char)*p < 0x20) {
			api_fault_set(f, "%s: '%s' contains a control character", what, field);
			return -EINVAL;
		}
	}
	return 0;
}

bool api_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0 && n < VM_CONFIG_ID_MAX;
}

int api_check_id(const char *what, const char *field, const char *value, struct api_fault *f)
{
	if (api_id_valid(value))
		return 0;
	api_fault_set(f, "%s: '%s' must be 1 to %d characters from [A-Za-z0-9_-]", what, field,
		      VM_CONFIG_ID_MAX - 1);
	return -EINVAL;
}

int api_check_ifname(const char *what, const char *field, const char *value, struct api_fault *f)
{
	/* The kernel's own rule for interface names (dev_valid_name). */
	if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
		goto bad;
	for (const char *p = value; *p; p++)
		if (*p == '/' || *p == ':' || (unsigned char)*p <= ' ' || *p == 0x7f)
			goto bad;
	return 0;
bad:
	api_fault_set(f, "%s: '%s' is not a valid network interface name", what, field);
	return -EINVAL;
}

int api_schema_parse(const char *what, const char *body, size_t len, bool empty_ok,
		     const struct api_field *fields, size_t n, void *target, struct api_fault *f)
{
	_cleanup_json_ json_t *doc = NULL;
	int r;

	r = api_schema_load(what, body, len, empty_ok, &doc, f);
	if (r < 0)
		return r;
	return api_schema_apply(what, doc, fields, n, target, f);
}
