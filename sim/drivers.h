// The driver tables of the simulated kernel: which in-tree driver claims which VF device ids
// (and what those VFs report as subsystem device), how the PF drivers' ndo_set_vf_* differ, and
// the driver behaviours the PCI core cares about (SR-IOV left on at remove, no netdev). Static
// data from the Linux 6.1 drivers named next to each entry; pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sriovd::kernel::sim {

// VF device ids and the in-tree driver whose id table claims them. `subsystem_device` is what
// the VF reports when it differs from the PF's (Intel's VFs report 0x0000), -1 if the same.
struct KnownVf {
  uint16_t vendor, device;
  const char* driver;
  int subsystem_device;
};

// The entry for vendor:device, or nullptr.
const KnownVf* known_vf(uint16_t vendor, uint16_t device);

// How the PF drivers' ndo_set_vf_* differ (6.1 sources): whether 802.1ad port VLANs, min rates
// and forced link states are accepted, the order of the checks in ndo_set_vf_vlan, and whether
// the VF's netdev takes a new admin MAC at once (ice resets the VF, iavf re-reads its MAC) or
// only when its driver is reloaded (igb: "Reload the VF driver to make this change effective").
enum class VlanChecks : uint8_t {
  range_proto_vf,  // ice_set_vf_port_vlan
  proto_vf_range,  // mlx5e_set_vf_vlan → mlx5_eswitch_set_vport_vlan
  vf_range_proto,  // igb_ndo_set_vf_vlan, ixgbe_ndo_set_vf_vlan, i40e_ndo_set_vf_port_vlan
};
struct PfOps {
  const char* driver;
  bool qinq;        // ETH_P_8021AD accepted (ice only in Double VLAN Mode, assumed on)
  bool min_rate;    // min_tx_rate accepted; else EINVAL (i40e, ixgbe, igb)
  bool link_state;  // ndo_set_vf_link_state exists; else EOPNOTSUPP (igb)
  bool live_mac;    // the VF netdev's address follows a new admin MAC at once
  VlanChecks vlan_checks;
};

// The PF driver's ops, or nullptr: no driver, or one without ndo_set_vf_* the sim knows.
const PfOps* pf_ops(const std::optional<std::string>& driver);

// igb_ndo_set_vf_bw(): VF transmit rate limits exist on the 82576 only (hw->mac.type ==
// e1000_82576, set by igb_set_mac_type from the device id); every other igb model (I350, I210...)
// answers EOPNOTSUPP. True for the 82576 family's device ids (e1000_hw.h E1000_DEV_ID_82576*).
bool igb_limits_vf_rates(uint16_t device);

// PF drivers whose remove does not disable SR-IOV (nvme_remove; pci-pf-stub has no remove):
// pci_device_remove() → pci_iov_remove() only warns "driver left SR-IOV enabled after remove"
// and the VFs stay.
bool leaves_sriov_on_remove(std::string_view driver);

// Drivers that take a device without making a netdev of it (vfio-pci, pci-stub, pci-pf-stub,
// uio_pci_generic, igb_uio...).
bool makes_no_netdev(std::string_view driver);

}  // namespace sriovd::kernel::sim
