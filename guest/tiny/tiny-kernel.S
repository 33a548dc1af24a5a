/* SPDX-License-Identifier: MIT */
/*
 * A tiny "kernel" for fvm's live tests on machines whose /dev/kvm runs
 * guest ring-0 code slowly (interpreted): an ELF that fvm enters in long
 * mode like a vmlinux. It prints "tiny: ready", then idles in HLT while
 * the LAPIC timer ticks every 200 ms; each tick prints one '.', echoes any
 * console input back, and 'q' powers the VM off through the ACPI sleep
 * register. A few dozen instructions per tick, so it costs nothing even
 * when every one of them is emulated.
 */
	.set COM1, 0x3f8
	.set COM1_LSR, 0x3fd
	.set ACPI_SLEEP_CONTROL, 0x600
	/* SLP_TYP 5 (the DSDT's \_S5) << 2 | SLP_EN */
	.set ACPI_S5, 0x34
	.set LAPIC, 0xfee00000
	.set TIMER_VECTOR, 0x40
	/* KVM's LAPIC timer counts at 1 GHz with divide-by-1. */
	.set TICK_COUNT, 200000000

	.code64
	.text
	.globl _start
_start:
	lea msg_ready(%rip), %rsi
	call puts

	/* IDT entry for the timer: present 64-bit interrupt gate, CS 0x10. */
	lea timer_isr(%rip), %rax
	lea idt + TIMER_VECTOR * 16(%rip), %rdi
	mov %ax, (%rdi)
	movw $0x10, 2(%rdi)
	movw $0x8e00, 4(%rdi)
	shr $16, %rax
	mov %ax, 6(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)
	movl $0, 12(%rdi)
	lidt idtr(%rip)

	mov $LAPIC, %ebx
	movl $0x1ff, 0xf0(%rbx)                 /* SVR: APIC on, spurious vector 0xff */
	movl $0xb, 0x3e0(%rbx)                  /* divide by 1 */
	movl $(0x20000 | TIMER_VECTOR), 0x320(%rbx) /* periodic */
	movl $TICK_COUNT, 0x380(%rbx)
	sti
idle:
	hlt
	jmp idle

timer_isr:
	push %rax
	push %rbx
	push %rdx
	incq ticks(%rip)
	mov $'.', %al
	mov $COM1, %dx
	out %al, %dx
	mov $COM1_LSR, %dx
	in %dx, %al
	test $1, %al
	jz 2f
	mov $COM1, %dx
	in %dx, %al
	cmp $'q', %al
	jne 1f
	mov $ACPI_SLEEP_CONTROL, %dx
	mov $ACPI_S5, %al
	out %al, %dx
1:	mov $COM1, %dx
	out %al, %dx
2:	mov $LAPIC, %ebx
	movl $0, 0xb0(%rbx)                     /* EOI */
	pop %rdx
	pop %rbx
	pop %rax
	iretq

/* Write the NUL-terminated string at RSI to COM1. */
puts:
	mov $COM1, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

	.section .rodata
msg_ready:
	.asciz "tiny: ready\n"

	.data
	.balign 16
idtr:
	.word 256 * 16 - 1
	.quad idt

	.bss
	.balign 16
idt:
	.skip 256 * 16
ticks:
	.skip 8

	.section .note.GNU-stack, "", @progbits
