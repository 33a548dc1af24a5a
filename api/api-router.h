/* SPDX-License-Identifier: MIT */
/*
 * Routing without a socket: method + path + body in, status + body out.
 * The HTTP server, the unit tests and the fuzzer all enter here.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

enum api_method {
	API_METHOD_GET,
	API_METHOD_PUT,
	API_METHOD_PATCH,
	API_METHOD_POST,
	API_METHOD_OTHER,
	API_METHOD_MAX,
};

/* Everything a handler needs; the server owns it. */
struct api_ctx {
	const struct api_backend_ops *ops;
	void *opaque;
	const char *instance_id; /* GET / "id", the default clone prefix */
	const char *version;
	/* Held around [serial] ops; NULL when the caller is single-threaded. */
	pthread_mutex_t *serial_lock;
};

struct api_response {
	unsigned int status;
	const char *content_type; /* static; NULL when there is no body */
	char *body;		  /* malloc'd */
	size_t body_len;
	char allow[32]; /* 405: the methods the path accepts, for the Allow header */
};

enum api_method api_method_parse(const char *s);
const char *api_method_name(enum api_method m);

/*
 * Route one request. Returns 0 with *ret filled (any status), or -ENOMEM
 * when not even an error response could be built.
 */
int api_dispatch(const struct api_ctx *ctx, enum api_method m, const char *path, const char *body,
		 size_t body_len, struct api_response *ret) __attribute__((warn_unused_result));

void api_response_release(struct api_response *r);

/* Fill *ret with {"fault_message": ...}; returns 0 or -ENOMEM. */
int api_respond_fault(struct api_response *ret, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The HTTP status for a backend's -errno. */
unsigned int api_status_from_errno(int err);

/* The route table, for the spec conformance test: "GET", "/drives/{drive_id}". */
size_t api_route_count(void);
void api_route_describe(size_t i, const char **ret_method, const char **ret_pattern);
