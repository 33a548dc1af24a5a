// SPDX-License-Identifier: MIT
/*
 * Handlers for the Firecracker-compatible resources: instance info,
 * machine configuration, boot source, devices, actions, VM state and the
 * full configuration export.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api-handlers.h"
#include "api-parse.h"
#include "util.h"

int api_h_get_info(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		   struct api_response *ret)
{
	enum vm_run_state s;
	int r;

	r = api_call_enter(ctx, API_CALL_GET_INFO, ret);
	if (r)
		return r < 0 ? r : 0;
	s = ctx->ops->get_state(ctx->opaque);
	api_call_leave(ctx, API_CALL_GET_INFO);
	return api_respond_json(ret, 200,
				json_pack("{ss ss ss ss}", "id", ctx->instance_id, "state",
					  api_state_name(s), "vmm_version", ctx->version,
					  "app_name", "fvm"));
}

int api_h_get_version(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		      struct api_response *ret)
{
	/* firecracker_version is what Firecracker clients read; it holds fvm's version. */
	return api_respond_json(
	    ret, 200,
	    json_pack("{ss ss}", "firecracker_version", ctx->version, "fvm_version", ctx->version));
}

/* ---- rendering the configuration --------------------------------------- */

static const char *const huge_pages_names[API_HUGE_PAGES_MAX] = {
    [API_HUGE_PAGES_NONE] = "None",
    [API_HUGE_PAGES_TRANSPARENT] = "Transparent",
    [API_HUGE_PAGES_2M] = "2M",
};

static json_t *machine_json(const struct api_vm_config *vc)
{
	enum api_huge_pages hp = vc->huge_pages < API_HUGE_PAGES_MAX ? vc->huge_pages : 0;

	return json_pack("{sI sI sb sb ss}", "vcpu_count", (json_int_t)vc->cfg.vcpus,
			 "mem_size_mib", (json_int_t)(vc->cfg.mem_bytes >> 20), "smt", vc->smt,
			 "track_dirty_pages", vc->track_dirty_pages, "huge_pages",
			 huge_pages_names[hp]);
}

static json_t *boot_json(const struct vm_config *c)
{
	json_t *o;

	if (!c->kernel_path[0])
		return json_null();
	o = json_pack("{ss}", "kernel_image_path", c->kernel_path);
	if (o && c->initrd_path[0])
		json_object_set_new(o, "initrd_path", json_string(c->initrd_path));
	if (o && c->has_cmdline)
		json_object_set_new(o, "boot_args", json_string(c->cmdline));
	return o;
}

static json_t *drives_json(const struct vm_config *c)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < MIN(c->nr_drives, (uint32_t)VM_MAX_DRIVES); i++) {
		const struct vm_drive_config *d = &c->drives[i];

		json_array_append_new(a, json_pack("{ss ss sb sb}", "drive_id", d->id,
						   "path_on_host", d->path, "is_root_device",
						   d->is_root, "is_read_only", d->read_only));
	}
	return a;
}

static json_t *nets_json(const struct vm_config *c)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < MIN(c->nr_nets, (uint32_t)VM_MAX_NET); i++) {
		const struct vm_net_config *n = &c->nets[i];
		json_t *o = json_pack("{ss ss}", "iface_id", n->id, "host_dev_name", n->tap_name);

		if (o && n->has_mac) {
			char mac[18];

			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			json_object_set_new(o, "guest_mac", json_string(mac));
		}
		/* fvm's own fields, when set. */
		if (o && n->clone_tap_name[0])
			json_object_set_new(o, "clone_host_dev_name", json_string(n->clone_tap_name));
		if (o && n->clone_netns[0])
			json_object_set_new(o, "clone_netns", json_string(n->clone_netns));
		if (o && n->guest_ip[0])
			json_object_set_new(o, "guest_ip", json_string(n->guest_ip));
		if (o && n->guest_gateway[0])
			json_object_set_new(o, "guest_gateway", json_string(n->guest_gateway));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *vsock_json(const struct vm_config *c)
{
	if (!c->vsock.enabled)
		return json_null();
	return json_pack("{sI ss}", "guest_cid", (json_int_t)c->vsock.guest_cid, "uds_path",
			 c->vsock.uds_path);
}

/* Fetch the configuration from the backend into a heap copy (it is ~50 KiB). */
static int fetch_config(const struct api_ctx *ctx, enum api_call c, struct api_vm_config **out,
			struct api_response *ret)
{
	_cleanup_free_ struct api_vm_config *vc = calloc(1, sizeof(*vc));
	int r;

	if (!vc)
		return -ENOMEM;
	r = api_call_enter(ctx, c, ret);
	if (r)
		return r;
	r = ctx->ops->get_vm_config(ctx->opaque, vc);
	api_call_leave(ctx, c);
	if (r < 0) {
		r = api_respond_op_error(ret, c, r, NULL);
		return r < 0 ? r : 1;
	}
	/* A backend bug must not make us read past the arrays. */
	vc->cfg.kernel_path[sizeof(vc->cfg.kernel_path) - 1] = '\0';
	vc->cfg.initrd_path[sizeof(vc->cfg.initrd_path) - 1] = '\0';
	vc->cfg.cmdline[sizeof(vc->cfg.cmdline) - 1] = '\0';
	vc->cfg.vsock.uds_path[sizeof(vc->cfg.vsock.uds_path) - 1] = '\0';
	for (uint32_t i = 0; i < VM_MAX_DRIVES; i++) {
		vc->cfg.drives[i].id[sizeof(vc->cfg.drives[i].id) - 1] = '\0';
		vc->cfg.drives[i].path[sizeof(vc->cfg.drives[i].path) - 1] = '\0';
	}
	for (uint32_t i = 0; i < VM_MAX_NET; i++) {
		vc->cfg.nets[i].id[sizeof(vc->cfg.nets[i].id) - 1] = '\0';
		vc->cfg.nets[i].tap_name[sizeof(vc->cfg.nets[i].tap_name) - 1] = '\0';
	}
	*out = TAKE_PTR(vc);
	return 0;
}

int api_h_get_machine_config(const struct api_ctx *ctx, const char *id, const char *body,
			     size_t len, struct api_response *ret)
{
	_cleanup_free_ struct api_vm_config *vc = NULL;
	int r;

	r = fetch_config(ctx, API_CALL_GET_MACHINE_CONFIG, &vc, ret);
	if (r)
		return r < 0 ? r : 0;
	return api_respond_json(ret, 200, machine_json(vc));
}

int api_h_get_vm_config(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
			struct api_response *ret)
{
	_cleanup_free_ struct api_vm_config *vc = NULL;
	int r;

	r = fetch_config(ctx, API_CALL_GET_VM_CONFIG, &vc, ret);
	if (r)
		return r < 0 ? r : 0;
	return api_respond_json(ret, 200,
				json_pack("{so so so so so so}", "boot-source", boot_json(&vc->cfg),
					  "machine-config", machine_json(vc), "drives",
					  drives_json(&vc->cfg), "network-interfaces",
					  nets_json(&vc->cfg), "vsock", vsock_json(&vc->cfg),
					  "entropy", vc->entropy ? json_object() : json_null()));
}

/* ---- PUT handlers ------------------------------------------------------ */

/*
 * The shape every configuration PUT shares: parse, check the rules, call
 * the op, answer 204. The op is called through a small adapter because
 * each one takes a different request type.
 */
typedef int (*put_call_fn)(const struct api_ctx *ctx, const void *req, struct api_fault *f);

static int run_put(const struct api_ctx *ctx, enum api_call c, put_call_fn call, const void *req,
		   struct api_response *ret)
{
	struct api_fault f = {""};
	int r;

	r = api_call_enter(ctx, c, ret);
	if (r)
		return r < 0 ? r : 0;
	r = call(ctx, req, &f);
	api_call_leave(ctx, c);
	if (r < 0)
		return api_respond_op_error(ret, c, r, &f);
	return api_respond_empty(ret, 204);
}

static int call_machine(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_machine_config(ctx->opaque, req, f);
}

int api_h_put_machine_config(const struct api_ctx *ctx, const char *id, const char *body,
			     size_t len, struct api_response *ret)
{
	struct api_machine_config req;
	struct api_fault f = {""};
	int r;

	r = api_parse_machine_config(body, len, &req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_MACHINE_CONFIG, call_machine, &req, ret);
}

static int call_boot(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_boot_source(ctx->opaque, req, f);
}

int api_h_put_boot_source(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
			  struct api_response *ret)
{
	_cleanup_free_ struct api_boot_source *req = malloc(sizeof(*req));
	struct api_fault f = {""};
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_boot_source(body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_BOOT_SOURCE, call_boot, req, ret);
}

static int call_drive(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_drive(ctx->opaque, req, f);
}

int api_h_put_drive(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		    struct api_response *ret)
{
	_cleanup_free_ struct vm_drive_config *req = malloc(sizeof(*req));
	struct api_fault f = {""};
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_drive(id, body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_DRIVE, call_drive, req, ret);
}

static int call_net(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_network_interface(ctx->opaque, req, f);
}

int api_h_put_net(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		  struct api_response *ret)
{
	struct vm_net_config req;
	struct api_fault f = {""};
	int r;

	r = api_parse_network_interface(id, body, len, &req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_NET, call_net, &req, ret);
}

static int call_vsock(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_vsock(ctx->opaque, req, f);
}

int api_h_put_vsock(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		    struct api_response *ret)
{
	_cleanup_free_ struct vm_vsock_config *req = malloc(sizeof(*req));
	struct api_fault f = {""};
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_vsock(body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_VSOCK, call_vsock, req, ret);
}

static int call_entropy(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->put_entropy(ctx->opaque, req, f);
}

int api_h_put_entropy(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		      struct api_response *ret)
{
	struct api_entropy_config req;
	struct api_fault f = {""};
	int r;

	r = api_parse_entropy(body, len, &req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_PUT_ENTROPY, call_entropy, &req, ret);
}

static int call_action(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->action(ctx->opaque, *(const enum api_action *)req, f);
}

int api_h_put_actions(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		      struct api_response *ret)
{
	static const enum api_call calls[API_ACTION_MAX] = {
	    [API_ACTION_INSTANCE_START] = API_CALL_INSTANCE_START,
	    [API_ACTION_SEND_CTRL_ALT_DEL] = API_CALL_SEND_CTRL_ALT_DEL,
	    [API_ACTION_FLUSH_METRICS] = API_CALL_FLUSH_METRICS,
	};
	enum api_action a;
	struct api_fault f = {""};
	int r;

	r = api_parse_action(body, len, &a, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, calls[a], call_action, &a, ret);
}

static int call_vm_state(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->set_vm_state(ctx->opaque, *(const enum api_vm_target *)req, f);
}

int api_h_patch_vm(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		   struct api_response *ret)
{
	enum api_vm_target t;
	struct api_fault f = {""};
	int r;

	r = api_parse_vm_state(body, len, &t, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, t == API_VM_PAUSE ? API_CALL_PAUSE : API_CALL_RESUME, call_vm_state, &t,
		       ret);
}

static int call_snap_create(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->snapshot_create(ctx->opaque, req, f);
}

int api_h_snapshot_create(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
			  struct api_response *ret)
{
	_cleanup_free_ struct api_snapshot_create *req = malloc(sizeof(*req));
	struct api_fault f = {""};
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_snapshot_create(body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_SNAPSHOT_CREATE, call_snap_create, req, ret);
}

static int call_snap_load(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->snapshot_load(ctx->opaque, req, f);
}

int api_h_snapshot_load(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
			struct api_response *ret)
{
	_cleanup_free_ struct api_snapshot_load *req = malloc(sizeof(*req));
	struct api_fault f = {""};
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_snapshot_load(body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_SNAPSHOT_LOAD, call_snap_load, req, ret);
}

static int call_commit(const struct api_ctx *ctx, const void *req, struct api_fault *f)
{
	return ctx->ops->disk_commit(ctx->opaque, req, f);
}

int api_h_disk_commit(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		      struct api_response *ret)
{
	struct api_fault f = {""};
	int r;

	r = api_parse_commit(id, body, len, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	return run_put(ctx, API_CALL_DISK_COMMIT, call_commit, id, ret);
}
