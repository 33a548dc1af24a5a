// SPDX-License-Identifier: MIT
/*
 * fork-timer: the two stopwatches of the Linux half of bench/run fork.
 *
 *   fork-timer fork SOCK PREFIX
 *       POST /fork {"count":1,"name_prefix":PREFIX} to an fvm API socket,
 *       then wait for the clone's console log (beside the socket) to get
 *       its first byte. Prints "first_output_ms=<ms> pid=<clone pid>".
 *   fork-timer request SOCK METHOD PATH [BODY]
 *       One API request; prints the HTTP status line, exits 0 on 2xx.
 *   fork-timer exec MARKER -- CMD [ARG]...
 *       Run CMD and wait for MARKER in its output. Prints
 *       "first_output_ms=<ms>", then kills CMD.
 * Both clocks start just before the request (or the exec). Times out after
 * 60 s (first_output_ms=-1).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unix-http.h"

#define TIMEOUT_MS 60000.0

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int http_fork(const char *sock, const char *prefix, char *resp, size_t resp_len)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"count\":1,\"name_prefix\":\"%s\"}", prefix);
	return bench_http_request(sock, "POST", "/fork", body, resp, resp_len);
}

/* The first "key":"value" string in a JSON text (enough for our own answer). */
static int json_string(const char *text, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(text, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	end = strchr(p, '"');
	if (!end || (size_t)(end - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

static int time_fork(const char *sock, const char *prefix)
{
	char resp[8192], clone_sock[256], log[300];
	const char *pid_at;
	double t0 = now_ms(), t;
	struct stat st;

	if (http_fork(sock, prefix, resp, sizeof(resp)) < 0 ||
	    json_string(resp, "api_sock", clone_sock, sizeof(clone_sock)) < 0) {
		fprintf(stderr, "fork-timer: fork failed: %s\n", resp);
		return 1;
	}
	/* <dir>/<name>.sock -> <dir>/<name>.log */
	snprintf(log, sizeof(log), "%.*s.log", (int)(strlen(clone_sock) - 5), clone_sock);
	pid_at = strstr(resp, "\"pid\":");
	for (;;) {
		t = now_ms() - t0;
		if (stat(log, &st) == 0 && st.st_size > 0)
			break;
		if (t > TIMEOUT_MS) {
			t = -1;
			break;
		}
		usleep(200);
	}
	printf("first_output_ms=%.2f pid=%d\n", t, pid_at ? atoi(pid_at + 6) : -1);
	return t < 0;
}

static int time_exec(const char *marker, char **argv)
{
	char buf[4096], seen[8192] = "";
	size_t seen_len = 0;
	double t0, t = -1;
	int out[2], status;
	pid_t pid;

	if (pipe(out) < 0)
		return 1;
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	for (;;) {
		ssize_t n = read(out[0], buf, sizeof(buf));

		if (n <= 0)
			break;
		/* Keep a tail long enough for a marker split across reads. */
		if (seen_len + (size_t)n >= sizeof(seen)) {
			memmove(seen, seen + seen_len - 256, 256);
			seen_len = 256;
		}
		memcpy(seen + seen_len, buf, (size_t)n);
		seen_len += (size_t)n;
		seen[seen_len] = '\0';
		if (strstr(seen, marker)) {
			t = now_ms() - t0;
			break;
		}
		if (now_ms() - t0 > TIMEOUT_MS)
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	printf("first_output_ms=%.2f\n", t);
	return t < 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "fork") == 0)
		return time_fork(argv[2], argv[3]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "request") == 0) {
		char resp[8192];
		int r = bench_http_request(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : "", resp,
				     sizeof(resp));

		printf("%.*s\n", (int)strcspn(resp, "\r\n"), resp);
		return r < 0;
	}
	if (argc >= 5 && strcmp(argv[1], "exec") == 0 && strcmp(argv[3], "--") == 0)
		return time_exec(argv[2], argv + 4);
	fprintf(stderr, "usage: fork-timer fork SOCK PREFIX | fork-timer exec MARKER -- CMD...\n");
	return 2;
}
