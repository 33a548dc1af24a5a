// SPDX-License-Identifier: MIT
/*
 * Looking at VMs and changing their run state: ls, info, pause, resume,
 * snapshot.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fvmctl.h"
#include "util.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The VM names in the runtime directory, from their .sock and .pid files, sorted. */
static int list_names(const char *dir, char ***ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	if (!d) {
		if (errno == ENOENT) {
			*ret = NULL;
			*ret_n = 0;
			return 0;
		}
		return neg_errno();
	}
	while ((e = readdir(d))) {
		const char *dot = strrchr(e->d_name, '.');
		char name[FVMCTL_NAME_MAX];
		bool dup = false;
		char **grown;

		if (!dot || (strcmp(dot, ".sock") != 0 && strcmp(dot, ".pid") != 0))
			continue;
		if ((size_t)(dot - e->d_name) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(dot - e->d_name), e->d_name);
		if (!fvmctl_name_valid(name))
			continue;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(names[i], name) == 0;
		if (dup)
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(name))) {
			names = grown ? grown : names;
			for (size_t i = 0; i < n; i++)
				free(names[i]);
			free(names);
			closedir(d);
			return -ENOMEM;
		}
		names = grown;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	*ret = names;
	*ret_n = n;
	return 0;
}

/* "Running", "Paused", ... from the API; "dead" or "unreachable" otherwise. */
static char *vm_state_word(const struct fvmctl_vm *vm)
{
	char *s;

	if (!vm->alive)
		return strdup("dead");
	s = vm->has_sock ? fvmctl_vm_state(vm, 2000) : NULL;
	return s ? s : strdup("unreachable");
}

int fvmctl_cmd_ls(struct fvmctl *ctl, int argc, char **argv)
{
	_cleanup_free_ char **names = NULL;
	json_t *list = NULL;
	size_t n = 0;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "", NULL)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		return fvmctl_usage(ctl, true);
	}
	if (optind != argc)
		return fvmctl_usage(ctl, true);
	r = list_names(ctl->dir, &names, &n);
	if (r < 0) {
		fvmctl_error(ctl, "cannot read %s: %s", ctl->dir, strerror(-r));
		return FVMCTL_EFAIL;
	}
	if (ctl->json)
		list = json_array();
	else
		printf("%-24s %-8s %-12s %s\n", "NAME", "PID", "STATE", "SOCKET");
	for (size_t i = 0; i < n; i++) {
		struct fvmctl_vm vm;
		_cleanup_free_ char *state = NULL;

		if (fvmctl_vm_lookup(ctl, names[i], &vm) < 0) {
			free(names[i]);
			continue;
		}
		state = vm_state_word(&vm);
		if (list)
			json_array_append_new(list,
					      json_pack("{ss si ss sb ss}", "name", vm.name, "pid",
							(int)vm.pid, "state", state ? state : "?",
							"alive", vm.alive, "socket", vm.sock));
		else
			printf("%-24s %-8d %-12s %s\n", vm.name, (int)vm.pid, state ? state : "?",
			       vm.sock);
		free(names[i]);
	}
	if (ctl->json)
		fvmctl_print_json(list);
	return FVMCTL_OK;
}

/*
 * Options of a command that takes one VM name. Returns true to go on;
 * false with *ret_exit set when the command is done (help, usage error).
 */
static bool one_name(struct fvmctl *ctl, int argc, char **argv, int *ret_exit)
{
	int c;

	while ((c = fvmctl_getopt(ctl, argc, argv, "", NULL)) != -1) {
		*ret_exit = fvmctl_usage(ctl, c != 'h');
		return false;
	}
	if (optind + 1 != argc) {
		*ret_exit = fvmctl_usage(ctl, true);
		return false;
	}
	return true;
}

int fvmctl_cmd_info(struct fvmctl *ctl, int argc, char **argv)
{
	struct fvmctl_vm vm;
	json_t *info = NULL, *config = NULL;
	int r;

	if (!one_name(ctl, argc, argv, &r))
		return r;
	r = fvmctl_vm_open(ctl, argv[optind], &vm);
	if (r != FVMCTL_OK)
		return r;
	r = fvmctl_api(ctl, &vm, "GET", "/", NULL, FVMCTL_TIMEOUT_MS, &info);
	if (r != FVMCTL_OK)
		return r;
	/* A VMM without a config backend still has a state worth showing. */
	{
		struct fvmctl_reply rep;

		if (fvmctl_http(vm.sock, "GET", "/vm/config", NULL, FVMCTL_TIMEOUT_MS, &rep) == 0) {
			if (rep.status == 200)
				config = json_loadb(rep.body ? rep.body : "", rep.len, 0, NULL);
			fvmctl_reply_release(&rep);
		}
	}
	if (ctl->json) {
		json_t *doc = json_pack("{ss si ss ss sO so}", "name", vm.name, "pid", (int)vm.pid,
					"socket", vm.sock, "log", vm.log_path, "info", info,
					"config", config ? config : json_null());

		json_decref(info);
		fvmctl_print_json(doc);
		return FVMCTL_OK;
	}
	printf(
	    "name:     %s\npid:      %d\nstate:    %s\nversion:  %s\nsocket:   %s\nlog:      %s\n",
	    vm.name, (int)vm.pid, json_string_value(json_object_get(info, "state")),
	    json_string_value(json_object_get(info, "vmm_version")), vm.sock, vm.log_path);
	if (config) {
		json_t *mc = json_object_get(config, "machine-config");
		json_t *bs = json_object_get(config, "boot-source");
		json_t *drives = json_object_get(config, "drives"), *d;
		size_t i;

		printf("vcpus:    %lld\nmemory:   %lld MiB\n",
		       (long long)json_integer_value(json_object_get(mc, "vcpu_count")),
		       (long long)json_integer_value(json_object_get(mc, "mem_size_mib")));
		if (json_is_object(bs))
			printf("kernel:   %s\n",
			       json_string_value(json_object_get(bs, "kernel_image_path")));
		json_array_foreach(drives, i, d) printf(
		    "drive:    %s %s%s%s\n", json_string_value(json_object_get(d, "drive_id")),
		    json_string_value(json_object_get(d, "path_on_host")),
		    json_is_true(json_object_get(d, "is_root_device")) ? " (root)" : "",
		    json_is_true(json_object_get(d, "is_read_only")) ? " (ro)" : "");
	}
	json_decref(info);
	json_decref(config);
	return FVMCTL_OK;
}

static int set_state(struct fvmctl *ctl, int argc, char **argv, const char *target)
{
	struct fvmctl_vm vm;
	_cleanup_free_ char *state = NULL;
	json_t *body;
	int r;

	if (!one_name(ctl, argc, argv, &r))
		return r;
	r = fvmctl_vm_open(ctl, argv[optind], &vm);
	if (r != FVMCTL_OK)
		return r;
	body = json_pack("{ss}", "state", target);
	r = fvmctl_api(ctl, &vm, "PATCH", "/vm", body, FVMCTL_TIMEOUT_MS, NULL);
	json_decref(body);
	if (r != FVMCTL_OK)
		return r;
	state = fvmctl_vm_state(&vm, FVMCTL_TIMEOUT_MS);
	if (ctl->json)
		fvmctl_print_json(
		    json_pack("{ss ss}", "name", vm.name, "state", state ? state : "unknown"));
	else
		printf("%s: %s\n", vm.name, state ? state : "unknown");
	return FVMCTL_OK;
}

int fvmctl_cmd_pause(struct fvmctl *ctl, int argc, char **argv)
{
	return set_state(ctl, argc, argv, "Paused");
}

int fvmctl_cmd_resume(struct fvmctl *ctl, int argc, char **argv)
{
	return set_state(ctl, argc, argv, "Resumed");
}

int fvmctl_cmd_snapshot(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"diff", no_argument, NULL, 'd'},
	    {"keep-paused", no_argument, NULL, 'k'},
	    {0},
	};
	char state_path[FVMCTL_PATH_MAX], mem_path[FVMCTL_PATH_MAX];
	_cleanup_free_ char *state = NULL;
	bool diff = false, keep_paused = false, was_running;
	struct fvmctl_vm vm;
	json_t *body;
	int c, r, r2 = FVMCTL_OK;

	while ((c = fvmctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c == 'd')
			diff = true;
		else if (c == 'k')
			keep_paused = true;
		else
			return fvmctl_usage(ctl, true);
	}
	if (optind + 3 != argc)
		return fvmctl_usage(ctl, true);
	/* fvm resolves relative paths against its own cwd, not ours. */
	if (fvmctl_abspath(argv[optind + 1], state_path, sizeof(state_path)) < 0 ||
	    fvmctl_abspath(argv[optind + 2], mem_path, sizeof(mem_path)) < 0) {
		fvmctl_error(ctl, "snapshot path too long");
		return FVMCTL_EUSAGE;
	}
	r = fvmctl_vm_open(ctl, argv[optind], &vm);
	if (r != FVMCTL_OK)
		return r;
	state = fvmctl_vm_state(&vm, FVMCTL_TIMEOUT_MS);
	was_running = state && strcmp(state, "Running") == 0;
	if (was_running) {
		body = json_pack("{ss}", "state", "Paused");
		r = fvmctl_api(ctl, &vm, "PATCH", "/vm", body, FVMCTL_TIMEOUT_MS, NULL);
		json_decref(body);
		if (r != FVMCTL_OK)
			return r;
	}
	body = json_pack("{ss ss ss}", "snapshot_path", state_path, "mem_file_path", mem_path,
			 "snapshot_type", diff ? "Diff" : "Full");
	r = fvmctl_api(ctl, &vm, "PUT", "/snapshot/create", body, 10 * FVMCTL_TIMEOUT_MS, NULL);
	json_decref(body);
	/* Put the VM back as it was, whether or not the snapshot worked. */
	if (was_running && !keep_paused) {
		body = json_pack("{ss}", "state", "Resumed");
		r2 = fvmctl_api(ctl, &vm, "PATCH", "/vm", body, FVMCTL_TIMEOUT_MS, NULL);
		json_decref(body);
	}
	if (r != FVMCTL_OK)
		return r;
	if (ctl->json)
		fvmctl_print_json(json_pack("{ss ss ss}", "name", vm.name, "snapshot_path",
					    state_path, "mem_file_path", mem_path));
	else
		printf("%s: saved %s and %s\n", vm.name, state_path, mem_path);
	return r2;
}
