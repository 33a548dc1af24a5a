// SPDX-License-Identifier: MIT
/*
 * Wiring virtio devices into a VM. Notifications and interrupts bypass the vCPU
 * threads' user-space exits where KVM allows:
 *  - QueueNotify: a KVM ioeventfd per queue (4-byte write of the queue's
 *    index to QueueNotify) signals the queue's eventfd, which the I/O
 *    thread watches. If KVM refuses the ioeventfd the write exits to the
 *    transport, which signals the same eventfd: slower, same behaviour.
 *  - Interrupts: a KVM irqfd on GSI == the device's IOAPIC pin. The
 *    user-space IOAPIC publishes every programmed pin to KVM as an MSI
 *    route with gsi == pin, so the irqfd follows whatever vector and CPU
 *    the guest chose, without a trip through user space. The pin is
 *    edge-triggered in ACPI, so one signal is one interrupt. Should KVM
 *    refuse the irqfd, the transport pulses the pin through
 *    ioapic_set_level() instead.
 * A fork child gets new eventfds at the same fd numbers (dup3), so the
 * I/O thread's watches stay valid, and binds them to its own KVM VM.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "layout.h"
#include "vm-virtio.h"
#include "vm.h"

/* A new eventfd in *fd, or at *fd's number when it has one (fork child). */
static int renew_eventfd(int *fd)
{
	_cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (efd < 0)
		return neg_errno();
	if (*fd < 0) {
		*fd = TAKE_FD(efd);
		return 0;
	}
	return dup3(efd, *fd, O_CLOEXEC) < 0 ? neg_errno() : 0;
}

/* Eventfds for the queues and the interrupt, bound to the VM's current KVM VM. */
int vm_virtio_wire(struct vm *vm, struct virtio_mmio *vdev)
{
	struct kvm_irqfd irqfd = {.gsi = vdev->irq.pin};
	int r;

	for (uint32_t q = 0; q < vdev->nr_queues; q++) {
		struct kvm_ioeventfd ev = {.datamatch = q,
					   .addr = vdev->base + VIRTIO_MMIO_QUEUE_NOTIFY,
					   .len = 4,
					   .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};

		r = renew_eventfd(&vdev->kick_fd[q]);
		if (r < 0)
			return r;
		ev.fd = vdev->kick_fd[q];
		/* Optional: without it the transport forwards the write (see above). */
		(void)ioctl(vm->fd, KVM_IOEVENTFD, &ev);
	}
	r = renew_eventfd(&vdev->irq_fd);
	if (r < 0)
		return r;
	irqfd.fd = (uint32_t)vdev->irq_fd;
	if (ioctl(vm->fd, KVM_IRQFD, &irqfd) < 0) {
		close(vdev->irq_fd);
		vdev->irq_fd = -1;
	}
	return 0;
}

/* Bus range, ACPI description, notifications and interrupt for slot `slot`. */
int vm_virtio_attach(struct vm *vm, struct virtio_mmio *vdev, uint32_t slot)
{
	struct acpi_device acpi = {.hid = "LNRO0005",
				   .uid = slot,
				   .mmio_base = (uint32_t)vdev->base,
				   .mmio_len = VIRTIO_MMIO_SIZE,
				   .has_irq = true,
				   .gsi = vdev->irq.pin};
	int r;

	snprintf(acpi.name, sizeof(acpi.name), "VR%02u", slot);
	r = vm_virtio_wire(vm, vdev);
	for (uint32_t q = 0; r >= 0 && q < vdev->nr_queues; q++)
		r = vm_io_watch(vm, vdev->kick_fd[q], POLLIN, virtio_mmio_kick_handler,
				&vdev->kicks[q]);
	if (r >= 0)
		r = bus_register(&vm->mmio, vdev->base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, vdev);
	if (r >= 0)
		r = vm_add_acpi_device(vm, &acpi);
	return r;
}

uint64_t vm_virtio_slot_base(uint32_t slot)
{
	return LAYOUT_VIRTIO_MMIO + (uint64_t)slot * VIRTIO_MMIO_SIZE;
}

struct irq_line vm_virtio_irq_line(struct vm *vm, uint32_t slot)
{
	return (struct irq_line){.set_level = ioapic_set_level,
				 .controller = &vm->ioapic,
				 .pin = VM_VIRTIO_FIRST_GSI + slot};
}

int vm_virtio_claim_slot(struct vm *vm, uint32_t *ret_slot, char *reason, size_t reason_len)
{
	if (vm->nr_virtio >= VM_MAX_DEVICES || vm->nr_devices >= VM_MAX_DEVICES) {
		snprintf(reason, reason_len, "at most %d virtio devices", VM_MAX_DEVICES);
		return -ENOSPC;
	}
	*ret_slot = vm->nr_virtio;
	return 0;
}

void vm_virtio_quiesce(void *dev)
{
	virtio_mmio_quiesce(dev);
}

void vm_virtio_thaw(void *dev)
{
	virtio_mmio_thaw(dev);
}

int vm_virtio_rebind(void *dev, struct vm *vm)
{
	return vm_virtio_wire(vm, dev);
}
