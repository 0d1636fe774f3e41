#ifndef FORGE_SUPPORT_H
#define FORGE_SUPPORT_H

/// Atomically swaps two paths (Linux renameat2 RENAME_EXCHANGE). Returns 0 or -1 with errno.
/// Used to replace an output folder in one step, so readers see the old or the new one.
int forge_exchange_paths(const char *a, const char *b);

// Child processes, signals and subreaping for `pretix-forge demo`.
#include "forge_process.h"

#endif
