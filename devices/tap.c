// SPDX-License-Identifier: MIT
/*
 * TAP setup: TUNSETIFF on /dev/net/tun (or TUNGETIFF on an adopted fd),
 * the 12-byte vnet header, and offloads. The header size is set before
 * anything is read, so no packet ever comes with the 10-byte legacy
 * header. Offloads start at none: until the guest says what it takes,
 * the kernel checksums and segments everything it hands us.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "tap.h"

_Static_assert(sizeof(struct virtio_net_hdr_v1) == TAP_VNET_HDR_LEN, "VERSION_1 header");

#define TAP_NEEDED_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

/* Why TUNSETIFF refused, in the words an operator needs. */
static const char *setiff_hint(int err)
{
	switch (err) {
	case EPERM:
		return " (need CAP_NET_ADMIN, or a persistent TAP owned by this user)";
	case EBUSY:
		return " (another process has it open)";
	case EINVAL:
		return " (the name belongs to an interface that is not a single-queue TAP)";
	default:
		return "";
	}
}

/* The vnet header size and no offloads: the state every backend starts in. */
static int tap_prepare(struct tap *tap)
{
	int hdr_len = TAP_VNET_HDR_LEN;

	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		return neg_errno();
	if (ioctl(tap->fd, TUNSETOFFLOAD, 0ul) < 0)
		return neg_errno();
	tap->offloads = 0;
	return 0;
}

int tap_open(const char *name, struct tap *ret_tap, char *reason, size_t reason_len)
{
	struct tap tap = {.fd = -1};
	struct ifreq ifr = {0};
	int r;

	if (!name || !name[0] || strlen(name) >= IFNAMSIZ) {
		snprintf(reason, reason_len, "TAP name '%s' must be 1 to %d characters",
			 name ? name : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	tap.fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (tap.fd < 0) {
		r = neg_errno();
		snprintf(reason, reason_len, "cannot open TAP '%s': /dev/net/tun: %s%s", name,
			 strerror(-r), r == -ENOENT ? " (is the tun module loaded?)" : "");
		return r;
	}
	ifr.ifr_flags = TAP_NEEDED_FLAGS;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(tap.fd, TUNSETIFF, &ifr) < 0) {
		r = neg_errno();
		snprintf(reason, reason_len, "cannot open TAP '%s': %s%s", name, strerror(-r),
			 setiff_hint(-r));
		tap_close(&tap);
		return r;
	}
	memcpy(tap.name, ifr.ifr_name, IFNAMSIZ - 1);
	r = tap_prepare(&tap);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up TAP '%s': %s", tap.name, strerror(-r));
		tap_close(&tap);
		return r;
	}
	*ret_tap = tap;
	return 0;
}

/* A duplicate of fd, non-blocking and close-on-exec. */
static int dup_nonblocking(int fd)
{
	_cleanup_close_ int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int fl;

	if (copy < 0)
		return neg_errno();
	fl = fcntl(copy, F_GETFL);
	if (fl < 0 || fcntl(copy, F_SETFL, fl | O_NONBLOCK) < 0)
		return neg_errno();
	return TAKE_FD(copy);
}

int tap_adopt(int fd, struct tap *ret_tap, char *reason, size_t reason_len)
{
	struct tap tap = {.fd = -1};
	struct ifreq ifr = {0};
	int r;

	r = dup_nonblocking(fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot use TAP fd %d: %s", fd, strerror(-r));
		return r;
	}
	tap.fd = r;
	if (ioctl(tap.fd, TUNGETIFF, &ifr) < 0) {
		r = neg_errno();
		snprintf(reason, reason_len, "fd %d is not an attached TAP: %s", fd, strerror(-r));
		tap_close(&tap);
		return r;
	}
	memcpy(tap.name, ifr.ifr_name, IFNAMSIZ - 1);
	/* Without the vnet header (or with packet info) the framing would be wrong. */
	if ((ifr.ifr_flags & TAP_NEEDED_FLAGS) != TAP_NEEDED_FLAGS) {
		snprintf(reason, reason_len,
			 "fd %d ('%s') must be a TAP opened with IFF_TAP, IFF_NO_PI and "
			 "IFF_VNET_HDR (flags 0x%x)",
			 fd, tap.name, (unsigned int)(uint16_t)ifr.ifr_flags);
		tap_close(&tap);
		return -EINVAL;
	}
	r = tap_prepare(&tap);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot set up TAP '%s' (fd %d): %s", tap.name, fd,
			 strerror(-r));
		tap_close(&tap);
		return r;
	}
	*ret_tap = tap;
	return 0;
}

int tap_adopt_socket(int fd, struct tap *ret_tap, char *reason, size_t reason_len)
{
	int type = 0;
	socklen_t len = sizeof(type);
	int r;

	/* A stream would merge packets: the framing needs message boundaries. */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (type != SOCK_DGRAM && type != SOCK_SEQPACKET)) {
		snprintf(reason, reason_len, "fd %d is not a datagram or seqpacket socket", fd);
		return -EINVAL;
	}
	r = dup_nonblocking(fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot use socket fd %d: %s", fd, strerror(-r));
		return r;
	}
	*ret_tap = (struct tap){.fd = r, .is_socket = true};
	return 0;
}

unsigned int tap_offloads_for(uint64_t f)
{
	unsigned int off;

	/* The kernel takes TSO only with CSUM, and ECN only with TSO (tun's set_offload). */
	if (!(f & (1ull << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	off = TUN_F_CSUM;
	if (f & (1ull << VIRTIO_NET_F_GUEST_TSO4))
		off |= TUN_F_TSO4;
	if (f & (1ull << VIRTIO_NET_F_GUEST_TSO6))
		off |= TUN_F_TSO6;
	if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) && (f & (1ull << VIRTIO_NET_F_GUEST_ECN)))
		off |= TUN_F_TSO_ECN;
	return off;
}

int tap_set_offloads(struct tap *tap, uint64_t guest_features)
{
	unsigned int off = tap_offloads_for(guest_features);

	if (tap->fd < 0 || tap->is_socket)
		return 0;
	if (ioctl(tap->fd, TUNSETOFFLOAD, (unsigned long)off) < 0)
		return neg_errno();
	tap->offloads = off;
	return 0;
}

void tap_close(struct tap *tap)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
}
