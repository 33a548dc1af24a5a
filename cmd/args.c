// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

const char fvm_usage[] =
	"usage: fvm --kernel PATH [options]\n"
	"\n"
	"Boot a Linux guest in a KVM microVM.\n"
	"\n"
	"  --kernel PATH        bzImage or ELF vmlinux\n"
	"  --initrd PATH        initial ramdisk\n"
	"  --cmdline STR        kernel command line (default: \"" VM_DEFAULT_CMDLINE "\")\n"
	"  --mem SIZE           guest RAM, e.g. 256M or 2G (default 256M; 16M..64G)\n"
	"  --vcpus N            number of vCPUs, 1..32 (default 1)\n"
	"  --console stdio|PATH guest serial console (default stdio)\n"
	"  --drive path=PATH[,id=ID][,ro][,root][,overlay=QCOW2]\n"
	"                       a virtio-blk disk, raw file, block device or qcow2\n"
	"                       (repeatable, up to 8; PATH cannot contain commas);\n"
	"                       id is its serial (default driveN); root makes it\n"
	"                       /dev/vda and, without --cmdline, adds root=/dev/vda;\n"
	"                       overlay= writes into a qcow2 overlay over PATH\n"
	"                       (created if missing), leaving PATH untouched\n"
	"  --net tap=NAME|fd=N[,id=ID][,mac=MAC][,ip=A.B.C.D/N][,gw=A.B.C.D]\n"
	"        [,clone-tap=PATTERN][,clone-netns=PATTERN]\n"
	"                       a virtio-net interface on a TAP (repeatable, up to 4);\n"
	"                       ip/gw: the guest's address, set by the guest agent;\n"
	"                       clones open clone-tap (in clone-netns, a path like\n"
	"                       /run/netns/fvm-{n}); {n} is the clone's number\n"
	"  --vsock cid=N,uds=PATH\n"
	"                       a virtio-vsock device; the host side listens on PATH\n"
	"                       (CONNECT <port>), guest connections go to PATH_<port>\n"
	"  --rng                a virtio-rng device fed by getrandom()\n"
	"  --api-sock PATH      serve the REST API on this unix socket (mode 0600);\n"
	"                       without --kernel, wait for the VM's config there\n"
	"  --config PATH        the VM as JSON, in the API's schema; flags override it\n"
	"  --log-level LEVEL    error, warn, info or debug (default info)\n"
	"  --help               show this help\n"
	"  --version            show the version\n"
	"\n"
	"fvm exits 0 when the guest powers off or reboots, 1 on errors.\n"
	"On a terminal console, Ctrl-A x stops the VM.\n";

enum {
	OPT_KERNEL = 0x100,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_MEM,
	OPT_VCPUS,
	OPT_CONSOLE,
	OPT_LOG_LEVEL,
	OPT_API_SOCK,
	OPT_CONFIG,
	OPT_DRIVE,
	OPT_NET,
	OPT_VSOCK,
	OPT_RNG,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "drive", required_argument, NULL, OPT_DRIVE },
	{ "net", required_argument, NULL, OPT_NET },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

int fvm_parse_size(const char *s, uint64_t *ret_bytes)
{
	uint64_t value = 0, shift = 20;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		value = value * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -EINVAL;
	switch (*p) {
	case '\0':
		break;
	case 'B': case 'b': shift = 0; p++; break;
	case 'K': case 'k': shift = 10; p++; break;
	case 'M': case 'm': shift = 20; p++; break;
	case 'G': case 'g': shift = 30; p++; break;
	case 'T': case 't': shift = 40; p++; break;
	default:
		return -EINVAL;
	}
	/* Allow the IEC spelling: 256MiB, 1GiB. */
	if (shift && (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0))
		p += strlen(p);
	if (*p)
		return -EINVAL;
	if (value > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret_bytes = value << shift;
	return 0;
}

static int copy_string(char *dst, size_t dst_len, const char *src, const char *what, char *err,
		       size_t err_len)
{
	size_t len = strlen(src);

	if (len == 0) {
		snprintf(err, err_len, "%s must not be empty", what);
		return -EINVAL;
	}
	if (len >= dst_len) {
		snprintf(err, err_len, "%s is too long (at most %zu bytes)", what, dst_len - 1);
		return -EINVAL;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

static int parse_vcpus(const char *s, uint32_t *ret, char *err, size_t err_len)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	/* strtoul accepts leading blanks and signs; a vCPU count is digits only. */
	if (errno || end == s || *end || s[0] < '0' || s[0] > '9' || v < 1 || v > VM_MAX_VCPUS) {
		snprintf(err, err_len, "--vcpus '%s': expected a number from 1 to %d", s,
			 VM_MAX_VCPUS);
		return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

static int parse_log_level(const char *s, enum log_level *ret, char *err, size_t err_len)
{
	static const char *const names[LOG_LEVEL_MAX] = {
		[LOG_ERR] = "error", [LOG_WARN] = "warn", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

	for (int i = 0; i < LOG_LEVEL_MAX; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	snprintf(err, err_len, "--log-level '%s': expected error, warn, info or debug", s);
	return -EINVAL;
}

static bool valid_drive_id(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len >= VM_CONFIG_ID_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* One "key=value" or flag of --drive into d. */
static int drive_key(struct vm_drive_config *d, const char *key, char *err, size_t err_len)
{
	if (strcmp(key, "ro") == 0) {
		d->read_only = true;
	} else if (strcmp(key, "root") == 0) {
		d->is_root = true;
	} else if (strncmp(key, "path=", 5) == 0) {
		return copy_string(d->path, sizeof(d->path), key + 5, "--drive path", err, err_len);
	} else if (strncmp(key, "overlay=", 8) == 0) {
		return copy_string(d->overlay, sizeof(d->overlay), key + 8, "--drive overlay", err,
				   err_len);
	} else if (strncmp(key, "id=", 3) == 0) {
		if (!valid_drive_id(key + 3)) {
			snprintf(err, err_len,
				 "--drive id '%s': expected 1 to %d letters, digits, '_' or '-'",
				 key + 3, VM_CONFIG_ID_MAX - 1);
			return -EINVAL;
		}
		strcpy(d->id, key + 3);
	} else {
		snprintf(err, err_len, "--drive: unknown key '%s' (expected path=, id=, ro, root, overlay=)",
			 key);
		return -EINVAL;
	}
	return 0;
}

static int parse_drive(struct vm_config *vm, const char *val, char *err, size_t err_len)
{
	struct vm_drive_config d = { .read_only = false };
	char buf[VM_CONFIG_PATH_MAX + 128];
	char *save = NULL, *key;
	int r;

	if (strlen(val) >= sizeof(buf)) {
		snprintf(err, err_len, "--drive is too long");
		return -EINVAL;
	}
	strcpy(buf, val);
	for (key = strtok_r(buf, ",", &save); key; key = strtok_r(NULL, ",", &save)) {
		r = drive_key(&d, key, err, err_len);
		if (r < 0)
			return r;
	}
	if (d.path[0] == '\0') {
		snprintf(err, err_len, "--drive '%s': no path=PATH", val);
		return -EINVAL;
	}
	if (vm->nr_drives == VM_MAX_DRIVES) {
		snprintf(err, err_len, "--drive: at most %d drives", VM_MAX_DRIVES);
		return -EINVAL;
	}
	if (d.id[0] == '\0')
		snprintf(d.id, sizeof(d.id), "drive%u", vm->nr_drives);
	for (uint32_t i = 0; i < vm->nr_drives; i++) {
		if (strcmp(vm->drives[i].id, d.id) == 0) {
			snprintf(err, err_len, "--drive: two drives with the id '%s'", d.id);
			return -EINVAL;
		}
		if (d.is_root && vm->drives[i].is_root) {
			snprintf(err, err_len, "--drive: only one drive can be the root device");
			return -EINVAL;
		}
	}
	vm->drives[vm->nr_drives++] = d;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int end = 0;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3],
				      &b[4], &b[5], &end) != 6 || end != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[i * 3]) || !isxdigit((unsigned char)s[i * 3 + 1]))
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	/* A NIC's own address is unicast. */
	return mac[0] & 1 ? -EINVAL : 0;
}

static int parse_fd(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || s[0] < '0' || s[0] > '9' || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* One "key=value" of --net into n. */
static int net_key(struct vm_net_config *n, const char *key, char *err, size_t err_len)
{
	static const struct {
		const char *prefix;
		size_t offset, size;
	} strings[] = {
		{ "tap=", offsetof(struct vm_net_config, tap_name), 16 },
		{ "ip=", offsetof(struct vm_net_config, guest_ip), sizeof(n->guest_ip) },
		{ "gw=", offsetof(struct vm_net_config, guest_gateway), sizeof(n->guest_gateway) },
		{ "clone-tap=", offsetof(struct vm_net_config, clone_tap_name), 16 },
		{ "clone-netns=", offsetof(struct vm_net_config, clone_netns),
		  sizeof(n->clone_netns) },
	};

	for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
		size_t plen = strlen(strings[i].prefix);
		char what[32];

		if (strncmp(key, strings[i].prefix, plen) != 0)
			continue;
		snprintf(what, sizeof(what), "--net %.*s", (int)plen - 1, key);
		return copy_string((char *)n + strings[i].offset, strings[i].size, key + plen, what,
				   err, err_len);
	}
	if (strncmp(key, "id=", 3) == 0 && valid_drive_id(key + 3)) {
		strcpy(n->id, key + 3);
	} else if (strncmp(key, "mac=", 4) == 0 && parse_mac(key + 4, n->mac) == 0) {
		n->has_mac = true;
	} else if (strncmp(key, "fd=", 3) == 0 && parse_fd(key + 3, &n->tap_fd) == 0) {
		n->has_tap_fd = true;
	} else {
		snprintf(err, err_len,
			 "--net: bad '%s' (expected tap=NAME, fd=N, id=ID, mac=06:00:00:00:00:01, "
			 "ip=A.B.C.D/N, gw=A.B.C.D, clone-tap=, clone-netns=)",
			 key);
		return -EINVAL;
	}
	return 0;
}

static int parse_net(struct vm_config *vm, const char *val, char *err, size_t err_len)
{
	struct vm_net_config n = { .tap_fd = -1 };
	char buf[1024];
	char *save = NULL, *key;
	int r;

	if (strlen(val) >= sizeof(buf)) {
		snprintf(err, err_len, "--net is too long");
		return -EINVAL;
	}
	strcpy(buf, val);
	for (key = strtok_r(buf, ",", &save); key; key = strtok_r(NULL, ",", &save)) {
		r = net_key(&n, key, err, err_len);
		if (r < 0)
			return r;
	}
	if (vm->nr_nets == VM_MAX_NET) {
		snprintf(err, err_len, "--net: at most %d interfaces", VM_MAX_NET);
		return -EINVAL;
	}
	if (n.tap_name[0] == '\0' && !n.has_tap_fd) {
		snprintf(err, err_len, "--net '%s': no tap=NAME or fd=N", val);
		return -EINVAL;
	}
	if (n.id[0] == '\0')
		snprintf(n.id, sizeof(n.id), "net%u", vm->nr_nets);
	vm->nets[vm->nr_nets++] = n;
	return 0;
}

static int parse_vsock(struct vm_config *vm, const char *val, char *err, size_t err_len)
{
	struct vm_vsock_config v = { .enabled = true };
	char buf[VM_CONFIG_PATH_MAX + 64];
	char *save = NULL, *key, *end;
	unsigned long cid;

	if (strlen(val) >= sizeof(buf)) {
		snprintf(err, err_len, "--vsock is too long");
		return -EINVAL;
	}
	strcpy(buf, val);
	for (key = strtok_r(buf, ",", &save); key; key = strtok_r(NULL, ",", &save)) {
		if (strncmp(key, "uds=", 4) == 0) {
			/* Room for "_<port>" in sun_path, for guest-initiated connections. */
			if (copy_string(v.uds_path, 108 - sizeof("_4294967295"), key + 4,
					"--vsock uds", err, err_len) < 0)
				return -EINVAL;
			continue;
		}
		errno = 0;
		if (strncmp(key, "cid=", 4) == 0 && key[4] >= '0' && key[4] <= '9' &&
		    (cid = strtoul(key + 4, &end, 10), !errno && !*end && cid >= 3 &&
						       cid < UINT32_MAX)) {
			v.guest_cid = (uint32_t)cid;
			continue;
		}
		snprintf(err, err_len, "--vsock: bad '%s' (expected cid=N with N >= 3, uds=PATH)",
			 key);
		return -EINVAL;
	}
	if (!v.guest_cid || !v.uds_path[0]) {
		snprintf(err, err_len, "--vsock '%s': needs cid=N and uds=PATH", val);
		return -EINVAL;
	}
	vm->vsock = v;
	return 0;
}

static int apply_option(struct fvm_args *a, int opt, const char *val, char *err, size_t err_len)
{
	uint64_t bytes;

	switch (opt) {
	case OPT_KERNEL:
		return copy_string(a->vm.kernel_path, sizeof(a->vm.kernel_path), val, "--kernel",
				   err, err_len);
	case OPT_INITRD:
		return copy_string(a->vm.initrd_path, sizeof(a->vm.initrd_path), val, "--initrd",
				   err, err_len);
	case OPT_CMDLINE:
		a->vm.has_cmdline = true;
		if (strlen(val) >= sizeof(a->vm.cmdline)) {
			snprintf(err, err_len, "--cmdline is too long (at most %zu bytes)",
				 sizeof(a->vm.cmdline) - 1);
			return -EINVAL;
		}
		strcpy(a->vm.cmdline, val);
		return 0;
	case OPT_MEM:
		if (fvm_parse_size(val, &bytes) < 0 || bytes < VM_MEM_MIN || bytes > VM_MEM_MAX ||
		    bytes % 4096) {
			snprintf(err, err_len,
				 "--mem '%s': expected a size from 16M to 64G, e.g. 256M or 2G", val);
			return -EINVAL;
		}
		a->vm.mem_bytes = bytes;
		return 0;
	case OPT_VCPUS:
		return parse_vcpus(val, &a->vm.vcpus, err, err_len);
	case OPT_CONSOLE:
		if (strcmp(val, "stdio") == 0) {
			a->vm.console_path[0] = '\0';
			return 0;
		}
		return copy_string(a->vm.console_path, sizeof(a->vm.console_path), val,
				   "--console", err, err_len);
	case OPT_LOG_LEVEL:
		return parse_log_level(val, &a->log_level, err, err_len);
	case OPT_API_SOCK:
		return copy_string(a->api_sock, sizeof(a->api_sock), val, "--api-sock", err,
				   err_len);
	case OPT_CONFIG:
		return copy_string(a->config_path, sizeof(a->config_path), val, "--config", err,
				   err_len);
	case OPT_DRIVE:
		return parse_drive(&a->vm, val, err, err_len);
	case OPT_NET:
		return parse_net(&a->vm, val, err, err_len);
	case OPT_VSOCK:
		return parse_vsock(&a->vm, val, err, err_len);
	case OPT_RNG:
		a->vm.rng = true;
		return 0;
	case OPT_HELP:
		a->show_help = true;
		return 0;
	case OPT_VERSION:
		a->show_version = true;
		return 0;
	}
	return -EINVAL;
}

int fvm_args_parse(int argc, char **argv, const struct vm_config *base, bool check_complete,
		   struct fvm_args *ret_args, char *err, size_t err_len)
{
	struct fvm_args a = { .log_level = LOG_INFO };
	const char *reason;
	int opt, r;

	if (base)
		a.vm = *base;
	else
		vm_config_init(&a.vm);
	/* getopt keeps its position in globals: reset for repeated parses (tests). */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		if (opt == '?') {
			/* Inside a cluster like -xy getopt has not moved past the argument yet. */
			if (optopt > 0 && optopt < 0x100)
				snprintf(err, err_len, "unknown option '-%c' (see --help)", optopt);
			else
				snprintf(err, err_len, "unknown option '%s' (see --help)",
					 argv[optind - 1]);
			return -EINVAL;
		}
		if (opt == ':') {
			snprintf(err, err_len, "option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		r = apply_option(&a, opt, optarg, err, err_len);
		if (r < 0)
			return r;
	}
	if (optind < argc) {
		snprintf(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	/* With an API socket the kernel may come later, over the API. */
	if (!a.show_help && !a.show_version && check_complete &&
	    (a.vm.kernel_path[0] || !a.api_sock[0]) && vm_config_validate(&a.vm, &reason) < 0) {
		snprintf(err, err_len, "%s", reason);
		return -EINVAL;
	}
	*ret_args = a;
	return 0;
}
