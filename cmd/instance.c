// SPDX-License-Identifier: MIT
/* An fvm instance's life: configured, started (booted or restored), run, stopped. */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include "instance-internal.h"
#include "mem-file.h"
#include "state-file.h"
#include "vm-devices.h"
#include "vm-state.h"

int instance_init(struct instance *inst, const struct vm_config *cfg, int console_fd,
		  bool console_stdio)
{
	memset(inst, 0, sizeof(*inst));
	pthread_mutex_init(&inst->lock, NULL);
	pthread_cond_init(&inst->cond, NULL);
	pthread_mutex_init(&inst->fork_lock, NULL);
	inst->cfg = *cfg;
	inst->state = VM_STATE_NOT_STARTED;
	inst->console_fd = console_fd;
	inst->console_stdio = console_stdio;
	/* Unnamed until it serves an API socket (its name is the socket's). */
	inst->name[0] = '\0';
	inst->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return inst->wake_fd < 0 ? neg_errno() : 0;
}

/* The instance name is the socket's file name without ".sock" (as fvmctl names VMs). */
static void name_from_socket(struct instance *inst, const char *path)
{
	char copy[API_SOCK_PATH_MAX];
	char *base, *dot;

	snprintf(copy, sizeof(copy), "%s", path);
	base = basename(copy);
	dot = strrchr(base, '.');
	if (dot && strcmp(dot, ".sock") == 0)
		*dot = '\0';
	snprintf(inst->name, sizeof(inst->name), "%s", base);
}

int instance_serve(struct instance *inst, const char *path)
{
	if (strlen(path) >= sizeof(inst->api_sock))
		return -ENAMETOOLONG;
	snprintf(inst->api_sock, sizeof(inst->api_sock), "%s", path);
	name_from_socket(inst, path);
	return api_server_start(path, &instance_api_ops, inst, &inst->server);
}

/* ---- starting: boot or restore, on the main thread ---- */

/*
 * Drives given with overlay=: create the qcow2 overlay over the drive's
 * image when it does not exist yet, and use it from now on.
 */
static int open_overlays(struct instance *inst, char *why, size_t len)
{
	for (uint32_t i = 0; i < inst->cfg.nr_drives; i++) {
		struct vm_drive_config *d = &inst->cfg.drives[i];
		int r;

		if (d->overlay[0] == '\0')
			continue;
		if (access(d->overlay, F_OK) != 0) {
			r = instance_create_overlay(d, d->overlay, why, len);
			if (r < 0)
				return r;
		}
		memcpy(d->path, d->overlay, sizeof(d->path));
		d->overlay[0] = '\0';
	}
	return 0;
}

static int boot_vm(struct instance *inst, char *why, size_t len)
{
	struct vm_params p = { .mem_bytes = inst->cfg.mem_bytes, .nr_vcpus = inst->cfg.vcpus,
			       .console_fd = inst->console_fd };
	const char *reason;
	int r = vm_config_validate(&inst->cfg, &reason);

	if (r < 0) {
		snprintf(why, len, "%s", reason);
		return r;
	}
	r = vm_create(&p, &inst->vm, why, len);
	if (r < 0)
		return r;
	r = open_overlays(inst, why, len);
	if (r >= 0)
		r = vm_attach_devices(inst->vm, &inst->cfg, why, len);
	if (r < 0)
		return r;
	return vm_load_linux(inst->vm, &inst->cfg, why, len);
}

static int restore_vm(struct instance *inst, char *why, size_t len)
{
	const struct api_snapshot_load *req = &inst->restore;
	_cleanup_free_ void *blob = NULL;
	_cleanup_(vm_state_freep) struct vm_state *peek = NULL, *st = NULL;
	struct state_device devs[VM_MAX_STATE_DEVICES];
	struct vm_params p = { .console_fd = inst->console_fd };
	size_t blob_len;
	uint32_t n;
	int r;

	r = state_read_file(req->snapshot_path, STATE_FILE_MAX, &blob, &blob_len);
	if (r < 0) {
		snprintf(why, len, "cannot read snapshot '%s': %s", req->snapshot_path,
			 strerror(-r));
		return r;
	}
	/* First pass: validate, and learn the machine's shape to build it. */
	r = state_decode(blob, blob_len, &peek, NULL, 0, why, len);
	if (r < 0)
		return r;
	p.mem_bytes = peek->mem_bytes;
	p.nr_vcpus = peek->nr_vcpus;
	r = vm_create(&p, &inst->vm, why, len);
	if (r < 0)
		return r;
	r = memfile_map_private(req->mem_file_path, &inst->vm->mem);
	if (r < 0) {
		snprintf(why, len, "cannot map memory file '%s': %s (it must be exactly %llu bytes)",
			 req->mem_file_path, strerror(-r), (unsigned long long)p.mem_bytes);
		return r;
	}
	/*
	 * The drives configured for this instance, attached as at boot: their
	 * saved state is found by slot and refused unless the disk matches.
	 */
	r = open_overlays(inst, why, len);
	if (r >= 0)
		r = vm_attach_devices(inst->vm, &inst->cfg, why, len);
	if (r < 0)
		return r;
	n = vm_state_devices(inst->vm, devs, VM_MAX_STATE_DEVICES);
	r = state_decode(blob, blob_len, &st, devs, n, why, len);
	if (r < 0)
		return r;
	r = vm_state_restore(inst->vm, st, req->clock_realtime ? VM_CLOCK_REALTIME : VM_CLOCK_CONTINUE);
	if (r < 0) {
		snprintf(why, len, "restoring the snapshot into KVM failed: %s", strerror(-r));
		return r;
	}
	/* Every restore is a new instance of the machine: new generation ID. */
	r = vmgenid_regenerate(&inst->vm->genid, &inst->vm->mem);
	if (r < 0) {
		snprintf(why, len, "cannot renew the VM generation ID: %s", strerror(-r));
		return r;
	}
	/* Host connections did not survive: the guest's vsock driver must drop its own. */
	vm_devices_after_restore(inst->vm);
	inst->cfg.mem_bytes = p.mem_bytes;
	inst->cfg.vcpus = p.nr_vcpus;
	return 0;
}

static int start_vm(struct instance *inst, enum instance_start how)
{
	char why[API_FAULT_MAX] = "";
	bool paused = how == START_RESTORE && !inst->restore.resume_vm;
	int r = how == START_RESTORE ? restore_vm(inst, why, sizeof(why))
				     : boot_vm(inst, why, sizeof(why));

	if (r < 0) {
		vm_destroy(inst->vm);
		inst->vm = NULL;
	} else if (paused) {
		/* vCPU threads park before their first KVM_RUN. */
		inst->vm->pause_requested = true;
	}
	pthread_mutex_lock(&inst->lock);
	inst->start_result = r;
	snprintf(inst->start_error, sizeof(inst->start_error), "%s", why[0] ? why : strerror(-r));
	inst->state = r < 0 ? VM_STATE_NOT_STARTED : paused ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	inst->start = START_NONE;
	inst->start_done = true;
	pthread_cond_broadcast(&inst->cond);
	pthread_mutex_unlock(&inst->lock);
	return r;
}

/* Wait for an API start request or a stop signal. Returns the request, or START_NONE. */
static enum instance_start wait_for_start(struct instance *inst)
{
	_cleanup_close_ int sfd = -1;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	for (;;) {
		struct pollfd fds[2] = { { .fd = inst->wake_fd, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };
		enum instance_start how;
		uint64_t v;

		pthread_mutex_lock(&inst->lock);
		how = inst->start;
		pthread_mutex_unlock(&inst->lock);
		if (how != START_NONE)
			return how;
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return START_NONE;
		if (fds[1].revents & POLLIN)
			return START_NONE;
		if (read(inst->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return START_NONE;
	}
}

static int exit_status_for(enum vm_exit_reason reason)
{
	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_REBOOT:
	case VM_EXIT_SIGNAL:
		return 0;
	default:
		return 1;
	}
}

int instance_run_until_stopped(struct instance *inst, int console_in_fd)
{
	enum vm_exit_reason reason = vm_run(inst->vm, console_in_fd);

	pthread_mutex_lock(&inst->lock);
	inst->state = VM_STATE_STOPPED;
	pthread_mutex_unlock(&inst->lock);
	if (reason == VM_EXIT_POWEROFF || reason == VM_EXIT_REBOOT)
		log_info("%s%sguest %s", inst->name, inst->name[0] ? ": " : "",
			 vm_exit_reason_name(reason));
	else if (reason != VM_EXIT_SIGNAL)
		log_err("%s%sVM stopped: %s", inst->name, inst->name[0] ? ": " : "",
			vm_exit_reason_name(reason));
	return exit_status_for(reason);
}

static int serve_api(struct instance *inst, const char *path)
{
	int r = instance_serve(inst, path);

	if (r < 0)
		log_err("cannot serve the API on '%s': %s", path, strerror(-r));
	return r;
}

int instance_main(struct instance *inst, const char *api_sock)
{
	/* A kernel from flags or a file boots at once; otherwise the API starts the VM. */
	enum instance_start how = inst->cfg.kernel_path[0] ? START_BOOT : START_NONE;
	bool api = api_sock && api_sock[0];
	int status;

	if (how == START_NONE && !api) {
		log_err("no kernel given (--kernel PATH), and no --api-sock to configure one");
		return 1;
	}
	if (how == START_NONE && serve_api(inst, api_sock) < 0)
		return 1;
	for (;;) {
		if (how == START_NONE)
			how = wait_for_start(inst);
		if (how == START_NONE) {
			api_server_stop(inst->server);
			return 0;
		}
		if (start_vm(inst, how) >= 0)
			break;
		log_err("%s", inst->start_error);
		if (!api || (!inst->server && serve_api(inst, api_sock) < 0))
			return 1;
		/* Wait for another try over the API (whose client, if it asked, got the error). */
		how = START_NONE;
	}
	/*
	 * A VM booted from flags serves its API once it runs: whoever finds the
	 * socket finds the VM running (fvmctl run returns then).
	 */
	if (api && !inst->server && serve_api(inst, api_sock) < 0)
		return 1;
	instance_agent_start(inst);
	status = instance_run_until_stopped(inst, inst->console_stdio ? STDIN_FILENO : -1);
	api_server_stop(inst->server);
	inst->server = NULL;
	return status;
}
