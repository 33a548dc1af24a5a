// SPDX-License-Identifier: MIT
/*
 * qcow2-tool: drive the qcow2 engine from shell scripts, in the manner of
 * qemu-io, so that interop and crash tests can compare it with QEMU.
 *
 *   qcow2-tool create [-s SIZE] [-b BACKING] [-F FMT] [-c CLUSTER] [-r REFBITS] IMAGE
 *   qcow2-tool [-n] [-w] IMAGE -c 'CMD ARGS' [-c ...]
 *
 * -n opens read-only, -w opens the backing image writable (commit). CMDs:
 *   write OFF LEN PAT      fill with byte PAT        read OFF LEN [PAT]  verify PAT
 *   zero OFF LEN           discard OFF LEN           flush    commit     check
 *   export FILE            the whole disk into a raw file
 *   import FILE            a raw file onto the disk, from offset 0
 *   dump OFF LEN           raw bytes to stdout
 *   storm SEED OPS         random writes/zeroes/discards/flushes, checked as they go;
 *                          prints "synced N" after each flush (OPS 0: forever)
 *   verify SEED SYNCED     after a crash: every block holds what the storm's
 *                          first SYNCED operations left, or a later storm write
 *   fill-base              self-describing content over the whole disk
 * OFF and LEN take k/M/G suffixes. Exit status: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

#define BLOCK 4096u

static int parse_num(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10, end++;
		break;
	case 'm':
	case 'M':
		v <<= 20, end++;
		break;
	case 'g':
	case 'G':
		v <<= 30, end++;
		break;
	default:
		break;
	}
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* ---- self-describing blocks for the storm ---- */

struct block_head {
	char magic[8];	/* "STORMBLK" or "BASEBLK\0" */
	uint64_t index; /* block number on the disk */
	uint64_t gen;	/* operation that wrote it (0 for base) */
	uint64_t sum;	/* of the rest of the block */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void block_fill(uint8_t *b, const char *magic, uint64_t index, uint64_t gen)
{
	struct block_head h = {.index = index, .gen = gen};
	uint64_t *w = (uint64_t *)(b + sizeof(h));
	uint64_t sum = 0;

	memcpy(h.magic, magic, sizeof(h.magic));
	for (size_t i = 0; i < (BLOCK - sizeof(h)) / 8; i++) {
		w[i] = mix(index * 1000003 + gen * 7919 + i);
		sum += w[i];
	}
	h.sum = sum;
	memcpy(b, &h, sizeof(h));
}

/* Which kind of block b is: 'B' base, 'S' storm (gen in *gen), 'Z' zeros, 0 garbage. */
static char block_kind(const uint8_t *b, uint64_t index, uint64_t *gen)
{
	struct block_head h;
	uint8_t want[BLOCK];
	bool zero = true;

	for (size_t i = 0; i < BLOCK && zero; i++)
		zero = b[i] == 0;
	if (zero)
		return 'Z';
	memcpy(&h, b, sizeof(h));
	if (h.index != index)
		return 0;
	if (memcmp(h.magic, "BASEBLK", 8) == 0)
		block_fill(want, "BASEBLK", index, 0);
	else if (memcmp(h.magic, "STORMBLK", 8) == 0)
		block_fill(want, "STORMBLK", index, h.gen);
	else
		return 0;
	if (memcmp(want, b, BLOCK) != 0)
		return 0;
	*gen = h.gen;
	return h.magic[0];
}

/* ---- the storm: a reproducible sequence of operations ---- */

enum op_kind { OP_WRITE, OP_ZERO, OP_DISCARD, OP_FLUSH, OP_READ };

struct op {
	enum op_kind kind;
	uint64_t block, count; /* in blocks */
};

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix(*s);
}

static struct op op_make(uint64_t *rng, uint64_t nblocks, uint64_t cluster)
{
	uint64_t r = rng_next(rng) % 100;
	struct op op = {};
	uint64_t per_cluster = cluster >= BLOCK ? cluster / BLOCK : 1;

	op.kind = r < 60   ? OP_WRITE
		  : r < 70 ? OP_ZERO
		  : r < 78 ? OP_DISCARD
		  : r < 85 ? OP_FLUSH
			   : OP_READ;
	op.count = 1 + rng_next(rng) % (op.kind == OP_WRITE ? 16 : 4 * per_cluster);
	op.block = rng_next(rng) % nblocks;
	/* Cluster-aligned zeroes and discards half of the time: whole-cluster paths. */
	if ((op.kind == OP_ZERO || op.kind == OP_DISCARD) && rng_next(rng) % 2)
		op.block -= op.block % per_cluster;
	op.count = MIN(op.count, nblocks - op.block);
	return op;
}

/* Model of the disk: per block, 'B' base, 'Z' zeros or 'S' with its gen. */
struct model {
	char *kind;
	uint64_t *gen;
};

static void model_apply(struct model *m, const struct op *op, uint64_t gen, uint64_t cluster,
			uint64_t size)
{
	uint64_t per_cluster = cluster >= BLOCK ? cluster / BLOCK : 1;

	for (uint64_t b = op->block; b < op->block + op->count; b++) {
		if (op->kind == OP_WRITE) {
			m->kind[b] = 'S';
			m->gen[b] = gen;
		} else if (op->kind == OP_ZERO) {
			m->kind[b] = 'Z';
		} else if (op->kind == OP_DISCARD) {
			/* Only whole clusters are dropped (and then read as zeros). */
			uint64_t first = b - b % per_cluster;
			uint64_t last = first + per_cluster;

			uint64_t end = op->block + op->count;

			/* As the engine: whole, or running to the end of the disk. */
			if (first >= op->block && (last <= end || end * BLOCK >= size))
				m->kind[b] = 'Z';
		}
	}
}

static int op_run(struct qcow2 *q, const struct op *op, uint64_t gen, struct model *m, uint8_t *buf)
{
	uint64_t off = op->block * BLOCK, len = op->count * BLOCK;
	int r = 0;

	switch (op->kind) {
	case OP_WRITE:
		for (uint64_t i = 0; i < op->count; i++)
			block_fill(buf + i * BLOCK, "STORMBLK", op->block + i, gen);
		r = qcow2_write(q, buf, len, off);
		break;
	case OP_ZERO:
		r = qcow2_write_zeroes(q, off, len);
		break;
	case OP_DISCARD:
		r = qcow2_discard(q, off, len);
		break;
	case OP_FLUSH:
		r = qcow2_flush(q);
		break;
	case OP_READ:
		r = qcow2_read(q, buf, len, off);
		for (uint64_t i = 0; r >= 0 && i < op->count; i++) {
			uint64_t b = op->block + i, g = 0;
			char k = block_kind(buf + i * BLOCK, b, &g);

			if (k != m->kind[b] || (k == 'S' && g != m->gen[b])) {
				fprintf(stderr,
					"storm: block %" PRIu64 " reads '%c' gen %" PRIu64
					", expected '%c' gen %" PRIu64 "\n",
					b, k ? k : '?', g, m->kind[b], m->gen[b]);
				return -EIO;
			}
		}
		break;
	}
	return r;
}

struct ctx {
	struct qcow2 *q;
	uint64_t cluster;
};

static int model_init(struct model *m, uint64_t nblocks, char base)
{
	m->kind = malloc(nblocks);
	m->gen = calloc(nblocks, sizeof(*m->gen));
	if (!m->kind || !m->gen)
		return -ENOMEM;
	memset(m->kind, base, nblocks);
	return 0;
}

/* The storm runs over a fill-base chain, or over zeros with STORM_EMPTY_BASE. */
static char base_kind(void)
{
	return getenv("STORM_EMPTY_BASE") ? 'Z' : 'B';
}

static int cmd_storm(struct ctx *c, uint64_t seed, uint64_t ops)
{
	uint64_t nblocks = qcow2_size(c->q) / BLOCK, rng = seed;
	_cleanup_free_ uint8_t *buf = malloc(64 * (size_t)BLOCK);
	struct model m;
	char line[64];
	int r;

	if (!buf || model_init(&m, nblocks, base_kind()) < 0)
		return -ENOMEM;

	for (uint64_t i = 0; ops == 0 || i < ops; i++) {
		struct op op = op_make(&rng, nblocks, c->cluster);

		r = op_run(c->q, &op, i + 1, &m, buf);
		if (r < 0) {
			fprintf(stderr, "storm: op %" PRIu64 " failed: %s (%s)\n", i, strerror(-r),
				qcow2_last_error(c->q));
			return r;
		}
		model_apply(&m, &op, i + 1, c->cluster, qcow2_size(c->q));
		if (op.kind == OP_FLUSH) {
			/* One write(2) per line: a kill leaves whole lines only. */
			int n = snprintf(line, sizeof(line), "synced %" PRIu64 "\n", i + 1);

			if (write(STDOUT_FILENO, line, (size_t)n) < 0)
				return -errno;
		}
	}
	free(m.kind);
	free(m.gen);
	return 0;
}

/*
 * After a crash: block by block, the disk holds the state after the first
 * `synced` operations, or something a later operation could have left.
 */
static int cmd_verify(struct ctx *c, uint64_t seed, uint64_t synced)
{
	const uint64_t horizon = synced + 2000000; /* more than a storm can run before the kill */
	uint64_t nblocks = qcow2_size(c->q) / BLOCK, rng = seed;
	_cleanup_free_ uint8_t *buf = malloc(BLOCK);
	_cleanup_free_ bool *later_zero = calloc(nblocks, 1);
	_cleanup_free_ uint64_t *later_gen = calloc(nblocks, sizeof(uint64_t));
	struct model m;
	uint64_t bad = 0;
	int r;

	if (!buf || !later_zero || !later_gen || model_init(&m, nblocks, base_kind()) < 0)
		return -ENOMEM;

	for (uint64_t i = 0; i < horizon; i++) {
		struct op op = op_make(&rng, nblocks, c->cluster);

		if (i < synced) {
			model_apply(&m, &op, i + 1, c->cluster, qcow2_size(c->q));
			continue;
		}
		/* After the sync point: remember what each block may have become. */
		for (uint64_t b = op.block; b < op.block + op.count; b++) {
			if (op.kind == OP_WRITE)
				later_gen[b] = MAX(later_gen[b], i + 1);
			else if (op.kind == OP_ZERO || op.kind == OP_DISCARD)
				later_zero[b] = true;
		}
	}

	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t g = 0;
		char k;

		r = qcow2_read(c->q, buf, BLOCK, b * BLOCK);
		if (r < 0) {
			fprintf(stderr, "verify: read failed: %s\n", qcow2_last_error(c->q));
			return r;
		}
		k = block_kind(buf, b, &g);
		if (k == m.kind[b] && (k != 'S' || g == m.gen[b]))
			continue;
		if (k == 'S' && g > synced && g <= later_gen[b])
			continue;
		if (k == 'Z' && later_zero[b])
			continue;
		if (bad++ < 10)
			fprintf(stderr,
				"verify: block %" PRIu64 " is '%c' gen %" PRIu64
				", expected '%c' gen %" PRIu64 " (synced %" PRIu64 ")\n",
				b, k ? k : '?', g, m.kind[b], m.gen[b], synced);
	}
	free(m.kind);
	free(m.gen);
	if (bad) {
		fprintf(stderr, "verify: %" PRIu64 " bad blocks\n", bad);
		return -EIO;
	}
	return 0;
}

static int cmd_fill_base(struct ctx *c)
{
	uint8_t buf[BLOCK];
	int r;

	for (uint64_t b = 0; b < qcow2_size(c->q) / BLOCK; b++) {
		block_fill(buf, "BASEBLK", b, 0);
		r = qcow2_write(c->q, buf, BLOCK, b * BLOCK);
		if (r < 0)
			return r;
	}
	return qcow2_flush(c->q);
}

/* ---- simple commands ---- */

static int file_copy(struct ctx *c, const char *path, bool export)
{
	_cleanup_free_ uint8_t *buf = malloc(1u << 20);
	_cleanup_close_ int fd = -1;
	uint64_t size = qcow2_size(c->q);
	int r;

	fd = export ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
		    : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf)
		return -errno;
	if (!export) {
		off_t end = lseek(fd, 0, SEEK_END);

		size = MIN(size, (uint64_t)end);
	}
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		uint64_t n = MIN(size - off, 1u << 20);

		if (export) {
			r = qcow2_read(c->q, buf, n, off);
			if (r < 0)
				return r;
			if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
				return -EIO;
		} else {
			if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
				return -EIO;
			r = qcow2_write(c->q, buf, n, off);
			if (r < 0)
				return r;
		}
	}
	if (export && ftruncate(fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static int run_command(struct ctx *c, char *line)
{
	char *argv[8];
	int argc = 0;
	uint64_t a[3] = {};
	_cleanup_free_ uint8_t *buf = NULL;
	int r;

	for (char *tok = strtok(line, " \t"); tok && argc < 8; tok = strtok(NULL, " \t"))
		argv[argc++] = tok;
	if (argc == 0)
		return -EINVAL;
	for (int i = 1; i < argc && i <= 3; i++)
		if (parse_num(argv[i], &a[i - 1]) < 0 && strcmp(argv[0], "export") != 0 &&
		    strcmp(argv[0], "import") != 0)
			return -EINVAL;

	if (strcmp(argv[0], "write") == 0 && argc == 4) {
		buf = malloc(MAX(a[1], 1u));
		if (!buf)
			return -ENOMEM;
		memset(buf, (int)a[2], a[1]);
		return qcow2_write(c->q, buf, a[1], a[0]);
	}
	if (strcmp(argv[0], "read") == 0 && (argc == 3 || argc == 4)) {
		buf = malloc(MAX(a[1], 1u));
		if (!buf)
			return -ENOMEM;
		r = qcow2_read(c->q, buf, a[1], a[0]);
		if (r < 0)
			return r;
		for (uint64_t i = 0; argc == 4 && i < a[1]; i++) {
			if (buf[i] != (uint8_t)a[2]) {
				fprintf(stderr,
					"read: byte at 0x%" PRIx64 " is 0x%02x, expected 0x%02x\n",
					a[0] + i, buf[i], (unsigned)(uint8_t)a[2]);
				return -EIO;
			}
		}
		return 0;
	}
	if (strcmp(argv[0], "dump") == 0 && argc == 3) {
		buf = malloc(MAX(a[1], 1u));
		if (!buf)
			return -ENOMEM;
		r = qcow2_read(c->q, buf, a[1], a[0]);
		if (r < 0)
			return r;
		return fwrite(buf, 1, a[1], stdout) == a[1] ? 0 : -EIO;
	}
	if (strcmp(argv[0], "zero") == 0 && argc == 3)
		return qcow2_write_zeroes(c->q, a[0], a[1]);
	if (strcmp(argv[0], "discard") == 0 && argc == 3)
		return qcow2_discard(c->q, a[0], a[1]);
	if (strcmp(argv[0], "flush") == 0 && argc == 1)
		return qcow2_flush(c->q);
	if (strcmp(argv[0], "commit") == 0 && argc == 1) {
		struct qcow2_reason why;

		r = qcow2_commit(c->q, &why);
		if (r < 0)
			fprintf(stderr, "commit: %s\n", why.msg);
		return r;
	}
	if (strcmp(argv[0], "check") == 0 && argc == 1) {
		struct qcow2_check_result res;

		r = qcow2_check(c->q, &res);
		if (r < 0)
			return r;
		printf("check: %" PRIu64 " corruptions, %" PRIu64 " leaks, %" PRIu64 " clusters\n",
		       res.corruptions, res.leaks, res.checked_clusters);
		return res.corruptions ? -EUCLEAN : 0;
	}
	if (strcmp(argv[0], "export") == 0 && argc == 2)
		return file_copy(c, argv[1], true);
	if (strcmp(argv[0], "import") == 0 && argc == 2)
		return file_copy(c, argv[1], false);
	if (strcmp(argv[0], "storm") == 0 && argc == 3)
		return cmd_storm(c, a[0], a[1]);
	if (strcmp(argv[0], "verify") == 0 && argc == 3)
		return cmd_verify(c, a[0], a[1]);
	if (strcmp(argv[0], "fill-base") == 0 && argc == 1)
		return cmd_fill_base(c);
	return -EINVAL;
}

static int cmd_create(int argc, char **argv)
{
	struct qcow2_create_opts o = {};
	struct qcow2_reason why;
	uint64_t v;
	int c, r;

	while ((c = getopt(argc, argv, "s:b:F:c:r:")) != -1) {
		switch (c) {
		case 's':
			if (parse_num(optarg, &o.size) < 0)
				return 2;
			break;
		case 'b':
			o.backing = optarg;
			break;
		case 'F':
			o.backing_fmt = optarg;
			break;
		case 'c':
			if (parse_num(optarg, &v) < 0)
				return 2;
			o.cluster_size = (uint32_t)v;
			break;
		case 'r':
			if (parse_num(optarg, &v) < 0)
				return 2;
			o.refcount_bits = (uint32_t)v;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1)
		return 2;
	r = qcow2_create(argv[optind], &o, &why);
	if (r < 0) {
		fprintf(stderr, "qcow2-tool: create: %s\n", why.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_qcow2_ struct qcow2 *q = NULL;
	unsigned flags = QCOW2_OPEN_RW;
	struct qcow2_reason why;
	struct qcow2_info info;
	char *cmds[64];
	int ncmds = 0, c, r;

	if (argc > 1 && strcmp(argv[1], "create") == 0)
		return cmd_create(argc - 1, argv + 1);

	while ((c = getopt(argc, argv, "nwc:")) != -1) {
		switch (c) {
		case 'n':
			flags &= ~QCOW2_OPEN_RW;
			break;
		case 'w':
			flags |= QCOW2_OPEN_BACKING_RW;
			break;
		case 'c':
			if (ncmds == (int)ARRAY_SIZE(cmds))
				return 2;
			cmds[ncmds++] = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: qcow2-tool [-n] [-w] IMAGE -c CMD... | create ...\n");
		return 2;
	}

	r = qcow2_open(argv[optind], flags, &q, &why);
	if (r < 0) {
		fprintf(stderr, "qcow2-tool: %s: %s\n", argv[optind], why.msg);
		return 1;
	}

	r = qcow2_get_info(q, &info);
	if (r < 0) {
		fprintf(stderr, "qcow2-tool: %s: %s\n", argv[optind], qcow2_last_error(q));
		return 1;
	}
	for (int i = 0; i < ncmds; i++) {
		struct ctx ctx = {.q = q, .cluster = info.cluster_size};
		char line[256];

		snprintf(line, sizeof(line), "%s", cmds[i]);
		r = run_command(&ctx, line);
		if (r < 0) {
			fprintf(stderr, "qcow2-tool: '%s': %s%s%s\n", cmds[i], strerror(-r),
				qcow2_last_error(q)[0] ? ": " : "", qcow2_last_error(q));
			return 1;
		}
	}
	r = qcow2_flush(q);
	if (r < 0) {
		fprintf(stderr, "qcow2-tool: flush: %s\n", qcow2_last_error(q));
		return 1;
	}
	return 0;
}
