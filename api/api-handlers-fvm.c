// SPDX-License-Identifier: MIT
/*
 * Handlers for fvm's own resources: fork, clones, exec, invoke, metrics.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "api-handlers.h"
#include "api-parse.h"
#include "util.h"

static void clone_list_sanitize(struct api_clone_list *l)
{
	if (l->count > API_CLONES_MAX)
		l->count = API_CLONES_MAX;
	for (uint32_t i = 0; i < l->count; i++) {
		l->clones[i].name[sizeof(l->clones[i].name) - 1] = '\0';
		l->clones[i].api_sock[sizeof(l->clones[i].api_sock) - 1] = '\0';
	}
}

static json_t *clones_json(const struct api_clone_list *l)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < l->count; i++)
		json_array_append_new(a, json_pack("{ss si ss}", "name", l->clones[i].name, "pid",
						   (int)l->clones[i].pid, "api_sock",
						   l->clones[i].api_sock));
	return json_pack("{so}", "clones", a);
}

int api_h_fork(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
	       struct api_response *ret)
{
	_cleanup_free_ struct api_clone_list *list = calloc(1, sizeof(*list));
	struct api_fork_request req;
	struct api_fault f = {""};
	int r;

	if (!list)
		return -ENOMEM;
	r = api_parse_fork(body, len, ctx->instance_id, &req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	r = api_call_enter(ctx, API_CALL_FORK, ret);
	if (r)
		return r < 0 ? r : 0;
	r = ctx->ops->fork(ctx->opaque, &req, list, &f);
	api_call_leave(ctx, API_CALL_FORK);
	if (r < 0)
		return api_respond_op_error(ret, API_CALL_FORK, r, &f);
	clone_list_sanitize(list);
	return api_respond_json(ret, 200, clones_json(list));
}

int api_h_get_clones(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		     struct api_response *ret)
{
	_cleanup_free_ struct api_clone_list *list = calloc(1, sizeof(*list));
	int r;

	if (!list)
		return -ENOMEM;
	r = api_call_enter(ctx, API_CALL_GET_CLONES, ret);
	if (r)
		return r < 0 ? r : 0;
	r = ctx->ops->list_clones(ctx->opaque, list);
	api_call_leave(ctx, API_CALL_GET_CLONES);
	if (r < 0)
		return api_respond_op_error(ret, API_CALL_GET_CLONES, r, NULL);
	clone_list_sanitize(list);
	return api_respond_json(ret, 200, clones_json(list));
}

/* ---- exec, invoke ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		need = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		need = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		need = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (need > n)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

/*
 * JSON strings are UTF-8 and a command's output need not be: invalid bytes
 * become U+FFFD so that the response is always valid JSON.
 */
static json_t *output_string(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	_cleanup_free_ char *out = NULL;
	size_t o = 0;

	if (!buf)
		return json_string("");
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(s + i, len - i);

		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	return json_stringn(out, o);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int run_exec(const struct api_ctx *ctx, enum api_call c, const char *body, size_t len,
		    struct api_response *ret)
{
	_cleanup_free_ struct api_exec_request *req = calloc(1, sizeof(*req));
	struct api_exec_result res = {0};
	struct api_fault f = {""};
	uint64_t start;
	bool trunc_out, trunc_err;
	json_t *doc;
	int r;

	if (!req)
		return -ENOMEM;
	r = api_parse_exec(body, len, req, &f);
	if (r < 0)
		return api_respond_parse_error(ret, r, &f);
	r = api_call_enter(ctx, c, ret);
	if (r) {
		api_exec_request_release(req);
		return r < 0 ? r : 0;
	}
	start = now_us();
	if (c == API_CALL_EXEC)
		r = ctx->ops->exec(ctx->opaque, req, &res, &f);
	else
		r = ctx->ops->invoke(ctx->opaque, req, &res, &f);
	api_call_leave(ctx, c);
	api_exec_request_release(req);
	if (r < 0) {
		free(res.stdout_buf);
		free(res.stderr_buf);
		return api_respond_op_error(ret, c, r, &f);
	}

	trunc_out = res.stdout_len > API_EXEC_OUTPUT_MAX;
	trunc_err = res.stderr_len > API_EXEC_OUTPUT_MAX;
	res.clone_name[sizeof(res.clone_name) - 1] = '\0';
	doc = json_pack("{si si sb so so sb sb sI}", "exit_code", (int)res.exit_code, "signal",
			(int)res.signal, "timed_out", res.timed_out, "stdout",
			output_string(res.stdout_buf, MIN(res.stdout_len, API_EXEC_OUTPUT_MAX)),
			"stderr",
			output_string(res.stderr_buf, MIN(res.stderr_len, API_EXEC_OUTPUT_MAX)),
			"stdout_truncated", trunc_out, "stderr_truncated", trunc_err, "duration_us",
			(json_int_t)(now_us() - start));
	free(res.stdout_buf);
	free(res.stderr_buf);
	if (doc && c == API_CALL_INVOKE)
		json_object_set_new(doc, "clone", json_string(res.clone_name));
	return api_respond_json(ret, 200, doc);
}

int api_h_exec(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
	       struct api_response *ret)
{
	return run_exec(ctx, API_CALL_EXEC, body, len, ret);
}

int api_h_invoke(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		 struct api_response *ret)
{
	return run_exec(ctx, API_CALL_INVOKE, body, len, ret);
}

/* ---- metrics ----------------------------------------------------------- */

int api_h_get_metrics(const struct api_ctx *ctx, const char *id, const char *body, size_t len,
		      struct api_response *ret)
{
	_cleanup_free_ char *buf = malloc(API_METRICS_MAX);
	int r;

	if (!buf)
		return -ENOMEM;
	r = api_call_enter(ctx, API_CALL_GET_METRICS, ret);
	if (r)
		return r < 0 ? r : 0;
	r = ctx->ops->metrics(ctx->opaque, buf, API_METRICS_MAX);
	api_call_leave(ctx, API_CALL_GET_METRICS);
	if (r < 0)
		return api_respond_op_error(ret, API_CALL_GET_METRICS, r, NULL);
	*ret = (struct api_response){
	    .status = 200,
	    /* The Prometheus text exposition format, version 0.0.4. */
	    .content_type = "text/plain; version=0.0.4; charset=utf-8",
	    .body_len = MIN((size_t)r, (size_t)API_METRICS_MAX),
	    .body = TAKE_PTR(buf),
	};
	return 0;
}
