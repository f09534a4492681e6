// Tier 2 support: the real sriovd daemon on a generated host (optionally with the simulated
// kernel), listening on a unix socket and an ephemeral loopback TCP port, and the real
// sriovd-cli pointed at it. The test target defines SRIOVD_BIN and SRIOVD_CLI_BIN.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace sriovd::test {

struct Host {
  TempDir dir{"sriovd-daemon"};
  std::filesystem::path sys = dir / "sys";
  std::filesystem::path sock = dir / "sriovd.sock";
  fixtures::Manifest manifest;
  Daemon daemon;
  int port = 0;

  bool sim = false;
  // --libvirt-uri. By default a socket in the test's dir that nothing listens on: no test
  // reaches the host's own libvirt, and attach/detach answer that libvirt is unreachable.
  std::string libvirt_uri = "qemu+unix:///system?socket=" + (dir / "no-libvirtd.sock").string();

  explicit Host(const char* profile = "dual-socket", bool simulated = false, std::string libvirt = {})
      : sim(simulated) {
    if (!libvirt.empty()) libvirt_uri = std::move(libvirt);
    auto m = fixtures::build_profile(profile, sys);
    REQUIRE(m.ok());
    manifest = *m;
    start();
  }
  void start() {
    std::vector<std::string> argv{SRIOVD_BIN,      "serve",
                                  "--sysfs-root",  sys.string(),
                                  "--state-dir",   (dir / "state").string(),
                                  "--listen",      "unix:" + sock.string(),
                                  "--listen",      "tcp:127.0.0.1:0",
                                  "--libvirt-uri", libvirt_uri};
    if (sim) argv.emplace_back("--sim");
    // A failed connect must not make libvirt's client library spawn a daemon of its own.
    bool started = daemon.start(argv, std::chrono::seconds(20), {{"LIBVIRT_AUTOSTART", "0"}});
    REQUIRE_MESSAGE(started, daemon.error());
    // The READY notification says where it listens: "... on unix:/x.sock, tcp:127.0.0.1:41234".
    std::smatch m2;
    std::string msg = daemon.ready_message();
    REQUIRE(std::regex_search(msg, m2, std::regex("tcp:127\\.0\\.0\\.1:([0-9]+)")));
    port = std::stoi(m2[1]);
  }

  RunResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv{SRIOVD_CLI_BIN, "--socket", sock.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
};

}  // namespace sriovd::test
