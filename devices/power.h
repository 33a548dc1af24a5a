/* SPDX-License-Identifier: MIT */
/*
 * How a device asks the VM to power off or reset: the i8042 reset pulse
 * and the ACPI sleep/reset registers both end in one of these.
 */
#pragma once

enum power_event {
	POWER_OFF,
	POWER_RESET,
	POWER_EVENT_MAX,
};

struct power_sink {
	void (*request)(void *vm, enum power_event event);
	void *vm;
};

static inline void power_request(const struct power_sink *sink, enum power_event event)
{
	if (sink->request)
		sink->request(sink->vm, event);
}
