#include "agent/uevent.h"

#include <doctest/doctest.h>

using namespace sriovd;
using namespace sriovd::agent;
using namespace std::string_literals;

TEST_CASE("a kernel uevent datagram as the kernel sends it") {
  // Captured shape of Linux 6.1's KOBJ_BIND for a VF (lib/kobject_uevent.c, pci_uevent()).
  const std::string d =
      "bind@/devices/pci0000:00/0000:00:03.0/0000:01:00.1\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:03.0/"
      "0000:01:00.1\0SUBSYSTEM=pci\0DRIVER=vfio-pci\0PCI_CLASS=10802\0PCI_ID=1B36:0010\0PCI_SUBSYS_ID=1AF4:1100\0"
      "PCI_SLOT_NAME=0000:01:00.1\0MODALIAS=pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02\0SEQNUM=2291\0"s;
  auto e = parse_uevent(d);
  REQUIRE(e.ok());
  CHECK(e->action == "bind");
  CHECK(e->subsystem == "pci");
  CHECK(e->driver == "vfio-pci");
  CHECK(e->seqnum == 2291u);
  CHECK(e->pci_function() == PciAddress::parse("0000:01:00.1"));
  CHECK(e->env.at("PCI_ID") == "1B36:0010");
  // format_uevent gives the same bytes back.
  CHECK(format_uevent(*e) == d.substr(0, d.find("DRIVER=")) + "DRIVER=vfio-pci\0MODALIAS="s + e->env.at("MODALIAS") +
                                 "\0PCI_CLASS=10802\0PCI_ID=1B36:0010\0PCI_SLOT_NAME=0000:01:00.1\0"
                                 "PCI_SUBSYS_ID=1AF4:1100\0SEQNUM=2291\0"s);
  auto again = parse_uevent(format_uevent(*e));
  REQUIRE(again.ok());
  CHECK(again->env == e->env);
}

TEST_CASE("a netdev's event names its PCI function through DEVPATH") {
  auto e = parse_uevent(
      "add@/devices/pci0000:00/0000:00:01.0/0000:17:00.0/net/ens1f0\0ACTION=add\0"
      "DEVPATH=/devices/pci0000:00/0000:00:01.0/0000:17:00.0/net/ens1f0\0SUBSYSTEM=net\0"
      "INTERFACE=ens1f0\0IFINDEX=7\0SEQNUM=5\0"s);
  REQUIRE(e.ok());
  CHECK(e->subsystem == "net");
  CHECK(e->pci_function() == PciAddress::parse("0000:17:00.0"));
  auto virt = parse_uevent("add@/devices/virtual/net/lo\0ACTION=add\0SUBSYSTEM=net\0"s);
  REQUIRE(virt.ok());
  CHECK_FALSE(virt->pci_function().has_value());
}

TEST_CASE("malformed datagrams are refused with the reason") {
  auto msg = [](std::string_view d) {
    auto r = parse_uevent(d);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK(msg("").find("empty") != std::string::npos);
  CHECK(msg("add/devices/x\0"s).find("ACTION@/DEVPATH") != std::string::npos);
  CHECK(msg("@/devices/x\0"s).find("ACTION@/DEVPATH") != std::string::npos);
  CHECK(msg("add@devices\0"s).find("ACTION@/DEVPATH") != std::string::npos);
  CHECK(msg("add@/devices/x\0ACTION=remove\0"s).find("differs") != std::string::npos);
  CHECK(msg("add@/devices/x\0DEVPATH=/devices/y\0"s).find("differs") != std::string::npos);
  CHECK(msg("add@/devices/x\0NOEQUALS\0"s).find("KEY=VALUE") != std::string::npos);
  CHECK(msg("add@/devices/x\0SEQNUM=12a\0"s).find("SEQNUM") != std::string::npos);
  CHECK(msg("libudev\0\xfe\xed\xca\xfe"s).find("libudev") != std::string::npos);
  CHECK(msg(std::string(kMaxUeventBytes + 1, 'a')).find("too long") != std::string::npos);
}
