// SimKernel: a fake kernel that applies to a sysfs tree what Linux would, with Linux's errnos.
//
// It works on any directory with the kernel's sysfs layout (sim/sim_tree.h), not only on
// trees tests/fixtures generates, and keeps all of its state in that tree, so a new SimKernel on
// the same root (a restarted daemon) carries on where the last one stopped. What each write does
// follows the kernel code named next to it in the sim/ piece that owns it (Linux 6.1):
//   bus/pci/devices/<PF>/sriov_numvfs      creates / removes VFs (iov.c sriov_numvfs_store)
//   bus/pci/devices/<PF>/sriov_drivers_autoprobe, <dev>/driver_override, <dev>/reset
//   bus/pci/drivers/<drv>/{bind,unbind,new_id,remove_id}, bus/pci/drivers_probe
//   any other existing attribute           its content is replaced
// and the rtnetlink calls keep VF attributes per PF the way the PF drivers (ice, i40e, ixgbe,
// igb, mlx5_core) accept or reject them (rtnetlink.c do_setvfinfo).
//
// State the kernel holds in memory lives in hidden files of the tree:
//   <root>/.sriovd-sim/boot.json        the tree as the first SimKernel saw it ("boot"): each
//                                       device's driver, ids and netdevs; written once
//   <root>/.sriovd-sim/state.json       dynamic ids (new_id), reset counts, last ifindex
//   <PF dir>/.sriovd-sim-vf/vfs.json   the VFs' attributes (mac, vlan, rates...) by VF index; gone
//                                       with the VFs
//   <netdev dir>/.sriovd-sim-link.json  addresses and route count (set_link_addresses)
//   <root>/.sriovd-sim/removed/<BDF>.json  what hot_remove took away, for hot_add
//   <root>/.sriovd-sim/vfio.json        fake processes holding /dev/vfio/<group> (sim/vfio.h)
//
// Like the kernel, it announces what it changes with uevents: "add", "remove", "bind",
// "unbind", "change" for PCI functions and "add"/"remove" for netdevs, as kernel-format
// datagrams (ACTION@DEVPATH, then KEY=VALUE pairs, NUL-separated) sent to the unix datagram
// socket <root>/.sriovd-sim/uevent.sock when someone (the daemon in --sim mode) listens there.
// They are sent when the call has finished, so the receiver reads the tree as it ends up.
//
// Thread-safe: one mutex serialises every call. Two SimKernels on one tree at the same time
// are not supported (one at a time, as one kernel per host). Each call also holds an flock on
// .sriovd-sim/lock, so a call is atomic with respect to the death of the process making it, as
// a syscall is: kill_between_calls() takes that lock before SIGKILL, and a crash test never
// leaves a tree half-changed that a real kernel would have changed whole. A failure in the middle of an
// operation leaves what was done so far, like the kernel does; the errno says which check
// failed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/mutex.h"
#include "base/pci_address.h"
#include "base/result.h"
#include "kernel/kernel.h"
#include "sim/uevent_sender.h"

namespace sriovd::kernel {

class SimKernel : public Kernel {
 public:
  // Takes over the tree at `root` (standing for /sys). Records the boot state if the tree has
  // none yet. An unusable root makes every call fail with the reason (see open()).
  explicit SimKernel(std::filesystem::path root);
  ~SimKernel() override;

  // The same, reporting an unusable root (no bus/pci/devices, unwritable) at once.
  static Result<std::unique_ptr<SimKernel>> open(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // --- Kernel ---------------------------------------------------------------------------
  Result<void> write_attr(const std::string& relpath, std::string_view value) override;
  Result<std::vector<VfInfo>> get_vfs(const std::string& pf_ifname) override;
  Result<void> set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) override;
  // dev_set_mtu(): within the netdev's driver's min and max MTU (sim/netdevs.h max_mtu), else
  // EINVAL with the kernel's extack text; writes its mtu attribute.
  Result<void> set_mtu(const std::string& ifname, uint32_t mtu) override;
  Result<std::vector<std::string>> get_altnames(const std::string& ifname) override;
  // `ip link property add dev IFNAME altname ALT`: EEXIST when a netdev is named or altnamed ALT
  // already, EINVAL for a name the kernel would refuse (empty, over 127 bytes, '/' or spaces).
  Result<void> add_altname(const std::string& ifname, const std::string& alt);
  // A cable pulled (false) or plugged (true) on a running netdev (sim/netdevs.h set_carrier),
  // then the RTM_NEWLINK the kernel multicasts to RTNLGRP_LINK, sent as a datagram to
  // kRtnlSocket when someone listens there.
  Result<void> set_carrier(const std::string& ifname, bool carrier);
  Result<LinkFacts> get_link(const std::string& ifname) override;
  // devlink's eswitch (sim/eswitch.h): ice and mlx5_core PFs; representors in switchdev mode.
  Result<EswitchMode> get_eswitch_mode(const std::string& bus, const std::string& dev) override;
  Result<void> set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) override;
  // Carrier as the sim's links have it (sim/netdevs.h reinit_link): true at once with a carrier,
  // false at once when the netdev is down; a carrier due back within `timeout` is waited for
  // (the time an igb link takes to come back). A carrier down that nothing brings back, or that
  // comes back only after `timeout`, is false at once: the sim knows, where Linux waits it out.
  Result<bool> wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) override;
  // The processes hold_vfio said hold the function's group, with path "/dev/vfio/<group>".
  Result<std::vector<FileHolder>> vfio_holders(const PciAddress& address) override;

  // --- sim-only controls, for tests -----------------------------------------------------

  // SIGKILLs `pid` (a process running a SimKernel on `root`) between two of its calls, never in
  // the middle of one: the simulated kernel's changes are as atomic as a real kernel's.
  static Result<void> kill_between_calls(const std::filesystem::path& root, pid_t pid);

  // What get_link reports besides `up`: the netdev's addresses ("192.0.2.1/24") and how many
  // main-table routes go through it. Kept until the netdev goes. ENODEV: no such netdev.
  Result<void> set_link_addresses(const std::string& ifname, const std::vector<std::string>& addresses,
                                  size_t routes = 0);

  // A fake process `comm` (pid `pid`) opens the VFIO group of `address` (/dev/vfio/<group>),
  // as QEMU does for an assigned device, until release_vfio: meanwhile vfio_holders names it,
  // and an unbind of a function of that group from vfio-pci (drivers/vfio-pci/unbind, or the
  // VFs going with sriov_numvfs) waits for the release, as vfio_pci_remove does (sim/vfio.h).
  // ENODEV: no such function, or it is not bound to vfio-pci (its group has no node then).
  // Neither takes the tree's lock: a test may release while another thread's unbind waits.
  Result<void> hold_vfio(const PciAddress& address, pid_t pid, std::string comm);
  // ENOENT: `pid` does not hold the group of `address`.
  Result<void> release_vfio(const PciAddress& address, pid_t pid);
  // How long a blocked unbind waits before it gives up with ETIMEDOUT (Linux waits forever);
  // kept in the tree, 10 s unless set.
  Result<void> set_vfio_unbind_bound(std::chrono::milliseconds bound);
  // How many unbinds from vfio-pci of the function found its group held (and had to wait).
  size_t vfio_unbinds_blocked(const PciAddress& address) const;

  // What a reboot does to the host: every PF's VFs removed (sriov_numvfs 0), every
  // driver_override cleared, sriov_drivers_autoprobe back to 1, every boot device back on its
  // boot driver with its boot netdevs (names, MACs, ifindexes, flags), dynamic ids, VF
  // attributes, link addresses, reset counts and VFIO holders (processes die) cleared.
  Result<void> simulate_reboot();

  // The traffic counters get_vfs reports for VF `vf` of a PF netdev (as if it had carried
  // traffic); they are zero until set, and kept until the VFs go. EINVAL: no such VF.
  Result<void> set_vf_stats(const std::string& pf_ifname, uint32_t vf, const VfStats& stats);

  // Hot-unplug of a function (an endpoint or VF; a PF must have no VFs enabled): its netdevs,
  // driver and directory go as on surprise removal, with their uevents; what it occupied is kept
  // so hot_add can bring it back. ENODEV: no such function; EBUSY: a PF with VFs.
  Result<void> hot_remove(const PciAddress& address);
  // Puts back a function hot_remove took (same driver, netdevs, IOMMU group), with the uevents
  // of its arrival. EEXIST: present; ENOENT: never removed.
  Result<void> hot_add(const PciAddress& address);

  // sriov_disable() (a write of 0 to a PF's sriov_numvfs that removes VFs) ends with ssleep(1)
  // in the kernel (drivers/pci/iov.c: VF Enable cleared, then the wait the PCIe spec asks for)
  // before the write returns. The sim waits `delay` there, 0 until set; kept in the tree
  // (kSriovDisableDelayFile), so every SimKernel on it (a daemon in --sim mode) waits as long.
  Result<void> set_sriov_disable_delay(std::chrono::milliseconds delay);
  static constexpr const char* kSriovDisableDelayFile = ".sriovd-sim/sriov_disable_delay_ms";
  // How long an igb PF's link is down after its VF count changes (igb_sriov_reinit closes and
  // reopens the netdev; autonegotiation takes seconds): 0, no drop, until set; kept in the tree
  // (sim/netdevs.h kLinkSettleFile) for every SimKernel on it.
  Result<void> set_link_settle(std::chrono::milliseconds settle);
  // For tests that look at what happens meanwhile without sleeping: while held, every
  // sriov_disable of this SimKernel waits there (after the VFs went) until the hold is lifted.
  // wait_for_sriov_disable_held returns true once one is waiting, false after `deadline`.
  void hold_sriov_disable(bool hold) SRIOVD_EXCLUDES(delay_mu_);
  bool wait_for_sriov_disable_held(std::chrono::milliseconds deadline) SRIOVD_EXCLUDES(delay_mu_);

  // Where uevents are sent, relative to the root.
  static constexpr const char* kUeventSocket = ".sriovd-sim/uevent.sock";
  static constexpr const char* kRtnlSocket = ".sriovd-sim/rtnl.sock";

  // How many times `reset` was written "1" for the function since boot.
  size_t reset_count(const PciAddress& address) const;

  // The driver drivers_probe binds the function to when it has no driver_override: its boot
  // driver, else the driver that claims its vendor:device (the known VF drivers, or a driver a
  // device with the same ids was bound to at boot), else one with a matching dynamic id.
  // nullopt when none is loaded (no bus/pci/drivers/<name>).
  std::optional<std::string> default_driver(const PciAddress& address) const;

 private:
  Result<void> check_ready() const;
  void wait_after_sriov_disable() SRIOVD_EXCLUDES(delay_mu_);

  std::filesystem::path root_;       // as given
  std::filesystem::path real_root_;  // canonical, for classifying resolved paths
  std::optional<Error> init_error_;  // set once by the constructor
  struct Boot;                       // boot.json, parsed once (it never changes)
  std::shared_ptr<const Boot> boot_;
  mutable Mutex mu_;                                  // serialises every call; guards the tree and the files
  sim::UeventSender uevents_ SRIOVD_GUARDED_BY(mu_);  // the socket and uevent_seqnum, opened on first use
  UniqueFd lock_fd_;                                  // .sriovd-sim/lock, flocked for the length of each call
  Mutex delay_mu_;                                    // the wait after sriov_disable, outside mu_
  CondVar delay_cv_;
  bool hold_disable_ SRIOVD_GUARDED_BY(delay_mu_) = false;
  int disables_waiting_ SRIOVD_GUARDED_BY(delay_mu_) = 0;

  class SRIOVD_SCOPED_CAPABILITY TreeLock {  // mu_ and the flock, for one call
   public:
    TreeLock(Mutex& mu, int fd) SRIOVD_ACQUIRE(mu);
    ~TreeLock() SRIOVD_RELEASE();

   private:
    Mutex& mu_;
    int fd_;
  };
};

}  // namespace sriovd::kernel
