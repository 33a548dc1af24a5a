/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: one memfd, mapped once MAP_SHARED into the VMM. Low RAM is
 * the start of the memfd, high RAM (above the MMIO hole) its remainder, so
 * a fork child can remap the whole of it MAP_PRIVATE with one mmap.
 * Every guest-physical address a device or loader touches goes through
 * guest_mem_ptr(), the one checked translation.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t memfd_offset;
};

struct guest_mem {
	int memfd;
	uint8_t *host;
	uint64_t size;
	struct guest_region regions[2];
	uint32_t nr_regions;
	/* The mapping is MAP_PRIVATE: this process's writes do not reach the memfd. */
	bool private_mapping;
	/* RAM is a private mapping of a snapshot's memory file, not of the memfd. */
	bool file_backed;
};

/* Lay out `size` bytes of RAM around the MMIO hole (no allocation). */
int guest_mem_layout(uint64_t size, struct guest_mem *ret_mem) __must_check;

/* Create the memfd and map it; mem must come from guest_mem_layout(). */
int guest_mem_create(uint64_t size, struct guest_mem *ret_mem) __must_check;
void guest_mem_destroy(struct guest_mem *mem);

/*
 * Replace the shared mapping with a private one at the same address: from
 * now on this process's writes are copy-on-write and never reach the
 * memfd, which other processes (the template, its clones) share.
 */
int guest_mem_remap_private(struct guest_mem *mem) __must_check;

/*
 * Make the memfd hold exactly what the guest sees again, and map it
 * shared: needed before forking a VM whose RAM is a private mapping (a
 * resumed template, a clone, a restored snapshot), so its own writes are
 * what its clones inherit. Copies RAM into a fresh memfd.
 */
int guest_mem_consolidate(struct guest_mem *mem) __must_check;

/*
 * Host pointer for [gpa, gpa + len) when it lies entirely inside one RAM
 * region, else NULL. len 0 is treated as 1.
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* End of low RAM (the first byte that is not RAM below 4 GiB). */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

/*
 * Write RAM bytes [off, off + len) of the memfd layout to fd at the same
 * offsets, skipping all-zero pages so they stay holes in a sparse file.
 * off and len are page-aligned.
 */
int guest_mem_copy_to_fd(const struct guest_mem *mem, uint64_t off, uint64_t len,
			 int fd) __must_check;

/* Copy into / out of guest memory; -EFAULT when the range is not RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);
