// SPDX-License-Identifier: MIT
/*
 * vmm/cpuid.c: a synthetic KVM_GET_SUPPORTED_CPUID table filtered into
 * what each vCPU sees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cpuid.h"

#define LEAF1_ECX_SSE3	       (1u << 0)
#define LEAF1_ECX_X2APIC       (1u << 21)
#define LEAF1_ECX_TSC_DEADLINE (1u << 24)
#define LEAF1_ECX_HYPERVISOR   (1u << 31)
#define LEAF1_EDX_HTT	       (1u << 28)
#define EXT1_ECX_LAHF	       (1u << 0)
#define EXT1_ECX_CMP_LEGACY    (1u << 1)
#define EXT1_ECX_TOPOEXT       (1u << 22)

#define E(fn, idx, a, b, c, d)                                                                     \
	{                                                                                          \
		.function = (fn), .index = (idx), .eax = (a), .ebx = (b), .ecx = (c), .edx = (d)   \
	}
#define EI(fn, idx, a, b, c, d)                                                                    \
	{                                                                                          \
		.function = (fn), .index = (idx), .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,        \
		.eax = (a), .ebx = (b), .ecx = (c), .edx = (d)                                     \
	}

/* What a host might report: host topology in 0xb/0x1f/0x8000001e that must not leak. */
static const struct kvm_cpuid_entry2 host[] = {
	E(0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
	/* Host APIC ID 7 in EBX[31:24], 16 logical CPUs in EBX[23:16]. */
	E(1, 0, 0x000906ea, 0x07100800, LEAF1_ECX_SSE3 | LEAF1_ECX_X2APIC, 0x178bfbff),
	EI(4, 0, 0x1c004121, 0x01c0003f, 0x3f, 0),
	EI(4, 1, 0x1c004122, 0x01c0003f, 0x3f, 0),
	EI(4, 2, 0, 0, 0, 0),
	EI(7, 0, 0, 0x029c67af, 0, 0),
	E(0xa, 0, 0x07300404, 0, 0, 0x603),
	EI(0xb, 0, 1, 2, 0x100, 7),
	EI(0xb, 1, 4, 16, 0x201, 7),
	EI(0x1f, 0, 1, 2, 0x100, 7),
	EI(0x1f, 1, 4, 16, 0x201, 7),
	EI(0x1f, 2, 0, 0, 2, 7),
	E(0x80000000, 0, 0x80000021, 0, 0, 0),
	E(0x80000001, 0, 0, 0, EXT1_ECX_LAHF | EXT1_ECX_CMP_LEGACY | EXT1_ECX_TOPOEXT, 0x2c100800),
	E(0x80000008, 0, 0x3030, 0, 0x700f, 0),
	E(0x8000001e, 0, 7, 0x100, 0, 0),
};

/* Input entries minus 0xb (2), 0x1f (3) and 0x8000001e (1), plus three 0xb levels. */
#define OUT_NR (ARRAY_SIZE(host) - 6 + 3)

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, uint32_t n,
					   uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < n; i++)
		if (e[i].function == function && e[i].index == index)
			return &e[i];
	return NULL;
}

static uint32_t count(const struct kvm_cpuid_entry2 *e, uint32_t n, uint32_t function)
{
	uint32_t c = 0;

	for (uint32_t i = 0; i < n; i++)
		c += e[i].function == function;
	return c;
}

static uint32_t filter(uint32_t index, uint32_t nr, bool tsc_deadline,
		       struct kvm_cpuid_entry2 *out)
{
	const struct cpuid_params p = { .vcpu_index = index, .nr_vcpus = nr,
					.tsc_deadline = tsc_deadline };
	uint32_t n = 0;

	assert_int_equal(cpuid_filter(host, ARRAY_SIZE(host), &p, out, CPUID_MAX_ENTRIES, &n), 0);
	assert_int_equal(n, OUT_NR);
	return n;
}

static void test_leaf1(void **state)
{
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];

	for (uint32_t nr = 1; nr <= 32; nr *= 2) {
		for (uint32_t i = 0; i < nr; i++) {
			uint32_t n = filter(i, nr, true, out);
			const struct kvm_cpuid_entry2 *e = find(out, n, 1, 0);

			assert_non_null(e);
			assert_int_equal(e->eax, 0x000906ea);
			/* APIC ID, logical CPU count; CLFLUSH size and brand index kept. */
			assert_int_equal(e->ebx, (i << 24) | (nr << 16) | 0x0800);
			assert_int_equal(cpuid_apic_id(i), i);
			assert_int_equal(e->ecx, LEAF1_ECX_SSE3 | LEAF1_ECX_X2APIC |
						 LEAF1_ECX_TSC_DEADLINE | LEAF1_ECX_HYPERVISOR);
			/* HTT: more than one logical processor in the package. */
			assert_int_equal(e->edx, nr > 1 ? 0x178bfbffu | LEAF1_EDX_HTT
							: 0x178bfbffu & ~LEAF1_EDX_HTT);
		}
	}
}

static void test_tsc_deadline(void **state)
{
	struct kvm_cpuid_entry2 in[ARRAY_SIZE(host)], out[CPUID_MAX_ENTRIES];
	const struct cpuid_params off = { .vcpu_index = 0, .nr_vcpus = 1, .tsc_deadline = false };
	const struct cpuid_params on = { .vcpu_index = 0, .nr_vcpus = 1, .tsc_deadline = true };
	uint32_t n;

	/* The host table claims it: the param still decides. */
	memcpy(in, host, sizeof(host));
	in[1].ecx |= LEAF1_ECX_TSC_DEADLINE;
	assert_int_equal(cpuid_filter(in, ARRAY_SIZE(in), &off, out, CPUID_MAX_ENTRIES, &n), 0);
	assert_int_equal(find(out, n, 1, 0)->ecx & LEAF1_ECX_TSC_DEADLINE, 0);
	assert_int_equal(find(out, n, 1, 0)->ecx & LEAF1_ECX_HYPERVISOR, LEAF1_ECX_HYPERVISOR);
	assert_int_equal(cpuid_filter(in, ARRAY_SIZE(in), &on, out, CPUID_MAX_ENTRIES, &n), 0);
	assert_int_equal(find(out, n, 1, 0)->ecx & LEAF1_ECX_TSC_DEADLINE, LEAF1_ECX_TSC_DEADLINE);

	/* The host table does not: set when asked. */
	in[1].ecx &= ~LEAF1_ECX_TSC_DEADLINE;
	assert_int_equal(cpuid_filter(in, ARRAY_SIZE(in), &on, out, CPUID_MAX_ENTRIES, &n), 0);
	assert_int_equal(find(out, n, 1, 0)->ecx & LEAF1_ECX_TSC_DEADLINE, LEAF1_ECX_TSC_DEADLINE);
	assert_int_equal(cpuid_filter(in, ARRAY_SIZE(in), &off, out, CPUID_MAX_ENTRIES, &n), 0);
	assert_int_equal(find(out, n, 1, 0)->ecx & LEAF1_ECX_TSC_DEADLINE, 0);
}

static void test_topology_leaf(void **state)
{
	static const struct {
		uint32_t nr, shift;
	} cases[] = {
		{ 1, 0 }, { 2, 1 }, { 3, 2 }, { 4, 2 }, { 5, 3 }, { 8, 3 }, { 9, 4 }, { 32, 5 },
	};
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		uint32_t nr = cases[c].nr;

		for (uint32_t i = 0; i < nr; i++) {
			uint32_t n = filter(i, nr, false, out);
			uint32_t first = 0;

			assert_int_equal(count(out, n, 0xb), 3);
			while (out[first].function != 0xb)
				first++;
			/* In order: SMT, core, then the terminating level. */
			for (uint32_t k = 0; k < 3; k++) {
				assert_int_equal(out[first + k].function, 0xb);
				assert_int_equal(out[first + k].index, k);
				assert_int_equal(out[first + k].flags,
						 KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
				/* x2APIC ID of this vCPU at every level. */
				assert_int_equal(out[first + k].edx, i);
			}
			/* SMT: no shift, one thread, type 1, level 0. */
			assert_int_equal(out[first].eax, 0);
			assert_int_equal(out[first].ebx, 1);
			assert_int_equal(out[first].ecx, 0x100);
			/* Core: shift to the package ID, nr_vcpus logical CPUs, type 2, level 1. */
			if (out[first + 1].eax != cases[c].shift)
				print_message("%u vCPUs\n", nr);
			assert_int_equal(out[first + 1].eax, cases[c].shift);
			assert_int_equal(out[first + 1].ebx, nr);
			assert_int_equal(out[first + 1].ecx, 0x201);
			/* Invalid level: type 0, ECX[7:0] echoes the subleaf. */
			assert_int_equal(out[first + 2].eax, 0);
			assert_int_equal(out[first + 2].ebx, 0);
			assert_int_equal(out[first + 2].ecx, 2);
		}
	}
}

static void test_dropped_and_cleared_leaves(void **state)
{
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];
	uint32_t n = filter(1, 4, true, out);
	const struct kvm_cpuid_entry2 *e;

	assert_int_equal(count(out, n, 0x1f), 0);
	assert_int_equal(count(out, n, 0x8000001e), 0);

	/* No PMU. */
	e = find(out, n, 0xa, 0);
	assert_non_null(e);
	assert_int_equal(e->eax | e->ebx | e->ecx | e->edx, 0);

	/* No TOPOEXT or CMP_LEGACY; the rest of the leaf is kept. */
	e = find(out, n, 0x80000001, 0);
	assert_non_null(e);
	assert_int_equal(e->ecx, EXT1_ECX_LAHF);
	assert_int_equal(e->edx, 0x2c100800);

	/* AMD core count: NC = nr - 1, ApicIdSize = 2 for four cores; the rest kept. */
	e = find(out, n, 0x80000008, 0);
	assert_non_null(e);
	assert_int_equal(e->eax, 0x3030);
	assert_int_equal(e->ecx, 0x2003);
}

static void test_cache_params(void **state)
{
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];
	uint32_t n = filter(0, 4, true, out);
	const struct kvm_cpuid_entry2 *e;

	/* EAX[31:26] = cores - 1, EAX[25:14] = one thread sharing (0), low bits kept. */
	e = find(out, n, 4, 0);
	assert_non_null(e);
	assert_int_equal(e->eax, (3u << 26) | 0x0121);
	assert_int_equal(e->ebx, 0x01c0003f);
	e = find(out, n, 4, 1);
	assert_int_equal(e->eax, (3u << 26) | 0x0122);
	/* The null subleaf that ends the list stays null. */
	e = find(out, n, 4, 2);
	assert_non_null(e);
	assert_int_equal(e->eax, 0);
}

static void test_passthrough(void **state)
{
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];
	uint32_t n = filter(0, 2, true, out);
	static const uint32_t untouched[] = { 0, 7, 0x80000000 };

	for (size_t i = 0; i < ARRAY_SIZE(untouched); i++) {
		const struct kvm_cpuid_entry2 *want = find(host, ARRAY_SIZE(host), untouched[i], 0);
		const struct kvm_cpuid_entry2 *got = find(out, n, untouched[i], 0);

		assert_non_null(got);
		assert_memory_equal(got, want, sizeof(*got));
	}
	/* Input order is kept around the replaced leaf. */
	assert_int_equal(out[0].function, 0);
	assert_int_equal(out[1].function, 1);
	assert_int_equal(out[n - 1].function, 0x80000008);
}

static void test_enospc(void **state)
{
	const struct cpuid_params p = { .vcpu_index = 0, .nr_vcpus = 2, .tsc_deadline = true };
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];
	uint32_t n;

	for (uint32_t max = 0; max < OUT_NR; max++) {
		n = 0xdead;
		if (cpuid_filter(host, ARRAY_SIZE(host), &p, out, max, &n) != -ENOSPC)
			print_message("max_out %u\n", max);
		assert_int_equal(cpuid_filter(host, ARRAY_SIZE(host), &p, out, max, &n), -ENOSPC);
		assert_int_equal(n, 0xdead);
	}
	assert_int_equal(cpuid_filter(host, ARRAY_SIZE(host), &p, out, OUT_NR, &n), 0);
	assert_int_equal(n, OUT_NR);
}

static void test_einval(void **state)
{
	static const struct cpuid_params bad[] = {
		{ .vcpu_index = 1, .nr_vcpus = 1 },
		{ .vcpu_index = 4, .nr_vcpus = 4 },
		{ .vcpu_index = 5, .nr_vcpus = 4 },
		{ .vcpu_index = UINT32_MAX, .nr_vcpus = 4 },
		{ .vcpu_index = 0, .nr_vcpus = 0 },
		{ .vcpu_index = 0, .nr_vcpus = 256 },
	};
	struct kvm_cpuid_entry2 out[CPUID_MAX_ENTRIES];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t n = 0xdead;

		assert_int_equal(cpuid_filter(host, ARRAY_SIZE(host), &bad[i], out,
					      CPUID_MAX_ENTRIES, &n),
				 -EINVAL);
		assert_int_equal(n, 0xdead);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf1),
		cmocka_unit_test(test_tsc_deadline),
		cmocka_unit_test(test_topology_leaf),
		cmocka_unit_test(test_dropped_and_cleared_leaves),
		cmocka_unit_test(test_cache_params),
		cmocka_unit_test(test_passthrough),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_einval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
