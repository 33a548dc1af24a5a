/* SPDX-License-Identifier: MIT */
/* The fvm command line, parsed into a typed VM config. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

struct fvm_args {
	struct vm_config vm;
	enum log_level log_level;
	bool show_help;
	bool show_version;
};

/*
 * Parse argv. On failure returns -EINVAL and writes one line saying what
 * is wrong into `err`.
 */
int fvm_args_parse(int argc, char **argv, struct fvm_args *ret_args, char *err, size_t err_len)
	__must_check;

/* "256M", "1G", "512K", "1048576B"; a bare number is MiB. */
int fvm_parse_size(const char *s, uint64_t *ret_bytes) __must_check;

extern const char fvm_usage[];
