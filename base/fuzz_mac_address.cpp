// Fuzzes MacAddress::parse: whatever parses prints back to the same text, lower-cased.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/mac_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto mac = sriovd::MacAddress::parse(text);
  if (!mac) return 0;
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (mac->to_string() != lower) std::abort();
  if (sriovd::MacAddress::parse(mac->to_string()) != mac) std::abort();
  return 0;
}
