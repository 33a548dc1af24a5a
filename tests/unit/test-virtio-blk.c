// SPDX-License-Identifier: MIT
/*
 * devices/virtio-blk.c with its io_uring backend, driven through the
 * transport as a driver would, on real raw and qcow2 files: reads and
 * writes in any framing, flush, get-id, discard, write-zeroes, read-only
 * drives, bad requests, a batch of requests in one kick, and a reset with
 * requests in flight.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "disk.h"
#include "qcow2.h"
#include "virtio-blk.h"
#include "virtio-test-ring.h"

#define BASE	    0xd0000000ull
#define DISK_SIZE   (4u << 20)
#define QNUM	    256
#define SLOT_GPA(i) (RING_DATA + 0x100ull * (i))     /* header at +0, status at +0x80 */
#define DATA_GPA(i) (0x800000ull + 0x10000ull * (i)) /* 64 KiB each */
#define W	    VRING_DESC_F_WRITE
#define N	    VRING_DESC_F_NEXT

struct fixture {
	struct test_ring t;
	struct virtio_blk *blk;
	char dir[64];
	char path[96];
	uint16_t used_seen;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->blk->vdev, off, &v, 4);
	return le32toh(v);
}

static void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->blk->vdev, off, &v, 4);
}

/* Linux's probe: features, one queue at the RING_* addresses, DRIVER_OK. */
static void driver_init(struct fixture *f)
{
	uint64_t features;

	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	features = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	features |= (uint64_t)rd(f, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);

	ring_init(&f->t, QNUM, VIRTQ_F_INDIRECT | VIRTQ_F_EVENT_IDX);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QNUM);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, RING_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, RING_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, RING_USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	f->used_seen = 0;
}

static void open_blk(struct fixture *f, bool read_only)
{
	struct virtio_blk_params p = {
	    .path = f->path, .read_only = read_only, .serial = "serial-0123456789-abcdef"};
	char why[256];

	virtio_blk_destroy(f->blk);
	f->blk = NULL;
	assert_int_equal(virtio_blk_create(&p, &f->t.mem, BASE, &f->blk, why, sizeof(why)), 0);
	driver_init(f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f || test_mem_init(&f->t.mem, MiB(64)) < 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fvm-test-blk.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/disk.raw", f->dir);
	fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		return -1;
	close(fd);
	*state = f;
	open_blk(f, false);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	virtio_blk_destroy(f->blk);
	test_mem_destroy(&f->t.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void put_header(struct fixture *f, uint32_t slot, uint32_t type, uint64_t sector)
{
	uint8_t *h = gpa(&f->t, SLOT_GPA(slot));
	uint32_t t = htole32(type), z = 0;
	uint64_t s = htole64(sector);

	memcpy(h, &t, 4);
	memcpy(h + 4, &z, 4);
	memcpy(h + 8, &s, 8);
	*(uint8_t *)gpa(&f->t, SLOT_GPA(slot) + 0x80) = 0xee; /* status: not yet */
}

/* The usual Linux framing: header, payload, status, as three descriptors. */
static void queue_req(struct fixture *f, uint32_t slot, uint32_t type, uint64_t sector,
		      uint32_t len, bool device_writes)
{
	uint16_t d = (uint16_t)(3 * slot);

	put_header(f, slot, type, sector);
	ring_desc(&f->t, d, SLOT_GPA(slot), 16, N, (uint16_t)(d + 1));
	if (len) {
		ring_desc(&f->t, (uint16_t)(d + 1), DATA_GPA(slot), len,
			  N | (device_writes ? W : 0), (uint16_t)(d + 2));
		ring_desc(&f->t, (uint16_t)(d + 2), SLOT_GPA(slot) + 0x80, 1, W, 0);
	} else {
		ring_desc(&f->t, (uint16_t)(d + 1), SLOT_GPA(slot) + 0x80, 1, W, 0);
	}
	ring_publish(&f->t, d);
}

static uint8_t status_of(struct fixture *f, uint32_t slot)
{
	return *(uint8_t *)gpa(&f->t, SLOT_GPA(slot) + 0x80);
}

/* Kick and serve completions (as the I/O thread) until n more are used. */
static void kick_and_wait(struct fixture *f, uint16_t n)
{
	uint16_t want = (uint16_t)(f->used_seen + n);

	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 1000 && ring_used_idx(&f->t) != want; i++) {
		struct pollfd p = {.fd = f->blk->io.event_fd, .events = POLLIN};

		assert_true(poll(&p, 1, 5000) >= 0);
		virtio_blk_io_handler(f->blk, POLLIN);
	}
	assert_int_equal(ring_used_idx(&f->t), want);
	f->used_seen = want;
}

static uint8_t do_one(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len,
		      bool device_writes)
{
	queue_req(f, 0, type, sector, len, device_writes);
	kick_and_wait(f, 1);
	return status_of(f, 0);
}

static void fill(struct fixture *f, uint32_t slot, uint32_t len, uint8_t seed)
{
	uint8_t *p = gpa(&f->t, DATA_GPA(slot));

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint64_t capacity;

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 2);
	virtio_mmio_ops.read(&f->blk->vdev, VIRTIO_MMIO_CONFIG, &capacity, 8);
	assert_int_equal(le64toh(capacity), DISK_SIZE / 512);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_true(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_DISCARD));
	assert_false(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	uint8_t file[8192];
	int fd;

	fill(f, 0, 8192, 3);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_OUT, 8, 8192, false), VIRTIO_BLK_S_OK);
	memset(gpa(&f->t, DATA_GPA(0)), 0, 8192);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, 8, 8192, true), VIRTIO_BLK_S_OK);
	fill(f, 1, 8192, 3);
	assert_memory_equal(gpa(&f->t, DATA_GPA(0)), gpa(&f->t, DATA_GPA(1)), 8192);
	/* The bytes are in the file, at sector 8. */
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, file, sizeof(file), 4096), sizeof(file));
	close(fd);
	assert_memory_equal(file, gpa(&f->t, DATA_GPA(1)), sizeof(file));
}

static void test_any_layout(void **state)
{
	struct fixture *f = *state;
	uint8_t *one = gpa(&f->t, DATA_GPA(2));
	uint32_t t = htole32(VIRTIO_BLK_T_OUT);
	uint64_t s = htole64(100);

	/* Header split across two descriptors; the payload shares the second. */
	memset(one, 0, 16 + 1024);
	memcpy(one, &t, 4);
	memcpy(one + 8, &s, 8);
	memset(one + 16, 0x5a, 1024);
	ring_desc(&f->t, 0, DATA_GPA(2), 6, N, 1);
	ring_desc(&f->t, 1, DATA_GPA(2) + 6, 10 + 1024, N, 2);
	ring_desc(&f->t, 2, SLOT_GPA(0) + 0x80, 1, W, 0);
	ring_publish(&f->t, 0);
	kick_and_wait(f, 1);
	assert_int_equal(status_of(f, 0), VIRTIO_BLK_S_OK);

	/* Read it back with the status byte at the end of the payload's segment. */
	memset(gpa(&f->t, DATA_GPA(3)), 0, 1025);
	put_header(f, 0, VIRTIO_BLK_T_IN, 100);
	ring_desc(&f->t, 0, SLOT_GPA(0), 16, N, 1);
	ring_desc(&f->t, 1, DATA_GPA(3), 1025, W, 0);
	ring_publish(&f->t, 0);
	kick_and_wait(f, 1);
	assert_int_equal(*(uint8_t *)gpa(&f->t, DATA_GPA(3) + 1024), VIRTIO_BLK_S_OK);
	assert_memory_equal(gpa(&f->t, DATA_GPA(3)), one + 16, 1024);
}

static void test_flush_and_get_id(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	assert_int_equal(do_one(f, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	memset(gpa(&f->t, DATA_GPA(0)), 0, 32);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
	assert_memory_equal(gpa(&f->t, DATA_GPA(0)), "serial-0123456789-ab", 20);
	ring_used_elem(&f->t, (uint16_t)(f->used_seen - 1), &id, &len);
	assert_int_equal(len, 21);
	assert_int_equal(do_one(f, 0x7777, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
}

static void put_segment(struct fixture *f, uint32_t slot, uint32_t i, uint64_t sector,
			uint32_t sectors, uint32_t flags)
{
	uint8_t *p = gpa(&f->t, DATA_GPA(slot) + 16ull * i);
	uint64_t s = htole64(sector);
	uint32_t n = htole32(sectors), fl = htole32(flags);

	memcpy(p, &s, 8);
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &fl, 4);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_discard_write_zeroes(void **state)
{
	struct fixture *f = *state;

	fill(f, 1, 65536, 9);
	queue_req(f, 1, VIRTIO_BLK_T_OUT, 0, 65536, false);
	kick_and_wait(f, 1);
	/* Two ranges in one request: 8 KiB discarded, 4 KiB zeroed. */
	put_segment(f, 0, 0, 16, 16, 0);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_OK);
	put_segment(f, 0, 0, 64, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), VIRTIO_BLK_S_OK);
	queue_req(f, 1, VIRTIO_BLK_T_IN, 0, 65536, true);
	kick_and_wait(f, 1);
	assert_true(all_zero(gpa(&f->t, DATA_GPA(1) + 8192), 8192));
	assert_true(all_zero(gpa(&f->t, DATA_GPA(1) + 32768), 4096));
	assert_false(all_zero(gpa(&f->t, DATA_GPA(1)), 8192));
	/* Discard takes no flags; bad sizes and ranges fail. */
	put_segment(f, 0, 0, 16, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_UNSUPP);
	put_segment(f, 0, 0, DISK_SIZE / 512 - 4, 8, 0);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_DISCARD, 0, 12, false), VIRTIO_BLK_S_IOERR);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	uint64_t last = DISK_SIZE / 512;

	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, last - 1, 512, true), VIRTIO_BLK_S_OK);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, last - 1, 1024, true), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, ~0ull, 512, true), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_OUT, 0, 100, false), VIRTIO_BLK_S_IOERR);
	assert_true(f->blk->stats.errors >= 3);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* No status byte at all: the driver broke the framing, the device needs a reset. */
	put_header(f, 0, VIRTIO_BLK_T_IN, 0);
	ring_desc(&f->t, 0, SLOT_GPA(0), 16, 0, 0);
	ring_publish(&f->t, 0);
	kick_and_wait(f, 1);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;

	open_blk(f, true);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_true(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
	assert_false(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_DISCARD));
	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, 0, 4096, true), VIRTIO_BLK_S_OK);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_OUT, 0, 4096, false), VIRTIO_BLK_S_IOERR);
	put_segment(f, 0, 0, 0, 8, 0);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
}

static void test_batch(void **state)
{
	struct fixture *f = *state;
	enum { NR = 64 };

	/* 64 writes in one kick: one submission. */
	for (uint32_t i = 0; i < NR; i++) {
		fill(f, i, 4096, (uint8_t)i);
		queue_req(f, i, VIRTIO_BLK_T_OUT, 8ull * i, 4096, false);
	}
	f->blk->io.submissions = 0;
	kick_and_wait(f, NR);
	assert_int_equal(f->blk->io.submissions, 1);
	for (uint32_t i = 0; i < NR; i++) {
		assert_int_equal(status_of(f, i), VIRTIO_BLK_S_OK);
		memset(gpa(&f->t, DATA_GPA(i)), 0, 4096);
		queue_req(f, i, VIRTIO_BLK_T_IN, 8ull * i, 4096, true);
	}
	kick_and_wait(f, NR);
	for (uint32_t i = 0; i < NR; i++) {
		uint8_t *p = gpa(&f->t, DATA_GPA(i));

		assert_int_equal(status_of(f, i), VIRTIO_BLK_S_OK);
		assert_int_equal(p[4095], (uint8_t)(i + 4095 * 7));
	}
}

static void test_reset_in_flight(void **state)
{
	struct fixture *f = *state;

	for (uint32_t i = 0; i < 16; i++)
		queue_req(f, i, VIRTIO_BLK_T_IN, 8ull * i, 65536, true);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* Reset at once: whatever was in flight is finished and dropped, not returned. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->blk->io.outstanding, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	/* The device works again after a new probe. */
	driver_init(f);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_IN, 0, 4096, true), VIRTIO_BLK_S_OK);
}

static void test_qcow2_overlay(void **state)
{
	struct fixture *f = *state;
	struct qcow2_create_opts opts = {.backing = f->path, .backing_fmt = "raw"};
	char overlay[128];
	struct disk *d;
	uint8_t buf[4096];

	/* The base holds a pattern at 1 MiB. */
	fill(f, 0, 4096, 77);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_OUT, 2048, 4096, false), VIRTIO_BLK_S_OK);
	snprintf(overlay, sizeof(overlay), "%s/overlay.qcow2", f->dir);
	assert_int_equal(qcow2_create(overlay, &opts, NULL), 0);
	snprintf(f->path, sizeof(f->path), "%s", overlay);
	open_blk(f, false);

	/* Reads fall through to the base... */
	memset(gpa(&f->t, DATA_GPA(1)), 0, 4096);
	queue_req(f, 1, VIRTIO_BLK_T_IN, 2048, 4096, true);
	kick_and_wait(f, 1);
	assert_memory_equal(gpa(&f->t, DATA_GPA(1)), gpa(&f->t, DATA_GPA(0)), 4096);
	/* ...writes allocate in the overlay (half a cluster: copy-on-write)... */
	fill(f, 2, 2048, 99);
	queue_req(f, 2, VIRTIO_BLK_T_OUT, 2048 + 2, 2048, false);
	kick_and_wait(f, 1);
	assert_int_equal(status_of(f, 2), VIRTIO_BLK_S_OK);
	/* ...and then overwrite in place through io_uring. */
	queue_req(f, 2, VIRTIO_BLK_T_OUT, 2048 + 2, 2048, false);
	kick_and_wait(f, 1);
	assert_int_equal(do_one(f, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	queue_req(f, 1, VIRTIO_BLK_T_IN, 2048, 4096, true);
	kick_and_wait(f, 1);
	assert_memory_equal(gpa(&f->t, DATA_GPA(1)), gpa(&f->t, DATA_GPA(0)), 1024);
	assert_memory_equal((uint8_t *)gpa(&f->t, DATA_GPA(1)) + 1024, gpa(&f->t, DATA_GPA(2)),
			    2048);
	virtio_blk_destroy(f->blk);
	f->blk = NULL;

	/* The engine agrees; the base is untouched. */
	assert_int_equal(disk_open(overlay, true, &d, NULL), 0);
	assert_int_equal(disk_read(d, buf, sizeof(buf), 1 << 20), 0);
	disk_close(d);
	assert_memory_equal(buf + 1024, gpa(&f->t, DATA_GPA(2)), 2048);
	snprintf(f->path, sizeof(f->path), "%s/disk.raw", f->dir);
	assert_int_equal(disk_open(f->path, true, &d, NULL), 0);
	assert_int_equal(disk_read(d, buf, sizeof(buf), 1 << 20), 0);
	disk_close(d);
	assert_memory_equal(buf, gpa(&f->t, DATA_GPA(0)), 4096);
	open_blk(f, false);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_config),
	    T(test_write_read),
	    T(test_any_layout),
	    T(test_flush_and_get_id),
	    T(test_discard_write_zeroes),
	    T(test_bad_requests),
	    T(test_read_only),
	    T(test_batch),
	    T(test_reset_in_flight),
	    T(test_qcow2_overlay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
