// SPDX-License-Identifier: MIT
/*
 * vmm/boot-loader.c and vmm/boot-params.c: synthetic bzImages and ELF
 * vmlinux files built byte by byte, loaded into a malloc'ed guest RAM;
 * the e820 map, the zero page, initrd placement and the PVH start info.
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

#include "boot.h"
#include "layout.h"
#include "memory.h"

#define RAM_SIZE MiB(64)

/* Every test gets 64 MiB of zeroed guest RAM. */
static int setup(void **state)
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

static int teardown(void **state)
{
	struct guest_mem *mem = *state;

	free(mem->host);
	free(mem);
	return 0;
}

static uint32_t get32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- synthetic bzImage ---- */

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

static const struct bz_opts bz_default = {
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

static size_t bz_setup_bytes(const struct bz_opts *o)
{
	return ((size_t)(o->setup_sects ? o->setup_sects : 4) + 1) * 512;
}

static uint8_t bz_payload_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static uint8_t *build_bzimage(const struct bz_opts *o, size_t *ret_len)
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

/* ---- synthetic ELF vmlinux ---- */

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

static size_t put_note(uint8_t *buf, size_t off, uint32_t namesz, const char *name, uint32_t type,
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

static Elf64_Ehdr *ehdr(uint8_t *buf)
{
	return (Elf64_Ehdr *)buf;
}

static Elf64_Phdr *phdr(uint8_t *buf, unsigned int i)
{
	return (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/*
 * Two PT_LOAD segments (the first with bss) and a PT_NOTE holding a GNU
 * build-id note followed by Xen's PHYS32_ENTRY note (type 18).
 */
static uint8_t *build_elf(void)
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

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
