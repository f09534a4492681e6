#include "agent/host_model.h"

#include "pci/decode.h"
#include "pci/inventory.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

namespace sriovd::agent {

DeviceList::DeviceList(std::vector<DeviceView> sorted) {
  for (auto& v : sorted) push_back(std::move(v));
}

DeviceView& DeviceList::edit(size_t i) {
  auto& chunk = chunks_[i / kChunk];
  if (chunk.use_count() != 1) chunk = std::make_shared<std::vector<DeviceView>>(*chunk);
  return (*chunk)[i % kChunk];
}

void DeviceList::push_back(DeviceView v) {
  if (size_ % kChunk == 0) {
    chunks_.push_back(std::make_shared<std::vector<DeviceView>>());
    chunks_.back()->reserve(kChunk);
  } else if (chunks_.back().use_count() != 1) {
    chunks_.back() = std::make_shared<std::vector<DeviceView>>(*chunks_.back());
  }
  chunks_.back()->push_back(std::move(v));
  ++size_;
}

std::vector<DeviceView> DeviceList::to_vector() const {
  std::vector<DeviceView> out;
  out.reserve(size_);
  for (const auto& chunk : chunks_) out.insert(out.end(), chunk->begin(), chunk->end());
  return out;
}

DeviceIndex::DeviceIndex(const DeviceList& devices) {
  auto m = std::make_shared<Map>();
  m->reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) m->emplace(devices[i].device.address, i);
  m_ = std::move(m);
}

std::optional<uint32_t> read_netdev_mtu(const pci::SysfsRoot& root, const std::string& ifname) {
  auto t = root.read("class/net/" + ifname + "/mtu", 32);
  if (!t) return std::nullopt;
  auto n = pci::parse_int(pci::trim(*t), 0, UINT32_MAX);
  if (!n) return std::nullopt;
  return static_cast<uint32_t>(*n);
}

namespace {

// The MTU of the device's first netdev, from sysfs (nullopt: it has none, or it cannot be read).
std::optional<uint32_t> read_mtu(const pci::SysfsRoot& root, const pci::Device& d) {
  if (d.netdevs.empty()) return std::nullopt;
  return read_netdev_mtu(root, d.netdevs.front());
}

// What link_types and rdma selectors look at, for a device that is not a VF (see DeviceView).
void read_link_kind(const pci::SysfsRoot& root, DeviceView& v) {
  const pci::Device& d = v.device;
  if (d.physfn || d.netdevs.empty()) return;
  if (auto t = root.read("class/net/" + d.netdevs.front() + "/type", 32)) {
    const std::string_view n = pci::trim(*t);
    v.link_type = n == "1" ? std::string("ether") : n == "32" ? std::string("infiniband") : std::string(n);
  }
  auto ib = root.list("bus/pci/devices/" + d.address.to_string() + "/infiniband");
  v.rdma = ib && !ib->empty();
  const std::string net = "class/net/" + d.netdevs.front();
  LinkStatus link;
  if (auto c = root.read(net + "/carrier", 16)) link.carrier = pci::parse_bool01(pci::trim(*c));
  if (auto o = root.read(net + "/operstate", 32)) link.operstate = std::string(pci::trim(*o));
  v.link = std::move(link);
  // Representors: the PF's other netdevs whose phys_port_name is "pf<N>vf<M>" (the PF's own
  // netdev has none, or "p0": reading it fails with EOPNOTSUPP on most drivers).
  if (!d.sriov) return;
  for (size_t i = 1; i < d.netdevs.size(); ++i) {
    const std::string dir = "class/net/" + d.netdevs[i];
    auto port = root.read(dir + "/phys_port_name", 64);
    if (!port) continue;
    const std::string name(pci::trim(*port));
    const auto vf_at = name.find("vf");
    if (!name.starts_with("pf") || vf_at == std::string::npos) continue;
    auto vf = pci::parse_int(std::string_view(name).substr(vf_at + 2), 0, UINT16_MAX);
    if (!vf) continue;
    Representor r;
    r.vf = static_cast<uint32_t>(*vf);
    r.netdev = d.netdevs[i];
    r.phys_port_name = name;
    if (auto id = root.read(dir + "/phys_switch_id", 128)) r.phys_switch_id = std::string(pci::trim(*id));
    v.representors.push_back(std::move(r));
  }
}

// Gives the VF at `i` its PF's link, when that differs from what it has.
void give_pf_link(Snapshot& s, size_t i) {
  const DeviceView& vf = s.devices[i];
  if (!vf.device.physfn) return;
  const DeviceView* pf = s.find(*vf.device.physfn);
  std::optional<LinkStatus> link = pf ? pf->link : std::nullopt;
  std::optional<Representor> rep;
  if (pf && vf.device.vf_index)
    for (const auto& r : pf->representors)
      if (r.vf == static_cast<uint32_t>(*vf.device.vf_index)) rep = r;
  if (vf.pf_link != link) s.devices.edit(i).pf_link = std::move(link);
  if (s.devices[i].representor != rep) s.devices.edit(i).representor = std::move(rep);
}

}  // namespace

Result<std::shared_ptr<Snapshot>> build_snapshot(const pci::SysfsRoot& root, pci::NameDb* names, uint64_t generation,
                                                 kernel::Kernel* kernel) {
  // Open the name databases, and read the IOMMU groups' types, on other threads while the
  // functions are read.
  std::thread loader;
  if (names) loader = std::thread([names] { names->preload(); });
  std::unordered_map<int, std::string> group_types;
  std::thread types([&] { group_types = iommu::read_group_types(root); });
  auto inv = pci::scan(root);
  if (loader.joinable()) loader.join();
  types.join();
  if (!inv) return std::move(inv).error();
  auto snap = std::make_shared<Snapshot>();
  snap->sysfs_root = root.path().string();
  snap->warnings = std::move(inv->warnings);
  for (auto& d : inv->devices) {
    DeviceView v;
    if (names && d.vendor_id) {
      v.vendor_name = names->vendor(*d.vendor_id);
      if (d.device_id) v.device_name = names->device(*d.vendor_id, *d.device_id);
    }
    v.mtu = read_mtu(root, d);
    v.device = std::move(d);
    read_link_kind(root, v);
    snap->devices.push_back(std::move(v));
  }
  snap->index = DeviceIndex(snap->devices);
  std::vector<const pci::Device*> devices;
  devices.reserve(snap->devices.size());
  for (const auto& v : snap->devices) devices.push_back(&v.device);
  snap->groups = iommu::build_groups(root, devices, &group_types);
  for (size_t i = 0; i < snap->devices.size(); ++i) give_pf_link(*snap, i);
  if (kernel) {
    // One RTM_GETLINK per PF with a netdev: the attributes of all its VFs at once.
    std::map<std::pair<PciAddress, int>, size_t> vf_at;
    for (size_t i = 0; i < snap->devices.size(); ++i) {
      const auto& d = snap->devices[i].device;
      if (d.physfn && d.vf_index) vf_at[{*d.physfn, *d.vf_index}] = i;
    }
    // The altnames of every PF's netdev (pf_names selectors match them), one RTM_GETLINK each.
    for (size_t i = 0; i < snap->devices.size(); ++i) {
      const auto& d = snap->devices[i].device;
      if (!d.sriov || d.netdevs.empty()) continue;
      if (auto alt = kernel->get_altnames(d.netdevs.front()); alt && !alt->empty())
        snap->devices.edit(i).altnames = std::move(*alt);
    }
    // The eswitch mode of every PF whose driver has one (devlink pci/<address>).
    for (size_t i = 0; i < snap->devices.size(); ++i) {
      const auto& d = snap->devices[i].device;
      if (!d.sriov || !d.driver) continue;
      if (auto mode = kernel->get_eswitch_mode("pci", d.address.to_string()))
        snap->devices.edit(i).eswitch_mode = *mode;
    }
    for (const auto& v : snap->devices) {
      const auto& pf = v.device;
      if (!pf.sriov || pf.sriov->num_vfs == 0 || pf.netdevs.empty()) continue;
      auto vfs = kernel->get_vfs(pf.netdevs.front());
      if (!vfs) continue;  // a driver without VF ops: vf_config stays null
      for (const auto& info : *vfs) {
        auto it = vf_at.find({pf.address, static_cast<int>(info.index)});
        if (it != vf_at.end()) snap->devices.edit(it->second).vf_config = info.config;
      }
    }
  }
  snap->readiness = iommu::read_readiness(root);
  snap->taken_at = std::chrono::system_clock::now();
  snap->generation = generation;
  return snap;
}

namespace {

void name_view(DeviceView& v, pci::NameDb* names) {
  if (!names || !v.device.vendor_id) return;
  v.vendor_name = names->vendor(*v.device.vendor_id);
  if (v.device.device_id) v.device_name = names->device(*v.device.vendor_id, *v.device.device_id);
}

}  // namespace

// Not split: one pass that re-reads the changed functions, carries every other device and
// unchanged IOMMU group over from `before`, and rebuilds only the groups that changed; its
// stages share the work lists built at the top (todo, groups, vf_pfs).
Result<std::shared_ptr<Snapshot>> update_snapshot(const Snapshot& before, const pci::SysfsRoot& root,
                                                  pci::NameDb* names, const std::vector<PciAddress>& addresses,
                                                  uint64_t generation, kernel::Kernel* kernel) {
  auto snap = std::make_shared<Snapshot>();
  snap->sysfs_root = before.sysfs_root;
  snap->warnings = before.warnings;
  snap->readiness = before.readiness;
  snap->drift = before.drift;
  snap->devices = before.devices;  // the chunks are shared until a device in one changes
  snap->book = before.book;        // the leases its devices are marked with

  // A VF that comes or goes changes its PF's num_vfs, and the PF's own uevent cannot be relied
  // on: Linux sends none when VFs are disabled (sriov_disable(); only sriov_enable() sends a
  // "change"), and udevd may deliver a PF's "change" before its VFs' "add". So the PF of a VF
  // that came or went is read again too: the one sysfs names, or the one `before` knew. A VF
  // that was there and still is (a driver bound, an attribute changed) leaves its PF as it was.
  std::set<PciAddress> done;
  std::vector<PciAddress> todo(addresses.begin(), addresses.end());
  std::set<int> groups;           // groups to rebuild
  std::set<PciAddress> vf_pfs;    // PFs whose VFs' attributes to read again
  std::vector<DeviceView> fresh;  // functions not in `before`
  std::set<PciAddress> gone;
  std::vector<PciAddress> read_vfs;  // VFs read here, whose vf_index is to derive
  while (!todo.empty()) {
    const PciAddress a = todo.back();
    todo.pop_back();
    if (!done.insert(a).second) continue;
    auto it = before.index.find(a);
    const DeviceView* slot = it == before.index.end() ? nullptr : &before.devices[it->second];
    if (slot && slot->device.iommu_group) groups.insert(*slot->device.iommu_group);
    // Without its VF index: the PF is read in this loop too, and the indexes derived below.
    auto d = pci::read_function(root, a);
    if (!d) {
      if (d.error().code != ErrorCode::not_found) return std::move(d).error().context("reading " + a.to_string());
      if (slot) {
        gone.insert(a);
        if (const auto& pf = slot->device.physfn; pf && !done.count(*pf)) todo.push_back(*pf);
      }
      continue;
    }
    DeviceView v;
    v.device = std::move(*d);
    name_view(v, names);
    v.mtu = read_mtu(root, v.device);
    read_link_kind(root, v);
    if (kernel && v.device.sriov && !v.device.netdevs.empty())
      if (auto alt = kernel->get_altnames(v.device.netdevs.front())) v.altnames = std::move(*alt);
    if (kernel && v.device.sriov && v.device.driver)
      if (auto mode = kernel->get_eswitch_mode("pci", a.to_string())) v.eswitch_mode = *mode;
    if (v.device.iommu_group) groups.insert(*v.device.iommu_group);
    if (v.device.physfn) {
      read_vfs.push_back(a);
      vf_pfs.insert(*v.device.physfn);
      const bool came = !slot || slot->device.physfn != v.device.physfn;
      if (came && !done.count(*v.device.physfn)) todo.push_back(*v.device.physfn);
      if (came && slot && slot->device.physfn && !done.count(*slot->device.physfn))
        todo.push_back(*slot->device.physfn);
    }
    const uint32_t had = slot && slot->device.sriov ? slot->device.sriov->num_vfs : 0;
    if (const auto& sr = v.device.sriov; sr && sr->num_vfs != had) {
      // Its VF count changed: its VFs, the ones it has now and the ones it had, are read with it,
      // so that no snapshot shows a count its VFs do not match. (sriov_numvfs reads wait for the
      // write in progress: by then every VF it makes is in sysfs.)
      for (uint32_t i = 0; i < sr->num_vfs; ++i) {
        auto vf = pci::vf_address(a, *sr, i);
        if (!vf) break;
        todo.push_back(*vf);
      }
      if (had)
        for (const auto& o : before.devices)
          if (o.device.physfn == a) todo.push_back(o.device.address);
    }
    if (v.device.sriov && v.device.sriov->num_vfs > 0) vf_pfs.insert(v.device.address);
    if (slot) {
      // Keep the VF attributes until they are read again below (a VF that lost its PF's
      // netdev keeps none).
      if (!v.device.physfn) v.vf_config.reset();
      else v.vf_config = slot->vf_config;
      snap->devices.edit(it->second) = std::move(v);
    } else {
      fresh.push_back(std::move(v));
    }
  }
  if (!gone.empty() || !fresh.empty()) {
    // Functions came or went: positions move, so the list and its index are made anew.
    auto all = snap->devices.to_vector();
    std::erase_if(all, [&](const DeviceView& v) { return gone.count(v.device.address) != 0; });
    for (auto& v : fresh) all.push_back(std::move(v));
    std::sort(all.begin(), all.end(),
              [](const DeviceView& x, const DeviceView& y) { return x.device.address < y.device.address; });
    snap->devices = DeviceList(std::move(all));
    snap->index = DeviceIndex(snap->devices);
  } else {
    snap->index = before.index;
  }

  // PF links: to the VFs read here, and from the PFs read here to all their VFs.
  for (const auto& a : done) {
    const DeviceView* v = snap->find(a);
    if (!v) continue;
    if (v->device.physfn) {
      give_pf_link(*snap, snap->index.find(a)->second);
    } else if (v->device.sriov) {
      const pci::SriovInfo sr = *v->device.sriov;  // a copy: give_pf_link may copy v's chunk
      for (uint32_t i = 0; i < sr.num_vfs; ++i) {
        auto vf = pci::vf_address(a, sr, i);
        if (!vf) break;
        if (auto it = snap->index.find(*vf); it != snap->index.end()) give_pf_link(*snap, it->second);
      }
    }
  }

  // The VF indexes of the VFs read, from their PFs as read above or as they were.
  for (const auto& a : read_vfs) {
    auto it = snap->index.find(a);
    if (it == snap->index.end()) continue;
    pci::Device& vf = snap->devices.edit(it->second).device;
    const DeviceView* pf = snap->find(*vf.physfn);
    std::vector<pci::Device> pair;
    if (pf) pair.push_back(pf->device);
    pair.push_back(std::move(vf));
    std::sort(pair.begin(), pair.end(),
              [](const pci::Device& x, const pci::Device& y) { return x.address < y.address; });
    pci::derive_vf_indexes(root, pair);
    for (auto& d : pair)
      if (d.address == a) vf = std::move(d);
  }

  // IOMMU groups: the untouched ones as they were, the touched ones from their members now.
  snap->groups = before.groups;
  if (!groups.empty()) {
    // Their members now: the ones they had and the functions read here (no other function's
    // group link can have changed), found by address rather than by reading every device.
    std::set<PciAddress> maybe(done.begin(), done.end());
    for (int g : groups)
      if (auto it = before.groups.find(g); it != before.groups.end())
        maybe.insert(it->second.members.begin(), it->second.members.end());
    std::vector<const pci::Device*> members;
    for (const auto& a : maybe)
      if (const DeviceView* v = snap->find(a); v && v->device.iommu_group && groups.count(*v->device.iommu_group))
        members.push_back(&v->device);
    // Most changes leave every group as it was (a driver moved from one host driver to another,
    // an attribute changed): the groups are then still shared with `before`, not copied.
    auto rebuilt = iommu::build_groups(root, members);
    auto changed = [&](int g) {
      auto was = snap->groups.find(g);
      auto now = rebuilt.find(g);
      if (now == rebuilt.end()) return was != snap->groups.end();
      return was == snap->groups.end() || !(was->second == now->second);
    };
    if (std::any_of(groups.begin(), groups.end(), changed)) {
      auto& edit = snap->groups.edit();
      for (int g : groups) edit.erase(g);
      for (auto& [n, g] : rebuilt) edit.insert_or_assign(n, std::move(g));
    }
  }

  if (kernel) {
    for (const auto& pfa : vf_pfs) {
      const DeviceView* pf = snap->find(pfa);
      if (!pf || !pf->device.sriov || pf->device.sriov->num_vfs == 0 || pf->device.netdevs.empty()) continue;
      auto vfs = kernel->get_vfs(pf->device.netdevs.front());
      if (!vfs) continue;
      // Each VF at the address its index gives (offset and stride), not found by reading every
      // device; one that is not there is left alone.
      const pci::SriovInfo sr = *pf->device.sriov;  // a copy: edit() below may copy pf's chunk
      for (const auto& info : *vfs) {
        auto vf = pci::vf_address(pfa, sr, info.index);
        if (!vf) continue;
        auto it = snap->index.find(*vf);
        if (it == snap->index.end()) continue;
        const DeviceView& v = snap->devices[it->second];
        if (v.device.physfn != pfa || v.device.vf_index != static_cast<int>(info.index)) continue;
        if (v.vf_config != info.config) snap->devices.edit(it->second).vf_config = info.config;
      }
    }
  }
  snap->taken_at = std::chrono::system_clock::now();
  snap->generation = generation;
  return snap;
}

}  // namespace sriovd::agent
