// SPDX-License-Identifier: MIT
/*
 * Table layouts and field offsets are from the ACPI 6.x specification.
 * Tables are packed structs written into a buffer; checksums are fixed up
 * last, once every byte of a table is final.
 */
#include <string.h>

#include "acpi-pm.h"
#include "acpi.h"
#include "aml.h"
#include "layout.h"

#define OEM_ID	     "FVM   "
#define OEM_TABLE_ID "FVMVM   "
#define CREATOR_ID   "FVM "

struct __attribute__((packed)) acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
};

struct __attribute__((packed)) acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
};

struct __attribute__((packed)) acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
};

struct __attribute__((packed)) acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_revision;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
};

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes");
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header is 36 bytes");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");

#define FADT_FLAG_RESET_REG_SUP	    (1u << 10)
#define FADT_FLAG_HW_REDUCED_ACPI   (1u << 20)
#define IAPC_BOOT_VGA_NOT_PRESENT   (1u << 2)
#define IAPC_BOOT_MSI_NOT_SUPPORTED (1u << 3)
/* Tells Linux not to probe a CMOS RTC that is not there. */
#define IAPC_BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)
#define GAS_SYSTEM_IO		       1
#define GAS_ACCESS_BYTE		       1

struct __attribute__((packed)) madt_header {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
};

struct __attribute__((packed)) madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
};

struct __attribute__((packed)) madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address;
	uint32_t gsi_base;
};

struct __attribute__((packed)) madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
};

enum {
	MADT_TYPE_LAPIC = 0,
	MADT_TYPE_IOAPIC = 1,
	MADT_TYPE_LAPIC_NMI = 4,
};

#define MADT_LAPIC_ENABLED 1

uint8_t acpi_checksum(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return sum;
}

static void fill_header(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, CREATOR_ID, 4);
	h->creator_revision = 1;
}

static void seal(void *table, uint32_t len)
{
	struct acpi_header *h = table;

	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(table, len);
}

/* A bump allocator over the table buffer; keeps every table 16-aligned. */
struct table_area {
	uint8_t *buf;
	size_t size, used;
	uint64_t base;
};

static void *area_alloc(struct table_area *a, size_t len, uint64_t *ret_gpa)
{
	size_t off = ALIGN_UP(a->used, (size_t)16);

	if (off > a->size || len > a->size - off)
		return NULL;
	a->used = off + len;
	*ret_gpa = a->base + off;
	return memset(a->buf + off, 0, len);
}

/* An EISA ID is three capitals and four hex digits; anything else is a string _HID. */
static void emit_hid(struct aml *a, const char *hid)
{
	if (aml_eisaid(hid) >= 0)
		aml_name_eisaid(a, "_HID", hid);
	else
		aml_name_string(a, "_HID", hid);
}

static void emit_device(struct aml *a, const struct acpi_device *d)
{
	size_t dev = aml_device_begin(a, d->name);
	size_t crs;

	emit_hid(a, d->hid);
	if (d->cid)
		aml_name_string(a, "_CID", d->cid);
	aml_name_integer(a, "_UID", d->uid);
	if (d->has_addr) {
		uint64_t halves[2] = { d->addr & 0xffffffffu, d->addr >> 32 };

		aml_name_package(a, "ADDR", halves, 2);
	}
	if (d->evt_notify)
		aml_method_evt_notify(a, d->evt_notify, 0x80);
	if (!d->io_base && !d->mmio_base && !d->has_irq) {
		aml_end(a, dev);
		return;
	}
	crs = aml_crs_begin(a);
	if (d->io_base)
		aml_res_io(a, d->io_base, d->io_len);
	if (d->mmio_base)
		aml_res_memory32(a, d->mmio_base, d->mmio_len);
	if (d->has_irq)
		aml_res_interrupt_edge(a, d->gsi);
	aml_crs_end(a, crs);
	aml_end(a, dev);
}

/*
 * DSDT: \_S5 (Package(){5, 0}, the SLP_TYP the guest writes into the
 * sleep control register to power off) and the devices under \_SB.
 */
static int build_dsdt(struct table_area *t, const struct acpi_config *cfg, uint64_t *ret_gpa)
{
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02,
				      0x0a, ACPI_PM_S5_SLEEP_TYPE, 0x00 };
	uint8_t body[8192];
	struct aml a;
	size_t sb;
	uint32_t len;
	uint8_t *table;

	if (cfg->nr_devices > ACPI_MAX_DEVICES)
		return -EINVAL;
	aml_init(&a, body, sizeof(body));
	aml_bytes(&a, s5, sizeof(s5));
	sb = aml_scope_begin(&a, "\\_SB_");
	for (uint32_t i = 0; i < cfg->nr_devices; i++)
		emit_device(&a, &cfg->devices[i]);
	aml_end(&a, sb);
	if (a.error)
		return a.error;

	len = (uint32_t)(sizeof(struct acpi_header) + a.len);
	table = area_alloc(t, len, ret_gpa);
	if (!table)
		return -ENOSPC;
	fill_header((struct acpi_header *)table, "DSDT", len, 2);
	memcpy(table + sizeof(struct acpi_header), body, a.len);
	seal(table, len);
	return 0;
}

static struct acpi_gas io_register(uint16_t port)
{
	return (struct acpi_gas){ .space_id = GAS_SYSTEM_IO,
				  .bit_width = 8,
				  .access_size = GAS_ACCESS_BYTE,
				  .address = port };
}

static int build_fadt(struct table_area *a, uint64_t dsdt, uint64_t *ret_gpa)
{
	struct acpi_fadt *f = area_alloc(a, sizeof(*f), ret_gpa);

	if (!f)
		return -ENOSPC;
	fill_header(&f->h, "FACP", sizeof(*f), 6);
	f->minor_revision = 3;
	f->flags = FADT_FLAG_HW_REDUCED_ACPI | FADT_FLAG_RESET_REG_SUP;
	f->iapc_boot_arch =
		IAPC_BOOT_VGA_NOT_PRESENT | IAPC_BOOT_MSI_NOT_SUPPORTED | IAPC_BOOT_CMOS_RTC_NOT_PRESENT;
	f->reset_reg = io_register(ACPI_PM_RESET);
	f->reset_value = ACPI_PM_RESET_VALUE;
	f->sleep_control_reg = io_register(ACPI_PM_SLEEP_CONTROL);
	f->sleep_status_reg = io_register(ACPI_PM_SLEEP_STATUS);
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	memcpy(&f->hypervisor_vendor_id, "FVM\0\0\0\0\0", 8);
	seal(f, sizeof(*f));
	return 0;
}

static int build_madt(struct table_area *a, const struct acpi_config *cfg, uint64_t *ret_gpa)
{
	uint32_t len = sizeof(struct madt_header) + cfg->nr_vcpus * sizeof(struct madt_lapic) +
		       sizeof(struct madt_ioapic) + sizeof(struct madt_lapic_nmi);
	uint8_t *t = area_alloc(a, len, ret_gpa);
	struct madt_header *m = (struct madt_header *)t;
	uint8_t *p;

	if (!t)
		return -ENOSPC;
	fill_header(&m->h, "APIC", len, 5);
	m->lapic_address = (uint32_t)LAYOUT_LAPIC;
	/* flags 0: no PCAT_COMPAT, there is no 8259 pair. */
	m->flags = 0;
	p = t + sizeof(*m);

	for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
		struct madt_lapic l = { .type = MADT_TYPE_LAPIC,
					.length = sizeof(l),
					.processor_uid = (uint8_t)i,
					.apic_id = (uint8_t)i,
					.flags = MADT_LAPIC_ENABLED };

		memcpy(p, &l, sizeof(l));
		p += sizeof(l);
	}

	struct madt_ioapic io = { .type = MADT_TYPE_IOAPIC,
				  .length = sizeof(io),
				  .ioapic_id = (uint8_t)cfg->ioapic_id,
				  .address = (uint32_t)cfg->ioapic_addr,
				  .gsi_base = 0 };
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);

	/* LINT1 of every LAPIC is the NMI input, as on a PC. */
	struct madt_lapic_nmi nmi = { .type = MADT_TYPE_LAPIC_NMI,
				      .length = sizeof(nmi),
				      .processor_uid = 0xff,
				      .flags = 0,
				      .lint = 1 };
	memcpy(p, &nmi, sizeof(nmi));

	seal(t, len);
	return 0;
}

static int build_xsdt(struct table_area *a, const uint64_t *entries, uint32_t n, uint64_t *ret_gpa)
{
	uint32_t len = sizeof(struct acpi_header) + n * sizeof(uint64_t);
	uint8_t *t = area_alloc(a, len, ret_gpa);

	if (!t)
		return -ENOSPC;
	fill_header((struct acpi_header *)t, "XSDT", len, 1);
	memcpy(t + sizeof(struct acpi_header), entries, n * sizeof(uint64_t));
	seal(t, len);
	return 0;
}

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t base,
	       uint64_t *ret_rsdp)
{
	struct table_area a = { .buf = buf, .size = size, .base = base };
	struct acpi_rsdp *rsdp;
	uint64_t rsdp_gpa, dsdt, xsdt, tables[2];
	int r;

	if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > 255)
		return -EINVAL;
	/* The RSDP goes first: the guest finds it by scanning 16-byte boundaries. */
	rsdp = area_alloc(&a, sizeof(*rsdp), &rsdp_gpa);
	if (!rsdp)
		return -ENOSPC;

	r = build_dsdt(&a, cfg, &dsdt);
	if (r >= 0)
		r = build_fadt(&a, dsdt, &tables[0]);
	if (r >= 0)
		r = build_madt(&a, cfg, &tables[1]);
	if (r >= 0)
		r = build_xsdt(&a, tables, ARRAY_SIZE(tables), &xsdt);
	if (r < 0)
		return r;

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = xsdt;
	/* The first checksum covers the ACPI 1.0 part (20 bytes), the second all of it. */
	rsdp->checksum = (uint8_t)-acpi_checksum(rsdp, 20);
	rsdp->extended_checksum = (uint8_t)-acpi_checksum(rsdp, sizeof(*rsdp));
	*ret_rsdp = rsdp_gpa;
	return 0;
}

int acpi_write(const struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *ret_rsdp)
{
	uint8_t *area = guest_mem_ptr(mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);

	if (!area)
		return -EFAULT;
	return acpi_build(cfg, area, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, ret_rsdp);
}
