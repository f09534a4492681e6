// REST handlers for pools and leases: /v1/pools and /v1/allocations.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "agent/vf_config_json.h"
#include "base/json_writer.h"
#include "rest/api.h"
#include "rest/body.h"
#include "rest/encode.h"
#include "rest/problem.h"
#include "rest/responses.h"

namespace sriovd::rest {

using nlohmann::json;

namespace {

json encode_pool(const agent::PoolSpec& p, const std::vector<agent::PoolMember>& members) {
  json j = agent::pool_to_json(p);
  json devices = json::array();
  size_t leased = 0, free = 0, unhealthy = 0;
  for (const auto& m : members) {
    const pci::Device& d = m.view->device;
    if (m.lease) ++leased;
    else if (m.healthy) ++free;
    if (!m.healthy) ++unhealthy;
    devices.push_back({{"address", d.address.to_string()},
                       {"pf", d.physfn ? json(d.physfn->to_string()) : json(nullptr)},
                       {"vf_index", d.vf_index ? json(*d.vf_index) : json(nullptr)},
                       {"numa_node", d.numa_node ? json(*d.numa_node) : json(nullptr)},
                       {"iommu_group", d.iommu_group ? json(*d.iommu_group) : json(nullptr)},
                       {"netdevs", d.netdevs},
                       {"driver", d.driver ? json(*d.driver) : json(nullptr)},
                       {"healthy", m.healthy},
                       {"reason", m.healthy ? json(nullptr) : json(m.reason)},
                       {"lease", m.lease ? json(m.lease->id) : json(nullptr)}});
  }
  j["capacity"] = members.size();
  j["free"] = free;
  j["leased"] = leased;
  j["unhealthy"] = unhealthy;
  j["devices"] = std::move(devices);
  return j;
}

// What an attach or detach body asks, with what the body leaves out taken from the lease's
// current attachment (`now`), or the defaults: live, not config.
agent::Attachment attachment_asked(const json& body, const std::optional<agent::Attachment>& now) {
  agent::Attachment at;
  at.domain = body.value("domain", now ? now->domain : std::string());
  at.live = body.value("live", now ? now->live : true);
  at.config = body.value("config", now ? now->config : false);
  return at;
}

// The detach of an attached lease: the body may name its domain (no other) and may add a
// definition, but not leave out one the device is in, which would leave the device in the
// domain with no lease recording it.
Result<agent::Attachment> detachment(const agent::Lease& lease, const json& body) {
  const agent::Attachment& now = *lease.attached;
  agent::Attachment at = attachment_asked(body, now);
  if (at.domain != now.domain)
    return Error::make(ErrorCode::conflict,
                       "lease " + lease.id + " is attached to domain '" + now.domain + "', not '" + at.domain + "'",
                       "domain");
  if (now.live && !at.live)
    return Error::make(ErrorCode::invalid,
                       "live: lease " + lease.id + " is attached to the running domain '" + now.domain +
                           "'; the detach must remove it from there too",
                       "live");
  if (now.config && !at.config)
    return Error::make(ErrorCode::invalid,
                       "config: lease " + lease.id + " is in the persistent definition of domain '" + now.domain +
                           "'; the detach must remove it from there too",
                       "config");
  return at;
}

}  // namespace

void add_pool_metrics(prometheus::Registry& reg, const agent::Snapshot& snap, const PoolMembersFn& members) {
  if (!snap.book) return;
  auto& pool_devices =
      prometheus::BuildGauge()
          .Name("sriovd_pool_devices")
          .Help("Members of a pool by state: free (healthy, not leased), leased, unhealthy (not leased).")
          .Register(reg);
  auto& pf_leased =
      prometheus::BuildGauge().Name("sriovd_pf_leased_vfs").Help("VFs of a PF that are leased.").Register(reg);
  auto& leases = prometheus::BuildGauge().Name("sriovd_leases").Help("Leases by state.").Register(reg);
  for (const auto& p : snap.book->pools) {
    double free = 0, leased = 0, unhealthy = 0;
    for (const auto& m : members(p)) {
      if (m.lease) ++leased;
      else if (m.healthy) ++free;
      else ++unhealthy;
    }
    pool_devices.Add({{"pool", p.name}, {"state", "free"}}).Set(free);
    pool_devices.Add({{"pool", p.name}, {"state", "leased"}}).Set(leased);
    pool_devices.Add({{"pool", p.name}, {"state", "unhealthy"}}).Set(unhealthy);
  }
  std::map<std::string, double> by_state = {{"active", 0}, {"releasing", 0}};
  std::map<PciAddress, double> per_pf;
  for (const auto& [id, l] : snap.book->leases) {
    if (l.state == agent::LeaseState::allocating) continue;
    by_state[std::string(to_string(l.state))] += 1;
    if (const agent::DeviceView* v = snap.find(l.address); v && v->device.physfn) per_pf[*v->device.physfn] += 1;
  }
  for (const auto& [state, n] : by_state) leases.Add({{"state", state}}).Set(n);
  for (const auto& v : snap.devices) {
    if (!v.device.sriov) continue;
    auto it = per_pf.find(v.device.address);
    pf_leased
        .Add({{"pf", v.device.address.to_string()},
              {"netdev", v.device.netdevs.empty() ? "" : v.device.netdevs.front()}})
        .Set(it == per_pf.end() ? 0 : it->second);
  }
}

std::string Api::encode_lease(const agent::Lease& l, const agent::Snapshot& s) const {
  std::optional<std::string> xml;
  if (options_.lease_xml) xml = options_.lease_xml(l, s);
  std::string out;
  out.reserve(512 + (xml ? xml->size() : 0));
  JsonWriter w(out);
  w.begin_object();
  w.key("address").value(l.address.to_string());
  l.write_attached_to(w);
  l.write_consumer(w);
  w.key("created_at").value(l.created_at);
  if (!l.error.empty()) w.key("error").value(l.error);
  if (l.found_vf_config) w.key("found_vf_config").raw(agent::vf_config_to_json(*l.found_vf_config).dump());
  w.key("group_members").begin_array();
  for (const auto& m : l.group_members) w.value(m.address.to_string());
  w.end_array();
  w.key("id").value(l.id);
  w.key("libvirt_xml").optional(xml);
  w.key("pool").optional(l.pool);
  if (l.release_report) {
    w.key("release_report");
    l.release_report->write(w);
  }
  if (!l.reset.empty()) w.key("reset").value(l.reset);
  if (!l.reset_error.empty()) w.key("reset_error").value(l.reset_error);
  w.key("state").value(to_string(l.state == agent::LeaseState::allocating ? agent::LeaseState::active : l.state));
  w.key("vf_config");
  if (l.vf_config) w.raw(agent::vf_config_to_json(*l.vf_config).dump());
  else w.null();
  w.end_object();
  return out;
}

std::vector<agent::PoolMember> Api::members_now(const agent::PoolSpec& pool, const agent::Snapshot& snap) const {
  return agent_ ? agent_->members_now(pool, snap) : agent::pool_members(pool, snap);
}

Response Api::list_pools(const RouteCall& call) const {
  const Request& req = call.req;
  for (const auto& [k, v] : req.query)
    return problem(ErrorCode::bad_request, "query parameter '" + k + "': unknown parameter", req.path, k);
  const agent::LeaseBook& book = *call.snap->book;
  json list = json::array();
  for (const auto& p : book.pools) list.push_back(encode_pool(p, members_now(p, *call.snap)));
  return json_response(json({{"pools", list}, {"count", book.pools.size()}}).dump());
}

Response Api::get_pool(const RouteCall& call) const {
  const std::string& name = call.params[0];
  const agent::PoolSpec* p = call.snap->book->pool(name);
  if (!p) return problem(ErrorCode::not_found, "no pool named '" + name + "'", call.req.path);
  return json_response(encode_pool(*p, members_now(*p, *call.snap)).dump());
}

Response Api::post_pool(const RouteCall& call) const { return write_pool(call, std::string(), false); }

Response Api::put_pool(const RouteCall& call) const { return write_pool(call, call.params[0], true); }

// POST /v1/pools creates the pool the body names; PUT /v1/pools/{name} creates or replaces the
// one the path names (a body naming another is refused).
Response Api::write_pool(const RouteCall& call, const std::string& name, bool replace) const {
  const Request& req = call.req;
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  auto body = read_json_body(req, "PoolRequest");
  if (!body) return std::move(*body.problem);
  if (replace && body.json.value("name", name) != name)
    return problem(ErrorCode::invalid,
                   "name: the body names pool '" + body.json.value("name", "") + "' but the path '" + name + "'",
                   req.path, "name");
  if (replace) body.json["name"] = name;
  auto spec = agent::pool_from_json(body.json);
  if (!spec) return problem(spec.error(), req.path);
  auto r = agent_->create_pool(*spec, replace);
  if (!r) return problem(r.error(), req.path);
  auto now = model_.current();
  return json_response(encode_pool(*r, members_now(*r, *now)).dump(), replace ? 200 : 201);
}

Response Api::delete_pool(const RouteCall& call) const {
  const Request& req = call.req;
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  if (auto r = agent_->delete_pool(call.params[0]); !r) return problem(r.error(), req.path);
  Response resp;
  resp.status = 204;
  resp.content_type.clear();
  return resp;
}

Response Api::list_allocations(const RouteCall& call) const {
  const Request& req = call.req;
  std::optional<std::string> pool, kind, name;
  std::optional<PciAddress> address;
  for (const auto& [k, v] : req.query) {
    if (k == "pool") pool = v;
    else if (k == "consumer_kind") kind = v;
    else if (k == "consumer_name") name = v;
    else if (k == "address") {
      address = PciAddress::parse(v);
      if (!address)
        return problem(ErrorCode::bad_request,
                       "query parameter 'address': '" + v + "' is not a PCI address like 0000:17:00.0", req.path,
                       "address");
    } else {
      return problem(
          ErrorCode::bad_request,
          "query parameter '" + k + "': unknown parameter; known: pool, consumer_kind, consumer_name, address",
          req.path, k);
    }
  }
  std::vector<const agent::Lease*> list;
  for (const auto& [id, l] : call.snap->book->leases) {
    if (l.state == agent::LeaseState::allocating) continue;
    if (pool && l.pool != *pool) continue;
    if (kind && l.consumer_kind != *kind) continue;
    if (name && l.consumer_name != *name) continue;
    if (address && l.address != *address) continue;
    list.push_back(&l);
  }
  std::sort(list.begin(), list.end(), [](auto* a, auto* b) {
    return a->created_at != b->created_at ? a->created_at < b->created_at : a->id < b->id;
  });
  std::string out = "{\"allocations\":[";
  for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + encode_lease(*list[i], *call.snap);
  out += "],\"count\":" + std::to_string(list.size()) + "}";
  return json_response(std::move(out));
}

Response Api::allocate(const RouteCall& call) const {
  const Request& req = call.req;
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  auto read = read_json_body(req, "AllocationRequest");
  if (!read) return std::move(*read.problem);
  const json& body = read.json;
  agent::AllocationRequest a;
  if (body.contains("pool")) a.pool = body["pool"].get<std::string>();
  if (body.contains("address")) {
    a.address = PciAddress::parse(body["address"].get<std::string>());
    if (!a.address) return problem(ErrorCode::invalid, "address: not a PCI address", req.path, "address");
  }
  a.consumer_kind = body["consumer"]["kind"].get<std::string>();
  a.consumer_name = body["consumer"]["name"].get<std::string>();
  if (body.contains("numa_node")) a.numa_node = body["numa_node"].get<int>();
  if (body.contains("policy")) a.policy = agent::parse_policy(body["policy"].get<std::string>());
  if (body.contains("vf_config") && !body["vf_config"].is_null()) {
    auto c = agent::vf_config_from_json(body["vf_config"]);
    if (!c) {
      Error e = std::move(c).error();
      e.field = "vf_config." + e.field;
      return problem(e, req.path);
    }
    a.vf_config = *c;
  }
  if (const std::string* key = req.header("idempotency-key")) {
    if (key->empty() || key->size() > 255)
      return problem(ErrorCode::bad_request, "header Idempotency-Key: 1 to 255 characters", req.path,
                     "Idempotency-Key");
    a.idempotency_key = *key;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = agent_->allocate(a);
  metrics_.observe("allocate", r ? "ok" : to_string(r.error().code), std::chrono::steady_clock::now() - t0);
  if (!r) return problem(r.error(), req.path);
  auto now = model_.current();
  Response resp = json_response(encode_lease(r->lease, *now), r->created ? 201 : 200);
  resp.headers.emplace_back("Location", "/v1/allocations/" + r->lease.id);
  return resp;
}

Response Api::get_allocation(const RouteCall& call) const {
  const std::string& id = call.params[0];
  const agent::Lease* l = call.snap->book->lease(id);
  if (!l || l->state == agent::LeaseState::allocating)
    return problem(ErrorCode::not_found, "no lease " + id, call.req.path);
  return json_response(encode_lease(*l, *call.snap));
}

Response Api::release(const RouteCall& call) const {
  const Request& req = call.req;
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  auto t0 = std::chrono::steady_clock::now();
  auto r = agent_->release(call.params[0]);
  metrics_.observe("release", r ? "ok" : to_string(r.error().code), std::chrono::steady_clock::now() - t0);
  if (!r) return problem(r.error(), req.path);
  if (r->release_report) metrics_.count_release(r->release_report->clean());
  auto now = model_.current();
  std::string device = "null";
  if (const agent::DeviceView* v = now->find(r->address)) device = encode_device(*v);
  agent::Lease released = *r;
  released.state = agent::LeaseState::released;
  released.attached.reset();  // a release detaches first (or fails)
  std::string lease_json = encode_lease(released, *call.snap);
  return json_response("{\"lease\":" + lease_json + ",\"device\":" + device + "}");
}

Response Api::attach(const RouteCall& call) const { return set_attachment(call, true); }

Response Api::detach(const RouteCall& call) const { return set_attachment(call, false); }

// POST /v1/allocations/{id}/attach|detach: the lease's device into or out of a libvirt domain.
Response Api::set_attachment(const RouteCall& call, bool attach) const {
  const Request& req = call.req;
  const std::string& id = call.params[0];
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  const agent::Lease* l = call.snap->book->lease(id);
  if (!l || l->state == agent::LeaseState::allocating) return problem(ErrorCode::not_found, "no lease " + id, req.path);
  auto body = read_json_body(req, "AttachRequest", true);
  if (!body) return std::move(*body.problem);
  const auto& fn = attach ? options_.attach : options_.detach;
  if (!fn) return problem(ErrorCode::unavailable, "libvirt is not configured in this sriovd (--libvirt-uri)", req.path);
  const agent::Attachment asked = attachment_asked(body.json, attach ? std::nullopt : l->attached);
  if (attach && asked.domain.empty()) return problem(ErrorCode::invalid, "domain: required", req.path, "domain");
  if (!asked.live && !asked.config)
    return problem(ErrorCode::invalid, "live and config are both false: nothing to do", req.path, "live");
  auto xml = options_.lease_xml ? options_.lease_xml(*l, *call.snap) : std::nullopt;
  if (!xml) return problem(ErrorCode::conflict, "lease " + id + " has no libvirt XML", req.path);
  // A detach goes by the attachment as recorded under the agent's lock (set_attachment has
  // checked there is one), not by the snapshot read above.
  auto r = agent_->set_attachment(id, attach ? std::optional<agent::Attachment>(asked) : std::nullopt,
                                  [&](const agent::Lease& lease) -> Result<void> {
                                    if (attach) return fn(lease, *xml, asked);
                                    auto at = detachment(lease, body.json);
                                    if (!at) return std::move(at).error();
                                    return fn(lease, *xml, *at);
                                  });
  if (!r) return problem(r.error(), req.path);
  return json_response(encode_lease(*r, *model_.current()));
}

}  // namespace sriovd::rest
