/* SPDX-License-Identifier: MIT */
/* `fvm --config FILE`: a whole VM described in the API's schema. */
#pragma once

#include <stddef.h>

#include "api.h"

/*
 * Apply a config file's sections to *cfg (which holds the defaults or
 * earlier flags). Unknown sections, unknown fields and bad values are
 * -EINVAL with a reason naming the section; *cfg changes only on success.
 */
int api_parse_config_file(const char *json, size_t len, struct vm_config *cfg,
			  struct api_fault *f) __attribute__((warn_unused_result));
