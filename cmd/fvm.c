// SPDX-License-Identifier: MIT
/* fvm: one microVM, configured by flags, a config file or the REST API. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>

#include "api-config.h"
#include "args.h"
#include "fvm-config.h"
#include "instance.h"
#include "state-file.h"

enum {
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	CONFIG_FILE_MAX = 1 << 20,
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

/* Flags first (to find --config), then the file, then the flags again on top. */
static int parse_command_line(int argc, char **argv, struct fvm_args *args)
{
	struct vm_config cfg;
	struct api_fault fault = { "" };
	_cleanup_free_ void *json = NULL;
	char err[512];
	size_t len;
	int r;

	if (fvm_args_parse(argc, argv, NULL, false, args, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -EINVAL;
	}
	if (args->show_help || args->show_version || args->config_path[0] == '\0') {
		/* No file: parse once more, now requiring a complete configuration. */
		if (fvm_args_parse(argc, argv, NULL, true, args, err, sizeof(err)) < 0) {
			log_err("%s", err);
			return -EINVAL;
		}
		return 0;
	}

	r = state_read_file(args->config_path, CONFIG_FILE_MAX, &json, &len);
	if (r < 0) {
		log_err("cannot read config '%s': %s", args->config_path, strerror(-r));
		return r;
	}
	vm_config_init(&cfg);
	if (api_parse_config_file(json, len, &cfg, &fault) < 0) {
		log_err("config '%s': %s", args->config_path, fault.message);
		return -EINVAL;
	}
	if (fvm_args_parse(argc, argv, &cfg, true, args, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fvm_args args;
	struct instance inst;
	struct termios saved;
	bool stdio, raw = false;
	int console_fd, r, status;

	if (parse_command_line(argc, argv, &args) < 0)
		return EXIT_USAGE;
	if (args.show_help) {
		fputs(fvm_usage, stdout);
		return 0;
	}
	if (args.show_version) {
		printf("fvm %s\n", FVM_VERSION);
		return 0;
	}
	log_set_level(args.log_level);

	/*
	 * Clones are our children: the kernel reaps them, so that a stopped
	 * clone is gone at once instead of lingering as a zombie until the
	 * template next looks (fvmctl stop waits for the process to vanish).
	 */
	sigaction(SIGCHLD, &(struct sigaction){.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT},
		  NULL);
	/* Before any thread exists (API, vCPUs): they inherit the blocked set. */
	r = vm_block_signals();
	if (r < 0) {
		log_err("cannot set up signal handling: %s", strerror(-r));
		return EXIT_FAILED;
	}
	stdio = args.vm.console_path[0] == '\0';
	console_fd = open_console(&args.vm);
	if (console_fd < 0)
		return EXIT_FAILED;
	if (instance_init(&inst, &args.vm, console_fd, stdio) < 0)
		return EXIT_FAILED;

	/* Only an interactive console in the foreground goes raw. */
	if (stdio && !args.api_sock[0])
		raw = enter_raw_mode(STDIN_FILENO, &saved);
	status = instance_main(&inst, args.api_sock);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	vm_destroy(inst.vm);
	close(console_fd);
	return status;
}
