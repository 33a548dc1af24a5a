// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for devices/virtio-vsock.c and vsock-host.c: arbitrary
 * tx chains from the guest, mixed with the other things that move the
 * device: rx buffers coming and going, host clients connecting, servers
 * behind "<uds>_1024" talking and hanging up, transport and device
 * resets, deadlines expiring at once. Guest RAM is exactly sized heap
 * memory, so ASan sees any access outside it.
 *
 * Input: a list of records. A record's first byte picks it:
 *   < 0xe0  a tx chain: u8 shape, le16 length, then the packet's bytes
 *           (header and payload). shape bits 0-1: segments - 1; bit 2:
 *           fix the header up (our CID pair, STREAM, len from the
 *           length, ports folded onto live ones), so that packets get
 *           past the checks and into the streams; bits 3-7: where
 *           segments are cut, and all ones: add a device-writable
 *           segment.
 *   0xe0    run the socket handler
 *   0xe1    servers: accept what is pending, each writes u8 * 64 bytes
 *   0xe2    post rx buffers: u8 size selector
 *   0xe3    transport reset
 *   0xe4    a host client: u8 guest port, then CONNECT and some bytes
 *   0xe5    close one server or client socket
 *   0xe6    device reset and a new driver probe
 *   0xe7    deadlines expire at once from now on
 *   0xe8    the device's sockets get the smallest send buffer (so guest
 *           bytes pile up in the device's own buffers)
 *   0xe9    servers and clients read what is waiting for them
 * Invariants checked: every tx chain comes back while the device is
 * live, every rx packet's header matches what was written, the tables
 * and buffers stay within their limits.
 */
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "devices/virtio-vsock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	RAM = 0x80000,
	QNUM = 64,
	HDR = 44,
	MAX_TX = 4000,
	MAX_FDS = 16,
	CID = 3,
	SERVER_PORT = 1024,
};
#define QBASE(q)  (0x1000ull * (q))
#define DESC(q)	  QBASE(q)
#define AVAIL(q)  (QBASE(q) + 0x400)
#define USED(q)	  (QBASE(q) + 0x800)
#define RINGS_END 0x3000ull
#define RX_BUF(i) (0x10000ull + 0x1000ull * (i))
#define TX_BUF	  0x50000ull
#define EV_BUF(i) (0x7f000ull + 0x10ull * (i))
#define BASE	  0xd0000000ull

struct harness {
	struct guest_mem mem;
	uint8_t *ram;
	struct virtio_vsock *v;
	uint16_t avail[3];
	uint16_t rx_seen;
	uint32_t rx_size[QNUM];
	uint16_t tx_published;
	int fds[MAX_FDS];
	uint32_t nr_fds;
};

static char tmp_dir[64], uds_path[96], server_path[128];
static int server_fd = -1;

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static void mmio_write(struct harness *h, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&h->v->vdev, off, &v, 4);
}

static uint32_t mmio_read(struct harness *h, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&h->v->vdev, off, &v, 4);
	return le32toh(v);
}

static void desc(struct harness *h, uint32_t q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *d = h->ram + DESC(q) + 16ull * i;
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	put16(d + 12, flags);
	put16(d + 14, next);
}

static void publish(struct harness *h, uint32_t q, uint16_t head)
{
	put16(h->ram + AVAIL(q) + 4 + 2ull * (h->avail[q] % QNUM), head);
	h->avail[q]++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(h->ram + AVAIL(q) + 2, h->avail[q]);
}

static void driver_init(struct harness *h)
{
	mmio_write(h, VIRTIO_MMIO_STATUS, 0);
	memset(h->ram, 0, RINGS_END);
	memset(h->avail, 0, sizeof(h->avail));
	h->rx_seen = 0;
	h->tx_published = 0;
	mmio_write(h, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	mmio_write(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_write(h, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	mmio_write(h, VIRTIO_MMIO_STATUS,
		   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK);
	for (uint32_t q = 0; q < 3; q++) {
		mmio_write(h, VIRTIO_MMIO_QUEUE_SEL, q);
		mmio_write(h, VIRTIO_MMIO_QUEUE_NUM, QNUM);
		mmio_write(h, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC(q));
		mmio_write(h, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL(q));
		mmio_write(h, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED(q));
		mmio_write(h, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	mmio_write(h, VIRTIO_MMIO_STATUS,
		   mmio_read(h, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	/* One event buffer, always there. */
	desc(h, 2, 0, EV_BUF(0), 8, VRING_DESC_F_WRITE, 0);
	publish(h, 2, 0);
	mmio_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
}

static bool device_failed(struct harness *h)
{
	return mmio_read(h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* What the device put on the rx ring must be what its header says. */
static void check_rx(struct harness *h)
{
	uint16_t used = get16(h->ram + USED(0) + 2);

	for (; h->rx_seen != used; h->rx_seen++) {
		const uint8_t *e = h->ram + USED(0) + 4 + 8ull * (h->rx_seen % QNUM);
		struct virtio_vsock_hdr hdr;
		uint32_t id, len;

		memcpy(&id, e, 4);
		memcpy(&len, e + 4, 4);
		id = le32toh(id);
		len = le32toh(len);
		assert(id < QNUM);
		assert(len <= h->rx_size[id]);
		if (len == 0)
			continue; /* handed back unused: the device failed */
		assert(len >= HDR);
		memcpy(&hdr, h->ram + RX_BUF(id), HDR);
		assert(le32toh(hdr.len) == len - HDR);
		assert(le32toh(hdr.len) <= VIRTIO_VSOCK_MAX_PKT);
		assert(le64toh(hdr.dst_cid) == CID);
		assert(le32toh(hdr.buf_alloc) == VSOCK_BUF_ALLOC);
	}
}

static void check_tables(struct harness *h)
{
	const struct vsock_host *host = &h->v->host;

	assert(host->nr_conns + host->nr_free == VSOCK_MAX_CONNS);
	assert(h->v->rst_len <= VIRTIO_VSOCK_RST_MAX);
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
		assert(host->conns[i].buf_len <= VSOCK_BUF_ALLOC);
}

static void post_rx(struct harness *h, uint8_t sel)
{
	check_rx(h);
	while ((uint16_t)(h->avail[0] - h->rx_seen) < QNUM / 2) {
		uint16_t id = h->avail[0] % QNUM;
		uint32_t size = sel < 8 ? HDR + sel : 64u << (sel % 7);
		uint16_t flags = sel == 0xff ? 0 : VRING_DESC_F_WRITE;

		h->rx_size[id] = size;
		desc(h, 0, id, RX_BUF(id), size, flags, 0);
		publish(h, 0, id);
	}
	mmio_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void fix_header(uint8_t *pkt, uint32_t len)
{
	struct virtio_vsock_hdr hdr;

	memcpy(&hdr, pkt, HDR);
	hdr.src_cid = htole64(CID);
	hdr.dst_cid = htole64(2);
	hdr.type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	hdr.op = htole16(le16toh(hdr.op) % 8);
	hdr.len = htole32(len - HDR);
	hdr.src_port = htole32(le32toh(hdr.src_port) % 4);
	/* The server's port, a port nobody serves, or the first host ports we pick. */
	switch (le32toh(hdr.dst_port) % 4) {
	case 0:
		hdr.dst_port = htole32(SERVER_PORT);
		break;
	case 1:
		hdr.dst_port = htole32(SERVER_PORT + 1);
		break;
	default:
		hdr.dst_port = htole32(VSOCK_FIRST_HOST_PORT + (le32toh(hdr.dst_port) >> 2) % 8);
		break;
	}
	memcpy(pkt, &hdr, HDR);
}

/* One tx chain from the record at data; returns the bytes it used. */
static size_t tx_record(struct harness *h, const uint8_t *data, size_t size)
{
	uint8_t shape, *pkt = h->ram + TX_BUF;
	uint32_t len, segs, off = 0;
	bool writable;
	uint16_t head = (uint16_t)((h->tx_published % 10) * 6);

	if (size < 3)
		return size;
	shape = data[0];
	len = get16(data + 1) % MAX_TX;
	data += 3;
	size -= 3;
	len = (uint32_t)(len < size ? len : size);
	memcpy(pkt, data, len);
	if ((shape & 4) && len >= HDR)
		fix_header(pkt, len);
	segs = (shape & 3) + 1u;
	writable = (shape & 0xf8) == 0xf8;
	for (uint32_t i = 0; i < segs; i++) {
		/* Cut points from the shape's high bits; the last segment takes the rest. */
		uint32_t n = i + 1 == segs ? len - off : (len - off) * ((shape >> 3) + 1u) / 33;
		bool more = i + 1 < segs || writable;

		desc(h, 1, (uint16_t)(head + i), TX_BUF + off, n, more ? VRING_DESC_F_NEXT : 0,
		     (uint16_t)(head + i + 1));
		off += n;
	}
	if (writable)
		desc(h, 1, (uint16_t)(head + segs), RX_BUF(QNUM - 1), 16, VRING_DESC_F_WRITE, 0);
	publish(h, 1, head);
	h->tx_published++;
	mmio_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	/* Every chain comes back while the device is live (and the one that failed it). */
	if (!device_failed(h))
		assert(get16(h->ram + USED(1) + 2) == h->tx_published);
	return 3 + len;
}

static void pump(struct harness *h)
{
	for (int i = 0; i < 8; i++)
		virtio_vsock_event_handler(h->v, 0);
}

static void keep_fd(struct harness *h, int fd)
{
	if (h->nr_fds == MAX_FDS) {
		close(fd);
		return;
	}
	h->fds[h->nr_fds++] = fd;
}

static void servers_talk(struct harness *h, uint8_t n)
{
	static char buf[255 * 64];
	int fd;

	while ((fd = accept4(server_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		keep_fd(h, fd);
	memset(buf, n, sizeof(buf));
	for (uint32_t i = 0; i < h->nr_fds; i++)
		(void)!send(h->fds[i], buf, n * 64u, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void sockets_read(struct harness *h)
{
	static char buf[64 * 1024];

	for (uint32_t i = 0; i < h->nr_fds; i++)
		(void)!recv(h->fds[i], buf, sizeof(buf), MSG_DONTWAIT);
}

static void shrink_sockets(struct harness *h)
{
	int one = 1;

	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
		if (h->v->host.conns[i].fd >= 0)
			(void)setsockopt(h->v->host.conns[i].fd, SOL_SOCKET, SO_SNDBUF, &one,
					 sizeof(one));
}

static void host_client(struct harness *h, uint8_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[64];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int n;

	if (fd < 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	n = snprintf(line, sizeof(line), "CONNECT %u\nhello", port % 4);
	(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	keep_fd(h, fd);
}

static void cleanup(void)
{
	unlink(server_path);
	unlink(uds_path);
	rmdir(tmp_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/fvm-fuzz-vsock.XXXXXX");
	assert(mkdtemp(tmp_dir));
	atexit(cleanup);
	snprintf(uds_path, sizeof(uds_path), "%s/v.sock", tmp_dir);
	snprintf(server_path, sizeof(server_path), "%s_%u", uds_path, SERVER_PORT);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", server_path);
	server_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert(server_fd >= 0);
	assert(bind(server_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	assert(listen(server_fd, 64) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_vsock_params p = {.guest_cid = CID, .uds_path = uds_path};
	struct harness h = {.nr_fds = 0};
	char why[256];
	int fd;

	h.ram = calloc(1, RAM);
	assert(h.ram);
	h.mem = (struct guest_mem){.memfd = -1, .host = h.ram, .size = RAM, .nr_regions = 1};
	h.mem.regions[0] = (struct guest_region){.gpa = 0, .size = RAM, .memfd_offset = 0};
	if (virtio_vsock_create(&p, &h.mem, BASE, &h.v, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s\n", why);
		abort();
	}
	driver_init(&h);
	post_rx(&h, 40);

	while (size) {
		uint8_t op = data[0];
		size_t used = 1;

		if (op < 0xe0) {
			used = tx_record(&h, data + 1, size - 1) + 1;
		} else if (op == 0xe0) {
			pump(&h);
		} else if (op == 0xe1) {
			servers_talk(&h, size > 1 ? data[1] : 1);
			used = size > 1 ? 2 : 1;
		} else if (op == 0xe2) {
			post_rx(&h, size > 1 ? data[1] : 40);
			used = size > 1 ? 2 : 1;
		} else if (op == 0xe3) {
			virtio_vsock_transport_reset(h.v);
		} else if (op == 0xe4) {
			host_client(&h, size > 1 ? data[1] : 0);
			used = size > 1 ? 2 : 1;
		} else if (op == 0xe5) {
			if (h.nr_fds)
				close(h.fds[--h.nr_fds]);
		} else if (op == 0xe6) {
			driver_init(&h);
			post_rx(&h, 40);
		} else if (op == 0xe7) {
			h.v->host.timeout_ms = 0;
		} else if (op == 0xe8) {
			shrink_sockets(&h);
		} else if (op == 0xe9) {
			sockets_read(&h);
		}
		data += used;
		size -= used;
		check_tables(&h);
	}
	pump(&h);
	check_rx(&h);
	check_tables(&h);

	virtio_vsock_destroy(h.v);
	for (uint32_t i = 0; i < h.nr_fds; i++)
		close(h.fds[i]);
	while ((fd = accept4(server_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	free(h.ram);
	return 0;
}
