/* SPDX-License-Identifier: MIT */
/*
 * The hardware-reduced ACPI power registers that fvm's FADT points at:
 * sleep control (S5 = power off), sleep status, and the reset register.
 * Port numbers are shared with the FADT builder.
 */
#pragma once

#include <stdint.h>

#include "bus.h"
#include "power.h"
#include "state-desc.h"

#define ACPI_PM_PORT_BASE	  0x600
#define ACPI_PM_SLEEP_CONTROL	  0x600
#define ACPI_PM_SLEEP_STATUS	  0x601
#define ACPI_PM_RESET		  0x602
#define ACPI_PM_NR_PORTS	  3
#define ACPI_PM_RESET_VALUE	  0x0f
/* The SLP_TYP value the DSDT's \_S5 package announces. */
#define ACPI_PM_S5_SLEEP_TYPE	  5

struct acpi_pm {
	struct power_sink power;
	uint8_t sleep_status;
};

extern const struct bus_device_ops acpi_pm_ops;
extern const struct state_desc acpi_pm_state_desc;

void acpi_pm_init(struct acpi_pm *pm, struct power_sink power);
