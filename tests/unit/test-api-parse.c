// SPDX-License-Identifier: MIT
/*
 * The request parsers, one table row per case: valid bodies (with a check
 * of what was parsed), invalid ones, unknown fields and out-of-range
 * values, each with the words the client must see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api-parse.h"
#include "util.h"

enum endpoint {
	EP_MACHINE,
	EP_BOOT,
	EP_DRIVE,
	EP_NET,
	EP_VSOCK,
	EP_ENTROPY,
	EP_ACTION,
	EP_VM,
	EP_SNAP_CREATE,
	EP_SNAP_LOAD,
	EP_FORK,
	EP_EXEC,
	EP_COMMIT,
};

/* Everything a parser can produce, so that one check function sees it. */
struct parsed {
	struct api_machine_config mc;
	struct api_boot_source bs;
	struct vm_drive_config drive;
	struct vm_net_config net;
	struct vm_vsock_config vsock;
	struct api_entropy_config entropy;
	enum api_action action;
	enum api_vm_target vm;
	struct api_snapshot_create sc;
	struct api_snapshot_load sl;
	struct api_fork_request fork;
	struct api_exec_request exec;
};

struct row {
	const char *name;
	enum endpoint ep;
	const char *path_id; /* drives, network-interfaces, commit */
	const char *body;
	const char *fault; /* NULL: must parse; else a substring of the reason */
	bool (*check)(const struct parsed *p);
};

static int parse(const struct row *r, struct parsed *p, struct api_fault *f)
{
	size_t len = strlen(r->body);

	switch (r->ep) {
	case EP_MACHINE:
		return api_parse_machine_config(r->body, len, &p->mc, f);
	case EP_BOOT:
		return api_parse_boot_source(r->body, len, &p->bs, f);
	case EP_DRIVE:
		return api_parse_drive(r->path_id, r->body, len, &p->drive, f);
	case EP_NET:
		return api_parse_network_interface(r->path_id, r->body, len, &p->net, f);
	case EP_VSOCK:
		return api_parse_vsock(r->body, len, &p->vsock, f);
	case EP_ENTROPY:
		return api_parse_entropy(r->body, len, &p->entropy, f);
	case EP_ACTION:
		return api_parse_action(r->body, len, &p->action, f);
	case EP_VM:
		return api_parse_vm_state(r->body, len, &p->vm, f);
	case EP_SNAP_CREATE:
		return api_parse_snapshot_create(r->body, len, &p->sc, f);
	case EP_SNAP_LOAD:
		return api_parse_snapshot_load(r->body, len, &p->sl, f);
	case EP_FORK:
		return api_parse_fork(r->body, len, "tmpl", &p->fork, f);
	case EP_EXEC:
		return api_parse_exec(r->body, len, &p->exec, f);
	case EP_COMMIT:
		return api_parse_commit(r->path_id, r->body, len, f);
	}
	return -EINVAL;
}

/* ---- checks of what valid bodies parse into ---- */

static bool mc_full(const struct parsed *p)
{
	return p->mc.vcpu_count == 4 && p->mc.mem_size_mib == 2048 && p->mc.smt &&
	       p->mc.track_dirty_pages && p->mc.huge_pages == API_HUGE_PAGES_2M;
}

static bool mc_defaults(const struct parsed *p)
{
	return p->mc.vcpu_count == 1 && p->mc.mem_size_mib == 16 && !p->mc.smt &&
	       !p->mc.track_dirty_pages && p->mc.huge_pages == API_HUGE_PAGES_NONE;
}

static bool mc_max(const struct parsed *p)
{
	return p->mc.vcpu_count == 32 && p->mc.mem_size_mib == 65536;
}

static bool boot_full(const struct parsed *p)
{
	return strcmp(p->bs.kernel_path, "/k") == 0 && strcmp(p->bs.initrd_path, "/i") == 0 &&
	       p->bs.has_cmdline && strcmp(p->bs.cmdline, "console=ttyS0") == 0;
}

static bool boot_no_args(const struct parsed *p)
{
	return !p->bs.has_cmdline && p->bs.initrd_path[0] == '\0';
}

static bool boot_empty_args(const struct parsed *p)
{
	return p->bs.has_cmdline && p->bs.cmdline[0] == '\0';
}

static bool drive_ok(const struct parsed *p)
{
	return strcmp(p->drive.id, "root_fs-1") == 0 && strcmp(p->drive.path, "/img") == 0 &&
	       p->drive.is_root && p->drive.read_only;
}

static bool net_ok(const struct parsed *p)
{
	static const uint8_t mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};

	return strcmp(p->net.id, "eth0") == 0 && strcmp(p->net.tap_name, "tap0") == 0 &&
	       p->net.has_mac && memcmp(p->net.mac, mac, 6) == 0;
}

static bool net_no_mac(const struct parsed *p)
{
	return !p->net.has_mac;
}

static bool vsock_ok(const struct parsed *p)
{
	return p->vsock.enabled && p->vsock.guest_cid == 3 &&
	       strcmp(p->vsock.uds_path, "/v.sock") == 0;
}

static bool entropy_ok(const struct parsed *p)
{
	return p->entropy.enabled;
}

static bool action_start(const struct parsed *p)
{
	return p->action == API_ACTION_INSTANCE_START;
}

static bool action_cad(const struct parsed *p)
{
	return p->action == API_ACTION_SEND_CTRL_ALT_DEL;
}

static bool action_flush(const struct parsed *p)
{
	return p->action == API_ACTION_FLUSH_METRICS;
}

static bool vm_pause(const struct parsed *p)
{
	return p->vm == API_VM_PAUSE;
}

static bool vm_resume(const struct parsed *p)
{
	return p->vm == API_VM_RESUME;
}

static bool sc_full(const struct parsed *p)
{
	return strcmp(p->sc.snapshot_path, "/s") == 0 && strcmp(p->sc.mem_file_path, "/m") == 0 &&
	       p->sc.type == API_SNAPSHOT_FULL;
}

static bool sc_diff(const struct parsed *p)
{
	return p->sc.type == API_SNAPSHOT_DIFF;
}

static bool sl_file(const struct parsed *p)
{
	return strcmp(p->sl.mem_file_path, "/m") == 0 && !p->sl.resume_vm &&
	       !p->sl.track_dirty_pages && p->sl.nr_net_overrides == 0 && !p->sl.has_vsock_override;
}

static bool sl_full(const struct parsed *p)
{
	return strcmp(p->sl.mem_file_path, "/mb") == 0 && p->sl.resume_vm &&
	       p->sl.track_dirty_pages && p->sl.clock_realtime && p->sl.nr_net_overrides == 2 &&
	       strcmp(p->sl.net_overrides[1].iface_id, "e1") == 0 &&
	       strcmp(p->sl.net_overrides[1].host_dev_name, "tap1") == 0 &&
	       p->sl.has_vsock_override && strcmp(p->sl.vsock_uds_path, "/v2") == 0;
}

static bool fork_default(const struct parsed *p)
{
	return p->fork.count == 3 && strcmp(p->fork.name_prefix, "tmpl") == 0 && p->fork.resume;
}

static bool fork_full(const struct parsed *p)
{
	return p->fork.count == 256 && strcmp(p->fork.name_prefix, "web") == 0 && !p->fork.resume;
}

static bool exec_full(const struct parsed *p)
{
	const struct api_exec_request *e = &p->exec;

	return e->argc == 2 && strcmp(e->argv[0], "ls") == 0 && strcmp(e->argv[1], "-l") == 0 &&
	       e->argv[2] == NULL && e->envc == 1 && strcmp(e->envp[0], "A=b=c") == 0 &&
	       e->envp[1] == NULL && e->stdin_len == 3 && memcmp(e->stdin_data, "x\ny", 3) == 0 &&
	       e->timeout_ms == 1000;
}

static bool exec_defaults(const struct parsed *p)
{
	return p->exec.argc == 1 && p->exec.envc == 0 && p->exec.envp[0] == NULL &&
	       p->exec.stdin_data == NULL && p->exec.timeout_ms == API_EXEC_TIMEOUT_DEFAULT_MS;
}

#define OK(n, ep, id, body, chk)                                                                   \
	{                                                                                          \
		n, ep, id, body, NULL, chk                                                         \
	}
#define BAD(n, ep, id, body, fault)                                                                \
	{                                                                                          \
		n, ep, id, body, fault, NULL                                                       \
	}

static const struct row rows[] = {
    /* machine-config */
    OK("mc full", EP_MACHINE, NULL,
       "{\"vcpu_count\":4,\"mem_size_mib\":2048,\"smt\":true,\"track_dirty_pages\":true,"
       "\"huge_pages\":\"2M\",\"cpu_template\":\"None\"}",
       mc_full),
    OK("mc minimum", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":16}", mc_defaults),
    OK("mc maximum", EP_MACHINE, NULL, "{\"vcpu_count\":32,\"mem_size_mib\":65536}", mc_max),
    OK("mc nulls", EP_MACHINE, NULL,
       " {\"vcpu_count\":1,\"mem_size_mib\":16,\"smt\":null,\"huge_pages\":null}\n", mc_defaults),
    BAD("mc vcpu 0", EP_MACHINE, NULL, "{\"vcpu_count\":0,\"mem_size_mib\":16}",
	"'vcpu_count' must be an integer between 1 and 32"),
    BAD("mc vcpu 33", EP_MACHINE, NULL, "{\"vcpu_count\":33,\"mem_size_mib\":16}", "vcpu_count"),
    BAD("mc vcpu -1", EP_MACHINE, NULL, "{\"vcpu_count\":-1,\"mem_size_mib\":16}", "vcpu_count"),
    BAD("mc vcpu 1e0", EP_MACHINE, NULL, "{\"vcpu_count\":1e0,\"mem_size_mib\":16}", "vcpu_count"),
    BAD("mc vcpu huge", EP_MACHINE, NULL, "{\"vcpu_count\":4294967297,\"mem_size_mib\":16}",
	"vcpu_count"),
    BAD("mc mem 15", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":15}",
	"'mem_size_mib' must be an integer between 16 and 65536"),
    BAD("mc mem 65537", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":65537}",
	"mem_size_mib"),
    BAD("mc mem string", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":\"64\"}",
	"mem_size_mib"),
    BAD("mc missing vcpu", EP_MACHINE, NULL, "{\"mem_size_mib\":64}",
	"missing required field 'vcpu_count'"),
    BAD("mc unknown", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":64,\"x\":0}",
	"unknown field 'x'"),
    BAD("mc unknown before missing", EP_MACHINE, NULL, "{\"vcpus\":1}", "unknown field 'vcpus'"),
    BAD("mc smt odd", EP_MACHINE, NULL, "{\"vcpu_count\":5,\"mem_size_mib\":64,\"smt\":true}",
	"1 or even"),
    BAD("mc smt type", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"mem_size_mib\":64,\"smt\":\"yes\"}",
	"'smt' must be true or false"),
    BAD("mc 2M odd", EP_MACHINE, NULL,
	"{\"vcpu_count\":1,\"mem_size_mib\":17,\"huge_pages\":\"2M\"}", "must be even"),
    BAD("mc huge pages", EP_MACHINE, NULL,
	"{\"vcpu_count\":1,\"mem_size_mib\":64,\"huge_pages\":\"1G\"}",
	"'huge_pages' must be one of 'None', 'Transparent', '2M'"),
    BAD("mc cpu template", EP_MACHINE, NULL,
	"{\"vcpu_count\":1,\"mem_size_mib\":64,\"cpu_template\":\"C3\"}", "cpu_template"),
    BAD("mc empty", EP_MACHINE, NULL, "", "needs a JSON body"),
    BAD("mc blank", EP_MACHINE, NULL, " \r\n", "needs a JSON body"),
    BAD("mc array", EP_MACHINE, NULL, "[]", "must be a JSON object"),
    BAD("mc number", EP_MACHINE, NULL, "5", "malformed JSON"),
    BAD("mc truncated", EP_MACHINE, NULL, "{\"vcpu_count\":", "malformed JSON at line 1"),
    BAD("mc duplicate", EP_MACHINE, NULL, "{\"vcpu_count\":1,\"vcpu_count\":2}", "malformed JSON"),
    BAD("mc trailing", EP_MACHINE, NULL, "{} {}", "malformed JSON"),
    BAD("mc nul escape", EP_MACHINE, NULL, "{\"vcpu\\u0000\":1}", "malformed JSON"),

    /* boot-source */
    OK("boot full", EP_BOOT, NULL,
       "{\"kernel_image_path\":\"/k\",\"initrd_path\":\"/i\",\"boot_args\":\"console=ttyS0\"}",
       boot_full),
    OK("boot no args", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\"}", boot_no_args),
    OK("boot empty args", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\",\"boot_args\":\"\"}",
       boot_empty_args),
    BAD("boot missing kernel", EP_BOOT, NULL, "{\"initrd_path\":\"/i\"}",
	"missing required field 'kernel_image_path'"),
    BAD("boot empty kernel", EP_BOOT, NULL, "{\"kernel_image_path\":\"\"}", "must not be empty"),
    BAD("boot empty initrd", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\",\"initrd_path\":\"\"}",
	"'initrd_path' must not be empty"),
    BAD("boot kernel number", EP_BOOT, NULL, "{\"kernel_image_path\":1}", "must be a string"),
    BAD("boot args number", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\",\"boot_args\":1}",
	"'boot_args' must be a string"),
    BAD("boot tab in args", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\",\"boot_args\":\"a\\tb\"}",
	"control character"),
    BAD("boot unknown", EP_BOOT, NULL, "{\"kernel_image_path\":\"/k\",\"kernel\":\"/k\"}",
	"unknown field 'kernel'"),

    /* drives */
    OK("drive", EP_DRIVE, "root_fs-1",
       "{\"drive_id\":\"root_fs-1\",\"path_on_host\":\"/img\",\"is_root_device\":true,"
       "\"is_read_only\":true}",
       drive_ok),
    BAD("drive mismatch", EP_DRIVE, "a",
	"{\"drive_id\":\"b\",\"path_on_host\":\"/img\",\"is_root_device\":true}",
	"drive_id 'b' in the body does not match 'a' in the path"),
    BAD("drive path id charset", EP_DRIVE, "a b",
	"{\"drive_id\":\"a b\",\"path_on_host\":\"/img\",\"is_root_device\":true}",
	"drive_id in the path must be"),
    BAD("drive body id charset", EP_DRIVE, "ok",
	"{\"drive_id\":\"a/b\",\"path_on_host\":\"/img\",\"is_root_device\":true}",
	"'drive_id' must be 1 to 63 characters"),
    BAD("drive id 64", EP_DRIVE, "0123456789012345678901234567890123456789012345678901234567890123",
	"{}", "in the path must be"),
    BAD("drive no root flag", EP_DRIVE, "a", "{\"drive_id\":\"a\",\"path_on_host\":\"/img\"}",
	"missing required field 'is_root_device'"),
    BAD("drive root flag type", EP_DRIVE, "a",
	"{\"drive_id\":\"a\",\"path_on_host\":\"/img\",\"is_root_device\":1}", "true or false"),
    BAD("drive partuuid", EP_DRIVE, "a",
	"{\"drive_id\":\"a\",\"path_on_host\":\"/img\",\"is_root_device\":true,\"partuuid\":\"x\"}",
	"'partuuid' is not supported"),
    BAD("drive socket", EP_DRIVE, "a",
	"{\"drive_id\":\"a\",\"path_on_host\":\"/img\",\"is_root_device\":true,\"socket\":\"/s\"}",
	"vhost-user"),
    BAD("drive cache", EP_DRIVE, "a",
	"{\"drive_id\":\"a\",\"cache_type\":\"Unsafe\",\"path_on_host\":\"/"
	"i\",\"is_root_device\":true}",
	"'cache_type' is not supported"),

    /* network-interfaces */
    OK("net", EP_NET, "eth0",
       "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:AC:10:00:02\"}",
       net_ok),
    OK("net no mac", EP_NET, "eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}",
       net_no_mac),
    OK("net 15 char tap", EP_NET, "eth0",
       "{\"iface_id\":\"eth0\",\"host_dev_name\":\"abcdefghijklmno\"}", net_no_mac),
    BAD("net 16 char tap", EP_NET, "eth0",
	"{\"iface_id\":\"eth0\",\"host_dev_name\":\"abcdefghijklmnop\"}", "longer than 15"),
    BAD("net tap dot", EP_NET, "eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"..\"}",
	"not a valid network interface name"),
    BAD("net tap space", EP_NET, "eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"a b\"}",
	"not a valid network interface name"),
    BAD("net mac short", EP_NET, "eth0",
	"{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\",\"guest_mac\":\"06:00:ac:10:00:2\"}",
	"guest_mac"),
    BAD("net mac dashes", EP_NET, "eth0",
	"{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\",\"guest_mac\":\"06-00-ac-10-00-02\"}",
	"guest_mac"),
    BAD("net mac space", EP_NET, "eth0",
	"{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\",\"guest_mac\":\" 6:00:ac:10:00:02\"}",
	"guest_mac"),
    BAD("net mac multicast", EP_NET, "eth0",
	"{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\",\"guest_mac\":\"ff:ff:ff:ff:ff:ff\"}",
	"multicast"),
    BAD("net mtu", EP_NET, "eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\",\"mtu\":9000}",
	"'mtu' is not supported"),
    BAD("net missing tap", EP_NET, "eth0", "{\"iface_id\":\"eth0\"}",
	"missing required field 'host_dev_name'"),
    BAD("net mismatch", EP_NET, "eth0", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"t\"}",
	"does not match"),

    /* vsock, entropy */
    OK("vsock", EP_VSOCK, NULL, "{\"guest_cid\":3,\"uds_path\":\"/v.sock\"}", vsock_ok),
    OK("vsock id", EP_VSOCK, NULL, "{\"guest_cid\":3,\"uds_path\":\"/v.sock\",\"vsock_id\":\"v\"}",
       vsock_ok),
    BAD("vsock cid 2", EP_VSOCK, NULL, "{\"guest_cid\":2,\"uds_path\":\"/v\"}",
	"'guest_cid' must be an integer between 3 and 4294967294"),
    BAD("vsock bad id", EP_VSOCK, NULL, "{\"guest_cid\":3,\"uds_path\":\"/v\",\"vsock_id\":7}",
	"vsock_id"),
    BAD("vsock path 96", EP_VSOCK, NULL,
	"{\"guest_cid\":3,\"uds_path\":\"/"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	"longer than 95"),
    OK("entropy empty", EP_ENTROPY, NULL, "", entropy_ok),
    OK("entropy {}", EP_ENTROPY, NULL, "{}", entropy_ok),
    BAD("entropy limiter", EP_ENTROPY, NULL, "{\"rate_limiter\":null,\"x\":1}",
	"unknown field 'x'"),
    BAD("entropy limiter set", EP_ENTROPY, NULL, "{\"rate_limiter\":{}}", "not supported"),

    /* actions, vm */
    OK("action start", EP_ACTION, NULL, "{\"action_type\":\"InstanceStart\"}", action_start),
    OK("action cad", EP_ACTION, NULL, "{\"action_type\":\"SendCtrlAltDel\"}", action_cad),
    OK("action flush", EP_ACTION, NULL, "{\"action_type\":\"FlushMetrics\"}", action_flush),
    BAD("action lower case", EP_ACTION, NULL, "{\"action_type\":\"instancestart\"}",
	"must be one of"),
    BAD("action number", EP_ACTION, NULL, "{\"action_type\":1}", "must be one of"),
    BAD("action missing", EP_ACTION, NULL, "{}", "missing required field 'action_type'"),
    OK("vm paused", EP_VM, NULL, "{\"state\":\"Paused\"}", vm_pause),
    OK("vm resumed", EP_VM, NULL, "{\"state\":\"Resumed\"}", vm_resume),
    BAD("vm running", EP_VM, NULL, "{\"state\":\"Running\"}", "'state' must be one of"),

    /* snapshots */
    OK("snap create", EP_SNAP_CREATE, NULL, "{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\"}",
       sc_full),
    OK("snap create diff", EP_SNAP_CREATE, NULL,
       "{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"snapshot_type\":\"Diff\"}", sc_diff),
    BAD("snap create no mem", EP_SNAP_CREATE, NULL, "{\"snapshot_path\":\"/s\"}", "mem_file_path"),
    BAD("snap create version", EP_SNAP_CREATE, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"version\":\"1\"}", "not supported"),
    OK("snap load file", EP_SNAP_LOAD, NULL, "{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\"}",
       sl_file),
    OK("snap load full", EP_SNAP_LOAD, NULL,
       "{\"snapshot_path\":\"/s\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"/"
       "mb\"},"
       "\"enable_diff_snapshots\":true,\"resume_vm\":true,\"clock_realtime\":true,"
       "\"network_overrides\":[{\"iface_id\":\"e0\",\"host_dev_name\":\"tap0\"},"
       "{\"iface_id\":\"e1\",\"host_dev_name\":\"tap1\"}],\"vsock_override\":{\"uds_path\":\"/"
       "v2\"}}",
       sl_full),
    BAD("snap load both", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"mem_backend\":{\"backend_type\":"
	"\"File\",\"backend_path\":\"/mb\"}}",
	"not both"),
    BAD("snap load neither", EP_SNAP_LOAD, NULL, "{\"snapshot_path\":\"/s\"}", "is required"),
    BAD("snap load uffd", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_backend\":{\"backend_type\":\"Uffd\",\"backend_path\":\"/"
	"u\"}}",
	"Uffd"),
    BAD("snap load backend unknown", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"/"
	"u\","
	"\"x\":1}}",
	"mem_backend: unknown field 'x'"),
    BAD("snap load overrides type", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"network_overrides\":{}}",
	"must be an array"),
    BAD("snap load override bad", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/"
	"m\",\"network_overrides\":[{\"iface_id\":\"e\"}]}",
	"missing required field 'host_dev_name'"),
    BAD("snap load vsock override", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"vsock_override\":{}}",
	"missing required field 'uds_path'"),
    BAD("snap load unknown", EP_SNAP_LOAD, NULL,
	"{\"snapshot_path\":\"/s\",\"mem_file_path\":\"/m\",\"resume\":true}",
	"unknown field 'resume'"),

    /* fork */
    OK("fork default prefix", EP_FORK, NULL, "{\"count\":3}", fork_default),
    OK("fork full", EP_FORK, NULL, "{\"count\":256,\"name_prefix\":\"web\",\"resume\":false}",
       fork_full),
    BAD("fork 0", EP_FORK, NULL, "{\"count\":0}", "'count' must be an integer between 1 and 256"),
    BAD("fork 257", EP_FORK, NULL, "{\"count\":257}", "count"),
    BAD("fork no count", EP_FORK, NULL, "{\"name_prefix\":\"a\"}",
	"missing required field 'count'"),
    BAD("fork prefix charset", EP_FORK, NULL, "{\"count\":1,\"name_prefix\":\"a.b\"}",
	"name_prefix"),
    BAD("fork prefix empty", EP_FORK, NULL, "{\"count\":1,\"name_prefix\":\"\"}",
	"must not be empty"),

    /* exec */
    OK("exec full", EP_EXEC, NULL,
       "{\"argv\":[\"ls\",\"-l\"],\"env\":[\"A=b=c\"],\"stdin\":\"x\\ny\",\"timeout_ms\":1000}",
       exec_full),
    OK("exec defaults", EP_EXEC, NULL, "{\"argv\":[\"true\"]}", exec_defaults),
    BAD("exec no argv", EP_EXEC, NULL, "{}", "missing required field 'argv'"),
    BAD("exec argv string", EP_EXEC, NULL, "{\"argv\":\"ls\"}", "must be an array"),
    BAD("exec argv empty", EP_EXEC, NULL, "{\"argv\":[]}", "program name"),
    BAD("exec argv null item", EP_EXEC, NULL, "{\"argv\":[\"ls\",null]}", "only strings"),
    BAD("exec env no equals", EP_EXEC, NULL, "{\"argv\":[\"ls\"],\"env\":[\"A\"]}", "NAME=VALUE"),
    BAD("exec env object", EP_EXEC, NULL, "{\"argv\":[\"ls\"],\"env\":{\"A\":\"1\"}}",
	"must be an array"),
    BAD("exec timeout 0", EP_EXEC, NULL, "{\"argv\":[\"ls\"],\"timeout_ms\":0}", "timeout_ms"),
    BAD("exec stdin array", EP_EXEC, NULL, "{\"argv\":[\"ls\"],\"stdin\":[]}", "stdin"),
    BAD("exec unknown", EP_EXEC, NULL, "{\"argv\":[\"ls\"],\"cwd\":\"/\"}", "unknown field 'cwd'"),

    /* commit */
    OK("commit empty", EP_COMMIT, "d", "", NULL),
    OK("commit {}", EP_COMMIT, "d", "{}", NULL),
    BAD("commit field", EP_COMMIT, "d", "{\"x\":1}", "unknown field 'x'"),
    BAD("commit bad id", EP_COMMIT, "d!", "", "drive_id in the path"),
};

static void test_row(void **state)
{
	const struct row *r = *state;
	struct parsed *p = test_calloc(1, sizeof(*p));
	struct api_fault f = {""};
	int ret;

	ret = parse(r, p, &f);
	if (r->fault) {
		if (ret != -EINVAL || !strstr(f.message, r->fault))
			fail_msg("%s: got %d '%s', want -EINVAL with '%s'", r->name, ret, f.message,
				 r->fault);
	} else {
		if (ret != 0)
			fail_msg("%s: refused: %s", r->name, f.message);
		if (r->check && !r->check(p))
			fail_msg("%s: parsed into the wrong values", r->name);
	}
	if (r->ep == EP_EXEC && ret == 0)
		api_exec_request_release(&p->exec);
	test_free(p);
}

/* A failed parse must leave *ret alone (ret_* is written only on success). */
static void test_ret_untouched(void **state)
{
	struct api_machine_config mc;
	struct vm_drive_config *d = test_malloc(sizeof(*d));
	struct api_fault f;

	memset(&mc, 0xab, sizeof(mc));
	assert_int_equal(
	    api_parse_machine_config("{\"vcpu_count\":99,\"mem_size_mib\":64}", 36, &mc, &f),
	    -EINVAL);
	for (size_t i = 0; i < sizeof(mc); i++)
		assert_int_equal(((unsigned char *)&mc)[i], 0xab);
	memset(d, 0xcd, sizeof(*d));
	assert_int_equal(api_parse_drive("a",
					 "{\"drive_id\":\"b\",\"path_on_host\":\"/x\","
					 "\"is_root_device\":true}",
					 56, d, &f),
			 -EINVAL);
	for (size_t i = 0; i < sizeof(*d); i++)
		assert_int_equal(((unsigned char *)d)[i], 0xcd);
	test_free(d);
}

/* The body is length-delimited: bytes past len are never read. */
static void test_length_bounded(void **state)
{
	struct api_machine_config mc;
	struct api_fault f;
	const char *body = "{\"vcpu_count\":2,\"mem_size_mib\":64}GARBAGE";

	assert_int_equal(api_parse_machine_config(body, strlen(body) - 7, &mc, &f), 0);
	assert_int_equal(mc.vcpu_count, 2);
}

static void test_id_valid(void **state)
{
	assert_true(api_id_valid("a"));
	assert_true(api_id_valid("A-z_0"));
	assert_false(api_id_valid(""));
	assert_false(api_id_valid("a.b"));
	assert_false(api_id_valid("a/b"));
	assert_false(api_id_valid("\xc3\xa9"));
	assert_true(
	    api_id_valid("012345678901234567890123456789012345678901234567890123456789012"));
	assert_false(
	    api_id_valid("0123456789012345678901234567890123456789012345678901234567890123"));
}

/* exec's strings must outlive the parse: they live until release. */
static void test_exec_lifetime(void **state)
{
	struct api_exec_request *e = test_calloc(1, sizeof(*e));
	struct api_fault f;
	char body[] = "{\"argv\":[\"echo\",\"hello\"]}";

	assert_int_equal(api_parse_exec(body, strlen(body), e, &f), 0);
	memset(body, 'x', sizeof(body) - 1);
	assert_string_equal(e->argv[1], "hello");
	assert_non_null(e->priv);
	api_exec_request_release(e);
	assert_null(e->priv);
	api_exec_request_release(e);
	api_exec_request_release(NULL);
	test_free(e);
}

int main(void)
{
	struct CMUnitTest tests[ARRAY_SIZE(rows) + 4];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		tests[n++] = (struct CMUnitTest){
		    .name = rows[i].name, .test_func = test_row, .initial_state = (void *)&rows[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_ret_untouched);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_length_bounded);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_id_valid);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_exec_lifetime);
	return _cmocka_run_group_tests("api-parse", tests, n, NULL, NULL);
}
