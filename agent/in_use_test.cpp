// Sim tier: a device in use — held open through VFIO by a process (SimKernel::hold_vfio, as QEMU
// holds an assigned device's /dev/vfio/<group>) or used by a running domain (the in-use check the
// daemon wires to libvirt). Every change that would unbind it from vfio-pci, reset it or hand it
// out again is refused at once with a conflict naming the user; the kernel's unbind, which would
// wait for the user without a bound, is never reached (the simulator counts unbinds that found
// the device held); an error while asking refuses too; the host and the leases stay as they were;
// and the same changes go through once the user lets go.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "agent/applier.h"
#include "agent/pool.h"
#include "agent/sim_host_test.h"
#include "pci/paths.h"

using namespace sriovd;
using namespace sriovd::agent;
using namespace sriovd::agent::testing;
using namespace std::chrono_literals;

namespace {

const PciAddress kVf0 = *PciAddress::parse("0000:3b:02.0");  // the X710's VFs (ens2f0), on iavf
const PciAddress kVf1 = *PciAddress::parse("0000:3b:02.1");
constexpr pid_t kQemu = 4242;

PoolSpec x710_pool() {
  PoolSpec p;
  p.name = "x710";
  p.selectors.pf_names.push_back(*parse_pf_range("ens2f0"));
  return p;
}

AllocationRequest by_address(const PciAddress& a) {
  AllocationRequest r;
  r.address = a;
  r.consumer_kind = "vm";
  r.consumer_name = "vm1";
  return r;
}

// `r` failed quickly with `code` and a message containing `needle`.
template <class R>
void refused(const R& r, std::chrono::steady_clock::duration took, ErrorCode code, const std::string& needle) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == code);
  CHECK_MESSAGE(r.error().message.find(needle) != std::string::npos, r.error().message);
  CHECK(took < 1s);
}

struct Clock {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration took() const { return std::chrono::steady_clock::now() - t0; }
};

std::optional<std::string> driver(Host& h, const PciAddress& a) { return h.dev(a)->device.driver; }

}  // namespace

TEST_CASE("a leased VF held open through VFIO: release refused naming the process, then released") {
  Host h;
  // A wrong daemon that reached the unbind would wait this long, then fail: the test ends.
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  REQUIRE(h.agent->create_pool(x710_pool()).ok());
  auto a = h.agent->allocate(by_address(kVf0));
  REQUIRE(a.ok());
  const std::string id = a->lease.id;
  REQUIRE(driver(h, kVf0) == std::string("vfio-pci"));
  REQUIRE(h.sim->hold_vfio(kVf0, kQemu, "qemu-system-x86").ok());
  auto held = h.sim->vfio_holders(kVf0);
  REQUIRE(held.ok());
  REQUIRE(held->size() == 1);
  const std::string node = (*held)[0].path;
  CHECK(node.rfind("/dev/vfio/", 0) == 0);

  const size_t resets = h.sim->reset_count(kVf0);
  auto before = h.state();
  Clock c;
  auto r = h.agent->release(id);
  refused(r, c.took(), ErrorCode::conflict, "qemu-system-x86 (pid 4242)");
  CHECK(r.error().message.find(node) != std::string::npos);
  CHECK(r.error().message.find("release lease " + id) != std::string::npos);
  // Nothing changed: no reset, no unbind attempted, the lease active and the VF on vfio-pci.
  CHECK(h.sim->vfio_unbinds_blocked(kVf0) == 0);
  CHECK(h.sim->reset_count(kVf0) == resets);
  CHECK(driver(h, kVf0) == std::string("vfio-pci"));
  const Lease* l = h.model.current()->book->lease(id);
  REQUIRE(l);
  CHECK(l->state == LeaseState::active);
  CHECK(l->error.empty());
  auto after = h.state();
  CHECK_MESSAGE(before == after, diff(before, after));
  CHECK(h.store->operations_in_state(OperationState::pending)->empty());

  // A second lease of it is refused as leased already; the release is refused again.
  refused(h.agent->allocate(by_address(kVf0)), c.took() - c.took(), ErrorCode::conflict, "leased already");
  CHECK_FALSE(h.agent->release(id).ok());

  // The process lets go: the release goes through, with its reset and its driver back.
  REQUIRE(h.sim->release_vfio(kVf0, kQemu).ok());
  auto done = h.agent->release(id);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(h.sim->reset_count(kVf0) == resets + 1);
  CHECK(driver(h, kVf0) == std::string("iavf"));
  CHECK(h.sim->vfio_unbinds_blocked(kVf0) == 0);
  CHECK(h.model.current()->book->leases.empty());
}

TEST_CASE("a VF on vfio-pci held open outside sriovd: unbind, group unbind, force, VF count and lease refused") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  REQUIRE(h.agent->create_pool(x710_pool()).ok());
  REQUIRE(h.agent->set_driver(kVf1, DriverRequest{std::string("vfio-pci")}).ok());
  REQUIRE(h.sim->hold_vfio(kVf1, kQemu, "qemu-system-x86").ok());
  auto before = h.state();
  const PciAddress pf = *h.dev(kVf1)->device.physfn;

  Clock c;
  refused(h.agent->set_driver(kVf1, DriverRequest{std::string("host")}), c.took(), ErrorCode::conflict,
          "qemu-system-x86 (pid 4242)");
  // force is for netdevs the host uses; it never lets an unbind wait on a VM.
  c = {};
  refused(h.agent->set_driver(kVf1, DriverRequest{std::nullopt, false, true}), c.took(), ErrorCode::conflict,
          "unbind " + kVf1.to_string() + " from vfio-pci");
  c = {};
  refused(h.agent->set_driver(kVf1, DriverRequest{std::string("host"), true, true}), c.took(), ErrorCode::conflict,
          "qemu-system-x86 (pid 4242)");
  // The VFs would go with the count: the refusal names who holds the one on vfio-pci.
  c = {};
  refused(h.agent->set_num_vfs(pf, 2), c.took(), ErrorCode::conflict, "qemu-system-x86 (pid 4242)");
  // On vfio-pci already, it looks free to the pool: a lease of it is refused, by address or
  // from the pool (which hands out another VF instead).
  c = {};
  refused(h.agent->allocate(by_address(kVf1)), c.took(), ErrorCode::conflict, "qemu-system-x86 (pid 4242)");
  AllocationRequest from_pool;
  from_pool.pool = "x710";
  from_pool.consumer_kind = "vm";
  from_pool.consumer_name = "vm2";
  from_pool.policy = Policy::pack;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto got = h.agent->allocate(from_pool);
    REQUIRE_MESSAGE(got.ok(), got.error().message);
    CHECK(got->lease.address != kVf1);
    ids.push_back(got->lease.id);
  }
  auto none = h.agent->allocate(from_pool);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::conflict);
  CHECK_MESSAGE(none.error().message.find("1 in use outside sriovd") != std::string::npos, none.error().message);
  for (const auto& id : ids) REQUIRE(h.agent->release(id).ok());

  CHECK(h.sim->vfio_unbinds_blocked(kVf1) == 0);
  // The other VFs were leased and released meanwhile: their netdevs came back afresh.
  auto after = without_vf_runtime(h.state());
  before = without_vf_runtime(before);
  CHECK_MESSAGE(before == after, diff(before, after));
  CHECK(h.store->operations_in_state(OperationState::pending)->empty());

  REQUIRE(h.sim->release_vfio(kVf1, kQemu).ok());
  REQUIRE(h.agent->set_driver(kVf1, DriverRequest{std::string("host")}).ok());
  CHECK(driver(h, kVf1) == std::string("iavf"));
  CHECK(h.agent->set_num_vfs(pf, 2).ok());
  CHECK(h.sim->vfio_unbinds_blocked(kVf1) == 0);
}

// What GET /v1/pools and the pool gauges show (Agent::members_now): the member on vfio-pci a
// process holds is not free but unhealthy, naming the holder, as allocation finds it.
TEST_CASE("a pool member held open outside sriovd is not counted free; a failed question marks it too") {
  Host h;
  REQUIRE(h.agent->create_pool(x710_pool()).ok());
  REQUIRE(h.agent->set_driver(kVf1, DriverRequest{std::string("vfio-pci")}).ok());
  auto counts = [&] {
    auto snap = h.model.current();
    const PoolSpec& pool = snap->book->pools.at(0);
    size_t free = 0;
    std::string reason;
    for (const auto& m : h.agent->members_now(pool, *snap)) {
      if (m.healthy && !m.lease) ++free;
      if (m.view->device.address == kVf1 && !m.healthy) reason = m.reason;
    }
    return std::pair{free, reason};
  };
  auto [free_before, none] = counts();
  CHECK(none.empty());
  // The pure listing of the snapshot agrees while nothing holds the VF.
  CHECK(free_before == pool_members(h.model.current()->book->pools.at(0), *h.model.current()).size());

  REQUIRE(h.sim->hold_vfio(kVf1, kQemu, "qemu-system-x86").ok());
  auto [free_held, why] = counts();
  CHECK(free_held == free_before - 1);
  CHECK_MESSAGE(why.find("in use outside sriovd: /dev/vfio/") != std::string::npos, why);
  CHECK_MESSAGE(why.find("qemu-system-x86 (pid 4242)") != std::string::npos, why);

  // Fail closed: when the kernel cannot say, the member is not offered as free either.
  h.faults->fail_vfio_holders(EACCES);
  auto [free_unknown, unknown] = counts();
  CHECK(free_unknown == free_before - 1);
  CHECK_MESSAGE(unknown.find("cannot tell whether it is held open through VFIO") != std::string::npos, unknown);
  h.faults->fail_vfio_holders(0);

  REQUIRE(h.sim->release_vfio(kVf1, kQemu).ok());
  CHECK(counts().first == free_before);
}

TEST_CASE("a PF on vfio-pci held by a VM: its VF count is not changed under it") {
  Host h;
  const PciAddress pf = *h.dev(kVf0)->device.physfn;
  REQUIRE(h.agent->set_num_vfs(pf, 0).ok());
  REQUIRE(h.agent->set_driver(pf, DriverRequest{std::string("vfio-pci")}).ok());
  // vfio-pci enables VFs of a PF it owns only with this module parameter (vfio_pci_sriov_configure).
  fs::create_directories(h.sys / "module/vfio_pci/parameters");
  std::ofstream(h.sys / "module/vfio_pci/parameters/enable_sriov") << "Y\n";
  REQUIRE(h.sim->hold_vfio(pf, kQemu, "qemu-system-x86").ok());
  auto before = h.state();
  Clock c;
  refused(h.agent->set_num_vfs(pf, 2), c.took(), ErrorCode::conflict, "qemu-system-x86 (pid 4242)");
  auto after = h.state();
  CHECK_MESSAGE(before == after, diff(before, after));
  // Asking for what it has already is no change, and passes.
  CHECK(h.agent->set_num_vfs(pf, 0).ok());

  REQUIRE(h.sim->release_vfio(pf, kQemu).ok());
  auto r = h.agent->set_num_vfs(pf, 2);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(h.dev(pf)->device.sriov->num_vfs == 2);
}

TEST_CASE("a running domain using the device: refusals name it; a failed question refuses (fail closed)") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  REQUIRE(h.agent->create_pool(x710_pool()).ok());
  auto a = h.agent->allocate(by_address(kVf0));
  REQUIRE(a.ok());
  const std::string id = a->lease.id;
  std::optional<Error> libvirt_says;
  h.agent->set_in_use_check([&](const PciAddress& addr) -> Result<void> {
    if (addr == kVf1) return Error::make(ErrorCode::conflict, kVf1.to_string() + " is in use by running domain(s) vm8");
    if (libvirt_says && addr == kVf0) return *libvirt_says;
    return ok();
  });
  // A VF on vfio-pci in a running domain's XML (put there by hand, no process seen holding it):
  // a lease of it and its unbind are refused naming the domain.
  REQUIRE(h.agent->set_driver(kVf1, DriverRequest{std::string("vfio-pci")}).ok());
  Clock c0;
  refused(h.agent->allocate(by_address(kVf1)), c0.took(), ErrorCode::conflict, "running domain(s) vm8");
  refused(h.agent->set_driver(kVf1, DriverRequest{std::string("host")}), c0.took(), ErrorCode::conflict,
          "running domain(s) vm8");
  CHECK(driver(h, kVf1) == std::string("vfio-pci"));

  libvirt_says = Error::make(ErrorCode::conflict, kVf0.to_string() + " is in use by running domain(s) vm7");
  Clock c;
  refused(h.agent->release(id), c.took(), ErrorCode::conflict, "running domain(s) vm7");
  CHECK(h.model.current()->book->lease(id)->state == LeaseState::active);

  // libvirt answered with an error: nobody can tell, so the release is refused, naming it.
  libvirt_says = Error::make(ErrorCode::io, "listing libvirt domains: internal error");
  c = {};
  refused(h.agent->release(id), c.took(), ErrorCode::unavailable, "listing libvirt domains: internal error");
  libvirt_says.reset();

  // The kernel cannot say who holds the VFIO group (e.g. /proc unreadable): refused too.
  h.faults->fail_vfio_holders(EACCES);
  c = {};
  auto blind = h.agent->release(id);
  refused(blind, c.took(), ErrorCode::conflict, "cannot tell whether " + kVf0.to_string() + " is held open");
  CHECK(blind.error().message.find("injected fault") != std::string::npos);
  refused(h.agent->set_driver(kVf0, DriverRequest{std::string("host")}), c.took() - c.took(), ErrorCode::conflict,
          "leased");
  CHECK(h.model.current()->book->lease(id)->state == LeaseState::active);
  CHECK(driver(h, kVf0) == std::string("vfio-pci"));

  h.faults->fail_vfio_holders(0);
  REQUIRE(h.agent->release(id).ok());
  CHECK(driver(h, kVf0) == std::string("iavf"));
}

TEST_CASE("a lease attached live: the detach goes first; a VM still holding the VF after it keeps the lease") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  REQUIRE(h.agent->create_pool(x710_pool()).ok());
  auto a = h.agent->allocate(by_address(kVf0));
  REQUIRE(a.ok());
  const std::string id = a->lease.id;
  REQUIRE(h.agent->set_attachment(id, Attachment{"vm1", true, false}, nullptr).ok());
  REQUIRE(h.sim->hold_vfio(kVf0, kQemu, "qemu-system-x86").ok());

  // A detach that libvirt reports done while QEMU still holds the group: refused after it,
  // the lease active and no longer attached (the detach did happen), the VF on vfio-pci.
  int detaches = 0;
  h.agent->set_detacher([&](const Lease&) -> Result<void> {
    ++detaches;
    return ok();
  });
  Clock c;
  refused(h.agent->release(id), c.took(), ErrorCode::conflict, "qemu-system-x86 (pid 4242)");
  CHECK(detaches == 1);
  const Lease* l = h.model.current()->book->lease(id);
  REQUIRE(l);
  CHECK(l->state == LeaseState::active);
  CHECK_FALSE(l->attached);
  CHECK(driver(h, kVf0) == std::string("vfio-pci"));
  CHECK(h.sim->vfio_unbinds_blocked(kVf0) == 0);
  // And the record says so after a restart.
  h.start();
  REQUIRE(h.model.current()->book->lease(id));
  CHECK_FALSE(h.model.current()->book->lease(id)->attached);

  // Attached live again; this time the unplug makes QEMU let go: the release goes through.
  REQUIRE(h.agent->set_attachment(id, Attachment{"vm1", true, false}, nullptr).ok());
  h.agent->set_detacher([&](const Lease&) -> Result<void> {
    ++detaches;
    return h.sim->release_vfio(kVf0, kQemu);
  });
  auto done = h.agent->release(id);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(detaches == 2);
  CHECK(driver(h, kVf0) == std::string("iavf"));
}

// A reconcile at start with an interrupted operation to undo whose device kQemu holds: nothing is
// undone, the holder is named as drift, and it answers at once (no wait on the kernel's unbind).
static void undo_stops_at_the_holder(Host& h) {
  Clock c;
  auto report = h.agent->reconcile();
  CHECK(c.took() < 1s);
  CHECK(report.recovered.empty());
  REQUIRE(report.drift.size() == 1);
  CHECK_MESSAGE(report.drift[0].find("qemu-system-x86 (pid 4242)") != std::string::npos, report.drift[0]);
}

TEST_CASE("reconcile leaves a held device on vfio-pci and reports it as drift") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  REQUIRE(h.agent->set_driver(kVf1, DriverRequest{std::string("vfio-pci")}).ok());
  REQUIRE(h.sim->hold_vfio(kVf1, kQemu, "qemu-system-x86").ok());
  // The desired state says "no driver": reconcile would unbind it.
  REQUIRE(h.store->put("driver", kVf1.to_string(), R"({"driver": null, "previous": "iavf"})").ok());
  h.start();
  auto report = h.agent->reconcile();
  REQUIRE(report.drift.size() == 1);
  CHECK_MESSAGE(report.drift[0].find("qemu-system-x86 (pid 4242)") != std::string::npos, report.drift[0]);
  CHECK(driver(h, kVf1) == std::string("vfio-pci"));
  CHECK(h.sim->vfio_unbinds_blocked(kVf1) == 0);
}

TEST_CASE("an interrupted bind undone at start: a device a VM opened meanwhile stays on vfio-pci, as drift") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  const PciAddress audio = *PciAddress::parse("0000:87:00.1");
  const auto gpu_driver = driver(h, kGpu);
  // The group move dies at its 4th change: the GPU is on vfio-pci, its audio function untouched.
  const int st = run_dying(h, 4, [](Agent& a) {
    return a.set_driver(kGpu, DriverRequest{std::string("vfio-pci"), true});
  });
  REQUIRE(WEXITSTATUS(st) == 9);
  REQUIRE(driver(h, kGpu) == std::string("vfio-pci"));
  REQUIRE(driver(h, audio) != std::string("vfio-pci"));
  // A VM opened the GPU while the daemon was down.
  REQUIRE(h.sim->hold_vfio(kGpu, kQemu, "qemu-system-x86").ok());
  undo_stops_at_the_holder(h);
  CHECK(driver(h, kGpu) == std::string("vfio-pci"));
  CHECK(h.sim->vfio_unbinds_blocked(kGpu) == 0);
  CHECK(h.store->operations_in_state(OperationState::pending)->empty());

  // Once it lets go, the operator gives the GPU back.
  REQUIRE(h.sim->release_vfio(kGpu, kQemu).ok());
  REQUIRE(h.agent->set_driver(kGpu, DriverRequest{std::string("host")}).ok());
  CHECK(driver(h, kGpu) == gpu_driver);
}

TEST_CASE("an interrupted VF count change undone at start: a VF a VM opened meanwhile keeps its VFs, as drift") {
  Host h;
  REQUIRE(h.sim->set_vfio_unbind_bound(3s).ok());
  // A VF count change that made 2 VFs on the E810 and stopped before it ended: its journal
  // says how to undo it (sriov_numvfs back to 0).
  const std::string numvfs = pci::device_file(kE810, "sriov_numvfs");
  auto id = h.store->begin_operation(OperationKind::set_num_vfs, kE810.to_string(), R"({"num_vfs":2})");
  REQUIRE(id.ok());
  const nlohmann::json step = {{"do", Action::write(numvfs, "2").to_json()},
                               {"undo", nlohmann::json::array({Action::write(numvfs, "0").to_json()})}};
  REQUIRE(h.store->add_step(*id, step.dump()).ok());
  REQUIRE(h.sim->write_attr(numvfs, "2").ok());
  REQUIRE(h.agent->refresh().ok());
  // Meanwhile one of them went to vfio-pci and a VM opened it.
  const auto vfs = h.vfs_of(kE810);
  REQUIRE(vfs.size() == 2);
  const PciAddress vf = vfs[1]->device.address;
  REQUIRE(h.agent->set_driver(vf, DriverRequest{std::string("vfio-pci")}).ok());
  REQUIRE(h.sim->hold_vfio(vf, kQemu, "qemu-system-x86").ok());

  h.start();
  undo_stops_at_the_holder(h);
  CHECK(h.vfs_of(kE810).size() == 2);
  CHECK(driver(h, vf) == std::string("vfio-pci"));
  CHECK(h.sim->vfio_unbinds_blocked(vf) == 0);
  CHECK(h.store->operations_in_state(OperationState::pending)->empty());

  // Without a holder, the same journal is undone: the VFs go.
  auto id2 = h.store->begin_operation(OperationKind::set_num_vfs, kE810.to_string(), R"({"num_vfs":2})");
  REQUIRE(id2.ok());
  REQUIRE(h.store->add_step(*id2, step.dump()).ok());
  REQUIRE(h.sim->release_vfio(vf, kQemu).ok());
  h.start();
  auto report = h.agent->reconcile();
  CHECK(report.recovered.size() == 1);
  CHECK(h.vfs_of(kE810).empty());
}
