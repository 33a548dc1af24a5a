/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by every module: scoped cleanup, ownership transfer,
 * error-return conventions and size arithmetic.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define __must_check __attribute__((warn_unused_result))
#define __unused     __attribute__((unused))
#define __printf(a, b) __attribute__((format(printf, a, b)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KiB(x)	      ((uint64_t)(x) << 10)
#define MiB(x)	      ((uint64_t)(x) << 20)
#define GiB(x)	      ((uint64_t)(x) << 30)

#define ALIGN_UP(x, a)	 (((x) + ((a)-1)) & ~((typeof(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((typeof(x))(a)-1))
#define IS_ALIGNED(x, a) (((x) & ((typeof(x))(a)-1)) == 0)
#define MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MAX(a, b)	 ((a) > (b) ? (a) : (b))

/* Negative errno from the last failed libc call, never 0. */
static inline int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* True when [start, start + len) fits inside [0, limit) without overflow. */
static inline bool range_within(uint64_t start, uint64_t len, uint64_t limit)
{
	return start <= limit && len <= limit - start;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_(f)	 __attribute__((cleanup(f)))
#define _cleanup_free_	 _cleanup_(freep)
#define _cleanup_close_	 _cleanup_(closep)

/* Hand an owned pointer or fd over on the success path. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		typeof(p) _tmp = (p);                                                              \
		(p) = NULL;                                                                        \
		_tmp;                                                                              \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tmp = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tmp;                                                                              \
	})

/* Define a cleanup helper for a type with a NULL-accepting destructor. */
#define DEFINE_CLEANUP_FUNC(type, func)                                                            \
	static inline void func##p(type **p)                                                       \
	{                                                                                          \
		func(*p);                                                                          \
	}
