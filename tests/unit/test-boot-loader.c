// SPDX-License-Identifier: MIT
/*
 * vmm/boot-loader.c: synthetic bzImages and ELF vmlinux files built byte
 * by byte and loaded into a malloc'ed guest RAM, and every malformed
 * image refused.
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

static void test_bzimage_load(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	size_t len;
	uint8_t *img = build_bzimage(&bz_default, &len);

	assert_int_equal(boot_load_kernel(mem, img, len, &k, &reason), 0);
	assert_null(reason);
	assert_int_equal(k.format, KERNEL_BZIMAGE);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_LINUX64);
	assert_int_equal(k.load_addr, 0x1000000);
	assert_int_equal(k.entry, 0x1000200);
	assert_int_equal(k.load_end, 0x1000000 + 0x400000);
	assert_true(k.has_setup);
	assert_int_equal(k.setup.version, 0x020f);
	assert_int_equal(k.setup.setup_sects, 27);
	assert_int_equal(k.setup.boot_flag, 0xaa55);
	assert_int_equal(k.setup.header, 0x53726448);
	assert_int_equal(k.initrd_addr_max, 0x7fffffff);
	assert_int_equal(k.cmdline_max, 2047);

	/* The protected-mode kernel, byte for byte, and nothing around it. */
	assert_memory_equal(mem->host + 0x1000000, img + 28 * 512, bz_default.payload_len);
	assert_int_equal(mem->host[0x1000000 - 1], 0);
	assert_int_equal(mem->host[0x1000000 + bz_default.payload_len], 0);
	free(img);
}

static void test_bzimage_setup_sects_zero(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_opts o = bz_default;
	struct kernel_image k;
	const char *reason = NULL;
	size_t len;
	uint8_t *img;

	/* setup_sects 0 means 4. */
	o.setup_sects = 0;
	img = build_bzimage(&o, &len);
	assert_int_equal(len, 5 * 512 + o.payload_len);
	assert_int_equal(boot_load_kernel(mem, img, len, &k, &reason), 0);
	assert_int_equal(mem->host[0x1000000], bz_payload_byte(0));
	assert_memory_equal(mem->host + 0x1000000, img + 5 * 512, o.payload_len);
	free(img);
}

static void test_bzimage_defaults(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_opts o = bz_default;
	struct kernel_image k;
	const char *reason = NULL;
	size_t len;
	uint8_t *img;

	o.pref_address = 0;
	o.initrd_addr_max = 0;
	o.cmdline_size = 0;
	/* init_size smaller than the payload: the payload is what is needed. */
	o.init_size = 0x100;
	img = build_bzimage(&o, &len);
	assert_int_equal(boot_load_kernel(mem, img, len, &k, &reason), 0);
	assert_int_equal(k.load_addr, LAYOUT_KERNEL_DEFAULT);
	assert_int_equal(k.entry, LAYOUT_KERNEL_DEFAULT + 0x200);
	assert_int_equal(k.load_end, LAYOUT_KERNEL_DEFAULT + o.payload_len);
	assert_int_equal(k.initrd_addr_max, 0x37ffffff);
	assert_int_equal(k.cmdline_max, 255);
	free(img);
}

static void test_bzimage_relocated(void **state)
{
	static const struct {
		uint32_t alignment;
		int ret;
		uint64_t load;
	} cases[] = {
		{ 0x200000, 0, 0x200000 },
		{ 0x400000, 0, 0x400000 },
		{ 0x1000, 0, 0x100000 },
		{ 0, 0, 0x200000 },
		{ 0x300000, -ENOEXEC, 0 },
	};
	struct guest_mem *mem = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bz_opts o = bz_default;
		struct kernel_image k;
		const char *reason = NULL;
		size_t len;
		uint8_t *img;
		int r;

		/* Preferred address beyond the end of RAM: a relocatable kernel goes low. */
		o.pref_address = 0x8000000;
		o.kernel_alignment = cases[i].alignment;
		img = build_bzimage(&o, &len);
		r = boot_load_kernel(mem, img, len, &k, &reason);
		if (r != cases[i].ret)
			print_message("alignment 0x%x: %s\n", cases[i].alignment, reason);
		assert_int_equal(r, cases[i].ret);
		if (r == 0) {
			assert_int_equal(k.load_addr, cases[i].load);
			assert_int_equal(k.entry, cases[i].load + 0x200);
			assert_int_equal(k.load_end, cases[i].load + o.init_size);
			assert_memory_equal(mem->host + cases[i].load, img + 28 * 512,
					    o.payload_len);
		} else {
			assert_non_null(reason);
		}
		free(img);
	}
}

enum bz_mutation {
	BZ_PROTOCOL_2_11,
	BZ_PROTOCOL_2_06,
	BZ_NO_KERNEL_64,
	BZ_NO_XLOADFLAGS,
	BZ_NO_PAYLOAD,
	BZ_TRUNCATED_IN_SETUP,
	BZ_TRUNCATED_IN_HEADER,
	BZ_TRUNCATED_BEFORE_MAGIC,
	BZ_INIT_SIZE_BEYOND_RAM,
	BZ_INIT_SIZE_BEYOND_RAM_FIXED,
	BZ_PREF_BEYOND_RAM_FIXED,
	BZ_STRADDLES_RAM_END_FIXED,
	BZ_BELOW_1M_FIXED,
	BZ_ADDRESS_WRAPS_FIXED,
};

/* Returns the length to hand to the loader. */
static size_t bz_mutate(struct bz_opts *o, enum bz_mutation m, size_t len)
{
	switch (m) {
	case BZ_PROTOCOL_2_11:
		o->version = 0x020b;
		break;
	case BZ_PROTOCOL_2_06:
		o->version = 0x0206;
		break;
	case BZ_NO_KERNEL_64:
		o->xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
		break;
	case BZ_NO_XLOADFLAGS:
		o->xloadflags = 0;
		break;
	case BZ_NO_PAYLOAD:
		o->payload_len = 0;
		break;
	case BZ_TRUNCATED_IN_SETUP:
		return 0x1000;
	case BZ_TRUNCATED_IN_HEADER:
		return 0x240;
	case BZ_TRUNCATED_BEFORE_MAGIC:
		return 0x1f0;
	case BZ_INIT_SIZE_BEYOND_RAM:
		o->init_size = 0x8000000;
		break;
	case BZ_INIT_SIZE_BEYOND_RAM_FIXED:
		o->init_size = 0x8000000;
		o->relocatable = 0;
		break;
	case BZ_PREF_BEYOND_RAM_FIXED:
		o->pref_address = 0x8000000;
		o->relocatable = 0;
		break;
	case BZ_STRADDLES_RAM_END_FIXED:
		o->pref_address = RAM_SIZE - 0x200000;
		o->relocatable = 0;
		break;
	case BZ_BELOW_1M_FIXED:
		o->pref_address = 0x10000;
		o->relocatable = 0;
		break;
	case BZ_ADDRESS_WRAPS_FIXED:
		o->pref_address = UINT64_MAX - 0xfff;
		o->relocatable = 0;
		break;
	}
	return len;
}

static void test_bzimage_rejects(void **state)
{
	static const struct {
		const char *what;
		enum bz_mutation m;
		int ret;
	} cases[] = {
		{ "protocol 2.11", BZ_PROTOCOL_2_11, -ENOEXEC },
		{ "protocol 2.06", BZ_PROTOCOL_2_06, -ENOEXEC },
		{ "no XLF_KERNEL_64", BZ_NO_KERNEL_64, -ENOEXEC },
		{ "no xloadflags", BZ_NO_XLOADFLAGS, -ENOEXEC },
		{ "no payload after setup", BZ_NO_PAYLOAD, -ENOEXEC },
		{ "truncated inside setup", BZ_TRUNCATED_IN_SETUP, -ENOEXEC },
		{ "truncated inside header", BZ_TRUNCATED_IN_HEADER, -ENOEXEC },
		{ "truncated before magic", BZ_TRUNCATED_BEFORE_MAGIC, -ENOEXEC },
		{ "init_size beyond RAM", BZ_INIT_SIZE_BEYOND_RAM, -ENOMEM },
		{ "init_size beyond RAM, fixed", BZ_INIT_SIZE_BEYOND_RAM_FIXED, -ENOMEM },
		{ "pref_address beyond RAM, fixed", BZ_PREF_BEYOND_RAM_FIXED, -ENOMEM },
		{ "straddles end of RAM, fixed", BZ_STRADDLES_RAM_END_FIXED, -ENOMEM },
		{ "below 1 MiB, fixed", BZ_BELOW_1M_FIXED, -ENOMEM },
		{ "address wraps, fixed", BZ_ADDRESS_WRAPS_FIXED, -ENOMEM },
	};
	struct guest_mem *mem = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bz_opts o = bz_default;
		struct kernel_image k, before;
		const char *reason = NULL;
		size_t len, load_len;
		uint8_t *img;
		int r;

		load_len = bz_mutate(&o, cases[i].m, 0);
		img = build_bzimage(&o, &len);
		if (load_len == 0)
			load_len = len;

		memset(&k, 0xcc, sizeof(k));
		before = k;
		r = boot_load_kernel(mem, img, load_len, &k, &reason);
		if (r != cases[i].ret)
			print_message("case: %s: %d\n", cases[i].what, r);
		assert_int_equal(r, cases[i].ret);
		assert_non_null(reason);
		assert_memory_equal(&k, &before, sizeof(k));
		free(img);
	}
}

static void test_not_a_kernel(void **state)
{
	struct guest_mem *mem = *state;
	static const uint8_t zeros[4096];
	static const uint8_t elf_stub[] = { 0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB };
	struct kernel_image k;
	const char *reason = NULL;

	assert_int_equal(boot_load_kernel(mem, zeros, sizeof(zeros), &k, &reason), -ENOEXEC);
	assert_non_null(reason);
	reason = NULL;
	assert_int_equal(boot_load_kernel(mem, zeros, 0, &k, &reason), -ENOEXEC);
	assert_non_null(reason);
	reason = NULL;
	/* ELF magic but shorter than an ELF header. */
	assert_int_equal(boot_load_kernel(mem, elf_stub, sizeof(elf_stub), &k, &reason), -ENOEXEC);
	assert_non_null(reason);
	/* The size limit is checked before a byte is read. */
	reason = NULL;
	assert_int_equal(boot_load_kernel(mem, zeros, BOOT_KERNEL_FILE_MAX + 1ul, &k, &reason),
			 -EFBIG);
	assert_non_null(reason);
}

static void test_elf_pvh(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	uint8_t *img = build_elf();

	/* Old contents where the bss goes, and just past both segments. */
	memset(mem->host + SEG0_PADDR, 0xcc, SEG0_MEMSZ + 0x10);
	memset(mem->host + SEG1_PADDR, 0xcc, SEG1_FILESZ + 0x10);

	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	assert_null(reason);
	assert_int_equal(k.format, KERNEL_ELF);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_PVH);
	assert_int_equal(k.entry, PVH_ENTRY);
	assert_int_equal(k.load_addr, SEG0_PADDR);
	assert_int_equal(k.load_end, SEG1_PADDR + SEG1_FILESZ);
	assert_false(k.has_setup);
	assert_int_equal(k.initrd_addr_max, 0x37ffffff);
	assert_int_equal(k.cmdline_max, LAYOUT_CMDLINE_MAX - 1);

	assert_memory_equal(mem->host + SEG0_PADDR, img + SEG0_OFF, SEG0_FILESZ);
	for (size_t i = SEG0_FILESZ; i < SEG0_MEMSZ; i++)
		if (mem->host[SEG0_PADDR + i] != 0)
			fail_msg("bss byte 0x%zx is 0x%02x", i, mem->host[SEG0_PADDR + i]);
	assert_int_equal(mem->host[SEG0_PADDR + SEG0_MEMSZ], 0xcc);
	assert_memory_equal(mem->host + SEG1_PADDR, img + SEG1_OFF, SEG1_FILESZ);
	assert_int_equal(mem->host[SEG1_PADDR + SEG1_FILESZ], 0xcc);
	free(img);
}

static void test_elf_no_note(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	uint8_t *img = build_elf();

	ehdr(img)->e_phnum = 2;
	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	assert_int_equal(k.format, KERNEL_ELF);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_LINUX64);
	assert_int_equal(k.entry, ELF_ENTRY);
	assert_memory_equal(mem->host + SEG0_PADDR, img + SEG0_OFF, SEG0_FILESZ);
	free(img);
}

/* Rewrite the note segment so it holds just this one note. */
static void set_single_note(uint8_t *img, uint32_t namesz, const char *name, uint32_t type,
			    const void *desc, uint32_t descsz)
{
	size_t end;

	memset(img + NOTE_OFF, 0, 0x100);
	end = put_note(img, NOTE_OFF, namesz, name, type, desc, descsz);
	phdr(img, 2)->p_filesz = end - NOTE_OFF;
}

static void test_elf_note_variants(void **state)
{
	struct guest_mem *mem = *state;
	const uint64_t entry64 = PVH_ENTRY, outside = 0x2000000;
	const uint32_t entry32 = PVH_ENTRY + 4;
	static const uint8_t zero8[8];
	const struct {
		const char *what;
		uint32_t namesz;
		const char *name;
		uint32_t type;
		const void *desc;
		uint32_t descsz;
		enum boot_entry mode;
		uint64_t entry;
	} cases[] = {
		{ "8-byte entry", 4, "Xen", 18, &entry64, 8, BOOT_ENTRY_PVH, PVH_ENTRY },
		{ "4-byte entry", 4, "Xen", 18, &entry32, 4, BOOT_ENTRY_PVH, PVH_ENTRY + 4 },
		{ "other Xen note type", 4, "Xen", 17, &entry64, 8, BOOT_ENTRY_LINUX64, ELF_ENTRY },
		{ "other owner", 4, "GNU", 18, &entry64, 8, BOOT_ENTRY_LINUX64, ELF_ENTRY },
		{ "name without NUL", 3, "Xen", 18, &entry64, 8, BOOT_ENTRY_LINUX64, ELF_ENTRY },
		{ "short desc", 4, "Xen", 18, &entry64, 2, BOOT_ENTRY_LINUX64, ELF_ENTRY },
		{ "entry outside segments", 4, "Xen", 18, &outside, 8, BOOT_ENTRY_LINUX64,
		  ELF_ENTRY },
		{ "zero entry", 4, "Xen", 18, zero8, 8, BOOT_ENTRY_LINUX64, ELF_ENTRY },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image k;
		const char *reason = NULL;
		uint8_t *img = build_elf();
		int r;

		set_single_note(img, cases[i].namesz, cases[i].name, cases[i].type, cases[i].desc,
				cases[i].descsz);
		r = boot_load_kernel(mem, img, ELF_LEN, &k, &reason);
		if (r != 0 || k.entry_mode != cases[i].mode || k.entry != cases[i].entry)
			print_message("case: %s\n", cases[i].what);
		assert_int_equal(r, 0);
		assert_int_equal(k.entry_mode, cases[i].mode);
		assert_int_equal(k.entry, cases[i].entry);
		free(img);
	}
}

static void test_elf_note_after_others(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	uint8_t *img = build_elf();
	uint64_t pvh = PVH_ENTRY + 8;
	size_t end;

	/* Xen note first, GNU note after; and a second PT_NOTE before the real one. */
	memset(img + NOTE_OFF, 0, 0x100);
	end = put_note(img, NOTE_OFF, 4, "Xen", 18, &pvh, 8);
	end = put_note(img, end, 4, "GNU", 3, "abcd", 4);
	phdr(img, 2)->p_filesz = end - NOTE_OFF;
	*phdr(img, 3) = *phdr(img, 2);
	*phdr(img, 2) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = SEG1_OFF, .p_filesz = 0 };
	ehdr(img)->e_phnum = 4;

	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_PVH);
	assert_int_equal(k.entry, PVH_ENTRY + 8);
	free(img);
}

/*
 * Garbage sizes in notes must neither loop forever nor read outside the
 * file: the load still succeeds, falling back to e_entry.
 */
static void test_elf_malformed_notes(void **state)
{
	struct guest_mem *mem = *state;
	static const struct {
		const char *what;
		uint32_t namesz, descsz;
		uint64_t p_offset, p_filesz;
	} cases[] = {
		{ "huge namesz", 0xffffffff, 8, NOTE_OFF, 0x40 },
		{ "huge descsz", 4, 0xffffffff, NOTE_OFF, 0x40 },
		{ "both huge", 0xffffffff, 0xffffffff, NOTE_OFF, 0x40 },
		{ "namesz aligns to 4 GiB", 0xfffffffd, 0, NOTE_OFF, 0x40 },
		{ "descsz past segment", 4, 0x40, NOTE_OFF, 0x20 },
		{ "zero sizes fill segment", 0, 0, NOTE_OFF, 0x60 },
		{ "segment shorter than header", 4, 8, NOTE_OFF, 8 },
		{ "segment outside file", 4, 8, ELF_LEN + 0x100, 0x40 },
		{ "segment crossing file end", 4, 8, ELF_LEN - 8, 0x40 },
		{ "segment offset wraps", 4, 8, UINT64_MAX - 4, 0x40 },
		{ "segment size wraps", 4, 8, NOTE_OFF, UINT64_MAX },
	};

	/* A hang is a failure too. */
	alarm(30);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image k;
		const char *reason = NULL;
		uint8_t *img = build_elf();
		Elf64_Nhdr nh = { .n_namesz = cases[i].namesz,
				  .n_descsz = cases[i].descsz,
				  .n_type = 18 };
		int r;

		memset(img + NOTE_OFF, 0, 0x100);
		memcpy(img + NOTE_OFF, &nh, sizeof(nh));
		memcpy(img + NOTE_OFF + sizeof(nh), "Xen", 4);
		memcpy(img + NOTE_OFF + sizeof(nh) + 4, &(uint64_t){ PVH_ENTRY }, 8);
		if (cases[i].namesz == 0 && cases[i].descsz == 0)
			memset(img + NOTE_OFF, 0, 0x100);
		phdr(img, 2)->p_offset = cases[i].p_offset;
		phdr(img, 2)->p_filesz = cases[i].p_filesz;

		r = boot_load_kernel(mem, img, ELF_LEN, &k, &reason);
		if (r != 0 || k.entry_mode != BOOT_ENTRY_LINUX64)
			print_message("case: %s\n", cases[i].what);
		assert_int_equal(r, 0);
		assert_int_equal(k.entry_mode, BOOT_ENTRY_LINUX64);
		assert_int_equal(k.entry, ELF_ENTRY);
		free(img);
	}
	alarm(0);
}

enum elf_mutation {
	M_CLASS32,
	M_BIG_ENDIAN,
	M_MACHINE_386,
	M_MACHINE_AARCH64,
	M_TYPE_DYN,
	M_PHENTSIZE,
	M_PHNUM_0,
	M_PHNUM_65,
	M_PHNUM_MAX,
	M_PHOFF_OUTSIDE,
	M_PHOFF_CROSSES_END,
	M_PHOFF_WRAPS,
	M_SEG_OFFSET_OUTSIDE,
	M_SEG_ONE_BYTE_PAST_END,
	M_SEG_OFFSET_WRAPS,
	M_SEG_FILESZ_GT_MEMSZ,
	M_SEG_BELOW_1M,
	M_SEG_BEYOND_RAM,
	M_SEG_CROSSES_RAM_END,
	M_SEG_PADDR_WRAPS,
	M_NO_LOAD,
	M_ONLY_EMPTY_LOAD,
	M_ENTRY_OUTSIDE,
};

static void mutate_elf(uint8_t *img, enum elf_mutation m)
{
	Elf64_Ehdr *eh = ehdr(img);
	Elf64_Phdr *seg = phdr(img, 1);

	switch (m) {
	case M_CLASS32:
		eh->e_ident[EI_CLASS] = ELFCLASS32;
		break;
	case M_BIG_ENDIAN:
		eh->e_ident[EI_DATA] = ELFDATA2MSB;
		break;
	case M_MACHINE_386:
		eh->e_machine = EM_386;
		break;
	case M_MACHINE_AARCH64:
		eh->e_machine = EM_AARCH64;
		break;
	case M_TYPE_DYN:
		eh->e_type = ET_DYN;
		break;
	case M_PHENTSIZE:
		eh->e_phentsize = sizeof(Elf32_Phdr);
		break;
	case M_PHNUM_0:
		eh->e_phnum = 0;
		break;
	case M_PHNUM_65:
		/* The extra headers are PT_NULL and inside the file: only the limit rejects. */
		eh->e_phnum = 65;
		break;
	case M_PHNUM_MAX:
		eh->e_phnum = 0xffff;
		break;
	case M_PHOFF_OUTSIDE:
		eh->e_phoff = ELF_LEN;
		break;
	case M_PHOFF_CROSSES_END:
		eh->e_phoff = ELF_LEN - 2 * sizeof(Elf64_Phdr);
		break;
	case M_PHOFF_WRAPS:
		eh->e_phoff = UINT64_MAX - 8;
		break;
	case M_SEG_OFFSET_OUTSIDE:
		seg->p_offset = ELF_LEN + 0x1000;
		break;
	case M_SEG_ONE_BYTE_PAST_END:
		seg->p_filesz = ELF_LEN - SEG1_OFF + 1;
		seg->p_memsz = seg->p_filesz;
		break;
	case M_SEG_OFFSET_WRAPS:
		seg->p_offset = UINT64_MAX - 0x10;
		break;
	case M_SEG_FILESZ_GT_MEMSZ:
		seg->p_memsz = seg->p_filesz - 1;
		break;
	case M_SEG_BELOW_1M:
		seg->p_paddr = 0x80000;
		break;
	case M_SEG_BEYOND_RAM:
		seg->p_paddr = RAM_SIZE;
		break;
	case M_SEG_CROSSES_RAM_END:
		seg->p_paddr = RAM_SIZE - 0x400;
		break;
	case M_SEG_PADDR_WRAPS:
		seg->p_paddr = UINT64_MAX - 0x10;
		break;
	case M_NO_LOAD:
		phdr(img, 0)->p_type = PT_NULL;
		seg->p_type = PT_DYNAMIC;
		break;
	case M_ONLY_EMPTY_LOAD:
		phdr(img, 0)->p_memsz = 0;
		phdr(img, 0)->p_filesz = 0;
		seg->p_memsz = 0;
		seg->p_filesz = 0;
		break;
	case M_ENTRY_OUTSIDE:
		eh->e_phnum = 2; /* no PVH note to fall back on */
		eh->e_entry = 0xffffffff81000000ull;
		break;
	}
}

static void test_elf_rejects(void **state)
{
	static const struct {
		const char *what;
		enum elf_mutation m;
		int ret;
	} cases[] = {
		{ "ELFCLASS32", M_CLASS32, -ENOEXEC },
		{ "big endian", M_BIG_ENDIAN, -ENOEXEC },
		{ "EM_386", M_MACHINE_386, -ENOEXEC },
		{ "EM_AARCH64", M_MACHINE_AARCH64, -ENOEXEC },
		{ "ET_DYN", M_TYPE_DYN, -ENOEXEC },
		{ "32-bit phentsize", M_PHENTSIZE, -ENOEXEC },
		{ "no phdrs", M_PHNUM_0, -ENOEXEC },
		{ "65 phdrs", M_PHNUM_65, -ENOEXEC },
		{ "65535 phdrs", M_PHNUM_MAX, -ENOEXEC },
		{ "phdrs outside file", M_PHOFF_OUTSIDE, -ENOEXEC },
		{ "phdrs cross file end", M_PHOFF_CROSSES_END, -ENOEXEC },
		{ "phoff wraps", M_PHOFF_WRAPS, -ENOEXEC },
		{ "segment outside file", M_SEG_OFFSET_OUTSIDE, -ENOEXEC },
		{ "segment one byte past file end", M_SEG_ONE_BYTE_PAST_END, -ENOEXEC },
		{ "segment offset wraps", M_SEG_OFFSET_WRAPS, -ENOEXEC },
		{ "filesz > memsz", M_SEG_FILESZ_GT_MEMSZ, -ENOEXEC },
		{ "segment below 1 MiB", M_SEG_BELOW_1M, -ENOMEM },
		{ "segment beyond RAM", M_SEG_BEYOND_RAM, -ENOMEM },
		{ "segment crosses end of RAM", M_SEG_CROSSES_RAM_END, -ENOMEM },
		{ "segment address wraps", M_SEG_PADDR_WRAPS, -ENOMEM },
		{ "no PT_LOAD", M_NO_LOAD, -ENOEXEC },
		{ "only empty PT_LOADs", M_ONLY_EMPTY_LOAD, -ENOEXEC },
		{ "entry outside segments", M_ENTRY_OUTSIDE, -ENOEXEC },
	};
	struct guest_mem *mem = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image k, before;
		const char *reason = NULL;
		uint8_t *img = build_elf();
		int r;

		mutate_elf(img, cases[i].m);
		memset(&k, 0xcc, sizeof(k));
		before = k;
		r = boot_load_kernel(mem, img, ELF_LEN, &k, &reason);
		if (r != cases[i].ret)
			print_message("case: %s: %d (%s)\n", cases[i].what, r,
				      reason ? reason : "no reason");
		assert_int_equal(r, cases[i].ret);
		assert_non_null(reason);
		assert_memory_equal(&k, &before, sizeof(k));
		free(img);
	}
}

static void test_elf_phnum_limit(void **state)
{
	struct guest_mem *mem = *state;
	struct kernel_image k;
	const char *reason = NULL;
	uint8_t *img = build_elf();

	/* 64 headers (61 of them PT_NULL) is the most accepted. */
	ehdr(img)->e_phnum = 64;
	assert_int_equal(boot_load_kernel(mem, img, ELF_LEN, &k, &reason), 0);
	assert_int_equal(k.entry_mode, BOOT_ENTRY_PVH);
	free(img);
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void check_fuzz_result(const struct guest_mem *mem, int r, const struct kernel_image *k,
			      const char *reason)
{
	if (r < 0) {
		assert_true(r == -ENOEXEC || r == -ENOMEM || r == -EFBIG);
		assert_non_null(reason);
		return;
	}
	assert_int_equal(r, 0);
	assert_true(k->load_end > k->load_addr);
	assert_true(k->load_addr >= LAYOUT_HIGH_MEMORY);
	assert_non_null(guest_mem_ptr(mem, k->load_addr, k->load_end - k->load_addr));
}

/* Random bytes and random corruptions of valid images never crash the loaders. */
static void test_garbage(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_opts o = bz_default;
	uint64_t seed = 0x5eed;
	size_t bz_len;
	uint8_t *bz, *elf, *buf;

	alarm(60);
	o.payload_len = 0x1000;
	o.init_size = 0x2000;
	bz = build_bzimage(&o, &bz_len);
	elf = build_elf();
	buf = malloc(MAX(bz_len, (size_t)ELF_LEN));
	assert_non_null(buf);

	for (int iter = 0; iter < 30000; iter++) {
		struct kernel_image k;
		const char *reason = NULL;
		size_t len;
		int kind = iter % 3, flips, r;

		if (kind == 0) {
			len = lcg(&seed) % ELF_LEN;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)lcg(&seed);
			/* Often give it a magic so the parsers get past the front door. */
			if (len >= 4 && (lcg(&seed) & 1))
				memcpy(buf, ELFMAG, SELFMAG);
		} else {
			const uint8_t *src = kind == 1 ? elf : bz;
			size_t src_len = kind == 1 ? ELF_LEN : bz_len;

			len = src_len;
			memcpy(buf, src, len);
			flips = 1 + (int)(lcg(&seed) % 8);
			for (int f = 0; f < flips; f++) {
				/* Aim most corruption at the headers. */
				size_t span = (lcg(&seed) & 3) ? 0x300 : len;
				size_t at = (kind == 1 && (lcg(&seed) & 1) ? NOTE_OFF : 0) +
					    lcg(&seed) % span;

				if (at < len)
					buf[at] = (uint8_t)lcg(&seed);
			}
			if (lcg(&seed) % 8 == 0)
				len = lcg(&seed) % len;
		}
		r = boot_load_kernel(mem, buf, len, &k, &reason);
		check_fuzz_result(mem, r, &k, reason);
	}
	alarm(0);
	free(buf);
	free(bz);
	free(elf);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, boot_setup, boot_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bzimage_load),
		T(test_bzimage_setup_sects_zero),
		T(test_bzimage_defaults),
		T(test_bzimage_relocated),
		T(test_bzimage_rejects),
		T(test_not_a_kernel),
		T(test_elf_pvh),
		T(test_elf_no_note),
		T(test_elf_note_variants),
		T(test_elf_note_after_others),
		T(test_elf_malformed_notes),
		T(test_elf_rejects),
		T(test_elf_phnum_limit),
		T(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
