/* SPDX-License-Identifier: MIT */
/*
 * How a device describes its saved state: a versioned list of fields
 * (name, offset, size in the device struct) plus a post_load check. The
 * state file writes each field as a property and reads it back with an
 * exact length check; post_load then validates the invariants a field-by-
 * field copy cannot, and returns -EINVAL for a state a guest or a file
 * could have made inconsistent. Restore builds the device from its config
 * and then this state; it never pokes a live device.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct state_field {
	const char *name;
	size_t offset;
	size_t size;
};

#define STATE_FIELD(type, member)                                                                  \
	{ #member, offsetof(type, member), sizeof(((type *)0)->member) }

struct state_desc {
	const char *name;
	uint32_t version;
	/* sizeof the device struct: restore validates a scratch copy first. */
	size_t size;
	const struct state_field *fields;
	size_t nr_fields;
	int (*post_load)(void *dev);
};

static inline int state_check_bool(const void *p)
{
	return *(const unsigned char *)p <= 1 ? 0 : -22 /* EINVAL */;
}

/* A device taking part in save/restore: its description and its struct. */
struct state_device {
	const struct state_desc *desc;
	void *dev;
};
