// Sim tier of the conformance checks: SimKernel on a generated host (an NVMe PF with SR-IOV on
// nvme, vfio-pci loaded; an E810 on ice for VF attributes). The same checks run against the real
// kernel in the lab (lab_test.cpp); they assert what Linux 6.1 does.
#include <doctest/doctest.h>

#include "sim/sim_kernel.h"
#include "tests/conformance/checks.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
namespace fs = std::filesystem;

namespace {

const PciAddress kNvme = *PciAddress::parse("0000:02:00.0");
const PciAddress kE810 = *PciAddress::parse("0000:17:00.0");

struct SimHost {
  test::TempDir dir{"sriovd-conformance"};
  fs::path sys = dir / "sys";
  std::unique_ptr<kernel::SimKernel> k;
  SimHost() {
    using namespace fixtures;
    auto m = HostBuilder(sys)
                 .numa_node(0, "0-3")
                 .root_bus(0, 0x00, 0, "dmar0")
                 .load_module("vfio")
                 .load_module("vfio_iommu_type1")
                 .load_driver("vfio-pci")
                 .root_port(*PciAddress::parse("0000:00:01.0"), 0x02, 0x02)
                 .function(kNvme, models::samsung_pm1735, {.total_vfs = 16})
                 .root_port(*PciAddress::parse("0000:00:02.0"), 0x17, 0x18)
                 .function(kE810, models::intel_e810, {.netdevs = {"ens1f0"}})
                 .finish();
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    auto s = kernel::SimKernel::open(sys);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    k = std::move(s).value();
  }
  conformance::Target nvme() { return {*k, sys, kNvme, false}; }
};

}  // namespace

TEST_CASE("sim: sriov_numvfs") {
  SimHost h;
  auto t = h.nvme();
  conformance::check_sriov_numvfs(t);
}

TEST_CASE("sim: vfio-pci binding of a VF") {
  SimHost h;
  auto t = h.nvme();
  conformance::check_vfio_binding(t);
}

TEST_CASE("sim: the Agent end to end") {
  SimHost h;
  auto t = h.nvme();
  fs::create_directories(h.dir / "state");
  conformance::check_agent(t, h.dir / "state");
}

TEST_CASE("sim: VF attributes (ice)") {
  SimHost h;
  const std::string numvfs = "bus/pci/devices/" + kE810.to_string() + "/sriov_numvfs";
  REQUIRE(h.k->write_attr("bus/pci/devices/" + kE810.to_string() + "/sriov_drivers_autoprobe", "0").ok());
  REQUIRE(h.k->write_attr(numvfs, "8").ok());
  conformance::check_vf_attributes(*h.k, "ens1f0");
  CHECK(h.k->write_attr(numvfs, "0").ok());
}

TEST_CASE("sim: eswitch mode over devlink (ice), representors") {
  SimHost h;
  const std::string numvfs = "bus/pci/devices/" + kE810.to_string() + "/sriov_numvfs";
  REQUIRE(h.k->write_attr(numvfs, "3").ok());
  conformance::check_eswitch(*h.k, h.sys, "pci", kE810.to_string(), "ens1f0", 3);
  // VFs enabled and disabled in switchdev mode bring and take their representors.
  REQUIRE(h.k->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::switchdev).ok());
  REQUIRE(h.k->write_attr(numvfs, "0").ok());
  CHECK_FALSE(fs::exists(h.sys / "class/net/ens1f0_0"));
  REQUIRE(h.k->write_attr(numvfs, "2").ok());
  CHECK(fs::exists(h.sys / "class/net/ens1f0_1"));
  REQUIRE(h.k->set_eswitch_mode("pci", kE810.to_string(), EswitchMode::legacy).ok());
  CHECK_FALSE(fs::exists(h.sys / "class/net/ens1f0_1"));
  CHECK(h.k->write_attr(numvfs, "0").ok());
  // A driver without eswitch ops, and one without devlink.
  auto igb = h.k->get_eswitch_mode("pci", "0000:02:00.0");
  REQUIRE_FALSE(igb.ok());
  CHECK(igb.error().errnum == ENODEV);
}

TEST_CASE("sim: MTU over rtnetlink (ice)") {
  SimHost h;
  conformance::check_set_mtu(*h.k, h.sys, "ens1f0");
}
