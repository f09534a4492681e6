// The daemon as a service: systemd's notify protocol (READY=1, WATCHDOG=1, RELOADING=1), the
// configuration file and flags on top of it, SIGHUP reloads and a SIGTERM that lets a request in
// progress finish. Real sriovd processes on generated hosts, over real sockets.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>

#include "agent/state_store.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Env {
  test::TempDir dir{"sriovd-service"};
  fs::path sys = dir / "sys";
  fs::path sock = dir / "sriovd.sock";
  fs::path config = dir / "sriovd.json";
  Env() { REQUIRE(fixtures::build_profile("dual-socket", sys).ok()); }

  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{
        SRIOVD_BIN, "serve", "--sysfs-root", sys.string(), "--state-dir", (dir / "state").string(), "--sim"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void write_config(const std::string& text) const {
    std::ofstream(config.string() + ".tmp") << text;
    fs::rename(config.string() + ".tmp", config);
  }
};

int tcp_port(const std::string& ready) {
  std::smatch m;
  if (!std::regex_search(ready, m, std::regex(R"(tcp:127\.0\.0\.1:([0-9]+))"))) return 0;
  return std::stoi(m[1]);
}

}  // namespace

TEST_CASE("READY=1 after inventory, then WATCHDOG=1 at half of WATCHDOG_USEC") {
  Env e;
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "unix:" + e.sock.string()}), 20s, {{"WATCHDOG_USEC", "300000"}}),
                  d.error());
  CHECK(d.ready_message().find("STATUS=serving") != std::string::npos);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(d.wait_notify("WATCHDOG=1", 2s));
  REQUIRE(d.wait_notify("WATCHDOG=1", 2s));
  REQUIRE(d.wait_notify("WATCHDOG=1", 2s));
  // Three pings at 150 ms intervals (the first right at start): well within two intervals of 300 ms.
  CHECK(std::chrono::steady_clock::now() - t0 < 600ms);
  CHECK(d.stderr_text().find("watchdog: every 150 ms") != std::string::npos);
  CHECK(d.stop(SIGTERM) == 0);
}

TEST_CASE("without WATCHDOG_USEC the daemon does not ping, and WATCHDOG_PID of another process is ignored") {
  Env e;
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "unix:" + e.sock.string()}), 20s,
                          {{"WATCHDOG_USEC", "100000"}, {"WATCHDOG_PID", "1"}}),
                  d.error());
  // sd_watchdog_enabled() is false for a WATCHDOG_PID that is not ours: no "watchdog:" line.
  CHECK(d.stop(SIGTERM) == 0);
  CHECK(d.stderr_text().find("watchdog:") == std::string::npos);
  for (const auto& n : d.notifications()) CHECK(n.find("WATCHDOG=1") == std::string::npos);
}

TEST_CASE("the configuration file sets listen and log level; flags override it") {
  Env e;
  e.write_config(R"({"listen": ["unix:)" + e.sock.string() + R"("], "log_level": "warning"})");
  {
    test::Daemon d;
    REQUIRE_MESSAGE(d.start(e.argv({"--config", e.config.string()})), d.error());
    CHECK(d.ready_message().find("unix:" + e.sock.string()) != std::string::npos);
    CHECK(fs::exists(e.sock));
    CHECK(d.stop(SIGTERM) == 0);
    // warning level: the info lines ("ready in ...") are not written.
    CHECK(d.stderr_text().find("ready in") == std::string::npos);
  }
  {
    test::Daemon d;
    REQUIRE_MESSAGE(
        d.start(e.argv({"--config", e.config.string(), "--listen", "tcp:127.0.0.1:0", "--log-level", "info"})),
        d.error());
    CHECK(tcp_port(d.ready_message()) > 0);
    CHECK(d.ready_message().find("unix:") == std::string::npos);
    CHECK(d.stop(SIGTERM) == 0);
    CHECK(d.stderr_text().find("configuration from " + e.config.string()) != std::string::npos);
  }
}

TEST_CASE("a bad configuration stops the start with the field and exit status 78") {
  Env e;
  e.write_config(R"({"listen": ["unix:/x.sock"], "limits": {"max_connections": 0}})");
  auto r = test::run(e.argv({"--config", e.config.string()}));
  CHECK(r.exit_code == 78);
  CHECK(r.err.find(e.config.string() + ": limits.max_connections: ") != std::string::npos);

  auto missing = test::run(e.argv({"--config", (e.dir / "none.json").string()}));
  CHECK(missing.exit_code == 78);
  CHECK(missing.err.find("none.json") != std::string::npos);

  auto level = test::run(e.argv({"--listen", "unix:" + e.sock.string(), "--log-level", "loud"}));
  CHECK(level.exit_code == 78);
  CHECK(level.err.find("--log-level: 'loud'") != std::string::npos);
}

TEST_CASE("SIGHUP reloads the log level and pools, names what needs a restart, keeps a bad file out") {
  Env e;
  e.write_config(R"({"listen": ["unix:)" + e.sock.string() + R"("], "log_level": "info"})");
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--config", e.config.string()})), d.error());

  e.write_config(R"({"listen": ["unix:)" + e.sock.string() + R"(", "tcp:127.0.0.1:0"], "log_level": "debug",
                     "pools": [{"name": "p0", "selectors": {"vendor_ids": ["8086"]}}]})");
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("RELOADING=1", 5s));
  REQUIRE(d.wait_notify("READY=1", 5s));
  auto log = d.stderr_text();
  CHECK(log.find("SIGHUP: log level info -> debug") != std::string::npos);
  CHECK(log.find("SIGHUP: 1 pools declared") != std::string::npos);
  CHECK(log.find("SIGHUP: listen changed in " + e.config.string() + "; it takes effect at the next restart") !=
        std::string::npos);

  e.write_config(R"({"log_level": 7})");
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("READY=1", 5s));
  CHECK(d.stderr_text().find("SIGHUP: configuration not reloaded, the previous one stays: " + e.config.string() +
                             ": log_level: ") != std::string::npos);
  // Still serving on the socket it had.
  auto c = test::RawConnection::unix_socket(e.sock.string());
  REQUIRE(c.connected());
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(test::status_of(c.read_response(5s)) == 200);
  CHECK(d.stop(SIGTERM) == 0);
}

TEST_CASE("SIGTERM: a change in progress is carried out and answered, then the daemon exits 0") {
  Env e;
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0"})), d.error());
  int port = tcp_port(d.ready_message());
  REQUIRE(port > 0);

  // The request is on its way when SIGTERM arrives: its headers read by the server (which
  // answers "100 Continue" to say so), its body not yet sent.
  const std::string body = R"({"num_vfs": 4})";
  auto c = test::RawConnection::tcp("127.0.0.1", port);
  REQUIRE(c.connected());
  REQUIRE(
      c.send("PUT /v1/devices/0000:17:00.0/sriov HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Expect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n"));
  REQUIRE(test::status_of(c.read_response(5s)) == 100);
  d.signal(SIGTERM);
  REQUIRE(d.wait_log("SIGTERM: stopping", 5s));
  // New connections are no longer accepted once the listener is closed.
  auto refused_in_time = [&] {
    auto end = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < end) {
      auto n = test::RawConnection::tcp("127.0.0.1", port);
      if (!n.connected()) return true;
    }
    return false;
  };
  CHECK(refused_in_time());
  REQUIRE_MESSAGE(c.send(body), d.stderr_text());
  auto response = c.read_response(10s);
  CHECK(test::status_of(response) == 200);
  CHECK(response.find("\"num_vfs\":4") != std::string::npos);
  CHECK(d.wait_exit(10s) == 0);

  // The journal holds the change as done, nothing pending for the next start to undo.
  auto store = agent::StateStore::open(e.dir / "state");
  REQUIRE(store.ok());
  auto pending = (*store)->operations_in_state(agent::OperationState::pending);
  REQUIRE(pending.ok());
  CHECK(pending->empty());
  auto done = (*store)->operations_in_state(agent::OperationState::done);
  REQUIRE(done.ok());
  CHECK(done->size() >= 1);
}

TEST_CASE("SIGTERM: an idle keep-alive connection holds the daemon up at most keep_alive_timeout_s") {
  Env e;
  e.write_config(R"({"limits": {"keep_alive_timeout_s": 1}})");
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--config", e.config.string(), "--listen", "tcp:127.0.0.1:0"})), d.error());
  auto c = test::RawConnection::tcp("127.0.0.1", tcp_port(d.ready_message()));
  REQUIRE(c.connected());
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(test::status_of(c.read_response(5s)) == 200);
  auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  CHECK_MESSAGE(d.wait_exit(10s) == 0, d.stderr_text());
  // cpp-httplib's worker waits out the idle connection's keep-alive time (1 s here).
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(c.wait_closed(1s));
}
