#include "base/mac_address.h"

#include <algorithm>
#include <cstring>

#include "base/hex.h"

namespace sriovd {

MacAddress MacAddress::from_bytes(std::span<const uint8_t, kSize> bytes) noexcept {
  std::array<uint8_t, kSize> o{};
  std::memcpy(o.data(), bytes.data(), kSize);
  return MacAddress(o);
}

std::optional<MacAddress> MacAddress::parse(std::string_view s) noexcept {
  if (s.size() != kSize * 3 - 1) return std::nullopt;
  std::array<uint8_t, kSize> o{};
  for (size_t i = 0; i < kSize; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return std::nullopt;
    int hi = hex_digit(s[i * 3]), lo = hex_digit(s[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    o[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return MacAddress(o);
}

std::string MacAddress::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kSize * 3 - 1, ':');
  for (size_t i = 0; i < kSize; ++i) {
    out[i * 3] = kHex[octets_[i] >> 4];
    out[i * 3 + 1] = kHex[octets_[i] & 0x0f];
  }
  return out;
}

bool MacAddress::is_zero() const noexcept {
  return std::all_of(octets_.begin(), octets_.end(), [](uint8_t b) { return b == 0; });
}

}  // namespace sriovd
