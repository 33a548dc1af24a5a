// SPDX-License-Identifier: MIT
/*
 * devices/virtio-mmio.c: the version 2 register file as Linux's
 * virtio_mmio driver programs it, feature negotiation, queue setup,
 * notifications, interrupts, reset, NEEDS_RESET on a malformed ring, and
 * the post_load checks of a saved state. The device behind it is a
 * recorder; interrupts go to a recorder line or an eventfd.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>

#include <cmocka.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio-mmio.h"
#include "virtio-test-ring.h"

#define BASE	     0xd0000000ull
#define DEV_FEATURES (1ull << 9)
#define DEVICE_ID    2
#define NR_QUEUES    2
#define QUEUE_MAX    64

struct fixture {
	struct virtio_mmio vdev;
	struct test_ring t;
	uint32_t notifies[VIRTIO_MMIO_MAX_QUEUES];
	uint32_t drains_complete, drains_drop;
	uint32_t config_writes, last_config_off;
	uint32_t irq_edges;
	bool irq_level;
};

static void fake_notify(void *dev, uint32_t index)
{
	struct fixture *f = dev;

	f->notifies[index]++;
}

static void fake_drain(void *dev, bool complete)
{
	struct fixture *f = dev;

	if (complete)
		f->drains_complete++;
	else
		f->drains_drop++;
}

static void fake_config_write(void *dev, uint32_t offset, const void *data, uint32_t size)
{
	struct fixture *f = dev;

	f->config_writes++;
	f->last_config_off = offset;
}

static const struct virtio_device_ops fake_ops = {
    .name = "virtio-test",
    .device_id = DEVICE_ID,
    .queue_notify = fake_notify,
    .drain = fake_drain,
    .config_write = fake_config_write,
};

static void record_irq(void *controller, uint32_t pin, bool level)
{
	struct fixture *f = controller;

	assert_int_equal(pin, 5);
	if (level && !f->irq_level)
		f->irq_edges++;
	f->irq_level = level;
}

static const uint8_t config[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || test_mem_init(&f->t.mem, MiB(64)) < 0)
		return -1;
	if (virtio_mmio_init(&f->vdev, &fake_ops, f, &f->t.mem, BASE, NR_QUEUES, QUEUE_MAX,
			     DEV_FEATURES, config, sizeof(config)) < 0)
		return -1;
	f->vdev.irq = (struct irq_line){.set_level = record_irq, .controller = f, .pin = 5};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(&f->vdev);
	test_mem_destroy(&f->t.mem);
	free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->vdev, off, &v, 4);
	return le32toh(v);
}

static void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->vdev, off, &v, 4);
}

/* What Linux's virtio_mmio does up to FEATURES_OK with the features it wants. */
static void negotiate(struct fixture *f, uint64_t features)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
}

#define ALL_FEATURES                                                                               \
	(DEV_FEATURES | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |         \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

static void setup_queue_at(struct fixture *f, uint32_t q, uint32_t num, uint64_t desc,
			   uint64_t avail, uint64_t used)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	wr(f, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void setup_queue(struct fixture *f, uint32_t q, uint32_t num)
{
	uint64_t off = 0x10000ull * q;

	setup_queue_at(f, q, num, RING_DESC + off, RING_AVAIL + off, RING_USED + off);
}

static void driver_ok(struct fixture *f)
{
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void test_identity(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), DEVICE_ID);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, NR_QUEUES);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0); /* no such queue */
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
	assert_string_equal(f->vdev.state.name, "virtio@d0000000");
}

static void test_features(void **state)
{
	struct fixture *f = *state;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)ALL_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 */
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_feature_negotiation(void **state)
{
	struct fixture *f = *state;

	/* A legacy driver (no VERSION_1) is turned away. */
	negotiate(f, DEV_FEATURES);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* So is one that wants what we do not offer. */
	negotiate(f, ALL_FEATURES | (1ull << 40));
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);

	negotiate(f, ALL_FEATURES);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(f->vdev.driver_features, ALL_FEATURES);
	/* Frozen once accepted. */
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_int_equal(f->vdev.driver_features, ALL_FEATURES);
}

static void test_queue_setup(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->vdev.queues[1];

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 1, 32);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(vq->num, 32);
	assert_int_equal(vq->desc_addr, RING_DESC + 0x10000);
	assert_int_equal(vq->flags, VIRTQ_F_EVENT_IDX | VIRTQ_F_INDIRECT);
	/* A live queue's registers do not change. */
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	assert_int_equal(vq->num, 32);
	assert_int_equal(vq->desc_addr, RING_DESC + 0x10000);
	/* Disabling drops in-flight work and forgets the queue. */
	f->drains_drop = 0;
	wr(f, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(f->drains_drop, 1);
	assert_int_equal(vq->num, 0);

	/* Without the ring features negotiated, the queue does not use them. */
	negotiate(f, DEV_FEATURES | (1ull << VIRTIO_F_VERSION_1));
	setup_queue(f, 0, 16);
	assert_int_equal(f->vdev.queues[0].flags, 0);
}

static void test_queue_bad_layout(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint32_t num;
		uint64_t desc, avail, used;
	} bad[] = {
	    {16, MiB(64), RING_AVAIL, RING_USED},	 /* outside RAM */
	    {16, RING_DESC, RING_AVAIL, MiB(64) - 8},	 /* runs past the end */
	    {16, RING_DESC + 4, RING_AVAIL, RING_USED},	 /* misaligned */
	    {24, RING_DESC, RING_AVAIL, RING_USED},	 /* not a power of two */
	    {128, RING_DESC, RING_AVAIL, RING_USED},	 /* above QueueNumMax */
	    {16, RING_DESC, 0x1ffffffff0ull, RING_USED}, /* high half set */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t edges = f->irq_edges;

		negotiate(f, ALL_FEATURES);
		setup_queue_at(f, 0, bad[i].num, bad[i].desc, bad[i].avail, bad[i].used);
		assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
		assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
		assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
		assert_int_equal(f->irq_edges, edges + 1);
	}
}

static void test_notify(void **state)
{
	struct fixture *f = *state;

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	/* Before DRIVER_OK nothing is taken... */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 0);
	/* ...and DRIVER_OK looks at every ready queue once. */
	driver_ok(f);
	assert_int_equal(f->notifies[0], 1);
	assert_int_equal(f->notifies[1], 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 2);
	/* Queue 1 is not ready; queue 7 does not exist. */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	assert_int_equal(f->notifies[1], 0);
	assert_int_equal(f->notifies[7], 0);
}

static void test_kick_eventfd(void **state)
{
	struct fixture *f = *state;
	uint64_t count;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	f->vdev.kick_fd[0] = fd;
	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* Forwarded to the I/O thread's eventfd, not run on the vCPU. */
	assert_int_equal(f->notifies[0], 0);
	assert_int_equal(read(fd, &count, sizeof(count)), 8);
	assert_int_equal(count, 2); /* DRIVER_OK's look and the notify */
	count = 1;
	assert_int_equal(write(fd, &count, sizeof(count)), 8);
	virtio_mmio_kick_handler(&f->vdev.kicks[0], POLLIN);
	assert_int_equal(f->notifies[0], 1);
	assert_int_equal(read(fd, &count, sizeof(count)), -1); /* drained */
}

static void test_interrupts(void **state)
{
	struct fixture *f = *state;
	struct test_ring *t = &f->t;
	struct virtq_chain chain;
	uint64_t count;
	int fd;

	negotiate(f, DEV_FEATURES | (1ull << VIRTIO_F_VERSION_1));
	setup_queue(f, 0, 16);
	driver_ok(f);
	t->vq = f->vdev.queues[0];
	ring_desc(t, 0, RING_DATA, 8, VRING_DESC_F_WRITE, 0);
	ring_publish(t, 0);
	assert_int_equal(virtio_mmio_pop(&f->vdev, 0, &chain), 1);
	assert_int_equal(virtio_mmio_push(&f->vdev, 0, chain.head, 8), 0);
	virtio_mmio_notify_used(&f->vdev, 0);
	assert_int_equal(f->irq_edges, 1);
	assert_false(f->irq_level); /* a pulse on an edge-triggered pin */
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* With an irqfd the interrupt is a write to it. */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->vdev.irq_fd = fd;
	ring_publish(t, 0);
	assert_int_equal(virtio_mmio_pop(&f->vdev, 0, &chain), 1);
	assert_int_equal(virtio_mmio_push(&f->vdev, 0, chain.head, 8), 0);
	virtio_mmio_notify_used(&f->vdev, 0);
	assert_int_equal(f->irq_edges, 1);
	assert_int_equal(read(fd, &count, sizeof(count)), 8);
	assert_int_equal(count, 1);
}

static void test_reset(void **state)
{
	struct fixture *f = *state;

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	f->drains_drop = 0;
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->drains_drop, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(f->vdev.driver_features, 0);
	assert_int_equal(f->vdev.queue_sel, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(f->vdev.queues[0].num, 0);
	/* What the device offers survives. */
	assert_int_equal(f->vdev.config_len, sizeof(config));
	assert_int_equal(f->vdev.device_features, ALL_FEATURES);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	uint64_t v64 = 0;
	uint16_t v16 = 0;
	uint8_t v8 = 0;
	uint32_t v32;

	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_CONFIG + 1, &v8, 1);
	assert_int_equal(v8, 2);
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_CONFIG + 2, &v16, 2);
	assert_int_equal(v16, 0x0403);
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_CONFIG + 4, &v64, 8);
	assert_int_equal(v64, 0x0c0b0a0908070605ull);
	/* Past the end (or straddling it): zeros. */
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_CONFIG + 10, &v32, 4);
	assert_int_equal(v32, 0);
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_CONFIG + 0x80, &v32, 4);
	assert_int_equal(v32, 0);
	/* Writes go to the device, within range only. */
	virtio_mmio_ops.write(&f->vdev, VIRTIO_MMIO_CONFIG + 3, &v8, 1);
	virtio_mmio_ops.write(&f->vdev, VIRTIO_MMIO_CONFIG + 11, &v32, 4);
	assert_int_equal(f->config_writes, 1);
	assert_int_equal(f->last_config_off, 3);
}

static void test_register_widths(void **state)
{
	struct fixture *f = *state;
	uint16_t v16 = 0xffff;
	uint32_t v32 = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	uint64_t v64 = ~0ull;

	/* Registers are 32-bit and aligned: anything else reads zero, writes nothing. */
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_MAGIC_VALUE, &v16, 2);
	assert_int_equal(v16, 0);
	virtio_mmio_ops.read(&f->vdev, VIRTIO_MMIO_MAGIC_VALUE, &v64, 8);
	assert_int_equal(v64, 0);
	virtio_mmio_ops.write(&f->vdev, VIRTIO_MMIO_STATUS, &v16, 2);
	virtio_mmio_ops.write(&f->vdev, VIRTIO_MMIO_STATUS + 1, &v32, 4);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	/* Unknown registers read zero. */
	assert_int_equal(rd(f, 0x0e0), 0);
}

static void test_malformed_ring(void **state)
{
	struct fixture *f = *state;
	struct test_ring *t = &f->t;
	struct virtq_chain chain;

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	t->vq = f->vdev.queues[0];
	ring_desc(t, 0, RING_DATA, 8, VRING_DESC_F_NEXT, 0); /* loops onto itself */
	ring_publish(t, 0);
	assert_int_equal(virtio_mmio_pop(&f->vdev, 0, &chain), -EINVAL);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(f->irq_edges, 1);
	assert_false(virtio_mmio_queue_live(&f->vdev, 0));
	/* The device takes nothing more, and says so once. */
	assert_int_equal(virtio_mmio_pop(&f->vdev, 0, &chain), 0);
	virtio_mmio_fail(&f->vdev, "again");
	assert_int_equal(f->irq_edges, 1);
	/* The driver cannot clear NEEDS_RESET by rewriting the status; a reset does. */
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
}

static void test_quiesce(void **state)
{
	struct fixture *f = *state;

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	virtio_mmio_quiesce(&f->vdev);
	assert_int_equal(f->notifies[0], 2);
	assert_int_equal(f->drains_complete, 1);
}

/* After a capture nothing may take buffers (a backend would write RAM behind the snapshot). */
static void test_freeze_thaw(void **state)
{
	struct fixture *f = *state;
	struct virtq_chain chain;
	uint32_t before;

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	virtio_mmio_quiesce(&f->vdev);
	assert_true(f->vdev.frozen);
	assert_false(virtio_mmio_queue_live(&f->vdev, 0));
	assert_int_equal(virtio_mmio_pop(&f->vdev, 0, &chain), 0);
	/* A second capture (another fork) finds nothing to do and stays frozen. */
	virtio_mmio_quiesce(&f->vdev);
	assert_true(f->vdev.frozen);
	before = f->notifies[0];
	virtio_mmio_thaw(&f->vdev);
	assert_false(f->vdev.frozen);
	assert_true(virtio_mmio_queue_live(&f->vdev, 0));
	/* Work that arrived while frozen is looked at again. */
	assert_int_equal(f->notifies[0], before + 1);
}

/* post_load on a scratch copy, as the state file does it. */
static int load(struct fixture *f, void (*mutate)(struct virtio_mmio *))
{
	struct virtio_mmio *scratch = malloc(sizeof(*scratch));
	int r;

	memcpy(scratch, &f->vdev, sizeof(*scratch));
	if (mutate)
		mutate(scratch);
	r = f->vdev.state.post_load(scratch);
	free(scratch);
	return r;
}

static void bad_status(struct virtio_mmio *v)
{
	v->status |= 0x20;
}

static void bad_config(struct virtio_mmio *v)
{
	v->config[0] ^= 1;
}

static void bad_features(struct virtio_mmio *v)
{
	v->device_features |= 1ull << 5;
}

static void bad_driver_features(struct virtio_mmio *v)
{
	v->driver_features |= 1ull << 3;
}

static void bad_ring_addr(struct virtio_mmio *v)
{
	v->queues[0].used_addr = MiB(64);
}

static void bad_indexes(struct virtio_mmio *v)
{
	v->queues[0].last_avail_idx = (uint16_t)(v->queues[0].used_idx + 17);
}

static void bad_num(struct virtio_mmio *v)
{
	v->queues[0].num = 128;
}

static void bad_ready(struct virtio_mmio *v)
{
	v->queues[0].ready = 2;
}

static void bad_extra_queue(struct virtio_mmio *v)
{
	v->queues[NR_QUEUES].num = 1;
}

static void bad_interrupt_status(struct virtio_mmio *v)
{
	v->interrupt_status = 4;
}

static void test_post_load(void **state)
{
	struct fixture *f = *state;
	void (*const bad[])(struct virtio_mmio *) = {
	    bad_status,	 bad_config, bad_features, bad_driver_features, bad_ring_addr,
	    bad_indexes, bad_num,    bad_ready,	   bad_extra_queue,	bad_interrupt_status,
	};

	negotiate(f, ALL_FEATURES);
	setup_queue(f, 0, 16);
	driver_ok(f);
	f->vdev.queues[0].last_avail_idx = 40;
	f->vdev.queues[0].used_idx = 30;
	assert_int_equal(load(f, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(load(f, bad[i]), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_identity),	  T(test_features),	    T(test_feature_negotiation),
	    T(test_queue_setup),  T(test_queue_bad_layout), T(test_notify),
	    T(test_kick_eventfd), T(test_interrupts),	    T(test_reset),
	    T(test_config_space), T(test_register_widths),  T(test_malformed_ring),
	    T(test_quiesce), T(test_freeze_thaw),	  T(test_post_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
