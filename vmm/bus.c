// SPDX-License-Identifier: MIT
#include <string.h>

#include "bus.h"

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_device_ops *ops,
		 void *dev)
{
	uint32_t pos;

	if (!ops || !ops->name || len == 0 || base + len < base || ops->access_sizes == 0)
		return -EINVAL;
	if (bus->nr_ranges == BUS_MAX_RANGES)
		return -ENOSPC;

	for (pos = 0; pos < bus->nr_ranges; pos++) {
		const struct bus_range *r = &bus->ranges[pos];

		if (ranges_overlap(base, len, r->base, r->len))
			return -EEXIST;
		if (r->base > base)
			break;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->nr_ranges - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){ .base = base, .len = len, .ops = ops, .dev = dev };
	bus->nr_ranges++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	uint32_t lo = 0, hi = bus->nr_ranges;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

static bool size_declared(uint32_t access_sizes, uint32_t size)
{
	switch (size) {
	case 1:
		return access_sizes & BUS_ACCESS_1;
	case 2:
		return access_sizes & BUS_ACCESS_2;
	case 4:
		return access_sizes & BUS_ACCESS_4;
	case 8:
		return access_sizes & BUS_ACCESS_8;
	default:
		return false;
	}
}

static void note_unclaimed(struct bus *bus, uint64_t addr, uint32_t size, bool is_write,
			   const char *why)
{
	bus->unclaimed_accesses++;
	if (log_get_level() >= LOG_DEBUG && ratelimit_allow(&bus->unclaimed_rl))
		log_debug("%s: %s %u-byte %s at 0x%llx", bus->name, why, size,
			  is_write ? "write" : "read", (unsigned long long)addr);
}

bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t size, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);
	uint64_t offset;

	if (!r) {
		note_unclaimed(bus, addr, size, is_write, "unclaimed");
		goto unhandled;
	}
	offset = addr - r->base;
	if (!size_declared(r->ops->access_sizes, size) || size > r->len - offset) {
		note_unclaimed(bus, addr, size, is_write, r->ops->name);
		goto unhandled;
	}
	if (is_write) {
		if (r->ops->write)
			r->ops->write(r->dev, offset, data, size);
	} else if (r->ops->read) {
		r->ops->read(r->dev, offset, data, size);
	} else {
		memset(data, 0xff, size);
	}
	return true;

unhandled:
	if (!is_write)
		memset(data, 0xff, size);
	return false;
}
