#include "iommu/groups.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

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
    if (only_bridges) v.reason = "only PCI bridges, which VFIO tolerates: nothing here to pass through";
    else if (sorted.size() == 1)
      v.reason = sorted[0]->driver ? "the only member is bound to " + *sorted[0]->driver
                                   : "the only member is bound to no driver";
    else v.reason = "every non-bridge member is bound to vfio-pci, pci-stub or no driver";
  } else {
    v.viable = false;
    v.reason =
        (v.blocking.size() == 1 ? "member bound to a host driver: " : "members bound to host drivers: ") + blockers;
  }
  return v;
}

namespace {

// The trimmed `type` of group `number`, read relative to kernel/iommu_groups; nullopt when absent.
std::optional<std::string> group_type(int groups_fd, int number) {
  auto t = pci::read_at(groups_fd, (std::to_string(number) + "/type").c_str(), 64);
  if (!t) return std::nullopt;
  auto s = pci::trim(*t);
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

}  // namespace

std::unordered_map<int, std::string> read_group_types(const pci::SysfsRoot& root) {
  std::unordered_map<int, std::string> out;
  auto dir = pci::open_dir_at(root.fd(), "kernel/iommu_groups");
  if (!dir) return out;
  auto entries = pci::list_dir_fd(dir->get(), root.dir_end());
  if (!entries) return out;
  out.reserve(entries->size());
  for (const auto& e : *entries) {
    char* end = nullptr;
    long n = std::strtol(e.name.c_str(), &end, 10);
    if (e.name.empty() || *end != '\0' || n < 0 || n > INT32_MAX) continue;
    if (auto t = group_type(dir->get(), static_cast<int>(n))) out.emplace(static_cast<int>(n), std::move(*t));
  }
  return out;
}

std::map<int, Group> build_groups(const pci::SysfsRoot& root, const std::vector<const pci::Device*>& devices,
                                  const std::unordered_map<int, std::string>* types) {
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
  if (types) {
    for (auto& g : list)
      if (auto it = types->find(g.number); it != types->end()) g.type = it->second;
  } else if (auto dir = pci::open_dir_at(root.fd(), "kernel/iommu_groups")) {
    // A few groups (a hotplug): their files, relative to kernel/iommu_groups opened once.
    for (auto& g : list) g.type = group_type(dir->get(), g.number);
  }
  std::map<int, Group> groups;
  for (auto& g : list) groups.emplace(g.number, std::move(g));
  return groups;
}

}  // namespace sriovd::iommu
