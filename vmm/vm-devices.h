/* SPDX-License-Identifier: MIT */
/*
 * Builders that attach virtio devices to a VM: a virtio-mmio slot (4 KiB
 * at LAYOUT_VIRTIO_MMIO + 4 KiB x slot), an IOAPIC pin (from
 * VM_VIRTIO_FIRST_GSI up), an ACPI description (LNRO0005, so Linux
 * finds the device and maps its interrupt), a KVM ioeventfd per queue
 * and a KVM irqfd, all served by the I/O thread. Call them after
 * vm_create() and before vm_load_linux() (which writes the ACPI tables).
 * Booting and restoring attach the same devices in the same order: the
 * slot names a device's saved state.
 */
#pragma once

#include <stddef.h>

#include "config.h"
#include "util.h"

struct vm;

/* One drive: its file (raw or qcow2), read-only or not; the drive id is its serial. */
int vm_attach_virtio_blk(struct vm *vm, const struct vm_drive_config *drive, char *reason,
			 size_t reason_len) __must_check;

/* Switch drive `drive_id` to another image of the same size (virtio_blk_swap_disk). */
int vm_drive_swap(struct vm *vm, const char *drive_id, const char *path, char *reason,
		  size_t reason_len) __must_check;

/* Every drive of cfg, the root drive first (so that it is /dev/vda). */
int vm_attach_drives(struct vm *vm, const struct vm_config *cfg, char *reason,
		     size_t reason_len) __must_check;

/*
 * Every device of cfg, in the order that names their saved state: drives
 * (root first), network interfaces, vsock, entropy.
 */
int vm_attach_devices(struct vm *vm, const struct vm_config *cfg, char *reason,
		      size_t reason_len) __must_check;

/*
 * Interface `index`'s MAC: the configured one, else 06:f0:<index>:00:00:00;
 * a clone's (clone_number > 0) has the number in its last three bytes.
 */
void vm_net_mac(const struct vm_net_config *net, uint32_t index, uint32_t clone_number,
		uint8_t mac[6]);

/*
 * In a fork child, before vm_thaw_devices(): interface `index` drops the
 * parent's TAP for tap_name (NULL: no link) with address mac; the vsock
 * device listens on uds_path instead of the parent's socket.
 */
int vm_net_clone(struct vm *vm, uint32_t index, const char *tap_name, const uint8_t mac[6],
		 char *reason, size_t reason_len) __must_check;
int vm_vsock_clone(struct vm *vm, const char *uds_path, char *reason,
		   size_t reason_len) __must_check;

/* After a snapshot restore: the vsock driver learns its connections are gone. */
void vm_devices_after_restore(struct vm *vm);
