// SPDX-License-Identifier: MIT
#include <string.h>

#include "acpi-pm.h"

/* ACPI 6.x, 4.8.3.7: sleep control register layout. */
#define SLP_EN		(1u << 5)
#define SLP_TYP_SHIFT	2
#define SLP_TYP_MASK	0x7

void acpi_pm_init(struct acpi_pm *pm, struct power_sink power)
{
	memset(pm, 0, sizeof(*pm));
	pm->power = power;
}

static void acpi_pm_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct acpi_pm *pm = dev;

	*(uint8_t *)data = offset == ACPI_PM_SLEEP_STATUS - ACPI_PM_PORT_BASE ? pm->sleep_status : 0;
}

static void acpi_pm_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct acpi_pm *pm = dev;
	uint8_t val = *(const uint8_t *)data;

	switch (offset + ACPI_PM_PORT_BASE) {
	case ACPI_PM_SLEEP_CONTROL:
		if ((val & SLP_EN) &&
		    ((val >> SLP_TYP_SHIFT) & SLP_TYP_MASK) == ACPI_PM_S5_SLEEP_TYPE)
			power_request(&pm->power, POWER_OFF);
		break;
	case ACPI_PM_SLEEP_STATUS:
		/* Write-one-to-clear, like the WAK_STS bit it models. */
		pm->sleep_status &= (uint8_t)~val;
		break;
	case ACPI_PM_RESET:
		if (val == ACPI_PM_RESET_VALUE)
			power_request(&pm->power, POWER_RESET);
		break;
	}
}

const struct bus_device_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.access_sizes = BUS_ACCESS_1,
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

static const struct state_field acpi_pm_fields[] = {
	STATE_FIELD(struct acpi_pm, sleep_status),
};

const struct state_desc acpi_pm_state_desc = {
	.name = "acpi-pm",
	.version = 1,
	.size = sizeof(struct acpi_pm),
	.fields = acpi_pm_fields,
	.nr_fields = sizeof(acpi_pm_fields) / sizeof(acpi_pm_fields[0]),
};
