// Lab tier of the conformance checks: LinuxKernel on the QEMU guest's /sys — the NVMe PF at
// 0000:02:00.0 (nvme, 16 TotalVFs, vfio-pci loaded) and netdevsim1's eth0 with 8 VFs, enabled
// by the bash prelude in CMakeLists.txt. Run with `ctest -R lab_conformance`.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>

#include "kernel/linux_kernel.h"
#include "tests/conformance/checks.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
namespace fs = std::filesystem;

namespace {

const PciAddress kNvme = *PciAddress::parse("0000:02:00.0");

std::unique_ptr<kernel::LinuxKernel> open_kernel() {
  REQUIRE_MESSAGE(std::getenv("LAB") != nullptr, "run in the QEMU lab (ctest -R lab_conformance)");
  REQUIRE(::geteuid() == 0);
  auto k = kernel::LinuxKernel::open("/sys");
  REQUIRE_MESSAGE(k.ok(), (k.ok() ? "" : k.error().message));
  return std::move(k).value();
}

}  // namespace

TEST_CASE("linux: sriov_numvfs") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  conformance::check_sriov_numvfs(t);
}

TEST_CASE("linux: vfio-pci binding of a VF") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  conformance::check_vfio_binding(t);
}

TEST_CASE("linux: the Agent end to end") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  test::TempDir dir{"sriovd-conformance"};
  fs::create_directories(dir / "state");
  conformance::check_agent(t, dir / "state");
}

TEST_CASE("linux: VF attributes (netdevsim)") {
  auto k = open_kernel();
  conformance::check_vf_attributes(*k, "eth0");
}
