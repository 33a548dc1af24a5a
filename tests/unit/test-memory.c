// SPDX-License-Identifier: MIT
/*
 * vmm/memory.c: the RAM layout around the 32-bit MMIO hole and the one
 * checked guest-physical translation. Layouts come from
 * guest_mem_layout() and get a plain host buffer, so no KVM is needed.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "layout.h"
#include "memory.h"

static const struct {
	uint64_t size;
	uint32_t nr_regions;
	uint64_t low, high;
} layout_cases[] = {
	{ MiB(16), 1, MiB(16), 0 },
	{ MiB(256), 1, MiB(256), 0 },
	{ GiB(2), 1, GiB(2), 0 },
	{ GiB(3) - KiB(4), 1, GiB(3) - KiB(4), 0 },
	{ GiB(3), 1, GiB(3), 0 },
	{ GiB(3) + KiB(4), 2, GiB(3), KiB(4) },
	{ GiB(4), 2, GiB(3), GiB(1) },
	{ GiB(5), 2, GiB(3), GiB(2) },
	{ GiB(64), 2, GiB(3), GiB(61) },
};

static void test_layout(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(layout_cases); i++) {
		struct guest_mem mem;

		memset(&mem, 0xcc, sizeof(mem));
		assert_int_equal(guest_mem_layout(layout_cases[i].size, &mem), 0);
		if (mem.nr_regions != layout_cases[i].nr_regions)
			print_message("size 0x%llx\n", (unsigned long long)layout_cases[i].size);
		assert_int_equal(mem.size, layout_cases[i].size);
		assert_int_equal(mem.memfd, -1);
		assert_null(mem.host);
		assert_int_equal(mem.nr_regions, layout_cases[i].nr_regions);
		assert_int_equal(mem.regions[0].gpa, 0);
		assert_int_equal(mem.regions[0].size, layout_cases[i].low);
		assert_int_equal(mem.regions[0].memfd_offset, 0);
		assert_int_equal(guest_mem_low_end(&mem), layout_cases[i].low);
		if (layout_cases[i].nr_regions == 2) {
			/* High RAM starts at 4 GiB and continues the memfd after low RAM. */
			assert_int_equal(mem.regions[1].gpa, 0x100000000ull);
			assert_int_equal(mem.regions[1].size, layout_cases[i].high);
			assert_int_equal(mem.regions[1].memfd_offset, GiB(3));
		}
	}
}

static void test_layout_invalid(void **state)
{
	static const uint64_t sizes[] = {
		0, 4096, MiB(15), MiB(16) - KiB(4), MiB(16) + 1, MiB(16) + 2048,
		GiB(64) + KiB(4), GiB(65), UINT64_MAX, GiB(2) + 512,
	};

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem mem, before;

		memset(&mem, 0xcc, sizeof(mem));
		before = mem;
		if (guest_mem_layout(sizes[i], &mem) != -EINVAL)
			print_message("size 0x%llx\n", (unsigned long long)sizes[i]);
		assert_int_equal(guest_mem_layout(sizes[i], &mem), -EINVAL);
		/* Output written only on success. */
		assert_memory_equal(&mem, &before, sizeof(mem));
	}
}

static void test_ptr_bounds_small(void **state)
{
	struct guest_mem mem;
	uint8_t *host;

	assert_int_equal(guest_mem_layout(MiB(16), &mem), 0);
	/* No host mapping yet: nothing translates. */
	assert_null(guest_mem_ptr(&mem, 0, 1));

	host = calloc(1, MiB(16));
	assert_non_null(host);
	mem.host = host;

	assert_ptr_equal(guest_mem_ptr(&mem, 0, 1), host);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x1234, 16), host + 0x1234);
	assert_ptr_equal(guest_mem_ptr(&mem, 0, MiB(16)), host);
	assert_ptr_equal(guest_mem_ptr(&mem, MiB(16) - 1, 1), host + MiB(16) - 1);
	assert_ptr_equal(guest_mem_ptr(&mem, MiB(16) - 16, 16), host + MiB(16) - 16);
	/* len 0 is treated as 1. */
	assert_ptr_equal(guest_mem_ptr(&mem, MiB(16) - 1, 0), host + MiB(16) - 1);
	assert_null(guest_mem_ptr(&mem, MiB(16), 0));

	/* Crossing the end of RAM. */
	assert_null(guest_mem_ptr(&mem, MiB(16) - 1, 2));
	assert_null(guest_mem_ptr(&mem, MiB(16) - 16, 17));
	assert_null(guest_mem_ptr(&mem, 0, MiB(16) + 1));
	assert_null(guest_mem_ptr(&mem, MiB(16), 1));
	assert_null(guest_mem_ptr(&mem, GiB(4), 1));

	/* Overflowing gpa + len. */
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 1));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&mem, 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, MiB(8), UINT64_MAX - MiB(8) + 1));
	assert_null(guest_mem_ptr(&mem, MiB(8), UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, 0, UINT64_MAX));

	free(host);
}

static void test_ptr_bounds_two_regions(void **state)
{
	struct guest_mem mem;
	uint8_t *host;

	assert_int_equal(guest_mem_layout(GiB(5), &mem), 0);
	/* Address space only: the test compares pointers and never touches them. */
	host = mmap(NULL, GiB(5), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (host == MAP_FAILED) {
		skip();
		return;
	}
	mem.host = host;

	assert_ptr_equal(guest_mem_ptr(&mem, 0, 1), host);
	assert_ptr_equal(guest_mem_ptr(&mem, GiB(3) - 1, 1), host + GiB(3) - 1);
	assert_ptr_equal(guest_mem_ptr(&mem, 0, GiB(3)), host);
	/* The hole is not RAM, and nothing spans it. */
	assert_null(guest_mem_ptr(&mem, GiB(3), 1));
	assert_null(guest_mem_ptr(&mem, GiB(3) - 1, 2));
	assert_null(guest_mem_ptr(&mem, LAYOUT_VIRTIO_MMIO, 4));
	assert_null(guest_mem_ptr(&mem, LAYOUT_LAPIC, 4));
	assert_null(guest_mem_ptr(&mem, GiB(4) - 1, 1));
	assert_null(guest_mem_ptr(&mem, GiB(4) - 1, 2));
	assert_null(guest_mem_ptr(&mem, GiB(3) - 1, GiB(1) + 2));
	/* High RAM maps to the memfd right after low RAM. */
	assert_ptr_equal(guest_mem_ptr(&mem, GiB(4), 1), host + GiB(3));
	assert_ptr_equal(guest_mem_ptr(&mem, GiB(4) + 0x1000, 8), host + GiB(3) + 0x1000);
	assert_ptr_equal(guest_mem_ptr(&mem, GiB(4), GiB(2)), host + GiB(3));
	assert_ptr_equal(guest_mem_ptr(&mem, GiB(6) - 1, 1), host + GiB(5) - 1);
	assert_null(guest_mem_ptr(&mem, GiB(6) - 1, 2));
	assert_null(guest_mem_ptr(&mem, GiB(6), 1));
	assert_null(guest_mem_ptr(&mem, GiB(4), GiB(2) + 1));
	assert_null(guest_mem_ptr(&mem, GiB(4), UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX - 1, 4));

	munmap(host, GiB(5));
}

static void test_read_write(void **state)
{
	struct guest_mem mem;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];

	assert_int_equal(guest_mem_layout(MiB(16), &mem), 0);
	mem.host = calloc(1, MiB(16));
	assert_non_null(mem.host);

	assert_int_equal(guest_mem_write(&mem, 0x100000, buf, sizeof(buf)), 0);
	assert_memory_equal(mem.host + 0x100000, buf, sizeof(buf));
	memset(back, 0, sizeof(back));
	assert_int_equal(guest_mem_read(&mem, 0x100000, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(buf));

	/* A range crossing the end of RAM is refused whole, not truncated. */
	assert_int_equal(guest_mem_write(&mem, MiB(16) - 4, buf, sizeof(buf)), -EFAULT);
	assert_memory_equal(mem.host + MiB(16) - 4, "\0\0\0\0", 4);
	assert_int_equal(guest_mem_read(&mem, MiB(16) - 4, back, sizeof(back)), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, UINT64_MAX - 2, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, MiB(16) - 8, buf, sizeof(buf)), 0);
	assert_memory_equal(mem.host + MiB(16) - 8, buf, sizeof(buf));

	free(mem.host);
}

static void test_create_destroy(void **state)
{
	struct guest_mem mem;
	int r;

	guest_mem_destroy(NULL);
	assert_int_equal(guest_mem_create(MiB(15), &mem), -EINVAL);

	r = guest_mem_create(MiB(16), &mem);
	if (r == -ENOSYS || r == -EPERM) {
		skip();
		return;
	}
	assert_int_equal(r, 0);
	assert_true(mem.memfd >= 0);
	assert_int_equal(fcntl(mem.memfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_non_null(mem.host);
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(guest_mem_write(&mem, 0x1000, "fvm", 4), 0);
	assert_string_equal((char *)mem.host + 0x1000, "fvm");
	/* The mapping is the memfd: the bytes are in the file. */
	{
		char back[4] = { 0 };

		assert_int_equal(pread(mem.memfd, back, 4, 0x1000), 4);
		assert_string_equal(back, "fvm");
	}
	guest_mem_destroy(&mem);
	assert_null(mem.host);
	assert_int_equal(mem.memfd, -1);
	/* Destroying twice is harmless. */
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_layout_invalid),
		cmocka_unit_test(test_ptr_bounds_small),
		cmocka_unit_test(test_ptr_bounds_two_regions),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_create_destroy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
