// SPDX-License-Identifier: MIT
/*
 * virtio-rng requests: fill the writable segments with getrandom()
 * bytes and return the chain with the count. A chain with readable
 * segments or no writable byte breaks the framing rules and fails the
 * device. GRND_NONBLOCK: the host pool is seeded long before a VM runs,
 * and should it not be, the driver gets a short (even empty) answer
 * rather than an I/O thread stuck in the kernel.
 */
#include <stdio.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>

#include "virtio-rng.h"

/* Fill up to VIRTIO_RNG_MAX_REQUEST bytes of the chain; returns the bytes written. */
static uint32_t rng_fill(const struct virtq_chain *c)
{
	uint32_t done = 0;

	for (uint32_t i = c->nr_out; i < (uint32_t)c->nr_out + c->nr_in; i++) {
		size_t want = MIN(c->iov[i].iov_len, (size_t)(VIRTIO_RNG_MAX_REQUEST - done));
		size_t got = 0;

		while (got < want) {
			ssize_t r = getrandom((uint8_t *)c->iov[i].iov_base + got, want - got,
					      GRND_NONBLOCK);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done + (uint32_t)got;
			got += (size_t)r;
		}
		done += (uint32_t)got;
		if (done == VIRTIO_RNG_MAX_REQUEST)
			break;
	}
	return done;
}

/* Serve the queue again on the I/O thread's next round (a kick of our own). */
static void rng_kick_again(struct virtio_rng *rng)
{
	uint64_t one = 1;
	ssize_t w = write(rng->vdev.kick_fd[0], &one, sizeof(one));

	(void)w; /* a saturated counter is still readable */
}

static void rng_queue_notify(void *dev, uint32_t index)
{
	struct virtio_rng *rng = dev;
	struct virtq_chain *c = &rng->chain;
	uint32_t budget = VIRTIO_RNG_BUDGET;
	bool pushed = false;

	do {
		for (;;) {
			uint32_t len = 0;

			/* Without a kick fd (unit tests) there is no way back: carry on. */
			if (budget == 0 && rng->vdev.kick_fd[0] >= 0) {
				rng_kick_again(rng);
				goto out;
			}
			budget -= budget > 0;
			if (virtio_mmio_pop(&rng->vdev, index, c) <= 0)
				break;
			if (c->nr_out || c->in_bytes == 0)
				virtio_mmio_fail(&rng->vdev,
						 "entropy request that is not device-writable");
			else
				len = rng_fill(c);
			rng->stats.requests++;
			rng->stats.bytes += len;
			if (virtio_mmio_push(&rng->vdev, index, c->head, len) == 0)
				pushed = true;
		}
	} while (virtio_mmio_queue_live(&rng->vdev, index) &&
		 virtq_enable_notify(&rng->vdev.queues[index], rng->vdev.mem));
out:
	if (pushed)
		virtio_mmio_notify_used(&rng->vdev, index);
}

/* Nothing is ever in flight. */
static void rng_drain(void *dev, bool complete)
{
}

static const struct virtio_device_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .queue_notify = rng_queue_notify,
    .drain = rng_drain,
};

int virtio_rng_create(const struct guest_mem *mem, uint64_t base, struct virtio_rng **ret_rng)
{
	_cleanup_(virtio_rng_destroyp) struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int r;

	if (!rng)
		return -ENOMEM;
	r = virtio_mmio_init(&rng->vdev, &rng_ops, rng, mem, base, 1, VIRTIO_RNG_QUEUE_SIZE, 0,
			     NULL, 0);
	if (r < 0)
		return r;
	*ret_rng = TAKE_PTR(rng);
	return 0;
}

int virtio_rng_after_fork(struct virtio_rng *rng)
{
	/* The parent's other threads may have held it at the fork. */
	pthread_mutex_init(&rng->vdev.lock, NULL);
	return 0;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
	if (!rng)
		return;
	virtio_mmio_destroy(&rng->vdev);
	free(rng);
}
