// SPDX-License-Identifier: MIT
/*
 * fvm-agent --connect-host PORT: a guest-to-host vsock client for scripts
 * and tests. Connects to the host (CID 2) on PORT, which fvm hands to
 * whoever listens on the unix socket "<vsock uds>_PORT", then copies
 * stdin to the connection (half-closing it at end of file) and the
 * connection to stdout until the host closes it.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Copies what `from` has into `to`; 0 at end of file, < 0 on an error. */
static ssize_t pass_on(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w < 0 && errno != EINTR)
			return -errno;
		off += w > 0 ? w : 0;
	}
	return n;
}

int agent_relay_to_host(uint32_t port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool in_open = true;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "fvm-agent: connect to host port %u: %s\n", port, strerror(errno));
		return -errno;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
		ssize_t r;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents) {
			r = pass_on(STDIN_FILENO, fd);
			if (r < 0)
				return (int)r;
			if (r == 0) {
				in_open = false;
				shutdown(fd, SHUT_WR);
			}
		}
		if (p[0].revents) {
			r = pass_on(fd, STDOUT_FILENO);
			if (r <= 0)
				return (int)r;
		}
	}
}
