// SPDX-License-Identifier: MIT
/*
 * Kernel image loaders: bzImage through the setup header, ELF vmlinux
 * through its program headers. Every offset and size read from the file
 * is checked against the file and against guest RAM before use.
 */
#include <elf.h>
#include <string.h>

#include "boot.h"
#include "layout.h"

#define SETUP_HEADER_OFFSET 0x1f1
#define HDRS_MAGIC	    0x53726448 /* "HdrS" */
#define BOOT_FLAG_MAGIC	    0xaa55
/* 2.12 added xloadflags, which is how a kernel says it has a 64-bit entry. */
#define MIN_PROTOCOL_64BIT  0x020c
#define DEFAULT_SETUP_SECTS 4
/* The 64-bit entry point sits 0x200 bytes into the protected-mode kernel. */
#define STARTUP_64_OFFSET   0x200
#define DEFAULT_INITRD_MAX  0x37ffffffull
/* Xen ELF note type giving the 32-bit PVH entry point (xen/include/public/elfnote.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

static bool is_bzimage(const uint8_t *file, size_t len)
{
	uint32_t magic;
	uint16_t boot_flag;

	if (len < SETUP_HEADER_OFFSET + sizeof(struct setup_header))
		return false;
	memcpy(&boot_flag, file + 0x1fe, sizeof(boot_flag));
	memcpy(&magic, file + 0x202, sizeof(magic));
	return boot_flag == BOOT_FLAG_MAGIC && magic == HDRS_MAGIC;
}

static bool is_elf64(const uint8_t *file, size_t len)
{
	return len >= sizeof(Elf64_Ehdr) && memcmp(file, ELFMAG, SELFMAG) == 0;
}

static int load_bzimage(const struct guest_mem *mem, const uint8_t *file, size_t len,
			struct kernel_image *k, const char **reason)
{
	struct setup_header hdr;
	uint64_t setup_bytes, payload_len, load, need;

	memcpy(&hdr, file + SETUP_HEADER_OFFSET, sizeof(hdr));
	if (hdr.version < MIN_PROTOCOL_64BIT || !(hdr.xloadflags & XLF_KERNEL_64)) {
		*reason = "bzImage has no 64-bit entry point (boot protocol 2.12+ with XLF_KERNEL_64 "
			  "is required)";
		return -ENOEXEC;
	}
	setup_bytes = ((uint64_t)(hdr.setup_sects ? hdr.setup_sects : DEFAULT_SETUP_SECTS) + 1) * 512;
	if (setup_bytes >= len) {
		*reason = "bzImage is truncated: no protected-mode kernel after the setup sectors";
		return -ENOEXEC;
	}
	payload_len = len - setup_bytes;

	/*
	 * The kernel decompresses itself in place and needs init_size bytes
	 * from its load address. Use its preferred address; a relocatable
	 * kernel that does not fit there may go lower, aligned as it asks.
	 */
	need = MAX((uint64_t)hdr.init_size, payload_len);
	load = hdr.pref_address ? hdr.pref_address : LAYOUT_KERNEL_DEFAULT;
	if (!guest_mem_ptr(mem, load, need) && hdr.relocatable_kernel) {
		uint64_t align = hdr.kernel_alignment ? hdr.kernel_alignment : (2u << 20);

		if (align & (align - 1)) {
			*reason = "bzImage declares a kernel_alignment that is not a power of two";
			return -ENOEXEC;
		}
		load = ALIGN_UP(LAYOUT_HIGH_MEMORY, align);
	}
	if (load < LAYOUT_HIGH_MEMORY || !guest_mem_ptr(mem, load, need)) {
		*reason = "guest memory is too small for this kernel";
		return -ENOMEM;
	}
	memcpy(guest_mem_ptr(mem, load, payload_len), file + setup_bytes, payload_len);

	k->format = KERNEL_BZIMAGE;
	k->entry_mode = BOOT_ENTRY_LINUX64;
	k->entry = load + STARTUP_64_OFFSET;
	k->load_addr = load;
	k->load_end = load + need;
	k->setup = hdr;
	k->has_setup = true;
	k->initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max : DEFAULT_INITRD_MAX;
	k->cmdline_max = hdr.cmdline_size ? hdr.cmdline_size : 255;
	return 0;
}

/* The PVH entry from a PT_NOTE segment, or 0. */
static uint64_t find_pvh_entry(const uint8_t *file, size_t len, const Elf64_Phdr *ph)
{
	uint64_t off = ph->p_offset, end;

	if (!range_within(ph->p_offset, ph->p_filesz, len))
		return 0;
	end = ph->p_offset + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, file + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + ALIGN_UP((uint64_t)nh.n_namesz, 4);
		next = desc_off + ALIGN_UP((uint64_t)nh.n_descsz, 4);
		if (next > end || next <= off)
			return 0;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(file + name_off, "Xen", 4) == 0 && nh.n_descsz >= 4) {
			uint32_t entry32;
			uint64_t entry64;

			if (nh.n_descsz >= 8) {
				memcpy(&entry64, file + desc_off, 8);
				return entry64;
			}
			memcpy(&entry32, file + desc_off, 4);
			return entry32;
		}
		off = next;
	}
	return 0;
}

enum { ELF_MAX_PHDRS = 64 };

static int load_elf(const struct guest_mem *mem, const uint8_t *file, size_t len,
		    struct kernel_image *k, const char **reason)
{
	Elf64_Ehdr eh;
	uint64_t lowest = UINT64_MAX, highest = 0, pvh_entry = 0;
	bool entry_loaded = false;

	memcpy(&eh, file, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
		*reason = "ELF kernel is not a little-endian x86-64 executable";
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHDRS ||
	    !range_within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len)) {
		*reason = "ELF kernel has a malformed program header table";
		return -ENOEXEC;
	}

	for (uint32_t i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		memcpy(&ph, file + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
		if (ph.p_type == PT_NOTE && !pvh_entry)
			pvh_entry = find_pvh_entry(file, len, &ph);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || !range_within(ph.p_offset, ph.p_filesz, len)) {
			*reason = "ELF kernel segment lies outside the file";
			return -ENOEXEC;
		}
		dst = guest_mem_ptr(mem, ph.p_paddr, ph.p_memsz);
		if (!dst || ph.p_paddr < LAYOUT_HIGH_MEMORY) {
			*reason = "ELF kernel segment does not fit in guest RAM above 1 MiB";
			return -ENOMEM;
		}
		memcpy(dst, file + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		lowest = MIN(lowest, ph.p_paddr);
		highest = MAX(highest, ph.p_paddr + ph.p_memsz);
		if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			entry_loaded = true;
	}
	if (highest == 0) {
		*reason = "ELF kernel has no loadable segment";
		return -ENOEXEC;
	}

	k->format = KERNEL_ELF;
	k->load_addr = lowest;
	k->load_end = highest;
	k->has_setup = false;
	k->initrd_addr_max = DEFAULT_INITRD_MAX;
	k->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	if (pvh_entry && pvh_entry >= lowest && pvh_entry < highest) {
		k->entry_mode = BOOT_ENTRY_PVH;
		k->entry = pvh_entry;
		return 0;
	}
	if (!entry_loaded) {
		*reason = "ELF kernel's entry point is outside its loaded segments";
		return -ENOEXEC;
	}
	k->entry_mode = BOOT_ENTRY_LINUX64;
	k->entry = eh.e_entry;
	return 0;
}

int boot_load_kernel(const struct guest_mem *mem, const uint8_t *file, size_t len,
		     struct kernel_image *ret_kernel, const char **ret_reason)
{
	struct kernel_image k = { 0 };
	const char *reason = NULL;
	int r;

	if (len > BOOT_KERNEL_FILE_MAX) {
		r = -EFBIG;
		reason = "kernel file is larger than 512 MiB";
	} else if (is_bzimage(file, len)) {
		r = load_bzimage(mem, file, len, &k, &reason);
	} else if (is_elf64(file, len)) {
		r = load_elf(mem, file, len, &k, &reason);
	} else {
		r = -ENOEXEC;
		reason = "kernel is neither a bzImage nor an ELF vmlinux";
	}
	if (r < 0) {
		*ret_reason = reason;
		return r;
	}
	*ret_kernel = k;
	return 0;
}

int boot_load_initrd(const struct guest_mem *mem, const struct kernel_image *kernel,
		     const uint8_t *data, size_t len, uint64_t *ret_addr, const char **ret_reason)
{
	uint64_t top = MIN(kernel->initrd_addr_max + 1, guest_mem_low_end(mem));
	uint64_t addr;

	if (len == 0 || len > top || ALIGN_DOWN(top - len, 4096ull) < kernel->load_end) {
		*ret_reason = "initrd does not fit in guest memory below the kernel's initrd limit";
		return -ENOMEM;
	}
	addr = ALIGN_DOWN(top - len, 4096ull);
	if (guest_mem_write(mem, addr, data, len) < 0) {
		*ret_reason = "initrd does not fit in guest RAM";
		return -ENOMEM;
	}
	*ret_addr = addr;
	return 0;
}
