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
#include <cstddef>
#include <iterator>
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

// A netdev's link as sysfs shows it: `carrier` (nullopt when it cannot be read: the kernel
// answers EINVAL while the netdev is administratively down) and `operstate` (RFC 2863: up,
// down, lowerlayerdown, dormant, unknown...).
struct LinkStatus {
  std::optional<bool> carrier;
  std::string operstate;
  bool operator==(const LinkStatus&) const = default;
  bool has_carrier() const { return carrier == true; }
};

// A switchdev VF's representor: a netdev of its PF whose phys_port_name is "pf<N>vf<vf>".
struct Representor {
  uint32_t vf = 0;
  std::string netdev;
  std::string phys_port_name;  // "pf0vf3"
  std::string phys_switch_id;  // hex, the PF's ("" if unreadable)
  bool operator==(const Representor&) const = default;
};

struct DeviceView {
  pci::Device device;
  std::optional<std::string> vendor_name;
  std::optional<std::string> device_name;
  std::optional<VfConfig> vf_config;  // VFs whose PF has a netdev answering rtnetlink (IFLA_VF_*)
  std::optional<uint32_t> mtu;        // its first netdev's (class/net/<netdev>/mtu)
  std::vector<std::string> altnames;  // PFs: their first netdev's altnames (RTM_GETLINK)
  // Devices that are not VFs, with a netdev: its link type (class/net/<netdev>/type: 1 ether,
  // 32 infiniband; other ARPHRD_* numbers as digits) and whether the function has RDMA devices
  // (an infiniband/ directory with entries). A VF is selected by its PF's: its own netdev and
  // RDMA devices go while it is on vfio-pci.
  std::optional<std::string> link_type;
  bool rdma = false;
  // Devices that are not VFs, with a netdev: its link. VFs: their PF's (nullopt: the PF has no
  // netdev), kept in step when the PF is read again (a netlink link event re-reads it).
  std::optional<LinkStatus> link;
  std::optional<LinkStatus> pf_link;
  // PFs: the devlink eswitch mode (nullopt: the driver has no devlink eswitch, or it was not
  // asked), and the VF representors among its netdevs (switchdev mode). VFs: their representor,
  // kept in step with the PF's like pf_link.
  std::optional<EswitchMode> eswitch_mode;
  std::vector<Representor> representors;
  std::optional<Representor> representor;
  std::optional<std::string> lease;  // the id of the lease holding it
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
  // The same groups object as `other`'s (shared, so unchanged between the two).
  bool same(const GroupMap& other) const { return m_ == other.m_; }

 private:
  std::shared_ptr<Map> m_;  // never null
};

// A snapshot's devices, sorted by address, in chunks of 16 shared with the snapshot it was
// copied from until one of their devices changes: a lease, or a function read again, copies one
// chunk, not every device of the host. Read like a const std::vector.
class DeviceList {
 public:
  static constexpr size_t kChunk = 16;

  DeviceList() = default;
  explicit DeviceList(std::vector<DeviceView> sorted);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const DeviceView& operator[](size_t i) const { return (*chunks_[i / kChunk])[i % kChunk]; }

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = DeviceView;
    using difference_type = std::ptrdiff_t;
    using pointer = const DeviceView*;
    using reference = const DeviceView&;
    const_iterator() = default;
    const_iterator(const DeviceList* list, size_t i) : list_(list), i_(i) {}
    reference operator*() const { return (*list_)[i_]; }
    pointer operator->() const { return &(*list_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator was = *this;
      ++i_;
      return was;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const DeviceList* list_ = nullptr;
    size_t i_ = 0;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  // The device at `i` to change, its chunk copied first when another snapshot shares it. Only
  // for a snapshot being built (not yet published): no one else can then be copying it.
  DeviceView& edit(size_t i);
  // Appends a device that sorts after every other (building a list in order).
  void push_back(DeviceView v);
  std::vector<DeviceView> to_vector() const;

  size_t chunks() const { return chunks_.size(); }
  // Chunk `c`'s devices (positions c * kChunk on), shared: it stays as it is while held.
  std::shared_ptr<const std::vector<DeviceView>> chunk(size_t c) const { return chunks_[c]; }
  // Chunk `c` is the same object in this list and in `other`: its devices are the same ones, at
  // the same positions.
  bool same_chunk(const DeviceList& other, size_t c) const {
    return c < chunks_.size() && c < other.chunks_.size() && chunks_[c] == other.chunks_[c];
  }

 private:
  std::vector<std::shared_ptr<std::vector<DeviceView>>> chunks_;  // all full but the last
  size_t size_ = 0;
};

// Address → position in a DeviceList, shared between snapshots whose functions are the same
// ones (most snapshots: a lease, an attribute, a driver). Read like the map it holds.
class DeviceIndex {
 public:
  using Map = std::unordered_map<PciAddress, size_t>;
  DeviceIndex() : m_(std::make_shared<const Map>()) {}
  explicit DeviceIndex(const DeviceList& devices);

  Map::const_iterator find(const PciAddress& a) const { return m_->find(a); }
  Map::const_iterator end() const { return m_->end(); }
  size_t at(const PciAddress& a) const { return m_->at(a); }
  size_t size() const { return m_->size(); }
  // The same map as `other`'s: the two lists hold the same functions at the same positions.
  bool same(const DeviceIndex& other) const { return m_ == other.m_; }

 private:
  std::shared_ptr<const Map> m_;  // never null
};

// Which devices each pool holds, by position in the snapshot's device list, so that a lease
// does not match every function of the host against every pool's selectors. Made when a
// snapshot is published (agent::index_pools), carried over from the one before while its
// functions stay at their positions and the pools stay the same; valid for `pools` only.
struct PoolIndex {
  std::vector<PoolSpec> pools;                 // the pools it was made for, oldest first
  std::vector<std::vector<uint32_t>> members;  // per pool: its members' positions, ascending
};

struct Snapshot {
  std::string sysfs_root;
  DeviceList devices;  // sorted by address
  DeviceIndex index;   // address → position in devices
  GroupMap groups;
  iommu::Readiness readiness;
  std::vector<std::string> warnings;            // tree-level
  std::vector<std::string> drift;               // desired state the host does not match
  std::shared_ptr<const LeaseBook> book;        // pools and leases (never null once published)
  std::shared_ptr<const PoolIndex> pool_index;  // for book->pools (null: match every device)
  std::chrono::system_clock::time_point taken_at;
  uint64_t generation = 0;

  const DeviceView* find(const PciAddress& a) const {
    auto it = index.find(a);
    return it == index.end() ? nullptr : &devices[it->second];
  }
};

// The MTU of netdev `ifname` (class/net/<ifname>/mtu); nullopt when it cannot be read.
std::optional<uint32_t> read_netdev_mtu(const pci::SysfsRoot& root, const std::string& ifname);

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
