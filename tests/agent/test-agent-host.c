// SPDX-License-Identifier: MIT
/*
 * The real fvm-agent, on a unix socket instead of vsock, driven through
 * common/agent-client.c: commands, streams, exit codes, signals, timeouts,
 * concurrency, and what a broken or hostile host sends. IDENTITY only in
 * --dry-run-identity: applied here it would rename this machine.
 *
 * The vsock CONNECT handshake is tested against fake servers, and the
 * client's own deadline against a server that never answers.
 *
 * FVM_AGENT names the agent binary (meson sets it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent-client.h"
#include "agent-proto.h"

#define TIMEOUT_MS 20000

static char dir[64];
static char sock_path[128];
static pid_t agent_pid = -1;

/* --- the agent under test --- */

static bool log_has(const char *path, const char *text)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static int start_agent(void **state)
{
	const char *agent = getenv("FVM_AGENT");
	char log_path[160], listening[200];

	if (!agent) {
		fprintf(stderr, "FVM_AGENT is not set\n");
		return -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/fvm-agent-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/agent.log", dir);
	snprintf(listening, sizeof(listening), "fvm-agent: listening on unix:%s\n", sock_path);

	agent_pid = fork();
	if (agent_pid < 0)
		return -1;
	if (agent_pid == 0) {
		char listen_arg[160];
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		snprintf(listen_arg, sizeof(listen_arg), "unix:%s", sock_path);
		dup2(fd, 2);
		execl(agent, agent, "--listen", listen_arg, "--dry-run-identity", (char *)NULL);
		_exit(127);
	}
	/* The agent says when it listens: the line the guest console shows. */
	for (int i = 0; i < 500; i++) {
		if (log_has(log_path, listening))
			return 0;
		if (waitpid(agent_pid, NULL, WNOHANG) == agent_pid)
			break;
		usleep(10000);
	}
	fprintf(stderr, "fvm-agent did not print '%s'\n", listening);
	return -1;
}

static int stop_agent(void **state)
{
	char cmd[128];

	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		waitpid(agent_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* A connection that said HELLO. */
static int agent_connect(void)
{
	int fd = unix_connect(sock_path);
	uint32_t version = 0;
	char reason[256] = "";

	if (agent_hello(fd, TIMEOUT_MS, &version, reason, sizeof(reason)) < 0)
		fail_msg("hello: %s", reason);
	assert_int_equal(version, AGENT_PROTO_VERSION);
	return fd;
}

struct run {
	const char *const *argv;
	const char *const *envp;
	const char *cwd;
	const void *in;
	size_t in_len;
	uint32_t timeout_ms;
	size_t output_max;
};

static void run_on(int fd, const struct run *r, struct agent_exec_result *res)
{
	struct agent_exec_request req = {
	    .argv = r->argv,
	    .envp = r->envp,
	    .cwd = r->cwd,
	    .stdin_data = r->in,
	    .stdin_len = r->in_len,
	    .timeout_ms = r->timeout_ms ? r->timeout_ms : TIMEOUT_MS,
	    .output_max = r->output_max ? r->output_max : 65536,
	};
	char reason[256] = "";

	if (agent_exec(fd, &req, res, reason, sizeof(reason)) < 0)
		fail_msg("exec %s: %s", r->argv[0], reason);
}

static void run(const struct run *r, struct agent_exec_result *res)
{
	int fd = agent_connect();

	run_on(fd, r, res);
	close(fd);
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* --- commands --- */

static void test_echo(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("echo", "hello", "two words")}, &r);
	assert_string_equal(r.out, "hello two words\n");
	assert_int_equal(r.out_len, 16);
	assert_int_equal(r.err_len, 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.signal, 0);
	assert_false(r.timed_out);
	agent_exec_result_free(&r);
}

static void test_env(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("sh", "-c", "echo \"$FOO|$BAR|$PATH|$HOME\""),
			  .envp = ARGV("FOO=1", "BAR=b c")},
	    &r);
	assert_string_equal(r.out, "1|b c|/bin:/sbin:/usr/bin:/usr/sbin|\n");
	agent_exec_result_free(&r);

	/* A PATH of the request's replaces the default. */
	run(&(struct run){.argv = ARGV("sh", "-c", "echo $PATH"),
			  .envp = ARGV("PATH=/usr/bin:/bin")},
	    &r);
	assert_string_equal(r.out, "/usr/bin:/bin\n");
	agent_exec_result_free(&r);
}

static void test_cwd(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("pwd"), .cwd = "/tmp"}, &r);
	assert_string_equal(r.out, "/tmp\n");
	agent_exec_result_free(&r);

	run(&(struct run){.argv = ARGV("pwd"), .cwd = "/no/such/dir"}, &r);
	assert_int_equal(r.exit_code, 126);
	assert_non_null(strstr(r.err, "/no/such/dir"));
	agent_exec_result_free(&r);
}

static void test_stdin_cat(void **state)
{
	size_t n = 1u << 20;
	uint8_t *in = malloc(n);
	struct agent_exec_result r;

	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)(i * 2654435761u >> 13);
	run(&(struct run){.argv = ARGV("cat"), .in = in, .in_len = n, .output_max = 2 * n}, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, n);
	assert_int_equal(r.out_total, n);
	assert_false(r.out_truncated);
	assert_memory_equal(r.out, in, n);
	agent_exec_result_free(&r);

	/* Without stdin, stdin is at its end at once. */
	run(&(struct run){.argv = ARGV("cat")}, &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, 0);
	agent_exec_result_free(&r);
	free(in);
}

static void test_large_stdout(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("head", "-c", "8388608", "/dev/zero"),
			  .output_max = 1u << 20},
	    &r);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, 1u << 20);
	assert_int_equal(r.out_total, 8u << 20);
	assert_true(r.out_truncated);
	assert_false(r.err_truncated);
	assert_int_equal(r.out[0], 0);
	agent_exec_result_free(&r);
}

static void test_stderr(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("sh", "-c", "echo out; echo err >&2; echo out2")}, &r);
	assert_string_equal(r.out, "out\nout2\n");
	assert_string_equal(r.err, "err\n");
	agent_exec_result_free(&r);
}

static void test_exit_code(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("sh", "-c", "exit 42")}, &r);
	assert_int_equal(r.exit_code, 42);
	assert_int_equal(r.signal, 0);
	assert_false(r.timed_out);
	agent_exec_result_free(&r);
}

static void test_signal(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("sh", "-c", "kill -TERM $$")}, &r);
	assert_int_equal(r.signal, SIGTERM);
	assert_int_equal(r.exit_code, 128 + SIGTERM);
	assert_false(r.timed_out);
	agent_exec_result_free(&r);
}

/* Gone, or a zombie waiting for whoever inherited it. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[1] == ' ' && p[2] == 'Z';
}

static void test_timeout(void **state)
{
	struct agent_exec_result r;
	int64_t t0 = agent_now_ms();
	pid_t bg;

	/* What came out before the kill is kept. */
	run(&(struct run){.argv = ARGV("sh", "-c", "echo before; sleep 30; echo after"),
			  .timeout_ms = 300},
	    &r);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, SIGKILL);
	assert_int_equal(r.exit_code, 128 + SIGKILL);
	assert_string_equal(r.out, "before\n");
	assert_true(agent_now_ms() - t0 < 5000);
	agent_exec_result_free(&r);

	/* The whole process group dies, not only the command. */
	run(&(struct run){.argv = ARGV("sh", "-c", "sleep 30 & echo $!; wait"), .timeout_ms = 300},
	    &r);
	assert_true(r.timed_out);
	bg = atoi(r.out);
	assert_true(bg > 1);
	for (int i = 0; i < 150 && !process_gone(bg); i++)
		usleep(20000);
	assert_true(process_gone(bg));
	agent_exec_result_free(&r);
}

static void test_not_found(void **state)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("fvm-no-such-command", "x")}, &r);
	assert_int_equal(r.exit_code, 127);
	assert_non_null(strstr(r.err, "fvm-no-such-command: command not found"));
	agent_exec_result_free(&r);
}

/* Requests one after another on one connection, stdin left unread between. */
static void test_sequential(void **state)
{
	size_t n = 1u << 20;
	uint8_t *in = calloc(1, n);
	struct agent_exec_result r;
	int fd = agent_connect();

	assert_non_null(in);
	run_on(fd, &(struct run){.argv = ARGV("true"), .in = in, .in_len = n}, &r);
	assert_int_equal(r.exit_code, 0);
	agent_exec_result_free(&r);
	run_on(fd, &(struct run){.argv = ARGV("echo", "second")}, &r);
	assert_string_equal(r.out, "second\n");
	agent_exec_result_free(&r);
	run_on(fd,
	       &(struct run){.argv = ARGV("sh", "-c", "head -c 10; echo"), .in = in, .in_len = n},
	       &r);
	assert_int_equal(r.out_len, 11);
	agent_exec_result_free(&r);
	close(fd);
	free(in);
}

/* Children of pid (zombies included), from /proc. */
static int count_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], buf[512], *p;
		int ppid;
		char st;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p && sscanf(p, ") %c %d", &st, &ppid) == 2 && ppid == pid)
			n++;
	}
	closedir(d);
	return n;
}

struct worker {
	pthread_t thread;
	int index;
	char env[32];
	char expect[32];
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const char *env[] = {w->env, NULL};
	const char *argv[] = {"sh", "-c", "sleep 1; echo \"$N\"", NULL};
	struct agent_exec_request req = {
	    .argv = argv, .envp = env, .timeout_ms = TIMEOUT_MS, .output_max = 64};
	struct agent_exec_result r;
	char reason[256];
	uint32_t v;
	int fd = unix_connect(sock_path);

	if (agent_hello(fd, TIMEOUT_MS, &v, reason, sizeof(reason)) == 0 &&
	    agent_exec(fd, &req, &r, reason, sizeof(reason)) == 0) {
		w->ok = !strcmp(r.out, w->expect) && r.exit_code == 0;
		agent_exec_result_free(&r);
	}
	close(fd);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct worker w[20];
	int64_t t0 = agent_now_ms();

	for (int i = 0; i < 20; i++) {
		w[i] = (struct worker){.index = i};
		snprintf(w[i].env, sizeof(w[i].env), "N=%d", i);
		snprintf(w[i].expect, sizeof(w[i].expect), "%d\n", i);
		assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 20; i++) {
		pthread_join(w[i].thread, NULL);
		assert_true(w[i].ok);
	}
	/* One after another this takes 20 s. */
	assert_true(agent_now_ms() - t0 < 10000);

	/*
	 * The clients hung up: every handler exits and is reaped, leaving the
	 * agent without children (a zombie is a child too).
	 */
	for (int i = 0; i < 250 && count_children(agent_pid); i++)
		usleep(20000);
	assert_int_equal(count_children(agent_pid), 0);
}

/* --- a broken or hostile host --- */

static uint8_t frame[AGENT_FRAME_MAX];

static void send_all(int fd, const void *p, size_t n)
{
	assert_int_equal(agent_frame_send(fd, p, n, agent_now_ms() + TIMEOUT_MS), 0);
}

static void send_msg(int fd, const struct agent_msg *m)
{
	size_t len;

	assert_int_equal(agent_msg_encode(m, frame, sizeof(frame), &len, NULL), 0);
	send_all(fd, frame, len);
}

/*
 * The agent's last word: an ERROR (whose message contains `text` when
 * given), then the end of the connection; or, where `or_close`, just the
 * end.
 */
static void expect_error_and_close(int fd, const char *text, bool or_close)
{
	static struct agent_msg m;
	struct agent_rx rx = {.buf = malloc(AGENT_FRAME_MAX)};
	int64_t deadline = agent_now_ms() + TIMEOUT_MS;
	size_t len;
	int ret;

	assert_non_null(rx.buf);
	ret = agent_frame_recv(fd, &rx, deadline, &len, NULL);
	if (ret == -EPIPE || ret == -ECONNRESET) {
		assert_true(or_close);
		free(rx.buf);
		return;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(agent_msg_decode(rx.buf, len, &m, NULL), 0);
	assert_int_equal(m.type, AGENT_MSG_ERROR);
	if (text) {
		char msg[AGENT_MESSAGE_MAX + 1];

		assert_int_equal(agent_bytes_copy(m.error.message, msg, sizeof(msg)), 0);
		if (!strstr(msg, text))
			fail_msg("ERROR '%s' does not say '%s'", msg, text);
	}
	ret = agent_frame_recv(fd, &rx, deadline, &len, NULL);
	assert_true(ret == -EPIPE || ret == -ECONNRESET);
	free(rx.buf);
}

static void assert_agent_serves(void)
{
	struct agent_exec_result r;

	run(&(struct run){.argv = ARGV("echo", "still here")}, &r);
	assert_string_equal(r.out, "still here\n");
	agent_exec_result_free(&r);
}

static void test_bad_version(void **state)
{
	int fd = unix_connect(sock_path);

	send_msg(fd, &(struct agent_msg){.type = AGENT_MSG_HELLO, .hello.version = 99});
	expect_error_and_close(fd, "unsupported protocol version 99", false);
	close(fd);
	assert_agent_serves();
}

static void test_garbage(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const uint8_t bad_type[] = {3, 0, 0, 0, 0xee, 1, 2};
	static const uint8_t zero_len[] = {0, 0, 0, 0, 1};
	int fd;

	fd = unix_connect(sock_path);
	send_all(fd, http, sizeof(http) - 1);
	expect_error_and_close(fd, "over the limit", true);
	close(fd);

	fd = unix_connect(sock_path);
	send_all(fd, bad_type, sizeof(bad_type));
	expect_error_and_close(fd, "unknown message type", true);
	close(fd);

	fd = unix_connect(sock_path);
	send_all(fd, zero_len, sizeof(zero_len));
	expect_error_and_close(fd, NULL, true);
	close(fd);

	/* Well-formed, but not a host's message, or not yet. */
	fd = unix_connect(sock_path);
	send_msg(fd, &(struct agent_msg){.type = AGENT_MSG_STDIN_EOF});
	expect_error_and_close(fd, "expected HELLO", false);
	close(fd);

	fd = agent_connect();
	send_msg(fd, &(struct agent_msg){.type = AGENT_MSG_STDIN,
					 .data = {.data = (const uint8_t *)"x", .len = 1}});
	expect_error_and_close(fd, "stdin without a command", false);
	close(fd);

	fd = agent_connect();
	send_msg(fd, &(struct agent_msg){.type = AGENT_MSG_READY});
	expect_error_and_close(fd, "not for the agent", false);
	close(fd);

	fd = agent_connect();
	send_msg(fd, &(struct agent_msg){.type = AGENT_MSG_HELLO, .hello.version = 1});
	expect_error_and_close(fd, "HELLO twice", false);
	close(fd);

	assert_agent_serves();
}

static void test_truncated(void **state)
{
	static struct agent_msg m;
	size_t len;
	int fd = agent_connect();

	m = (struct agent_msg){.type = AGENT_MSG_EXEC, .exec.argc = 1};
	m.exec.argv[0] = agent_bytes_str("echo");
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), 0);
	send_all(fd, frame, len / 2);
	shutdown(fd, SHUT_WR);
	expect_error_and_close(fd, "inside a frame", true);
	close(fd);

	/* A malformed frame while a command runs: STDIN_EOF with a payload. */
	fd = agent_connect();
	m.exec.argv[0] = agent_bytes_str("cat");
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), 0);
	send_all(fd, frame, len);
	send_all(fd, "\x03\x00\x00\x00\x12\x00\x00", 7); /* STDIN_EOF with a payload */
	expect_error_and_close(fd, "during EXEC", false);
	close(fd);

	assert_agent_serves();
}

/*
 * A bad frame while output backs up (the host is not reading): every
 * frame the host then reads is whole, and the last is the ERROR. (On a
 * unix socket a frame this size is sent whole or not at all; over vsock
 * the agent may be inside one, which it finishes before the ERROR.)
 */
static void test_error_mid_output(void **state)
{
	static struct agent_msg m;
	struct agent_rx rx = {.buf = malloc(AGENT_FRAME_MAX)};
	int64_t deadline = agent_now_ms() + TIMEOUT_MS;
	int fd = agent_connect();
	size_t len, outputs = 0;
	int ret;

	assert_non_null(rx.buf);
	m = (struct agent_msg){.type = AGENT_MSG_EXEC, .exec.argc = 4};
	m.exec.argv[0] = agent_bytes_str("head");
	m.exec.argv[1] = agent_bytes_str("-c");
	m.exec.argv[2] = agent_bytes_str("100000000");
	m.exec.argv[3] = agent_bytes_str("/dev/zero");
	send_msg(fd, &m);
	usleep(300000); /* the socket fills up */
	send_all(fd, "\x03\x00\x00\x00\x12\x00\x00", 7);

	while ((ret = agent_frame_recv(fd, &rx, deadline, &len, NULL)) == 0) {
		assert_int_equal(agent_msg_decode(rx.buf, len, &m, NULL), 0);
		if (m.type != AGENT_MSG_STDOUT)
			break;
		outputs++;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(m.type, AGENT_MSG_ERROR);
	assert_true(outputs > 0);
	ret = agent_frame_recv(fd, &rx, deadline, &len, NULL);
	assert_true(ret == -EPIPE || ret == -ECONNRESET);
	close(fd);
	free(rx.buf);
}

/* --- IDENTITY, dry run only --- */

static void test_identity_dry_run(void **state)
{
	static const uint8_t entropy[64] = {1};
	struct agent_identity id = {
	    .hostname = "clone-1",
	    .ifname = "eth0",
	    .has_mac = true,
	    .mac = {0x02, 0xfc, 0, 0, 0, 1},
	    .has_ipv4 = true,
	    .ipv4 = {172, 16, 0, 2},
	    .prefix = 24,
	    .has_gateway = true,
	    .gateway = {172, 16, 0, 1},
	    .entropy = entropy,
	    .entropy_len = sizeof(entropy),
	    .has_realtime = true,
	    .realtime_sec = 1700000000,
	};
	char reason[256] = "";
	uint32_t applied = 0;
	int fd = agent_connect();

	if (agent_identify_report(fd, &id, TIMEOUT_MS, &applied, reason, sizeof(reason)) < 0)
		fail_msg("identify: %s", reason);
	assert_int_equal(applied, AGENT_ID_ALL | AGENT_ID_DRY_RUN);

	id = (struct agent_identity){.hostname = "only-a-name"};
	assert_int_equal(agent_identify_report(fd, &id, TIMEOUT_MS, &applied, NULL, 0), 0);
	assert_int_equal(applied, AGENT_ID_HOSTNAME | AGENT_ID_DRY_RUN);

	/* The client refuses what the agent would, without sending it. */
	id.has_ipv4 = true;
	id.prefix = 33;
	assert_int_equal(agent_identify(fd, &id, TIMEOUT_MS, reason, sizeof(reason)), -EINVAL);
	id = (struct agent_identity){.hostname = "x", .entropy = entropy, .entropy_len = 513};
	assert_int_equal(agent_identify(fd, &id, TIMEOUT_MS, reason, sizeof(reason)), -EINVAL);
	id = (struct agent_identity){.hostname = "bad name"};
	assert_int_equal(agent_identify(fd, &id, TIMEOUT_MS, reason, sizeof(reason)), -EINVAL);

	/* And the connection is still fine. */
	id = (struct agent_identity){.hostname = "again"};
	assert_int_equal(agent_identify(fd, &id, TIMEOUT_MS, reason, sizeof(reason)), 0);
	close(fd);
}

/* An IDENTITY frame by hand, with one TLV after the hostname. */
static void send_raw_identity(int fd, uint16_t tag, const void *v, uint32_t n)
{
	uint8_t b[1024];
	uint8_t tlv[6] = {(uint8_t)tag,	     (uint8_t)(tag >> 8), (uint8_t)n,
			  (uint8_t)(n >> 8), (uint8_t)(n >> 16),  (uint8_t)(n >> 24)};
	size_t len = AGENT_HDR_SIZE;

	assert_true(len + 8 + sizeof(tlv) + n <= sizeof(b));
	memcpy(b + len, "\x0a\x00\x02\x00\x00\x00vm", 8); /* HOSTNAME "vm" */
	len += 8;
	memcpy(b + len, tlv, sizeof(tlv));
	len += sizeof(tlv);
	memcpy(b + len, v, n);
	len += n;
	agent_frame_header(b, AGENT_MSG_IDENTITY, (uint32_t)(len - AGENT_HDR_SIZE));
	send_all(fd, b, len);
}

static void test_identity_malformed(void **state)
{
	static const uint8_t entropy[AGENT_ENTROPY_MAX + 1];
	static const struct {
		uint16_t tag;
		const void *v;
		uint32_t n;
	} bad[] = {
	    {AGENT_TAG_MAC, "\x02\0\0\0\x01", 5},
	    {AGENT_TAG_IPV4, "\x0a\0\0\x02\x21", 5},
	    {AGENT_TAG_ENTROPY, entropy, sizeof(entropy)},
	    {AGENT_TAG_IFNAME, "a/b", 3},
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = agent_connect();

		send_raw_identity(fd, bad[i].tag, bad[i].v, bad[i].n);
		expect_error_and_close(fd, "malformed message", false);
		close(fd);
	}
	/* The same frame with a good value is accepted. */
	{
		static struct agent_msg m;
		struct agent_rx rx = {.buf = frame};
		int fd = agent_connect();
		size_t len;

		send_raw_identity(fd, AGENT_TAG_MAC, "\x02\0\0\0\0\x01", 6);
		assert_int_equal(agent_frame_recv(fd, &rx, agent_now_ms() + TIMEOUT_MS, &len, NULL),
				 0);
		assert_int_equal(agent_msg_decode(frame, len, &m, NULL), 0);
		assert_int_equal(m.type, AGENT_MSG_READY);
		assert_int_equal(m.ready.applied,
				 AGENT_ID_HOSTNAME | AGENT_ID_MAC | AGENT_ID_DRY_RUN);
		close(fd);
	}
}

/* --- fake servers: the CONNECT handshake and the client's deadlines --- */

enum fake_mode { FAKE_ANSWER, FAKE_LONG, FAKE_CLOSE, FAKE_SILENT };

struct fake {
	int lfd;
	enum fake_mode mode;
	const char *answer; /* FAKE_ANSWER */
	bool handshake;	    /* read a CONNECT line first */
	char got[64];
	pthread_t thread;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char c, buf[256];
	size_t n = 0;
	int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return NULL;
	while (f->handshake && n + 1 < sizeof(f->got) && read(fd, &c, 1) == 1) {
		f->got[n++] = c;
		if (c == '\n')
			break;
	}
	switch (f->mode) {
	case FAKE_ANSWER:
		(void)!write(fd, f->answer, strlen(f->answer));
		break;
	case FAKE_LONG:
		memset(buf, 'x', sizeof(buf));
		(void)!write(fd, buf, sizeof(buf));
		break;
	case FAKE_CLOSE:
		close(fd);
		return NULL;
	case FAKE_SILENT:
		break;
	}
	/* Until the client hangs up, reading (and dropping) what it sends. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, const char *path, enum fake_mode mode, bool handshake,
		       const char *answer)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	*f = (struct fake){.mode = mode, .handshake = handshake, .answer = answer};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

static void test_connect_handshake(void **state)
{
	static const char *const bad_answers[] = {
	    "OK \n", "OK 12a\n", "ok 1\n", "OK 12345678901\n", "OK 1\r\n", "\n"};
	char path[160], reason[256], tail[8];
	struct fake f;
	int64_t t0;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/vsock.sock", dir);

	fake_start(&f, path, FAKE_ANSWER, true, "OK 1073741824\nEXTRA");
	assert_int_equal(agent_vsock_connect(path, 52, 2000, &fd, reason, sizeof(reason)), 0);
	/* Nothing after the OK line was taken. */
	assert_int_equal(recv(fd, tail, 5, MSG_WAITALL), 5);
	assert_memory_equal(tail, "EXTRA", 5);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	fake_stop(&f);
	assert_string_equal(f.got, "CONNECT 52\n");

	fake_start(&f, path, FAKE_ANSWER, true, "NOPE\n");
	assert_int_equal(agent_vsock_connect(path, 1234, 2000, &fd, reason, sizeof(reason)),
			 -EPROTO);
	assert_non_null(strstr(reason, "unexpected answer to CONNECT 1234: 'NOPE?'"));
	fake_stop(&f);
	assert_string_equal(f.got, "CONNECT 1234\n");

	for (size_t i = 0; i < ARRAY_SIZE(bad_answers); i++) {
		fake_start(&f, path, FAKE_ANSWER, true, bad_answers[i]);
		if (agent_vsock_connect(path, 52, 2000, &fd, reason, sizeof(reason)) != -EPROTO)
			fail_msg("answer '%s' not refused", bad_answers[i]);
		fake_stop(&f);
	}

	fake_start(&f, path, FAKE_LONG, true, NULL);
	assert_int_equal(agent_vsock_connect(path, 52, 2000, &fd, reason, sizeof(reason)), -EPROTO);
	fake_stop(&f);

	fake_start(&f, path, FAKE_CLOSE, true, NULL);
	assert_int_equal(agent_vsock_connect(path, 52, 2000, &fd, reason, sizeof(reason)),
			 -ECONNRESET);
	assert_non_null(strstr(reason, "closed"));
	fake_stop(&f);

	fake_start(&f, path, FAKE_SILENT, true, NULL);
	t0 = agent_now_ms();
	assert_int_equal(agent_vsock_connect(path, 52, 300, &fd, reason, sizeof(reason)),
			 -ETIMEDOUT);
	assert_true(agent_now_ms() - t0 < 2000);
	fake_stop(&f);

	unlink(path);
	assert_int_equal(agent_vsock_connect(path, 52, 300, &fd, reason, sizeof(reason)), -ENOENT);
	assert_int_equal(agent_vsock_connect(path, 52, 0, &fd, reason, sizeof(reason)), -EINVAL);
}

/* A dead guest: connected, then silence. The client gives up on time. */
static void test_client_deadline(void **state)
{
	char path[160], reason[256] = "";
	struct agent_exec_request req = {.argv = ARGV("true"), .timeout_ms = 100};
	struct agent_exec_result r;
	struct fake f;
	uint32_t v;
	int64_t t0;
	int fd;

	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	fake_start(&f, path, FAKE_SILENT, false, NULL);
	fd = unix_connect(path);
	t0 = agent_now_ms();
	assert_int_equal(agent_hello(fd, 200, &v, reason, sizeof(reason)), -ETIMEDOUT);
	assert_true(agent_now_ms() - t0 < 2000);

	t0 = agent_now_ms();
	assert_int_equal(agent_exec(fd, &req, &r, reason, sizeof(reason)), -ETIMEDOUT);
	assert_true(agent_now_ms() - t0 >= 100 + AGENT_CLIENT_GRACE_MS - 50);
	assert_true(agent_now_ms() - t0 < 100 + AGENT_CLIENT_GRACE_MS + 2000);
	close(fd);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_echo),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_cwd),
	    cmocka_unit_test(test_stdin_cat),
	    cmocka_unit_test(test_large_stdout),
	    cmocka_unit_test(test_stderr),
	    cmocka_unit_test(test_exit_code),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_sequential),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_bad_version),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_error_mid_output),
	    cmocka_unit_test(test_identity_dry_run),
	    cmocka_unit_test(test_identity_malformed),
	    cmocka_unit_test(test_connect_handshake),
	    cmocka_unit_test(test_client_deadline),
	};

	/* A client whose peer hung up gets EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, start_agent, stop_agent);
}
