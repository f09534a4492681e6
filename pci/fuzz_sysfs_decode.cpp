// libFuzzer target for the sysfs decoders: any bytes, as any attribute or link target, must
// decode to a value or nullopt, never crash, and what decodes must print back consistently.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/pci_address.h"
#include "pci/decode.h"

using namespace sriovd;
using namespace sriovd::pci;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  (void)parse_hex16(s);
  (void)parse_class(s);
  (void)parse_bare_hex16(s);
  (void)parse_int(s, INT64_MIN, INT64_MAX);
  (void)parse_int(s, -1, 1 << 20);
  (void)parse_bool01(s);
  (void)parse_driver_override(s);
  (void)iommu_group_from_link(s);
  (void)driver_from_link(s);
  (void)virtfn_index(s);
  auto u = parse_uevent(s);
  if (u.slot && !PciAddress::parse(u.slot->to_string())) std::abort();
  if (auto a = address_from_link(s)) {
    // An address that parsed prints in canonical form and parses back to itself.
    auto again = PciAddress::parse(a->to_string());
    if (!again || *again != *a) std::abort();
  }
  if (auto a = PciAddress::parse(s)) {
    if (PciAddress::from_routing_id(a->domain, a->routing_id()) != *a) std::abort();
  }
  return 0;
}
