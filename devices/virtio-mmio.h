/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport, version 2 (virtio 1.x, section 4.2.2): the
 * register file a guest driver programs, feature negotiation, queue
 * setup, interrupts and the device status state machine. A device (blk,
 * ...) embeds a struct virtio_mmio and supplies its config space, its
 * features and a queue_notify callback; it never walks rings itself
 * (virtio-queue.h does) and never touches the register file.
 *
 * Threads: register accesses arrive on vCPU threads, queue notifications
 * and backend completions on the I/O thread; one mutex per device orders
 * them. Notifications: QueueNotify writes are normally caught by KVM
 * (ioeventfd on kick_fd[q]) and never reach this code; a write that does
 * is forwarded to the same eventfd, so queue work always runs on the I/O
 * thread. Interrupts: a write to irq_fd (a KVM irqfd on the device's
 * IOAPIC pin), or an edge pulse on `irq` when there is no irqfd.
 * With kick_fd[q] < 0 (unit tests) notifications run the device at once.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_mmio.h>

#include "bus.h"
#include "irq.h"
#include "log.h"
#include "state-desc.h"
#include "virtio-queue.h"

enum {
	VIRTIO_MMIO_MAX_QUEUES = 8,
	/* Config space bytes a device may have (it starts at 0x100). */
	VIRTIO_MMIO_CONFIG_MAX = 256,
	VIRTIO_MMIO_SIZE = 0x1000,
};

#define VIRTIO_MMIO_MAGIC  0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x004d5646u /* "FVM" */

struct virtio_device_ops {
	const char *name; /* "virtio-blk": for log lines */
	uint32_t device_id;
	/* Queue `index` has new buffers. I/O thread (or quiesce), lock held. */
	void (*queue_notify)(void *dev, uint32_t index);
	/*
	 * Finish every request in flight. complete: return them on the used
	 * rings (quiesce); otherwise drop them, the rings are going away
	 * (reset, queue disabled). Lock held.
	 */
	void (*drain)(void *dev, bool complete);
	/* A guest write into config space (optional). Lock held. */
	void (*config_write)(void *dev, uint32_t offset, const void *data, uint32_t size);
	/* The guest read config space (optional; a sign of its progress). Lock held. */
	void (*config_read)(void *dev, uint32_t offset, uint32_t size);
};

struct virtio_mmio;

/* The I/O-thread handler's cookie for one queue's kick eventfd. */
struct virtio_kick {
	struct virtio_mmio *vdev;
	uint32_t index;
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_device_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	/* The live device, reachable from a scratch copy in post_load. */
	struct virtio_mmio *self;
	uint64_t base;
	uint32_t nr_queues;
	uint16_t queue_max;
	/* "virtio@d0000000": the state node's name (unique per slot). */
	char name[24];
	struct state_desc state;

	/* What the device offers; saved, and checked against the live device on restore. */
	uint64_t device_features;
	uint32_t device_id;
	uint32_t config_len;
	uint8_t config[VIRTIO_MMIO_CONFIG_MAX];

	/* The register file (saved). */
	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	uint64_t driver_features;
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];

	/* Wiring (not saved). */
	int kick_fd[VIRTIO_MMIO_MAX_QUEUES];
	struct virtio_kick kicks[VIRTIO_MMIO_MAX_QUEUES];
	int irq_fd;
	struct irq_line irq;
	/*
	 * Captured (quiesced) and not yet resumed: no queue is live, so that
	 * backends (a TAP, vsock sockets) cannot write guest memory behind a
	 * snapshot's or a fork's back.
	 */
	bool frozen;

	struct ratelimit error_rl;
	uint64_t malformed;
	uint64_t interrupts;
	uint64_t notifications;
};

extern const struct bus_device_ops virtio_mmio_ops;

/*
 * Set up the transport for a device at guest address base. config is
 * copied; features are what the device offers (VERSION_1 and the ring
 * features are added here). No fds yet: kick_fd[] and irq_fd are -1.
 */
int virtio_mmio_init(struct virtio_mmio *vdev, const struct virtio_device_ops *ops, void *dev,
		     const struct guest_mem *mem, uint64_t base, uint32_t nr_queues,
		     uint16_t queue_max, uint64_t features, const void *config,
		     uint32_t config_len) __must_check;
void virtio_mmio_destroy(struct virtio_mmio *vdev);

/* A queue's kick eventfd is readable (the vm_io_watch handler). */
void virtio_mmio_kick_handler(void *kick, short revents);

/* May the device take buffers from queue `index`? (DRIVER_OK, ready, no NEEDS_RESET) */
bool virtio_mmio_queue_live(const struct virtio_mmio *vdev, uint32_t index);

/* virtq_pop on queue `index`; a malformed ring fails the device (returns < 0). */
int virtio_mmio_pop(struct virtio_mmio *vdev, uint32_t index, struct virtq_chain *ret_chain);

/* virtq_push; returns < 0 only on a device bug (bad head), after failing the device. */
int virtio_mmio_push(struct virtio_mmio *vdev, uint32_t index, uint16_t head, uint32_t len);

/* After pushes: interrupt the driver if the queue's suppression rules allow. */
void virtio_mmio_notify_used(struct virtio_mmio *vdev, uint32_t index);

/*
 * The guest broke the rules (a malformed ring, a bad request framing):
 * set DEVICE_NEEDS_RESET, raise a config-change interrupt and log one
 * rate-limited line. The device takes no more buffers until a reset.
 */
void virtio_mmio_fail(struct virtio_mmio *vdev, const char *why);

/*
 * VM paused, before a snapshot: process what the driver queued and finish
 * everything in flight, so the saved rings are complete. The device stays
 * frozen (no queue live) until virtio_mmio_thaw().
 */
void virtio_mmio_quiesce(struct virtio_mmio *vdev);
/* The VM runs again (or a clone starts): queues live, every one re-examined. */
void virtio_mmio_thaw(struct virtio_mmio *vdev);

void virtio_mmio_lock(struct virtio_mmio *vdev);
void virtio_mmio_unlock(struct virtio_mmio *vdev);
