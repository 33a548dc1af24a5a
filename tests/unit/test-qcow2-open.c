// SPDX-License-Identifier: MIT
/*
 * Validation of untrusted images: every kind of malformed header, table or
 * entry the engine refuses gives a clear error and a reason, never a crash;
 * the states it accepts (read-only opens of dirty or corrupt-marked images,
 * version 2) work. Ends with random damage to a small image.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qcow2.h"
#include "qcow2-internal.h"

/* A small valid image (512-byte clusters, 1 MiB) with some data, as bytes. */
struct image {
	char dir[256];
	char path[300];
	uint8_t *bytes;
	size_t len;
	uint64_t l1_offset, rt_offset, l2_offset, data_offset;
};

static void image_save(const struct image *img, const uint8_t *bytes, size_t len)
{
	int fd = open(img->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

static int setup(void **state)
{
	struct image *img = calloc(1, sizeof(*img));
	const char *tmp = getenv("TMPDIR");
	struct qcow2_create_opts o = {.size = 1u << 20, .cluster_size = 512};
	struct qcow2_reason why;
	struct qcow2 *q;
	uint8_t data[1500];
	int fd;

	snprintf(img->dir, sizeof(img->dir), "%s/fvm-qcow2-open.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(img->dir))
		return -1;
	snprintf(img->path, sizeof(img->path), "%s/img.qcow2", img->dir);
	if (qcow2_create(img->path, &o, &why) < 0)
		return -1;
	if (qcow2_open(img->path, QCOW2_OPEN_RW, &q, &why) < 0)
		return -1;
	memset(data, 0x5a, sizeof(data));
	if (qcow2_write(q, data, sizeof(data), 0) < 0)
		return -1;
	qcow2_close(q);

	fd = open(img->path, O_RDONLY | O_CLOEXEC);
	img->len = (size_t)lseek(fd, 0, SEEK_END);
	img->bytes = malloc(img->len);
	if (pread(fd, img->bytes, img->len, 0) != (ssize_t)img->len)
		return -1;
	close(fd);

	img->l1_offset = qcow2_get_be64(img->bytes + HDR_L1_OFFSET);
	img->rt_offset = qcow2_get_be64(img->bytes + HDR_RT_OFFSET);
	img->l2_offset = qcow2_get_be64(img->bytes + img->l1_offset) & QCOW2_OFFSET_MASK;
	img->data_offset = qcow2_get_be64(img->bytes + img->l2_offset) & QCOW2_OFFSET_MASK;
	if (!img->l2_offset || !img->data_offset)
		return -1;
	*state = img;
	return 0;
}

static int teardown(void **state)
{
	struct image *img = *state;

	unlink(img->path);
	rmdir(img->dir);
	free(img->bytes);
	free(img);
	return 0;
}

/* Open a damaged copy; the error must come with a reason. */
static int try_open(struct image *img, const uint8_t *bytes, size_t len, unsigned flags,
		    struct qcow2 **ret_q, struct qcow2_reason *why)
{
	struct qcow2 *q = NULL;
	int r;

	image_save(img, bytes, len);
	memset(why, 0, sizeof(*why));
	r = qcow2_open(img->path, flags, &q, why);
	if (r < 0) {
		assert_true(strlen(why->msg) > 0);
		assert_null(q);
	} else if (ret_q) {
		*ret_q = q;
	} else {
		qcow2_close(q);
	}
	return r;
}

struct patch_case {
	const char *name;
	unsigned field; /* byte offset */
	unsigned width; /* 4 or 8 */
	uint64_t value;
	unsigned flags;
	int expect;
};

static void put(uint8_t *p, unsigned width, uint64_t v)
{
	if (width == 8)
		qcow2_put_be64(p, v);
	else
		qcow2_put_be32(p, (uint32_t)v);
}

static void test_header_fields(void **state)
{
	struct image *img = *state;
	const struct patch_case cases[] = {
	    {"bad magic", HDR_MAGIC, 4, 0x12345678, 0, -EINVAL},
	    {"version 1", HDR_VERSION, 4, 1, 0, -EINVAL},
	    {"version 4", HDR_VERSION, 4, 4, 0, -EINVAL},
	    {"version 2 read-write", HDR_VERSION, 4, 2, QCOW2_OPEN_RW, -ENOTSUP},
	    {"version 2 read-only", HDR_VERSION, 4, 2, 0, 0},
	    {"cluster_bits 8", HDR_CLUSTER_BITS, 4, 8, 0, -EINVAL},
	    {"cluster_bits 22", HDR_CLUSTER_BITS, 4, 22, 0, -EINVAL},
	    {"cluster_bits huge", HDR_CLUSTER_BITS, 4, 0xffffffff, 0, -EINVAL},
	    {"header_length short", HDR_HEADER_LENGTH, 4, 96, 0, -EINVAL},
	    {"header_length odd", HDR_HEADER_LENGTH, 4, 108, 0, -EINVAL},
	    {"header_length past cluster", HDR_HEADER_LENGTH, 4, 1024, 0, -EINVAL},
	    {"virtual size huge", HDR_SIZE, 8, 1ull << 62, 0, -EINVAL},
	    {"virtual size past L1", HDR_SIZE, 8, 2u << 20, 0, -EINVAL},
	    {"l1_size huge", HDR_L1_SIZE, 4, 0xffffffff, 0, -EINVAL},
	    {"l1_size too small", HDR_L1_SIZE, 4, 0, 0, -EINVAL},
	    {"l1_size past EOF", HDR_L1_SIZE, 4, 100000, 0, -EINVAL},
	    {"L1 past EOF", HDR_L1_OFFSET, 8, 1ull << 40, 0, -EINVAL},
	    {"L1 unaligned", HDR_L1_OFFSET, 8, 1536 + 8, 0, -EINVAL},
	    {"L1 on the header", HDR_L1_OFFSET, 8, 0, 0, -EINVAL},
	    {"L1 offset overflows", HDR_L1_OFFSET, 8, UINT64_MAX - 511, 0, -EINVAL},
	    {"refcount table past EOF", HDR_RT_OFFSET, 8, 1ull << 40, 0, -EINVAL},
	    {"refcount table unaligned", HDR_RT_OFFSET, 8, 513, 0, -EINVAL},
	    {"refcount table on the header", HDR_RT_OFFSET, 8, 0, 0, -EINVAL},
	    {"refcount table empty", HDR_RT_CLUSTERS, 4, 0, 0, -EINVAL},
	    {"refcount table huge", HDR_RT_CLUSTERS, 4, 0x7fffffff, 0, -EINVAL},
	    {"refcount table past EOF (size)", HDR_RT_CLUSTERS, 4, 10000, 0, -EINVAL},
	    {"unknown incompatible bit 5", HDR_INCOMPAT, 8, 1ull << 5, 0, -ENOTSUP},
	    {"unknown incompatible bit 63", HDR_INCOMPAT, 8, 1ull << 63, 0, -ENOTSUP},
	    {"external data file", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_DATA_FILE, 0, -ENOTSUP},
	    {"compression type", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_COMPRESSION, 0, -ENOTSUP},
	    {"extended L2", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_EXTL2, 0, -ENOTSUP},
	    {"corrupt, read-write", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_CORRUPT, QCOW2_OPEN_RW,
	     -EUCLEAN},
	    {"corrupt, read-only", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_CORRUPT, 0, 0},
	    {"dirty, read-write", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_DIRTY, QCOW2_OPEN_RW, -EUCLEAN},
	    {"dirty, read-only", HDR_INCOMPAT, 8, QCOW2_INCOMPAT_DIRTY, 0, 0},
	    {"lazy refcounts", HDR_COMPAT, 8, QCOW2_COMPAT_LAZY_REFCOUNTS, QCOW2_OPEN_RW, 0},
	    {"unknown compatible bits", HDR_COMPAT, 8, ~0ull, QCOW2_OPEN_RW, 0},
	    {"AES encryption", HDR_CRYPT_METHOD, 4, 1, 0, -ENOTSUP},
	    {"LUKS encryption", HDR_CRYPT_METHOD, 4, 2, 0, -ENOTSUP},
	    {"refcount_order 7", HDR_REFCOUNT_ORDER, 4, 7, 0, -EINVAL},
	    {"refcount_order huge", HDR_REFCOUNT_ORDER, 4, 0xffffffff, 0, -EINVAL},
	    {"too many snapshots", HDR_NB_SNAPSHOTS, 4, 100000, 0, -EINVAL},
	    {"snapshot table on the header", HDR_NB_SNAPSHOTS, 4, 1, 0, -EINVAL},
	    {"backing name too long", HDR_BACKING_SIZE, 4, 2000, 0, -EINVAL},
	    {"backing name past the cluster", HDR_BACKING_OFFSET, 8, 510, 0, -EINVAL},
	    {"backing name inside the header", HDR_BACKING_OFFSET, 8, 8, 0, -EINVAL},
	};
	uint8_t *b = malloc(img->len);

	assert_non_null(b);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct patch_case *c = &cases[i];
		struct qcow2_reason why;
		int r;

		memcpy(b, img->bytes, img->len);
		put(b + c->field, c->width, c->value);
		/* Backing-name cases need a length (or offset) to go with them. */
		if (c->field == HDR_BACKING_SIZE)
			qcow2_put_be64(b + HDR_BACKING_OFFSET, 200);
		if (c->field == HDR_BACKING_OFFSET)
			qcow2_put_be32(b + HDR_BACKING_SIZE, 10);
		r = try_open(img, b, img->len, c->flags, NULL, &why);
		if (r != c->expect)
			print_error("case '%s': got %d (%s), expected %d\n", c->name, r, why.msg,
				    c->expect);
		assert_int_equal(r, c->expect);
	}
	free(b);
}

static void test_truncated(void **state)
{
	struct image *img = *state;
	static const size_t lens[] = {0, 3, 4, 71, 72, 100, 103, 104, 600, 1000, 1600};
	struct qcow2_reason why;

	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		assert_int_equal(try_open(img, img->bytes, lens[i], 0, NULL, &why), -EINVAL);
}

/* Header extensions start at 104 in our images; build them by hand. */
static size_t put_ext(uint8_t *b, size_t off, uint32_t type, const void *data, uint32_t len)
{
	qcow2_put_be32(b + off, type);
	qcow2_put_be32(b + off + 4, len);
	memcpy(b + off + 8, data, len);
	return off + 8 + ALIGN_UP(len, 8u);
}

static void test_extensions(void **state)
{
	struct image *img = *state;
	uint8_t *b = malloc(img->len);
	struct qcow2_reason why;
	struct qcow2 *q;
	uint8_t table[48] = {0, 5};
	size_t off;

	assert_non_null(b);

	/* An extension longer than the header cluster. */
	memcpy(b, img->bytes, img->len);
	put_ext(b, HDR_V3_LENGTH, 0x1234, "", 0);
	qcow2_put_be32(b + HDR_V3_LENGTH + 4, 0xffffff);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -EINVAL);

	/* Two backing format extensions. */
	memcpy(b, img->bytes, img->len);
	off = put_ext(b, HDR_V3_LENGTH, QCOW2_EXT_BACKING_FORMAT, "raw", 3);
	put_ext(b, off, QCOW2_EXT_BACKING_FORMAT, "raw", 3);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -EINVAL);

	/* A backing format that is no format of ours. */
	memcpy(b, img->bytes, img->len);
	off = put_ext(b, HDR_V3_LENGTH, QCOW2_EXT_BACKING_FORMAT, "vmdk", 4);
	qcow2_put_be64(b + HDR_BACKING_OFFSET, 300);
	qcow2_put_be32(b + HDR_BACKING_SIZE, 7);
	memcpy(b + 300, "img.raw", 7);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -ENOTSUP);
	assert_non_null(strstr(why.msg, "vmdk"));
	/* ...which does not matter when the chain is not opened. */
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_NO_BACKING, NULL, &why), 0);

	/* An encryption header in an unencrypted image. */
	memcpy(b, img->bytes, img->len);
	put_ext(b, HDR_V3_LENGTH, QCOW2_EXT_CRYPTO, "0123456789abcdef", 16);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -EINVAL);

	/* A bad feature table length. */
	memcpy(b, img->bytes, img->len);
	put_ext(b, HDR_V3_LENGTH, QCOW2_EXT_FEATURE_TABLE, table, 40);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -EINVAL);

	/* An unknown incompatible feature is named from the image's own table. */
	memcpy(b, img->bytes, img->len);
	memcpy(table + 2, "shiny feature", 13);
	put_ext(b, HDR_V3_LENGTH, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
	qcow2_put_be64(b + HDR_INCOMPAT, 1ull << 5);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -ENOTSUP);
	assert_non_null(strstr(why.msg, "shiny feature"));

	/* Unknown extensions are skipped; unknown auto-clear bits are cleared on write. */
	memcpy(b, img->bytes, img->len);
	off = put_ext(b, HDR_V3_LENGTH, 0x77777777, "whatever", 8);
	put_ext(b, off, QCOW2_EXT_BITMAPS, "0123456789abcdef01234567", 24);
	qcow2_put_be64(b + HDR_AUTOCLEAR, 3);
	q = NULL;
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, &q, &why), 0);
	qcow2_close(q);
	{
		uint8_t h[8];
		int fd = open(img->path, O_RDONLY | O_CLOEXEC);

		assert_int_equal(pread(fd, h, 8, HDR_AUTOCLEAR), 8);
		close(fd);
		assert_int_equal(qcow2_get_be64(h), 0);
	}

	/* A backing name with a NUL inside. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + HDR_BACKING_OFFSET, 300);
	qcow2_put_be32(b + HDR_BACKING_SIZE, 7);
	memcpy(b + 300, "a\0b.raw", 7);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), -EINVAL);
	free(b);
}

static void test_tables(void **state)
{
	struct image *img = *state;
	uint8_t *b = malloc(img->len);
	struct qcow2_reason why;
	const uint64_t l1 = img->l1_offset, rt = img->rt_offset;
	const uint64_t copied = QCOW2_OFLAG_COPIED;

	assert_non_null(b);

	struct {
		const char *name;
		uint64_t at, value;
	} cases[] = {
	    {"L1 entry reserved bits", l1, img->l2_offset | copied | 2},
	    {"L1 entry bit 56", l1, img->l2_offset | copied | (1ull << 56)},
	    {"L2 table past EOF", l1, (1ull << 40) | copied},
	    {"L2 table on the refcount table", l1, rt | copied},
	    {"L2 table on the L1 table", l1, l1 | copied},
	    {"refcount block unaligned", rt, qcow2_get_be64(img->bytes + rt) + 8},
	    {"refcount block past EOF", rt, 1ull << 40},
	    {"refcount block on the header", rt, 512 | 1},
	    {"refcount block on the L1 table", rt, l1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r;

		memcpy(b, img->bytes, img->len);
		qcow2_put_be64(b + cases[i].at, cases[i].value);
		r = try_open(img, b, img->len, 0, NULL, &why);
		if (r != -EINVAL)
			print_error("case '%s': got %d (%s)\n", cases[i].name, r, why.msg);
		assert_int_equal(r, -EINVAL);
	}
	free(b);
}

/* Damaged L2 entries: found at use, reported, never followed blindly. */
static void test_l2_entries(void **state)
{
	struct image *img = *state;
	uint8_t *b = malloc(img->len);
	uint8_t buf[1024];
	struct qcow2_reason why;
	struct qcow2 *q;
	uint64_t e = img->l2_offset; /* entry for guest cluster 0 */
	uint64_t l1 = img->l1_offset;

	assert_non_null(b);

	/* A compressed cluster: not supported, and said so. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e, QCOW2_OFLAG_COMPRESSED | 12345);
	assert_int_equal(try_open(img, b, img->len, 0, &q, &why), 0);
	assert_int_equal(qcow2_read(q, buf, 512, 0), -ENOTSUP);
	assert_non_null(strstr(qcow2_last_error(q), "compressed"));
	qcow2_close(q);

	/* Reserved bits. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e, img->data_offset | QCOW2_OFLAG_COPIED | 0x10);
	assert_int_equal(try_open(img, b, img->len, 0, &q, &why), 0);
	assert_int_equal(qcow2_read(q, buf, 512, 0), -EIO);
	qcow2_close(q);

	/* Offset zero with the copied flag: would be the header. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e, QCOW2_OFLAG_COPIED);
	assert_int_equal(try_open(img, b, img->len, 0, &q, &why), 0);
	assert_int_equal(qcow2_read(q, buf, 512, 0), -EIO);
	qcow2_close(q);

	/* Data "in" the L1 table: reading is harmless, writing is refused. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e, l1 | QCOW2_OFLAG_COPIED);
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, &q, &why), 0);
	assert_int_equal(qcow2_read(q, buf, 512, 0), 0);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(qcow2_write(q, buf, 512, 0), -EIO);
	assert_non_null(strstr(qcow2_last_error(q), "metadata"));
	qcow2_close(q);

	/* Data far past the end of the file reads as zeros; in-place writes refuse. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e, (1ull << 50) | QCOW2_OFLAG_COPIED);
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, &q, &why), 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(qcow2_read(q, buf, 512, 0), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(qcow2_write(q, buf, 512, 0), -EIO);
	qcow2_close(q);

	/* A shared data cluster (no copied flag) is copied before writing. */
	memcpy(b, img->bytes, img->len);
	qcow2_put_be64(b + e + 8, img->data_offset + 512); /* guest cluster 1, unflagged */
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, &q, &why), 0);
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(qcow2_write(q, buf, 10, 512), 0);
	assert_int_equal(qcow2_read(q, buf, 512, 512), 0);
	assert_int_equal(buf[0], 0x77);
	assert_int_equal(buf[10], 0x5a);
	qcow2_close(q);

	/* A metadata cluster counted free: writing would hand it out. */
	memcpy(b, img->bytes, img->len);
	{
		uint64_t rb = qcow2_get_be64(b + img->rt_offset);

		/* 16-bit refcounts: the L1 table's entry. */
		b[rb + 2 * (l1 / 512)] = 0;
		b[rb + 2 * (l1 / 512) + 1] = 0;
	}
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, NULL, &why), -EUCLEAN);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), 0);
	free(b);
}

/* Internal snapshots: readable, never written. */
static void test_snapshots(void **state)
{
	struct image *img = *state;
	uint8_t *b = malloc(img->len);
	struct qcow2_reason why;

	assert_non_null(b);
	memcpy(b, img->bytes, img->len);
	qcow2_put_be32(b + HDR_NB_SNAPSHOTS, 1);
	qcow2_put_be64(b + HDR_SNAPSHOTS_OFFSET, img->len - 512);
	assert_int_equal(try_open(img, b, img->len, 0, NULL, &why), 0);
	assert_int_equal(try_open(img, b, img->len, QCOW2_OPEN_RW, NULL, &why), -ENOTSUP);
	assert_non_null(strstr(why.msg, "snapshot"));
	free(b);
}

/* Random damage: whatever opens must read, write and check without crashing. */
static void test_random_damage(void **state)
{
	struct image *img = *state;
	uint8_t *b = malloc(img->len);
	uint8_t *buf = malloc(1u << 20);
	uint64_t s = 0x9e3779b97f4a7c15ull;
	unsigned opened = 0;

	assert_non_null(b);
	assert_non_null(buf);
	for (int i = 0; i < 1500; i++) {
		struct qcow2_reason why;
		struct qcow2 *q = NULL;
		int flips;

		memcpy(b, img->bytes, img->len);
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		flips = 1 + (int)(s % 4);
		for (int j = 0; j < flips; j++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			/* Mostly the header and the tables, which is where it matters. */
			b[(s >> 8) % MIN(img->len, (size_t)2560)] ^= (uint8_t)(1u << (s % 8));
		}
		if (try_open(img, b, img->len, (i % 2) ? QCOW2_OPEN_RW : 0, &q, &why) < 0)
			continue;
		opened++;
		(void)!qcow2_read(q, buf, qcow2_size(q) < (1u << 20) ? qcow2_size(q) : 1u << 20, 0);
		if (i % 2) {
			memset(buf, 0x33, 4096);
			(void)!qcow2_write(q, buf, MIN(qcow2_size(q), 4096u), 0);
			(void)!qcow2_write_zeroes(q, 0, MIN(qcow2_size(q), 2048u));
			(void)!qcow2_flush(q);
		}
		{
			struct qcow2_check_result res;

			(void)!qcow2_check(q, &res);
		}
		qcow2_close(q);
	}
	assert_true(opened > 0);
	free(buf);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_header_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_extensions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tables, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_l2_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_damage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
