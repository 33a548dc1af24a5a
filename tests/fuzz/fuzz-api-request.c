// SPDX-License-Identifier: MIT
/*
 * Fuzz the API's request handling without a socket: method + path + body
 * through api_dispatch(), i.e. the router, the state rules, every body
 * parser and every response writer, against a backend whose answers (state,
 * errors, exec output bytes) also come from the input.
 *
 * Input layout:
 *   byte 0   route selector: < 0xf0 picks a route from the table (its
 *            "{param}" filled from the input), otherwise the path is raw
 *   byte 1   method tweak (low 2 bits: 0 = the route's own method)
 *   byte 2   VM state reported by the backend (may be out of range)
 *   byte 3   backend behaviour: 0 succeed, else fail with an errno
 *   then     [path param or raw path] '\n' body
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-router.h"

struct fuzz_backend {
	enum vm_run_state state;
	int err;
	const uint8_t *data; /* exec output */
	size_t len;
};

static int answer(void *o, struct api_fault *f)
{
	struct fuzz_backend *b = o;

	if (b->err && (b->err & 1))
		api_fault_set(f, "fuzz failure %d", b->err);
	return -b->err;
}

static enum vm_run_state fz_state(void *o)
{
	return ((struct fuzz_backend *)o)->state;
}

static int fz_machine(void *o, const struct api_machine_config *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_boot(void *o, const struct api_boot_source *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_drive(void *o, const struct vm_drive_config *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_net(void *o, const struct vm_net_config *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_vsock(void *o, const struct vm_vsock_config *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_entropy(void *o, const struct api_entropy_config *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_action(void *o, enum api_action a, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_vm(void *o, enum api_vm_target t, struct api_fault *f)
{
	return answer(o, f);
}

/* Fill the configuration with input bytes: strings unterminated, counts wild. */
static int fz_config(void *o, struct api_vm_config *ret)
{
	struct fuzz_backend *b = o;
	uint8_t *p = (uint8_t *)ret;

	for (size_t i = 0; i < sizeof(*ret) && b->len; i++)
		p[i] = b->data[i % b->len];
	/* A backend writes real bools; any other byte in one is undefined in C. */
	ret->cfg.has_cmdline = p[0] & 1;
	ret->cfg.vsock.enabled = p[1] & 1;
	ret->smt = p[2] & 1;
	ret->track_dirty_pages = p[3] & 1;
	ret->entropy = p[4] & 1;
	for (int i = 0; i < VM_MAX_DRIVES; i++) {
		ret->cfg.drives[i].read_only = (p[5] >> (i % 8)) & 1;
		ret->cfg.drives[i].is_root = (p[6] >> (i % 8)) & 1;
	}
	for (int i = 0; i < VM_MAX_NET; i++)
		ret->cfg.nets[i].has_mac = (p[7] >> i) & 1;
	return answer(o, NULL);
}

static int fz_snap_create(void *o, const struct api_snapshot_create *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_snap_load(void *o, const struct api_snapshot_load *r, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_clones(struct fuzz_backend *b, struct api_clone_list *ret)
{
	uint8_t *p = (uint8_t *)ret->clones;

	ret->count = b->len ? b->data[0] : 0;
	for (size_t i = 0; i < 64 * sizeof(ret->clones[0]) && b->len; i++)
		p[i] = b->data[i % b->len];
	return 0;
}

static int fz_fork(void *o, const struct api_fork_request *r, struct api_clone_list *ret,
		   struct api_fault *f)
{
	fz_clones(o, ret);
	return answer(o, f);
}

static int fz_list(void *o, struct api_clone_list *ret)
{
	fz_clones(o, ret);
	return answer(o, NULL);
}

static int fz_exec(void *o, const struct api_exec_request *r, struct api_exec_result *ret,
		   struct api_fault *f)
{
	struct fuzz_backend *b = o;

	/* Raw input bytes as output: the UTF-8 repair must make them valid JSON. */
	ret->stdout_buf = malloc(b->len + 1);
	if (ret->stdout_buf && b->len)
		memcpy(ret->stdout_buf, b->data, b->len);
	ret->stdout_len = ret->stdout_buf ? b->len : 0;
	memset(ret->clone_name, 'c', sizeof(ret->clone_name));
	ret->signal = b->len ? b->data[0] : 0;
	return answer(o, f);
}

static int fz_commit(void *o, const char *id, struct api_fault *f)
{
	return answer(o, f);
}

static int fz_metrics(void *o, char *buf, size_t len)
{
	struct fuzz_backend *b = o;
	size_t n = b->len < len ? b->len : len;

	memcpy(buf, b->data, n);
	return b->err ? -b->err : (int)n;
}

static const struct api_backend_ops ops = {
    .get_state = fz_state,
    .put_machine_config = fz_machine,
    .put_boot_source = fz_boot,
    .put_drive = fz_drive,
    .put_network_interface = fz_net,
    .put_vsock = fz_vsock,
    .put_entropy = fz_entropy,
    .action = fz_action,
    .set_vm_state = fz_vm,
    .get_vm_config = fz_config,
    .snapshot_create = fz_snap_create,
    .snapshot_load = fz_snap_load,
    .fork = fz_fork,
    .list_clones = fz_list,
    .exec = fz_exec,
    .invoke = fz_exec,
    .disk_commit = fz_commit,
    .metrics = fz_metrics,
};

static const int errors[] = {0, EINVAL, ENOENT, EIO, ENOSYS, ETIMEDOUT, ENOMEM, EBUSY};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "PUT", "PATCH", "POST", "DELETE"};
	struct fuzz_backend b;
	struct api_ctx ctx = {&ops, &b, "fuzz", "0.0", NULL};
	struct api_response resp = {0};
	const uint8_t *nl, *rest, *end;
	char path[2048];
	const char *method;
	size_t head;

	if (size < 4)
		return 0;
	b.state = (enum vm_run_state)(data[2] % (VM_STATE_MAX + 1));
	b.err = errors[data[3] % (sizeof(errors) / sizeof(errors[0]))];
	rest = data + 4;
	size -= 4;
	end = rest + size;
	nl = memchr(rest, '\n', size);
	head = nl ? (size_t)(nl - rest) : size;
	if (head >= 512)
		head = 511;
	b.data = rest;
	b.len = size;

	if (data[0] < 0xf0) {
		const char *m, *pattern, *open, *close;
		size_t i = data[0] % api_route_count();

		api_route_describe(i, &m, &pattern);
		method = (data[1] & 3) ? methods[(data[1] >> 2) % 5] : m;
		open = strchr(pattern, '{');
		if (open) {
			close = strchr(open, '}');
			snprintf(path, sizeof(path), "%.*s%.*s%s", (int)(open - pattern), pattern,
				 (int)head, (const char *)rest, close + 1);
		} else {
			snprintf(path, sizeof(path), "%s", pattern);
		}
	} else {
		method = methods[data[1] % 5];
		memcpy(path, rest, head);
		path[head] = '\0';
	}
	/* The body follows the first newline; a NUL inside the path just ends it. */
	rest = nl ? nl + 1 : end;
	size = (size_t)(end - rest);

	if (api_dispatch(&ctx, api_method_parse(method), path, (const char *)rest, size, &resp) ==
	    0) {
		/* Every answer has a status and, with a body, a content type. */
		if (resp.status < 200 || resp.status > 599 || (resp.body && !resp.content_type))
			abort();
		api_response_release(&resp);
	}
	return 0;
}
