#include "k8s/sriovd_api.h"

#include <sys/random.h>

#include <nlohmann/json.hpp>

namespace sriovd::k8s {

using nlohmann::json;

namespace {

ErrorCode code_for_status(long status) {
  switch (status) {
    case 400: return ErrorCode::bad_request;
    case 404: return ErrorCode::not_found;
    case 409: return ErrorCode::conflict;
    case 422: return ErrorCode::invalid;
    case 501: return ErrorCode::unsupported;
    case 503: return ErrorCode::unavailable;
    default: return ErrorCode::internal;
  }
}

}  // namespace

Result<std::string> SriovdApi::call(const std::string& method, const std::string& path, const std::string& body,
                                    const std::vector<std::string>& headers) const {
  auto r = client_.request(method, path, body, headers);
  if (!r) return std::move(r).error();
  if (r->status >= 200 && r->status < 300) return std::move(r->body);
  return Error::make(code_for_status(r->status), problem_detail(*r));
}

Result<std::vector<Pool>> SriovdApi::pools() const {
  auto body = call("GET", "/v1/pools");
  if (!body) return std::move(body).error();
  return parse_pool_list(*body);
}

Result<std::vector<Lease>> SriovdApi::leases(const std::string& query) const {
  auto body = call("GET", query.empty() ? "/v1/allocations" : "/v1/allocations?" + query);
  if (!body) return std::move(body).error();
  return parse_lease_list(*body);
}

Result<DeviceInfo> SriovdApi::device(const PciAddress& address) const {
  auto body = call("GET", "/v1/devices/" + address.to_string());
  if (!body) return std::move(body).error();
  return parse_device(*body);
}

Result<Lease> SriovdApi::allocate(const std::string& pool, const PciAddress& address, const std::string& consumer_name,
                                  const std::string& idempotency_key) const {
  json req = {
      {"pool", pool}, {"address", address.to_string()}, {"consumer", {{"kind", "pod"}, {"name", consumer_name}}}};
  std::vector<std::string> headers{"Idempotency-Key: " + idempotency_key};
  auto r = client_.request("POST", "/v1/allocations", req.dump(), headers);
  if (!r && r.error().message.rfind("cannot reach", 0) != 0) {
    // The request went out but no answer came back: it may or may not have been applied. The
    // same key makes the retry return the lease if it was.
    r = client_.request("POST", "/v1/allocations", req.dump(), headers);
  }
  if (!r) return std::move(r).error();
  if (r->status / 100 != 2) return Error::make(code_for_status(r->status), problem_detail(*r));
  return parse_lease(std::string_view(r->body));
}

Result<void> SriovdApi::release(const std::string& lease_id) const {
  auto body = call("DELETE", "/v1/allocations/" + lease_id);
  if (!body && body.error().code != ErrorCode::not_found) return std::move(body).error();
  return ok();
}

std::string random_key() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace sriovd::k8s
