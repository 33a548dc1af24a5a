// SPDX-License-Identifier: MIT
/*
 * Unix sockets for virtio-vsock. Every socket is non-blocking and
 * close-on-exec, every send is MSG_NOSIGNAL (a peer gone is an error to
 * handle, not a SIGPIPE). The epoll set is level-triggered: whoever
 * cannot make progress on a socket stops watching it (vsock_host_watch
 * with fewer events), or the I/O thread would spin.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>

#include "vsock-host.h"

/* "_4294967295": what a guest-initiated connection adds to the path. */
#define PORT_SUFFIX_MAX 11

uint64_t vsock_host_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int vsock_host_init(struct vsock_host *h)
{
	memset(h, 0, sizeof(*h));
	h->epoll_fd = h->listen_fd = h->timer_fd = -1;
	h->timeout_ms = VSOCK_TIMEOUT_MS;
	h->next_port = VSOCK_FIRST_HOST_PORT;
	h->conns = calloc(VSOCK_MAX_CONNS, sizeof(*h->conns));
	if (!h->conns)
		return -ENOMEM;
	for (uint32_t i = 0; i < VSOCK_HASH_SIZE; i++)
		h->hash[i] = -1;
	/* Lowest slots first: a small table stays dense. */
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		h->conns[i].fd = -1;
		h->free_slots[i] = (uint16_t)(VSOCK_MAX_CONNS - 1 - i);
	}
	h->nr_free = VSOCK_MAX_CONNS;
	return 0;
}

static int make_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	return 0;
}

/* A socket file left by a process that is gone may be replaced; a live one may not. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : neg_errno();
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	/* EAGAIN: a full backlog, someone is listening. */
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return neg_errno();
	return 0;
}

static int listen_on(struct vsock_host *h, const char *path, char *reason, size_t reason_len)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	struct stat st;
	int r;

	if (make_addr(&sa, path) < 0 || strlen(path) + PORT_SUFFIX_MAX >= sizeof(sa.sun_path)) {
		snprintf(reason, reason_len, "vsock socket path '%s' is empty or too long", path);
		return -ENAMETOOLONG;
	}
	r = clear_stale(path, &sa);
	if (r < 0) {
		snprintf(reason, reason_len, "vsock socket path '%s': %s", path,
			 r == -EEXIST	    ? "exists and is not a socket"
			 : r == -EADDRINUSE ? "another process listens on it"
					    : strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = neg_errno();
		snprintf(reason, reason_len, "cannot bind vsock socket '%s': %s", path,
			 strerror(-r));
		return r;
	}
	if (listen(fd, VSOCK_LISTEN_BACKLOG) < 0 || lstat(path, &st) < 0) {
		r = neg_errno();
		unlink(path);
		snprintf(reason, reason_len, "cannot listen on vsock socket '%s': %s", path,
			 strerror(-r));
		return r;
	}
	snprintf(h->path, sizeof(h->path), "%s", path);
	h->owner_pid = getpid();
	h->path_dev = st.st_dev;
	h->path_ino = st.st_ino;
	h->listen_fd = TAKE_FD(fd);
	return 0;
}

static void unlink_ours(struct vsock_host *h)
{
	struct stat st;

	/* Not in a fork child, and not a file someone else has put there since. */
	if (h->owner_pid != getpid() || !h->path[0])
		return;
	if (lstat(h->path, &st) == 0 && st.st_dev == h->path_dev && st.st_ino == h->path_ino)
		unlink(h->path);
	h->owner_pid = 0;
}

static int ep_add(int epfd, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? neg_errno() : 0;
}

int vsock_host_start(struct vsock_host *h, const char *path, char *reason, size_t reason_len)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	_cleanup_close_ int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int r;

	if (ep < 0 || tfd < 0) {
		r = neg_errno();
		snprintf(reason, reason_len, "cannot create vsock epoll or timer: %s",
			 strerror(-r));
		return r;
	}
	r = ep_add(ep, tfd, EPOLLIN, VSOCK_TAG_TIMER);
	/*
	 * The new epoll instance takes over at once, before anything else can
	 * fail: a fork child must never be left watching the parent's.
	 */
	if (r >= 0 && h->epoll_fd >= 0 && dup3(ep, h->epoll_fd, O_CLOEXEC) < 0)
		r = neg_errno();
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up vsock epoll: %s", strerror(-r));
		return r;
	}
	if (h->epoll_fd < 0)
		h->epoll_fd = TAKE_FD(ep);
	h->timer_fd = TAKE_FD(tfd);
	h->armed_ms = 0;
	r = listen_on(h, path, reason, reason_len);
	if (r < 0)
		return r;
	r = ep_add(h->epoll_fd, h->listen_fd, EPOLLIN, VSOCK_TAG_LISTEN);
	if (r < 0)
		snprintf(reason, reason_len, "cannot watch vsock socket '%s': %s", path,
			 strerror(-r));
	return r;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Empty the table, closing our copies of the sockets. */
static void drop_table(struct vsock_host *h)
{
	if (!h->conns)
		return;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &h->conns[i];

		close_fd(&c->fd);
		free(c->buf);
		memset(c, 0, sizeof(*c));
		c->fd = -1;
		h->free_slots[i] = (uint16_t)(VSOCK_MAX_CONNS - 1 - i);
	}
	for (uint32_t i = 0; i < VSOCK_HASH_SIZE; i++)
		h->hash[i] = -1;
	h->nr_free = VSOCK_MAX_CONNS;
	h->nr_conns = 0;
}

void vsock_host_stop(struct vsock_host *h)
{
	drop_table(h);
	free(h->conns);
	h->conns = NULL;
	close_fd(&h->listen_fd);
	unlink_ours(h);
	close_fd(&h->timer_fd);
	close_fd(&h->epoll_fd);
}

void vsock_host_forget(struct vsock_host *h)
{
	/* close() on a copy neither shuts the parent's socket down nor leaves its epoll set. */
	drop_table(h);
	close_fd(&h->listen_fd);
	close_fd(&h->timer_fd);
	h->owner_pid = 0;
	h->listen_paused = false;
	h->armed_ms = 0;
}

struct vsock_conn *vsock_host_conn_new(struct vsock_host *h, int fd, enum vsock_conn_state state)
{
	struct vsock_conn *c;
	uint32_t gen;

	if (h->nr_free == 0)
		return NULL;
	c = &h->conns[h->free_slots[--h->nr_free]];
	gen = c->gen + 1;
	memset(c, 0, sizeof(*c));
	c->slot = (uint32_t)(c - h->conns);
	c->gen = gen;
	c->fd = fd;
	c->state = state;
	c->hash_next = -1;
	h->nr_conns++;
	return c;
}

void vsock_host_conn_close_fd(struct vsock_host *h, struct vsock_conn *c)
{
	if (c->fd >= 0 && c->watched)
		(void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	c->watched = false;
	c->events = 0;
	close_fd(&c->fd);
	free(c->buf);
	c->buf = NULL;
	c->buf_head = c->buf_len = 0;
}

static void listen_resume(struct vsock_host *h)
{
	if (h->listen_paused && ep_add(h->epoll_fd, h->listen_fd, EPOLLIN, VSOCK_TAG_LISTEN) >= 0) {
		h->listen_paused = false;
		h->listen_retry_ms = 0;
	}
}

void vsock_host_conn_free(struct vsock_host *h, struct vsock_conn *c)
{
	vsock_host_conn_close_fd(h, c);
	vsock_host_unhash(h, c);
	c->state = VSOCK_CONN_FREE;
	c->deadline_ms = 0;
	/* Events still queued for the old socket must not match a new one here. */
	c->gen++;
	h->free_slots[h->nr_free++] = (uint16_t)c->slot;
	h->nr_conns--;
	listen_resume(h);
}

struct vsock_conn *vsock_host_conn_of(struct vsock_host *h, uint64_t data)
{
	uint32_t slot = (uint32_t)data;
	struct vsock_conn *c;

	if (slot >= VSOCK_MAX_CONNS)
		return NULL;
	c = &h->conns[slot];
	if (c->state == VSOCK_CONN_FREE || c->gen != (uint32_t)(data >> 32) || c->fd < 0)
		return NULL;
	return c;
}

static uint32_t hash_of(uint32_t local, uint32_t peer)
{
	return ((local * 0x9e3779b1u) ^ (peer * 0x85ebca77u)) >> 21;
}

_Static_assert(VSOCK_HASH_SIZE == 1u << 11, "hash_of() yields 11 bits");

void vsock_host_hash(struct vsock_host *h, struct vsock_conn *c)
{
	uint32_t b = hash_of(c->local_port, c->peer_port);

	if (c->hashed)
		return;
	c->hash_next = h->hash[b];
	h->hash[b] = (int32_t)c->slot;
	c->hashed = true;
}

void vsock_host_unhash(struct vsock_host *h, struct vsock_conn *c)
{
	int32_t *p;

	if (!c->hashed)
		return;
	for (p = &h->hash[hash_of(c->local_port, c->peer_port)]; *p >= 0;
	     p = &h->conns[*p].hash_next) {
		if (*p == (int32_t)c->slot) {
			*p = c->hash_next;
			break;
		}
	}
	c->hash_next = -1;
	c->hashed = false;
}

struct vsock_conn *vsock_host_lookup(struct vsock_host *h, uint32_t local_port, uint32_t peer_port)
{
	for (int32_t i = h->hash[hash_of(local_port, peer_port)]; i >= 0;
	     i = h->conns[i].hash_next) {
		struct vsock_conn *c = &h->conns[i];

		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

static bool port_in_use(const struct vsock_host *h, uint32_t port)
{
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
		if (h->conns[i].state != VSOCK_CONN_FREE && h->conns[i].local_port == port)
			return true;
	return false;
}

uint32_t vsock_host_pick_port(struct vsock_host *h)
{
	/* At most VSOCK_MAX_CONNS ports are taken out of 2^32 - 2^30 - 1: this ends. */
	for (;;) {
		uint32_t p = h->next_port;

		h->next_port = p >= UINT32_MAX - 1 ? VSOCK_FIRST_HOST_PORT : p + 1;
		if (!port_in_use(h, p))
			return p;
	}
}

int vsock_host_watch(struct vsock_host *h, struct vsock_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)c->gen << 32) | c->slot};

	if (c->fd < 0 || (c->watched && c->events == events))
		return 0;
	if (!events) {
		/* EPOLLHUP and EPOLLERR come whatever we ask: only leaving the set stops them. */
		if (c->watched && epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
			return neg_errno();
		c->watched = false;
		c->events = 0;
		return 0;
	}
	if (epoll_ctl(h->epoll_fd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return neg_errno();
	c->watched = true;
	c->events = events;
	return 0;
}

int vsock_host_accept(struct vsock_host *h, struct vsock_conn **ret)
{
	int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int err = errno;
	struct vsock_conn *c;

	if (fd >= 0) {
		c = vsock_host_conn_new(h, fd, VSOCK_CONN_HANDSHAKE);
		if (!c) {
			close(fd);
			return -ENOSPC;
		}
		vsock_host_set_deadline(h, c, true);
		*ret = c;
		return 1;
	}
	if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
		return 0;
	/* Out of fds or memory: the listener would stay readable and spin the I/O thread. */
	if (!h->listen_paused && epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, h->listen_fd, NULL) == 0) {
		h->listen_paused = true;
		h->listen_retry_ms = vsock_host_now_ms() + h->timeout_ms;
		vsock_host_arm_timer(h);
	}
	return 0;
}

/* Is line[0..len) the start of "CONNECT <up to 10 digits>"? */
static bool line_prefix_ok(const char *line, uint32_t len)
{
	static const char cmd[] = "CONNECT ";
	const uint32_t cmd_len = sizeof(cmd) - 1;

	if (len > cmd_len + 10)
		return false;
	for (uint32_t i = 0; i < len; i++) {
		if (i < cmd_len ? line[i] != cmd[i] : (line[i] < '0' || line[i] > '9'))
			return false;
	}
	return true;
}

int vsock_host_handshake(struct vsock_host *h, struct vsock_conn *c)
{
	char *p = c->line + c->line_len;
	uint32_t room = VSOCK_LINE_MAX - c->line_len, body;
	uint64_t port = 0;
	ssize_t n, take;
	char *nl;

	/* Peek first, then take up to the newline only: the rest is the stream's. */
	n = recv(c->fd, p, room, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : neg_errno();
	nl = memchr(p, '\n', (size_t)n);
	take = nl ? nl - p + 1 : n;
	if (recv(c->fd, p, (size_t)take, MSG_DONTWAIT) != take)
		return -EIO;
	c->line_len += (uint32_t)take;
	body = nl ? c->line_len - 1 : c->line_len;
	if (!line_prefix_ok(c->line, body))
		return -EPROTO;
	if (!nl)
		return c->line_len < VSOCK_LINE_MAX ? 0 : -EPROTO;
	if (body <= 8)
		return -EPROTO; /* no digits */
	for (uint32_t i = 8; i < body; i++)
		port = port * 10 + (uint64_t)(c->line[i] - '0');
	if (port > UINT32_MAX)
		return -ERANGE;
	c->local_port = vsock_host_pick_port(h);
	c->peer_port = (uint32_t)port;
	c->state = VSOCK_CONN_CONNECTING;
	vsock_host_hash(h, c);
	vsock_host_set_deadline(h, c, true);
	return 1;
}

int vsock_host_connect(const struct vsock_host *h, uint32_t port, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	char path[sizeof(h->path) + PORT_SUFFIX_MAX];
	struct sockaddr_un sa;
	int r;

	snprintf(path, sizeof(path), "%s_%u", h->path, port);
	r = make_addr(&sa, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	/* Non-blocking: fails with EAGAIN rather than wait for a full backlog. */
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
		return neg_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int vsock_host_send_ok(struct vsock_conn *c)
{
	char line[24];
	int n = snprintf(line, sizeof(line), "OK %u\n", c->local_port);

	/* The first bytes on a fresh socket: a short write means the client is gone. */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		return -EPIPE;
	return 0;
}

int vsock_host_peek(struct vsock_conn *c)
{
	char byte;
	ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n >= 0)
		return (int)n;
	return errno == EAGAIN || errno == EINTR ? -EAGAIN : neg_errno();
}

ssize_t vsock_host_read(struct vsock_conn *c, const struct iovec *iov, size_t cnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = cnt};
	ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT);

	return n < 0 ? neg_errno() : n;
}

/* The buffered bytes, oldest first, as one or two pieces of the ring. */
static size_t buf_pieces(const struct vsock_conn *c, struct iovec iov[2])
{
	uint32_t first = MIN(c->buf_len, VSOCK_BUF_ALLOC - c->buf_head);

	iov[0] = (struct iovec){.iov_base = c->buf + c->buf_head, .iov_len = first};
	iov[1] = (struct iovec){.iov_base = c->buf, .iov_len = c->buf_len - first};
	return c->buf_len > first ? 2 : 1;
}

static ssize_t send_iov(int fd, const struct iovec *iov, size_t cnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = cnt};
	ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : neg_errno();
	return n;
}

ssize_t vsock_host_flush(struct vsock_conn *c)
{
	struct iovec iov[2];
	ssize_t n;

	if (!c->buf_len)
		return 0;
	n = send_iov(c->fd, iov, buf_pieces(c, iov));
	if (n <= 0)
		return n;
	c->buf_head = (uint32_t)((c->buf_head + (size_t)n) % VSOCK_BUF_ALLOC);
	c->buf_len -= (uint32_t)n;
	if (!c->buf_len) {
		/* Idle streams hold no buffer: 1024 of them would be 256 MiB. */
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	return n;
}

/* Append iov's bytes from offset skip on to the ring. */
static int buf_append(struct vsock_conn *c, const struct iovec *iov, size_t cnt, size_t skip,
		      size_t len)
{
	uint32_t tail;

	if (len > VSOCK_BUF_ALLOC - c->buf_len)
		return -ENOBUFS;
	if (!c->buf) {
		c->buf = malloc(VSOCK_BUF_ALLOC);
		if (!c->buf)
			return -ENOMEM;
		c->buf_head = 0;
	}
	tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
	for (size_t i = 0; i < cnt && len; i++) {
		const uint8_t *src = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		if (skip >= n) {
			skip -= n;
			continue;
		}
		src += skip;
		n = MIN(n - skip, len);
		skip = 0;
		len -= n;
		c->buf_len += (uint32_t)n;
		while (n) {
			size_t piece = MIN(n, (size_t)(VSOCK_BUF_ALLOC - tail));

			memcpy(c->buf + tail, src, piece);
			src += piece;
			n -= piece;
			tail = (uint32_t)((tail + piece) % VSOCK_BUF_ALLOC);
		}
	}
	return 0;
}

ssize_t vsock_host_write(struct vsock_conn *c, const struct iovec *iov, size_t cnt, size_t len)
{
	ssize_t done = 0, n = 0;
	int r;

	/* Older bytes go first: the stream must stay in order. */
	if (c->buf_len) {
		done = vsock_host_flush(c);
		if (done < 0)
			return done;
	}
	if (!c->buf_len) {
		n = send_iov(c->fd, iov, cnt);
		if (n < 0)
			return n;
	}
	r = buf_append(c, iov, cnt, (size_t)n, len - (size_t)n);
	if (r < 0)
		return r;
	return done + n;
}

void vsock_host_set_deadline(struct vsock_host *h, struct vsock_conn *c, bool on)
{
	c->deadline_ms = on ? vsock_host_now_ms() + h->timeout_ms : 0;
	/* An earlier deadline than the armed one re-arms; later ones wait for the expiry scan. */
	if (on && (!h->armed_ms || c->deadline_ms < h->armed_ms))
		vsock_host_arm_timer(h);
}

void vsock_host_wake(struct vsock_host *h)
{
	struct itimerspec its = {.it_value.tv_nsec = 1};

	/* Earlier than any deadline: the expiry scan that follows re-arms for those. */
	if (timerfd_settime(h->timer_fd, 0, &its, NULL) == 0)
		h->armed_ms = 1;
}

void vsock_host_timer_ack(struct vsock_host *h)
{
	uint64_t expirations;

	if (read(h->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	h->armed_ms = 0;
	if (h->listen_paused && h->listen_retry_ms <= vsock_host_now_ms())
		listen_resume(h);
}

void vsock_host_arm_timer(struct vsock_host *h)
{
	struct itimerspec its = {0};
	uint64_t next = h->listen_paused ? h->listen_retry_ms : 0;

	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		uint64_t d = h->conns[i].deadline_ms;

		if (d && (!next || d < next))
			next = d;
	}
	/* Absolute time: a deadline already past fires at once. Zero disarms. */
	its.it_value.tv_sec = (time_t)(next / 1000);
	its.it_value.tv_nsec = (long)(next % 1000) * 1000000;
	if (timerfd_settime(h->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		h->armed_ms = next;
}
