// SPDX-License-Identifier: MIT
/* The virtio-vsock tests' fixture (vsock-test-fixture.h). */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <dirent.h>

#include <linux/virtio_config.h>
#include <linux/virtio_vsock.h>


#include "vsock-test-fixture.h"

uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->v->vdev, off, &v, 4);
	return le32toh(v);
}

void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->v->vdev, off, &v, 4);
}

void driver_init(struct fixture *f)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, rd(f, VIRTIO_MMIO_DEVICE_FEATURES));
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, rd(f, VIRTIO_MMIO_DEVICE_FEATURES));
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (uint32_t q = 0; q < 3; q++) {
		struct test_ring *t = &f->q[q];

		t->mem = f->mem;
		t->base = 0x100000ull * q;
		ring_init(t, QNUM, VIRTQ_F_INDIRECT | VIRTQ_F_EVENT_IDX);
		wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(f, VIRTIO_MMIO_QUEUE_NUM, QNUM);
		wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(t->base + RING_DESC));
		wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(t->base + RING_AVAIL));
		wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(t->base + RING_USED));
		wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	f->rx_posted = f->rx_seen = f->tx_n = f->ev_posted = 0;
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct virtio_vsock_params p = {.guest_cid = CID};
	char why[256];

	if (!f || test_mem_init(&f->mem, MiB(64)) < 0)
		return -1;
	f->fds_at_setup = count_fds();
	snprintf(f->dir, sizeof(f->dir), "/tmp/fvm-test-vsock.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	p.uds_path = f->path;
	if (virtio_vsock_create(&p, &f->mem, BASE, &f->v, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s\n", why);
		return -1;
	}
	*state = f;
	driver_init(f);
	return 0;
}

int teardown(void **state)
{
	struct fixture *f = *state;
	int fds, expected;
	char cmd[128];

	if (f->nofile_lowered)
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->nofile), 0);
	while (f->nr_fillers)
		close(f->fillers[--f->nr_fillers]);
	virtio_vsock_destroy(f->v);
	/* Every socket, the listener, the epoll fd and the timer are gone (tests close theirs). */
	fds = count_fds();
	expected = f->fds_at_setup;
	test_mem_destroy(&f->mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	free(f);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(fds, expected);
	return 0;
}

/* --- the guest's side --- */

/* Post n rx buffers; without kick, as a driver whose notifications are suppressed. */
void publish_rx(struct fixture *f, uint32_t n, uint32_t size, bool kick)
{
	for (uint32_t i = 0; i < n; i++) {
		uint16_t id = f->rx_posted % QNUM;

		assert_true((uint16_t)(f->rx_posted - f->rx_seen) < QNUM);
		ring_desc(&f->q[RX], id, RX_BUF(id), size, W, 0);
		ring_publish(&f->q[RX], id);
		f->rx_posted++;
	}
	if (kick)
		wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, RX);
}

void post_rx(struct fixture *f, uint32_t n, uint32_t size)
{
	publish_rx(f, n, size, true);
}

void rx_refill(struct fixture *f)
{
	uint16_t out = (uint16_t)(f->rx_posted - f->rx_seen);

	if (out < RX_TARGET)
		post_rx(f, RX_TARGET - out, RX_BUF_SIZE);
}

void post_event(struct fixture *f)
{
	uint16_t id = f->ev_posted++ % QNUM;

	memset(gpa(&f->q[EV], EV_BUF(id)), 0xee, 8);
	ring_desc(&f->q[EV], id, EV_BUF(id), 8, W, 0);
	ring_publish(&f->q[EV], id);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, EV);
}

bool rx_next(struct fixture *f, struct pkt *p)
{
	struct virtio_vsock_hdr h;
	uint32_t id, used;

	if (ring_used_idx(&f->q[RX]) == f->rx_seen)
		return false;
	ring_used_elem(&f->q[RX], f->rx_seen++, &id, &used);
	assert_true(used >= HDR);
	memcpy(&h, gpa(&f->q[RX], RX_BUF(id)), HDR);
	*p = (struct pkt){.src_cid = le64toh(h.src_cid),
			  .dst_cid = le64toh(h.dst_cid),
			  .src_port = le32toh(h.src_port),
			  .dst_port = le32toh(h.dst_port),
			  .len = le32toh(h.len),
			  .flags = le32toh(h.flags),
			  .buf_alloc = le32toh(h.buf_alloc),
			  .fwd_cnt = le32toh(h.fwd_cnt),
			  .type = le16toh(h.type),
			  .op = le16toh(h.op),
			  .data = (const uint8_t *)gpa(&f->q[RX], RX_BUF(id)) + HDR};
	/* What the header says is what the device wrote. */
	assert_int_equal(p->len, used - HDR);
	assert_int_equal(p->dst_cid, CID);
	assert_int_equal(p->buf_alloc, VSOCK_BUF_ALLOC);
	return true;
}

struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t gport, uint32_t hport)
{
	return (struct virtio_vsock_hdr){.src_cid = htole64(CID),
					 .dst_cid = htole64(2),
					 .src_port = htole32(gport),
					 .dst_port = htole32(hport),
					 .type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
					 .op = htole16(op),
					 .buf_alloc = htole32(GUEST_BUF)};
}

/* One tx chain: the header split over `split` descriptors, then the payload; kicked. */
void tx_chain(struct fixture *f, const struct virtio_vsock_hdr *h, const void *payload,
	      uint32_t len, uint32_t split, uint16_t last_flags)
{
	uint16_t slot = f->tx_n % TX_SLOTS, d = (uint16_t)(slot * 4), used;
	uint8_t *buf = gpa(&f->q[TX], TX_BUF(slot));
	uint32_t off = 0, piece = HDR / split;

	memcpy(buf, h, HDR);
	if (len)
		memcpy(buf + HDR, payload, len);
	for (uint32_t i = 0; i < split; i++) {
		uint32_t n = i + 1 == split ? HDR - off : piece;
		bool more = i + 1 < split || len;

		ring_desc(&f->q[TX], (uint16_t)(d + i), TX_BUF(slot) + off, n,
			  more ? N : last_flags, (uint16_t)(d + i + 1));
		off += n;
	}
	if (len)
		ring_desc(&f->q[TX], (uint16_t)(d + split), TX_BUF(slot) + HDR, len, last_flags, 0);
	ring_publish(&f->q[TX], d);
	f->tx_n++;
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, TX);
	/* Every tx chain comes back, whatever it held. */
	used = ring_used_idx(&f->q[TX]);
	assert_int_equal(used, f->tx_n);
}

/* One descriptor of len raw bytes, kicked. */
void tx_raw(struct fixture *f, const void *bytes, uint32_t len)
{
	uint16_t slot = f->tx_n % TX_SLOTS, d = (uint16_t)(slot * 4);

	memcpy(gpa(&f->q[TX], TX_BUF(slot)), bytes, len);
	ring_desc(&f->q[TX], d, TX_BUF(slot), len, 0, 0);
	ring_publish(&f->q[TX], d);
	f->tx_n++;
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, TX);
	assert_int_equal(ring_used_idx(&f->q[TX]), f->tx_n);
}

void tx_send(struct fixture *f, struct virtio_vsock_hdr h, const void *payload, uint32_t len)
{
	h.len = htole32(len);
	tx_chain(f, &h, payload, len, 1, 0);
}

/* Run the I/O thread's handler until the device has nothing more to do. */
void pump(struct fixture *f)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = virtio_vsock_event_fd(f->v), .events = POLLIN};

		if (poll(&p, 1, 0) <= 0)
			break;
		virtio_vsock_event_handler(f->v, POLLIN);
	}
}

void expect_pkt(struct fixture *f, struct pkt *p, uint16_t op)
{
	pump(f);
	assert_true(rx_next(f, p));
	assert_int_equal(p->op, op);
	assert_int_equal(p->type, VIRTIO_VSOCK_TYPE_STREAM);
}

void expect_nothing(struct fixture *f)
{
	struct pkt p;

	pump(f);
	assert_false(rx_next(f, &p));
}

/* --- the host's side --- */

int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

int port_listen(struct fixture *f, uint32_t port)
{
	char path[160];

	snprintf(path, sizeof(path), "%s_%u", f->path, port);
	return unix_listen(path);
}

void put(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

void puts_fd(int fd, const char *s)
{
	put(fd, s, strlen(s));
}

void get(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&p, 1, 2000), 1);
		n = read(fd, (uint8_t *)buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* Read what is left, and then the end of the stream (EOF or a reset). */
void expect_eof(struct fixture *f, int fd)
{
	char buf[4096];

	/* The device acts only when its handler runs: pump while waiting (timers too). */
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		pump(f);
		if (poll(&p, 1, 5) == 1 && read(fd, buf, sizeof(buf)) <= 0)
			return;
	}
	fail_msg("no end of stream");
}

bool fd_quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 0;
}

uint32_t read_ok_line(int fd)
{
	char line[32];
	unsigned port;
	size_t i = 0;

	do {
		assert_true(i < sizeof(line) - 1);
		get(fd, &line[i], 1);
	} while (line[i++] != '\n');
	line[i] = 0;
	assert_int_equal(sscanf(line, "OK %u\n", &port), 1);
	return port;
}

/* A client asks for guest port gport; returns its fd and the host port in the REQUEST. */
int host_connect(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport)
{
	int fd = unix_connect(f->path);
	char line[64];
	struct pkt p;

	snprintf(line, sizeof(line), "CONNECT %u\n%s", gport, extra);
	puts_fd(fd, line);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.src_cid, 2);
	assert_int_equal(p.dst_port, gport);
	assert_true(p.src_port >= VSOCK_FIRST_HOST_PORT);
	assert_int_equal(p.len, 0);
	*hport = p.src_port;
	return fd;
}

/* host_connect, answered: the client has read its OK line. */
int host_stream(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport)
{
	int fd = host_connect(f, gport, extra, hport);

	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, gport, *hport), NULL, 0);
	assert_int_equal(read_ok_line(fd), *hport);
	return fd;
}

/* The guest connects to (2, hport) from gport; returns the accepted server socket. */
int guest_stream(struct fixture *f, int lfd, uint32_t gport, uint32_t hport)
{
	struct pkt p;
	int s;

	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, gport, hport), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, gport);
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	return s;
}

/* The guest gathers `want` bytes of (hport -> gport); credit updates are let through. */
void guest_read(struct fixture *f, uint32_t gport, uint32_t hport, void *buf, size_t want)
{
	size_t got = 0;

	for (int i = 0; i < 1000 && got < want; i++) {
		struct pkt p;

		pump(f);
		while (got < want && rx_next(f, &p)) {
			if (p.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
				continue;
			assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
			assert_int_equal(p.src_port, hport);
			assert_int_equal(p.dst_port, gport);
			assert_true(got + p.len <= want);
			memcpy((uint8_t *)buf + got, p.data, p.len);
			got += p.len;
		}
		rx_refill(f);
	}
	assert_int_equal(got, want);
}

void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* What Linux does first when it handles TRANSPORT_RESET: read its CID. */
void guest_handles_reset(struct fixture *f)
{
	uint64_t cid;

	virtio_mmio_ops.read(&f->v->vdev, VIRTIO_MMIO_CONFIG, &cid, 8);
	assert_int_equal(le64toh(cid), CID);
}
