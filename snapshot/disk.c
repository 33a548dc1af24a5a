// SPDX-License-Identifier: MIT
/*
 * The format-independent disk: raw files handled here with pread/pwrite
 * and fallocate, qcow2 images handed to the qcow2 engine.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk.h"
#include "qcow2.h"

struct disk {
	enum disk_format format;
	bool read_only;
	bool probed; /* raw by probing: guard the first bytes (see disk_open) */
	int fd;	     /* raw */
	struct qcow2 *q;
	uint64_t size;
	char error[DISK_REASON_MAX];
};

static int disk_fail(struct disk *d, int err, const char *fmt, ...) __printf(3, 4);

static int disk_fail(struct disk *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
	return err;
}

/* Carry the engine's reason up, for the caller's one log line. */
static int from_qcow2(struct disk *d, int r)
{
	if (r < 0)
		snprintf(d->error, sizeof(d->error), "%s",
			 qcow2_last_error(d->q)[0] ? qcow2_last_error(d->q) : strerror(-r));
	return r;
}

const char *disk_format_name(enum disk_format format)
{
	static const char *const names[DISK_FORMAT_MAX] = {
	    [DISK_FORMAT_AUTO] = "auto",
	    [DISK_FORMAT_RAW] = "raw",
	    [DISK_FORMAT_QCOW2] = "qcow2",
	};

	return format < DISK_FORMAT_MAX ? names[format] : "unknown";
}

static void reason_set(struct disk_reason *reason, const char *fmt, ...) __printf(2, 3);

static void reason_set(struct disk_reason *reason, const char *fmt, ...)
{
	va_list ap;

	if (!reason)
		return;
	va_start(ap, fmt);
	vsnprintf(reason->msg, sizeof(reason->msg), fmt, ap);
	va_end(ap);
}

static int probe(const char *path, enum disk_format *ret_format, struct disk_reason *reason)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t magic[4] = {};
	ssize_t n;

	if (fd < 0) {
		int r = neg_errno();

		reason_set(reason, "cannot open '%s': %s", path, strerror(-r));
		return r;
	}
	n = pread(fd, magic, sizeof(magic), 0);
	if (n < 0) {
		int r = neg_errno();

		reason_set(reason, "cannot read '%s': %s", path, strerror(-r));
		return r;
	}
	*ret_format = qcow2_probe(magic, (uint64_t)n) ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
	return 0;
}

int disk_open_format(const char *path, enum disk_format format, bool read_only,
		     struct disk **ret_disk, struct disk_reason *reason)
{
	_cleanup_free_ struct disk *d = NULL;
	off_t end;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = -1;
	d->read_only = read_only;

	if (format == DISK_FORMAT_AUTO) {
		r = probe(path, &format, reason);
		if (r < 0)
			return r;
		d->probed = format == DISK_FORMAT_RAW;
	}
	d->format = format;

	if (format == DISK_FORMAT_QCOW2) {
		struct qcow2_reason why;

		r = qcow2_open(path, read_only ? 0 : QCOW2_OPEN_RW, &d->q, &why);
		if (r < 0) {
			reason_set(reason, "%s", why.msg);
			return r;
		}
		d->size = qcow2_size(d->q);
		*ret_disk = TAKE_PTR(d);
		return 0;
	}
	if (format != DISK_FORMAT_RAW) {
		reason_set(reason, "unknown disk format %d", (int)format);
		return -EINVAL;
	}

	d->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d->fd < 0) {
		r = neg_errno();
		reason_set(reason, "cannot open '%s': %s", path, strerror(-r));
		return r;
	}
	/* SEEK_END sizes block devices as well as files. */
	end = lseek(d->fd, 0, SEEK_END);
	if (end < 0) {
		r = neg_errno();
		reason_set(reason, "cannot size '%s': %s", path, strerror(-r));
		close(d->fd);
		return r;
	}
	d->size = (uint64_t)end;
	*ret_disk = TAKE_PTR(d);
	return 0;
}

int disk_open(const char *path, bool read_only, struct disk **ret_disk, struct disk_reason *reason)
{
	return disk_open_format(path, DISK_FORMAT_AUTO, read_only, ret_disk, reason);
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	if (d->q)
		qcow2_close(d->q);
	if (d->fd >= 0) {
		if (!d->read_only)
			(void)fdatasync(d->fd);
		close(d->fd);
	}
	free(d);
}

uint64_t disk_size(const struct disk *d)
{
	return d->size;
}

enum disk_format disk_format(const struct disk *d)
{
	return d->format;
}

bool disk_read_only(const struct disk *d)
{
	return d->read_only;
}

const char *disk_last_error(const struct disk *d)
{
	return d->error;
}

static int check(struct disk *d, uint64_t offset, uint64_t len, bool write)
{
	d->error[0] = '\0';
	if (write && d->read_only)
		return disk_fail(d, -EROFS, "disk is read-only");
	if (!range_within(offset, len, d->size))
		return disk_fail(d, -EINVAL,
				 "range 0x%" PRIx64 "+%" PRIu64 " is outside the disk (%" PRIu64
				 " bytes)",
				 offset, len, d->size);
	return 0;
}

int disk_read(struct disk *d, void *buf, uint64_t len, uint64_t offset)
{
	uint8_t *p = buf;
	int r;

	r = check(d, offset, len, false);
	if (r < 0)
		return r;
	if (d->q)
		return from_qcow2(d, qcow2_read(d->q, buf, len, offset));

	while (len) {
		ssize_t n = pread(d->fd, p, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return disk_fail(d, neg_errno(), "read failed: %m");
		if (n == 0) {
			memset(p, 0, len); /* the file shrank under us */
			return 0;
		}
		p += n;
		len -= (uint64_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static int raw_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t offset)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(d->fd, p, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return disk_fail(d, neg_errno(), "write failed: %m");
		p += n;
		len -= (uint64_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int disk_write(struct disk *d, const void *buf, uint64_t len, uint64_t offset)
{
	int r;

	r = check(d, offset, len, true);
	if (r < 0)
		return r;
	if (d->q)
		return from_qcow2(d, qcow2_write(d->q, buf, len, offset));

	if (d->probed && offset < 4 && len > 0) {
		/* What the first bytes would become, old bytes and new together. */
		uint8_t head[4] = {};

		if (pread(d->fd, head, sizeof(head), 0) < 0)
			return disk_fail(d, neg_errno(), "read failed: %m");
		memcpy(head + offset, buf, MIN(len, 4 - offset));
		if (qcow2_probe(head, sizeof(head)))
			return disk_fail(d, -EPERM,
					 "refusing to write a qcow2 header onto a probed raw disk");
	}
	return raw_pwrite(d, buf, len, offset);
}

int disk_write_zeroes(struct disk *d, uint64_t offset, uint64_t len)
{
	_cleanup_free_ uint8_t *zeros = NULL;
	int r;

	r = check(d, offset, len, true);
	if (r < 0)
		return r;
	if (d->q)
		return from_qcow2(d, qcow2_write_zeroes(d->q, offset, len));
	if (len == 0)
		return 0;

	/* Zeroing in the file system is cheaper than writing; fall back if unsupported. */
	if (fallocate(d->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)len) == 0 ||
	    fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;

	zeros = calloc(1, MIN(len, 1u << 20));
	if (!zeros)
		return -ENOMEM;
	while (len) {
		uint64_t n = MIN(len, 1u << 20);

		r = raw_pwrite(d, zeros, n, offset);
		if (r < 0)
			return r;
		len -= n;
		offset += n;
	}
	return 0;
}

int disk_discard(struct disk *d, uint64_t offset, uint64_t len)
{
	int r;

	r = check(d, offset, len, true);
	if (r < 0)
		return r;
	if (d->q)
		return from_qcow2(d, qcow2_discard(d->q, offset, len));
	if (len == 0)
		return 0;
	/* Discard is a hint: a file system without hole punching just keeps the data. */
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return disk_fail(d, neg_errno(), "discard failed: %m");
	return 0;
}

int disk_flush(struct disk *d)
{
	d->error[0] = '\0';
	if (d->read_only)
		return 0;
	if (d->q)
		return from_qcow2(d, qcow2_flush(d->q));
	if (fdatasync(d->fd) < 0)
		return disk_fail(d, neg_errno(), "fdatasync failed: %m");
	return 0;
}

int disk_map(struct disk *d, uint64_t offset, uint64_t len, bool for_write,
	     struct disk_extent *ret_extent)
{
	struct qcow2_extent qe;
	int r;

	r = check(d, offset, len, for_write);
	if (r < 0)
		return r;
	if (len == 0)
		return disk_fail(d, -EINVAL, "empty range");

	if (!d->q) {
		/* A probed raw disk's first bytes stay behind disk_write's guard. */
		bool guarded = for_write && d->probed && offset < 4;

		*ret_extent = (struct disk_extent){
		    .kind = guarded ? DISK_EXTENT_NEEDS_ALLOC : DISK_EXTENT_DATA,
		    .fd = guarded ? -1 : d->fd,
		    .host_offset = offset,
		    .len = len,
		};
		return 0;
	}

	r = qcow2_map(d->q, offset, len, for_write ? QCOW2_MAP_WRITE : 0, &qe);
	if (r < 0)
		return from_qcow2(d, r);
	*ret_extent = (struct disk_extent){
	    .kind = qe.kind == QCOW2_EXTENT_DATA   ? DISK_EXTENT_DATA
		    : qe.kind == QCOW2_EXTENT_ZERO ? DISK_EXTENT_ZERO
						   : DISK_EXTENT_NEEDS_ALLOC,
	    .fd = qe.fd,
	    .host_offset = qe.host_offset,
	    .len = qe.len,
	};
	return 0;
}
