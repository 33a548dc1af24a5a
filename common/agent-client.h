/* SPDX-License-Identifier: MIT */
/*
 * The host side of the agent protocol (common/agent-proto.h): reach the
 * guest's fvm-agent through the VM's vsock unix socket, then say HELLO,
 * hand it an IDENTITY, and run commands.
 *
 * Every function returns >= 0 or -errno, and on failure writes a one-line
 * reason (when reason is not NULL) to reason[0..reason_len). Every call
 * has a deadline: no dead guest hangs the host. A failed call leaves the
 * connection in an unknown state: close it. The fd must be a stream
 * socket; its blocking mode is left alone (I/O is MSG_DONTWAIT + poll).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* What agent_exec() allows beyond the command's own timeout. */
#define AGENT_CLIENT_GRACE_MS 5000u

/*
 * Connects to the VM's vsock unix socket uds_path and asks, in the
 * Firecracker way ("CONNECT <port>\n", answered "OK <hostport>\n"), for
 * a stream to guest port `port`. Reads the answer byte by byte, so that
 * nothing after it is taken from the stream. timeout_ms > 0 bounds the
 * whole handshake. *ret_fd is O_CLOEXEC.
 */
int agent_vsock_connect(const char *uds_path, uint32_t port, uint32_t timeout_ms, int *ret_fd,
			char *reason, size_t reason_len) __must_check;

/*
 * Says HELLO with AGENT_PROTO_VERSION. -EPROTONOSUPPORT when the agent
 * refuses the version, -EREMOTEIO for another ERROR from it.
 */
int agent_hello(int fd, uint32_t timeout_ms, uint32_t *ret_version, char *reason,
		size_t reason_len) __must_check;

struct agent_identity {
	const char *hostname; /* required, [A-Za-z0-9.-]{1,64} */
	const char *ifname;   /* NULL: eth0 */
	bool has_mac;
	uint8_t mac[6];
	bool has_ipv4;
	uint8_t ipv4[4];  /* a.b.c.d as { a, b, c, d } */
	uint8_t prefix;	  /* 0..32 */
	bool has_gateway; /* needs has_ipv4 */
	uint8_t gateway[4];
	const uint8_t *entropy; /* entropy_len bytes, at most 512; 0: none */
	size_t entropy_len;
	bool has_realtime;
	uint64_t realtime_sec; /* CLOCK_REALTIME to set */
	uint32_t realtime_nsec;
};

/*
 * Sends an IDENTITY and waits for READY. -EINVAL (nothing sent) for an
 * identity the agent would refuse; -EREMOTEIO when the agent answers
 * ERROR (some step failed: the reason says which).
 */
int agent_identify(int fd, const struct agent_identity *id, uint32_t timeout_ms, char *reason,
		   size_t reason_len) __must_check;

/* The same, and *ret_applied is READY's AGENT_ID_* mask. */
int agent_identify_report(int fd, const struct agent_identity *id, uint32_t timeout_ms,
			  uint32_t *ret_applied, char *reason, size_t reason_len) __must_check;

struct agent_exec_request {
	const char *const *argv; /* NULL-terminated, argv[0] required */
	const char *const *envp; /* NULL-terminated "K=V", or NULL: empty */
	const char *cwd;	 /* NULL: the agent's */
	const void *stdin_data;	 /* stdin_len bytes, then end of file */
	size_t stdin_len;
	uint32_t timeout_ms; /* > 0: the agent kills the command then */
	size_t output_max;   /* bytes kept per stream; the rest is counted */
};

struct agent_exec_result {
	int exit_code; /* 128 + signal when a signal ended it */
	int signal;    /* 0 unless a signal ended it */
	bool timed_out;
	char *out; /* malloc'd, NUL-terminated after out_len bytes */
	size_t out_len;
	uint64_t out_total; /* bytes the command wrote, kept or not */
	bool out_truncated;
	char *err;
	size_t err_len;
	uint64_t err_total;
	bool err_truncated;
};

/*
 * Runs a command: EXEC, stdin as STDIN frames and STDIN_EOF while output
 * is read (so no size of either can deadlock), until EXIT. Waits at most
 * timeout_ms + AGENT_CLIENT_GRACE_MS, then -ETIMEDOUT. A command that
 * cannot be started still succeeds here, with exit code 127 (not found)
 * or 126, as from a shell.
 */
int agent_exec(int fd, const struct agent_exec_request *req, struct agent_exec_result *ret,
	       char *reason, size_t reason_len) __must_check;

/* Frees the buffers of a result agent_exec() filled; accepts NULL. */
void agent_exec_result_free(struct agent_exec_result *r);
