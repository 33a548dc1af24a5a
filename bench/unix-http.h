/* SPDX-License-Identifier: MIT */
/* The benchmarks' HTTP client: one request to an fvm API socket. */
#pragma once

#include <stddef.h>

/*
 * Sends METHOD PATH with a JSON body (Connection: close) and reads the
 * whole answer into resp (NUL-terminated). 0 on a 2xx status, -1 otherwise.
 */
int bench_http_request(const char *sock, const char *method, const char *path, const char *body,
		       char *resp, size_t resp_len);
