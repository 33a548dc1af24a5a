/* SPDX-License-Identifier: MIT */
/*
 * Shared by the boot unit tests (test-boot-loader.c, test-boot-params.c):
 * a 64 MiB guest RAM fixture without KVM, little-endian field readers and
 * a synthetic bzImage builder.
 */
#pragma once

#include <stddef.h>
#include <elf.h>
#include <stdint.h>

#include "boot.h"

#define RAM_SIZE MiB(64)

int boot_setup(void **state);
int boot_teardown(void **state);
uint32_t get32(const void *p);
uint64_t get64(const void *p);

struct bz_opts {
	uint8_t setup_sects;
	uint16_t version;
	uint16_t xloadflags;
	uint64_t pref_address;
	uint32_t init_size;
	uint8_t relocatable;
	uint32_t kernel_alignment;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	size_t payload_len;
};

extern const struct bz_opts bz_default;
size_t bz_setup_bytes(const struct bz_opts *o);
uint8_t bz_payload_byte(size_t i);
uint8_t *build_bzimage(const struct bz_opts *o, size_t *ret_len);

/* A synthetic ELF vmlinux: program headers, a PT_LOAD, notes. */
enum {
	ELF_LEN = 0x4000,
	NOTE_OFF = 0x1000,
	SEG0_OFF = 0x2000,
	SEG1_OFF = 0x3000,
	SEG0_PADDR = 0x1000000,
	SEG0_FILESZ = 0x100,
	SEG0_MEMSZ = 0x3000,
	SEG1_PADDR = 0x1400000,
	SEG1_FILESZ = 0x800,
	ELF_ENTRY = SEG0_PADDR + 0x10,
	PVH_ENTRY = SEG0_PADDR + 0x40,
};
size_t put_note(uint8_t *buf, size_t off, uint32_t namesz, const char *name, uint32_t type,
		       const void *desc, uint32_t descsz);
Elf64_Ehdr *ehdr(uint8_t *buf);
Elf64_Phdr *phdr(uint8_t *buf, unsigned int i);
uint8_t *build_elf(void);
