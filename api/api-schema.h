/* SPDX-License-Identifier: MIT */
/*
 * The small schema engine behind the parsers: a request body is described
 * by a table of fields, and one loop checks it. Declaring bodies as data
 * keeps every endpoint's rules (types, ranges, required fields, unknown
 * fields) visible in one place and identical in behaviour.
 * Private to api/.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

/* json_decrefp() comes with jansson (2.11+). */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

enum api_field_type {
	AF_STRING, /* char[size]; min = minimum length */
	AF_BOOL,
	AF_U32,
	AF_U64,
	AF_ENUM, /* string matched against names[], stored as int */
	AF_CUSTOM,
};

/* Checks a string value; fills f and returns -EINVAL when it is bad. */
typedef int (*api_check_fn)(const char *what, const char *field, const char *value,
			    struct api_fault *f);
/* Converts a JSON value into target; same error convention. */
typedef int (*api_custom_fn)(const char *what, const char *field, json_t *v, void *target,
			     struct api_fault *f);

struct api_field {
	const char *name;
	enum api_field_type type;
	bool required;
	size_t offset;
	size_t size;
	uint64_t min, max;
	const char *const *names;
	api_check_fn check;
	api_custom_fn custom;
	/* Fields accepted for compatibility but refused with a reason. */
	const char *refuse;
};

#define AF_FIELD_SIZE(st, fld) sizeof(((st *)0)->fld)

#define F_STR(st, n, fld, req, minlen, chk)                                                        \
	{                                                                                          \
		.name = (n), .type = AF_STRING, .required = (req), .offset = offsetof(st, fld),    \
		.size = AF_FIELD_SIZE(st, fld), .min = (minlen), .check = (chk)                    \
	}
/* A string stored in a larger buffer than the value may use. */
#define F_STRN(st, n, fld, req, minlen, maxsize, chk)                                              \
	{                                                                                          \
		.name = (n), .type = AF_STRING, .required = (req), .offset = offsetof(st, fld),    \
		.size = (maxsize), .min = (minlen), .check = (chk)                                 \
	}
#define F_BOOL(st, n, fld)                                                                         \
	{                                                                                          \
		.name = (n), .type = AF_BOOL, .offset = offsetof(st, fld)                          \
	}
#define F_U32(st, n, fld, req, lo, hi)                                                             \
	{                                                                                          \
		.name = (n), .type = AF_U32, .required = (req), .offset = offsetof(st, fld),       \
		.min = (lo), .max = (hi)                                                           \
	}
#define F_U64(st, n, fld, req, lo, hi)                                                             \
	{                                                                                          \
		.name = (n), .type = AF_U64, .required = (req), .offset = offsetof(st, fld),       \
		.min = (lo), .max = (hi)                                                           \
	}
#define F_ENUM(st, n, fld, req, tbl)                                                               \
	{                                                                                          \
		.name = (n), .type = AF_ENUM, .required = (req), .offset = offsetof(st, fld),      \
		.names = (tbl)                                                                     \
	}
#define F_CUSTOM(n, req, fn)                                                                       \
	{                                                                                          \
		.name = (n), .type = AF_CUSTOM, .required = (req), .custom = (fn)                  \
	}
#define F_REFUSE(n, why)                                                                           \
	{                                                                                          \
		.name = (n), .type = AF_CUSTOM, .refuse = (why)                                    \
	}

/*
 * Parse body as one JSON object. An empty body counts as {} when
 * empty_ok, and is refused otherwise. On success *ret_doc is the document
 * (the caller owns a reference).
 */
int api_schema_load(const char *what, const char *body, size_t len, bool empty_ok, json_t **ret_doc,
		    struct api_fault *f);

/* Apply fields[] to obj, writing into target. */
int api_schema_apply(const char *what, json_t *obj, const struct api_field *fields, size_t n,
		     void *target, struct api_fault *f);

/* api_schema_load() then api_schema_apply(). */
int api_schema_parse(const char *what, const char *body, size_t len, bool empty_ok,
		     const struct api_field *fields, size_t n, void *target, struct api_fault *f);

/* String checks shared by the parsers. */
int api_check_path(const char *what, const char *field, const char *value, struct api_fault *f);
int api_check_id(const char *what, const char *field, const char *value, struct api_fault *f);
int api_check_ifname(const char *what, const char *field, const char *value, struct api_fault *f);
