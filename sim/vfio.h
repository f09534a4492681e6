// The simulated kernel's VFIO users: which (fake) processes hold an IOMMU group's
// /dev/vfio/<group> open, and vfio-pci's remove waiting for them.
//
// Linux 6.1: vfio_pci_remove → vfio_unregister_group_dev waits (wait_for_completion, no timeout)
// until every user has closed the device, so an unbind from vfio-pci — drivers/vfio-pci/unbind,
// a PF's sriov_numvfs going to 0 with VFs on vfio-pci — blocks its writer while a VM holds the
// device. The sim waits the same way, with a bound so a test that gets it wrong ends: after the
// bound the write fails with ETIMEDOUT and nothing is changed (Linux would still be waiting).
// Every unbind that found its device held counts in `blocked`, so a test can prove nobody
// reached the unbind while the device was held.
//
// State: <root>/.sriovd-sim/vfio.json, replaced whole by rename, under its own flock
// (.sriovd-sim/vfio.lock) rather than the tree's: a holder lets go while an unbind waits for it
// under the tree lock, as a VM exits while the kernel waits. Reads take no lock (the file is
// replaced whole). Stateless functions; thread-safe across threads and processes.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "kernel/kernel.h"

namespace sriovd::kernel::sim {

struct VfioState {
  std::map<unsigned, std::vector<FileHolder>> holders;  // by IOMMU group, path "/dev/vfio/<group>"
  std::map<std::string, size_t> blocked;                // by BDF: unbinds that found it held
  std::chrono::milliseconds bound{10000};               // how long an unbind waits
};

// The state under `root` (an empty one when there is none).
Result<VfioState> read_vfio(const std::filesystem::path& root);
// Reads, changes with `change` and writes back the state, under the exclusive flock.
Result<void> update_vfio(const std::filesystem::path& root, const std::function<Result<void>(VfioState&)>& change);

// vfio-pci's remove of the function `bdf` in IOMMU group `group`: returns at once when no
// process holds the group; else counts a blocked unbind and waits (inotify on the state
// directory) until none does, up to the state's bound, then ETIMEDOUT naming the holders.
Result<void> wait_until_closed(const std::filesystem::path& root, unsigned group, const std::string& bdf);

}  // namespace sriovd::kernel::sim
