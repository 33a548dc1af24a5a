/* SPDX-License-Identifier: MIT */
/*
 * The state file: a flattened device tree (libfdt) holding a format
 * version, a CRC-32C, one node per vCPU, one for the VM and one per device.
 * `fdtdump` shows it to a person. Loading validates everything (fdt
 * structure, version, checksum, every property's exact length, every
 * device's post_load check) before a byte reaches a VM.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "state-desc.h"
#include "util.h"
#include "vm-state.h"

#define STATE_FORMAT_NAME    "fvm-state"
#define STATE_FORMAT_VERSION 1
/* Oldest version this build still loads. */
#define STATE_FORMAT_OLDEST  1
#define STATE_FILE_MAX	     (16u << 20)

/* Serialize; *ret_blob is malloc'ed. */
int state_encode(const struct vm_state *st, const struct state_device *devs, uint32_t nr_devs,
		 void **ret_blob, size_t *ret_len) __must_check;

/*
 * Validate and parse into a new vm_state (*ret_st, free with
 * vm_state_free). Device state is checked on scratch copies and only
 * copied into devs[i].dev when the whole blob is valid, so a bad file
 * changes nothing. reason gets one line on failure.
 */
int state_decode(const void *blob, size_t len, struct vm_state **ret_st,
		 const struct state_device *devs, uint32_t nr_devs, char *reason,
		 size_t reason_len) __must_check;

/* Atomic write (temporary file, fsync, rename, fsync of the directory). */
int state_write_file(const char *path, const void *blob, size_t len) __must_check;
/* Read a whole file of at most max bytes; *ret_data is malloc'ed. */
int state_read_file(const char *path, size_t max, void **ret_data, size_t *ret_len) __must_check;
