// SPDX-License-Identifier: MIT
/*
 * bench/run fork: fork latency of clones of a paused tiny guest on this
 * machine's /dev/kvm, beside the bare floor measured in the same run.
 *
 * Per clone: from the parent's fork() of that clone to the clone's guest
 * running (its first exit after restore). Floor: KVM_CREATE_VM + a memory
 * slot + KVM_CREATE_VCPU (with its kvm_run mapping) + register set, with
 * nothing else, in this process. USS: private memory of each idle clone
 * (all N alive at once) minus the guest pages the clone wrote.
 *
 *   bench-fork [N...]      (default: 1 10 100 1000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "fork.h"
#include "layout.h"
#include "vm.h"

#define MEM_BYTES    (256ull << 20)
#define GUEST_CODE   0x100000ull
#define GUEST_DATA   0x200000ull
#define SYNC_PORT    0xf4
#define FLOOR_ROUNDS 200

/* inc qword [0x200000]; out 0xf4, al; jmp back: one page written, one exit per loop. */
static const uint8_t guest_code[] = {
	0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xe6, SYNC_PORT, 0xeb, 0xf4,
};

struct report {
	uint32_t index;
	uint64_t running_ns;
};

struct bench_ctx {
	int report_fd;
	int hold_fd;
	int hold_write_fd;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(uint64_t *v, size_t n, double p)
{
	size_t idx;

	qsort(v, n, sizeof(v[0]), cmp_u64);
	idx = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[idx] / 1000.0;
}

static int run_to_sync(struct vcpu *vcpu)
{
	for (;;) {
		int r = vcpu_run_once(vcpu);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (r == KVM_EXIT_IO && vcpu->run->io.port == SYNC_PORT)
			return 0;
		if (r != KVM_EXIT_IO && r != KVM_EXIT_MMIO && r != KVM_EXIT_INTR)
			return -EIO;
	}
}

/* In each clone: run the guest to its next sync, report, then idle until released. */
static int clone_main(struct vm *vm, uint32_t index, void *opaque)
{
	struct bench_ctx *ctx = opaque;
	struct report rep = { .index = index };
	char c;

	vm_thaw_devices(vm);
	close(ctx->hold_write_fd);
	if (run_to_sync(&vm->vcpus[0]) < 0)
		return 1;
	rep.running_ns = fork_now_ns();
	if (write(ctx->report_fd, &rep, sizeof(rep)) != sizeof(rep))
		return 2;
	/* Stay alive (and idle) until the parent has measured memory. */
	while (read(ctx->hold_fd, &c, 1) > 0)
		;
	return 0;
}

/* Private (unshared) memory of a process, from smaps_rollup, in KiB. */
static long private_kib(pid_t pid)
{
	char path[64], line[256];
	long total = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			total += v;
	}
	fclose(f);
	return total;
}

/* The bare sequence a clone cannot avoid, timed FLOOR_ROUNDS times. */
static double measure_floor_us(int kvm_fd, void *mem, double *ret_p99)
{
	uint64_t t[FLOOR_ROUNDS];
	int mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	for (int i = 0; i < FLOOR_ROUNDS; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = 0, .memory_size = MEM_BYTES, .userspace_addr = (uintptr_t)mem,
		};
		struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2 };
		struct kvm_sregs sregs;
		uint64_t t0 = fork_now_ns();
		int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
		int vcpu;
		void *run;

		if (vm < 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -1;
		vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
		if (vcpu < 0 || run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0 ||
		    ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
			return -1;
		t[i] = fork_now_ns() - t0;
		munmap(run, (size_t)mmap_size);
		close(vcpu);
		close(vm);
	}
	*ret_p99 = percentile_us(t, FLOOR_ROUNDS, 0.99);
	return percentile_us(t, FLOOR_ROUNDS, 0.50);
}

struct result {
	uint32_t n;
	double p50, p99, total_ms, uss_kib, capture_us, parent_fork_us;
};

static int bench_one(struct vm *vm, uint32_t n, struct result *res)
{
	int report[2], hold[2];
	pid_t *pids = calloc(n, sizeof(*pids));
	uint64_t *start = calloc(n, sizeof(*start));
	uint64_t *lat = calloc(n, sizeof(*lat));
	uint64_t first = UINT64_MAX, last = 0;
	struct fork_stats stats = { .clone_start_ns = start };
	struct bench_ctx ctx;
	long uss_total = 0;
	int r, failed = 0;

	if (!pids || !start || !lat || pipe2(report, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
		return -ENOMEM;
	ctx = (struct bench_ctx){ .report_fd = report[1], .hold_fd = hold[0],
				  .hold_write_fd = hold[1] };

	r = fork_clones(vm, n, clone_main, &ctx, pids, &stats);
	if (r < 0) {
		fprintf(stderr, "fork: %s\n", strerror(-r));
		return r;
	}
	close(report[1]);
	for (uint32_t i = 0; i < n; i++) {
		struct report rep;

		if (read(report[0], &rep, sizeof(rep)) != sizeof(rep) || rep.index >= n) {
			failed = 1;
			break;
		}
		lat[rep.index] = rep.running_ns - start[rep.index];
		first = MIN(first, start[rep.index]);
		last = MAX(last, rep.running_ns);
	}
	if (!failed) {
		for (uint32_t i = 0; i < n; i++)
			uss_total += private_kib(pids[i]);
	}
	close(hold[1]);
	for (uint32_t i = 0; i < n; i++) {
		int status;

		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	close(report[0]);
	close(hold[0]);
	if (failed) {
		fprintf(stderr, "fork: some of %u clones failed\n", n);
		return -EIO;
	}

	res->n = n;
	res->total_ms = (double)(last - first) / 1e6;
	res->p50 = percentile_us(lat, n, 0.50);
	res->p99 = percentile_us(lat, n, 0.99);
	/* Each clone wrote exactly one guest page (the counter). */
	res->uss_kib = (double)uss_total / n - 4.0;
	res->capture_us = (double)stats.capture_ns / 1e3;
	res->parent_fork_us = (double)stats.total_fork_ns / 1e3 / n;
	free(pids);
	free(start);
	free(lat);
	return 0;
}

static struct vm *make_template(void)
{
	struct vm_params p = { .mem_bytes = MEM_BYTES, .nr_vcpus = 1, .console_fd = -1 };
	struct vm *vm;
	char why[256] = "";

	if (vm_create(&p, &vm, why, sizeof(why)) < 0) {
		fprintf(stderr, "bench fork: %s\n", why);
		return NULL;
	}
	if (vm_write_boot_tables(vm) < 0 ||
	    guest_mem_write(&vm->mem, GUEST_CODE, guest_code, sizeof(guest_code)) < 0 ||
	    vcpu_setup_long_mode(&vm->vcpus[0], GUEST_CODE, 0) < 0 ||
	    run_to_sync(&vm->vcpus[0]) < 0) {
		fprintf(stderr, "bench fork: cannot start the template guest\n");
		vm_destroy(vm);
		return NULL;
	}
	return vm;
}

int main(int argc, char **argv)
{
	uint32_t default_ns[] = { 1, 10, 100, 1000 };
	uint32_t ns[16], nr_ns = 0;
	struct result results[16];
	double floor_p50, floor_p99;
	struct vm *vm;
	void *floor_mem;

	for (int i = 1; i < argc && nr_ns < ARRAY_SIZE(ns); i++)
		ns[nr_ns++] = (uint32_t)strtoul(argv[i], NULL, 10);
	if (nr_ns == 0) {
		memcpy(ns, default_ns, sizeof(default_ns));
		nr_ns = ARRAY_SIZE(default_ns);
	}

	vm = make_template();
	if (!vm)
		return 1;
	floor_mem = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	floor_p50 = measure_floor_us(vm->kvm.fd, floor_mem, &floor_p99);
	if (floor_p50 < 0) {
		fprintf(stderr, "bench fork: floor measurement failed\n");
		return 1;
	}

	for (uint32_t i = 0; i < nr_ns; i++) {
		struct result *r = &results[i];

		if (ns[i] == 0 || ns[i] > FORK_MAX_CLONES || bench_one(vm, ns[i], r) < 0)
			return 1;
		printf("{\"bench\":\"fork\",\"guest\":\"tiny\",\"n\":%u,\"p50_us\":%.1f,"
		       "\"p99_us\":%.1f,\"floor_p50_us\":%.1f,\"floor_p99_us\":%.1f,"
		       "\"ratio_p50\":%.2f,\"total_ms\":%.1f,\"uss_kib_per_clone\":%.0f,"
		       "\"capture_us\":%.1f,\"parent_fork_us_per_clone\":%.1f}\n",
		       r->n, r->p50, r->p99, floor_p50, floor_p99, r->p50 / floor_p50, r->total_ms,
		       r->uss_kib, r->capture_us, r->parent_fork_us);
		fflush(stdout);
	}

	printf("\nfork of a paused tiny guest (%llu MiB RAM) on /dev/kvm; floor = bare "
	       "VM + slot + vCPU + regs, p50 %.1f us\n",
	       (unsigned long long)(MEM_BYTES >> 20), floor_p50);
	printf("%6s %10s %10s %8s %10s %12s\n", "N", "p50 us", "p99 us", "p50/flr", "total ms",
	       "USS KiB/clone");
	for (uint32_t i = 0; i < nr_ns; i++)
		printf("%6u %10.1f %10.1f %8.2f %10.1f %12.0f\n", results[i].n, results[i].p50,
		       results[i].p99, results[i].p50 / floor_p50, results[i].total_ms,
		       results[i].uss_kib);
	vm_destroy(vm);
	return 0;
}
