#include <doctest/doctest.h>

#include "base/pci_address.h"
#include "pci/decode.h"

using namespace sriovd;
using namespace sriovd::pci;

TEST_CASE("PCI addresses parse in the kernel's form and print canonically") {
  auto a = PciAddress::parse("0000:17:00.0");
  REQUIRE(a);
  CHECK(a->bus == 0x17);
  CHECK(a->to_string() == "0000:17:00.0");
  CHECK(PciAddress::parse("0000:AF:1F.7")->to_string() == "0000:af:1f.7");
  CHECK(PciAddress::parse("17:00.1")->to_string() == "0000:17:00.1");
  CHECK(PciAddress::parse("10000:17:00.0") == std::nullopt);
  CHECK(PciAddress::parse("0000:17:20.0") == std::nullopt);  // device > 31
  CHECK(PciAddress::parse("0000:17:00.8") == std::nullopt);  // function > 7
  CHECK(PciAddress::parse("0000:17:00.0\n") == std::nullopt);
  CHECK(PciAddress::parse("") == std::nullopt);
  CHECK(PciAddress::parse("zzzz:17:00.0") == std::nullopt);
}

TEST_CASE("routing IDs round-trip: VFs past function 7 spill into the next device") {
  auto pf = *PciAddress::parse("0000:3b:00.0");
  // X710 PF0: First VF Offset 16, stride 1 → VF 0 is 3b:02.0, VF 9 is 3b:03.1.
  CHECK(PciAddress::from_routing_id(0, static_cast<uint16_t>(pf.routing_id() + 16)).to_string() == "0000:3b:02.0");
  CHECK(PciAddress::from_routing_id(0, static_cast<uint16_t>(pf.routing_id() + 16 + 9)).to_string() == "0000:3b:03.1");
}

TEST_CASE("hex ids, classes and integers as sysfs writes them") {
  CHECK(parse_hex16("0x8086\n") == 0x8086);
  CHECK(parse_hex16("0x15b3") == 0x15b3);
  CHECK(parse_hex16("8086\n") == std::nullopt);  // vendor files always carry 0x
  CHECK(parse_hex16("0x18086\n") == std::nullopt);
  CHECK(parse_hex16("") == std::nullopt);
  CHECK(parse_hex16("0x") == std::nullopt);
  CHECK(parse_class("0x020000\n") == 0x020000);
  CHECK(parse_class("0x1020000\n") == std::nullopt);
  CHECK(parse_bare_hex16("1889\n") == 0x1889);
  CHECK(parse_bare_hex16("zz\n") == std::nullopt);
  CHECK(parse_int("-1\n", -1, 100) == -1);
  CHECK(parse_int("63\n", 0, 65535) == 63);
  CHECK(parse_int("63x\n", 0, 65535) == std::nullopt);
  CHECK(parse_int("-2", -1, 100) == std::nullopt);
  CHECK(parse_int("", -1, 100) == std::nullopt);
  CHECK(parse_bool01("1\n") == true);
  CHECK(parse_bool01("0\n") == false);
  CHECK(parse_bool01("2\n") == std::nullopt);
  CHECK(parse_driver_override("(null)\n") == std::nullopt);
  CHECK(parse_driver_override("vfio-pci\n") == "vfio-pci");
}

TEST_CASE("uevent gives driver, class, ids and slot in one read") {
  auto u = parse_uevent(
      "DRIVER=ice\nPCI_CLASS=20000\nPCI_ID=8086:1593\nPCI_SUBSYS_ID=8086:0002\nPCI_SLOT_NAME=0000:17:00.0\n"
      "MODALIAS=pci:v00008086d00001593sv00008086sd00000002bc02sc00i00\n");
  CHECK(u.driver == "ice");
  CHECK(u.pci_class == 0x020000);
  CHECK(u.vendor_id == 0x8086);
  CHECK(u.device_id == 0x1593);
  CHECK(u.subsystem_vendor_id == 0x8086);
  CHECK(u.subsystem_device_id == 0x0002);
  REQUIRE(u.slot);
  CHECK(u.slot->to_string() == "0000:17:00.0");

  SUBCASE("unbound: no DRIVER line") { CHECK_FALSE(parse_uevent("PCI_CLASS=20000\n").driver); }
  SUBCASE("garbage lines are skipped, good ones kept") {
    auto g = parse_uevent("PCI_ID=zzzz:1593\n\n===\nPCI_CLASS=10802\nno equals sign\nPCI_SUBSYS_ID=1\n");
    CHECK_FALSE(g.vendor_id);
    CHECK(g.pci_class == 0x010802);
    CHECK_FALSE(g.subsystem_vendor_id);
  }
  SUBCASE("truncated") {
    auto t = parse_uevent("DRIVER=i40e\nPCI_CL");
    CHECK(t.driver == "i40e");
    CHECK_FALSE(t.pci_class);
  }
}

TEST_CASE("link targets: group numbers, drivers, addresses") {
  CHECK(iommu_group_from_link("../../../../kernel/iommu_groups/12") == 12);
  CHECK(iommu_group_from_link("../../../../kernel/iommu_groups/12/") == 12);
  CHECK(iommu_group_from_link("../../../../kernel/groups/12") == std::nullopt);
  CHECK(iommu_group_from_link("../../../../kernel/iommu_groups/x") == std::nullopt);
  CHECK(iommu_group_from_link("") == std::nullopt);
  CHECK(driver_from_link("../../../bus/pci/drivers/ice") == "ice");
  CHECK(driver_from_link("../../../bus/pci/drivers/vfio-pci") == "vfio-pci");
  CHECK(driver_from_link("../../../bus/pci/ice") == std::nullopt);
  CHECK(driver_from_link("drivers/..") == std::nullopt);
  CHECK(address_from_link("../0000:17:00.0")->to_string() == "0000:17:00.0");
  CHECK(address_from_link("../0000:17:00.0/x") == std::nullopt);
  CHECK(virtfn_index("virtfn0") == 0);
  CHECK(virtfn_index("virtfn62") == 62);
  CHECK(virtfn_index("virtfn") == std::nullopt);
  CHECK(virtfn_index("virtfn1 ") == std::nullopt);
  CHECK(virtfn_index("physfn") == std::nullopt);
}
