// SPDX-License-Identifier: MIT
/*
 * The devices that connect a VM to its host: virtio-net on a TAP,
 * virtio-vsock on unix sockets, virtio-rng on getrandom(). Each owns one
 * fd the I/O thread watches (an epoll set of its backend's fds, or
 * nothing for rng).
 *
 * Fork: the child inherits the parent's TAP and sockets, which it must
 * never read. rebind only rewires notifications to the child's KVM VM;
 * the fork path then gives net and vsock backends of their own
 * (vm_net_clone, vm_vsock_clone) before thawing the devices, so nothing
 * reads a backend in between.
 */
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "virtio-net.h"
#include "virtio-rng.h"
#include "virtio-vsock.h"
#include "vm-devices.h"
#include "vm-virtio.h"
#include "vm.h"

/* ---- what the three share: the transport comes first in each device ---- */

_Static_assert(offsetof(struct virtio_net, vdev) == 0, "vm_virtio_* hooks need vdev first");
_Static_assert(offsetof(struct virtio_vsock, vdev) == 0, "vm_virtio_* hooks need vdev first");
_Static_assert(offsetof(struct virtio_rng, vdev) == 0, "vm_virtio_* hooks need vdev first");

static struct virtio_mmio *vdev_of(void *dev)
{
	return dev;
}

/*
 * Hand a created device to the VM and wire it into slot `slot`. The VM
 * owns it from here on, even if wiring fails (vm_destroy frees it).
 */
static int add_host_device(struct vm *vm, const struct vm_device_ops *ops, void *dev,
			   uint32_t slot, int event_fd, vm_io_handler handler, const char *what,
			   char *reason, size_t reason_len)
{
	struct virtio_mmio *vdev = vdev_of(dev);
	int r;

	vdev->irq = vm_virtio_irq_line(vm, slot);
	r = vm_add_device(vm, &(struct vm_device){
				  .ops = ops, .dev = dev, .state = {&vdev->state, vdev}});
	if (r < 0) {
		ops->destroy(dev);
		snprintf(reason, reason_len, "no room for %s: %s", what, strerror(-r));
		return r;
	}
	vm->nr_virtio++;
	r = vm_virtio_attach(vm, vdev, slot);
	if (r >= 0 && event_fd >= 0)
		r = vm_io_watch(vm, event_fd, POLLIN, handler, dev);
	if (r < 0)
		snprintf(reason, reason_len, "cannot attach %s: %s", what, strerror(-r));
	return r;
}

static void *find_device(struct vm *vm, const struct vm_device_ops *ops, uint32_t nth)
{
	for (uint32_t i = 0; i < vm->nr_devices; i++)
		if (vm->devices[i].ops == ops && nth-- == 0)
			return vm->devices[i].dev;
	return NULL;
}

/* ---- virtio-net ---- */

static void net_destroy(void *dev)
{
	virtio_net_destroy(dev);
}

static const struct vm_device_ops net_device_ops = {
    .quiesce = vm_virtio_quiesce,
    .rebind = vm_virtio_rebind,
    .thaw = vm_virtio_thaw,
    .destroy = net_destroy,
};

void vm_net_mac(const struct vm_net_config *net, uint32_t index, uint32_t clone_number,
		uint8_t mac[6])
{
	/* Locally administered, unicast: 06:f0:<index>:00:00:00 unless given. */
	const uint8_t fallback[6] = {0x06, 0xf0, (uint8_t)index, 0, 0, 0};

	memcpy(mac, net->has_mac ? net->mac : fallback, 6);
	if (clone_number) {
		mac[3] = (uint8_t)(clone_number >> 16);
		mac[4] = (uint8_t)(clone_number >> 8);
		mac[5] = (uint8_t)clone_number;
	}
}

static int attach_net(struct vm *vm, const struct vm_net_config *net, uint32_t index,
		      char *reason, size_t reason_len)
{
	struct virtio_net_params p = {.tap_name = net->tap_name,
				      .tap_fd = net->has_tap_fd ? net->tap_fd : -1};
	struct virtio_net *dev;
	char what[VM_CONFIG_ID_MAX + 32];
	uint32_t slot;
	int r = vm_virtio_claim_slot(vm, &slot, reason, reason_len);

	if (r < 0)
		return r;
	vm_net_mac(net, index, 0, p.mac);
	r = virtio_net_create(&p, &vm->mem, vm_virtio_slot_base(slot), &dev, reason, reason_len);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "network interface '%s'", net->id);
	return add_host_device(vm, &net_device_ops, dev, slot, virtio_net_event_fd(dev),
			       virtio_net_event_handler, what, reason, reason_len);
}

int vm_net_clone(struct vm *vm, uint32_t index, const char *tap_name, const uint8_t mac[6],
		 char *reason, size_t reason_len)
{
	struct virtio_net *dev = find_device(vm, &net_device_ops, index);
	struct virtio_net_params p = {.tap_name = tap_name, .tap_fd = -1};

	if (!dev) {
		snprintf(reason, reason_len, "no network interface #%u", index);
		return -ENOENT;
	}
	memcpy(p.mac, mac, 6);
	return virtio_net_after_fork(dev, &p, reason, reason_len);
}

/* ---- virtio-vsock ---- */

static void vsock_destroy(void *dev)
{
	virtio_vsock_destroy(dev);
}

static const struct vm_device_ops vsock_device_ops = {
    .quiesce = vm_virtio_quiesce,
    .rebind = vm_virtio_rebind,
    .thaw = vm_virtio_thaw,
    .destroy = vsock_destroy,
};

static int attach_vsock(struct vm *vm, const struct vm_vsock_config *cfg, char *reason,
			size_t reason_len)
{
	struct virtio_vsock_params p = {.guest_cid = cfg->guest_cid, .uds_path = cfg->uds_path};
	struct virtio_vsock *dev;
	uint32_t slot;
	int r = vm_virtio_claim_slot(vm, &slot, reason, reason_len);

	if (r < 0)
		return r;
	r = virtio_vsock_create(&p, &vm->mem, vm_virtio_slot_base(slot), &dev, reason,
				reason_len);
	if (r < 0)
		return r;
	return add_host_device(vm, &vsock_device_ops, dev, slot, virtio_vsock_event_fd(dev),
			       virtio_vsock_event_handler, "the vsock device", reason, reason_len);
}

int vm_vsock_clone(struct vm *vm, const char *uds_path, char *reason, size_t reason_len)
{
	struct virtio_vsock *dev = find_device(vm, &vsock_device_ops, 0);

	return dev ? virtio_vsock_after_fork(dev, uds_path, reason, reason_len) : 0;
}

void vm_devices_after_restore(struct vm *vm)
{
	struct virtio_vsock *dev = find_device(vm, &vsock_device_ops, 0);

	if (dev)
		virtio_vsock_after_restore(dev);
}

/* ---- virtio-rng ---- */

static void rng_destroy(void *dev)
{
	virtio_rng_destroy(dev);
}

static int rng_rebind(void *dev, struct vm *vm)
{
	int r = virtio_rng_after_fork(dev);

	return r < 0 ? r : vm_virtio_rebind(dev, vm);
}

static const struct vm_device_ops rng_device_ops = {
    .quiesce = vm_virtio_quiesce,
    .rebind = rng_rebind,
    .thaw = vm_virtio_thaw,
    .destroy = rng_destroy,
};

static int attach_rng(struct vm *vm, char *reason, size_t reason_len)
{
	struct virtio_rng *dev;
	uint32_t slot;
	int r = vm_virtio_claim_slot(vm, &slot, reason, reason_len);

	if (r < 0)
		return r;
	r = virtio_rng_create(&vm->mem, vm_virtio_slot_base(slot), &dev);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot create the entropy device: %s", strerror(-r));
		return r;
	}
	return add_host_device(vm, &rng_device_ops, dev, slot, -1, NULL, "the entropy device",
			       reason, reason_len);
}

/* ---- all of them ---- */

int vm_attach_devices(struct vm *vm, const struct vm_config *cfg, char *reason,
		      size_t reason_len)
{
	int r = vm_attach_drives(vm, cfg, reason, reason_len);

	for (uint32_t i = 0; r >= 0 && i < cfg->nr_nets; i++)
		r = attach_net(vm, &cfg->nets[i], i, reason, reason_len);
	if (r >= 0 && cfg->vsock.enabled)
		r = attach_vsock(vm, &cfg->vsock, reason, reason_len);
	if (r >= 0 && cfg->rng)
		r = attach_rng(vm, reason, reason_len);
	return r;
}
