/* SPDX-License-Identifier: MIT */
/*
 * The control API: HTTP/1.1 + JSON on a unix socket.
 *
 * api/ only parses, validates and dispatches. Everything a request asks the
 * VM to do goes through struct api_backend_ops, implemented by the VMM:
 * typed requests in, an int (>= 0 or -errno) plus a fault message out.
 *
 * Contract for a backend (read this before writing one):
 *
 *  - Every op but get_state may be NULL. The route then answers
 *    501 {"fault_message": "... not implemented yet (op 'put_drive')"}: a
 *    missing op is never turned into a fake success.
 *  - The state rules (pre-boot only, runtime only, paused only) are checked
 *    by api/ before an op is called, from the one table in api-router.c.
 *    The backend may still refuse (state can change between the check and
 *    the call) by returning an error.
 *  - Ops run on the API server's threads, never on a vCPU or I/O thread.
 *    Ops marked [serial] below are called one at a time (the server holds
 *    its dispatch lock); the others may run concurrently with anything,
 *    including each other, and must lock what they touch.
 *  - Request structs are valid only during the call; copy what you keep.
 *  - On failure return -errno and, when you can say more than strerror,
 *    fill the fault with api_fault_set(). The status code follows the
 *    errno (api_status_from_errno()): -EINVAL, -ENOENT, -EEXIST, -EBUSY,
 *    -EPERM, -EACCES, -ENOSPC, -E2BIG, -ERANGE, -ENAMETOOLONG give 400
 *    (the caller's fault, as Firecracker does), -ENOSYS and -EOPNOTSUPP
 *    give 501, -ETIMEDOUT gives 504, anything else 500.
 *  - Results with buffers (exec) hand ownership of malloc'd memory to
 *    api/, which frees it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/config.h"

enum vm_run_state {
	VM_STATE_NOT_STARTED,
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPED,
	VM_STATE_MAX,
};

enum {
	API_FAULT_MAX = 512,
	/* A request body larger than this is refused with 413. */
	API_BODY_MAX = 256 * 1024,
	/* sun_path is 108 bytes; every socket path we hand out fits it. */
	API_SOCK_PATH_MAX = 108,
	API_NAME_MAX = VM_CONFIG_ID_MAX,
	/* IFNAMSIZ: a TAP name longer than 15 bytes cannot exist. */
	API_IFNAME_MAX = 16,
	API_FORK_MAX = 256,
	API_CLONES_MAX = 1024,
	API_EXEC_ARGS_MAX = 256,
	API_EXEC_ENV_MAX = 256,
	API_EXEC_STDIN_MAX = 128 * 1024,
	API_EXEC_OUTPUT_MAX = 1024 * 1024,
	API_EXEC_TIMEOUT_DEFAULT_MS = 30 * 1000,
	API_EXEC_TIMEOUT_MAX_MS = 10 * 60 * 1000,
	API_METRICS_MAX = 64 * 1024,
};

/* Why a request failed, in words for the client. */
struct api_fault {
	char message[API_FAULT_MAX];
};

void api_fault_set(struct api_fault *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns "Not started", "Running", "Paused" or "Stopped". */
const char *api_state_name(enum vm_run_state s);

/* ---- typed requests ---------------------------------------------------- */

enum api_huge_pages {
	API_HUGE_PAGES_NONE,
	API_HUGE_PAGES_TRANSPARENT,
	API_HUGE_PAGES_2M,
	API_HUGE_PAGES_MAX,
};

/* PUT /machine-config. Omitted optional fields carry their defaults. */
struct api_machine_config {
	uint32_t vcpu_count;   /* 1..VM_MAX_VCPUS */
	uint64_t mem_size_mib; /* VM_MEM_MIN..VM_MEM_MAX, in MiB */
	bool smt;
	bool track_dirty_pages;
	enum api_huge_pages huge_pages;
};

/* PUT /boot-source */
struct api_boot_source {
	char kernel_path[VM_CONFIG_PATH_MAX];
	char initrd_path[VM_CONFIG_PATH_MAX]; /* empty: none */
	char cmdline[VM_CONFIG_CMDLINE_MAX];
	bool has_cmdline; /* false: the VMM uses VM_DEFAULT_CMDLINE */
};

/* PUT /entropy: no fields yet (rate limiting is refused by the parser). */
struct api_entropy_config {
	bool enabled;
};

enum api_action {
	API_ACTION_INSTANCE_START,
	API_ACTION_SEND_CTRL_ALT_DEL,
	API_ACTION_FLUSH_METRICS,
	API_ACTION_MAX,
};

/* PATCH /vm */
enum api_vm_target {
	API_VM_PAUSE,
	API_VM_RESUME,
	API_VM_TARGET_MAX,
};

/* GET /vm/config and GET /machine-config: what the backend reports. */
struct api_vm_config {
	struct vm_config cfg;
	bool smt;
	bool track_dirty_pages;
	enum api_huge_pages huge_pages;
	bool entropy;
};

enum api_snapshot_type {
	API_SNAPSHOT_FULL,
	API_SNAPSHOT_DIFF,
	API_SNAPSHOT_TYPE_MAX,
};

/* PUT /snapshot/create */
struct api_snapshot_create {
	char snapshot_path[VM_CONFIG_PATH_MAX];
	char mem_file_path[VM_CONFIG_PATH_MAX];
	enum api_snapshot_type type;
};

struct api_net_override {
	char iface_id[VM_CONFIG_ID_MAX];
	char host_dev_name[API_IFNAME_MAX];
};

/* PUT /snapshot/load */
struct api_snapshot_load {
	char snapshot_path[VM_CONFIG_PATH_MAX];
	char mem_file_path[VM_CONFIG_PATH_MAX];
	bool track_dirty_pages;
	bool resume_vm;
	bool clock_realtime;
	uint32_t nr_net_overrides;
	struct api_net_override net_overrides[VM_MAX_NET];
	bool has_vsock_override;
	char vsock_uds_path[VM_CONFIG_PATH_MAX];
};

/* POST /fork. Clones are named "<name_prefix>-<n>", n unique per template. */
struct api_fork_request {
	uint32_t count;			    /* 1..API_FORK_MAX */
	char name_prefix[API_NAME_MAX - 8]; /* room for "-<n>" */
	bool resume;			    /* clones run at once (default) */
};

struct api_clone {
	char name[API_NAME_MAX];
	int32_t pid;
	char api_sock[API_SOCK_PATH_MAX];
};

/* POST /fork result and GET /clones. */
struct api_clone_list {
	uint32_t count;
	struct api_clone clones[API_CLONES_MAX];
};

/*
 * POST /exec and POST /invoke: run a command through the guest agent.
 * The strings live in the parsed request document and are valid for the
 * duration of the op only.
 */
struct api_exec_request {
	uint32_t argc;				 /* >= 1 */
	const char *argv[API_EXEC_ARGS_MAX + 1]; /* NULL-terminated */
	uint32_t envc;
	const char *envp[API_EXEC_ENV_MAX + 1]; /* "KEY=VALUE", NULL-terminated */
	const char *stdin_data;			/* may be NULL */
	size_t stdin_len;
	uint32_t timeout_ms;
	void *priv; /* owned by api/: keeps the strings alive */
};

/*
 * What the command did. stdout_buf/stderr_buf are malloc'd by the backend
 * (or NULL) and freed by api/; api/ truncates each to API_EXEC_OUTPUT_MAX.
 */
struct api_exec_result {
	int32_t exit_code; /* valid when signal == 0 and !timed_out */
	int32_t signal;	   /* the signal that ended it, or 0 */
	bool timed_out;
	char *stdout_buf;
	size_t stdout_len;
	char *stderr_buf;
	size_t stderr_len;
	char clone_name[API_NAME_MAX]; /* invoke: the clone that ran it */
};

/* ---- the backend ------------------------------------------------------- */

struct api_backend_ops {
	/* Required. Must be cheap and lock-free enough to call per request. */
	enum vm_run_state (*get_state)(void *opaque);

	/* Pre-boot configuration [serial]. */
	int (*put_machine_config)(void *opaque, const struct api_machine_config *req,
				  struct api_fault *f);
	int (*put_boot_source)(void *opaque, const struct api_boot_source *req,
			       struct api_fault *f);
	/* Creates or replaces the drive with req->id. */
	int (*put_drive)(void *opaque, const struct vm_drive_config *req, struct api_fault *f);
	int (*put_network_interface)(void *opaque, const struct vm_net_config *req,
				     struct api_fault *f);
	int (*put_vsock)(void *opaque, const struct vm_vsock_config *req, struct api_fault *f);
	int (*put_entropy)(void *opaque, const struct api_entropy_config *req, struct api_fault *f);

	/* PUT /actions [serial]: InstanceStart, SendCtrlAltDel, FlushMetrics. */
	int (*action)(void *opaque, enum api_action a, struct api_fault *f);
	/* PATCH /vm [serial]: pause or resume the vCPUs. */
	int (*set_vm_state)(void *opaque, enum api_vm_target t, struct api_fault *f);
	/* GET /vm/config, GET /machine-config: fill *ret (zeroed by api/). */
	int (*get_vm_config)(void *opaque, struct api_vm_config *ret);

	/* Snapshots [serial]. create runs on a paused VM, load on a fresh one. */
	int (*snapshot_create)(void *opaque, const struct api_snapshot_create *req,
			       struct api_fault *f);
	int (*snapshot_load)(void *opaque, const struct api_snapshot_load *req,
			     struct api_fault *f);

	/* POST /fork [serial]: fork req->count clones of this paused template. */
	int (*fork)(void *opaque, const struct api_fork_request *req, struct api_clone_list *ret,
		    struct api_fault *f);
	/* GET /clones: the live clones forked from this VM. */
	int (*list_clones)(void *opaque, struct api_clone_list *ret);
	/* POST /exec: run a command in this (running) VM through the agent. */
	int (*exec)(void *opaque, const struct api_exec_request *req, struct api_exec_result *ret,
		    struct api_fault *f);
	/* POST /invoke: fork one clone, exec in it, destroy it. */
	int (*invoke)(void *opaque, const struct api_exec_request *req, struct api_exec_result *ret,
		      struct api_fault *f);
	/* PUT /drives/{id}/commit [serial]: merge the overlay into its backing file. */
	int (*disk_commit)(void *opaque, const char *drive_id, struct api_fault *f);
	/*
	 * GET /metrics: write Prometheus text into buf (len bytes, no NUL
	 * needed). Returns the number of bytes written, or -ENOSPC.
	 */
	int (*metrics)(void *opaque, char *buf, size_t len);
};

/* ---- the server -------------------------------------------------------- */

struct api_server;

/*
 * Create the unix socket at socket_path (mode 0600; a stale socket there is
 * replaced, a live one gives -EADDRINUSE) and serve it from internal
 * threads until api_server_stop(). The instance id reported by GET / is the
 * socket's file name without ".sock". ops and opaque must outlive the
 * server.
 */
int api_server_start(const char *socket_path, const struct api_backend_ops *ops, void *opaque,
		     struct api_server **ret) __attribute__((warn_unused_result));

/* Stop serving, wait for in-flight requests, remove the socket. NULL is fine. */
void api_server_stop(struct api_server *srv);
