/* SPDX-License-Identifier: MIT */
/*
 * One address-decoding bus, instantiated twice per VM: port I/O and MMIO.
 * Devices register ranges with an ops table; the run loop hands every
 * guest access to bus_access(), which finds the range, checks the access
 * size the device declared, and calls the handler with an offset relative
 * to the start of the range.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

/* Access sizes a device accepts, as a mask of these bits. */
#define BUS_ACCESS_1 (1u << 0)
#define BUS_ACCESS_2 (1u << 1)
#define BUS_ACCESS_4 (1u << 2)
#define BUS_ACCESS_8 (1u << 3)

struct bus_device_ops {
	const char *name;
	uint32_t access_sizes;
	/* `data` holds `size` bytes, little-endian, as the guest sees them. */
	void (*read)(void *dev, uint64_t offset, void *data, uint32_t size);
	void (*write)(void *dev, uint64_t offset, const void *data, uint32_t size);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_device_ops *ops;
	void *dev;
};

enum { BUS_MAX_RANGES = 64 };

struct bus {
	const char *name;
	/* Sorted by base, never overlapping. */
	struct bus_range ranges[BUS_MAX_RANGES];
	uint32_t nr_ranges;
	uint64_t unclaimed_accesses;
	struct ratelimit unclaimed_rl;
};

void bus_init(struct bus *bus, const char *name);

/*
 * Add [base, base + len). Fails with -EEXIST on overlap, -EINVAL on an
 * empty or wrapping range or missing ops, -ENOSPC when full.
 */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_device_ops *ops,
		 void *dev) __must_check;

/* The range holding addr, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/*
 * Dispatch one guest access. Unclaimed reads, accesses of an undeclared
 * size and accesses straddling a range's end read as all-ones and drop
 * writes; they are counted and logged at debug level, rate-limited.
 * Returns true when a device handled the access.
 */
bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t size, bool is_write);
