// SPDX-License-Identifier: MIT
/*
 * vmm/ioapic.c: the register file through IOREGSEL/IOWIN, pin delivery
 * (edge, level with Remote IRR, masking) and route publication, against
 * a backend that records every MSI and every route table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ioapic.h"

/* Redirection entry bits (82093AA datasheet, 3.2.4). */
#define RTE_DELIVERY_FIXED	  (0ull << 8)
#define RTE_DELIVERY_LOWEST	  (1ull << 8)
#define RTE_DELIVERY_SMI	  (2ull << 8)
#define RTE_DELIVERY_NMI	  (4ull << 8)
#define RTE_DELIVERY_INIT	  (5ull << 8)
#define RTE_DELIVERY_EXTINT	  (7ull << 8)
#define RTE_LOGICAL		  (1ull << 11)
#define RTE_DELIVERY_STATUS	  (1ull << 12)
#define RTE_ACTIVE_LOW		  (1ull << 13)
#define RTE_REMOTE_IRR		  (1ull << 14)
#define RTE_LEVEL		  (1ull << 15)
#define RTE_MASKED		  (1ull << 16)
#define RTE_DEST(d)		  ((uint64_t)(d) << 56)

enum {
	IOREGSEL = 0x00,
	IOWIN = 0x10,
	IOEOI = 0x40,
};

struct recorder {
	uint32_t nr_msi;
	struct ioapic_msi msi[64];
	uint32_t nr_routes;
	bool routed[IOAPIC_NR_PINS];
	struct ioapic_msi routes[IOAPIC_NR_PINS];
	int routes_ret;
};

static int record_msi(void *opaque, const struct ioapic_msi *msi)
{
	struct recorder *rec = opaque;

	assert_true(rec->nr_msi < ARRAY_SIZE(rec->msi));
	rec->msi[rec->nr_msi++] = *msi;
	return 0;
}

static int record_routes(void *opaque, const bool routed[IOAPIC_NR_PINS],
			 const struct ioapic_msi msi[IOAPIC_NR_PINS])
{
	struct recorder *rec = opaque;

	rec->nr_routes++;
	memcpy(rec->routed, routed, sizeof(rec->routed));
	memcpy(rec->routes, msi, sizeof(rec->routes));
	return rec->routes_ret;
}

struct fixture {
	struct ioapic io;
	struct recorder rec;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	ioapic_init(&f->io, (struct ioapic_backend){ .send_msi = record_msi,
						     .set_routes = record_routes,
						     .opaque = &f->rec });
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ioapic_destroy(&f->io);
	free(f);
	return 0;
}

static void mmio_write(struct fixture *f, uint64_t offset, uint32_t v)
{
	ioapic_ops.write(&f->io, offset, &v, 4);
}

static uint32_t mmio_read(struct fixture *f, uint64_t offset)
{
	uint32_t v = 0xa5a5a5a5;

	ioapic_ops.read(&f->io, offset, &v, 4);
	return v;
}

static uint32_t reg_read(struct fixture *f, uint32_t index)
{
	mmio_write(f, IOREGSEL, index);
	return mmio_read(f, IOWIN);
}

static void reg_write(struct fixture *f, uint32_t index, uint32_t v)
{
	mmio_write(f, IOREGSEL, index);
	mmio_write(f, IOWIN, v);
}

static uint64_t rte_read(struct fixture *f, uint32_t pin)
{
	return reg_read(f, 0x10 + 2 * pin) | (uint64_t)reg_read(f, 0x11 + 2 * pin) << 32;
}

/* High half first, as Linux does, so the entry is complete when the low half unmasks it. */
static void rte_write(struct fixture *f, uint32_t pin, uint64_t rte)
{
	reg_write(f, 0x11 + 2 * pin, (uint32_t)(rte >> 32));
	reg_write(f, 0x10 + 2 * pin, (uint32_t)rte);
}

static void assert_msi(const struct ioapic_msi *msi, uint64_t address, uint32_t data)
{
	assert_int_equal(msi->address, address);
	assert_int_equal(msi->data, data);
}

static void test_ops(void **state)
{
	assert_string_equal(ioapic_ops.name, "ioapic");
	assert_int_equal(ioapic_ops.access_sizes, BUS_ACCESS_4);
	assert_int_equal(IOAPIC_BASE, 0xfec00000ull);
	assert_int_equal(IOAPIC_NR_PINS, 24);
}

static void test_id_version_registers(void **state)
{
	struct fixture *f = *state;

	/* Version 0x20, 24 entries (maximum redirection entry 23). */
	assert_int_equal(reg_read(f, 0x01), 0x00170020);
	assert_int_equal(reg_read(f, 0x00), 0);

	reg_write(f, 0x00, 0x05000000);
	assert_int_equal(reg_read(f, 0x00), 0x05000000);
	assert_int_equal(f->io.id, 5);
	/* Only the four ID bits are kept. */
	reg_write(f, 0x00, 0xffffffff);
	assert_int_equal(reg_read(f, 0x00), 0x0f000000);
	/* Arbitration ID follows the ID. */
	assert_int_equal(reg_read(f, 0x02), 0x0f000000);
	/* Version is read-only. */
	reg_write(f, 0x01, 0);
	assert_int_equal(reg_read(f, 0x01), 0x00170020);
	/* Unused indices read as zero. */
	assert_int_equal(reg_read(f, 0x03), 0);
	assert_int_equal(reg_read(f, 0x0f), 0);

	/* IOREGSEL reads back, eight bits wide. */
	mmio_write(f, IOREGSEL, 0x1ff);
	assert_int_equal(mmio_read(f, IOREGSEL), 0xff);
	mmio_write(f, IOREGSEL, 0x12);
	assert_int_equal(mmio_read(f, IOREGSEL), 0x12);
	/* Other offsets read as zero. */
	assert_int_equal(mmio_read(f, 0x20), 0);
	assert_int_equal(mmio_read(f, IOEOI), 0);
	assert_int_equal(f->rec.nr_routes, 0);
}

static void test_masked_at_reset(void **state)
{
	struct fixture *f = *state;

	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		assert_int_equal(rte_read(f, pin), RTE_MASKED);
		ioapic_set_level(&f->io, pin, true);
	}
	assert_int_equal(f->rec.nr_msi, 0);
	assert_int_equal(f->rec.nr_routes, 0);
	assert_int_equal(f->io.delivered, 0);
}

static void test_rte_read_write(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 3, RTE_DEST(0x12) | RTE_LOGICAL | RTE_DELIVERY_LOWEST | 0x31);
	assert_int_equal(rte_read(f, 3), RTE_DEST(0x12) | RTE_LOGICAL | RTE_DELIVERY_LOWEST | 0x31);
	assert_int_equal(reg_read(f, 0x16), 0x00000931);
	assert_int_equal(reg_read(f, 0x17), 0x12000000);
	/* Neighbours untouched. */
	assert_int_equal(rte_read(f, 2), RTE_MASKED);
	assert_int_equal(rte_read(f, 4), RTE_MASKED);

	/* Delivery status and Remote IRR cannot be written. */
	rte_write(f, 5, 0xffffffffffffffffull);
	assert_int_equal(reg_read(f, 0x1a), 0xffffafff);
	assert_int_equal(reg_read(f, 0x1b), 0xffffffff);

	/* Last pin. */
	rte_write(f, 23, RTE_DEST(1) | 0x40);
	assert_int_equal(rte_read(f, 23), RTE_DEST(1) | 0x40);
}

static void test_remote_irr_read_only(void **state)
{
	struct fixture *f = *state;
	uint64_t level = RTE_LEVEL | 0x50;

	rte_write(f, 9, level);
	ioapic_set_level(&f->io, 9, true);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_int_equal(rte_read(f, 9), level | RTE_REMOTE_IRR);

	/* The guest rewriting the entry without Remote IRR does not clear it... */
	reg_write(f, 0x10 + 2 * 9, (uint32_t)level);
	assert_int_equal(rte_read(f, 9), level | RTE_REMOTE_IRR);
	/* ...and no second message went out. */
	assert_int_equal(f->rec.nr_msi, 1);

	/* An edge entry cannot get Remote IRR by writing it. */
	rte_write(f, 10, RTE_REMOTE_IRR | RTE_DELIVERY_STATUS | 0x51);
	assert_int_equal(rte_read(f, 10), 0x51);
}

static void test_edge_rising_only(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 4, RTE_DEST(3) | 0x30);
	assert_int_equal(f->rec.nr_msi, 0);

	ioapic_set_level(&f->io, 4, true);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_msi(&f->rec.msi[0], 0xfee03000, 0x30);
	/* Staying high is not another edge, and falling delivers nothing. */
	ioapic_set_level(&f->io, 4, true);
	ioapic_set_level(&f->io, 4, false);
	ioapic_set_level(&f->io, 4, false);
	assert_int_equal(f->rec.nr_msi, 1);
	ioapic_set_level(&f->io, 4, true);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_msi(&f->rec.msi[1], 0xfee03000, 0x30);
	/* An edge pin never gets Remote IRR, EOI or not. */
	assert_int_equal(rte_read(f, 4), RTE_DEST(3) | 0x30);
	ioapic_eoi(&f->io, 0x30);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_int_equal(f->io.delivered, 2);
}

/* Redirection entry → MSI address/data (Intel SDM vol. 3, 11.11). */
static const struct {
	const char *what;
	uint64_t rte;
	uint64_t address;
	uint32_t data;
} msi_cases[] = {
	{ "physical, fixed", RTE_DEST(0x01) | 0x40, 0xfee01000, 0x0040 },
	{ "physical, dest 0", 0x20, 0xfee00000, 0x0020 },
	{ "physical, broadcast", RTE_DEST(0xff) | 0xef, 0xfeeff000, 0x00ef },
	{ "logical, lowest priority", RTE_DEST(0x0f) | RTE_LOGICAL | RTE_DELIVERY_LOWEST | 0x41,
	  0xfee0f004, 0x0141 },
	{ "logical, fixed", RTE_DEST(0x80) | RTE_LOGICAL | 0x42, 0xfee80004, 0x0042 },
	{ "SMI", RTE_DEST(2) | RTE_DELIVERY_SMI, 0xfee02000, 0x0200 },
	{ "NMI", RTE_DEST(2) | RTE_DELIVERY_NMI, 0xfee02000, 0x0400 },
	{ "INIT", RTE_DEST(2) | RTE_DELIVERY_INIT, 0xfee02000, 0x0500 },
	{ "ExtINT", RTE_DEST(2) | RTE_DELIVERY_EXTINT | 0x22, 0xfee02000, 0x0722 },
	{ "level", RTE_DEST(1) | RTE_LEVEL | 0x61, 0xfee01000, 0xc061 },
	{ "level, logical, lowest",
	  RTE_DEST(3) | RTE_LOGICAL | RTE_LEVEL | RTE_DELIVERY_LOWEST | 0x62,
	  0xfee03004, 0xc162 },
	/* Bits outside the message (mask, polarity, reserved) do not leak into it. */
	{ "masked and active-low", RTE_DEST(4) | RTE_MASKED | RTE_ACTIVE_LOW | 0x63, 0xfee04000,
	  0x0063 },
	{ "reserved bits", RTE_DEST(5) | 0x00ffffffffff0000ull | 0x64, 0xfee05000, 0x0064 },
};

static void test_msi_encoding(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(msi_cases); i++) {
		struct ioapic_msi msi = ioapic_entry_to_msi(msi_cases[i].rte);

		if (msi.address != msi_cases[i].address || msi.data != msi_cases[i].data)
			print_message("case: %s: got 0x%llx/0x%x\n", msi_cases[i].what,
				      (unsigned long long)msi.address, msi.data);
		assert_msi(&msi, msi_cases[i].address, msi_cases[i].data);
	}
}

/* The same encodings, through an actual delivery on an edge pin. */
static void test_msi_delivered(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(msi_cases); i++) {
		uint64_t rte = msi_cases[i].rte & ~(RTE_LEVEL | RTE_MASKED);

		rte_write(f, 7, rte);
		ioapic_set_level(&f->io, 7, true);
		ioapic_set_level(&f->io, 7, false);
		assert_int_equal(f->rec.nr_msi, ++n);
		assert_int_equal(f->rec.msi[n - 1].address, msi_cases[i].address);
		assert_int_equal(f->rec.msi[n - 1].data, msi_cases[i].data & ~0xc000u);
	}
}

static void test_edge_latched_while_masked(void **state)
{
	struct fixture *f = *state;
	uint64_t rte = RTE_DEST(0) | 0x33;

	rte_write(f, 1, rte | RTE_MASKED);
	ioapic_set_level(&f->io, 1, true);
	ioapic_set_level(&f->io, 1, false);
	assert_int_equal(f->rec.nr_msi, 0);

	/* Unmasking delivers the latched edge once. */
	rte_write(f, 1, rte);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_msi(&f->rec.msi[0], 0xfee00000, 0x33);
	rte_write(f, 1, rte | RTE_MASKED);
	rte_write(f, 1, rte);
	assert_int_equal(f->rec.nr_msi, 1);

	/* Several edges while masked are one interrupt. */
	rte_write(f, 1, rte | RTE_MASKED);
	for (int i = 0; i < 3; i++) {
		ioapic_set_level(&f->io, 1, true);
		ioapic_set_level(&f->io, 1, false);
	}
	rte_write(f, 1, rte);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_msi(&f->rec.msi[1], 0xfee00000, 0x33);
}

static void test_level_remote_irr(void **state)
{
	struct fixture *f = *state;
	uint64_t rte = RTE_DEST(1) | RTE_LEVEL | 0x50;

	rte_write(f, 11, rte);
	ioapic_set_level(&f->io, 11, true);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_msi(&f->rec.msi[0], 0xfee01000, 0xc050);
	assert_int_equal(rte_read(f, 11) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);

	/* Until the EOI, nothing more, however the line moves. */
	ioapic_set_level(&f->io, 11, true);
	ioapic_set_level(&f->io, 11, false);
	ioapic_set_level(&f->io, 11, true);
	assert_int_equal(f->rec.nr_msi, 1);

	/* An EOI for another vector does not count. */
	ioapic_eoi(&f->io, 0x51);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_int_equal(rte_read(f, 11) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);

	/* EOI with the line still high: delivered again. */
	ioapic_eoi(&f->io, 0x50);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_msi(&f->rec.msi[1], 0xfee01000, 0xc050);
	assert_int_equal(rte_read(f, 11) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);

	/* Line drops, then EOI: Remote IRR clears, nothing is delivered. */
	ioapic_set_level(&f->io, 11, false);
	assert_int_equal(f->rec.nr_msi, 2);
	ioapic_eoi(&f->io, 0x50);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_int_equal(rte_read(f, 11), rte);

	/* The next assertion is delivered at once. */
	ioapic_set_level(&f->io, 11, true);
	assert_int_equal(f->rec.nr_msi, 3);
	assert_int_equal(f->io.delivered, 3);
}

static void test_eoi_register(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 12, RTE_DEST(0) | RTE_LEVEL | 0x60);
	ioapic_set_level(&f->io, 12, true);
	assert_int_equal(f->rec.nr_msi, 1);

	/* Only the low byte is the vector. */
	mmio_write(f, IOEOI, 0x161);
	assert_int_equal(f->rec.nr_msi, 1);
	mmio_write(f, IOEOI, 0x160);
	assert_int_equal(f->rec.nr_msi, 2);

	ioapic_set_level(&f->io, 12, false);
	mmio_write(f, IOEOI, 0x60);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_int_equal(rte_read(f, 12) & RTE_REMOTE_IRR, 0);
	/* The EOI register does not disturb IOREGSEL. */
	mmio_write(f, IOREGSEL, 0x01);
	mmio_write(f, IOEOI, 0x60);
	assert_int_equal(mmio_read(f, IOWIN), 0x00170020);
}

static void test_level_masked_then_unmasked(void **state)
{
	struct fixture *f = *state;
	uint64_t rte = RTE_DEST(0) | RTE_LEVEL | 0x70;

	rte_write(f, 13, rte | RTE_MASKED);
	ioapic_set_level(&f->io, 13, true);
	assert_int_equal(f->rec.nr_msi, 0);
	rte_write(f, 13, rte);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_msi(&f->rec.msi[0], 0xfee00000, 0xc070);

	/* A level pin that went low while masked is not pending any more. */
	rte_write(f, 14, rte | RTE_MASKED | 1);
	ioapic_set_level(&f->io, 14, true);
	ioapic_set_level(&f->io, 14, false);
	rte_write(f, 14, rte | 1);
	assert_int_equal(f->rec.nr_msi, 1);
}

/*
 * Older kernels (IOAPIC version < 0x20) EOI a level pin by flipping it to
 * edge and back: that clears Remote IRR, and a line still high is
 * pending again as soon as the pin is level-triggered once more.
 */
static void test_level_edge_switch(void **state)
{
	struct fixture *f = *state;
	uint64_t level = RTE_DEST(0) | RTE_LEVEL | 0x58, edge = RTE_DEST(0) | 0x58;

	rte_write(f, 15, level);
	ioapic_set_level(&f->io, 15, true);
	assert_int_equal(f->rec.nr_msi, 1);
	assert_int_equal(rte_read(f, 15) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);

	reg_write(f, 0x10 + 2 * 15, (uint32_t)(edge | RTE_MASKED));
	assert_int_equal(rte_read(f, 15), edge | RTE_MASKED);
	reg_write(f, 0x10 + 2 * 15, (uint32_t)level);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_msi(&f->rec.msi[1], 0xfee00000, 0xc058);
	assert_int_equal(rte_read(f, 15), level | RTE_REMOTE_IRR);

	/* An edge pin whose line is high becomes pending when switched to level. */
	rte_write(f, 16, edge | 1);
	ioapic_set_level(&f->io, 16, true);
	assert_int_equal(f->rec.nr_msi, 3);
	assert_msi(&f->rec.msi[2], 0xfee00000, 0x0059);
	rte_write(f, 16, level | 1);
	assert_int_equal(f->rec.nr_msi, 4);
	assert_msi(&f->rec.msi[3], 0xfee00000, 0xc059);
	/* And not when the line is low. */
	rte_write(f, 17, edge | 2);
	ioapic_set_level(&f->io, 17, true);
	ioapic_set_level(&f->io, 17, false);
	assert_int_equal(f->rec.nr_msi, 5);
	rte_write(f, 17, level | 2);
	assert_int_equal(f->rec.nr_msi, 5);
}

static void test_route_publication(void **state)
{
	struct fixture *f = *state;
	uint64_t rte = RTE_DEST(2) | RTE_LOGICAL | RTE_LEVEL | 0x45;

	/* Writing the high half of a masked entry changes it: published, not routed. */
	reg_write(f, 0x11 + 2 * 6, 0x02000000);
	assert_int_equal(f->rec.nr_routes, 1);
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++)
		assert_false(f->rec.routed[pin]);

	reg_write(f, 0x10 + 2 * 6, (uint32_t)rte);
	assert_int_equal(f->rec.nr_routes, 2);
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++)
		assert_int_equal(f->rec.routed[pin], pin == 6);
	assert_msi(&f->rec.routes[6], 0xfee02004, 0xc045);

	/* Rewriting the same value is no change and publishes nothing. */
	reg_write(f, 0x10 + 2 * 6, (uint32_t)rte);
	assert_int_equal(f->rec.nr_routes, 2);

	/* A second pin joins; the first keeps its route. */
	rte_write(f, 0, RTE_DEST(0) | 0x30);
	assert_int_equal(f->rec.nr_routes, 3);
	assert_true(f->rec.routed[0]);
	assert_true(f->rec.routed[6]);
	assert_msi(&f->rec.routes[0], 0xfee00000, 0x0030);
	assert_msi(&f->rec.routes[6], 0xfee02004, 0xc045);

	/* Changing the destination updates the route. */
	reg_write(f, 0x11 + 2 * 6, 0x08000000);
	assert_int_equal(f->rec.nr_routes, 4);
	assert_msi(&f->rec.routes[6], 0xfee08004, 0xc045);

	/* Masking keeps the route, so a later EOI for its vector still exits. */
	reg_write(f, 0x10 + 2 * 6, (uint32_t)(rte | RTE_MASKED));
	assert_int_equal(f->rec.nr_routes, 5);
	assert_true(f->rec.routed[6]);
	assert_true(f->rec.routed[0]);

	/* A backend failure is counted, not fatal. */
	assert_int_equal(f->io.route_errors, 0);
	f->rec.routes_ret = -EIO;
	rte_write(f, 1, 0x31);
	assert_int_equal(f->io.route_errors, 1);
	assert_int_equal(rte_read(f, 1), 0x31);
}

static void test_out_of_range_pins(void **state)
{
	struct fixture *f = *state;

	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++)
		rte_write(f, pin, 0x20 + pin);
	f->rec.nr_routes = 0;

	ioapic_set_level(&f->io, IOAPIC_NR_PINS, true);
	ioapic_set_level(&f->io, 31, true);
	ioapic_set_level(&f->io, 32, true);
	ioapic_set_level(&f->io, UINT32_MAX, true);
	assert_int_equal(f->rec.nr_msi, 0);
	assert_int_equal(f->io.line_level, 0);
	assert_int_equal(f->io.irr, 0);

	/* Indices past pin 23's entry are ignored and read as zero. */
	reg_write(f, 0x40, 0x12345678);
	reg_write(f, 0x41, 0x12345678);
	reg_write(f, 0xff, 0x12345678);
	assert_int_equal(reg_read(f, 0x40), 0);
	assert_int_equal(reg_read(f, 0x41), 0);
	assert_int_equal(reg_read(f, 0xff), 0);
	assert_int_equal(f->rec.nr_routes, 0);
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++)
		assert_int_equal(rte_read(f, pin), 0x20 + pin);

	/* Pins 0 and 23 still work. */
	ioapic_set_level(&f->io, 0, true);
	ioapic_set_level(&f->io, 23, true);
	assert_int_equal(f->rec.nr_msi, 2);
	assert_int_equal(f->rec.msi[0].data, 0x20);
	assert_int_equal(f->rec.msi[1].data, 0x37);
}

static void test_no_backend(void **state)
{
	struct ioapic io;
	uint32_t v;

	ioapic_init(&io, (struct ioapic_backend){ 0 });
	v = 0x10;
	ioapic_ops.write(&io, IOREGSEL, &v, 4);
	v = 0x40;
	ioapic_ops.write(&io, IOWIN, &v, 4);
	ioapic_set_level(&io, 0, true);
	assert_int_equal(io.delivered, 1);
	ioapic_destroy(&io);
	ioapic_destroy(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),
		T(test_id_version_registers),
		T(test_masked_at_reset),
		T(test_rte_read_write),
		T(test_remote_irr_read_only),
		T(test_edge_rising_only),
		cmocka_unit_test(test_msi_encoding),
		T(test_msi_delivered),
		T(test_edge_latched_while_masked),
		T(test_level_remote_irr),
		T(test_eoi_register),
		T(test_level_masked_then_unmasked),
		T(test_level_edge_switch),
		T(test_route_publication),
		T(test_out_of_range_pins),
		cmocka_unit_test(test_no_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
