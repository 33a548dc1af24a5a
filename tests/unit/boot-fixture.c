// SPDX-License-Identifier: MIT
/* The boot tests' shared fixture: guest RAM without KVM, and a bzImage builder. */
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


/* Every test gets 64 MiB of zeroed guest RAM. */
int boot_setup(void **state)
{
	struct guest_mem *mem = calloc(1, sizeof(*mem));

	if (!mem || guest_mem_layout(RAM_SIZE, mem) < 0)
		return -1;
	mem->host = calloc(1, RAM_SIZE);
	if (!mem->host)
		return -1;
	*state = mem;
	return 0;
}

int boot_teardown(void **state)
{
	struct guest_mem *mem = *state;

	free(mem->host);
	free(mem);
	return 0;
}

uint32_t get32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- synthetic bzImage ---- */


const struct bz_opts bz_default = {
	.setup_sects = 27,
	.version = 0x020f,
	.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
	.pref_address = 0x1000000,
	.init_size = 0x400000,
	.relocatable = 1,
	.kernel_alignment = 0x200000,
	.cmdline_size = 2047,
	.initrd_addr_max = 0x7fffffff,
	.payload_len = 0x10000,
};

size_t bz_setup_bytes(const struct bz_opts *o)
{
	return ((size_t)(o->setup_sects ? o->setup_sects : 4) + 1) * 512;
}

uint8_t bz_payload_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

uint8_t *build_bzimage(const struct bz_opts *o, size_t *ret_len)
{
	size_t setup = bz_setup_bytes(o), len = setup + o->payload_len;
	uint8_t *buf = calloc(1, MAX(len, (size_t)0x1000));
	struct setup_header h = { 0 };

	assert_non_null(buf);
	/* Setup code bytes that must not end up in guest memory. */
	memset(buf, 0xee, setup);
	h.setup_sects = o->setup_sects;
	h.version = o->version;
	h.xloadflags = o->xloadflags;
	h.pref_address = o->pref_address;
	h.init_size = o->init_size;
	h.relocatable_kernel = o->relocatable;
	h.kernel_alignment = o->kernel_alignment;
	h.cmdline_size = o->cmdline_size;
	h.initrd_addr_max = o->initrd_addr_max;
	memcpy(buf + 0x1f1, &h, sizeof(h));
	/* The magics at the offsets the boot protocol fixes. */
	memcpy(buf + 0x1fe, "\x55\xaa", 2);
	memcpy(buf + 0x202, "HdrS", 4);
	assert_int_equal(get32(buf + 0x202), 0x53726448);
	assert_int_equal(buf[0x206] | buf[0x207] << 8, o->version);
	for (size_t i = 0; i < o->payload_len; i++)
		buf[setup + i] = bz_payload_byte(i);
	*ret_len = len;
	return buf;
}


/* ---- synthetic ELF vmlinux ---- */


size_t put_note(uint8_t *buf, size_t off, uint32_t namesz, const char *name, uint32_t type,
		       const void *desc, uint32_t descsz)
{
	Elf64_Nhdr nh = { .n_namesz = namesz, .n_descsz = descsz, .n_type = type };

	memcpy(buf + off, &nh, sizeof(nh));
	off += sizeof(nh);
	memcpy(buf + off, name, namesz);
	off += ALIGN_UP((size_t)namesz, 4);
	memcpy(buf + off, desc, descsz);
	return off + ALIGN_UP((size_t)descsz, 4);
}

Elf64_Ehdr *ehdr(uint8_t *buf)
{
	return (Elf64_Ehdr *)buf;
}

Elf64_Phdr *phdr(uint8_t *buf, unsigned int i)
{
	return (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/*
 * Two PT_LOAD segments (the first with bss) and a PT_NOTE holding a GNU
 * build-id note followed by Xen's PHYS32_ENTRY note (type 18).
 */
uint8_t *build_elf(void)
{
	uint8_t *buf = calloc(1, ELF_LEN);
	Elf64_Ehdr *eh = ehdr(buf);
	uint64_t pvh = PVH_ENTRY;
	uint8_t build_id[20];
	size_t end;

	assert_non_null(buf);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = ELF_ENTRY;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;

	*phdr(buf, 0) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
				      .p_offset = SEG0_OFF, .p_vaddr = 0xffffffff81000000ull,
				      .p_paddr = SEG0_PADDR, .p_filesz = SEG0_FILESZ,
				      .p_memsz = SEG0_MEMSZ, .p_align = 0x1000 };
	*phdr(buf, 1) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W,
				      .p_offset = SEG1_OFF, .p_vaddr = 0xffffffff81400000ull,
				      .p_paddr = SEG1_PADDR, .p_filesz = SEG1_FILESZ,
				      .p_memsz = SEG1_FILESZ, .p_align = 0x1000 };

	memset(build_id, 0xb1, sizeof(build_id));
	end = put_note(buf, NOTE_OFF, 4, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	end = put_note(buf, end, 4, "Xen", 18, &pvh, 8);
	*phdr(buf, 2) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = NOTE_OFF,
				      .p_filesz = end - NOTE_OFF, .p_align = 4 };

	for (size_t i = 0; i < SEG0_FILESZ; i++)
		buf[SEG0_OFF + i] = (uint8_t)(0x10 + i);
	/* Bytes between filesz and the next page must not be loaded. */
	memset(buf + SEG0_OFF + SEG0_FILESZ, 0xdd, 0x1000 - SEG0_FILESZ);
	for (size_t i = 0; i < SEG1_FILESZ; i++)
		buf[SEG1_OFF + i] = (uint8_t)(0x80 ^ i);
	return buf;
}

