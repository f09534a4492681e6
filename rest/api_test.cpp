// REST handlers tested as functions from request to response, on a generated host; every
// response body is validated against the OpenAPI document's schemas.
#include <doctest/doctest.h>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent.h"
#include "agent/host_model.h"
#include "rest/api.h"
#include "rest/auth.h"
#include "rest/problem.h"
#include "schemas/openapi.h"
#include "schemas/validator.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/requirements.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using nlohmann::json;

namespace {

struct Fixture {
  test::TempDir dir;
  fixtures::Manifest manifest;
  agent::HostModel model;
  pci::NameDb names;
  std::unique_ptr<rest::Api> api;

  explicit Fixture(const char* profile = "dual-socket") {
    auto m = fixtures::build_profile(profile, dir.path());
    REQUIRE(m.ok());
    manifest = *m;
    auto root = pci::SysfsRoot::open(dir.path());
    model.publish(*agent::build_snapshot(*root, &names, 1));
    rest::ApiOptions o;
    o.version = "test";
    o.openapi_json = std::string(schemas::openapi_json());
    api = std::make_unique<rest::Api>(model, o);
    api->set_ready(true);
  }

  rest::Response get(const std::string& path, std::vector<std::pair<std::string, std::string>> query = {}) {
    rest::Request r;
    r.method = "GET";
    r.path = path;
    r.query = std::move(query);
    return api->handle(r);
  }
};

json valid(const rest::Response& r, const char* component) {
  auto j = json::parse(r.text());
  auto v = schemas::api_validator().validate(component, j);
  CHECK_MESSAGE(v.ok(), (v.ok() ? "" : v.error().message));
  return j;
}

json problem(const rest::Response& r, int status) {
  CHECK(r.status == status);
  CHECK(r.content_type == "application/problem+json");
  return valid(r, "Problem");
}

}  // namespace

TEST_CASE("GET /v1/devices lists every function, sorted, each valid against the schema") {
  Fixture f;
  auto r = f.get("/v1/devices");
  REQUIRE(r.status == 200);
  auto j = valid(r, "DeviceList");
  REQUIRE(j["count"] == f.manifest.functions.size());
  std::string prev;
  for (const auto& d : j["devices"]) {
    std::string a = d["address"];
    CHECK(prev < a);
    prev = a;
  }
}

TEST_CASE("GET /v1/devices/{address}: the contract's fields") {
  Fixture f;
  for (const auto& fn : f.manifest.functions) {
    auto r = f.get("/v1/devices/" + fn.address.to_string());
    REQUIRE(r.status == 200);
    auto d = valid(r, "Device");
    CHECK(d["address"] == fn.address.to_string());
    CHECK(d["driver"] == (fn.driver.empty() ? json(nullptr) : json(fn.driver)));
    if (fn.total_vfs > 0) {
      CHECK(d["kind"] == "pf");
      CHECK(d["sriov"]["total_vfs"] == fn.total_vfs);
      CHECK(d["sriov"]["num_vfs"] == fn.num_vfs);
    }
    if (fn.physfn) {
      CHECK(d["kind"] == "vf");
      CHECK(d["physfn"] == fn.physfn->to_string());
      CHECK(d["vf_index"] == fn.vf_index);
    }
  }
  SUBCASE("upper-case and short addresses are accepted and canonicalised") {
    const auto& fn = f.manifest.functions.back();
    std::string upper = fn.address.to_string();
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(f.get("/v1/devices/" + upper).status == 200);
  }
}

TEST_CASE("filters combine, and a bad filter is a 400 naming the parameter") {
  Fixture f;
  auto count = [&](std::vector<std::pair<std::string, std::string>> q) {
    auto r = f.get("/v1/devices", std::move(q));
    REQUIRE(r.status == 200);
    return valid(r, "DeviceList")["count"].get<size_t>();
  };
  size_t intel = 0, unbound = 0, node1 = 0, network = 0;
  std::map<PciAddress, size_t> vfs_of;
  for (const auto& fn : f.manifest.functions) {
    if (fn.vendor == 0x8086) ++intel;
    if (fn.driver.empty()) ++unbound;
    if (fn.numa_node == 1) ++node1;
    if (fn.class_code >> 16 == 0x02) ++network;
    if (fn.physfn) ++vfs_of[*fn.physfn];
  }
  CHECK(count({{"vendor_id", "8086"}}) == intel);
  CHECK(count({{"driver", "none"}}) == unbound);
  CHECK(count({{"numa_node", "1"}}) == node1);
  CHECK(count({{"class_id", "02"}}) == network);
  REQUIRE_FALSE(vfs_of.empty());
  for (const auto& [pf, n] : vfs_of) CHECK(count({{"physfn", pf.to_string()}}) == n);
  CHECK(count({{"vendor_id", "8086"}, {"numa_node", "1"}, {"class_id", "02"}}) <= intel);

  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"vendor_id", "80866"}, {"numa_node", "one"}, {"physfn", "17:00"}, {"class_id", "0"}, {"colour", "blue"}}) {
    auto p = problem(f.get("/v1/devices", {{k, v}}), 400);
    CHECK(p["field"] == k);
    CHECK(p["detail"].get<std::string>().find(k) != std::string::npos);
  }
}

TEST_CASE("malformed address is 400 naming it; unknown is 404") {
  Fixture f;
  auto bad = problem(f.get("/v1/devices/not-an-address"), 400);
  CHECK(bad["field"] == "address");
  CHECK(bad["detail"].get<std::string>().find("not-an-address") != std::string::npos);
  auto unknown = problem(f.get("/v1/devices/0000:ee:1f.7"), 404);
  CHECK(unknown["detail"].get<std::string>().find("0000:ee:1f.7") != std::string::npos);
  problem(f.get("/v1/iommu-groups/x"), 400);
  problem(f.get("/v1/iommu-groups/999999"), 404);
  problem(f.get("/v1/nothing"), 404);
  problem(f.get("/elsewhere"), 404);
}

TEST_CASE("a path or query that is not UTF-8 once decoded is a 400 problem in valid JSON") {
  Fixture f;
  // json::parse refuses text that is not UTF-8, so problem() also checks the body's encoding.
  for (const char* path : {"/v1/devices/\xC0", "/v1/pools/\xC0\xAF", "/v1/devices/\xFF/driver", "/v1/nothing\x80",
                           "/v1/devices/\xED\xA0\x80"}) {
    INFO(path);
    auto p = problem(f.get(path), 400);
    CHECK(p["field"] == "path");
    CHECK(p["detail"] == "path: not valid UTF-8 once percent-decoded");
  }
  auto q = problem(f.get("/v1/devices", {{"driver", "\xC3"}}), 400);
  CHECK(q["field"] == "query");
  // UTF-8 that is well formed reaches the routes as before.
  problem(f.get("/v1/devices/caf\xC3\xA9"), 400);
  CHECK(problem(f.get("/v1/devices/caf\xC3\xA9"), 400)["field"] == "address");
}

TEST_CASE("a problem whose text is not UTF-8 is still JSON, with U+FFFD for each bad byte") {
  auto r = rest::problem(ErrorCode::not_found, "no pool named '\xC0'", "/v1/pools/\xC0");
  auto j = json::parse(r.body);
  CHECK(j["detail"] == "no pool named '\xEF\xBF\xBD'");
  CHECK(j["instance"] == "/v1/pools/\xEF\xBF\xBD");
}

TEST_CASE("IOMMU groups: list and one, valid against the schema") {
  Fixture f;
  auto r = f.get("/v1/iommu-groups");
  REQUIRE(r.status == 200);
  auto j = valid(r, "IommuGroupList");
  REQUIRE(j["count"].get<size_t>() > 0);
  bool saw_not_viable = false;
  for (const auto& g : j["iommu_groups"]) {
    auto one = f.get("/v1/iommu-groups/" + std::to_string(g["number"].get<int>()));
    REQUIRE(one.status == 200);
    CHECK(valid(one, "IommuGroup") == g);
    if (!g["viable"].get<bool>()) {
      saw_not_viable = true;
      CHECK_FALSE(g["blocking"].empty());
    }
  }
  CHECK(saw_not_viable);
}

TEST_CASE("host, health, readiness and the OpenAPI document") {
  Fixture f;
  auto h = f.get("/v1/host");
  REQUIRE(h.status == 200);
  auto host = valid(h, "Host");
  CHECK(host["counts"]["devices"] == f.manifest.functions.size());
  CHECK(host["sysfs_root"] == f.dir.path().string());
  CHECK(f.get("/healthz").status == 200);
  CHECK(f.get("/readyz").status == 200);
  f.api->set_ready(false);
  problem(f.get("/readyz"), 503);
  auto doc = f.get("/v1/openapi.json");
  REQUIRE(doc.status == 200);
  CHECK(json::parse(doc.body)["openapi"] == "3.1.0");
}

TEST_CASE("a method the path does not take is a 405 with Allow") {
  Fixture f;
  rest::Request r;
  r.method = "DELETE";
  r.path = "/v1/devices";
  auto res = f.api->handle(r);
  problem(res, 405);
  REQUIRE_FALSE(res.headers.empty());
  CHECK(res.headers[0].first == "Allow");
}

TEST_CASE("405 lists every method the path takes, HEAD after GET; an unknown path is 404") {
  Fixture f;
  auto allow = [&](const char* method, const char* path) {
    rest::Request r;
    r.method = method;
    r.path = path;
    auto res = f.api->handle(r);
    problem(res, 405);
    REQUIRE(res.headers.size() == 1);
    CHECK(res.headers[0].first == "Allow");
    return res.headers[0].second;
  };
  CHECK(allow("DELETE", "/v1/devices") == "GET, HEAD");
  CHECK(allow("PATCH", "/v1/pools") == "GET, HEAD, POST");
  CHECK(allow("POST", "/v1/pools/p") == "GET, HEAD, PUT, DELETE");
  CHECK(allow("PUT", "/v1/allocations/x") == "GET, HEAD, DELETE");
  CHECK(allow("GET", "/v1/allocations/x/attach") == "POST");
  CHECK(allow("GET", "/v1/devices/0000:17:00.0/vf-config") == "PATCH");
  CHECK(allow("OPTIONS", "/healthz") == "GET, HEAD");
  rest::Request r;
  r.method = "PUT";
  r.path = "/v1/devices/0000:17:00.0/numvfs";
  problem(f.api->handle(r), 404);
  r.path = "/v1";
  problem(f.api->handle(r), 404);
}

TEST_CASE("the routing table's access column is what the Authorizer enforces") {
  auto tokens = rest::TokenSet::parse("ci:0123456789abcdef0123\nmonitor:fedcba9876543210fedc:read-only\n", "t");
  REQUIRE(tokens.ok());
  rest::Authorizer auth;
  auth.set_tokens(std::make_shared<const rest::TokenSet>(std::move(*tokens)));
  for (const rest::Route& route : rest::Api::routes()) {
    CAPTURE(route.method);
    CAPTURE(route.pattern);
    rest::Request r;
    r.method = route.method;
    r.path = route.pattern;
    CHECK(route.mutates() == rest::is_mutation(route.method));
    // No token: only open routes pass.
    CHECK(auth.check(r).refusal.has_value() == (route.access != rest::Access::open));
    // A read-only token: everything but changes.
    r.headers["authorization"] = "Bearer fedcba9876543210fedc";
    CHECK(auth.check(r).refusal.has_value() == (route.access == rest::Access::change));
  }
}

TEST_CASE("problem statuses, types and titles come from one table") {
  struct Row {
    ErrorCode code;
    int status;
    const char* type;
  };
  const Row rows[] = {{ErrorCode::bad_request, 400, "bad-request"},
                      {ErrorCode::invalid, 422, "invalid"},
                      {ErrorCode::not_found, 404, "not-found"},
                      {ErrorCode::conflict, 409, "conflict"},
                      {ErrorCode::unavailable, 503, "unavailable"},
                      {ErrorCode::unsupported, 501, "unsupported"},
                      {ErrorCode::io, 500, "io"},
                      {ErrorCode::internal, 500, "internal"}};
  for (const auto& row : rows) {
    CHECK(rest::http_status(row.code) == row.status);
    auto r = rest::problem(Error::make(row.code, "detail", "field"), "/v1/x");
    auto j = problem(r, row.status);
    CHECK(j["type"] == std::string("urn:sriovd:problem:") + row.type);
    CHECK(j["title"] == rest::problem_kind(row.code).title);
    CHECK(j["field"] == "field");
    CHECK_FALSE(j.contains("errno"));
  }
  auto sys = json::parse(rest::problem(Error::sys(EBUSY, "writing sriov_numvfs"), "/v1/x").body);
  CHECK(sys["status"] == 409);
  CHECK(sys["errno"] == EBUSY);
  auto refused = rest::problem(rest::HttpRefusal::unsupported_media_type, "not json", "/v1/x");
  auto j = problem(refused, 415);
  CHECK(j["type"] == "urn:sriovd:problem:unsupported-media-type");
  CHECK(j["title"] == "Unsupported Media Type");
}

TEST_CASE("a device with warnings is still served, and the host counts it") {
  Fixture f("minimal");
  const auto& fn = f.manifest.functions.back();
  auto dir = std::filesystem::canonical(f.dir.path() / "bus/pci/devices" / fn.address.to_string());
  std::filesystem::remove(dir / "uevent");
  std::filesystem::remove(dir / "class");
  auto root = pci::SysfsRoot::open(f.dir.path());
  f.model.publish(*agent::build_snapshot(*root, &f.names, 2));
  auto d = valid(f.get("/v1/devices/" + fn.address.to_string()), "Device");
  CHECK(d["class_id"].is_null());
  CHECK(d["warnings"].size() == 2);
  CHECK(valid(f.get("/v1/host"), "Host")["counts"]["devices_with_warnings"] == 1);
}

TEST_CASE("GET /v1/events streams the log: subscribed first, then events; resume and resync") {
  Fixture f;
  agent::EventLog log(3);
  f.api->set_event_log(&log);
  uint64_t first = log.publish("device.added", {{"address", "0000:17:00.1"}});

  auto r = f.get("/v1/events");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "text/event-stream");
  REQUIRE(r.stream);
  std::string out;
  REQUIRE(r.stream->next(out));
  CHECK(out == "retry: 2000\n: subscribed\n\n");  // no cursor: from now on, nothing old
  uint64_t second = log.publish("lease.created", {{"lease", "l1"}});
  out.clear();
  REQUIRE(r.stream->next(out));
  CHECK(out.find("id: " + std::to_string(second) + "\nevent: lease.created\ndata: {") == 0);
  auto data = json::parse(out.substr(out.find("data: ") + 6));
  CHECK(data["lease"] == "l1");
  CHECK(data["id"] == second);

  // Resume after `first` with Last-Event-ID: `second` comes at once.
  rest::Request req;
  req.method = "GET";
  req.path = "/v1/events";
  req.headers["last-event-id"] = std::to_string(first);
  auto resumed = f.api->handle(req);
  out.clear();
  REQUIRE(resumed.stream->next(out));
  CHECK(out.find("resync") == std::string::npos);
  CHECK(out.find("id: " + std::to_string(second) + "\n") != std::string::npos);

  // An id from an earlier run: resync first, then what this run has.
  auto stale = f.get("/v1/events", {{"since", "42"}});
  out.clear();
  REQUIRE(stale.stream->next(out));
  CHECK(out.find("event: resync\ndata: {") != std::string::npos);
  CHECK(out.find("id: " + std::to_string(first) + "\n") != std::string::npos);

  // Fell out of the ring (capacity 3): resync.
  for (int i = 0; i < 4; ++i) log.publish("pool.changed");
  auto behind = f.get("/v1/events", {{"since", std::to_string(first)}});
  out.clear();
  REQUIRE(behind.stream->next(out));
  CHECK(out.find("event: resync") != std::string::npos);

  // Closing the log ends the streams once they have sent what is left.
  log.close();
  out.clear();
  REQUIRE(r.stream->next(out));
  CHECK(out.find("event: pool.changed") != std::string::npos);
  out.clear();
  CHECK_FALSE(r.stream->next(out));
  CHECK(out.empty());
}

TEST_CASE("GET /v1/events: a keepalive when nothing happens; bad cursors are 400; streams are capped") {
  test::TempDir dir;
  auto m = fixtures::build_profile("dual-socket", dir.path());
  REQUIRE(m.ok());
  agent::HostModel model;
  auto root = pci::SysfsRoot::open(dir.path());
  model.publish(*agent::build_snapshot(*root, nullptr, 1));
  rest::ApiOptions o;
  o.max_event_streams = 2;
  o.event_heartbeat = std::chrono::milliseconds(20);
  rest::Api api(model, o);
  agent::EventLog log;
  api.set_event_log(&log);
  rest::Request req;
  req.method = "GET";
  req.path = "/v1/events";
  auto a = api.handle(req);
  std::string out;
  REQUIRE(a.stream->next(out));
  out.clear();
  REQUIRE(a.stream->next(out));  // waits one heartbeat
  CHECK(out == ": keepalive\n\n");

  auto b = api.handle(req);
  REQUIRE(b.status == 200);
  auto c = api.handle(req);
  CHECK(c.status == 503);
  CHECK(c.content_type == "application/problem+json");
  CHECK(c.body.find("too many open event streams") != std::string::npos);
  b.stream.reset();  // a client went: its slot is free again
  auto d = api.handle(req);
  CHECK(d.status == 200);

  req.query = {{"since", "12x"}};
  auto bad = api.handle(req);
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body)["field"] == "since");
  req.query = {};
  req.headers["last-event-id"] = "-1";
  CHECK(api.handle(req).status == 400);
}

TEST_CASE("GET /metrics: host gauges, operation counters and per-VF traffic; promtool accepts it") {
  test::TempDir dir;
  REQUIRE(fixtures::write_profile("dual-socket", dir / "sys").ok());
  auto sim = std::move(kernel::SimKernel::open(dir / "sys").value());
  auto store = std::move(agent::StateStore::open(dir / "state").value());
  auto root = pci::SysfsRoot::open(dir / "sys");
  agent::HostModel model;
  agent::Agent ag(*root, *sim, *store, model, nullptr);
  REQUIRE(ag.refresh().ok());
  rest::Api api(model, {}, &ag);
  api.metrics().add_collector([](prometheus::Registry& reg) {
    prometheus::BuildGauge().Name("sriovd_test_collector").Help("A collector's gauge.").Register(reg).Add({}).Set(7);
  });
  auto call = [&](const std::string& method, const std::string& path, const std::string& body = {}) {
    rest::Request r;
    r.method = method;
    r.path = path;
    r.body = body;
    return api.handle(r);
  };
  REQUIRE(call("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":2})").status == 200);
  CHECK(call("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":999})").status == 422);
  VfStats st;
  st.rx_bytes = 123456789012ull;
  st.tx_packets = 42;
  st.rx_dropped = 3;
  REQUIRE(sim->set_vf_stats("ens1f0", 1, st).ok());

  auto m = call("GET", "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  const std::string& t = m.body;
  auto has = [&](const std::string& s) {
    bool found = t.find(s) != std::string::npos;
    CHECK_MESSAGE(found, s);
  };
  has("# TYPE sriovd_operations_total counter");
  has(R"(sriovd_operations_total{operation="set_num_vfs",result="ok"} 1)");
  has(R"(sriovd_operations_total{operation="set_num_vfs",result="invalid"} 1)");
  has(R"(sriovd_operation_duration_seconds_count{operation="set_num_vfs",result="ok"} 1)");
  has(R"(sriovd_pf_enabled_vfs{netdev="ens1f0",pf="0000:17:00.0"} 2)");
  has(R"(sriovd_pf_total_vfs{netdev="ens1f0",pf="0000:17:00.0"} 128)");
  has(R"(sriovd_devices{driver="iavf",kind="vf"})");
  has(R"(sriovd_iommu_groups{viable="false"} )");
  has("sriovd_reconcile_drift 0");
  has("sriovd_event_streams 0");
  has("sriovd_test_collector 7");
  auto snap = model.current();
  const agent::DeviceView* vf1 = nullptr;
  for (const auto& v : snap->devices)
    if (v.device.physfn == PciAddress::parse("0000:17:00.0") && v.device.vf_index == 1) vf1 = &v;
  REQUIRE(vf1);
  const std::string labels = R"({address=")" + vf1->device.address.to_string() + R"(",numa_node=")" +
                             std::to_string(vf1->device.numa_node.value_or(-1)) + R"(",pf="ens1f0",vf="1"})";
  has("sriov_vf_rx_bytes" + labels + " 123456789012");
  has("sriov_vf_tx_packets" + labels + " 42");
  has("sriov_vf_rx_dropped" + labels + " 3");
  has("sriov_vf_tx_bytes" + labels + " 0");

  CHECK(call("POST", "/metrics").status == 405);
  // promtool (the prometheus package) lints the exposition: names, types, help, units.
  if (sriovd::test::require_tool("promtool", "prometheus")) {
    auto file = dir / "metrics.txt";
    { std::ofstream(file) << t; }
    std::string cmd = "promtool check metrics < " + file.string() + " > " + (dir / "lint.txt").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    std::ifstream lint(dir / "lint.txt");
    std::string out((std::istreambuf_iterator<char>(lint)), std::istreambuf_iterator<char>());
    CHECK_MESSAGE(rc == 0, out);
    CHECK_MESSAGE(out.empty(), out);
  }
}

TEST_CASE("a slow VF count change (sriov_disable's wait) holds no reader: GETs and metrics answer meanwhile") {
  test::TempDir dir;
  REQUIRE(fixtures::write_profile("dual-socket", dir / "sys").ok());
  auto sim = std::move(kernel::SimKernel::open(dir / "sys").value());
  auto store = std::move(agent::StateStore::open(dir / "state").value());
  auto root = pci::SysfsRoot::open(dir / "sys");
  agent::HostModel model;
  agent::Agent ag(*root, *sim, *store, model, nullptr);
  REQUIRE(ag.refresh().ok());
  rest::Api api(model, {}, &ag);
  api.set_ready(true);
  auto call = [&](const std::string& method, const std::string& path, const std::string& body = {}) {
    rest::Request r;
    r.method = method;
    r.path = path;
    r.body = body;
    return api.handle(r);
  };
  // The X710 at 3b:00.0 has 4 VFs: 4 → 2 goes through 0, whose sriov_disable is held.
  sim->hold_sriov_disable(true);
  rest::Response put;
  std::thread writer([&] { put = call("PUT", "/v1/devices/0000:3b:00.0/sriov", R"({"num_vfs":2})"); });
  const bool held = sim->wait_for_sriov_disable_held(std::chrono::seconds(20));
  CHECK(held);
  // Reads answer from the last snapshot (the agent's lock is the writer's): the PF as it was.
  auto pf = call("GET", "/v1/devices/0000:3b:00.0");
  CHECK(pf.status == 200);
  CHECK(json::parse(pf.body)["sriov"]["num_vfs"] == 4);
  CHECK(call("GET", "/v1/devices").status == 200);
  CHECK(call("GET", "/v1/iommu-groups").status == 200);
  CHECK(call("GET", "/v1/host").status == 200);
  CHECK(call("GET", "/metrics").status == 200);  // per-VF counters over (simulated) rtnetlink
  sim->hold_sriov_disable(false);
  writer.join();
  CHECK(put.status == 200);
  CHECK(json::parse(call("GET", "/v1/devices/0000:3b:00.0").body)["sriov"]["num_vfs"] == 2);
}
