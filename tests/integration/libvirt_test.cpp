// Tier 2 with a real libvirtd: the daemon (simulated kernel, generated host) attaches and
// detaches leased devices through a libvirtd of the test's own (tests/support/libvirtd.h), over
// the REST API and the CLI, and the test reads the domain's persistent definition back from
// libvirt (its own connection, XPath over the dumpxml) to see what really happened.
//
// Domains are defined, never started: the devices of a generated host do not exist, so only
// config changes (live=false, config=true) can succeed here; live changes are refused by
// libvirt, which the test checks is answered clearly. The live detach and its wait for
// VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED are proven in virt/libvirtd_test.cpp.
//
// One libvirtd for the whole program; every test case has its own sriovd and domain names.
// Exit 77 (skipped) when libvirtd or qemu-system-x86_64 is not installed; 1 instead when CI=true.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/client.h"
#include "schemas/validator.h"
#include "tests/integration/sim_daemon.h"
#include "tests/support/libvirtd.h"

using namespace sriovd;
using namespace std::chrono_literals;
using nlohmann::json;
using sriovd::test::Host;

namespace {

test::Libvirtd* g_libvirtd = nullptr;

// bugprone-exception-escape flags the implicit moves: nlohmann::json's is noexcept but calls
// assert_invariant(), which clang-tidy cannot prove does not throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Answer {
  long status = 0;
  std::string content_type;
  json body;
};

Answer call(cli::Client& c, const std::string& method, const std::string& path, const std::string& body = {}) {
  auto r = c.request(method, path, body);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  Answer a;
  a.status = r->status;
  a.content_type = r->content_type;
  a.body = r->body.empty() ? json() : json::parse(r->body, nullptr, false);
  return a;
}

void check_schema(const char* component, const json& value) {
  auto v = schemas::api_validator().validate(component, value);
  CHECK_MESSAGE(v.ok(), component, ": ", v.ok() ? "" : v.error().message, "\n", value.dump());
}

// A problem+json answer with `status` whose detail mentions `text`.
void check_problem(const Answer& a, long status, const std::string& text) {
  CAPTURE(a.body.dump());
  CHECK(a.status == status);
  CHECK(a.content_type.find("application/problem+json") == 0);
  check_schema("Problem", a.body);
  CHECK(a.body["status"] == status);
  REQUIRE(a.body["detail"].is_string());
  const std::string detail = a.body["detail"];
  CHECK_MESSAGE(detail.find(text) != std::string::npos, "detail: ", detail, "; expected it to mention: ", text);
  CHECK(detail.find('\n') == std::string::npos);
}

std::string libvirt_error() {
  virErrorPtr e = virGetLastError();
  std::string out = e && e->message ? e->message : "unknown libvirt error";
  virResetLastError();
  return out;
}

// A domain defined (not started) for one test case and undefined at its end. Looked up by name
// on every use, so it outlives a restart of the test's libvirtd.
struct Domain {
  std::string name;
  explicit Domain(std::string n) : name(std::move(n)) {
    virDomainPtr d = virDomainDefineXML(g_libvirtd->raw(), g_libvirtd->domain_xml(name).c_str());
    REQUIRE_MESSAGE(d != nullptr, libvirt_error());
    virDomainFree(d);
  }
  ~Domain() { undefine(); }
  Domain(const Domain&) = delete;
  Domain& operator=(const Domain&) = delete;

  void undefine() {
    if (!g_libvirtd->raw()) return;
    if (virDomainPtr d = virDomainLookupByName(g_libvirtd->raw(), name.c_str())) {
      virDomainUndefine(d);
      virDomainFree(d);
    }
    virResetLastError();
  }
  // The persistent definition, as `virsh dumpxml --inactive` shows it.
  std::string xml() const {
    virDomainPtr d = virDomainLookupByName(g_libvirtd->raw(), name.c_str());
    REQUIRE_MESSAGE(d != nullptr, libvirt_error());
    char* x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    virDomainFree(d);
    REQUIRE_MESSAGE(x != nullptr, libvirt_error());
    std::string out = x;
    std::free(x);
    return out;
  }
  // Detaches `device_xml` from the persistent definition behind sriovd's back.
  void detach_behind_the_back(const std::string& device_xml) const {
    virDomainPtr d = virDomainLookupByName(g_libvirtd->raw(), name.c_str());
    REQUIRE_MESSAGE(d != nullptr, libvirt_error());
    int rc = virDomainDetachDeviceFlags(d, device_xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG);
    virDomainFree(d);
    REQUIRE_MESSAGE(rc == 0, libvirt_error());
  }
};

// XPath `expr` evaluated on `xml` as a string ("string(...)", "count(...)").
std::string xpath(const std::string& xml, const std::string& expr) {
  xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr, XML_PARSE_NONET);
  REQUIRE_MESSAGE(doc != nullptr, "not XML: ", xml);
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  xmlXPathObjectPtr obj =
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(("string(" + expr + ")").c_str()), ctx);
  std::string out;
  if (obj && obj->stringval) out = reinterpret_cast<const char*>(obj->stringval);
  const bool evaluated = obj != nullptr;
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  REQUIRE_MESSAGE(evaluated, "bad XPath: ", expr);
  return out;
}

int count(const std::string& xml, const std::string& expr) { return std::stoi(xpath(xml, "count(" + expr + ")")); }

// "[@domain='0x0000' and @bus='0x86' and @slot='0x00' and @function='0x2']": libvirt's
// formatting of a PCI source address, as a predicate.
std::string pci_predicate(const std::string& address) {
  auto p = PciAddress::parse(address);
  REQUIRE(p.has_value());
  char buf[128];
  std::snprintf(buf, sizeof buf, "[@domain='0x%04x' and @bus='0x%02x' and @slot='0x%02x' and @function='0x%x']",
                p->domain, p->bus, p->device, p->function);
  return buf;
}

// Every device element of the definition whose PCI source is `address`, or whose source dev is
// `netdev`.
int devices_using(const std::string& xml, const std::string& address, const std::string& netdev = "-") {
  return count(xml, "/domain/devices/*[source/address" + pci_predicate(address) + " or source/@dev='" + netdev + "']");
}

std::string attach_body(const std::string& domain) {
  return json({{"domain", domain}, {"live", false}, {"config", true}}).dump();
}

Answer allocate(cli::Client& c, const std::string& pool, const std::string& name, const json& vf_config = nullptr) {
  json req = {{"pool", pool}, {"consumer", {{"kind", "vm"}, {"name", name}}}};
  if (!vf_config.is_null()) req["vf_config"] = vf_config;
  auto a = call(c, "POST", "/v1/allocations", req.dump());
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  return a;
}

void create_pool(cli::Client& c, const std::string& body) {
  auto a = call(c, "POST", "/v1/pools", body);
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
}

const char* const kVfioPool = R"({"name": "cx6", "selectors": {"pf_names": ["ens3f0"]}})";

// Whether the process has a file whose name contains `name` mapped.
bool maps(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(in, line);)
    if (line.find(name) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("REST: a vfio VF, a netdev-mode VF and a whole PF attached to a defined domain and detached") {
  Host h("dual-socket", true, g_libvirtd->uri());
  cli::Client c(cli::Endpoint::resolve("", h.sock.string()));
  Domain vm("sriovd-it-kinds");
  create_pool(c, kVfioPool);
  create_pool(c, R"({"name": "x710", "mode": "netdev", "selectors": {"pf_names": ["ens2f0"]}})");
  create_pool(c, R"({"name": "nvme", "device_type": "pf", "selectors": {"addresses": ["0000:5e:00.0"]}})");

  // vfio mode: <interface type='hostdev'> with the lease's MAC and VLAN.
  auto vf = allocate(c, "cx6", "kinds-1", {{"mac", "52:54:00:10:00:01"}, {"vlan", 42}});
  const std::string vf_id = vf.body["id"], vf_addr = vf.body["address"];
  // libvirt (with what it pulls in) and libxml2 are loaded by the first attach, not at start.
  CHECK_FALSE(maps(h.daemon.pid(), "libvirt.so"));
  CHECK_FALSE(maps(h.daemon.pid(), "libxml2.so"));
  auto at = call(c, "POST", "/v1/allocations/" + vf_id + "/attach", attach_body(vm.name));
  REQUIRE_MESSAGE(at.status == 200, at.body.dump());
  CHECK(maps(h.daemon.pid(), "libvirt.so"));
  check_schema("Lease", at.body);
  CHECK(at.body["attached_to"] == json({{"domain", vm.name}, {"live", false}, {"config", true}}));
  CHECK(call(c, "GET", "/v1/allocations/" + vf_id).body["attached_to"]["domain"] == vm.name);
  std::string xml = vm.xml();
  CAPTURE(xml);
  const std::string iface = "/domain/devices/interface[@type='hostdev'][source/address" + pci_predicate(vf_addr) + "]";
  CHECK(count(xml, iface) == 1);
  CHECK(xpath(xml, iface + "/@managed") != "yes");  // libvirt writes managed='no' as no attribute
  CHECK(xpath(xml, iface + "/mac/@address") == "52:54:00:10:00:01");
  CHECK(xpath(xml, iface + "/vlan/tag/@id") == "42");
  CHECK(xpath(xml, iface + "/alias/@name").rfind("ua-sriovd-", 0) == 0);
  CHECK(devices_using(xml, vf_addr) == 1);

  // netdev mode: <interface type='direct'> in passthrough mode on the VF's own netdev; no MAC
  // asked, so libvirt makes one up (and the detach finds the device by its alias).
  auto nd = allocate(c, "x710", "kinds-2");
  const std::string nd_id = nd.body["id"], nd_addr = nd.body["address"];
  auto dev = call(c, "GET", "/v1/devices/" + nd_addr);
  REQUIRE(dev.body["netdevs"].size() == 1);
  const std::string netdev = dev.body["netdevs"][0];
  CHECK(dev.body["driver"] == "iavf");  // netdev mode keeps the host driver
  at = call(c, "POST", "/v1/allocations/" + nd_id + "/attach", attach_body(vm.name));
  REQUIRE_MESSAGE(at.status == 200, at.body.dump());
  xml = vm.xml();
  const std::string direct = "/domain/devices/interface[@type='direct'][source/@dev='" + netdev + "']";
  CHECK(count(xml, direct) == 1);
  CHECK(xpath(xml, direct + "/source/@mode") == "passthrough");
  CHECK(xpath(xml, direct + "/model/@type") == "virtio");
  CHECK(devices_using(xml, nd_addr, netdev) == 1);

  // A whole PF that is not a NIC: a PCI <hostdev>.
  auto pf = allocate(c, "nvme", "kinds-3");
  const std::string pf_id = pf.body["id"];
  CHECK(pf.body["address"] == "0000:5e:00.0");
  at = call(c, "POST", "/v1/allocations/" + pf_id + "/attach", attach_body(vm.name));
  REQUIRE_MESSAGE(at.status == 200, at.body.dump());
  xml = vm.xml();
  const std::string hostdev =
      "/domain/devices/hostdev[@mode='subsystem' and @type='pci'][source/address" + pci_predicate("0000:5e:00.0") + "]";
  CHECK(count(xml, hostdev) == 1);
  CHECK(xpath(xml, hostdev + "/@managed") == "no");
  CHECK(xpath(xml, hostdev + "/driver/@name") == "vfio");
  auto listed = call(c, "GET", "/v1/allocations");
  check_schema("LeaseList", listed.body);
  for (const auto& l : listed.body["allocations"]) CHECK(l["attached_to"]["domain"] == vm.name);

  // Detach by the recorded attachment (empty body), and naming the domain.
  auto dt = call(c, "POST", "/v1/allocations/" + vf_id + "/detach");
  REQUIRE_MESSAGE(dt.status == 200, dt.body.dump());
  check_schema("Lease", dt.body);
  CHECK(dt.body["attached_to"].is_null());
  CHECK(call(c, "GET", "/v1/allocations/" + vf_id).body["attached_to"].is_null());
  xml = vm.xml();
  CHECK(count(xml, iface) == 0);
  CHECK(devices_using(xml, vf_addr) == 0);
  CHECK(count(xml, direct) == 1);  // the others stay
  CHECK(count(xml, hostdev) == 1);
  dt = call(c, "POST", "/v1/allocations/" + nd_id + "/detach", json({{"domain", vm.name}}).dump());
  REQUIRE_MESSAGE(dt.status == 200, dt.body.dump());
  CHECK(count(vm.xml(), direct) == 0);

  // Releasing an attached lease detaches it first.
  auto released = call(c, "DELETE", "/v1/allocations/" + pf_id);
  REQUIRE_MESSAGE(released.status == 200, released.body.dump());
  check_schema("Release", released.body);
  CHECK(released.body["lease"]["attached_to"].is_null());
  CHECK(count(vm.xml(), hostdev) == 0);
  CHECK(call(c, "GET", "/v1/allocations/" + pf_id).status == 404);

  // What remains is the definition as it was before.
  xml = vm.xml();
  CHECK(count(xml, "/domain/devices/interface") == 0);
  CHECK(count(xml, "/domain/devices/hostdev") == 0);
  for (const auto& id : {vf_id, nd_id}) CHECK(call(c, "DELETE", "/v1/allocations/" + id).status == 200);
}

TEST_CASE("REST: refusals name the domain; nothing is recorded by them") {
  Host h("dual-socket", true, g_libvirtd->uri());
  cli::Client c(cli::Endpoint::resolve("", h.sock.string()));
  Domain vm("sriovd-it-refusals");
  Domain other("sriovd-it-other");
  create_pool(c, kVfioPool);
  auto lease = allocate(c, "cx6", "refusals");
  const std::string id = lease.body["id"], addr = lease.body["address"];
  const std::string attach = "/v1/allocations/" + id + "/attach", detach = "/v1/allocations/" + id + "/detach";
  auto unattached = [&] { return call(c, "GET", "/v1/allocations/" + id).body["attached_to"].is_null(); };

  // A domain libvirt does not know.
  auto unknown = call(c, "POST", attach, attach_body("sriovd-it-no-such-domain"));
  check_problem(unknown, 404, "'sriovd-it-no-such-domain'");
  CHECK(unattached());

  // The default is a live change, and the domain is not running.
  auto off = call(c, "POST", attach, json({{"domain", vm.name}}).dump());
  check_problem(off, 409, "'" + vm.name + "'");
  CHECK(off.body["detail"].get<std::string>().find("running") != std::string::npos);
  CHECK(unattached());
  CHECK(devices_using(vm.xml(), addr) == 0);

  check_problem(call(c, "POST", detach), 409, "not attached");
  check_problem(call(c, "POST", detach, json({{"domain", vm.name}}).dump()), 409, "not attached");
  check_problem(call(c, "POST", attach, R"({"live": false, "config": true})"), 422, "domain");
  check_problem(call(c, "POST", attach, json({{"domain", vm.name}, {"live", false}}).dump()), 422, "nothing to do");
  check_problem(call(c, "POST", attach, json({{"domain", vm.name}, {"colour", "red"}}).dump()), 422, "colour");
  check_problem(call(c, "POST", "/v1/allocations/no-such-lease/attach", attach_body(vm.name)), 404, "no-such-lease");

  // Attached once; a second attach, to the same domain or another, is refused before libvirt.
  REQUIRE(call(c, "POST", attach, attach_body(vm.name)).status == 200);
  check_problem(call(c, "POST", attach, attach_body(vm.name)), 409, "'" + vm.name + "'");
  check_problem(call(c, "POST", attach, attach_body(other.name)), 409, "'" + vm.name + "'");
  CHECK(devices_using(vm.xml(), addr) == 1);
  CHECK(devices_using(other.xml(), addr) == 0);

  // A detach names the domain the lease is attached to, and removes it from every definition
  // it is in.
  auto wrong = call(c, "POST", detach, json({{"domain", other.name}}).dump());
  check_problem(wrong, 409, "'" + other.name + "'");
  CHECK(wrong.body["field"] == "domain");
  check_problem(call(c, "POST", detach, R"({"config": false, "live": true})"), 422, "persistent definition");
  CHECK(devices_using(vm.xml(), addr) == 1);
  CHECK_FALSE(unattached());
  REQUIRE(call(c, "POST", detach).status == 200);
  CHECK(devices_using(vm.xml(), addr) == 0);
  check_problem(call(c, "POST", detach), 409, "not attached");

  // Detached behind sriovd's back (virsh detach-device --config): the detach finds nothing to
  // remove and clears the record.
  REQUIRE(call(c, "POST", attach, attach_body(vm.name)).status == 200);
  vm.detach_behind_the_back(lease.body["libvirt_xml"]);
  CHECK(devices_using(vm.xml(), addr) == 0);
  auto gone = call(c, "POST", detach);
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  CHECK(unattached());

  // The domain undefined while the lease is attached to it: the lease can still be released.
  REQUIRE(call(c, "POST", attach, attach_body(other.name)).status == 200);
  other.undefine();
  auto released = call(c, "DELETE", "/v1/allocations/" + id);
  CHECK_MESSAGE(released.status == 200, released.body.dump());
  CHECK(call(c, "GET", "/v1/allocations/" + id).status == 404);
}

TEST_CASE("CLI: attach ID DOMAIN and detach ID, with one-line errors") {
  Host h("dual-socket", true, g_libvirtd->uri());
  cli::Client c(cli::Endpoint::resolve("", h.sock.string()));
  Domain vm("sriovd-it-cli");
  create_pool(c, kVfioPool);
  auto lease = allocate(c, "cx6", "cli", {{"mac", "52:54:00:10:00:07"}});
  const std::string id = lease.body["id"], addr = lease.body["address"];
  auto one_line_error = [](const test::RunResult& r, const std::string& text) {
    CAPTURE(r.out);
    CAPTURE(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("sriovd-cli: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(text) != std::string::npos);
  };

  // Without flags the change is live, and the domain is off.
  one_line_error(h.cli({"attach", id, vm.name}), "'" + vm.name + "'");
  one_line_error(h.cli({"attach", id, "sriovd-it-cli-nope", "--config", "--no-live"}), "'sriovd-it-cli-nope'");
  one_line_error(h.cli({"detach", id}), "not attached");
  CHECK(devices_using(vm.xml(), addr) == 0);

  auto at = h.cli({"attach", id, vm.name, "--config", "--no-live"});
  REQUIRE_MESSAGE(at.exit_code == 0, at.err);
  CHECK(at.out.find(vm.name) != std::string::npos);  // the ATTACHED column
  CHECK(at.out.find("<interface type='hostdev'") != std::string::npos);
  std::string xml = vm.xml();
  CHECK(devices_using(xml, addr) == 1);
  CHECK(xpath(xml, "/domain/devices/interface[source/address" + pci_predicate(addr) + "]/mac/@address") ==
        "52:54:00:10:00:07");
  one_line_error(h.cli({"attach", id, vm.name, "--config", "--no-live"}), "already");
  auto leases = h.cli({"leases"});
  CHECK(leases.out.find(vm.name) != std::string::npos);

  auto dt = h.cli({"--json", "detach", id});
  REQUIRE_MESSAGE(dt.exit_code == 0, dt.err);
  CHECK(json::parse(dt.out)["attached_to"].is_null());
  CHECK(devices_using(vm.xml(), addr) == 0);
  one_line_error(h.cli({"detach", id}), "not attached");
  one_line_error(h.cli({"attach", "no-such-lease", vm.name, "--config"}), "no-such-lease");
}

TEST_CASE("libvirtd stopped and started again: 503 meanwhile, the rest of the API unaffected") {
  Host h("dual-socket", true, g_libvirtd->uri());
  cli::Client c(cli::Endpoint::resolve("", h.sock.string()));
  Domain vm("sriovd-it-restart");
  create_pool(c, kVfioPool);
  const std::string a = allocate(c, "cx6", "restart-1").body["id"];
  const std::string b = allocate(c, "cx6", "restart-2").body["id"];
  REQUIRE(call(c, "POST", "/v1/allocations/" + a + "/attach", attach_body(vm.name)).status == 200);

  g_libvirtd->kill_daemon();
  auto down = call(c, "POST", "/v1/allocations/" + b + "/attach", attach_body(vm.name));
  check_problem(down, 503, g_libvirtd->uri());
  check_problem(call(c, "POST", "/v1/allocations/" + a + "/detach"), 503, "libvirt");
  CHECK(call(c, "GET", "/v1/allocations/" + a).body["attached_to"]["domain"] == vm.name);
  CHECK(call(c, "GET", "/v1/allocations/" + b).body["attached_to"].is_null());
  CHECK(call(c, "GET", "/readyz").status == 200);
  auto other = allocate(c, "cx6", "restart-3");
  CHECK(call(c, "DELETE", "/v1/allocations/" + other.body["id"].get<std::string>()).status == 200);

  std::string why = g_libvirtd->start(30s);
  REQUIRE_MESSAGE(why.empty(), why);
  auto up = call(c, "POST", "/v1/allocations/" + a + "/detach");
  CHECK_MESSAGE(up.status == 200, up.body.dump());
  CHECK(call(c, "POST", "/v1/allocations/" + b + "/attach", attach_body(vm.name)).status == 200);
  CHECK(devices_using(vm.xml(), call(c, "GET", "/v1/allocations/" + b).body["address"]) == 1);
  CHECK(h.daemon.stop() == 0);
}

int main(int argc, char** argv) {
  test::Libvirtd daemon;
  if (int rc = test::prepare_libvirt_test("libvirt_test", daemon.missing()); rc >= 0) return rc;
  if (std::string why = daemon.start(30s); !why.empty()) {
    std::fprintf(stderr, "libvirt_test: could not start libvirtd: %s\n", why.c_str());
    return 1;
  }
  g_libvirtd = &daemon;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  if (rc != 0) std::fprintf(stderr, "--- libvirtd log ---\n%s\n", daemon.log().c_str());
  g_libvirtd = nullptr;
  daemon.stop();
  return rc;
}
