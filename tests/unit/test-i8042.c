// SPDX-License-Identifier: MIT
/*
 * devices/i8042.c: the keyboard controller's reset pulse and the few
 * commands Linux sends before it, against a recording power sink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "i8042.h"

struct power_recorder {
	uint32_t nr;
	enum power_event events[16];
};

static void record_power(void *vm, enum power_event event)
{
	struct power_recorder *rec = vm;

	assert_true(rec->nr < ARRAY_SIZE(rec->events));
	rec->events[rec->nr++] = event;
}

static void kbd_init(struct i8042 *kbd, struct power_recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	i8042_init(kbd, (struct power_sink){ .request = record_power, .vm = rec });
}

static uint8_t status(struct i8042 *kbd)
{
	uint8_t v = 0xaa;

	i8042_command_ops.read(kbd, 0, &v, 1);
	return v;
}

static void command(struct i8042 *kbd, uint8_t cmd)
{
	i8042_command_ops.write(kbd, 0, &cmd, 1);
}

static uint8_t data_in(struct i8042 *kbd)
{
	uint8_t v = 0xaa;

	i8042_data_ops.read(kbd, 0, &v, 1);
	return v;
}

static void data_out(struct i8042 *kbd, uint8_t v)
{
	i8042_data_ops.write(kbd, 0, &v, 1);
}

static void test_ops(void **state)
{
	assert_string_equal(i8042_data_ops.name, "i8042-data");
	assert_string_equal(i8042_command_ops.name, "i8042-command");
	assert_int_equal(i8042_data_ops.access_sizes, BUS_ACCESS_1);
	assert_int_equal(i8042_command_ops.access_sizes, BUS_ACCESS_1);
	assert_int_equal(I8042_DATA_PORT, 0x60);
	assert_int_equal(I8042_COMMAND_PORT, 0x64);
}

static void test_pulse_reset(void **state)
{
	struct power_recorder rec;
	struct i8042 kbd;

	kbd_init(&kbd, &rec);
	/* reboot=k: wait for the input buffer to drain, then 0xfe. */
	assert_int_equal(status(&kbd) & 0x02, 0);
	command(&kbd, 0xfe);
	assert_int_equal(rec.nr, 1);
	assert_int_equal(rec.events[0], POWER_RESET);
	command(&kbd, 0xfe);
	assert_int_equal(rec.nr, 2);
	assert_int_equal(rec.events[1], POWER_RESET);
}

static void test_other_commands_do_not_reset(void **state)
{
	struct power_recorder rec;
	struct i8042 kbd;

	kbd_init(&kbd, &rec);
	for (unsigned int cmd = 0; cmd <= 0xff; cmd++) {
		if (cmd == 0xfe)
			continue;
		command(&kbd, (uint8_t)cmd);
		data_out(&kbd, 0);
		(void)data_in(&kbd);
	}
	assert_int_equal(rec.nr, 0);
	/* Writes to the data port never reset. */
	for (unsigned int v = 0; v <= 0xff; v++)
		data_out(&kbd, (uint8_t)v);
	assert_int_equal(rec.nr, 0);
}

static void test_status_and_self_test(void **state)
{
	struct power_recorder rec;
	struct i8042 kbd;

	kbd_init(&kbd, &rec);
	/* System flag set, output buffer empty, input buffer empty. */
	assert_int_equal(status(&kbd), 0x04);
	assert_int_equal(data_in(&kbd), 0x00);

	command(&kbd, 0xaa);
	assert_int_equal(status(&kbd), 0x05);
	assert_int_equal(data_in(&kbd), 0x55);
	assert_int_equal(status(&kbd), 0x04);
	assert_int_equal(data_in(&kbd), 0x00);
}

static void test_command_byte(void **state)
{
	struct power_recorder rec;
	struct i8042 kbd;

	kbd_init(&kbd, &rec);
	command(&kbd, 0x20);
	assert_int_equal(data_in(&kbd), 0x00);

	command(&kbd, 0x60);
	data_out(&kbd, 0x47);
	command(&kbd, 0x20);
	assert_int_equal(status(&kbd), 0x05);
	assert_int_equal(data_in(&kbd), 0x47);

	/* A data write without a preceding 0x60 is not a command byte. */
	data_out(&kbd, 0x12);
	command(&kbd, 0x20);
	assert_int_equal(data_in(&kbd), 0x47);
	assert_int_equal(rec.nr, 0);
}

static void test_no_sink(void **state)
{
	struct i8042 kbd;

	i8042_init(&kbd, (struct power_sink){ 0 });
	command(&kbd, 0xfe);
	assert_int_equal(status(&kbd), 0x04);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_pulse_reset),
		cmocka_unit_test(test_other_commands_do_not_reset),
		cmocka_unit_test(test_status_and_self_test),
		cmocka_unit_test(test_command_byte),
		cmocka_unit_test(test_no_sink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
