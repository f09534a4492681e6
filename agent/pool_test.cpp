// Unit tier: pool definitions, selectors and picking, on values only.
#include "agent/pool.h"

#include <doctest/doctest.h>

using namespace sriovd;
using namespace sriovd::agent;
using nlohmann::json;

namespace {

Candidate vf(const char* addr, const char* pf_netdev, uint32_t index, int numa = 0, const char* driver = "iavf") {
  Candidate c;
  c.address = *PciAddress::parse(addr);
  c.vendor_id = 0x8086;
  c.device_id = 0x154c;
  c.host_driver = driver;
  c.pf_netdev = pf_netdev;
  c.vf_index = index;
  c.numa_node = numa;
  c.is_vf = true;
  return c;
}

}  // namespace

TEST_CASE("pf_names ranges parse, and bad ones say why") {
  CHECK(*parse_pf_range("ens1f0") == PfRange{"ens1f0", std::nullopt, std::nullopt});
  CHECK(*parse_pf_range("ens1f0#0-7") == PfRange{"ens1f0", 0u, 7u});
  CHECK(*parse_pf_range("ens1f0#3") == PfRange{"ens1f0", 3u, 3u});
  CHECK(to_string(*parse_pf_range("ens1f0#3-3")) == "ens1f0#3");
  CHECK(to_string(*parse_pf_range("ens1f0#2-5")) == "ens1f0#2-5");
  for (const char* bad : {"", "#0-7", "ens1f0#", "ens1f0#7-0", "ens1f0#a-b", "ens1f0#1-", "a/b",
                          "averyveryverylongname", "ens1f0#-1", "ens1f0#1-2-3"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_pf_range(bad).ok());
  }
  CHECK(parse_pf_range("ens1f0#7-0").error().message.find("ends before it starts") != std::string::npos);
}

TEST_CASE("pool definitions: defaults, round trip, and errors naming the field") {
  auto p = pool_from_json(
      json::parse(R"({"name": "fast", "selectors": {"vendor_ids": ["8086"], "pf_names": ["ens1f0#0-3"]}})"));
  REQUIRE(p.ok());
  CHECK(p->device_type == DeviceType::vf);
  CHECK(p->mode == PoolMode::vfio);
  CHECK(p->policy == Policy::pack);
  auto back = pool_to_json(*p);
  CHECK(back["selectors"]["pf_names"][0] == "ens1f0#0-3");
  CHECK(back["physical_network"].is_null());
  CHECK(back["health"] == json({{"pf_link", false}}));
  CHECK(pool_to_json(*pool_from_json(back)) == back);
  auto watched = pool_from_json(json::parse(R"({"name": "up", "health": {"pf_link": true}})"));
  REQUIRE(watched.ok());
  CHECK(watched->health.pf_link);
  CHECK(pool_to_json(*watched)["health"]["pf_link"] == true);

  struct Bad {
    const char* body;
    const char* field;
  };
  for (auto [body, field] :
       {Bad{R"({})", "name"}, Bad{R"({"name": "Fast"})", "name"}, Bad{R"({"name": "-a"})", "name"},
        Bad{R"({"name": "a", "selectors": {"vendor_ids": ["80861"]}})", "selectors.vendor_ids[0]"},
        Bad{R"({"name": "a", "selectors": {"pf_names": ["x", "y#9-1"]}})", "selectors.pf_names[1]"},
        Bad{R"({"name": "a", "selectors": {"colour": []}})", "selectors.colour"},
        Bad{R"({"name": "a", "selectors": {"numa_nodes": [-1]}})", "selectors.numa_nodes[0]"},
        Bad{R"({"name": "a", "device_type": "gpu"})", "device_type"},
        Bad{R"({"name": "a", "device_type": {"dr": ["x"]}})", "device_type"},
        Bad{R"({"name": "a", "mode": 1})", "mode"}, Bad{R"({"name": "a", "policy": ["pack"]})", "policy"},
        Bad{R"({"name": "a", "mode": "netdev", "device_type": "pf"})", "mode"},
        Bad{R"({"name": "a", "health": true})", "health"},
        Bad{R"({"name": "a", "health": {"pf_link": "yes"}})", "health.pf_link"},
        Bad{R"({"name": "a", "health": {"pf_carrier": true}})", "health.pf_carrier"},
        Bad{R"({"name": "a", "device_type": "pf", "selectors": {"pf_names": ["e#1-2"]}})", "selectors.pf_names"}}) {
    CAPTURE(body);
    auto r = pool_from_json(json::parse(body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field == field);
    CHECK(r.error().code == ErrorCode::invalid);
  }
}

TEST_CASE("selectors: every given field must match, a missing one matches everything") {
  PoolSpec p;
  p.name = "p";
  CHECK(matches(p, vf("0000:3b:02.0", "ens2f0", 0)));
  p.selectors.pf_names = {*parse_pf_range("ens2f0#1-2")};
  CHECK_FALSE(matches(p, vf("0000:3b:02.0", "ens2f0", 0)));
  CHECK(matches(p, vf("0000:3b:02.1", "ens2f0", 1)));
  CHECK_FALSE(matches(p, vf("0000:3b:0a.1", "ens9f0", 1)));
  p.selectors.numa_nodes = {1};
  CHECK_FALSE(matches(p, vf("0000:3b:02.1", "ens2f0", 1, 0)));
  CHECK(matches(p, vf("0000:3b:02.1", "ens2f0", 1, 1)));
  p.selectors.drivers = {"iavf"};
  CHECK_FALSE(matches(p, vf("0000:3b:02.1", "ens2f0", 1, 1, "mlx5_core")));
  Candidate slot = vf("0000:3b:02.1", "ens2f0", 1, 1, "x");
  slot.driver_unknown = true;  // a VF not created yet may get any driver
  CHECK(matches(p, slot));
  p.selectors.vendor_ids = {0x15b3};
  CHECK_FALSE(matches(p, vf("0000:3b:02.1", "ens2f0", 1, 1)));

  PoolSpec whole;
  whole.name = "w";
  whole.device_type = DeviceType::pf;
  whole.selectors.pf_names = {*parse_pf_range("ens2f0")};
  Candidate pf;
  pf.address = *PciAddress::parse("0000:3b:00.0");
  pf.netdevs = {"ens2f0"};
  CHECK(matches(whole, pf));
  CHECK_FALSE(matches(whole, vf("0000:3b:02.1", "ens2f0", 1)));
  whole.device_type = DeviceType::any;
  CHECK(matches(whole, vf("0000:3b:02.1", "ens2f0", 1)));
}

TEST_CASE("picking: pack, spread, NUMA, lowest address on ties") {
  auto a = [](const char* s) { return *PciAddress::parse(s); };
  std::vector<FreeMember> free = {{a("0000:3b:02.1"), a("0000:3b:00.0"), 0},
                                  {a("0000:3b:02.2"), a("0000:3b:00.0"), 0},
                                  {a("0000:86:00.3"), a("0000:86:00.0"), 1}};
  std::map<PciAddress, int> load = {{a("0000:3b:00.0"), 1}};
  CHECK(*pick(free, Policy::pack, std::nullopt, load) == a("0000:3b:02.1"));
  CHECK(*pick(free, Policy::spread, std::nullopt, load) == a("0000:86:00.3"));
  CHECK(*pick(free, Policy::spread, 0, load) == a("0000:3b:02.1"));
  CHECK_FALSE(pick(free, Policy::pack, 2, load));
  CHECK_FALSE(pick({}, Policy::pack, std::nullopt, load));
}

TEST_CASE("pf_addresses: a PF by its PCI address, with VF ranges; any entry of a field, every field") {
  CHECK(*parse_pf_address_range("0000:3b:00.0") ==
        PfAddressRange{*PciAddress::parse("0000:3b:00.0"), std::nullopt, std::nullopt});
  CHECK(*parse_pf_address_range("0000:3b:00.0#2-5") == PfAddressRange{*PciAddress::parse("0000:3b:00.0"), 2u, 5u});
  CHECK(to_string(*parse_pf_address_range("0000:3b:00.0#3-3")) == "0000:3b:00.0#3");
  for (const char* bad : {"", "ens1f0", "0000:3b:00.0#", "0000:3b:00.0#5-1", "0000:3b:20.0", "0000:3b:00.0#a"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_pf_address_range(bad).ok());
  }
  auto p = pool_from_json(json::parse(
      R"({"name": "a", "selectors": {"pf_addresses": ["0000:3b:00.0#0-1", "0000:5e:00.0"], "numa_nodes": [0]}})"));
  REQUIRE(p.ok());
  CHECK(pool_to_json(*p)["selectors"]["pf_addresses"] == json({"0000:3b:00.0#0-1", "0000:5e:00.0"}));
  auto in_pool = [&](Candidate c, const char* pf) {
    c.pf_address = *PciAddress::parse(pf);
    return matches(*p, c);
  };
  CHECK(in_pool(vf("0000:3b:02.0", "ens2f0", 0), "0000:3b:00.0"));
  CHECK(in_pool(vf("0000:3b:02.1", "ens2f0", 1), "0000:3b:00.0"));
  CHECK_FALSE(in_pool(vf("0000:3b:02.2", "ens2f0", 2), "0000:3b:00.0"));     // past the range
  CHECK(in_pool(vf("0000:5e:00.5", "x", 30), "0000:5e:00.0"));               // the other entry: any of them
  CHECK_FALSE(in_pool(vf("0000:3b:02.0", "ens2f0", 0, 1), "0000:3b:00.0"));  // NUMA 1: every field must match
  CHECK_FALSE(in_pool(vf("0000:17:01.0", "ens1f0", 0), "0000:17:00.0"));
  auto bad = pool_from_json(
      json::parse(R"({"name": "a", "device_type": "pf", "selectors": {"pf_addresses": ["0000:3b:00.0#0"]}})"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().field == "selectors.pf_addresses");
  auto typo = pool_from_json(json::parse(R"({"name": "a", "selectors": {"pf_addresses": ["ens1f0"]}})"));
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.error().field == "selectors.pf_addresses[0]");
}

TEST_CASE("link_types and rdma: parsed, round-tripped, matched; bad values name the field") {
  auto p = pool_from_json(json::parse(R"({"name": "a", "selectors": {"link_types": ["infiniband"], "rdma": true}})"));
  REQUIRE(p.ok());
  CHECK(pool_to_json(*p)["selectors"] == json({{"link_types", {"infiniband"}}, {"rdma", true}}));
  Candidate c = vf("0000:86:00.2", "ens3f0", 0);
  CHECK_FALSE(matches(*p, c));
  c.link_type = "infiniband";
  CHECK_FALSE(matches(*p, c));
  c.rdma = true;
  CHECK(matches(*p, c));
  auto bad = pool_from_json(json::parse(R"({"name": "a", "selectors": {"link_types": ["wifi"]}})"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().field == "selectors.link_types[0]");
  bad = pool_from_json(json::parse(R"({"name": "a", "selectors": {"rdma": "yes"}})"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().field == "selectors.rdma");
}
