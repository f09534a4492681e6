#include "rest/api.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "agent/vf_config_json.h"
#include "base/utf8.h"
#include "pci/decode.h"
#include "rest/body.h"
#include "rest/encode.h"
#include "rest/problem.h"
#include "rest/responses.h"
#include "rest/sse.h"

namespace sriovd::rest {

using nlohmann::json;

// One snapshot's devices or groups as JSON: the list answer, {"<key>":[...],"count":N}, with
// each object a span of it. No allocation per object, so a rendering costs little more than its
// text, and the unfiltered list is answered with the text itself (Response::shared_text).
// The JSON of every device (or IOMMU group) of one snapshot, made once and shared by the
// answers that need it. Devices are rendered a chunk of the snapshot's device list at a time, and
// a chunk the snapshot shares with the one rendered before (its devices unchanged) keeps the
// text it had: a lease or one device read again renders a chunk, not the host. The whole list's
// text is put together from the parts for each answer that lists every device.
struct Api::Rendered {
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  // A run of objects, one after the other in one text.
  struct Part {
    std::shared_ptr<const std::vector<agent::DeviceView>> chunk;  // devices: the chunk rendered
    std::string text;
    std::vector<Span> spans;
    void add(const std::string& json) {
      spans.push_back({static_cast<uint32_t>(text.size()), static_cast<uint32_t>(json.size())});
      text += json;
    }
    std::string_view object(size_t i) const { return std::string_view(text).substr(spans[i].offset, spans[i].length); }
  };
  uint64_t generation = 0;
  const char* key = "";
  std::vector<std::shared_ptr<const Part>> parts;
  size_t per_part = std::numeric_limits<size_t>::max();  // objects per part but the last
  size_t count = 0;
  std::vector<int> numbers;  // groups: the number of each object, ascending

  std::string_view object(size_t i) const { return parts[i / per_part]->object(i % per_part); }
  // The group's JSON, or nullopt when the snapshot has no such group.
  std::optional<std::string_view> group(int number) const {
    auto it = std::lower_bound(numbers.begin(), numbers.end(), number);
    if (it == numbers.end() || *it != number) return std::nullopt;
    return object(static_cast<size_t>(it - numbers.begin()));
  }
  // The whole list as an answer, its text put together for it from the parts (not kept: the
  // parts are what stays, so the daemon holds the list's text once).
  Response list() const {
    size_t size = 32;
    for (const auto& p : parts) size += p->text.size() + p->spans.size();
    auto text = std::make_shared<std::string>();
    text->reserve(size);
    *text = std::string("{\"") + key + "\":[";
    bool first = true;
    for (const auto& p : parts)
      for (size_t i = 0; i < p->spans.size(); ++i) {
        if (!first) *text += ',';
        first = false;
        *text += p->object(i);
      }
    *text += "],\"count\":" + std::to_string(count) + "}";
    Response r;
    r.shared_view = *text;
    r.shared_text = std::move(text);
    return r;
  }
};

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

// Whether `parts` (the path's segments) match `pattern`; the {name} segments' values go to
// `params` in order. Walks the pattern in place: it runs for every row on every request.
bool match_pattern(std::string_view pattern, const std::vector<std::string_view>& parts,
                   std::vector<std::string>& params) {
  size_t n = 0;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '/') {
      ++i;
      continue;
    }
    size_t j = pattern.find('/', i);
    if (j == std::string_view::npos) j = pattern.size();
    const std::string_view segment = pattern.substr(i, j - i);
    if (n == parts.size()) return false;
    if (segment.front() == '{') params.emplace_back(parts[n]);
    else if (segment != parts[n]) return false;
    ++n;
    i = j;
  }
  return n == parts.size();
}

// A GET row answers HEAD too (the server sends the headers without the body).
bool answers(const Route& route, std::string_view method) {
  return method == route.method || (method == "HEAD" && std::string_view(route.method) == "GET");
}

// Adds a row's method (and HEAD after GET) to an Allow header's value.
void add_allowed(std::string& allow, std::string_view method) {
  if (!allow.empty()) allow += ", ";
  allow += method;
  if (method == "GET") allow += ", HEAD";
}

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return !s.empty();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Device filters from the query string, each validated with the parameter named in the error.
struct DeviceFilter {
  std::optional<uint16_t> vendor_id;
  std::optional<std::string> driver;  // "none": unbound
  std::optional<PciAddress> physfn;
  std::optional<int> numa_node;  // -1: none
  std::string class_prefix;      // 2, 4 or 6 hex digits, lower case

  bool empty() const { return !vendor_id && !driver && !physfn && !numa_node && class_prefix.empty(); }
  bool matches(const pci::Device& d) const {
    if (vendor_id && d.vendor_id != vendor_id) return false;
    if (driver) {
      if (*driver == "none" ? d.driver.has_value() : d.driver != *driver) return false;
    }
    if (physfn && d.physfn != physfn) return false;
    if (numa_node && d.numa_node.value_or(-1) != *numa_node) return false;
    if (!class_prefix.empty()) {
      if (!d.class_id || hex6(*d.class_id).compare(0, class_prefix.size(), class_prefix) != 0) return false;
    }
    return true;
  }
};

Result<DeviceFilter> parse_filter(const Request& req) {
  DeviceFilter f;
  auto bad = [](const std::string& field, const std::string& why) {
    return Error::make(ErrorCode::bad_request, "query parameter '" + field + "': " + why, field);
  };
  for (const auto& [k, v] : req.query) {
    if (k == "vendor_id") {
      if (v.size() != 4 || !is_hex(v)) return bad(k, "expected 4 hex digits such as 8086, got '" + v + "'");
      f.vendor_id = static_cast<uint16_t>(std::stoul(v, nullptr, 16));
    } else if (k == "driver") {
      if (v.empty()) return bad(k, "expected a driver name or 'none'");
      f.driver = v;
    } else if (k == "physfn") {
      auto a = PciAddress::parse(v);
      if (!a) return bad(k, "'" + v + "' is not a PCI address like 0000:17:00.0");
      f.physfn = a;
    } else if (k == "numa_node") {
      auto n = pci::parse_int(v, -1, 1 << 20);
      if (!n || v.find_first_of(" \n\t") != std::string::npos)
        return bad(k, "expected a NUMA node number (or -1 for none), got '" + v + "'");
      f.numa_node = static_cast<int>(*n);
    } else if (k == "class_id") {
      if ((v.size() != 2 && v.size() != 4 && v.size() != 6) || !is_hex(v))
        return bad(k, "expected 2, 4 or 6 hex digits (class, subclass, prog-if) such as 02 or 020000, got '" + v + "'");
      f.class_prefix = lower(v);
    } else {
      return bad(k, "unknown parameter; known: vendor_id, driver, physfn, numa_node, class_id");
    }
  }
  return f;
}

}  // namespace

Api::Api(const agent::HostModel& model, ApiOptions options, agent::Agent* agent)
    : model_(model), options_(std::move(options)), agent_(agent) {}

std::shared_ptr<const Api::Rendered> Api::rendered(const std::shared_ptr<const agent::Snapshot>& snap,
                                                   RenderedKind kind) const {
  auto& latest = kind == RenderedKind::devices ? rendered_devices_ : rendered_groups_;
  auto r = latest.load(std::memory_order_acquire);
  if (r && r->generation == snap->generation) return r;
  MutexLock lock(render_mu_);
  r = latest.load(std::memory_order_acquire);
  if (r && r->generation == snap->generation) return r;
  auto fresh = std::make_shared<Rendered>();
  fresh->generation = snap->generation;
  if (kind == RenderedKind::devices) {
    const agent::DeviceList& devices = snap->devices;
    fresh->key = "devices";
    fresh->count = devices.size();
    fresh->per_part = agent::DeviceList::kChunk;
    fresh->parts.reserve(devices.chunks());
    for (size_t c = 0; c < devices.chunks(); ++c) {
      auto chunk = devices.chunk(c);
      if (r && c < r->parts.size() && r->parts[c]->chunk == chunk) {
        fresh->parts.push_back(r->parts[c]);  // the same devices: the same text
        continue;
      }
      auto part = std::make_shared<Rendered::Part>();
      part->chunk = chunk;
      part->spans.reserve(chunk->size());
      for (const auto& d : *chunk) part->add(encode_device(d));
      fresh->parts.push_back(std::move(part));
    }
  } else {
    fresh->key = "iommu_groups";
    fresh->count = snap->groups.size();
    fresh->numbers.reserve(snap->groups.size());
    auto part = std::make_shared<Rendered::Part>();
    part->spans.reserve(snap->groups.size());
    for (const auto& [n, g] : snap->groups) {
      part->add(encode_group(g));
      fresh->numbers.push_back(n);
    }
    fresh->parts.push_back(std::move(part));
  }
  latest.store(fresh, std::memory_order_release);
  return fresh;
}

const std::vector<Route>& Api::routes() {
  using A = Access;
  static const std::vector<Route> table = {
      {"GET", "/healthz", A::open, false, &Api::healthz},
      {"GET", "/readyz", A::open, false, &Api::readyz},
      {"GET", "/metrics", A::read, false, &Api::get_metrics},
      {"GET", "/v1/openapi.json", A::read, false, &Api::get_openapi},
      {"GET", "/v1/events", A::read, false, &Api::event_stream},
      {"GET", "/v1/host", A::read, true, &Api::get_host},
      {"GET", "/v1/devices", A::read, true, &Api::list_devices},
      {"GET", "/v1/devices/{address}", A::read, true, &Api::get_device},
      {"PUT", "/v1/devices/{address}/sriov", A::change, true, &Api::put_sriov},
      {"PATCH", "/v1/devices/{address}/vf-config", A::change, true, &Api::patch_vf_config},
      {"PUT", "/v1/devices/{address}/mtu", A::change, true, &Api::put_mtu},
      {"PUT", "/v1/devices/{address}/driver", A::change, true, &Api::put_driver},
      {"GET", "/v1/iommu-groups", A::read, true, &Api::list_groups},
      {"GET", "/v1/iommu-groups/{number}", A::read, true, &Api::get_group},
      {"GET", "/v1/pools", A::read, true, &Api::list_pools},
      {"POST", "/v1/pools", A::change, true, &Api::post_pool},
      {"GET", "/v1/pools/{name}", A::read, true, &Api::get_pool},
      {"PUT", "/v1/pools/{name}", A::change, true, &Api::put_pool},
      {"DELETE", "/v1/pools/{name}", A::change, true, &Api::delete_pool},
      {"GET", "/v1/allocations", A::read, true, &Api::list_allocations},
      {"POST", "/v1/allocations", A::change, true, &Api::allocate},
      {"GET", "/v1/allocations/{id}", A::read, true, &Api::get_allocation},
      {"DELETE", "/v1/allocations/{id}", A::change, true, &Api::release},
      {"POST", "/v1/allocations/{id}/attach", A::change, true, &Api::attach},
      {"POST", "/v1/allocations/{id}/detach", A::change, true, &Api::detach},
  };
  return table;
}

Response Api::handle(const Request& req) const {
  // The path and query arrive percent-decoded: their bytes may be anything, and every name the
  // API knows is UTF-8. (A problem echoing them would not be JSON.)
  if (!valid_utf8(req.path))
    return problem(ErrorCode::bad_request, "path: not valid UTF-8 once percent-decoded", req.path, "path");
  for (const auto& [k, v] : req.query)
    if (!valid_utf8(k) || !valid_utf8(v))
      return problem(ErrorCode::bad_request, "query: not valid UTF-8 once percent-decoded", req.path, "query");
  const auto parts = split_path(req.path);
  std::shared_ptr<const agent::Snapshot> snap;
  bool snap_read = false;
  std::string allow;  // the methods of the rows whose pattern matched, for a 405
  for (const Route& route : routes()) {
    std::vector<std::string> params;
    if (!match_pattern(route.pattern, parts, params)) continue;
    // The host must have been read before the method is looked at: a request that needs the
    // host is answered 503 until it has been, whatever its method.
    if (route.needs_snapshot && !snap_read) {
      snap = model_.current();
      snap_read = true;
      if (!snap) return problem(ErrorCode::unavailable, "the host inventory is not ready yet", req.path);
    }
    if (!answers(route, req.method)) {
      add_allowed(allow, route.method);
      continue;
    }
    RouteCall call{req, std::move(params), route.needs_snapshot ? snap : nullptr};
    return (this->*route.handler)(call);
  }
  if (allow.empty()) return problem(ErrorCode::not_found, "no such resource: " + req.path, req.path);
  return method_not_allowed(req, allow.c_str());
}

Response Api::healthz(const RouteCall&) const { return json_response(R"({"status":"ok"})"); }

Response Api::readyz(const RouteCall& call) const {
  if (!ready_.load(std::memory_order_acquire) || !model_.current())
    return problem(ErrorCode::unavailable, "sriovd is starting: inventory and reconcile have not finished",
                   call.req.path);
  return json_response(R"({"status":"ready"})");
}

Response Api::get_openapi(const RouteCall&) const { return json_response(options_.openapi_json); }

Response Api::put_sriov(const RouteCall& call) const { return mutate_device(call, DeviceChange::sriov); }
Response Api::patch_vf_config(const RouteCall& call) const { return mutate_device(call, DeviceChange::vf_config); }
Response Api::put_driver(const RouteCall& call) const { return mutate_device(call, DeviceChange::driver); }
Response Api::put_mtu(const RouteCall& call) const { return mutate_device(call, DeviceChange::mtu); }

Response Api::mutate_device(const RouteCall& call, DeviceChange what) const {
  const Request& req = call.req;
  const std::string& address = call.params[0];
  auto a = PciAddress::parse(address);
  if (!a)
    return problem(ErrorCode::bad_request, "'" + address + "' is not a PCI address like 0000:17:00.0", req.path,
                   "address");
  if (!agent_) return problem(ErrorCode::unavailable, "this sriovd serves a read-only API", req.path);
  const char* schema = what == DeviceChange::sriov       ? "SriovRequest"
                       : what == DeviceChange::vf_config ? "VfConfig"
                       : what == DeviceChange::mtu       ? "MtuRequest"
                                                         : "DriverRequest";
  auto read = read_json_body(req, schema);
  if (!read) return std::move(*read.problem);
  const json& body = read.json;
  Result<void> r = ok();
  const auto t0 = std::chrono::steady_clock::now();
  const char* operation = what == DeviceChange::sriov       ? "set_num_vfs"
                          : what == DeviceChange::vf_config ? "set_vf_config"
                          : what == DeviceChange::mtu       ? "set_mtu"
                                                            : "set_driver";
  if (what == DeviceChange::sriov) {
    std::optional<bool> autoprobe;
    if (body.contains("drivers_autoprobe")) autoprobe = body["drivers_autoprobe"].get<bool>();
    r = agent_->set_num_vfs(*a, body["num_vfs"].get<uint32_t>(), autoprobe);
  } else if (what == DeviceChange::mtu) {
    r = agent_->set_mtu(*a, body["mtu"].get<uint32_t>());
  } else if (what == DeviceChange::vf_config) {
    auto cfg = agent::vf_config_from_json(body);
    if (!cfg) return problem(cfg.error(), req.path);
    r = agent_->set_vf_config(*a, *cfg);
  } else {
    agent::DriverRequest d;
    if (body["driver"].is_string()) d.driver = body["driver"].get<std::string>();
    d.group = body.value("group", false);
    d.force = body.value("force", false);
    r = agent_->set_driver(*a, d);
  }
  metrics_.observe(operation, r ? "ok" : to_string(r.error().code), std::chrono::steady_clock::now() - t0);
  if (!r) return problem(r.error(), req.path);
  auto snap = model_.current();
  auto rendered_now = rendered(snap, RenderedKind::devices);
  auto it = snap->index.find(*a);
  if (it == snap->index.end()) return json_response("{}");
  return json_response(std::string(rendered_now->object(it->second)));
}

Response Api::event_stream(const RouteCall& call) const {
  const Request& req = call.req;
  if (!events_) return problem(ErrorCode::unavailable, "this sriovd has no event log", req.path);
  // The cursor: Last-Event-ID (what EventSource sends when it reconnects), else ?since=,
  // else "from now on". 0 asks for every event the daemon still keeps.
  std::optional<uint64_t> cursor;
  auto parse_id = [](const std::string& v) -> std::optional<uint64_t> {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
    return n;
  };
  for (const auto& [k, v] : req.query) {
    if (k != "since")
      return problem(ErrorCode::bad_request, "query parameter '" + k + "': unknown parameter; known: since", req.path,
                     k);
    cursor = parse_id(v);
    if (!cursor)
      return problem(ErrorCode::bad_request,
                     "query parameter 'since': expected an event id (a decimal number), got '" + v + "'", req.path,
                     "since");
  }
  if (const std::string* h = req.header("last-event-id"); h && !h->empty()) {
    cursor = parse_id(*h);
    if (!cursor)
      return problem(ErrorCode::bad_request,
                     "header Last-Event-ID: expected an event id (a decimal number), got '" + *h + "'", req.path,
                     "Last-Event-ID");
  }
  if (open_streams_->fetch_add(1, std::memory_order_acq_rel) >= options_.max_event_streams) {
    open_streams_->fetch_sub(1, std::memory_order_acq_rel);
    Response r = problem(ErrorCode::unavailable,
                         "too many open event streams (at most " + std::to_string(options_.max_event_streams) +
                             "); close one or retry later",
                         req.path);
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  Response r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // reverse proxies: do not buffer the stream
  r.stream = std::make_shared<EventStream>(*events_, cursor.value_or(events_->last_id()), options_.event_heartbeat,
                                           open_streams_);
  return r;
}

Response Api::get_metrics(const RouteCall& call) const {
  const Request& req = call.req;
  for (const auto& [k, v] : req.query)
    return problem(ErrorCode::bad_request, "query parameter '" + k + "': unknown parameter", req.path, k);
  auto snap = model_.current();
  if (!snap) return problem(ErrorCode::unavailable, "the host inventory is not ready yet", req.path);
  std::function<Result<std::vector<VfInfo>>(const std::string&)> vf_stats;
  if (agent_) vf_stats = [this](const std::string& pf) { return agent_->vf_stats(pf); };
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.render(*snap, vf_stats, [this, &snap](prometheus::Registry& reg) {
    prometheus::BuildGauge()
        .Name("sriovd_event_streams")
        .Help("Open GET /v1/events streams.")
        .Register(reg)
        .Add({})
        .Set(open_streams_->load(std::memory_order_acquire));
    add_pool_metrics(reg, *snap, [this, &snap](const agent::PoolSpec& p) { return members_now(p, *snap); });
  });
  return r;
}

Response Api::get_host(const RouteCall& call) const {
  json j = encode_host(*call.snap);
  j["version"] = options_.version;
  j["ready"] = ready_.load(std::memory_order_acquire);
  return json_response(j.dump());
}

Response Api::list_devices(const RouteCall& call) const {
  const Request& req = call.req;
  const agent::Snapshot& s = *call.snap;
  auto rendered_now = rendered(call.snap, RenderedKind::devices);
  const Rendered& r = *rendered_now;
  auto filter = parse_filter(req);
  if (!filter) return problem(filter.error(), req.path);
  if (filter->empty()) return r.list();
  std::string body = "{\"devices\":[";
  size_t count = 0;
  for (size_t i = 0; i < s.devices.size(); ++i) {
    if (!filter->matches(s.devices[i].device)) continue;
    if (count++ > 0) body += ',';
    body += r.object(i);
  }
  body += "],\"count\":" + std::to_string(count) + "}";
  return json_response(std::move(body));
}

Response Api::get_device(const RouteCall& call) const {
  const Request& req = call.req;
  const std::string& address = call.params[0];
  const agent::Snapshot& s = *call.snap;
  auto a = PciAddress::parse(address);
  if (!a)
    return problem(ErrorCode::bad_request, "'" + address + "' is not a PCI address like 0000:17:00.0", req.path,
                   "address");
  auto it = s.index.find(*a);
  if (it == s.index.end())
    return problem(ErrorCode::not_found, "no PCI device " + a->to_string() + " on this host", req.path);
  return json_response(std::string(rendered(call.snap, RenderedKind::devices)->object(it->second)));
}

Response Api::list_groups(const RouteCall& call) const {
  const Request& req = call.req;
  auto rendered_now = rendered(call.snap, RenderedKind::groups);
  const Rendered& r = *rendered_now;
  for (const auto& [k, v] : req.query)
    return problem(ErrorCode::bad_request, "query parameter '" + k + "': unknown parameter", req.path, k);
  return r.list();
}

Response Api::get_group(const RouteCall& call) const {
  const Request& req = call.req;
  const std::string& number = call.params[0];
  auto n = pci::parse_int(number, 0, INT32_MAX);
  if (!n || number.find_first_not_of("0123456789") != std::string::npos)
    return problem(ErrorCode::bad_request, "'" + number + "' is not an IOMMU group number", req.path, "number");
  auto group = rendered(call.snap, RenderedKind::groups)->group(static_cast<int>(*n));
  if (!group) return problem(ErrorCode::not_found, "no IOMMU group " + number + " on this host", req.path);
  return json_response(std::string(*group));
}

}  // namespace sriovd::rest
