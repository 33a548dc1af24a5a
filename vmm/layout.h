/* SPDX-License-Identifier: MIT */
/*
 * The guest-physical address map. Low RAM runs from 0 up to the 32-bit
 * MMIO hole at 3 GiB; RAM beyond that continues at 4 GiB. The fixed boot
 * structures sit in the first megabyte, where every boot protocol looks.
 */
#pragma once

#define LAYOUT_GDT		0x500ull
#define LAYOUT_PVH_START_INFO	0x6000ull
#define LAYOUT_PVH_MEMMAP	0x6100ull
#define LAYOUT_ZERO_PAGE	0x7000ull
#define LAYOUT_BOOT_STACK	0x8ff0ull
#define LAYOUT_PML4		0x9000ull
#define LAYOUT_PDPT		0xa000ull
/* Four page directories identity-map the first 4 GiB with 2 MiB pages. */
#define LAYOUT_PD		0xb000ull
#define LAYOUT_CMDLINE		0x20000ull
#define LAYOUT_CMDLINE_MAX	0x10000ull
/* Conventional memory ends at the EBDA. */
#define LAYOUT_EBDA		0x9fc00ull
/* The BIOS area where the guest scans for the ACPI RSDP. */
#define LAYOUT_ACPI		0xe0000ull
#define LAYOUT_ACPI_SIZE	0x20000ull
/* The VM generation ID: 16 bytes in the last page of the reserved ACPI area. */
#define LAYOUT_VMGENID		0xff000ull
#define LAYOUT_HIGH_MEMORY	0x100000ull
#define LAYOUT_KERNEL_DEFAULT	0x1000000ull

#define LAYOUT_MMIO_HOLE	0xc0000000ull
#define LAYOUT_MMIO_HOLE_END	0x100000000ull
/* Where virtio-mmio devices go, inside the hole. */
#define LAYOUT_VIRTIO_MMIO	0xd0000000ull
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ull
#define LAYOUT_LAPIC		0xfee00000ull
