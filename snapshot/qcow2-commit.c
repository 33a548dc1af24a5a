// SPDX-License-Identifier: MIT
/*
 * Commit: copy every cluster the top image owns into its backing image,
 * make the backing image durable, and only then empty the top image. A
 * crash before the end leaves the chain reading the same data as before
 * (the top image still shadows the backing image); a crash while emptying
 * leaves leaks at worst.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2-internal.h"

/* How much is copied per read/write pair. */
#define COMMIT_CHUNK (1ull << 20)

static int raw_write(struct qcow2 *q, const uint8_t *buf, uint64_t len, uint64_t offset)
{
	while (len) {
		ssize_t n = pwrite(q->backing_fd, buf, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return qcow2_fail(q, neg_errno(), "failed to write backing file '%s': %m",
					  q->backing_name);
		}
		buf += n;
		len -= (uint64_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static int raw_zero(struct qcow2 *q, uint64_t len, uint64_t offset)
{
	_cleanup_free_ uint8_t *zeros = NULL;

	/* A hole reads as zeros and costs nothing; fall back to writing them. */
	if (fallocate(q->backing_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;
	zeros = calloc(1, MIN(len, COMMIT_CHUNK));
	if (!zeros)
		return -ENOMEM;
	while (len) {
		uint64_t n = MIN(len, COMMIT_CHUNK);
		int r = raw_write(q, zeros, n, offset);

		if (r < 0)
			return r;
		len -= n;
		offset += n;
	}
	return 0;
}

static int backing_failed(struct qcow2 *q, int r)
{
	return qcow2_fail_backing(q, r, q->backing->error);
}

/* Let the backing image cover the whole top image, as `qemu-img commit` does. */
static int backing_grow(struct qcow2 *q)
{
	struct qcow2 *b = q->backing;
	uint8_t be[8];
	int r;

	if (q->size <= q->backing_size)
		return 0;

	if (q->backing_kind == QCOW2_BACKING_RAW) {
		if (ftruncate(q->backing_fd, (off_t)q->size) < 0)
			return qcow2_fail(q, neg_errno(), "cannot grow backing file '%s': %m",
					  q->backing_name);
		q->backing_size = q->size;
		return 0;
	}

	if (q->size > ((uint64_t)b->l1_size << (b->cluster_bits + b->l2_bits)))
		return qcow2_fail(q, -ENOTSUP,
				  "backing file '%s' is smaller and its L1 table cannot grow",
				  q->backing_name);
	qcow2_put_be64(be, q->size);
	r = qcow2_write_header_field(b, HDR_SIZE, be, sizeof(be));
	if (r >= 0)
		r = qcow2_sync(b);
	if (r < 0)
		return backing_failed(q, r);
	b->size = q->backing_size = q->size;
	return 0;
}

static int copy_down(struct qcow2 *q)
{
	_cleanup_free_ uint8_t *buf = malloc(COMMIT_CHUNK);
	uint64_t off = 0;
	int r;

	if (!buf)
		return -ENOMEM;

	while (off < q->size) {
		enum qcow2_cluster_kind kind;
		uint64_t host, n;

		r = qcow2_map_layer(q, off, MIN(q->size - off, COMMIT_CHUNK), &kind, &host, &n);
		if (r < 0)
			return r;

		switch (kind) {
		case QCOW2_CLUSTER_DATA:
		case QCOW2_CLUSTER_DATA_COW:
			r = qcow2_pread(q->fd, buf, n, host);
			if (r < 0)
				return qcow2_fail(q, r, "failed to read '%s'", q->path);
			if (q->backing_kind == QCOW2_BACKING_RAW) {
				r = raw_write(q, buf, n, off);
			} else {
				r = qcow2_write(q->backing, buf, n, off);
				if (r < 0)
					r = backing_failed(q, r);
			}
			break;
		case QCOW2_CLUSTER_ZERO:
		case QCOW2_CLUSTER_ZERO_ALLOC:
			if (q->backing_kind == QCOW2_BACKING_RAW) {
				r = raw_zero(q, n, off);
			} else {
				r = qcow2_write_zeroes(q->backing, off, n);
				if (r < 0)
					r = backing_failed(q, r);
			}
			break;
		default:
			r = 0;
			break;
		}
		if (r < 0)
			return r;
		off += n;
	}

	/* The backing image holds everything durably before the top lets go. */
	if (q->backing_kind == QCOW2_BACKING_RAW) {
		if (fdatasync(q->backing_fd) < 0)
			return qcow2_fail(q, neg_errno(), "fdatasync failed on '%s'",
					  q->backing_name);
		return 0;
	}
	r = qcow2_flush(q->backing);
	return r < 0 ? backing_failed(q, r) : 0;
}

/*
 * Drop every reference of the top image: zero the L1 table on disk, sync,
 * and only then release the L2 tables and data clusters it pointed at.
 */
static int make_empty(struct qcow2 *q)
{
	const uint64_t per_l2 = 1ull << q->l2_bits;
	_cleanup_free_ uint64_t *old = NULL;
	_cleanup_free_ uint8_t *zeros = NULL;
	_cleanup_free_ uint8_t *table = NULL;
	int r;

	r = qcow2_flush(q);
	if (r < 0)
		return r;

	old = malloc(MAX(q->l1_size, 1u) * sizeof(*old));
	zeros = calloc(MAX(q->l1_size, 1u), 8);
	table = malloc(q->cluster_size);
	if (!old || !zeros || !table)
		return -ENOMEM;
	memcpy(old, q->l1, q->l1_size * sizeof(*old));

	r = qcow2_pwrite(q, zeros, q->l1_size * 8ull, q->l1_offset);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write the L1 table");
	memset(q->l1, 0, q->l1_size * sizeof(*q->l1));
	r = qcow2_sync(q);
	if (r < 0)
		return r;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2 = old[i] & QCOW2_OFFSET_MASK;

		if (!l2)
			continue;
		qcow2_cache_drop(&q->l2_cache, l2);
		r = qcow2_pread(q->fd, table, q->cluster_size, l2);
		if (r < 0)
			return qcow2_fail(q, r, "failed to read L2 table at 0x%" PRIx64, l2);
		for (uint64_t j = 0; j < per_l2; j++) {
			uint64_t guest = (((uint64_t)i << q->l2_bits) + j) << q->cluster_bits;
			enum qcow2_cluster_kind kind;
			uint64_t host;

			/* A damaged entry is left alone: a leak, not a wrong refcount. */
			if (qcow2_l2_decode(q, qcow2_get_be64(table + 8 * j), guest, &kind, &host) <
			    0)
				continue;
			if (host) {
				r = qcow2_free_cluster_now(q, host);
				if (r < 0)
					return r;
			}
		}
		r = qcow2_free_cluster_now(q, l2);
		if (r < 0)
			return r;
	}
	return qcow2_flush(q);
}

int qcow2_commit(struct qcow2 *q, struct qcow2_reason *reason)
{
	bool backing_rw;
	int r;

	q->error[0] = '\0';
	backing_rw = q->backing_kind == QCOW2_BACKING_RAW     ? q->backing_rw
		     : q->backing_kind == QCOW2_BACKING_QCOW2 ? q->backing->writable
							      : false;
	if (q->backing_kind == QCOW2_BACKING_NONE)
		r = qcow2_fail(q, -EINVAL, "the image has no backing file to commit into");
	else if (!q->writable || !backing_rw)
		r = qcow2_fail(q, -EROFS, "commit needs the image and its backing file writable");
	else
		r = qcow2_flush(q);
	if (r >= 0)
		r = backing_grow(q);
	if (r >= 0)
		r = copy_down(q);
	if (r >= 0)
		r = make_empty(q);

	if (r < 0 && reason)
		snprintf(reason->msg, sizeof(reason->msg), "%s",
			 q->error[0] ? q->error : strerror(-r));
	return r;
}
