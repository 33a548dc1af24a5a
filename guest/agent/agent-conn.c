// SPDX-License-Identifier: MIT
/*
 * One connection: HELLO first, then requests (EXEC, IDENTITY) one after
 * another until the host hangs up. Anything malformed or out of place
 * ends the connection with an ERROR frame; the handler process then exits,
 * so nothing a host sends can take the listener down.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.h"
#include "fvm-config.h"

#define AGENT_VERSION_STRING "fvm-agent " FVM_VERSION
#define LINGER_MS	     1000

int agent_conn_fail(struct agent_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return err;
}

int agent_conn_send(struct agent_conn *c, const struct agent_msg *m)
{
	const char *why = "";
	size_t len;
	int ret = agent_msg_encode(m, c->txbuf, AGENT_FRAME_MAX, &len, &why);

	if (ret < 0)
		return agent_conn_fail(c, ret, "internal: cannot encode a reply: %s", why);
	return agent_frame_send(c->fd, c->txbuf, len, agent_now_ms() + AGENT_SEND_TIMEOUT_MS);
}

/*
 * Sends the ERROR, then reads until the host closes (a second at most):
 * a socket closed with unread input can reset the connection, and on
 * some transports the ERROR goes with it.
 */
static void conn_close_with_error(struct agent_conn *c)
{
	struct agent_msg m = {
	    .type = AGENT_MSG_ERROR,
	    .error.message = agent_bytes_str(c->error),
	};
	int64_t deadline;

	if (agent_conn_send(c, &m) < 0)
		return;
	shutdown(c->fd, SHUT_WR);
	deadline = agent_now_ms() + LINGER_MS;
	while (agent_now_ms() < deadline) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, agent_poll_timeout(deadline)) <= 0)
			break;
		n = recv(c->fd, c->rx.buf, AGENT_FRAME_MAX, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
}

static int on_hello(struct agent_conn *c, bool *hello_done)
{
	uint32_t v = c->msg->hello.version;
	struct agent_msg m = {
	    .type = AGENT_MSG_HELLO_OK,
	    .hello_ok.version = v,
	    .hello_ok.agent_version = agent_bytes_str(AGENT_VERSION_STRING),
	};

	if (*hello_done)
		return agent_conn_fail(c, -EPROTO, "HELLO twice");
	if (!agent_version_supported(v))
		return agent_conn_fail(c, -EPROTONOSUPPORT,
				       "unsupported protocol version %u (this agent speaks %u..%u)",
				       v, AGENT_PROTO_VERSION_MIN, AGENT_PROTO_VERSION_MAX);
	*hello_done = true;
	return agent_conn_send(c, &m);
}

static int dispatch(struct agent_conn *c, bool *hello_done)
{
	uint8_t type = c->msg->type;

	if (type == AGENT_MSG_HELLO)
		return on_hello(c, hello_done);
	if (!*hello_done)
		return agent_conn_fail(c, -EPROTO, "expected HELLO, got message type 0x%02x", type);

	switch (type) {
	case AGENT_MSG_STDIN:
	case AGENT_MSG_STDIN_EOF:
		/* The last EXEC ended before the host finished its stdin. */
		if (!c->stdin_open)
			return agent_conn_fail(c, -EPROTO, "stdin without a command");
		if (type == AGENT_MSG_STDIN_EOF)
			c->stdin_open = false;
		return 0;
	case AGENT_MSG_EXEC:
	case AGENT_MSG_IDENTITY:
		if (c->stdin_open)
			return agent_conn_fail(c, -EPROTO,
					       "new request before the last command's STDIN_EOF");
		return type == AGENT_MSG_EXEC ? agent_exec_run(c) : agent_identity_run(c);
	default:
		return agent_conn_fail(c, -EPROTO, "message type 0x%02x is not for the agent",
				       type);
	}
}

static int conn_loop(struct agent_conn *c)
{
	int64_t hello_deadline = agent_now_ms() + AGENT_HELLO_TIMEOUT_MS;
	bool hello_done = false;

	for (;;) {
		const char *why = "";
		size_t len = 0;
		int ret;

		ret = agent_frame_recv(c->fd, &c->rx, hello_done ? -1 : hello_deadline, &len, &why);
		if (ret == -EPIPE)
			return 0;
		if (ret == -ETIMEDOUT)
			return agent_conn_fail(c, ret, "no HELLO within %u ms",
					       AGENT_HELLO_TIMEOUT_MS);
		if (ret < 0)
			return agent_conn_fail(c, ret, "bad frame: %s", why);
		ret = agent_msg_decode(c->rx.buf, len, c->msg, &why);
		if (ret < 0)
			return agent_conn_fail(c, ret, "malformed message: %s", why);
		ret = dispatch(c, &hello_done);
		if (ret < 0)
			return ret;
	}
}

int agent_conn_serve(int fd, const struct agent_options *opts)
{
	struct agent_conn c = {.fd = fd, .opts = opts};
	int ret = -ENOMEM;

	c.rx.buf = malloc(AGENT_FRAME_MAX);
	c.txbuf = malloc(AGENT_FRAME_MAX);
	c.msg = malloc(sizeof(*c.msg));
	if (c.rx.buf && c.txbuf && c.msg) {
		ret = conn_loop(&c);
		if (ret < 0 && c.error[0])
			conn_close_with_error(&c);
	}
	free(c.rx.buf);
	free(c.txbuf);
	free(c.msg);
	close(fd);
	return ret;
}
