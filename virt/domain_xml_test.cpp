// Reading devices back from libvirt domain XML (as libvirt formats it) and from single devices.
#include "virt/domain_xml.h"

#include <doctest/doctest.h>

using namespace sriovd;
using namespace sriovd::virt;
using Kind = DomainDevice::Kind;

namespace {

// The error message of a failed Result, for assertion messages (evaluated also on success).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

// The shape `virsh dumpxml --inactive` printed for a domain with all three kinds attached.
const char* kDomain = R"(<domain type='qemu'>
  <name>vm1</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pci-root'/>
    <interface type='direct'>
      <mac address='52:54:00:11:22:33'/>
      <source dev='eth9' mode='passthrough'/>
      <model type='rtl8139'/>
      <alias name='ua-sriovd-0000-17-00-2'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </interface>
    <interface type='hostdev'>
      <mac address='52:54:00:11:22:44'/>
      <driver name='vfio'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x17' slot='0x00' function='0x3'/>
      </source>
      <vlan><tag id='42'/></vlan>
      <alias name='ua-sriovd-0000-17-00-3'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x17' slot='0x00' function='0x1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb'>
      <source><vendor id='0x1234'/><product id='0xbeef'/></source>
    </hostdev>
    <interface type='network'>
      <mac address='52:54:00:AA:BB:CC'/>
      <source network='default'/>
    </interface>
    <input type='tablet' bus='usb'><alias name='ua-tablet'/></input>
  </devices>
</domain>)";

}  // namespace

TEST_CASE("a domain's devices with their sources and aliases") {
  auto r = parse_devices(kDomain);
  REQUIRE_MESSAGE(r.ok(), why(r));
  const auto& d = *r;
  REQUIRE(d.size() == 8);
  CHECK(d[0].element == "emulator");
  CHECK(d[0].kind == Kind::Other);

  CHECK(d[2].kind == Kind::Direct);
  CHECK(d[2].netdev == "eth9");
  CHECK(d[2].mac == "52:54:00:11:22:33");
  CHECK(d[2].alias == "ua-sriovd-0000-17-00-2");
  CHECK_FALSE(d[2].address);  // the guest-side <address> is not the source

  CHECK(d[3].kind == Kind::HostdevInterface);
  CHECK(d[3].address == PciAddress{0, 0x17, 0, 3});
  CHECK(d[3].alias == "ua-sriovd-0000-17-00-3");

  CHECK(d[4].kind == Kind::HostdevPci);
  CHECK(d[4].address == PciAddress{0, 0x17, 0, 1});
  CHECK_FALSE(d[4].alias);

  CHECK(d[5].kind == Kind::Other);  // a USB hostdev is not a PCI one
  CHECK(d[6].kind == Kind::Other);
  CHECK(d[6].mac == "52:54:00:aa:bb:cc");
  CHECK(d[7].element == "input");
  CHECK(d[7].alias == "ua-tablet");
}

TEST_CASE("a single device element") {
  auto r = parse_devices(
      "<hostdev mode='subsystem' type='pci'><source><address domain='1' bus='23' slot='0x1f' "
      "function='7'/></source></hostdev>");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 1);
  CHECK(r->front().address == PciAddress{1, 23, 0x1f, 7});
}

TEST_CASE("a domain without devices has none") {
  auto r = parse_devices("<domain type='kvm'><name>x</name></domain>");
  REQUIRE(r.ok());
  CHECK(r->empty());
}

TEST_CASE("malformed XML and impossible addresses are bad requests") {
  auto r = parse_devices("<hostdev mode='subsystem' type='pci'><source>");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::bad_request);
  CHECK(r.error().message.find("XML") == 0);
  CHECK_FALSE(parse_devices("").ok());
  CHECK_FALSE(parse_devices("not xml").ok());

  auto bad = [](const char* attrs) {
    return parse_devices(std::string("<hostdev mode='subsystem' type='pci'><source><address ") + attrs +
                         "/></source></hostdev>");
  };
  CHECK_FALSE(bad("bus='0x100'").ok());
  CHECK_FALSE(bad("slot='0x20'").ok());
  CHECK_FALSE(bad("function='8'").ok());
  CHECK_FALSE(bad("bus='-1'").ok());
  CHECK_FALSE(bad("bus='0x1g'").ok());
  CHECK_FALSE(bad("bus=''").ok());
  auto e = bad("slot='0x20'");
  CHECK(e.error().message.find("slot") != std::string::npos);
}

TEST_CASE("entities are not expanded and nothing is fetched") {
  // An external entity would read a file if substitution were on; it must stay unexpanded.
  auto r = parse_devices(
      "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/hostname'>]>"
      "<interface type='direct'><source dev='&e;' mode='passthrough'/></interface>");
  if (r.ok()) {
    REQUIRE(r->size() == 1);
    CHECK((!r->front().netdev || r->front().netdev->find('\n') == std::string::npos));
  }
}

TEST_CASE("same_source compares host resources") {
  DomainDevice a{Kind::HostdevPci, "hostdev", PciAddress{0, 1, 2, 3}, {}, {}, {}};
  DomainDevice b = a;
  b.alias = "ua-x";
  CHECK(same_source(a, b));
  b.kind = Kind::HostdevInterface;
  CHECK_FALSE(same_source(a, b));
  DomainDevice m{Kind::Direct, "interface", {}, "eth1", {}, {}};
  DomainDevice n = m;
  CHECK(same_source(m, n));
  n.netdev = "eth2";
  CHECK_FALSE(same_source(m, n));
  DomainDevice o{Kind::Other, "input", {}, {}, {}, {}};
  CHECK_FALSE(same_source(o, o));
}
