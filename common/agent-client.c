// SPDX-License-Identifier: MIT
/*
 * Host side of the agent protocol: the vsock CONNECT handshake, HELLO,
 * IDENTITY and EXEC. All I/O is non-blocking and polled against one
 * deadline per call.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "agent-client.h"
#include "agent-proto.h"

#define CONNECT_LINE_MAX 32 /* "OK 4294967295\n" with room to spare */

static __printf(3, 4) void set_reason(char *reason, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!reason || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, len, fmt, ap);
	va_end(ap);
}

/* --- the CONNECT handshake --- */

/* Printable form of a peer's line, for a reason. */
static void sanitize(const char *in, size_t n, char *out, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < cap; i++)
		out[j++] = in[i] >= ' ' && in[i] < 0x7f ? in[i] : '?';
	out[j] = '\0';
}

static bool connect_answer_ok(const char *line, size_t n)
{
	size_t digits = 0;

	if (n < 5 || memcmp(line, "OK ", 3) || line[n - 1] != '\n')
		return false;
	for (size_t i = 3; i < n - 1; i++, digits++)
		if (line[i] < '0' || line[i] > '9')
			return false;
	return digits >= 1 && digits <= 10;
}

static int read_connect_answer(int fd, uint32_t port, int64_t deadline, char *reason, size_t rlen)
{
	char line[CONNECT_LINE_MAX], shown[CONNECT_LINE_MAX];
	size_t n = 0;

	/* One byte at a time: what follows the line belongs to the guest. */
	while (n < sizeof(line)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t got;

		if (agent_now_ms() >= deadline) {
			set_reason(reason, rlen, "no answer to CONNECT %u in time", port);
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, agent_poll_timeout(deadline)) < 0 && errno != EINTR)
			return neg_errno();
		got = recv(fd, &line[n], 1, MSG_DONTWAIT);
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			set_reason(reason, rlen, "CONNECT %u: %s", port, strerror(errno));
			return neg_errno();
		}
		if (got == 0) {
			set_reason(reason, rlen,
				   "connection closed during CONNECT %u (nothing listening on the "
				   "guest port?)",
				   port);
			return -ECONNRESET;
		}
		if (line[n++] == '\n')
			break;
	}
	if (!connect_answer_ok(line, n)) {
		sanitize(line, n, shown, sizeof(shown));
		set_reason(reason, rlen, "unexpected answer to CONNECT %u: '%s'", port, shown);
		return -EPROTO;
	}
	return 0;
}

int agent_vsock_connect(const char *uds_path, uint32_t port, uint32_t timeout_ms, int *ret_fd,
			char *reason, size_t reason_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	struct timeval no_tv = {0};
	_cleanup_close_ int fd = -1;
	int64_t deadline = agent_now_ms() + timeout_ms;
	char cmd[32];
	int ret, n;

	if (timeout_ms == 0) {
		set_reason(reason, reason_len, "no timeout given");
		return -EINVAL;
	}
	if (strlen(uds_path) >= sizeof(sa.sun_path)) {
		set_reason(reason, reason_len, "socket path too long: %s", uds_path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, uds_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_reason(reason, reason_len, "socket: %s", strerror(errno));
		return neg_errno();
	}
	/* A unix connect() waits while the listener's backlog is full: bound it. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &no_tv, sizeof(no_tv)) < 0) {
		ret = neg_errno();
		set_reason(reason, reason_len, "connect to %s: %s", uds_path, strerror(-ret));
		return ret;
	}

	n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	ret = agent_frame_send(fd, (const uint8_t *)cmd, (size_t)n, deadline);
	if (ret < 0) {
		set_reason(reason, reason_len, "sending CONNECT %u to %s: %s", port, uds_path,
			   strerror(-ret));
		return ret;
	}
	ret = read_connect_answer(fd, port, deadline, reason, reason_len);
	if (ret < 0)
		return ret;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* --- request and answer --- */

struct client {
	int fd;
	int64_t deadline;
	struct agent_rx rx;
	struct agent_msg *msg;
	char *reason;
	size_t reason_len;
};

static int client_init(struct client *c, int fd, uint64_t timeout_ms, char *reason,
		       size_t reason_len)
{
	*c = (struct client){.fd = fd, .reason = reason, .reason_len = reason_len};
	if (timeout_ms == 0) {
		set_reason(reason, reason_len, "no timeout given");
		return -EINVAL;
	}
	c->deadline = agent_now_ms() + (int64_t)timeout_ms;
	c->rx.buf = malloc(AGENT_FRAME_MAX);
	c->msg = malloc(sizeof(*c->msg));
	if (!c->rx.buf || !c->msg) {
		set_reason(reason, reason_len, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void client_done(struct client *c)
{
	free(c->rx.buf);
	free(c->msg);
}

/* An ERROR from the agent as a reason; -EREMOTEIO. */
static int client_remote_error(struct client *c)
{
	char text[AGENT_MESSAGE_MAX + 1];

	sanitize((const char *)c->msg->error.message.data, c->msg->error.message.len, text,
		 sizeof(text));
	set_reason(c->reason, c->reason_len, "agent: %s", text);
	return -EREMOTEIO;
}

/* Handles what a frame read returned: a whole frame is decoded into c->msg. */
static int client_take_frame(struct client *c, int ret, size_t len, const char *why)
{
	if (ret == -EPIPE) {
		set_reason(c->reason, c->reason_len, "agent closed the connection");
		return -ECONNRESET;
	}
	if (ret == -ETIMEDOUT) {
		set_reason(c->reason, c->reason_len, "agent did not answer in time");
		return ret;
	}
	if (ret < 0) {
		set_reason(c->reason, c->reason_len, "reading from the agent: %s (%s)", why,
			   strerror(-ret));
		return ret;
	}
	ret = agent_msg_decode(c->rx.buf, len, c->msg, &why);
	if (ret < 0) {
		set_reason(c->reason, c->reason_len, "malformed frame from the agent: %s", why);
		return -EPROTO;
	}
	return 0;
}

static int client_recv(struct client *c)
{
	const char *why = "";
	size_t len = 0;
	int ret = agent_frame_recv(c->fd, &c->rx, c->deadline, &len, &why);

	return client_take_frame(c, ret, len, why);
}

static int client_send_msg(struct client *c, const struct agent_msg *m, uint8_t *buf, size_t cap)
{
	const char *why = "";
	size_t len;
	int ret = agent_msg_encode(m, buf, cap, &len, &why);

	if (ret < 0) {
		set_reason(c->reason, c->reason_len, "refusing to send: %s", why);
		return ret;
	}
	ret = agent_frame_send(c->fd, buf, len, c->deadline);
	if (ret < 0)
		set_reason(c->reason, c->reason_len, "sending to the agent: %s", strerror(-ret));
	return ret;
}

static int unexpected(struct client *c, const char *waiting_for)
{
	set_reason(c->reason, c->reason_len, "unexpected message type 0x%02x while waiting for %s",
		   c->msg->type, waiting_for);
	return -EPROTO;
}

int agent_hello(int fd, uint32_t timeout_ms, uint32_t *ret_version, char *reason, size_t reason_len)
{
	struct agent_msg hello = {.type = AGENT_MSG_HELLO, .hello.version = AGENT_PROTO_VERSION};
	uint8_t buf[64];
	struct client c;
	int ret;

	ret = client_init(&c, fd, timeout_ms, reason, reason_len);
	if (ret >= 0)
		ret = client_send_msg(&c, &hello, buf, sizeof(buf));
	if (ret >= 0)
		ret = client_recv(&c);
	if (ret >= 0) {
		if (c.msg->type == AGENT_MSG_HELLO_OK &&
		    c.msg->hello_ok.version == AGENT_PROTO_VERSION) {
			*ret_version = c.msg->hello_ok.version;
		} else if (c.msg->type == AGENT_MSG_HELLO_OK) {
			set_reason(reason, reason_len, "agent chose protocol version %u, not %u",
				   c.msg->hello_ok.version, AGENT_PROTO_VERSION);
			ret = -EPROTONOSUPPORT;
		} else if (c.msg->type == AGENT_MSG_ERROR) {
			/* A HELLO is refused for its version only. */
			client_remote_error(&c);
			ret = -EPROTONOSUPPORT;
		} else {
			ret = unexpected(&c, "HELLO_OK");
		}
	}
	client_done(&c);
	return ret;
}

static void identity_to_msg(const struct agent_identity *id, struct agent_msg_identity *m)
{
	*m = (struct agent_msg_identity){
	    .present = AGENT_ID_HOSTNAME,
	    .hostname = agent_bytes_str(id->hostname),
	    .ifname = agent_bytes_str(id->ifname),
	    .prefix = id->prefix,
	    .sec = id->realtime_sec,
	    .nsec = id->realtime_nsec,
	};
	if (id->has_mac) {
		m->present |= AGENT_ID_MAC;
		memcpy(m->mac, id->mac, sizeof(m->mac));
	}
	if (id->has_ipv4) {
		m->present |= AGENT_ID_IPV4;
		memcpy(m->ipv4, id->ipv4, sizeof(m->ipv4));
	}
	if (id->has_gateway) {
		m->present |= AGENT_ID_GATEWAY;
		memcpy(m->gateway, id->gateway, sizeof(m->gateway));
	}
	if (id->entropy_len) {
		m->present |= AGENT_ID_ENTROPY;
		m->entropy = (struct agent_bytes){.data = id->entropy,
						  .len = id->entropy_len > AGENT_ENTROPY_MAX
							     ? UINT32_MAX
							     : (uint32_t)id->entropy_len};
	}
	if (id->has_realtime)
		m->present |= AGENT_ID_REALTIME;
}

int agent_identify_report(int fd, const struct agent_identity *id, uint32_t timeout_ms,
			  uint32_t *ret_applied, char *reason, size_t reason_len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct client c;
	int ret;

	ret = client_init(&c, fd, timeout_ms, reason, reason_len);
	if (ret >= 0 && !id->hostname) {
		set_reason(reason, reason_len, "identity without a hostname");
		ret = -EINVAL;
	}
	/* IDENTITY's own limits keep it far below 4 KiB. */
	if (ret >= 0 && !(buf = malloc(4096)))
		ret = -ENOMEM;
	if (ret >= 0) {
		struct agent_msg *m = c.msg;

		m->type = AGENT_MSG_IDENTITY;
		identity_to_msg(id, &m->identity);
		ret = client_send_msg(&c, m, buf, 4096);
	}
	if (ret >= 0)
		ret = client_recv(&c);
	if (ret >= 0) {
		if (c.msg->type == AGENT_MSG_READY) {
			if (ret_applied)
				*ret_applied = c.msg->ready.applied;
		} else if (c.msg->type == AGENT_MSG_ERROR) {
			ret = client_remote_error(&c);
		} else {
			ret = unexpected(&c, "READY");
		}
	}
	client_done(&c);
	return ret;
}

int agent_identify(int fd, const struct agent_identity *id, uint32_t timeout_ms, char *reason,
		   size_t reason_len)
{
	return agent_identify_report(fd, id, timeout_ms, NULL, reason, reason_len);
}

/* --- EXEC --- */

struct stream {
	char *buf;
	size_t len, cap;
	uint64_t total;
	bool truncated;
};

static int stream_add(struct stream *s, const uint8_t *p, size_t n, size_t max)
{
	size_t keep = MIN(n, max - s->len);

	s->total += n;
	if (keep < n)
		s->truncated = true;
	if (s->len + keep > s->cap) {
		size_t cap = MAX(s->cap * 2, s->len + keep);
		char *nb;

		cap = MIN(MAX(cap, (size_t)4096), max);
		nb = realloc(s->buf, cap + 1);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	if (keep)
		memcpy(s->buf + s->len, p, keep);
	s->len += keep;
	return 0;
}

/* Hands the buffer over, NUL-terminated, never NULL. */
static int stream_take(struct stream *s, char **ret_buf)
{
	if (!s->buf) {
		s->buf = malloc(1);
		if (!s->buf)
			return -ENOMEM;
	}
	s->buf[s->len] = '\0';
	*ret_buf = TAKE_PTR(s->buf);
	return 0;
}

struct exec_run {
	struct client c;
	const struct agent_exec_request *req;
	uint8_t *txbuf; /* AGENT_FRAME_MAX: the EXEC frame, then one STDIN frame */
	struct agent_tx tx;
	size_t stdin_off;
	bool eof_queued, exited, tx_dead;
	struct stream out, err;
	struct agent_exec_result result;
};

static int exec_build(struct exec_run *r)
{
	const struct agent_exec_request *req = r->req;
	struct agent_msg *m = r->c.msg;
	const char *why = "";
	size_t len;
	int ret;

	memset(m, 0, sizeof(*m));
	m->type = AGENT_MSG_EXEC;
	for (; req->argv[m->exec.argc]; m->exec.argc++) {
		if (m->exec.argc == AGENT_ARGV_MAX) {
			set_reason(r->c.reason, r->c.reason_len, "more than %u arguments",
				   AGENT_ARGV_MAX);
			return -E2BIG;
		}
		m->exec.argv[m->exec.argc] = agent_bytes_str(req->argv[m->exec.argc]);
	}
	for (; req->envp && req->envp[m->exec.envc]; m->exec.envc++) {
		if (m->exec.envc == AGENT_ENV_MAX) {
			set_reason(r->c.reason, r->c.reason_len, "more than %u environment entries",
				   AGENT_ENV_MAX);
			return -E2BIG;
		}
		m->exec.env[m->exec.envc] = agent_bytes_str(req->envp[m->exec.envc]);
	}
	m->exec.timeout_ms = req->timeout_ms;
	m->exec.cwd = agent_bytes_str(req->cwd);
	ret = agent_msg_encode(m, r->txbuf, AGENT_FRAME_MAX, &len, &why);
	if (ret < 0) {
		set_reason(r->c.reason, r->c.reason_len, "refusing to send EXEC: %s", why);
		return ret == -EMSGSIZE ? -E2BIG : ret;
	}
	r->tx = (struct agent_tx){.buf = r->txbuf, .len = len};
	return 0;
}

/*
 * The next frame to send once the last one is out: stdin in chunks, then
 * STDIN_EOF. After EXIT the rest of stdin is dropped, but EOF still goes:
 * the agent skips STDIN frames up to it before it reads a new request.
 */
static void exec_next_frame(struct exec_run *r)
{
	size_t left = r->req->stdin_len - r->stdin_off;
	size_t n = MIN(left, (size_t)AGENT_DATA_MAX);

	if (r->tx.off < r->tx.len || r->eof_queued)
		return;
	if (n && !r->exited) {
		agent_frame_header(r->txbuf, AGENT_MSG_STDIN, (uint32_t)n);
		memcpy(r->txbuf + AGENT_HDR_SIZE,
		       (const uint8_t *)r->req->stdin_data + r->stdin_off, n);
		r->stdin_off += n;
		r->tx = (struct agent_tx){.buf = r->txbuf, .len = AGENT_HDR_SIZE + n};
		return;
	}
	agent_frame_header(r->txbuf, AGENT_MSG_STDIN_EOF, 0);
	r->tx = (struct agent_tx){.buf = r->txbuf, .len = AGENT_HDR_SIZE};
	r->eof_queued = true;
}

static int exec_on_frame(struct exec_run *r)
{
	const struct agent_msg *m = r->c.msg;
	size_t max = r->req->output_max;

	switch (m->type) {
	case AGENT_MSG_STDOUT:
		return stream_add(&r->out, m->data.data, m->data.len, max);
	case AGENT_MSG_STDERR:
		return stream_add(&r->err, m->data.data, m->data.len, max);
	case AGENT_MSG_EXIT:
		r->exited = true;
		r->result.exit_code = (int)m->exit.exit_code;
		r->result.signal = (int)m->exit.signal;
		r->result.timed_out = m->exit.timed_out;
		return 0;
	case AGENT_MSG_ERROR:
		return client_remote_error(&r->c);
	default:
		return unexpected(&r->c, "output or EXIT");
	}
}

static int exec_read(struct exec_run *r)
{
	while (!r->exited) {
		const char *why = "";
		size_t len = 0;
		int ret = agent_rx_read(&r->c.rx, r->c.fd, &len, &why);

		if (ret == 0)
			return 0;
		ret = client_take_frame(&r->c, ret, len, why);
		if (ret < 0)
			return ret;
		ret = exec_on_frame(r);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int exec_loop(struct exec_run *r)
{
	for (;;) {
		struct pollfd pfd = {.fd = r->c.fd};
		bool sending;
		int ret;

		if (!r->tx_dead)
			exec_next_frame(r);
		sending = !r->tx_dead && r->tx.off < r->tx.len;
		if (r->exited && !sending)
			return 0;
		if (agent_now_ms() >= r->c.deadline) {
			set_reason(r->c.reason, r->c.reason_len,
				   "no EXIT from the agent within the timeout and %u ms of grace",
				   AGENT_CLIENT_GRACE_MS);
			return -ETIMEDOUT;
		}
		pfd.events = (r->exited ? 0 : POLLIN) | (sending ? POLLOUT : 0);
		if (poll(&pfd, 1, agent_poll_timeout(r->c.deadline)) < 0 && errno != EINTR)
			return neg_errno();

		/* Read first: an ERROR explains a send that fails next. */
		ret = exec_read(r);
		if (ret < 0)
			return ret;
		if (sending) {
			ret = agent_tx_flush(&r->tx, r->c.fd);
			if (ret < 0 && r->exited)
				return 0; /* the result is complete; the connection is not */
			/* Keep reading: the agent's ERROR or EOF says more than EPIPE. */
			if (ret < 0)
				r->tx_dead = true;
		}
	}
}

int agent_exec(int fd, const struct agent_exec_request *req, struct agent_exec_result *ret,
	       char *reason, size_t reason_len)
{
	struct exec_run r = {.req = req};
	int err;

	err = client_init(&r.c, fd, (uint64_t)req->timeout_ms + AGENT_CLIENT_GRACE_MS, reason,
			  reason_len);
	if (err >= 0 && (!req->argv || !req->argv[0] || req->timeout_ms == 0)) {
		set_reason(reason, reason_len, "EXEC needs argv[0] and a timeout");
		err = -EINVAL;
	}
	if (err >= 0 && req->stdin_len && !req->stdin_data) {
		set_reason(reason, reason_len, "stdin_len without stdin_data");
		err = -EINVAL;
	}
	if (err >= 0 && !(r.txbuf = malloc(AGENT_FRAME_MAX))) {
		set_reason(reason, reason_len, "out of memory");
		err = -ENOMEM;
	}
	if (err >= 0)
		err = exec_build(&r);
	if (err >= 0)
		err = exec_loop(&r);
	if (err >= 0)
		err = stream_take(&r.out, &r.result.out);
	if (err >= 0)
		err = stream_take(&r.err, &r.result.err);
	if (err >= 0) {
		r.result.out_len = r.out.len;
		r.result.out_total = r.out.total;
		r.result.out_truncated = r.out.truncated;
		r.result.err_len = r.err.len;
		r.result.err_total = r.err.total;
		r.result.err_truncated = r.err.truncated;
		*ret = r.result;
	} else {
		agent_exec_result_free(&r.result);
	}
	if (err == -ENOMEM)
		set_reason(reason, reason_len, "out of memory");
	free(r.out.buf);
	free(r.err.buf);
	free(r.txbuf);
	client_done(&r.c);
	return err;
}

void agent_exec_result_free(struct agent_exec_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
