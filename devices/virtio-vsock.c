// SPDX-License-Identifier: MIT
/*
 * virtio-vsock packets. A packet is a 44-byte header and its payload;
 * framing is free (VERSION_1), so the header may span segments. Every
 * field the guest writes is checked before it is used:
 *
 *  - tx chain with device-writable segments: the driver broke the
 *    queue's framing, the device fails (NEEDS_RESET);
 *  - rx or event buffer that is device-readable or too small for a
 *    header (an event): likewise;
 *  - tx chain shorter than a header, src_cid not the guest's: dropped
 *    (nobody to answer);
 *  - dst_cid not the host's, type not STREAM: answered with an RST, as
 *    Linux does for a socket that does not exist;
 *  - len above VIRTIO_VSOCK_MAX_PKT or unlike the bytes the chain
 *    carries, an unknown op, an op the stream's state does not allow,
 *    data past the credit we gave: the stream is reset (it has lost
 *    bytes it cannot get back);
 *  - a packet for no stream: RST (unless it is an RST).
 * Each of these counts in stats.malformed. Every tx chain goes back on
 * the used ring, whatever it held.
 *
 * No chain is held between calls: an rx buffer is taken only once there
 * is something to put in it (data is peeked at first), so drain has
 * nothing to finish.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "virtio-vsock.h"

#define HDR_SIZE  ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define HOST_CID  2u
#define SHUT_BOTH (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)

_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio 5.10.6 header");

enum { Q_RX, Q_TX, Q_EVENT };

/* Control packets a stream owes the guest, sent lowest bit first. */
#define CTRL_REQUEST  (1u << 0)
#define CTRL_RESPONSE (1u << 1)
#define CTRL_CREDIT   (1u << 2)
#define CTRL_SHUTDOWN (1u << 3)
#define CTRL_RST      (1u << 4)

static void conn_close(struct virtio_vsock *v, struct vsock_conn *c, bool rst);

static bool conn_alive(const struct vsock_conn *c)
{
	return c->state >= VSOCK_CONN_HANDSHAKE && c->state <= VSOCK_CONN_CLOSING;
}

/* What the guest can still take on this stream (5.10.6.3); a lying fwd_cnt gives none. */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool wants_read(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && !c->peer_eof &&
	       !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && !vsock_linked(&c->rx_link) &&
	       peer_credit(c) > 0;
}

/* Watch the socket for exactly what the stream can act on now. */
static void conn_watch(struct virtio_vsock *v, struct vsock_conn *c)
{
	uint32_t ev = 0;

	switch (c->state) {
	case VSOCK_CONN_HANDSHAKE:
		ev = EPOLLIN;
		break;
	case VSOCK_CONN_ESTABLISHED:
		ev = (wants_read(c) ? EPOLLIN : 0) | (c->buf_len ? EPOLLOUT : 0);
		break;
	case VSOCK_CONN_CLOSING:
		ev = EPOLLOUT;
		break;
	default:
		return;
	}
	if (vsock_host_watch(&v->host, c, ev) < 0) {
		if (c->state == VSOCK_CONN_HANDSHAKE)
			v->stats.conns_refused++;
		conn_close(v, c, c->state != VSOCK_CONN_HANDSHAKE);
	}
}

static void ctrl_queue(struct virtio_vsock *v, struct vsock_conn *c, uint8_t bits)
{
	c->pending |= bits;
	if (!vsock_linked(&c->ctrl_link))
		vsock_list_append(&v->ctrl, &c->ctrl_link);
}

/* An RST for a guest packet that matched no stream (swapped addresses, its type). */
static void rst_queue(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	struct vsock_rst *e;

	/* Never answer a reset with a reset: two ends could bounce them forever. */
	if (le16toh(h->op) == VIRTIO_VSOCK_OP_RST)
		return;
	if (v->rst_len == VIRTIO_VSOCK_RST_MAX) {
		v->stats.ctrl_dropped++;
		return;
	}
	e = &v->rsts[(v->rst_head + v->rst_len++) % VIRTIO_VSOCK_RST_MAX];
	*e = (struct vsock_rst){.src_cid = le64toh(h->dst_cid),
				.src_port = le32toh(h->dst_port),
				.dst_port = le32toh(h->src_port),
				.type = le16toh(h->type)};
}

/*
 * Forget the socket. With rst the guest is told: the slot lives on
 * (ZOMBIE) until the RST has gone, so the queue of control packets
 * stays bounded by the table.
 */
static void conn_close(struct virtio_vsock *v, struct vsock_conn *c, bool rst)
{
	if (vsock_linked(&c->rx_link))
		vsock_list_del(&c->rx_link);
	vsock_host_unhash(&v->host, c);
	vsock_host_conn_close_fd(&v->host, c);
	c->deadline_ms = 0;
	if (rst) {
		c->state = VSOCK_CONN_ZOMBIE;
		/* An RST says it all: what else was owed is moot. */
		c->pending = 0;
		ctrl_queue(v, c, CTRL_RST);
		return;
	}
	if (vsock_linked(&c->ctrl_link))
		vsock_list_del(&c->ctrl_link);
	vsock_host_conn_free(&v->host, c);
}

static void push(struct virtio_vsock *v, uint32_t q, uint16_t head, uint32_t len)
{
	if (virtio_mmio_push(&v->vdev, q, head, len) == 0)
		v->pushed |= 1u << q;
}

static void flush_notify(struct virtio_vsock *v)
{
	for (uint32_t q = 0; q < VIRTIO_VSOCK_NR_QUEUES; q++)
		if (v->pushed & (1u << q))
			virtio_mmio_notify_used(&v->vdev, q);
	v->pushed = 0;
}

/* Pop; when the ring is empty, ask for a kick at the next entry and look once more. */
static int pop_notify(struct virtio_vsock *v, uint32_t q, struct virtq_chain *ch)
{
	int r = virtio_mmio_pop(&v->vdev, q, ch);

	if (r == 0 && virtio_mmio_queue_live(&v->vdev, q) &&
	    virtq_enable_notify(&v->vdev.queues[q], v->vdev.mem))
		r = virtio_mmio_pop(&v->vdev, q, ch);
	return r;
}

/* A buffer the driver gave us to write into: writable only, and at least min bytes. */
static int take_writable(struct virtio_vsock *v, uint32_t q, struct virtq_chain *ch, uint32_t min)
{
	int r = pop_notify(v, q, ch);

	if (r <= 0)
		return r;
	if (ch->nr_out || ch->in_bytes < min) {
		v->stats.malformed++;
		push(v, q, ch->head, 0);
		virtio_mmio_fail(&v->vdev, q == Q_RX
					       ? "vsock rx buffer is readable or too small"
					       : "vsock event buffer is readable or too small");
		return -EINVAL;
	}
	return 1;
}

/* Up to max bytes of segs[] from offset skip on, as iovecs in out[]; returns their count. */
static size_t sub_iov(const struct iovec *segs, size_t nr, uint64_t skip, uint64_t max,
		      struct iovec *out)
{
	size_t n = 0;

	for (size_t i = 0; i < nr && max; i++) {
		uint64_t len;

		if (skip >= segs[i].iov_len) {
			skip -= segs[i].iov_len;
			continue;
		}
		len = MIN(segs[i].iov_len - skip, max);
		out[n++] =
		    (struct iovec){.iov_base = (uint8_t *)segs[i].iov_base + skip, .iov_len = len};
		max -= len;
		skip = 0;
	}
	return n;
}

static void iov_fill(const struct iovec *iov, size_t nr, const void *src, size_t len)
{
	const uint8_t *p = src;

	for (size_t i = 0; i < nr && len; i++) {
		size_t n = MIN(iov[i].iov_len, len);

		memcpy(iov[i].iov_base, p, n);
		p += n;
		len -= n;
	}
}

/* Write the header into the rx buffer taken last and hand it over. */
static void rx_put(struct virtio_vsock *v, const struct virtio_vsock_hdr *h, uint32_t payload)
{
	struct virtq_chain *ch = &v->rx_chain;

	iov_fill(&ch->iov[ch->nr_out], ch->nr_in, h, HDR_SIZE);
	push(v, Q_RX, ch->head, HDR_SIZE + payload);
}

static void conn_hdr(struct virtio_vsock *v, struct vsock_conn *c, uint16_t op, uint32_t flags,
		     uint32_t len, struct virtio_vsock_hdr *h)
{
	*h = (struct virtio_vsock_hdr){
	    .src_cid = htole64(HOST_CID),
	    .dst_cid = htole64(v->guest_cid),
	    .src_port = htole32(c->local_port),
	    .dst_port = htole32(c->peer_port),
	    .len = htole32(len),
	    .type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
	    .op = htole16(op),
	    .flags = htole32(flags),
	    .buf_alloc = htole32(VSOCK_BUF_ALLOC),
	    .fwd_cnt = htole32(c->fwd_cnt),
	};
	/* Every packet tells the guest our credit. */
	c->fwd_told = c->fwd_cnt;
}

/* One control packet of c's into the rx buffer in hand. */
static void send_ctrl(struct virtio_vsock *v, struct vsock_conn *c)
{
	uint8_t bit = (uint8_t)(1u << __builtin_ctz(c->pending));
	struct virtio_vsock_hdr h;
	uint32_t flags = 0;
	uint16_t op;

	c->pending &= (uint8_t)~bit;
	switch (bit) {
	case CTRL_REQUEST:
		op = VIRTIO_VSOCK_OP_REQUEST;
		c->request_sent = true;
		break;
	case CTRL_RESPONSE:
		op = VIRTIO_VSOCK_OP_RESPONSE;
		break;
	case CTRL_CREDIT:
		op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
		break;
	case CTRL_SHUTDOWN:
		op = VIRTIO_VSOCK_OP_SHUTDOWN;
		flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
		break;
	default:
		op = VIRTIO_VSOCK_OP_RST;
		v->stats.resets_sent++;
		break;
	}
	conn_hdr(v, c, op, flags, 0, &h);
	rx_put(v, &h, 0);
	if (c->pending)
		return;
	vsock_list_del(&c->ctrl_link);
	if (c->state == VSOCK_CONN_ZOMBIE)
		vsock_host_conn_free(&v->host, c);
}

static void send_rst(struct virtio_vsock *v)
{
	const struct vsock_rst *e = &v->rsts[v->rst_head];
	struct virtio_vsock_hdr h = {
	    .src_cid = htole64(e->src_cid),
	    .dst_cid = htole64(v->guest_cid),
	    .src_port = htole32(e->src_port),
	    .dst_port = htole32(e->dst_port),
	    .type = htole16(e->type),
	    .op = htole16(VIRTIO_VSOCK_OP_RST),
	    .buf_alloc = htole32(VSOCK_BUF_ALLOC),
	};

	v->rst_head = (v->rst_head + 1) % VIRTIO_VSOCK_RST_MAX;
	v->rst_len--;
	v->stats.resets_sent++;
	rx_put(v, &h, 0);
}

/* Send what is owed; false while something still waits for an rx buffer. */
static bool ctrl_flush(struct virtio_vsock *v)
{
	while (v->rst_len || !vsock_list_empty(&v->ctrl)) {
		struct vsock_conn *c = NULL;

		if (!vsock_list_empty(&v->ctrl))
			c = vsock_conn_of(v->ctrl.next, ctrl_link);
		if (c && !c->pending) {
			vsock_list_del(&c->ctrl_link);
			continue;
		}
		if (take_writable(v, Q_RX, &v->rx_chain, HDR_SIZE) <= 0)
			return false;
		if (c)
			send_ctrl(v, c);
		else
			send_rst(v);
	}
	return true;
}

/* No more flows either way: close once the socket has the guest's last bytes. */
static void conn_check_done(struct virtio_vsock *v, struct vsock_conn *c)
{
	bool to_guest_done = c->peer_eof || (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV);
	bool from_guest_done = c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND;

	if (c->state != VSOCK_CONN_ESTABLISHED || !to_guest_done || !from_guest_done)
		return;
	if (c->buf_len) {
		c->state = VSOCK_CONN_CLOSING;
		vsock_host_set_deadline(&v->host, c, true);
		return;
	}
	conn_close(v, c, true);
}

/* The guest will send no more: once its bytes are out, so will we. */
static void conn_shut_write(struct vsock_conn *c)
{
	if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->buf_len && !c->wr_shut) {
		(void)shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

static void conn_forwarded(struct virtio_vsock *v, struct vsock_conn *c, size_t n)
{
	c->fwd_cnt += (uint32_t)n;
	/* A quarter of buf_alloc freed since the guest last heard: tell it before it stalls. */
	if (c->state == VSOCK_CONN_ESTABLISHED && !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) &&
	    c->fwd_cnt - c->fwd_told >= VSOCK_BUF_ALLOC / 4)
		ctrl_queue(v, c, CTRL_CREDIT);
}

static void conn_flush(struct virtio_vsock *v, struct vsock_conn *c)
{
	ssize_t n = vsock_host_flush(c);

	if (n < 0) {
		conn_close(v, c, true);
		return;
	}
	conn_forwarded(v, c, (size_t)n);
	if (c->buf_len)
		return;
	if (c->state == VSOCK_CONN_CLOSING) {
		conn_close(v, c, true);
		return;
	}
	conn_shut_write(c);
}

static void peer_eof(struct virtio_vsock *v, struct vsock_conn *c)
{
	c->peer_eof = true;
	ctrl_queue(v, c, CTRL_SHUTDOWN);
	conn_check_done(v, c);
}

/* Move socket bytes to the guest as far as credit and rx buffers go. */
static void conn_pull(struct virtio_vsock *v, struct vsock_conn *c)
{
	for (int i = 0; i < VIRTIO_VSOCK_PULL_BATCH && wants_read(c); i++) {
		struct virtq_chain *ch = &v->rx_chain;
		struct virtio_vsock_hdr h;
		uint64_t room;
		size_t cnt;
		ssize_t n;

		/* Look before taking an rx buffer: one taken must be used. */
		n = vsock_host_peek(c);
		if (n <= 0) {
			if (n == 0)
				peer_eof(v, c);
			else if (n != -EAGAIN)
				conn_close(v, c, true);
			return;
		}
		/* Control first: a RESPONSE must reach the guest before the stream's data. */
		if (!ctrl_flush(v) || take_writable(v, Q_RX, ch, HDR_SIZE) <= 0) {
			vsock_list_append(&v->rx_wait, &c->rx_link);
			return;
		}
		room = MIN(MIN(ch->in_bytes - HDR_SIZE, (uint64_t)VIRTIO_VSOCK_MAX_PKT),
			   (uint64_t)peer_credit(c));
		cnt = sub_iov(&ch->iov[ch->nr_out], ch->nr_in, HDR_SIZE, room, v->iov);
		n = room ? vsock_host_read(c, v->iov, cnt) : 0;
		if (n < 0 || (room && n == 0)) {
			/* The byte seen is gone: the socket failed. This buffer carries the RST. */
			conn_hdr(v, c, VIRTIO_VSOCK_OP_RST, 0, 0, &h);
			rx_put(v, &h, 0);
			v->stats.resets_sent++;
			conn_close(v, c, false);
			return;
		}
		/* A buffer with room for a header only still carries our credit. */
		conn_hdr(v, c, n ? VIRTIO_VSOCK_OP_RW : VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0,
			 (uint32_t)n, &h);
		rx_put(v, &h, (uint32_t)n);
		c->tx_cnt += (uint32_t)n;
		v->stats.bytes_to_guest += (uint64_t)n;
	}
}

/* rx buffers arrived: what was owed first, then streams that waited for them. */
static void rx_kick(struct virtio_vsock *v)
{
	if (!ctrl_flush(v))
		return;
	while (!vsock_list_empty(&v->rx_wait)) {
		struct vsock_conn *c = vsock_conn_of(v->rx_wait.next, rx_link);

		vsock_list_del(&c->rx_link);
		conn_pull(v, c);
		conn_watch(v, c);
		/* Back on the list: the buffers ran out again. */
		if (vsock_linked(&c->rx_link))
			break;
	}
}

static void event_deliver(struct virtio_vsock *v)
{
	struct virtio_vsock_event ev = {.id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
	struct virtq_chain *ch = &v->ev_chain;

	if (!v->event_pending || take_writable(v, Q_EVENT, ch, sizeof(ev)) <= 0)
		return;
	iov_fill(&ch->iov[ch->nr_out], ch->nr_in, &ev, sizeof(ev));
	push(v, Q_EVENT, ch->head, sizeof(ev));
	v->event_pending = false;
	v->reset_unacked = true;
	v->reset_gate_ms = vsock_host_now_ms() + VSOCK_RESET_GATE_MS;
}

/*
 * The reset gate. A driver handles TRANSPORT_RESET by dropping every
 * connection it has, whenever it gets to the event; a connection the host
 * makes in the meantime would be dropped with the rest, even after it has
 * carried a request and its answer. Linux reads the guest CID from config
 * space first thing when it handles the event, so that read opens the
 * gate; a driver that never reads it gets the gate opened after
 * VSOCK_RESET_GATE_MS. Held connections then send their REQUEST.
 */
static bool reset_gated(const struct virtio_vsock *v)
{
	return v->reset_unacked && vsock_host_now_ms() < v->reset_gate_ms;
}

static void reset_gate_open(struct virtio_vsock *v)
{
	v->reset_unacked = false;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->host.conns[i];

		if (c->gated) {
			c->gated = false;
			ctrl_queue(v, c, CTRL_REQUEST);
		}
	}
}

static void vsock_config_read(void *opaque, uint32_t offset, uint32_t size)
{
	struct virtio_vsock *v = opaque;

	if (v->reset_unacked) {
		reset_gate_open(v);
		ctrl_flush(v);
		flush_notify(v);
	}
}

/* Guest REQUEST to (2, P): connect to "<uds_path>_<P>". */
static void guest_connect(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	struct vsock_conn *c = NULL;
	int fd = -1;

	if (v->host.nr_free && vsock_host_connect(&v->host, le32toh(h->dst_port), &fd) >= 0)
		c = vsock_host_conn_new(&v->host, fd, VSOCK_CONN_ESTABLISHED);
	if (!c) {
		v->stats.conns_refused++;
		rst_queue(v, h);
		return;
	}
	c->local_port = le32toh(h->dst_port);
	c->peer_port = le32toh(h->src_port);
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	vsock_host_hash(&v->host, c);
	v->stats.conns_opened++;
	ctrl_queue(v, c, CTRL_RESPONSE);
	conn_watch(v, c);
}

/* The guest answered our REQUEST: tell the client, and the stream is open. */
static void host_established(struct virtio_vsock *v, struct vsock_conn *c)
{
	c->state = VSOCK_CONN_ESTABLISHED;
	c->pending &= (uint8_t)~CTRL_REQUEST;
	vsock_host_set_deadline(&v->host, c, false);
	if (vsock_host_send_ok(c) < 0) {
		conn_close(v, c, true);
		return;
	}
	v->stats.conns_opened++;
}

static void conn_rw(struct virtio_vsock *v, struct vsock_conn *c, const struct virtq_chain *ch,
		    uint32_t len)
{
	size_t cnt;
	ssize_t n;

	/* The bytes we hold are all the guest may have outstanding (its credit). */
	if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) || len > VSOCK_BUF_ALLOC - c->buf_len) {
		v->stats.malformed++;
		conn_close(v, c, true);
		return;
	}
	if (!len)
		return;
	cnt = sub_iov(ch->iov, ch->nr_out, HDR_SIZE, len, v->iov);
	v->stats.bytes_from_guest += len;
	n = vsock_host_write(c, v->iov, cnt, len);
	if (n < 0) {
		conn_close(v, c, true);
		return;
	}
	conn_forwarded(v, c, (size_t)n);
}

static void conn_shutdown(struct virtio_vsock *v, struct vsock_conn *c, uint32_t flags)
{
	flags &= SHUT_BOTH;
	c->guest_shut |= (uint8_t)flags;
	/* The guest reads no more: neither do we, and the unix peer's writes fail. */
	if ((flags & VIRTIO_VSOCK_SHUTDOWN_RCV) && !c->rd_shut) {
		(void)shutdown(c->fd, SHUT_RD);
		c->rd_shut = true;
	}
	conn_shut_write(c);
	conn_check_done(v, c);
}

/* A packet for stream c, whose header and length have been checked. */
static void conn_packet(struct virtio_vsock *v, struct vsock_conn *c,
			const struct virtio_vsock_hdr *h, const struct virtq_chain *ch)
{
	uint16_t op = le16toh(h->op);
	uint32_t len = le32toh(h->len);

	/* Every packet carries the guest's credit (5.10.6.3). */
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	if (op == VIRTIO_VSOCK_OP_RST) {
		v->stats.resets_received++;
		if (c->state == VSOCK_CONN_CONNECTING)
			v->stats.conns_refused++;
		conn_close(v, c, false);
		return;
	}
	/* The guest shut both ways: only its RST still matters. */
	if (c->state == VSOCK_CONN_CLOSING)
		return;
	if (len && op != VIRTIO_VSOCK_OP_RW)
		goto bad;
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != VSOCK_CONN_CONNECTING)
			goto bad;
		host_established(v, c);
		return;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != VSOCK_CONN_ESTABLISHED)
			goto bad;
		conn_rw(v, c, ch, len);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != VSOCK_CONN_ESTABLISHED)
			goto bad;
		conn_shutdown(v, c, le32toh(h->flags));
		return;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		return; /* taken above */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		if (c->state == VSOCK_CONN_ESTABLISHED)
			ctrl_queue(v, c, CTRL_CREDIT);
		return;
	default:
		/* A REQUEST on a live stream (unknown ops never get here). */
		goto bad;
	}
bad:
	v->stats.malformed++;
	conn_close(v, c, true);
}

static void tx_packet(struct virtio_vsock *v, const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t len;
	uint16_t op;

	if (ch->nr_in) {
		v->stats.malformed++;
		virtio_mmio_fail(&v->vdev, "vsock tx buffer has device-writable segments");
		return;
	}
	if (ch->out_bytes < HDR_SIZE) {
		v->stats.malformed++;
		return;
	}
	virtq_chain_read(ch, 0, &h, HDR_SIZE);
	len = le32toh(h.len);
	if (le64toh(h.src_cid) != v->guest_cid) {
		v->stats.malformed++;
		return;
	}
	if (le64toh(h.dst_cid) != HOST_CID || le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM) {
		v->stats.malformed++;
		rst_queue(v, &h);
		return;
	}
	c = vsock_host_lookup(&v->host, le32toh(h.dst_port), le32toh(h.src_port));
	op = le16toh(h.op);
	if (len > VIRTIO_VSOCK_MAX_PKT || len != ch->out_bytes - HDR_SIZE ||
	    op == VIRTIO_VSOCK_OP_INVALID || op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		v->stats.malformed++;
		if (c)
			conn_close(v, c, true);
		else
			rst_queue(v, &h);
		return;
	}
	if (!c) {
		if (op == VIRTIO_VSOCK_OP_REQUEST)
			guest_connect(v, &h);
		else
			rst_queue(v, &h);
		return;
	}
	conn_packet(v, c, &h, ch);
	if (conn_alive(c))
		conn_watch(v, c);
}

static void tx_process(struct virtio_vsock *v)
{
	struct virtq_chain *ch = &v->tx_chain;

	while (pop_notify(v, Q_TX, ch) > 0) {
		tx_packet(v, ch);
		push(v, Q_TX, ch->head, 0);
	}
	ctrl_flush(v);
}

static void vsock_queue_notify(void *dev, uint32_t index)
{
	struct virtio_vsock *v = dev;

	switch (index) {
	case Q_RX:
		rx_kick(v);
		break;
	case Q_TX:
		tx_process(v);
		break;
	case Q_EVENT:
		event_deliver(v);
		break;
	}
	flush_notify(v);
}

/* Every stream the guest knows of goes (the guest forgets them); handshakes stay. */
static void drop_streams(struct virtio_vsock *v)
{
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->host.conns[i];

		if (c->state > VSOCK_CONN_HANDSHAKE)
			conn_close(v, c, false);
	}
	v->rst_len = 0;
}

static void vsock_drain(void *dev, bool complete)
{
	struct virtio_vsock *v = dev;

	/* No chain is ever held between calls: completing has nothing to do. */
	if (complete)
		return;
	/* A reset or a queue taken down: the driver forgets its streams, and so do we. */
	drop_streams(v);
	v->event_pending = false;
	v->pushed = 0;
}

static const struct virtio_device_ops vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .queue_notify = vsock_queue_notify,
    .drain = vsock_drain,
    .config_read = vsock_config_read,
};

static void accept_clients(struct virtio_vsock *v)
{
	for (int i = 0; i < VIRTIO_VSOCK_EVENT_BATCH; i++) {
		struct vsock_conn *c;
		int r = vsock_host_accept(&v->host, &c);

		if (r == 0)
			return;
		if (r < 0)
			v->stats.conns_refused++;
		else
			conn_watch(v, c);
	}
}

static void host_handshake(struct virtio_vsock *v, struct vsock_conn *c)
{
	int r = vsock_host_handshake(&v->host, c);

	if (r < 0) {
		v->stats.conns_refused++;
		conn_close(v, c, false);
	} else if (r > 0 && reset_gated(v)) {
		c->gated = true;
	} else if (r > 0) {
		ctrl_queue(v, c, CTRL_REQUEST);
	}
}

static void expire(struct virtio_vsock *v)
{
	uint64_t now = vsock_host_now_ms();

	vsock_host_timer_ack(&v->host);
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->host.conns[i];

		if (!c->deadline_ms || c->deadline_ms > now)
			continue;
		c->deadline_ms = 0;
		switch (c->state) {
		case VSOCK_CONN_HANDSHAKE:
			v->stats.conns_refused++;
			conn_close(v, c, false);
			break;
		case VSOCK_CONN_CONNECTING:
			v->stats.conns_refused++;
			/* Only a guest that saw the REQUEST has anything to forget. */
			conn_close(v, c, c->request_sent);
			break;
		case VSOCK_CONN_CLOSING:
			conn_close(v, c, true);
			break;
		default:
			break;
		}
	}
	vsock_host_arm_timer(&v->host);
}

static void conn_event(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events)
{
	switch (c->state) {
	case VSOCK_CONN_HANDSHAKE:
		host_handshake(v, c);
		break;
	case VSOCK_CONN_ESTABLISHED:
		if (c->buf_len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			conn_flush(v, c);
		if (c->state == VSOCK_CONN_ESTABLISHED &&
		    (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			conn_pull(v, c);
		break;
	case VSOCK_CONN_CLOSING:
		conn_flush(v, c);
		break;
	default:
		break;
	}
	conn_watch(v, c);
}

/* Notifications may have been lost on the way (a fork, a restore): look at every queue. */
static void kick_all(struct virtio_vsock *v)
{
	for (uint32_t q = 0; q < VIRTIO_VSOCK_NR_QUEUES; q++)
		if (virtio_mmio_queue_live(&v->vdev, q))
			vsock_queue_notify(v, q);
}

void virtio_vsock_event_handler(void *opaque, short revents)
{
	struct virtio_vsock *v = opaque;
	struct epoll_event evs[VIRTIO_VSOCK_EVENT_BATCH];
	int n;

	virtio_mmio_lock(&v->vdev);
	if (v->rekick) {
		v->rekick = false;
		kick_all(v);
	}
	if (v->reset_unacked && !reset_gated(v))
		reset_gate_open(v);
	n = epoll_wait(v->host.epoll_fd, evs, VIRTIO_VSOCK_EVENT_BATCH, 0);
	for (int i = 0; i < n; i++) {
		uint64_t data = evs[i].data.u64;
		struct vsock_conn *c;

		if (data == VSOCK_TAG_LISTEN) {
			accept_clients(v);
		} else if (data == VSOCK_TAG_TIMER) {
			expire(v);
		} else {
			/* NULL: closed by an earlier event of this batch. */
			c = vsock_host_conn_of(&v->host, data);
			if (c)
				conn_event(v, c, evs[i].events);
		}
	}
	ctrl_flush(v);
	flush_notify(v);
	virtio_mmio_unlock(&v->vdev);
}

int virtio_vsock_event_fd(const struct virtio_vsock *v)
{
	return v->host.epoll_fd;
}

/* Streams end; the guest hears of it on the event queue, as soon as it has a buffer there. */
static void transport_reset(struct virtio_vsock *v)
{
	drop_streams(v);
	v->event_pending = true;
	v->stats.transport_resets++;
}

/*
 * A new process: streams end now, the rest waits for the I/O thread, so
 * that interrupts go out through eventfds that are this process's.
 */
static void reset_later(struct virtio_vsock *v)
{
	transport_reset(v);
	v->rekick = true;
	vsock_host_wake(&v->host);
}

void virtio_vsock_transport_reset(struct virtio_vsock *v)
{
	virtio_mmio_lock(&v->vdev);
	transport_reset(v);
	event_deliver(v);
	flush_notify(v);
	virtio_mmio_unlock(&v->vdev);
}

int virtio_vsock_create(const struct virtio_vsock_params *p, const struct guest_mem *mem,
			uint64_t base, struct virtio_vsock **ret, char *reason, size_t reason_len)
{
	_cleanup_(virtio_vsock_destroyp) struct virtio_vsock *v = NULL;
	struct virtio_vsock_config cfg;
	int r;

	if (!p->uds_path || !p->uds_path[0]) {
		snprintf(reason, reason_len, "vsock needs a unix socket path");
		return -EINVAL;
	}
	/* 0-2 are reserved, -1 is VMADDR_CID_ANY, the upper 32 bits are reserved (5.10.4). */
	if (p->guest_cid < 3 || p->guest_cid >= UINT32_MAX) {
		snprintf(reason, reason_len, "vsock guest CID %llu is reserved or out of range",
			 (unsigned long long)p->guest_cid);
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	vsock_list_init(&v->ctrl);
	vsock_list_init(&v->rx_wait);
	v->guest_cid = p->guest_cid;
	r = vsock_host_init(&v->host);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot allocate the vsock connection table");
		return r;
	}
	r = vsock_host_start(&v->host, p->uds_path, reason, reason_len);
	if (r < 0)
		return r;
	cfg.guest_cid = htole64(p->guest_cid);
	r = virtio_mmio_init(&v->vdev, &vsock_ops, v, mem, base, VIRTIO_VSOCK_NR_QUEUES,
			     VIRTIO_VSOCK_QUEUE_SIZE, 0, &cfg, sizeof(cfg));
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up virtio for vsock");
		return r;
	}
	*ret = TAKE_PTR(v);
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	vsock_host_stop(&v->host);
	virtio_mmio_destroy(&v->vdev);
	free(v);
}

int virtio_vsock_after_fork(struct virtio_vsock *v, const char *new_uds_path, char *reason,
			    size_t reason_len)
{
	int r;

	/* The parent's other threads may have held it at the fork. */
	pthread_mutex_init(&v->vdev.lock, NULL);
	virtio_mmio_lock(&v->vdev);
	vsock_host_forget(&v->host);
	vsock_list_init(&v->ctrl);
	vsock_list_init(&v->rx_wait);
	v->rst_len = 0;
	v->pushed = 0;
	r = vsock_host_start(&v->host, new_uds_path, reason, reason_len);
	if (r >= 0)
		reset_later(v);
	virtio_mmio_unlock(&v->vdev);
	return r;
}

void virtio_vsock_after_restore(struct virtio_vsock *v)
{
	virtio_mmio_lock(&v->vdev);
	reset_later(v);
	virtio_mmio_unlock(&v->vdev);
}
