// SPDX-License-Identifier: MIT
/*
 * Real-mode entry: a few hand-assembled 16-bit instructions reach a
 * device on the PIO bus through the run loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TEST_PORT 0x520

struct recorder {
	uint8_t bytes[8];
	uint32_t n;
};

static void rec_write(void *dev, uint64_t off, const void *data, uint32_t size)
{
	struct recorder *r = dev;

	if (r->n < sizeof(r->bytes))
		r->bytes[r->n++] = *(const uint8_t *)data;
}

static const struct bus_device_ops rec_ops = {
	.name = "recorder", .access_sizes = BUS_ACCESS_1, .write = rec_write,
};

/*
 *   mov dx, 0x520 ; mov al, 'f' ; out dx, al ; inc al ; out dx, al
 *   mov ax, cs    ; out dx, al  (CS is 0x0100: its low byte, 0x00)
 *   mov dx, 0xf4  ; mov di, UCALL_DONE ; out dx, al   (the harness's DONE)
 */
static const uint8_t real_mode_code[] = {
	0xba, 0x20, 0x05, 0xb0, 'f', 0xee, 0xfe, 0xc0, 0xee, 0x8c, 0xc8, 0xee,
	0xba, UCALL_PORT, 0x00, 0xbf, UCALL_DONE, 0x00, 0xee, 0xeb, 0xfe,
};

int main(void)
{
	struct tiny_vm t;
	struct recorder rec = { 0 };
	struct ucall uc;

	tiny_vm_create(&t, 1, 16ull << 20);
	TEST_REQUIRE(bus_register(&t.vm->pio, TEST_PORT, 1, &rec_ops, &rec) == 0);
	/* CS 0x0100, IP 0x0000: linear address 0x1000. */
	TEST_REQUIRE(guest_mem_write(&t.vm->mem, 0x1000, real_mode_code, sizeof(real_mode_code)) == 0);
	TEST_REQUIRE(vcpu_setup_real_mode(&t.vm->vcpus[0], 0x0100, 0x0000) == 0);

	uc = tiny_vcpu_run(&t, 0);
	TEST_REQUIRE(uc.cmd == UCALL_DONE);
	TEST_REQUIRE(rec.n == 3);
	TEST_REQUIRE(rec.bytes[0] == 'f' && rec.bytes[1] == 'g' && rec.bytes[2] == 0x00);
	tiny_vm_destroy(&t);
	printf("real-mode: ok\n");
	return 0;
}
