// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-http.h"

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int bench_http_request(const char *sock, const char *method, const char *path, const char *body,
		       char *resp, size_t resp_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char head[512];
	size_t got = 0;
	int fd, n, r = -1;

	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     method, path, strlen(body));
	if (n < 0 || (size_t)n >= sizeof(head) || resp_len == 0)
		return -1;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    write_all(fd, head, (size_t)n) == 0 && write_all(fd, body, strlen(body)) == 0) {
		while (got < resp_len - 1) {
			ssize_t k = read(fd, resp + got, resp_len - 1 - got);

			if (k <= 0)
				break;
			got += (size_t)k;
		}
		r = 0;
	}
	resp[got] = '\0';
	close(fd);
	return r == 0 && strncmp(resp, "HTTP/1.1 2", 10) == 0 ? 0 : -1;
}
