// SPDX-License-Identifier: MIT
/*
 * virtio-mmio version 2 register file. Registers below 0x100 are 32-bit
 * and aligned (virtio 4.2.2.2: the driver MUST use 32-bit aligned
 * accesses); anything else there reads as zero and is dropped. Config
 * space at 0x100 takes any width.
 *
 * Status: the driver only ever adds bits, 0 resets. FEATURES_OK sticks
 * only for a feature set the device offered that includes VERSION_1 (no
 * legacy drivers). DEVICE_NEEDS_RESET is ours to set and survives until
 * the reset. Queue registers may change only while the queue is not
 * ready; going ready checks the rings against guest RAM.
 */
#include <stdio.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "virtio-mmio.h"

#define TRANSPORT_FEATURES                                                                         \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                    \
	 (1ull << VIRTIO_RING_F_EVENT_IDX))

#define STATUS_KNOWN                                                                               \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |        \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

static const struct state_field virtio_mmio_fields[] = {
    STATE_FIELD(struct virtio_mmio, device_features),
    STATE_FIELD(struct virtio_mmio, device_id),
    STATE_FIELD(struct virtio_mmio, config_len),
    STATE_FIELD(struct virtio_mmio, config),
    STATE_FIELD(struct virtio_mmio, status),
    STATE_FIELD(struct virtio_mmio, device_features_sel),
    STATE_FIELD(struct virtio_mmio, driver_features_sel),
    STATE_FIELD(struct virtio_mmio, queue_sel),
    STATE_FIELD(struct virtio_mmio, interrupt_status),
    STATE_FIELD(struct virtio_mmio, config_generation),
    STATE_FIELD(struct virtio_mmio, driver_features),
    STATE_FIELD(struct virtio_mmio, queues),
};

static int virtio_mmio_post_load(void *dev);

int virtio_mmio_init(struct virtio_mmio *vdev, const struct virtio_device_ops *ops, void *dev,
		     const struct guest_mem *mem, uint64_t base, uint32_t nr_queues,
		     uint16_t queue_max, uint64_t features, const void *config, uint32_t config_len)
{
	if (!ops || !ops->queue_notify || !ops->drain || nr_queues == 0 ||
	    nr_queues > VIRTIO_MMIO_MAX_QUEUES || queue_max == 0 || queue_max > VIRTQ_MAX_SIZE ||
	    (queue_max & (queue_max - 1)) || config_len > VIRTIO_MMIO_CONFIG_MAX)
		return -EINVAL;
	memset(vdev, 0, sizeof(*vdev));
	pthread_mutex_init(&vdev->lock, NULL);
	vdev->ops = ops;
	vdev->dev = dev;
	vdev->mem = mem;
	vdev->self = vdev;
	vdev->base = base;
	vdev->nr_queues = nr_queues;
	vdev->queue_max = queue_max;
	vdev->device_id = ops->device_id;
	vdev->device_features = features | TRANSPORT_FEATURES;
	vdev->config_len = config_len;
	if (config_len)
		memcpy(vdev->config, config, config_len);
	for (uint32_t i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		vdev->kick_fd[i] = -1;
		vdev->kicks[i] = (struct virtio_kick){.vdev = vdev, .index = i};
	}
	vdev->irq_fd = -1;
	snprintf(vdev->name, sizeof(vdev->name), "virtio@%llx", (unsigned long long)base);
	vdev->state = (struct state_desc){
	    .name = vdev->name,
	    .version = 1,
	    .size = sizeof(*vdev),
	    .fields = virtio_mmio_fields,
	    .nr_fields = ARRAY_SIZE(virtio_mmio_fields),
	    .post_load = virtio_mmio_post_load,
	};
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *vdev)
{
	if (!vdev || !vdev->ops)
		return;
	for (uint32_t i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		if (vdev->kick_fd[i] >= 0)
			close(vdev->kick_fd[i]);
	if (vdev->irq_fd >= 0)
		close(vdev->irq_fd);
	pthread_mutex_destroy(&vdev->lock);
	vdev->ops = NULL;
}

void virtio_mmio_lock(struct virtio_mmio *vdev)
{
	pthread_mutex_lock(&vdev->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *vdev)
{
	pthread_mutex_unlock(&vdev->lock);
}

static void raise_interrupt(struct virtio_mmio *vdev, uint32_t bits)
{
	uint64_t one = 1;

	vdev->interrupt_status |= bits;
	vdev->interrupts++;
	if (vdev->irq_fd >= 0) {
		/* The irqfd counter only saturates; a failed write loses nothing. */
		ssize_t n = write(vdev->irq_fd, &one, sizeof(one));
		(void)n;
		return;
	}
	/* The pin is edge-triggered in ACPI: one rising edge per interrupt. */
	irq_line_set(&vdev->irq, true);
	irq_line_set(&vdev->irq, false);
}

void virtio_mmio_fail(struct virtio_mmio *vdev, const char *why)
{
	vdev->malformed++;
	if (vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	vdev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	raise_interrupt(vdev, VIRTIO_MMIO_INT_CONFIG);
	if (ratelimit_allow(&vdev->error_rl))
		log_warn("%s at 0x%llx: %s; the device needs a reset", vdev->ops->name,
			 (unsigned long long)vdev->base, why);
}

bool virtio_mmio_queue_live(const struct virtio_mmio *vdev, uint32_t index)
{
	return index < vdev->nr_queues && vdev->queues[index].ready && !vdev->frozen &&
	       (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

int virtio_mmio_pop(struct virtio_mmio *vdev, uint32_t index, struct virtq_chain *ret_chain)
{
	const char *why = "";
	int r;

	if (!virtio_mmio_queue_live(vdev, index))
		return 0;
	r = virtq_pop(&vdev->queues[index], vdev->mem, ret_chain, &why);
	if (r < 0)
		virtio_mmio_fail(vdev, why);
	return r;
}

int virtio_mmio_push(struct virtio_mmio *vdev, uint32_t index, uint16_t head, uint32_t len)
{
	int r;

	if (index >= vdev->nr_queues || !vdev->queues[index].ready)
		return 0; /* reset meanwhile: the ring is gone */
	r = virtq_push(&vdev->queues[index], vdev->mem, head, len);
	if (r < 0)
		virtio_mmio_fail(vdev, "cannot return a buffer on the used ring");
	return r;
}

void virtio_mmio_notify_used(struct virtio_mmio *vdev, uint32_t index)
{
	if (index < vdev->nr_queues && vdev->queues[index].ready &&
	    virtq_should_interrupt(&vdev->queues[index], vdev->mem))
		raise_interrupt(vdev, VIRTIO_MMIO_INT_VRING);
}

/* Have the queue processed: on the I/O thread when it has a kick eventfd. */
static void kick(struct virtio_mmio *vdev, uint32_t index)
{
	uint64_t one = 1;

	vdev->notifications++;
	if (vdev->kick_fd[index] >= 0) {
		ssize_t n = write(vdev->kick_fd[index], &one, sizeof(one));
		(void)n;
	} else if (virtio_mmio_queue_live(vdev, index)) {
		vdev->ops->queue_notify(vdev->dev, index);
	}
}

void virtio_mmio_kick_handler(void *opaque, short revents)
{
	struct virtio_kick *k = opaque;
	struct virtio_mmio *vdev = k->vdev;
	uint64_t count;

	if (read(vdev->kick_fd[k->index], &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	virtio_mmio_lock(vdev);
	if (virtio_mmio_queue_live(vdev, k->index))
		vdev->ops->queue_notify(vdev->dev, k->index);
	virtio_mmio_unlock(vdev);
}

void virtio_mmio_quiesce(struct virtio_mmio *vdev)
{
	virtio_mmio_lock(vdev);
	for (uint32_t i = 0; i < vdev->nr_queues; i++)
		if (virtio_mmio_queue_live(vdev, i))
			vdev->ops->queue_notify(vdev->dev, i);
	vdev->ops->drain(vdev->dev, true);
	vdev->frozen = true;
	virtio_mmio_unlock(vdev);
}

void virtio_mmio_thaw(struct virtio_mmio *vdev)
{
	virtio_mmio_lock(vdev);
	vdev->frozen = false;
	/* Backend events that came while frozen left work behind: look again. */
	for (uint32_t i = 0; i < vdev->nr_queues; i++)
		if (virtio_mmio_queue_live(vdev, i))
			vdev->ops->queue_notify(vdev->dev, i);
	virtio_mmio_unlock(vdev);
}

static void device_reset(struct virtio_mmio *vdev)
{
	/* In-flight requests must not write into rings the driver is taking down. */
	vdev->ops->drain(vdev->dev, false);
	vdev->status = 0;
	vdev->device_features_sel = vdev->driver_features_sel = vdev->queue_sel = 0;
	vdev->interrupt_status = 0;
	vdev->driver_features = 0;
	for (uint32_t i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		virtq_reset(&vdev->queues[i]);
}

static uint8_t ring_flags(uint64_t features)
{
	return (uint8_t)(((features >> VIRTIO_RING_F_EVENT_IDX) & 1 ? VIRTQ_F_EVENT_IDX : 0) |
			 ((features >> VIRTIO_RING_F_INDIRECT_DESC) & 1 ? VIRTQ_F_INDIRECT : 0));
}

static void write_status(struct virtio_mmio *vdev, uint32_t val)
{
	uint32_t added = val & ~vdev->status;

	if (val == 0) {
		device_reset(vdev);
		return;
	}
	if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
		bool ok = !(vdev->driver_features & ~vdev->device_features) &&
			  (vdev->driver_features & (1ull << VIRTIO_F_VERSION_1));

		if (!ok)
			val &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
	}
	vdev->status = (val & STATUS_KNOWN & ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET) |
		       (vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Buffers queued before DRIVER_OK were not taken (virtio 3.1.1): take them now. */
	if (added & VIRTIO_CONFIG_S_DRIVER_OK & vdev->status)
		for (uint32_t i = 0; i < vdev->nr_queues; i++)
			if (vdev->queues[i].ready)
				kick(vdev, i);
}

static void write_queue_ready(struct virtio_mmio *vdev, struct virtq *vq, uint32_t val)
{
	const char *why;

	if (!val) {
		if (vq->ready)
			vdev->ops->drain(vdev->dev, false);
		virtq_reset(vq);
		return;
	}
	if (vq->ready)
		return;
	vq->flags = ring_flags(vdev->driver_features);
	vq->last_avail_idx = vq->used_idx = 0;
	vq->signalled_used_valid = 0;
	if (virtq_check_layout(vq, vdev->mem, vdev->queue_max, &why) < 0) {
		virtio_mmio_fail(vdev, why);
		return;
	}
	vq->ready = 1;
}

static void set_half(uint64_t *v, bool high, uint32_t val)
{
	if (high)
		*v = (*v & 0xffffffffull) | ((uint64_t)val << 32);
	else
		*v = (*v & ~0xffffffffull) | val;
}

static void write_queue_reg(struct virtio_mmio *vdev, uint64_t reg, uint32_t val)
{
	struct virtq *vq;

	if (vdev->queue_sel >= vdev->nr_queues)
		return;
	vq = &vdev->queues[vdev->queue_sel];
	if (reg == VIRTIO_MMIO_QUEUE_READY) {
		write_queue_ready(vdev, vq, val);
		return;
	}
	/* The driver MUST NOT change a live queue's registers (4.2.2.3). */
	if (vq->ready)
		return;
	switch (reg) {
	case VIRTIO_MMIO_QUEUE_NUM:
		vq->num = (uint16_t)MIN(val, 0xffffu);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&vq->desc_addr, reg == VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_half(&vq->avail_addr, reg == VIRTIO_MMIO_QUEUE_AVAIL_HIGH, val);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_half(&vq->used_addr, reg == VIRTIO_MMIO_QUEUE_USED_HIGH, val);
		break;
	}
}

static void write_reg(struct virtio_mmio *vdev, uint64_t reg, uint32_t val)
{
	switch (reg) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		vdev->device_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		vdev->driver_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* Features are fixed once FEATURES_OK is set (3.1.1). */
		if (vdev->driver_features_sel < 2 && !(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK))
			set_half(&vdev->driver_features, vdev->driver_features_sel == 1, val);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		vdev->queue_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (val < vdev->nr_queues && vdev->queues[val].ready)
			kick(vdev, val);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		vdev->interrupt_status &= ~val;
		break;
	case VIRTIO_MMIO_STATUS:
		write_status(vdev, val);
		break;
	default:
		write_queue_reg(vdev, reg, val);
		break;
	}
}

static uint32_t read_queue_reg(const struct virtio_mmio *vdev, uint64_t reg)
{
	const struct virtq *vq;

	if (vdev->queue_sel >= vdev->nr_queues)
		return 0;
	vq = &vdev->queues[vdev->queue_sel];
	switch (reg) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vdev->queue_max;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq->ready;
	default:
		return 0;
	}
}

static uint32_t read_reg(const struct virtio_mmio *vdev, uint64_t reg)
{
	switch (reg) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return vdev->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (vdev->device_features_sel >= 2)
			return 0;
		return (uint32_t)(vdev->device_features >> (32 * vdev->device_features_sel));
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return vdev->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return vdev->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return vdev->config_generation;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		/* No shared memory regions: a length of all-ones says so (4.2.2). */
		return 0xffffffffu;
	default:
		return read_queue_reg(vdev, reg);
	}
}

static void virtio_mmio_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct virtio_mmio *vdev = dev;
	uint32_t v;

	memset(data, 0, size);
	virtio_mmio_lock(vdev);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		uint64_t off = offset - VIRTIO_MMIO_CONFIG;

		if (range_within(off, size, vdev->config_len)) {
			memcpy(data, vdev->config + off, size);
			if (vdev->ops->config_read)
				vdev->ops->config_read(vdev->dev, (uint32_t)off, size);
		}
	} else if (size == 4 && IS_ALIGNED(offset, 4ull)) {
		v = htole32(read_reg(vdev, offset));
		memcpy(data, &v, 4);
	}
	virtio_mmio_unlock(vdev);
}

static void virtio_mmio_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct virtio_mmio *vdev = dev;
	uint32_t v;

	virtio_mmio_lock(vdev);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		uint64_t off = offset - VIRTIO_MMIO_CONFIG;

		if (vdev->ops->config_write && range_within(off, size, vdev->config_len))
			vdev->ops->config_write(vdev->dev, (uint32_t)off, data, size);
	} else if (size == 4 && IS_ALIGNED(offset, 4ull)) {
		memcpy(&v, data, 4);
		write_reg(vdev, offset, le32toh(v));
	}
	virtio_mmio_unlock(vdev);
}

const struct bus_device_ops virtio_mmio_ops = {
    .name = "virtio-mmio",
    .access_sizes = BUS_ACCESS_1 | BUS_ACCESS_2 | BUS_ACCESS_4 | BUS_ACCESS_8,
    .read = virtio_mmio_read,
    .write = virtio_mmio_write,
};

/*
 * A scratch copy holding a saved state: it must describe this very device
 * (same features and config, i.e. the same backend and size) with queues
 * a driver could have set up.
 */
static int virtio_mmio_post_load(void *dev)
{
	const struct virtio_mmio *v = dev, *live = v->self;
	static const struct virtq zero;

	if (!live || v->device_features != live->device_features ||
	    v->device_id != live->device_id || v->config_len != live->config_len ||
	    memcmp(v->config, live->config, live->config_len) != 0)
		return -EINVAL;
	if ((v->status & ~STATUS_KNOWN) || (v->driver_features & ~v->device_features) ||
	    (v->interrupt_status & ~(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)))
		return -EINVAL;
	for (uint32_t i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		const struct virtq *vq = &v->queues[i];
		const char *why;

		if (i >= v->nr_queues) {
			if (memcmp(vq, &zero, sizeof(zero)) != 0)
				return -EINVAL;
			continue;
		}
		if (vq->ready > 1 || vq->signalled_used_valid > 1 || vq->num > v->queue_max ||
		    (vq->flags & ~ring_flags(v->driver_features)))
			return -EINVAL;
		if (!vq->ready)
			continue;
		if (virtq_check_layout(vq, v->mem, v->queue_max, &why) < 0)
			return -EINVAL;
		/* The device never has more chains than the queue holds. */
		if ((uint16_t)(vq->last_avail_idx - vq->used_idx) > vq->num)
			return -EINVAL;
	}
	return 0;
}
