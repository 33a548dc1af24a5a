// SPDX-License-Identifier: MIT
#include <getopt.h>
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
