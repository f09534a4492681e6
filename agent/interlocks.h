// Internal to agent/: the checks the interlocks of pools and leases share.
#pragma once

#include <string>

#include "agent/host_model.h"
#include "base/result.h"

namespace sriovd::agent {

// Devices a pool may ever hand out: not bridges, not host bridges or other system devices.
bool leasable(const pci::Device& d);

// The other non-bridge members of `address`'s IOMMU group that are bound to a host driver, as
// "0000:87:00.1 (snd_hda_intel), ...": what stops the group being viable once `address` is on
// vfio-pci. Empty when nothing does.
std::string group_blockers(const Snapshot& s, const iommu::Group& g, const PciAddress& address);

// A 409 with `message` (and the request field it is about).
inline Error conflict(std::string message, std::string field = {}) {
  return Error::make(ErrorCode::conflict, std::move(message), std::move(field));
}

}  // namespace sriovd::agent
