// SPDX-License-Identifier: MIT
/*
 * The route table, the call rules (which VM states allow which call, which
 * op serves it, which calls are serialized) and the dispatch loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api-handlers.h"
#include "util.h"

#define ST(s) (1u << (s))
#define ANY_STATE                                                                                  \
	(ST(VM_STATE_NOT_STARTED) | ST(VM_STATE_RUNNING) | ST(VM_STATE_PAUSED) |                   \
	 ST(VM_STATE_STOPPED))
#define PRE_BOOT ST(VM_STATE_NOT_STARTED)
#define STARTED	 (ST(VM_STATE_RUNNING) | ST(VM_STATE_PAUSED))
#define OP(name) .op_offset = offsetof(struct api_backend_ops, name), .op_name = #name
#define NO_OP	 .op_offset = SIZE_MAX

/*
 * THE state table. Every rule about when a call may be made lives here,
 * with the reason a client is told when it is refused.
 */
static const struct api_call_rule {
	const char *what;
	size_t op_offset;
	const char *op_name;
	uint32_t states;
	const char *when;
	bool serial;
} call_rules[API_CALL_MAX] = {
    [API_CALL_GET_INFO] = {"GET /", NO_OP, .states = ANY_STATE},
    [API_CALL_GET_VERSION] = {"GET /version", NO_OP, .states = ANY_STATE},
    [API_CALL_GET_MACHINE_CONFIG] = {"GET /machine-config", OP(get_vm_config), .states = ANY_STATE},
    [API_CALL_PUT_MACHINE_CONFIG] = {"PUT /machine-config", OP(put_machine_config),
				     .states = PRE_BOOT, .when = "before the VM starts",
				     .serial = true},
    [API_CALL_PUT_BOOT_SOURCE] = {"PUT /boot-source", OP(put_boot_source), .states = PRE_BOOT,
				  .when = "before the VM starts", .serial = true},
    [API_CALL_PUT_DRIVE] = {"PUT /drives/{drive_id}", OP(put_drive), .states = PRE_BOOT,
			    .when = "before the VM starts", .serial = true},
    [API_CALL_PUT_NET] = {"PUT /network-interfaces/{iface_id}", OP(put_network_interface),
			  .states = PRE_BOOT, .when = "before the VM starts", .serial = true},
    [API_CALL_PUT_VSOCK] = {"PUT /vsock", OP(put_vsock), .states = PRE_BOOT,
			    .when = "before the VM starts", .serial = true},
    [API_CALL_PUT_ENTROPY] = {"PUT /entropy", OP(put_entropy), .states = PRE_BOOT,
			      .when = "before the VM starts", .serial = true},
    [API_CALL_INSTANCE_START] = {"InstanceStart", OP(action), .states = PRE_BOOT,
				 .when = "once, before the VM has started", .serial = true},
    /* The guest must be running to see the key press. */
    [API_CALL_SEND_CTRL_ALT_DEL] = {"SendCtrlAltDel", OP(action), .states = ST(VM_STATE_RUNNING),
				    .when = "while the VM is running", .serial = true},
    [API_CALL_FLUSH_METRICS] = {"FlushMetrics", OP(action), .states = ANY_STATE, .serial = true},
    /* Pausing a paused VM (or resuming a running one) is a harmless no-op. */
    [API_CALL_PAUSE] = {"PATCH /vm Paused", OP(set_vm_state), .states = STARTED,
			.when = "after the VM has started", .serial = true},
    [API_CALL_RESUME] = {"PATCH /vm Resumed", OP(set_vm_state), .states = STARTED,
			 .when = "after the VM has started", .serial = true},
    [API_CALL_GET_VM_CONFIG] = {"GET /vm/config", OP(get_vm_config), .states = ANY_STATE},
    /* A consistent snapshot needs the vCPUs and devices quiet. */
    [API_CALL_SNAPSHOT_CREATE] = {"PUT /snapshot/create", OP(snapshot_create),
				  .states = ST(VM_STATE_PAUSED), .when = "while the VM is paused",
				  .serial = true},
    [API_CALL_SNAPSHOT_LOAD] = {"PUT /snapshot/load", OP(snapshot_load), .states = PRE_BOOT,
				.when = "on a VM that has not started", .serial = true},
    /*
     * A paused VM stays paused (a template); a running one is paused for
     * the fork and then runs on, on memory the clones do not share.
     */
    [API_CALL_FORK] = {"POST /fork", OP(fork),
		       .states = ST(VM_STATE_RUNNING) | ST(VM_STATE_PAUSED),
		       .when = "while the VM is running or paused", .serial = true},
    [API_CALL_GET_CLONES] = {"GET /clones", OP(list_clones), .states = ANY_STATE},
    /* The agent answers only in a running guest; exec may be slow, so not serial. */
    [API_CALL_EXEC] = {"POST /exec", OP(exec), .states = ST(VM_STATE_RUNNING),
		       .when = "while the VM is running"},
    [API_CALL_INVOKE] = {"POST /invoke", OP(invoke), .states = ST(VM_STATE_PAUSED),
			 .when = "while the VM is paused (it serves as a template)"},
    /* Merging an overlay under a writing guest would tear it. */
    [API_CALL_DISK_COMMIT] = {"PUT /drives/{drive_id}/commit", OP(disk_commit),
			      .states = ST(VM_STATE_NOT_STARTED) | ST(VM_STATE_PAUSED) |
					ST(VM_STATE_STOPPED),
			      .when = "while the guest cannot write (paused, stopped or "
				      "not started)",
			      .serial = true},
    [API_CALL_GET_METRICS] = {"GET /metrics", OP(metrics), .states = ANY_STATE},
};

struct api_route {
	enum api_method method;
	const char *pattern; /* "{name}" matches one path segment */
	api_handler_fn handle;
};

static const struct api_route routes[] = {
    {API_METHOD_GET, "/", api_h_get_info},
    {API_METHOD_GET, "/version", api_h_get_version},
    {API_METHOD_GET, "/machine-config", api_h_get_machine_config},
    {API_METHOD_PUT, "/machine-config", api_h_put_machine_config},
    {API_METHOD_PUT, "/boot-source", api_h_put_boot_source},
    {API_METHOD_PUT, "/drives/{drive_id}", api_h_put_drive},
    {API_METHOD_PUT, "/drives/{drive_id}/commit", api_h_disk_commit},
    {API_METHOD_PUT, "/network-interfaces/{iface_id}", api_h_put_net},
    {API_METHOD_PUT, "/vsock", api_h_put_vsock},
    {API_METHOD_PUT, "/entropy", api_h_put_entropy},
    {API_METHOD_PUT, "/actions", api_h_put_actions},
    {API_METHOD_PATCH, "/vm", api_h_patch_vm},
    {API_METHOD_GET, "/vm/config", api_h_get_vm_config},
    {API_METHOD_PUT, "/snapshot/create", api_h_snapshot_create},
    {API_METHOD_PUT, "/snapshot/load", api_h_snapshot_load},
    {API_METHOD_POST, "/fork", api_h_fork},
    {API_METHOD_GET, "/clones", api_h_get_clones},
    {API_METHOD_POST, "/exec", api_h_exec},
    {API_METHOD_POST, "/invoke", api_h_invoke},
    {API_METHOD_GET, "/metrics", api_h_get_metrics},
};

static const char *const method_names[API_METHOD_MAX] = {
    [API_METHOD_GET] = "GET",	[API_METHOD_PUT] = "PUT",     [API_METHOD_PATCH] = "PATCH",
    [API_METHOD_POST] = "POST", [API_METHOD_OTHER] = "OTHER",
};

enum api_method api_method_parse(const char *s)
{
	for (int m = 0; m < API_METHOD_OTHER; m++)
		if (strcmp(s, method_names[m]) == 0)
			return (enum api_method)m;
	return API_METHOD_OTHER;
}

const char *api_method_name(enum api_method m)
{
	return m < API_METHOD_MAX ? method_names[m] : "OTHER";
}

const char *api_state_name(enum vm_run_state s)
{
	static const char *const names[VM_STATE_MAX] = {
	    [VM_STATE_NOT_STARTED] = "Not started",
	    [VM_STATE_RUNNING] = "Running",
	    [VM_STATE_PAUSED] = "Paused",
	    [VM_STATE_STOPPED] = "Stopped",
	};

	return s < VM_STATE_MAX ? names[s] : "Unknown";
}

size_t api_route_count(void)
{
	return ARRAY_SIZE(routes);
}

void api_route_describe(size_t i, const char **ret_method, const char **ret_pattern)
{
	*ret_method = method_names[routes[i].method];
	*ret_pattern = routes[i].pattern;
}

/* ---- responses --------------------------------------------------------- */

void api_response_release(struct api_response *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
}

int api_respond_json(struct api_response *ret, unsigned int status, json_t *doc)
{
	char *s;

	if (!doc)
		return -ENOMEM;
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		return -ENOMEM;
	*ret = (struct api_response){
	    .status = status,
	    .content_type = "application/json",
	    .body = s,
	    .body_len = strlen(s),
	};
	return 0;
}

int api_respond_empty(struct api_response *ret, unsigned int status)
{
	*ret = (struct api_response){.status = status};
	return 0;
}

int api_respond_fault(struct api_response *ret, unsigned int status, const char *fmt, ...)
{
	char msg[API_FAULT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_respond_json(ret, status, json_pack("{ss}", "fault_message", msg));
}

unsigned int api_status_from_errno(int err)
{
	switch (err) {
	case -EINVAL:
	case -ENOENT:
	case -EEXIST:
	case -EBUSY:
	case -EPERM:
	case -EACCES:
	case -ENOSPC:
	case -E2BIG:
	case -ERANGE:
	case -ENAMETOOLONG:
	case -ENOTDIR:
	case -EISDIR:
		return 400;
	case -ENOSYS:
	case -EOPNOTSUPP:
		return 501;
	case -ETIMEDOUT:
		return 504;
	default:
		return 500;
	}
}

int api_respond_op_error(struct api_response *ret, enum api_call c, int err,
			 const struct api_fault *f)
{
	if (err >= 0)
		err = -EIO;
	if (f && f->message[0])
		return api_respond_fault(ret, api_status_from_errno(err), "%s", f->message);
	return api_respond_fault(ret, api_status_from_errno(err), "%s failed: %s",
				 call_rules[c].what, strerror(-err));
}

int api_respond_parse_error(struct api_response *ret, int err, const struct api_fault *f)
{
	if (err == -ENOMEM)
		return api_respond_fault(ret, 500, "out of memory");
	return api_respond_fault(ret, 400, "%s", f->message);
}

/* ---- call rules -------------------------------------------------------- */

static bool op_present(const struct api_backend_ops *ops, size_t offset)
{
	void (*fn)(void);

	if (offset == SIZE_MAX)
		return true;
	/* Every member of the ops table is a function pointer of the same size. */
	memcpy(&fn, (const char *)ops + offset, sizeof(fn));
	return fn != NULL;
}

int api_call_enter(const struct api_ctx *ctx, enum api_call c, struct api_response *ret)
{
	const struct api_call_rule *rule = &call_rules[c];
	enum vm_run_state s;
	int r;

	if (!op_present(ctx->ops, rule->op_offset)) {
		r = api_respond_fault(ret, 501,
				      "%s is not implemented yet: the VMM has no '%s' backend",
				      rule->what, rule->op_name);
		return r < 0 ? r : 1;
	}
	/* Check under the lock so that no other serial call changes the state meanwhile. */
	if (rule->serial && ctx->serial_lock)
		pthread_mutex_lock(ctx->serial_lock);
	s = ctx->ops->get_state(ctx->opaque);
	if (s >= VM_STATE_MAX || !(rule->states & ST(s))) {
		if (rule->serial && ctx->serial_lock)
			pthread_mutex_unlock(ctx->serial_lock);
		r = api_respond_fault(ret, 400, "%s is only allowed %s; the VM is %s", rule->what,
				      rule->when ? rule->when : "in another state",
				      api_state_name(s));
		return r < 0 ? r : 1;
	}
	return 0;
}

void api_call_leave(const struct api_ctx *ctx, enum api_call c)
{
	if (call_rules[c].serial && ctx->serial_lock)
		pthread_mutex_unlock(ctx->serial_lock);
}

/* ---- dispatch ---------------------------------------------------------- */

enum { PATH_MAX_LEN = 1024, PARAM_MAX = 256 };

/*
 * Match path against pattern segment by segment. A "{name}" segment
 * captures one non-empty path segment into param.
 */
static bool route_match(const char *pattern, const char *path, size_t path_len, char *param)
{
	const char *p = pattern, *q = path, *q_end = path + path_len;

	while (*p && q < q_end) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *seg_end = memchr(q, '/', (size_t)(q_end - q));
			size_t n;

			if (!seg_end)
				seg_end = q_end;
			n = (size_t)(seg_end - q);
			if (!close || n == 0 || n >= PARAM_MAX)
				return false;
			memcpy(param, q, n);
			param[n] = '\0';
			p = close + 1;
			q = seg_end;
			continue;
		}
		if (*p != *q)
			return false;
		p++;
		q++;
	}
	return *p == '\0' && q == q_end;
}

int api_dispatch(const struct api_ctx *ctx, enum api_method m, const char *path, const char *body,
		 size_t body_len, struct api_response *ret)
{
	char allow[64] = "";
	char param[PARAM_MAX] = "";
	size_t len = strnlen(path, PATH_MAX_LEN + 1);
	const struct api_route *hit = NULL;

	if (len > PATH_MAX_LEN)
		return api_respond_fault(ret, 400, "the request path is too long");
	/* "/vm/config/" names the same resource as "/vm/config", as in Firecracker. */
	if (len > 1 && path[len - 1] == '/')
		len--;

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		char p[PARAM_MAX];

		if (!route_match(routes[i].pattern, path, len, p))
			continue;
		if (routes[i].method == m) {
			hit = &routes[i];
			memcpy(param, p, sizeof(param));
			break;
		}
		if (!strstr(allow, method_names[routes[i].method]))
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", method_names[routes[i].method]);
	}
	if (!hit && allow[0]) {
		int r = api_respond_fault(
		    ret, 405, "method %s is not allowed on %.*s (allowed: %s)",
		    m == API_METHOD_OTHER ? "this" : method_names[m], (int)len, path, allow);

		if (r == 0)
			snprintf(ret->allow, sizeof(ret->allow), "%s", allow);
		return r;
	}
	if (!hit)
		return api_respond_fault(ret, 400, "invalid request method and/or path: %s %.*s",
					 m == API_METHOD_OTHER ? "(unsupported method)"
							       : method_names[m],
					 (int)len, path);
	return hit->handle(ctx, param, body, body_len, ret);
}
