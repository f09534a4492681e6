// The simulated netdevs and their rtnetlink side: netdev directories a driver's probe
// registers and its remove takes away (names, ifindexes from dev_new_index, MACs), finding a
// netdev by name (rtnl_dev_get), and the calls on it: get_vfs and set_vf (the PF driver's VF
// attributes, rtnetlink.c do_setvfinfo with each driver's ndo_set_vf_* checks), get_link,
// set_link_addresses, set_vf_stats. Functions of one Call, under SimKernel's lock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

// A netdev found by name.
struct Netdev {
  std::string name;
  std::string dir;         // the netdev's directory (under the root)
  std::optional<Dev> pci;  // the PCI function it belongs to, if any
};

Result<unsigned> new_ifindex(Call& cx);

std::string free_eth_name(Call& cx);

// A VF's netdev address when no admin MAC is set: a VF driver picks a random locally
// administered one (eth_hw_addr_random); the sim derives it from the address instead so
// trees are deterministic: 02:5f:<domain hi>:<domain lo>:<bus>:<devfn>.
std::string generated_mac(const PciAddress& a, uint8_t tag);

std::string primary_netdev(Call& cx, const Dev& d);

Result<void> add_netdev(Call& cx, const Dev& d, const NetdevRecord& n, bool exact);

// What a NIC driver's probe registers.
// `vf_index` saves looking the VF up among its PF's virtfn links when the caller knows it.
Result<void> add_netdevs_for(Call& cx, const std::string& drv, const Dev& d, const Ids& ids,
                             std::optional<unsigned> vf_index = std::nullopt);

Result<void> remove_netdevs(Call& cx, const Dev& d);

Result<Netdev> netdev(Call& cx, const std::string& ifname);

Result<std::vector<VfInfo>> get_vfs(Call& cx, const std::string& ifname);

Result<LinkFacts> get_link(Call& cx, const std::string& ifname);

// igb_pci_sriov_configure() -> igb_sriov_reinit(): with VFs enabled or disabled, a running PF
// netdev is closed and opened again, and its link is back only once autonegotiation is done.
// The sim drops the carrier of the PF's up netdevs (carrier 0, operstate down) and brings it back
// `settle` later (kLinkSettleFile; 0, the default, keeps the link as it was). The time it comes
// back is kept in the netdev's directory (kLinkBackFile, wall-clock milliseconds), so another
// SimKernel on the tree (a restarted daemon) sees the same link.
constexpr const char* kLinkSettleFile = ".sriovd-sim/link_settle_ms";
constexpr const char* kLinkBackFile = ".sriovd-sim-link-back";
Result<void> reinit_link(Call& cx, const Dev& pf);

// A netdev's link as rtnetlink would report it, once a carrier due back is back (see
// reinit_link): IFF_UP, carrier, and when a carrier that is down comes back (none: nothing
// brings it back).
struct LinkState {
  bool up = false;
  bool carrier = false;
  std::optional<std::chrono::system_clock::time_point> back_at;
};
Result<LinkState> link_state(Call& cx, const std::string& ifname);

Result<void> set_link_addresses(Call& cx, const std::string& ifname, const std::vector<std::string>& addresses,
                                size_t routes);

Result<void> set_vf_stats(Call& cx, const std::string& ifname, uint32_t vf, const VfStats& st);

// net/core/rtnetlink.c do_setvfinfo(): the attributes in the kernel's order — MAC, VLAN (with
// QoS and protocol), rates, spoof check, link state, trust — each through the PF driver's
// ndo_set_vf_*, stopping at the first error with the earlier ones applied.
//
// A VfConfig maps to one IFLA_VF_INFO as LinuxKernel builds it: a set vlan/qos/vlan_proto is one
// IFLA_VF_VLAN (or IFLA_VF_VLAN_LIST with a protocol), which carries all three, so unset members
// are sent as vlan 0, qos 0, 802.1Q; min/max rates are one IFLA_VF_RATE whose unset member keeps
// the VF's current value (IFLA_VF_TX_RATE / `ip link` read it first). A VfConfig with nothing set
// sends nothing and succeeds, as LinuxKernel does.
Result<void> set_vf(Call& cx, const std::string& ifname, uint32_t vf, const VfConfig& c);

// The largest MTU a netdev of `driver` takes (its net_device's max_mtu, as the driver sets it at
// probe: the largest receive buffer less the Ethernet header, FCS and VLAN tags): mlx5_core 9978,
// ice/i40e/iavf 9702, ixgbe/ixgbevf 9710, igb/igbvf 9216, netdevsim 65535 (ETH_MAX_MTU); 9000
// for a driver not listed. The minimum is ETH_MIN_MTU (68) for all of them.
uint32_t max_mtu(const std::string& driver);

// A netdev's altnames, kept in a file of the sim's own in its directory (sysfs shows none).
Result<std::vector<std::string>> get_altnames(Call& cx, const std::string& ifname);
Result<void> add_altname(Call& cx, const std::string& ifname, const std::string& alt);

// dev_set_mtu() through rtnetlink (do_setlink's IFLA_MTU): dev_validate_mtu's EINVAL, with its
// extack text, outside [68, max_mtu]; otherwise the netdev's mtu attribute takes the value.
Result<void> set_mtu(Call& cx, const std::string& ifname, uint32_t mtu);

// A cable pulled or plugged on a running netdev: netif_carrier_off()/on(), and the operstate
// that follows (down, up); a carrier due back later (reinit_link) no longer is. A netdev that is
// administratively down has no carrier to change: ENETDOWN. Returns what the kernel's
// RTM_NEWLINK notification then says.
struct CarrierChange {
  int ifindex = 0;
  uint32_t flags = 0;     // ifi_flags: the netdev's flags, with IFF_RUNNING and IFF_LOWER_UP when it has carrier
  uint8_t operstate = 0;  // IF_OPER_UP or IF_OPER_DOWN
};
Result<CarrierChange> set_carrier(Call& cx, const std::string& ifname, bool carrier);

}  // namespace sriovd::kernel::sim
