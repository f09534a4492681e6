// MacAddress: an Ethernet address as a value, with the one parser and the one formatter of the
// project ("02:00:00:00:03:03", lower-case hex, as the kernel prints it in sysfs and iproute2 does).
// Thread-safe: a plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sriovd {

class MacAddress {
 public:
  static constexpr size_t kSize = 6;

  constexpr MacAddress() = default;  // 00:00:00:00:00:00, what a VF without an admin MAC reports
  constexpr MacAddress(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f) : octets_{a, b, c, d, e, f} {}
  explicit constexpr MacAddress(const std::array<uint8_t, kSize>& octets) : octets_(octets) {}
  static MacAddress from_bytes(std::span<const uint8_t, kSize> bytes) noexcept;

  // Exactly six colon-separated pairs of hex digits, either case; nothing before or after.
  static std::optional<MacAddress> parse(std::string_view text) noexcept;
  std::string to_string() const;  // lower case

  bool is_zero() const noexcept;
  bool is_multicast() const noexcept { return (octets_[0] & 0x01) != 0; }  // broadcast included

  const std::array<uint8_t, kSize>& octets() const noexcept { return octets_; }
  const uint8_t* data() const noexcept { return octets_.data(); }
  uint8_t operator[](size_t i) const noexcept { return octets_[i]; }

  bool operator==(const MacAddress&) const = default;

 private:
  std::array<uint8_t, kSize> octets_{};
};

}  // namespace sriovd
