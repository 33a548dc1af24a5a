// SPDX-License-Identifier: MIT
/*
 * Two vCPUs on two threads running at once: each announces itself in
 * shared memory and then waits for the other, which only completes if
 * both are really executing concurrently.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#define NR_VCPUS   2
#define SPIN_LIMIT 4000000ull

static GUEST_CODE void guest_rendezvous(uint64_t id)
{
	volatile uint64_t *arrived = (volatile uint64_t *)GUEST_DATA_GPA;
	volatile uint64_t *seen_by = (volatile uint64_t *)(GUEST_DATA_GPA + 64);
	uint64_t one = 1, spins = 0;

	__asm__ volatile("lock xaddq %0, %1" : "+r"(one), "+m"(*arrived)::"memory");
	while (*arrived < NR_VCPUS && spins < SPIN_LIMIT)
		spins++;
	GUEST_ASSERT(*arrived == NR_VCPUS);
	seen_by[id] = id + 100;
	GUEST_DONE();
}

struct runner {
	struct tiny_vm *t;
	uint32_t index;
};

static void *run_vcpu(void *arg)
{
	struct runner *r = arg;

	tiny_expect_done(r->t, r->index);
	return NULL;
}

int main(void)
{
	struct tiny_vm t;
	struct runner runners[NR_VCPUS];
	pthread_t threads[NR_VCPUS];
	uint64_t *seen_by;

	tiny_vm_create(&t, NR_VCPUS, 64ull << 20);
	for (uint32_t i = 0; i < NR_VCPUS; i++)
		tiny_vcpu_enter(&t, i, guest_rendezvous, i);
	for (uint32_t i = 0; i < NR_VCPUS; i++) {
		runners[i] = (struct runner){ &t, i };
		TEST_REQUIRE(pthread_create(&threads[i], NULL, run_vcpu, &runners[i]) == 0);
	}
	for (uint32_t i = 0; i < NR_VCPUS; i++)
		pthread_join(threads[i], NULL);

	seen_by = tiny_guest_data(&t, 64, NR_VCPUS * sizeof(uint64_t));
	for (uint32_t i = 0; i < NR_VCPUS; i++)
		TEST_REQUIRE(seen_by[i] == i + 100);
	tiny_vm_destroy(&t);
	printf("smp: ok\n");
	return 0;
}
