// SPDX-License-Identifier: MIT
/*
 * A VM config file (`fvm --config FILE`) in the API's own schema: one
 * top-level key per API resource, each parsed by the same parser as the
 * matching request, so a file and a sequence of API calls can describe
 * exactly the same VM.
 *
 *   { "boot-source": {...}, "machine-config": {...},
 *     "drives": [ {...}, ... ], "network-interfaces": [ {...}, ... ],
 *     "vsock": {...}, "entropy": {...} }
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "api-config.h"
#include "api-parse.h"
#include "util.h"

typedef int (*section_fn)(struct vm_config *cfg, const char *body, size_t len,
			  struct api_fault *f);

static int apply_machine(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	struct api_machine_config mc;
	int r = api_parse_machine_config(body, len, &mc, f);

	if (r < 0)
		return r;
	cfg->vcpus = mc.vcpu_count;
	cfg->mem_bytes = mc.mem_size_mib << 20;
	return 0;
}

static int apply_boot(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	struct api_boot_source bs;
	int r = api_parse_boot_source(body, len, &bs, f);

	if (r < 0)
		return r;
	memcpy(cfg->kernel_path, bs.kernel_path, sizeof(cfg->kernel_path));
	memcpy(cfg->initrd_path, bs.initrd_path, sizeof(cfg->initrd_path));
	memcpy(cfg->cmdline, bs.cmdline, sizeof(cfg->cmdline));
	cfg->has_cmdline = bs.has_cmdline;
	return 0;
}

static int apply_drive(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	struct vm_drive_config d;
	int r = api_parse_drive(NULL, body, len, &d, f);

	if (r < 0)
		return r;
	for (uint32_t i = 0; i < cfg->nr_drives; i++) {
		if (strcmp(cfg->drives[i].id, d.id) == 0) {
			api_fault_set(f, "drive '%s' is listed twice", d.id);
			return -EINVAL;
		}
	}
	if (cfg->nr_drives == VM_MAX_DRIVES) {
		api_fault_set(f, "at most %d drives", VM_MAX_DRIVES);
		return -EINVAL;
	}
	cfg->drives[cfg->nr_drives++] = d;
	return 0;
}

static int apply_net(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	struct vm_net_config n;
	int r = api_parse_network_interface(NULL, body, len, &n, f);

	if (r < 0)
		return r;
	if (cfg->nr_nets == VM_MAX_NET) {
		api_fault_set(f, "at most %d network interfaces", VM_MAX_NET);
		return -EINVAL;
	}
	cfg->nets[cfg->nr_nets++] = n;
	return 0;
}

static int apply_vsock(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	return api_parse_vsock(body, len, &cfg->vsock, f);
}

static int apply_entropy(struct vm_config *cfg, const char *body, size_t len, struct api_fault *f)
{
	struct api_entropy_config e;

	return api_parse_entropy(body, len, &e, f);
}

static const struct {
	const char *key;
	section_fn apply;
	bool is_list;
} sections[] = {
	{ "machine-config", apply_machine, false },
	{ "boot-source", apply_boot, false },
	{ "drives", apply_drive, true },
	{ "network-interfaces", apply_net, true },
	{ "vsock", apply_vsock, false },
	{ "entropy", apply_entropy, false },
};

static int apply_value(struct vm_config *cfg, const char *key, section_fn apply, json_t *v,
		       struct api_fault *f)
{
	char *body = json_dumps(v, JSON_COMPACT);
	int r;

	if (!body)
		return -ENOMEM;
	r = apply(cfg, body, strlen(body), f);
	free(body);
	if (r < 0) {
		char inner[API_FAULT_MAX];

		memcpy(inner, f->message, sizeof(inner));
		api_fault_set(f, "\"%s\": %s", key, inner);
	}
	return r;
}

static int apply_section(struct vm_config *cfg, size_t i, json_t *v, struct api_fault *f)
{
	size_t idx;
	json_t *item;
	int r;

	if (!sections[i].is_list)
		return apply_value(cfg, sections[i].key, sections[i].apply, v, f);
	if (!json_is_array(v)) {
		api_fault_set(f, "\"%s\" must be a list", sections[i].key);
		return -EINVAL;
	}
	json_array_foreach(v, idx, item) {
		r = apply_value(cfg, sections[i].key, sections[i].apply, item, f);
		if (r < 0)
			return r;
	}
	return 0;
}

int api_parse_config_file(const char *json, size_t len, struct vm_config *cfg,
			  struct api_fault *f)
{
	struct vm_config tmp = *cfg;
	json_error_t err;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	const char *key;
	json_t *v;
	int r = 0;

	if (!root) {
		api_fault_set(f, "invalid JSON at line %d: %s", err.line, err.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		api_fault_set(f, "the config must be a JSON object");
		json_decref(root);
		return -EINVAL;
	}
	json_object_foreach(root, key, v) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(sections); i++)
			if (strcmp(key, sections[i].key) == 0)
				break;
		if (i == ARRAY_SIZE(sections)) {
			api_fault_set(f, "unknown section \"%s\"", key);
			r = -EINVAL;
			break;
		}
		r = apply_section(&tmp, i, v, f);
		if (r < 0)
			break;
	}
	json_decref(root);
	if (r == 0)
		*cfg = tmp;
	return r;
}
