// Security of the running daemon over real sockets: TLS with client certificates, bearer tokens
// on TCP, the unix socket's own authorisation, audit lines, refusals of insecure deployments at
// start, and the limits (body size, header size, stalled clients, concurrent connections).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <vector>

#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";
const std::string kReadOnly = "fedcba9876543210fedcba9876543210";

struct Env {
  test::TempDir dir{"sriovd-security"};
  fs::path sys = dir / "sys";
  fs::path sock = dir / "sriovd.sock";
  fs::path tokens = dir / "tokens";
  Env() {
    REQUIRE(fixtures::build_profile("dual-socket", sys).ok());
    std::ofstream(tokens) << "# test tokens\nci:" << kToken << "\nmonitor:" << kReadOnly << ":read-only\n";
    ::chmod(tokens.c_str(), 0600);
  }
  std::vector<std::string> argv(std::vector<std::string> extra) const {
    std::vector<std::string> a{
        SRIOVD_BIN, "serve", "--sysfs-root", sys.string(), "--state-dir", (dir / "state").string(), "--sim"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string pki(const std::string& name) const { return (dir / "pki" / name).string(); }
  void make_pki() const {
    fs::create_directories(dir / "pki");
    auto r = test::run({"/bin/bash", MAKE_PKI, (dir / "pki").string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
};

int tcp_port(const std::string& ready) {
  std::smatch m;
  if (!std::regex_search(ready, m, std::regex(R"(tcp:127\.0\.0\.1:([0-9]+))"))) return 0;
  return std::stoi(m[1]);
}

// curl's HTTP status for a request ("000" when no HTTP answer came: e.g. a refused handshake).
std::string curl_status(std::vector<std::string> args) {
  std::vector<std::string> argv{"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv).out;
}

}  // namespace

TEST_CASE("TLS with client certificates and bearer tokens; the CLI speaks it; mutations are audited") {
  Env e;
  e.make_pki();
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0", "--listen", "unix:" + e.sock.string(), "--tls-cert",
                                  e.pki("server.pem"), "--tls-key", e.pki("server.key"), "--tls-client-ca",
                                  e.pki("ca.pem"), "--token-file", e.tokens.string()})),
                  d.error());
  int port = tcp_port(d.ready_message());
  REQUIRE(port > 0);
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  std::vector<std::string> tls{"--cacert",          e.pki("ca.pem"), "--cert",
                               e.pki("client.pem"), "--key",         e.pki("client.key")};
  auto with = [&](std::vector<std::string> extra) {
    auto a = tls;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };

  // No client certificate, or one from a CA the daemon does not trust: no TLS session at all.
  CHECK(curl_status({"--cacert", e.pki("ca.pem"), url + "/healthz"}) == "000");
  CHECK(curl_status({"--cacert", e.pki("ca.pem"), "--cert", e.pki("other-client.pem"), "--key",
                     e.pki("other-client.key"), url + "/healthz"}) == "000");
  // Plain HTTP on the TLS port: no HTTP answer.
  CHECK(curl_status({"http://127.0.0.1:" + std::to_string(port) + "/healthz"}) == "000");
  // Certificate but no token: probes only.
  CHECK(curl_status(with({url + "/healthz"})) == "200");
  CHECK(curl_status(with({url + "/v1/host"})) == "401");
  CHECK(curl_status(with({"-H", "Authorization: Bearer wrong-token-wrong-token", url + "/v1/host"})) == "401");
  CHECK(curl_status(with({"-H", "Authorization: Bearer " + kToken, url + "/v1/host"})) == "200");
  CHECK(
      curl_status(with({"-X", "PUT", "-H", "Authorization: Bearer " + kReadOnly, "-H", "Content-Type: application/json",
                        "-d", R"({"num_vfs":2})", url + "/v1/devices/0000:17:00.0/sriov"})) == "403");

  // sriovd-cli over https with --cacert/--cert/--key and the token from --token or SRIOVD_TOKEN.
  std::vector<std::string> cli{SRIOVD_CLI_BIN,      "--url",         url,
                               "--cacert",          e.pki("ca.pem"), "--cert",
                               e.pki("client.pem"), "--key",         e.pki("client.key")};
  auto no_token = cli;
  no_token.emplace_back("host");
  auto refused = test::run(no_token);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("needs a bearer token") != std::string::npos);
  auto env_token = test::run(no_token, {{"SRIOVD_TOKEN", kToken}});
  CHECK_MESSAGE(env_token.exit_code == 0, env_token.err);
  auto change = cli;
  for (std::string a : {"--token", kToken.c_str(), "vfs", "0000:17:00.0", "4"}) change.push_back(a);
  auto changed = test::run(change);
  CHECK_MESSAGE(changed.exit_code == 0, changed.err);
  CHECK(changed.out.find("4 of") != std::string::npos);

  // The unix socket needs no token; its mutations are audited too.
  auto over_unix = test::run({SRIOVD_CLI_BIN, "--socket", e.sock.string(), "vfs", "0000:17:00.0", "0"});
  CHECK_MESSAGE(over_unix.exit_code == 0, over_unix.err);

  CHECK(d.stop(SIGTERM) == 0);
  auto log = d.stderr_text();
  CHECK(log.find("audit: who=token:ci cert:ops-client method=PUT path=/v1/devices/0000:17:00.0/sriov status=200") !=
        std::string::npos);
  CHECK(
      log.find("audit: who=token:monitor cert:ops-client method=PUT path=/v1/devices/0000:17:00.0/sriov status=403") !=
      std::string::npos);
  // Over the unix socket, who is the connecting process as the kernel vouches for it (SO_PEERCRED).
  const std::regex unix_audit("audit: who=unix:uid=" + std::to_string(::getuid()) +
                              ",gid=" + std::to_string(::getgid()) +
                              ",pid=([0-9]+) method=PUT path=/v1/devices/0000:17:00.0/sriov status=200 peer=unix:uid=");
  std::smatch m;
  REQUIRE(std::regex_search(log, m, unix_audit));
  CHECK(std::stol(m[1].str()) > 0);
  CHECK(std::stol(m[1].str()) != d.pid());
  CHECK(log.find("auth: refused GET /v1/host from tcp:127.0.0.1:") != std::string::npos);
  // Never the tokens themselves.
  CHECK(log.find(kToken) == std::string::npos);
  CHECK(log.find(kReadOnly) == std::string::npos);
  CHECK(log.find("wrong-token") == std::string::npos);
}

TEST_CASE("plain TCP on loopback: open without a token file, token required with one") {
  Env e;
  {
    test::Daemon d;
    REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0"})), d.error());
    CHECK(curl_status({"http://127.0.0.1:" + std::to_string(tcp_port(d.ready_message())) + "/v1/host"}) == "200");
  }
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0", "--token-file", e.tokens.string()})), d.error());
  std::string base = "http://127.0.0.1:" + std::to_string(tcp_port(d.ready_message()));
  auto c = test::RawConnection::tcp("127.0.0.1", tcp_port(d.ready_message()));
  REQUIRE(c.send("GET /v1/devices HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response(5s);
  CHECK(test::status_of(r) == 401);
  CHECK(r.find("WWW-Authenticate: Bearer realm=\"sriovd\"") != std::string::npos);
  CHECK(r.find("application/problem+json") != std::string::npos);
  CHECK(curl_status({"-H", "Authorization: Bearer " + kToken, base + "/v1/devices"}) == "200");
  CHECK(curl_status({base + "/readyz"}) == "200");
}

TEST_CASE("SIGHUP reads the token file again") {
  Env e;
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0", "--token-file", e.tokens.string()})), d.error());
  std::string base = "http://127.0.0.1:" + std::to_string(tcp_port(d.ready_message()));
  const std::string rotated = "rotated-rotated-rotated-0001";
  std::ofstream(e.tokens.string() + ".new") << "ci:" << rotated << "\n";
  ::chmod((e.tokens.string() + ".new").c_str(), 0600);
  fs::rename(e.tokens.string() + ".new", e.tokens);
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("READY=1", 5s));
  CHECK(curl_status({"-H", "Authorization: Bearer " + kToken, base + "/v1/host"}) == "401");
  CHECK(curl_status({"-H", "Authorization: Bearer " + rotated, base + "/v1/host"}) == "200");
  // A token file others can read is not taken; the tokens in force stay.
  ::chmod(e.tokens.c_str(), 0644);
  d.signal(SIGHUP);
  REQUIRE(d.wait_notify("READY=1", 5s));
  CHECK(d.stderr_text().find("SIGHUP: tokens not reloaded") != std::string::npos);
  CHECK(curl_status({"-H", "Authorization: Bearer " + rotated, base + "/v1/host"}) == "200");
}

TEST_CASE("insecure combinations are refused at start, saying why") {
  Env e;
  e.make_pki();
  auto plain = test::run(e.argv({"--listen", "tcp:0.0.0.0:0"}));
  CHECK(plain.exit_code == 78);
  CHECK(plain.err.find("tcp:0.0.0.0:0 is reachable from other hosts but has no TLS") != std::string::npos);

  auto no_token = test::run(
      e.argv({"--listen", "tcp:0.0.0.0:0", "--tls-cert", e.pki("server.pem"), "--tls-key", e.pki("server.key")}));
  CHECK(no_token.exit_code == 78);
  CHECK(no_token.err.find("TLS without a token file") != std::string::npos);

  ::chmod(e.tokens.c_str(), 0644);
  auto readable = test::run(e.argv({"--listen", "tcp:127.0.0.1:0", "--token-file", e.tokens.string()}));
  CHECK(readable.exit_code == 78);
  CHECK(readable.err.find("accessible to every user (mode 0644)") != std::string::npos);
  ::chmod(e.tokens.c_str(), 0600);

  auto mismatch = test::run(e.argv({"--listen", "tcp:127.0.0.1:0", "--tls-cert", e.pki("server.pem"), "--tls-key",
                                    e.pki("client.key"), "--token-file", e.tokens.string()}));
  CHECK(mismatch.exit_code != 0);
  CHECK(mismatch.err.find("TLS key " + e.pki("client.key")) != std::string::npos);
}

namespace {

// Starts `d` with the configuration `json`, listening on a free loopback port; returns the port.
int start_on_loopback(Env& e, test::Daemon& d, const std::string& json) {
  fs::path config = e.dir / "sriovd.json";
  std::ofstream(config) << json;
  REQUIRE_MESSAGE(d.start(e.argv({"--config", config.string(), "--listen", "tcp:127.0.0.1:0"})), d.error());
  return tcp_port(d.ready_message());
}

}  // namespace

TEST_CASE("slowloris: requests trickling in byte by byte are cut off and free their workers") {
  Env e;
  test::Daemon d;
  // Each read may wait 5 s, so the per-read timeout never fires at one byte per 200 ms; the
  // whole request must arrive within keep_alive_timeout_s + request_timeout_s = 3 s.
  int port = start_on_loopback(e, d, R"({"limits": {"read_timeout_s": 5, "keep_alive_timeout_s": 1,
                                                    "request_timeout_s": 2, "max_connections": 2}})");

  // Two clients take both workers and never finish their headers.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> tricklers;
  tricklers.reserve(2);
  std::vector<std::chrono::steady_clock::duration> cut(2, std::chrono::steady_clock::duration::max());
  std::vector<test::RawConnection> slow;
  for (int i = 0; i < 2; ++i) {
    // Connected first, in order: they are accepted (and given the workers) before the third.
    slow.push_back(test::RawConnection::tcp("127.0.0.1", port));
    REQUIRE(slow.back().send("GET /v1/host HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  for (int i = 0; i < 2; ++i) {
    tricklers.emplace_back([&, i] {
      auto& c = slow[static_cast<size_t>(i)];
      while (std::chrono::steady_clock::now() - t0 < 15s) {
        // Paced by waiting for the close itself: a byte whenever 200 ms pass without it.
        if (c.wait_closed(200ms)) {
          cut[i] = std::chrono::steady_clock::now() - t0;
          return;
        }
        if (!c.send("a")) {
          cut[i] = std::chrono::steady_clock::now() - t0;
          return;
        }
      }
    });
  }
  // A third client is served once the tricklers are cut off.
  auto third = test::RawConnection::tcp("127.0.0.1", port);
  REQUIRE(third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(test::status_of(third.read_response(10s)) == 200);
  const auto served = std::chrono::steady_clock::now() - t0;
  for (auto& t : tricklers) t.join();
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(cut[i] >= 2500ms);  // not before the allowance
    CHECK(cut[i] < 8s);       // and not much after it
  }
  CHECK(served < 9s);
  CHECK(d.stop(SIGTERM) == 0);
  CHECK(d.stderr_text().find("did not arrive whole within 3 s") != std::string::npos);
}

TEST_CASE("one connection: pipelined requests are answered in order; HEAD gets a fixed-length answer's headers") {
  Env e;
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(e.argv({"--listen", "tcp:127.0.0.1:0", "--listen", "unix:" + e.sock.string()})), d.error());
  const int port = tcp_port(d.ready_message());
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    auto c = tcp ? test::RawConnection::tcp("127.0.0.1", port) : test::RawConnection::unix_socket(e.sock.string());
    // Three requests in one send: the server reads the later ones ahead while it answers the first.
    REQUIRE(
        c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               "HEAD /v1/host HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /v1/host HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const std::string all = c.read_until_closed(10s);
    // Answers one after the other: status line, headers, and a body of Content-Length bytes
    // (none after HEAD).
    struct Answer {
      int status = 0;
      size_t length = 0;
      std::string body;
    };
    std::vector<Answer> answers;
    size_t at = 0;
    for (bool head : {false, true, false}) {
      const size_t end = all.find("\r\n\r\n", at);
      REQUIRE(end != std::string::npos);
      Answer a;
      a.status = test::status_of(all.substr(at, end + 4 - at));
      std::string lower = all.substr(at, end - at);
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const size_t cl = lower.find("content-length: ");
      REQUIRE(cl != std::string::npos);
      a.length = std::stoul(lower.substr(cl + 16));
      at = end + 4;
      if (!head) {
        a.body = all.substr(at, a.length);
        at += a.length;
      }
      answers.push_back(a);
    }
    CHECK(at == all.size());  // nothing else: the HEAD answer carried no body
    CHECK(answers[0].status == 200);
    CHECK(answers[1].status == 200);
    CHECK(answers[2].status == 200);
    CHECK(answers[1].length == answers[2].length);
    CHECK(answers[2].body.size() == answers[2].length);
    CHECK(nlohmann::json::parse(answers[2].body, nullptr, false).is_object());
  }
  CHECK(d.stop(SIGTERM) == 0);
}

TEST_CASE("busy keep-alive clients do not keep the workers from a client that waits for one") {
  Env e;
  test::Daemon d;
  // Two workers, kept-alive connections allowed to stay open for 60 s and 100,000 requests.
  int port = start_on_loopback(e, d, R"({"limits": {"max_connections": 2, "keep_alive_timeout_s": 60}})");
  std::atomic<bool> stop{false};
  std::atomic<int> closes{0}, failures{0};
  // How many busy clients have had an answer (so hold a worker with their connection).
  std::mutex mu;
  std::condition_variable cv;
  int holding = 0;
  std::vector<std::thread> busy;
  busy.reserve(2);
  for (int i = 0; i < 2; ++i)
    busy.emplace_back([&] {
      // Requests back to back on one connection, a new one whenever the server closes it.
      auto c = test::RawConnection::tcp("127.0.0.1", port);
      const auto until = std::chrono::steady_clock::now() + 30s;
      bool counted = false;
      while (!stop && std::chrono::steady_clock::now() < until) {
        auto ask = [&] {
          return c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") ? c.read_response(10s) : std::string();
        };
        std::string answer = ask();
        if (answer.empty()) {
          // Closed while idle before the request got there (a server may close an idle
          // kept-alive connection at any time): asked again on a new one, as HTTP clients do.
          ++closes;
          c = test::RawConnection::tcp("127.0.0.1", port);
          answer = ask();
        }
        if (test::status_of(answer) != 200) ++failures;
        if (!counted && test::status_of(answer) == 200) {
          counted = true;
          std::lock_guard<std::mutex> lock(mu);
          ++holding;
          cv.notify_all();
        }
        if (answer.find("Connection: close") != std::string::npos) {
          ++closes;
          c = test::RawConnection::tcp("127.0.0.1", port);
        }
      }
    });
  // Once both workers are taken by the busy clients, a third client is still answered, well
  // before the busy ones stop (30 s) or their connections time out (60 s).
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, 20s, [&] { return holding == 2; }));
  }
  auto third = test::RawConnection::tcp("127.0.0.1", port);
  REQUIRE(third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto t0 = std::chrono::steady_clock::now();
  const std::string answer = third.read_response(20s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  stop = true;
  for (auto& t : busy) t.join();
  CHECK(test::status_of(answer) == 200);
  CHECK(waited < 10s);
  CHECK(closes >= 1);  // a busy client's connection was closed to let the third in
  CHECK(failures == 0);
  CHECK(d.stop(SIGTERM) == 0);
}

TEST_CASE("limits: body size, header size, a stalled client, concurrent connections") {
  Env e;
  test::Daemon d;
  int port = start_on_loopback(e, d, R"({"limits": {"max_body_bytes": 4096, "read_timeout_s": 1,
                                                    "keep_alive_timeout_s": 30, "max_connections": 2}})");

  SUBCASE("a body over max_body_bytes is 413 and nothing is changed") {
    auto c = test::RawConnection::tcp("127.0.0.1", port);
    std::string body = R"({"num_vfs": 4, "pad": ")" + std::string(5000, 'x') + "\"}";
    REQUIRE(
        c.send("PUT /v1/devices/0000:17:00.0/sriov HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body));
    CHECK(test::status_of(c.read_response(5s)) == 413);
  }
  SUBCASE("a header line over 8 KiB is not served") {
    auto c = test::RawConnection::tcp("127.0.0.1", port);
    REQUIRE(c.send("GET /v1/host HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n"));
    auto r = c.read_response(5s);
    int status = test::status_of(r);
    // cpp-httplib answers 400 (or closes): the request never reaches a handler.
    CHECK((status == 400 || status == 431 || (status == 0 && c.wait_closed(5s))));
  }
  SUBCASE("a client that stops sending in the middle of its headers is cut off after read_timeout_s") {
    auto c = test::RawConnection::tcp("127.0.0.1", port);
    REQUIRE(c.send("GET /v1/host HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    auto t0 = std::chrono::steady_clock::now();
    // cpp-httplib gives up on the request after read_timeout_s (1 s) and answers 400.
    CHECK(test::status_of(c.read_response(10s)) == 400);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  }
  SUBCASE("beyond max_connections, a connection waits for a worker; idle kept-alive ones give theirs up") {
    std::vector<test::RawConnection> held;
    for (int i = 0; i < 2; ++i) {
      held.push_back(test::RawConnection::tcp("127.0.0.1", port));
      REQUIRE(held.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      REQUIRE(test::status_of(held.back().read_response(5s)) == 200);  // kept alive: holds a worker
    }
    auto third = test::RawConnection::tcp("127.0.0.1", port);
    REQUIRE(third.connected());
    REQUIRE(third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Both workers are held by idle keep-alive connections (allowed 30 s): one lets its worker
    // go to the connection that waits, long before that.
    CHECK(test::status_of(third.read_response(5s)) == 200);
    CHECK((held[0].wait_closed(5s) || held[1].wait_closed(5s)));
  }
  CHECK(d.stop(SIGTERM) == 0);
}
