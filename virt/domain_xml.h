// Reading libvirt XML back: which devices a domain definition holds, with the host resource each
// one uses (PCI address, netdev) and its alias. Used to find the domains that use a device (the
// "in use by a running domain" interlock) and the alias a detach waits for.
//
// A pure decoder over text (libxml2, no network, no entity expansion); thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::virt {

struct DomainDevice {
  enum class Kind {
    HostdevPci,        // <hostdev mode='subsystem' type='pci'>
    HostdevInterface,  // <interface type='hostdev'>
    Direct,            // <interface type='direct'>
    Other,             // any other element under <devices> (disks, other interfaces, inputs...)
  };
  Kind kind = Kind::Other;
  std::string element;                // "hostdev", "interface", "input"...
  std::optional<PciAddress> address;  // the host PCI source of HostdevPci / HostdevInterface
  std::optional<std::string> netdev;  // the host netdev of Direct (<source dev=...>)
  std::optional<std::string> mac;     // interfaces: <mac address=...>, lower case
  std::optional<std::string> alias;   // <alias name=...>

  bool operator==(const DomainDevice&) const = default;
};

// Parses either a whole <domain> document (every child element of its <devices>) or a single
// device element such as the one device_xml() returns. A document that is not well-formed XML,
// or is over 16 MiB, is a bad_request Error with libxml2's message; a PCI source address whose
// numbers do not parse or are out of range is a bad_request naming the attribute.
Result<std::vector<DomainDevice>> parse_devices(std::string_view xml);

// True when `a` and `b` name the same host resource: the same kind and PCI source address
// (hostdevs), or the same source netdev (direct).
bool same_source(const DomainDevice& a, const DomainDevice& b);

}  // namespace sriovd::virt
