// SPDX-License-Identifier: MIT
/*
 * devices/virtio-net.c driven through the transport as a driver would.
 * The backend is a datagram socketpair with TAP framing (one vnet header
 * + frame per datagram), so the device logic runs anywhere; the tests at
 * the end use a real TAP and skip, saying why, where there is none.
 */
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "virtio-net.h"
#include "virtio-test-ring.h"

#define BASE	       0xd0000000ull
#define TX_RING_BASE   0x2000000ull
#define RXBUF_GPA(i)   (0x800000ull + 0x10000ull * (i))	 /* 64 KiB each, 128 slots */
#define TXBUF_GPA(i)   (0x2200000ull + 0x20000ull * (i)) /* 128 KiB each, 64 slots */
#define QNUM	       256
#define W	       VRING_DESC_F_WRITE
#define N	       VRING_DESC_F_NEXT
#define HDR	       12
#define ALL_FEATURES   (~0ull)
#define F(bit)	       (1ull << (bit))
#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental */

struct fixture {
	struct test_ring rx, tx;
	struct virtio_net *net;
	int peer; /* the far end of the socketpair: "the network" */
	uint16_t rx_seen, tx_seen;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->net->vdev, off, &v, 4);
	return le32toh(v);
}

static void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->net->vdev, off, &v, 4);
}

static void setup_queue(struct fixture *f, uint32_t q, struct test_ring *t)
{
	ring_init(t, QNUM, VIRTQ_F_INDIRECT | VIRTQ_F_EVENT_IDX);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QNUM);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(t->base + RING_DESC));
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(t->base + RING_AVAIL));
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(t->base + RING_USED));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static uint64_t device_features(struct fixture *f)
{
	uint64_t v;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	v = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return v | (uint64_t)rd(f, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/* Linux's probe with the device's features & mask, both queues, DRIVER_OK. */
static void driver_init(struct fixture *f, uint64_t mask)
{
	uint64_t features;

	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	features = device_features(f) & mask;
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, VIRTIO_NET_Q_RX, &f->rx);
	setup_queue(f, VIRTIO_NET_Q_TX, &f->tx);
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	f->rx_seen = f->tx_seen = 0;
}

static bool needs_reset(struct fixture *f)
{
	return rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* A device on a fresh socketpair; sndbuf > 0 shrinks the device's send buffer. */
static void open_net(struct fixture *f, int sndbuf)
{
	struct virtio_net_params p = {.tap_fd_is_socket = true,
				      .mac = {0x06, 0xf0, 0x00, 0x11, 0x22, 0x33}};
	char why[256] = "";
	int sv[2];

	virtio_net_destroy(f->net);
	f->net = NULL;
	if (f->peer >= 0)
		close(f->peer);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
				 0);
	p.tap_fd = sv[0];
	assert_int_equal(virtio_net_create(&p, &f->rx.mem, BASE, &f->net, why, sizeof(why)), 0);
	close(sv[0]); /* the device has its own copy */
	f->peer = sv[1];
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || test_mem_init(&f->rx.mem, MiB(64)) < 0)
		return -1;
	f->tx.mem = f->rx.mem;
	f->tx.base = TX_RING_BASE;
	f->peer = -1;
	*state = f;
	open_net(f, 0);
	driver_init(f, ALL_FEATURES);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_net_destroy(f->net);
	if (f->peer >= 0)
		close(f->peer);
	test_mem_destroy(&f->rx.mem);
	free(f);
	return 0;
}

/* Run the I/O thread's handler while the event fd is readable. */
static void serve(struct fixture *f)
{
	for (int i = 0; i < 10000; i++) {
		struct pollfd p = {.fd = virtio_net_event_fd(f->net), .events = POLLIN};

		if (poll(&p, 1, 0) <= 0)
			return;
		virtio_net_event_handler(f->net, POLLIN);
	}
	fail_msg("the event fd never goes quiet");
}

static void put_hdr(uint8_t *p, uint8_t flags, uint8_t gso_type)
{
	struct virtio_net_hdr_v1 h = {.flags = flags, .gso_type = gso_type};

	memcpy(p, &h, sizeof(h));
}

static void fill(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 8));
}

/* "The network" sends one packet: a header and a patterned frame. */
static void peer_send(struct fixture *f, uint8_t flags, uint8_t gso, uint32_t frame_len,
		      uint8_t seed)
{
	static uint8_t pkt[HDR + VIRTIO_NET_MAX_FRAME];

	put_hdr(pkt, flags, gso);
	/* num_buffers from the backend is garbage the device must overwrite. */
	pkt[10] = pkt[11] = 0xee;
	fill(pkt + HDR, frame_len, seed);
	assert_int_equal(send(f->peer, pkt, HDR + frame_len, 0), HDR + frame_len);
}

static void post_rx(struct fixture *f, uint16_t slot, uint32_t len)
{
	memset(gpa(&f->rx, RXBUF_GPA(slot)), 0xaa, len);
	ring_desc(&f->rx, slot, RXBUF_GPA(slot), len, W, 0);
	ring_publish(&f->rx, slot);
}

static void kick(struct fixture *f, uint32_t q)
{
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void used_rx(struct fixture *f, uint16_t i, uint32_t *id, uint32_t *len)
{
	ring_used_elem(&f->rx, i, id, len);
}

static uint16_t num_buffers(struct fixture *f, uint16_t slot)
{
	uint16_t v;

	memcpy(&v, gpa(&f->rx, RXBUF_GPA(slot) + 10), 2);
	return le16toh(v);
}

/* One packet as the guest sends it: header and frame in one or two descriptors. */
static void queue_tx(struct fixture *f, uint16_t slot, uint32_t frame_len, uint8_t seed, bool split)
{
	uint8_t *p = gpa(&f->tx, TXBUF_GPA(slot));
	uint16_t d = (uint16_t)(2 * slot);

	put_hdr(p, 0, VIRTIO_NET_HDR_GSO_NONE);
	fill(p + HDR, frame_len, seed);
	if (split) {
		ring_desc(&f->tx, d, TXBUF_GPA(slot), HDR, N, (uint16_t)(d + 1));
		ring_desc(&f->tx, (uint16_t)(d + 1), TXBUF_GPA(slot) + HDR, frame_len, 0, 0);
	} else {
		ring_desc(&f->tx, d, TXBUF_GPA(slot), HDR + frame_len, 0, 0);
	}
	ring_publish(&f->tx, d);
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint8_t cfg[8];
	uint64_t feat = device_features(f);

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 1);
	virtio_mmio_ops.read(&f->net->vdev, VIRTIO_MMIO_CONFIG, cfg, 8);
	assert_memory_equal(cfg, "\x06\xf0\x00\x11\x22\x33", 6);
	assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	assert_true(feat & F(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(feat & F(VIRTIO_NET_F_GUEST_TSO4));
	assert_true(feat & F(VIRTIO_NET_F_HOST_TSO6));
	assert_true(feat & F(VIRTIO_NET_F_MAC));
	assert_false(feat & F(VIRTIO_NET_F_CTRL_VQ));
	assert_false(feat & F(VIRTIO_NET_F_HOST_UFO));
}

static void test_tx(void **state)
{
	struct fixture *f = *state;
	uint8_t got[2048];
	uint32_t id, len;

	queue_tx(f, 0, 100, 1, true);
	queue_tx(f, 1, 1514, 2, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_int_equal(ring_used_idx(&f->tx), 2);
	ring_used_elem(&f->tx, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), HDR + 100);
	assert_memory_equal(got, gpa(&f->tx, TXBUF_GPA(0)), HDR + 100);
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), HDR + 1514);
	assert_memory_equal(got, gpa(&f->tx, TXBUF_GPA(1)), HDR + 1514);
	assert_int_equal(f->net->stats.tx_packets, 2);
	assert_int_equal(f->net->stats.tx_bytes, 1614);
}

static void test_rx(void **state)
{
	struct fixture *f = *state;
	uint8_t want[HDR + 60];
	uint32_t id, len;

	driver_init(f, ALL_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	post_rx(f, 0, 2048);
	peer_send(f, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_GSO_NONE, 60, 7);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	used_rx(f, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, HDR + 60);
	put_hdr(want, VIRTIO_NET_HDR_F_DATA_VALID, 0);
	want[10] = 1, want[11] = 0; /* num_buffers is 1 without MRG_RXBUF */
	fill(want + HDR, 60, 7);
	assert_memory_equal(gpa(&f->rx, RXBUF_GPA(0)), want, sizeof(want));
	assert_int_equal(f->net->stats.rx_packets, 1);
	assert_int_equal(f->net->stats.rx_bytes, 60);
}

/* Without GUEST_CSUM/TSO: flags zeroed, and what the guest cannot take is dropped. */
static void test_rx_header_rules(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	driver_init(f, ALL_FEATURES & ~(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |
					F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN)));
	post_rx(f, 0, 4096);
	post_rx(f, 1, 4096);
	peer_send(f, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 100, 1);
	peer_send(f, 0, VIRTIO_NET_HDR_GSO_TCPV4, 100, 2);
	peer_send(f, VIRTIO_NET_HDR_F_DATA_VALID, 0, 100, 3);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	used_rx(f, 0, &id, &len);
	assert_int_equal(len, HDR + 100);
	assert_int_equal(*(uint8_t *)gpa(&f->rx, RXBUF_GPA(0)), 0); /* flags */
	assert_int_equal(*(uint8_t *)gpa(&f->rx, RXBUF_GPA(0) + HDR), 3);
	assert_int_equal(f->net->stats.rx_drops, 2);
}

static void test_rx_mergeable(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len, lens[4] = {1500, 1500, 1500, HDR + 5000 - 4500};
	uint8_t *got = malloc(HDR + 5000), want[5000];
	uint32_t off = 0;

	for (uint16_t i = 0; i < 6; i++)
		post_rx(f, i, 1500);
	peer_send(f, 0, 0, 5000, 9);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 4);
	for (uint16_t i = 0; i < 4; i++) {
		used_rx(f, i, &id, &len);
		assert_int_equal(id, i);
		assert_int_equal(len, lens[i]);
		memcpy(got + off, gpa(&f->rx, RXBUF_GPA(i)), len);
		off += len;
	}
	assert_int_equal(num_buffers(f, 0), 4);
	fill(want, sizeof(want), 9);
	assert_memory_equal(got + HDR, want, sizeof(want));
	free(got);
	/* A small one next takes one buffer, num_buffers 1. */
	peer_send(f, 0, 0, 64, 1);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 5);
	used_rx(f, 4, &id, &len);
	assert_int_equal(id, 4);
	assert_int_equal(len, HDR + 64);
	assert_int_equal(num_buffers(f, 4), 1);
}

/*
 * Too few buffers: nothing is used (no first buffer published without
 * its mates) and nothing is kept; the rx kick after more buffers
 * delivers the packet whole.
 */
static void test_rx_waits_for_buffers(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->net->vdev.queues[VIRTIO_NET_Q_RX];
	uint32_t id, len;

	peer_send(f, 0, 0, 4000, 5);
	serve(f);
	assert_int_equal(f->net->rx.len, HDR + 4000);
	post_rx(f, 0, 1500);
	post_rx(f, 1, 1500);
	kick(f, VIRTIO_NET_Q_RX);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	assert_int_equal(vq->last_avail_idx, 0);
	/* EVENT_IDX: the driver is asked to kick at its next buffer. */
	assert_int_equal(ring_avail_event(&f->rx), 2);
	post_rx(f, 2, 1500);
	kick(f, VIRTIO_NET_Q_RX);
	assert_int_equal(ring_used_idx(&f->rx), 3);
	assert_int_equal(num_buffers(f, 0), 3);
	used_rx(f, 2, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, HDR + 4000 - 3000);
	assert_int_equal(f->net->rx.len, 0);
	assert_int_equal(f->net->stats.rx_drops, 0);

	/* The same without MRG_RXBUF: one buffer, posted after the packet came. */
	driver_init(f, ALL_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	peer_send(f, 0, 0, 200, 6);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	post_rx(f, 0, 2048);
	kick(f, VIRTIO_NET_Q_RX);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	used_rx(f, 0, &id, &len);
	assert_int_equal(len, HDR + 200);
}

/* Without MRG_RXBUF a packet larger than the buffer is dropped; the buffer stays. */
static void test_rx_too_big(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	driver_init(f, ALL_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	post_rx(f, 0, 100);
	peer_send(f, 0, 0, 200, 1);
	peer_send(f, 0, 0, 50, 2);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	used_rx(f, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, HDR + 50);
	assert_int_equal(f->net->stats.rx_drops, 1);

	/* With it, a packet larger than the whole ring is dropped too, not waited for. */
	driver_init(f, ALL_FEATURES);
	for (uint16_t i = 0; i < QNUM; i++)
		post_rx(f, i, HDR);
	peer_send(f, 0, 0, 60000, 3);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	assert_int_equal(f->net->stats.rx_drops, 2);
	assert_int_equal(f->net->rx.len, 0);
	assert_int_equal(f->net->vdev.queues[VIRTIO_NET_Q_RX].last_avail_idx, 0);
}

/* One handler call moves at most the budget; the event fd stays readable for the rest. */
static void test_rx_budget(void **state)
{
	struct fixture *f = *state;
	struct pollfd p = {.fd = virtio_net_event_fd(f->net), .events = POLLIN};

	driver_init(f, ALL_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	for (uint16_t i = 0; i < 128; i++)
		post_rx(f, i, 2048);
	for (int i = 0; i < 100; i++)
		peer_send(f, 0, 0, 100, (uint8_t)i);
	virtio_net_event_handler(f->net, POLLIN);
	assert_int_equal(ring_used_idx(&f->rx), VIRTIO_NET_RX_BUDGET);
	assert_int_equal(poll(&p, 1, 0), 1);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 100);
	for (uint16_t i = 0; i < 100; i++)
		assert_int_equal(*(uint8_t *)gpa(&f->rx, RXBUF_GPA(i) + HDR), (uint8_t)i);
	assert_int_equal(poll(&p, 1, 0), 0);
}

static void test_tx_malformed(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[16];

	/* Shorter than header + Ethernet header. */
	ring_desc(&f->tx, 0, TXBUF_GPA(0), HDR + 13, 0, 0);
	ring_publish(&f->tx, 0);
	kick(f, VIRTIO_NET_Q_TX);
	assert_true(needs_reset(f));
	assert_int_equal(ring_used_idx(&f->tx), 1);

	/* A device-writable part. */
	driver_init(f, ALL_FEATURES);
	queue_tx(f, 0, 100, 1, true);
	ring_desc(&f->tx, 1, TXBUF_GPA(0) + HDR, 100, W, 0);
	kick(f, VIRTIO_NET_Q_TX);
	assert_true(needs_reset(f));

	/* Over 64 KiB + headers. */
	driver_init(f, ALL_FEATURES);
	ring_desc(&f->tx, 0, TXBUF_GPA(0), HDR + VIRTIO_NET_MAX_FRAME + 1, 0, 0);
	ring_publish(&f->tx, 0);
	kick(f, VIRTIO_NET_Q_TX);
	assert_true(needs_reset(f));
	assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), -1);

	/* The largest frame goes through. */
	driver_init(f, ALL_FEATURES);
	queue_tx(f, 0, VIRTIO_NET_MAX_FRAME, 1, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_false(needs_reset(f));
	assert_int_equal(recv(f->peer, buf, sizeof(buf), MSG_TRUNC), HDR + VIRTIO_NET_MAX_FRAME);
}

/* Headers the guest did not negotiate are dropped, without failing the device. */
static void test_tx_header_rules(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[256];

	driver_init(f, ALL_FEATURES & ~(F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_CSUM) |
					F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN)));
	queue_tx(f, 0, 100, 1, false);
	put_hdr(gpa(&f->tx, TXBUF_GPA(0)), 0, VIRTIO_NET_HDR_GSO_TCPV4);
	queue_tx(f, 1, 100, 1, false);
	put_hdr(gpa(&f->tx, TXBUF_GPA(1)), VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
	queue_tx(f, 2, 100, 1, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_false(needs_reset(f));
	assert_int_equal(ring_used_idx(&f->tx), 3);
	assert_int_equal(f->net->stats.tx_drops, 2);
	assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), HDR + 100);
	assert_int_equal(recv(f->peer, buf, sizeof(buf), 0), -1);
}

/*
 * The backend pushes back (EAGAIN): the device stops, leaves the chain
 * on the ring and resumes on EPOLLOUT. Nothing lost, nothing reordered.
 */
static void test_tx_backpressure(void **state)
{
	struct fixture *f = *state;
	enum { NR = 64, LEN = 1400 };
	uint8_t got[HDR + LEN];
	uint32_t seen = 0;

	open_net(f, 4096);
	driver_init(f, ALL_FEATURES);
	for (uint16_t i = 0; i < NR; i++)
		queue_tx(f, i, LEN, (uint8_t)i, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_true(f->net->tx.blocked);
	assert_true(ring_used_idx(&f->tx) < NR);
	assert_int_equal(f->net->vdev.queues[VIRTIO_NET_Q_TX].last_avail_idx,
			 ring_used_idx(&f->tx));
	for (int round = 0; round < 1000 && seen < NR; round++) {
		while (recv(f->peer, got, sizeof(got), 0) == (ssize_t)sizeof(got)) {
			assert_int_equal(got[HDR], (uint8_t)seen);
			seen++;
		}
		serve(f);
	}
	assert_int_equal(seen, NR);
	assert_int_equal(ring_used_idx(&f->tx), NR);
	assert_int_equal(f->net->stats.tx_drops, 0);
	assert_false(f->net->tx.blocked);
}

/*
 * Pause for a snapshot with a packet waiting: no buffer is in the
 * device's hands (the saved rings are complete), and after the thaw the
 * packet still arrives.
 */
static void test_quiesce(void **state)
{
	struct fixture *f = *state;
	struct virtq *rxq = &f->net->vdev.queues[VIRTIO_NET_Q_RX];

	post_rx(f, 0, 1500);
	peer_send(f, 0, 0, 3000, 4);
	serve(f);
	virtio_mmio_quiesce(&f->net->vdev);
	assert_int_equal(rxq->last_avail_idx, rxq->used_idx);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	/* Frozen: a buffer and a kick do nothing... */
	post_rx(f, 1, 1500);
	post_rx(f, 2, 1500);
	kick(f, VIRTIO_NET_Q_RX);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	/* ...until the thaw. */
	virtio_mmio_thaw(&f->net->vdev);
	assert_int_equal(ring_used_idx(&f->rx), 3);
	assert_int_equal(num_buffers(f, 0), 3);
}

/* A reset drops the waiting packet (read under the old negotiation). */
static void test_reset(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	peer_send(f, 0, 0, 3000, 4);
	serve(f);
	assert_int_equal(f->net->rx.len, HDR + 3000);
	driver_init(f, ALL_FEATURES);
	assert_int_equal(f->net->rx.len, 0);
	assert_int_equal(f->net->stats.rx_drops, 1);
	post_rx(f, 0, 1500);
	peer_send(f, 0, 0, 100, 4);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	used_rx(f, 0, &id, &len);
	assert_int_equal(len, HDR + 100);
}

static void test_after_fork(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_params p = {.tap_fd_is_socket = true, .mac = {0x06, 0, 0, 0, 0, 0x42}};
	int ev = virtio_net_event_fd(f->net), sv[2], old_peer = f->peer;
	uint32_t gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	uint8_t cfg[8], got[256];
	char why[256];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	p.tap_fd = sv[0];
	/* Something waits on the parent's backend: the child must never see it. */
	peer_send(f, 0, 0, 100, 1);
	assert_int_equal(virtio_net_after_fork(f->net, &p, why, sizeof(why)), 0);
	close(sv[0]);
	f->peer = sv[1];
	assert_int_equal(virtio_net_event_fd(f->net), ev);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	virtio_mmio_ops.read(&f->net->vdev, VIRTIO_MMIO_CONFIG, cfg, 8);
	assert_memory_equal(cfg, "\x06\x00\x00\x00\x00\x42", 6);

	post_rx(f, 0, 1500);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	peer_send(f, 0, 0, 100, 2);
	serve(f);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(*(uint8_t *)gpa(&f->rx, RXBUF_GPA(0) + HDR), 2);
	queue_tx(f, 0, 100, 3, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), HDR + 100);
	assert_int_equal(recv(old_peer, got, sizeof(got), 0), -1);
	close(old_peer);

	/* No link: transmissions are dropped and counted, the link reads down. */
	memset(&p, 0, sizeof(p));
	p.tap_fd = -1;
	assert_int_equal(virtio_net_after_fork(f->net, &p, why, sizeof(why)), 0);
	virtio_mmio_ops.read(&f->net->vdev, VIRTIO_MMIO_CONFIG, cfg, 8);
	assert_int_equal(cfg[6] | cfg[7] << 8, 0);
	assert_true(cfg[0] & 2); /* random, locally administered */
	queue_tx(f, 1, 100, 3, false);
	kick(f, VIRTIO_NET_Q_TX);
	assert_int_equal(ring_used_idx(&f->tx), 2);
	assert_int_equal(f->net->stats.tx_drops, 1);
	serve(f);
}

static void test_bad_params(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_params p = {.tap_fd = -1, .mac = {0x01, 0, 0, 0, 0, 1}};
	struct virtio_net *net = NULL;
	char why[256] = "";
	int pfd[2];

	assert_int_equal(virtio_net_create(&p, &f->rx.mem, BASE, &net, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "multicast"));
	/* A pipe is neither a TAP nor a datagram socket. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	p.mac[0] = 0x06;
	p.tap_fd = pfd[0];
	assert_true(virtio_net_create(&p, &f->rx.mem, BASE, &net, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "not an attached TAP"));
	p.tap_fd_is_socket = true;
	assert_int_equal(virtio_net_create(&p, &f->rx.mem, BASE, &net, why, sizeof(why)), -EINVAL);
	assert_null(net);
	close(pfd[0]);
	close(pfd[1]);
}

/* ---- a real TAP (needs /dev/net/tun and CAP_NET_ADMIN) ---- */

static bool tap_usable(void)
{
	struct tap t;
	char why[256];

	if (tap_open("fvmprobe%d", &t, why, sizeof(why)) < 0) {
		print_message("skipped: no TAP here: %s\n", why);
		return false;
	}
	tap_close(&t);
	return true;
}

static void test_tap_adopt(void **state)
{
	struct tap t, a;
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	char why[256];
	int fd;

	(void)state;
	if (!tap_usable())
		skip();
	assert_int_equal(tap_open("fvmt%d", &t, why, sizeof(why)), 0);
	assert_int_equal(strncmp(t.name, "fvmt", 4), 0);
	assert_int_equal(tap_adopt(t.fd, &a, why, sizeof(why)), 0);
	assert_string_equal(a.name, t.name);
	assert_int_not_equal(a.fd, t.fd);
	tap_close(&a);
	tap_close(&t);
	assert_int_equal(t.fd, -1);

	/* Without IFF_VNET_HDR the framing would be wrong: refused, with a reason. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "fvmt%%d");
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_int_equal(tap_adopt(fd, &a, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "IFF_VNET_HDR"));
	close(fd);

	assert_int_equal(tap_open("", &t, why, sizeof(why)), -EINVAL);
	assert_int_equal(tap_open("a-name-far-too-long-for-linux", &t, why, sizeof(why)), -EINVAL);
}

static int set_up(const char *ifname)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (r == 0)
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

/* Offloads follow the negotiation; one frame each way through the kernel. */
static void test_real_tap(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_params p = {.tap_name = "fvmt%d", .tap_fd = -1};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(TEST_ETHERTYPE)};
	uint8_t frame[60], got[256];
	struct pollfd pp;
	char why[256];
	bool found = false;
	int ps;

	if (!tap_usable())
		skip();
	virtio_net_destroy(f->net);
	f->net = NULL;
	assert_int_equal(virtio_net_create(&p, &f->rx.mem, BASE, &f->net, why, sizeof(why)), 0);
	assert_int_equal(f->net->tap.offloads, 0);
	driver_init(f, ALL_FEATURES);
	assert_int_equal(f->net->tap.offloads,
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	driver_init(f, ALL_FEATURES & ~F(VIRTIO_NET_F_GUEST_CSUM));
	assert_int_equal(f->net->tap.offloads, 0);

	assert_int_equal(set_up(f->net->tap.name), 0);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
	assert_true(ps >= 0);
	sll.sll_ifindex = (int)if_nametoindex(f->net->tap.name);
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	/* Guest to host: broadcast, our ethertype. */
	memset(frame, 0xff, 6);
	memcpy(frame + 6, "\x06\xf0\x00\x11\x22\x33", 6);
	frame[12] = TEST_ETHERTYPE >> 8, frame[13] = TEST_ETHERTYPE & 0xff;
	fill(frame + 14, sizeof(frame) - 14, 5);
	put_hdr(gpa(&f->tx, TXBUF_GPA(0)), 0, 0);
	memcpy(gpa(&f->tx, TXBUF_GPA(0) + HDR), frame, sizeof(frame));
	ring_desc(&f->tx, 0, TXBUF_GPA(0), HDR + sizeof(frame), 0, 0);
	ring_publish(&f->tx, 0);
	kick(f, VIRTIO_NET_Q_TX);
	assert_int_equal(f->net->stats.tx_packets, 1);
	pp = (struct pollfd){.fd = ps, .events = POLLIN};
	assert_int_equal(poll(&pp, 1, 2000), 1);
	assert_int_equal(recv(ps, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));

	/* Host to guest: the kernel may send its own frames (IPv6) too; find ours. */
	for (uint16_t i = 0; i < 16; i++)
		post_rx(f, i, 2048);
	kick(f, VIRTIO_NET_Q_RX);
	fill(frame + 14, sizeof(frame) - 14, 6);
	assert_int_equal(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 sizeof(frame));
	for (int round = 0; round < 200 && !found; round++) {
		struct pollfd ep = {.fd = virtio_net_event_fd(f->net), .events = POLLIN};

		if (poll(&ep, 1, 10) > 0)
			virtio_net_event_handler(f->net, POLLIN);
		for (uint16_t i = 0; i < ring_used_idx(&f->rx) && !found; i++) {
			uint32_t id, len;

			used_rx(f, i, &id, &len);
			found = len == HDR + sizeof(frame) &&
				memcmp(gpa(&f->rx, RXBUF_GPA(id) + HDR), frame, sizeof(frame)) == 0;
		}
	}
	assert_true(found);
	close(ps);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_config),
	    T(test_tx),
	    T(test_rx),
	    T(test_rx_header_rules),
	    T(test_rx_mergeable),
	    T(test_rx_waits_for_buffers),
	    T(test_rx_too_big),
	    T(test_rx_budget),
	    T(test_tx_malformed),
	    T(test_tx_header_rules),
	    T(test_tx_backpressure),
	    T(test_quiesce),
	    T(test_reset),
	    T(test_after_fork),
	    T(test_bad_params),
	    cmocka_unit_test(test_tap_adopt),
	    T(test_real_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
