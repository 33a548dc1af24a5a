// SPDX-License-Identifier: MIT
/*
 * virtio-blk attached to a real KVM VM the way fvm attaches drives. The
 * host plays the driver's setup (registers, ring in guest RAM); the tiny
 * guest does what matters on the hot path: its QueueNotify write must be
 * caught by KVM's ioeventfd (no exit to user space), the request is then
 * served through io_uring straight into guest RAM, and the completion
 * interrupt must be taken by KVM's irqfd (the eventfd is consumed in the
 * kernel). The host serves the I/O thread's handlers by hand. Then the
 * device goes through snapshots: a capture first finishes what the
 * driver queued, saves are stable, a restore brings the bytes back, and
 * a state whose rings leave guest RAM or that names another disk is
 * refused. Last, a forked clone serves a request on eventfds and an
 * io_uring of its own, bound to its own KVM VM.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "crc32.h"
#include "fork.h"
#include "harness.h"
#include "layout.h"
#include "state-file.h"
#include "virtio-blk.h"
#include "virtio-test-ring.h"
#include "vm-devices.h"
#include "vm-state.h"

#define RING_BASE 0x1000000ull /* 16 MiB, away from the harness's boot structures */
#define HDR_GPA	  (RING_BASE + RING_DATA)
#define BUF_GPA	  (RING_BASE + RING_DATA + 0x1000)
#define STAT_GPA  (RING_BASE + RING_DATA + 0x3000)

static GUEST_CODE void guest_notify(uint64_t notify_gpa)
{
	volatile uint32_t *notify = (volatile uint32_t *)notify_gpa;

	*notify = 0; /* queue 0 */
	GUEST_SYNC(1);
	GUEST_DONE();
}

static void reg_write(struct vm *vm, uint64_t off, uint32_t val)
{
	TEST_REQUIRE(bus_access(&vm->mmio, LAYOUT_VIRTIO_MMIO + off, &val, 4, true));
}

static uint32_t reg_read(struct vm *vm, uint64_t off)
{
	uint32_t val = 0;

	TEST_REQUIRE(bus_access(&vm->mmio, LAYOUT_VIRTIO_MMIO + off, &val, 4, false));
	return val;
}

static void driver_setup(struct vm *vm, struct test_ring *t)
{
	reg_write(vm, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	reg_write(vm, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(vm, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	reg_write(vm, VIRTIO_MMIO_STATUS,
		  reg_read(vm, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	TEST_REQUIRE(reg_read(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	ring_init(t, 16, 0);
	reg_write(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	reg_write(vm, VIRTIO_MMIO_QUEUE_NUM, 16);
	reg_write(vm, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)t->vq.desc_addr);
	reg_write(vm, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)t->vq.avail_addr);
	reg_write(vm, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)t->vq.used_addr);
	reg_write(vm, VIRTIO_MMIO_QUEUE_READY, 1);
	reg_write(vm, VIRTIO_MMIO_STATUS,
		  reg_read(vm, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void make_disk(char *path, size_t len)
{
	uint8_t block[4096];
	int fd;

	snprintf(path, len, "/tmp/fvm-kvm-virtio.XXXXXX");
	fd = mkstemp(path);
	TEST_REQUIRE(fd >= 0);
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (uint8_t)(i * 13 + 1);
	for (int i = 0; i < 256; i++)
		TEST_REQUIRE(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
	close(fd);
}

static void save(struct tiny_vm *t, void **blob, size_t *len)
{
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(t->vm, devs, VM_MAX_STATE_DEVICES);
	struct vm_state *st = vm_state_new(1);

	TEST_REQUIRE(st && vm_state_capture(t->vm, st) == 0);
	TEST_REQUIRE(state_encode(st, devs, n, blob, len) == 0);
	vm_state_free(st);
}

static int load(struct tiny_vm *t, const void *blob, size_t len)
{
	struct state_device devs[VM_MAX_STATE_DEVICES];
	uint32_t n = vm_state_devices(t->vm, devs, VM_MAX_STATE_DEVICES);
	struct vm_state *st = NULL;
	char why[256] = "";
	int r = state_decode(blob, len, &st, devs, n, why, sizeof(why));

	if (r >= 0)
		r = vm_state_restore(t->vm, st, VM_CLOCK_CONTINUE);
	vm_state_free(st);
	return r;
}

/* The device's saved state in two blobs is the same (vCPU clocks move on; it must not). */
static bool same(const void *a, size_t alen, const void *b, size_t blen)
{
	int na = fdt_path_offset(a, "/devices/virtio@d0000000");
	int nb = fdt_path_offset(b, "/devices/virtio@d0000000");
	(void)alen;
	(void)blen;
	TEST_REQUIRE(na >= 0 && nb >= 0);
	for (int pa = fdt_first_property_offset(a, na); pa >= 0;
	     pa = fdt_next_property_offset(a, pa)) {
		const char *name;
		int la, lb;
		const void *va = fdt_getprop_by_offset(a, pa, &name, &la);
		const void *vb = fdt_getprop(b, nb, name, &lb);

		if (!vb || la != lb || memcmp(va, vb, (size_t)la) != 0)
			return false;
	}
	return true;
}

/* A copy of blob with bytes [off, off + n) of /devices/<node>/<prop> replaced, resealed. */
static void *tampered(const void *blob, size_t len, const char *prop, size_t off, const void *bytes,
		      size_t n)
{
	uint8_t *bad = malloc(len);
	int node, plen;
	void *p;

	TEST_REQUIRE(bad != NULL);
	memcpy(bad, blob, len);
	node = fdt_path_offset(bad, "/devices/virtio@d0000000");
	TEST_REQUIRE(node >= 0);
	p = (void *)fdt_getprop(bad, node, prop, &plen);
	TEST_REQUIRE(p && (size_t)plen >= off + n);
	memcpy((uint8_t *)p + off, bytes, n);
	fdt_setprop_inplace_u32(bad, 0, "crc32", 0);
	fdt_setprop_inplace_u32(bad, 0, "crc32", crc32c_of(bad, fdt_totalsize(bad)));
	return bad;
}

static void snapshot_checks(struct tiny_vm *t, struct virtio_blk *blk, struct test_ring *ring)
{
	uint64_t outside = 1ull << 40, capacity = 1;
	void *a, *b, *bad;
	size_t alen, blen;

	/* Queued but not served yet: the capture serves it, so the saved rings are complete. */
	ring_publish(ring, 0);
	save(t, &a, &alen);
	TEST_REQUIRE(ring_used_idx(ring) == 2);
	TEST_REQUIRE(blk->io.outstanding == 0);
	save(t, &b, &blen);
	TEST_REQUIRE(same(a, alen, b, blen));
	free(b);

	/* A mutation shows; restoring brings the saved bytes back. */
	blk->vdev.config_generation++;
	blk->vdev.queues[0].signalled_used ^= 0x55;
	save(t, &b, &blen);
	TEST_REQUIRE(!same(a, alen, b, blen));
	free(b);
	TEST_REQUIRE(load(t, a, alen) == 0);
	save(t, &b, &blen);
	TEST_REQUIRE(same(a, alen, b, blen));
	free(b);

	/* Rings outside guest RAM, or another disk's config: refused. */
	bad = tampered(a, alen, "queues", offsetof(struct virtq, used_addr), &outside, 8);
	TEST_REQUIRE(load(t, bad, alen) < 0);
	free(bad);
	bad = tampered(a, alen, "config", 0, &capacity, 8);
	TEST_REQUIRE(load(t, bad, alen) < 0);
	free(bad);
	save(t, &b, &blen);
	TEST_REQUIRE(same(a, alen, b, blen));
	free(b);
	free(a);
}

/* Serve queue 0 as the I/O thread would, until `want` chains are used. */
static void serve(struct virtio_blk *blk, struct test_ring *ring, uint16_t want)
{
	struct pollfd p = {.fd = blk->vdev.kick_fd[0], .events = POLLIN};

	TEST_REQUIRE(poll(&p, 1, 5000) == 1);
	virtio_mmio_kick_handler(&blk->vdev.kicks[0], POLLIN);
	for (int i = 0; i < 100 && ring_used_idx(ring) != want; i++) {
		p = (struct pollfd){.fd = blk->io.event_fd, .events = POLLIN};
		TEST_REQUIRE(poll(&p, 1, 5000) == 1);
		virtio_blk_io_handler(blk, POLLIN);
	}
	TEST_REQUIRE(ring_used_idx(ring) == want);
}

struct clone_ctx {
	struct test_ring *ring;
	uint64_t parent_irq_count;
};

/* In the clone: the guest notifies again; everything must happen in the clone. */
static int clone_main(struct vm *vm, uint32_t index, void *opaque)
{
	struct clone_ctx *ctx = opaque;
	struct virtio_blk *blk = vm->devices[0].dev;
	struct tiny_vm t = {.vm = vm};
	uint16_t used = ring_used_idx(ctx->ring);
	uint64_t count;

	vm_thaw_devices(vm);
	*(uint8_t *)gpa(ctx->ring, STAT_GPA) = 0xee;
	ring_publish(ctx->ring, 0);
	tiny_vcpu_enter(&t, 0, guest_notify, LAYOUT_VIRTIO_MMIO + VIRTIO_MMIO_QUEUE_NOTIFY);
	tiny_expect_sync(&t, 0, 1);
	serve(blk, ctx->ring, (uint16_t)(used + 1));
	TEST_REQUIRE(*(uint8_t *)gpa(ctx->ring, STAT_GPA) == VIRTIO_BLK_S_OK);
	TEST_REQUIRE(read(blk->vdev.irq_fd, &count, sizeof(count)) < 0 && errno == EAGAIN);
	return 0;
}

static void fork_check(struct tiny_vm *t, struct virtio_blk *blk, struct test_ring *ring)
{
	struct clone_ctx ctx = {.ring = ring};
	uint16_t used = ring_used_idx(ring);
	pid_t pid;
	int status;

	TEST_REQUIRE(fork_clones(t->vm, 1, clone_main, &ctx, &pid, NULL) == 0);
	TEST_REQUIRE(waitpid(pid, &status, 0) == pid);
	TEST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Nothing of the clone's work reached the template: its rings, kicks, completions. */
	TEST_REQUIRE(ring_used_idx(ring) == used);
	TEST_REQUIRE(blk->io.outstanding == 0);
	TEST_REQUIRE(poll(&(struct pollfd){.fd = blk->vdev.kick_fd[0], .events = POLLIN}, 1, 0) ==
		     0);
	TEST_REQUIRE(poll(&(struct pollfd){.fd = blk->io.event_fd, .events = POLLIN}, 1, 0) == 0);
}

int main(void)
{
	struct vm_drive_config drive = {.id = "kvmtest"};
	struct tiny_vm t;
	struct test_ring ring = {.base = RING_BASE};
	struct virtio_blk *blk;
	uint64_t count, mmio_exits;
	uint8_t expect[4096];
	uint32_t hdr[4] = {VIRTIO_BLK_T_IN, 0, 24, 0}; /* sector 24 */
	char why[256] = "";
	struct pollfd p;

	tiny_vm_create(&t, 1, 64ull << 20);
	make_disk(drive.path, sizeof(drive.path));
	if (vm_attach_virtio_blk(t.vm, &drive, why, sizeof(why)) < 0) {
		fprintf(stderr, "vm_attach_virtio_blk: %s\n", why);
		unlink(drive.path);
		return 1;
	}
	blk = t.vm->devices[0].dev;
	TEST_REQUIRE(blk->vdev.kick_fd[0] >= 0);
	TEST_REQUIRE(blk->vdev.irq_fd >= 0); /* KVM took the irqfd */
	ring.mem = t.vm->mem;
	driver_setup(t.vm, &ring);
	/* DRIVER_OK had the queue looked at once; clear that kick. */
	TEST_REQUIRE(read(blk->vdev.kick_fd[0], &count, sizeof(count)) == sizeof(count));

	memcpy(gpa(&ring, HDR_GPA), hdr, sizeof(hdr));
	ring_desc(&ring, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	ring_desc(&ring, 1, BUF_GPA, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	ring_desc(&ring, 2, STAT_GPA, 1, VRING_DESC_F_WRITE, 0);
	ring_publish(&ring, 0);

	mmio_exits = t.vm->vcpus[0].exits[VCPU_STAT_MMIO];
	tiny_vcpu_enter(&t, 0, guest_notify, LAYOUT_VIRTIO_MMIO + VIRTIO_MMIO_QUEUE_NOTIFY);
	tiny_expect_sync(&t, 0, 1);
	/* The notify went to the ioeventfd inside KVM, not through a user-space exit. */
	TEST_REQUIRE(t.vm->vcpus[0].exits[VCPU_STAT_MMIO] == mmio_exits);
	p = (struct pollfd){.fd = blk->vdev.kick_fd[0], .events = POLLIN};
	TEST_REQUIRE(poll(&p, 1, 5000) == 1);
	virtio_mmio_kick_handler(&blk->vdev.kicks[0], POLLIN);
	for (int i = 0; i < 100 && ring_used_idx(&ring) != 1; i++) {
		p = (struct pollfd){.fd = blk->io.event_fd, .events = POLLIN};
		TEST_REQUIRE(poll(&p, 1, 5000) == 1);
		virtio_blk_io_handler(blk, POLLIN);
	}
	TEST_REQUIRE(ring_used_idx(&ring) == 1);
	TEST_REQUIRE(*(uint8_t *)gpa(&ring, STAT_GPA) == VIRTIO_BLK_S_OK);
	for (size_t i = 0; i < sizeof(expect); i++)
		expect[i] = (uint8_t)(i * 13 + 1);
	TEST_REQUIRE(memcmp(gpa(&ring, BUF_GPA), expect, sizeof(expect)) == 0);
	/* The interrupt was raised, and KVM's irqfd consumed it. */
	TEST_REQUIRE(blk->vdev.interrupts == 1);
	TEST_REQUIRE(reg_read(t.vm, VIRTIO_MMIO_INTERRUPT_STATUS) == 1);
	TEST_REQUIRE(read(blk->vdev.irq_fd, &count, sizeof(count)) < 0 && errno == EAGAIN);
	snapshot_checks(&t, blk, &ring);
	fork_check(&t, blk, &ring);
	tiny_expect_done(&t, 0);

	tiny_vm_destroy(&t);
	unlink(drive.path);
	printf(
	    "PASS: notify by ioeventfd, read by io_uring, interrupt by irqfd; snapshots; fork\n");
	return 0;
}
