// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the agent protocol decoder (common/agent-proto.c).
 * The input is one frame as it comes off the socket. Whatever the decoder
 * accepts is read end to end (so ASan sees any slice outside the input),
 * then must survive encode -> decode -> encode with identical bytes: the
 * encoder takes everything the decoder accepts, and they agree.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/agent-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void touch(struct agent_bytes b)
{
	for (uint32_t i = 0; i < b.len; i++)
		sink ^= b.data[i];
}

static void touch_msg(const struct agent_msg *m)
{
	switch (m->type) {
	case AGENT_MSG_HELLO_OK:
		touch(m->hello_ok.agent_version);
		break;
	case AGENT_MSG_EXEC:
		assert(m->exec.argc >= 1 && m->exec.argc <= AGENT_ARGV_MAX);
		assert(m->exec.envc <= AGENT_ENV_MAX);
		for (uint32_t i = 0; i < m->exec.argc; i++)
			touch(m->exec.argv[i]);
		for (uint32_t i = 0; i < m->exec.envc; i++)
			touch(m->exec.env[i]);
		touch(m->exec.cwd);
		break;
	case AGENT_MSG_STDIN:
	case AGENT_MSG_STDOUT:
	case AGENT_MSG_STDERR:
		assert(m->data.len >= 1 && m->data.len <= AGENT_DATA_MAX);
		touch(m->data);
		break;
	case AGENT_MSG_IDENTITY:
		assert(m->identity.hostname.len >= 1);
		touch(m->identity.hostname);
		touch(m->identity.ifname);
		touch(m->identity.entropy);
		break;
	case AGENT_MSG_ERROR:
		touch(m->error.message);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_msg m, m2;
	static uint8_t out[AGENT_FRAME_MAX], out2[AGENT_FRAME_MAX];
	size_t len, len2, frame;

	if (size >= AGENT_HDR_SIZE && agent_frame_size(data, &frame, NULL) == 0)
		assert(frame > AGENT_HDR_SIZE - 1 && frame <= AGENT_FRAME_MAX);
	if (agent_msg_decode(data, size, &m, NULL) < 0)
		return 0;
	touch_msg(&m);

	assert(agent_msg_encode(&m, out, sizeof(out), &len, NULL) == 0);
	assert(len <= size);
	assert(agent_msg_decode(out, len, &m2, NULL) == 0);
	assert(m2.type == m.type);
	assert(agent_msg_encode(&m2, out2, sizeof(out2), &len2, NULL) == 0);
	assert(len2 == len && !memcmp(out, out2, len));
	return 0;
}
