// SPDX-License-Identifier: MIT
/*
 * The runtime directory: VM names to files, pid files, liveness, and
 * finding the fvm executable.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fvmctl.h"
#include "util.h"

int fvmctl_runtime_dir(char *buf, size_t len)
{
	const char *env = getenv("FVM_RUNTIME_DIR");
	int n;

	if (env && env[0])
		n = snprintf(buf, len, "%s", env);
	else if ((env = getenv("XDG_RUNTIME_DIR")) && env[0])
		n = snprintf(buf, len, "%s/fvm", env);
	else
		n = snprintf(buf, len, "/run/fvm");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The same rule as the API's ids, so that a VM name can prefix clone names. */
bool fvmctl_name_valid(const char *name)
{
	size_t n = 0;

	for (; name[n]; n++) {
		char c = name[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0 && n < FVMCTL_NAME_MAX;
}

/*
 * A zombie still answers kill(pid, 0) but is gone for our purposes; so is
 * a pid that does not exist. EPERM means it lives under another user.
 */
bool fvmctl_pid_alive(pid_t pid)
{
	char path[64], buf[512];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno != EPERM)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parens, so find the last ')'. */
	p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static int pid_read(const char *path, pid_t *ret)
{
	char buf[32];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	long v;
	char *end;

	if (fd < 0)
		return neg_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*ret = (pid_t)v;
	return 0;
}

int fvmctl_pid_write(const char *path, pid_t pid)
{
	char tmp[FVMCTL_PATH_MAX + 16], buf[32];
	_cleanup_close_ int fd = -1;
	int n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return neg_errno();
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	/* Readers must never see a half-written pid: write aside, then rename. */
	if (write(fd, buf, (size_t)n) != n || rename(tmp, path) < 0) {
		int r = neg_errno();

		unlink(tmp);
		return r;
	}
	return 0;
}

int fvmctl_vm_paths(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret)
{
	struct fvmctl_vm vm = {0};
	int n;

	if (!fvmctl_name_valid(name))
		return -EINVAL;
	snprintf(vm.name, sizeof(vm.name), "%s", name);
	n = snprintf(vm.sock, sizeof(vm.sock), "%s/%s.sock", ctl->dir, name);
	if (n < 0 || (size_t)n >= sizeof(vm.sock))
		return -ENAMETOOLONG;
	/* Shorter than the socket path, which fits: these cannot be truncated. */
	if (snprintf(vm.pid_path, sizeof(vm.pid_path), "%s/%s.pid", ctl->dir, name) < 0 ||
	    snprintf(vm.log_path, sizeof(vm.log_path), "%s/%s.log", ctl->dir, name) < 0)
		return -EINVAL;
	*ret = vm;
	return 0;
}

int fvmctl_vm_lookup(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret)
{
	struct fvmctl_vm vm;
	struct stat st;
	int r;

	r = fvmctl_vm_paths(ctl, name, &vm);
	if (r < 0)
		return r;
	vm.has_sock = stat(vm.sock, &st) == 0 && S_ISSOCK(st.st_mode);
	if (pid_read(vm.pid_path, &vm.pid) < 0)
		vm.pid = 0;
	if (!vm.has_sock && !vm.pid && access(vm.log_path, F_OK) < 0)
		return -ENOENT;
	/* Without a pid file, the socket answering is the only sign of life. */
	if (vm.pid)
		vm.alive = fvmctl_pid_alive(vm.pid);
	else if (vm.has_sock) {
		struct fvmctl_reply reply;

		vm.alive = fvmctl_http(vm.sock, "GET", "/", NULL, 1000, &reply) == 0;
		if (vm.alive)
			fvmctl_reply_release(&reply);
	}
	*ret = vm;
	return 0;
}

int fvmctl_vm_open(const struct fvmctl *ctl, const char *name, struct fvmctl_vm *ret)
{
	struct fvmctl_vm vm;
	int r;

	r = fvmctl_vm_lookup(ctl, name, &vm);
	if (r == -EINVAL) {
		fvmctl_error(ctl, "'%s' is not a valid VM name ([A-Za-z0-9_-], 1 to %d characters)",
			     name, FVMCTL_NAME_MAX - 1);
		return FVMCTL_EUSAGE;
	}
	if (r == -ENOENT) {
		fvmctl_error(ctl, "no VM named '%s' in %s", name, ctl->dir);
		return FVMCTL_ENOTFOUND;
	}
	if (r < 0) {
		fvmctl_error(ctl, "%s: %s", name, strerror(-r));
		return FVMCTL_EFAIL;
	}
	if (!vm.alive || !vm.has_sock) {
		fvmctl_error(ctl,
			     "VM '%s' is not running (stale files; 'fvmctl rm %s' removes them)",
			     name, name);
		return FVMCTL_ENOTRUNNING;
	}
	*ret = vm;
	return FVMCTL_OK;
}

void fvmctl_vm_remove_files(const struct fvmctl_vm *vm, bool with_log)
{
	char vsock[sizeof(vm->sock) + 1];
	size_t len = strlen(vm->sock);

	/* A clone's vsock socket sits beside its API socket: <name>.vsock. */
	if (len > 5 && strcmp(vm->sock + len - 5, ".sock") == 0) {
		snprintf(vsock, sizeof(vsock), "%.*s.vsock", (int)(len - 5), vm->sock);
		unlink(vsock);
	}
	unlink(vm->sock);
	unlink(vm->pid_path);
	if (with_log)
		unlink(vm->log_path);
}

int fvmctl_abspath(const char *path, char *buf, size_t len)
{
	char cwd[FVMCTL_PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(buf, len, "%s", path);
	else if (!getcwd(cwd, sizeof(cwd)))
		return neg_errno();
	else
		n = snprintf(buf, len, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool executable_at(char *buf, size_t len, const char *dir, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", dir, rel);

	return n > 0 && (size_t)n < len && access(buf, X_OK) == 0;
}

int fvmctl_find_fvm(char *buf, size_t len)
{
	const char *env = getenv("FVM_BIN");
	char self[FVMCTL_PATH_MAX];
	_cleanup_free_ char *path = NULL;
	char *dir, *save = NULL;
	ssize_t n;

	if (env && env[0]) {
		if (snprintf(buf, len, "%s", env) >= (int)len)
			return -ENAMETOOLONG;
		return access(buf, X_OK) == 0 ? 0 : neg_errno();
	}
	/* Installed side by side, or in a build tree (fvm at the top, fvmctl in api/). */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		if (executable_at(buf, len, self, "fvm") || executable_at(buf, len, self, "../fvm"))
			return 0;
	}
	env = getenv("PATH");
	if (!env)
		return -ENOENT;
	path = strdup(env);
	if (!path)
		return -ENOMEM;
	for (dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
		if (dir[0] && executable_at(buf, len, dir, "fvm"))
			return 0;
	return -ENOENT;
}

bool fvmctl_wait_exit(pid_t pid, long timeout_ms)
{
	struct timespec step = {0, 20 * 1000 * 1000};

	for (long waited = 0; waited <= timeout_ms; waited += 20) {
		if (!fvmctl_pid_alive(pid))
			return true;
		nanosleep(&step, NULL);
	}
	return !fvmctl_pid_alive(pid);
}
