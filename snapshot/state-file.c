// SPDX-License-Identifier: MIT
/*
 * Layout (version 1):
 *   / { format = "fvm-state"; version = <1>; crc32 = <...>;
 *       vm { mem-bytes = <u64>; nr-vcpus = <u32>; clock = [kvm_clock_data]; };
 *       vcpu@N { regs, sregs, xsave, xcrs, lapic, events, mp-state,
 *                debugregs = [raw KVM structs]; msrs = [kvm_msr_entry...];
 *                tsc-deadline = <u64>; cpuid = [kvm_cpuid_entry2...]; };
 *       devices { NAME { version = <u32>; FIELD = [raw bytes]; ... }; }; }
 * Scalars are big-endian FDT cells; KVM structs and device fields are the
 * raw little-endian bytes KVM and fvm use. The CRC-32C covers the whole blob
 * with the crc32 cell itself zeroed.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "crc32.h"
#include "state-file.h"

#define FDT_TRY(expr)                                                                              \
	do {                                                                                       \
		int _e = (expr);                                                                   \
		if (_e < 0)                                                                        \
			return _e == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;                         \
	} while (0)

struct vcpu_blob {
	const char *name;
	size_t offset;
	size_t size;
};

#define VCPU_BLOB(prop, member)                                                                    \
	{ prop, offsetof(struct vcpu_state, member), sizeof(((struct vcpu_state *)0)->member) }

/* Fixed-size KVM structs of a vCPU, written and read the same way. */
static const struct vcpu_blob vcpu_blobs[] = {
	VCPU_BLOB("regs", regs),	 VCPU_BLOB("sregs", sregs),
	VCPU_BLOB("xsave", xsave),	 VCPU_BLOB("xcrs", xcrs),
	VCPU_BLOB("lapic", lapic),	 VCPU_BLOB("events", events),
	VCPU_BLOB("mp-state", mp_state), VCPU_BLOB("debugregs", debugregs),
};

static int encode_vcpu(void *fdt, uint32_t index, const struct vcpu_state *v)
{
	char name[16];

	snprintf(name, sizeof(name), "vcpu@%u", index);
	FDT_TRY(fdt_begin_node(fdt, name));
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_blobs); i++)
		FDT_TRY(fdt_property(fdt, vcpu_blobs[i].name, (const uint8_t *)v + vcpu_blobs[i].offset,
				     (int)vcpu_blobs[i].size));
	FDT_TRY(fdt_property(fdt, "msrs", v->msrs, (int)(v->nr_msrs * sizeof(v->msrs[0]))));
	FDT_TRY(fdt_property_u64(fdt, "tsc-deadline", v->tsc_deadline));
	FDT_TRY(fdt_property(fdt, "cpuid", v->cpuid, (int)(v->nr_cpuid * sizeof(v->cpuid[0]))));
	FDT_TRY(fdt_end_node(fdt));
	return 0;
}

static int encode_device(void *fdt, const struct state_device *d)
{
	const struct state_desc *desc = d->desc;

	FDT_TRY(fdt_begin_node(fdt, desc->name));
	FDT_TRY(fdt_property_u32(fdt, "version", desc->version));
	for (size_t i = 0; i < desc->nr_fields; i++) {
		const struct state_field *f = &desc->fields[i];

		FDT_TRY(fdt_property(fdt, f->name, (const uint8_t *)d->dev + f->offset, (int)f->size));
	}
	FDT_TRY(fdt_end_node(fdt));
	return 0;
}

static int encode_into(void *fdt, int size, const struct vm_state *st,
		       const struct state_device *devs, uint32_t nr_devs)
{
	int r;

	FDT_TRY(fdt_create(fdt, size));
	FDT_TRY(fdt_finish_reservemap(fdt));
	FDT_TRY(fdt_begin_node(fdt, ""));
	FDT_TRY(fdt_property_string(fdt, "format", STATE_FORMAT_NAME));
	FDT_TRY(fdt_property_u32(fdt, "version", STATE_FORMAT_VERSION));
	FDT_TRY(fdt_property_u32(fdt, "crc32", 0));

	FDT_TRY(fdt_begin_node(fdt, "vm"));
	FDT_TRY(fdt_property_u64(fdt, "mem-bytes", st->mem_bytes));
	FDT_TRY(fdt_property_u32(fdt, "nr-vcpus", st->nr_vcpus));
	FDT_TRY(fdt_property(fdt, "clock", &st->clock, sizeof(st->clock)));
	FDT_TRY(fdt_end_node(fdt));

	for (uint32_t i = 0; i < st->nr_vcpus; i++) {
		r = encode_vcpu(fdt, i, &st->vcpus[i]);
		if (r < 0)
			return r;
	}

	FDT_TRY(fdt_begin_node(fdt, "devices"));
	for (uint32_t i = 0; i < nr_devs; i++) {
		r = encode_device(fdt, &devs[i]);
		if (r < 0)
			return r;
	}
	FDT_TRY(fdt_end_node(fdt));
	FDT_TRY(fdt_end_node(fdt));
	FDT_TRY(fdt_finish(fdt));
	return 0;
}

static uint32_t blob_crc(const void *blob, size_t len, int crc_offset)
{
	uint32_t zero = 0;

	/* CRC of the blob as if the crc32 cell were zero. */
	return crc32c_update(crc32c_update(crc32c_update(0, blob, (size_t)crc_offset), &zero,
					 sizeof(zero)),
			    (const uint8_t *)blob + crc_offset + sizeof(zero),
			    len - (size_t)crc_offset - sizeof(zero));
}

/* Offset of the crc32 cell's value inside the blob. */
static int crc_cell_offset(const void *fdt)
{
	int len;
	const void *p = fdt_getprop(fdt, 0, "crc32", &len);

	if (!p || len != sizeof(uint32_t))
		return -1;
	return (int)((const uint8_t *)p - (const uint8_t *)fdt);
}

int state_encode(const struct vm_state *st, const struct state_device *devs, uint32_t nr_devs,
		 void **ret_blob, size_t *ret_len)
{
	size_t size = 64u << 10;
	int r;

	if (st->nr_vcpus == 0 || st->nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	for (;;) {
		_cleanup_free_ void *fdt = malloc(size);
		int crc_off;
		uint32_t crc;

		if (!fdt)
			return -ENOMEM;
		r = encode_into(fdt, (int)size, st, devs, nr_devs);
		if (r == -ENOSPC && size < STATE_FILE_MAX) {
			size *= 2;
			continue;
		}
		if (r < 0)
			return r;
		crc_off = crc_cell_offset(fdt);
		if (crc_off < 0)
			return -EINVAL;
		crc = blob_crc(fdt, fdt_totalsize(fdt), crc_off);
		FDT_TRY(fdt_setprop_inplace_u32(fdt, 0, "crc32", crc));
		*ret_len = fdt_totalsize(fdt);
		*ret_blob = TAKE_PTR(fdt);
		return 0;
	}
}

/* ---- decoding: every read is length-checked ---- */

struct decoder {
	const void *fdt;
	char *reason;
	size_t reason_len;
};

static int __printf(2, 3) fail(struct decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, d->reason_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int read_exact(struct decoder *d, int node, const char *node_name, const char *prop,
		      void *dst, size_t size)
{
	int len;
	const void *p = fdt_getprop(d->fdt, node, prop, &len);

	if (!p)
		return fail(d, "state file: %s has no '%s'", node_name, prop);
	if ((size_t)len != size)
		return fail(d, "state file: %s/%s is %d bytes, expected %zu", node_name, prop, len,
			    size);
	memcpy(dst, p, size);
	return 0;
}

static int read_u32(struct decoder *d, int node, const char *node_name, const char *prop,
		    uint32_t *ret)
{
	fdt32_t v;
	int r = read_exact(d, node, node_name, prop, &v, sizeof(v));

	if (r == 0)
		*ret = fdt32_to_cpu(v);
	return r;
}

static int read_u64(struct decoder *d, int node, const char *node_name, const char *prop,
		    uint64_t *ret)
{
	fdt64_t v;
	int r = read_exact(d, node, node_name, prop, &v, sizeof(v));

	if (r == 0)
		*ret = fdt64_to_cpu(v);
	return r;
}

/* A variable-length array of fixed-size records, at most max of them. */
static int read_array(struct decoder *d, int node, const char *node_name, const char *prop,
		      void *dst, size_t record, uint32_t max, uint32_t *ret_n)
{
	int len;
	const void *p = fdt_getprop(d->fdt, node, prop, &len);

	if (!p)
		return fail(d, "state file: %s has no '%s'", node_name, prop);
	if (len < 0 || (size_t)len % record || (size_t)len / record > max)
		return fail(d, "state file: %s/%s has a bad length (%d bytes)", node_name, prop,
			    len);
	memcpy(dst, p, (size_t)len);
	*ret_n = (uint32_t)((size_t)len / record);
	return 0;
}

static int decode_header(struct decoder *d, const void *blob, size_t len)
{
	const char *format;
	uint32_t version = 0;
	int crc_off, r;
	fdt32_t stored;

	if (len > STATE_FILE_MAX)
		return fail(d, "state file is larger than %u bytes", STATE_FILE_MAX);
	if (len < sizeof(struct fdt_header) || fdt_check_full(blob, len) != 0)
		return fail(d, "state file is not a valid flattened device tree (truncated or "
			       "corrupt)");
	format = fdt_getprop(blob, 0, "format", NULL);
	if (!format || fdt_stringlist_count(blob, 0, "format") != 1 ||
	    strcmp(format, STATE_FORMAT_NAME) != 0)
		return fail(d, "not an fvm state file (format is not '%s')", STATE_FORMAT_NAME);
	r = read_u32(d, 0, "/", "version", &version);
	if (r < 0)
		return r;
	if (version < STATE_FORMAT_OLDEST || version > STATE_FORMAT_VERSION)
		return fail(d, "state file version %u is not supported (this fvm reads %u to %u)",
			    version, STATE_FORMAT_OLDEST, STATE_FORMAT_VERSION);
	crc_off = crc_cell_offset(blob);
	if (crc_off < 0)
		return fail(d, "state file has no valid crc32");
	memcpy(&stored, (const uint8_t *)blob + crc_off, sizeof(stored));
	if (fdt32_to_cpu(stored) != blob_crc(blob, len, crc_off))
		return fail(d, "state file checksum mismatch: the file is corrupt or was modified");
	return 0;
}

static int decode_vcpu(struct decoder *d, uint32_t index, struct vcpu_state *v)
{
	char name[16];
	int node, r;

	snprintf(name, sizeof(name), "vcpu@%u", index);
	node = fdt_subnode_offset(d->fdt, 0, name);
	if (node < 0)
		return fail(d, "state file has no node %s", name);
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_blobs); i++) {
		r = read_exact(d, node, name, vcpu_blobs[i].name, (uint8_t *)v + vcpu_blobs[i].offset,
			       vcpu_blobs[i].size);
		if (r < 0)
			return r;
	}
	r = read_array(d, node, name, "msrs", v->msrs, sizeof(v->msrs[0]), VCPU_STATE_MAX_MSRS,
		       &v->nr_msrs);
	if (r >= 0)
		r = read_u64(d, node, name, "tsc-deadline", &v->tsc_deadline);
	if (r >= 0)
		r = read_array(d, node, name, "cpuid", v->cpuid, sizeof(v->cpuid[0]),
			       CPUID_MAX_ENTRIES, &v->nr_cpuid);
	return r;
}

static int decode_vm_header(struct decoder *d, int node, uint64_t *ret_mem, uint32_t *ret_nr)
{
	int r = read_u64(d, node, "vm", "mem-bytes", ret_mem);

	if (r >= 0)
		r = read_u32(d, node, "vm", "nr-vcpus", ret_nr);
	if (r < 0)
		return r;
	if (*ret_nr < 1 || *ret_nr > VM_MAX_VCPUS)
		return fail(d, "state file has %u vCPUs (1 to %d allowed)", *ret_nr, VM_MAX_VCPUS);
	if (*ret_mem < VM_MEM_MIN || *ret_mem > VM_MEM_MAX || *ret_mem % 4096)
		return fail(d, "state file has an invalid memory size (%llu bytes)",
			    (unsigned long long)*ret_mem);
	return 0;
}

static int decode_vm(struct decoder *d, struct vm_state **ret_st)
{
	_cleanup_(vm_state_freep) struct vm_state *st = NULL;
	int node = fdt_subnode_offset(d->fdt, 0, "vm");
	uint64_t mem_bytes = 0;
	uint32_t nr_vcpus = 0;
	int r;

	if (node < 0)
		return fail(d, "state file has no vm node");
	r = decode_vm_header(d, node, &mem_bytes, &nr_vcpus);
	if (r < 0)
		return r;
	st = vm_state_new(nr_vcpus);
	if (!st)
		return -ENOMEM;
	st->mem_bytes = mem_bytes;
	r = read_exact(d, node, "vm", "clock", &st->clock, sizeof(st->clock));
	for (uint32_t i = 0; i < st->nr_vcpus && r >= 0; i++)
		r = decode_vcpu(d, i, &st->vcpus[i]);
	if (r < 0)
		return r;
	*ret_st = TAKE_PTR(st);
	return 0;
}

/* Fill a scratch copy of the device and run its post_load check on it. */
static int decode_device(struct decoder *d, int devices, const struct state_device *sd,
			 void *scratch)
{
	const struct state_desc *desc = sd->desc;
	int node = fdt_subnode_offset(d->fdt, devices, desc->name);
	uint32_t version = 0;
	int r;

	if (node < 0)
		return fail(d, "state file has no state for device '%s'", desc->name);
	r = read_u32(d, node, desc->name, "version", &version);
	if (r < 0)
		return r;
	if (version == 0 || version > desc->version)
		return fail(d, "device '%s' state version %u is not supported (at most %u)",
			    desc->name, version, desc->version);
	memcpy(scratch, sd->dev, desc->size);
	for (size_t i = 0; i < desc->nr_fields; i++) {
		const struct state_field *f = &desc->fields[i];

		r = read_exact(d, node, desc->name, f->name, (uint8_t *)scratch + f->offset, f->size);
		if (r < 0)
			return r;
	}
	if (desc->post_load && desc->post_load(scratch) < 0)
		return fail(d, "device '%s' state is inconsistent", desc->name);
	return 0;
}

/*
 * State for a device this VM does not have (a drive missing from the
 * restore's configuration) would be silently lost: refuse it. A decode
 * without devices (learning the machine's shape) checks nothing here.
 */
static int check_no_extra_devices(struct decoder *d, int devices, const struct state_device *devs,
				  uint32_t nr_devs)
{
	int node;

	if (nr_devs == 0)
		return 0;
	fdt_for_each_subnode(node, d->fdt, devices) {
		const char *name = fdt_get_name(d->fdt, node, NULL);
		bool known = false;

		for (uint32_t i = 0; i < nr_devs && name && !known; i++)
			known = strcmp(name, devs[i].desc->name) == 0;
		if (!known)
			return fail(d, "state file has state for device '%s', which this VM does not "
				       "have (configure the same devices as the snapshotted VM)",
				    name ? name : "?");
	}
	return 0;
}

static void commit_device(const struct state_device *sd, const void *scratch)
{
	/* Only the described fields: locks, fds and wiring stay the live device's. */
	for (size_t i = 0; i < sd->desc->nr_fields; i++) {
		const struct state_field *f = &sd->desc->fields[i];

		memcpy((uint8_t *)sd->dev + f->offset, (const uint8_t *)scratch + f->offset, f->size);
	}
}

int state_decode(const void *blob, size_t len, struct vm_state **ret_st,
		 const struct state_device *devs, uint32_t nr_devs, char *reason, size_t reason_len)
{
	struct decoder d = { .fdt = blob, .reason = reason, .reason_len = reason_len };
	_cleanup_(vm_state_freep) struct vm_state *st = NULL;
	void *scratch[16] = { 0 };
	int devices, r;

	if (nr_devs > ARRAY_SIZE(scratch))
		return -EINVAL;
	r = decode_header(&d, blob, len);
	if (r < 0)
		return r;
	r = decode_vm(&d, &st);
	if (r < 0)
		return r;

	devices = fdt_subnode_offset(blob, 0, "devices");
	if (devices < 0)
		return fail(&d, "state file has no devices node");
	r = check_no_extra_devices(&d, devices, devs, nr_devs);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < nr_devs && r >= 0; i++) {
		scratch[i] = malloc(devs[i].desc->size);
		r = scratch[i] ? decode_device(&d, devices, &devs[i], scratch[i]) : -ENOMEM;
	}
	if (r >= 0) {
		for (uint32_t i = 0; i < nr_devs; i++)
			commit_device(&devs[i], scratch[i]);
		*ret_st = TAKE_PTR(st);
	}
	for (uint32_t i = 0; i < nr_devs; i++)
		free(scratch[i]);
	return r;
}

int state_write_file(const char *path, const void *blob, size_t len)
{
	char tmp[4096], dir[4096];
	_cleanup_close_ int fd = -1, dfd = -1;
	const uint8_t *p = blob;
	char *slash;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return neg_errno();
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			int r = neg_errno();

			unlink(tmp);
			return r;
		}
		p += n;
		len -= (size_t)n;
	}
	/* The data is durable before the name points at it. */
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		int r = neg_errno();

		unlink(tmp);
		return r;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	/* ...and the rename itself survives a crash. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	return 0;
}

int state_read_file(const char *path, size_t max, void **ret_data, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return neg_errno();
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0)
			return neg_errno();
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*ret_len = got;
	*ret_data = TAKE_PTR(buf);
	return 0;
}
