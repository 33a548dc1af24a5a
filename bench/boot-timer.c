/* SPDX-License-Identifier: MIT */
/*
 * boot-timer: runs a VMM and measures, from just before its exec to the
 * moment a marker string appears in its output, how long the guest took to
 * become ready; then waits for the VMM to exit.
 *
 *   boot-timer [--marker STR] [--timeout SEC] [--log FILE] -- CMD [ARG]...
 *
 * Prints one line on stdout:
 *   ready_ms=<ms or -1> exit_ms=<ms> status=<exit status or 128+signal>
 * CMD's stdout and stderr go to --log (default: discarded). A CMD still
 * running after --timeout seconds (default 60) is killed; status is then
 * 128+9. Exits 0 when the marker appeared and CMD exited 0, 1 otherwise.
 *
 * The output is read through a pipe as it comes, so the timestamp is taken
 * within one read of the guest writing the marker's last byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARKER_MAX 256

struct options {
	const char *marker;
	const char *log_path;
	int timeout_sec;
	char **argv;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: boot-timer [--marker STR] [--timeout SEC] [--log FILE] -- CMD [ARG]...\n");
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *ret_opts)
{
	struct options o = {
		.marker = "fvm-guest: ready",
		.log_path = "/dev/null",
		.timeout_sec = 60,
	};
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--marker") == 0)
			o.marker = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0)
			o.timeout_sec = atoi(argv[++i]);
		else if (strcmp(argv[i], "--log") == 0)
			o.log_path = argv[++i];
		else
			usage();
	}
	if (i >= argc || o.timeout_sec <= 0 || strlen(o.marker) == 0 ||
	    strlen(o.marker) > MARKER_MAX)
		usage();
	o.argv = &argv[i];
	*ret_opts = o;
}

static pid_t spawn(char **argv, int out_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	dup2(out_fd, STDOUT_FILENO);
	dup2(out_fd, STDERR_FILENO);
	execvp(argv[0], argv);
	fprintf(stderr, "boot-timer: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Looks for the marker in the stream chunk by chunk. The last
 * strlen(marker) - 1 bytes of the previous chunk are kept in front of the
 * next one, so a marker split across two reads is still found.
 */
struct matcher {
	const char *marker;
	size_t len;
	char window[2 * MARKER_MAX + 4096];
	size_t kept;
};

static bool matcher_feed(struct matcher *m, const char *buf, size_t n)
{
	while (n > 0) {
		size_t room = sizeof(m->window) - m->kept;
		size_t take = n < room ? n : room;
		size_t keep;

		memcpy(m->window + m->kept, buf, take);
		m->kept += take;
		buf += take;
		n -= take;
		if (memmem(m->window, m->kept, m->marker, m->len))
			return true;
		keep = m->len - 1 < m->kept ? m->len - 1 : m->kept;
		memmove(m->window, m->window + m->kept - keep, keep);
		m->kept = keep;
	}
	return false;
}

/* Waits for pid, killing it once the deadline has passed. */
static void wait_bounded(pid_t pid, double deadline, int *ret_wstatus)
{
	const struct timespec tick = { .tv_nsec = 1000000 };
	bool killed = false;
	int wstatus;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &wstatus, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			wstatus = 0xff00; /* exit status 255: lost the child */
			break;
		}
		if (!killed && now_ms() >= deadline) {
			kill(pid, SIGKILL);
			killed = true;
		}
		nanosleep(&tick, NULL);
	}
	*ret_wstatus = wstatus;
}

int main(int argc, char **argv)
{
	struct options o;
	struct matcher m = { 0 };
	double start, deadline, ready_ms = -1, exit_ms;
	int pipefd[2], log_fd, wstatus, status;
	char buf[4096];
	bool reading = true;
	pid_t pid;

	parse_options(argc, argv, &o);
	m.marker = o.marker;
	m.len = strlen(o.marker);

	log_fd = open(o.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		fprintf(stderr, "boot-timer: open %s: %s\n", o.log_path, strerror(errno));
		return 2;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		perror("boot-timer: pipe");
		return 2;
	}

	start = now_ms();
	deadline = start + o.timeout_sec * 1e3;
	pid = spawn(o.argv, pipefd[1]);
	if (pid < 0) {
		perror("boot-timer: fork");
		return 2;
	}
	close(pipefd[1]);

	while (reading) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		double left = deadline - now_ms();
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, (int)left + 1) <= 0)
			continue;
		n = read(pipefd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			reading = false;
			break;
		}
		if (ready_ms < 0 && matcher_feed(&m, buf, (size_t)n))
			ready_ms = now_ms() - start;
		/* A full log disk must not stop the measurement. */
		(void)!write(log_fd, buf, (size_t)n);
	}

	/* The output closed, or the deadline passed and CMD was killed. */
	wait_bounded(pid, deadline, &wstatus);
	exit_ms = now_ms() - start;
	status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

	printf("ready_ms=%.1f exit_ms=%.1f status=%d\n", ready_ms, exit_ms, status);
	return ready_ms >= 0 && status == 0 ? 0 : 1;
}
