// The exact shapes of the device XML sriovd generates, its escaping and its refusals.
#include "virt/device_xml.h"

#include <doctest/doctest.h>

#include "virt/domain_xml.h"

using namespace sriovd;
using namespace sriovd::virt;
using Kind = DeviceXmlSpec::Kind;

namespace {

// The error message of a failed Result, for assertion messages (evaluated also on success).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

PciAddress addr(const char* s) { return *PciAddress::parse(s); }

std::string xml(const DeviceXmlSpec& spec) {
  auto r = device_xml(spec);
  REQUIRE_MESSAGE(r.ok(), why(r));
  return *r;
}

Error refused(const DeviceXmlSpec& spec) {
  auto r = device_xml(spec);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::invalid);
  return r.error();
}

}  // namespace

TEST_CASE("a NIC VF in vfio mode is a hostdev interface with MAC and VLAN") {
  DeviceXmlSpec s{Kind::HostdevInterface, addr("0000:17:02.3"), "52:54:00:AB:cd:01", 42, std::nullopt};
  CHECK(xml(s) ==
        "<interface type='hostdev' managed='no'>\n"
        "  <mac address='52:54:00:ab:cd:01'/>\n"
        "  <driver name='vfio'/>\n"
        "  <source>\n"
        "    <address type='pci' domain='0x0000' bus='0x17' slot='0x02' function='0x3'/>\n"
        "  </source>\n"
        "  <vlan>\n"
        "    <tag id='42'/>\n"
        "  </vlan>\n"
        "  <alias name='ua-sriovd-0000-17-02-3'/>\n"
        "</interface>\n");
}

TEST_CASE("a hostdev interface without MAC or VLAN has neither element") {
  DeviceXmlSpec s{Kind::HostdevInterface, addr("0001:af:1f.7"), std::nullopt, std::nullopt, std::nullopt};
  CHECK(xml(s) ==
        "<interface type='hostdev' managed='no'>\n"
        "  <driver name='vfio'/>\n"
        "  <source>\n"
        "    <address type='pci' domain='0x0001' bus='0xaf' slot='0x1f' function='0x7'/>\n"
        "  </source>\n"
        "  <alias name='ua-sriovd-0001-af-1f-7'/>\n"
        "</interface>\n");
}

TEST_CASE("a whole device or non-NIC function is a PCI hostdev") {
  DeviceXmlSpec s{Kind::HostdevPci, addr("0000:3b:00.0"), std::nullopt, std::nullopt, std::nullopt};
  CHECK(xml(s) ==
        "<hostdev mode='subsystem' type='pci' managed='no'>\n"
        "  <driver name='vfio'/>\n"
        "  <source>\n"
        "    <address domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/>\n"
        "  </source>\n"
        "  <alias name='ua-sriovd-0000-3b-00-0'/>\n"
        "</hostdev>\n");
}

TEST_CASE("netdev mode is a macvtap passthrough interface; the VLAN stays on the VF") {
  DeviceXmlSpec s{Kind::Direct, addr("0000:17:02.1"), "52:54:00:00:00:01", 100, "ens1f0v1"};
  CHECK(xml(s) ==
        "<interface type='direct'>\n"
        "  <mac address='52:54:00:00:00:01'/>\n"
        "  <source dev='ens1f0v1' mode='passthrough'/>\n"
        "  <model type='virtio'/>\n"
        "  <alias name='ua-sriovd-0000-17-02-1'/>\n"
        "</interface>\n");
}

TEST_CASE("values are escaped") {
  CHECK(xml_escape("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  // A MAC is written normalized; a netdev name with characters XML would need escaped is one
  // libvirt's schema refuses, so it is refused here (below) rather than written.
  CHECK(xml_escape("ens1f0v1") == "ens1f0v1");
}

TEST_CASE("the alias is derived from the address") {
  CHECK(device_alias(addr("0000:00:00.0")) == "ua-sriovd-0000-00-00-0");
  CHECK(device_alias(PciAddress{0x10000, 0xff, 0x1f, 7}) == "ua-sriovd-10000-ff-1f-7");
}

TEST_CASE("impossible values are refused naming the field") {
  const PciAddress a = addr("0000:17:02.1");
  CHECK(refused({Kind::HostdevInterface, a, "52:54:00:00:00", std::nullopt, std::nullopt}).field == "mac");
  CHECK(refused({Kind::HostdevInterface, a, "52-54-00-00-00-01", std::nullopt, std::nullopt}).field == "mac");
  CHECK(refused({Kind::HostdevInterface, a, "52:54:00:00:00:0g", std::nullopt, std::nullopt}).field == "mac");
  CHECK(refused({Kind::HostdevInterface, a, "01:00:5e:00:00:01", std::nullopt, std::nullopt}).field ==
        "mac");  // multicast
  CHECK(refused({Kind::HostdevInterface, a, std::nullopt, 4096, std::nullopt}).field == "vlan");
  CHECK(refused({Kind::HostdevPci, a, "52:54:00:00:00:01", std::nullopt, std::nullopt}).field == "mac");
  CHECK(refused({Kind::HostdevPci, a, std::nullopt, 5, std::nullopt}).field == "vlan");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, std::nullopt}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, ""}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, "a234567890123456"}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, "eth/0"}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, "eth 0"}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, ".."}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, "v'&<\">x"}).field == "netdev");
  CHECK(refused({Kind::Direct, a, std::nullopt, std::nullopt, "ens\xc3\xa9"}).field == "netdev");
  Error e = refused({Kind::Direct, a, std::nullopt, std::nullopt, std::string("e\x01x")});
  CHECK(e.field == "netdev");
  CHECK(e.message.find('\x01') == std::string::npos);  // the message stays printable
  // The edges that are accepted.
  CHECK(device_xml({Kind::HostdevInterface, a, std::nullopt, 4095, std::nullopt}).ok());
  CHECK(device_xml({Kind::HostdevInterface, a, std::nullopt, 0, std::nullopt}).ok());
  CHECK(device_xml({Kind::Direct, a, std::nullopt, std::nullopt, "a23456789012345"}).ok());
  CHECK(device_xml({Kind::Direct, a, std::nullopt, std::nullopt, "enp1s0f0v1.100"}).ok());
  CHECK(device_xml({Kind::Direct, a, std::nullopt, std::nullopt, "br_x-1"}).ok());
}

TEST_CASE("every generated device reads back as what was asked") {
  const PciAddress a = addr("0000:17:02.5");
  for (Kind k : {Kind::HostdevInterface, Kind::HostdevPci, Kind::Direct}) {
    DeviceXmlSpec s{k, a, std::nullopt, std::nullopt, std::nullopt};
    if (k != Kind::HostdevPci) s.mac = "52:54:00:00:00:05";
    if (k == Kind::Direct) s.netdev = "ens1f0v5";
    auto devices = parse_devices(xml(s));
    REQUIRE(devices.ok());
    REQUIRE(devices->size() == 1);
    const DomainDevice& d = devices->front();
    CHECK(d.alias == device_alias(a));
    CHECK(d.mac == s.mac);
    if (k == Kind::Direct) {
      CHECK(d.kind == DomainDevice::Kind::Direct);
      CHECK(d.netdev == "ens1f0v5");
    } else {
      CHECK(d.kind == (k == Kind::HostdevPci ? DomainDevice::Kind::HostdevPci : DomainDevice::Kind::HostdevInterface));
      CHECK(d.address == a);
    }
  }
}
