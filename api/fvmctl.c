// SPDX-License-Identifier: MIT
/*
 * fvmctl: the command line for fvm. A thin main: global options, the
 * command table, shared option parsing and usage.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fvm-config.h"
#include "fvmctl.h"
#include "util.h"

static const struct fvmctl_command {
	const char *name;
	fvmctl_cmd_fn fn;
	const char *args;
	const char *summary;
	const char *help; /* the command's own options, one per line */
} commands[] = {
    {"run", fvmctl_cmd_run, "[--timeout S] NAME [FVM_FLAGS...]", "start a VM in the background",
     "  --timeout S   wait at most S seconds for its API (default 10)\n"
     "  FVM_FLAGS are passed to fvm; the console goes to NAME.log\n"},
    {"ls", fvmctl_cmd_ls, "", "list VMs and their state", ""},
    {"info", fvmctl_cmd_info, "NAME", "show a VM's state and configuration", ""},
    {"pause", fvmctl_cmd_pause, "NAME", "pause a VM's vCPUs", ""},
    {"resume", fvmctl_cmd_resume, "NAME", "resume a paused VM", ""},
    {"stop", fvmctl_cmd_stop, "[--timeout S] [--force] NAME", "stop a VM",
     "  --timeout S   wait S seconds for a clean guest shutdown (default 10),\n"
     "                then SIGTERM, then SIGKILL\n"
     "  --force       SIGKILL at once\n"},
    {"rm", fvmctl_cmd_rm, "[--force] NAME", "remove a stopped VM's files",
     "  --force       stop it first if it runs\n"},
    {"logs", fvmctl_cmd_logs, "[-f] [-n N] NAME", "print a VM's console log",
     "  -f, --follow  keep printing while the VM runs\n"
     "  -n, --lines N only the last N lines\n"},
    {"snapshot", fvmctl_cmd_snapshot, "[--diff] [--keep-paused] NAME STATE_FILE MEM_FILE",
     "save a VM's state and memory",
     "  --diff        only memory written since the last snapshot\n"
     "  --keep-paused leave the VM paused afterwards\n"},
    {"restore", fvmctl_cmd_restore,
     "[--resume] [--timeout S] NAME STATE_FILE MEM_FILE [FVM_FLAGS...]",
     "start a new VM from a snapshot",
     "  --resume      run it at once (default: leave it paused)\n"},
    {"fork", fvmctl_cmd_fork, "[--prefix P] [--paused] TEMPLATE N",
     "fork N clones of a template VM",
     "  --prefix P    name clones P-<n> (default: the template's name)\n"
     "  --paused      leave the clones paused\n"
     "  A paused VM stays paused; a running one is paused for the fork\n"
     "  and runs on, on memory its clones do not share.\n"},
    {"exec", fvmctl_cmd_exec, "[-e K=V]... [-i] [--timeout S] VM -- CMD [ARGS...]",
     "run a command in a VM",
     "  -e K=V        set an environment variable (repeatable)\n"
     "  -i, --stdin   send fvmctl's standard input to the command\n"
     "  --timeout S   give up after S seconds (default 30)\n"
     "  Exits with the command's status (128+N for signal N, 124 on timeout).\n"},
    {"invoke", fvmctl_cmd_invoke, "[-e K=V]... [-i] [--timeout S] TEMPLATE -- CMD [ARGS...]",
     "fork a clone, run a command in it, destroy it", "  Options as for exec.\n"},
    {"disk", fvmctl_cmd_disk, "SUBCOMMAND ...", "inspect and manage disk images", ""},
};

static const struct fvmctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

void fvmctl_error(const struct fvmctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fvmctl%s%s: ", ctl && ctl->cmd ? " " : "",
		ctl && ctl->cmd ? ctl->cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void fvmctl_print_json(json_t *doc)
{
	if (!doc) {
		fputs("null\n", stdout);
		return;
	}
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
	json_decref(doc);
}

static void usage_main(FILE *out)
{
	fprintf(out, "usage: fvmctl [--json] [--runtime-dir DIR] COMMAND [ARGS...]\n"
		     "\n"
		     "Drive fvm microVMs by name. Each VM has NAME.sock, NAME.pid and NAME.log in\n"
		     "the runtime directory ($FVM_RUNTIME_DIR, else $XDG_RUNTIME_DIR/fvm, else\n"
		     "/run/fvm).\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nEvery command takes --help and --json (machine-readable output).\n"
		     "Exit codes: 0 ok, 1 failure, 2 usage, 3 no such VM, 4 VM not running,\n"
		     "5 refused by the VM, 6 not implemented by the VM, 7 API unreachable,\n"
		     "8 timeout, 9 name in use.\n");
}

int fvmctl_usage(const struct fvmctl *ctl, bool error)
{
	const struct fvmctl_command *c = find_command(ctl->cmd);
	FILE *out = error ? stderr : stdout;

	if (!c)
		return FVMCTL_EUSAGE;
	fprintf(out, "usage: fvmctl %s %s\n%s.\n", c->name, c->args, c->summary);
	if (c->help[0])
		fprintf(out, "\n%s", c->help);
	fprintf(out, "  -j, --json    machine-readable output\n  -h, --help    this text\n");
	return error ? FVMCTL_EUSAGE : FVMCTL_OK;
}

int fvmctl_getopt(struct fvmctl *ctl, int argc, char **argv, const char *shortopts,
		  const struct option *longopts)
{
	struct option all[16];
	char shorts[64];
	size_t n = 0;
	int c;

	/* '+': stop at the first operand, so that VM flags and commands pass untouched. */
	snprintf(shorts, sizeof(shorts), "+hj%s", shortopts);
	for (; longopts && longopts[n].name && n < ARRAY_SIZE(all) - 3; n++)
		all[n] = longopts[n];
	all[n++] = (struct option){"help", no_argument, NULL, 'h'};
	all[n++] = (struct option){"json", no_argument, NULL, 'j'};
	all[n] = (struct option){0};

	for (;;) {
		c = getopt_long(argc, argv, shorts, all, NULL);
		if (c != 'j')
			return c;
		ctl->json = true;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"runtime-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct fvmctl ctl = {0};
	const struct fvmctl_command *cmd;
	const char *dir = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "+jd:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctl.json = true;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'h':
			usage_main(stdout);
			return FVMCTL_OK;
		case 'V':
			printf("fvmctl %s\n", FVM_VERSION);
			return FVMCTL_OK;
		default:
			usage_main(stderr);
			return FVMCTL_EUSAGE;
		}
	}
	if (optind >= argc) {
		usage_main(stderr);
		return FVMCTL_EUSAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		fvmctl_error(NULL, "unknown command '%s' (see fvmctl --help)", argv[optind]);
		return FVMCTL_EUSAGE;
	}
	ctl.cmd = cmd->name;

	if (dir)
		r = snprintf(ctl.dir, sizeof(ctl.dir), "%s", dir) < (int)sizeof(ctl.dir) ? 0 : -1;
	else
		r = fvmctl_runtime_dir(ctl.dir, sizeof(ctl.dir));
	if (r < 0) {
		fvmctl_error(&ctl, "the runtime directory path is too long");
		return FVMCTL_EFAIL;
	}

	/* Once, before any thread could exist (libcurl's global setup is not thread-safe). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fvmctl_error(&ctl, "cannot initialize libcurl");
		return FVMCTL_EFAIL;
	}
	/* Each command parses its own argv from its name on; 0 makes getopt start afresh. */
	argc -= optind;
	argv += optind;
	optind = 0;
	return cmd->fn(&ctl, argc, argv);
}
