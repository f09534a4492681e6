#include "agent/host_model.h"

#include "pci/inventory.h"

#include <thread>

namespace sriovd::agent {

Result<std::shared_ptr<const Snapshot>> build_snapshot(const pci::SysfsRoot& root, pci::NameDb* names,
                                                       uint64_t generation) {
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
  snap->readiness = iommu::read_readiness(root);
  snap->taken_at = std::chrono::system_clock::now();
  snap->generation = generation;
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace sriovd::agent
