// Which processes hold a file open: a scan of /proc/<pid>/fd, as fuser(1) does it.
//
// sriovd asks before it unbinds vfio-pci from a device: Linux's vfio-pci remove waits, without
// a bound, until every user has closed the device (vfio_unregister_group_dev), so an unbind of
// a device a VM holds would hang the caller until the VM stops. A VFIO user holds the device's
// group (/dev/vfio/<group>) or, on kernels with the device cdev (6.2 and later), the device's
// own /dev/vfio/devices/vfioN.
//
// Reads only; thread-safe (no shared state).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "kernel/kernel.h"

namespace sriovd::kernel {

// Every process under `proc_root` (normally "/proc") with a file descriptor whose link reads one
// of `paths` exactly. Processes that exit during the scan, and fd directories this process may not
// read (another user's, without CAP_SYS_PTRACE), are skipped: the result is what could be seen.
// An error only when `proc_root` itself cannot be listed: callers that guard an unbind with this
// must refuse then (fail closed).
Result<std::vector<FileHolder>> find_holders(const std::filesystem::path& proc_root,
                                             const std::vector<std::string>& paths);

}  // namespace sriovd::kernel
