// SPDX-License-Identifier: MIT
/*
 * The in-guest half of bench/disk-guest: block I/O on a virtio-blk disk
 * from inside the guest, O_DIRECT so that the guest's page cache stays out
 * of it, one request at a time (queue depth 1, what a simple application
 * sees):
 *   seq_write, seq_read   1 MiB requests over the first SPAN bytes, MB/s
 *   rand_read, rand_write 4 KiB requests at random aligned offsets for
 *                         SECONDS each, IOPS
 * Built static: the test guest has busybox and nothing else.
 *
 *   disk-guest-io DEVICE [SECONDS]
 * Prints one line: "disk-io seq_write_MBps=.. seq_read_MBps=.. rand_read_iops=.. rand_write_iops=..".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEQ_BLOCK (1u << 20)
#define RAND_BLOCK 4096u
#define SPAN_MAX (128ull << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
	perror(what);
	return 1;
}

/* xorshift64: cheap, and the same offsets for every VMM. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double sequential(int fd, void *buf, uint64_t span, int write_it)
{
	double t0 = now();

	for (uint64_t off = 0; off < span; off += SEQ_BLOCK) {
		ssize_t n = write_it ? pwrite(fd, buf, SEQ_BLOCK, (off_t)off)
				     : pread(fd, buf, SEQ_BLOCK, (off_t)off);

		if (n != (ssize_t)SEQ_BLOCK)
			return -1;
	}
	if (write_it && fsync(fd) < 0)
		return -1;
	return (double)span / (1 << 20) / (now() - t0);
}

static double random_io(int fd, void *buf, uint64_t span, int write_it, double seconds)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull, ops = 0, blocks = span / RAND_BLOCK;
	double t0 = now(), t;

	do {
		for (int i = 0; i < 64; i++, ops++) {
			off_t off = (off_t)(next_rand(&seed) % blocks * RAND_BLOCK);
			ssize_t n = write_it ? pwrite(fd, buf, RAND_BLOCK, off)
					     : pread(fd, buf, RAND_BLOCK, off);

			if (n != (ssize_t)RAND_BLOCK)
				return -1;
		}
		t = now() - t0;
	} while (t < seconds);
	if (write_it && fsync(fd) < 0)
		return -1;
	return (double)ops / (now() - t0);
}

int main(int argc, char **argv)
{
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	double sw, sr, rr, rw;
	uint64_t span;
	void *buf;
	off_t end;
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: disk-guest-io DEVICE [SECONDS]\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return die(argv[1]);
	end = lseek(fd, 0, SEEK_END);
	if (end < (off_t)SEQ_BLOCK)
		return die("device size");
	span = (uint64_t)end < SPAN_MAX ? (uint64_t)end / SEQ_BLOCK * SEQ_BLOCK : SPAN_MAX;
	if (posix_memalign(&buf, 4096, SEQ_BLOCK))
		return die("posix_memalign");
	memset(buf, 0xa5, SEQ_BLOCK);

	sw = sequential(fd, buf, span, 1);
	sr = sequential(fd, buf, span, 0);
	rr = random_io(fd, buf, span, 0, seconds);
	rw = random_io(fd, buf, span, 1, seconds);
	if (sw < 0 || sr < 0 || rr < 0 || rw < 0)
		return die("I/O");
	printf("disk-io seq_write_MBps=%.1f seq_read_MBps=%.1f rand_read_iops=%.0f "
	       "rand_write_iops=%.0f\n",
	       sw, sr, rr, rw);
	return 0;
}
