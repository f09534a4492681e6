// libFuzzer target for the libvirt XML reader: any bytes must parse to devices or to an error —
// never crash, leak or hang — and every PCI source address that parses is a valid one.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "virt/domain_xml.h"

using namespace sriovd;
using namespace sriovd::virt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto devices = parse_devices(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!devices) return 0;
  for (const auto& d : *devices) {
    if (d.address && (d.address->device > 31 || d.address->function > 7)) std::abort();
    if (d.address && d.kind != DomainDevice::Kind::HostdevPci && d.kind != DomainDevice::Kind::HostdevInterface) {
      std::abort();
    }
    if (d.netdev && d.kind != DomainDevice::Kind::Direct) std::abort();
    if (!same_source(d, d) && d.kind != DomainDevice::Kind::Other && (d.address || d.netdev)) std::abort();
  }
  return 0;
}
