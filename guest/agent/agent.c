// SPDX-License-Identifier: MIT
/*
 * fvm-agent: runs commands for the host. Listens on AF_VSOCK port 52 (or
 * a unix socket, for the host-side tests) and forks one handler per
 * connection, so a command that hangs blocks nobody else. Handlers are
 * reaped through a signalfd, which also counts them against
 * AGENT_CONN_MAX.
 *
 *   fvm-agent [--port N] [--listen vsock|unix:PATH] [--dry-run-identity]
 *             [--background]
 *   fvm-agent --connect-host PORT      (a client: see agent-relay.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fvm-agent [--port N] [--listen vsock|unix:PATH] [--dry-run-identity]\n"
		"                 [--background]\n"
		"       fvm-agent --connect-host PORT\n"
		"Runs commands for the fvm host (guest/agent/PROTOCOL.md). Default: vsock\n"
		"port %u. --dry-run-identity checks IDENTITY requests without applying\n"
		"them. --background returns once listening. --connect-host copies stdin\n"
		"to the host's vsock port PORT and the answer to stdout.\n",
		AGENT_VSOCK_PORT);
}

static int parse_args(int argc, char **argv, struct agent_options *ret)
{
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"listen", required_argument, NULL, 'l'},
	    {"dry-run-identity", no_argument, NULL, 'd'},
	    {"background", no_argument, NULL, 'b'},
	    {"connect-host", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct agent_options o = {.port = AGENT_VSOCK_PORT};
	char *end;
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'c':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || v > UINT32_MAX || (c == 'c' && !v))
				return -EINVAL;
			if (c == 'p')
				o.port = (uint32_t)v;
			else
				o.connect_port = (uint32_t)v;
			break;
		case 'l':
			if (!strcmp(optarg, "vsock"))
				o.unix_path = NULL;
			else if (!strncmp(optarg, "unix:", 5) && optarg[5])
				o.unix_path = optarg + 5;
			else
				return -EINVAL;
			break;
		case 'd':
			o.dry_run_identity = true;
			break;
		case 'b':
			o.background = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc)
		return -EINVAL;
	*ret = o;
	return 0;
}

static int listen_vsock(uint32_t port, int *ret_fd)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK,
	    .svm_cid = VMADDR_CID_ANY,
	    .svm_port = port,
	};
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return neg_errno();
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return neg_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int listen_unix(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	/* A socket left by an earlier agent, never any other file. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return neg_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Fds 0-2 open, so that no socket or pipe of ours lands on them. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			break;
}

/* Over the limit: say so and hang up, without reading a byte. */
static void refuse(int fd)
{
	uint8_t buf[128];
	struct agent_msg m = {
	    .type = AGENT_MSG_ERROR,
	    .error.message = agent_bytes_str("too many connections"),
	};
	size_t len;

	if (agent_msg_encode(&m, buf, sizeof(buf), &len, NULL) == 0)
		(void)!send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static int spawn_handler(int lfd, int sfd, int conn, const sigset_t *oldmask,
			 const struct agent_options *opts)
{
	pid_t pid = fork();

	if (pid < 0)
		return neg_errno();
	if (pid == 0) {
		close(lfd);
		close(sfd);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		_exit(agent_conn_serve(conn, opts) < 0 ? 1 : 0);
	}
	return 0;
}

static int serve(int lfd, const struct agent_options *opts)
{
	sigset_t mask, oldmask;
	_cleanup_close_ int sfd = -1;
	unsigned live = 0;

	/* Blocked before the first fork, so no exit goes unnoticed. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0)
		return neg_errno();
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return neg_errno();

	for (;;) {
		struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN},
					{.fd = sfd, .events = POLLIN}};
		struct signalfd_siginfo si;
		int conn, ret;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return neg_errno();
		if (pfd[1].revents) {
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			while (waitpid(-1, NULL, WNOHANG) > 0)
				live--;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			/* Out of fds or memory: let exits free some, do not spin. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
			    errno == ENOBUFS)
				poll(NULL, 0, 100);
			continue;
		}
		if (live >= AGENT_CONN_MAX) {
			refuse(conn);
			continue;
		}
		ret = spawn_handler(lfd, sfd, conn, &oldmask, opts);
		close(conn);
		if (ret < 0)
			fprintf(stderr, "fvm-agent: fork: %s\n", strerror(-ret));
		else
			live++;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};
	struct agent_options opts;
	_cleanup_close_ int lfd = -1;
	int ret;

	if (parse_args(argc, argv, &opts) < 0) {
		usage(stderr);
		return 2;
	}
	ensure_std_fds();
	/* A host or a child that goes away shows up as EPIPE, not a signal. */
	sigaction(SIGPIPE, &sa, NULL);
	if (opts.connect_port)
		return agent_relay_to_host(opts.connect_port) < 0 ? 1 : 0;

	if (opts.unix_path) {
		ret = listen_unix(opts.unix_path, &lfd);
	} else {
		/* Guest commands may talk to localhost; nothing else brings lo up. */
		ret = agent_link_up("lo");
		if (ret < 0)
			fprintf(stderr, "fvm-agent: lo up: %s\n", strerror(-ret));
		ret = listen_vsock(opts.port, &lfd);
	}
	if (ret < 0) {
		fprintf(stderr, "fvm-agent: listen on %s%s: %s\n",
			opts.unix_path ? "unix:" : "vsock port ",
			opts.unix_path ? opts.unix_path : "", strerror(-ret));
		return 1;
	}
	if (opts.unix_path)
		fprintf(stderr, "fvm-agent: listening on unix:%s\n", opts.unix_path);
	else
		fprintf(stderr, "fvm-agent: listening on vsock port %u\n", opts.port);

	if (opts.background) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "fvm-agent: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid > 0)
			_exit(0);
		setsid();
	}
	ret = serve(lfd, &opts);
	fprintf(stderr, "fvm-agent: %s\n", strerror(-ret));
	return 1;
}
