// LinuxKernel: the production Kernel — writes real sysfs attributes and talks rtnetlink.
//
// Sysfs writes go through one directory fd opened on the sysfs root (default "/sys"; any
// directory in tests): openat(root, relpath, O_WRONLY|O_CLOEXEC) and one write(2) of the value,
// so the driver's store() sees the value exactly once and its errno comes back unchanged. VF
// attributes and link facts go over NETLINK_ROUTE (net/rtnl.h builds and decodes the messages);
// all requests go over one RtnlSocket, opened on first use and held under a mutex, so a
// LinuxKernel is thread-safe and a call never sees another call's replies. The network
// namespace is the one of the thread that made the first netlink call.
//
// Errors carry the kernel's errno and say what was attempted: the sysfs path and value, or the
// netdev, VF and attributes plus the kernel's extended-ack text ("setting VF 3 of eth0 (mac
// 02:00:00:00:03:03): RTM_SETLINK: <extack>: Invalid argument").
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/fd.h"
#include "base/mutex.h"
#include "kernel/kernel.h"
#include "net/rtnl_socket.h"

namespace sriovd::kernel {

struct LinuxKernelOptions {
  // The longest any one netlink answer (a dump included) may take.
  std::chrono::milliseconds netlink_timeout = net::RtnlSocket::kDefaultTimeout;
  // Where vfio_holders looks for processes and what their fd links to VFIO nodes read: the
  // real /proc and /dev; tests point them at trees of their own.
  std::filesystem::path proc_root = "/proc";
  std::filesystem::path dev_root = "/dev";
};

class LinuxKernel final : public Kernel {
 public:
  using Options = LinuxKernelOptions;

  // Opens `sysfs_root` (a directory; not checked to be sysfs, so tests may use any tree).
  static Result<std::unique_ptr<LinuxKernel>> open(const std::filesystem::path& sysfs_root = "/sys",
                                                   Options options = {});

  // `relpath` must be relative and free of ".." (EINVAL otherwise): writes stay under the root.
  // The value is written as given, with no newline added and no O_TRUNC (sysfs has no file
  // contents to truncate; on a plain file in a test tree, a shorter value overwrites only the
  // start). A short write is an EIO error.
  Result<void> write_attr(const std::string& relpath, std::string_view value) override;

  // RTM_GETLINK of `pf_ifname` with RTEXT_FILTER_VF. A netdev without VFs (or without SR-IOV)
  // gives an empty list. If the answer with counters is unusable (a PF with so many VFs that the
  // kernel cannot fit them, or fewer entries than IFLA_NUM_VF), asks again without counters
  // (RTEXT_FILTER_SKIP_STATS) and returns the VFs without stats.
  Result<std::vector<VfInfo>> get_vfs(const std::string& pf_ifname) override SRIOVD_EXCLUDES(sock_mu_);

  // One RTM_SETLINK (net::build_set_vf) on the PF's ifindex. Nothing set: succeeds without
  // asking the kernel. min_tx_rate without max_tx_rate: reads the VF's current max rate first
  // (IFLA_VF_RATE carries both; iproute2 does the same), so the call is then not atomic against
  // a concurrent rate change. A config the builder refuses (qos without vlan) is EINVAL without
  // a request.
  Result<void> set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) override
      SRIOVD_EXCLUDES(sock_mu_);

  // One RTM_GETLINK of `ifname` without VF data.
  Result<std::vector<std::string>> get_altnames(const std::string& ifname) override SRIOVD_EXCLUDES(sock_mu_);

  // One RTM_SETLINK (net::build_set_mtu) on the netdev's ifindex.
  Result<void> set_mtu(const std::string& ifname, uint32_t mtu) override SRIOVD_EXCLUDES(sock_mu_);

  // RTM_GETLINK (ifindex, IFF_UP), RTM_GETADDR dump (addresses of the link, IPv6 link-local left
  // out), RTM_GETROUTE dump (routes in the main table with the link among their output
  // interfaces, multipath next hops included, cloned cache entries not).
  Result<LinkFacts> get_link(const std::string& ifname) override SRIOVD_EXCLUDES(sock_mu_);

  // On a socket of its own (the shared one stays free for other calls while this waits): joins
  // RTNLGRP_LINK, then RTM_GETLINK of `ifname`, then reads link notifications for its ifindex
  // until IFF_LOWER_UP (true), IFF_UP cleared (false), RTM_DELLINK (ENODEV) or the timeout
  // (false). Lost notifications (ENOBUFS) are made up for by asking again.
  Result<bool> wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) override;

  // The device's IOMMU group (its iommu_group link under the sysfs root) gives
  // <dev_root>/vfio/<group>; each entry of its vfio-dev/ directory (6.2+) a
  // <dev_root>/vfio/devices/vfioN. Then kernel/open_files.h find_holders over proc_root: the
  // processes this one may inspect (all of them as root). ENODEV when the device is not there.
  Result<std::vector<FileHolder>> vfio_holders(const PciAddress& address) override;
  Result<std::map<PciAddress, std::vector<FileHolder>>> vfio_holders_of(
      const std::vector<PciAddress>& addresses) override;

  // DEVLINK_CMD_ESWITCH_GET/SET (net/devlink.h) on a NETLINK_GENERIC socket of their own; the
  // devlink family's id is asked of the controller once.
  Result<EswitchMode> get_eswitch_mode(const std::string& bus, const std::string& dev) override
      SRIOVD_EXCLUDES(genl_mu_);
  Result<void> set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) override
      SRIOVD_EXCLUDES(genl_mu_);

  const std::filesystem::path& sysfs_root() const { return root_path_; }

 private:
  LinuxKernel(std::filesystem::path root_path, UniqueFd root, Options options)
      : root_path_(std::move(root_path)), root_(std::move(root)), options_(std::move(options)) {}
  // The one NETLINK_ROUTE socket every request goes through, opened on first use; the caller
  // holds sock_mu_. RtnlSocket reopens itself when an answer was left half-read.
  Result<net::RtnlSocket*> socket() const SRIOVD_REQUIRES(sock_mu_);
  // The /dev nodes a VFIO user of the function at `address` holds: its group's and, with device
  // cdevs, its own (none without an IOMMU group). ENODEV when the function is not there.
  Result<std::vector<std::string>> vfio_nodes(const PciAddress& address);

  // The generic netlink socket and the devlink family id, on first use; the caller holds genl_mu_.
  Result<std::pair<net::RtnlSocket*, uint16_t>> devlink() const SRIOVD_REQUIRES(genl_mu_);

  mutable Mutex genl_mu_;
  mutable std::optional<net::RtnlSocket> genl_ SRIOVD_GUARDED_BY(genl_mu_);
  mutable uint16_t devlink_family_ SRIOVD_GUARDED_BY(genl_mu_) = 0;
  mutable Mutex sock_mu_;
  mutable std::optional<net::RtnlSocket> sock_ SRIOVD_GUARDED_BY(sock_mu_);
  const std::filesystem::path root_path_;
  const UniqueFd root_;  // O_PATH|O_DIRECTORY on the sysfs root; immutable
  const Options options_;
};

}  // namespace sriovd::kernel
