// pci/'s change recipes on a generated host through SimKernel: the steps each takes, with
// their undo, and that undoing them gives the host back as it was.
#include <doctest/doctest.h>

#include "pci/paths.h"
#include "pci/recipes.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::pci;

namespace {

const PciAddress kGpu = *PciAddress::parse("0000:87:00.0");   // nouveau
const PciAddress kE810 = *PciAddress::parse("0000:17:00.0");  // ice, no VFs yet

struct Host {
  test::TempDir dir{"sriovd-recipes"};
  std::unique_ptr<kernel::SimKernel> sim;
  std::unique_ptr<SysfsRoot> root;
  Host() {
    REQUIRE(fixtures::write_profile("dual-socket", dir.path()).ok());
    sim = std::move(kernel::SimKernel::open(dir.path()).value());
    root = std::make_unique<SysfsRoot>(std::move(SysfsRoot::open(dir.path()).value()));
  }
};

}  // namespace

TEST_CASE("paths: every sysfs path is relative to the root and spelled one way") {
  CHECK(device_dir(kGpu) == "bus/pci/devices/0000:87:00.0");
  CHECK(device_file(kGpu, "driver_override") == "bus/pci/devices/0000:87:00.0/driver_override");
  CHECK(driver_dir("vfio-pci") == "bus/pci/drivers/vfio-pci");
  CHECK(driver_file("ice", "unbind") == "bus/pci/drivers/ice/unbind");
  CHECK(drivers_probe_file() == "bus/pci/drivers_probe");
}

TEST_CASE("bind_driver: override, unbind, probe; each step with its undo; rollback restores") {
  Host h;
  REQUIRE(current_driver(*h.root, kGpu) == std::string("nouveau"));
  REQUIRE_FALSE(driver_override(*h.root, kGpu));
  KernelSteps steps(*h.sim);
  REQUIRE(bind_driver(*h.root, kGpu, "vfio-pci", steps.runner()).ok());
  CHECK(current_driver(*h.root, kGpu) == std::string("vfio-pci"));
  CHECK(driver_override(*h.root, kGpu) == std::string("vfio-pci"));
  const std::string ovr = device_file(kGpu, "driver_override");
  const auto& t = steps.taken();
  REQUIRE(t.size() == 3);
  CHECK(t[0].change == SysfsWrite{ovr, "vfio-pci"});
  CHECK(t[0].undo == std::vector<SysfsWrite>{{ovr, "\n"}});
  CHECK(t[1].change == SysfsWrite{"bus/pci/drivers/nouveau/unbind", "0000:87:00.0"});
  CHECK(t[1].undo == std::vector<SysfsWrite>{{ovr, "\n"}, {"bus/pci/drivers/nouveau/bind", "0000:87:00.0"}});
  CHECK(t[2].change == SysfsWrite{"bus/pci/drivers_probe", "0000:87:00.0"});
  CHECK(t[2].undo == std::vector<SysfsWrite>{{"bus/pci/drivers/vfio-pci/unbind", "0000:87:00.0"}});

  SUBCASE("bound already: no step") {
    KernelSteps again(*h.sim);
    REQUIRE(bind_driver(*h.root, kGpu, "vfio-pci", again.runner()).ok());
    CHECK(again.taken().empty());
  }
  SUBCASE("rollback gives the device back to its driver, override cleared") {
    CHECK(steps.rollback().empty());
    CHECK(current_driver(*h.root, kGpu) == std::string("nouveau"));
    CHECK_FALSE(driver_override(*h.root, kGpu));
  }
  SUBCASE("restore_host_driver: to the named driver") {
    KernelSteps back(*h.sim);
    REQUIRE(restore_host_driver(*h.root, kGpu, std::string("nouveau"), back.runner()).ok());
    CHECK(current_driver(*h.root, kGpu) == std::string("nouveau"));
    CHECK_FALSE(driver_override(*h.root, kGpu));
    REQUIRE(back.taken().size() == 3);  // unbind vfio-pci, clear the override, bind nouveau
    CHECK(back.taken()[2].change == SysfsWrite{"bus/pci/drivers/nouveau/bind", "0000:87:00.0"});
    CHECK(back.rollback().empty());
    CHECK(current_driver(*h.root, kGpu) == std::string("vfio-pci"));
    CHECK(driver_override(*h.root, kGpu) == std::string("vfio-pci"));
  }
  SUBCASE("restore_host_driver: unknown, the kernel probes") {
    KernelSteps back(*h.sim);
    REQUIRE(restore_host_driver(*h.root, kGpu, std::nullopt, back.runner()).ok());
    CHECK(current_driver(*h.root, kGpu) == std::string("nouveau"));
    CHECK(back.taken().back().change == SysfsWrite{"bus/pci/drivers_probe", "0000:87:00.0"});
  }
  SUBCASE("unbind_driver: no driver, no override") {
    KernelSteps off(*h.sim);
    REQUIRE(unbind_driver(*h.root, kGpu, off.runner()).ok());
    CHECK_FALSE(current_driver(*h.root, kGpu));
    CHECK_FALSE(driver_override(*h.root, kGpu));
  }
}

TEST_CASE("a runner's error stops the recipe there") {
  Host h;
  KernelSteps steps(*h.sim);
  int n = 0;
  auto r = bind_driver(*h.root, kGpu, "vfio-pci", [&](const Step& s) -> Result<void> {
    if (++n == 2) return Error::sys(EBUSY, "refused");
    return steps.run(s);
  });
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errnum == EBUSY);
  CHECK(n == 2);
  CHECK(steps.taken().size() == 1);
  CHECK(steps.rollback().empty());
  CHECK(current_driver(*h.root, kGpu) == std::string("nouveau"));
  CHECK_FALSE(driver_override(*h.root, kGpu));
}

TEST_CASE("reset_function: one write, no undo; false without a reset attribute") {
  Host h;
  KernelSteps steps(*h.sim);
  auto r = reset_function(*h.root, kE810, steps.runner());
  REQUIRE(r.ok());
  CHECK(*r);
  CHECK(h.sim->reset_count(kE810) == 1);
  REQUIRE(steps.taken().size() == 1);
  CHECK(steps.taken()[0].change == SysfsWrite{device_file(kE810, "reset"), "1"});
  CHECK(steps.taken()[0].undo.empty());
  auto absent = reset_function(*h.root, *PciAddress::parse("0000:ee:00.0"), steps.runner());
  REQUIRE(absent.ok());
  CHECK_FALSE(*absent);
  // Every reset method disabled: the kernel answers ENOTTY, and the recipe says so.
  REQUIRE(h.sim->write_attr(device_file(kE810, "reset_method"), "\n").ok());
  auto failed = reset_function(*h.root, kE810, steps.runner());
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().errnum == ENOTTY);
  CHECK(failed.error().message.find("no reset method worked") != std::string::npos);
  CHECK(h.sim->reset_count(kE810) == 1);
  REQUIRE(h.sim->write_attr(device_file(kE810, "reset_method"), "default").ok());
  CHECK(reset_function(*h.root, kE810, steps.runner()).ok());
  CHECK(h.sim->reset_count(kE810) == 2);
}

TEST_CASE("change_num_vfs: through 0, undone to the count before") {
  Host h;
  const std::string path = device_file(kE810, "sriov_numvfs");
  KernelSteps steps(*h.sim);
  REQUIRE(change_num_vfs(kE810, 0, 4, steps.runner()).ok());
  REQUIRE(change_num_vfs(kE810, 4, 2, steps.runner()).ok());
  REQUIRE(change_num_vfs(kE810, 2, 2, steps.runner()).ok());
  const auto& t = steps.taken();
  REQUIRE(t.size() == 3);
  CHECK(t[0].change == SysfsWrite{path, "4"});
  CHECK(t[1].change == SysfsWrite{path, "0"});
  CHECK(t[1].undo == std::vector<SysfsWrite>{{path, "4"}});
  CHECK(t[2].change == SysfsWrite{path, "2"});
  CHECK(t[2].undo == std::vector<SysfsWrite>{{path, "0"}});
  CHECK(*h.root->read(path) == "2\n");
  CHECK(steps.rollback().empty());
  CHECK(*h.root->read(path) == "0\n");

  KernelSteps probe(*h.sim);
  REQUIRE(change_drivers_autoprobe(kE810, true, true, probe.runner()).ok());
  CHECK(probe.taken().empty());
  REQUIRE(change_drivers_autoprobe(kE810, true, false, probe.runner()).ok());
  CHECK(*h.root->read(device_file(kE810, "sriov_drivers_autoprobe")) == "0\n");
  CHECK(probe.rollback().empty());
  CHECK(*h.root->read(device_file(kE810, "sriov_drivers_autoprobe")) == "1\n");
}
