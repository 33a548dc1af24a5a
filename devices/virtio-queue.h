/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.x, section 2.7), device side: taking
 * descriptor chains from the available ring and returning them on the
 * used ring, with VIRTIO_RING_F_EVENT_IDX and VIRTIO_RING_F_INDIRECT_DESC.
 *
 * The ring lives in guest memory, which the guest can change at any time
 * and under our feet: every address goes through guest_mem_ptr(), every
 * descriptor is copied once before it is looked at, chains are bounded in
 * length (queue size, indirect table size) and in total bytes, and a ring
 * that breaks a rule makes virtq_pop() fail with a reason instead of
 * reading anything outside guest RAM. What to do about it (NEEDS_RESET)
 * is the transport's business.
 *
 * struct virtq is plain data: the queue's configuration and the device's
 * progress, saved as is in snapshots. Guest memory is passed to each
 * call, so that restoring a queue never restores a pointer.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory.h"

enum {
	/* Largest queue a device offers (QueueNumMax). */
	VIRTQ_MAX_SIZE = 256,
	/* Segments in one chain, direct or through an indirect table. */
	VIRTQ_MAX_SEGS = 256,
	/* Entries of one indirect table. */
	VIRTQ_MAX_INDIRECT = 256,
};

/* Bytes one chain may describe, readable and writable together. */
#define VIRTQ_MAX_CHAIN_BYTES (256ull << 20)

/* Ring features in force for a queue (from the negotiated features). */
#define VIRTQ_F_EVENT_IDX (1u << 0)
#define VIRTQ_F_INDIRECT  (1u << 1)
#define VIRTQ_F_ALL	  (VIRTQ_F_EVENT_IDX | VIRTQ_F_INDIRECT)

/* Fixed layout (saved in snapshots as one blob): no implicit padding. */
struct virtq {
	uint64_t desc_addr;
	uint64_t avail_addr;
	uint64_t used_addr;
	uint16_t num;		 /* queue size the driver chose */
	uint16_t last_avail_idx; /* next available entry the device takes */
	uint16_t used_idx;	 /* next used entry the device fills */
	uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
	uint8_t ready;
	uint8_t flags; /* VIRTQ_F_* */
	uint8_t signalled_used_valid;
	uint8_t pad[5];
};

/* One chain: device-readable segments first, then device-writable ones. */
struct virtq_chain {
	uint16_t head;
	uint16_t nr_out;
	uint16_t nr_in;
	uint64_t out_bytes;
	uint64_t in_bytes;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Forget the queue (device reset, or the driver disabled it). */
void virtq_reset(struct virtq *vq);

/*
 * Check what the driver set up before the queue goes live (and after a
 * restore): size a power of two up to max, each ring aligned and wholly
 * inside guest RAM. -EINVAL with a reason otherwise.
 */
int virtq_check_layout(const struct virtq *vq, const struct guest_mem *mem, uint16_t max,
		       const char **why) __must_check;

/*
 * Take the next available chain. Returns 1 with *ret_chain filled, 0 when
 * the ring is empty, -EINVAL with a reason when the ring is malformed
 * (the queue must not be used again before a reset).
 */
int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_chain *ret_chain,
	      const char **why) __must_check;

/* Return chain `head` with `len` bytes written into its writable segments. */
int virtq_push(struct virtq *vq, const struct guest_mem *mem, uint16_t head,
	       uint32_t len) __must_check;

/*
 * After a batch of pushes: should the driver get an interrupt? Follows
 * used_event (EVENT_IDX) or VRING_AVAIL_F_NO_INTERRUPT.
 */
bool virtq_should_interrupt(struct virtq *vq, const struct guest_mem *mem);

/*
 * Done with the ring for now: ask for a notification at the next
 * available entry (EVENT_IDX: avail_event). Returns true when entries
 * arrived meanwhile, which the caller must process (no kick will come).
 */
bool virtq_enable_notify(struct virtq *vq, const struct guest_mem *mem);

/* Copy up to len bytes from the chain's readable part, starting at offset. */
uint64_t virtq_chain_read(const struct virtq_chain *chain, uint64_t offset, void *buf,
			  uint64_t len);
