// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_bytes = VM_MEM_DEFAULT;
	cfg->vcpus = 1;
}

static int validate_drives(const struct vm_config *cfg, const char **ret_reason)
{
	uint32_t roots = 0;

	if (cfg->nr_drives > VM_MAX_DRIVES) {
		*ret_reason = "at most 8 drives";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < cfg->nr_drives; i++) {
		const struct vm_drive_config *d = &cfg->drives[i];

		if (d->path[0] == '\0' || d->id[0] == '\0') {
			*ret_reason = "every drive needs a path and an id";
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (strcmp(cfg->drives[j].id, d->id) == 0) {
				*ret_reason = "two drives have the same id";
				return -EINVAL;
			}
		}
		roots += d->is_root;
	}
	if (roots > 1) {
		*ret_reason = "at most one drive can be the root device";
		return -EINVAL;
	}
	return 0;
}

int vm_config_expand(const char *pattern, uint32_t n, char *buf, size_t len)
{
	size_t out = 0;

	for (const char *p = pattern; *p;) {
		char piece[16];
		size_t plen;

		if (strncmp(p, "{n}", 3) == 0) {
			plen = (size_t)snprintf(piece, sizeof(piece), "%u", n);
			p += 3;
		} else if (*p == '{' || *p == '}') {
			return -EINVAL;
		} else {
			piece[0] = *p++;
			plen = 1;
		}
		if (out + plen >= len)
			return -ENAMETOOLONG;
		memcpy(buf + out, piece, plen);
		out += plen;
	}
	if (len == 0)
		return -ENAMETOOLONG;
	buf[out] = '\0';
	return 0;
}

/* A pattern must expand for any clone number. */
static bool pattern_ok(const char *pattern, size_t room)
{
	char buf[512];

	return room <= sizeof(buf) && vm_config_expand(pattern, UINT32_MAX, buf, room) == 0;
}

static int validate_nets(const struct vm_config *cfg, const char **ret_reason)
{
	if (cfg->nr_nets > VM_MAX_NET) {
		*ret_reason = "at most 4 network interfaces";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < cfg->nr_nets; i++) {
		const struct vm_net_config *n = &cfg->nets[i];

		if (n->id[0] == '\0' || (n->tap_name[0] == '\0' && !n->has_tap_fd)) {
			*ret_reason = "every network interface needs an id and a TAP";
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (strcmp(cfg->nets[j].id, n->id) == 0) {
				*ret_reason = "two network interfaces have the same id";
				return -EINVAL;
			}
		}
		/* 16 bytes is IFNAMSIZ, NUL included. */
		if (!pattern_ok(n->clone_tap_name, 16) || !pattern_ok(n->clone_netns, 256) ||
		    !pattern_ok(n->guest_ip, 48) || !pattern_ok(n->guest_gateway, 48)) {
			*ret_reason = "a clone pattern (TAP, netns, address) has a stray '{' or "
				      "is too long for a large clone number";
			return -EINVAL;
		}
	}
	if (cfg->vsock.enabled && (cfg->vsock.uds_path[0] == '\0' || cfg->vsock.guest_cid < 3)) {
		*ret_reason = "vsock needs a unix socket path and a guest CID of 3 or more";
		return -EINVAL;
	}
	return 0;
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
	if (validate_nets(cfg, ret_reason) < 0)
		return -EINVAL;
	return validate_drives(cfg, ret_reason);
}

const char *vm_config_cmdline(const struct vm_config *cfg, char *buf, size_t len)
{
	if (cfg->has_cmdline)
		return cfg->cmdline;
	snprintf(buf, len, "%s", VM_DEFAULT_CMDLINE);
	for (uint32_t i = 0; i < cfg->nr_drives && i < VM_MAX_DRIVES; i++)
		if (cfg->drives[i].is_root)
			snprintf(buf, len, "%s root=/dev/vda %s", VM_DEFAULT_CMDLINE,
				 cfg->drives[i].read_only ? "ro" : "rw");
	return buf;
}
