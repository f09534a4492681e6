#include "iommu/readiness.h"

namespace sriovd::iommu {

Readiness read_readiness(const pci::SysfsRoot& root) {
  Readiness r;
  if (auto groups = root.list("kernel/iommu_groups")) r.iommu_group_count = static_cast<int>(groups->size());
  if (auto units = root.list("class/iommu"))
    for (auto& e : *units) r.iommus.push_back(e.name);
  // Groups exist only while an IOMMU driver translates (intel_iommu=on / amd_iommu); with
  // iommu=pt they still exist (type "identity") and VFIO still works.
  r.iommu_enabled = r.iommu_group_count > 0;
  r.vfio_loaded = root.exists("module/vfio");
  r.vfio_pci_loaded = root.exists("module/vfio_pci") || root.exists("bus/pci/drivers/vfio-pci");
  r.vfio_iommu_type1_loaded = root.exists("module/vfio_iommu_type1");
  if (!r.iommu_enabled)
    r.problems.emplace_back(
        "no IOMMU groups: enable the IOMMU (intel_iommu=on or amd_iommu=on) on the kernel command line");
  if (!r.vfio_pci_loaded) r.problems.emplace_back("vfio-pci is not loaded: modprobe vfio-pci");
  if (r.vfio_pci_loaded && !r.vfio_iommu_type1_loaded && r.vfio_loaded)
    r.problems.emplace_back("vfio_iommu_type1 is not loaded: modprobe vfio_iommu_type1");
  return r;
}

}  // namespace sriovd::iommu
