// SPDX-License-Identifier: MIT
/*
 * Attaching virtio devices. Notifications and interrupts bypass the vCPU
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
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "layout.h"
#include "virtio-blk.h"
#include "vm-devices.h"
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
static int wire_virtio(struct vm *vm, struct virtio_mmio *vdev)
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
static int attach_virtio(struct vm *vm, struct virtio_mmio *vdev, uint32_t slot)
{
	struct acpi_device acpi = {.hid = "LNRO0005",
				   .uid = slot,
				   .mmio_base = (uint32_t)vdev->base,
				   .mmio_len = VIRTIO_MMIO_SIZE,
				   .has_irq = true,
				   .gsi = vdev->irq.pin};
	int r;

	snprintf(acpi.name, sizeof(acpi.name), "VR%02u", slot);
	r = wire_virtio(vm, vdev);
	for (uint32_t q = 0; r >= 0 && q < vdev->nr_queues; q++)
		r = vm_io_watch(vm, vdev->kick_fd[q], POLLIN, virtio_mmio_kick_handler,
				&vdev->kicks[q]);
	if (r >= 0)
		r = bus_register(&vm->mmio, vdev->base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, vdev);
	if (r >= 0)
		r = vm_add_acpi_device(vm, &acpi);
	return r;
}

static void blk_quiesce(void *dev)
{
	struct virtio_blk *blk = dev;

	virtio_mmio_quiesce(&blk->vdev);
}

/*
 * The disk itself stays shared with the template (same open files): a
 * writable image must not be written by two processes, so a clone that
 * writes needs an overlay of its own, which is the fork path's to set up.
 */
static int blk_rebind(void *dev, struct vm *vm)
{
	struct virtio_blk *blk = dev;
	int r = virtio_blk_after_fork(blk);

	return r < 0 ? r : wire_virtio(vm, &blk->vdev);
}

static void blk_destroy(void *dev)
{
	virtio_blk_destroy(dev);
}

static const struct vm_device_ops blk_device_ops = {
    .quiesce = blk_quiesce,
    .rebind = blk_rebind,
    .destroy = blk_destroy,
};

int vm_attach_virtio_blk(struct vm *vm, const struct vm_drive_config *drive, char *reason,
			 size_t reason_len)
{
	uint32_t slot = vm->nr_virtio;
	uint64_t base = LAYOUT_VIRTIO_MMIO + (uint64_t)slot * VIRTIO_MMIO_SIZE;
	struct virtio_blk_params p = {
	    .path = drive->path, .read_only = drive->read_only, .serial = drive->id};
	struct virtio_blk *blk;
	int r;

	if (slot >= VM_MAX_DEVICES) {
		snprintf(reason, reason_len, "at most %d virtio devices", VM_MAX_DEVICES);
		return -ENOSPC;
	}
	r = virtio_blk_create(&p, &vm->mem, base, &blk, reason, reason_len);
	if (r < 0)
		return r;
	snprintf(blk->drive_id, sizeof(blk->drive_id), "%s", drive->id);
	blk->vdev.irq = (struct irq_line){.set_level = ioapic_set_level,
					  .controller = &vm->ioapic,
					  .pin = VM_VIRTIO_FIRST_GSI + slot};
	/* The VM owns it from here on, even if wiring fails below. */
	r = vm_add_device(vm, &(struct vm_device){.ops = &blk_device_ops,
						  .dev = blk,
						  .state = {&blk->vdev.state, &blk->vdev}});
	if (r < 0) {
		virtio_blk_destroy(blk);
		snprintf(reason, reason_len, "no room for drive '%s': %s", drive->id, strerror(-r));
		return r;
	}
	vm->nr_virtio++;
	r = attach_virtio(vm, &blk->vdev, slot);
	if (r >= 0)
		r = vm_io_watch(vm, blk->io.event_fd, POLLIN, virtio_blk_io_handler, blk);
	if (r < 0)
		snprintf(reason, reason_len, "cannot attach drive '%s': %s", drive->id,
			 strerror(-r));
	return r;
}

int vm_drive_swap(struct vm *vm, const char *drive_id, const char *path, char *reason,
		  size_t reason_len)
{
	for (uint32_t i = 0; i < vm->nr_devices; i++) {
		struct virtio_blk *blk = vm->devices[i].dev;

		if (vm->devices[i].ops == &blk_device_ops && strcmp(blk->drive_id, drive_id) == 0)
			return virtio_blk_swap_disk(blk, path, reason, reason_len);
	}
	snprintf(reason, reason_len, "no drive '%s'", drive_id);
	return -ENOENT;
}

int vm_attach_drives(struct vm *vm, const struct vm_config *cfg, char *reason, size_t reason_len)
{
	int r = 0;

	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; r >= 0 && i < cfg->nr_drives; i++)
			if (cfg->drives[i].is_root == (pass == 0))
				r = vm_attach_virtio_blk(vm, &cfg->drives[i], reason, reason_len);
	return r;
}
