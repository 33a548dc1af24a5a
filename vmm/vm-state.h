/* SPDX-License-Identifier: MIT */
/*
 * The complete state of a paused VM in memory: every vCPU's KVM state,
 * the VM-wide clock, and each device's state. snapshot/ turns it into a
 * state file (and back); fork restores it into a fresh KVM VM.
 */
#pragma once

#include <stdint.h>

#include <linux/kvm.h>

#include "config.h"
#include "cpuid.h"
#include "util.h"

struct vm;
struct vcpu;
struct kvm_system;

enum { VCPU_STATE_MAX_MSRS = 64 };

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	/* MSR_IA32_TSC_DEADLINE, restored only after the LAPIC (see vcpu_state_restore). */
	uint64_t tsc_deadline;
	uint32_t nr_cpuid;
	struct kvm_cpuid_entry2 cpuid[CPUID_MAX_ENTRIES];
};

struct vm_state {
	uint64_t mem_bytes;
	uint32_t nr_vcpus;
	struct kvm_clock_data clock;
	/* nr_vcpus entries: a fork child writes to what it restores, so no slack. */
	struct vcpu_state *vcpus;
};

/* A state for nr_vcpus vCPUs (1..VM_MAX_VCPUS), zeroed; NULL when out of memory. */
struct vm_state *vm_state_new(uint32_t nr_vcpus);
void vm_state_free(struct vm_state *st);
DEFINE_CLEANUP_FUNC(struct vm_state, vm_state_free)

/* Capture a paused VM into a vm_state made for its vCPU count. */
int vm_state_capture(struct vm *vm, struct vm_state *st) __must_check;

enum vm_clock_mode {
	/* kvmclock continues from the captured value: no time passed. */
	VM_CLOCK_CONTINUE,
	/* kvmclock advances by the real time since capture (when KVM can). */
	VM_CLOCK_REALTIME,
	VM_CLOCK_MODE_MAX,
};

/*
 * Load state into a VM whose KVM objects were just created (vm_create or
 * vm_recreate_kvm) with the same memory size and vCPU count.
 */
int vm_state_restore(struct vm *vm, const struct vm_state *state,
		     enum vm_clock_mode clock) __must_check;

int vcpu_state_capture(struct vcpu *vcpu, struct vcpu_state *ret_state) __must_check;
int vcpu_state_restore(struct vcpu *vcpu, const struct vcpu_state *state) __must_check;

/* Which MSRs fvm saves; filtered by what this KVM supports. */
uint32_t vcpu_state_msr_list(const struct kvm_system *kvm, uint32_t *indices, uint32_t max);
