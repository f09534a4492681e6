// The simulated SR-IOV core (drivers/pci/iov.c, Linux 6.1): sriov_numvfs creating and removing
// VFs (their directories, virtfn/physfn links, IOMMU groups, the PF driver's VF table, the
// uevents), sriov_drivers_autoprobe, and which PF drivers can configure SR-IOV. Functions of
// one Call, under SimKernel's lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

// drivers/pci/iov.c sriov_disable() → pci_iov_remove_virtfn() for each VF: the VF is
// released from its driver and removed (links, IOMMU group, netdevs); NumVFs is cleared. The
// PF driver frees its per-VF state.
Result<void> disable_sriov(Call& cx, const Dev& pf);

// drivers/pci/iov.c sriov_enable() → sriov_add_vfs() → pci_iov_add_virtfn() for each VF:
// the device (ids from the PF and VF Device ID, a new IOMMU group when the PF has one), the
// bus notifiers (vfio-pci on the PF captures its VFs with driver_override), then
// pci_bus_add_device() → device_attach().
Result<void> enable_sriov(Call& cx, const Dev& pf, unsigned n);

// Whether the PF's bound driver can configure SR-IOV (pdev->driver->sriov_configure) and, if
// not, why. vfio-pci has the callback but fails it with ENOENT unless its enable_sriov module
// parameter is on (vfio_pci_sriov_configure).
std::optional<std::string> no_sriov_configure(Call& cx, const std::string& drv);

// drivers/pci/iov.c sriov_numvfs_store()
Result<void> store_sriov_numvfs(Call& cx, const Dev& pf, const std::string& buf);

// drivers/pci/iov.c sriov_drivers_autoprobe_store()
Result<void> store_sriov_drivers_autoprobe(const Dev& pf, const std::string& buf);

}  // namespace sriovd::kernel::sim
