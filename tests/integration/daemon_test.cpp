// Tier 2: the real sriovd daemon on a generated host, over a real unix socket and TCP, driven
// by the real sriovd-cli.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "schemas/validator.h"
#include "tests/fixtures/profiles.h"
#include "tests/integration/sim_daemon.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sriovd::test::Host;

namespace {

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// The process's thread count, from /proc.
int threads_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace

TEST_CASE("the CLI shows host, devices and groups over the unix socket") {
  Host h;
  struct stat st;
  REQUIRE(::stat(h.sock.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);

  auto host = h.cli({"host"});
  CHECK(host.exit_code == 0);
  CHECK(host.out.find("passthrough ready") != std::string::npos);
  CHECK(host.out.find(std::to_string(h.manifest.functions.size()) + " functions") != std::string::npos);

  auto devices = h.cli({"devices"});
  CHECK(devices.exit_code == 0);
  CHECK(lines(devices.out) == h.manifest.functions.size() + 1);  // + header
  CHECK(devices.out.rfind("ADDRESS", 0) == 0);
  for (const auto& f : h.manifest.functions) CHECK(devices.out.find(f.address.to_string()) != std::string::npos);

  auto groups = h.cli({"groups"});
  CHECK(groups.exit_code == 0);
  CHECK(groups.out.find("VIABLE") != std::string::npos);
  CHECK(groups.out.find("bound to host drivers") != std::string::npos);  // the GPU + audio group

  const auto& vf = *std::find_if(h.manifest.functions.begin(), h.manifest.functions.end(),
                                 [](const auto& f) { return f.physfn.has_value(); });
  auto one = h.cli({"device", vf.address.to_string()});
  CHECK(one.exit_code == 0);
  CHECK(one.out.find("physfn") != std::string::npos);
  CHECK(one.out.find(vf.physfn->to_string()) != std::string::npos);

  auto grp = h.cli({"group", std::to_string(*vf.iommu_group)});
  CHECK(grp.exit_code == 0);
  CHECK(grp.out.find(vf.address.to_string()) != std::string::npos);
}

TEST_CASE("--json prints the API's objects; filters reach the server") {
  Host h;
  auto r = h.cli({"--json", "devices", "--class-id", "02", "--numa-node", "0"});
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  REQUIRE(schemas::api_validator().validate("DeviceList", j).ok());
  size_t expected = 0;
  for (const auto& f : h.manifest.functions)
    if (f.class_code >> 16 == 0x02 && f.numa_node == 0) ++expected;
  CHECK(j["count"] == expected);
  for (const auto& d : j["devices"]) CHECK(d["numa_node"] == 0);

  auto host = h.cli({"--json", "host"});
  REQUIRE(host.exit_code == 0);
  CHECK(schemas::api_validator().validate("Host", json::parse(host.out)).ok());
}

TEST_CASE("errors: one line on stderr and a non-zero exit") {
  Host h;
  auto bad = h.cli({"device", "17-00-0"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK(lines(bad.err) == 1);
  CHECK(bad.err.find("'17-00-0' is not a PCI address") != std::string::npos);

  auto unknown = h.cli({"device", "0000:ee:1f.7"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("no PCI device 0000:ee:1f.7") != std::string::npos);

  auto filter = h.cli({"devices", "--vendor-id", "intel"});
  CHECK(filter.exit_code == 1);
  CHECK(filter.err.find("vendor_id") != std::string::npos);

  auto usage = h.cli({"device"});
  CHECK(usage.exit_code == 2);

  auto nowhere = test::run({SRIOVD_CLI_BIN, "--socket", (h.dir / "absent.sock").string(), "host"});
  CHECK(nowhere.exit_code == 3);
  CHECK(lines(nowhere.err) == 1);
  CHECK(nowhere.err.find("cannot reach sriovd at unix:") != std::string::npos);
}

TEST_CASE("TCP with --url serves the same answers; SIGTERM stops cleanly and removes the socket") {
  Host h;
  auto tcp = test::run({SRIOVD_CLI_BIN, "--url", "http://127.0.0.1:" + std::to_string(h.port), "--json", "devices"});
  REQUIRE(tcp.exit_code == 0);
  auto unix_ = h.cli({"--json", "devices"});
  CHECK(json::parse(tcp.out) == json::parse(unix_.out));
  CHECK(h.daemon.stop() == 0);
  CHECK_FALSE(fs::exists(h.sock));
}

TEST_CASE("workers start as connections need them: an idle daemon holds none of its 64") {
  Host h;
  const int idle = threads_of(h.daemon.pid());
  // The accept loops, the watches, the main thread; not the workers of two listeners x 64.
  CHECK(idle > 0);
  CHECK(idle < 16);
  // Each open keep-alive connection holds a worker.
  std::vector<test::RawConnection> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(test::RawConnection::unix_socket(h.sock.string()));
    REQUIRE(held.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(test::status_of(held.back().read_response(5s)) == 200);
  }
  CHECK(threads_of(h.daemon.pid()) == idle + 5);
  CHECK(h.daemon.stop() == 0);
}

TEST_CASE("start-up errors are one clear line and exit 1 (78 for a configuration that cannot work)") {
  test::TempDir dir;
  auto r = test::run(
      {SRIOVD_BIN, "serve", "--sysfs-root", dir.path().string(), "--listen", "unix:" + (dir / "s.sock").string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not a sysfs tree") != std::string::npos);

  REQUIRE(fixtures::write_profile("minimal", dir / "sys").ok());
  auto bad_listen = test::run({SRIOVD_BIN, "serve", "--sysfs-root", (dir / "sys").string(), "--listen", "tcp:nowhere"});
  CHECK(bad_listen.exit_code == 78);  // EX_CONFIG: systemd does not restart on it
  CHECK(bad_listen.err.find("tcp:nowhere") != std::string::npos);
}

TEST_CASE("a second daemon on the same socket is refused while the first serves") {
  Host h("minimal");
  auto r = test::run({SRIOVD_BIN, "serve", "--sysfs-root", h.sys.string(), "--listen", "unix:" + h.sock.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("another process is serving") != std::string::npos);
  CHECK(h.cli({"host"}).exit_code == 0);
}

TEST_CASE("sriovd inventory prints every device as the API encodes it") {
  test::TempDir dir;
  auto m = fixtures::build_profile("dual-socket", dir / "sys");
  REQUIRE(m.ok());
  auto r = test::run({SRIOVD_BIN, "inventory", "--sysfs-root", (dir / "sys").string()});
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  REQUIRE(j["devices"].size() == m->functions.size());
  for (const auto& d : j["devices"]) CHECK(schemas::api_validator().validate("Device", d).ok());
  for (const auto& g : j["iommu_groups"]) CHECK(schemas::api_validator().validate("IommuGroup", g).ok());
  auto host = j["host"];
  host["version"] = "x";
  host["ready"] = true;
  CHECK(schemas::api_validator().validate("Host", host).ok());
}

namespace {

json get_json(Host& h, const std::string& path) {
  auto r = h.cli({"--json", "device", path});
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

}  // namespace

TEST_CASE("changes on a simulated kernel: VFs, VF attributes, vfio-pci, and refusals") {
  Host h("dual-socket", true);
  const std::string pf = "0000:17:00.0";
  auto made = h.cli({"vfs", pf, "4"});
  REQUIRE(made.exit_code == 0);
  CHECK(made.out.find("4 of 128 VFs") != std::string::npos);
  auto list = json::parse(h.cli({"--json", "devices", "--physfn", pf}).out);
  REQUIRE(list["count"] == 4);
  std::string vf0 = list["devices"][0]["address"], vf1 = list["devices"][1]["address"];

  auto set = h.cli({"vf", vf0, "--mac", "52:54:00:00:00:01", "--vlan", "10", "--qos", "2", "--trust", "on"});
  REQUIRE(set.exit_code == 0);
  auto d0 = get_json(h, vf0);
  CHECK(schemas::api_validator().validate("Device", d0).ok());
  CHECK(d0["vf_config"]["mac"] == "52:54:00:00:00:01");
  CHECK(d0["vf_config"]["vlan"] == 10);
  CHECK(d0["vf_config"]["qos"] == 2);
  CHECK(d0["vf_config"]["trust"] == true);

  auto multicast = h.cli({"vf", vf0, "--mac", "01:00:5e:00:00:01"});
  CHECK(multicast.exit_code == 1);
  CHECK(multicast.err.find("mac") != std::string::npos);
  CHECK(multicast.err.find("multicast") != std::string::npos);
  CHECK(get_json(h, vf0)["vf_config"]["mac"] == "52:54:00:00:00:01");

  auto too_many = h.cli({"vfs", pf, "200"});
  CHECK(too_many.exit_code == 1);
  CHECK(too_many.err.find("num_vfs") != std::string::npos);

  REQUIRE(h.cli({"bind", vf1, "vfio-pci"}).exit_code == 0);
  CHECK(get_json(h, vf1)["driver"] == "vfio-pci");
  auto busy = h.cli({"vfs", pf, "2"});
  CHECK(busy.exit_code == 1);
  CHECK(busy.err.find(vf1) != std::string::npos);
  CHECK(busy.err.find("vfio-pci") != std::string::npos);
  CHECK(json::parse(h.cli({"--json", "devices", "--physfn", pf}).out)["count"] == 4);

  SUBCASE("after a reboot the daemon restores VFs, attributes and drivers at start") {
    CHECK(h.daemon.stop() == 0);
    auto reboot = test::run({SRIOVD_BIN, "simulate-reboot", "--sysfs-root", h.sys.string()});
    REQUIRE(reboot.exit_code == 0);
    auto after_reboot = test::run({SRIOVD_BIN, "inventory", "--sysfs-root", h.sys.string()});
    CHECK(after_reboot.out.find(vf0) == std::string::npos);  // the VFs are gone
    h.start();
    CHECK(json::parse(h.cli({"--json", "devices", "--physfn", pf}).out)["count"] == 4);
    CHECK(get_json(h, vf0)["vf_config"]["mac"] == "52:54:00:00:00:01");
    CHECK(get_json(h, vf0)["vf_config"]["vlan"] == 10);
    CHECK(get_json(h, vf1)["driver"] == "vfio-pci");
    auto host = json::parse(h.cli({"--json", "host"}).out);
    CHECK(host["drift"].empty());
  }
  SUBCASE("back to the host driver") {
    REQUIRE(h.cli({"bind", vf1, "host"}).exit_code == 0);
    CHECK(get_json(h, vf1)["driver"] == "iavf");
  }
}

TEST_CASE("REST: bodies are checked against the schema before anything is written") {
  Host h("dual-socket", true);
  cli::Client c(cli::Endpoint::resolve("", h.sock.string()));
  auto expect_problem = [&](const std::string& method, const std::string& path, const std::string& body, long status,
                            const std::string& field) {
    auto r = c.request(method, path, body);
    REQUIRE(r.ok());
    CHECK(r->status == status);
    CHECK(r->content_type == "application/problem+json");
    auto p = json::parse(r->body);
    CHECK(schemas::api_validator().validate("Problem", p).ok());
    if (!field.empty()) CHECK(p["field"] == field);
    return p;
  };
  expect_problem("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":"eight"})", 422, "num_vfs");
  expect_problem("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":8,"extra":1})", 422, "");
  expect_problem("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":8)", 400, "body");
  expect_problem("PATCH", "/v1/devices/0000:3b:02.0/vf-config", R"({"vlan":5000})", 422, "vlan");
  expect_problem("PATCH", "/v1/devices/0000:3b:02.0/vf-config", R"({"link_state":"up"})", 422, "link_state");
  expect_problem("PUT", "/v1/devices/0000:3b:02.0/driver", R"({"driver":"e1000"})", 422, "driver");
  expect_problem("PUT", "/v1/devices/0000:ee:00.0/sriov", R"({"num_vfs":1})", 404, "");
  expect_problem("PUT", "/v1/devices/zz/sriov", R"({"num_vfs":1})", 400, "address");
  expect_problem("GET", "/v1/devices/0000:17:00.0/sriov", "", 405, "");
  auto wrong_type = c.request("PUT", "/v1/devices/0000:17:00.0/sriov", R"({"num_vfs":1})", "text/plain");
  REQUIRE(wrong_type.ok());
  CHECK(wrong_type->status == 415);
  // None of these changed anything.
  auto d = json::parse(h.cli({"--json", "device", "0000:17:00.0"}).out);
  CHECK(d["sriov"]["num_vfs"] == 0);
}

TEST_CASE("events: sriovd-cli events follows what a change does; SIGTERM ends open streams") {
  Host h("dual-socket", true);
  // --since 0: every event of this run, so the follower cannot miss what happens before it is
  // connected (this start changed nothing: no events yet).
  test::RunResult follower;
  std::thread t([&] { follower = h.cli({"--json", "events", "--since", "0", "--count", "3"}); });
  auto vfs = h.cli({"vfs", "0000:17:00.0", "2"});
  t.join();
  REQUIRE(vfs.exit_code == 0);
  REQUIRE_MESSAGE(follower.exit_code == 0, follower.err);
  std::vector<json> got;
  std::istringstream lines_in(follower.out);
  for (std::string line; std::getline(lines_in, line);) got.push_back(json::parse(line));
  REQUIRE(got.size() == 3);
  for (const auto& e : got) {
    auto v = schemas::api_validator().validate("Event", e);
    CHECK_MESSAGE(v.ok(), (v.ok() ? "" : v.error().message));
  }
  CHECK(got[0]["type"] == "device.changed");
  CHECK(got[0]["address"] == "0000:17:00.0");
  CHECK(got[0]["changes"]["num_vfs"]["to"] == 2);
  CHECK(got[1]["type"] == "device.added");
  CHECK(got[1]["physfn"] == "0000:17:00.0");
  CHECK(got[2]["type"] == "device.added");
  CHECK(got[1]["id"].get<uint64_t>() < got[2]["id"].get<uint64_t>());

  // The human form: one line per event.
  auto human = h.cli({"events", "--since", "0", "--count", "1"});
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.find("device.changed  0000:17:00.0  num_vfs 0 -> 2") != std::string::npos);

  // A stream open while the daemon stops ends, and the daemon still exits promptly and cleanly.
  std::mutex mu;
  std::condition_variable cv;
  bool subscribed = false;
  Result<cli::HttpResult> streamed = Error::make(ErrorCode::internal, "not run");
  std::thread s([&] {
    cli::Client client(cli::Endpoint::resolve("", h.sock.string()));
    streamed = client.stream("/v1/events", {}, [&](std::string_view) {
      std::lock_guard lock(mu);
      subscribed = true;
      cv.notify_all();
      return true;
    });
  });
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return subscribed; }));
  }
  auto t0 = std::chrono::steady_clock::now();
  CHECK(h.daemon.stop() == 0);
  s.join();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  REQUIRE(streamed.ok());
  CHECK(streamed->status == 200);
  CHECK(streamed->content_type == "text/event-stream");
}

TEST_CASE("hotplug: sriovd simulate-hotplug removes and adds back a function; the daemon follows") {
  Host h("dual-socket", true);
  auto removed = test::run({SRIOVD_BIN, "simulate-hotplug", "remove", "0000:02:00.0", "--sysfs-root", h.sys.string()});
  REQUIRE_MESSAGE(removed.exit_code == 0, removed.err);
  // The event is the proof the daemon took it in; then REST agrees.
  auto ev = h.cli({"--json", "events", "--since", "0", "--count", "1"});
  REQUIRE_MESSAGE(ev.exit_code == 0, ev.err);
  auto e = json::parse(ev.out);
  CHECK(e["type"] == "device.removed");
  CHECK(e["address"] == "0000:02:00.0");
  CHECK(h.cli({"device", "0000:02:00.0"}).exit_code == 1);

  auto added = test::run({SRIOVD_BIN, "simulate-hotplug", "add", "0000:02:00.0", "--sysfs-root", h.sys.string()});
  REQUIRE_MESSAGE(added.exit_code == 0, added.err);
  auto ev2 = h.cli({"--json", "events", "--since", e["id"].dump(), "--count", "1"});
  REQUIRE(ev2.exit_code == 0);
  CHECK(json::parse(ev2.out)["type"] == "device.added");
  auto dev = h.cli({"--json", "device", "0000:02:00.0"});
  REQUIRE(dev.exit_code == 0);
  CHECK(json::parse(dev.out)["driver"] == "igb");

  auto bad = test::run({SRIOVD_BIN, "simulate-hotplug", "add", "0000:02:00.0", "--sysfs-root", h.sys.string()});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("is present") != std::string::npos);
}
