// Kernel: the seam between sriovd and the kernel it changes (leveldb's Env, for sysfs and
// rtnetlink).
//
// Reads never go through here: every reader decodes files under a sysfs root (pci/SysfsRoot),
// the same code in production and tests. Changes do: writing sysfs attributes, and rtnetlink
// requests for VF attributes and link facts. Implementations:
//   LinuxKernel  — writes the real attributes under its sysfs root, talks rtnetlink (libmnl);
//   SimKernel    — applies to a fake tree what the kernel would (creates VFs on sriov_numvfs,
//                  moves driver links, keeps VF attributes in the tree) with the kernel's errnos;
//   FaultKernel  — wraps another and fails the Nth change with a chosen errno (rollback tests).
// Errors carry the kernel's errno (and, for netlink, its extended-ack text in the message).
// Implementations are thread-safe; callers serialise changes to one device themselves.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sriovd::kernel {

using MacAddress = std::array<uint8_t, 6>;

enum class LinkState : uint8_t { auto_ = 0, enable = 1, disable = 2 };  // IFLA_VF_LINK_STATE_*

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
  bool up = false;                       // IFF_UP
  std::vector<std::string> addresses;    // "192.0.2.1/24", "2001:db8::1/64" (not link-local)
  size_t routes = 0;                     // main-table routes through this link that were added
                                         // (not the kernel's own prefix/link-local routes)
};

class Kernel {
 public:
  virtual ~Kernel() = default;

  // Writes `value` to the attribute at `relpath` under the sysfs root, in one write(2), as
  // `echo -n value > attr` would (e.g. "bus/pci/devices/0000:17:00.0/sriov_numvfs", "8").
  // The error carries the kernel's errno (EBUSY, ERANGE, ENOENT, EINVAL...).
  virtual Result<void> write_attr(const std::string& relpath, std::string_view value) = 0;

  // RTM_GETLINK of the PF netdev with RTEXT_FILTER_VF: every VF's attributes (and stats).
  virtual Result<std::vector<VfInfo>> get_vfs(const std::string& pf_ifname) = 0;

  // One RTM_SETLINK on the PF netdev carrying the set fields of `config` for VF `vf`. The kernel
  // applies the attributes in order and stops at the first error, leaving earlier ones applied:
  // callers that need all-or-nothing send one group per call and undo on failure.
  virtual Result<void> set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) = 0;

  // Link facts for a netdev, for interlocks (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE).
  virtual Result<LinkFacts> get_link(const std::string& ifname) = 0;
};

}  // namespace sriovd::kernel
