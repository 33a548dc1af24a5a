/* SPDX-License-Identifier: MIT */
/*
 * What every virtio device builder (vm-devices*.c) shares: a slot's
 * address and interrupt line, the KVM notification and interrupt
 * eventfds, and the bus, ACPI and I/O-thread registration.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "irq.h"
#include "util.h"
#include "virtio-mmio.h"

struct vm;

/* The next free virtio slot, or -ENOSPC with a reason. */
int vm_virtio_claim_slot(struct vm *vm, uint32_t *ret_slot, char *reason,
			 size_t reason_len) __must_check;
/* Guest-physical base of slot `slot`'s register page. */
uint64_t vm_virtio_slot_base(uint32_t slot);
/* Slot `slot`'s interrupt: IOAPIC pin VM_VIRTIO_FIRST_GSI + slot. */
struct irq_line vm_virtio_irq_line(struct vm *vm, uint32_t slot);

/*
 * Eventfds for the queues and the interrupt, bound to the VM's current
 * KVM VM. In a fork child the fds keep their numbers (the I/O thread's
 * watches stay valid) but become the child's own.
 */
int vm_virtio_wire(struct vm *vm, struct virtio_mmio *vdev) __must_check;

/* Bus range, ACPI description, notifications and interrupt for slot `slot`. */
int vm_virtio_attach(struct vm *vm, struct virtio_mmio *vdev, uint32_t slot) __must_check;

/*
 * vm_device_ops hooks for any device whose first member is its struct
 * virtio_mmio (every virtio device here): quiesce, thaw, and rebind for a
 * device with nothing of its own to renew in a fork child.
 */
void vm_virtio_quiesce(void *dev);
void vm_virtio_thaw(void *dev);
int vm_virtio_rebind(void *dev, struct vm *vm) __must_check;
