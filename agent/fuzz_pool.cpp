// libFuzzer target: pool definitions and pf_names ranges from any bytes. A definition accepted
// must survive pool_to_json → pool_from_json unchanged; a range accepted must print back to a
// range that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "agent/pool.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto r = sriovd::agent::parse_pf_range(text)) {
    auto again = sriovd::agent::parse_pf_range(sriovd::agent::to_string(*r));
    if (!again || !(*again == *r)) std::abort();
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  auto p = sriovd::agent::pool_from_json(j);
  if (!p) return 0;
  auto back = sriovd::agent::pool_to_json(*p);
  auto again = sriovd::agent::pool_from_json(back);
  if (!again || sriovd::agent::pool_to_json(*again) != back) std::abort();
  return 0;
}
