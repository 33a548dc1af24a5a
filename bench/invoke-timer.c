// SPDX-License-Identifier: MIT
/*
 * invoke-timer: the stopwatches of bench/run invoke.
 *
 *   invoke-timer fvm SOCK N CONCURRENCY
 *       N POST /invoke requests ({"argv":["echo","invoked"]}) to a paused
 *       fvm template, CONCURRENCY at a time. Each request's latency is
 *       from sending it to its answer; every answer must be 200 with
 *       "invoked" on stdout.
 *   invoke-timer qemu N CID STATE -- QEMU [ARG]...
 *       The same work with stock QEMU, one at a time: start QEMU restoring
 *       STATE (-incoming "exec:cat STATE"), connect to the guest agent over
 *       AF_VSOCK (CID, port 52) as soon as the guest answers, run echo
 *       invoked, kill QEMU. Latency: from QEMU's start to the result.
 *
 * Prints one line: "p50_ms=<> p99_ms=<> per_s=<> n=<>"; per_s is N over
 * the wall time of the whole run.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-client.h"
#include "agent-proto.h"
#include "unix-http.h"

enum { MAX_RUNS = 10000, CONNECT_WAIT_MS = 60 * 1000 };

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(double *lat, int n, double wall_ms)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("p50_ms=%.2f p99_ms=%.2f per_s=%.2f n=%d\n", lat[n / 2],
	       lat[(n * 99 + 99) / 100 - 1], n / (wall_ms / 1e3), n);
}

/* ---- fvm: POST /invoke, CONCURRENCY threads ---- */

struct fvm_run {
	const char *sock;
	int n;
	int next; /* under lock */
	int failures;
	double *lat;
	pthread_mutex_t lock;
};

static void *fvm_worker(void *arg)
{
	static const char body[] = "{\"argv\":[\"echo\",\"invoked\"],\"timeout_ms\":60000}";
	struct fvm_run *run = arg;
	char resp[8192];

	for (;;) {
		double t0;
		int i, r;

		pthread_mutex_lock(&run->lock);
		i = run->next++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->n)
			return NULL;
		t0 = now_ms();
		r = bench_http_request(run->sock, "POST", "/invoke", body, resp, sizeof(resp));
		run->lat[i] = now_ms() - t0;
		if (r < 0 || !strstr(resp, "invoked\\n")) {
			pthread_mutex_lock(&run->lock);
			if (run->failures++ == 0)
				fprintf(stderr, "invoke-timer: request %d failed: %.300s\n", i, resp);
			pthread_mutex_unlock(&run->lock);
		}
	}
}

static int time_fvm(const char *sock, int n, int conc)
{
	struct fvm_run run = {.sock = sock, .n = n, .lat = calloc((size_t)n, sizeof(double))};
	pthread_t threads[64];
	double t0 = now_ms();

	if (!run.lat || conc < 1 || conc > 64)
		return 2;
	pthread_mutex_init(&run.lock, NULL);
	for (int i = 0; i < conc; i++)
		pthread_create(&threads[i], NULL, fvm_worker, &run);
	for (int i = 0; i < conc; i++)
		pthread_join(threads[i], NULL);
	if (run.failures) {
		fprintf(stderr, "invoke-timer: %d of %d invokes failed\n", run.failures, n);
		return 1;
	}
	report(run.lat, n, now_ms() - t0);
	return 0;
}

/* ---- QEMU: restore, connect over AF_VSOCK, run, kill ---- */

/* Connect to the agent and greet it, retrying while the restored guest comes up (and QEMU lives). */
static int vsock_connect_retry(unsigned int cid, pid_t qemu, double deadline)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = AGENT_VSOCK_PORT};

	while (now_ms() < deadline) {
		int fd;

		if (waitpid(qemu, NULL, WNOHANG) == qemu)
			return -ECHILD;
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		/*
		 * The guest handles the transport reset QEMU sends after a
		 * restore when it gets to it, and that drops connections made
		 * before: a HELLO answered means this one survived.
		 */
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
		    agent_hello(fd, 10000, &(uint32_t){0}, NULL, 0) >= 0)
			return fd;
		close(fd);
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static int run_in_agent(int fd)
{
	static const char *const argv[] = {"echo", "invoked", NULL};
	struct agent_exec_request req = {.argv = argv, .timeout_ms = 60000, .output_max = 4096};
	struct agent_exec_result res = {0};
	char why[256] = "";
	int r = agent_exec(fd, &req, &res, why, sizeof(why));

	if (r >= 0 && (res.exit_code != 0 || !res.out || strcmp(res.out, "invoked\n") != 0))
		r = -EIO;
	if (r < 0)
		fprintf(stderr, "invoke-timer: qemu run failed: %s\n", why[0] ? why : strerror(-r));
	agent_exec_result_free(&res);
	return r;
}

static int time_qemu(int n, unsigned int cid, const char *state, char **qemu_argv, int qemu_argc)
{
	char incoming[4200];
	char **argv = calloc((size_t)qemu_argc + 3, sizeof(char *));
	double *lat = calloc((size_t)n, sizeof(double)), t_all = now_ms();

	if (!argv || !lat)
		return 2;
	snprintf(incoming, sizeof(incoming), "exec:cat %s", state);
	memcpy(argv, qemu_argv, (size_t)qemu_argc * sizeof(char *));
	argv[qemu_argc] = (char *)"-incoming";
	argv[qemu_argc + 1] = incoming;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		pid_t pid = fork();
		int fd, r;

		if (pid == 0) {
			execvp(argv[0], argv);
			_exit(127);
		}
		fd = pid < 0 ? -ECHILD : vsock_connect_retry(cid, pid, t0 + CONNECT_WAIT_MS);
		r = fd < 0 ? fd : run_in_agent(fd);
		lat[i] = now_ms() - t0;
		if (fd >= 0)
			close(fd);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		if (r < 0) {
			fprintf(stderr, "invoke-timer: qemu run %d: %s\n", i, strerror(-r));
			return 1;
		}
	}
	report(lat, n, now_ms() - t_all);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 3 ? atoi(argv[3]) : 0;

	if (argc == 5 && strcmp(argv[1], "fvm") == 0 && n > 0 && n <= MAX_RUNS)
		return time_fvm(argv[2], n, atoi(argv[4]));
	n = argc > 2 ? atoi(argv[2]) : 0;
	if (argc > 6 && strcmp(argv[1], "qemu") == 0 && strcmp(argv[5], "--") == 0 && n > 0 &&
	    n <= MAX_RUNS)
		return time_qemu(n, (unsigned int)atoi(argv[3]), argv[4], argv + 6, argc - 6);
	fprintf(stderr, "usage: invoke-timer fvm SOCK N CONCURRENCY\n"
			"       invoke-timer qemu N CID STATE -- QEMU [ARG]...\n");
	return 2;
}
