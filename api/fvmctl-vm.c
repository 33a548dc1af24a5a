// SPDX-License-Identifier: MIT
/*
 * A VM's life as a process: run (and restore) start fvm detached with its
 * console in NAME.log; stop, rm and logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fvmctl.h"
#include "util.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Print the last lines of a log so that a failed start explains itself. */
static void log_tail(const char *path, int lines)
{
	_cleanup_free_ char *buf = malloc(8192);
	FILE *f = fopen(path, "re");
	long size, start;
	size_t n;
	int seen = 0;
	char *p;

	if (!f || !buf) {
		if (f)
			fclose(f);
		return;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	start = size > 8191 ? size - 8191 : 0;
	fseek(f, start, SEEK_SET);
	n = fread(buf, 1, 8191, f);
	fclose(f);
	buf[n] = '\0';
	for (p = buf + n; p > buf; p--)
		if (p[-1] == '\n' && p != buf + n && ++seen > lines)
			break;
	if (*p)
		fprintf(stderr, "--- last lines of %s ---\n%s", path, p);
}

/*
 * Start "fvm --api-sock SOCK FLAGS..." in its own session with the console
 * in the log, and wait until its API answers. On success the VM's pid file
 * is written.
 */
static int start_vm(struct fvmctl *ctl, const char *name, char **flags, int nflags, long timeout_ms,
		    struct fvmctl_vm *ret)
{
	char fvm[FVMCTL_PATH_MAX];
	struct fvmctl_vm vm;
	_cleanup_close_ int log_fd = -1;
	_cleanup_free_ char **args = NULL;
	pid_t pid;
	int r, status;

	if (!fvmctl_name_valid(name)) {
		fvmctl_error(ctl, "'%s' is not a valid VM name ([A-Za-z0-9_-], 1 to %d characters)",
			     name, FVMCTL_NAME_MAX - 1);
		return FVMCTL_EUSAGE;
	}
	if (mkdir(ctl->dir, 0700) < 0 && errno != EEXIST) {
		fvmctl_error(ctl, "cannot create %s: %s", ctl->dir, strerror(errno));
		return FVMCTL_EFAIL;
	}
	r = fvmctl_vm_lookup(ctl, name, &vm);
	if (r == 0 && vm.alive) {
		fvmctl_error(ctl, "a VM named '%s' is already running (pid %d)", name, (int)vm.pid);
		return FVMCTL_EEXIST;
	}
	if (r == -ENAMETOOLONG) {
		fvmctl_error(ctl, "%s/%s.sock is longer than a unix socket path may be", ctl->dir,
			     name);
		return FVMCTL_EUSAGE;
	}
	if (r < 0 && r != -ENOENT) {
		fvmctl_error(ctl, "%s: %s", name, strerror(-r));
		return FVMCTL_EFAIL;
	}
	if (r == 0) /* a dead VM's leftovers: the name is free again */
		fvmctl_vm_remove_files(&vm, false);
	r = fvmctl_vm_paths(ctl, name, &vm);
	if (r < 0)
		return FVMCTL_EFAIL;

	r = fvmctl_find_fvm(fvm, sizeof(fvm));
	if (r < 0) {
		fvmctl_error(ctl, "cannot find the fvm executable (beside fvmctl, in PATH, or "
				  "$FVM_BIN)");
		return FVMCTL_EFAIL;
	}
	log_fd = open(vm.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		fvmctl_error(ctl, "cannot create %s: %s", vm.log_path, strerror(errno));
		return FVMCTL_EFAIL;
	}
	args = calloc((size_t)nflags + 4, sizeof(*args));
	if (!args)
		return FVMCTL_EFAIL;
	args[0] = fvm;
	args[1] = (char *)"--api-sock";
	args[2] = vm.sock;
	for (int i = 0; i < nflags; i++)
		args[3 + i] = flags[i];

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fvmctl_error(ctl, "fork: %s", strerror(errno));
		return FVMCTL_EFAIL;
	}
	if (pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		/* Its own session: no controlling terminal, no SIGHUP when we leave. */
		setsid();
		if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
		    dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
			_exit(127);
		execv(fvm, args);
		dprintf(STDERR_FILENO, "fvmctl: cannot execute %s: %s\n", fvm, strerror(errno));
		_exit(127);
	}
	vm.pid = pid;
	r = fvmctl_pid_write(vm.pid_path, pid);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fvmctl_error(ctl, "cannot write %s: %s", vm.pid_path, strerror(-r));
		return FVMCTL_EFAIL;
	}

	for (long waited = 0;; waited += 20) {
		struct fvmctl_reply reply;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fvmctl_error(ctl, "fvm for '%s' exited during start-up (%s %d)", name,
				     WIFEXITED(status) ? "status" : "signal",
				     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			log_tail(vm.log_path, 10);
			fvmctl_vm_remove_files(&vm, false);
			return FVMCTL_EFAIL;
		}
		if (fvmctl_http(vm.sock, "GET", "/", NULL, 1000, &reply) == 0) {
			fvmctl_reply_release(&reply);
			break;
		}
		if (waited >= timeout_ms) {
			fvmctl_error(ctl,
				     "the API of '%s' did not come up within %ld ms (pid %d "
				     "left running; 'fvmctl stop %s')",
				     name, timeout_ms, (int)pid, name);
			return FVMCTL_ETIMEOUT;
		}
		sleep_ms(20);
	}
	vm.alive = true;
	vm.has_sock = true;
	*ret = vm;
	return FVMCTL_OK;
}

static void print_started(const struct fvmctl *ctl, const struct fvmctl_vm *vm)
{
	if (ctl->json)
		fvmctl_print_json(json_pack("{ss si ss ss}", "name", vm->name, "pid", (int)vm->pid,
					    "socket", vm->sock, "log", vm->log_path));
	else
		printf("%s\n", vm->name);
}

static long parse_seconds(const struct fvmctl *ctl, const char *s, long *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < 0 || v > 86400) {
		fvmctl_error(ctl, "bad timeout '%s' (seconds)", s);
		return -EINVAL;
	}
	*ret = (long)(v * 1000);
	return 0;
}

int fvmctl_cmd_run(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"timeout", required_argument, NULL, 't'}, {0}};
	long timeout_ms = FVMCTL_TIMEOUT_MS;
	struct fvmctl_vm vm;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "t:", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c != 't' || parse_seconds(ctl, optarg, &timeout_ms) < 0)
			return fvmctl_usage(ctl, true);
	}
	if (optind >= argc)
		return fvmctl_usage(ctl, true);
	r = start_vm(ctl, argv[optind], argv + optind + 1, argc - optind - 1, timeout_ms, &vm);
	if (r == FVMCTL_OK)
		print_started(ctl, &vm);
	return r;
}

int fvmctl_cmd_restore(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"resume", no_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    {0},
	};
	char state[FVMCTL_PATH_MAX], mem[FVMCTL_PATH_MAX];
	long timeout_ms = FVMCTL_TIMEOUT_MS;
	bool resume = false;
	struct fvmctl_vm vm;
	json_t *body;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "t:", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c == 'r')
			resume = true;
		else if (c != 't' || parse_seconds(ctl, optarg, &timeout_ms) < 0)
			return fvmctl_usage(ctl, true);
	}
	if (argc - optind < 3)
		return fvmctl_usage(ctl, true);
	if (fvmctl_abspath(argv[optind + 1], state, sizeof(state)) < 0 ||
	    fvmctl_abspath(argv[optind + 2], mem, sizeof(mem)) < 0) {
		fvmctl_error(ctl, "snapshot path too long");
		return FVMCTL_EUSAGE;
	}
	r = start_vm(ctl, argv[optind], argv + optind + 3, argc - optind - 3, timeout_ms, &vm);
	if (r != FVMCTL_OK)
		return r;
	body = json_pack("{ss ss sb}", "snapshot_path", state, "mem_file_path", mem, "resume_vm",
			 resume);
	r = fvmctl_api(ctl, &vm, "PUT", "/snapshot/load", body, 10 * FVMCTL_TIMEOUT_MS, NULL);
	json_decref(body);
	if (r != FVMCTL_OK) {
		/* A VM that failed to load is of no use: do not leave it behind. */
		kill(vm.pid, SIGKILL);
		waitpid(vm.pid, NULL, 0);
		fvmctl_vm_remove_files(&vm, false);
		return r;
	}
	print_started(ctl, &vm);
	return FVMCTL_OK;
}

/* SendCtrlAltDel if the guest runs, then SIGTERM, then SIGKILL. */
static int stop_vm(const struct fvmctl *ctl, const struct fvmctl_vm *vm, long timeout_ms,
		   bool force)
{
	_cleanup_free_ char *state = NULL;

	if (!force && vm->has_sock)
		state = fvmctl_vm_state(vm, 2000);
	if (state && strcmp(state, "Running") == 0) {
		json_t *body = json_pack("{ss}", "action_type", "SendCtrlAltDel");
		struct fvmctl_reply r;
		_cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
		bool asked = false;

		json_decref(body);
		if (text && fvmctl_http(vm->sock, "PUT", "/actions", text, 2000, &r) == 0) {
			/* A VMM that cannot pass the request on (501) gets no grace period. */
			asked = r.status >= 200 && r.status < 300;
			fvmctl_reply_release(&r);
		}
		if (asked && fvmctl_wait_exit(vm->pid, timeout_ms))
			return FVMCTL_OK;
	}
	if (!force) {
		kill(vm->pid, SIGTERM);
		if (fvmctl_wait_exit(vm->pid, 5000))
			return FVMCTL_OK;
	}
	kill(vm->pid, SIGKILL);
	if (fvmctl_wait_exit(vm->pid, 5000))
		return FVMCTL_OK;
	fvmctl_error(ctl, "%s: pid %d survived SIGKILL", vm->name, (int)vm->pid);
	return FVMCTL_ETIMEOUT;
}

int fvmctl_cmd_stop(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"force", no_argument, NULL, 'f'},
	    {0},
	};
	long timeout_ms = FVMCTL_TIMEOUT_MS;
	bool force = false;
	struct fvmctl_vm vm;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "t:f", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c == 'f')
			force = true;
		else if (c != 't' || parse_seconds(ctl, optarg, &timeout_ms) < 0)
			return fvmctl_usage(ctl, true);
	}
	if (optind + 1 != argc)
		return fvmctl_usage(ctl, true);
	r = fvmctl_vm_lookup(ctl, argv[optind], &vm);
	if (r < 0)
		return fvmctl_vm_open(ctl, argv[optind], &vm); /* prints why */
	if (!vm.alive) {
		fvmctl_vm_remove_files(&vm, false);
		fvmctl_error(ctl, "VM '%s' was not running (removed its stale socket)", vm.name);
		return FVMCTL_ENOTRUNNING;
	}
	if (!vm.pid) {
		fvmctl_error(ctl, "VM '%s' has no pid file: cannot stop it from here", vm.name);
		return FVMCTL_EFAIL;
	}
	r = stop_vm(ctl, &vm, timeout_ms, force);
	if (r != FVMCTL_OK)
		return r;
	fvmctl_vm_remove_files(&vm, false);
	if (ctl->json)
		fvmctl_print_json(json_pack("{ss ss}", "name", vm.name, "state", "stopped"));
	return FVMCTL_OK;
}

int fvmctl_cmd_rm(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0}};
	bool force = false;
	struct fvmctl_vm vm;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "f", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c != 'f')
			return fvmctl_usage(ctl, true);
		force = true;
	}
	if (optind + 1 != argc)
		return fvmctl_usage(ctl, true);
	r = fvmctl_vm_lookup(ctl, argv[optind], &vm);
	if (r < 0)
		return fvmctl_vm_open(ctl, argv[optind], &vm); /* prints why */
	if (vm.alive) {
		if (!force) {
			fvmctl_error(ctl,
				     "VM '%s' is running (pid %d): stop it first, or rm --force",
				     vm.name, (int)vm.pid);
			return FVMCTL_EEXIST;
		}
		if (!vm.pid) {
			fvmctl_error(ctl, "VM '%s' has no pid file: cannot stop it from here",
				     vm.name);
			return FVMCTL_EFAIL;
		}
		r = stop_vm(ctl, &vm, 0, true);
		if (r != FVMCTL_OK)
			return r;
	}
	fvmctl_vm_remove_files(&vm, true);
	if (ctl->json)
		fvmctl_print_json(json_pack("{ss ss}", "name", vm.name, "state", "removed"));
	return FVMCTL_OK;
}

static int copy_fd(int in, long *pos)
{
	char buf[8192];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
		*pos += n;
	}
	fflush(stdout);
	return n < 0 ? neg_errno() : 0;
}

int fvmctl_cmd_logs(struct fvmctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"lines", required_argument, NULL, 'n'},
	    {0},
	};
	_cleanup_close_ int fd = -1;
	bool follow = false;
	long lines = -1, pos = 0;
	struct fvmctl_vm vm;
	int c, r;

	while ((c = fvmctl_getopt(ctl, argc, argv, "fn:", opts)) != -1) {
		if (c == 'h')
			return fvmctl_usage(ctl, false);
		if (c == 'f')
			follow = true;
		else if (c == 'n')
			lines = strtol(optarg, NULL, 10);
		else
			return fvmctl_usage(ctl, true);
	}
	if (optind + 1 != argc)
		return fvmctl_usage(ctl, true);
	r = fvmctl_vm_lookup(ctl, argv[optind], &vm);
	if (r < 0)
		return fvmctl_vm_open(ctl, argv[optind], &vm); /* prints why */
	fd = open(vm.log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fvmctl_error(ctl, "%s: no log (%s)", vm.name, strerror(errno));
		return FVMCTL_ENOTFOUND;
	}
	if (lines == 0) {
		lseek(fd, 0, SEEK_END);
	} else if (lines > 0) {
		/* Find where the last N lines start, reading backwards in blocks. */
		off_t end = lseek(fd, 0, SEEK_END), at = end;
		long seen = 0;
		char buf[4096];

		/* The newline ending the last line does not count; the Nth before it does. */
		while (at > 0 && seen < lines) {
			size_t n = (size_t)MIN((off_t)sizeof(buf), at);

			at -= (off_t)n;
			if (pread(fd, buf, n, at) != (ssize_t)n)
				break;
			for (size_t i = n; i-- > 0;) {
				if (buf[i] == '\n' && at + (off_t)i != end - 1 && ++seen == lines) {
					at += (off_t)i + 1;
					goto found;
				}
			}
		}
	found:
		lseek(fd, at, SEEK_SET);
	}
	if (copy_fd(fd, &pos) < 0)
		return FVMCTL_EFAIL;
	while (follow && vm.pid && fvmctl_pid_alive(vm.pid)) {
		sleep_ms(200);
		if (copy_fd(fd, &pos) < 0)
			return FVMCTL_EFAIL;
	}
	return FVMCTL_OK;
}
