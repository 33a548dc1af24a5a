// SPDX-License-Identifier: MIT
/*
 * Hostile clients for the guest agent, for the e2e tests: each connects to
 * a VM's vsock socket (CONNECT <port>), sends something the agent must
 * refuse, and checks that the agent answers with an ERROR frame or hangs
 * up within a few seconds, instead of hanging or crashing. Whether the
 * agent still serves afterwards is the caller's to check (fvmctl exec).
 *
 *   vsock-probe garbage|truncated|bad-version|unknown-type UDS PORT
 *
 * Exit status 0: the agent refused the input as it should; 1 otherwise.
 *
 * And the host end of a guest-initiated connection:
 *
 *   vsock-probe listen PATH
 *
 * listens on the unix socket PATH (a VM's "<uds>_<port>"), takes one
 * connection, reads it to its end and answers "echo: " and what it read.
 * Exit status 0 when that happened within 60 s.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-client.h"
#include "agent-proto.h"

enum { ANSWER_WAIT_MS = 10 * 1000 };

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* What each probe sends; *ret_len bytes of buf. */
static int build_probe(const char *kind, uint8_t *buf, size_t *ret_len, bool *ret_shut)
{
	*ret_shut = false;
	if (strcmp(kind, "garbage") == 0) {
		/* A header announcing 4 GiB, then noise. */
		put_le32(buf, 0xfffffff0u);
		for (size_t i = 4; i < 256; i++)
			buf[i] = (uint8_t)(i * 37 + 11);
		*ret_len = 256;
	} else if (strcmp(kind, "truncated") == 0) {
		/* A HELLO that announces 100 bytes and ends after 6, then EOF. */
		agent_frame_header(buf, AGENT_MSG_HELLO, 100);
		memset(buf + AGENT_HDR_SIZE, 0, 6);
		*ret_len = AGENT_HDR_SIZE + 6;
		*ret_shut = true;
	} else if (strcmp(kind, "bad-version") == 0) {
		/* HELLO version 99: TLV (tag VERSION, length 4, 99). */
		agent_frame_header(buf, AGENT_MSG_HELLO, AGENT_TLV_HDR_SIZE + 4);
		buf[5] = AGENT_TAG_VERSION;
		buf[6] = 0;
		put_le32(buf + 7, 4);
		put_le32(buf + 11, 99);
		*ret_len = AGENT_HDR_SIZE + AGENT_TLV_HDR_SIZE + 4;
	} else if (strcmp(kind, "unknown-type") == 0) {
		agent_frame_header(buf, 0x55, 0);
		*ret_len = AGENT_HDR_SIZE;
	} else {
		return -1;
	}
	return 0;
}

/* 0 when the agent sent ERROR or closed within the wait; prints what it saw. */
static int expect_refusal(int fd)
{
	static uint8_t frame[AGENT_FRAME_MAX];
	struct agent_rx rx = {.buf = frame};
	int64_t deadline = agent_now_ms() + ANSWER_WAIT_MS;
	const char *why = "";
	struct agent_msg m;
	size_t len;
	int r = agent_frame_recv(fd, &rx, deadline, &len, &why);

	if (r == -EPIPE || r == -ECONNRESET) {
		printf("vsock-probe: the agent hung up\n");
		return 0;
	}
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "vsock-probe: no answer within %d ms\n", ANSWER_WAIT_MS);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "vsock-probe: reading the answer: %s %s\n", strerror(-r), why);
		return 1;
	}
	if (agent_msg_decode(frame, len, &m, &why) < 0 || m.type != AGENT_MSG_ERROR) {
		fprintf(stderr, "vsock-probe: expected an ERROR frame, got type %u\n", frame[4]);
		return 1;
	}
	printf("vsock-probe: the agent refused it: %.*s\n", (int)m.error.message.len,
	       (const char *)m.error.message.data);
	return 0;
}

/* The host end of one guest connection: read all, answer "echo: ...". */
static int serve_one(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096] = "echo: ";
	size_t len = strlen(buf);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
	struct pollfd p;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
		fprintf(stderr, "vsock-probe: cannot listen on %s: %s\n", path, strerror(errno));
		return 1;
	}
	p = (struct pollfd){.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, 60 * 1000) != 1 || (fd = accept(lfd, NULL, NULL)) < 0) {
		fprintf(stderr, "vsock-probe: no connection on %s within 60 s\n", path);
		return 1;
	}
	for (;;) {
		ssize_t n;

		p = (struct pollfd){.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 30 * 1000) != 1) {
			fprintf(stderr, "vsock-probe: the guest sent no end of stream\n");
			return 1;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (write(fd, buf, len) != (ssize_t)len)
		return 1;
	close(fd);
	close(lfd);
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t probe[512];
	char reason[256] = "";
	size_t len;
	bool shut;
	int fd, r;

	if (argc == 3 && strcmp(argv[1], "listen") == 0)
		return serve_one(argv[2]);
	if (argc != 4 || build_probe(argv[1], probe, &len, &shut) < 0) {
		fprintf(stderr, "usage: vsock-probe garbage|truncated|bad-version|unknown-type UDS PORT\n"
				"       vsock-probe listen PATH\n");
		return 2;
	}
	r = agent_vsock_connect(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), 10 * 1000, &fd,
				reason, sizeof(reason));
	if (r < 0) {
		fprintf(stderr, "vsock-probe: %s\n", reason);
		return 1;
	}
	if (agent_frame_send(fd, probe, len, agent_now_ms() + ANSWER_WAIT_MS) < 0) {
		/* The agent may hang up mid-way through garbage: that is a refusal too. */
		printf("vsock-probe: the agent hung up while we were sending\n");
		close(fd);
		return 0;
	}
	if (shut)
		shutdown(fd, SHUT_WR);
	r = expect_refusal(fd);
	close(fd);
	return r;
}
