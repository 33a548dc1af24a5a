// SPDX-License-Identifier: MIT
/*
 * Guest reads and writes: the data path on top of the mapping. Writes that
 * land in clusters this image owns go in place; the others get a new
 * cluster, filled with the old contents (from this image, the backing
 * chain, or zeros) around the written part, so each new cluster costs one
 * write. Contiguous clusters are merged into one pwrite.
 */
#include <inttypes.h>
#include <string.h>

#include "qcow2-internal.h"

/* Beyond this many clusters waiting to be freed, flush to release them. */
enum { PENDING_FREE_FLUSH = 4096 };

static int check_range(struct qcow2 *q, uint64_t offset, uint64_t len, bool write)
{
	q->error[0] = '\0';
	if (write && !q->writable)
		return qcow2_fail(q, -EROFS, "image is read-only");
	if (!range_within(offset, len, q->size))
		return qcow2_fail(q, -EINVAL,
				  "range 0x%" PRIx64 "+%" PRIu64 " is outside the disk (%" PRIu64
				  " bytes)",
				  offset, len, q->size);
	return 0;
}

int qcow2_backing_read(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset)
{
	uint64_t avail = offset < q->backing_size ? MIN(len, q->backing_size - offset) : 0;
	int r = 0;

	switch (q->backing_kind) {
	case QCOW2_BACKING_RAW:
		r = qcow2_pread(q->backing_fd, buf, avail, offset);
		if (r < 0)
			return qcow2_fail(q, r, "failed to read backing file '%s'",
					  q->backing_name);
		break;
	case QCOW2_BACKING_QCOW2:
		r = avail ? qcow2_read(q->backing, buf, avail, offset) : 0;
		if (r < 0)
			return qcow2_fail_backing(q, r, q->backing->error);
		break;
	default:
		avail = 0;
		break;
	}
	/* Past the end of the backing image (or without one) the disk reads zeros. */
	memset((uint8_t *)buf + avail, 0, len - avail);
	return 0;
}

int qcow2_read(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset)
{
	uint8_t *p = buf;
	int r;

	r = check_range(q, offset, len, false);
	if (r < 0)
		return r;

	while (len) {
		enum qcow2_cluster_kind kind;
		uint64_t host, n;

		r = qcow2_map_layer(q, offset, len, &kind, &host, &n);
		if (r < 0)
			return r;

		switch (kind) {
		case QCOW2_CLUSTER_DATA:
		case QCOW2_CLUSTER_DATA_COW:
			r = qcow2_pread(q->fd, p, n, host);
			if (r < 0)
				return qcow2_fail(q, r, "failed to read '%s'", q->path);
			break;
		case QCOW2_CLUSTER_UNALLOCATED:
			r = qcow2_backing_read(q, p, n, offset);
			if (r < 0)
				return r;
			break;
		default:
			memset(p, 0, n);
			break;
		}
		p += n;
		offset += n;
		len -= n;
	}
	return 0;
}

/* Guest data waiting to go out in one pwrite: contiguous on both sides. */
struct run {
	uint64_t host;
	const uint8_t *buf;
	uint64_t len;
};

static int run_flush(struct qcow2 *q, struct run *run)
{
	int r;

	if (!run->len)
		return 0;
	r = qcow2_pwrite(q, run->buf, run->len, run->host);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write '%s'", q->path);
	q->deps_unsynced = true;
	run->len = 0;
	return 0;
}

static int run_add(struct qcow2 *q, struct run *run, uint64_t host, const uint8_t *buf,
		   uint64_t len)
{
	int r;

	if (run->len && run->host + run->len == host && run->buf + run->len == buf) {
		run->len += len;
		return 0;
	}
	r = run_flush(q, run);
	if (r < 0)
		return r;
	*run = (struct run){.host = host, .buf = buf, .len = len};
	return 0;
}

/* True when the guest cluster at `guest` would read zeros if left unallocated. */
static bool backing_is_zero(const struct qcow2 *q, uint64_t guest)
{
	return q->backing_kind == QCOW2_BACKING_NONE || guest >= q->backing_size;
}

/* A cluster we are about to overwrite in place must be plausible. */
static int check_in_place(struct qcow2 *q, uint64_t host, uint64_t guest)
{
	if (qcow2_overlaps_metadata(q, host, q->cluster_size) ||
	    host >= MAX(q->file_size, q->alloc_end))
		return qcow2_fail(q, -EIO,
				  "data cluster 0x%" PRIx64 " for guest offset 0x%" PRIx64
				  " overlaps metadata or lies past the end of the file",
				  host, guest);
	return 0;
}

/*
 * Write [in, in + n) of one guest cluster, whose L2 entry is t[idx].
 * In-place data joins the run; the run is flushed before anything is
 * written out of order with it.
 */
static int write_cluster(struct qcow2 *q, struct qcow2_table *t, uint64_t idx, uint64_t guest,
			 uint64_t in, const uint8_t *buf, uint64_t n, struct run *run)
{
	const bool full = n == q->cluster_size;
	enum qcow2_cluster_kind kind;
	uint64_t host, fresh;
	int r;

	r = qcow2_l2_decode(q, qcow2_l2_entry(t, idx), guest, &kind, &host);
	if (r < 0)
		return r;

	if (kind == QCOW2_CLUSTER_DATA) {
		r = check_in_place(q, host, guest);
		if (r < 0)
			return r;
		return run_add(q, run, host + in, buf, n);
	}

	/*
	 * Old contents of zeros, and a new cluster in space never written
	 * (past the end of the file, which reads as zeros): only the new
	 * bytes need writing. The common case of a fresh image.
	 */
	if (!full &&
	    (kind == QCOW2_CLUSTER_ZERO ||
	     (kind == QCOW2_CLUSTER_ZERO_ALLOC && !(qcow2_l2_entry(t, idx) & QCOW2_OFLAG_COPIED)) ||
	     (kind == QCOW2_CLUSTER_UNALLOCATED && backing_is_zero(q, guest)))) {
		uint64_t end = q->file_size;

		r = qcow2_alloc_cluster(q, &fresh);
		if (r < 0)
			return r;
		if (fresh >= end) {
			r = run_add(q, run, fresh + in, buf, n);
			if (r < 0)
				return r;
			goto installed;
		}
		/* Reused space may hold old bytes: write the whole cluster. */
		memset(q->bounce, 0, q->cluster_size);
		memcpy(q->bounce + in, buf, n);
		r = run_flush(q, run);
		if (r >= 0)
			r = qcow2_pwrite(q, q->bounce, q->cluster_size, fresh);
		if (r < 0)
			return qcow2_fail(q, r, "failed to write '%s'", q->path);
		q->deps_unsynced = true;
		goto installed;
	}

	/* Build the whole cluster for partial writes: old contents around new bytes. */
	if (!full) {
		switch (kind) {
		case QCOW2_CLUSTER_DATA_COW:
			r = qcow2_pread(q->fd, q->bounce, q->cluster_size, host);
			if (r < 0)
				return qcow2_fail(q, r, "failed to read '%s'", q->path);
			break;
		case QCOW2_CLUSTER_UNALLOCATED:
			r = qcow2_backing_read(q, q->bounce, q->cluster_size, guest);
			if (r < 0)
				return r;
			break;
		default:
			memset(q->bounce, 0, q->cluster_size);
			break;
		}
		memcpy(q->bounce + in, buf, n);
	}

	if (kind == QCOW2_CLUSTER_ZERO_ALLOC && (qcow2_l2_entry(t, idx) & QCOW2_OFLAG_COPIED)) {
		/* A preallocated zero cluster of ours: fill it where it is. */
		r = check_in_place(q, host, guest);
		if (r < 0)
			return r;
		fresh = host;
		host = 0;
	} else {
		r = qcow2_alloc_cluster(q, &fresh);
		if (r < 0)
			return r;
	}

	/* Rule 2: the data goes out before the entry can (the L2 table is cached). */
	if (full) {
		r = run_add(q, run, fresh, buf, n);
	} else {
		r = run_flush(q, run);
		if (r >= 0)
			r = qcow2_pwrite(q, q->bounce, q->cluster_size, fresh);
		if (r < 0)
			r = qcow2_fail(q, r, "failed to write '%s'", q->path);
		q->deps_unsynced = true;
	}
	if (r < 0)
		return r;

installed:
	qcow2_l2_set(t, idx, fresh | QCOW2_OFLAG_COPIED);
	/* Rule 4: the old cluster is released once the new entry is durable. */
	if (host && kind != QCOW2_CLUSTER_UNALLOCATED)
		return qcow2_free_cluster_later(q, host);
	return 0;
}

int qcow2_write(struct qcow2 *q, const void *buf, uint64_t len, uint64_t offset)
{
	const uint8_t *p = buf;
	struct run run = {};
	int r;

	r = check_range(q, offset, len, true);
	if (r < 0)
		return r;

	while (len) {
		uint64_t l1_index = offset >> (q->cluster_bits + q->l2_bits);
		struct qcow2_table *t;

		/* Loading another table may write back this one: the run goes first. */
		r = run_flush(q, &run);
		if (r < 0)
			return r;
		r = qcow2_l2_get(q, l1_index, true, &t);
		if (r < 0)
			return r;

		do {
			uint64_t in = offset & (q->cluster_size - 1);
			uint64_t n = MIN(len, q->cluster_size - in);
			uint64_t idx = (offset >> q->cluster_bits) & ((1ull << q->l2_bits) - 1);

			r = write_cluster(q, t, idx, offset - in, in, p, n, &run);
			if (r < 0) {
				/* Earlier clusters' entries are set: their data must follow. */
				(void)!run_flush(q, &run);
				return r;
			}
			p += n;
			offset += n;
			len -= n;
		} while (len && offset >> (q->cluster_bits + q->l2_bits) == l1_index);
	}
	return run_flush(q, &run);
}

/* Write real zeros over part of a cluster, unless it reads as zeros already. */
static int zero_partial(struct qcow2 *q, uint64_t offset, uint64_t n)
{
	_cleanup_free_ uint8_t *zeros = NULL;
	enum qcow2_cluster_kind kind;
	uint64_t host, mapped;
	int r;

	r = qcow2_map_layer(q, offset, n, &kind, &host, &mapped);
	if (r < 0)
		return r;
	if (kind == QCOW2_CLUSTER_ZERO || kind == QCOW2_CLUSTER_ZERO_ALLOC ||
	    (kind == QCOW2_CLUSTER_UNALLOCATED && backing_is_zero(q, offset)))
		return 0;

	zeros = calloc(1, n);
	if (!zeros)
		return -ENOMEM;
	return qcow2_write(q, zeros, n, offset);
}

/*
 * Replace whole clusters by zero clusters (zero) or drop them (discard,
 * which still reads zeros: a zero cluster where a backing image would show
 * through). Partial clusters: zero writes zeros, discard leaves them.
 */
static int zero_or_discard(struct qcow2 *q, uint64_t offset, uint64_t len, bool discard)
{
	int r;

	r = check_range(q, offset, len, true);
	if (r < 0)
		return r;

	for (; len;) {
		uint64_t in = offset & (q->cluster_size - 1);
		uint64_t n = MIN(len, q->cluster_size - in);
		uint64_t guest = offset - in;
		bool whole = in == 0 && (n == q->cluster_size || offset + n == q->size);
		uint64_t l1_index = offset >> (q->cluster_bits + q->l2_bits);
		uint64_t idx = (offset >> q->cluster_bits) & ((1ull << q->l2_bits) - 1);
		enum qcow2_cluster_kind kind;
		struct qcow2_table *t;
		uint64_t host, entry;

		offset += n;
		len -= n;

		if (!whole) {
			r = discard ? 0 : zero_partial(q, offset - n, n);
			if (r < 0)
				return r;
			continue;
		}
		if (!(q->l1[l1_index] & QCOW2_OFFSET_MASK) && backing_is_zero(q, guest))
			continue; /* no table and nothing below: zeros already */

		r = qcow2_l2_get(q, l1_index, true, &t);
		if (r < 0)
			return r;
		r = qcow2_l2_decode(q, qcow2_l2_entry(t, idx), guest, &kind, &host);
		if (r < 0)
			return r;

		entry = (discard && backing_is_zero(q, guest)) ? 0 : QCOW2_OFLAG_ZERO;
		if ((kind == QCOW2_CLUSTER_UNALLOCATED && backing_is_zero(q, guest)) ||
		    (kind == QCOW2_CLUSTER_ZERO && entry == QCOW2_OFLAG_ZERO))
			continue;

		qcow2_l2_set(t, idx, entry);
		/* Rule 4: freed only once the new entry is on disk. */
		if (host) {
			r = qcow2_free_cluster_later(q, host);
			if (r < 0)
				return r;
		}
	}

	if (q->nr_pending_free > PENDING_FREE_FLUSH)
		return qcow2_metadata_flush(q);
	return 0;
}

int qcow2_write_zeroes(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	return zero_or_discard(q, offset, len, false);
}

int qcow2_discard(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	return zero_or_discard(q, offset, len, true);
}

int qcow2_flush(struct qcow2 *q)
{
	int r;

	q->error[0] = '\0';
	if (!q->writable)
		return 0;

	r = qcow2_metadata_flush(q);
	if (r < 0)
		return r;
	if (q->unsynced)
		return qcow2_sync(q);
	return 0;
}
