/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.x, 5.2) over virtio-mmio: read, write, flush,
 * get-id, discard and write-zeroes on a disk from snapshot/disk.h (raw
 * file, block device or qcow2 chain), one request queue.
 *
 * Data I/O is asynchronous: for each request the disk engine maps the
 * guest range to extents, and every extent that lives in a file becomes
 * a vectored read or write on the device's io_uring, straight between
 * the file and guest memory. One kick's requests go out in one
 * submission. What needs the engine's metadata stays synchronous on the
 * I/O thread: writes into clusters a qcow2 image must allocate first
 * (disk_write does the allocation and copy-on-write), flush, discard and
 * write-zeroes, which first wait for the requests in flight so that no
 * data I/O races a cluster being freed or a metadata flush.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blk-io.h"
#include "virtio-mmio.h"

struct disk;
struct blk_req;

enum {
	VIRTIO_BLK_QUEUE_SIZE = 256,
	/* Operations in flight at once; beyond it, a request waits for one to finish. */
	VIRTIO_BLK_MAX_OPS = 512,
	VIRTIO_BLK_MAX_DISCARD_SEG = 32,
	VIRTIO_BLK_SERIAL_MAX = 20, /* VIRTIO_BLK_ID_BYTES */
};

struct virtio_blk_params {
	const char *path;
	bool read_only;
	const char *serial; /* GET_ID answer (the drive id); NULL: none */
};

struct virtio_blk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, errors;
	uint64_t read_bytes, write_bytes;
};

struct virtio_blk {
	/* First: the transport is the device's common header. */
	struct virtio_mmio vdev;
	struct disk *disk;
	bool read_only;
	uint64_t capacity; /* in 512-byte sectors */
	char serial[VIRTIO_BLK_SERIAL_MAX];
	/* The drive's full id (the serial is its first 20 bytes), to find it by. */
	char drive_id[64];
	struct blk_io io;

	struct blk_req *reqs;
	struct blk_req *free_reqs;
	/* Completions are returned but not pushed: the rings are going away. */
	bool dropping;
	/* The queue stopped for want of a free request; completions restart it. */
	bool starved;
	bool pushed;
	struct virtio_blk_stats stats;
	struct ratelimit io_rl;
};

/*
 * Open the disk and set the device up at guest address base (transport
 * included, no fds wired yet). reason gets one line on failure.
 */
int virtio_blk_create(const struct virtio_blk_params *params, const struct guest_mem *mem,
		      uint64_t base, struct virtio_blk **ret_blk, char *reason,
		      size_t reason_len) __must_check;
/* Finishes in-flight I/O, flushes and closes the disk. NULL is fine. */
void virtio_blk_destroy(struct virtio_blk *blk);
DEFINE_CLEANUP_FUNC(struct virtio_blk, virtio_blk_destroy)

/* The io_uring's completion eventfd is readable (the vm_io_watch handler). */
void virtio_blk_io_handler(void *blk, short revents);

/*
 * In a fork child: a lock and an io_uring of its own (the inherited ring
 * is the parent's). The kick and interrupt eventfds are the builder's.
 */
int virtio_blk_after_fork(struct virtio_blk *blk) __must_check;

/*
 * Carry on with another image of the same size (a fresh overlay over the
 * current one, at fork): in-flight I/O is finished, the old image flushed
 * and closed. On failure the device keeps its old image.
 */
int virtio_blk_swap_disk(struct virtio_blk *blk, const char *path, char *reason,
			 size_t reason_len) __must_check;
