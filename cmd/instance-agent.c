// SPDX-License-Identifier: MIT
/*
 * The guest agent, seen from the VMM: giving a VM its identity (after a
 * boot, a restore or a fork), POST /exec, and POST /invoke.
 *
 * Identity: once the VM runs, a thread reaches the agent over the VM's own
 * vsock socket (CONNECT <port>) and sends who the VM is: hostname (the
 * VM's name), the first interface's MAC and IPv4 address, fresh entropy
 * for the guest's RNG, and the time. Until that is acknowledged exec
 * waits, so a command never runs with the template's hostname or random
 * state. The guest needs a while to boot, and a paused VM answers
 * nothing, so the thread retries until a deadline that only counts
 * running time.
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agent-client.h"
#include "agent-proto.h"
#include "instance-internal.h"
#include "vm-devices.h"

enum {
	/* A booting guest's agent comes up within this much running time. */
	AGENT_BOOT_WAIT_MS = 180 * 1000,
	AGENT_RETRY_MS = 100,
	/* One attempt's handshake (the guest may be busy). */
	AGENT_CONNECT_MS = 3000,
	AGENT_IDENTIFY_MS = 10 * 1000,
	AGENT_ENTROPY_BYTES = 64,
	/* Beyond the command's own timeout: the round trip and the agent's kill. */
	EXEC_GRACE_MS = 5000,
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- identity ---- */

/* What one VM tells its agent; strings stored here, pointed to by `id`. */
struct identity {
	struct agent_identity id;
	char hostname[API_NAME_MAX];
	uint8_t entropy[AGENT_ENTROPY_BYTES];
};

/* "a.b.c.d/len" into address and prefix. */
static int parse_cidr(const char *s, uint8_t addr[4], uint8_t *ret_prefix)
{
	char copy[48], *slash, *end;
	unsigned long prefix;

	snprintf(copy, sizeof(copy), "%s", s);
	slash = strchr(copy, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || prefix > 32 || inet_pton(AF_INET, copy, addr) != 1)
		return -EINVAL;
	*ret_prefix = (uint8_t)prefix;
	return 0;
}

/* The first interface's address and gateway (patterns, expanded for clone n). */
static int identity_address(const struct vm_net_config *net, uint32_t n,
			    struct agent_identity *id, char *why, size_t why_len)
{
	char ip[48], gw[48];

	if (vm_config_expand(net->guest_ip, n, ip, sizeof(ip)) < 0 ||
	    vm_config_expand(net->guest_gateway, n, gw, sizeof(gw)) < 0) {
		snprintf(why, why_len, "the guest address patterns do not expand for %u", n);
		return -EINVAL;
	}
	if (ip[0] && parse_cidr(ip, id->ipv4, &id->prefix) < 0) {
		snprintf(why, why_len, "guest address '%s' is not an IPv4 a.b.c.d/prefix", ip);
		return -EINVAL;
	}
	id->has_ipv4 = ip[0] != '\0';
	if (gw[0] && (!ip[0] || inet_pton(AF_INET, gw, id->gateway) != 1)) {
		snprintf(why, why_len, "guest gateway '%s' is not an IPv4 address (beside an address)",
			 gw);
		return -EINVAL;
	}
	id->has_gateway = gw[0] != '\0';
	return 0;
}

/* Who VM `name` is (n: its clone number, 0 when not a clone). */
static int build_identity(const struct vm_config *cfg, const char *name, uint32_t n,
			  struct identity *ret, char *why, size_t why_len)
{
	struct agent_identity *id = &ret->id;
	struct timespec now;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->hostname, sizeof(ret->hostname), "%s", name[0] ? name : "fvm");
	id->hostname = ret->hostname;
	if (cfg->nr_nets > 0) {
		const struct vm_net_config *net = &cfg->nets[0];
		int r;

		id->ifname = "eth0";
		if (n > 0) {
			vm_net_mac(net, 0, n, id->mac);
			id->has_mac = true;
		}
		r = identity_address(net, n, id, why, why_len);
		if (r < 0)
			return r;
	}
	if (getrandom(ret->entropy, sizeof(ret->entropy), 0) != sizeof(ret->entropy)) {
		snprintf(why, why_len, "getrandom failed: %s", strerror(errno));
		return -EIO;
	}
	id->entropy = ret->entropy;
	id->entropy_len = sizeof(ret->entropy);
	clock_gettime(CLOCK_REALTIME, &now);
	id->has_realtime = true;
	id->realtime_sec = (uint64_t)now.tv_sec;
	id->realtime_nsec = (uint32_t)now.tv_nsec;
	return 0;
}

/*
 * Say hello, then hand over the identity: the agent is ready for commands
 * after this. A step the guest could not apply (no eth0, say) is worth a
 * warning, not the loss of the agent: the others were applied.
 */
static int greet_agent(int fd, const char *vm, const struct identity *ident, char *why,
		       size_t why_len)
{
	uint32_t version;
	int r = agent_hello(fd, AGENT_CONNECT_MS, &version, why, why_len);

	if (r >= 0)
		r = agent_identify(fd, &ident->id, AGENT_IDENTIFY_MS, why, why_len);
	if (r == -EREMOTEIO) {
		log_warn("%s: the guest agent applied only part of the identity: %s", vm, why);
		r = 0;
	}
	return r;
}

/*
 * Reach the agent behind uds_path and greet it with ident, retrying until
 * deadline_ms of running time has passed: with inst given, paused time
 * does not count (a paused VM cannot answer) and a stopped VM ends the
 * wait. A greeting that fails is retried too: right after a fork or a
 * restore the guest's vsock driver resets every connection it has when
 * it handles the transport reset, which may come after ours was made.
 */
static int open_agent(const char *uds_path, uint32_t deadline_ms, struct instance *inst,
		      pid_t pid, const char *vm, const struct identity *ident, int *ret_fd,
		      char *why, size_t why_len)
{
	uint64_t spent = 0;

	for (;;) {
		enum vm_run_state state = inst ? instance_get_state(inst) : VM_STATE_RUNNING;
		uint64_t t0 = now_ms();
		int fd;

		if (pid > 0 && kill(pid, 0) < 0) {
			snprintf(why, why_len, "the clone's process ended");
			return -ECHILD;
		}
		if (state == VM_STATE_STOPPED) {
			snprintf(why, why_len, "the VM stopped");
			return -ESHUTDOWN;
		}
		if (state != VM_STATE_RUNNING) {
			sleep_ms(AGENT_RETRY_MS);
			continue;
		}
		if (agent_vsock_connect(uds_path, AGENT_VSOCK_PORT, AGENT_CONNECT_MS, &fd, why,
					why_len) >= 0) {
			if (greet_agent(fd, vm, ident, why, why_len) >= 0) {
				*ret_fd = fd;
				return 0;
			}
			close(fd);
		}
		sleep_ms(AGENT_RETRY_MS);
		spent += now_ms() - t0;
		if (spent >= deadline_ms)
			return -ETIMEDOUT;
	}
}

static void set_agent_state(struct instance *inst, enum instance_agent state, const char *why)
{
	pthread_mutex_lock(&inst->lock);
	inst->agent = state;
	snprintf(inst->agent_error, sizeof(inst->agent_error), "%s", why ? why : "");
	pthread_cond_broadcast(&inst->cond);
	pthread_mutex_unlock(&inst->lock);
}

static void *identify_thread(void *opaque)
{
	struct instance *inst = opaque;
	struct identity ident;
	char why[API_FAULT_MAX] = "";
	_cleanup_close_ int fd = -1;
	int r = build_identity(&inst->cfg, inst->name, inst->clone_number, &ident, why,
			       sizeof(why));

	if (r >= 0)
		r = open_agent(inst->cfg.vsock.uds_path, AGENT_BOOT_WAIT_MS, inst, 0, inst->name,
			       &ident, &fd, why, sizeof(why));
	if (r < 0) {
		if (r != -ESHUTDOWN)
			log_warn("%s%sguest agent: %s", inst->name, inst->name[0] ? ": " : "", why);
		set_agent_state(inst, AGENT_FAILED, why);
	} else {
		log_info("%s%sguest agent ready", inst->name, inst->name[0] ? ": " : "");
		set_agent_state(inst, AGENT_READY, NULL);
	}
	return NULL;
}

void instance_agent_start(struct instance *inst)
{
	pthread_attr_t attr;
	pthread_t thread;

	if (!inst->cfg.vsock.enabled)
		return;
	set_agent_state(inst, AGENT_WAITING, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, identify_thread, inst) != 0)
		set_agent_state(inst, AGENT_FAILED, "cannot start the identity thread");
	pthread_attr_destroy(&attr);
}

/* Wait until the agent took this VM's identity; fault f when it will not. */
static int wait_agent_ready(struct instance *inst, uint32_t timeout_ms, struct api_fault *f)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&inst->lock);
	while (inst->agent == AGENT_WAITING && r == 0)
		r = pthread_cond_timedwait(&inst->cond, &inst->lock, &deadline);
	switch (inst->agent) {
	case AGENT_READY:
		r = 0;
		break;
	case AGENT_WAITING:
		api_fault_set(f, "the guest agent is not up yet (try again, or a longer timeout_ms)");
		r = -ETIMEDOUT;
		break;
	case AGENT_FAILED:
		api_fault_set(f, "the guest agent cannot be reached: %s", inst->agent_error);
		r = -EIO;
		break;
	default:
		api_fault_set(f, "the VM has no vsock device: exec needs one (--vsock) and the "
				 "guest agent listening on port %u",
			      AGENT_VSOCK_PORT);
		r = -EINVAL;
		break;
	}
	pthread_mutex_unlock(&inst->lock);
	return r;
}

/* ---- exec ---- */

/* Run req through the agent on fd (greeted); the result's buffers become the API's. */
static int exec_on(int fd, const struct api_exec_request *req, struct api_exec_result *ret,
		   struct api_fault *f)
{
	struct agent_exec_request areq = {
	    .argv = req->argv,
	    .envp = req->envc ? req->envp : NULL,
	    .stdin_data = req->stdin_data,
	    .stdin_len = req->stdin_data ? req->stdin_len : 0,
	    .timeout_ms = req->timeout_ms,
	    /* One byte more than the API returns: that is how it tells a cut stream. */
	    .output_max = API_EXEC_OUTPUT_MAX + 1,
	};
	struct agent_exec_result res = {0};
	char why[API_FAULT_MAX] = "";
	int r = agent_exec(fd, &areq, &res, why, sizeof(why));

	if (r < 0) {
		api_fault_set(f, "exec through the guest agent failed: %s", why);
		return r == -EINVAL ? -EINVAL : -EIO;
	}
	ret->exit_code = res.exit_code;
	ret->signal = res.signal;
	ret->timed_out = res.timed_out;
	ret->stdout_buf = TAKE_PTR(res.out);
	ret->stdout_len = res.out_len;
	ret->stderr_buf = TAKE_PTR(res.err);
	ret->stderr_len = res.err_len;
	agent_exec_result_free(&res);
	return 0;
}

int instance_op_exec(void *opaque, const struct api_exec_request *req, struct api_exec_result *ret,
		     struct api_fault *f)
{
	struct instance *inst = opaque;
	char why[API_FAULT_MAX] = "";
	_cleanup_close_ int fd = -1;
	int r = wait_agent_ready(inst, req->timeout_ms, f);

	if (r < 0)
		return r;
	r = agent_vsock_connect(inst->cfg.vsock.uds_path, AGENT_VSOCK_PORT, AGENT_CONNECT_MS, &fd, why,
				sizeof(why));
	if (r >= 0)
		r = agent_hello(fd, AGENT_CONNECT_MS, &(uint32_t){0}, why, sizeof(why));
	if (r < 0) {
		api_fault_set(f, "cannot reach the guest agent: %s", why);
		return -EIO;
	}
	return exec_on(fd, req, ret, f);
}

/* ---- invoke: fork one clone, run the request in it, destroy it ---- */

/* The clone's leftovers: its sockets, disk overlays and (keep_log false) log. */
static void remove_clone_files(const struct instance *inst, const char *dir, const char *name,
			       bool keep_log)
{
	char path[API_SOCK_PATH_MAX + VM_CONFIG_ID_MAX + 16];
	static const char *const suffixes[] = {".sock", ".vsock", ".log"};

	for (size_t i = 0; i < ARRAY_SIZE(suffixes) - keep_log; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffixes[i]);
		unlink(path);
	}
	for (uint32_t i = 0; i < inst->cfg.nr_drives; i++) {
		snprintf(path, sizeof(path), "%s/%s-%s.qcow2", dir, name, inst->cfg.drives[i].id);
		unlink(path);
	}
}

static void destroy_clone(struct instance *inst, const struct api_clone *c, bool keep_log)
{
	char copy[API_SOCK_PATH_MAX];

	/*
	 * The kernel reaps clones (SA_NOCLDWAIT), and waitpid() would then wait
	 * for every clone: watch this one vanish instead.
	 */
	kill(c->pid, SIGKILL);
	for (int i = 0; i < 5000 && kill(c->pid, 0) == 0; i++)
		sleep_ms(1);
	snprintf(copy, sizeof(copy), "%s", c->api_sock);
	remove_clone_files(inst, dirname(copy), c->name, keep_log);
}

/*
 * Fork a clone and greet its agent: *ret_fd is ready for the command. A
 * clone that dies first is reported (-ECHILD) with its log kept.
 */
static int start_invoke_clone(struct instance *inst, const struct api_exec_request *req,
			      struct api_clone *ret_clone, int *ret_fd, struct api_fault *f)
{
	struct api_fork_request fork_req = {.count = 1, .resume = true};
	_cleanup_free_ struct api_clone_list *list = calloc(1, sizeof(*list));
	char vsock[API_SOCK_PATH_MAX + 8], why[API_FAULT_MAX] = "";
	struct identity ident;
	uint32_t n;
	int r;

	if (!list)
		return -ENOMEM;
	snprintf(fork_req.name_prefix, sizeof(fork_req.name_prefix), "%.*s-inv",
		 (int)sizeof(fork_req.name_prefix) - 5, inst->name);
	/* The clone leaves its identity to us: it must be in place before the command runs. */
	r = instance_fork(inst, &fork_req, true, list, &n, f);
	if (r < 0)
		return r;
	*ret_clone = list->clones[0];
	r = instance_clone_vsock_path(inst, ret_clone->name, vsock, sizeof(vsock));
	if (r >= 0)
		r = build_identity(&inst->cfg, ret_clone->name, n, &ident, why, sizeof(why));
	if (r >= 0)
		r = open_agent(vsock, req->timeout_ms, NULL, ret_clone->pid, ret_clone->name, &ident,
			       ret_fd, why, sizeof(why));
	if (r < 0) {
		/* The clone's console says what happened to it: keep it for whoever looks. */
		api_fault_set(f, "clone %s: the guest agent did not answer: %s (its console: %.*s.log)",
			      ret_clone->name, why, (int)(strlen(vsock) - strlen(".vsock")), vsock);
		destroy_clone(inst, ret_clone, true);
		return r == -ECHILD ? r : -EIO;
	}
	return 0;
}

int instance_op_invoke(void *opaque, const struct api_exec_request *req,
		       struct api_exec_result *ret, struct api_fault *f)
{
	struct instance *inst = opaque;
	struct api_clone clone;
	_cleanup_close_ int fd = -1;
	int r;

	if (!inst->cfg.vsock.enabled) {
		api_fault_set(f, "the template has no vsock device: invoke needs one (--vsock) and "
				 "the guest agent");
		return -EINVAL;
	}
	r = start_invoke_clone(inst, req, &clone, &fd, f);
	/* The command has not run yet: a clone lost before it may be replaced, once. */
	if (r == -ECHILD) {
		log_warn("%s: invoke: %s; trying another clone", inst->name, f->message);
		r = start_invoke_clone(inst, req, &clone, &fd, f);
	}
	if (r < 0)
		return r == -ECHILD ? -EIO : r;
	snprintf(ret->clone_name, sizeof(ret->clone_name), "%s", clone.name);
	r = exec_on(fd, req, ret, f);
	destroy_clone(inst, &clone, false);
	return r;
}
