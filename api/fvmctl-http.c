// SPDX-License-Identifier: MIT
/*
 * fvmctl's HTTP client: libcurl over the VM's unix socket, and the one
 * place that turns API answers into exit codes and messages.
 */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "fvmctl.h"
#include "util.h"

enum { REPLY_MAX = 16 * 1024 * 1024 };

static size_t on_data(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct fvmctl_reply *r = opaque;
	size_t n = size * nmemb;
	char *p;

	/* A reply can carry a command's whole output, but not without bound. */
	if (n > REPLY_MAX - r->len)
		return 0;
	p = realloc(r->body, r->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + r->len, data, n);
	r->body = p;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static void curl_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

int fvmctl_http(const char *sock, const char *method, const char *path, const char *body,
		long timeout_ms, struct fvmctl_reply *ret)
{
	_cleanup_(curl_cleanupp) CURL *c = curl_easy_init();
	_cleanup_(slist_freep) struct curl_slist *hdrs = NULL;
	struct fvmctl_reply r = {0};
	char url[1100];
	CURLcode cc;

	if (!c)
		return -ENOMEM;
	/* The host part is ignored on a unix socket; Firecracker's clients use "localhost". */
	snprintf(url, sizeof(url), "http://localhost%s", path);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip for our small bodies. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (!hdrs)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, MIN(timeout_ms, 2000L));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}

	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		free(r.body);
		switch (cc) {
		case CURLE_COULDNT_CONNECT:
			return -ECONNREFUSED;
		case CURLE_OPERATION_TIMEDOUT:
			return -ETIMEDOUT;
		case CURLE_OUT_OF_MEMORY:
			return -ENOMEM;
		default:
			return -EIO;
		}
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	*ret = r;
	return 0;
}

void fvmctl_reply_release(struct fvmctl_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static int exit_for_status(long status)
{
	return status == 501 ? FVMCTL_EUNSUPPORTED : FVMCTL_EAPI;
}

int fvmctl_api(const struct fvmctl *ctl, const struct fvmctl_vm *vm, const char *method,
	       const char *path, json_t *body, long timeout_ms, json_t **ret_doc)
{
	_cleanup_free_ char *text = NULL;
	struct fvmctl_reply r;
	json_t *doc = NULL;
	int e;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			fvmctl_error(ctl, "%s: out of memory", vm->name);
			return FVMCTL_EFAIL;
		}
	}
	e = fvmctl_http(vm->sock, method, path, text, timeout_ms, &r);
	if (e == -ETIMEDOUT) {
		fvmctl_error(ctl, "%s: no answer from %s within %ld ms", vm->name, vm->sock,
			     timeout_ms);
		return FVMCTL_ETIMEOUT;
	}
	if (e < 0) {
		fvmctl_error(ctl, "%s: cannot reach the API at %s: %s", vm->name, vm->sock,
			     strerror(-e));
		return FVMCTL_ECONNECT;
	}
	if (r.len) {
		doc = json_loadb(r.body, r.len, 0, NULL);
		if (!doc && r.status < 300) {
			fvmctl_error(ctl, "%s: %s %s: the answer is not JSON", vm->name, method,
				     path);
			fvmctl_reply_release(&r);
			return FVMCTL_EAPI;
		}
	}
	if (r.status >= 300) {
		const char *msg = json_string_value(json_object_get(doc, "fault_message"));

		fvmctl_error(ctl, "%s: %s (HTTP %ld)", vm->name, msg ? msg : "request failed",
			     r.status);
		json_decref(doc);
		fvmctl_reply_release(&r);
		return exit_for_status(r.status);
	}
	fvmctl_reply_release(&r);
	if (ret_doc)
		*ret_doc = doc;
	else
		json_decref(doc);
	return FVMCTL_OK;
}

char *fvmctl_vm_state(const struct fvmctl_vm *vm, long timeout_ms)
{
	struct fvmctl_reply r;
	json_t *doc;
	char *state = NULL;

	if (fvmctl_http(vm->sock, "GET", "/", NULL, timeout_ms, &r) < 0)
		return NULL;
	doc = r.status == 200 ? json_loadb(r.body ? r.body : "", r.len, 0, NULL) : NULL;
	if (json_is_string(json_object_get(doc, "state")))
		state = strdup(json_string_value(json_object_get(doc, "state")));
	json_decref(doc);
	fvmctl_reply_release(&r);
	return state;
}
