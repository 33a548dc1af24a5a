/* SPDX-License-Identifier: MIT */
/*
 * Logging for the edges of the program (main, API handlers, the run loop).
 * Libraries return errors instead of logging, except for rate-limited
 * debug/warn messages about guest behaviour, which have no caller to
 * return to.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum log_level {
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG_LEVEL_MAX,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __printf(2, 3);

/*
 * A token bucket: at most `burst` messages, refilled at one per
 * `interval_ms`. Callers keep one per message site (inside their device
 * or VM struct, never as a global), so a guest flooding one path cannot
 * flood the log.
 */
struct ratelimit {
	uint64_t last_ms;
	uint32_t tokens;
	uint32_t suppressed;
};

bool ratelimit_allow(struct ratelimit *rl);

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
