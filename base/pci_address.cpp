#include "base/pci_address.h"

#include <cstdio>

#include "base/hex.h"

namespace sriovd {

namespace {

// Parses exactly `n` hex digits from the front of `s`, advancing it.
std::optional<uint32_t> take_hex(std::string_view& s, size_t n) noexcept {
  if (s.size() < n) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    int d = hex_digit(s[i]);
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint32_t>(d);
  }
  s.remove_prefix(n);
  return v;
}

bool take_char(std::string_view& s, char c) noexcept {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<PciAddress> PciAddress::parse(std::string_view text) noexcept {
  std::string_view s = text;
  uint32_t domain = 0;
  // "DDDD:BB:DD.F" has two colons; "BB:DD.F" one.
  if (s.size() == 12) {
    auto d = take_hex(s, 4);
    if (!d || !take_char(s, ':')) return std::nullopt;
    domain = *d;
  } else if (s.size() != 7) {
    return std::nullopt;
  }
  auto bus = take_hex(s, 2);
  if (!bus || !take_char(s, ':')) return std::nullopt;
  auto dev = take_hex(s, 2);
  if (!dev || *dev > 0x1f || !take_char(s, '.')) return std::nullopt;
  if (s.size() != 1 || s[0] < '0' || s[0] > '7') return std::nullopt;
  return PciAddress{domain, static_cast<uint8_t>(*bus), static_cast<uint8_t>(*dev), static_cast<uint8_t>(s[0] - '0')};
}

std::string PciAddress::to_string() const {
  // Hand-rolled: addresses are printed for every device of every response; snprintf costs
  // several times more.
  static constexpr char hex[] = "0123456789abcdef";
  char buf[16];
  size_t n = 0;
  if (domain > 0xffff) {  // VMD and other synthetic domains print with more digits
    n = static_cast<size_t>(std::snprintf(buf, sizeof buf, "%x", domain));
  } else {
    for (int shift = 12; shift >= 0; shift -= 4) buf[n++] = hex[(domain >> shift) & 15];
  }
  buf[n++] = ':';
  buf[n++] = hex[bus >> 4];
  buf[n++] = hex[bus & 15];
  buf[n++] = ':';
  buf[n++] = hex[device >> 4];
  buf[n++] = hex[device & 15];
  buf[n++] = '.';
  buf[n++] = hex[function & 7];
  return {buf, n};
}

}  // namespace sriovd
