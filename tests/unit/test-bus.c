// SPDX-License-Identifier: MIT
/*
 * vmm/bus.c: range registration and access dispatch, against recording
 * fake devices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"

/* A device that records its last access and answers reads with a pattern. */
struct rec_dev {
	uint8_t pattern;
	uint32_t reads, writes;
	uint64_t last_offset;
	uint32_t last_size;
	uint8_t last_data[8];
};

static void rec_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct rec_dev *d = dev;

	d->reads++;
	d->last_offset = offset;
	d->last_size = size;
	for (uint32_t i = 0; i < size; i++)
		((uint8_t *)data)[i] = (uint8_t)(d->pattern + i);
}

static void rec_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct rec_dev *d = dev;

	d->writes++;
	d->last_offset = offset;
	d->last_size = size;
	memcpy(d->last_data, data, size);
}

static const struct bus_device_ops ops_all = {
	.name = "all",
	.access_sizes = BUS_ACCESS_1 | BUS_ACCESS_2 | BUS_ACCESS_4 | BUS_ACCESS_8,
	.read = rec_read,
	.write = rec_write,
};

static const struct bus_device_ops ops_1_4 = {
	.name = "one-and-four",
	.access_sizes = BUS_ACCESS_1 | BUS_ACCESS_4,
	.read = rec_read,
	.write = rec_write,
};

static const struct bus_device_ops ops_no_handlers = {
	.name = "no-handlers",
	.access_sizes = BUS_ACCESS_1,
};

static void test_register_sorted(void **state)
{
	struct bus bus;
	struct rec_dev d[4] = { 0 };

	bus_init(&bus, "test");
	assert_string_equal(bus.name, "test");
	assert_int_equal(bus.nr_ranges, 0);

	assert_int_equal(bus_register(&bus, 0x300, 0x10, &ops_all, &d[0]), 0);
	assert_int_equal(bus_register(&bus, 0x100, 0x10, &ops_all, &d[1]), 0);
	assert_int_equal(bus_register(&bus, 0x400, 0x10, &ops_all, &d[2]), 0);
	assert_int_equal(bus_register(&bus, 0x200, 0x10, &ops_all, &d[3]), 0);

	assert_int_equal(bus.nr_ranges, 4);
	assert_int_equal(bus.ranges[0].base, 0x100);
	assert_ptr_equal(bus.ranges[0].dev, &d[1]);
	assert_int_equal(bus.ranges[1].base, 0x200);
	assert_ptr_equal(bus.ranges[1].dev, &d[3]);
	assert_int_equal(bus.ranges[2].base, 0x300);
	assert_ptr_equal(bus.ranges[2].dev, &d[0]);
	assert_int_equal(bus.ranges[3].base, 0x400);
	assert_ptr_equal(bus.ranges[3].dev, &d[2]);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(bus.ranges[i].len, 0x10);
		assert_ptr_equal(bus.ranges[i].ops, &ops_all);
	}
}

/* Existing ranges [0x100, 0x110) and [0x200, 0x210); try a new range against them. */
static const struct {
	const char *what;
	uint64_t base, len;
	int expect;
} overlap_cases[] = {
	{ "identical", 0x100, 0x10, -EEXIST },
	{ "partial at the start", 0xf8, 0x10, -EEXIST },
	{ "one byte at the start", 0xf0, 0x11, -EEXIST },
	{ "partial at the end", 0x108, 0x10, -EEXIST },
	{ "one byte at the end", 0x10f, 0x10, -EEXIST },
	{ "inside", 0x104, 0x4, -EEXIST },
	{ "single byte inside", 0x10f, 0x1, -EEXIST },
	{ "covering", 0xf0, 0x40, -EEXIST },
	{ "covering both", 0x0, 0x1000, -EEXIST },
	{ "bridging end of one and start of next", 0x10f, 0xf2, -EEXIST },
	{ "end of second", 0x20f, 0x100, -EEXIST },
	{ "adjacent below", 0xf0, 0x10, 0 },
	{ "adjacent above", 0x110, 0x10, 0 },
	{ "gap between", 0x110, 0xf0, 0 },
	{ "adjacent above second", 0x210, 0x1, 0 },
	{ "far above", 0xffff0000ull, 0x1000, 0 },
};

static void test_register_overlap(void **state)
{
	struct rec_dev d = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(overlap_cases); i++) {
		struct bus bus;
		int r;

		bus_init(&bus, "test");
		assert_int_equal(bus_register(&bus, 0x100, 0x10, &ops_all, &d), 0);
		assert_int_equal(bus_register(&bus, 0x200, 0x10, &ops_all, &d), 0);
		r = bus_register(&bus, overlap_cases[i].base, overlap_cases[i].len, &ops_all, &d);
		if (r != overlap_cases[i].expect)
			print_message("case: %s\n", overlap_cases[i].what);
		assert_int_equal(r, overlap_cases[i].expect);
		assert_int_equal(bus.nr_ranges, overlap_cases[i].expect == 0 ? 3 : 2);
		/* Still sorted and disjoint whatever happened. */
		for (uint32_t k = 1; k < bus.nr_ranges; k++)
			assert_true(bus.ranges[k - 1].base + bus.ranges[k - 1].len <=
				    bus.ranges[k].base);
	}
}

static void test_register_invalid(void **state)
{
	static const struct bus_device_ops no_name = { .access_sizes = BUS_ACCESS_1 };
	static const struct bus_device_ops no_sizes = { .name = "x" };
	struct bus bus;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x100, 0, &ops_all, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, &ops_all, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 0xf, 0x20, &ops_all, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, 1, UINT64_MAX, &ops_all, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x100, 1, NULL, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x100, 1, &no_name, NULL), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x100, 1, &no_sizes, NULL), -EINVAL);
	assert_int_equal(bus.nr_ranges, 0);

	/* The highest range that does not wrap is fine. */
	assert_int_equal(bus_register(&bus, UINT64_MAX - 0xf, 0xf, &ops_all, NULL), 0);
	assert_int_equal(bus.nr_ranges, 1);
}

static void test_register_full(void **state)
{
	struct bus bus;

	bus_init(&bus, "test");
	/* Fill in descending order so every insertion shifts the array. */
	for (uint32_t i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, 0x1000 * (BUS_MAX_RANGES - i), 0x10, &ops_all,
					      NULL),
				 0);
	assert_int_equal(bus.nr_ranges, BUS_MAX_RANGES);
	assert_int_equal(bus_register(&bus, 0x100000, 0x10, &ops_all, NULL), -ENOSPC);
	assert_int_equal(bus.nr_ranges, BUS_MAX_RANGES);
	for (uint32_t i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus.ranges[i].base, 0x1000 * (i + 1));
}

static void test_dispatch_relative_offset(void **state)
{
	struct bus bus;
	struct rec_dev a = { .pattern = 0x10 }, b = { .pattern = 0x80 };
	uint8_t buf[8];
	uint32_t w = 0xdeadbeef;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &ops_all, &a), 0);
	assert_int_equal(bus_register(&bus, 0xd0000000, 0x1000, &ops_all, &b), 0);

	memset(buf, 0, sizeof(buf));
	assert_true(bus_access(&bus, 0x3fd, buf, 1, false));
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.last_offset, 5);
	assert_int_equal(a.last_size, 1);
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(buf[1], 0);
	assert_int_equal(b.reads, 0);

	assert_true(bus_access(&bus, 0xd0000070, &w, 4, true));
	assert_int_equal(b.writes, 1);
	assert_int_equal(b.last_offset, 0x70);
	assert_int_equal(b.last_size, 4);
	assert_memory_equal(b.last_data, "\xef\xbe\xad\xde", 4);

	assert_true(bus_access(&bus, 0xd0000ff8, buf, 8, false));
	assert_int_equal(b.last_offset, 0xff8);
	assert_memory_equal(buf, "\x80\x81\x82\x83\x84\x85\x86\x87", 8);

	/* First and last byte of a range. */
	assert_true(bus_access(&bus, 0x3f8, buf, 1, false));
	assert_int_equal(a.last_offset, 0);
	assert_true(bus_access(&bus, 0x3ff, buf, 1, false));
	assert_int_equal(a.last_offset, 7);
	assert_int_equal(bus.unclaimed_accesses, 0);
}

static void test_undeclared_size(void **state)
{
	struct bus bus;
	struct rec_dev d = { .pattern = 0x40 };
	uint8_t buf[8];
	static const uint32_t bad_sizes[] = { 2, 8, 3, 0 };

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x1000, 0x100, &ops_1_4, &d), 0);

	for (size_t i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
		uint32_t size = bad_sizes[i];
		uint32_t n = size;

		memset(buf, 0x5a, sizeof(buf));
		assert_false(bus_access(&bus, 0x1010, buf, size, false));
		for (uint32_t k = 0; k < n; k++)
			assert_int_equal(buf[k], 0xff);
		for (uint32_t k = n; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 0x5a);

		memset(buf, 0x11, sizeof(buf));
		assert_false(bus_access(&bus, 0x1010, buf, size, true));
		/* A write leaves the caller's buffer alone. */
		for (uint32_t k = 0; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 0x11);
	}
	assert_int_equal(d.reads, 0);
	assert_int_equal(d.writes, 0);
	assert_int_equal(bus.unclaimed_accesses, 2 * 4);

	/* Declared sizes still go through. */
	assert_true(bus_access(&bus, 0x1010, buf, 4, false));
	assert_true(bus_access(&bus, 0x1011, buf, 1, true));
	assert_int_equal(d.reads, 1);
	assert_int_equal(d.writes, 1);
	assert_int_equal(bus.unclaimed_accesses, 2 * 4);
}

static void test_straddling_end(void **state)
{
	struct bus bus;
	struct rec_dev d = { .pattern = 1 }, next = { .pattern = 2 };
	uint8_t buf[8];

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x100, 4, &ops_all, &d), 0);
	assert_int_equal(bus_register(&bus, 0x104, 4, &ops_all, &next), 0);

	/* Fits exactly. */
	assert_true(bus_access(&bus, 0x100, buf, 4, false));
	assert_int_equal(d.reads, 1);

	/* Runs past the end of the range, into the neighbour. */
	memset(buf, 0, sizeof(buf));
	assert_false(bus_access(&bus, 0x102, buf, 4, false));
	assert_memory_equal(buf, "\xff\xff\xff\xff\0\0\0\0", 8);
	assert_false(bus_access(&bus, 0x103, buf, 2, true));
	assert_false(bus_access(&bus, 0x100, buf, 8, false));
	assert_int_equal(d.reads, 1);
	assert_int_equal(d.writes, 0);
	assert_int_equal(next.reads + next.writes, 0);
	assert_int_equal(bus.unclaimed_accesses, 3);
}

static void test_unclaimed(void **state)
{
	struct bus bus;
	struct rec_dev d = { 0 };
	uint64_t v = 0x0123456789abcdefull;
	uint8_t b = 0;

	bus_init(&bus, "test");
	assert_false(bus_access(&bus, 0x80, &v, 8, false));
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(bus.unclaimed_accesses, 1);

	assert_int_equal(bus_register(&bus, 0x100, 0x10, &ops_all, &d), 0);
	assert_false(bus_access(&bus, 0xff, &b, 1, false));
	assert_int_equal(b, 0xff);
	assert_false(bus_access(&bus, 0x110, &b, 1, false));
	v = 7;
	assert_false(bus_access(&bus, 0x110, &v, 8, true));
	assert_int_equal(v, 7);
	assert_int_equal(bus.unclaimed_accesses, 4);
	assert_int_equal(d.reads + d.writes, 0);
}

static void test_missing_handlers(void **state)
{
	struct bus bus;
	uint8_t b = 0;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x60, 1, &ops_no_handlers, NULL), 0);
	/* A claimed port without a read handler reads all-ones but is handled. */
	assert_true(bus_access(&bus, 0x60, &b, 1, false));
	assert_int_equal(b, 0xff);
	b = 0x12;
	assert_true(bus_access(&bus, 0x60, &b, 1, true));
	assert_int_equal(bus.unclaimed_accesses, 0);
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* Reference for bus_find(): a linear scan. */
static const struct bus_range *linear_find(const struct bus *bus, uint64_t addr)
{
	for (uint32_t i = 0; i < bus->nr_ranges; i++)
		if (addr >= bus->ranges[i].base && addr - bus->ranges[i].base < bus->ranges[i].len)
			return &bus->ranges[i];
	return NULL;
}

static void test_binary_search_many(void **state)
{
	struct bus bus;
	struct rec_dev devs[BUS_MAX_RANGES];
	uint32_t order[BUS_MAX_RANGES];
	uint64_t seed = 42;

	memset(devs, 0, sizeof(devs));
	for (uint32_t i = 0; i < BUS_MAX_RANGES; i++)
		order[i] = i;
	/* Shuffle the registration order. */
	for (uint32_t i = BUS_MAX_RANGES - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(lcg(&seed) % (i + 1));
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	/* Range i is [0x100 * i + 0x10, + (i % 7) + 1): gaps between all of them. */
	bus_init(&bus, "test");
	for (uint32_t k = 0; k < BUS_MAX_RANGES; k++) {
		uint32_t i = order[k];

		devs[i].pattern = (uint8_t)i;
		assert_int_equal(bus_register(&bus, 0x100ull * i + 0x10, (i % 7) + 1, &ops_all,
					      &devs[i]),
				 0);
	}

	for (uint64_t addr = 0; addr < 0x100ull * BUS_MAX_RANGES + 0x20; addr++) {
		const struct bus_range *want = linear_find(&bus, addr);
		const struct bus_range *got = bus_find(&bus, addr);

		assert_ptr_equal(got, want);
		if (got) {
			uint32_t i = (uint32_t)(addr / 0x100);
			uint8_t b = 0;

			assert_ptr_equal(got->dev, &devs[i]);
			assert_true(bus_access(&bus, addr, &b, 1, false));
			assert_int_equal(b, (uint8_t)i);
			assert_int_equal(devs[i].last_offset, addr - (0x100ull * i + 0x10));
		}
	}
	/* Every range is found at both ends. */
	for (uint32_t i = 0; i < BUS_MAX_RANGES; i++) {
		uint64_t base = 0x100ull * i + 0x10;

		assert_non_null(bus_find(&bus, base));
		assert_ptr_equal(bus_find(&bus, base)->dev, &devs[i]);
		assert_ptr_equal(bus_find(&bus, base + (i % 7))->dev, &devs[i]);
		assert_null(bus_find(&bus, base + (i % 7) + 1));
		assert_null(bus_find(&bus, base - 1));
	}
	assert_null(bus_find(&bus, UINT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_sorted),
		cmocka_unit_test(test_register_overlap),
		cmocka_unit_test(test_register_invalid),
		cmocka_unit_test(test_register_full),
		cmocka_unit_test(test_dispatch_relative_offset),
		cmocka_unit_test(test_undeclared_size),
		cmocka_unit_test(test_straddling_end),
		cmocka_unit_test(test_unclaimed),
		cmocka_unit_test(test_missing_handlers),
		cmocka_unit_test(test_binary_search_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
