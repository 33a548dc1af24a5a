// SPDX-License-Identifier: MIT
/*
 * vmm/boot-params.c: the e820 map, the zero page, initrd placement, the
 * PVH start info and the command line, in a malloc'ed guest RAM.
 */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot-fixture.h"
#include "boot.h"
#include "layout.h"
#include "memory.h"

/* ---- e820, zero page, initrd, PVH ---- */

static const struct e820_entry e820_64m[] = {
	{ 0, 0x9fc00, E820_TYPE_RAM },
	{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
	{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
	{ 0x100000, MiB(64) - 0x100000, E820_TYPE_RAM },
};

static void assert_e820(const struct e820_entry *got, const struct e820_entry *want, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (got[i].addr != want[i].addr || got[i].size != want[i].size ||
		    got[i].type != want[i].type)
			print_message("e820 entry %u\n", i);
		assert_int_equal(got[i].addr, want[i].addr);
		assert_int_equal(got[i].size, want[i].size);
		assert_int_equal(got[i].type, want[i].type);
	}
}

static void test_e820(void **state)
{
	static const struct {
		uint64_t ram;
		uint32_t nr;
		uint64_t low_ram_end, high_ram_size;
	} cases[] = {
		{ MiB(16), 4, MiB(16), 0 },
		{ MiB(64), 4, MiB(64), 0 },
		{ GiB(2), 4, GiB(2), 0 },
		{ GiB(3), 4, GiB(3), 0 },
		{ GiB(5), 5, GiB(3), GiB(2) },
		{ GiB(64), 5, GiB(3), GiB(61) },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct guest_mem mem;
		struct e820_entry map[E820_MAX], want[5];
		uint32_t nr = 0xdead;

		memcpy(want, e820_64m, sizeof(e820_64m));
		want[3].size = cases[i].low_ram_end - 0x100000;
		want[4] = (struct e820_entry){ GiB(4), cases[i].high_ram_size, E820_TYPE_RAM };

		assert_int_equal(guest_mem_layout(cases[i].ram, &mem), 0);
		assert_int_equal(boot_build_e820(&mem, map, E820_MAX, &nr), 0);
		assert_int_equal(nr, cases[i].nr);
		assert_e820(map, want, nr);

		/* Exactly enough room works; one less does not, and writes nothing. */
		assert_int_equal(boot_build_e820(&mem, map, cases[i].nr, &nr), 0);
		nr = 0xdead;
		memset(map, 0x77, sizeof(map));
		assert_int_equal(boot_build_e820(&mem, map, cases[i].nr - 1, &nr), -ENOSPC);
		assert_int_equal(nr, 0xdead);
		assert_int_equal(map[0].addr, 0x7777777777777777ull);
	}
}

static void load_default_bzimage(const struct guest_mem *mem, struct kernel_image *k)
{
	const char *reason = NULL;
	size_t len;
	uint8_t *img = build_bzimage(&bz_default, &len);

	assert_int_equal(boot_load_kernel(mem, img, len, k, &reason), 0);
	free(img);
}

static void assert_zero_page_e820(const struct boot_params *bp, const struct e820_entry *want,
				  uint32_t n)
{
	assert_int_equal(bp->e820_entries, n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(bp->e820_table[i].addr, want[i].addr);
		assert_int_equal(bp->e820_table[i].size, want[i].size);
		assert_int_equal(bp->e820_table[i].type, want[i].type);
	}
}

static void test_zero_page_bzimage(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	struct boot_params bp;
	const struct boot_info info = {
		.cmdline_addr = LAYOUT_CMDLINE,
		.cmdline_len = 30,
		.initrd_addr = 0x3000000,
		.initrd_size = 0x123456,
		.rsdp_addr = 0xe0000,
	};

	load_default_bzimage(mem, &k);
	assert_int_equal(boot_build_zero_page(mem, &k, &info, &bp), 0);

	/* The kernel's own setup header comes through. */
	assert_int_equal(bp.hdr.setup_sects, 27);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	assert_int_equal(bp.hdr.pref_address, 0x1000000);
	assert_int_equal(bp.hdr.init_size, 0x400000);
	assert_int_equal(bp.hdr.initrd_addr_max, 0x7fffffff);
	/* And what the loader fills in. */
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags & (LOADED_HIGH | CAN_USE_HEAP),
			 LOADED_HIGH | CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, 0x3000000);
	assert_int_equal(bp.hdr.ramdisk_size, 0x123456);
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.ext_ramdisk_size, 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_zero_page_e820(&bp, e820_64m, 4);
	/* Nothing else in the e820 table. */
	assert_int_equal(bp.e820_table[4].size, 0);
}

static void test_zero_page_high_addresses(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	struct boot_params bp;
	const struct boot_info info = {
		.cmdline_addr = 0x200001000ull,
		.initrd_addr = 0x123456000ull,
		.initrd_size = 0x100000001ull,
	};

	load_default_bzimage(mem, &k);
	assert_int_equal(boot_build_zero_page(mem, &k, &info, &bp), 0);
	assert_int_equal(bp.hdr.cmd_line_ptr, 0x1000);
	assert_int_equal(bp.ext_cmd_line_ptr, 2);
	assert_int_equal(bp.hdr.ramdisk_image, 0x23456000);
	assert_int_equal(bp.ext_ramdisk_image, 1);
	assert_int_equal(bp.hdr.ramdisk_size, 1);
	assert_int_equal(bp.ext_ramdisk_size, 1);
	assert_int_equal(bp.acpi_rsdp_addr, 0);
}

static void test_zero_page_elf_and_big_ram(void **state)
{
	struct guest_mem mem;
	struct kernel_image k = { .format = KERNEL_ELF, .has_setup = false };
	struct boot_params bp;
	const struct boot_info info = { .cmdline_addr = LAYOUT_CMDLINE, .rsdp_addr = 0xe0000 };
	struct e820_entry want[5];

	/* No host memory needed to describe 5 GiB. */
	assert_int_equal(guest_mem_layout(GiB(5), &mem), 0);
	assert_int_equal(boot_build_zero_page(&mem, &k, &info, &bp), 0);
	/* A setup header describing a modern loader, since the ELF has none. */
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.kernel_alignment, 0x1000000);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);

	memcpy(want, e820_64m, sizeof(e820_64m));
	want[3].size = GiB(3) - 0x100000;
	want[4] = (struct e820_entry){ GiB(4), GiB(2), E820_TYPE_RAM };
	assert_zero_page_e820(&bp, want, 5);
}

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 13);
}

static void test_initrd_placement(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	const size_t len = 0x100123;
	uint8_t *initrd = malloc(len);
	uint64_t addr = 0;

	assert_non_null(initrd);
	fill_pattern(initrd, len, 1);
	load_default_bzimage(mem, &k);

	assert_int_equal(boot_load_initrd(mem, &k, initrd, len, &addr, &reason), 0);
	/* As high as possible in RAM, page-aligned, above the kernel. */
	assert_int_equal(addr, ALIGN_DOWN(RAM_SIZE - len, 4096));
	assert_int_equal(addr % 4096, 0);
	assert_true(addr + len <= RAM_SIZE);
	assert_true(addr >= k.load_end);
	assert_memory_equal(mem->host + addr, initrd, len);
	free(initrd);
}

static void test_initrd_addr_max(void **state)
{
	static const struct {
		uint64_t initrd_addr_max;
		uint64_t want;
	} cases[] = {
		/* initrd_addr_max is the last byte the initrd may occupy. */
		{ 0x2ffffff, 0x3000000 - 0x3000 },
		{ 0x2fff7ff, 0x2ffd000 },
		{ 0x2fff000, 0x2ffc000 },
		{ 0x3ffffff, RAM_SIZE - 0x3000 },
		{ 0xffffffff, RAM_SIZE - 0x3000 },
	};
	struct guest_mem *mem = *state;
	uint8_t initrd[0x2800];

	fill_pattern(initrd, sizeof(initrd), 7);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image k;
		const char *reason = NULL;
		uint64_t addr = 0;

		load_default_bzimage(mem, &k);
		k.initrd_addr_max = cases[i].initrd_addr_max;
		assert_int_equal(boot_load_initrd(mem, &k, initrd, sizeof(initrd), &addr, &reason),
				 0);
		if (addr != cases[i].want)
			print_message("initrd_addr_max 0x%llx\n",
				      (unsigned long long)cases[i].initrd_addr_max);
		assert_int_equal(addr, cases[i].want);
		assert_true(addr + sizeof(initrd) - 1 <= cases[i].initrd_addr_max);
		assert_memory_equal(mem->host + addr, initrd, sizeof(initrd));
	}
}

static void test_initrd_does_not_fit(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason;
	uint64_t addr;
	uint64_t room;
	uint8_t *initrd;

	load_default_bzimage(mem, &k);
	room = RAM_SIZE - k.load_end;
	initrd = calloc(1, room + 1);
	assert_non_null(initrd);

	/* Exactly the room between the kernel and the end of RAM. */
	reason = NULL;
	assert_int_equal(boot_load_initrd(mem, &k, initrd, room, &addr, &reason), 0);
	assert_int_equal(addr, k.load_end);

	/* One byte more would overlap the kernel. */
	reason = NULL;
	addr = 0xdead;
	assert_int_equal(boot_load_initrd(mem, &k, initrd, room + 1, &addr, &reason), -ENOMEM);
	assert_non_null(reason);
	assert_int_equal(addr, 0xdead);

	/* Bigger than everything below the limit. */
	reason = NULL;
	k.initrd_addr_max = 0xfff;
	assert_int_equal(boot_load_initrd(mem, &k, initrd, 0x2000, &addr, &reason), -ENOMEM);
	assert_non_null(reason);
	assert_int_equal(addr, 0xdead);

	/* An empty initrd is a caller bug, not something to place. */
	reason = NULL;
	load_default_bzimage(mem, &k);
	assert_int_equal(boot_load_initrd(mem, &k, initrd, 0, &addr, &reason), -ENOMEM);
	assert_non_null(reason);
	free(initrd);
}

/* Above 3 GiB of RAM the limit, not the hole, decides; below it, low RAM's end does. */
static void test_initrd_big_ram(void **state)
{
	struct guest_mem mem;
	struct kernel_image k = { .load_end = 0x2000000, .initrd_addr_max = 0x7fffffff };
	uint8_t initrd[4096];
	const char *reason = NULL;
	uint64_t addr = 0;

	assert_int_equal(guest_mem_layout(GiB(5), &mem), 0);
	mem.host = mmap(NULL, GiB(5), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem.host == MAP_FAILED) {
		skip();
		return;
	}
	fill_pattern(initrd, sizeof(initrd), 3);

	assert_int_equal(boot_load_initrd(&mem, &k, initrd, sizeof(initrd), &addr, &reason), 0);
	assert_int_equal(addr, 0x7ffff000);
	assert_memory_equal(mem.host + addr, initrd, sizeof(initrd));

	k.initrd_addr_max = 0xffffffffffffull;
	assert_int_equal(boot_load_initrd(&mem, &k, initrd, sizeof(initrd), &addr, &reason), 0);
	assert_int_equal(addr, GiB(3) - 4096);
	assert_memory_equal(mem.host + addr, initrd, sizeof(initrd));

	munmap(mem.host, GiB(5));
}

/*
 * hvm_start_info and friends, read back by offset
 * (xen/include/public/arch-x86/hvm/start_info.h).
 */
static void test_pvh_start_info(void **state)
{
	struct guest_mem *mem = *state;
	const struct boot_info info = {
		.cmdline_addr = LAYOUT_CMDLINE,
		.cmdline_len = 10,
		.initrd_addr = 0x3000000,
		.initrd_size = 0x5000,
		.rsdp_addr = 0xe0000,
	};
	const uint8_t *si = mem->host + LAYOUT_PVH_START_INFO;
	const uint8_t *mod, *mm;
	uint64_t modlist, memmap;

	assert_int_equal(LAYOUT_PVH_START_INFO, 0x6000);
	assert_int_equal(boot_write_pvh_info(mem, &info), 0);

	assert_int_equal(get32(si + 0), 0x336ec578);
	assert_int_equal(get32(si + 4), 1);
	assert_int_equal(get32(si + 8), 0);
	assert_int_equal(get32(si + 12), 1);
	modlist = get64(si + 16);
	assert_int_equal(get64(si + 24), LAYOUT_CMDLINE);
	assert_int_equal(get64(si + 32), 0xe0000);
	memmap = get64(si + 40);
	assert_int_equal(memmap, LAYOUT_PVH_MEMMAP);
	assert_int_equal(get32(si + 48), 4);
	assert_int_equal(get32(si + 52), 0);

	/* The module list: one initrd, no command line. */
	assert_true(modlist >= LAYOUT_PVH_START_INFO + 56);
	mod = mem->host + modlist;
	assert_int_equal(get64(mod + 0), 0x3000000);
	assert_int_equal(get64(mod + 8), 0x5000);
	assert_int_equal(get64(mod + 16), 0);
	assert_int_equal(get64(mod + 24), 0);
	/* Module list and memory map do not overlap. */
	assert_true(modlist + 32 <= memmap || memmap + 4 * 24 <= modlist);

	mm = mem->host + memmap;
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(get64(mm + 24 * i + 0), e820_64m[i].addr);
		assert_int_equal(get64(mm + 24 * i + 8), e820_64m[i].size);
		assert_int_equal(get32(mm + 24 * i + 16), e820_64m[i].type);
		assert_int_equal(get32(mm + 24 * i + 20), 0);
	}
	/* Nothing written past the map. */
	assert_int_equal(get64(mm + 24 * 4), 0);
}

static void test_pvh_no_initrd(void **state)
{
	struct guest_mem *mem = *state;
	const struct boot_info info = { .cmdline_addr = LAYOUT_CMDLINE };
	const uint8_t *si = mem->host + LAYOUT_PVH_START_INFO;

	assert_int_equal(boot_write_pvh_info(mem, &info), 0);
	assert_int_equal(get32(si + 0), 0x336ec578);
	assert_int_equal(get32(si + 12), 0);
	assert_int_equal(get64(si + 16), 0);
	assert_int_equal(get64(si + 32), 0);
	assert_int_equal(get32(si + 48), 4);
}

static void test_boot_data_linux64(void **state)
{
	struct guest_mem *mem = *state;
	static const char cmdline[] = "console=ttyS0 reboot=k panic=1";
	struct kernel_image k;
	struct boot_info info = { .initrd_addr = 0x3000000, .initrd_size = 0x1000,
				  .rsdp_addr = 0xe0000 };
	struct boot_params bp;
	const char *reason = NULL;

	load_default_bzimage(mem, &k);
	memset(mem->host + LAYOUT_CMDLINE, 0xcc, 64);
	assert_int_equal(boot_write_boot_data(mem, &k, &info, cmdline, &reason), 0);
	assert_int_equal(info.cmdline_addr, LAYOUT_CMDLINE);
	assert_int_equal(info.cmdline_len, strlen(cmdline));
	/* The command line with its NUL. */
	assert_memory_equal(mem->host + LAYOUT_CMDLINE, cmdline, sizeof(cmdline));

	memcpy(&bp, mem->host + LAYOUT_ZERO_PAGE, sizeof(bp));
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.hdr.ramdisk_image, 0x3000000);
	assert_int_equal(bp.hdr.ramdisk_size, 0x1000);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_zero_page_e820(&bp, e820_64m, 4);
	/* No PVH start info for a 64-bit entry. */
	assert_int_equal(get32(mem->host + LAYOUT_PVH_START_INFO), 0);
}

static void test_boot_data_pvh(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	struct boot_info info = { .rsdp_addr = 0xe0000 };
	const char *reason = NULL;
	uint8_t *img = build_elf();
	static const uint8_t zero_page[sizeof(struct boot_params)];

	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_PVH);
	assert_int_equal(boot_write_boot_data(mem, &k, &info, "quiet", &reason), 0);
	assert_string_equal((char *)mem->host + LAYOUT_CMDLINE, "quiet");
	assert_int_equal(get32(mem->host + LAYOUT_PVH_START_INFO), 0x336ec578);
	assert_int_equal(get64(mem->host + LAYOUT_PVH_START_INFO + 24), LAYOUT_CMDLINE);
	assert_int_equal(get64(mem->host + LAYOUT_PVH_START_INFO + 32), 0xe0000);
	/* The zero page stays empty. */
	assert_memory_equal(mem->host + LAYOUT_ZERO_PAGE, zero_page, sizeof(zero_page));
	free(img);
}

static void test_cmdline_limits(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_opts o = bz_default;
	struct kernel_image k;
	struct boot_info info = { 0 };
	const char *reason = NULL;
	char *line = malloc(LAYOUT_CMDLINE_MAX + 1);
	size_t len;
	uint8_t *img;

	assert_non_null(line);
	o.cmdline_size = 16;
	img = build_bzimage(&o, &len);
	assert_int_equal(boot_load_kernel(mem, img, len, &k, &reason), 0);
	free(img);

	/* cmdline_size is the longest line without its NUL. */
	memset(line, 'a', 16);
	line[16] = '\0';
	assert_int_equal(boot_write_boot_data(mem, &k, &info, line, &reason), 0);
	assert_string_equal((char *)mem->host + LAYOUT_CMDLINE, line);
	line[16] = 'b';
	line[17] = '\0';
	reason = NULL;
	assert_int_equal(boot_write_boot_data(mem, &k, &info, line, &reason), -E2BIG);
	assert_non_null(reason);

	/* An ELF kernel is bounded by the command-line area. */
	img = build_elf();
	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	free(img);
	memset(line, 'c', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(boot_write_boot_data(mem, &k, &info, line, &reason), 0);
	assert_int_equal(mem->host[LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - 1], 0);
	line[LAYOUT_CMDLINE_MAX - 1] = 'c';
	line[LAYOUT_CMDLINE_MAX] = '\0';
	reason = NULL;
	assert_int_equal(boot_write_boot_data(mem, &k, &info, line, &reason), -E2BIG);
	assert_non_null(reason);
	free(line);
}

/* A layout with no host memory behind it: every write fails, cleanly. */
static void test_writes_without_ram(void **state)
{
	struct guest_mem mem;
	struct kernel_image k = { .format = KERNEL_BZIMAGE, .entry_mode = BOOT_ENTRY_LINUX64,
				  .has_setup = true, .load_end = 0x2000000,
				  .initrd_addr_max = 0x7fffffff, .cmdline_max = 255 };
	struct boot_info info = { 0 };
	const char *reason = NULL;
	uint64_t addr = 0xdead;

	assert_int_equal(guest_mem_layout(MiB(64), &mem), 0);
	assert_int_equal(boot_write_boot_data(&mem, &k, &info, "quiet", &reason), -EFAULT);
	assert_non_null(reason);
	assert_int_equal(boot_write_pvh_info(&mem, &info), -EFAULT);
	info.initrd_size = 0x1000;
	assert_int_equal(boot_write_pvh_info(&mem, &info), -EFAULT);
	reason = NULL;
	assert_int_equal(boot_load_initrd(&mem, &k, (const uint8_t *)"x", 1, &addr, &reason),
			 -ENOMEM);
	assert_non_null(reason);
	assert_int_equal(addr, 0xdead);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, boot_setup, boot_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820),
		T(test_zero_page_bzimage),
		T(test_zero_page_high_addresses),
		cmocka_unit_test(test_zero_page_elf_and_big_ram),
		T(test_initrd_placement),
		T(test_initrd_addr_max),
		T(test_initrd_does_not_fit),
		cmocka_unit_test(test_initrd_big_ram),
		T(test_pvh_start_info),
		T(test_pvh_no_initrd),
		T(test_boot_data_linux64),
		T(test_boot_data_pvh),
		T(test_cmdline_limits),
		cmocka_unit_test(test_writes_without_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
