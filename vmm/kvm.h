/* SPDX-License-Identifier: MIT */
/*
 * /dev/kvm: open it, check the API version and every capability fvm
 * relies on, and fetch what KVM supports. One failure, one clear reason.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "cpuid.h"

struct kvm_system {
	int fd;
	uint32_t vcpu_mmap_size;
	struct kvm_cpuid_entry2 supported_cpuid[CPUID_MAX_ENTRIES];
	uint32_t nr_supported_cpuid;
	uint32_t msr_index[512];
	uint32_t nr_msr_index;
	/* Optional capabilities */
	bool tsc_deadline;
};

/*
 * Open path (normally "/dev/kvm"). On failure ret_reason names what is
 * missing in one line (no device, no permission, old API, capability).
 */
int kvm_open(const char *path, struct kvm_system *ret_kvm, char *reason, size_t reason_len)
	__must_check;
void kvm_close(struct kvm_system *kvm);

bool kvm_has_msr(const struct kvm_system *kvm, uint32_t index);
