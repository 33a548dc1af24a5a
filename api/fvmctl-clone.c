// SPDX-License-Identifier: MIT
/*
 * Templates and what runs in VMs: fork, exec, invoke.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fvmctl.h"
#include "util.h"

enum {
	EXEC_STDIN_MAX = 128 * 1024, /* the API's limit (API_EXEC_STDIN_MAX) */
	EXEC_TIMEOUT_MS = 30 * 1000,
	/* Live clones a template keeps track of (API_CLONES_MAX). */
	FORK_MAX = 1024,
	/* Clones per request: the API's limit, and small enough to show progress. */
	FORK_BATCH = 64,
};

/* Clones whose socket lands in our runtime directory get a pid file there, like run. */
static void adopt_clone(const struct fvmctl *ctl, json_t *clone)
{
	const char *name = json_string_value(json_object_get(clone, "name"));
	const char *sock = json_string_value(json_object_get(clone, "api_sock"));
	json_int_t pid = json_integer_value(json_object_get(clone, "pid"));
	struct fvmctl_vm vm;

	if (!name || !sock || pid <= 0 || fvmctl_vm_paths(ctl, name, &vm) < 0 ||
	    strcmp(vm.sock, sock) != 0)
		return;
	if (fvmctl_pid_write(vm.pid_path, (pid_t)pid) < 0)
		fvmctl_error(ctl, "warning: cannot write %s", vm.pid_path);
}

static int fork_in_batches(struct fvmctl *ctl, struct fvmctl_vm *vm, long count,
			   const char *prefix, bool paused);

int fvmctl_cmd_fork(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"prefix", required_argument, NULL, 'p'},
	    {"paused", no_argument, NULL, 'P'},
	    {0},
	};
	const char *prefix = NULL;
	bool paused = false;
	struct fvmctl_vm vm;
	char *end;
	long count;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "p:", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c == 'p')
			prefix = optarg;
		else if (c == 'P')
			paused = true;
		else
			return fvmctl_usage(ctl, true);
	}
	if (optind + 2 != argc)
		return fvmctl_usage(ctl, true);
	count = strtol(argv[optind + 1], &end, 10);
	if (*end || count < 1 || count > FORK_MAX) {
		fvmctl_error(ctl, "the clone count must be 1 to %d", FORK_MAX);
		return FVMCTL_EUSAGE;
	}
	if (prefix && !fvmctl_name_valid(prefix)) {
		fvmctl_error(ctl, "'%s' is not a valid name prefix", prefix);
		return FVMCTL_EUSAGE;
	}
	r = fvmctl_vm_open(ctl, argv[optind], &vm);
	if (r != FVMCTL_OK)
		return r;
	return fork_in_batches(ctl, &vm, count, prefix, paused);
}

/*
 * POST /fork in batches of FORK_BATCH, so that any count up to FORK_MAX
 * works and a person at a terminal sees progress. The clones of every
 * batch are adopted (pid files) as they come.
 */
static int fork_in_batches(struct fvmctl *ctl, struct fvmctl_vm *vm, long count,
			   const char *prefix, bool paused)
{
	bool progress = !ctl->json && isatty(STDERR_FILENO) && count > FORK_BATCH;
	json_t *all = json_array(), *doc, *body, *clones, *cl;
	long done = 0;
	size_t i;
	int r = FVMCTL_OK;

	if (!all)
		return FVMCTL_EFAIL;
	while (done < count) {
		long n = MIN((long)FORK_BATCH, count - done);

		doc = NULL;
		body = json_pack("{sI sb}", "count", (json_int_t)n, "resume", !paused);
		if (body && prefix)
			json_object_set_new(body, "name_prefix", json_string(prefix));
		r = fvmctl_api(ctl, vm, "POST", "/fork", body, 60 * 1000 + n * 100, &doc);
		json_decref(body);
		if (r != FVMCTL_OK)
			break;
		clones = json_object_get(doc, "clones");
		json_array_foreach(clones, i, cl) {
			adopt_clone(ctl, cl);
			json_array_append(all, cl);
		}
		json_decref(doc);
		done += n;
		if (progress)
			fprintf(stderr, "\rfvmctl fork: %ld/%ld clones", done, count);
	}
	if (progress)
		fputc('\n', stderr);
	if (r == FVMCTL_OK && ctl->json) {
		doc = json_pack("{sO ss}", "clones", all, "template", vm->name);
		fvmctl_print_json(doc);
		json_decref(doc);
	} else if (r == FVMCTL_OK) {
		json_array_foreach(all, i, cl)
			printf("%s\n", json_string_value(json_object_get(cl, "name")));
	} else if (done > 0) {
		fvmctl_error(ctl, "%ld of %ld clones were forked before the failure", done, count);
	}
	json_decref(all);
	return r;
}

static int read_stdin(const struct fvmctl *ctl, json_t **ret)
{
	_cleanup_free_ char *buf = malloc(EXEC_STDIN_MAX + 1);
	size_t len = 0;
	ssize_t n;
	json_t *s;

	if (!buf)
		return -ENOMEM;
	while ((n = read(STDIN_FILENO, buf + len, EXEC_STDIN_MAX + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > EXEC_STDIN_MAX) {
			fvmctl_error(ctl, "standard input is larger than %d bytes", EXEC_STDIN_MAX);
			return -E2BIG;
		}
	}
	if (n < 0)
		return neg_errno();
	/* A JSON string carries text only. */
	s = json_stringn(buf, len);
	if (!s || memchr(buf, '\0', len)) {
		json_decref(s);
		fvmctl_error(ctl, "standard input must be UTF-8 text without NUL bytes");
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* exec and invoke: the same request, to the VM itself or to a template. */
static int run_command(struct fvmctl *ctl, int argc, char **argv, const char *path)
{
	static const struct option opts[] = {
	    {"env", required_argument, NULL, 'e'},
	    {"stdin", no_argument, NULL, 'i'},
	    {"timeout", required_argument, NULL, 't'},
	    {0},
	};
	long timeout_ms = EXEC_TIMEOUT_MS;
	bool want_stdin = false;
	json_t *env = json_array(), *args = json_array(), *in = NULL, *body, *doc = NULL, *v;
	struct fvmctl_vm vm;
	const char *name;
	char *end;
	int c, r;

	if (!env || !args)
		return FVMCTL_EXEC_FAILED;
	while ((c = fvmctl_getopt(ctl, argc, argv, "e:it:", opts)) != -1) {
		if (c == 'h') {
			json_decref(env);
			json_decref(args);
			return fvmctl_usage(ctl, false);
		} else if (c == 'e' && strchr(optarg, '=') && optarg[0] != '=') {
			json_array_append_new(env, json_string(optarg));
		} else if (c == 'i') {
			want_stdin = true; /* read below, once the arguments are known good */
		} else if (c == 't' && (timeout_ms = (long)(strtod(optarg, &end) * 1000)) > 0 &&
			   !*end) {
			continue;
		} else {
			json_decref(env);
			json_decref(args);
			fvmctl_usage(ctl, true);
			return FVMCTL_EXEC_FAILED;
		}
	}
	if (optind < argc && strcmp(argv[optind], "--") != 0)
		name = argv[optind++];
	else
		name = NULL;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (!name || optind >= argc) {
		json_decref(env);
		json_decref(args);
		fvmctl_usage(ctl, true);
		return FVMCTL_EXEC_FAILED;
	}
	for (int i = optind; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));

	r = fvmctl_vm_open(ctl, name, &vm);
	if (r == FVMCTL_OK && want_stdin && (r = read_stdin(ctl, &in)) < 0)
		r = FVMCTL_EFAIL;
	if (r != FVMCTL_OK) {
		json_decref(env);
		json_decref(args);
		return FVMCTL_EXEC_FAILED;
	}
	body =
	    json_pack("{so so sI}", "argv", args, "env", env, "timeout_ms", (json_int_t)timeout_ms);
	if (body && in)
		json_object_set_new(body, "stdin", in);
	/* The VM gives up at timeout_ms; allow the answer some time to travel. */
	r = fvmctl_api(ctl, &vm, "POST", path, body, timeout_ms + 10 * 1000, &doc);
	json_decref(body);
	if (r != FVMCTL_OK)
		return FVMCTL_EXEC_FAILED;

	if (ctl->json) {
		json_incref(doc);
		fvmctl_print_json(doc);
	} else {
		v = json_object_get(doc, "stdout");
		fflush(stdout);
		if (json_is_string(v))
			write_all(STDOUT_FILENO, json_string_value(v), json_string_length(v));
		v = json_object_get(doc, "stderr");
		if (json_is_string(v))
			write_all(STDERR_FILENO, json_string_value(v), json_string_length(v));
	}
	/* The shell's conventions: 124 for a timeout (as timeout(1)), 128+N for signal N. */
	if (json_is_true(json_object_get(doc, "timed_out")))
		r = 124;
	else if (json_integer_value(json_object_get(doc, "signal")) > 0)
		r = 128 + (int)(json_integer_value(json_object_get(doc, "signal")) & 0x7f);
	else
		r = (int)(json_integer_value(json_object_get(doc, "exit_code")) & 0xff);
	json_decref(doc);
	return r;
}

int fvmctl_cmd_exec(struct fvmctl *ctl, int argc, char **argv)
{
	return run_command(ctl, argc, argv, "/exec");
}

int fvmctl_cmd_invoke(struct fvmctl *ctl, int argc, char **argv)
{
	return run_command(ctl, argc, argv, "/invoke");
}
