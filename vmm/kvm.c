// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"

#define KVM_REQUIRED_API 12

struct required_cap {
	int cap;
	const char *name;
	const char *why;
};

static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM from a memfd" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 task state area" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "guest CPUID" },
	{ KVM_CAP_SPLIT_IRQCHIP, "KVM_CAP_SPLIT_IRQCHIP", "in-kernel LAPIC with a user-space IOAPIC" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "IOAPIC pin routes" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI", "interrupt delivery from the IOAPIC" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device notifications" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", "kvmclock" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "vCPU state" },
};

static int open_device(const char *path, char *reason, size_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		snprintf(reason, len, "%s does not exist: this host has no KVM (load kvm-intel or kvm-amd, or enable virtualization)", path);
	else if (errno == EACCES || errno == EPERM)
		snprintf(reason, len, "no permission to open %s: run as root or join the group that owns it", path);
	else
		snprintf(reason, len, "cannot open %s: %s", path, strerror(errno));
	return neg_errno();
}

static int fetch_supported_cpuid(struct kvm_system *kvm)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
	} buf;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, &buf) < 0)
		return neg_errno();
	memcpy(kvm->supported_cpuid, buf.entries, buf.hdr.nent * sizeof(buf.entries[0]));
	kvm->nr_supported_cpuid = buf.hdr.nent;
	return 0;
}

static int fetch_msr_list(struct kvm_system *kvm)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t indices[ARRAY_SIZE(kvm->msr_index)];
	} buf;

	buf.hdr.nmsrs = ARRAY_SIZE(kvm->msr_index);
	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, &buf) < 0)
		return neg_errno();
	memcpy(kvm->msr_index, buf.indices, buf.hdr.nmsrs * sizeof(uint32_t));
	kvm->nr_msr_index = buf.hdr.nmsrs;
	return 0;
}

int kvm_open(const char *path, struct kvm_system *ret_kvm, char *reason, size_t reason_len)
{
	struct kvm_system kvm = { .fd = -1 };
	_cleanup_close_ int fd = -1;
	int version, mmap_size, r;

	fd = open_device(path, reason, reason_len);
	if (fd < 0)
		return fd;

	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_REQUIRED_API) {
		snprintf(reason, reason_len, "KVM API version %d is not the supported %d", version,
			 KVM_REQUIRED_API);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(reason, reason_len, "KVM lacks %s (needed for %s)",
				 required_caps[i].name, required_caps[i].why);
			return -ENOTSUP;
		}
	}
	kvm.tsc_deadline = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;

	mmap_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		snprintf(reason, reason_len, "KVM_GET_VCPU_MMAP_SIZE failed");
		return -ENOTSUP;
	}
	kvm.vcpu_mmap_size = (uint32_t)mmap_size;
	kvm.fd = fd;

	r = fetch_supported_cpuid(&kvm);
	if (r < 0) {
		snprintf(reason, reason_len, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
		return r;
	}
	r = fetch_msr_list(&kvm);
	if (r < 0) {
		snprintf(reason, reason_len, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(-r));
		return r;
	}
	kvm.fd = TAKE_FD(fd);
	*ret_kvm = kvm;
	return 0;
}

void kvm_close(struct kvm_system *kvm)
{
	if (kvm && kvm->fd >= 0) {
		close(kvm->fd);
		kvm->fd = -1;
	}
}

bool kvm_has_msr(const struct kvm_system *kvm, uint32_t index)
{
	for (uint32_t i = 0; i < kvm->nr_msr_index; i++)
		if (kvm->msr_index[i] == index)
			return true;
	return false;
}
