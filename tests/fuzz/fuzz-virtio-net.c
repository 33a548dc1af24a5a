// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for virtio-net's queue handling: the guest (its
 * negotiated features, both rings and every buffer) and the network
 * (packets arriving on the backend) come from the input. The device runs
 * on a datagram socketpair backend through the real transport; transmit
 * and receive kicks and backend events are served until quiet. Whatever
 * the guest wrote, the device must stay inside guest RAM, never crash,
 * and at worst fail itself (NEEDS_RESET).
 *
 * Input: le32 features (masked to what the device offers), u8 number of
 * packets (0..7), then per packet le16 length, then the RAM image; the
 * packets' bytes are taken from the RAM image.
 */
#include <assert.h>
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/virtio_config.h>

#include "devices/virtio-net.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { RAM = 256 * 1024, QNUM = 8, HEADER = 5, PACKETS = 0x800 };
/*
 * Both rings packed at the start of RAM, so that short inputs reach the
 * descriptors and available rings: desc at +0, avail at +0x100, used at
 * +0x200 of each queue's base. Packet bytes come from PACKETS on.
 */
static const uint64_t ring_base[2] = {0x000, 0x400};

static void wr(struct virtio_net *n, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&n->vdev, off, &v, 4);
}

static void setup_queue(struct virtio_net *n, uint32_t q)
{
	wr(n, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(n, VIRTIO_MMIO_QUEUE_NUM, QNUM);
	wr(n, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)ring_base[q]);
	wr(n, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)ring_base[q] + 0x100);
	wr(n, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)ring_base[q] + 0x200);
	wr(n, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void serve(struct virtio_net *n, int peer)
{
	uint8_t buf[2048];

	for (int i = 0; i < 8; i++) {
		virtio_net_event_handler(n, 0);
		/* The network takes what was sent, so back-pressure clears. */
		while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = {.memfd = -1, .size = RAM, .nr_regions = 1};
	struct virtio_net_params p = {.tap_fd_is_socket = true, .mac = {0x06}};
	struct virtio_net *n = NULL;
	uint32_t features, nr_packets, off;
	char why[256];
	uint8_t *ram;
	int sv[2];

	if (size < HEADER)
		return 0;
	log_set_level(LOG_ERR);
	features = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
		   (uint32_t)data[3] << 24;
	nr_packets = data[4] & 7;
	off = HEADER + 2 * nr_packets;
	if (size < off)
		return 0;
	ram = calloc(1, RAM);
	assert(ram);
	memcpy(ram, data + off, size - off < RAM ? size - off : RAM);
	mem.host = ram;
	mem.regions[0] = (struct guest_region){.gpa = 0, .size = RAM, .memfd_offset = 0};
	assert(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	p.tap_fd = sv[0];
	assert(virtio_net_create(&p, &mem, 0xd0000000, &n, why, sizeof(why)) == 0);
	close(sv[0]);

	wr(n, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(n, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(n, VIRTIO_MMIO_DRIVER_FEATURES, features & (uint32_t)n->vdev.device_features);
	wr(n, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(n, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(n, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(n, VIRTIO_NET_Q_RX);
	setup_queue(n, VIRTIO_NET_Q_TX);
	wr(n, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);

	/* The network's packets: lengths from the header, bytes from the RAM image. */
	for (uint32_t i = 0; i < nr_packets; i++) {
		uint32_t len = (uint32_t)data[HEADER + 2 * i] | (uint32_t)data[HEADER + 2 * i + 1]
								    << 8;

		(void)!send(sv[1], ram + PACKETS, len % (RAM - PACKETS), MSG_DONTWAIT);
	}
	wr(n, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_Q_TX);
	serve(n, sv[1]);
	wr(n, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_Q_RX);
	serve(n, sv[1]);
	/* A pause for a snapshot must leave no buffer in the device's hands. */
	virtio_mmio_quiesce(&n->vdev);
	for (uint32_t q = 0; q < 2; q++)
		assert(!n->vdev.queues[q].ready || (n->vdev.status & VIRTIO_CONFIG_S_NEEDS_RESET) ||
		       n->vdev.queues[q].last_avail_idx == n->vdev.queues[q].used_idx);
	virtio_mmio_thaw(&n->vdev);

	virtio_net_destroy(n);
	close(sv[1]);
	free(ram);
	return 0;
}
