// SPDX-License-Identifier: MIT
/*
 * vmm/acpi.c: the tables built into a buffer and parsed back by field
 * offset, the way a guest's ACPI code reads them (ACPI 6.x, chapter 5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "acpi-pm.h"
#include "acpi.h"
#include "layout.h"

#define BASE 0xe0000ull
#define SIZE 0x20000u

static uint8_t buf[SIZE];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A table in the buffer by guest address, after checking it lies inside. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(gpa >= BASE && gpa + 36 <= BASE + SIZE);
	t = buf + (gpa - BASE);
	len = get32(t + 4);
	assert_true(len >= 36 && gpa + len <= BASE + SIZE);
	if (memcmp(t, sig, 4) != 0)
		fail_msg("table at 0x%llx is '%.4s', expected '%s'", (unsigned long long)gpa,
			 (const char *)t, sig);
	/* Every table's bytes sum to zero. */
	assert_int_equal(acpi_checksum(t, len), 0);
	return t;
}

static uint64_t build(uint32_t nr_vcpus)
{
	const struct acpi_config cfg = { .nr_vcpus = nr_vcpus, .ioapic_addr = 0xfec00000,
					 .ioapic_id = 0 };
	uint64_t rsdp = 0;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(&cfg, buf, SIZE, BASE, &rsdp), 0);
	return rsdp;
}

static const uint8_t *xsdt_entry(uint64_t rsdp, const char *sig)
{
	const uint8_t *x = table_at(get64(buf + (rsdp - BASE) + 24), "XSDT");
	uint32_t n = (get32(x + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = buf + (get64(x + 36 + 8 * i) - BASE);

		if (memcmp(t, sig, 4) == 0)
			return table_at(get64(x + 36 + 8 * i), sig);
	}
	fail_msg("no %s in the XSDT", sig);
	return NULL;
}

static void test_checksum_helper(void **state)
{
	assert_int_equal(acpi_checksum("", 0), 0);
	assert_int_equal(acpi_checksum("\x01\x02\x03", 3), 6);
	assert_int_equal(acpi_checksum("\xff\x02", 2), 1);
}

static void test_rsdp(void **state)
{
	uint64_t rsdp = build(1);
	const uint8_t *r;

	/* Found by scanning 16-byte boundaries in the BIOS area. */
	assert_int_equal(rsdp % 16, 0);
	assert_true(rsdp >= 0xe0000 && rsdp + 36 <= 0x100000);
	r = buf + (rsdp - BASE);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(r[15], 2);
	/* Checksum over the ACPI 1.0 part, extended checksum over all 36 bytes. */
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(get32(r + 20), 36);
	assert_int_equal(acpi_checksum(r, 36), 0);
	assert_memory_equal(r + 9, "FVM   ", 6);
	/* No RSDT, just the XSDT. */
	assert_int_equal(get32(r + 16), 0);
	assert_int_not_equal(get64(r + 24), 0);
	assert_memory_equal(r + 33, "\0\0\0", 3);
}

static void test_xsdt(void **state)
{
	uint64_t rsdp = build(2);
	const uint8_t *x = table_at(get64(buf + (rsdp - BASE) + 24), "XSDT");

	assert_int_equal(get32(x + 4), 36 + 2 * 8);
	assert_int_equal(x[8], 1);
	table_at(get64(x + 36), "FACP");
	table_at(get64(x + 44), "APIC");
}

static void assert_gas_io_byte(const uint8_t *gas, uint16_t port)
{
	assert_int_equal(gas[0], 1);  /* system I/O space */
	assert_int_equal(gas[1], 8);  /* bit width */
	assert_int_equal(gas[2], 0);  /* bit offset */
	assert_int_equal(gas[3], 1);  /* byte access */
	assert_int_equal(get64(gas + 4), port);
}

static void test_fadt(void **state)
{
	uint64_t rsdp = build(1);
	const uint8_t *f = xsdt_entry(rsdp, "FACP");
	uint32_t flags = get32(f + 112);

	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(f[131], 3); /* minor revision: 6.3 */
	assert_true(flags & (1u << 20));  /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	/* No legacy power-management blocks in hardware-reduced mode. */
	assert_int_equal(get16(f + 46), 0);   /* SCI_INT */
	assert_int_equal(get32(f + 48), 0);   /* SMI_CMD */
	assert_int_equal(get32(f + 56), 0);   /* PM1a_EVT_BLK */
	assert_int_equal(get32(f + 64), 0);   /* PM1a_CNT_BLK */
	assert_int_equal(get32(f + 76), 0);   /* PM_TMR_BLK */
	/* IAPC_BOOT_ARCH: no VGA, no CMOS RTC. */
	assert_true(get16(f + 109) & (1u << 2));
	assert_true(get16(f + 109) & (1u << 5));

	assert_gas_io_byte(f + 116, ACPI_PM_RESET);
	assert_int_equal(f[128], ACPI_PM_RESET_VALUE);
	assert_gas_io_byte(f + 244, ACPI_PM_SLEEP_CONTROL);
	assert_gas_io_byte(f + 256, ACPI_PM_SLEEP_STATUS);
	assert_int_equal(get16(f + 116 + 4), 0x602);
	assert_int_equal(get16(f + 244 + 4), 0x600);
	assert_int_equal(get16(f + 256 + 4), 0x601);
	assert_memory_equal(f + 268, "FVM\0\0\0\0\0", 8);
}

static void test_dsdt(void **state)
{
	uint64_t rsdp = build(1);
	const uint8_t *f = xsdt_entry(rsdp, "FACP");
	uint64_t x_dsdt = get64(f + 140);
	const uint8_t *d = table_at(x_dsdt, "DSDT");
	uint32_t len = get32(d + 4);
	/* Name(_S5_, Package(2) { 5, 0 }) */
	static const uint8_t s5[] = {
		0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00,
	};

	assert_int_equal(get32(f + 40), (uint32_t)x_dsdt);
	assert_true(len > 36);
	assert_non_null(memmem(d + 36, len - 36, "_S5_", 4));
	assert_non_null(memmem(d + 36, len - 36, s5, sizeof(s5)));
	/* The SLP_TYP in \_S5 is what acpi-pm powers off on. */
	assert_int_equal(s5[9], ACPI_PM_S5_SLEEP_TYPE);
}

/* The DSDT's AML body (after the 36-byte header) for a configuration. */
static const uint8_t *dsdt_body(const struct acpi_config *cfg, uint32_t *ret_len)
{
	uint64_t rsdp = 0;
	const uint8_t *d;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(cfg, buf, SIZE, BASE, &rsdp), 0);
	d = table_at(get64(xsdt_entry(rsdp, "FACP") + 140), "DSDT");
	*ret_len = get32(d + 4) - 36;
	return d + 36;
}

/* COM1 as vm.c describes it, encoded byte for byte (ACPI 6.x, 20.2 and 6.4). */
static void test_dsdt_com1(void **state)
{
	static const struct acpi_device com1 = {
		.name = "COM1", .hid = "PNP0501", .uid = 0, .io_base = 0x3f8, .io_len = 8,
		.has_irq = true, .gsi = 4,
	};
	static const uint8_t want[] = {
		/* Name(_S5_, Package(2) { 5, 0 }) */
		0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00,
		/* Scope(\_SB_), PkgLength 58 */
		0x10, 0x3a, '\\', '_', 'S', 'B', '_',
		/* Device(COM1), PkgLength 50 */
		0x5b, 0x82, 0x32, 'C', 'O', 'M', '1',
		/* Name(_HID, EisaId("PNP0501")) */
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,
		/* Name(_UID, Zero) */
		0x08, '_', 'U', 'I', 'D', 0x00,
		/* Name(_CRS, Buffer(19) { ... }) */
		0x08, '_', 'C', 'R', 'S', 0x11, 0x17, 0x0b, 0x13, 0x00,
		/* IO(Decode16, 0x3f8, 0x3f8, 1, 8) */
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
		/* Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 } */
		0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00,
		/* EndTag */
		0x79, 0x00,
	};
	const struct acpi_config cfg = { .nr_vcpus = 1, .ioapic_addr = 0xfec00000,
					 .devices = &com1, .nr_devices = 1 };
	uint32_t len;
	const uint8_t *body = dsdt_body(&cfg, &len);

	assert_int_equal(len, sizeof(want));
	assert_memory_equal(body, want, sizeof(want));
}

static void test_dsdt_string_hid_and_mmio(void **state)
{
	static const struct acpi_device dev = {
		.name = "VR00", .hid = "LNRO0005", .uid = 3, .mmio_base = 0xd0000000,
		.mmio_len = 0x1000, .has_irq = true, .gsi = 5,
	};
	static const uint8_t want[] = {
		/* Scope(\_SB_), two-byte PkgLength 69 */
		0x10, 0x45, 0x04, '\\', '_', 'S', 'B', '_',
		0x5b, 0x82, 0x3c, 'V', 'R', '0', '0',
		/* Name(_HID, "LNRO0005") */
		0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
		/* Name(_UID, 3) */
		0x08, '_', 'U', 'I', 'D', 0x0a, 0x03,
		0x08, '_', 'C', 'R', 'S', 0x11, 0x1b, 0x0b, 0x17, 0x00,
		/* Memory32Fixed(ReadWrite, 0xd0000000, 0x1000) */
		0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
		0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00,
		0x79, 0x00,
	};
	const struct acpi_config cfg = { .nr_vcpus = 1, .ioapic_addr = 0xfec00000,
					 .devices = &dev, .nr_devices = 1 };
	uint32_t len;
	const uint8_t *body = dsdt_body(&cfg, &len);

	/* After the 11 bytes of \_S5. */
	assert_int_equal(len, 11 + sizeof(want));
	assert_memory_equal(body + 11, want, sizeof(want));
}

/* An AML PkgLength (ACPI 6.x, 20.2.4): returns the length, *ret_size its encoded bytes. */
static uint32_t pkg_length(const uint8_t *p, uint32_t *ret_size)
{
	uint32_t extra = p[0] >> 6, len;

	if (extra == 0) {
		*ret_size = 1;
		return p[0] & 0x3f;
	}
	/* Bits 5:4 of a multi-byte lead byte are reserved. */
	assert_int_equal(p[0] & 0x30, 0);
	len = p[0] & 0x0f;
	for (uint32_t i = 0; i < extra; i++)
		len |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*ret_size = 1 + extra;
	return len;
}

/* The most devices: \_SB tiles exactly into Device() blocks, one per device, in order. */
static void test_dsdt_many_devices(void **state)
{
	struct acpi_device devs[ACPI_MAX_DEVICES];
	struct acpi_config cfg = { .nr_vcpus = 1, .ioapic_addr = 0xfec00000, .devices = devs };
	const uint8_t *body, *p, *scope_end;
	uint32_t len, size, n = 0;
	uint64_t rsdp;

	for (uint32_t i = 0; i < ACPI_MAX_DEVICES; i++) {
		devs[i] = (struct acpi_device){
			.hid = "LNRO0005",
			.uid = i,
			.mmio_base = 0xd0000000 + 0x1000 * i,
			.mmio_len = 0x1000,
			.has_irq = true,
			.gsi = 5 + i % 19,
		};
		snprintf(devs[i].name, sizeof(devs[i].name), "VR%02u", i);
	}
	cfg.nr_devices = ACPI_MAX_DEVICES;
	body = dsdt_body(&cfg, &len);

	p = body + 11;
	assert_int_equal(p[0], 0x10);
	scope_end = p + 1 + pkg_length(p + 1, &size);
	assert_ptr_equal(scope_end, body + len);
	p += 1 + size;
	assert_memory_equal(p, "\\_SB_", 5);
	for (p += 5; p < scope_end; n++) {
		char name[5];
		const uint8_t *dev_end;

		assert_int_equal(p[0], 0x5b);
		assert_int_equal(p[1], 0x82);
		dev_end = p + 2 + pkg_length(p + 2, &size);
		assert_true(dev_end <= scope_end);
		snprintf(name, sizeof(name), "VR%02u", n);
		assert_memory_equal(p + 2 + size, name, 4);
		p = dev_end;
	}
	assert_ptr_equal(p, scope_end);
	assert_int_equal(n, ACPI_MAX_DEVICES);

	cfg.nr_devices = ACPI_MAX_DEVICES + 1;
	assert_int_equal(acpi_build(&cfg, buf, SIZE, BASE, &rsdp), -EINVAL);
}

static void check_madt(uint32_t nr_vcpus, uint8_t ioapic_id)
{
	const struct acpi_config cfg = { .nr_vcpus = nr_vcpus, .ioapic_addr = 0xfec00000,
					 .ioapic_id = ioapic_id };
	uint64_t rsdp = 0;
	const uint8_t *m, *p, *end;
	uint32_t nr_lapic = 0, nr_ioapic = 0;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(&cfg, buf, SIZE, BASE, &rsdp), 0);
	m = xsdt_entry(rsdp, "APIC");
	assert_int_equal(get32(m + 36), 0xfee00000);
	/* No PCAT_COMPAT: there is no 8259. */
	assert_int_equal(get32(m + 40), 0);

	end = m + get32(m + 4);
	for (p = m + 44; p < end; p += p[1]) {
		assert_true(p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0: /* processor local APIC */
			assert_int_equal(p[1], 8);
			assert_int_equal(p[2], nr_lapic);
			assert_int_equal(p[3], nr_lapic);
			assert_int_equal(get32(p + 4) & 1, 1);
			nr_lapic++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(p[1], 12);
			assert_int_equal(p[2], ioapic_id);
			assert_int_equal(get32(p + 4), 0xfec00000);
			assert_int_equal(get32(p + 8), 0);
			nr_ioapic++;
			break;
		case 4: /* local APIC NMI */
			assert_int_equal(p[1], 6);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", p[0]);
		}
	}
	/* The entries fill the table exactly. */
	assert_ptr_equal(p, end);
	assert_int_equal(nr_lapic, nr_vcpus);
	assert_int_equal(nr_ioapic, 1);
}

static void test_madt(void **state)
{
	static const uint32_t counts[] = { 1, 2, 3, 4, 8, 32, 255 };

	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		check_madt(counts[i], 0);
	check_madt(4, 7);
}

static void test_all_tables_fit_in_area(void **state)
{
	const struct acpi_config cfg = { .nr_vcpus = 255, .ioapic_addr = 0xfec00000 };
	uint64_t rsdp;

	/* The largest configuration fits the reserved BIOS area with room to spare. */
	assert_int_equal(acpi_build(&cfg, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, &rsdp), 0);
	assert_int_equal(rsdp, LAYOUT_ACPI);
}

/* The end of the highest table: the bytes the build needs. */
static size_t bytes_used(uint64_t rsdp)
{
	const uint8_t *r = buf + (rsdp - BASE);
	const uint8_t *x = table_at(get64(r + 24), "XSDT");
	uint64_t end = rsdp + 36;
	uint64_t addrs[4];

	addrs[0] = get64(r + 24);
	addrs[1] = get64(x + 36);
	addrs[2] = get64(x + 44);
	addrs[3] = get64(buf + (addrs[1] - BASE) + 140);
	for (int i = 0; i < 4; i++)
		end = MAX(end, addrs[i] + get32(buf + (addrs[i] - BASE) + 4));
	return end - BASE;
}

static void test_enospc(void **state)
{
	static const uint32_t counts[] = { 1, 4, 32 };

	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		const struct acpi_config cfg = { .nr_vcpus = counts[i], .ioapic_addr = 0xfec00000 };
		size_t need = bytes_used(build(counts[i]));
		uint64_t rsdp = 0xdead;

		/* Exactly enough is enough... */
		assert_int_equal(acpi_build(&cfg, buf, need, BASE, &rsdp), 0);
		assert_int_equal(rsdp, BASE);
		/* ...and every smaller buffer fails cleanly without writing past its end. */
		for (size_t size = 0; size < need; size++) {
			rsdp = 0xdead;
			memset(buf, 0x5a, sizeof(buf));
			if (acpi_build(&cfg, buf, size, BASE, &rsdp) != -ENOSPC)
				print_message("%u vCPUs, %zu bytes\n", counts[i], size);
			assert_int_equal(acpi_build(&cfg, buf, size, BASE, &rsdp), -ENOSPC);
			assert_int_equal(rsdp, 0xdead);
			assert_int_equal(buf[size], 0x5a);
		}
	}
}

static void test_einval(void **state)
{
	struct acpi_config cfg = { .nr_vcpus = 0, .ioapic_addr = 0xfec00000 };
	uint64_t rsdp = 0xdead;

	assert_int_equal(acpi_build(&cfg, buf, SIZE, BASE, &rsdp), -EINVAL);
	cfg.nr_vcpus = 256;
	assert_int_equal(acpi_build(&cfg, buf, SIZE, BASE, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0xdead);
}

static void test_acpi_write(void **state)
{
	const struct acpi_config cfg = { .nr_vcpus = 2, .ioapic_addr = 0xfec00000 };
	struct guest_mem mem;
	uint64_t rsdp = 0;

	assert_int_equal(guest_mem_layout(MiB(16), &mem), 0);
	/* No host memory behind the layout: nothing to write into. */
	assert_int_equal(acpi_write(&mem, &cfg, &rsdp), -EFAULT);

	mem.host = calloc(1, MiB(16));
	assert_non_null(mem.host);
	assert_int_equal(acpi_write(&mem, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, LAYOUT_ACPI);
	assert_memory_equal(mem.host + rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(mem.host + rsdp, 36), 0);
	/* Same bytes as a build into a buffer at the same base. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(acpi_build(&cfg, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, &rsdp), 0);
	assert_memory_equal(mem.host + LAYOUT_ACPI, buf, 0x400);
	free(mem.host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_helper),
		cmocka_unit_test(test_rsdp),
		cmocka_unit_test(test_xsdt),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_dsdt),
		cmocka_unit_test(test_dsdt_com1),
		cmocka_unit_test(test_dsdt_string_hid_and_mmio),
		cmocka_unit_test(test_dsdt_many_devices),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_all_tables_fit_in_area),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_einval),
		cmocka_unit_test(test_acpi_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
