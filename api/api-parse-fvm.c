// SPDX-License-Identifier: MIT
/*
 * Snapshot bodies (Firecracker's) and fvm's own: fork, exec/invoke.
 */
#include <errno.h>
#include <string.h>

#include "api-parse.h"
#include "api-schema.h"
#include "util.h"

/* ---- snapshot/create --------------------------------------------------- */

int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *ret,
			      struct api_fault *f)
{
	static const char *const types[] = {
	    [API_SNAPSHOT_FULL] = "Full",
	    [API_SNAPSHOT_DIFF] = "Diff",
	    NULL,
	};
	static const struct api_field fields[] = {
	    F_STR(struct api_snapshot_create, "snapshot_path", snapshot_path, true, 1,
		  api_check_path),
	    F_STR(struct api_snapshot_create, "mem_file_path", mem_file_path, true, 1,
		  api_check_path),
	    F_ENUM(struct api_snapshot_create, "snapshot_type", type, false, types),
	    F_REFUSE("version", "fvm writes one state format version"),
	};
	_cleanup_free_ struct api_snapshot_create *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	r = api_schema_parse("snapshot/create", body, len, false, fields, ARRAY_SIZE(fields), c, f);
	if (r < 0)
		return r;
	memcpy(ret, c, sizeof(*c));
	return 0;
}

/* ---- snapshot/load ----------------------------------------------------- */

/* Parse scratch: the request plus what only matters while parsing. */
struct load_scratch {
	struct api_snapshot_load req;
	bool has_mem_backend;
	bool enable_diff_snapshots;
};

static int parse_mem_backend(const char *what, const char *field, json_t *v, void *target,
			     struct api_fault *f)
{
	static const char *const types[] = {"File", "Uffd", NULL};
	struct backend {
		int type;
		char path[VM_CONFIG_PATH_MAX];
	};
	static const struct api_field fields[] = {
	    F_ENUM(struct backend, "backend_type", type, true, types),
	    F_STR(struct backend, "backend_path", path, true, 1, api_check_path),
	};
	struct load_scratch *s = target;
	_cleanup_free_ struct backend *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	r = api_schema_apply("snapshot/load mem_backend", v, fields, ARRAY_SIZE(fields), b, f);
	if (r < 0)
		return r;
	if (b->type != 0) {
		api_fault_set(f, "%s: '%s' type \"Uffd\" is not supported", what, field);
		return -EINVAL;
	}
	memcpy(s->req.mem_file_path, b->path, sizeof(b->path));
	s->has_mem_backend = true;
	return 0;
}

static int parse_net_overrides(const char *what, const char *field, json_t *v, void *target,
			       struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STR(struct api_net_override, "iface_id", iface_id, true, 1, api_check_id),
	    F_STR(struct api_net_override, "host_dev_name", host_dev_name, true, 1,
		  api_check_ifname),
	};
	struct load_scratch *s = target;
	size_t i;
	json_t *item;
	int r;

	if (!json_is_array(v) || json_array_size(v) > VM_MAX_NET) {
		api_fault_set(f, "%s: '%s' must be an array of at most %d overrides", what, field,
			      VM_MAX_NET);
		return -EINVAL;
	}
	json_array_foreach(v, i, item)
	{
		struct api_net_override o = {0};

		r = api_schema_apply("snapshot/load network_overrides", item, fields,
				     ARRAY_SIZE(fields), &o, f);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->req.net_overrides[j].iface_id, o.iface_id) == 0) {
				api_fault_set(f, "%s: '%s' names iface '%s' twice", what, field,
					      o.iface_id);
				return -EINVAL;
			}
		}
		s->req.net_overrides[i] = o;
	}
	s->req.nr_net_overrides = (uint32_t)json_array_size(v);
	return 0;
}

static int parse_vsock_override(const char *what, const char *field, json_t *v, void *target,
				struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STRN(struct api_snapshot_load, "uds_path", vsock_uds_path, true, 1,
		   API_SOCK_PATH_MAX - sizeof("_4294967295"), api_check_path),
	};
	struct load_scratch *s = target;
	int r;

	r = api_schema_apply("snapshot/load vsock_override", v, fields, ARRAY_SIZE(fields), &s->req,
			     f);
	if (r < 0)
		return r;
	s->req.has_vsock_override = true;
	return 0;
}

int api_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *ret,
			    struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_STR(struct load_scratch, "snapshot_path", req.snapshot_path, true, 1, api_check_path),
	    F_STR(struct load_scratch, "mem_file_path", req.mem_file_path, false, 1,
		  api_check_path),
	    F_CUSTOM("mem_backend", false, parse_mem_backend),
	    F_BOOL(struct load_scratch, "track_dirty_pages", req.track_dirty_pages),
	    F_BOOL(struct load_scratch, "enable_diff_snapshots", enable_diff_snapshots),
	    F_BOOL(struct load_scratch, "resume_vm", req.resume_vm),
	    F_BOOL(struct load_scratch, "clock_realtime", req.clock_realtime),
	    F_CUSTOM("network_overrides", false, parse_net_overrides),
	    F_CUSTOM("vsock_override", false, parse_vsock_override),
	};
	_cleanup_free_ struct load_scratch *s = calloc(1, sizeof(*s));
	_cleanup_json_ json_t *doc = NULL;
	json_t *mem_file;
	int r;

	if (!s)
		return -ENOMEM;
	r = api_schema_load("snapshot/load", body, len, false, &doc, f);
	if (r < 0)
		return r;
	mem_file = json_object_get(doc, "mem_file_path");
	if (mem_file && !json_is_null(mem_file) && json_object_get(doc, "mem_backend")) {
		api_fault_set(f, "snapshot/load: give either 'mem_file_path' or 'mem_backend', "
				 "not both");
		return -EINVAL;
	}
	r = api_schema_apply("snapshot/load", doc, fields, ARRAY_SIZE(fields), s, f);
	if (r < 0)
		return r;
	if (!s->req.mem_file_path[0]) {
		api_fault_set(f, "snapshot/load: one of 'mem_file_path' or 'mem_backend' is "
				 "required");
		return -EINVAL;
	}
	/* The deprecated spelling of the same wish. */
	s->req.track_dirty_pages |= s->enable_diff_snapshots;
	memcpy(ret, &s->req, sizeof(s->req));
	return 0;
}

/* ---- fork -------------------------------------------------------------- */

int api_parse_fork(const char *body, size_t len, const char *default_prefix,
		   struct api_fork_request *ret, struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_U32(struct api_fork_request, "count", count, true, 1, API_FORK_MAX),
	    F_STR(struct api_fork_request, "name_prefix", name_prefix, false, 1, api_check_id),
	    F_BOOL(struct api_fork_request, "resume", resume),
	};
	struct api_fork_request req = {.resume = true};
	int r;

	r = api_schema_parse("fork", body, len, false, fields, ARRAY_SIZE(fields), &req, f);
	if (r < 0)
		return r;
	if (!req.name_prefix[0]) {
		if (!default_prefix || strlen(default_prefix) >= sizeof(req.name_prefix) ||
		    !api_id_valid(default_prefix)) {
			api_fault_set(f, "fork: 'name_prefix' is required: this VM's own name "
					 "cannot prefix clone names");
			return -EINVAL;
		}
		strcpy(req.name_prefix, default_prefix);
	}
	*ret = req;
	return 0;
}

/* ---- exec, invoke ------------------------------------------------------ */

static int parse_string_array(const char *what, const char *field, json_t *v, size_t max,
			      bool need_equals, const char **out, uint32_t *ret_n,
			      struct api_fault *f)
{
	size_t i;
	json_t *item;

	if (!json_is_array(v) || json_array_size(v) > max) {
		api_fault_set(f, "%s: '%s' must be an array of at most %zu strings", what, field,
			      max);
		return -EINVAL;
	}
	json_array_foreach(v, i, item)
	{
		const char *s = json_string_value(item);

		if (!s) {
			api_fault_set(f, "%s: '%s' must contain only strings", what, field);
			return -EINVAL;
		}
		/* "=VALUE" has no name and would be read as an empty variable. */
		if (need_equals && (s[0] == '=' || !strchr(s, '='))) {
			api_fault_set(f, "%s: '%s' entries must look like NAME=VALUE", what, field);
			return -EINVAL;
		}
		out[i] = s;
	}
	out[json_array_size(v)] = NULL;
	*ret_n = (uint32_t)json_array_size(v);
	return 0;
}

static int parse_argv(const char *what, const char *field, json_t *v, void *target,
		      struct api_fault *f)
{
	struct api_exec_request *req = target;
	int r;

	r = parse_string_array(what, field, v, API_EXEC_ARGS_MAX, false, req->argv, &req->argc, f);
	if (r < 0)
		return r;
	if (req->argc == 0 || !req->argv[0][0]) {
		api_fault_set(f, "%s: '%s' needs at least a program name", what, field);
		return -EINVAL;
	}
	return 0;
}

static int parse_env(const char *what, const char *field, json_t *v, void *target,
		     struct api_fault *f)
{
	struct api_exec_request *req = target;

	return parse_string_array(what, field, v, API_EXEC_ENV_MAX, true, req->envp, &req->envc, f);
}

static int parse_stdin(const char *what, const char *field, json_t *v, void *target,
		       struct api_fault *f)
{
	struct api_exec_request *req = target;

	if (!json_is_string(v) || json_string_length(v) > API_EXEC_STDIN_MAX) {
		api_fault_set(f, "%s: '%s' must be a string of at most %d bytes", what, field,
			      API_EXEC_STDIN_MAX);
		return -EINVAL;
	}
	req->stdin_data = json_string_value(v);
	req->stdin_len = json_string_length(v);
	return 0;
}

int api_parse_exec(const char *body, size_t len, struct api_exec_request *ret, struct api_fault *f)
{
	static const struct api_field fields[] = {
	    F_CUSTOM("argv", true, parse_argv),
	    F_CUSTOM("env", false, parse_env),
	    F_CUSTOM("stdin", false, parse_stdin),
	    F_U32(struct api_exec_request, "timeout_ms", timeout_ms, false, 1,
		  API_EXEC_TIMEOUT_MAX_MS),
	};
	_cleanup_free_ struct api_exec_request *req = calloc(1, sizeof(*req));
	_cleanup_json_ json_t *doc = NULL;
	int r;

	if (!req)
		return -ENOMEM;
	r = api_schema_load("exec", body, len, false, &doc, f);
	if (r < 0)
		return r;
	req->timeout_ms = API_EXEC_TIMEOUT_DEFAULT_MS;
	r = api_schema_apply("exec", doc, fields, ARRAY_SIZE(fields), req, f);
	if (r < 0)
		return r;
	/* The strings point into doc: the request keeps it alive. */
	req->priv = TAKE_PTR(doc);
	memcpy(ret, req, sizeof(*req));
	return 0;
}

void api_exec_request_release(struct api_exec_request *req)
{
	if (!req)
		return;
	json_decref(req->priv);
	req->priv = NULL;
}
