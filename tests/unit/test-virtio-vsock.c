// SPDX-License-Identifier: MIT
/*
 * devices/virtio-vsock.c and vsock-host.c, streams: host- and
 * guest-initiated connections, data both ways, the handshake and its
 * failures, timeouts, credit, shutdown, many streams at once, control
 * packets waiting for rx buffers, malformed packets. The device's life
 * (resets, forks, restores) is in test-virtio-vsock-life.c.
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


#include "vsock-test-fixture.h"

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
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
