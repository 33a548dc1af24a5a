/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (virtio 1.x, 5.10) over virtio-mmio, stream sockets only,
 * the host end on unix sockets (vsock-host.h has the protocol). Queues:
 * rx (0) for packets to the guest, tx (1) for packets from it, event (2)
 * for transport resets. Config space: le64 guest_cid. Features: VERSION_1
 * only (no SEQPACKET).
 *
 * A stream, host-initiated:
 *   HANDSHAKE --CONNECT line--> CONNECTING (REQUEST to the guest)
 *     --RESPONSE--> ESTABLISHED ("OK <hostport>\n" to the client)
 *     --RST, or no answer in VSOCK_TIMEOUT_MS--> closed
 * (a client writing garbage, or nothing for VSOCK_TIMEOUT_MS, is closed);
 * guest-initiated: REQUEST to (2, P) connects to "<uds_path>_<P>" and is
 * ESTABLISHED with a RESPONSE, or refused with an RST.
 * ESTABLISHED ends when nothing can flow either way (the guest shut
 * SEND, and the unix peer hit EOF or the guest shut RCV): once the bytes
 * buffered for the socket are written (CLOSING, bounded by the timeout),
 * the socket is closed and the guest gets an RST. A guest RST closes at
 * once; a socket error or a guest breaking the protocol resets.
 *
 * Flow control: every packet to the guest carries buf_alloc
 * (VSOCK_BUF_ALLOC) and fwd_cnt; the guest gets no more than its credit,
 * and a socket is read only while there is credit and an rx buffer.
 * Guest bytes the socket cannot take are buffered up to buf_alloc; a
 * guest sending past its credit gets an RST.
 *
 * Control packets (REQUEST, RESPONSE, CREDIT_UPDATE, SHUTDOWN, RST) wait
 * for rx buffers in a bounded queue: per stream, a set of flags on a
 * FIFO of streams (one entry per stream); for packets that match no
 * stream, a ring of VIRTIO_VSOCK_RST_MAX resets (beyond it they are
 * dropped and counted: the guest's connect then times out).
 *
 * Threads: everything runs on the I/O thread, under the transport lock:
 * queue notifications, and the one epoll fd (listener, sockets, timer)
 * watched through virtio_vsock_event_fd(). Nothing about streams is
 * saved: a snapshot or a fork ends them all with a transport reset.
 *
 * Wiring (vm-devices): create; attach the transport as for any virtio
 * device; vm_io_watch(virtio_vsock_event_fd(v), POLLIN,
 * virtio_vsock_event_handler, v); quiesce with virtio_mmio_quiesce();
 * in a fork child, virtio_vsock_after_fork() besides the usual eventfd
 * rewiring (in either order); after a state restore,
 * virtio_vsock_after_restore(). The state node is the transport's
 * (vdev.state): the device adds nothing to it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "virtio-mmio.h"
#include "vsock-host.h"

enum {
	VIRTIO_VSOCK_QUEUE_SIZE = 256,
	VIRTIO_VSOCK_NR_QUEUES = 3,
	/* At most this long after a TRANSPORT_RESET new host connections wait for the guest. */
	VSOCK_RESET_GATE_MS = 1000,
	/* Payload bytes in one packet, either way. */
	VIRTIO_VSOCK_MAX_PKT = 64 * 1024,
	/* Resets owed for packets that matched no stream. */
	VIRTIO_VSOCK_RST_MAX = 256,
	/* Packets read from one socket per event, so one busy stream cannot starve the rest. */
	VIRTIO_VSOCK_PULL_BATCH = 16,
	VIRTIO_VSOCK_EVENT_BATCH = 64,
};

struct virtio_vsock_params {
	uint64_t guest_cid; /* 3 .. 2^32 - 2 */
	const char *uds_path;
};

struct virtio_vsock_stats {
	uint64_t conns_opened;	/* streams established, either side starting */
	uint64_t conns_refused; /* clients or REQUESTs turned away, connects unanswered */
	uint64_t bytes_to_guest;
	uint64_t bytes_from_guest;
	uint64_t resets_sent;
	uint64_t resets_received;
	uint64_t malformed;    /* guest packets or buffers breaking a rule */
	uint64_t ctrl_dropped; /* resets lost to a full VIRTIO_VSOCK_RST_MAX ring */
	uint64_t transport_resets;
};

/* A reset owed for a guest packet that matched no stream. */
struct vsock_rst {
	uint64_t src_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint16_t type;
};

struct virtio_vsock {
	/* First: the transport is the device's common header. */
	struct virtio_mmio vdev;
	uint64_t guest_cid;
	struct vsock_host host;
	struct vsock_link ctrl;	   /* streams owing control packets, oldest first */
	struct vsock_link rx_wait; /* streams with data, waiting for rx buffers */
	struct vsock_rst rsts[VIRTIO_VSOCK_RST_MAX];
	uint32_t rst_head, rst_len;
	bool event_pending; /* TRANSPORT_RESET not yet on the event queue */
	/*
	 * TRANSPORT_RESET delivered, and the guest has not shown it handled
	 * it yet (see reset_gate in virtio-vsock.c): until reset_gate_ms, new
	 * host connections wait before their REQUEST goes out.
	 */
	bool reset_unacked;
	uint64_t reset_gate_ms;
	bool rekick;	    /* every queue to be looked at on the I/O thread */
	uint32_t pushed;    /* queues with used entries not yet signalled */
	struct virtq_chain tx_chain, rx_chain, ev_chain;
	struct iovec iov[VIRTQ_MAX_SEGS];
	struct virtio_vsock_stats stats;
};

/*
 * Set the device up at guest address base and listen on p->uds_path.
 * reason gets one line on failure.
 */
int virtio_vsock_create(const struct virtio_vsock_params *p, const struct guest_mem *mem,
			uint64_t base, struct virtio_vsock **ret, char *reason,
			size_t reason_len) __must_check;
/* Closes every socket and unlinks the listening socket. NULL is fine. */
void virtio_vsock_destroy(struct virtio_vsock *v);
DEFINE_CLEANUP_FUNC(struct virtio_vsock, virtio_vsock_destroy)

/* The one fd the I/O thread watches (POLLIN); its number never changes. */
int virtio_vsock_event_fd(const struct virtio_vsock *v);
/* The vm_io_watch handler for virtio_vsock_event_fd(). */
void virtio_vsock_event_handler(void *v, short revents);

/*
 * End every stream and queue VIRTIO_VSOCK_EVENT_TRANSPORT_RESET for the
 * guest (delivered as soon as the event queue has a buffer). The guest
 * drops its connections and re-reads its CID; its listeners stay.
 */
void virtio_vsock_transport_reset(struct virtio_vsock *v);

/*
 * In a fork child: let go of everything inherited (it is the parent's:
 * no shutdown, no unlink, no change to the shared epoll), listen on
 * new_uds_path with a new epoll instance at the old epoll fd's number,
 * and queue a transport reset. Every queue is looked at again (a
 * notification may have been in flight) by the I/O thread when it next
 * polls the event fd: no interrupt is raised from here, so the order
 * against rewiring the transport's eventfds does not matter.
 */
int virtio_vsock_after_fork(struct virtio_vsock *v, const char *new_uds_path, char *reason,
			    size_t reason_len) __must_check;

/*
 * After a state restore in a new process: streams end, a transport reset
 * is queued, and every queue is looked at again on the I/O thread.
 */
void virtio_vsock_after_restore(struct virtio_vsock *v);
