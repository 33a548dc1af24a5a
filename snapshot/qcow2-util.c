// SPDX-License-Identifier: MIT
/*
 * Small helpers every qcow2 file uses: failure reasons, big-endian fields,
 * whole-buffer file I/O with the bookkeeping the crash-safety order needs,
 * and the overlap test that keeps data away from the image's own tables.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qcow2-internal.h"

int qcow2_fail(struct qcow2 *q, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	return err;
}

int qcow2_fail_backing(struct qcow2 *q, int err, const char *inner)
{
	if (!inner || !inner[0])
		inner = strerror(-err);
	if (strncmp(inner, "backing file '", 14) == 0)
		return qcow2_fail(q, err, "%s", inner);
	return qcow2_fail(q, err, "backing file '%s': %s", q->backing_name, inner);
}

uint16_t qcow2_get_be16(const void *p)
{
	const uint8_t *b = p;

	return (uint16_t)(b[0] << 8 | b[1]);
}

uint32_t qcow2_get_be32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

uint64_t qcow2_get_be64(const void *p)
{
	const uint8_t *b = p;

	return (uint64_t)qcow2_get_be32(b) << 32 | qcow2_get_be32(b + 4);
}

void qcow2_put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;

	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

void qcow2_put_be64(void *p, uint64_t v)
{
	qcow2_put_be32(p, (uint32_t)(v >> 32));
	qcow2_put_be32((uint8_t *)p + 4, (uint32_t)v);
}

int qcow2_pread(int fd, void *buf, size_t len, uint64_t offset)
{
	uint8_t *p = buf;

	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return neg_errno();
		}
		if (n == 0) {
			/* Past the end of the file: a sparse tail reads as zeros. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t *p = buf;

	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	q->unsynced = true;
	while (len) {
		ssize_t n = pwrite(q->fd, p, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return neg_errno();
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	q->file_size = MAX(q->file_size, offset);
	return 0;
}

int qcow2_sync(struct qcow2 *q)
{
	if (fdatasync(q->fd) < 0)
		return qcow2_fail(q, neg_errno(), "fdatasync failed on '%s'", q->path);
	q->unsynced = q->deps_unsynced = q->l2_unsynced = false;
	return 0;
}

bool qcow2_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	return qcow2_ranges_overlap(off, len, 0, q->cluster_size) ||
	       qcow2_ranges_overlap(off, len, q->l1_offset,
				    ALIGN_UP((uint64_t)q->l1_size * 8, q->cluster_size)) ||
	       qcow2_ranges_overlap(off, len, q->rt_offset,
				    (uint64_t)q->rt_clusters << q->cluster_bits);
}

int qcow2_write_header_field(struct qcow2 *q, unsigned field, const void *buf, size_t len)
{
	int r = qcow2_pwrite(q, buf, len, field);

	if (r < 0)
		return qcow2_fail(q, r, "failed to update the image header");
	return 0;
}

bool qcow2_probe(const void *buf, uint64_t len)
{
	return len >= 4 && qcow2_get_be32(buf) == QCOW2_MAGIC;
}

const char *qcow2_last_error(const struct qcow2 *q)
{
	return q->error;
}

uint64_t qcow2_size(const struct qcow2 *q)
{
	return q->size;
}
