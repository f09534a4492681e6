// Device: what sriovd knows of one PCI function, read from sysfs. A plain value type; the host
// model holds them in immutable snapshots.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/pci_address.h"

namespace sriovd::pci {

// SR-IOV capability of a physical function, from its sriov_* attributes.
struct SriovInfo {
  uint32_t total_vfs = 0;
  uint32_t num_vfs = 0;
  std::optional<uint16_t> vf_device_id;
  std::optional<bool> drivers_autoprobe;
  std::optional<uint32_t> offset;  // First VF Offset, in routing IDs
  std::optional<uint32_t> stride;  // VF Stride
};

// The address of VF `index` of the PF at `pf` (PCIe SR-IOV: the PF's routing ID + First VF
// Offset + index × VF Stride): nullopt when `sr` has no offset or stride, or the VF's routing ID
// would be past the last one (then so would every later VF's).
inline std::optional<PciAddress> vf_address(const PciAddress& pf, const SriovInfo& sr, uint32_t index) {
  if (!sr.offset || !sr.stride) return std::nullopt;
  const uint64_t rid = uint64_t{pf.routing_id()} + *sr.offset + uint64_t{index} * *sr.stride;
  if (rid > 0xffff) return std::nullopt;
  return PciAddress::from_routing_id(pf.domain, static_cast<uint16_t>(rid));
}

struct Device {
  PciAddress address;
  std::optional<uint16_t> vendor_id;
  std::optional<uint16_t> device_id;
  std::optional<uint16_t> subsystem_vendor_id;
  std::optional<uint16_t> subsystem_device_id;
  std::optional<uint32_t> class_id;  // 24 bits: base class, subclass, prog-if
  std::optional<std::string> driver;
  std::optional<int> iommu_group;
  std::optional<int> numa_node;       // nullopt when the kernel says -1
  std::vector<std::string> netdevs;   // sorted
  std::optional<PciAddress> physfn;   // set on VFs
  std::optional<int> vf_index;        // set on VFs whose index could be derived
  std::optional<SriovInfo> sriov;     // set on PFs
  std::vector<std::string> warnings;  // what could not be read, one line each

  bool is_bridge() const { return class_id && (*class_id >> 8) == 0x0604; }
  bool is_vf() const { return physfn.has_value(); }
};

}  // namespace sriovd::pci
