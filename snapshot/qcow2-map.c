// SPDX-License-Identifier: MIT
/*
 * Guest-to-host mapping: the L1 table (in memory, written back in ranges),
 * the L2 table cache, decoding of L2 entries, and the ordered write-back
 * of all cached metadata (see the order in qcow2-internal.h).
 */
#include <inttypes.h>
#include <string.h>

#include "qcow2-internal.h"

static int decode(const struct qcow2 *q, uint64_t e, enum qcow2_cluster_kind *ret_kind,
		  uint64_t *ret_host, const char **ret_what)
{
	uint64_t host = e & QCOW2_OFFSET_MASK;

	if (e & QCOW2_OFLAG_COMPRESSED) {
		*ret_what = "compressed cluster (compression is not supported)";
		return -ENOTSUP;
	}
	if (e & QCOW2_L2_RESERVED) {
		*ret_what = "L2 entry with reserved bits set";
		return -EIO;
	}
	if (!IS_ALIGNED(host, q->cluster_size)) {
		*ret_what = "L2 entry with an unaligned offset";
		return -EIO;
	}
	if (e & QCOW2_OFLAG_ZERO) {
		if (q->version < 3) {
			*ret_what = "zero flag in a version 2 image";
			return -EIO;
		}
		*ret_kind = host ? QCOW2_CLUSTER_ZERO_ALLOC : QCOW2_CLUSTER_ZERO;
	} else if (!host) {
		if (e & QCOW2_OFLAG_COPIED) {
			*ret_what = "L2 entry pointing at the header";
			return -EIO;
		}
		*ret_kind = QCOW2_CLUSTER_UNALLOCATED;
	} else {
		*ret_kind = (e & QCOW2_OFLAG_COPIED) ? QCOW2_CLUSTER_DATA : QCOW2_CLUSTER_DATA_COW;
	}
	*ret_host = host;
	return 0;
}

int qcow2_l2_decode(struct qcow2 *q, uint64_t entry, uint64_t guest,
		    enum qcow2_cluster_kind *ret_kind, uint64_t *ret_host)
{
	const char *what = NULL;
	int r = decode(q, entry, ret_kind, ret_host, &what);

	if (r < 0)
		return qcow2_fail(q, r, "%s at guest offset 0x%" PRIx64 " (entry 0x%016" PRIx64 ")",
				  what, guest, entry);
	return 0;
}

static void l1_mark_dirty(struct qcow2 *q, uint32_t i)
{
	if (q->l1_dirty_lo == q->l1_dirty_hi) {
		q->l1_dirty_lo = i;
		q->l1_dirty_hi = i + 1;
	} else {
		q->l1_dirty_lo = MIN(q->l1_dirty_lo, i);
		q->l1_dirty_hi = MAX(q->l1_dirty_hi, i + 1);
	}
}

int qcow2_l2_write(struct qcow2 *q, struct qcow2_table *t)
{
	int r;

	/* Rules 1 and 2: the refcounts and data it points at reach the disk first. */
	r = qcow2_refcount_write_dirty(q);
	if (r < 0)
		return r;
	if (q->deps_unsynced) {
		r = qcow2_sync(q);
		if (r < 0)
			return r;
	}

	r = qcow2_pwrite(q, t->data, q->cluster_size, t->offset);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write L2 table at 0x%" PRIx64, t->offset);
	q->l2_unsynced = true;
	t->dirty = false;
	return 0;
}

/* A slot in the L2 cache, its old table written back first if dirty. */
static int l2_slot(struct qcow2 *q, struct qcow2_table **ret_slot)
{
	struct qcow2_table *t = qcow2_cache_victim(&q->l2_cache);
	int r;

	if (t->offset && t->dirty) {
		r = qcow2_l2_write(q, t);
		if (r < 0)
			return r;
	}
	t->offset = 0;
	t->dirty = false;
	*ret_slot = t;
	return 0;
}

/* A table shared with a snapshot would need copying first; refuse instead. */
static int l2_check_owned(struct qcow2 *q, uint64_t l1_index)
{
	uint64_t off = q->l1[l1_index] & QCOW2_OFFSET_MASK;
	uint64_t refcount;
	int r;

	if (q->l1[l1_index] & QCOW2_OFLAG_COPIED)
		return 0;

	r = qcow2_refcount_get(q, off >> q->cluster_bits, &refcount);
	if (r < 0)
		return r;
	if (refcount != 1)
		return qcow2_fail(q, -EIO, "L2 table at 0x%" PRIx64 " has refcount %" PRIu64, off,
				  refcount);
	/* Ours alone after all: fix the flag, as `qemu-img check -r` would. */
	q->l1[l1_index] |= QCOW2_OFLAG_COPIED;
	l1_mark_dirty(q, (uint32_t)l1_index);
	return 0;
}

int qcow2_l2_get(struct qcow2 *q, uint64_t l1_index, bool alloc, struct qcow2_table **ret_table)
{
	uint64_t off = q->l1[l1_index] & QCOW2_OFFSET_MASK;
	struct qcow2_table *t;
	int r;

	if (!off) {
		if (!alloc) {
			*ret_table = NULL;
			return 0;
		}
		r = qcow2_alloc_cluster(q, &off);
		if (r < 0)
			return r;
		r = l2_slot(q, &t);
		if (r < 0)
			return r;
		/*
		 * A new table lives in the cache, dirty; the flush writes it
		 * before the L1 entry that points at it (rule 3).
		 */
		memset(t->data, 0, q->cluster_size);
		t->offset = off;
		t->dirty = true;
		qcow2_cache_touch(&q->l2_cache, t);
		q->l1[l1_index] = off | QCOW2_OFLAG_COPIED;
		l1_mark_dirty(q, (uint32_t)l1_index);
		*ret_table = t;
		return 0;
	}

	if (alloc) {
		r = l2_check_owned(q, l1_index);
		if (r < 0)
			return r;
	}

	t = qcow2_cache_find(&q->l2_cache, off);
	if (t) {
		*ret_table = t;
		return 0;
	}

	r = l2_slot(q, &t);
	if (r < 0)
		return r;
	r = qcow2_pread(q->fd, t->data, q->cluster_size, off);
	if (r < 0)
		return qcow2_fail(q, r, "failed to read L2 table at 0x%" PRIx64, off);
	t->offset = off;
	qcow2_cache_touch(&q->l2_cache, t);
	*ret_table = t;
	return 0;
}

static int l1_write_dirty(struct qcow2 *q)
{
	uint32_t lo = q->l1_dirty_lo, hi = q->l1_dirty_hi;
	_cleanup_free_ uint8_t *buf = NULL;
	int r;

	if (lo == hi)
		return 0;

	/* Rule 3: the L2 tables these entries point at are durable first. */
	if (q->l2_unsynced || q->deps_unsynced) {
		r = qcow2_sync(q);
		if (r < 0)
			return r;
	}

	buf = malloc((size_t)(hi - lo) * 8);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = lo; i < hi; i++)
		qcow2_put_be64(buf + (i - lo) * 8ull, q->l1[i]);
	r = qcow2_pwrite(q, buf, (size_t)(hi - lo) * 8, q->l1_offset + lo * 8ull);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write the L1 table");
	q->l1_dirty_lo = q->l1_dirty_hi = 0;
	return 0;
}

int qcow2_metadata_flush(struct qcow2 *q)
{
	int r;

	if (!q->writable)
		return 0;

	/* Rule 1: refcount blocks first... */
	r = qcow2_refcount_write_dirty(q);
	if (r < 0)
		return r;

	/* ...then L2 tables (qcow2_l2_write syncs before the first one)... */
	for (unsigned i = 0; i < q->l2_cache.nr_slots; i++) {
		struct qcow2_table *t = &q->l2_cache.slots[i];

		if (t->offset && t->dirty) {
			r = qcow2_l2_write(q, t);
			if (r < 0)
				return r;
		}
	}

	/* ...then the L1 entries pointing at them (rule 3). */
	r = l1_write_dirty(q);
	if (r < 0)
		return r;

	/* Rule 4: removed references are durable before their refcounts drop. */
	if (q->nr_pending_free) {
		if (q->unsynced) {
			r = qcow2_sync(q);
			if (r < 0)
				return r;
		}
		r = qcow2_refcount_apply_pending(q);
		if (r < 0)
			return r;
		r = qcow2_refcount_write_dirty(q);
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_map_layer(struct qcow2 *q, uint64_t offset, uint64_t len,
		    enum qcow2_cluster_kind *ret_kind, uint64_t *ret_host, uint64_t *ret_len)
{
	const uint64_t per_l2 = 1ull << q->l2_bits;
	uint64_t l1_index = offset >> (q->cluster_bits + q->l2_bits);
	uint64_t l2_index = (offset >> q->cluster_bits) & (per_l2 - 1);
	uint64_t in_cluster = offset & (q->cluster_size - 1);
	enum qcow2_cluster_kind kind;
	struct qcow2_table *t;
	uint64_t host, n;
	int r;

	if (l1_index >= q->l1_size)
		return qcow2_fail(q, -EIO, "guest offset 0x%" PRIx64 " is past the L1 table",
				  offset);

	r = qcow2_l2_get(q, l1_index, false, &t);
	if (r < 0)
		return r;

	if (!t) {
		/* No L2 table: the whole range it would describe is unallocated. */
		n = ((per_l2 - l2_index) << q->cluster_bits) - in_cluster;
		*ret_kind = QCOW2_CLUSTER_UNALLOCATED;
		*ret_host = 0;
		*ret_len = MIN(n, len);
		return 0;
	}

	r = qcow2_l2_decode(q, qcow2_l2_entry(t, l2_index), offset, &kind, &host);
	if (r < 0)
		return r;

	/* Extend the run over following clusters of the same kind (and place). */
	n = q->cluster_size - in_cluster;
	for (uint64_t i = l2_index + 1; n < len && i < per_l2; i++) {
		enum qcow2_cluster_kind k;
		uint64_t h;
		const char *what;

		if (decode(q, qcow2_l2_entry(t, i), &k, &h, &what) < 0 || k != kind)
			break;
		if ((kind == QCOW2_CLUSTER_DATA || kind == QCOW2_CLUSTER_DATA_COW) &&
		    h != host + ((i - l2_index) << q->cluster_bits))
			break;
		n += q->cluster_size;
	}

	*ret_kind = kind;
	*ret_host = host ? host + in_cluster : 0;
	*ret_len = MIN(n, len);
	return 0;
}

static int map_chain(struct qcow2 *q, uint64_t offset, uint64_t len, struct qcow2_extent *ext)
{
	enum qcow2_cluster_kind kind;
	uint64_t host, n;
	int r;

	r = qcow2_map_layer(q, offset, len, &kind, &host, &n);
	if (r < 0)
		return r;

	*ext = (struct qcow2_extent){.kind = QCOW2_EXTENT_ZERO, .fd = -1, .len = n};
	switch (kind) {
	case QCOW2_CLUSTER_DATA:
	case QCOW2_CLUSTER_DATA_COW:
		ext->kind = QCOW2_EXTENT_DATA;
		ext->fd = q->fd;
		ext->host_offset = host;
		return 0;
	case QCOW2_CLUSTER_ZERO:
	case QCOW2_CLUSTER_ZERO_ALLOC:
		return 0;
	default:
		break;
	}

	if (q->backing_kind == QCOW2_BACKING_NONE || offset >= q->backing_size)
		return 0; /* zeros past the end of the backing image */
	n = MIN(n, q->backing_size - offset);
	ext->len = n;

	if (q->backing_kind == QCOW2_BACKING_RAW) {
		ext->kind = QCOW2_EXTENT_DATA;
		ext->fd = q->backing_fd;
		ext->host_offset = offset;
		ext->depth = 1;
		return 0;
	}

	r = map_chain(q->backing, offset, n, ext);
	if (r < 0)
		return qcow2_fail_backing(q, r, q->backing->error);
	ext->depth++;
	return 0;
}

int qcow2_map(struct qcow2 *q, uint64_t offset, uint64_t len, unsigned flags,
	      struct qcow2_extent *ret_extent)
{
	struct qcow2_extent ext;
	enum qcow2_cluster_kind kind;
	uint64_t host, n;
	int r;

	q->error[0] = '\0';
	if (len == 0 || !range_within(offset, len, q->size))
		return qcow2_fail(q, -EINVAL, "range 0x%" PRIx64 "+%" PRIu64 " is outside the disk",
				  offset, len);

	if (!(flags & QCOW2_MAP_WRITE)) {
		r = map_chain(q, offset, len, &ext);
		if (r < 0)
			return r;
		*ret_extent = ext;
		return 0;
	}

	if (!q->writable)
		return qcow2_fail(q, -EROFS, "image is read-only");
	r = qcow2_map_layer(q, offset, len, &kind, &host, &n);
	if (r < 0)
		return r;
	ext = (struct qcow2_extent){.kind = QCOW2_EXTENT_NEEDS_ALLOC, .fd = -1, .len = n};
	if (kind == QCOW2_CLUSTER_DATA && !qcow2_overlaps_metadata(q, host, n)) {
		ext.kind = QCOW2_EXTENT_DATA;
		ext.fd = q->fd;
		ext.host_offset = host;
	}
	*ret_extent = ext;
	return 0;
}
