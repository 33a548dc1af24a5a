// SPDX-License-Identifier: MIT
/*
 * Looking at a whole image: its summary (qcow2_get_info) and a consistency
 * check in the manner of `qemu-img check`: count every
 * reference to every cluster (header, L1, refcount table and blocks, L2
 * tables, data) and compare with the stored refcounts. A stored count
 * below the references, or a copied flag that disagrees with a count of
 * one, is a corruption; a count above the references is a leak. The tests
 * use it after every crash and random workload, without needing QEMU.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2-internal.h"

/* Counting costs 4 bytes per cluster of file: refuse files beyond this. */
#define CHECK_MAX_CLUSTERS (1ull << 26)

struct counter {
	uint32_t *refs;
	uint64_t nr;
	struct qcow2_check_result res;
};

static void count(struct qcow2 *q, struct counter *c, uint64_t off, uint64_t len)
{
	for (uint64_t x = off >> q->cluster_bits; x < qcow2_clusters(q, off + len); x++) {
		if (x >= c->nr)
			c->res.corruptions++; /* a reference past the end of the file */
		else
			c->refs[x]++;
	}
}

/* A copied flag promises a refcount of exactly one, and its absence the opposite. */
static int check_copied(struct qcow2 *q, struct counter *c, uint64_t entry, uint64_t host)
{
	uint64_t refcount;
	int r;

	r = qcow2_refcount_get(q, host >> q->cluster_bits, &refcount);
	if (r < 0)
		return r;
	if (!!(entry & QCOW2_OFLAG_COPIED) != (refcount == 1))
		c->res.corruptions++;
	return 0;
}

static int count_l2(struct qcow2 *q, struct counter *c, uint8_t *table, uint64_t l1_index)
{
	const uint64_t per_l2 = 1ull << q->l2_bits;
	int r;

	for (uint64_t j = 0; j < per_l2; j++) {
		uint64_t e = qcow2_get_be64(table + 8 * j);
		uint64_t guest = ((l1_index << q->l2_bits) + j) << q->cluster_bits;
		enum qcow2_cluster_kind kind;
		uint64_t host;

		if (qcow2_l2_decode(q, e, guest, &kind, &host) < 0) {
			c->res.corruptions++;
			continue;
		}
		if (!host)
			continue;
		count(q, c, host, q->cluster_size);
		if (kind == QCOW2_CLUSTER_DATA || kind == QCOW2_CLUSTER_DATA_COW) {
			r = check_copied(q, c, e, host);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int count_all(struct qcow2 *q, struct counter *c)
{
	_cleanup_free_ uint8_t *table = malloc(q->cluster_size);
	int r;

	if (!table)
		return -ENOMEM;

	count(q, c, 0, q->cluster_size);
	count(q, c, q->l1_offset, (uint64_t)q->l1_size * 8);
	count(q, c, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits);
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if (q->rt[i])
			count(q, c, q->rt[i], q->cluster_size);

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2 = q->l1[i] & QCOW2_OFFSET_MASK;

		if (!l2)
			continue;
		count(q, c, l2, q->cluster_size);
		r = check_copied(q, c, q->l1[i], l2);
		if (r < 0)
			return r;
		r = qcow2_pread(q->fd, table, q->cluster_size, l2);
		if (r < 0)
			return qcow2_fail(q, r, "failed to read L2 table at 0x%" PRIx64, l2);
		r = count_l2(q, c, table, i);
		if (r < 0)
			return r;
	}
	return 0;
}

int qcow2_check(struct qcow2 *q, struct qcow2_check_result *ret_result)
{
	struct counter c = {};
	int r;

	q->error[0] = '\0';
	if (q->nb_snapshots || q->has_bitmaps)
		return qcow2_fail(q, -ENOTSUP, "checking snapshots or bitmaps is not supported");

	/* Tables in the cache are newer than the disk: write them out first. */
	r = qcow2_flush(q);
	if (r < 0)
		return r;

	c.nr = qcow2_clusters(q, q->file_size);
	if (c.nr > CHECK_MAX_CLUSTERS)
		return qcow2_fail(q, -EFBIG, "image too large to check");
	c.refs = calloc(MAX(c.nr, 1u), sizeof(*c.refs));
	if (!c.refs)
		return -ENOMEM;

	r = count_all(q, &c);
	for (uint64_t x = 0; r >= 0 && x < c.nr; x++) {
		uint64_t refcount;

		r = qcow2_refcount_get(q, x, &refcount);
		if (r < 0)
			break;
		if (refcount < c.refs[x])
			c.res.corruptions++;
		else if (refcount > c.refs[x])
			c.res.leaks++;
	}
	free(c.refs);
	if (r < 0)
		return r;

	c.res.checked_clusters = c.nr;
	*ret_result = c.res;
	return 0;
}

int qcow2_get_info(struct qcow2 *q, struct qcow2_info *ret_info)
{
	struct qcow2_info info = {
	    .version = q->version,
	    .virtual_size = q->size,
	    .file_size = q->file_size,
	    .cluster_size = (uint32_t)q->cluster_size,
	    .refcount_bits = 1u << q->refcount_order,
	    .dirty = q->incompat & QCOW2_INCOMPAT_DIRTY,
	    .corrupt = q->incompat & QCOW2_INCOMPAT_CORRUPT,
	    .lazy_refcounts = q->compat & QCOW2_COMPAT_LAZY_REFCOUNTS,
	    .read_only = !q->writable,
	    .chain_depth = q->chain_depth,
	};
	uint64_t per_l2 = 1ull << q->l2_bits;
	int r;

	snprintf(info.backing_file, sizeof(info.backing_file), "%s", q->backing_name);
	snprintf(info.backing_format, sizeof(info.backing_format), "%s", q->backing_fmt);

	for (uint64_t i = 0; i < q->l1_size; i++) {
		struct qcow2_table *t;

		r = qcow2_l2_get(q, i, false, &t);
		if (r < 0)
			return r;
		for (uint64_t j = 0; t && j < per_l2; j++) {
			uint64_t guest = ((i << q->l2_bits) + j) << q->cluster_bits;
			enum qcow2_cluster_kind kind;
			uint64_t host;

			r = qcow2_l2_decode(q, qcow2_l2_entry(t, j), guest, &kind, &host);
			if (r < 0)
				return r;
			if (kind == QCOW2_CLUSTER_DATA || kind == QCOW2_CLUSTER_DATA_COW)
				info.allocated_bytes += q->cluster_size;
			else if (kind == QCOW2_CLUSTER_ZERO || kind == QCOW2_CLUSTER_ZERO_ALLOC)
				info.zero_clusters++;
		}
	}
	*ret_info = info;
	return 0;
}
