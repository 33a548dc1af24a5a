// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

/*
 * The one process-wide setting: the verbosity chosen on the command line.
 * It is read-mostly and does not belong to any VM.
 */
static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	current_level = level < LOG_LEVEL_MAX ? level : LOG_DEBUG;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[LOG_LEVEL_MAX] = {
		[LOG_ERR] = "error: ",
		[LOG_WARN] = "warning: ",
		[LOG_INFO] = "",
		[LOG_DEBUG] = "debug: ",
	};
	char line[1024];
	va_list ap;

	if (level > current_level)
		return;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so that lines from several threads never interleave. */
	fprintf(stderr, "fvm: %s%s\n", prefix[level], line);
}

enum { RATELIMIT_BURST = 10, RATELIMIT_INTERVAL_MS = 1000 };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool ratelimit_allow(struct ratelimit *rl)
{
	uint64_t now = now_ms();
	uint64_t refill;

	if (rl->last_ms == 0) {
		rl->tokens = RATELIMIT_BURST;
		rl->last_ms = now;
	}
	refill = (now - rl->last_ms) / RATELIMIT_INTERVAL_MS;
	if (refill > 0) {
		rl->tokens = (uint32_t)MIN((uint64_t)RATELIMIT_BURST, rl->tokens + refill);
		rl->last_ms += refill * RATELIMIT_INTERVAL_MS;
	}
	if (rl->tokens == 0) {
		rl->suppressed++;
		return false;
	}
	rl->tokens--;
	return true;
}
