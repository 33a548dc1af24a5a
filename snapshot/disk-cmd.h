/* SPDX-License-Identifier: MIT */
/*
 * `fvmctl disk`: create, commit, inspect and check disk images. fvmctl's
 * main hands over its arguments from the word "disk" on (argv[0] is
 * "disk"); the command prints to stdout/stderr and returns an exit status.
 */
#pragma once

/* Exit status: 0 success, 1 failure, 2 bad command line (check: see --help). */
int fvmctl_disk(int argc, char **argv);
