// SPDX-License-Identifier: MIT
/*
 * devices/serial.c: the 16550A as Linux's 8250 driver probes and drives
 * it. The IRQ line goes to a recorder, transmitted bytes to a pipe.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "serial.h"

/* Register offsets and bits, spelled out as the 8250 driver names them. */
enum {
	UART_RX = 0,
	UART_TX = 0,
	UART_DLL = 0,
	UART_IER = 1,
	UART_DLM = 1,
	UART_IIR = 2,
	UART_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define UART_IER_RDI	    0x01
#define UART_IER_THRI	    0x02
#define UART_IIR_NO_INT	    0x01
#define UART_IIR_THRI	    0x02
#define UART_IIR_RDI	    0x04
#define UART_FCR_ENABLE	    0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_LCR_DLAB	    0x80
#define UART_LCR_WLEN8	    0x03
#define UART_MCR_LOOP	    0x10
#define UART_MCR_OUT2	    0x08
#define UART_LSR_DR	    0x01
#define UART_LSR_THRE	    0x20
#define UART_LSR_TEMT	    0x40

/* Records every level the device drives onto its line. */
struct irq_recorder {
	uint32_t pin;
	uint32_t nr;
	bool levels[256];
};

static void record_level(void *controller, uint32_t pin, bool level)
{
	struct irq_recorder *rec = controller;

	assert_int_equal(pin, SERIAL_COM1_IRQ);
	assert_true(rec->nr < ARRAY_SIZE(rec->levels));
	rec->levels[rec->nr++] = level;
}

struct fixture {
	struct serial s;
	struct irq_recorder irq;
	int pipe[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	serial_init(&f->s, f->pipe[1],
		    (struct irq_line){ .set_level = record_level,
				       .controller = &f->irq,
				       .pin = SERIAL_COM1_IRQ });
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	serial_destroy(&f->s);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

static uint8_t in(struct fixture *f, uint64_t reg)
{
	uint8_t v = 0x5a;

	serial_ops.read(&f->s, reg, &v, 1);
	return v;
}

static void out(struct fixture *f, uint64_t reg, uint8_t v)
{
	serial_ops.write(&f->s, reg, &v, 1);
}

/* Everything the guest transmitted so far. */
static size_t drain_pipe(struct fixture *f, uint8_t *buf, size_t len)
{
	ssize_t n = read(f->pipe[0], buf, len);

	return n < 0 ? 0 : (size_t)n;
}

static void assert_levels(const struct irq_recorder *rec, const bool *want, uint32_t nr)
{
	assert_int_equal(rec->nr, nr);
	for (uint32_t i = 0; i < nr; i++) {
		if (rec->levels[i] != want[i])
			print_message("irq transition %u\n", i);
		assert_int_equal(rec->levels[i], want[i]);
	}
}

static void test_ops_and_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(serial_ops.name, "serial");
	assert_int_equal(serial_ops.access_sizes, BUS_ACCESS_1);

	assert_int_equal(in(f, UART_IER), 0x00);
	assert_int_equal(in(f, UART_IIR), 0x01);
	assert_int_equal(in(f, UART_LCR), 0x00);
	assert_int_equal(in(f, UART_MCR), UART_MCR_OUT2);
	assert_int_equal(in(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	/* DCD, DSR, CTS: a terminal is attached. */
	assert_int_equal(in(f, UART_MSR), 0xb0);
	assert_int_equal(in(f, UART_SCR), 0x00);
	assert_int_equal(f->irq.nr, 0);
}

/* The sequence of drivers/tty/serial/8250/8250_port.c:autoconfig(). */
static void test_8250_autoconfig(void **state)
{
	struct fixture *f = *state;
	uint8_t scratch, scratch2, scratch3, status1, save_mcr, save_lcr;

	/* IER write/readback: the "is anything there" test. */
	scratch = in(f, UART_IER);
	out(f, UART_IER, 0);
	scratch2 = in(f, UART_IER) & 0x0f;
	out(f, UART_IER, 0x0f);
	scratch3 = in(f, UART_IER) & 0x0f;
	out(f, UART_IER, scratch);
	assert_int_equal(scratch2, 0x00);
	assert_int_equal(scratch3, 0x0f);
	assert_int_equal(in(f, UART_IER), scratch);

	/* Loopback with RTS and OUT2: CTS and DCD must come back in MSR. */
	save_mcr = in(f, UART_MCR);
	save_lcr = in(f, UART_LCR);
	out(f, UART_MCR, UART_MCR_LOOP | 0x0a);
	status1 = in(f, UART_MSR) & 0xf0;
	out(f, UART_MCR, save_mcr);
	assert_int_equal(status1, 0x90);
	assert_int_equal(in(f, UART_MCR), save_mcr);

	/* FIFO enable: IIR bits 7:6 == 3 identifies a 16550A. */
	out(f, UART_LCR, 0xbf);
	out(f, UART_FCR, 0);
	out(f, UART_LCR, 0);
	out(f, UART_FCR, UART_FCR_ENABLE);
	assert_int_equal(in(f, UART_IIR) >> 6, 3);
	out(f, UART_LCR, save_lcr);

	/* autoconfig_16550a(): no EFR (reads non-zero at 2 with DLAB), no 16750 bit. */
	out(f, UART_LCR, UART_LCR_DLAB);
	assert_int_not_equal(in(f, UART_IIR), 0);
	out(f, UART_FCR, UART_FCR_ENABLE | 0x20);
	assert_int_equal(in(f, UART_IIR) >> 5, 6);
	out(f, UART_LCR, 0);
	assert_int_equal(in(f, UART_IIR) >> 5, 6);
	/* No XScale UUE bit: IER bit 6 does not stick. */
	out(f, UART_IER, 0x40);
	assert_int_equal(in(f, UART_IER) & 0x40, 0);
	out(f, UART_IER, 0);

	/* IER 0x0f enabled THRI (line up), restoring IER dropped it: the line ends low. */
	assert_levels(&f->irq, (const bool[]){ true, false }, 2);
}

/* autoconfig_8250(): the scratch register tells a 16450 from an 8250. */
static void test_scratch_register(void **state)
{
	struct fixture *f = *state;
	static const uint8_t values[] = { 0xa5, 0x5a, 0x00, 0xff, 0x01 };

	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		out(f, UART_SCR, values[i]);
		assert_int_equal(in(f, UART_SCR), values[i]);
	}
	/* SCR is independent of the other registers. */
	out(f, UART_SCR, 0xa5);
	out(f, UART_LCR, UART_LCR_WLEN8);
	assert_int_equal(in(f, UART_SCR), 0xa5);
	assert_int_equal(in(f, UART_LCR), UART_LCR_WLEN8);
}

static void test_divisor_latch(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[16];

	out(f, UART_IER, UART_IER_RDI);
	/* serial8250_do_set_termios(): DLAB, divisor 1 (115200), then 8N1. */
	out(f, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
	out(f, UART_DLL, 0x01);
	out(f, UART_DLM, 0x00);
	assert_int_equal(in(f, UART_DLL), 0x01);
	assert_int_equal(in(f, UART_DLM), 0x00);
	out(f, UART_DLL, 0x0c);
	out(f, UART_DLM, 0x34);
	assert_int_equal(in(f, UART_DLL), 0x0c);
	assert_int_equal(in(f, UART_DLM), 0x34);
	assert_int_equal(in(f, UART_LCR), UART_LCR_DLAB | UART_LCR_WLEN8);
	/* Nothing was transmitted through the latch. */
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 0);
	assert_int_equal(f->s.tx_bytes, 0);

	out(f, UART_LCR, UART_LCR_WLEN8);
	/* Without DLAB the same offsets are IER and RBR again. */
	assert_int_equal(in(f, UART_IER), UART_IER_RDI);
	out(f, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(in(f, UART_DLL), 0x0c);
	assert_int_equal(in(f, UART_DLM), 0x34);
	/* The latch does not eat received data. */
	out(f, UART_LCR, 0);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"Q", 1), 1);
	out(f, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(in(f, UART_DLL), 0x0c);
	out(f, UART_LCR, 0);
	assert_int_equal(in(f, UART_RX), 'Q');
}

static void test_iir_priorities(void **state)
{
	struct fixture *f = *state;

	out(f, UART_FCR, UART_FCR_ENABLE);
	assert_int_equal(in(f, UART_IIR), 0xc1);

	out(f, UART_IER, UART_IER_RDI | UART_IER_THRI);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"ab", 2), 2);
	/* RX data outranks THR empty; reading it does not acknowledge THRE. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
	assert_int_equal(in(f, UART_RX), 'a');
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
	assert_int_equal(in(f, UART_RX), 'b');
	/* RX drained: THR empty shows, and reading it acknowledges it. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_THRI);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_NO_INT);

	/* Without FIFOs the top bits are clear. */
	out(f, UART_FCR, 0);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"c", 1), 1);
	assert_int_equal(in(f, UART_IIR), UART_IIR_RDI);

	/* RX data with RDI disabled is not an interrupt. */
	out(f, UART_IER, 0);
	assert_int_equal(in(f, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
}

/* Modem status is the lowest priority, and reading MSR clears its delta bits. */
static void test_iir_modem_status(void **state)
{
	struct fixture *f = *state;

	out(f, UART_IER, UART_IER_RDI | UART_IER_THRI | 0x08);
	/* No modem input changes in this model, so set a delta (DCTS) by hand. */
	f->s.msr |= 0x01;
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"m", 1), 1);
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	assert_int_equal(in(f, UART_RX), 'm');
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	assert_int_equal(in(f, UART_IIR) & 0x0f, 0x00);
	assert_int_equal(f->irq.nr, 1);
	assert_int_equal(in(f, UART_MSR), 0xb1);
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
	assert_int_equal(in(f, UART_MSR), 0xb0);
	assert_levels(&f->irq, (const bool[]){ true, false }, 2);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	/* Enabling THRI with THR empty raises the line at once. */
	out(f, UART_IER, UART_IER_THRI);
	assert_levels(&f->irq, (const bool[]){ true }, 1);
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	/* The IIR read acknowledged it and the line dropped. */
	assert_levels(&f->irq, (const bool[]){ true, false }, 2);
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
	assert_int_equal(f->irq.nr, 2);

	/* Rewriting IER with THRI still set is not a new event. */
	out(f, UART_IER, UART_IER_THRI);
	assert_int_equal(f->irq.nr, 2);

	/* A transmitted byte leaves THR empty again: a fresh edge. */
	out(f, UART_TX, 'x');
	assert_levels(&f->irq, (const bool[]){ true, false, true }, 3);
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'x');

	/* Disabling THRI drops the line. */
	out(f, UART_IER, 0);
	assert_levels(&f->irq, (const bool[]){ true, false, true, false }, 4);
	assert_int_equal(in(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
}

/*
 * serial8250_do_startup()'s UART_BUG_THRE test: THRI on, read IIR, THRI
 * off and on again; a real 16550 re-asserts THRE the second time.
 */
static void test_thre_reasserted_on_ier_toggle(void **state)
{
	struct fixture *f = *state;
	uint8_t iir1, iir;

	out(f, UART_IER, UART_IER_THRI);
	iir1 = in(f, UART_IIR);
	out(f, UART_IER, 0);
	out(f, UART_IER, UART_IER_THRI);
	iir = in(f, UART_IIR);
	out(f, UART_IER, 0);

	assert_int_equal(iir1 & UART_IIR_NO_INT, 0);
	assert_int_equal(iir & UART_IIR_NO_INT, 0);
	assert_int_equal(iir & 0x0f, UART_IIR_THRI);
	assert_levels(&f->irq, (const bool[]){ true, false, true, false }, 4);
}

static void test_rx_irq_edges(void **state)
{
	struct fixture *f = *state;

	/* Data arriving with RDI disabled does not touch the line. */
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"z", 1), 1);
	assert_int_equal(f->irq.nr, 0);
	/* Enabling RDI with data waiting raises it. */
	out(f, UART_IER, UART_IER_RDI);
	assert_levels(&f->irq, (const bool[]){ true }, 1);
	assert_int_equal(in(f, UART_RX), 'z');
	assert_levels(&f->irq, (const bool[]){ true, false }, 2);

	/* More data while the line is high is no new edge... */
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"1", 1), 1);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"2", 1), 1);
	assert_levels(&f->irq, (const bool[]){ true, false, true }, 3);
	assert_int_equal(in(f, UART_RX), '1');
	assert_int_equal(f->irq.nr, 3);
	/* ...and the line drops only when the FIFO is empty. */
	assert_int_equal(in(f, UART_RX), '2');
	assert_levels(&f->irq, (const bool[]){ true, false, true, false }, 4);

	/* Next byte, next edge. */
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"3", 1), 1);
	assert_levels(&f->irq, (const bool[]){ true, false, true, false, true }, 5);

	/* Clearing the RX FIFO drops it too. */
	out(f, UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RCVR);
	assert_levels(&f->irq, (const bool[]){ true, false, true, false, true, false }, 6);
	assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, 0);
	/* Empty receive is not an event. */
	assert_int_equal(serial_receive(&f->s, NULL, 0), 0);
	assert_int_equal(f->irq.nr, 6);
}

static void test_rx_fifo_fill(void **state)
{
	struct fixture *f = *state;
	uint8_t data[100];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 3 + 1);

	assert_int_equal(serial_rx_space(&f->s), SERIAL_FIFO_SIZE);
	assert_int_equal(serial_receive(&f->s, data, 10), 10);
	assert_int_equal(serial_rx_space(&f->s), SERIAL_FIFO_SIZE - 10);
	/* Only what fits is taken. */
	assert_int_equal(serial_receive(&f->s, data + 10, 90), SERIAL_FIFO_SIZE - 10);
	assert_int_equal(serial_rx_space(&f->s), 0);
	assert_int_equal(serial_receive(&f->s, data + 64, 1), 0);

	/* One out, one in: the FIFO wraps. */
	assert_int_equal(in(f, UART_RX), data[0]);
	assert_int_equal(serial_rx_space(&f->s), 1);
	assert_int_equal(serial_receive(&f->s, data + 64, 36), 1);

	for (size_t i = 1; i <= SERIAL_FIFO_SIZE; i++) {
		assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
		assert_int_equal(in(f, UART_RX), data[i]);
	}
	assert_int_equal(in(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(serial_rx_space(&f->s), SERIAL_FIFO_SIZE);
	assert_int_equal(f->s.rx_bytes, SERIAL_FIFO_SIZE + 1);
	/* Reading an empty RBR gives 0 and changes nothing. */
	assert_int_equal(in(f, UART_RX), 0);
	assert_int_equal(f->s.rx_bytes, SERIAL_FIFO_SIZE + 1);
}

static void test_lsr_data_ready(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, UART_LSR), 0x60);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"k", 1), 1);
	assert_int_equal(in(f, UART_LSR), 0x61);
	/* Reading LSR does not consume data. */
	assert_int_equal(in(f, UART_LSR), 0x61);
	assert_int_equal(in(f, UART_RX), 'k');
	assert_int_equal(in(f, UART_LSR), 0x60);
	/* LSR is read-only. */
	out(f, UART_LSR, 0xff);
	assert_int_equal(in(f, UART_LSR), 0x60);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[8];

	out(f, UART_MCR, UART_MCR_LOOP);
	out(f, UART_TX, 'L');
	out(f, UART_TX, 'B');
	/* Looped back, not sent. */
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 0);
	assert_int_equal(f->s.tx_bytes, 0);
	assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
	assert_int_equal(in(f, UART_RX), 'L');
	assert_int_equal(in(f, UART_RX), 'B');
	assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, 0);

	out(f, UART_MCR, UART_MCR_OUT2);
	out(f, UART_TX, 'o');
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'o');
	assert_int_equal(in(f, UART_LSR) & UART_LSR_DR, 0);
}

/* In loopback MSR[7:4] mirrors MCR: OUT2→DCD, OUT1→RI, DTR→DSR, RTS→CTS. */
static void test_loopback_msr(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint8_t mcr, msr_high;
	} cases[] = {
		{ 0x10, 0x00 }, { 0x11, 0x20 }, { 0x12, 0x10 }, { 0x14, 0x40 },
		{ 0x18, 0x80 }, { 0x1a, 0x90 }, { 0x1f, 0xf0 }, { 0x15, 0x60 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		out(f, UART_MCR, cases[i].mcr);
		assert_int_equal(in(f, UART_MCR), cases[i].mcr);
		if ((in(f, UART_MSR) & 0xf0) != cases[i].msr_high)
			print_message("MCR 0x%02x\n", cases[i].mcr);
		assert_int_equal(in(f, UART_MSR) & 0xf0, cases[i].msr_high);
	}
	/* Out of loopback the terminal's lines are back. */
	out(f, UART_MCR, UART_MCR_OUT2);
	assert_int_equal(in(f, UART_MSR), 0xb0);
	/* MCR keeps only its five bits. */
	out(f, UART_MCR, 0xff);
	assert_int_equal(in(f, UART_MCR), 0x1f);
}

static void test_output_reaches_fd(void **state)
{
	struct fixture *f = *state;
	static const char msg[] = "Linux version 6.1\r\n\x00\xff";
	uint8_t buf[64];

	for (size_t i = 0; i < sizeof(msg) - 1; i++)
		out(f, UART_TX, (uint8_t)msg[i]);
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), sizeof(msg) - 1);
	assert_memory_equal(buf, msg, sizeof(msg) - 1);
	assert_int_equal(f->s.tx_bytes, sizeof(msg) - 1);
	/* Transmission is instantaneous: THR and TEMT are empty again. */
	assert_int_equal(in(f, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT),
			 UART_LSR_THRE | UART_LSR_TEMT);
	/* THRI was never enabled: no interrupt. */
	assert_int_equal(f->irq.nr, 0);
}

static void test_output_without_fd(void **state)
{
	struct serial s;
	uint8_t v = 'x';

	/* No console and no IRQ controller: writes vanish, nothing crashes. */
	serial_init(&s, -1, (struct irq_line){ 0 });
	serial_ops.write(&s, UART_IER, &(uint8_t){ UART_IER_THRI }, 1);
	serial_ops.write(&s, UART_TX, &v, 1);
	serial_ops.read(&s, UART_IIR, &v, 1);
	assert_int_equal(v & 0x0f, UART_IIR_THRI);
	assert_int_equal(s.tx_bytes, 0);
	serial_destroy(&s);
	serial_destroy(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ops_and_reset_state),
		T(test_8250_autoconfig),
		T(test_scratch_register),
		T(test_divisor_latch),
		T(test_iir_priorities),
		T(test_iir_modem_status),
		T(test_thre_interrupt),
		T(test_thre_reasserted_on_ier_toggle),
		T(test_rx_irq_edges),
		T(test_rx_fifo_fill),
		T(test_lsr_data_ready),
		T(test_loopback),
		T(test_loopback_msr),
		T(test_output_reaches_fd),
		cmocka_unit_test(test_output_without_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
