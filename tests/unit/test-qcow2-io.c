// SPDX-License-Identifier: MIT
/*
 * The qcow2 engine against a plain reference buffer: random writes,
 * zeroes, discards and reads across cluster boundaries, small clusters and
 * narrow or wide refcounts (so that refcount blocks and the refcount table
 * grow), backing chains four images deep, reopening, commit, the mapping
 * API and the generic disk interface. After every workload the engine's
 * own check must find neither corruption nor leak.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk.h"
#include "qcow2.h"
#include "qcow2-internal.h"

struct fixture {
	char dir[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	snprintf(f->dir, sizeof(f->dir), "%s/fvm-qcow2-io.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static const char *path_of(struct fixture *f, const char *name)
{
	static char paths[8][512];
	static unsigned next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%s", f->dir, name);
	return p;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_random(uint8_t *p, uint64_t len, uint64_t *s)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng(s) >> 24);
}

static struct qcow2 *open_ok(const char *path, unsigned flags)
{
	struct qcow2_reason why = {};
	struct qcow2 *q = NULL;
	int r = qcow2_open(path, flags, &q, &why);

	if (r < 0)
		print_error("open %s: %s\n", path, why.msg);
	assert_int_equal(r, 0);
	return q;
}

static void create_ok(const char *path, uint64_t size, const char *backing, uint32_t cluster,
		      uint32_t refbits)
{
	struct qcow2_create_opts o = {
	    .size = size,
	    .backing = backing,
	    .cluster_size = cluster,
	    .refcount_bits = refbits,
	};
	struct qcow2_reason why = {};
	int r = qcow2_create(path, &o, &why);

	if (r < 0)
		print_error("create %s: %s\n", path, why.msg);
	assert_int_equal(r, 0);
}

static void expect_clean(struct qcow2 *q)
{
	struct qcow2_check_result res;

	assert_int_equal(qcow2_check(q, &res), 0);
	if (res.corruptions || res.leaks)
		print_error("check: %llu corruptions, %llu leaks\n",
			    (unsigned long long)res.corruptions, (unsigned long long)res.leaks);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
}

static void expect_equal(struct qcow2 *q, const uint8_t *ref, uint64_t size)
{
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	assert_int_equal(qcow2_read(q, buf, size, 0), 0);
	for (uint64_t i = 0; i < size; i++) {
		if (buf[i] != ref[i]) {
			print_error("byte 0x%llx: 0x%02x, expected 0x%02x\n", (unsigned long long)i,
				    buf[i], ref[i]);
			fail();
		}
	}
	free(buf);
}

/*
 * Random operations, mirrored on the reference: writes of 1 byte to 3
 * clusters at any offset, zeroes, discards (whole clusters read as zeros
 * afterwards, partial ones keep their data), reads compared on the spot,
 * and now and then a flush.
 */
static void random_ops(struct qcow2 *q, uint8_t *ref, uint64_t size, uint64_t cluster,
		       unsigned nops, uint64_t *seed)
{
	uint8_t *buf = malloc(3 * cluster + 1);

	assert_non_null(buf);
	for (unsigned i = 0; i < nops; i++) {
		uint64_t kind = rng(seed) % 100;
		uint64_t len = 1 + rng(seed) % (3 * cluster);
		uint64_t off = rng(seed) % size;

		/* Cluster-aligned half of the time: the whole-cluster paths. */
		if (rng(seed) % 2) {
			off = ALIGN_DOWN(off, cluster);
			len = ALIGN_UP(len, cluster);
		}
		len = MIN(len, size - off);

		if (kind < 55) {
			fill_random(buf, len, seed);
			assert_int_equal(qcow2_write(q, buf, len, off), 0);
			memcpy(ref + off, buf, len);
		} else if (kind < 65) {
			assert_int_equal(qcow2_write_zeroes(q, off, len), 0);
			memset(ref + off, 0, len);
		} else if (kind < 75) {
			assert_int_equal(qcow2_discard(q, off, len), 0);
			for (uint64_t c = ALIGN_UP(off, cluster); c < off + len; c += cluster)
				if (c + cluster <= off + len || off + len == size)
					memset(ref + c, 0, MIN(cluster, size - c));
		} else if (kind < 95) {
			assert_int_equal(qcow2_read(q, buf, len, off), 0);
			assert_memory_equal(buf, ref + off, len);
		} else {
			assert_int_equal(qcow2_flush(q), 0);
		}
	}
	free(buf);
}

static void standalone_case(struct fixture *f, uint32_t cluster, uint32_t refbits, uint64_t size,
			    unsigned nops)
{
	const char *path = path_of(f, "standalone.qcow2");
	uint64_t seed = 0x1234567 + cluster * 31 + refbits;
	uint8_t *ref = calloc(1, size);
	struct qcow2 *q;

	assert_non_null(ref);
	unlink(path);
	create_ok(path, size, NULL, cluster, refbits);

	q = open_ok(path, QCOW2_OPEN_RW);
	expect_equal(q, ref, size);
	random_ops(q, ref, size, cluster, nops, &seed);
	expect_equal(q, ref, size);
	expect_clean(q);
	qcow2_close(q);

	/* Everything is on disk: a fresh open sees the same, and can go on. */
	q = open_ok(path, QCOW2_OPEN_RW);
	expect_equal(q, ref, size);
	random_ops(q, ref, size, cluster, nops / 2, &seed);
	expect_clean(q);
	qcow2_close(q);

	q = open_ok(path, 0);
	expect_equal(q, ref, size);
	qcow2_close(q);
	free(ref);
}

static void test_standalone_random(void **state)
{
	static const uint32_t clusters[] = {512, 4096, 65536};
	static const uint32_t refbits[] = {1, 2, 4, 8, 16, 32, 64};

	for (size_t c = 0; c < ARRAY_SIZE(clusters); c++)
		for (size_t r = 0; r < ARRAY_SIZE(refbits); r++)
			standalone_case(
			    *state, clusters[c], refbits[r],
			    clusters[c] == 65536 ? (4u << 20) + 12345 : (1u << 20) + 777, 600);
}

/* 512-byte clusters with 64-bit refcounts: 64 clusters per refcount block. */
static void test_refcount_table_growth(void **state)
{
	struct fixture *f = *state;
	const char *path = path_of(f, "grow.qcow2");
	const uint64_t size = 8u << 20;
	uint64_t seed = 99;
	uint8_t *ref = malloc(size);
	struct qcow2 *q;
	uint32_t rt_before;

	assert_non_null(ref);
	create_ok(path, size, NULL, 512, 64);
	q = open_ok(path, QCOW2_OPEN_RW);
	rt_before = q->rt_clusters;

	fill_random(ref, size, &seed);
	/* In uneven pieces, so that allocation and table growth interleave. */
	for (uint64_t off = 0; off < size;) {
		uint64_t n = MIN(size - off, 1 + rng(&seed) % 70000);

		assert_int_equal(qcow2_write(q, ref + off, n, off), 0);
		off += n;
	}
	assert_true(q->rt_clusters > rt_before);
	expect_equal(q, ref, size);
	random_ops(q, ref, size, 512, 2000, &seed);
	expect_clean(q);
	qcow2_close(q);

	q = open_ok(path, 0);
	expect_equal(q, ref, size);
	expect_clean(q);
	qcow2_close(q);
	free(ref);
}

static void write_file(const char *path, const uint8_t *data, uint64_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	close(fd);
}

/*
 * raw <- a <- b <- c <- d, each written while on top, with sizes that
 * differ (reads past a shorter backing image give zeros). Every level must
 * read exactly like its reference.
 */
static void test_backing_chain(void **state)
{
	struct fixture *f = *state;
	static const char *names[] = {"a.qcow2", "b.qcow2", "c.qcow2", "d.qcow2"};
	static const uint32_t clusters[] = {4096, 512, 65536, 2048};
	const uint64_t base_size = 1u << 20, size = (2u << 20) + 4096;
	uint8_t *ref = calloc(1, size);
	uint64_t seed = 7;
	const char *prev = "base.raw";

	assert_non_null(ref);
	fill_random(ref, base_size, &seed);
	write_file(path_of(f, "base.raw"), ref, base_size);

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct qcow2 *q;

		create_ok(path_of(f, names[i]), size, prev, clusters[i], 16);
		q = open_ok(path_of(f, names[i]), QCOW2_OPEN_RW);
		assert_int_equal(q->chain_depth, i + 1);
		expect_equal(q, ref, size);
		random_ops(q, ref, size, clusters[i], 400, &seed);
		expect_equal(q, ref, size);
		expect_clean(q);
		qcow2_close(q);
		prev = names[i];
	}

	/* Opened fresh, read-only, through four layers. */
	{
		struct qcow2 *q = open_ok(path_of(f, "d.qcow2"), 0);

		expect_equal(q, ref, size);
		qcow2_close(q);
	}
	free(ref);
}

/* Commit d into c, then c into b...: the chain reads the same throughout. */
static void test_commit(void **state)
{
	struct fixture *f = *state;
	const uint64_t size = 1u << 20;
	uint8_t *ref = calloc(1, size), *base = NULL;
	struct qcow2_reason why;
	uint64_t seed = 11;
	struct qcow2 *q;

	assert_non_null(ref);
	fill_random(ref, size / 2, &seed);
	write_file(path_of(f, "cbase.raw"), ref, size / 2);
	create_ok(path_of(f, "c1.qcow2"), size, "cbase.raw", 4096, 16);
	create_ok(path_of(f, "c2.qcow2"), size, "c1.qcow2", 512, 16);
	create_ok(path_of(f, "c3.qcow2"), size, "c2.qcow2", 65536, 16);

	q = open_ok(path_of(f, "c1.qcow2"), QCOW2_OPEN_RW);
	random_ops(q, ref, size, 4096, 300, &seed);
	qcow2_close(q);
	q = open_ok(path_of(f, "c2.qcow2"), QCOW2_OPEN_RW);
	random_ops(q, ref, size, 512, 300, &seed);
	qcow2_close(q);
	q = open_ok(path_of(f, "c3.qcow2"), QCOW2_OPEN_RW);
	random_ops(q, ref, size, 65536, 300, &seed);
	expect_equal(q, ref, size);

	/* Commit needs the backing image writable. */
	assert_int_equal(qcow2_commit(q, &why), -EROFS);
	qcow2_close(q);

	q = open_ok(path_of(f, "c3.qcow2"), QCOW2_OPEN_RW | QCOW2_OPEN_BACKING_RW);
	assert_int_equal(qcow2_commit(q, &why), 0);
	expect_equal(q, ref, size);
	expect_clean(q);
	{
		struct qcow2_info info;

		assert_int_equal(qcow2_get_info(q, &info), 0);
		assert_int_equal(info.allocated_bytes, 0);
		assert_int_equal(info.zero_clusters, 0);
	}
	qcow2_close(q);

	/* c2 alone now holds everything c3 had. */
	q = open_ok(path_of(f, "c2.qcow2"), QCOW2_OPEN_RW | QCOW2_OPEN_BACKING_RW);
	expect_equal(q, ref, size);
	expect_clean(q);
	assert_int_equal(qcow2_commit(q, &why), 0);
	qcow2_close(q);

	/* And down to the raw file, which grows to the overlay's size. */
	q = open_ok(path_of(f, "c1.qcow2"), QCOW2_OPEN_RW | QCOW2_OPEN_BACKING_RW);
	assert_int_equal(qcow2_commit(q, &why), 0);
	expect_clean(q);
	qcow2_close(q);

	base = malloc(size);
	assert_non_null(base);
	{
		int fd = open(path_of(f, "cbase.raw"), O_RDONLY | O_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, base, size, 0), (ssize_t)size);
		close(fd);
	}
	assert_memory_equal(base, ref, size);

	/* Commit without a backing image says why. */
	create_ok(path_of(f, "lone.qcow2"), size, NULL, 0, 0);
	q = open_ok(path_of(f, "lone.qcow2"), QCOW2_OPEN_RW);
	assert_int_equal(qcow2_commit(q, &why), -EINVAL);
	assert_non_null(strstr(why.msg, "no backing file"));
	qcow2_close(q);
	free(base);
	free(ref);
}

static void test_map(void **state)
{
	struct fixture *f = *state;
	const uint64_t cs = 65536, size = 16 * cs;
	uint8_t *data = malloc(size), *back = malloc(2 * cs);
	struct qcow2_extent e;
	uint64_t seed = 5;
	struct qcow2 *q;

	assert_non_null(data);
	assert_non_null(back);
	fill_random(back, 2 * cs, &seed);
	write_file(path_of(f, "mbase.raw"), back, 2 * cs);
	create_ok(path_of(f, "m.qcow2"), size, "mbase.raw", cs, 16);
	q = open_ok(path_of(f, "m.qcow2"), QCOW2_OPEN_RW);

	/* Unallocated over the raw file: its bytes, depth 1, up to its end. */
	assert_int_equal(qcow2_map(q, 100, size - 100, 0, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_DATA);
	assert_int_equal(e.depth, 1);
	assert_int_equal(e.host_offset, 100);
	assert_int_equal(e.len, 2 * cs - 100);
	assert_int_equal(qcow2_map(q, 2 * cs, size - 2 * cs, 0, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_ZERO);

	/* Written clusters: ours, contiguous in the file, writable in place. */
	fill_random(data, 3 * cs, &seed);
	assert_int_equal(qcow2_write(q, data, 3 * cs, 4 * cs), 0);
	assert_int_equal(qcow2_map(q, 4 * cs + 10, 3 * cs, 0, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_DATA);
	assert_int_equal(e.depth, 0);
	assert_int_equal(e.len, 3 * cs - 10);
	assert_int_equal(qcow2_map(q, 4 * cs, cs, QCOW2_MAP_WRITE, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_DATA);
	{
		/* Writing through the extent is what an io_uring path would do. */
		uint8_t x[512];

		memset(x, 0xee, sizeof(x));
		assert_int_equal(pwrite(e.fd, x, sizeof(x), (off_t)e.host_offset), 512);
		memcpy(data, x, sizeof(x));
	}
	assert_int_equal(qcow2_map(q, 0, cs, QCOW2_MAP_WRITE, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_NEEDS_ALLOC);

	/* Zero clusters map as zeros, whatever lies below. */
	assert_int_equal(qcow2_write_zeroes(q, 0, cs), 0);
	assert_int_equal(qcow2_map(q, 0, size, 0, &e), 0);
	assert_int_equal(e.kind, QCOW2_EXTENT_ZERO);
	assert_int_equal(e.len, cs);

	/* Bad ranges. */
	assert_int_equal(qcow2_map(q, size, 1, 0, &e), -EINVAL);
	assert_int_equal(qcow2_map(q, 0, 0, 0, &e), -EINVAL);
	assert_int_equal(qcow2_map(q, UINT64_MAX, 2, 0, &e), -EINVAL);
	assert_int_equal(qcow2_read(q, data, 2, size - 1), -EINVAL);
	assert_true(strlen(qcow2_last_error(q)) > 0);

	{
		uint8_t got[3 * 65536];

		assert_int_equal(qcow2_read(q, got, 3 * cs, 4 * cs), 0);
		assert_memory_equal(got, data, 3 * cs);
	}
	expect_clean(q);
	qcow2_close(q);
	free(back);
	free(data);
}

static void test_disk_api(void **state)
{
	struct fixture *f = *state;
	struct disk_reason why;
	struct disk *d = NULL;
	uint8_t buf[8192], got[8192];
	uint64_t seed = 3;

	/* Raw, probed. */
	{
		uint8_t *zeros = calloc(4, sizeof(buf));

		assert_non_null(zeros);
		write_file(path_of(f, "d.raw"), zeros, sizeof(buf) * 4);
		free(zeros);
	}
	assert_int_equal(disk_open(path_of(f, "d.raw"), false, &d, &why), 0);
	assert_int_equal(disk_format(d), DISK_FORMAT_RAW);
	assert_int_equal(disk_size(d), sizeof(buf) * 4);
	fill_random(buf, sizeof(buf), &seed);
	assert_int_equal(disk_write(d, buf, sizeof(buf), 4096), 0);
	assert_int_equal(disk_read(d, got, sizeof(got), 4096), 0);
	assert_memory_equal(buf, got, sizeof(buf));
	assert_int_equal(disk_write_zeroes(d, 4096, 4096), 0);
	assert_int_equal(disk_read(d, got, 4096, 4096), 0);
	memset(buf, 0, 4096);
	assert_memory_equal(buf, got, 4096);
	assert_int_equal(disk_discard(d, 0, 4096), 0);
	assert_int_equal(disk_flush(d), 0);
	/* A guest may not turn a probed raw disk into a qcow2 image. */
	memcpy(buf, "QFI\xfb", 4);
	assert_int_equal(disk_write(d, buf, 512, 0), -EPERM);
	assert_int_equal(disk_write(d, buf, 1, 0), 0);
	assert_int_equal(disk_write(d, buf + 1, 3, 1), -EPERM);
	assert_true(strlen(disk_last_error(d)) > 0);
	assert_int_equal(disk_read(d, got, 2, disk_size(d) - 1), -EINVAL);
	{
		struct disk_extent e;

		assert_int_equal(disk_map(d, 8192, 100, false, &e), 0);
		assert_int_equal(e.kind, DISK_EXTENT_DATA);
		assert_int_equal(e.host_offset, 8192);
	}
	disk_close(d);

	/* Read-only raw. */
	assert_int_equal(disk_open(path_of(f, "d.raw"), true, &d, &why), 0);
	assert_int_equal(disk_write(d, buf, 1, 100), -EROFS);
	disk_close(d);

	/* qcow2, probed, over the raw file. */
	create_ok(path_of(f, "d.qcow2"), 0, "d.raw", 4096, 16);
	assert_int_equal(disk_open(path_of(f, "d.qcow2"), false, &d, &why), 0);
	assert_int_equal(disk_format(d), DISK_FORMAT_QCOW2);
	assert_int_equal(disk_size(d), sizeof(buf) * 4);
	fill_random(buf, sizeof(buf), &seed);
	assert_int_equal(disk_write(d, buf, sizeof(buf), 100), 0);
	assert_int_equal(disk_read(d, got, sizeof(got), 100), 0);
	assert_memory_equal(buf, got, sizeof(buf));
	assert_int_equal(disk_write_zeroes(d, 0, 32768), 0);
	assert_int_equal(disk_read(d, got, sizeof(got), 0), 0);
	memset(buf, 0, sizeof(buf));
	assert_memory_equal(buf, got, sizeof(got));
	assert_int_equal(disk_discard(d, 0, 32768), 0);
	assert_int_equal(disk_flush(d), 0);
	disk_close(d);

	/* Failures give a reason. */
	assert_int_equal(disk_open(path_of(f, "nothere"), false, &d, &why), -ENOENT);
	assert_non_null(strstr(why.msg, "nothere"));
	assert_int_equal(disk_open_format(path_of(f, "d.raw"), DISK_FORMAT_QCOW2, true, &d, &why),
			 -EINVAL);
	assert_non_null(strstr(why.msg, "magic"));
}

/* Patch an image's backing name in place (no format: the engine probes). */
static void set_backing(const char *path, const char *name)
{
	uint8_t h[16];
	int fd = open(path, O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	qcow2_put_be64(h, 256);
	qcow2_put_be32(h + 8, (uint32_t)strlen(name));
	assert_int_equal(pwrite(fd, h, 12, HDR_BACKING_OFFSET), 12);
	assert_int_equal(pwrite(fd, name, strlen(name), 256), (ssize_t)strlen(name));
	close(fd);
}

static void test_chain_limits(void **state)
{
	struct fixture *f = *state;
	struct qcow2_reason why;
	struct qcow2 *q = NULL;
	char name[32], prev[32];

	/* A loop: x -> y -> x. */
	create_ok(path_of(f, "x.qcow2"), 1u << 20, NULL, 0, 0);
	create_ok(path_of(f, "y.qcow2"), 1u << 20, NULL, 0, 0);
	set_backing(path_of(f, "x.qcow2"), "y.qcow2");
	set_backing(path_of(f, "y.qcow2"), "x.qcow2");
	assert_int_equal(qcow2_open(path_of(f, "x.qcow2"), 0, &q, &why), -ELOOP);
	assert_non_null(strstr(why.msg, "loops"));
	/* Without its chain it opens. */
	assert_int_equal(qcow2_open(path_of(f, "x.qcow2"), QCOW2_OPEN_NO_BACKING, &q, &why), 0);
	qcow2_close(q);

	/* 16 images open; 17 are too many. */
	create_ok(path_of(f, "l0.qcow2"), 1u << 20, NULL, 0, 0);
	snprintf(prev, sizeof(prev), "l0.qcow2");
	for (int i = 1; i <= 16; i++) {
		snprintf(name, sizeof(name), "l%d.qcow2", i);
		create_ok(path_of(f, name), 0, prev, 0, 0);
		snprintf(prev, sizeof(prev), "%s", name);
		if (i == 15) {
			q = open_ok(path_of(f, name), 0);
			qcow2_close(q);
		}
	}
	assert_int_equal(qcow2_open(path_of(f, "l16.qcow2"), 0, &q, &why), -ELOOP);
	assert_non_null(strstr(why.msg, "deeper"));

	/* A missing backing file is named. */
	create_ok(path_of(f, "orphan.qcow2"), 1u << 20, NULL, 0, 0);
	set_backing(path_of(f, "orphan.qcow2"), "gone.raw");
	assert_int_equal(qcow2_open(path_of(f, "orphan.qcow2"), 0, &q, &why), -ENOENT);
	assert_non_null(strstr(why.msg, "gone.raw"));

	/* No recorded format: the backing file is probed (raw here). */
	{
		uint8_t pattern[4096], got[4096];

		memset(pattern, 0x6b, sizeof(pattern));
		write_file(path_of(f, "found.raw"), pattern, sizeof(pattern));
		set_backing(path_of(f, "orphan.qcow2"), "found.raw");
		q = open_ok(path_of(f, "orphan.qcow2"), 0);
		assert_int_equal(qcow2_read(q, got, sizeof(got), 0), 0);
		assert_memory_equal(got, pattern, sizeof(got));
		assert_int_equal(qcow2_read(q, got, sizeof(got), 8192), 0);
		memset(pattern, 0, sizeof(pattern));
		assert_memory_equal(got, pattern, sizeof(got));
		qcow2_close(q);
	}
}

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct qcow2_create_opts o = {.size = 1u << 20};
	struct qcow2_reason why;

	create_ok(path_of(f, "exists.qcow2"), 1u << 20, NULL, 0, 0);
	assert_int_equal(qcow2_create(path_of(f, "exists.qcow2"), &o, &why), -EEXIST);
	o.cluster_size = 1000;
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -EINVAL);
	o.cluster_size = 4u << 20;
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -EINVAL);
	o.cluster_size = 0;
	o.refcount_bits = 3;
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -EINVAL);
	o.refcount_bits = 0;
	o.backing = "nothere.raw";
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -ENOENT);
	assert_non_null(strstr(why.msg, "nothere.raw"));
	o.backing = "exists.qcow2";
	o.backing_fmt = "vmdk";
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -ENOTSUP);
	o.backing_fmt = NULL;
	o.backing = NULL;
	o.size = 1ull << 62;
	assert_int_equal(qcow2_create(path_of(f, "e1.qcow2"), &o, &why), -EFBIG);
	/* A long backing name does not fit a 512-byte header cluster. */
	{
		char longname[600];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		o.size = 1u << 20;
		o.cluster_size = 512;
		o.backing = longname;
		assert_true(qcow2_create(path_of(f, "e1.qcow2"), &o, &why) < 0);
	}
	assert_int_equal(access(path_of(f, "e1.qcow2"), F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_standalone_random, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refcount_table_growth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backing_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disk_api, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
