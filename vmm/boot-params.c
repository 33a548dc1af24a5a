// SPDX-License-Identifier: MIT
/*
 * What the kernel learns about the machine at entry: the e820 map, the
 * zero page (64-bit boot protocol) or the PVH start info, and the
 * command line.
 */
#include <string.h>

#include "boot.h"
#include "layout.h"

int boot_build_e820(const struct guest_mem *mem, struct e820_entry *entries, uint32_t max,
		    uint32_t *ret_nr)
{
	struct e820_entry map[E820_MAX];
	uint32_t n = 0;

	map[n++] = (struct e820_entry){ 0, LAYOUT_EBDA, E820_TYPE_RAM };
	map[n++] = (struct e820_entry){ LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA, E820_TYPE_RESERVED };
	/* The ACPI tables live here; reserved so the guest never reuses them. */
	map[n++] = (struct e820_entry){ LAYOUT_ACPI, LAYOUT_ACPI_SIZE, E820_TYPE_RESERVED };
	map[n++] = (struct e820_entry){ LAYOUT_HIGH_MEMORY,
					guest_mem_low_end(mem) - LAYOUT_HIGH_MEMORY, E820_TYPE_RAM };
	if (mem->nr_regions > 1)
		map[n++] = (struct e820_entry){ mem->regions[1].gpa, mem->regions[1].size,
						E820_TYPE_RAM };
	if (n > max)
		return -ENOSPC;
	memcpy(entries, map, n * sizeof(map[0]));
	*ret_nr = n;
	return 0;
}

int boot_build_zero_page(const struct guest_mem *mem, const struct kernel_image *kernel,
			 const struct boot_info *info, struct boot_params *ret_params)
{
	struct boot_params bp;
	struct e820_entry map[E820_MAX];
	uint32_t nr;
	int r;

	r = boot_build_e820(mem, map, E820_MAX, &nr);
	if (r < 0)
		return r;

	memset(&bp, 0, sizeof(bp));
	if (kernel->has_setup) {
		bp.hdr = kernel->setup;
	} else {
		/* An ELF vmlinux carries no setup header: describe a modern loader. */
		bp.hdr.boot_flag = 0xaa55;
		bp.hdr.header = 0x53726448;
		bp.hdr.version = 0x020f;
		bp.hdr.kernel_alignment = 0x1000000;
	}
	/* 0xff: a boot loader without an assigned ID (boot protocol). */
	bp.hdr.type_of_loader = 0xff;
	bp.hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
	bp.hdr.heap_end_ptr = 0xfe00;
	bp.hdr.cmd_line_ptr = (uint32_t)info->cmdline_addr;
	bp.ext_cmd_line_ptr = (uint32_t)(info->cmdline_addr >> 32);
	bp.hdr.cmdline_size = info->cmdline_len + 1;
	bp.hdr.ramdisk_image = (uint32_t)info->initrd_addr;
	bp.hdr.ramdisk_size = (uint32_t)info->initrd_size;
	bp.ext_ramdisk_image = (uint32_t)(info->initrd_addr >> 32);
	bp.ext_ramdisk_size = (uint32_t)(info->initrd_size >> 32);
	bp.acpi_rsdp_addr = info->rsdp_addr;

	for (uint32_t i = 0; i < nr; i++) {
		bp.e820_table[i].addr = map[i].addr;
		bp.e820_table[i].size = map[i].size;
		bp.e820_table[i].type = map[i].type;
	}
	bp.e820_entries = (uint8_t)nr;
	*ret_params = bp;
	return 0;
}

/* PVH boot ABI (Xen's arch-x86/hvm/start_info.h), version 1. */
#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define PVH_MODLIST (LAYOUT_PVH_START_INFO + 0x40)

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(LAYOUT_PVH_START_INFO + sizeof(struct hvm_start_info) <= PVH_MODLIST,
	       "modlist overlaps start info");
_Static_assert(PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_PVH_MEMMAP,
	       "memmap overlaps modlist");

int boot_write_pvh_info(const struct guest_mem *mem, const struct boot_info *info)
{
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = info->cmdline_addr,
		.rsdp_paddr = info->rsdp_addr,
		.memmap_paddr = LAYOUT_PVH_MEMMAP,
	};
	struct hvm_memmap_entry mm[E820_MAX];
	struct e820_entry map[E820_MAX];
	uint32_t nr;
	int r;

	r = boot_build_e820(mem, map, E820_MAX, &nr);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < nr; i++)
		mm[i] = (struct hvm_memmap_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	si.memmap_entries = nr;

	if (info->initrd_size) {
		struct hvm_modlist_entry mod = { .paddr = info->initrd_addr,
						 .size = info->initrd_size };

		r = guest_mem_write(mem, PVH_MODLIST, &mod, sizeof(mod));
		if (r < 0)
			return r;
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST;
	}
	r = guest_mem_write(mem, LAYOUT_PVH_MEMMAP, mm, nr * sizeof(mm[0]));
	if (r < 0)
		return r;
	return guest_mem_write(mem, LAYOUT_PVH_START_INFO, &si, sizeof(si));
}

int boot_write_boot_data(const struct guest_mem *mem, const struct kernel_image *kernel,
			 struct boot_info *info, const char *cmdline, const char **ret_reason)
{
	size_t len = strlen(cmdline);
	struct boot_params bp;
	int r;

	if (len > kernel->cmdline_max || len >= LAYOUT_CMDLINE_MAX) {
		*ret_reason = "kernel command line is longer than this kernel accepts";
		return -E2BIG;
	}
	r = guest_mem_write(mem, LAYOUT_CMDLINE, cmdline, len + 1);
	if (r < 0) {
		*ret_reason = "cannot write the kernel command line";
		return r;
	}
	info->cmdline_addr = LAYOUT_CMDLINE;
	info->cmdline_len = (uint32_t)len;

	if (kernel->entry_mode == BOOT_ENTRY_PVH) {
		r = boot_write_pvh_info(mem, info);
	} else {
		r = boot_build_zero_page(mem, kernel, info, &bp);
		if (r >= 0)
			r = guest_mem_write(mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp));
	}
	if (r < 0)
		*ret_reason = "cannot write the boot parameters";
	return r;
}
