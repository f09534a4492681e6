#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "iommu/groups.h"
#include "iommu/readiness.h"
#include "pci/inventory.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::iommu;
namespace fs = std::filesystem;

namespace {

pci::Device dev(const char* addr, std::optional<std::string> driver, uint32_t cls = 0x020000) {
  pci::Device d;
  d.address = *PciAddress::parse(addr);
  d.driver = std::move(driver);
  d.class_id = cls;
  return d;
}

}  // namespace

TEST_CASE("viability: every non-bridge member on vfio-pci, pci-stub or no driver") {
  auto vf = dev("0000:3b:02.0", "vfio-pci");
  auto stub = dev("0000:3b:02.1", "pci-stub");
  auto unbound = dev("0000:3b:02.2", std::nullopt);
  auto bridge = dev("0000:00:01.0", "pcieport", 0x060400);
  auto gpu = dev("0000:65:00.0", "nouveau", 0x030000);
  auto audio = dev("0000:65:00.1", "snd_hda_intel", 0x040300);

  CHECK(assess({&vf}).viable);
  CHECK(assess({&unbound}).viable);
  CHECK(assess({&vf, &stub, &unbound, &bridge}).viable);

  auto v = assess({&audio, &gpu});
  CHECK_FALSE(v.viable);
  REQUIRE(v.blocking.size() == 2);
  CHECK(v.blocking[0] == gpu.address);  // sorted by address
  CHECK(v.reason.find("0000:65:00.0 (nouveau)") != std::string::npos);
  CHECK(v.reason.find("0000:65:00.1 (snd_hda_intel)") != std::string::npos);

  auto one = assess({&vf, &audio});
  CHECK_FALSE(one.viable);
  CHECK(one.blocking == std::vector<PciAddress>{audio.address});

  CHECK_FALSE(assess({}).viable);

  // The reason says what the verdict rests on.
  CHECK(assess({&vf}).reason == "the only member is bound to vfio-pci");
  CHECK(assess({&unbound}).reason == "the only member is bound to no driver");
  CHECK(assess({&bridge}).reason.find("only PCI bridges") != std::string::npos);
}

TEST_CASE("groups of the dual-socket host: a GPU shares its group with its audio function") {
  test::TempDir dir;
  auto manifest = fixtures::build_profile("dual-socket", dir.path());
  REQUIRE(manifest.ok());
  auto root = pci::SysfsRoot::open(dir.path());
  auto inv = pci::scan(*root);
  REQUIRE(inv.ok());
  std::vector<const pci::Device*> ptrs;
  for (const auto& d : inv->devices) ptrs.push_back(&d);
  auto groups = build_groups(*root, ptrs);

  // Every group the generator made, with the same members.
  std::map<unsigned, std::vector<PciAddress>> expected;
  for (const auto& f : manifest->functions)
    if (f.iommu_group) expected[*f.iommu_group].push_back(f.address);
  REQUIRE(groups.size() == expected.size());
  bool saw_gpu = false;
  for (auto& [n, members] : expected) {
    std::sort(members.begin(), members.end());
    REQUIRE(groups.count(static_cast<int>(n)));
    const auto& g = groups.at(static_cast<int>(n));
    CHECK(g.members == members);
    CHECK(g.type.has_value());
    for (const auto& a : members) {
      const auto* f = manifest->find(a);
      if (f->class_code >> 16 == 0x03) {
        saw_gpu = true;
        CHECK(members.size() == 2);
        CHECK_FALSE(g.verdict.viable);
        CHECK(g.verdict.blocking.size() == 2);
      }
    }
  }
  CHECK(saw_gpu);
}

TEST_CASE("groups without ACS: the root port, the PF and its VFs in one group, judged together") {
  test::TempDir dir;
  auto manifest = fixtures::build_profile("igb", dir.path());
  REQUIRE(manifest.ok());
  auto root = pci::SysfsRoot::open(dir.path());
  auto inv = pci::scan(*root);
  REQUIRE(inv.ok());
  std::vector<const pci::Device*> ptrs;
  for (const auto& d : inv->devices) ptrs.push_back(&d);
  auto groups = build_groups(*root, ptrs);
  const PciAddress port = *PciAddress::parse("0000:00:01.0"), pf = *PciAddress::parse("0000:01:00.0");
  const auto* f = manifest->find(pf);
  REQUIRE(f);
  REQUIRE(f->iommu_group);
  const Group& g = groups.at(static_cast<int>(*f->iommu_group));
  CHECK(g.members ==
        std::vector<PciAddress>{port, pf, *PciAddress::parse("0000:01:10.0"), *PciAddress::parse("0000:01:10.2")});
  // The VFs on igbvf and the PF on igb block it; the root port (a bridge) does not.
  CHECK_FALSE(g.verdict.viable);
  CHECK(g.verdict.blocking.size() == 3);
  CHECK(g.verdict.reason.find("0000:01:00.0 (igb)") != std::string::npos);
  // With the VFs off igbvf only the PF is left blocking: a VF cannot be handed out alone.
  std::vector<pci::Device> copy(inv->devices.begin(), inv->devices.end());
  std::vector<const pci::Device*> members;
  for (auto& d : copy) {
    if (d.physfn == pf) d.driver.reset();
    if (d.iommu_group == static_cast<int>(*f->iommu_group)) members.push_back(&d);
  }
  auto v = assess(members);
  CHECK_FALSE(v.viable);
  CHECK(v.blocking == std::vector<PciAddress>{pf});
}

TEST_CASE("readiness: IOMMU groups and the VFIO modules, read from the sysfs root") {
  test::TempDir dir;
  fs::create_directories(dir / "bus/pci/devices");
  auto r0 = read_readiness(*pci::SysfsRoot::open(dir.path()));
  CHECK_FALSE(r0.iommu_enabled);
  CHECK_FALSE(r0.vfio_pci_loaded);
  REQUIRE(r0.problems.size() == 2);
  CHECK(r0.problems[0].find("intel_iommu=on") != std::string::npos);

  fs::create_directories(dir / "kernel/iommu_groups/0/devices");
  fs::create_directories(dir / "kernel/iommu_groups/1/devices");
  fs::create_directories(dir / "class/iommu/dmar0");
  fs::create_directories(dir / "module/vfio");
  fs::create_directories(dir / "bus/pci/drivers/vfio-pci");
  auto r1 = read_readiness(*pci::SysfsRoot::open(dir.path()));
  CHECK(r1.iommu_enabled);
  CHECK(r1.iommu_group_count == 2);
  CHECK(r1.iommus == std::vector<std::string>{"dmar0"});
  CHECK(r1.vfio_pci_loaded);
  REQUIRE(r1.problems.size() == 1);
  CHECK(r1.problems[0].find("vfio_iommu_type1") != std::string::npos);

  fs::create_directories(dir / "module/vfio_iommu_type1");
  CHECK(read_readiness(*pci::SysfsRoot::open(dir.path())).problems.empty());
}
