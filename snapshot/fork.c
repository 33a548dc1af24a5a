// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"
#include "state-file.h"
#include "vm-state.h"
#include "vm.h"

uint64_t fork_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Capture the paused VM into a state blob and decode it straight back:
 * every fork goes through the snapshot format (and its validation), but
 * only once, in the parent; the children inherit the decoded state
 * copy-on-write and do nothing but KVM work.
 */
static int capture_state(struct vm *vm, struct vm_state **ret_st, char *reason, size_t len)
{
	_cleanup_(vm_state_freep) struct vm_state *st = vm_state_new(vm->nr_vcpus);
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(vm, devs, VM_MAX_STATE_DEVICES);
	_cleanup_free_ void *blob = NULL;
	size_t blob_len;
	int r;

	if (!st)
		return -ENOMEM;
	r = vm_state_capture(vm, st);
	if (r < 0) {
		snprintf(reason, len, "capturing the VM state failed: %s", strerror(-r));
		return r;
	}
	r = state_encode(st, devs, n, &blob, &blob_len);
	if (r < 0) {
		snprintf(reason, len, "encoding the VM state failed: %s", strerror(-r));
		return r;
	}
	return state_decode(blob, blob_len, ret_st, devs, n, reason, len);
}

int fork_restore_clone(struct vm *vm, const struct vm_state *st, char *reason, size_t reason_len)
{
	int r = vm_recreate_kvm(vm, reason, reason_len);

	if (r < 0)
		return r;
	r = vm_state_restore(vm, st, VM_CLOCK_REALTIME);
	if (r < 0) {
		snprintf(reason, reason_len, "restoring the clone's state failed: %s", strerror(-r));
		return r;
	}
	/* A new instance of the machine: the guest reseeds its RNG. */
	r = vmgenid_regenerate(&vm->genid, &vm->mem);
	if (r < 0)
		snprintf(reason, reason_len, "cannot renew the VM generation ID: %s", strerror(-r));
	return r;
}

static void __attribute__((noreturn)) run_child(struct vm *vm, const struct vm_state *st,
						 uint32_t index, fork_child_fn child, void *opaque)
{
	char reason[256] = "";
	int r = fork_restore_clone(vm, st, reason, sizeof(reason));

	if (r < 0) {
		log_err("clone %u: %s", index, reason[0] ? reason : strerror(-r));
		_exit(125);
	}
	_exit(child(vm, index, opaque));
}

int fork_clones(struct vm *vm, uint32_t count, fork_child_fn child, void *opaque,
		pid_t *ret_pids, struct fork_stats *ret_stats)
{
	_cleanup_(vm_state_freep) struct vm_state *st = NULL;
	struct fork_stats stats = { .clone_start_ns = ret_stats ? ret_stats->clone_start_ns : NULL };
	uint64_t t0 = fork_now_ns();
	char reason[256] = "";
	int r;

	if (count == 0 || count > FORK_MAX_CLONES)
		return -EINVAL;
	/* Clones inherit the memfd: it must hold what this VM sees. */
	r = guest_mem_consolidate(&vm->mem);
	if (r < 0) {
		log_err("fork: cannot move guest memory into a shared memfd: %s", strerror(-r));
		return r;
	}
	r = capture_state(vm, &st, reason, sizeof(reason));
	if (r < 0) {
		log_err("fork: %s", reason[0] ? reason : strerror(-r));
		return r;
	}
	stats.capture_ns = fork_now_ns() - t0;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t t = fork_now_ns();
		pid_t pid;

		if (stats.clone_start_ns)
			stats.clone_start_ns[i] = t;
		pid = fork();
		if (pid < 0) {
			/* The clones made so far run on; the caller sees how many. */
			r = neg_errno();
			for (uint32_t j = i; j < count; j++)
				ret_pids[j] = -1;
			break;
		}
		if (pid == 0)
			run_child(vm, st, i, child, opaque);
		stats.total_fork_ns += fork_now_ns() - t;
		ret_pids[i] = pid;
	}
	if (ret_stats)
		*ret_stats = stats;
	return r;
}

int fork_template_go_private(struct vm *vm)
{
	return guest_mem_remap_private(&vm->mem);
}
