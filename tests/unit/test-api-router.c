// SPDX-License-Identifier: MIT
/*
 * The router without a socket: routes, the state table, 501 for missing
 * ops, 405/400 for wrong methods and paths, errno to status mapping, and
 * what reaches the backend. One table row per request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api-router.h"
#include "util.h"

/* A backend that records the last op called and can be told to fail. */
struct stub {
	enum vm_run_state state;
	const char *last_op;
	int fail;		 /* returned by every op when nonzero */
	const char *fail_reason; /* put in the fault when failing */
	char seen_id[64];
};

static int result(struct stub *s, const char *op, struct api_fault *f)
{
	s->last_op = op;
	if (s->fail && s->fail_reason)
		api_fault_set(f, "%s", s->fail_reason);
	return s->fail;
}

static enum vm_run_state st_get_state(void *o)
{
	return ((struct stub *)o)->state;
}

static int st_machine(void *o, const struct api_machine_config *r, struct api_fault *f)
{
	return result(o, "put_machine_config", f);
}

static int st_boot(void *o, const struct api_boot_source *r, struct api_fault *f)
{
	return result(o, "put_boot_source", f);
}

static int st_drive(void *o, const struct vm_drive_config *r, struct api_fault *f)
{
	snprintf(((struct stub *)o)->seen_id, 64, "%s", r->id);
	return result(o, "put_drive", f);
}

static int st_action(void *o, enum api_action a, struct api_fault *f)
{
	static const char *const names[] = {"action:start", "action:cad", "action:flush"};

	return result(o, names[a], f);
}

static int st_vm(void *o, enum api_vm_target t, struct api_fault *f)
{
	return result(o, t == API_VM_PAUSE ? "pause" : "resume", f);
}

static int st_config(void *o, struct api_vm_config *ret)
{
	struct stub *s = o;

	s->last_op = "get_vm_config";
	if (s->fail)
		return s->fail;
	ret->cfg.vcpus = 3;
	ret->cfg.mem_bytes = 512ull << 20;
	ret->cfg.nr_drives = 1;
	strcpy(ret->cfg.drives[0].id, "root");
	strcpy(ret->cfg.drives[0].path, "/r");
	return 0;
}

static int st_fork(void *o, const struct api_fork_request *r, struct api_clone_list *ret,
		   struct api_fault *f)
{
	ret->count = r->count;
	for (uint32_t i = 0; i < r->count; i++) {
		if (snprintf(ret->clones[i].name, sizeof(ret->clones[i].name), "%s-%u",
			     r->name_prefix, i) < 0)
			return -EIO;
		ret->clones[i].pid = 100 + (int32_t)i;
		/* Not NUL-terminated on purpose: the router must not trust us. */
		memset(ret->clones[i].api_sock, 'a', sizeof(ret->clones[i].api_sock));
	}
	return result(o, "fork", f);
}

static int st_exec(void *o, const struct api_exec_request *r, struct api_exec_result *ret,
		   struct api_fault *f)
{
	static const char raw[] = "a\x80\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80z\xe2\x82";

	ret->exit_code = 7;
	if (strcmp(r->argv[0], "raw") == 0) {
		/* Not UTF-8: what a guest program may well print. */
		ret->stdout_buf = malloc(sizeof(raw) - 1);
		memcpy(ret->stdout_buf, raw, sizeof(raw) - 1);
		ret->stdout_len = sizeof(raw) - 1;
	} else {
		ret->stdout_buf = strdup(r->argv[0]);
		ret->stdout_len = strlen(r->argv[0]);
	}
	return result(o, "exec", f);
}

static int st_commit(void *o, const char *id, struct api_fault *f)
{
	snprintf(((struct stub *)o)->seen_id, 64, "%s", id);
	return result(o, "disk_commit", f);
}

static int st_metrics(void *o, char *buf, size_t len)
{
	((struct stub *)o)->last_op = "metrics";
	return snprintf(buf, len, "m 1\n");
}

static const struct api_backend_ops full_ops = {
    .get_state = st_get_state,
    .put_machine_config = st_machine,
    .put_boot_source = st_boot,
    .put_drive = st_drive,
    .action = st_action,
    .set_vm_state = st_vm,
    .get_vm_config = st_config,
    .fork = st_fork,
    .exec = st_exec,
    .invoke = st_exec,
    .disk_commit = st_commit,
    .metrics = st_metrics,
};

struct row {
	const char *name;
	enum vm_run_state state;
	int fail;
	const char *method, *path, *body;
	unsigned int status;
	const char *in_body; /* a substring of the answer, or NULL */
	const char *op;	     /* the op that must have been called, or NULL for none */
	const char *allow;
};

#define NS  VM_STATE_NOT_STARTED
#define RUN VM_STATE_RUNNING
#define PSD VM_STATE_PAUSED
#define STP VM_STATE_STOPPED
#define MC  "{\"vcpu_count\":1,\"mem_size_mib\":64}"
#define DRV "{\"drive_id\":\"d1\",\"path_on_host\":\"/x\",\"is_root_device\":true}"

static const struct row rows[] = {
    {"info", RUN, 0, "GET", "/", "", 200, "\"state\":\"Running\"", NULL, NULL},
    {"info id", NS, 0, "GET", "/", "", 200, "\"id\":\"unit\"", NULL, NULL},
    {"info stopped", STP, 0, "GET", "/", "", 200, "\"Stopped\"", NULL, NULL},
    {"version", RUN, 0, "GET", "/version", "", 200, "\"fvm_version\":\"9.9\"", NULL, NULL},
    {"machine pre-boot", NS, 0, "PUT", "/machine-config", MC, 204, NULL, "put_machine_config",
     NULL},
    {"machine running", RUN, 0, "PUT", "/machine-config", MC, 400,
     "only allowed before the VM starts; the VM is Running", NULL, NULL},
    {"machine paused", PSD, 0, "PUT", "/machine-config", MC, 400, "the VM is Paused", NULL, NULL},
    {"machine bad body first", RUN, 0, "PUT", "/machine-config", "{", 400, "malformed", NULL, NULL},
    {"machine get", RUN, 0, "GET", "/machine-config", "", 200, "\"vcpu_count\":3", "get_vm_config",
     NULL},
    {"vm config", PSD, 0, "GET", "/vm/config", "", 200, "\"drive_id\":\"root\"", "get_vm_config",
     NULL},
    {"vm config fails", PSD, -EIO, "GET", "/vm/config", "", 500,
     "GET /vm/config failed: Input/output error", "get_vm_config", NULL},
    {"drive id", NS, 0, "PUT", "/drives/d1", DRV, 204, NULL, "put_drive", NULL},
    {"drive trailing slash", NS, 0, "PUT", "/drives/d1/", DRV, 204, NULL, "put_drive", NULL},
    {"errno EINVAL", NS, -EINVAL, "PUT", "/drives/d1", DRV, 400, "failed: Invalid argument",
     "put_drive", NULL},
    {"errno ENOENT", NS, -ENOENT, "PUT", "/drives/d1", DRV, 400, NULL, "put_drive", NULL},
    {"errno EBUSY", NS, -EBUSY, "PUT", "/drives/d1", DRV, 400, NULL, "put_drive", NULL},
    {"errno ENOSYS", NS, -ENOSYS, "PUT", "/drives/d1", DRV, 501, NULL, "put_drive", NULL},
    {"errno ETIMEDOUT", NS, -ETIMEDOUT, "PUT", "/drives/d1", DRV, 504, NULL, "put_drive", NULL},
    {"errno ENOMEM", NS, -ENOMEM, "PUT", "/drives/d1", DRV, 500, NULL, "put_drive", NULL},
    {"errno positive", NS, 5, "PUT", "/drives/d1", DRV, 204, NULL, "put_drive", NULL},
    {"start", NS, 0, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 204, NULL,
     "action:start", NULL},
    {"start twice", RUN, 0, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 400,
     "InstanceStart is only allowed once", NULL, NULL},
    {"cad running", RUN, 0, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", 204, NULL,
     "action:cad", NULL},
    {"cad paused", PSD, 0, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", 400,
     "while the VM is running", NULL, NULL},
    {"flush any state", STP, 0, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", 204, NULL,
     "action:flush", NULL},
    {"pause running", RUN, 0, "PATCH", "/vm", "{\"state\":\"Paused\"}", 204, NULL, "pause", NULL},
    {"resume paused", PSD, 0, "PATCH", "/vm", "{\"state\":\"Resumed\"}", 204, NULL, "resume", NULL},
    {"pause not started", NS, 0, "PATCH", "/vm", "{\"state\":\"Paused\"}", 400,
     "after the VM has started", NULL, NULL},
    {"pause stopped", STP, 0, "PATCH", "/vm", "{\"state\":\"Paused\"}", 400, "the VM is Stopped",
     NULL, NULL},
    {"fork paused", PSD, 0, "POST", "/fork", "{\"count\":2}", 200,
     "\"name\":\"unit-1\",\"pid\":101", "fork", NULL},
    {"fork running", RUN, 0, "POST", "/fork", "{\"count\":2}", 200,
     "\"name\":\"unit-1\",\"pid\":101", "fork", NULL},
    {"fork stopped", STP, 0, "POST", "/fork", "{\"count\":2}", 400, "while the VM is running or paused",
     NULL, NULL},
    {"fork fault", PSD, -ENOSPC, "POST", "/fork", "{\"count\":2}", 400, "no room", "fork", NULL},
    {"exec running", RUN, 0, "POST", "/exec", "{\"argv\":[\"prog\"]}", 200,
     "\"exit_code\":7,\"signal\":0,\"timed_out\":false,\"stdout\":\"prog\"", "exec", NULL},
    {"exec paused", PSD, 0, "POST", "/exec", "{\"argv\":[\"prog\"]}", 400,
     "while the VM is running", NULL, NULL},
    {"invoke paused", PSD, 0, "POST", "/invoke", "{\"argv\":[\"prog\"]}", 200, "\"clone\":\"\"",
     "exec", NULL},
    {"commit stopped", STP, 0, "PUT", "/drives/d7/commit", "", 204, NULL, "disk_commit", NULL},
    {"commit running", RUN, 0, "PUT", "/drives/d7/commit", "", 400, "guest cannot write", NULL,
     NULL},
    {"metrics", RUN, 0, "GET", "/metrics", "", 200, "m 1\n", "metrics", NULL},
    {"501 vsock", NS, 0, "PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/v\"}", 501,
     "PUT /vsock is not implemented yet: the VMM has no 'put_vsock' backend", NULL, NULL},
    {"501 before state", RUN, 0, "PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/v\"}", 501,
     "not implemented", NULL, NULL},
    {"400 before 501", NS, 0, "PUT", "/vsock", "{}", 400, "missing required field", NULL, NULL},
    {"501 clones", NS, 0, "GET", "/clones", "", 501, "'list_clones'", NULL, NULL},
    {"501 snapshot", PSD, 0, "PUT", "/snapshot/create",
     "{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\"}", 501, "'snapshot_create'", NULL, NULL},
    {"405 root", RUN, 0, "PUT", "/", "{}", 405, "method PUT is not allowed on / (allowed: GET)",
     NULL, "GET"},
    {"405 machine", RUN, 0, "PATCH", "/machine-config", "{}", 405, "(allowed: GET, PUT)", NULL,
     "GET, PUT"},
    {"405 other method", RUN, 0, "DELETE", "/vm", "", 405, "method this is not allowed", NULL,
     "PATCH"},
    {"405 drive", RUN, 0, "GET", "/drives/x", "", 405, NULL, NULL, "PUT"},
    {"400 unknown", RUN, 0, "GET", "/unknown", "", 400,
     "invalid request method and/or path: GET /unknown", NULL, NULL},
    {"400 prefix", RUN, 0, "GET", "/vm/configx", "", 400, NULL, NULL, NULL},
    {"400 deeper", RUN, 0, "PUT", "/drives/a/commit/x", "", 400, NULL, NULL, NULL},
    {"400 empty path", RUN, 0, "GET", "", "", 400, NULL, NULL, NULL},
    {"one trailing slash dropped", RUN, 0, "GET", "//", "", 200, "\"id\"", NULL, NULL},
    {"400 two trailing slashes", RUN, 0, "GET", "/vm/config//", "", 400, NULL, NULL, NULL},
    {"400 unknown method", RUN, 0, "BREW", "/nope", "", 400, "(unsupported method)", NULL, NULL},
};

static void test_row(void **state)
{
	const struct row *r = *state;
	struct stub s = {.state = r->state, .fail = r->fail, .fail_reason = NULL};
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct api_ctx ctx = {&full_ops, &s, "unit", "9.9", &lock};
	struct api_backend_ops ops = full_ops;
	struct api_response resp = {0};
	char *body;

	if (strcmp(r->name, "fork fault") == 0)
		s.fail_reason = "no room";
	/* Rows naming an op the table lacks: drop it, like a VMM without that backend. */
	ops.put_vsock = NULL;
	ops.list_clones = NULL;
	ops.snapshot_create = NULL;
	ctx.ops = &ops;

	assert_int_equal(api_dispatch(&ctx, api_method_parse(r->method), r->path, r->body,
				      strlen(r->body), &resp),
			 0);
	body = resp.body ? strndup(resp.body, resp.body_len) : strdup("");
	if (resp.status != r->status)
		fail_msg("%s: status %u, want %u: %s", r->name, resp.status, r->status, body);
	if (r->in_body && !strstr(body, r->in_body))
		fail_msg("%s: answer '%s' lacks '%s'", r->name, body, r->in_body);
	if (resp.status >= 400 && !strstr(body, "\"fault_message\":"))
		fail_msg("%s: error without fault_message: %s", r->name, body);
	if (resp.status == 204 && resp.body)
		fail_msg("%s: 204 with a body", r->name);
	if (resp.body && !resp.content_type)
		fail_msg("%s: a body without a content type", r->name);
	if ((r->op == NULL) != (s.last_op == NULL) || (r->op && strcmp(r->op, s.last_op) != 0))
		fail_msg("%s: backend op '%s', want '%s'", r->name,
			 s.last_op ? s.last_op : "(none)", r->op ? r->op : "(none)");
	if (r->allow && strcmp(resp.allow, r->allow) != 0)
		fail_msg("%s: Allow '%s', want '%s'", r->name, resp.allow, r->allow);
	/* The serial lock is released on every path. */
	assert_int_equal(pthread_mutex_trylock(&lock), 0);
	pthread_mutex_unlock(&lock);
	free(body);
	api_response_release(&resp);
}

static void test_path_params(void **state)
{
	struct stub s = {.state = VM_STATE_NOT_STARTED};
	struct api_ctx ctx = {&full_ops, &s, "unit", "1", NULL};
	struct api_response resp;

	assert_int_equal(api_dispatch(&ctx, API_METHOD_PUT, "/drives/Abc_9-x/commit", "", 0, &resp),
			 0);
	assert_int_equal(resp.status, 204);
	assert_string_equal(s.seen_id, "Abc_9-x");
	api_response_release(&resp);
}

static void test_long_path(void **state)
{
	struct stub s = {.state = VM_STATE_RUNNING};
	struct api_ctx ctx = {&full_ops, &s, "unit", "1", NULL};
	struct api_response resp;
	char *path = malloc(5000);

	memset(path, 'a', 4999);
	path[0] = '/';
	path[4999] = '\0';
	assert_int_equal(api_dispatch(&ctx, API_METHOD_GET, path, "", 0, &resp), 0);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "too long"));
	api_response_release(&resp);
	/* A path parameter longer than any id is refused, not truncated. */
	memcpy(path, "/drives/", 8);
	memset(path + 8, 'b', 400);
	path[408] = '\0';
	assert_int_equal(api_dispatch(&ctx, API_METHOD_PUT, path, "{}", 2, &resp), 0);
	assert_int_equal(resp.status, 400);
	assert_null(s.last_op);
	api_response_release(&resp);
	free(path);
}

/*
 * Output that is not UTF-8 (a lone continuation byte, an overlong NUL, a
 * surrogate, a code point past U+10FFFF, a truncated sequence) comes back
 * as valid JSON, each bad byte replaced by U+FFFD.
 */
static void test_exec_output_sanitized(void **state)
{
	struct stub s = {.state = VM_STATE_RUNNING};
	struct api_ctx ctx = {&full_ops, &s, "unit", "1", NULL};
	struct api_response resp;
	const char *body = "{\"argv\":[\"raw\"]}";
	char want[64] = "\"stdout\":\"a";

	for (int i = 0; i < 10; i++)
		strcat(want, "\xef\xbf\xbd");
	strcat(want, "z\xef\xbf\xbd\xef\xbf\xbd\"");
	assert_int_equal(api_dispatch(&ctx, API_METHOD_POST, "/exec", body, strlen(body), &resp),
			 0);
	assert_int_equal(resp.status, 200);
	if (!strstr(resp.body, want))
		fail_msg("answer %s lacks %s", resp.body, want);
	api_response_release(&resp);
}

static void test_tables(void **state)
{
	const char *m, *p;

	assert_int_equal(api_route_count(), 20);
	api_route_describe(0, &m, &p);
	assert_string_equal(m, "GET");
	assert_string_equal(p, "/");
	assert_int_equal(api_method_parse("GET"), API_METHOD_GET);
	assert_int_equal(api_method_parse("get"), API_METHOD_OTHER);
	assert_int_equal(api_method_parse("POST"), API_METHOD_POST);
	assert_string_equal(api_state_name(VM_STATE_NOT_STARTED), "Not started");
	assert_string_equal(api_state_name(VM_STATE_MAX), "Unknown");
	assert_int_equal(api_status_from_errno(-EEXIST), 400);
	assert_int_equal(api_status_from_errno(-EOPNOTSUPP), 501);
	assert_int_equal(api_status_from_errno(-EPIPE), 500);
}

/* A bogus state from the backend is refused by every rule, not read out of bounds. */
static void test_bad_state(void **state)
{
	struct stub s = {.state = (enum vm_run_state)42};
	struct api_ctx ctx = {&full_ops, &s, "unit", "1", NULL};
	struct api_response resp;
	const char *body = "{\"action_type\":\"FlushMetrics\"}";

	assert_int_equal(api_dispatch(&ctx, API_METHOD_PUT, "/actions", body, strlen(body), &resp),
			 0);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "the VM is Unknown"));
	api_response_release(&resp);
}

int main(void)
{
	struct CMUnitTest tests[ARRAY_SIZE(rows) + 5];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		tests[n++] = (struct CMUnitTest){
		    .name = rows[i].name, .test_func = test_row, .initial_state = (void *)&rows[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_path_params);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_long_path);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_exec_output_sanitized);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_tables);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_state);
	return _cmocka_run_group_tests("api-router", tests, n, NULL, NULL);
}
