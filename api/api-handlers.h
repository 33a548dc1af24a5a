/* SPDX-License-Identifier: MIT */
/*
 * Route handlers and the rules they run under. Private to api/.
 *
 * A handler parses its body, names the call it is about to make, and
 * brackets the backend op with api_call_enter()/api_call_leave(), which
 * apply the one state table (pre-boot only, runtime only, ...), answer 501
 * for a missing op and take the serial lock.
 */
#pragma once

#include <jansson.h>

#include "api-router.h"

/* One entry per backend call a request can turn into. */
enum api_call {
	API_CALL_GET_INFO,
	API_CALL_GET_VERSION,
	API_CALL_GET_MACHINE_CONFIG,
	API_CALL_PUT_MACHINE_CONFIG,
	API_CALL_PUT_BOOT_SOURCE,
	API_CALL_PUT_DRIVE,
	API_CALL_PUT_NET,
	API_CALL_PUT_VSOCK,
	API_CALL_PUT_ENTROPY,
	API_CALL_INSTANCE_START,
	API_CALL_SEND_CTRL_ALT_DEL,
	API_CALL_FLUSH_METRICS,
	API_CALL_PAUSE,
	API_CALL_RESUME,
	API_CALL_GET_VM_CONFIG,
	API_CALL_SNAPSHOT_CREATE,
	API_CALL_SNAPSHOT_LOAD,
	API_CALL_FORK,
	API_CALL_GET_CLONES,
	API_CALL_EXEC,
	API_CALL_INVOKE,
	API_CALL_DISK_COMMIT,
	API_CALL_GET_METRICS,
	API_CALL_MAX,
};

/*
 * Check the op exists and the VM state allows the call; take the serial
 * lock when the call needs it. Returns 0 to go ahead (then call
 * api_call_leave()), 1 when *ret already holds the refusal, -ENOMEM.
 */
int api_call_enter(const struct api_ctx *ctx, enum api_call c, struct api_response *ret);
void api_call_leave(const struct api_ctx *ctx, enum api_call c);

/* Answer a failed op: the status from err, the message from f or strerror. */
int api_respond_op_error(struct api_response *ret, enum api_call c, int err,
			 const struct api_fault *f);
int api_respond_json(struct api_response *ret, unsigned int status, json_t *doc);
int api_respond_empty(struct api_response *ret, unsigned int status);
/* 400 with the parser's reason (or 500 for -ENOMEM from a parser). */
int api_respond_parse_error(struct api_response *ret, int err, const struct api_fault *f);

typedef int (*api_handler_fn)(const struct api_ctx *ctx, const char *path_id, const char *body,
			      size_t len, struct api_response *ret);

int api_h_get_info(const struct api_ctx *, const char *, const char *, size_t,
		   struct api_response *);
int api_h_get_version(const struct api_ctx *, const char *, const char *, size_t,
		      struct api_response *);
int api_h_get_machine_config(const struct api_ctx *, const char *, const char *, size_t,
			     struct api_response *);
int api_h_put_machine_config(const struct api_ctx *, const char *, const char *, size_t,
			     struct api_response *);
int api_h_put_boot_source(const struct api_ctx *, const char *, const char *, size_t,
			  struct api_response *);
int api_h_put_drive(const struct api_ctx *, const char *, const char *, size_t,
		    struct api_response *);
int api_h_put_net(const struct api_ctx *, const char *, const char *, size_t,
		  struct api_response *);
int api_h_put_vsock(const struct api_ctx *, const char *, const char *, size_t,
		    struct api_response *);
int api_h_put_entropy(const struct api_ctx *, const char *, const char *, size_t,
		      struct api_response *);
int api_h_put_actions(const struct api_ctx *, const char *, const char *, size_t,
		      struct api_response *);
int api_h_patch_vm(const struct api_ctx *, const char *, const char *, size_t,
		   struct api_response *);
int api_h_get_vm_config(const struct api_ctx *, const char *, const char *, size_t,
			struct api_response *);
int api_h_snapshot_create(const struct api_ctx *, const char *, const char *, size_t,
			  struct api_response *);
int api_h_snapshot_load(const struct api_ctx *, const char *, const char *, size_t,
			struct api_response *);
int api_h_fork(const struct api_ctx *, const char *, const char *, size_t, struct api_response *);
int api_h_get_clones(const struct api_ctx *, const char *, const char *, size_t,
		     struct api_response *);
int api_h_exec(const struct api_ctx *, const char *, const char *, size_t, struct api_response *);
int api_h_invoke(const struct api_ctx *, const char *, const char *, size_t, struct api_response *);
int api_h_disk_commit(const struct api_ctx *, const char *, const char *, size_t,
		      struct api_response *);
int api_h_get_metrics(const struct api_ctx *, const char *, const char *, size_t,
		      struct api_response *);
