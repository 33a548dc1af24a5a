// SPDX-License-Identifier: MIT
/*
 * devices/virtio-rng.c driven through the transport as a driver would:
 * bytes arrive with the right used length, requests differ, large
 * requests are capped, split buffers are filled in order, and a request
 * the device may not write fails the device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <linux/virtio_config.h>

#include "virtio-rng.h"
#include "virtio-test-ring.h"

#define BASE	   0xd0000000ull
#define QNUM	   VIRTIO_RNG_QUEUE_SIZE
#define BUF_GPA(i) (0x800000ull + 0x20000ull * (i)) /* 128 KiB each */
#define W	   VRING_DESC_F_WRITE
#define N	   VRING_DESC_F_NEXT

struct fixture {
	struct test_ring t;
	struct virtio_rng *rng;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->rng->vdev, off, &v, 4);
	return le32toh(v);
}

static void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->rng->vdev, off, &v, 4);
}

static void driver_init(struct fixture *f)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	ring_init(&f->t, QNUM, 0);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QNUM);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, RING_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, RING_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, RING_USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || test_mem_init(&f->t.mem, MiB(64)) < 0)
		return -1;
	if (virtio_rng_create(&f->t.mem, BASE, &f->rng) < 0)
		return -1;
	*state = f;
	driver_init(f);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_rng_destroy(f->rng);
	test_mem_destroy(&f->t.mem);
	free(f);
	return 0;
}

/* Request `len` bytes into buffer `slot` (descriptor `slot`) and kick. */
static void request(struct fixture *f, uint16_t slot, uint32_t len)
{
	memset(gpa(&f->t, BUF_GPA(slot)), 0, len);
	ring_desc(&f->t, slot, BUF_GPA(slot), len, W, 0);
	ring_publish(&f->t, slot);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static uint32_t used_len(struct fixture *f, uint16_t i)
{
	uint32_t id, len;

	ring_used_elem(&f->t, i, &id, &len);
	return len;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_bytes_arrive(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 4);
	request(f, 0, 64);
	assert_int_equal(ring_used_idx(&f->t), 1);
	assert_int_equal(used_len(f, 0), 64);
	assert_false(all_zero(gpa(&f->t, BUF_GPA(0)), 64));
	/* Two requests never match. */
	request(f, 1, 64);
	assert_int_equal(ring_used_idx(&f->t), 2);
	assert_memory_not_equal(gpa(&f->t, BUF_GPA(0)), gpa(&f->t, BUF_GPA(1)), 64);
	assert_int_equal(f->rng->stats.requests, 2);
	assert_int_equal(f->rng->stats.bytes, 128);
}

static void test_split_and_capped(void **state)
{
	struct fixture *f = *state;
	uint8_t *p = gpa(&f->t, BUF_GPA(0));

	/* Two segments: both filled, in order. */
	memset(p, 0, 64);
	ring_desc(&f->t, 0, BUF_GPA(0), 16, W | N, 1);
	ring_desc(&f->t, 1, BUF_GPA(0) + 16, 48, W, 0);
	ring_publish(&f->t, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(used_len(f, 0), 64);
	assert_false(all_zero(p + 48, 16));

	/* A 128 KiB request gets the cap, and not a byte more. */
	request(f, 2, 128 * 1024);
	assert_int_equal(used_len(f, 1), VIRTIO_RNG_MAX_REQUEST);
	assert_false(all_zero(gpa(&f->t, BUF_GPA(2) + VIRTIO_RNG_MAX_REQUEST - 64), 64));
	assert_true(all_zero(gpa(&f->t, BUF_GPA(2) + VIRTIO_RNG_MAX_REQUEST), 64 * 1024));
}

/* More requests than one budget in one kick: all served (no kick fd to come back by). */
static void test_many(void **state)
{
	struct fixture *f = *state;

	for (uint16_t i = 0; i < QNUM; i++) {
		ring_desc(&f->t, i, BUF_GPA(i), 32, W, 0);
		ring_publish(&f->t, i);
	}
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(ring_used_idx(&f->t), QNUM);
	assert_int_equal(used_len(f, QNUM - 1), 32);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;

	/* A device-readable segment. */
	ring_desc(&f->t, 0, BUF_GPA(0), 16, N, 1);
	ring_desc(&f->t, 1, BUF_GPA(0) + 16, 48, W, 0);
	ring_publish(&f->t, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(ring_used_idx(&f->t), 1);
	assert_int_equal(used_len(f, 0), 0);
	/* Nothing more is served until a reset. */
	request(f, 1, 64);
	assert_int_equal(ring_used_idx(&f->t), 1);

	/* No writable byte at all. */
	driver_init(f);
	ring_desc(&f->t, 0, BUF_GPA(0), 0, W, 0);
	ring_publish(&f->t, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* After a reset the device works again. */
	driver_init(f);
	request(f, 0, 64);
	assert_int_equal(used_len(f, 0), 64);
}

static void test_after_fork(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(virtio_rng_after_fork(f->rng), 0);
	request(f, 0, 64);
	assert_int_equal(used_len(f, 0), 64);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bytes_arrive),
	    T(test_split_and_capped),
	    T(test_many),
	    T(test_malformed),
	    T(test_after_fork),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
