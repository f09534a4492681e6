// HotplugMonitor: keeps the host model current when PCI functions appear, disappear or change
// driver outside sriovd's own calls (hot-plug, `echo 1 > remove`, an operator's unbind, a VF
// count changed by hand).
//
// Sources, one per daemon:
//   udev   — libudev's monitor on udevd's events (after udev rules ran), where udevd runs;
//   kernel — the kernel's own NETLINK_KOBJECT_UEVENT datagrams, where no udevd runs (minimal
//            hosts, the QEMU lab); only datagrams from the kernel (sender port 0) are taken;
//   sim    — the simulated kernel's datagrams on <root>/.sriovd-sim/uevent.sock (--sim).
// The kernel and sim sources carry the same bytes and go through one parser (agent/uevent.h);
// every source ends in the same UEvent and the same Agent::update_devices call.
//
// Link changes (a carrier lost or back, a netdev set up or down) send no uevent: the monitor
// also follows the kernel's rtnetlink link notifications (RTM_NEWLINK on RTNLGRP_LINK; with the
// sim source, the simulated kernel's same bytes on <root>/.sriovd-sim/rtnl.sock). A netdev
// whose name, carrier, operstate or up/running flags changed has its PCI function read again,
// through the same applier; notifications that change none of them (sriovd's own VF attribute
// changes make the kernel send one for the PF) are dropped.
//
// Two threads: a reader that only reads (it never waits for the agent, so the socket never
// fills while a mutation holds the agent's lock) and an applier that takes every function the
// events named since its last round and updates them at once (a burst of 64 VF adds is one
// update). A lost event (the kernel's ENOBUFS on an overflowing socket) costs a full rescan.
// Thread-safe: construct, then stop() or destroy from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/uevent.h"
#include "base/fd.h"
#include "base/mutex.h"
#include "base/result.h"

namespace sriovd::net {
struct LinkMessage;
}

namespace sriovd::agent {

enum class HotplugSource { udev, kernel, sim };

const char* to_string(HotplugSource s);

// "auto" for a real host: udev when udevd runs (its control socket /run/udev/control exists),
// else the kernel source.
HotplugSource detect_hotplug_source();

class HotplugMonitor {
 public:
  // Opens the source and starts the threads. `sysfs_root` locates the sim socket.
  static Result<std::unique_ptr<HotplugMonitor>> start(Agent& agent, HotplugSource source,
                                                       const std::string& sysfs_root);
  ~HotplugMonitor();
  HotplugMonitor(const HotplugMonitor&) = delete;
  HotplugMonitor& operator=(const HotplugMonitor&) = delete;

  void stop();
  HotplugSource source() const { return source_; }
  uint64_t events_seen() const { return seen_.load(); }
  uint64_t updates() const { return updates_.load(); }
  // The newest SEQNUM of the events the monitor is done with (applied to the model or found
  // irrelevant): every change the kernel numbered up to it is in the model.
  uint64_t handled_seqnum() const { return handled_seq_.load(); }
  // Link notifications that changed a PCI netdev's link (and so queued its function).
  uint64_t link_changes() const { return link_changes_.load(); }

 private:
  HotplugMonitor(Agent& agent, HotplugSource source);
  void read_loop();
  void apply_loop();
  void take(const UEvent& e);
  bool read_datagrams();  // kernel and sim: drains the socket; false on a fatal error
  bool read_udev();
  bool read_links();  // drains the link socket; false on a fatal error
  void take_link(const net::LinkMessage& m);
  void queue(const PciAddress& a);

  Agent& agent_;
  HotplugSource source_;
  UniqueFd fd_;                // netlink or unix datagram socket (udev: the monitor's fd, not owned)
  UniqueFd stop_fd_;           // eventfd: wakes the reader to stop
  std::string sim_path_;       // the sim socket file, removed at stop
  UniqueFd link_fd_;           // NETLINK_ROUTE on RTNLGRP_LINK, or the sim's rtnl socket
  std::string sim_link_path_;  // the sim rtnl socket file, removed at stop
  std::string sysfs_root_;     // where class/net/<netdev>/device says which function a netdev is
  struct LinkSeen {
    std::string ifname;
    std::optional<bool> carrier;
    std::optional<uint8_t> operstate;
    uint32_t flags = 0;  // IFF_UP | IFF_RUNNING | IFF_LOWER_UP of ifi_flags
    bool operator==(const LinkSeen&) const = default;
  };
  std::map<int, LinkSeen> links_;  // by ifindex; the reader's only
  struct Udev;
  std::unique_ptr<Udev> udev_;
  Mutex mu_;
  CondVar cv_;
  std::map<PciAddress, std::optional<uint64_t>> pending_ SRIOVD_GUARDED_BY(mu_);  // newest SEQNUM per function
  uint64_t taken_seq_ SRIOVD_GUARDED_BY(mu_) = 0;                                 // the newest SEQNUM received
  bool rescan_ SRIOVD_GUARDED_BY(mu_) = false;                                    // events were lost
  bool stopping_ SRIOVD_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> seen_{0}, updates_{0}, handled_seq_{0}, link_changes_{0};
  std::thread reader_, applier_;
};

}  // namespace sriovd::agent
