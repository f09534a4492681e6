// The REST API: a function from Request to Response over the host model.
//
// Routing and every handler live here; the HTTP server only moves bytes. Responses for devices
// and groups are rendered once per snapshot generation and reused, so a GET is a lookup and a
// copy. Thread-safe: handle() may run on any number of server threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/events.h"
#include "agent/host_model.h"
#include "base/mutex.h"
#include "rest/http.h"
#include "rest/metrics.h"

namespace sriovd::rest {

struct ApiOptions {
  std::string version = "0.0.0";
  std::string openapi_json;  // served at /v1/openapi.json
  // GET /v1/events streams hold a server worker thread each for as long as they are open, so
  // their number is capped below the worker pool (64 by default): beyond it a new stream is
  // refused with 503 and the other requests still find workers.
  int max_event_streams = 32;
  std::chrono::milliseconds event_heartbeat{15000};  // ": keepalive" when nothing happened
  // The libvirt device XML of a lease on a snapshot (null when unset or not describable).
  std::function<std::optional<std::string>(const agent::Lease&, const agent::Snapshot&)> lease_xml;
  // Attach and detach through libvirt; unset: those calls answer 503 (libvirt not configured).
  std::function<Result<void>(const agent::Lease&, const std::string& xml, const agent::Attachment&)> attach;
  std::function<Result<void>(const agent::Lease&, const std::string& xml, const agent::Attachment&)> detach;
};

// Pool and lease gauges of a snapshot, added to each /metrics scrape (rest/pools_api.cpp):
// sriovd_pool_devices{pool,state}, sriovd_pf_leased_vfs{pf,netdev}, sriovd_leases{state}.
void add_pool_metrics(prometheus::Registry& reg, const agent::Snapshot& snap);

class Api {
 public:
  // `agent` (may be null: a read-only API) carries out the mutating calls.
  Api(const agent::HostModel& model, ApiOptions options, agent::Agent* agent = nullptr);
  Response handle(const Request& request) const;

  // Set once the daemon has finished start-up (inventory, reconcile); /readyz answers 503 before.
  void set_ready(bool ready) { ready_.store(ready, std::memory_order_release); }

  // The daemon's event log behind GET /v1/events (none: 503 there). Set before serving; the
  // log must outlive the Api and be closed before the server stops, which ends the streams.
  void set_event_log(const agent::EventLog* events) { events_ = events; }

  // GET /metrics: operation counters fed by the handlers, the host read at each scrape. Other
  // parts of the daemon add their gauges with metrics().add_collector() and count their own
  // operations with metrics().observe().
  Metrics& metrics() const { return metrics_; }

 private:
  struct Rendered;
  std::shared_ptr<const Rendered> rendered(const std::shared_ptr<const agent::Snapshot>& snap) const
      EXCLUDES(render_mu_);

  Response get_host(const Request& req, const agent::Snapshot& s) const;
  // /v1/pools[/{name}] and /v1/allocations[/{id}[/attach|detach]] (rest/pools_api.cpp).
  Response pools(const Request& req, const std::vector<std::string_view>& parts) const;
  Response allocations(const Request& req, const std::vector<std::string_view>& parts) const;
  std::string encode_lease(const agent::Lease& l, const agent::Snapshot& s) const;
  Response mutate_device(const Request& req, const std::string& address, const std::string& what) const;
  Response list_devices(const Request& req, const agent::Snapshot& s, const Rendered& r) const;
  Response get_device(const Request& req, const std::string& address, const agent::Snapshot& s,
                      const Rendered& r) const;
  Response event_stream(const Request& req) const;
  Response get_metrics(const Request& req) const;
  Response list_groups(const Request& req, const agent::Snapshot& s, const Rendered& r) const;
  Response get_group(const Request& req, const std::string& number, const agent::Snapshot& s,
                     const Rendered& r) const;

  const agent::HostModel& model_;
  ApiOptions options_;
  agent::Agent* agent_;
  const agent::EventLog* events_ = nullptr;
  std::shared_ptr<std::atomic<int>> open_streams_ = std::make_shared<std::atomic<int>>(0);
  mutable Metrics metrics_;
  std::atomic<bool> ready_{false};
  // Serialises rendering, so a new generation is rendered once however many requests ask for it
  // at the same moment; readers load rendered_ without it.
  mutable Mutex render_mu_;
  mutable std::atomic<std::shared_ptr<const Rendered>> rendered_;  // latest rendering
};

}  // namespace sriovd::rest
