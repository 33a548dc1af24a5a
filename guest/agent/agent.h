/* SPDX-License-Identifier: MIT */
/*
 * fvm-agent internals: the listener (agent.c) forks one handler per
 * connection (agent-conn.c), which runs commands (agent-exec.c) and
 * applies identities (agent-identity.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent-proto.h"
#include "util.h"

#define AGENT_CONN_MAX	       64    /* live connections; more are refused */
#define AGENT_HELLO_TIMEOUT_MS 10000 /* a new connection says HELLO by then */
#define AGENT_SEND_TIMEOUT_MS  30000 /* a reply the host does not read */

struct agent_options {
	uint32_t port;
	const char *unix_path; /* NULL: AF_VSOCK */
	bool dry_run_identity; /* check IDENTITY, apply nothing (host tests) */
	bool background;       /* fork once listening; the parent exits 0 */
	uint32_t connect_port; /* > 0: --connect-host, a client instead of the agent */
};

/* --connect-host: stdin to the host's vsock port, the answer to stdout. 0 or -errno. */
int agent_relay_to_host(uint32_t port);

/* One connection, owned by its handler process. */
struct agent_conn {
	int fd;
	const struct agent_options *opts;
	struct agent_rx rx; /* decoded messages point into rx.buf */
	uint8_t *txbuf;	    /* AGENT_FRAME_MAX */
	struct agent_msg *msg;
	bool stdin_open;		   /* an EXEC's STDIN_EOF is still to come */
	char error[AGENT_MESSAGE_MAX + 1]; /* sent as ERROR before closing */
};

/* Serves one connection until it closes or fails; then closes fd. */
int agent_conn_serve(int fd, const struct agent_options *opts);

/* Sends m, waiting at most AGENT_SEND_TIMEOUT_MS for the host to take it. */
int agent_conn_send(struct agent_conn *c, const struct agent_msg *m) __must_check;

/* Records why the connection ends; the ERROR is sent on the way out. */
int agent_conn_fail(struct agent_conn *c, int err, const char *fmt, ...) __printf(3, 4);

/*
 * Runs c->msg's EXEC to its EXIT. < 0: the connection is done (host gone
 * or broke the protocol, c->error set for the latter).
 */
int agent_exec_run(struct agent_conn *c) __must_check;

/* Applies (or checks) c->msg's IDENTITY and answers READY or ERROR. */
int agent_identity_run(struct agent_conn *c) __must_check;

/* Sets IFF_UP on an interface. */
int agent_link_up(const char *ifname) __must_check;
