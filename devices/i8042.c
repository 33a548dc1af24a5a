// SPDX-License-Identifier: MIT
#include <string.h>

#include "i8042.h"

enum {
	CMD_READ_COMMAND_BYTE = 0x20,
	CMD_WRITE_COMMAND_BYTE = 0x60,
	CMD_SELF_TEST = 0xaa,
	CMD_PULSE_RESET = 0xfe,
};

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define SELF_TEST_PASSED   0x55

void i8042_init(struct i8042 *kbd, struct power_sink power)
{
	memset(kbd, 0, sizeof(*kbd));
	kbd->power = power;
}

/*
 * Only the vCPU that writes these ports touches them in practice (the
 * kernel serialises keyboard-controller access), and the state is a few
 * bytes with no invariant across them, so no lock.
 */
static void i8042_command_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct i8042 *kbd = dev;

	/* Input buffer always empty, so `kb_wait()` never spins. */
	*(uint8_t *)data = STATUS_SYSTEM_FLAG | (kbd->has_pending ? STATUS_OUTPUT_FULL : 0);
}

static void i8042_command_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct i8042 *kbd = dev;
	uint8_t cmd = *(const uint8_t *)data;

	switch (cmd) {
	case CMD_READ_COMMAND_BYTE:
		kbd->pending_data = kbd->command_byte;
		kbd->has_pending = true;
		break;
	case CMD_WRITE_COMMAND_BYTE:
		kbd->awaiting_arg = cmd;
		break;
	case CMD_SELF_TEST:
		kbd->pending_data = SELF_TEST_PASSED;
		kbd->has_pending = true;
		break;
	case CMD_PULSE_RESET:
		power_request(&kbd->power, POWER_RESET);
		break;
	default:
		break;
	}
}

static void i8042_data_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct i8042 *kbd = dev;

	*(uint8_t *)data = kbd->has_pending ? kbd->pending_data : 0;
	kbd->has_pending = false;
}

static void i8042_data_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct i8042 *kbd = dev;

	if (kbd->awaiting_arg == CMD_WRITE_COMMAND_BYTE)
		kbd->command_byte = *(const uint8_t *)data;
	kbd->awaiting_arg = 0;
}

const struct bus_device_ops i8042_data_ops = {
	.name = "i8042-data",
	.access_sizes = BUS_ACCESS_1,
	.read = i8042_data_read,
	.write = i8042_data_write,
};

const struct bus_device_ops i8042_command_ops = {
	.name = "i8042-command",
	.access_sizes = BUS_ACCESS_1,
	.read = i8042_command_read,
	.write = i8042_command_write,
};

static int i8042_post_load(void *dev)
{
	struct i8042 *kbd = dev;

	return state_check_bool(&kbd->has_pending);
}

static const struct state_field i8042_fields[] = {
	STATE_FIELD(struct i8042, command_byte),
	STATE_FIELD(struct i8042, pending_data),
	STATE_FIELD(struct i8042, has_pending),
	STATE_FIELD(struct i8042, awaiting_arg),
};

const struct state_desc i8042_state_desc = {
	.name = "i8042",
	.version = 1,
	.size = sizeof(struct i8042),
	.fields = i8042_fields,
	.nr_fields = sizeof(i8042_fields) / sizeof(i8042_fields[0]),
	.post_load = i8042_post_load,
};
