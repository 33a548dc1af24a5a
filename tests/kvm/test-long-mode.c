// SPDX-License-Identifier: MIT
/*
 * Long-mode entry, port I/O and MMIO reaching a device on fvm's buses,
 * and guest memory shared with the host between sync points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TEST_PORT     0x510
#define TEST_MMIO     0xd0100000ull
#define TEST_MMIO_LEN 0x1000

struct test_device {
	uint32_t pio_last;
	uint64_t mmio_last;
	uint32_t pio_writes, mmio_writes;
};

static void dev_pio_read(void *dev, uint64_t off, void *data, uint32_t size)
{
	uint32_t v = 0xc0de0000u | (uint32_t)off;

	memcpy(data, &v, size);
}

static void dev_pio_write(void *dev, uint64_t off, const void *data, uint32_t size)
{
	struct test_device *d = dev;

	d->pio_last = 0;
	memcpy(&d->pio_last, data, size);
	d->pio_writes++;
}

static void dev_mmio_read(void *dev, uint64_t off, void *data, uint32_t size)
{
	uint64_t v = 0x1122334455667788ull + off;

	memcpy(data, &v, size);
}

static void dev_mmio_write(void *dev, uint64_t off, const void *data, uint32_t size)
{
	struct test_device *d = dev;

	d->mmio_last = 0;
	memcpy(&d->mmio_last, data, size);
	d->mmio_writes++;
}

static const struct bus_device_ops pio_ops = {
	.name = "test-pio", .access_sizes = BUS_ACCESS_4, .read = dev_pio_read, .write = dev_pio_write,
};
static const struct bus_device_ops mmio_ops = {
	.name = "test-mmio", .access_sizes = BUS_ACCESS_4 | BUS_ACCESS_8,
	.read = dev_mmio_read, .write = dev_mmio_write,
};

static GUEST_CODE uint32_t guest_inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "d"(port));
	return v;
}

static GUEST_CODE void guest_outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" ::"a"(v), "d"(port));
}

static GUEST_CODE void guest_main(uint64_t arg)
{
	volatile uint64_t *shared = (volatile uint64_t *)GUEST_DATA_GPA;
	volatile uint64_t *mmio = (volatile uint64_t *)TEST_MMIO;
	volatile uint32_t *mmio32 = (volatile uint32_t *)(TEST_MMIO + 0x10);

	/* The argument arrived in RDI: long-mode entry set registers as asked. */
	GUEST_ASSERT_EQ(arg, 0xfeedull);
	shared[0] = arg * 2;
	GUEST_SYNC(1);

	/* The host changed memory while we were stopped. */
	GUEST_ASSERT_EQ(shared[1], 0xabcdull);

	GUEST_ASSERT_EQ(guest_inl(TEST_PORT + 0), 0xc0de0000u);
	guest_outl(TEST_PORT, 0x12345678u);
	GUEST_SYNC(2);

	GUEST_ASSERT_EQ(*mmio, 0x1122334455667788ull);
	GUEST_ASSERT_EQ(*mmio32, (uint32_t)(0x1122334455667788ull + 0x10));
	*mmio = 0x0102030405060708ull;
	GUEST_SYNC(3);

	/* An unclaimed port reads as all-ones. */
	GUEST_ASSERT_EQ(guest_inl(0x5f0), 0xffffffffu);
	GUEST_DONE();
}

int main(void)
{
	struct tiny_vm t;
	struct test_device dev = { 0 };
	uint64_t *shared;

	tiny_vm_create(&t, 1, 64ull << 20);
	TEST_REQUIRE(bus_register(&t.vm->pio, TEST_PORT, 4, &pio_ops, &dev) == 0);
	TEST_REQUIRE(bus_register(&t.vm->mmio, TEST_MMIO, TEST_MMIO_LEN, &mmio_ops, &dev) == 0);
	shared = tiny_guest_data(&t, 0, 16);

	tiny_vcpu_enter(&t, 0, guest_main, 0xfeed);
	tiny_expect_sync(&t, 0, 1);
	TEST_REQUIRE(shared[0] == 0xfeed * 2);
	shared[1] = 0xabcd;

	tiny_expect_sync(&t, 0, 2);
	TEST_REQUIRE(dev.pio_writes == 1 && dev.pio_last == 0x12345678u);

	tiny_expect_sync(&t, 0, 3);
	TEST_REQUIRE(dev.mmio_writes == 1 && dev.mmio_last == 0x0102030405060708ull);

	tiny_expect_done(&t, 0);
	TEST_REQUIRE(t.vm->pio.unclaimed_accesses >= 1);
	tiny_vm_destroy(&t);
	printf("long-mode: ok\n");
	return 0;
}
