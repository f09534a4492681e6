// Internal to agent/: the checks the interlocks of pools and leases share.
#pragma once

#include <string>

#include <vector>

#include "agent/host_model.h"
#include "agent/pool.h"
#include "base/result.h"

namespace sriovd::agent {

// Devices a pool may ever hand out: not bridges, not host bridges or other system devices.
bool leasable(const pci::Device& d);

// The other non-bridge members of `address`'s IOMMU group that are bound to a host driver, as
// "0000:87:00.1 (snd_hda_intel), ...": what stops the group being viable once `address` is on
// vfio-pci. Empty when nothing does.
std::string group_blockers(const Snapshot& s, const iommu::Group& g, const PciAddress& address);

// The pool `v` belongs to on `s` (the oldest whose selectors match it), or null.
const PoolSpec* home_pool(const DeviceView& v, const Snapshot& s);

// What a vfio lease of `v` from `pool` (null: a lease outside every pool) takes with it: the
// other members of its IOMMU group that are not bridges. VFIO hands a group to one user whole
// (libvirt and kubevirt assign groups, not functions), so they are bound, reset and given back
// together. A member may go along when it is free and leasable and either in `pool` or in no
// pool and on no host driver (vfio-pci, pci-stub, none). A conflict names the others — leased,
// in another pool, on a host driver outside `pool`, not leasable — and says "not viable" when
// one of them is on a host driver.
Result<std::vector<const DeviceView*>> group_companions(const DeviceView& v, const Snapshot& s, const PoolSpec* pool);

// A 409 with `message` (and the request field it is about).
inline Error conflict(std::string message, std::string field = {}) {
  return Error::make(ErrorCode::conflict, std::move(message), std::move(field));
}

}  // namespace sriovd::agent
