// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"
#include "state-file.h"
#include "vm-state.h"
#include "vm.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int capture_blob(struct vm *vm, void **ret_blob, size_t *ret_len)
{
	_cleanup_free_ struct vm_state *st = calloc(1, sizeof(*st));
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(vm, devs, VM_MAX_STATE_DEVICES);
	int r;

	if (!st)
		return -ENOMEM;
	r = vm_state_capture(vm, st);
	if (r < 0)
		return r;
	return state_encode(st, devs, n, ret_blob, ret_len);
}

int fork_restore_clone(struct vm *vm, const void *blob, size_t len, char *reason,
		       size_t reason_len)
{
	_cleanup_free_ struct vm_state *st = calloc(1, sizeof(*st));
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(vm, devs, VM_MAX_STATE_DEVICES);
	int r;

	if (!st)
		return -ENOMEM;
	r = vm_recreate_kvm(vm, reason, reason_len);
	if (r < 0)
		return r;
	r = state_decode(blob, len, st, devs, n, reason, reason_len);
	if (r < 0)
		return r;
	r = vm_state_restore(vm, st);
	if (r < 0)
		snprintf(reason, reason_len, "restoring the clone's state failed: %s", strerror(-r));
	return r;
}

static void __attribute__((noreturn)) run_child(struct vm *vm, const void *blob, size_t len,
						 uint32_t index, fork_child_fn child, void *opaque)
{
	char reason[256] = "";
	int r = fork_restore_clone(vm, blob, len, reason, sizeof(reason));

	if (r < 0) {
		log_err("clone %u: %s", index, reason[0] ? reason : strerror(-r));
		_exit(125);
	}
	_exit(child(vm, index, opaque));
}

int fork_clones(struct vm *vm, uint32_t count, fork_child_fn child, void *opaque,
		pid_t *ret_pids, struct fork_stats *ret_stats)
{
	_cleanup_free_ void *blob = NULL;
	struct fork_stats stats = { 0 };
	size_t len;
	uint64_t t0 = now_ns();
	int r;

	if (count == 0 || count > FORK_MAX_CLONES)
		return -EINVAL;
	r = capture_blob(vm, &blob, &len);
	if (r < 0)
		return r;
	stats.capture_ns = now_ns() - t0;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t t = now_ns();
		pid_t pid = fork();

		if (pid < 0) {
			/* The clones made so far run on; the caller sees how many. */
			r = neg_errno();
			for (uint32_t j = i; j < count; j++)
				ret_pids[j] = -1;
			break;
		}
		if (pid == 0)
			run_child(vm, blob, len, i, child, opaque);
		stats.total_fork_ns += now_ns() - t;
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
