/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous I/O between a disk (snapshot/disk.h) and guest memory:
 * one io_uring per disk, whose completions signal an eventfd that the
 * I/O thread watches.
 *
 * blk_io_rw() asks the disk engine where a guest range lives and turns
 * every extent that sits in a file (a raw file, or a qcow2 cluster the
 * image already owns) into a vectored read or write straight between
 * that file and the guest's buffers. What needs the engine stays
 * synchronous: reads of unallocated ranges are zero-filled here, and
 * writes that must allocate (qcow2 clusters, a probed raw disk's first
 * bytes) go through disk_write(). Operations are queued; blk_io_submit()
 * sends a whole batch in one system call.
 *
 * Every operation belongs to a caller's request (an opaque pointer); its
 * completion calls `done` with 0 or -errno. Short transfers are finished
 * synchronously before that. One struct blk_io is used by one thread at a
 * time (the device's lock).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

#include "util.h"

struct disk;
struct blk_op;

/* Segments of one blk_io_rw() call. */
enum { BLK_IO_MAX_SEGS = 256 };

/* One operation of request `req` finished: res 0, or -errno. */
typedef void (*blk_io_done_fn)(void *opaque, void *req, int res, bool write);

struct blk_io {
	struct io_uring ring;
	bool ring_ready;
	/* Readable when completions are waiting; its number never changes. */
	int event_fd;
	uint32_t depth;
	uint32_t queued;      /* prepared, not yet submitted */
	uint32_t outstanding; /* prepared or submitted, not yet reaped */
	uint64_t submissions;

	struct disk *disk;
	struct blk_op *ops;
	struct blk_op *free_ops;
	blk_io_done_fn done;
	void *opaque;
};

/* A ring of `depth` entries and at most max_ops operations in flight. */
int blk_io_init(struct blk_io *io, struct disk *disk, uint32_t depth, uint32_t max_ops,
		blk_io_done_fn done, void *opaque) __must_check;
/* Waits for what is in flight (dropping nothing: `done` still runs). NULL-safe. */
void blk_io_destroy(struct blk_io *io);

/*
 * In a fork child: the inherited ring is the parent's (its memory is
 * shared), so set up a ring and an eventfd of our own; the eventfd keeps
 * its fd number, so the I/O thread's watch stays valid. Nothing may be
 * outstanding.
 */
int blk_io_renew(struct blk_io *io) __must_check;

/*
 * Move len bytes between disk offset `offset` and iov (cnt segments, at
 * least len bytes). *pending is incremented for every operation queued
 * for req, which completes through `done`. On failure, what was queued
 * before it still completes; the caller fails the request.
 */
int blk_io_rw(struct blk_io *io, bool write, uint64_t offset, const struct iovec *iov, uint32_t cnt,
	      uint64_t len, void *req, uint32_t *pending) __must_check;

/* Submit what is queued, in one system call. */
int blk_io_submit(struct blk_io *io) __must_check;

/* Reap what has completed, waiting for at least min(wait_nr, outstanding). Clears the eventfd. */
int blk_io_reap(struct blk_io *io, uint32_t wait_nr);

/* Reap until nothing is in flight (before metadata work, a flush, a reset). */
int blk_io_wait_all(struct blk_io *io);
