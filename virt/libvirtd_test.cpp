// Libvirt against a real libvirtd started by this test, entirely inside a temp dir.
//
// The daemon (tests/support/libvirtd.h) is an unprivileged session libvirtd with its socket,
// state and config in a temp dir; the test connects to it with Libvirt::connect once.
//
// What it proves, on libvirt 9 with QEMU under TCG (no KVM here):
// - config-only attach and detach of each kind of device sriovd generates, on a defined domain,
//   with the device checked in the persistent definition; domains_using on it;
// - libvirt's refusals turned into our errors (unknown domain, malformed XML, live change on a
//   domain that is off, detaching what is not there);
// - on a running (paused) domain: a live detach that returns on VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED
//   (a USB input device, which QEMU removes without the guest), and one that ends in
//   detach_timeout (a PCI NIC, whose removal waits for a guest that never acts).
// A live attach of a PCI hostdev cannot work here (no such device, no VFIO, an unprivileged
// daemon): the test records that libvirt refuses it with a clear error.
//
// Exit 77 (skipped) when libvirtd or qemu-system-x86_64 is not installed; 1 instead when CI=true.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/libvirtd.h"
#include "virt/device_xml.h"
#include "virt/domain_xml.h"
#include "virt/libvirt.h"

using namespace sriovd;
using namespace sriovd::virt;
using namespace std::chrono_literals;
using Kind = DeviceXmlSpec::Kind;

namespace {

// The error message of a failed Result, for assertion messages (evaluated also on success).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

test::Libvirtd* g_daemon = nullptr;
// The connection under test, opened once: after a daemon restart it must reconnect by itself.
Libvirt* g_lv = nullptr;

// A QEMU domain defined for one test case, destroyed and undefined at its end.
struct TestDomain {
  std::string name;
  virDomainPtr dom = nullptr;
  explicit TestDomain(std::string n) : name(std::move(n)) {
    std::string xml = g_daemon->domain_xml(name);
    dom = virDomainDefineXML(g_daemon->raw(), xml.c_str());
    virErrorPtr e = virGetLastError();
    REQUIRE_MESSAGE(dom != nullptr, (e && e->message ? e->message : "define failed"));
  }
  ~TestDomain() {
    if (virDomainIsActive(dom) == 1) virDomainDestroy(dom);
    virDomainUndefine(dom);
    virDomainFree(dom);
    virResetLastError();
  }
  void start_paused() {
    int rc = virDomainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED);
    virErrorPtr e = virGetLastError();
    REQUIRE_MESSAGE(rc == 0, (e && e->message ? e->message : "start failed"));
  }
  std::vector<DomainDevice> devices(bool inactive) {
    auto x = g_lv->domain_xml(name, inactive);
    REQUIRE_MESSAGE(x.ok(), why(x));
    auto d = parse_devices(*x);
    REQUIRE_MESSAGE(d.ok(), why(d));
    return *d;
  }
  bool has_alias(const std::string& alias, bool inactive) {
    for (const auto& d : devices(inactive)) {
      if (d.alias == alias) return true;
    }
    return false;
  }
};

std::string gen(const DeviceXmlSpec& s) {
  auto x = device_xml(s);
  REQUIRE_MESSAGE(x.ok(), why(x));
  return *x;
}

const Libvirt::Flags kConfig{.live = false, .config = true};
const Libvirt::Flags kLive{.live = true, .config = false};

}  // namespace

TEST_CASE("config attach and detach of every kind sriovd generates, on a defined domain") {
  TestDomain vm("sriovd-config");
  Libvirt& lv = *g_lv;
  const std::vector<DeviceXmlSpec> specs = {
      {Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt},
      {Kind::HostdevInterface, PciAddress{0, 0x17, 0, 3}, "52:54:00:11:22:44", 42, std::nullopt},
      {Kind::Direct, PciAddress{0, 0x17, 0, 2}, "52:54:00:11:22:33", std::nullopt, "ens1f0v2"},
  };
  for (const auto& s : specs) {
    const std::string xml = gen(s);
    const std::string alias = device_alias(s.address);
    CAPTURE(xml);
    auto a = lv.attach(vm.name, xml, kConfig);
    REQUIRE_MESSAGE(a.ok(), why(a));

    // In the persistent definition, with our alias and the source asked for.
    auto want = parse_devices(xml);
    REQUIRE(want.ok());
    bool found = false;
    for (const auto& d : vm.devices(true)) {
      if (d.alias == alias) {
        found = true;
        CHECK(same_source(d, want->front()));
        CHECK(d.mac == s.mac);
      }
    }
    CHECK(found);
    std::vector<std::string> netdevs;
    if (s.netdev) netdevs.push_back(*s.netdev);
    auto users = lv.domains_using(s.address, netdevs);
    REQUIRE(users.ok());
    REQUIRE(users->size() == 1);
    CHECK(users->front() == DomainUse{vm.name, false, false, true});

    auto d = lv.detach(vm.name, xml, kConfig, 5s);
    REQUIRE_MESSAGE(d.ok(), why(d));
    CHECK_FALSE(vm.has_alias(alias, true));
    users = lv.domains_using(s.address, netdevs);
    REQUIRE(users.ok());
    CHECK(users->empty());
  }
}

TEST_CASE("a real daemon's refusals become our errors") {
  TestDomain vm("sriovd-errors");
  Libvirt& lv = *g_lv;
  const std::string xml = gen({Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt});

  auto unknown = lv.attach("sriovd-no-such-domain", xml, kConfig);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::not_found);
  CHECK(unknown.error().reason == "domain_not_found");

  auto malformed = lv.attach(vm.name, "<hostdev mode='subsystem' type='pci'><source>", kConfig);
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().code == ErrorCode::invalid);
  CHECK(malformed.error().reason == "invalid_xml");
  MESSAGE("malformed XML: " << malformed.error().message);

  auto off = lv.attach(vm.name, xml, kLive);
  REQUIRE_FALSE(off.ok());
  CHECK(off.error().code == ErrorCode::conflict);
  CHECK(off.error().reason == "domain_not_running");
  MESSAGE("live attach to a domain that is off: " << off.error().message);

  auto absent = lv.detach(vm.name, xml, kConfig, 5s);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().code == ErrorCode::not_found);
  CHECK(absent.error().reason == "device_not_attached");
  MESSAGE("config detach of an absent device: " << absent.error().message);

  CHECK(unknown.error().errnum == 0);
  CHECK(malformed.error().errnum == 0);
}

TEST_CASE("live detach waits for DEVICE_REMOVED, or times out while the guest holds the device") {
  TestDomain vm("sriovd-live");
  vm.start_paused();
  Libvirt& lv = *g_lv;

  // A PCI hostdev cannot be attached live here: no such host device, no VFIO.
  const std::string hostdev =
      gen({Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt});
  auto hd = lv.attach(vm.name, hostdev, kLive);
  CHECK_FALSE(hd.ok());
  if (!hd.ok())
    MESSAGE("live hostdev attach: " << std::string(to_string(hd.error().code)) << "/" << hd.error().reason << ": "
                                    << hd.error().message);

  // A persistent-only hostdev on a running domain: in use at next start, not now.
  auto cfg = lv.attach(vm.name, hostdev, kConfig);
  REQUIRE_MESSAGE(cfg.ok(), why(cfg));
  auto users = lv.domains_using(PciAddress{0, 0x17, 0, 1});
  REQUIRE(users.ok());
  REQUIRE(users->size() == 1);
  CHECK(users->front() == DomainUse{vm.name, true, false, true});

  // A USB tablet: QEMU unplugs USB devices at once, without the guest, and libvirt then emits
  // DEVICE_REMOVED with the alias.
  const std::string tablet = "<input type='tablet' bus='usb'><alias name='ua-sriovd-test-tablet'/></input>";
  auto at = lv.attach(vm.name, tablet, kLive);
  REQUIRE_MESSAGE(at.ok(), why(at));
  CHECK(vm.has_alias("ua-sriovd-test-tablet", false));
  auto t0 = std::chrono::steady_clock::now();
  auto dt = lv.detach(vm.name, tablet, kLive, 20s);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_MESSAGE(dt.ok(), why(dt));
  CHECK_FALSE(vm.has_alias("ua-sriovd-test-tablet", false));
  CHECK(took < 10s);
  // Gone means gone: a second live detach is refused by libvirt.
  auto again = lv.detach(vm.name, tablet, kLive, 5s);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().reason == "device_not_attached");
  MESSAGE("live detach of a device no longer there: " << again.error().message);
  MESSAGE("live detach with DEVICE_REMOVED took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                                  << " ms");

  // A PCI NIC: its removal waits for the (paused, OS-less) guest to eject it, which never
  // happens. Detached by MAC without an alias in the XML: the alias comes from the live
  // definition.
  const std::string nic =
      "<interface type='user'><mac address='52:54:00:aa:bb:cc'/><model type='e1000'/>"
      "<alias name='ua-sriovd-test-nic'/></interface>";
  auto an = lv.attach(vm.name, nic, kLive);
  REQUIRE_MESSAGE(an.ok(), why(an));
  t0 = std::chrono::steady_clock::now();
  auto dn = lv.detach(vm.name, "<interface type='user'><mac address='52:54:00:AA:BB:CC'/></interface>", kLive, 1500ms);
  took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(dn.ok());
  CHECK(dn.error().reason == "detach_timeout");
  CHECK(dn.error().code == ErrorCode::conflict);
  CHECK(dn.error().message.find("ua-sriovd-test-nic") != std::string::npos);
  CHECK(took >= 1500ms);
  CHECK(vm.has_alias("ua-sriovd-test-nic", false));  // still there, removal pending
  MESSAGE("detach_timeout after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                  << " ms: " << dn.error().message);
}

TEST_CASE("a restarted daemon is reconnected to; while it is down, libvirt_unreachable") {
  TestDomain vm("sriovd-restart");
  Libvirt& lv = *g_lv;
  REQUIRE(lv.domain_xml(vm.name).ok());
  g_daemon->kill_daemon();
  auto down = lv.domain_xml(vm.name);
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().code == ErrorCode::unavailable);
  CHECK(down.error().reason == "libvirt_unreachable");
  MESSAGE("daemon down: " << down.error().message);
  std::string problem = g_daemon->start(30s);
  REQUIRE_MESSAGE(problem.empty(), problem);
  auto up = lv.domain_xml(vm.name);
  REQUIRE_MESSAGE(up.ok(), why(up));
  CHECK(up->find("sriovd-restart") != std::string::npos);
}

int main(int argc, char** argv) {
  test::Libvirtd daemon;
  if (int rc = test::prepare_libvirt_test("virt_libvirtd_test", daemon.missing()); rc >= 0) return rc;
  if (std::string why = daemon.start(30s); !why.empty()) {
    std::fprintf(stderr, "virt_libvirtd_test: could not start libvirtd: %s\n", why.c_str());
    return 1;
  }
  auto lv = Libvirt::connect(daemon.uri());
  if (!lv) {
    std::fprintf(stderr, "virt_libvirtd_test: %s\n", lv.error().message.c_str());
    return 1;
  }
  g_daemon = &daemon;
  g_lv = lv->get();
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  if (rc != 0) std::fprintf(stderr, "--- libvirtd log ---\n%s\n", daemon.log().c_str());
  g_daemon = nullptr;
  g_lv = nullptr;
  daemon.stop();
  return rc;
}
