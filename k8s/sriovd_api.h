// SriovdApi: the calls sriovd-k8s makes to sriovd's REST API, typed. It wraps one cli::Client,
// so like it an instance belongs to one thread (use SriovdApi::for_this_thread). HTTP error
// answers become Errors whose code follows the status (404 not_found, 409 conflict,
// 422 invalid, 503 unavailable) and whose message is sriovd's problem+json detail.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/client.h"
#include "k8s/pool.h"

namespace sriovd::k8s {

class SriovdApi {
 public:
  explicit SriovdApi(cli::Endpoint endpoint) : client_(std::move(endpoint)) {}

  // The instance of the calling thread for `endpoint` (created on first use).
  static SriovdApi& for_this_thread(const cli::Endpoint& endpoint);

  Result<std::vector<Pool>> pools();
  Result<std::vector<Lease>> leases(const std::string& query = {});  // query: "consumer_kind=pod"
  Result<DeviceInfo> device(const PciAddress& address);

  // POST /v1/allocations for one member of `pool`, consumer kind pod. The idempotency key makes
  // a retried request (connection lost before the answer) return the same lease.
  Result<Lease> allocate(const std::string& pool, const PciAddress& address, const std::string& consumer_name,
                         const std::string& idempotency_key);
  // DELETE /v1/allocations/{id}: sriovd resets the device. A lease already gone is success.
  Result<void> release(const std::string& lease_id);

 private:
  Result<std::string> call(const std::string& method, const std::string& path, const std::string& body = {},
                           const std::vector<std::string>& headers = {});
  cli::Client client_;
};

// A fresh random idempotency key (32 hex digits from the kernel's random source).
std::string random_key();

}  // namespace sriovd::k8s
