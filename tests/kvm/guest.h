/* SPDX-License-Identifier: MIT */
/*
 * Guest-side half of the tiny-guest harness. Guest code is ordinary C in
 * the test binary, marked GUEST_CODE: it lands in one section that the
 * harness copies into guest memory, so it must be position-independent,
 * call only other GUEST_CODE functions, and touch no host data (no string
 * literals: assertions report their line number).
 *
 * The guest talks to the host through one port: GUEST_SYNC(n) pauses and
 * lets the host look, GUEST_ASSERT(cond) fails the test naming the guest
 * source line, GUEST_DONE() ends the guest.
 */
#pragma once

#include <stdint.h>

#define GUEST_CODE                                                                                 \
	__attribute__((section("guest_code"), noinline, used, target("general-regs-only"),        \
		       no_stack_protector))

#define UCALL_PORT 0xf4

enum ucall_cmd {
	UCALL_NONE,
	UCALL_SYNC,
	UCALL_ASSERT,
	UCALL_DONE,
	UCALL_CMD_MAX,
};

/* Arguments travel in registers the host reads with KVM_GET_REGS. */
#define guest_ucall(cmd, arg0, arg1)                                                               \
	__asm__ volatile("outb %%al, %%dx" ::"a"(0), "d"(UCALL_PORT), "D"((uint64_t)(cmd)),        \
			 "S"((uint64_t)(arg0)), "c"((uint64_t)(arg1))                              \
			 : "memory")

#define GUEST_SYNC(n)	     guest_ucall(UCALL_SYNC, (n), 0)
#define GUEST_DONE()	     guest_ucall(UCALL_DONE, 0, 0)
#define GUEST_ASSERT(cond)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			guest_ucall(UCALL_ASSERT, __LINE__, 0);                                    \
	} while (0)
#define GUEST_ASSERT_EQ(a, b)                                                                      \
	do {                                                                                       \
		if ((a) != (b))                                                                    \
			guest_ucall(UCALL_ASSERT, __LINE__, (uint64_t)(a));                        \
	} while (0)

/* Guest memory the harness sets aside for guest data (identity-mapped). */
#define GUEST_CODE_GPA	0x100000ull
#define GUEST_DATA_GPA	0x200000ull
#define GUEST_STACK_TOP 0x400000ull
