// The libvirt device XML sriovd hands out with a lease: pure functions from a value to text, no
// I/O. The text goes to `virsh attach-device`, to Libvirt::attach (virt/libvirt.h) or into a
// domain definition by whoever owns the domain.
//
// Decisions (see libvirt's formatdomain documentation):
// - managed='no' everywhere: sriovd binds the device to vfio-pci itself (and restores the host
//   driver when the lease ends); libvirt must not rebind it behind sriovd's back.
// - <driver name='vfio'/>: the only PCI assignment backend of current QEMU.
// - every device carries a user alias "ua-sriovd-<domain>-<bus>-<slot>-<function>" derived from its
//   PCI address. libvirt keeps user aliases (the "ua-" prefix) in the live and persistent
//   definitions and reports the alias in VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, so a detach can
//   wait for the removal of exactly this device.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::virt {

struct DeviceXmlSpec {
  enum class Kind {
    HostdevInterface,  // a NIC VF bound to vfio-pci, as <interface type='hostdev'>
    HostdevPci,        // a whole device or a non-NIC function, as <hostdev type='pci'>
    Direct,            // a VF's host netdev as macvtap in passthrough mode, <interface type='direct'>
  };
  Kind kind = Kind::HostdevPci;
  PciAddress address;                 // the function handed out (for Direct: the VF it belongs to)
  std::optional<std::string> mac;     // "52:54:00:12:34:56"; interfaces only
  std::optional<uint16_t> vlan;       // 0..4095; HostdevInterface only (ignored for Direct, see below)
  std::optional<std::string> netdev;  // Direct: the VF's host netdev, required
};

// The device element, or an invalid Error naming the field ("mac", "vlan", "netdev") when a
// value cannot be expressed: a MAC that is not six hex octets or is multicast, a VLAN above
// 4095, a missing or impossible netdev name (empty, longer than 15 bytes, '/', ':' or
// whitespace as the kernel refuses, or any character but letters, digits, '_', '.', '-' as
// libvirt's schema refuses), a MAC or VLAN on a HostdevPci. Every value written is XML-escaped
// all the same.
Result<std::string> device_xml(const DeviceXmlSpec& spec);

// "ua-sriovd-0000-17-00-1": the alias device_xml gives the device at `address`.
std::string device_alias(const PciAddress& address);

// `text` escaped for an XML attribute value or text node (& < > " ').
std::string xml_escape(std::string_view text);

}  // namespace sriovd::virt
