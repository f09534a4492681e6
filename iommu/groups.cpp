#include "iommu/groups.h"

#include <algorithm>

#include "base/parallel.h"
#include "pci/decode.h"

namespace sriovd::iommu {

bool driver_allows_passthrough(const std::optional<std::string>& driver) {
  return !driver || *driver == "vfio-pci" || *driver == "pci-stub";
}

Verdict assess(const std::vector<const pci::Device*>& members) {
  Verdict v;
  std::vector<const pci::Device*> sorted = members;
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->address < b->address; });
  std::string blockers;
  for (const auto* d : sorted) {
    if (d->is_bridge() || driver_allows_passthrough(d->driver)) continue;
    v.blocking.push_back(d->address);
    if (!blockers.empty()) blockers += ", ";
    blockers += d->address.to_string() + " (" + *d->driver + ")";
  }
  if (sorted.empty()) {
    v.viable = false;
    v.reason = "the group has no PCI members";
  } else if (v.blocking.empty()) {
    v.viable = true;
    bool only_bridges = std::all_of(sorted.begin(), sorted.end(), [](auto* d) { return d->is_bridge(); });
    if (only_bridges)
      v.reason = "only PCI bridges, which VFIO tolerates: nothing here to pass through";
    else if (sorted.size() == 1)
      v.reason = sorted[0]->driver ? "the only member is bound to " + *sorted[0]->driver
                                   : "the only member is bound to no driver";
    else
      v.reason = "every non-bridge member is bound to vfio-pci, pci-stub or no driver";
  } else {
    v.viable = false;
    v.reason = (v.blocking.size() == 1 ? "member bound to a host driver: " : "members bound to host drivers: ") + blockers;
  }
  return v;
}

std::map<int, Group> build_groups(const pci::SysfsRoot& root, const std::vector<const pci::Device*>& devices) {
  std::map<int, std::vector<const pci::Device*>> by_group;
  for (const auto* d : devices)
    if (d->iommu_group) by_group[*d->iommu_group].push_back(d);
  std::vector<Group> list;
  list.reserve(by_group.size());
  for (auto& [n, members] : by_group) {
    Group& g = list.emplace_back();
    g.number = n;
    for (const auto* d : members) g.members.push_back(d->address);
    std::sort(g.members.begin(), g.members.end());
    g.verdict = assess(members);
  }
  // One `type` file per group (Linux >= 5.11; older kernels and some trees lack it): with a
  // group per VF that is a thousand reads, so spread them over the cores.
  parallel_for(list.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (auto t = root.read("kernel/iommu_groups/" + std::to_string(list[i].number) + "/type", 64)) {
        auto s = pci::trim(*t);
        if (!s.empty()) list[i].type = std::string(s);
      }
    }
  });
  std::map<int, Group> groups;
  for (auto& g : list) groups.emplace(g.number, std::move(g));
  return groups;
}

}  // namespace sriovd::iommu
