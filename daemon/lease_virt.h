// Leases and libvirt: the device XML of a lease, and attaching/detaching it through one libvirt
// connection opened on first use and reopened after a failure (virt::Libvirt::deferred): a host
// without libvirtd still serves leases; only attach and detach then answer that libvirt is
// unreachable.
// Thread-safe: virt::Libvirt is.
#pragma once

#include <chrono>
#include <memory>
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
  explicit LeaseLibvirt(const std::string& uri, std::chrono::milliseconds detach_deadline = std::chrono::seconds(30));
  ~LeaseLibvirt();
  Result<void> attach(const std::string& xml, const Attachment& at);
  // Detaches the device from `at.domain` as it was attached (live and/or config). A domain that
  // no longer exists, a definition that no longer has the device, or (live) a domain that is
  // not running any more has nothing to detach there: that is success, so a lease whose domain
  // was shut down or undefined, or whose device was detached with virsh, can still be detached
  // and released.
  Result<void> detach(const std::string& xml, const Attachment& at);
  // A conflict naming the running domains whose live definition uses `address`; ok when none
  // does or libvirt cannot be reached (then no domain can be using it through libvirt; the
  // agent asks the kernel whether QEMU still holds it). After a failed connect, libvirt is not
  // tried again for a second (Libvirt::deferred). Any other libvirt error is returned:
  // the question could not be answered, and the caller refuses (fail closed).
  Result<void> check_not_in_use(const PciAddress& address);

 private:
  // `r`, with the URI in the message when libvirt could not be reached.
  Result<void> named(Result<void> r) const;

  std::chrono::milliseconds deadline_;
  std::unique_ptr<virt::Libvirt> libvirt_;
};

}  // namespace sriovd::agent
