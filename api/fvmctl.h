/* SPDX-License-Identifier: MIT */
/*
 * fvmctl: drive fvm VMs by name. Each VM lives in the runtime directory as
 * NAME.sock (its API socket), NAME.pid and NAME.log (its console).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes: distinct so that scripts can tell failures apart. */
enum fvmctl_exit {
	FVMCTL_OK = 0,
	FVMCTL_EFAIL = 1,	 /* anything not listed below */
	FVMCTL_EUSAGE = 2,	 /* bad command line */
	FVMCTL_ENOTFOUND = 3,	 /* no VM of that name */
	FVMCTL_ENOTRUNNING = 4,	 /* the VM's process is gone (stale files) */
	FVMCTL_EAPI = 5,	 /* the VM refused the request (4xx/5xx) */
	FVMCTL_EUNSUPPORTED = 6, /* the VM does not implement it yet (501) */
	FVMCTL_ECONNECT = 7,	 /* the API socket did not answer */
	FVMCTL_ETIMEOUT = 8,	 /* gave up waiting */
	FVMCTL_EEXIST = 9,	 /* a live VM already has that name */
	/* exec/invoke pass the command's status through; their own failures: */
	FVMCTL_EXEC_FAILED = 125,
};

enum {
	FVMCTL_NAME_MAX = 64,
	FVMCTL_SOCK_MAX = 108,
	FVMCTL_PATH_MAX = 4096,
	/* Default wait for a request; long ones (exec, fork) pass their own. */
	FVMCTL_TIMEOUT_MS = 10 * 1000,
};

struct fvmctl {
	bool json;
	char dir[FVMCTL_PATH_MAX]; /* the runtime directory */
	const char *cmd;	   /* the running subcommand, for messages */
};

/* Where a VM's files are and whether its process lives. */
struct fvmctl_vm {
	char name[FVMCTL_NAME_MAX];
	char sock[FVMCTL_SOCK_MAX];
	char pid_path[FVMCTL_PATH_MAX];
	char log_path[FVMCTL_PATH_MAX];
	pid_t pid; /* 0 when there is no pid file */
	bool alive;
	bool has_sock;
};

void fvmctl_error(const struct fvmctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fvmctl_print_json(json_t *doc); /* steals doc */

/* ---- runtime directory (fvmctl-runtime.c) ---- */
int fvmctl_runtime_dir(char *buf, size_t len);
bool fvmctl_name_valid(const char *name);
bool fvmctl_pid_alive(pid_t pid);
/* Where name's files would be (-EINVAL bad name, -ENAMETOOLONG). */
int fvmctl_vm_paths(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret);
/* Fill *ret for name; -ENOENT when nothing of that VM exists. */
int fvmctl_vm_lookup(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret);
/* lookup + "must be running", printing the error; returns an exit code. */
int fvmctl_vm_open(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret);
int fvmctl_pid_write(const char *path, pid_t pid);
/* Remove NAME.sock and NAME.pid (and NAME.log when with_log). */
void fvmctl_vm_remove_files(const struct fvmctl_vm *vm, bool with_log);
/* An absolute version of path (fvm may run with another cwd). */
int fvmctl_abspath(const char *path, char *buf, size_t len);
/* The fvm executable: $FVM_BIN, beside fvmctl, one folder up, or in PATH. */
int fvmctl_find_fvm(char *buf, size_t len);
/* Wait for pid to exit, up to timeout_ms; true when it did. */
bool fvmctl_wait_exit(pid_t pid, long timeout_ms);

/* ---- HTTP (fvmctl-http.c) ---- */
struct fvmctl_reply {
	long status;
	char *body;
	size_t len;
};

/* -ECONNREFUSED/-ENOENT: nobody listens; -ETIMEDOUT; -EIO. */
int fvmctl_http(const char *sock, const char *method, const char *path, const char *body,
		long timeout_ms, struct fvmctl_reply *ret);
void fvmctl_reply_release(struct fvmctl_reply *r);

/*
 * One API call with error reporting: on success returns FVMCTL_OK and (when
 * ret_doc) the parsed JSON answer or NULL for an empty one; otherwise
 * prints a one-line error and returns the exit code. body may be NULL.
 */
int fvmctl_api(const struct fvmctl *ctl, const struct fvmctl_vm *vm, const char *method,
	       const char *path, json_t *body, long timeout_ms, json_t **ret_doc);
/* The VM's state string from GET /, or NULL. */
char *fvmctl_vm_state(const struct fvmctl_vm *vm, long timeout_ms);

/* ---- commands ---- */
typedef int (*fvmctl_cmd_fn)(struct fvmctl *ctl, int argc, char **argv);

int fvmctl_cmd_run(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_restore(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_stop(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_rm(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_logs(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_ls(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_info(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_pause(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_resume(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_snapshot(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_fork(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_exec(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_invoke(struct fvmctl *ctl, int argc, char **argv);
int fvmctl_cmd_disk(struct fvmctl *ctl, int argc, char **argv);

/*
 * Parse the options every command shares (-h/--help, -j/--json) plus the
 * command's own; see fvmctl.c. Returns the getopt character, -1 at the
 * end, or '?' after printing an error.
 */
struct option;
int fvmctl_getopt(struct fvmctl *ctl, int argc, char **argv, const char *shortopts,
		  const struct option *longopts);
/* Print the command's usage to stdout (help) or stderr (error). */
int fvmctl_usage(const struct fvmctl *ctl, bool error);
