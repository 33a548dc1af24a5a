// SPDX-License-Identifier: MIT
/*
 * The agent wire protocol: encoder, strict decoder, and frame I/O over a
 * stream socket. The decoder is driven by one table of which tags each
 * message takes and how long their values may be; the encoder writes
 * through the same table and the same semantic check, so what one side
 * sends the other accepts.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent-proto.h"

struct tag_rule {
	uint16_t tag;
	uint32_t min, max; /* value length */
	bool required;
	bool repeated;
};

struct msg_rules {
	const struct tag_rule *tags; /* NULL: raw payload (data frames, STDIN_EOF) */
	uint32_t n;
	uint32_t raw_min, raw_max;
};

/* One rule per line reads as the table it is. */
/* clang-format off */
#define RULE(t, lo, hi, req, rep) \
	{ .tag = (t), .min = (lo), .max = (hi), .required = (req), .repeated = (rep) }

static const struct tag_rule hello_tags[] = {
	RULE(AGENT_TAG_VERSION, 4, 4, true, false),
};
static const struct tag_rule hello_ok_tags[] = {
	RULE(AGENT_TAG_VERSION, 4, 4, true, false),
	RULE(AGENT_TAG_AGENT_VERSION, 0, AGENT_VERSION_STR_MAX, false, false),
};
static const struct tag_rule exec_tags[] = {
	RULE(AGENT_TAG_ARGV, 0, AGENT_ARG_LEN_MAX, true, true),
	RULE(AGENT_TAG_ENV, 1, AGENT_ARG_LEN_MAX, false, true),
	RULE(AGENT_TAG_TIMEOUT_MS, 4, 4, false, false),
	RULE(AGENT_TAG_CWD, 1, AGENT_CWD_MAX, false, false),
};
static const struct tag_rule exit_tags[] = {
	RULE(AGENT_TAG_EXIT_CODE, 4, 4, true, false),
	RULE(AGENT_TAG_SIGNAL, 4, 4, true, false),
	RULE(AGENT_TAG_TIMED_OUT, 1, 1, true, false),
};
static const struct tag_rule identity_tags[] = {
	RULE(AGENT_TAG_HOSTNAME, 1, AGENT_HOSTNAME_MAX, true, false),
	RULE(AGENT_TAG_IFNAME, 1, AGENT_IFNAME_MAX, false, false),
	RULE(AGENT_TAG_MAC, AGENT_MAC_LEN, AGENT_MAC_LEN, false, false),
	RULE(AGENT_TAG_IPV4, 5, 5, false, false),
	RULE(AGENT_TAG_GATEWAY, 4, 4, false, false),
	RULE(AGENT_TAG_ENTROPY, 1, AGENT_ENTROPY_MAX, false, false),
	RULE(AGENT_TAG_REALTIME, 12, 12, false, false),
};
static const struct tag_rule ready_tags[] = {
	RULE(AGENT_TAG_APPLIED, 4, 4, true, false),
};
static const struct tag_rule error_tags[] = {
	RULE(AGENT_TAG_MESSAGE, 1, AGENT_MESSAGE_MAX, true, false),
	RULE(AGENT_TAG_APPLIED, 4, 4, false, false),
};

#define TLV_MSG(t)	  { .tags = (t), .n = ARRAY_SIZE(t) }
#define RAW_MSG(lo, hi) { .tags = NULL, .raw_min = (lo), .raw_max = (hi) }

static const struct msg_rules msg_rules[AGENT_MSG_MAX] = {
	[AGENT_MSG_HELLO] = TLV_MSG(hello_tags),
	[AGENT_MSG_HELLO_OK] = TLV_MSG(hello_ok_tags),
	[AGENT_MSG_EXEC] = TLV_MSG(exec_tags),
	[AGENT_MSG_STDIN] = RAW_MSG(1, AGENT_DATA_MAX),
	[AGENT_MSG_STDIN_EOF] = RAW_MSG(0, 0),
	[AGENT_MSG_STDOUT] = RAW_MSG(1, AGENT_DATA_MAX),
	[AGENT_MSG_STDERR] = RAW_MSG(1, AGENT_DATA_MAX),
	[AGENT_MSG_EXIT] = TLV_MSG(exit_tags),
	[AGENT_MSG_IDENTITY] = TLV_MSG(identity_tags),
	[AGENT_MSG_READY] = TLV_MSG(ready_tags),
	[AGENT_MSG_ERROR] = TLV_MSG(error_tags),
};
/* clang-format on */

static const struct msg_rules *rules_for(uint8_t type)
{
	const struct msg_rules *r;

	if (type >= AGENT_MSG_MAX)
		return NULL;
	r = &msg_rules[type];
	return r->tags || r->raw_max || type == AGENT_MSG_STDIN_EOF ? r : NULL;
}

static const struct tag_rule *rule_for(const struct msg_rules *r, uint16_t tag)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (r->tags[i].tag == tag)
			return &r->tags[i];
	return NULL;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

struct agent_bytes agent_bytes_str(const char *s)
{
	return (struct agent_bytes){.data = (const uint8_t *)s, .len = s ? (uint32_t)strlen(s) : 0};
}

bool agent_version_supported(uint32_t version)
{
	return version >= AGENT_PROTO_VERSION_MIN && version <= AGENT_PROTO_VERSION_MAX;
}

/* --- semantic checks, shared by the decoder and the encoder --- */

static bool has_nul(struct agent_bytes b)
{
	return b.len && memchr(b.data, 0, b.len);
}

static bool hostname_valid(struct agent_bytes b)
{
	if (b.len == 0 || b.len > AGENT_HOSTNAME_MAX || b.data[0] == '-' || b.data[0] == '.')
		return false;
	for (uint32_t i = 0; i < b.len; i++) {
		uint8_t c = b.data[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* As the kernel's dev_valid_name(), and printable ASCII only. */
static bool ifname_valid(struct agent_bytes b)
{
	if (b.len == 0 || b.len > AGENT_IFNAME_MAX)
		return false;
	if ((b.len == 1 && b.data[0] == '.') || (b.len == 2 && !memcmp(b.data, "..", 2)))
		return false;
	for (uint32_t i = 0; i < b.len; i++)
		if (b.data[i] <= ' ' || b.data[i] >= 0x7f || b.data[i] == '/' || b.data[i] == ':')
			return false;
	return true;
}

static int check_exec(const struct agent_msg_exec *e, const char **why)
{
	if (e->argc == 0 || e->argc > AGENT_ARGV_MAX) {
		*why = e->argc ? "EXEC: too many arguments" : "EXEC: no argv";
		return -EINVAL;
	}
	if (e->envc > AGENT_ENV_MAX) {
		*why = "EXEC: too many environment entries";
		return -EINVAL;
	}
	if (e->argv[0].len == 0) {
		*why = "EXEC: empty argv[0]";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < e->argc; i++) {
		if (has_nul(e->argv[i])) {
			*why = "EXEC: NUL byte in an argument";
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < e->envc; i++) {
		const uint8_t *eq = memchr(e->env[i].data, '=', e->env[i].len);

		if (!e->env[i].len || !eq || eq == e->env[i].data || has_nul(e->env[i])) {
			*why = "EXEC: environment entry is not NAME=VALUE";
			return -EINVAL;
		}
	}
	if (has_nul(e->cwd)) {
		*why = "EXEC: NUL byte in cwd";
		return -EINVAL;
	}
	return 0;
}

static int check_identity(const struct agent_msg_identity *id, const char **why)
{
	static const uint8_t zero_mac[AGENT_MAC_LEN];

	if (id->present & ~AGENT_ID_ALL) {
		*why = "IDENTITY: unknown parts";
		return -EINVAL;
	}
	if (!(id->present & AGENT_ID_HOSTNAME) || !hostname_valid(id->hostname)) {
		*why = "IDENTITY: hostname missing or not [A-Za-z0-9.-]{1,64}";
		return -EINVAL;
	}
	if (id->ifname.len && !ifname_valid(id->ifname)) {
		*why = "IDENTITY: invalid interface name";
		return -EINVAL;
	}
	if ((id->present & AGENT_ID_MAC) &&
	    ((id->mac[0] & 1) || !memcmp(id->mac, zero_mac, AGENT_MAC_LEN))) {
		*why = "IDENTITY: MAC is multicast or zero";
		return -EINVAL;
	}
	if ((id->present & AGENT_ID_IPV4) && id->prefix > 32) {
		*why = "IDENTITY: IPv4 prefix length over 32";
		return -EINVAL;
	}
	/* The kernel takes a gateway only on a network the interface is on. */
	if ((id->present & AGENT_ID_GATEWAY) && !(id->present & AGENT_ID_IPV4)) {
		*why = "IDENTITY: gateway without an IPv4 address";
		return -EINVAL;
	}
	if ((id->present & AGENT_ID_ENTROPY) &&
	    (id->entropy.len == 0 || id->entropy.len > AGENT_ENTROPY_MAX)) {
		*why = "IDENTITY: entropy must be 1..512 bytes";
		return -EINVAL;
	}
	if ((id->present & AGENT_ID_REALTIME) &&
	    (id->nsec >= 1000000000u || id->sec > (uint64_t)INT64_MAX)) {
		*why = "IDENTITY: realtime out of range";
		return -EINVAL;
	}
	return 0;
}

static int msg_check(const struct agent_msg *m, const char **why)
{
	switch (m->type) {
	case AGENT_MSG_HELLO:
		if (m->hello.version == 0) {
			*why = "HELLO: version 0";
			return -EINVAL;
		}
		return 0;
	case AGENT_MSG_HELLO_OK:
		if (m->hello_ok.version == 0 || has_nul(m->hello_ok.agent_version)) {
			*why = "HELLO_OK: version 0 or NUL in the agent version";
			return -EINVAL;
		}
		return 0;
	case AGENT_MSG_EXEC:
		return check_exec(&m->exec, why);
	case AGENT_MSG_EXIT:
		if (m->exit.exit_code > 255 || m->exit.signal > 127) {
			*why = "EXIT: exit code over 255 or signal over 127";
			return -EINVAL;
		}
		return 0;
	case AGENT_MSG_IDENTITY:
		return check_identity(&m->identity, why);
	case AGENT_MSG_READY:
		if (m->ready.applied & ~(AGENT_ID_ALL | AGENT_ID_DRY_RUN)) {
			*why = "READY: unknown bits applied";
			return -EINVAL;
		}
		return 0;
	case AGENT_MSG_ERROR:
		if (has_nul(m->error.message) || (m->error.applied & ~AGENT_ID_ALL)) {
			*why = "ERROR: NUL in the message or unknown bits applied";
			return -EINVAL;
		}
		return 0;
	default:
		return 0;
	}
}

/* --- decoder --- */

static int store_identity(struct agent_msg_identity *id, uint16_t tag, const uint8_t *v,
			  struct agent_bytes b)
{
	switch (tag) {
	case AGENT_TAG_HOSTNAME:
		id->hostname = b;
		id->present |= AGENT_ID_HOSTNAME;
		break;
	case AGENT_TAG_IFNAME:
		id->ifname = b;
		break;
	case AGENT_TAG_MAC:
		memcpy(id->mac, v, AGENT_MAC_LEN);
		id->present |= AGENT_ID_MAC;
		break;
	case AGENT_TAG_IPV4:
		memcpy(id->ipv4, v, 4);
		id->prefix = v[4];
		id->present |= AGENT_ID_IPV4;
		break;
	case AGENT_TAG_GATEWAY:
		memcpy(id->gateway, v, 4);
		id->present |= AGENT_ID_GATEWAY;
		break;
	case AGENT_TAG_ENTROPY:
		id->entropy = b;
		id->present |= AGENT_ID_ENTROPY;
		break;
	case AGENT_TAG_REALTIME:
		id->sec = get_le64(v);
		id->nsec = get_le32(v + 8);
		id->present |= AGENT_ID_REALTIME;
		break;
	}
	return 0;
}

/* The rules allowed tag for m->type with a value of a fitting length. */
static int store(struct agent_msg *m, uint16_t tag, const uint8_t *v, uint32_t len,
		 const char **why)
{
	struct agent_bytes b = {.data = v, .len = len};

	switch (m->type) {
	case AGENT_MSG_HELLO:
		m->hello.version = get_le32(v);
		return 0;
	case AGENT_MSG_HELLO_OK:
		if (tag == AGENT_TAG_VERSION)
			m->hello_ok.version = get_le32(v);
		else
			m->hello_ok.agent_version = b;
		return 0;
	case AGENT_MSG_EXEC:
		if (tag == AGENT_TAG_ARGV) {
			if (m->exec.argc == AGENT_ARGV_MAX) {
				*why = "EXEC: too many arguments";
				return -EBADMSG;
			}
			m->exec.argv[m->exec.argc++] = b;
		} else if (tag == AGENT_TAG_ENV) {
			if (m->exec.envc == AGENT_ENV_MAX) {
				*why = "EXEC: too many environment entries";
				return -EBADMSG;
			}
			m->exec.env[m->exec.envc++] = b;
		} else if (tag == AGENT_TAG_TIMEOUT_MS) {
			m->exec.timeout_ms = get_le32(v);
		} else {
			m->exec.cwd = b;
		}
		return 0;
	case AGENT_MSG_EXIT:
		if (tag == AGENT_TAG_EXIT_CODE) {
			m->exit.exit_code = get_le32(v);
		} else if (tag == AGENT_TAG_SIGNAL) {
			m->exit.signal = get_le32(v);
		} else {
			if (v[0] > 1) {
				*why = "EXIT: timed_out is not 0 or 1";
				return -EBADMSG;
			}
			m->exit.timed_out = v[0];
		}
		return 0;
	case AGENT_MSG_IDENTITY:
		return store_identity(&m->identity, tag, v, b);
	case AGENT_MSG_READY:
		m->ready.applied = get_le32(v);
		return 0;
	case AGENT_MSG_ERROR:
		if (tag == AGENT_TAG_MESSAGE) {
			m->error.message = b;
		} else {
			m->error.applied = get_le32(v);
			m->error.has_applied = true;
		}
		return 0;
	}
	*why = "internal: no store for this message";
	return -EBADMSG;
}

static int decode_tlvs(const struct msg_rules *r, const uint8_t *p, size_t len, struct agent_msg *m,
		       const char **why)
{
	uint32_t seen = 0;
	size_t off = 0;

	while (off < len) {
		const struct tag_rule *rule;
		uint16_t tag;
		uint32_t vlen;
		int ret;

		if (len - off < AGENT_TLV_HDR_SIZE) {
			*why = "truncated TLV header";
			return -EBADMSG;
		}
		tag = (uint16_t)(p[off] | p[off + 1] << 8);
		vlen = get_le32(p + off + 2);
		off += AGENT_TLV_HDR_SIZE;
		if (vlen > len - off) {
			*why = "TLV value runs past the payload";
			return -EBADMSG;
		}
		rule = rule_for(r, tag);
		if (!rule) {
			if (tag & AGENT_TAG_OPTIONAL) {
				off += vlen;
				continue;
			}
			*why = "unknown or misplaced TLV tag";
			return -EBADMSG;
		}
		if (vlen < rule->min || vlen > rule->max) {
			*why = "TLV value length out of range for its tag";
			return -EBADMSG;
		}
		if ((seen & (1u << tag)) && !rule->repeated) {
			*why = "TLV tag repeated";
			return -EBADMSG;
		}
		seen |= 1u << tag;
		ret = store(m, tag, p + off, vlen, why);
		if (ret < 0)
			return ret;
		off += vlen;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->tags[i].required && !(seen & (1u << r->tags[i].tag))) {
			*why = "required TLV missing";
			return -EBADMSG;
		}
	}
	return 0;
}

int agent_frame_size(const uint8_t *buf, size_t *ret_size, const char **reason)
{
	const char *dummy;
	const char **why = reason ? reason : &dummy;
	uint32_t len = get_le32(buf);

	if (len == 0) {
		*why = "frame length 0 (no type)";
		return -EBADMSG;
	}
	if (len > 1 + AGENT_PAYLOAD_MAX) {
		*why = "frame length over the limit";
		return -EMSGSIZE;
	}
	*ret_size = 4 + (size_t)len;
	return 0;
}

int agent_msg_decode(const uint8_t *frame, size_t len, struct agent_msg *ret, const char **reason)
{
	const char *dummy;
	const char **why = reason ? reason : &dummy;
	const struct msg_rules *r;
	const uint8_t *payload;
	size_t size, plen;
	struct agent_msg *m = ret;
	int err;

	if (len < AGENT_HDR_SIZE) {
		*why = "frame shorter than its header";
		return -EBADMSG;
	}
	err = agent_frame_size(frame, &size, why);
	if (err < 0)
		return err;
	if (size != len) {
		*why = size > len ? "truncated frame" : "bytes after the frame";
		return -EBADMSG;
	}
	r = rules_for(frame[4]);
	if (!r) {
		*why = "unknown message type";
		return -EBADMSG;
	}
	payload = frame + AGENT_HDR_SIZE;
	plen = len - AGENT_HDR_SIZE;

	memset(m, 0, sizeof(*m));
	m->type = frame[4];
	if (!r->tags) {
		if (plen < r->raw_min || plen > r->raw_max) {
			*why = "data frame length out of range";
			return -EBADMSG;
		}
		m->data = (struct agent_bytes){.data = payload, .len = (uint32_t)plen};
		return 0;
	}
	err = decode_tlvs(r, payload, plen, m, why);
	if (err < 0)
		return err;
	return msg_check(m, why) < 0 ? -EBADMSG : 0;
}

/* --- encoder --- */

struct writer {
	uint8_t *buf;
	size_t cap, len;
	const struct msg_rules *rules;
	int err;
	const char *why;
};

static void put_raw(struct writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (n > w->cap - w->len || w->len + n > AGENT_FRAME_MAX) {
		w->err = -EMSGSIZE;
		w->why = "message does not fit in a frame";
		return;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_tlv(struct writer *w, uint16_t tag, const void *p, size_t n)
{
	const struct tag_rule *rule = rule_for(w->rules, tag);
	uint8_t hdr[AGENT_TLV_HDR_SIZE];

	if (!w->err && (!rule || n < rule->min || n > rule->max)) {
		w->err = -EINVAL;
		w->why = "value length out of range for its tag";
		return;
	}
	hdr[0] = (uint8_t)tag;
	hdr[1] = (uint8_t)(tag >> 8);
	put_le32(hdr + 2, (uint32_t)n);
	put_raw(w, hdr, sizeof(hdr));
	put_raw(w, p, n);
}

static void put_u32(struct writer *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	put_tlv(w, tag, b, sizeof(b));
}

static void put_bytes(struct writer *w, uint16_t tag, struct agent_bytes b)
{
	put_tlv(w, tag, b.data, b.len);
}

static void put_identity(struct writer *w, const struct agent_msg_identity *id)
{
	uint8_t v[12];

	put_bytes(w, AGENT_TAG_HOSTNAME, id->hostname);
	if (id->ifname.len)
		put_bytes(w, AGENT_TAG_IFNAME, id->ifname);
	if (id->present & AGENT_ID_MAC)
		put_tlv(w, AGENT_TAG_MAC, id->mac, AGENT_MAC_LEN);
	if (id->present & AGENT_ID_IPV4) {
		memcpy(v, id->ipv4, 4);
		v[4] = id->prefix;
		put_tlv(w, AGENT_TAG_IPV4, v, 5);
	}
	if (id->present & AGENT_ID_GATEWAY)
		put_tlv(w, AGENT_TAG_GATEWAY, id->gateway, 4);
	if (id->present & AGENT_ID_ENTROPY)
		put_bytes(w, AGENT_TAG_ENTROPY, id->entropy);
	if (id->present & AGENT_ID_REALTIME) {
		put_le64(v, id->sec);
		put_le32(v + 8, id->nsec);
		put_tlv(w, AGENT_TAG_REALTIME, v, 12);
	}
}

static void put_payload(struct writer *w, const struct agent_msg *m)
{
	uint8_t b;

	switch (m->type) {
	case AGENT_MSG_HELLO:
		put_u32(w, AGENT_TAG_VERSION, m->hello.version);
		break;
	case AGENT_MSG_HELLO_OK:
		put_u32(w, AGENT_TAG_VERSION, m->hello_ok.version);
		if (m->hello_ok.agent_version.len)
			put_bytes(w, AGENT_TAG_AGENT_VERSION, m->hello_ok.agent_version);
		break;
	case AGENT_MSG_EXEC:
		for (uint32_t i = 0; i < m->exec.argc; i++)
			put_bytes(w, AGENT_TAG_ARGV, m->exec.argv[i]);
		for (uint32_t i = 0; i < m->exec.envc; i++)
			put_bytes(w, AGENT_TAG_ENV, m->exec.env[i]);
		/* Absent means 0: a decoded message never grows when re-encoded. */
		if (m->exec.timeout_ms)
			put_u32(w, AGENT_TAG_TIMEOUT_MS, m->exec.timeout_ms);
		if (m->exec.cwd.len)
			put_bytes(w, AGENT_TAG_CWD, m->exec.cwd);
		break;
	case AGENT_MSG_EXIT:
		put_u32(w, AGENT_TAG_EXIT_CODE, m->exit.exit_code);
		put_u32(w, AGENT_TAG_SIGNAL, m->exit.signal);
		b = m->exit.timed_out;
		put_tlv(w, AGENT_TAG_TIMED_OUT, &b, 1);
		break;
	case AGENT_MSG_IDENTITY:
		put_identity(w, &m->identity);
		break;
	case AGENT_MSG_READY:
		put_u32(w, AGENT_TAG_APPLIED, m->ready.applied);
		break;
	case AGENT_MSG_STDIN_EOF:
		break;
	case AGENT_MSG_ERROR:
		put_bytes(w, AGENT_TAG_MESSAGE, m->error.message);
		if (m->error.has_applied)
			put_u32(w, AGENT_TAG_APPLIED, m->error.applied);
		break;
	default: /* raw */
		if (m->data.len < w->rules->raw_min || m->data.len > w->rules->raw_max) {
			w->err = -EINVAL;
			w->why = "data length out of range";
			return;
		}
		put_raw(w, m->data.data, m->data.len);
		break;
	}
}

int agent_msg_encode(const struct agent_msg *m, uint8_t *buf, size_t cap, size_t *ret_len,
		     const char **reason)
{
	const char *dummy;
	const char **why = reason ? reason : &dummy;
	struct writer w = {.buf = buf, .cap = cap, .rules = rules_for(m->type)};
	int err;

	if (!w.rules) {
		*why = "unknown message type";
		return -EINVAL;
	}
	err = msg_check(m, why);
	if (err < 0)
		return err;
	if (cap < AGENT_HDR_SIZE) {
		*why = "buffer smaller than a frame header";
		return -EMSGSIZE;
	}
	w.len = AGENT_HDR_SIZE;
	put_payload(&w, m);
	if (w.err) {
		*why = w.why;
		return w.err;
	}
	agent_frame_header(buf, m->type, (uint32_t)(w.len - AGENT_HDR_SIZE));
	*ret_len = w.len;
	return 0;
}

void agent_frame_header(uint8_t *buf, uint8_t type, uint32_t payload_len)
{
	put_le32(buf, payload_len + 1);
	buf[4] = type;
}

/* --- helpers for the users of decoded messages --- */

int agent_strv_dup(const struct agent_bytes *v, uint32_t n, char ***ret)
{
	size_t size = ((size_t)n + 1) * sizeof(char *);
	char **strv, *p;

	for (uint32_t i = 0; i < n; i++)
		size += (size_t)v[i].len + 1;
	strv = malloc(size);
	if (!strv)
		return -ENOMEM;
	p = (char *)(strv + n + 1);
	for (uint32_t i = 0; i < n; i++) {
		strv[i] = p;
		if (v[i].len)
			memcpy(p, v[i].data, v[i].len);
		p[v[i].len] = '\0';
		p += v[i].len + 1;
	}
	strv[n] = NULL;
	*ret = strv;
	return 0;
}

int agent_bytes_copy(struct agent_bytes b, char *dst, size_t cap)
{
	if (b.len >= cap)
		return -ENAMETOOLONG;
	if (b.len)
		memcpy(dst, b.data, b.len);
	dst[b.len] = '\0';
	return 0;
}

/* --- frames over a stream socket --- */

int agent_rx_read(struct agent_rx *rx, int fd, size_t *ret_len, const char **reason)
{
	const char *dummy;
	const char **why = reason ? reason : &dummy;

	if (rx->done) {
		rx->have = 0;
		rx->want = 0;
		rx->done = false;
	}
	for (;;) {
		size_t target = rx->want ? rx->want : AGENT_HDR_SIZE;
		ssize_t n;

		if (rx->have == target) {
			int err;

			if (rx->want) {
				rx->done = true;
				*ret_len = rx->have;
				return 1;
			}
			/* The header is in: check it before reading a byte more. */
			err = agent_frame_size(rx->buf, &rx->want, why);
			if (err < 0)
				return err;
			continue;
		}
		n = recv(fd, rx->buf + rx->have, target - rx->have, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			*why = "receive failed";
			return neg_errno();
		}
		if (n == 0) {
			if (rx->have == 0) {
				*why = "connection closed";
				return -EPIPE;
			}
			*why = "connection closed inside a frame";
			return -EBADMSG;
		}
		rx->have += (size_t)n;
	}
}

int agent_tx_flush(struct agent_tx *tx, int fd)
{
	while (tx->off < tx->len) {
		ssize_t n =
		    send(fd, tx->buf + tx->off, tx->len - tx->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return neg_errno();
		}
		tx->off += (size_t)n;
	}
	return 1;
}

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_poll_timeout(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms < 0)
		return -1;
	left = deadline_ms - agent_now_ms();
	if (left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	if (deadline_ms >= 0 && agent_now_ms() >= deadline_ms)
		return -ETIMEDOUT;
	n = poll(&pfd, 1, agent_poll_timeout(deadline_ms));
	if (n < 0 && errno != EINTR)
		return neg_errno();
	return 0;
}

int agent_frame_send(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms)
{
	struct agent_tx tx = {.buf = buf, .len = len};

	for (;;) {
		int ret = agent_tx_flush(&tx, fd);

		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = wait_fd(fd, POLLOUT, deadline_ms);
		if (ret < 0)
			return ret;
	}
}

int agent_frame_recv(int fd, struct agent_rx *rx, int64_t deadline_ms, size_t *ret_len,
		     const char **reason)
{
	for (;;) {
		int ret = agent_rx_read(rx, fd, ret_len, reason);

		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = wait_fd(fd, POLLIN, deadline_ms);
		if (ret < 0) {
			if (reason)
				*reason = "timed out waiting for a frame";
			return ret;
		}
	}
}
