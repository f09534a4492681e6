// Unit tests of sriovd-k8s's pure parts: preferred allocation, container edits and CDI specs,
// the HTTP answer parser and the decoders of sriovd's answers.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "k8s/container.h"
#include "k8s/http.h"
#include "k8s/pool.h"
#include "k8s/preferred.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::k8s;
using nlohmann::json;

namespace {

PciAddress A(const char* s) { return *PciAddress::parse(s); }

// Two NUMA nodes; node 0 has PF 17:00.0 with 4 VFs and PF 17:00.1 with 2; node 1 has PF
// 3b:00.0 with 3 VFs.
Pool test_pool(Policy policy) {
  Pool p;
  p.name = "fast";
  p.policy = policy;
  auto vf = [&](const char* addr, const char* pf, int numa) {
    PoolDevice d;
    d.address = A(addr);
    d.pf = A(pf);
    d.numa_node = numa;
    p.devices.push_back(d);
  };
  vf("0000:17:02.0", "0000:17:00.0", 0);
  vf("0000:17:02.1", "0000:17:00.0", 0);
  vf("0000:17:02.2", "0000:17:00.0", 0);
  vf("0000:17:02.3", "0000:17:00.0", 0);
  vf("0000:17:0a.0", "0000:17:00.1", 0);
  vf("0000:17:0a.1", "0000:17:00.1", 0);
  vf("0000:3b:02.0", "0000:3b:00.0", 1);
  vf("0000:3b:02.1", "0000:3b:00.0", 1);
  vf("0000:3b:02.2", "0000:3b:00.0", 1);
  return p;
}

std::vector<std::string> ids(const Pool& p) {
  std::vector<std::string> out;
  out.reserve(p.devices.size());
  for (const auto& d : p.devices) out.push_back(d.address.to_string());
  return out;
}

std::set<std::string> pfs_of(const Pool& p, const std::vector<std::string>& chosen) {
  std::set<std::string> out;
  for (const auto& id : chosen) out.insert(p.find(A(id.c_str()))->pf->to_string());
  return out;
}

std::set<int> nodes_of(const Pool& p, const std::vector<std::string>& chosen) {
  std::set<int> out;
  for (const auto& id : chosen) out.insert(*p.find(A(id.c_str()))->numa_node);
  return out;
}

}  // namespace

TEST_CASE("preferred allocation: pack fits tightest PF on one NUMA node") {
  Pool p = test_pool(Policy::pack);
  auto two = preferred_allocation(p, ids(p), {}, 2);
  REQUIRE(two.size() == 2);
  // Node 1 (3 free) fits 2 more tightly than node 0 (6 free); there one PF holds both.
  CHECK(nodes_of(p, two) == std::set<int>{1});
  CHECK(pfs_of(p, two) == std::set<std::string>{"0000:3b:00.0"});
  // Without node 1, node 0's PF 17:00.1 (exactly 2 free) fits tighter than 17:00.0 (4).
  auto all = ids(p);
  std::vector<std::string> node0(all.begin(), all.begin() + 6);
  auto two0 = preferred_allocation(p, node0, {}, 2);
  CHECK(pfs_of(p, two0) == std::set<std::string>{"0000:17:00.1"});

  auto three = preferred_allocation(p, ids(p), {}, 3);
  REQUIRE(three.size() == 3);
  CHECK(pfs_of(p, three) == std::set<std::string>{"0000:3b:00.0"});  // exactly 3 on node 1
  CHECK(nodes_of(p, three) == std::set<int>{1});

  auto five = preferred_allocation(p, ids(p), {}, 5);
  REQUIRE(five.size() == 5);
  CHECK(nodes_of(p, five) == std::set<int>{0});  // only node 0 holds 5
  CHECK(pfs_of(p, five).size() == 2);
}

TEST_CASE("preferred allocation: spread puts each VF on another PF") {
  Pool p = test_pool(Policy::spread);
  auto two = preferred_allocation(p, ids(p), {}, 2);
  REQUIRE(two.size() == 2);
  CHECK(nodes_of(p, two).size() == 1);
  CHECK(pfs_of(p, two).size() == 2);
  // Node 0 (6 free, two PFs) is roomier than node 1: spread goes there.
  CHECK(nodes_of(p, two) == std::set<int>{0});
}

TEST_CASE("preferred allocation: must_include first and its NUMA node kept") {
  Pool p = test_pool(Policy::pack);
  auto r = preferred_allocation(p, ids(p), {"0000:3b:02.2"}, 2);
  REQUIRE(r.size() == 2);
  CHECK(r[0] == "0000:3b:02.2");
  CHECK(nodes_of(p, r) == std::set<int>{1});

  // must_include on PF 17:00.0: packing continues on that PF rather than the tighter 17:00.1.
  auto r2 = preferred_allocation(p, ids(p), {"0000:17:02.3"}, 3);
  REQUIRE(r2.size() == 3);
  CHECK(r2[0] == "0000:17:02.3");
  CHECK(pfs_of(p, r2) == std::set<std::string>{"0000:17:00.0"});
}

TEST_CASE("preferred allocation: only offered ids; spans nodes when it must; deterministic") {
  Pool p = test_pool(Policy::pack);
  std::vector<std::string> avail{"0000:3b:02.0", "0000:17:02.0", "0000:17:0a.1"};
  auto r = preferred_allocation(p, avail, {}, 3);
  CHECK(std::set<std::string>(r.begin(), r.end()) == std::set<std::string>(avail.begin(), avail.end()));
  CHECK(preferred_allocation(p, ids(p), {}, 7).size() == 7);
  CHECK(preferred_allocation(p, ids(p), {}, 9).size() == 9);
  CHECK(preferred_allocation(p, ids(p), {}, 4) == preferred_allocation(p, ids(p), {}, 4));
  // Strangers (not pool members) come last; a request of zero gets must_include only.
  auto s = preferred_allocation(p, {"0000:99:00.0", "0000:17:02.0"}, {}, 2);
  CHECK(s == std::vector<std::string>{"0000:17:02.0", "0000:99:00.0"});
  CHECK(preferred_allocation(p, ids(p), {"0000:17:02.0"}, 0) == std::vector<std::string>{"0000:17:02.0"});
}

TEST_CASE("env names and INFO for a vfio pool; device specs once per group") {
  CHECK(env_name("sriovd.io/fast") == "PCIDEVICE_SRIOVD_IO_FAST");
  CHECK(env_name("sriovd.io/gpu-a") == "PCIDEVICE_SRIOVD_IO_GPU_A");
  std::vector<AllocatedDevice> devs{
      {A("0000:17:02.0"), 40, {}}, {A("0000:17:02.1"), 41, {}}, {A("0000:17:02.2"), 41, {}}};
  auto e = container_edits("sriovd.io/fast", Mode::vfio, devs, false);
  REQUIRE(e.ok());
  CHECK(e->envs.at("PCIDEVICE_SRIOVD_IO_FAST") == "0000:17:02.0,0000:17:02.1,0000:17:02.2");
  auto info = json::parse(e->envs.at("PCIDEVICE_SRIOVD_IO_FAST_INFO"));
  CHECK(info["0000:17:02.1"]["vfio"]["dev-mount"] == "/dev/vfio/41");
  CHECK(info["0000:17:02.1"]["vfio"]["mount"] == "/dev/vfio/vfio");
  CHECK(info["0000:17:02.0"]["generic"]["deviceID"] == "0000:17:02.0");
  REQUIRE(e->devices.size() == 3);  // vfio container + groups 40 and 41
  CHECK(e->devices[0] == DeviceNode{"/dev/vfio/vfio", "/dev/vfio/vfio", "rw"});
  CHECK(e->devices[1] == DeviceNode{"/dev/vfio/40", "/dev/vfio/40", "rw"});
  CHECK(e->devices[2] == DeviceNode{"/dev/vfio/41", "/dev/vfio/41", "rw"});
  CHECK(e->cdi_devices.empty());

  auto none = container_edits("sriovd.io/fast", Mode::vfio, {{A("0000:17:02.0"), std::nullopt, {}}}, false);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("no IOMMU group") != std::string::npos);
}

TEST_CASE("netdev pools: names in INFO, no device nodes; CDI names instead of specs") {
  std::vector<AllocatedDevice> devs{{A("0000:17:02.0"), 40, {"ens1f0v0"}}};
  auto e = container_edits("sriovd.io/net", Mode::netdev, devs, false);
  REQUIRE(e.ok());
  CHECK(e->devices.empty());
  CHECK(json::parse(e->envs.at("PCIDEVICE_SRIOVD_IO_NET_INFO"))["0000:17:02.0"]["netdev"]["name"] == "ens1f0v0");
  CHECK_FALSE(json::parse(e->envs.at("PCIDEVICE_SRIOVD_IO_NET_INFO"))["0000:17:02.0"].contains("vfio"));

  auto c = container_edits("sriovd.io/fast", Mode::vfio, devs, true);
  REQUIRE(c.ok());
  CHECK(c->devices.empty());
  CHECK(c->cdi_devices == std::vector<std::string>{"sriovd.io/fast=0000:17:02.0"});
}

TEST_CASE("CDI spec: version, kind, device nodes; written atomically") {
  std::vector<AllocatedDevice> devs{{A("0000:17:02.0"), 40, {}}, {A("0000:17:02.1"), 41, {"x"}}};
  auto spec = cdi_spec("sriovd.io/fast", Mode::vfio, devs);
  CHECK(spec["cdiVersion"] == "0.6.0");
  CHECK(spec["kind"] == "sriovd.io/fast");
  REQUIRE(spec["devices"].size() == 2);
  CHECK(spec["devices"][0]["name"] == "0000:17:02.0");
  CHECK(spec["devices"][0]["containerEdits"]["deviceNodes"][0]["path"] == "/dev/vfio/40");
  CHECK(spec["containerEdits"]["deviceNodes"][0]["path"] == "/dev/vfio/vfio");
  CHECK(cdi_spec_file_name("sriovd.io/fast") == "sriovd.io-fast.json");

  test::TempDir dir{"k8s-cdi"};
  auto path = dir / "sriovd.io-fast.json";
  REQUIRE(write_file_atomic(path, "old\n").ok());
  REQUIRE(write_file_atomic(path, spec.dump()).ok());
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(json::parse(ss.str()) == spec);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);  // no temp file left behind
  auto bad = write_file_atomic(dir / "missing" / "x.json", "{}");
  REQUIRE_FALSE(bad.ok());
}

TEST_CASE("pool and lease decoding: the documented shape, errors name the field") {
  auto pools = parse_pool_list(R"({"pools": [{"name": "fast", "selectors": {}, "physical_network": null,
      "device_type": "vf", "mode": "vfio", "policy": "spread", "capacity": 2, "free": 1, "leased": 1,
      "devices": [{"address": "0000:17:02.0", "pf": "0000:17:00.0", "vf_index": 0, "numa_node": 0,
                   "iommu_group": 40, "netdevs": [], "driver": "vfio-pci", "healthy": true, "reason": null,
                   "lease": "0123456789abcdef0123456789abcdef"},
                  {"address": "0000:17:02.1", "pf": null, "vf_index": null, "numa_node": null,
                   "iommu_group": null, "netdevs": ["v1"], "driver": null, "healthy": false,
                   "reason": "IOMMU group 41 is not viable", "lease": null}]}]})");
  REQUIRE(pools.ok());
  REQUIRE(pools->size() == 1);
  const Pool& p = pools->front();
  CHECK(p.policy == Policy::spread);
  CHECK(p.mode == Mode::vfio);
  REQUIRE(p.devices.size() == 2);
  CHECK(p.devices[0].pf == A("0000:17:00.0"));
  CHECK(p.devices[0].iommu_group == 40);
  CHECK(p.devices[0].lease == "0123456789abcdef0123456789abcdef");
  CHECK_FALSE(p.devices[1].healthy);
  CHECK(p.devices[1].reason == "IOMMU group 41 is not viable");
  CHECK_FALSE(p.devices[1].numa_node.has_value());
  CHECK(p.devices[1].netdevs == std::vector<std::string>{"v1"});

  auto bad = parse_pool_list(R"({"pools": [{"name": "x", "devices": [{"address": "17-00"}]}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().field == "pool 'x' devices[0].address");
  CHECK_FALSE(parse_pool_list("nope").ok());
  CHECK_FALSE(parse_pool_list(R"({"pools": [{"name": "x", "mode": "other", "devices": []}]})").ok());

  auto leases = parse_lease_list(R"({"allocations": [{"id": "ab", "pool": "fast", "address": "0000:17:02.0",
      "consumer": {"kind": "vm", "name": "web"}, "vf_config": null, "state": "active", "libvirt_xml": "<x/>",
      "attached_to": null, "created_at": "2026-01-01T00:00:00Z"}]})");
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 1);
  CHECK(leases->front().consumer_kind == "vm");
  CHECK(leases->front().consumer_name == "web");
  CHECK(leases->front().address == A("0000:17:02.0"));
  CHECK_FALSE(parse_lease(std::string_view(R"({"id": "x", "address": "0000:17:02.0"})")).ok());

  auto dev = parse_device(R"({"address": "0000:17:02.0", "iommu_group": 40, "numa_node": -1, "netdevs": ["a"]})");
  REQUIRE(dev.ok());
  CHECK(dev->iommu_group == 40);
  CHECK(dev->netdevs == std::vector<std::string>{"a"});
}

namespace {

struct Parsed {
  bool ok = false;
  std::string body;
  int status = 0;
  bool complete = false;
  std::string error;
};

// Feeds `text` to a parser split at every `step` bytes; finish() at the end when `close`.
Parsed parse_http(const std::string& text, size_t step, bool close = false) {
  Parsed out;
  HttpResponseParser p([&](std::string_view b) { out.body.append(b); });
  out.ok = true;
  for (size_t i = 0; i < text.size() && out.ok; i += step) out.ok = p.feed(std::string_view(text).substr(i, step));
  if (close) p.finish();
  out.ok = out.ok && !p.failed();
  out.status = p.status();
  out.complete = p.complete();
  out.error = p.error();
  return out;
}

}  // namespace

TEST_CASE("HTTP answers: Content-Length, chunked, close-delimited, split anywhere") {
  const std::string fixed =
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"ab\"}";
  const std::string chunked =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
  for (size_t step : {1u, 2u, 7u, 1000u}) {
    CAPTURE(step);
    auto a = parse_http(fixed, step);
    CHECK(a.ok);
    CHECK(a.complete);
    CHECK(a.status == 201);
    CHECK(a.body == "{\"id\":\"ab\"}");
    auto b = parse_http(chunked, step);
    CHECK(b.ok);
    CHECK(b.complete);
    CHECK(b.body == "hello world");
  }
  auto interim = parse_http("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 3);
  CHECK(interim.complete);
  CHECK(interim.status == 204);
  auto close = parse_http("HTTP/1.0 200 OK\r\n\r\nuntil the end", 4);
  CHECK_FALSE(close.complete);
  CHECK(parse_http("HTTP/1.0 200 OK\r\n\r\nuntil the end", 4, true).complete);
  CHECK(parse_http("HTTP/1.0 200 OK\r\n\r\nuntil the end", 4, true).body == "until the end");
}

TEST_CASE("HTTP answers: malformed or truncated ones fail with a reason") {
  CHECK_FALSE(parse_http("SSH-2.0-OpenSSH\r\n\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 2x0 OK\r\n\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 5).ok);
  CHECK_FALSE(parse_http("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 5).ok);
  auto trunc = parse_http("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 5, true);
  CHECK_FALSE(trunc.ok);
  CHECK(trunc.error.find("closed before") != std::string::npos);
  std::string huge = "HTTP/1.1 200 OK\r\nX: " + std::string(HttpResponseParser::max_header_bytes, 'a') + "\r\n\r\n";
  CHECK_FALSE(parse_http(huge, 4096).ok);
}

TEST_CASE("problem+json detail, else the status") {
  CHECK(problem_detail({409, "application/problem+json", R"({"detail":"device 0000:17:02.0 is leased"})"}) ==
        "device 0000:17:02.0 is leased");
  CHECK(problem_detail({502, "text/html", "<html>"}) == "sriovd answered HTTP 502");
}
