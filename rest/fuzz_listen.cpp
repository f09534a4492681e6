// libFuzzer target for listen addresses (the configuration's "listen" and --listen): any text
// parses to an address or an `invalid` error on the field "listen"; what parses prints back as
// text that parses to the same address.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rest/server.h"

using namespace sriovd;
using namespace sriovd::rest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto a = ListenAddress::parse(text);
  if (!a) {
    if (a.error().code != ErrorCode::invalid || a.error().field != "listen") std::abort();
    return 0;
  }
  if (a->kind == ListenAddress::Kind::tcp && (a->port < 0 || a->port > 65535 || a->host.empty())) std::abort();
  auto again = ListenAddress::parse(a->to_string());
  if (!again || again->kind != a->kind || again->path != a->path || again->host != a->host || again->port != a->port)
    std::abort();
  return 0;
}
