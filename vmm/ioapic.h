/* SPDX-License-Identifier: MIT */
/*
 * A user-space IOAPIC for KVM's split irqchip: the LAPICs live in the
 * kernel, this model owns the 24 pins. A pin that fires becomes an MSI
 * (address/data built from its redirection entry) handed to KVM; level-
 * triggered pins keep Remote IRR until the LAPIC's EOI comes back as a
 * KVM_EXIT_IOAPIC_EOI. Every redirection-entry change republishes the pin
 * routes, which is how KVM learns which vectors need that EOI exit and
 * how irqfds bound to a pin reach the right vCPU.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "state-desc.h"

#define IOAPIC_BASE    0xfec00000ull
#define IOAPIC_SIZE    0x1000
#define IOAPIC_NR_PINS 24

struct ioapic_msi {
	uint64_t address;
	uint32_t data;
};

struct ioapic_backend {
	/* Deliver one interrupt message to the LAPICs. */
	int (*send_msi)(void *opaque, const struct ioapic_msi *msi);
	/* New routes: pin i is routed when routed[i] (programmed, masked or not), as msi[i]. */
	int (*set_routes)(void *opaque, const bool routed[IOAPIC_NR_PINS],
			  const struct ioapic_msi msi[IOAPIC_NR_PINS]);
	void *opaque;
};

struct ioapic {
	pthread_mutex_t lock;
	struct ioapic_backend backend;
	uint32_t id;
	uint32_t ioregsel;
	uint64_t redir[IOAPIC_NR_PINS];
	/* Current input level of each pin, and edges latched while masked. */
	uint32_t line_level;
	uint32_t irr;
	uint64_t delivered;
	uint64_t route_errors;
};

extern const struct bus_device_ops ioapic_ops;
extern const struct state_desc ioapic_state_desc;

void ioapic_init(struct ioapic *ioapic, struct ioapic_backend backend);
void ioapic_destroy(struct ioapic *ioapic);

/* Drive a pin (the irq_line callback). Out-of-range pins are ignored. */
void ioapic_set_level(void *ioapic, uint32_t pin, bool level);

/* An EOI for `vector` reached the IOAPIC (KVM_EXIT_IOAPIC_EOI or EOI register). */
void ioapic_eoi(struct ioapic *ioapic, uint8_t vector);

/* Send the current pin routes to the backend again (after a restore). */
void ioapic_republish(struct ioapic *ioapic);

/* The message a redirection entry describes (exposed for tests). */
struct ioapic_msi ioapic_entry_to_msi(uint64_t entry);
