// SPDX-License-Identifier: MIT
/*
 * devices/virtio-vsock.c and vsock-host.c, the device's life: rx buffer
 * rules, a device reset, and the transport reset after a fork and a
 * restore (with the gate that holds host connections until the guest
 * has handled it). Streams are in test-virtio-vsock.c.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_rx_buffer_rules),
	    T(test_device_reset),
	    T(test_after_fork),
	    T(test_after_restore),
	    T(test_reset_gate),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
