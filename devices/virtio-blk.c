// SPDX-License-Identifier: MIT
/*
 * virtio-blk requests. A request is a chain: a 16-byte header the device
 * reads (type, sector), the payload (read by the device for writes and
 * discards, written for reads and get-id), and one status byte, the last
 * device-writable byte. Framing is free (VERSION_1 implies ANY_LAYOUT),
 * so the header may span segments and the payload may share a segment
 * with either end; the iovecs are trimmed in place.
 *
 * A request stays alive while operations on it are in flight: `pending`
 * counts them, plus one held while the request is being issued, so that
 * an early completion never returns a half-issued request.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "disk.h"
#include "virtio-blk.h"

#define SECTOR_SHIFT 9
#define SECTOR_SIZE  (1u << SECTOR_SHIFT)
/* Per-segment limit we offer (SIZE_MAX): with seg_max it bounds a request below
 * VIRTQ_MAX_CHAIN_BYTES. */
#define BLK_SIZE_MAX		(1u << 20)
#define BLK_SEG_MAX		(VIRTQ_MAX_SEGS - 2)
#define BLK_MAX_DISCARD_SECTORS (1u << 23)

_Static_assert((uint64_t)BLK_SEG_MAX *BLK_SIZE_MAX + 17 <= VIRTQ_MAX_CHAIN_BYTES,
	       "a request the driver may build must fit a chain");

struct blk_req {
	struct virtq_chain chain;
	struct blk_req *next_free;
	uint32_t pending;
	uint8_t status;
	uint8_t *status_byte;
	uint32_t used_len;
};

struct req_header {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct dwz_segment {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static void note_error(struct virtio_blk *b, const char *what, int err)
{
	if (ratelimit_allow(&b->io_rl))
		log_warn("virtio-blk at 0x%llx: %s failed: %s", (unsigned long long)b->vdev.base,
			 what,
			 disk_last_error(b->disk)[0] ? disk_last_error(b->disk) : strerror(-err));
}

static void flush_notify(struct virtio_blk *b)
{
	if (!b->pushed)
		return;
	b->pushed = false;
	virtio_mmio_notify_used(&b->vdev, 0);
}

static void req_put(struct virtio_blk *b, struct blk_req *req)
{
	if (--req->pending)
		return;
	if (req->status != VIRTIO_BLK_S_OK)
		b->stats.errors++;
	/* Dropped at a reset: the buffers may already be the guest's again. */
	if (!b->dropping) {
		*req->status_byte = req->status;
		if (virtio_mmio_push(&b->vdev, 0, req->chain.head, req->used_len) == 0)
			b->pushed = true;
	}
	req->next_free = b->free_reqs;
	b->free_reqs = req;
}

/* One operation of a request finished (blk_io's completion). */
static void op_done(void *opaque, void *p, int res, bool write)
{
	struct virtio_blk *b = opaque;
	struct blk_req *req = p;

	if (res < 0) {
		req->status = VIRTIO_BLK_S_IOERR;
		note_error(b, write ? "write" : "read", res);
	}
	req_put(b, req);
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t sectors)
{
	return sector <= b->capacity && sectors <= b->capacity - sector;
}

static uint8_t do_rw(struct virtio_blk *b, struct blk_req *req, bool write, uint64_t sector,
		     const struct iovec *iov, uint32_t cnt, uint64_t len)
{
	int r;

	if (write && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len % SECTOR_SIZE || !range_ok(b, sector, len >> SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	if (write) {
		b->stats.writes++;
		b->stats.write_bytes += len;
	} else {
		b->stats.reads++;
		b->stats.read_bytes += len;
	}
	r = blk_io_rw(&b->io, write, sector << SECTOR_SHIFT, iov, cnt, len, req, &req->pending);
	if (r < 0) {
		note_error(b, write ? "write" : "read", r);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_flush(struct virtio_blk *b)
{
	int r;

	b->stats.flushes++;
	/* Everything completed before the flush must be in it (and the engine requires it). */
	r = blk_io_wait_all(&b->io);
	if (r >= 0)
		r = disk_flush(b->disk);
	if (r < 0) {
		note_error(b, "flush", r);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_discard_zeroes(struct virtio_blk *b, const struct virtq_chain *chain, bool zeroes)
{
	uint64_t payload = chain->out_bytes - sizeof(struct req_header);
	uint64_t nr = payload / sizeof(struct dwz_segment);
	int r;

	if (b->read_only)
		return VIRTIO_BLK_S_UNSUPP;
	if (payload == 0 || payload % sizeof(struct dwz_segment) || nr > VIRTIO_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	/* A discard frees qcow2 clusters: no data I/O may still be aimed at them. */
	r = blk_io_wait_all(&b->io);
	for (uint64_t i = 0; i < nr && r >= 0; i++) {
		struct dwz_segment s;
		uint64_t sector, sectors;
		uint32_t flags;

		virtq_chain_read(chain, sizeof(struct req_header) + i * sizeof(s), &s, sizeof(s));
		sector = le64toh(s.sector);
		sectors = le32toh(s.num_sectors);
		flags = le32toh(s.flags);
		if (flags & ~(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		if (sectors > BLK_MAX_DISCARD_SECTORS || !range_ok(b, sector, sectors))
			return VIRTIO_BLK_S_IOERR;
		if (zeroes)
			r = disk_write_zeroes(b->disk, sector << SECTOR_SHIFT,
					      sectors << SECTOR_SHIFT);
		else
			r = disk_discard(b->disk, sector << SECTOR_SHIFT, sectors << SECTOR_SHIFT);
	}
	if (r < 0) {
		note_error(b, zeroes ? "write-zeroes" : "discard", r);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Copy the drive's serial into the payload; returns the bytes written. */
static uint32_t do_get_id(struct virtio_blk *b, const struct iovec *iov, uint32_t cnt)
{
	uint32_t done = 0;

	for (uint32_t i = 0; i < cnt && done < sizeof(b->serial); i++) {
		uint32_t n = (uint32_t)MIN(iov[i].iov_len, sizeof(b->serial) - done);

		memcpy(iov[i].iov_base, b->serial + done, n);
		done += n;
	}
	return done;
}

/* Trim the header off the readable segments; returns the first payload segment. */
static uint32_t skip_header(struct virtq_chain *chain)
{
	uint64_t skip = sizeof(struct req_header);
	uint32_t i;

	for (i = 0; i < chain->nr_out && skip; i++) {
		struct iovec *v = &chain->iov[i];

		if (skip < v->iov_len) {
			v->iov_base = (uint8_t *)v->iov_base + skip;
			v->iov_len -= skip;
			return i;
		}
		skip -= v->iov_len;
	}
	return i;
}

/* Take the status byte off the end of the writable segments. */
static uint8_t *take_status_byte(struct virtq_chain *chain)
{
	for (uint32_t i = chain->nr_out + chain->nr_in; i-- > chain->nr_out;) {
		struct iovec *v = &chain->iov[i];

		if (v->iov_len) {
			v->iov_len--;
			return (uint8_t *)v->iov_base + v->iov_len;
		}
	}
	return NULL;
}

static void start_request(struct virtio_blk *b, struct blk_req *req)
{
	struct virtq_chain *c = &req->chain;
	struct iovec *in = &c->iov[c->nr_out];
	uint8_t st = VIRTIO_BLK_S_OK;
	struct req_header h;
	uint32_t first;

	req->pending = 1;
	req->status = VIRTIO_BLK_S_OK;
	req->used_len = 1;
	req->status_byte = take_status_byte(c);
	if (!req->status_byte || virtq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
		virtio_mmio_fail(&b->vdev, "request without a header or a status byte");
		/* Hand the chain back all the same, reporting nothing written. */
		req->status_byte = &req->status;
		req->used_len = 0;
		req_put(b, req);
		return;
	}
	switch (le32toh(h.type)) {
	case VIRTIO_BLK_T_IN:
		st = do_rw(b, req, false, le64toh(h.sector), in, c->nr_in, c->in_bytes - 1);
		req->used_len = (uint32_t)c->in_bytes;
		break;
	case VIRTIO_BLK_T_OUT:
		first = skip_header(c);
		st = do_rw(b, req, true, le64toh(h.sector), &c->iov[first], c->nr_out - first,
			   c->out_bytes - sizeof(h));
		break;
	case VIRTIO_BLK_T_FLUSH:
		st = do_flush(b);
		break;
	case VIRTIO_BLK_T_GET_ID:
		req->used_len = do_get_id(b, in, c->nr_in) + 1;
		break;
	case VIRTIO_BLK_T_DISCARD:
		b->stats.discards++;
		st = do_discard_zeroes(b, c, false);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		b->stats.write_zeroes++;
		st = do_discard_zeroes(b, c, true);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	/* An operation may already have failed the request while it was being issued. */
	if (st != VIRTIO_BLK_S_OK)
		req->status = st;
	req_put(b, req);
}

static void submit(struct virtio_blk *b)
{
	int r = blk_io_submit(&b->io);

	if (r < 0 && ratelimit_allow(&b->io_rl))
		log_warn("virtio-blk at 0x%llx: io_uring submission failed: %s",
			 (unsigned long long)b->vdev.base, strerror(-r));
}

static void blk_queue_notify(void *dev, uint32_t index)
{
	struct virtio_blk *b = dev;

	b->starved = false;
	do {
		for (;;) {
			struct blk_req *req = b->free_reqs;

			if (!req) {
				b->starved = true;
				break;
			}
			if (virtio_mmio_pop(&b->vdev, index, &req->chain) <= 0)
				break;
			b->free_reqs = req->next_free;
			start_request(b, req);
		}
	} while (!b->starved && virtio_mmio_queue_live(&b->vdev, index) &&
		 virtq_enable_notify(&b->vdev.queues[index], b->vdev.mem));
	/* One submission for everything this kick brought. */
	submit(b);
	flush_notify(b);
}

static void blk_drain(void *dev, bool complete)
{
	struct virtio_blk *b = dev;

	b->dropping = !complete;
	if (blk_io_wait_all(&b->io) < 0 && ratelimit_allow(&b->io_rl))
		log_warn("virtio-blk at 0x%llx: cannot wait for I/O in flight",
			 (unsigned long long)b->vdev.base);
	b->dropping = false;
	b->starved = false;
	if (complete) {
		flush_notify(b);
		/*
		 * Before a snapshot or a fork: qcow2 keeps metadata in a
		 * write-back cache, and the image on disk must match the saved
		 * guest (and be what other processes, clones, would open).
		 */
		if (disk_flush(b->disk) < 0)
			note_error(b, "flush before a snapshot", -EIO);
	}
	b->pushed = false;
}

void virtio_blk_io_handler(void *opaque, short revents)
{
	struct virtio_blk *b = opaque;

	virtio_mmio_lock(&b->vdev);
	(void)blk_io_reap(&b->io, 0);
	if (b->starved && virtio_mmio_queue_live(&b->vdev, 0))
		blk_queue_notify(b, 0);
	flush_notify(b);
	virtio_mmio_unlock(&b->vdev);
}

static const struct virtio_device_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .queue_notify = blk_queue_notify,
    .drain = blk_drain,
};

static uint64_t blk_features(bool read_only)
{
	uint64_t f = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);

	if (read_only)
		return f | (1ull << VIRTIO_BLK_F_RO);
	return f | (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
}

static void blk_config(const struct virtio_blk *b, struct virtio_blk_config *cfg)
{
	/* qcow2 frees whole clusters only: tell the guest to align discards to 64 KiB. */
	uint32_t align = disk_format(b->disk) == DISK_FORMAT_QCOW2 ? 128 : 8;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(b->capacity);
	cfg->size_max = htole32(BLK_SIZE_MAX);
	cfg->seg_max = htole32(BLK_SEG_MAX);
	cfg->blk_size = htole32(SECTOR_SIZE);
	cfg->max_discard_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	cfg->max_discard_seg = htole32(VIRTIO_BLK_MAX_DISCARD_SEG);
	cfg->discard_sector_alignment = htole32(align);
	cfg->max_write_zeroes_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	cfg->max_write_zeroes_seg = htole32(VIRTIO_BLK_MAX_DISCARD_SEG);
	cfg->write_zeroes_may_unmap = 1;
}

static int alloc_requests(struct virtio_blk *b)
{
	b->reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs)
		return -ENOMEM;
	for (uint32_t i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
		b->reqs[i].next_free = b->free_reqs;
		b->free_reqs = &b->reqs[i];
	}
	return 0;
}

int virtio_blk_create(const struct virtio_blk_params *params, const struct guest_mem *mem,
		      uint64_t base, struct virtio_blk **ret_blk, char *reason, size_t reason_len)
{
	_cleanup_(virtio_blk_destroyp) struct virtio_blk *b = calloc(1, sizeof(*b));
	struct disk_reason why = {""};
	struct virtio_blk_config cfg;
	int r;

	if (!b)
		return -ENOMEM;
	b->io.event_fd = -1;
	r = disk_open(params->path, params->read_only, &b->disk, &why);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot open drive '%s': %s", params->path,
			 why.msg[0] ? why.msg : strerror(-r));
		return r;
	}
	b->read_only = params->read_only;
	b->capacity = disk_size(b->disk) >> SECTOR_SHIFT;
	if (b->capacity == 0) {
		snprintf(reason, reason_len, "drive '%s' is smaller than one sector", params->path);
		return -EINVAL;
	}
	/* GET_ID: up to 20 bytes, NUL-padded, no terminator when all 20 are used. */
	if (params->serial)
		memcpy(b->serial, params->serial, MIN(strlen(params->serial), sizeof(b->serial)));
	r = alloc_requests(b);
	if (r >= 0)
		r = blk_io_init(&b->io, b->disk, VIRTIO_BLK_QUEUE_SIZE, VIRTIO_BLK_MAX_OPS, op_done,
				b);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up I/O for drive '%s': %s", params->path,
			 strerror(-r));
		return r;
	}
	blk_config(b, &cfg);
	r = virtio_mmio_init(&b->vdev, &blk_ops, b, mem, base, 1, VIRTIO_BLK_QUEUE_SIZE,
			     blk_features(b->read_only), &cfg, sizeof(cfg));
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up virtio for drive '%s'", params->path);
		return r;
	}
	*ret_blk = TAKE_PTR(b);
	return 0;
}

int virtio_blk_after_fork(struct virtio_blk *blk)
{
	/* The parent's other threads may have held it at the fork. */
	pthread_mutex_init(&blk->vdev.lock, NULL);
	return blk_io_renew(&blk->io);
}

int virtio_blk_swap_disk(struct virtio_blk *blk, const char *path, char *reason,
			 size_t reason_len)
{
	struct disk_reason why = { "" };
	struct disk *d;
	int r;

	r = disk_open(path, blk->read_only, &d, &why);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot open '%s': %s", path, why.msg);
		return r;
	}
	if (disk_size(d) != disk_size(blk->disk)) {
		snprintf(reason, reason_len, "'%s' is not the size of the image it replaces", path);
		disk_close(d);
		return -EINVAL;
	}
	/* Nothing may still be on its way to the old image. */
	r = blk_io_wait_all(&blk->io);
	if (r >= 0)
		r = disk_flush(blk->disk);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot finish I/O on the old image: %s", strerror(-r));
		disk_close(d);
		return r;
	}
	disk_close(blk->disk);
	blk->disk = d;
	blk->io.disk = d;
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	if (b->io.ring_ready)
		blk_drain(b, false);
	blk_io_destroy(&b->io);
	disk_close(b->disk);
	virtio_mmio_destroy(&b->vdev);
	free(b->reqs);
	free(b);
}
