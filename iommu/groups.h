// IOMMU groups and whether each can be handed to a guest through VFIO.
//
// A group is the unit of isolation: VFIO gives a guest a group only when no other member is
// driven by a host driver that could DMA into the guest's memory. sriovd calls a group viable
// when every member that is not a PCI bridge is bound to vfio-pci or pci-stub or to no driver
// (bridges are left to pcieport: VFIO tolerates them in a group). The verdict is a pure function
// of the members, so it is tested without a tree.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/pci_address.h"
#include "pci/device.h"
#include "pci/sysfs.h"

namespace sriovd::iommu {

struct Verdict {
  bool viable = false;
  std::string reason;                // one sentence, names the blocking members and drivers
  std::vector<PciAddress> blocking;  // members bound to host drivers

  bool operator==(const Verdict&) const = default;
};

struct Group {
  int number = 0;
  std::vector<PciAddress> members;  // sorted
  std::optional<std::string> type;  // kernel/iommu_groups/N/type: DMA, DMA-FQ, identity, blocked
  Verdict verdict;

  bool operator==(const Group&) const = default;
};

// True for the drivers a member may have in a viable group.
bool driver_allows_passthrough(const std::optional<std::string>& driver);

// The verdict for a group with these members (all of them; the order does not matter).
Verdict assess(const std::vector<const pci::Device*>& members);

// The `type` of every group under kernel/iommu_groups (Linux >= 5.11; empty when the tree has
// none), by number. Needs no inventory, so a full scan reads them alongside the devices.
std::unordered_map<int, std::string> read_group_types(const pci::SysfsRoot& root);

// Groups from the inventory's iommu_group links, with each group's type: from `types` when
// given (read_group_types), else read from the tree for these groups only.
std::map<int, Group> build_groups(const pci::SysfsRoot& root, const std::vector<const pci::Device*>& devices,
                                  const std::unordered_map<int, std::string>* types = nullptr);

}  // namespace sriovd::iommu
