// SPDX-License-Identifier: MIT
/*
 * The Firecracker-compatible request bodies. Field names, required fields
 * and ranges follow Firecracker's API where it has the resource; fields
 * fvm cannot honour are refused with a reason instead of being ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api-parse.h"
#include "api-schema.h"
#include "util.h"

static int check_path_id(const char *what, const char *field, const char *path_id,
			 struct api_fault *f)
{
	if (api_id_valid(path_id))
		return 0;
	api_fault_set(f, "%s: the %s in the path must be 1 to %d characters from [A-Za-z0-9_-]",
		      what, field, VM_CONFIG_ID_MAX - 1);
	return -EINVAL;
}

static int check_same_id(const char *what, const char *field, const char *path_id,
			 const char *body_id, struct api_fault *f)
{
	if (strcmp(path_id, body_id) == 0)
		return 0;
	api_fault_set(f, "%s: %s '%s' in the body does not match '%s' in the path", what, field,
		      body_id, path_id);
	return -EINVAL;
}

/* ---- machine-config ---------------------------------------------------- */

static const char *const huge_pages_names[] = {
    [API_HUGE_PAGES_NONE] = "None",
    [API_HUGE_PAGES_TRANSPARENT] = "Transparent",
    [API_HUGE_PAGES_2M] = "2M",
    NULL,
};

static int parse_cpu_template(const char *what, const char *field, json_t *v, void *target,
			      struct api_fault *f)
{
	/* Firecracker's default; any real template would change CPUID behind our back. */
	if (json_is_string(v) && strcmp(json_string_value(v), "None") == 0)
		return 0;
	api_fault_set(f, "%s: '%s' is not supported: only \"None\" is accepted", what, field);
	return -EINVAL;
}

int api_parse_machine_config(const char *body, size_t len, struct api_machine_config *ret,
			     struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_U32(struct api_machine_config, "vcpu_count", vcpu_count, true, 1, VM_MAX_VCPUS),
	    F_U64(struct api_machine_config, "mem_size_mib", mem_size_mib, true, VM_MEM_MIN >> 20,
		  VM_MEM_MAX >> 20),
	    F_BOOL(struct api_machine_config, "smt", smt),
	    F_BOOL(struct api_machine_config, "track_dirty_pages", track_dirty_pages),
	    F_ENUM(struct api_machine_config, "huge_pages", huge_pages, false, huge_pages_names),
	    F_CUSTOM("cpu_template", false, parse_cpu_template),
	};
	struct api_machine_config mc = {.huge_pages = API_HUGE_PAGES_NONE};
	int r;

	r = api_schema_parse("machine-config", body, len, false, fields, ARRAY_SIZE(fields), &mc,
			     f);
	if (r < 0)
		return r;
	/* Two threads per core: an odd count would leave a sibling missing. */
	if (mc.smt && mc.vcpu_count > 1 && mc.vcpu_count % 2) {
		api_fault_set(f, "machine-config: with smt, vcpu_count must be 1 or even");
		return -EINVAL;
	}
	if (mc.huge_pages == API_HUGE_PAGES_2M && mc.mem_size_mib % 2) {
		api_fault_set(f, "machine-config: with 2M huge pages, mem_size_mib must be even");
		return -EINVAL;
	}
	*ret = mc;
	return 0;
}

/* ---- boot-source ------------------------------------------------------- */

static int parse_boot_args(const char *what, const char *field, json_t *v, void *target,
			   struct api_fault *f)
{
	struct api_boot_source *bs = target;
	const char *s = json_string_value(v);
	int r;

	if (!s) {
		api_fault_set(f, "%s: '%s' must be a string", what, field);
		return -EINVAL;
	}
	if (json_string_length(v) >= sizeof(bs->cmdline)) {
		api_fault_set(f, "%s: '%s' is longer than %zu bytes", what, field,
			      sizeof(bs->cmdline) - 1);
		return -EINVAL;
	}
	r = api_check_path(what, field, s, f);
	if (r < 0)
		return r;
	/* An explicit "" is a wish for an empty command line, unlike an absent field. */
	strcpy(bs->cmdline, s);
	bs->has_cmdline = true;
	return 0;
}

int api_parse_boot_source(const char *body, size_t len, struct api_boot_source *ret,
			  struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STR(struct api_boot_source, "kernel_image_path", kernel_path, true, 1,
		  api_check_path),
	    F_STR(struct api_boot_source, "initrd_path", initrd_path, false, 1, api_check_path),
	    F_CUSTOM("boot_args", false, parse_boot_args),
	};
	_cleanup_free_ struct api_boot_source *bs = calloc(1, sizeof(*bs));
	int r;

	if (!bs)
		return -ENOMEM;
	r = api_schema_parse("boot-source", body, len, false, fields, ARRAY_SIZE(fields), bs, f);
	if (r < 0)
		return r;
	memcpy(ret, bs, sizeof(*bs));
	return 0;
}

/* ---- drives ------------------------------------------------------------ */

int api_parse_drive(const char *path_id, const char *body, size_t len, struct vm_drive_config *ret,
		    struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STR(struct vm_drive_config, "drive_id", id, true, 1, api_check_id),
	    F_STR(struct vm_drive_config, "path_on_host", path, true, 1, api_check_path),
	    F_BOOL(struct vm_drive_config, "is_root_device", is_root),
	    F_BOOL(struct vm_drive_config, "is_read_only", read_only),
	    F_REFUSE("partuuid", "the root device is found by its virtio name"),
	    F_REFUSE("cache_type", "fvm always honours guest flushes"),
	    F_REFUSE("io_engine", "fvm always does block I/O through io_uring"),
	    F_REFUSE("rate_limiter", "no rate limiting yet"),
	    F_REFUSE("socket", "no vhost-user"),
	};
	_cleanup_free_ struct vm_drive_config *d = calloc(1, sizeof(*d));
	_cleanup_json_ json_t *doc = NULL;
	int r;

	if (!d)
		return -ENOMEM;
	r = check_path_id("drives", "drive_id", path_id, f);
	if (r < 0)
		return r;
	r = api_schema_load("drives", body, len, false, &doc, f);
	if (r < 0)
		return r;
	/* Firecracker requires is_root_device; so do we, so that clients stay portable. */
	if (!json_object_get(doc, "is_root_device")) {
		api_fault_set(f, "drives: missing required field 'is_root_device'");
		return -EINVAL;
	}
	r = api_schema_apply("drives", doc, fields, ARRAY_SIZE(fields), d, f);
	if (r < 0)
		return r;
	r = check_same_id("drives", "drive_id", path_id, d->id, f);
	if (r < 0)
		return r;
	memcpy(ret, d, sizeof(*d));
	return 0;
}

/* ---- network-interfaces ------------------------------------------------ */

static int parse_mac(const char *what, const char *field, json_t *v, void *target,
		     struct api_fault *f)
{
	struct vm_net_config *n = target;
	const char *s = json_string_value(v);
	unsigned int b[6];
	int end = 0;

	if (!s || strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 ||
	    end != 17) {
		api_fault_set(f, "%s: '%s' must look like \"06:00:ac:10:00:02\"", what, field);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++) {
		/* sscanf's %x skips a sign and spaces; insist on two hex digits. */
		if (!strchr("0123456789abcdefABCDEF", s[i * 3]) ||
		    !strchr("0123456789abcdefABCDEF", s[i * 3 + 1])) {
			api_fault_set(f, "%s: '%s' must look like \"06:00:ac:10:00:02\"", what,
				      field);
			return -EINVAL;
		}
	}
	if (b[0] & 1) {
		api_fault_set(f, "%s: '%s' is a multicast address", what, field);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)b[i];
	n->has_mac = true;
	return 0;
}

int api_parse_network_interface(const char *path_id, const char *body, size_t len,
				struct vm_net_config *ret, struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STR(struct vm_net_config, "iface_id", id, true, 1, api_check_id),
	    F_STRN(struct vm_net_config, "host_dev_name", tap_name, true, 1, API_IFNAME_MAX,
		   api_check_ifname),
	    F_CUSTOM("guest_mac", false, parse_mac),
	    /* fvm's own: what clones use, and the identity the guest agent applies. */
	    F_STRN(struct vm_net_config, "clone_host_dev_name", clone_tap_name, false, 1,
		   API_IFNAME_MAX, api_check_ifname),
	    F_STR(struct vm_net_config, "clone_netns", clone_netns, false, 1, api_check_path),
	    F_STR(struct vm_net_config, "guest_ip", guest_ip, false, 1, NULL),
	    F_STR(struct vm_net_config, "guest_gateway", guest_gateway, false, 1, NULL),
	    F_REFUSE("mtu", "the MTU is not advertised to the guest yet"),
	    F_REFUSE("rx_rate_limiter", "no rate limiting yet"),
	    F_REFUSE("tx_rate_limiter", "no rate limiting yet"),
	};
	struct vm_net_config n = {.tap_fd = -1};
	int r;

	r = check_path_id("network-interfaces", "iface_id", path_id, f);
	if (r < 0)
		return r;
	r = api_schema_parse("network-interfaces", body, len, false, fields, ARRAY_SIZE(fields), &n,
			     f);
	if (r < 0)
		return r;
	r = check_same_id("network-interfaces", "iface_id", path_id, n.id, f);
	if (r < 0)
		return r;
	*ret = n;
	return 0;
}

/* ---- vsock, entropy ---------------------------------------------------- */

static int accept_vsock_id(const char *what, const char *field, json_t *v, void *target,
			   struct api_fault *f)
{
	/* Deprecated in Firecracker and only a label there; accepted so old clients work. */
	if (json_is_string(v) && api_id_valid(json_string_value(v)))
		return 0;
	return api_check_id(what, field, "", f);
}

int api_parse_vsock(const char *body, size_t len, struct vm_vsock_config *ret, struct api_fault *f)
{
	/*
	 * The host side listens on uds_path and connects to "<uds_path>_<port>"
	 * for guest-initiated connections, so leave room for the port in sun_path.
	 */
	static const struct api_field fields[] = {
	    F_U32(struct vm_vsock_config, "guest_cid", guest_cid, true, 3, UINT32_MAX - 1),
	    F_STRN(struct vm_vsock_config, "uds_path", uds_path, true, 1,
		   API_SOCK_PATH_MAX - sizeof("_4294967295"), api_check_path),
	    F_CUSTOM("vsock_id", false, accept_vsock_id),
	};
	_cleanup_free_ struct vm_vsock_config *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	r = api_schema_parse("vsock", body, len, false, fields, ARRAY_SIZE(fields), v, f);
	if (r < 0)
		return r;
	v->enabled = true;
	memcpy(ret, v, sizeof(*v));
	return 0;
}

int api_parse_entropy(const char *body, size_t len, struct api_entropy_config *ret,
		      struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_REFUSE("rate_limiter", "no rate limiting yet"),
	};
	struct api_entropy_config e = {.enabled = true};
	int r;

	r = api_schema_parse("entropy", body, len, true, fields, ARRAY_SIZE(fields), &e, f);
	if (r < 0)
		return r;
	*ret = e;
	return 0;
}

/* ---- actions, vm state ------------------------------------------------- */

int api_parse_action(const char *body, size_t len, enum api_action *ret, struct api_fault *f)
{
	static const char *const names[] = {
	    [API_ACTION_INSTANCE_START] = "InstanceStart",
	    [API_ACTION_SEND_CTRL_ALT_DEL] = "SendCtrlAltDel",
	    [API_ACTION_FLUSH_METRICS] = "FlushMetrics",
	    NULL,
	};
	struct act {
		int type;
	};
	static const struct api_field fields[] = {
	    F_ENUM(struct act, "action_type", type, true, names),
	};
	struct act a = {0};
	int r;

	r = api_schema_parse("actions", body, len, false, fields, ARRAY_SIZE(fields), &a, f);
	if (r < 0)
		return r;
	*ret = (enum api_action)a.type;
	return 0;
}

int api_parse_vm_state(const char *body, size_t len, enum api_vm_target *ret, struct api_fault *f)
{
	static const char *const names[] = {
	    [API_VM_PAUSE] = "Paused",
	    [API_VM_RESUME] = "Resumed",
	    NULL,
	};
	struct st {
		int state;
	};
	static const struct api_field fields[] = {
	    F_ENUM(struct st, "state", state, true, names),
	};
	struct st s = {0};
	int r;

	r = api_schema_parse("vm", body, len, false, fields, ARRAY_SIZE(fields), &s, f);
	if (r < 0)
		return r;
	*ret = (enum api_vm_target)s.state;
	return 0;
}

int api_parse_commit(const char *path_id, const char *body, size_t len, struct api_fault *f)
{
	int r;

	r = check_path_id("drives", "drive_id", path_id, f);
	if (r < 0)
		return r;
	return api_schema_parse("drives commit", body, len, true, NULL, 0, NULL, f);
}
