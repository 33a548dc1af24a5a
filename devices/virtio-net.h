/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.x, 5.1) over virtio-mmio on a TAP backend (tap.h):
 * one receive and one transmit queue, no control queue. Packets keep
 * their 12-byte virtio-net header end to end, so the guest's checksum
 * and TSO offloads reach the TAP untouched.
 *
 * Offered: MAC, STATUS (link up while there is a backend), CSUM and
 * GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6 with ECN, MRG_RXBUF. No UFO,
 * no control queue, no multiqueue, no MTU advice.
 *
 * Events: the device owns an epoll set holding the TAP (edge-triggered)
 * and an internal eventfd; the epoll fd is the one fd the VM's I/O thread
 * watches (POLLIN), with virtio_net_event_handler() as the handler. The
 * handler moves at most VIRTIO_NET_RX_BUDGET packets in and
 * VIRTIO_NET_TX_BUDGET out, then signals its own eventfd to come back,
 * so one busy TAP cannot starve the I/O thread.
 *
 * Receive: a packet is read into a bounce buffer, then copied into as
 * many receive buffers as it needs (one without MRG_RXBUF), and all of
 * them go on the used ring at once. While the guest has too few buffers
 * the packet waits in the bounce buffer and the buffers taken so far go
 * back on the available ring untouched; the guest's next receive kick
 * retries. A packet that can never fit (a buffer too small without
 * MRG_RXBUF, a ring too small with it) is dropped and counted.
 *
 * Transmit: each chain (header + frame, device-readable only) is one
 * writev. When the TAP answers EAGAIN the chain goes back on the
 * available ring and transmission resumes when the TAP is writable
 * (EPOLLOUT): nothing is dropped. Other write errors (interface down,
 * a header the kernel refuses) drop the packet and count it.
 *
 * State: between handler calls the device holds no guest buffer, so the
 * transport's state is the whole of it (a packet waiting in the bounce
 * buffer is host state, like a packet still queued in the TAP).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tap.h"
#include "virtio-mmio.h"

enum {
	VIRTIO_NET_QUEUE_SIZE = 256,
	VIRTIO_NET_Q_RX = 0,
	VIRTIO_NET_Q_TX = 1,
	VIRTIO_NET_RX_BUDGET = 64,
	VIRTIO_NET_TX_BUDGET = 256,
	/* Largest frame either way (header excluded): 64 KiB of GSO + Ethernet and VLAN headers. */
	VIRTIO_NET_MAX_FRAME = 65536 + 14 + 4,
	/* Shortest frame the guest may send: an Ethernet header. */
	VIRTIO_NET_MIN_FRAME = 14,
};

struct virtio_net_params {
	/* The TAP to open when tap_fd < 0; NULL or "" with tap_fd < 0: no link. */
	const char *tap_name;
	/* >= 0: use this already opened TAP instead (duplicated; the caller keeps its fd). */
	int tap_fd;
	/* tap_fd is a datagram/seqpacket socket with TAP framing (tap_adopt_socket). */
	bool tap_fd_is_socket;
	/* All zero: a random locally administered address. Must be unicast. */
	uint8_t mac[6];
};

struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes, rx_drops;
	uint64_t tx_packets, tx_bytes, tx_drops;
	/* Backend read/write failures other than EAGAIN (also counted as drops). */
	uint64_t backend_errors;
};

/* One buffer of the packet being received: which chain and how many bytes. */
struct virtio_net_used {
	uint16_t head;
	uint32_t len;
};

struct virtio_net {
	/* First: the transport is the device's common header. */
	struct virtio_mmio vdev;
	struct tap tap;
	int epoll_fd;
	int wake_fd;
	uint8_t mac[6];
	/* Negotiated features the TAP's offloads were set for (~0: none yet). */
	uint64_t offload_features;

	struct {
		/* An edge said the TAP is readable and no read has hit EAGAIN since. */
		bool ready;
		bool pushed;
		/* The packet waiting for buffers: header + frame, rx.len bytes (0: none). */
		uint8_t *buf;
		uint32_t len;
		struct virtio_net_used used[VIRTQ_MAX_SIZE];
		struct virtq_chain chain;
	} rx;
	struct {
		/* The TAP said EAGAIN: waiting for EPOLLOUT. */
		bool blocked;
		/* The budget ran out with chains left: the eventfd brings us back. */
		bool more;
		struct virtq_chain chain;
	} tx;

	struct virtio_net_stats stats;
	struct ratelimit backend_rl;
};

/*
 * Open the backend and set the device up at guest address base
 * (transport included, kick and interrupt fds not wired yet). reason
 * gets one line on failure.
 */
int virtio_net_create(const struct virtio_net_params *params, const struct guest_mem *mem,
		      uint64_t base, struct virtio_net **ret_net, char *reason,
		      size_t reason_len) __must_check;
/* Closes the backend and the event fds. NULL is fine. */
void virtio_net_destroy(struct virtio_net *net);
DEFINE_CLEANUP_FUNC(struct virtio_net, virtio_net_destroy)

/* The one fd the I/O thread watches for POLLIN (fixed for the device's life). */
int virtio_net_event_fd(const struct virtio_net *net);

/* The vm_io_watch handler for virtio_net_event_fd(). */
void virtio_net_event_handler(void *net, short revents);

/*
 * In a fork child, before the device is thawed: a lock of its own and a
 * backend of its own (params: another TAP, or none for no link) with
 * params->mac as the address (config_generation moves). The inherited
 * TAP is closed; the event fd keeps its number but is a new epoll set
 * (the inherited one is shared with the parent). On failure nothing but
 * the lock has changed and the device still points at the parent's
 * TAP: the clone must not run.
 */
int virtio_net_after_fork(struct virtio_net *net, const struct virtio_net_params *params,
			  char *reason, size_t reason_len) __must_check;
