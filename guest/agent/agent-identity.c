// SPDX-License-Identifier: MIT
/*
 * IDENTITY: what makes a clone of a VM its own machine. Each step that
 * fails is reported and the others are still tried, so that one missing
 * interface does not leave the clone with its parent's entropy and clock.
 *
 * Order: entropy first, so that anything seeded from here on differs from
 * the parent's; the clock next; then the network, where the MAC changes
 * only while the link is down, and the default route needs the address
 * (the kernel accepts a gateway only on a network it can reach).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static int inet_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return fd < 0 ? neg_errno() : fd;
}

static int set_flags(int fd, const char *ifname, bool up)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return neg_errno();
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return neg_errno();
	return 0;
}

int agent_link_up(const char *ifname)
{
	_cleanup_close_ int fd = inet_socket();

	if (fd < 0)
		return fd;
	return set_flags(fd, ifname, true);
}

static int add_entropy(struct agent_bytes b)
{
	struct {
		struct rand_pool_info info;
		uint8_t buf[AGENT_ENTROPY_MAX];
	} pool;
	_cleanup_close_ int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	pool.info.entropy_count = (int)(b.len * 8);
	pool.info.buf_size = (int)b.len;
	memcpy(pool.buf, b.data, b.len);
	if (ioctl(fd, RNDADDENTROPY, &pool.info) < 0)
		return neg_errno();
	/* Credited entropy alone waits for the next reseed: force it now. */
	if (ioctl(fd, RNDRESEEDCRNG) < 0)
		return neg_errno();
	return 0;
}

static int set_realtime(uint64_t sec, uint32_t nsec)
{
	struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = nsec};

	return clock_settime(CLOCK_REALTIME, &ts) < 0 ? neg_errno() : 0;
}

static int set_hostname(struct agent_bytes b)
{
	return sethostname((const char *)b.data, b.len) < 0 ? neg_errno() : 0;
}

static int set_mac(const char *ifname, const uint8_t *mac)
{
	_cleanup_close_ int fd = inet_socket();
	struct ifreq ifr = {0};
	int ret;

	if (fd < 0)
		return fd;
	ret = set_flags(fd, ifname, false);
	if (ret < 0)
		return ret;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, AGENT_MAC_LEN);
	if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0) {
		ret = neg_errno();
		(void)!set_flags(fd, ifname, true);
		return ret;
	}
	return set_flags(fd, ifname, true);
}

static void set_sin(struct sockaddr *sa, const uint8_t addr[4])
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	memcpy(&sin.sin_addr, addr, 4);
	memcpy(sa, &sin, sizeof(sin));
}

static int set_ipv4(const char *ifname, const uint8_t addr[4], uint8_t prefix)
{
	_cleanup_close_ int fd = inet_socket();
	uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	struct ifreq ifr = {0};

	if (fd < 0)
		return fd;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	set_sin(&ifr.ifr_addr, addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return neg_errno();
	set_sin(&ifr.ifr_netmask, (const uint8_t *)&mask);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		return neg_errno();
	return set_flags(fd, ifname, true);
}

static int set_gateway(const char *ifname, const uint8_t gw[4])
{
	static const uint8_t any[4];
	_cleanup_close_ int fd = inet_socket();
	char dev[IFNAMSIZ];
	struct rtentry rt = {0};

	if (fd < 0)
		return fd;
	snprintf(dev, sizeof(dev), "%s", ifname);
	set_sin(&rt.rt_dst, any);
	set_sin(&rt.rt_genmask, any);
	set_sin(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	/* Replace, not add: an identity sent twice, or a parent's route. */
	if (ioctl(fd, SIOCDELRT, &rt) < 0 && errno != ESRCH)
		return neg_errno();
	if (ioctl(fd, SIOCADDRT, &rt) < 0)
		return neg_errno();
	return 0;
}

struct report {
	uint32_t applied;
	char text[AGENT_MESSAGE_MAX + 1];
	size_t len;
};

static void step(struct report *r, uint32_t bit, const char *name, int ret)
{
	if (ret >= 0) {
		r->applied |= bit;
		return;
	}
	if (r->len < sizeof(r->text))
		r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s%s: %s",
					   r->len ? "; " : "identity: ", name, strerror(-ret));
}

int agent_identity_run(struct agent_conn *c)
{
	const struct agent_msg_identity *id = &c->msg->identity;
	struct report r = {0};
	char ifname[IFNAMSIZ] = "eth0";
	struct agent_msg m;

	if (id->ifname.len && agent_bytes_copy(id->ifname, ifname, sizeof(ifname)) < 0)
		return agent_conn_fail(c, -EINVAL, "interface name too long");
	if (c->opts->dry_run_identity) {
		m = (struct agent_msg){.type = AGENT_MSG_READY,
				       .ready.applied = id->present | AGENT_ID_DRY_RUN};
		return agent_conn_send(c, &m);
	}

	if (id->present & AGENT_ID_ENTROPY)
		step(&r, AGENT_ID_ENTROPY, "entropy", add_entropy(id->entropy));
	if (id->present & AGENT_ID_REALTIME)
		step(&r, AGENT_ID_REALTIME, "realtime", set_realtime(id->sec, id->nsec));
	step(&r, AGENT_ID_HOSTNAME, "hostname", set_hostname(id->hostname));
	if (id->present & AGENT_ID_MAC)
		step(&r, AGENT_ID_MAC, "mac", set_mac(ifname, id->mac));
	if (id->present & AGENT_ID_IPV4)
		step(&r, AGENT_ID_IPV4, "ipv4", set_ipv4(ifname, id->ipv4, id->prefix));
	if (id->present & AGENT_ID_GATEWAY)
		step(&r, AGENT_ID_GATEWAY, "gateway", set_gateway(ifname, id->gateway));

	if (r.len)
		m = (struct agent_msg){.type = AGENT_MSG_ERROR,
				       .error = {.message = agent_bytes_str(r.text),
						 .has_applied = true,
						 .applied = r.applied}};
	else
		m = (struct agent_msg){.type = AGENT_MSG_READY, .ready.applied = r.applied};
	return agent_conn_send(c, &m);
}
