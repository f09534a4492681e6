// hex_digit: the value of one hexadecimal digit, either case, or -1. Shared by the parsers of
// PciAddress and MacAddress. Pure, thread-safe.
#pragma once

namespace sriovd {

constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace sriovd
