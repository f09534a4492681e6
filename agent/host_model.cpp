#include "agent/host_model.h"

#include "pci/inventory.h"

#include <map>
#include <thread>

namespace sriovd::agent {

Result<std::shared_ptr<Snapshot>> build_snapshot(const pci::SysfsRoot& root, pci::NameDb* names,
                                                 uint64_t generation, kernel::Kernel* kernel) {
  // Parse pci.ids on another thread while the tree is read.
  std::thread loader;
  if (names) loader = std::thread([names] { names->preload(); });
  auto inv = pci::scan(root);
  if (loader.joinable()) loader.join();
  if (!inv) return std::move(inv).error();
  auto snap = std::make_shared<Snapshot>();
  snap->sysfs_root = root.path().string();
  snap->warnings = std::move(inv->warnings);
  snap->devices.reserve(inv->devices.size());
  for (auto& d : inv->devices) {
    DeviceView v;
    if (names && d.vendor_id) {
      v.vendor_name = names->vendor(*d.vendor_id);
      if (d.device_id) v.device_name = names->device(*d.vendor_id, *d.device_id);
    }
    v.device = std::move(d);
    snap->index.emplace(v.device.address, snap->devices.size());
    snap->devices.push_back(std::move(v));
  }
  std::vector<const pci::Device*> devices;
  devices.reserve(snap->devices.size());
  for (const auto& v : snap->devices) devices.push_back(&v.device);
  snap->groups = iommu::build_groups(root, devices);
  if (kernel) {
    // One RTM_GETLINK per PF with a netdev: the attributes of all its VFs at once.
    std::map<std::pair<PciAddress, int>, size_t> vf_at;
    for (size_t i = 0; i < snap->devices.size(); ++i) {
      const auto& d = snap->devices[i].device;
      if (d.physfn && d.vf_index) vf_at[{*d.physfn, *d.vf_index}] = i;
    }
    for (const auto& v : snap->devices) {
      const auto& pf = v.device;
      if (!pf.sriov || pf.sriov->num_vfs == 0 || pf.netdevs.empty()) continue;
      auto vfs = kernel->get_vfs(pf.netdevs.front());
      if (!vfs) continue;  // a driver without VF ops: vf_config stays null
      for (const auto& info : *vfs) {
        auto it = vf_at.find({pf.address, static_cast<int>(info.index)});
        if (it != vf_at.end()) snap->devices[it->second].vf_config = info.config;
      }
    }
  }
  snap->readiness = iommu::read_readiness(root);
  snap->taken_at = std::chrono::system_clock::now();
  snap->generation = generation;
  return snap;
}

}  // namespace sriovd::agent
