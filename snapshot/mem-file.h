/* SPDX-License-Identifier: MIT */
/*
 * The memory file beside a state file: guest RAM as one raw file, with
 * every page the guest never wrote (all zeroes) left as a hole, so a
 * 4 GiB guest that touched 200 MiB costs 200 MiB on disk. Restore maps it
 * MAP_PRIVATE, so pages are read lazily, on first touch.
 */
#pragma once

#include "memory.h"
#include "util.h"

/* Write all of guest RAM (low region first, as in the memfd). Atomic: temp file, fsync, rename. */
int memfile_write(const char *path, const struct guest_mem *mem) __must_check;

/*
 * Replace the mapping of guest RAM with a private mapping of the file,
 * which must be exactly mem->size bytes. The memfd stays, unused.
 */
int memfile_map_private(const char *path, struct guest_mem *mem) __must_check;
