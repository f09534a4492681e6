// libFuzzer target for sriovd-k8s's decoders: any bytes as an HTTP answer (fed in two chunks)
// or as sriovd's pool, lease and device answers must decode or fail cleanly, never crash; pools
// that decode must give the preferred-allocation function valid input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "k8s/http.h"
#include "k8s/pool.h"
#include "k8s/preferred.h"

using namespace sriovd::k8s;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  {
    size_t body = 0;
    HttpResponseParser h([&](std::string_view b) { body += b.size(); });
    h.feed(s.substr(0, size / 3));
    h.feed(s.substr(size / 3));
    h.finish();
    if (body > size) std::abort();  // decoded body bytes all came from the input
    if (h.complete() && h.failed()) std::abort();
  }
  if (auto pools = parse_pool_list(s); pools.ok()) {
    for (const auto& pool : *pools) {
      std::vector<std::string> ids;
      ids.reserve(pool.devices.size());
      for (const auto& d : pool.devices) ids.push_back(d.address.to_string());
      auto chosen = preferred_allocation(pool, ids, {}, static_cast<int>(ids.size() / 2 + 1));
      if (chosen.size() > ids.size()) std::abort();
    }
  }
  (void)parse_pool(s);
  (void)parse_lease_list(s);
  (void)parse_lease(s);
  (void)parse_device(s);
  return 0;
}
