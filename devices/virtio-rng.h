/* SPDX-License-Identifier: MIT */
/*
 * The virtio entropy device (virtio 1.x, 5.4) over virtio-mmio: one
 * request queue whose buffers the device fills with bytes from the
 * host's getrandom(). A request is wholly device-writable; the device
 * fills up to VIRTIO_RNG_MAX_REQUEST bytes of it (the driver takes what
 * it gets). Requests finish at once on the queue's kick, so there is no
 * backend fd to watch and nothing in flight.
 */
#pragma once

#include <stdint.h>

#include "virtio-mmio.h"

enum {
	VIRTIO_RNG_QUEUE_SIZE = 64,
	/* Bytes one request gets at most. */
	VIRTIO_RNG_MAX_REQUEST = 64 * 1024,
	/* Requests one kick serves before it yields the I/O thread and kicks again. */
	VIRTIO_RNG_BUDGET = 64,
};

struct virtio_rng_stats {
	uint64_t requests, bytes;
};

struct virtio_rng {
	/* First: the transport is the device's common header. */
	struct virtio_mmio vdev;
	struct virtq_chain chain;
	struct virtio_rng_stats stats;
};

/* Set the device up at guest address base (transport included, no fds wired yet). */
int virtio_rng_create(const struct guest_mem *mem, uint64_t base,
		      struct virtio_rng **ret_rng) __must_check;
/* NULL is fine. */
void virtio_rng_destroy(struct virtio_rng *rng);
DEFINE_CLEANUP_FUNC(struct virtio_rng, virtio_rng_destroy)

/*
 * In a fork child: a lock of its own (getrandom() keeps no state, so the
 * child's bytes differ from the parent's by themselves). The kick and
 * interrupt eventfds are the builder's.
 */
int virtio_rng_after_fork(struct virtio_rng *rng) __must_check;
