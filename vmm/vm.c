// SPDX-License-Identifier: MIT
/*
 * VM construction. The order matters:
 *  1. the split irqchip is enabled before any vCPU exists (KVM refuses
 *     it afterwards, and each vCPU gets its in-kernel LAPIC at creation);
 *  2. memory slots before vCPUs run (nothing runs until vm_run());
 *  3. devices are registered before vCPUs can exit into the buses;
 *  4. vCPUs last, each with the CPUID that names its APIC ID.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "acpi.h"
#include "boot.h"
#include "layout.h"
#include "vm.h"

/* Below 4 GiB, out of the way of RAM and the LAPIC/IOAPIC pages. */
#define TSS_ADDR 0xfffbd000ull

static const char *const exit_reason_names[VM_EXIT_REASON_MAX] = {
	[VM_EXIT_NONE] = "running",
	[VM_EXIT_POWEROFF] = "powered off",
	[VM_EXIT_REBOOT] = "rebooted",
	[VM_EXIT_SIGNAL] = "stopped by signal",
	[VM_EXIT_TRIPLE_FAULT] = "triple fault",
	[VM_EXIT_CRASH] = "guest crashed",
	[VM_EXIT_ERROR] = "VMM error",
	[VM_EXIT_REQUESTED] = "stop requested",
};

const char *vm_exit_reason_name(enum vm_exit_reason reason)
{
	return reason < VM_EXIT_REASON_MAX ? exit_reason_names[reason] : "unknown";
}

static int ioapic_send_msi(void *opaque, const struct ioapic_msi *msi)
{
	struct vm *vm = opaque;
	struct kvm_msi m = {
		.address_lo = (uint32_t)msi->address,
		.address_hi = (uint32_t)(msi->address >> 32),
		.data = msi->data,
	};

	if (ioctl(vm->fd, KVM_SIGNAL_MSI, &m) < 0)
		return neg_errno();
	return 0;
}

static int ioapic_set_routes(void *opaque, const bool routed[IOAPIC_NR_PINS],
			     const struct ioapic_msi msi[IOAPIC_NR_PINS])
{
	struct vm *vm = opaque;
	struct {
		struct kvm_irq_routing hdr;
		struct kvm_irq_routing_entry entries[IOAPIC_NR_PINS];
	} buf;
	uint32_t n = 0;

	memset(&buf, 0, sizeof(buf));
	for (uint32_t pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		struct kvm_irq_routing_entry *e = &buf.entries[n];

		if (!routed[pin])
			continue;
		e->gsi = pin;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)msi[pin].address;
		e->u.msi.address_hi = (uint32_t)(msi[pin].address >> 32);
		e->u.msi.data = msi[pin].data;
		n++;
	}
	buf.hdr.nr = n;
	if (ioctl(vm->fd, KVM_SET_GSI_ROUTING, &buf) < 0)
		return neg_errno();
	return 0;
}

static void vm_power_request(void *opaque, enum power_event event)
{
	vm_request_stop(opaque, event == POWER_OFF ? VM_EXIT_POWEROFF : VM_EXIT_REBOOT);
}

static int create_kvm_vm(struct vm *vm, char *reason, size_t len)
{
	struct kvm_enable_cap split = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { IOAPIC_NR_PINS } };

	do {
		vm->fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	} while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0) {
		snprintf(reason, len, "KVM_CREATE_VM failed: %s", strerror(errno));
		return neg_errno();
	}
	if (fcntl(vm->fd, F_SETFD, FD_CLOEXEC) < 0)
		return neg_errno();
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0) {
		snprintf(reason, len, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		return neg_errno();
	}
	if (ioctl(vm->fd, KVM_ENABLE_CAP, &split) < 0) {
		snprintf(reason, len, "enabling the split irqchip failed: %s", strerror(errno));
		return neg_errno();
	}
	return 0;
}

static int register_memory(struct vm *vm, char *reason, size_t len)
{
	for (uint32_t i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *g = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = g->gpa,
			.memory_size = g->size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.host + g->memfd_offset),
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			snprintf(reason, len, "KVM_SET_USER_MEMORY_REGION failed: %s",
				 strerror(errno));
			return neg_errno();
		}
	}
	return 0;
}

static int attach_vmgenid(struct vm *vm)
{
	struct irq_line ged = { .set_level = ioapic_set_level, .controller = &vm->ioapic,
				.pin = VMGENID_GED_GSI };
	struct acpi_device devs[2];
	int r;

	vmgenid_init(&vm->genid, LAYOUT_VMGENID, ged);
	vmgenid_describe(&vm->genid, devs);
	r = vm_add_acpi_device(vm, &devs[0]);
	if (r >= 0)
		r = vm_add_acpi_device(vm, &devs[1]);
	/* A first ID; the guest reads it at boot (there is no one to notify yet). */
	if (r >= 0)
		r = vmgenid_new_id(&vm->genid, &vm->mem);
	return r;
}

static int attach_platform_devices(struct vm *vm, int console_fd)
{
	struct ioapic_backend backend = { .send_msi = ioapic_send_msi,
					  .set_routes = ioapic_set_routes,
					  .opaque = vm };
	struct power_sink power = { .request = vm_power_request, .vm = vm };
	struct irq_line com1 = { .set_level = ioapic_set_level, .controller = &vm->ioapic,
				 .pin = SERIAL_COM1_IRQ };
	int r;

	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	ioapic_init(&vm->ioapic, backend);
	serial_init(&vm->serial, console_fd, com1);
	i8042_init(&vm->i8042, power);
	acpi_pm_init(&vm->pm, power);

	static const struct acpi_device com1_acpi = {
		.name = "COM1", .hid = "PNP0501", .uid = 0,
		.io_base = SERIAL_COM1_BASE, .io_len = SERIAL_NR_PORTS,
		.has_irq = true, .gsi = SERIAL_COM1_IRQ,
	};

	r = bus_register(&vm->mmio, IOAPIC_BASE, IOAPIC_SIZE, &ioapic_ops, &vm->ioapic);
	if (r >= 0)
		r = bus_register(&vm->pio, SERIAL_COM1_BASE, SERIAL_NR_PORTS, &serial_ops,
				 &vm->serial);
	if (r >= 0)
		r = bus_register(&vm->pio, I8042_DATA_PORT, 1, &i8042_data_ops, &vm->i8042);
	if (r >= 0)
		r = bus_register(&vm->pio, I8042_COMMAND_PORT, 1, &i8042_command_ops, &vm->i8042);
	if (r >= 0)
		r = bus_register(&vm->pio, ACPI_PM_PORT_BASE, ACPI_PM_NR_PORTS, &acpi_pm_ops,
				 &vm->pm);
	if (r >= 0)
		r = vm_add_acpi_device(vm, &com1_acpi);
	if (r >= 0)
		r = attach_vmgenid(vm);
	return r;
}

/* Create vCPU `index`: the fd and its kvm_run mapping, no state yet. */
static int create_vcpus(struct vm *vm, bool with_defaults, char *reason, size_t len)
{
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		int r = vcpu_create(vm, i);

		if (r >= 0 && with_defaults)
			r = vcpu_init_defaults(&vm->vcpus[i]);
		if (r < 0) {
			snprintf(reason, len, "cannot create vCPU %u: %s", i, strerror(-r));
			return r;
		}
	}
	return 0;
}

int vm_recreate_kvm(struct vm *vm, char *reason, size_t reason_len)
{
	int r;

	/*
	 * The inherited VM and vCPU fds belong to the parent's address space:
	 * drop them (the /dev/kvm fd is not tied to one and is reused).
	 */
	for (uint32_t i = 0; i < VM_MAX_VCPUS; i++) {
		vcpu_destroy(&vm->vcpus[i]);
		vm->vcpus[i].thread_started = false;
	}
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	vm->exit_reason = VM_EXIT_NONE;
	vm->pause_requested = false;
	vm->vcpus_running = vm->vcpus_parked = 0;
	/* Locks may have been copied mid-use by another thread of the parent. */
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	pthread_mutex_init(&vm->serial.lock, NULL);
	pthread_mutex_init(&vm->ioapic.lock, NULL);

	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0)
		return neg_errno();

	r = guest_mem_remap_private(&vm->mem);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot remap guest memory private: %s", strerror(-r));
		return r;
	}
	r = create_kvm_vm(vm, reason, reason_len);
	if (r >= 0)
		r = register_memory(vm, reason, reason_len);
	if (r >= 0)
		r = create_vcpus(vm, false, reason, reason_len);
	for (uint32_t i = 0; r >= 0 && i < vm->nr_devices; i++) {
		const struct vm_device *d = &vm->devices[i];

		if (d->ops->rebind)
			r = d->ops->rebind(d->dev, vm);
		if (r < 0)
			snprintf(reason, reason_len, "cannot rebind device %u: %s", i, strerror(-r));
	}
	return r;
}

int vm_create(const struct vm_params *params, struct vm **ret_vm, char *reason, size_t reason_len)
{
	_cleanup_(vm_destroyp) struct vm *vm = NULL;
	int r;

	if (params->nr_vcpus == 0 || params->nr_vcpus > VM_MAX_VCPUS) {
		snprintf(reason, reason_len, "vCPU count must be between 1 and %d", VM_MAX_VCPUS);
		return -EINVAL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->fd = -1;
	vm->kvm.fd = -1;
	vm->mem.memfd = -1;
	vm->stop_eventfd = -1;
	for (uint32_t i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);

	r = kvm_open(params->kvm_path ? params->kvm_path : "/dev/kvm", &vm->kvm, reason,
		     reason_len);
	if (r < 0)
		return r;
	r = create_kvm_vm(vm, reason, reason_len);
	if (r < 0)
		return r;
	r = guest_mem_create(params->mem_bytes, &vm->mem);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot allocate %llu MiB of guest memory: %s",
			 (unsigned long long)(params->mem_bytes >> 20), strerror(-r));
		return r;
	}
	r = register_memory(vm, reason, reason_len);
	if (r < 0)
		return r;

	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0)
		return neg_errno();

	r = attach_platform_devices(vm, params->console_fd);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot register platform devices: %s", strerror(-r));
		return r;
	}

	vm->nr_vcpus = params->nr_vcpus;
	r = create_vcpus(vm, true, reason, reason_len);
	if (r < 0)
		return r;
	*ret_vm = TAKE_PTR(vm);
	return 0;
}

int vm_add_acpi_device(struct vm *vm, const struct acpi_device *dev)
{
	if (vm->nr_acpi_devices == ACPI_MAX_DEVICES)
		return -ENOSPC;
	vm->acpi_devices[vm->nr_acpi_devices++] = *dev;
	return 0;
}

int vm_io_watch(struct vm *vm, int fd, short events, vm_io_handler handler, void *opaque)
{
	if (fd < 0 || !handler)
		return -EINVAL;
	if (vm->nr_io_watches == VM_MAX_IO_WATCHES)
		return -ENOSPC;
	vm->io_watches[vm->nr_io_watches++] =
		(struct vm_io_watch){ .fd = fd, .events = events, .handler = handler, .opaque = opaque };
	return 0;
}

int vm_add_device(struct vm *vm, const struct vm_device *dev)
{
	struct state_device all[VM_MAX_STATE_DEVICES];

	if (!dev->ops)
		return -EINVAL;
	/* Its state must fit beside everyone else's in a snapshot. */
	if (vm->nr_devices == VM_MAX_DEVICES ||
	    (dev->state.desc && vm_state_devices(vm, all, VM_MAX_STATE_DEVICES) ==
				    VM_MAX_STATE_DEVICES))
		return -ENOSPC;
	vm->devices[vm->nr_devices++] = *dev;
	return 0;
}

void vm_quiesce_devices(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->nr_devices; i++)
		if (vm->devices[i].ops->quiesce)
			vm->devices[i].ops->quiesce(vm->devices[i].dev);
}

void vm_thaw_devices(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->nr_devices; i++)
		if (vm->devices[i].ops->thaw)
			vm->devices[i].ops->thaw(vm->devices[i].dev);
}

/* Appends the attached devices' states after the platform's. */
static uint32_t attached_states(struct vm *vm, struct state_device *out, uint32_t n, uint32_t max)
{
	for (uint32_t i = 0; i < vm->nr_devices && n < max; i++)
		if (vm->devices[i].state.desc)
			out[n++] = vm->devices[i].state;
	return n;
}

uint32_t vm_state_devices(struct vm *vm, struct state_device *out, uint32_t max)
{
	struct state_device all[] = {
		{ &ioapic_state_desc, &vm->ioapic },
		{ &serial_state_desc, &vm->serial },
		{ &i8042_state_desc, &vm->i8042 },
		{ &acpi_pm_state_desc, &vm->pm },
	};
	uint32_t n = MIN((uint32_t)ARRAY_SIZE(all), max);

	memcpy(out, all, n * sizeof(all[0]));
	return attached_states(vm, out, n, max);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (uint32_t i = 0; i < VM_MAX_VCPUS; i++)
		vcpu_destroy(&vm->vcpus[i]);
	/* Devices first: their in-flight I/O targets guest memory. */
	for (uint32_t i = vm->nr_devices; i-- > 0;)
		if (vm->devices[i].ops->destroy)
			vm->devices[i].ops->destroy(vm->devices[i].dev);
	serial_destroy(&vm->serial);
	ioapic_destroy(&vm->ioapic);
	guest_mem_destroy(&vm->mem);
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	if (vm->fd >= 0)
		close(vm->fd);
	kvm_close(&vm->kvm);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

/* A read-only private mapping of a whole file, with a size cap. */
struct mapped_file {
	uint8_t *data;
	size_t len;
};

static void mapped_file_release(struct mapped_file *f)
{
	if (f->data)
		munmap(f->data, f->len);
	f->data = NULL;
}

static int map_file(const char *path, size_t max, struct mapped_file *ret, char *reason,
		    size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *p;

	if (fd < 0) {
		snprintf(reason, len, "cannot open '%s': %s", path, strerror(errno));
		return neg_errno();
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(reason, len, "'%s' is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size == 0 || (uint64_t)st.st_size > max) {
		snprintf(reason, len, "'%s' is empty or too large (%lld bytes)", path,
			 (long long)st.st_size);
		return -EFBIG;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(reason, len, "cannot map '%s': %s", path, strerror(errno));
		return neg_errno();
	}
	ret->data = p;
	ret->len = (size_t)st.st_size;
	return 0;
}

static int load_images(struct vm *vm, const struct vm_config *cfg, struct kernel_image *kernel,
		       struct boot_info *info, char *reason, size_t len)
{
	struct mapped_file kfile = { 0 }, ifile = { 0 };
	const char *why = NULL;
	int r;

	r = map_file(cfg->kernel_path, BOOT_KERNEL_FILE_MAX, &kfile, reason, len);
	if (r < 0)
		return r;
	r = boot_load_kernel(&vm->mem, kfile.data, kfile.len, kernel, &why);
	mapped_file_release(&kfile);
	if (r < 0) {
		snprintf(reason, len, "'%s': %s", cfg->kernel_path, why);
		return r;
	}

	if (cfg->initrd_path[0] == '\0')
		return 0;
	r = map_file(cfg->initrd_path, vm->mem.size, &ifile, reason, len);
	if (r < 0)
		return r;
	r = boot_load_initrd(&vm->mem, kernel, ifile.data, ifile.len, &info->initrd_addr, &why);
	info->initrd_size = ifile.len;
	mapped_file_release(&ifile);
	if (r < 0)
		snprintf(reason, len, "'%s': %s", cfg->initrd_path, why);
	return r;
}

int vm_load_linux(struct vm *vm, const struct vm_config *cfg, char *reason, size_t reason_len)
{
	struct acpi_config acpi = { .nr_vcpus = vm->nr_vcpus, .ioapic_addr = IOAPIC_BASE,
				    .devices = vm->acpi_devices, .nr_devices = vm->nr_acpi_devices };
	struct kernel_image kernel;
	struct boot_info info = { 0 };
	char cmdline[VM_CONFIG_CMDLINE_MAX];
	const char *why = NULL;
	int r;

	r = load_images(vm, cfg, &kernel, &info, reason, reason_len);
	if (r < 0)
		return r;
	r = acpi_write(&vm->mem, &acpi, &info.rsdp_addr);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot build ACPI tables: %s", strerror(-r));
		return r;
	}
	r = boot_write_boot_data(&vm->mem, &kernel, &info,
				 vm_config_cmdline(cfg, cmdline, sizeof(cmdline)), &why);
	if (r < 0) {
		snprintf(reason, reason_len, "%s", why);
		return r;
	}
	r = vm_write_boot_tables(vm);
	if (r < 0) {
		snprintf(reason, reason_len, "cannot write boot page tables: %s", strerror(-r));
		return r;
	}

	/* Only the BSP gets an entry point; APs wait for the guest's INIT/SIPI. */
	if (kernel.entry_mode == BOOT_ENTRY_PVH)
		r = vcpu_setup_protected_mode(&vm->vcpus[0], kernel.entry, LAYOUT_PVH_START_INFO);
	else
		r = vcpu_setup_long_mode(&vm->vcpus[0], kernel.entry, LAYOUT_ZERO_PAGE);
	if (r < 0)
		snprintf(reason, reason_len, "cannot set boot CPU registers: %s", strerror(-r));
	return r;
}
