/* SPDX-License-Identifier: MIT */
/*
 * What the qcow2 files share among themselves: the on-disk constants, the
 * in-memory image, and the helpers each file offers to the others. Not for
 * users of the engine (they include qcow2.h).
 *
 * Crash-safety order, the one rule every file follows:
 *
 *   1. a cluster's refcount is raised (in the refcount block cache) before
 *      anything points at it, and a refcount block is written to disk
 *      before any L2 table or L1 entry that relies on it;
 *   2. guest data is written to a new cluster before the L2 entry pointing
 *      at it can reach the disk;
 *   3. an L2 table reaches the disk before the L1 entry pointing at it;
 *   4. a reference is removed on disk before the refcount drops, and the
 *      cluster is not reused before that (the "pending free" list).
 *
 * Between the steps of a flush sits an fdatasync, so that the order holds
 * after a power loss too; after a kill -9 program order alone suffices.
 * Breaking the order can only ever produce leaks, never a reference to a
 * free cluster.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qcow2.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Header field offsets (all big endian). */
enum {
	HDR_MAGIC = 0,
	HDR_VERSION = 4,
	HDR_BACKING_OFFSET = 8,
	HDR_BACKING_SIZE = 16,
	HDR_CLUSTER_BITS = 20,
	HDR_SIZE = 24,
	HDR_CRYPT_METHOD = 32,
	HDR_L1_SIZE = 36,
	HDR_L1_OFFSET = 40,
	HDR_RT_OFFSET = 48,
	HDR_RT_CLUSTERS = 56,
	HDR_NB_SNAPSHOTS = 60,
	HDR_SNAPSHOTS_OFFSET = 64,
	HDR_V2_LENGTH = 72,
	HDR_INCOMPAT = 72,
	HDR_COMPAT = 80,
	HDR_AUTOCLEAR = 88,
	HDR_REFCOUNT_ORDER = 96,
	HDR_HEADER_LENGTH = 100,
	HDR_V3_LENGTH = 104,
};

#define QCOW2_INCOMPAT_DIRTY	    (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	    (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2	    (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

enum {
	QCOW2_EXT_END = 0,
	QCOW2_EXT_BACKING_FORMAT = 0xe2792aca,
	QCOW2_EXT_FEATURE_TABLE = 0x6803f857,
	QCOW2_EXT_BITMAPS = 0x23852875,
	QCOW2_EXT_CRYPTO = 0x0537be77,
	QCOW2_EXT_DATA_FILE = 0x44415441,
};

/* L1/L2/refcount table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull /* bits 9-55 */
#define QCOW2_L1_RESERVED      0x7f000000000001ffull /* bits 0-8, 56-62 */
#define QCOW2_L2_RESERVED      0x3f000000000001feull /* bits 1-8, 56-61 */
#define QCOW2_RT_RESERVED      0xff000000000001ffull /* bits 0-8, and past 2^56 */

enum {
	QCOW2_MIN_CLUSTER_BITS = 9,
	QCOW2_MAX_CLUSTER_BITS = 21,
	QCOW2_DEFAULT_CLUSTER_BITS = 16,
	QCOW2_MAX_REFCOUNT_ORDER = 6,
	QCOW2_DEFAULT_REFCOUNT_ORDER = 4,
};

/* QEMU's own limits, kept so that every image we write opens in QEMU. */
#define QCOW2_MAX_L1_BYTES     (32ull << 20)
#define QCOW2_MAX_RT_BYTES     (8ull << 20)
#define QCOW2_MAX_VIRTUAL_SIZE (1ull << 61)
#define QCOW2_MAX_SNAPSHOTS    65536

/* Metadata caches, in bytes of tables (at least QCOW2_CACHE_MIN tables). */
#define QCOW2_L2_CACHE_BYTES (1ull << 20)
#define QCOW2_RB_CACHE_BYTES (256ull << 10)
enum { QCOW2_CACHE_MIN = 4 };

/* A cached L2 table or refcount block: one cluster, as it is on disk. */
struct qcow2_table {
	uint64_t offset; /* host offset; 0 marks a free slot */
	uint8_t *data;
	uint64_t last_use;
	bool dirty;
};

struct qcow2_cache {
	struct qcow2_table *slots;
	unsigned nr_slots;
	uint64_t clock;
};

enum qcow2_backing_kind {
	QCOW2_BACKING_NONE,
	QCOW2_BACKING_RAW,
	QCOW2_BACKING_QCOW2,
	QCOW2_BACKING_KIND_MAX,
};

struct qcow2 {
	int fd;
	bool writable;
	char *path;

	/* From the header, validated at open. */
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint32_t l2_bits; /* log2 of entries per L2 table */
	uint32_t rb_bits; /* log2 of entries per refcount block */
	uint32_t refcount_order;
	uint64_t size; /* virtual size */
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint32_t nb_snapshots;

	uint64_t file_size; /* bytes the file holds, as far as we know */
	uint64_t alloc_end; /* end of the highest cluster ever allocated */

	/* The L1 table, host endian, and the range not yet written back. */
	uint64_t *l1;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint32_t l1_dirty_lo, l1_dirty_hi; /* [lo, hi) entries; lo == hi: clean */

	/* The refcount table, host endian, always equal to the disk copy. */
	uint64_t *rt;
	uint64_t rt_entries;
	uint64_t rt_offset;
	uint32_t rt_clusters;

	struct qcow2_cache l2_cache;
	struct qcow2_cache rb_cache; /* writable images only */

	uint64_t free_hint;	/* cluster index where the free-cluster search starts */
	uint64_t *pending_free; /* host offsets whose refcount drops after a sync */
	size_t nr_pending_free, pending_free_cap;
	/* What was written since the last fdatasync. */
	bool unsynced;	    /* anything at all */
	bool deps_unsynced; /* data or refcounts: an L2 table write must sync first */
	bool l2_unsynced;   /* L2 tables: an L1 write must sync first */

	char backing_name[QCOW2_BACKING_NAME_MAX + 1];
	char backing_fmt[16];
	enum qcow2_backing_kind backing_kind;
	int backing_fd;	       /* RAW */
	bool backing_rw;       /* RAW: opened for writing (commit) */
	struct qcow2 *backing; /* QCOW2 */
	uint64_t backing_size;
	unsigned chain_depth; /* images below this one */

	bool has_bitmaps;
	uint8_t *bounce; /* one cluster, for copy-on-write */
	char error[QCOW2_REASON_MAX];
};

/* Record why the current call fails; returns err so callers can chain. */
int qcow2_fail(struct qcow2 *q, int err, const char *fmt, ...) __printf(3, 4);
/*
 * Pass up a failure of the backing image, naming it once: the deepest
 * image that failed names itself, the images above add nothing (a deep
 * chain would otherwise bury the reason under prefixes).
 */
int qcow2_fail_backing(struct qcow2 *q, int err, const char *inner);

/* Big-endian helpers for headers and tables. */
uint16_t qcow2_get_be16(const void *p);
uint32_t qcow2_get_be32(const void *p);
uint64_t qcow2_get_be64(const void *p);
void qcow2_put_be32(void *p, uint32_t v);
void qcow2_put_be64(void *p, uint64_t v);

/*
 * Whole-buffer pread/pwrite; reads past the end of the file give zeros.
 * qcow2_pwrite keeps file_size and `unsynced` up to date; the caller marks
 * what kind of write it was (deps_unsynced, l2_unsynced).
 */
int qcow2_pread(int fd, void *buf, size_t len, uint64_t offset) __must_check;
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t offset) __must_check;
int qcow2_sync(struct qcow2 *q) __must_check;

static inline uint64_t qcow2_clusters(const struct qcow2 *q, uint64_t bytes)
{
	return (bytes >> q->cluster_bits) + !!(bytes & (q->cluster_size - 1));
}

static inline uint64_t qcow2_div_round_up(uint64_t a, uint64_t b)
{
	return a / b + !!(a % b);
}

/* True when two non-empty ranges share a byte. */
bool qcow2_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen);
/* True when [off, off + len) touches the header, the L1 or the refcount table. */
bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len);

/* qcow2-cache.c */
int qcow2_cache_init(struct qcow2_cache *c, uint64_t budget, uint64_t table_size) __must_check;
void qcow2_cache_destroy(struct qcow2_cache *c);
struct qcow2_table *qcow2_cache_find(struct qcow2_cache *c, uint64_t offset);
/* A slot to fill: a free one, else the least recently used (maybe dirty). */
struct qcow2_table *qcow2_cache_victim(struct qcow2_cache *c);
void qcow2_cache_touch(struct qcow2_cache *c, struct qcow2_table *t);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset);
bool qcow2_cache_any_dirty(const struct qcow2_cache *c);

/* qcow2-refcount.c */
/* Entry i of a refcount block, for refcount_order `order`. */
uint64_t qcow2_rb_get(unsigned order, const uint8_t *blk, uint64_t i);
void qcow2_rb_set(unsigned order, uint8_t *blk, uint64_t i, uint64_t v);
int qcow2_refcount_init(struct qcow2 *q) __must_check;
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *ret_refcount) __must_check;
/* One new cluster with refcount 1 (not yet referenced). */
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *ret_offset) __must_check;
/* Drop a reference at once: only when the reference is already gone on disk. */
int qcow2_free_cluster_now(struct qcow2 *q, uint64_t offset) __must_check;
/* Drop a reference after the next sync (the reference is gone in memory). */
int qcow2_free_cluster_later(struct qcow2 *q, uint64_t offset) __must_check;
/* Write the dirty refcount blocks (always safe, see rule 1 and 4). */
int qcow2_refcount_write_dirty(struct qcow2 *q) __must_check;
/* Apply the pending frees; the caller has made their removals durable. */
int qcow2_refcount_apply_pending(struct qcow2 *q) __must_check;
/* Ensure the file covers every cluster a refcount block may claim. */
int qcow2_extend_file(struct qcow2 *q) __must_check;

/* qcow2-map.c */
enum qcow2_cluster_kind {
	QCOW2_CLUSTER_UNALLOCATED, /* read through to the backing chain */
	QCOW2_CLUSTER_ZERO,	   /* zero flag, no host cluster */
	QCOW2_CLUSTER_ZERO_ALLOC,  /* zero flag with a preallocated host cluster */
	QCOW2_CLUSTER_DATA,	   /* ours alone (refcount 1): overwrite in place */
	QCOW2_CLUSTER_DATA_COW,	   /* copied flag clear: copy before writing */
	QCOW2_CLUSTER_KIND_MAX,
};

/* Decode and check one L2 entry found for guest offset `guest`. */
int qcow2_l2_decode(struct qcow2 *q, uint64_t entry, uint64_t guest,
		    enum qcow2_cluster_kind *ret_kind, uint64_t *ret_host) __must_check;
/*
 * The L2 table for an L1 index. With alloc, a missing table is created
 * (zeroed, dirty) and hooked into the in-memory L1. Without it, *ret_table
 * is NULL for a missing table. The pointer is valid until the next call
 * that loads another L2 table.
 */
int qcow2_l2_get(struct qcow2 *q, uint64_t l1_index, bool alloc,
		 struct qcow2_table **ret_table) __must_check;
/* Write back one dirty L2 table, after the refcounts it relies on. */
int qcow2_l2_write(struct qcow2 *q, struct qcow2_table *t) __must_check;
/* Steps 1-3 of the order above, for everything cached. */
int qcow2_metadata_flush(struct qcow2 *q) __must_check;
/* One layer only: the kind of the cluster run starting at guest `offset`. */
int qcow2_map_layer(struct qcow2 *q, uint64_t offset, uint64_t len,
		    enum qcow2_cluster_kind *ret_kind, uint64_t *ret_host,
		    uint64_t *ret_len) __must_check;

static inline uint64_t qcow2_l2_entry(const struct qcow2_table *t, uint64_t i)
{
	return qcow2_get_be64(t->data + i * 8);
}

static inline void qcow2_l2_set(struct qcow2_table *t, uint64_t i, uint64_t entry)
{
	qcow2_put_be64(t->data + i * 8, entry);
	t->dirty = true;
}

/* qcow2-io.c */
int qcow2_backing_read(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset) __must_check;

/* qcow2-open.c */
/* A backing name as a path: relative names start from the image's folder. */
char *qcow2_backing_path(const char *image, const char *name);
int qcow2_write_header_field(struct qcow2 *q, unsigned field, const void *buf,
			     size_t len) __must_check;
