// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>

#include "blk-io.h"
#include "disk.h"

struct blk_op {
	void *req;
	struct blk_op *next_free;
	int fd;
	bool write;
	uint64_t offset;
	uint64_t len;
	/* Either cnt segments of the caller's list, or (cnt 0) one piece. */
	const struct iovec *iov;
	uint32_t cnt;
	struct iovec piece;
};

/* A position in a list of segments. */
struct cursor {
	const struct iovec *iov;
	uint32_t cnt;
	uint32_t seg;
	uint64_t off;
};

static int ring_setup(struct blk_io *io, int event_fd)
{
	int r = io_uring_queue_init(io->depth, &io->ring, 0);

	if (r < 0)
		return r;
	r = io_uring_register_eventfd(&io->ring, event_fd);
	if (r < 0) {
		io_uring_queue_exit(&io->ring);
		return r;
	}
	io->ring_ready = true;
	return 0;
}

static void put_op(struct blk_io *io, struct blk_op *op)
{
	op->next_free = io->free_ops;
	io->free_ops = op;
}

int blk_io_init(struct blk_io *io, struct disk *disk, uint32_t depth, uint32_t max_ops,
		blk_io_done_fn done, void *opaque)
{
	_cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int r;

	memset(io, 0, sizeof(*io));
	io->event_fd = -1;
	if (efd < 0)
		return neg_errno();
	io->ops = calloc(max_ops, sizeof(*io->ops));
	if (!io->ops)
		return -ENOMEM;
	for (uint32_t i = 0; i < max_ops; i++)
		put_op(io, &io->ops[i]);
	io->disk = disk;
	io->done = done;
	io->opaque = opaque;
	io->depth = depth;
	r = ring_setup(io, efd);
	if (r < 0)
		return r;
	io->event_fd = TAKE_FD(efd);
	return 0;
}

void blk_io_destroy(struct blk_io *io)
{
	if (!io)
		return;
	if (io->ring_ready) {
		(void)blk_io_wait_all(io);
		io_uring_queue_exit(&io->ring);
	}
	io->ring_ready = false;
	if (io->event_fd >= 0)
		close(io->event_fd);
	io->event_fd = -1;
	free(io->ops);
	io->ops = io->free_ops = NULL;
}

int blk_io_renew(struct blk_io *io)
{
	_cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (efd < 0)
		return neg_errno();
	if (io->outstanding)
		return -EBUSY;
	/* Unmaps our view of the parent's ring and drops our reference to it only. */
	if (io->ring_ready)
		io_uring_queue_exit(&io->ring);
	io->ring_ready = false;
	/* Same number, new file: the parent's eventfd is no longer ours. */
	if (dup3(efd, io->event_fd, O_CLOEXEC) < 0)
		return neg_errno();
	return ring_setup(io, io->event_fd);
}

int blk_io_submit(struct blk_io *io)
{
	int r;

	if (!io->queued)
		return 0;
	do {
		r = io_uring_submit(&io->ring);
	} while (r == -EINTR);
	if (r < 0)
		return r;
	io->submissions++;
	io->queued -= MIN((uint32_t)r, io->queued);
	return 0;
}

static void iov_advance(struct iovec *v, uint32_t n, uint32_t *idx, uint64_t bytes)
{
	while (bytes && *idx < n) {
		uint64_t step = MIN(bytes, (uint64_t)v[*idx].iov_len);

		v[*idx].iov_base = (uint8_t *)v[*idx].iov_base + step;
		v[*idx].iov_len -= step;
		bytes -= step;
		if (v[*idx].iov_len == 0)
			(*idx)++;
	}
}

/* The kernel cut a transfer short (end of a file, a signal): do the rest here. */
static int finish_sync(const struct blk_op *op, uint64_t done)
{
	struct iovec v[BLK_IO_MAX_SEGS];
	const struct iovec *src = op->cnt ? op->iov : &op->piece;
	uint32_t n = op->cnt ? op->cnt : 1, idx = 0;
	uint64_t offset = op->offset + done, left = op->len - done;

	memcpy(v, src, n * sizeof(v[0]));
	iov_advance(v, n, &idx, done);
	while (left && idx < n) {
		ssize_t r = op->write ? pwritev(op->fd, v + idx, (int)(n - idx), (off_t)offset)
				      : preadv(op->fd, v + idx, (int)(n - idx), (off_t)offset);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return neg_errno();
		if (r == 0) {
			if (op->write)
				return -EIO;
			/* Past the end of a backing file: the rest reads as zeros. */
			for (; idx < n; idx++)
				memset(v[idx].iov_base, 0, v[idx].iov_len);
			return 0;
		}
		iov_advance(v, n, &idx, (uint64_t)r);
		left -= (uint64_t)r;
		offset += (uint64_t)r;
	}
	return 0;
}

static void complete(struct blk_io *io, struct blk_op *op, int32_t res)
{
	void *req = op->req;
	bool write = op->write;
	int r = res;

	if (res >= 0)
		r = (uint64_t)res < op->len ? finish_sync(op, (uint64_t)res) : 0;
	put_op(io, op);
	io->done(io->opaque, req, r, write);
}

int blk_io_reap(struct blk_io *io, uint32_t wait_nr)
{
	uint32_t reaped = 0;
	uint64_t count;
	int r;

	if (read(io->event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return neg_errno();
	r = blk_io_submit(io);
	if (r < 0)
		return r;
	wait_nr = MIN(wait_nr, io->outstanding);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct blk_op *op;
		int32_t res;

		if (reaped < wait_nr)
			r = io_uring_wait_cqe(&io->ring, &cqe);
		else
			r = io_uring_peek_cqe(&io->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r == -EAGAIN)
			return (int)reaped;
		if (r < 0)
			return r;
		op = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&io->ring, cqe);
		io->outstanding--;
		reaped++;
		complete(io, op, res);
	}
}

int blk_io_wait_all(struct blk_io *io)
{
	while (io->outstanding) {
		int r = blk_io_reap(io, io->outstanding);

		if (r < 0)
			return r;
	}
	return 0;
}

static int queue_op(struct blk_io *io, const struct blk_op *tmpl, uint32_t *pending)
{
	struct io_uring_sqe *sqe;
	struct blk_op *op = io->free_ops;
	int r;

	/* All in flight: make room by waiting for one. */
	if (!op && io->outstanding && blk_io_reap(io, 1) >= 0)
		op = io->free_ops;
	if (!op)
		return -EBUSY;
	sqe = io_uring_get_sqe(&io->ring);
	if (!sqe) {
		r = blk_io_submit(io);
		sqe = r < 0 ? NULL : io_uring_get_sqe(&io->ring);
		if (!sqe)
			return r < 0 ? r : -EBUSY;
	}
	io->free_ops = op->next_free;
	*op = *tmpl;
	if (op->write)
		io_uring_prep_writev(sqe, op->fd, op->cnt ? op->iov : &op->piece,
				     op->cnt ? op->cnt : 1, op->offset);
	else
		io_uring_prep_readv(sqe, op->fd, op->cnt ? op->iov : &op->piece,
				    op->cnt ? op->cnt : 1, op->offset);
	io_uring_sqe_set_data(sqe, op);
	io->queued++;
	io->outstanding++;
	(*pending)++;
	return 0;
}

static void cursor_skip_empty(struct cursor *c)
{
	while (c->seg < c->cnt && c->off == c->iov[c->seg].iov_len) {
		c->seg++;
		c->off = 0;
	}
}

/* The next contiguous piece, at most max bytes; 0 at the end. */
static uint64_t cursor_piece(struct cursor *c, uint64_t max, uint8_t **ret_ptr)
{
	uint64_t n;

	cursor_skip_empty(c);
	if (c->seg == c->cnt)
		return 0;
	n = MIN(c->iov[c->seg].iov_len - c->off, max);
	*ret_ptr = (uint8_t *)c->iov[c->seg].iov_base + c->off;
	c->off += n;
	return n;
}

/*
 * Data that lives at host_offset in fd: one vectored operation when the
 * extent covers whole segments from the cursor (always, for a raw disk),
 * else one per piece.
 */
static int issue_data(struct blk_io *io, struct cursor *c, struct blk_op *tmpl, uint32_t *pending)
{
	uint64_t whole = 0, len = tmpl->len;
	uint32_t end;
	int r;

	cursor_skip_empty(c);
	for (end = c->seg; end < c->cnt && whole + c->iov[end].iov_len <= len; end++)
		whole += c->iov[end].iov_len;
	if (c->off == 0 && whole == len && end > c->seg) {
		tmpl->iov = &c->iov[c->seg];
		tmpl->cnt = end - c->seg;
		c->seg = end;
		return queue_op(io, tmpl, pending);
	}
	while (len) {
		uint8_t *p;
		uint64_t n = cursor_piece(c, len, &p);

		if (!n)
			return -EINVAL;
		tmpl->cnt = 0;
		tmpl->len = n;
		tmpl->piece = (struct iovec){.iov_base = p, .iov_len = n};
		r = queue_op(io, tmpl, pending);
		if (r < 0)
			return r;
		tmpl->offset += n;
		len -= n;
	}
	return 0;
}

/* Zeros (unallocated ranges) or a synchronous write through the engine (allocation). */
static int issue_sync(struct blk_io *io, struct cursor *c, bool write, uint64_t offset,
		      uint64_t len)
{
	while (len) {
		uint8_t *p;
		uint64_t n = cursor_piece(c, len, &p);
		int r;

		if (!n)
			return -EINVAL;
		if (write) {
			r = disk_write(io->disk, p, n, offset);
			if (r < 0)
				return r;
		} else {
			memset(p, 0, n);
		}
		offset += n;
		len -= n;
	}
	return 0;
}

int blk_io_rw(struct blk_io *io, bool write, uint64_t offset, const struct iovec *iov, uint32_t cnt,
	      uint64_t len, void *req, uint32_t *pending)
{
	struct cursor c = {.iov = iov, .cnt = cnt};
	uint64_t done = 0;

	if (cnt > BLK_IO_MAX_SEGS)
		return -EINVAL;
	while (done < len) {
		struct disk_extent e;
		int r = disk_map(io->disk, offset + done, len - done, write, &e);
		uint64_t n;

		if (r < 0)
			return r;
		n = MIN(e.len, len - done);
		if (e.kind == DISK_EXTENT_DATA) {
			struct blk_op tmpl = {.req = req,
					      .fd = e.fd,
					      .write = write,
					      .offset = e.host_offset,
					      .len = n};

			r = issue_data(io, &c, &tmpl, pending);
		} else {
			r = issue_sync(io, &c, write, offset + done, n);
		}
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}
