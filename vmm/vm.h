/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine: KVM VM and vCPUs, guest RAM, the two buses, the
 * interrupt controller and the platform devices. Everything a VM owns
 * hangs off struct vm, so one process can hold several (tests do) and a
 * fork child inherits exactly its VM.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "acpi-pm.h"
#include "acpi.h"
#include "bus.h"
#include "config.h"
#include "i8042.h"
#include "ioapic.h"
#include "kvm.h"
#include "memory.h"
#include "serial.h"
#include "vmgenid.h"

/* Why a VM stopped running. */
enum vm_exit_reason {
	VM_EXIT_NONE,
	VM_EXIT_POWEROFF,
	VM_EXIT_REBOOT,
	VM_EXIT_SIGNAL,
	VM_EXIT_TRIPLE_FAULT,
	VM_EXIT_CRASH,
	VM_EXIT_ERROR,
	/* A test device or API call asked for it. */
	VM_EXIT_REQUESTED,
	VM_EXIT_REASON_MAX,
};

const char *vm_exit_reason_name(enum vm_exit_reason reason);

enum vcpu_exit_stat {
	VCPU_STAT_IO,
	VCPU_STAT_MMIO,
	VCPU_STAT_IOAPIC_EOI,
	VCPU_STAT_INTR,
	VCPU_STAT_OTHER,
	VCPU_STAT_MAX,
};

struct vm;

struct vcpu {
	struct vm *vm;
	uint32_t index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	uint64_t exits[VCPU_STAT_MAX];
};

/* Called on the I/O thread when a watched fd is ready (poll events in `revents`). */
typedef void (*vm_io_handler)(void *opaque, short revents);

struct vm_io_watch {
	int fd;
	short events;
	vm_io_handler handler;
	void *opaque;
};

enum { VM_MAX_IO_WATCHES = 64 };

/*
 * A device attached after the platform devices (virtio): what the VM
 * does with it at a snapshot, a fork and the end. Every hook may be NULL.
 */
struct vm_device_ops {
	/* The VM is paused and about to be captured: finish all in-flight work. */
	void (*quiesce)(void *dev);
	/*
	 * In a fork child, after vm_recreate_kvm(): fds shared with the parent
	 * (eventfds, io_uring) must become the child's own, and KVM bindings
	 * (ioeventfd, irqfd) must be made again on the new KVM VM.
	 */
	int (*rebind)(void *dev, struct vm *vm);
	/* The VM runs again after a quiesce (resume, or a clone's start). */
	void (*thaw)(void *dev);
	void (*destroy)(void *dev);
};

struct vm_device {
	const struct vm_device_ops *ops;
	void *dev;
	/* Its saved state (NULL: none). */
	struct state_device state;
};

/* virtio-mmio slots: LAYOUT_VIRTIO_MMIO + 4 KiB each, IOAPIC pins from 5 (4 is COM1). */
enum { VM_MAX_DEVICES = 16, VM_VIRTIO_FIRST_GSI = 5 };

struct vm_params {
	uint64_t mem_bytes;
	uint32_t nr_vcpus;
	/* Where the UART's output goes; -1 discards it. */
	int console_fd;
	const char *kvm_path; /* NULL: /dev/kvm */
};

struct vm {
	struct kvm_system kvm;
	int fd;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct ioapic ioapic;
	struct serial serial;
	struct i8042 i8042;
	struct acpi_pm pm;
	struct vmgenid genid;
	uint32_t nr_vcpus;
	struct vcpu vcpus[VM_MAX_VCPUS];

	/* Devices the DSDT describes (COM1, virtio-mmio, ...), in attach order. */
	struct acpi_device acpi_devices[ACPI_MAX_DEVICES];
	uint32_t nr_acpi_devices;

	/* Attached devices (virtio), in attach order; slot i of virtio-mmio is the i-th. */
	struct vm_device devices[VM_MAX_DEVICES];
	uint32_t nr_devices;
	uint32_t nr_virtio;

	/* fds the I/O thread serves (ioeventfds, backends), set up before vm_run(). */
	struct vm_io_watch io_watches[VM_MAX_IO_WATCHES];
	uint32_t nr_io_watches;

	/* Run state, shared by the vCPU threads and the I/O thread. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_exit_reason exit_reason;
	int stop_eventfd;
	/* Pause: vCPU threads park on `cond` while pause_requested is set. */
	bool pause_requested;
	uint32_t vcpus_running;
	uint32_t vcpus_parked;
};

/* Create the VM, its memory, platform devices and vCPUs (not yet booted). */
int vm_create(const struct vm_params *params, struct vm **ret_vm, char *reason,
	      size_t reason_len) __must_check;
void vm_destroy(struct vm *vm);
DEFINE_CLEANUP_FUNC(struct vm, vm_destroy)

/* Load kernel, initrd, command line and ACPI tables; point the BSP at the entry. */
int vm_load_linux(struct vm *vm, const struct vm_config *cfg, char *reason,
		  size_t reason_len) __must_check;

/*
 * Run every vCPU on its own thread and serve console input from
 * console_in_fd (-1 for none) and SIGINT/SIGTERM on the calling thread,
 * until the guest powers off or resets or a signal arrives. The caller
 * must have blocked SIGINT and SIGTERM (vm_block_signals()).
 */
enum vm_exit_reason vm_run(struct vm *vm, int console_in_fd);

/* Block the signals vm_run() consumes; call before creating any thread. */
int vm_block_signals(void) __must_check;

/*
 * Pause every vCPU at an instruction boundary (out of KVM_RUN, parked) and
 * wait until they all are; resume lets them go. Safe from any thread but
 * the vCPU threads themselves. A VM whose threads are not running (not
 * started, or stopped) counts as paused.
 */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* Ask the VM to stop (first reason wins). Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_exit_reason reason);
enum vm_exit_reason vm_get_exit_reason(struct vm *vm);

/*
 * In a fork child: drop the parent's KVM VM and vCPUs, remap guest memory
 * MAP_PRIVATE (copy-on-write against the parent's memfd), and create a
 * fresh KVM VM with the same memory slots and vCPU count, with no vCPU
 * state yet (vm_state_restore() provides it). Device models are kept.
 */
int vm_recreate_kvm(struct vm *vm, char *reason, size_t reason_len) __must_check;

/* Describe a device to the guest in the DSDT (before vm_load_linux()). */
int vm_add_acpi_device(struct vm *vm, const struct acpi_device *dev) __must_check;

/*
 * Have the I/O thread call handler when fd is ready (poll events). Only
 * before vm_run(); the handler runs on the I/O thread, never on a vCPU.
 */
int vm_io_watch(struct vm *vm, int fd, short events, vm_io_handler handler,
		void *opaque) __must_check;

/* Take ownership of an attached device (before vm_run()); -ENOSPC when full. */
int vm_add_device(struct vm *vm, const struct vm_device *dev) __must_check;

/* Run every device's quiesce hook (the VM is paused). */
void vm_quiesce_devices(struct vm *vm);
/* Run every device's thaw hook (see vm_device_ops). */
void vm_thaw_devices(struct vm *vm);

/* The devices whose state a snapshot or fork carries, in a fixed order. */
enum { VM_MAX_STATE_DEVICES = 32 };
uint32_t vm_state_devices(struct vm *vm, struct state_device *out, uint32_t max);

/* vCPU level, used by vm.c and by tiny-guest tests. */
int vcpu_create(struct vm *vm, uint32_t index) __must_check;
/* Boot-time CPUID, MSRs and FPU of a new vCPU. */
int vcpu_init_defaults(struct vcpu *vcpu) __must_check;
void vcpu_destroy(struct vcpu *vcpu);
/* Enter a kernel in long mode at `entry` with RSI = zero page (4 GiB identity map). */
int vcpu_setup_long_mode(struct vcpu *vcpu, uint64_t entry, uint64_t rsi) __must_check;
/* Enter in 32-bit protected mode, paging off (PVH), EBX = start info. */
int vcpu_setup_protected_mode(struct vcpu *vcpu, uint64_t entry, uint64_t ebx) __must_check;
/* Enter in real mode at cs_selector:ip. */
int vcpu_setup_real_mode(struct vcpu *vcpu, uint16_t cs_selector, uint16_t ip) __must_check;
/* Build the identity page tables and GDT that long-mode entry uses. */
int vm_write_boot_tables(struct vm *vm) __must_check;

/*
 * Run the vCPU until its next exit and dispatch that exit (I/O to the
 * buses, EOIs to the IOAPIC, power events to the VM). Returns the KVM
 * exit reason, or -errno (-EINTR when interrupted).
 */
int vcpu_run_once(struct vcpu *vcpu);
