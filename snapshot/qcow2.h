/* SPDX-License-Identifier: MIT */
/*
 * The qcow2 disk engine: version 3 images (version 2 read-only), without
 * compression, encryption, internal snapshots, extended L2 entries or an
 * external data file. Backing chains of raw and qcow2 images, up to
 * QCOW2_MAX_CHAIN deep.
 *
 * Metadata is cached write-back and written in dependency order, with
 * fdatasync between the steps, so that killing the process or losing power
 * at any instant leaves an image without corruption; at worst some clusters
 * leak. Writes since the last qcow2_flush may be lost, as on a disk with a
 * volatile write cache. Another process sees this image's latest state
 * only after qcow2_flush (a template's overlay must be flushed before
 * clones open it as their backing image).
 *
 * One struct qcow2 is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct qcow2;

enum {
	QCOW2_REASON_MAX = 256,
	QCOW2_MAX_CHAIN = 16,	       /* images in a chain, the top one included */
	QCOW2_BACKING_NAME_MAX = 1023, /* the format's limit */
};

/* One human line saying why the last call failed, for the caller to log. */
struct qcow2_reason {
	char msg[QCOW2_REASON_MAX];
};

enum qcow2_open_flags {
	QCOW2_OPEN_RW = 1u << 0,
	/* Also open the first backing image for writing (qcow2_commit). */
	QCOW2_OPEN_BACKING_RW = 1u << 1,
	/* Do not open the backing chain: unallocated clusters read as zeros. */
	QCOW2_OPEN_NO_BACKING = 1u << 2,
};

/*
 * Open a qcow2 image and its backing chain. The reason is filled on failure
 * (it may be NULL). Errors: -ENOENT and friends from open(2), -EINVAL for a
 * malformed image, -ENOTSUP for a feature this engine lacks, -EUCLEAN for an
 * image marked corrupt or dirty opened for writing, -ELOOP for a backing
 * chain that loops or is too deep. Images are not locked: one writer per
 * image is the caller's rule (a template's overlay is frozen before clones
 * open it as their backing image).
 */
int qcow2_open(const char *path, unsigned flags, struct qcow2 **ret_q,
	       struct qcow2_reason *reason) __must_check;

/* Flushes (best effort: call qcow2_flush first to see errors) and frees. */
void qcow2_close(struct qcow2 *q);
DEFINE_CLEANUP_FUNC(struct qcow2, qcow2_close)
#define _cleanup_qcow2_ _cleanup_(qcow2_closep)

/* The reason for the last failed I/O call on this image ("" if none). */
const char *qcow2_last_error(const struct qcow2 *q);

uint64_t qcow2_size(const struct qcow2 *q);

/*
 * Guest I/O. Ranges must lie inside the virtual size. Unallocated clusters
 * read from the backing chain, and as zeros beyond the end of a backing
 * image. Writes allocate clusters and copy the rest of a partially written
 * cluster up from the chain.
 */
int qcow2_read(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset) __must_check;
int qcow2_write(struct qcow2 *q, const void *buf, uint64_t len, uint64_t offset) __must_check;
/* Reads as zeros afterwards; whole clusters become zero clusters. */
int qcow2_write_zeroes(struct qcow2 *q, uint64_t offset, uint64_t len) __must_check;
/* Frees whole clusters (they read as zeros afterwards); partial ones are kept. */
int qcow2_discard(struct qcow2 *q, uint64_t offset, uint64_t len) __must_check;
/* Writes cached metadata in order and makes everything durable. */
int qcow2_flush(struct qcow2 *q) __must_check;

/*
 * Where a guest range lives, for callers that issue data I/O themselves
 * (io_uring). An extent covers [offset, offset + len) of the guest disk.
 */
enum qcow2_extent_kind {
	QCOW2_EXTENT_DATA,	  /* bytes at host_offset in fd */
	QCOW2_EXTENT_ZERO,	  /* reads as zeros */
	QCOW2_EXTENT_NEEDS_ALLOC, /* for writing: go through qcow2_write */
	QCOW2_EXTENT_KIND_MAX,
};

struct qcow2_extent {
	enum qcow2_extent_kind kind;
	int fd;		      /* DATA: the file of the layer holding the bytes */
	uint64_t host_offset; /* DATA: where in fd */
	uint64_t len;	      /* guest bytes covered, > 0 */
	unsigned depth;	      /* 0: this image, 1: its backing image, ... */
};

enum qcow2_map_flags {
	/*
	 * Map for writing: DATA only where the top image owns the clusters
	 * and may overwrite them in place, NEEDS_ALLOC elsewhere.
	 */
	QCOW2_MAP_WRITE = 1u << 0,
};

/*
 * Map the longest uniform prefix of [offset, offset + len). For reads the
 * chain is resolved. The fd stays valid until qcow2_close, but a mapping is
 * only valid until the next call that changes the image; callers must finish
 * data I/O on extents before calling qcow2_flush.
 */
int qcow2_map(struct qcow2 *q, uint64_t offset, uint64_t len, unsigned flags,
	      struct qcow2_extent *ret_extent) __must_check;

struct qcow2_create_opts {
	uint64_t size;		 /* virtual size; 0: the backing image's size */
	const char *backing;	 /* NULL: a standalone image */
	const char *backing_fmt; /* "raw" or "qcow2"; NULL: probe the backing image */
	uint32_t cluster_size;	 /* 0: 64 KiB */
	uint32_t refcount_bits;	 /* 0: 16 */
};

/*
 * Create a new image (never overwrites: -EEXIST). A relative backing name is
 * stored as given and resolved, as by QEMU, against the new image's folder.
 */
int qcow2_create(const char *path, const struct qcow2_create_opts *opts,
		 struct qcow2_reason *reason) __must_check;

/*
 * Merge the top image's clusters into its backing image, make the backing
 * image durable, then empty the top image so that it reads through again.
 * The image must be opened with QCOW2_OPEN_RW | QCOW2_OPEN_BACKING_RW.
 */
int qcow2_commit(struct qcow2 *q, struct qcow2_reason *reason) __must_check;

struct qcow2_info {
	uint32_t version;
	uint64_t virtual_size;
	uint64_t file_size; /* bytes the image file spans */
	uint32_t cluster_size;
	uint32_t refcount_bits;
	uint64_t allocated_bytes; /* data clusters owned by this image */
	uint64_t zero_clusters;	  /* clusters marked as reading zeros */
	bool dirty, corrupt, lazy_refcounts, read_only;
	unsigned chain_depth;			       /* images below this one */
	char backing_file[QCOW2_BACKING_NAME_MAX + 1]; /* "" when none */
	char backing_format[16];
};

int qcow2_get_info(struct qcow2 *q, struct qcow2_info *ret_info) __must_check;

struct qcow2_check_result {
	uint64_t corruptions; /* refcount lower than the references, bad entries */
	uint64_t leaks;	      /* clusters with a refcount but no reference */
	uint64_t checked_clusters;
};

/*
 * Recount every reference in the image and compare with the refcounts, like
 * `qemu-img check` (without repairing). Flushes first when writable.
 */
int qcow2_check(struct qcow2 *q, struct qcow2_check_result *ret_result) __must_check;

/* True when the first bytes of a file carry the qcow2 magic. */
bool qcow2_probe(const void *buf, uint64_t len);
