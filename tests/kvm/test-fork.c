// SPDX-License-Identifier: MIT
/*
 * Fork 100 clones of a paused tiny guest. Every clone continues from the
 * template's state (registers and memory), gets its own identity, writes
 * its own memory, and none of that reaches the template or its siblings.
 * Then the template runs on (on a private mapping) and is forked again:
 * the second generation starts from what the template wrote since.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fork.h"
#include "harness.h"

#define NR_CLONES 100

struct guest_data {
	uint64_t counter;
	uint64_t clone_id;
	uint64_t slot[NR_CLONES + 1];
};

static GUEST_CODE void guest_counter(uint64_t arg)
{
	volatile struct guest_data *g = (volatile struct guest_data *)GUEST_DATA_GPA;
	/* Lives in a register across every sync: restore must bring it back. */
	uint64_t magic = arg ^ 0x5eedull;

	for (;;) {
		uint64_t id = g->clone_id;

		GUEST_ASSERT(id <= NR_CLONES);
		g->counter++;
		g->slot[id] = g->counter * 1000 + id;
		GUEST_ASSERT_EQ(magic, arg ^ 0x5eedull);
		GUEST_SYNC(g->counter);
		__asm__ volatile("" : "+r"(magic));
	}
}

struct generation {
	struct tiny_vm *t;
	uint64_t template_counter; /* where the template stood at fork */
};

/* In each clone: become clone `index + 1`, run two more steps, check everything. */
static int clone_main(struct vm *vm, uint32_t index, void *opaque)
{
	struct generation *gen = opaque;
	struct tiny_vm *t = gen->t;
	struct guest_data *g = tiny_guest_data(t, 0, sizeof(*g));
	uint64_t id = index + 1, base = gen->template_counter;

	vm_thaw_devices(vm);
	g->clone_id = id;
	tiny_expect_sync(t, 0, base + 1);
	tiny_expect_sync(t, 0, base + 2);
	if (g->slot[id] != (base + 2) * 1000 + id || g->slot[0] != base * 1000)
		return 1;
	for (uint64_t i = 1; i <= NR_CLONES; i++)
		if (i != id && g->slot[i] != 0)
			return 2; /* a sibling's write leaked in */
	return 0;
}

int main(void)
{
	struct tiny_vm t;
	struct guest_data *g;
	pid_t pids[NR_CLONES];
	struct fork_stats stats;
	struct generation gen;
	int failures = 0;

	tiny_vm_create(&t, 1, 64ull << 20);
	g = tiny_guest_data(&t, 0, sizeof(*g));
	tiny_vcpu_enter(&t, 0, guest_counter, 42);
	tiny_expect_sync(&t, 0, 1);

	gen = (struct generation){ &t, 1 };
	TEST_REQUIRE(fork_clones(t.vm, NR_CLONES, clone_main, &gen, pids, &stats) == 0);
	for (int i = 0; i < NR_CLONES; i++) {
		int status;

		TEST_REQUIRE(waitpid(pids[i], &status, 0) == pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "clone %d failed: status 0x%x\n", i, status);
			failures++;
		}
	}
	TEST_REQUIRE(failures == 0);

	/* The template saw none of it... */
	TEST_REQUIRE(g->counter == 1 && g->clone_id == 0 && g->slot[0] == 1000);
	for (int i = 1; i <= NR_CLONES; i++)
		TEST_REQUIRE(g->slot[i] == 0);
	/* ...and, on a private mapping now, runs on where it stopped. */
	TEST_REQUIRE(fork_template_go_private(t.vm) == 0);
	tiny_expect_sync(&t, 0, 2);
	TEST_REQUIRE(g->slot[0] == 2000);

	/* A second generation, from the template's private state at counter 2. */
	gen = (struct generation){ &t, 2 };
	TEST_REQUIRE(fork_clones(t.vm, 10, clone_main, &gen, pids, NULL) == 0);
	for (int i = 0; i < 10; i++) {
		int status;

		TEST_REQUIRE(waitpid(pids[i], &status, 0) == pids[i]);
		TEST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	TEST_REQUIRE(g->counter == 2);

	tiny_vm_destroy(&t);
	printf("fork: %d clones ok (state capture %.1f us, fork() %.1f us per clone)\n", NR_CLONES,
	       stats.capture_ns / 1e3, stats.total_fork_ns / 1e3 / NR_CLONES);
	return 0;
}
