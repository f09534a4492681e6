// Sim tier: pools and leases on the generated dual-socket host through SimKernel — picking,
// interlocks, idempotency, release back to a clean VF, a fault at every step, kill -9 at every
// step, and leases surviving a reboot.
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "agent/pool.h"
#include "agent/sim_host_test.h"

using namespace sriovd;
using namespace sriovd::agent;
using namespace sriovd::agent::testing;

namespace {

// The VfConfig the API's JSON form `j` gives (as the REST edge parses it).
VfConfig config(const nlohmann::json& j) { return vf_config_from_json(j).value(); }

const PciAddress kCx6 = *PciAddress::parse("0000:86:00.0");    // ens3f0, 8 VFs on mlx5_core, NUMA 1
const PciAddress kAudio = *PciAddress::parse("0000:87:00.1");  // the GPU's audio, snd_hda_intel
const PciAddress kNvme = *PciAddress::parse("0000:5e:00.0");

PoolSpec pool(const char* name, const std::vector<const char*>& pf_names, PoolMode mode = PoolMode::vfio,
              Policy policy = Policy::pack) {
  PoolSpec p;
  p.name = name;
  for (auto n : pf_names) p.selectors.pf_names.push_back(*parse_pf_range(n));
  p.mode = mode;
  p.policy = policy;
  return p;
}

AllocationRequest from(const char* pool_name, const char* consumer = "vm1") {
  AllocationRequest r;
  r.pool = pool_name;
  r.consumer_kind = "vm";
  r.consumer_name = consumer;
  return r;
}

Result<Allocation> alloc(Host& h, const AllocationRequest& r) { return h.agent->allocate(r); }

// The addresses of pool `name`'s members now.
std::vector<PciAddress> member_addresses(Host& h, const char* name) {
  std::vector<PciAddress> out;
  for (const auto& m : pool_members(*h.model.current()->book->pool(name), *h.model.current()))
    out.push_back(m.view->device.address);
  return out;
}

// Renames the netdev `from` of the function at `pf` to `to` in the tree, as the kernel shows a
// rename (its directory under the function, and its class/net link); the agent is not told.
void rename_netdev(Host& h, const PciAddress& pf, const std::string& from, const std::string& to) {
  const fs::path dir = fs::canonical(h.sys / "bus/pci/devices" / pf.to_string());
  fs::rename(dir / "net" / from, dir / "net" / to);
  const fs::path link = fs::read_symlink(h.sys / "class/net" / from);
  fs::remove(h.sys / "class/net" / from);
  fs::create_symlink(link.parent_path() / to, h.sys / "class/net" / to);
}

}  // namespace

TEST_CASE("pools: selectors, overlap refused at creation (present devices and VF slots), delete") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto s = h.model.current();
  auto members = pool_members(*s->book->pool("x710"), *s);
  REQUIRE(members.size() == 4);
  CHECK(members[0].view->device.address.to_string() == "0000:3b:02.0");
  CHECK(members[0].healthy);

  auto dup = h.agent->create_pool(pool("x710", {"ens3f0"}));
  CHECK(dup.error().code == ErrorCode::conflict);
  auto overlap = h.agent->create_pool(pool("other", {"ens2f0#2-3"}));
  REQUIRE_FALSE(overlap.ok());
  CHECK(overlap.error().code == ErrorCode::conflict);
  CHECK(overlap.error().message.find("0000:3b:02.2") != std::string::npos);

  // The E810 has no VFs yet: ranges over its VF slots still may not overlap.
  REQUIRE(h.agent->create_pool(pool("e810-a", {"ens1f0#0-7"})).ok());
  auto slot = h.agent->create_pool(pool("e810-b", {"ens1f0#7-15"}));
  REQUIRE_FALSE(slot.ok());
  CHECK(slot.error().message.find("a VF its PF can enable") != std::string::npos);
  CHECK(h.agent->create_pool(pool("e810-b", {"ens1f0#8-15"})).ok());
  // Enabling VFs fills the pools.
  REQUIRE(h.agent->set_num_vfs(kE810, 12).ok());
  s = h.model.current();
  CHECK(pool_members(*s->book->pool("e810-a"), *s).size() == 8);
  CHECK(pool_members(*s->book->pool("e810-b"), *s).size() == 4);

  // Whole devices: the NVMe by vendor, and a PF with VFs is a member but not healthy.
  PoolSpec nvme;
  nvme.name = "nvme";
  nvme.device_type = DeviceType::pf;
  nvme.selectors.addresses = {kNvme, kCx6};
  REQUIRE(h.agent->create_pool(nvme).ok());
  s = h.model.current();
  auto whole = pool_members(*s->book->pool("nvme"), *s);
  REQUIRE(whole.size() == 2);
  CHECK(whole[0].healthy);
  CHECK_FALSE(whole[1].healthy);
  CHECK(whole[1].reason.find("VFs enabled") != std::string::npos);

  REQUIRE(h.agent->delete_pool("e810-b").ok());
  CHECK(h.agent->delete_pool("e810-b").error().code == ErrorCode::not_found);

  // Pools survive a restart, in order.
  h.start();
  s = h.model.current();
  REQUIRE(s->book->pools.size() == 3);
  CHECK(s->book->pools[0].name == "x710");
  CHECK(s->book->pools[2].name == "nvme");
}

TEST_CASE("leases: vfio binds, vf_config applies, a full pool is a conflict, release leaves a clean VF") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto req = from("x710");
  req.vf_config = config({{"mac", "52:54:00:aa:bb:01"}, {"vlan", 100}, {"qos", 2}, {"trust", true}});
  auto a = alloc(h, req);
  REQUIRE(a.ok());
  CHECK(a->created);
  const Lease& l = a->lease;
  CHECK(l.id.size() == 32);
  CHECK(l.state == LeaseState::active);
  CHECK(l.previous_driver == std::string("iavf"));
  const DeviceView* v = h.dev(l.address);
  CHECK(v->device.driver == std::string("vfio-pci"));
  CHECK(v->lease == l.id);
  CHECK(v->vf_config->mac->to_string() == "52:54:00:aa:bb:01");
  CHECK(v->vf_config->vlan == 100);
  CHECK(v->vf_config->trust == true);

  for (int i = 0; i < 3; ++i) REQUIRE(alloc(h, from("x710")).ok());
  auto full = alloc(h, from("x710"));
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == ErrorCode::conflict);
  CHECK(full.error().message.find("4 leased") != std::string::npos);

  size_t resets = h.sim->reset_count(l.address);
  auto released = h.agent->release(l.id);
  REQUIRE(released.ok());
  v = h.dev(l.address);
  CHECK(v->device.driver == std::string("iavf"));
  CHECK_FALSE(v->lease);
  CHECK(*v->vf_config == clean_vf_config());
  CHECK(h.sim->reset_count(l.address) == resets + 1);
  CHECK(released->reset == "done");
  CHECK(released->reset_error.empty());
  CHECK(h.agent->release(l.id).error().code == ErrorCode::not_found);
  // The freed VF is the one handed out next.
  auto again = alloc(h, from("x710"));
  REQUIRE(again.ok());
  CHECK(again->lease.address == l.address);
}

TEST_CASE("leases: a lease and its release copy the leased device's chunk of the snapshot, not the host") {
  Host h("large");  // 1,040 functions: many chunks of the device list
  REQUIRE(h.agent->create_pool(pool("p", {"ens1f0"}, PoolMode::netdev)).ok());
  auto changed_chunks = [](const Snapshot& a, const Snapshot& b) {
    REQUIRE(a.devices.size() == b.devices.size());
    std::vector<size_t> out;
    for (size_t c = 0; c * DeviceList::kChunk < a.devices.size(); ++c)
      if (!a.devices.same_chunk(b.devices, c)) out.push_back(c);
    return out;
  };
  auto before = h.model.current();
  auto a = alloc(h, from("p"));
  REQUIRE(a.ok());
  auto leased = h.model.current();
  const size_t at = leased->index.at(a->lease.address);
  CHECK(changed_chunks(*before, *leased) == std::vector<size_t>{at / DeviceList::kChunk});
  CHECK(leased->devices[at].lease == a->lease.id);
  CHECK_FALSE(before->devices[at].lease);  // the snapshot readers may still hold is as it was

  REQUIRE(h.agent->release(a->lease.id).ok());
  auto released = h.model.current();
  CHECK_FALSE(released->devices[at].lease);
  CHECK(leased->devices[at].lease == a->lease.id);
  // The release reads the VF again (and its PF's VF attributes): the chunks of those two at most.
  CHECK(changed_chunks(*leased, *released).size() <= 2);
}

TEST_CASE("pools: the pool index a snapshot carries over gives the members matching every device gives") {
  Host h;
  // Each pool's members from the snapshot's index, against the same snapshot matched in full.
  auto check_index = [](const Snapshot& s) {
    REQUIRE(s.pool_index);
    Snapshot bare = s;
    bare.pool_index = nullptr;
    for (const auto& p : s.book->pools) {
      CAPTURE(p.name);
      auto indexed = pool_members(p, s);
      auto matched = pool_members(p, bare);
      REQUIRE(indexed.size() == matched.size());
      for (size_t i = 0; i < indexed.size(); ++i) {
        CHECK(indexed[i].view->device.address == matched[i].view->device.address);
        CHECK(indexed[i].healthy == matched[i].healthy);
        CHECK(indexed[i].reason == matched[i].reason);
      }
    }
  };
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  REQUIRE(h.agent->create_pool(pool("cx6", {"ens3f0"}, PoolMode::netdev)).ok());
  check_index(*h.model.current());

  // A netdev lease and its release move no device between pools: the index is carried over.
  auto before = h.model.current();
  auto n = alloc(h, from("cx6"));
  REQUIRE(n.ok());
  CHECK(h.model.current()->pool_index == before->pool_index);
  REQUIRE(h.agent->release(n->lease.id).ok());
  CHECK(h.model.current()->pool_index == before->pool_index);
  check_index(*h.model.current());

  // A vfio lease moves its VF to vfio-pci (selectors still see the driver it had), and back.
  auto v = alloc(h, from("x710"));
  REQUIRE(v.ok());
  CHECK(h.dev(v->lease.address)->device.driver == std::string("vfio-pci"));
  check_index(*h.model.current());
  CHECK(pool_members(*h.model.current()->book->pool("x710"), *h.model.current()).size() == 4);
  REQUIRE(h.agent->release(v->lease.id).ok());
  check_index(*h.model.current());

  // A function that goes and comes back (positions move: the index is made anew).
  const PciAddress gone =
      pool_members(*h.model.current()->book->pool("cx6"), *h.model.current()).back().view->device.address;
  REQUIRE(h.sim->hot_remove(gone).ok());
  REQUIRE(h.agent->update_devices(std::vector<PciAddress>{gone}).ok());
  check_index(*h.model.current());
  CHECK(pool_members(*h.model.current()->book->pool("cx6"), *h.model.current()).size() == 7);
  REQUIRE(h.sim->hot_add(gone).ok());
  REQUIRE(h.agent->update_devices(std::vector<PciAddress>{gone}).ok());
  check_index(*h.model.current());
  CHECK(pool_members(*h.model.current()->book->pool("cx6"), *h.model.current()).size() == 8);

  // The PF's netdev renamed: its VFs leave the pool that named it, though none of them changed.
  const DeviceView* pf = nullptr;
  for (const auto& d : h.model.current()->devices)
    if (d.device.netdevs == std::vector<std::string>{"ens2f0"}) pf = &d;
  REQUIRE(pf);
  const PciAddress pfa = pf->device.address;
  rename_netdev(h, pfa, "ens2f0", "ens2f0np0");
  REQUIRE(h.agent->update_devices(std::vector<PciAddress>{pfa}).ok());
  check_index(*h.model.current());
  CHECK(pool_members(*h.model.current()->book->pool("x710"), *h.model.current()).empty());

  // A pool replaced: the index follows the new selectors.
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0np0"}), true).ok());
  check_index(*h.model.current());
  CHECK(pool_members(*h.model.current()->book->pool("x710"), *h.model.current()).size() == 4);
}

TEST_CASE("leases: a function reset the kernel refuses (ENOTTY) is in the release's answer and event") {
  Host h;
  EventLog events;
  h.agent->set_event_log(&events);
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto a = alloc(h, from("x710"));
  REQUIRE(a.ok());
  const PciAddress vf = a->lease.address;
  // Every reset method of the VF disabled: writing `reset` answers ENOTTY.
  REQUIRE(h.sim->write_attr("bus/pci/devices/" + vf.to_string() + "/reset_method", "\n").ok());
  const size_t resets = h.sim->reset_count(vf);
  const uint64_t seen = events.last_id();
  auto r = h.agent->release(a->lease.id);
  REQUIRE(r.ok());
  CHECK(r->reset == "failed");
  CHECK(r->reset_error.find("no reset method worked") != std::string::npos);
  CHECK(r->reset_error.find(vf.to_string()) != std::string::npos);
  CHECK(h.sim->reset_count(vf) == resets);
  // The release went on: the VF is back on iavf and free.
  CHECK(h.dev(vf)->device.driver == std::string("iavf"));
  CHECK_FALSE(h.dev(vf)->lease);
  auto batch = events.wait_after(seen, std::chrono::milliseconds(0));
  auto ev =
      std::find_if(batch.events.begin(), batch.events.end(), [](const auto& e) { return e->type == "lease.released"; });
  REQUIRE(ev != batch.events.end());
  CHECK((*ev)->data["reset"] == "failed");
  CHECK((*ev)->data["reset_error"].get<std::string>().find("no reset method worked") != std::string::npos);
}

TEST_CASE("leases: pack onto the busiest PF, spread onto the idlest, NUMA node honoured") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("nics", {"ens2f0", "ens3f0"})).ok());
  auto first = alloc(h, from("nics"));
  REQUIRE(first.ok());
  CHECK(first->lease.address.to_string() == "0000:3b:02.0");  // lowest address on a tie
  auto packed = alloc(h, from("nics"));
  REQUIRE(packed.ok());
  CHECK(packed->lease.address.to_string() == "0000:3b:02.1");
  auto spread = from("nics");
  spread.policy = Policy::spread;
  auto s1 = alloc(h, spread);
  REQUIRE(s1.ok());
  CHECK(h.dev(s1->lease.address)->device.physfn == kCx6);
  auto numa = from("nics");
  numa.numa_node = 0;
  auto n0 = alloc(h, numa);
  REQUIRE(n0.ok());
  CHECK(h.dev(n0->lease.address)->device.numa_node == 0);
  numa.numa_node = 7;
  auto none = alloc(h, numa);
  CHECK(none.error().code == ErrorCode::conflict);
  CHECK(none.error().message.find("NUMA node 7") != std::string::npos);
}

TEST_CASE("leases: idempotency keys return the same lease, and refuse a different request") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto req = from("x710");
  req.idempotency_key = "k-1";
  auto a = alloc(h, req);
  auto b = alloc(h, req);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(b->lease.id == a->lease.id);
  CHECK_FALSE(b->created);
  CHECK(h.model.current()->book->leases.size() == 1);
  req.consumer_name = "someone-else";
  auto c = alloc(h, req);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().field == "Idempotency-Key");
}

TEST_CASE("leases: a vfio lease takes its whole IOMMU group, and gives it back whole") {
  Host h;
  // The GPU and its audio function share a group: a pool of both hands them out together.
  PoolSpec gpus;
  gpus.name = "gpus";
  gpus.selectors.device_ids = {0x2204, 0x1aef};
  gpus.device_type = DeviceType::any;
  REQUIRE(h.agent->create_pool(gpus).ok());
  auto a = alloc(h, from("gpus"));
  REQUIRE(a.ok());
  const Lease& l = a->lease;
  REQUIRE(l.group_members.size() == 1);
  const PciAddress other = l.address == kGpu ? kAudio : kGpu;
  CHECK(l.group_members[0].address == other);
  CHECK(h.dev(kGpu)->device.driver == std::string("vfio-pci"));
  CHECK(h.dev(kAudio)->device.driver == std::string("vfio-pci"));
  CHECK(h.dev(kGpu)->lease == l.id);
  CHECK(h.dev(kAudio)->lease == l.id);
  // Nothing of the group is left to lease, by pool or by address.
  auto none = alloc(h, from("gpus"));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("2 leased") != std::string::npos);
  AllocationRequest by_addr = from("gpus");
  by_addr.address = other;
  CHECK(alloc(h, by_addr).error().message.find("leased already") != std::string::npos);
  // A restarted agent still knows both are leased.
  h.start();
  CHECK(h.dev(other)->lease == l.id);
  const size_t gpu_resets = h.sim->reset_count(kGpu), audio_resets = h.sim->reset_count(kAudio);
  auto r = h.agent->release(l.id);
  REQUIRE(r.ok());
  CHECK(r->reset == "unavailable");  // neither function has a `reset` attribute in this profile
  CHECK(h.dev(kGpu)->device.driver == std::string("nouveau"));
  CHECK(h.dev(kAudio)->device.driver == std::string("snd_hda_intel"));
  CHECK_FALSE(h.dev(kGpu)->lease);
  CHECK_FALSE(h.dev(kAudio)->lease);
  CHECK(h.sim->reset_count(kGpu) == gpu_resets);
  CHECK(h.sim->reset_count(kAudio) == audio_resets);
}

TEST_CASE("leases: a group member in no pool goes along only when no host driver has it") {
  Host h;
  PoolSpec gpu;
  gpu.name = "gpu";
  gpu.selectors.addresses = {kGpu};
  gpu.device_type = DeviceType::any;
  REQUIRE(h.agent->create_pool(gpu).ok());
  auto refused = alloc(h, from("gpu"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("no free device") != std::string::npos);  // the GPU is unhealthy
  AllocationRequest r = from("gpu");
  r.address = kGpu;
  CHECK(alloc(h, r).error().message.find("0000:87:00.1 (snd_hda_intel)") != std::string::npos);
  REQUIRE(h.agent->set_driver(kAudio, {std::string("vfio-pci"), false, false}).ok());
  auto a = alloc(h, from("gpu"));
  REQUIRE(a.ok());
  REQUIRE(a->lease.group_members.size() == 1);
  CHECK(a->lease.group_members[0].address == kAudio);
  CHECK(h.dev(kAudio)->lease == a->lease.id);
  REQUIRE(h.agent->release(a->lease.id).ok());
  CHECK(h.dev(kAudio)->device.driver == std::string("vfio-pci"));  // where it was before the lease
  CHECK_FALSE(h.dev(kAudio)->lease);
  CHECK(h.dev(kGpu)->device.driver == std::string("nouveau"));
}

TEST_CASE("leases: VFs in their PF's IOMMU group (no ACS) are refused, naming the PF and its driver") {
  Host h("igb");
  const PciAddress k82576 = *PciAddress::parse("0000:01:00.0");
  REQUIRE(h.agent->create_pool(pool("igbvfs", {"enp1s0"})).ok());
  const auto before = h.state();
  auto a = alloc(h, from("igbvfs"));
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().code == ErrorCode::conflict);
  CHECK(a.error().message.find("1 unhealthy") == std::string::npos);  // both VFs are
  CHECK(a.error().message.find("2 unhealthy") != std::string::npos);
  // By address: the reason names the group, the PF on igb, and why the group goes whole.
  AllocationRequest r = from("igbvfs");
  r.address = h.vfs_of(k82576)[0]->device.address;
  auto e = alloc(h, r);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find("is not viable") != std::string::npos);
  CHECK(e.error().message.find("0000:01:00.0 (igb)") != std::string::npos);
  CHECK(e.error().message.find("VFIO hands a group to one user whole") != std::string::npos);
  CHECK(h.state() == before);
  // The pool shows why: each member unhealthy with that reason.
  auto members = pool_members(*h.model.current()->book->pool("igbvfs"), *h.model.current());
  REQUIRE(members.size() == 2);
  for (const auto& m : members) {
    CHECK_FALSE(m.healthy);
    CHECK(m.reason.find("0000:01:00.0 (igb)") != std::string::npos);
  }
  // In netdev mode the group does not matter: the VF stays on igbvf, nothing goes to VFIO.
  PoolSpec net = pool("igbnet", {"enp1s0"}, PoolMode::netdev);
  REQUIRE(h.agent->delete_pool("igbvfs").ok());
  REQUIRE(h.agent->create_pool(net).ok());
  auto n = alloc(h, from("igbnet"));
  REQUIRE(n.ok());
  CHECK(n->lease.group_members.empty());
}

TEST_CASE("leases: interlocks") {
  Host h;
  SUBCASE("a PF with VFs cannot be leased whole, nor a VF of a PF leased whole") {
    AllocationRequest r = from("x");
    r.pool.reset();
    r.address = kX710;
    auto pf = alloc(h, r);
    CHECK(pf.error().code == ErrorCode::conflict);
    CHECK(pf.error().message.find("VFs enabled") != std::string::npos);
    REQUIRE(h.agent->set_num_vfs(kX710, 0).ok());
    auto whole = alloc(h, r);
    REQUIRE(whole.ok());
    CHECK(h.agent->set_num_vfs(kX710, 2).error().code == ErrorCode::conflict);
  }
  SUBCASE("a device whose IOMMU group is not viable is refused with the offending member") {
    AllocationRequest r = from("x");
    r.pool.reset();
    r.address = kGpu;
    auto gpu = alloc(h, r);
    REQUIRE_FALSE(gpu.ok());
    CHECK(gpu.error().code == ErrorCode::conflict);
    CHECK(gpu.error().message.find(kAudio.to_string()) != std::string::npos);
  }
  SUBCASE("num_vfs and driver changes are refused while VFs are leased") {
    REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"}, PoolMode::netdev)).ok());
    auto a = alloc(h, from("x710"));
    REQUIRE(a.ok());
    CHECK(h.dev(a->lease.address)->device.driver == std::string("iavf"));  // netdev mode keeps it
    auto n = h.agent->set_num_vfs(kX710, 0);
    CHECK(n.error().code == ErrorCode::conflict);
    CHECK(n.error().message.find("leased VFs") != std::string::npos);
    CHECK(h.agent->set_driver(a->lease.address, {std::string("vfio-pci"), false, false}).error().code ==
          ErrorCode::conflict);
    auto twice = from("x710");
    twice.pool.reset();
    twice.address = a->lease.address;
    CHECK(alloc(h, twice).error().message.find("leased already") != std::string::npos);
  }
}

TEST_CASE("leases: a fault at any step of an allocation leaves the host as it was and no lease") {
  auto setup = [](Host& h) { REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok()); };
  fail_every_step(
      "dual-socket", setup,
      [](Host& h) -> Result<void> {
        auto r = from("x710");
        r.vf_config = config({{"mac", "52:54:00:aa:bb:02"}, {"vlan", 7}, {"spoofchk", false}});
        auto a = alloc(h, r);
        if (!a) {
          CHECK(h.model.current()->book->leases.empty());
          CHECK(h.store->all("lease")->empty());
          return std::move(a).error();
        }
        return ok();
      },
      {EBUSY, EIO, EINVAL, ERANGE}, /*recreates_vfs=*/true);  // a rebound VF's netdev is registered afresh
}

TEST_CASE("leases: a fault at any step of a whole-group allocation leaves every member as it was") {
  auto setup = [](Host& h) {
    PoolSpec gpus;
    gpus.name = "gpus";
    gpus.selectors.device_ids = {0x2204, 0x1aef};
    gpus.device_type = DeviceType::any;
    REQUIRE(h.agent->create_pool(gpus).ok());
  };
  fail_every_step("dual-socket", setup, [](Host& h) -> Result<void> {
    auto a = alloc(h, from("gpus"));
    if (!a) {
      CHECK(h.model.current()->book->leases.empty());
      CHECK_FALSE(h.dev(kAudio)->lease);
      return std::move(a).error();
    }
    CHECK(a->lease.group_members.size() == 1);
    return ok();
  });
}

TEST_CASE("leases: a release gives the VF back as it was found, even after the consumer changed it") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  REQUIRE(h.agent->create_pool(pool("e810", {"ens1f0#0"})).ok());
  auto members = pool_members(*h.model.current()->book->pool("e810"), *h.model.current());
  REQUIRE(members.size() == 1);
  const PciAddress addr = members[0].view->device.address;
  // What the operator left on the VF before any lease: it is what comes back.
  const VfConfig found = config({{"mac", "52:54:00:00:00:10"}, {"vlan", 5}, {"spoofchk", false}});
  REQUIRE(h.agent->set_vf_config(addr, found).ok());
  auto req = from("e810");
  req.vf_config = config({{"mac", "52:54:00:aa:bb:01"}, {"vlan", 100}, {"qos", 2}, {"trust", true}});
  auto a = alloc(h, req);
  REQUIRE(a.ok());
  REQUIRE(a->lease.found_vf_config);
  CHECK(a->lease.found_vf_config->mac->to_string() == "52:54:00:00:00:10");
  CHECK(a->lease.found_vf_config->vlan == 5);
  CHECK(a->lease.found_vf_config->spoofchk == false);
  // The consumer sets its own MAC, as a DPDK application does through the VF's mailbox.
  VfConfig own;
  own.mac = MacAddress::parse("02:00:00:00:00:99").value();
  REQUIRE(h.sim->set_vf("ens1f0", 0, own).ok());

  auto released = h.agent->release(a->lease.id);
  REQUIRE(released.ok());
  const DeviceView* v = h.dev(addr);
  CHECK(v->device.driver == std::string("iavf"));
  CHECK(v->vf_config->mac->to_string() == "52:54:00:00:00:10");
  CHECK(v->vf_config->vlan == 5);
  CHECK(v->vf_config->qos == 0);
  CHECK(v->vf_config->spoofchk == false);
  CHECK(v->vf_config->trust == false);
  REQUIRE(released->release_report);
  const ReleaseReport& r = *released->release_report;
  CHECK(r.reset_to == "found");
  CHECK(r.clean());
  auto find = [&](const std::string& name) -> const ReleaseReport::Item* {
    for (const auto& i : r.items)
      if (i.attribute == name) return &i;
    return nullptr;
  };
  REQUIRE(find("mac"));
  CHECK(find("mac")->status == "restored");
  CHECK(find("mac")->before == "02:00:00:00:00:99");
  CHECK(find("mac")->wanted == "52:54:00:00:00:10");
  CHECK(find("mac")->now == "52:54:00:00:00:10");
  CHECK(find("vlan")->status == "restored");
  CHECK(find("trust")->status == "restored");
  CHECK(find("spoofchk")->status == "unchanged");
  REQUIRE(find("driver"));
  CHECK(find("driver")->status == "restored");
  CHECK(find("driver")->before == "vfio-pci");
  CHECK(find("driver")->now == "iavf");
  // The operator's attributes are still the VF's desired state: after a reboot they come back.
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  CHECK(h.dev(addr)->vf_config->mac->to_string() == "52:54:00:00:00:10");
}

TEST_CASE("leases: a pool with reset defaults gives back a clean VF, whatever it was found with") {
  Host h;
  PoolSpec p = pool("x710", {"ens2f0#0"});
  p.reset = ResetPolicy::defaults;
  REQUIRE(h.agent->create_pool(p).ok());
  const PciAddress addr =
      pool_members(*h.model.current()->book->pool("x710"), *h.model.current())[0].view->device.address;
  REQUIRE(h.agent->set_vf_config(addr, config({{"mac", "52:54:00:00:00:10"}, {"trust", true}})).ok());
  auto a = alloc(h, from("x710"));
  REQUIRE(a.ok());
  CHECK_FALSE(a->lease.found_vf_config);
  auto released = h.agent->release(a->lease.id);
  REQUIRE(released.ok());
  CHECK(*h.dev(addr)->vf_config == clean_vf_config());
  REQUIRE(released->release_report);
  CHECK(released->release_report->reset_to == "defaults");
  CHECK(released->release_report->clean());
}

TEST_CASE("leases: a value the driver refuses to take back is in the release report; the release completes") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0#0"})).ok());
  const PciAddress addr =
      pool_members(*h.model.current()->book->pool("x710"), *h.model.current())[0].view->device.address;
  REQUIRE(h.agent->set_vf_config(addr, config({{"mac", "52:54:00:00:00:10"}})).ok());
  auto req = from("x710");
  req.vf_config = config({{"mac", "52:54:00:aa:bb:01"}, {"trust", true}});
  auto a = alloc(h, req);
  REQUIRE(a.ok());
  // The first change of the release is the MAC's: the driver refuses it.
  h.faults->reset_calls();
  h.faults->fail_at(1, EINVAL, "the PF refuses the MAC");
  auto released = h.agent->release(a->lease.id);
  REQUIRE(released.ok());
  CHECK_FALSE(h.model.current()->book->lease(a->lease.id));
  CHECK(h.dev(addr)->device.driver == std::string("iavf"));
  CHECK(h.dev(addr)->vf_config->trust == false);  // the other attributes were given back
  REQUIRE(released->release_report);
  const ReleaseReport& r = *released->release_report;
  CHECK_FALSE(r.clean());
  const ReleaseReport::Item* mac = nullptr;
  for (const auto& i : r.items)
    if (i.attribute == "mac") mac = &i;
  REQUIRE(mac);
  CHECK(mac->status == "differs");
  CHECK(mac->now == "52:54:00:aa:bb:01");
  CHECK(mac->wanted == "52:54:00:00:00:10");
  CHECK(mac->error.find("the PF refuses the MAC") != std::string::npos);
}

TEST_CASE("leases: a release that fails keeps the lease, unhealthy, and a retry finishes it") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto r = from("x710");
  r.vf_config = config({{"vlan", 9}, {"trust", true}});
  auto a = alloc(h, r);
  REQUIRE(a.ok());
  h.faults->reset_calls();
  h.faults->fail_at(2, EIO);
  auto failed = h.agent->release(a->lease.id);
  REQUIRE_FALSE(failed.ok());
  auto s = h.model.current();
  const Lease* l = s->book->lease(a->lease.id);
  REQUIRE(l);
  CHECK(l->state == LeaseState::releasing);
  auto members = pool_members(*s->book->pool("x710"), *s);
  CHECK_FALSE(members[0].healthy);
  CHECK(members[0].reason.find("did not finish") != std::string::npos);
  REQUIRE(h.agent->release(a->lease.id).ok());
  CHECK(*h.dev(a->lease.address)->vf_config == clean_vf_config());
  CHECK(h.dev(a->lease.address)->device.driver == std::string("iavf"));
}

TEST_CASE("leases: kill -9 before any step of an allocation or a release, then a restart") {
  auto setup = [](Host& h) { REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok()); };
  SUBCASE("allocation: undone, no lease") {
    crash_at_every_step(
        [](Agent& a) {
          auto r = from("x710");
          r.vf_config = config({{"mac", "52:54:00:aa:bb:03"}, {"vlan", 5}});
          return a.allocate(r).ok() ? Result<void>(ok()) : Error::make(ErrorCode::internal, "failed");
        },
        [](Host& h) {
          auto s = h.model.current();
          REQUIRE(s->book->leases.size() == 1);
          const Lease& l = s->book->leases.begin()->second;
          CHECK(l.state == LeaseState::active);
          CHECK(h.dev(l.address)->device.driver == std::string("vfio-pci"));
        },
        setup, /*rebinds_netdevs=*/true);
  }
  SUBCASE("release: finished at start") {
    for (int n = 1; n < 40; ++n) {
      CAPTURE(n);
      Host h;
      setup(h);
      auto r = from("x710");
      r.vf_config = config({{"mac", "52:54:00:aa:bb:04"}, {"vlan", 6}, {"trust", true}});
      auto a = alloc(h, r);
      REQUIRE(a.ok());
      const PciAddress addr = a->lease.address;
      const std::string id = a->lease.id;
      const int st = run_dying(h, n, [&](Agent& agent) { return agent.release(id); });
      auto report = h.agent->reconcile();
      CHECK(report.drift.empty());
      CHECK(h.store->operations_in_state(OperationState::pending)->empty());
      CHECK(h.model.current()->book->leases.empty());
      CHECK(*h.dev(addr)->vf_config == clean_vf_config());
      CHECK(h.dev(addr)->device.driver == std::string("iavf"));
      if (WEXITSTATUS(st) != 9) {
        CHECK(WEXITSTATUS(st) == 0);
        break;
      }
    }
  }
}

TEST_CASE("leases survive a reboot: VFs recreated, the leased VF bound to vfio-pci with its attributes") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 4).ok());
  REQUIRE(h.agent->create_pool(pool("e810", {"ens1f0"})).ok());
  auto r = from("e810");
  r.vf_config = config({{"mac", "52:54:00:aa:bb:05"}, {"vlan", 300}});
  auto a = alloc(h, r);
  REQUIRE(a.ok());
  REQUIRE(h.sim->simulate_reboot().ok());
  h.start();
  CHECK_FALSE(h.dev(a->lease.address));
  auto report = h.agent->reconcile();
  CHECK(report.drift.empty());
  const DeviceView* v = h.dev(a->lease.address);
  REQUIRE(v);
  CHECK(v->device.driver == std::string("vfio-pci"));
  CHECK(v->lease == a->lease.id);
  CHECK(v->vf_config->mac->to_string() == "52:54:00:aa:bb:05");
  CHECK(v->vf_config->vlan == 300);
  // Nothing more to do the second time.
  h.faults->reset_calls();
  h.agent->reconcile();
  CHECK(h.faults->calls() == 0);
}

TEST_CASE("a slow libvirt call holds only its own lease: other changes go on, that lease is busy") {
  Host h;
  REQUIRE(h.agent->create_pool(pool("x710", {"ens2f0"})).ok());
  auto first = alloc(h, from("x710"));
  REQUIRE(first.ok());
  const std::string id = first->lease.id;
  REQUIRE(h.agent->set_attachment(id, Attachment{"vm1", true, true}, nullptr).ok());

  // A detach that waits (as a live detach waits for the guest) until the test lets it go.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, go = false;
  h.agent->set_detacher([&](const Lease&) -> Result<void> {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return go; });
    return ok();
  });
  std::thread releaser([&] { CHECK(h.agent->release(id).ok()); });
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  // Meanwhile: another lease is made and released, and this one is refused as busy.
  auto second = alloc(h, from("x710", "vm2"));
  CHECK(second.ok());
  if (second.ok()) CHECK(h.agent->release(second->lease.id).ok());
  auto again = h.agent->release(id);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::conflict);
  CHECK(again.error().message.find("being attached or detached") != std::string::npos);
  auto attach = h.agent->set_attachment(id, std::nullopt, nullptr);
  REQUIRE_FALSE(attach.ok());
  CHECK(attach.error().code == ErrorCode::conflict);
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  releaser.join();
  CHECK(h.model.current()->book->leases.empty());
}

TEST_CASE("a lease's stored record holds every field, keys sorted, and reads back the same") {
  Lease l;
  l.id = "0123456789abcdef0123456789abcdef";
  l.address = *PciAddress::parse("0000:86:00.2");
  l.consumer_kind = "vm";
  l.consumer_name = "web \"1\"\n";  // escaped
  l.state = LeaseState::active;
  l.created_at = "2026-12-02T10:00:00Z";
  l.mode = PoolMode::netdev;
  SUBCASE("without the optional fields") {}
  SUBCASE("with all of them") {
    l.pool = "cx6";
    l.vf_config = config({{"mac", "52:54:00:00:00:01"}, {"vlan", 7}});
    l.idempotency_key = "k-1";
    l.previous_driver = "mlx5_core";
    l.attached = Attachment{"vm1", true, false};
    l.error = "the reset failed";
    l.group_members = {{*PciAddress::parse("0000:86:00.3"), std::string("mlx5_core")},
                       {*PciAddress::parse("0000:86:00.4"), std::nullopt}};
  }
  // Every field, keys sorted, as nlohmann::json would print the object.
  nlohmann::json expected = {{"address", "0000:86:00.2"},
                             {"attached_to", nullptr},
                             {"consumer", {{"kind", "vm"}, {"name", "web \"1\"\n"}}},
                             {"created_at", "2026-12-02T10:00:00Z"},
                             {"id", l.id},
                             {"idempotency_key", nullptr},
                             {"mode", "netdev"},
                             {"pool", nullptr},
                             {"previous_driver", nullptr},
                             {"state", "active"},
                             {"vf_config", nullptr}};
  if (l.pool) {
    expected["pool"] = "cx6";
    expected["vf_config"] = {{"mac", "52:54:00:00:00:01"}, {"vlan", 7}};
    expected["idempotency_key"] = "k-1";
    expected["previous_driver"] = "mlx5_core";
    expected["attached_to"] = {{"domain", "vm1"}, {"live", true}, {"config", false}};
    expected["error"] = "the reset failed";
    expected["group_members"] = {{{"address", "0000:86:00.3"}, {"previous_driver", "mlx5_core"}},
                                 {{"address", "0000:86:00.4"}, {"previous_driver", nullptr}}};
  }
  const std::string record = l.record();
  CHECK(record == expected.dump());
  auto back = Lease::from_json(nlohmann::json::parse(record));
  REQUIRE(back.ok());
  CHECK(back->record() == record);
  CHECK(back->group_members == l.group_members);
}

TEST_CASE("leases: a netdev lease's MTU is set before it is handed out and given back at release") {
  Host h;
  REQUIRE(h.agent->set_num_vfs(kE810, 2).ok());
  REQUIRE(h.agent->set_mtu(kE810, 9000).ok());
  REQUIRE(h.agent->create_pool(pool("net", {"ens1f0#0"}, PoolMode::netdev)).ok());
  REQUIRE(h.agent->create_pool(pool("vfio", {"ens1f0#1"})).ok());
  auto req = from("net");
  req.vf_config = config({{"mtu", 9000}});
  auto a = alloc(h, req);
  REQUIRE(a.ok());
  CHECK(h.dev(a->lease.address)->mtu == 9000u);
  REQUIRE(a->lease.found_vf_config);
  CHECK(a->lease.found_vf_config->mtu == 1500u);
  auto released = h.agent->release(a->lease.id);
  REQUIRE(released.ok());
  CHECK(h.dev(a->lease.address)->mtu == 1500u);
  const ReleaseReport::Item* mtu = nullptr;
  for (const auto& i : released->release_report->items)
    if (i.attribute == "mtu") mtu = &i;
  REQUIRE(mtu);
  CHECK(mtu->status == "restored");
  CHECK(mtu->before == 9000);
  CHECK(mtu->now == 1500);
  CHECK(released->release_report->clean());
  // Above the PF's, or on a vfio lease (the VF's netdev goes with vfio-pci): refused, nothing leased.
  req.vf_config = config({{"mtu", 9600}});
  auto above = alloc(h, req);
  REQUIRE_FALSE(above.ok());
  CHECK(above.error().field == "vf_config.mtu");
  auto vreq = from("vfio");
  vreq.vf_config = config({{"mtu", 9000}});
  auto vfio = alloc(h, vreq);
  REQUIRE_FALSE(vfio.ok());
  CHECK(vfio.error().code == ErrorCode::invalid);
  CHECK(vfio.error().field == "vf_config.mtu");
  CHECK(h.model.current()->book->leases.empty());
}

TEST_CASE("pools: a pool by PF address keeps the same VFs after its PF's netdev is renamed") {
  Host h;
  PoolSpec p;
  p.name = "x710";
  p.selectors.pf_addresses.push_back(*parse_pf_address_range(kX710.to_string() + "#0-1"));
  REQUIRE(h.agent->create_pool(p).ok());
  auto members = [&] { return member_addresses(h, "x710"); };
  const auto before = members();
  REQUIRE(before.size() == 2);
  auto lease = alloc(h, from("x710"));
  REQUIRE(lease.ok());
  // ens2f0 becomes ens2f0np0, as a distribution's update renamed such netdevs.
  rename_netdev(h, kX710, "ens2f0", "ens2f0np0");
  REQUIRE(h.agent->update_devices(std::vector<PciAddress>{kX710}).ok());
  REQUIRE(h.dev(kX710)->device.netdevs == std::vector<std::string>{"ens2f0np0"});
  CHECK(members() == before);
  CHECK(h.agent->release(lease->lease.id).ok());
}

TEST_CASE("pools: pf_names match a PF's altnames, so a pool by altname survives the netdev's rename") {
  Host h;
  REQUIRE(h.sim->add_altname("ens2f0", "enp59s0f0np0").ok());
  REQUIRE(h.agent->refresh().ok());
  CHECK(h.dev(kX710)->altnames == std::vector<std::string>{"enp59s0f0np0"});
  REQUIRE(h.agent->create_pool(pool("x710", {"enp59s0f0np0#0-2"})).ok());
  auto members = [&] { return member_addresses(h, "x710"); };
  const auto before = members();
  CHECK(before.size() == 3);
  // A pool naming the PF by its netdev overlaps it: the same VFs.
  auto overlap = h.agent->create_pool(pool("other", {"ens2f0#2"}));
  REQUIRE_FALSE(overlap.ok());
  CHECK(overlap.error().code == ErrorCode::conflict);
  rename_netdev(h, kX710, "ens2f0", "ens2f0np0");
  REQUIRE(h.agent->update_devices(std::vector<PciAddress>{kX710}).ok());
  CHECK(members() == before);
}

TEST_CASE("pools: link_types and rdma look at the PF, so a leased VF stays in its pool") {
  Host h;
  // ens3f0's PF becomes an InfiniBand port with RDMA devices (as mlx5_core shows one).
  const fs::path pf = fs::canonical(h.sys / "bus/pci/devices" / kCx6.to_string());
  { std::ofstream(pf / "net/ens3f0/type") << "32\n"; }
  fs::create_directories(pf / "infiniband/mlx5_0");
  REQUIRE(h.agent->refresh().ok());
  CHECK(h.dev(kCx6)->link_type == std::string("infiniband"));
  CHECK(h.dev(kCx6)->rdma);
  PoolSpec ib;
  ib.name = "ib";
  ib.selectors.link_types = {"infiniband"};
  ib.selectors.rdma = true;
  ib.mode = PoolMode::vfio;
  REQUIRE(h.agent->create_pool(ib).ok());
  auto count = [&](const char* name) {
    return pool_members(*h.model.current()->book->pool(name), *h.model.current()).size();
  };
  CHECK(count("ib") == 8);
  // The Ethernet VFs of the other PFs: a pool without RDMA takes none of ens3f0's.
  PoolSpec eth;
  eth.name = "eth";
  eth.selectors.link_types = {"ether"};
  eth.selectors.rdma = false;
  eth.selectors.pf_names = {*parse_pf_range("ens2f0")};
  REQUIRE(h.agent->create_pool(eth).ok());
  CHECK(count("eth") == 4);
  auto a = alloc(h, from("ib"));
  REQUIRE(a.ok());
  CHECK(h.dev(a->lease.address)->device.driver == std::string("vfio-pci"));
  CHECK(count("ib") == 8);
  REQUIRE(h.agent->release(a->lease.id).ok());
}
