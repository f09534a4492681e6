// REST handlers for pools and leases: /v1/pools and /v1/allocations.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "agent/vf_config_json.h"
#include "base/json_writer.h"
#include "rest/api.h"
#include "rest/encode.h"
#include "rest/problem.h"
#include "rest/responses.h"
#include "schemas/validator.h"

namespace sriovd::rest {

using nlohmann::json;

namespace {

// The body as JSON checked against `schema`, or the problem to answer.
Result<json> read_body(const Request& req, const std::string& schema, bool optional = false) {
  const std::string* ct = req.header("content-type");
  if (optional && req.body.empty()) return json::object();
  if (ct && ct->find("json") == std::string::npos)
    return Error::make(ErrorCode::bad_request, "415:the body must be application/json, not " + *ct);
  auto body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return Error::make(ErrorCode::bad_request, "the body is not JSON", "body");
  if (auto v = schemas::api_validator().validate(schema, body); !v) return std::move(v).error();
  return body;
}

Response body_problem(const Error& e, const Request& req) {
  if (e.message.rfind("415:", 0) == 0) return problem(415, "unsupported_media_type", e.message.substr(4), req.path);
  return problem(e, req.path);
}

json encode_pool(const agent::PoolSpec& p, const agent::Snapshot& s) {
  json j = agent::pool_to_json(p);
  auto members = agent::pool_members(p, s);
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

void add_pool_metrics(prometheus::Registry& reg, const agent::Snapshot& snap) {
  if (!snap.book) return;
  auto& pool_devices = prometheus::BuildGauge()
                           .Name("sriovd_pool_devices")
                           .Help("Members of a pool by state: free (healthy, not leased), leased, unhealthy (not leased).")
                           .Register(reg);
  auto& pf_leased = prometheus::BuildGauge()
                        .Name("sriovd_pf_leased_vfs")
                        .Help("VFs of a PF that are leased.")
                        .Register(reg);
  auto& leases = prometheus::BuildGauge().Name("sriovd_leases").Help("Leases by state.").Register(reg);
  for (const auto& p : snap.book->pools) {
    double free = 0, leased = 0, unhealthy = 0;
    for (const auto& m : agent::pool_members(p, snap)) {
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
        .Add({{"pf", v.device.address.to_string()}, {"netdev", v.device.netdevs.empty() ? "" : v.device.netdevs.front()}})
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
  w.key("id").value(l.id);
  w.key("libvirt_xml").optional(xml);
  w.key("pool").optional(l.pool);
  w.key("state").value(to_string(l.state == agent::LeaseState::allocating ? agent::LeaseState::active : l.state));
  w.key("vf_config");
  if (l.vf_config) w.raw(agent::vf_config_to_json(*l.vf_config).dump());
  else w.null();
  w.end_object();
  return out;
}

Response Api::pools(const Request& req, const std::vector<std::string_view>& parts) const {
  auto snap = model_.current();
  const agent::LeaseBook& book = *snap->book;
  if (parts.size() == 2) {
    if (req.method == "GET" || req.method == "HEAD") {
      for (const auto& [k, v] : req.query)
        return problem(400, "bad_request", "query parameter '" + k + "': unknown parameter", req.path, k);
      json list = json::array();
      for (const auto& p : book.pools) list.push_back(encode_pool(p, *snap));
      return json_response(json({{"pools", list}, {"count", book.pools.size()}}).dump());
    }
    if (req.method != "POST") return method_not_allowed(req, "GET, HEAD, POST");
  } else if (req.method != "GET" && req.method != "HEAD" && req.method != "PUT" && req.method != "DELETE") {
    return method_not_allowed(req, "GET, HEAD, PUT, DELETE");
  }
  const std::string name = parts.size() == 3 ? std::string(parts[2]) : std::string();
  if (req.method == "GET" || req.method == "HEAD") {
    const agent::PoolSpec* p = book.pool(name);
    if (!p) return problem(404, "not_found", "no pool named '" + name + "'", req.path);
    return json_response(encode_pool(*p, *snap).dump());
  }
  if (!agent_) return problem(503, "unavailable", "this sriovd serves a read-only API", req.path);
  if (req.method == "DELETE") {
    if (auto r = agent_->delete_pool(name); !r) return problem(r.error(), req.path);
    Response resp;
    resp.status = 204;
    resp.content_type.clear();
    return resp;
  }
  auto body = read_body(req, "PoolRequest");
  if (!body) return body_problem(body.error(), req);
  if (req.method == "PUT" && body->value("name", name) != name)
    return problem(422, "invalid", "name: the body names pool '" + body->value("name", "") + "' but the path '" + name + "'",
                   req.path, "name");
  if (req.method == "PUT") (*body)["name"] = name;
  auto spec = agent::pool_from_json(*body);
  if (!spec) return problem(spec.error(), req.path);
  auto r = agent_->create_pool(*spec, req.method == "PUT");
  if (!r) return problem(r.error(), req.path);
  auto now = model_.current();
  return json_response(encode_pool(*r, *now).dump(), req.method == "POST" ? 201 : 200);
}

Response Api::allocations(const Request& req, const std::vector<std::string_view>& parts) const {
  auto snap = model_.current();
  const agent::LeaseBook& book = *snap->book;
  if (parts.size() == 2) {
    if (req.method == "GET" || req.method == "HEAD") {
      std::optional<std::string> pool, kind, name;
      std::optional<PciAddress> address;
      for (const auto& [k, v] : req.query) {
        if (k == "pool") pool = v;
        else if (k == "consumer_kind") kind = v;
        else if (k == "consumer_name") name = v;
        else if (k == "address") {
          address = PciAddress::parse(v);
          if (!address)
            return problem(400, "bad_request", "query parameter 'address': '" + v + "' is not a PCI address like 0000:17:00.0",
                           req.path, "address");
        } else {
          return problem(400, "bad_request", "query parameter '" + k + "': unknown parameter; known: pool, consumer_kind, consumer_name, address",
                         req.path, k);
        }
      }
      std::vector<const agent::Lease*> list;
      for (const auto& [id, l] : book.leases) {
        if (l.state == agent::LeaseState::allocating) continue;
        if (pool && l.pool != *pool) continue;
        if (kind && l.consumer_kind != *kind) continue;
        if (name && l.consumer_name != *name) continue;
        if (address && l.address != *address) continue;
        list.push_back(&l);
      }
      std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->created_at != b->created_at ? a->created_at < b->created_at : a->id < b->id; });
      std::string out = "{\"allocations\":[";
      for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + encode_lease(*list[i], *snap);
      out += "],\"count\":" + std::to_string(list.size()) + "}";
      return json_response(std::move(out));
    }
    if (req.method != "POST") return method_not_allowed(req, "GET, HEAD, POST");
    if (!agent_) return problem(503, "unavailable", "this sriovd serves a read-only API", req.path);
    auto body = read_body(req, "AllocationRequest");
    if (!body) return body_problem(body.error(), req);
    agent::AllocationRequest a;
    if (body->contains("pool")) a.pool = (*body)["pool"].get<std::string>();
    if (body->contains("address")) {
      a.address = PciAddress::parse((*body)["address"].get<std::string>());
      if (!a.address) return problem(422, "invalid", "address: not a PCI address", req.path, "address");
    }
    a.consumer_kind = (*body)["consumer"]["kind"].get<std::string>();
    a.consumer_name = (*body)["consumer"]["name"].get<std::string>();
    if (body->contains("numa_node")) a.numa_node = (*body)["numa_node"].get<int>();
    if (body->contains("policy")) a.policy = agent::parse_policy((*body)["policy"].get<std::string>());
    if (body->contains("vf_config") && !(*body)["vf_config"].is_null()) {
      auto c = agent::vf_config_from_json((*body)["vf_config"]);
      if (!c) {
        Error e = std::move(c).error();
        e.field = "vf_config." + e.field;
        return problem(e, req.path);
      }
      a.vf_config = *c;
    }
    if (const std::string* key = req.header("idempotency-key")) {
      if (key->empty() || key->size() > 255)
        return problem(400, "bad_request", "header Idempotency-Key: 1 to 255 characters", req.path, "Idempotency-Key");
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

  const std::string id(parts[2]);
  if (parts.size() == 4) {
    const bool attach = parts[3] == "attach";
    if (!attach && parts[3] != "detach") return problem(404, "not_found", "no such resource: " + req.path, req.path);
    if (req.method != "POST") return method_not_allowed(req, "POST");
    if (!agent_) return problem(503, "unavailable", "this sriovd serves a read-only API", req.path);
    const agent::Lease* l = book.lease(id);
    if (!l || l->state == agent::LeaseState::allocating) return problem(404, "not_found", "no lease " + id, req.path);
    auto body = read_body(req, "AttachRequest", true);
    if (!body) return body_problem(body.error(), req);
    const auto& fn = attach ? options_.attach : options_.detach;
    if (!fn)
      return problem(503, "unavailable", "libvirt is not configured in this sriovd (--libvirt-uri)", req.path);
    const agent::Attachment asked = attachment_asked(*body, attach ? std::nullopt : l->attached);
    if (attach && asked.domain.empty()) return problem(422, "invalid", "domain: required", req.path, "domain");
    if (!asked.live && !asked.config)
      return problem(422, "invalid", "live and config are both false: nothing to do", req.path, "live");
    auto xml = options_.lease_xml ? options_.lease_xml(*l, *snap) : std::nullopt;
    if (!xml) return problem(409, "conflict", "lease " + id + " has no libvirt XML", req.path);
    // A detach goes by the attachment as recorded under the agent's lock (set_attachment has
    // checked there is one), not by the snapshot read above.
    auto r = agent_->set_attachment(id, attach ? std::optional<agent::Attachment>(asked) : std::nullopt,
                                    [&](const agent::Lease& lease) -> Result<void> {
                                      if (attach) return fn(lease, *xml, asked);
                                      auto at = detachment(lease, *body);
                                      if (!at) return std::move(at).error();
                                      return fn(lease, *xml, *at);
                                    });
    if (!r) return problem(r.error(), req.path);
    return json_response(encode_lease(*r, *model_.current()));
  }
  if (req.method == "GET" || req.method == "HEAD") {
    const agent::Lease* l = book.lease(id);
    if (!l || l->state == agent::LeaseState::allocating) return problem(404, "not_found", "no lease " + id, req.path);
    return json_response(encode_lease(*l, *snap));
  }
  if (req.method != "DELETE") return method_not_allowed(req, "GET, HEAD, DELETE");
  if (!agent_) return problem(503, "unavailable", "this sriovd serves a read-only API", req.path);
  auto t0 = std::chrono::steady_clock::now();
  auto r = agent_->release(id);
  metrics_.observe("release", r ? "ok" : to_string(r.error().code), std::chrono::steady_clock::now() - t0);
  if (!r) return problem(r.error(), req.path);
  auto now = model_.current();
  std::string device = "null";
  if (const agent::DeviceView* v = now->find(r->address)) device = encode_device(*v);
  agent::Lease released = *r;
  released.state = agent::LeaseState::released;
  released.attached.reset();  // a release detaches first (or fails)
  std::string lease_json = encode_lease(released, *snap);
  return json_response("{\"lease\":" + lease_json + ",\"device\":" + device + "}");
}

}  // namespace sriovd::rest
