// SPDX-License-Identifier: MIT
/*
 * vCPU creation and initial state. Order on creation: CPUID before MSRs
 * (KVM rejects MSRs whose feature CPUID does not advertise), MSRs and FPU
 * before registers, special registers before general ones (RIP is only
 * meaningful once CS and the mode are set).
 */
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "layout.h"
#include "vm.h"

#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102

#define MISC_ENABLE_FAST_STRING 1ull
/* MTRRs enabled, default type write-back: all RAM is cacheable. */
#define MTRR_DEF_TYPE_WB_ENABLED ((1ull << 11) | 6)

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* GDT selectors; 0x10 and 0x18 are what the Linux boot protocol names. */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18
#define SEL_TSS	   0x20

static int set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_system *kvm = &vcpu->vm->kvm;
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
	} buf;
	struct cpuid_params p = {
		.vcpu_index = vcpu->index,
		.nr_vcpus = vcpu->vm->nr_vcpus,
		.tsc_deadline = kvm->tsc_deadline,
	};
	uint32_t n;
	int r;

	memset(&buf, 0, sizeof(buf));
	r = cpuid_filter(kvm->supported_cpuid, kvm->nr_supported_cpuid, &p, buf.entries,
			 CPUID_MAX_ENTRIES, &n);
	if (r < 0)
		return r;
	buf.hdr.nent = n;
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, &buf) < 0)
		return neg_errno();
	return 0;
}

static int set_initial_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} initial[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },  { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },	      { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },      { MSR_LSTAR, 0 },
		{ MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_WB_ENABLED },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[ARRAY_SIZE(initial)];
	} buf;
	uint32_t n = 0;
	int r;

	memset(&buf, 0, sizeof(buf));
	for (size_t i = 0; i < ARRAY_SIZE(initial); i++) {
		/* Only MSRs this KVM saves and restores; others keep KVM's reset value. */
		if (!kvm_has_msr(&vcpu->vm->kvm, initial[i].index))
			continue;
		buf.entries[n].index = initial[i].index;
		buf.entries[n].data = initial[i].value;
		n++;
	}
	buf.hdr.nmsrs = n;
	r = ioctl(vcpu->fd, KVM_SET_MSRS, &buf);
	if (r < 0)
		return neg_errno();
	return (uint32_t)r == n ? 0 : -EINVAL;
}

static int set_initial_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	/* x87 and SSE reset defaults: all exceptions masked. */
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return neg_errno();
	return 0;
}

int vcpu_create(struct vm *vm, uint32_t index)
{
	struct vcpu *vcpu = &vm->vcpus[index];
	void *run;
	int fd;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = -1;

	fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (fd < 0)
		return neg_errno();
	vcpu->fd = fd;

	run = mmap(NULL, vm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (run == MAP_FAILED)
		return neg_errno();
	vcpu->run = run;
	return 0;
}

int vcpu_init_defaults(struct vcpu *vcpu)
{
	int r;

	r = set_cpuid(vcpu);
	if (r < 0)
		return r;
	r = set_initial_msrs(vcpu);
	if (r < 0)
		return r;
	return set_initial_fpu(vcpu);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (!vcpu || !vcpu->vm)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->kvm.vcpu_mmap_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

/* GDT descriptors: flat 4 GiB segments. */
static const uint64_t boot_gdt[] = {
	[0] = 0,
	[SEL_CODE32 / 8] = 0x00cf9b000000ffffull,
	[SEL_CODE64 / 8] = 0x00af9b000000ffffull,
	[SEL_DATA / 8] = 0x00cf93000000ffffull,
	[SEL_TSS / 8] = 0x00008b0000000067ull,
};

int vm_write_boot_tables(struct vm *vm)
{
	uint64_t *pml4 = guest_mem_ptr(&vm->mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(&vm->mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(&vm->mem, LAYOUT_PD, 4 * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	/* Present | writable; the PD entries add PS for 2 MiB pages. */
	pml4[0] = LAYOUT_PDPT | 0x3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;
	return guest_mem_write(&vm->mem, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt));
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64, bool db)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = db,
		.s = 1,
		.l = code64,
		.g = 1,
	};
}

static void load_boot_gdt(struct kvm_sregs *sregs, uint16_t code_sel, bool code64)
{
	struct kvm_segment data = flat_segment(SEL_DATA, 0x3, false, true);

	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = sizeof(boot_gdt) - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = flat_segment(code_sel, 0xb, code64, !code64);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = SEL_TSS, .type = 0xb, .present = 1,
	};
}

static int set_sregs_and_regs(struct vcpu *vcpu, struct kvm_sregs *sregs, struct kvm_regs *regs)
{
	/* Segments and mode first: RIP is interpreted relative to them. */
	if (ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0)
		return neg_errno();
	if (ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0)
		return neg_errno();
	return 0;
}

int vcpu_setup_long_mode(struct vcpu *vcpu, uint64_t entry, uint64_t rsi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = entry, .rsi = rsi, .rsp = LAYOUT_BOOT_STACK,
				 .rbp = LAYOUT_BOOT_STACK, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return neg_errno();
	load_boot_gdt(&sregs, SEL_CODE64, true);
	sregs.cr3 = LAYOUT_PML4;
	sregs.cr4 |= CR4_PAE;
	sregs.cr0 |= CR0_PE | CR0_PG | CR0_ET;
	sregs.efer |= EFER_LME | EFER_LMA;
	return set_sregs_and_regs(vcpu, &sregs, &regs);
}

int vcpu_setup_protected_mode(struct vcpu *vcpu, uint64_t entry, uint64_t ebx)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = entry, .rbx = ebx, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return neg_errno();
	load_boot_gdt(&sregs, SEL_CODE32, false);
	sregs.cr0 = (sregs.cr0 | CR0_PE | CR0_ET) & ~CR0_PG;
	sregs.cr4 = 0;
	sregs.efer = 0;
	return set_sregs_and_regs(vcpu, &sregs, &regs);
}

int vcpu_setup_real_mode(struct vcpu *vcpu, uint16_t cs_selector, uint16_t ip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = ip, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return neg_errno();
	sregs.cs.selector = cs_selector;
	sregs.cs.base = (uint64_t)cs_selector << 4;
	return set_sregs_and_regs(vcpu, &sregs, &regs);
}
