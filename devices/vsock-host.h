/* SPDX-License-Identifier: MIT */
/*
 * The host side of virtio-vsock: unix sockets, in Firecracker's protocol.
 *
 *  - Host to guest: a client connects to the listening socket (uds_path)
 *    and writes "CONNECT <port>\n"; the stream to guest port <port>
 *    follows on the same socket once the device answers "OK <hostport>\n".
 *  - Guest to host: a guest connecting to (cid 2, port P) reaches
 *    whoever listens on "<uds_path>_<P>".
 *
 * This file owns the sockets and nothing virtio: the listener, the table
 * of connections (fixed size, slots reused with a generation so stale
 * epoll events are told apart), the handshake, the bytes a socket could
 * not take yet, one epoll fd for all of it and a timerfd for deadlines.
 * The protocol (what to tell the guest, when) is virtio-vsock.c's.
 * Nothing here locks: the device's transport lock covers every call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util.h"

enum {
	/* Connections at once, in any state; beyond it clients and REQUESTs are refused. */
	VSOCK_MAX_CONNS = 1024,
	VSOCK_HASH_SIZE = 2048,
	/* Our receive buffer per stream (buf_alloc): guest bytes the socket did not take. */
	VSOCK_BUF_ALLOC = 256 * 1024,
	/* "CONNECT 4294967295\n" is 19 bytes; anything longer is garbage. */
	VSOCK_LINE_MAX = 32,
	/* Handshake, answer to a REQUEST, flushing after both sides shut. */
	VSOCK_TIMEOUT_MS = 2000,
	VSOCK_LISTEN_BACKLOG = 128,
};

/* Ports we pick for host-initiated streams (never VMADDR_PORT_ANY, -1). */
#define VSOCK_FIRST_HOST_PORT (1u << 30)

/* epoll data of the two fixed fds; a connection's is (gen << 32) | slot. */
#define VSOCK_TAG_LISTEN 0xfffffff0u
#define VSOCK_TAG_TIMER	 0xfffffff1u

enum vsock_conn_state {
	VSOCK_CONN_FREE,
	/* A client is writing its CONNECT line; the guest knows nothing yet. */
	VSOCK_CONN_HANDSHAKE,
	/* Host-initiated: REQUEST queued or sent, waiting for RESPONSE or RST. */
	VSOCK_CONN_CONNECTING,
	VSOCK_CONN_ESTABLISHED,
	/* Both directions shut: writing out what is buffered, then RST. */
	VSOCK_CONN_CLOSING,
	/* Socket closed; the slot lives until the RST owed to the guest is sent. */
	VSOCK_CONN_ZOMBIE,
	VSOCK_CONN_STATE_MAX,
};

/* An intrusive doubly-linked list (conns never move: they live in one array). */
struct vsock_link {
	struct vsock_link *prev, *next;
};

static inline void vsock_list_init(struct vsock_link *head)
{
	head->prev = head->next = head;
}

static inline bool vsock_list_empty(const struct vsock_link *head)
{
	return head->next == head;
}

static inline bool vsock_linked(const struct vsock_link *node)
{
	return node->next != NULL;
}

static inline void vsock_list_append(struct vsock_link *head, struct vsock_link *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static inline void vsock_list_del(struct vsock_link *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = NULL;
}

#define vsock_conn_of(link, member)                                                                \
	((struct vsock_conn *)((char *)(link)-offsetof(struct vsock_conn, member)))

struct vsock_conn {
	enum vsock_conn_state state;
	int fd;
	uint32_t slot;
	uint32_t gen;
	uint32_t local_port; /* ours, at cid 2 */
	uint32_t peer_port;  /* the guest's */
	int32_t hash_next;
	bool hashed;
	bool watched;
	uint32_t events;      /* what epoll watches for now */
	uint64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */

	/* HANDSHAKE: the CONNECT line so far. */
	uint32_t line_len;
	char line[VSOCK_LINE_MAX];

	/* Flow control (virtio 5.10.6.3); the counters wrap. */
	uint32_t tx_cnt;	 /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc; /* the guest's receive buffer */
	uint32_t peer_fwd_cnt;	 /* bytes the guest has consumed */
	uint32_t fwd_cnt;	 /* guest bytes written to the socket */
	uint32_t fwd_told;	 /* fwd_cnt as of our last packet to the guest */

	/* Guest bytes the socket has not taken yet: a ring of VSOCK_BUF_ALLOC bytes. */
	uint8_t *buf;
	uint32_t buf_head;
	uint32_t buf_len;

	uint8_t guest_shut;	     /* VIRTIO_VSOCK_SHUTDOWN_* the guest sent */
	bool peer_eof;		     /* the unix peer will send no more */
	bool rd_shut;		     /* shutdown(SHUT_RD) done */
	bool wr_shut;		     /* shutdown(SHUT_WR) done */
	bool request_sent;	     /* host-initiated: the guest has seen our REQUEST */
	bool gated;		     /* host-initiated: REQUEST held back (a reset in flight) */
	uint8_t pending;	     /* control packets owed to the guest (virtio-vsock.c) */
	struct vsock_link ctrl_link; /* on the device's control FIFO */
	struct vsock_link rx_link;   /* waiting for rx buffers */
};

struct vsock_host {
	int epoll_fd;
	int listen_fd;
	int timer_fd;
	/* Paused for want of fds: resumed when a connection goes, or at listen_retry_ms. */
	bool listen_paused;
	uint64_t listen_retry_ms;
	char path[108];
	/* The listening socket's file, unlinked at the end only if still ours. */
	pid_t owner_pid;
	dev_t path_dev;
	ino_t path_ino;
	/* VSOCK_TIMEOUT_MS unless a test shortens it. */
	uint32_t timeout_ms;
	uint64_t armed_ms;
	uint32_t next_port;
	uint32_t nr_conns;
	uint32_t nr_free;
	struct vsock_conn *conns; /* [VSOCK_MAX_CONNS] */
	uint16_t free_slots[VSOCK_MAX_CONNS];
	int32_t hash[VSOCK_HASH_SIZE];
};

uint64_t vsock_host_now_ms(void);

/* Empty table, no fds yet. */
int vsock_host_init(struct vsock_host *h) __must_check;

/*
 * Listen on path (a stale socket there is replaced; anything else, or a
 * socket someone still listens on, is refused) with a new epoll fd and
 * timerfd. When h already has an epoll fd number (fork child), the new
 * epoll instance takes that number, so watches on it stay valid.
 */
int vsock_host_start(struct vsock_host *h, const char *path, char *reason,
		     size_t reason_len) __must_check;

/* Close everything; the socket file is unlinked if this process made it. */
void vsock_host_stop(struct vsock_host *h);

/*
 * Fork child: every fd inherited belongs to the parent. Close our copies
 * without shutdown(), epoll_ctl() or unlink(), and empty the table. The
 * epoll fd number is kept for vsock_host_start() to reuse.
 */
void vsock_host_forget(struct vsock_host *h);

struct vsock_conn *vsock_host_conn_new(struct vsock_host *h, int fd, enum vsock_conn_state state);
/* Close the socket (if any) and free the slot; the caller has unlinked it from its lists. */
void vsock_host_conn_free(struct vsock_host *h, struct vsock_conn *c);
/* Close the socket and drop its buffer; the slot stays. */
void vsock_host_conn_close_fd(struct vsock_host *h, struct vsock_conn *c);
/* The live connection an epoll event names, or NULL for a stale one. */
struct vsock_conn *vsock_host_conn_of(struct vsock_host *h, uint64_t data);

void vsock_host_hash(struct vsock_host *h, struct vsock_conn *c);
void vsock_host_unhash(struct vsock_host *h, struct vsock_conn *c);
struct vsock_conn *vsock_host_lookup(struct vsock_host *h, uint32_t local_port, uint32_t peer_port);
/* A host port for a new stream: counting up from VSOCK_FIRST_HOST_PORT, skipping ports in use. */
uint32_t vsock_host_pick_port(struct vsock_host *h);

/* Watch c's socket for events (0: not at all). */
int vsock_host_watch(struct vsock_host *h, struct vsock_conn *c, uint32_t events) __must_check;

/*
 * Take a new client into a HANDSHAKE slot with its deadline: 1 with the
 * slot, 0 when there is none (or no fd to take it with), -ENOSPC when
 * the table is full (the client is closed).
 */
int vsock_host_accept(struct vsock_host *h, struct vsock_conn **ret) __must_check;

/*
 * Read the CONNECT line, and not a byte beyond it (what follows is the
 * stream's). Once whole, the stream gets a host port and becomes
 * CONNECTING (hashed, with a deadline): 1. 0 for more to come, < 0 for
 * garbage, an overlong line or a client gone.
 */
int vsock_host_handshake(struct vsock_host *h, struct vsock_conn *c) __must_check;

/* Connect to "<path>_<port>" (a unix connect never blocks: it works or fails at once). */
int vsock_host_connect(const struct vsock_host *h, uint32_t port, int *ret_fd) __must_check;
/* Host-initiated: "OK <local_port>\n" to the client once the guest has answered. */
int vsock_host_send_ok(struct vsock_conn *c) __must_check;

/* Anything to read? 1: bytes, 0: EOF, -EAGAIN: not now, else the socket failed. */
int vsock_host_peek(struct vsock_conn *c) __must_check;
/* Read into iov (guest memory); bytes read, 0 at EOF, or -errno. */
ssize_t vsock_host_read(struct vsock_conn *c, const struct iovec *iov, size_t cnt) __must_check;

/*
 * Send guest bytes to the socket, in order after those already buffered;
 * what it does not take now is buffered (the caller checked the room).
 * Returns the bytes the socket took (older ones included) or -errno.
 */
ssize_t vsock_host_write(struct vsock_conn *c, const struct iovec *iov, size_t cnt,
			 size_t len) __must_check;
/* Send buffered bytes; returns how many went or -errno. */
ssize_t vsock_host_flush(struct vsock_conn *c) __must_check;

/* Deadline in timeout_ms (on) or none (off); the timer follows. */
void vsock_host_set_deadline(struct vsock_host *h, struct vsock_conn *c, bool on);
/* Make the epoll fd readable at once (work for the I/O thread), through the timer. */
void vsock_host_wake(struct vsock_host *h);
/* After expiry: consume the timerfd and arm it for the earliest deadline left. */
void vsock_host_timer_ack(struct vsock_host *h);
void vsock_host_arm_timer(struct vsock_host *h);
