// Tier 2: random requests against the real daemon on the simulated dual-socket host. Methods
// known and unknown; paths built from the API's own segments, real addresses, junk, bad
// percent-escapes and escapes of bytes that are not UTF-8; queries likewise; random JSON and
// binary bodies under right and wrong content types. What a client relies on, checked on every
// answer:
//   - nothing answers 500 (or any 5xx but 503 from attach/detach, whose libvirt is unreachable
//     here);
//   - every error with a body is application/problem+json, valid JSON (hence UTF-8), whose
//     `status` is the HTTP status;
//   - no exception text in any header or body;
// and afterwards the daemon is alive and serves the host, its pool and its lease unchanged.
//
// Bodies never change anything: every request schema refuses unknown members, and each JSON
// object sent carries one ("fuzz"); the pool and lease made before are only ever read. GET of
// /v1/events (a stream) is left out.
//
// SRIOVD_REQUEST_FUZZ_COUNT (default 3000) and SRIOVD_REQUEST_FUZZ_SEED (default: from the
// clock, printed) set the campaign; bench/RESULTS.md records a long one.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/sim_daemon.h"
#include "tests/support/raw_http.h"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool one_in(size_t n) { return below(n) == 0; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

  std::string method() {
    static const std::vector<std::string> known = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    static const std::vector<std::string> odd = {"BREW", "TRACE", "CONNECT", "get", "PROPFIND", "X"};
    return one_in(8) ? pick(odd) : pick(known);
  }

  // A byte as a percent-escape, half the time one that is not UTF-8 on its own.
  std::string escape() {
    static const std::vector<std::string> bad = {"%C0", "%C0%AF", "%FF", "%80", "%ED%A0%80", "%F4%90%80%80", "%E2%82",
                                                 "%G1", "%",      "%4",  "%%",  "%00",       "%2F",          "%C3%A9"};
    if (one_in(2)) return pick(bad);
    static const char* hex = "0123456789ABCDEF";
    std::string s = "%";
    s += hex[below(16)];
    s += hex[below(16)];
    return s;
  }

  std::string junk(size_t max_len) {
    static const std::string chars = "abcXYZ019-_.~:;,@!$&'()*+=[]{}|\\^`\" <>";
    std::string s;
    size_t n = below(max_len + 1);
    for (size_t i = 0; i < n; ++i) s += one_in(8) ? escape() : std::string(1, chars[below(chars.size())]);
    return s;
  }

  std::string segment(const std::vector<std::string>& real) {
    static const std::vector<std::string> api = {"v1",
                                                 "devices",
                                                 "iommu-groups",
                                                 "pools",
                                                 "allocations",
                                                 "attach",
                                                 "detach",
                                                 "sriov",
                                                 "vf-config",
                                                 "driver",
                                                 "host",
                                                 "healthz",
                                                 "readyz",
                                                 "metrics",
                                                 "openapi.json",
                                                 "..",
                                                 ".",
                                                 "",
                                                 "0000:00:00.0",
                                                 "0000:ee:1f.7",
                                                 "ffff:ff:1f.7",
                                                 "0000:17:00.0x",
                                                 "v2"};
    switch (below(4)) {
      case 0: return pick(real);
      case 1: return junk(12);
      default: return pick(api);
    }
  }

  std::string path(const std::vector<std::string>& real) {
    static const std::vector<std::vector<std::string>> shapes = {{"v1", "devices", "*"},
                                                                 {"v1", "devices", "*", "sriov"},
                                                                 {"v1", "devices", "*", "vf-config"},
                                                                 {"v1", "devices", "*", "driver"},
                                                                 {"v1", "iommu-groups", "*"},
                                                                 {"v1", "pools", "*"},
                                                                 {"v1", "allocations", "*"},
                                                                 {"v1", "allocations", "*", "attach"},
                                                                 {"v1", "allocations", "*", "detach"},
                                                                 {"v1", "*"},
                                                                 {"*", "*", "*"},
                                                                 {"v1", "devices"},
                                                                 {"v1", "pools"},
                                                                 {"v1", "allocations"},
                                                                 {"v1", "host"},
                                                                 {"healthz"},
                                                                 {"metrics"},
                                                                 {"openapi.json"}};
    std::string p;
    for (const auto& part : pick(shapes)) p += "/" + (part == "*" || one_in(10) ? segment(real) : part);
    if (one_in(12)) p += "/";
    if (one_in(20)) p = "//" + p;
    if (one_in(30)) p = junk(20);  // not even starting with '/'
    if (one_in(40)) p = "/" + std::string(3000 + below(6000), 'a');
    return p;
  }

  std::string query() {
    static const std::vector<std::string> keys = {"driver", "class", "physfn", "numa_node", "kind", "since", "x", ""};
    std::string q;
    size_t n = below(4);
    for (size_t i = 0; i < n; ++i) {
      q += i ? "&" : "?";
      q += one_in(3) ? junk(6) : pick(keys);
      if (!one_in(5)) q += "=" + junk(10);
    }
    return q;
  }

  json value(int depth) {
    switch (below(depth > 2 ? 6 : 8)) {
      case 0: return nullptr;
      case 1: return one_in(2);
      case 2: return static_cast<int64_t>(rng_()) >> below(63);
      case 3: return std::uniform_real_distribution<double>(-1e9, 1e9)(rng_);
      case 4: return valid_text(16);
      case 5: {
        static const std::vector<std::string> likely = {
            "vfio-pci", "host", "52:54:00:12:34:56", "vm", "pod", "0000:17:00.0", "ens1f0#0-7", "pack", "spread", "up"};
        return pick(likely);
      }
      case 6: {
        json a = json::array();
        for (size_t i = below(4); i > 0; --i) a.push_back(value(depth + 1));
        return a;
      }
      default: return object(depth + 1);
    }
  }

  json object(int depth) {
    static const std::vector<std::string> names = {"num_vfs",     "drivers_autoprobe",
                                                   "driver",      "group",
                                                   "force",       "mac",
                                                   "vlan",        "qos",
                                                   "vlan_proto",  "max_tx_rate",
                                                   "min_tx_rate", "spoofchk",
                                                   "trust",       "link_state",
                                                   "mtu",         "name",
                                                   "selectors",   "mode",
                                                   "policy",      "pool",
                                                   "address",     "consumer",
                                                   "kind",        "numa_node",
                                                   "vf_config",   "domain",
                                                   "live",        "config",
                                                   "pf_names",    "vendor",
                                                   "device_type"};
    json o = json::object();
    for (size_t i = below(5); i > 0; --i) o[one_in(6) ? valid_text(8) : pick(names)] = value(depth);
    o["fuzz"] = true;  // every request schema refuses a member it does not know: nothing changes
    return o;
  }

  std::string valid_text(size_t max_len) {
    static const std::vector<std::string> pieces = {
        "a", "Z", "0", "-", " ", "\\", "\"", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\n", "\t"};
    std::string s;
    for (size_t n = below(max_len + 1); n > 0; --n) s += pick(pieces);
    return s;
  }

  std::string body() {
    switch (below(6)) {
      case 0: return "";
      case 1: {
        std::string b;
        for (size_t n = below(200); n > 0; --n) b += static_cast<char>(below(256));
        return b;
      }
      case 2: {
        std::string b = object(0).dump();
        if (!b.empty() && one_in(2)) b.resize(below(b.size()));  // cut short
        return b;
      }
      case 3: return value(0).dump();
      case 4: return "{\"fuzz\": \"\xC0\xAF\"}";  // JSON whose string is not UTF-8
      default: return object(0).dump();
    }
  }

  std::string content_type() {
    static const std::vector<std::string> types = {"application/json",
                                                   "application/json; charset=utf-8",
                                                   "text/plain",
                                                   "application/problem+json",
                                                   "application/x-www-form-urlencoded",
                                                   "multipart/form-data; boundary=x",
                                                   "application/json; charset=utf-16",
                                                   "\xFF\xFE"};
    return pick(types);
  }

 private:
  std::mt19937_64 rng_;
};

struct Answer {
  int status = 0;
  std::string head;
  std::string body;
};

Answer split(const std::string& raw) {
  Answer a;
  a.status = sriovd::test::status_of(raw);
  auto end = raw.find("\r\n\r\n");
  a.head = raw.substr(0, end);
  if (end == std::string::npos) return a;
  a.body = raw.substr(end + 4);
  // The first answer's body only: for a request line far over its limit cpp-httplib answers 400
  // twice (both without a body), and the second is not this answer's body.
  std::string head = a.head;
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos)
    a.body.resize(std::min(a.body.size(), static_cast<size_t>(std::strtoull(head.c_str() + at + 17, nullptr, 10))));
  return a;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What GETs of the whole state answer, for before/after.
std::string state(int port) {
  std::string out;
  for (const char* p : {"/v1/devices", "/v1/iommu-groups", "/v1/pools", "/v1/allocations"}) {
    auto c = sriovd::test::RawConnection::tcp("127.0.0.1", port);
    REQUIRE(c.send(std::string("GET ") + p + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    Answer a = split(c.read_response(10s));
    REQUIRE(a.status == 200);
    out += p;
    out += '\n';
    out += a.body;
    out += '\n';
  }
  return out;
}

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("random requests: no 5xx, every error a problem in valid JSON, no exception text, the host unchanged") {
  sriovd::test::Host h("dual-socket", /*simulated=*/true);
  // Something to read: a pool with a lease.
  REQUIRE(h.cli({"pool", "create", "cx6", "--pf", "ens3f0", "--mode", "netdev"}).exit_code == 0);
  auto leased = h.cli({"--json", "alloc", "cx6", "--name", "vm1", "--consumer", "vm"});
  REQUIRE_MESSAGE(leased.exit_code == 0, leased.err);
  const json lease = json::parse(leased.out);
  const std::vector<std::string> real = {
      lease["id"].get<std::string>(), lease["address"].get<std::string>(), "0000:17:00.0", "cx6", "17", "0"};
  const std::string before = state(h.port);

  const uint64_t count = env_number("SRIOVD_REQUEST_FUZZ_COUNT", 3000);
  const uint64_t seed = env_number("SRIOVD_REQUEST_FUZZ_SEED",
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  MESSAGE("SRIOVD_REQUEST_FUZZ_SEED=" << seed << " SRIOVD_REQUEST_FUZZ_COUNT=" << count);
  Gen g(seed);
  std::map<int, uint64_t> by_status;
  uint64_t failures = 0;
  for (uint64_t i = 0; i < count && failures < 20; ++i) {
    std::string method = g.method();
    std::string path = g.path(real) + g.query();
    // A stream would never end; the pool and the lease stay as made (only read).
    if (path.rfind("/v1/events", 0) == 0 && method != "POST") method = "POST";
    if (method != "GET" && method != "HEAD" &&
        (path.find(real[0]) != std::string::npos || path.find("/cx6") != std::string::npos))
      method = "GET";
    std::string body = g.body();
    // One connection per request, closed by the server after its answer: a HEAD's answer has a
    // Content-Length and no body, and the reader takes the close as the end.
    std::string request = method;
    request += " ";
    request += path;
    request += " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!body.empty() || g.one_in(3)) {
      if (!g.one_in(6)) request += "Content-Type: " + g.content_type() + "\r\n";
      request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n" + body;
    auto conn = sriovd::test::RawConnection::tcp("127.0.0.1", h.port);
    REQUIRE_MESSAGE(conn.connected(), "the daemon stopped accepting connections: " << conn.error());
    // A server may answer before it has read the whole request (and close): a short send is fine.
    (void)conn.send(request);
    std::string raw = conn.read_response(10s);
    Answer a = split(raw);
    ++by_status[a.status];
    std::string why;
    if (a.status == 0) why = "no answer within 10 s";
    else if (a.status >= 500 && !(a.status == 503 && (path.find("/attach") != std::string::npos ||
                                                      path.find("/detach") != std::string::npos)))
      why = "a 5xx";
    else if (lower(raw).find("exception") != std::string::npos) why = "exception text in the answer";
    else if (a.status >= 400 && !a.body.empty()) {
      if (lower(a.head).find("content-type: application/problem+json") == std::string::npos)
        why = "an error that is not problem+json";
      else {
        auto j = json::parse(a.body, nullptr, false);
        if (j.is_discarded()) why = "a problem that is not valid JSON (or not UTF-8)";
        else if (j.value("status", 0) != a.status) why = "a problem whose status is not the answer's";
      }
    }
    if (!why.empty()) {
      ++failures;
      FAIL_CHECK(why << " for request #" << i << ":\n"
                     << json(request).dump(-1, ' ', true, json::error_handler_t::replace) << "\nanswer:\n"
                     << json(raw.substr(0, 600)).dump(-1, ' ', true, json::error_handler_t::replace));
    }
  }
  std::string statuses;
  for (const auto& [s, n] : by_status) statuses += " " + std::to_string(s) + ":" + std::to_string(n);
  MESSAGE("answers by status:" << statuses);
  CHECK(failures == 0);

  // Alive, and nothing changed.
  CHECK(state(h.port) == before);
  CHECK(h.daemon.stop() == 0);  // and it stops cleanly
}
