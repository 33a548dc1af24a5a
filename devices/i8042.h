/* SPDX-License-Identifier: MIT */
/*
 * Just enough of the i8042 keyboard controller for `reboot=k`: the 0xfe
 * command on port 0x64 pulses the CPU reset line. No keyboard, no mouse.
 */
#pragma once

#include <stdint.h>

#include "bus.h"
#include "power.h"
#include "state-desc.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64

struct i8042 {
	struct power_sink power;
	uint8_t command_byte;
	/* The next data-port read, after a command that answers. */
	uint8_t pending_data;
	bool has_pending;
	/* The next data-port write is an argument to this command. */
	uint8_t awaiting_arg;
};

extern const struct bus_device_ops i8042_data_ops;
extern const struct bus_device_ops i8042_command_ops;
extern const struct state_desc i8042_state_desc;

void i8042_init(struct i8042 *kbd, struct power_sink power);
