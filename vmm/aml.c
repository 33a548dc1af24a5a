// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "aml.h"

enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_METHOD_OP = 0x14,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_NOTIFY_OP = 0x86,
	AML_EXT_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82,
	AML_ROOT_CHAR = 0x5c,
};

/* Room reserved for a PkgLength before its size is known (up to 2^20 bytes). */
#define PKGLEN_RESERVED 3

void aml_init(struct aml *a, uint8_t *buf, size_t size)
{
	a->buf = buf;
	a->size = size;
	a->len = 0;
	a->error = 0;
}

void aml_bytes(struct aml *a, const void *data, size_t len)
{
	if (a->error)
		return;
	if (len > a->size - a->len) {
		a->error = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, data, len);
	a->len += len;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

static void aml_nameseg(struct aml *a, const char *name)
{
	if (strlen(name) != 4) {
		a->error = -EINVAL;
		return;
	}
	aml_bytes(a, name, 4);
}

static void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffffu) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_name_integer(struct aml *a, const char *name, uint64_t value)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, name);
	aml_integer(a, value);
}

void aml_name_string(struct aml *a, const char *name, const char *value)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, name);
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, value, strlen(value) + 1);
}

int64_t aml_eisaid(const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return -1;
	/* Three letters, 5 bits each, then four hex digits; stored big-endian. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -1;
		v = (v << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		v = (v << 4) | d;
	}
	v <<= 1; /* 31 bits used, bit 31 reserved as 0 */
	v >>= 1;
	return (int64_t)__builtin_bswap32(v);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *eisaid)
{
	int64_t v = aml_eisaid(eisaid);

	if (v < 0) {
		a->error = -EINVAL;
		return;
	}
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, name);
	aml_byte(a, AML_DWORD_PREFIX);
	aml_le(a, (uint64_t)v, 4);
}

static size_t pkg_begin(struct aml *a)
{
	size_t mark = a->len;
	uint8_t zeros[PKGLEN_RESERVED] = { 0 };

	aml_bytes(a, zeros, sizeof(zeros));
	return mark;
}

/*
 * Write the PkgLength at mark, which counts itself plus everything after
 * it, in the fewest bytes, and close the gap left by the reservation.
 */
void aml_end(struct aml *a, size_t mark)
{
	size_t body, total;
	uint8_t enc[4];
	unsigned n;

	if (a->error)
		return;
	body = a->len - mark - PKGLEN_RESERVED;
	if (body + 1 < 0x40) {
		n = 1;
		total = body + 1;
		enc[0] = (uint8_t)total;
	} else {
		n = body + 2 < 0x1000 ? 2 : 3;
		total = body + n;
		if (total >= (1u << 20)) {
			a->error = -E2BIG;
			return;
		}
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	memmove(a->buf + mark + n, a->buf + mark + PKGLEN_RESERVED, body);
	memcpy(a->buf + mark, enc, n);
	a->len = mark + n + body;
}

void aml_name_package(struct aml *a, const char *name, const uint64_t *values, uint32_t n)
{
	size_t mark;

	if (n > 255) {
		a->error = -EINVAL;
		return;
	}
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, name);
	aml_byte(a, AML_PACKAGE_OP);
	mark = pkg_begin(a);
	aml_byte(a, (uint8_t)n);
	for (uint32_t i = 0; i < n; i++)
		aml_integer(a, values[i]);
	aml_end(a, mark);
}

void aml_method_evt_notify(struct aml *a, const char *target, uint8_t value)
{
	size_t mark;

	/* "\\" then exactly two 4-character segments. */
	if (strlen(target) != 9 || target[0] != '\\') {
		a->error = -EINVAL;
		return;
	}
	aml_byte(a, AML_METHOD_OP);
	mark = pkg_begin(a);
	aml_nameseg(a, "_EVT");
	aml_byte(a, 0x01); /* MethodFlags: one argument, not serialized */
	aml_byte(a, AML_NOTIFY_OP);
	aml_byte(a, AML_ROOT_CHAR);
	aml_byte(a, AML_DUAL_NAME_PREFIX);
	aml_bytes(a, target + 1, 8);
	aml_byte(a, AML_BYTE_PREFIX);
	aml_byte(a, value);
	aml_end(a, mark);
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_SCOPE_OP);
	mark = pkg_begin(a);
	if (name[0] == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		name++;
	}
	aml_nameseg(a, name);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	mark = pkg_begin(a);
	aml_nameseg(a, name);
	return mark;
}

/*
 * Buffer(size){ descriptors..., EndTag }: the buffer size integer sits
 * between the PkgLength and the bytes, and is only known at the end, so
 * it is reserved as a WordConst and filled in by aml_crs_end().
 */
size_t aml_crs_begin(struct aml *a)
{
	size_t mark;

	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, "_CRS");
	aml_byte(a, AML_BUFFER_OP);
	mark = pkg_begin(a);
	aml_byte(a, AML_WORD_PREFIX);
	aml_le(a, 0, 2);
	return mark;
}

void aml_crs_end(struct aml *a, size_t mark)
{
	size_t size_pos = mark + PKGLEN_RESERVED + 1;
	size_t data_len;

	/* End tag: small item 0x79 with a zero checksum ("treat as valid"). */
	aml_byte(a, 0x79);
	aml_byte(a, 0x00);
	if (a->error)
		return;
	data_len = a->len - (size_pos + 2);
	a->buf[size_pos] = (uint8_t)data_len;
	a->buf[size_pos + 1] = (uint8_t)(data_len >> 8);
	aml_end(a, mark);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* I/O port descriptor: 16-bit decode, fixed min == max, alignment 1. */
	uint8_t d[8] = { 0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8),
			 (uint8_t)base, (uint8_t)(base >> 8), 0x01, len };

	aml_bytes(a, d, sizeof(d));
}

void aml_res_memory32(struct aml *a, uint32_t base, uint32_t len)
{
	/* Memory32Fixed, read-write. */
	aml_byte(a, 0x86);
	aml_le(a, 9, 2);
	aml_byte(a, 0x01);
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

void aml_res_interrupt_edge(struct aml *a, uint32_t gsi)
{
	/* Extended interrupt: flags bit0 consumer, bit1 edge; one interrupt. */
	aml_byte(a, 0x89);
	aml_le(a, 6, 2);
	aml_byte(a, 0x03);
	aml_byte(a, 0x01);
	aml_le(a, gsi, 4);
}
