// SPDX-License-Identifier: MIT
/*
 * Save, destroy, restore and compare at every sync point of a guest that
 * mutates its registers and memory; then feed the state decoder tampered
 * files and check each is refused with a reason and changes nothing.
 */
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "harness.h"
#include "state-file.h"
#include "vm-state.h"

#define MEM_BYTES (32ull << 20)
#define NR_STEPS  5

static GUEST_CODE void guest_mutator(uint64_t arg)
{
	volatile uint64_t *data = (volatile uint64_t *)GUEST_DATA_GPA;
	uint64_t a = arg, b = arg * 3;

	for (uint64_t step = 1; step <= NR_STEPS; step++) {
		a = a * 6364136223846793005ull + 1442695040888963407ull;
		b ^= a >> 7;
		data[step] = a;
		/* The values live in registers across the sync and must survive it. */
		__asm__ volatile("" : "+r"(a), "+r"(b));
		GUEST_SYNC(step);
		GUEST_ASSERT_EQ(data[step], a);
		GUEST_ASSERT(b != 0);
	}
	data[0] = a ^ b;
	GUEST_DONE();
}

static void save(struct tiny_vm *t, void **blob, size_t *len, struct vm_state *st)
{
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(t->vm, devs, VM_MAX_STATE_DEVICES);

	TEST_REQUIRE(vm_state_capture(t->vm, st) == 0);
	TEST_REQUIRE(state_encode(st, devs, n, blob, len) == 0);
}

static int load(struct tiny_vm *t, const void *blob, size_t len, char *why, size_t why_len)
{
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(t->vm, devs, VM_MAX_STATE_DEVICES);
	struct vm_state *st = NULL;
	int r = state_decode(blob, len, &st, devs, n, why, why_len);

	if (r >= 0)
		r = vm_state_restore(t->vm, st, VM_CLOCK_CONTINUE);
	vm_state_free(st);
	return r;
}

/* Registers a restore must bring back exactly (clock-driven state excluded). */
static void compare_vcpu(const struct vcpu_state *a, const struct vcpu_state *b)
{
	TEST_REQUIRE(memcmp(&a->regs, &b->regs, sizeof(a->regs)) == 0);
	TEST_REQUIRE(memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)) == 0);
	TEST_REQUIRE(memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)) == 0);
	TEST_REQUIRE(memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)) == 0);
	TEST_REQUIRE(a->mp_state.mp_state == b->mp_state.mp_state);
	TEST_REQUIRE(a->nr_cpuid == b->nr_cpuid &&
		     memcmp(a->cpuid, b->cpuid, a->nr_cpuid * sizeof(a->cpuid[0])) == 0);
}

/* Recompute the CRC after deliberately editing a blob (the tests below). */
static void reseal(void *blob)
{
	fdt_setprop_inplace_u32(blob, 0, "crc32", 0);
	fdt_setprop_inplace_u32(blob, 0, "crc32", crc32c_of(blob, fdt_totalsize(blob)));
}

static void expect_rejected(struct tiny_vm *t, const void *blob, size_t len, const char *needle)
{
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(t->vm, devs, VM_MAX_STATE_DEVICES);
	struct vm_state *st = NULL;
	uint8_t serial_before[sizeof(t->vm->serial)];
	char why[256] = "";

	memcpy(serial_before, &t->vm->serial, sizeof(serial_before));
	TEST_REQUIRE(state_decode(blob, len, &st, devs, n, why, sizeof(why)) < 0);
	TEST_REQUIRE(st == NULL);
	if (!strstr(why, needle)) {
		fprintf(stderr, "rejection reason '%s' does not mention '%s'\n", why, needle);
		exit(1);
	}
	/* A refused file changes no device. */
	TEST_REQUIRE(memcmp(serial_before, &t->vm->serial, sizeof(serial_before)) == 0);
}

static void tamper_tests(struct tiny_vm *t, const void *good, size_t len)
{
	uint8_t *bad = malloc(len);
	int node, plen;
	const void *p;

	TEST_REQUIRE(bad != NULL);
	expect_rejected(t, good, len / 2, "not a valid flattened device tree");

	memcpy(bad, good, len);
	bad[len - 200] ^= 0x40; /* in the strings or structure block */
	expect_rejected(t, bad, len, "");

	memcpy(bad, good, len);
	node = fdt_path_offset(bad, "/vcpu@0");
	p = fdt_getprop(bad, node, "regs", &plen);
	TEST_REQUIRE(p != NULL);
	((uint8_t *)p)[8] ^= 1; /* a register bit: only the checksum can tell */
	expect_rejected(t, bad, len, "checksum mismatch");

	memcpy(bad, good, len);
	fdt_setprop_inplace_u32(bad, 0, "version", 99);
	reseal(bad);
	expect_rejected(t, bad, len, "version 99 is not supported");

	memcpy(bad, good, len);
	node = fdt_path_offset(bad, "/devices/serial");
	TEST_REQUIRE(node >= 0);
	p = fdt_getprop(bad, node, "rx_count", &plen);
	TEST_REQUIRE(p != NULL && plen == sizeof(uint32_t));
	memcpy((void *)p, &(uint32_t){ 1000 }, sizeof(uint32_t));
	reseal(bad);
	expect_rejected(t, bad, len, "inconsistent");
	free(bad);
}

int main(void)
{
	struct tiny_vm t;
	struct vm_state *before = vm_state_new(1);
	struct vm_state *after = vm_state_new(1);
	uint8_t *mem_copy = malloc(MEM_BYTES);
	char why[256];

	TEST_REQUIRE(before && after && mem_copy);
	tiny_vm_create(&t, 1, MEM_BYTES);
	tiny_vcpu_enter(&t, 0, guest_mutator, 7);

	for (uint64_t step = 1; step <= NR_STEPS; step++) {
		void *blob, *blob2;
		size_t len, len2;

		tiny_expect_sync(&t, 0, step);
		save(&t, &blob, &len, before);
		memcpy(mem_copy, t.vm->mem.host, MEM_BYTES);
		if (step == NR_STEPS)
			tamper_tests(&t, blob, len);

		/* Destroy the VM entirely and build a new one from the saved state. */
		tiny_vm_destroy(&t);
		tiny_vm_create(&t, 1, MEM_BYTES);
		memcpy(t.vm->mem.host, mem_copy, MEM_BYTES);
		if (load(&t, blob, len, why, sizeof(why)) < 0) {
			fprintf(stderr, "restore failed at step %llu: %s\n",
				(unsigned long long)step, why);
			return 1;
		}
		save(&t, &blob2, &len2, after);
		compare_vcpu(&before->vcpus[0], &after->vcpus[0]);
		free(blob);
		free(blob2);
	}
	tiny_expect_done(&t, 0);
	tiny_vm_destroy(&t);
	printf("snapshot: %d save/destroy/restore cycles ok, tampered files rejected\n", NR_STEPS);
	return 0;
}
