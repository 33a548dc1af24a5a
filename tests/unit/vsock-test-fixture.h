/* SPDX-License-Identifier: MIT */
/*
 * The virtio-vsock tests' fixture: the device at BASE in test RAM, three
 * fake rings driven as a guest driver would, real unix sockets in a temp
 * directory, and the guest's and the host's moves as helpers. Kick fds
 * are -1, so a QueueNotify write runs the device at once; socket events
 * run through the handler (pump()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include <linux/virtio_vsock.h>

#include "virtio-test-ring.h"
#include "virtio-vsock.h"

#define BASE	    0xd0000000ull
#define QNUM	    256
#define CID	    3u
#define HDR	    44u
#define GUEST_BUF   (256u * 1024)
#define RX_TARGET   128
#define RX_BUF(i)   (0x400000ull + 0x11000ull * (i))
#define RX_BUF_SIZE (HDR + 65536u)
#define TX_SLOTS    64
#define TX_BUF(i)   (0x1800000ull + 0x11000ull * (i))
#define EV_BUF(i)   (0x2e00000ull + 0x100ull * (i))
#define W	    VRING_DESC_F_WRITE
#define N	    VRING_DESC_F_NEXT

enum { RX, TX, EV };

struct fixture {
	struct guest_mem mem;
	struct test_ring q[3];
	struct virtio_vsock *v;
	char dir[64];
	char path[128];
	uint16_t rx_posted, rx_seen, tx_n, ev_posted;
	/* test_out_of_fds: undone in teardown, whatever happened. */
	struct rlimit nofile;
	bool nofile_lowered;
	int fillers[64];
	int nr_fillers;
	int fds_at_setup;
};

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags, buf_alloc, fwd_cnt;
	uint16_t type, op;
	const uint8_t *data;
};


#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

uint32_t rd(struct fixture *f, uint64_t off);
uint32_t read_ok_line(int fd);
void wr(struct fixture *f, uint64_t off, uint32_t val);
void driver_init(struct fixture *f);
int count_fds(void);
int setup(void **state);
int teardown(void **state);
void publish_rx(struct fixture *f, uint32_t n, uint32_t size, bool kick);
void post_rx(struct fixture *f, uint32_t n, uint32_t size);
void rx_refill(struct fixture *f);
void post_event(struct fixture *f);
bool rx_next(struct fixture *f, struct pkt *p);
struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t gport, uint32_t hport);
void tx_chain(struct fixture *f, const struct virtio_vsock_hdr *h, const void *payload,
	      uint32_t len, uint32_t split, uint16_t last_flags);
void tx_raw(struct fixture *f, const void *bytes, uint32_t len);
void tx_send(struct fixture *f, struct virtio_vsock_hdr h, const void *payload, uint32_t len);
void pump(struct fixture *f);
void expect_pkt(struct fixture *f, struct pkt *p, uint16_t op);
void expect_nothing(struct fixture *f);
int unix_connect(const char *path);
int unix_listen(const char *path);
int port_listen(struct fixture *f, uint32_t port);
void put(int fd, const void *buf, size_t len);
void puts_fd(int fd, const char *s);
void get(int fd, void *buf, size_t len);
void expect_eof(struct fixture *f, int fd);
bool fd_quiet(int fd);
int host_connect(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport);
int host_stream(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport);
int guest_stream(struct fixture *f, int lfd, uint32_t gport, uint32_t hport);
void guest_read(struct fixture *f, uint32_t gport, uint32_t hport, void *buf, size_t want);
void pattern(uint8_t *buf, size_t len, uint32_t seed);
void guest_handles_reset(struct fixture *f);
