// SPDX-License-Identifier: MIT
/*
 * POST /fork on the VMM side: clones get their own name, console, API
 * socket and disk overlays; the template never writes what they share.
 */
#include <fcntl.h>
#include <sched.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fork.h"
#include "instance-internal.h"
#include "qcow2.h"
#include "vm-devices.h"

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
int instance_template_unfreeze(struct instance *inst, char *why, size_t why_len)
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

/* ---- fork ---- */

struct fork_ctx {
	struct instance *inst;
	const struct api_fork_request *req;
	bool agent_by_caller;
	struct api_clone_list *list;
	char dir[API_SOCK_PATH_MAX];
};

/* Clone i of this fork is number n of the template's clones. */
static uint32_t clone_number(const struct fork_ctx *ctx, uint32_t index)
{
	return (uint32_t)(ctx->inst->forks + index + 1);
}

/* Clone i is "<prefix>-<n>", numbered on across forks; its files sit beside the template's. */
static int clone_paths(const struct fork_ctx *ctx, uint32_t index, struct api_clone *c,
		       char *log, size_t log_len)
{
	int a = snprintf(c->name, sizeof(c->name), "%s-%u", ctx->req->name_prefix,
			 (unsigned)clone_number(ctx, index));
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
int instance_create_overlay(const struct vm_drive_config *d, const char *overlay, char *why,
			    size_t why_len)
{
	struct qcow2_reason qr = { "" };
	char backing[PATH_MAX];
	int r;

	/* Absolute: the overlay may be opened from any working directory. */
	if (!realpath(d->path, backing)) {
		snprintf(why, why_len, "drive '%s': %s: %s", d->id, d->path, strerror(errno));
		return neg_errno();
	}
	r = qcow2_create(overlay, &(struct qcow2_create_opts){ .backing = backing }, &qr);
	if (r < 0)
		snprintf(why, why_len, "drive '%s': cannot create overlay %s: %s", d->id, overlay,
			 qr.msg);
	return r;
}

static int overlay_drives(struct instance *inst, const char *dir, const char *tag, char *why,
			  size_t why_len)
{
	for (uint32_t i = 0; i < inst->cfg.nr_drives; i++) {
		struct vm_drive_config *d = &inst->cfg.drives[i];
		char overlay[VM_CONFIG_PATH_MAX];
		int r;

		if (d->read_only)
			continue;
		if ((size_t)snprintf(overlay, sizeof(overlay), "%s/%s-%s.qcow2", dir, tag, d->id) >=
		    sizeof(overlay))
			return -ENAMETOOLONG;
		/* A leftover of an earlier VM by the same name is not ours to reuse. */
		unlink(overlay);
		r = instance_create_overlay(d, overlay, why, why_len);
		if (r >= 0)
			r = vm_drive_swap(inst->vm, d->id, overlay, why, why_len);
		if (r < 0)
			return r;
		snprintf(d->path, sizeof(d->path), "%s", overlay);
	}
	return 0;
}

int instance_clone_vsock_path(const struct instance *inst, const char *name, char *buf,
			      size_t len)
{
	char dir[API_SOCK_PATH_MAX];
	int n;

	runtime_dir(inst, dir, sizeof(dir));
	n = snprintf(buf, len, "%s/%s.vsock", dir, name);
	/* The guest's own connections go to "<path>_<port>": leave room in sun_path. */
	return n < 0 || (size_t)n >= len || (size_t)n + sizeof("_4294967295") > 108
		       ? -ENAMETOOLONG
		       : 0;
}

/*
 * A clone's network: each interface with a clone TAP pattern opens its
 * own TAP (in the clone's network namespace, when one is given; the
 * process then lives there, so every interface shares it); the others
 * have no link. MACs follow the clone number (the agent sets the guest's).
 */
static int clone_network(struct instance *inst, uint32_t n, char *why, size_t why_len)
{
	for (uint32_t i = 0; i < inst->cfg.nr_nets; i++) {
		struct vm_net_config *net = &inst->cfg.nets[i];
		char tap[sizeof(net->tap_name)], ns[sizeof(net->clone_netns)];
		uint8_t mac[6];
		int r;

		vm_net_mac(net, i, n, mac);
		if (vm_config_expand(net->clone_tap_name, n, tap, sizeof(tap)) < 0 ||
		    vm_config_expand(net->clone_netns, n, ns, sizeof(ns)) < 0) {
			snprintf(why, why_len, "interface '%s': clone patterns do not expand",
				 net->id);
			return -EINVAL;
		}
		if (ns[0]) {
			_cleanup_close_ int fd = open(ns, O_RDONLY | O_CLOEXEC);

			if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
				snprintf(why, why_len, "interface '%s': cannot enter network "
						       "namespace %s: %s",
					 net->id, ns, strerror(errno));
				return neg_errno();
			}
		}
		r = vm_net_clone(inst->vm, i, tap[0] ? tap : NULL, mac, why, why_len);
		if (r < 0)
			return r;
		memcpy(net->tap_name, tap, sizeof(tap));
		net->has_tap_fd = false;
		memcpy(net->mac, mac, sizeof(mac));
		net->has_mac = true;
	}
	return 0;
}

/* A clone's vsock device listens on <dir>/<clone>.vsock. */
static int clone_vsock(struct instance *inst, const char *name, char *why, size_t why_len)
{
	struct vm_vsock_config *v = &inst->cfg.vsock;

	if (!v->enabled)
		return 0;
	if (instance_clone_vsock_path(inst, name, v->uds_path, sizeof(v->uds_path)) < 0) {
		snprintf(why, why_len, "the vsock socket path would be too long");
		return -ENAMETOOLONG;
	}
	return vm_vsock_clone(inst->vm, v->uds_path, why, why_len);
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
	/* fvm's own messages about the clone go beside its console, as for a VM fvmctl runs. */
	if (fd >= 0)
		dup2(fd, STDERR_FILENO);
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
	pthread_mutex_init(&inst->fork_lock, NULL);
	inst->clone_number = clone_number(ctx, index);
	if (overlay_drives(inst, ctx->dir, c.name, why, sizeof(why)) < 0 ||
	    clone_vsock(inst, c.name, why, sizeof(why)) < 0 ||
	    clone_network(inst, inst->clone_number, why, sizeof(why)) < 0) {
		log_err("clone %s: %s", c.name, why);
		return 125;
	}
	/* Backends of its own from here on: the devices may take buffers again. */
	vm_thaw_devices(vm);
	if (instance_serve(inst, c.api_sock) < 0) {
		log_err("clone %s: cannot serve its API on %s", c.name, c.api_sock);
		return 125;
	}
	if (ctx->agent_by_caller)
		inst->agent = AGENT_READY;
	else
		instance_agent_start(inst);
	return instance_run_until_stopped(inst, -1);
}

static void reap_clones(struct instance *inst)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < inst->nr_clones; i++) {
		pid_t pid = inst->clones[i].pid;

		/* Reaped by the kernel (SA_NOCLDWAIT): a clone that ended is gone. */
		if (kill(pid, 0) < 0)
			continue;
		inst->clones[kept++] = inst->clones[i];
	}
	inst->nr_clones = kept;
}

static int fork_locked(struct instance *inst, const struct api_fork_request *req,
		       bool agent_by_caller, struct api_clone_list *ret, uint32_t *ret_first_number,
		       struct api_fault *f)
{
	struct fork_ctx ctx = { .inst = inst, .req = req, .list = ret,
				.agent_by_caller = agent_by_caller };
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
	was_running = instance_get_state(inst) == VM_STATE_RUNNING;
	if (was_running)
		vm_pause(inst->vm);
	r = fork_clones(inst->vm, req->count, clone_main, &ctx, pids, &stats);
	if (r >= 0)
		inst->disks_frozen = true;
	if (was_running) {
		char why[API_FAULT_MAX] = "";
		int rr = instance_template_unfreeze(inst, why, sizeof(why));

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
	if (ret_first_number)
		*ret_first_number = clone_number(&ctx, 0);
	inst->forks += req->count;
	inst->fork_ns_total += stats.capture_ns + stats.total_fork_ns;
	return 0;
}

int instance_fork(struct instance *inst, const struct api_fork_request *req, bool agent_by_caller,
		  struct api_clone_list *ret, uint32_t *ret_first_number, struct api_fault *f)
{
	int r;

	pthread_mutex_lock(&inst->fork_lock);
	/* invoke runs beside other requests: the template may have moved on. */
	if (instance_get_state(inst) != VM_STATE_PAUSED &&
	    instance_get_state(inst) != VM_STATE_RUNNING) {
		pthread_mutex_unlock(&inst->fork_lock);
		api_fault_set(f, "the VM is not running or paused");
		return -EINVAL;
	}
	r = fork_locked(inst, req, agent_by_caller, ret, ret_first_number, f);
	pthread_mutex_unlock(&inst->fork_lock);
	return r;
}

int instance_op_fork(void *opaque, const struct api_fork_request *req, struct api_clone_list *ret,
		     struct api_fault *f)
{
	return instance_fork(opaque, req, false, ret, NULL, f);
}

int instance_op_list_clones(void *opaque, struct api_clone_list *ret)
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

