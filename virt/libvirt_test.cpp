// Libvirt against libvirt's in-process test driver (test:///): connection errors, lookups,
// libvirt errors turned into Error values, and domains_using over running and defined domains.
// The test driver (libvirt 9) implements no device attach/detach; those paths are tested with a
// real libvirtd in libvirtd_test.cpp.
#include "virt/libvirt.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "virt/device_xml.h"

using namespace sriovd;
using namespace sriovd::virt;
using namespace std::chrono_literals;

namespace {

// The error message of a failed Result, for assertion messages (evaluated also on success).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

// A test-driver host of our own (a fresh private instance per connection): one running domain
// with a PCI hostdev, one defined-only domain with a hostdev interface and a direct interface,
// one running domain using the same PCI function in its persistent definition only is not
// expressible here (the test driver has one definition per domain).
const char* kNode = R"(<node>
  <domain type='test'>
    <name>running-vm</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <hostdev mode='subsystem' type='pci' managed='no'>
        <source><address domain='0x0000' bus='0x17' slot='0x00' function='0x1'/></source>
        <alias name='ua-sriovd-0000-17-00-1'/>
      </hostdev>
    </devices>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>defined-vm</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <interface type='hostdev'>
        <source><address type='pci' domain='0x0000' bus='0x17' slot='0x00' function='0x2'/></source>
      </interface>
      <interface type='direct'><source dev='enp1s0v3' mode='passthrough'/></interface>
      <hostdev mode='subsystem' type='pci' managed='no'>
        <source><address domain='0x0000' bus='0x17' slot='0x00' function='0x1'/></source>
      </hostdev>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
</node>
)";

struct TestHost {
  test::TempDir dir{"sriovd-virt"};
  std::string uri;
  TestHost() {
    std::ofstream(dir / "node.xml") << kNode;
    uri = "test://" + (dir / "node.xml").string();
  }
};

std::unique_ptr<Libvirt> open(const std::string& uri) {
  auto lv = Libvirt::connect(uri);
  REQUIRE_MESSAGE(lv.ok(), why(lv));
  return std::move(*lv);
}

}  // namespace

TEST_CASE("connect opens the test driver and reads a domain") {
  auto lv = open("test:///default");
  CHECK(lv->uri() == "test:///default");
  auto x = lv->domain_xml("test");
  REQUIRE(x.ok());
  CHECK(x->find("<name>test</name>") != std::string::npos);
  // By UUID too.
  auto by_uuid = lv->domain_xml("6695eb01-f6a4-8304-79aa-97f2502e193f");
  REQUIRE(by_uuid.ok());
  CHECK(by_uuid->find("<name>test</name>") != std::string::npos);
}

TEST_CASE("a URI that cannot be opened is libvirt_unreachable") {
  for (std::string uri : {"bogus:///nothing", "qemu+unix:///system?socket=/nonexistent/sriovd/libvirt-sock",
                          "test:///nonexistent/sriovd/node.xml"}) {
    CAPTURE(uri);
    auto lv = Libvirt::connect(uri);
    REQUIRE_FALSE(lv.ok());
    CHECK(lv.error().code == ErrorCode::unavailable);
    CHECK(lv.error().reason == "libvirt_unreachable");
    CHECK(lv.error().errnum == 0);
    CHECK(lv.error().message.find(uri) != std::string::npos);
  }
}

TEST_CASE("a deferred connection connects at first use and retries after a failure") {
  auto bad = Libvirt::deferred("bogus:///nothing");
  for (int i = 0; i < 2; ++i) {
    auto r = bad->domains_using(PciAddress{0, 1, 0, 0});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == "libvirt_unreachable");
  }
  auto good = Libvirt::deferred("test:///default");
  CHECK(good->uri() == "test:///default");
  CHECK(good->domain_xml("test").ok());
}

TEST_CASE("the in-use query does not retry a failed connect within the recheck interval; the other calls do") {
  // The node file is missing at first, so the test driver cannot open the URI.
  test::TempDir dir{"sriovd-virt"};
  const std::string uri = "test://" + (dir / "node.xml").string();
  const PciAddress vf{0, 0x17, 0, 1};
  auto patient = Libvirt::deferred(uri, 1h);
  auto eager = Libvirt::deferred(uri, 0ms);
  for (auto* lv : {patient.get(), eager.get()}) {
    auto r = lv->domains_using(vf);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == "libvirt_unreachable");
  }
  std::ofstream(dir / "node.xml") << kNode;

  // Within the hour: the earlier failure again, without a connect.
  auto again = patient->domains_using(vf);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().reason == "libvirt_unreachable");
  CHECK(again.error().message.find(uri) != std::string::npos);
  // No interval: it connects and answers.
  auto fresh = eager->domains_using(vf);
  REQUIRE_MESSAGE(fresh.ok(), why(fresh));
  CHECK(fresh->size() == 2);

  // A call that acts (here a read of a definition) always tries, and once connected the query
  // uses that connection.
  CHECK(patient->domain_xml("running-vm").ok());
  auto now = patient->domains_using(vf);
  REQUIRE_MESSAGE(now.ok(), why(now));
  CHECK(now->size() == 2);
}

TEST_CASE("an unknown domain is domain_not_found for every operation") {
  auto lv = open("test:///default");
  auto spec = device_xml({DeviceXmlSpec::Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, {}, {}, {}});
  REQUIRE(spec.ok());
  auto check = [](const Error& e) {
    CHECK(e.code == ErrorCode::not_found);
    CHECK(e.reason == "domain_not_found");
    CHECK(e.message.find("no-such-vm") != std::string::npos);
  };
  auto a = lv->attach("no-such-vm", *spec, {});
  REQUIRE_FALSE(a.ok());
  check(a.error());
  auto d = lv->detach("no-such-vm", *spec, {.live = false, .config = true}, 1s);
  REQUIRE_FALSE(d.ok());
  check(d.error());
  auto x = lv->domain_xml("no-such-vm");
  REQUIRE_FALSE(x.ok());
  check(x.error());
}

TEST_CASE("neither live nor config is invalid_flags") {
  auto lv = open("test:///default");
  auto a = lv->attach("test", "<hostdev/>", {.live = false, .config = false});
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().reason == "invalid_flags");
  auto d = lv->detach("test", "<hostdev/>", {.live = false, .config = false}, 1s);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().reason == "invalid_flags");
}

TEST_CASE("a live detach of malformed XML or of a device the domain lacks fails before libvirt is asked") {
  auto lv = open("test:///default");
  auto bad = lv->detach("test", "<hostdev mode='subsystem'", {}, 1s);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::invalid);
  CHECK(bad.error().reason == "invalid_xml");
  // Without an alias, the device is looked up in the live definition by its source.
  auto missing = lv->detach("test",
                            "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x17' "
                            "slot='0' function='1'/></source></hostdev>",
                            {}, 1s);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::not_found);
  CHECK(missing.error().reason == "device_not_attached");
}

TEST_CASE("the test driver cannot attach: unsupported, with libvirt's message") {
  TestHost host;
  auto lv = open(host.uri);
  auto spec = device_xml({DeviceXmlSpec::Kind::HostdevPci, PciAddress{0, 0x18, 0, 0}, {}, {}, {}});
  REQUIRE(spec.ok());
  auto a = lv->attach("running-vm", *spec, {});
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().code == ErrorCode::unsupported);
  CHECK(a.error().reason == "unsupported");
  CHECK(a.error().message.find("virDomainAttachDeviceFlags") != std::string::npos);
  // A live detach of a device that is there (found by its alias) reaches libvirt and is refused
  // the same way, after the removal listeners were registered and are removed again.
  auto d = lv->detach("running-vm",
                      *device_xml({DeviceXmlSpec::Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, {}, {}, {}}), {}, 1s);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().reason == "unsupported");
}

TEST_CASE("domains_using finds running and defined domains by PCI source and by netdev") {
  TestHost host;
  auto lv = open(host.uri);

  auto f1 = lv->domains_using(PciAddress{0, 0x17, 0, 1});
  REQUIRE(f1.ok());
  REQUIRE(f1->size() == 2);
  CHECK((*f1)[0] == DomainUse{"defined-vm", false, false, true});
  CHECK((*f1)[1] == DomainUse{"running-vm", true, true, true});

  auto f2 = lv->domains_using(PciAddress{0, 0x17, 0, 2});
  REQUIRE(f2.ok());
  REQUIRE(f2->size() == 1);
  CHECK((*f2)[0] == DomainUse{"defined-vm", false, false, true});

  // A direct interface is found through the function's netdevs only.
  auto f3 = lv->domains_using(PciAddress{0, 0x17, 0, 3});
  REQUIRE(f3.ok());
  CHECK(f3->empty());
  auto f4 = lv->domains_using(PciAddress{0, 0x17, 0, 3}, {"enp1s0v3"});
  REQUIRE(f4.ok());
  REQUIRE(f4->size() == 1);
  CHECK((*f4)[0].domain == "defined-vm");

  auto none = lv->domains_using(PciAddress{0, 0x99, 0, 0}, {"eth0"});
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("concurrent calls on one connection") {
  TestHost host;
  auto lv = open(host.uri);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> found{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = lv->domains_using(PciAddress{0, 0x17, 0, 1});
        if (r.ok() && r->size() == 2) ++found;
        auto e = lv->domain_xml("no-such-vm");
        if (!e.ok() && e.error().reason == "domain_not_found") ++found;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(found == 4 * 50 * 2);
}
