// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtqueue descriptor walking: the input is a
 * queue's configuration followed by the contents of guest RAM (two small
 * regions, one below and one above 4 GiB, like a VM's low and high RAM).
 * Whatever virtq_check_layout() accepts goes live; chains are popped,
 * every segment is read end to end (so ASan sees any byte outside RAM),
 * returned, and the notification logic runs, until the ring is empty or
 * refused. A malformed ring must be refused, never crash or escape RAM.
 *
 * Input: le16 num, u8 flags, u8 raw_addrs, le16 last_avail_idx,
 * le16 used_idx, le64 desc, le64 avail, le64 used, then RAM bytes.
 * Addresses are folded into RAM unless raw_addrs has their bit set.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio-queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REGION = 64 * 1024, HEADER = 32, MAX_POPS = 64 };
#define HIGH_GPA 0x100000000ull

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t fold(uint64_t raw, int keep)
{
	uint64_t x;

	if (keep)
		return raw;
	x = raw % (2 * REGION);
	return x < REGION ? x : HIGH_GPA + (x - REGION);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = {.memfd = -1, .size = 2 * REGION, .nr_regions = 2};
	struct virtq vq = {0};
	struct virtq_chain *chain;
	const char *why;
	uint8_t *ram;
	uint8_t raw_addrs;

	if (size < HEADER)
		return 0;
	/* Exactly the RAM size, so that ASan flags the first byte beyond it. */
	ram = calloc(1, 2 * REGION);
	chain = malloc(sizeof(*chain));
	assert(ram && chain);
	memcpy(ram, data + HEADER, size - HEADER < 2 * REGION ? size - HEADER : 2 * REGION);
	mem.host = ram;
	mem.regions[0] = (struct guest_region){.gpa = 0, .size = REGION, .memfd_offset = 0};
	mem.regions[1] =
	    (struct guest_region){.gpa = HIGH_GPA, .size = REGION, .memfd_offset = REGION};

	vq.num = (uint16_t)le(data, 2);
	vq.flags = data[2] & VIRTQ_F_ALL;
	raw_addrs = data[3];
	vq.last_avail_idx = (uint16_t)le(data + 4, 2);
	vq.used_idx = (uint16_t)le(data + 6, 2);
	vq.desc_addr = fold(le(data + 8, 8), raw_addrs & 1);
	vq.avail_addr = fold(le(data + 16, 8), raw_addrs & 2);
	vq.used_addr = fold(le(data + 24, 8), raw_addrs & 4);

	if (virtq_check_layout(&vq, &mem, VIRTQ_MAX_SIZE, &why) == 0) {
		vq.ready = 1;
		for (int i = 0; i < MAX_POPS; i++) {
			uint64_t total = 0, sum = 0;
			int r = virtq_pop(&vq, &mem, chain, &why);

			if (r <= 0) {
				assert(r == 0 || why);
				break;
			}
			assert(chain->nr_out + chain->nr_in <= VIRTQ_MAX_SEGS);
			for (uint32_t s = 0; s < (uint32_t)chain->nr_out + chain->nr_in; s++) {
				const uint8_t *p = chain->iov[s].iov_base;

				/* Every segment inside RAM, wholly: its ends are enough for ASan.
				 */
				assert(p >= ram &&
				       chain->iov[s].iov_len <= (size_t)(ram + 2 * REGION - p));
				if (chain->iov[s].iov_len)
					sum += p[0] + p[chain->iov[s].iov_len - 1];
				total += chain->iov[s].iov_len;
			}
			assert(total == chain->out_bytes + chain->in_bytes);
			assert(total <= VIRTQ_MAX_CHAIN_BYTES);
			(void)sum;
			assert(virtq_push(&vq, &mem, chain->head, (uint32_t)chain->in_bytes) == 0);
			(void)virtq_should_interrupt(&vq, &mem);
			(void)virtq_enable_notify(&vq, &mem);
		}
	}
	free(chain);
	free(ram);
	return 0;
}
