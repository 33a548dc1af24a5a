// SPDX-License-Identifier: MIT
/*
 * api-test-server: the real API server in front of the fake backend.
 *
 *   api-test-server --api-sock PATH [--state not-started|running|paused|stopped]
 *                   [--null-ops] [--record FILE] [other fvm flags are ignored]
 *   api-test-server --list-routes
 *
 * It accepts fvm's --api-sock flag so that fvmctl can start it in place of
 * fvm (FVM_BIN). It prints one line when it serves, runs until SIGTERM or
 * SIGINT, and exits by itself shortly after SendCtrlAltDel, like a VMM
 * whose guest rebooted with reboot=k.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api-router.h"
#include "fake-backend.h"
#include "util.h"

static void request_exit(void *arg)
{
	/* The response to SendCtrlAltDel is still on its way: main waits a little. */
	kill(getpid(), SIGUSR1);
}

static int parse_state(const char *s, enum vm_run_state *ret)
{
	static const char *const names[VM_STATE_MAX] = {"not-started", "running", "paused",
							"stopped"};

	for (int i = 0; i < VM_STATE_MAX; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum vm_run_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct api_backend_ops null_ops = {.get_state = NULL};
	struct api_backend_ops ops = fake_backend_ops;
	enum vm_run_state state = VM_STATE_NOT_STARTED;
	const char *sock = NULL, *rec = NULL;
	struct fake_backend fb;
	struct api_server *srv;
	char dir[API_SOCK_PATH_MAX];
	sigset_t set;
	int sig, r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list-routes") == 0) {
			for (size_t k = 0; k < api_route_count(); k++) {
				const char *m, *p;

				api_route_describe(k, &m, &p);
				printf("%s %s\n", m, p);
			}
			return 0;
		} else if (strcmp(argv[i], "--api-sock") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc) {
			rec = argv[++i];
		} else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			if (parse_state(argv[++i], &state) < 0) {
				fprintf(stderr, "api-test-server: bad --state '%s'\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--null-ops") == 0) {
			/* Only get_state: every other route must answer 501. */
			ops = null_ops;
			ops.get_state = fake_backend_ops.get_state;
		} else {
			printf("api-test-server: ignoring fvm flag '%s'\n", argv[i]);
		}
	}
	if (!sock) {
		fprintf(stderr, "usage: api-test-server --api-sock PATH [--state S] [--null-ops] "
				"[--record FILE]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", sock);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		strcpy(dir, ".");

	r = fake_backend_init(&fb, state, dir, rec);
	if (r < 0) {
		fprintf(stderr, "api-test-server: fake backend: %s\n", strerror(-r));
		return 1;
	}
	fb.on_shutdown = request_exit;

	/* Block the signals before the server threads exist, so they inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	r = api_server_start(sock, &ops, &fb, &srv);
	if (r < 0) {
		fprintf(stderr, "api-test-server: cannot serve '%s': %s\n", sock, strerror(-r));
		fake_backend_fini(&fb);
		return 1;
	}
	printf("api-test-server: serving %s (pid %d)\n", sock, (int)getpid());
	fflush(stdout);

	sigwait(&set, &sig);
	if (sig == SIGUSR1)
		usleep(200 * 1000);
	api_server_stop(srv);
	fake_backend_fini(&fb);
	printf("api-test-server: stopped (%s)\n", strsignal(sig));
	return 0;
}
