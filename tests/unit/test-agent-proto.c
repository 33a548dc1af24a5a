// SPDX-License-Identifier: MIT
/*
 * common/agent-proto.c: every message survives encode -> decode, and
 * every malformed frame is refused: short, long, overrunning, missing,
 * repeated, misplaced, out of range. Frames for the refusals are built by
 * hand (raw_*), since the encoder will not produce them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent-proto.h"

static uint8_t frame[AGENT_FRAME_MAX + 16];
static struct agent_msg msg;

/* --- a hand-made frame --- */

struct raw {
	uint8_t b[AGENT_FRAME_MAX + 64];
	size_t len;
};

static struct raw raw;

static void raw_put(const void *p, size_t n)
{
	assert_true(raw.len + n <= sizeof(raw.b));
	memcpy(raw.b + raw.len, p, n);
	raw.len += n;
}

static void raw_begin(uint8_t type)
{
	raw.len = 0;
	raw_put("\0\0\0\0", 4);
	raw_put(&type, 1);
}

static void raw_tlv(uint16_t tag, const void *v, uint32_t n)
{
	uint8_t h[6] = {(uint8_t)tag,	   (uint8_t)(tag >> 8), (uint8_t)n,
			(uint8_t)(n >> 8), (uint8_t)(n >> 16),	(uint8_t)(n >> 24)};

	raw_put(h, sizeof(h));
	raw_put(v, n);
}

static void raw_str(uint16_t tag, const char *s)
{
	raw_tlv(tag, s, (uint32_t)strlen(s));
}

static void raw_u32(uint16_t tag, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	raw_tlv(tag, b, 4);
}

/* Sets the length field from what was put. */
static void raw_end(void)
{
	uint32_t n = (uint32_t)raw.len - 4;

	raw.b[0] = (uint8_t)n;
	raw.b[1] = (uint8_t)(n >> 8);
	raw.b[2] = (uint8_t)(n >> 16);
	raw.b[3] = (uint8_t)(n >> 24);
}

static int raw_decode(void)
{
	const char *why = NULL;
	int ret = agent_msg_decode(raw.b, raw.len, &msg, &why);

	if (ret < 0)
		assert_non_null(why);
	return ret;
}

static void assert_refused(void)
{
	raw_end();
	assert_int_equal(raw_decode(), -EBADMSG);
}

/* A valid EXEC to break in various ways: argv only, plus what tests add. */
static void raw_exec_begin(void)
{
	raw_begin(AGENT_MSG_EXEC);
	raw_str(AGENT_TAG_ARGV, "true");
}

static void raw_identity_begin(void)
{
	raw_begin(AGENT_MSG_IDENTITY);
	raw_str(AGENT_TAG_HOSTNAME, "vm1");
}

/* --- round trips --- */

static size_t encode(const struct agent_msg *m)
{
	const char *why = NULL;
	size_t len = 0;
	int ret = agent_msg_encode(m, frame, sizeof(frame), &len, &why);

	if (ret < 0)
		fail_msg("encode: %s", why);
	return len;
}

static void round_trip(const struct agent_msg *m)
{
	size_t len = encode(m);
	const char *why = NULL;

	if (agent_msg_decode(frame, len, &msg, &why) < 0)
		fail_msg("decode: %s", why);
	assert_int_equal(msg.type, m->type);
}

static void assert_bytes(struct agent_bytes b, const char *s)
{
	assert_int_equal(b.len, strlen(s));
	assert_memory_equal(b.data, s, b.len);
}

static void test_hello(void **state)
{
	struct agent_msg m = {.type = AGENT_MSG_HELLO, .hello.version = 7};
	struct agent_msg ok = {
	    .type = AGENT_MSG_HELLO_OK,
	    .hello_ok = {.version = 1, .agent_version = agent_bytes_str("fvm-agent 9")},
	};

	round_trip(&m);
	assert_int_equal(msg.hello.version, 7);
	round_trip(&ok);
	assert_int_equal(msg.hello_ok.version, 1);
	assert_bytes(msg.hello_ok.agent_version, "fvm-agent 9");
	ok.hello_ok.agent_version.len = 0;
	round_trip(&ok);
	assert_int_equal(msg.hello_ok.agent_version.len, 0);

	assert_true(agent_version_supported(AGENT_PROTO_VERSION));
	assert_false(agent_version_supported(0));
	assert_false(agent_version_supported(AGENT_PROTO_VERSION_MAX + 1));
}

static void test_exec(void **state)
{
	static struct agent_msg m;

	m = (struct agent_msg){.type = AGENT_MSG_EXEC};
	m.exec.argc = 3;
	m.exec.argv[0] = agent_bytes_str("sh");
	m.exec.argv[1] = agent_bytes_str("");
	m.exec.argv[2] = agent_bytes_str("echo $A");
	m.exec.envc = 2;
	m.exec.env[0] = agent_bytes_str("A=1");
	m.exec.env[1] = agent_bytes_str("B=");
	m.exec.timeout_ms = 1234;
	m.exec.cwd = agent_bytes_str("/tmp");
	round_trip(&m);
	assert_int_equal(msg.exec.argc, 3);
	assert_bytes(msg.exec.argv[0], "sh");
	assert_bytes(msg.exec.argv[1], "");
	assert_bytes(msg.exec.argv[2], "echo $A");
	assert_int_equal(msg.exec.envc, 2);
	assert_bytes(msg.exec.env[1], "B=");
	assert_int_equal(msg.exec.timeout_ms, 1234);
	assert_bytes(msg.exec.cwd, "/tmp");

	/* The most arguments there may be. */
	m.exec.argc = AGENT_ARGV_MAX;
	m.exec.envc = AGENT_ENV_MAX;
	for (uint32_t i = 0; i < AGENT_ARGV_MAX; i++)
		m.exec.argv[i] = agent_bytes_str("x");
	for (uint32_t i = 0; i < AGENT_ENV_MAX; i++)
		m.exec.env[i] = agent_bytes_str("K=V");
	round_trip(&m);
	assert_int_equal(msg.exec.argc, AGENT_ARGV_MAX);
	assert_int_equal(msg.exec.envc, AGENT_ENV_MAX);
}

static void test_data(void **state)
{
	static uint8_t big[AGENT_DATA_MAX];
	static const uint8_t types[] = {AGENT_MSG_STDIN, AGENT_MSG_STDOUT, AGENT_MSG_STDERR};
	struct agent_msg eof = {.type = AGENT_MSG_STDIN_EOF};

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
		struct agent_msg m = {.type = types[t], .data = {.data = big, .len = sizeof(big)}};

		round_trip(&m);
		assert_int_equal(msg.data.len, sizeof(big));
		assert_memory_equal(msg.data.data, big, sizeof(big));
		m.data.len = 1;
		round_trip(&m);
		assert_int_equal(msg.data.len, 1);
	}
	assert_int_equal(encode(&eof), AGENT_HDR_SIZE);
	round_trip(&eof);
}

static void test_exit_ready_error(void **state)
{
	struct agent_msg m = {
	    .type = AGENT_MSG_EXIT,
	    .exit = {.exit_code = 137, .signal = 9, .timed_out = true},
	};

	round_trip(&m);
	assert_int_equal(msg.exit.exit_code, 137);
	assert_int_equal(msg.exit.signal, 9);
	assert_true(msg.exit.timed_out);

	m = (struct agent_msg){.type = AGENT_MSG_READY,
			       .ready.applied = AGENT_ID_ALL | AGENT_ID_DRY_RUN};
	round_trip(&m);
	assert_int_equal(msg.ready.applied, AGENT_ID_ALL | AGENT_ID_DRY_RUN);

	m = (struct agent_msg){.type = AGENT_MSG_ERROR, .error.message = agent_bytes_str("no")};
	round_trip(&m);
	assert_bytes(msg.error.message, "no");
	assert_false(msg.error.has_applied);
	m.error.has_applied = true;
	m.error.applied = AGENT_ID_HOSTNAME;
	round_trip(&m);
	assert_true(msg.error.has_applied);
	assert_int_equal(msg.error.applied, AGENT_ID_HOSTNAME);
}

static void test_identity(void **state)
{
	static const uint8_t entropy[AGENT_ENTROPY_MAX] = {1, 2, 3};
	struct agent_msg m = {.type = AGENT_MSG_IDENTITY};
	struct agent_msg_identity *id = &m.identity;

	*id = (struct agent_msg_identity){
	    .present = AGENT_ID_ALL,
	    .hostname = agent_bytes_str("clone-7.example"),
	    .ifname = agent_bytes_str("eth1"),
	    .mac = {0x02, 0xfc, 0, 0, 0, 7},
	    .ipv4 = {172, 16, 0, 7},
	    .prefix = 24,
	    .gateway = {172, 16, 0, 1},
	    .entropy = {.data = entropy, .len = sizeof(entropy)},
	    .sec = 1700000000,
	    .nsec = 999999999,
	};
	round_trip(&m);
	assert_int_equal(msg.identity.present, AGENT_ID_ALL);
	assert_bytes(msg.identity.hostname, "clone-7.example");
	assert_bytes(msg.identity.ifname, "eth1");
	assert_memory_equal(msg.identity.mac, id->mac, 6);
	assert_memory_equal(msg.identity.ipv4, id->ipv4, 4);
	assert_int_equal(msg.identity.prefix, 24);
	assert_memory_equal(msg.identity.gateway, id->gateway, 4);
	assert_int_equal(msg.identity.entropy.len, sizeof(entropy));
	assert_memory_equal(msg.identity.entropy.data, entropy, sizeof(entropy));
	assert_int_equal(msg.identity.sec, 1700000000);
	assert_int_equal(msg.identity.nsec, 999999999);

	/* Only the hostname. */
	*id = (struct agent_msg_identity){.present = AGENT_ID_HOSTNAME,
					  .hostname = agent_bytes_str("a")};
	round_trip(&m);
	assert_int_equal(msg.identity.present, AGENT_ID_HOSTNAME);
	assert_int_equal(msg.identity.ifname.len, 0);
}

/* --- refusals --- */

static void test_frame_bounds(void **state)
{
	struct agent_msg m = {.type = AGENT_MSG_EXEC};
	size_t len;

	m.exec.argc = 2;
	m.exec.argv[0] = agent_bytes_str("echo");
	m.exec.argv[1] = agent_bytes_str("hi");
	len = encode(&m);

	/* Every truncation, and a byte too many. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(agent_msg_decode(frame, n, &msg, NULL), -EBADMSG);
	frame[len] = 0;
	assert_int_equal(agent_msg_decode(frame, len + 1, &msg, NULL), -EBADMSG);

	/* A header that disagrees with the frame either way. */
	frame[0]++;
	assert_int_equal(agent_msg_decode(frame, len, &msg, NULL), -EBADMSG);
	frame[0] -= 2;
	assert_int_equal(agent_msg_decode(frame, len, &msg, NULL), -EBADMSG);

	/* Length 0 (no type) and lengths over the limit. */
	raw.len = 0;
	raw_put("\0\0\0\0\x01", 5);
	assert_int_equal(raw_decode(), -EBADMSG);
	raw.len = 0;
	raw_put("\xff\xff\xff\xff\x01", 5);
	assert_int_equal(raw_decode(), -EMSGSIZE);

	/* One byte over the largest payload, with the bytes there. */
	raw_begin(AGENT_MSG_STDOUT);
	memset(raw.b + raw.len, 'x', AGENT_PAYLOAD_MAX + 1);
	raw.len += AGENT_PAYLOAD_MAX + 1;
	raw_end();
	assert_int_equal(raw_decode(), -EMSGSIZE);
}

static void test_unknown_type(void **state)
{
	static const uint8_t bad[] = {0x00, 0x03, 0x0f, 0x16, 0x22, 0x7e, 0x80, 0xff};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		raw_begin(bad[i]);
		raw_u32(AGENT_TAG_VERSION, 1);
		assert_refused();
	}
}

static void test_tlv_structure(void **state)
{
	uint8_t three[3] = {1, 2, 3};

	/* A TLV header cut short. */
	raw_exec_begin();
	raw_put(three, sizeof(three));
	assert_refused();

	/* A value running past the payload, by one and by 4 GiB. */
	raw_exec_begin();
	raw_tlv(AGENT_TAG_CWD, "/tmp", 4);
	raw.len--;
	assert_refused();
	raw_exec_begin();
	raw_put("\x06\x00\xff\xff\xff\xff/", 7);
	assert_refused();

	/* Unknown tags: refused, unless marked optional (then skipped). */
	raw_exec_begin();
	raw_str(99, "x");
	assert_refused();
	raw_exec_begin();
	raw_str(AGENT_TAG_OPTIONAL | 99, "x");
	raw_end();
	assert_int_equal(raw_decode(), 0);
	assert_int_equal(msg.exec.argc, 1);

	/* A known tag in a message that does not take it. */
	raw_exec_begin();
	raw_str(AGENT_TAG_HOSTNAME, "vm");
	assert_refused();

	/* A single tag twice. */
	raw_exec_begin();
	raw_u32(AGENT_TAG_TIMEOUT_MS, 1);
	raw_u32(AGENT_TAG_TIMEOUT_MS, 2);
	assert_refused();

	/* A fixed-size value of the wrong size. */
	raw_exec_begin();
	raw_tlv(AGENT_TAG_TIMEOUT_MS, three, 3);
	assert_refused();
}

static void test_bad_hello(void **state)
{
	raw_begin(AGENT_MSG_HELLO);
	assert_refused(); /* no version */
	raw_begin(AGENT_MSG_HELLO);
	raw_u32(AGENT_TAG_VERSION, 0);
	assert_refused();
	raw_begin(AGENT_MSG_HELLO);
	raw_tlv(AGENT_TAG_VERSION, "\x01\x00", 2);
	assert_refused();
	raw_begin(AGENT_MSG_HELLO_OK);
	raw_u32(AGENT_TAG_VERSION, 1);
	raw_tlv(AGENT_TAG_AGENT_VERSION, "a\0b", 3);
	assert_refused();

	/* Well formed, but a version no agent speaks: decoded, then refused. */
	raw_begin(AGENT_MSG_HELLO);
	raw_u32(AGENT_TAG_VERSION, 99);
	raw_end();
	assert_int_equal(raw_decode(), 0);
	assert_false(agent_version_supported(msg.hello.version));
}

static void test_bad_exec(void **state)
{
	static const char *const bad_env[] = {"NOEQUALS", "=value"};
	static char long_arg[AGENT_ARG_LEN_MAX + 1];

	raw_begin(AGENT_MSG_EXEC); /* no argv */
	raw_u32(AGENT_TAG_TIMEOUT_MS, 10);
	assert_refused();

	raw_begin(AGENT_MSG_EXEC);
	raw_str(AGENT_TAG_ARGV, "");
	assert_refused();

	raw_begin(AGENT_MSG_EXEC);
	raw_tlv(AGENT_TAG_ARGV, "ec\0ho", 5);
	assert_refused();

	for (size_t i = 0; i < ARRAY_SIZE(bad_env); i++) {
		raw_exec_begin();
		raw_str(AGENT_TAG_ENV, bad_env[i]);
		assert_refused();
	}
	raw_exec_begin();
	raw_tlv(AGENT_TAG_ENV, "A=\0", 3);
	assert_refused();

	raw_exec_begin();
	raw_tlv(AGENT_TAG_CWD, "", 0);
	assert_refused();

	/* One argument too many. */
	raw_begin(AGENT_MSG_EXEC);
	for (uint32_t i = 0; i <= AGENT_ARGV_MAX; i++)
		raw_str(AGENT_TAG_ARGV, "x");
	assert_refused();

	/* An argument longer than the kernel takes. */
	memset(long_arg, 'x', sizeof(long_arg));
	raw_begin(AGENT_MSG_EXEC);
	raw_tlv(AGENT_TAG_ARGV, long_arg, sizeof(long_arg));
	assert_refused();
}

static void test_bad_data(void **state)
{
	raw_begin(AGENT_MSG_STDIN);
	assert_refused(); /* empty */
	raw_begin(AGENT_MSG_STDOUT);
	memset(raw.b + raw.len, 'x', AGENT_DATA_MAX + 1);
	raw.len += AGENT_DATA_MAX + 1;
	assert_refused();
	raw_begin(AGENT_MSG_STDIN_EOF);
	raw_put("x", 1);
	assert_refused();
}

static void test_bad_exit_ready_error(void **state)
{
	raw_begin(AGENT_MSG_EXIT);
	raw_u32(AGENT_TAG_EXIT_CODE, 0);
	raw_u32(AGENT_TAG_SIGNAL, 0);
	raw_tlv(AGENT_TAG_TIMED_OUT, "\x02", 1);
	assert_refused();

	raw_begin(AGENT_MSG_EXIT);
	raw_u32(AGENT_TAG_EXIT_CODE, 256);
	raw_u32(AGENT_TAG_SIGNAL, 0);
	raw_tlv(AGENT_TAG_TIMED_OUT, "\x00", 1);
	assert_refused();

	raw_begin(AGENT_MSG_EXIT); /* no signal */
	raw_u32(AGENT_TAG_EXIT_CODE, 0);
	raw_tlv(AGENT_TAG_TIMED_OUT, "\x00", 1);
	assert_refused();

	raw_begin(AGENT_MSG_READY);
	raw_u32(AGENT_TAG_APPLIED, 1u << 20);
	assert_refused();

	raw_begin(AGENT_MSG_ERROR);
	raw_tlv(AGENT_TAG_MESSAGE, "", 0);
	assert_refused();
}

static void test_bad_identity(void **state)
{
	static uint8_t entropy[AGENT_ENTROPY_MAX + 1];
	static char too_long[AGENT_HOSTNAME_MAX + 2];
	static const char *const bad_hostnames[] = {"", "-lead", "has space", "semi;colon",
						    too_long};
	static const char *const bad_ifnames[] = {"",	"a/b",	 "a:1",
						  "..", "eth 0", "sixteen-chars-xx"};

	memset(too_long, 'h', AGENT_HOSTNAME_MAX + 1);
	raw_begin(AGENT_MSG_IDENTITY); /* no hostname */
	raw_str(AGENT_TAG_IFNAME, "eth0");
	assert_refused();
	for (size_t i = 0; i < ARRAY_SIZE(bad_hostnames); i++) {
		raw_begin(AGENT_MSG_IDENTITY);
		raw_str(AGENT_TAG_HOSTNAME, bad_hostnames[i]);
		assert_refused();
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_ifnames); i++) {
		raw_identity_begin();
		raw_str(AGENT_TAG_IFNAME, bad_ifnames[i]);
		assert_refused();
	}

	/* MAC: 5 and 7 bytes, multicast, zero. */
	raw_identity_begin();
	raw_tlv(AGENT_TAG_MAC, "\x02\x00\x00\x00\x01", 5);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_MAC, "\x02\x00\x00\x00\x00\x01\x02", 7);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_MAC, "\x01\x00\x5e\x00\x00\x01", 6);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_MAC, "\0\0\0\0\0\0", 6);
	assert_refused();

	/* IPv4: prefix 33; a gateway without an address. */
	raw_identity_begin();
	raw_tlv(AGENT_TAG_IPV4, "\x0a\x00\x00\x02\x21", 5);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_IPV4, "\x0a\x00\x00\x02", 4);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_GATEWAY, "\x0a\x00\x00\x01", 4);
	assert_refused();

	/* Entropy: 513 bytes, and none at all. */
	raw_identity_begin();
	raw_tlv(AGENT_TAG_ENTROPY, entropy, sizeof(entropy));
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_ENTROPY, entropy, 0);
	assert_refused();

	/* Time: nanoseconds of a whole second; seconds past time_t. */
	raw_identity_begin();
	raw_tlv(AGENT_TAG_REALTIME, "\x01\0\0\0\0\0\0\0\x00\xca\x9a\x3b", 12);
	assert_refused();
	raw_identity_begin();
	raw_tlv(AGENT_TAG_REALTIME, "\0\0\0\0\0\0\0\x80\0\0\0\0", 12);
	assert_refused();

	/* The valid base itself passes, so the cases above fail for their reason. */
	raw_identity_begin();
	raw_tlv(AGENT_TAG_IPV4, "\x0a\x00\x00\x02\x20", 5);
	raw_tlv(AGENT_TAG_GATEWAY, "\x0a\x00\x00\x01", 4);
	raw_tlv(AGENT_TAG_ENTROPY, entropy, AGENT_ENTROPY_MAX);
	raw_end();
	assert_int_equal(raw_decode(), 0);
}

static void test_encoder_refuses(void **state)
{
	static struct agent_msg m;
	static char arg[AGENT_ARG_LEN_MAX];
	uint8_t small[8];
	size_t len = 0xdead;

	m = (struct agent_msg){.type = AGENT_MSG_EXEC};
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), -EINVAL);
	assert_int_equal(len, 0xdead);

	m = (struct agent_msg){.type = AGENT_MSG_IDENTITY};
	m.identity.present = AGENT_ID_HOSTNAME | AGENT_ID_IPV4;
	m.identity.hostname = agent_bytes_str("vm");
	m.identity.prefix = 33;
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), -EINVAL);
	m.identity.prefix = 32;
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), 0);
	assert_int_equal(agent_msg_encode(&m, small, sizeof(small), &len, NULL), -EMSGSIZE);

	m = (struct agent_msg){.type = 0x55};
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), -EINVAL);

	/* Arguments that fit one by one, but not together in a frame. */
	memset(arg, 'a', sizeof(arg) - 1);
	m = (struct agent_msg){.type = AGENT_MSG_EXEC, .exec.argc = 9};
	for (uint32_t i = 0; i < 9; i++)
		m.exec.argv[i] = agent_bytes_str(arg);
	assert_int_equal(agent_msg_encode(&m, frame, sizeof(frame), &len, NULL), -EMSGSIZE);
}

/* --- frames over a socket --- */

static void test_rx(void **state)
{
	struct agent_msg hello = {.type = AGENT_MSG_HELLO, .hello.version = 1};
	struct agent_rx rx = {.buf = malloc(AGENT_FRAME_MAX)};
	uint8_t two[64], rest[8];
	size_t len, n;
	int sv[2];

	assert_non_null(rx.buf);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	n = encode(&hello);
	memcpy(two, frame, n);
	memcpy(two + n, frame, n);

	/* Byte by byte: nothing until the last byte of the frame. */
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), 0);
	for (size_t i = 0; i < n - 1; i++) {
		assert_int_equal(write(sv[0], two + i, 1), 1);
		assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), 0);
	}
	assert_int_equal(write(sv[0], two + n - 1, 1), 1);
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), 1);
	assert_int_equal(len, n);
	assert_int_equal(agent_msg_decode(rx.buf, len, &msg, NULL), 0);

	/* Two frames and a tail at once: one frame per call, the tail stays. */
	assert_int_equal(write(sv[0], two, 2 * n), (ssize_t)(2 * n));
	assert_int_equal(write(sv[0], "tail", 4), 4);
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), 1);
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), 1);
	assert_int_equal(recv(sv[1], rest, sizeof(rest), MSG_DONTWAIT), 4);
	assert_memory_equal(rest, "tail", 4);

	/* A header over the limit is refused before its payload is read. */
	assert_int_equal(write(sv[0], "\xff\xff\xff\x7f\x13more", 9), 9);
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), -EMSGSIZE);
	assert_int_equal(recv(sv[1], rest, sizeof(rest), MSG_DONTWAIT), 4);
	rx = (struct agent_rx){.buf = rx.buf};

	/* EOF inside a frame, then between frames. */
	assert_int_equal(write(sv[0], two, 3), 3);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), -EBADMSG);
	rx = (struct agent_rx){.buf = rx.buf};
	assert_int_equal(agent_rx_read(&rx, sv[1], &len, NULL), -EPIPE);

	close(sv[0]);
	close(sv[1]);
	free(rx.buf);
}

static void test_strv(void **state)
{
	struct agent_bytes v[3] = {agent_bytes_str("a"), agent_bytes_str(""),
				   agent_bytes_str("ccc")};
	char **strv = NULL;
	char small[3];

	assert_int_equal(agent_strv_dup(v, 3, &strv), 0);
	assert_string_equal(strv[0], "a");
	assert_string_equal(strv[1], "");
	assert_string_equal(strv[2], "ccc");
	assert_null(strv[3]);
	free(strv);

	assert_int_equal(agent_bytes_copy(v[0], small, sizeof(small)), 0);
	assert_string_equal(small, "a");
	assert_int_equal(agent_bytes_copy(v[2], small, sizeof(small)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),	 cmocka_unit_test(test_exec),
	    cmocka_unit_test(test_data),	 cmocka_unit_test(test_exit_ready_error),
	    cmocka_unit_test(test_identity),	 cmocka_unit_test(test_frame_bounds),
	    cmocka_unit_test(test_unknown_type), cmocka_unit_test(test_tlv_structure),
	    cmocka_unit_test(test_bad_hello),	 cmocka_unit_test(test_bad_exec),
	    cmocka_unit_test(test_bad_data),	 cmocka_unit_test(test_bad_exit_ready_error),
	    cmocka_unit_test(test_bad_identity), cmocka_unit_test(test_encoder_refuses),
	    cmocka_unit_test(test_rx),		 cmocka_unit_test(test_strv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
