// SPDX-License-Identifier: MIT
#include <string.h>

#include "cpuid.h"

/* Leaf 1 */
#define LEAF1_ECX_TSC_DEADLINE (1u << 24)
#define LEAF1_ECX_HYPERVISOR   (1u << 31)
#define LEAF1_EDX_HTT	       (1u << 28)
/* Leaf 0x80000001 */
#define EXT1_ECX_TOPOEXT       (1u << 22)
#define EXT1_ECX_CMP_LEGACY    (1u << 1)

#define LEAF_TOPOLOGY	     0xb
#define LEAF_TOPOLOGY_V2     0x1f
#define LEAF_PMU	     0xa
#define LEAF_CACHE_PARAMS    4
#define LEAF_AMD_TOPOLOGY    0x8000001e
#define LEAF_AMD_SIZE_IDS    0x80000008
#define TOPOLOGY_LEVEL_SMT   1
#define TOPOLOGY_LEVEL_CORE  2

static uint32_t bits_for(uint32_t n)
{
	uint32_t bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

static void fix_leaf1(struct kvm_cpuid_entry2 *e, const struct cpuid_params *p)
{
	uint32_t apic_id = cpuid_apic_id(p->vcpu_index);

	e->ebx = (e->ebx & 0x0000ffffu) | (apic_id << 24) | ((p->nr_vcpus & 0xff) << 16);
	e->ecx |= LEAF1_ECX_HYPERVISOR;
	if (p->tsc_deadline)
		e->ecx |= LEAF1_ECX_TSC_DEADLINE;
	else
		e->ecx &= ~LEAF1_ECX_TSC_DEADLINE;
	if (p->nr_vcpus > 1)
		e->edx |= LEAF1_EDX_HTT;
	else
		e->edx &= ~LEAF1_EDX_HTT;
}

static void fix_cache_params(struct kvm_cpuid_entry2 *e, const struct cpuid_params *p)
{
	/* EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing - 1 (one). */
	if ((e->eax & 0x1f) == 0)
		return;
	e->eax = (e->eax & 0x3fffu) | ((p->nr_vcpus - 1) << 26);
}

static int push(struct kvm_cpuid_entry2 *out, uint32_t max, uint32_t *n,
		const struct kvm_cpuid_entry2 *e)
{
	if (*n == max)
		return -ENOSPC;
	out[(*n)++] = *e;
	return 0;
}

/* Leaf 0xb: an SMT level of one thread, a core level of nr_vcpus cores. */
static int emit_topology(struct kvm_cpuid_entry2 *out, uint32_t max, uint32_t *n,
			 const struct cpuid_params *p)
{
	uint32_t apic_id = cpuid_apic_id(p->vcpu_index);
	struct kvm_cpuid_entry2 levels[3] = {
		{ .function = LEAF_TOPOLOGY, .index = 0, .eax = 0, .ebx = 1,
		  .ecx = (TOPOLOGY_LEVEL_SMT << 8) | 0, .edx = apic_id },
		{ .function = LEAF_TOPOLOGY, .index = 1, .eax = bits_for(p->nr_vcpus),
		  .ebx = p->nr_vcpus, .ecx = (TOPOLOGY_LEVEL_CORE << 8) | 1, .edx = apic_id },
		/* Level type 0 ends the enumeration. */
		{ .function = LEAF_TOPOLOGY, .index = 2, .ecx = 2, .edx = apic_id },
	};

	for (uint32_t i = 0; i < ARRAY_SIZE(levels); i++) {
		int r;

		levels[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		r = push(out, max, n, &levels[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int cpuid_filter(const struct kvm_cpuid_entry2 *in, uint32_t nr_in, const struct cpuid_params *p,
		 struct kvm_cpuid_entry2 *out, uint32_t max_out, uint32_t *ret_nr)
{
	bool topology_done = false;
	uint32_t n = 0;
	int r;

	if (p->nr_vcpus == 0 || p->nr_vcpus > 255 || p->vcpu_index >= p->nr_vcpus)
		return -EINVAL;

	for (uint32_t i = 0; i < nr_in; i++) {
		struct kvm_cpuid_entry2 e = in[i];

		switch (e.function) {
		case 1:
			fix_leaf1(&e, p);
			break;
		case LEAF_CACHE_PARAMS:
			fix_cache_params(&e, p);
			break;
		case LEAF_PMU:
			/* No virtual PMU is promised; an empty leaf says so. */
			e.eax = e.ebx = e.ecx = e.edx = 0;
			break;
		case LEAF_TOPOLOGY:
			if (!topology_done) {
				r = emit_topology(out, max_out, &n, p);
				if (r < 0)
					return r;
				topology_done = true;
			}
			continue;
		case LEAF_TOPOLOGY_V2:
		case LEAF_AMD_TOPOLOGY:
			/* Host topology that would contradict leaf 0xb: drop it. */
			continue;
		case 0x80000001:
			e.ecx &= ~(EXT1_ECX_TOPOEXT | EXT1_ECX_CMP_LEGACY);
			break;
		case LEAF_AMD_SIZE_IDS:
			/* ECX[7:0] cores - 1, ECX[15:12] APIC ID bits for the core. */
			e.ecx = (e.ecx & ~0xf0ffu) | (p->nr_vcpus - 1) | (bits_for(p->nr_vcpus) << 12);
			break;
		default:
			break;
		}
		r = push(out, max_out, &n, &e);
		if (r < 0)
			return r;
	}
	*ret_nr = n;
	return 0;
}
