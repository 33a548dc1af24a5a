// SPDX-License-Identifier: MIT
/*
 * The VMM side of the API: the backend ops api/ dispatches to, on API
 * threads. Fork and clones live in instance-fork.c.
 */
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>

#include "fork.h"
#include "instance-internal.h"
#include "mem-file.h"
#include "state-file.h"
#include "vm-devices.h"
#include "vm-state.h"

/* ---- API ops (on API threads) ---- */

enum vm_run_state instance_get_state(void *opaque)
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

/* Create or replace interface req->id; its TAP is opened at InstanceStart. */
static int op_put_network_interface(void *opaque, const struct vm_net_config *req,
				    struct api_fault *f)
{
	struct instance *inst = opaque;
	struct vm_config *cfg = &inst->cfg;
	uint32_t i;

	pthread_mutex_lock(&inst->lock);
	for (i = 0; i < cfg->nr_nets && strcmp(cfg->nets[i].id, req->id) != 0; i++)
		;
	if (i == VM_MAX_NET) {
		pthread_mutex_unlock(&inst->lock);
		api_fault_set(f, "at most %d network interfaces", VM_MAX_NET);
		return -ENOSPC;
	}
	cfg->nets[i] = *req;
	cfg->nr_nets = MAX(cfg->nr_nets, i + 1);
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

static int op_put_vsock(void *opaque, const struct vm_vsock_config *req, struct api_fault *f)
{
	struct instance *inst = opaque;

	(void)f;
	pthread_mutex_lock(&inst->lock);
	inst->cfg.vsock = *req;
	pthread_mutex_unlock(&inst->lock);
	return 0;
}

static int op_put_entropy(void *opaque, const struct api_entropy_config *req, struct api_fault *f)
{
	struct instance *inst = opaque;

	(void)f;
	pthread_mutex_lock(&inst->lock);
	inst->cfg.rng = req->enabled;
	pthread_mutex_unlock(&inst->lock);
	return 0;
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

static int set_vm_state_locked(struct instance *inst, enum api_vm_target t, struct api_fault *f)
{
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

		r = instance_template_unfreeze(inst, why, sizeof(why));
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

/* Not while an invoke forks (invoke is not a serial request). */
static int op_set_vm_state(void *opaque, enum api_vm_target t, struct api_fault *f)
{
	struct instance *inst = opaque;
	int r;

	pthread_mutex_lock(&inst->fork_lock);
	r = set_vm_state_locked(inst, t, f);
	pthread_mutex_unlock(&inst->fork_lock);
	return r;
}

static int op_get_vm_config(void *opaque, struct api_vm_config *ret)
{
	struct instance *inst = opaque;

	pthread_mutex_lock(&inst->lock);
	ret->cfg = inst->cfg;
	ret->entropy = inst->cfg.rng;
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
	struct instance *inst = opaque;
	struct vm_config *cfg = &inst->cfg;
	int r = 0;

	/* The restored VM's devices are this instance's: overrides change their backends. */
	pthread_mutex_lock(&inst->lock);
	for (uint32_t i = 0; r >= 0 && i < req->nr_net_overrides; i++) {
		const struct api_net_override *o = &req->net_overrides[i];
		uint32_t j;

		for (j = 0; j < cfg->nr_nets && strcmp(cfg->nets[j].id, o->iface_id) != 0; j++)
			;
		if (j == cfg->nr_nets) {
			api_fault_set(f, "network_overrides: no interface '%s' is configured "
					 "(PUT /network-interfaces first)", o->iface_id);
			r = -EINVAL;
			break;
		}
		snprintf(cfg->nets[j].tap_name, sizeof(cfg->nets[j].tap_name), "%s",
			 o->host_dev_name);
		cfg->nets[j].has_tap_fd = false;
	}
	if (r >= 0 && req->has_vsock_override) {
		if (!cfg->vsock.enabled) {
			api_fault_set(f, "vsock_override: no vsock device is configured (PUT /vsock first)");
			r = -EINVAL;
		} else {
			snprintf(cfg->vsock.uds_path, sizeof(cfg->vsock.uds_path), "%s",
				 req->vsock_uds_path);
		}
	}
	pthread_mutex_unlock(&inst->lock);
	return r < 0 ? r : request_start(inst, START_RESTORE, req, f);
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
	.get_state = instance_get_state,
	.put_machine_config = op_put_machine_config,
	.put_boot_source = op_put_boot_source,
	.put_drive = op_put_drive,
	.put_network_interface = op_put_network_interface,
	.put_vsock = op_put_vsock,
	.put_entropy = op_put_entropy,
	.action = op_action,
	.set_vm_state = op_set_vm_state,
	.get_vm_config = op_get_vm_config,
	.snapshot_create = op_snapshot_create,
	.snapshot_load = op_snapshot_load,
	.fork = instance_op_fork,
	.list_clones = instance_op_list_clones,
	.exec = instance_op_exec,
	.invoke = instance_op_invoke,
	.metrics = op_metrics,
	/* Live disk commit: NULL makes the API answer 501 naming the operation. */
};

