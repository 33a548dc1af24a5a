// SPDX-License-Identifier: MIT
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
#include <sys/wait.h>

#include "fork.h"
#include "instance.h"
#include "qcow2.h"
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
		struct qcow2_reason qr = { "" };
		char backing[PATH_MAX];
		int r;

		if (d->overlay[0] == '\0')
			continue;
		if (access(d->overlay, F_OK) != 0) {
			if (!realpath(d->path, backing)) {
				snprintf(why, len, "drive '%s': %s: %s", d->id, d->path, strerror(errno));
				return neg_errno();
			}
			r = qcow2_create(d->overlay, &(struct qcow2_create_opts){ .backing = backing },
					 &qr);
			if (r < 0) {
				snprintf(why, len, "drive '%s': cannot create overlay %s: %s", d->id,
					 d->overlay, qr.msg);
				return r;
			}
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
		r = vm_attach_drives(inst->vm, &inst->cfg, why, len);
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
		r = vm_attach_drives(inst->vm, &inst->cfg, why, len);
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

static int run_until_stopped(struct instance *inst, int console_in_fd)
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

int instance_main(struct instance *inst)
{
	enum instance_start how = START_BOOT;
	int status;

	if (inst->cfg.kernel_path[0] == '\0') {
		if (!inst->server) {
			log_err("no kernel given (--kernel PATH), and no --api-sock to configure one");
			return 1;
		}
		how = wait_for_start(inst);
		if (how == START_NONE) {
			api_server_stop(inst->server);
			return 0;
		}
	}
	if (start_vm(inst, how) < 0) {
		log_err("%s", inst->start_error);
		if (!inst->server)
			return 1;
		/* An API client asked and got the error; wait for another try. */
		while (inst->state == VM_STATE_NOT_STARTED) {
			how = wait_for_start(inst);
			if (how == START_NONE) {
				api_server_stop(inst->server);
				return 0;
			}
			start_vm(inst, how);
		}
	}
	status = run_until_stopped(inst, inst->console_stdio ? STDIN_FILENO : -1);
	api_server_stop(inst->server);
	inst->server = NULL;
	return status;
}

/* ---- API ops (on API threads) ---- */

static enum vm_run_state op_get_state(void *opaque)
{
	struct instance *inst = opaque;
	enum vm_run_state s;

	pthread_mutex_lock(&inst->lock);
	s = inst->state;
	pthread_mutex_unlock(&inst->lock);
	return s;
}

static int op_put_machine_config(void *opaque, const struct api_machine_config *req,
				 struct api_fault *f)
{
	struct instance *inst = opaque;

	if (req->huge_pages == API_HUGE_PAGES_2M) {
		api_fault_set(f, "hugetlbfs guest memory is not supported; use \"None\"");
		return -ENOSYS;
	}
	pthread_mutex_lock(&inst->lock);
	inst->cfg.vcpus = req->vcpu_count;
	inst->cfg.mem_bytes = req->mem_size_mib << 20;
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

static int op_put_boot_source(void *opaque, const struct api_boot_source *req,
			      struct api_fault *f)
{
	struct instance *inst = opaque;

	pthread_mutex_lock(&inst->lock);
	memcpy(inst->cfg.kernel_path, req->kernel_path, sizeof(inst->cfg.kernel_path));
	memcpy(inst->cfg.initrd_path, req->initrd_path, sizeof(inst->cfg.initrd_path));
	memcpy(inst->cfg.cmdline, req->cmdline, sizeof(inst->cfg.cmdline));
	inst->cfg.has_cmdline = req->has_cmdline;
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

/* Create or replace drive req->id; attached at start, the root drive first. */
static int op_put_drive(void *opaque, const struct vm_drive_config *req, struct api_fault *f)
{
	struct instance *inst = opaque;
	struct vm_config *cfg = &inst->cfg;
	uint32_t i;
	int r = 0;

	pthread_mutex_lock(&inst->lock);
	for (i = 0; i < cfg->nr_drives && strcmp(cfg->drives[i].id, req->id) != 0; i++)
		;
	for (uint32_t j = 0; j < cfg->nr_drives; j++) {
		if (j != i && req->is_root && cfg->drives[j].is_root) {
			api_fault_set(f, "drive '%s' is already the root device", cfg->drives[j].id);
			r = -EINVAL;
		}
	}
	if (r >= 0 && i == VM_MAX_DRIVES) {
		api_fault_set(f, "at most %d drives", VM_MAX_DRIVES);
		r = -ENOSPC;
	}
	/* Opened at InstanceStart; a path that cannot be is this request's fault. */
	if (r >= 0 && access(req->path, req->read_only ? R_OK : R_OK | W_OK) < 0) {
		r = neg_errno();
		api_fault_set(f, "cannot open drive '%s' (%s): %s", req->id, req->path, strerror(-r));
		r = -EINVAL;
	}
	if (r >= 0) {
		cfg->drives[i] = *req;
		cfg->nr_drives = MAX(cfg->nr_drives, i + 1);
	}
	pthread_mutex_unlock(&inst->lock);
	return r;
}

/* Ask the main thread to start the VM and wait for its answer. */
static int request_start(struct instance *inst, enum instance_start how,
			 const struct api_snapshot_load *restore, struct api_fault *f)
{
	uint64_t one = 1;
	int r;

	pthread_mutex_lock(&inst->lock);
	if (inst->state != VM_STATE_NOT_STARTED || inst->start != START_NONE) {
		pthread_mutex_unlock(&inst->lock);
		api_fault_set(f, "the VM is already started or starting");
		return -EBUSY;
	}
	if (how == START_BOOT && inst->cfg.kernel_path[0] == '\0') {
		pthread_mutex_unlock(&inst->lock);
		api_fault_set(f, "no boot source: PUT /boot-source with a kernel_image_path first");
		return -EINVAL;
	}
	if (restore)
		inst->restore = *restore;
	inst->start = how;
	inst->start_done = false;
	if (write(inst->wake_fd, &one, sizeof(one)) < 0) {
		inst->start = START_NONE;
		pthread_mutex_unlock(&inst->lock);
		return neg_errno();
	}
	while (!inst->start_done)
		pthread_cond_wait(&inst->cond, &inst->lock);
	r = inst->start_result;
	if (r < 0)
		api_fault_set(f, "%s", inst->start_error);
	pthread_mutex_unlock(&inst->lock);
	/* A start that failed because of the request (bad kernel, file) is the client's 400. */
	return r < 0 ? -EINVAL : 0;
}

static int op_action(void *opaque, enum api_action a, struct api_fault *f)
{
	struct instance *inst = opaque;

	switch (a) {
	case API_ACTION_INSTANCE_START:
		return request_start(inst, START_BOOT, NULL, f);
	case API_ACTION_FLUSH_METRICS:
		return 0;
	default:
		api_fault_set(f, "SendCtrlAltDel needs an emulated keyboard or ACPI power button, "
				 "which fvm does not provide yet");
		return -ENOSYS;
	}
}

static int overlay_drives(struct instance *inst, const char *dir, const char *tag, char *why,
			  size_t why_len);

/* The directory of this VM's API socket, where its clones' files go too. */
static void runtime_dir(const struct instance *inst, char *out, size_t len)
{
	char copy[API_SOCK_PATH_MAX];

	snprintf(copy, sizeof(copy), "%s", inst->api_sock);
	snprintf(out, len, "%s", dirname(copy));
}

/*
 * Before a forked template runs again: RAM on a private mapping (the
 * memfd belongs to the clones now), and fresh overlays over the disk
 * images they read.
 */
static int template_unfreeze(struct instance *inst, char *why, size_t why_len)
{
	char dir[API_SOCK_PATH_MAX], tag[API_NAME_MAX + 24];
	int r;

	if (!inst->vm->mem.private_mapping) {
		r = fork_template_go_private(inst->vm);
		if (r < 0) {
			snprintf(why, why_len, "cannot move to private memory: %s", strerror(-r));
			return r;
		}
	}
	if (!inst->disks_frozen)
		return 0;
	runtime_dir(inst, dir, sizeof(dir));
	snprintf(tag, sizeof(tag), "%s-gen%llu", inst->name, (unsigned long long)inst->forks);
	r = overlay_drives(inst, dir, tag, why, why_len);
	if (r >= 0)
		inst->disks_frozen = false;
	return r;
}

static int op_set_vm_state(void *opaque, enum api_vm_target t, struct api_fault *f)
{
	struct instance *inst = opaque;
	int r;

	if (t == API_VM_PAUSE) {
		vm_pause(inst->vm);
		pthread_mutex_lock(&inst->lock);
		inst->state = VM_STATE_PAUSED;
		pthread_mutex_unlock(&inst->lock);
		return 0;
	}
	/* A forked template must never write what its clones share again. */
	if (inst->forks > 0) {
		char why[API_FAULT_MAX] = "";

		r = template_unfreeze(inst, why, sizeof(why));
		if (r < 0) {
			api_fault_set(f, "%s", why);
			return r;
		}
	}
	pthread_mutex_lock(&inst->lock);
	inst->state = VM_STATE_RUNNING;
	pthread_mutex_unlock(&inst->lock);
	vm_resume(inst->vm);
	return 0;
}

static int op_get_vm_config(void *opaque, struct api_vm_config *ret)
{
	struct instance *inst = opaque;

	pthread_mutex_lock(&inst->lock);
	ret->cfg = inst->cfg;
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

static int op_snapshot_create(void *opaque, const struct api_snapshot_create *req,
			      struct api_fault *f)
{
	struct instance *inst = opaque;
	_cleanup_(vm_state_freep) struct vm_state *st = vm_state_new(inst->vm->nr_vcpus);
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(inst->vm, devs, VM_MAX_STATE_DEVICES);
	_cleanup_free_ void *blob = NULL;
	size_t len;
	int r;

	if (req->type != API_SNAPSHOT_FULL) {
		api_fault_set(f, "only Full snapshots are supported");
		return -ENOSYS;
	}
	if (!st)
		return -ENOMEM;
	r = vm_state_capture(inst->vm, st);
	if (r >= 0)
		r = state_encode(st, devs, n, &blob, &len);
	if (r < 0) {
		api_fault_set(f, "capturing the VM state failed: %s", strerror(-r));
		return -EIO;
	}
	/* Memory first: a state file never names memory that is not there yet. */
	r = memfile_write(req->mem_file_path, &inst->vm->mem);
	if (r < 0) {
		api_fault_set(f, "cannot write memory file '%s': %s", req->mem_file_path,
			      strerror(-r));
		return -EINVAL;
	}
	r = state_write_file(req->snapshot_path, blob, len);
	if (r < 0) {
		api_fault_set(f, "cannot write snapshot '%s': %s", req->snapshot_path, strerror(-r));
		return -EINVAL;
	}
	return 0;
}

static int op_snapshot_load(void *opaque, const struct api_snapshot_load *req,
			    struct api_fault *f)
{
	if (req->nr_net_overrides || req->has_vsock_override) {
		api_fault_set(f, "network and vsock overrides need devices fvm does not have yet");
		return -ENOSYS;
	}
	return request_start(opaque, START_RESTORE, req, f);
}

/* ---- fork ---- */

struct fork_ctx {
	struct instance *inst;
	const struct api_fork_request *req;
	struct api_clone_list *list;
	char dir[API_SOCK_PATH_MAX];
};

/* Clone i is "<prefix>-<n>", numbered on across forks; its files sit beside the template's. */
static int clone_paths(const struct fork_ctx *ctx, uint32_t index, struct api_clone *c,
		       char *log, size_t log_len)
{
	int a = snprintf(c->name, sizeof(c->name), "%s-%u", ctx->req->name_prefix,
			 (unsigned)(ctx->inst->forks + index + 1));
	int b = snprintf(c->api_sock, sizeof(c->api_sock), "%s/%s.sock", ctx->dir, c->name);
	int l = snprintf(log, log_len, "%s/%s.log", ctx->dir, c->name);

	if (a < 0 || (size_t)a >= sizeof(c->name) || b < 0 || (size_t)b >= sizeof(c->api_sock) ||
	    l < 0 || (size_t)l >= log_len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Give every writable drive a fresh qcow2 overlay <dir>/<tag>-<drive>.qcow2
 * over the image it uses now, and switch to it. A fork freezes a VM's
 * images: its clones read them as their backing files, so neither the
 * clones nor the template may write them again.
 */
static int overlay_drives(struct instance *inst, const char *dir, const char *tag, char *why,
			  size_t why_len)
{
	for (uint32_t i = 0; i < inst->cfg.nr_drives; i++) {
		struct vm_drive_config *d = &inst->cfg.drives[i];
		struct qcow2_reason qr = { "" };
		char backing[PATH_MAX], overlay[VM_CONFIG_PATH_MAX];
		int r;

		if (d->read_only)
			continue;
		if (!realpath(d->path, backing)) {
			snprintf(why, why_len, "drive '%s': %s: %s", d->id, d->path, strerror(errno));
			return neg_errno();
		}
		if ((size_t)snprintf(overlay, sizeof(overlay), "%s/%s-%s.qcow2", dir, tag, d->id) >=
		    sizeof(overlay))
			return -ENAMETOOLONG;
		/* A leftover of an earlier VM by the same name is not ours to reuse. */
		unlink(overlay);
		r = qcow2_create(overlay, &(struct qcow2_create_opts){ .backing = backing }, &qr);
		if (r < 0) {
			snprintf(why, why_len, "drive '%s': cannot create overlay %s: %s", d->id,
				 overlay, qr.msg);
			return r;
		}
		r = vm_drive_swap(inst->vm, d->id, overlay, why, why_len);
		if (r < 0)
			return r;
		snprintf(d->path, sizeof(d->path), "%s", overlay);
	}
	return 0;
}

/* In a clone: take its own name, console, disks and API socket, then run. */
static int clone_main(struct vm *vm, uint32_t index, void *opaque)
{
	struct fork_ctx *ctx = opaque;
	struct instance *inst = ctx->inst;
	struct api_clone c;
	char log[API_SOCK_PATH_MAX + 8], why[API_FAULT_MAX] = "";
	int fd;

	if (clone_paths(ctx, index, &c, log, sizeof(log)) < 0)
		return 125;
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	vm->serial.out_fd = fd;
	inst->console_fd = fd;
	inst->console_stdio = false;
	inst->nr_clones = 0;
	inst->forks = 0;
	inst->server = NULL;
	pthread_mutex_init(&inst->lock, NULL);
	pthread_cond_init(&inst->cond, NULL);
	inst->state = ctx->req->resume ? VM_STATE_RUNNING : VM_STATE_PAUSED;
	inst->disks_frozen = false;
	vm->pause_requested = !ctx->req->resume;
	if (overlay_drives(inst, ctx->dir, c.name, why, sizeof(why)) < 0) {
		log_err("clone %s: %s", c.name, why);
		return 125;
	}
	if (instance_serve(inst, c.api_sock) < 0) {
		log_err("clone %s: cannot serve its API on %s", c.name, c.api_sock);
		return 125;
	}
	return run_until_stopped(inst, -1);
}

static void reap_clones(struct instance *inst)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < inst->nr_clones; i++) {
		pid_t pid = inst->clones[i].pid;

		if (waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0) < 0)
			continue;
		inst->clones[kept++] = inst->clones[i];
	}
	inst->nr_clones = kept;
}

static int op_fork(void *opaque, const struct api_fork_request *req, struct api_clone_list *ret,
		   struct api_fault *f)
{
	struct instance *inst = opaque;
	struct fork_ctx ctx = { .inst = inst, .req = req, .list = ret };
	pid_t pids[API_FORK_MAX];
	struct fork_stats stats = { 0 };
	char copy[API_SOCK_PATH_MAX];
	bool was_running;
	int r;

	snprintf(copy, sizeof(copy), "%s", inst->api_sock);
	snprintf(ctx.dir, sizeof(ctx.dir), "%s", dirname(copy));
	reap_clones(inst);
	{
		struct api_clone probe;
		char log[API_SOCK_PATH_MAX + 8];

		if (clone_paths(&ctx, req->count - 1, &probe, log, sizeof(log)) < 0) {
			api_fault_set(f, "clone socket paths would be longer than %d bytes: use a "
					 "shorter name_prefix or runtime directory",
				      API_SOCK_PATH_MAX - 1);
			return -EINVAL;
		}
	}
	if (inst->nr_clones + req->count > API_CLONES_MAX) {
		api_fault_set(f, "at most %d live clones per template", API_CLONES_MAX);
		return -EINVAL;
	}
	/*
	 * A running VM is paused for the fork ("clone the running service and
	 * scan the clone") and then runs on, on a private mapping, since its
	 * clones now share its memfd.
	 */
	was_running = op_get_state(inst) == VM_STATE_RUNNING;
	if (was_running)
		vm_pause(inst->vm);
	r = fork_clones(inst->vm, req->count, clone_main, &ctx, pids, &stats);
	if (r >= 0)
		inst->disks_frozen = true;
	if (was_running) {
		char why[API_FAULT_MAX] = "";
		int rr = template_unfreeze(inst, why, sizeof(why));

		if (rr < 0) {
			/* Running on the shared memfd or images would corrupt the clones. */
			pthread_mutex_lock(&inst->lock);
			inst->state = VM_STATE_PAUSED;
			pthread_mutex_unlock(&inst->lock);
			log_err("%s: staying paused after the fork: %s", inst->name, why);
		} else {
			vm_resume(inst->vm);
		}
	}
	if (r < 0) {
		api_fault_set(f, "fork failed: %s", strerror(-r));
		return -EIO;
	}
	ret->count = req->count;
	for (uint32_t i = 0; i < req->count; i++) {
		char log[API_SOCK_PATH_MAX + 8];
		struct api_clone *c = &ret->clones[i];

		(void)clone_paths(&ctx, i, c, log, sizeof(log)); /* checked before the fork */
		c->pid = pids[i];
		inst->clones[inst->nr_clones].pid = pids[i];
		memcpy(inst->clones[inst->nr_clones].name, c->name, sizeof(c->name));
		memcpy(inst->clones[inst->nr_clones].api_sock, c->api_sock, sizeof(c->api_sock));
		inst->nr_clones++;
	}
	inst->forks += req->count;
	inst->fork_ns_total += stats.capture_ns + stats.total_fork_ns;
	return 0;
}

static int op_list_clones(void *opaque, struct api_clone_list *ret)
{
	struct instance *inst = opaque;

	pthread_mutex_lock(&inst->lock);
	reap_clones(inst);
	ret->count = inst->nr_clones;
	for (uint32_t i = 0; i < inst->nr_clones; i++) {
		memcpy(ret->clones[i].name, inst->clones[i].name, sizeof(ret->clones[i].name));
		ret->clones[i].pid = inst->clones[i].pid;
		memcpy(ret->clones[i].api_sock, inst->clones[i].api_sock,
		       sizeof(ret->clones[i].api_sock));
	}
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

static int op_metrics(void *opaque, char *buf, size_t len)
{
	static const char *const stat_names[VCPU_STAT_MAX] = {
		[VCPU_STAT_IO] = "io", [VCPU_STAT_MMIO] = "mmio",
		[VCPU_STAT_IOAPIC_EOI] = "ioapic_eoi", [VCPU_STAT_INTR] = "intr",
		[VCPU_STAT_OTHER] = "other",
	};
	struct instance *inst = opaque;
	struct vm *vm = inst->vm;
	size_t used = 0;

#define EMIT(...)                                                                                  \
	do {                                                                                       \
		int _n = snprintf(buf + used, len - used, __VA_ARGS__);                            \
		if (_n < 0 || (size_t)_n >= len - used)                                            \
			return -ENOSPC;                                                            \
		used += (size_t)_n;                                                                \
	} while (0)

	EMIT("# TYPE fvm_vcpu_exits_total counter\n");
	for (uint32_t i = 0; vm && i < vm->nr_vcpus; i++)
		for (int s = 0; s < VCPU_STAT_MAX; s++)
			EMIT("fvm_vcpu_exits_total{vcpu=\"%u\",reason=\"%s\"} %llu\n", i,
			     stat_names[s], (unsigned long long)vm->vcpus[i].exits[s]);
	EMIT("# TYPE fvm_device_bytes_total counter\n");
	EMIT("fvm_device_bytes_total{device=\"serial\",dir=\"tx\"} %llu\n",
	     vm ? (unsigned long long)vm->serial.tx_bytes : 0ull);
	EMIT("fvm_device_bytes_total{device=\"serial\",dir=\"rx\"} %llu\n",
	     vm ? (unsigned long long)vm->serial.rx_bytes : 0ull);
	EMIT("# TYPE fvm_unclaimed_accesses_total counter\n");
	EMIT("fvm_unclaimed_accesses_total{bus=\"pio\"} %llu\n",
	     vm ? (unsigned long long)vm->pio.unclaimed_accesses : 0ull);
	EMIT("fvm_unclaimed_accesses_total{bus=\"mmio\"} %llu\n",
	     vm ? (unsigned long long)vm->mmio.unclaimed_accesses : 0ull);
	EMIT("# TYPE fvm_forks_total counter\nfvm_forks_total %llu\n",
	     (unsigned long long)inst->forks);
	EMIT("# TYPE fvm_fork_seconds_total counter\nfvm_fork_seconds_total %.6f\n",
	     (double)inst->fork_ns_total / 1e9);
	EMIT("# TYPE fvm_clones gauge\nfvm_clones %u\n", inst->nr_clones);
#undef EMIT
	return (int)used;
}

const struct api_backend_ops instance_api_ops = {
	.get_state = op_get_state,
	.put_machine_config = op_put_machine_config,
	.put_boot_source = op_put_boot_source,
	.put_drive = op_put_drive,
	.action = op_action,
	.set_vm_state = op_set_vm_state,
	.get_vm_config = op_get_vm_config,
	.snapshot_create = op_snapshot_create,
	.snapshot_load = op_snapshot_load,
	.fork = op_fork,
	.list_clones = op_list_clones,
	.metrics = op_metrics,
	/*
	 * Network interfaces, vsock, entropy, exec, invoke and disk
	 * commit need devices and the guest agent that fvm does not have yet:
	 * NULL makes the API answer 501 naming the missing operation.
	 */
};
