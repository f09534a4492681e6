// The REST API: a function from Request to Response over the host model.
//
// Routing and every handler live here; the HTTP server only moves bytes. Responses for devices
// and groups are rendered once per snapshot generation and reused, so a GET is a lookup and a
// copy. Thread-safe: handle() may run on any number of server threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/host_model.h"
#include "rest/http.h"

namespace sriovd::rest {

struct ApiOptions {
  std::string version = "0.0.0";
  std::string openapi_json;  // served at /v1/openapi.json
};

class Api {
 public:
  // `agent` (may be null: a read-only API) carries out the mutating calls.
  Api(const agent::HostModel& model, ApiOptions options, agent::Agent* agent = nullptr);
  Response handle(const Request& request) const;

  // Set once the daemon has finished start-up (inventory, reconcile); /readyz answers 503 before.
  void set_ready(bool ready) { ready_.store(ready, std::memory_order_release); }

 private:
  struct Rendered;
  std::shared_ptr<const Rendered> rendered(const std::shared_ptr<const agent::Snapshot>& snap) const;

  Response get_host(const Request& req, const agent::Snapshot& s) const;
  Response mutate_device(const Request& req, const std::string& address, const std::string& what) const;
  Response list_devices(const Request& req, const agent::Snapshot& s, const Rendered& r) const;
  Response get_device(const Request& req, const std::string& address, const agent::Snapshot& s,
                      const Rendered& r) const;
  Response list_groups(const Request& req, const agent::Snapshot& s, const Rendered& r) const;
  Response get_group(const Request& req, const std::string& number, const agent::Snapshot& s,
                     const Rendered& r) const;

  const agent::HostModel& model_;
  ApiOptions options_;
  agent::Agent* agent_;
  std::atomic<bool> ready_{false};
  mutable std::mutex render_mu_;                                      // serialises rendering
  mutable std::atomic<std::shared_ptr<const Rendered>> rendered_;     // latest rendering
};

}  // namespace sriovd::rest
