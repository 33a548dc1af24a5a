// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-backend.h"
#include "util.h"

static void record(struct fake_backend *fb, const char *fmt, ...) __printf(2, 3);

/* Caller holds fb->lock. One line per call, flushed so a test can read it at once. */
static void record(struct fake_backend *fb, const char *fmt, ...)
{
	va_list ap;

	if (!fb->record)
		return;
	va_start(ap, fmt);
	vfprintf(fb->record, fmt, ap);
	va_end(ap);
	fputc('\n', fb->record);
	fflush(fb->record);
}

static int magic_failure(const char *path, struct api_fault *f)
{
	if (strstr(path, "fail-enoent")) {
		api_fault_set(f, "fake: cannot open '%s': No such file or directory", path);
		return -ENOENT;
	}
	if (strstr(path, "fail-eio"))
		return -EIO;
	return 0;
}

static enum vm_run_state fake_get_state(void *opaque)
{
	struct fake_backend *fb = opaque;
	enum vm_run_state s;

	pthread_mutex_lock(&fb->lock);
	s = fb->state;
	pthread_mutex_unlock(&fb->lock);
	return s;
}

static int fake_put_machine_config(void *opaque, const struct api_machine_config *req,
				   struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	fb->cfg->cfg.vcpus = req->vcpu_count;
	fb->cfg->cfg.mem_bytes = req->mem_size_mib << 20;
	fb->cfg->smt = req->smt;
	fb->cfg->track_dirty_pages = req->track_dirty_pages;
	fb->cfg->huge_pages = req->huge_pages;
	record(fb, "put_machine_config vcpu_count=%u mem_size_mib=%llu smt=%d dirty=%d huge=%d",
	       req->vcpu_count, (unsigned long long)req->mem_size_mib, req->smt,
	       req->track_dirty_pages, req->huge_pages);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_put_boot_source(void *opaque, const struct api_boot_source *req,
				struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	int r = magic_failure(req->kernel_path, f);

	if (r < 0)
		return r;
	pthread_mutex_lock(&fb->lock);
	strcpy(fb->cfg->cfg.kernel_path, req->kernel_path);
	strcpy(fb->cfg->cfg.initrd_path, req->initrd_path);
	strcpy(fb->cfg->cfg.cmdline, req->cmdline);
	fb->cfg->cfg.has_cmdline = req->has_cmdline;
	record(fb, "put_boot_source kernel=%s initrd=%s has_cmdline=%d cmdline=%s",
	       req->kernel_path, req->initrd_path, req->has_cmdline, req->cmdline);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_put_drive(void *opaque, const struct vm_drive_config *req, struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	struct api_vm_config *c = fb->cfg;
	uint32_t i;
	int r = magic_failure(req->path, f);

	if (r < 0)
		return r;
	pthread_mutex_lock(&fb->lock);
	for (i = 0; i < c->cfg.nr_drives; i++)
		if (strcmp(c->cfg.drives[i].id, req->id) == 0)
			break;
	if (i == VM_MAX_DRIVES) {
		pthread_mutex_unlock(&fb->lock);
		api_fault_set(f, "fake: at most %d drives", VM_MAX_DRIVES);
		return -ENOSPC;
	}
	c->cfg.drives[i] = *req;
	if (i == c->cfg.nr_drives)
		c->cfg.nr_drives++;
	record(fb, "put_drive id=%s path=%s root=%d ro=%d", req->id, req->path, req->is_root,
	       req->read_only);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_put_net(void *opaque, const struct vm_net_config *req, struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	struct api_vm_config *c = fb->cfg;
	uint32_t i;

	pthread_mutex_lock(&fb->lock);
	for (i = 0; i < c->cfg.nr_nets; i++)
		if (strcmp(c->cfg.nets[i].id, req->id) == 0)
			break;
	if (i == VM_MAX_NET) {
		pthread_mutex_unlock(&fb->lock);
		api_fault_set(f, "fake: at most %d network interfaces", VM_MAX_NET);
		return -ENOSPC;
	}
	c->cfg.nets[i] = *req;
	if (i == c->cfg.nr_nets)
		c->cfg.nr_nets++;
	record(fb,
	       "put_network_interface id=%s tap=%s has_mac=%d mac=%02x:%02x:%02x:%02x:%02x:%02x",
	       req->id, req->tap_name, req->has_mac, req->mac[0], req->mac[1], req->mac[2],
	       req->mac[3], req->mac[4], req->mac[5]);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_put_vsock(void *opaque, const struct vm_vsock_config *req, struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	fb->cfg->cfg.vsock = *req;
	record(fb, "put_vsock cid=%u uds=%s", req->guest_cid, req->uds_path);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_put_entropy(void *opaque, const struct api_entropy_config *req, struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	fb->cfg->entropy = req->enabled;
	record(fb, "put_entropy enabled=%d", req->enabled);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_action(void *opaque, enum api_action a, struct api_fault *f)
{
	static const char *const names[API_ACTION_MAX] = {"InstanceStart", "SendCtrlAltDel",
							  "FlushMetrics"};
	struct fake_backend *fb = opaque;
	bool shutdown = false;

	pthread_mutex_lock(&fb->lock);
	if (a == API_ACTION_INSTANCE_START) {
		if (!fb->cfg->cfg.kernel_path[0]) {
			pthread_mutex_unlock(&fb->lock);
			api_fault_set(f, "fake: cannot start: no boot source");
			return -EINVAL;
		}
		fb->state = VM_STATE_RUNNING;
	} else if (a == API_ACTION_SEND_CTRL_ALT_DEL) {
		fb->state = VM_STATE_STOPPED;
		shutdown = true;
	}
	record(fb, "action %s", names[a]);
	pthread_mutex_unlock(&fb->lock);
	if (shutdown && fb->on_shutdown)
		fb->on_shutdown(fb->on_shutdown_arg);
	return 0;
}

static int fake_set_vm_state(void *opaque, enum api_vm_target t, struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	fb->state = t == API_VM_PAUSE ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	record(fb, "set_vm_state %s", t == API_VM_PAUSE ? "Paused" : "Resumed");
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_get_vm_config(void *opaque, struct api_vm_config *ret)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	*ret = *fb->cfg;
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_snapshot_create(void *opaque, const struct api_snapshot_create *req,
				struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	int r = magic_failure(req->snapshot_path, f);

	if (r < 0)
		return r;
	pthread_mutex_lock(&fb->lock);
	record(fb, "snapshot_create state=%s mem=%s type=%s", req->snapshot_path,
	       req->mem_file_path, req->type == API_SNAPSHOT_DIFF ? "Diff" : "Full");
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_snapshot_load(void *opaque, const struct api_snapshot_load *req,
			      struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	int r = magic_failure(req->snapshot_path, f);

	if (r < 0)
		return r;
	pthread_mutex_lock(&fb->lock);
	fb->state = req->resume_vm ? VM_STATE_RUNNING : VM_STATE_PAUSED;
	record(fb, "snapshot_load state=%s mem=%s resume=%d dirty=%d clock_realtime=%d nets=%u%s%s",
	       req->snapshot_path, req->mem_file_path, req->resume_vm, req->track_dirty_pages,
	       req->clock_realtime, req->nr_net_overrides, req->has_vsock_override ? " vsock=" : "",
	       req->has_vsock_override ? req->vsock_uds_path : "");
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_fork(void *opaque, const struct api_fork_request *req, struct api_clone_list *ret,
		     struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	if (fb->clones->count + req->count > API_CLONES_MAX) {
		pthread_mutex_unlock(&fb->lock);
		api_fault_set(f, "fake: at most %d clones", API_CLONES_MAX);
		return -ENOSPC;
	}
	ret->count = 0;
	for (uint32_t i = 0; i < req->count; i++) {
		struct api_clone c = {.pid = (int32_t)getpid()};
		int n;

		snprintf(c.name, sizeof(c.name), "%s-%u", req->name_prefix, fb->next_clone++);
		n = snprintf(c.api_sock, sizeof(c.api_sock), "%s/%s.sock", fb->sock_dir, c.name);
		if (n < 0 || (size_t)n >= sizeof(c.api_sock)) {
			pthread_mutex_unlock(&fb->lock);
			api_fault_set(f, "fake: socket path for '%s' too long", c.name);
			return -ENAMETOOLONG;
		}
		fb->clones->clones[fb->clones->count++] = c;
		ret->clones[ret->count++] = c;
	}
	record(fb, "fork count=%u prefix=%s resume=%d", req->count, req->name_prefix, req->resume);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_list_clones(void *opaque, struct api_clone_list *ret)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	memcpy(ret, fb->clones, sizeof(*ret));
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static char *join_args(const struct api_exec_request *req, size_t *ret_len)
{
	size_t len = 0;
	char *s, *p;

	for (uint32_t i = 1; i < req->argc; i++)
		len += strlen(req->argv[i]) + 1;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	p = s;
	for (uint32_t i = 1; i < req->argc; i++)
		p += sprintf(p, "%s%s", req->argv[i], i + 1 < req->argc ? " " : "\n");
	*ret_len = (size_t)(p - s);
	return s;
}

/* A guest stand-in: a handful of commands with well-known behaviour. */
static int fake_run(const struct api_exec_request *req, struct api_exec_result *ret,
		    struct api_fault *f)
{
	const char *cmd = req->argv[0];
	struct api_exec_result r = {0};

	if (strcmp(cmd, "echo") == 0) {
		r.stdout_buf = join_args(req, &r.stdout_len);
	} else if (strcmp(cmd, "cat") == 0) {
		r.stdout_buf = malloc(req->stdin_len + 1);
		if (r.stdout_buf && req->stdin_len)
			memcpy(r.stdout_buf, req->stdin_data, req->stdin_len);
		r.stdout_len = req->stdin_len;
	} else if (strcmp(cmd, "env") == 0) {
		size_t len = 0;

		for (uint32_t i = 0; i < req->envc; i++)
			len += strlen(req->envp[i]) + 1;
		r.stdout_buf = malloc(len + 1);
		for (uint32_t i = 0; r.stdout_buf && i < req->envc; i++)
			r.stdout_len +=
			    (size_t)sprintf(r.stdout_buf + r.stdout_len, "%s\n", req->envp[i]);
	} else if (strcmp(cmd, "false") == 0) {
		r.exit_code = 1;
		r.stderr_buf = strdup("false: failed\n");
		r.stderr_len = r.stderr_buf ? strlen(r.stderr_buf) : 0;
	} else if (strcmp(cmd, "sleep") == 0) {
		unsigned int ms = req->argc > 1 ? (unsigned int)atoi(req->argv[1]) : 100;

		usleep(MIN(ms, 10000u) * 1000);
	} else if (strcmp(cmd, "kill") == 0) {
		r.signal = SIGKILL;
	} else if (strcmp(cmd, "binary") == 0) {
		r.stdout_buf = malloc(4);
		if (r.stdout_buf)
			memcpy(r.stdout_buf,
			       "a\xff\xfe"
			       "b",
			       4);
		r.stdout_len = 4;
	} else if (strcmp(cmd, "timeout") == 0) {
		api_fault_set(f, "fake: '%s' did not finish within %u ms", cmd, req->timeout_ms);
		return -ETIMEDOUT;
	} else {
		api_fault_set(f, "fake: %s: command not found", cmd);
		return -ENOENT;
	}
	*ret = r;
	return 0;
}

static int fake_exec(void *opaque, const struct api_exec_request *req, struct api_exec_result *ret,
		     struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	pthread_mutex_lock(&fb->lock);
	record(fb, "exec argc=%u argv0=%s envc=%u stdin_len=%zu timeout_ms=%u", req->argc,
	       req->argv[0], req->envc, req->stdin_len, req->timeout_ms);
	pthread_mutex_unlock(&fb->lock);
	/* Unlocked: a slow command must not hold up other requests. */
	return fake_run(req, ret, f);
}

static int fake_invoke(void *opaque, const struct api_exec_request *req,
		       struct api_exec_result *ret, struct api_fault *f)
{
	struct fake_backend *fb = opaque;
	char name[API_NAME_MAX];
	int r;

	pthread_mutex_lock(&fb->lock);
	snprintf(name, sizeof(name), "invoke-%u", fb->next_clone++);
	record(fb, "invoke argc=%u argv0=%s clone=%s", req->argc, req->argv[0], name);
	pthread_mutex_unlock(&fb->lock);
	r = fake_run(req, ret, f);
	if (r == 0)
		snprintf(ret->clone_name, sizeof(ret->clone_name), "%s", name);
	return r;
}

static int fake_disk_commit(void *opaque, const char *drive_id, struct api_fault *f)
{
	struct fake_backend *fb = opaque;

	if (strcmp(drive_id, "missing") == 0) {
		api_fault_set(f, "fake: no drive '%s'", drive_id);
		return -ENOENT;
	}
	pthread_mutex_lock(&fb->lock);
	record(fb, "disk_commit id=%s", drive_id);
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static int fake_metrics(void *opaque, char *buf, size_t len)
{
	struct fake_backend *fb = opaque;
	int n;

	pthread_mutex_lock(&fb->lock);
	n = snprintf(buf, len,
		     "# HELP fvm_vcpus Number of vCPUs.\n"
		     "# TYPE fvm_vcpus gauge\n"
		     "fvm_vcpus %u\n"
		     "# HELP fvm_clones_total Clones forked from this VM.\n"
		     "# TYPE fvm_clones_total counter\n"
		     "fvm_clones_total %u\n",
		     fb->cfg->cfg.vcpus, fb->clones->count);
	pthread_mutex_unlock(&fb->lock);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

const struct api_backend_ops fake_backend_ops = {
    .get_state = fake_get_state,
    .put_machine_config = fake_put_machine_config,
    .put_boot_source = fake_put_boot_source,
    .put_drive = fake_put_drive,
    .put_network_interface = fake_put_net,
    .put_vsock = fake_put_vsock,
    .put_entropy = fake_put_entropy,
    .action = fake_action,
    .set_vm_state = fake_set_vm_state,
    .get_vm_config = fake_get_vm_config,
    .snapshot_create = fake_snapshot_create,
    .snapshot_load = fake_snapshot_load,
    .fork = fake_fork,
    .list_clones = fake_list_clones,
    .exec = fake_exec,
    .invoke = fake_invoke,
    .disk_commit = fake_disk_commit,
    .metrics = fake_metrics,
};

int fake_backend_init(struct fake_backend *fb, enum vm_run_state state, const char *sock_dir,
		      const char *record_path)
{
	*fb = (struct fake_backend){.state = state};
	fb->cfg = calloc(1, sizeof(*fb->cfg));
	fb->clones = calloc(1, sizeof(*fb->clones));
	if (!fb->cfg || !fb->clones) {
		fake_backend_fini(fb);
		return -ENOMEM;
	}
	fb->cfg->cfg.vcpus = 1;
	fb->cfg->cfg.mem_bytes = VM_MEM_DEFAULT;
	snprintf(fb->sock_dir, sizeof(fb->sock_dir), "%s", sock_dir ? sock_dir : ".");
	if (record_path) {
		fb->record = fopen(record_path, "ae");
		if (!fb->record) {
			int r = neg_errno();

			fake_backend_fini(fb);
			return r;
		}
	}
	pthread_mutex_init(&fb->lock, NULL);
	return 0;
}

void fake_backend_fini(struct fake_backend *fb)
{
	free(fb->cfg);
	free(fb->clones);
	if (fb->record)
		fclose(fb->record);
	fb->cfg = NULL;
	fb->clones = NULL;
	fb->record = NULL;
}
