// SPDX-License-Identifier: MIT
/*
 * Refcounts and cluster allocation.
 *
 * The refcount table lives in memory and is written through: it changes
 * only when a refcount block is added (once per few GiB of data) or the
 * table grows, and both are ordered with an fdatasync, so that the table
 * never points at a block whose contents are not on disk yet. Refcount
 * blocks are cached write-back: writing one early is always safe, since it
 * only ever holds raised counts for clusters not yet referenced on disk
 * (a leak at worst) or counts lowered after their reference was removed
 * on disk (the pending-free list enforces that).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2-internal.h"

uint64_t qcow2_rb_get(unsigned order, const uint8_t *blk, uint64_t i)
{
	switch (order) {
	case 0:
	case 1:
	case 2: {
		/* Sub-byte widths count from the least significant bit. */
		unsigned bits = 1u << order;
		uint64_t bit = i * bits;

		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 3:
		return blk[i];
	case 4:
		return qcow2_get_be16(blk + 2 * i);
	case 5:
		return qcow2_get_be32(blk + 4 * i);
	default:
		return qcow2_get_be64(blk + 8 * i);
	}
}

void qcow2_rb_set(unsigned order, uint8_t *blk, uint64_t i, uint64_t v)
{
	switch (order) {
	case 0:
	case 1:
	case 2: {
		unsigned bits = 1u << order;
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));

		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
		break;
	}
	case 3:
		blk[i] = (uint8_t)v;
		break;
	case 4:
		blk[2 * i] = (uint8_t)(v >> 8);
		blk[2 * i + 1] = (uint8_t)v;
		break;
	case 5:
		qcow2_put_be32(blk + 4 * i, (uint32_t)v);
		break;
	default:
		qcow2_put_be64(blk + 8 * i, v);
		break;
	}
}

int qcow2_extend_file(struct qcow2 *q)
{
	if (q->alloc_end <= q->file_size)
		return 0;
	/*
	 * A refcount block claiming clusters past the end of the file is
	 * reported as corruption by qemu-img check, so the file grows before
	 * any such block is written.
	 */
	if (ftruncate(q->fd, (off_t)q->alloc_end) < 0)
		return qcow2_fail(q, neg_errno(), "failed to extend the image file");
	q->file_size = q->alloc_end;
	q->unsynced = true;
	return 0;
}

static int block_write(struct qcow2 *q, struct qcow2_table *t)
{
	int r;

	r = qcow2_extend_file(q);
	if (r < 0)
		return r;

	r = qcow2_pwrite(q, t->data, q->cluster_size, t->offset);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write refcount block at 0x%" PRIx64, t->offset);

	q->deps_unsynced = true;
	t->dirty = false;
	return 0;
}

int qcow2_refcount_write_dirty(struct qcow2 *q)
{
	int r;

	for (unsigned i = 0; i < q->rb_cache.nr_slots; i++) {
		struct qcow2_table *t = &q->rb_cache.slots[i];

		if (t->offset && t->dirty) {
			r = block_write(q, t);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int cache_ready(struct qcow2 *q)
{
	if (q->rb_cache.slots)
		return 0;
	return qcow2_cache_init(&q->rb_cache, QCOW2_RB_CACHE_BYTES, q->cluster_size);
}

/* A free slot in the refcount block cache, written back if it was dirty. */
static int block_slot(struct qcow2 *q, struct qcow2_table **ret_slot)
{
	struct qcow2_table *t;
	int r;

	r = cache_ready(q);
	if (r < 0)
		return r;

	t = qcow2_cache_victim(&q->rb_cache);
	if (t->offset && t->dirty) {
		r = block_write(q, t);
		if (r < 0)
			return r;
	}
	t->offset = 0;
	t->dirty = false;
	*ret_slot = t;
	return 0;
}

/* The refcount block for a refcount table index that has one. */
static int block_load(struct qcow2 *q, uint64_t rt_index, struct qcow2_table **ret_block)
{
	uint64_t off = q->rt[rt_index];
	struct qcow2_table *t;
	int r;

	r = cache_ready(q);
	if (r < 0)
		return r;

	t = qcow2_cache_find(&q->rb_cache, off);
	if (t) {
		*ret_block = t;
		return 0;
	}

	r = block_slot(q, &t);
	if (r < 0)
		return r;

	r = qcow2_pread(q->fd, t->data, q->cluster_size, off);
	if (r < 0)
		return qcow2_fail(q, r, "failed to read refcount block at 0x%" PRIx64, off);

	t->offset = off;
	qcow2_cache_touch(&q->rb_cache, t);
	*ret_block = t;
	return 0;
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *ret_refcount)
{
	uint64_t idx = cluster >> q->rb_bits;
	struct qcow2_table *t;
	int r;

	if (idx >= q->rt_entries || q->rt[idx] == 0) {
		*ret_refcount = 0;
		return 0;
	}

	r = block_load(q, idx, &t);
	if (r < 0)
		return r;

	*ret_refcount =
	    qcow2_rb_get(q->refcount_order, t->data, cluster & ((1ull << q->rb_bits) - 1));
	return 0;
}

/*
 * Add the missing refcount block for table index `idx` at cluster `c`,
 * which lies in the range the block describes and is therefore free: the
 * block counts itself, so no other block has to change.
 */
static int block_create(struct qcow2 *q, uint64_t idx, uint64_t c)
{
	uint64_t off = c << q->cluster_bits;
	struct qcow2_table *t;
	uint8_t be[8];
	int r;

	r = block_slot(q, &t);
	if (r < 0)
		return r;

	memset(t->data, 0, q->cluster_size);
	qcow2_rb_set(q->refcount_order, t->data, c & ((1ull << q->rb_bits) - 1), 1);

	r = qcow2_pwrite(q, t->data, q->cluster_size, off);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write a new refcount block");
	q->alloc_end = MAX(q->alloc_end, off + q->cluster_size);

	/* The block must be durable before the table points at it. */
	r = qcow2_sync(q);
	if (r < 0)
		return r;

	qcow2_put_be64(be, off);
	r = qcow2_pwrite(q, be, sizeof(be), q->rt_offset + idx * 8);
	if (r < 0)
		return qcow2_fail(q, r, "failed to update the refcount table");
	q->deps_unsynced = true;

	q->rt[idx] = off;
	t->offset = off;
	qcow2_cache_touch(&q->rb_cache, t);
	return 0;
}

/*
 * Replace the refcount table by a larger one, so that it covers cluster
 * `need`. The new table and the refcount blocks describing it go past
 * everything in use, at cluster `start`; they describe themselves, so the
 * old blocks do not change. Order: new blocks and table, sync, header,
 * sync, and only then free the old table (nothing points at it anymore).
 */
static int table_grow(struct qcow2 *q, uint64_t need)
{
	const uint64_t per_block = 1ull << q->rb_bits;
	const uint64_t per_cluster = q->cluster_size / 8;
	const uint64_t old_offset = q->rt_offset, old_clusters = q->rt_clusters;
	uint64_t start, nb_blocks = 1, nb_table = 1, end, entries;
	_cleanup_free_ uint8_t *blocks = NULL;
	_cleanup_free_ uint8_t *table = NULL;
	_cleanup_free_ uint64_t *rt = NULL;
	uint8_t hdr[12];
	int r;

	start =
	    MAX(q->rt_entries << q->rb_bits, qcow2_clusters(q, MAX(q->alloc_end, q->file_size)));

	/* The table's size depends on where it ends: iterate to a fixed point. */
	for (;;) {
		uint64_t want, t_cl, b_cl;

		end = start + nb_blocks + nb_table;
		want = MAX(qcow2_div_round_up(end, per_block), (need >> q->rb_bits) + 1);
		/* Grow by half at least, so that growth stays rare. */
		want = MAX(want, q->rt_entries + q->rt_entries / 2);
		t_cl = qcow2_div_round_up(want, per_cluster);
		b_cl = (end - 1) / per_block - start / per_block + 1;
		if (t_cl <= nb_table && b_cl <= nb_blocks)
			break;
		nb_table = MAX(nb_table, t_cl);
		nb_blocks = MAX(nb_blocks, b_cl);
	}

	if (nb_table * q->cluster_size > QCOW2_MAX_RT_BYTES)
		return qcow2_fail(q, -ENOSPC, "the refcount table cannot grow past %llu MiB",
				  QCOW2_MAX_RT_BYTES >> 20);
	if (end > (1ull << (56 - q->cluster_bits)))
		return qcow2_fail(q, -ENOSPC, "the image file cannot grow past 2^56 bytes");

	entries = nb_table * per_cluster;
	blocks = calloc(nb_blocks, q->cluster_size);
	table = calloc(nb_table, q->cluster_size);
	rt = calloc(entries, sizeof(*rt));
	if (!blocks || !table || !rt)
		return -ENOMEM;

	for (uint64_t x = start; x < end; x++) {
		uint64_t b = x / per_block - start / per_block;

		qcow2_rb_set(q->refcount_order, blocks + b * q->cluster_size, x % per_block, 1);
	}
	memcpy(rt, q->rt, q->rt_entries * sizeof(*rt));
	for (uint64_t b = 0; b < nb_blocks; b++)
		rt[start / per_block + b] = (start + b) << q->cluster_bits;
	for (uint64_t i = 0; i < entries; i++)
		qcow2_put_be64(table + i * 8, rt[i]);

	r = qcow2_pwrite(q, blocks, nb_blocks * q->cluster_size, start << q->cluster_bits);
	if (r >= 0)
		r = qcow2_pwrite(q, table, nb_table * q->cluster_size,
				 (start + nb_blocks) << q->cluster_bits);
	if (r < 0)
		return qcow2_fail(q, r, "failed to write the grown refcount table");
	q->alloc_end = MAX(q->alloc_end, end << q->cluster_bits);

	r = qcow2_sync(q);
	if (r < 0)
		return r;

	/* Offset and size are adjacent: one write inside one sector switches both. */
	qcow2_put_be64(hdr, (start + nb_blocks) << q->cluster_bits);
	qcow2_put_be32(hdr + 8, (uint32_t)nb_table);
	r = qcow2_write_header_field(q, HDR_RT_OFFSET, hdr, sizeof(hdr));
	if (r < 0)
		return r;

	r = qcow2_sync(q);
	if (r < 0)
		return r;

	free(q->rt);
	q->rt = TAKE_PTR(rt);
	q->rt_entries = entries;
	q->rt_offset = (start + nb_blocks) << q->cluster_bits;
	q->rt_clusters = (uint32_t)nb_table;

	for (uint64_t i = 0; i < old_clusters; i++) {
		r = qcow2_free_cluster_now(q, old_offset + (i << q->cluster_bits));
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *ret_offset)
{
	const uint64_t per_block = 1ull << q->rb_bits;
	const uint64_t limit = 1ull << (56 - q->cluster_bits);
	uint64_t c = q->free_hint;
	int r;

	for (;;) {
		uint64_t idx = c >> q->rb_bits;
		struct qcow2_table *t;

		if (c >= limit)
			return qcow2_fail(q, -ENOSPC, "the image file cannot grow past 2^56 bytes");

		if (idx >= q->rt_entries) {
			r = table_grow(q, c);
			if (r < 0)
				return r;
			continue;
		}

		if (q->rt[idx] == 0) {
			r = block_create(q, idx, c);
			if (r < 0)
				return r;
			c++;
			continue;
		}

		r = block_load(q, idx, &t);
		if (r < 0)
			return r;

		for (uint64_t i = c % per_block; i < per_block; i++, c++) {
			uint64_t off = c << q->cluster_bits;

			if (qcow2_rb_get(q->refcount_order, t->data, i) != 0)
				continue;
			/* A damaged image could claim its own tables are free. */
			if (qcow2_overlaps_metadata(q, off, q->cluster_size))
				continue;

			qcow2_rb_set(q->refcount_order, t->data, i, 1);
			t->dirty = true;
			q->free_hint = c + 1;
			q->alloc_end = MAX(q->alloc_end, off + q->cluster_size);
			*ret_offset = off;
			return 0;
		}
	}
}

int qcow2_free_cluster_now(struct qcow2 *q, uint64_t offset)
{
	uint64_t c = offset >> q->cluster_bits;
	uint64_t idx = c >> q->rb_bits;
	uint64_t i = c & ((1ull << q->rb_bits) - 1);
	struct qcow2_table *t;
	uint64_t v;
	int r;

	if (idx >= q->rt_entries || q->rt[idx] == 0)
		return qcow2_fail(q, -EIO, "cluster 0x%" PRIx64 " is in use but has no refcount",
				  offset);

	r = block_load(q, idx, &t);
	if (r < 0)
		return r;

	v = qcow2_rb_get(q->refcount_order, t->data, i);
	if (v == 0)
		return qcow2_fail(q, -EIO, "cluster 0x%" PRIx64 " is in use but its refcount is 0",
				  offset);
	qcow2_rb_set(q->refcount_order, t->data, i, v - 1);
	t->dirty = true;
	if (v == 1 && c < q->free_hint)
		q->free_hint = c;
	return 0;
}

int qcow2_free_cluster_later(struct qcow2 *q, uint64_t offset)
{
	if (q->nr_pending_free == q->pending_free_cap) {
		size_t cap = q->pending_free_cap ? q->pending_free_cap * 2 : 64;
		uint64_t *p = realloc(q->pending_free, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		q->pending_free = p;
		q->pending_free_cap = cap;
	}
	q->pending_free[q->nr_pending_free++] = offset;
	return 0;
}

int qcow2_refcount_apply_pending(struct qcow2 *q)
{
	size_t done = 0;
	int r = 0;

	while (done < q->nr_pending_free) {
		r = qcow2_free_cluster_now(q, q->pending_free[done]);
		if (r < 0)
			break;
		done++;
	}
	memmove(q->pending_free, q->pending_free + done,
		(q->nr_pending_free - done) * sizeof(*q->pending_free));
	q->nr_pending_free -= done;
	return r;
}

/*
 * Before writing to an image, make sure no table of its own is counted as
 * free: the allocator would hand it out and data would overwrite it.
 */
int qcow2_refcount_init(struct qcow2 *q)
{
	uint64_t l1_clusters = qcow2_clusters(q, (uint64_t)q->l1_size * 8);
	uint64_t v;
	int r;

	q->alloc_end = q->file_size;
	q->free_hint = 0;

	r = qcow2_refcount_get(q, 0, &v);
	for (uint64_t i = 0; r >= 0 && v && i < l1_clusters; i++)
		r = qcow2_refcount_get(q, (q->l1_offset >> q->cluster_bits) + i, &v);
	for (uint64_t i = 0; r >= 0 && v && i < q->rt_clusters; i++)
		r = qcow2_refcount_get(q, (q->rt_offset >> q->cluster_bits) + i, &v);
	for (uint64_t i = 0; r >= 0 && v && i < q->rt_entries; i++)
		if (q->rt[i])
			r = qcow2_refcount_get(q, q->rt[i] >> q->cluster_bits, &v);
	if (r < 0)
		return r;
	if (!v)
		return qcow2_fail(
		    q, -EUCLEAN,
		    "a metadata cluster has refcount 0; repair with 'qemu-img check -r all'");
	return 0;
}
