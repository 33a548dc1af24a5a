/* SPDX-License-Identifier: MIT */
/*
 * A guest disk behind one interface, whatever the image format: raw files
 * (and block devices) or qcow2 chains. The block device model reads and
 * writes through it; for asynchronous I/O it asks disk_map where a guest
 * range lives and issues the data I/O itself.
 *
 * One struct disk is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct disk;

enum disk_format {
	DISK_FORMAT_AUTO, /* probe: qcow2 when the magic is there, else raw */
	DISK_FORMAT_RAW,
	DISK_FORMAT_QCOW2,
	DISK_FORMAT_MAX,
};

enum { DISK_REASON_MAX = 256 };

/* One human line saying why an open failed, for the caller to log. */
struct disk_reason {
	char msg[DISK_REASON_MAX];
};

/*
 * Open with the format probed. A probed raw image refuses guest writes that
 * would make it look like a qcow2 image (its first bytes), so that a guest
 * cannot turn its disk into an image with a backing file of its choosing.
 * The reason may be NULL.
 */
int disk_open(const char *path, bool read_only, struct disk **ret_disk,
	      struct disk_reason *reason) __must_check;
int disk_open_format(const char *path, enum disk_format format, bool read_only,
		     struct disk **ret_disk, struct disk_reason *reason) __must_check;

/* Flushes (best effort: call disk_flush first to see errors) and frees. */
void disk_close(struct disk *d);
DEFINE_CLEANUP_FUNC(struct disk, disk_close)
#define _cleanup_disk_ _cleanup_(disk_closep)

uint64_t disk_size(const struct disk *d);
enum disk_format disk_format(const struct disk *d);
bool disk_read_only(const struct disk *d);
const char *disk_format_name(enum disk_format format);
/* The reason for the last failed I/O call ("" if none). */
const char *disk_last_error(const struct disk *d);

/* Ranges must lie inside the disk (-EINVAL otherwise); writes on a read-only disk: -EROFS. */
int disk_read(struct disk *d, void *buf, uint64_t len, uint64_t offset) __must_check;
int disk_write(struct disk *d, const void *buf, uint64_t len, uint64_t offset) __must_check;
int disk_write_zeroes(struct disk *d, uint64_t offset, uint64_t len) __must_check;
/* A hint: the range may read as zeros or keep its data afterwards. */
int disk_discard(struct disk *d, uint64_t offset, uint64_t len) __must_check;
int disk_flush(struct disk *d) __must_check;

enum disk_extent_kind {
	DISK_EXTENT_DATA,	 /* bytes at host_offset in fd */
	DISK_EXTENT_ZERO,	 /* reads as zeros */
	DISK_EXTENT_NEEDS_ALLOC, /* for writing: use disk_write */
	DISK_EXTENT_KIND_MAX,
};

struct disk_extent {
	enum disk_extent_kind kind;
	int fd;
	uint64_t host_offset;
	uint64_t len; /* > 0 */
};

/*
 * Where the longest uniform prefix of [offset, offset + len) lives, for
 * reading or (for_write) overwriting in place. Valid until the next call
 * that changes the disk; data I/O on it must finish before disk_flush.
 */
int disk_map(struct disk *d, uint64_t offset, uint64_t len, bool for_write,
	     struct disk_extent *ret_extent) __must_check;
