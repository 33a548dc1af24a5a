// SPDX-License-Identifier: MIT
/*
 * vCPU state capture and restore.
 *
 * Restore order, and why:
 *  1. CPUID    - KVM checks MSRs and XSAVE components against the CPUID.
 *  2. SREGS    - CPU mode, EFER and the APIC base (which switches the
 *                LAPIC between xAPIC and x2APIC layout) before anything
 *                that depends on them.
 *  3. REGS     - RIP/RSP only mean something once the mode is set.
 *  4. XSAVE, XCRS - FPU/vector state; XCR0 after the area it describes.
 *  5. MSRS     - TSC (KVM derives the TSC offset from it), kvmclock and
 *                syscall MSRs; needs CPUID and EFER.
 *  6. MP_STATE - runnable / halted / waiting for SIPI.
 *  7. LAPIC    - after SREGS (APIC base) and MP_STATE.
 *  8. TSC_DEADLINE - a deadline only sticks when the LAPIC timer is
 *                already in TSC-deadline mode, so after LAPIC.
 *  9. EVENTS   - pending exceptions, NMIs and SIPIs refer to the LAPIC
 *                and MP state restored before.
 * 10. DEBUGREGS.
 * Capture reads the same things; its order does not matter on a vCPU
 * that is out of KVM_RUN.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "vm-state.h"
#include "vm.h"

#define MSR_IA32_TSC_DEADLINE 0x6e0

/* What a guest kernel programs and expects to find again. */
static const uint32_t saved_msrs[] = {
	0x10,	    /* TSC */
	0x3b,	    /* TSC_ADJUST */
	0x174,	    /* SYSENTER_CS */
	0x175,	    /* SYSENTER_ESP */
	0x176,	    /* SYSENTER_EIP */
	0x1a0,	    /* MISC_ENABLE */
	0x277,	    /* PAT */
	0x2ff,	    /* MTRR default type */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SYSCALL_MASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
	0x11,	    /* kvmclock (old): wall clock */
	0x12,	    /* kvmclock (old): system time */
	0x4b564d00, /* kvmclock: wall clock */
	0x4b564d01, /* kvmclock: system time */
	0x4b564d02, /* async page fault */
	0x4b564d03, /* steal time */
	0x4b564d04, /* PV EOI */
	0x4b564d05, /* poll control */
	0x4b564d06, /* async page fault interrupt */
	0x48,	    /* SPEC_CTRL */
};

uint32_t vcpu_state_msr_list(const struct kvm_system *kvm, uint32_t *indices, uint32_t max)
{
	uint32_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(saved_msrs) && n < max; i++)
		if (kvm_has_msr(kvm, saved_msrs[i]))
			indices[n++] = saved_msrs[i];
	return n;
}

struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry entries[VCPU_STATE_MAX_MSRS];
};

static int get_msrs(struct vcpu *vcpu, struct vcpu_state *st)
{
	uint32_t indices[VCPU_STATE_MAX_MSRS];
	uint32_t n = vcpu_state_msr_list(&vcpu->vm->kvm, indices, VCPU_STATE_MAX_MSRS - 1);
	struct msr_buf buf;
	int r;

	memset(&buf, 0, sizeof(buf));
	for (uint32_t i = 0; i < n; i++)
		buf.entries[i].index = indices[i];
	buf.hdr.nmsrs = n;
	r = ioctl(vcpu->fd, KVM_GET_MSRS, &buf);
	if (r < 0)
		return neg_errno();
	/* KVM stops at the first MSR it cannot read: keep what it read. */
	st->nr_msrs = (uint32_t)r;
	memcpy(st->msrs, buf.entries, (size_t)r * sizeof(buf.entries[0]));

	if (kvm_has_msr(&vcpu->vm->kvm, MSR_IA32_TSC_DEADLINE)) {
		memset(&buf, 0, sizeof(buf));
		buf.hdr.nmsrs = 1;
		buf.entries[0].index = MSR_IA32_TSC_DEADLINE;
		if (ioctl(vcpu->fd, KVM_GET_MSRS, &buf) == 1)
			st->tsc_deadline = buf.entries[0].data;
	}
	return 0;
}

static int get_cpuid(struct vcpu *vcpu, struct vcpu_state *st)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
	} buf;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nent = CPUID_MAX_ENTRIES;
	if (ioctl(vcpu->fd, KVM_GET_CPUID2, &buf) < 0)
		return neg_errno();
	st->nr_cpuid = buf.hdr.nent;
	memcpy(st->cpuid, buf.entries, buf.hdr.nent * sizeof(buf.entries[0]));
	return 0;
}

static int vcpu_ioctl(struct vcpu *vcpu, unsigned long req, void *arg)
{
	return ioctl(vcpu->fd, req, arg) < 0 ? neg_errno() : 0;
}

int vcpu_state_capture(struct vcpu *vcpu, struct vcpu_state *st)
{
	int r;

	memset(st, 0, sizeof(*st));
	r = get_cpuid(vcpu, st);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_SREGS, &st->sregs);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_REGS, &st->regs);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_XSAVE, &st->xsave);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_XCRS, &st->xcrs);
	if (r >= 0)
		r = get_msrs(vcpu, st);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &st->mp_state);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_LAPIC, &st->lapic);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &st->events);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &st->debugregs);
	return r;
}

static int set_cpuid(struct vcpu *vcpu, const struct vcpu_state *st)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
	} buf;

	if (st->nr_cpuid > CPUID_MAX_ENTRIES)
		return -EINVAL;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.nent = st->nr_cpuid;
	memcpy(buf.entries, st->cpuid, st->nr_cpuid * sizeof(buf.entries[0]));
	return vcpu_ioctl(vcpu, KVM_SET_CPUID2, &buf);
}

static int set_msrs(struct vcpu *vcpu, const struct kvm_msr_entry *entries, uint32_t n)
{
	struct msr_buf buf;
	int r;

	if (n > VCPU_STATE_MAX_MSRS)
		return -EINVAL;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = n;
	memcpy(buf.entries, entries, n * sizeof(entries[0]));
	r = ioctl(vcpu->fd, KVM_SET_MSRS, &buf);
	if (r < 0)
		return neg_errno();
	/* A short count names the first MSR KVM refused. */
	return (uint32_t)r == n ? 0 : -EINVAL;
}

int vcpu_state_restore(struct vcpu *vcpu, const struct vcpu_state *st)
{
	struct kvm_vcpu_events events = st->events;
	struct kvm_msr_entry deadline = { .index = MSR_IA32_TSC_DEADLINE, .data = st->tsc_deadline };
	int r;

	/* Pending NMIs and the SIPI vector are only applied when flagged. */
	events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;

	r = set_cpuid(vcpu, st);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_SREGS, (void *)&st->sregs);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_REGS, (void *)&st->regs);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_XSAVE, (void *)&st->xsave);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_XCRS, (void *)&st->xcrs);
	if (r >= 0)
		r = set_msrs(vcpu, st->msrs, st->nr_msrs);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_MP_STATE, (void *)&st->mp_state);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_LAPIC, (void *)&st->lapic);
	if (r >= 0 && kvm_has_msr(&vcpu->vm->kvm, MSR_IA32_TSC_DEADLINE))
		r = set_msrs(vcpu, &deadline, 1);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &events);
	if (r >= 0)
		r = vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, (void *)&st->debugregs);
	return r;
}
