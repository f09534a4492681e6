// Leases and libvirt: the device XML of a lease, and attaching/detaching it through one libvirt
// connection opened on first use (a host without libvirtd still serves leases; only attach and
// detach then answer that libvirt is unreachable).
// Thread-safe: the connection is opened under a mutex; Libvirt itself is thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/host_model.h"
#include "agent/lease.h"
#include "base/result.h"

namespace sriovd::virt {
class Libvirt;
}

namespace sriovd::agent {

// The device element for the lease's domain: a NIC VF in vfio mode is an
// <interface type='hostdev'> with the lease's MAC and VLAN; netdev mode an <interface
// type='direct'> in passthrough mode on the VF's netdev; anything else a PCI <hostdev>.
// nullopt when the device is not on the host (or, in netdev mode, has no netdev).
std::optional<std::string> lease_device_xml(const Lease& lease, const Snapshot& snap);

class LeaseLibvirt {
 public:
  explicit LeaseLibvirt(std::string uri, std::chrono::milliseconds detach_deadline = std::chrono::seconds(30));
  ~LeaseLibvirt();
  Result<void> attach(const std::string& xml, const Attachment& at);
  Result<void> detach(const std::string& xml, const Attachment& at);
  // A conflict naming the running domains whose live definition uses `address`; ok when none
  // does or libvirt cannot be reached (then no domain can be using it through libvirt).
  Result<void> check_not_in_use(const PciAddress& address);

 private:
  Result<virt::Libvirt*> connection();
  std::string uri_;
  std::chrono::milliseconds deadline_;
  std::mutex mu_;
  std::unique_ptr<virt::Libvirt> conn_;  // guarded by mu_
};

}  // namespace sriovd::agent
