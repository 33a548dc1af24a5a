// SPDX-License-Identifier: MIT
/*
 * EXEC: fork/exec the command in its own process group with pipes for
 * stdin, stdout and stderr, and move bytes both ways in one poll loop
 * until it has exited and its output is sent, then send EXIT.
 *
 * Flow control both ways: a STDIN frame is read from the host only once
 * the last one is in the child's pipe, and the child's output is read
 * only once the last output frame is out. So the agent holds at most one
 * frame each way, and a slow side stalls the other instead of filling
 * memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_PATH "PATH=/bin:/sbin:/usr/bin:/usr/sbin"
/*
 * What is read from the pipes after the command exits: what it left in
 * them (a pipe holds at most 1 MiB), not a background child's endless
 * output.
 */
#define DRAIN_MAX (1u << 20)

struct exec_state {
	struct agent_conn *c;
	pid_t pid;
	int pidfd;
	int in_fd, out_fd, err_fd;
	struct agent_bytes pending; /* stdin for the child, inside c->rx.buf */
	bool host_eof;
	bool exited, timed_out;
	int status;
	int64_t deadline; /* -1: no timeout */
	size_t drained;
	struct agent_tx tx; /* one output frame in c->txbuf */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The request's environment, with a PATH unless it brings one. */
static int build_env(const struct agent_msg_exec *e, char ***ret)
{
	struct agent_bytes env[AGENT_ENV_MAX + 1];
	uint32_t n = 0;
	bool has_path = false;

	for (uint32_t i = 0; i < e->envc; i++) {
		if (e->env[i].len >= 5 && !memcmp(e->env[i].data, "PATH=", 5))
			has_path = true;
		env[n++] = e->env[i];
	}
	if (!has_path)
		env[n++] = agent_bytes_str(DEFAULT_PATH);
	return agent_strv_dup(env, n, ret);
}

/* In the child: never returns. Messages go to the stderr pipe, like a shell's. */
static void __attribute__((noreturn))
child_exec(int in, int out, int err, char **argv, char **envp, const char *cwd)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	setpgid(0, 0);
	sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* dup2 clears O_CLOEXEC on the copy only; the originals close at exec. */
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	if (cwd && chdir(cwd) < 0) {
		dprintf(2, "fvm-agent: cd %s: %s\n", cwd, strerror(errno));
		_exit(126);
	}
	environ = envp;
	execvp(argv[0], argv);
	if (errno == ENOENT) {
		dprintf(2, "fvm-agent: %s: command not found\n", argv[0]);
		_exit(127);
	}
	dprintf(2, "fvm-agent: %s: %s\n", argv[0], strerror(errno));
	_exit(126);
}

static int exec_spawn(struct exec_state *s, const struct agent_msg_exec *e)
{
	_cleanup_free_ char **argv = NULL, **envp = NULL;
	char cwd[AGENT_CWD_MAX + 1];
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int ret;

	ret = agent_strv_dup(e->argv, e->argc, &argv);
	if (ret >= 0)
		ret = build_env(e, &envp);
	if (ret >= 0)
		ret = agent_bytes_copy(e->cwd, cwd, sizeof(cwd));
	if (ret >= 0 &&
	    (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0))
		ret = neg_errno();
	if (ret >= 0) {
		s->pid = fork();
		if (s->pid == 0)
			child_exec(in[0], out[1], err[1], argv, envp, e->cwd.len ? cwd : NULL);
		if (s->pid < 0)
			ret = neg_errno();
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	if (ret < 0) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&err[0]);
		return ret;
	}
	/* Also here: a kill right after fork must reach the group. */
	setpgid(s->pid, s->pid);
	s->in_fd = in[1];
	s->out_fd = out[0];
	s->err_fd = err[0];
	fcntl(s->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	if (s->pidfd < 0)
		return neg_errno();
	return 0;
}

/* A frame from the host while the command runs. */
static int on_host_frame(struct exec_state *s, size_t len)
{
	struct agent_conn *c = s->c;
	const char *why = "";
	int ret = agent_msg_decode(c->rx.buf, len, c->msg, &why);

	if (ret < 0)
		return agent_conn_fail(c, ret, "malformed message during EXEC: %s", why);
	switch (c->msg->type) {
	case AGENT_MSG_STDIN:
		/* A child that closed its stdin gets nothing more. */
		if (s->in_fd >= 0)
			s->pending = c->msg->data;
		return 0;
	case AGENT_MSG_STDIN_EOF:
		s->host_eof = true;
		return 0;
	default:
		return agent_conn_fail(c, -EPROTO, "message type 0x%02x during EXEC", c->msg->type);
	}
}

static int read_host(struct exec_state *s)
{
	while (!s->pending.len && !s->host_eof) {
		const char *why = "";
		size_t len = 0;
		int ret = agent_rx_read(&s->c->rx, s->c->fd, &len, &why);

		if (ret == 0)
			return 0;
		if (ret == -EPIPE || ret == -ECONNRESET)
			return ret; /* the host is gone: nobody to tell */
		if (ret < 0)
			return agent_conn_fail(s->c, ret, "bad frame during EXEC: %s", why);
		ret = on_host_frame(s, len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void write_child(struct exec_state *s)
{
	while (s->pending.len && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->pending.data, s->pending.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* EPIPE: the child closed its stdin */
			close_fd(&s->in_fd);
			break;
		}
		s->pending.data += n;
		s->pending.len -= (uint32_t)n;
	}
	if (s->in_fd < 0)
		s->pending.len = 0;
	if (s->host_eof && !s->pending.len)
		close_fd(&s->in_fd);
}

/* Reads one chunk of a pipe into an output frame; closes it at EOF. */
static void read_pipe(struct exec_state *s, int *fd, uint8_t type)
{
	uint8_t *buf = s->c->txbuf;
	ssize_t n;

	do {
		n = read(*fd, buf + AGENT_HDR_SIZE, AGENT_DATA_MAX);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN) {
		/* After the exit, an empty pipe has nothing more of the command's. */
		if (s->exited)
			close_fd(fd);
		return;
	}
	if (n <= 0) {
		close_fd(fd);
		return;
	}
	if (s->exited) {
		s->drained += (size_t)n;
		if (s->drained > DRAIN_MAX)
			close_fd(fd);
	}
	agent_frame_header(buf, type, (uint32_t)n);
	s->tx = (struct agent_tx){.buf = buf, .len = AGENT_HDR_SIZE + (size_t)n};
}

static void reap(struct exec_state *s)
{
	if (waitpid(s->pid, &s->status, WNOHANG) == s->pid)
		s->exited = true;
}

static void check_timeout(struct exec_state *s)
{
	if (s->exited || s->timed_out || s->deadline < 0 || agent_now_ms() < s->deadline)
		return;
	kill(-s->pid, SIGKILL);
	s->timed_out = true;
}

/* One round of poll; < 0 ends the connection. */
static int exec_step(struct exec_state *s)
{
	bool tx_busy = s->tx.off < s->tx.len;
	bool want_out = !tx_busy && !s->exited;
	struct pollfd pfd[5] = {
	    {.fd = s->c->fd,
	     .events = (!s->pending.len && !s->host_eof ? POLLIN : 0) | (tx_busy ? POLLOUT : 0)},
	    {.fd = s->pending.len ? s->in_fd : -1, .events = POLLOUT},
	    {.fd = want_out ? s->out_fd : -1, .events = POLLIN},
	    {.fd = want_out ? s->err_fd : -1, .events = POLLIN},
	    {.fd = s->exited ? -1 : s->pidfd, .events = POLLIN},
	};
	int timeout = s->timed_out ? -1 : agent_poll_timeout(s->deadline);
	int ret;

	/* Exited: empty the pipes without waiting for them. */
	if (s->exited && !tx_busy)
		timeout = 0;
	if (poll(pfd, ARRAY_SIZE(pfd), timeout) < 0 && errno != EINTR)
		return neg_errno();

	check_timeout(s);
	if (pfd[4].revents)
		reap(s);
	if (pfd[0].revents & (POLLHUP | POLLERR) && !(pfd[0].events & POLLIN))
		return -ECONNRESET;
	if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		ret = read_host(s);
		if (ret < 0)
			return ret;
	}
	write_child(s);
	if (tx_busy) {
		ret = agent_tx_flush(&s->tx, s->c->fd);
		if (ret < 0)
			return ret;
	}
	if (s->tx.off < s->tx.len)
		return 0;
	if (s->out_fd >= 0 && (s->exited || pfd[2].revents))
		read_pipe(s, &s->out_fd, AGENT_MSG_STDOUT);
	if (s->tx.off == s->tx.len && s->err_fd >= 0 && (s->exited || pfd[3].revents))
		read_pipe(s, &s->err_fd, AGENT_MSG_STDERR);
	return 0;
}

static int send_exit(struct exec_state *s)
{
	struct agent_msg m = {.type = AGENT_MSG_EXIT, .exit.timed_out = s->timed_out};

	if (WIFSIGNALED(s->status)) {
		m.exit.signal = (uint32_t)WTERMSIG(s->status);
		m.exit.exit_code = 128 + m.exit.signal;
	} else {
		m.exit.exit_code = (uint32_t)WEXITSTATUS(s->status);
	}
	return agent_conn_send(s->c, &m);
}

int agent_exec_run(struct agent_conn *c)
{
	const struct agent_msg_exec *e = &c->msg->exec;
	struct exec_state s = {
	    .c = c,
	    .pid = -1,
	    .pidfd = -1,
	    .in_fd = -1,
	    .out_fd = -1,
	    .err_fd = -1,
	    .deadline = e->timeout_ms ? agent_now_ms() + e->timeout_ms : -1,
	};
	int ret;

	ret = exec_spawn(&s, e);
	/* Out of fds or memory: no EXIT to report, the request failed. */
	if (ret < 0)
		agent_conn_fail(c, ret, "cannot start the command: %s", strerror(-ret));
	while (ret >= 0 && !(s.exited && s.out_fd < 0 && s.err_fd < 0 && s.tx.off == s.tx.len))
		ret = exec_step(&s);

	if (!s.exited && s.pid > 0) {
		kill(-s.pid, SIGKILL);
		waitpid(s.pid, &s.status, 0);
	}
	close_fd(&s.pidfd);
	close_fd(&s.in_fd);
	close_fd(&s.out_fd);
	close_fd(&s.err_fd);
	if (ret < 0 && c->error[0] && s.tx.off < s.tx.len) {
		/* The ERROR must not land inside a half-sent output frame. */
		if (agent_frame_send(c->fd, s.tx.buf + s.tx.off, s.tx.len - s.tx.off,
				     agent_now_ms() + AGENT_SEND_TIMEOUT_MS) < 0)
			c->error[0] = '\0';
	}
	if (ret < 0)
		return ret;
	/* Frames for the rest of this command's stdin may still come. */
	c->stdin_open = !s.host_eof;
	return send_exit(&s);
}
