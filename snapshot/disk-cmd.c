// SPDX-License-Identifier: MIT
/*
 * `fvmctl disk`: the command-line edge of the disk engine. It parses,
 * calls the engine, and prints one clear line on failure.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk-cmd.h"
#include "qcow2.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "Usage: fvmctl disk COMMAND [OPTIONS] IMAGE\n"
    "\n"
    "Commands:\n"
    "  create --size SIZE IMAGE        create a standalone qcow2 image\n"
    "  create --backing BASE OVERLAY   create a qcow2 overlay over BASE (raw or qcow2);\n"
    "                                  a relative BASE is relative to OVERLAY's folder\n"
    "      -s, --size SIZE             virtual size (K, M, G, T suffixes; default: BASE's)\n"
    "      -b, --backing BASE          the backing image\n"
    "      -F, --backing-format FMT    raw or qcow2 (default: probed)\n"
    "      -c, --cluster-size SIZE     512 bytes to 2M (default 64K)\n"
    "  commit OVERLAY                  merge OVERLAY into its backing image, then empty it\n"
    "  info [--json] IMAGE             describe an image\n"
    "  check [--json] IMAGE            count corruptions and leaked clusters; exit status\n"
    "                                  as qemu-img check: 0 clean, 2 corrupt, 3 leaks only\n"
    "\n"
    "Options for every command: -h, --help; -j, --json (info, check).\n";

static void error(const char *cmd, const char *fmt, ...) __printf(2, 3);

static void error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fvmctl disk%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *cmd, const char *what)
{
	error(cmd, "%s (see 'fvmctl disk --help')", what);
	return EXIT_USAGE;
}

/* "10G", "512M", "4096": binary suffixes, overflow checked. */
static int parse_size(const char *s, uint64_t *ret_size)
{
	static const char suffixes[] = "KMGT";
	const char *p = s, *suf;
	uint64_t v = 0;
	unsigned shift = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		suf = strchr(suffixes, *p & ~0x20);
		if (!suf || !*suf)
			return -EINVAL;
		shift = 10 * (unsigned)(suf - suffixes + 1);
		p++;
		if (strcmp(p, "") != 0 && strcmp(p, "iB") != 0 && strcmp(p, "B") != 0)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret_size = v << shift;
	return 0;
}

static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
	unsigned u = 0;
	double d = (double)v;

	while (d >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", v);
	else
		snprintf(buf, len, "%.3g %s", d, units[u]);
}

/* getopt_long over the subcommand's words; prints its own one-line errors. */
static int next_opt(const char *cmd, int argc, char **argv, const char *shortopts,
		    const struct option *longopts)
{
	const char *word;
	char what[96];
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c != '?' && c != ':')
		return c;

	word = argv[optind - 1];
	if (optopt && word[0] == '-' && word[1] != '-')
		snprintf(what, sizeof(what), "option '-%c' %s", optopt,
			 c == ':' ? "needs a value" : "is unknown");
	else
		snprintf(what, sizeof(what), "option '%.40s' %s", word,
			 c == ':' ? "needs a value" : "is unknown");
	usage_error(cmd, what);
	return '?';
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"size", required_argument, NULL, 's'},
	    {"backing", required_argument, NULL, 'b'},
	    {"backing-format", required_argument, NULL, 'F'},
	    {"cluster-size", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct qcow2_create_opts o = {};
	struct qcow2_reason why;
	uint64_t v;
	int c, r;

	while ((c = next_opt("create", argc, argv, ":s:b:F:c:h", opts)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &o.size) < 0 || o.size == 0 || o.size % 512)
				return usage_error("create",
						   "size must be a positive multiple of 512 bytes");
			break;
		case 'b':
			o.backing = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "raw") != 0 && strcmp(optarg, "qcow2") != 0)
				return usage_error("create", "backing format must be raw or qcow2");
			o.backing_fmt = optarg;
			break;
		case 'c':
			if (parse_size(optarg, &v) < 0 || v > UINT32_MAX)
				return usage_error("create", "invalid cluster size");
			o.cluster_size = (uint32_t)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return usage_error("create", "expected exactly one IMAGE");
	if (!o.backing && !o.size)
		return usage_error("create", "give --size, --backing, or both");
	if (o.backing_fmt && !o.backing)
		return usage_error("create", "--backing-format needs --backing");

	r = qcow2_create(argv[optind], &o, &why);
	if (r < 0) {
		error("create", "%s", why.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_commit(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	_cleanup_qcow2_ struct qcow2 *q = NULL;
	struct qcow2_reason why;
	int c, r;

	while ((c = next_opt("commit", argc, argv, ":h", opts)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		return EXIT_USAGE;
	}
	if (optind != argc - 1)
		return usage_error("commit", "expected exactly one OVERLAY");

	r = qcow2_open(argv[optind], QCOW2_OPEN_RW | QCOW2_OPEN_BACKING_RW, &q, &why);
	if (r < 0) {
		error("commit", "cannot open '%s': %s", argv[optind], why.msg);
		return EXIT_FAIL;
	}
	r = qcow2_commit(q, &why);
	if (r < 0) {
		error("commit", "'%s': %s", argv[optind], why.msg);
		return EXIT_FAIL;
	}
	r = qcow2_flush(q);
	if (r < 0) {
		error("commit", "'%s': %s", argv[optind], qcow2_last_error(q));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static bool is_qcow2(const char *path, int *ret_err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t magic[4] = {};
	ssize_t n;

	if (fd < 0) {
		*ret_err = neg_errno();
		return false;
	}
	n = pread(fd, magic, sizeof(magic), 0);
	*ret_err = n < 0 ? neg_errno() : 0;
	return n > 0 && qcow2_probe(magic, (uint64_t)n);
}

static int info_raw(const char *path, bool json)
{
	struct stat st;
	char vs[32];

	if (stat(path, &st) < 0) {
		error("info", "cannot stat '%s': %m", path);
		return EXIT_FAIL;
	}
	if (json) {
		json_t *doc = json_pack("{s:s, s:s, s:I, s:I}", "filename", path, "format", "raw",
					"virtual-size", (json_int_t)st.st_size, "actual-size",
					(json_int_t)st.st_blocks * 512);
		json_dumpf(doc, stdout, JSON_INDENT(4));
		fputc('\n', stdout);
		json_decref(doc);
		return EXIT_OK;
	}
	human_size((uint64_t)st.st_size, vs, sizeof(vs));
	printf("image: %s\nformat: raw\nvirtual size: %s (%lld bytes)\n", path, vs,
	       (long long)st.st_size);
	return EXIT_OK;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	_cleanup_qcow2_ struct qcow2 *q = NULL;
	struct qcow2_reason why;
	struct qcow2_info info;
	const char *chain_error = NULL;
	bool json = false;
	char vs[32], fs[32], as[32];
	const char *path;
	int c, r;

	while ((c = next_opt("info", argc, argv, ":jh", opts)) != -1) {
		if (c == 'j') {
			json = true;
			continue;
		}
		if (c == 'h') {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		return EXIT_USAGE;
	}
	if (optind != argc - 1)
		return usage_error("info", "expected exactly one IMAGE");
	path = argv[optind];

	if (!is_qcow2(path, &r)) {
		if (r < 0) {
			error("info", "cannot open '%s': %s", path, strerror(-r));
			return EXIT_FAIL;
		}
		return info_raw(path, json);
	}

	r = qcow2_open(path, 0, &q, &why);
	if (r < 0) {
		/* A broken chain still leaves the image itself to describe. */
		struct qcow2_reason alone;

		if (qcow2_open(path, QCOW2_OPEN_NO_BACKING, &q, &alone) < 0) {
			error("info", "cannot open '%s': %s", path, why.msg);
			return EXIT_FAIL;
		}
		chain_error = why.msg;
	}
	r = qcow2_get_info(q, &info);
	if (r < 0) {
		error("info", "'%s': %s", path, qcow2_last_error(q));
		return EXIT_FAIL;
	}

	if (json) {
		/* QEMU's key names where `qemu-img info` has the same field. */
		json_t *doc = json_pack(
		    "{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:i, s:{s:s, s:i, s:b, s:b}}",
		    "filename", path, "format", "qcow2", "virtual-size",
		    (json_int_t)info.virtual_size, "actual-size", (json_int_t)info.file_size,
		    "cluster-size", (json_int_t)info.cluster_size, "dirty-flag", info.dirty,
		    "allocated-bytes", (json_int_t)info.allocated_bytes, "zero-clusters",
		    (json_int_t)info.zero_clusters, "chain-depth", (int)info.chain_depth,
		    "format-specific", "compat", info.version == 3 ? "1.1" : "0.10",
		    "refcount-bits", (int)info.refcount_bits, "corrupt", info.corrupt,
		    "lazy-refcounts", info.lazy_refcounts);

		if (!doc)
			return EXIT_FAIL;
		if (info.backing_file[0])
			json_object_set_new(doc, "backing-filename",
					    json_string(info.backing_file));
		if (info.backing_format[0])
			json_object_set_new(doc, "backing-filename-format",
					    json_string(info.backing_format));
		if (chain_error)
			json_object_set_new(doc, "backing-error", json_string(chain_error));
		json_dumpf(doc, stdout, JSON_INDENT(4));
		fputc('\n', stdout);
		json_decref(doc);
		return EXIT_OK;
	}

	human_size(info.virtual_size, vs, sizeof(vs));
	human_size(info.file_size, fs, sizeof(fs));
	human_size(info.allocated_bytes, as, sizeof(as));
	printf("image: %s\n", path);
	printf("format: qcow2 (version %u)\n", info.version);
	printf("virtual size: %s (%" PRIu64 " bytes)\n", vs, info.virtual_size);
	printf("file size: %s\n", fs);
	printf("cluster size: %u\n", info.cluster_size);
	printf("refcount bits: %u\n", info.refcount_bits);
	printf("allocated here: %s, %" PRIu64 " zero clusters\n", as, info.zero_clusters);
	if (info.backing_file[0]) {
		printf("backing file: %s (%s)\n", info.backing_file,
		       info.backing_format[0] ? info.backing_format : "format not recorded");
		if (chain_error)
			printf("backing chain: broken: %s\n", chain_error);
		else
			printf("images below: %u\n", info.chain_depth);
	}
	printf("dirty: %s, corrupt: %s, lazy refcounts: %s\n", info.dirty ? "yes" : "no",
	       info.corrupt ? "yes" : "no", info.lazy_refcounts ? "yes" : "no");
	return EXIT_OK;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	_cleanup_qcow2_ struct qcow2 *q = NULL;
	struct qcow2_check_result res;
	struct qcow2_reason why;
	bool json = false;
	const char *path;
	int c, r;

	while ((c = next_opt("check", argc, argv, ":jh", opts)) != -1) {
		if (c == 'j') {
			json = true;
			continue;
		}
		if (c == 'h') {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		return EXIT_USAGE;
	}
	if (optind != argc - 1)
		return usage_error("check", "expected exactly one IMAGE");
	path = argv[optind];

	r = qcow2_open(path, QCOW2_OPEN_NO_BACKING, &q, &why);
	if (r < 0) {
		error("check", "cannot open '%s': %s", path, why.msg);
		return EXIT_FAIL;
	}
	r = qcow2_check(q, &res);
	if (r < 0) {
		error("check", "'%s': %s", path, qcow2_last_error(q));
		return EXIT_FAIL;
	}
	if (json) {
		json_t *doc = json_pack("{s:s, s:I, s:I, s:I}", "filename", path, "corruptions",
					(json_int_t)res.corruptions, "leaks", (json_int_t)res.leaks,
					"checked-clusters", (json_int_t)res.checked_clusters);

		json_dumpf(doc, stdout, JSON_INDENT(4));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("%s: %" PRIu64 " clusters checked, %" PRIu64 " corruptions, %" PRIu64
		       " leaked clusters\n",
		       path, res.checked_clusters, res.corruptions, res.leaks);
	}
	return res.corruptions ? 2 : res.leaks ? 3 : EXIT_OK;
}

int fvmctl_disk(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
	    {"create", cmd_create},
	    {"commit", cmd_commit},
	    {"info", cmd_info},
	    {"check", cmd_check},
	};

	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			/* getopt state is per process: start afresh for this argv. */
			optind = 0;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	}
	error(NULL, "unknown command '%s' (see 'fvmctl disk --help')", argv[1]);
	return EXIT_USAGE;
}
