// Sim tier: the Agent's mutations on a generated host through SimKernel, with a fault injected
// at every step (the whole tree must come back as it was), interlocks, reconcile after a
// simulated reboot, and recovery after a crash between steps.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/agent.h"
#include "agent/sim_host_test.h"
#include "agent/vf_config_json.h"
#include "sim/fault_kernel.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::agent;
using namespace sriovd::agent::testing;
namespace fs = std::filesystem;

TEST_CASE("num_vfs: create, same count is a no-op, change goes through 0") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 4).ok());
  CHECK(h.dev(kE810)->device.sriov->num_vfs == 4);
  auto vfs = h.vfs_of(kE810);
  REQUIRE(vfs.size() == 4);
  CHECK(vfs[0]->device.driver == std::string("iavf"));
  CHECK(**h.store->get("sriov", kE810.to_string()) == R"({"num_vfs":4})");

  h.faults->reset_calls();
  REQUIRE(h.agent->set_num_vfs(kE810, 4).ok());
  CHECK(h.faults->calls() == 0);  // no 0 → N cycle

  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  CHECK(h.faults->calls() == 2);  // 0, then 2
  CHECK(h.vfs_of(kE810).size() == 2);

  auto too_many = h.agent->set_num_vfs(kE810, 129);
  REQUIRE_FALSE(too_many.ok());
  CHECK(too_many.error().code == ErrorCode::invalid);
  CHECK(too_many.error().field == "num_vfs");
  CHECK(too_many.error().message.find("128") != std::string::npos);

  auto not_pf = h.agent->set_num_vfs(kGpu, 1);
  REQUIRE_FALSE(not_pf.ok());
  CHECK(not_pf.error().code == ErrorCode::invalid);
  auto absent = h.agent->set_num_vfs(*PciAddress::parse("0000:ee:00.0"), 1);
  CHECK(absent.error().code == ErrorCode::not_found);
}

TEST_CASE("drivers_autoprobe off: new VFs stay unbound, and so after a reboot") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2, false).ok());
  CHECK(h.dev(kE810)->device.sriov->drivers_autoprobe == false);
  for (const auto* vf : h.vfs_of(kE810)) CHECK_FALSE(vf->device.driver.has_value());
  // Asking again without the flag keeps it in the desired state.
  REQUIRE(h.agent->set_num_vfs(kE810, 3).ok());
  CHECK(nlohmann::json::parse(**h.store->get("sriov", kE810.to_string()))["drivers_autoprobe"] == false);
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  CHECK(h.dev(kE810)->device.sriov->drivers_autoprobe == true);
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  CHECK(h.dev(kE810)->device.sriov->drivers_autoprobe == false);
  REQUIRE(h.vfs_of(kE810).size() == 3);
  for (const auto* vf : h.vfs_of(kE810)) CHECK_FALSE(vf->device.driver.has_value());
}

TEST_CASE("num_vfs: a fault at any step leaves the whole tree as it was") {
  SUBCASE("0 -> 4 with autoprobe off") {
    fail_every_step(
        "dual-socket", [](Host&) {}, [](Host& h) { return h.agent->set_num_vfs(kE810, 4, false); });
  }
  SUBCASE("0 -> 4") {
    fail_every_step(
        "dual-socket", [](Host&) {}, [](Host& h) { return h.agent->set_num_vfs(kE810, 4); });
  }
  SUBCASE("4 -> 0") {
    fail_every_step(
        "dual-socket", [](Host&) {}, [](Host& h) { return h.agent->set_num_vfs(kX710, 0); });
  }
  SUBCASE("4 -> 8 (through 0)") {
    fail_every_step(
        "dual-socket", [](Host&) {}, [](Host& h) { return h.agent->set_num_vfs(kX710, 8); },
        {EBUSY, EIO, EINVAL, ERANGE}, true);
  }
}

TEST_CASE("interlock: num_vfs cannot change while a VF is bound to vfio-pci") {
  Host h;
  auto vf = h.vfs_of(kX710)[1]->device.address;
  REQUIRE(h.agent->set_driver(vf, {std::string("vfio-pci"), false, false}).ok());
  CHECK(h.dev(vf)->device.driver == std::string("vfio-pci"));
  auto before = tree(h.sys);
  auto r = h.agent->set_num_vfs(kX710, 2);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::conflict);
  CHECK(r.error().message.find(vf.to_string()) != std::string::npos);
  CHECK(tree(h.sys) == before);
}

TEST_CASE("switchdev: a legacy VF VLAN is a 409 naming the PF and the representor; other attributes go through") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  REQUIRE(h.sim->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::switchdev).ok());
  REQUIRE(h.agent->refresh().ok());
  const auto vf = h.vfs_of(kE810)[1]->device.address;
  REQUIRE(h.dev(kE810)->eswitch_mode == EswitchMode::switchdev);
  const auto before = h.state();
  for (auto field : {"vlan", "qos"}) {
    CAPTURE(field);
    VfConfig c;
    c.vlan = 100;
    if (std::string(field) == "qos") c.vlan.reset(), c.qos = 3, c.vlan = 0;
    auto r = h.agent->set_vf_config(vf, c);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::conflict);
    CHECK(r.error().field == "vlan");
    CHECK(r.error().message ==
          "the PF 0000:17:00.0 (ens1f0) is in switchdev mode: a legacy VF VLAN or QoS on " + vf.to_string() +
              " is not available there; tag on its representor ens1f0_1 (tc, OVS or a bridge) instead");
  }
  CHECK(h.state() == before);
  VfConfig mac;
  mac.mac = *MacAddress::parse("52:54:00:aa:bb:07");
  CHECK(h.agent->set_vf_config(vf, mac).ok());

  // A lease asking for a VLAN is refused the same way, naming its field, and nothing is leased.
  PoolSpec p;
  p.name = "sw";
  p.selectors.pf_names.push_back({"ens1f0", std::nullopt, std::nullopt});
  REQUIRE(h.agent->create_pool(p).ok());
  AllocationRequest req;
  req.pool = "sw";
  req.consumer_kind = "vm";
  req.consumer_name = "web1";
  req.vf_config = VfConfig{};
  req.vf_config->vlan = 20;
  auto lease = h.agent->allocate(req);
  REQUIRE_FALSE(lease.ok());
  CHECK(lease.error().code == ErrorCode::conflict);
  CHECK(lease.error().field == "vf_config.vlan");
  CHECK(h.model.current()->book->leases.empty());

  // Back in legacy mode the same VLAN goes through.
  REQUIRE(h.sim->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::legacy).ok());
  REQUIRE(h.agent->refresh().ok());
  VfConfig vlan;
  vlan.vlan = 100;
  CHECK(h.agent->set_vf_config(vf, vlan).ok());
}

TEST_CASE("VF attributes: set, read back, refused values restore what was applied") {
  Host h;
  auto vf = h.vfs_of(kX710)[2]->device.address;
  VfConfig c;
  c.mac = *MacAddress::parse("52:54:00:aa:bb:02");
  c.vlan = 100;
  c.qos = 3;
  c.max_tx_rate_mbps = 1000;
  c.spoofchk = false;
  c.trust = true;
  REQUIRE(h.agent->set_vf_config(vf, c).ok());
  auto got = h.dev(vf)->vf_config;
  REQUIRE(got);
  CHECK(got->mac->to_string() == "52:54:00:aa:bb:02");
  CHECK(got->vlan == 100);
  CHECK(got->qos == 3);
  CHECK(got->max_tx_rate_mbps == 1000);
  CHECK(got->spoofchk == false);
  CHECK(got->trust == true);

  // i40e refuses a minimum rate: the MAC applied before it in the same PATCH is restored.
  VfConfig bad;
  bad.mac = *MacAddress::parse("52:54:00:aa:bb:99");
  bad.min_tx_rate_mbps = 10;
  auto before = h.state();
  auto r = h.agent->set_vf_config(vf, bad);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == EINVAL);
  CHECK(r.error().field == "min_tx_rate_mbps");
  CHECK(r.error().message.find("min_tx_rate: refused by the driver of ens2f0") != std::string::npos);
  CHECK(h.state() == before);
  CHECK(h.dev(vf)->vf_config->mac->to_string() == "52:54:00:aa:bb:02");
}

TEST_CASE("VF attributes: qos or vlan_proto without vlan is refused at the edge, naming the field") {
  Host h;
  auto vf = h.vfs_of(kX710)[1]->device.address;
  VfConfig set;
  set.vlan = 100;
  set.qos = 2;
  REQUIRE(h.agent->set_vf_config(vf, set).ok());
  const auto before = h.state();
  VfConfig q;
  q.qos = 3;
  auto r = h.agent->set_vf_config(vf, q);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::invalid);
  CHECK(r.error().field == "qos");
  CHECK(r.error().message.find("qos needs vlan") != std::string::npos);
  VfConfig p;
  p.vlan_proto = uint16_t{0x88a8};
  CHECK(h.agent->set_vf_config(vf, p).error().field == "vlan_proto");
  VfConfig ad;
  ad.vlan = 0;
  ad.vlan_proto = uint16_t{0x88a8};
  r = h.agent->set_vf_config(vf, ad);
  CHECK(r.error().field == "vlan_proto");
  CHECK(r.error().message.find("802.1ad needs a vlan other than 0") != std::string::npos);
  CHECK(h.state() == before);
  // vlan 0 with a qos is a priority tag: accepted.
  VfConfig tag;
  tag.vlan = 0;
  tag.qos = 6;
  REQUIRE(h.agent->set_vf_config(vf, tag).ok());
  CHECK(h.dev(vf)->vf_config->vlan == 0);
  CHECK(h.dev(vf)->vf_config->qos == 6);
  // An allocation's vf_config is checked the same way, the field under vf_config.
  AllocationRequest req;
  req.address = h.vfs_of(kX710)[3]->device.address;
  req.consumer_kind = "vm";
  req.consumer_name = "q";
  req.vf_config = q;
  auto a = h.agent->allocate(req);
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().field == "vf_config.qos");
}

TEST_CASE("VF attributes: igb's link reset by a VF count change is waited for, at a reconcile after a reboot too") {
  Host h("igb");
  const PciAddress k82576 = *PciAddress::parse("0000:01:00.0");
  // igb_sriov_reinit: the PF's link is down for 2 s after every VF count change.
  REQUIRE(h.sim->set_link_settle(std::chrono::seconds(2)).ok());
  REQUIRE(h.agent->set_num_vfs(k82576, 0).ok());
  REQUIRE(h.agent->set_num_vfs(k82576, 2).ok());
  CHECK(h.root->read("class/net/enp1s0/carrier", 16).value_or("") == "0\n");
  auto vf = h.vfs_of(k82576)[1]->device.address;
  VfConfig rate;
  rate.max_tx_rate_mbps = 100;
  rate.spoofchk = false;
  auto r = h.agent->set_vf_config(vf, rate);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(h.root->read("class/net/enp1s0/carrier", 16).value_or("") == "1\n");
  CHECK(h.dev(vf)->vf_config->max_tx_rate_mbps == 100);

  // After a reboot the VFs are made again and the link goes with them: reconcile waits for it
  // and leaves no drift.
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  for (const auto& d : report.drift) MESSAGE(d);
  REQUIRE(h.vfs_of(k82576).size() == 2);
  CHECK(h.dev(vf)->vf_config->max_tx_rate_mbps == 100);
  CHECK(h.dev(vf)->vf_config->spoofchk == false);

  // Not allowed to wait: the refusal names the missing link, and nothing is left applied.
  h.agent->set_carrier_wait(std::chrono::milliseconds(0));
  REQUIRE(h.agent->set_num_vfs(k82576, 0).ok());
  REQUIRE(h.agent->set_num_vfs(k82576, 2).ok());
  const auto before = h.state();
  rate.max_tx_rate_mbps = 200;
  r = h.agent->set_vf_config(vf, rate);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::conflict);
  CHECK(r.error().message.find("max_tx_rate: enp1s0 has no link") != std::string::npos);
  CHECK(h.state() == before);
}

TEST_CASE("VF attributes: igb refuses max_tx_rate without link and on models without rate limits") {
  Host h("igb");
  const PciAddress k82576 = *PciAddress::parse("0000:01:00.0"), ki350 = *PciAddress::parse("0000:03:00.0");
  auto vf = h.vfs_of(k82576)[0]->device.address;
  VfConfig rate;
  rate.max_tx_rate_mbps = 100;
  REQUIRE(h.agent->set_vf_config(vf, rate).ok());
  CHECK(h.dev(vf)->vf_config->max_tx_rate_mbps == 100);

  // The PF's link goes down: the MAC applied before the rate in the same PATCH is taken back.
  REQUIRE(h.sim->write_attr("class/net/enp1s0/carrier", "0").ok());
  REQUIRE(h.agent->refresh().ok());
  const auto before = h.state();
  VfConfig both;
  both.mac = *MacAddress::parse("52:54:00:aa:bb:07");
  both.max_tx_rate_mbps = 200;
  auto r = h.agent->set_vf_config(vf, both);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == EINVAL);
  CHECK(r.error().code == ErrorCode::conflict);
  CHECK(r.error().field == "max_tx_rate_mbps");
  CHECK(r.error().message.find("max_tx_rate: enp1s0 has no link") != std::string::npos);
  CHECK(h.state() == before);
  CHECK(h.dev(vf)->vf_config->max_tx_rate_mbps == 100);
  // A minimum is refused before the link is looked at: the reason says so, not the link.
  VfConfig min;
  min.min_tx_rate_mbps = 10;
  r = h.agent->set_vf_config(vf, min);
  CHECK(r.error().field == "min_tx_rate_mbps");
  CHECK(r.error().code == ErrorCode::invalid);
  CHECK(r.error().message.find("has no link") == std::string::npos);
  // A rate above the link speed is the driver's EINVAL too, with the link up: no link reason.
  REQUIRE(h.sim->write_attr("class/net/enp1s0/carrier", "1").ok());
  rate.max_tx_rate_mbps = 2000;
  r = h.agent->set_vf_config(vf, rate);
  CHECK(r.error().code == ErrorCode::invalid);
  CHECK(r.error().field == "max_tx_rate_mbps");
  CHECK(r.error().message.find("has no link") == std::string::npos);

  // An I350: igb has no VF rate limits there (EOPNOTSUPP), whatever the link.
  REQUIRE(h.agent->set_num_vfs(ki350, 2).ok());
  auto ivf = h.vfs_of(ki350)[1]->device.address;
  const auto before350 = h.state();
  rate.max_tx_rate_mbps = 100;
  r = h.agent->set_vf_config(ivf, rate);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == EOPNOTSUPP);
  CHECK(r.error().code == ErrorCode::unsupported);
  CHECK(r.error().field == "max_tx_rate_mbps");
  CHECK(r.error().message.find("max_tx_rate: the driver of enp3s0 has no VF transmit rate limits") !=
        std::string::npos);
  CHECK(h.state() == before350);
}

TEST_CASE("VF attributes: a fault at any step leaves the tree as it was") {
  fail_every_step(
      "dual-socket", [](Host&) {},
      [](Host& h) {
        VfConfig c;
        c.mac = *MacAddress::parse("52:54:00:00:00:01");
        c.vlan = 7;
        c.max_tx_rate_mbps = 500;
        c.spoofchk = false;
        c.trust = true;
        c.link_state = LinkState::enable;
        return h.agent->set_vf_config(h.vfs_of(kX710)[0]->device.address, c);
      },
      {EINVAL, EOPNOTSUPP, EIO});
}

TEST_CASE("drivers: vfio-pci and back to the host driver; whole groups; faults roll back") {
  Host h;
  auto vf = h.vfs_of(kX710)[0]->device.address;
  auto before = tree(h.sys);
  REQUIRE(h.agent->set_driver(vf, {std::string("vfio-pci"), false, false}).ok());
  CHECK(h.dev(vf)->device.driver == std::string("vfio-pci"));
  CHECK(h.dev(vf)->device.netdevs.empty());
  REQUIRE(h.agent->set_driver(vf, {std::string("host"), false, false}).ok());
  CHECK(h.dev(vf)->device.driver == std::string("iavf"));
  CHECK_FALSE(h.store->get("driver", vf.to_string())->has_value());

  SUBCASE("group: the GPU and its audio function move together") {
    REQUIRE(h.agent->set_driver(kGpu, {std::string("vfio-pci"), true, false}).ok());
    auto audio = *PciAddress::parse("0000:87:00.1");
    CHECK(h.dev(kGpu)->device.driver == std::string("vfio-pci"));
    CHECK(h.dev(audio)->device.driver == std::string("vfio-pci"));
    CHECK(h.model.current()->groups.at(*h.dev(kGpu)->device.iommu_group).verdict.viable);
    REQUIRE(h.agent->set_driver(kGpu, {std::string("host"), true, false}).ok());
    CHECK(h.dev(kGpu)->device.driver == std::string("nouveau"));
    CHECK(h.dev(audio)->device.driver == std::string("snd_hda_intel"));
  }
  SUBCASE("a PF with VFs is not passed through") {
    auto r = h.agent->set_driver(kX710, {std::string("vfio-pci"), false, false});
    CHECK(r.error().code == ErrorCode::conflict);
  }
  SUBCASE("a netdev up with an address is refused unless forced") {
    const auto ifname = h.dev(*PciAddress::parse("0000:02:00.0"))->device.netdevs.front();  // eno1, up
    REQUIRE(h.sim->set_link_addresses(ifname, {"192.0.2.10/24"}, 1).ok());
    auto r = h.agent->set_driver(*PciAddress::parse("0000:02:00.0"), {std::string("vfio-pci"), false, false});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::conflict);
    CHECK(r.error().message.find("192.0.2.10/24") != std::string::npos);
    CHECK(h.agent->set_driver(*PciAddress::parse("0000:02:00.0"), {std::string("vfio-pci"), false, true}).ok());
  }
  SUBCASE("a netdev whose state cannot be read is refused, naming the error, unless forced") {
    const auto eno1 = *PciAddress::parse("0000:02:00.0");
    h.faults->fail_get_link(EACCES);
    auto r = h.agent->set_driver(eno1, {std::string("vfio-pci"), false, false});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::conflict);
    CHECK(r.error().message.find("cannot tell whether netdev") != std::string::npos);
    CHECK(r.error().message.find("Permission denied") != std::string::npos);
    CHECK(h.dev(eno1)->device.driver != std::string("vfio-pci"));
    h.faults->fail_get_link(ENODEV);  // gone: nothing to protect
    CHECK(h.agent->set_driver(eno1, {std::string("vfio-pci"), false, false}).ok());
  }
}

TEST_CASE("drivers: a fault at any step of a group move leaves the tree as it was") {
  fail_every_step(
      "dual-socket", [](Host&) {},
      [](Host& h) {
        return h.agent->set_driver(kGpu, {std::string("vfio-pci"), true, false});
      });
}

TEST_CASE("reconcile after a reboot recreates VFs, attributes and drivers, and changes nothing twice") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 3).ok());
  // Addresses, not pointers: every change publishes a new snapshot.
  const PciAddress vf1 = h.vfs_of(kE810)[1]->device.address, vf2 = h.vfs_of(kE810)[2]->device.address;
  VfConfig c;
  c.mac = *MacAddress::parse("52:54:00:12:34:56");
  c.vlan = 42;
  REQUIRE(h.agent->set_vf_config(vf1, c).ok());
  REQUIRE(h.agent->set_driver(vf2, {std::string("vfio-pci"), false, false}).ok());
  auto configured = tree(h.sys);

  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  CHECK(h.dev(kE810)->device.sriov->num_vfs == 0);
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  CHECK_FALSE(report.applied.empty());
  auto now = h.vfs_of(kE810);
  REQUIRE(now.size() == 3);
  CHECK(now[1]->vf_config->mac->to_string() == "52:54:00:12:34:56");
  CHECK(now[1]->vf_config->vlan == 42);
  CHECK(now[2]->device.driver == std::string("vfio-pci"));

  // A second reconcile has nothing to do: no kernel call at all.
  h.faults->reset_calls();
  auto again = h.agent->reconcile();
  CHECK(again.applied.empty());
  CHECK(h.faults->calls() == 0);
}

TEST_CASE("kill -9 between steps: the restarted agent undoes the interrupted operation") {
  SUBCASE("a whole IOMMU group to vfio-pci") {
    crash_at_every_step(
        [](Agent& a) {
          return a.set_driver(kGpu, {std::string("vfio-pci"), true, false});
        },
        [](Host& h) { CHECK(h.dev(kGpu)->device.driver == std::string("vfio-pci")); });
  }
  SUBCASE("VF count 4 -> 0 on the X710") {
    crash_at_every_step([](Agent& a) { return a.set_num_vfs(kX710, 0); },
                        [](Host& h) { CHECK(h.dev(kX710)->device.sriov->num_vfs == 0); });
  }
  SUBCASE("VF attributes") {
    crash_at_every_step(
        [](Agent& a) {
          VfConfig c;
          c.mac = *MacAddress::parse("52:54:00:00:00:07");
          c.vlan = 12;
          c.trust = true;
          return a.set_vf_config(*PciAddress::parse("0000:3b:02.1"), c);
        },
        [](Host& h) { CHECK(h.dev(*PciAddress::parse("0000:3b:02.1"))->vf_config->vlan == 12); });
  }
}

namespace {

std::vector<std::shared_ptr<const Event>> events_after(const EventLog& log, uint64_t after) {
  return log.wait_after(after, std::chrono::milliseconds(0)).events;
}

const Event* find_event(const std::vector<std::shared_ptr<const Event>>& evs, const std::string& type,
                        const PciAddress& a) {
  for (const auto& e : evs)
    if (e->type == type && e->data.value("address", "") == a.to_string()) return e.get();
  return nullptr;
}

}  // namespace

TEST_CASE("events: mutations report what changed on the host") {
  Host h;
  EventLog log;
  h.agent->set_event_log(&log);

  uint64_t mark = log.last_id();
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  auto evs = events_after(log, mark);
  const Event* pf = find_event(evs, "device.changed", kE810);
  REQUIRE(pf);
  CHECK(pf->data["changes"]["num_vfs"]["from"] == 0);
  CHECK(pf->data["changes"]["num_vfs"]["to"] == 2);
  REQUIRE(h.vfs_of(kE810).size() == 2);
  const auto vf0 = h.vfs_of(kE810)[0]->device.address;
  const auto vf = h.vfs_of(kE810)[1]->device.address;
  const Event* added = find_event(evs, "device.added", vf0);
  REQUIRE(added);
  CHECK(added->data["physfn"] == kE810.to_string());
  CHECK(added->data["vf_index"] == 0);

  mark = log.last_id();
  VfConfig c;
  c.vlan = 100;
  REQUIRE(h.agent->set_vf_config(vf, c).ok());
  evs = events_after(log, mark);
  const Event* cfg = find_event(evs, "vf_config.changed", vf);
  REQUIRE(cfg);
  CHECK(cfg->data["vf_config"]["vlan"] == 100);
  CHECK(cfg->data["vf_index"] == 1);

  mark = log.last_id();
  REQUIRE(h.agent->set_mtu(kE810, 9000).ok());
  evs = events_after(log, mark);
  const Event* mtu = find_event(evs, "device.changed", kE810);
  REQUIRE(mtu);
  CHECK(mtu->data["changes"]["mtu"]["from"] == 1500);
  CHECK(mtu->data["changes"]["mtu"]["to"] == 9000);

  mark = log.last_id();
  REQUIRE(h.agent->set_driver(vf, {std::string("vfio-pci"), false, false}).ok());
  evs = events_after(log, mark);
  const Event* drv = find_event(evs, "device.changed", vf);
  REQUIRE(drv);
  CHECK(drv->data["changes"]["driver"]["from"] == "iavf");
  CHECK(drv->data["changes"]["driver"]["to"] == "vfio-pci");
  CHECK(drv->data["driver"] == "vfio-pci");

  // A refused change publishes nothing that did not happen.
  mark = log.last_id();
  CHECK_FALSE(h.agent->set_num_vfs(kE810, 3).ok());  // a VF is on vfio-pci
  CHECK(events_after(log, mark).empty());

  // The group of the GPU becomes viable when both members move.
  mark = log.last_id();
  REQUIRE(h.agent->set_driver(kGpu, {std::string("vfio-pci"), true, false}).ok());
  evs = events_after(log, mark);
  const Event* gpu = find_event(evs, "device.changed", kGpu);
  REQUIRE(gpu);
  CHECK(gpu->data["changes"]["iommu_group_viable"]["to"] == true);

  mark = log.last_id();
  REQUIRE(h.agent->set_driver(vf, {std::string("host"), false, false}).ok());
  REQUIRE(h.agent->set_num_vfs(kE810, 0).ok());
  evs = events_after(log, mark);
  CHECK(find_event(evs, "device.removed", vf0));
}

TEST_CASE("MTU: a PF's is desired state, reconciled after a reboot; out of the driver's range is refused") {
  Host h;
  auto pf_mtu = [&] { return h.dev(kE810)->mtu; };
  CHECK(pf_mtu() == 1500u);
  REQUIRE(h.agent->set_mtu(kE810, 9000).ok());
  CHECK(pf_mtu() == 9000u);
  auto too_big = h.agent->set_mtu(kE810, 9800);  // ice takes up to 9702
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().code == ErrorCode::invalid);
  CHECK(too_big.error().field == "mtu");
  CHECK(too_big.error().message.find("greater than device maximum") != std::string::npos);
  CHECK(pf_mtu() == 9000u);
  CHECK(h.agent->set_mtu(kE810, 9000).ok());  // the same again changes nothing
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  CHECK(pf_mtu() == 1500u);
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  CHECK(pf_mtu() == 9000u);
  h.faults->reset_calls();
  h.agent->reconcile();
  CHECK(h.faults->calls() == 0);
}

TEST_CASE("MTU: a VF's is in its vf_config, never above its PF's, and the PF's never below its VFs'") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  const PciAddress vf0 = h.vfs_of(kE810)[0]->device.address;
  REQUIRE_FALSE(h.dev(vf0)->device.netdevs.empty());
  VfConfig jumbo;
  jumbo.mtu = 9000;
  auto above = h.agent->set_vf_config(vf0, jumbo);
  REQUIRE_FALSE(above.ok());
  CHECK(above.error().code == ErrorCode::invalid);
  CHECK(above.error().field == "mtu");
  CHECK(above.error().message.find(vf0.to_string()) != std::string::npos);
  CHECK(above.error().message.find(kE810.to_string()) != std::string::npos);
  CHECK(h.dev(vf0)->mtu == 1500u);
  REQUIRE(h.agent->set_mtu(kE810, 9000).ok());
  REQUIRE(h.agent->set_vf_config(vf0, jumbo).ok());
  CHECK(h.dev(vf0)->mtu == 9000u);
  auto lower = h.agent->set_mtu(kE810, 1500);
  REQUIRE_FALSE(lower.ok());
  CHECK(lower.error().code == ErrorCode::conflict);
  CHECK(lower.error().message.find(vf0.to_string()) != std::string::npos);
  CHECK(h.dev(kE810)->mtu == 9000u);
  // A VF's MTU goes through its vf_config, not the PF's endpoint.
  CHECK(h.agent->set_mtu(vf0, 1500).error().code == ErrorCode::invalid);
  // After a reboot: the PF's first, then the VF's.
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  CHECK(h.dev(kE810)->mtu == 9000u);
  CHECK(h.dev(vf0)->mtu == 9000u);
}

TEST_CASE("MTU: a fault at any step of a VF attribute change with an MTU leaves the tree as it was") {
  fail_every_step(
      "dual-socket", [](Host& h) { REQUIRE(h.agent->set_mtu(kX710, 9000).ok()); },
      [](Host& h) {
        VfConfig c;
        c.mac = *MacAddress::parse("52:54:00:00:00:01");
        c.trust = true;
        c.mtu = 9000;
        return h.agent->set_vf_config(h.vfs_of(kX710)[0]->device.address, c);
      },
      {EINVAL, EIO});
}
