// SPDX-License-Identifier: MIT
/*
 * bench/run disk: the qcow2 engine against plain pread/pwrite on a raw
 * file, on the host (the in-guest half comes with virtio-blk). For each
 * engine, on a fresh image: 1 MiB sequential writes over the whole disk
 * (allocating), 1 MiB sequential reads, 4 KiB random writes (in place) and
 * reads; then, on a second fresh image, 4 KiB random writes that allocate.
 * Buffered I/O on both sides, so this measures the engines' own cost over
 * the page cache; each write test's final flush is timed apart (flush_ms).
 * Three rounds alternate the engines; each test reports its median.
 *
 *   bench-disk [--dir DIR] [--size MIB] [--seconds S]
 *
 * Prints one JSON line per measurement, then a table.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qcow2.h"

enum engine { ENGINE_RAW, ENGINE_QCOW2, ENGINE_MAX };
enum { ROUNDS = 3 };
enum test { T_SEQWRITE, T_SEQREAD, T_RANDWRITE, T_RANDREAD, T_RANDWRITE_ALLOC, T_MAX };

static const char *const engine_names[ENGINE_MAX] = {"raw", "qcow2"};
static const char *const test_names[T_MAX] = {
    "seqwrite-1m", "seqread-1m", "randwrite-4k", "randread-4k", "randwrite-4k-alloc",
};

struct target {
	enum engine engine;
	int fd;
	struct qcow2 *q;
};

struct result {
	uint64_t ops, bytes;
	double seconds, flush_ms;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int do_io(struct target *t, bool write, uint8_t *buf, uint64_t len, uint64_t off)
{
	if (t->engine == ENGINE_QCOW2)
		return write ? qcow2_write(t->q, buf, len, off) : qcow2_read(t->q, buf, len, off);
	if (write)
		return pwrite(t->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
	return pread(t->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

static int do_flush(struct target *t)
{
	if (t->engine == ENGINE_QCOW2)
		return qcow2_flush(t->q);
	return fdatasync(t->fd) < 0 ? -errno : 0;
}

#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		struct result _t = (a);                                                            \
		(a) = (b);                                                                         \
		(b) = _t;                                                                          \
	} while (0)

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int run(struct target *t, enum test test, uint64_t size, double seconds, uint8_t *buf,
	       struct result *res)
{
	bool write = test != T_SEQREAD && test != T_RANDREAD;
	bool seq = test == T_SEQWRITE || test == T_SEQREAD;
	uint64_t bs = seq ? 1u << 20 : 4096, seed = 0x2545f4914f6cdd1dull + test;
	double start = now(), end;
	int r;

	*res = (struct result){};
	for (uint64_t i = 0;; i++) {
		uint64_t off = seq ? i * bs : (rng(&seed) % (size / bs)) * bs;

		if (seq ? off >= size : (i % 64 == 0 && now() - start >= seconds))
			break;
		buf[0] = (uint8_t)i; /* not all blocks alike */
		r = do_io(t, write, buf, bs, off);
		if (r < 0)
			return r;
		res->ops++;
		res->bytes += bs;
	}
	end = now();
	res->seconds = end - start;
	if (write) {
		r = do_flush(t);
		if (r < 0)
			return r;
		res->flush_ms = (now() - end) * 1000;
	}
	return 0;
}

static double rate(const struct result *r)
{
	return r->bytes / r->seconds;
}

/* The middle of the rounds' results, by throughput. */
static struct result median(struct result *t)
{
	if (rate(&t[0]) > rate(&t[1]))
		SWAP(t[0], t[1]);
	if (rate(&t[1]) > rate(&t[2]))
		SWAP(t[1], t[2]);
	if (rate(&t[0]) > rate(&t[1]))
		SWAP(t[0], t[1]);
	return t[1];
}

static bool is_seq(enum test x)
{
	return x == T_SEQWRITE || x == T_SEQREAD;
}

static int target_open(struct target *t, enum engine e, const char *dir, uint64_t size);
static void target_close(struct target *t);

/* One engine, every test, on fresh files. */
static int run_round(enum engine e, const char *dir, uint64_t size, double seconds, uint8_t *buf,
		     struct result tries[T_MAX][ROUNDS], unsigned round)
{
	struct target t;
	int r;

	r = target_open(&t, e, dir, size);
	for (enum test x = 0; r >= 0 && x < T_MAX; x++) {
		/* The allocating test needs a disk where nothing is allocated yet. */
		if (x == T_RANDWRITE_ALLOC) {
			target_close(&t);
			r = target_open(&t, e, dir, size);
			if (r < 0)
				break;
		}
		r = run(&t, x, size, seconds, buf, &tries[x][round]);
	}
	target_close(&t);
	return r;
}

static int target_open(struct target *t, enum engine e, const char *dir, uint64_t size)
{
	char path[4096];
	struct qcow2_reason why;
	int r;

	*t = (struct target){.engine = e, .fd = -1};
	snprintf(path, sizeof(path), "%s/bench-disk.%s", dir, engine_names[e]);
	unlink(path);

	if (e == ENGINE_RAW) {
		t->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (t->fd < 0 || ftruncate(t->fd, (off_t)size) < 0)
			return -errno;
		unlink(path);
		return 0;
	}

	r = qcow2_create(path, &(struct qcow2_create_opts){.size = size}, &why);
	if (r >= 0)
		r = qcow2_open(path, QCOW2_OPEN_RW, &t->q, &why);
	if (r < 0) {
		fprintf(stderr, "bench-disk: %s: %s\n", path, why.msg);
		return r;
	}
	unlink(path);
	return 0;
}

static void target_close(struct target *t)
{
	if (t->q)
		qcow2_close(t->q);
	if (t->fd >= 0)
		close(t->fd);
	t->q = NULL;
	t->fd = -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"size", required_argument, NULL, 's'},
	    {"seconds", required_argument, NULL, 't'},
	    {},
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	uint64_t size = 128u << 20;
	double seconds = 0.25;
	struct result res[ENGINE_MAX][T_MAX];
	struct result tries[ENGINE_MAX][T_MAX][ROUNDS];
	uint8_t *buf;
	int c;

	while ((c = getopt_long(argc, argv, "d:s:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			size = strtoull(optarg, NULL, 0) << 20;
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr,
				"usage: bench-disk [--dir DIR] [--size MIB] [--seconds S]\n");
			return 2;
		}
	}
	if (size < (4u << 20) || seconds <= 0) {
		fprintf(stderr, "bench-disk: size must be at least 4 MiB, seconds positive\n");
		return 2;
	}

	buf = aligned_alloc(4096, 1u << 20);
	if (!buf)
		return 1;
	memset(buf, 0x5a, 1u << 20);

	/*
	 * Rounds alternate the engines, so that a noisy neighbour on the host
	 * hits both alike; each round starts from fresh files, and each test
	 * reports the median of its rounds.
	 */
	for (unsigned round = 0; round < ROUNDS; round++) {
		for (enum engine e = 0; e < ENGINE_MAX; e++) {
			int r = run_round(e, dir, size, seconds, buf, tries[e], round);

			if (r < 0) {
				fprintf(stderr, "bench-disk: %s failed: %s\n", engine_names[e],
					strerror(-r));
				return 1;
			}
		}
	}

	for (enum engine e = 0; e < ENGINE_MAX; e++) {
		for (enum test x = 0; x < T_MAX; x++) {
			struct result *p = &res[e][x];

			*p = median(tries[e][x]);
			printf("{\"bench\":\"disk\",\"engine\":\"%s\",\"test\":\"%s\",\"block\":%u,"
			       "\"ops\":%" PRIu64 ",\"seconds\":%.3f,\"iops\":%.0f,\"mbps\":%.1f,"
			       "\"flush_ms\":%.1f,\"size_mib\":%" PRIu64 ",\"rounds\":%d}\n",
			       engine_names[e], test_names[x], is_seq(x) ? 1u << 20 : 4096, p->ops,
			       p->seconds, p->ops / p->seconds, p->bytes / p->seconds / 1e6,
			       p->flush_ms, size >> 20, ROUNDS);
		}
	}

	printf("\n%-20s %14s %14s %8s\n", "test", "raw", "qcow2", "qcow2/raw");
	for (enum test x = 0; x < T_MAX; x++) {
		bool seq = is_seq(x);
		double a = seq ? res[ENGINE_RAW][x].bytes / res[ENGINE_RAW][x].seconds / 1e6
			       : res[ENGINE_RAW][x].ops / res[ENGINE_RAW][x].seconds;
		double b = seq ? res[ENGINE_QCOW2][x].bytes / res[ENGINE_QCOW2][x].seconds / 1e6
			       : res[ENGINE_QCOW2][x].ops / res[ENGINE_QCOW2][x].seconds;

		printf("%-20s %9.0f %-4s %9.0f %-4s %7.2f\n", test_names[x], a,
		       seq ? "MB/s" : "IOPS", b, seq ? "MB/s" : "IOPS", b / a);
	}
	free(buf);
	return 0;
}
