#include "sim/drivers.h"

namespace sriovd::kernel::sim {

namespace {

constexpr KnownVf kKnownVfs[] = {
    {0x8086, 0x1889, "iavf", 0x0000},   // E810 Adaptive Virtual Function
    {0x8086, 0x154c, "iavf", 0x0000},   // X710/XXV710/XL710 VF
    {0x8086, 0x10ca, "igbvf", -1},      // 82576 VF
    {0x8086, 0x1520, "igbvf", -1},      // I350 VF
    {0x8086, 0x10ed, "ixgbevf", -1},    // 82599 VF
    {0x8086, 0x1515, "ixgbevf", -1},    // X540 VF
    {0x8086, 0x1565, "ixgbevf", -1},    // X550 VF
    {0x15b3, 0x1016, "mlx5_core", -1},  // ConnectX-4 Lx VF
    {0x15b3, 0x1018, "mlx5_core", -1},  // ConnectX-5 VF
    {0x15b3, 0x101e, "mlx5_core", -1},  // ConnectX family mlx5Gen VF
    {0x144d, 0xa824, "nvme", -1},       // PM173x: VFs carry the PF's device id
};

}  // namespace

const KnownVf* known_vf(uint16_t vendor, uint16_t device) {
  for (const auto& k : kKnownVfs)
    if (k.vendor == vendor && k.device == device) return &k;
  return nullptr;
}

namespace {

constexpr PfOps kPfOps[] = {
    {"ice", true, true, true, true, VlanChecks::range_proto_vf},
    {"i40e", false, false, true, false, VlanChecks::vf_range_proto},
    {"ixgbe", false, false, true, false, VlanChecks::vf_range_proto},
    {"igb", false, false, false, false, VlanChecks::vf_range_proto},
    {"mlx5_core", false, true, true, false, VlanChecks::proto_vf_range},
};

}  // namespace

const PfOps* pf_ops(const std::optional<std::string>& driver) {
  if (!driver) return nullptr;
  for (const auto& o : kPfOps)
    if (*driver == o.driver) return &o;
  return nullptr;
}

bool igb_limits_vf_rates(uint16_t device) {
  // 82576, _FIBER, _SERDES, _QUAD_COPPER, _QUAD_COPPER_ET2, _NS, _NS_SERDES, _SERDES_QUAD.
  for (uint16_t id : {0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x1526, 0x150a, 0x1518, 0x150d})
    if (device == id) return true;
  return false;
}

bool leaves_sriov_on_remove(std::string_view driver) { return driver == "nvme" || driver == "pci-pf-stub"; }

bool makes_no_netdev(std::string_view driver) {
  return driver.find("vfio") != std::string_view::npos || driver.find("stub") != std::string_view::npos ||
         driver.find("uio") != std::string_view::npos;
}

}  // namespace sriovd::kernel::sim
