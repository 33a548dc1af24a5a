// SPDX-License-Identifier: MIT
/*
 * `fvmctl disk` without the rest of fvmctl, for the CLI test: argv from
 * the word "disk" on, as fvmctl's main hands it over.
 */
#include "disk-cmd.h"

int main(int argc, char **argv)
{
	static char word[] = "disk";

	argv[0] = word;
	return fvmctl_disk(argc, argv);
}
