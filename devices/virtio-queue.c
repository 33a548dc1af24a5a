// SPDX-License-Identifier: MIT
/*
 * Split virtqueue walking. Ring layout (virtio 1.x, 2.7), little-endian:
 *   descriptor table: num x { le64 addr; le32 len; le16 flags; le16 next; }
 *   available ring:   le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   used ring:        le16 flags; le16 idx; { le32 id; le32 len; }[num];
 *                     le16 avail_event;
 * virtq_check_layout() guarantees alignment and that each part lies in
 * guest RAM before a queue goes live; the index fields are then accessed
 * with atomics, which is how the barriers the spec asks for are spelled.
 */
#include <endian.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "virtio-queue.h"

struct desc_le {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct virtq) == 40, "struct virtq is saved as a fixed layout");
_Static_assert(sizeof(struct desc_le) == 16, "descriptor layout");

/* Host views of the three parts; valid for one call. */
struct rings {
	uint8_t *desc;
	uint16_t *avail; /* [0] flags, [1] idx, [2 + i] ring, [2 + num] used_event */
	uint8_t *used;	 /* le16 flags, le16 idx, elements, le16 avail_event */
};

static uint64_t avail_size(uint16_t num)
{
	return 6 + 2ull * num;
}

static uint64_t used_size(uint16_t num)
{
	return 6 + 8ull * num;
}

void virtq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

int virtq_check_layout(const struct virtq *vq, const struct guest_mem *mem, uint16_t max,
		       const char **why)
{
	if (vq->num == 0 || vq->num > max || (vq->num & (vq->num - 1))) {
		*why = "queue size is not a power of two within QueueNumMax";
		return -EINVAL;
	}
	if (!IS_ALIGNED(vq->desc_addr, 16ull) || !IS_ALIGNED(vq->avail_addr, 2ull) ||
	    !IS_ALIGNED(vq->used_addr, 4ull)) {
		*why = "queue rings are misaligned";
		return -EINVAL;
	}
	if (!guest_mem_ptr(mem, vq->desc_addr, 16ull * vq->num) ||
	    !guest_mem_ptr(mem, vq->avail_addr, avail_size(vq->num)) ||
	    !guest_mem_ptr(mem, vq->used_addr, used_size(vq->num))) {
		*why = "queue rings lie outside guest RAM";
		return -EINVAL;
	}
	if (vq->flags & ~VIRTQ_F_ALL) {
		*why = "unknown queue flags";
		return -EINVAL;
	}
	return 0;
}

static int map_rings(const struct virtq *vq, const struct guest_mem *mem, struct rings *ret,
		     const char **why)
{
	struct rings r = {
	    .desc = guest_mem_ptr(mem, vq->desc_addr, 16ull * vq->num),
	    .avail = guest_mem_ptr(mem, vq->avail_addr, avail_size(vq->num)),
	    .used = guest_mem_ptr(mem, vq->used_addr, used_size(vq->num)),
	};

	/* Checked when the queue went live; this only guards our own invariant. */
	if (!vq->ready || !r.desc || !r.avail || !r.used) {
		*why = "queue is not ready or its rings lie outside guest RAM";
		return -EINVAL;
	}
	*ret = r;
	return 0;
}

static uint16_t *used_idx_ptr(const struct rings *r)
{
	return (uint16_t *)(r->used + 2);
}

static uint16_t *avail_event_ptr(const struct rings *r, uint16_t num)
{
	return (uint16_t *)(r->used + 4 + 8ull * num);
}

static int fail(const char **why, const char *what)
{
	*why = what;
	return -EINVAL;
}

struct walk {
	const struct guest_mem *mem;
	struct virtq_chain *chain;
	uint64_t total;
};

static int add_segment(struct walk *w, const struct desc_le *d, const char **why)
{
	struct virtq_chain *c = w->chain;
	uint64_t addr = le64toh(d->addr);
	uint32_t len = le32toh(d->len);
	bool writable = le16toh(d->flags) & VRING_DESC_F_WRITE;
	void *host;

	if (c->nr_out + c->nr_in >= VIRTQ_MAX_SEGS)
		return fail(why, "descriptor chain has too many segments");
	if (!writable && c->nr_in)
		return fail(why, "device-readable descriptor after a device-writable one");
	w->total += len;
	if (w->total > VIRTQ_MAX_CHAIN_BYTES)
		return fail(why, "descriptor chain describes too many bytes");
	host = guest_mem_ptr(w->mem, addr, len);
	if (!host)
		return fail(why, "descriptor buffer lies outside guest RAM");
	c->iov[c->nr_out + c->nr_in] = (struct iovec){.iov_base = host, .iov_len = len};
	if (writable) {
		c->nr_in++;
		c->in_bytes += len;
	} else {
		c->nr_out++;
		c->out_bytes += len;
	}
	return 0;
}

/* The table an indirect descriptor points to: its entries chain among themselves only. */
static int walk_indirect(struct walk *w, const struct desc_le *ind, const char **why)
{
	uint64_t addr = le64toh(ind->addr);
	uint32_t len = le32toh(ind->len);
	const uint8_t *table;
	uint32_t n, count = 0;
	uint16_t i = 0;

	if (len == 0 || len % sizeof(struct desc_le) ||
	    len / sizeof(struct desc_le) > VIRTQ_MAX_INDIRECT)
		return fail(why, "indirect table has a bad size");
	table = guest_mem_ptr(w->mem, addr, len);
	if (!table)
		return fail(why, "indirect table lies outside guest RAM");
	n = len / sizeof(struct desc_le);
	for (;;) {
		struct desc_le d;
		uint16_t flags;
		int r;

		/* Without a loop a chain visits each entry at most once. */
		if (++count > n)
			return fail(why, "indirect descriptor chain loops");
		/* One copy: the guest may change the table while we look. */
		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		flags = le16toh(d.flags);
		if (flags & VRING_DESC_F_INDIRECT)
			return fail(why, "indirect descriptor inside an indirect table");
		r = add_segment(w, &d, why);
		if (r < 0)
			return r;
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		i = le16toh(d.next);
		if (i >= n)
			return fail(why, "indirect descriptor's next index is out of range");
	}
}

static int walk_chain(const struct virtq *vq, const struct rings *rings, struct walk *w,
		      uint16_t head, const char **why)
{
	uint32_t count = 0;
	uint16_t i = head;

	for (;;) {
		struct desc_le d;
		uint16_t flags;
		int r;

		if (++count > vq->num)
			return fail(why, "descriptor chain loops");
		memcpy(&d, rings->desc + (size_t)i * sizeof(d), sizeof(d));
		flags = le16toh(d.flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			if (!(vq->flags & VIRTQ_F_INDIRECT))
				return fail(why, "indirect descriptor without INDIRECT_DESC");
			/* The spec forbids INDIRECT with NEXT: a table ends its chain. */
			if (flags & VRING_DESC_F_NEXT)
				return fail(why, "indirect descriptor with NEXT set");
			return walk_indirect(w, &d, why);
		}
		r = add_segment(w, &d, why);
		if (r < 0)
			return r;
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		i = le16toh(d.next);
		if (i >= vq->num)
			return fail(why, "descriptor's next index is out of range");
	}
}

int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_chain *ret_chain,
	      const char **why)
{
	struct rings rings;
	struct walk w = {.mem = mem, .chain = ret_chain};
	uint16_t avail_idx, head;
	int r;

	r = map_rings(vq, mem, &rings, why);
	if (r < 0)
		return r;
	/*
	 * Acquire: the driver fills the ring entry and the descriptors before
	 * it publishes idx (virtio 2.7.13), so reads of them must not be
	 * done before this read of idx (a read barrier).
	 */
	avail_idx = le16toh(__atomic_load_n(&rings.avail[1], __ATOMIC_ACQUIRE));
	if (avail_idx == vq->last_avail_idx)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->num)
		return fail(why, "available index moved further than the queue size");
	head = le16toh(
	    __atomic_load_n(&rings.avail[2 + vq->last_avail_idx % vq->num], __ATOMIC_RELAXED));
	if (head >= vq->num)
		return fail(why, "available ring names a descriptor out of range");

	ret_chain->head = head;
	ret_chain->nr_out = ret_chain->nr_in = 0;
	ret_chain->out_bytes = ret_chain->in_bytes = 0;
	r = walk_chain(vq, &rings, &w, head, why);
	if (r < 0)
		return r;
	vq->last_avail_idx++;
	return 1;
}

int virtq_push(struct virtq *vq, const struct guest_mem *mem, uint16_t head, uint32_t len)
{
	struct rings rings;
	const char *why;
	uint8_t *elem;
	uint32_t v;
	int r;

	r = map_rings(vq, mem, &rings, &why);
	if (r < 0)
		return r;
	if (head >= vq->num)
		return -EINVAL;
	elem = rings.used + 4 + 8ull * (vq->used_idx % vq->num);
	v = htole32(head);
	memcpy(elem, &v, 4);
	v = htole32(len);
	memcpy(elem + 4, &v, 4);
	vq->used_idx++;
	/* Release: the element must be visible before the index that hands it over (2.7.8). */
	__atomic_store_n(used_idx_ptr(&rings), htole16(vq->used_idx), __ATOMIC_RELEASE);
	return 0;
}

bool virtq_should_interrupt(struct virtq *vq, const struct guest_mem *mem)
{
	struct rings rings;
	const char *why;
	uint16_t old, event;
	bool valid;

	if (map_rings(vq, mem, &rings, &why) < 0)
		return false;
	/*
	 * Our used->idx store must be visible before we read the driver's
	 * used_event (or flags): otherwise the driver could update them after
	 * seeing a stale idx, and neither side would act. A store followed by
	 * a load needs a full barrier (virtio 2.7.10).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(vq->flags & VIRTQ_F_EVENT_IDX))
		return !(le16toh(__atomic_load_n(&rings.avail[0], __ATOMIC_RELAXED)) &
			 VRING_AVAIL_F_NO_INTERRUPT);

	event = le16toh(__atomic_load_n(&rings.avail[2 + vq->num], __ATOMIC_RELAXED));
	valid = vq->signalled_used_valid;
	old = vq->signalled_used;
	vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = 1;
	if (valid && old == vq->used_idx)
		return false;
	return !valid || vring_need_event(event, vq->used_idx, old);
}

bool virtq_enable_notify(struct virtq *vq, const struct guest_mem *mem)
{
	struct rings rings;
	const char *why;

	if (map_rings(vq, mem, &rings, &why) < 0)
		return false;
	if (vq->flags & VIRTQ_F_EVENT_IDX)
		__atomic_store_n(avail_event_ptr(&rings, vq->num), htole16(vq->last_avail_idx),
				 __ATOMIC_RELAXED);
	/*
	 * avail_event must be visible before we look at avail->idx again: a
	 * driver that adds an entry in between and still sees the old
	 * avail_event would not kick us, and the entry would wait forever.
	 * Store then load: a full barrier.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return le16toh(__atomic_load_n(&rings.avail[1], __ATOMIC_ACQUIRE)) != vq->last_avail_idx;
}

uint64_t virtq_chain_read(const struct virtq_chain *chain, uint64_t offset, void *buf, uint64_t len)
{
	uint8_t *out = buf;
	uint64_t done = 0;

	for (uint16_t i = 0; i < chain->nr_out && done < len; i++) {
		const struct iovec *v = &chain->iov[i];
		uint64_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = MIN(v->iov_len - offset, len - done);
		memcpy(out + done, (const uint8_t *)v->iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}
