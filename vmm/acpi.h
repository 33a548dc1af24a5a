/* SPDX-License-Identifier: MIT */
/*
 * Hardware-reduced ACPI tables: RSDP, XSDT, FADT, MADT and a DSDT with
 * the \_S5 sleep state. Hardware-reduced ACPI tells Linux there is no
 * legacy PIC and no PIT to set up, which is what lets fvm run with a split
 * irqchip and no in-kernel PIT; the MADT describes every vCPU's LAPIC and
 * the user-space IOAPIC; the FADT points power-off and reset at the
 * acpi-pm device.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory.h"

/*
 * A device the DSDT describes under \_SB. Without a legacy PIC, Linux
 * maps an interrupt to an IOAPIC pin only for devices described this way,
 * so every device with an interrupt is listed here.
 */
struct acpi_device {
	char name[5];	  /* four characters: "COM1", "VR00" */
	const char *hid;  /* "PNP0501" (an EISA ID) or "LNRO0005" (a string) */
	uint32_t uid;
	uint16_t io_base; /* 0: no I/O ports */
	uint8_t io_len;
	uint32_t mmio_base; /* 0: no MMIO range */
	uint32_t mmio_len;
	bool has_irq;
	uint32_t gsi;
	const char *cid;	/* optional _CID string */
	bool has_addr;		/* Name(ADDR, Package(){ low32, high32 }) */
	uint64_t addr;
	const char *evt_notify; /* a GED: Method(_EVT) notifies this "\\_SB_XXXX" */
};

enum { ACPI_MAX_DEVICES = 32 };

struct acpi_config {
	uint32_t nr_vcpus;
	uint64_t ioapic_addr;
	uint32_t ioapic_id;
	const struct acpi_device *devices;
	uint32_t nr_devices;
};

/*
 * Build the tables into buf as they will sit at guest address base.
 * Returns the guest address of the RSDP.
 */
int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t base,
	       uint64_t *ret_rsdp) __must_check;

/* Build the tables into guest memory at the fixed ACPI area. */
int acpi_write(const struct guest_mem *mem, const struct acpi_config *cfg,
	       uint64_t *ret_rsdp) __must_check;

/* Byte sum of a buffer (0 for a table with a correct checksum). */
uint8_t acpi_checksum(const void *buf, size_t len);
