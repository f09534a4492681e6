// SriovdApi: the calls sriovd-k8s makes to sriovd's REST API over its unix socket, typed. HTTP
// error answers become Errors whose code follows the status (404 not_found, 409 conflict,
// 422 invalid, 503 unavailable) and whose message is sriovd's problem+json detail.
// Stateless apart from the socket path: any thread may use one instance.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "k8s/http.h"
#include "k8s/pool.h"

namespace sriovd::k8s {

class SriovdApi {
 public:
  explicit SriovdApi(std::string socket_path) : client_(std::move(socket_path)) {}
  std::string describe() const { return client_.describe(); }

  Result<std::vector<Pool>> pools() const;
  Result<std::vector<Lease>> leases(const std::string& query = {}) const;  // query: "consumer_kind=pod"
  Result<DeviceInfo> device(const PciAddress& address) const;

  // POST /v1/allocations for one member of `pool`, consumer kind pod. The idempotency key makes
  // a retried request (connection lost before the answer) return the same lease.
  Result<Lease> allocate(const std::string& pool, const PciAddress& address, const std::string& consumer_name,
                         const std::string& idempotency_key) const;
  // DELETE /v1/allocations/{id}: sriovd resets the device. A lease already gone is success.
  Result<void> release(const std::string& lease_id) const;

 private:
  Result<std::string> call(const std::string& method, const std::string& path, const std::string& body = {},
                           const std::vector<std::string>& headers = {}) const;
  UnixHttpClient client_;
};

// A fresh random idempotency key (32 hex digits from the kernel's random source).
std::string random_key();

}  // namespace sriovd::k8s
