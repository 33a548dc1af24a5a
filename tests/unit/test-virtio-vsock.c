// SPDX-License-Identifier: MIT
/*
 * devices/virtio-vsock.c and vsock-host.c, driven as a guest driver would
 * (three fake rings in test RAM) against real unix sockets in a temp dir:
 * host- and guest-initiated streams, data both ways, the handshake and
 * its failures, timeouts, credit, shutdown, many streams at once, control
 * packets waiting for rx buffers, malformed packets, and the transport
 * reset after a fork and a restore. Kick fds are -1, so a QueueNotify
 * write runs the device at once; socket events run through the handler
 * (pump()).
 */
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

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(&f->v->vdev, off, &v, 4);
	return le32toh(v);
}

static void wr(struct fixture *f, uint64_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	virtio_mmio_ops.write(&f->v->vdev, off, &v, 4);
}

static void driver_init(struct fixture *f)
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

static int count_fds(void)
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

static int setup(void **state)
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

static int teardown(void **state)
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
static void publish_rx(struct fixture *f, uint32_t n, uint32_t size, bool kick)
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

static void post_rx(struct fixture *f, uint32_t n, uint32_t size)
{
	publish_rx(f, n, size, true);
}

static void rx_refill(struct fixture *f)
{
	uint16_t out = (uint16_t)(f->rx_posted - f->rx_seen);

	if (out < RX_TARGET)
		post_rx(f, RX_TARGET - out, RX_BUF_SIZE);
}

static void post_event(struct fixture *f)
{
	uint16_t id = f->ev_posted++ % QNUM;

	memset(gpa(&f->q[EV], EV_BUF(id)), 0xee, 8);
	ring_desc(&f->q[EV], id, EV_BUF(id), 8, W, 0);
	ring_publish(&f->q[EV], id);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, EV);
}

static bool rx_next(struct fixture *f, struct pkt *p)
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

static struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t gport, uint32_t hport)
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
static void tx_chain(struct fixture *f, const struct virtio_vsock_hdr *h, const void *payload,
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
static void tx_raw(struct fixture *f, const void *bytes, uint32_t len)
{
	uint16_t slot = f->tx_n % TX_SLOTS, d = (uint16_t)(slot * 4);

	memcpy(gpa(&f->q[TX], TX_BUF(slot)), bytes, len);
	ring_desc(&f->q[TX], d, TX_BUF(slot), len, 0, 0);
	ring_publish(&f->q[TX], d);
	f->tx_n++;
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, TX);
	assert_int_equal(ring_used_idx(&f->q[TX]), f->tx_n);
}

static void tx_send(struct fixture *f, struct virtio_vsock_hdr h, const void *payload, uint32_t len)
{
	h.len = htole32(len);
	tx_chain(f, &h, payload, len, 1, 0);
}

/* Run the I/O thread's handler until the device has nothing more to do. */
static void pump(struct fixture *f)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = virtio_vsock_event_fd(f->v), .events = POLLIN};

		if (poll(&p, 1, 0) <= 0)
			break;
		virtio_vsock_event_handler(f->v, POLLIN);
	}
}

static void expect_pkt(struct fixture *f, struct pkt *p, uint16_t op)
{
	pump(f);
	assert_true(rx_next(f, p));
	assert_int_equal(p->op, op);
	assert_int_equal(p->type, VIRTIO_VSOCK_TYPE_STREAM);
}

static void expect_nothing(struct fixture *f)
{
	struct pkt p;

	pump(f);
	assert_false(rx_next(f, &p));
}

/* --- the host's side --- */

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static int port_listen(struct fixture *f, uint32_t port)
{
	char path[160];

	snprintf(path, sizeof(path), "%s_%u", f->path, port);
	return unix_listen(path);
}

static void put(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void puts_fd(int fd, const char *s)
{
	put(fd, s, strlen(s));
}

static void get(int fd, void *buf, size_t len)
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
static void expect_eof(struct fixture *f, int fd)
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

static bool fd_quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 0;
}

static uint32_t read_ok_line(int fd)
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
static int host_connect(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport)
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
static int host_stream(struct fixture *f, uint32_t gport, const char *extra, uint32_t *hport)
{
	int fd = host_connect(f, gport, extra, hport);

	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, gport, *hport), NULL, 0);
	assert_int_equal(read_ok_line(fd), *hport);
	return fd;
}

/* The guest connects to (2, hport) from gport; returns the accepted server socket. */
static int guest_stream(struct fixture *f, int lfd, uint32_t gport, uint32_t hport)
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
static void guest_read(struct fixture *f, uint32_t gport, uint32_t hport, void *buf, size_t want)
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

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* What Linux does first when it handles TRANSPORT_RESET: read its CID. */
static void guest_handles_reset(struct fixture *f)
{
	uint64_t cid;

	virtio_mmio_ops.read(&f->v->vdev, VIRTIO_MMIO_CONFIG, &cid, 8);
	assert_int_equal(le64toh(cid), CID);
}

/* --- tests --- */

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint64_t cid;

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 19);
	virtio_mmio_ops.read(&f->v->vdev, VIRTIO_MMIO_CONFIG, &cid, 8);
	assert_int_equal(le64toh(cid), CID);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_false(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_VSOCK_F_SEQPACKET));
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_true(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << (VIRTIO_F_VERSION_1 - 32)));
}

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_params p = {.guest_cid = CID};
	struct virtio_vsock *v = NULL;
	char path[160], why[256];
	struct stat st;
	int fd;

	/* A regular file is not ours to replace. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	p.uds_path = path;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)), -EEXIST);
	assert_non_null(strstr(why, "not a socket"));
	/* Nor a socket someone listens on: ours, here. */
	p.uds_path = f->path;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)), -EADDRINUSE);
	/* A stale socket is. */
	snprintf(path, sizeof(path), "%s/stale", f->dir);
	close(unix_listen(path));
	p.uds_path = path;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)), 0);
	assert_int_equal(lstat(path, &st), 0);
	virtio_vsock_destroy(v);
	assert_int_equal(lstat(path, &st), -1);
	/* Reserved CIDs, and paths with no room for "_<port>". */
	p.guest_cid = 2;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)), -EINVAL);
	p.guest_cid = 0xffffffffull;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)), -EINVAL);
	p.guest_cid = CID;
	memset(path, 'a', 100);
	path[100] = 0;
	p.uds_path = path;
	assert_int_equal(virtio_vsock_create(&p, &f->mem, BASE, &v, why, sizeof(why)),
			 -ENAMETOOLONG);
}

/* The table itself: a full house of streams on one port (hash collisions), slot reuse, ports. */
static void test_host_table(void **state)
{
	struct vsock_host h;
	struct vsock_conn *c, *first;

	(void)state;
	assert_int_equal(vsock_host_init(&h), 0);
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		c = vsock_host_conn_new(&h, -1, VSOCK_CONN_ESTABLISHED);
		assert_non_null(c);
		c->local_port = 1234;
		c->peer_port = 7 * i;
		vsock_host_hash(&h, c);
	}
	assert_null(vsock_host_conn_new(&h, -1, VSOCK_CONN_ESTABLISHED));
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		c = vsock_host_lookup(&h, 1234, 7 * i);
		assert_non_null(c);
		assert_int_equal(c->peer_port, 7 * i);
	}
	assert_null(vsock_host_lookup(&h, 1234, 1));
	assert_null(vsock_host_lookup(&h, 1235, 0));
	/* Freed slots leave the hash, and come back with a new generation. */
	first = vsock_host_lookup(&h, 1234, 0);
	{
		uint64_t old_event = ((uint64_t)first->gen << 32) | first->slot;

		vsock_host_conn_free(&h, first);
		assert_null(vsock_host_lookup(&h, 1234, 0));
		assert_non_null(vsock_host_lookup(&h, 1234, 7));
		c = vsock_host_conn_new(&h, 0, VSOCK_CONN_HANDSHAKE);
		assert_ptr_equal(c, first);
		/* An event for the old stream does not reach the new one. */
		assert_null(vsock_host_conn_of(&h, old_event));
		assert_ptr_equal(vsock_host_conn_of(&h, ((uint64_t)c->gen << 32) | c->slot), c);
		c->fd = -1;
	}
	/* Host ports count up and skip those in use, wrapping below VMADDR_PORT_ANY. */
	c->local_port = VSOCK_FIRST_HOST_PORT;
	assert_int_equal(vsock_host_pick_port(&h), VSOCK_FIRST_HOST_PORT + 1);
	h.next_port = UINT32_MAX - 1;
	assert_int_equal(vsock_host_pick_port(&h), UINT32_MAX - 1);
	assert_int_equal(vsock_host_pick_port(&h), VSOCK_FIRST_HOST_PORT + 1);
	vsock_host_stop(&h);
}

static void test_host_connect(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[16];
	uint32_t hport;
	int fd;

	rx_refill(f);
	/* The bytes sent with the CONNECT line are the stream's first. */
	fd = host_stream(f, 52, "hello", &hport);
	guest_read(f, 52, hport, buf, 5);
	assert_memory_equal(buf, "hello", 5);
	puts_fd(fd, " again");
	guest_read(f, 52, hport, buf, 6);
	assert_memory_equal(buf, " again", 6);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 52, hport), "world", 5);
	get(fd, buf, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(f->v->stats.conns_opened, 1);
	assert_int_equal(f->v->stats.bytes_to_guest, 11);
	assert_int_equal(f->v->stats.bytes_from_guest, 5);
	/* A second client gets another host port. */
	{
		uint32_t hport2;
		int fd2 = host_stream(f, 52, "", &hport2);

		assert_int_not_equal(hport, hport2);
		close(fd2);
	}
	close(fd);
}

static void test_host_connect_refused(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	int fd;

	rx_refill(f);
	fd = host_connect(f, 53, "", &hport);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RST, 53, hport), NULL, 0);
	expect_eof(f, fd);
	close(fd);
	/* No RST answers an RST, whether it matches a stream or not. */
	expect_nothing(f);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RST, 53, 12345), NULL, 0);
	expect_nothing(f);
	assert_int_equal(f->v->host.nr_conns, 0);
	assert_int_equal(f->v->stats.conns_refused, 1);
}

static void test_timeouts(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	struct pkt p;
	int fd, idle;

	f->v->host.timeout_ms = 100;
	rx_refill(f);
	fd = host_connect(f, 54, "", &hport);
	/* A client that never says anything is dropped as well. */
	idle = unix_connect(f->path);
	pump(f);
	assert_int_equal(f->v->host.nr_conns, 2);
	expect_eof(f, fd);
	expect_eof(f, idle);
	/* The guest saw the REQUEST: it is told the stream is gone. */
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 54);
	assert_int_equal(f->v->host.nr_conns, 0);
	assert_int_equal(f->v->stats.conns_refused, 2);
	close(fd);
	close(idle);
}

static void test_out_of_fds(void **state)
{
	struct fixture *f = *state;
	int epfd = virtio_vsock_event_fd(f->v), clients[3];
	struct rlimit low;
	struct pkt p;

	f->v->host.timeout_ms = 50;
	rx_refill(f);
	for (int i = 0; i < 3; i++)
		clients[i] = unix_connect(f->path);
	/* No fd left for accept(). */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->nofile), 0);
	low = f->nofile;
	low.rlim_cur = (rlim_t)fcntl(clients[2], F_DUPFD_CLOEXEC, 0);
	close((int)low.rlim_cur);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	f->nofile_lowered = true;
	while (f->nr_fillers < 64 && (f->fillers[f->nr_fillers] = dup(0)) >= 0)
		f->nr_fillers++;
	pump(f);
	/* The listener is set aside rather than spin the I/O thread... */
	assert_true(f->v->host.listen_paused);
	assert_true(fd_quiet(epfd));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->nofile), 0);
	f->nofile_lowered = false;
	while (f->nr_fillers)
		close(f->fillers[--f->nr_fillers]);
	/* ...and comes back after a while, with the clients still waiting. */
	for (int i = 0; i < 100 && f->v->host.listen_paused; i++) {
		struct pollfd pf = {.fd = epfd, .events = POLLIN};

		(void)poll(&pf, 1, 10);
		pump(f);
	}
	assert_false(f->v->host.listen_paused);
	for (int i = 0; i < 3; i++) {
		char line[32];

		snprintf(line, sizeof(line), "CONNECT %d\n", 40 + i);
		puts_fd(clients[i], line);
		expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
		assert_int_equal(p.dst_port, 40 + i);
		close(clients[i]);
	}
}

static void test_bad_handshake(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "HELLO\n",
	    "CONNECT\n",
	    "CONNECT \n",
	    "CONNECT 12a\n",
	    "connect 5\n",
	    "CONNECT 4294967296\n",
	    "CONNECT 12345678901\n",
	    "CONNECT  5\n",
	    "CONNECT -1\n",
	    "CONNECT 5 \n",
	    "CONNECT 0000000000005\n",
	    "CONNECT 00000000000000000000000000000000000000000001",
	};
	uint32_t hport;
	int fd;

	rx_refill(f);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fd = unix_connect(f->path);
		puts_fd(fd, bad[i]);
		expect_eof(f, fd);
		close(fd);
	}
	expect_nothing(f);
	assert_int_equal(f->v->stats.conns_refused, ARRAY_SIZE(bad));
	assert_int_equal(f->v->host.nr_conns, 0);
	/* The edges of the range, and a line that comes in pieces. */
	close(host_connect(f, 0xffffffffu, "", &hport));
	close(host_connect(f, 0, "", &hport));
	fd = unix_connect(f->path);
	puts_fd(fd, "CONN");
	pump(f);
	puts_fd(fd, "ECT 0007\nxy");
	{
		struct pkt p;

		expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
		assert_int_equal(p.dst_port, 7);
	}
	close(fd);
}

static void test_guest_connect(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 1234), s, s2;
	uint8_t buf[8];
	struct pkt p;

	rx_refill(f);
	s = guest_stream(f, lfd, 555, 1234);
	assert_int_equal(f->v->stats.conns_opened, 1);
	puts_fd(s, "ping");
	guest_read(f, 555, 1234, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 555, 1234), "pong", 4);
	get(s, buf, 4);
	assert_memory_equal(buf, "pong", 4);
	/* A second stream to the same port, told apart by the guest's port. */
	s2 = guest_stream(f, lfd, 557, 1234);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 557, 1234), "two", 3);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 555, 1234), "one", 3);
	get(s2, buf, 3);
	assert_memory_equal(buf, "two", 3);
	get(s, buf, 3);
	assert_memory_equal(buf, "one", 3);
	puts_fd(s2, "2");
	guest_read(f, 557, 1234, buf, 1);
	assert_int_equal(buf[0], '2');
	close(s2);
	/* Nobody listens on 999. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 556, 999), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 999);
	assert_int_equal(p.dst_port, 556);
	assert_int_equal(p.src_cid, 2);
	assert_int_equal(f->v->stats.conns_refused, 1);
	close(s);
	close(lfd);
}

static void test_credit(void **state)
{
	struct fixture *f = *state;
	static uint8_t out[5000], in[5000];
	struct virtio_vsock_hdr h;
	uint32_t hport;
	size_t got = 0;
	struct pkt p;
	int fd;

	rx_refill(f);
	fd = host_connect(f, 60, "", &hport);
	h = mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 60, hport);
	h.buf_alloc = htole32(1000);
	tx_send(f, h, NULL, 0);
	read_ok_line(fd);
	pattern(out, sizeof(out), 1);
	put(fd, out, sizeof(out));
	/* 1000 bytes of credit, and not one more however long we wait. */
	for (int round = 0; round < 3; round++) {
		pump(f);
		while (rx_next(f, &p)) {
			assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
			memcpy(in + got, p.data, p.len);
			got += p.len;
		}
		assert_int_equal(got, 1000);
	}
	/* The socket is no longer watched for input: the I/O thread does not spin. */
	assert_true(fd_quiet(virtio_vsock_event_fd(f->v)));
	/* The guest consumed it all: 1000 more. */
	h = mkhdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 60, hport);
	h.buf_alloc = htole32(1000);
	h.fwd_cnt = htole32(1000);
	tx_send(f, h, NULL, 0);
	pump(f);
	while (rx_next(f, &p)) {
		assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
		memcpy(in + got, p.data, p.len);
		got += p.len;
	}
	assert_int_equal(got, 2000);
	/* A lying fwd_cnt (ahead of what was sent) gives no credit at all. */
	h.fwd_cnt = htole32(900000);
	tx_send(f, h, NULL, 0);
	expect_nothing(f);
	h.buf_alloc = htole32(GUEST_BUF);
	h.fwd_cnt = htole32(2000);
	tx_send(f, h, NULL, 0);
	guest_read(f, 60, hport, in + got, sizeof(in) - got);
	assert_memory_equal(in, out, sizeof(out));
	close(fd);
}

static void test_credit_request(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[40000];
	int lfd = port_listen(f, 70), s;
	struct pkt p;

	rx_refill(f);
	s = guest_stream(f, lfd, 71, 70);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 71, 70), data, 1000);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 71, 70), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(p.fwd_cnt, 1000);
	assert_int_equal(p.src_port, 70);
	/* A quarter of buf_alloc forwarded: an update comes unasked. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 71, 70), data, sizeof(data));
	expect_nothing(f);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 71, 70), data, sizeof(data));
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(p.fwd_cnt, 81000);
	close(s);
	close(lfd);
}

static void test_overrun(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 5000), s;
	static uint8_t data[VIRTIO_VSOCK_MAX_PKT];
	bool reset = false;
	struct pkt p;
	int sent;

	rx_refill(f);
	s = guest_stream(f, lfd, 77, 5000);
	/* The server never reads; the guest ignores its credit. */
	for (sent = 0; sent < 40 && !reset; sent++) {
		struct vsock_conn *c = vsock_host_lookup(&f->v->host, 5000, 77);

		assert_non_null(c);
		assert_true(c->buf_len <= VSOCK_BUF_ALLOC);
		tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 77, 5000), data, sizeof(data));
		pump(f);
		while (rx_next(f, &p)) {
			if (p.op == VIRTIO_VSOCK_OP_RST)
				reset = true;
			else
				assert_int_equal(p.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		}
	}
	assert_true(reset);
	/* Beyond what the socket took (~200 KiB) and our buffer (256 KiB): reset promptly. */
	assert_true(sent <= 10);
	assert_null(vsock_host_lookup(&f->v->host, 5000, 77));
	assert_int_equal(f->v->host.nr_conns, 0);
	assert_true(f->v->stats.malformed >= 1);
	expect_eof(f, s);
	close(s);
	close(lfd);
}

static void test_shutdown_host_first(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	uint8_t buf[4];
	struct pkt p;
	int fd;

	rx_refill(f);
	fd = host_stream(f, 80, "", &hport);
	puts_fd(fd, "abc");
	shutdown(fd, SHUT_WR);
	guest_read(f, 80, hport, buf, 3);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* The other way still flows. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 80, hport), "def", 3);
	get(fd, buf, 3);
	assert_memory_equal(buf, "def", 3);
	/* Both ways shut: the socket closes and the guest gets its RST. */
	{
		struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 80, hport);

		h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND);
		tx_send(f, h, NULL, 0);
	}
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	expect_eof(f, fd);
	assert_int_equal(f->v->host.nr_conns, 0);
	close(fd);
}

static void test_shutdown_guest_first(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 90), s;
	struct virtio_vsock_hdr h;
	uint8_t buf[8];
	struct pkt p;

	rx_refill(f);
	s = guest_stream(f, lfd, 91, 90);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 91, 90), "xyz", 3);
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 91, 90);
	h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx_send(f, h, NULL, 0);
	get(s, buf, 3);
	assert_memory_equal(buf, "xyz", 3);
	/* EOF after the data: the guest's SHUTDOWN(SEND) became SHUT_WR. */
	{
		struct pollfd pf = {.fd = s, .events = POLLIN};

		assert_int_equal(poll(&pf, 1, 2000), 1);
		assert_int_equal(read(s, buf, 1), 0);
	}
	/* The other way still flows. */
	puts_fd(s, "back");
	guest_read(f, 91, 90, buf, 4);
	assert_memory_equal(buf, "back", 4);
	close(s);
	/* EOF from the server: nothing flows either way any more. */
	pump(f);
	assert_true(rx_next(f, &p));
	if (p.op == VIRTIO_VSOCK_OP_SHUTDOWN)
		assert_true(rx_next(f, &p));
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(f->v->host.nr_conns, 0);

	/* A guest closing both ways at once gets its RST too. */
	s = guest_stream(f, lfd, 92, 90);
	h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 92, 90);
	h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx_send(f, h, NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.dst_port, 92);
	expect_eof(f, s);
	close(s);

	/* A guest RST closes at once, unanswered. */
	s = guest_stream(f, lfd, 93, 90);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RST, 93, 90), NULL, 0);
	expect_eof(f, s);
	expect_nothing(f);
	assert_int_equal(f->v->stats.resets_received, 1);
	close(s);
	close(lfd);
}

static void test_many_streams(void **state)
{
	struct fixture *f = *state;
	enum { NR = 50, LEN = 3000 };
	static uint8_t out[NR][LEN], in[LEN];
	uint32_t hport[NR], echoed[NR] = {0};
	int fd[NR], done = 0;
	struct pkt p;

	rx_refill(f);
	for (int i = 0; i < NR; i++) {
		char line[32];

		fd[i] = unix_connect(f->path);
		snprintf(line, sizeof(line), "CONNECT %d\n", 1000 + i);
		puts_fd(fd[i], line);
	}
	pump(f);
	for (int i = 0; i < NR; i++) {
		int k;

		assert_true(rx_next(f, &p));
		assert_int_equal(p.op, VIRTIO_VSOCK_OP_REQUEST);
		k = (int)p.dst_port - 1000;
		assert_true(k >= 0 && k < NR);
		hport[k] = p.src_port;
		tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, p.dst_port, p.src_port), NULL, 0);
	}
	rx_refill(f);
	for (int i = 0; i < NR; i++) {
		assert_int_equal(read_ok_line(fd[i]), hport[i]);
		pattern(out[i], LEN, (uint32_t)i + 100);
		put(fd[i], out[i], LEN);
	}
	/* The guest echoes every packet back on its stream. */
	for (int round = 0; round < 100 && done < NR; round++) {
		pump(f);
		while (rx_next(f, &p)) {
			int k = (int)p.dst_port - 1000;

			assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
			assert_true(k >= 0 && k < NR);
			assert_int_equal(p.src_port, hport[k]);
			tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, p.dst_port, p.src_port), p.data,
				p.len);
			echoed[k] += p.len;
			if (echoed[k] == LEN)
				done++;
		}
		rx_refill(f);
	}
	assert_int_equal(done, NR);
	for (int i = 0; i < NR; i++) {
		get(fd[i], in, LEN);
		assert_memory_equal(in, out[i], LEN);
		close(fd[i]);
	}
	assert_int_equal(f->v->stats.conns_opened, NR);
}

static void test_ctrl_queued(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 6000), s, client;
	bool seen_rst = false, seen_req = false, seen_resp = false, seen_credit = false;
	uint8_t buf[8];
	uint32_t hport;
	struct pkt p;

	/* No rx buffers at all: everything owed waits. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 10, 6000), NULL, 0);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 10, 6000), NULL, 0);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 11, 6001), NULL, 0);
	client = unix_connect(f->path);
	puts_fd(client, "CONNECT 7\n");
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	puts_fd(s, "early");
	pump(f);
	assert_int_equal(ring_used_idx(&f->q[RX]), 0);
	assert_true(fd_quiet(virtio_vsock_event_fd(f->v)));

	rx_refill(f);
	pump(f);
	for (int i = 0; i < 5; i++) {
		assert_true(rx_next(f, &p));
		switch (p.op) {
		case VIRTIO_VSOCK_OP_RESPONSE:
			assert_int_equal(p.dst_port, 10);
			seen_resp = true;
			break;
		case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
			assert_true(seen_resp);
			seen_credit = true;
			break;
		case VIRTIO_VSOCK_OP_RST:
			assert_int_equal(p.src_port, 6001);
			seen_rst = true;
			break;
		case VIRTIO_VSOCK_OP_REQUEST:
			assert_int_equal(p.dst_port, 7);
			hport = p.src_port;
			seen_req = true;
			break;
		case VIRTIO_VSOCK_OP_RW:
			/* The stream's data only after its RESPONSE. */
			assert_true(seen_resp);
			assert_int_equal(p.len, 5);
			assert_memory_equal(p.data, "early", 5);
			break;
		default:
			fail_msg("unexpected op %u", p.op);
		}
	}
	assert_true(seen_rst && seen_req && seen_resp && seen_credit);
	expect_nothing(f);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 7, hport), NULL, 0);
	assert_int_equal(read_ok_line(client), hport);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 10, 6000), "late", 4);
	get(s, buf, 4);
	assert_memory_equal(buf, "late", 4);
	close(client);
	close(s);
	close(lfd);
}

static void test_ctrl_before_data(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 6100), s;
	struct pkt p;

	/* The RESPONSE waits for a buffer... */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 12, 6100), NULL, 0);
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	/* ...buffers come without a kick, and the server speaks first. */
	publish_rx(f, 4, RX_BUF_SIZE, false);
	puts_fd(s, "first");
	pump(f);
	assert_true(rx_next(f, &p));
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RESPONSE);
	assert_true(rx_next(f, &p));
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
	assert_memory_equal(p.data, "first", 5);
	close(s);
	close(lfd);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[VIRTIO_VSOCK_MAX_PKT + 1];
	int lfd = port_listen(f, 300), s;
	struct virtio_vsock_hdr h;
	uint64_t malformed;
	uint32_t hport;
	struct pkt p;
	int fd;

	rx_refill(f);
	/* Payload above the packet limit: no stream, so an RST. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1, 2), big, sizeof(big));
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(f->v->stats.malformed, 1);
	/* Spoofed source: dropped unanswered. */
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 300);
	h.src_cid = htole64(CID + 1);
	tx_send(f, h, NULL, 0);
	expect_nothing(f);
	assert_int_equal(f->v->host.nr_conns, 0);
	/* Another destination than the host; another type: RST from where the guest aimed. */
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 300);
	h.dst_cid = htole64(5);
	tx_send(f, h, NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_cid, 5);
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 300);
	h.type = htole16(VIRTIO_VSOCK_TYPE_SEQPACKET);
	tx_send(f, h, NULL, 0);
	pump(f);
	assert_true(rx_next(f, &p));
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.type, VIRTIO_VSOCK_TYPE_SEQPACKET);
	assert_int_equal(f->v->host.nr_conns, 0);
	/* Unknown ops with no stream: RST. */
	tx_send(f, mkhdr(99, 1, 300), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_INVALID, 1, 300), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	/* Shorter than a header: dropped. */
	{
		struct virtio_vsock_hdr raw = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 300);

		tx_raw(f, &raw, HDR - 1);
	}
	malformed = f->v->stats.malformed;
	assert_int_equal(malformed, 7);
	expect_nothing(f);

	/* On a stream: len unlike the chain, an unknown op, a second REQUEST: each resets it. */
	fd = host_stream(f, 301, "", &hport);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 301, hport);
	h.len = htole32(10);
	tx_chain(f, &h, "12345", 5, 1, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	expect_eof(f, fd);
	close(fd);
	fd = host_stream(f, 302, "", &hport);
	tx_send(f, mkhdr(42, 302, hport), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	expect_eof(f, fd);
	close(fd);
	s = guest_stream(f, lfd, 303, 300);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 303, 300), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	expect_eof(f, s);
	close(s);
	/* Data before the RESPONSE: the same. */
	fd = host_connect(f, 304, "", &hport);
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 304, hport), "x", 1);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	expect_eof(f, fd);
	close(fd);
	assert_int_equal(f->v->stats.malformed, malformed + 4);
	assert_int_equal(f->v->host.nr_conns, 0);

	/* The header in pieces is fine (framing is free). */
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 305, 300);
	tx_chain(f, &h, NULL, 0, 5, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RESPONSE);
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 305, 300);
	h.len = htole32(3);
	tx_chain(f, &h, "abc", 3, 3, 0);
	{
		char buf[3];

		get(s, buf, 3);
		assert_memory_equal(buf, "abc", 3);
	}
	close(s);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* A device-writable segment on tx breaks the queue's framing: the device fails. */
	h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 306, 300);
	tx_chain(f, &h, "zz", 2, 1, W);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	close(lfd);
}

static void test_rx_buffer_rules(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	int fd;

	/* rx buffers with room for a header only still carry the stream's credit. */
	post_rx(f, 4, HDR);
	fd = unix_connect(f->path);
	puts_fd(fd, "CONNECT 5\n");
	{
		struct pkt p;

		expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
		hport = p.src_port;
		tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 5, hport), NULL, 0);
		read_ok_line(fd);
		puts_fd(fd, "data");
		expect_pkt(f, &p, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	}
	/* A buffer too small for a header: the driver broke the rules. */
	post_rx(f, 1, HDR - 1);
	pump(f);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	close(fd);
}

static void test_device_reset(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	int fd, idle;

	rx_refill(f);
	fd = host_stream(f, 400, "", &hport);
	idle = unix_connect(f->path);
	pump(f);
	/* The driver forgets its streams: their sockets close; a handshake goes on. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	expect_eof(f, fd);
	assert_int_equal(f->v->host.nr_conns, 1);
	assert_true(fd_quiet(idle));
	close(fd);
	close(idle);
	driver_init(f);
	rx_refill(f);
	close(host_stream(f, 401, "", &hport));
}

static void expect_transport_reset(struct fixture *f, uint16_t n)
{
	uint32_t id, len, ev;

	assert_int_equal(ring_used_idx(&f->q[EV]), n);
	ring_used_elem(&f->q[EV], (uint16_t)(n - 1), &id, &len);
	assert_int_equal(len, 4);
	memcpy(&ev, gpa(&f->q[EV], EV_BUF(id)), 4);
	assert_int_equal(le32toh(ev), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
}

static void test_after_fork(void **state)
{
	struct fixture *f = *state;
	char old_path[128], new_path[128], why[256];
	int lfd = port_listen(f, 500), s, s2, l2, c2, fd, pipefd[2], epfd, probe, status;
	uint32_t hport;
	struct stat st;
	struct pkt p;
	pid_t pid;

	rx_refill(f);
	post_event(f);
	fd = host_stream(f, 500, "", &hport);
	s = guest_stream(f, lfd, 501, 500);
	/* The "parent": another process holding every inherited fd, as a real one would. */
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		close(pipefd[1]);
		(void)!read(pipefd[0], &c, 1);
		_exit(0);
	}
	close(pipefd[0]);

	epfd = virtio_vsock_event_fd(f->v);
	snprintf(old_path, sizeof(old_path), "%s", f->path);
	snprintf(new_path, sizeof(new_path), "%s/child.sock", f->dir);
	assert_int_equal(virtio_vsock_after_fork(f->v, new_path, why, sizeof(why)), 0);
	assert_int_equal(virtio_vsock_event_fd(f->v), epfd);
	/* Nothing reaches the guest before the I/O thread runs (its eventfds may be the parent's).
	 */
	assert_int_equal(ring_used_idx(&f->q[EV]), 0);
	assert_false(fd_quiet(epfd));
	pump(f);
	expect_transport_reset(f, 1);
	guest_handles_reset(f);
	assert_int_equal(f->v->host.nr_conns, 0);
	assert_int_equal(f->v->stats.transport_resets, 1);
	/* The parent's streams were neither shut down nor closed under it. */
	assert_true(fd_quiet(fd));
	assert_true(fd_quiet(s));
	/* The parent's socket is still there, still listened on. */
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	probe = unix_connect(f->path);
	close(probe);
	/* The child's own path works, both ways. */
	snprintf(f->path, sizeof(f->path), "%s", new_path);
	c2 = host_stream(f, 502, "", &hport);
	l2 = port_listen(f, 503);
	s2 = guest_stream(f, l2, 504, 503);
	/* A connect to the old path's ports does not reach the parent's listener. */
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 505, 500), NULL, 0);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 500);
	close(s2);
	close(l2);
	close(c2);

	virtio_vsock_destroy(f->v);
	f->v = NULL;
	/* The child's path goes with it; the parent's stays. */
	assert_int_equal(lstat(new_path, &st), -1);
	assert_int_equal(lstat(old_path, &st), 0);
	snprintf(f->path, sizeof(f->path), "%s", old_path);
	close(pipefd[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fd);
	close(s);
	close(lfd);
	{
		struct virtio_vsock_params vp = {.guest_cid = CID, .uds_path = f->path};

		assert_int_equal(virtio_vsock_create(&vp, &f->mem, BASE, &f->v, why, sizeof(why)),
				 0);
	}
}

/*
 * After a reset, a host connection made before the guest has handled it
 * would be dropped with the old ones: its REQUEST waits for the guest's
 * CID read, or for VSOCK_RESET_GATE_MS.
 */
static void test_reset_gate(void **state)
{
	struct fixture *f = *state;
	char line[32];
	uint32_t hport;
	struct pkt p;
	int fd, fd2;

	rx_refill(f);
	post_event(f);
	virtio_vsock_after_restore(f->v);
	pump(f);
	expect_transport_reset(f, 1);
	fd = unix_connect(f->path);
	snprintf(line, sizeof(line), "CONNECT %u\n", 700);
	puts_fd(fd, line);
	expect_nothing(f);
	guest_handles_reset(f);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 700);
	hport = p.src_port;
	tx_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 700, hport), NULL, 0);
	assert_int_equal(read_ok_line(fd), hport);
	/* Once handled, connections go straight through; more CID reads change nothing. */
	guest_handles_reset(f);
	fd2 = host_stream(f, 701, "", &hport);
	close(fd2);

	/* A guest that never reads its CID: the gate opens after the time limit. */
	post_event(f);
	virtio_vsock_transport_reset(f->v);
	expect_transport_reset(f, 2);
	expect_eof(f, fd);
	close(fd);
	fd = unix_connect(f->path);
	snprintf(line, sizeof(line), "CONNECT %u\n", 702);
	puts_fd(fd, line);
	expect_nothing(f);
	f->v->reset_gate_ms = vsock_host_now_ms();
	vsock_host_wake(&f->v->host);
	pump(f);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 702);
	close(fd);
}

static void test_after_restore(void **state)
{
	struct fixture *f = *state;
	int lfd = port_listen(f, 600), s;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 601, 600);
	uint32_t hport;
	struct pkt p;
	int fd;

	rx_refill(f);
	fd = host_stream(f, 602, "", &hport);
	/* Queued without a notification, as one lost in the save would be. */
	{
		uint16_t slot = f->tx_n % TX_SLOTS, d = (uint16_t)(slot * 4);

		memcpy(gpa(&f->q[TX], TX_BUF(slot)), &h, HDR);
		ring_desc(&f->q[TX], d, TX_BUF(slot), HDR, 0, 0);
		ring_publish(&f->q[TX], d);
		f->tx_n++;
	}
	virtio_vsock_after_restore(f->v);
	/* Streams are gone at once; the queues are looked at on the I/O thread. */
	assert_int_equal(ring_used_idx(&f->q[TX]), (uint16_t)(f->tx_n - 1));
	expect_eof(f, fd);
	assert_int_equal(ring_used_idx(&f->q[TX]), f->tx_n);
	/* The reset waits for an event buffer. */
	assert_int_equal(ring_used_idx(&f->q[EV]), 0);
	post_event(f);
	expect_transport_reset(f, 1);
	expect_pkt(f, &p, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(p.dst_port, 601);
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	/* A second reset while nothing waits for it: one event. */
	virtio_vsock_transport_reset(f->v);
	expect_eof(f, s);
	post_event(f);
	post_event(f);
	expect_transport_reset(f, 2);
	close(s);
	close(fd);
	close(lfd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_config),
	    T(test_create_errors),
	    cmocka_unit_test(test_host_table),
	    T(test_host_connect),
	    T(test_host_connect_refused),
	    T(test_timeouts),
	    T(test_bad_handshake),
	    T(test_out_of_fds),
	    T(test_guest_connect),
	    T(test_credit),
	    T(test_credit_request),
	    T(test_overrun),
	    T(test_shutdown_host_first),
	    T(test_shutdown_guest_first),
	    T(test_many_streams),
	    T(test_ctrl_queued),
	    T(test_ctrl_before_data),
	    T(test_malformed),
	    T(test_rx_buffer_rules),
	    T(test_device_reset),
	    T(test_after_fork),
	    T(test_after_restore), T(test_reset_gate),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
