/* SPDX-License-Identifier: MIT */
/*
 * The typed description of one VM, filled from command-line flags, from a
 * JSON config file or from API requests (all three share this schema), and
 * consumed by the VMM. Plain data: no fds, no pointers into a live VM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	VM_CONFIG_PATH_MAX = 4096,
	VM_CONFIG_CMDLINE_MAX = 4096,
	VM_CONFIG_ID_MAX = 64,
	VM_MAX_VCPUS = 32,
	VM_MAX_DRIVES = 8,
	VM_MAX_NET = 4,
};

#define VM_MEM_MIN     (16ull << 20)
#define VM_MEM_MAX     (64ull << 30)
#define VM_MEM_DEFAULT (256ull << 20)

struct vm_drive_config {
	char id[VM_CONFIG_ID_MAX];
	char path[VM_CONFIG_PATH_MAX];
	/*
	 * Non-empty: the VM writes a qcow2 overlay here, backed by path
	 * (created at start when it does not exist), and path stays untouched.
	 */
	char overlay[VM_CONFIG_PATH_MAX];
	bool read_only;
	bool is_root;
};

/*
 * Patterns below may hold "{n}", replaced by a clone's number (the n of
 * its name "<prefix>-<n>"), so that every clone gets its own.
 */
struct vm_net_config {
	char id[VM_CONFIG_ID_MAX];
	char tap_name[64];
	/* A TAP opened by the caller (tap_name then only names it in messages). */
	int tap_fd;
	bool has_tap_fd;
	uint8_t mac[6];
	bool has_mac;
	/* Clones: the TAP to open, a pattern; empty: clones have no link. */
	char clone_tap_name[64];
	/* Clones: the network namespace (a path such as /run/netns/fvm-{n}) to open it in. */
	char clone_netns[256];
	/* The guest's IPv4 "address/prefix" and gateway, set by the guest agent (patterns). */
	char guest_ip[48];
	char guest_gateway[48];
};

struct vm_vsock_config {
	bool enabled;
	uint32_t guest_cid;
	char uds_path[VM_CONFIG_PATH_MAX];
};

struct vm_config {
	/* boot source */
	char kernel_path[VM_CONFIG_PATH_MAX];
	char initrd_path[VM_CONFIG_PATH_MAX];
	char cmdline[VM_CONFIG_CMDLINE_MAX];
	bool has_cmdline;

	/* machine */
	uint64_t mem_bytes;
	uint32_t vcpus;

	/* console: stdio when console_path is empty */
	char console_path[VM_CONFIG_PATH_MAX];

	struct vm_drive_config drives[VM_MAX_DRIVES];
	uint32_t nr_drives;
	struct vm_net_config nets[VM_MAX_NET];
	uint32_t nr_nets;
	struct vm_vsock_config vsock;
	bool rng; /* a virtio-rng device */
};

/*
 * Expand "{n}" in pattern with n into buf. -ENAMETOOLONG when it does
 * not fit, -EINVAL for a stray '{'.
 */
int vm_config_expand(const char *pattern, uint32_t n, char *buf, size_t len);

/* The defaults a VM gets before flags, a file or the API change anything. */
void vm_config_init(struct vm_config *cfg);

/* Check ranges and required fields; returns -EINVAL and a reason. */
int vm_config_validate(const struct vm_config *cfg, const char **ret_reason);

/* The command line used when none is given. */
#define VM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

/*
 * The kernel command line to boot with: the user's when given, verbatim;
 * otherwise VM_DEFAULT_CMDLINE, plus "root=/dev/vda rw" (or ro) when a
 * drive is the root device (it is attached first, so it is vda). Returns
 * cfg->cmdline or buf.
 */
const char *vm_config_cmdline(const struct vm_config *cfg, char *buf, size_t len);
