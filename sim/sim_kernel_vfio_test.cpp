// SimKernel's VFIO users: a fake process holding a VF's /dev/vfio/<group> (hold_vfio), what
// vfio_holders reports, and vfio-pci's remove waiting for the holder — an unbind and a
// sriov_numvfs 0 block until the holder lets go, or fail with ETIMEDOUT at the sim's bound with
// nothing changed — and the count of unbinds that found their device held.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "sim/sim_kernel.h"
#include "sim/sim_kernel_test_util.h"
#include "sim/sim_tree.h"

using namespace sriovd;
using namespace sriovd::kernel;
using namespace sriovd::kernel::testing;
using namespace std::chrono_literals;

TEST_CASE("a VF held open through VFIO: its unbind and the VFs' removal wait for the holder, bounded") {
  Host h("minimal");
  const std::string pf = "0000:01:00.0", vf = "0000:01:00.1", other = "0000:01:00.2";
  REQUIRE(simtree::ensure_driver(h.root(), "vfio-pci").ok());
  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + pf + "/sriov_drivers_autoprobe", "0")) == 0);
  REQUIRE(err(h.k->write_attr(numvfs_path(pf.c_str()), "2")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + vf + "/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  const PciAddress a = addr(vf.c_str());

  // Only a function on vfio-pci has a group node to hold.
  CHECK(err(h.k->hold_vfio(addr(other.c_str()), 77, "qemu")) == ENODEV);
  CHECK(h.k->vfio_holders(a)->empty());
  REQUIRE(h.k->hold_vfio(a, 77, "qemu-system-x86").ok());
  auto held = h.k->vfio_holders(a);
  REQUIRE(held.ok());
  REQUIRE(held->size() == 1);
  CHECK((*held)[0].pid == 77);
  CHECK((*held)[0].comm == "qemu-system-x86");
  CHECK((*held)[0].path.rfind("/dev/vfio/", 0) == 0);
  CHECK(h.k->vfio_holders(addr(other.c_str()))->empty());  // its own group
  CHECK(h.k->vfio_unbinds_blocked(a) == 0);

  // At the bound: ETIMEDOUT, naming the holder; nothing changed.
  REQUIRE(h.k->set_vfio_unbind_bound(200ms).ok());
  auto before = snapshot(h.root());
  auto t0 = std::chrono::steady_clock::now();
  auto r = h.k->write_attr("bus/pci/drivers/vfio-pci/unbind", vf);
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == ETIMEDOUT);
  CHECK(r.error().message.find("qemu-system-x86 (pid 77)") != std::string::npos);
  CHECK(h.k->vfio_unbinds_blocked(a) == 1);
  CHECK(err(h.k->write_attr(numvfs_path(pf.c_str()), "0")) == ETIMEDOUT);
  CHECK(h.k->vfio_unbinds_blocked(a) == 2);
  auto after = snapshot(h.root());
  CHECK_MESSAGE(before == after, diff(before, after));

  // Waiting, then let go by another thread: the unbind completes then.
  REQUIRE(h.k->set_vfio_unbind_bound(30s).ok());
  Result<void> unbound = ok();
  std::thread unbinder([&] { unbound = h.k->write_attr("bus/pci/drivers/vfio-pci/unbind", vf); });
  // The unbind counts itself blocked before it waits.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (h.k->vfio_unbinds_blocked(a) < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(h.k->vfio_unbinds_blocked(a) == 3);
  CHECK(fs::exists(h.root() / "bus/pci/devices" / vf / "driver"));
  t0 = std::chrono::steady_clock::now();
  REQUIRE(h.k->release_vfio(a, 77).ok());
  unbinder.join();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(unbound.ok());
  CHECK_FALSE(fs::exists(h.root() / "bus/pci/devices" / vf / "driver"));
  CHECK(h.k->vfio_holders(a)->empty());
  CHECK(err(h.k->release_vfio(a, 77)) == ENOENT);

  // A reboot ends every process: nothing holds anything after it.
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  REQUIRE(h.k->hold_vfio(a, 78, "qemu-system-x86").ok());
  REQUIRE(h.k->simulate_reboot().ok());
  REQUIRE(err(h.k->write_attr(numvfs_path(pf.c_str()), "2")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + vf + "/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  CHECK(h.k->vfio_holders(a)->empty());
  CHECK(err(h.k->write_attr(numvfs_path(pf.c_str()), "0")) == 0);
}
