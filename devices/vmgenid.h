/* SPDX-License-Identifier: MIT */
/*
 * The VM generation ID: 16 random bytes in guest memory that change
 * whenever the VM becomes a new instance of itself (a fork clone, a
 * restored snapshot). The DSDT describes it (Linux's vmgenid driver,
 * matched by "VMGENCTR"/"VM_GEN_COUNTER") beside a Generic Event Device
 * whose interrupt makes the guest re-read it; on a change the guest
 * kernel reseeds its random number generator, so clones never share
 * random streams.
 */
#pragma once

#include <stdint.h>

#include "acpi.h"
#include "irq.h"
#include "memory.h"
#include "util.h"

#define VMGENID_SIZE 16
/* The GED's interrupt: the last IOAPIC pin, away from ISA and virtio pins. */
#define VMGENID_GED_GSI 23

struct vmgenid {
	uint64_t gpa;
	struct irq_line ged_irq;
};

/* The ID lives at gpa; ged_irq drives the GED's pin (VMGENID_GED_GSI). */
void vmgenid_init(struct vmgenid *g, uint64_t gpa, struct irq_line ged_irq);

/* The two DSDT devices: the ID itself and the event device that announces changes. */
void vmgenid_describe(const struct vmgenid *g, struct acpi_device ret_devs[2]);

/* Write a fresh random ID, without telling the guest (at boot, before it reads one). */
int vmgenid_new_id(const struct vmgenid *g, const struct guest_mem *mem) __must_check;

/* Write a fresh random ID and signal the guest (a new instance of the VM). */
int vmgenid_regenerate(struct vmgenid *g, const struct guest_mem *mem) __must_check;
