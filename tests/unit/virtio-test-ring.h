/* SPDX-License-Identifier: MIT */
/*
 * The driver's side of a split virtqueue, for tests: guest RAM is a plain
 * anonymous mapping behind a guest_mem layout, and these helpers write
 * descriptors and available entries into it the way a driver would, and
 * read back what the device put on the used ring.
 */
#pragma once

#include <endian.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/virtio_ring.h>

#include "memory.h"
#include "virtio-queue.h"

#define RING_DESC  0x1000ull
#define RING_AVAIL 0x3000ull
#define RING_USED  0x4000ull
#define RING_TABLE 0x8000ull /* indirect tables */
#define RING_DATA  0x100000ull

struct test_ring {
	struct guest_mem mem;
	struct virtq vq;
	uint16_t avail_idx;
	/* Added to the RING_* addresses (0 in unit tests). */
	uint64_t base;
};

/* RAM of `size` bytes (its layout may have a hole) on an anonymous mapping. */
static inline int test_mem_init(struct guest_mem *mem, uint64_t size)
{
	void *host;

	if (guest_mem_layout(size, mem) < 0)
		return -1;
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (host == MAP_FAILED)
		return -1;
	mem->host = host;
	return 0;
}

static inline void test_mem_destroy(struct guest_mem *mem)
{
	munmap(mem->host, mem->size);
	mem->host = NULL;
}

static inline void *gpa(struct test_ring *t, uint64_t addr)
{
	return guest_mem_ptr(&t->mem, addr, 1);
}

static inline void ring_init(struct test_ring *t, uint16_t num, uint8_t flags)
{
	memset(&t->vq, 0, sizeof(t->vq));
	t->vq.num = num;
	t->vq.desc_addr = t->base + RING_DESC;
	t->vq.avail_addr = t->base + RING_AVAIL;
	t->vq.used_addr = t->base + RING_USED;
	t->vq.flags = flags;
	t->vq.ready = 1;
	t->avail_idx = 0;
	memset(gpa(t, t->base + RING_DESC), 0, RING_DATA - RING_DESC);
}

/* Descriptor idx of the table at table_gpa. */
static inline void ring_desc_at(struct test_ring *t, uint64_t table_gpa, uint16_t idx,
				uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = gpa(t, table_gpa + 16ull * idx);
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

static inline void ring_desc(struct test_ring *t, uint16_t idx, uint64_t addr, uint32_t len,
			     uint16_t flags, uint16_t next)
{
	ring_desc_at(t, t->base + RING_DESC, idx, addr, len, flags, next);
}

static inline void ring_avail_write(struct test_ring *t, uint32_t slot, uint16_t v)
{
	uint16_t le = htole16(v);

	memcpy(gpa(t, t->base + RING_AVAIL + 2ull * slot), &le, 2);
}

/* Make chain `head` available and publish the new index. */
static inline void ring_publish(struct test_ring *t, uint16_t head)
{
	ring_avail_write(t, 2 + t->avail_idx % t->vq.num, head);
	t->avail_idx++;
	ring_avail_write(t, 1, t->avail_idx);
}

static inline void ring_set_avail_idx(struct test_ring *t, uint16_t idx)
{
	t->avail_idx = idx;
	ring_avail_write(t, 1, idx);
}

static inline void ring_set_used_event(struct test_ring *t, uint16_t v)
{
	ring_avail_write(t, 2 + t->vq.num, v);
}

static inline void ring_set_avail_flags(struct test_ring *t, uint16_t v)
{
	ring_avail_write(t, 0, v);
}

static inline uint16_t ring_read16(struct test_ring *t, uint64_t addr)
{
	uint16_t v;

	memcpy(&v, gpa(t, addr), 2);
	return le16toh(v);
}

static inline uint16_t ring_used_idx(struct test_ring *t)
{
	return ring_read16(t, t->base + RING_USED + 2);
}

static inline uint16_t ring_avail_event(struct test_ring *t)
{
	return ring_read16(t, t->base + RING_USED + 4 + 8ull * t->vq.num);
}

static inline void ring_used_elem(struct test_ring *t, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t *e = gpa(t, t->base + RING_USED + 4 + 8ull * (i % t->vq.num));
	uint32_t v;

	memcpy(&v, e, 4);
	*id = le32toh(v);
	memcpy(&v, e + 4, 4);
	*len = le32toh(v);
}
