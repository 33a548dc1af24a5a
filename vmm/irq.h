/* SPDX-License-Identifier: MIT */
/*
 * An interrupt line from a device to an interrupt controller pin. Devices
 * hold one and drive its level; they never know which controller is
 * behind it, so unit tests can plug in a recorder.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
	void (*set_level)(void *controller, uint32_t pin, bool level);
	void *controller;
	uint32_t pin;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	if (line->set_level)
		line->set_level(line->controller, line->pin, level);
}
