// SPDX-License-Identifier: MIT
/*
 * devices/virtio-queue.c: the split-ring walker as a driver (and a
 * hostile guest) would exercise it. Good chains, indirect tables,
 * EVENT_IDX, and every malformed ring the walker must refuse without
 * touching anything outside guest RAM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio-test-ring.h"

#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT

struct fixture {
	struct test_ring t;
	struct virtq_chain chain;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	/* 512 MiB, untouched pages cost nothing: room for the byte-limit cases. */
	if (!f || test_mem_init(&f->t.mem, MiB(512)) < 0)
		return -1;
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_mem_destroy(&f->t.mem);
	free(f);
	return 0;
}

static int pop(struct fixture *f, const char **why)
{
	*why = NULL;
	return virtq_pop(&f->t.vq, &f->t.mem, &f->chain, why);
}

/* The ring must be refused, with a reason, and the queue must not move. */
static void expect_malformed(struct fixture *f)
{
	uint16_t before = f->t.vq.last_avail_idx;
	const char *why;

	assert_int_equal(pop(f, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(f->t.vq.last_avail_idx, before);
}

static void test_empty(void **state)
{
	struct fixture *f = *state;
	const char *why;

	assert_int_equal(pop(f, &why), 0);
	f->t.vq.ready = 0;
	assert_int_equal(pop(f, &why), -EINVAL);
}

static void test_direct_chain(void **state)
{
	struct fixture *f = *state;
	const char *why;

	ring_desc(&f->t, 3, RING_DATA, 16, N, 7);
	ring_desc(&f->t, 7, RING_DATA + 0x1000, 512, N, 1);
	ring_desc(&f->t, 1, RING_DATA + 0x2000, 1, W, 0);
	ring_publish(&f->t, 3);

	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nr_out, 2);
	assert_int_equal(f->chain.nr_in, 1);
	assert_int_equal(f->chain.out_bytes, 528);
	assert_int_equal(f->chain.in_bytes, 1);
	assert_ptr_equal(f->chain.iov[0].iov_base, gpa(&f->t, RING_DATA));
	assert_ptr_equal(f->chain.iov[1].iov_base, gpa(&f->t, RING_DATA + 0x1000));
	assert_ptr_equal(f->chain.iov[2].iov_base, gpa(&f->t, RING_DATA + 0x2000));
	assert_int_equal(f->chain.iov[1].iov_len, 512);
	assert_int_equal(pop(f, &why), 0);
	assert_int_equal(f->t.vq.last_avail_idx, 1);
}

static void test_push_and_interrupt(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	const char *why;

	ring_desc(&f->t, 0, RING_DATA, 64, W, 0);
	ring_publish(&f->t, 0);
	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(virtq_push(&f->t.vq, &f->t.mem, 0, 42), 0);
	assert_int_equal(ring_used_idx(&f->t), 1);
	ring_used_elem(&f->t, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 42);
	assert_true(virtq_should_interrupt(&f->t.vq, &f->t.mem));
	ring_set_avail_flags(&f->t, VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(virtq_should_interrupt(&f->t.vq, &f->t.mem));
	/* A head the device never took is our bug, not the guest's: refused. */
	assert_int_equal(virtq_push(&f->t.vq, &f->t.mem, 16, 0), -EINVAL);
}

static void test_wraparound(void **state)
{
	struct fixture *f = *state;
	const char *why;

	/* Free-running 16-bit indexes: start just below the wrap. */
	f->t.vq.last_avail_idx = f->t.vq.used_idx = 0xfffe;
	ring_set_avail_idx(&f->t, 0xfffe);
	ring_desc(&f->t, 5, RING_DATA, 8, 0, 0);
	for (int i = 0; i < 4; i++) {
		ring_publish(&f->t, 5);
		assert_int_equal(pop(f, &why), 1);
		assert_int_equal(virtq_push(&f->t.vq, &f->t.mem, 5, 0), 0);
	}
	assert_int_equal(f->t.vq.last_avail_idx, 2);
	assert_int_equal(ring_used_idx(&f->t), 2);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	const char *why;

	ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA, 16, N, 2);
	ring_desc_at(&f->t, RING_TABLE, 2, RING_DATA + 0x100, 4096, N | W, 1);
	ring_desc_at(&f->t, RING_TABLE, 1, RING_DATA + 0x2000, 1, W, 0);
	ring_desc(&f->t, 9, RING_TABLE, 3 * 16, I, 0);
	ring_publish(&f->t, 9);
	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(f->chain.head, 9);
	assert_int_equal(f->chain.nr_out, 1);
	assert_int_equal(f->chain.nr_in, 2);
	assert_int_equal(f->chain.in_bytes, 4097);
	assert_ptr_equal(f->chain.iov[2].iov_base, gpa(&f->t, RING_DATA + 0x2000));
}

static void test_indirect_after_direct(void **state)
{
	struct fixture *f = *state;
	const char *why;

	/* A table may end a direct chain (the spec forbids only INDIRECT with NEXT). */
	ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA + 0x100, 8, W, 0);
	ring_desc(&f->t, 0, RING_DATA, 16, N, 1);
	ring_desc(&f->t, 1, RING_TABLE, 16, I, 0);
	ring_publish(&f->t, 0);
	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(f->chain.nr_out, 1);
	assert_int_equal(f->chain.nr_in, 1);
}

static void test_indirect_needs_feature(void **state)
{
	struct fixture *f = *state;

	f->t.vq.flags = 0;
	ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA, 16, 0, 0);
	ring_desc(&f->t, 0, RING_TABLE, 16, I, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);
}

static void test_event_idx(void **state)
{
	struct fixture *f = *state;
	const char *why;

	f->t.vq.flags |= VIRTQ_F_EVENT_IDX;
	ring_desc(&f->t, 0, RING_DATA, 8, W, 0);
	/* The driver wants an interrupt once used idx passes 2. */
	ring_set_used_event(&f->t, 2);
	for (int i = 0; i < 4; i++) {
		ring_publish(&f->t, 0);
		assert_int_equal(pop(f, &why), 1);
		assert_int_equal(virtq_push(&f->t.vq, &f->t.mem, 0, 8), 0);
		/*
		 * used idx 1, 2, 3, 4: the first interrupt of a queue always
		 * goes out; then only the step from 2 to 3 crosses used_event.
		 */
		assert_int_equal(virtq_should_interrupt(&f->t.vq, &f->t.mem), i == 0 || i == 2);
	}
	/* Nothing new since the last interrupt: none. */
	ring_set_used_event(&f->t, 10);
	assert_false(virtq_should_interrupt(&f->t.vq, &f->t.mem));

	/* avail_event asks for a kick at the next entry; a racing entry is reported. */
	assert_false(virtq_enable_notify(&f->t.vq, &f->t.mem));
	assert_int_equal(ring_avail_event(&f->t), 4);
	ring_publish(&f->t, 0);
	assert_true(virtq_enable_notify(&f->t.vq, &f->t.mem));
}

static void test_outside_ram(void **state)
{
	struct fixture *f = *state;
	static const uint64_t bad[] = {
	    MiB(512),		   /* just past the end of RAM */
	    MiB(512) - 8,	   /* straddles the end */
	    0xd0000000ull,	   /* in the MMIO hole */
	    0xffffffffffffff00ull, /* wraps */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
		ring_desc(&f->t, 0, bad[i], 16, 0, 0);
		ring_publish(&f->t, 0);
		expect_malformed(f);
	}
}

static void test_overflowing_lengths(void **state)
{
	struct fixture *f = *state;

	/* One huge buffer: inside the address space only if len wrapped. */
	ring_desc(&f->t, 0, RING_DATA, 0xffffffffu, 0, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);

	/* Buffers in RAM whose sum passes the chain limit (they may overlap). */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc(&f->t, 0, RING_DATA, 200u << 20, N, 1);
	ring_desc(&f->t, 1, RING_DATA, 200u << 20, W, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);
}

static void test_loops(void **state)
{
	struct fixture *f = *state;

	ring_desc(&f->t, 0, RING_DATA, 8, N, 1);
	ring_desc(&f->t, 1, RING_DATA, 8, N, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);

	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc(&f->t, 4, RING_DATA, 8, N, 4); /* onto itself */
	ring_publish(&f->t, 4);
	expect_malformed(f);

	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA, 8, N, 1);
	ring_desc_at(&f->t, RING_TABLE, 1, RING_DATA, 8, N, 0);
	ring_desc(&f->t, 0, RING_TABLE, 32, I, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);
}

static void test_longest_chains(void **state)
{
	struct fixture *f = *state;
	const char *why;

	/* A chain through the whole queue is fine... */
	ring_init(&f->t, 256, VIRTQ_F_INDIRECT);
	for (uint16_t i = 0; i < 256; i++)
		ring_desc(&f->t, i, RING_DATA, 8, i < 255 ? N : 0, (uint16_t)(i + 1));
	ring_publish(&f->t, 0);
	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(f->chain.nr_out, 256);

	/* ...so is a full indirect table; one more segment in front is too many. */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	for (uint16_t i = 0; i < VIRTQ_MAX_INDIRECT; i++)
		ring_desc_at(&f->t, RING_TABLE, i, RING_DATA, 8, i < 255 ? N : 0,
			     (uint16_t)(i + 1));
	ring_desc(&f->t, 0, RING_TABLE, 16 * VIRTQ_MAX_INDIRECT, I, 0);
	ring_publish(&f->t, 0);
	assert_int_equal(pop(f, &why), 1);
	ring_desc(&f->t, 1, RING_DATA, 8, N, 0);
	ring_publish(&f->t, 1);
	expect_malformed(f);
}

static void test_bad_indexes(void **state)
{
	struct fixture *f = *state;

	/* Head out of range. */
	ring_publish(&f->t, 16);
	expect_malformed(f);

	/* next out of range. */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc(&f->t, 0, RING_DATA, 8, N, 16);
	ring_publish(&f->t, 0);
	expect_malformed(f);

	/* The available index runs more than a queue ahead of us. */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc(&f->t, 0, RING_DATA, 8, 0, 0);
	ring_set_avail_idx(&f->t, 17);
	expect_malformed(f);
}

static void test_readable_after_writable(void **state)
{
	struct fixture *f = *state;

	ring_desc(&f->t, 0, RING_DATA, 8, W | N, 1);
	ring_desc(&f->t, 1, RING_DATA, 8, 0, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);
}

static void test_bad_indirect(void **state)
{
	struct fixture *f = *state;
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
	} cases[] = {
	    {RING_TABLE, 0, I},				    /* empty table */
	    {RING_TABLE, 24, I},			    /* not whole descriptors */
	    {RING_TABLE, 16 * (VIRTQ_MAX_INDIRECT + 1), I}, /* too large */
	    {MiB(512) - 16, 32, I},			    /* past the end of RAM */
	    {RING_TABLE, 16, I | N},			    /* INDIRECT with NEXT */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
		ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA, 8, 0, 0);
		ring_desc(&f->t, 0, cases[i].addr, cases[i].len, cases[i].flags, 1);
		ring_publish(&f->t, 0);
		expect_malformed(f);
	}

	/* A table inside a table. */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc_at(&f->t, RING_TABLE, 0, RING_TABLE + 0x100, 16, I, 0);
	ring_desc(&f->t, 0, RING_TABLE, 16, I, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);

	/* next beyond the table. */
	ring_init(&f->t, 16, VIRTQ_F_INDIRECT);
	ring_desc_at(&f->t, RING_TABLE, 0, RING_DATA, 8, N, 2);
	ring_desc(&f->t, 0, RING_TABLE, 32, I, 0);
	ring_publish(&f->t, 0);
	expect_malformed(f);
}

static void test_layout_checks(void **state)
{
	struct fixture *f = *state;
	struct virtq vq = f->t.vq;
	const char *why;

	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), 0);
	vq.num = 12;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq.num = 512;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq.num = 0;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq = f->t.vq;
	vq.desc_addr += 8;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq = f->t.vq;
	vq.used_addr += 2;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq = f->t.vq;
	vq.used_addr = MiB(512) - 64; /* ring runs past the end */
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq = f->t.vq;
	vq.avail_addr = 0xc0000000ull;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
	vq = f->t.vq;
	vq.flags = 0x80;
	assert_int_equal(virtq_check_layout(&vq, &f->t.mem, 256, &why), -EINVAL);
}

static void test_chain_read(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[16];
	const char *why;

	memcpy(gpa(&f->t, RING_DATA), "0123", 4);
	memcpy(gpa(&f->t, RING_DATA + 0x100), "456789", 6);
	ring_desc(&f->t, 0, RING_DATA, 4, N, 1);
	ring_desc(&f->t, 1, RING_DATA + 0x100, 6, N, 2);
	ring_desc(&f->t, 2, RING_DATA + 0x200, 100, W, 0);
	ring_publish(&f->t, 0);
	assert_int_equal(pop(f, &why), 1);
	assert_int_equal(virtq_chain_read(&f->chain, 2, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "23456789", 8);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_empty),
	    T(test_direct_chain),
	    T(test_push_and_interrupt),
	    T(test_wraparound),
	    T(test_indirect),
	    T(test_indirect_after_direct),
	    T(test_indirect_needs_feature),
	    T(test_event_idx),
	    T(test_outside_ram),
	    T(test_overflowing_lengths),
	    T(test_loops),
	    T(test_longest_chains),
	    T(test_bad_indexes),
	    T(test_readable_after_writable),
	    T(test_bad_indirect),
	    T(test_layout_checks),
	    T(test_chain_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
