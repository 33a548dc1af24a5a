// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the qcow2 open path: the input is an image file.
 * Whatever opens is then read (start, end and middle of the disk), mapped,
 * checked, and opened again for writing to take writes, zeroes, discards
 * and a flush. The backing chain is never opened: a fuzzed backing name
 * could point anywhere on the host.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The image lives in a memfd, reused across inputs; a harness may keep one. */
static int image_fd = -1;
static char image_path[64];

static void exercise_read(struct qcow2 *q, uint8_t *buf, size_t cap)
{
	uint64_t size = qcow2_size(q);
	const uint64_t spots[] = {0, size / 2, size > cap ? size - cap : 0};
	struct qcow2_extent e;
	struct qcow2_info info;
	struct qcow2_check_result res;

	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		uint64_t len = size - spots[i] < cap ? size - spots[i] : cap;

		if (len) {
			(void)!qcow2_read(q, buf, len, spots[i]);
			(void)!qcow2_map(q, spots[i], len, 0, &e);
		}
	}
	(void)!qcow2_get_info(q, &info);
	(void)!qcow2_check(q, &res);
}

static void exercise_write(struct qcow2 *q, uint8_t *buf, size_t cap)
{
	uint64_t size = qcow2_size(q);
	struct qcow2_extent e;

	if (!size)
		return;
	memset(buf, 0xa5, cap);
	(void)!qcow2_write(q, buf, size < 3000 ? size : 3000, 0);
	(void)!qcow2_write(q, buf, size < cap ? size : cap, size / 3);
	(void)!qcow2_write_zeroes(q, size / 2, size / 2 < cap ? size / 2 : cap);
	(void)!qcow2_discard(q, 0, size < cap ? size : cap);
	(void)!qcow2_map(q, 0, size, QCOW2_MAP_WRITE, &e);
	(void)!qcow2_flush(q);
	exercise_read(q, buf, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[64 << 10];
	struct qcow2_reason why;
	struct qcow2 *q = NULL;

	if (image_fd < 0) {
		image_fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
		if (image_fd < 0)
			abort();
		snprintf(image_path, sizeof(image_path), "/proc/self/fd/%d", image_fd);
	}
	if (ftruncate(image_fd, 0) < 0 || pwrite(image_fd, data, size, 0) != (ssize_t)size)
		abort();

	if (qcow2_open(image_path, QCOW2_OPEN_NO_BACKING, &q, &why) < 0) {
		/* Every refusal says why. */
		if (!why.msg[0])
			abort();
		return 0;
	}
	exercise_read(q, buf, sizeof(buf));
	qcow2_close(q);

	if (qcow2_open(image_path, QCOW2_OPEN_RW | QCOW2_OPEN_NO_BACKING, &q, &why) < 0)
		return 0;
	exercise_write(q, buf, sizeof(buf));
	qcow2_close(q);
	return 0;
}
