// Tier 2: the real sriovd daemon on a generated host, over a real unix socket and TCP, driven
// by the real sriovd-cli.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "schemas/validator.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Host {
  test::TempDir dir{"sriovd-daemon"};
  fs::path sys = dir / "sys";
  fs::path sock = dir / "sriovd.sock";
  fixtures::Manifest manifest;
  test::Daemon daemon;
  int port = 0;

  explicit Host(const char* profile = "dual-socket") {
    auto m = fixtures::build_profile(profile, sys);
    REQUIRE(m.ok());
    manifest = *m;
    bool started = daemon.start({SRIOVD_BIN, "serve", "--sysfs-root", sys.string(), "--state-dir",
                                 (dir / "state").string(), "--listen", "unix:" + sock.string(), "--listen",
                                 "tcp:127.0.0.1:0"});
    REQUIRE_MESSAGE(started, daemon.error());
    // The READY notification says where it listens: "... on unix:/x.sock, tcp:127.0.0.1:41234".
    std::smatch m2;
    std::string msg = daemon.ready_message();
    REQUIRE(std::regex_search(msg, m2, std::regex("tcp:127\\.0\\.0\\.1:([0-9]+)")));
    port = std::stoi(m2[1]);
  }

  test::RunResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv{SRIOVD_CLI_BIN, "--socket", sock.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv);
  }
};

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

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

TEST_CASE("start-up errors are one clear line and exit 1") {
  test::TempDir dir;
  auto r = test::run({SRIOVD_BIN, "serve", "--sysfs-root", dir.path().string(), "--listen",
                      "unix:" + (dir / "s.sock").string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not a sysfs tree") != std::string::npos);

  REQUIRE(fixtures::write_profile("minimal", dir / "sys").ok());
  auto bad_listen = test::run({SRIOVD_BIN, "serve", "--sysfs-root", (dir / "sys").string(), "--listen", "tcp:nowhere"});
  CHECK(bad_listen.exit_code == 1);
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
