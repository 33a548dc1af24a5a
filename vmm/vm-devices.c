// SPDX-License-Identifier: MIT
/* virtio-blk drives: attaching them, and switching a drive to a new image. */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "virtio-blk.h"
#include "vm-devices.h"
#include "vm-virtio.h"
#include "vm.h"

_Static_assert(offsetof(struct virtio_blk, vdev) == 0, "vm_virtio_* hooks need vdev first");

/*
 * The disk itself stays shared with the template (same open files): a
 * writable image must not be written by two processes, so a clone that
 * writes needs an overlay of its own, which is the fork path's to set up.
 */
static int blk_rebind(void *dev, struct vm *vm)
{
	struct virtio_blk *blk = dev;
	int r = virtio_blk_after_fork(blk);

	return r < 0 ? r : vm_virtio_wire(vm, &blk->vdev);
}

static void blk_destroy(void *dev)
{
	virtio_blk_destroy(dev);
}

static const struct vm_device_ops blk_device_ops = {
    .quiesce = vm_virtio_quiesce,
    .rebind = blk_rebind,
    .thaw = vm_virtio_thaw,
    .destroy = blk_destroy,
};

int vm_attach_virtio_blk(struct vm *vm, const struct vm_drive_config *drive, char *reason,
			 size_t reason_len)
{
	struct virtio_blk_params p = {
	    .path = drive->path, .read_only = drive->read_only, .serial = drive->id};
	struct virtio_blk *blk;
	uint32_t slot;
	int r = vm_virtio_claim_slot(vm, &slot, reason, reason_len);

	if (r < 0)
		return r;
	r = virtio_blk_create(&p, &vm->mem, vm_virtio_slot_base(slot), &blk, reason, reason_len);
	if (r < 0)
		return r;
	snprintf(blk->drive_id, sizeof(blk->drive_id), "%s", drive->id);
	blk->vdev.irq = vm_virtio_irq_line(vm, slot);
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
	r = vm_virtio_attach(vm, &blk->vdev, slot);
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
