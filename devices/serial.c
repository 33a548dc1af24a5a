// SPDX-License-Identifier: MIT
/*
 * 16550A register model. The parts that matter to Linux:
 *  - interrupt identification with the 16550 priorities (RX data over THR
 *    empty over modem status), and a line that drops whenever nothing is
 *    pending, so an edge-triggered IOAPIC pin sees a fresh edge per event;
 *  - loopback mode mapping MCR to MSR, which the 8250 driver's autoconfig
 *    uses to detect the port;
 *  - FIFO bits in IIR so the driver identifies a 16550A.
 * Transmission is instantaneous: THR and the shift register are always
 * empty again by the time the guest looks.
 */
#include <string.h>
#include <unistd.h>

#include "serial.h"
#include "util.h"

enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI	 0x01
#define IER_THRI 0x02
#define IER_MSI	 0x08

#define IIR_NO_INT 0x01
#define IIR_MSI	   0x00
#define IIR_THRI   0x02
#define IIR_RDI	   0x04
#define IIR_FIFO   0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DELTA_MASK 0x0f
#define MSR_CTS	       0x10
#define MSR_DSR	       0x20
#define MSR_RI	       0x40
#define MSR_DCD	       0x80

void serial_init(struct serial *s, int out_fd, struct irq_line irq)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	/* A connected terminal: carrier, data set ready, clear to send. */
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	s->mcr = MCR_OUT2;
}

void serial_destroy(struct serial *s)
{
	if (s)
		pthread_mutex_destroy(&s->lock);
}

static uint8_t compute_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_count > 0)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thre_pending)
		return fifo | IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA_MASK))
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

static void update_irq(struct serial *s)
{
	bool level = !(compute_iir(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static bool rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_count == SERIAL_FIFO_SIZE)
		return false;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t byte;

	if (s->rx_count == 0)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	s->rx_bytes++;
	return byte;
}

/* In loopback the modem outputs feed the modem inputs (16550 datasheet). */
static uint8_t loopback_msr(uint8_t mcr)
{
	uint8_t msr = 0;

	if (mcr & MCR_RTS)
		msr |= MSR_CTS;
	if (mcr & MCR_DTR)
		msr |= MSR_DSR;
	if (mcr & MCR_OUT1)
		msr |= MSR_RI;
	if (mcr & MCR_OUT2)
		msr |= MSR_DCD;
	return msr;
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, byte);
	} else if (s->out_fd >= 0) {
		/* A console that went away must not stop the guest. */
		ssize_t n = write(s->out_fd, &byte, 1);
		(void)n;
		s->tx_bytes++;
	}
	s->thre_pending = true;
}

static uint8_t serial_read_reg(struct serial *s, uint64_t reg)
{
	uint8_t iir;

	switch (reg) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		return rx_pop(s);
	case REG_IER_DLM:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		iir = compute_iir(s);
		/* Reading IIR while it reports THR empty acknowledges it. */
		if ((iir & 0x0f) == IIR_THRI)
			s->thre_pending = false;
		return iir;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR: {
		uint8_t lsr = LSR_THRE | LSR_TEMT | s->lsr_errors;

		if (s->rx_count)
			lsr |= LSR_DR;
		s->lsr_errors = 0;
		return lsr;
	}
	case REG_MSR: {
		uint8_t msr = (s->mcr & MCR_LOOP) ? loopback_msr(s->mcr) : s->msr;

		s->msr &= (uint8_t)~MSR_DELTA_MASK;
		return msr;
	}
	case REG_SCR:
		return s->scr;
	}
	return 0xff;
}

static void serial_write_reg(struct serial *s, uint64_t reg, uint8_t val)
{
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB)
			s->dll = val;
		else
			transmit(s, val);
		break;
	case REG_IER_DLM:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
			break;
		}
		/* Enabling THRI while THR is empty raises the interrupt at once. */
		if (!(s->ier & IER_THRI) && (val & IER_THRI))
			s->thre_pending = true;
		s->ier = val & 0x0f;
		break;
	case REG_IIR_FCR:
		if (val & FCR_CLEAR_RX)
			s->rx_head = s->rx_count = 0;
		s->fcr = val & (FCR_ENABLE | 0xc0);
		break;
	case REG_LCR:
		s->lcr = val;
		break;
	case REG_MCR:
		s->mcr = val & 0x1f;
		break;
	case REG_SCR:
		s->scr = val;
		break;
	default:
		/* LSR and MSR are read-only. */
		break;
	}
}

static void serial_read(void *dev, uint64_t offset, void *data, uint32_t size)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = serial_read_reg(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *dev, uint64_t offset, const void *data, uint32_t size)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	serial_write_reg(s, offset, *(const uint8_t *)data);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_device_ops serial_ops = {
	.name = "serial",
	.access_sizes = BUS_ACCESS_1,
	.read = serial_read,
	.write = serial_write,
};

uint32_t serial_rx_space(struct serial *s)
{
	uint32_t space;

	pthread_mutex_lock(&s->lock);
	space = SERIAL_FIFO_SIZE - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

uint32_t serial_receive(struct serial *s, const uint8_t *buf, uint32_t len)
{
	uint32_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && rx_push(s, buf[n]))
		n++;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int serial_post_load(void *dev)
{
	struct serial *s = dev;

	if (s->rx_head >= SERIAL_FIFO_SIZE || s->rx_count > SERIAL_FIFO_SIZE)
		return -EINVAL;
	if ((s->ier & ~0x0fu) || (s->mcr & ~0x1fu))
		return -EINVAL;
	if (state_check_bool(&s->thre_pending) || state_check_bool(&s->irq_level))
		return -EINVAL;
	return 0;
}

static const struct state_field serial_fields[] = {
	STATE_FIELD(struct serial, ier),      STATE_FIELD(struct serial, lcr),
	STATE_FIELD(struct serial, mcr),      STATE_FIELD(struct serial, lsr_errors),
	STATE_FIELD(struct serial, msr),      STATE_FIELD(struct serial, scr),
	STATE_FIELD(struct serial, dll),      STATE_FIELD(struct serial, dlm),
	STATE_FIELD(struct serial, fcr),      STATE_FIELD(struct serial, thre_pending),
	STATE_FIELD(struct serial, irq_level), STATE_FIELD(struct serial, rx),
	STATE_FIELD(struct serial, rx_head),  STATE_FIELD(struct serial, rx_count),
};

const struct state_desc serial_state_desc = {
	.name = "serial",
	.version = 1,
	.size = sizeof(struct serial),
	.fields = serial_fields,
	.nr_fields = ARRAY_SIZE(serial_fields),
	.post_load = serial_post_load,
};
