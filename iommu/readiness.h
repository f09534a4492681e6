// Host readiness for device passthrough: is an IOMMU translating, are the VFIO modules loaded.
// Read from the sysfs root only (kernel/iommu_groups, class/iommu, module/*, bus/pci/drivers/*),
// so it answers for a simulated host exactly as for a real one.
#pragma once

#include <string>
#include <vector>

#include "pci/sysfs.h"

namespace sriovd::iommu {

struct Readiness {
  bool iommu_enabled = false;       // the kernel created IOMMU groups
  std::vector<std::string> iommus;  // class/iommu entries (dmar0, ...)
  bool vfio_loaded = false;         // module/vfio
  bool vfio_pci_loaded = false;     // module/vfio_pci or bus/pci/drivers/vfio-pci
  bool vfio_iommu_type1_loaded = false;
  int iommu_group_count = 0;
  std::vector<std::string> problems;  // what stops passthrough, one sentence each
};

Readiness read_readiness(const pci::SysfsRoot& root);

}  // namespace sriovd::iommu
