// Hotplug through the simulated kernel's uevents: devices removed and added back, VFs created
// and a driver unbound behind sriovd's back; the model follows through incremental updates and
// ends equal to a full rescan, and the events say what happened.
#include "agent/hotplug.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "agent/agent.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::agent;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const PciAddress kE810 = *PciAddress::parse("0000:17:00.0");   // ice, 128 VFs possible, ens1f0
const PciAddress kEno1 = *PciAddress::parse("0000:02:00.0");   // igb, eno1, its own group
const PciAddress kAudio = *PciAddress::parse("0000:87:00.1");  // shares a group with the GPU
const PciAddress kGpu = *PciAddress::parse("0000:87:00.0");

struct Host {
  test::TempDir dir{"sriovd-hotplug"};
  fs::path sys = dir / "sys";
  std::unique_ptr<kernel::SimKernel> sim;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<pci::SysfsRoot> root;
  HostModel model;
  EventLog log;
  std::unique_ptr<Agent> agent;
  std::unique_ptr<HotplugMonitor> monitor;

  Host() {
    REQUIRE(fixtures::write_profile("dual-socket", sys).ok());
    sim = std::move(kernel::SimKernel::open(sys).value());
    store = std::move(StateStore::open(dir / "state").value());
    root = std::make_unique<pci::SysfsRoot>(std::move(pci::SysfsRoot::open(sys).value()));
    agent = std::make_unique<Agent>(*root, *sim, *store, model, nullptr);
    agent->set_event_log(&log);
    REQUIRE(agent->refresh().ok());
    auto m = HotplugMonitor::start(*agent, HotplugSource::sim, sys.string());
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    monitor = std::move(*m);
  }
  ~Host() { monitor.reset(); }

  // Waits (deadline 10 s) for an event of `type` about `a` after `mark`.
  std::shared_ptr<const Event> wait_for(uint64_t mark, const std::string& type, const PciAddress& a) {
    auto end = std::chrono::steady_clock::now() + 10s;
    uint64_t cursor = mark;
    while (std::chrono::steady_clock::now() < end) {
      auto b = log.wait_after(cursor, 100ms);
      for (const auto& e : b.events) {
        cursor = e->id;
        if (e->type == type && e->data.value("address", "") == a.to_string()) return e;
      }
    }
    return nullptr;
  }

  // The incrementally kept model must equal a full rescan of the tree.
  void check_matches_rescan() {
    auto full = build_snapshot(*root, nullptr, 0, sim.get());
    REQUIRE(full.ok());
    auto now = model.current();
    REQUIRE(now->devices.size() == (*full)->devices.size());
    for (size_t i = 0; i < now->devices.size(); ++i) {
      const auto& a = now->devices[i];
      const auto& b = (*full)->devices[i];
      CHECK(a.device.address == b.device.address);
      CHECK(a.device.driver == b.device.driver);
      CHECK(a.device.iommu_group == b.device.iommu_group);
      CHECK(a.device.netdevs == b.device.netdevs);
      CHECK(a.device.vf_index == b.device.vf_index);
      CHECK(a.device.physfn == b.device.physfn);
      CHECK((a.device.sriov.has_value() == b.device.sriov.has_value()));
      if (a.device.sriov && b.device.sriov) CHECK(a.device.sriov->num_vfs == b.device.sriov->num_vfs);
      CHECK(a.vf_config == b.vf_config);
      CHECK(now->index.at(a.device.address) == i);
    }
    REQUIRE(now->groups.size() == (*full)->groups.size());
    for (const auto& [n, g] : (*full)->groups) {
      REQUIRE(now->groups.count(n));
      CHECK(now->groups.at(n).members == g.members);
      CHECK(now->groups.at(n).verdict.viable == g.verdict.viable);
    }
  }
};

}  // namespace

TEST_CASE("hot-remove and hot-add of a function: events and a model equal to a rescan") {
  Host h;
  const int group = *h.model.current()->find(kEno1)->device.iommu_group;
  uint64_t mark = h.log.last_id();
  REQUIRE(h.sim->hot_remove(kEno1).ok());
  auto removed = h.wait_for(mark, "device.removed", kEno1);
  REQUIRE(removed);
  CHECK(removed->data["driver"] == "igb");
  CHECK_FALSE(h.model.current()->find(kEno1));
  CHECK_FALSE(h.model.current()->groups.count(group));  // its group went with it
  h.check_matches_rescan();

  mark = h.log.last_id();
  REQUIRE(h.sim->hot_add(kEno1).ok());
  auto added = h.wait_for(mark, "device.added", kEno1);
  REQUIRE(added);
  const DeviceView* back = h.model.current()->find(kEno1);
  REQUIRE(back);
  CHECK(back->device.driver == std::string("igb"));
  CHECK(back->device.netdevs == std::vector<std::string>{"eno1"});
  CHECK(h.model.current()->groups.count(group));
  h.check_matches_rescan();

  // Errors name the reason.
  CHECK(h.sim->hot_add(kEno1).error().message.find("is present") != std::string::npos);
  CHECK(h.sim->hot_remove(*PciAddress::parse("0000:ee:00.0")).error().message.find("no PCI function") !=
        std::string::npos);
}

TEST_CASE("a member leaving a group changes its viability") {
  Host h;
  REQUIRE(h.agent->set_driver(kGpu, {std::string("vfio-pci"), false, false}).ok());
  CHECK_FALSE(h.model.current()->groups.at(*h.model.current()->find(kGpu)->device.iommu_group).verdict.viable);
  uint64_t mark = h.log.last_id();
  REQUIRE(h.sim->hot_remove(kAudio).ok());  // snd_hda_intel was what blocked the group
  auto changed = h.wait_for(mark, "device.changed", kGpu);
  REQUIRE(changed);
  CHECK(changed->data["changes"]["iommu_group_viable"]["to"] == true);
  h.check_matches_rescan();
}

TEST_CASE("changes made behind sriovd's back: VFs created by hand, a driver unbound by hand") {
  Host h;
  uint64_t mark = h.log.last_id();
  REQUIRE(h.sim->write_attr("bus/pci/devices/0000:17:00.0/sriov_numvfs", "3").ok());
  auto pf = h.wait_for(mark, "device.changed", kE810);
  REQUIRE(pf);
  CHECK(pf->data["changes"]["num_vfs"]["to"] == 3);
  // Every VF is there once the PF's change is (its event comes last).
  std::vector<PciAddress> vfs;
  for (const auto& v : h.model.current()->devices)
    if (v.device.physfn == kE810) vfs.push_back(v.device.address);
  REQUIRE(vfs.size() == 3);
  CHECK(h.model.current()->find(vfs[2])->device.vf_index == 2);
  CHECK(h.model.current()->find(vfs[2])->vf_config.has_value());
  h.check_matches_rescan();

  mark = h.log.last_id();
  REQUIRE(h.sim->write_attr("bus/pci/drivers/iavf/unbind", vfs[1].to_string()).ok());
  auto unbound = h.wait_for(mark, "device.changed", vfs[1]);
  REQUIRE(unbound);
  CHECK(unbound->data["changes"]["driver"]["from"] == "iavf");
  CHECK(unbound->data["changes"]["driver"]["to"] == nullptr);
  h.check_matches_rescan();

  mark = h.log.last_id();
  REQUIRE(h.sim->write_attr("bus/pci/devices/0000:17:00.0/sriov_numvfs", "0").ok());
  REQUIRE(h.wait_for(mark, "device.changed", kE810));
  for (const auto& v : vfs) CHECK_FALSE(h.model.current()->find(v));
  h.check_matches_rescan();
  CHECK(h.monitor->events_seen() > 0);
}

TEST_CASE("the agent's own changes are not read twice: their uevents are already in the model") {
  Host h;
  // The agent re-reads what it changed; the uevents of that change, numbered no later than the
  // uevent_seqnum it read first, must not make the monitor read the same functions again.
  REQUIRE(h.agent->set_driver(kEno1, {std::string("vfio-pci"), false, false}).ok());
  const uint64_t generation = h.model.current()->generation;
  auto seq = h.root->read("kernel/uevent_seqnum", 32);
  REQUIRE(seq.ok());
  const auto sent = static_cast<uint64_t>(std::stoull(*seq));
  REQUIRE(sent > 0);
  auto end = std::chrono::steady_clock::now() + 10s;
  while (h.monitor->handled_seqnum() < sent && std::chrono::steady_clock::now() < end) std::this_thread::yield();
  REQUIRE(h.monitor->handled_seqnum() >= sent);
  CHECK(h.model.current()->generation == generation);
  CHECK(h.model.current()->find(kEno1)->device.driver == std::string("vfio-pci"));

  // A change behind sriovd's back is still read, once its uevent arrives.
  uint64_t mark = h.log.last_id();
  REQUIRE(h.sim->write_attr("bus/pci/drivers/snd_hda_intel/unbind", kAudio.to_string()).ok());
  auto changed = h.wait_for(mark, "device.changed", kAudio);
  REQUIRE(changed);
  CHECK(h.model.current()->generation > generation);
  h.check_matches_rescan();
}

TEST_CASE("a PF's carrier follows netlink link notifications: VFs report it, health.pf_link pools mark them") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 3).ok());
  PoolSpec watched;
  watched.name = "uplink";
  watched.selectors.pf_names.push_back({"ens1f0", std::nullopt, std::nullopt});
  watched.health.pf_link = true;
  REQUIRE(h.agent->create_pool(watched).ok());
  PoolSpec plain;
  plain.name = "whole";
  plain.device_type = DeviceType::pf;
  plain.selectors.addresses = {kEno1};
  REQUIRE(h.agent->create_pool(plain).ok());
  auto members = [&](const PoolSpec& p) { return pool_members(p, *h.model.current()); };
  REQUIRE(members(watched).size() == 3);
  for (const auto& m : members(watched)) {
    CHECK_MESSAGE(m.healthy, m.reason);
    REQUIRE(m.view->pf_link);
    CHECK(m.view->pf_link->carrier == true);
    CHECK(m.view->pf_link->operstate == "up");
  }

  // The cable is pulled: no uevent, one RTM_NEWLINK on RTNLGRP_LINK.
  const uint64_t seen = h.monitor->events_seen();
  uint64_t mark = h.log.last_id();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(h.sim->set_carrier("ens1f0", false).ok());
  auto down = h.wait_for(mark, "device.changed", kE810);
  REQUIRE(down);
  const auto took = std::chrono::steady_clock::now() - t0;
  MESSAGE("carrier loss reached the model in ", std::chrono::duration<double, std::milli>(took).count(), " ms");
  CHECK(down->data["changes"]["link"]["from"]["carrier"] == true);
  CHECK(down->data["changes"]["link"]["to"] == nlohmann::json({{"carrier", false}, {"operstate", "down"}}));
  CHECK(h.monitor->events_seen() == seen);  // it came as a link notification, not a uevent
  CHECK(h.monitor->link_changes() >= 1);
  for (const auto& m : members(watched)) {
    CHECK_FALSE(m.healthy);
    CHECK(m.reason == "its PF ens1f0 (0000:17:00.0) has no carrier (operstate down)");
    CHECK(m.view->pf_link->carrier == false);
  }
  // A pool that did not ask is not affected by its members' links.
  REQUIRE(members(plain).front().healthy);
  mark = h.log.last_id();
  REQUIRE(h.sim->set_carrier("eno1", false).ok());
  REQUIRE(h.wait_for(mark, "device.changed", kEno1));
  CHECK(h.model.current()->find(kEno1)->link->carrier == false);
  CHECK(members(plain).front().healthy);
  h.check_matches_rescan();

  // A notification that changes nothing of the link is not read again; the next real change is.
  const uint64_t changes = h.monitor->link_changes();
  REQUIRE(h.sim->set_carrier("ens1f0", false).ok());
  mark = h.log.last_id();
  REQUIRE(h.sim->set_carrier("ens1f0", true).ok());
  REQUIRE(h.wait_for(mark, "device.changed", kE810));
  CHECK(h.monitor->link_changes() == changes + 1);
  for (const auto& m : members(watched)) CHECK_MESSAGE(m.healthy, m.reason);
  h.check_matches_rescan();

  // An administratively down netdev has no carrier the sim can change.
  std::ofstream(h.sys / "class/net/eno1/flags") << "0x1002\n";  // IFF_UP cleared
  auto refused = h.sim->set_carrier("eno1", true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().errnum == ENETDOWN);
}

TEST_CASE("switchdev: the PF's eswitch mode and each VF's representor, followed from the representors' uevents") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  const auto* pf = h.model.current()->find(kE810);
  REQUIRE(pf->eswitch_mode == EswitchMode::legacy);
  std::vector<PciAddress> vfs;
  for (const auto& v : h.model.current()->devices)
    if (v.device.physfn == kE810) vfs.push_back(v.device.address);
  REQUIRE(vfs.size() == 2);
  CHECK_FALSE(h.model.current()->find(vfs[1])->representor);

  // Behind sriovd's back, as `devlink dev eswitch set pci/0000:17:00.0 mode switchdev` would.
  uint64_t mark = h.log.last_id();
  REQUIRE(h.sim->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::switchdev).ok());
  auto changed = h.wait_for(mark, "device.changed", kE810);
  REQUIRE(changed);
  // The representors' netdevs came with uevents; the PF's mode is read with the PF.
  CHECK(changed->data["changes"]["eswitch_mode"]["to"] == "switchdev");
  auto snap = h.model.current();
  CHECK(snap->find(kE810)->eswitch_mode == EswitchMode::switchdev);
  REQUIRE(snap->find(kE810)->representors.size() == 2);
  const auto& rep = snap->find(vfs[1])->representor;
  REQUIRE(rep);
  CHECK(rep->netdev == "ens1f0_1");
  CHECK(rep->phys_port_name == "pf0vf1");
  CHECK(rep->phys_switch_id == "0000000000017000");
  CHECK(snap->find(kE810)->device.netdevs.front() == "ens1f0");  // the PF's own netdev stays first
  h.check_matches_rescan();

  mark = h.log.last_id();
  REQUIRE(h.sim->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::legacy).ok());
  REQUIRE(h.wait_for(mark, "device.changed", kE810));
  CHECK_FALSE(h.model.current()->find(vfs[1])->representor);
  CHECK(h.model.current()->find(kE810)->eswitch_mode == EswitchMode::legacy);
}
