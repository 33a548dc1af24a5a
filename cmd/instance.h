/* SPDX-License-Identifier: MIT */
/*
 * One fvm process's VM and its lifecycle: configured (from flags, a
 * config file or the API), started (booted or restored), running or
 * paused, stopped. The main thread owns the VM's creation and its run
 * loop; API threads ask for changes through the backend ops and wait for
 * the main thread's answer where the VM must be built first.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "api.h"
#include "config.h"
#include "vm.h"

enum instance_start {
	START_NONE,
	START_BOOT,
	START_RESTORE,
	INSTANCE_START_MAX,
};

enum instance_agent {
	AGENT_NONE,    /* no vsock device, or not started */
	AGENT_WAITING, /* the VM runs; its identity is on the way to the agent */
	AGENT_READY,   /* the agent took the identity and answers */
	AGENT_FAILED,  /* gave up: agent_error says why */
};

struct clone_record {
	char name[API_NAME_MAX];
	pid_t pid;
	char api_sock[API_SOCK_PATH_MAX];
};

struct instance {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vm_config cfg;
	enum vm_run_state state;
	struct vm *vm;
	int console_fd;
	bool console_stdio;

	/* A start request from the API, carried out by the main thread. */
	enum instance_start start;
	struct api_snapshot_load restore;
	bool start_done;
	int start_result;
	char start_error[API_FAULT_MAX];
	int wake_fd;

	char api_sock[API_SOCK_PATH_MAX];
	char name[API_NAME_MAX];
	struct api_server *server;

	struct clone_record clones[API_CLONES_MAX];
	uint32_t nr_clones;
	uint64_t forks, fork_ns_total;
	/* Forked: clones read our disk images, which we must not write again. */
	bool disks_frozen;
	/* Forks (API or invoke) and resumes, one at a time. */
	pthread_mutex_t fork_lock;

	/* The guest agent, as far as this process knows (under lock). */
	enum instance_agent agent;
	char agent_error[API_FAULT_MAX];
	/* The n of a clone's name "<prefix>-<n>" (its identity); 0 when not a clone. */
	uint32_t clone_number;
};

extern const struct api_backend_ops instance_api_ops;

int instance_init(struct instance *inst, const struct vm_config *cfg, int console_fd,
		  bool console_stdio) __must_check;

/* Serve the API on path (named after the socket file). */
int instance_serve(struct instance *inst, const char *path) __must_check;

/*
 * The main thread's part: start now when the config has a kernel,
 * otherwise wait for InstanceStart or a snapshot load from the API (or a
 * signal); then run the VM until it stops. Returns fvm's exit status.
 * api_sock (optional): where to serve the API; a VM that boots from its
 * config serves it once it runs, one that waits for the API at once.
 */
int instance_main(struct instance *inst, const char *api_sock);
