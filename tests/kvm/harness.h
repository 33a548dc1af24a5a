/* SPDX-License-Identifier: MIT */
/*
 * Host-side half of the tiny-guest harness: a real fvm VM (vm_create,
 * the buses, the vCPU run loop) running guest functions from the test
 * binary in long mode, or raw bytes in real mode.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "vm.h"

struct ucall {
	enum ucall_cmd cmd;
	uint64_t arg0, arg1;
};

struct tiny_vm {
	struct vm *vm;
};

/* Exit 77 (skip) when /dev/kvm is missing; fail on any other error. */
void tiny_vm_create(struct tiny_vm *t, uint32_t nr_vcpus, uint64_t mem_bytes);
void tiny_vm_destroy(struct tiny_vm *t);

/* Start vCPU `index` in long mode at a GUEST_CODE function, with arg in RDI. */
void tiny_vcpu_enter(struct tiny_vm *t, uint32_t index, void (*guest_fn)(uint64_t),
		     uint64_t arg);

/* Run until the guest's next ucall; fails the test on any other stop. */
struct ucall tiny_vcpu_run(struct tiny_vm *t, uint32_t index);

/*
 * Run until a ucall and require it to be SYNC(n) / DONE. A guest
 * assertion fails the test naming the test file and the guest's line.
 */
void __tiny_expect_sync(struct tiny_vm *t, uint32_t index, uint64_t n, const char *file);
void __tiny_expect_done(struct tiny_vm *t, uint32_t index, const char *file);
#define tiny_expect_sync(t, index, n) __tiny_expect_sync(t, index, n, __FILE__)
#define tiny_expect_done(t, index)    __tiny_expect_done(t, index, __FILE__)

/* Host pointer to guest data at GUEST_DATA_GPA + offset. */
void *tiny_guest_data(struct tiny_vm *t, uint64_t offset, uint64_t len);

/* Turn a ucall into a test failure naming the guest line when it is an assertion. */
void tiny_check_ucall(const struct ucall *uc, const char *file);

#define TEST_REQUIRE(cond)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__,     \
				#cond);                                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)
