/* SPDX-License-Identifier: MIT */
/*
 * Loading an x86-64 Linux kernel into guest memory and describing the
 * machine to it: bzImage (64-bit boot protocol) and ELF vmlinux (PVH
 * entry when the image carries the note, else the 64-bit entry point),
 * the zero page, the e820 map and the PVH start info.
 * The loaders work on an in-memory copy of the file, so they are unit
 * tested and fuzzed without a VM.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "memory.h"

enum kernel_format {
	KERNEL_BZIMAGE,
	KERNEL_ELF,
	KERNEL_FORMAT_MAX,
};

enum boot_entry {
	/* Long mode, paging on, RSI = zero page: set up by fvm. */
	BOOT_ENTRY_LINUX64,
	/* 32-bit protected mode, paging off, EBX = hvm_start_info. */
	BOOT_ENTRY_PVH,
	BOOT_ENTRY_MAX,
};

struct kernel_image {
	enum kernel_format format;
	enum boot_entry entry_mode;
	uint64_t entry;
	uint64_t load_addr;
	uint64_t load_end;
	/* The bzImage's setup header, to be copied into the zero page. */
	struct setup_header setup;
	bool has_setup;
	uint64_t initrd_addr_max;
	uint32_t cmdline_max;
};

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

#define E820_TYPE_RAM	   1
#define E820_TYPE_RESERVED 2
#define E820_MAX	   8

enum { BOOT_KERNEL_FILE_MAX = 512u << 20 };

/* Parse and copy a kernel image into memory; ret_reason says why it failed. */
int boot_load_kernel(const struct guest_mem *mem, const uint8_t *file, size_t len,
		     struct kernel_image *ret_kernel, const char **ret_reason) __must_check;

/*
 * Copy an initrd as high as allowed below min(initrd_addr_max, low RAM)
 * while staying above the kernel. Returns its guest address.
 */
int boot_load_initrd(const struct guest_mem *mem, const struct kernel_image *kernel,
		     const uint8_t *data, size_t len, uint64_t *ret_addr,
		     const char **ret_reason) __must_check;

int boot_build_e820(const struct guest_mem *mem, struct e820_entry *entries, uint32_t max,
		    uint32_t *ret_nr) __must_check;

struct boot_info {
	uint64_t cmdline_addr;
	uint32_t cmdline_len; /* without the NUL */
	uint64_t initrd_addr;
	uint64_t initrd_size;
	uint64_t rsdp_addr;
};

/* Fill a zero page for the 64-bit boot protocol. */
int boot_build_zero_page(const struct guest_mem *mem, const struct kernel_image *kernel,
			 const struct boot_info *info, struct boot_params *ret_params) __must_check;

/* Write the PVH start info and memory map at their fixed addresses. */
int boot_write_pvh_info(const struct guest_mem *mem, const struct boot_info *info) __must_check;

/* Write the zero page (64-bit entry) or the start info (PVH), and the cmdline. */
int boot_write_boot_data(const struct guest_mem *mem, const struct kernel_image *kernel,
			 struct boot_info *info, const char *cmdline,
			 const char **ret_reason) __must_check;
