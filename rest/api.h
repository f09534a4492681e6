// The REST API: a function from Request to Response over the host model.
//
// Routing is one table (Api::routes(), rest/api.cpp) that handle() walks: each row names a
// method, a path pattern and the handler, a function from the parsed request to a response, so
// every handler is tested without a socket; the HTTP server only moves bytes. A path no row
// knows is a 404 problem; a known path asked with another method is a 405 with `Allow`. Responses
// for devices and groups are rendered once per snapshot generation and reused, so a GET is a
// lookup and a copy. Thread-safe: handle() may run on any number of server threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
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
// `members` gives a pool's members (Agent::members_now, or agent::pool_members without an agent).
using PoolMembersFn = std::function<std::vector<agent::PoolMember>(const agent::PoolSpec&)>;
void add_pool_metrics(prometheus::Registry& reg, const agent::Snapshot& snap, const PoolMembersFn& members);

class Api;

// What a request needs to be let through (decided by the Authorizer, rest/auth.h, by method and
// path; rest/api_test checks that it agrees with this column of the routing table).
enum class Access {
  open,    // no credentials: probes (/healthz, /readyz)
  read,    // a token unless reads are open; read-only tokens may
  change,  // a token that is not read-only; audited
};

// What a handler gets: the request, the values of the pattern's {name} segments in order, and
// the snapshot current when the request was routed (null for routes that do not need one).
struct RouteCall {
  const Request& req;
  std::vector<std::string> params;
  std::shared_ptr<const agent::Snapshot> snap;
};

// One row of the routing table.
struct Route {
  const char* method;   // "GET" answers HEAD too
  const char* pattern;  // "/v1/devices/{address}": a {name} segment matches any one segment
  Access access;
  // Answered 503 while the host has not been read yet (the handler can rely on call.snap).
  bool needs_snapshot;
  Response (Api::*handler)(const RouteCall&) const;

  bool mutates() const { return access == Access::change; }
};

class Api {
 public:
  // `agent` (may be null: a read-only API) carries out the mutating calls.
  Api(const agent::HostModel& model, ApiOptions options, agent::Agent* agent = nullptr);
  Response handle(const Request& request) const;

  // The routing table, in the order handle() walks it.
  static const std::vector<Route>& routes();

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
  // A snapshot's devices or its IOMMU groups as JSON, rendered once per snapshot generation on
  // first use (rest/api.cpp). The two are kept apart so that serving devices never holds the
  // groups' text, and the other way round.
  struct Rendered;
  enum class RenderedKind { devices, groups };
  std::shared_ptr<const Rendered> rendered(const std::shared_ptr<const agent::Snapshot>& snap, RenderedKind kind) const
      SRIOVD_EXCLUDES(render_mu_);

  // The handlers of the routing table: probes, metrics and documents (rest/api.cpp).
  Response healthz(const RouteCall& call) const;
  Response readyz(const RouteCall& call) const;
  Response get_metrics(const RouteCall& call) const;
  Response get_openapi(const RouteCall& call) const;
  Response event_stream(const RouteCall& call) const;
  // The host, devices and IOMMU groups (rest/api.cpp).
  Response get_host(const RouteCall& call) const;
  Response list_devices(const RouteCall& call) const;
  Response get_device(const RouteCall& call) const;
  Response put_sriov(const RouteCall& call) const;
  Response patch_vf_config(const RouteCall& call) const;
  Response put_driver(const RouteCall& call) const;
  Response put_mtu(const RouteCall& call) const;
  Response list_groups(const RouteCall& call) const;
  Response get_group(const RouteCall& call) const;
  // Pools and leases (rest/pools_api.cpp).
  Response list_pools(const RouteCall& call) const;
  Response get_pool(const RouteCall& call) const;
  Response post_pool(const RouteCall& call) const;
  Response put_pool(const RouteCall& call) const;
  Response delete_pool(const RouteCall& call) const;
  Response list_allocations(const RouteCall& call) const;
  Response get_allocation(const RouteCall& call) const;
  Response allocate(const RouteCall& call) const;
  Response release(const RouteCall& call) const;
  Response attach(const RouteCall& call) const;
  Response detach(const RouteCall& call) const;

  // What the handlers share.
  enum class DeviceChange { sriov, vf_config, driver, mtu };
  Response mutate_device(const RouteCall& call, DeviceChange what) const;
  Response write_pool(const RouteCall& call, const std::string& name, bool replace) const;
  // A pool's members as shown now (Agent::members_now: held ones are not free).
  std::vector<agent::PoolMember> members_now(const agent::PoolSpec& pool, const agent::Snapshot& snap) const;
  Response set_attachment(const RouteCall& call, bool attach) const;
  std::string encode_lease(const agent::Lease& l, const agent::Snapshot& s) const;

  const agent::HostModel& model_;
  ApiOptions options_;
  agent::Agent* agent_;
  const agent::EventLog* events_ = nullptr;
  std::shared_ptr<std::atomic<int>> open_streams_ = std::make_shared<std::atomic<int>>(0);
  mutable Metrics metrics_;
  std::atomic<bool> ready_{false};
  // Serialises rendering, so a new generation is rendered once however many requests ask for it
  // at the same moment; readers load the renderings without it.
  mutable Mutex render_mu_;
  mutable std::atomic<std::shared_ptr<const Rendered>> rendered_devices_;  // latest rendering of each
  mutable std::atomic<std::shared_ptr<const Rendered>> rendered_groups_;
};

}  // namespace sriovd::rest
