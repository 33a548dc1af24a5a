/* SPDX-License-Identifier: MIT */
/*
 * A TAP interface as a packet backend for virtio-net. Every packet read
 * or written carries a 12-byte virtio-net header in front of the
 * Ethernet frame (IFF_VNET_HDR with TUNSETVNETHDRSZ 12: the VERSION_1
 * struct virtio_net_hdr_v1, num_buffers included, which the kernel
 * leaves alone on reads), so checksum and segmentation offloads pass
 * through untouched. One read or write is one packet; the fd is
 * non-blocking and close-on-exec.
 *
 * The same framing on a datagram or seqpacket socket (one packet per
 * message) stands in for a TAP where there is none: a user-space switch,
 * or unit tests. Such a backend takes no TAP ioctls, so it has no
 * offload control: it must accept and deliver whatever the header says.
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* sizeof(struct virtio_net_hdr_v1) */
#define TAP_VNET_HDR_LEN 12

struct tap {
	int fd;
	/* The interface's name ("" for a socket backend). */
	char name[IFNAMSIZ];
	bool is_socket;
	/* TUN_F_* in force (what the TAP may hand us). */
	unsigned int offloads;
};

/*
 * Open (or create, with CAP_NET_ADMIN) TAP `name` ("fvm%d" lets the
 * kernel pick a number; tap->name gets the real one). No offloads yet.
 * reason gets one line on failure.
 */
int tap_open(const char *name, struct tap *ret_tap, char *reason, size_t reason_len) __must_check;

/*
 * Use a TAP someone else opened. fd is duplicated (the caller keeps
 * its own); it must be a TAP with IFF_VNET_HDR and IFF_NO_PI. The open
 * file, which the caller's fd shares, becomes non-blocking with a 12-byte
 * vnet header and no offloads.
 */
int tap_adopt(int fd, struct tap *ret_tap, char *reason, size_t reason_len) __must_check;

/* A datagram or seqpacket socket with TAP framing (see above); fd is duplicated. */
int tap_adopt_socket(int fd, struct tap *ret_tap, char *reason, size_t reason_len) __must_check;

/*
 * What the TAP may hand us, from the virtio-net features the guest
 * negotiated (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN). A no-op on a socket.
 */
int tap_set_offloads(struct tap *tap, uint64_t guest_features) __must_check;

/* The TUN_F_* flags tap_set_offloads() would ask for. */
unsigned int tap_offloads_for(uint64_t guest_features);

/* Close the fd (tap->fd becomes -1). Safe on a closed or zeroed-then-(-1) tap. */
void tap_close(struct tap *tap);
