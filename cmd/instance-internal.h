/* SPDX-License-Identifier: MIT */
/* What instance.c, instance-api.c and instance-fork.c share; not for others. */
#pragma once

#include "instance.h"

/* The state as the API reports it. */
enum vm_run_state instance_get_state(void *inst);

/* Run the VM until it stops; returns fvm's exit status. */
int instance_run_until_stopped(struct instance *inst, int console_in_fd);

/*
 * Before a forked template runs again: RAM on a private mapping and fresh
 * overlays over the disk images its clones read.
 */
int instance_template_unfreeze(struct instance *inst, char *why, size_t why_len);

/* A qcow2 overlay at `overlay` over drive d's image. */
int instance_create_overlay(const struct vm_drive_config *d, const char *overlay, char *why,
			    size_t why_len);

/*
 * Fork req->count clones. agent_by_caller: the clones leave their identity
 * to the caller (invoke) instead of sending it to their agents themselves.
 * ret_first_number (optional): the first clone's number n.
 */
int instance_fork(struct instance *inst, const struct api_fork_request *req, bool agent_by_caller,
		  struct api_clone_list *ret, uint32_t *ret_first_number, struct api_fault *f);

/* Where clone `name` listens for vsock connections. */
int instance_clone_vsock_path(const struct instance *inst, const char *name, char *buf,
			      size_t len);

/* Give the VM its identity through the guest agent, in the background (when it has vsock). */
void instance_agent_start(struct instance *inst);

int instance_op_exec(void *inst, const struct api_exec_request *req, struct api_exec_result *ret,
		     struct api_fault *f);
int instance_op_invoke(void *inst, const struct api_exec_request *req,
		       struct api_exec_result *ret, struct api_fault *f);

int instance_op_fork(void *inst, const struct api_fork_request *req, struct api_clone_list *ret,
		     struct api_fault *f);
int instance_op_list_clones(void *inst, struct api_clone_list *ret);
