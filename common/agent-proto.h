/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol between fvm (the host) and fvm-agent (inside the
 * guest, on vsock port 52), version 1. guest/agent/PROTOCOL.md is the
 * reference; this header is its C form.
 *
 * A frame is a little-endian u32 length (the bytes after it), a u8 type
 * and a payload. Data frames (STDIN, STDOUT, STDERR) carry raw bytes;
 * every other payload is a list of TLVs (le16 tag, le32 length, value).
 *
 * The decoder never allocates and never reads outside the frame it is
 * given: a decoded message points into that frame (struct agent_bytes),
 * so the frame must outlive it. The encoder checks a message against the
 * same rules the decoder enforces, so neither side sends what the other
 * refuses.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Versions this code speaks; HELLO picks one, 0 is never valid. */
#define AGENT_PROTO_VERSION	1
#define AGENT_PROTO_VERSION_MIN 1
#define AGENT_PROTO_VERSION_MAX 1
#define AGENT_VSOCK_PORT	52

/* Frame layout and limits: every length a peer controls is capped here. */
#define AGENT_HDR_SIZE	      5u /* le32 length + u8 type */
#define AGENT_PAYLOAD_MAX     (1u << 20)
#define AGENT_FRAME_MAX	      (AGENT_HDR_SIZE + AGENT_PAYLOAD_MAX)
#define AGENT_TLV_HDR_SIZE    6u	  /* le16 tag + le32 length */
#define AGENT_DATA_MAX	      (64u << 10) /* one STDIN/STDOUT/STDERR frame */
#define AGENT_ARGV_MAX	      1024u
#define AGENT_ENV_MAX	      1024u
#define AGENT_ARG_LEN_MAX     (128u << 10) /* Linux's MAX_ARG_STRLEN */
#define AGENT_CWD_MAX	      4095u
#define AGENT_HOSTNAME_MAX    64u
#define AGENT_IFNAME_MAX      15u /* IFNAMSIZ - 1 */
#define AGENT_ENTROPY_MAX     512u
#define AGENT_MESSAGE_MAX     1024u
#define AGENT_VERSION_STR_MAX 64u
#define AGENT_MAC_LEN	      6u

enum agent_msg_type {
	AGENT_MSG_HELLO = 0x01,	    /* host -> agent */
	AGENT_MSG_HELLO_OK = 0x02,  /* agent -> host */
	AGENT_MSG_EXEC = 0x10,	    /* host -> agent */
	AGENT_MSG_STDIN = 0x11,	    /* host -> agent, raw bytes */
	AGENT_MSG_STDIN_EOF = 0x12, /* host -> agent, empty */
	AGENT_MSG_STDOUT = 0x13,    /* agent -> host, raw bytes */
	AGENT_MSG_STDERR = 0x14,    /* agent -> host, raw bytes */
	AGENT_MSG_EXIT = 0x15,	    /* agent -> host */
	AGENT_MSG_IDENTITY = 0x20,  /* host -> agent */
	AGENT_MSG_READY = 0x21,	    /* agent -> host */
	AGENT_MSG_ERROR = 0x7f,	    /* agent -> host */
	AGENT_MSG_MAX = 0x80,
};

/*
 * TLV tags, one namespace for all messages. A tag with AGENT_TAG_OPTIONAL
 * set is an extension a decoder that does not know it skips; any other
 * unknown tag, or a known tag in a message that does not take it, is
 * refused.
 */
enum agent_tag {
	AGENT_TAG_VERSION = 1,	     /* le32 */
	AGENT_TAG_AGENT_VERSION = 2, /* string */
	AGENT_TAG_ARGV = 3,	     /* string, repeated, in order */
	AGENT_TAG_ENV = 4,	     /* string "K=V", repeated */
	AGENT_TAG_TIMEOUT_MS = 5,    /* le32, 0: none */
	AGENT_TAG_CWD = 6,	     /* string */
	AGENT_TAG_EXIT_CODE = 7,     /* le32 */
	AGENT_TAG_SIGNAL = 8,	     /* le32 */
	AGENT_TAG_TIMED_OUT = 9,     /* u8 0/1 */
	AGENT_TAG_HOSTNAME = 10,     /* string */
	AGENT_TAG_IFNAME = 11,	     /* string */
	AGENT_TAG_MAC = 12,	     /* 6 bytes */
	AGENT_TAG_IPV4 = 13,	     /* 4 address bytes + u8 prefix length */
	AGENT_TAG_GATEWAY = 14,	     /* 4 bytes */
	AGENT_TAG_ENTROPY = 15,	     /* 1..512 bytes */
	AGENT_TAG_REALTIME = 16,     /* le64 seconds + le32 nanoseconds */
	AGENT_TAG_APPLIED = 17,	     /* le32 AGENT_ID_* mask */
	AGENT_TAG_MESSAGE = 18,	     /* string */
	AGENT_TAG_MAX,
};
#define AGENT_TAG_OPTIONAL 0x8000u

/*
 * The parts of an IDENTITY: which are present in a request, and which
 * were applied in READY (or ERROR). AGENT_ID_DRY_RUN in READY says that
 * the agent only checked them (fvm-agent --dry-run-identity).
 */
#define AGENT_ID_HOSTNAME (1u << 0)
#define AGENT_ID_MAC	  (1u << 1)
#define AGENT_ID_IPV4	  (1u << 2)
#define AGENT_ID_GATEWAY  (1u << 3)
#define AGENT_ID_ENTROPY  (1u << 4)
#define AGENT_ID_REALTIME (1u << 5)
#define AGENT_ID_ALL	  ((1u << 6) - 1)
#define AGENT_ID_DRY_RUN  (1u << 31)

/* Bytes inside a frame (or, for the encoder, anywhere); no terminator. */
struct agent_bytes {
	const uint8_t *data;
	uint32_t len;
};

struct agent_msg_exec {
	uint32_t argc;
	uint32_t envc;
	uint32_t timeout_ms;
	struct agent_bytes cwd; /* len 0: the agent's */
	struct agent_bytes argv[AGENT_ARGV_MAX];
	struct agent_bytes env[AGENT_ENV_MAX];
};

struct agent_msg_identity {
	uint32_t present; /* AGENT_ID_*; HOSTNAME is required */
	struct agent_bytes hostname;
	struct agent_bytes ifname; /* len 0: eth0 */
	uint8_t mac[AGENT_MAC_LEN];
	uint8_t ipv4[4];
	uint8_t prefix;
	uint8_t gateway[4];
	struct agent_bytes entropy;
	uint64_t sec;
	uint32_t nsec;
};

struct agent_msg {
	uint8_t type; /* enum agent_msg_type */
	union {
		struct {
			uint32_t version;
		} hello;
		struct {
			uint32_t version;
			struct agent_bytes agent_version;
		} hello_ok;
		struct agent_msg_exec exec;
		struct agent_bytes data; /* STDIN, STDOUT, STDERR */
		struct {
			uint32_t exit_code;
			uint32_t signal;
			bool timed_out;
		} exit;
		struct agent_msg_identity identity;
		struct {
			uint32_t applied;
		} ready;
		struct {
			struct agent_bytes message;
			bool has_applied;
			uint32_t applied;
		} error;
	};
};

/* The bytes of a C string, without its terminator. */
struct agent_bytes agent_bytes_str(const char *s);

/*
 * Decodes the whole frame frame[0..len): header, payload, nothing after.
 * -EMSGSIZE when the header announces more than AGENT_FRAME_MAX, -EBADMSG
 * for anything else malformed; *reason (when reason is not NULL) then
 * names the problem in a static string. ret points into frame; on
 * failure it holds garbage.
 */
int agent_msg_decode(const uint8_t *frame, size_t len, struct agent_msg *ret,
		     const char **reason) __must_check;

/*
 * Encodes m as one frame into buf[0..cap). -EINVAL (with *reason) for a
 * message the decoder would refuse, -EMSGSIZE when it does not fit.
 */
int agent_msg_encode(const struct agent_msg *m, uint8_t *buf, size_t cap, size_t *ret_len,
		     const char **reason) __must_check;

bool agent_version_supported(uint32_t version);

/* Writes a frame header for a payload of payload_len bytes. */
void agent_frame_header(uint8_t *buf, uint8_t type, uint32_t payload_len);

/* Checks the header at buf[0..AGENT_HDR_SIZE) and sets the frame size. */
int agent_frame_size(const uint8_t *buf, size_t *ret_size, const char **reason) __must_check;

/* NUL-terminated copies of n strings, in one allocation; free() the result. */
int agent_strv_dup(const struct agent_bytes *v, uint32_t n, char ***ret) __must_check;

/* Copies b into dst as a C string; -ENAMETOOLONG when it does not fit. */
int agent_bytes_copy(struct agent_bytes b, char *dst, size_t cap) __must_check;

/*
 * Frames over a stream socket, without blocking (MSG_DONTWAIT): callers
 * poll. The receiver reads at most one frame ahead, never past its end,
 * so the bytes after a frame stay in the socket.
 */
struct agent_rx {
	uint8_t *buf; /* AGENT_FRAME_MAX bytes, owned by the caller */
	size_t have;
	size_t want; /* 0 until the header is in */
	bool done;
};

/*
 * Reads what is there of the current frame. 1: buf[0..*ret_len) is a
 * whole frame (valid until the next call); 0: more to come; -EPIPE: the
 * peer closed between frames; -EBADMSG: it closed inside one, or the
 * header is bad; -EMSGSIZE: the header announces too much.
 */
int agent_rx_read(struct agent_rx *rx, int fd, size_t *ret_len, const char **reason) __must_check;

struct agent_tx {
	const uint8_t *buf;
	size_t len;
	size_t off;
};

/* Sends what the socket takes. 1: all sent; 0: more to send; -errno. */
int agent_tx_flush(struct agent_tx *tx, int fd) __must_check;

/* CLOCK_MONOTONIC in milliseconds. */
int64_t agent_now_ms(void);

/* Milliseconds until deadline_ms for poll(): -1 for no deadline (< 0). */
int agent_poll_timeout(int64_t deadline_ms);

/* Blocking forms with a deadline (< 0: none); -ETIMEDOUT when it passes. */
int agent_frame_send(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms) __must_check;
int agent_frame_recv(int fd, struct agent_rx *rx, int64_t deadline_ms, size_t *ret_len,
		     const char **reason) __must_check;
