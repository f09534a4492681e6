#include "k8s/sriovd_api.h"

#include <sys/random.h>

#include <memory>
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

SriovdApi& SriovdApi::for_this_thread(const cli::Endpoint& endpoint) {
  thread_local std::unique_ptr<SriovdApi> api;
  if (!api || api->client_.endpoint().describe() != endpoint.describe()) api = std::make_unique<SriovdApi>(endpoint);
  return *api;
}

Result<std::string> SriovdApi::call(const std::string& method, const std::string& path, const std::string& body,
                                    const std::vector<std::string>& headers) {
  auto r = client_.request(method, path, body, "application/json", headers);
  if (!r) return std::move(r).error();
  if (r->status >= 200 && r->status < 300) return std::move(r->body);
  return Error::make(code_for_status(r->status), cli::error_message(*r));
}

Result<std::vector<Pool>> SriovdApi::pools() {
  auto body = call("GET", "/v1/pools");
  if (!body) return std::move(body).error();
  return parse_pool_list(*body);
}

Result<std::vector<Lease>> SriovdApi::leases(const std::string& query) {
  auto body = call("GET", query.empty() ? "/v1/allocations" : "/v1/allocations?" + query);
  if (!body) return std::move(body).error();
  return parse_lease_list(*body);
}

Result<DeviceInfo> SriovdApi::device(const PciAddress& address) {
  auto body = call("GET", "/v1/devices/" + address.to_string());
  if (!body) return std::move(body).error();
  return parse_device(*body);
}

Result<Lease> SriovdApi::allocate(const std::string& pool, const PciAddress& address, const std::string& consumer_name,
                                  const std::string& idempotency_key) {
  json req = {{"pool", pool},
              {"address", address.to_string()},
              {"consumer", {{"kind", "pod"}, {"name", consumer_name}}}};
  std::vector<std::string> headers{"Idempotency-Key: " + idempotency_key};
  auto body = call("POST", "/v1/allocations", req.dump(), headers);
  if (!body && body.error().code == ErrorCode::unavailable && body.error().errnum == 0 &&
      body.error().message.rfind("cannot reach", 0) == 0) {
    // No answer came back: the request may or may not have been applied. The same key makes
    // the retry return the lease if it was.
    body = call("POST", "/v1/allocations", req.dump(), headers);
  }
  if (!body) return std::move(body).error();
  return parse_lease(std::string_view(*body));
}

Result<void> SriovdApi::release(const std::string& lease_id) {
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
