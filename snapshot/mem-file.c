// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "mem-file.h"

/*
 * Extents of the memfd that hold data (SEEK_DATA/SEEK_HOLE); pages in a
 * hole were never touched and need no look. A private mapping (a resumed
 * template) may differ from the memfd, so then every page is looked at.
 */
static int write_ram(int fd, const struct guest_mem *mem, bool memfd_is_current)
{
	off_t pos = 0, data, hole;
	int r;

	if (!memfd_is_current)
		return guest_mem_copy_to_fd(mem, 0, mem->size, fd);
	while ((uint64_t)pos < mem->size) {
		data = lseek(mem->memfd, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : neg_errno();
		hole = lseek(mem->memfd, data, SEEK_HOLE);
		if (hole < 0)
			return neg_errno();
		if ((uint64_t)hole > mem->size)
			hole = (off_t)mem->size;
		r = guest_mem_copy_to_fd(mem, (uint64_t)data, (uint64_t)(hole - data), fd);
		if (r < 0)
			return r;
		pos = hole;
	}
	return 0;
}

int memfile_write(const char *path, const struct guest_mem *mem)
{
	char tmp[4096];
	_cleanup_close_ int fd = -1;
	int r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return neg_errno();
	/* The size first: everything not written below stays a hole. */
	r = ftruncate(fd, (off_t)mem->size) < 0 ? neg_errno() : 0;
	if (r >= 0)
		r = write_ram(fd, mem, !mem->private_mapping);
	if (r >= 0 && fsync(fd) < 0)
		r = neg_errno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = neg_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

int memfile_map_private(const char *path, struct guest_mem *mem)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *p;

	if (fd < 0)
		return neg_errno();
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != mem->size)
		return -EINVAL;
	/* Writable private mapping of a read-only file: writes are copy-on-write. */
	p = mmap(mem->host, mem->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return neg_errno();
	mem->private_mapping = true;
	mem->file_backed = true;
	return 0;
}
