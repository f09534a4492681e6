// Conformance checks: one set of operations with the outcomes (errnos, resulting tree) Linux 6.1
// gives, written once over a kernel::Kernel and the sysfs root it changes. They run against
// SimKernel on a generated host (conformance_sim_test) and against LinuxKernel on /sys in the QEMU
// lab (lab_conformance). Where SimKernel and Linux disagree the checks assert Linux's behaviour.
// The checks use doctest assertions, so they must be called from inside a TEST_CASE.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/pci_address.h"
#include "kernel/kernel.h"

namespace sriovd::conformance {

struct Target {
  kernel::Kernel& kernel;
  std::filesystem::path sysfs;  // the root `kernel` writes under ("/sys" in the lab)
  PciAddress pf;                // an SR-IOV PF bound to a driver with sriov_configure, >= 5 TotalVFs
  bool real = false;            // a real kernel: /dev/vfio/<group> is checked as well
};

// 1. sriov_numvfs: 0→4, 4 again, 4→2 EBUSY, >total ERANGE, garbage EINVAL, 4→0.
void check_sriov_numvfs(Target& t);
// 2. A VF to vfio-pci via driver_override + drivers_probe and back; bind/unbind misuse errnos.
void check_vfio_binding(Target& t);
// 3. The Agent end to end (state in `state_dir`, which must exist and be empty).
void check_agent(Target& t, const std::filesystem::path& state_dir);
// 4. VF attributes through Kernel::set_vf/get_vfs on a PF netdev with at least 8 VFs enabled.
void check_vf_attributes(kernel::Kernel& k, const std::string& pf_ifname);
// 5. Kernel::set_mtu on a netdev whose driver takes 9000 (read back from <sysfs>/class/net/<if>/mtu):
//    9000, below ETH_MIN_MTU and above ETH_MAX_MTU EINVAL with the MTU unchanged, no such netdev
//    ENODEV, and back to what it was.
void check_set_mtu(kernel::Kernel& k, const std::filesystem::path& sysfs, const std::string& ifname);
// 6. Kernel::get/set_eswitch_mode on devlink device bus/dev, whose port netdev is `pf_ifname`
//    and which has `num_vfs` (>= 2) VFs enabled: legacy at first with no representors;
//    switchdev brings one representor per VF (a netdev of the same device, phys_port_name
//    "pf0vf<N>", the PF's phys_switch_id); switchdev again is no change; legacy takes them
//    away; a device devlink does not know is ENODEV.
void check_eswitch(kernel::Kernel& k, const std::filesystem::path& sysfs, const std::string& bus,
                   const std::string& dev, const std::string& pf_ifname, unsigned num_vfs);

}  // namespace sriovd::conformance
