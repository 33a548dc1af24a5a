// SPDX-License-Identifier: MIT
/*
 * The harness itself: a failing GUEST_ASSERT must fail the test and name
 * the guest's source line. The failure path runs in a child process whose
 * exit status and message this test checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

enum { FAILING_LINE = __LINE__ + 4 };

static GUEST_CODE void guest_fails(uint64_t arg)
{
	GUEST_ASSERT(arg == 1);
	GUEST_DONE();
}

int main(void)
{
	struct tiny_vm t;
	struct ucall uc;
	char msg[256] = "", expect[128];
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	tiny_vm_create(&t, 1, 16ull << 20);
	tiny_vcpu_enter(&t, 0, guest_fails, 2);
	uc = tiny_vcpu_run(&t, 0);
	TEST_REQUIRE(uc.cmd == UCALL_ASSERT);
	TEST_REQUIRE(uc.arg0 == FAILING_LINE);

	TEST_REQUIRE(pipe(pipefd) == 0);
	pid = fork();
	TEST_REQUIRE(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		tiny_check_ucall(&uc, __FILE__);
		_exit(0); /* not reached when the harness works */
	}
	close(pipefd[1]);
	n = read(pipefd[0], msg, sizeof(msg) - 1);
	TEST_REQUIRE(n > 0);
	TEST_REQUIRE(waitpid(pid, &status, 0) == pid);
	TEST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	snprintf(expect, sizeof(expect), "%s:%d: guest assertion failed", __FILE__, FAILING_LINE);
	if (!strstr(msg, expect)) {
		fprintf(stderr, "harness said '%s', expected '%s'\n", msg, expect);
		return 1;
	}
	tiny_vm_destroy(&t);
	printf("guest-assert: ok (%s)\n", expect);
	return 0;
}
