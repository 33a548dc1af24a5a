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
	char api_sock[108];
	char config_path[VM_CONFIG_PATH_MAX];
	bool show_help;
	bool show_version;
};

/*
 * Parse argv over base (NULL: the defaults), so that flags override a
 * config file. On failure returns -EINVAL and writes one line saying what
 * is wrong into `err`. A kernel is required unless --api-sock or
 * --config may still provide one (check_complete false).
 */
int fvm_args_parse(int argc, char **argv, const struct vm_config *base, bool check_complete,
		   struct fvm_args *ret_args, char *err, size_t err_len) __must_check;

/* "256M", "1G", "512K", "1048576B"; a bare number is MiB. */
int fvm_parse_size(const char *s, uint64_t *ret_bytes) __must_check;

extern const char fvm_usage[];
