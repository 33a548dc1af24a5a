// SPDX-License-Identifier: MIT
#include <string.h>

#include "ioapic.h"

enum {
	REG_SELECT = 0x00,
	REG_WINDOW = 0x10,
	REG_EOI = 0x40,
};

enum {
	IND_ID = 0x00,
	IND_VERSION = 0x01,
	IND_ARBITRATION = 0x02,
	IND_REDIR_BASE = 0x10,
};

/* Version 0x20 has the directed-EOI register at 0x40. */
#define IOAPIC_VERSION 0x20

#define RTE_VECTOR_MASK	    0xffull
#define RTE_DELIVERY_SHIFT  8
#define RTE_DELIVERY_MASK   0x7ull
#define RTE_DEST_LOGICAL    (1ull << 11)
#define RTE_DELIVERY_STATUS (1ull << 12)
#define RTE_POLARITY_LOW    (1ull << 13)
#define RTE_REMOTE_IRR	    (1ull << 14)
#define RTE_LEVEL	    (1ull << 15)
#define RTE_MASKED	    (1ull << 16)
#define RTE_DEST_SHIFT	    56
/* Bits the guest may write; delivery status and Remote IRR are read-only. */
#define RTE_WRITABLE	    (~(RTE_DELIVERY_STATUS | RTE_REMOTE_IRR))

#define MSI_ADDR_BASE	    0xfee00000ull
#define MSI_ADDR_DEST_SHIFT 12
#define MSI_ADDR_LOGICAL    (1ull << 2)
#define MSI_DATA_LEVEL	    (1u << 15)
#define MSI_DATA_ASSERT	    (1u << 14)

void ioapic_init(struct ioapic *ioapic, struct ioapic_backend backend)
{
	memset(ioapic, 0, sizeof(*ioapic));
	pthread_mutex_init(&ioapic->lock, NULL);
	ioapic->backend = backend;
	for (uint32_t i = 0; i < IOAPIC_NR_PINS; i++)
		ioapic->redir[i] = RTE_MASKED;
}

void ioapic_destroy(struct ioapic *ioapic)
{
	if (ioapic)
		pthread_mutex_destroy(&ioapic->lock);
}

struct ioapic_msi ioapic_entry_to_msi(uint64_t entry)
{
	struct ioapic_msi msi;

	msi.address = MSI_ADDR_BASE | (((entry >> RTE_DEST_SHIFT) & 0xff) << MSI_ADDR_DEST_SHIFT);
	if (entry & RTE_DEST_LOGICAL)
		msi.address |= MSI_ADDR_LOGICAL;
	msi.data = (uint32_t)(entry & RTE_VECTOR_MASK) |
		   (uint32_t)(((entry >> RTE_DELIVERY_SHIFT) & RTE_DELIVERY_MASK) << 8);
	if (entry & RTE_LEVEL)
		msi.data |= MSI_DATA_LEVEL | MSI_DATA_ASSERT;
	return msi;
}

static void publish_routes(struct ioapic *ioapic)
{
	bool routed[IOAPIC_NR_PINS];
	struct ioapic_msi msi[IOAPIC_NR_PINS];

	if (!ioapic->backend.set_routes)
		return;
	/*
	 * A pin keeps its route while masked: Linux masks a level pin with
	 * Remote IRR set and EOIs it afterwards (when it moves an IRQ), and
	 * that EOI must still reach us. Only never-programmed pins (vector
	 * below 16, reserved for exceptions) are left unrouted.
	 */
	for (uint32_t i = 0; i < IOAPIC_NR_PINS; i++) {
		routed[i] = (ioapic->redir[i] & RTE_VECTOR_MASK) >= 0x10;
		msi[i] = ioapic_entry_to_msi(ioapic->redir[i]);
	}
	if (ioapic->backend.set_routes(ioapic->backend.opaque, routed, msi) < 0)
		ioapic->route_errors++;
}

void ioapic_republish(struct ioapic *ioapic)
{
	pthread_mutex_lock(&ioapic->lock);
	publish_routes(ioapic);
	pthread_mutex_unlock(&ioapic->lock);
}

/* Deliver whatever is pending and deliverable. Called with the lock held. */
static void service(struct ioapic *ioapic)
{
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		uint64_t *rte = &ioapic->redir[pin];
		struct ioapic_msi msi;

		if (!(ioapic->irr & (1u << pin)) || (*rte & RTE_MASKED))
			continue;
		if (*rte & RTE_LEVEL) {
			if (*rte & RTE_REMOTE_IRR)
				continue;
			*rte |= RTE_REMOTE_IRR;
		} else {
			ioapic->irr &= ~(1u << pin);
		}
		msi = ioapic_entry_to_msi(*rte);
		if (ioapic->backend.send_msi)
			ioapic->backend.send_msi(ioapic->backend.opaque, &msi);
		ioapic->delivered++;
	}
}

void ioapic_set_level(void *opaque, uint32_t pin, bool level)
{
	struct ioapic *ioapic = opaque;
	uint32_t bit;
	bool was_high;

	if (pin >= IOAPIC_NR_PINS)
		return;
	bit = 1u << pin;

	pthread_mutex_lock(&ioapic->lock);
	was_high = ioapic->line_level & bit;
	if (level)
		ioapic->line_level |= bit;
	else
		ioapic->line_level &= ~bit;

	if (ioapic->redir[pin] & RTE_LEVEL) {
		/* Level: pending exactly while the line is asserted. */
		if (level)
			ioapic->irr |= bit;
		else
			ioapic->irr &= ~bit;
	} else if (level && !was_high) {
		/* Edge: latch the rising edge, even while masked. */
		ioapic->irr |= bit;
	}
	service(ioapic);
	pthread_mutex_unlock(&ioapic->lock);
}

void ioapic_eoi(struct ioapic *ioapic, uint8_t vector)
{
	pthread_mutex_lock(&ioapic->lock);
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		uint64_t *rte = &ioapic->redir[pin];

		if ((*rte & RTE_LEVEL) && (*rte & RTE_VECTOR_MASK) == vector)
			*rte &= ~RTE_REMOTE_IRR;
	}
	service(ioapic);
	pthread_mutex_unlock(&ioapic->lock);
}

static uint32_t read_indirect(const struct ioapic *ioapic, uint32_t index)
{
	uint32_t pin;

	switch (index) {
	case IND_ID:
	case IND_ARBITRATION:
		return ioapic->id << 24;
	case IND_VERSION:
		return ((IOAPIC_NR_PINS - 1) << 16) | IOAPIC_VERSION;
	}
	if (index < IND_REDIR_BASE)
		return 0;
	pin = (index - IND_REDIR_BASE) / 2;
	if (pin >= IOAPIC_NR_PINS)
		return 0;
	return (index & 1) ? (uint32_t)(ioapic->redir[pin] >> 32) : (uint32_t)ioapic->redir[pin];
}

static void write_indirect(struct ioapic *ioapic, uint32_t index, uint32_t val)
{
	uint64_t old, rte;
	uint32_t pin;

	if (index == IND_ID) {
		ioapic->id = (val >> 24) & 0x0f;
		return;
	}
	if (index < IND_REDIR_BASE)
		return;
	pin = (index - IND_REDIR_BASE) / 2;
	if (pin >= IOAPIC_NR_PINS)
		return;

	old = ioapic->redir[pin];
	if (index & 1)
		rte = (old & 0xffffffffull) | ((uint64_t)val << 32);
	else
		rte = (old & ~0xffffffffull) | val;
	rte = (rte & RTE_WRITABLE) | (old & ~RTE_WRITABLE);
	/* Switching to edge clears Remote IRR: older kernels EOI that way. */
	if (!(rte & RTE_LEVEL))
		rte &= ~RTE_REMOTE_IRR;
	ioapic->redir[pin] = rte;

	/* A level pin whose line is still high is pending again. */
	if ((rte & RTE_LEVEL) && (ioapic->line_level & (1u << pin)))
		ioapic->irr |= 1u << pin;
	if (rte != old)
		publish_routes(ioapic);
	service(ioapic);
}

static void ioapic_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct ioapic *ioapic = dev;
	uint32_t val = 0;

	pthread_mutex_lock(&ioapic->lock);
	if (offset == REG_SELECT)
		val = ioapic->ioregsel;
	else if (offset == REG_WINDOW)
		val = read_indirect(ioapic, ioapic->ioregsel);
	pthread_mutex_unlock(&ioapic->lock);
	memcpy(data, &val, sizeof(val));
}

static void ioapic_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct ioapic *ioapic = dev;
	uint32_t val;

	memcpy(&val, data, sizeof(val));
	if (offset == REG_EOI) {
		ioapic_eoi(ioapic, (uint8_t)val);
		return;
	}
	pthread_mutex_lock(&ioapic->lock);
	if (offset == REG_SELECT)
		ioapic->ioregsel = val & 0xff;
	else if (offset == REG_WINDOW)
		write_indirect(ioapic, ioapic->ioregsel, val);
	pthread_mutex_unlock(&ioapic->lock);
}

const struct bus_device_ops ioapic_ops = {
	.name = "ioapic",
	.access_sizes = BUS_ACCESS_4,
	.read = ioapic_read,
	.write = ioapic_write,
};

static int ioapic_post_load(void *dev)
{
	struct ioapic *ioapic = dev;
	uint32_t pins = (1u << IOAPIC_NR_PINS) - 1;

	if (ioapic->id > 0x0f || ioapic->ioregsel > 0xff)
		return -EINVAL;
	if ((ioapic->line_level & ~pins) || (ioapic->irr & ~pins))
		return -EINVAL;
	return 0;
}

static const struct state_field ioapic_fields[] = {
	STATE_FIELD(struct ioapic, id),
	STATE_FIELD(struct ioapic, ioregsel),
	STATE_FIELD(struct ioapic, redir),
	STATE_FIELD(struct ioapic, line_level),
	STATE_FIELD(struct ioapic, irr),
};

const struct state_desc ioapic_state_desc = {
	.name = "ioapic",
	.version = 1,
	.size = sizeof(struct ioapic),
	.fields = ioapic_fields,
	.nr_fields = ARRAY_SIZE(ioapic_fields),
	.post_load = ioapic_post_load,
};
