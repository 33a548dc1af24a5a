/* SPDX-License-Identifier: MIT */
/*
 * Request bodies to typed requests. Each parser takes the raw body, rejects
 * malformed JSON, unknown fields, wrong types and out-of-range values with
 * -EINVAL and a reason in f, and writes *ret only on success.
 *
 * Path parameters (the {drive_id} of PUT /drives/{drive_id}) are passed in
 * and must agree with the body, as in Firecracker.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

/* [A-Za-z0-9_-], 1..VM_CONFIG_ID_MAX-1 bytes: drive, iface and VM names. */
bool api_id_valid(const char *s);

int api_parse_machine_config(const char *body, size_t len, struct api_machine_config *ret,
			     struct api_fault *f);
int api_parse_boot_source(const char *body, size_t len, struct api_boot_source *ret,
			  struct api_fault *f);
int api_parse_drive(const char *path_id, const char *body, size_t len, struct vm_drive_config *ret,
		    struct api_fault *f);
int api_parse_network_interface(const char *path_id, const char *body, size_t len,
				struct vm_net_config *ret, struct api_fault *f);
int api_parse_vsock(const char *body, size_t len, struct vm_vsock_config *ret, struct api_fault *f);
int api_parse_entropy(const char *body, size_t len, struct api_entropy_config *ret,
		      struct api_fault *f);
int api_parse_action(const char *body, size_t len, enum api_action *ret, struct api_fault *f);
int api_parse_vm_state(const char *body, size_t len, enum api_vm_target *ret, struct api_fault *f);
int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *ret,
			      struct api_fault *f);
int api_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *ret,
			    struct api_fault *f);
/* default_prefix names the clones when the body has no name_prefix. */
int api_parse_fork(const char *body, size_t len, const char *default_prefix,
		   struct api_fork_request *ret, struct api_fault *f);
/* On success *ret holds a reference; release it with api_exec_request_release(). */
int api_parse_exec(const char *body, size_t len, struct api_exec_request *ret, struct api_fault *f);
void api_exec_request_release(struct api_exec_request *req);
/* PUT /drives/{id}/commit: an empty body or {}. */
int api_parse_commit(const char *path_id, const char *body, size_t len, struct api_fault *f);
