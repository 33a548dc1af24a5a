// SPDX-License-Identifier: MIT
/* fvm: boot one microVM from the command line. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>

#include "args.h"
#include "fvm-config.h"
#include "vm.h"

enum {
	EXIT_GUEST_DONE = 0,
	EXIT_FAILURE_ = 1,
	EXIT_USAGE = 2,
};

static int open_console(const struct vm_config *cfg)
{
	int fd;

	if (cfg->console_path[0] == '\0')
		return dup(STDOUT_FILENO);
	fd = open(cfg->console_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		log_err("cannot open console file '%s': %s", cfg->console_path, strerror(errno));
	return fd;
}

/* A terminal console passes every key to the guest, Ctrl-C included. */
static bool enter_raw_mode(int fd, struct termios *saved)
{
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, saved) < 0)
		return false;
	raw = *saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR;
	return tcsetattr(fd, TCSANOW, &raw) == 0;
}

static int exit_status_for(enum vm_exit_reason reason)
{
	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_REBOOT:
	case VM_EXIT_SIGNAL:
		return EXIT_GUEST_DONE;
	default:
		return EXIT_FAILURE_;
	}
}

static int run_vm(const struct fvm_args *args)
{
	_cleanup_(vm_destroyp) struct vm *vm = NULL;
	_cleanup_close_ int console_fd = -1;
	struct vm_params params = { .mem_bytes = args->vm.mem_bytes, .nr_vcpus = args->vm.vcpus };
	bool stdio = args->vm.console_path[0] == '\0';
	struct termios saved;
	bool raw;
	enum vm_exit_reason reason;
	char why[512] = "";
	int r;

	console_fd = open_console(&args->vm);
	if (console_fd < 0)
		return EXIT_FAILURE_;
	params.console_fd = console_fd;

	r = vm_block_signals();
	if (r < 0) {
		log_err("cannot set up signal handling: %s", strerror(-r));
		return EXIT_FAILURE_;
	}
	r = vm_create(&params, &vm, why, sizeof(why));
	if (r < 0) {
		log_err("%s", why[0] ? why : strerror(-r));
		return EXIT_FAILURE_;
	}
	r = vm_load_linux(vm, &args->vm, why, sizeof(why));
	if (r < 0) {
		log_err("%s", why);
		return EXIT_FAILURE_;
	}

	raw = stdio && enter_raw_mode(STDIN_FILENO, &saved);
	reason = vm_run(vm, stdio ? STDIN_FILENO : -1);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);

	if (reason == VM_EXIT_POWEROFF || reason == VM_EXIT_REBOOT)
		log_info("guest %s", vm_exit_reason_name(reason));
	else if (reason != VM_EXIT_SIGNAL)
		log_err("VM stopped: %s", vm_exit_reason_name(reason));
	return exit_status_for(reason);
}

int main(int argc, char **argv)
{
	struct fvm_args args;
	char err[512];

	if (fvm_args_parse(argc, argv, &args, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return EXIT_USAGE;
	}
	if (args.show_help) {
		fputs(fvm_usage, stdout);
		return 0;
	}
	if (args.show_version) {
		printf("fvm %s\n", FVM_VERSION);
		return 0;
	}
	log_set_level(args.log_level);
	return run_vm(&args);
}
