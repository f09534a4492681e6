// PciAddress: a PCI function's domain:bus:device.function, parsed once at the edge.
//
// The canonical text form is the kernel's: "0000:17:00.0" (4 hex digits of domain, lower case).
// Routing IDs (bus << 8 | devfn) are what SR-IOV's First VF Offset and VF Stride are counted in.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sriovd {

struct PciAddress {
  uint32_t domain = 0;  // 16 bits in practice; VMD domains use up to 0x1ffff... keep 32
  uint8_t bus = 0;
  uint8_t device = 0;    // 0..31
  uint8_t function = 0;  // 0..7

  // Accepts "DDDD:BB:DD.F" (the kernel's form) and, leniently, "BB:DD.F" (domain 0).
  // Hex digits may be upper or lower case. Returns nullopt on anything else.
  static std::optional<PciAddress> parse(std::string_view text) noexcept;

  std::string to_string() const;  // "0000:17:00.0"

  uint16_t routing_id() const noexcept { return static_cast<uint16_t>(bus << 8 | device << 3 | function); }
  static PciAddress from_routing_id(uint32_t domain, uint16_t rid) noexcept {
    return PciAddress{domain, static_cast<uint8_t>(rid >> 8), static_cast<uint8_t>((rid >> 3) & 0x1f),
                      static_cast<uint8_t>(rid & 7)};
  }

  // clang-tidy 14 reads the defaulted comparison's `0` as a null pointer constant.
  auto operator<=>(const PciAddress&) const = default;  // NOLINT(modernize-use-nullptr)
};

}  // namespace sriovd

template <>
struct std::hash<sriovd::PciAddress> {
  size_t operator()(const sriovd::PciAddress& a) const noexcept {
    return std::hash<uint64_t>{}(static_cast<uint64_t>(a.domain) << 16 | a.routing_id());
  }
};
