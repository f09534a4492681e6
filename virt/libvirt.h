// Libvirt: sriovd's connection to libvirt (the libvirt C API), to attach and detach the devices
// it hands out and to find the domains that use a device.
//
// Thread-safety: every method may be called from any thread, concurrently. libvirt connections
// are thread-safe; the one mutable member (the connection, reopened when libvirt went away) is
// guarded by a mutex that is never held across a libvirt call other than the reopen itself.
//
// Process-wide effects, on the first connection (not before: a daemon that never attaches a
// device never loads libvirt):
// - libvirt.so.0 is loaded with dlopen; without it every call fails with libvirt_unreachable
//   saying libvirt is not installed.
// - libvirt's default event loop is registered (virEventRegisterDefaultImpl) and run by one
//   detached thread for the rest of the process: detach waits for libvirt's device-removed
//   events, and keepalives detect a dead daemon. Another libvirt user in the same process must
//   not register a different event implementation.
// - libvirt's default error function is replaced by one that prints nothing: libvirt's errors
//   come back as Error values (virGetLastError is per thread) instead of lines on stderr.
//
// Errors carry no errno; `reason` tells failures apart:
//   domain_not_found      not_found    no domain with that name (or UUID)
//   device_not_attached   not_found    the domain has no such device (detach)
//   domain_not_running    conflict     a live change on a domain that is not running
//   libvirt_unreachable   unavailable  the URI cannot be opened or the daemon went away
//   invalid_xml           invalid      libvirt (or our reader) refuses the device XML
//   invalid_flags         invalid      neither live nor config asked
//   unsupported           unsupported  the hypervisor driver cannot do this
//   attach_failed         conflict|io  libvirt refused the attach (its message says why)
//   detach_failed         conflict|io  libvirt refused the detach, or the guest refused the
//                                      removal (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED)
//   detach_timeout        conflict     the guest had not released the device by the deadline;
//                                      the request stays pending in the hypervisor
//   libvirt_failed        io           anything else
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::virt {

inline constexpr const char* kDefaultLibvirtUri = "qemu:///system";

// One domain that references a device (see Libvirt::domains_using).
struct DomainUse {
  std::string domain;    // its name
  bool running = false;  // the domain is active (running or paused)
  bool live = false;     // the device is in the running domain's live definition
  bool config = false;   // the device is in the persistent definition (used at next start)

  bool operator==(const DomainUse&) const = default;
};

class Libvirt {
 public:
  // Opens `uri` (e.g. "qemu:///system", "qemu+unix:///session?socket=/run/x/libvirt-sock",
  // "test:///default"). Fails with libvirt_unreachable when the URI is unknown or the daemon
  // cannot be reached.
  static Result<std::unique_ptr<Libvirt>> connect(const std::string& uri = kDefaultLibvirtUri);
  // The same without connecting now: the first call connects, and every call after a failure
  // tries again. For a daemon that may start before libvirtd, or outlive it.
  //
  // Except domains_using: within `recheck` of a failed connect it answers libvirt_unreachable
  // again without trying. It is the in-use interlock, asked before every bind, unbind and
  // lease change, and on a host without libvirtd each connect attempt costs more than the rest
  // of the change; a QEMU that runs meanwhile is seen by the kernel check (it holds the
  // device's VFIO nodes). attach, detach and domain_xml always try, so an operator who has just
  // started libvirtd is not told it is unreachable.
  static std::unique_ptr<Libvirt> deferred(const std::string& uri = kDefaultLibvirtUri,
                                           std::chrono::milliseconds recheck = std::chrono::seconds(1));
  ~Libvirt();
  Libvirt(const Libvirt&) = delete;
  Libvirt& operator=(const Libvirt&) = delete;

  const std::string& uri() const { return uri_; }

  // Which definitions a change affects: the running domain (live), the persistent one
  // (config), or both. At least one must be set.
  struct Flags {
    bool live = true;
    bool config = false;
  };

  // Attaches `device_xml` (one device element, e.g. from device_xml()) to `domain` (a name or a
  // UUID). Returns when libvirt has attached it.
  Result<void> attach(const std::string& domain, const std::string& device_xml, Flags flags);

  // Detaches the device `device_xml` describes. For a live detach, returns only once libvirt
  // reported VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED for that device (matched by its alias: the one in
  // `device_xml`, else the alias of the live device with the same PCI source or netdev), fails
  // with detach_failed on DEVICE_REMOVAL_FAILED, and with detach_timeout when neither came by
  // `deadline` (measured from the call) and the device is still in the live definition. A
  // config-only detach does not wait.
  Result<void> detach(const std::string& domain, const std::string& device_xml, Flags flags,
                      std::chrono::milliseconds deadline);

  // The domains, running or only defined, whose live or persistent definition has a PCI hostdev
  // or a hostdev interface with source `address`, or a direct (macvtap) interface on one of
  // `netdevs` (the function's host netdevs). Ordered by domain name. For the interlock
  // "unbinding a device in use by a running domain": refuse when any entry has `running`.
  // libvirt_unreachable without a connect attempt within the recheck interval of a failed one
  // (see deferred).
  Result<std::vector<DomainUse>> domains_using(const PciAddress& address, const std::vector<std::string>& netdevs = {});

  // The domain's XML: live (for a running domain) or, with `inactive`, the persistent one.
  Result<std::string> domain_xml(const std::string& domain, bool inactive = false);

 private:
  struct Conn;
  Libvirt(std::string uri, std::chrono::milliseconds recheck);
  // The open connection, opening it if needed. With `may_reuse_failure`, a connect that failed
  // less than recheck_ ago is answered with its error instead of a new attempt.
  Result<std::shared_ptr<Conn>> connection(bool may_reuse_failure = false);

  const std::string uri_;
  const std::chrono::milliseconds recheck_;
  struct State;
  std::unique_ptr<State> state_;  // the current connection, under its mutex
};

}  // namespace sriovd::virt
