// SPDX-License-Identifier: MIT
#include <string.h>
#include <sys/mman.h>

#include "layout.h"
#include "memory.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008u
#endif

int guest_mem_layout(uint64_t size, struct guest_mem *ret_mem)
{
	struct guest_mem mem = { .memfd = -1, .size = size };
	uint64_t low = MIN(size, LAYOUT_MMIO_HOLE);

	if (size < (16ull << 20) || size > (64ull << 30) || !IS_ALIGNED(size, 4096ull))
		return -EINVAL;

	mem.regions[0] = (struct guest_region){ .gpa = 0, .size = low, .memfd_offset = 0 };
	mem.nr_regions = 1;
	if (size > low) {
		mem.regions[1] = (struct guest_region){
			.gpa = LAYOUT_MMIO_HOLE_END,
			.size = size - low,
			.memfd_offset = low,
		};
		mem.nr_regions = 2;
	}
	*ret_mem = mem;
	return 0;
}

int guest_mem_create(uint64_t size, struct guest_mem *ret_mem)
{
	struct guest_mem mem;
	_cleanup_close_ int fd = -1;
	void *host;
	int r;

	r = guest_mem_layout(size, &mem);
	if (r < 0)
		return r;

	fd = memfd_create("fvm-guest-ram", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("fvm-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (ftruncate(fd, (off_t)size) < 0)
		return neg_errno();

	/* MAP_NORESERVE: a 64 GiB guest that touches 100 MiB costs 100 MiB. */
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (host == MAP_FAILED)
		return neg_errno();
	/* Huge pages make fork()'s page-table copy and TLB use cheaper. */
	(void)madvise(host, size, MADV_HUGEPAGE);

	mem.memfd = TAKE_FD(fd);
	mem.host = host;
	*ret_mem = mem;
	return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (!mem)
		return;
	if (mem->host)
		munmap(mem->host, mem->size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	mem->host = NULL;
	mem->memfd = -1;
}

int guest_mem_remap_private(struct guest_mem *mem)
{
	void *p = mmap(mem->host, mem->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, mem->memfd, 0);

	if (p == MAP_FAILED)
		return neg_errno();
	mem->private_mapping = true;
	return 0;
}

int guest_mem_copy_to_fd(const struct guest_mem *mem, uint64_t off, uint64_t len, int fd)
{
	static const uint8_t zero[4096];

	if (!range_within(off, len, mem->size))
		return -EINVAL;
	for (uint64_t pos = off; pos < off + len; pos += sizeof(zero)) {
		const uint8_t *page = mem->host + pos;
		size_t done = 0;

		if (memcmp(page, zero, sizeof(zero)) == 0)
			continue;
		while (done < sizeof(zero)) {
			ssize_t n = pwrite(fd, page + done, sizeof(zero) - done, (off_t)(pos + done));

			if (n < 0)
				return neg_errno();
			done += (size_t)n;
		}
	}
	return 0;
}

int guest_mem_consolidate(struct guest_mem *mem)
{
	_cleanup_close_ int fd = -1;
	void *p;
	int r;

	if (!mem->private_mapping)
		return 0;
	fd = memfd_create("fvm-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (ftruncate(fd, (off_t)mem->size) < 0)
		return neg_errno();
	r = guest_mem_copy_to_fd(mem, 0, mem->size, fd);
	if (r < 0)
		return r;
	p = mmap(mem->host, mem->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
		 fd, 0);
	if (p == MAP_FAILED)
		return neg_errno();
	if (mem->memfd >= 0)
		close(mem->memfd);
	mem->memfd = TAKE_FD(fd);
	mem->private_mapping = false;
	mem->file_backed = false;
	return 0;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (uint32_t i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		if (gpa >= r->gpa && range_within(gpa - r->gpa, len, r->size))
			return mem->host ? mem->host + r->memfd_offset + (gpa - r->gpa) : NULL;
	}
	return NULL;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].size;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_mem_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}
