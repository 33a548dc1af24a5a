// SPDX-License-Identifier: MIT
/*
 * fvmctl disk: the disk-image tools (create, info, check, commit ...) live
 * with the qcow2 engine in snapshot/; fvmctl only hands them its argv.
 *
 * FVMCTL_HAVE_DISK is set by api/meson.build when snapshot/ provides
 * disk-cmd.h and its library; until then the command says so.
 */
#include <string.h>

#include "fvmctl.h"

#if FVMCTL_HAVE_DISK
#include "disk-cmd.h"
#endif

int fvmctl_cmd_disk(struct fvmctl *ctl, int argc, char **argv)
{
#if FVMCTL_HAVE_DISK
	return fvmctl_disk(argc, argv);
#else
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return fvmctl_usage(ctl, false);
	fvmctl_error(ctl, "not built in: this fvmctl was built without snapshot/disk-cmd.h");
	return FVMCTL_EUNSUPPORTED;
#endif
}
