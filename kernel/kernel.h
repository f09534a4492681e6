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
// One query is not a read of sysfs: which processes hold a device's VFIO nodes open (/proc),
// asked before anything takes a device off vfio-pci.
// Errors carry the kernel's errno (and, for netlink, its extended-ack text in the message).
// Implementations are thread-safe; callers serialise changes to one device themselves.
#pragma once

#include <sys/types.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"
#include "base/vf.h"

namespace sriovd::kernel {

// A process holding a file open (see Kernel::vfio_holders and kernel/open_files.h).
struct FileHolder {
  pid_t pid = 0;
  std::string comm;  // /proc/<pid>/comm, without the newline ("qemu-system-x86")
  std::string path;  // the held file, as its fd link reads ("/dev/vfio/12")
  bool operator==(const FileHolder&) const = default;
};

// "qemu-system-x86 (pid 4242), libvirtd (pid 17)": holders for a message.
inline std::string describe(const std::vector<FileHolder>& holders) {
  std::string s;
  for (const auto& h : holders) s += (s.empty() ? "" : ", ") + h.comm + " (pid " + std::to_string(h.pid) + ")";
  return s;
}

// "/dev/vfio/12, /dev/vfio/devices/vfio3": the held files, each once, for a message.
inline std::string held_paths(const std::vector<FileHolder>& holders) {
  std::string s;
  for (const auto& h : holders)
    if (s.find(h.path) == std::string::npos) s += (s.empty() ? "" : ", ") + h.path;
  return s;
}

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
  // A config with qos or vlan_proto but no vlan is refused before anything is sent (see
  // check_vf_vlan_fields), by every implementation alike.
  virtual Result<void> set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) = 0;

  // One RTM_SETLINK with IFLA_MTU on netdev `ifname` (`ip link set IFNAME mtu N`). EINVAL (with
  // the kernel's extended-ack text) below the device's min_mtu or above its max_mtu; ENODEV
  // when there is no such netdev.
  virtual Result<void> set_mtu(const std::string& ifname, uint32_t mtu) = 0;

  // The alternative names of netdev `ifname` (RTM_GETLINK: IFLA_PROP_LIST's IFLA_ALT_IFNAMEs, as
  // `ip link property add dev IFNAME altname NAME` gives them), in the kernel's order. Sysfs
  // does not show them. ENODEV when there is no such netdev.
  virtual Result<std::vector<std::string>> get_altnames(const std::string& ifname) = 0;

  // The embedded switch mode of devlink device bus/dev ("pci", "0000:17:00.0"; `devlink dev
  // eswitch show`): DEVLINK_CMD_ESWITCH_GET over generic netlink. EOPNOTSUPP when the driver has
  // no eswitch (igb, ixgbe); ENODEV when devlink knows no such device.
  virtual Result<EswitchMode> get_eswitch_mode(const std::string& bus, const std::string& dev) = 0;
  // DEVLINK_CMD_ESWITCH_SET. Going to switchdev the driver creates a representor netdev per VF
  // (phys_port_name "pf0vf3", the PF's phys_switch_id); back to legacy it removes them. Drivers
  // refuse while VFs are in use in ways they cannot carry over (EBUSY), with extack text.
  virtual Result<void> set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) = 0;

  // Link facts for a netdev, for interlocks (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE).
  virtual Result<LinkFacts> get_link(const std::string& ifname) = 0;

  // Waits up to `timeout` for netdev `ifname` to have a link (carrier: IFF_LOWER_UP), as link
  // notifications report it; true at once when it has one. False when the timeout passes first,
  // and at once when no carrier can come: the netdev is administratively down (IFF_UP clear).
  // Some PF drivers reset the link whenever VFs are enabled (igb: igb_sriov_reinit closes and
  // reopens the netdev, and autonegotiation takes seconds), and refuse VF rates until it is back.
  // ENODEV when the netdev is not there or goes away while waited for.
  virtual Result<bool> wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) = 0;

  // The processes holding the VFIO nodes of the PCI function at `address` open: its IOMMU
  // group's /dev/vfio/<group> and, on kernels with VFIO device cdevs (6.2+), its
  // /dev/vfio/devices/vfioN. Linux's vfio-pci remove waits without a bound until every user has
  // closed the device, so an unbind from vfio-pci (a driver change, a reset-and-release, VFs
  // removed by sriov_numvfs) of a held device blocks its caller for as long as, say, a VM runs:
  // ask this first. Empty when nothing holds them (a function without an IOMMU group has none).
  // An error means the question could not be answered; callers guarding a change refuse then.
  virtual Result<std::vector<FileHolder>> vfio_holders(const PciAddress& address) = 0;

  // vfio_holders for several functions at once, for a listing (GET /v1/pools): each address
  // that something holds, with its holders. A function that is gone is left out; any other
  // error fails the whole question. This default asks vfio_holders for each; LinuxKernel scans
  // the process table once for all of them.
  virtual Result<std::map<PciAddress, std::vector<FileHolder>>> vfio_holders_of(
      const std::vector<PciAddress>& addresses) {
    std::map<PciAddress, std::vector<FileHolder>> out;
    for (const auto& a : addresses) {
      auto held = vfio_holders(a);
      if (!held) {
        if (held.error().errnum == ENODEV) continue;
        return std::move(held).error();
      }
      if (!held->empty()) out.emplace(a, std::move(*held));
    }
    return out;
  }
};

// What set_vf refuses first, on any Kernel: qos or vlan_proto without vlan. IFLA_VF_VLAN (and
// IFLA_VF_VLAN_INFO) carry the VLAN ID, its priority and protocol as one struct, so "qos 3,
// whatever the VLAN is" cannot be sent: the kernel would read the missing ID as 0. An explicit
// vlan 0 with a qos is fine and means a priority tag: do_setvfinfo passes it through and every
// PF driver takes it (igb/ixgbe_ndo_set_vf_vlan enable a port VLAN when `vlan || qos`, i40e adds
// a pvid of qos << 13, ice stores it, mlx5 sets strip/insert). EINVAL naming the field.
inline Result<void> check_vf_vlan_fields(const VfConfig& c) {
  if ((c.qos || c.vlan_proto) && !c.vlan) {
    Error e = Error::make(ErrorCode::invalid,
                          "qos and vlan_proto are set together with vlan (IFLA_VF_VLAN carries all three)",
                          c.qos ? "qos" : "vlan_proto");
    e.errnum = EINVAL;
    return e;
  }
  return {};
}

}  // namespace sriovd::kernel
