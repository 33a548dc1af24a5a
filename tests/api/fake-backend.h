/* SPDX-License-Identifier: MIT */
/*
 * A fake VMM behind the API: it keeps a VM state machine and the
 * configuration it was given, records every call as one line in a file,
 * and fakes the guest (exec echoes, sleeps or fails on request). Used by
 * the API test server and the API benchmark.
 *
 * Magic values that make an op fail, so that error paths can be driven
 * from outside:
 *   any path containing "fail-enoent"  -> -ENOENT with a fault message
 *   any path containing "fail-eio"     -> -EIO without one (strerror)
 *   disk commit of drive "missing"     -> -ENOENT
 *   exec argv[0]: echo, cat, env, false, sleep N, kill, binary, timeout
 */
#pragma once

#include <pthread.h>
#include <stdio.h>

#include "api.h"

struct fake_backend {
	pthread_mutex_t lock;
	enum vm_run_state state;
	struct api_vm_config *cfg;
	struct api_clone_list *clones;
	uint32_t next_clone;
	char sock_dir[API_SOCK_PATH_MAX];
	FILE *record; /* NULL: no recording */
	/* Called when the guest "shuts down" (SendCtrlAltDel); may be NULL. */
	void (*on_shutdown)(void *arg);
	void *on_shutdown_arg;
};

extern const struct api_backend_ops fake_backend_ops;

/* record_path may be NULL. sock_dir is where fake clones' sockets would live. */
int fake_backend_init(struct fake_backend *fb, enum vm_run_state state, const char *sock_dir,
		      const char *record_path);
void fake_backend_fini(struct fake_backend *fb);
