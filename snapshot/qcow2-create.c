// SPDX-License-Identifier: MIT
/*
 * Creating images. The layout is QEMU's: header, refcount table, refcount
 * blocks, L1 table, each starting on a cluster. All of it is written and
 * synced before the call returns; a crash midway leaves a file that fails
 * validation cleanly (the L1 table or the refcounts past the end).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2-internal.h"

struct layout {
	uint32_t cluster_bits, refcount_order;
	uint64_t size, l1_entries;
	uint64_t rt_clusters, rb_clusters, l1_clusters, total;
};

static void reason_set(struct qcow2_reason *reason, const char *fmt, ...) __printf(2, 3);

static void reason_set(struct qcow2_reason *reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason->msg, sizeof(reason->msg), fmt, ap);
	va_end(ap);
}

static int plan(struct layout *l, struct qcow2_reason *reason)
{
	uint64_t cs = 1ull << l->cluster_bits;
	uint64_t per_block = 1ull << (l->cluster_bits + 3 - l->refcount_order);

	l->l1_entries = qcow2_div_round_up(l->size, cs << (l->cluster_bits - 3));
	if (l->l1_entries * 8 > QCOW2_MAX_L1_BYTES) {
		reason_set(reason,
			   "size %" PRIu64 " needs an L1 table over 32 MiB; use larger clusters",
			   l->size);
		return -EFBIG;
	}
	l->l1_clusters = MAX(qcow2_div_round_up(l->l1_entries * 8, cs), 1u);

	/* The refcount structures count themselves: iterate to a fixed point. */
	l->rt_clusters = l->rb_clusters = 1;
	for (;;) {
		uint64_t total = 1 + l->rt_clusters + l->rb_clusters + l->l1_clusters;
		uint64_t rb = qcow2_div_round_up(total, per_block);
		uint64_t rt = qcow2_div_round_up(rb * 8, cs);

		if (rb <= l->rb_clusters && rt <= l->rt_clusters) {
			l->total = total;
			break;
		}
		l->rb_clusters = MAX(rb, l->rb_clusters);
		l->rt_clusters = MAX(rt, l->rt_clusters);
	}
	if (l->rt_clusters * cs > QCOW2_MAX_RT_BYTES) {
		reason_set(reason, "refcount table would exceed 8 MiB");
		return -EFBIG;
	}
	return 0;
}

/* Size and format of the backing image, which must open cleanly. */
static int inspect_backing(const char *path, const char *fmt, char *ret_fmt, size_t fmt_size,
			   uint64_t *ret_size, struct qcow2_reason *reason)
{
	_cleanup_close_ int fd = -1;
	uint8_t magic[4];
	off_t end;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = neg_errno();
		reason_set(reason, "cannot open backing file '%s': %s", path, strerror(-r));
		return r;
	}
	if (!fmt) {
		r = qcow2_pread(fd, magic, sizeof(magic), 0);
		if (r < 0) {
			reason_set(reason, "cannot read backing file '%s'", path);
			return r;
		}
		fmt = qcow2_probe(magic, sizeof(magic)) ? "qcow2" : "raw";
	}

	if (strcmp(fmt, "qcow2") == 0) {
		_cleanup_qcow2_ struct qcow2 *b = NULL;
		struct qcow2_reason why;

		r = qcow2_open(path, 0, &b, &why);
		if (r < 0) {
			reason_set(reason, "backing file '%s': %s", path, why.msg);
			return r;
		}
		*ret_size = qcow2_size(b);
	} else if (strcmp(fmt, "raw") == 0) {
		end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			return neg_errno();
		*ret_size = (uint64_t)end;
	} else {
		reason_set(reason, "backing format '%s' is not supported", fmt);
		return -ENOTSUP;
	}
	snprintf(ret_fmt, fmt_size, "%s", fmt);
	return 0;
}

/* Header, extensions and backing name, all inside the first cluster. */
static int build_header(uint8_t *h, const struct layout *l, const char *backing,
			const char *backing_fmt, struct qcow2_reason *reason)
{
	uint64_t cs = 1ull << l->cluster_bits;
	uint64_t off = HDR_V3_LENGTH;
	size_t name_len = backing ? strlen(backing) : 0;
	size_t fmt_len = backing ? strlen(backing_fmt) : 0;

	qcow2_put_be32(h + HDR_MAGIC, QCOW2_MAGIC);
	qcow2_put_be32(h + HDR_VERSION, 3);
	qcow2_put_be32(h + HDR_CLUSTER_BITS, l->cluster_bits);
	qcow2_put_be64(h + HDR_SIZE, l->size);
	qcow2_put_be32(h + HDR_L1_SIZE, (uint32_t)l->l1_entries);
	qcow2_put_be64(h + HDR_RT_OFFSET, cs);
	qcow2_put_be32(h + HDR_RT_CLUSTERS, (uint32_t)l->rt_clusters);
	qcow2_put_be64(h + HDR_L1_OFFSET, (1 + l->rt_clusters + l->rb_clusters) * cs);
	qcow2_put_be32(h + HDR_REFCOUNT_ORDER, l->refcount_order);
	qcow2_put_be32(h + HDR_HEADER_LENGTH, HDR_V3_LENGTH);

	if (backing) {
		if (off + 8 + ALIGN_UP(fmt_len, 8) + 8 + name_len > cs) {
			reason_set(reason,
				   "backing file name does not fit in a %" PRIu64 "-byte cluster",
				   cs);
			return -ENAMETOOLONG;
		}
		qcow2_put_be32(h + off, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put_be32(h + off + 4, (uint32_t)fmt_len);
		memcpy(h + off + 8, backing_fmt, fmt_len);
		off += 8 + ALIGN_UP(fmt_len, 8);
	}
	/* The end-of-extensions marker is all zeros: already there. */
	off += 8;
	if (backing) {
		qcow2_put_be64(h + HDR_BACKING_OFFSET, off);
		qcow2_put_be32(h + HDR_BACKING_SIZE, (uint32_t)name_len);
		memcpy(h + off, backing, name_len);
	}
	return 0;
}

static int write_image(int fd, const struct layout *l, const uint8_t *header)
{
	uint64_t cs = 1ull << l->cluster_bits;
	uint64_t rb_off = (1 + l->rt_clusters) * cs;
	_cleanup_free_ uint8_t *rt = calloc(l->rt_clusters, cs);
	_cleanup_free_ uint8_t *rb = calloc(l->rb_clusters, cs);
	uint64_t per_block = 1ull << (l->cluster_bits + 3 - l->refcount_order);
	struct qcow2 w = {.fd = fd, .path = (char *)""};
	int r;

	if (!rt || !rb)
		return -ENOMEM;

	for (uint64_t b = 0; b < l->rb_clusters; b++)
		qcow2_put_be64(rt + 8 * b, rb_off + b * cs);
	for (uint64_t c = 0; c < l->total; c++)
		qcow2_rb_set(l->refcount_order, rb + (c / per_block) * cs, c % per_block, 1);

	/* The L1 table is all zeros: extending the file writes it. */
	if (ftruncate(fd, (off_t)(l->total * cs)) < 0)
		return neg_errno();
	r = qcow2_pwrite(&w, header, cs, 0);
	if (r >= 0)
		r = qcow2_pwrite(&w, rt, l->rt_clusters * cs, cs);
	if (r >= 0)
		r = qcow2_pwrite(&w, rb, l->rb_clusters * cs, rb_off);
	if (r < 0)
		return r;
	if (fsync(fd) < 0)
		return neg_errno();
	return 0;
}

static void sync_parent(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	char *slash;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Best effort: the image itself is complete either way. */
	if (fd >= 0)
		(void)fsync(fd);
}

static int order_of(uint64_t v, unsigned lo, unsigned hi, uint32_t *ret_order)
{
	for (unsigned i = lo; i <= hi; i++) {
		if (v == 1ull << i) {
			*ret_order = i;
			return 0;
		}
	}
	return -EINVAL;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *opts,
		 struct qcow2_reason *reason)
{
	struct qcow2_reason dummy;
	struct layout l = {};
	char fmt[16] = "";
	_cleanup_free_ uint8_t *header = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (!reason)
		reason = &dummy;
	reason->msg[0] = '\0';

	if (order_of(opts->cluster_size ? opts->cluster_size : 1u << QCOW2_DEFAULT_CLUSTER_BITS,
		     QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS, &l.cluster_bits) < 0) {
		reason_set(reason, "cluster size must be a power of two from 512 bytes to 2 MiB");
		return -EINVAL;
	}
	if (order_of(opts->refcount_bits ? opts->refcount_bits : 16, 0, QCOW2_MAX_REFCOUNT_ORDER,
		     &l.refcount_order) < 0) {
		reason_set(reason, "refcount bits must be a power of two from 1 to 64");
		return -EINVAL;
	}

	l.size = opts->size;
	if (opts->backing) {
		_cleanup_free_ char *bpath = NULL;
		uint64_t bsize;

		if (strlen(opts->backing) == 0 || strlen(opts->backing) > QCOW2_BACKING_NAME_MAX) {
			reason_set(reason, "backing file name must be 1 to %d bytes",
				   QCOW2_BACKING_NAME_MAX);
			return -ENAMETOOLONG;
		}
		bpath = qcow2_backing_path(path, opts->backing);
		if (!bpath)
			return -ENOMEM;
		r = inspect_backing(bpath, opts->backing_fmt, fmt, sizeof(fmt), &bsize, reason);
		if (r < 0)
			return r;
		if (!l.size)
			l.size = bsize;
	}
	if (l.size > QCOW2_MAX_VIRTUAL_SIZE) {
		reason_set(reason, "size %" PRIu64 " is too large", l.size);
		return -EFBIG;
	}

	r = plan(&l, reason);
	if (r < 0)
		return r;

	header = calloc(1, 1ull << l.cluster_bits);
	if (!header)
		return -ENOMEM;
	r = build_header(header, &l, opts->backing, fmt, reason);
	if (r < 0)
		return r;

	/* Never clobber an existing file: it may well be somebody's disk. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = neg_errno();
		reason_set(reason, "cannot create '%s': %s", path, strerror(-r));
		return r;
	}

	r = write_image(fd, &l, header);
	if (r < 0) {
		reason_set(reason, "failed to write '%s': %s", path, strerror(-r));
		unlink(path);
		return r;
	}
	/* The new name must be durable too, not only the contents. */
	sync_parent(path);
	return 0;
}
