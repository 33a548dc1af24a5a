// SPDX-License-Identifier: MIT
/*
 * cmd/args.c: command lines into struct fvm_args, sizes, and the one-line
 * errors that must name what the user got wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"

enum { MAX_ARGS = 32 };

/* getopt permutes argv, so every parse gets a fresh, writable copy. */
struct argv_copy {
	int argc;
	char *argv[MAX_ARGS + 1];
};

static void argv_copy_init(struct argv_copy *c, const char *const *args)
{
	c->argc = 0;
	c->argv[c->argc++] = strdup("fvm");
	for (; *args; args++) {
		assert_true(c->argc < MAX_ARGS);
		c->argv[c->argc++] = strdup(*args);
	}
	c->argv[c->argc] = NULL;
}

static void argv_copy_free(struct argv_copy *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
}

/* Parse; the arguments after "fvm", NULL-terminated. */
static int parse(const char *const *args, struct fvm_args *ret, char *err, size_t err_len)
{
	struct argv_copy c;
	int r;

	argv_copy_init(&c, args);
	err[0] = '\0';
	r = fvm_args_parse(c.argc, c.argv, NULL, true, ret, err, err_len);
	argv_copy_free(&c);
	return r;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void expect_ok(const char *const *args, struct fvm_args *ret)
{
	char err[256];
	int r = parse(args, ret, err, sizeof(err));

	if (r != 0)
		fail_msg("parse failed: %s", err);
}

/* Fails, leaves ret_args alone, and the message contains every `needle`. */
static void expect_error(const char *const *args, const char *needle1, const char *needle2)
{
	struct fvm_args a, before;
	char err[256];

	memset(&a, 0xcc, sizeof(a));
	before = a;
	assert_int_equal(parse(args, &a, err, sizeof(err)), -EINVAL);
	assert_memory_equal(&a, &before, sizeof(a));
	assert_true(strlen(err) > 0);
	assert_null(strchr(err, '\n'));
	if (needle1 && !strstr(err, needle1))
		fail_msg("error '%s' does not mention '%s'", err, needle1);
	if (needle2 && !strstr(err, needle2))
		fail_msg("error '%s' does not mention '%s'", err, needle2);
}

static void test_minimal(void **state)
{
	struct fvm_args a;

	expect_ok(ARGS("--kernel", "/boot/vmlinuz"), &a);
	assert_string_equal(a.vm.kernel_path, "/boot/vmlinuz");
	assert_string_equal(a.vm.initrd_path, "");
	assert_false(a.vm.has_cmdline);
	assert_string_equal(a.vm.cmdline, "");
	assert_int_equal(a.vm.mem_bytes, MiB(256));
	assert_int_equal(a.vm.vcpus, 1);
	assert_string_equal(a.vm.console_path, "");
	assert_int_equal(a.vm.nr_drives, 0);
	assert_int_equal(a.vm.nr_nets, 0);
	assert_int_equal(a.log_level, LOG_INFO);
	assert_false(a.show_help);
	assert_false(a.show_version);
}

static void test_all_options(void **state)
{
	struct fvm_args a;

	expect_ok(ARGS("--kernel", "/k/bzImage", "--initrd", "/k/initrd.img", "--cmdline",
		       "console=ttyS0 root=/dev/vda quiet", "--mem", "1G", "--vcpus", "4",
		       "--console", "/tmp/console.log", "--log-level", "debug"),
		  &a);
	assert_string_equal(a.vm.kernel_path, "/k/bzImage");
	assert_string_equal(a.vm.initrd_path, "/k/initrd.img");
	assert_true(a.vm.has_cmdline);
	assert_string_equal(a.vm.cmdline, "console=ttyS0 root=/dev/vda quiet");
	assert_int_equal(a.vm.mem_bytes, GiB(1));
	assert_int_equal(a.vm.vcpus, 4);
	assert_string_equal(a.vm.console_path, "/tmp/console.log");
	assert_int_equal(a.log_level, LOG_DEBUG);
}

static void test_option_forms(void **state)
{
	struct fvm_args a;

	/* --opt=value, any order, last one wins, positional-looking values are values. */
	expect_ok(ARGS("--mem=2GiB", "--vcpus=2", "--kernel=vmlinux", "--vcpus", "3"), &a);
	assert_string_equal(a.vm.kernel_path, "vmlinux");
	assert_int_equal(a.vm.mem_bytes, GiB(2));
	assert_int_equal(a.vm.vcpus, 3);

	expect_ok(ARGS("--kernel", "k", "--console", "/dev/pts/3", "--console", "stdio"), &a);
	assert_string_equal(a.vm.console_path, "");

	/* An empty command line is a choice, not a missing one. */
	expect_ok(ARGS("--kernel", "k", "--cmdline", ""), &a);
	assert_true(a.vm.has_cmdline);
	assert_string_equal(a.vm.cmdline, "");

	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {
		{ "error", LOG_ERR },
		{ "warn", LOG_WARN },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
		expect_ok(ARGS("--log-level", levels[i].name, "--kernel", "k"), &a);
		assert_int_equal(a.log_level, levels[i].level);
	}
}

static const struct {
	const char *s;
	uint64_t bytes;
} good_sizes[] = {
	{ "256M", MiB(256) },
	{ "256m", MiB(256) },
	{ "256MiB", MiB(256) },
	{ "256MB", MiB(256) },
	{ "1G", GiB(1) },
	{ "2GiB", GiB(2) },
	{ "512", MiB(512) },
	{ "16M", MiB(16) },
	{ "64G", GiB(64) },
	{ "65536M", GiB(64) },
	{ "1048576K", GiB(1) },
	{ "16384k", MiB(16) },
	{ "16777216B", MiB(16) },
	{ "16777216b", MiB(16) },
	{ "0016M", MiB(16) },
};

static void test_sizes(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_sizes); i++) {
		char opt[64];
		struct fvm_args a;
		uint64_t bytes = 0;

		if (fvm_parse_size(good_sizes[i].s, &bytes) != 0 || bytes != good_sizes[i].bytes)
			print_message("size '%s'\n", good_sizes[i].s);
		assert_int_equal(fvm_parse_size(good_sizes[i].s, &bytes), 0);
		assert_int_equal(bytes, good_sizes[i].bytes);

		snprintf(opt, sizeof(opt), "--mem=%s", good_sizes[i].s);
		expect_ok(ARGS("--kernel", "k", opt), &a);
		assert_int_equal(a.vm.mem_bytes, good_sizes[i].bytes);
	}
}

static void test_parse_size_edges(void **state)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1b", 0, 1 },
		{ "512K", 0, 524288 },
		{ "1T", 0, 1ull << 40 },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "16777216T", -ERANGE, 0 },
		{ "17179869184G", -ERANGE, 0 },
		{ "17179869183G", 0, ((1ull << 34) - 1) << 30 },
		{ "99999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1G", -EINVAL, 0 },
		{ " 1G", -EINVAL, 0 },
		{ "1G ", -EINVAL, 0 },
		{ "1 G", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ "12X", -EINVAL, 0 },
		{ "1GG", -EINVAL, 0 },
		{ "1iB", -EINVAL, 0 },
		{ "1Bi", -EINVAL, 0 },
		{ "1BiB", -EINVAL, 0 },
		{ "0x10M", -EINVAL, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t bytes = 0xdead;
		int r = fvm_parse_size(cases[i].s, &bytes);

		if (r != cases[i].ret)
			print_message("size '%s': %d\n", cases[i].s, r);
		assert_int_equal(r, cases[i].ret);
		/* Written only on success. */
		assert_int_equal(bytes, r == 0 ? cases[i].bytes : 0xdead);
	}
}

static void test_bad_mem(void **state)
{
	static const char *const bad[] = {
		"0", "15M", "65G", "12X", "-1", "", "1.5G", "64G1", "16777217B", "16773120B",
		"1T", "99999999999999999999", "abc",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char quoted[64];

		snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
		expect_error(ARGS("--kernel", "k", "--mem", bad[i]), "--mem", quoted);
	}
}

static void test_vcpus(void **state)
{
	static const char *const bad[] = {
		"0",   "33",  "abc", "-1", "", "4x", "1.5",
		"0x4", "4294967297", "99999999999999999999",
	};

	for (uint32_t n = 1; n <= 32; n++) {
		char v[8];
		struct fvm_args a;

		snprintf(v, sizeof(v), "%u", n);
		expect_ok(ARGS("--kernel", "k", "--vcpus", v), &a);
		assert_int_equal(a.vm.vcpus, n);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char quoted[64];

		snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
		expect_error(ARGS("--kernel", "k", "--vcpus", bad[i]), "--vcpus", quoted);
	}
}

static void test_missing_kernel(void **state)
{
	expect_error(ARGS("--mem", "1G"), "--kernel", NULL);
	expect_error((const char *const[]){ NULL }, "--kernel", NULL);
	expect_error(ARGS("--kernel", ""), "--kernel", "empty");
}

static void test_unknown_option(void **state)
{
	expect_error(ARGS("--kernel", "k", "--bogus"), "'--bogus'", NULL);
	expect_error(ARGS("--bogus=1", "--kernel", "k"), "'--bogus=1'", NULL);
	expect_error(ARGS("--kernel", "k", "-x"), "'-x'", NULL);
	/* Not a prefix of any option. */
	expect_error(ARGS("--kernelx", "k"), "'--kernelx'", NULL);
}

/*
 * For an unknown short option inside a cluster ("-xy"), getopt has not
 * advanced optind yet: the message must come from optopt, not from
 * argv[optind - 1] (which names the previous argument).
 */
static void test_unknown_short_option_in_cluster(void **state)
{
	expect_error(ARGS("--kernel", "k", "-xy"), "'-x'", NULL);
	expect_error(ARGS("-xy", "--kernel", "k"), "'-x'", NULL);
}

static void test_missing_value(void **state)
{
	static const char *const opts[] = {
		"--kernel", "--initrd", "--cmdline", "--mem", "--vcpus", "--console", "--log-level",
	};

	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		char quoted[32];

		snprintf(quoted, sizeof(quoted), "'%s'", opts[i]);
		if (strcmp(opts[i], "--kernel") == 0)
			expect_error(ARGS(opts[i]), quoted, "value");
		else
			expect_error(ARGS("--kernel", "k", opts[i]), quoted, "value");
	}
}

static void test_stray_argument(void **state)
{
	expect_error(ARGS("--kernel", "k", "extra"), "'extra'", NULL);
	expect_error(ARGS("vmlinux", "--kernel", "k"), "'vmlinux'", NULL);
	expect_error(ARGS("--kernel", "k", "--", "--mem"), "'--mem'", NULL);
}

static void test_help_and_version(void **state)
{
	struct fvm_args a;

	expect_ok(ARGS("--help"), &a);
	assert_true(a.show_help);
	assert_false(a.show_version);

	expect_ok(ARGS("--version"), &a);
	assert_true(a.show_version);
	assert_false(a.show_help);

	/* Other options are still checked. */
	expect_error(ARGS("--help", "--vcpus", "0"), "--vcpus", NULL);
	expect_error(ARGS("--version", "--bogus"), "--bogus", NULL);
	/* --help takes no value. */
	expect_error(ARGS("--help=yes"), "--help", NULL);

	assert_non_null(strstr(fvm_usage, "--kernel"));
	assert_non_null(strstr(fvm_usage, "--mem"));
	assert_non_null(strstr(fvm_usage, "--vcpus"));
}

static void test_other_bad_values(void **state)
{
	char *long_path = malloc(VM_CONFIG_PATH_MAX + 1);
	char *long_cmdline = malloc(VM_CONFIG_CMDLINE_MAX + 1);
	struct fvm_args a;

	assert_non_null(long_path);
	assert_non_null(long_cmdline);
	expect_error(ARGS("--kernel", "k", "--log-level", "verbose"), "--log-level", "'verbose'");
	expect_error(ARGS("--kernel", "k", "--initrd", ""), "--initrd", NULL);
	expect_error(ARGS("--kernel", "k", "--console", ""), "--console", NULL);

	/* Paths up to the limit fit; one more byte is refused by name. */
	memset(long_path, 'p', VM_CONFIG_PATH_MAX - 1);
	long_path[VM_CONFIG_PATH_MAX - 1] = '\0';
	expect_ok(ARGS("--kernel", long_path), &a);
	assert_int_equal(strlen(a.vm.kernel_path), VM_CONFIG_PATH_MAX - 1);
	long_path[VM_CONFIG_PATH_MAX - 1] = 'p';
	long_path[VM_CONFIG_PATH_MAX] = '\0';
	expect_error(ARGS("--kernel", long_path), "--kernel", "too long");
	expect_error(ARGS("--kernel", "k", "--initrd", long_path), "--initrd", "too long");

	memset(long_cmdline, 'c', VM_CONFIG_CMDLINE_MAX - 1);
	long_cmdline[VM_CONFIG_CMDLINE_MAX - 1] = '\0';
	expect_ok(ARGS("--kernel", "k", "--cmdline", long_cmdline), &a);
	assert_int_equal(strlen(a.vm.cmdline), VM_CONFIG_CMDLINE_MAX - 1);
	long_cmdline[VM_CONFIG_CMDLINE_MAX - 1] = 'c';
	long_cmdline[VM_CONFIG_CMDLINE_MAX] = '\0';
	expect_error(ARGS("--kernel", "k", "--cmdline", long_cmdline), "--cmdline", "too long");
	free(long_path);
	free(long_cmdline);
}

static void test_drives(void **state)
{
	struct fvm_args a;
	char buf[VM_CONFIG_CMDLINE_MAX];

	expect_ok(ARGS("--kernel", "k", "--drive", "path=/d/root.qcow2,root", "--drive",
		       "ro,id=data_1,path=/d/data.raw"),
		  &a);
	assert_int_equal(a.vm.nr_drives, 2);
	assert_string_equal(a.vm.drives[0].path, "/d/root.qcow2");
	assert_string_equal(a.vm.drives[0].id, "drive0");
	assert_true(a.vm.drives[0].is_root);
	assert_false(a.vm.drives[0].read_only);
	assert_string_equal(a.vm.drives[1].path, "/d/data.raw");
	assert_string_equal(a.vm.drives[1].id, "data_1");
	assert_true(a.vm.drives[1].read_only);
	assert_false(a.vm.drives[1].is_root);
	/* A root drive completes the default command line, never the user's. */
	assert_string_equal(vm_config_cmdline(&a.vm, buf, sizeof(buf)),
			    VM_DEFAULT_CMDLINE " root=/dev/vda rw");
	a.vm.drives[0].read_only = true;
	assert_string_equal(vm_config_cmdline(&a.vm, buf, sizeof(buf)),
			    VM_DEFAULT_CMDLINE " root=/dev/vda ro");
	expect_ok(ARGS("--kernel", "k", "--drive", "path=/r,root", "--cmdline", "console=hvc0"), &a);
	assert_string_equal(vm_config_cmdline(&a.vm, buf, sizeof(buf)), "console=hvc0");
	expect_ok(ARGS("--kernel", "k", "--drive", "path=/data"), &a);
	assert_string_equal(vm_config_cmdline(&a.vm, buf, sizeof(buf)), VM_DEFAULT_CMDLINE);
	assert_non_null(strstr(fvm_usage, "--drive"));

	/* overlay=: the VM writes a qcow2 overlay over path. */
	expect_ok(ARGS("--kernel", "k", "--drive", "path=/base.raw,overlay=/vm/top.qcow2,root"), &a);
	assert_string_equal(a.vm.drives[0].path, "/base.raw");
	assert_string_equal(a.vm.drives[0].overlay, "/vm/top.qcow2");
	assert_true(a.vm.drives[0].is_root);
}

static void test_bad_drives(void **state)
{
	struct fvm_args a;

	expect_error(ARGS("--kernel", "k", "--drive", "id=x"), "--drive", "path=");
	expect_error(ARGS("--kernel", "k", "--drive", "path="), "--drive path", "empty");
	expect_error(ARGS("--kernel", "k", "--drive", "path=/a,overlay="), "--drive overlay", "empty");
	expect_error(ARGS("--kernel", "k", "--drive", "path=/a,rw"), "unknown key", "'rw'");
	expect_error(ARGS("--kernel", "k", "--drive", "path=/a,id=no/slash"), "--drive id", NULL);
	expect_error(ARGS("--kernel", "k", "--drive", "path=/a,id=x", "--drive", "path=/b,id=x"),
		     "two drives", "'x'");
	expect_error(ARGS("--kernel", "k", "--drive", "path=/a,root", "--drive", "path=/b,root"),
		     "root", NULL);
	expect_error(ARGS("--kernel", "k", "--drive", "path=/1", "--drive", "path=/2", "--drive",
			  "path=/3", "--drive", "path=/4", "--drive", "path=/5", "--drive",
			  "path=/6", "--drive", "path=/7", "--drive", "path=/8", "--drive",
			  "path=/9"),
		     "at most 8", NULL);
	expect_ok(ARGS("--kernel", "k", "--drive", "path=/a"), &a);
	/* The same rules hold for a config from a file or the API. */
	a.vm.drives[1] = a.vm.drives[0];
	a.vm.nr_drives = 2;
	assert_int_equal(vm_config_validate(&a.vm, &(const char *){ NULL }), -EINVAL);
	snprintf(a.vm.drives[1].id, sizeof(a.vm.drives[1].id), "other");
	assert_int_equal(vm_config_validate(&a.vm, &(const char *){ NULL }), 0);
	a.vm.drives[0].is_root = a.vm.drives[1].is_root = true;
	assert_int_equal(vm_config_validate(&a.vm, &(const char *){ NULL }), -EINVAL);
}

static void test_net_vsock_rng(void **state)
{
	struct fvm_args a;
	const struct vm_net_config *n;

	expect_ok(ARGS("--kernel", "k", "--net",
		       "tap=fvmtap0,mac=06:00:ac:10:00:02,ip=10.0.0.2/24,gw=10.0.0.1,"
		       "clone-tap=tap{n},clone-netns=/run/netns/fvm-{n}",
		       "--net", "fd=7,id=second", "--vsock", "cid=3,uds=/tmp/v.sock", "--rng"),
		  &a);
	assert_int_equal(a.vm.nr_nets, 2);
	n = &a.vm.nets[0];
	assert_string_equal(n->id, "net0");
	assert_string_equal(n->tap_name, "fvmtap0");
	assert_false(n->has_tap_fd);
	assert_true(n->has_mac);
	assert_int_equal(n->mac[5], 0x02);
	assert_string_equal(n->guest_ip, "10.0.0.2/24");
	assert_string_equal(n->guest_gateway, "10.0.0.1");
	assert_string_equal(n->clone_tap_name, "tap{n}");
	assert_string_equal(n->clone_netns, "/run/netns/fvm-{n}");
	assert_true(a.vm.nets[1].has_tap_fd);
	assert_int_equal(a.vm.nets[1].tap_fd, 7);
	assert_string_equal(a.vm.nets[1].id, "second");
	assert_true(a.vm.vsock.enabled);
	assert_int_equal(a.vm.vsock.guest_cid, 3);
	assert_string_equal(a.vm.vsock.uds_path, "/tmp/v.sock");
	assert_true(a.vm.rng);
	expect_ok(ARGS("--kernel", "k"), &a);
	assert_false(a.vm.rng);
	assert_false(a.vm.vsock.enabled);
	assert_int_equal(a.vm.nr_nets, 0);
}

static void test_bad_net_vsock(void **state)
{
	expect_error(ARGS("--kernel", "k", "--net", "id=x"), "--net", "tap=NAME");
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,mac=01:00:00:00:00:00"), "--net",
		     "mac=01");
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,mac=06:00:00:00:00"), "mac=", NULL);
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,fd=-1"), "fd=-1", NULL);
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,speed=10"), "speed=10", NULL);
	expect_error(ARGS("--kernel", "k", "--net", "tap=waytoolongforatapname"), "--net tap",
		     "too long");
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,clone-tap=t{x}"), "pattern", NULL);
	expect_error(ARGS("--kernel", "k", "--net", "tap=a", "--net", "tap=b", "--net", "tap=c",
			  "--net", "tap=d", "--net", "tap=e"),
		     "at most 4", NULL);
	expect_error(ARGS("--kernel", "k", "--net", "tap=a,id=x", "--net", "tap=b,id=x"), "same id",
		     NULL);
	expect_error(ARGS("--kernel", "k", "--vsock", "cid=2,uds=/a"), "--vsock", "cid=N");
	expect_error(ARGS("--kernel", "k", "--vsock", "cid=3"), "--vsock", "uds=PATH");
	expect_error(ARGS("--kernel", "k", "--vsock", "uds=/a"), "--vsock", "cid=N");
	expect_error(ARGS("--kernel", "k", "--vsock", "cid=3,uds=/a,port=1"), "port=1", NULL);
	expect_error(ARGS("--kernel", "k", "--vsock",
			  "cid=3,uds=/a/very/long/path/that/leaves/no/room/for/the/port/suffix/"
			  "of/guest/connections/in/sun_path/really"),
		     "--vsock uds", "too long");
}

static void test_config_expand(void **state)
{
	char buf[32];

	assert_int_equal(vm_config_expand("tap{n}", 12, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "tap12");
	assert_int_equal(vm_config_expand("{n}-{n}", 7, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "7-7");
	assert_int_equal(vm_config_expand("", 7, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(vm_config_expand("plain", 7, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "plain");
	assert_int_equal(vm_config_expand("t{x}", 7, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_config_expand("t{n", 7, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_config_expand("t}", 7, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_config_expand("abcd{n}", 4294967295u, buf, 8), -ENAMETOOLONG);
	assert_int_equal(vm_config_expand("abcd{n}", 123, buf, 8), 0);
	assert_string_equal(buf, "abcd123");
	assert_int_equal(vm_config_expand("abcd{n}", 1234, buf, 8), -ENAMETOOLONG);
}

static void test_small_error_buffer(void **state)
{
	struct fvm_args a;
	char err[8];

	/* The message is cut, never overflowed. */
	memset(err, 'z', sizeof(err));
	assert_int_equal(parse(ARGS("--kernel", "k", "--vcpus", "100"), &a, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "--vcpus", 7);
}

/* vm_config_validate(), the check shared with the config file and the API. */
static void test_config_validate(void **state)
{
	static const struct {
		const char *what;
		uint32_t vcpus;
		uint64_t mem;
		bool kernel;
		const char *needle;
	} cases[] = {
		{ "defaults", 1, VM_MEM_DEFAULT, true, NULL },
		{ "limits", 32, VM_MEM_MAX, true, NULL },
		{ "small", 1, VM_MEM_MIN, true, NULL },
		{ "no kernel", 1, VM_MEM_DEFAULT, false, "--kernel" },
		{ "0 vCPUs", 0, VM_MEM_DEFAULT, true, "vCPU" },
		{ "33 vCPUs", 33, VM_MEM_DEFAULT, true, "vCPU" },
		{ "too little RAM", 1, VM_MEM_MIN - 4096, true, "memory" },
		{ "too much RAM", 1, VM_MEM_MAX + 4096, true, "memory" },
		{ "unaligned RAM", 1, VM_MEM_MIN + 1, true, "4 KiB" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vm_config *cfg = malloc(sizeof(*cfg));
		const char *reason = NULL;
		int r;

		assert_non_null(cfg);
		vm_config_init(cfg);
		assert_int_equal(cfg->mem_bytes, VM_MEM_DEFAULT);
		assert_int_equal(cfg->vcpus, 1);
		if (cases[i].kernel)
			strcpy(cfg->kernel_path, "k");
		cfg->vcpus = cases[i].vcpus;
		cfg->mem_bytes = cases[i].mem;
		r = vm_config_validate(cfg, &reason);
		if ((r == 0) != (cases[i].needle == NULL))
			print_message("case: %s\n", cases[i].what);
		if (cases[i].needle) {
			assert_int_equal(r, -EINVAL);
			assert_non_null(reason);
			assert_non_null(strstr(reason, cases[i].needle));
		} else {
			assert_int_equal(r, 0);
			assert_null(reason);
		}
		free(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_option_forms),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_parse_size_edges),
		cmocka_unit_test(test_bad_mem),
		cmocka_unit_test(test_vcpus),
		cmocka_unit_test(test_missing_kernel),
		cmocka_unit_test(test_unknown_option),
		cmocka_unit_test(test_unknown_short_option_in_cluster),
		cmocka_unit_test(test_missing_value),
		cmocka_unit_test(test_stray_argument),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_other_bad_values),
		cmocka_unit_test(test_drives),
		cmocka_unit_test(test_bad_drives),
		cmocka_unit_test(test_net_vsock_rng),
		cmocka_unit_test(test_bad_net_vsock),
		cmocka_unit_test(test_config_expand),
		cmocka_unit_test(test_small_error_buffer),
		cmocka_unit_test(test_config_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
