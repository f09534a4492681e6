// HostModel: the daemon's picture of the host — devices, IOMMU groups, readiness — as immutable
// snapshots.
//
// A snapshot is built once from the sysfs root and never changed; readers take a
// shared_ptr<const Snapshot> and keep using it for as long as they like, from any thread, while a
// writer (a rescan, later hotplug and mutations) publishes a new one. Publishing is an atomic
// pointer swap, so readers never wait on a scan.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/lease.h"
#include "base/result.h"
#include "iommu/groups.h"
#include "iommu/readiness.h"
#include "kernel/kernel.h"
#include "pci/device.h"
#include "pci/names.h"
#include "pci/sysfs.h"

namespace sriovd::agent {

struct DeviceView {
  pci::Device device;
  std::optional<std::string> vendor_name;
  std::optional<std::string> device_name;
  std::optional<VfConfig> vf_config;  // VFs whose PF has a netdev answering rtnetlink
  std::optional<std::string> lease;   // the id of the lease holding it
};

// A snapshot's IOMMU groups by number, shared with the snapshot it was made from until one of
// them changes: most snapshots (a lease, one function re-read) leave every group as it was, and
// copying the groups was a good part of making one. Read like the std::map it holds.
class GroupMap {
 public:
  using Map = std::map<int, iommu::Group>;
  GroupMap() : m_(std::make_shared<Map>()) {}
  GroupMap(Map m) : m_(std::make_shared<Map>(std::move(m))) {}  // NOLINT: a map is a GroupMap

  Map::const_iterator begin() const { return m_->begin(); }
  Map::const_iterator end() const { return m_->end(); }
  Map::const_iterator find(int n) const { return m_->find(n); }
  size_t count(int n) const { return m_->count(n); }
  const iommu::Group& at(int n) const { return m_->at(n); }
  size_t size() const { return m_->size(); }
  bool empty() const { return m_->empty(); }

  // The groups to change, copied first when another snapshot shares them. Only for a snapshot
  // being built (not yet published): no one else can then be copying it.
  Map& edit() {
    if (m_.use_count() != 1) m_ = std::make_shared<Map>(*m_);
    return *m_;
  }

 private:
  std::shared_ptr<Map> m_;  // never null
};

struct Snapshot {
  std::string sysfs_root;
  std::vector<DeviceView> devices;               // sorted by address
  std::unordered_map<PciAddress, size_t> index;  // address → position in devices
  GroupMap groups;
  iommu::Readiness readiness;
  std::vector<std::string> warnings;      // tree-level
  std::vector<std::string> drift;         // desired state the host does not match
  std::shared_ptr<const LeaseBook> book;  // pools and leases (never null once published)
  std::chrono::system_clock::time_point taken_at;
  uint64_t generation = 0;

  const DeviceView* find(const PciAddress& a) const {
    auto it = index.find(a);
    return it == index.end() ? nullptr : &devices[it->second];
  }
};

// Reads the whole host. Names come from `names` (may be null: names stay null). With a kernel,
// VF attributes are read over rtnetlink from every PF that has a netdev and enabled VFs.
Result<std::shared_ptr<Snapshot>> build_snapshot(const pci::SysfsRoot& root, pci::NameDb* names, uint64_t generation,
                                                 kernel::Kernel* kernel = nullptr);

// The snapshot `before` with only `addresses` read again from the tree (hotplug), and with them
// the PFs of the VFs among them (then or now) and the VFs of a PF whose VF count changed: a
// function that is gone is dropped, a new one inserted, a changed one replaced; the IOMMU groups
// those functions were in or are in now are rebuilt with their verdicts; VF attributes are read
// again (one RTM_GETLINK per PF concerned) for the VFs among them and the VFs of PFs among them.
// Everything else is copied from `before`, which is not changed.
Result<std::shared_ptr<Snapshot>> update_snapshot(const Snapshot& before, const pci::SysfsRoot& root,
                                                  pci::NameDb* names, const std::vector<PciAddress>& addresses,
                                                  uint64_t generation, kernel::Kernel* kernel = nullptr);

class HostModel {
 public:
  std::shared_ptr<const Snapshot> current() const { return snap_.load(std::memory_order_acquire); }
  void publish(std::shared_ptr<const Snapshot> s) { snap_.store(std::move(s), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> snap_;
};

}  // namespace sriovd::agent
