/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
 * fvm's state files. x86-64 CPUs with SSE4.2 compute it in hardware, eight
 * bytes an instruction, which keeps it off the fork path's profile; others
 * get the same value bit by bit.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

static inline uint32_t crc32c_of(const void *data, size_t len)
{
	return crc32c_update(0, data, len);
}

/* The portable implementation, exposed so tests can compare the two. */
uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len);
