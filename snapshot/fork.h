/* SPDX-License-Identifier: MIT */
/*
 * Fork N clones of a paused VM. The VM's whole state is captured once
 * into a state blob (the snapshot format) and decoded back in the parent;
 * then the VMM process fork()s once per clone. Each child drops the parent's KVM objects, maps guest
 * memory MAP_PRIVATE over the same memfd (pages stay shared until
 * written), creates a fresh KVM VM and vCPUs, restores the blob and runs
 * whatever the caller's child function does with the clone.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct vm;

enum { FORK_MAX_CLONES = 4096 };

/*
 * Runs in the child after the clone is restored; its return value is the
 * exit status. Devices are still frozen (see vm_device_ops.thaw): the
 * child gives them backends of their own, then calls vm_thaw_devices().
 */
typedef int (*fork_child_fn)(struct vm *clone, uint32_t index, void *opaque);

struct fork_stats {
	/* Parent side: capture + encode of the state blob. */
	uint64_t capture_ns;
	/* Parent side: time spent in fork() for each clone. */
	uint64_t total_fork_ns;
	/* Optional, caller-provided (count entries): CLOCK_MONOTONIC ns at each clone's fork(). */
	uint64_t *clone_start_ns;
};

/*
 * Fork `count` clones of a paused vm. ret_pids[i] gets clone i's pid;
 * stats (optional) is filled in, clone_start_ns kept as given. The
 * template's memfd must not be written afterwards: keep it paused, or
 * call fork_template_go_private() before resuming it.
 */
int fork_clones(struct vm *vm, uint32_t count, fork_child_fn child, void *opaque,
		pid_t *ret_pids, struct fork_stats *stats) __must_check;

/* CLOCK_MONOTONIC in nanoseconds, the clock fork_stats uses. */
uint64_t fork_now_ns(void);

struct vm_state;

/* In a child: make `vm` a ready-to-run clone holding state st. */
int fork_restore_clone(struct vm *vm, const struct vm_state *st, char *reason,
		       size_t reason_len) __must_check;

/* Let a forked template run again without touching the memfd its clones share. */
int fork_template_go_private(struct vm *vm) __must_check;
