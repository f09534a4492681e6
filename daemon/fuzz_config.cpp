// libFuzzer target for the configuration loader: any bytes must give a Config or an `invalid`
// error that names its origin, never a crash or an exception; what loads must be within the
// schema's bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/config.h"

using namespace sriovd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = agent::parse_config(text, "fuzz.json");
  if (!c) {
    if (c.error().code != ErrorCode::invalid || c.error().message.rfind("fuzz.json: ", 0) != 0) std::abort();
    return 0;
  }
  if (c->listen.empty() || c->limits.max_connections < 1 || c->limits.max_body_bytes < 1024) std::abort();
  if (!c->pools.is_array()) std::abort();
  if (c->tls.enabled() && c->tls.key.empty()) std::abort();
  return 0;
}
