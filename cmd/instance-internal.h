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

int instance_op_fork(void *inst, const struct api_fork_request *req, struct api_clone_list *ret,
		     struct api_fault *f);
int instance_op_list_clones(void *inst, struct api_clone_list *ret);
