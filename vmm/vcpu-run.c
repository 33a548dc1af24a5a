// SPDX-License-Identifier: MIT
/*
 * One KVM_RUN and the dispatch of the exit it returns. Everything the
 * guest controls (ports, addresses, sizes, counts) is checked before use.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "vm.h"

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t total = (uint64_t)size * count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* KVM fills these, but they index our mapping: stay inside it. */
	if (!range_within(run->io.data_offset, total, vcpu->vm->kvm.vcpu_mmap_size))
		return;
	for (uint32_t i = 0; i < count; i++)
		bus_access(&vcpu->vm->pio, run->io.port, data + (uint64_t)i * size, size, is_write);
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_EXIT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_EXIT_REBOOT);
		break;
	default:
		vm_request_stop(vcpu->vm, VM_EXIT_CRASH);
		break;
	}
}

int vcpu_run_once(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int reason;

	if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
		int r = neg_errno();

		if (r == -EINTR || r == -EAGAIN) {
			run->immediate_exit = 0;
			vcpu->exits[VCPU_STAT_INTR]++;
			return -EINTR;
		}
		return r;
	}

	reason = (int)run->exit_reason;
	switch (reason) {
	case KVM_EXIT_IO:
		vcpu->exits[VCPU_STAT_IO]++;
		handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		vcpu->exits[VCPU_STAT_MMIO]++;
		handle_mmio(vcpu);
		break;
	case KVM_EXIT_IOAPIC_EOI:
		vcpu->exits[VCPU_STAT_IOAPIC_EOI]++;
		ioapic_eoi(&vcpu->vm->ioapic, run->eoi.vector);
		break;
	case KVM_EXIT_INTR:
		vcpu->exits[VCPU_STAT_INTR]++;
		break;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: the CPU would reset. */
		vcpu->exits[VCPU_STAT_OTHER]++;
		vm_request_stop(vcpu->vm, VM_EXIT_TRIPLE_FAULT);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu->exits[VCPU_STAT_OTHER]++;
		handle_system_event(vcpu);
		break;
	default:
		vcpu->exits[VCPU_STAT_OTHER]++;
		break;
	}
	return reason;
}
