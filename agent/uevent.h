// UEvent: one kernel device event (the kernel's NETLINK_KOBJECT_UEVENT datagram, libudev's view
// of it, or the simulated kernel's copy), reduced to what the host model needs.
//
// The kernel's datagram is "ACTION@DEVPATH\0" followed by "KEY=VALUE\0" pairs (ACTION, DEVPATH,
// SUBSYSTEM, SEQNUM, and per subsystem DRIVER, PCI_CLASS, PCI_ID, PCI_SLOT_NAME, INTERFACE...;
// lib/kobject_uevent.c). parse_uevent() is a pure function over those bytes, fuzzed; a
// datagram in libudev's own format ("libudev\0" + binary header) is refused, since the udev
// source goes through libudev's API instead.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::agent {

struct UEvent {
  std::string action;     // add, remove, change, bind, unbind, move, online, offline
  std::string devpath;    // "/devices/pci0000:00/0000:00:01.0/0000:17:00.0"
  std::string subsystem;  // "pci", "net", ...
  std::optional<std::string> driver;
  std::optional<uint64_t> seqnum;
  std::map<std::string, std::string> env;  // every KEY=VALUE, as sent

  // The PCI function the event is about: PCI_SLOT_NAME for a pci event, else the deepest
  // path component of DEVPATH that is a PCI address (a netdev's parent function).
  std::optional<PciAddress> pci_function() const;
};

// At most this many bytes: the kernel's uevent buffer (UEVENT_BUFFER_SIZE) is 2048.
inline constexpr size_t kMaxUeventBytes = 8192;

// Parses a kernel-format datagram. Fails (invalid, naming what is wrong) when the header is
// missing or malformed, ACTION/DEVPATH disagree with it, a pair has no '=', or SEQNUM is not a
// number.
Result<UEvent> parse_uevent(std::string_view datagram);

// The datagram the kernel would send for `e` (header, ACTION, DEVPATH, SUBSYSTEM, the other
// pairs of env, SEQNUM): what the simulated kernel sends and tests build.
std::string format_uevent(const UEvent& e);

}  // namespace sriovd::agent
