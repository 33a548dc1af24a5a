// SPDX-License-Identifier: MIT
/*
 * virtio-net queues and the TAP event loop.
 *
 * Edge-triggered TAP: an EPOLLIN edge sets rx.ready, and only a read that
 * returns EAGAIN clears it, so a packet is never forgotten when the
 * handler stops early (no buffers: the rx kick resumes; budget spent:
 * the internal eventfd, level-triggered in the same epoll set, makes the
 * epoll fd readable again for the I/O thread's next round).
 *
 * Buffers are never held across calls. What a call cannot finish goes
 * back on the available ring (unpop: last_avail_idx moves back over
 * chains this device popped last and has not used), the way a device may
 * look at buffers and leave them. So a reset, a snapshot or a fork finds
 * no buffer in the device's hands.
 */
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/uio.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "virtio-net.h"

#define HDR_LEN TAP_VNET_HDR_LEN
/* One more than the largest packet: a datagram that fills it was truncated. */
#define RX_BUF_SIZE (HDR_LEN + VIRTIO_NET_MAX_FRAME + 1)

#define F(bit) (1ull << (bit))
#define NET_FEATURES                                                                               \
	(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CSUM) |                     \
	 F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |      \
	 F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |      \
	 F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_MRG_RXBUF))

#define NO_OFFLOADS (~0ull)

/* epoll_event.data.u32: which fd spoke. */
enum { EV_TAP = 1, EV_WAKE = 2 };

/* The first bytes of struct virtio_net_config: all we offer (MAC, STATUS). */
struct net_config {
	uint8_t mac[6];
	uint16_t status;
};
_Static_assert(sizeof(struct net_config) == 8, "mac + status");

static bool negotiated(const struct virtio_net *n, unsigned int bit)
{
	return n->vdev.driver_features & F(bit);
}

/* Come back on the I/O thread's next round (the eventfd is level-triggered). */
static void net_wake(struct virtio_net *n)
{
	uint64_t one = 1;
	ssize_t w = write(n->wake_fd, &one, sizeof(one));

	(void)w; /* a saturated counter is still readable */
}

/* Give back the last `count` chains popped from queue q: they will be popped again. */
static void net_unpop(struct virtio_net *n, uint32_t q, uint16_t count)
{
	n->vdev.queues[q].last_avail_idx = (uint16_t)(n->vdev.queues[q].last_avail_idx - count);
}

/*
 * Pop, and when the ring is empty ask for a kick at the next entry; an
 * entry that arrived meanwhile is taken at once (no kick will come).
 */
static int net_pop(struct virtio_net *n, uint32_t q, struct virtq_chain *c)
{
	int r = virtio_mmio_pop(&n->vdev, q, c);

	if (r == 0 && virtio_mmio_queue_live(&n->vdev, q) &&
	    virtq_enable_notify(&n->vdev.queues[q], n->vdev.mem))
		r = virtio_mmio_pop(&n->vdev, q, c);
	return r;
}

static void backend_error(struct virtio_net *n, const char *what, int err)
{
	n->stats.backend_errors++;
	if (ratelimit_allow(&n->backend_rl))
		log_warn("virtio-net at 0x%llx: %s '%s' failed: %s",
			 (unsigned long long)n->vdev.base, what,
			 n->tap.is_socket ? "socket" : n->tap.name, strerror(err));
}

/* Tell the TAP what the guest takes, once per negotiation. */
static void net_sync_offloads(struct virtio_net *n)
{
	int r;

	if (!(n->vdev.status & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    n->offload_features == n->vdev.driver_features)
		return;
	n->offload_features = n->vdev.driver_features;
	/* On failure the TAP keeps its offloads; rx_header_fix() drops what the guest can't. */
	r = tap_set_offloads(&n->tap, n->vdev.driver_features);
	if (r < 0)
		backend_error(n, "setting offloads on", -r);
}

static void epoll_set_tap(struct virtio_net *n, bool want_out)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET | (want_out ? EPOLLOUT : 0),
				 .data.u32 = EV_TAP};

	/* MOD re-polls the TAP: writability gained before this call is not missed. */
	if (n->tap.fd >= 0 && epoll_ctl(n->epoll_fd, EPOLL_CTL_MOD, n->tap.fd, &ev) < 0)
		backend_error(n, "watching", errno);
}

/* ---- transmit ---- */

/* May the guest send this header, given what it negotiated? */
static bool tx_header_allowed(const struct virtio_net *n, const struct virtio_net_hdr_v1 *h)
{
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !negotiated(n, VIRTIO_NET_F_CSUM))
		return false;
	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return false;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !negotiated(n, VIRTIO_NET_F_HOST_ECN))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return negotiated(n, VIRTIO_NET_F_HOST_TSO4);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return negotiated(n, VIRTIO_NET_F_HOST_TSO6);
	default:
		return false;
	}
}

/*
 * Send one chain. 0: sent or dropped (the chain is done), -EAGAIN: the
 * backend is full, -EINVAL: the chain broke the framing rules (the
 * device has been failed).
 */
static int tx_one(struct virtio_net *n, const struct virtq_chain *c)
{
	struct virtio_net_hdr_v1 h;
	ssize_t w;

	if (c->nr_in || c->out_bytes < HDR_LEN + VIRTIO_NET_MIN_FRAME ||
	    c->out_bytes > HDR_LEN + VIRTIO_NET_MAX_FRAME) {
		virtio_mmio_fail(&n->vdev, c->nr_in ? "transmit buffer with device-writable parts"
						    : "transmit buffer with a bad length");
		return -EINVAL;
	}
	virtq_chain_read(c, 0, &h, sizeof(h));
	if (n->tap.fd < 0 || !tx_header_allowed(n, &h)) {
		n->stats.tx_drops++;
		return 0;
	}
	do
		w = writev(n->tap.fd, c->iov, c->nr_out);
	while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
		return -EAGAIN;
	if (w < 0) {
		n->stats.tx_drops++;
		/* Interface down: expected, like a cable pulled out. */
		if (errno != EIO)
			backend_error(n, "writing to", errno);
		return 0;
	}
	n->stats.tx_packets++;
	n->stats.tx_bytes += c->out_bytes - HDR_LEN;
	return 0;
}

static void tx_process(struct virtio_net *n)
{
	struct virtq_chain *c = &n->tx.chain;
	uint32_t budget = VIRTIO_NET_TX_BUDGET;
	bool pushed = false;
	int r = 0;

	if (n->tx.blocked)
		return;
	n->tx.more = false;
	do {
		while (r >= 0) {
			if (budget == 0) {
				n->tx.more = true;
				net_wake(n);
				goto out;
			}
			if (virtio_mmio_pop(&n->vdev, VIRTIO_NET_Q_TX, c) <= 0)
				break;
			r = tx_one(n, c);
			if (r == -EAGAIN) {
				/* Leave it on the ring; EPOLLOUT brings us back to it. */
				net_unpop(n, VIRTIO_NET_Q_TX, 1);
				n->tx.blocked = true;
				epoll_set_tap(n, true);
				goto out;
			}
			budget--;
			/* Transmit buffers are only read: nothing written (a failed one too). */
			if (virtio_mmio_push(&n->vdev, VIRTIO_NET_Q_TX, c->head, 0) == 0)
				pushed = true;
		}
	} while (r >= 0 && virtio_mmio_queue_live(&n->vdev, VIRTIO_NET_Q_TX) &&
		 virtq_enable_notify(&n->vdev.queues[VIRTIO_NET_Q_TX], n->vdev.mem));
out:
	if (pushed)
		virtio_mmio_notify_used(&n->vdev, VIRTIO_NET_Q_TX);
}

/* ---- receive ---- */

/*
 * Fit what the TAP handed us to what the guest negotiated. false: drop
 * it (a packet read under an earlier negotiation, or a socket backend
 * that ignores offloads).
 */
static bool rx_header_fix(const struct virtio_net *n, uint8_t *pkt)
{
	struct virtio_net_hdr_v1 h;
	uint8_t gso;

	memcpy(&h, pkt, sizeof(h));
	gso = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	/* Without GUEST_CSUM the device MUST set flags to zero (5.1.6.4.1). */
	if (!negotiated(n, VIRTIO_NET_F_GUEST_CSUM)) {
		if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h.flags = 0;
	}
	h.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if ((h.gso_type & VIRTIO_NET_HDR_GSO_ECN) && !negotiated(n, VIRTIO_NET_F_GUEST_ECN))
		return false;
	if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 && !negotiated(n, VIRTIO_NET_F_GUEST_TSO4)) ||
	    (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !negotiated(n, VIRTIO_NET_F_GUEST_TSO6)) ||
	    (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     gso != VIRTIO_NET_HDR_GSO_TCPV6))
		return false;
	/* Set for real once the buffers are counted; 1 is right without MRG_RXBUF. */
	h.num_buffers = htole16(1);
	memcpy(pkt, &h, sizeof(h));
	return true;
}

/* Read one packet into rx.buf. false: nothing more to read for now. */
static bool rx_read(struct virtio_net *n)
{
	ssize_t r;

	do
		r = read(n->tap.fd, n->rx.buf, RX_BUF_SIZE);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		/*
		 * EAGAIN ends the edge. Any other error, or 0 (end of a socket
		 * backend), too: with an edge-triggered fd, retrying would spin.
		 */
		n->rx.ready = false;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			backend_error(n, "reading from", errno);
		return false;
	}
	if (r < HDR_LEN + VIRTIO_NET_MIN_FRAME || r >= RX_BUF_SIZE ||
	    !rx_header_fix(n, n->rx.buf)) {
		n->stats.rx_drops++;
		return true;
	}
	n->rx.len = (uint32_t)r;
	return true;
}

/* The writable byte at offset off of a chain (off < in_bytes). */
static uint8_t *chain_byte(const struct virtq_chain *c, uint64_t off)
{
	for (uint32_t i = c->nr_out; i < (uint32_t)c->nr_out + c->nr_in; i++) {
		if (off < c->iov[i].iov_len)
			return (uint8_t *)c->iov[i].iov_base + off;
		off -= c->iov[i].iov_len;
	}
	return NULL;
}

/* Copy up to len bytes into the chain's writable segments; returns the bytes copied. */
static uint32_t chain_fill(const struct virtq_chain *c, const uint8_t *src, uint32_t len)
{
	uint32_t done = 0;

	for (uint32_t i = c->nr_out; i < (uint32_t)c->nr_out + c->nr_in && done < len; i++) {
		uint32_t k = (uint32_t)MIN(c->iov[i].iov_len, (uint64_t)(len - done));

		memcpy(c->iov[i].iov_base, src + done, k);
		done += k;
	}
	return done;
}

/*
 * Hand the packet's buffers to the driver in one step. virtq_push()
 * publishes every entry as it goes, and a driver polling in between
 * would see the first buffer of a merged packet without the rest: Linux
 * then drops the packet and takes the late buffers for packets of their
 * own. So the entries are written first and used->idx moves once, with
 * release order (virtio 2.7.8).
 */
static void rx_publish(struct virtio_net *n, uint16_t nr)
{
	struct virtq *vq = &n->vdev.queues[VIRTIO_NET_Q_RX];
	uint8_t *used;

	if (!vq->ready || nr == 0)
		return;
	/* Checked inside RAM when the queue went ready (virtq_check_layout). */
	used = guest_mem_ptr(n->vdev.mem, vq->used_addr, 4 + 8ull * vq->num);
	if (!used) {
		virtio_mmio_fail(&n->vdev, "receive used ring outside guest RAM");
		return;
	}
	for (uint16_t i = 0; i < nr; i++) {
		uint8_t *e = used + 4 + 8ull * ((uint16_t)(vq->used_idx + i) % vq->num);
		uint32_t id = htole32(n->rx.used[i].head), len = htole32(n->rx.used[i].len);

		memcpy(e, &id, 4);
		memcpy(e + 4, &len, 4);
	}
	vq->used_idx = (uint16_t)(vq->used_idx + nr);
	__atomic_store_n((uint16_t *)(used + 2), htole16(vq->used_idx), __ATOMIC_RELEASE);
	n->rx.pushed = true;
}

/* Does the driver hold no buffer of this queue? Then it cannot add any. */
static bool ring_all_taken(const struct virtio_net *n, uint32_t q)
{
	const struct virtq *vq = &n->vdev.queues[q];

	return (uint16_t)(vq->last_avail_idx - vq->used_idx) >= vq->num;
}

/*
 * Place the waiting packet. 1: delivered or dropped, 0: not enough
 * buffers (none kept, the packet waits), < 0: the device failed.
 */
static int rx_place(struct virtio_net *n)
{
	bool mrg = negotiated(n, VIRTIO_NET_F_MRG_RXBUF);
	struct virtq_chain *c = &n->rx.chain;
	uint32_t done = 0, len = n->rx.len;
	uint8_t *nb[2] = {NULL, NULL};
	uint16_t nr = 0, le;
	int r;

	while (done < len) {
		r = net_pop(n, VIRTIO_NET_Q_RX, c);
		if (r < 0)
			return r;
		if (r == 0 && !ring_all_taken(n, VIRTIO_NET_Q_RX)) {
			net_unpop(n, VIRTIO_NET_Q_RX, nr);
			return 0;
		}
		if (r > 0 && (c->nr_out || c->in_bytes < HDR_LEN)) {
			virtio_mmio_fail(&n->vdev, c->nr_out
						       ? "receive buffer with device-readable parts"
						       : "receive buffer smaller than the header");
			return -EINVAL;
		}
		/* It can never fit: drop it, and leave the buffers to the next packet. */
		if (r == 0 || nr == ARRAY_SIZE(n->rx.used) || (!mrg && c->in_bytes < len)) {
			net_unpop(n, VIRTIO_NET_Q_RX, (uint16_t)(nr + r));
			n->stats.rx_drops++;
			n->rx.len = 0;
			return 1;
		}
		if (nr == 0) {
			nb[0] = chain_byte(c, offsetof(struct virtio_net_hdr_v1, num_buffers));
			nb[1] = chain_byte(c, offsetof(struct virtio_net_hdr_v1, num_buffers) + 1);
		}
		n->rx.used[nr].head = c->head;
		n->rx.used[nr].len = chain_fill(c, n->rx.buf + done, len - done);
		done += n->rx.used[nr++].len;
	}
	/* The header may straddle segments: write num_buffers byte by byte. */
	le = htole16(nr);
	memcpy(nb[0], (uint8_t *)&le, 1);
	memcpy(nb[1], (uint8_t *)&le + 1, 1);
	rx_publish(n, nr);
	n->stats.rx_packets++;
	n->stats.rx_bytes += len - HDR_LEN;
	n->rx.len = 0;
	return 1;
}

static void rx_process(struct virtio_net *n)
{
	uint32_t budget = VIRTIO_NET_RX_BUDGET;

	net_sync_offloads(n);
	while (n->tap.fd >= 0 && virtio_mmio_queue_live(&n->vdev, VIRTIO_NET_Q_RX)) {
		if (!n->rx.len) {
			if (!n->rx.ready)
				break;
			if (budget == 0) {
				net_wake(n);
				break;
			}
			budget--;
			if (!rx_read(n) || !n->rx.len)
				continue;
		}
		if (rx_place(n) <= 0)
			break;
	}
	if (n->rx.pushed) {
		n->rx.pushed = false;
		virtio_mmio_notify_used(&n->vdev, VIRTIO_NET_Q_RX);
	}
}

/* ---- transport callbacks and the event handler ---- */

static void net_queue_notify(void *dev, uint32_t index)
{
	struct virtio_net *n = dev;

	if (index == VIRTIO_NET_Q_TX)
		tx_process(n);
	else
		rx_process(n);
}

/*
 * No buffer is ever held (see above), so completing means nothing. A
 * reset (!complete) drops the packet waiting for buffers: it was read
 * under the old negotiation, which may have allowed more offloads.
 */
static void net_drain(void *dev, bool complete)
{
	struct virtio_net *n = dev;

	if (complete)
		return;
	if (n->rx.len)
		n->stats.rx_drops++;
	n->rx.len = 0;
	n->tx.more = false;
	if (n->tx.blocked) {
		n->tx.blocked = false;
		epoll_set_tap(n, false);
	}
}

void virtio_net_event_handler(void *opaque, short revents)
{
	struct virtio_net *n = opaque;
	struct epoll_event ev[4];
	bool writable = false;
	int k;

	virtio_mmio_lock(&n->vdev);
	k = epoll_wait(n->epoll_fd, ev, ARRAY_SIZE(ev), 0);
	for (int i = 0; i < k; i++) {
		if (ev[i].data.u32 == EV_WAKE) {
			uint64_t count;
			ssize_t rd = read(n->wake_fd, &count, sizeof(count));

			(void)rd; /* EAGAIN: someone else emptied it, fine */
			continue;
		}
		/* An error or hang-up is reported once (edge): the read sees it and stops. */
		if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			n->rx.ready = true;
		if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			writable = true;
	}
	if (writable && n->tx.blocked) {
		n->tx.blocked = false;
		n->tx.more = true;
		epoll_set_tap(n, false);
	}
	/* Frozen or not yet running: the flags keep the work for the thaw's notify. */
	if (n->tx.more && virtio_mmio_queue_live(&n->vdev, VIRTIO_NET_Q_TX))
		tx_process(n);
	rx_process(n);
	virtio_mmio_unlock(&n->vdev);
}

int virtio_net_event_fd(const struct virtio_net *net)
{
	return net->epoll_fd;
}

static const struct virtio_device_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .queue_notify = net_queue_notify,
    .drain = net_drain,
};

/* ---- setup ---- */

static int net_open_backend(const struct virtio_net_params *p, struct tap *ret_tap, char *reason,
			    size_t reason_len)
{
	if (p->tap_fd >= 0 && p->tap_fd_is_socket)
		return tap_adopt_socket(p->tap_fd, ret_tap, reason, reason_len);
	if (p->tap_fd >= 0)
		return tap_adopt(p->tap_fd, ret_tap, reason, reason_len);
	if (p->tap_name && p->tap_name[0])
		return tap_open(p->tap_name, ret_tap, reason, reason_len);
	*ret_tap = (struct tap){.fd = -1};
	return 0;
}

static int net_pick_mac(const uint8_t want[6], uint8_t mac[6], char *reason, size_t reason_len)
{
	static const uint8_t zero[6];

	if (memcmp(want, zero, 6) != 0) {
		if (want[0] & 1) {
			snprintf(reason, reason_len,
				 "MAC %02x:%02x:%02x:%02x:%02x:%02x is a multicast address",
				 want[0], want[1], want[2], want[3], want[4], want[5]);
			return -EINVAL;
		}
		memcpy(mac, want, 6);
		return 0;
	}
	if (getrandom(mac, 6, 0) != 6) {
		int r = neg_errno();

		snprintf(reason, reason_len, "cannot pick a MAC address: %s", strerror(-r));
		return r;
	}
	/* Locally administered, unicast. */
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
	return 0;
}

/* A new epoll set watching tap_fd (if any) and wake_fd. */
static int net_epoll_new(int tap_fd, int wake_fd)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event wake = {.events = EPOLLIN, .data.u32 = EV_WAKE};
	struct epoll_event tap = {.events = EPOLLIN | EPOLLET, .data.u32 = EV_TAP};

	if (ep < 0)
		return neg_errno();
	if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &wake) < 0)
		return neg_errno();
	/* A TAP with packets already queued reports at once: ADD polls it. */
	if (tap_fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, tap_fd, &tap) < 0)
		return neg_errno();
	return TAKE_FD(ep);
}

static void net_config(const struct virtio_net *n, struct net_config *cfg)
{
	memcpy(cfg->mac, n->mac, 6);
	cfg->status = htole16(n->tap.fd >= 0 ? VIRTIO_NET_S_LINK_UP : 0);
}

int virtio_net_create(const struct virtio_net_params *p, const struct guest_mem *mem, uint64_t base,
		      struct virtio_net **ret_net, char *reason, size_t reason_len)
{
	_cleanup_(virtio_net_destroyp) struct virtio_net *n = calloc(1, sizeof(*n));
	struct net_config cfg;
	int r;

	if (!n)
		return -ENOMEM;
	n->tap.fd = n->epoll_fd = n->wake_fd = -1;
	n->offload_features = NO_OFFLOADS;
	r = net_pick_mac(p->mac, n->mac, reason, reason_len);
	if (r < 0)
		return r;
	n->rx.buf = malloc(RX_BUF_SIZE);
	if (!n->rx.buf)
		return -ENOMEM;
	r = net_open_backend(p, &n->tap, reason, reason_len);
	if (r < 0)
		return r;
	n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = n->wake_fd < 0 ? neg_errno() : net_epoll_new(n->tap.fd, n->wake_fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up network events: %s", strerror(-r));
		return r;
	}
	n->epoll_fd = r;
	net_config(n, &cfg);
	r = virtio_mmio_init(&n->vdev, &net_ops, n, mem, base, 2, VIRTIO_NET_QUEUE_SIZE,
			     NET_FEATURES, &cfg, sizeof(cfg));
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up virtio for the network device");
		return r;
	}
	*ret_net = TAKE_PTR(n);
	return 0;
}

int virtio_net_after_fork(struct virtio_net *n, const struct virtio_net_params *p, char *reason,
			  size_t reason_len)
{
	struct tap tap = {.fd = -1};
	_cleanup_close_ int wake = -1, ep = -1;
	struct net_config cfg;
	uint8_t mac[6];
	int r;

	/* The parent's other threads may have held it at the fork. */
	pthread_mutex_init(&n->vdev.lock, NULL);
	r = net_pick_mac(p->mac, mac, reason, reason_len);
	if (r < 0)
		return r;
	r = net_open_backend(p, &tap, reason, reason_len);
	if (r < 0)
		return r;
	wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake < 0)
		r = neg_errno();
	else
		r = ep = net_epoll_new(tap.fd, wake);
	/* The inherited epoll set is the parent's too: ours replaces it at the same number. */
	if (r >= 0 && dup3(ep, n->epoll_fd, O_CLOEXEC) < 0)
		r = neg_errno();
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up network events: %s", strerror(-r));
		tap_close(&tap);
		return r;
	}
	close(n->wake_fd);
	n->wake_fd = TAKE_FD(wake);
	tap_close(&n->tap);
	n->tap = tap;
	/* Nothing from the parent's TAP carries over. */
	n->rx.len = 0;
	n->rx.ready = false;
	n->tx.blocked = false;
	n->tx.more = false;
	n->offload_features = NO_OFFLOADS;
	memcpy(n->mac, mac, 6);
	net_config(n, &cfg);
	memcpy(n->vdev.config, &cfg, sizeof(cfg));
	n->vdev.config_generation++;
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_mmio_destroy(&n->vdev);
	if (n->epoll_fd >= 0)
		close(n->epoll_fd);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	tap_close(&n->tap);
	free(n->rx.buf);
	free(n);
}
