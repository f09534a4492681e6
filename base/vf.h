// The VF vocabulary shared by every layer: what rtnetlink carries for a VF (VfConfig), what the
// kernel reports of one (VfInfo, VfStats), and what the interlocks need to know of a netdev
// (LinkFacts). Plain values, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mac_address.h"

namespace sriovd {

enum class LinkState : uint8_t { auto_ = 0, enable = 1, disable = 2 };  // IFLA_VF_LINK_STATE_*

// A PF's embedded switch mode (devlink's DEVLINK_ESWITCH_MODE_*): legacy (MAC/VLAN steering,
// VF attributes through the PF) or switchdev (a representor netdev per VF; rules offloaded
// with tc, OVS or bridges).
enum class EswitchMode : uint16_t { legacy = 0, switchdev = 1 };
inline const char* to_string(EswitchMode m) { return m == EswitchMode::legacy ? "legacy" : "switchdev"; }
inline std::optional<EswitchMode> parse_eswitch_mode(std::string_view s) {
  if (s == "legacy") return EswitchMode::legacy;
  if (s == "switchdev") return EswitchMode::switchdev;
  return std::nullopt;
}

// VF attributes as rtnetlink carries them (IFLA_VF_*). In a request, unset fields are left
// alone; in an answer, unset means the driver did not report it.
struct VfConfig {
  std::optional<MacAddress> mac;
  std::optional<uint16_t> vlan;        // 0..4095, 0 = none
  std::optional<uint8_t> qos;          // 0..7, only with vlan
  std::optional<uint16_t> vlan_proto;  // ETH_P_8021Q (0x8100) or ETH_P_8021AD (0x88a8)
  std::optional<uint32_t> max_tx_rate_mbps;
  std::optional<uint32_t> min_tx_rate_mbps;
  std::optional<bool> spoofchk;
  std::optional<bool> trust;
  std::optional<LinkState> link_state;
  // Not an IFLA_VF attribute: the MTU of the VF's own netdev (IFLA_MTU on it, while a host
  // driver gives it one). Kernel::set_vf leaves it out; get_vfs never reports it.
  std::optional<uint32_t> mtu;

  bool operator==(const VfConfig&) const = default;
};

struct VfStats {
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t broadcast = 0, multicast = 0, rx_dropped = 0, tx_dropped = 0;
};

struct VfInfo {
  uint32_t index = 0;
  VfConfig config;
  std::optional<VfStats> stats;
};

// What the interlocks need to know of a netdev: is it up, does it carry addresses or routes.
struct LinkFacts {
  std::string ifname;
  int ifindex = 0;
  bool up = false;                     // IFF_UP
  std::vector<std::string> addresses;  // "192.0.2.1/24", "2001:db8::1/64" (not link-local)
  size_t routes = 0;                   // main-table routes through this link that were added
                                       // (not the kernel's own prefix/link-local routes)
};

}  // namespace sriovd
