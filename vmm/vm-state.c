// SPDX-License-Identifier: MIT
/*
 * VM-wide state: the vCPUs and kvmclock. The IOAPIC, UART and other
 * device models save through their state descriptions (snapshot/).
 *
 * There is no in-kernel PIC or PIT to save: the split irqchip keeps only
 * the LAPICs in KVM (saved per vCPU) and fvm runs without a PIT.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "vm-state.h"
#include "vm.h"

struct vm_state *vm_state_new(uint32_t nr_vcpus)
{
	struct vm_state *st;

	if (nr_vcpus == 0 || nr_vcpus > VM_MAX_VCPUS)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->vcpus = calloc(nr_vcpus, sizeof(st->vcpus[0]));
	if (!st->vcpus) {
		free(st);
		return NULL;
	}
	st->nr_vcpus = nr_vcpus;
	return st;
}

void vm_state_free(struct vm_state *st)
{
	if (!st)
		return;
	free(st->vcpus);
	free(st);
}

int vm_state_capture(struct vm *vm, struct vm_state *st)
{
	int r;

	if (st->nr_vcpus != vm->nr_vcpus)
		return -EINVAL;
	/*
	 * Devices first: finishing their I/O writes guest memory and may
	 * raise interrupts, which must be in the LAPIC state captured below.
	 */
	vm_quiesce_devices(vm);
	st->mem_bytes = vm->mem.size;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		r = vcpu_state_capture(&vm->vcpus[i], &st->vcpus[i]);
		if (r < 0)
			return r;
	}
	if (ioctl(vm->fd, KVM_GET_CLOCK, &st->clock) < 0)
		return neg_errno();
	return 0;
}

int vm_state_restore(struct vm *vm, const struct vm_state *st, enum vm_clock_mode mode)
{
	struct kvm_clock_data clock = { .clock = st->clock.clock };
	int r;

	if (st->nr_vcpus != vm->nr_vcpus || st->mem_bytes != vm->mem.size)
		return -EINVAL;
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		r = vcpu_state_restore(&vm->vcpus[i], &st->vcpus[i]);
		if (r < 0)
			return r;
	}
	/*
	 * kvmclock last, so that KVM publishes the final offset to the vCPUs'
	 * kvmclock pages. By default it continues from the captured value (the
	 * guest sees no time pass); with VM_CLOCK_REALTIME, KVM adds the host
	 * real time elapsed since the capture, so a clone or a restored VM
	 * starts at the right time of day.
	 */
	if (mode == VM_CLOCK_REALTIME && (st->clock.flags & KVM_CLOCK_REALTIME)) {
		clock.flags = KVM_CLOCK_REALTIME;
		clock.realtime = st->clock.realtime;
	}
	if (ioctl(vm->fd, KVM_SET_CLOCK, &clock) < 0)
		return neg_errno();
	/* The new KVM VM has no pin routes yet: republish the IOAPIC's. */
	ioapic_republish(&vm->ioapic);
	return 0;
}
