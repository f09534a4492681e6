// libFuzzer target: the uevent parser on any bytes. What it accepts must survive a round trip
// through format_uevent with the same fields, and pci_function() must not crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/uevent.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto e = sriovd::agent::parse_uevent(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!e) return 0;
  (void)e->pci_function();
  auto again = sriovd::agent::parse_uevent(sriovd::agent::format_uevent(*e));
  if (!again && sriovd::agent::format_uevent(*e).size() <= sriovd::agent::kMaxUeventBytes) std::abort();
  if (again && (again->action != e->action || again->devpath != e->devpath || again->subsystem != e->subsystem ||
                again->seqnum != e->seqnum))
    std::abort();
  return 0;
}
