// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "harness.h"

/* The linker names the bounds of the guest_code section; weak, so a test
 * with only hand-assembled code (no GUEST_CODE) still links. */
extern const uint8_t __start_guest_code[] __attribute__((weak));
extern const uint8_t __stop_guest_code[] __attribute__((weak));

static void __attribute__((noreturn)) fail(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s\n", what, detail);
	exit(1);
}

void tiny_vm_create(struct tiny_vm *t, uint32_t nr_vcpus, uint64_t mem_bytes)
{
	struct vm_params p = { .mem_bytes = mem_bytes, .nr_vcpus = nr_vcpus, .console_fd = -1 };
	uint64_t code_len = (uint64_t)(__stop_guest_code - __start_guest_code);
	char why[256] = "";
	int r;

	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		fprintf(stderr, "SKIP: /dev/kvm is not available\n");
		exit(77);
	}
	r = vm_create(&p, &t->vm, why, sizeof(why));
	if (r < 0)
		fail("vm_create", why);
	if (vm_write_boot_tables(t->vm) < 0)
		fail("setup", "cannot write boot tables");
	if (code_len && guest_mem_write(&t->vm->mem, GUEST_CODE_GPA, __start_guest_code, code_len) < 0)
		fail("setup", "guest code does not fit");
}

void tiny_vm_destroy(struct tiny_vm *t)
{
	vm_destroy(t->vm);
	t->vm = NULL;
}

void tiny_vcpu_enter(struct tiny_vm *t, uint32_t index, void (*guest_fn)(uint64_t), uint64_t arg)
{
	struct vcpu *vcpu = &t->vm->vcpus[index];
	uint64_t offset = (uint64_t)((const uint8_t *)guest_fn - __start_guest_code);
	struct kvm_mp_state runnable = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_regs regs;

	TEST_REQUIRE((const uint8_t *)guest_fn >= __start_guest_code &&
		     (const uint8_t *)guest_fn < __stop_guest_code);
	TEST_REQUIRE(vcpu_setup_long_mode(vcpu, GUEST_CODE_GPA + offset, 0) == 0);
	TEST_REQUIRE(ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0);
	regs.rdi = arg;
	/* Each vCPU gets its own 64 KiB of stack below the top. */
	regs.rsp = GUEST_STACK_TOP - (uint64_t)index * 0x10000;
	TEST_REQUIRE(ioctl(vcpu->fd, KVM_SET_REGS, &regs) == 0);
	/* Application processors wait for INIT/SIPI; a test starts them directly. */
	TEST_REQUIRE(ioctl(vcpu->fd, KVM_SET_MP_STATE, &runnable) == 0);
}

struct ucall tiny_vcpu_run(struct tiny_vm *t, uint32_t index)
{
	struct vcpu *vcpu = &t->vm->vcpus[index];

	for (;;) {
		int r = vcpu_run_once(vcpu);
		struct kvm_regs regs;

		if (r == -EINTR)
			continue;
		if (r < 0)
			fail("KVM_RUN failed", strerror(-r));
		if (vm_get_exit_reason(t->vm) != VM_EXIT_NONE)
			fail("VM stopped", vm_exit_reason_name(vm_get_exit_reason(t->vm)));
		if (r == KVM_EXIT_IO && vcpu->run->io.port == UCALL_PORT) {
			TEST_REQUIRE(ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0);
			if (regs.rdi == UCALL_NONE || regs.rdi >= UCALL_CMD_MAX)
				fail("ucall", "guest made a malformed ucall");
			return (struct ucall){ (enum ucall_cmd)regs.rdi, regs.rsi, regs.rcx };
		}
		if (r != KVM_EXIT_IO && r != KVM_EXIT_MMIO && r != KVM_EXIT_INTR &&
		    r != KVM_EXIT_IOAPIC_EOI) {
			char detail[64];

			snprintf(detail, sizeof(detail), "%d", r);
			fail("unexpected KVM exit reason", detail);
		}
	}
}

void tiny_check_ucall(const struct ucall *uc, const char *file)
{
	if (uc->cmd == UCALL_ASSERT) {
		fprintf(stderr, "%s:%llu: guest assertion failed (value 0x%llx)\n", file,
			(unsigned long long)uc->arg0, (unsigned long long)uc->arg1);
		exit(1);
	}
}

void __tiny_expect_sync(struct tiny_vm *t, uint32_t index, uint64_t n, const char *file)
{
	struct ucall uc = tiny_vcpu_run(t, index);

	tiny_check_ucall(&uc, file);
	if (uc.cmd != UCALL_SYNC || uc.arg0 != n) {
		fprintf(stderr, "expected GUEST_SYNC(%llu), got ucall %d(%llu)\n",
			(unsigned long long)n, uc.cmd, (unsigned long long)uc.arg0);
		exit(1);
	}
}

void __tiny_expect_done(struct tiny_vm *t, uint32_t index, const char *file)
{
	struct ucall uc = tiny_vcpu_run(t, index);

	tiny_check_ucall(&uc, file);
	if (uc.cmd != UCALL_DONE) {
		fprintf(stderr, "expected GUEST_DONE, got ucall %d(%llu)\n", uc.cmd,
			(unsigned long long)uc.arg0);
		exit(1);
	}
}

void *tiny_guest_data(struct tiny_vm *t, uint64_t offset, uint64_t len)
{
	void *p = guest_mem_ptr(&t->vm->mem, GUEST_DATA_GPA + offset, len);

	TEST_REQUIRE(p != NULL);
	return p;
}
