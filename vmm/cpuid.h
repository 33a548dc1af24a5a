/* SPDX-License-Identifier: MIT */
/*
 * Turning KVM_GET_SUPPORTED_CPUID into what one vCPU of one guest sees:
 * its own APIC ID and a topology of nr_vcpus single-thread cores in one
 * package, the hypervisor bit, TSC-deadline when KVM emulates it (Linux
 * needs it with no PIT to calibrate against), no PMU and no host
 * topology extensions that would contradict ours.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "util.h"

struct cpuid_params {
	uint32_t vcpu_index;
	uint32_t nr_vcpus;
	bool tsc_deadline;
};

enum { CPUID_MAX_ENTRIES = 256 };

int cpuid_filter(const struct kvm_cpuid_entry2 *in, uint32_t nr_in, const struct cpuid_params *p,
		 struct kvm_cpuid_entry2 *out, uint32_t max_out, uint32_t *ret_nr) __must_check;

/* The APIC ID fvm gives vCPU `index` (identity, but named for readers). */
static inline uint32_t cpuid_apic_id(uint32_t index)
{
	return index;
}
