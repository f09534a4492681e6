// libFuzzer target: the SSE parser on any bytes, fed in two pieces split at a point the input
// chooses, must not crash, and must give the same events as feeding everything at once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/sse_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  sriovd::cli::SseParser whole;
  auto a = whole.feed(all);
  size_t cut = size ? data[0] % (size + 1) : 0;
  sriovd::cli::SseParser split;
  auto b = split.feed(all.substr(0, cut));
  auto rest = split.feed(all.substr(cut));
  b.insert(b.end(), rest.begin(), rest.end());
  if (a.size() != b.size()) std::abort();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].data != b[i].data) std::abort();
  if (whole.last_id() != split.last_id()) std::abort();
  return 0;
}
