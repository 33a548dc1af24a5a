// SPDX-License-Identifier: MIT
/*
 * Running a VM: one thread per vCPU in KVM_RUN, and the calling thread
 * as the I/O thread (console input, SIGINT/SIGTERM, stop requests).
 *
 * Stopping: vm_request_stop() records the first reason and wakes the I/O
 * thread through an eventfd; the I/O thread then sets immediate_exit in
 * every vCPU's kvm_run and sends it SIGUSR1, so a vCPU either returns
 * from KVM_RUN at once or never enters it again.
 */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>

#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1
/* Ctrl-A then x on a terminal console ends the VM, as in other monitors. */
#define CONSOLE_ESCAPE 0x01

void vm_request_stop(struct vm *vm, enum vm_exit_reason reason)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&vm->lock);
	if (vm->exit_reason == VM_EXIT_NONE)
		__atomic_store_n(&vm->exit_reason, reason, __ATOMIC_SEQ_CST);
	/* Parked vCPUs must wake up to see the stop. */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	n = write(vm->stop_eventfd, &one, sizeof(one));
	(void)n;
}

enum vm_exit_reason vm_get_exit_reason(struct vm *vm)
{
	enum vm_exit_reason r;

	pthread_mutex_lock(&vm->lock);
	r = vm->exit_reason;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static void kick_handler(int sig)
{
	(void)sig;
}

int vm_block_signals(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t set;

	/* No SA_RESTART: the kick must interrupt KVM_RUN with EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return neg_errno();
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void kick_vcpus(struct vm *vm);

/*
 * Park here while a pause is requested. Returns false when the VM is
 * stopping. Parking happens only between KVM_RUN calls, so the vCPU's
 * state is complete (no half-done exit) when vm_pause() returns.
 */
static bool vcpu_park_if_paused(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool running;

	/*
	 * Runs after every exit: skip the VM-wide lock unless a pause or stop
	 * is pending. Both are stored before the kick that interrupts
	 * KVM_RUN, so a vCPU that missed them here sees them next time round.
	 */
	if (!__atomic_load_n(&vm->pause_requested, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&vm->exit_reason, __ATOMIC_SEQ_CST) == VM_EXIT_NONE)
		return true;

	pthread_mutex_lock(&vm->lock);
	if (vm->pause_requested && vm->exit_reason == VM_EXIT_NONE) {
		vm->vcpus_parked++;
		pthread_cond_broadcast(&vm->cond);
		while (vm->pause_requested && vm->exit_reason == VM_EXIT_NONE)
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->vcpus_parked--;
	}
	running = vm->exit_reason == VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->lock);
	return running;
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->lock);
	kick_vcpus(vm);

	pthread_mutex_lock(&vm->lock);
	while (vm->vcpus_parked < vm->vcpus_running && vm->exit_reason == VM_EXIT_NONE)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vm_resume(struct vm *vm)
{
	/* Devices frozen by a snapshot or fork take buffers again. */
	vm_thaw_devices(vm);
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->pause_requested, false, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vcpu_park_if_paused(vcpu)) {
		int r = vcpu_run_once(vcpu);

		if (r == -EINTR)
			continue;
		if (r < 0) {
			log_err("vCPU %u: KVM_RUN failed: %s", vcpu->index, strerror(-r));
			vm_request_stop(vm, VM_EXIT_ERROR);
			break;
		}
		if (r == KVM_EXIT_FAIL_ENTRY || r == KVM_EXIT_INTERNAL_ERROR) {
			log_err("vCPU %u: KVM could not run the guest (exit %d, suberror %u)",
				vcpu->index, r, vcpu->run->internal.suberror);
			vm_request_stop(vm, VM_EXIT_ERROR);
			break;
		}
	}
	pthread_mutex_lock(&vm->lock);
	vm->vcpus_running--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

static void kick_vcpus(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];

		if (!vcpu->thread_started)
			continue;
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
	}
}

/* Console input that did not fit the UART FIFO yet. */
struct console_input {
	int fd;
	bool is_tty;
	bool saw_escape;
	uint8_t buf[256];
	uint32_t off, len;
};

static void console_read(struct vm *vm, struct console_input *in)
{
	uint8_t raw[sizeof(in->buf)];
	ssize_t n = read(in->fd, raw, sizeof(raw));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			in->fd = -1; /* EOF: the guest just gets no more input */
		return;
	}
	in->off = 0;
	in->len = 0;
	for (ssize_t i = 0; i < n; i++) {
		if (in->is_tty && in->saw_escape) {
			in->saw_escape = false;
			if (raw[i] == 'x') {
				vm_request_stop(vm, VM_EXIT_SIGNAL);
				return;
			}
			if (raw[i] != CONSOLE_ESCAPE)
				in->buf[in->len++] = CONSOLE_ESCAPE;
		} else if (in->is_tty && raw[i] == CONSOLE_ESCAPE) {
			in->saw_escape = true;
			continue;
		}
		in->buf[in->len++] = raw[i];
	}
}

static void console_flush(struct vm *vm, struct console_input *in)
{
	in->off += serial_receive(&vm->serial, in->buf + in->off, in->len - in->off);
	if (in->off == in->len)
		in->off = in->len = 0;
}

enum { IO_FIXED_FDS = 3 };

static void io_loop(struct vm *vm, int console_in_fd)
{
	struct console_input in = { .fd = console_in_fd,
				    .is_tty = console_in_fd >= 0 && isatty(console_in_fd) };
	struct pollfd fds[IO_FIXED_FDS + VM_MAX_IO_WATCHES];
	uint32_t nfds = IO_FIXED_FDS + vm->nr_io_watches;
	_cleanup_close_ int sfd = -1;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	for (uint32_t i = 0; i < vm->nr_io_watches; i++)
		fds[IO_FIXED_FDS + i] = (struct pollfd){ .fd = vm->io_watches[i].fd,
							 .events = vm->io_watches[i].events };

	while (vm_get_exit_reason(vm) == VM_EXIT_NONE) {
		bool backlog = in.len > in.off;

		fds[0] = (struct pollfd){ .fd = vm->stop_eventfd, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		/* Stop reading input while the FIFO is full; retry on a short tick. */
		fds[2] = (struct pollfd){ .fd = backlog ? -1 : in.fd, .events = POLLIN };

		if (poll(fds, nfds, backlog ? 5 : -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				log_info("received signal %u, stopping the VM", si.ssi_signo);
				vm_request_stop(vm, VM_EXIT_SIGNAL);
			}
		}
		if (fds[2].revents & (POLLIN | POLLHUP | POLLERR))
			console_read(vm, &in);
		if (in.len > in.off)
			console_flush(vm, &in);
		for (uint32_t i = 0; i < vm->nr_io_watches; i++) {
			struct pollfd *p = &fds[IO_FIXED_FDS + i];

			if (p->revents)
				vm->io_watches[i].handler(vm->io_watches[i].opaque, p->revents);
		}
	}
}

enum vm_exit_reason vm_run(struct vm *vm, int console_in_fd)
{
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];
		int r;

		pthread_mutex_lock(&vm->lock);
		vm->vcpus_running++;
		pthread_mutex_unlock(&vm->lock);
		r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
		if (r != 0) {
			pthread_mutex_lock(&vm->lock);
			vm->vcpus_running--;
			pthread_mutex_unlock(&vm->lock);
			log_err("cannot start vCPU thread %u: %s", i, strerror(r));
			vm_request_stop(vm, VM_EXIT_ERROR);
			break;
		}
		vcpu->thread_started = true;
	}

	io_loop(vm, console_in_fd);

	kick_vcpus(vm);
	for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	}
	return vm_get_exit_reason(vm);
}
