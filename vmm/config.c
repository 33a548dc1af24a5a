// SPDX-License-Identifier: MIT
#include <string.h>

#include "config.h"
#include "util.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_bytes = VM_MEM_DEFAULT;
	cfg->vcpus = 1;
}

int vm_config_validate(const struct vm_config *cfg, const char **ret_reason)
{
	if (cfg->kernel_path[0] == '\0') {
		*ret_reason = "no kernel given (--kernel PATH)";
		return -EINVAL;
	}
	if (cfg->vcpus < 1 || cfg->vcpus > VM_MAX_VCPUS) {
		*ret_reason = "vCPU count must be between 1 and 32";
		return -EINVAL;
	}
	if (cfg->mem_bytes < VM_MEM_MIN || cfg->mem_bytes > VM_MEM_MAX) {
		*ret_reason = "memory size must be between 16 MiB and 64 GiB";
		return -EINVAL;
	}
	if (!IS_ALIGNED(cfg->mem_bytes, 4096ull)) {
		*ret_reason = "memory size must be a multiple of 4 KiB";
		return -EINVAL;
	}
	return 0;
}
