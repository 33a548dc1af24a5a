// SPDX-License-Identifier: MIT
#include <sys/random.h>

#include "vmgenid.h"

int vmgenid_new_id(const struct vmgenid *g, const struct guest_mem *mem)
{
	uint8_t id[VMGENID_SIZE];

	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return -EIO;
	return guest_mem_write(mem, g->gpa, id, sizeof(id));
}

void vmgenid_init(struct vmgenid *g, uint64_t gpa, struct irq_line ged_irq)
{
	g->gpa = gpa;
	g->ged_irq = ged_irq;
}

void vmgenid_describe(const struct vmgenid *g, struct acpi_device ret_devs[2])
{
	ret_devs[0] = (struct acpi_device){
		.name = "VGEN", .hid = "VMGENCTR", .cid = "VM_GEN_COUNTER", .uid = 0,
		.has_addr = true, .addr = g->gpa,
	};
	ret_devs[1] = (struct acpi_device){
		.name = "GED0", .hid = "ACPI0013", .uid = 0,
		.has_irq = true, .gsi = g->ged_irq.pin,
		.evt_notify = "\\_SB_VGEN",
	};
}

int vmgenid_regenerate(struct vmgenid *g, const struct guest_mem *mem)
{
	int r = vmgenid_new_id(g, mem);

	if (r < 0)
		return r;
	/* An edge on the GED's pin: the guest runs _EVT, which notifies VGEN. */
	irq_line_set(&g->ged_irq, true);
	irq_line_set(&g->ged_irq, false);
	return 0;
}
