// libFuzzer target for the REST request bodies, taken the way the API takes them: JSON, checked
// against the body's schema, then decoded into the agent's values (VfConfig, PoolSpec, the
// allocation's fields). The first byte picks the body, the rest is its text:
//   s  PUT sriov (SriovRequest)          v  PATCH vf-config (VfConfig)
//   d  PUT driver (DriverRequest)        p  POST/PUT pools (PoolRequest)
//   a  POST allocations (AllocationRequest, its vf_config included)
//   t  POST attach/detach (AttachRequest)  m  PUT mtu (MtuRequest)
// (any other byte picks one by its value). Nothing may crash or throw: a body the schema accepts
// must have every field the handlers read with the type they read it as, a refusal is an
// `invalid` error, and what decodes must survive a round trip through its JSON form. The
// decoders also take every body the schema refuses: they check each value again and must not
// rely on the schema for their own safety.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/pool.h"
#include "agent/vf_config_json.h"
#include "base/pci_address.h"
#include "schemas/validator.h"

using namespace sriovd;
using nlohmann::json;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// A VfConfig body: refused with `invalid`, or decoded and stable through vf_config_to_json.
void vf_config(const json& body) {
  auto c = agent::vf_config_from_json(body);
  if (!c) {
    check(c.error().code == ErrorCode::invalid);
    return;
  }
  auto again = agent::vf_config_from_json(agent::vf_config_to_json(*c));
  check(again.ok() && *again == *c);
}

// A pool body: refused with `invalid`, or decoded and stable through pool_to_json.
void pool(const json& body) {
  auto p = agent::pool_from_json(body);
  if (!p) {
    check(p.error().code == ErrorCode::invalid);
    return;
  }
  const json back = agent::pool_to_json(*p);
  auto again = agent::pool_from_json(back);
  check(again.ok() && agent::pool_to_json(*again) == back);
}

// What the handlers read from a body the schema accepted, with the types they read.
void accepted(char kind, json& body) {
  switch (kind) {
    case 's':
      (void)body.at("num_vfs").get<uint32_t>();
      if (body.contains("drivers_autoprobe")) (void)body["drivers_autoprobe"].get<bool>();
      break;
    case 'v': vf_config(body); break;
    case 'd':
      check(body.at("driver").is_string() || body.at("driver").is_null());
      (void)body.value("group", false);
      (void)body.value("force", false);
      break;
    case 'p': pool(body); break;
    case 'a':
      if (body.contains("pool")) (void)body["pool"].get<std::string>();
      if (body.contains("address")) check(PciAddress::parse(body["address"].get<std::string>()).has_value());
      (void)body.at("consumer").at("kind").get<std::string>();
      (void)body.at("consumer").at("name").get<std::string>();
      if (body.contains("numa_node")) (void)body["numa_node"].get<int>();
      if (body.contains("policy")) check(agent::parse_policy(body["policy"].get<std::string>()).has_value());
      if (body.contains("vf_config")) vf_config(body["vf_config"]);
      break;
    case 'm': (void)body.at("mtu").get<uint32_t>(); break;
    case 't':
      if (body.contains("domain")) (void)body["domain"].get<std::string>();
      (void)body.value("live", true);
      (void)body.value("config", false);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kKinds = "svdpatm";
  char kind = static_cast<char>(data[0]);
  if (kKinds.find(kind) == std::string_view::npos) kind = kKinds[data[0] % kKinds.size()];
  const char* schema = kind == 's'   ? "SriovRequest"
                       : kind == 'v' ? "VfConfig"
                       : kind == 'd' ? "DriverRequest"
                       : kind == 'p' ? "PoolRequest"
                       : kind == 'a' ? "AllocationRequest"
                       : kind == 'm' ? "MtuRequest"
                                     : "AttachRequest";
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) return 0;
  // The decoders on their own, schema or not.
  if (kind == 'v' || kind == 'a')
    vf_config(kind == 'a' && body.is_object() && body.contains("vf_config") ? body["vf_config"] : body);
  if (kind == 'p') pool(body);
  auto v = schemas::api_validator().validate(schema, body);
  if (!v) {
    check(v.error().code == ErrorCode::invalid);
    return 0;
  }
  accepted(kind, body);
  return 0;
}
