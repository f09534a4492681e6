// PCI inventory: every function under <sysfs root>/bus/pci/devices, read into Device values.
//
// The reader works on any tree with the kernel's layout. It touches as few files per device as
// it can (a syscall is the unit of cost): one directory fd, `uevent` (driver, class, ids, slot in
// one read), `numa_node`, the `iommu_group` and `physfn` links, the sriov_* files only where
// `sriov_totalvfs` exists (PFs) and `net/` only where it exists. A file that is missing where
// the kernel always has it, unreadable, or garbage becomes a warning on that device; the device
// is still reported with what could be read. Thread-safe: it only reads.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "pci/device.h"
#include "pci/sysfs.h"

namespace sriovd::pci {

struct Inventory {
  std::vector<Device> devices;        // sorted by address
  std::vector<std::string> warnings;  // tree-level problems (entries that are not addresses)
};

// Reads every function. Fails only when bus/pci/devices itself cannot be listed.
Result<Inventory> scan(const SysfsRoot& root);

// Reads one function; not_found when it does not exist. VF index is derived from the PF's
// offset/stride (read here) or its virtfnN links.
Result<Device> read_device(const SysfsRoot& root, const PciAddress& address);

// Reads one function as read_device does but leaves a VF's vf_index unset: for a caller that
// has its PF read already and derives the index itself (derive_vf_indexes).
Result<Device> read_function(const SysfsRoot& root, const PciAddress& address);

// Fills vf_index for VFs from their PFs in `devices` (sorted by address).
void derive_vf_indexes(const SysfsRoot& root, std::vector<Device>& devices);

}  // namespace sriovd::pci
