/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (COM1 at 0x3f8, IRQ 4): what Linux's 8250 driver needs
 * for an interactive console. Transmitted bytes go straight to an fd;
 * received bytes are pushed in by the I/O thread.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "state-desc.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ	 4
#define SERIAL_NR_PORTS	 8
#define SERIAL_FIFO_SIZE 64

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	struct irq_line irq;
	bool irq_level;

	uint8_t ier, lcr, mcr, lsr_errors, msr, scr, dll, dlm, fcr;
	/* THR-empty interrupt is pending until IIR reports it or THR is written. */
	bool thre_pending;

	uint8_t rx[SERIAL_FIFO_SIZE];
	uint32_t rx_head, rx_count;

	uint64_t tx_bytes, rx_bytes;
};

extern const struct bus_device_ops serial_ops;
extern const struct state_desc serial_state_desc;

void serial_init(struct serial *s, int out_fd, struct irq_line irq);
void serial_destroy(struct serial *s);

/* Queue guest input; returns how many bytes fit (the rest stay with the caller). */
uint32_t serial_receive(struct serial *s, const uint8_t *buf, uint32_t len);

/* How many bytes serial_receive() would accept now. */
uint32_t serial_rx_space(struct serial *s);
