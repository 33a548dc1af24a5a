/* SPDX-License-Identifier: MIT */
/*
 * A tiny AML encoder for the DSDT: just the terms fvm needs to describe
 * its devices (scopes, devices, names with integers, strings, EISA IDs
 * and resource templates). Encodings are from the ACPI specification,
 * chapter 20 (AML grammar) and 6.4 (resource descriptors).
 *
 * Every function appends to a struct aml buffer; errors are sticky (the
 * first overflow sets `error` and later appends are ignored), so a
 * builder checks once at the end.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t size, len;
	int error;
};

void aml_init(struct aml *a, uint8_t *buf, size_t size);
void aml_bytes(struct aml *a, const void *data, size_t len);

/* Name(NAME, value); names are exactly four characters ("_HID", "COM1"). */
void aml_name_integer(struct aml *a, const char *name, uint64_t value);
void aml_name_string(struct aml *a, const char *name, const char *value);
void aml_name_eisaid(struct aml *a, const char *name, const char *eisaid);

/*
 * Open a block (Scope, Device, a resource template Buffer) whose length
 * prefix is only known once its contents are written; close it with
 * aml_end(), passing what the open returned.
 */
size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
/* Name(_CRS, ResourceTemplate() { ... }) */
size_t aml_crs_begin(struct aml *a);
void aml_end(struct aml *a, size_t mark);
void aml_crs_end(struct aml *a, size_t mark);

/* Resource descriptors, for use inside aml_crs_begin/aml_crs_end. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
void aml_res_memory32(struct aml *a, uint32_t base, uint32_t len);
/* Extended interrupt: consumer, edge-triggered, active-high, exclusive. */
void aml_res_interrupt_edge(struct aml *a, uint32_t gsi);

/* Name(NAME, Package(){ v0, v1, ... }) of integers. */
void aml_name_package(struct aml *a, const char *name, const uint64_t *values, uint32_t n);

/*
 * Method(_EVT, 1) { Notify(target, value) }: what a Generic Event Device
 * runs on its interrupt. target is an absolute two-segment path such as
 * "\\_SB_VGEN".
 */
void aml_method_evt_notify(struct aml *a, const char *target, uint8_t value);

/* The compressed 32-bit form of an EISA ID such as "PNP0501"; -1 if malformed. */
int64_t aml_eisaid(const char *id);
