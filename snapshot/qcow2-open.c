// SPDX-License-Identifier: MIT
/*
 * Opening an image: the header, its extensions and every table offset and
 * size are checked against the file before anything is read through them.
 * An image is untrusted input (a base image may come from anywhere), so a
 * malformed one gives -EINVAL with a reason, never a crash.
 *
 * The dirty bit: this engine never uses lazy refcounts, so it never sets
 * the bit; refcounts on disk are always safe (at worst leaky). An image that
 * another program left dirty is opened read-only only, since its refcounts
 * cannot be trusted for allocation; repairing it is left to
 * `qemu-img check -r all`.
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

/* Name an incompatible feature from the image's own feature table, if any. */
static void feature_name(const uint8_t *table, uint32_t table_len, unsigned bit, char *name,
			 size_t name_size)
{
	snprintf(name, name_size, "bit %u", bit);
	for (uint32_t i = 0; table && i + 48 <= table_len; i += 48) {
		if (table[i] == 0 && table[i + 1] == bit) {
			snprintf(name, name_size, "'%.46s' (bit %u)", (const char *)table + i + 2,
				 bit);
			return;
		}
	}
}

struct header_exts {
	const uint8_t *features;
	uint32_t features_len;
};

static int parse_extensions(struct qcow2 *q, const uint8_t *hdr, uint64_t hdr_len,
			    uint64_t backing_offset, struct header_exts *ext)
{
	uint64_t off = q->header_length;
	uint64_t end = backing_offset ? MIN(backing_offset, hdr_len) : hdr_len;
	bool seen_format = false;

	while (off + 8 <= end) {
		uint32_t type = qcow2_get_be32(hdr + off);
		uint32_t len = qcow2_get_be32(hdr + off + 4);
		const uint8_t *data = hdr + off + 8;

		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off - 8)
			return qcow2_fail(q, -EINVAL,
					  "header extension 0x%08x at 0x%" PRIx64
					  " runs past the header cluster",
					  type, off);

		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (seen_format)
				return qcow2_fail(q, -EINVAL, "two backing format extensions");
			if (len == 0 || len >= sizeof(q->backing_fmt) || memchr(data, 0, len))
				return qcow2_fail(q, -EINVAL, "invalid backing format extension");
			memcpy(q->backing_fmt, data, len);
			q->backing_fmt[len] = '\0';
			seen_format = true;
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			if (len % 48)
				return qcow2_fail(q, -EINVAL,
						  "invalid feature name table length %u", len);
			ext->features = data;
			ext->features_len = len;
			break;
		case QCOW2_EXT_CRYPTO:
			return qcow2_fail(q, -EINVAL,
					  "encryption header extension in an unencrypted image");
		case QCOW2_EXT_BITMAPS:
			q->has_bitmaps = true;
			break;
		default:
			/* Unknown extensions are safe to ignore, by the spec. */
			break;
		}
		off += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	return 0;
}

static int check_features(struct qcow2 *q, const struct header_exts *ext)
{
	const uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
	char name[80];

	for (unsigned bit = 0; bit < 64; bit++) {
		uint64_t mask = 1ull << bit;

		if (!(q->incompat & mask) || (known & mask))
			continue;
		feature_name(ext->features, ext->features_len, bit, name, sizeof(name));
		switch (mask) {
		case QCOW2_INCOMPAT_DATA_FILE:
			return qcow2_fail(q, -ENOTSUP, "external data files are not supported");
		case QCOW2_INCOMPAT_COMPRESSION:
			return qcow2_fail(q, -ENOTSUP, "compressed images are not supported");
		case QCOW2_INCOMPAT_EXTL2:
			return qcow2_fail(q, -ENOTSUP, "extended L2 entries are not supported");
		default:
			return qcow2_fail(q, -ENOTSUP, "unknown incompatible feature %s", name);
		}
	}
	if (!q->writable)
		return 0;
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		return qcow2_fail(q, -EUCLEAN,
				  "image is marked corrupt; repair with 'qemu-img check -r all'");
	if (q->incompat & QCOW2_INCOMPAT_DIRTY)
		return qcow2_fail(
		    q, -EUCLEAN,
		    "image is dirty (lazy refcounts); repair with 'qemu-img check -r all'");
	return 0;
}

/* Check a table's place: cluster aligned, not on the header, inside the file. */
static int check_table(struct qcow2 *q, const char *what, uint64_t offset, uint64_t len)
{
	if (!IS_ALIGNED(offset, q->cluster_size))
		return qcow2_fail(q, -EINVAL, "%s offset 0x%" PRIx64 " is not cluster aligned",
				  what, offset);
	if (offset == 0)
		return qcow2_fail(q, -EINVAL, "%s overlaps the header", what);
	if (!range_within(offset, len, q->file_size))
		return qcow2_fail(q, -EINVAL,
				  "%s at 0x%" PRIx64 " (%" PRIu64
				  " bytes) runs past the end of the file"
				  " (%" PRIu64 " bytes)",
				  what, offset, len, q->file_size);
	return 0;
}

/* The fixed header fields, in the order of the format. */
static int parse_header(struct qcow2 *q, const uint8_t *h, uint64_t avail,
			uint64_t *ret_backing_off, uint32_t *ret_backing_len)
{
	uint64_t backing_off, l1_bytes, l1_needed, per_l2;
	uint32_t backing_len;

	if (avail < HDR_V2_LENGTH)
		return qcow2_fail(
		    q, -EINVAL, "file is too small (%" PRIu64 " bytes) for a qcow2 header", avail);
	if (qcow2_get_be32(h + HDR_MAGIC) != QCOW2_MAGIC)
		return qcow2_fail(q, -EINVAL, "not a qcow2 image (bad magic)");

	q->version = qcow2_get_be32(h + HDR_VERSION);
	if (q->version != 2 && q->version != 3)
		return qcow2_fail(q, -EINVAL, "unsupported qcow2 version %u", q->version);

	if (q->version == 3) {
		if (avail < HDR_V3_LENGTH)
			return qcow2_fail(q, -EINVAL, "truncated version 3 header");
		q->incompat = qcow2_get_be64(h + HDR_INCOMPAT);
		q->compat = qcow2_get_be64(h + HDR_COMPAT);
		q->autoclear = qcow2_get_be64(h + HDR_AUTOCLEAR);
		q->refcount_order = qcow2_get_be32(h + HDR_REFCOUNT_ORDER);
		q->header_length = qcow2_get_be32(h + HDR_HEADER_LENGTH);
		if (q->header_length < HDR_V3_LENGTH || q->header_length % 8)
			return qcow2_fail(q, -EINVAL, "invalid header length %u", q->header_length);
	} else {
		q->refcount_order = QCOW2_DEFAULT_REFCOUNT_ORDER;
		q->header_length = HDR_V2_LENGTH;
	}

	q->cluster_bits = qcow2_get_be32(h + HDR_CLUSTER_BITS);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return qcow2_fail(q, -EINVAL, "cluster_bits %u is outside 9..21", q->cluster_bits);
	q->cluster_size = 1ull << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;

	if (q->header_length > q->cluster_size)
		return qcow2_fail(q, -EINVAL, "header length %u exceeds the cluster size",
				  q->header_length);
	if (q->header_length > avail)
		return qcow2_fail(q, -EINVAL, "truncated header");
	/* The compression type field, when present, must say zlib (0). */
	if (q->header_length > HDR_V3_LENGTH && h[HDR_V3_LENGTH] != 0 &&
	    !(q->incompat & QCOW2_INCOMPAT_COMPRESSION))
		return qcow2_fail(q, -EINVAL, "compression type set without its feature bit");

	if (qcow2_get_be32(h + HDR_CRYPT_METHOD) != 0)
		return qcow2_fail(q, -ENOTSUP, "encrypted images are not supported");

	if (q->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return qcow2_fail(q, -EINVAL, "refcount_order %u is larger than 6",
				  q->refcount_order);
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;

	q->size = qcow2_get_be64(h + HDR_SIZE);
	if (q->size > QCOW2_MAX_VIRTUAL_SIZE)
		return qcow2_fail(q, -EINVAL, "virtual size %" PRIu64 " is too large", q->size);

	q->l1_size = qcow2_get_be32(h + HDR_L1_SIZE);
	q->l1_offset = qcow2_get_be64(h + HDR_L1_OFFSET);
	l1_bytes = (uint64_t)q->l1_size * 8;
	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return qcow2_fail(q, -EINVAL, "L1 table of %u entries is too large", q->l1_size);
	per_l2 = q->cluster_size << q->l2_bits;
	l1_needed = qcow2_div_round_up(q->size, per_l2);
	if (q->l1_size < l1_needed)
		return qcow2_fail(
		    q, -EINVAL,
		    "L1 table of %u entries is too small for the virtual size (needs %" PRIu64 ")",
		    q->l1_size, l1_needed);
	if (q->l1_size) {
		int r = check_table(q, "L1 table", q->l1_offset, l1_bytes);

		if (r < 0)
			return r;
	}

	q->rt_offset = qcow2_get_be64(h + HDR_RT_OFFSET);
	q->rt_clusters = qcow2_get_be32(h + HDR_RT_CLUSTERS);
	if (q->rt_clusters == 0)
		return qcow2_fail(q, -EINVAL, "empty refcount table");
	if ((uint64_t)q->rt_clusters << q->cluster_bits > QCOW2_MAX_RT_BYTES)
		return qcow2_fail(q, -EINVAL, "refcount table of %u clusters is too large",
				  q->rt_clusters);
	{
		int r = check_table(q, "refcount table", q->rt_offset,
				    (uint64_t)q->rt_clusters << q->cluster_bits);

		if (r < 0)
			return r;
	}
	if (qcow2_ranges_overlap(q->l1_offset, l1_bytes, q->rt_offset,
				 (uint64_t)q->rt_clusters << q->cluster_bits))
		return qcow2_fail(q, -EINVAL, "L1 table and refcount table overlap");

	q->nb_snapshots = qcow2_get_be32(h + HDR_NB_SNAPSHOTS);
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return qcow2_fail(q, -EINVAL, "too many snapshots (%u)", q->nb_snapshots);
	if (q->nb_snapshots) {
		uint64_t off = qcow2_get_be64(h + HDR_SNAPSHOTS_OFFSET);
		int r = check_table(q, "snapshot table", off, 40);

		if (r < 0)
			return r;
	}

	backing_off = qcow2_get_be64(h + HDR_BACKING_OFFSET);
	backing_len = qcow2_get_be32(h + HDR_BACKING_SIZE);
	if (backing_off) {
		if (backing_len == 0 || backing_len > QCOW2_BACKING_NAME_MAX)
			return qcow2_fail(q, -EINVAL, "invalid backing file name length %u",
					  backing_len);
		if (backing_off < q->header_length ||
		    !range_within(backing_off, backing_len, MIN(q->cluster_size, avail)))
			return qcow2_fail(q, -EINVAL,
					  "backing file name lies outside the header cluster");
	}
	*ret_backing_off = backing_off;
	*ret_backing_len = backing_off ? backing_len : 0;
	return 0;
}

static int load_l1(struct qcow2 *q)
{
	_cleanup_free_ uint8_t *raw = NULL;
	uint64_t bytes = (uint64_t)q->l1_size * 8;
	int r;

	q->l1 = calloc(MAX(q->l1_size, 1u), sizeof(*q->l1));
	raw = malloc(MAX(bytes, 1u));
	if (!q->l1 || !raw)
		return -ENOMEM;

	r = qcow2_pread(q->fd, raw, bytes, q->l1_offset);
	if (r < 0)
		return qcow2_fail(q, r, "failed to read the L1 table");

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t e = qcow2_get_be64(raw + 8 * (uint64_t)i);
		uint64_t off = e & QCOW2_OFFSET_MASK;

		if (e & QCOW2_L1_RESERVED)
			return qcow2_fail(q, -EINVAL, "L1 entry %u has reserved bits set", i);
		if (off) {
			r = check_table(q, "L2 table", off, q->cluster_size);
			if (r < 0)
				return r;
			if (qcow2_overlaps_metadata(q, off, q->cluster_size))
				return qcow2_fail(
				    q, -EINVAL, "L2 table at 0x%" PRIx64 " overlaps other metadata",
				    off);
		}
		q->l1[i] = e;
	}
	return 0;
}

static int load_refcount_table(struct qcow2 *q)
{
	_cleanup_free_ uint8_t *raw = NULL;
	uint64_t bytes = (uint64_t)q->rt_clusters << q->cluster_bits;
	int r;

	q->rt_entries = bytes / 8;
	q->rt = calloc(q->rt_entries, sizeof(*q->rt));
	raw = malloc(bytes);
	if (!q->rt || !raw)
		return -ENOMEM;

	r = qcow2_pread(q->fd, raw, bytes, q->rt_offset);
	if (r < 0)
		return qcow2_fail(q, r, "failed to read the refcount table");

	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t e = qcow2_get_be64(raw + 8 * i);

		if (e & QCOW2_RT_RESERVED)
			return qcow2_fail(q, -EINVAL, "refcount table entry %" PRIu64 " is invalid",
					  i);
		if (e) {
			r = check_table(q, "refcount block", e, q->cluster_size);
			if (r < 0)
				return r;
			if (qcow2_overlaps_metadata(q, e, q->cluster_size))
				return qcow2_fail(
				    q, -EINVAL,
				    "refcount block at 0x%" PRIx64 " overlaps other metadata", e);
		}
		q->rt[i] = e;
	}
	return 0;
}

struct chain_seen {
	dev_t dev[QCOW2_MAX_CHAIN];
	ino_t ino[QCOW2_MAX_CHAIN];
	unsigned n;
};

/* Loop detection: the same file twice in one chain. */
static int chain_add(struct chain_seen *seen, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return neg_errno();
	for (unsigned i = 0; i < seen->n; i++)
		if (seen->dev[i] == st.st_dev && seen->ino[i] == st.st_ino)
			return -ELOOP;
	if (seen->n == QCOW2_MAX_CHAIN)
		return -ELOOP;
	seen->dev[seen->n] = st.st_dev;
	seen->ino[seen->n] = st.st_ino;
	seen->n++;
	return 0;
}

static int file_size(int fd, uint64_t *ret_size)
{
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < 0)
		return neg_errno();
	*ret_size = (uint64_t)end;
	return 0;
}

char *qcow2_backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *path;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&path, "%.*s/%s", (int)(slash - image), image, name) < 0)
		return NULL;
	return path;
}

static int open_chain(const char *path, unsigned flags, struct chain_seen *seen,
		      struct qcow2 **out_q);
static void image_free(struct qcow2 *q);

static int open_backing(struct qcow2 *q, unsigned flags, struct chain_seen *seen)
{
	_cleanup_free_ char *path = qcow2_backing_path(q->path, q->backing_name);
	bool rw = flags & QCOW2_OPEN_BACKING_RW;
	struct qcow2 *b = NULL;
	uint8_t magic[4];
	int r;

	if (!path)
		return -ENOMEM;
	if (seen->n >= QCOW2_MAX_CHAIN)
		return qcow2_fail(q, -ELOOP, "backing chain is deeper than %d images",
				  QCOW2_MAX_CHAIN);

	if (q->backing_fmt[0] && strcmp(q->backing_fmt, "raw") != 0 &&
	    strcmp(q->backing_fmt, "qcow2") != 0)
		return qcow2_fail(q, -ENOTSUP, "backing file '%s': format '%s' is not supported",
				  q->backing_name, q->backing_fmt);

	q->backing_fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (q->backing_fd < 0)
		return qcow2_fail(q, neg_errno(), "backing file '%s': %m", path);

	if (!q->backing_fmt[0]) {
		/* No recorded format: probe, as QEMU does. */
		r = qcow2_pread(q->backing_fd, magic, sizeof(magic), 0);
		if (r < 0)
			return qcow2_fail(q, r, "backing file '%s': cannot read it", path);
		snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s",
			 qcow2_probe(magic, sizeof(magic)) ? "qcow2" : "raw");
	}

	if (strcmp(q->backing_fmt, "raw") == 0) {
		r = chain_add(seen, q->backing_fd);
		if (r < 0)
			return qcow2_fail(q, r, "backing chain loops back to '%s'", path);
		r = file_size(q->backing_fd, &q->backing_size);
		if (r < 0)
			return qcow2_fail(q, r, "backing file '%s': cannot size it", path);
		q->backing_kind = QCOW2_BACKING_RAW;
		q->backing_rw = rw;
		q->chain_depth = 1;
		return 0;
	}
	close(TAKE_FD(q->backing_fd));
	r = open_chain(path, rw ? QCOW2_OPEN_RW : 0, seen, &b);
	if (r < 0) {
		qcow2_fail_backing(q, r, b ? b->error : NULL);
		image_free(b);
		return r;
	}
	q->backing = b;
	q->backing_kind = QCOW2_BACKING_QCOW2;
	q->backing_size = q->backing->size;
	q->chain_depth = q->backing->chain_depth + 1;
	return 0;
}

static void image_free(struct qcow2 *q)
{
	if (!q)
		return;
	if (q->backing)
		qcow2_close(q->backing);
	if (q->backing_fd >= 0)
		close(q->backing_fd);
	if (q->fd >= 0)
		close(q->fd);
	qcow2_cache_destroy(&q->l2_cache);
	qcow2_cache_destroy(&q->rb_cache);
	free(q->l1);
	free(q->rt);
	free(q->pending_free);
	free(q->bounce);
	free(q->path);
	free(q);
}

static int image_open(struct qcow2 *q, unsigned flags, struct chain_seen *seen)
{
	_cleanup_free_ uint8_t *hdr = NULL;
	struct header_exts ext = {};
	uint64_t backing_off = 0, avail;
	uint32_t backing_len = 0;
	int r;

	q->fd = open(q->path, (q->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (q->fd < 0)
		return qcow2_fail(q, neg_errno(), "cannot open '%s': %m", q->path);

	r = chain_add(seen, q->fd);
	if (r < 0)
		return qcow2_fail(q, r, "backing chain loops back to '%s'", q->path);

	r = file_size(q->fd, &q->file_size);
	if (r < 0)
		return qcow2_fail(q, r, "cannot size '%s'", q->path);

	/* Everything the header may use lives in the first cluster, at most 2 MiB. */
	avail = MIN(q->file_size, 1ull << QCOW2_MAX_CLUSTER_BITS);
	hdr = malloc(MAX(avail, 1u));
	if (!hdr)
		return -ENOMEM;
	r = qcow2_pread(q->fd, hdr, avail, 0);
	if (r < 0)
		return qcow2_fail(q, r, "cannot read '%s'", q->path);

	r = parse_header(q, hdr, avail, &backing_off, &backing_len);
	if (r < 0)
		return r;
	avail = MIN(avail, q->cluster_size);

	r = parse_extensions(q, hdr, avail, backing_off, &ext);
	if (r < 0)
		return r;

	r = check_features(q, &ext);
	if (r < 0)
		return r;

	if (q->writable && q->version < 3)
		return qcow2_fail(q, -ENOTSUP,
				  "version 2 images are read-only here; upgrade with "
				  "'qemu-img amend -o compat=1.1'");
	if (q->writable && q->nb_snapshots)
		return qcow2_fail(q, -ENOTSUP,
				  "images with internal snapshots can only be opened read-only");

	if (backing_len) {
		memcpy(q->backing_name, hdr + backing_off, backing_len);
		q->backing_name[backing_len] = '\0';
		if (strlen(q->backing_name) != backing_len)
			return qcow2_fail(q, -EINVAL, "backing file name contains a NUL byte");
	} else {
		/* Without a backing file, a recorded format means nothing. */
		q->backing_fmt[0] = '\0';
	}

	r = load_l1(q);
	if (r < 0)
		return r;
	r = load_refcount_table(q);
	if (r < 0)
		return r;

	r = qcow2_cache_init(&q->l2_cache, QCOW2_L2_CACHE_BYTES, q->cluster_size);
	if (r < 0)
		return r;
	q->bounce = malloc(q->cluster_size);
	if (!q->bounce)
		return -ENOMEM;

	if (q->writable) {
		r = qcow2_refcount_init(q);
		if (r < 0)
			return r;
		if (q->autoclear) {
			/*
			 * None of the auto-clear features (bitmaps, raw data
			 * file) is kept up to date here, so their bits go
			 * before the first write, as the format demands.
			 */
			uint8_t zero[8] = {};

			r = qcow2_write_header_field(q, HDR_AUTOCLEAR, zero, sizeof(zero));
			if (r >= 0)
				r = qcow2_sync(q);
			if (r < 0)
				return r;
			q->autoclear = 0;
		}
	}

	if (backing_len && !(flags & QCOW2_OPEN_NO_BACKING)) {
		r = open_backing(q, flags, seen);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Open one image and, through open_backing, the rest of its chain. The
 * image is handed back even on failure (NULL only when out of memory), so
 * that the caller can read its reason before freeing it.
 */
static int open_chain(const char *path, unsigned flags, struct chain_seen *seen,
		      struct qcow2 **out_q)
{
	struct qcow2 *q;

	*out_q = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->fd = -1;
	q->backing_fd = -1;
	q->writable = flags & QCOW2_OPEN_RW;
	*out_q = q;
	q->path = strdup(path);
	if (!q->path)
		return -ENOMEM;

	return image_open(q, flags, seen);
}

static void reason_set(struct qcow2_reason *reason, int err, const struct qcow2 *q)
{
	if (!reason)
		return;
	if (q && q->error[0])
		snprintf(reason->msg, sizeof(reason->msg), "%s", q->error);
	else
		snprintf(reason->msg, sizeof(reason->msg), "%s", strerror(-err));
}

int qcow2_open(const char *path, unsigned flags, struct qcow2 **ret_q, struct qcow2_reason *reason)
{
	struct chain_seen seen = {};
	struct qcow2 *q = NULL;
	int r;

	r = open_chain(path, flags, &seen, &q);
	if (r < 0) {
		reason_set(reason, r, q);
		image_free(q);
		return r;
	}
	*ret_q = q;
	return 0;
}

void qcow2_close(struct qcow2 *q)
{
	if (!q)
		return;
	if (q->writable)
		(void)!qcow2_flush(q);
	image_free(q);
}
