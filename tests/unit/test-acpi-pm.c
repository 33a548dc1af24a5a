// SPDX-License-Identifier: MIT
/*
 * devices/acpi-pm.c: the hardware-reduced sleep control, sleep status and
 * reset registers, against a recording power sink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "acpi-pm.h"

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

/* Offsets relative to ACPI_PM_PORT_BASE, as the bus hands them over. */
enum {
	OFF_SLEEP_CONTROL = 0,
	OFF_SLEEP_STATUS = 1,
	OFF_RESET = 2,
};

static void pm_out(struct acpi_pm *pm, uint64_t offset, uint8_t v)
{
	acpi_pm_ops.write(pm, offset, &v, 1);
}

static uint8_t pm_in(struct acpi_pm *pm, uint64_t offset)
{
	uint8_t v = 0xaa;

	acpi_pm_ops.read(pm, offset, &v, 1);
	return v;
}

static void test_ports(void **state)
{
	assert_int_equal(ACPI_PM_PORT_BASE, 0x600);
	assert_int_equal(ACPI_PM_SLEEP_CONTROL - ACPI_PM_PORT_BASE, OFF_SLEEP_CONTROL);
	assert_int_equal(ACPI_PM_SLEEP_STATUS - ACPI_PM_PORT_BASE, OFF_SLEEP_STATUS);
	assert_int_equal(ACPI_PM_RESET - ACPI_PM_PORT_BASE, OFF_RESET);
	assert_int_equal(ACPI_PM_NR_PORTS, 3);
	assert_int_equal(ACPI_PM_RESET_VALUE, 0x0f);
	assert_int_equal(ACPI_PM_S5_SLEEP_TYPE, 5);
	assert_string_equal(acpi_pm_ops.name, "acpi-pm");
	assert_int_equal(acpi_pm_ops.access_sizes, BUS_ACCESS_1);
}

/* SLP_TYP is bits 4:2 and SLP_EN bit 5 (ACPI 6.x, 4.8.3.7). */
static const struct {
	uint8_t value;
	bool power_off;
} sleep_cases[] = {
	{ (5 << 2) | (1 << 5), true }, /* 0x34: S5 + SLP_EN, what Linux writes */
	{ 5 << 2, false },	       /* S5 without SLP_EN */
	{ 1 << 5, false },	       /* SLP_EN with SLP_TYP 0 */
	{ (3 << 2) | (1 << 5), false }, { (4 << 2) | (1 << 5), false },
	{ (7 << 2) | (1 << 5), false }, { (1 << 2) | (1 << 5), false },
	{ 0x00, false },		{ 0xff & ~(1 << 5), false },
};

static void test_sleep_control(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(sleep_cases); i++) {
		struct power_recorder rec = { 0 };
		struct acpi_pm pm;

		acpi_pm_init(&pm, (struct power_sink){ .request = record_power, .vm = &rec });
		pm_out(&pm, OFF_SLEEP_CONTROL, sleep_cases[i].value);
		if (rec.nr != (sleep_cases[i].power_off ? 1u : 0u))
			print_message("sleep control 0x%02x\n", sleep_cases[i].value);
		assert_int_equal(rec.nr, sleep_cases[i].power_off ? 1 : 0);
		if (sleep_cases[i].power_off)
			assert_int_equal(rec.events[0], POWER_OFF);
	}
}

static void test_reset_register(void **state)
{
	struct power_recorder rec = { 0 };
	struct acpi_pm pm;

	acpi_pm_init(&pm, (struct power_sink){ .request = record_power, .vm = &rec });
	for (unsigned int v = 0; v <= 0xff; v++)
		if (v != ACPI_PM_RESET_VALUE)
			pm_out(&pm, OFF_RESET, (uint8_t)v);
	assert_int_equal(rec.nr, 0);

	pm_out(&pm, OFF_RESET, 0x0f);
	assert_int_equal(rec.nr, 1);
	assert_int_equal(rec.events[0], POWER_RESET);
}

static void test_sleep_status(void **state)
{
	struct power_recorder rec = { 0 };
	struct acpi_pm pm;

	acpi_pm_init(&pm, (struct power_sink){ .request = record_power, .vm = &rec });
	assert_int_equal(pm_in(&pm, OFF_SLEEP_STATUS), 0);
	/* Write-one-to-clear. */
	pm.sleep_status = 0x81;
	assert_int_equal(pm_in(&pm, OFF_SLEEP_STATUS), 0x81);
	pm_out(&pm, OFF_SLEEP_STATUS, 0x01);
	assert_int_equal(pm_in(&pm, OFF_SLEEP_STATUS), 0x80);
	pm_out(&pm, OFF_SLEEP_STATUS, 0x34);
	assert_int_equal(pm_in(&pm, OFF_SLEEP_STATUS), 0x80);
	/* The other registers read as zero. */
	assert_int_equal(pm_in(&pm, OFF_SLEEP_CONTROL), 0);
	assert_int_equal(pm_in(&pm, OFF_RESET), 0);
	/* None of this powered anything off. */
	assert_int_equal(rec.nr, 0);
}

static void test_no_sink(void **state)
{
	struct acpi_pm pm;

	acpi_pm_init(&pm, (struct power_sink){ 0 });
	pm_out(&pm, OFF_SLEEP_CONTROL, 0x34);
	pm_out(&pm, OFF_RESET, 0x0f);
	assert_int_equal(pm_in(&pm, OFF_SLEEP_STATUS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_sleep_control),
		cmocka_unit_test(test_reset_register),
		cmocka_unit_test(test_sleep_status),
		cmocka_unit_test(test_no_sink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
